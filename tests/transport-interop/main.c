/* main.c - lp2p-transport-interop: the libp2p/test-plans transport-interop test application
 * (tcp + noise + yamux), in both conventions of the runners:
 *
 *  legacy (libp2p/test-plans transport-interop/README.md), lowercase environment:
 *    is_dialer, redis_addr (default redis:6379), ip (default 0.0.0.0), transport, security,
 *    muxer, test_timeout_seconds (or test_timeout_secs; default 180). Redis key: listenerAddr.
 *    The dialer prints one JSON object {"handshakePlusOneRTTMillis":X,"pingRTTMilllis":Y} (no spaces: test-plans greps that form)
 *    (three l's: the runner expects that spelling).
 *  modern (libp2p/unified-testing docs/write-a-transport-test-app.md), uppercase environment:
 *    IS_DIALER, REDIS_ADDR, TEST_KEY, TRANSPORT, SECURE_CHANNEL, MUXER, LISTENER_IP (default
 *    0.0.0.0), TEST_TIMEOUT_SECS (default 180), DEBUG. Redis key: <TEST_KEY>_listener_multiaddr.
 *    The dialer prints YAML: "latency:" then "  handshake_plus_one_rtt: X", "  ping_rtt: Y",
 *    "  unit: ms" (the runner greps exactly these lines).
 *  Both: the listener RPUSHes its multiaddr with /p2p/, logs "connection from <peer id>" per
 *  inbound connection and serves until killed (exit 1 if the timeout passes first); the dialer
 *  logs "dialing <addr> from <own peer id>", BLPOPs the address, connects, pings once and
 *  measures from the start of the dial to the end of the ping. Logs go to stderr; stdout carries only the result.
 *  A listener given 0.0.0.0 advertises the first non-loopback IPv4 address of the machine.
 *
 * Build: make build/bin/lp2p-transport-interop (links -lhiredis). */
#define LIBP2P_IMPLEMENTATION
#include "libp2p.h"

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

typedef struct settings {
    bool modern, dialer, debug;
    const char *redis_addr, *ip, *transport, *security, *muxer;
    char key[256];
    int timeout_s;
} settings;

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "lp2p-transport-interop: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static void logf_(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[interop] ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static const char *env(const char *name, const char *def) {
    const char *v = getenv(name);
    return v && v[0] ? v : def;
}

static void read_settings(settings *s) {
    memset(s, 0, sizeof *s);
    s->modern = getenv("IS_DIALER") != NULL;
    if (!s->modern && !getenv("is_dialer"))
        die("set IS_DIALER (with REDIS_ADDR, TEST_KEY, TRANSPORT, SECURE_CHANNEL, MUXER) or is_dialer "
            "(with redis_addr, ip, transport, security, muxer): see the top of tests/transport-interop/main.c");
    const char *timeout;
    if (s->modern) {
        s->dialer = strcmp(env("IS_DIALER", ""), "true") == 0;
        s->redis_addr = env("REDIS_ADDR", "redis:6379");
        s->ip = env("LISTENER_IP", "0.0.0.0");
        s->transport = env("TRANSPORT", "");
        s->security = env("SECURE_CHANNEL", "");
        s->muxer = env("MUXER", "");
        s->debug = strcmp(env("DEBUG", ""), "true") == 0;
        timeout = env("TEST_TIMEOUT_SECS", "180");
        const char *test_key = env("TEST_KEY", NULL);
        if (!test_key) die("TEST_KEY is not set (the modern convention needs it for the Redis key)");
        snprintf(s->key, sizeof s->key, "%s_listener_multiaddr", test_key);
    } else {
        s->dialer = strcmp(env("is_dialer", ""), "true") == 0;
        s->redis_addr = env("redis_addr", "redis:6379");
        s->ip = env("ip", "0.0.0.0");
        s->transport = env("transport", "");
        s->security = env("security", "");
        s->muxer = env("muxer", "");
        timeout = env("test_timeout_seconds", env("test_timeout_secs", "180"));
        snprintf(s->key, sizeof s->key, "listenerAddr");
    }
    s->timeout_s = atoi(timeout);
    if (s->timeout_s <= 0) s->timeout_s = 180;
    if (strcmp(s->transport, "tcp") != 0)
        die("unsupported transport '%s' (libp2p.h speaks: tcp)", s->transport);
    if (strcmp(s->security, "noise") != 0)
        die("unsupported security '%s' (libp2p.h speaks: noise)", s->security);
    if (strcmp(s->muxer, "yamux") != 0) die("unsupported muxer '%s' (libp2p.h speaks: yamux)", s->muxer);
}

/* Connect to Redis at "host:port" (an optional redis:// prefix is dropped), retrying until
 * the deadline: in the runners Redis may come up after us. */
static redisContext *redis_connect(const char *addr, double deadline_ms) {
    char host[256];
    int port = 6379;
    if (strncmp(addr, "redis://", 8) == 0) addr += 8;
    snprintf(host, sizeof host, "%s", addr);
    char *colon = strrchr(host, ':');
    if (colon) *colon = '\0', port = atoi(colon + 1);
    for (;;) {
        struct timeval tv = {5, 0};
        redisContext *c = redisConnectWithTimeout(host, port, tv);
        if (c && !c->err) return c;
        logf_("redis %s:%d: %s", host, port, c ? c->errstr : "out of memory");
        if (c) redisFree(c);
        if (now_ms() > deadline_ms) die("cannot reach redis at %s", addr);
        usleep(500 * 1000);
    }
}

/* The first up, non-loopback IPv4 address, for a listener bound to 0.0.0.0 (test-plans
 * containers dial the listener over the container network). */
static bool first_public_ipv4(char *out, size_t cap) {
    struct ifaddrs *list, *i;
    bool found = false;
    if (getifaddrs(&list) != 0) return false;
    for (i = list; i && !found; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !(i->ifa_flags & IFF_UP) ||
            (i->ifa_flags & IFF_LOOPBACK))
            continue;
        found = inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, out, (socklen_t)cap) != NULL;
    }
    freeifaddrs(list);
    return found;
}

static int run_listener(const settings *s) {
    char listen[128], advertised[512], ip[64];
    const char *family = strchr(s->ip, ':') ? "ip6" : "ip4";
    snprintf(listen, sizeof listen, "/%s/%s/tcp/0", family, s->ip);
    lp2p_config cfg = {0};
    lp2p_host *h;
    cfg.listen_addrs[0] = listen;
    cfg.log_level = s->debug ? LP2P_LOG_DEBUG : LP2P_LOG_DEFAULT;
    int rc = lp2p_host_new(&cfg, &h);
    if (rc != LP2P_OK) die("cannot listen on %s: %s", listen, lp2p_strerror(rc));
    const char *bound = lp2p_host_addr(h, 0), *tail = bound ? strstr(bound, "/tcp/") : NULL;
    if (!tail) die("the host reports no listen address");
    snprintf(advertised, sizeof advertised, "%s", bound);
    if (strcmp(s->ip, "0.0.0.0") == 0) { /* advertise an address the dialer can reach */
        if (!first_public_ipv4(ip, sizeof ip)) snprintf(ip, sizeof ip, "127.0.0.1");
        snprintf(advertised, sizeof advertised, "/ip4/%s%s", ip, tail);
    }
    logf_("listening on %s, advertising %s", bound, advertised);
    double deadline = now_ms() + s->timeout_s * 1000.0;
    redisContext *r = redis_connect(s->redis_addr, deadline);
    redisReply *rep;
    if (s->modern) { /* a leftover string value under the key would make RPUSH fail (WRONGTYPE) */
        rep = (redisReply *)redisCommand(r, "DEL %s", s->key);
        if (rep) freeReplyObject(rep);
    }
    rep = (redisReply *)redisCommand(r, "RPUSH %s %s", s->key, advertised);
    if (!rep || rep->type == REDIS_REPLY_ERROR) die("RPUSH %s: %s", s->key, rep ? rep->str : r->errstr);
    freeReplyObject(rep);
    redisFree(r);
    /* Serve (identify, ping) until the runner kills us; running out of time is a failure.
     * Every inbound connection is logged, so a harness can tell the dialer reached us. */
    lp2p_event ev;
    char id[LP2P_PEER_ID_STRLEN];
    while (now_ms() < deadline) {
        lp2p_sleep(h, lp2p_deadline_in(100));
        while (lp2p_host_next_event(h, &ev))
            if (ev.type == LP2P_EVENT_PEER_CONNECTED && lp2p_peer_id_str(&ev.peer, id, sizeof id) >= 0)
                logf_("connection from %s (%s)", id, ev.addr ? ev.addr : "?");
    }
    logf_("timeout (%d s) reached without being stopped", s->timeout_s);
    lp2p_host_free(h);
    return 1;
}

/* One /ipfs/ping/1.0.0 round trip on a fresh stream: returns the RTT in ms or < 0. */
static double ping_once(lp2p_host *h, const char *addr, int64_t deadline, int *err) {
    unsigned char out[32], in[32];
    lp2p_stream *st;
    int rc = lp2p_stream_open(h, addr, "/ipfs/ping/1.0.0", deadline, &st);
    if (rc != LP2P_OK) return *err = rc, -1;
    if (getrandom(out, sizeof out, 0) != (ssize_t)sizeof out) memset(out, 0x5a, sizeof out);
    double t = now_ms();
    rc = lp2p_stream_write(st, out, sizeof out, deadline);
    if (rc == LP2P_OK) rc = lp2p_stream_read_full(st, in, sizeof in, deadline);
    double rtt = now_ms() - t;
    if (rc == LP2P_OK && memcmp(in, out, sizeof in) != 0) rc = LP2P_ERR_PROTOCOL;
    if (rc != LP2P_OK) {
        lp2p_stream_reset(st);
        return *err = rc, -1;
    }
    lp2p_stream_close(st);
    return rtt;
}

static int run_dialer(const settings *s) {
    double deadline = now_ms() + s->timeout_s * 1000.0;
    redisContext *r = redis_connect(s->redis_addr, deadline);
    redisReply *rep = (redisReply *)redisCommand(r, "BLPOP %s %d", s->key, s->timeout_s);
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 || rep->element[1]->type != REDIS_REPLY_STRING)
        die("no listener address under '%s' within %d s (%s)", s->key, s->timeout_s,
            rep && rep->type == REDIS_REPLY_ERROR ? rep->str : rep ? "timeout" : r->errstr);
    char addr[1024];
    snprintf(addr, sizeof addr, "%s", rep->element[1]->str);
    freeReplyObject(rep);
    redisFree(r);

    lp2p_config cfg = {0};
    lp2p_host *h;
    cfg.no_listen = true;
    cfg.log_level = s->debug ? LP2P_LOG_DEBUG : LP2P_LOG_DEFAULT;
    int rc = lp2p_host_new(&cfg, &h);
    if (rc != LP2P_OK) die("cannot start the host: %s", lp2p_strerror(rc));
    lp2p_peer_id self = lp2p_host_id(h);
    char id[LP2P_PEER_ID_STRLEN];
    if (lp2p_peer_id_str(&self, id, sizeof id) < 0) snprintf(id, sizeof id, "?");
    logf_("dialing %s from %s", addr, id);
    int64_t dl = lp2p_deadline_in((int64_t)s->timeout_s * 1000);
    double t0 = now_ms();
    rc = lp2p_host_connect(h, addr, dl);
    if (rc != LP2P_OK) die("connecting to %s: %s", addr, lp2p_strerror(rc));
    double rtt = ping_once(h, addr, dl, &rc);
    if (rtt < 0) die("ping %s: %s", addr, lp2p_strerror(rc));
    double total = now_ms() - t0;
    logf_("connected and pinged: %.3f ms, ping %.3f ms", total, rtt);
    if (s->modern)
        printf("latency:\n  handshake_plus_one_rtt: %.3f\n  ping_rtt: %.3f\n  unit: ms\n", total, rtt);
    else
        printf("{\"handshakePlusOneRTTMillis\":%.3f,\"pingRTTMilllis\":%.3f}\n", total, rtt);
    fflush(stdout);
    lp2p_host_free(h);
    return 0;
}

int main(void) {
    settings s;
    setvbuf(stderr, NULL, _IONBF, 0);
    read_settings(&s);
    logf_("%s, %s convention, %s/%s/%s, redis %s, key %s, timeout %d s", s.dialer ? "dialer" : "listener",
          s.modern ? "modern" : "legacy", s.transport, s.security, s.muxer, s.redis_addr, s.key, s.timeout_s);
    return s.dialer ? run_dialer(&s) : run_listener(&s);
}
