/* pubsub_rpc.c - L7: the pubsub RPC codec and message-ID digest sets.
 *
 * Spec: libp2p/specs pubsub/README.md (RPC and Message), gossipsub-v1.0/1.1/1.2 (ControlMessage).
 * Decoding uses nanopb (proto/pubsub.pb.h) with a callback per repeated or variable-size
 * field: every field becomes a slice of the received buffer (no copies, no allocation driven by
 * the peer beyond the capped entry arrays), and every count is capped per RPC. RPCs we send are
 * written by hand (tag, length, bytes), so pieces built at different times can be concatenated.
 * The digest sets (seen cache, IDONTWANT, message cache index) are open-addressing tables of
 * salted 16-byte SHA-256 digests with expiry in insertion order.
 * Depends on: pubsub.h. */
#include "pubsub.h"

#include <pb_decode.h>

/* ---- protobuf writing ---------------------------------------------------------------------------- */
static int lp2p__pb_put_uvarint(lp2p__ctx *ctx, lp2p__buf *b, uint64_t v) {
    uint8_t tmp[LP2P__UVARINT_MAX + 1];
    return lp2p__buf_append(ctx, b, tmp, lp2p__uvarint_put(tmp, v));
}

LP2P__PRIV int lp2p__pb_put_tag(lp2p__ctx *ctx, lp2p__buf *b, uint32_t field, int wire) {
    return lp2p__pb_put_uvarint(ctx, b, ((uint64_t)field << 3) | (uint64_t)wire);
}

LP2P__PRIV int lp2p__pb_put_bytes(lp2p__ctx *ctx, lp2p__buf *b, uint32_t field, const void *p, size_t n) {
    int rc = lp2p__pb_put_tag(ctx, b, field, 2);
    if (!rc) rc = lp2p__pb_put_uvarint(ctx, b, n);
    if (!rc && n) rc = lp2p__buf_append(ctx, b, p, n);
    return rc;
}

LP2P__PRIV int lp2p__pb_put_varint(lp2p__ctx *ctx, lp2p__buf *b, uint32_t field, uint64_t v) {
    int rc = lp2p__pb_put_tag(ctx, b, field, 0);
    return rc ? rc : lp2p__pb_put_uvarint(ctx, b, v);
}

/* ---- RPC decoding (nanopb with callbacks; the stream is always a buffer stream, whose state
 * is the read position, so fields become slices of the received RPC) ------------------------------ */
typedef struct lp2p__ps_dec {
    lp2p__ps_rpc *r;
    lp2p__ps_rpc_msg *m;  /* the Message being decoded */
    lp2p__ps_slice topic; /* of the SubOpts / control entry being decoded */
    lp2p__ps_rpc_px px;
    const uint8_t *base;  /* the buffer being decoded: every slice must lie inside it */
    size_t len;
} lp2p__ps_dec;

/* A length-delimited field as a slice. nanopb also calls callbacks for a field sent with a
 * scalar wire type, with a stream over its own stack copy: such a "slice" would dangle, so the
 * position must lie inside the buffer (else the RPC is malformed). */
static bool lp2p__ps_dec_slice(const lp2p__ps_dec *d, pb_istream_t *st, lp2p__ps_slice *out) {
    const uint8_t *p = (const uint8_t *)st->state;
    if (p < d->base || p > d->base + d->len || st->bytes_left > (size_t)(d->base + d->len - p)) return false;
    out->p = p;
    out->n = st->bytes_left;
    return pb_read(st, NULL, st->bytes_left);
}

#define LP2P__PS_GROW(r, arr, n, cap, limit)                                                            \
    ((n) < (cap) ? true                                                                                \
     : (cap) >= (limit) ? false                                                                        \
     : lp2p__ps_grow((r)->ctx, (void **)&(arr), &(cap), sizeof *(arr), (limit)))

static bool lp2p__ps_grow(lp2p__ctx *ctx, void **arr, int *cap, size_t elem, int limit) {
    int ncap = *cap ? *cap * 2 : 8;
    if (ncap > limit) ncap = limit;
    void *p = lp2p__realloc(ctx, *arr, elem * (size_t)*cap, elem * (size_t)ncap);
    if (!p) return false;
    *arr = p, *cap = ncap;
    return true;
}

static bool lp2p__ps_dec_topic(pb_istream_t *st, const pb_field_t *f, void **arg) {
    (void)f;
    lp2p__ps_dec *d = (lp2p__ps_dec *)*arg;
    return lp2p__ps_dec_slice(d, st, &d->topic);
}

static bool lp2p__ps_dec_sub(pb_istream_t *st, const pb_field_t *f, void **arg) {
    lp2p__ps_dec *d = (lp2p__ps_dec *)*arg;
    lp2p__ps_rpc *r = d->r;
    lp2p_pb_PubsubRPC_SubOpts so;
    (void)f;
    memset(&so, 0, sizeof so);
    d->topic.p = NULL, d->topic.n = 0;
    so.topicid.funcs.decode = lp2p__ps_dec_topic, so.topicid.arg = d;
    if (!pb_decode(st, lp2p_pb_PubsubRPC_SubOpts_fields, &so)) return false;
    if (!LP2P__PS_GROW(r, r->subs, r->n_subs, r->cap_subs, LP2P__PS_MAX_SUBS_PER_RPC)) {
        r->truncated++;
        return true;
    }
    r->subs[r->n_subs].topic = d->topic;
    r->subs[r->n_subs++].subscribe = so.subscribe;
    return true;
}

static bool lp2p__ps_dec_msg_field(pb_istream_t *st, const pb_field_t *f, void **arg) {
    const lp2p__ps_dec *d = (const lp2p__ps_dec *)*arg;
    lp2p__ps_rpc_msg *m = d->m;
    switch (f->tag) {
    case 1: m->has_from = true; return lp2p__ps_dec_slice(d, st, &m->from);
    case 2: m->has_data = true; return lp2p__ps_dec_slice(d, st, &m->data);
    case 3: m->has_seqno = true; return lp2p__ps_dec_slice(d, st, &m->seqno);
    case 4: m->has_topic = true; return lp2p__ps_dec_slice(d, st, &m->topic);
    case 5: m->has_signature = true; return lp2p__ps_dec_slice(d, st, &m->signature);
    case 6: m->has_key = true; return lp2p__ps_dec_slice(d, st, &m->key);
    default: return pb_read(st, NULL, st->bytes_left);
    }
}

/* Slices of an encoded Message (our own, after building it). */
LP2P__PRIV int lp2p__ps_msg_parse(const uint8_t *raw, size_t len, lp2p__ps_rpc_msg *out) {
    lp2p__ps_dec d;
    lp2p_pb_PubsubMessage pm;
    memset(&d, 0, sizeof d);
    memset(out, 0, sizeof *out);
    out->raw.p = raw, out->raw.n = len;
    d.m = out, d.base = raw, d.len = len;
    pb_callback_t cb = {{.decode = lp2p__ps_dec_msg_field}, &d};
    pm.from = pm.data = pm.seqno = pm.topic = pm.signature = pm.key = cb;
    pb_istream_t st = pb_istream_from_buffer(raw, len);
    return pb_decode(&st, lp2p_pb_PubsubMessage_fields, &pm) ? LP2P_OK : LP2P_ERR_PROTOCOL;
}

static bool lp2p__ps_dec_publish(pb_istream_t *st, const pb_field_t *f, void **arg) {
    lp2p__ps_dec *d = (lp2p__ps_dec *)*arg;
    lp2p__ps_rpc *r = d->r;
    lp2p__ps_rpc_msg tmp;
    lp2p_pb_PubsubMessage pm;
    (void)f;
    memset(&tmp, 0, sizeof tmp);
    tmp.raw.p = (const uint8_t *)st->state, tmp.raw.n = st->bytes_left;
    if (tmp.raw.p < d->base || tmp.raw.n > (size_t)(d->base + d->len - tmp.raw.p)) return false; /* see _dec_slice */
    d->m = &tmp;
    pb_callback_t cb = {{.decode = lp2p__ps_dec_msg_field}, d};
    pm.from = pm.data = pm.seqno = pm.topic = pm.signature = pm.key = cb;
    if (!pb_decode(st, lp2p_pb_PubsubMessage_fields, &pm)) return false;
    if (!LP2P__PS_GROW(r, r->msgs, r->n_msgs, r->cap_msgs, LP2P__PS_MAX_MSGS_PER_RPC)) {
        r->truncated++;
        return true;
    }
    r->msgs[r->n_msgs++] = tmp;
    return true;
}

static bool lp2p__ps_dec_id(pb_istream_t *st, const pb_field_t *f, void **arg) {
    lp2p__ps_dec *d = (lp2p__ps_dec *)*arg;
    lp2p__ps_rpc *r = d->r;
    lp2p__ps_slice s;
    (void)f;
    if (!lp2p__ps_dec_slice(d, st, &s)) return false;
    if (s.n == 0 || s.n > LP2P_PUBSUB_MSG_ID_MAX ||
        !LP2P__PS_GROW(r, r->ids, r->n_ids, r->cap_ids, LP2P__PS_MAX_IDS_PER_RPC)) {
        r->truncated++;
        return true;
    }
    r->ids[r->n_ids++] = s;
    return true;
}

static bool lp2p__ps_dec_px_field(pb_istream_t *st, const pb_field_t *f, void **arg) {
    lp2p__ps_dec *d = (lp2p__ps_dec *)*arg;
    return lp2p__ps_dec_slice(d, st, f->tag == 1 ? &d->px.peer_id : &d->px.record);
}

static bool lp2p__ps_dec_px(pb_istream_t *st, const pb_field_t *f, void **arg) {
    lp2p__ps_dec *d = (lp2p__ps_dec *)*arg;
    lp2p__ps_rpc *r = d->r;
    lp2p_pb_PubsubPeerInfo pi;
    (void)f;
    memset(&d->px, 0, sizeof d->px);
    pb_callback_t cb = {{.decode = lp2p__ps_dec_px_field}, d};
    pi.peerID = pi.signedPeerRecord = cb;
    if (!pb_decode(st, lp2p_pb_PubsubPeerInfo_fields, &pi)) return false;
    if (!LP2P__PS_GROW(r, r->px, r->n_px, r->cap_px, LP2P__PS_MAX_PX_PER_RPC)) {
        r->truncated++;
        return true;
    }
    r->px[r->n_px++] = d->px;
    return true;
}

/* One control entry of any kind: decode it, then record it (with its ID / PX ranges). */
static bool lp2p__ps_dec_ctl(pb_istream_t *st, const pb_field_t *f, void **arg) {
    lp2p__ps_dec *d = (lp2p__ps_dec *)*arg;
    lp2p__ps_rpc *r = d->r;
    lp2p__ps_rpc_ctl c;
    bool ok = false;
    memset(&c, 0, sizeof c);
    c.kind = (int)f->tag; /* ControlMessage field numbers are the LP2P__PS_CTL_* kinds */
    d->topic.p = NULL, d->topic.n = 0;
    c.first_id = r->n_ids, c.first_px = r->n_px;
    pb_callback_t topic = {{.decode = lp2p__ps_dec_topic}, d}, ids = {{.decode = lp2p__ps_dec_id}, d};
    switch (c.kind) {
    case LP2P__PS_CTL_IHAVE: {
        lp2p_pb_PubsubIHave m;
        m.topicID = topic, m.messageIDs = ids;
        ok = pb_decode(st, lp2p_pb_PubsubIHave_fields, &m);
        break;
    }
    case LP2P__PS_CTL_IWANT: {
        lp2p_pb_PubsubIWant m;
        m.messageIDs = ids;
        ok = pb_decode(st, lp2p_pb_PubsubIWant_fields, &m);
        break;
    }
    case LP2P__PS_CTL_GRAFT: {
        lp2p_pb_PubsubGraft m;
        m.topicID = topic;
        ok = pb_decode(st, lp2p_pb_PubsubGraft_fields, &m);
        break;
    }
    case LP2P__PS_CTL_PRUNE: {
        lp2p_pb_PubsubPrune m;
        memset(&m, 0, sizeof m);
        m.topicID = topic;
        m.peers.funcs.decode = lp2p__ps_dec_px, m.peers.arg = d;
        ok = pb_decode(st, lp2p_pb_PubsubPrune_fields, &m);
        c.backoff = m.backoff, c.has_backoff = m.has_backoff;
        break;
    }
    case LP2P__PS_CTL_IDONTWANT: {
        lp2p_pb_PubsubIDontWant m;
        m.messageIDs = ids;
        ok = pb_decode(st, lp2p_pb_PubsubIDontWant_fields, &m);
        break;
    }
    default: return pb_read(st, NULL, st->bytes_left);
    }
    if (!ok) return false;
    c.topic = d->topic;
    c.n_ids = r->n_ids - c.first_id, c.n_px = r->n_px - c.first_px;
    if (!LP2P__PS_GROW(r, r->ctl, r->n_ctl, r->cap_ctl, LP2P__PS_MAX_CTL_PER_RPC)) {
        r->truncated++;
        return true;
    }
    r->ctl[r->n_ctl++] = c;
    return true;
}

LP2P__PRIV int lp2p__ps_rpc_decode(lp2p__ps_rpc *r, lp2p__ctx *ctx, const uint8_t *buf, size_t len) {
    lp2p__ps_dec d;
    lp2p_pb_PubsubRPC m;
    memset(r, 0, sizeof *r);
    memset(&d, 0, sizeof d);
    memset(&m, 0, sizeof m);
    r->ctx = ctx, d.r = r, d.base = buf, d.len = len;
    m.subscriptions.funcs.decode = lp2p__ps_dec_sub, m.subscriptions.arg = &d;
    m.publish.funcs.decode = lp2p__ps_dec_publish, m.publish.arg = &d;
    pb_callback_t ctl = {{.decode = lp2p__ps_dec_ctl}, &d};
    m.control.ihave = m.control.iwant = m.control.graft = m.control.prune = m.control.idontwant = ctl;
    pb_istream_t st = pb_istream_from_buffer(buf, len);
    if (!pb_decode(&st, lp2p_pb_PubsubRPC_fields, &m)) {
        r->error = PB_GET_ERROR(&st);
        return LP2P_ERR_PROTOCOL;
    }
    return LP2P_OK;
}

LP2P__PRIV void lp2p__ps_rpc_clear(lp2p__ps_rpc *r) {
    lp2p__free(r->ctx, r->subs, sizeof *r->subs * (size_t)r->cap_subs);
    lp2p__free(r->ctx, r->msgs, sizeof *r->msgs * (size_t)r->cap_msgs);
    lp2p__free(r->ctx, r->ctl, sizeof *r->ctl * (size_t)r->cap_ctl);
    lp2p__free(r->ctx, r->ids, sizeof *r->ids * (size_t)r->cap_ids);
    lp2p__free(r->ctx, r->px, sizeof *r->px * (size_t)r->cap_px);
    lp2p__ctx *ctx = r->ctx;
    memset(r, 0, sizeof *r);
    r->ctx = ctx;
}

/* ---- digest sets ---------------------------------------------------------------------------------- */
static size_t lp2p__ps_slot(const lp2p__ps_idset *s, const uint8_t d[LP2P__PS_DIGEST]) {
    uint64_t h;
    memcpy(&h, d, sizeof h); /* the digest is a salted hash already */
    return (size_t)h & (s->cap - 1);
}

LP2P__PRIV lp2p__ps_idset_entry *lp2p__ps_idset_find(lp2p__ps_idset *s, const uint8_t d[LP2P__PS_DIGEST]) {
    if (!s->cap) return NULL;
    for (size_t i = lp2p__ps_slot(s, d), n = 0; n < s->cap; i = (i + 1) & (s->cap - 1), n++) {
        lp2p__ps_idset_entry *e = &s->slots[i];
        if (e->state == 0) return NULL;
        if (e->state == 1 && memcmp(e->d, d, LP2P__PS_DIGEST) == 0) return e;
    }
    return NULL;
}

static void lp2p__ps_idset_del_slot(lp2p__ps_idset *s, size_t i) {
    if (s->slots[i].state == 1) s->slots[i].state = 2, s->live--;
}

/* Rebuild into a table of new_cap slots (drops tombstones; keeps the FIFO order). */
static int lp2p__ps_idset_rehash(lp2p__ctx *ctx, lp2p__ps_idset *s, size_t new_cap) {
    lp2p__ps_idset_entry *slots = (lp2p__ps_idset_entry *)lp2p__zalloc(ctx, sizeof *slots * new_cap);
    uint32_t *fifo = (uint32_t *)lp2p__alloc(ctx, sizeof *fifo * new_cap);
    if (!slots || !fifo) {
        lp2p__free(ctx, slots, sizeof *slots * new_cap);
        lp2p__free(ctx, fifo, sizeof *fifo * new_cap);
        return LP2P_ERR_NOMEM;
    }
    size_t n = 0;
    for (size_t k = 0; k < s->fifo_len; k++) {
        uint32_t old = s->fifo[(s->fifo_head + k) % s->fifo_cap];
        if (s->slots[old].state != 1) continue;
        size_t i = (size_t)lp2p__ps_slot(&(lp2p__ps_idset){.cap = new_cap}, s->slots[old].d);
        while (slots[i].state) i = (i + 1) & (new_cap - 1);
        slots[i] = s->slots[old];
        fifo[n++] = (uint32_t)i;
    }
    lp2p__free(ctx, s->slots, sizeof *s->slots * s->cap);
    lp2p__free(ctx, s->fifo, sizeof *s->fifo * s->fifo_cap);
    s->slots = slots, s->cap = new_cap, s->used = s->live = n;
    s->fifo = fifo, s->fifo_cap = new_cap, s->fifo_head = 0, s->fifo_len = n;
    return LP2P_OK;
}

static void lp2p__ps_idset_pop(lp2p__ps_idset *s) {
    uint32_t i = s->fifo[s->fifo_head];
    s->fifo_head = (s->fifo_head + 1) % s->fifo_cap;
    s->fifo_len--;
    lp2p__ps_idset_del_slot(s, i);
}

LP2P__PRIV lp2p__ps_idset_entry *lp2p__ps_idset_add(lp2p__ctx *ctx, lp2p__ps_idset *s, const uint8_t d[LP2P__PS_DIGEST],
                                                    int64_t expires, bool *fresh) {
    lp2p__ps_idset_entry *e = lp2p__ps_idset_find(s, d);
    if (fresh) *fresh = e == NULL;
    if (e) return e;
    if (s->max && s->live >= s->max) lp2p__ps_idset_pop(s); /* full: forget the oldest */
    if ((s->used + 1) * 4 > s->cap * 3 || s->fifo_len + 1 > s->fifo_cap) {
        size_t want = s->cap ? s->cap : 64;
        while ((s->live + 1) * 2 > want) want *= 2; /* at most half full after a rebuild */
        if (lp2p__ps_idset_rehash(ctx, s, want)) return NULL;
    }
    /* tombstones are not reused (the FIFO may still name them); a rebuild clears them */
    size_t i = lp2p__ps_slot(s, d);
    while (s->slots[i].state != 0) i = (i + 1) & (s->cap - 1);
    s->used++;
    e = &s->slots[i];
    memset(e, 0, sizeof *e);
    memcpy(e->d, d, LP2P__PS_DIGEST);
    e->state = 1, e->expires = expires;
    s->live++;
    s->fifo[(s->fifo_head + s->fifo_len) % s->fifo_cap] = (uint32_t)i;
    s->fifo_len++;
    return e;
}

LP2P__PRIV void lp2p__ps_idset_del(lp2p__ps_idset *s, const uint8_t d[LP2P__PS_DIGEST]) {
    lp2p__ps_idset_entry *e = lp2p__ps_idset_find(s, d);
    if (e) e->state = 2, s->live--;
}

LP2P__PRIV void lp2p__ps_idset_expire(lp2p__ps_idset *s, int64_t now) {
    while (s->fifo_len) {
        lp2p__ps_idset_entry *e = &s->slots[s->fifo[s->fifo_head]];
        if (e->state == 1 && e->expires >= now) break;
        lp2p__ps_idset_pop(s);
    }
}

LP2P__PRIV void lp2p__ps_idset_free(lp2p__ctx *ctx, lp2p__ps_idset *s) {
    lp2p__free(ctx, s->slots, sizeof *s->slots * s->cap);
    lp2p__free(ctx, s->fifo, sizeof *s->fifo * s->fifo_cap);
    size_t max = s->max;
    memset(s, 0, sizeof *s);
    s->max = max;
}
