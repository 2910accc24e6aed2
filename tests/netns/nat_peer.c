/* nat_peer.c - libp2p.h in the "nat" roles of the interop peers' contract
 * (tests/interop/README.md, "NAT traversal"), so the NAT test bed (tests/netns/) drives our
 * host exactly like peer-go / peer-rust / peer-js:
 *   lp2p-nat-peer relay [flags]                            relay service
 *   lp2p-nat-peer listen --relay <relay/p2p/ID> [flags]    reserve, serve /echo/1.0.0, DCUtR
 *   lp2p-nat-peer dial <circuit> <ping n|echo bytes|direct bytes|hold s> [flags]
 *   lp2p-nat-peer autonat --connect <addr/p2p/ID> [flags]  connect, report AutoNAT verdicts
 *   lp2p-nat-peer mdns [--interface <IPv4>] [flags]    mDNS: print discovered peers, ping each once
 * flags: --seed <64 hex> --listen <multiaddr> --timeout <seconds> --no-holepunch
 *        --autonat-server (serve AutoNAT v2/v1, dialing private and documentation ranges too:
 *        test beds only)
 * Stdout: one JSON object per line ("ready", "reserved", "connected", "direct", "dialed",
 * "direct-ready", "echo", "ping", "holepunch-failed", "error"). Exit 0 ok, 1 failure, 2 usage,
 * 3 timeout. */
#define LIBP2P_IMPLEMENTATION
#include "libp2p.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ECHO "/echo/1.0.0"

static int64_t t_end;

static void usage(void) {
    fprintf(stderr, "usage: lp2p-nat-peer relay|listen --relay <addr>|dial <circuit> <action> [arg] "
                    "[--seed hex] [--listen ma] [--timeout s] [--no-holepunch]\n");
    exit(2);
}

static void fail(const char *what, int rc) {
    printf("{\"event\":\"error\",\"message\":\"%s: %s\"}\n", what, lp2p_strerror(rc));
    fflush(stdout);
    exit(1);
}

static void echo_handler(lp2p_stream *s, void *user) {
    char buf[16384];
    ptrdiff_t n;
    (void)user;
    while ((n = lp2p_stream_read(s, buf, sizeof buf, lp2p_deadline_in(30000))) > 0)
        if (lp2p_stream_write(s, buf, (size_t)n, lp2p_deadline_in(30000)) != LP2P_OK) break;
}

static lp2p_peer_id pending_ping[8]; /* discovered peers to ping once (mdns mode) */
static int pending_ping_n;

static void print_events(lp2p_host *h) {
    lp2p_event ev;
    char id[LP2P_PEER_ID_STRLEN];
    while (lp2p_host_next_event(h, &ev)) {
        lp2p_peer_id_str(&ev.peer, id, sizeof id);
        switch (ev.type) {
        case LP2P_EVENT_PEER_CONNECTED:
            printf("{\"event\":\"connected\",\"peerId\":\"%s\",\"relayed\":%s,\"addr\":\"%s\"}\n", id,
                   ev.addr && strstr(ev.addr, "p2p-circuit") ? "true" : "false", ev.addr ? ev.addr : "");
            break;
        case LP2P_EVENT_PEER_DISCONNECTED: printf("{\"event\":\"disconnected\",\"peerId\":\"%s\"}\n", id); break;
        case LP2P_EVENT_HOLE_PUNCH:
            if (ev.err == 0) printf("{\"event\":\"direct\",\"peerId\":\"%s\",\"addr\":\"%s\"}\n", id, ev.addr ? ev.addr : "");
            else printf("{\"event\":\"holepunch-failed\",\"peerId\":\"%s\",\"message\":\"%s\"}\n", id, lp2p_strerror(ev.err));
            break;
        case LP2P_EVENT_RELAY_RESERVED:
            printf("{\"event\":\"reserved\",\"relay\":\"%s\",\"addrs\":[\"%s\"]}\n", id, ev.addr ? ev.addr : "");
            break;
        case LP2P_EVENT_RELAY_LOST: printf("{\"event\":\"reservation-lost\",\"relay\":\"%s\"}\n", id); break;
        case LP2P_EVENT_PEER_DISCOVERED:
            printf("{\"event\":\"discovered\",\"peerId\":\"%s\",\"addrs\":[\"%s\"]}\n", id, ev.addr ? ev.addr : "");
            if (pending_ping_n < 8) pending_ping[pending_ping_n++] = ev.peer;
            break;
        case LP2P_EVENT_NAT_STATUS:
            printf("{\"event\":\"nat\",\"status\":\"%s\"}\n", ev.err == LP2P_NAT_PUBLIC ? "public" : ev.err == LP2P_NAT_PRIVATE ? "private" : "unknown");
            break;
        default: break;
        }
        fflush(stdout);
    }
}

static void ready(lp2p_host *h) {
    lp2p_peer_id me = lp2p_host_id(h);
    char id[LP2P_PEER_ID_STRLEN];
    lp2p_peer_id_str(&me, id, sizeof id);
    printf("{\"event\":\"ready\",\"peerId\":\"%s\",\"listenAddrs\":[", id);
    for (int i = 0; i < lp2p_host_addr_count(h); i++) printf("%s\"%s\"", i ? "," : "", lp2p_host_addr(h, i));
    printf("]}\n");
    fflush(stdout);
}

static void serve_forever(lp2p_host *h) {
    for (;;) {
        lp2p_host_poll(h, 50);
        print_events(h);
        if (lp2p_now() > t_end) exit(3);
    }
}

static int echo(lp2p_host *h, const char *addr, size_t len) {
    lp2p_stream *s = NULL;
    uint8_t *out = malloc(len + 1), *in = malloc(len + 1);
    int rc = lp2p_stream_open(h, addr, ECHO, t_end, &s);
    size_t w = 0, r = 0;
    for (size_t i = 0; i < len; i++) out[i] = (uint8_t)(i * 7);
    while (rc == LP2P_OK && r < len) {
        size_t k = len - w < 8192 ? len - w : 8192;
        if (k && (rc = lp2p_stream_write(s, out + w, k, t_end)) != LP2P_OK) break;
        w += k;
        if (k && w == len) lp2p_stream_close_write(s);
        while (r < w) {
            ptrdiff_t n = lp2p_stream_read(s, in + r, len - r, t_end);
            if (n <= 0) {
                rc = n < 0 ? (int)n : LP2P_ERR_EOF;
                break;
            }
            r += (size_t)n;
        }
    }
    if (rc == LP2P_OK && memcmp(in, out, len) != 0) rc = LP2P_ERR_PROTOCOL;
    if (s) lp2p_stream_close(s);
    free(in), free(out);
    return rc;
}

int main(int argc, char **argv) {
    const char *pos[8] = {0}, *listen = "/ip4/127.0.0.1/tcp/0", *relay = NULL, *seed = NULL, *connect = NULL;
    bool autonat_server = false;
    const char *iface = NULL;
    double timeout = 60;
    int npos = 0;
    bool holepunch = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0) {
            if (npos < 8) pos[npos++] = a;
            continue;
        }
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--listen") && val) listen = val, i++;
        else if (!strcmp(a, "--relay") && val) relay = val, i++;
        else if (!strcmp(a, "--seed") && val) seed = val, i++;
        else if (!strcmp(a, "--timeout") && val) timeout = atof(val), i++;
        else if (!strcmp(a, "--no-holepunch")) holepunch = false;
        else if (!strcmp(a, "--autonat-server")) autonat_server = true;
        else if (!strcmp(a, "--connect") && val) connect = val, i++;
        else if (!strcmp(a, "--interface") && val) iface = val, i++;
        else usage();
    }
    if (npos < 1) usage();
    t_end = lp2p_deadline_in((int64_t)(timeout * 1000));
    lp2p_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.listen_addrs[0] = listen;
    cfg.log_level = getenv("LP2P_LOG") ? LP2P_LOG_DEBUG : LP2P_LOG_WARN;
    if (seed) {
        if (strlen(seed) != 64) usage();
        for (int i = 0; i < 32; i++) {
            unsigned v;
            sscanf(seed + 2 * i, "%2x", &v);
            cfg.identity_seed[i] = (uint8_t)v;
        }
        cfg.use_identity_seed = true;
    }
    lp2p_host *h = NULL;
    int rc = lp2p_host_new(&cfg, &h);
    if (rc) fail("host", rc);
    lp2p_host_handle(h, ECHO, echo_handler, NULL);
    lp2p_host_allow_limited(h, ECHO, true); /* the contract: echo runs over relayed connections */
    if (!holepunch) lp2p_host_unhandle(h, "/libp2p/dcutr");
    if (autonat_server) {
        lp2p_autonat_config ac = {true, 0};
        if ((rc = lp2p_autonat_service_start(h, &ac))) fail("autonat", rc);
    }

    if (!strcmp(pos[0], "relay")) {
        if ((rc = lp2p_relay_service_start(h, NULL))) fail("relay", rc);
        ready(h);
        serve_forever(h);
    } else if (!strcmp(pos[0], "listen")) {
        if (!relay) usage();
        if ((rc = lp2p_relay_reserve(h, relay, t_end))) fail("reserve", rc);
        print_events(h);
        ready(h);
        serve_forever(h);
    } else if (!strcmp(pos[0], "mdns")) {
        lp2p_mdns_config mc = {1000, false, NULL, iface};
        if ((rc = lp2p_mdns_start(h, &mc))) fail("mdns", rc);
        ready(h);
        for (;;) {
            lp2p_host_poll(h, 50);
            print_events(h);
            while (pending_ping_n > 0) {
                lp2p_peer_id p = pending_ping[--pending_ping_n];
                char id[LP2P_PEER_ID_STRLEN];
                lp2p_peer_id_str(&p, id, sizeof id);
                int rtt = lp2p_ping(h, id, lp2p_deadline_in(5000));
                if (rtt >= 0) printf("{\"event\":\"ping\",\"peerId\":\"%s\",\"rttMs\":%.3f}\n", id, rtt / 1e3); /* lp2p_ping: µs */
                else printf("{\"event\":\"ping-failed\",\"peerId\":\"%s\",\"message\":\"%s\"}\n", id, lp2p_strerror(rtt));
                fflush(stdout);
            }
            if (lp2p_now() > t_end) exit(3);
        }
    } else if (!strcmp(pos[0], "autonat")) {
        if (!connect) usage();
        ready(h);
        if ((rc = lp2p_host_connect(h, connect, t_end))) fail("connect", rc);
        serve_forever(h);
    } else if (!strcmp(pos[0], "dial") && npos >= 3) {
        const char *target = pos[1], *action = pos[2];
        long arg = npos >= 4 ? atol(pos[3]) : 1;
        const char *p2p = strrchr(target, '/');
        lp2p_peer_id peer;
        if (!p2p || lp2p_peer_id_parse(p2p + 1, &peer)) usage();
        int64_t t0 = lp2p_now();
        if ((rc = lp2p_host_connect(h, target, t_end))) fail("dial", rc);
        printf("{\"event\":\"dialed\",\"peerId\":\"%s\",\"ms\":%lld}\n", p2p + 1, (long long)(lp2p_now() - t0));
        print_events(h);
        if (!strcmp(action, "ping")) {
            for (long i = 0; i < arg; i++) {
                int rtt = lp2p_ping(h, target, t_end);
                if (rtt < 0) fail("ping", rtt);
                printf("{\"event\":\"ping\",\"rttMs\":%.3f}\n", rtt / 1e3); /* lp2p_ping: µs */
            }
        } else if (!strcmp(action, "echo") || !strcmp(action, "direct")) {
            if (!strcmp(action, "direct")) {
                lp2p_host_allow_limited(h, ECHO, false);
                while (lp2p_host_is_direct(h, &peer) != 1) {
                    if (lp2p_now() > t_end) fail("no direct connection", LP2P_ERR_TIMEOUT);
                    lp2p_host_poll(h, 10);
                    print_events(h);
                }
                printf("{\"event\":\"direct-ready\",\"peerId\":\"%s\",\"ms\":%lld}\n", p2p + 1, (long long)(lp2p_now() - t0));
                fflush(stdout);
            }
            int64_t t1 = lp2p_now();
            if ((rc = echo(h, target, (size_t)arg))) fail("echo", rc);
            printf("{\"event\":\"echo\",\"ok\":true,\"streams\":1,\"bytes\":%ld,\"ms\":%lld}\n", arg,
                   (long long)(lp2p_now() - t1));
        } else if (!strcmp(action, "hold")) {
            lp2p_sleep(h, lp2p_deadline_in(arg * 1000));
            printf("{\"event\":\"hold\",\"ok\":%s,\"seconds\":%ld}\n", lp2p_host_is_connected(h, &peer) ? "true" : "false",
                   arg);
        } else {
            usage();
        }
        print_events(h);
        fflush(stdout);
        lp2p_host_free(h);
        return 0;
    } else {
        usage();
    }
    return 0;
}
