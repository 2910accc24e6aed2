/* test_badinput.c - a peer that sends malformed or oversized multistream, Noise, yamux or
 * identify data gets its stream or connection closed, and the host keeps serving everyone
 * else within its deadlines. Raw sockets on 127.0.0.1 play the bad peer. */
#define LIBP2P_IMPLEMENTATION
#include "libp2p.h"
#include "tests/test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

static int port_of(const char *addr) {
    const char *p = strstr(addr, "/tcp/");
    return p ? atoi(p + 5) : 0;
}

static int raw_connect(int port) {
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET, sa.sin_port = htons((uint16_t)port), sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

/* Pump the host until the raw peer sees the connection closed (EOF or reset); 1 if it did. */
static int closed_by_host(lp2p_host *h, int fd, int64_t deadline) {
    char buf[4096];
    while (lp2p_now() < deadline) {
        lp2p_host_poll(h, 10);
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) return 1;
    }
    return 0;
}

static lp2p_host *new_host(int handshake_ms) {
    lp2p_config cfg;
    lp2p_host *h = NULL;
    memset(&cfg, 0, sizeof cfg);
    cfg.handshake_timeout_ms = handshake_ms;
    cfg.log_level = getenv("LP2P_TEST_LOG") ? LP2P_LOG_DEBUG : LP2P_LOG_PANIC;
    CHECK_EQ(lp2p_host_new(&cfg, &h), LP2P_OK);
    return h;
}

static void still_serving(lp2p_host *a, lp2p_host *c) {
    CHECK(lp2p_ping(c, lp2p_host_addr(a, 0), lp2p_deadline_in(5000)) >= 0);
}

static void send_raw(int fd, const void *p, size_t n) { CHECK_EQ(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n); }

static void test_raw_garbage(void) {
    lp2p_host *a = new_host(1000), *c = new_host(0);
    if (!a || !c) return;
    int port = port_of(lp2p_host_addr(a, 0));

    TEST("garbage instead of the multistream header -> connection closed");
    int fd = raw_connect(port);
    send_raw(fd, "\x05hello", 6);
    CHECK(closed_by_host(a, fd, lp2p_deadline_in(3000)));
    close(fd);
    still_serving(a, c);

    TEST("oversized multistream message -> connection closed");
    fd = raw_connect(port);
    uint8_t big[3000];
    memset(big, 'a', sizeof big);
    big[0] = 0xb0, big[1] = 0x17; /* varint 3000 > 1024 */
    send_raw(fd, big, sizeof big);
    CHECK(closed_by_host(a, fd, lp2p_deadline_in(3000)));
    close(fd);
    still_serving(a, c);

    TEST("valid multistream, then a malformed Noise message -> connection closed");
    fd = raw_connect(port);
    const char hello[] = "\x13/multistream/1.0.0\n\x07/noise\n";
    send_raw(fd, hello, sizeof hello - 1);
    uint8_t noise[2 + 7] = {0x00, 0x07, 1, 2, 3, 4, 5, 6, 7}; /* an ephemeral key must be 32 bytes */
    send_raw(fd, noise, sizeof noise);
    CHECK(closed_by_host(a, fd, lp2p_deadline_in(3000)));
    close(fd);
    still_serving(a, c);

    TEST("a silent peer is dropped after handshake_timeout_ms");
    fd = raw_connect(port);
    CHECK(closed_by_host(a, fd, lp2p_deadline_in(5000)));
    close(fd);
    still_serving(a, c);

    TEST("many junk connections in a row leak nothing and block nobody");
    for (int i = 0; i < 50; i++) {
        fd = raw_connect(port);
        send_raw(fd, "\x01\n", 2);
        CHECK(closed_by_host(a, fd, lp2p_deadline_in(3000)));
        close(fd);
    }
    still_serving(a, c);
    lp2p_host_free(a);
    lp2p_host_free(c);
}

/* ---- a real handshake, then bad yamux frames (the bad peer is built from our own layers) ---- */
typedef struct bad_peer {
    lp2p_host *self; /* provides identity and scheduler */
    const char *target;
    const uint8_t *frame;
    size_t frame_len;
    int closed; /* 1 if the target closed the connection afterwards */
} bad_peer;

static void bad_yamux_task(void *arg) {
    bad_peer *b = (bad_peer *)arg;
    lp2p_host *h = b->self;
    lp2p__ma ma, base;
    lp2p_peer_id id;
    lp2p__pipe *raw = NULL, *lazy = NULL, *sec = NULL;
    lp2p__noise_result nr;
    int64_t dl = lp2p_deadline_in(5000);
    if (lp2p__ma_parse(b->target, &ma, NULL) || !lp2p__ma_split_p2p(&ma, &base, &id)) return;
    if (lp2p__tcp_dial(h->sched, &base, 0, &raw, NULL, NULL, dl)) return;
    if (lp2p__mss_lazy(&h->ctx, raw, LP2P__NOISE_PROTO, &lazy)) return;
    if (lp2p__noise_handshake(&h->ctx, lazy, &h->identity, true, &id, NULL, 0, &sec, &nr, dl)) {
        lazy->vt->reset(lazy);
        return;
    }
    const char *mux = LP2P__YAMUX_PROTO;
    if (lp2p__mss_select(sec, &mux, 1, dl) < 0 || lp2p__pipe_write(sec, b->frame, b->frame_len, dl)) {
        sec->vt->reset(sec);
        return;
    }
    uint8_t buf[4096];
    ptrdiff_t n;
    while ((n = lp2p__pipe_read(sec, buf, sizeof buf, dl)) > 0) {} /* GoAway, pings... until closed */
    b->closed = n == 0 || n == LP2P_ERR_RESET || n == LP2P_ERR_EOF || n == LP2P_ERR_PROTOCOL;
    sec->vt->reset(sec);
}

static void test_bad_yamux(void) {
    lp2p_host *a = new_host(0), *bad = new_host(0), *c = new_host(0);
    if (!a || !bad || !c) return;
    static const uint8_t bad_version[12] = {1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0};
    static const uint8_t bad_type[12] = {0, 9, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0};
    /* data on stream 1 with SYN, 1 MiB long: far beyond the 256 KiB window */
    static const uint8_t over_window[12] = {0, 0, 0, 1, 0, 0, 0, 1, 0, 0x10, 0, 0};
    const struct {
        const char *name;
        const uint8_t *f;
    } cases[] = {{"yamux frame with version 1", bad_version},
                 {"yamux frame of unknown type", bad_type},
                 {"yamux data beyond the receive window", over_window}};
    for (size_t i = 0; i < LP2P__COUNT(cases); i++) {
        TEST(cases[i].name);
        bad_peer b = {bad, lp2p_host_addr(a, 0), cases[i].f, 12, 0};
        lp2p_task t = lp2p_go(bad, bad_yamux_task, &b);
        int64_t dl = lp2p_deadline_in(8000);
        while (lp2p_task_alive(bad, t) && lp2p_now() < dl) lp2p_host_poll(a, 5), lp2p_host_poll(bad, 5);
        CHECK(b.closed);
        still_serving(a, c);
    }
    lp2p_host_free(bad);
    lp2p_host_free(a);
    lp2p_host_free(c);
}

/* ---- malformed identify: a peer answers /ipfs/id/1.0.0 with junk or too much ---- */
static void junk_identify(lp2p_stream *s, void *user) {
    uint8_t junk[64];
    memset(junk, 0xff, sizeof junk);
    if (user) { /* oversized: a 100 KB message */
        size_t n = 100000;
        uint8_t *big = calloc(1, n);
        lp2p_stream_write_msg(s, big, n, lp2p_deadline_in(2000));
        free(big);
    } else {
        lp2p_stream_write_msg(s, junk, sizeof junk, lp2p_deadline_in(2000));
    }
}

static void test_bad_identify(void) {
    for (int oversized = 0; oversized < 2; oversized++) {
        TEST(oversized ? "oversized identify message -> identify fails, connection usable"
                       : "malformed identify message -> identify fails, connection usable");
        lp2p_host *a = new_host(0), *bad = new_host(0);
        if (!a || !bad) return;
        CHECK_EQ(lp2p_host_handle(bad, "/ipfs/id/1.0.0", junk_identify, oversized ? (void *)1 : NULL), LP2P_OK);
        CHECK_EQ(lp2p_host_identify(a, lp2p_host_addr(bad, 0), lp2p_deadline_in(5000)), LP2P_OK);
        lp2p_peer_id bid = lp2p_host_id(bad);
        lp2p_peer_info info;
        CHECK(lp2p_host_peer_info(a, &bid, &info) != LP2P_OK || info.agent_version == NULL);
        CHECK(lp2p_ping(a, lp2p_host_addr(bad, 0), lp2p_deadline_in(5000)) >= 0);
        lp2p_host_free(a);
        lp2p_host_free(bad);
    }
}

int main(void) {
    test_raw_garbage();
    test_bad_yamux();
    test_bad_identify();
    TEST_END();
}
