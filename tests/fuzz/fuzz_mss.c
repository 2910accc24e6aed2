/* fuzz_mss.c - libFuzzer target: multistream-select fed arbitrary bytes by its peer.
 * Byte 0 picks the role (listener with "ls" support, dialer with three proposals, lazy dialer
 * writing first, lazy dialer reading first) and how the pipe splits reads; the rest is what the
 * peer sends, then EOF. Every byte allocated through the library's allocator must be back
 * after each input (abort otherwise), and a listener's match must be one of its protocols.
 * Build: clang -fsanitize=fuzzer,address -I. tests/fuzz/fuzz_mss.c -lsodium -lbearssl -lprotobuf-nanopb -lpthread */
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

/* A pipe whose reads come from the fuzz input (then EOF) and whose writes vanish. */
typedef struct fpipe {
    lp2p__pipe base;
    const uint8_t *data;
    size_t len, off, split;
} fpipe;

static ptrdiff_t f_read(lp2p__pipe *p, void *buf, size_t cap, int64_t deadline) {
    (void)deadline;
    fpipe *f = (fpipe *)p;
    size_t n = LP2P__MIN(cap, f->len - f->off);
    if (f->split) n = LP2P__MIN(n, f->split);
    memcpy(buf, f->data + f->off, n);
    f->off += n;
    return (ptrdiff_t)n;
}
static int f_write(lp2p__pipe *p, const void *buf, size_t len, int64_t deadline) {
    (void)p, (void)buf, (void)len, (void)deadline;
    return LP2P_OK;
}
static int f_close_write(lp2p__pipe *p) {
    (void)p;
    return LP2P_OK;
}
static void f_close(lp2p__pipe *p) { (void)p; }
static const lp2p__pipe_vt f_vt = {f_read, f_write, f_close_write, f_close, f_close, NULL};

static const char *const f_protos[] = {"/a", "/yamux/1.0.0", "/ipfs/id/1.0.0"};

static bool f_match(void *user, const char *proto) {
    (void)user;
    for (size_t i = 0; i < LP2P__COUNT(f_protos); i++)
        if (strcmp(proto, f_protos[i]) == 0) return true;
    return false;
}
static int f_list(void *user, const char **protos, int max) {
    (void)user;
    int n = 0;
    for (; n < max && n < (int)LP2P__COUNT(f_protos); n++) protos[n] = f_protos[n];
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    lp2p__ctx ctx;
    lp2p_allocator a = {f_alloc, f_free, NULL};
    lp2p__ctx_init(&ctx, &a, NULL, LP2P_LOG_PANIC);
    fpipe f = {{&f_vt}, data + 1, size - 1, 0, (size_t)(data[0] >> 2)};
    char out[LP2P__MSS_MAX + 1], buf[256];
    lp2p__pipe *lz;
    int rc;
    switch (data[0] & 3) {
    case 0:
        rc = lp2p__mss_handle(&f.base, f_match, f_list, NULL, out, sizeof out, LP2P_FOREVER);
        if (rc == LP2P_OK && !f_match(NULL, out)) abort();
        break;
    case 1:
        rc = lp2p__mss_select(&f.base, f_protos, 3, LP2P_FOREVER);
        if (rc >= 3) abort();
        break;
    default:
        if (lp2p__mss_lazy(&ctx, &f.base, "/yamux/1.0.0", &lz) != LP2P_OK) abort();
        if ((data[0] & 3) == 2) (void)lp2p__pipe_write(lz, "x", 1, LP2P_FOREVER);
        for (int i = 0; i < 64; i++)
            if (lp2p__pipe_read(lz, buf, sizeof buf, LP2P_FOREVER) <= 0) break;
        if (data[0] & 4) lz->vt->reset(lz);
        else lz->vt->close(lz);
        break;
    }
    (void)rc;
    if (f_live != 0) {
        fprintf(stderr, "fuzz_mss: %ld bytes leaked\n", f_live);
        abort();
    }
    return 0;
}
