/* bench/core.c - the core numbers: one-stream throughput to and from a reference peer,
 * connect + identify + 1 ping, and listener RSS per idle connection. Loopback only; every
 * process it starts is ended by PID. Measures, never asserts.
 *
 *   build/bench/core throughput <peer-bin> <MiB> [runs]   upload/download over /perf/1.0.0
 *                                                          (peer-bin "self": our own host in a child)
 *   build/bench/core connect <peer-bin> [iterations]       connect + identify + 1 ping
 *   build/bench/core rss [connections]                      our listener's RSS per idle conn
 *                                                          (after 4 s idle; also at 1 s)
 *
 * peer-bin is a reference peer from tests/interop (e.g. ~/.cache/libp2p.h/bin/peer-go); it is
 * started as `peer-bin listen` and its "ready" line gives the address (tests/interop/README.md).
 * Output: one JSON line per measurement on stdout, progress on stderr. */
#define LIBP2P_IMPLEMENTATION
#include "libp2p.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static int64_t deadline_s(int s) { return lp2p_deadline_in((int64_t)s * 1000); }
static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}
static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double pct(double *v, int n, double p) { /* p in [0,1], v sorted in place */
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    int i = (int)(p * (n - 1) + 0.5);
    return v[i];
}

/* ---- a reference peer as a child process ---- */
typedef struct { pid_t pid; FILE *out; char addr[256]; } peer;

static int peer_listen(peer *p, const char *bin) {
    int fds[2];
    if (pipe(fds) != 0) return -1;
    p->pid = fork();
    if (p->pid == 0) {
        dup2(fds[1], 1), close(fds[0]), close(fds[1]);
        execl(bin, bin, "listen", "--timeout", "600", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    p->out = fdopen(fds[0], "r");
    char line[4096];
    while (fgets(line, sizeof line, p->out)) { /* {"event":"ready",...,"listenAddrs":["/ip4/..."]} */
        char *a = strstr(line, "\"listenAddrs\":[\"");
        if (!strstr(line, "\"ready\"") || !a) continue;
        a += strlen("\"listenAddrs\":[\"");
        size_t n = strcspn(a, "\"");
        if (n >= sizeof p->addr) return -1;
        memcpy(p->addr, a, n), p->addr[n] = 0;
        return 0;
    }
    return -1;
}
/* /perf/1.0.0 server side on our host (perf/perf.md): u64 BE size to send back, drain the
 * upload to EOF, then send. */
static void perf_handler(lp2p_stream *s, void *user) {
    uint8_t hdr[8], *buf = malloc(256 * 1024);
    uint64_t down = 0;
    (void)user;
    if (!buf || lp2p_stream_read_full(s, hdr, 8, deadline_s(30)) != LP2P_OK) { free(buf); return; }
    for (int i = 0; i < 8; i++) down = down << 8 | hdr[i];
    for (ptrdiff_t n; (n = lp2p_stream_read(s, buf, 256 * 1024, deadline_s(60))) > 0;) {}
    memset(buf, 0, 256 * 1024);
    for (uint64_t left = down; left > 0;) {
        size_t n = left < 256 * 1024 ? (size_t)left : 256 * 1024;
        if (lp2p_stream_write(s, buf, n, deadline_s(60)) != LP2P_OK) break;
        left -= n;
    }
    free(buf);
}

/* Our host with the perf handler in a child process: the "self" peer. */
static int self_listen(peer *p) {
    int fds[2];
    if (pipe(fds) != 0) return -1;
    p->pid = fork();
    if (p->pid == 0) {
        close(fds[0]);
        lp2p_host *h = NULL;
        if (lp2p_host_new(NULL, &h) != LP2P_OK) _exit(1);
        lp2p_host_handle(h, "/perf/1.0.0", perf_handler, NULL);
        dprintf(fds[1], "%s\n", lp2p_host_addr(h, 0));
        close(fds[1]);
        alarm(600);
        lp2p_host_run(h); /* until killed */
        _exit(0);
    }
    close(fds[1]);
    p->out = fdopen(fds[0], "r");
    if (!p->out || !fgets(p->addr, sizeof p->addr, p->out)) return -1;
    p->addr[strcspn(p->addr, "\n")] = 0;
    return 0;
}

static void peer_stop(peer *p) {
    if (p->pid > 0) kill(p->pid, SIGTERM), waitpid(p->pid, NULL, 0);
    if (p->out) fclose(p->out);
}

static lp2p_host *client_host(void) {
    lp2p_config cfg = {0};
    cfg.no_listen = true;
    lp2p_host *h = NULL;
    return lp2p_host_new(&cfg, &h) == LP2P_OK ? h : NULL;
}

/* One /perf/1.0.0 exchange (perf/perf.md): u64 BE download size, upload, close write, read to
 * EOF. Returns elapsed ms or < 0. */
static double perf_once(lp2p_host *h, const char *addr, uint64_t up, uint64_t down) {
    static uint8_t buf[256 * 1024];
    lp2p_stream *s = NULL;
    double t0 = now_ms();
    if (lp2p_stream_open(h, addr, "/perf/1.0.0", deadline_s(30), &s) != LP2P_OK) return -1;
    uint8_t hdr[8];
    for (int i = 0; i < 8; i++) hdr[i] = (uint8_t)(down >> (56 - 8 * i));
    int rc = lp2p_stream_write(s, hdr, 8, deadline_s(30));
    for (uint64_t left = up; rc == LP2P_OK && left > 0;) {
        size_t n = left < sizeof buf ? (size_t)left : sizeof buf;
        rc = lp2p_stream_write(s, buf, n, deadline_s(60));
        left -= n;
    }
    if (rc == LP2P_OK) rc = lp2p_stream_close_write(s);
    uint64_t got = 0;
    for (ptrdiff_t n; rc == LP2P_OK && (n = lp2p_stream_read(s, buf, sizeof buf, deadline_s(60))) != 0;)
        if (n < 0) rc = (int)n; else got += (uint64_t)n;
    lp2p_stream_close(s);
    if (rc != LP2P_OK || got != down) {
        fprintf(stderr, "perf: %s (got %llu of %llu)\n", lp2p_strerror(rc), (unsigned long long)got,
                (unsigned long long)down);
        return -1;
    }
    return now_ms() - t0;
}

static int cmd_throughput(const char *bin, int mib, int runs) {
    peer p = {0};
    lp2p_host *h = client_host();
    int started = !strcmp(bin, "self") ? self_listen(&p) : peer_listen(&p, bin);
    if (!h || started != 0) { fprintf(stderr, "cannot start %s\n", bin); peer_stop(&p); return 1; }
    uint64_t bytes = (uint64_t)mib << 20;
    if (lp2p_host_connect(h, p.addr, deadline_s(30)) != LP2P_OK) { peer_stop(&p); return 1; }
    for (int dir = 0; dir < 2; dir++) {
        double v[32];
        int n = 0;
        for (int r = 0; r < runs && r < 32; r++) {
            double ms = dir == 0 ? perf_once(h, p.addr, bytes, 0) : perf_once(h, p.addr, 0, bytes);
            if (ms > 0) v[n++] = ms;
        }
        if (n == 0) { printf("{\"peer\":\"%s\",\"dir\":\"%s\",\"error\":true}\n", bin, dir ? "download" : "upload"); continue; }
        double med = pct(v, n, 0.5);
        printf("{\"peer\":\"%s\",\"dir\":\"%s\",\"bytes\":%llu,\"runs\":%d,\"median_ms\":%.1f,\"MiB_s\":%.1f}\n",
               bin, dir ? "download" : "upload", (unsigned long long)bytes, n, med, mib / (med / 1e3));
        fflush(stdout);
    }
    lp2p_host_free(h);
    peer_stop(&p);
    return 0;
}

static int cmd_connect(const char *bin, int iters) {
    peer p = {0};
    if (peer_listen(&p, bin) != 0) { fprintf(stderr, "cannot start %s\n", bin); peer_stop(&p); return 1; }
    double *v = calloc((size_t)iters, sizeof *v);
    int n = 0;
    for (int i = 0; i < iters; i++) {
        lp2p_host *h = client_host(); /* a fresh identity and no cached connection each time */
        double t0 = now_ms();
        int rc = lp2p_host_identify(h, p.addr, deadline_s(30));
        if (rc == LP2P_OK) rc = lp2p_ping(h, p.addr, deadline_s(30)) >= 0 ? LP2P_OK : -1;
        if (rc == LP2P_OK) v[n++] = now_ms() - t0;
        else fprintf(stderr, "connect: %s\n", lp2p_strerror(rc));
        lp2p_host_free(h);
    }
    if (n) printf("{\"peer\":\"%s\",\"connect_identify_ping\":{\"n\":%d,\"median_ms\":%.2f,\"p99_ms\":%.2f}}\n", bin, n,
                  pct(v, n, 0.5), pct(v, n, 0.99));
    free(v);
    peer_stop(&p);
    return n ? 0 : 1;
}

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

/* Our listener in a child process; `conns` dialing hosts (each its own identity) in this one. */
static int cmd_rss(int conns) {
    struct rlimit rl = {65536, 65536};
    setrlimit(RLIMIT_NOFILE, &rl);
    int fds[2];
    if (pipe(fds) != 0) return 1;
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
    if (!fgets(addr, sizeof addr, f)) { kill(pid, SIGKILL), waitpid(pid, NULL, 0); return 1; }
    fclose(f);
    addr[strcspn(addr, "\n")] = 0;
    lp2p_host **hs = calloc((size_t)conns + 1, sizeof *hs);
    /* warm up: one connection, so the baseline includes the first connection's one-time costs */
    hs[conns] = client_host();
    lp2p_host_connect(hs[conns], addr, deadline_s(30));
    usleep(300 * 1000);
    long base = rss_kib(pid);
    int ok = 0;
    for (int i = 0; i < conns; i++) {
        hs[i] = client_host();
        if (hs[i] && lp2p_host_connect(hs[i], addr, deadline_s(30)) == LP2P_OK) ok++;
    }
    /* let identify finish everywhere, then let the listener settle */
    for (int r = 0; r < 20; r++) {
        for (int i = 0; i <= conns; i++) if (hs[i]) lp2p_host_poll(hs[i], 0);
        usleep(50 * 1000);
    }
    long early = rss_kib(pid);
    /* idle connections settle: the host gives back stack pages of tasks parked for a whole
     * second (lp2p__sched_trim, run every second) */
    for (int r = 0; r < 60; r++) {
        for (int i = 0; i <= conns; i++) if (hs[i]) lp2p_host_poll(hs[i], 0);
        usleep(50 * 1000);
    }
    long after = rss_kib(pid);
    printf("{\"listener\":\"libp2p.h\",\"connections\":%d,\"rss_base_kib\":%ld,\"rss_kib\":%ld,"
           "\"per_conn_kib\":%.2f,\"per_conn_kib_at_1s\":%.2f}\n", ok, base, after,
           ok ? (double)(after - base) / ok : 0.0, ok ? (double)(early - base) / ok : 0.0);
    kill(pid, SIGTERM), waitpid(pid, NULL, 0);
    for (int i = 0; i <= conns; i++) if (hs[i]) lp2p_host_free(hs[i]);
    free(hs);
    return ok == conns ? 0 : 1;
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 4 && !strcmp(argv[1], "throughput"))
        return cmd_throughput(argv[2], atoi(argv[3]), argc > 4 ? atoi(argv[4]) : 3);
    if (argc >= 3 && !strcmp(argv[1], "connect")) return cmd_connect(argv[2], argc > 3 ? atoi(argv[3]) : 50);
    if (argc >= 2 && !strcmp(argv[1], "rss")) return cmd_rss(argc > 2 ? atoi(argv[2]) : 1000);
    fprintf(stderr, "usage: %s throughput <peer-bin> <MiB> [runs] | connect <peer-bin> [n] | rss [conns]\n", argv[0]);
    return 2;
}
