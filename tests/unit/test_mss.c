/* test_mss.c - L4 multistream-select: select/handle (na then match, all na), ls answer,
 * oversized / unterminated / wrong-header messages, read-ahead preservation, lazy dialer
 * (one write, na, read before write). Runs over socketpair test pipes on two threads. */
#define LIBP2P_IMPLEMENTATION
#include "libp2p.h"
#include "tests/test.h"
#include "tests/unit/sockpipe.h"

#define DL lp2p_deadline_in(10000)

/* ---- a listener thread running lp2p__mss_handle ---- */
typedef struct listener_arg {
    t_sockpipe *p;
    const char *const *protos; /* supported, NULL-terminated */
    bool with_ls;
    int rc;
    char out[LP2P__MSS_MAX + 1];
    const char *reply; /* written after a match, if set */
    char got[64];      /* bytes read after a match (up to close) */
    ptrdiff_t got_len;
} listener_arg;

static bool match_fn(void *user, const char *proto) {
    listener_arg *a = (listener_arg *)user;
    for (int i = 0; a->protos[i]; i++)
        if (strcmp(a->protos[i], proto) == 0) return true;
    return false;
}

static int list_fn(void *user, const char **protos, int max) {
    listener_arg *a = (listener_arg *)user;
    int n = 0;
    while (a->protos[n] && n < max) protos[n] = a->protos[n], n++;
    return n;
}

static void *listener_main(void *arg) {
    listener_arg *a = (listener_arg *)arg;
    a->rc = lp2p__mss_handle(&a->p->base, match_fn, a->with_ls ? list_fn : NULL, a, a->out, sizeof a->out, DL);
    if (a->rc == LP2P_OK && a->reply) lp2p__pipe_write(&a->p->base, a->reply, strlen(a->reply), DL);
    if (a->rc == LP2P_OK) {
        a->got_len = 0;
        for (;;) {
            ptrdiff_t n = lp2p__pipe_read(&a->p->base, a->got + a->got_len, sizeof a->got - 1 - (size_t)a->got_len, DL);
            if (n <= 0) break;
            a->got_len += n;
        }
        a->got[a->got_len] = '\0';
    }
    return NULL;
}

static void test_select_handle(void) {
    TEST("mss: na then match, data after negotiation");
    t_sockpipe *d, *l;
    t_sockpipe_pair(&d, &l);
    static const char *const supported[] = {"/b/1.0.0", "/c", NULL};
    listener_arg la = {.p = l, .protos = supported, .reply = "pong"};
    pthread_t t = t_spawn(listener_main, &la);
    const char *props[] = {"/a/1.0.0", "/b/1.0.0", "/c"};
    int rc = lp2p__mss_select(&d->base, props, 3, DL);
    CHECK_EQ(rc, 1);
    CHECK_EQ(d->writes, 2); /* header+"/a" in one write, then "/b" */
    char buf[8] = {0};
    CHECK_EQ(lp2p__pipe_read_full(&d->base, buf, 4, DL), LP2P_OK);
    CHECK_STR(buf, "pong");
    CHECK_EQ(lp2p__pipe_write(&d->base, "ping", 4, DL), LP2P_OK);
    d->base.vt->close_write(&d->base);
    t_join(t);
    CHECK_EQ(la.rc, LP2P_OK);
    CHECK_STR(la.out, "/b/1.0.0");
    CHECK_STR(la.got, "ping");
    d->base.vt->close(&d->base);
    l->base.vt->close(&l->base);

    TEST("mss: every proposal refused -> ERR_PROTO_NA; listener sees EOF");
    t_sockpipe_pair(&d, &l);
    static const char *const none[] = {"/z", NULL};
    listener_arg lb = {.p = l, .protos = none};
    t = t_spawn(listener_main, &lb);
    CHECK_EQ(lp2p__mss_select(&d->base, props, 2, DL), LP2P_ERR_PROTO_NA);
    d->base.vt->close(&d->base);
    t_join(t);
    CHECK_EQ(lb.rc, LP2P_ERR_EOF);
    l->base.vt->close(&l->base);

    TEST("mss: invalid local proposals rejected before sending");
    t_sockpipe_pair(&d, &l);
    const char *bad1[] = {"/with\nnewline"};
    const char *bad2[] = {""};
    CHECK_EQ(lp2p__mss_select(&d->base, bad1, 1, DL), LP2P_ERR_INVALID);
    CHECK_EQ(lp2p__mss_select(&d->base, bad2, 1, DL), LP2P_ERR_INVALID);
    CHECK_EQ(lp2p__mss_select(&d->base, props, 0, DL), LP2P_ERR_INVALID);
    CHECK_EQ(d->writes, 0);
    d->base.vt->close(&d->base);
    l->base.vt->close(&l->base);
}

/* read one varint-prefixed message from a raw pipe into buf, return its length */
static ptrdiff_t raw_msg(t_sockpipe *p, uint8_t *buf, size_t cap) {
    return lp2p__pipe_read_msg(&p->base, buf, cap, NULL, DL);
}

static void test_ls(void) {
    TEST("mss: ls answer is one message of length-prefixed lines");
    t_sockpipe *d, *l;
    t_sockpipe_pair(&d, &l);
    static const char *const supported[] = {"/yamux/1.0.0", "/noise", NULL};
    listener_arg la = {.p = l, .protos = supported, .with_ls = true};
    pthread_t t = t_spawn(listener_main, &la);
    static const uint8_t req[] = "\x13/multistream/1.0.0\n\x03ls\n";
    CHECK_EQ(lp2p__pipe_write(&d->base, req, sizeof req - 1, DL), LP2P_OK);
    uint8_t buf[1100];
    ptrdiff_t n = raw_msg(d, buf, sizeof buf);
    CHECK_EQ(n, 19);
    CHECK_MEM(buf, "/multistream/1.0.0\n", 19);
    n = raw_msg(d, buf, sizeof buf);
    static const uint8_t want[] = "\x0d/yamux/1.0.0\n\x07/noise\n\n";
    CHECK_EQ(n, sizeof want - 1);
    CHECK_MEM(buf, want, sizeof want - 1);
    /* then select normally on the same stream */
    static const uint8_t sel[] = "\x07/noise\n";
    CHECK_EQ(lp2p__pipe_write(&d->base, sel, sizeof sel - 1, DL), LP2P_OK);
    n = raw_msg(d, buf, sizeof buf);
    CHECK_EQ(n, 7);
    CHECK_MEM(buf, "/noise\n", 7);
    d->base.vt->close(&d->base);
    t_join(t);
    CHECK_EQ(la.rc, LP2P_OK);
    CHECK_STR(la.out, "/noise");
    l->base.vt->close(&l->base);

    TEST("mss: ls without a list function is answered na");
    t_sockpipe_pair(&d, &l);
    listener_arg lb = {.p = l, .protos = supported, .with_ls = false};
    t = t_spawn(listener_main, &lb);
    CHECK_EQ(lp2p__pipe_write(&d->base, req, sizeof req - 1, DL), LP2P_OK);
    CHECK_EQ(raw_msg(d, buf, sizeof buf), 19);
    CHECK_EQ(raw_msg(d, buf, sizeof buf), 3);
    CHECK_MEM(buf, "na\n", 3);
    d->base.vt->close(&d->base);
    t_join(t);
    CHECK_EQ(lb.rc, LP2P_ERR_EOF);
    l->base.vt->close(&l->base);
}

/* the listener gets bytes and must fail with want */
static void expect_listener_error(const uint8_t *bytes, size_t len, int want, const char *name) {
    TEST(name);
    t_sockpipe *d, *l;
    t_sockpipe_pair(&d, &l);
    static const char *const supported[] = {"/x", NULL};
    listener_arg la = {.p = l, .protos = supported, .with_ls = true};
    pthread_t t = t_spawn(listener_main, &la);
    CHECK_EQ(lp2p__pipe_write(&d->base, bytes, len, DL), LP2P_OK);
    t_join(t);
    CHECK_EQ(la.rc, want);
    d->base.vt->close(&d->base);
    l->base.vt->close(&l->base);
}

static void test_malformed(void) {
    uint8_t msg[2 + 1025 + 32];
    size_t off = 0;
    memcpy(msg, "\x13/multistream/1.0.0\n", 20), off = 20;
    off += lp2p__uvarint_put(msg + off, 1025);
    memset(msg + off, 'a', 1024), msg[off + 1024] = '\n', off += 1025;
    expect_listener_error(msg, off, LP2P_ERR_PROTOCOL, "mss: 1025-byte message -> ERR_PROTOCOL");

    static const uint8_t nonl[] = "\x13/multistream/1.0.0\n\x03/x ";
    expect_listener_error(nonl, sizeof nonl - 1, LP2P_ERR_PROTOCOL, "mss: message without newline -> ERR_PROTOCOL");
    static const uint8_t badhdr[] = "\x13/multistream/2.0.0\n\x03/x\n";
    expect_listener_error(badhdr, sizeof badhdr - 1, LP2P_ERR_PROTOCOL, "mss: wrong header -> ERR_PROTOCOL");
    static const uint8_t empty[] = "\x13/multistream/1.0.0\n\x00";
    expect_listener_error(empty, sizeof empty - 1, LP2P_ERR_PROTOCOL, "mss: empty message -> ERR_PROTOCOL");
    static const uint8_t nonmin[] = "\x13/multistream/1.0.0\n\x83\x00/x\n";
    expect_listener_error(nonmin, sizeof nonmin - 1, LP2P_ERR_PROTOCOL, "mss: non-minimal varint -> ERR_PROTOCOL");

    /* exactly 1024 bytes is fine (answered na, then EOF) */
    off = 20;
    off += lp2p__uvarint_put(msg + off, 1024);
    memset(msg + off, 'a', 1023), msg[off + 1023] = '\n', off += 1024;
    TEST("mss: 1024-byte message accepted (answered na)");
    t_sockpipe *d, *l;
    t_sockpipe_pair(&d, &l);
    static const char *const supported[] = {"/x", NULL};
    listener_arg la = {.p = l, .protos = supported};
    pthread_t t = t_spawn(listener_main, &la);
    CHECK_EQ(lp2p__pipe_write(&d->base, msg, off, DL), LP2P_OK);
    uint8_t buf[64];
    CHECK_EQ(raw_msg(d, buf, sizeof buf), 19);
    CHECK_EQ(raw_msg(d, buf, sizeof buf), 3);
    CHECK_MEM(buf, "na\n", 3);
    d->base.vt->close(&d->base);
    t_join(t);
    CHECK_EQ(la.rc, LP2P_ERR_EOF);
    l->base.vt->close(&l->base);

    TEST("mss: dialer rejects a reply that is neither echo nor na");
    t_sockpipe_pair(&d, &l);
    static const uint8_t junk[] = "\x13/multistream/1.0.0\n\x03/y\n";
    CHECK_EQ(lp2p__pipe_write(&l->base, junk, sizeof junk - 1, DL), LP2P_OK);
    const char *props[] = {"/x"};
    CHECK_EQ(lp2p__mss_select(&d->base, props, 1, DL), LP2P_ERR_PROTOCOL);
    d->base.vt->close(&d->base);
    l->base.vt->close(&l->base);

    TEST("mss: dialer sees EOF before the echo -> ERR_EOF");
    t_sockpipe_pair(&d, &l);
    CHECK_EQ(lp2p__pipe_write(&l->base, junk, 20, DL), LP2P_OK);
    l->base.vt->close_write(&l->base);
    CHECK_EQ(lp2p__mss_select(&d->base, props, 1, DL), LP2P_ERR_EOF);
    d->base.vt->close(&d->base);
    l->base.vt->close(&l->base);
}

static void test_read_ahead(void) {
    TEST("mss: bytes pipelined after the echo stay in the pipe");
    t_sockpipe *d, *l;
    t_sockpipe_pair(&d, &l);
    /* the responder's header, echo and first data, all in one write before the dialer reads */
    static const uint8_t resp[] = "\x13/multistream/1.0.0\n\x07/noise\n\x00\x20" "EXTRA-BYTES-0123456789abcdefghij";
    CHECK_EQ(lp2p__pipe_write(&l->base, resp, sizeof resp - 1, DL), LP2P_OK);
    const char *props[] = {"/noise"};
    CHECK_EQ(lp2p__mss_select(&d->base, props, 1, DL), 0);
    uint8_t buf[34];
    CHECK_EQ(lp2p__pipe_read_full(&d->base, buf, 34, DL), LP2P_OK);
    CHECK_MEM(buf, resp + 28, 34);
    d->base.vt->close(&d->base);
    l->base.vt->close(&l->base);

    TEST("mss: listener keeps bytes pipelined after the proposal");
    t_sockpipe_pair(&d, &l);
    static const char *const supported[] = {"/noise", NULL};
    listener_arg la = {.p = l, .protos = supported};
    static const uint8_t req[] = "\x13/multistream/1.0.0\n\x07/noise\nnoise-msg-1";
    CHECK_EQ(lp2p__pipe_write(&d->base, req, sizeof req - 1, DL), LP2P_OK);
    d->base.vt->close_write(&d->base);
    pthread_t t = t_spawn(listener_main, &la);
    t_join(t);
    CHECK_EQ(la.rc, LP2P_OK);
    CHECK_STR(la.got, "noise-msg-1");
    d->base.vt->close(&d->base);
    l->base.vt->close(&l->base);
}

static void test_lazy(void) {
    TEST("mss lazy: header + proposal + data in one write; echo checked on first read");
    t_sockpipe *d, *l;
    t_sockpipe_pair(&d, &l);
    static const char *const supported[] = {"/echo/1.0.0", NULL};
    listener_arg la = {.p = l, .protos = supported, .reply = "world"};
    lp2p__ctx ctx;
    lp2p__ctx_init(&ctx, NULL, NULL, LP2P_LOG_DEFAULT);
    lp2p__pipe *lz;
    CHECK_EQ(lp2p__mss_lazy(&ctx, &d->base, "/echo/1.0.0", &lz), LP2P_OK);
    CHECK_EQ(d->writes, 0);
    CHECK_EQ(lp2p__pipe_write(lz, "hello", 5, DL), LP2P_OK);
    CHECK_EQ(d->writes, 1);
    CHECK_EQ(d->written, 20 + 13 + 5);
    pthread_t t = t_spawn(listener_main, &la);
    char buf[16] = {0};
    CHECK_EQ(lp2p__pipe_read_full(lz, buf, 5, DL), LP2P_OK);
    CHECK_STR(buf, "world");
    CHECK_EQ(lp2p__pipe_write(lz, " again", 6, DL), LP2P_OK);
    CHECK_EQ(lz->vt->close_write(lz), LP2P_OK);
    t_join(t);
    CHECK_EQ(la.rc, LP2P_OK);
    CHECK_STR(la.got, "hello again");
    lz->vt->close(lz); /* closes d too */
    l->base.vt->close(&l->base);

    TEST("mss lazy: na -> first read fails with ERR_PROTO_NA (and stays failed)");
    t_sockpipe_pair(&d, &l);
    static const char *const other[] = {"/other", NULL};
    listener_arg lb = {.p = l, .protos = other};
    t = t_spawn(listener_main, &lb);
    CHECK_EQ(lp2p__mss_lazy(&ctx, &d->base, "/echo/1.0.0", &lz), LP2P_OK);
    CHECK_EQ(lp2p__pipe_write(lz, "hello", 5, DL), LP2P_OK);
    CHECK_EQ(lp2p__pipe_read(lz, buf, sizeof buf, DL), LP2P_ERR_PROTO_NA);
    CHECK_EQ(lp2p__pipe_read(lz, buf, sizeof buf, DL), LP2P_ERR_PROTO_NA);
    CHECK_EQ(lp2p__pipe_write(lz, "x", 1, DL), LP2P_ERR_PROTO_NA);
    lz->vt->reset(lz);
    t_join(t);
    /* the listener took "hello" as a (malformed) message or saw EOF: it must not succeed */
    CHECK(lb.rc != LP2P_OK);
    l->base.vt->close(&l->base);

    TEST("mss lazy: read before any write sends header + proposal first");
    t_sockpipe_pair(&d, &l);
    listener_arg lc = {.p = l, .protos = supported, .reply = "first"};
    t = t_spawn(listener_main, &lc);
    CHECK_EQ(lp2p__mss_lazy(&ctx, &d->base, "/echo/1.0.0", &lz), LP2P_OK);
    memset(buf, 0, sizeof buf);
    CHECK_EQ(lp2p__pipe_read_full(lz, buf, 5, DL), LP2P_OK);
    CHECK_STR(buf, "first");
    CHECK_EQ(d->writes, 1);
    CHECK_EQ(lz->vt->close_write(lz), LP2P_OK);
    t_join(t);
    CHECK_EQ(lc.rc, LP2P_OK);
    CHECK_EQ(lc.got_len, 0);
    lz->vt->close(lz);
    l->base.vt->close(&l->base);

    TEST("mss lazy: close_write before any write still sends the proposal");
    t_sockpipe_pair(&d, &l);
    listener_arg ld = {.p = l, .protos = supported};
    CHECK_EQ(lp2p__mss_lazy(&ctx, &d->base, "/echo/1.0.0", &lz), LP2P_OK);
    CHECK_EQ(lz->vt->close_write(lz), LP2P_OK);
    t = t_spawn(listener_main, &ld);
    t_join(t);
    CHECK_EQ(ld.rc, LP2P_OK);
    CHECK_STR(ld.out, "/echo/1.0.0");
    lz->vt->close(lz);
    l->base.vt->close(&l->base);

    TEST("mss lazy: a large first write is split (prefix + 64 KiB, then the rest)");
    t_sockpipe_pair(&d, &l);
    listener_arg le = {.p = l, .protos = supported};
    CHECK_EQ(lp2p__mss_lazy(&ctx, &d->base, "/echo/1.0.0", &lz), LP2P_OK);
    size_t big = 100000;
    uint8_t *data = (uint8_t *)malloc(big);
    for (size_t i = 0; i < big; i++) data[i] = (uint8_t)(i * 7);
    CHECK_EQ(lp2p__pipe_write(lz, data, big, DL), LP2P_OK);
    CHECK_EQ(d->writes, 2);
    le.reply = NULL;
    CHECK_EQ(lp2p__mss_handle(&l->base, match_fn, NULL, &le, le.out, sizeof le.out, DL), LP2P_OK);
    uint8_t *back = (uint8_t *)malloc(big);
    CHECK_EQ(lp2p__pipe_read_full(&l->base, back, big, DL), LP2P_OK);
    CHECK_MEM(back, data, big);
    free(data), free(back);
    lz->vt->close(lz);
    l->base.vt->close(&l->base);

    TEST("mss lazy: invalid protocol");
    CHECK_EQ(lp2p__mss_lazy(&ctx, NULL, "", &lz), LP2P_ERR_INVALID);
}

int main(void) {
    test_select_handle();
    test_ls();
    test_malformed();
    test_read_ahead();
    test_lazy();
    TEST_END();
}
