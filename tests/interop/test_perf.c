/* test_perf.c - /perf/1.0.0 (perf/perf.md) between libp2p.h and the go, rust and js reference
 * peers (tests/interop/README.md), both roles, over TCP on 127.0.0.1:
 *   their server (`peer-X listen --seed 00..`, the well-known test-plans server identity) against
 *     lp2p_perf and against build/bin/lp2p-perf (the test-plans client contract: JSON lines);
 *   their perf client (`peer-X dial <addr> perf <up> <down>`) against `lp2p-perf --run-server`
 *     and against an in-process host with lp2p_perf_serve (also over one of its limits).
 * Sizes: 1 MiB both ways, 0 / 1 MiB, 1 MiB / 0, 0 / 0, and 16 MiB both ways through the API.
 * Peers come from $LP2P_CACHE/bin (scripts/install-peers.sh); under CI=true a missing peer is a
 * failure, elsewhere it is SKIPPED with a message. Every process is ended by PID.
 * Usage: test_perf [go|rust|js ...]   (default: all three) */
#define LIBP2P_IMPLEMENTATION
#include "libp2p.h"
#include "tests/test.h"
#include "tests/interop/peer.h"

#define MIB 1048576ull
#define SERVER_ID "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN" /* all-zero Ed25519 seed */
#define ZERO_SEED "0000000000000000000000000000000000000000000000000000000000000000"
#define LP2P_PERF_BIN "build/bin/lp2p-perf"

static char peer_bin[3][600];
static const char *impls[3] = {"go", "rust", "js"};
static const unsigned long long sizes[][2] = {{MIB, MIB}, {0, MIB}, {MIB, 0}, {0, 0}};

static lp2p_host *new_host(void) {
    lp2p_config cfg;
    lp2p_host *h = NULL;
    memset(&cfg, 0, sizeof cfg);
    cfg.log_level = getenv("LP2P_TEST_LOG") ? LP2P_LOG_DEBUG : LP2P_LOG_ERROR;
    return lp2p_host_new(&cfg, &h) == LP2P_OK ? h : NULL;
}

/* ---- role 1: their server, our clients ---------------------------------------------------- */
static int api_run(lp2p_host *h, const char *addr, unsigned long long up, unsigned long long down) {
    lp2p_perf_result r;
    int rc = lp2p_perf(h, addr, up, down, NULL, &r, lp2p_deadline_in(60000));
    if (rc != LP2P_OK) {
        fprintf(stderr, "    lp2p_perf %llu/%llu: %s\n", up, down, lp2p_strerror(rc));
        return 0;
    }
    return r.upload_bytes == up && r.download_bytes == down;
}

/* build/bin/lp2p-perf as a client; checks its exit status and its final JSON line. */
static int bin_run(int port, unsigned long long up, unsigned long long down) {
    char addr[64], ups[32], downs[32], line[4096];
    peer_proc p;
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    snprintf(ups, sizeof ups, "%llu", up), snprintf(downs, sizeof downs, "%llu", down);
    const char *args[] = {"--server-address", addr, "--transport", "tcp", "--upload-bytes", ups,
                          "--download-bytes", downs, "--timeout", "60", NULL};
    if (peer_start(&p, LP2P_PERF_BIN, args) != 0) return 0;
    int final = peer_line(&p, NULL, "\"type\":\"final\"", line, sizeof line, lp2p_deadline_in(60000));
    int rc = peer_wait(&p, NULL, lp2p_deadline_in(10000));
    peer_stop(&p);
    int ok = rc == 0 && final && json_u64(line, "uploadBytes") == (long long)up &&
             json_u64(line, "downloadBytes") == (long long)down && strstr(line, "\"timeSeconds\":") != NULL;
    if (!ok) fprintf(stderr, "    lp2p-perf %llu/%llu: exit %d, final line '%s'\n", up, down, rc, final ? line : "");
    return ok;
}

static void their_server(int impl) {
    char line[65536], addr[600], id[128];
    const char *args[] = {"listen", "--seed", ZERO_SEED, "--timeout", "300", NULL};
    peer_proc p;
    int port = 0;
    fprintf(stderr, "-- %s perf server, libp2p.h clients (lp2p_perf and lp2p-perf)\n", impls[impl]);
    lp2p_host *h = new_host();
    if (!h || peer_start(&p, peer_bin[impl], args) != 0) {
        CHECK(!"start");
        if (h) lp2p_host_free(h);
        return;
    }
    int ready = peer_line(&p, NULL, "\"ready\"", line, sizeof line, lp2p_deadline_in(60000)) &&
                json_first(line, "listenAddrs", addr, sizeof addr) && json_str(line, "peerId", id, sizeof id) &&
                sscanf(addr, "/ip4/127.0.0.1/tcp/%d/", &port) == 1;
    CHECK(ready);
    if (ready) {
        CHECK_STR(id, SERVER_ID); /* the identity lp2p-perf assumes */
        for (size_t i = 0; i < LP2P__COUNT(sizes); i++) CHECK(api_run(h, addr, sizes[i][0], sizes[i][1]));
        CHECK(api_run(h, addr, 16 * MIB, 16 * MIB));
        CHECK(bin_run(port, MIB, MIB));
        CHECK(bin_run(port, 0, MIB));
        CHECK(bin_run(port, 0, 0));
    }
    peer_stop(&p);
    lp2p_host_free(h);
}

/* ---- role 2: their client, our servers ---------------------------------------------------------- */
/* `peer-X dial addr perf up down`: 1 if it reported exactly those counts and exited 0, else 0. */
static int their_perf(int impl, lp2p_host *h, const char *addr, unsigned long long up, unsigned long long down,
                      int quiet) {
    char ups[32], downs[32], line[4096];
    peer_proc p;
    snprintf(ups, sizeof ups, "%llu", up), snprintf(downs, sizeof downs, "%llu", down);
    const char *args[] = {"dial", addr, "perf", ups, downs, "--timeout", "60", NULL};
    if (peer_start(&p, peer_bin[impl], args) != 0) return 0;
    int got = peer_line(&p, h, "\"event\":\"perf\"", line, sizeof line, lp2p_deadline_in(60000));
    int rc = peer_wait(&p, h, lp2p_deadline_in(10000));
    peer_stop(&p);
    int ok = rc == 0 && got && json_u64(line, "uploadBytes") == (long long)up &&
             json_u64(line, "downloadBytes") == (long long)down;
    if (!ok && !quiet)
        fprintf(stderr, "    %s dial perf %llu/%llu: exit %d, line '%s'\n", impls[impl], up, down, rc, got ? line : "");
    return ok;
}

static void our_servers(int impl) {
    char line[4096], addr[4096];
    const char *args[] = {"--run-server", "--server-address", "127.0.0.1:0", "--timeout", "300", NULL};
    peer_proc srv;
    fprintf(stderr, "-- lp2p-perf --run-server and a libp2p.h host, %s perf client\n", impls[impl]);
    if (peer_start(&srv, LP2P_PERF_BIN, args) != 0) {
        CHECK(!"start lp2p-perf");
        return;
    }
    int ready = peer_line(&srv, NULL, "/p2p/", line, sizeof line, lp2p_deadline_in(10000));
    CHECK(ready);
    if (ready) {
        snprintf(addr, sizeof addr, "%s", line);
        CHECK(strstr(addr, "/p2p/" SERVER_ID) != NULL);
        for (size_t i = 0; i < LP2P__COUNT(sizes); i++) CHECK(their_perf(impl, NULL, addr, sizes[i][0], sizes[i][1], 0));
    }
    CHECK_EQ(peer_stop(&srv), 0); /* SIGTERM: clean exit */

    /* an in-process host: serves them, and enforces its byte cap on them */
    lp2p_host *h = new_host();
    lp2p_perf_server_config c;
    memset(&c, 0, sizeof c);
    c.max_download_bytes = 2 * MIB;
    if (!h) {
        CHECK(!"host");
        return;
    }
    CHECK_EQ(lp2p_perf_serve(h, &c), LP2P_OK);
    CHECK(their_perf(impl, h, lp2p_host_addr(h, 0), MIB, 2 * MIB, 0));
    CHECK(!their_perf(impl, h, lp2p_host_addr(h, 0), 0, 2 * MIB + 1, 1)); /* reset: their client fails */
    CHECK(their_perf(impl, h, lp2p_host_addr(h, 0), 0, 0, 0));           /* and we keep serving */
    lp2p_host_free(h);
}

int main(int argc, char **argv) {
    const char *cache = getenv("LP2P_CACHE");
    char def[512];
    int ci = getenv("CI") && strcmp(getenv("CI"), "true") == 0, want[3] = {argc == 1, argc == 1, argc == 1};
    signal(SIGPIPE, SIG_IGN);
    mkdir("build", 0755), mkdir("build/interop", 0755), mkdir("build/interop/logs", 0755);
    if (access(LP2P_PERF_BIN, X_OK) != 0) {
        fprintf(stderr, "perf interop: %s not built (run: make %s)\n", LP2P_PERF_BIN, LP2P_PERF_BIN);
        CHECK(!"lp2p-perf missing");
        TEST_END();
    }
    if (!cache) snprintf(def, sizeof def, "%s/.cache/libp2p.h", getenv("HOME") ? getenv("HOME") : "."), cache = def;
    for (int i = 1; i < argc; i++)
        for (int k = 0; k < 3; k++) want[k] |= strcmp(argv[i], impls[k]) == 0;
    for (int k = 0; k < 3; k++) {
        if (!want[k]) continue;
        snprintf(peer_bin[k], sizeof peer_bin[k], "%s/bin/peer-%s", cache, impls[k]);
        if (access(peer_bin[k], X_OK) != 0) {
            fprintf(stderr, "perf interop: SKIPPED %s: %s not built (run: scripts/install-peers.sh %s)\n", impls[k],
                    peer_bin[k], impls[k]);
            if (ci) CHECK(!"interop peer missing under CI=true");
            continue;
        }
        their_server(k);
        our_servers(k);
    }
    TEST_END();
}
