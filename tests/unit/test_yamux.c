/* test_yamux.c - L4: yamux sessions over an in-memory pipe pair (defined here, on the runtime's
 * wait queues): open/accept, echo 1 B / 64 KiB / 8 MiB both ways, 100 concurrent streams,
 * window exhaustion and auto-tuning, FIN/RST semantics, close with unread data, the 256-stream
 * ACK backlog, max_inbound, ping, keepalive timeout, GoAway, malformed frames from a raw peer,
 * late frames, session death with streams still held. Memory is checked with a counting
 * allocator: everything is returned once the scheduler is freed. */
#define LIBP2P_IMPLEMENTATION
#include "libp2p.h"
#include "tests/test.h"

/* ---- counting allocator and log capture ---- */
static long t_live_bytes, t_live_blocks;
static void *t_alloc(size_t n, void *u) {
    (void)u;
    t_live_bytes += (long)n, t_live_blocks++;
    return malloc(n);
}
static void t_free(void *p, size_t n, void *u) {
    (void)u;
    t_live_bytes -= (long)n, t_live_blocks--;
    free(p);
}
static int t_warn_limit, t_warn_protocol;
static void t_log(void *u, lp2p_log_level lv, int item, const char *msg, const char *file, int line) {
    (void)u, (void)file, (void)line;
    if (lv <= LP2P_LOG_WARN && item == LP2P_ERR_LIMIT) t_warn_limit++;
    if (lv <= LP2P_LOG_WARN && item == LP2P_ERR_PROTOCOL) t_warn_protocol++;
    if (getenv("T_VERBOSE")) fprintf(stderr, "  log: %s\n", msg);
}
static lp2p__ctx t_ctx;

/* ---- in-memory pipe pair: d[i] holds bytes flowing towards side i ---- */
typedef struct tm_dir {
    uint8_t *buf;
    size_t cap, head, len;
    bool eof, gone; /* eof: the writer closed; gone: the reader released its end */
    lp2p__waitq rq, wq;
} tm_dir;
typedef struct tm_shared {
    lp2p__sched *s;
    tm_dir d[2];
    int ends;
} tm_shared;
typedef struct tm_pipe {
    lp2p__pipe base;
    tm_shared *sh;
    int side;
    bool wclosed;
} tm_pipe;

static ptrdiff_t tm_read(lp2p__pipe *p, void *buf, size_t cap, int64_t deadline) {
    tm_pipe *m = (tm_pipe *)p;
    tm_dir *d = &m->sh->d[m->side];
    while (!d->len) {
        if (d->eof) return 0;
        int rc = lp2p__waitq_wait(m->sh->s, &d->rq, deadline);
        if (rc < 0) return rc;
    }
    size_t n = 0;
    while (n < cap && d->len) {
        size_t k = LP2P__MIN(cap - n, LP2P__MIN(d->len, d->cap - d->head));
        memcpy((uint8_t *)buf + n, d->buf + d->head, k);
        d->head = (d->head + k) % d->cap, d->len -= k, n += k;
    }
    lp2p__waitq_wake_all(m->sh->s, &d->wq);
    return (ptrdiff_t)n;
}

static int tm_write(lp2p__pipe *p, const void *buf, size_t len, int64_t deadline) {
    tm_pipe *m = (tm_pipe *)p;
    tm_dir *d = &m->sh->d[1 - m->side];
    const uint8_t *b = (const uint8_t *)buf;
    while (len) {
        if (m->wclosed) return LP2P_ERR_CLOSED;
        if (d->gone) return LP2P_ERR_RESET;
        if (d->len == d->cap) {
            int rc = lp2p__waitq_wait(m->sh->s, &d->wq, deadline);
            if (rc < 0) return rc;
            continue;
        }
        size_t tail = (d->head + d->len) % d->cap;
        size_t k = LP2P__MIN(len, LP2P__MIN(d->cap - d->len, d->cap - tail));
        memcpy(d->buf + tail, b, k);
        d->len += k, b += k, len -= k;
        lp2p__waitq_wake_all(m->sh->s, &d->rq);
    }
    return LP2P_OK;
}

static int tm_close_write(lp2p__pipe *p) {
    tm_pipe *m = (tm_pipe *)p;
    tm_dir *d = &m->sh->d[1 - m->side];
    m->wclosed = true;
    d->eof = true;
    lp2p__waitq_wake_all(m->sh->s, &d->rq);
    return LP2P_OK;
}

static void tm_close(lp2p__pipe *p) {
    tm_pipe *m = (tm_pipe *)p;
    tm_shared *sh = m->sh;
    tm_close_write(p);
    sh->d[m->side].gone = true;
    lp2p__waitq_wake_all(sh->s, &sh->d[m->side].wq);
    lp2p__waitq_wake_all(sh->s, &sh->d[m->side].rq);
    lp2p__free(&t_ctx, m, sizeof *m);
    if (--sh->ends == 0) {
        for (int i = 0; i < 2; i++) lp2p__free(&t_ctx, sh->d[i].buf, sh->d[i].cap);
        lp2p__free(&t_ctx, sh, sizeof *sh);
    }
}

static const lp2p__pipe_vt tm_vt = {tm_read, tm_write, tm_close_write, tm_close, tm_close, NULL};

static void tm_pair(lp2p__sched *s, size_t cap, lp2p__pipe **a, lp2p__pipe **b) {
    tm_shared *sh = (tm_shared *)lp2p__zalloc(&t_ctx, sizeof *sh);
    sh->s = s, sh->ends = 2;
    for (int i = 0; i < 2; i++) {
        sh->d[i].cap = cap;
        sh->d[i].buf = (uint8_t *)lp2p__alloc(&t_ctx, cap);
    }
    tm_pipe *pa = (tm_pipe *)lp2p__zalloc(&t_ctx, sizeof *pa), *pb = (tm_pipe *)lp2p__zalloc(&t_ctx, sizeof *pb);
    pa->base.vt = pb->base.vt = &tm_vt;
    pa->sh = pb->sh = sh;
    pa->side = 0, pb->side = 1;
    *a = &pa->base, *b = &pb->base;
}

/* ---- a session pair with a configurable stream handler ---- */
enum { H_ECHO, H_KEEP };
typedef struct tside {
    struct tenv *env;
    lp2p__yamux *y;
    int mode;
    lp2p__pipe *kept[64];
    int n_kept, n_streams;
    bool closed, free_on_close;
    int close_err;
} tside;
typedef struct tenv {
    lp2p__sched *s;
    tside a, b; /* a = client (dialer), b = server */
} tenv;

static void t_echo_task(void *arg) {
    lp2p__pipe *st = (lp2p__pipe *)arg;
    static uint8_t buf[70000];
    uint8_t *mine = (uint8_t *)malloc(sizeof buf);
    ptrdiff_t n;
    while ((n = lp2p__pipe_read(st, mine, sizeof buf, lp2p_deadline_in(20000))) > 0)
        if (lp2p__pipe_write(st, mine, (size_t)n, lp2p_deadline_in(20000)) < 0) break;
    free(mine);
    st->vt->close(st);
}

static void t_on_stream(void *user, lp2p__yamux *y, lp2p__pipe *st) {
    tside *sd = (tside *)user;
    (void)y;
    sd->n_streams++;
    if (sd->mode == H_ECHO) lp2p__spawn(sd->env->s, t_echo_task, st);
    else if (sd->n_kept < 64) sd->kept[sd->n_kept++] = st;
    else st->vt->reset(st);
}

static void t_on_close(void *user, lp2p__yamux *y, int err) {
    tside *sd = (tside *)user;
    sd->closed = true;
    sd->close_err = err;
    if (sd->free_on_close) { /* what a host does: drop the session from inside the callback */
        lp2p__yamux_free(y);
        sd->y = NULL;
    }
}

static void t_side_cfg(tside *sd, lp2p__yamux_cfg *c, bool client) {
    memset(c, 0, sizeof *c);
    c->is_client = client;
    c->on_stream = t_on_stream;
    c->on_close = t_on_close;
    c->user = sd;
}

static void t_env_init(tenv *e) {
    memset(e, 0, sizeof *e);
    e->a.env = e->b.env = e;
    CHECK_EQ(lp2p__sched_new(&t_ctx, NULL, &e->s), LP2P_OK);
}

/* Start both sessions; cfg tweaks through the optional callbacks. */
static void t_env_start(tenv *e, void (*tweak)(lp2p__yamux_cfg *a, lp2p__yamux_cfg *b)) {
    lp2p__pipe *pa, *pb;
    lp2p__yamux_cfg ca, cb;
    tm_pair(e->s, 1 << 20, &pa, &pb);
    t_side_cfg(&e->a, &ca, true);
    t_side_cfg(&e->b, &cb, false);
    if (tweak) tweak(&ca, &cb);
    CHECK_EQ(lp2p__yamux_new(e->s, pa, &ca, &e->a.y), LP2P_OK);
    CHECK_EQ(lp2p__yamux_new(e->s, pb, &cb, &e->b.y), LP2P_OK);
}

static void t_pump(lp2p__sched *s, int ms) {
    int64_t end = lp2p_now() + ms;
    while (lp2p_now() < end) lp2p__sched_poll(s, 1);
}

#define T_PUMP_UNTIL(s, cond, ms)                                              \
    do {                                                                       \
        int64_t t_end_ = lp2p_now() + (ms);                                    \
        while (!(cond) && lp2p_now() < t_end_) lp2p__sched_poll((s), 5);       \
    } while (0)

static void t_env_free(tenv *e) {
    for (int i = 0; i < e->a.n_kept; i++) e->a.kept[i]->vt->close(e->a.kept[i]);
    for (int i = 0; i < e->b.n_kept; i++) e->b.kept[i]->vt->close(e->b.kept[i]);
    if (e->a.y) lp2p__yamux_free(e->a.y);
    if (e->b.y) lp2p__yamux_free(e->b.y);
    t_pump(e->s, 20);
    lp2p__sched_free(e->s);
    CHECK_EQ(t_live_blocks, 0);
    CHECK_EQ(t_live_bytes, 0);
}

/* ---- helpers: patterns, writer tasks ---- */
static uint8_t t_pat(size_t i, unsigned seed) { return (uint8_t)(i * 131u + (i >> 9) + seed * 17u); }
static void t_fill(uint8_t *b, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) b[i] = t_pat(i, seed);
}

typedef struct twriter {
    lp2p__pipe *st;
    const uint8_t *buf;
    size_t len, piece, written;
    int rc;
    bool fin, done;
} twriter;

static void t_writer_task(void *arg) {
    twriter *w = (twriter *)arg;
    w->rc = LP2P_OK;
    while (w->written < w->len) {
        size_t k = LP2P__MIN(w->piece ? w->piece : w->len, w->len - w->written);
        w->rc = lp2p__pipe_write(w->st, w->buf + w->written, k, lp2p_deadline_in(20000));
        if (w->rc < 0) break;
        w->written += k;
    }
    if (w->fin && w->rc == LP2P_OK) w->rc = w->st->vt->close_write(w->st);
    w->done = true;
}

/* Read until EOF (or error) into out (cap bytes); returns total or error. */
static ptrdiff_t t_read_all(lp2p__pipe *st, uint8_t *out, size_t cap, int ms) {
    size_t n = 0;
    int64_t dl = lp2p_deadline_in(ms);
    for (;;) {
        ptrdiff_t r = lp2p__pipe_read(st, out + n, cap - n > 0 ? cap - n : 1, dl);
        if (r == 0) return (ptrdiff_t)n;
        if (r < 0) return r;
        n += (size_t)r;
        if (n == cap) {
            uint8_t extra;
            r = lp2p__pipe_read(st, &extra, 1, dl);
            return r == 0 ? (ptrdiff_t)n : LP2P_ERR_MSGSIZE;
        }
    }
}

/* ---- tests ---- */
static void t_echo_size(tenv *e, lp2p__yamux *opener, size_t len) {
    uint8_t *src = (uint8_t *)malloc(len + 1), *dst = (uint8_t *)malloc(len + 1);
    t_fill(src, len, (unsigned)len);
    lp2p__pipe *st = NULL;
    CHECK_EQ(lp2p__yamux_open(opener, &st, lp2p_deadline_in(5000)), LP2P_OK);
    twriter w = {.st = st, .buf = src, .len = len, .piece = 100000, .fin = true};
    lp2p__spawn(e->s, t_writer_task, &w);
    ptrdiff_t got = t_read_all(st, dst, len, 30000);
    CHECK_EQ(got, (ptrdiff_t)len);
    CHECK(got == (ptrdiff_t)len && memcmp(src, dst, len) == 0);
    T_PUMP_UNTIL(e->s, w.done, 5000);
    CHECK_EQ(w.rc, LP2P_OK);
    st->vt->close(st);
    free(src), free(dst);
}

static void test_echo(void) {
    TEST("open/accept and echo 1 B, 64 KiB, 8 MiB both ways");
    tenv e;
    t_env_init(&e);
    e.a.mode = e.b.mode = H_ECHO;
    t_env_start(&e, NULL);
    static const size_t sizes[] = {1, 65536, 8u << 20};
    for (size_t i = 0; i < LP2P__COUNT(sizes); i++) {
        t_echo_size(&e, e.a.y, sizes[i]);
        t_echo_size(&e, e.b.y, sizes[i]);
    }
    CHECK_EQ(e.b.n_streams, 3);
    CHECK_EQ(e.a.n_streams, 3);
    T_PUMP_UNTIL(e.s, lp2p__yamux_num_streams(e.a.y) == 0 && lp2p__yamux_num_streams(e.b.y) == 0, 2000);
    CHECK_EQ(lp2p__yamux_num_streams(e.a.y), 0);
    CHECK_EQ(lp2p__yamux_num_streams(e.b.y), 0);
    CHECK(!e.a.closed && !e.b.closed);
    t_env_free(&e);
}

typedef struct tconc {
    tenv *e;
    int idx, rc;
    bool done;
} tconc;

static void t_conc_task(void *arg) {
    tconc *c = (tconc *)arg;
    enum { N = 20000 };
    uint8_t src[N], dst[N];
    lp2p__pipe *st;
    c->rc = lp2p__yamux_open(c->e->a.y, &st, lp2p_deadline_in(5000));
    if (c->rc == LP2P_OK) {
        t_fill(src, N, (unsigned)c->idx);
        for (size_t off = 0; off < N && c->rc == LP2P_OK; off += 1000) {
            c->rc = lp2p__pipe_write(st, src + off, 1000, lp2p_deadline_in(10000));
            lp2p__yield(c->e->s); /* interleave with the other streams */
        }
        if (c->rc == LP2P_OK) c->rc = st->vt->close_write(st);
        ptrdiff_t got = c->rc ? c->rc : t_read_all(st, dst, N, 10000);
        if (got != N || memcmp(src, dst, N) != 0) c->rc = got < 0 ? (int)got : -100;
        st->vt->close(st);
    }
    c->done = true;
}

static void test_concurrent(void) {
    TEST("100 concurrent streams with interleaved data");
    tenv e;
    t_env_init(&e);
    e.b.mode = H_ECHO;
    t_env_start(&e, NULL);
    static tconc c[100];
    for (int i = 0; i < 100; i++) {
        c[i] = (tconc){.e = &e, .idx = i};
        lp2p__spawn(e.s, t_conc_task, &c[i]);
    }
    int done = 0;
    int64_t end = lp2p_now() + 30000;
    while (done < 100 && lp2p_now() < end) {
        lp2p__sched_poll(e.s, 5);
        done = 0;
        for (int i = 0; i < 100; i++) done += c[i].done;
    }
    CHECK_EQ(done, 100);
    int ok = 0;
    for (int i = 0; i < 100; i++) ok += c[i].rc == LP2P_OK;
    CHECK_EQ(ok, 100);
    CHECK_EQ(e.b.n_streams, 100);
    t_env_free(&e);
}

static void test_window_exhaustion(void) {
    TEST("window exhaustion: writer blocks at 256 KiB, unblocks when the reader reads");
    tenv e;
    t_env_init(&e);
    e.b.mode = H_KEEP;
    t_env_start(&e, NULL);
    size_t len = 768 * 1024;
    uint8_t *src = (uint8_t *)malloc(len), *dst = (uint8_t *)malloc(len);
    t_fill(src, len, 5);
    lp2p__pipe *st;
    CHECK_EQ(lp2p__yamux_open(e.a.y, &st, lp2p_deadline_in(5000)), LP2P_OK);
    twriter w = {.st = st, .buf = src, .len = len, .piece = 16384, .fin = true};
    lp2p__spawn(e.s, t_writer_task, &w);
    T_PUMP_UNTIL(e.s, e.b.n_kept == 1 && w.written >= 256 * 1024, 5000);
    t_pump(e.s, 100);
    CHECK_EQ(w.written, 256 * 1024); /* exactly the spec's initial window */
    CHECK(!w.done);
    CHECK_EQ(e.b.n_kept, 1);
    /* a second stream: a write on a full window times out, a parked writer can be canceled,
     * and the session is unharmed by either */
    lp2p__pipe *st2;
    CHECK_EQ(lp2p__yamux_open(e.a.y, &st2, lp2p_deadline_in(5000)), LP2P_OK);
    CHECK_EQ(lp2p__pipe_write(st2, src, 256 * 1024, lp2p_deadline_in(5000)), LP2P_OK);
    CHECK_EQ(lp2p__pipe_write(st2, src, 1, lp2p_deadline_in(50)), LP2P_ERR_TIMEOUT);
    twriter w2 = {.st = st2, .buf = src, .len = 1000};
    lp2p_task t2 = lp2p__spawn(e.s, t_writer_task, &w2);
    t_pump(e.s, 20);
    CHECK(!w2.done);
    CHECK_EQ(lp2p__task_cancel(e.s, t2), LP2P_OK);
    T_PUMP_UNTIL(e.s, w2.done, 2000);
    CHECK(w2.done);
    CHECK_EQ(w2.rc, LP2P_ERR_CANCELED);
    st2->vt->reset(st2);
    CHECK(!e.a.closed && !e.b.closed);
    T_PUMP_UNTIL(e.s, e.b.n_kept == 2, 2000);
    CHECK_EQ(e.b.n_kept, 2); /* kept[0] is the first stream */
    if (e.b.n_kept == 2) {
        ptrdiff_t got = t_read_all(e.b.kept[0], dst, len, 20000);
        CHECK_EQ(got, (ptrdiff_t)len);
        CHECK(got == (ptrdiff_t)len && memcmp(src, dst, len) == 0);
    }
    T_PUMP_UNTIL(e.s, w.done, 5000);
    CHECK(w.done);
    CHECK_EQ(w.rc, LP2P_OK);
    CHECK_EQ(w.written, len);
    st->vt->close(st);
    free(src), free(dst);
    t_env_free(&e);
}

static void t_tune_cfg(lp2p__yamux_cfg *a, lp2p__yamux_cfg *b) {
    (void)a;
    b->max_window = 1u << 20;
}

static void test_autotune(void) {
    TEST("auto-tuning doubles the receive window up to max_window");
    tenv e;
    t_env_init(&e);
    e.b.mode = H_KEEP;
    t_env_start(&e, t_tune_cfg);
    CHECK(lp2p__yamux_ping(e.b.y, lp2p_deadline_in(5000)) >= 0);
    CHECK(lp2p__yamux_rtt_us(e.b.y) > 0);
    lp2p__yamux_set_rtt_us(e.b.y, 10 * 1000 * 1000); /* every update looks "fast": tune */
    size_t len = 8u << 20;
    uint8_t *src = (uint8_t *)malloc(len), *dst = (uint8_t *)malloc(len);
    t_fill(src, len, 9);
    lp2p__pipe *st;
    CHECK_EQ(lp2p__yamux_open(e.a.y, &st, lp2p_deadline_in(5000)), LP2P_OK);
    twriter w = {.st = st, .buf = src, .len = len, .fin = true};
    lp2p__spawn(e.s, t_writer_task, &w);
    T_PUMP_UNTIL(e.s, e.b.n_kept == 1, 5000);
    CHECK_EQ(e.b.n_kept, 1);
    if (e.b.n_kept == 1) {
        CHECK_EQ(lp2p__ystream_recv_window(e.b.kept[0]), 256 * 1024);
        ptrdiff_t got = t_read_all(e.b.kept[0], dst, len, 30000);
        CHECK_EQ(got, (ptrdiff_t)len);
        CHECK(got == (ptrdiff_t)len && memcmp(src, dst, len) == 0);
        CHECK_EQ(lp2p__ystream_recv_window(e.b.kept[0]), 1u << 20);
    }
    /* without a measured RTT the window stays put */
    lp2p__yamux_set_rtt_us(e.b.y, 0);
    lp2p__pipe *st2;
    CHECK_EQ(lp2p__yamux_open(e.a.y, &st2, lp2p_deadline_in(5000)), LP2P_OK);
    twriter w2 = {.st = st2, .buf = src, .len = 2u << 20, .fin = true};
    lp2p__spawn(e.s, t_writer_task, &w2);
    T_PUMP_UNTIL(e.s, e.b.n_kept == 2, 5000);
    if (e.b.n_kept == 2) {
        CHECK_EQ(t_read_all(e.b.kept[1], dst, len, 30000), 2u << 20);
        CHECK_EQ(lp2p__ystream_recv_window(e.b.kept[1]), 256 * 1024);
    }
    T_PUMP_UNTIL(e.s, w.done && w2.done, 5000);
    st->vt->close(st);
    st2->vt->close(st2);
    free(src), free(dst);
    t_env_free(&e);
}

static void t_budget_cfg(lp2p__yamux_cfg *a, lp2p__yamux_cfg *b) {
    (void)a;
    b->max_conn_window = 512 * 1024;
}

static void test_window_budget(void) {
    TEST("auto-tuning stays within the session budget max_conn_window");
    tenv e;
    t_env_init(&e);
    e.b.mode = H_KEEP;
    t_env_start(&e, t_budget_cfg);
    CHECK(lp2p__yamux_ping(e.b.y, lp2p_deadline_in(5000)) >= 0);
    lp2p__yamux_set_rtt_us(e.b.y, 10 * 1000 * 1000);
    size_t len = 4u << 20;
    uint8_t *src = (uint8_t *)calloc(1, len), *dst = (uint8_t *)malloc(len);
    uint32_t win[2] = {0, 0};
    for (int i = 0; i < 2; i++) {
        lp2p__pipe *st;
        CHECK_EQ(lp2p__yamux_open(e.a.y, &st, lp2p_deadline_in(5000)), LP2P_OK);
        twriter w = {.st = st, .buf = src, .len = len, .fin = true};
        lp2p__spawn(e.s, t_writer_task, &w);
        T_PUMP_UNTIL(e.s, e.b.n_kept == i + 1, 5000);
        if (e.b.n_kept != i + 1) break;
        CHECK_EQ(t_read_all(e.b.kept[i], dst, len, 30000), (ptrdiff_t)len);
        win[i] = lp2p__ystream_recv_window(e.b.kept[i]);
        T_PUMP_UNTIL(e.s, w.done, 5000);
        st->vt->close(st);
    }
    CHECK_EQ(win[0], 768 * 1024); /* 256 -> 512 -> 768 KiB: the budget allowed 512 KiB of growth */
    CHECK_EQ(win[1], 256 * 1024); /* budget used up by the first stream */
    free(src), free(dst);
    t_env_free(&e);
}

static void test_fin(void) {
    TEST("FIN/EOF both ways; write after close_write");
    tenv e;
    t_env_init(&e);
    e.b.mode = H_KEEP;
    t_env_start(&e, NULL);
    lp2p__pipe *st;
    uint8_t buf[64];
    CHECK_EQ(lp2p__yamux_open(e.a.y, &st, lp2p_deadline_in(5000)), LP2P_OK);
    CHECK_EQ(lp2p__pipe_write(st, "hello", 5, lp2p_deadline_in(5000)), LP2P_OK);
    CHECK_EQ(st->vt->close_write(st), LP2P_OK);
    CHECK_EQ(st->vt->close_write(st), LP2P_OK); /* idempotent */
    CHECK_EQ(lp2p__pipe_write(st, "x", 1, lp2p_deadline_in(5000)), LP2P_ERR_CLOSED);
    T_PUMP_UNTIL(e.s, e.b.n_kept == 1, 5000);
    CHECK_EQ(e.b.n_kept, 1);
    if (e.b.n_kept != 1) return;
    lp2p__pipe *r = e.b.kept[0];
    CHECK_EQ(t_read_all(r, buf, sizeof buf, 5000), 5);
    CHECK_MEM(buf, "hello", 5);
    CHECK_EQ(lp2p__pipe_read(r, buf, sizeof buf, lp2p_deadline_in(100)), 0); /* EOF stays EOF */
    CHECK_EQ(lp2p__pipe_write(r, "world!", 6, lp2p_deadline_in(5000)), LP2P_OK); /* half-closed: still writable */
    CHECK_EQ(r->vt->close_write(r), LP2P_OK);
    CHECK_EQ(t_read_all(st, buf, sizeof buf, 5000), 6);
    CHECK_MEM(buf, "world!", 6);
    /* both directions finished: neither session tracks the stream any more */
    T_PUMP_UNTIL(e.s, lp2p__yamux_num_streams(e.a.y) == 0 && lp2p__yamux_num_streams(e.b.y) == 0, 2000);
    CHECK_EQ(lp2p__yamux_num_streams(e.a.y), 0);
    CHECK_EQ(lp2p__yamux_num_streams(e.b.y), 0);
    /* a read with a deadline and no data times out */
    lp2p__pipe *st2;
    CHECK_EQ(lp2p__yamux_open(e.a.y, &st2, lp2p_deadline_in(5000)), LP2P_OK);
    CHECK_EQ(lp2p__pipe_read(st2, buf, sizeof buf, lp2p_deadline_in(50)), LP2P_ERR_TIMEOUT);
    CHECK_EQ(lp2p__pipe_read(st2, buf, sizeof buf, LP2P_NOWAIT), LP2P_ERR_TIMEOUT);
    st2->vt->close(st2);
    st->vt->close(st);
    t_env_free(&e);
}

static void test_reset(void) {
    TEST("RST gives ERR_RESET on the other side, both directions");
    tenv e;
    t_env_init(&e);
    e.a.mode = e.b.mode = H_KEEP;
    t_env_start(&e, NULL);
    uint8_t buf[16];
    lp2p__pipe *st;
    CHECK_EQ(lp2p__yamux_open(e.a.y, &st, lp2p_deadline_in(5000)), LP2P_OK);
    CHECK_EQ(lp2p__pipe_write(st, "abc", 3, lp2p_deadline_in(5000)), LP2P_OK);
    T_PUMP_UNTIL(e.s, e.b.n_kept == 1, 5000);
    CHECK_EQ(e.b.n_kept, 1);
    if (e.b.n_kept != 1) return;
    st->vt->reset(st);
    lp2p__pipe *r = e.b.kept[0];
    ptrdiff_t n = lp2p__pipe_read(r, buf, sizeof buf, lp2p_deadline_in(5000));
    /* data that arrived before the RST may or may not be read: then the reset shows */
    if (n == 3) n = lp2p__pipe_read(r, buf, sizeof buf, lp2p_deadline_in(5000));
    CHECK_EQ(n, LP2P_ERR_RESET);
    CHECK_EQ(lp2p__pipe_write(r, "x", 1, lp2p_deadline_in(5000)), LP2P_ERR_RESET);
    CHECK_EQ(lp2p__yamux_num_streams(e.b.y), 0);
    /* the other way round: the acceptor resets, the opener's pending read fails */
    lp2p__pipe *st2;
    CHECK_EQ(lp2p__yamux_open(e.b.y, &st2, lp2p_deadline_in(5000)), LP2P_OK);
    CHECK_EQ(lp2p__pipe_write(st2, "q", 1, lp2p_deadline_in(5000)), LP2P_OK);
    T_PUMP_UNTIL(e.s, e.a.n_kept == 1, 5000);
    CHECK_EQ(e.a.n_kept, 1);
    if (e.a.n_kept == 1) {
        e.a.kept[0]->vt->reset(e.a.kept[0]);
        e.a.n_kept = 0;
    }
    CHECK_EQ(lp2p__pipe_read(st2, buf, sizeof buf, lp2p_deadline_in(5000)), LP2P_ERR_RESET);
    st2->vt->close(st2);
    CHECK(!e.a.closed && !e.b.closed);
    t_env_free(&e);
}

static void test_close_unread(void) {
    TEST("close with unread data: FIN reaches the peer, later data is dropped, then RST when its window is used up");
    tenv e;
    t_env_init(&e);
    e.b.mode = H_KEEP;
    t_env_start(&e, NULL);
    uint8_t buf[16];
    lp2p__pipe *st;
    CHECK_EQ(lp2p__yamux_open(e.a.y, &st, lp2p_deadline_in(5000)), LP2P_OK);
    CHECK_EQ(lp2p__pipe_write(st, "0123456789", 10, lp2p_deadline_in(5000)), LP2P_OK);
    T_PUMP_UNTIL(e.s, e.b.n_kept == 1, 5000);
    if (e.b.n_kept != 1) { CHECK(0); return; }
    lp2p__pipe *r = e.b.kept[0];
    e.b.n_kept = 0;
    CHECK_EQ(lp2p__pipe_read(r, buf, 1, lp2p_deadline_in(5000)), 1);
    long before = t_live_bytes;
    r->vt->close(r); /* 9 bytes unread */
    CHECK(t_live_bytes < before);
    CHECK_EQ(lp2p__pipe_read(st, buf, sizeof buf, lp2p_deadline_in(5000)), 0); /* our FIN */
    CHECK_EQ(lp2p__yamux_num_streams(e.b.y), 1);                                /* lingers */
    /* the opener keeps writing: accepted until its window is used up, then reset */
    size_t len = 300 * 1024;
    uint8_t *src = (uint8_t *)calloc(1, len);
    int rc = lp2p__pipe_write(st, src, len, lp2p_deadline_in(10000));
    if (rc == LP2P_OK) rc = lp2p__pipe_write(st, src, 1, lp2p_deadline_in(10000));
    CHECK_EQ(rc, LP2P_ERR_RESET);
    CHECK_EQ(lp2p__yamux_num_streams(e.b.y), 0);
    st->vt->close(st);
    /* a lingering stream goes away when the peer sends FIN */
    CHECK_EQ(lp2p__yamux_open(e.a.y, &st, lp2p_deadline_in(5000)), LP2P_OK);
    CHECK_EQ(lp2p__pipe_write(st, "z", 1, lp2p_deadline_in(5000)), LP2P_OK);
    T_PUMP_UNTIL(e.s, e.b.n_kept == 1, 5000);
    if (e.b.n_kept == 1) {
        e.b.kept[0]->vt->close(e.b.kept[0]);
        e.b.n_kept = 0;
    }
    CHECK_EQ(lp2p__yamux_num_streams(e.b.y), 1);
    CHECK_EQ(lp2p__pipe_write(st, src, 1000, lp2p_deadline_in(5000)), LP2P_OK); /* dropped quietly */
    CHECK_EQ(st->vt->close_write(st), LP2P_OK);
    T_PUMP_UNTIL(e.s, lp2p__yamux_num_streams(e.b.y) == 0, 2000);
    CHECK_EQ(lp2p__yamux_num_streams(e.b.y), 0);
    st->vt->close(st);
    CHECK(!e.a.closed && !e.b.closed);
    free(src);
    t_env_free(&e);
}

static void t_inbound_cfg(lp2p__yamux_cfg *a, lp2p__yamux_cfg *b) {
    (void)a;
    b->max_inbound = 3;
}

static void test_max_inbound(void) {
    TEST("streams beyond max_inbound are reset and the limit is logged");
    tenv e;
    t_env_init(&e);
    e.b.mode = H_KEEP;
    t_env_start(&e, t_inbound_cfg);
    int warns = t_warn_limit;
    lp2p__pipe *st[5];
    for (int i = 0; i < 5; i++) {
        CHECK_EQ(lp2p__yamux_open(e.a.y, &st[i], lp2p_deadline_in(5000)), LP2P_OK);
        CHECK_EQ(lp2p__pipe_write(st[i], "x", 1, lp2p_deadline_in(5000)), LP2P_OK);
    }
    uint8_t b;
    CHECK_EQ(lp2p__pipe_read(st[3], &b, 1, lp2p_deadline_in(5000)), LP2P_ERR_RESET);
    CHECK_EQ(lp2p__pipe_read(st[4], &b, 1, lp2p_deadline_in(5000)), LP2P_ERR_RESET);
    CHECK_EQ(e.b.n_kept, 3);
    CHECK_EQ(t_warn_limit, warns + 1);
    /* closing one frees a slot */
    if (e.b.n_kept == 3) {
        e.b.kept[0]->vt->reset(e.b.kept[0]);
        e.b.kept[0] = e.b.kept[--e.b.n_kept];
    }
    CHECK_EQ(lp2p__pipe_read(st[0], &b, 1, lp2p_deadline_in(5000)), LP2P_ERR_RESET);
    lp2p__pipe *again;
    CHECK_EQ(lp2p__yamux_open(e.a.y, &again, lp2p_deadline_in(5000)), LP2P_OK);
    CHECK_EQ(lp2p__pipe_write(again, "y", 1, lp2p_deadline_in(5000)), LP2P_OK);
    T_PUMP_UNTIL(e.s, e.b.n_kept == 3, 5000);
    CHECK_EQ(e.b.n_kept, 3);
    again->vt->close(again);
    for (int i = 0; i < 5; i++) st[i]->vt->close(st[i]);
    t_env_free(&e);
}

static void test_ping(void) {
    TEST("ping measures an RTT from both sides");
    tenv e;
    t_env_init(&e);
    t_env_start(&e, NULL);
    CHECK(lp2p__yamux_ping(e.a.y, lp2p_deadline_in(5000)) >= 0);
    CHECK(lp2p__yamux_ping(e.b.y, lp2p_deadline_in(5000)) >= 0);
    CHECK(lp2p__yamux_rtt_us(e.a.y) > 0);
    CHECK(lp2p__yamux_rtt_us(e.b.y) > 0);
    t_env_free(&e);
}

static void test_session_death(void) {
    TEST("session closed while the app holds streams: they fail safely until released");
    tenv e;
    t_env_init(&e);
    e.b.mode = H_KEEP;
    t_env_start(&e, NULL);
    uint8_t buf[16];
    lp2p__pipe *st, *st2;
    CHECK_EQ(lp2p__yamux_open(e.a.y, &st, lp2p_deadline_in(5000)), LP2P_OK);
    CHECK_EQ(lp2p__yamux_open(e.a.y, &st2, lp2p_deadline_in(5000)), LP2P_OK);
    CHECK_EQ(lp2p__pipe_write(st, "ping", 4, lp2p_deadline_in(5000)), LP2P_OK);
    T_PUMP_UNTIL(e.s, e.b.n_kept == 2, 5000); /* both SYNs went out at open */
    if (e.b.n_kept != 2) { CHECK(0); return; }
    int k = lp2p__ystream_id(e.b.kept[0]) == lp2p__ystream_id(st) ? 0 : 1;
    lp2p__pipe *r = e.b.kept[k];
    e.b.kept[k] = e.b.kept[1], e.b.n_kept = 1;
    CHECK_EQ(lp2p__pipe_write(r, "pong", 4, lp2p_deadline_in(5000)), LP2P_OK);
    T_PUMP_UNTIL(e.s, false, 50);
    lp2p__yamux_free(e.a.y); /* closes: GoAway(0) */
    e.a.y = NULL;
    CHECK(e.a.closed);
    CHECK_EQ(e.a.close_err, LP2P_OK);
    CHECK_EQ(lp2p__pipe_read(st, buf, sizeof buf, lp2p_deadline_in(5000)), 4); /* received before: still readable */
    CHECK_EQ(lp2p__pipe_read(st, buf, sizeof buf, lp2p_deadline_in(5000)), LP2P_ERR_CLOSED);
    CHECK_EQ(lp2p__pipe_write(st, "x", 1, lp2p_deadline_in(5000)), LP2P_ERR_CLOSED);
    CHECK_EQ(st->vt->close_write(st), LP2P_ERR_CLOSED);
    /* the peer sees GoAway then EOF; its stream fails with ERR_RESET */
    T_PUMP_UNTIL(e.s, e.b.closed, 5000);
    CHECK(e.b.closed);
    CHECK_EQ(e.b.close_err, LP2P_ERR_EOF);
    CHECK_EQ(lp2p__pipe_read(r, buf, sizeof buf, lp2p_deadline_in(5000)), 4);
    CHECK_EQ(lp2p__pipe_read(r, buf, sizeof buf, lp2p_deadline_in(5000)), LP2P_ERR_RESET);
    lp2p__pipe *st3;
    CHECK_EQ(lp2p__yamux_open(e.b.y, &st3, LP2P_NOWAIT), LP2P_ERR_CLOSED);
    CHECK(lp2p__yamux_is_closed(e.b.y));
    t_pump(e.s, 20);
    st->vt->close(st);
    st2->vt->reset(st2);
    r->vt->close(r);
    t_env_free(&e);
}

static void test_free_in_on_close(void) {
    TEST("the session can be freed from its on_close callback, streams still held");
    tenv e;
    t_env_init(&e);
    e.a.mode = e.b.mode = H_KEEP;
    e.a.free_on_close = e.b.free_on_close = true;
    t_env_start(&e, NULL);
    lp2p__pipe *st;
    CHECK_EQ(lp2p__yamux_open(e.a.y, &st, lp2p_deadline_in(5000)), LP2P_OK);
    CHECK_EQ(lp2p__pipe_write(st, "x", 1, lp2p_deadline_in(5000)), LP2P_OK);
    T_PUMP_UNTIL(e.s, e.b.n_kept == 1, 5000);
    lp2p__yamux_close(e.b.y); /* b frees itself in on_close; a sees GoAway + EOF and does too */
    CHECK(e.b.closed && !e.b.y);
    T_PUMP_UNTIL(e.s, e.a.closed, 5000);
    CHECK(e.a.closed && !e.a.y);
    uint8_t b;
    CHECK_EQ(lp2p__pipe_read(st, &b, 1, lp2p_deadline_in(1000)), LP2P_ERR_RESET);
    CHECK_EQ(lp2p__pipe_write(st, "x", 1, lp2p_deadline_in(1000)), LP2P_ERR_RESET);
    st->vt->close(st);
    t_env_free(&e);
}

/* ---- a raw peer: the test writes frames by hand on the other end of the pipe ---- */
typedef struct traw {
    lp2p__sched *s;
    lp2p__pipe *peer; /* our end */
    tside side;       /* the session under test */
} traw;

static void t_raw_start(traw *t, bool client, void (*tweak)(lp2p__yamux_cfg *)) {
    memset(t, 0, sizeof *t);
    CHECK_EQ(lp2p__sched_new(&t_ctx, NULL, &t->s), LP2P_OK);
    static tenv dummy;
    dummy.s = t->s;
    t->side.env = &dummy;
    t->side.mode = H_KEEP;
    lp2p__pipe *pa;
    tm_pair(t->s, 1 << 20, &pa, &t->peer);
    lp2p__yamux_cfg c;
    t_side_cfg(&t->side, &c, client);
    if (tweak) tweak(&c);
    CHECK_EQ(lp2p__yamux_new(t->s, pa, &c, &t->side.y), LP2P_OK);
}

static void t_raw_send(traw *t, uint8_t ver, uint8_t type, uint16_t flags, uint32_t id, uint32_t len,
                       const void *payload, size_t plen) {
    uint8_t h[12];
    h[0] = ver, h[1] = type;
    lp2p__put_be16(h + 2, flags);
    lp2p__put_be32(h + 4, id);
    lp2p__put_be32(h + 8, len);
    CHECK_EQ(lp2p__pipe_write(t->peer, h, 12, lp2p_deadline_in(5000)), LP2P_OK);
    if (plen) CHECK_EQ(lp2p__pipe_write(t->peer, payload, plen, lp2p_deadline_in(5000)), LP2P_OK);
}

/* Read frames from the session until one of `type` (and flags mask) arrives; returns its
 * header in h. Data payloads are skipped. */
static int t_raw_expect(traw *t, uint8_t type, uint16_t flags, uint8_t *h) {
    static uint8_t skip[70000];
    for (int i = 0; i < 10000; i++) {
        int rc = lp2p__pipe_read_full(t->peer, h, 12, lp2p_deadline_in(5000));
        if (rc < 0) return rc;
        uint32_t len = lp2p__be32(h + 8);
        if (h[1] == 0 && len) {
            if (len > sizeof skip) return LP2P_ERR_MSGSIZE;
            rc = lp2p__pipe_read_full(t->peer, skip, len, lp2p_deadline_in(5000));
            if (rc < 0) return rc;
        }
        if (h[1] == type && (lp2p__be16(h + 2) & flags) == flags) return LP2P_OK;
    }
    return LP2P_ERR_NOTFOUND;
}

static void t_raw_free(traw *t) {
    for (int i = 0; i < t->side.n_kept; i++) t->side.kept[i]->vt->close(t->side.kept[i]);
    lp2p__yamux_free(t->side.y);
    t->peer->vt->close(t->peer);
    t_pump(t->s, 20);
    lp2p__sched_free(t->s);
    CHECK_EQ(t_live_blocks, 0);
    CHECK_EQ(t_live_bytes, 0);
}

static void test_ack_backlog(void) {
    TEST("at most 256 unacknowledged outbound streams; an ACK lets the next open through");
    traw t;
    t_raw_start(&t, true, NULL);
    lp2p__pipe *st[257];
    int ok = 0;
    for (int i = 0; i < 256; i++) ok += lp2p__yamux_open(t.side.y, &st[i], LP2P_NOWAIT) == LP2P_OK;
    CHECK_EQ(ok, 256);
    CHECK_EQ(lp2p__yamux_unacked(t.side.y), 256);
    int warns = t_warn_limit;
    CHECK_EQ(lp2p__yamux_open(t.side.y, &st[256], LP2P_NOWAIT), LP2P_ERR_LIMIT);
    CHECK_EQ(lp2p__yamux_open(t.side.y, &st[256], lp2p_deadline_in(50)), LP2P_ERR_LIMIT);
    CHECK(t_warn_limit > warns);
    /* every SYN went out without waiting for an ACK */
    uint8_t h[12];
    int syns = 0;
    for (int i = 0; i < 256; i++)
        if (t_raw_expect(&t, 1, 1, h) == LP2P_OK && lp2p__be32(h + 4) == (uint32_t)(2 * i + 1)) syns++;
    CHECK_EQ(syns, 256);
    t_raw_send(&t, 0, 1, 2, 1, 0, NULL, 0); /* ACK stream 1 */
    CHECK_EQ(lp2p__yamux_open(t.side.y, &st[256], lp2p_deadline_in(5000)), LP2P_OK);
    CHECK_EQ(lp2p__ystream_id(st[256]), 513);
    /* a stream reset before the ACK frees its slot too */
    st[5]->vt->reset(st[5]);
    lp2p__pipe *x;
    CHECK_EQ(lp2p__yamux_open(t.side.y, &x, LP2P_NOWAIT), LP2P_OK);
    x->vt->close(x);
    for (int i = 0; i < 257; i++)
        if (i != 5) st[i]->vt->close(st[i]);
    CHECK(!t.side.closed);
    t_raw_free(&t);
}

static long t_raw_writes;
static int t_counting_write(lp2p__pipe *p, const void *buf, size_t len, int64_t deadline) {
    t_raw_writes++;
    return tm_write(p, buf, len, deadline);
}

static void test_framing(void) {
    TEST("data frames carry <= 65507 bytes (one Noise frame with the header); one pipe write per batch");
    traw t;
    t_raw_start(&t, true, NULL);
    static lp2p__pipe_vt counting;
    counting = tm_vt;
    counting.write = t_counting_write;
    t.side.y->pipe->vt = &counting;
    lp2p__pipe *st;
    CHECK_EQ(lp2p__yamux_open(t.side.y, &st, LP2P_NOWAIT), LP2P_OK);
    uint8_t h[12];
    CHECK_EQ(t_raw_expect(&t, 1, 1, h), LP2P_OK); /* SYN */
    t_raw_send(&t, 0, 1, 2, 1, 1u << 20, NULL, 0); /* ACK + 1 MiB more window */
    t_pump(t.s, 20);
    size_t len = 200000;
    uint8_t *src = (uint8_t *)malloc(len);
    t_fill(src, len, 3);
    long before = t_raw_writes;
    CHECK_EQ(lp2p__pipe_write(st, src, len, lp2p_deadline_in(5000)), LP2P_OK);
    t_pump(t.s, 20);
    CHECK_EQ(t_raw_writes - before, 1); /* 3 full frames + the rest: one batch */
    static uint8_t got[200000];
    size_t off = 0;
    int frames = 0;
    while (off < len) {
        if (lp2p__pipe_read_full(t.peer, h, 12, lp2p_deadline_in(5000)) < 0) break;
        uint32_t n = lp2p__be32(h + 8);
        if (h[1] != 0) continue;
        CHECK_EQ(lp2p__be32(h + 4), 1);
        CHECK(n <= LP2P__YAMUX_MAX_PAYLOAD && off + n <= len);
        if (n > LP2P__YAMUX_MAX_PAYLOAD || off + n > len) break;
        CHECK_EQ(lp2p__pipe_read_full(t.peer, got + off, n, lp2p_deadline_in(5000)), LP2P_OK);
        if (frames++ < 3) CHECK_EQ(n, 65507);
        off += n;
    }
    CHECK_EQ(frames, 4);
    CHECK(off == len && memcmp(got, src, len) == 0);
    st->vt->close(st);
    free(src);
    t_raw_free(&t);
}

static void t_keepalive_cfg(lp2p__yamux_cfg *c) {
    c->keepalive_ms = 100;
    c->ping_timeout_ms = 300;
}

static void test_keepalive_timeout(void) {
    TEST("keepalive: a silent peer ends the session with ERR_TIMEOUT");
    traw t;
    t_raw_start(&t, true, t_keepalive_cfg);
    lp2p__pipe *st;
    CHECK_EQ(lp2p__yamux_open(t.side.y, &st, LP2P_NOWAIT), LP2P_OK);
    T_PUMP_UNTIL(t.s, t.side.closed, 5000);
    CHECK(t.side.closed);
    CHECK_EQ(t.side.close_err, LP2P_ERR_TIMEOUT);
    uint8_t b;
    CHECK_EQ(lp2p__pipe_read(st, &b, 1, lp2p_deadline_in(1000)), LP2P_ERR_RESET);
    st->vt->close(st);
    t_raw_free(&t);

    TEST("keepalive: a peer that stops inside a frame ends the session with ERR_TIMEOUT");
    t_raw_start(&t, true, t_keepalive_cfg);
    t_raw_send(&t, 0, 0, 1, 2, 100, "0123456789", 10); /* SYN + 10 of 100 data bytes, then silence */
    T_PUMP_UNTIL(t.s, t.side.closed, 5000);
    CHECK(t.side.closed);
    CHECK_EQ(t.side.close_err, LP2P_ERR_TIMEOUT);
    t_raw_free(&t);

    TEST("keepalive: a peer that answers pings keeps the session");
    t_raw_start(&t, true, t_keepalive_cfg);
    uint8_t h[12];
    for (int i = 0; i < 4; i++) { /* ~4 keepalive rounds */
        CHECK_EQ(t_raw_expect(&t, 2, 1, h), LP2P_OK);
        t_raw_send(&t, 0, 2, 2, 0, lp2p__be32(h + 8), NULL, 0);
    }
    CHECK(!t.side.closed);
    t_raw_free(&t);
}

static void test_goaway(void) {
    TEST("GoAway from the peer: no new streams; the session ends when the last stream does");
    traw t;
    t_raw_start(&t, true, NULL);
    lp2p__pipe *st;
    CHECK_EQ(lp2p__yamux_open(t.side.y, &st, LP2P_NOWAIT), LP2P_OK);
    CHECK_EQ(lp2p__pipe_write(st, "hi", 2, lp2p_deadline_in(5000)), LP2P_OK);
    t_raw_send(&t, 0, 1, 2, 1, 0, NULL, 0); /* ACK */
    t_raw_send(&t, 0, 3, 0, 0, 0, NULL, 0); /* GoAway(normal) */
    t_raw_send(&t, 0, 0, 0, 1, 3, "bye", 3); /* existing streams still work */
    uint8_t buf[8];
    CHECK_EQ(lp2p__pipe_read(st, buf, sizeof buf, lp2p_deadline_in(5000)), 3);
    lp2p__pipe *st2;
    CHECK_EQ(lp2p__yamux_open(t.side.y, &st2, LP2P_NOWAIT), LP2P_ERR_CLOSED);
    CHECK(!t.side.closed);
    st->vt->reset(st);
    CHECK(t.side.closed);
    CHECK_EQ(t.side.close_err, LP2P_ERR_EOF);
    t_raw_free(&t);

    TEST("local close sends GoAway(0)");
    t_raw_start(&t, false, NULL);
    lp2p__yamux_close(t.side.y);
    uint8_t h[12];
    CHECK_EQ(t_raw_expect(&t, 3, 0, h), LP2P_OK);
    CHECK_EQ(lp2p__be32(h + 8), 0);
    CHECK_EQ(lp2p__pipe_read(t.peer, h, 12, lp2p_deadline_in(5000)), 0); /* then the pipe closes */
    t_raw_free(&t);
}

static void test_peer_frames(void) {
    TEST("frames as rust/go send them: SYN on data, RST with an error code, late frames, big windows, pings");
    traw t;
    t_raw_start(&t, false, NULL);
    uint8_t h[12], buf[32];
    /* rust opens lazily: SYN on the first data frame */
    t_raw_send(&t, 0, 0, 1, 1, 5, "first", 5);
    T_PUMP_UNTIL(t.s, t.side.n_kept == 1, 5000);
    CHECK_EQ(t.side.n_kept, 1);
    if (t.side.n_kept != 1) return;
    lp2p__pipe *st = t.side.kept[0];
    CHECK_EQ(lp2p__pipe_read(st, buf, sizeof buf, lp2p_deadline_in(5000)), 5);
    CHECK_EQ(t_raw_expect(&t, 1, 2, h), LP2P_OK); /* our ACK */
    CHECK_EQ(lp2p__be32(h + 4), 1);
    /* a peer ping gets its pong with the same opaque value */
    t_raw_send(&t, 0, 2, 1, 0, 0xdeadbeef, NULL, 0);
    CHECK_EQ(t_raw_expect(&t, 2, 2, h), LP2P_OK);
    CHECK_EQ(lp2p__be32(h + 8), 0xdeadbeef);
    /* a burst of pings: the control queue grows (from 8 entries) and wraps, pongs keep
     * their order; past 256 queued, pongs may be dropped (go-yamux does too) */
    {
        uint8_t burst[300 * 12];
        for (int i = 0; i < 300; i++) {
            burst[i * 12] = 0, burst[i * 12 + 1] = 2;
            lp2p__put_be16(burst + i * 12 + 2, 1);
            lp2p__put_be32(burst + i * 12 + 4, 0);
            lp2p__put_be32(burst + i * 12 + 8, 5000 + (uint32_t)i);
        }
        CHECK_EQ(lp2p__pipe_write(t.peer, burst, sizeof burst, lp2p_deadline_in(5000)), LP2P_OK);
        int n = 0, in_order = 1;
        uint32_t last = 4999, v = 0;
        for (; n < 256 && t_raw_expect(&t, 2, 2, h) == LP2P_OK; n++) {
            v = lp2p__be32(h + 8);
            in_order &= v > last && v < 5300;
            last = v;
        }
        CHECK_EQ(n, 256);
        t_raw_send(&t, 0, 2, 1, 0, 9999, NULL, 0); /* a marker once the burst was answered */
        while (t_raw_expect(&t, 2, 2, h) == LP2P_OK && (v = lp2p__be32(h + 8)) != 9999) {
            in_order &= v > last && v < 5300;
            last = v;
        }
        CHECK_EQ(v, 9999);
        CHECK(in_order);
    }
    /* a huge window grant (go/rust send 16 MiB) is fine */
    t_raw_send(&t, 0, 1, 0, 1, 16u << 20, NULL, 0);
    /* go's RST: window update, RST flag, length = error code */
    t_raw_send(&t, 0, 1, 8, 1, 42, NULL, 0);
    CHECK_EQ(lp2p__pipe_read(st, buf, sizeof buf, lp2p_deadline_in(5000)), LP2P_ERR_RESET);
    /* late frames for that stream are dropped quietly */
    t_raw_send(&t, 0, 0, 0, 1, 4, "late", 4);
    t_raw_send(&t, 0, 1, 0, 1, 1000, NULL, 0);
    /* a stream we reset: the peer's in-flight data is dropped too */
    t_raw_send(&t, 0, 1, 1, 3, 0, NULL, 0);
    T_PUMP_UNTIL(t.s, t.side.n_kept == 2, 5000);
    CHECK_EQ(t.side.n_kept, 2);
    if (t.side.n_kept == 2) {
        t.side.kept[1]->vt->reset(t.side.kept[1]);
        t.side.n_kept = 1;
        CHECK_EQ(t_raw_expect(&t, 1, 8, h), LP2P_OK);
        CHECK_EQ(lp2p__be32(h + 4), 3);
        t_raw_send(&t, 0, 0, 0, 3, 6, "stale!", 6);
    }
    /* a FIN+SYN stream (open and immediately half-close) */
    t_raw_send(&t, 0, 0, 1 | 4, 5, 3, "end", 3);
    T_PUMP_UNTIL(t.s, t.side.n_kept == 2, 5000);
    if (t.side.n_kept == 2) {
        CHECK_EQ(t_read_all(t.side.kept[1], buf, sizeof buf, 5000), 3);
    }
    CHECK(lp2p__yamux_ping(t.side.y, lp2p_deadline_in(50)) == LP2P_ERR_TIMEOUT); /* raw peer never answers */
    CHECK(!t.side.closed);
    t_raw_free(&t);
}

typedef struct tbad {
    const char *what;
    uint8_t ver, type;
    uint16_t flags;
    uint32_t id, len;
    size_t plen;
} tbad;

static void test_malformed(void) {
    static const tbad cases[] = {
        {"bad version", 1, 0, 0, 1, 0, 0},
        {"bad type", 0, 4, 0, 0, 0, 0},
        {"unknown flag", 0, 1, 0x10, 1, 0, 0},
        {"data on stream 0", 0, 0, 0, 0, 1, 1},
        {"window update on stream 0", 0, 1, 0, 0, 1, 0},
        {"data for a never-opened stream", 0, 0, 0, 7, 1, 1},
        {"window update for a never-opened stream", 0, 1, 0, 9, 1, 0},
        {"SYN with our (server) parity", 0, 1, 1, 2, 0, 0},
        {"SYN data beyond 256 KiB", 0, 0, 1, 1, 300 * 1024, 0},
        {"oversize data frame", 0, 0, 0, 1, 0xffffffffu, 0},
    };
    for (size_t i = 0; i < LP2P__COUNT(cases); i++) {
        const tbad *c = &cases[i];
        char name[128];
        snprintf(name, sizeof name, "malformed: %s -> GoAway(1), session closed, no leak", c->what);
        TEST(name);
        traw t;
        t_raw_start(&t, false, NULL);
        int warns = t_warn_protocol;
        static uint8_t zeros[16];
        t_raw_send(&t, c->ver, c->type, c->flags, c->id, c->len, zeros, c->plen);
        T_PUMP_UNTIL(t.s, t.side.closed, 5000);
        CHECK(t.side.closed);
        CHECK_EQ(t.side.close_err, LP2P_ERR_PROTOCOL);
        CHECK_EQ(t_warn_protocol, warns + 1);
        uint8_t h[12];
        CHECK_EQ(t_raw_expect(&t, 3, 0, h), LP2P_OK);
        CHECK_EQ(lp2p__be32(h + 8), 1);
        t_raw_free(&t);
    }

    TEST("malformed: data beyond the window of an open stream; duplicate SYN");
    for (int k = 0; k < 2; k++) {
        traw t;
        t_raw_start(&t, false, NULL);
        t_raw_send(&t, 0, 1, 1, 1, 0, NULL, 0); /* open stream 1 */
        if (k == 0) {
            static uint8_t big[65536];
            for (int i = 0; i < 4; i++) t_raw_send(&t, 0, 0, 0, 1, sizeof big, big, sizeof big); /* 256 KiB: ok */
            t_raw_send(&t, 0, 0, 0, 1, 1, big, 1);                                              /* one too many */
        } else t_raw_send(&t, 0, 1, 1, 1, 0, NULL, 0);
        T_PUMP_UNTIL(t.s, t.side.closed, 5000);
        CHECK(t.side.closed);
        CHECK_EQ(t.side.close_err, LP2P_ERR_PROTOCOL);
        if (t.side.n_kept == 1) { /* the app's stream fails, its buffered data stays readable */
            uint8_t buf[4096];
            ptrdiff_t n, total = 0;
            while ((n = lp2p__pipe_read(t.side.kept[0], buf, sizeof buf, lp2p_deadline_in(1000))) > 0) total += n;
            CHECK_EQ(n, LP2P_ERR_RESET);
            CHECK_EQ(total, k == 0 ? 256 * 1024 : 0);
        }
        t_raw_free(&t);
    }
}

int main(void) {
    lp2p_allocator al = {t_alloc, t_free, NULL};
    lp2p_logger lg = {t_log, NULL};
    lp2p__ctx_init(&t_ctx, &al, &lg, LP2P_LOG_DEBUG);
    test_echo();
    test_concurrent();
    test_window_exhaustion();
    test_autotune();
    test_window_budget();
    test_fin();
    test_reset();
    test_close_unread();
    test_max_inbound();
    test_ping();
    test_session_death();
    test_free_in_on_close();
    test_ack_backlog();
    test_framing();
    test_keepalive_timeout();
    test_goaway();
    test_peer_frames();
    test_malformed();
    TEST_END();
}
