/* test_relay.c - circuit relay v2 and DCUtR between our own hosts in one process, over TCP on
 * 127.0.0.1: reservation (voucher, circuit addresses, refresh, loss), relayed connections
 * (limited: which protocols run, waiting for a direct connection), relay limits (data, duration,
 * reservations, circuits), refusals (no reservation, hop over a relayed connection, malformed
 * and unexpected messages, forged vouchers), and DCUtR upgrading a relayed connection to a
 * direct one on loopback. (Interop with go/js relays: tests/interop/test_relay.c.) */
#define LIBP2P_IMPLEMENTATION
#include "libp2p.h"
#include "tests/test.h"

#include <pb_decode.h>

#define ECHO "/echo/1.0.0"
#define HOP "/libp2p/circuit/relay/0.2.0/hop"

static void echo_handler(lp2p_stream *s, void *user) {
    char buf[16384];
    ptrdiff_t n;
    (void)user;
    while ((n = lp2p_stream_read(s, buf, sizeof buf, lp2p_deadline_in(10000))) > 0)
        if (lp2p_stream_write(s, buf, (size_t)n, lp2p_deadline_in(10000)) != LP2P_OK) break;
}

static lp2p_host *new_host(bool dcutr) {
    lp2p_config cfg;
    lp2p_host *h = NULL;
    memset(&cfg, 0, sizeof cfg);
    cfg.log_level = getenv("LP2P_TEST_LOG") ? LP2P_LOG_DEBUG : LP2P_LOG_ERROR;
    CHECK_EQ(lp2p_host_new(&cfg, &h), LP2P_OK);
    if (h) CHECK_EQ(lp2p_host_handle(h, ECHO, echo_handler, NULL), LP2P_OK);
    if (h && !dcutr) CHECK_EQ(lp2p_host_unhandle(h, "/libp2p/dcutr"), LP2P_OK);
    return h;
}

static lp2p_host *new_relay(const lp2p_relay_config *rc) {
    lp2p_host *r = new_host(false);
    if (r) CHECK_EQ(lp2p_relay_service_start(r, rc), LP2P_OK);
    return r;
}

/* Pump every host (blocking calls from main() do) until an event of type arrives on h. */
static int wait_event(lp2p_host *h, lp2p_event_type type, lp2p_event *out, char *addr, size_t cap, int ms) {
    int64_t deadline = lp2p_deadline_in(ms);
    lp2p_event ev;
    while (lp2p_now() < deadline) {
        while (lp2p_host_next_event(h, &ev))
            if (ev.type == type) {
                if (out) *out = ev;
                if (addr && cap) snprintf(addr, cap, "%s", ev.addr ? ev.addr : "");
                return 1;
            }
        lp2p_sleep(h, lp2p_deadline_in(10));
    }
    return 0;
}

static void drain_events(lp2p_host *h) {
    lp2p_event ev;
    while (lp2p_host_next_event(h, &ev)) {}
}

/* "<relay addr>/p2p-circuit/p2p/<target>" */
static void circuit_addr(lp2p_host *relay, lp2p_host *target, char *out, size_t cap) {
    char id[LP2P_PEER_ID_STRLEN];
    lp2p_peer_id tid = lp2p_host_id(target);
    lp2p_peer_id_str(&tid, id, sizeof id);
    snprintf(out, cap, "%s/p2p-circuit/p2p/%s", lp2p_host_addr(relay, 0), id);
}

static int echo_roundtrip(lp2p_host *a, const char *addr, size_t len, int64_t ms) {
    lp2p_stream *s = NULL;
    int ok = 0;
    uint8_t *out = malloc(len + 1), *in = malloc(len + 1);
    for (size_t i = 0; i < len; i++) out[i] = (uint8_t)(i * 7 + 3);
    if (lp2p_stream_open(a, addr, ECHO, lp2p_deadline_in(ms), &s) == LP2P_OK) {
        size_t w = 0, r = 0;
        while (r < len) {
            size_t k = LP2P__MIN(len - w, (size_t)4096);
            if (k && lp2p_stream_write(s, out + w, k, lp2p_deadline_in(5000)) != LP2P_OK) break;
            w += k;
            if (k && w == len) lp2p_stream_close_write(s);
            while (r < w) {
                ptrdiff_t n = lp2p_stream_read(s, in + r, len - r, lp2p_deadline_in(5000));
                if (n <= 0) goto done;
                r += (size_t)n;
            }
        }
        ok = r == len && memcmp(in, out, len) == 0;
    done:
        lp2p_stream_close(s);
    }
    free(out), free(in);
    return ok;
}

static int count_circuit_addrs(lp2p_host *h) {
    int n = 0;
    for (int i = 0; i < lp2p_host_addr_count(h); i++) n += strstr(lp2p_host_addr(h, i), "/p2p-circuit/p2p/") != NULL;
    return n;
}

static void test_reserve_and_connect(void) {
    TEST("relay: reserve, circuit address, connect through the relay, limited protocols");
    lp2p_host *r = new_relay(NULL), *a = new_host(false), *b = new_host(false);
    char caddr[800], ev_addr[800];
    if (!r || !a || !b) return;
    lp2p_peer_id rid = lp2p_host_id(r), aid = lp2p_host_id(a), bid = lp2p_host_id(b);
    CHECK_EQ(count_circuit_addrs(a), 0);
    CHECK_EQ(lp2p_relay_reserve(a, lp2p_host_addr(r, 0), lp2p_deadline_in(10000)), LP2P_OK);
    lp2p_event ev;
    CHECK(wait_event(a, LP2P_EVENT_RELAY_RESERVED, &ev, ev_addr, sizeof ev_addr, 2000));
    CHECK(lp2p_peer_id_eq(&ev.peer, &rid));
    circuit_addr(r, a, caddr, sizeof caddr);
    CHECK_STR(ev_addr, caddr);
    CHECK_EQ(count_circuit_addrs(a), 1);
    /* the host lists it among its addresses */
    int found = 0;
    for (int i = 0; i < lp2p_host_addr_count(a); i++) found |= strcmp(lp2p_host_addr(a, i), caddr) == 0;
    CHECK(found);
    /* B dials A through R */
    CHECK_EQ(lp2p_host_connect(b, caddr, lp2p_deadline_in(10000)), LP2P_OK);
    CHECK_EQ(lp2p_host_is_direct(b, &aid), 0);
    CHECK(wait_event(a, LP2P_EVENT_PEER_CONNECTED, &ev, NULL, 0, 2000) && lp2p_peer_id_eq(&ev.peer, &bid));
    CHECK_EQ(lp2p_host_is_direct(a, &bid), 0);
    /* ping and identify run over limited connections */
    CHECK(lp2p_ping(b, caddr, lp2p_deadline_in(5000)) >= 0);
    CHECK_EQ(lp2p_host_identify(b, caddr, lp2p_deadline_in(5000)), LP2P_OK);
    lp2p_peer_info info;
    CHECK_EQ(lp2p_host_peer_info(b, &aid, &info), LP2P_OK);
    found = 0;
    for (int i = 0; i < info.n_addrs; i++) found |= strstr(info.addrs[i], "/p2p-circuit") != NULL;
    CHECK(found); /* A advertises its circuit address in identify */
    /* echo is not allowed on limited connections: opening waits for a direct one, then fails */
    lp2p_stream *s = NULL;
    CHECK_EQ(lp2p_stream_open(b, caddr, ECHO, lp2p_deadline_in(300), &s), LP2P_ERR_LIMIT);
    /* allowed on the opener but not the handler side: the handler refuses */
    CHECK_EQ(lp2p_host_allow_limited(b, ECHO, true), LP2P_OK);
    CHECK(!echo_roundtrip(b, caddr, 10, 2000));
    CHECK_EQ(lp2p_host_allow_limited(a, ECHO, true), LP2P_OK);
    CHECK(echo_roundtrip(b, caddr, 20000, 5000));
    CHECK_EQ(lp2p_host_allow_limited(b, ECHO, false), LP2P_OK);
    CHECK_EQ(lp2p_stream_open(b, caddr, ECHO, lp2p_deadline_in(200), &s), LP2P_ERR_LIMIT);
    /* the peerstore learned A's circuit address: a bare peer ID dial works from a fresh host */
    lp2p_host *c = new_host(false);
    if (c) {
        CHECK_EQ(lp2p_host_add_addr(c, caddr, -1), LP2P_OK);
        char aid_s[LP2P_PEER_ID_STRLEN];
        lp2p_peer_id_str(&aid, aid_s, sizeof aid_s);
        CHECK(lp2p_ping(c, aid_s, lp2p_deadline_in(5000)) >= 0);
        lp2p_host_free(c);
    }
    /* release: the circuit address goes away */
    CHECK_EQ(lp2p_relay_release(a, &rid), LP2P_OK);
    CHECK_EQ(count_circuit_addrs(a), 0);
    CHECK_EQ(lp2p_relay_release(a, &rid), LP2P_ERR_NOTFOUND);
    lp2p_host_free(b), lp2p_host_free(a), lp2p_host_free(r);
}

static void test_refusals(void) {
    TEST("relay: no reservation, not a relay, reservation cap, hop over a relayed connection");
    lp2p_relay_config rc;
    memset(&rc, 0, sizeof rc);
    rc.max_reservations = 1;
    lp2p_host *r = new_relay(&rc), *a = new_host(false), *b = new_host(false), *c = new_host(false);
    char caddr[800];
    if (!r || !a || !b || !c) return;
    circuit_addr(r, a, caddr, sizeof caddr);
    CHECK_EQ(lp2p_host_connect(b, caddr, lp2p_deadline_in(5000)), LP2P_ERR_UNREACHABLE); /* NO_RESERVATION */
    CHECK_EQ(lp2p_relay_reserve(c, lp2p_host_addr(b, 0), lp2p_deadline_in(5000)), LP2P_ERR_PROTO_NA); /* b is no relay */
    CHECK_EQ(lp2p_relay_reserve(a, lp2p_host_addr(r, 0), lp2p_deadline_in(5000)), LP2P_OK);
    CHECK_EQ(lp2p_relay_reserve(a, lp2p_host_addr(r, 0), lp2p_deadline_in(5000)), LP2P_OK); /* refresh, same slot */
    CHECK_EQ(lp2p_relay_reserve(c, lp2p_host_addr(r, 0), lp2p_deadline_in(5000)), LP2P_ERR_LIMIT);
    CHECK_EQ(lp2p_host_connect(b, caddr, lp2p_deadline_in(5000)), LP2P_OK);
    /* hop over the relayed connection: B asks A (over the limited conn) to relay: refused */
    lp2p_relay_service_start(a, NULL);
    lp2p_peer_id aid = lp2p_host_id(a);
    lp2p_stream *s = NULL;
    CHECK_EQ(lp2p_host_allow_limited(b, HOP, true), LP2P_OK);
    CHECK_EQ(lp2p_host_allow_limited(a, HOP, true), LP2P_OK);
    char aid_s[LP2P_PEER_ID_STRLEN];
    lp2p_peer_id_str(&aid, aid_s, sizeof aid_s);
    CHECK_EQ(lp2p_host_is_direct(b, &aid), 0);
    if (lp2p_stream_open(b, aid_s, HOP, lp2p_deadline_in(5000), &s) == LP2P_OK) {
        uint8_t reserve[2] = {0x08, 0x00}, buf[256];
        CHECK_EQ(lp2p_stream_write_msg(s, reserve, 2, lp2p_deadline_in(5000)), LP2P_OK);
        ptrdiff_t n = lp2p_stream_read_msg(s, buf, sizeof buf, lp2p_deadline_in(5000));
        /* STATUS (08 02) PERMISSION_DENIED = 202 (28 ca 01) */
        CHECK(n == 5 && buf[0] == 0x08 && buf[1] == 0x02 && buf[2] == 0x28 && buf[3] == 0xca && buf[4] == 0x01);
        lp2p_stream_close(s);
    } else {
        CHECK(0);
    }
    lp2p_host_free(c), lp2p_host_free(b), lp2p_host_free(a), lp2p_host_free(r);
}

/* Raw hop exchanges with a relay: one message in, the answer's status out (or -1). */
static int hop_exchange(lp2p_host *h, const char *relay, const uint8_t *msg, size_t len) {
    lp2p_stream *s = NULL;
    uint8_t buf[4096];
    int status = -1;
    if (lp2p_stream_open(h, relay, HOP, lp2p_deadline_in(5000), &s) != LP2P_OK) return -2;
    if (lp2p_stream_write_msg(s, msg, len, lp2p_deadline_in(5000)) == LP2P_OK) {
        ptrdiff_t n = lp2p_stream_read_msg(s, buf, sizeof buf, lp2p_deadline_in(5000));
        lp2p_pb_HopMessage m;
        memset(&m, 0, sizeof m);
        pb_istream_t st = pb_istream_from_buffer(buf, n > 0 ? (size_t)n : 0);
        if (n > 0 && pb_decode(&st, lp2p_pb_HopMessage_fields, &m) && m.has_status) status = (int)m.status;
    }
    lp2p_stream_close(s);
    return status;
}

static void test_bad_input(void) {
    TEST("relay: malformed and unexpected hop messages, CONNECT to unknown peers, reservation floods");
    lp2p_relay_config rc;
    memset(&rc, 0, sizeof rc);
    rc.max_reservations = 4;
    lp2p_host *r = new_relay(&rc), *a = new_host(false);
    if (!r || !a) return;
    const char *raddr = lp2p_host_addr(r, 0);
    uint8_t junk[] = {0xff, 0xff, 0xff};                   /* not a protobuf */
    uint8_t status_msg[] = {0x08, 0x02};                    /* type STATUS: unexpected */
    uint8_t connect_noid[] = {0x08, 0x01};                  /* CONNECT without peer */
    uint8_t connect_badid[] = {0x08, 0x01, 0x12, 0x04, 0x0a, 0x02, 0x00, 0x00}; /* peer.id = 00 00 */
    uint8_t connect_unknown[64] = {0x08, 0x01, 0x12, 0, 0x0a, 0};
    lp2p_peer_id other = lp2p_host_id(a); /* a has no reservation */
    connect_unknown[3] = (uint8_t)(other.len + 2), connect_unknown[5] = other.len;
    memcpy(connect_unknown + 6, other.bytes, other.len);
    CHECK_EQ(hop_exchange(a, raddr, junk, sizeof junk), 400);
    CHECK_EQ(hop_exchange(a, raddr, status_msg, sizeof status_msg), 401);
    CHECK_EQ(hop_exchange(a, raddr, connect_noid, sizeof connect_noid), 400);
    CHECK_EQ(hop_exchange(a, raddr, connect_badid, sizeof connect_badid), 400);
    CHECK_EQ(hop_exchange(a, raddr, connect_unknown, (size_t)(6 + other.len)), 204);
    /* a flood of RESERVEs from one peer holds one slot */
    uint8_t reserve[] = {0x08, 0x00};
    for (int i = 0; i < 50; i++) CHECK_EQ(hop_exchange(a, raddr, reserve, sizeof reserve), 100);
    CHECK_EQ(r->relay->n_rsvps, 1);
    /* an oversized message is refused and the relay keeps serving */
    lp2p_stream *s = NULL;
    if (lp2p_stream_open(a, raddr, HOP, lp2p_deadline_in(5000), &s) == LP2P_OK) {
        uint8_t *big = calloc(1, 5000);
        lp2p_stream_write_msg(s, big, 5000, lp2p_deadline_in(5000));
        uint8_t buf[64];
        CHECK(lp2p_stream_read_msg(s, buf, sizeof buf, lp2p_deadline_in(5000)) < 0 || buf[0] == 0x08);
        free(big);
        lp2p_stream_close(s);
    }
    CHECK_EQ(hop_exchange(a, raddr, reserve, sizeof reserve), 100);
    lp2p_host_free(a), lp2p_host_free(r);
}

/* A fake relay whose reservation carries a voucher signed by someone else (or for someone else). */
static lp2p__identity forger;
static int forge_mode;
static void fake_hop(lp2p_stream *s, void *user) {
    uint8_t buf[4096], payload[200], env[1024];
    (void)user;
    if (lp2p_stream_read_msg(s, buf, sizeof buf, lp2p_deadline_in(5000)) < 0) return;
    lp2p_host *h = lp2p_stream_host(s);
    lp2p_peer_id peer = lp2p_stream_peer(s), relay = lp2p_host_id(h);
    const lp2p_peer_id *vrelay = &relay, *vpeer = forge_mode == 2 ? &relay : &peer;
    size_t n = 0;
    payload[n++] = 0x0a, payload[n++] = vrelay->len, memcpy(payload + n, vrelay->bytes, vrelay->len), n += vrelay->len;
    payload[n++] = 0x12, payload[n++] = vpeer->len, memcpy(payload + n, vpeer->bytes, vpeer->len), n += vpeer->len;
    payload[n++] = 0x18, n += lp2p__uvarint_put(payload + n, 4000000000u);
    static const uint8_t type[2] = {0x03, 0x02};
    const lp2p__identity *signer = forge_mode == 1 ? &forger : &h->identity;
    ptrdiff_t el = lp2p__envelope_seal(signer, "libp2p-relay-rsvp", type, 2, payload, n, env, sizeof env);
    /* HopMessage{type STATUS, reservation{expire, voucher}, status OK} */
    size_t m = 0;
    buf[m++] = 0x08, buf[m++] = 0x02;
    uint8_t rsv[1100];
    size_t rl = 0;
    rsv[rl++] = 0x08, rl += lp2p__uvarint_put(rsv + rl, 4000000000u);
    rsv[rl++] = 0x1a, rl += lp2p__uvarint_put(rsv + rl, (uint64_t)el), memcpy(rsv + rl, env, (size_t)el), rl += (size_t)el;
    buf[m++] = 0x1a, m += lp2p__uvarint_put(buf + m, rl), memcpy(buf + m, rsv, rl), m += rl;
    buf[m++] = 0x28, buf[m++] = 0x64;
    lp2p_stream_write_msg(s, buf, m, lp2p_deadline_in(5000));
}

static void test_forged_voucher(void) {
    TEST("relay: vouchers signed by another key or for another peer are refused");
    uint8_t seed[32] = {9};
    lp2p__identity_from_seed(&forger, seed);
    lp2p_host *f = new_host(false), *a = new_host(false);
    if (!f || !a) return;
    CHECK_EQ(lp2p_host_handle(f, HOP, fake_hop, NULL), LP2P_OK);
    forge_mode = 0;
    CHECK_EQ(lp2p_relay_reserve(a, lp2p_host_addr(f, 0), lp2p_deadline_in(5000)), LP2P_OK); /* control: honest */
    lp2p_peer_id fid = lp2p_host_id(f);
    lp2p_relay_release(a, &fid);
    lp2p_sleep(a, lp2p_deadline_in(50));
    forge_mode = 1;
    CHECK_EQ(lp2p_relay_reserve(a, lp2p_host_addr(f, 0), lp2p_deadline_in(5000)), LP2P_ERR_PROTOCOL);
    forge_mode = 2;
    CHECK_EQ(lp2p_relay_reserve(a, lp2p_host_addr(f, 0), lp2p_deadline_in(5000)), LP2P_ERR_PROTOCOL);
    CHECK_EQ(count_circuit_addrs(a), 0);
    lp2p_host_free(a), lp2p_host_free(f);
}

static void test_limits(void) {
    TEST("relay: data and duration limits reset the circuit; circuit cap");
    lp2p_relay_config rc;
    memset(&rc, 0, sizeof rc);
    rc.limit_data = 50000;
    rc.limit_duration_s = 2;
    rc.max_circuits = 1;
    lp2p_host *r = new_relay(&rc), *a = new_host(false), *b = new_host(false), *c = new_host(false);
    char caddr[800];
    if (!r || !a || !b || !c) return;
    lp2p_peer_id aid = lp2p_host_id(a);
    lp2p_host_allow_limited(a, ECHO, true), lp2p_host_allow_limited(b, ECHO, true);
    CHECK_EQ(lp2p_relay_reserve(a, lp2p_host_addr(r, 0), lp2p_deadline_in(5000)), LP2P_OK);
    circuit_addr(r, a, caddr, sizeof caddr);
    CHECK_EQ(lp2p_host_connect(b, caddr, lp2p_deadline_in(5000)), LP2P_OK);
    /* circuit cap: a second relayed connection (C -> A) is refused while B's lives */
    CHECK_EQ(lp2p_host_connect(c, caddr, lp2p_deadline_in(5000)), LP2P_ERR_LIMIT); /* RESOURCE_LIMIT_EXCEEDED */
    CHECK(echo_roundtrip(b, caddr, 1000, 5000));
    /* 100 kB through a 50 kB budget: the relay resets, the relayed connection dies */
    CHECK(!echo_roundtrip(b, caddr, 100000, 5000));
    int64_t t = lp2p_deadline_in(5000);
    while (lp2p_host_is_connected(b, &aid) && lp2p_now() < t) lp2p_sleep(b, lp2p_deadline_in(20));
    CHECK(!lp2p_host_is_connected(b, &aid));
    /* duration: a new circuit lasts ~2 s */
    CHECK_EQ(lp2p_host_connect(b, caddr, lp2p_deadline_in(5000)), LP2P_OK);
    CHECK(lp2p_host_is_connected(b, &aid));
    t = lp2p_deadline_in(8000);
    while (lp2p_host_is_connected(b, &aid) && lp2p_now() < t) lp2p_sleep(b, lp2p_deadline_in(50));
    CHECK(!lp2p_host_is_connected(b, &aid));
    lp2p_host_free(c), lp2p_host_free(b), lp2p_host_free(a), lp2p_host_free(r);
}

static void test_refresh_and_loss(void) {
    TEST("relay: reservations are refreshed before expiry and re-made after the relay comes back");
    lp2p_relay_config rc;
    memset(&rc, 0, sizeof rc);
    rc.reservation_ttl_s = 2;
    lp2p_host *r = new_relay(&rc), *a = new_host(false), *b = new_host(false);
    char caddr[800];
    if (!r || !a || !b) return;
    lp2p_peer_id rid = lp2p_host_id(r);
    CHECK_EQ(lp2p_relay_reserve(a, lp2p_host_addr(r, 0), lp2p_deadline_in(5000)), LP2P_OK);
    circuit_addr(r, a, caddr, sizeof caddr);
    lp2p_sleep(a, lp2p_deadline_in(4500)); /* two TTLs: only refreshes keep it */
    CHECK_EQ(r->relay->n_rsvps, 1);
    CHECK(lp2p_ping(b, caddr, lp2p_deadline_in(5000)) >= 0);
    drain_events(a);
    /* the relay drops A: A reports the loss and reserves again (the relay still runs) */
    CHECK_EQ(lp2p_host_disconnect(r, &(lp2p_peer_id){0}), LP2P_ERR_NOTFOUND);
    lp2p_peer_id aid = lp2p_host_id(a);
    CHECK_EQ(lp2p_host_disconnect(r, &aid), LP2P_OK);
    lp2p_event ev;
    CHECK(wait_event(a, LP2P_EVENT_RELAY_LOST, &ev, NULL, 0, 3000) && lp2p_peer_id_eq(&ev.peer, &rid));
    CHECK(wait_event(a, LP2P_EVENT_RELAY_RESERVED, &ev, NULL, 0, 5000) && lp2p_peer_id_eq(&ev.peer, &rid));
    CHECK_EQ(count_circuit_addrs(a), 1);
    lp2p_host_free(b), lp2p_host_free(a), lp2p_host_free(r);
}

static void test_dcutr_loopback(void) {
    TEST("dcutr: a relayed connection becomes direct (loopback, ours <-> ours)");
    lp2p_host *r = new_relay(NULL), *a = new_host(true), *b = new_host(true);
    char caddr[800], direct[800];
    if (!r || !a || !b) return;
    lp2p_peer_id aid = lp2p_host_id(a), bid = lp2p_host_id(b);
    CHECK_EQ(lp2p_relay_reserve(a, lp2p_host_addr(r, 0), lp2p_deadline_in(5000)), LP2P_OK);
    /* B knows R (so identify gives B an observed address) */
    CHECK_EQ(lp2p_host_identify(b, lp2p_host_addr(r, 0), lp2p_deadline_in(5000)), LP2P_OK);
    circuit_addr(r, a, caddr, sizeof caddr);
    drain_events(a), drain_events(b);
    int64_t t0 = lp2p_now();
    CHECK_EQ(lp2p_host_connect(b, caddr, lp2p_deadline_in(5000)), LP2P_OK);
    lp2p_event ev;
    CHECK(wait_event(a, LP2P_EVENT_HOLE_PUNCH, &ev, direct, sizeof direct, 20000));
    CHECK_EQ(ev.err, 0);
    CHECK(strstr(direct, "/ip4/127.0.0.1/tcp/") == direct);
    CHECK(wait_event(b, LP2P_EVENT_HOLE_PUNCH, &ev, NULL, 0, 20000));
    CHECK_EQ(ev.err, 0);
    fprintf(stderr, "   direct after %lld ms\n", (long long)(lp2p_now() - t0));
    CHECK_EQ(lp2p_host_is_direct(a, &bid), 1);
    CHECK_EQ(lp2p_host_is_direct(b, &aid), 1);
    /* echo (not allowed on limited connections) now runs on the direct one */
    CHECK(echo_roundtrip(b, caddr, 300000, 5000));
    lp2p_host_free(b), lp2p_host_free(a), lp2p_host_free(r);
}

/* idle_timeout_ms closes connections without streams; the one a reservation rides on has none
 * between refreshes and must stay (on both sides), until the reservation is released. */
static lp2p_host *new_idle_host(int idle_ms) {
    lp2p_config cfg;
    lp2p_host *h = NULL;
    memset(&cfg, 0, sizeof cfg);
    cfg.log_level = getenv("LP2P_TEST_LOG") ? LP2P_LOG_DEBUG : LP2P_LOG_ERROR;
    cfg.idle_timeout_ms = idle_ms;
    CHECK_EQ(lp2p_host_new(&cfg, &h), LP2P_OK);
    return h;
}

static void test_idle_timeout(void) {
    TEST("relay: idle_timeout_ms keeps the reservation's connection (both sides), closes it once released");
    lp2p_host *r = new_idle_host(1000), *a = new_idle_host(1000), *b = new_idle_host(1000);
    if (!r || !a || !b) return;
    CHECK_EQ(lp2p_relay_service_start(r, NULL), LP2P_OK);
    lp2p_peer_id rid = lp2p_host_id(r);
    CHECK_EQ(lp2p_relay_reserve(a, lp2p_host_addr(r, 0), lp2p_deadline_in(10000)), LP2P_OK);
    CHECK_EQ(lp2p_host_connect(b, lp2p_host_addr(r, 0), lp2p_deadline_in(10000)), LP2P_OK); /* no reservation */
    drain_events(a);
    lp2p_sleep(a, lp2p_deadline_in(3500)); /* the idle check runs every second */
    CHECK_EQ(lp2p_host_is_connected(b, &rid), 0); /* the timeout is in force... */
    CHECK_EQ(lp2p_host_is_connected(a, &rid), 1); /* ...but not for the reservation's connection */
    CHECK_EQ(wait_event(a, LP2P_EVENT_RELAY_LOST, NULL, NULL, 0, 10), 0);
    CHECK_EQ(count_circuit_addrs(a), 1);
    CHECK_EQ(lp2p_relay_release(a, &rid), LP2P_OK);
    lp2p_sleep(a, lp2p_deadline_in(3500));
    CHECK_EQ(lp2p_host_is_connected(a, &rid), 0);
    lp2p_host_free(b), lp2p_host_free(a), lp2p_host_free(r);
}

int main(int argc, char **argv) {
    static const struct { const char *name; void (*fn)(void); } tests[] = {
        {"reserve", test_reserve_and_connect}, {"refusals", test_refusals}, {"bad", test_bad_input},
        {"voucher", test_forged_voucher},      {"limits", test_limits},     {"refresh", test_refresh_and_loss},
        {"dcutr", test_dcutr_loopback},        {"idle", test_idle_timeout},
    };
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        bool run = argc < 2;
        for (int k = 1; k < argc; k++) run |= strcmp(argv[k], tests[i].name) == 0;
        if (run) tests[i].fn();
    }
    TEST_END();
}
