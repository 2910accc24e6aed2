/* pubsub.c - L7: the pubsub core shared by gossipsub and floodsub: peers and their two
 * unidirectional streams, messages (IDs, StrictSign / StrictNoSign), the validation pipeline,
 * subscriptions, and the public lp2p_pubsub_* API. The RPC codec is in pubsub_rpc.c.
 *
 * Spec: libp2p/specs pubsub/README.md (RPC, message signing, IDs), pubsub/gossipsub/ (v1.0, v1.1, v1.2).
 * Per peer we open one outbound stream (proposing /meshsub/1.2.0, 1.1.0, 1.0.0, /floodsub/1.0.0
 * in that order; what it negotiates decides what we send the peer) and read the peer's
 * inbound stream; both carry uvarint-delimited RPCs. The first RPC on our stream announces our
 * subscriptions. Outbound RPCs wait in a per-peer queue drained by a writer task, so nothing
 * that routes a message ever blocks; consecutive queued RPCs are merged (concatenated protobufs
 * merge) up to 60 KiB, but never two with a control part (rust and js keep only the last
 * occurrence of a non-repeated field).
 * Messages are checked in go-libp2p-pubsub's order: signing policy, seen cache, IDONTWANT to
 * the mesh (v1.2), signature, topic validator; then delivered and forwarded.
 * Depends on: pubsub.h (host.h), pubsub_rpc.c, gossipsub.c, pubsub_score.c. */
#include "pubsub.h"

#include <pb_decode.h>
#include <stdio.h>
#include <time.h>

#define LP2P__PS_OPEN_TIMEOUT_MS 10000
#define LP2P__PS_WRITE_TIMEOUT_MS 60000 /* a peer that does not read for this long loses its stream */
#define LP2P__PS_WRITE_BATCH (256 << 10)
#define LP2P__PS_SIGN_PREFIX "libp2p-pubsub:"

LP2P__PRIV void lp2p__ps_digest(const lp2p_pubsub *ps, const uint8_t *id, size_t len, uint8_t d[LP2P__PS_DIGEST]) {
    lp2p__sha256 c;
    uint8_t out[32];
    lp2p__sha256_init(&c);
    lp2p__sha256_update(&c, ps->salt, sizeof ps->salt);
    lp2p__sha256_update(&c, id, len);
    lp2p__sha256_final(&c, out);
    memcpy(d, out, LP2P__PS_DIGEST);
}

/* ---- topics --------------------------------------------------------------------------------------- */
LP2P__PRIV bool lp2p__ps_topic_valid(const uint8_t *p, size_t n) {
    return p && n > 0 && n <= LP2P_PUBSUB_TOPIC_MAX && !memchr(p, 0, n);
}

static uint32_t lp2p__ps_hash(const uint8_t *p, size_t n) {
    uint32_t h = 2166136261u; /* FNV-1a: topic lookup only, the table is a list */
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
    return h;
}

LP2P__PRIV lp2p__ps_topic *lp2p__ps_topic_get(lp2p_pubsub *ps, const uint8_t *name, size_t len, bool create) {
    if (!lp2p__ps_topic_valid(name, len)) return NULL;
    uint32_t h = lp2p__ps_hash(name, len);
    for (lp2p__ps_topic *t = ps->topics; t; t = t->next)
        if (t->hash == h && t->name_len == len && memcmp(t->name, name, len) == 0) return t;
    if (!create) return NULL;
    if (ps->n_topics >= ps->cfg.max_topics) {
        LP2P__WARN(ps->ctx, LP2P_ERR_LIMIT, "pubsub: max_topics=%d reached: topic ignored", ps->cfg.max_topics);
        return NULL;
    }
    lp2p__ps_topic *t = (lp2p__ps_topic *)lp2p__zalloc(ps->ctx, sizeof *t);
    if (!t || !(t->name = (char *)lp2p__alloc(ps->ctx, len + 1))) {
        lp2p__free(ps->ctx, t, sizeof *t);
        return NULL;
    }
    memcpy(t->name, name, len), t->name[len] = 0;
    t->name_len = len, t->hash = h;
    t->next = ps->topics, ps->topics = t;
    ps->n_topics++;
    return t;
}

static void lp2p__ps_topic_destroy(lp2p_pubsub *ps, lp2p__ps_topic *t) {
    lp2p__free(ps->ctx, t->mesh, sizeof *t->mesh * (size_t)t->cap_mesh);
    lp2p__free(ps->ctx, t->fanout, sizeof *t->fanout * (size_t)t->cap_fanout);
    lp2p__free(ps->ctx, t->backoff, sizeof *t->backoff * (size_t)t->cap_backoff);
    lp2p__free(ps->ctx, t->score, sizeof *t->score);
    lp2p__free(ps->ctx, t->name, t->name_len + 1);
    lp2p__free(ps->ctx, t, sizeof *t);
}

/* A topic nobody refers to any more goes (topics with score params or a validator stay: the
 * user configured them; score records point at them). */
LP2P__PRIV void lp2p__ps_topic_maybe_free(lp2p_pubsub *ps, lp2p__ps_topic *t) {
    if (t->subs || t->joined || t->n_peers || t->n_mesh || t->n_fanout || t->n_backoff || t->validator || t->score)
        return;
    for (lp2p__ps_topic **pp = &ps->topics; *pp; pp = &(*pp)->next)
        if (*pp == t) {
            *pp = t->next;
            ps->n_topics--;
            lp2p__score_topic_freed(ps, t);
            lp2p__ps_topic_destroy(ps, t);
            return;
        }
}

LP2P__PRIV bool lp2p__ps_peer_in_topic(const lp2p__ps_peer *p, const lp2p__ps_topic *t) {
    for (int i = 0; i < p->n_topics; i++)
        if (p->topics[i] == t) return true;
    return false;
}

/* ---- peers ------------------------------------------------------------------------------------------ */
LP2P__PRIV lp2p__ps_peer *lp2p__ps_peer_find(lp2p_pubsub *ps, const lp2p_peer_id *id) {
    for (lp2p__ps_peer *p = ps->peers; p; p = p->next)
        if (lp2p_peer_id_eq(&p->id, id)) return p;
    return NULL;
}

LP2P__PRIV bool lp2p__ps_peer_active(const lp2p__ps_peer *p) { return !p->gone && p->out && p->proto; }

static void lp2p__ps_frames_free(lp2p_pubsub *ps, lp2p__ps_frame *f) {
    while (f) {
        lp2p__ps_frame *next = f->next;
        lp2p__buf_free(ps->ctx, &f->b);
        lp2p__free(ps->ctx, f, sizeof *f);
        f = next;
    }
}

static void lp2p__ps_peer_unref(lp2p__ps_peer *p) {
    if (--p->refs > 0) return;
    lp2p_pubsub *ps = p->ps;
    lp2p__ps_frames_free(ps, p->q_head);
    lp2p__free(ps->ctx, p->topics, sizeof *p->topics * (size_t)p->cap_topics);
    lp2p__ps_idset_free(ps->ctx, &p->dontwant);
    lp2p__free(ps->ctx, p, sizeof *p);
}

static void lp2p__ps_task_done(lp2p_pubsub *ps) {
    ps->n_tasks--;
    lp2p__waitq_wake_all(ps->h->sched, &ps->tasks_done);
}

static void lp2p__ps_writer_task(void *arg);

/* Start (or restart) our outbound stream to p on connection c. */
static void lp2p__ps_start_writer(lp2p_pubsub *ps, lp2p__ps_peer *p, lp2p__conn *c) {
    if (p->gone || p->writer.id || ps->closing) return;
    p->conn = c, p->outbound = c->outbound;
    p->refs++, ps->n_tasks++;
    p->writer = lp2p__spawn(ps->h->sched, lp2p__ps_writer_task, p);
    if (!p->writer.id) {
        p->refs--;
        lp2p__ps_task_done(ps);
    }
}

static lp2p__ps_peer *lp2p__ps_peer_get(lp2p_pubsub *ps, const lp2p_peer_id *id) {
    lp2p__ps_peer *p = lp2p__ps_peer_find(ps, id);
    if (p || ps->closing) return p;
    p = (lp2p__ps_peer *)lp2p__zalloc(ps->ctx, sizeof *p);
    if (!p) return NULL;
    p->ps = ps, p->id = *id, p->refs = 1;
    p->dontwant.max = (size_t)ps->cfg.max_idontwant_messages * (size_t)ps->cfg.max_idontwant_length;
    for (int i = 0; i < ps->n_direct; i++) {
        lp2p_peer_id did;
        if (lp2p__ma_split_p2p(&ps->direct[i], NULL, &did) && lp2p_peer_id_eq(&did, id)) p->direct = true;
    }
    p->next = ps->peers, ps->peers = p;
    ps->n_peers++;
    lp2p__score_add_peer(ps, p);
    return p;
}

static void lp2p__ps_set_ip(lp2p__ps_peer *p, const lp2p__conn *c) {
    size_t off = 0;
    uint32_t code;
    const uint8_t *v;
    size_t n;
    p->ip[0] = 0;
    if (lp2p__ma_next(&c->remote, &off, &code, &v, &n) && (code == LP2P__MA_IP4 || code == LP2P__MA_IP6))
        lp2p__hex_enc(v, n, p->ip, sizeof p->ip);
}

static void lp2p__ps_peer_leave_topic(lp2p_pubsub *ps, lp2p__ps_peer *p, int i) {
    lp2p__ps_topic *t = p->topics[i];
    p->topics[i] = p->topics[--p->n_topics];
    t->n_peers--;
    if (!ps->cfg.floodsub) lp2p__gs_peer_unsubscribed(ps, p, t);
    lp2p__ps_topic_maybe_free(ps, t);
}

/* The peer left: out of the table, meshes and topics; its tasks are told to end. */
static void lp2p__ps_peer_remove(lp2p_pubsub *ps, lp2p__ps_peer *p) {
    if (p->gone) return;
    if (!ps->cfg.floodsub) lp2p__gs_peer_removed(ps, p);
    p->gone = true;
    while (p->n_topics) lp2p__ps_peer_leave_topic(ps, p, p->n_topics - 1);
    lp2p__score_remove_peer(ps, p);
    for (lp2p__ps_peer **pp = &ps->peers; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            ps->n_peers--;
            break;
        }
    if (!ps->sched_gone) { /* (the host's scheduler is gone when the host frees us: no task is left) */
        if (p->writer.id) lp2p__task_cancel(ps->h->sched, p->writer);
        if (p->reader.id) lp2p__task_cancel(ps->h->sched, p->reader);
        lp2p__waitq_wake_all(ps->h->sched, &p->wake);
    }
    lp2p__ps_peer_unref(p);
}

/* ---- sending ------------------------------------------------------------------------------------------ */
LP2P__PRIV int lp2p__ps_send(lp2p__ps_peer *p, const uint8_t *rpc, size_t len, bool has_control, bool urgent) {
    lp2p_pubsub *ps = p->ps;
    if (!lp2p__ps_peer_active(p)) return LP2P_ERR_CLOSED;
    if (p->q_bytes + len > (size_t)ps->cfg.peer_queue_bytes) {
        ps->stats.rpcs_dropped++;
        if ((ps->stats.rpcs_dropped & (ps->stats.rpcs_dropped - 1)) == 0) { /* log 1st, 2nd, 4th, ... */
            char id[LP2P_PEER_ID_STRLEN];
            lp2p_peer_id_str(&p->id, id, sizeof id);
            LP2P__WARN(ps->ctx, LP2P_ERR_LIMIT, "pubsub: peer_queue_bytes=%d reached for %s: RPC dropped (%llu so far)",
                       ps->cfg.peer_queue_bytes, id, (unsigned long long)ps->stats.rpcs_dropped);
        }
        return LP2P_ERR_LIMIT;
    }
    lp2p__ps_frame *f = urgent ? NULL : p->q_tail;
    if (f && (f->b.len + len > LP2P__PS_MERGE_MAX || (f->has_control && has_control))) f = NULL;
    if (!f) {
        f = (lp2p__ps_frame *)lp2p__zalloc(ps->ctx, sizeof *f);
        if (!f) return LP2P_ERR_NOMEM;
        if (urgent) {
            f->next = p->q_head, p->q_head = f;
            if (!p->q_tail) p->q_tail = f;
        } else {
            if (p->q_tail) p->q_tail->next = f;
            else p->q_head = f;
            p->q_tail = f;
        }
    }
    if (lp2p__buf_append(ps->ctx, &f->b, rpc, len)) return LP2P_ERR_NOMEM; /* an empty frame is harmless */
    f->has_control |= has_control;
    p->q_bytes += len;
    lp2p__waitq_wake_all(ps->h->sched, &p->wake);
    return LP2P_OK;
}

LP2P__PRIV int lp2p__ps_send_msg(lp2p__ps_peer *p, const lp2p__ps_msg *m) {
    uint8_t hdr[1 + LP2P__UVARINT_MAX];
    lp2p__buf b = {0, 0, 0};
    lp2p_pubsub *ps = p->ps;
    hdr[0] = 0x12; /* RPC.publish, length-delimited */
    size_t n = 1 + lp2p__uvarint_put(hdr + 1, m->raw_len);
    int rc = lp2p__buf_reserve(ps->ctx, &b, n + m->raw_len);
    if (!rc) {
        lp2p__buf_append(ps->ctx, &b, hdr, n);
        lp2p__buf_append(ps->ctx, &b, m->raw, m->raw_len);
        rc = lp2p__ps_send(p, b.p, b.len, false, false);
    }
    lp2p__buf_free(ps->ctx, &b);
    if (!rc) ps->stats.forwarded++;
    return rc;
}

/* RPC{subscriptions: [(subscribe, topic) ...]} for every topic we joined, or one topic. */
static int lp2p__ps_encode_subs(lp2p_pubsub *ps, lp2p__buf *out, lp2p__ps_topic *only, bool subscribe) {
    lp2p__buf so = {0, 0, 0};
    int rc = LP2P_OK;
    for (lp2p__ps_topic *t = only ? only : ps->topics; t && !rc; t = only ? NULL : t->next) {
        if (!only && !t->joined) continue;
        so.len = 0;
        rc = lp2p__pb_put_varint(ps->ctx, &so, 1, subscribe);
        if (!rc) rc = lp2p__pb_put_bytes(ps->ctx, &so, 2, t->name, t->name_len);
        if (!rc) rc = lp2p__pb_put_bytes(ps->ctx, out, 1, so.p, so.len);
    }
    lp2p__buf_free(ps->ctx, &so);
    return rc;
}

static void lp2p__ps_announce(lp2p_pubsub *ps, lp2p__ps_topic *t, bool subscribe) {
    lp2p__buf b = {0, 0, 0};
    if (lp2p__ps_encode_subs(ps, &b, t, subscribe) == LP2P_OK)
        for (lp2p__ps_peer *p = ps->peers; p; p = p->next) lp2p__ps_send(p, b.p, b.len, false, false);
    lp2p__buf_free(ps->ctx, &b);
}

/* Our stream is open: greet the peer with our subscriptions, then it is a pubsub peer. */
static void lp2p__ps_peer_activated(lp2p_pubsub *ps, lp2p__ps_peer *p) {
    lp2p__buf b = {0, 0, 0};
    char id[LP2P_PEER_ID_STRLEN];
    lp2p_peer_id_str(&p->id, id, sizeof id);
    LP2P__DEBUG(ps->ctx, "pubsub: %s speaks %s", id, lp2p_stream_protocol(p->out));
    if (lp2p__ps_encode_subs(ps, &b, NULL, true) == LP2P_OK && b.len) lp2p__ps_send(p, b.p, b.len, false, false);
    lp2p__buf_free(ps->ctx, &b);
    if (!ps->cfg.floodsub) lp2p__gs_peer_added(ps, p);
}

static int lp2p__ps_proto_of(const char *s) {
    if (!strcmp(s, LP2P__PS_MESHSUB12)) return LP2P__PS_PROTO_MESH12;
    if (!strcmp(s, LP2P__PS_MESHSUB11)) return LP2P__PS_PROTO_MESH11;
    if (!strcmp(s, LP2P__PS_MESHSUB10)) return LP2P__PS_PROTO_MESH10;
    return LP2P__PS_PROTO_FLOOD;
}

/* Take frames off p's queue into one write buffer: uvarint(len) || RPC, ... */
static int lp2p__ps_take_batch(lp2p_pubsub *ps, lp2p__ps_peer *p, lp2p__buf *w) {
    uint8_t hdr[LP2P__UVARINT_MAX];
    w->len = 0;
    while (p->q_head && (w->len == 0 || w->len + p->q_head->b.len <= LP2P__PS_WRITE_BATCH)) {
        lp2p__ps_frame *f = p->q_head;
        size_t n = lp2p__uvarint_put(hdr, f->b.len);
        if (f->b.len && (lp2p__buf_append(ps->ctx, w, hdr, n) || lp2p__buf_append(ps->ctx, w, f->b.p, f->b.len)))
            return LP2P_ERR_NOMEM;
        if (f->b.len) ps->stats.rpcs_out++;
        p->q_head = f->next;
        if (!p->q_head) p->q_tail = NULL;
        p->q_bytes -= f->b.len;
        f->next = NULL;
        lp2p__ps_frames_free(ps, f);
    }
    return LP2P_OK;
}

/* Drain the queue into the stream until it breaks, the peer goes or its connection closes. */
static void lp2p__ps_writer_loop(lp2p_pubsub *ps, lp2p__ps_peer *p) {
    lp2p__buf w = {0, 0, 0};
    for (;;) {
        while (!p->q_head && !p->gone && !ps->closing && !p->conn->closed)
            if (lp2p__waitq_wait(ps->h->sched, &p->wake, LP2P_FOREVER) == LP2P_ERR_CANCELED) goto out;
        if (p->gone || ps->closing || p->conn->closed || lp2p__task_canceled()) break;
        if (lp2p__ps_take_batch(ps, p, &w) || !w.len) continue;
        if (lp2p_stream_write(p->out, w.p, w.len, lp2p_deadline_in(LP2P__PS_WRITE_TIMEOUT_MS)) != LP2P_OK) break;
        if (w.cap > (1 << 20)) lp2p__buf_free(ps->ctx, &w); /* do not keep a huge buffer around */
    }
out:
    lp2p__buf_free(ps->ctx, &w);
}

/* Open our stream on p->conn; returns the index of the protocol or an error. */
static int lp2p__ps_open(lp2p_pubsub *ps, lp2p__ps_peer *p, lp2p_stream **s) {
    lp2p__conn *c = p->conn;
    if (!c || c->closed) c = lp2p__swarm_find_conn(ps->h, &p->id);
    if (!c) return LP2P_ERR_CLOSED;
    p->conn = c, p->outbound = c->outbound;
    c->refs++;
    int rc = lp2p__host_open_on_any(c, ps->protos, ps->n_protos, lp2p_deadline_in(LP2P__PS_OPEN_TIMEOUT_MS), s);
    lp2p__conn_unref(c); /* our stream keeps the connection alive from here */
    if (rc >= 0 && (p->gone || ps->closing)) lp2p_stream_reset(*s), rc = LP2P_ERR_CANCELED;
    return rc;
}

/* Our stream to p: open it, greet, drain the queue. If it breaks while the peer stays connected
 * (a second connection replaced the first, the peer reset it), open it again, at most 3 times in
 * a row; a peer that does not speak pubsub is left alone (its own stream to us restarts us). */
static void lp2p__ps_writer_task(void *arg) {
    lp2p__ps_peer *p = (lp2p__ps_peer *)arg;
    lp2p_pubsub *ps = p->ps;
    char id[LP2P_PEER_ID_STRLEN];
    lp2p_peer_id_str(&p->id, id, sizeof id);
    for (int failures = 0; failures < 3 && !p->gone && !ps->closing;) {
        lp2p_stream *s = NULL;
        if (failures && lp2p__sleep_until(ps->h->sched, lp2p_deadline_in(1000)) != LP2P_OK) break;
        p->opening = true;
        int rc = lp2p__ps_open(ps, p, &s);
        p->opening = false;
        if (rc < 0) {
            if (rc != LP2P_ERR_CANCELED) LP2P__DEBUG(ps->ctx, "pubsub: no pubsub stream to %s: %s", id, lp2p_strerror(rc));
            if (rc == LP2P_ERR_PROTO_NA || rc == LP2P_ERR_CANCELED || rc == LP2P_ERR_CLOSED) break;
            failures++;
            continue;
        }
        p->out = s, p->proto = lp2p__ps_proto_of(ps->protos[rc]);
        lp2p__ps_set_ip(p, p->conn);
        lp2p__ps_peer_activated(ps, p);
        int64_t t0 = lp2p_now();
        lp2p__ps_writer_loop(ps, p);
        if (!p->gone && !ps->closing) {
            LP2P__INFO(ps->ctx, "pubsub: stream to %s ended", id);
            if (!ps->cfg.floodsub) lp2p__gs_peer_removed(ps, p);
        }
        p->proto = LP2P__PS_PROTO_NONE, p->out = NULL;
        lp2p__ps_frames_free(ps, p->q_head);
        p->q_head = p->q_tail = NULL, p->q_bytes = 0;
        lp2p_stream_reset(s); /* a pubsub stream ends only with the peer or with us */
        failures = lp2p_now() - t0 > 10000 ? 1 : failures + 1;
        if (lp2p__task_canceled()) break;
    }
    p->writer.id = 0;
    lp2p__ps_task_done(ps);
    lp2p__ps_peer_unref(p);
}

/* ---- connection notifications ------------------------------------------------------------------------ */
static void lp2p__ps_on_connected(void *user, lp2p__conn *c) {
    lp2p_pubsub *ps = (lp2p_pubsub *)user;
    lp2p__ps_peer *p = lp2p__ps_peer_get(ps, &c->peer);
    if (p) lp2p__ps_start_writer(ps, p, c);
}

static void lp2p__ps_on_disconnected(void *user, lp2p__conn *c) {
    lp2p_pubsub *ps = (lp2p_pubsub *)user;
    lp2p__ps_peer *p = lp2p__ps_peer_find(ps, &c->peer);
    if (!p) return;
    if (!lp2p__swarm_find_conn(ps->h, &c->peer)) lp2p__ps_peer_remove(ps, p);
    else if (p->conn == c) lp2p__waitq_wake_all(ps->h->sched, &p->wake); /* the writer moves to another one */
}

/* ---- messages: IDs ------------------------------------------------------------------------------------ */
LP2P_API ptrdiff_t lp2p_pubsub_msg_id_default(const lp2p_pubsub_message *m, uint8_t *out, size_t cap, void *user) {
    (void)user;
    size_t n = m->from.len + (m->has_seqno ? 8 : 0);
    if (n == 0) return LP2P_ERR_INVALID; /* nothing identifies an unsigned message: use a hash */
    if (n > cap) return LP2P_ERR_MSGSIZE;
    memcpy(out, m->from.bytes, m->from.len);
    if (m->has_seqno) lp2p__put_be64(out + m->from.len, m->seqno);
    return (ptrdiff_t)n;
}

LP2P_API ptrdiff_t lp2p_pubsub_msg_id_rust(const lp2p_pubsub_message *m, uint8_t *out, size_t cap, void *user) {
    char text[LP2P_PEER_ID_STRLEN + 24];
    static const uint8_t none[3] = {0, 1, 0}; /* rust uses PeerId::from_bytes(&[0, 1, 0]) without a source */
    (void)user;
    lp2p_peer_id from = m->from;
    if (!from.len) from.len = 3, memcpy(from.bytes, none, 3);
    if (lp2p__base58_enc(from.bytes, from.len, text, sizeof text) < 0) return LP2P_ERR_INVALID;
    size_t n = strlen(text);
    n += (size_t)snprintf(text + n, sizeof text - n, "%llu", (unsigned long long)(m->has_seqno ? m->seqno : 0));
    if (n > cap) return LP2P_ERR_MSGSIZE;
    memcpy(out, text, n);
    return (ptrdiff_t)n;
}

LP2P_API ptrdiff_t lp2p_pubsub_msg_id_js(const lp2p_pubsub_message *m, uint8_t *out, size_t cap, void *user) {
    const uint8_t *key;
    size_t klen;
    (void)user;
    if (!m->from.len || !m->has_seqno || lp2p__peer_id_pubkey(&m->from, &key, &klen) != LP2P_OK)
        return LP2P_ERR_UNSUPPORTED; /* js needs the key: only peer IDs that inline it (Ed25519, secp256k1) */
    if (klen + 8 > cap) return LP2P_ERR_MSGSIZE;
    memcpy(out, key, klen);
    lp2p__put_be64(out + klen, m->seqno);
    return (ptrdiff_t)(klen + 8);
}

LP2P_API ptrdiff_t lp2p_pubsub_msg_id_sha256(const lp2p_pubsub_message *m, uint8_t *out, size_t cap, void *user) {
    (void)user;
    if (cap < 32) return LP2P_ERR_MSGSIZE;
    lp2p__sha256_once(m->data, m->data_len, out);
    return 32;
}

static ptrdiff_t lp2p__ps_msg_id(lp2p_pubsub *ps, const lp2p_pubsub_message *v, uint8_t out[LP2P_PUBSUB_MSG_ID_MAX]) {
    ptrdiff_t n = ps->cfg.msg_id_fn(v, out, LP2P_PUBSUB_MSG_ID_MAX, ps->cfg.msg_id_user);
    return n <= 0 || n > LP2P_PUBSUB_MSG_ID_MAX ? (n < 0 ? n : LP2P_ERR_INVALID) : n;
}

/* ---- messages: encoding and signatures ---------------------------------------------------------------- */
/* Message fields 1-4 in field order (what go marshals; the signed part). */
static int lp2p__ps_encode_unsigned(lp2p__ctx *ctx, lp2p__buf *b, const lp2p__ps_rpc_msg *m) {
    int rc = LP2P_OK;
    if (!rc && m->has_from) rc = lp2p__pb_put_bytes(ctx, b, 1, m->from.p, m->from.n);
    if (!rc && m->has_data) rc = lp2p__pb_put_bytes(ctx, b, 2, m->data.p, m->data.n);
    if (!rc && m->has_seqno) rc = lp2p__pb_put_bytes(ctx, b, 3, m->seqno.p, m->seqno.n);
    if (!rc && m->has_topic) rc = lp2p__pb_put_bytes(ctx, b, 4, m->topic.p, m->topic.n);
    return rc;
}

/* StrictSign check of a received message: "libp2p-pubsub:" || Message without signature and key
 * (re-encoded in field order, as go does), verified with key (which must hash to from) or with
 * the key inlined in from. OK, ERR_HANDSHAKE (bad signature), ERR_PROTOCOL / ERR_UNSUPPORTED. */
static int lp2p__ps_verify(lp2p_pubsub *ps, const lp2p__ps_rpc_msg *m, const lp2p_peer_id *from) {
    const uint8_t *key;
    size_t klen;
    if (m->has_key) {
        lp2p_peer_id kid;
        if (lp2p__peer_id_from_pubkey(m->key.p, m->key.n, &kid) || !lp2p_peer_id_eq(&kid, from)) return LP2P_ERR_PROTOCOL;
        key = m->key.p, klen = m->key.n;
    } else if (lp2p__peer_id_pubkey(from, &key, &klen) != LP2P_OK) {
        return LP2P_ERR_PROTOCOL; /* a hashed peer ID needs the key field */
    }
    lp2p__buf b = {0, 0, 0};
    int rc = lp2p__buf_append(ps->ctx, &b, LP2P__PS_SIGN_PREFIX, strlen(LP2P__PS_SIGN_PREFIX));
    if (!rc) rc = lp2p__ps_encode_unsigned(ps->ctx, &b, m);
    if (!rc) rc = lp2p__pubkey_verify(key, klen, b.p, b.len, m->signature.p, m->signature.n);
    lp2p__buf_free(ps->ctx, &b);
    return rc;
}

/* Allocate a message holding a copy of raw (and its ID); fields as slices of the copy. */
static lp2p__ps_msg *lp2p__ps_msg_new(lp2p_pubsub *ps, const lp2p__ps_rpc_msg *rm, const lp2p_pubsub_message *v,
                                      const uint8_t *id, size_t id_len) {
    size_t sz = sizeof(lp2p__ps_msg) + rm->raw.n + id_len + rm->topic.n + 1;
    lp2p__ps_msg *m = (lp2p__ps_msg *)lp2p__zalloc(ps->ctx, sz);
    if (!m) return NULL;
    m->refs = 1, m->alloc = sz, m->ctx = ps->ctx;
    m->raw = (uint8_t *)(m + 1);
    memcpy(m->raw, rm->raw.p, rm->raw.n), m->raw_len = rm->raw.n;
    m->id = m->raw + rm->raw.n;
    memcpy(m->id, id, id_len), m->id_len = id_len;
    m->topic = (char *)m->id + id_len;
    memcpy(m->topic, rm->topic.p, rm->topic.n), m->topic[rm->topic.n] = 0, m->topic_len = rm->topic.n;
    if (rm->has_data) m->data.p = m->raw + (rm->data.p - rm->raw.p), m->data.n = rm->data.n;
    m->from = v->from, m->received_from = v->received_from;
    m->seqno = v->seqno, m->has_seqno = v->has_seqno;
    lp2p__ps_digest(ps, id, id_len, m->digest);
    return m;
}

LP2P__PRIV void lp2p__ps_msg_unref(lp2p__ps_msg *m) {
    if (m && --m->refs == 0) lp2p__free(m->ctx, m, m->alloc);
}

static void lp2p__ps_view(const lp2p__ps_msg *m, lp2p_pubsub_message *out) {
    memset(out, 0, sizeof *out);
    out->topic = m->topic;
    out->data = m->data.p, out->data_len = m->data.n;
    out->from = m->from, out->received_from = m->received_from;
    out->seqno = m->seqno, out->has_seqno = m->has_seqno;
    out->id = m->id, out->id_len = m->id_len;
}

/* ---- delivery to subscriptions --------------------------------------------------------------------------- */
static void lp2p__ps_deliver(lp2p_pubsub *ps, lp2p__ps_topic *t, lp2p__ps_msg *m) {
    for (lp2p_subscription *s = t->subs; s; s = s->next) {
        if (s->q_len == s->q_cap) { /* full: the oldest goes */
            lp2p__ps_msg_unref(s->q[s->q_head]);
            s->q_head = (s->q_head + 1) % s->q_cap;
            s->q_len--;
            s->dropped++, ps->stats.delivery_drops++;
            if ((s->dropped & (s->dropped - 1)) == 0)
                LP2P__WARN(ps->ctx, LP2P_ERR_LIMIT, "pubsub: subscription_queue=%d full on '%s': dropped %llu messages",
                           s->q_cap, t->name, (unsigned long long)s->dropped);
        }
        m->refs++;
        s->q[(s->q_head + s->q_len) % s->q_cap] = m;
        s->q_len++;
        ps->stats.delivered++;
        lp2p__waitq_wake_all(ps->h->sched, &s->wait);
    }
}

/* ---- receiving ------------------------------------------------------------------------------------------------ */
static void lp2p__ps_reject(lp2p_pubsub *ps, lp2p__ps_peer *p, lp2p__ps_topic *t, const char *why) {
    char id[LP2P_PEER_ID_STRLEN];
    ps->stats.rejected++;
    lp2p__score_invalid(ps, p, t);
    lp2p_peer_id_str(&p->id, id, sizeof id);
    LP2P__INFO(ps->ctx, "pubsub: message from %s on '%s' rejected: %s", id, t->name, why);
}

/* The signing policy and the message view (from, seqno) of a received message. */
static const char *lp2p__ps_check_policy(lp2p_pubsub *ps, const lp2p__ps_rpc_msg *rm, lp2p_pubsub_message *v) {
    if (ps->cfg.signing == LP2P_PUBSUB_STRICT_NO_SIGN) {
        if (rm->has_from || rm->has_seqno || rm->has_signature || rm->has_key) return "unexpected signature or author";
        return NULL;
    }
    if (!rm->has_signature || !rm->has_from || !rm->has_seqno) return "missing signature, from or seqno";
    if (rm->seqno.n != 8) return "seqno is not 8 bytes";
    if (lp2p__peer_id_from_bytes(rm->from.p, rm->from.n, &v->from) != LP2P_OK) return "bad from peer ID";
    v->seqno = lp2p__be64(rm->seqno.p), v->has_seqno = true;
    return NULL;
}

static lp2p_pubsub_validation lp2p__ps_validate(lp2p_pubsub *ps, lp2p__ps_topic *t, const lp2p_pubsub_message *v) {
    return t->validator ? t->validator(ps, v, t->validator_user) : LP2P_PUBSUB_ACCEPT;
}

static void lp2p__ps_handle_msg(lp2p_pubsub *ps, lp2p__ps_peer *p, const lp2p__ps_rpc_msg *rm) {
    uint8_t id[LP2P_PUBSUB_MSG_ID_MAX], d[LP2P__PS_DIGEST];
    lp2p_pubsub_message v;
    ps->stats.messages_in++;
    lp2p__ps_topic *t = rm->has_topic ? lp2p__ps_topic_get(ps, rm->topic.p, rm->topic.n, false) : NULL;
    if (!t || !t->joined) { /* not our topic (go: not subscribed, not relaying): not forwarded either */
        ps->stats.ignored++;
        return;
    }
    memset(&v, 0, sizeof v);
    v.topic = t->name, v.received_from = p->id;
    v.data = rm->data.p, v.data_len = rm->data.n;
    const char *why = lp2p__ps_check_policy(ps, rm, &v);
    if (why) {
        lp2p__ps_reject(ps, p, t, why);
        return;
    }
    ptrdiff_t idn = lp2p__ps_msg_id(ps, &v, id);
    if (idn <= 0) {
        lp2p__ps_reject(ps, p, t, "no message ID");
        return;
    }
    lp2p__ps_digest(ps, id, (size_t)idn, d);
    if (!ps->cfg.floodsub) lp2p__gs_promise_kept(ps, d);
    lp2p__ps_idset_entry *e = lp2p__ps_idset_find(&ps->seen, d);
    if (e) {
        ps->stats.duplicates++;
        if (e->status == LP2P__PS_SEEN_VALID) lp2p__score_duplicate(ps, p, t, e->aux);
        else lp2p__score_invalid(ps, p, t);
        return;
    }
    if (v.from.len && lp2p_peer_id_eq(&v.from, &ps->h->identity.id)) { /* ours, unseen: a forgery or a replay */
        lp2p__ps_reject(ps, p, t, "claims to be ours");
        return;
    }
    if (!ps->cfg.floodsub) lp2p__gs_preprocess(ps, p, t, id, (size_t)idn, rm->data.n);
    if (ps->cfg.signing == LP2P_PUBSUB_STRICT_SIGN) {
        int rc = lp2p__ps_verify(ps, rm, &v.from);
        if (rc) {
            lp2p__ps_reject(ps, p, t, rc == LP2P_ERR_HANDSHAKE ? "bad signature" : "bad key");
            return;
        }
    }
    v.id = id, v.id_len = (size_t)idn;
    lp2p_pubsub_validation res = lp2p__ps_validate(ps, t, &v);
    int64_t now = lp2p_now();
    if (res == LP2P_PUBSUB_IGNORE) {
        ps->stats.ignored++;
        return;
    }
    e = lp2p__ps_idset_add(ps->ctx, &ps->seen, d, now + ps->cfg.seen_ttl_ms, NULL);
    if (res == LP2P_PUBSUB_REJECT) {
        if (e) e->status = LP2P__PS_SEEN_INVALID;
        lp2p__ps_reject(ps, p, t, "validator");
        return;
    }
    if (e) e->status = LP2P__PS_SEEN_VALID, e->aux = now;
    lp2p__ps_msg *m = lp2p__ps_msg_new(ps, rm, &v, id, (size_t)idn);
    if (!m) return;
    lp2p__score_first_delivery(ps, p, t);
    if (!ps->cfg.floodsub) lp2p__gs_mcache_put(ps, m);
    lp2p__ps_deliver(ps, t, m);
    lp2p__gs_forward(ps, t, m, p, false);
    lp2p__ps_msg_unref(m);
}

static void lp2p__ps_handle_subs(lp2p_pubsub *ps, lp2p__ps_peer *p, const lp2p__ps_rpc *r) {
    for (int i = 0; i < r->n_subs; i++) {
        const lp2p__ps_rpc_sub *s = &r->subs[i];
        if (s->subscribe) {
            lp2p__ps_topic *t = lp2p__ps_topic_get(ps, s->topic.p, s->topic.n, false);
            if (t && lp2p__ps_peer_in_topic(p, t)) continue;
            if (p->n_topics >= ps->cfg.max_topics_per_peer) {
                LP2P__INFO(ps->ctx, "pubsub: max_topics_per_peer=%d reached: subscription ignored", ps->cfg.max_topics_per_peer);
                continue;
            }
            if (!t && !(t = lp2p__ps_topic_get(ps, s->topic.p, s->topic.n, true))) continue;
            if (p->n_topics == p->cap_topics) {
                int ncap = p->cap_topics ? p->cap_topics * 2 : 4;
                void *np = lp2p__realloc(ps->ctx, p->topics, sizeof *p->topics * (size_t)p->cap_topics,
                                         sizeof *p->topics * (size_t)ncap);
                if (!np) {
                    lp2p__ps_topic_maybe_free(ps, t);
                    continue;
                }
                p->topics = (lp2p__ps_topic **)np, p->cap_topics = ncap;
            }
            p->topics[p->n_topics++] = t;
            t->n_peers++;
        } else {
            lp2p__ps_topic *t = lp2p__ps_topic_get(ps, s->topic.p, s->topic.n, false);
            for (int k = 0; t && k < p->n_topics; k++)
                if (p->topics[k] == t) {
                    lp2p__ps_peer_leave_topic(ps, p, k);
                    break;
                }
        }
    }
}

static void lp2p__ps_handle_rpc(lp2p_pubsub *ps, lp2p__ps_peer *p, const lp2p__ps_rpc *r, bool gossip) {
    ps->stats.rpcs_in++;
    if (!ps->cfg.floodsub && !p->direct && lp2p__score(ps, p) < ps->th.graylist) {
        ps->stats.rpcs_graylisted++;
        return;
    }
    lp2p__ps_handle_subs(ps, p, r);
    for (int i = 0; i < r->n_msgs && !p->gone; i++) lp2p__ps_handle_msg(ps, p, &r->msgs[i]);
    if (gossip && r->n_ctl && !p->gone && !ps->cfg.floodsub) lp2p__gs_handle_control(ps, p, r);
}

static void lp2p__ps_bad_rpc(lp2p_pubsub *ps, lp2p__ps_peer *p, const char *why) {
    char id[LP2P_PEER_ID_STRLEN];
    ps->stats.rpcs_malformed++;
    lp2p_peer_id_str(&p->id, id, sizeof id);
    LP2P__WARN(ps->ctx, LP2P_ERR_PROTOCOL, "pubsub: bad RPC from %s (%s): resetting its stream", id, why);
    lp2p__score_penalty(ps, p, 1);
}

/* Parse every complete uvarint-delimited RPC at the front of in; 0 = need more, 1 = consumed
 * one, < 0 = a protocol violation. */
static int lp2p__ps_next_rpc(lp2p_pubsub *ps, lp2p__ps_peer *p, lp2p__buf *in, bool gossip) {
    uint64_t len;
    int k = lp2p__uvarint_get(in->p, in->len, &len);
    if (k < 0) return lp2p__ps_bad_rpc(ps, p, "bad length prefix"), LP2P_ERR_PROTOCOL;
    if (k > 0 && len > (uint64_t)ps->cfg.max_rpc_size) return lp2p__ps_bad_rpc(ps, p, "larger than max_rpc_size"), LP2P_ERR_MSGSIZE;
    if (k == 0 || in->len < (size_t)k + len) return 0;
    lp2p__ps_rpc r;
    int rc = lp2p__ps_rpc_decode(&r, ps->ctx, in->p + k, (size_t)len);
    if (rc) {
        lp2p__ps_bad_rpc(ps, p, r.error ? r.error : "malformed");
        lp2p__ps_rpc_clear(&r);
        return rc;
    }
    if (r.truncated) LP2P__DEBUG(ps->ctx, "pubsub: RPC over the per-RPC caps: %d entries ignored", r.truncated);
    lp2p__ps_handle_rpc(ps, p, &r, gossip);
    lp2p__ps_rpc_clear(&r);
    lp2p__buf_consume(in, (size_t)k + (size_t)len);
    return 1;
}

/* The peer's stream to us (one per peer: a newer one replaces the older, as go does). */
static void lp2p__ps_serve(lp2p_stream *s, void *user) {
    lp2p_pubsub *ps = (lp2p_pubsub *)user;
    lp2p__buf in = {0, 0, 0};
    if (ps->closing) return;
    lp2p__ps_peer *p = lp2p__ps_peer_get(ps, &s->peer);
    if (!p) return;
    if (p->reader.id) lp2p__task_cancel(ps->h->sched, p->reader);
    p->reader = lp2p__task_self();
    p->refs++, ps->n_tasks++;
    if (!p->writer.id && s->conn && !s->conn->closed) lp2p__ps_start_writer(ps, p, s->conn);
    bool gossip = strcmp(lp2p_stream_protocol(s), LP2P__PS_FLOODSUB) != 0;
    int rc = 0;
    while (!p->gone && !ps->closing && rc >= 0) {
        if ((rc = lp2p__ps_next_rpc(ps, p, &in, gossip)) != 0) continue;
        if (lp2p__buf_reserve(ps->ctx, &in, 64 << 10)) break;
        ptrdiff_t n = lp2p_stream_read(s, in.p + in.len, in.cap - in.len, LP2P_FOREVER);
        if (n <= 0) break;
        in.len += (size_t)n;
        if (in.cap > (256 << 10) && in.len < (64 << 10)) { /* shrink after a large RPC */
            lp2p__buf small = {0, 0, 0};
            if (lp2p__buf_append(ps->ctx, &small, in.p, in.len) == LP2P_OK) lp2p__buf_free(ps->ctx, &in), in = small;
        }
    }
    if (rc < 0) lp2p_stream_reset(s);
    lp2p__buf_free(ps->ctx, &in);
    if (p->reader.id == lp2p__task_self().id) p->reader.id = 0;
    lp2p__ps_task_done(ps);
    lp2p__ps_peer_unref(p);
}

/* ---- connecting to peers learnt by peer exchange / direct peers ------------------------------------------------- */
typedef struct lp2p__ps_dial {
    lp2p_pubsub *ps;
    lp2p_peer_id peer;
    lp2p_task task;
    struct lp2p__ps_dial *next;
} lp2p__ps_dial;

static void lp2p__ps_dial_task(void *arg) {
    lp2p__ps_dial *d = (lp2p__ps_dial *)arg;
    lp2p_pubsub *ps = d->ps;
    char id[LP2P_PEER_ID_STRLEN];
    lp2p_peer_id_str(&d->peer, id, sizeof id);
    if (!ps->closing) lp2p_host_connect(ps->h, id, lp2p_deadline_in(LP2P__PS_OPEN_TIMEOUT_MS * 3));
    for (lp2p__ps_dial **pp = &ps->dials; *pp; pp = &(*pp)->next)
        if (*pp == d) {
            *pp = d->next;
            break;
        }
    ps->n_dials--;
    lp2p__free(ps->ctx, d, sizeof *d);
    lp2p__ps_task_done(ps);
}

LP2P__PRIV void lp2p__ps_connect_async(lp2p_pubsub *ps, const lp2p_peer_id *peer) {
    if (ps->closing || lp2p__swarm_find_conn(ps->h, peer) || lp2p_peer_id_eq(peer, &ps->h->identity.id)) return;
    if (ps->n_dials >= 16) return; /* go: 8 connectors, 128 pending; ours is a bounded best effort */
    for (lp2p__ps_dial *x = ps->dials; x; x = x->next)
        if (lp2p_peer_id_eq(&x->peer, peer)) return;
    lp2p__ps_dial *d = (lp2p__ps_dial *)lp2p__zalloc(ps->ctx, sizeof *d);
    if (!d) return;
    d->ps = ps, d->peer = *peer;
    ps->n_tasks++;
    d->task = lp2p__spawn(ps->h->sched, lp2p__ps_dial_task, d);
    if (!d->task.id) {
        lp2p__free(ps->ctx, d, sizeof *d);
        lp2p__ps_task_done(ps);
        return;
    }
    d->next = ps->dials, ps->dials = d, ps->n_dials++;
}

/* ---- configuration -------------------------------------------------------------------------------------- */
static int lp2p__ps_config_resolve(lp2p_pubsub_config *c) {
#define LP2P__PS_DEF(field, value) \
    if (c->field == 0) c->field = (value)
    LP2P__PS_DEF(max_rpc_size, 1 << 20);
    LP2P__PS_DEF(d, 6);
    LP2P__PS_DEF(d_lo, 5);
    LP2P__PS_DEF(d_hi, 12);
    LP2P__PS_DEF(d_lazy, 6);
    LP2P__PS_DEF(d_score, 4);
    LP2P__PS_DEF(d_out, 2);
    LP2P__PS_DEF(gossip_factor, 0.25);
    LP2P__PS_DEF(heartbeat_ms, 1000);
    LP2P__PS_DEF(heartbeat_initial_delay_ms, 100);
    LP2P__PS_DEF(fanout_ttl_ms, 60000);
    LP2P__PS_DEF(history_length, 5);
    LP2P__PS_DEF(history_gossip, 3);
    LP2P__PS_DEF(seen_ttl_ms, 120000);
    LP2P__PS_DEF(prune_backoff_ms, 60000);
    LP2P__PS_DEF(unsubscribe_backoff_ms, 10000);
    LP2P__PS_DEF(graft_flood_threshold_ms, 10000);
    LP2P__PS_DEF(prune_peers, 16);
    LP2P__PS_DEF(opportunistic_graft_ticks, 60);
    LP2P__PS_DEF(opportunistic_graft_peers, 2);
    LP2P__PS_DEF(max_ihave_length, 5000);
    LP2P__PS_DEF(max_ihave_messages, 10);
    LP2P__PS_DEF(iwant_followup_ms, 3000);
    LP2P__PS_DEF(gossip_retransmission, 3);
    LP2P__PS_DEF(idontwant_threshold, 1024);
    LP2P__PS_DEF(max_idontwant_messages, 1000);
    LP2P__PS_DEF(max_idontwant_length, 10);
    LP2P__PS_DEF(idontwant_ttl, 3);
    LP2P__PS_DEF(peer_queue_bytes, 8 << 20);
    LP2P__PS_DEF(subscription_queue, 4096);
    LP2P__PS_DEF(max_topics, 16384);
    LP2P__PS_DEF(max_topics_per_peer, 1024);
#undef LP2P__PS_DEF
    if (c->d_out < 0) c->d_out = 0;
    if (c->prune_peers < 0) c->prune_peers = 0;
    if (!c->msg_id_fn)
        c->msg_id_fn = c->signing == LP2P_PUBSUB_STRICT_NO_SIGN ? lp2p_pubsub_msg_id_sha256 : lp2p_pubsub_msg_id_default;
    /* gossipsub-v1.1.md: D_lo <= D <= D_hi, D_out < D_lo, D_out <= D/2, history_gossip <= history_length */
    if (c->d_lo > c->d || c->d > c->d_hi || c->d_score > c->d || (c->d_out && (c->d_out >= c->d_lo || c->d_out > c->d / 2)) ||
        c->history_gossip > c->history_length || c->max_rpc_size < 1024 || c->heartbeat_ms < 10 || c->gossip_factor < 0 ||
        c->gossip_factor > 1 || c->subscription_queue < 1 || c->max_idontwant_length < 1)
        return LP2P_ERR_INVALID;
    return LP2P_OK;
}

static bool lp2p__ps_thresholds_ok(const lp2p_pubsub_score_thresholds *t) {
    return t->gossip <= 0 && t->publish <= t->gossip && t->graylist <= t->publish && t->accept_px >= 0 &&
           t->opportunistic_graft >= 0;
}

/* ---- public API ---------------------------------------------------------------------------------------------- */
static void lp2p__ps_destroy(lp2p_pubsub *ps);
static void lp2p__ps_release(void *self) { /* the host's service free: its scheduler is gone */
    lp2p_pubsub *ps = (lp2p_pubsub *)self;
    ps->sched_gone = true;
    lp2p__ps_destroy(ps);
}

LP2P_API int lp2p_pubsub_new(lp2p_host *h, const lp2p_pubsub_config *cfg, lp2p_pubsub **out) {
    lp2p_pubsub_config zero;
    if (!h || !out) return LP2P_ERR_INVALID;
    if (!cfg) memset(&zero, 0, sizeof zero), cfg = &zero;
    for (lp2p__service *s = h->services; s; s = s->next)
        if (s->free == lp2p__ps_release) return LP2P_ERR_INVALID; /* one per host */
    lp2p_pubsub *ps = (lp2p_pubsub *)lp2p__zalloc(&h->ctx, sizeof *ps);
    if (!ps) return LP2P_ERR_NOMEM;
    ps->h = h, ps->ctx = &h->ctx, ps->cfg = *cfg;
    if (lp2p__ps_config_resolve(&ps->cfg)) {
        LP2P__WARN(&h->ctx, LP2P_ERR_INVALID, "pubsub: inconsistent configuration (d_lo <= d <= d_hi, d_out < d_lo, ...)");
        lp2p__free(&h->ctx, ps, sizeof *ps);
        return LP2P_ERR_INVALID;
    }
    lp2p_pubsub_score_defaults(&ps->sp, &ps->th);
    if (cfg->score_params) ps->sp = *cfg->score_params;
    if (cfg->score_thresholds) ps->th = *cfg->score_thresholds;
    if (!lp2p__ps_thresholds_ok(&ps->th) || lp2p__score_check_topic_params(&ps->sp.topic_defaults) ||
        ps->sp.decay_interval_ms <= 0) {
        LP2P__WARN(&h->ctx, LP2P_ERR_INVALID, "pubsub: bad score parameters or thresholds");
        lp2p__free(&h->ctx, ps, sizeof *ps);
        return LP2P_ERR_INVALID;
    }
    ps->cfg.score_params = NULL, ps->cfg.score_thresholds = NULL, ps->cfg.direct_peers = NULL;
    if (cfg->n_direct_peers > 0) {
        ps->direct = (lp2p__ma *)lp2p__zalloc(&h->ctx, sizeof *ps->direct * (size_t)cfg->n_direct_peers);
        if (!ps->direct) return lp2p__free(&h->ctx, ps, sizeof *ps), LP2P_ERR_NOMEM;
        for (int i = 0; i < cfg->n_direct_peers; i++) {
            lp2p_peer_id id;
            lp2p__ma base;
            if (!cfg->direct_peers[i] || lp2p__ma_parse(cfg->direct_peers[i], &ps->direct[i], NULL) ||
                !lp2p__ma_split_p2p(&ps->direct[i], &base, &id)) {
                lp2p__free(&h->ctx, ps->direct, sizeof *ps->direct * (size_t)cfg->n_direct_peers);
                lp2p__free(&h->ctx, ps, sizeof *ps);
                return LP2P_ERR_INVALID;
            }
            lp2p__peerstore_add_addr(h, &id, &base, -1);
        }
        ps->n_direct = cfg->n_direct_peers;
    }
    lp2p__random(ps->salt, sizeof ps->salt);
    ps->seqno = (uint64_t)time(NULL) * 1000000000u; /* go seeds its counter with Unix nanoseconds */
    ps->seen.max = 1 << 18; /* 2 min of 2,000 messages/s; beyond, the oldest IDs are forgotten early */
    if (ps->cfg.floodsub) {
        ps->protos[ps->n_protos++] = LP2P__PS_FLOODSUB;
    } else {
        ps->protos[ps->n_protos++] = LP2P__PS_MESHSUB12;
        ps->protos[ps->n_protos++] = LP2P__PS_MESHSUB11;
        ps->protos[ps->n_protos++] = LP2P__PS_MESHSUB10;
        ps->protos[ps->n_protos++] = LP2P__PS_FLOODSUB;
    }
    int rc = lp2p__gs_init(ps); /* floodsub too: its heartbeat expires the seen cache */
    for (int i = 0; i < ps->n_protos && !rc; i++) rc = lp2p_host_handle(h, ps->protos[i], lp2p__ps_serve, ps);
    if (rc) {
        ps->closing = true;
        for (int i = 0; i < ps->n_protos; i++) lp2p_host_unhandle(h, ps->protos[i]);
        lp2p__ps_destroy(ps);
        return rc;
    }
    ps->notifee.connected = lp2p__ps_on_connected;
    ps->notifee.disconnected = lp2p__ps_on_disconnected;
    ps->notifee.user = ps;
    lp2p__swarm_add_notifee(h, &ps->notifee);
    ps->service.free = lp2p__ps_release, ps->service.self = ps;
    lp2p__host_add_service(h, &ps->service);
    for (lp2p__conn *c = h->conns; c; c = c->next) /* join the connections we already have */
        if (!c->closed) lp2p__ps_on_connected(ps, c);
    *out = ps;
    return LP2P_OK;
}

/* Free everything (no task of ours runs any more). */
static void lp2p__ps_destroy(lp2p_pubsub *ps) {
    lp2p__ctx *ctx = ps->ctx;
    ps->closing = true;
    while (ps->peers) lp2p__ps_peer_remove(ps, ps->peers);
    for (lp2p__ps_topic *t = ps->topics; t; t = t->next)
        while (t->subs) {
            lp2p_subscription *s = t->subs;
            t->subs = s->next;
            lp2p__ps_msg_unref(s->current);
            for (int i = 0; i < s->q_len; i++) lp2p__ps_msg_unref(s->q[(s->q_head + i) % s->q_cap]);
            lp2p__free(ctx, s->q, sizeof *s->q * (size_t)s->q_cap);
            lp2p__free(ctx, s, sizeof *s);
        }
    lp2p__gs_free(ps);
    lp2p__score_free(ps);
    while (ps->topics) {
        lp2p__ps_topic *t = ps->topics;
        ps->topics = t->next;
        lp2p__ps_topic_destroy(ps, t);
    }
    lp2p__ps_idset_free(ctx, &ps->seen);
    lp2p__free(ctx, ps->direct, sizeof *ps->direct * (size_t)ps->n_direct);
    lp2p__free(ctx, ps, sizeof *ps);
}

LP2P_API void lp2p_pubsub_free(lp2p_pubsub *ps) {
    if (!ps) return;
    lp2p_host *h = ps->h;
    ps->closing = true;
    for (int i = 0; i < ps->n_protos; i++) lp2p_host_unhandle(h, ps->protos[i]);
    lp2p__swarm_remove_notifee(h, &ps->notifee);
    for (lp2p__ps_topic *t = ps->topics; t; t = t->next)
        for (lp2p_subscription *s = t->subs; s; s = s->next) lp2p__waitq_wake_all(h->sched, &s->wait);
    while (ps->peers) lp2p__ps_peer_remove(ps, ps->peers);
    for (lp2p__ps_dial *d = ps->dials; d; d = d->next) lp2p__task_cancel(h->sched, d->task);
    if (ps->heartbeat_task.id) lp2p__task_cancel(h->sched, ps->heartbeat_task);
    if (ps->direct_task.id) lp2p__task_cancel(h->sched, ps->direct_task);
    lp2p__task_join(h->sched, ps->heartbeat_task, lp2p_deadline_in(10000));
    lp2p__task_join(h->sched, ps->direct_task, lp2p_deadline_in(10000));
    for (int64_t end = lp2p_deadline_in(10000); ps->n_tasks > 0 && lp2p_now() < end;)
        lp2p__waitq_wait(h->sched, &ps->tasks_done, end);
    if (ps->n_tasks > 0) { /* cannot wait longer here: lp2p_host_free frees it */
        LP2P__WARN(ps->ctx, LP2P_ERR_TIMEOUT, "pubsub: freed with %d tasks still running: memory kept until lp2p_host_free",
                   ps->n_tasks);
        return;
    }
    lp2p__host_remove_service(h, &ps->service);
    lp2p__ps_destroy(ps);
}

static int lp2p__ps_topic_arg(lp2p_pubsub *ps, const char *topic, bool create, lp2p__ps_topic **out) {
    if (!ps || !topic || !lp2p__ps_topic_valid((const uint8_t *)topic, strlen(topic))) return LP2P_ERR_INVALID;
    *out = lp2p__ps_topic_get(ps, (const uint8_t *)topic, strlen(topic), create);
    return *out || !create ? LP2P_OK : (ps->n_topics >= ps->cfg.max_topics ? LP2P_ERR_LIMIT : LP2P_ERR_NOMEM);
}

LP2P_API int lp2p_pubsub_subscribe(lp2p_pubsub *ps, const char *topic, lp2p_subscription **out) {
    lp2p__ps_topic *t;
    if (!out) return LP2P_ERR_INVALID;
    int rc = lp2p__ps_topic_arg(ps, topic, true, &t);
    if (rc) return rc;
    lp2p_subscription *s = (lp2p_subscription *)lp2p__zalloc(ps->ctx, sizeof *s);
    if (s) s->q = (lp2p__ps_msg **)lp2p__alloc(ps->ctx, sizeof *s->q * (size_t)ps->cfg.subscription_queue);
    if (!s || !s->q) {
        lp2p__free(ps->ctx, s, sizeof *s);
        lp2p__ps_topic_maybe_free(ps, t);
        return LP2P_ERR_NOMEM;
    }
    s->ps = ps, s->t = t, s->q_cap = ps->cfg.subscription_queue;
    s->next = t->subs, t->subs = s;
    if (!t->joined) {
        t->joined = true;
        lp2p__ps_announce(ps, t, true);
        if (!ps->cfg.floodsub) lp2p__gs_join(ps, t);
    }
    *out = s;
    return LP2P_OK;
}

LP2P_API int lp2p_subscription_next(lp2p_subscription *sub, lp2p_pubsub_message *out, int64_t deadline) {
    if (!sub || !out) return LP2P_ERR_INVALID;
    lp2p_pubsub *ps = sub->ps;
    lp2p__ps_msg_unref(sub->current);
    sub->current = NULL;
    while (!sub->q_len) {
        if (ps->closing) return LP2P_ERR_CLOSED;
        if (deadline == LP2P_NOWAIT || (deadline > 0 && lp2p_now() >= deadline)) return LP2P_ERR_TIMEOUT;
        int rc = lp2p__waitq_wait(ps->h->sched, &sub->wait, deadline);
        if (rc && rc != LP2P_ERR_TIMEOUT) return rc;
    }
    sub->current = sub->q[sub->q_head];
    sub->q_head = (sub->q_head + 1) % sub->q_cap;
    sub->q_len--;
    lp2p__ps_view(sub->current, out);
    return LP2P_OK;
}

LP2P_API uint64_t lp2p_subscription_dropped(const lp2p_subscription *sub) { return sub ? sub->dropped : 0; }
LP2P_API const char *lp2p_subscription_topic(const lp2p_subscription *sub) { return sub ? sub->t->name : NULL; }

LP2P_API void lp2p_subscription_cancel(lp2p_subscription *sub) {
    if (!sub) return;
    lp2p_pubsub *ps = sub->ps;
    lp2p__ps_topic *t = sub->t;
    for (lp2p_subscription **pp = &t->subs; *pp; pp = &(*pp)->next)
        if (*pp == sub) {
            *pp = sub->next;
            break;
        }
    lp2p__ps_msg_unref(sub->current);
    for (int i = 0; i < sub->q_len; i++) lp2p__ps_msg_unref(sub->q[(sub->q_head + i) % sub->q_cap]);
    lp2p__waitq_wake_all(ps->h->sched, &sub->wait);
    lp2p__free(ps->ctx, sub->q, sizeof *sub->q * (size_t)sub->q_cap);
    lp2p__free(ps->ctx, sub, sizeof *sub);
    if (!t->subs && t->joined) {
        t->joined = false;
        lp2p__ps_announce(ps, t, false);
        if (!ps->cfg.floodsub) lp2p__gs_leave(ps, t);
    }
    lp2p__ps_topic_maybe_free(ps, t);
}

/* Build our message: from, data, seqno, topic (+ signature) or, unsigned, data and topic. */
static int lp2p__ps_build_own(lp2p_pubsub *ps, lp2p__ps_topic *t, const void *data, size_t len, lp2p__buf *raw,
                              lp2p__ps_rpc_msg *rm, lp2p_pubsub_message *v) {
    uint8_t seq[8], sig[64];
    memset(rm, 0, sizeof *rm);
    memset(v, 0, sizeof *v);
    v->topic = t->name, v->received_from = ps->h->identity.id;
    v->data = (const uint8_t *)data, v->data_len = len;
    rm->has_data = rm->has_topic = true;
    rm->data.p = (const uint8_t *)data, rm->data.n = len;
    rm->topic.p = (const uint8_t *)t->name, rm->topic.n = t->name_len;
    if (ps->cfg.signing == LP2P_PUBSUB_STRICT_SIGN) {
        v->from = ps->h->identity.id;
        v->seqno = ++ps->seqno, v->has_seqno = true;
        lp2p__put_be64(seq, v->seqno);
        rm->has_from = rm->has_seqno = true;
        rm->from.p = v->from.bytes, rm->from.n = v->from.len;
        rm->seqno.p = seq, rm->seqno.n = 8;
    }
    int rc = LP2P_OK;
    if (rm->has_from) {
        rc = lp2p__buf_append(ps->ctx, raw, LP2P__PS_SIGN_PREFIX, strlen(LP2P__PS_SIGN_PREFIX));
        if (!rc) rc = lp2p__ps_encode_unsigned(ps->ctx, raw, rm);
        if (!rc) lp2p__identity_sign(&ps->h->identity, raw->p, raw->len, sig);
        if (!rc) rc = lp2p__pb_put_bytes(ps->ctx, raw, 5, sig, sizeof sig);
        if (!rc) lp2p__buf_consume(raw, strlen(LP2P__PS_SIGN_PREFIX));
    } else {
        rc = lp2p__ps_encode_unsigned(ps->ctx, raw, rm);
    }
    return rc ? rc : lp2p__ps_msg_parse(raw->p, raw->len, rm); /* slices into raw from here */
}

LP2P_API int lp2p_pubsub_publish(lp2p_pubsub *ps, const char *topic, const void *data, size_t len) {
    uint8_t id[LP2P_PUBSUB_MSG_ID_MAX];
    lp2p__ps_topic *t;
    lp2p__ps_rpc_msg rm;
    lp2p_pubsub_message v;
    lp2p__buf raw = {0, 0, 0};
    if (!data && len) return LP2P_ERR_INVALID;
    int rc = lp2p__ps_topic_arg(ps, topic, true, &t);
    if (rc) return rc;
    if (len + t->name_len + 256 > (size_t)ps->cfg.max_rpc_size) rc = LP2P_ERR_MSGSIZE;
    if (!rc) rc = lp2p__ps_build_own(ps, t, data, len, &raw, &rm, &v);
    ptrdiff_t idn = rc ? rc : lp2p__ps_msg_id(ps, &v, id);
    if (idn < 0) rc = (int)idn;
    if (!rc) v.id = id, v.id_len = (size_t)idn;
    if (!rc && lp2p__ps_validate(ps, t, &v) != LP2P_PUBSUB_ACCEPT) rc = LP2P_ERR_INVALID;
    lp2p__ps_msg *m = rc ? NULL : lp2p__ps_msg_new(ps, &rm, &v, id, (size_t)idn);
    lp2p__buf_free(ps->ctx, &raw);
    if (!m) {
        lp2p__ps_topic_maybe_free(ps, t);
        return rc ? rc : LP2P_ERR_NOMEM;
    }
    ps->stats.published++;
    lp2p__ps_idset_entry *e = lp2p__ps_idset_add(ps->ctx, &ps->seen, m->digest, lp2p_now() + ps->cfg.seen_ttl_ms, NULL);
    if (e) e->status = LP2P__PS_SEEN_VALID, e->aux = lp2p_now();
    if (!ps->cfg.floodsub) lp2p__gs_mcache_put(ps, m);
    if (!ps->cfg.no_self_delivery) lp2p__ps_deliver(ps, t, m);
    int n = lp2p__gs_forward(ps, t, m, NULL, true);
    lp2p__ps_msg_unref(m);
    lp2p__ps_topic_maybe_free(ps, t);
    return n;
}

static int lp2p__ps_copy_ids(lp2p__ps_peer *const *v, int n, lp2p_peer_id *out, int max) {
    for (int i = 0; i < n && i < max && out; i++) out[i] = v[i]->id;
    return n;
}

LP2P_API int lp2p_pubsub_topic_peers(lp2p_pubsub *ps, const char *topic, lp2p_peer_id *out, int max) {
    lp2p__ps_topic *t = NULL;
    if (!ps) return 0;
    if (topic && (lp2p__ps_topic_arg(ps, topic, false, &t) || !t)) return 0;
    int n = 0;
    for (lp2p__ps_peer *p = ps->peers; p; p = p->next) {
        if (t ? !lp2p__ps_peer_in_topic(p, t) : !lp2p__ps_peer_active(p)) continue;
        if (out && n < max) out[n] = p->id;
        n++;
    }
    return n;
}

LP2P_API int lp2p_pubsub_mesh_peers(lp2p_pubsub *ps, const char *topic, lp2p_peer_id *out, int max) {
    lp2p__ps_topic *t = NULL;
    if (!ps || lp2p__ps_topic_arg(ps, topic, false, &t) || !t) return 0;
    return lp2p__ps_copy_ids(t->mesh, t->n_mesh, out, max);
}

LP2P_API int lp2p_pubsub_set_validator(lp2p_pubsub *ps, const char *topic, lp2p_pubsub_validator_fn fn, void *user) {
    lp2p__ps_topic *t;
    int rc = lp2p__ps_topic_arg(ps, topic, fn != NULL, &t);
    if (rc || !t) return rc;
    t->validator = fn, t->validator_user = user;
    lp2p__ps_topic_maybe_free(ps, t);
    return LP2P_OK;
}

LP2P_API int lp2p_pubsub_set_topic_score_params(lp2p_pubsub *ps, const char *topic,
                                                const lp2p_pubsub_topic_score_params *params) {
    lp2p__ps_topic *t;
    if (params && lp2p__score_check_topic_params(params)) return LP2P_ERR_INVALID;
    int rc = lp2p__ps_topic_arg(ps, topic, params != NULL, &t);
    if (rc || !t) return rc;
    if (!params) {
        lp2p__free(ps->ctx, t->score, sizeof *t->score), t->score = NULL;
        lp2p__ps_topic_maybe_free(ps, t);
        return LP2P_OK;
    }
    if (!t->score && !(t->score = (lp2p_pubsub_topic_score_params *)lp2p__alloc(ps->ctx, sizeof *t->score)))
        return LP2P_ERR_NOMEM;
    *t->score = *params;
    return LP2P_OK;
}

LP2P_API int lp2p_pubsub_peer_score(lp2p_pubsub *ps, const lp2p_peer_id *peer, double *score) {
    if (!ps || !peer || !score) return LP2P_ERR_INVALID;
    return lp2p__score_lookup(ps, peer, score);
}

LP2P_API void lp2p_pubsub_get_stats(lp2p_pubsub *ps, lp2p_pubsub_stats *out) {
    if (ps && out) *out = ps->stats;
}
