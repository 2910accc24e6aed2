/* kad_msg.c - L7: Kademlia DHT wire messages (decode and encode).
 *
 * Spec: libp2p/specs kad-dht/README.md "RPC messages". proto3: a missing `type` means
 * PUT_VALUE (go and js omit it), fields may come in any order, unknown fields are skipped.
 * Decoding is zero-copy: byte fields become slices of the message buffer (nanopb buffer
 * streams keep their read position in `state`). Every list is capped (LP2P__KAD_MSG_PEERS
 * peers, LP2P__KAD_PEER_ADDRS addresses each); what is beyond is skipped and counted.
 * Depends on: kad.h (host.h, proto/kad.pb.h). */
#include "kad.h"

#include <pb_decode.h>
#include <pb_encode.h>

/* ---- decoding --------------------------------------------------------------------------- */
/* Take the rest of a (sub)stream as a slice of the message buffer. A field sent with the
 * varint wire type reaches a bytes callback as a stream over nanopb's own stack copy: that
 * is a malformed message, refused. */
static bool lp2p__kad_take(const lp2p__kad_msg *m, pb_istream_t *st, lp2p__kad_slice *out) {
    const uint8_t *p = (const uint8_t *)st->state;
    if (p < m->buf || p > m->buf + m->buf_len || st->bytes_left > (size_t)(m->buf + m->buf_len - p)) return false;
    out->p = p;
    out->len = st->bytes_left;
    return pb_read(st, NULL, st->bytes_left);
}

typedef struct lp2p__kad_dpeer {
    lp2p__kad_wpeer *p;
    lp2p__kad_msg *m;
} lp2p__kad_dpeer;

static bool lp2p__kad_dec_peer_field(pb_istream_t *st, const pb_field_t *f, void **arg) {
    lp2p__kad_dpeer *d = (lp2p__kad_dpeer *)*arg;
    if (f->tag == lp2p_pb_KadPeer_id_tag) return lp2p__kad_take(d->m, st, &d->p->id);
    if (d->p->n_addrs >= LP2P__KAD_PEER_ADDRS) {
        d->m->skipped++;
        return pb_read(st, NULL, st->bytes_left);
    }
    return lp2p__kad_take(d->m, st, &d->p->addrs[d->p->n_addrs++]);
}

static bool lp2p__kad_dec_peer(pb_istream_t *st, const pb_field_t *f, void **arg) {
    lp2p__kad_msg *m = (lp2p__kad_msg *)*arg;
    bool closer = f->tag == lp2p_pb_KadMessage_closerPeers_tag;
    int *n = closer ? &m->n_closer : &m->n_providers;
    lp2p__kad_wpeer tmp, *p = *n < LP2P__KAD_MSG_PEERS ? (closer ? &m->closer[*n] : &m->providers[*n]) : &tmp;
    memset(p, 0, sizeof *p);
    lp2p__kad_dpeer d = {p, m};
    lp2p_pb_KadPeer pm;
    memset(&pm, 0, sizeof pm);
    pm.id.funcs.decode = lp2p__kad_dec_peer_field, pm.id.arg = &d;
    pm.addrs.funcs.decode = lp2p__kad_dec_peer_field, pm.addrs.arg = &d;
    if (!pb_decode(st, lp2p_pb_KadPeer_fields, &pm)) return false;
    p->connection = (int)pm.connection;
    if (p == &tmp) m->skipped++;
    else (*n)++;
    return true;
}

static bool lp2p__kad_dec_key(pb_istream_t *st, const pb_field_t *f, void **arg) {
    lp2p__kad_msg *m = (lp2p__kad_msg *)*arg;
    (void)f;
    return lp2p__kad_take(m, st, &m->key);
}

static bool lp2p__kad_dec_record(pb_istream_t *st, const pb_field_t *f, void **arg) {
    lp2p__kad_msg *m = (lp2p__kad_msg *)*arg;
    lp2p__kad_slice *out = f->tag == lp2p_pb_KadRecord_key_tag     ? &m->rec_key
                           : f->tag == lp2p_pb_KadRecord_value_tag ? &m->rec_value
                                                                    : &m->rec_time;
    return lp2p__kad_take(m, st, out);
}

LP2P__PRIV int lp2p__kad_msg_decode(const uint8_t *buf, size_t len, lp2p__kad_msg *m) {
    lp2p_pb_KadMessage pm;
    memset(m, 0, sizeof *m);
    memset(&pm, 0, sizeof pm);
    m->buf = buf, m->buf_len = len;
    pm.key.funcs.decode = lp2p__kad_dec_key, pm.key.arg = m;
    pm.record.key.funcs.decode = lp2p__kad_dec_record, pm.record.key.arg = m;
    pm.record.value.funcs.decode = lp2p__kad_dec_record, pm.record.value.arg = m;
    pm.record.timeReceived.funcs.decode = lp2p__kad_dec_record, pm.record.timeReceived.arg = m;
    pm.closerPeers.funcs.decode = lp2p__kad_dec_peer, pm.closerPeers.arg = m;
    pm.providerPeers.funcs.decode = lp2p__kad_dec_peer, pm.providerPeers.arg = m;
    pb_istream_t st = pb_istream_from_buffer(buf, len);
    if (!pb_decode(&st, lp2p_pb_KadMessage_fields, &pm)) return LP2P_ERR_PROTOCOL;
    if ((int)pm.type < 0 || pm.type > lp2p_pb_KadMessage_MessageType_PING) return LP2P_ERR_PROTOCOL;
    m->type = (int)pm.type;
    m->cluster_level = pm.clusterLevelRaw;
    m->has_record = pm.has_record;
    return LP2P_OK;
}

/* ---- encoding ------------------------------------------------------------------------------ */
static bool lp2p__kad_enc_bytes(pb_ostream_t *st, const pb_field_t *f, const void *p, size_t n) {
    return pb_encode_tag_for_field(st, f) && pb_encode_string(st, (const pb_byte_t *)p, n);
}

typedef struct lp2p__kad_enc_one {
    const uint8_t *p;
    size_t n;
} lp2p__kad_enc_one;

static bool lp2p__kad_enc_cb_bytes(pb_ostream_t *st, const pb_field_t *f, void *const *arg) {
    const lp2p__kad_enc_one *o = (const lp2p__kad_enc_one *)*arg;
    return !o->p || lp2p__kad_enc_bytes(st, f, o->p, o->n);
}

typedef struct lp2p__kad_enc_peer {
    lp2p_host *h;
    const lp2p_peer_id *id;
} lp2p__kad_enc_peer;

/* A peer's addresses: ours are the listen addresses, others' come from the peerstore
 * (unexpired ones, at most LP2P__KAD_PEER_ADDRS). */
static bool lp2p__kad_enc_addrs(pb_ostream_t *st, const pb_field_t *f, void *const *arg) {
    const lp2p__kad_enc_peer *e = (const lp2p__kad_enc_peer *)*arg;
    lp2p_host *h = e->h;
    int n = 0;
    if (lp2p_peer_id_eq(e->id, &h->identity.id)) {
        for (lp2p__listener *l = h->listeners; l && n < LP2P__KAD_PEER_ADDRS; l = l->next, n++)
            if (!lp2p__kad_enc_bytes(st, f, l->addr.b, l->addr.len)) return false;
        return true;
    }
    lp2p__peer *p = lp2p__peerstore_get(h, e->id, false);
    int64_t now = lp2p_now();
    for (int i = 0; p && i < p->n_addrs && n < LP2P__KAD_PEER_ADDRS; i++) {
        if (p->addrs[i].expires >= 0 && p->addrs[i].expires < now) continue;
        if (!lp2p__kad_enc_bytes(st, f, p->addrs[i].ma.b, p->addrs[i].ma.len)) return false;
        n++;
    }
    return true;
}

static bool lp2p__kad_enc_id(pb_ostream_t *st, const pb_field_t *f, void *const *arg) {
    const lp2p__kad_enc_peer *e = (const lp2p__kad_enc_peer *)*arg;
    return lp2p__kad_enc_bytes(st, f, e->id->bytes, e->id->len);
}

typedef struct lp2p__kad_enc_list {
    lp2p_host *h;
    const lp2p_peer_id *ids;
    int n;
} lp2p__kad_enc_list;

static bool lp2p__kad_enc_peers(pb_ostream_t *st, const pb_field_t *f, void *const *arg) {
    const lp2p__kad_enc_list *l = (const lp2p__kad_enc_list *)*arg;
    for (int i = 0; i < l->n; i++) {
        lp2p__kad_enc_peer e = {l->h, &l->ids[i]};
        lp2p_pb_KadPeer pm;
        memset(&pm, 0, sizeof pm);
        pm.id.funcs.encode = lp2p__kad_enc_id, pm.id.arg = &e;
        pm.addrs.funcs.encode = lp2p__kad_enc_addrs, pm.addrs.arg = &e;
        pm.connection = lp2p__swarm_find_conn(l->h, &l->ids[i]) ? lp2p_pb_KadPeer_ConnectionType_CONNECTED
                                                                 : lp2p_pb_KadPeer_ConnectionType_NOT_CONNECTED;
        if (lp2p_peer_id_eq(&l->ids[i], &l->h->identity.id)) pm.connection = lp2p_pb_KadPeer_ConnectionType_CONNECTED;
        if (!pb_encode_tag_for_field(st, f) || !pb_encode_submessage(st, lp2p_pb_KadPeer_fields, &pm)) return false;
    }
    return true;
}

static bool lp2p__kad_encode_into(pb_ostream_t *st, const lp2p__kad_out *o) {
    lp2p_pb_KadMessage pm;
    memset(&pm, 0, sizeof pm);
    lp2p__kad_enc_one key = {o->key, o->key_len}, rk = {o->rec_key, o->rec_key_len},
                      rv = {o->rec_value, o->rec_value_len}, rt = {o->rec_time, o->rec_time_len};
    lp2p__kad_enc_list closer = {o->h, o->closer, o->n_closer}, prov = {o->h, o->providers, o->n_providers};
    pm.type = (lp2p_pb_KadMessage_MessageType)o->type;
    pm.key.funcs.encode = lp2p__kad_enc_cb_bytes, pm.key.arg = &key;
    pm.has_record = o->has_record;
    pm.record.key.funcs.encode = lp2p__kad_enc_cb_bytes, pm.record.key.arg = &rk;
    pm.record.value.funcs.encode = lp2p__kad_enc_cb_bytes, pm.record.value.arg = &rv;
    pm.record.timeReceived.funcs.encode = lp2p__kad_enc_cb_bytes, pm.record.timeReceived.arg = &rt;
    if (o->n_closer) pm.closerPeers.funcs.encode = lp2p__kad_enc_peers, pm.closerPeers.arg = &closer;
    if (o->n_providers) pm.providerPeers.funcs.encode = lp2p__kad_enc_peers, pm.providerPeers.arg = &prov;
    return pb_encode(st, lp2p_pb_KadMessage_fields, &pm);
}

LP2P__PRIV int lp2p__kad_msg_encode(lp2p__ctx *ctx, const lp2p__kad_out *o, lp2p__buf *b) {
    pb_ostream_t sz = PB_OSTREAM_SIZING;
    if (!lp2p__kad_encode_into(&sz, o)) return LP2P_ERR_MSGSIZE;
    if (lp2p__buf_reserve(ctx, b, sz.bytes_written)) return LP2P_ERR_NOMEM;
    pb_ostream_t st = pb_ostream_from_buffer(b->p + b->len, sz.bytes_written);
    if (!lp2p__kad_encode_into(&st, o)) return LP2P_ERR_MSGSIZE;
    b->len += st.bytes_written;
    return LP2P_OK;
}
