/* bench/lp2p_bench.c - libp2p.h's side of the benchmarks (bench/run drives it).
 *
 * Speaks the command-line contract of the reference peers in tests/interop (README.md there),
 * so bench/run treats all four implementations alike:
 *   lp2p-bench listen [--seed <64 hex>] [--timeout s] [--stdin-exit]
 *   lp2p-bench dial <multiaddr/p2p/id> <action> [args] [--timeout s]
 * JSON lines on stdout ("event" first), logs on stderr.
 * Served protocols: /perf/1.0.0 (the library's lp2p_perf_serve, src/perf.c) and /echo/1.0.0
 * (echo until EOF).
 * Dial actions (all measured times in ms, floats):
 *   perf <up> <down>                 one perf stream            -> {"event":"perf",...}
 *   perfn <streams> <up> <down>      N concurrent perf streams (up/down bytes each) on one
 *                                    connection                 -> {"event":"perfn",...}
 *   rtt <iters>                      per iteration: a NEW connection, open /echo/1.0.0, write 1
 *                                    byte, read it back (time includes the dial)
 *                                                               -> {"event":"rtt","ms":[...]}
 *   handshakes <seconds> <parallel>  complete connection upgrades (TCP+multistream+Noise+yamux)
 *                                    in a loop, `parallel` at a time, closing each at once
 *                                                               -> {"event":"handshakes",...}
 *   conns <n> <hold-seconds>         open n idle connections (32 dials in flight), report, then
 *                                    hold them                  -> {"event":"conns",...}
 *   streams <n> <hold-seconds>       open n /echo/1.0.0 streams on one connection, echo 1 byte
 *                                    on each (so the remote handler runs), then hold them idle
 *                                                               -> {"event":"streams",...}
 *   lp2p-bench rss [n]              self-contained: our listener (a plain host) in a child process,
 *                                    n dialing hosts (each its own identity) in this one; the
 *                                    listener's RSS growth per idle connection after 1 s and 4 s
 *                                                               -> {"listener":"libp2p.h",...}
 * BENCH_ALLOC_STATS=1 counts live allocations by size class; SIGUSR1 prints them (stderr).
 * BENCH_WINDOW=<bytes> sets the initial yamux receive window (experiments; default 256 KiB).
 * This is the one benchmark program of libp2p.h (bench/run drives it; `rss` is the quick check
 * of idle-connection memory). The perf client and server are the library's lp2p_perf and
 * lp2p_perf_serve. handshakes and conns call the
 * swarm's dial function directly (lp2p__dial_addrs: one host, many connections to one peer;
 * the public API keeps one connection per peer). */
#define LIBP2P_IMPLEMENTATION
#include "libp2p.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ECHO "/echo/1.0.0"

static lp2p_host *host;
static const char *target;
static double timeout_s = 120;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void fail(const char *what, int rc) {
    printf("{\"event\":\"error\",\"message\":\"%s: %s\"}\n", what, lp2p_strerror(rc));
    fflush(stdout);
    fprintf(stderr, "lp2p-bench: %s: %s\n", what, lp2p_strerror(rc));
    exit(1);
}

static int64_t dl(void) { return lp2p_deadline_in((int64_t)(timeout_s * 1000)); }

/* ---- servers ----------------------------------------------------------------------------- */
static void serve_echo(lp2p_stream *s, void *user) {
    (void)user;
    uint8_t buf[4096]; /* the README example's size: the idle-stream figure includes it */
    ptrdiff_t n;
    while ((n = lp2p_stream_read(s, buf, sizeof buf, dl())) > 0)
        if (lp2p_stream_write(s, buf, (size_t)n, dl()) != LP2P_OK) break;
}

static void drain_events(void *arg) { /* frame-loop events nobody reads: keep the queue empty */
    (void)arg;
    lp2p_event ev;
    for (;;) {
        while (lp2p_host_next_event(host, &ev)) {}
        if (lp2p_sleep(host, lp2p_deadline_in(200)) != LP2P_OK) return;
    }
}

static void *stdin_watch(void *arg) {
    (void)arg;
    char b[256];
    while (read(0, b, sizeof b) > 0) {}
    lp2p_host_stop(host);
    return NULL;
}

static void stop_after(void *arg) {
    (void)arg;
    if (lp2p_sleep(host, lp2p_deadline_in((int64_t)(timeout_s * 1000))) == LP2P_OK) lp2p_host_stop(host);
}

/* ---- dial actions ------------------------------------------------------------------------ */
typedef struct perf_job {
    uint64_t up, down, got;
    int rc;
} perf_job;

static int perf_once(perf_job *j) {
    lp2p_perf_options opt = {0};
    lp2p_perf_result res;
    opt.timeout_ms = (int)(timeout_s * 1000);
    int rc = lp2p_perf(host, target, j->up, j->down, &opt, &res, dl());
    if (rc == LP2P_OK) j->got = res.download_bytes;
    return rc;
}

static void perf_task(void *arg) {
    perf_job *j = (perf_job *)arg;
    j->rc = perf_once(j);
}

static void act_perf(int streams, uint64_t up, uint64_t down) {
    perf_job *jobs = calloc((size_t)streams, sizeof *jobs);
    lp2p_task *tasks = calloc((size_t)streams, sizeof *tasks);
    double t0 = now_ms();
    if (streams == 1) {
        jobs[0].up = up, jobs[0].down = down;
        if ((jobs[0].rc = perf_once(&jobs[0]))) fail("perf", jobs[0].rc);
        printf("{\"event\":\"perf\",\"uploadBytes\":%llu,\"downloadBytes\":%llu,\"ms\":%.3f}\n",
               (unsigned long long)up, (unsigned long long)jobs[0].got, now_ms() - t0);
        return;
    }
    for (int i = 0; i < streams; i++) {
        jobs[i].up = up, jobs[i].down = down;
        tasks[i] = lp2p_go(host, perf_task, &jobs[i]);
        if (!tasks[i].id) fail("perfn: spawn", LP2P_ERR_LIMIT);
    }
    for (int i = 0; i < streams; i++) lp2p_task_join(host, tasks[i], LP2P_FOREVER);
    double ms = now_ms() - t0;
    for (int i = 0; i < streams; i++)
        if (jobs[i].rc) fail("perfn", jobs[i].rc);
    printf("{\"event\":\"perfn\",\"streams\":%d,\"uploadBytes\":%llu,\"downloadBytes\":%llu,\"ms\":%.3f}\n", streams,
           (unsigned long long)up * (unsigned long long)streams, (unsigned long long)down * (unsigned long long)streams,
           ms);
}

static void act_rtt(int iters) {
    lp2p_peer_id peer;
    lp2p__ma ma;
    if (lp2p__ma_parse(target, &ma, NULL) || !lp2p__ma_split_p2p(&ma, NULL, &peer)) fail("rtt: address", LP2P_ERR_BADADDR);
    double *ms = calloc((size_t)iters, sizeof *ms);
    for (int i = 0; i < iters; i++) {
        lp2p_host_disconnect(host, &peer); /* a fresh connection every time */
        lp2p_stream *s;
        uint8_t b = 42, back = 0;
        double t0 = now_ms();
        int rc = lp2p_stream_open(host, target, ECHO, dl(), &s);
        if (rc) fail("rtt: open", rc);
        if ((rc = lp2p_stream_write(s, &b, 1, dl())) || (rc = lp2p_stream_read_full(s, &back, 1, dl()))) fail("rtt", rc);
        ms[i] = now_ms() - t0;
        lp2p_stream_close(s);
        if (back != b) fail("rtt: echo differs", LP2P_ERR_PROTOCOL);
    }
    printf("{\"event\":\"rtt\",\"ms\":[");
    for (int i = 0; i < iters; i++) printf("%s%.3f", i ? "," : "", ms[i]);
    printf("]}\n");
}

/* handshakes and conns: new connections to one peer, bypassing the one-per-peer swarm */
static lp2p_peer_id target_peer;
static lp2p__ma target_ma;
static double hs_end;
static long hs_done, hs_failed, conns_left;
static lp2p__conn **held;
static long n_held;

static void hs_task(void *arg) {
    (void)arg;
    while (now_ms() < hs_end) {
        lp2p__conn *c = NULL;
        int rc = lp2p__dial_addrs(host, &target_peer, &target_ma, 1, &c, lp2p_deadline_in(10000));
        if (rc) {
            if (++hs_failed > 100) return;
            continue;
        }
        c->refs++; /* the caller's reference, as lp2p__swarm_connect takes it */
        hs_done++;
        lp2p__conn_close(c);
        lp2p__conn_unref(c);
    }
}

static void parse_target(void) {
    lp2p__ma ma;
    if (lp2p__ma_parse(target, &ma, NULL) || !lp2p__ma_split_p2p(&ma, &target_ma, &target_peer))
        fail("address", LP2P_ERR_BADADDR);
}

static void act_handshakes(double seconds, int parallel) {
    parse_target();
    lp2p_task *t = calloc((size_t)parallel, sizeof *t);
    double t0 = now_ms();
    hs_end = t0 + seconds * 1000;
    for (int i = 0; i < parallel; i++) t[i] = lp2p_go(host, hs_task, NULL);
    for (int i = 0; i < parallel; i++) lp2p_task_join(host, t[i], LP2P_FOREVER);
    double ms = now_ms() - t0;
    if (hs_failed > 100) fail("handshakes: too many failed dials", LP2P_ERR_UNREACHABLE);
    printf("{\"event\":\"handshakes\",\"count\":%ld,\"failed\":%ld,\"parallel\":%d,\"ms\":%.3f,\"perSec\":%.1f}\n",
           hs_done, hs_failed, parallel, ms, hs_done / (ms / 1000));
}

static void conn_task(void *arg) {
    (void)arg;
    while (conns_left > 0) {
        conns_left--;
        lp2p__conn *c = NULL;
        int rc = lp2p__dial_addrs(host, &target_peer, &target_ma, 1, &c, lp2p_deadline_in(30000));
        if (rc) {
            hs_failed++;
            continue;
        }
        c->refs++;
        held[n_held++] = c; /* keep our reference: the connection stays open */
    }
}

static void act_conns(long n, double hold) {
    parse_target();
    held = calloc((size_t)n, sizeof *held);
    conns_left = n;
    lp2p_task t[32];
    double t0 = now_ms();
    for (int i = 0; i < 32; i++) t[i] = lp2p_go(host, conn_task, NULL);
    for (int i = 0; i < 32; i++) lp2p_task_join(host, t[i], LP2P_FOREVER);
    printf("{\"event\":\"conns\",\"n\":%ld,\"failed\":%ld,\"ms\":%.3f}\n", n_held, hs_failed, now_ms() - t0);
    fflush(stdout);
    lp2p_sleep(host, lp2p_deadline_in((int64_t)(hold * 1000)));
}

static void act_streams(int n, double hold) {
    lp2p_stream **s = calloc((size_t)n, sizeof *s);
    double t0 = now_ms();
    for (int i = 0; i < n; i++) {
        uint8_t b = (uint8_t)i, back;
        int rc = lp2p_stream_open(host, target, ECHO, dl(), &s[i]);
        if (rc) fail("streams: open", rc);
        if ((rc = lp2p_stream_write(s[i], &b, 1, dl())) || (rc = lp2p_stream_read_full(s[i], &back, 1, dl())))
            fail("streams: echo", rc);
    }
    printf("{\"event\":\"streams\",\"n\":%d,\"ms\":%.3f}\n", n, now_ms() - t0);
    fflush(stdout);
    lp2p_sleep(host, lp2p_deadline_in((int64_t)(hold * 1000)));
}

/* ---- allocation census (BENCH_ALLOC_STATS=1: SIGUSR1 prints live blocks by size to stderr) -- */
static long live_n[64], live_b[64]; /* by power-of-two size class */
static int size_class(size_t n) { int c = 0; while (c < 63 && ((size_t)1 << c) < n) c++; return c; }
static void *census_alloc(size_t n, void *u) {
    (void)u;
    int c = size_class(n);
    live_n[c]++, live_b[c] += (long)n;
    return malloc(n);
}
static void census_free(void *p, size_t n, void *u) {
    (void)u;
    int c = size_class(n);
    live_n[c]--, live_b[c] -= (long)n;
    free(p);
}
static volatile sig_atomic_t census_due;
static void census_signal(int sig) { (void)sig; census_due = 1; }
static void census_task(void *arg) {
    (void)arg;
    while (lp2p_sleep(host, lp2p_deadline_in(100)) == LP2P_OK) {
        if (!census_due) continue;
        census_due = 0;
        long tn = 0, tb = 0;
        for (int c = 0; c < 64; c++)
            if (live_n[c]) {
                fprintf(stderr, "census: <= %8zu bytes: %7ld blocks %10ld bytes\n", (size_t)1 << c, live_n[c], live_b[c]);
                tn += live_n[c], tb += live_b[c];
            }
        fprintf(stderr, "census: total %ld blocks %ld bytes\n", tn, tb);
    }
}

/* ---- main --------------------------------------------------------------------------------- */
static void usage(void) {
    fprintf(stderr, "usage: lp2p-bench listen [--seed hex] [--timeout s] [--stdin-exit]\n"
                    "       lp2p-bench dial <multiaddr/p2p/id> perf <up> <down> | perfn <streams> <up> <down> |\n"
                    "                  rtt <iters> | handshakes <seconds> <parallel> | conns <n> <hold-s> |\n"
                    "                  streams <n> <hold-s>   [--timeout s]\n"
                    "       lp2p-bench rss [connections]\n");
    exit(2);
}

/* ---- rss: the quick, self-contained idle-connection memory check ------------------------------ */
static long rss_kib(pid_t pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
    if (f) fclose(f);
    return kib;
}

static void poll_all(lp2p_host **hs, int n, int rounds) {
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < n; i++)
            if (hs[i]) lp2p_host_poll(hs[i], 0);
        usleep(50 * 1000);
    }
}

static lp2p_host *client_host(void) {
    lp2p_config cfg = {0};
    cfg.no_listen = true;
    lp2p_host *h = NULL;
    return lp2p_host_new(&cfg, &h) == LP2P_OK ? h : NULL;
}

/* Our listener (a plain host) in a child; `conns` dialing hosts in this process. The figure is
 * the listener's RSS growth divided by the connections, after 1 s and after 4 s idle (the host
 * gives back stack pages of tasks parked for a whole second: lp2p__sched_trim). */
static int act_rss(int conns) {
    struct rlimit rl = {65536, 65536};
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 && getrlimit(RLIMIT_NOFILE, &rl) == 0) { /* up to the hard limit */
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    int fds[2];
    if (conns < 1 || pipe(fds) != 0) return 1;
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        lp2p_config cfg = {0};
        cfg.max_connections = conns + 16;
        lp2p_host *h = NULL;
        if (lp2p_host_new(&cfg, &h) != LP2P_OK) _exit(1);
        dprintf(fds[1], "%s\n", lp2p_host_addr(h, 0));
        close(fds[1]);
        alarm(600);
        lp2p_host_run(h); /* until killed */
        _exit(0);
    }
    close(fds[1]);
    char addr[256] = "";
    FILE *f = fdopen(fds[0], "r");
    if (!f || !fgets(addr, sizeof addr, f)) {
        kill(pid, SIGKILL), waitpid(pid, NULL, 0);
        return 1;
    }
    fclose(f);
    addr[strcspn(addr, "\n")] = 0;
    lp2p_host **hs = calloc((size_t)conns + 1, sizeof *hs);
    /* warm up: one connection, so the baseline includes the first connection's one-time costs */
    hs[conns] = client_host();
    if (hs[conns]) lp2p_host_connect(hs[conns], addr, lp2p_deadline_in(30000));
    usleep(300 * 1000);
    long base = rss_kib(pid);
    int ok = 0;
    for (int i = 0; i < conns; i++) {
        hs[i] = client_host();
        if (hs[i] && lp2p_host_connect(hs[i], addr, lp2p_deadline_in(30000)) == LP2P_OK) ok++;
    }
    poll_all(hs, conns + 1, 20); /* identify finishes everywhere, the listener settles */
    long early = rss_kib(pid);
    poll_all(hs, conns + 1, 60);
    long after = rss_kib(pid);
    printf("{\"listener\":\"libp2p.h\",\"connections\":%d,\"rss_base_kib\":%ld,\"rss_kib\":%ld,"
           "\"per_conn_kib\":%.2f,\"per_conn_kib_at_1s\":%.2f}\n",
           ok, base, after, ok ? (double)(after - base) / ok : 0.0, ok ? (double)(early - base) / ok : 0.0);
    kill(pid, SIGTERM), waitpid(pid, NULL, 0);
    for (int i = 0; i <= conns; i++)
        if (hs[i]) lp2p_host_free(hs[i]);
    free(hs);
    return ok == conns ? 0 : 1;
}

static int hexval(char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1; }

int main(int argc, char **argv) {
    const char *pos[8];
    int npos = 0;
    bool stdin_exit = false;
    lp2p_config cfg;
    memset(&cfg, 0, sizeof cfg);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--timeout") && i + 1 < argc) timeout_s = atof(argv[++i]);
        else if (!strcmp(argv[i], "--stdin-exit")) stdin_exit = true;
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
            const char *hx = argv[++i];
            if (strlen(hx) != 64) usage();
            for (int k = 0; k < 32; k++) {
                int a = hexval(hx[2 * k]), b = hexval(hx[2 * k + 1]);
                if (a < 0 || b < 0) usage();
                cfg.identity_seed[k] = (uint8_t)(a << 4 | b);
            }
            cfg.use_identity_seed = true;
        } else if (argv[i][0] == '-' && argv[i][1] == '-') usage();
        else if (npos < 8) pos[npos++] = argv[i];
    }
    if (npos < 1) usage();
    if (!strcmp(pos[0], "rss")) return act_rss(npos > 1 ? atoi(pos[1]) : 1000);
    bool listen = !strcmp(pos[0], "listen");
    if (!listen && (strcmp(pos[0], "dial") || npos < 3)) usage();
    /* room for the connection-count and stream-count benchmarks */
    cfg.max_connections = 30000;
    cfg.max_streams_per_conn = 8192;
    cfg.max_pending_dials = 1024;
    if (getenv("BENCH_WINDOW")) cfg.stream_window = atoi(getenv("BENCH_WINDOW")); /* experiments */
    cfg.no_listen = !listen;
    cfg.log_level = LP2P_LOG_ERROR;
    bool census = getenv("BENCH_ALLOC_STATS") != NULL;
    if (census) {
        cfg.allocator.alloc = census_alloc, cfg.allocator.free = census_free;
        signal(SIGUSR1, census_signal);
    }
    int rc = lp2p_host_new(&cfg, &host);
    if (rc) fail("host", rc);
    lp2p_perf_server_config perf = {0};
    perf.max_streams = 1024; /* perfn: 100 at once, and the handshake benchmark's leftovers */
    perf.timeout_ms = (int)(timeout_s * 1000);
    if ((rc = lp2p_perf_serve(host, &perf))) fail("perf_serve", rc);
    lp2p_host_handle(host, ECHO, serve_echo, NULL);
    lp2p_go(host, drain_events, NULL);
    if (census) lp2p_go(host, census_task, NULL);
    char id[LP2P_PEER_ID_STRLEN];
    lp2p_peer_id self = lp2p_host_id(host);
    lp2p_peer_id_str(&self, id, sizeof id);
    if (listen) {
        printf("{\"event\":\"ready\",\"peerId\":\"%s\",\"listenAddrs\":[", id);
        for (int i = 0; i < lp2p_host_addr_count(host); i++) printf("%s\"%s\"", i ? "," : "", lp2p_host_addr(host, i));
        printf("]}\n");
        fflush(stdout);
        pthread_t th;
        if (stdin_exit) pthread_create(&th, NULL, stdin_watch, NULL);
        lp2p_go(host, stop_after, NULL);
        lp2p_host_run(host);
        _exit(0); /* the stdin thread may still be blocked in read() */
    }
    target = pos[1];
    const char *act = pos[2];
    double t0 = now_ms();
    if ((rc = lp2p_host_connect(host, target, dl()))) fail("dial", rc);
    printf("{\"event\":\"connected\",\"ms\":%.3f}\n", now_ms() - t0);
#define ARG(i) (npos > (i) ? pos[i] : (usage(), ""))
    if (!strcmp(act, "perf")) act_perf(1, strtoull(ARG(3), NULL, 10), strtoull(ARG(4), NULL, 10));
    else if (!strcmp(act, "perfn")) act_perf(atoi(ARG(3)), strtoull(ARG(4), NULL, 10), strtoull(ARG(5), NULL, 10));
    else if (!strcmp(act, "rtt")) act_rtt(atoi(ARG(3)));
    else if (!strcmp(act, "handshakes")) act_handshakes(atof(ARG(3)), atoi(ARG(4)));
    else if (!strcmp(act, "conns")) act_conns(atol(ARG(3)), atof(ARG(4)));
    else if (!strcmp(act, "streams")) act_streams(atoi(ARG(3)), atof(ARG(4)));
    else usage();
    fflush(stdout);
    _exit(0); /* the benchmark is over: skip the graceful teardown of thousands of connections */
}
