/* runtime.c - L2: stackful coroutines (tasks), scheduler, timer heap, I/O poller.
 *
 * Sections, in order:
 *   1. platform selection (context-switch backend, poller backend, thread-local storage)
 *   2. context switch: x86-64 SysV asm, aarch64 asm, ucontext fallback
 *   3. data structures
 *   4. stacks (mmap + PROT_NONE guard page, pooled) and task records (pooled, generation-counted)
 *   5. run queue, timer heap, waiters (the one place a parked task is woken)
 *   6. poller: epoll (Linux) or poll(), plus the eventfd/pipe that wakes it for posts and stop
 *   7. scheduler: new / poll / run / stop / post / free
 *   8. outside-task waits: pumping every scheduler of this thread
 *   9. the wait functions of runtime.h, tasks, mutex
 *
 * Model: a task runs until it waits; it then switches back to the context that resumed it
 * (the caller of lp2p__sched_poll). Every parked task has exactly one lp2p__waiter (on its own
 * stack) and at most one timer; lp2p__waiter_fire() is the only way out of a park, so a wake,
 * a timeout, a cancel and an fd close can never both happen.
 *
 * Memory: a stack costs only the pages its tasks touched, but a pooled stack keeps the pages of
 * every task that used it, and a parked task keeps those of its deepest call. lp2p__sched_trim
 * (run about once a second by the host) gives back, with madvise(MADV_DONTNEED), the pages
 * below the stack pointer of tasks parked for a whole trim interval and all but the top page of
 * stacks pooled that long; busy tasks and stacks are never touched, so hot paths pay nothing.
 *
 * Limits: every guarded stack costs two memory mappings, and Linux caps mappings per process
 * at vm.max_map_count (65530 by default), so about 32 k tasks can be alive at once unless
 * that sysctl is raised. Task handles carry a 12-bit generation: a handle kept across 4096
 * reuses of the same slot may alias a newer task (slots are reused first-in first-out to make
 * that rare).
 * Depends on: base.h, runtime.h. */
#include "runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

/* ==== 1. platform selection ================================================================ */
#if !defined(LP2P_CORO_UCONTEXT) && defined(__x86_64__) && !defined(_WIN32) && (defined(__GNUC__) || defined(__clang__))
#define LP2P__CORO_X64 1
#elif !defined(LP2P_CORO_UCONTEXT) && defined(__aarch64__) && !defined(_WIN32) && (defined(__GNUC__) || defined(__clang__))
#define LP2P__CORO_A64 1
#else
#define LP2P__CORO_UC 1
#include <ucontext.h>
#endif

#if defined(__linux__) && !defined(LP2P_POLLER_POLL)
#define LP2P__EPOLL 1
#include <sys/epoll.h>
#include <sys/eventfd.h>
#endif

#if defined(__cplusplus) && __cplusplus >= 201103L
#define LP2P__TLS thread_local
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define LP2P__TLS _Thread_local
#elif defined(__GNUC__) || defined(__clang__)
#define LP2P__TLS __thread
#elif defined(_MSC_VER)
#define LP2P__TLS __declspec(thread)
#endif

#ifndef MAP_ANONYMOUS
#define MAP_ANONYMOUS MAP_ANON
#endif
#ifndef MAP_NORESERVE
#define MAP_NORESERVE 0
#endif
#ifndef MAP_STACK
#define MAP_STACK 0
#endif

/* ==== 2. context switch ===================================================================== *
 * lp2p__coro_switch(save, load): push the callee-saved registers on the current stack, store
 * the stack pointer in *save, load the stack pointer `load`, pop the registers saved there and
 * return into that context. A new context is a hand-built frame whose "return address" is
 * lp2p__coro_boot, which calls entry(task) with the values planted in callee-saved registers.
 * The asm symbols are not .globl: they stay local to the object file (never exported). */
typedef struct lp2p__coro {
#if LP2P__CORO_UC
    ucontext_t uc;
#else
    void *sp;
#endif
} lp2p__coro;

#if LP2P__CORO_X64
/* ---- 2a. x86-64 SysV: rbx, rbp, r12-r15, MXCSR and the x87 control word ---- */
extern void lp2p__coro_switch(void **save, void *load) __asm__("lp2p__coro_switch");
extern void lp2p__coro_boot(void) __asm__("lp2p__coro_boot");
__asm__(".text\n"
        ".p2align 4\n"
#ifdef __ELF__
        ".type lp2p__coro_switch,@function\n"
#endif
        "lp2p__coro_switch:\n"
        "    pushq %rbp\n"
        "    pushq %rbx\n"
        "    pushq %r12\n"
        "    pushq %r13\n"
        "    pushq %r14\n"
        "    pushq %r15\n"
        "    subq $8, %rsp\n"
        "    stmxcsr (%rsp)\n"
        "    fnstcw 4(%rsp)\n"
        "    movq %rsp, (%rdi)\n"
        "    movq %rsi, %rsp\n"
        "    ldmxcsr (%rsp)\n"
        "    fldcw 4(%rsp)\n"
        "    addq $8, %rsp\n"
        "    popq %r15\n"
        "    popq %r14\n"
        "    popq %r13\n"
        "    popq %r12\n"
        "    popq %rbx\n"
        "    popq %rbp\n"
        "    ret\n"
#ifdef __ELF__
        ".size lp2p__coro_switch, .-lp2p__coro_switch\n"
        ".type lp2p__coro_boot,@function\n"
#endif
        "lp2p__coro_boot:\n"
        "    movq %r12, %rdi\n"
        "    callq *%r13\n"
        "    ud2\n"
#ifdef __ELF__
        ".size lp2p__coro_boot, .-lp2p__coro_boot\n"
#endif
);

static void lp2p__coro_init(lp2p__coro *c, void *lo, size_t size, void (*entry)(void *), void *arg) {
    uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
    uint64_t *f = (uint64_t *)(top - 80); /* after `ret` into boot, rsp = top - 16: aligned for its call */
    uint32_t mxcsr;
    uint16_t fpucw;
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    __asm__ volatile("fnstcw %0" : "=m"(fpucw));
    f[0] = mxcsr | ((uint64_t)fpucw << 32);
    f[1] = 0;                               /* r15 */
    f[2] = 0;                               /* r14 */
    f[3] = (uint64_t)(uintptr_t)entry;      /* r13 */
    f[4] = (uint64_t)(uintptr_t)arg;        /* r12 */
    f[5] = 0;                               /* rbx */
    f[6] = 0;                               /* rbp: ends frame-pointer backtraces */
    f[7] = (uint64_t)(uintptr_t)lp2p__coro_boot;
    f[8] = f[9] = 0;
    c->sp = f;
}
static inline void lp2p__coro_jump(lp2p__coro *from, lp2p__coro *to) { lp2p__coro_switch(&from->sp, to->sp); }
static inline uintptr_t lp2p__coro_sp(const lp2p__coro *c) { return (uintptr_t)c->sp; }

#elif LP2P__CORO_A64
/* ---- 2b. aarch64 AAPCS64: x19-x30 (x29 fp, x30 lr), sp, d8-d15 ---- */
extern void lp2p__coro_switch(void **save, void *load) __asm__("lp2p__coro_switch");
extern void lp2p__coro_boot(void) __asm__("lp2p__coro_boot");
__asm__(".text\n"
        ".p2align 4\n"
#ifdef __ELF__
        ".type lp2p__coro_switch,%function\n"
#endif
        "lp2p__coro_switch:\n"
        "    sub sp, sp, #160\n"
        "    stp x19, x20, [sp, #0]\n"
        "    stp x21, x22, [sp, #16]\n"
        "    stp x23, x24, [sp, #32]\n"
        "    stp x25, x26, [sp, #48]\n"
        "    stp x27, x28, [sp, #64]\n"
        "    stp x29, x30, [sp, #80]\n"
        "    stp d8, d9, [sp, #96]\n"
        "    stp d10, d11, [sp, #112]\n"
        "    stp d12, d13, [sp, #128]\n"
        "    stp d14, d15, [sp, #144]\n"
        "    mov x9, sp\n"
        "    str x9, [x0]\n"
        "    mov sp, x1\n"
        "    ldp x19, x20, [sp, #0]\n"
        "    ldp x21, x22, [sp, #16]\n"
        "    ldp x23, x24, [sp, #32]\n"
        "    ldp x25, x26, [sp, #48]\n"
        "    ldp x27, x28, [sp, #64]\n"
        "    ldp x29, x30, [sp, #80]\n"
        "    ldp d8, d9, [sp, #96]\n"
        "    ldp d10, d11, [sp, #112]\n"
        "    ldp d12, d13, [sp, #128]\n"
        "    ldp d14, d15, [sp, #144]\n"
        "    add sp, sp, #160\n"
        "    ret\n"
#ifdef __ELF__
        ".size lp2p__coro_switch, .-lp2p__coro_switch\n"
        ".type lp2p__coro_boot,%function\n"
#endif
        "lp2p__coro_boot:\n"
        "    mov x0, x19\n"
        "    blr x20\n"
        "    brk #0\n"
#ifdef __ELF__
        ".size lp2p__coro_boot, .-lp2p__coro_boot\n"
#endif
);

static void lp2p__coro_init(lp2p__coro *c, void *lo, size_t size, void (*entry)(void *), void *arg) {
    uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
    uint64_t *f = (uint64_t *)(top - 160); /* after the frame is popped, sp = top (aligned) */
    memset(f, 0, 160);
    f[0] = (uint64_t)(uintptr_t)arg;             /* x19 */
    f[1] = (uint64_t)(uintptr_t)entry;           /* x20 */
    f[11] = (uint64_t)(uintptr_t)lp2p__coro_boot; /* x30: where `ret` goes; x29 = 0 ends backtraces */
    c->sp = f;
}
static inline void lp2p__coro_jump(lp2p__coro *from, lp2p__coro *to) { lp2p__coro_switch(&from->sp, to->sp); }
static inline uintptr_t lp2p__coro_sp(const lp2p__coro *c) { return (uintptr_t)c->sp; }

#else
/* ---- 2c. ucontext fallback (portable, ~30x slower: swapcontext makes a sigprocmask syscall) ---- */
/* makecontext passes only ints: the entry and its argument travel as 32-bit halves */
static void lp2p__uc_boot(unsigned f_hi, unsigned f_lo, unsigned a_hi, unsigned a_lo) {
    void (*entry)(void *) = (void (*)(void *))(uintptr_t)(((uint64_t)f_hi << 32) | f_lo);
    entry((void *)(uintptr_t)(((uint64_t)a_hi << 32) | a_lo));
}
static void lp2p__coro_init(lp2p__coro *c, void *lo, size_t size, void (*entry)(void *), void *arg) {
    uint64_t f = (uint64_t)(uintptr_t)entry, a = (uint64_t)(uintptr_t)arg;
    getcontext(&c->uc);
    c->uc.uc_stack.ss_sp = lo;
    c->uc.uc_stack.ss_size = size;
    c->uc.uc_link = NULL;
    makecontext(&c->uc, (void (*)(void))lp2p__uc_boot, 4, (unsigned)(f >> 32), (unsigned)(f & 0xffffffffu),
                (unsigned)(a >> 32), (unsigned)(a & 0xffffffffu));
}
static inline void lp2p__coro_jump(lp2p__coro *from, lp2p__coro *to) { swapcontext(&from->uc, &to->uc); }
static inline uintptr_t lp2p__coro_sp(const lp2p__coro *c) { return (void)c, 0; } /* unknown: never trimmed */
#endif

/* ==== 3. data structures ==================================================================== */
enum { LP2P__T_FREE, LP2P__T_READY, LP2P__T_RUNNING, LP2P__T_PARKED, LP2P__T_DEAD };

#define LP2P__IDX_BITS 20
#define LP2P__IDX_MASK ((1u << LP2P__IDX_BITS) - 1)
#define LP2P__GEN_MASK ((1u << (32 - LP2P__IDX_BITS)) - 1)
#define LP2P__NONE UINT32_MAX
#define LP2P__STACK_POOL 64     /* stacks kept mapped for reuse */
#define LP2P__FREE_ROUNDS 4096  /* sched_free gives up on tasks still running after this */
#define LP2P__RD 1
#define LP2P__WR 2

/* What a parked task (or a main() pump) waits on. Lives on the waiter's stack. */
struct lp2p__waiter {
    lp2p__waiter *next, *prev; /* links in q */
    lp2p__waitq *q;            /* queue it is linked in, or NULL */
    lp2p__sched *fd_sched;     /* fd wait: scheduler whose fd table points at it, or NULL */
    int fd, dir;
    lp2p__task *task; /* NULL: a main() pump waiter */
    int rc, done;
};

struct lp2p__task {
    lp2p__coro ctx;
    lp2p__sched *sched;
    void (*fn)(void *);
    void *arg;
    void *stack;         /* mmap base: guard page, then stack_size usable bytes */
    lp2p__task *run_next;
    lp2p__waiter *w;     /* while parked */
    lp2p__waitq joiners; /* lp2p__task_join waiters, woken when fn returns */
    int64_t deadline;    /* valid while heap_idx >= 0 */
    int heap_idx;
    int timeout_rc; /* what a timer expiry returns: ERR_TIMEOUT, or OK for sleep */
    uint32_t idx, gen, epoch, free_next;
    uint32_t run_round; /* sched trim_round when last resumed */
    uint8_t state, canceled, trimmed;
};

typedef struct lp2p__fdent {
    lp2p__waiter *rd, *wr;
    int pidx;           /* poll(): index in the waiting set, -1 when absent */
    uint8_t registered; /* lp2p__fd_add done */
    uint8_t ready;      /* RD/WR edges seen while nobody waited */
} lp2p__fdent;

typedef struct lp2p__post {
    struct lp2p__post *next;
    void (*fn)(void *);
    void *arg;
} lp2p__post;

struct lp2p__sched {
    lp2p__ctx *ctx;
    lp2p__coro loop; /* the context tasks switch back to */
    size_t stack_size, page;
    int max_tasks, live, freeing;
    uint32_t epoch;
    /* task slots: records are allocated once per slot and reused */
    lp2p__task **slots;
    uint32_t nslots, capslots, free_head, free_tail;
    void *pool[LP2P__STACK_POOL];
    uint32_t pool_round[LP2P__STACK_POOL]; /* trim_round when pooled */
    uint8_t pool_trimmed[LP2P__STACK_POOL];
    int npool;
    uint32_t trim_round;
    lp2p__task *rq_head, *rq_tail;
    lp2p__task **heap; /* min-heap on deadline; capacity >= capslots, so pushes never fail */
    int nheap;
    lp2p__fdent *fds;
    int nfds;
#if LP2P__EPOLL
    int epfd;
#else
    int *wfds; /* fds with a waiter: the poll() set */
    int nw, capw;
    struct pollfd *pfds;
    int cappfds;
#endif
    int wake_rd, wake_wr, wake_is_eventfd;
    pthread_mutex_t mu; /* guards posts */
    lp2p__post *posts_head, *posts_tail;
    int stop; /* atomic */
    lp2p__sched *tnext, *tprev; /* schedulers created on this thread */
    lp2p__sched **towner;
};

/* The thread-local state (DESIGN.md §2: the only non-host state besides the clock). */
static LP2P__TLS lp2p__task *lp2p__tls_cur;     /* task running now */
static LP2P__TLS int lp2p__tls_depth;           /* > 0 while inside lp2p__sched_poll */
static LP2P__TLS lp2p__sched *lp2p__tls_scheds; /* every scheduler created on this thread */
static LP2P__TLS unsigned lp2p__tls_ver;        /* bumped when that list changes */

static void lp2p__task_main(void *p);
static void lp2p__waiter_fire(lp2p__waiter *w, int rc);

/* ==== 4. stacks and task records ============================================================ */
static void *lp2p__stack_get(lp2p__sched *s) {
    if (s->npool) return s->pool[--s->npool];
    size_t total = s->stack_size + s->page;
    void *p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (p == MAP_FAILED) return NULL;
    if (mprotect(p, s->page, PROT_NONE) != 0) { /* the guard page: an overflow faults here */
        munmap(p, total);
        return NULL;
    }
    return p;
}

static void lp2p__stack_put(lp2p__sched *s, void *p) {
    if (!p) return;
    if (s->npool < LP2P__STACK_POOL && !s->freeing) {
        s->pool_round[s->npool] = s->trim_round;
        s->pool_trimmed[s->npool] = 0;
        s->pool[s->npool++] = p;
    } else munmap(p, s->stack_size + s->page);
}

/* Drop the pages of a stack's usable area [lo, lo + stack_size) that lie below keep_from (page
 * rounded down): they hold nothing live. Returns the bytes advised away. */
static size_t lp2p__stack_release_below(lp2p__sched *s, void *stack, uintptr_t keep_from) {
#ifdef MADV_DONTNEED
    uintptr_t lo = (uintptr_t)stack + s->page, hi = keep_from & ~(uintptr_t)(s->page - 1);
    if (hi > lo + s->stack_size) hi = lo + s->stack_size;
    if (hi <= lo || madvise((void *)lo, hi - lo, MADV_DONTNEED) != 0) return 0;
    return hi - lo;
#else
    (void)s, (void)stack, (void)keep_from;
    return 0;
#endif
}

static lp2p_task lp2p__handle(const lp2p__task *t) {
    lp2p_task h;
    h.id = (t->gen << LP2P__IDX_BITS) | (t->idx + 1);
    return h;
}

static lp2p__task *lp2p__lookup(lp2p__sched *s, lp2p_task h) {
    uint32_t i = (h.id & LP2P__IDX_MASK);
    if (!s || i == 0 || i > s->nslots) return NULL;
    lp2p__task *t = s->slots[i - 1];
    if (t->state == LP2P__T_FREE || t->state == LP2P__T_DEAD || t->gen != h.id >> LP2P__IDX_BITS) return NULL;
    return t;
}

static int lp2p__slots_grow(lp2p__sched *s) {
    uint32_t cap = s->capslots ? s->capslots * 2 : 64;
    lp2p__task **sl = (lp2p__task **)lp2p__alloc(s->ctx, cap * sizeof *sl);
    lp2p__task **hp = (lp2p__task **)lp2p__alloc(s->ctx, cap * sizeof *hp);
    if (!sl || !hp) {
        lp2p__free(s->ctx, sl, cap * sizeof *sl);
        lp2p__free(s->ctx, hp, cap * sizeof *hp);
        return LP2P_ERR_NOMEM;
    }
    if (s->nslots) memcpy(sl, s->slots, s->nslots * sizeof *sl);
    if (s->nheap) memcpy(hp, s->heap, (size_t)s->nheap * sizeof *hp);
    lp2p__free(s->ctx, s->slots, s->capslots * sizeof *sl);
    lp2p__free(s->ctx, s->heap, s->capslots * sizeof *hp);
    s->slots = sl, s->heap = hp, s->capslots = cap;
    return LP2P_OK;
}

/* A free task record: the oldest freed slot first (spreads generation use), else a new one. */
static lp2p__task *lp2p__slot_get(lp2p__sched *s) {
    if (s->free_head != LP2P__NONE) {
        lp2p__task *t = s->slots[s->free_head];
        s->free_head = t->free_next;
        if (s->free_head == LP2P__NONE) s->free_tail = LP2P__NONE;
        return t;
    }
    if (s->nslots >= LP2P__IDX_MASK) return NULL;
    if (s->nslots == s->capslots && lp2p__slots_grow(s) != LP2P_OK) return NULL;
    lp2p__task *t = (lp2p__task *)lp2p__zalloc(s->ctx, sizeof *t);
    if (!t) return NULL;
    t->idx = s->nslots;
    t->heap_idx = -1;
    s->slots[s->nslots++] = t;
    return t;
}

static void lp2p__slot_put(lp2p__sched *s, lp2p__task *t) {
    t->state = LP2P__T_FREE;
    t->free_next = LP2P__NONE;
    if (s->free_tail == LP2P__NONE) s->free_head = t->idx;
    else s->slots[s->free_tail]->free_next = t->idx;
    s->free_tail = t->idx;
}

/* After the task's function returned (we are back on the loop's stack). */
static void lp2p__task_release(lp2p__sched *s, lp2p__task *t) {
    lp2p__stack_put(s, t->stack);
    t->stack = NULL;
    t->gen = (t->gen + 1) & LP2P__GEN_MASK;
    t->canceled = 0;
    t->fn = NULL;
    t->arg = NULL;
    t->w = NULL;
    lp2p__slot_put(s, t);
    s->live--;
}

/* ==== 5. run queue, timer heap, waiters ===================================================== */
static void lp2p__make_ready(lp2p__task *t) {
    lp2p__sched *s = t->sched;
    t->state = LP2P__T_READY;
    t->run_next = NULL;
    if (s->rq_tail) s->rq_tail->run_next = t;
    else s->rq_head = t;
    s->rq_tail = t;
}

static void lp2p__heap_set(lp2p__sched *s, int i, lp2p__task *t) {
    s->heap[i] = t;
    t->heap_idx = i;
}

static void lp2p__heap_up(lp2p__sched *s, int i) {
    lp2p__task *t = s->heap[i];
    while (i > 0) {
        int p = (i - 1) / 2;
        if (s->heap[p]->deadline <= t->deadline) break;
        lp2p__heap_set(s, i, s->heap[p]);
        i = p;
    }
    lp2p__heap_set(s, i, t);
}

static void lp2p__heap_down(lp2p__sched *s, int i) {
    lp2p__task *t = s->heap[i];
    for (;;) {
        int c = 2 * i + 1;
        if (c >= s->nheap) break;
        if (c + 1 < s->nheap && s->heap[c + 1]->deadline < s->heap[c]->deadline) c++;
        if (t->deadline <= s->heap[c]->deadline) break;
        lp2p__heap_set(s, i, s->heap[c]);
        i = c;
    }
    lp2p__heap_set(s, i, t);
}

static void lp2p__heap_push(lp2p__sched *s, lp2p__task *t) {
    s->heap[s->nheap] = t;
    t->heap_idx = s->nheap++;
    lp2p__heap_up(s, t->heap_idx);
}

static void lp2p__heap_remove(lp2p__sched *s, lp2p__task *t) {
    int i = t->heap_idx;
    t->heap_idx = -1;
    lp2p__task *last = s->heap[--s->nheap];
    if (i == s->nheap) return;
    lp2p__heap_set(s, i, last);
    lp2p__heap_up(s, i);
    lp2p__heap_down(s, last->heap_idx);
}

/* ms until the earliest timer (0 if due), or -1 without timers */
static int lp2p__timer_ms(lp2p__sched *s) {
    if (!s->nheap) return -1;
    int64_t left = s->heap[0]->deadline - lp2p_now();
    return left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
}

static int lp2p__min_timeout(int a, int b) { return a < 0 ? b : b < 0 ? a : LP2P__MIN(a, b); }

static void lp2p__fire_timers(lp2p__sched *s) {
    int64_t now = s->nheap ? lp2p_now() : 0;
    while (s->nheap && s->heap[0]->deadline <= now) {
        lp2p__task *t = s->heap[0];
        lp2p__heap_remove(s, t);
        lp2p__waiter_fire(t->w, t->timeout_rc);
    }
}

static void lp2p__pollset_del(lp2p__sched *s, int fd);

/* Unlink a waiter from whatever it waits on (queue, fd slot). */
static void lp2p__waiter_detach(lp2p__waiter *w) {
    if (w->q) {
        if (w->prev) w->prev->next = w->next;
        else w->q->head = w->next;
        if (w->next) w->next->prev = w->prev;
        else w->q->tail = w->prev;
        w->q = NULL;
        w->next = w->prev = NULL;
    }
    if (w->fd_sched) {
        lp2p__fdent *e = &w->fd_sched->fds[w->fd];
        if (e->rd == w) e->rd = NULL;
        if (e->wr == w) e->wr = NULL;
        if (!e->rd && !e->wr) lp2p__pollset_del(w->fd_sched, w->fd);
        w->fd_sched = NULL;
    }
}

/* End a wait with rc: the single exit of every park. Runs no task code. */
static void lp2p__waiter_fire(lp2p__waiter *w, int rc) {
    if (!w || w->done) return;
    w->done = 1;
    w->rc = rc;
    lp2p__waiter_detach(w);
    lp2p__task *t = w->task;
    if (t) {
        if (t->heap_idx >= 0) lp2p__heap_remove(t->sched, t);
        t->w = NULL;
        lp2p__make_ready(t);
    }
}

static void lp2p__waitq_link(lp2p__waitq *q, lp2p__waiter *w) {
    w->q = q;
    w->next = NULL;
    w->prev = q->tail;
    if (q->tail) q->tail->next = w;
    else q->head = w;
    q->tail = w;
}

/* ==== 6. poller ============================================================================= */
static int lp2p__fd_table(lp2p__sched *s, int fd) {
    if (fd < s->nfds) return LP2P_OK;
    int n = s->nfds ? s->nfds : 64;
    while (n <= fd) n *= 2;
    lp2p__fdent *f = (lp2p__fdent *)lp2p__realloc(s->ctx, s->fds, (size_t)s->nfds * sizeof *f, (size_t)n * sizeof *f);
    if (!f) return LP2P_ERR_NOMEM;
    memset(f + s->nfds, 0, (size_t)(n - s->nfds) * sizeof *f);
    for (int i = s->nfds; i < n; i++) f[i].pidx = -1;
    s->fds = f;
    s->nfds = n;
    return LP2P_OK;
}

/* An edge on fd: wake its waiter, or remember it for the next wait_fd. */
static void lp2p__fd_event(lp2p__sched *s, int fd, int in, int out) {
    if (fd < 0 || fd >= s->nfds) return;
    lp2p__fdent *e = &s->fds[fd];
    if (in) {
        if (e->rd) lp2p__waiter_fire(e->rd, LP2P_OK);
        else e->ready |= LP2P__RD;
    }
    if (out) {
        if (e->wr) lp2p__waiter_fire(e->wr, LP2P_OK);
        else e->ready |= LP2P__WR;
    }
}

static void lp2p__take_posts(lp2p__sched *s);

static void lp2p__drain_wake(lp2p__sched *s) {
    char buf[64];
    while (read(s->wake_rd, buf, s->wake_is_eventfd ? 8 : sizeof buf) > 0 && !s->wake_is_eventfd) {
    }
    lp2p__take_posts(s);
}

static void lp2p__wake_loop(lp2p__sched *s) {
    uint64_t one = 1;
    ssize_t r = write(s->wake_wr, &one, s->wake_is_eventfd ? 8 : 1); /* EAGAIN: already signaled */
    (void)r;
}

#if LP2P__EPOLL
static int lp2p__poller_init(lp2p__sched *s) {
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    return s->epfd < 0 ? LP2P_ERR_IO : LP2P_OK;
}
static void lp2p__poller_close(lp2p__sched *s) {
    if (s->epfd >= 0) close(s->epfd);
}
static int lp2p__poller_add(lp2p__sched *s, int fd) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.fd = fd;
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) == 0 || errno == EEXIST) return LP2P_OK;
    return errno == EBADF || errno == EPERM ? LP2P_ERR_INVALID : LP2P_ERR_IO;
}
static void lp2p__poller_del(lp2p__sched *s, int fd) { epoll_ctl(s->epfd, EPOLL_CTL_DEL, fd, NULL); }
static int lp2p__pollset_add(lp2p__sched *s, int fd) { return (void)s, (void)fd, LP2P_OK; }
static void lp2p__pollset_del(lp2p__sched *s, int fd) { (void)s, (void)fd; }
/* the fds a combined wait over several schedulers must watch */
static int lp2p__poller_nfds(lp2p__sched *s) { return (void)s, 1; }
static int lp2p__poller_fill(lp2p__sched *s, struct pollfd *p) {
    p->fd = s->epfd, p->events = POLLIN, p->revents = 0;
    return 1;
}
static int lp2p__io_poll(lp2p__sched *s, int timeout_ms) {
    struct epoll_event ev[128];
    int n = epoll_wait(s->epfd, ev, (int)LP2P__COUNT(ev), timeout_ms);
    if (n < 0) {
        if (errno == EINTR) return LP2P_OK;
        LP2P__WARN(s->ctx, LP2P_ERR_IO, "epoll_wait: %s", strerror(errno));
        return LP2P_ERR_IO;
    }
    for (int i = 0; i < n; i++) {
        uint32_t e = ev[i].events;
        if (ev[i].data.fd == s->wake_rd) lp2p__drain_wake(s);
        else
            lp2p__fd_event(s, ev[i].data.fd, (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0,
                           (e & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0);
    }
    return LP2P_OK;
}
#else
/* poll(): level-triggered, so only fds that have a waiter are watched (the waiting set). */
static int lp2p__poller_init(lp2p__sched *s) { return (void)s, LP2P_OK; }
static void lp2p__poller_close(lp2p__sched *s) {
    lp2p__free(s->ctx, s->wfds, (size_t)s->capw * sizeof *s->wfds);
    lp2p__free(s->ctx, s->pfds, (size_t)s->cappfds * sizeof *s->pfds);
}
static int lp2p__poller_add(lp2p__sched *s, int fd) {
    (void)s;
    return fcntl(fd, F_GETFD) < 0 ? LP2P_ERR_INVALID : LP2P_OK;
}
static void lp2p__poller_del(lp2p__sched *s, int fd) { (void)s, (void)fd; }
static int lp2p__pollset_add(lp2p__sched *s, int fd) {
    lp2p__fdent *e = &s->fds[fd];
    if (e->pidx >= 0) return LP2P_OK;
    if (s->nw == s->capw) {
        int cap = s->capw ? s->capw * 2 : 16;
        int *w = (int *)lp2p__realloc(s->ctx, s->wfds, (size_t)s->capw * sizeof *w, (size_t)cap * sizeof *w);
        if (!w) return LP2P_ERR_NOMEM;
        s->wfds = w, s->capw = cap;
    }
    e->pidx = s->nw;
    s->wfds[s->nw++] = fd;
    return LP2P_OK;
}
static void lp2p__pollset_del(lp2p__sched *s, int fd) {
    lp2p__fdent *e = &s->fds[fd];
    if (e->pidx < 0) return;
    int last = s->wfds[--s->nw];
    s->wfds[e->pidx] = last;
    s->fds[last].pidx = e->pidx;
    e->pidx = -1;
}
static int lp2p__poller_nfds(lp2p__sched *s) { return 1 + s->nw; }
static int lp2p__poller_fill(lp2p__sched *s, struct pollfd *p) {
    p[0].fd = s->wake_rd, p[0].events = POLLIN, p[0].revents = 0;
    for (int i = 0; i < s->nw; i++) {
        lp2p__fdent *e = &s->fds[s->wfds[i]];
        p[i + 1].fd = s->wfds[i];
        p[i + 1].events = (short)((e->rd ? POLLIN : 0) | (e->wr ? POLLOUT : 0));
        p[i + 1].revents = 0;
    }
    return 1 + s->nw;
}
static int lp2p__io_poll(lp2p__sched *s, int timeout_ms) {
    int n = lp2p__poller_nfds(s);
    if (n > s->cappfds) {
        struct pollfd *p = (struct pollfd *)lp2p__realloc(s->ctx, s->pfds, (size_t)s->cappfds * sizeof *p, (size_t)n * 2 * sizeof *p);
        if (!p) return LP2P_ERR_NOMEM;
        s->pfds = p, s->cappfds = n * 2;
    }
    lp2p__poller_fill(s, s->pfds);
    int r = poll(s->pfds, (nfds_t)n, timeout_ms);
    if (r < 0) {
        if (errno == EINTR) return LP2P_OK;
        LP2P__WARN(s->ctx, LP2P_ERR_IO, "poll: %s", strerror(errno));
        return LP2P_ERR_IO;
    }
    for (int i = 1; i < n && r > 0; i++) {
        short re = s->pfds[i].revents;
        if (re)
            lp2p__fd_event(s, s->pfds[i].fd, (re & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) != 0,
                           (re & (POLLOUT | POLLHUP | POLLERR | POLLNVAL)) != 0);
    }
    if (s->pfds[0].revents) lp2p__drain_wake(s);
    return LP2P_OK;
}
#endif

/* The fd that wakes a blocked poller from another thread: eventfd, else a pipe. */
static int lp2p__wake_init(lp2p__sched *s) {
    s->wake_rd = s->wake_wr = -1;
#if LP2P__EPOLL
    s->wake_rd = s->wake_wr = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->wake_rd >= 0) s->wake_is_eventfd = 1;
#endif
    if (s->wake_rd < 0) {
        int p[2];
        if (pipe(p) != 0) return LP2P_ERR_IO;
        for (int i = 0; i < 2; i++) {
            fcntl(p[i], F_SETFL, fcntl(p[i], F_GETFL) | O_NONBLOCK);
            fcntl(p[i], F_SETFD, FD_CLOEXEC);
        }
        s->wake_rd = p[0], s->wake_wr = p[1];
    }
#if LP2P__EPOLL
    return lp2p__poller_add(s, s->wake_rd);
#else
    return LP2P_OK;
#endif
}

/* ==== 7. scheduler ========================================================================== */
LP2P__PRIV lp2p__ctx *lp2p__sched_ctx(lp2p__sched *s) { return s->ctx; }

/* A task or pooled stack untouched since the previous call (a whole interval) is idle. */
LP2P__PRIV size_t lp2p__sched_trim(lp2p__sched *s) {
    size_t freed = 0;
    s->trim_round++;
    for (uint32_t i = 0; i < s->nslots; i++) {
        lp2p__task *t = s->slots[i];
        if (t->state != LP2P__T_PARKED || t->trimmed || s->trim_round - t->run_round < 2) continue;
        uintptr_t sp = lp2p__coro_sp(&t->ctx);
        if (sp) freed += lp2p__stack_release_below(s, t->stack, sp);
        t->trimmed = 1;
    }
    for (int i = 0; i < s->npool; i++) { /* keep the top page: every task starts there */
        if (s->pool_trimmed[i] || s->trim_round - s->pool_round[i] < 2) continue;
        freed += lp2p__stack_release_below(s, s->pool[i], (uintptr_t)s->pool[i] + s->stack_size);
        s->pool_trimmed[i] = 1;
    }
    return freed;
}

static void lp2p__tls_link(lp2p__sched *s) {
    s->towner = &lp2p__tls_scheds;
    s->tprev = NULL;
    s->tnext = lp2p__tls_scheds;
    if (s->tnext) s->tnext->tprev = s;
    lp2p__tls_scheds = s;
    lp2p__tls_ver++;
}

static void lp2p__tls_unlink(lp2p__sched *s) {
    if (!s->towner) return;
    if (s->towner != &lp2p__tls_scheds)
        LP2P__WARN(s->ctx, LP2P_ERR_INVALID, "scheduler freed on another thread than the one that created it");
    if (s->tprev) s->tprev->tnext = s->tnext;
    else *s->towner = s->tnext;
    if (s->tnext) s->tnext->tprev = s->tprev;
    s->towner = NULL;
    lp2p__tls_ver++;
}

LP2P__PRIV int lp2p__sched_new(lp2p__ctx *ctx, const lp2p__sched_cfg *cfg, lp2p__sched **out) {
    lp2p__sched *s = (lp2p__sched *)lp2p__zalloc(ctx, sizeof *s);
    if (!s) return LP2P_ERR_NOMEM;
    long pg = sysconf(_SC_PAGESIZE);
    s->ctx = ctx;
    s->page = pg > 0 ? (size_t)pg : 4096;
    size_t want = cfg && cfg->stack_size ? cfg->stack_size : 64 * 1024;
    if (want < 16 * 1024) want = 16 * 1024;
    s->stack_size = (want + s->page - 1) / s->page * s->page;
    s->max_tasks = cfg && cfg->max_tasks > 0 ? cfg->max_tasks : 65536;
    if (s->max_tasks > (int)LP2P__IDX_MASK - 1) s->max_tasks = (int)LP2P__IDX_MASK - 1;
    s->free_head = s->free_tail = LP2P__NONE;
    s->epoch = 1;
#if LP2P__EPOLL
    s->epfd = -1;
#endif
    s->wake_rd = s->wake_wr = -1;
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        lp2p__free(ctx, s, sizeof *s);
        return LP2P_ERR_IO;
    }
    int rc = lp2p__poller_init(s);
    if (rc == LP2P_OK) rc = lp2p__wake_init(s);
    if (rc != LP2P_OK) {
        LP2P__ERROR(ctx, rc, "scheduler: cannot create poller or wake fd: %s", strerror(errno));
        lp2p__poller_close(s);
        if (s->wake_rd >= 0) close(s->wake_rd);
        if (s->wake_wr >= 0 && s->wake_wr != s->wake_rd) close(s->wake_wr);
        pthread_mutex_destroy(&s->mu);
        lp2p__free(ctx, s, sizeof *s);
        return rc;
    }
    lp2p__tls_link(s);
    *out = s;
    return LP2P_OK;
}

/* Resume t until it parks, yields or ends. Nests safely: a task of one scheduler may free
 * another, which resumes that one's tasks from inside the first task. */
static void lp2p__resume(lp2p__sched *s, lp2p__task *t) {
    lp2p__task *prev = lp2p__tls_cur;
    t->state = LP2P__T_RUNNING;
    t->epoch = s->epoch;
    t->run_round = s->trim_round;
    t->trimmed = 0;
    lp2p__tls_cur = t;
    lp2p__coro_jump(&s->loop, &t->ctx);
    lp2p__tls_cur = prev;
    if (t->state == LP2P__T_DEAD) lp2p__task_release(s, t);
}

/* Resume each task ready now once; tasks already resumed in this poll call wait for the next. */
static int lp2p__run_ready(lp2p__sched *s) {
    lp2p__task *t = s->rq_head;
    int n = 0;
    s->rq_head = s->rq_tail = NULL;
    while (t) {
        lp2p__task *next = t->run_next;
        t->run_next = NULL;
        if (t->epoch == s->epoch) lp2p__make_ready(t);
        else lp2p__resume(s, t), n++;
        t = next;
    }
    return n;
}

LP2P__PRIV int lp2p__sched_poll(lp2p__sched *s, int timeout_ms) {
    if (lp2p__tls_cur || lp2p__tls_depth || s->ctx->in_logger) return LP2P_ERR_WOULDBLOCK;
    lp2p__tls_depth++;
    if (++s->epoch == 0) s->epoch = 1; /* 0 is "never resumed" */
    int n = lp2p__run_ready(s);
    int to = timeout_ms;
    if (s->rq_head || __atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) to = 0;
    else to = lp2p__min_timeout(to, lp2p__timer_ms(s));
    int rc = lp2p__io_poll(s, to);
    lp2p__fire_timers(s);
    n += lp2p__run_ready(s);
    lp2p__tls_depth--;
    return rc < 0 ? rc : n;
}

LP2P__PRIV int lp2p__sched_run(lp2p__sched *s) {
    if (lp2p__tls_cur || lp2p__tls_depth) return LP2P_ERR_WOULDBLOCK;
    while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
        int rc = lp2p__sched_poll(s, -1);
        if (rc < 0) return rc; /* the poller failed (logged) */
    }
    __atomic_store_n(&s->stop, 0, __ATOMIC_RELEASE); /* consumed: the next run loops again */
    return LP2P_OK;
}

LP2P__PRIV void lp2p__sched_stop(lp2p__sched *s) {
    __atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
    lp2p__wake_loop(s);
}

/* Thread-safe; the allocator must then be thread-safe too (the default malloc is). */
LP2P__PRIV int lp2p__sched_post(lp2p__sched *s, void (*fn)(void *), void *arg) {
    if (!fn) return LP2P_ERR_INVALID;
    lp2p__post *p = (lp2p__post *)lp2p__alloc(s->ctx, sizeof *p);
    if (!p) return LP2P_ERR_NOMEM;
    p->next = NULL, p->fn = fn, p->arg = arg;
    pthread_mutex_lock(&s->mu);
    if (s->posts_tail) s->posts_tail->next = p;
    else s->posts_head = p;
    s->posts_tail = p;
    pthread_mutex_unlock(&s->mu);
    lp2p__wake_loop(s);
    return LP2P_OK;
}

static void lp2p__take_posts(lp2p__sched *s) {
    pthread_mutex_lock(&s->mu);
    lp2p__post *p = s->posts_head;
    s->posts_head = s->posts_tail = NULL;
    pthread_mutex_unlock(&s->mu);
    while (p) {
        lp2p__post *next = p->next;
        if (lp2p__spawn(s, p->fn, p->arg).id == 0)
            LP2P__ERROR(s->ctx, LP2P_ERR_LIMIT, "posted callback dropped: cannot start a task for it");
        lp2p__free(s->ctx, p, sizeof *p);
        p = next;
    }
}

/* Cancel everything and resume until all tasks returned, at most LP2P__FREE_ROUNDS rounds. */
static void lp2p__sched_drain(lp2p__sched *s) {
    for (uint32_t i = 0; i < s->nslots; i++) {
        lp2p__task *t = s->slots[i];
        if (t->state == LP2P__T_FREE || t->state == LP2P__T_DEAD) continue;
        t->canceled = 1;
        if (t->state == LP2P__T_PARKED) lp2p__waiter_fire(t->w, LP2P_ERR_CANCELED);
    }
    for (int i = 0; i < s->nfds; i++) { /* tasks of other schedulers parked on our fds */
        if (s->fds[i].rd) lp2p__waiter_fire(s->fds[i].rd, LP2P_ERR_CLOSED);
        if (s->fds[i].wr) lp2p__waiter_fire(s->fds[i].wr, LP2P_ERR_CLOSED);
    }
    for (int round = 0; s->live > 0 && s->rq_head && round < LP2P__FREE_ROUNDS; round++) {
        if (++s->epoch == 0) s->epoch = 1;
        lp2p__run_ready(s);
    }
    if (s->live > 0)
        LP2P__ERROR(s->ctx, LP2P_ERR_CANCELED, "sched_free: %d task(s) still running after cancel; abandoning them",
                    s->live);
}

LP2P__PRIV void lp2p__sched_free(lp2p__sched *s) {
    if (!s) return;
    if ((lp2p__tls_cur && lp2p__tls_cur->sched == s) || (!lp2p__tls_cur && lp2p__tls_depth)) {
        LP2P__ERROR(s->ctx, LP2P_ERR_WOULDBLOCK, "sched_free called from inside its own loop; ignored");
        return;
    }
    s->freeing = 1;
    lp2p__sched_drain(s);
    for (uint32_t i = 0; i < s->nslots; i++) {
        lp2p__task *t = s->slots[i];
        if (t->state != LP2P__T_FREE) { /* abandoned: forget its waits, tell its joiners */
            if (t->w) lp2p__waiter_detach(t->w);
            t->gen = (t->gen + 1) & LP2P__GEN_MASK;
            t->state = LP2P__T_FREE;
            lp2p__waitq_wake_all(s, &t->joiners);
        }
        if (t->stack) munmap(t->stack, s->stack_size + s->page);
        lp2p__free(s->ctx, t, sizeof *t);
    }
    while (s->npool) munmap(s->pool[--s->npool], s->stack_size + s->page);
    lp2p__free(s->ctx, s->slots, s->capslots * sizeof *s->slots);
    lp2p__free(s->ctx, s->heap, s->capslots * sizeof *s->heap);
    lp2p__free(s->ctx, s->fds, (size_t)s->nfds * sizeof *s->fds);
    for (lp2p__post *p = s->posts_head, *next; p; p = next) { /* posted but never run: dropped */
        next = p->next;
        lp2p__free(s->ctx, p, sizeof *p);
    }
    lp2p__poller_close(s);
    if (s->wake_rd >= 0) close(s->wake_rd);
    if (s->wake_wr >= 0 && s->wake_wr != s->wake_rd) close(s->wake_wr);
    pthread_mutex_destroy(&s->mu);
    lp2p__tls_unlink(s);
    lp2p__free(s->ctx, s, sizeof *s);
}

/* ==== 8. waiting outside tasks: pump every scheduler of this thread ========================= */
/* Block until any scheduler of this thread has work: one poll() over their pollers (an epoll
 * fd is readable when it has events), bounded by the earliest timer and the deadline. */
static void lp2p__pump_block(int64_t deadline) {
    struct pollfd local[32], *p = local;
    int n = 0, to = lp2p__deadline_ms(deadline);
    lp2p__ctx *actx = NULL;
    for (lp2p__sched *x = lp2p__tls_scheds; x; x = x->tnext) {
        n += lp2p__poller_nfds(x);
        to = lp2p__min_timeout(to, lp2p__timer_ms(x));
        if (!actx) actx = x->ctx;
    }
    if (n > (int)LP2P__COUNT(local)) {
        p = (struct pollfd *)lp2p__alloc(actx, (size_t)n * sizeof *p);
        if (!p) { /* degrade: watch what fits, wake up often */
            p = local, n = (int)LP2P__COUNT(local);
            to = lp2p__min_timeout(to, 10);
        }
    }
    int k = 0;
    for (lp2p__sched *x = lp2p__tls_scheds; x && k + lp2p__poller_nfds(x) <= n; x = x->tnext) k += lp2p__poller_fill(x, p + k);
    if (poll(p, (nfds_t)k, to) < 0 && errno != EINTR) to = 0;
    if (p != local) lp2p__free(actx, p, (size_t)n * sizeof *p);
}

/* Run the loops until w fires or the deadline passes (then timeout_rc). */
static int lp2p__pump(lp2p__waiter *w, int64_t deadline, int timeout_rc) {
    for (;;) {
        int busy = 0;
        unsigned ver = lp2p__tls_ver;
        for (lp2p__sched *x = lp2p__tls_scheds; x; x = x->tnext) {
            lp2p__sched_poll(x, 0);
            if (w->done) return w->rc;
            if (ver != lp2p__tls_ver) { /* a task created or freed a scheduler: start over */
                busy = 1;
                break;
            }
            if (x->rq_head) busy = 1;
        }
        if (deadline > 0 && lp2p_now() >= deadline) break;
        if (!busy) lp2p__pump_block(deadline);
        if (w->done) return w->rc;
    }
    w->done = 1;
    lp2p__waiter_detach(w);
    return timeout_rc;
}

/* ==== 9. waits, tasks, mutex ================================================================ */
/* A canceled task's waits return ERR_CANCELED, but still pass through the run queue once, so
 * a task that ignores the error cannot spin without ever giving the loop control back. */
static int lp2p__switch_out(lp2p__task *t) {
    lp2p__coro_jump(&t->ctx, &t->sched->loop);
    return LP2P_OK;
}

static int lp2p__canceled_yield(lp2p__task *t) {
    lp2p__make_ready(t);
    lp2p__switch_out(t);
    return LP2P_ERR_CANCELED;
}

/* May the caller wait at all? Returns 1, or 0 with *rc set (WOULDBLOCK / CANCELED). */
static int lp2p__wait_allowed(lp2p__sched *s, int *rc) {
    lp2p__task *t = lp2p__tls_cur;
    if (s->ctx->in_logger || (!t && lp2p__tls_depth)) {
        *rc = LP2P_ERR_WOULDBLOCK;
        return 0;
    }
    if (t && t->canceled) {
        *rc = lp2p__canceled_yield(t);
        return 0;
    }
    return 1;
}

static int lp2p__expired(int64_t deadline) { return deadline == 0 || (deadline > 0 && deadline <= lp2p_now()); }

/* Park the current task on w, or pump the loops when called outside any task. */
static int lp2p__wait(lp2p__waiter *w, int64_t deadline, int timeout_rc) {
    lp2p__task *t = lp2p__tls_cur;
    if (!t) return lp2p__pump(w, deadline, timeout_rc);
    w->task = t;
    t->w = w;
    t->timeout_rc = timeout_rc;
    if (deadline > 0) {
        t->deadline = deadline;
        lp2p__heap_push(t->sched, t);
    }
    t->state = LP2P__T_PARKED;
    lp2p__switch_out(t);
    return w->rc;
}

static void lp2p__task_main(void *p) {
    lp2p__task *t = (lp2p__task *)p;
    t->fn(t->arg);
    t->state = LP2P__T_DEAD;
    lp2p__waitq_wake_all(t->sched, &t->joiners);
    lp2p__switch_out(t); /* the loop releases the stack; never comes back */
    LP2P_ASSERT(0);
}

LP2P__PRIV lp2p_task lp2p__spawn(lp2p__sched *s, void (*fn)(void *), void *arg) {
    lp2p_task h = {0};
    if (!s || !fn) return h;
    if (s->freeing) {
        LP2P__WARN(s->ctx, LP2P_ERR_CANCELED, "spawn refused: scheduler is shutting down");
        return h;
    }
    if (s->live >= s->max_tasks) {
        LP2P__WARN(s->ctx, LP2P_ERR_LIMIT, "limit max_tasks (%d) reached: task not started", s->max_tasks);
        return h;
    }
    lp2p__task *t = lp2p__slot_get(s);
    void *stack = t ? lp2p__stack_get(s) : NULL;
    if (!stack) {
        if (t) lp2p__slot_put(s, t);
        LP2P__ERROR(s->ctx, LP2P_ERR_NOMEM, "spawn: out of memory for a task %s (%zu-byte stacks, %d live)",
                    t ? "stack" : "record", s->stack_size, s->live);
        return h;
    }
    t->sched = s;
    t->fn = fn, t->arg = arg;
    t->stack = stack;
    t->w = NULL;
    t->heap_idx = -1;
    t->canceled = 0;
    t->epoch = 0;
    t->joiners.head = t->joiners.tail = NULL;
    lp2p__coro_init(&t->ctx, (char *)stack + s->page, s->stack_size, lp2p__task_main, t);
    s->live++;
    lp2p__make_ready(t);
    return lp2p__handle(t);
}

LP2P__PRIV int lp2p__task_cancel(lp2p__sched *s, lp2p_task h) {
    lp2p__task *t = lp2p__lookup(s, h);
    if (!t) return LP2P_ERR_NOTFOUND;
    t->canceled = 1;
    if (t->state == LP2P__T_PARKED) lp2p__waiter_fire(t->w, LP2P_ERR_CANCELED);
    return LP2P_OK;
}

LP2P__PRIV bool lp2p__task_alive(lp2p__sched *s, lp2p_task h) { return lp2p__lookup(s, h) != NULL; }

LP2P__PRIV int lp2p__task_join(lp2p__sched *s, lp2p_task h, int64_t deadline) {
    uint32_t i = h.id & LP2P__IDX_MASK;
    if (i == 0 || i > s->nslots) return LP2P_ERR_NOTFOUND;
    lp2p__task *t;
    while ((t = lp2p__lookup(s, h)) != NULL) {
        if (t == lp2p__tls_cur) return LP2P_ERR_INVALID;
        int rc = lp2p__waitq_wait(s, &t->joiners, deadline);
        if (rc != LP2P_OK) return lp2p__lookup(s, h) ? rc : LP2P_OK;
    }
    return LP2P_OK;
}

LP2P__PRIV lp2p__task *lp2p__task_current(void) { return lp2p__tls_cur; }

LP2P__PRIV lp2p_task lp2p__task_self(void) {
    lp2p_task h = {0};
    return lp2p__tls_cur ? lp2p__handle(lp2p__tls_cur) : h;
}

LP2P__PRIV bool lp2p__task_canceled(void) { return lp2p__tls_cur && lp2p__tls_cur->canceled; }

LP2P__PRIV int lp2p__fd_add(lp2p__sched *s, int fd) {
    if (fd < 0) return LP2P_ERR_INVALID;
    if (lp2p__fd_table(s, fd) != LP2P_OK) return LP2P_ERR_NOMEM;
    int rc = lp2p__poller_add(s, fd);
    if (rc != LP2P_OK) {
        LP2P__WARN(s->ctx, rc, "fd_add(%d): %s", fd, strerror(errno));
        return rc;
    }
    s->fds[fd].registered = 1;
    s->fds[fd].ready = 0;
    return LP2P_OK;
}

LP2P__PRIV void lp2p__fd_del(lp2p__sched *s, int fd) {
    if (fd < 0 || fd >= s->nfds) return;
    lp2p__fdent *e = &s->fds[fd];
    if (e->rd) lp2p__waiter_fire(e->rd, LP2P_ERR_CLOSED);
    if (e->wr) lp2p__waiter_fire(e->wr, LP2P_ERR_CLOSED);
    if (e->registered) lp2p__poller_del(s, fd);
    e->registered = 0;
    e->ready = 0;
}

LP2P__PRIV int lp2p__wait_fd(lp2p__sched *s, int fd, int dir, int64_t deadline) {
    int rc;
    if (fd < 0 || (dir != LP2P__IN && dir != LP2P__OUT)) return LP2P_ERR_INVALID;
    if (!lp2p__wait_allowed(s, &rc)) return rc;
    if ((fd >= s->nfds || !s->fds[fd].registered) && (rc = lp2p__fd_add(s, fd)) != LP2P_OK) return rc;
    lp2p__fdent *e = &s->fds[fd];
    int bit = dir == LP2P__IN ? LP2P__RD : LP2P__WR;
    if (e->ready & bit) { /* an edge came while nobody waited: let the caller retry its syscall */
        e->ready &= (uint8_t)~bit;
        return LP2P_OK;
    }
    if (lp2p__expired(deadline)) return LP2P_ERR_TIMEOUT;
    lp2p__waiter **slot = dir == LP2P__IN ? &e->rd : &e->wr;
    if (*slot) return LP2P_ERR_BUSY;
    if ((rc = lp2p__pollset_add(s, fd)) != LP2P_OK) return rc;
    lp2p__waiter w;
    memset(&w, 0, sizeof w);
    w.fd_sched = s, w.fd = fd, w.dir = dir;
    *slot = &w;
    return lp2p__wait(&w, deadline, LP2P_ERR_TIMEOUT);
}

LP2P__PRIV int lp2p__sleep_until(lp2p__sched *s, int64_t deadline) {
    int rc;
    if (!lp2p__wait_allowed(s, &rc)) return rc;
    if (lp2p__expired(deadline)) return LP2P_OK;
    lp2p__waiter w;
    memset(&w, 0, sizeof w);
    return lp2p__wait(&w, deadline, LP2P_OK);
}

LP2P__PRIV int lp2p__yield(lp2p__sched *s) {
    lp2p__task *t = lp2p__tls_cur;
    if (!t) { /* outside tasks: one non-blocking round of every loop of this thread */
        if (lp2p__tls_depth || s->ctx->in_logger) return LP2P_ERR_WOULDBLOCK;
        unsigned ver = lp2p__tls_ver;
        for (lp2p__sched *x = lp2p__tls_scheds; x; x = x->tnext) {
            lp2p__sched_poll(x, 0);
            if (ver != lp2p__tls_ver) break; /* x may be gone */
        }
        return LP2P_OK;
    }
    lp2p__make_ready(t);
    lp2p__switch_out(t);
    return t->canceled ? LP2P_ERR_CANCELED : LP2P_OK;
}

LP2P__PRIV int lp2p__waitq_wait(lp2p__sched *s, lp2p__waitq *q, int64_t deadline) {
    int rc;
    if (!lp2p__wait_allowed(s, &rc)) return rc;
    if (lp2p__expired(deadline)) return LP2P_ERR_TIMEOUT;
    lp2p__waiter w;
    memset(&w, 0, sizeof w);
    lp2p__waitq_link(q, &w);
    return lp2p__wait(&w, deadline, LP2P_ERR_TIMEOUT);
}

LP2P__PRIV void lp2p__waitq_wake_one(lp2p__sched *s, lp2p__waitq *q) {
    (void)s;
    if (q->head) lp2p__waiter_fire(q->head, LP2P_OK);
}

LP2P__PRIV void lp2p__waitq_wake_all(lp2p__sched *s, lp2p__waitq *q) {
    (void)s;
    while (q->head) lp2p__waiter_fire(q->head, LP2P_OK);
}

/* Ownership is handed straight to the woken waiter, so a late locker cannot barge in. */
LP2P__PRIV int lp2p__mutex_lock(lp2p__sched *s, lp2p__mutex *m, int64_t deadline) {
    if (!m->locked) { /* not a wait: succeeds even for a canceled task (cleanup may need it) */
        m->locked = 1;
        return LP2P_OK;
    }
    return lp2p__waitq_wait(s, &m->q, deadline); /* OK: the unlocker handed it over */
}

LP2P__PRIV void lp2p__mutex_unlock(lp2p__sched *s, lp2p__mutex *m) {
    if (m->q.head) lp2p__waitq_wake_one(s, &m->q); /* stays locked: now the waiter's */
    else m->locked = 0;
}
