/* test_perf.c - the perf protocol (src/perf.c, perf/perf.md) between hosts in one process over
 * TCP on 127.0.0.1: sizes including 0 and odd ones, progress reports, concurrent runs, the
 * server's limits (max_streams, byte caps, timeout, allow), its parsing of the u64 count (short,
 * exact, huge), and the client's checks against misbehaving servers (too many / too few bytes,
 * silence). (Interop with go/rust/js is tests/interop/test_perf.c.) */
#define LIBP2P_IMPLEMENTATION
#include "libp2p.h"
#include "tests/test.h"

#define MIB (1u << 20)

static lp2p_host *new_host(void) {
    lp2p_config cfg;
    lp2p_host *h = NULL;
    memset(&cfg, 0, sizeof cfg);
    cfg.log_level = getenv("LP2P_TEST_LOG") ? LP2P_LOG_DEBUG : LP2P_LOG_ERROR;
    CHECK_EQ(lp2p_host_new(&cfg, &h), LP2P_OK);
    return h;
}

static int run(lp2p_host *a, const char *addr, uint64_t up, uint64_t down) {
    lp2p_perf_result r;
    memset(&r, 0xff, sizeof r);
    int rc = lp2p_perf(a, addr, up, down, NULL, &r, lp2p_deadline_in(20000));
    if (rc == LP2P_OK) {
        CHECK_EQ(r.upload_bytes, up);
        CHECK_EQ(r.download_bytes, down);
        CHECK(r.connect_us >= 0 && r.stream_us >= 0 && r.upload_us >= 0 && r.download_us >= 0);
        CHECK_EQ(r.total_us, r.connect_us + r.stream_us + r.upload_us + r.download_us);
    }
    return rc;
}

static void test_sizes(lp2p_host *a, lp2p_host *b) {
    TEST("perf: sizes 0/0, 1/1, 1 MiB both ways, 0/8 MiB, 8 MiB/0, odd sizes");
    const char *addr = lp2p_host_addr(b, 0);
    CHECK_EQ(run(a, addr, 0, 0), LP2P_OK);
    CHECK_EQ(run(a, addr, 1, 1), LP2P_OK);
    CHECK_EQ(run(a, addr, MIB, MIB), LP2P_OK);
    CHECK_EQ(run(a, addr, 0, 8 * MIB), LP2P_OK);
    CHECK_EQ(run(a, addr, 8 * MIB, 0), LP2P_OK);
    CHECK_EQ(run(a, addr, 262143, 262145), LP2P_OK); /* around the 256 KiB read size */
    CHECK_EQ(run(a, addr, MIB + 1, MIB - 1), LP2P_OK); /* around the 1 MiB write size */
    CHECK_EQ(run(a, addr, 3 * 65507 + 1, 65519), LP2P_OK); /* around yamux/Noise frame sizes */
    /* a bare peer ID works once the address is known (connected) */
    char id[LP2P_PEER_ID_STRLEN];
    lp2p_peer_id bid = lp2p_host_id(b);
    lp2p_peer_id_str(&bid, id, sizeof id);
    CHECK_EQ(run(a, id, 10, 10), LP2P_OK);
}

typedef struct progress_log {
    int calls, done_calls, bad_order;
    uint64_t up, down, last_total_up, last_total_down;
} progress_log;

static void on_progress(void *user, const lp2p_perf_report *r) {
    progress_log *l = (progress_log *)user;
    l->calls++;
    l->done_calls += r->done;
    if (l->done_calls && !r->done) l->bad_order++; /* nothing after the final report */
    if (r->interval_us < 0 || r->total_upload_bytes < l->last_total_up || r->total_download_bytes < l->last_total_down)
        l->bad_order++;
    l->up += r->upload_bytes, l->down += r->download_bytes;
    if (l->up != r->total_upload_bytes || l->down != r->total_download_bytes) l->bad_order++;
    l->last_total_up = r->total_upload_bytes, l->last_total_down = r->total_download_bytes;
}

static void test_progress(lp2p_host *a, lp2p_host *b) {
    TEST("perf: progress reports add up to the totals, the last one is marked done");
    progress_log l;
    lp2p_perf_options o;
    lp2p_perf_result r;
    memset(&l, 0, sizeof l);
    memset(&o, 0, sizeof o);
    o.progress = on_progress, o.user = &l, o.report_interval_ms = 1;
    CHECK_EQ(lp2p_perf(a, lp2p_host_addr(b, 0), 4 * MIB, 3 * MIB, &o, &r, lp2p_deadline_in(20000)), LP2P_OK);
    CHECK(l.calls >= 1);
    CHECK_EQ(l.done_calls, 1);
    CHECK_EQ(l.bad_order, 0);
    CHECK_EQ(l.up, 4 * MIB);
    CHECK_EQ(l.down, 3 * MIB);
    /* no progress callback: fine, and out may be NULL */
    CHECK_EQ(lp2p_perf(a, lp2p_host_addr(b, 0), 5, 7, NULL, NULL, lp2p_deadline_in(20000)), LP2P_OK);
    /* a failed run gives no done report */
    memset(&l, 0, sizeof l);
    lp2p_host *c = new_host(); /* does not serve perf */
    if (!c) return;
    CHECK_EQ(lp2p_perf(a, lp2p_host_addr(c, 0), 5, 7, &o, &r, lp2p_deadline_in(20000)), LP2P_ERR_PROTO_NA);
    CHECK_EQ(l.done_calls, 0);
    lp2p_host_free(c);
}

typedef struct job {
    lp2p_host *h;
    const char *addr;
    uint64_t up, down;
    int rc;
} job;

static void job_task(void *arg) {
    job *j = (job *)arg;
    lp2p_perf_result r;
    j->rc = lp2p_perf(j->h, j->addr, j->up, j->down, NULL, &r, lp2p_deadline_in(20000));
    if (j->rc == LP2P_OK && (r.upload_bytes != j->up || r.download_bytes != j->down)) j->rc = -100;
}

static void test_concurrent(lp2p_host *a, lp2p_host *b) {
    TEST("perf: 8 runs at once from tasks (one shared discard buffer per host)");
    job jobs[8];
    lp2p_task t[8];
    for (int i = 0; i < 8; i++) {
        jobs[i].h = a, jobs[i].addr = lp2p_host_addr(b, 0), jobs[i].rc = 1;
        jobs[i].up = (uint64_t)(i * 100000 + 1), jobs[i].down = (uint64_t)((7 - i) * 150000);
        t[i] = lp2p_go(a, job_task, &jobs[i]);
    }
    int ok = 0;
    for (int i = 0; i < 8; i++) {
        CHECK_EQ(lp2p_task_join(a, t[i], lp2p_deadline_in(30000)), LP2P_OK);
        ok += jobs[i].rc == LP2P_OK;
    }
    CHECK_EQ(ok, 8);
}

static void test_not_served(lp2p_host *a, lp2p_host *b) {
    TEST("perf: not served -> ERR_PROTO_NA; unhandle stops the service; bad arguments");
    const char *addr = lp2p_host_addr(b, 0);
    CHECK_EQ(lp2p_host_unhandle(b, LP2P_PERF_PROTOCOL), LP2P_OK);
    CHECK_EQ(lp2p_perf(a, addr, 1, 1, NULL, NULL, lp2p_deadline_in(10000)), LP2P_ERR_PROTO_NA);
    CHECK_EQ(lp2p_perf_serve(b, NULL), LP2P_OK);
    CHECK_EQ(lp2p_perf(a, addr, 1, 1, NULL, NULL, lp2p_deadline_in(10000)), LP2P_OK);
    lp2p_perf_options o;
    memset(&o, 0, sizeof o);
    o.timeout_ms = -1;
    CHECK_EQ(lp2p_perf(a, addr, 1, 1, &o, NULL, lp2p_deadline_in(10000)), LP2P_ERR_INVALID);
    o.timeout_ms = 0, o.report_interval_ms = -5;
    CHECK_EQ(lp2p_perf(a, addr, 1, 1, &o, NULL, lp2p_deadline_in(10000)), LP2P_ERR_INVALID);
    CHECK_EQ(lp2p_perf(NULL, addr, 1, 1, NULL, NULL, lp2p_deadline_in(10000)), LP2P_ERR_INVALID);
    CHECK_EQ(lp2p_perf(a, NULL, 1, 1, NULL, NULL, lp2p_deadline_in(10000)), LP2P_ERR_INVALID);
    CHECK_EQ(lp2p_perf(a, "/ip4/127.0.0.1/tcp/x", 1, 1, NULL, NULL, lp2p_deadline_in(10000)), LP2P_ERR_BADADDR);
    lp2p_perf_server_config c;
    memset(&c, 0, sizeof c);
    c.max_streams = -1;
    CHECK_EQ(lp2p_perf_serve(b, &c), LP2P_ERR_INVALID);
    c.max_streams = 0, c.timeout_ms = -1;
    CHECK_EQ(lp2p_perf_serve(b, &c), LP2P_ERR_INVALID);
    CHECK_EQ(lp2p_perf_serve(NULL, NULL), LP2P_ERR_INVALID);
}

/* Pump both hosts (from main) until cond or ~5 s. */
#define WAIT_UNTIL(h, cond)                                                               \
    do {                                                                                  \
        for (int w_ = 0; w_ < 1000 && !(cond); w_++) lp2p_sleep((h), lp2p_deadline_in(5)); \
    } while (0)

static lp2p_stream *raw_open(lp2p_host *a, lp2p_host *b) {
    lp2p_stream *s = NULL;
    CHECK_EQ(lp2p_stream_open(a, lp2p_host_addr(b, 0), LP2P_PERF_PROTOCOL, lp2p_deadline_in(10000), &s), LP2P_OK);
    return s;
}

static int raw_count(lp2p_stream *s, uint64_t n) {
    uint8_t c[8];
    for (int i = 0; i < 8; i++) c[i] = (uint8_t)(n >> (56 - 8 * i));
    return lp2p_stream_write(s, c, 8, lp2p_deadline_in(5000));
}

/* Read to the end: the byte count (all must be zero), or the read error. */
static long long raw_drain(lp2p_stream *s) {
    static uint8_t buf[65536];
    long long got = 0;
    ptrdiff_t n;
    while ((n = lp2p_stream_read(s, buf, sizeof buf, lp2p_deadline_in(10000))) > 0) {
        for (ptrdiff_t i = 0; i < n; i++)
            if (buf[i]) return -1000;
        got += n;
    }
    return n < 0 ? n : got;
}

static void test_server_parsing(lp2p_host *a, lp2p_host *b) {
    TEST("perf server: the u64 count (short, exact, with upload, huge then reset by the client)");
    lp2p_stream *s;
    /* 5 bytes of count then EOF: the server resets */
    if ((s = raw_open(a, b))) {
        CHECK_EQ(lp2p_stream_write(s, "\0\0\0\0\0", 5, lp2p_deadline_in(5000)), LP2P_OK);
        lp2p_stream_close_write(s);
        CHECK_EQ(raw_drain(s), LP2P_ERR_RESET);
        lp2p_stream_close(s);
    }
    /* EOF at once: the server resets */
    if ((s = raw_open(a, b))) {
        lp2p_stream_close_write(s);
        CHECK_EQ(raw_drain(s), LP2P_ERR_RESET);
        lp2p_stream_close(s);
    }
    /* count 3 with 3 upload bytes in the same write as the count: exactly 3 zero bytes back */
    if ((s = raw_open(a, b))) {
        uint8_t msg[11] = {0, 0, 0, 0, 0, 0, 0, 3, 'a', 'b', 'c'};
        CHECK_EQ(lp2p_stream_write(s, msg, sizeof msg, lp2p_deadline_in(5000)), LP2P_OK);
        lp2p_stream_close_write(s);
        CHECK_EQ(raw_drain(s), 3);
        lp2p_stream_close(s);
    }
    /* count 0x0102030405 split over two writes: the server assembles it (big-endian) */
    if ((s = raw_open(a, b))) {
        uint8_t c[8] = {0, 0, 0, 0, 0, 0, 0x01, 0x02};
        CHECK_EQ(lp2p_stream_write(s, c, 3, lp2p_deadline_in(5000)), LP2P_OK);
        lp2p_sleep(a, lp2p_deadline_in(20));
        CHECK_EQ(lp2p_stream_write(s, c + 3, 5, lp2p_deadline_in(5000)), LP2P_OK);
        lp2p_stream_close_write(s);
        CHECK_EQ(raw_drain(s), 0x0102);
        lp2p_stream_close(s);
    }
    /* UINT64_MAX (valid per perf.md: the timer-based download): read 1 MiB, then reset; the
     * server notices and frees its slot */
    if ((s = raw_open(a, b))) {
        static uint8_t buf[65536];
        uint64_t got = 0;
        CHECK_EQ(raw_count(s, UINT64_MAX), LP2P_OK);
        lp2p_stream_close_write(s);
        ptrdiff_t n = 1;
        while (got < MIB && (n = lp2p_stream_read(s, buf, sizeof buf, lp2p_deadline_in(10000))) > 0) got += (uint64_t)n;
        CHECK(got >= MIB);
        lp2p_stream_reset(s);
        WAIT_UNTIL(a, b->perf->active == 0);
        CHECK_EQ(b->perf->active, 0);
    }
}

static bool deny_all(void *user, const lp2p_peer_id *peer) {
    (void)peer;
    ++*(int *)user;
    return false;
}

static void test_server_limits(lp2p_host *a, lp2p_host *b) {
    TEST("perf server: max_download_bytes, max_upload_bytes, max_streams, timeout, allow");
    const char *addr = lp2p_host_addr(b, 0);
    lp2p_perf_server_config c;
    memset(&c, 0, sizeof c);
    c.max_download_bytes = MIB, c.max_upload_bytes = 2 * MIB;
    CHECK_EQ(lp2p_perf_serve(b, &c), LP2P_OK);
    CHECK_EQ(run(a, addr, 2 * MIB, MIB), LP2P_OK); /* exactly at both caps */
    CHECK_EQ(run(a, addr, 0, MIB + 1), LP2P_ERR_RESET);
    CHECK_EQ(run(a, addr, 2 * MIB + 1, 0), LP2P_ERR_RESET);
    CHECK_EQ(run(a, addr, 1, 1), LP2P_OK); /* the host keeps serving */

    /* max_streams = 1: a stream that holds the slot makes the next one fail, then frees it */
    memset(&c, 0, sizeof c);
    c.max_streams = 1;
    CHECK_EQ(lp2p_perf_serve(b, &c), LP2P_OK);
    lp2p_stream *s = raw_open(a, b);
    if (s) {
        CHECK_EQ(raw_count(s, 2), LP2P_OK);
        WAIT_UNTIL(a, b->perf->active == 1);
        CHECK_EQ(b->perf->active, 1);
        CHECK_EQ(run(a, addr, 1, 1), LP2P_ERR_RESET);
        lp2p_stream_close_write(s);
        CHECK_EQ(raw_drain(s), 2);
        lp2p_stream_close(s);
        WAIT_UNTIL(a, b->perf->active == 0);
        CHECK_EQ(run(a, addr, 1, 1), LP2P_OK);
    }

    /* timeout: a client that goes silent is reset by the server */
    memset(&c, 0, sizeof c);
    c.timeout_ms = 100;
    CHECK_EQ(lp2p_perf_serve(b, &c), LP2P_OK);
    if ((s = raw_open(a, b))) { /* silent before the count */
        CHECK_EQ(raw_drain(s), LP2P_ERR_RESET);
        lp2p_stream_close(s);
    }
    if ((s = raw_open(a, b))) { /* silent during the upload */
        CHECK_EQ(raw_count(s, 10), LP2P_OK);
        CHECK_EQ(raw_drain(s), LP2P_ERR_RESET);
        lp2p_stream_close(s);
    }
    WAIT_UNTIL(a, b->perf->active == 0);
    CHECK_EQ(b->perf->active, 0);

    /* allow callback */
    int asked = 0;
    memset(&c, 0, sizeof c);
    c.allow = deny_all, c.allow_user = &asked;
    CHECK_EQ(lp2p_perf_serve(b, &c), LP2P_OK);
    CHECK_EQ(run(a, addr, 1, 1), LP2P_ERR_RESET);
    CHECK_EQ(asked, 1);
    CHECK_EQ(lp2p_perf_serve(b, NULL), LP2P_OK);
    CHECK_EQ(run(a, addr, 1, 1), LP2P_OK);
}

/* ---- misbehaving servers, for the client's checks ---- */
enum { EVIL_MORE = 1, EVIL_LESS, EVIL_SILENT, EVIL_EARLY };
static void evil_perf(lp2p_stream *s, void *user) {
    int mode = *(int *)user;
    uint8_t c[8], buf[4096];
    memset(buf, 0, sizeof buf);
    if (lp2p_stream_read_full(s, c, 8, lp2p_deadline_in(5000)) != LP2P_OK) return;
    uint64_t want = 0;
    for (int i = 0; i < 8; i++) want = want << 8 | c[i];
    if (mode != EVIL_EARLY)
        while (lp2p_stream_read(s, buf, sizeof buf, lp2p_deadline_in(5000)) > 0) {
        }
    memset(buf, 0, sizeof buf);
    if (mode == EVIL_SILENT) {
        lp2p_sleep(lp2p_stream_host(s), lp2p_deadline_in(5000));
        return;
    }
    uint64_t n = mode == EVIL_MORE ? want + 1 : mode == EVIL_LESS ? want - 1 : want;
    while (n) {
        size_t k = n < sizeof buf ? (size_t)n : sizeof buf;
        if (lp2p_stream_write(s, buf, k, lp2p_deadline_in(5000)) != LP2P_OK) return;
        n -= k;
    }
}

static void test_client_checks(lp2p_host *a) {
    TEST("perf client: too many bytes, too few, a silent server, an early answer");
    int mode = 0;
    lp2p_host *e = new_host();
    if (!e) return;
    CHECK_EQ(lp2p_host_handle(e, LP2P_PERF_PROTOCOL, evil_perf, &mode), LP2P_OK);
    const char *addr = lp2p_host_addr(e, 0);
    mode = EVIL_MORE;
    CHECK_EQ(run(a, addr, 10, 100000), LP2P_ERR_PROTOCOL);
    CHECK_EQ(run(a, addr, 10, 0), LP2P_ERR_PROTOCOL);
    mode = EVIL_LESS;
    CHECK_EQ(run(a, addr, 10, 100000), LP2P_ERR_PROTOCOL);
    mode = EVIL_EARLY; /* answers before our EOF: the bytes are right, so the run counts */
    CHECK_EQ(run(a, addr, 1000, 1000), LP2P_OK);
    mode = EVIL_SILENT;
    lp2p_perf_options o;
    memset(&o, 0, sizeof o);
    o.timeout_ms = 100;
    CHECK_EQ(lp2p_perf(a, addr, 10, 10, &o, NULL, lp2p_deadline_in(10000)), LP2P_ERR_TIMEOUT);
    o.timeout_ms = 0; /* the absolute deadline bounds it too */
    CHECK_EQ(lp2p_perf(a, addr, 10, 10, &o, NULL, lp2p_deadline_in(200)), LP2P_ERR_TIMEOUT);
    lp2p_host_free(e);
}

int main(void) {
    lp2p_host *a = new_host(), *b = new_host();
    if (!a || !b) TEST_END();
    CHECK_EQ(lp2p_perf_serve(b, NULL), LP2P_OK);
    test_sizes(a, b);
    test_progress(a, b);
    test_concurrent(a, b);
    test_not_served(a, b);
    test_server_parsing(a, b);
    test_server_limits(a, b);
    test_client_checks(a);
    lp2p_host_free(a);
    lp2p_host_free(b);
    TEST_END();
}
