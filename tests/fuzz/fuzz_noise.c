/* fuzz_noise.c - libFuzzer target: the Noise layer fed arbitrary bytes by its peer.
 * Byte 0 picks the mode (low 3 bits) and how the pipe splits reads (high bits); the rest is:
 *  0  a NoiseHandshakePayload for the decoder alone;
 *  1  the raw byte stream a responder reads (msg 1, msg 3), then EOF;
 *  2  the payload of msg 3 from a scripted initiator: the pipe plays a real Noise initiator with
 *     fixed keys, so the bytes arrive correctly encrypted and reach the payload decoder, the
 *     signature check and the muxer negotiation (seeds with the scripted peer's valid signature
 *     let mutations of the extensions through);
 *  3  the same for msg 2 towards our initiator;
 *  4  raw transport frames read by a secure pipe with fixed keys, reads of varying size;
 *  5  transport data the scripted peer seals into valid frames (chunk sizes from the input),
 *     read back and compared.
 * Our side uses fixed X25519 keys (the test hook) so every input replays exactly. Every byte
 * allocated through the library's allocator must be back after each input (abort otherwise).
 * Build: clang -fsanitize=fuzzer,address -I. tests/fuzz/fuzz_noise.c -lsodium -lbearssl -lprotobuf-nanopb -lpthread
 * FUZZ_NOISE_SEEDS=dir ./fuzz_noise writes seed inputs for modes 2 and 3 into dir and exits. */
#define LIBP2P_IMPLEMENTATION
#include "libp2p.h"
#include <stdio.h>
#include <stdlib.h>

static long f_live;
static void *f_alloc(size_t n, void *u) {
    (void)u;
    f_live += (long)n;
    return malloc(n);
}
static void f_free(void *p, size_t n, void *u) {
    (void)u;
    f_live -= (long)n;
    free(p);
}

static lp2p__identity f_self, f_peer_id;
static void f_keys(bool initiator, int which, uint8_t sk[32]) {
    for (int i = 0; i < 32; i++) sk[i] = (uint8_t)(i * 3 + which * 101 + (initiator ? 7 : 0));
}
static void f_peer_keys(bool initiator, uint8_t s[32], uint8_t e[32]) {
    f_keys(initiator, 0, s), s[0] ^= 0x55; /* different from ours */
    f_keys(initiator, 1, e), e[0] ^= 0x55;
}

/* The pipe: reads come from `in` (then EOF); writes vanish or, in the scripted modes, drive a
 * Noise peer that answers with the fuzz payload. */
#define F_IN_MAX (2 * 65537 + 64)
typedef struct fpipe {
    lp2p__pipe base;
    uint8_t *in;
    size_t len, off, split;
    int mode, writes;
    lp2p__noise_hs peer;
    const uint8_t *payload;
    size_t payload_len;
} fpipe;

static ptrdiff_t f_read(lp2p__pipe *p, void *buf, size_t cap, int64_t deadline) {
    (void)deadline;
    fpipe *f = (fpipe *)p;
    size_t n = LP2P__MIN(cap, f->len - f->off);
    if (f->split) n = LP2P__MIN(n, f->split);
    memcpy(buf, f->in + f->off, n);
    f->off += n;
    return (ptrdiff_t)n;
}

/* Append the scripted peer's next handshake message carrying the fuzz payload. */
static void f_peer_send(fpipe *f) {
    size_t n = LP2P__MIN(f->payload_len, (size_t)(65535 - LP2P__NOISE_HS_OVERHEAD));
    if (f->len + 2 + n + LP2P__NOISE_HS_OVERHEAD > F_IN_MAX) return;
    ptrdiff_t m = lp2p__noise_hs_write(&f->peer, f->payload, n, f->in + f->len + 2);
    if (m < 0) return;
    lp2p__put_be16(f->in + f->len, (uint16_t)m);
    f->len += 2 + (size_t)m;
}

static int f_write(lp2p__pipe *p, const void *buf, size_t len, int64_t deadline) {
    (void)deadline;
    fpipe *f = (fpipe *)p;
    f->writes++;
    if ((f->mode == 2 || f->mode == 3) && len >= 2 && f->writes == 1) {
        /* our first handshake message: the peer reads it and answers (mode 3), or reads our
         * msg 2 and sends msg 3 (mode 2) */
        static uint8_t tmp[65537];
        size_t off;
        memcpy(tmp, (const uint8_t *)buf + 2, len - 2);
        if (lp2p__noise_hs_read(&f->peer, tmp, len - 2, &off) >= 0) f_peer_send(f);
    }
    return LP2P_OK;
}
static int f_close_write(lp2p__pipe *p) {
    (void)p;
    return LP2P_OK;
}
static void f_close(lp2p__pipe *p) { (void)p; }
static const lp2p__pipe_vt f_vt = {f_read, f_write, f_close_write, f_close, f_close, NULL};

static const char *const f_muxers[] = {"/yamux/1.0.0", "/mplex/6.7.0"};

static void f_init(void) {
    static bool done;
    uint8_t seed[32];
    if (done) return;
    done = true;
    lp2p__crypto_init();
    memset(seed, 0x11, 32), lp2p__identity_from_seed(&f_self, seed);
    memset(seed, 0x22, 32), lp2p__identity_from_seed(&f_peer_id, seed);
    lp2p__noise_key_hook = f_keys;
}

static int f_last_rc; /* of the last handshake (for checking seeds in a debugger or driver) */
static char f_last_muxer[64];

static void f_handshake(lp2p__ctx *ctx, fpipe *f, bool initiator) {
    lp2p__pipe *sec = NULL;
    lp2p__noise_result res;
    uint8_t buf[4096];
    int rc = lp2p__noise_handshake(ctx, &f->base, &f_self, initiator, NULL, f_muxers, 2, &sec, &res, LP2P_FOREVER);
    f_last_rc = rc;
    if (rc == LP2P_OK) {
        memcpy(f_last_muxer, res.muxer, sizeof f_last_muxer);
        if (strlen(res.muxer) >= sizeof res.muxer) abort();
        while (lp2p__pipe_read(sec, buf, sizeof buf, LP2P_FOREVER) > 0) {}
        sec->vt->close(sec);
    }
}

/* A secure pipe over f with fixed keys (as if a handshake had run). */
static lp2p__pipe *f_secure(lp2p__ctx *ctx, fpipe *f) {
    lp2p__noise_pipe *np = lp2p__noise_pipe_new(ctx, &f->base);
    if (!np) abort();
    memset(np->k_recv, 0x42, 32), memset(np->k_send, 0x24, 32);
    return &np->base;
}

static void f_transport_raw(lp2p__ctx *ctx, fpipe *f, uint8_t caps) {
    lp2p__pipe *sec = f_secure(ctx, f);
    static uint8_t buf[70000];
    size_t cap_small = 1 + (caps & 0x3f), i = 0;
    for (;;) {
        size_t cap = (i++ & 1) ? sizeof buf : cap_small;
        if (lp2p__pipe_read(sec, buf, cap, LP2P_FOREVER) <= 0) break;
    }
    sec->vt->close(sec);
}

/* mode 5: input = chunk sizes and data; sealed into valid frames, read back, compared. */
static void f_transport_sealed(lp2p__ctx *ctx, fpipe *f, const uint8_t *data, size_t size) {
    uint8_t key[32];
    uint64_t n = 0;
    size_t off = 0;
    memset(key, 0x42, 32);
    f->len = 0;
    while (off < size && f->len + 2 + 256 + 16 <= F_IN_MAX) {
        size_t c = LP2P__MIN((size_t)data[off], size - off - 1);
        off++;
        lp2p__put_be16(f->in + f->len, (uint16_t)(c + 16));
        lp2p__aead_seal(key, n++, NULL, 0, data + off, c, f->in + f->len + 2);
        f->len += 2 + c + 16;
        off += c;
    }
    lp2p__pipe *sec = f_secure(ctx, f);
    /* the plaintext, in order, is every chunk concatenated: rebuild it to compare */
    static uint8_t want[F_IN_MAX], got[F_IN_MAX];
    size_t wl = 0, gl = 0, cap = 1 + (size ? data[0] % 97 : 0);
    for (size_t o = 0; o < size;) {
        size_t c = LP2P__MIN((size_t)data[o], size - o - 1);
        memcpy(want + wl, data + o + 1, c), wl += c, o += 1 + c;
        if (wl > F_IN_MAX - 300) break;
    }
    for (;;) {
        ptrdiff_t r = lp2p__pipe_read(sec, got + gl, LP2P__MIN(cap, sizeof got - gl), LP2P_FOREVER);
        if (r <= 0) break;
        gl += (size_t)r;
    }
    if (gl > wl || memcmp(got, want, gl) != 0) abort();
    sec->vt->close(sec);
}

static void f_write_seeds(const char *dir) {
    uint8_t p[LP2P__NOISE_PAYLOAD_MAX + 1], s[32], e[32];
    char path[512];
    lp2p__noise_hs hs;
    for (int mode = 2; mode <= 3; mode++) {
        f_peer_keys(mode == 2, s, e);
        lp2p__noise_hs_init(&hs, mode == 2, NULL, 0, s, e);
        for (int nm = 0; nm <= 2; nm++) {
            p[0] = (uint8_t)mode;
            size_t n = lp2p__noise_payload_build(&f_peer_id, hs.s_pk, f_muxers + (nm == 2), nm ? 1 : 0, p + 1);
            snprintf(path, sizeof path, "%s/mode%d_muxers%d", dir, mode, nm);
            FILE *fp = fopen(path, "wb");
            if (!fp) exit(1);
            fwrite(p, 1, n + 1, fp);
            fclose(fp);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static uint8_t in[F_IN_MAX];
    f_init();
    if (size < 1) return 0;
    lp2p__ctx ctx;
    lp2p_allocator a = {f_alloc, f_free, NULL};
    lp2p__ctx_init(&ctx, &a, NULL, LP2P_LOG_PANIC);
    fpipe f;
    memset(&f, 0, sizeof f);
    f.base.vt = &f_vt;
    f.in = in;
    f.split = (size_t)(data[0] >> 3) * 7;
    f.mode = data[0] & 7;
    const uint8_t *rest = data + 1;
    size_t rlen = LP2P__MIN(size - 1, (size_t)F_IN_MAX - 70000);
    lp2p__noise_payload pl;
    uint8_t s[32], e[32];
    switch (f.mode) {
    case 0: (void)lp2p__noise_payload_parse(rest, rlen, &pl); break;
    case 1:
        memcpy(in, rest, rlen), f.len = rlen;
        f_handshake(&ctx, &f, false);
        break;
    case 2:
    case 3: {
        bool peer_initiator = f.mode == 2;
        f_peer_keys(peer_initiator, s, e);
        lp2p__noise_hs_init(&f.peer, peer_initiator, NULL, 0, s, e);
        f.payload = rest, f.payload_len = rlen;
        if (peer_initiator) { /* the peer's msg 1 is already waiting */
            ptrdiff_t m = lp2p__noise_hs_write(&f.peer, NULL, 0, in + 2);
            lp2p__put_be16(in, (uint16_t)m);
            f.len = 2 + (size_t)m;
        }
        f_handshake(&ctx, &f, !peer_initiator);
        break;
    }
    case 4:
        memcpy(in, rest, rlen), f.len = rlen;
        f_transport_raw(&ctx, &f, data[0]);
        break;
    case 5: f_transport_sealed(&ctx, &f, rest, rlen); break;
    default: break;
    }
    if (f_live != 0) {
        fprintf(stderr, "fuzz_noise: %ld bytes leaked\n", f_live);
        abort();
    }
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    const char *dir = getenv("FUZZ_NOISE_SEEDS");
    f_init();
    if (dir) {
        f_write_seeds(dir);
        exit(0);
    }
    return 0;
}
