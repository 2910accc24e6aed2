/* test_memory.c - what an idle connection costs: on a listener with many idle connections the
 * live heap per connection stays under a bound, no big buffer (yamux batch, Noise frame) is
 * held, only one task (the yamux reader) is parked per connection; buffers taken for a
 * transfer come back when it ends, and the host's buffer cache empties when trimmed; the
 * runtime gives back the stack pages below a parked task's stack pointer and those of pooled
 * stacks; the buffer cache reuses, bounds, trims and drains. Counts bytes through the
 * allocator hook and pages with mincore() (no timing, no RSS: deterministic).
 * `build/bench/lp2p-bench rss 1000` measures the resulting RSS per idle connection. */
#define LIBP2P_IMPLEMENTATION
#include "libp2p.h"
#include "tests/test.h"

#include <sys/mman.h>
#include <unistd.h>

#define ECHO "/echo/1.0.0"
#define N_CONNS 12
#define IDLE_CONN_BOUND (12 * 1024) /* bytes of live heap per idle connection on the listener */
#define BIG (16 * 1024)             /* a "big" buffer: what an idle connection must not hold */

typedef struct counts {
    long live, big; /* bytes live; blocks of >= BIG bytes live */
} counts;

static void *count_alloc(size_t n, void *user) {
    counts *c = (counts *)user;
    void *p = malloc(n);
    if (p) c->live += (long)n, c->big += n >= BIG;
    return p;
}
static void count_free(void *p, size_t n, void *user) {
    counts *c = (counts *)user;
    if (!p) return;
    c->live -= (long)n, c->big -= n >= BIG;
    free(p);
}

static void echo_handler(lp2p_stream *s, void *user) {
    char buf[16384];
    ptrdiff_t n;
    (void)user;
    while ((n = lp2p_stream_read(s, buf, sizeof buf, lp2p_deadline_in(10000))) > 0)
        if (lp2p_stream_write(s, buf, (size_t)n, lp2p_deadline_in(10000)) != LP2P_OK) break;
}

static lp2p_host *new_host(counts *c, bool listen) {
    lp2p_config cfg;
    lp2p_host *h = NULL;
    memset(&cfg, 0, sizeof cfg);
    cfg.log_level = getenv("LP2P_TEST_LOG") ? LP2P_LOG_DEBUG : LP2P_LOG_ERROR;
    cfg.no_listen = !listen;
    if (c) cfg.allocator.alloc = count_alloc, cfg.allocator.free = count_free, cfg.allocator.user = c;
    CHECK_EQ(lp2p_host_new(&cfg, &h), LP2P_OK);
    if (h) CHECK_EQ(lp2p_host_handle(h, ECHO, echo_handler, NULL), LP2P_OK);
    return h;
}

/* Heap a host holds outside its buffer cache (the cache is per host, not per connection). */
static long held(lp2p_host *h, const counts *c) { return c->live - (long)h->cache.bytes; }
static long held_big(lp2p_host *h, const counts *c) {
    long n = c->big;
    for (int i = 0; i < h->cache.n; i++) n -= h->cache.slot[i].n >= BIG;
    return n;
}

/* Run every host of this thread until h has exactly `tasks` live tasks and (big >= 0) holds
 * exactly `big` big blocks (the writers have ended, handlers returned), at most ~10 s. */
static bool settle(lp2p_host *h, const counts *c, int tasks, long big) {
    for (int i = 0; i < 200; i++) {
        lp2p_sleep(h, lp2p_deadline_in(50));
        if (h->sched->live == tasks && (big < 0 || held_big(h, c) == big)) return true;
    }
    return false;
}

/* echo len bytes through one stream (written in pieces, read back in between) */
static bool echo_bytes(lp2p_host *a, const char *addr, size_t len) {
    lp2p_stream *s = NULL;
    size_t w = 0, r = 0;
    uint8_t *out = malloc(len), *in = malloc(len);
    for (size_t i = 0; i < len; i++) out[i] = (uint8_t)(i * 13 + 1);
    bool ok = lp2p_stream_open(a, addr, ECHO, lp2p_deadline_in(10000), &s) == LP2P_OK;
    while (ok && r < len) {
        size_t k = LP2P__MIN(len - w, (size_t)(256 * 1024));
        if (k && lp2p_stream_write(s, out + w, k, lp2p_deadline_in(10000)) != LP2P_OK) ok = false;
        w += k;
        while (ok && r < w) {
            ptrdiff_t n = lp2p_stream_read(s, in + r, len - r, lp2p_deadline_in(10000));
            if (n <= 0) ok = false;
            else r += (size_t)n;
        }
    }
    ok = ok && memcmp(in, out, len) == 0;
    if (s) lp2p_stream_close(s);
    free(out), free(in);
    return ok;
}

static void test_idle_connections(void) {
    TEST("idle connections: bounded heap, no big buffers, one parked task each on the listener");
    counts lc = {0, 0};
    lp2p_host *l = new_host(&lc, true), *d[N_CONNS + 1] = {0};
    if (!l) return;
    const char *addr = lp2p_host_addr(l, 0);
    int tasks0 = l->sched->live + 1; /* accept, housekeeping, + a reader per connection */
    /* a first connection pays the one-time costs (task slots, fd table, buffer cache) */
    d[N_CONNS] = new_host(NULL, true);
    CHECK_EQ(lp2p_host_identify(d[N_CONNS], addr, lp2p_deadline_in(10000)), LP2P_OK);
    CHECK(settle(l, &lc, tasks0, -1));
    long base = held(l, &lc), big0 = held_big(l, &lc);
    for (int i = 0; i < N_CONNS; i++) {
        d[i] = new_host(NULL, true); /* listening dialers: the listener also stores their addresses */
        if (!d[i]) return;
        CHECK_EQ(lp2p_host_identify(d[i], addr, lp2p_deadline_in(10000)), LP2P_OK);
        CHECK(lp2p_ping(d[i], addr, lp2p_deadline_in(10000)) >= 0); /* a little traffic each way */
    }
    CHECK_EQ(l->n_conns, N_CONNS + 1);
    bool ok = settle(l, &lc, tasks0 + N_CONNS, big0);
    CHECK(ok); /* exactly one more task per connection: the reader; no writer, no keepalive */
    CHECK_EQ(held_big(l, &lc), big0);
    long per_conn = (held(l, &lc) - base) / N_CONNS;
    fprintf(stderr, "   live heap per idle connection on the listener: %ld bytes\n", per_conn);
    CHECK(per_conn > 0 && per_conn <= IDLE_CONN_BOUND);
    for (int i = 0; i <= N_CONNS; i++) lp2p_host_free(d[i]);
    lp2p_host_free(l);
    CHECK_EQ(lc.live, 0); /* and everything, cache included, is freed with the host */
}

static void test_buffers_come_back(void) {
    TEST("a transfer takes big buffers, they come back when it ends; the cache trims to empty");
    counts lc = {0, 0}, dc = {0, 0};
    lp2p_host *l = new_host(&lc, true), *d = new_host(&dc, false);
    if (!l || !d) return;
    const char *addr = lp2p_host_addr(l, 0);
    int lt = l->sched->live + 1, dt = d->sched->live + 1; /* + the connection's reader */
    CHECK_EQ(lp2p_host_identify(d, addr, lp2p_deadline_in(10000)), LP2P_OK);
    CHECK(settle(l, &lc, lt, -1) && settle(d, &dc, dt, -1));
    long lbig = held_big(l, &lc), dbig = held_big(d, &dc), lheld = held(l, &lc), dheld = held(d, &dc);
    for (int round = 0; round < 2; round++) { /* the second one reuses the cached buffers */
        CHECK(echo_bytes(d, addr, 4 << 20));
        CHECK(settle(l, &lc, lt, lbig));
        CHECK(settle(d, &dc, dt, dbig));
        /* nothing else grew either: the stream and its chunks are gone, the session is as before */
        CHECK(held(l, &lc) <= lheld + 1024);
        CHECK(held(d, &dc) <= dheld + 1024);
    }
    CHECK(l->cache.bytes <= LP2P__CACHE_BYTES && d->cache.bytes <= LP2P__CACHE_BYTES);
    for (int i = 0; i < 2; i++) lp2p__cache_trim(&l->ctx), lp2p__cache_trim(&d->ctx);
    CHECK_EQ(l->cache.n, 0);
    CHECK_EQ(l->cache.bytes, 0);
    CHECK_EQ(d->cache.n, 0);
    lp2p_host_free(d);
    lp2p_host_free(l);
    CHECK_EQ(lc.live, 0);
    CHECK_EQ(dc.live, 0);
}

/* ---- stacks ---- */
static lp2p__waitq t_park;
static volatile int t_parked;
static volatile size_t t_deep = 32 * 1024;

/* touch 32 KiB of stack (a VLA: on the task's stack even where ASan moves fixed-size locals
 * to a fake stack), return, then wait with a shallow stack */
static void __attribute__((noinline)) go_deep(void) {
    volatile uint8_t deep[t_deep];
    for (size_t i = 0; i < t_deep; i += 512) deep[i] = (uint8_t)i;
    t_parked = deep[4096] + 1;
}

static void deep_then_park(void *arg) {
    lp2p_host *h = (lp2p_host *)arg;
    go_deep();
    lp2p__waitq_wait(h->sched, &t_park, lp2p_deadline_in(30000));
}

/* resident pages of [lo, hi) */
static long resident(uintptr_t lo, uintptr_t hi, size_t page) {
    unsigned char v[64];
    long n = 0;
    for (uintptr_t a = lo; a < hi; a += page * 64) {
        size_t len = LP2P__MIN((size_t)(hi - a), page * 64);
        if (mincore((void *)a, len, v) != 0) return -1;
        for (size_t i = 0; i < (len + page - 1) / page; i++) n += v[i] & 1;
    }
    return n;
}

static void test_stack_trim(void) {
    TEST("sched_trim: pages below a parked task's stack pointer and of pooled stacks go back");
    lp2p_host *h = new_host(NULL, false);
    if (!h) return;
    lp2p__sched *s = h->sched;
    lp2p_task t = lp2p_go(h, deep_then_park, h);
    for (int i = 0; i < 100 && !t_parked; i++) lp2p_yield(h);
    lp2p__task *rec = lp2p__lookup(s, t);
    CHECK(t_parked && rec && rec->state == LP2P__T_PARKED);
    if (!rec) return;
    uintptr_t lo = (uintptr_t)rec->stack + s->page, hi = lo + s->stack_size;
    uintptr_t sp_page = lp2p__coro_sp(&rec->ctx) & ~(uintptr_t)(s->page - 1);
    CHECK(sp_page > lo && sp_page < hi); /* the asm backends know the parked stack pointer */
    if (!(sp_page > lo && sp_page < hi)) return;
    long below = resident(lo, sp_page, s->page);
    CHECK(below >= 4); /* the deep frame is still resident: nothing trimmed yet */
    lp2p__sched_trim(s); /* one round: the task ran during the previous interval, kept */
    CHECK_EQ(resident(lo, sp_page, s->page), below);
    lp2p__sched_trim(s); /* parked for a whole interval: trimmed */
    CHECK_EQ(resident(lo, sp_page, s->page), 0);
    CHECK(resident(sp_page, hi, s->page) >= 1); /* the live frames stay */
    void *stack = rec->stack;
    lp2p__waitq_wake_all(s, &t_park);
    CHECK_EQ(lp2p_task_join(h, t, lp2p_deadline_in(5000)), LP2P_OK);
    int pooled = -1;
    for (int i = 0; i < s->npool; i++)
        if (s->pool[i] == stack) pooled = i;
    CHECK(pooled >= 0); /* the stack went back to the pool; after an idle interval only its top page stays */
    if (pooled >= 0) {
        lp2p__sched_trim(s);
        lp2p__sched_trim(s);
        CHECK(resident(lo, hi, s->page) <= 1);
    }
    lp2p_host_free(h);
}

static void test_cache(void) {
    TEST("buffer cache: exact-size reuse, bounded, trimmed after an idle interval, drained");
    counts c = {0, 0};
    lp2p_allocator a = {count_alloc, count_free, &c};
    lp2p__ctx ctx;
    lp2p__cache cache;
    lp2p__ctx_init(&ctx, &a, NULL, LP2P_LOG_ERROR);
    void *p = lp2p__cache_get(&ctx, 1000); /* no cache: plain alloc/free */
    CHECK(p && c.live == 1000);
    lp2p__cache_put(&ctx, p, 1000);
    CHECK_EQ(c.live, 0);
    memset(&cache, 0, sizeof cache);
    ctx.cache = &cache;
    void *b1 = lp2p__cache_get(&ctx, 65535), *b2 = lp2p__cache_get(&ctx, 4096);
    lp2p__cache_put(&ctx, b1, 65535);
    lp2p__cache_put(&ctx, b2, 4096);
    CHECK_EQ(cache.n, 2);
    CHECK(lp2p__cache_get(&ctx, 65535) == b1); /* same size: the cached one, no allocation */
    CHECK_EQ(cache.n, 1);
    CHECK_EQ(c.live, 65535 + 4096);
    lp2p__cache_put(&ctx, b1, 65535);
    void *big[LP2P__CACHE_SLOTS + 2];
    for (int i = 0; i < LP2P__CACHE_SLOTS + 2; i++) big[i] = lp2p__cache_get(&ctx, 1 << 20);
    for (int i = 0; i < LP2P__CACHE_SLOTS + 2; i++) lp2p__cache_put(&ctx, big[i], 1 << 20);
    CHECK(cache.bytes <= LP2P__CACHE_BYTES && cache.n <= LP2P__CACHE_SLOTS); /* the rest was freed */
    CHECK_EQ(c.live, (long)cache.bytes);
    lp2p__cache_trim(&ctx); /* put back during this interval: kept */
    CHECK_EQ(c.live, (long)cache.bytes);
    CHECK(cache.n > 0);
    void *again = lp2p__cache_get(&ctx, 4096);
    lp2p__cache_trim(&ctx); /* the others idled a whole interval: freed */
    CHECK_EQ(cache.n, 0);
    CHECK_EQ(c.live, 4096);
    lp2p__cache_put(&ctx, again, 4096);
    lp2p__cache_drain(&ctx);
    CHECK_EQ(cache.n, 0);
    CHECK_EQ(cache.bytes, 0);
    CHECK_EQ(c.live, 0);
}

int main(void) {
    test_cache();
    test_idle_connections();
    test_buffers_come_back();
    test_stack_trim();
    TEST_END();
}
