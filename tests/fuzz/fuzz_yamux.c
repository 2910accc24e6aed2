/* fuzz_yamux.c - libFuzzer target: a yamux session fed arbitrary bytes by its peer.
 * The first input byte picks the role and how the pipe splits reads; the rest is what the
 * "peer" sends. Inbound streams are read (and answered) by tasks, one outbound stream is
 * opened and written to. The input ends with EOF, so the session must end; afterwards every
 * byte allocated through the library's allocator must be back (checked, abort otherwise).
 * Build: clang -fsanitize=fuzzer,address -I. tests/fuzz/fuzz_yamux.c -lsodium -lbearssl -lprotobuf-nanopb -lpthread
 * Run:   scripts/fuzz.sh (seeds in tests/fuzz/corpus/yamux (seeds: first byte = role/read split, then frames)) */
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
    bool closed;
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
static void f_close(lp2p__pipe *p) { ((fpipe *)p)->closed = true; }
static const lp2p__pipe_vt f_vt = {f_read, f_write, f_close_write, f_close, f_close, NULL};

typedef struct fstate {
    lp2p__sched *s;
    int tasks;
    bool closed;
} fstate;

typedef struct fstream {
    fstate *st;
    lp2p__pipe *p;
} fstream;

static void f_stream_task(void *arg) {
    fstream *fs = (fstream *)arg;
    uint8_t buf[4096];
    ptrdiff_t n;
    int rounds = 0;
    while ((n = lp2p__pipe_read(fs->p, buf, sizeof buf, lp2p_deadline_in(1000))) > 0 && rounds++ < 64)
        if (lp2p__pipe_write(fs->p, buf, (size_t)n, lp2p_deadline_in(1000)) < 0) break;
    if (rounds & 1) fs->p->vt->reset(fs->p);
    else fs->p->vt->close(fs->p);
    fs->st->tasks--;
    free(fs);
}

static void f_spawn_stream(fstate *st, lp2p__pipe *p) {
    fstream *fs = (fstream *)malloc(sizeof *fs);
    fs->st = st, fs->p = p;
    st->tasks++;
    if (!lp2p__spawn(st->s, f_stream_task, fs).id) {
        st->tasks--;
        p->vt->reset(p);
        free(fs);
    }
}

static void f_on_stream(void *user, lp2p__yamux *y, lp2p__pipe *p) {
    (void)y;
    f_spawn_stream((fstate *)user, p);
}
static void f_on_close(void *user, lp2p__yamux *y, int err) {
    (void)y, (void)err;
    ((fstate *)user)->closed = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static lp2p__ctx ctx;
    lp2p_allocator al = {f_alloc, f_free, NULL};
    lp2p__ctx_init(&ctx, &al, NULL, LP2P_LOG_PANIC);
    if (size < 1) return 0;
    uint8_t mode = data[0];
    fstate st = {0};
    if (lp2p__sched_new(&ctx, NULL, &st.s) != LP2P_OK) return 0;
    fpipe *fp = (fpipe *)calloc(1, sizeof *fp);
    fp->base.vt = &f_vt;
    fp->data = data + 1, fp->len = size - 1;
    fp->split = (mode >> 1) & 7 ? (size_t)1 << ((mode >> 1) & 7) : 0;
    lp2p__yamux_cfg cfg = {0};
    cfg.is_client = mode & 1;
    cfg.max_inbound = 8;
    cfg.on_stream = f_on_stream;
    cfg.on_close = f_on_close;
    cfg.user = &st;
    lp2p__yamux *y;
    if (lp2p__yamux_new(st.s, &fp->base, &cfg, &y) == LP2P_OK) {
        lp2p__pipe *out;
        if (lp2p__yamux_open(y, &out, LP2P_NOWAIT) == LP2P_OK) f_spawn_stream(&st, out);
        for (int i = 0; i < 10000 && (!st.closed || st.tasks); i++) lp2p__sched_poll(st.s, 0);
        if (!st.closed) abort(); /* the input ended: the session must have ended too */
        lp2p__yamux_free(y);
        for (int i = 0; i < 100; i++) lp2p__sched_poll(st.s, 0);
        if (!fp->closed) abort(); /* the session closes its pipe */
    }
    lp2p__sched_free(st.s);
    free(fp);
    if (f_live != 0) {
        fprintf(stderr, "fuzz_yamux: %ld bytes still allocated\n", f_live);
        abort();
    }
    return 0;
}
