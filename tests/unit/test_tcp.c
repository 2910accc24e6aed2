/* test_tcp.c - L3: TCP transport (loopback only), DNS for "localhost" (from /etc/hosts), and the
 * in-memory pipe pair. Every wait has a deadline; tasks are joined with deadlines. */
#define LIBP2P_IMPLEMENTATION
#include "libp2p.h"
#include "tests/test.h"

#define T_DEADLINE() lp2p_deadline_in(20000)

static lp2p__ctx ctx;
static lp2p__sched *sched;

static uint8_t pattern(size_t i) { return (uint8_t)(i * 7 + (i >> 9) * 13 + 1); }

static lp2p_task spawn(void (*fn)(void *), void *arg) {
    lp2p_task t = lp2p__spawn(sched, fn, arg);
    CHECK(t.id != 0);
    return t;
}

static void join(lp2p_task t) { CHECK_EQ(lp2p__task_join(sched, t, T_DEADLINE()), LP2P_OK); }

/* ---- echo: a server task echoes until EOF; a client writer and a client reader task -------- */
typedef struct echo {
    lp2p__tcp_listener *l;
    lp2p__pipe *client;
    size_t size;
    int server_rc, writer_rc, reader_rc;
    size_t got;
    bool data_ok;
    lp2p__ma remote;
} echo;

static void echo_server(void *arg) {
    echo *e = (echo *)arg;
    lp2p__pipe *p = NULL;
    static uint8_t buf[100000];
    e->server_rc = lp2p__tcp_accept(e->l, &p, &e->remote, T_DEADLINE());
    if (e->server_rc) return;
    for (;;) {
        ptrdiff_t n = lp2p__pipe_read(p, buf, sizeof buf, T_DEADLINE());
        if (n == 0) break;
        if (n < 0) {
            e->server_rc = (int)n;
            break;
        }
        int rc = lp2p__pipe_write(p, buf, (size_t)n, T_DEADLINE());
        if (rc) {
            e->server_rc = rc;
            break;
        }
    }
    if (!e->server_rc) e->server_rc = p->vt->close_write(p);
    p->vt->close(p);
}

static void echo_writer(void *arg) {
    echo *e = (echo *)arg;
    static uint8_t chunk[30000]; /* static: task stacks are small */
    size_t off = 0;
    while (off < e->size) {
        size_t n = LP2P__MIN(sizeof chunk, e->size - off);
        for (size_t i = 0; i < n; i++) chunk[i] = pattern(off + i);
        e->writer_rc = lp2p__pipe_write(e->client, chunk, n, T_DEADLINE());
        if (e->writer_rc) return;
        off += n;
    }
    e->writer_rc = e->client->vt->close_write(e->client);
}

static void echo_reader(void *arg) {
    echo *e = (echo *)arg;
    static uint8_t buf[7000]; /* odd size: both direct and buffered reads happen */
    e->data_ok = true;
    for (;;) {
        size_t cap = (e->got % 3 == 0) ? sizeof buf : 100; /* small reads go through the read buffer */
        ptrdiff_t n = lp2p__pipe_read(e->client, buf, cap, T_DEADLINE());
        if (n <= 0) {
            e->reader_rc = (int)n;
            return;
        }
        for (ptrdiff_t i = 0; i < n; i++)
            if (buf[i] != pattern(e->got + (size_t)i)) e->data_ok = false;
        e->got += (size_t)n;
    }
}

static void run_echo(const char *listen_text, size_t size) {
    lp2p__ma la, bound, local, remote;
    echo e;
    memset(&e, 0, sizeof e);
    e.size = size;
    CHECK_EQ(lp2p__ma_parse(listen_text, &la, NULL), LP2P_OK);
    CHECK_EQ(lp2p__tcp_listen(sched, &la, &e.l, &bound), LP2P_OK);
    if (!e.l) return;
    CHECK(lp2p__ma_is_tcp(&bound) && lp2p__ma_is_loopback(&bound));
    CHECK(bound.len >= 2 && lp2p__be16(bound.b + bound.len - 2) != 0); /* port filled in */
    lp2p_task srv = spawn(echo_server, &e);
    CHECK_EQ(lp2p__tcp_dial(sched, &bound, 0, &e.client, &local, &remote, T_DEADLINE()), LP2P_OK);
    if (e.client) {
        CHECK(lp2p__ma_eq(&remote, &bound));
        CHECK(lp2p__ma_is_loopback(&local));
        CHECK(lp2p__tcp_pipe_fd(e.client) >= 0);
        lp2p_task w = spawn(echo_writer, &e), r = spawn(echo_reader, &e);
        join(w), join(r), join(srv);
        CHECK_EQ(e.writer_rc, LP2P_OK);
        CHECK_EQ(e.reader_rc, 0); /* clean EOF after the server's close_write */
        CHECK_EQ(e.got, size);
        CHECK(e.data_ok);
        CHECK_EQ(e.server_rc, LP2P_OK);
        CHECK(lp2p__ma_eq(&e.remote, &local)); /* the server saw our local address */
        e.client->vt->close(e.client);
    }
    lp2p__tcp_listener_free(e.l);
}

static void test_echo(void) {
    static const size_t sizes[] = {1, 65536, 8u << 20};
    for (size_t i = 0; i < 3; i++) {
        TEST("tcp echo over 127.0.0.1");
        run_echo("/ip4/127.0.0.1/tcp/0", sizes[i]);
        TEST("tcp echo over ::1");
        run_echo("/ip6/::1/tcp/0", sizes[i]);
    }
}

/* ---- a connected pair (accept + dial) for the smaller tests ----------------------------------- */
typedef struct pair {
    lp2p__tcp_listener *l;
    lp2p__ma bound;
    lp2p__pipe *srv, *cli;
} pair;

static void pair_accept(void *arg) {
    pair *p = (pair *)arg;
    CHECK_EQ(lp2p__tcp_accept(p->l, &p->srv, NULL, T_DEADLINE()), LP2P_OK);
}

static bool pair_open(pair *p) {
    lp2p__ma la;
    memset(p, 0, sizeof *p);
    lp2p__ma_parse("/ip4/127.0.0.1/tcp/0", &la, NULL);
    if (lp2p__tcp_listen(sched, &la, &p->l, &p->bound) != LP2P_OK) return false;
    lp2p_task t = spawn(pair_accept, p);
    CHECK_EQ(lp2p__tcp_dial(sched, &p->bound, 0, &p->cli, NULL, NULL, T_DEADLINE()), LP2P_OK);
    join(t);
    return p->srv && p->cli;
}

typedef struct blocked {
    lp2p__pipe *p;
    lp2p__tcp_listener *l;
    ptrdiff_t rc;
    bool started;
} blocked;

static void blocked_read(void *arg) {
    blocked *b = (blocked *)arg;
    uint8_t c;
    b->started = true;
    b->rc = lp2p__pipe_read(b->p, &c, 1, T_DEADLINE());
}

static void blocked_accept(void *arg) {
    blocked *b = (blocked *)arg;
    lp2p__pipe *p = NULL;
    b->started = true;
    b->rc = lp2p__tcp_accept(b->l, &p, NULL, T_DEADLINE());
}

/* let spawned tasks run until they park */
static void settle(void) {
    for (int i = 0; i < 5; i++) lp2p__sched_poll(sched, 10);
}

static void test_small(void) {
    pair p;
    uint8_t buf[64];
    TEST("tcp byte-at-a-time reads keep read-ahead, EOF after close_write, write after close_write");
    CHECK(pair_open(&p));
    if (!p.srv || !p.cli) return;
    CHECK_EQ(lp2p__pipe_write(p.cli, "hello world", 11, T_DEADLINE()), LP2P_OK);
    for (int i = 0; i < 11; i++) {
        CHECK_EQ(lp2p__pipe_read(p.srv, buf + i, 1, T_DEADLINE()), 1);
    }
    CHECK_MEM(buf, "hello world", 11);
    CHECK_EQ(lp2p__pipe_read(p.srv, buf, 0, T_DEADLINE()), LP2P_ERR_INVALID);
    CHECK_EQ(lp2p__pipe_read(p.srv, buf, 1, LP2P_NOWAIT), LP2P_ERR_TIMEOUT); /* nothing there */
    CHECK_EQ(p.cli->vt->close_write(p.cli), LP2P_OK);
    CHECK_EQ(lp2p__pipe_write(p.cli, "x", 1, T_DEADLINE()), LP2P_ERR_CLOSED);
    CHECK_EQ(lp2p__pipe_read(p.srv, buf, sizeof buf, T_DEADLINE()), 0);
    /* the other direction still works after our half-close */
    CHECK_EQ(lp2p__pipe_write(p.srv, "back", 4, T_DEADLINE()), LP2P_OK);
    CHECK_EQ(lp2p__pipe_read_full(p.cli, buf, 4, T_DEADLINE()), LP2P_OK);
    CHECK_MEM(buf, "back", 4);
    p.srv->vt->close(p.srv);
    CHECK_EQ(lp2p__pipe_read(p.cli, buf, sizeof buf, T_DEADLINE()), 0);
    p.cli->vt->close(p.cli);
    lp2p__tcp_listener_free(p.l);

    TEST("tcp reset is seen as ERR_RESET");
    CHECK(pair_open(&p));
    if (!p.srv || !p.cli) return;
    blocked b = {p.srv, NULL, 1, false};
    lp2p_task t = spawn(blocked_read, &b);
    settle();
    CHECK(b.started);
    p.cli->vt->reset(p.cli);
    join(t);
    CHECK_EQ(b.rc, LP2P_ERR_RESET);
    /* writing into the reset connection fails too (EPIPE/ECONNRESET -> ERR_RESET), no SIGPIPE */
    int wrc = LP2P_OK;
    for (int i = 0; i < 100 && wrc == LP2P_OK; i++) wrc = lp2p__pipe_write(p.srv, buf, sizeof buf, T_DEADLINE());
    CHECK_EQ(wrc, LP2P_ERR_RESET);
    p.srv->vt->close(p.srv);
    lp2p__tcp_listener_free(p.l);

    TEST("tcp cancel a task blocked in read -> ERR_CANCELED");
    CHECK(pair_open(&p));
    if (!p.srv || !p.cli) return;
    b = (blocked){p.cli, NULL, 1, false};
    t = spawn(blocked_read, &b);
    settle();
    CHECK(b.started);
    CHECK(lp2p__task_alive(sched, t));
    CHECK_EQ(lp2p__task_cancel(sched, t), LP2P_OK);
    join(t);
    CHECK_EQ(b.rc, LP2P_ERR_CANCELED);

    TEST("tcp close while another task is parked in read -> ERR_CLOSED");
    b = (blocked){p.cli, NULL, 1, false};
    t = spawn(blocked_read, &b);
    settle();
    p.cli->vt->close(p.cli);
    join(t);
    CHECK_EQ(b.rc, LP2P_ERR_CLOSED);
    CHECK_EQ(lp2p__pipe_read(p.srv, buf, sizeof buf, T_DEADLINE()), 0); /* FIN reached the peer */
    p.srv->vt->reset(p.srv);

    TEST("tcp accept deadline -> ERR_TIMEOUT; listener_free wakes accept with ERR_CLOSED");
    lp2p__pipe *none = NULL;
    CHECK_EQ(lp2p__tcp_accept(p.l, &none, NULL, lp2p_deadline_in(50)), LP2P_ERR_TIMEOUT);
    CHECK(none == NULL);
    b = (blocked){NULL, p.l, 1, false};
    t = spawn(blocked_accept, &b);
    settle();
    CHECK(b.started);
    lp2p__tcp_listener_free(p.l);
    join(t);
    CHECK_EQ(b.rc, LP2P_ERR_CLOSED);
}

static void test_dial_errors(void) {
    lp2p__ma la, bound, ma;
    lp2p__tcp_listener *l = NULL;
    lp2p__pipe *pp = NULL;
    TEST("tcp dial a closed port -> ERR_UNREACHABLE");
    lp2p__ma_parse("/ip4/127.0.0.1/tcp/0", &la, NULL);
    CHECK_EQ(lp2p__tcp_listen(sched, &la, &l, &bound), LP2P_OK);
    lp2p__tcp_listener_free(l);
    CHECK_EQ(lp2p__tcp_dial(sched, &bound, 0, &pp, NULL, NULL, T_DEADLINE()), LP2P_ERR_UNREACHABLE);
    CHECK(pp == NULL);
    lp2p__ma_parse("/ip6/::1/tcp/0", &la, NULL);
    CHECK_EQ(lp2p__tcp_listen(sched, &la, &l, &bound), LP2P_OK);
    lp2p__tcp_listener_free(l);
    CHECK_EQ(lp2p__tcp_dial(sched, &bound, 0, &pp, NULL, NULL, T_DEADLINE()), LP2P_ERR_UNREACHABLE);

    TEST("tcp rejects non-TCP addresses");
    static const char *bad_dial[] = {"/ip4/127.0.0.1/udp/1", "/ip4/127.0.0.1/tcp/1/ws", "/dnsaddr/localhost/tcp/1",
                                     "/unix/tmp/x"};
    for (size_t i = 0; i < 4; i++) {
        CHECK_EQ(lp2p__ma_parse(bad_dial[i], &ma, NULL), LP2P_OK);
        CHECK_EQ(lp2p__tcp_dial(sched, &ma, 0, &pp, NULL, NULL, T_DEADLINE()), LP2P_ERR_BADADDR);
    }
    static const char *bad_listen[] = {"/dns4/localhost/tcp/0", "/ip4/127.0.0.1/udp/0", "/ip4/127.0.0.1/tcp/0/ws"};
    for (size_t i = 0; i < 3; i++) {
        CHECK_EQ(lp2p__ma_parse(bad_listen[i], &ma, NULL), LP2P_OK);
        CHECK_EQ(lp2p__tcp_listen(sched, &ma, &l, NULL), LP2P_ERR_BADADDR);
    }
    CHECK_EQ(lp2p__ma_parse("/ip4/127.0.0.1/tcp/1", &ma, NULL), LP2P_OK);
    lp2p__ma out[2];
    CHECK_EQ(lp2p__dns_resolve(sched, &ma, out, 2, T_DEADLINE()), LP2P_ERR_BADADDR);
}

typedef struct dialer {
    lp2p__ma addr;
    int reuse;
    int rc;
    lp2p__pipe *p;
    lp2p__ma local;
} dialer;

static void dial_task(void *arg) {
    dialer *d = (dialer *)arg;
    d->rc = lp2p__tcp_dial(sched, &d->addr, d->reuse, &d->p, &d->local, NULL, T_DEADLINE());
}

static void test_dns_and_reuse(void) {
    lp2p__ma la, bound, ma, out[4];
    lp2p__tcp_listener *l = NULL;
    char text[LP2P__MA_STRLEN], want[LP2P__MA_STRLEN];
    TEST("dns_resolve /dns4/localhost and /dns/localhost (from /etc/hosts)");
    CHECK_EQ(lp2p__ma_parse("/dns4/localhost/tcp/4001/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN", &ma,
                            NULL),
             LP2P_OK);
    int n = lp2p__dns_resolve(sched, &ma, out, 4, T_DEADLINE());
    CHECK(n >= 1);
    if (n >= 1) {
        lp2p__ma_str(&out[0], text, sizeof text);
        CHECK_STR(text, "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN");
    }
    CHECK_EQ(lp2p__ma_parse("/dns/localhost/tcp/1", &ma, NULL), LP2P_OK);
    n = lp2p__dns_resolve(sched, &ma, out, 4, T_DEADLINE());
    CHECK(n >= 1);
    for (int i = 0; i < n; i++) CHECK(lp2p__ma_is_loopback(&out[i]) && lp2p__ma_is_tcp(&out[i]));

    TEST("dns_resolve with an expired deadline drops the late answer safely");
    for (int i = 0; i < 20; i++) {
        int rc = lp2p__dns_resolve(sched, &ma, out, 4, LP2P_NOWAIT);
        CHECK(rc == LP2P_ERR_TIMEOUT || rc >= 1);
    }
    for (int i = 0; i < 20; i++) lp2p__sched_poll(sched, 10); /* late answers arrive and are freed */

    TEST("tcp dial /dns4/localhost");
    lp2p__ma_parse("/ip4/127.0.0.1/tcp/0", &la, NULL);
    CHECK_EQ(lp2p__tcp_listen(sched, &la, &l, &bound), LP2P_OK);
    snprintf(want, sizeof want, "/dns4/localhost/tcp/%u", (unsigned)lp2p__be16(bound.b + 6));
    dialer d;
    memset(&d, 0, sizeof d);
    CHECK_EQ(lp2p__ma_parse(want, &d.addr, NULL), LP2P_OK);
    lp2p_task t = spawn(dial_task, &d); /* from a task this time */
    lp2p__pipe *srv = NULL;
    lp2p__ma remote;
    CHECK_EQ(lp2p__tcp_accept(l, &srv, &remote, T_DEADLINE()), LP2P_OK);
    join(t);
    CHECK_EQ(d.rc, LP2P_OK);
    CHECK(lp2p__ma_eq(&remote, &d.local));
    if (d.p) d.p->vt->close(d.p);
    if (srv) srv->vt->close(srv);

    TEST("tcp dial reusing the listen port (SO_REUSEPORT)");
    lp2p__tcp_listener *l2 = NULL;
    lp2p__ma bound2;
    CHECK_EQ(lp2p__tcp_listen(sched, &la, &l2, &bound2), LP2P_OK);
    memset(&d, 0, sizeof d);
    d.addr = bound2;
    d.reuse = lp2p__be16(bound.b + 6);
    t = spawn(dial_task, &d);
    srv = NULL;
    CHECK_EQ(lp2p__tcp_accept(l2, &srv, &remote, T_DEADLINE()), LP2P_OK);
    join(t);
    CHECK_EQ(d.rc, LP2P_OK);
    CHECK(d.local.len == 8 && lp2p__be16(d.local.b + 6) == d.reuse);
    CHECK(lp2p__ma_eq(&remote, &d.local));
    if (d.p) d.p->vt->close(d.p);
    if (srv) srv->vt->close(srv);
    lp2p__tcp_listener_free(l2);
    lp2p__tcp_listener_free(l);
}

/* ---- in-memory pipes ----------------------------------------------------------------------------- */
typedef struct mecho {
    lp2p__pipe *a, *b;
    size_t size, got;
    int wrc, rrc, erc;
    bool ok;
} mecho;

static void mem_echo_server(void *arg) { /* b echoes until EOF */
    mecho *m = (mecho *)arg;
    static uint8_t buf[50000];
    for (;;) {
        ptrdiff_t n = lp2p__pipe_read(m->b, buf, sizeof buf, T_DEADLINE());
        if (n <= 0) {
            m->erc = (int)n;
            break;
        }
        if ((m->erc = lp2p__pipe_write(m->b, buf, (size_t)n, T_DEADLINE()))) break;
    }
    m->b->vt->close_write(m->b);
}

static void mem_writer(void *arg) {
    mecho *m = (mecho *)arg;
    static uint8_t chunk[300000];
    for (size_t off = 0; off < m->size;) {
        size_t n = LP2P__MIN(sizeof chunk, m->size - off);
        for (size_t i = 0; i < n; i++) chunk[i] = pattern(off + i);
        if ((m->wrc = lp2p__pipe_write(m->a, chunk, n, T_DEADLINE()))) return;
        off += n;
    }
    m->wrc = m->a->vt->close_write(m->a);
}

static void mem_reader(void *arg) {
    mecho *m = (mecho *)arg;
    uint8_t buf[4093];
    m->ok = true;
    for (;;) {
        ptrdiff_t n = lp2p__pipe_read(m->a, buf, sizeof buf, T_DEADLINE());
        if (n <= 0) {
            m->rrc = (int)n;
            return;
        }
        for (ptrdiff_t i = 0; i < n; i++)
            if (buf[i] != pattern(m->got + (size_t)i)) m->ok = false;
        m->got += (size_t)n;
    }
}

typedef struct mwriter {
    lp2p__pipe *p;
    int rc;
} mwriter;

static void mem_big_write(void *arg) {
    mwriter *w = (mwriter *)arg;
    static uint8_t big[3u << 20];
    w->rc = lp2p__pipe_write(w->p, big, sizeof big, T_DEADLINE());
}

static void test_mempipe(void) {
    lp2p__pipe *a = NULL, *b = NULL;
    uint8_t buf[64];
    static const size_t sizes[] = {1, 65536, 8u << 20};
    for (size_t i = 0; i < 3; i++) {
        TEST("mempipe echo");
        CHECK_EQ(lp2p__mempipe_pair(sched, &a, &b), LP2P_OK);
        mecho m;
        memset(&m, 0, sizeof m);
        m.a = a, m.b = b, m.size = sizes[i];
        lp2p_task s = spawn(mem_echo_server, &m), w = spawn(mem_writer, &m), r = spawn(mem_reader, &m);
        join(w), join(r), join(s);
        CHECK_EQ(m.wrc, LP2P_OK);
        CHECK_EQ(m.rrc, 0);
        CHECK_EQ(m.erc, 0);
        CHECK_EQ(m.got, sizes[i]);
        CHECK(m.ok);
        a->vt->close(a);
        b->vt->close(b);
    }

    TEST("mempipe: EOF after close_write, buffered bytes first; writes after close_write fail");
    CHECK_EQ(lp2p__mempipe_pair(sched, &a, &b), LP2P_OK);
    CHECK_EQ(lp2p__pipe_write(a, "abc", 3, LP2P_NOWAIT), LP2P_OK);
    CHECK_EQ(a->vt->close_write(a), LP2P_OK);
    CHECK_EQ(lp2p__pipe_write(a, "d", 1, LP2P_NOWAIT), LP2P_ERR_CLOSED);
    CHECK_EQ(lp2p__pipe_read(b, buf, 2, LP2P_NOWAIT), 2);
    CHECK_EQ(lp2p__pipe_read(b, buf + 2, sizeof buf, LP2P_NOWAIT), 1);
    CHECK_MEM(buf, "abc", 3);
    CHECK_EQ(lp2p__pipe_read(b, buf, sizeof buf, LP2P_NOWAIT), 0);
    CHECK_EQ(lp2p__pipe_read(a, buf, sizeof buf, LP2P_NOWAIT), LP2P_ERR_TIMEOUT);
    CHECK_EQ(lp2p__pipe_write(b, "xy", 2, LP2P_NOWAIT), LP2P_OK); /* other direction open */
    CHECK_EQ(lp2p__pipe_read(a, buf, sizeof buf, LP2P_NOWAIT), 2);
    b->vt->close(b);
    CHECK_EQ(lp2p__pipe_read(a, buf, sizeof buf, LP2P_NOWAIT), 0);
    a->vt->close(a);

    TEST("mempipe: writer waits when 1 MiB is buffered; reset propagates as ERR_RESET");
    CHECK_EQ(lp2p__mempipe_pair(sched, &a, &b), LP2P_OK);
    mwriter w = {a, 1};
    lp2p_task t = spawn(mem_big_write, &w);
    settle();
    CHECK(lp2p__task_alive(sched, t)); /* 3 MiB does not fit: parked */
    CHECK_EQ(lp2p__pipe_read(b, buf, sizeof buf, LP2P_NOWAIT), (ptrdiff_t)sizeof buf);
    b->vt->reset(b);
    join(t);
    CHECK_EQ(w.rc, LP2P_ERR_RESET);
    CHECK_EQ(lp2p__pipe_read(a, buf, sizeof buf, LP2P_NOWAIT), LP2P_ERR_RESET);
    CHECK_EQ(lp2p__pipe_write(a, "x", 1, LP2P_NOWAIT), LP2P_ERR_RESET);
    a->vt->close(a);

    TEST("mempipe: reset drops unread data; writes to a closed peer fail");
    CHECK_EQ(lp2p__mempipe_pair(sched, &a, &b), LP2P_OK);
    CHECK_EQ(lp2p__pipe_write(a, "abc", 3, LP2P_NOWAIT), LP2P_OK);
    a->vt->reset(a);
    CHECK_EQ(lp2p__pipe_read(b, buf, sizeof buf, LP2P_NOWAIT), LP2P_ERR_RESET);
    b->vt->close(b);
    CHECK_EQ(lp2p__mempipe_pair(sched, &a, &b), LP2P_OK);
    b->vt->close(b);
    CHECK_EQ(lp2p__pipe_write(a, "abc", 3, LP2P_NOWAIT), LP2P_ERR_RESET);
    CHECK_EQ(lp2p__pipe_read(a, buf, sizeof buf, LP2P_NOWAIT), 0);
    a->vt->close(a);

    TEST("mempipe: cancel and concurrent close of a parked reader");
    CHECK_EQ(lp2p__mempipe_pair(sched, &a, &b), LP2P_OK);
    blocked bl = {a, NULL, 1, false};
    t = spawn(blocked_read, &bl);
    settle();
    CHECK(bl.started);
    CHECK_EQ(lp2p__task_cancel(sched, t), LP2P_OK);
    join(t);
    CHECK_EQ(bl.rc, LP2P_ERR_CANCELED);
    bl = (blocked){a, NULL, 1, false};
    t = spawn(blocked_read, &bl);
    settle();
    a->vt->close(a);
    join(t);
    CHECK_EQ(bl.rc, LP2P_ERR_CLOSED);
    CHECK_EQ(lp2p__pipe_read(b, buf, sizeof buf, LP2P_NOWAIT), 0);
    CHECK_EQ(lp2p__tcp_pipe_fd(b), -1);
    b->vt->close(b);
}

int main(void) {
    lp2p__ctx_init(&ctx, NULL, NULL, LP2P_LOG_ERROR);
    lp2p__sched_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    if (lp2p__sched_new(&ctx, &cfg, &sched) != LP2P_OK) {
        fprintf(stderr, "cannot create scheduler\n");
        return 1;
    }
    test_mempipe();
    test_small();
    test_dial_errors();
    test_dns_and_reuse();
    test_echo();
    lp2p__sched_free(sched);
    TEST_END();
}
