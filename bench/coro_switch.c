/* bench/coro_switch.c - cost of a coroutine context switch and of spawn+exit (runtime.c, L2).
 * Not part of `make test`. Build and run:
 *   cc -std=c11 -O2 -I. bench/coro_switch.c -o build/coro_switch -lsodium -lbearssl -lprotobuf-nanopb -lpthread
 *   build/coro_switch            (add -DLP2P_CORO_UCONTEXT to measure the ucontext fallback)
 * Three numbers: a raw switch (lp2p__coro_jump between two contexts, nothing else); a yield
 * through the scheduler (task -> loop -> next task, plus the run queue and the epoll_wait(0)
 * that every lp2p__sched_poll makes), counted per switch; and spawn + first run + exit. */
#define LIBP2P_IMPLEMENTATION
#include "libp2p.h"
#include <stdio.h>
#include <time.h>

static lp2p__sched *s;
static long rounds;

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}
static void yielder(void *a) {
    (void)a;
    for (long i = 0; i < rounds; i++) lp2p__yield(s);
}
static void empty(void *a) { (void)a; }

static lp2p__coro raw_main, raw_co;
static void raw_entry(void *a) {
    (void)a;
    for (;;) lp2p__coro_jump(&raw_co, &raw_main);
}
static void bench_raw(const char *backend) {
    static char stack[64 * 1024];
    lp2p__coro_init(&raw_co, stack, sizeof stack, raw_entry, NULL);
    long n = rounds;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now_ns();
        for (long i = 0; i < n; i++) lp2p__coro_jump(&raw_main, &raw_co);
        double dt = now_ns() - t0;
        printf("%s raw switch: %.1f ns per switch (%ld round trips)\n", backend, dt / (2.0 * n), n);
    }
}

int main(int argc, char **argv) {
    lp2p__ctx ctx;
    lp2p__ctx_init(&ctx, NULL, NULL, LP2P_LOG_DEFAULT);
    if (lp2p__sched_new(&ctx, NULL, &s) != LP2P_OK) return 1;
    rounds = argc > 1 ? atol(argv[1]) : 5000000;
#ifdef LP2P_CORO_UCONTEXT
    rounds /= 20;
    const char *backend = "ucontext";
#else
    const char *backend = "asm";
#endif
    bench_raw(backend);
    static const int ntasks[] = {2, 100};
    for (int k = 0; k < 2; k++) {
        long per = rounds * 2 / ntasks[k];
        for (int rep = 0; rep < 3; rep++) {
            long saved = rounds;
            rounds = per;
            for (int i = 0; i < ntasks[k]; i++) lp2p__spawn(s, yielder, NULL);
            double t0 = now_ns();
            while (s->live) lp2p__sched_poll(s, 0);
            double dt = now_ns() - t0;
            rounds = saved;
            printf("%s scheduler yield, %d tasks: %.1f ns per switch (%ld yields each)\n", backend, ntasks[k],
                   dt / (per * 2.0 * ntasks[k]), per);
        }
    }
    long n = rounds / 10;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now_ns();
        for (long i = 0; i < n; i += 32) { /* batches of 32: stacks come from the pool */
            for (int k = 0; k < 32; k++) lp2p__spawn(s, empty, NULL);
            lp2p__sched_poll(s, 0);
        }
        double dt = now_ns() - t0;
        printf("%s spawn+run+exit: %.1f ns per task (%ld tasks)\n", backend, dt / n, n);
    }
    lp2p__sched_free(s);
    return 0;
}
