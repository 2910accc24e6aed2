/* nat.c - NAT traversal subcommands of build/bin/lp2p: `relay serve` (a circuit relay v2
 * service), `serve [--relay <addr>]` (a node answering ping, identify and /echo/1.0.0, reserving
 * on a relay so NATed peers can be reached through it), `echo <addr> <text> [--direct]`, and the
 * event lines `ping` prints while it runs over a relayed connection. Specs: relay/circuit-v2.md,
 * relay/DCUtR.md. Only the public API of libp2p.h is used.
 * Event lines (stdout, JSON): ready, reserved, reservation-lost, connected {relayed}, disconnected,
 * direct {peerId, addr} (DCUtR made a direct connection), hole-punch-failed, nat {status}. */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

#define ECHO_PROTOCOL "/echo/1.0.0"
#define ECHO_MAX 65536 /* bytes `lp2p echo` sends and reads back */

static void print_event_peer(const char *event, const char *field, const lp2p_event *ev) {
    char id[LP2P_PEER_ID_STRLEN];
    lp2p_peer_id_str(&ev->peer, id, sizeof id);
    printf("{\"event\":\"%s\",\"%s\":\"%s\"", event, field, id);
}

void cli_print_events(lp2p_host *h) {
    lp2p_event ev;
    while (lp2p_host_next_event(h, &ev)) {
        const char *addr = ev.addr ? ev.addr : "";
        switch (ev.type) {
        case LP2P_EVENT_PEER_CONNECTED:
            print_event_peer("connected", "peerId", &ev);
            printf(",\"relayed\":%s,\"addr\":", strstr(addr, "/p2p-circuit") ? "true" : "false");
            break;
        case LP2P_EVENT_PEER_DISCONNECTED:
            print_event_peer("disconnected", "peerId", &ev);
            printf("}\n");
            fflush(stdout);
            continue;
        case LP2P_EVENT_HOLE_PUNCH:
            if (ev.err == 0) {
                print_event_peer("direct", "peerId", &ev);
                printf(",\"addr\":");
            } else {
                print_event_peer("hole-punch-failed", "peerId", &ev);
                printf(",\"message\":");
                addr = lp2p_strerror(ev.err);
            }
            break;
        case LP2P_EVENT_RELAY_RESERVED:
            print_event_peer("reserved", "relay", &ev);
            printf(",\"addr\":");
            break;
        case LP2P_EVENT_RELAY_LOST:
            print_event_peer("reservation-lost", "relay", &ev);
            printf(",\"message\":");
            addr = lp2p_strerror(ev.err);
            break;
        case LP2P_EVENT_NAT_STATUS:
            printf("{\"event\":\"nat\",\"status\":");
            addr = ev.err == LP2P_NAT_PUBLIC ? "public" : ev.err == LP2P_NAT_PRIVATE ? "private" : "unknown";
            break;
        default: continue; /* streams go to handlers; the rest is not ours to print */
        }
        cli_json_str(stdout, addr, strlen(addr));
        printf("}\n");
        fflush(stdout);
    }
}

/* Run the host until the deadline, printing events (a server's normal end). */
static int serve_until_deadline(lp2p_host *h) {
    while (lp2p_now() < cli_deadline()) {
        lp2p_host_poll(h, 100);
        cli_print_events(h);
    }
    lp2p_host_free(h);
    return 0;
}

/* /echo/1.0.0: send back everything until the peer closes its write side. */
static void echo_handler(lp2p_stream *s, void *user) {
    char buf[16384];
    ptrdiff_t n;
    (void)user;
    while ((n = lp2p_stream_read(s, buf, sizeof buf, lp2p_deadline_in(30000))) > 0)
        if (lp2p_stream_write(s, buf, (size_t)n, lp2p_deadline_in(30000)) != LP2P_OK) break;
}

int cli_relay(const cli_opts *o) {
    if (o->n_pos < 1 || strcmp(o->pos[0], "serve") != 0) cli_usage();
    lp2p_host *h = cli_host(o, true);
    int rc = lp2p_relay_service_start(h, NULL);
    if (rc) cli_fail("relay service: %s", lp2p_strerror(rc));
    cli_print_ready(h);
    return serve_until_deadline(h);
}

int cli_serve(const cli_opts *o) {
    lp2p_host *h = cli_host(o, true);
    int rc = lp2p_host_handle(h, ECHO_PROTOCOL, echo_handler, NULL);
    /* echo is small and the relay enforces its limits: let it run over relayed connections too,
     * so a peer can reach us before (or without) a direct connection */
    if (rc == LP2P_OK) rc = lp2p_host_allow_limited(h, ECHO_PROTOCOL, true);
    if (rc) cli_fail("echo: %s", lp2p_strerror(rc));
    if (o->relay && (rc = lp2p_relay_reserve(h, o->relay, cli_deadline())) != LP2P_OK)
        cli_fail("reserve on %s: %s", o->relay, lp2p_strerror(rc));
    cli_print_ready(h); /* lists the /p2p-circuit addresses of the reservation */
    return serve_until_deadline(h);
}

/* The peer ID at the end of "<multiaddr>/p2p/<id>" or a bare peer ID. */
bool cli_target_peer(const char *peer_or_addr, lp2p_peer_id *out) {
    const char *p = peer_or_addr, *q;
    while ((q = strstr(p, "/p2p/")) != NULL) p = q + 5;
    return lp2p_peer_id_parse(p, out) == LP2P_OK;
}

/* echo <addr> <text>: one /echo/1.0.0 stream. --direct waits for a direct connection (DCUtR;
 * the host listens when --listen is given, which the hole punch needs) instead of using a
 * relayed one. */
int cli_echo(const cli_opts *o) {
    if (o->n_pos < 2) cli_usage();
    const char *addr = o->pos[0], *text = o->pos[1];
    size_t len = strlen(text);
    lp2p_peer_id peer;
    if (len == 0 || len > ECHO_MAX) cli_fail("echo text must be 1..%d bytes", ECHO_MAX);
    if (!cli_target_peer(addr, &peer)) cli_fail("'%s' does not end in a peer ID", addr);
    lp2p_host *h = cli_host(o, o->n_listen > 0);
    if (!o->direct) lp2p_host_allow_limited(h, ECHO_PROTOCOL, true);
    int64_t t0 = lp2p_now();
    lp2p_stream *s = NULL;
    int rc = lp2p_stream_open(h, addr, ECHO_PROTOCOL, cli_deadline(), &s);
    cli_print_events(h);
    if (rc) cli_fail("echo %s: %s", addr, lp2p_strerror(rc));
    bool relayed = lp2p_host_is_direct(h, &peer) != 1;
    char *back = (char *)malloc(len);
    if (!back) cli_fail("out of memory");
    rc = lp2p_stream_write(s, text, len, cli_deadline());
    if (rc == LP2P_OK) lp2p_stream_close_write(s);
    if (rc == LP2P_OK) rc = lp2p_stream_read_full(s, back, len, cli_deadline());
    if (rc == LP2P_OK && memcmp(back, text, len) != 0) rc = LP2P_ERR_PROTOCOL;
    lp2p_stream_close(s);
    if (rc) cli_fail("echo %s: %s", addr, lp2p_strerror(rc));
    printf("{\"event\":\"echo\",\"text\":");
    cli_json_str(stdout, back, len);
    printf(",\"relayed\":%s,\"ms\":%lld}\n", relayed ? "true" : "false", (long long)(lp2p_now() - t0));
    fflush(stdout);
    free(back);
    lp2p_host_free(h);
    return 0;
}
