/* test_relay.c - circuit relay v2 and DCUtR between libp2p.h and real go-libp2p, rust-libp2p and
 * js-libp2p peers, every role in turn, over TCP on 127.0.0.1 (no NAT: the NAT test bed in
 * tests/netns/ does that). The peers' "nat" mode (tests/interop/README.md, "NAT traversal")
 * runs a relay, a reserving listener or a circuit dialer.
 *   1. their relay: our A reserves, our B dials A through it (ping, echo)
 *   2. our relay: their listener reserves, their dialer comes through (echo)
 *   3. their relay + their listener, our dialer (ping, echo)
 *   4. our relay + our listener, their dialer (echo)
 *   5. DCUtR through our relay: our listener + their dialer, and their listener + our dialer
 *      (go and rust; js: see the README)
 * Usage: test_relay [go|rust|js ...]   (default: all three). Peers come from
 * $LP2P_CACHE/bin (scripts/install-peers.sh); under CI=true a missing peer is a failure. */
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

/* ---- child processes (as test_interop.c) ------------------------------------------------------ */
typedef struct peer_proc {
    pid_t pid;
    int fd;
    char buf[1 << 16];
    size_t len;
    int eof;
} peer_proc;

static char peer_bin[3][600];
static const char *impls[3] = {"go", "rust", "js"};

static int peer_start(peer_proc *p, const char *bin, const char *const *args) {
    int fds[2];
    char *argv[24];
    int n = 0;
    memset(p, 0, sizeof *p);
    if (pipe(fds) != 0) return -1;
    argv[n++] = (char *)bin;
    for (; args[n - 1] && n < 23; n++) argv[n] = (char *)args[n - 1];
    argv[n] = NULL;
    p->pid = fork();
    if (p->pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]), close(fds[1]);
        char log[600];
        snprintf(log, sizeof log, "build/interop/logs/relay-%s-%s-%d.log", strrchr(bin, '/') ? strrchr(bin, '/') + 1 : bin,
                 args[1] ? args[1] : "", (int)getpid());
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

/* Next stdout line containing needle, pumping our hosts meanwhile (blocking calls from main()
 * pump every host of the thread); copies it into out. */
static int peer_line(peer_proc *p, lp2p_host *h, const char *needle, char *out, size_t cap, int64_t deadline) {
    for (;;) {
        char *nl;
        while ((nl = memchr(p->buf, '\n', p->len)) != NULL) {
            *nl = 0;
            int hit = strstr(p->buf, needle) != NULL;
            if (hit && out && cap) {
                size_t k = LP2P__MIN(strlen(p->buf), cap - 1);
                memcpy(out, p->buf, k), out[k] = 0;
            }
            size_t used = (size_t)(nl - p->buf) + 1;
            memmove(p->buf, nl + 1, p->len - used);
            p->len -= used;
            if (hit) return 1;
        }
        if (p->eof || lp2p_now() > deadline) return 0;
        ssize_t n = read(p->fd, p->buf + p->len, sizeof p->buf - 1 - p->len);
        if (n > 0) p->len += (size_t)n;
        else if (n == 0) p->eof = 1;
        else if (h) lp2p_sleep(h, lp2p_deadline_in(5));
        else usleep(5000);
        if (p->len == sizeof p->buf - 1) p->len = 0;
    }
}

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
        if (h) lp2p_sleep(h, lp2p_deadline_in(5));
        else usleep(5000);
        char tmp[4096];
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

/* The first listen address of a "ready" line that is a TCP address (js lists circuits too). */
static int ready_tcp_addr(const char *line, char *out, size_t cap) {
    const char *s = strstr(line, "\"listenAddrs\":[");
    if (!s) return 0;
    s += strlen("\"listenAddrs\":[");
    while ((s = strchr(s, '"')) != NULL) {
        const char *e = strchr(s + 1, '"');
        if (!e) return 0;
        if (strncmp(s + 1, "/ip4/", 5) == 0 && !memmem(s, (size_t)(e - s), "p2p-circuit", 11)) {
            snprintf(out, cap, "%.*s", (int)(e - s - 1), s + 1);
            return 1;
        }
        s = e + 1;
        if (*s != ',') return 0;
    }
    return 0;
}

/* ---- our side ------------------------------------------------------------------------------- */
static void echo_handler(lp2p_stream *s, void *user) {
    char buf[16384];
    ptrdiff_t n;
    (void)user;
    while ((n = lp2p_stream_read(s, buf, sizeof buf, lp2p_deadline_in(30000))) > 0)
        if (lp2p_stream_write(s, buf, (size_t)n, lp2p_deadline_in(30000)) != LP2P_OK) break;
}

static lp2p_host *new_host(bool dcutr) {
    lp2p_config cfg;
    lp2p_host *h = NULL;
    memset(&cfg, 0, sizeof cfg);
    cfg.log_level = getenv("LP2P_TEST_LOG") ? LP2P_LOG_DEBUG : LP2P_LOG_ERROR;
    CHECK_EQ(lp2p_host_new(&cfg, &h), LP2P_OK);
    if (!h) return NULL;
    CHECK_EQ(lp2p_host_handle(h, ECHO, echo_handler, NULL), LP2P_OK);
    CHECK_EQ(lp2p_host_allow_limited(h, ECHO, true), LP2P_OK);
    if (!dcutr) lp2p_host_unhandle(h, "/libp2p/dcutr");
    return h;
}

static int echo_roundtrip(lp2p_host *a, const char *addr, size_t len) {
    lp2p_stream *s = NULL;
    int ok = 0;
    uint8_t *out = malloc(len + 1), *in = malloc(len + 1);
    for (size_t i = 0; i < len; i++) out[i] = (uint8_t)(i * 7 + 3);
    int rc = lp2p_stream_open(a, addr, ECHO, lp2p_deadline_in(10000), &s);
    if (rc == LP2P_OK) {
        size_t w = 0, r = 0;
        while (r < len) {
            size_t k = LP2P__MIN(len - w, (size_t)4096);
            if (k && lp2p_stream_write(s, out + w, k, lp2p_deadline_in(10000)) != LP2P_OK) break;
            w += k;
            if (k && w == len) lp2p_stream_close_write(s);
            while (r < w) {
                ptrdiff_t n = lp2p_stream_read(s, in + r, len - r, lp2p_deadline_in(10000));
                if (n <= 0) goto done;
                r += (size_t)n;
            }
        }
        ok = r == len && memcmp(in, out, len) == 0;
    done:
        lp2p_stream_close(s);
    } else {
        fprintf(stderr, "    echo via %s: open: %s\n", addr, lp2p_strerror(rc));
    }
    free(out), free(in);
    return ok;
}

static void circuit_of(const char *relay_addr, lp2p_host *target, char *out, size_t cap) {
    char id[LP2P_PEER_ID_STRLEN];
    lp2p_peer_id tid = lp2p_host_id(target);
    lp2p_peer_id_str(&tid, id, sizeof id);
    snprintf(out, cap, "%s/p2p-circuit/p2p/%s", relay_addr, id);
}

static int wait_event(lp2p_host *h, lp2p_event_type type, lp2p_event *out, int ms) {
    int64_t deadline = lp2p_deadline_in(ms);
    lp2p_event ev;
    while (lp2p_now() < deadline) {
        while (lp2p_host_next_event(h, &ev))
            if (ev.type == type) {
                if (out) *out = ev;
                return 1;
            }
        lp2p_sleep(h, lp2p_deadline_in(10));
    }
    return 0;
}

/* ---- scenarios ------------------------------------------------------------------------------- */
static int start_their_relay(int k, peer_proc *p, char *addr, size_t cap) {
    const char *args[] = {"nat", "relay", "--timeout", "120", NULL};
    char line[8192];
    if (peer_start(p, peer_bin[k], args) != 0) return 0;
    if (!peer_line(p, NULL, "\"ready\"", line, sizeof line, lp2p_deadline_in(20000)) ||
        !ready_tcp_addr(line, addr, cap)) {
        fprintf(stderr, "    %s relay did not start\n", impls[k]);
        peer_stop(p);
        return 0;
    }
    return 1;
}

/* Their listener reserving on relay_addr; circuit gets its /p2p-circuit address. */
static int start_their_listener(int k, peer_proc *p, lp2p_host *pump, const char *relay_addr, bool holepunch,
                                char *circuit, size_t cap) {
    const char *args[] = {"nat", "listen", "--relay", relay_addr, "--timeout", "120", holepunch ? NULL : "--no-holepunch",
                          NULL};
    char line[8192];
    if (peer_start(p, peer_bin[k], args) != 0) return 0;
    if (!peer_line(p, pump, "\"reserved\"", line, sizeof line, lp2p_deadline_in(20000)) ||
        !json_first(line, "addrs", circuit, cap)) {
        fprintf(stderr, "    %s listener did not reserve on %s\n", impls[k], relay_addr);
        peer_stop(p);
        return 0;
    }
    return 1;
}

/* Run their dialer through circuit with an action; returns 1 on exit 0 with the wanted line. */
static int run_their_dialer(int k, lp2p_host *pump, const char *circuit, const char *action, const char *arg,
                            const char *want, char *line, size_t cap) {
    peer_proc p;
    const char *args[] = {"nat", "dial", circuit, action, arg, "--timeout", "40", NULL};
    if (peer_start(&p, peer_bin[k], args) != 0) return 0;
    int got = peer_line(&p, pump, want, line, cap, lp2p_deadline_in(40000));
    int rc = peer_wait(&p, pump, lp2p_deadline_in(10000));
    peer_stop(&p);
    if (!got || rc != 0) fprintf(stderr, "    %s dial %s %s: exit %d, %s line %s\n", impls[k], action, arg, rc, want,
                                 got ? "seen" : "missing");
    return got && rc == 0;
}

static void their_relay(int k) {
    fprintf(stderr, "-- %s relay: our listener reserves, our dialer comes through\n", impls[k]);
    peer_proc r;
    char raddr[800], circuit[1000];
    if (!start_their_relay(k, &r, raddr, sizeof raddr)) {
        CHECK(0);
        return;
    }
    lp2p_host *a = new_host(false), *b = new_host(false);
    if (a && b) {
        int rc = lp2p_relay_reserve(a, raddr, lp2p_deadline_in(10000));
        CHECK_EQ(rc, LP2P_OK);
        circuit_of(raddr, a, circuit, sizeof circuit);
        int found = 0;
        for (int i = 0; i < lp2p_host_addr_count(a); i++) found |= strcmp(lp2p_host_addr(a, i), circuit) == 0;
        CHECK(found);
        CHECK(lp2p_ping(b, circuit, lp2p_deadline_in(10000)) >= 0);
        CHECK(echo_roundtrip(b, circuit, 10000));
        lp2p_peer_id aid = lp2p_host_id(a);
        CHECK_EQ(lp2p_host_is_direct(b, &aid), 0);
    }
    fprintf(stderr, "-- %s relay: their listener reserves, our dialer comes through\n", impls[k]);
    peer_proc l;
    if (b && start_their_listener(k, &l, b, raddr, false, circuit, sizeof circuit)) {
        CHECK(lp2p_ping(b, circuit, lp2p_deadline_in(10000)) >= 0);
        CHECK(echo_roundtrip(b, circuit, 10000));
        peer_stop(&l);
    } else {
        CHECK(0);
    }
    lp2p_host_free(b), lp2p_host_free(a);
    peer_stop(&r);
}

static void our_relay(int k) {
    fprintf(stderr, "-- our relay: their listener reserves, their dialer comes through\n");
    lp2p_host *r = new_host(false), *a = new_host(false);
    char line[8192], circuit[1000];
    if (!r || !a) return;
    CHECK_EQ(lp2p_relay_service_start(r, NULL), LP2P_OK);
    const char *raddr = lp2p_host_addr(r, 0);
    peer_proc l;
    if (start_their_listener(k, &l, r, raddr, false, circuit, sizeof circuit)) {
        CHECK(run_their_dialer(k, r, circuit, "echo", "10000", "\"echo\"", line, sizeof line));
        CHECK(lp2p_ping(a, circuit, lp2p_deadline_in(10000)) >= 0); /* and ours through ours to theirs */
        CHECK(echo_roundtrip(a, circuit, 10000));
        peer_stop(&l);
    } else {
        CHECK(0);
    }
    fprintf(stderr, "-- our relay: our listener reserves, their dialer comes through\n");
    CHECK_EQ(lp2p_relay_reserve(a, raddr, lp2p_deadline_in(10000)), LP2P_OK);
    circuit_of(raddr, a, circuit, sizeof circuit);
    CHECK(run_their_dialer(k, r, circuit, "echo", "10000", "\"echo\"", line, sizeof line));
    CHECK(run_their_dialer(k, r, circuit, "ping", "3", "\"ping\"", line, sizeof line));
    lp2p_host_free(a), lp2p_host_free(r);
}

static void dcutr(int k) {
    fprintf(stderr, "-- DCUtR through our relay: our listener (initiator) and %s dialer\n", impls[k]);
    lp2p_host *r = new_host(false), *a = new_host(true), *b = new_host(true);
    char line[8192], circuit[1000];
    if (!r || !a || !b) return;
    CHECK_EQ(lp2p_relay_service_start(r, NULL), LP2P_OK);
    const char *raddr = lp2p_host_addr(r, 0);
    lp2p_peer_id rid = lp2p_host_id(r);
    CHECK_EQ(lp2p_relay_reserve(a, raddr, lp2p_deadline_in(10000)), LP2P_OK);
    circuit_of(raddr, a, circuit, sizeof circuit);
    while (lp2p_host_next_event(a, &(lp2p_event){0})) {}
    CHECK(run_their_dialer(k, r, circuit, "direct", "10000", "\"direct-ready\"", line, sizeof line));
    /* A saw the direct connection: DCUtR succeeded, or the peer reached our listen address on its
     * own (rust dials a relayed peer's listen addresses, reachable on loopback, and then drops
     * the relayed connection; it may exit before our DCUtR task looks) */
    lp2p_event ev;
    int direct = 0;
    int64_t until = lp2p_deadline_in(15000);
    while (!direct && lp2p_now() < until) {
        while (!direct && lp2p_host_next_event(a, &ev))
            direct = (ev.type == LP2P_EVENT_HOLE_PUNCH && ev.err == 0) ||
                     (ev.type == LP2P_EVENT_PEER_CONNECTED && ev.addr && !strstr(ev.addr, "p2p-circuit") &&
                      !lp2p_peer_id_eq(&ev.peer, &rid));
        if (!direct) lp2p_sleep(a, lp2p_deadline_in(10));
    }
    CHECK(direct);
    fprintf(stderr, "    %s\n", line);

    fprintf(stderr, "-- DCUtR through our relay: %s listener (initiator) and our dialer\n", impls[k]);
    peer_proc l;
    if (start_their_listener(k, &l, b, raddr, true, circuit, sizeof circuit)) {
        lp2p_host_allow_limited(b, ECHO, false); /* the echo below must wait for the direct connection */
        while (lp2p_host_next_event(b, &(lp2p_event){0})) {}
        int64_t t0 = lp2p_now();
        CHECK_EQ(lp2p_host_connect(b, circuit, lp2p_deadline_in(10000)), LP2P_OK);
        CHECK(wait_event(b, LP2P_EVENT_HOLE_PUNCH, &ev, 30000) && ev.err == 0);
        fprintf(stderr, "    direct after %lld ms\n", (long long)(lp2p_now() - t0));
        lp2p_peer_id pid;
        char id[LP2P_PEER_ID_STRLEN];
        const char *p2p = strrchr(circuit, '/');
        snprintf(id, sizeof id, "%s", p2p ? p2p + 1 : "");
        CHECK(lp2p_peer_id_parse(id, &pid) == LP2P_OK && lp2p_host_is_direct(b, &pid) == 1);
        CHECK(echo_roundtrip(b, circuit, 100000));
        peer_stop(&l);
    } else {
        CHECK(0);
    }
    lp2p_host_free(b), lp2p_host_free(a), lp2p_host_free(r);
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
            fprintf(stderr, "relay interop: SKIPPED %s: %s not built (run: scripts/install-peers.sh %s)\n", impls[k],
                    peer_bin[k], impls[k]);
            if (ci) CHECK(!"interop peer missing under CI=true");
            continue;
        }
        their_relay(k);
        our_relay(k);
        if (k != 2) dcutr(k);
    }
    TEST_END();
}
