/* test_host.c - L5/L6/L7 in one process: two and ten hosts over TCP on 127.0.0.1: connect,
 * identify, ping, echo, many streams, handler semantics, events, wrong peer ID, limits,
 * blocking calls from main() and from tasks. (Wire correctness is the interop suite's job.) */
#define LIBP2P_IMPLEMENTATION
#include "libp2p.h"
#include "tests/test.h"

#define ECHO "/echo/1.0.0"

static void echo_handler(lp2p_stream *s, void *user) {
    char buf[16384];
    ptrdiff_t n;
    (void)user;
    while ((n = lp2p_stream_read(s, buf, sizeof buf, lp2p_deadline_in(10000))) > 0)
        if (lp2p_stream_write(s, buf, (size_t)n, lp2p_deadline_in(10000)) != LP2P_OK) break;
}

static lp2p_host *new_host(void) {
    lp2p_config cfg;
    lp2p_host *h = NULL;
    memset(&cfg, 0, sizeof cfg);
    cfg.log_level = getenv("LP2P_TEST_LOG") ? LP2P_LOG_DEBUG : LP2P_LOG_ERROR;
    CHECK_EQ(lp2p_host_new(&cfg, &h), LP2P_OK);
    if (h) CHECK_EQ(lp2p_host_handle(h, ECHO, echo_handler, NULL), LP2P_OK);
    return h;
}

/* echo len bytes through a new stream; returns 1 on a faithful echo */
static int echo_roundtrip(lp2p_host *a, const char *addr, size_t len) {
    lp2p_stream *s = NULL;
    int ok = 0;
    uint8_t *out = malloc(len + 1), *in = malloc(len + 1);
    for (size_t i = 0; i < len; i++) out[i] = (uint8_t)(i * 7 + 3);
    if (lp2p_stream_open(a, addr, ECHO, lp2p_deadline_in(10000), &s) == LP2P_OK) {
        /* write and read concurrently would need a task; with windows of 256 KiB+ a sequential
         * write of up to 8 MiB still completes because the server echoes as it reads and our
         * receive window grows: for big sizes we write in chunks and read back in between */
        size_t w = 0, r = 0;
        while (r < len) {
            if (w < len) {
                size_t k = LP2P__MIN(len - w, (size_t)65536);
                if (lp2p_stream_write(s, out + w, k, lp2p_deadline_in(10000)) != LP2P_OK) break;
                w += k;
                if (w == len) lp2p_stream_close_write(s);
            }
            while (r < w) {
                ptrdiff_t n = lp2p_stream_read(s, in + r, len - r, lp2p_deadline_in(10000));
                if (n <= 0) goto done;
                r += (size_t)n;
            }
        }
        char extra;
        ok = r == len && memcmp(in, out, len) == 0 && lp2p_stream_read(s, &extra, 1, lp2p_deadline_in(5000)) == 0;
    done:
        lp2p_stream_close(s);
    }
    free(out), free(in);
    return ok;
}

static void test_two_hosts(void) {
    TEST("two hosts: connect, identify, ping, echo from main()");
    lp2p_host *a = new_host(), *b = new_host();
    if (!a || !b) return;
    CHECK(lp2p_host_addr_count(b) == 1);
    const char *baddr = lp2p_host_addr(b, 0);
    CHECK(baddr && strstr(baddr, "/ip4/127.0.0.1/tcp/") == baddr && strstr(baddr, "/p2p/12D3KooW"));
    CHECK_EQ(lp2p_host_identify(a, baddr, lp2p_deadline_in(10000)), LP2P_OK);
    lp2p_peer_id bid = lp2p_host_id(b), aid = lp2p_host_id(a);
    CHECK(lp2p_host_is_connected(a, &bid));
    lp2p_peer_info info;
    CHECK_EQ(lp2p_host_peer_info(a, &bid, &info), LP2P_OK);
    CHECK(info.agent_version && strncmp(info.agent_version, "libp2p.h/", 9) == 0);
    int has_echo = 0, has_ping = 0;
    for (int i = 0; i < info.n_protocols; i++) {
        has_echo |= strcmp(info.protocols[i], ECHO) == 0;
        has_ping |= strcmp(info.protocols[i], "/ipfs/ping/1.0.0") == 0;
    }
    CHECK(has_echo && has_ping);
    CHECK(info.n_addrs >= 1);
    CHECK(info.observed_addr && strstr(info.observed_addr, "/ip4/127.0.0.1/tcp/") == info.observed_addr);
    /* b identified a as well (its identify task runs while we pump) */
    CHECK_EQ(lp2p_host_identify(b, lp2p_host_addr(a, 0), lp2p_deadline_in(10000)), LP2P_OK);
    CHECK_EQ(lp2p_host_peer_info(b, &aid, &info), LP2P_OK);
    CHECK(info.agent_version != NULL);

    for (int i = 0; i < 3; i++) CHECK(lp2p_ping(a, baddr, lp2p_deadline_in(5000)) >= 0);
    CHECK(echo_roundtrip(a, baddr, 1));
    CHECK(echo_roundtrip(a, baddr, 65536));
    CHECK(echo_roundtrip(a, baddr, 8 << 20));
    /* a bare peer ID works once the address is known */
    char idtext[LP2P_PEER_ID_STRLEN];
    lp2p_peer_id_str(&bid, idtext, sizeof idtext);
    CHECK(lp2p_ping(a, idtext, lp2p_deadline_in(5000)) >= 0);

    TEST("unknown protocol -> ERR_PROTO_NA; connection keeps working");
    lp2p_stream *s = NULL;
    CHECK_EQ(lp2p_stream_open(a, baddr, "/nope/1.0.0", lp2p_deadline_in(5000), &s), LP2P_ERR_PROTO_NA);
    CHECK(echo_roundtrip(a, baddr, 100));

    TEST("events: connected / identified / listen");
    lp2p_event ev;
    int connected = 0, identified = 0, listen = 0;
    while (lp2p_host_next_event(a, &ev)) {
        connected += ev.type == LP2P_EVENT_PEER_CONNECTED && lp2p_peer_id_eq(&ev.peer, &bid);
        identified += ev.type == LP2P_EVENT_PEER_IDENTIFIED;
        listen += ev.type == LP2P_EVENT_LISTEN;
    }
    CHECK_EQ(connected, 1);
    CHECK(identified >= 1);
    CHECK_EQ(listen, 1);

    TEST("disconnect -> PEER_DISCONNECTED on both sides");
    CHECK_EQ(lp2p_host_disconnect(a, &bid), LP2P_OK);
    CHECK(!lp2p_host_is_connected(a, &bid));
    int64_t dl = lp2p_deadline_in(5000);
    while (lp2p_host_is_connected(b, &aid) && lp2p_now() < dl) lp2p_host_poll(b, 10), lp2p_host_poll(a, 0);
    CHECK(!lp2p_host_is_connected(b, &aid));
    int disc = 0;
    while (lp2p_host_next_event(b, &ev)) disc += ev.type == LP2P_EVENT_PEER_DISCONNECTED;
    CHECK_EQ(disc, 1);
    /* and reconnecting works */
    CHECK(lp2p_ping(a, baddr, lp2p_deadline_in(5000)) >= 0);

    TEST("wrong /p2p/ ID -> ERR_HANDSHAKE, host keeps working");
    lp2p_host *c = new_host();
    if (c) {
        char wrong[700];
        const char *p2p = strstr(baddr, "/p2p/");
        snprintf(wrong, sizeof wrong, "%.*s%s", (int)(p2p - baddr), baddr, strstr(lp2p_host_addr(c, 0), "/p2p/"));
        CHECK_EQ(lp2p_host_connect(a, wrong, lp2p_deadline_in(5000)), LP2P_ERR_HANDSHAKE);
        CHECK(lp2p_ping(a, baddr, lp2p_deadline_in(5000)) >= 0);
        CHECK(lp2p_ping(a, lp2p_host_addr(c, 0), lp2p_deadline_in(5000)) >= 0);
        lp2p_host_free(c);
    }
    TEST("bad addresses");
    CHECK_EQ(lp2p_host_connect(a, "/ip4/127.0.0.1/tcp/1", lp2p_deadline_in(1000)), LP2P_ERR_BADADDR);
    CHECK_EQ(lp2p_host_connect(a, "/ip4/999.0.0.1/tcp/1/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN",
                               lp2p_deadline_in(1000)),
             LP2P_ERR_BADADDR);
    CHECK_EQ(lp2p_host_connect(a, "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN", lp2p_deadline_in(1000)),
             LP2P_ERR_NOADDR);
    lp2p_host_free(a);
    lp2p_host_free(b);
}

/* ---- many streams from tasks ---- */
typedef struct {
    lp2p_host *h;
    const char *addr;
    int ok;
} stream_job;

static void stream_task(void *arg) {
    stream_job *j = (stream_job *)arg;
    j->ok = echo_roundtrip(j->h, j->addr, 10000);
}

static void test_many_streams(void) {
    TEST("100 concurrent streams on one connection, from tasks");
    lp2p_host *a = new_host(), *b = new_host();
    if (!a || !b) return;
    const char *baddr = lp2p_host_addr(b, 0);
    CHECK_EQ(lp2p_host_connect(a, baddr, lp2p_deadline_in(10000)), LP2P_OK);
    static stream_job jobs[100];
    lp2p_task tasks[100];
    for (int i = 0; i < 100; i++) {
        jobs[i].h = a, jobs[i].addr = baddr, jobs[i].ok = 0;
        tasks[i] = lp2p_go(a, stream_task, &jobs[i]);
        CHECK(tasks[i].id != 0);
    }
    int ok = 0;
    for (int i = 0; i < 100; i++) {
        CHECK_EQ(lp2p_task_join(a, tasks[i], lp2p_deadline_in(30000)), LP2P_OK);
        ok += jobs[i].ok;
    }
    CHECK_EQ(ok, 100);
    lp2p_host_free(a);
    lp2p_host_free(b);
}

/* ---- handler-less protocol: streams as events ---- */
static void test_stream_events(void) {
    TEST("handler NULL: inbound streams arrive as LP2P_EVENT_STREAM");
    lp2p_host *a = new_host(), *b = new_host();
    if (!a || !b) return;
    CHECK_EQ(lp2p_host_handle(b, "/inbox/1.0.0", NULL, NULL), LP2P_OK);
    lp2p_stream *s = NULL;
    CHECK_EQ(lp2p_stream_open(a, lp2p_host_addr(b, 0), "/inbox/1.0.0", lp2p_deadline_in(5000), &s), LP2P_OK);
    if (!s) return;
    CHECK_EQ(lp2p_stream_write_msg(s, "hi", 2, lp2p_deadline_in(5000)), LP2P_OK);
    lp2p_event ev;
    lp2p_stream *in = NULL;
    int64_t dl = lp2p_deadline_in(5000);
    while (!in && lp2p_now() < dl) {
        lp2p_host_poll(b, 10);
        lp2p_host_poll(a, 0);
        while (lp2p_host_next_event(b, &ev))
            if (ev.type == LP2P_EVENT_STREAM) {
                in = ev.stream;
                CHECK_STR(ev.protocol, "/inbox/1.0.0");
            }
    }
    CHECK(in != NULL);
    if (in) {
        char buf[16];
        CHECK_EQ(lp2p_stream_read_msg(in, buf, sizeof buf, lp2p_deadline_in(5000)), 2);
        CHECK(memcmp(buf, "hi", 2) == 0);
        lp2p_stream_reset(in);
        CHECK_EQ(lp2p_stream_read(s, buf, sizeof buf, lp2p_deadline_in(5000)), LP2P_ERR_RESET);
    }
    lp2p_stream_close(s);
    lp2p_host_free(a);
    lp2p_host_free(b);
}

static void test_ten_hosts(void) {
    TEST("ten hosts: all pairs connect and ping");
    lp2p_host *h[10];
    int n = 0, ok = 0;
    for (int i = 0; i < 10; i++)
        if ((h[i] = new_host()) != NULL) n++;
    if (n != 10) return;
    for (int i = 0; i < 10; i++)
        for (int j = 0; j < 10; j++)
            if (i != j) ok += lp2p_ping(h[i], lp2p_host_addr(h[j], 0), lp2p_deadline_in(5000)) >= 0;
    CHECK_EQ(ok, 90);
    for (int i = 0; i < 10; i++) lp2p_host_free(h[i]);
}

static void test_deadlines(void) {
    TEST("deadlines: a silent stream times out, NOWAIT returns at once");
    lp2p_host *a = new_host(), *b = new_host();
    if (!a || !b) return;
    CHECK_EQ(lp2p_host_handle(b, "/silent/1.0.0", NULL, NULL), LP2P_OK);
    lp2p_stream *s = NULL;
    CHECK_EQ(lp2p_stream_open(a, lp2p_host_addr(b, 0), "/silent/1.0.0", lp2p_deadline_in(5000), &s), LP2P_OK);
    if (s) {
        char c;
        CHECK_EQ(lp2p_stream_read(s, &c, 1, LP2P_NOWAIT), LP2P_ERR_TIMEOUT);
        CHECK_EQ(lp2p_stream_read(s, &c, 1, lp2p_deadline_in(200)), LP2P_ERR_TIMEOUT);
        lp2p_stream_reset(s);
    }
    lp2p_host_free(a);
    lp2p_host_free(b);
}

int main(void) {
    test_two_hosts();
    test_many_streams();
    test_stream_events();
    test_ten_hosts();
    test_deadlines();
    TEST_END();
}
