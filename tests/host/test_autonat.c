/* test_autonat.c - AutoNAT v2 client/server and the v1 server between our own hosts on 127.0.0.0/8:
 * reachable (public), unreachable (private), dial data when the IP differs (127.0.0.2 vs
 * 127.0.0.1), refusals (private addresses not allowed, concurrency), the nonce check against a
 * lying server, dial-data requests out of bounds, v1 requests (good, wrong peer ID, other IP),
 * malformed input, and "private -> reserve on a relay we know". */
#define LIBP2P_IMPLEMENTATION
#include "libp2p.h"
#include "tests/test.h"

#include <pb_decode.h>

#define AN2 "/libp2p/autonat/2/dial-request"
#define AN1 "/libp2p/autonat/1.0.0"

static lp2p_host *new_host(const char *listen, bool no_listen) {
    lp2p_config cfg;
    lp2p_host *h = NULL;
    memset(&cfg, 0, sizeof cfg);
    cfg.log_level = getenv("LP2P_TEST_LOG") ? LP2P_LOG_DEBUG : LP2P_LOG_ERROR;
    cfg.listen_addrs[0] = listen;
    cfg.no_listen = no_listen;
    CHECK_EQ(lp2p_host_new(&cfg, &h), LP2P_OK);
    return h;
}

static lp2p_host *new_server(bool allow_private) {
    lp2p_host *s = new_host(NULL, false);
    lp2p_autonat_config c = {allow_private, 0};
    if (s) CHECK_EQ(lp2p_autonat_service_start(s, &c), LP2P_OK);
    return s;
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

static void test_public_private(void) {
    TEST("autonat v2: a listening host is public, a dial-only one private");
    lp2p_host *s = new_server(true), *c = new_host(NULL, false), *d = new_host(NULL, true);
    if (!s || !c || !d) return;
    CHECK_EQ(lp2p_host_nat_status(c), LP2P_NAT_UNKNOWN);
    CHECK_EQ(lp2p_autonat_probe(c, lp2p_host_addr(s, 0), lp2p_deadline_in(20000)), LP2P_NAT_PUBLIC);
    CHECK_EQ(lp2p_host_nat_status(c), LP2P_NAT_PUBLIC);
    lp2p_event ev;
    CHECK(wait_event(c, LP2P_EVENT_NAT_STATUS, &ev, 1000) && ev.err == LP2P_NAT_PUBLIC);
    /* d has no listener: the only candidate is what s observed (its ephemeral dial port) */
    CHECK_EQ(lp2p_autonat_probe(d, lp2p_host_addr(s, 0), lp2p_deadline_in(20000)), LP2P_ERR_NOADDR);
    CHECK_EQ(lp2p_host_identify(d, lp2p_host_addr(s, 0), lp2p_deadline_in(5000)), LP2P_OK);
    CHECK_EQ(lp2p_autonat_probe(d, lp2p_host_addr(s, 0), lp2p_deadline_in(20000)), LP2P_NAT_PRIVATE);
    CHECK_EQ(lp2p_host_nat_status(d), LP2P_NAT_PRIVATE);
    /* one PUBLIC answer does not flip a known verdict, two do */
    lp2p_host_free(d), lp2p_host_free(c), lp2p_host_free(s);
}

static void test_refused_and_dial_data(void) {
    TEST("autonat v2: private addresses refused by default; dial data when the IP differs");
    lp2p_host *strict = new_server(false), *s = new_server(true), *c = new_host("/ip4/127.0.0.2/tcp/0", false);
    if (!strict || !s || !c) return;
    CHECK_EQ(lp2p_autonat_probe(c, lp2p_host_addr(strict, 0), lp2p_deadline_in(20000)), LP2P_ERR_LIMIT);
    /* c listens on 127.0.0.2 but reaches s from 127.0.0.1: s asks for 30-100 kB first */
    CHECK_EQ(lp2p_autonat_probe(c, lp2p_host_addr(s, 0), lp2p_deadline_in(20000)), LP2P_NAT_PUBLIC);
    lp2p_host_free(c), lp2p_host_free(s), lp2p_host_free(strict);
}

/* A lying server: answers OK without dialing back; or asks for too much dial data. */
static int liar_mode;
static void liar(lp2p_stream *st, void *user) {
    uint8_t buf[8192];
    (void)user;
    if (lp2p_stream_read_msg(st, buf, sizeof buf, lp2p_deadline_in(5000)) < 0) return;
    if (liar_mode == 0) { /* dialResponse{status OK, addrIdx 0, dialStatus OK} */
        uint8_t resp[] = {0x12, 0x08, 0x08, 0xc8, 0x01, 0x10, 0x00, 0x18, 0xc8, 0x01};
        lp2p_stream_write_msg(st, resp, sizeof resp, lp2p_deadline_in(5000));
    } else { /* dialDataRequest{addrIdx 0, numBytes 10 MB} */
        uint8_t req[16] = {0x1a, 0, 0x08, 0x00, 0x10};
        size_t n = 5 + lp2p__uvarint_put(req + 5, 10000000);
        req[1] = (uint8_t)(n - 2);
        lp2p_stream_write_msg(st, req, n, lp2p_deadline_in(5000));
        lp2p_stream_read_msg(st, buf, sizeof buf, lp2p_deadline_in(2000));
    }
}

static void test_liars(void) {
    TEST("autonat v2: OK without our nonce is discarded; oversized dial-data requests refused");
    lp2p_host *f = new_host(NULL, false), *c = new_host(NULL, false);
    if (!f || !c) return;
    CHECK_EQ(lp2p_host_handle(f, AN2, liar, NULL), LP2P_OK);
    liar_mode = 0;
    CHECK_EQ(lp2p_autonat_probe(c, lp2p_host_addr(f, 0), lp2p_deadline_in(10000)), LP2P_ERR_PROTOCOL);
    CHECK_EQ(lp2p_host_nat_status(c), LP2P_NAT_UNKNOWN);
    liar_mode = 1;
    CHECK_EQ(lp2p_autonat_probe(c, lp2p_host_addr(f, 0), lp2p_deadline_in(10000)), LP2P_ERR_PROTOCOL);
    lp2p_host_free(c), lp2p_host_free(f);
}

/* Send one raw message on protocol, return the reply length (into buf) or an error. */
static ptrdiff_t raw_exchange(lp2p_host *h, const char *addr, const char *proto, const uint8_t *msg, size_t len,
                              uint8_t *buf, size_t cap) {
    lp2p_stream *s = NULL;
    int rc = lp2p_stream_open(h, addr, proto, lp2p_deadline_in(5000), &s);
    if (rc) return rc;
    ptrdiff_t n = lp2p_stream_write_msg(s, msg, len, lp2p_deadline_in(5000));
    if (n == LP2P_OK) n = lp2p_stream_read_msg(s, buf, cap, lp2p_deadline_in(15000));
    lp2p_stream_close(s);
    return n;
}

/* AN1 DIAL message for peer id with one address. */
static size_t an1_dial(const lp2p_peer_id *id, const char *addr_text, uint8_t *out) {
    lp2p__ma ma;
    lp2p__ma_parse(addr_text, &ma, NULL);
    lp2p__ma_split_p2p(&ma, &ma, NULL);
    uint8_t peer[600];
    size_t p = 0;
    peer[p++] = 0x0a, peer[p++] = id->len, memcpy(peer + p, id->bytes, id->len), p += id->len;
    peer[p++] = 0x12, p += lp2p__uvarint_put(peer + p, ma.len), memcpy(peer + p, ma.b, ma.len), p += ma.len;
    size_t n = 0;
    out[n++] = 0x08, out[n++] = 0x00;                                         /* type DIAL */
    out[n++] = 0x12, n += lp2p__uvarint_put(out + n, p + 1 + lp2p__uvarint_len(p)); /* dial */
    out[n++] = 0x0a, n += lp2p__uvarint_put(out + n, p), memcpy(out + n, peer, p), n += p;
    return n;
}

static int an1_status(const uint8_t *buf, ptrdiff_t n) {
    lp2p_pb_AN1Message m;
    memset(&m, 0, sizeof m);
    pb_istream_t st = pb_istream_from_buffer(buf, n > 0 ? (size_t)n : 0);
    if (n <= 0 || !pb_decode(&st, lp2p_pb_AN1Message_fields, &m) || !m.has_dialResponse) return -1;
    return (int)m.dialResponse.status;
}

static void test_v1_and_bad_input(void) {
    TEST("autonat v1 server: good request, wrong peer ID, other IP; malformed v2 requests");
    lp2p_host *s = new_server(true), *c = new_host(NULL, false), *o = new_host("/ip4/127.0.0.2/tcp/0", false);
    uint8_t msg[1024], buf[1024];
    if (!s || !c || !o) return;
    const char *saddr = lp2p_host_addr(s, 0);
    lp2p_peer_id cid = lp2p_host_id(c), oid = lp2p_host_id(o);
    size_t n = an1_dial(&cid, lp2p_host_addr(c, 0), msg);
    CHECK_EQ(an1_status(buf, raw_exchange(c, saddr, AN1, msg, n, buf, sizeof buf)), 0); /* OK */
    n = an1_dial(&oid, lp2p_host_addr(c, 0), msg);                                       /* not the requester */
    CHECK_EQ(an1_status(buf, raw_exchange(c, saddr, AN1, msg, n, buf, sizeof buf)), 200); /* E_BAD_REQUEST */
    n = an1_dial(&oid, lp2p_host_addr(o, 0), msg); /* o listens on 127.0.0.2, is seen as 127.0.0.1 */
    CHECK_EQ(an1_status(buf, raw_exchange(o, saddr, AN1, msg, n, buf, sizeof buf)), 101); /* E_DIAL_REFUSED */
    /* v2 request for 127.0.0.2 from a host seen as 127.0.0.1: the server first asks for dial data */
    lp2p__ma oma;
    lp2p__ma_parse(lp2p_host_addr(o, 0), &oma, NULL);
    lp2p__ma_split_p2p(&oma, &oma, NULL);
    size_t k = 0;
    uint8_t req[600];
    req[k++] = 0x0a, k += lp2p__uvarint_put(req + k, (uint64_t)(2 + oma.len + 9));
    req[k++] = 0x0a, req[k++] = (uint8_t)oma.len, memcpy(req + k, oma.b, oma.len), k += oma.len;
    req[k++] = 0x11, memset(req + k, 7, 8), k += 8;
    ptrdiff_t rn = raw_exchange(o, saddr, AN2, req, k, buf, sizeof buf);
    lp2p_pb_AN2Message am;
    memset(&am, 0, sizeof am);
    pb_istream_t ast = pb_istream_from_buffer(buf, rn > 0 ? (size_t)rn : 0);
    CHECK(rn > 0 && pb_decode(&ast, lp2p_pb_AN2Message_fields, &am) && am.has_dialDataRequest);
    CHECK(am.dialDataRequest.numBytes >= 30000 && am.dialDataRequest.numBytes <= 100000);
    CHECK_EQ(am.dialDataRequest.addrIdx, 0);
    /* junk on the v2 protocol: the stream is reset, the server keeps serving */
    uint8_t junk[] = {0xff, 0xff, 0xff};
    CHECK(raw_exchange(c, saddr, AN2, junk, sizeof junk, buf, sizeof buf) < 0);
    uint8_t no_request[] = {0x12, 0x00}; /* a dialResponse where a dialRequest belongs */
    CHECK(raw_exchange(c, saddr, AN2, no_request, sizeof no_request, buf, sizeof buf) < 0);
    CHECK_EQ(lp2p_autonat_probe(c, saddr, lp2p_deadline_in(20000)), LP2P_NAT_PUBLIC);
    lp2p_host_free(o), lp2p_host_free(c), lp2p_host_free(s);
}

static void test_private_reserves(void) {
    TEST("autonat: private -> the host reserves on a relay it is connected to; an AUTO DHT turns client");
    lp2p_host *r = new_server(true), *c = new_host(NULL, true);
    if (!r || !c) return;
    CHECK_EQ(lp2p_relay_service_start(r, NULL), LP2P_OK);
    lp2p_kad_config kc;
    memset(&kc, 0, sizeof kc);
    kc.protocol = "/test-app/kad/1.0.0"; /* an app DHT: AUTO means server while reachable */
    lp2p_kad *dht = NULL, *fixed = NULL;
    CHECK_EQ(lp2p_kad_new(c, &kc, &dht), LP2P_OK);
    kc.protocol = "/test-fixed/kad/1.0.0", kc.mode = LP2P_KAD_SERVER; /* an explicit mode stays */
    CHECK_EQ(lp2p_kad_new(c, &kc, &fixed), LP2P_OK);
    CHECK_EQ(lp2p_kad_get_mode(dht), LP2P_KAD_SERVER); /* status unknown yet */
    /* connecting is enough: identify shows r serves AutoNAT v2, c probes, is private, reserves */
    CHECK_EQ(lp2p_host_connect(c, lp2p_host_addr(r, 0), lp2p_deadline_in(5000)), LP2P_OK);
    lp2p_event ev;
    CHECK(wait_event(c, LP2P_EVENT_NAT_STATUS, &ev, 20000) && ev.err == LP2P_NAT_PRIVATE);
    CHECK(wait_event(c, LP2P_EVENT_RELAY_RESERVED, &ev, 10000));
    int circuit = 0;
    for (int i = 0; i < lp2p_host_addr_count(c); i++) circuit |= strstr(lp2p_host_addr(c, i), "/p2p-circuit/") != NULL;
    CHECK(circuit);
    CHECK_EQ(lp2p_kad_get_mode(dht), LP2P_KAD_CLIENT);
    CHECK_EQ(lp2p_kad_get_mode(fixed), LP2P_KAD_SERVER);
    lp2p_kad_free(fixed), lp2p_kad_free(dht);
    lp2p_host_free(c), lp2p_host_free(r);
}

int main(void) {
    test_public_private();
    test_refused_and_dial_data();
    test_liars();
    test_v1_and_bad_input();
    test_private_reserves();
    TEST_END();
}
