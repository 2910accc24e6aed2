/* test_interop.c - libp2p.h against real go-libp2p, rust-libp2p and js-libp2p peers, in both
 * roles, over TCP on 127.0.0.1. The peers (tests/interop/{go,rust,js}, contract in
 * tests/interop/README.md) are built by scripts/install-peers.sh into $LP2P_CACHE/bin
 * (default ~/.cache/libp2p.h/bin). Under CI=true a missing peer is a failure; elsewhere the
 * suite says which peers it skipped and how to build them.
 * Usage: test_interop [go|rust|js ...]   (default: all three) */
#define LIBP2P_IMPLEMENTATION
#include "libp2p.h"
#include "tests/test.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define ECHO "/echo/1.0.0"

/* ---- child processes ---------------------------------------------------------------------- */
typedef struct peer_proc {
    pid_t pid;
    int fd; /* its stdout, non-blocking */
    char buf[1 << 16];
    size_t len;
    int eof;
} peer_proc;

static char peer_bin[3][600];
static const char *impls[3] = {"go", "rust", "js"};

static int peer_start(peer_proc *p, const char *bin, const char *const *args) {
    int fds[2];
    char *argv[16];
    int n = 0;
    memset(p, 0, sizeof *p);
    if (pipe(fds) != 0) return -1;
    argv[n++] = (char *)bin;
    for (; args[n - 1] && n < 15; n++) argv[n] = (char *)args[n - 1];
    argv[n] = NULL;
    p->pid = fork();
    if (p->pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]), close(fds[1]);
        char log[600];
        snprintf(log, sizeof log, "build/interop/logs/%s-%d.log", strrchr(bin, '/') ? strrchr(bin, '/') + 1 : bin,
                 (int)getpid());
        int lf = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (lf >= 0) dup2(lf, 2), close(lf);
        execv(bin, argv);
        _exit(127);
    }
    close(fds[1]);
    p->fd = fds[0];
    fcntl(p->fd, F_SETFL, O_NONBLOCK);
    return p->pid > 0 ? 0 : -1;
}

/* Next stdout line containing needle, pumping host h meanwhile; copies it into out. */
static int peer_line(peer_proc *p, lp2p_host *h, const char *needle, char *out, size_t cap, int64_t deadline) {
    for (;;) {
        char *nl;
        while ((nl = memchr(p->buf, '\n', p->len)) != NULL) {
            *nl = 0;
            int hit = strstr(p->buf, needle) != NULL;
            if (hit) snprintf(out, cap, "%s", p->buf);
            size_t used = (size_t)(nl - p->buf) + 1;
            memmove(p->buf, nl + 1, p->len - used);
            p->len -= used;
            if (hit) return 1;
        }
        if (p->eof || lp2p_now() > deadline) return 0;
        ssize_t n = read(p->fd, p->buf + p->len, sizeof p->buf - 1 - p->len);
        if (n > 0) p->len += (size_t)n;
        else if (n == 0) p->eof = 1;
        else if (h) lp2p_host_poll(h, 5);
        else usleep(5000);
        if (p->len == sizeof p->buf - 1) p->len = 0; /* runaway line: drop */
    }
}

/* Wait for exit (pumping h); returns the exit code, or -1 on timeout (then the child is killed). */
static int peer_wait(peer_proc *p, lp2p_host *h, int64_t deadline) {
    int st;
    for (;;) {
        pid_t r = waitpid(p->pid, &st, WNOHANG);
        if (r == p->pid) {
            p->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        if (lp2p_now() > deadline) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &st, 0);
            p->pid = 0;
            return -1;
        }
        if (h) lp2p_host_poll(h, 5);
        else usleep(5000);
        char tmp[4096]; /* keep its stdout drained */
        ssize_t n = read(p->fd, tmp, sizeof tmp);
        if (n > 0 && p->len + (size_t)n < sizeof p->buf) memcpy(p->buf + p->len, tmp, (size_t)n), p->len += (size_t)n;
    }
}

static void peer_stop(peer_proc *p) {
    if (p->pid > 0) {
        kill(p->pid, SIGTERM);
        for (int i = 0; i < 100 && waitpid(p->pid, NULL, WNOHANG) == 0; i++) usleep(20000);
        if (waitpid(p->pid, NULL, WNOHANG) == 0) kill(p->pid, SIGKILL), waitpid(p->pid, NULL, 0);
        p->pid = 0;
    }
    if (p->fd > 0) close(p->fd), p->fd = -1;
}

/* "key":"value" -> value */
static int json_str(const char *line, const char *key, char *out, size_t cap) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *s = strstr(line, pat);
    if (!s) return 0;
    s += strlen(pat);
    const char *e = strchr(s, '"');
    if (!e) return 0;
    snprintf(out, cap, "%.*s", (int)(e - s), s);
    return 1;
}

/* first element of "key":["...", ...] */
static int json_first(const char *line, const char *key, char *out, size_t cap) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":[\"", key);
    const char *s = strstr(line, pat);
    if (!s) return 0;
    s += strlen(pat);
    const char *e = strchr(s, '"');
    if (!e) return 0;
    snprintf(out, cap, "%.*s", (int)(e - s), s);
    return 1;
}

/* ---- our side ------------------------------------------------------------------------------- */
static void echo_handler(lp2p_stream *s, void *user) {
    char buf[16384];
    ptrdiff_t n;
    (void)user;
    while ((n = lp2p_stream_read(s, buf, sizeof buf, lp2p_deadline_in(30000))) > 0)
        if (lp2p_stream_write(s, buf, (size_t)n, lp2p_deadline_in(30000)) != LP2P_OK) break;
}

typedef struct echo_job {
    lp2p_host *h;
    const char *addr;
    const char *proto;
    size_t len;
    int ok;
} echo_job;

/* Echo len bytes through one stream, writer and reader as two tasks (full duplex). */
typedef struct writer_arg {
    lp2p_stream *s;
    const uint8_t *data;
    size_t len;
    int rc;
} writer_arg;

static void writer_task(void *arg) {
    writer_arg *w = (writer_arg *)arg;
    w->rc = lp2p_stream_write(w->s, w->data, w->len, lp2p_deadline_in(60000));
    if (w->rc == LP2P_OK) lp2p_stream_close_write(w->s);
}

static void echo_task(void *arg) {
    echo_job *j = (echo_job *)arg;
    lp2p_stream *s = NULL;
    uint8_t *out = malloc(j->len + 1), *in = malloc(j->len + 1);
    for (size_t i = 0; i < j->len; i++) out[i] = (uint8_t)(i * 13 + j->len);
    j->ok = 0;
    if (lp2p_stream_open(j->h, j->addr, ECHO, lp2p_deadline_in(20000), &s) == LP2P_OK) {
        writer_arg w = {s, out, j->len, 1};
        lp2p_task wt = lp2p_go(j->h, writer_task, &w);
        size_t r = 0;
        ptrdiff_t n = 1;
        while (r < j->len && (n = lp2p_stream_read(s, in + r, j->len - r, lp2p_deadline_in(60000))) > 0) r += (size_t)n;
        lp2p_task_join(j->h, wt, lp2p_deadline_in(60000));
        char extra;
        j->ok = w.rc == LP2P_OK && r == j->len && memcmp(in, out, j->len) == 0 &&
                lp2p_stream_read(s, &extra, 1, lp2p_deadline_in(20000)) == 0;
        if (!j->ok) fprintf(stderr, "    echo %zu: wrote rc=%d, read %zu (last %td)\n", j->len, w.rc, r, n);
        lp2p_stream_close(s);
    }
    free(out), free(in);
}

static int run_echo(lp2p_host *h, const char *addr, size_t len, int streams) {
    echo_job *jobs = calloc((size_t)streams, sizeof *jobs);
    lp2p_task *t = calloc((size_t)streams, sizeof *t);
    int ok = 0;
    for (int i = 0; i < streams; i++) {
        jobs[i].h = h, jobs[i].addr = addr, jobs[i].len = len;
        t[i] = lp2p_go(h, echo_task, &jobs[i]);
    }
    for (int i = 0; i < streams; i++) {
        lp2p_task_join(h, t[i], lp2p_deadline_in(120000));
        ok += jobs[i].ok;
    }
    free(jobs), free(t);
    return ok == streams;
}

static lp2p_host *new_host(void) {
    lp2p_config cfg;
    lp2p_host *h = NULL;
    memset(&cfg, 0, sizeof cfg);
    cfg.log_level = getenv("LP2P_TEST_LOG") ? LP2P_LOG_DEBUG : LP2P_LOG_ERROR;
    if (lp2p_host_new(&cfg, &h) != LP2P_OK) return NULL;
    lp2p_host_handle(h, ECHO, echo_handler, NULL);
    return h;
}

static int has_proto(const lp2p_peer_info *info, const char *proto) {
    for (int i = 0; i < info->n_protocols; i++)
        if (strcmp(info->protocols[i], proto) == 0) return 1;
    return 0;
}

/* ---- role 1: we dial their listener ------------------------------------------------------------ */
static void we_dial(int impl) {
    char line[65536], addr[600], pid_text[128], our_id[LP2P_PEER_ID_STRLEN];
    const char *listen_args[] = {"listen", "--timeout", "300", NULL};
    peer_proc p;
    lp2p_host *h = new_host();
    fprintf(stderr, "-- %s listener, libp2p.h dialer\n", impls[impl]);
    if (!h || peer_start(&p, peer_bin[impl], listen_args) != 0) {
        CHECK(!"start");
        return;
    }
    lp2p_peer_id me = lp2p_host_id(h);
    lp2p_peer_id_str(&me, our_id, sizeof our_id);
    int ready = peer_line(&p, NULL, "\"ready\"", line, sizeof line, lp2p_deadline_in(60000)) &&
                json_first(line, "listenAddrs", addr, sizeof addr) && json_str(line, "peerId", pid_text, sizeof pid_text);
    CHECK(ready);
    if (!ready) goto out;

    /* connect + identify: we see the right peer, agent, protocols, addresses */
    int64_t t0 = lp2p_now();
    CHECK_EQ(lp2p_host_identify(h, addr, lp2p_deadline_in(20000)), LP2P_OK);
    int ms_identify = (int)(lp2p_now() - t0);
    lp2p_peer_id them;
    CHECK_EQ(lp2p_peer_id_parse(pid_text, &them), LP2P_OK);
    lp2p_peer_info info;
    if (lp2p_host_peer_info(h, &them, &info) == LP2P_OK) {
        CHECK(info.agent_version && info.agent_version[0]);
        CHECK(has_proto(&info, ECHO));
        CHECK(has_proto(&info, "/ipfs/ping/1.0.0"));
        CHECK(has_proto(&info, "/ipfs/id/1.0.0"));
        CHECK(info.n_addrs >= 1);
        CHECK(info.observed_addr && strncmp(info.observed_addr, "/ip4/127.0.0.1/tcp/", 19) == 0);
        fprintf(stderr, "    %s: agent '%s', %d protocols, %d addrs, observed %s, identify %d ms\n", impls[impl],
                info.agent_version ? info.agent_version : "?", info.n_protocols, info.n_addrs,
                info.observed_addr ? info.observed_addr : "-", ms_identify);
    } else {
        CHECK(!"peer info");
    }
    /* they see us right: their identify line about our peer ID */
    char needle[200];
    snprintf(needle, sizeof needle, "\"peerId\":\"%s\"", our_id);
    int seen = 0;
    for (int tries = 0; tries < 5 && !seen; tries++)
        seen = peer_line(&p, h, needle, line, sizeof line, lp2p_deadline_in(10000)) && strstr(line, "\"identify\"");
    CHECK(seen);
    if (seen) {
        CHECK(strstr(line, "\"agentVersion\":\"libp2p.h/") != NULL);
        CHECK(strstr(line, "\"/ipfs/ping/1.0.0\"") != NULL);
        CHECK(strstr(line, "\"/echo/1.0.0\"") != NULL);
        CHECK(strstr(line, "\"observedAddr\":\"/ip4/127.0.0.1/tcp/") != NULL);
        CHECK(strstr(line, "\"listenAddrs\":[\"/ip4/127.0.0.1/tcp/") != NULL);
    }

    /* 10 pings */
    int pings = 0;
    for (int i = 0; i < 10; i++) pings += lp2p_ping(h, addr, lp2p_deadline_in(5000)) >= 0;
    CHECK_EQ(pings, 10);
    /* echo 1 B, 64 KiB, 8 MiB; 100 concurrent streams */
    CHECK(run_echo(h, addr, 1, 1));
    CHECK(run_echo(h, addr, 65536, 1));
    CHECK(run_echo(h, addr, 8 << 20, 1));
    CHECK(run_echo(h, addr, 10000, 100));

    /* the peer resets a stream mid-transfer */
    lp2p_stream *s = NULL;
    CHECK_EQ(lp2p_stream_open(h, addr, "/test/reset/1.0.0", lp2p_deadline_in(10000), &s), LP2P_OK);
    if (s) {
        static uint8_t junk[4096];
        int rc = LP2P_OK;
        for (int i = 0; i < 100 && rc == LP2P_OK; i++) rc = lp2p_stream_write(s, junk, sizeof junk, lp2p_deadline_in(5000));
        char c;
        ptrdiff_t r = rc == LP2P_OK ? lp2p_stream_read(s, &c, 1, lp2p_deadline_in(5000)) : rc;
        CHECK(r == LP2P_ERR_RESET || rc == LP2P_ERR_RESET);
        lp2p_stream_close(s);
    }
    /* the peer sends 1 MiB and closes */
    CHECK_EQ(lp2p_stream_open(h, addr, "/test/source/1.0.0", lp2p_deadline_in(10000), &s), LP2P_OK);
    if (s) {
        uint8_t req[8], *buf = malloc(1 << 20);
        size_t got = 0;
        int bad = 0;
        ptrdiff_t n;
        for (int i = 0; i < 8; i++) req[i] = (uint8_t)((uint64_t)(1 << 20) >> (56 - 8 * i));
        CHECK_EQ(lp2p_stream_write(s, req, 8, lp2p_deadline_in(5000)), LP2P_OK);
        lp2p_stream_close_write(s);
        while ((n = lp2p_stream_read(s, buf, 1 << 20, lp2p_deadline_in(10000))) > 0) {
            for (ptrdiff_t i = 0; i < n; i++) bad += buf[i] != (uint8_t)((got + (size_t)i) % 251);
            got += (size_t)n;
        }
        CHECK_EQ(n, 0);
        CHECK_EQ(got, 1 << 20);
        CHECK_EQ(bad, 0);
        free(buf);
        lp2p_stream_close(s);
    }
    /* wrong /p2p/ ID: handshake error, and the host keeps working */
    char wrong[700];
    snprintf(wrong, sizeof wrong, "%.*s/p2p/%s", (int)(strstr(addr, "/p2p/") - addr), addr,
             "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN");
    lp2p_peer_id_str(&them, our_id, sizeof our_id); /* reuse buffer: the bare ID */
    CHECK_EQ(lp2p_host_disconnect(h, &them), LP2P_OK);
    CHECK_EQ(lp2p_host_connect(h, wrong, lp2p_deadline_in(10000)), LP2P_ERR_HANDSHAKE);
    CHECK(lp2p_ping(h, addr, lp2p_deadline_in(5000)) >= 0);
out:
    peer_stop(&p);
    lp2p_host_free(h);
}

/* ---- role 2: they dial our listener ---------------------------------------------------------------- */
static int their_dial(int impl, lp2p_host *h, const char *addr, const char *const *action, const char *needle,
                      int want_lines) {
    const char *args[12];
    int n = 0;
    char line[65536];
    peer_proc p;
    args[n++] = "dial", args[n++] = addr;
    for (int i = 0; action[i] && n < 9; i++) args[n++] = action[i];
    args[n++] = "--timeout", args[n++] = "120", args[n] = NULL;
    if (peer_start(&p, peer_bin[impl], args) != 0) return 0;
    int lines = 0;
    while (needle && lines < want_lines && peer_line(&p, h, needle, line, sizeof line, lp2p_deadline_in(120000))) {
        lines++;
        if (strstr(line, "\"identify\"")) { /* what they saw of us */
            CHECK(strstr(line, "\"agentVersion\":\"libp2p.h/") != NULL);
            CHECK(strstr(line, "\"/echo/1.0.0\"") != NULL);
            CHECK(strstr(line, "\"/ipfs/id/1.0.0\"") != NULL);
            CHECK(strstr(line, "\"observedAddr\":\"/ip4/127.0.0.1/tcp/") != NULL);
            CHECK(strstr(line, "\"listenAddrs\":[\"/ip4/127.0.0.1/tcp/") != NULL);
        }
    }
    int rc = peer_wait(&p, h, lp2p_deadline_in(120000));
    peer_stop(&p);
    if (!needle) /* a dial expected to fail */
        fprintf(stderr, "    %s dial %s (expected to fail): exit %d\n", impls[impl], action[0], rc);
    else if (rc != 0 || lines < want_lines)
        fprintf(stderr, "    %s dial %s: exit %d, %d/%d '%s' lines\n", impls[impl], action[0], rc, lines, want_lines,
                needle ? needle : "");
    return rc == 0 && lines >= want_lines ? 1 : (rc == 0 ? 0 : -rc);
}

static void they_dial(int impl) {
    lp2p_host *h = new_host();
    fprintf(stderr, "-- libp2p.h listener, %s dialer\n", impls[impl]);
    if (!h) {
        CHECK(!"host");
        return;
    }
    const char *addr = lp2p_host_addr(h, 0);
    const char *identify[] = {"identify", NULL}, *ping[] = {"ping", "10", NULL}, *e1[] = {"echo", "1", NULL},
               *e64[] = {"echo", "65536", NULL}, *e8m[] = {"echo", "8388608", NULL},
               *e100[] = {"echo", "10000", "100", NULL}, *rst[] = {"reset-mid", NULL}, *cls[] = {"close-mid", NULL};
    CHECK_EQ(their_dial(impl, h, addr, identify, "\"identify\"", 1), 1);
    CHECK_EQ(their_dial(impl, h, addr, ping, "\"ping\"", 10), 1);
    CHECK_EQ(their_dial(impl, h, addr, e1, "\"echo\"", 1), 1);
    CHECK_EQ(their_dial(impl, h, addr, e64, "\"echo\"", 1), 1);
    CHECK_EQ(their_dial(impl, h, addr, e8m, "\"echo\"", 1), 1);
    CHECK_EQ(their_dial(impl, h, addr, e100, "\"echo\"", 1), 1);
    CHECK_EQ(their_dial(impl, h, addr, rst, "\"reset-mid\"", 1), 1);
    CHECK_EQ(their_dial(impl, h, addr, cls, "\"close-mid\"", 1), 1);
    /* a dial to us with the wrong peer ID fails on their side; we keep serving */
    char wrong[700];
    snprintf(wrong, sizeof wrong, "%.*s/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN",
             (int)(strstr(addr, "/p2p/") - addr), addr);
    CHECK(their_dial(impl, h, wrong, identify, NULL, 0) < 0);
    CHECK_EQ(their_dial(impl, h, addr, ping, "\"ping\"", 10), 1);
    lp2p_host_free(h);
}

int main(int argc, char **argv) {
    const char *cache = getenv("LP2P_CACHE");
    char def[512];
    int ci = getenv("CI") && strcmp(getenv("CI"), "true") == 0, want[3] = {argc == 1, argc == 1, argc == 1};
    signal(SIGPIPE, SIG_IGN);
    mkdir("build", 0755), mkdir("build/interop", 0755), mkdir("build/interop/logs", 0755);
    if (!cache) snprintf(def, sizeof def, "%s/.cache/libp2p.h", getenv("HOME") ? getenv("HOME") : "."), cache = def;
    for (int i = 1; i < argc; i++)
        for (int k = 0; k < 3; k++) want[k] |= strcmp(argv[i], impls[k]) == 0;
    for (int k = 0; k < 3; k++) {
        if (!want[k]) continue;
        snprintf(peer_bin[k], sizeof peer_bin[k], "%s/bin/peer-%s", cache, impls[k]);
        if (access(peer_bin[k], X_OK) != 0) {
            fprintf(stderr, "interop: SKIPPED %s: %s not built (run: scripts/install-peers.sh %s)\n", impls[k],
                    peer_bin[k], impls[k]);
            if (ci) CHECK(!"interop peer missing under CI=true");
            continue;
        }
        we_dial(k);
        they_dial(k);
    }
    TEST_END();
}
