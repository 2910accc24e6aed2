/* main.c - hole-punch-client: the libp2p/test-plans hole-punch-interop test application
 * (test-plans hole-punch-interop/README.md), TCP + Noise + yamux, on libp2p.h's relay client and
 * DCUtR. Configured by the environment:
 *   MODE=listen|dial   TRANSPORT=tcp (quic is refused: libp2p.h has no QUIC)
 *   REDIS_ADDR         host:port of the orchestrating Redis [redis:6379, the contract's fixed
 *                      address; the variable is ours, for runs outside docker-compose]
 *   TEST_TIMEOUT_SECS  [55: the go client's; the compose runner tears the stack down at 60 s]
 *   DEBUG=true         library logs at DEBUG
 * Flow (the contract): BLPOP RELAY_TCP_ADDRESS (the relay RPUSHes its address once per client),
 * listen on /ip4/0.0.0.0/tcp/0, connect to the relay and wait for identify (the relay tells us
 * our observed, i.e. NAT-mapped, address, which DCUtR sends to the other side).
 *   listen: reserve a slot on the relay, RPUSH our peer ID to LISTEN_CLIENT_PEER_ID, serve until
 *           killed (the runner kills the listener; reaching the timeout is a failure, exit 1).
 *   dial:   BLPOP LISTEN_CLIENT_PEER_ID, dial <relay>/p2p-circuit/p2p/<id>; the listener starts
 *           DCUtR over the relayed connection; wait until a direct connection exists (a failed hole
 *           punch is a failure), ping over it (/ipfs/ping/1.0.0; refused if the connection is still
 *           relayed) and print {"rtt_to_holepunched_peer_millis":<whole ms>} on stdout, exit 0.
 * Logs go to stderr; stdout carries only the result. Any failure: a message, exit 1.
 * Not done: the contract asks for 0-RTT (lazy) multistream-select on streams; our streams
 * negotiate with a round trip (connections use the lazy form). It only costs time.
 * Build: make build/bin/hole-punch-client (links -lhiredis). */
#define LIBP2P_IMPLEMENTATION
#include "libp2p.h"

#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RELAY_KEY "RELAY_TCP_ADDRESS"
#define PEER_KEY "LISTEN_CLIENT_PEER_ID"

static int64_t deadline_all; /* lp2p ms clock */

static void logf_(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "hole-punch-client: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "hole-punch-client: FAILED: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static const char *env(const char *name, const char *def) {
    const char *v = getenv(name);
    return v && v[0] ? v : def;
}

static int seconds_left(void) {
    int64_t ms = deadline_all - lp2p_now();
    return ms > 1000 ? (int)(ms / 1000) : 1;
}

/* Connect to Redis at "host:port", retrying until the deadline (it may come up after us). */
static redisContext *redis_connect(const char *addr) {
    char host[256];
    int port = 6379;
    snprintf(host, sizeof host, "%s", strncmp(addr, "redis://", 8) == 0 ? addr + 8 : addr);
    char *colon = strrchr(host, ':');
    if (colon) *colon = '\0', port = atoi(colon + 1);
    for (;;) {
        struct timeval tv = {5, 0};
        redisContext *c = redisConnectWithTimeout(host, port, tv);
        if (c && !c->err) return c;
        logf_("redis %s:%d: %s", host, port, c ? c->errstr : "out of memory");
        if (c) redisFree(c);
        if (lp2p_now() > deadline_all) die("cannot reach redis at %s", addr);
        usleep(200 * 1000);
    }
}

/* BLPOP key until the deadline; the value is copied into out. */
static void redis_pop(redisContext *r, const char *key, char *out, size_t cap) {
    redisReply *rep = (redisReply *)redisCommand(r, "BLPOP %s %d", key, seconds_left());
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 || rep->element[1]->type != REDIS_REPLY_STRING)
        die("nothing under %s in time (%s)", key, rep && rep->type == REDIS_REPLY_ERROR ? rep->str : rep ? "timeout" : r->errstr);
    snprintf(out, cap, "%s", rep->element[1]->str);
    freeReplyObject(rep);
}

static void redis_push(redisContext *r, const char *key, const char *value) {
    redisReply *rep = (redisReply *)redisCommand(r, "RPUSH %s %s", key, value);
    if (!rep || rep->type == REDIS_REPLY_ERROR) die("RPUSH %s: %s", key, rep ? rep->str : r->errstr);
    freeReplyObject(rep);
}

/* Log the host's events (connections, hole punch results); returns the error of a failed hole
 * punch with peer (0 if none was reported). */
static int drain_events(lp2p_host *h, const lp2p_peer_id *peer) {
    lp2p_event ev;
    char id[LP2P_PEER_ID_STRLEN];
    int failed = 0;
    while (lp2p_host_next_event(h, &ev)) {
        lp2p_peer_id_str(&ev.peer, id, sizeof id);
        if (ev.type == LP2P_EVENT_PEER_CONNECTED) logf_("connected to %s via %s", id, ev.addr ? ev.addr : "?");
        else if (ev.type == LP2P_EVENT_PEER_DISCONNECTED) logf_("disconnected from %s", id);
        else if (ev.type == LP2P_EVENT_RELAY_RESERVED) logf_("reservation on %s: %s", id, ev.addr ? ev.addr : "?");
        else if (ev.type == LP2P_EVENT_RELAY_LOST) logf_("reservation on %s lost: %s", id, lp2p_strerror(ev.err));
        else if (ev.type == LP2P_EVENT_HOLE_PUNCH && ev.err == 0) logf_("hole punch with %s: direct via %s", id, ev.addr ? ev.addr : "?");
        else if (ev.type == LP2P_EVENT_HOLE_PUNCH) {
            logf_("hole punch with %s failed: %s", id, lp2p_strerror(ev.err));
            if (peer && lp2p_peer_id_eq(&ev.peer, peer)) failed = ev.err;
        }
    }
    return failed;
}

static int run_listener(lp2p_host *h, redisContext *r, const char *relay) {
    int rc = lp2p_relay_reserve(h, relay, deadline_all);
    if (rc != LP2P_OK) die("reserving on %s: %s", relay, lp2p_strerror(rc));
    lp2p_peer_id me = lp2p_host_id(h);
    char id[LP2P_PEER_ID_STRLEN];
    lp2p_peer_id_str(&me, id, sizeof id);
    redis_push(r, PEER_KEY, id);
    logf_("reserved; published %s under %s; serving until killed", id, PEER_KEY);
    while (lp2p_now() < deadline_all) {
        lp2p_host_poll(h, 100);
        drain_events(h, NULL);
    }
    logf_("timeout reached without being stopped");
    return 1;
}

static int run_dialer(lp2p_host *h, redisContext *r, const char *relay) {
    char id[LP2P_PEER_ID_STRLEN + 1], circuit[1200];
    lp2p_peer_id peer;
    redis_pop(r, PEER_KEY, id, sizeof id);
    if (lp2p_peer_id_parse(id, &peer) != LP2P_OK) die("'%s' under %s is not a peer ID", id, PEER_KEY);
    snprintf(circuit, sizeof circuit, "%s/p2p-circuit/p2p/%s", relay, id);
    logf_("dialing %s", circuit);
    int64_t t0 = lp2p_now();
    int rc = lp2p_host_connect(h, circuit, deadline_all);
    if (rc != LP2P_OK) die("connecting through the relay: %s", lp2p_strerror(rc));
    logf_("relayed connection up after %lld ms; waiting for DCUtR", (long long)(lp2p_now() - t0));
    while (lp2p_host_is_direct(h, &peer) != 1) {
        if ((rc = drain_events(h, &peer)) != 0) die("hole punch failed: %s", lp2p_strerror(rc));
        if (lp2p_now() > deadline_all) die("no direct connection in time");
        lp2p_host_poll(h, 10);
    }
    drain_events(h, &peer);
    logf_("direct connection after %lld ms", (long long)(lp2p_now() - t0));
    /* lp2p_ping takes the best connection, the direct one; by bare peer ID it never redials */
    int rtt_us = lp2p_ping(h, id, deadline_all);
    if (rtt_us < 0) die("ping over the direct connection: %s", lp2p_strerror(rtt_us));
    if (lp2p_host_is_direct(h, &peer) != 1) die("the direct connection went away during the ping");
    logf_("ping over the direct connection: %.3f ms", rtt_us / 1e3);
    printf("{\"rtt_to_holepunched_peer_millis\":%d}\n", rtt_us / 1000); /* whole ms, as go's */
    fflush(stdout);
    return 0;
}

int main(void) {
    setvbuf(stderr, NULL, _IONBF, 0);
    const char *mode = env("MODE", ""), *transport = env("TRANSPORT", "");
    const char *redis_addr = env("REDIS_ADDR", "redis:6379");
    int timeout_s = atoi(env("TEST_TIMEOUT_SECS", "55"));
    if (strcmp(mode, "listen") != 0 && strcmp(mode, "dial") != 0) die("MODE must be listen or dial, not '%s'", mode);
    if (strcmp(transport, "tcp") != 0) die("unsupported TRANSPORT '%s' (libp2p.h speaks: tcp)", transport);
    deadline_all = lp2p_deadline_in((int64_t)(timeout_s > 0 ? timeout_s : 55) * 1000);
    logf_("MODE=%s TRANSPORT=%s redis %s", mode, transport, redis_addr);

    redisContext *r = redis_connect(redis_addr);
    char relay[1024];
    redis_pop(r, RELAY_KEY, relay, sizeof relay);
    logf_("relay %s", relay);

    lp2p_config cfg = {0};
    cfg.listen_addrs[0] = "/ip4/0.0.0.0/tcp/0"; /* DCUtR dials from this port (port reuse) */
    cfg.log_level = strcmp(env("DEBUG", ""), "true") == 0 ? LP2P_LOG_DEBUG : LP2P_LOG_DEFAULT;
    lp2p_host *h = NULL;
    int rc = lp2p_host_new(&cfg, &h);
    if (rc != LP2P_OK) die("host: %s", lp2p_strerror(rc));
    lp2p_peer_id me = lp2p_host_id(h);
    char id[LP2P_PEER_ID_STRLEN];
    lp2p_peer_id_str(&me, id, sizeof id);
    logf_("peer ID %s, listening on %s", id, lp2p_host_addr(h, 0) ? lp2p_host_addr(h, 0) : "?");
    /* the relay's identify tells us our NAT-mapped address, which DCUtR hands to the other side */
    if ((rc = lp2p_host_identify(h, relay, deadline_all)) != LP2P_OK) die("connecting to the relay: %s", lp2p_strerror(rc));
    drain_events(h, NULL);
    rc = strcmp(mode, "listen") == 0 ? run_listener(h, r, relay) : run_dialer(h, r, relay);
    redisFree(r);
    lp2p_host_free(h);
    return rc;
}
