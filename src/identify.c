/* identify.c - L7: identify (/ipfs/id/1.0.0) and identify push (/ipfs/id/push/1.0.0).
 *
 * Spec: libp2p/specs identify/README.md; signed peer records: RFC/0002-signed-envelopes.md and
 * RFC/0003-routing-records.md (domain "libp2p-peer-record", payload type 03 01 as go and js).
 * On every new connection we ask the peer (read messages until EOF and merge them: go splits a
 * large message in two), store what it says in the peerstore, and answer its request with
 * our message (<= 4 KiB, rust's cap; the signed record goes in a second message if needed).
 * When our protocols or addresses change, we push to every connection.
 * Depends on: host.h, proto/identify.pb.h, proto/peer_record.pb.h.
 */
#include "host.h"

#include <pb_decode.h>
#include <pb_encode.h>
#include <time.h>

#define LP2P__ID_PROTO "/ipfs/id/1.0.0"
#define LP2P__ID_PUSH_PROTO "/ipfs/id/push/1.0.0"
#define LP2P__ID_PROTOCOL_VERSION "ipfs/0.1.0"
#define LP2P__ID_MAX_MSG 8192      /* go's cap per received message */
#define LP2P__ID_MAX_OWN 4096      /* rust rejects larger */
#define LP2P__ID_MAX_MSGS 10       /* go reads at most 10 messages */
#define LP2P__ID_TIMEOUT_MS 10000
#define LP2P__ID_ADDR_TTL_MS (60 * 60 * 1000)
#define LP2P__ID_RECORD_DOMAIN "libp2p-peer-record"
static const uint8_t lp2p__id_record_type[2] = {0x03, 0x01};

struct lp2p__identify {
    lp2p__notifee notifee;
    bool push_scheduled;
};

/* ---- decoding (peer input: every field capped) ---------------------------------------------- */
typedef struct lp2p__id_info {
    char protocol_version[128], agent_version[256];
    bool has_pv, has_av;
    uint8_t pubkey[LP2P__PUBKEY_MAX];
    size_t pubkey_len;
    lp2p__ma addrs[LP2P__MAX_PEER_ADDRS];
    int n_addrs;
    lp2p__ma observed;
    char *protocols[LP2P__MAX_PEER_PROTOCOLS];
    int n_protocols;
    bool has_protocols;
    uint8_t record[2048];
    size_t record_len;
    lp2p__ctx *ctx;
} lp2p__id_info;

static bool lp2p__id_read_bytes(pb_istream_t *st, uint8_t *buf, size_t cap, size_t *len) {
    size_t n = st->bytes_left;
    if (n > cap) return pb_read(st, NULL, n) && false; /* too long for us: skip it, but fail the field */
    if (!pb_read(st, buf, n)) return false;
    *len = n;
    return true;
}

static bool lp2p__id_decode_field(pb_istream_t *st, const pb_field_t *field, void **arg) {
    lp2p__id_info *in = (lp2p__id_info *)*arg;
    uint8_t tmp[LP2P__MA_MAX + 1];
    size_t n = 0;
    switch (field->tag) {
    case 5: /* protocolVersion */
        if (!lp2p__id_read_bytes(st, (uint8_t *)in->protocol_version, sizeof in->protocol_version - 1, &n)) return true;
        in->protocol_version[n] = 0, in->has_pv = true;
        return true;
    case 6: /* agentVersion */
        if (!lp2p__id_read_bytes(st, (uint8_t *)in->agent_version, sizeof in->agent_version - 1, &n)) return true;
        in->agent_version[n] = 0, in->has_av = true;
        return true;
    case 1: /* publicKey */
        return lp2p__id_read_bytes(st, in->pubkey, sizeof in->pubkey, &in->pubkey_len);
    case 2: /* listenAddrs: keep the valid ones, up to our cap */
        if (lp2p__id_read_bytes(st, tmp, sizeof tmp, &n) && in->n_addrs < LP2P__MAX_PEER_ADDRS &&
            lp2p__ma_from_bytes(tmp, n, &in->addrs[in->n_addrs], NULL) == LP2P_OK)
            in->n_addrs++;
        return true;
    case 4: /* observedAddr (js appends /p2p/<our id>: strip it) */
        if (lp2p__id_read_bytes(st, tmp, sizeof tmp, &n) && lp2p__ma_from_bytes(tmp, n, &in->observed, NULL) == LP2P_OK)
            lp2p__ma_split_p2p(&in->observed, &in->observed, NULL);
        return true;
    case 3: /* protocols */
        in->has_protocols = true;
        if (lp2p__id_read_bytes(st, tmp, LP2P__PROTO_MAX - 1, &n) && in->n_protocols < LP2P__MAX_PEER_PROTOCOLS) {
            char *p = (char *)lp2p__alloc(in->ctx, n + 1);
            if (!p) return false;
            memcpy(p, tmp, n), p[n] = 0;
            in->protocols[in->n_protocols++] = p;
        }
        return true;
    case 8: /* signedPeerRecord */
        if (!lp2p__id_read_bytes(st, in->record, sizeof in->record, &in->record_len)) in->record_len = 0;
        return true;
    default:
        return pb_read(st, NULL, st->bytes_left);
    }
}

static int lp2p__id_decode(lp2p__id_info *in, const uint8_t *msg, size_t len) {
    lp2p_pb_Identify m;
    memset(&m, 0, sizeof m);
    pb_callback_t cb = {{.decode = lp2p__id_decode_field}, in};
    m.protocolVersion = m.agentVersion = m.publicKey = m.listenAddrs = m.observedAddr = m.protocols =
        m.signedPeerRecord = cb;
    pb_istream_t st = pb_istream_from_buffer(msg, len);
    return pb_decode(&st, lp2p_pb_Identify_fields, &m) ? LP2P_OK : LP2P_ERR_PROTOCOL;
}

static void lp2p__id_info_free(lp2p__id_info *in) {
    for (int i = 0; i < in->n_protocols; i++) lp2p__strfree(in->ctx, in->protocols[i]);
    in->n_protocols = 0;
}

/* Verify the signed peer record; on success its addresses replace the unsigned ones. */
typedef struct lp2p__record_addrs {
    uint8_t peer_id[64];
    size_t peer_id_len;
    lp2p__ma addrs[LP2P__MAX_PEER_ADDRS];
    int n_addrs;
} lp2p__record_addrs;

static bool lp2p__rec_decode_addr(pb_istream_t *st, const pb_field_t *field, void **arg) {
    lp2p__record_addrs *r = (lp2p__record_addrs *)*arg;
    uint8_t tmp[LP2P__MA_MAX + 1];
    size_t n = 0;
    (void)field;
    if (lp2p__id_read_bytes(st, tmp, sizeof tmp, &n) && r->n_addrs < LP2P__MAX_PEER_ADDRS &&
        lp2p__ma_from_bytes(tmp, n, &r->addrs[r->n_addrs], NULL) == LP2P_OK)
        r->n_addrs++;
    return true;
}

static bool lp2p__rec_decode_info(pb_istream_t *st, const pb_field_t *field, void **arg) {
    lp2p_pb_PeerRecord_AddressInfo ai;
    (void)field;
    ai.multiaddr.funcs.decode = lp2p__rec_decode_addr;
    ai.multiaddr.arg = *arg;
    return pb_decode(st, lp2p_pb_PeerRecord_AddressInfo_fields, &ai);
}

static bool lp2p__rec_decode_id(pb_istream_t *st, const pb_field_t *field, void **arg) {
    lp2p__record_addrs *r = (lp2p__record_addrs *)*arg;
    (void)field;
    return lp2p__id_read_bytes(st, r->peer_id, sizeof r->peer_id, &r->peer_id_len);
}

static int lp2p__id_check_record(lp2p_host *h, lp2p__conn *c, lp2p__id_info *in) {
    const uint8_t *payload;
    size_t payload_len;
    lp2p_peer_id signer, rec_id;
    int rc = lp2p__envelope_open(in->record, in->record_len, LP2P__ID_RECORD_DOMAIN, lp2p__id_record_type,
                                 sizeof lp2p__id_record_type, &payload, &payload_len, &signer);
    if (rc) return rc;
    if (!lp2p_peer_id_eq(&signer, &c->peer)) return LP2P_ERR_HANDSHAKE;
    lp2p__record_addrs r;
    memset(&r, 0, sizeof r);
    lp2p_pb_PeerRecord m;
    memset(&m, 0, sizeof m);
    m.peer_id.funcs.decode = lp2p__rec_decode_id, m.peer_id.arg = &r;
    m.addresses.funcs.decode = lp2p__rec_decode_info, m.addresses.arg = &r;
    pb_istream_t st = pb_istream_from_buffer(payload, payload_len);
    if (!pb_decode(&st, lp2p_pb_PeerRecord_fields, &m)) return LP2P_ERR_PROTOCOL;
    if (lp2p__peer_id_from_bytes(r.peer_id, r.peer_id_len, &rec_id) || !lp2p_peer_id_eq(&rec_id, &signer))
        return LP2P_ERR_HANDSHAKE;
    lp2p__peer *p = lp2p__peerstore_get(h, &c->peer, true);
    if (p && m.seq < p->record_seq) return LP2P_OK; /* older than what we have: keep ours */
    if (p) p->record_seq = m.seq;
    memcpy(in->addrs, r.addrs, sizeof(lp2p__ma) * (size_t)r.n_addrs);
    in->n_addrs = r.n_addrs;
    return LP2P_OK;
}

/* Store what a peer said about itself (pull or push). */
static void lp2p__id_apply(lp2p_host *h, lp2p__conn *c, lp2p__id_info *in) {
    char id[LP2P_PEER_ID_STRLEN];
    lp2p_peer_id_str(&c->peer, id, sizeof id);
    lp2p__peer *p = lp2p__peerstore_get(h, &c->peer, true);
    if (!p) return;
    if (in->pubkey_len) { /* must be the key the Noise handshake proved */
        lp2p_peer_id kid;
        if (lp2p__peer_id_from_pubkey(in->pubkey, in->pubkey_len, &kid) || !lp2p_peer_id_eq(&kid, &c->peer)) {
            LP2P__WARN(&h->ctx, LP2P_ERR_PROTOCOL, "identify from %s: public key does not match the peer ID: ignored", id);
            return;
        }
    }
    if (in->record_len) {
        int rc = lp2p__id_check_record(h, c, in);
        if (rc) LP2P__WARN(&h->ctx, rc, "identify from %s: bad signed peer record (%s): ignored", id, lp2p_strerror(rc));
    }
    if (in->has_av) lp2p__strfree(&h->ctx, p->agent_version), p->agent_version = lp2p__strdup(&h->ctx, in->agent_version);
    if (in->has_pv)
        lp2p__strfree(&h->ctx, p->protocol_version), p->protocol_version = lp2p__strdup(&h->ctx, in->protocol_version);
    if (in->has_protocols) {
        char **v = (char **)lp2p__alloc(&h->ctx, sizeof(char *) * (size_t)(in->n_protocols ? in->n_protocols : 1));
        if (v) {
            memcpy(v, in->protocols, sizeof(char *) * (size_t)in->n_protocols);
            lp2p__peerstore_set_protocols(h, p, v, in->n_protocols);
            in->n_protocols = 0; /* moved */
        }
    }
    for (int i = 0; i < in->n_addrs; i++) lp2p__peerstore_add_addr(h, &c->peer, &in->addrs[i], LP2P__ID_ADDR_TTL_MS);
    if (in->observed.len) p->observed = in->observed;
    for (lp2p__notifee *n = h->notifees; n; n = n->next)
        if (n->identified) n->identified(n->user, c);
}

/* Read identify messages until EOF (at most 10) and merge them into one info. */
static int lp2p__id_read_all(lp2p_stream *s, lp2p__id_info *in, int64_t deadline) {
    uint8_t *buf = (uint8_t *)lp2p__alloc(&s->h->ctx, LP2P__ID_MAX_MSG);
    int rc = LP2P_OK, got = 0;
    if (!buf) return LP2P_ERR_NOMEM;
    for (int i = 0; i < LP2P__ID_MAX_MSGS; i++) {
        int clean_eof = 0;
        ptrdiff_t n = lp2p__pipe_read_msg(s->pipe, buf, LP2P__ID_MAX_MSG, &clean_eof, deadline);
        if (n == LP2P_ERR_EOF && clean_eof && got) break;
        if (n < 0) {
            rc = (int)n;
            break;
        }
        got++;
        if ((rc = lp2p__id_decode(in, buf, (size_t)n)) != LP2P_OK) break;
    }
    lp2p__free(&s->h->ctx, buf, LP2P__ID_MAX_MSG);
    return rc;
}

/* ---- encoding our message ------------------------------------------------------------------------ */
typedef struct lp2p__id_out {
    lp2p_host *h;
    lp2p__conn *c;
    const uint8_t *record;
    size_t record_len;
} lp2p__id_out;

static bool lp2p__enc_bytes(pb_ostream_t *st, const pb_field_t *f, const void *p, size_t n) {
    return pb_encode_tag_for_field(st, f) && pb_encode_string(st, (const pb_byte_t *)p, n);
}

static bool lp2p__id_encode_field(pb_ostream_t *st, const pb_field_t *f, void *const *arg) {
    lp2p__id_out *o = (lp2p__id_out *)*arg;
    lp2p_host *h = o->h;
    switch (f->tag) {
    case 5: return lp2p__enc_bytes(st, f, LP2P__ID_PROTOCOL_VERSION, strlen(LP2P__ID_PROTOCOL_VERSION));
    case 6: return lp2p__enc_bytes(st, f, h->agent_version, strlen(h->agent_version));
    case 1: return lp2p__enc_bytes(st, f, h->identity.pubkey_pb, sizeof h->identity.pubkey_pb);
    case 2:
        for (lp2p__listener *l = h->listeners; l; l = l->next)
            if (!lp2p__enc_bytes(st, f, l->addr.b, l->addr.len)) return false;
        return true;
    case 4: return !o->c || !o->c->remote.len || lp2p__enc_bytes(st, f, o->c->remote.b, o->c->remote.len);
    case 3:
        for (lp2p__handler *x = h->handlers; x; x = x->next)
            if (!lp2p__enc_bytes(st, f, x->protocol, strlen(x->protocol))) return false;
        return true;
    case 8: return !o->record_len || lp2p__enc_bytes(st, f, o->record, o->record_len);
    default: return true;
    }
}

static bool lp2p__rec_encode_addr(pb_ostream_t *st, const pb_field_t *f, void *const *arg) {
    const lp2p__ma *ma = (const lp2p__ma *)*arg;
    return lp2p__enc_bytes(st, f, ma->b, ma->len);
}

static bool lp2p__rec_encode_addrs(pb_ostream_t *st, const pb_field_t *f, void *const *arg) {
    lp2p_host *h = (lp2p_host *)*arg;
    for (lp2p__listener *l = h->listeners; l; l = l->next) {
        lp2p_pb_PeerRecord_AddressInfo ai;
        ai.multiaddr.funcs.encode = lp2p__rec_encode_addr;
        ai.multiaddr.arg = &l->addr;
        if (!pb_encode_tag_for_field(st, f) || !pb_encode_submessage(st, lp2p_pb_PeerRecord_AddressInfo_fields, &ai))
            return false;
    }
    return true;
}

static bool lp2p__rec_encode_id(pb_ostream_t *st, const pb_field_t *f, void *const *arg) {
    const lp2p_peer_id *id = (const lp2p_peer_id *)*arg;
    return lp2p__enc_bytes(st, f, id->bytes, id->len);
}

/* Our signed peer record (seq = Unix ms, monotonic per host), as an Envelope. */
static ptrdiff_t lp2p__id_make_record(lp2p_host *h, uint8_t *out, size_t cap) {
    uint8_t payload[1024];
    lp2p_pb_PeerRecord m;
    memset(&m, 0, sizeof m);
    m.peer_id.funcs.encode = lp2p__rec_encode_id, m.peer_id.arg = &h->identity.id;
    m.addresses.funcs.encode = lp2p__rec_encode_addrs, m.addresses.arg = h;
    m.seq = (uint64_t)time(NULL) * 1000u;
    pb_ostream_t st = pb_ostream_from_buffer(payload, sizeof payload);
    if (!pb_encode(&st, lp2p_pb_PeerRecord_fields, &m)) return LP2P_ERR_MSGSIZE;
    return lp2p__envelope_seal(&h->identity, LP2P__ID_RECORD_DOMAIN, lp2p__id_record_type, sizeof lp2p__id_record_type,
                               payload, st.bytes_written, out, cap);
}

/* Encode our identify for connection c into out: the main message, and (when it would exceed
 * 4 KiB) the signed record as a second message. Returns the number of messages, sizes in len[]. */
static int lp2p__id_encode(lp2p_host *h, lp2p__conn *c, uint8_t *out, size_t cap, size_t len[2]) {
    uint8_t record[1536];
    ptrdiff_t rl = lp2p__id_make_record(h, record, sizeof record);
    lp2p__id_out o = {h, c, record, rl > 0 ? (size_t)rl : 0};
    lp2p_pb_Identify m;
    pb_callback_t cb;
    cb.funcs.encode = lp2p__id_encode_field, cb.arg = &o;
    m.protocolVersion = m.agentVersion = m.publicKey = m.listenAddrs = m.observedAddr = m.protocols =
        m.signedPeerRecord = cb;
    pb_ostream_t st = pb_ostream_from_buffer(out, LP2P__MIN(cap, LP2P__ID_MAX_OWN));
    if (pb_encode(&st, lp2p_pb_Identify_fields, &m)) {
        len[0] = st.bytes_written;
        return 1;
    }
    o.record_len = 0; /* too big: send the record on its own */
    st = pb_ostream_from_buffer(out, LP2P__MIN(cap, LP2P__ID_MAX_OWN));
    if (!pb_encode(&st, lp2p_pb_Identify_fields, &m)) return LP2P_ERR_MSGSIZE;
    len[0] = st.bytes_written;
    if (rl <= 0) return 1;
    lp2p_pb_Identify r;
    memset(&r, 0, sizeof r);
    o.record_len = (size_t)rl;
    r.signedPeerRecord = cb;
    pb_ostream_t st2 = pb_ostream_from_buffer(out + len[0], cap - len[0]);
    if (!pb_encode(&st2, lp2p_pb_Identify_fields, &r)) return 1;
    len[1] = st2.bytes_written;
    return 2;
}

static int lp2p__id_send(lp2p_stream *s, int64_t deadline) {
    lp2p_host *h = s->h;
    size_t cap = 2 * LP2P__ID_MAX_OWN, len[2] = {0, 0};
    uint8_t *buf = (uint8_t *)lp2p__alloc(&h->ctx, cap);
    if (!buf) return LP2P_ERR_NOMEM;
    int n = lp2p__id_encode(h, s->conn, buf, cap, len), rc = n < 0 ? n : LP2P_OK;
    for (int i = 0, off = 0; i < n && rc == LP2P_OK; off += (int)len[i], i++)
        rc = lp2p__pipe_write_msg(&h->ctx, s->pipe, buf + off, len[i], deadline);
    lp2p__free(&h->ctx, buf, cap);
    return rc;
}

/* ---- handlers and tasks -------------------------------------------------------------------------- */
static void lp2p__id_serve(lp2p_stream *s, void *user) {
    (void)user;
    int rc = lp2p__id_send(s, lp2p_deadline_in(LP2P__ID_TIMEOUT_MS));
    if (rc) lp2p_stream_reset(s);
}

static void lp2p__id_serve_push(lp2p_stream *s, void *user) {
    lp2p__id_info *in = (lp2p__id_info *)lp2p__zalloc(&s->h->ctx, sizeof *in);
    (void)user;
    if (!in) return;
    in->ctx = &s->h->ctx;
    int rc = lp2p__id_read_all(s, in, lp2p_deadline_in(LP2P__ID_TIMEOUT_MS));
    if (rc == LP2P_OK && !s->conn->closed) lp2p__id_apply(s->h, s->conn, in);
    else if (rc != LP2P_OK) LP2P__INFO(&s->h->ctx, "identify push: %s", lp2p_strerror(rc));
    lp2p__id_info_free(in);
    lp2p__free(&s->h->ctx, in, sizeof *in);
}

static void lp2p__id_finish(lp2p__conn *c) {
    c->identified = true;
    lp2p__waitq_wake_all(c->h->sched, &c->identify_wait);
}

static void lp2p__id_task(void *arg) {
    lp2p__conn *c = (lp2p__conn *)arg;
    lp2p_host *h = c->h;
    lp2p_stream *s = NULL;
    char id[LP2P_PEER_ID_STRLEN];
    int64_t deadline = lp2p_deadline_in(LP2P__ID_TIMEOUT_MS);
    lp2p__id_info *in = (lp2p__id_info *)lp2p__zalloc(&h->ctx, sizeof *in);
    int rc = in ? lp2p__host_open_on(c, LP2P__ID_PROTO, deadline, &s) : LP2P_ERR_NOMEM;
    if (rc == LP2P_OK) {
        in->ctx = &h->ctx;
        lp2p_stream_close_write(s);
        rc = lp2p__id_read_all(s, in, deadline);
        if (rc == LP2P_OK && !c->closed) lp2p__id_apply(h, c, in);
        if (rc) lp2p_stream_reset(s);
        else lp2p_stream_close(s);
    }
    if (rc != LP2P_OK && rc != LP2P_ERR_CANCELED) {
        lp2p_peer_id_str(&c->peer, id, sizeof id);
        LP2P__INFO(&h->ctx, "identify with %s failed: %s", id, lp2p_strerror(rc));
    }
    if (in) lp2p__id_info_free(in), lp2p__free(&h->ctx, in, sizeof *in);
    lp2p__id_finish(c);
    if (rc == LP2P_OK && !h->freeing) lp2p__host_emit(h, LP2P_EVENT_PEER_IDENTIFIED, &c->peer, NULL, NULL, NULL, 0);
    lp2p__conn_unref(c);
}

static void lp2p__id_connected(void *user, lp2p__conn *c) {
    lp2p_host *h = c->h;
    (void)user;
    c->refs++;
    if (!lp2p__spawn(h->sched, lp2p__id_task, c).id) {
        lp2p__id_finish(c);
        c->refs--;
    }
}

static void lp2p__id_push_one(void *arg) {
    lp2p__conn *c = (lp2p__conn *)arg;
    lp2p_stream *s = NULL;
    int64_t deadline = lp2p_deadline_in(LP2P__ID_TIMEOUT_MS);
    if (!c->closed && lp2p__host_open_on(c, LP2P__ID_PUSH_PROTO, deadline, &s) == LP2P_OK) {
        if (lp2p__id_send(s, deadline) == LP2P_OK) lp2p_stream_close(s);
        else lp2p_stream_reset(s);
    }
    lp2p__conn_unref(c);
}

/* Debounced: several changes in one loop iteration give one push. */
static void lp2p__id_push_task(void *arg) {
    lp2p_host *h = (lp2p_host *)arg;
    if (lp2p__sleep_until(h->sched, lp2p_deadline_in(50)) != LP2P_OK) return;
    h->identify->push_scheduled = false;
    for (lp2p__conn *c = h->conns; c; c = c->next) {
        if (c->closed || !c->identified) continue;
        c->refs++;
        if (!lp2p__spawn(h->sched, lp2p__id_push_one, c).id) c->refs--;
    }
}

LP2P__PRIV void lp2p__identify_push_all(lp2p_host *h) {
    if (!h->identify || h->identify->push_scheduled || h->freeing || !h->conns) return;
    if (lp2p__spawn(h->sched, lp2p__id_push_task, h).id) h->identify->push_scheduled = true;
}

LP2P__PRIV int lp2p__identify_init(lp2p_host *h) {
    lp2p__identify *id = (lp2p__identify *)lp2p__zalloc(&h->ctx, sizeof *id);
    if (!id) return LP2P_ERR_NOMEM;
    id->notifee.connected = lp2p__id_connected;
    id->notifee.user = id;
    lp2p__swarm_add_notifee(h, &id->notifee);
    int rc = lp2p_host_handle(h, LP2P__ID_PROTO, lp2p__id_serve, NULL);
    if (!rc) rc = lp2p_host_handle(h, LP2P__ID_PUSH_PROTO, lp2p__id_serve_push, NULL);
    h->identify = id; /* set last: no push for our own built-in handlers */
    return rc;
}

LP2P__PRIV void lp2p__identify_free(lp2p_host *h) {
    lp2p__free(&h->ctx, h->identify, sizeof *h->identify);
    h->identify = NULL;
}

/* ---- public: what a peer told us ------------------------------------------------------------------ */
LP2P_API int lp2p_host_identify(lp2p_host *h, const char *peer_or_addr, int64_t deadline) {
    lp2p__conn *c = NULL;
    int rc = lp2p__swarm_connect(h, peer_or_addr, &c, deadline);
    while (rc == LP2P_OK && !c->identified) rc = lp2p__waitq_wait(h->sched, &c->identify_wait, deadline);
    if (c) lp2p__conn_unref(c);
    return rc;
}

LP2P_API int lp2p_host_peer_info(lp2p_host *h, const lp2p_peer_id *peer, lp2p_peer_info *out) {
    lp2p__peer *p = lp2p__peerstore_get(h, peer, false);
    if (!p) return LP2P_ERR_NOTFOUND;
    lp2p__buf *b = &h->info_text;
    b->len = 0;
    memset(out, 0, sizeof *out);
    out->id = p->id;
    out->agent_version = p->agent_version;
    out->protocol_version = p->protocol_version;
    out->protocols = (const char *const *)p->protocols;
    out->n_protocols = p->n_protocols;
    /* addresses as text, packed in one buffer (which may move while growing): offsets first,
     * pointers after; the last entry is the observed address */
    size_t offs[LP2P__MAX_PEER_ADDRS + 1];
    bool have[LP2P__MAX_PEER_ADDRS + 1];
    for (int i = 0; i <= p->n_addrs; i++) {
        const lp2p__ma *ma = i < p->n_addrs ? &p->addrs[i].ma : &p->observed;
        char text[LP2P__MA_STRLEN];
        have[i] = ma->len && lp2p__ma_str(ma, text, sizeof text) >= 0;
        offs[i] = b->len;
        if (have[i] && lp2p__buf_append(&h->ctx, b, text, strlen(text) + 1)) return LP2P_ERR_NOMEM;
    }
    for (int i = 0; i < p->n_addrs && out->n_addrs < LP2P_MAX_INFO_ADDRS; i++)
        if (have[i]) out->addrs[out->n_addrs++] = (const char *)b->p + offs[i];
    if (have[p->n_addrs]) out->observed_addr = (const char *)b->p + offs[p->n_addrs];
    return LP2P_OK;
}
