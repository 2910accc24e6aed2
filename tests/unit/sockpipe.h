/* sockpipe.h - a blocking test pipe over one end of a socketpair(AF_UNIX), for layer tests
 * that must run without the runtime: two pthreads drive the two ends. Deadlines are ignored;
 * instead every socket has a 10 s SO_RCVTIMEO/SO_SNDTIMEO so a broken test fails with
 * ERR_TIMEOUT instead of hanging. Include after libp2p.h (implementation) and tests/test.h. */
#ifndef LP2P_TEST_SOCKPIPE_H
#define LP2P_TEST_SOCKPIPE_H
#include <errno.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

typedef struct t_sockpipe {
    lp2p__pipe base;
    int fd;
    int writes;          /* number of write calls (to check "one write" rules) */
    size_t written;      /* bytes written */
} t_sockpipe;

static ptrdiff_t t_sock_read(lp2p__pipe *p, void *buf, size_t cap, int64_t deadline) {
    (void)deadline;
    t_sockpipe *s = (t_sockpipe *)p;
    for (;;) {
        ssize_t n = read(s->fd, buf, cap);
        if (n >= 0) return n;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return LP2P_ERR_TIMEOUT;
        if (errno == ECONNRESET) return LP2P_ERR_RESET;
        return LP2P_ERR_IO;
    }
}

static int t_sock_write(lp2p__pipe *p, const void *buf, size_t len, int64_t deadline) {
    (void)deadline;
    t_sockpipe *s = (t_sockpipe *)p;
    const uint8_t *b = (const uint8_t *)buf;
    s->writes++;
    s->written += len;
    while (len > 0) {
        ssize_t n = send(s->fd, b, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return LP2P_ERR_TIMEOUT;
            return errno == EPIPE || errno == ECONNRESET ? LP2P_ERR_RESET : LP2P_ERR_IO;
        }
        b += n, len -= (size_t)n;
    }
    return LP2P_OK;
}

static int t_sock_close_write(lp2p__pipe *p) {
    return shutdown(((t_sockpipe *)p)->fd, SHUT_WR) == 0 ? LP2P_OK : LP2P_ERR_IO;
}

static void t_sock_close(lp2p__pipe *p) {
    t_sockpipe *s = (t_sockpipe *)p;
    close(s->fd);
    free(s);
}

static const lp2p__pipe_vt t_sock_vt = {t_sock_read, t_sock_write, t_sock_close_write, t_sock_close, t_sock_close, NULL};

/* Two connected test pipes. */
static void t_sockpipe_pair(t_sockpipe **a, t_sockpipe **b) {
    int fds[2];
    struct timeval tv = {10, 0};
    int big = 4 << 20;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) abort();
    for (int i = 0; i < 2; i++) {
        setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fds[i], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        setsockopt(fds[i], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
        setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    }
    *a = (t_sockpipe *)calloc(1, sizeof **a);
    *b = (t_sockpipe *)calloc(1, sizeof **b);
    if (!*a || !*b) abort();
    (*a)->base.vt = &t_sock_vt, (*a)->fd = fds[0];
    (*b)->base.vt = &t_sock_vt, (*b)->fd = fds[1];
}

/* Run fn(arg) on a second thread; t_join waits for it. */
static pthread_t t_spawn(void *(*fn)(void *), void *arg) {
    pthread_t t;
    if (pthread_create(&t, NULL, fn, arg) != 0) abort();
    return t;
}
static void t_join(pthread_t t) { pthread_join(t, NULL); }

#endif
