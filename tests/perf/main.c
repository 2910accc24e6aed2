/* main.c - lp2p-perf: the libp2p/test-plans perf application (perf/README.md "Adding a new
 * implementation"), tcp + noise + yamux, on lp2p_perf / lp2p_perf_serve (perf/perf.md).
 *
 *   server: lp2p-perf --run-server --server-address <ip>:<port> [--timeout <s>] [-v]
 *     Identity from the all-zero 32-byte Ed25519 seed, so clients know the peer ID without an
 *     exchange (12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN, as in the go and rust
 *     perf servers of test-plans). Prints its multiaddrs (with /p2p/) on stdout and serves
 *     /perf/1.0.0 until killed (SIGINT/SIGTERM: clean exit), or for --timeout seconds.
 *     Port 0 picks a free port (the printed address has it).
 *   client: lp2p-perf --server-address <ip>:<port> --transport tcp --upload-bytes N
 *                     --download-bytes M [--timeout <s>] [-v]
 *     stdout: one JSON line per second {"type":"intermediary","timeSeconds":T,"uploadBytes":U,
 *     "downloadBytes":D} (T = length of the interval, U/D = bytes moved in it), then
 *     {"type":"final",...} whose time covers connecting, uploading and downloading and whose
 *     byte counts are the totals. Exit 0 on success, 1 on failure, 2 on bad usage.
 * <ip> is IPv4 (127.0.0.1), IPv6 in brackets ([::1]:4001) or, for the client, a DNS name
 * (dialed as /dns4/<name>). Flags also take --flag=value.
 * Logs go to stderr. Build: make build/bin/lp2p-perf. */
#define LIBP2P_IMPLEMENTATION
#include "libp2p.h"

#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SERVER_ID "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"

typedef struct opts {
    bool server, verbose;
    const char *address, *transport;
    unsigned long long upload, download;
    double timeout_s;
} opts;

static lp2p_host *g_host;

static void usage(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "lp2p-perf: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nusage: lp2p-perf --run-server --server-address <ip>:<port> [--timeout <s>] [-v]\n"
                    "       lp2p-perf --server-address <ip>:<port> --transport tcp --upload-bytes N "
                    "--download-bytes M [--timeout <s>] [-v]\n");
    exit(2);
}

static unsigned long long parse_count(const char *flag, const char *v) {
    char *end;
    if (!v || !*v || *v == '-') usage("%s: expected a byte count", flag);
    unsigned long long n = strtoull(v, &end, 10);
    if (*end) usage("%s: expected a byte count, got '%s'", flag, v);
    return n;
}

static void parse_args(int argc, char **argv, opts *o) {
    memset(o, 0, sizeof *o);
    o->transport = "tcp";
    for (int i = 1; i < argc; i++) {
        char flag[64];
        const char *a = argv[i], *eq = strchr(a, '='), *val;
        snprintf(flag, sizeof flag, "%.*s", eq ? (int)(eq - a) : (int)strlen(a), a);
        if (!strcmp(flag, "--run-server")) {
            o->server = true;
            continue;
        }
        if (!strcmp(flag, "-v") || !strcmp(flag, "--verbose")) {
            o->verbose = true;
            continue;
        }
        val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!val) usage("%s needs a value", flag);
        if (!strcmp(flag, "--server-address")) o->address = val;
        else if (!strcmp(flag, "--transport")) o->transport = val;
        else if (!strcmp(flag, "--upload-bytes")) o->upload = parse_count(flag, val);
        else if (!strcmp(flag, "--download-bytes")) o->download = parse_count(flag, val);
        else if (!strcmp(flag, "--timeout")) o->timeout_s = atof(val);
        else usage("unknown flag %s", flag);
    }
    if (!o->address) usage("--server-address is required");
}

/* "<ip>:<port>", "[<ip6>]:<port>" or "<name>:<port>" -> "/ip4|ip6|dns4/<host>/tcp/<port>" */
static void to_multiaddr(const char *hostport, char *out, size_t cap) {
    const char *colon = strrchr(hostport, ':');
    if (!colon || colon == hostport || !colon[1]) usage("--server-address: expected <ip>:<port>, got '%s'", hostport);
    if (hostport[0] == '[') {
        if (colon[-1] != ']') usage("--server-address: expected [<ip6>]:<port>, got '%s'", hostport);
        snprintf(out, cap, "/ip6/%.*s/tcp/%s", (int)(colon - hostport - 2), hostport + 1, colon + 1);
    } else {
        char host[256];
        struct in_addr ip4;
        snprintf(host, sizeof host, "%.*s", (int)(colon - hostport), hostport);
        /* a name (e.g. a docker-compose service) is resolved by the dialer: /dns4 */
        snprintf(out, cap, "/%s/%s/tcp/%s", inet_pton(AF_INET, host, &ip4) == 1 ? "ip4" : "dns4", host, colon + 1);
    }
}

static void on_signal(int sig) {
    (void)sig;
    if (g_host) lp2p_host_stop(g_host); /* an atomic store and a write(): async-signal-safe */
}

/* --timeout for the server: a task on the host's loop that stops it. */
static void stop_after(void *arg) {
    int64_t deadline = *(int64_t *)arg;
    if (lp2p_sleep(g_host, deadline) == LP2P_OK) {
        fprintf(stderr, "lp2p-perf: server --timeout reached\n");
        lp2p_host_stop(g_host);
    }
}

static int run_server(const opts *o) {
    char ma[300];
    lp2p_config cfg;
    memset(&cfg, 0, sizeof cfg);
    to_multiaddr(o->address, ma, sizeof ma);
    cfg.use_identity_seed = true; /* all-zero seed: the well-known test-plans server identity */
    cfg.listen_addrs[0] = ma;
    cfg.log_level = o->verbose ? LP2P_LOG_INFO : LP2P_LOG_WARN;
    int rc = lp2p_host_new(&cfg, &g_host);
    if (rc != LP2P_OK) {
        fprintf(stderr, "lp2p-perf: cannot listen on %s: %s\n", ma, lp2p_strerror(rc));
        return 1;
    }
    if ((rc = lp2p_perf_serve(g_host, NULL)) != LP2P_OK) {
        fprintf(stderr, "lp2p-perf: cannot serve perf: %s\n", lp2p_strerror(rc));
        lp2p_host_free(g_host);
        return 1;
    }
    for (int i = 0; i < lp2p_host_addr_count(g_host); i++) printf("%s\n", lp2p_host_addr(g_host, i));
    fflush(stdout);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    int64_t deadline = lp2p_deadline_in((int64_t)(o->timeout_s * 1000));
    if (o->timeout_s > 0) lp2p_go(g_host, stop_after, &deadline);
    lp2p_host_run(g_host);
    lp2p_host_free(g_host);
    return 0;
}

static void print_line(const char *type, double seconds, uint64_t up, uint64_t down) {
    printf("{\"type\":\"%s\",\"timeSeconds\":%.9f,\"uploadBytes\":%llu,\"downloadBytes\":%llu}\n", type, seconds,
           (unsigned long long)up, (unsigned long long)down);
    fflush(stdout);
}

static void on_progress(void *user, const lp2p_perf_report *r) {
    (void)user;
    if (!r->done) print_line("intermediary", (double)r->interval_us / 1e6, r->upload_bytes, r->download_bytes);
}

static int run_client(const opts *o) {
    char ma[400];
    lp2p_config cfg;
    lp2p_host *h;
    if (strcmp(o->transport, "tcp") != 0) {
        fprintf(stderr, "lp2p-perf: transport '%s' is not supported (only tcp)\n", o->transport);
        return 1;
    }
    to_multiaddr(o->address, ma, sizeof ma - 60);
    strcat(ma, "/p2p/" SERVER_ID);
    memset(&cfg, 0, sizeof cfg);
    cfg.no_listen = true;
    cfg.log_level = o->verbose ? LP2P_LOG_INFO : LP2P_LOG_WARN;
    int rc = lp2p_host_new(&cfg, &h);
    if (rc != LP2P_OK) {
        fprintf(stderr, "lp2p-perf: cannot start the host: %s\n", lp2p_strerror(rc));
        return 1;
    }
    lp2p_perf_options popt;
    lp2p_perf_result res;
    memset(&popt, 0, sizeof popt);
    popt.progress = on_progress;
    int64_t deadline = o->timeout_s > 0 ? lp2p_deadline_in((int64_t)(o->timeout_s * 1000)) : LP2P_FOREVER;
    rc = lp2p_perf(h, ma, o->upload, o->download, &popt, &res, deadline);
    if (rc == LP2P_OK) print_line("final", (double)res.total_us / 1e6, res.upload_bytes, res.download_bytes);
    else fprintf(stderr, "lp2p-perf: perf with %s failed: %s\n", ma, lp2p_strerror(rc));
    if (o->verbose && rc == LP2P_OK)
        fprintf(stderr, "lp2p-perf: connect %.3f ms, stream %.3f ms, upload %.3f ms, download %.3f ms\n",
                res.connect_us / 1e3, res.stream_us / 1e3, res.upload_us / 1e3, res.download_us / 1e3);
    lp2p_host_free(h);
    return rc == LP2P_OK ? 0 : 1;
}

int main(int argc, char **argv) {
    opts o;
    signal(SIGPIPE, SIG_IGN);
    parse_args(argc, argv, &o);
    return o.server ? run_server(&o) : run_client(&o);
}
