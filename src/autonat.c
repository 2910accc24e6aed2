/* autonat.c - L7: AutoNAT v2 (client and server) and the AutoNAT v1 server: is this host
 * reachable from outside, and (when it is not) a relay reservation.
 *
 * Spec: libp2p/specs autonat/autonat-v2.md, autonat/autonat-v1.md.
 * v2: the client opens /libp2p/autonat/2/dial-request and sends DialRequest{addrs, nonce}; the
 * server picks the first address it is willing to dial, may first ask for 30-100 kB of dial data
 * (when the address's IP differs from the client's observed IP: amplification guard), dials it
 * on a fresh connection (not from its listen port) and sends DialBack{nonce} on
 * /libp2p/autonat/2/dial-back, then answers DialResponse{status, addrIdx, dialStatus}. The client
 * trusts an OK only if the nonce came back. v1: one DIAL/DIAL_RESPONSE exchange; the server dials
 * only addresses with the requester's observed IP.
 * Servers never serve requests over relayed (limited) connections and never dial private or
 * documentation-range addresses unless lp2p_autonat_config.allow_private_addrs.
 * Verdicts: the first answer sets an unknown status; a known one changes after 2 agreeing
 * answers (the spec suggests > 3 confirmations; go/rust have flapped: go-libp2p #2046).
 * Depends on: host.h (swarm, streams, tcp, relay hook), proto/autonat.pb.h. */
#include "host.h"

#include <pb_decode.h>
#include <pb_encode.h>

#define LP2P__AN2_DIAL "/libp2p/autonat/2/dial-request"
#define LP2P__AN2_BACK "/libp2p/autonat/2/dial-back"
#define LP2P__AN1 "/libp2p/autonat/1.0.0"
#define LP2P__HOP_PROTO_ID "/libp2p/circuit/relay/0.2.0/hop"
#define LP2P__AN_MSG_MAX 8192          /* go: maxMsgSize */
#define LP2P__AN_MAX_ADDRS 8           /* addresses we send / consider */
#define LP2P__AN_STREAM_MS 15000       /* go: streamTimeout */
#define LP2P__AN_DIAL_MS 10000         /* go: dialBackDialTimeout */
#define LP2P__AN_DIALBACK_MS 5000      /* go: dialBackStreamTimeout */
#define LP2P__AN_DATA_MIN 30000        /* dial data bounds (go and rust) */
#define LP2P__AN_DATA_MAX 100000
#define LP2P__AN_CHUNK 4096
#define LP2P__AN_REFRESH_MS (10 * 60 * 1000)
#define LP2P__AN_AUTO_TRIES 3          /* automatic probes of one peer that end without a verdict */

typedef struct lp2p__an_probe {
    uint64_t nonce;
    bool dialed_back;
    lp2p__ma local; /* where the dial-back arrived */
    struct lp2p__an_probe *next;
} lp2p__an_probe;

struct lp2p__autonat {
    lp2p_host *h;
    lp2p__notifee notifee;
    bool serving;
    lp2p_autonat_config cfg;
    int active; /* requests being served */
    lp2p__an_probe *probes;
    lp2p_nat_status status, last;
    int streak;
    int64_t status_at;
    bool probing, reserving;
};

typedef struct lp2p__an_addrs {
    lp2p__ma a[LP2P__AN_MAX_ADDRS];
    int n, seen; /* seen: entries in the message (indexes stay the peer's) */
    int idx[LP2P__AN_MAX_ADDRS];
} lp2p__an_addrs;

/* ---- addresses -------------------------------------------------------------------------------- */
static bool lp2p__an_dec_addr(pb_istream_t *st, const pb_field_t *f, void **arg) {
    lp2p__an_addrs *l = (lp2p__an_addrs *)*arg;
    uint8_t tmp[LP2P__MA_MAX];
    size_t n = st->bytes_left;
    (void)f;
    int index = l->seen++;
    if (n > sizeof tmp || l->n >= LP2P__AN_MAX_ADDRS) return pb_read(st, NULL, n);
    if (!pb_read(st, tmp, n)) return false;
    if (lp2p__ma_from_bytes(tmp, n, &l->a[l->n], NULL) == LP2P_OK) l->idx[l->n++] = index;
    return true;
}

static bool lp2p__an_enc_addrs(pb_ostream_t *st, const pb_field_t *f, void *const *arg) {
    const lp2p__an_addrs *l = (const lp2p__an_addrs *)*arg;
    for (int i = 0; i < l->n; i++)
        if (!pb_encode_tag_for_field(st, f) || !pb_encode_string(st, l->a[i].b, l->a[i].len)) return false;
    return true;
}

/* The IP component (code + bytes) of an address, for "same IP as observed" checks. */
static bool lp2p__an_same_ip(const lp2p__ma *a, const lp2p__ma *b) {
    size_t la = a->len && a->b[0] == LP2P__MA_IP4 ? 5 : a->len && a->b[0] == LP2P__MA_IP6 ? 17 : 0;
    return la && a->len >= la && b->len >= la && memcmp(a->b, b->b, la) == 0;
}

/* Publicly routable? Not private, loopback, link-local, shared (100.64/10), documentation
 * (192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32), multicast or reserved. */
static bool lp2p__an_is_public(const lp2p__ma *ma) {
    if (ma->len >= 5 && ma->b[0] == LP2P__MA_IP4) {
        const uint8_t *v = ma->b + 1;
        if (v[0] == 0 || v[0] == 10 || v[0] == 127 || v[0] >= 224) return false;
        if (v[0] == 100 && (v[1] & 0xc0) == 64) return false;
        if (v[0] == 169 && v[1] == 254) return false;
        if (v[0] == 172 && (v[1] & 0xf0) == 16) return false;
        if (v[0] == 192 && v[1] == 168) return false;
        if (v[0] == 192 && v[1] == 0 && (v[2] == 0 || v[2] == 2)) return false;
        if (v[0] == 198 && ((v[1] & 0xfe) == 18 || (v[1] == 51 && v[2] == 100))) return false;
        if (v[0] == 203 && v[1] == 0 && v[2] == 113) return false;
        return true;
    }
    if (ma->len >= 17 && ma->b[0] == LP2P__MA_IP6) {
        const uint8_t *v = ma->b + 1;
        if ((v[0] & 0xe0) != 0x20) return false; /* global unicast is 2000::/3 */
        return !(v[0] == 0x20 && v[1] == 0x01 && v[2] == 0x0d && v[3] == 0xb8);
    }
    return false;
}

static bool lp2p__an_dialable(lp2p__autonat *an, const lp2p__ma *ma) {
    return lp2p__ma_is_tcp(ma) && !lp2p__ma_is_circuit(ma) && (an->cfg.allow_private_addrs || lp2p__an_is_public(ma));
}

static int lp2p__an_port(const lp2p__ma *ma) {
    size_t off = 0, vn;
    uint32_t code;
    const uint8_t *v;
    while (lp2p__ma_next(ma, &off, &code, &v, &vn))
        if (code == LP2P__MA_TCP && vn == 2) return lp2p__be16(v);
    return -1;
}

/* Our candidates, best first (the server dials only the first it accepts): what peers observed
 * of our listen port (a NAT's mapping of it: we dial from the listen port), our specific listen
 * addresses, then other observed addresses (ephemeral dial ports: a dial-only host's last hope). */
static void lp2p__an_own_addrs(lp2p_host *h, lp2p__an_addrs *out) {
    static const uint8_t zero[16] = {0};
    out->n = 0;
    for (int pass = 0; pass < 3; pass++) {
        const lp2p__ma *cand[LP2P__MAX_PEER_ADDRS * 4];
        int nc = 0;
        if (pass == 1)
            for (lp2p__listener *l = h->listeners; l && nc < (int)LP2P__COUNT(cand); l = l->next) cand[nc++] = &l->addr;
        else
            for (lp2p__peer *p = h->peers; p && nc < (int)LP2P__COUNT(cand); p = p->next) {
                if (!p->observed.len) continue;
                bool listen_port = false;
                for (lp2p__listener *l = h->listeners; l && !listen_port; l = l->next)
                    listen_port = lp2p__an_port(&l->addr) == lp2p__an_port(&p->observed);
                if (listen_port == (pass == 0)) cand[nc++] = &p->observed;
            }
        for (int i = 0; i < nc && out->n < LP2P__AN_MAX_ADDRS; i++) {
            lp2p__ma base;
            lp2p__ma_split_p2p(cand[i], &base, NULL);
            if (!lp2p__ma_is_tcp(&base) || lp2p__ma_is_circuit(&base)) continue;
            if ((base.b[0] == LP2P__MA_IP4 && !memcmp(base.b + 1, zero, 4)) ||
                (base.b[0] == LP2P__MA_IP6 && !memcmp(base.b + 1, zero, 16)))
                continue; /* wildcard listener */
            bool dup = false;
            for (int k = 0; k < out->n && !dup; k++) dup = lp2p__ma_eq(&out->a[k], &base);
            if (!dup) out->a[out->n++] = base;
        }
    }
}

/* ---- messages --------------------------------------------------------------------------------- */
static int lp2p__an_send(lp2p_host *h, lp2p__pipe *p, const pb_msgdesc_t *fields, const void *msg, int64_t deadline) {
    uint8_t *buf = (uint8_t *)lp2p__alloc(&h->ctx, LP2P__AN_MSG_MAX);
    if (!buf) return LP2P_ERR_NOMEM;
    pb_ostream_t st = pb_ostream_from_buffer(buf, LP2P__AN_MSG_MAX);
    int rc = pb_encode(&st, fields, msg) ? lp2p__pipe_write_msg(&h->ctx, p, buf, st.bytes_written, deadline)
                                         : LP2P_ERR_MSGSIZE;
    lp2p__free(&h->ctx, buf, LP2P__AN_MSG_MAX);
    return rc;
}

static int lp2p__an_recv(lp2p_host *h, lp2p__pipe *p, const pb_msgdesc_t *fields, void *msg, int64_t deadline) {
    uint8_t *buf = (uint8_t *)lp2p__alloc(&h->ctx, LP2P__AN_MSG_MAX);
    if (!buf) return LP2P_ERR_NOMEM;
    ptrdiff_t n = lp2p__pipe_read_msg(p, buf, LP2P__AN_MSG_MAX, NULL, deadline);
    int rc = n < 0 ? (int)n : LP2P_OK;
    if (rc == LP2P_OK) {
        pb_istream_t st = pb_istream_from_buffer(buf, (size_t)n);
        if (!pb_decode(&st, fields, msg)) rc = LP2P_ERR_PROTOCOL;
    }
    lp2p__free(&h->ctx, buf, LP2P__AN_MSG_MAX);
    return rc == LP2P_ERR_MSGSIZE ? LP2P_ERR_PROTOCOL : rc;
}

/* ---- status ----------------------------------------------------------------------------------- */
static void lp2p__an_reserve_task(void *arg);

static void lp2p__an_result(lp2p__autonat *an, lp2p_nat_status r) {
    lp2p_host *h = an->h;
    an->streak = r == an->last ? an->streak + 1 : 1;
    an->last = r;
    an->status_at = lp2p_now();
    if (r == an->status || (an->status != LP2P_NAT_UNKNOWN && an->streak < 2)) return;
    an->status = r;
    LP2P__INFO(&h->ctx, "autonat: reachability is now %s", r == LP2P_NAT_PUBLIC ? "public" : "private");
    if (!h->freeing) lp2p__host_emit(h, LP2P_EVENT_NAT_STATUS, &h->identity.id, NULL, NULL, NULL, (int)r);
    for (lp2p__notifee *n = h->notifees; n && !h->freeing; n = n->next)
        if (n->nat_changed) n->nat_changed(n->user, (int)r); /* e.g. a DHT in AUTO mode */
    if (r == LP2P_NAT_PRIVATE && !an->reserving && !lp2p__relay_has_reservation(h)) {
        an->reserving = true;
        if (!lp2p__spawn(h->sched, lp2p__an_reserve_task, an).id) an->reserving = false;
    }
}

LP2P_API lp2p_nat_status lp2p_host_nat_status(lp2p_host *h) { return h->autonat->status; }

/* Private: reserve on a relay we are connected to (the first peer offering hop). */
static void lp2p__an_reserve_task(void *arg) {
    lp2p__autonat *an = (lp2p__autonat *)arg;
    lp2p_host *h = an->h;
    for (lp2p__conn *c = h->conns; c && !lp2p__relay_has_reservation(h); c = c->next) {
        lp2p__peer *p = c->closed || c->limited ? NULL : lp2p__peerstore_get(h, &c->peer, false);
        bool relay = false;
        for (int i = 0; p && i < p->n_protocols && !relay; i++) relay = strcmp(p->protocols[i], LP2P__HOP_PROTO_ID) == 0;
        if (!relay) continue;
        char id[LP2P_PEER_ID_STRLEN];
        lp2p_peer_id_str(&c->peer, id, sizeof id);
        int rc = lp2p_relay_reserve(h, id, lp2p_deadline_in(LP2P__AN_STREAM_MS));
        LP2P__INFO(&h->ctx, "autonat: private: reservation on relay %s: %s", id, lp2p_strerror(rc));
        break; /* the list may have changed while we waited */
    }
    an->reserving = false;
}

/* ---- client ----------------------------------------------------------------------------------- */
/* Send DialDataResponse messages carrying n bytes (chunks of 4 KiB). */
static bool lp2p__an_enc_zero(pb_ostream_t *st, const pb_field_t *f, void *const *arg) {
    static const uint8_t zero[LP2P__AN_CHUNK];
    size_t n = *(const size_t *)*arg;
    return pb_encode_tag_for_field(st, f) && pb_encode_string(st, zero, n);
}

static int lp2p__an_send_data(lp2p_host *h, lp2p__pipe *p, uint64_t total, int64_t deadline) {
    int rc = LP2P_OK;
    for (uint64_t sent = 0; sent < total && rc == LP2P_OK;) {
        size_t n = (size_t)LP2P__MIN((uint64_t)LP2P__AN_CHUNK, total - sent);
        lp2p_pb_AN2Message m;
        memset(&m, 0, sizeof m);
        m.has_dialDataResponse = true;
        m.dialDataResponse.data.funcs.encode = lp2p__an_enc_zero, m.dialDataResponse.data.arg = &n;
        rc = lp2p__an_send(h, p, lp2p_pb_AN2Message_fields, &m, deadline);
        sent += n;
    }
    return rc;
}

static int lp2p__an_exchange(lp2p_host *h, lp2p_stream *s, lp2p__an_addrs *own, uint64_t nonce, int64_t deadline,
                             lp2p_pb_AN2DialResponse *resp) {
    lp2p_pb_AN2Message *m = (lp2p_pb_AN2Message *)lp2p__zalloc(&h->ctx, sizeof *m);
    if (!m) return LP2P_ERR_NOMEM;
    m->has_dialRequest = true;
    m->dialRequest.addrs.funcs.encode = lp2p__an_enc_addrs, m->dialRequest.addrs.arg = own;
    m->dialRequest.has_nonce = true, m->dialRequest.nonce = nonce;
    int rc = lp2p__an_send(h, s->pipe, lp2p_pb_AN2Message_fields, m, deadline);
    for (int rounds = 0; rc == LP2P_OK; rounds++) {
        memset(m, 0, sizeof *m);
        rc = lp2p__an_recv(h, s->pipe, lp2p_pb_AN2Message_fields, m, deadline);
        if (rc) break;
        if (m->has_dialResponse) {
            *resp = m->dialResponse;
            break;
        }
        /* one dial-data request, for one of our addresses, within the bounds (else refuse) */
        if (!m->has_dialDataRequest || rounds > 0 || m->dialDataRequest.numBytes > LP2P__AN_DATA_MAX ||
            m->dialDataRequest.addrIdx >= (uint32_t)own->n) {
            rc = LP2P_ERR_PROTOCOL;
            break;
        }
        rc = lp2p__an_send_data(h, s->pipe, m->dialDataRequest.numBytes, deadline);
    }
    lp2p__free(&h->ctx, m, sizeof *m);
    return rc;
}

LP2P_API int lp2p_autonat_probe(lp2p_host *h, const char *server, int64_t deadline) {
    lp2p__autonat *an = h->autonat;
    lp2p__conn *c = NULL;
    lp2p_stream *s = NULL;
    lp2p__an_addrs own;
    lp2p__an_own_addrs(h, &own);
    if (own.n == 0) return LP2P_ERR_NOADDR;
    int rc = lp2p__swarm_connect(h, server, &c, deadline);
    if (rc) return rc;
    if (c->limited) { /* servers refuse these; a dial-back could not prove anything anyway */
        lp2p__conn_unref(c);
        return LP2P_ERR_INVALID;
    }
    lp2p__an_probe probe;
    memset(&probe, 0, sizeof probe);
    lp2p__random(&probe.nonce, sizeof probe.nonce);
    probe.next = an->probes, an->probes = &probe;
    int64_t step = lp2p__deadline_min(deadline, lp2p_deadline_in(LP2P__AN_STREAM_MS + LP2P__AN_DIAL_MS));
    rc = lp2p__host_open_on(c, LP2P__AN2_DIAL, step, &s);
    char id[LP2P_PEER_ID_STRLEN];
    lp2p_peer_id_str(&c->peer, id, sizeof id);
    lp2p__conn_unref(c);
    lp2p_pb_AN2DialResponse resp;
    memset(&resp, 0, sizeof resp);
    if (rc == LP2P_OK) rc = lp2p__an_exchange(h, s, &own, probe.nonce, step, &resp);
    for (lp2p__an_probe **pp = &an->probes; *pp; pp = &(*pp)->next)
        if (*pp == &probe) {
            *pp = probe.next;
            break;
        }
    if (s) {
        if (rc) lp2p_stream_reset(s);
        else lp2p_stream_close(s);
    }
    if (rc) {
        if (rc == LP2P_ERR_PROTOCOL) LP2P__WARN(&h->ctx, rc, "autonat: malformed answer from %s", id);
        return rc;
    }
    if (resp.status == lp2p_pb_AN2DialResponse_ResponseStatus_E_REQUEST_REJECTED ||
        resp.status == lp2p_pb_AN2DialResponse_ResponseStatus_E_DIAL_REFUSED) {
        LP2P__INFO(&h->ctx, "autonat: %s refused (status %d)", id, (int)resp.status);
        return LP2P_ERR_LIMIT;
    }
    if (resp.status != lp2p_pb_AN2DialResponse_ResponseStatus_OK || resp.addrIdx >= (uint32_t)own.n) return LP2P_ERR_PROTOCOL;
    char addr[LP2P__MA_STRLEN];
    lp2p__ma_str(&own.a[resp.addrIdx], addr, sizeof addr);
    if (resp.dialStatus == lp2p_pb_AN2DialStatus_AN2_OK) {
        if (!probe.dialed_back) { /* autonat-v2.md: an OK without our nonce is discarded */
            LP2P__WARN(&h->ctx, LP2P_ERR_PROTOCOL, "autonat: %s says it reached %s, but no dial-back with our nonce came",
                       id, addr);
            return LP2P_ERR_PROTOCOL;
        }
        LP2P__INFO(&h->ctx, "autonat: %s reached us at %s", id, addr);
        lp2p__an_result(an, LP2P_NAT_PUBLIC);
        return LP2P_NAT_PUBLIC;
    }
    if (resp.dialStatus == lp2p_pb_AN2DialStatus_AN2_E_DIAL_ERROR) {
        LP2P__INFO(&h->ctx, "autonat: %s could not dial %s", id, addr);
        lp2p__an_result(an, LP2P_NAT_PRIVATE);
        return LP2P_NAT_PRIVATE;
    }
    return LP2P_ERR_PROTOCOL; /* E_DIAL_BACK_ERROR: reached, but the proof failed: no verdict */
}

/* dial-back: the server proves it reached us. Only nonces of our own pending probes count. */
static void lp2p__an_dialback_serve(lp2p_stream *s, void *user) {
    lp2p__autonat *an = (lp2p__autonat *)user;
    lp2p_host *h = an->h;
    lp2p_pb_AN2DialBack m;
    memset(&m, 0, sizeof m);
    int rc = lp2p__an_recv(h, s->pipe, lp2p_pb_AN2DialBack_fields, &m, lp2p_deadline_in(LP2P__AN_DIALBACK_MS));
    lp2p__an_probe *p = an->probes;
    while (rc == LP2P_OK && p && p->nonce != m.nonce) p = p->next;
    if (!p) {
        if (rc == LP2P_OK) LP2P__INFO(&h->ctx, "autonat: dial-back with an unknown nonce: ignored");
        lp2p_stream_reset(s);
        return;
    }
    p->dialed_back = true;
    p->local = s->conn->local;
    lp2p_pb_AN2DialBackResponse r;
    memset(&r, 0, sizeof r);
    r.has_status = true, r.status = lp2p_pb_AN2DialBackResponse_DialBackStatus_OK;
    lp2p__an_send(h, s->pipe, lp2p_pb_AN2DialBackResponse_fields, &r, lp2p_deadline_in(LP2P__AN_DIALBACK_MS));
}

/* Automatic probes: after identify, ask a peer that serves v2 when our status is stale. */
static void lp2p__an_auto_task(void *arg) {
    lp2p__conn *c = (lp2p__conn *)arg;
    lp2p_host *h = c->h;
    lp2p__autonat *an = h->autonat;
    int64_t deadline = lp2p_deadline_in(LP2P__AN_STREAM_MS);
    int rc = LP2P_OK;
    while (!c->identified && !c->closed && rc == LP2P_OK) rc = lp2p__waitq_wait(h->sched, &c->identify_wait, deadline);
    lp2p__peer *p = rc == LP2P_OK && !c->closed ? lp2p__peerstore_get(h, &c->peer, false) : NULL;
    bool serves = false;
    for (int i = 0; p && i < p->n_protocols && !serves; i++) serves = strcmp(p->protocols[i], LP2P__AN2_DIAL) == 0;
    /* A probe that dies with its connection gets another try on the peer's next one: the
     * connection it ran on may have been a short-lived one (e.g. the fresh connection our own
     * AutoNAT service opened to dial that peer back, which it closes at once). */
    for (int attempt = 1; serves && !an->probing && !h->freeing && attempt <= LP2P__AN_AUTO_TRIES; attempt++) {
        bool stale = an->status == LP2P_NAT_UNKNOWN || lp2p_now() - an->status_at > LP2P__AN_REFRESH_MS;
        if (!stale) break;
        char id[LP2P_PEER_ID_STRLEN];
        lp2p_peer_id_str(&c->peer, id, sizeof id);
        an->probing = true;
        rc = lp2p_autonat_probe(h, id, lp2p_deadline_in(LP2P__AN_STREAM_MS + LP2P__AN_DIAL_MS));
        an->probing = false;
        LP2P__DEBUG(&h->ctx, "autonat: automatic probe %d via %s: %d", attempt, id, rc);
        if (rc >= 0 || rc == LP2P_ERR_LIMIT || rc == LP2P_ERR_PROTO_NA || rc == LP2P_ERR_NOADDR ||
            rc == LP2P_ERR_PROTOCOL || rc == LP2P_ERR_CANCELED || !lp2p_host_is_connected(h, &c->peer))
            break; /* a verdict, a refusal, or nobody left to ask */
        if (lp2p__sleep_until(h->sched, lp2p_deadline_in(1000)) != LP2P_OK) break;
    }
    lp2p__conn_unref(c);
}

static void lp2p__an_connected(void *user, lp2p__conn *c) {
    lp2p__autonat *an = (lp2p__autonat *)user;
    if (c->limited || an->probing || an->h->freeing) return;
    c->refs++;
    if (!lp2p__spawn(an->h->sched, lp2p__an_auto_task, c).id) c->refs--;
}

/* ---- server ----------------------------------------------------------------------------------- */
/* Dial peer at addr on a fresh connection (ephemeral port) and hand it to fn; then close it. */
static int lp2p__an_dial_fresh(lp2p_host *h, const lp2p_peer_id *peer, const lp2p__ma *addr, lp2p__conn **out) {
    lp2p__pipe *raw = NULL;
    lp2p__ma local, remote;
    int64_t deadline = lp2p_deadline_in(LP2P__AN_DIAL_MS);
    int rc = lp2p__tcp_dial(h->sched, addr, 0, &raw, &local, &remote, deadline);
    if (rc == LP2P_OK) rc = lp2p__swarm_upgrade(h, raw, true, peer, &local, addr, false, out, deadline);
    return rc;
}

static lp2p_pb_AN2DialStatus lp2p__an_dial_back(lp2p_host *h, const lp2p_peer_id *peer, const lp2p__ma *addr,
                                                uint64_t nonce) {
    lp2p__conn *c = NULL;
    lp2p_stream *s = NULL;
    if (lp2p__an_dial_fresh(h, peer, addr, &c) != LP2P_OK) return lp2p_pb_AN2DialStatus_AN2_E_DIAL_ERROR;
    int64_t deadline = lp2p_deadline_in(LP2P__AN_DIALBACK_MS);
    int rc = lp2p__host_open_on(c, LP2P__AN2_BACK, deadline, &s);
    if (rc == LP2P_OK) {
        lp2p_pb_AN2DialBack m;
        memset(&m, 0, sizeof m);
        m.has_nonce = true, m.nonce = nonce;
        rc = lp2p__an_send(h, s->pipe, lp2p_pb_AN2DialBack_fields, &m, deadline);
        if (rc == LP2P_OK) { /* wait for the answer (or EOF) so the nonce surely arrived */
            lp2p_stream_close_write(s);
            uint8_t b[16];
            rc = lp2p_stream_read(s, b, sizeof b, deadline) > 0 ? LP2P_OK : LP2P_ERR_EOF;
        }
        if (rc) lp2p_stream_reset(s);
        else lp2p_stream_close(s);
    }
    lp2p__conn_close(c);
    lp2p__conn_unref(c);
    return rc == LP2P_OK ? lp2p_pb_AN2DialStatus_AN2_OK : lp2p_pb_AN2DialStatus_AN2_E_DIAL_BACK_ERROR;
}

static bool lp2p__an_count_data(pb_istream_t *st, const pb_field_t *f, void **arg) {
    size_t n = st->bytes_left;
    (void)f;
    *(uint64_t *)*arg += n;
    return pb_read(st, NULL, n);
}

/* Read dial data until numBytes arrived; messages must carry >= 100 bytes (go's rule). */
static int lp2p__an_read_data(lp2p_host *h, lp2p__pipe *p, uint64_t want, int64_t deadline) {
    uint64_t got = 0;
    while (got < want) {
        uint64_t n = 0;
        lp2p_pb_AN2Message m;
        memset(&m, 0, sizeof m);
        m.dialDataResponse.data.funcs.decode = lp2p__an_count_data, m.dialDataResponse.data.arg = &n;
        int rc = lp2p__an_recv(h, p, lp2p_pb_AN2Message_fields, &m, deadline);
        if (rc) return rc;
        if (!m.has_dialDataResponse || (n < 100 && got + n < want)) return LP2P_ERR_PROTOCOL;
        got += n;
    }
    return LP2P_OK;
}

static int lp2p__an2_respond(lp2p_host *h, lp2p_stream *s, lp2p_pb_AN2DialResponse_ResponseStatus st, uint32_t idx,
                             lp2p_pb_AN2DialStatus ds) {
    lp2p_pb_AN2Message m;
    memset(&m, 0, sizeof m);
    m.has_dialResponse = true;
    m.dialResponse.has_status = true, m.dialResponse.status = st;
    if (st == lp2p_pb_AN2DialResponse_ResponseStatus_OK) {
        m.dialResponse.has_addrIdx = true, m.dialResponse.addrIdx = idx;
        m.dialResponse.has_dialStatus = true, m.dialResponse.dialStatus = ds;
    }
    return lp2p__an_send(h, s->pipe, lp2p_pb_AN2Message_fields, &m, lp2p_deadline_in(LP2P__AN_STREAM_MS));
}

static void lp2p__an2_serve_request(lp2p__autonat *an, lp2p_stream *s) {
    lp2p_host *h = an->h;
    char id[LP2P_PEER_ID_STRLEN];
    lp2p_peer_id_str(&s->peer, id, sizeof id);
    int64_t deadline = lp2p_deadline_in(LP2P__AN_STREAM_MS);
    lp2p_pb_AN2Message *m = (lp2p_pb_AN2Message *)lp2p__zalloc(&h->ctx, sizeof *m);
    lp2p__an_addrs *addrs = (lp2p__an_addrs *)lp2p__zalloc(&h->ctx, sizeof *addrs);
    int rc = m && addrs ? LP2P_OK : LP2P_ERR_NOMEM;
    if (rc == LP2P_OK) {
        m->dialRequest.addrs.funcs.decode = lp2p__an_dec_addr, m->dialRequest.addrs.arg = addrs;
        rc = lp2p__an_recv(h, s->pipe, lp2p_pb_AN2Message_fields, m, deadline);
    }
    if (rc == LP2P_OK && !m->has_dialRequest) rc = LP2P_ERR_PROTOCOL;
    if (rc) {
        if (rc == LP2P_ERR_PROTOCOL) LP2P__WARN(&h->ctx, rc, "autonat: malformed dial request from %s", id);
        lp2p_stream_reset(s);
    } else {
        int pick = -1;
        for (int i = 0; i < addrs->n && pick < 0; i++)
            if (lp2p__an_dialable(an, &addrs->a[i])) pick = i;
        if (pick < 0) {
            LP2P__INFO(&h->ctx, "autonat: nothing we may dial among %d addresses of %s", addrs->seen, id);
            lp2p__an2_respond(h, s, lp2p_pb_AN2DialResponse_ResponseStatus_E_DIAL_REFUSED, 0, 0);
        } else {
            /* another IP than the one we see: make the requester pay in bytes first (amplification) */
            if (!lp2p__an_same_ip(&addrs->a[pick], &s->conn->remote)) {
                uint32_t r;
                lp2p__random(&r, sizeof r);
                uint64_t want = LP2P__AN_DATA_MIN + r % (LP2P__AN_DATA_MAX - LP2P__AN_DATA_MIN);
                m->has_dialDataRequest = true, m->has_dialRequest = false, m->has_dialResponse = false;
                m->dialDataRequest.has_addrIdx = true, m->dialDataRequest.addrIdx = (uint32_t)addrs->idx[pick];
                m->dialDataRequest.has_numBytes = true, m->dialDataRequest.numBytes = want;
                m->dialRequest.addrs.funcs.encode = NULL;
                rc = lp2p__an_send(h, s->pipe, lp2p_pb_AN2Message_fields, m, deadline);
                if (rc == LP2P_OK) rc = lp2p__an_read_data(h, s->pipe, want, deadline);
                if (rc) LP2P__INFO(&h->ctx, "autonat: %s did not send the dial data: %s", id, lp2p_strerror(rc));
            }
            if (rc == LP2P_OK) {
                lp2p_pb_AN2DialStatus ds = lp2p__an_dial_back(h, &s->peer, &addrs->a[pick], m->dialRequest.nonce);
                rc = lp2p__an2_respond(h, s, lp2p_pb_AN2DialResponse_ResponseStatus_OK, (uint32_t)addrs->idx[pick], ds);
            } else {
                lp2p_stream_reset(s);
            }
        }
    }
    lp2p__free(&h->ctx, m, sizeof *m);
    lp2p__free(&h->ctx, addrs, sizeof *addrs);
}

static void lp2p__an2_serve(lp2p_stream *s, void *user) {
    lp2p__autonat *an = (lp2p__autonat *)user;
    if (!an->serving || s->conn->limited) { /* autonat-v2.md: not over relayed connections */
        lp2p_stream_reset(s);
        return;
    }
    if (an->active >= an->cfg.max_concurrent) {
        LP2P__WARN(&an->h->ctx, LP2P_ERR_LIMIT, "autonat: max_concurrent=%d reached: request rejected",
                   an->cfg.max_concurrent);
        lp2p__an2_respond(an->h, s, lp2p_pb_AN2DialResponse_ResponseStatus_E_REQUEST_REJECTED, 0, 0);
        return;
    }
    an->active++;
    lp2p__an2_serve_request(an, s);
    an->active--;
}

/* v1: dial back on addresses with the requester's observed IP (autonat-v1.md). */
static void lp2p__an1_serve(lp2p_stream *s, void *user) {
    lp2p__autonat *an = (lp2p__autonat *)user;
    lp2p_host *h = an->h;
    if (!an->serving || s->conn->limited || an->active >= an->cfg.max_concurrent) {
        lp2p_stream_reset(s);
        return;
    }
    an->active++;
    int64_t deadline = lp2p_deadline_in(LP2P__AN_STREAM_MS);
    lp2p__an_addrs *addrs = (lp2p__an_addrs *)lp2p__zalloc(&h->ctx, sizeof *addrs);
    lp2p_pb_AN1Message *m = (lp2p_pb_AN1Message *)lp2p__zalloc(&h->ctx, sizeof *m);
    int rc = m && addrs ? LP2P_OK : LP2P_ERR_NOMEM;
    if (rc == LP2P_OK) {
        m->dial.peer.addrs.funcs.decode = lp2p__an_dec_addr, m->dial.peer.addrs.arg = addrs;
        rc = lp2p__an_recv(h, s->pipe, lp2p_pb_AN1Message_fields, m, deadline);
    }
    if (rc) {
        lp2p_stream_reset(s);
    } else {
        lp2p_pb_AN1Message_ResponseStatus st = lp2p_pb_AN1Message_ResponseStatus_E_DIAL_REFUSED;
        lp2p_peer_id claimed;
        lp2p__ma reached;
        reached.len = 0;
        if (!m->has_type || m->type != lp2p_pb_AN1Message_MessageType_DIAL || !m->has_dial || !m->dial.peer.has_id ||
            lp2p__peer_id_from_bytes(m->dial.peer.id.bytes, m->dial.peer.id.size, &claimed) ||
            !lp2p_peer_id_eq(&claimed, &s->peer)) {
            st = lp2p_pb_AN1Message_ResponseStatus_E_BAD_REQUEST;
        } else {
            for (int i = 0, tried = 0; i < addrs->n && tried < 3 && !reached.len; i++) {
                if (!lp2p__an_dialable(an, &addrs->a[i]) || !lp2p__an_same_ip(&addrs->a[i], &s->conn->remote)) continue;
                tried++;
                st = lp2p_pb_AN1Message_ResponseStatus_E_DIAL_ERROR;
                lp2p__conn *c = NULL;
                if (lp2p__an_dial_fresh(h, &s->peer, &addrs->a[i], &c) == LP2P_OK) {
                    reached = addrs->a[i];
                    st = lp2p_pb_AN1Message_ResponseStatus_OK;
                    lp2p__conn_close(c);
                    lp2p__conn_unref(c);
                }
            }
        }
        memset(m, 0, sizeof *m);
        m->has_type = true, m->type = lp2p_pb_AN1Message_MessageType_DIAL_RESPONSE;
        m->has_dialResponse = true, m->dialResponse.has_status = true, m->dialResponse.status = st;
        if (reached.len) {
            m->dialResponse.has_addr = true, m->dialResponse.addr.size = reached.len;
            memcpy(m->dialResponse.addr.bytes, reached.b, reached.len);
        }
        lp2p__an_send(h, s->pipe, lp2p_pb_AN1Message_fields, m, deadline);
    }
    lp2p__free(&h->ctx, m, sizeof *m);
    lp2p__free(&h->ctx, addrs, sizeof *addrs);
    an->active--;
}

LP2P_API int lp2p_autonat_service_start(lp2p_host *h, const lp2p_autonat_config *cfg) {
    lp2p__autonat *an = h->autonat;
    if (cfg) an->cfg = *cfg;
    else memset(&an->cfg, 0, sizeof an->cfg);
    if (an->cfg.max_concurrent <= 0) an->cfg.max_concurrent = 4;
    an->serving = true;
    int rc = lp2p_host_handle(h, LP2P__AN2_DIAL, lp2p__an2_serve, an);
    if (rc == LP2P_OK) rc = lp2p_host_handle(h, LP2P__AN1, lp2p__an1_serve, an);
    return rc;
}

LP2P__PRIV int lp2p__autonat_init(lp2p_host *h) {
    lp2p__autonat *an = (lp2p__autonat *)lp2p__zalloc(&h->ctx, sizeof *an);
    if (!an) return LP2P_ERR_NOMEM;
    an->h = h;
    an->cfg.max_concurrent = 4;
    an->notifee.connected = lp2p__an_connected;
    an->notifee.user = an;
    h->autonat = an;
    lp2p__swarm_add_notifee(h, &an->notifee);
    return lp2p_host_handle(h, LP2P__AN2_BACK, lp2p__an_dialback_serve, an);
}

LP2P__PRIV void lp2p__autonat_free(lp2p_host *h) {
    lp2p__free(&h->ctx, h->autonat, sizeof *h->autonat);
    h->autonat = NULL;
}
