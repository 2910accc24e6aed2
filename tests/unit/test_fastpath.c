/* test_fastpath.c - the data-path shortcuts added for throughput (bench/): the gathering AEAD
 * seal, verify-then-decrypt-any-range opening, the Noise pipe's writev (frames sealed where
 * the bytes lie) and its read-ahead (several frames per raw read, decrypted into the reader). Known answers come from the plain one-buffer functions.
 * Single-threaded over a socketpair (tests/unit/sockpipe.h) with 4 MiB socket buffers. */
#define LIBP2P_IMPLEMENTATION
#include "libp2p.h"
#include "tests/test.h"
#include "tests/unit/sockpipe.h"

static lp2p__ctx ctx;
static const uint8_t key[32] = {7, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                                16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31};

static void fill(uint8_t *p, size_t n, uint32_t seed) {
    for (size_t i = 0; i < n; i++) seed = seed * 1103515245u + 12345u, p[i] = (uint8_t)(seed >> 16);
}

/* seal the concatenation of the pieces given by cut points, compare with one-buffer sealing */
static int gather_matches(const uint8_t *pt, size_t total, const size_t *cuts, int ncuts, uint64_t nonce) {
    static uint8_t want[70000], got[70000];
    const uint8_t *seg[16];
    size_t len[16], prev = 0;
    int k = 0;
    for (int i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : total;
        seg[k] = pt + prev, len[k++] = end - prev;
        prev = end;
    }
    lp2p__aead_seal(key, nonce, NULL, 0, pt, total, want);
    memset(got, 0xee, total + 16);
    lp2p__aead_seal_gather(key, nonce, seg, len, k, got);
    return memcmp(want, got, total + 16) == 0;
}

static void test_gather(void) {
    static uint8_t pt[65519];
    fill(pt, sizeof pt, 1);
    TEST("aead gather: one segment of every length 0..200 equals the one-buffer seal");
    int ok = 0;
    for (size_t n = 0; n <= 200; n++) ok += gather_matches(pt, n, NULL, 0, n);
    CHECK_EQ(ok, 201);
    TEST("aead gather: a muxer header then the payload (12 + 65507), and odd splits");
    size_t hdr[] = {12};
    CHECK(gather_matches(pt, 65519, hdr, 1, 5));
    size_t three[] = {12, 24, 100};
    CHECK(gather_matches(pt, 65519, three, 3, 6));
    size_t aligned[] = {64, 128, 4096};
    CHECK(gather_matches(pt, 65519, aligned, 3, 7));
    size_t empty[] = {0, 0, 12, 12, 65519};
    CHECK(gather_matches(pt, 65519, empty, 5, 8));
    TEST("aead gather: random splits of random lengths (fixed seed)");
    uint32_t r = 42;
    ok = 0;
    for (int t = 0; t < 300; t++) {
        r = r * 1103515245u + 12345u;
        size_t total = (r >> 8) % 65520, cuts[8];
        int nc = (int)((r >> 4) % 8);
        for (int i = 0; i < nc; i++) {
            r = r * 1103515245u + 12345u;
            cuts[i] = total ? (r >> 8) % (total + 1) : 0;
        }
        for (int i = 1; i < nc; i++) /* sort */
            for (int j = i; j > 0 && cuts[j] < cuts[j - 1]; j--) {
                size_t x = cuts[j];
                cuts[j] = cuts[j - 1], cuts[j - 1] = x;
            }
        ok += gather_matches(pt, total, cuts, nc, (uint64_t)t << 20);
    }
    CHECK_EQ(ok, 300);
}

static void test_verify_xor(void) {
    static uint8_t pt[5000], ct[5000 + 16], out[5000];
    fill(pt, sizeof pt, 3);
    TEST("aead verify + xor_at: any ranges decrypt like the one-shot open; a bad tag is caught");
    lp2p__aead_seal(key, 77, NULL, 0, pt, sizeof pt, ct);
    CHECK_EQ(lp2p__aead_verify(key, 77, ct, sizeof pt), LP2P_OK);
    CHECK_EQ(lp2p__aead_verify(key, 78, ct, sizeof pt), LP2P_ERR_PROTOCOL);
    static const size_t cuts[] = {0, 1, 12, 63, 64, 65, 100, 127, 128, 1000, 4095, 4999, 5000};
    int ok = 0, n = (int)(sizeof cuts / sizeof cuts[0]);
    for (int i = 0; i < n; i++)
        for (int j = i; j < n; j++) {
            memset(out, 0, sizeof out);
            lp2p__aead_xor_at(key, 77, cuts[i], ct + cuts[i], cuts[j] - cuts[i], out);
            ok += memcmp(out, pt + cuts[i], cuts[j] - cuts[i]) == 0;
        }
    CHECK_EQ(ok, n * (n + 1) / 2);
    ct[100] ^= 1;
    CHECK_EQ(lp2p__aead_verify(key, 77, ct, sizeof pt), LP2P_ERR_PROTOCOL);
    ct[100] ^= 1, ct[sizeof pt] ^= 0x80;
    CHECK_EQ(lp2p__aead_verify(key, 77, ct, sizeof pt), LP2P_ERR_PROTOCOL);
}

/* a noise pipe pair without a handshake: a's sending key is b's receiving key */
static int raw_reads;
static ptrdiff_t counting_read(lp2p__pipe *p, void *buf, size_t cap, int64_t deadline) {
    raw_reads++;
    return t_sock_read(p, buf, cap, deadline);
}
static lp2p__pipe_vt counting_vt;

static void noise_pair(lp2p__noise_pipe **a, lp2p__noise_pipe **b) {
    t_sockpipe *ra, *rb;
    t_sockpipe_pair(&ra, &rb);
    counting_vt = t_sock_vt;
    counting_vt.read = counting_read;
    rb->base.vt = &counting_vt;
    *a = lp2p__noise_pipe_new(&ctx, &ra->base);
    *b = lp2p__noise_pipe_new(&ctx, &rb->base);
    memcpy((*a)->k_send, key, 32), memcpy((*b)->k_recv, key, 32);
    memcpy((*b)->k_send, key + 1, 31), memcpy((*a)->k_recv, key + 1, 31);
}

static int read_all(lp2p__pipe *p, uint8_t *out, size_t n, size_t chunk) {
    size_t got = 0;
    while (got < n) {
        ptrdiff_t r = lp2p__pipe_read(p, out + got, LP2P__MIN(chunk, n - got), lp2p_deadline_in(5000));
        if (r <= 0) return r == 0 ? LP2P_ERR_EOF : (int)r;
        got += (size_t)r;
    }
    return LP2P_OK;
}

static void test_noise_paths(void) {
    lp2p__noise_pipe *a, *b;
    noise_pair(&a, &b);
    size_t total = 12 + 65507 + 12 + 1000 + 5 + 190000; /* <= LP2P__NOISE_WBATCH */
    uint8_t *src = (uint8_t *)malloc(total), *dst = (uint8_t *)malloc(total);
    fill(src, total, 9);
    TEST("noise writev: header + payload pieces arrive as their concatenation");
    lp2p__iov iov[] = {{src, 12}, {src + 12, 65507}, {src + 65519, 12}, {src + 65531, 1000}, {src + 66531, 5},
                       {src + 66536, 190000}};
    CHECK_EQ(lp2p__noise_writev(&a->base, iov, 6, lp2p_deadline_in(5000)), LP2P_OK);
    CHECK_EQ(read_all(&b->base, dst, total, 1 << 20), LP2P_OK);
    CHECK_MEM(dst, src, total);
    TEST("noise writev: frames carry <= 65519 plaintext bytes; too many buffers or bytes -> ERR_INVALID");
    CHECK_EQ(a->n_send, (total + 65518) / 65519);
    lp2p__iov many[LP2P__NOISE_IOV_MAX + 1];
    for (int i = 0; i <= LP2P__NOISE_IOV_MAX; i++) many[i].p = src, many[i].n = 1;
    CHECK_EQ(lp2p__noise_writev(&a->base, many, LP2P__NOISE_IOV_MAX + 1, lp2p_deadline_in(5000)), LP2P_ERR_INVALID);
    lp2p__iov huge[2] = {{src, LP2P__NOISE_WBATCH}, {src, 1}};
    CHECK_EQ(lp2p__noise_writev(&a->base, huge, 2, lp2p_deadline_in(5000)), LP2P_ERR_INVALID);
    CHECK_EQ(lp2p__noise_writev(&a->base, many, LP2P__NOISE_IOV_MAX, lp2p_deadline_in(5000)), LP2P_OK);
    CHECK_EQ(read_all(&b->base, dst, LP2P__NOISE_IOV_MAX, 7), LP2P_OK);
    CHECK_EQ(dst[0], src[0]);

    TEST("noise read-ahead: 16 full frames take a handful of raw reads, small reads included");
    size_t big = 16 * 65519;
    uint8_t *s2 = (uint8_t *)malloc(big), *d2 = (uint8_t *)malloc(big);
    fill(s2, big, 11);
    CHECK_EQ(lp2p__pipe_write(&a->base, s2, big, lp2p_deadline_in(5000)), LP2P_OK);
    raw_reads = 0;
    CHECK_EQ(read_all(&b->base, d2, 12, 12), LP2P_OK); /* a muxer header first */
    CHECK_EQ(read_all(&b->base, d2 + 12, big - 12, 65507), LP2P_OK);
    CHECK_MEM(d2, s2, big);
    CHECK(raw_reads <= 8); /* one header read and one body read per frame was 32 */
    TEST("noise read-ahead: a drained pipe that has to wait gives its buffer back (waits inline)");
    CHECK(b->rbuf != b->rinl);
    CHECK_EQ(lp2p__pipe_read(&b->base, d2, 100, LP2P_NOWAIT), LP2P_ERR_TIMEOUT);
    CHECK(b->rbuf == b->rinl);
    TEST("noise read-ahead: a big caller buffer gets frames decrypted straight into it");
    CHECK_EQ(lp2p__pipe_write(&a->base, s2, big, lp2p_deadline_in(5000)), LP2P_OK);
    CHECK_EQ(read_all(&b->base, d2, big, big), LP2P_OK);
    CHECK_MEM(d2, s2, big);
    TEST("noise read-ahead: the buffer of a small-frame pipe stays small");
    lp2p__noise_pipe *c, *d;
    noise_pair(&c, &d);
    CHECK_EQ(lp2p__pipe_write(&c->base, "hello", 5, lp2p_deadline_in(5000)), LP2P_OK);
    CHECK_EQ(read_all(&d->base, d2, 5, 64), LP2P_OK);
    CHECK_MEM(d2, "hello", 5);
    CHECK(d->rcap <= 4096);
    CHECK_EQ(lp2p__pipe_read(&d->base, d2, 100, LP2P_NOWAIT), LP2P_ERR_TIMEOUT);
    CHECK(d->rbuf == d->rinl);
    c->base.vt->close(&c->base), d->base.vt->close(&d->base);
    a->base.vt->close(&a->base), b->base.vt->close(&b->base);
    free(src), free(dst), free(s2), free(d2);
}

int main(void) {
    lp2p__crypto_init();
    (void)t_spawn, (void)t_join; /* sockpipe.h helpers this single-threaded test does not need */
    lp2p__ctx_init(&ctx, NULL, NULL, LP2P_LOG_DEFAULT);
    test_gather();
    test_verify_xor();
    test_noise_paths();
    TEST_END();
}
