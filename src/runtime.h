/* runtime.h - L2: stackful coroutines (tasks), scheduler, timers, I/O poller.
 *
 * A scheduler (one per host) owns: a pool of guard-paged mmap stacks, a run queue, a timer
 * heap, an epoll instance (poll() fallback) and a thread-safe post queue woken by an eventfd
 * or a pipe. Tasks are stackful coroutines switched by hand-written assembly (x86-64 SysV,
 * aarch64; ucontext fallback with LP2P_CORO_UCONTEXT).
 *
 * "Blocking" calls: every wait function below, called inside a task, parks the task and
 * returns when the condition or the absolute deadline (ms of lp2p_now(); LP2P_FOREVER = -1,
 * LP2P_NOWAIT = 0) arrives. Called outside any task (plain main()), it pumps the scheduler
 * loop itself - every scheduler created on this thread, so several hosts in one test
 * process make progress - until the condition or the deadline. Called while the scheduler
 * is already being pumped by non-task code (the logger, a post callback), it returns
 * LP2P_ERR_WOULDBLOCK. A canceled task's waits return LP2P_ERR_CANCELED, at once and on
 * every later wait (each still passes once through the run queue, so a task that ignores the
 * error cannot starve the loop or hang lp2p__sched_free).
 * Threads: a scheduler is driven by one thread at a time; only lp2p__sched_post and
 * lp2p__sched_stop may be called from others. Outside-task waits pump the schedulers created
 * on the calling thread (several hosts in one test talk to each other from main()).
 * Limits: each task stack is two mappings (stack + guard page); Linux's vm.max_map_count
 * (65530 by default) caps live tasks at about 32 k per process.
 * Depends on: base.h. */
#ifndef LP2P__RUNTIME_H
#define LP2P__RUNTIME_H

#include "base.h"

typedef struct lp2p__sched lp2p__sched;
typedef struct lp2p__task lp2p__task; /* internal task record (pooled, reused) */

typedef struct lp2p__sched_cfg {
    size_t stack_size; /* 0 -> 64 KiB (usable bytes, at least 16 KiB, plus one guard page) */
    int max_tasks;     /* 0 -> 65536 live tasks; spawn past it fails with ERR_LIMIT (logged) */
} lp2p__sched_cfg;

LP2P__PRIV int lp2p__sched_new(lp2p__ctx *ctx, const lp2p__sched_cfg *cfg, lp2p__sched **out);
/* Cancel every task, resume them until they have all returned, free all resources. */
LP2P__PRIV void lp2p__sched_free(lp2p__sched *s);
/* One loop iteration: resume each ready task at most once, poll I/O (waiting at most
 * timeout_ms; 0 never blocks, < 0 waits for the next event), fire due timers, run posted
 * callbacks. Returns the number of tasks resumed (>= 0) or an LP2P_ERR_*. */
LP2P__PRIV int lp2p__sched_poll(lp2p__sched *s, int timeout_ms);
/* Loop until lp2p__sched_stop (a stop made before the call ends it at once; each stop ends
 * one run). Returns LP2P_OK, ERR_IO if the poller fails, ERR_WOULDBLOCK inside a task. */
LP2P__PRIV int lp2p__sched_run(lp2p__sched *s);
LP2P__PRIV void lp2p__sched_stop(lp2p__sched *s);                          /* thread-safe */
/* Thread-safe; fn runs as a new task on the loop's thread. Allocates with the ctx allocator
 * from the calling thread (the default malloc is thread-safe). Returns OK, ERR_NOMEM,
 * ERR_INVALID. Posts not yet run when the scheduler is freed are dropped. */
LP2P__PRIV int lp2p__sched_post(lp2p__sched *s, void (*fn)(void *), void *arg);
LP2P__PRIV lp2p__ctx *lp2p__sched_ctx(lp2p__sched *s);
/* Return idle stack memory to the OS: for tasks parked since before the previous call, the
 * pages below their stack pointer; for stacks pooled that long, all but the top page. Call it
 * periodically (the host does, every second); busy tasks are not touched. Returns the bytes
 * advised away (pages that were not resident count too). Never blocks. */
LP2P__PRIV size_t lp2p__sched_trim(lp2p__sched *s);

/* ---- tasks ---- */
/* Start fn(arg) as a new task (runs at the next poll). Handle id 0 means failure (limit or
 * memory; logged). Never blocks. */
LP2P__PRIV lp2p_task lp2p__spawn(lp2p__sched *s, void (*fn)(void *), void *arg);
/* Ask a task to stop: its current and later waits return ERR_CANCELED. ERR_NOTFOUND if dead. */
LP2P__PRIV int lp2p__task_cancel(lp2p__sched *s, lp2p_task t);
/* Wait for a task to end: OK when it ended (also if it had ended before), ERR_NOTFOUND for
 * {0} or a handle this scheduler never gave out, ERR_INVALID for the calling task itself,
 * ERR_TIMEOUT, ERR_CANCELED, ERR_WOULDBLOCK. */
LP2P__PRIV int lp2p__task_join(lp2p__sched *s, lp2p_task t, int64_t deadline);
LP2P__PRIV bool lp2p__task_alive(lp2p__sched *s, lp2p_task t);
/* The task running now on this thread, or NULL outside tasks. */
LP2P__PRIV lp2p__task *lp2p__task_current(void);
/* Handle of the current task ({0} outside tasks). */
LP2P__PRIV lp2p_task lp2p__task_self(void);
/* Has the current task been canceled? (false outside tasks) */
LP2P__PRIV bool lp2p__task_canceled(void);

/* ---- waiting ---- */
#define LP2P__IN 1
#define LP2P__OUT 2
/* Register a non-blocking fd with the poller once (epoll: EPOLLIN|EPOLLOUT|EPOLLET). */
LP2P__PRIV int lp2p__fd_add(lp2p__sched *s, int fd);
/* Unregister before close(); tasks waiting on fd wake with ERR_CLOSED. */
LP2P__PRIV void lp2p__fd_del(lp2p__sched *s, int fd);
/* Wait until fd may be readable (LP2P__IN) or writable (LP2P__OUT) - also on error/hangup,
 * so the caller retries its syscall (try the syscall first, wait on EAGAIN). Registers the fd
 * if needed. Returns OK, ERR_TIMEOUT, ERR_CANCELED, ERR_CLOSED, ERR_WOULDBLOCK, ERR_INVALID
 * (bad fd or dir), ERR_BUSY (a second reader or writer: one of each per fd at a time). */
LP2P__PRIV int lp2p__wait_fd(lp2p__sched *s, int fd, int dir, int64_t deadline);
/* Park until deadline (OK) or cancel (ERR_CANCELED). */
LP2P__PRIV int lp2p__sleep_until(lp2p__sched *s, int64_t deadline);
/* Let every other ready task run once. OK; ERR_CANCELED (after yielding) in a canceled task;
 * outside tasks, one non-blocking round of every scheduler of the thread. */
LP2P__PRIV int lp2p__yield(lp2p__sched *s);

/* A wait queue: tasks (or a main() pump) wait until woken. Wake-ups are not remembered:
 * callers re-check their condition in a loop (spurious wake-ups allowed). Zero-init valid. */
typedef struct lp2p__waiter lp2p__waiter;
typedef struct lp2p__waitq {
    lp2p__waiter *head, *tail;
} lp2p__waitq;
/* OK when woken, ERR_TIMEOUT, ERR_CANCELED, ERR_WOULDBLOCK. */
LP2P__PRIV int lp2p__waitq_wait(lp2p__sched *s, lp2p__waitq *q, int64_t deadline);
LP2P__PRIV void lp2p__waitq_wake_one(lp2p__sched *s, lp2p__waitq *q);
LP2P__PRIV void lp2p__waitq_wake_all(lp2p__sched *s, lp2p__waitq *q);

/* A mutex between tasks of one scheduler (e.g. one writer at a time on a connection). */
typedef struct lp2p__mutex {
    int locked;
    lp2p__waitq q;
} lp2p__mutex;
/* OK / TIMEOUT / CANCELED / WOULDBLOCK. Unlock hands the mutex to the first waiter (FIFO).
 * Taking a free mutex is not a wait: it succeeds even in a canceled task (cleanup). */
LP2P__PRIV int lp2p__mutex_lock(lp2p__sched *s, lp2p__mutex *m, int64_t deadline);
LP2P__PRIV void lp2p__mutex_unlock(lp2p__sched *s, lp2p__mutex *m);

#endif
