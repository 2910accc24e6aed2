/* tcp.c - L3: TCP transport over the runtime poller, DNS resolution off the loop, and an
 * in-memory pipe pair.
 *
 * Spec: libp2p/specs connections/README.md (a transport yields a reliable byte stream);
 * addressing/README.md (/ip4|ip6|dns|dns4|dns6/../tcp/..). Sockets are non-blocking and
 * registered once with the poller (edge-triggered): every syscall is retried until EAGAIN
 * before the task parks on lp2p__wait_fd.
 * Lifetimes: close/reset/listener_free may be called by one task while another is parked in
 * read/write/accept on the same object (a muxer closing its connection, a host stopping a
 * listener). The fd is closed at once; the record is freed when the last parked call has
 * woken, and that call returns LP2P_ERR_CLOSED without touching anything else.
 * Errors: ECONNRESET, EPIPE (peer gone while we write), ECONNABORTED and ETIMEDOUT on an
 * open connection map to LP2P_ERR_RESET; a failed connect (refused, unreachable, timed out
 * by the kernel, no route, DNS failure) maps to LP2P_ERR_UNREACHABLE; ENOMEM/ENOBUFS to
 * LP2P_ERR_NOMEM; anything else to LP2P_ERR_IO. Writing after close_write gives ERR_CLOSED.
 * Depends on: tcp.h (runtime.h, pipe.h, multiaddr.h), POSIX sockets, getaddrinfo, pthreads. */
#include "tcp.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#define LP2P__TCP_RBUF 4096     /* per-pipe read-ahead for small reads */
#define LP2P__TCP_DIRECT 64     /* reads of at least this many bytes go straight to the socket */
#define LP2P__TCP_BACKLOG 1024
#define LP2P__DNS_MAX 16        /* addresses kept from one getaddrinfo answer */
#define LP2P__DIAL_MAX 8        /* resolved addresses one dial tries */
#define LP2P__MEMPIPE_MAX (1u << 20)

/* ---- errno mapping ------------------------------------------------------------------------- */
static int lp2p__tcp_io_err(int e) {
    switch (e) {
    case ECONNRESET: case EPIPE: case ECONNABORTED: case ETIMEDOUT: case EHOSTUNREACH: case ENETUNREACH:
    case ENETRESET: return LP2P_ERR_RESET;
    case ENOMEM: case ENOBUFS: return LP2P_ERR_NOMEM;
    default: return LP2P_ERR_IO;
    }
}

static int lp2p__tcp_connect_err(int e) {
    switch (e) {
    case ENOMEM: case ENOBUFS: return LP2P_ERR_NOMEM;
    case EMFILE: case ENFILE: case EBADF: case EINVAL: return LP2P_ERR_IO;
    default: return LP2P_ERR_UNREACHABLE; /* ECONNREFUSED, E*UNREACH, ETIMEDOUT, EADDRNOTAVAIL, EACCES ... */
    }
}

/* ---- sockaddr <-> multiaddr -------------------------------------------------------------- */
static void lp2p__tcp_sa_to_ma(const struct sockaddr_storage *ss, lp2p__ma *out) {
    size_t n = 0;
    uint16_t port;
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(s6->sin6_addr.s6_addr, mapped, 12) == 0) { /* a v4 peer on a dual-stack socket */
            out->b[n++] = LP2P__MA_IP4;
            memcpy(out->b + n, s6->sin6_addr.s6_addr + 12, 4), n += 4;
        } else {
            out->b[n++] = LP2P__MA_IP6;
            memcpy(out->b + n, s6->sin6_addr.s6_addr, 16), n += 16;
        }
        port = ntohs(s6->sin6_port);
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
        out->b[n++] = LP2P__MA_IP4;
        memcpy(out->b + n, &s4->sin_addr.s_addr, 4), n += 4;
        port = ntohs(s4->sin_port);
    }
    out->b[n++] = LP2P__MA_TCP;
    lp2p__put_be16(out->b + n, port), n += 2;
    out->len = (uint16_t)n;
}

/* First two components /ip4|ip6/<a>/tcp/<port> -> sockaddr; ERR_BADADDR otherwise. */
static int lp2p__tcp_ma_to_sa(const lp2p__ma *ma, struct sockaddr_storage *ss, socklen_t *len) {
    size_t off = 0, vn = 0;
    uint32_t code = 0, code2 = 0;
    const uint8_t *v = NULL, *pv = NULL;
    if (!lp2p__ma_next(ma, &off, &code, &v, &vn)) return LP2P_ERR_BADADDR;
    if (!lp2p__ma_next(ma, &off, &code2, &pv, &vn) || code2 != LP2P__MA_TCP) return LP2P_ERR_BADADDR;
    memset(ss, 0, sizeof *ss);
    if (code == LP2P__MA_IP4) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        memcpy(&s4->sin_addr.s_addr, v, 4);
        s4->sin_port = htons(lp2p__be16(pv));
        *len = sizeof *s4;
    } else if (code == LP2P__MA_IP6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        memcpy(s6->sin6_addr.s6_addr, v, 16);
        s6->sin6_port = htons(lp2p__be16(pv));
        *len = sizeof *s6;
    } else {
        return LP2P_ERR_BADADDR;
    }
    return LP2P_OK;
}

static void lp2p__tcp_sockopt(int fd, int level, int opt, int val) {
    (void)setsockopt(fd, level, opt, &val, sizeof val); /* best effort: all are optimisations */
}

/* ---- TCP pipe ------------------------------------------------------------------------------- */
typedef struct lp2p__tcp_pipe {
    lp2p__pipe base;
    lp2p__sched *s;
    lp2p__ctx *ctx;
    int fd;
    int waiting;  /* calls parked in read/write; the record outlives them */
    bool closed;  /* released by close/reset: fd is gone */
    bool wr_shut; /* close_write done */
    uint16_t rpos, rlen;
    uint8_t *rbuf; /* LP2P__TCP_RBUF bytes while it holds unread bytes or a read is in progress */
} lp2p__tcp_pipe;

static void lp2p__tcp_pipe_free(lp2p__tcp_pipe *t) {
    lp2p__free(t->ctx, t->rbuf, LP2P__TCP_RBUF);
    lp2p__free(t->ctx, t, sizeof *t);
}

/* Park on the fd; ERR_CLOSED (and nothing touched after) if the pipe was released meanwhile. */
static int lp2p__tcp_wait(lp2p__tcp_pipe *t, int dir, int64_t deadline) {
    t->waiting++;
    int rc = lp2p__wait_fd(t->s, t->fd, dir, deadline);
    t->waiting--;
    if (t->closed) {
        if (t->waiting == 0) lp2p__tcp_pipe_free(t);
        return LP2P_ERR_CLOSED;
    }
    return rc;
}

static ptrdiff_t lp2p__tcp_read(lp2p__pipe *p, void *buf, size_t cap, int64_t deadline) {
    lp2p__tcp_pipe *t = (lp2p__tcp_pipe *)p;
    if (cap == 0) return LP2P_ERR_INVALID; /* 0 would read as EOF */
    if (t->rpos < t->rlen) {
        size_t n = LP2P__MIN(cap, (size_t)(t->rlen - t->rpos));
        memcpy(buf, t->rbuf + t->rpos, n);
        t->rpos = (uint16_t)(t->rpos + n);
        return (ptrdiff_t)n;
    }
    for (;;) {
        ssize_t n;
        if (cap >= LP2P__TCP_DIRECT) { /* big reads go straight to the caller's buffer */
            if (t->rbuf) { /* the byte-wise phase (multistream) is over: give the buffer back */
                lp2p__free(t->ctx, t->rbuf, LP2P__TCP_RBUF);
                t->rbuf = NULL;
            }
            n = recv(t->fd, buf, cap, 0);
            if (n >= 0) return (ptrdiff_t)n;
        } else {
            if (!t->rbuf && !(t->rbuf = (uint8_t *)lp2p__alloc(t->ctx, LP2P__TCP_RBUF))) return LP2P_ERR_NOMEM;
            n = recv(t->fd, t->rbuf, LP2P__TCP_RBUF, 0);
            if (n >= 0) {
                size_t k = LP2P__MIN(cap, (size_t)n);
                memcpy(buf, t->rbuf, k);
                t->rpos = (uint16_t)k, t->rlen = (uint16_t)n;
                return (ptrdiff_t)k;
            }
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) return lp2p__tcp_io_err(errno);
        if (t->rbuf) { /* empty while we wait: an idle connection holds no read-ahead */
            lp2p__free(t->ctx, t->rbuf, LP2P__TCP_RBUF);
            t->rbuf = NULL;
        }
        int rc = lp2p__tcp_wait(t, LP2P__IN, deadline);
        if (rc) return rc;
    }
}

static int lp2p__tcp_write(lp2p__pipe *p, const void *buf, size_t len, int64_t deadline) {
    lp2p__tcp_pipe *t = (lp2p__tcp_pipe *)p;
    const uint8_t *b = (const uint8_t *)buf;
    if (t->wr_shut) return LP2P_ERR_CLOSED;
    while (len > 0) {
        ssize_t n = send(t->fd, b, len, MSG_NOSIGNAL); /* no SIGPIPE when the peer is gone */
        if (n > 0) {
            b += n, len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return lp2p__tcp_io_err(errno);
        int rc = lp2p__tcp_wait(t, LP2P__OUT, deadline);
        if (rc) return rc;
    }
    return LP2P_OK;
}

static int lp2p__tcp_close_write(lp2p__pipe *p) {
    lp2p__tcp_pipe *t = (lp2p__tcp_pipe *)p;
    if (t->wr_shut) return LP2P_OK;
    t->wr_shut = true;
    if (shutdown(t->fd, SHUT_WR) < 0 && errno != ENOTCONN) return lp2p__tcp_io_err(errno);
    return LP2P_OK;
}

static void lp2p__tcp_release(lp2p__tcp_pipe *t, bool abort) {
    int fd = t->fd;
    lp2p__sched *s = t->s;
    bool free_now = t->waiting == 0; /* else the last parked call frees it: never touch t again */
    if (abort) { /* SO_LINGER {1, 0}: close() sends RST and drops unsent data */
        struct linger lg = {1, 0};
        (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    t->closed = true;
    t->fd = -1;
    if (free_now) lp2p__tcp_pipe_free(t);
    lp2p__fd_del(s, fd); /* wakes parked calls with ERR_CLOSED */
    close(fd);
}

static void lp2p__tcp_reset(lp2p__pipe *p) { lp2p__tcp_release((lp2p__tcp_pipe *)p, true); }
static void lp2p__tcp_close(lp2p__pipe *p) { lp2p__tcp_release((lp2p__tcp_pipe *)p, false); }

static const lp2p__pipe_vt lp2p__tcp_vt = {lp2p__tcp_read, lp2p__tcp_write, lp2p__tcp_close_write, lp2p__tcp_reset,
                                           lp2p__tcp_close, NULL};

LP2P__PRIV int lp2p__tcp_pipe_fd(lp2p__pipe *p) {
    return p && p->vt == &lp2p__tcp_vt ? ((lp2p__tcp_pipe *)p)->fd : -1;
}

/* Wrap a connected non-blocking socket (registered with the poller already). */
static int lp2p__tcp_pipe_new(lp2p__sched *s, int fd, lp2p__pipe **out) {
    lp2p__ctx *ctx = lp2p__sched_ctx(s);
    lp2p__tcp_pipe *t = (lp2p__tcp_pipe *)lp2p__zalloc(ctx, sizeof *t);
    if (!t) return LP2P_ERR_NOMEM;
    t->base.vt = &lp2p__tcp_vt;
    t->s = s, t->ctx = ctx, t->fd = fd;
    *out = &t->base;
    return LP2P_OK;
}

static void lp2p__tcp_fd_drop(lp2p__sched *s, int fd, bool registered) {
    if (registered) lp2p__fd_del(s, fd);
    close(fd);
}

/* ---- listener --------------------------------------------------------------------------------- */
struct lp2p__tcp_listener {
    lp2p__sched *s;
    lp2p__ctx *ctx;
    int fd;
    int waiting;
    bool closed;
};

LP2P__PRIV int lp2p__tcp_listen(lp2p__sched *s, const lp2p__ma *addr, lp2p__tcp_listener **out, lp2p__ma *bound) {
    lp2p__ctx *ctx = lp2p__sched_ctx(s);
    struct sockaddr_storage ss;
    socklen_t sl;
    char text[LP2P__MA_STRLEN];
    size_t off = 0, vn;
    uint32_t code;
    const uint8_t *v;
    /* exactly /ip4|ip6/<a>/tcp/<port>: anything after it is not ours to serve */
    if (lp2p__tcp_ma_to_sa(addr, &ss, &sl)) return LP2P_ERR_BADADDR;
    lp2p__ma_next(addr, &off, &code, &v, &vn), lp2p__ma_next(addr, &off, &code, &v, &vn);
    if (off != addr->len) return LP2P_ERR_BADADDR;
    lp2p__ma_str(addr, text, sizeof text);
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        LP2P__WARN(ctx, LP2P_ERR_IO, "tcp listen %s: socket: %s", text, strerror(errno));
        return LP2P_ERR_IO;
    }
    lp2p__tcp_sockopt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
#ifdef SO_REUSEPORT
    lp2p__tcp_sockopt(fd, SOL_SOCKET, SO_REUSEPORT, 1); /* dials from this port (hole punching) */
#endif
    if (ss.ss_family == AF_INET6) lp2p__tcp_sockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1); /* as go: v4 and v6 apart */
    lp2p__tcp_sockopt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
    const char *step = NULL;
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0) step = "bind";
    else if (listen(fd, LP2P__TCP_BACKLOG) < 0) step = "listen";
    else if (sl = sizeof ss, getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) step = "getsockname";
    if (step) {
        LP2P__WARN(ctx, LP2P_ERR_IO, "tcp listen %s: %s: %s", text, step, strerror(errno));
        close(fd);
        return LP2P_ERR_IO;
    }
    int rc = lp2p__fd_add(s, fd);
    if (rc) {
        close(fd);
        return rc;
    }
    lp2p__tcp_listener *l = (lp2p__tcp_listener *)lp2p__zalloc(ctx, sizeof *l);
    if (!l) {
        lp2p__tcp_fd_drop(s, fd, true);
        return LP2P_ERR_NOMEM;
    }
    l->s = s, l->ctx = ctx, l->fd = fd;
    if (bound) lp2p__tcp_sa_to_ma(&ss, bound);
    *out = l;
    return LP2P_OK;
}

static void lp2p__tcp_listener_destroy(lp2p__tcp_listener *l) { lp2p__free(l->ctx, l, sizeof *l); }

LP2P__PRIV int lp2p__tcp_accept(lp2p__tcp_listener *l, lp2p__pipe **out, lp2p__ma *remote, int64_t deadline) {
    if (l->closed) return LP2P_ERR_CLOSED;
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            lp2p__tcp_sockopt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
            int rc = lp2p__fd_add(l->s, fd);
            if (rc) {
                close(fd);
                return rc;
            }
            if ((rc = lp2p__tcp_pipe_new(l->s, fd, out))) {
                lp2p__tcp_fd_drop(l->s, fd, true);
                return rc;
            }
            if (remote) lp2p__tcp_sa_to_ma(&ss, remote);
            return LP2P_OK;
        }
        int e = errno;
        /* accept(2): a connection that died in the queue, or a pending network error, is
         * not the listener's failure: take the next one */
        if (e == EINTR || e == ECONNABORTED || e == EPROTO || e == ENETDOWN || e == ENOPROTOOPT || e == EHOSTDOWN ||
            e == EHOSTUNREACH || e == EOPNOTSUPP || e == ENETUNREACH)
            continue;
        if (e != EAGAIN && e != EWOULDBLOCK) {
            LP2P__WARN(l->ctx, LP2P_ERR_IO, "tcp accept: %s", strerror(e));
            return e == ENOMEM || e == ENOBUFS ? LP2P_ERR_NOMEM : LP2P_ERR_IO;
        }
        l->waiting++;
        int rc = lp2p__wait_fd(l->s, l->fd, LP2P__IN, deadline);
        l->waiting--;
        if (l->closed) {
            if (l->waiting == 0) lp2p__tcp_listener_destroy(l);
            return LP2P_ERR_CLOSED;
        }
        if (rc) return rc;
    }
}

LP2P__PRIV void lp2p__tcp_listener_free(lp2p__tcp_listener *l) {
    if (!l) return;
    int fd = l->fd;
    lp2p__sched *s = l->s;
    bool free_now = l->waiting == 0;
    l->closed = true;
    l->fd = -1;
    if (free_now) lp2p__tcp_listener_destroy(l);
    lp2p__fd_del(s, fd); /* wakes a parked accept with ERR_CLOSED */
    close(fd);
}

/* ---- dialing ------------------------------------------------------------------------------------ */
/* Wait for a non-blocking connect to finish. */
static int lp2p__tcp_connect_wait(lp2p__sched *s, int fd, int64_t deadline) {
    for (;;) {
        int rc = lp2p__wait_fd(s, fd, LP2P__OUT, deadline);
        if (rc) return rc;
        int err = 0;
        socklen_t el = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0) err = errno;
        if (err) return lp2p__tcp_connect_err(err);
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) return LP2P_OK;
        if (errno != ENOTCONN) return lp2p__tcp_connect_err(errno);
        /* woken early: still connecting */
    }
}

static int lp2p__tcp_bind_port(int fd, int family, int port) {
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sl;
    lp2p__tcp_sockopt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
#ifdef SO_REUSEPORT
    lp2p__tcp_sockopt(fd, SOL_SOCKET, SO_REUSEPORT, 1);
#endif
    if (family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6, s6->sin6_port = htons((uint16_t)port), sl = sizeof *s6;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET, s4->sin_port = htons((uint16_t)port), sl = sizeof *s4;
    }
    return bind(fd, (struct sockaddr *)&ss, sl) == 0 ? LP2P_OK : LP2P_ERR_IO;
}

static int lp2p__tcp_dial_one(lp2p__sched *s, const lp2p__ma *addr, int reuse_port, lp2p__pipe **out, lp2p__ma *local,
                              lp2p__ma *remote, int64_t deadline) {
    struct sockaddr_storage ss;
    socklen_t sl;
    if (lp2p__tcp_ma_to_sa(addr, &ss, &sl)) return LP2P_ERR_BADADDR;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return lp2p__tcp_connect_err(errno);
    lp2p__tcp_sockopt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
    if (reuse_port > 0 && reuse_port <= 65535 && lp2p__tcp_bind_port(fd, ss.ss_family, reuse_port)) {
        int e = errno;
        close(fd);
        LP2P__DEBUG(lp2p__sched_ctx(s), "tcp dial: bind to port %d: %s", reuse_port, strerror(e));
        return LP2P_ERR_IO;
    }
    int rc = lp2p__fd_add(s, fd);
    if (rc) {
        close(fd);
        return rc;
    }
    if (connect(fd, (struct sockaddr *)&ss, sl) < 0) {
        if (errno == EINPROGRESS || errno == EINTR) rc = lp2p__tcp_connect_wait(s, fd, deadline);
        else rc = lp2p__tcp_connect_err(errno);
    }
    if (rc == LP2P_OK) rc = lp2p__tcp_pipe_new(s, fd, out);
    if (rc) {
        lp2p__tcp_fd_drop(s, fd, true);
        return rc;
    }
    if (local) {
        struct sockaddr_storage ls;
        socklen_t ll = sizeof ls;
        if (getsockname(fd, (struct sockaddr *)&ls, &ll) == 0) lp2p__tcp_sa_to_ma(&ls, local);
        else local->len = 0;
    }
    if (remote) lp2p__tcp_sa_to_ma(&ss, remote);
    return LP2P_OK;
}

LP2P__PRIV int lp2p__tcp_dial(lp2p__sched *s, const lp2p__ma *addr, int reuse_port, lp2p__pipe **out, lp2p__ma *local,
                              lp2p__ma *remote, int64_t deadline) {
    lp2p__ma targets[LP2P__DIAL_MAX];
    size_t off = 0, vn;
    uint32_t code;
    const uint8_t *v;
    int n = 1, rc = LP2P_ERR_UNREACHABLE;
    if (!lp2p__ma_is_tcp(addr) || !lp2p__ma_next(addr, &off, &code, &v, &vn)) return LP2P_ERR_BADADDR;
    if (code == LP2P__MA_DNS || code == LP2P__MA_DNS4 || code == LP2P__MA_DNS6) {
        n = lp2p__dns_resolve(s, addr, targets, LP2P__DIAL_MAX, deadline);
        if (n < 0) return n;
    } else {
        targets[0] = *addr;
    }
    for (int i = 0; i < n; i++) { /* in resolver order (RFC 6724 sorting by getaddrinfo) */
        rc = lp2p__tcp_dial_one(s, &targets[i], reuse_port, out, local, remote, deadline);
        if (rc == LP2P_OK || rc == LP2P_ERR_TIMEOUT || rc == LP2P_ERR_CANCELED || rc == LP2P_ERR_WOULDBLOCK) break;
    }
    return rc;
}

/* ---- DNS: getaddrinfo on a detached thread -------------------------------------------------------
 * The request is shared by the waiting task (loop thread) and the worker thread, guarded by mu;
 * exactly one of them frees it (plain malloc/free: the worker may outlive the host and its
 * allocator):
 *   - the worker, if the waiter gave up before the answer (it then never touches the scheduler);
 *   - the posted callback, if the waiter gave up after the worker posted;
 *   - the waiter otherwise.
 * The worker posts only while the waiter still waits, so the scheduler is alive at that time. */
typedef struct lp2p__dns_req {
    pthread_mutex_t mu;
    lp2p__sched *s;
    char name[256];
    int family;
    bool waiter_gone, finished, posted, done; /* under mu */
    int n;
    struct sockaddr_storage res[LP2P__DNS_MAX];
    lp2p__waitq wq; /* loop thread only */
} lp2p__dns_req;

static void lp2p__dns_req_free(lp2p__dns_req *r) {
    pthread_mutex_destroy(&r->mu);
    free(r);
}

static void lp2p__dns_done(void *arg) { /* runs as a task on the loop thread */
    lp2p__dns_req *r = (lp2p__dns_req *)arg;
    pthread_mutex_lock(&r->mu);
    r->done = true;
    bool gone = r->waiter_gone;
    pthread_mutex_unlock(&r->mu);
    if (gone) lp2p__dns_req_free(r);
    else lp2p__waitq_wake_all(r->s, &r->wq);
}

static void lp2p__dns_collect(lp2p__dns_req *r, const struct addrinfo *ai) {
    for (; ai && r->n < LP2P__DNS_MAX; ai = ai->ai_next) {
        if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) || ai->ai_addrlen > sizeof r->res[0]) continue;
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof ss);
        memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
        bool dup = false;
        for (int i = 0; i < r->n && !dup; i++) dup = memcmp(&r->res[i], &ss, sizeof ss) == 0;
        if (!dup) r->res[r->n++] = ss;
    }
}

static void *lp2p__dns_thread(void *arg) {
    lp2p__dns_req *r = (lp2p__dns_req *)arg;
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = r->family;
    hints.ai_socktype = SOCK_STREAM; /* no AI_ADDRCONFIG: it hides ::1/127.0.0.1 on loopback-only hosts */
    if (getaddrinfo(r->name, NULL, &hints, &ai) == 0) {
        lp2p__dns_collect(r, ai);
        freeaddrinfo(ai);
    }
    pthread_mutex_lock(&r->mu);
    if (r->waiter_gone) {
        pthread_mutex_unlock(&r->mu);
        lp2p__dns_req_free(r);
        return NULL;
    }
    r->finished = true;
    r->posted = lp2p__sched_post(r->s, lp2p__dns_done, r) == LP2P_OK;
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* Results are ready to read (and the waiter owns r) when the callback ran, or the worker
 * finished but could not post. */
static bool lp2p__dns_ready(lp2p__dns_req *r) { return r->done || (r->finished && !r->posted); }

/* Wait for the worker; returns OK (r owned by the caller) or an error (r handed off). */
static int lp2p__dns_wait(lp2p__sched *s, lp2p__dns_req *r, int64_t deadline) {
    for (;;) {
        pthread_mutex_lock(&r->mu);
        bool ready = lp2p__dns_ready(r);
        pthread_mutex_unlock(&r->mu);
        if (ready) return LP2P_OK;
        /* short slices: also notices a worker whose post failed */
        int rc = lp2p__waitq_wait(s, &r->wq, lp2p__deadline_min(deadline, lp2p_deadline_in(100)));
        if (rc == LP2P_ERR_TIMEOUT && (deadline < 0 || lp2p_now() < deadline)) continue;
        if (rc == LP2P_OK) continue;
        pthread_mutex_lock(&r->mu);
        ready = lp2p__dns_ready(r);
        if (!ready) r->waiter_gone = true; /* the worker or the callback frees r */
        pthread_mutex_unlock(&r->mu);
        return ready ? LP2P_OK : rc;
    }
}

LP2P__PRIV int lp2p__dns_resolve(lp2p__sched *s, const lp2p__ma *addr, lp2p__ma *out, int max, int64_t deadline) {
    size_t off = 0, vn;
    uint32_t code;
    const uint8_t *v;
    if (max <= 0) return LP2P_ERR_INVALID;
    if (!lp2p__ma_next(addr, &off, &code, &v, &vn)) return LP2P_ERR_BADADDR;
    if ((code != LP2P__MA_DNS && code != LP2P__MA_DNS4 && code != LP2P__MA_DNS6) || vn >= 256) return LP2P_ERR_BADADDR;
    lp2p__dns_req *r = (lp2p__dns_req *)calloc(1, sizeof *r);
    if (!r) return LP2P_ERR_NOMEM;
    pthread_mutex_init(&r->mu, NULL);
    r->s = s;
    memcpy(r->name, v, vn);
    r->family = code == LP2P__MA_DNS4 ? AF_INET : code == LP2P__MA_DNS6 ? AF_INET6 : AF_UNSPEC;
    pthread_attr_t attr;
    pthread_t th;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int perr = pthread_create(&th, &attr, lp2p__dns_thread, r);
    pthread_attr_destroy(&attr);
    if (perr) {
        lp2p__dns_req_free(r);
        LP2P__WARN(lp2p__sched_ctx(s), LP2P_ERR_NOMEM, "dns: cannot start resolver thread: %s", strerror(perr));
        return LP2P_ERR_NOMEM;
    }
    int rc = lp2p__dns_wait(s, r, deadline);
    if (rc) return rc;
    /* /dnsX/<name>/rest -> /ipY/<addr>/rest for each answer */
    size_t rest = addr->len - off;
    int n = 0;
    for (int i = 0; i < r->n && n < max; i++) {
        lp2p__ma m;
        lp2p__tcp_sa_to_ma(&r->res[i], &m);
        m.len = (uint16_t)(m.b[0] == LP2P__MA_IP4 ? 5 : 17); /* keep only the ip component */
        if (m.len + rest > LP2P__MA_MAX) continue;
        memcpy(m.b + m.len, addr->b + off, rest);
        m.len = (uint16_t)(m.len + rest);
        out[n++] = m;
    }
    lp2p__dns_req_free(r);
    if (n == 0) LP2P__DEBUG(lp2p__sched_ctx(s), "dns: no usable address for %.*s", (int)vn, (const char *)v);
    return n > 0 ? n : LP2P_ERR_UNREACHABLE;
}

/* ---- in-memory pipe pair ----------------------------------------------------------------------- */
typedef struct lp2p__mem_dir { /* one direction: a ring buffer that grows up to LP2P__MEMPIPE_MAX */
    uint8_t *buf;
    size_t cap, head, len;
    bool eof; /* the writer sent FIN */
    lp2p__waitq readers, writers;
} lp2p__mem_dir;

typedef struct lp2p__mem_shared {
    lp2p__sched *s;
    lp2p__ctx *ctx;
    lp2p__mem_dir dir[2]; /* dir[i] is written by side i */
    bool reset[2], gone[2];
    int refs;
} lp2p__mem_shared;

typedef struct lp2p__mempipe {
    lp2p__pipe base;
    lp2p__mem_shared *sh;
    int side;
    int waiting;
    bool closed;
} lp2p__mempipe;

static void lp2p__mem_unref(lp2p__mem_shared *sh) {
    if (--sh->refs > 0) return;
    for (int i = 0; i < 2; i++) lp2p__free(sh->ctx, sh->dir[i].buf, sh->dir[i].cap);
    lp2p__free(sh->ctx, sh, sizeof *sh);
}

static void lp2p__mem_drop(lp2p__mempipe *m) {
    lp2p__mem_shared *sh = m->sh;
    lp2p__free(sh->ctx, m, sizeof *m);
    lp2p__mem_unref(sh);
}

static int lp2p__mem_wait(lp2p__mempipe *m, lp2p__waitq *q, int64_t deadline) {
    m->waiting++;
    int rc = lp2p__waitq_wait(m->sh->s, q, deadline);
    m->waiting--;
    if (m->closed) {
        if (m->waiting == 0) lp2p__mem_drop(m);
        return LP2P_ERR_CLOSED;
    }
    return rc;
}

static void lp2p__mem_wake_all(lp2p__mem_shared *sh) {
    for (int i = 0; i < 2; i++) {
        lp2p__waitq_wake_all(sh->s, &sh->dir[i].readers);
        lp2p__waitq_wake_all(sh->s, &sh->dir[i].writers);
    }
}

static ptrdiff_t lp2p__mem_read(lp2p__pipe *p, void *buf, size_t cap, int64_t deadline) {
    lp2p__mempipe *m = (lp2p__mempipe *)p;
    lp2p__mem_shared *sh = m->sh;
    int peer = 1 - m->side;
    lp2p__mem_dir *d = &sh->dir[peer];
    if (cap == 0) return LP2P_ERR_INVALID;
    for (;;) {
        if (sh->reset[peer]) return LP2P_ERR_RESET; /* like TCP RST: unread data is lost */
        if (d->len > 0) {
            size_t n = LP2P__MIN(cap, d->len), first = LP2P__MIN(n, d->cap - d->head);
            memcpy(buf, d->buf + d->head, first);
            memcpy((uint8_t *)buf + first, d->buf, n - first);
            d->head = (d->head + n) % d->cap, d->len -= n;
            lp2p__waitq_wake_all(sh->s, &d->writers);
            return (ptrdiff_t)n;
        }
        if (d->eof) return 0;
        int rc = lp2p__mem_wait(m, &d->readers, deadline);
        if (rc) return rc;
    }
}

/* Make room for at least want more bytes (capped at the limit); linearises the ring. */
static int lp2p__mem_grow(lp2p__mem_shared *sh, lp2p__mem_dir *d, size_t want) {
    size_t need = LP2P__MIN(d->len + want, (size_t)LP2P__MEMPIPE_MAX);
    if (need <= d->cap) return LP2P_OK;
    size_t cap = d->cap ? d->cap : 4096;
    while (cap < need) cap *= 2;
    if (cap > LP2P__MEMPIPE_MAX) cap = LP2P__MEMPIPE_MAX;
    uint8_t *nb = (uint8_t *)lp2p__alloc(sh->ctx, cap);
    if (!nb) return LP2P_ERR_NOMEM;
    size_t first = d->len ? LP2P__MIN(d->len, d->cap - d->head) : 0;
    if (first) memcpy(nb, d->buf + d->head, first);
    if (d->len > first) memcpy(nb + first, d->buf, d->len - first);
    lp2p__free(sh->ctx, d->buf, d->cap);
    d->buf = nb, d->cap = cap, d->head = 0;
    return LP2P_OK;
}

static int lp2p__mem_write(lp2p__pipe *p, const void *buf, size_t len, int64_t deadline) {
    lp2p__mempipe *m = (lp2p__mempipe *)p;
    lp2p__mem_shared *sh = m->sh;
    int peer = 1 - m->side;
    lp2p__mem_dir *d = &sh->dir[m->side];
    const uint8_t *b = (const uint8_t *)buf;
    if (d->eof) return LP2P_ERR_CLOSED;
    while (len > 0) {
        if (sh->reset[peer] || sh->gone[peer]) return LP2P_ERR_RESET; /* nobody will read it */
        if (d->len < LP2P__MEMPIPE_MAX) {
            if (lp2p__mem_grow(sh, d, len)) return LP2P_ERR_NOMEM;
            size_t k = LP2P__MIN(len, d->cap - d->len), tail = (d->head + d->len) % d->cap;
            size_t first = LP2P__MIN(k, d->cap - tail);
            memcpy(d->buf + tail, b, first);
            memcpy(d->buf, b + first, k - first);
            d->len += k, b += k, len -= k;
            lp2p__waitq_wake_all(sh->s, &d->readers);
            continue;
        }
        int rc = lp2p__mem_wait(m, &d->writers, deadline);
        if (rc) return rc;
        if (d->eof) return LP2P_ERR_CLOSED; /* close_write by another task meanwhile */
    }
    return LP2P_OK;
}

static int lp2p__mem_close_write(lp2p__pipe *p) {
    lp2p__mempipe *m = (lp2p__mempipe *)p;
    m->sh->dir[m->side].eof = true;
    lp2p__waitq_wake_all(m->sh->s, &m->sh->dir[m->side].readers);
    return LP2P_OK;
}

static void lp2p__mem_release(lp2p__mempipe *m, bool abort) {
    lp2p__mem_shared *sh = m->sh;
    bool free_now = m->waiting == 0; /* else the last parked call drops it */
    sh->dir[m->side].eof = true;
    if (abort) sh->reset[m->side] = true;
    sh->gone[m->side] = true;
    m->closed = true;
    sh->refs++; /* keep sh alive while waking */
    if (free_now) lp2p__mem_drop(m);
    lp2p__mem_wake_all(sh);
    lp2p__mem_unref(sh);
}

static void lp2p__mem_reset(lp2p__pipe *p) { lp2p__mem_release((lp2p__mempipe *)p, true); }
static void lp2p__mem_close(lp2p__pipe *p) { lp2p__mem_release((lp2p__mempipe *)p, false); }

static const lp2p__pipe_vt lp2p__mem_vt = {lp2p__mem_read, lp2p__mem_write, lp2p__mem_close_write, lp2p__mem_reset,
                                           lp2p__mem_close, NULL};

LP2P__PRIV int lp2p__mempipe_pair(lp2p__sched *s, lp2p__pipe **a, lp2p__pipe **b) {
    lp2p__ctx *ctx = lp2p__sched_ctx(s);
    lp2p__mem_shared *sh = (lp2p__mem_shared *)lp2p__zalloc(ctx, sizeof *sh);
    lp2p__mempipe *m[2] = {NULL, NULL};
    if (sh) m[0] = (lp2p__mempipe *)lp2p__zalloc(ctx, sizeof *m[0]);
    if (m[0]) m[1] = (lp2p__mempipe *)lp2p__zalloc(ctx, sizeof *m[1]);
    if (!m[1]) {
        lp2p__free(ctx, m[0], sizeof *m[0]);
        lp2p__free(ctx, sh, sizeof *sh);
        return LP2P_ERR_NOMEM;
    }
    sh->s = s, sh->ctx = ctx, sh->refs = 2;
    for (int i = 0; i < 2; i++) m[i]->base.vt = &lp2p__mem_vt, m[i]->sh = sh, m[i]->side = i;
    *a = &m[0]->base;
    *b = &m[1]->base;
    return LP2P_OK;
}
