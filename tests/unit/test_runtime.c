/* test_runtime.c - L2: tasks, scheduler, deadlines, cancel/join, fd waits, posts from other
 * threads, outside-task pumping of several schedulers, re-entrancy, 10k tasks, guard page.
 * test_runtime_ucontext.c and test_runtime_poll.c include this file to run the same tests
 * on the ucontext switch and the poll() poller. Every wait has a deadline; no timing asserts. */
#define LIBP2P_IMPLEMENTATION
#include "libp2p.h"
#include "tests/test.h"

#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

/* ---- fixtures: a counting allocator (leak check) and a counting logger ---- */
static long t_bytes;
static void *t_alloc(size_t n, void *u) {
    (void)u;
    __atomic_add_fetch(&t_bytes, (long)n, __ATOMIC_RELAXED);
    return malloc(n);
}
static void t_free(void *p, size_t n, void *u) {
    (void)u;
    __atomic_sub_fetch(&t_bytes, (long)n, __ATOMIC_RELAXED);
    free(p);
}
static int t_logs[32]; /* count of messages per -item */
static void t_logger(void *u, lp2p_log_level lv, int item, const char *msg, const char *f, int l) {
    (void)u, (void)lv, (void)msg, (void)f, (void)l;
    if (item <= 0 && item > -32) t_logs[-item]++;
}
static lp2p__ctx t_ctx;
static void t_ctx_init(lp2p__ctx *c) {
    lp2p_allocator a = {t_alloc, t_free, NULL};
    lp2p_logger lg = {t_logger, NULL};
    lp2p__ctx_init(c, &a, &lg, LP2P_LOG_DEBUG);
}
static lp2p__sched *t_new(int stack, int max_tasks) {
    lp2p__sched_cfg cfg = {(size_t)stack, max_tasks};
    lp2p__sched *s = NULL;
    CHECK_EQ(lp2p__sched_new(&t_ctx, &cfg, &s), LP2P_OK);
    return s;
}
/* poll until *flag reaches want or 5 s pass */
static void t_run_until(lp2p__sched *s, volatile int *flag, int want) {
    int64_t end = lp2p_deadline_in(5000);
    while (*flag < want && lp2p_now() < end) lp2p__sched_poll(s, 50);
}
static void t_drain(lp2p__sched *s) {
    int64_t end = lp2p_deadline_in(5000);
    while (s->live > 0 && lp2p_now() < end) lp2p__sched_poll(s, 50);
}
static lp2p__sched *g_s; /* the scheduler the current test's tasks use */

/* ---- basic order, yield, poll semantics ---- */
static char g_trace[64];
static int g_tn;
static void t_tracer(void *arg) {
    for (int i = 0; i < 3; i++) {
        g_trace[g_tn++] = (char)(uintptr_t)arg;
        lp2p__yield(g_s);
    }
}
static void t_spinner(void *arg) {
    int *n = (int *)arg;
    for (int i = 0; i < 100; i++) {
        (*n)++;
        lp2p__yield(g_s);
    }
}
static void test_basic(void) {
    TEST("spawn, FIFO order, yield, each ready task resumed once per poll");
    g_s = t_new(0, 0);
    g_tn = 0;
    lp2p_task a = lp2p__spawn(g_s, t_tracer, (void *)'a');
    lp2p__spawn(g_s, t_tracer, (void *)'b');
    lp2p__spawn(g_s, t_tracer, (void *)'c');
    CHECK(a.id != 0);
    CHECK(lp2p__task_alive(g_s, a));
    CHECK(lp2p__task_current() == NULL);
    CHECK_EQ(lp2p__task_self().id, 0);
    CHECK_EQ(lp2p__sched_poll(g_s, 0), 3); /* each once, although all stayed ready */
    CHECK_EQ(g_tn, 3);
    t_drain(g_s);
    g_trace[g_tn] = 0;
    CHECK_STR(g_trace, "abcabcabc");
    CHECK(!lp2p__task_alive(g_s, a));
    int n = 0;
    lp2p__spawn(g_s, t_spinner, &n);
    CHECK_EQ(lp2p__sched_poll(g_s, 0), 1);
    CHECK_EQ(n, 1);
    CHECK_EQ(lp2p__sched_poll(g_s, 0), 1);
    CHECK_EQ(n, 2);
    t_drain(g_s);
    CHECK_EQ(n, 100);
    CHECK(lp2p__sched_ctx(g_s) == &t_ctx);
    lp2p__sched_free(g_s);
}

/* ---- deadlines ---- */
static int g_rc[16];
static int64_t g_t[16];
static lp2p__waitq g_q;
static void t_sleeper(void *arg) {
    int i = (int)(intptr_t)arg;
    int64_t d = lp2p_deadline_in(30);
    g_rc[i] = lp2p__sleep_until(g_s, d);
    g_t[i] = lp2p_now() - d; /* >= 0 when the sleep lasted */
}
static void t_deadlines(void *arg) {
    (void)arg;
    lp2p__waitq q = {0};
    g_rc[0] = lp2p__waitq_wait(g_s, &q, lp2p_now() - 5); /* past */
    g_rc[1] = lp2p__waitq_wait(g_s, &q, LP2P_NOWAIT);
    g_rc[2] = lp2p__waitq_wait(g_s, &q, lp2p_deadline_in(20)); /* nobody wakes */
    g_rc[3] = lp2p__sleep_until(g_s, LP2P_NOWAIT);
    g_rc[4] = lp2p__sleep_until(g_s, lp2p_now() - 1);
    g_rc[5] = q.head == NULL;
}
static void test_deadlines(void) {
    TEST("deadlines: sleep_until, past deadline, NOWAIT, timeouts");
    g_s = t_new(0, 0);
    memset(g_rc, 0x7f, sizeof g_rc);
    lp2p__spawn(g_s, t_sleeper, (void *)(intptr_t)8);
    lp2p__spawn(g_s, t_deadlines, NULL);
    t_drain(g_s);
    CHECK_EQ(g_rc[8], LP2P_OK);
    CHECK(g_t[8] >= 0);
    CHECK_EQ(g_rc[0], LP2P_ERR_TIMEOUT);
    CHECK_EQ(g_rc[1], LP2P_ERR_TIMEOUT);
    CHECK_EQ(g_rc[2], LP2P_ERR_TIMEOUT);
    CHECK_EQ(g_rc[3], LP2P_OK);
    CHECK_EQ(g_rc[4], LP2P_OK);
    CHECK_EQ(g_rc[5], 1);
    CHECK_EQ(g_s->nheap, 0);
    /* outside any task: the call pumps the loop */
    int64_t d = lp2p_deadline_in(20);
    CHECK_EQ(lp2p__sleep_until(g_s, d), LP2P_OK);
    CHECK(lp2p_now() >= d);
    lp2p__waitq q = {0};
    CHECK_EQ(lp2p__waitq_wait(g_s, &q, LP2P_NOWAIT), LP2P_ERR_TIMEOUT);
    CHECK_EQ(lp2p__waitq_wait(g_s, &q, lp2p_deadline_in(15)), LP2P_ERR_TIMEOUT);
    CHECK(q.head == NULL);
    lp2p__sched_free(g_s);
}

/* ---- wait queues ---- */
static int g_order[16], g_on;
static void t_qwaiter(void *arg) {
    int rc = lp2p__waitq_wait(g_s, &g_q, lp2p_deadline_in(5000));
    if (rc == LP2P_OK) g_order[g_on++] = (int)(intptr_t)arg;
}
static void test_waitq(void) {
    TEST("waitq: wake_one FIFO, wake_all");
    g_s = t_new(0, 0);
    memset(&g_q, 0, sizeof g_q);
    g_on = 0;
    for (int i = 0; i < 5; i++) lp2p__spawn(g_s, t_qwaiter, (void *)(intptr_t)i);
    lp2p__sched_poll(g_s, 0); /* all parked */
    CHECK_EQ(g_on, 0);
    lp2p__waitq_wake_one(g_s, &g_q);
    lp2p__sched_poll(g_s, 0);
    CHECK_EQ(g_on, 1);
    CHECK_EQ(g_order[0], 0);
    lp2p__waitq_wake_one(g_s, &g_q);
    lp2p__sched_poll(g_s, 0);
    CHECK_EQ(g_on, 2);
    CHECK_EQ(g_order[1], 1);
    lp2p__waitq_wake_all(g_s, &g_q);
    CHECK(g_q.head == NULL);
    lp2p__sched_poll(g_s, 0);
    CHECK_EQ(g_on, 5);
    CHECK(g_order[2] == 2 && g_order[3] == 3 && g_order[4] == 4);
    lp2p__waitq_wake_all(g_s, &g_q); /* empty: nothing */
    CHECK_EQ(g_s->live, 0);
    lp2p__sched_free(g_s);
}

/* ---- cancellation ---- */
static int g_sv[2];
static void t_cancel_q(void *a) {
    (void)a;
    lp2p__waitq q = {0};
    g_rc[0] = lp2p__waitq_wait(g_s, &q, LP2P_FOREVER);
    g_rc[1] = lp2p__sleep_until(g_s, lp2p_deadline_in(10));
    g_rc[2] = lp2p__yield(g_s);
    g_rc[3] = lp2p__waitq_wait(g_s, &q, lp2p_deadline_in(10));
    g_rc[4] = lp2p__task_canceled();
}
static void t_cancel_fd(void *a) {
    (void)a;
    g_rc[5] = lp2p__wait_fd(g_s, g_sv[0], LP2P__IN, lp2p_deadline_in(5000));
}
static void t_cancel_sleep(void *a) {
    (void)a;
    g_rc[6] = lp2p__sleep_until(g_s, LP2P_FOREVER);
}
static void t_cancel_early(void *a) {
    (void)a;
    g_rc[7] = lp2p__task_canceled();
    g_rc[8] = lp2p__sleep_until(g_s, lp2p_deadline_in(10));
}
static void test_cancel(void) {
    TEST("cancel: parked on waitq / fd / sleep, before first run, later waits");
    g_s = t_new(0, 0);
    memset(g_rc, 0x7f, sizeof g_rc);
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, g_sv), 0);
    fcntl(g_sv[0], F_SETFL, O_NONBLOCK);
    lp2p_task a = lp2p__spawn(g_s, t_cancel_q, NULL);
    lp2p_task b = lp2p__spawn(g_s, t_cancel_fd, NULL);
    lp2p_task c = lp2p__spawn(g_s, t_cancel_sleep, NULL);
    lp2p__sched_poll(g_s, 0);
    CHECK(a.id && b.id && c.id);
    CHECK_EQ(lp2p__task_cancel(g_s, a), LP2P_OK);
    CHECK_EQ(lp2p__task_cancel(g_s, b), LP2P_OK);
    CHECK_EQ(lp2p__task_cancel(g_s, c), LP2P_OK);
    lp2p_task d = lp2p__spawn(g_s, t_cancel_early, NULL);
    CHECK_EQ(lp2p__task_cancel(g_s, d), LP2P_OK);
    t_drain(g_s);
    CHECK_EQ(g_rc[0], LP2P_ERR_CANCELED);
    CHECK_EQ(g_rc[1], LP2P_ERR_CANCELED);
    CHECK_EQ(g_rc[2], LP2P_ERR_CANCELED);
    CHECK_EQ(g_rc[3], LP2P_ERR_CANCELED);
    CHECK_EQ(g_rc[4], 1);
    CHECK_EQ(g_rc[5], LP2P_ERR_CANCELED);
    CHECK_EQ(g_rc[6], LP2P_ERR_CANCELED);
    CHECK_EQ(g_rc[7], 1);
    CHECK_EQ(g_rc[8], LP2P_ERR_CANCELED);
    CHECK_EQ(lp2p__task_cancel(g_s, a), LP2P_ERR_NOTFOUND);
    CHECK_EQ(g_s->nheap, 0);
    CHECK(g_s->fds[g_sv[0]].rd == NULL);
    lp2p__fd_del(g_s, g_sv[0]);
    close(g_sv[0]), close(g_sv[1]);
    lp2p__sched_free(g_s);
}

/* ---- join and stale handles ---- */
static lp2p_task g_target;
static void t_short(void *a) {
    (void)a;
    lp2p__sleep_until(g_s, lp2p_deadline_in(20));
    g_rc[0] = 1;
}
static void t_joiner(void *a) {
    (void)a;
    g_rc[1] = lp2p__task_join(g_s, g_target, lp2p_deadline_in(5000));
    g_rc[2] = g_rc[0]; /* target must have finished */
    g_rc[3] = lp2p__task_join(g_s, lp2p__task_self(), lp2p_deadline_in(10));
}
static void t_forever(void *a) {
    (void)a;
    lp2p__sleep_until(g_s, LP2P_FOREVER);
}
static void test_join(void) {
    TEST("join inside and outside tasks, timeout, self; stale and bogus handles");
    g_s = t_new(0, 0);
    memset(g_rc, 0, sizeof g_rc);
    g_target = lp2p__spawn(g_s, t_short, NULL);
    lp2p_task j = lp2p__spawn(g_s, t_joiner, NULL);
    CHECK_EQ(lp2p__task_join(g_s, j, lp2p_deadline_in(5000)), LP2P_OK); /* from main(): pumps */
    CHECK_EQ(g_rc[1], LP2P_OK);
    CHECK_EQ(g_rc[2], 1);
    CHECK_EQ(g_rc[3], LP2P_ERR_INVALID);
    CHECK_EQ(lp2p__task_join(g_s, g_target, LP2P_NOWAIT), LP2P_OK); /* already ended */
    lp2p_task f = lp2p__spawn(g_s, t_forever, NULL);
    CHECK_EQ(lp2p__task_join(g_s, f, lp2p_deadline_in(20)), LP2P_ERR_TIMEOUT);
    CHECK_EQ(lp2p__task_join(g_s, f, LP2P_NOWAIT), LP2P_ERR_TIMEOUT);
    CHECK_EQ(lp2p__task_cancel(g_s, f), LP2P_OK);
    CHECK_EQ(lp2p__task_join(g_s, f, lp2p_deadline_in(5000)), LP2P_OK);
    lp2p_task none = {0}, bogus = {0xfffff}, stale = g_target;
    CHECK_EQ(lp2p__task_join(g_s, none, LP2P_NOWAIT), LP2P_ERR_NOTFOUND);
    CHECK_EQ(lp2p__task_join(g_s, bogus, LP2P_NOWAIT), LP2P_ERR_NOTFOUND);
    CHECK(!lp2p__task_alive(g_s, none));
    CHECK(!lp2p__task_alive(g_s, bogus));
    CHECK_EQ(lp2p__task_cancel(g_s, bogus), LP2P_ERR_NOTFOUND);
    /* reuse every slot: the stale handle must stay dead */
    lp2p_task fresh[8];
    for (int i = 0; i < 8; i++) fresh[i] = lp2p__spawn(g_s, t_forever, NULL);
    CHECK(!lp2p__task_alive(g_s, stale));
    CHECK_EQ(lp2p__task_cancel(g_s, stale), LP2P_ERR_NOTFOUND);
    for (int i = 0; i < 8; i++) {
        CHECK(fresh[i].id != stale.id);
        CHECK(lp2p__task_alive(g_s, fresh[i]));
        lp2p__task_cancel(g_s, fresh[i]);
    }
    t_drain(g_s);
    CHECK_EQ(g_s->live, 0);
    lp2p__sched_free(g_s);
}

/* ---- fd waits ---- */
static char g_buf[64];
static void t_fd_reader(void *a) {
    (void)a;
    int64_t end = lp2p_deadline_in(5000);
    for (;;) {
        ssize_t n = read(g_sv[0], g_buf, sizeof g_buf - 1);
        if (n > 0) {
            g_buf[n] = 0;
            g_rc[0] = LP2P_OK;
            return;
        }
        if (n < 0 && errno != EAGAIN) break;
        int rc = lp2p__wait_fd(g_s, g_sv[0], LP2P__IN, end);
        g_rc[1]++;
        if (rc) {
            g_rc[0] = rc;
            return;
        }
    }
    g_rc[0] = LP2P_ERR_IO;
}
static void t_fd_writer(void *a) {
    lp2p__sleep_until(g_s, lp2p_deadline_in(20));
    g_rc[2] = (int)write(g_sv[1], (const char *)a, strlen((const char *)a));
}
static void t_fd_second(void *a) {
    (void)a;
    g_rc[3] = lp2p__wait_fd(g_s, g_sv[0], LP2P__IN, lp2p_deadline_in(5000));
}
static void test_fd(void) {
    TEST("wait_fd: socketpair readiness, main() wait, timeout, busy, fd_del -> CLOSED");
    g_s = t_new(0, 0);
    memset(g_rc, 0, sizeof g_rc);
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, g_sv), 0);
    fcntl(g_sv[0], F_SETFL, O_NONBLOCK);
    fcntl(g_sv[1], F_SETFL, O_NONBLOCK);
    CHECK_EQ(lp2p__fd_add(g_s, g_sv[0]), LP2P_OK);
    CHECK_EQ(lp2p__fd_add(g_s, g_sv[0]), LP2P_OK); /* twice is harmless */
    lp2p_task r = lp2p__spawn(g_s, t_fd_reader, NULL);
    lp2p__spawn(g_s, t_fd_writer, (void *)"hello");
    CHECK_EQ(lp2p__task_join(g_s, r, lp2p_deadline_in(5000)), LP2P_OK);
    CHECK_EQ(g_rc[0], LP2P_OK);
    CHECK(g_rc[1] >= 1);
    CHECK_STR(g_buf, "hello");
    CHECK_EQ(g_rc[2], 5);
    /* main() waits for readability while a task writes */
    lp2p__spawn(g_s, t_fd_writer, (void *)"x");
    int rc = LP2P_OK;
    while (rc == LP2P_OK && read(g_sv[0], g_buf, sizeof g_buf) < 0)
        rc = lp2p__wait_fd(g_s, g_sv[0], LP2P__IN, lp2p_deadline_in(5000));
    CHECK_EQ(rc, LP2P_OK);
    CHECK_EQ(g_buf[0], 'x');
    /* nothing arrives: timeout, from main and NOWAIT */
    while (read(g_sv[0], g_buf, sizeof g_buf) > 0) {
    }
    rc = lp2p__wait_fd(g_s, g_sv[0], LP2P__IN, lp2p_deadline_in(20));
    if (rc == LP2P_OK) rc = lp2p__wait_fd(g_s, g_sv[0], LP2P__IN, lp2p_deadline_in(20)); /* stale edge */
    CHECK_EQ(rc, LP2P_ERR_TIMEOUT);
    CHECK_EQ(lp2p__wait_fd(g_s, g_sv[0], LP2P__IN, LP2P_NOWAIT), LP2P_ERR_TIMEOUT);
    /* writable at once */
    CHECK_EQ(lp2p__wait_fd(g_s, g_sv[1], LP2P__OUT, lp2p_deadline_in(5000)), LP2P_OK);
    CHECK_EQ(lp2p__wait_fd(g_s, g_sv[0], 3, LP2P_NOWAIT), LP2P_ERR_INVALID);
    CHECK_EQ(lp2p__wait_fd(g_s, -1, LP2P__IN, LP2P_NOWAIT), LP2P_ERR_INVALID);
    /* one reader at a time; fd_del wakes the reader with CLOSED */
    g_rc[0] = 99;
    lp2p__spawn(g_s, t_fd_reader, NULL);
    lp2p__spawn(g_s, t_fd_second, NULL);
    lp2p__sched_poll(g_s, 0);
    CHECK_EQ(g_rc[3], LP2P_ERR_BUSY);
    CHECK_EQ(g_rc[0], 99);
    lp2p__fd_del(g_s, g_sv[0]);
    t_drain(g_s);
    CHECK_EQ(g_rc[0], LP2P_ERR_CLOSED);
    lp2p__fd_del(g_s, g_sv[1]);
    close(g_sv[0]), close(g_sv[1]);
    lp2p__sched_free(g_s);
}

/* ---- the task resumed by I/O runs within the same poll call ---- */
static void test_poll_io(void) {
    TEST("sched_poll blocks for I/O and runs the woken task in the same call");
    g_s = t_new(0, 0);
    memset(g_rc, 0, sizeof g_rc);
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, g_sv), 0);
    fcntl(g_sv[0], F_SETFL, O_NONBLOCK);
    lp2p__spawn(g_s, t_fd_reader, NULL);
    CHECK_EQ(lp2p__sched_poll(g_s, 0), 1); /* parks on the fd */
    CHECK_EQ(lp2p__sched_poll(g_s, 0), 0);
    CHECK_EQ(write(g_sv[1], "io", 2), 2);
    int n = 0;
    for (int i = 0; i < 10 && n == 0; i++) n = lp2p__sched_poll(g_s, 1000);
    CHECK_EQ(n, 1);
    CHECK_STR(g_buf, "io");
    lp2p__fd_del(g_s, g_sv[0]);
    close(g_sv[0]), close(g_sv[1]);
    lp2p__sched_free(g_s);
}

/* ---- posts and stop from other threads ---- */
static int g_posted;
static void t_inc(void *a) {
    (void)a;
    __atomic_add_fetch(&g_posted, 1, __ATOMIC_RELAXED);
}
static void *t_poster(void *a) {
    lp2p__sched *s = (lp2p__sched *)a;
    for (int i = 0; i < 100; i++) lp2p__sched_post(s, t_inc, NULL);
    return NULL;
}
static int g_run_rc;
static void *t_runner(void *a) {
    g_run_rc = lp2p__sched_run((lp2p__sched *)a);
    return NULL;
}
static void t_stopper(void *a) { lp2p__sched_stop((lp2p__sched *)a); }
static void test_threads(void) {
    TEST("post from another thread wakes a blocked loop; stop ends sched_run");
    g_s = t_new(0, 0);
    g_posted = 0;
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, t_poster, g_s), 0);
    t_run_until(g_s, &g_posted, 100); /* blocks in the poller between posts */
    pthread_join(th, NULL);
    CHECK_EQ(g_posted, 100);
    /* stop before run: run returns at once (the stop is consumed) */
    lp2p__sched_stop(g_s);
    CHECK_EQ(lp2p__sched_run(g_s), LP2P_OK);
    /* a stop from a task ends run */
    lp2p__spawn(g_s, t_stopper, g_s);
    CHECK_EQ(lp2p__sched_run(g_s), LP2P_OK);
    lp2p__sched_free(g_s);

    /* the loop on its own thread; main posts and stops */
    lp2p__sched *s = t_new(0, 0);
    g_posted = 0;
    g_run_rc = 1;
    CHECK_EQ(pthread_create(&th, NULL, t_runner, s), 0);
    for (int i = 0; i < 100; i++) CHECK_EQ(lp2p__sched_post(s, t_inc, NULL), LP2P_OK);
    struct timespec ms = {0, 1000000};
    for (int i = 0; i < 5000 && __atomic_load_n(&g_posted, __ATOMIC_RELAXED) < 100; i++) nanosleep(&ms, NULL);
    CHECK_EQ(__atomic_load_n(&g_posted, __ATOMIC_RELAXED), 100);
    lp2p__sched_stop(s);
    pthread_join(th, NULL);
    CHECK_EQ(g_run_rc, LP2P_OK);
    CHECK_EQ(lp2p__sched_post(s, NULL, NULL), LP2P_ERR_INVALID);
    lp2p__sched_free(s);
}

/* ---- main() waits on one scheduler while another's task does the work ---- */
static lp2p__sched *g_a, *g_b;
static void t_b_waker(void *a) {
    (void)a;
    lp2p__sleep_until(g_b, lp2p_deadline_in(30));
    lp2p__waitq_wake_one(g_b, &g_q);
}
static void t_b_writer(void *a) {
    (void)a;
    lp2p__sleep_until(g_b, lp2p_deadline_in(20));
    g_rc[5] = (int)write(g_sv[1], "ab", 2);
}
static void t_a_reader(void *a) {
    (void)a;
    int64_t end = lp2p_deadline_in(5000);
    while (read(g_sv[0], g_buf, 2) != 2)
        if (lp2p__wait_fd(g_a, g_sv[0], LP2P__IN, end) != LP2P_OK) return;
    g_rc[6] = 1;
    lp2p__waitq_wake_all(g_a, &g_q);
}
static void test_pump_two(void) {
    TEST("outside-task waits pump every scheduler of the thread");
    g_a = t_new(0, 0);
    g_b = t_new(0, 0);
    memset(&g_q, 0, sizeof g_q);
    memset(g_rc, 0, sizeof g_rc);
    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    int64_t t0 = lp2p_now();
    lp2p__spawn(g_b, t_b_waker, NULL);
    CHECK_EQ(lp2p__waitq_wait(g_a, &g_q, lp2p_deadline_in(5000)), LP2P_OK);
    /* A's task reads what B's task writes; main waits on A's queue */
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, g_sv), 0);
    fcntl(g_sv[0], F_SETFL, O_NONBLOCK);
    lp2p__spawn(g_a, t_a_reader, NULL);
    lp2p__spawn(g_b, t_b_writer, NULL);
    int rc = LP2P_OK;
    while (!g_rc[6] && rc == LP2P_OK) rc = lp2p__waitq_wait(g_b, &g_q, lp2p_deadline_in(5000));
    CHECK_EQ(rc, LP2P_OK);
    CHECK_EQ(g_rc[5], 2);
    CHECK_EQ(g_rc[6], 1);
    CHECK(g_q.head == NULL);
    getrusage(RUSAGE_SELF, &r1);
    long cpu = (r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) * 1000 + (r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) / 1000 +
               (r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) * 1000 + (r1.ru_stime.tv_usec - r0.ru_stime.tv_usec) / 1000;
    fprintf(stderr, "   pump: %lld ms wall, %ld ms cpu (informational)\n", (long long)(lp2p_now() - t0), cpu);
    lp2p__fd_del(g_a, g_sv[0]);
    close(g_sv[0]), close(g_sv[1]);
    lp2p__sched_free(g_b);
    lp2p__sched_free(g_a);
}

/* ---- blocking calls where they are not allowed ---- */
static lp2p__sched *g_other;
static int g_lrc[4], g_lcalls;
static void t_blocking_logger(void *u, lp2p_log_level lv, int item, const char *msg, const char *f, int l) {
    (void)u, (void)lv, (void)item, (void)msg, (void)f, (void)l;
    lp2p__waitq q = {0};
    g_lrc[0] = lp2p__waitq_wait(g_other, &q, lp2p_deadline_in(1000));
    g_lrc[1] = lp2p__sleep_until(g_other, lp2p_deadline_in(1000));
    g_lrc[2] = lp2p__sched_poll(g_other, 0);
    g_lcalls++;
}
static void t_logs_in_task(void *a) {
    lp2p__ctx *c = (lp2p__ctx *)a;
    LP2P__WARN(c, LP2P_ERR_INVALID, "logged from a task");
    g_rc[0] = lp2p__sched_poll(g_s, 0);
    g_rc[1] = lp2p__sched_run(g_s);
}
static void t_hold(void *a) {
    (void)a;
    lp2p__sleep_until(g_s, lp2p_deadline_in(5000));
}
static void test_wouldblock(void) {
    TEST("WOULDBLOCK: waits inside the logger and while a loop is being pumped");
    lp2p__ctx lc;
    lp2p_logger lg = {t_blocking_logger, NULL};
    lp2p__ctx_init(&lc, NULL, &lg, LP2P_LOG_DEBUG);
    lp2p__sched_cfg cfg = {0, 1};
    CHECK_EQ(lp2p__sched_new(&lc, &cfg, &g_s), LP2P_OK);
    g_other = g_s;
    memset(g_lrc, 0, sizeof g_lrc);
    g_lcalls = 0;
    /* inside a task, inside the logger: the logger's waits fail */
    lp2p_task t = lp2p__spawn(g_s, t_logs_in_task, &lc);
    CHECK_EQ(lp2p__task_join(g_s, t, lp2p_deadline_in(5000)), LP2P_OK);
    CHECK_EQ(g_lcalls, 1);
    CHECK_EQ(g_lrc[0], LP2P_ERR_WOULDBLOCK);
    CHECK_EQ(g_lrc[1], LP2P_ERR_WOULDBLOCK);
    CHECK_EQ(g_lrc[2], LP2P_ERR_WOULDBLOCK);
    CHECK_EQ(g_rc[0], LP2P_ERR_WOULDBLOCK); /* a task may not drive the loop */
    CHECK_EQ(g_rc[1], LP2P_ERR_WOULDBLOCK);
    /* non-task code inside the loop (a post that cannot start: max_tasks = 1 is taken) logs;
     * the logger then waits on another scheduler, with its own ctx: still WOULDBLOCK */
    g_other = t_new(0, 0);
    memset(g_lrc, 0, sizeof g_lrc);
    lp2p__spawn(g_s, t_hold, NULL);
    lp2p__sched_poll(g_s, 0);
    lp2p__sched_post(g_s, t_inc, NULL);
    for (int i = 0; i < 100 && g_lcalls < 2; i++) lp2p__sched_poll(g_s, 50);
    CHECK(g_lcalls >= 2); /* spawn's LIMIT warning, then the dropped-post error */
    CHECK_EQ(g_lrc[0], LP2P_ERR_WOULDBLOCK);
    CHECK_EQ(g_lrc[1], LP2P_ERR_WOULDBLOCK);
    CHECK_EQ(g_lrc[2], LP2P_ERR_WOULDBLOCK);
    lp2p__sched_free(g_other);
    lp2p__sched_free(g_s); /* cancels t_hold */
}

/* ---- mutex ---- */
static lp2p__mutex g_mu;
static int g_inside, g_max_inside, g_done;
static void t_locker(void *a) {
    (void)a;
    for (int i = 0; i < 5; i++) {
        if (lp2p__mutex_lock(g_s, &g_mu, lp2p_deadline_in(5000)) != LP2P_OK) return;
        if (++g_inside > g_max_inside) g_max_inside = g_inside;
        lp2p__yield(g_s);
        lp2p__sleep_until(g_s, lp2p_deadline_in(1));
        g_inside--;
        lp2p__mutex_unlock(g_s, &g_mu);
    }
    g_done++;
}
static void t_lock_waiter(void *a) {
    (void)a;
    g_rc[0] = lp2p__mutex_lock(g_s, &g_mu, lp2p_deadline_in(5000));
}
static void t_lock_hold(void *a) {
    (void)a;
    lp2p__mutex_lock(g_s, &g_mu, LP2P_NOWAIT);
    lp2p__sleep_until(g_s, lp2p_deadline_in(20));
    lp2p__mutex_unlock(g_s, &g_mu);
}
static void test_mutex(void) {
    TEST("mutex: exclusion, timeouts, cancel of a waiter, main() lock");
    g_s = t_new(0, 0);
    memset(&g_mu, 0, sizeof g_mu);
    g_inside = g_max_inside = g_done = 0;
    for (int i = 0; i < 4; i++) lp2p__spawn(g_s, t_locker, NULL);
    t_run_until(g_s, &g_done, 4);
    CHECK_EQ(g_done, 4);
    CHECK_EQ(g_max_inside, 1);
    CHECK_EQ(g_mu.locked, 0);
    CHECK_EQ(lp2p__mutex_lock(g_s, &g_mu, LP2P_NOWAIT), LP2P_OK);
    CHECK_EQ(lp2p__mutex_lock(g_s, &g_mu, LP2P_NOWAIT), LP2P_ERR_TIMEOUT);
    CHECK_EQ(lp2p__mutex_lock(g_s, &g_mu, lp2p_deadline_in(10)), LP2P_ERR_TIMEOUT);
    g_rc[0] = 99;
    lp2p_task w = lp2p__spawn(g_s, t_lock_waiter, NULL);
    lp2p__sched_poll(g_s, 0);
    CHECK_EQ(g_rc[0], 99);
    lp2p__task_cancel(g_s, w);
    lp2p__sched_poll(g_s, 0);
    CHECK_EQ(g_rc[0], LP2P_ERR_CANCELED);
    CHECK(g_mu.q.head == NULL);
    lp2p__mutex_unlock(g_s, &g_mu);
    CHECK_EQ(g_mu.locked, 0);
    lp2p__spawn(g_s, t_lock_hold, NULL);
    lp2p__sched_poll(g_s, 0);
    CHECK_EQ(g_mu.locked, 1);
    CHECK_EQ(lp2p__mutex_lock(g_s, &g_mu, lp2p_deadline_in(5000)), LP2P_OK); /* pumps */
    CHECK_EQ(g_mu.locked, 1);
    lp2p__mutex_unlock(g_s, &g_mu);
    t_drain(g_s);
    lp2p__sched_free(g_s);
}

/* ---- free with live tasks; limits; nested spawn ---- */
static int g_exit_rc[4], g_exits;
static void t_free_sleep(void *a) {
    g_exit_rc[(intptr_t)a] = lp2p__sleep_until(g_s, LP2P_FOREVER);
    g_exit_rc[(intptr_t)a] = lp2p__sleep_until(g_s, lp2p_deadline_in(100)) == LP2P_ERR_CANCELED
                                 ? g_exit_rc[(intptr_t)a] : 12345; /* cleanup waits fail too */
    g_exits++;
}
static void t_free_q(void *a) {
    lp2p__waitq q = {0};
    g_exit_rc[(intptr_t)a] = lp2p__waitq_wait(g_s, &q, LP2P_FOREVER);
    g_exits++;
}
static void t_stubborn(void *a) {
    (void)a;
    for (;;) lp2p__yield(g_s); /* ignores cancellation */
}
static void t_child(void *a) { (*(int *)a)++; }
static void t_parent(void *a) {
    for (int i = 0; i < 3; i++) lp2p__spawn(g_s, t_child, a);
}
static void test_free_limits(void) {
    TEST("sched_free cancels parked tasks, gives up on stubborn ones; max_tasks; nested spawn; no leaks");
    long before = t_bytes;
    g_s = t_new(0, 4);
    g_exits = 0;
    lp2p__spawn(g_s, t_free_sleep, (void *)0);
    lp2p__spawn(g_s, t_free_q, (void *)1);
    lp2p__spawn(g_s, t_free_sleep, (void *)2);
    lp2p__spawn(g_s, t_stubborn, NULL);
    memset(t_logs, 0, sizeof t_logs);
    CHECK_EQ(lp2p__spawn(g_s, t_free_sleep, (void *)3).id, 0); /* 5th of max 4 */
    CHECK_EQ(t_logs[-LP2P_ERR_LIMIT], 1);
    lp2p__sched_poll(g_s, 0);
    lp2p__sched_free(g_s);
    CHECK_EQ(g_exits, 3);
    CHECK_EQ(g_exit_rc[0], LP2P_ERR_CANCELED);
    CHECK_EQ(g_exit_rc[1], LP2P_ERR_CANCELED);
    CHECK_EQ(g_exit_rc[2], LP2P_ERR_CANCELED);
    CHECK_EQ(t_logs[-LP2P_ERR_CANCELED], 1); /* "abandoning" the stubborn task */
    CHECK_EQ(t_bytes, before);
    g_s = t_new(0, 0);
    int n = 0;
    lp2p__spawn(g_s, t_parent, &n);
    t_drain(g_s);
    CHECK_EQ(n, 3);
    lp2p__sched_free(g_s);
    CHECK_EQ(t_bytes, before);
}

/* ---- 10,000 tasks ---- */
#define T_MANY 10000
static int g_woke;
static int64_t g_base;
static void t_many_sleep(void *a) {
    if (lp2p__sleep_until(g_s, g_base + (intptr_t)a % 50) == LP2P_OK) g_woke++;
}
typedef struct t_pair {
    lp2p__waitq q[2];
    int turn, hits;
} t_pair;
static t_pair *g_pairs;
static void t_pinger(void *a) {
    intptr_t i = (intptr_t)a;
    t_pair *p = &g_pairs[i / 2];
    int me = (int)(i & 1);
    int64_t end = lp2p_deadline_in(20000);
    for (int r = 0; r < 10; r++) {
        while (p->turn != me)
            if (lp2p__waitq_wait(g_s, &p->q[me], end) != LP2P_OK) return;
        p->hits++;
        p->turn = !me;
        lp2p__waitq_wake_one(g_s, &p->q[!me]);
    }
}
static void test_many(void) {
    TEST("10,000 sleeping tasks; 10,000 tasks ping-ponging through wait queues");
    g_s = t_new(0, 0);
    g_woke = 0;
    g_base = lp2p_deadline_in(50);
    int ok = 0;
    for (intptr_t i = 0; i < T_MANY; i++) ok += lp2p__spawn(g_s, t_many_sleep, (void *)i).id != 0;
    CHECK_EQ(ok, T_MANY);
    CHECK_EQ(g_s->live, T_MANY);
    int64_t end = lp2p_deadline_in(20000);
    while (g_s->live > 0 && lp2p_now() < end) lp2p__sched_poll(g_s, 100);
    CHECK_EQ(g_woke, T_MANY);
    CHECK_EQ(g_s->npool, LP2P__STACK_POOL); /* stacks went back to the pool (the rest unmapped) */
    g_pairs = (t_pair *)calloc(T_MANY / 2, sizeof *g_pairs);
    ok = 0;
    for (intptr_t i = 0; i < T_MANY; i++) ok += lp2p__spawn(g_s, t_pinger, (void *)i).id != 0;
    CHECK_EQ(ok, T_MANY);
    while (g_s->live > 0 && lp2p_now() < end) lp2p__sched_poll(g_s, 100);
    long hits = 0;
    for (int i = 0; i < T_MANY / 2; i++) hits += g_pairs[i].hits;
    CHECK_EQ(hits, T_MANY * 10);
    free(g_pairs);
    lp2p__sched_free(g_s);
}

/* ---- stack overflow hits the guard page ---- */
static int t_recurse(int n) {
    volatile char pad[512];
    pad[0] = (char)n;
    pad[511] = (char)n;
    return n <= 0 ? pad[0] : t_recurse(n - 1) + pad[511];
}
static void t_overflow(void *a) {
    *(int *)a = t_recurse(100000); /* ~50 MB of frames in a 64 KiB stack */
}
static void test_guard(void) {
    TEST("stack overflow dies on the guard page (SIGSEGV in a forked child)");
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        alarm(10);
        int r = 0;
        g_s = t_new(0, 0);
        lp2p__spawn(g_s, t_overflow, &r);
        lp2p__sched_poll(g_s, 0);
        _exit(0); /* not reached */
    }
    CHECK(pid > 0);
    int st = 0;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
#if defined(__SANITIZE_ADDRESS__)
    /* ASan catches the fault on the guard page itself, reports a stack overflow and exits 1 */
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) != 0);
#else
    CHECK(WIFSIGNALED(st));
    CHECK_EQ(WIFSIGNALED(st) ? WTERMSIG(st) : 0, SIGSEGV);
#endif
}

/* ---- float state survives switches ---- */
static void t_float(void *a) {
    double x = 1.0;
    for (int i = 0; i < 10; i++) {
        x = x * 1.5 + 0.25;
        lp2p__yield(g_s);
    }
    *(double *)a = x;
}
static void test_float(void) {
    TEST("floating point values survive context switches");
    g_s = t_new(0, 0);
    double a = 0, b = 0, want = 1.0;
    for (int i = 0; i < 10; i++) want = want * 1.5 + 0.25;
    lp2p__spawn(g_s, t_float, &a);
    lp2p__spawn(g_s, t_float, &b);
    t_drain(g_s);
    CHECK(a == want && b == want);
    lp2p__sched_free(g_s);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    t_ctx_init(&t_ctx);
    long before = t_bytes;
    test_basic();
    test_deadlines();
    test_waitq();
    test_cancel();
    test_join();
    test_fd();
    test_poll_io();
    test_threads();
    test_pump_two();
    test_wouldblock();
    test_mutex();
    test_free_limits();
    test_float();
    test_many();
    test_guard();
    TEST("no memory left allocated");
    CHECK_EQ(t_bytes, before);
    TEST_END();
}
