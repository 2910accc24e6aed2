/* kad.c - L7: the Kademlia DHT: protocol server, requests, iterative lookups, bootstrap and
 * refresh, and the public lp2p_kad_* API.
 *
 * Spec: libp2p/specs kad-dht/README.md (RPCs, lookups, routing table, records);
 * ipfs/specs src/routing/kad-dht.md (Amino: k 20, alpha 10, beta 3, client/server modes,
 * 48 h provider records, 22 h reprovide, 10 min refresh with a self lookup).
 * Server mode handles the protocol: every inbound stream may carry several requests (go reuses
 * streams), each an uvarint-delimited Message capped at max_message_size. Client mode neither
 * advertises nor accepts it. Only peers whose identify lists the protocol, or which answered
 * one of our requests, enter the routing table; a full bucket asks its least recently seen
 * peer a FIND_NODE before evicting it. A lookup keeps its candidates sorted by XOR distance,
 * has alpha requests in flight (one task each) to the closest not yet queried among the k
 * closest reachable, and ends when the beta closest reachable peers have answered (go's
 * rule), when its visitor is satisfied, or when no candidate is left. Requests open a new
 * stream each (as js), with a per-request deadline.
 * Depends on: kad.h (host, swarm, peerstore; kad_msg.c, kad_rt.c, kad_store.c). */
#include "kad.h"

#include <stdio.h>

#define LP2P__KAD_SEND_MAX 64 /* peers one fan-out (PUT_VALUE / ADD_PROVIDER) reaches */

typedef struct lp2p__kad_task {
    lp2p_task t;
    struct lp2p__kad_task *next, *prev;
} lp2p__kad_task;

typedef struct lp2p__kad_mine { /* a key we provide (re-announced) */
    struct lp2p__kad_mine *next;
    uint8_t key[LP2P__KAD_PROVIDER_KEY_MAX];
    size_t len;
    int64_t next_announce;
} lp2p__kad_mine;

typedef struct lp2p__kad_query lp2p__kad_query;

struct lp2p_kad {
    lp2p_host *h;
    lp2p__ctx *ctx;
    lp2p_kad_config cfg; /* resolved; strings below are our copies */
    char *protocol;
    char *boot[LP2P_KAD_MAX_BOOTSTRAP];
    int n_boot;
    lp2p_kad_mode mode;
    lp2p__kad_rt rt;
    lp2p__kad_store st;
    lp2p__notifee notifee;
    lp2p__service service;
    lp2p__kad_task *tasks; /* tasks that touch us: canceled by lp2p_kad_free */
    int n_tasks, n_api, n_inbound;
    lp2p__waitq idle;      /* woken when n_tasks or n_api drops */
    lp2p__kad_query *queries;
    lp2p__kad_mine *mine;
    int64_t last_refresh, last_expire, last_boot;
    bool refresh_soon;
    lp2p_kad_lookup_stats last;
    bool closing;
    int64_t warned_inbound; /* rate limit of the max_inbound_requests log */
};

/* ---- task bookkeeping ------------------------------------------------------------------------ */
static void lp2p__kad_link(lp2p_kad *kad, lp2p__kad_task *node) {
    node->prev = NULL;
    node->next = kad->tasks;
    if (kad->tasks) kad->tasks->prev = node;
    kad->tasks = node;
    kad->n_tasks++;
}

/* A task we did not spawn (an inbound stream's handler) starts touching us. */
static void lp2p__kad_enter(lp2p_kad *kad, lp2p__kad_task *node) {
    node->t = lp2p__task_self();
    lp2p__kad_link(kad, node);
}

static void lp2p__kad_leave(lp2p_kad *kad, lp2p__kad_task *node) {
    if (node->prev) node->prev->next = node->next;
    else kad->tasks = node->next;
    if (node->next) node->next->prev = node->prev;
    kad->n_tasks--;
    lp2p__waitq_wake_all(kad->h->sched, &kad->idle);
}

typedef struct lp2p__kad_spawned {
    lp2p__kad_task node; /* linked from spawn on, so lp2p_kad_free also waits for tasks not started yet */
    lp2p_kad *kad;
    void (*fn)(void *);
    void *arg;
} lp2p__kad_spawned;

static void lp2p__kad_trampoline(void *p) {
    lp2p__kad_spawned *sp = (lp2p__kad_spawned *)p;
    lp2p_kad *kad = sp->kad;
    sp->fn(sp->arg);
    lp2p__kad_leave(kad, &sp->node);
    lp2p__free(kad->ctx, sp, sizeof *sp);
}

/* Spawn a task of ours. Handle id 0 on failure (then fn never runs: the caller cleans up). */
static lp2p_task lp2p__kad_spawn(lp2p_kad *kad, void (*fn)(void *), void *arg) {
    lp2p_task none = {0};
    if (kad->closing) return none;
    lp2p__kad_spawned *sp = (lp2p__kad_spawned *)lp2p__zalloc(kad->ctx, sizeof *sp);
    if (!sp) return none;
    sp->kad = kad, sp->fn = fn, sp->arg = arg;
    lp2p_task t = lp2p__spawn(kad->h->sched, lp2p__kad_trampoline, sp);
    if (!t.id) {
        lp2p__free(kad->ctx, sp, sizeof *sp);
        return none;
    }
    sp->node.t = t;
    lp2p__kad_link(kad, &sp->node);
    return t;
}

/* ---- messages on streams ------------------------------------------------------------------------ */
/* Read one uvarint-delimited message into a fresh buffer of its exact size. *clean is set
 * when the stream ended before the first byte. */
static int lp2p__kad_read(lp2p_kad *kad, lp2p_stream *s, uint8_t **out, size_t *out_len, int *clean, int64_t deadline) {
    uint8_t hdr[LP2P__UVARINT_MAX];
    uint64_t len = 0;
    size_t n = 0;
    *clean = 0;
    for (;;) {
        ptrdiff_t r = lp2p_stream_read(s, hdr + n, 1, deadline);
        if (r < 0) return (int)r;
        if (r == 0) {
            *clean = n == 0;
            return LP2P_ERR_EOF;
        }
        n++;
        int k = lp2p__uvarint_get(hdr, n, &len);
        if (k < 0) return LP2P_ERR_PROTOCOL;
        if (k > 0) break;
    }
    if (len > (uint64_t)kad->cfg.max_message_size) return LP2P_ERR_MSGSIZE;
    uint8_t *buf = (uint8_t *)lp2p__alloc(kad->ctx, len ? (size_t)len : 1);
    if (!buf) return LP2P_ERR_NOMEM;
    int rc = lp2p_stream_read_full(s, buf, (size_t)len, deadline);
    if (rc) {
        lp2p__free(kad->ctx, buf, len ? (size_t)len : 1);
        return rc;
    }
    *out = buf, *out_len = (size_t)len;
    return LP2P_OK;
}

static void lp2p__kad_buf_free(lp2p_kad *kad, uint8_t *buf, size_t len) { lp2p__free(kad->ctx, buf, len ? len : 1); }

/* One request to one peer: open a stream, send, read the answer (if want_reply), close.
 * *reply (freed by the caller with lp2p__kad_buf_free) gets the answer's bytes.
 * *dial_failed says the peer could not be reached at all or does not speak the protocol. */
static int lp2p__kad_rpc(lp2p_kad *kad, const lp2p_peer_id *peer, const uint8_t *req, size_t req_len, bool want_reply,
                         uint8_t **reply, size_t *reply_len, bool *dial_failed, int64_t deadline) {
    char text[LP2P_PEER_ID_STRLEN];
    lp2p_stream *s = NULL;
    int clean;
    *dial_failed = false;
    if (lp2p_peer_id_str(peer, text, sizeof text)) return LP2P_ERR_INVALID;
    bool had_conn = lp2p__swarm_find_conn(kad->h, peer) != NULL;
    int rc = lp2p_stream_open(kad->h, text, kad->protocol, deadline, &s);
    if (rc == LP2P_OK && !had_conn && kad->cfg.idle_connection_ms > 0)
        s->conn->ephemeral_idle_ms = kad->cfg.idle_connection_ms; /* ours, for this request: not kept open */
    if (rc) {
        *dial_failed = rc == LP2P_ERR_UNREACHABLE || rc == LP2P_ERR_NOADDR || rc == LP2P_ERR_HANDSHAKE ||
                       rc == LP2P_ERR_PROTO_NA || rc == LP2P_ERR_BADADDR;
        return rc;
    }
    rc = lp2p_stream_write_msg(s, req, req_len, deadline);
    if (rc == LP2P_OK && want_reply) rc = lp2p__kad_read(kad, s, reply, reply_len, &clean, deadline);
    if (rc) {
        lp2p_stream_reset(s);
        return rc;
    }
    lp2p_stream_close_write(s);
    lp2p_stream_close(s);
    return LP2P_OK;
}

static int64_t lp2p__kad_req_deadline(lp2p_kad *kad, int64_t deadline) {
    return lp2p__deadline_min(deadline, lp2p_deadline_in(kad->cfg.request_timeout_ms));
}

/* ---- routing table admission ---------------------------------------------------------------------- */
static void lp2p__kad_group_of(lp2p_kad *kad, const lp2p_peer_id *id, uint8_t group[5]) {
    lp2p__conn *c = lp2p__swarm_find_conn(kad->h, id);
    if (c && c->remote.len) {
        lp2p__kad_ip_group(&c->remote, group);
        return;
    }
    lp2p__peer *p = lp2p__peerstore_get(kad->h, id, false);
    lp2p__kad_ip_group(p && p->n_addrs ? &p->addrs[0].ma : NULL, group);
}

typedef struct lp2p__kad_probe {
    lp2p_kad *kad;
    lp2p_peer_id old, cand;
    uint8_t group[5];
    int bucket;
} lp2p__kad_probe;

static int lp2p__kad_encode_simple(lp2p_kad *kad, int type, const uint8_t *key, size_t key_len, lp2p__buf *b) {
    lp2p__kad_out o;
    memset(&o, 0, sizeof o);
    o.type = type, o.key = key, o.key_len = key_len, o.h = kad->h;
    return lp2p__kad_msg_encode(kad->ctx, &o, b);
}

/* Liveness check before eviction: the least recently seen peer must answer a FIND_NODE. */
static void lp2p__kad_probe_task(void *arg) {
    lp2p__kad_probe *p = (lp2p__kad_probe *)arg;
    lp2p_kad *kad = p->kad;
    lp2p__buf req = {0};
    uint8_t *reply = NULL;
    size_t reply_len = 0;
    bool dial_failed;
    int rc = lp2p__kad_encode_simple(kad, lp2p_pb_KadMessage_MessageType_FIND_NODE, kad->h->identity.id.bytes,
                                     kad->h->identity.id.len, &req);
    if (rc == LP2P_OK)
        rc = lp2p__kad_rpc(kad, &p->old, req.p, req.len, true, &reply, &reply_len, &dial_failed,
                           lp2p_deadline_in(LP2P__MIN(kad->cfg.request_timeout_ms, 5000)));
    if (reply) lp2p__kad_buf_free(kad, reply, reply_len);
    lp2p__buf_free(kad->ctx, &req);
    if (!kad->closing && rc != LP2P_ERR_CANCELED) {
        int64_t now = lp2p_now();
        if (rc == LP2P_OK) {
            lp2p__rt_add(&kad->rt, &p->old, NULL, now, NULL); /* alive: it stays, marked seen */
        } else {
            lp2p__rt_remove(&kad->rt, &p->old);
            lp2p__rt_add(&kad->rt, &p->cand, p->group, now, NULL);
        }
    }
    kad->rt.b[p->bucket].probing = false;
    lp2p__free(kad->ctx, p, sizeof *p);
}

/* A peer proved to be a server (identify lists the protocol, or it answered us). */
static void lp2p__kad_consider(lp2p_kad *kad, const lp2p_peer_id *id) {
    uint8_t group[5], h[32];
    lp2p_peer_id old;
    if (kad->closing) return;
    lp2p__kad_group_of(kad, id, group);
    lp2p__rt_result r = lp2p__rt_add(&kad->rt, id, group, lp2p_now(), &old);
    if (r == LP2P__RT_ADDED || r == LP2P__RT_UPDATED) { /* table peers stay dialable (peerstore GC) */
        lp2p__peer *p = lp2p__peerstore_get(kad->h, id, false);
        for (int i = 0; p && i < p->n_addrs; i++)
            lp2p__peerstore_add_addr(kad->h, id, &p->addrs[i].ma, LP2P__KAD_RT_ADDR_TTL_MS);
    }
    if (r == LP2P__RT_ADDED && kad->rt.size == 1) kad->refresh_soon = true; /* first peer: refresh soon */
    if (r != LP2P__RT_FULL) return;
    lp2p__kad_hash(id->bytes, id->len, h);
    int bucket = lp2p__rt_bucket_of(&kad->rt, h);
    if (kad->rt.b[bucket].probing) return; /* one check per bucket at a time; this candidate is dropped */
    lp2p__kad_probe *p = (lp2p__kad_probe *)lp2p__zalloc(kad->ctx, sizeof *p);
    if (!p) return;
    p->kad = kad, p->old = old, p->cand = *id, p->bucket = bucket;
    memcpy(p->group, group, 5);
    kad->rt.b[bucket].probing = true;
    if (!lp2p__kad_spawn(kad, lp2p__kad_probe_task, p).id) {
        kad->rt.b[bucket].probing = false;
        lp2p__free(kad->ctx, p, sizeof *p);
    }
}

static bool lp2p__kad_peer_is_server(lp2p_kad *kad, const lp2p_peer_id *id, bool *known) {
    lp2p__peer *p = lp2p__peerstore_get(kad->h, id, false);
    *known = p && p->protocols;
    for (int i = 0; p && i < p->n_protocols; i++)
        if (strcmp(p->protocols[i], kad->protocol) == 0) return true;
    return false;
}

static void lp2p__kad_identified(void *user, lp2p__conn *c) {
    lp2p_kad *kad = (lp2p_kad *)user;
    bool known;
    if (kad->closing) return;
    if (lp2p__kad_peer_is_server(kad, &c->peer, &known)) lp2p__kad_consider(kad, &c->peer);
    else if (known) lp2p__rt_remove(&kad->rt, &c->peer); /* it went client mode (spec: servers only) */
}

/* ---- the server ------------------------------------------------------------------------------------ */
/* Closer peers for a request about key from requester: the k closest in our table (without
 * the requester), and the key's own peer if it is a peer ID we have addresses for (spec:
 * servers MUST return it, NATed clients stay findable this way). */
static int lp2p__kad_closer_for(lp2p_kad *kad, const uint8_t *key, size_t key_len, const lp2p_peer_id *requester,
                                lp2p_peer_id *out, int max) {
    uint8_t target[32];
    lp2p_peer_id pid;
    int n = 0;
    if (lp2p__peer_id_from_bytes(key, key_len, &pid) == LP2P_OK) {
        if (lp2p_peer_id_eq(&pid, &kad->h->identity.id)) {
            out[0] = pid;
            return 1;
        }
        lp2p__peer *p = lp2p__peerstore_get(kad->h, &pid, false);
        if (p && p->n_addrs && !lp2p_peer_id_eq(&pid, requester)) out[n++] = pid;
    }
    lp2p__kad_hash(key, key_len, target);
    int m = lp2p__rt_closest(&kad->rt, target, requester, out + n, max - n);
    if (n == 1) /* the peer itself may be in the table too */
        for (int i = 1; i <= m; i++)
            if (lp2p_peer_id_eq(&out[i], &out[0])) {
                memmove(&out[i], &out[i + 1], sizeof *out * (size_t)(m - i));
                m--;
                break;
            }
    return n + m;
}

static void lp2p__kad_warn_peer(lp2p_kad *kad, const lp2p_peer_id *peer, int err, const char *what) {
    char id[LP2P_PEER_ID_STRLEN];
    lp2p_peer_id_str(peer, id, sizeof id);
    LP2P__WARN(kad->ctx, err, "kad: %s from %s: %s", what, id, lp2p_strerror(err));
}

static int lp2p__kad_handle_put(lp2p_kad *kad, const lp2p_peer_id *from, const lp2p__kad_msg *m) {
    if (!m->has_record || m->key.len == 0 || m->rec_key.len != m->key.len ||
        memcmp(m->rec_key.p, m->key.p, m->key.len) != 0 || m->key.len > LP2P__KAD_KEY_MAX ||
        m->key.len + m->rec_value.len > (size_t)kad->cfg.max_record_size) {
        lp2p__kad_warn_peer(kad, from, LP2P_ERR_PROTOCOL, "PUT_VALUE with a missing, mismatched or oversized record");
        return LP2P_ERR_PROTOCOL;
    }
    if (lp2p__store_validate(&kad->st, m->key.p, m->key.len, m->rec_value.p, m->rec_value.len) != LP2P_OK) {
        lp2p__kad_warn_peer(kad, from, LP2P_ERR_INVALID, "PUT_VALUE record failing validation");
        return LP2P_ERR_INVALID;
    }
    int64_t now = lp2p_now();
    lp2p__kad_rec *old = lp2p__store_get_record(&kad->st, m->key.p, m->key.len, now);
    /* as go's handlePutValue: Select([new, old]) must pick the new one, else "old record is better" */
    if (old && lp2p__store_select(&kad->st, m->key.p, m->key.len, m->rec_value.p, m->rec_value.len, old->value,
                                  old->value_len) != 0)
        return LP2P_ERR_INVALID;
    int rc = lp2p__store_put_record(&kad->st, m->key.p, m->key.len, m->rec_value.p, m->rec_value.len,
                                    now + kad->cfg.record_ttl_ms);
    if (rc == LP2P_ERR_LIMIT)
        LP2P__WARN(kad->ctx, rc, "kad: max_records=%d reached: PUT_VALUE refused", kad->cfg.max_records);
    return rc;
}

static int lp2p__kad_handle_add_provider(lp2p_kad *kad, const lp2p_peer_id *from, const lp2p__kad_msg *m) {
    int stored = 0;
    if (m->key.len == 0 || m->key.len > LP2P__KAD_PROVIDER_KEY_MAX) {
        lp2p__kad_warn_peer(kad, from, LP2P_ERR_PROTOCOL, "ADD_PROVIDER with a bad key");
        return LP2P_ERR_PROTOCOL;
    }
    for (int i = 0; i < m->n_providers; i++) {
        lp2p_peer_id id;
        const lp2p__kad_wpeer *w = &m->providers[i];
        if (lp2p__peer_id_from_bytes(w->id.p, w->id.len, &id) || !lp2p_peer_id_eq(&id, from)) {
            lp2p__kad_warn_peer(kad, from, LP2P_ERR_PROTOCOL, "ADD_PROVIDER naming another peer (ignored)");
            continue;
        }
        for (int a = 0; a < w->n_addrs; a++) {
            lp2p__ma ma;
            if (lp2p__ma_from_bytes(w->addrs[a].p, w->addrs[a].len, &ma, NULL) == LP2P_OK)
                lp2p__peerstore_add_addr(kad->h, &id, &ma, LP2P__KAD_PROVIDER_ADDR_TTL_MS);
        }
        int rc = lp2p__store_add_provider(&kad->st, m->key.p, m->key.len, &id, lp2p_now() + kad->cfg.provider_ttl_ms);
        if (rc == LP2P_ERR_LIMIT)
            LP2P__WARN(kad->ctx, rc, "kad: max_provider_records=%d reached: provider dropped",
                       kad->cfg.max_provider_records);
        stored += rc == LP2P_OK;
    }
    return stored ? LP2P_OK : LP2P_ERR_PROTOCOL;
}

/* Answer one request; writes the reply (if the type has one) to s. */
static int lp2p__kad_handle(lp2p_kad *kad, lp2p_stream *s, const uint8_t *buf, size_t len, lp2p__kad_msg *m) {
    lp2p_peer_id from = lp2p_stream_peer(s), closer[LP2P__KAD_SEND_MAX], provs[LP2P__KAD_SEND_MAX];
    int rc = lp2p__kad_msg_decode(buf, len, m);
    if (rc) {
        lp2p__kad_warn_peer(kad, &from, rc, "malformed message");
        return rc;
    }
    lp2p__kad_out o;
    memset(&o, 0, sizeof o);
    o.h = kad->h, o.type = m->type, o.key = m->key.p, o.key_len = m->key.len;
    int k = LP2P__MIN(kad->cfg.k, (int)LP2P__COUNT(closer));
    switch (m->type) {
    case lp2p_pb_KadMessage_MessageType_PUT_VALUE:
        rc = lp2p__kad_handle_put(kad, &from, m);
        return rc ? rc : lp2p_stream_write_msg(s, buf, len, lp2p_deadline_in(kad->cfg.request_timeout_ms)); /* echo */
    case lp2p_pb_KadMessage_MessageType_PING:
        return lp2p_stream_write_msg(s, buf, len, lp2p_deadline_in(kad->cfg.request_timeout_ms));
    case lp2p_pb_KadMessage_MessageType_ADD_PROVIDER: return lp2p__kad_handle_add_provider(kad, &from, m);
    case lp2p_pb_KadMessage_MessageType_GET_VALUE: {
        if (m->key.len == 0 || m->key.len > LP2P__KAD_KEY_MAX) return LP2P_ERR_PROTOCOL;
        lp2p__kad_rec *r = lp2p__store_get_record(&kad->st, m->key.p, m->key.len, lp2p_now());
        if (r) {
            o.has_record = true;
            o.rec_key = r->key, o.rec_key_len = r->key_len, o.rec_value = r->value, o.rec_value_len = r->value_len;
            o.rec_time = (const uint8_t *)r->time, o.rec_time_len = strlen(r->time);
        }
        break;
    }
    case lp2p_pb_KadMessage_MessageType_GET_PROVIDERS:
        if (m->key.len == 0 || m->key.len > LP2P__KAD_PROVIDER_KEY_MAX) return LP2P_ERR_PROTOCOL;
        o.providers = provs;
        o.n_providers = lp2p__store_get_providers(&kad->st, m->key.p, m->key.len, lp2p_now(), provs,
                                                  LP2P__MIN(kad->cfg.max_providers_per_key, (int)LP2P__COUNT(provs)));
        break;
    case lp2p_pb_KadMessage_MessageType_FIND_NODE:
        if (m->key.len == 0 || m->key.len > LP2P__KAD_KEY_MAX) return LP2P_ERR_PROTOCOL;
        break;
    default: return LP2P_ERR_PROTOCOL;
    }
    o.closer = closer;
    o.n_closer = lp2p__kad_closer_for(kad, m->key.p, m->key.len, &from, closer, k);
    lp2p__buf out = {0};
    rc = lp2p__kad_msg_encode(kad->ctx, &o, &out);
    if (rc == LP2P_OK) rc = lp2p_stream_write_msg(s, out.p, out.len, lp2p_deadline_in(kad->cfg.request_timeout_ms));
    lp2p__buf_free(kad->ctx, &out);
    return rc;
}

static void lp2p__kad_serve(lp2p_stream *s, void *user) {
    lp2p_kad *kad = (lp2p_kad *)user;
    lp2p__kad_task node;
    if (kad->closing || kad->mode != LP2P_KAD_SERVER) {
        lp2p_stream_reset(s);
        return;
    }
    if (kad->n_inbound >= kad->cfg.max_inbound_requests) {
        if (lp2p_now() - kad->warned_inbound > 10000) {
            kad->warned_inbound = lp2p_now();
            LP2P__WARN(kad->ctx, LP2P_ERR_LIMIT, "kad: max_inbound_requests=%d reached: streams reset",
                       kad->cfg.max_inbound_requests);
        }
        lp2p_stream_reset(s);
        return;
    }
    lp2p__kad_msg *m = (lp2p__kad_msg *)lp2p__alloc(kad->ctx, sizeof *m);
    if (!m) {
        lp2p_stream_reset(s);
        return;
    }
    kad->n_inbound++;
    lp2p__kad_enter(kad, &node);
    for (;;) {
        uint8_t *buf = NULL;
        size_t len = 0;
        int clean;
        int rc = lp2p__kad_read(kad, s, &buf, &len, &clean, lp2p_deadline_in(LP2P__KAD_STREAM_IDLE_MS));
        if (rc == LP2P_ERR_EOF && clean) break;
        if (rc) {
            lp2p_peer_id from = lp2p_stream_peer(s);
            if (rc == LP2P_ERR_MSGSIZE || rc == LP2P_ERR_PROTOCOL) lp2p__kad_warn_peer(kad, &from, rc, "bad message");
            lp2p_stream_reset(s);
            break;
        }
        rc = kad->closing ? LP2P_ERR_CANCELED : lp2p__kad_handle(kad, s, buf, len, m);
        lp2p__kad_buf_free(kad, buf, len);
        if (rc) {
            lp2p_stream_reset(s);
            break;
        }
    }
    lp2p__free(kad->ctx, m, sizeof *m);
    lp2p__kad_leave(kad, &node);
    kad->n_inbound--;
}

/* ---- lookups ----------------------------------------------------------------------------------------- */
enum { LP2P__CAND_HEARD, LP2P__CAND_WAITING, LP2P__CAND_QUERIED, LP2P__CAND_UNREACHABLE };

typedef struct lp2p__kad_cand {
    lp2p_peer_id id;
    uint8_t hash[32];
    uint8_t state, hop;
    uint8_t follow; /* queried in the follow-up phase */
} lp2p__kad_cand;

/* Called for every answer; returns nonzero to end the lookup. */
typedef int (*lp2p__kad_visit_fn)(lp2p__kad_query *q, const lp2p_peer_id *from, const lp2p__kad_msg *m);

struct lp2p__kad_query {
    lp2p_kad *kad;
    int refs;
    uint8_t target[32];
    const uint8_t *key; /* the caller's, valid until finished */
    size_t key_len;
    lp2p__buf req;
    lp2p__kad_cand c[LP2P__KAD_MAX_LOOKUP_PEERS];
    int n, inflight;
    lp2p__waitq wake;
    bool finished, stop;
    bool followup, in_followup; /* after termination, also ask the rest of the k closest (go) */
    lp2p__kad_visit_fn visit;
    void *user;
    lp2p_kad_peer_fn peer_fn; /* hears each peer that answered (get_closest_peers) */
    void *peer_user;
    lp2p_kad_lookup_stats st;
    int64_t deadline;
    lp2p_task workers[LP2P__KAD_MAX_ALPHA];
    lp2p__kad_query *next;
};

static void lp2p__kad_query_unref(lp2p__kad_query *q) {
    if (--q->refs > 0) return;
    lp2p_kad *kad = q->kad;
    lp2p__buf_free(kad->ctx, &q->req);
    lp2p__free(kad->ctx, q, sizeof *q);
}

static lp2p__kad_cand *lp2p__kad_cand_find(lp2p__kad_query *q, const lp2p_peer_id *id) {
    for (int i = 0; i < q->n; i++)
        if (lp2p_peer_id_eq(&q->c[i].id, id)) return &q->c[i];
    return NULL;
}

/* Insert a peer heard of (sorted by distance; when full, the farthest idle one goes). */
static void lp2p__kad_cand_add(lp2p__kad_query *q, const lp2p_peer_id *id, int hop) {
    uint8_t h[32];
    if (lp2p_peer_id_eq(id, &q->kad->h->identity.id) || lp2p__kad_cand_find(q, id)) return;
    lp2p__kad_hash(id->bytes, id->len, h);
    int pos = q->n;
    while (pos > 0 && lp2p__kad_cmp(q->target, h, q->c[pos - 1].hash) < 0) pos--;
    if (q->n == LP2P__KAD_MAX_LOOKUP_PEERS) {
        int victim = q->n - 1;
        while (victim >= pos && q->c[victim].state == LP2P__CAND_WAITING) victim--;
        if (victim < pos) return;
        memmove(&q->c[victim], &q->c[victim + 1], sizeof q->c[0] * (size_t)(q->n - victim - 1));
        q->n--;
    }
    memmove(&q->c[pos + 1], &q->c[pos], sizeof q->c[0] * (size_t)(q->n - pos));
    lp2p__kad_cand *c = &q->c[pos];
    c->id = *id;
    memcpy(c->hash, h, 32);
    c->state = LP2P__CAND_HEARD;
    c->hop = (uint8_t)LP2P__MIN(hop, 255);
    q->n++;
}

/* Peers of a closerPeers/providerPeers entry: parse, store addresses. false if unusable. */
static bool lp2p__kad_learn(lp2p_kad *kad, const lp2p__kad_wpeer *w, lp2p_peer_id *id, int64_t ttl_ms) {
    if (lp2p__peer_id_from_bytes(w->id.p, w->id.len, id) != LP2P_OK) return false;
    if (lp2p_peer_id_eq(id, &kad->h->identity.id)) return false;
    for (int a = 0; a < w->n_addrs; a++) {
        lp2p__ma ma;
        if (lp2p__ma_from_bytes(w->addrs[a].p, w->addrs[a].len, &ma, NULL) == LP2P_OK)
            lp2p__peerstore_add_addr(kad->h, id, &ma, ttl_ms);
    }
    return true;
}

typedef struct lp2p__kad_worker {
    lp2p__kad_query *q;
    lp2p_peer_id peer;
    int slot;
} lp2p__kad_worker;

static void lp2p__kad_worker_task(void *arg) {
    lp2p__kad_worker w = *(lp2p__kad_worker *)arg;
    lp2p__kad_query *q = w.q;
    lp2p_kad *kad = q->kad;
    uint8_t *reply = NULL;
    size_t reply_len = 0;
    bool dial_failed = false;
    lp2p__free(kad->ctx, arg, sizeof w);
    int rc = lp2p__kad_rpc(kad, &w.peer, q->req.p, q->req.len, true, &reply, &reply_len, &dial_failed,
                           lp2p__kad_req_deadline(kad, q->deadline));
    lp2p__kad_msg *m = NULL;
    if (rc == LP2P_OK) {
        m = (lp2p__kad_msg *)lp2p__alloc(kad->ctx, sizeof *m);
        rc = !m ? LP2P_ERR_NOMEM : lp2p__kad_msg_decode(reply, reply_len, m);
        if (rc == LP2P_ERR_PROTOCOL) lp2p__kad_warn_peer(kad, &w.peer, rc, "malformed answer");
    }
    if (!q->finished && !kad->closing) {
        lp2p__kad_cand *c = lp2p__kad_cand_find(q, &w.peer);
        int hop = c ? c->hop : 1;
        if (rc == LP2P_OK) {
            q->st.answered++;
            if (c) c->state = LP2P__CAND_QUERIED;
            lp2p__kad_consider(kad, &w.peer); /* it answered: a server */
            for (int i = 0; i < m->n_closer; i++) {
                lp2p_peer_id id;
                if (lp2p__kad_learn(kad, &m->closer[i], &id, LP2P__KAD_QUERY_ADDR_TTL_MS)) lp2p__kad_cand_add(q, &id, hop + 1);
            }
            if (q->peer_fn && q->peer_fn(q->peer_user, &w.peer)) q->stop = true;
            if (q->visit && q->visit(q, &w.peer, m)) q->stop = true;
        } else if (rc != LP2P_ERR_CANCELED) {
            q->st.failed++;
            if (c) c->state = LP2P__CAND_UNREACHABLE;
            if (dial_failed) lp2p__rt_remove(&kad->rt, &w.peer); /* go: dial failures leave the table */
        }
    }
    if (m) lp2p__free(kad->ctx, m, sizeof *m);
    if (reply) lp2p__kad_buf_free(kad, reply, reply_len);
    q->inflight--;
    q->workers[w.slot].id = 0;
    lp2p__waitq_wake_all(kad->h->sched, &q->wake);
    lp2p__kad_query_unref(q);
}

/* The beta closest peers not known unreachable have all answered. */
static bool lp2p__kad_terminated(lp2p__kad_query *q) {
    int seen = 0;
    for (int i = 0; i < q->n && seen < q->kad->cfg.beta; i++) {
        if (q->c[i].state == LP2P__CAND_UNREACHABLE) continue;
        if (q->c[i].state != LP2P__CAND_QUERIED) return false;
        seen++;
    }
    return seen > 0;
}

/* Start requests to the closest not-yet-queried peers among the k closest reachable ones. */
static void lp2p__kad_launch(lp2p__kad_query *q) {
    lp2p_kad *kad = q->kad;
    int considered = 0;
    for (int i = 0; i < q->n && considered < kad->cfg.k && q->inflight < kad->cfg.alpha; i++) {
        lp2p__kad_cand *c = &q->c[i];
        if (c->state == LP2P__CAND_UNREACHABLE) continue;
        considered++;
        if (c->state != LP2P__CAND_HEARD || (q->in_followup && !c->follow)) continue;
        int slot = 0;
        while (slot < LP2P__KAD_MAX_ALPHA && q->workers[slot].id) slot++;
        if (slot == LP2P__KAD_MAX_ALPHA) return;
        lp2p__kad_worker *w = (lp2p__kad_worker *)lp2p__alloc(kad->ctx, sizeof *w);
        if (!w) return;
        w->q = q, w->peer = c->id, w->slot = slot;
        q->refs++;
        q->workers[slot] = lp2p__kad_spawn(kad, lp2p__kad_worker_task, w);
        if (!q->workers[slot].id) {
            q->refs--;
            lp2p__free(kad->ctx, w, sizeof *w);
            return;
        }
        c->state = LP2P__CAND_WAITING;
        q->inflight++;
        q->st.requests++;
    }
}

static lp2p__kad_query *lp2p__kad_query_new(lp2p_kad *kad, const uint8_t *key, size_t key_len, int64_t deadline) {
    lp2p__kad_query *q = (lp2p__kad_query *)lp2p__zalloc(kad->ctx, sizeof *q);
    if (!q) return NULL;
    q->kad = kad, q->refs = 1, q->key = key, q->key_len = key_len, q->deadline = deadline;
    lp2p__kad_hash(key, key_len, q->target);
    return q;
}

/* Run the lookup. out (may be NULL) gets the closest peers that answered. Returns their count,
 * ERR_NOTFOUND (no peers at all), ERR_TIMEOUT, ERR_CANCELED. Consumes q. */
static int lp2p__kad_run(lp2p__kad_query *q, lp2p_peer_id *out, int max) {
    lp2p_kad *kad = q->kad;
    lp2p_peer_id seeds[LP2P__KAD_SEND_MAX];
    int64_t t0 = lp2p_now();
    int rc = LP2P_OK, n = 0;
    int ns = lp2p__rt_closest(&kad->rt, q->target, NULL, seeds, LP2P__MIN(kad->cfg.k, (int)LP2P__COUNT(seeds)));
    for (int i = 0; i < ns; i++) lp2p__kad_cand_add(q, &seeds[i], 1);
    if (q->n == 0) rc = LP2P_ERR_NOTFOUND;
    q->next = kad->queries, kad->queries = q;
    kad->n_api++;
    while (rc == LP2P_OK && !q->stop && !kad->closing) {
        if (!q->in_followup && lp2p__kad_terminated(q)) {
            if (!q->followup) break;
            /* go's runLookupWithFollowup: the k closest not yet asked are asked too, so the
             * result is k peers that all answered */
            q->in_followup = true;
            for (int i = 0, seen = 0; i < q->n && seen < kad->cfg.k; i++)
                if (q->c[i].state != LP2P__CAND_UNREACHABLE) seen++, q->c[i].follow = 1;
        }
        lp2p__kad_launch(q);
        if (q->inflight == 0) break; /* nothing left to ask */
        rc = lp2p__waitq_wait(kad->h->sched, &q->wake, q->deadline);
    }
    if (kad->closing && rc == LP2P_OK) rc = LP2P_ERR_CANCELED;
    q->finished = true;
    for (int i = 0; i < LP2P__KAD_MAX_ALPHA; i++)
        if (q->workers[i].id) lp2p__task_cancel(kad->h->sched, q->workers[i]);
    for (lp2p__kad_query **pp = &kad->queries; *pp; pp = &(*pp)->next)
        if (*pp == q) {
            *pp = q->next;
            break;
        }
    /* bookkeeping: stats, bucket freshness, results */
    q->st.ms = lp2p_now() - t0;
    for (int i = 0; i < q->n; i++)
        if (q->c[i].state == LP2P__CAND_QUERIED) {
            if (q->st.hops == 0) q->st.hops = q->c[i].hop;
            if (out && n < max) out[n] = q->c[i].id;
            n++;
        }
    kad->last = q->st;
    kad->rt.b[lp2p__rt_bucket_of(&kad->rt, q->target)].last_lookup = lp2p_now();
    kad->n_api--;
    lp2p__waitq_wake_all(kad->h->sched, &kad->idle);
    lp2p__kad_query_unref(q);
    if (rc) return rc;
    return out ? LP2P__MIN(n, max) : n;
}

/* ---- fan-out: one request to many peers (PUT_VALUE, ADD_PROVIDER, entry correction) ----------- */
typedef struct lp2p__kad_fan {
    lp2p_kad *kad;
    int refs, n, done, ok;
    bool want_reply;
    lp2p__buf req;
    lp2p_peer_id peers[LP2P__KAD_SEND_MAX];
    lp2p_task t[LP2P__KAD_SEND_MAX];
    lp2p__waitq wake;
    int64_t deadline;
} lp2p__kad_fan;

typedef struct lp2p__kad_fan_arg {
    lp2p__kad_fan *f;
    int i;
} lp2p__kad_fan_arg;

static void lp2p__kad_fan_unref(lp2p__kad_fan *f) {
    if (--f->refs > 0) return;
    lp2p__buf_free(f->kad->ctx, &f->req);
    lp2p__free(f->kad->ctx, f, sizeof *f);
}

static void lp2p__kad_fan_task(void *arg) {
    lp2p__kad_fan_arg a = *(lp2p__kad_fan_arg *)arg;
    lp2p__kad_fan *f = a.f;
    lp2p_kad *kad = f->kad;
    uint8_t *reply = NULL;
    size_t reply_len = 0;
    bool dial_failed;
    lp2p__free(kad->ctx, arg, sizeof a);
    int rc = lp2p__kad_rpc(kad, &f->peers[a.i], f->req.p, f->req.len, f->want_reply, &reply, &reply_len, &dial_failed,
                           lp2p__kad_req_deadline(kad, f->deadline));
    if (reply) lp2p__kad_buf_free(kad, reply, reply_len);
    f->ok += rc == LP2P_OK;
    f->done++;
    f->t[a.i].id = 0;
    lp2p__waitq_wake_all(kad->h->sched, &f->wake);
    lp2p__kad_fan_unref(f);
}

/* Send f->req to f->peers concurrently; wait (wait = true) until all are done or the deadline.
 * Returns how many succeeded (with wait) or LP2P_OK. Consumes f. */
static int lp2p__kad_fan_run(lp2p__kad_fan *f, bool wait) {
    lp2p_kad *kad = f->kad;
    int started = 0;
    for (int i = 0; i < f->n; i++) {
        lp2p__kad_fan_arg *a = (lp2p__kad_fan_arg *)lp2p__alloc(kad->ctx, sizeof *a);
        if (!a) break;
        a->f = f, a->i = i;
        f->refs++;
        f->t[i] = lp2p__kad_spawn(kad, lp2p__kad_fan_task, a);
        if (!f->t[i].id) {
            f->refs--;
            lp2p__free(kad->ctx, a, sizeof *a);
            break;
        }
        started++;
    }
    int rc = LP2P_OK;
    if (wait) {
        kad->n_api++;
        while (f->done < started && rc == LP2P_OK && !kad->closing)
            rc = lp2p__waitq_wait(kad->h->sched, &f->wake, f->deadline);
        for (int i = 0; i < started; i++)
            if (f->t[i].id) lp2p__task_cancel(kad->h->sched, f->t[i]);
        kad->n_api--;
        lp2p__waitq_wake_all(kad->h->sched, &kad->idle);
        if (rc == LP2P_OK && kad->closing) rc = LP2P_ERR_CANCELED;
        if (rc == LP2P_OK || rc == LP2P_ERR_TIMEOUT) rc = f->ok;
    }
    lp2p__kad_fan_unref(f);
    return rc;
}

static lp2p__kad_fan *lp2p__kad_fan_new(lp2p_kad *kad, const lp2p_peer_id *peers, int n, bool want_reply,
                                        int64_t deadline) {
    lp2p__kad_fan *f = (lp2p__kad_fan *)lp2p__zalloc(kad->ctx, sizeof *f);
    if (!f) return NULL;
    f->kad = kad, f->refs = 1, f->want_reply = want_reply, f->deadline = deadline;
    f->n = LP2P__MIN(n, LP2P__KAD_SEND_MAX);
    memcpy(f->peers, peers, sizeof *peers * (size_t)f->n);
    return f;
}

/* ---- refresh and bootstrap ---------------------------------------------------------------------------- */
static int lp2p__kad_closest(lp2p_kad *kad, const uint8_t *key, size_t key_len, lp2p_peer_id *out, int max,
                             int64_t deadline) {
    lp2p__kad_query *q = lp2p__kad_query_new(kad, key, key_len, deadline);
    if (!q) return LP2P_ERR_NOMEM;
    int rc = lp2p__kad_encode_simple(kad, lp2p_pb_KadMessage_MessageType_FIND_NODE, key, key_len, &q->req);
    if (rc) {
        lp2p__kad_query_unref(q);
        return rc;
    }
    q->followup = out != NULL;
    return lp2p__kad_run(q, out, max);
}

/* Self lookup, then a random lookup in every bucket up to the deepest one we have (<= 15)
 * that saw no lookup within the refresh interval (go's rtrefresh). */
static int lp2p__kad_refresh(lp2p_kad *kad, bool force, int64_t deadline) {
    const lp2p_peer_id *self = &kad->h->identity.id;
    int64_t interval = kad->cfg.refresh_interval_ms > 0 ? kad->cfg.refresh_interval_ms : 600000;
    kad->last_refresh = lp2p_now();
    int rc = lp2p__kad_closest(kad, self->bytes, self->len, NULL, 0, deadline);
    if (rc < 0) return rc;
    int deepest = 0;
    for (int i = 0; i < 256; i++)
        if (kad->rt.b[i].n) deepest = i;
    for (int cpl = 0; cpl <= LP2P__MIN(deepest, LP2P__KAD_REFRESH_MAX_CPL) && !kad->closing; cpl++) {
        if (!force && lp2p_now() - kad->rt.b[cpl].last_lookup < interval) continue;
        uint8_t key[64];
        size_t n = lp2p__rt_random_key(&kad->rt, cpl, key);
        rc = lp2p__kad_closest(kad, key, n, NULL, 0, deadline);
        if (rc == LP2P_ERR_TIMEOUT || rc == LP2P_ERR_CANCELED) return rc;
    }
    return LP2P_OK;
}

/* Connect to one bootstrap peer, wait for identify, and make sure it is in the table if it
 * is a server (identify lists the protocol, or it answers a FIND_NODE). */
static void lp2p__kad_boot_one(lp2p_kad *kad, const char *addr, int64_t deadline) {
    lp2p__ma ma;
    lp2p_peer_id id;
    bool known;
    if (lp2p__ma_parse(addr, &ma, NULL) || !lp2p__ma_split_p2p(&ma, NULL, &id)) return;
    int64_t dl = lp2p__kad_req_deadline(kad, deadline);
    if (lp2p_host_identify(kad->h, addr, dl) != LP2P_OK) return;
    if (lp2p__kad_peer_is_server(kad, &id, &known)) {
        lp2p__kad_consider(kad, &id);
        return;
    }
    lp2p__buf req = {0};
    uint8_t *reply = NULL;
    size_t reply_len = 0;
    bool dial_failed;
    if (lp2p__kad_encode_simple(kad, lp2p_pb_KadMessage_MessageType_FIND_NODE, kad->h->identity.id.bytes,
                                kad->h->identity.id.len, &req) == LP2P_OK &&
        lp2p__kad_rpc(kad, &id, req.p, req.len, true, &reply, &reply_len, &dial_failed, dl) == LP2P_OK)
        lp2p__kad_consider(kad, &id);
    if (reply) lp2p__kad_buf_free(kad, reply, reply_len);
    lp2p__buf_free(kad->ctx, &req);
}

/* ---- background task: bootstrap when empty, refresh, expiry, reprovide --------------------------------- */
static int lp2p__kad_announce(lp2p_kad *kad, const uint8_t *key, size_t key_len, int64_t deadline);

static void lp2p__kad_background(void *arg) {
    lp2p_kad *kad = (lp2p_kad *)arg;
    if (lp2p__sleep_until(kad->h->sched, lp2p_deadline_in(50)) != LP2P_OK) return;
    while (!kad->closing) {
        int64_t now = lp2p_now();
        if (kad->rt.size == 0 && kad->n_boot && now - kad->last_boot >= 60000) {
            kad->last_boot = now;
            for (int i = 0; i < kad->n_boot && !kad->closing; i++) lp2p__kad_boot_one(kad, kad->boot[i], LP2P_FOREVER);
            if (kad->rt.size) kad->refresh_soon = true;
        }
        if (kad->cfg.refresh_interval_ms > 0 && kad->rt.size &&
            (kad->refresh_soon || now - kad->last_refresh >= kad->cfg.refresh_interval_ms)) {
            kad->refresh_soon = false;
            if (lp2p__kad_refresh(kad, false, lp2p_deadline_in(60000)) == LP2P_ERR_CANCELED) return;
        }
        if (now - kad->last_expire >= 60000) {
            kad->last_expire = now;
            lp2p__store_expire(&kad->st, now);
        }
        for (lp2p__kad_mine *m = kad->mine; m && !kad->closing; m = m->next)
            if (kad->cfg.reprovide_interval_ms > 0 && now >= m->next_announce) {
                m->next_announce = now + kad->cfg.reprovide_interval_ms;
                lp2p__kad_announce(kad, m->key, m->len, lp2p_deadline_in(60000));
                break; /* the list may have changed meanwhile: look again next round */
            }
        if (lp2p__sleep_until(kad->h->sched, lp2p_deadline_in(kad->refresh_soon ? 200 : 1000)) != LP2P_OK) return;
    }
}

/* ---- lifecycle ---------------------------------------------------------------------------------------- */
static void lp2p__kad_config_resolve(lp2p_kad_config *c) {
#define LP2P__KDEF(field, value) \
    if (c->field == 0) c->field = (value)
    LP2P__KDEF(k, 20);
    LP2P__KDEF(alpha, 10);
    LP2P__KDEF(beta, 3);
    LP2P__KDEF(request_timeout_ms, 10000);
    LP2P__KDEF(refresh_interval_ms, 600000);
    LP2P__KDEF(max_peers_per_ip_group, 3);
    LP2P__KDEF(max_peers_per_ip_group_per_bucket, 2);
    LP2P__KDEF(max_message_size, 1 << 20);
    LP2P__KDEF(max_inbound_requests, 128);
    LP2P__KDEF(max_provider_records, 65536);
    LP2P__KDEF(max_providers_per_key, 64);
    LP2P__KDEF(max_records, 16384);
    LP2P__KDEF(max_record_size, 64 << 10);
    LP2P__KDEF(get_quorum, 16);
    LP2P__KDEF(provider_ttl_ms, 48LL * 3600 * 1000);
    LP2P__KDEF(reprovide_interval_ms, 22LL * 3600 * 1000);
    LP2P__KDEF(record_ttl_ms, 48LL * 3600 * 1000);
    LP2P__KDEF(idle_connection_ms, 10000);
#undef LP2P__KDEF
    if (c->k > LP2P__KAD_SEND_MAX) c->k = LP2P__KAD_SEND_MAX;
    if (c->beta > c->k) c->beta = c->k;
}

static void lp2p__kad_release(void *self) {
    lp2p_kad *kad = (lp2p_kad *)self;
    lp2p__ctx *ctx = kad->ctx;
    lp2p__rt_free(&kad->rt);
    lp2p__store_free(&kad->st);
    while (kad->mine) {
        lp2p__kad_mine *m = kad->mine;
        kad->mine = m->next;
        lp2p__free(ctx, m, sizeof *m);
    }
    for (int i = 0; i < kad->n_boot; i++) lp2p__strfree(ctx, kad->boot[i]);
    lp2p__strfree(ctx, kad->protocol);
    lp2p__free(ctx, kad, sizeof *kad);
}

static bool lp2p__kad_proto_ok(const char *p) {
    size_t n = p ? strlen(p) : 0;
    return n > 1 && n < LP2P__PROTO_MAX && p[0] == '/';
}

LP2P_API int lp2p_kad_new(lp2p_host *h, const lp2p_kad_config *cfg, lp2p_kad **out) {
    lp2p_kad_config zero;
    if (!h || !out) return LP2P_ERR_INVALID;
    if (!cfg) memset(&zero, 0, sizeof zero), cfg = &zero;
    const char *proto = cfg->protocol ? cfg->protocol : LP2P__KAD_PROTO;
    if (!lp2p__kad_proto_ok(proto) || cfg->alpha > LP2P__KAD_MAX_ALPHA || cfg->alpha < 0 || cfg->k < 0 || cfg->beta < 0)
        return LP2P_ERR_INVALID;
    for (lp2p__service *s = h->services; s; s = s->next)
        if (s->free == lp2p__kad_release && strcmp(((lp2p_kad *)s->self)->protocol, proto) == 0) return LP2P_ERR_BUSY;
    for (int i = 0; i < LP2P_KAD_MAX_BOOTSTRAP; i++) {
        lp2p__ma ma;
        if (cfg->bootstrap_peers[i] &&
            (lp2p__ma_parse(cfg->bootstrap_peers[i], &ma, NULL) || !lp2p__ma_split_p2p(&ma, NULL, NULL)))
            return LP2P_ERR_BADADDR;
    }
    lp2p_kad *kad = (lp2p_kad *)lp2p__zalloc(&h->ctx, sizeof *kad);
    if (!kad) return LP2P_ERR_NOMEM;
    kad->h = h, kad->ctx = &h->ctx, kad->cfg = *cfg;
    lp2p__kad_config_resolve(&kad->cfg);
    memset(kad->cfg.bootstrap_peers, 0, sizeof kad->cfg.bootstrap_peers);
    kad->cfg.protocol = NULL;
    kad->protocol = lp2p__strdup(kad->ctx, proto);
    bool nomem = !kad->protocol;
    for (int i = 0; i < LP2P_KAD_MAX_BOOTSTRAP; i++)
        if (cfg->bootstrap_peers[i] && !(kad->boot[kad->n_boot++] = lp2p__strdup(kad->ctx, cfg->bootstrap_peers[i])))
            nomem = true;
    lp2p__rt_init(&kad->rt, kad->ctx, &h->identity.id, kad->cfg.k, kad->cfg.max_peers_per_ip_group,
                  kad->cfg.max_peers_per_ip_group_per_bucket);
    kad->st.ctx = kad->ctx, kad->st.max_prov = kad->cfg.max_provider_records;
    kad->st.max_per_key = kad->cfg.max_providers_per_key, kad->st.max_rec = kad->cfg.max_records;
    lp2p_kad_validator pk = {lp2p__kad_pk_validate, NULL, NULL};
    if (nomem || lp2p__store_set_validator(&kad->st, "pk", &pk)) {
        lp2p__kad_release(kad);
        return LP2P_ERR_NOMEM;
    }
    kad->mode = LP2P_KAD_CLIENT;
    kad->last_boot = -60000;
    kad->last_refresh = lp2p_now();
    kad->service.free = lp2p__kad_release, kad->service.self = kad;
    lp2p__host_add_service(h, &kad->service);
    kad->notifee.identified = lp2p__kad_identified, kad->notifee.user = kad;
    lp2p__swarm_add_notifee(h, &kad->notifee);
    int rc = lp2p_kad_set_mode(kad, cfg->mode);
    if (rc == LP2P_OK && !lp2p__kad_spawn(kad, lp2p__kad_background, kad).id) rc = LP2P_ERR_NOMEM;
    if (rc) {
        lp2p_kad_free(kad);
        return rc;
    }
    *out = kad;
    return LP2P_OK;
}

LP2P_API void lp2p_kad_free(lp2p_kad *kad) {
    if (!kad) return;
    lp2p_host *h = kad->h;
    kad->closing = true;
    if (kad->mode == LP2P_KAD_SERVER) lp2p_host_unhandle(h, kad->protocol);
    lp2p__swarm_remove_notifee(h, &kad->notifee);
    for (lp2p__kad_task *t = kad->tasks; t; t = t->next) lp2p__task_cancel(h->sched, t->t);
    for (lp2p__kad_query *q = kad->queries; q; q = q->next) lp2p__waitq_wake_all(h->sched, &q->wake);
    for (int i = 0; i < 1000 && (kad->n_tasks > 0 || kad->n_api > 0); i++)
        if (lp2p__waitq_wait(h->sched, &kad->idle, lp2p_deadline_in(100)) == LP2P_ERR_WOULDBLOCK) break;
    if (kad->n_tasks > 0 || kad->n_api > 0) { /* cannot wait here: leave it to lp2p_host_free */
        LP2P__WARN(kad->ctx, LP2P_ERR_BUSY, "kad: freed with %d tasks still running: memory kept until lp2p_host_free",
                   kad->n_tasks + kad->n_api);
        return;
    }
    lp2p__host_remove_service(h, &kad->service);
    lp2p__kad_release(kad);
}

LP2P_API lp2p_kad_mode lp2p_kad_get_mode(const lp2p_kad *kad) { return kad->mode; }

LP2P_API int lp2p_kad_set_mode(lp2p_kad *kad, lp2p_kad_mode mode) {
    if (!kad || mode < LP2P_KAD_AUTO || mode > LP2P_KAD_SERVER) return LP2P_ERR_INVALID;
    if (mode == LP2P_KAD_AUTO) mode = strcmp(kad->protocol, LP2P__KAD_PROTO) == 0 ? LP2P_KAD_CLIENT : LP2P_KAD_SERVER;
    if (mode == kad->mode) return LP2P_OK;
    if (mode == LP2P_KAD_SERVER) {
        int rc = lp2p_host_handle(kad->h, kad->protocol, lp2p__kad_serve, kad);
        if (rc) return rc;
    } else {
        lp2p_host_unhandle(kad->h, kad->protocol);
    }
    kad->mode = mode;
    return LP2P_OK;
}

/* ---- public lookups ---------------------------------------------------------------------------------- */
static bool lp2p__kad_key_ok(const uint8_t *key, size_t len) { return key && len > 0 && len <= LP2P__KAD_KEY_MAX; }

LP2P_API int lp2p_kad_bootstrap(lp2p_kad *kad, const char *const *addrs, int n, int64_t deadline) {
    if (!kad || (n > 0 && !addrs)) return LP2P_ERR_INVALID;
    for (int i = 0; i < n; i++) {
        lp2p__ma ma;
        if (!addrs[i] || lp2p__ma_parse(addrs[i], &ma, NULL) || !lp2p__ma_split_p2p(&ma, NULL, NULL)) return LP2P_ERR_BADADDR;
    }
    kad->last_boot = lp2p_now();
    for (int i = 0; i < kad->n_boot && !kad->closing; i++) lp2p__kad_boot_one(kad, kad->boot[i], deadline);
    for (int i = 0; i < n && !kad->closing; i++) lp2p__kad_boot_one(kad, addrs[i], deadline);
    if (kad->closing) return LP2P_ERR_CANCELED;
    if (kad->rt.size == 0) return LP2P_ERR_NOTFOUND;
    int rc = lp2p__kad_refresh(kad, true, deadline);
    if (rc == LP2P_ERR_TIMEOUT || rc == LP2P_ERR_CANCELED) return rc;
    kad->refresh_soon = false;
    return kad->rt.size ? kad->rt.size : LP2P_ERR_NOTFOUND;
}

LP2P_API int lp2p_kad_get_closest_peers(lp2p_kad *kad, const uint8_t *key, size_t key_len, lp2p_kad_peer_fn fn,
                                        void *user, lp2p_peer_id *out, int max, int64_t deadline) {
    if (!kad || !lp2p__kad_key_ok(key, key_len) || (max > 0 && !out)) return LP2P_ERR_INVALID;
    lp2p__kad_query *q = lp2p__kad_query_new(kad, key, key_len, deadline);
    if (!q) return LP2P_ERR_NOMEM;
    q->peer_fn = fn, q->peer_user = user, q->followup = true;
    int rc = lp2p__kad_encode_simple(kad, lp2p_pb_KadMessage_MessageType_FIND_NODE, key, key_len, &q->req);
    if (rc) {
        lp2p__kad_query_unref(q);
        return rc;
    }
    return lp2p__kad_run(q, out, LP2P__MIN(max, kad->cfg.k));
}

/* find_peer: stop as soon as an answer carries the target with an address. */
static int lp2p__kad_visit_find_peer(lp2p__kad_query *q, const lp2p_peer_id *from, const lp2p__kad_msg *m) {
    const lp2p_peer_id *target = (const lp2p_peer_id *)q->user;
    if (lp2p_peer_id_eq(from, target)) return 1;
    for (int i = 0; i < m->n_closer; i++)
        if (m->closer[i].id.len == target->len && memcmp(m->closer[i].id.p, target->bytes, target->len) == 0 &&
            m->closer[i].n_addrs > 0)
            return 1;
    return 0;
}

static bool lp2p__kad_has_addrs(lp2p_kad *kad, const lp2p_peer_id *peer) {
    lp2p__peer *p = lp2p__peerstore_get(kad->h, peer, false);
    int64_t now = lp2p_now();
    for (int i = 0; p && i < p->n_addrs; i++)
        if (p->addrs[i].expires < 0 || p->addrs[i].expires >= now) return true;
    return false;
}

LP2P_API int lp2p_kad_find_peer(lp2p_kad *kad, const lp2p_peer_id *peer, int64_t deadline) {
    if (!kad || !peer || !peer->len) return LP2P_ERR_INVALID;
    if (lp2p_peer_id_eq(peer, &kad->h->identity.id) || lp2p__swarm_find_conn(kad->h, peer)) return LP2P_OK;
    lp2p__kad_query *q = lp2p__kad_query_new(kad, peer->bytes, peer->len, deadline);
    if (!q) return LP2P_ERR_NOMEM;
    q->visit = lp2p__kad_visit_find_peer, q->user = (void *)peer;
    int rc = lp2p__kad_encode_simple(kad, lp2p_pb_KadMessage_MessageType_FIND_NODE, peer->bytes, peer->len, &q->req);
    if (rc) {
        lp2p__kad_query_unref(q);
        return rc;
    }
    rc = lp2p__kad_run(q, NULL, 0);
    if (rc < 0 && rc != LP2P_ERR_NOTFOUND) return rc;
    return lp2p__kad_has_addrs(kad, peer) ? LP2P_OK : LP2P_ERR_NOTFOUND;
}

/* ADD_PROVIDER to the k closest peers of key (our listen addresses inside). */
static int lp2p__kad_announce(lp2p_kad *kad, const uint8_t *key, size_t key_len, int64_t deadline) {
    lp2p_peer_id closest[LP2P__KAD_SEND_MAX];
    int n = lp2p__kad_closest(kad, key, key_len, closest, LP2P__MIN(kad->cfg.k, LP2P__KAD_SEND_MAX), deadline);
    if (n < 0) return n;
    if (n == 0) return 0;
    lp2p__kad_fan *f = lp2p__kad_fan_new(kad, closest, n, false, deadline);
    if (!f) return LP2P_ERR_NOMEM;
    lp2p__kad_out o;
    memset(&o, 0, sizeof o);
    o.h = kad->h, o.type = lp2p_pb_KadMessage_MessageType_ADD_PROVIDER, o.key = key, o.key_len = key_len;
    o.providers = &kad->h->identity.id, o.n_providers = 1;
    int rc = lp2p__kad_msg_encode(kad->ctx, &o, &f->req);
    if (rc) {
        lp2p__kad_fan_unref(f);
        return rc;
    }
    return lp2p__kad_fan_run(f, true);
}

LP2P_API int lp2p_kad_provide(lp2p_kad *kad, const uint8_t *key, size_t key_len, int64_t deadline) {
    if (!kad || !key || key_len == 0 || key_len > LP2P__KAD_PROVIDER_KEY_MAX) return LP2P_ERR_INVALID;
    int64_t now = lp2p_now();
    lp2p__store_add_provider(&kad->st, key, key_len, &kad->h->identity.id, now + kad->cfg.provider_ttl_ms);
    lp2p__kad_mine *m = kad->mine;
    while (m && !(m->len == key_len && memcmp(m->key, key, key_len) == 0)) m = m->next;
    if (!m && (m = (lp2p__kad_mine *)lp2p__zalloc(kad->ctx, sizeof *m)) != NULL) {
        memcpy(m->key, key, key_len);
        m->len = key_len;
        m->next = kad->mine, kad->mine = m;
    }
    if (m) m->next_announce = now + kad->cfg.reprovide_interval_ms;
    return lp2p__kad_announce(kad, key, key_len, deadline);
}

typedef struct lp2p__kad_found {
    lp2p_kad_peer_fn fn;
    void *user;
    lp2p_peer_id *out;
    int max, n, want;
    lp2p_peer_id seen[256];
    int n_seen;
} lp2p__kad_found;

/* A provider (or any peer result) heard: dedupe, report, keep. Returns nonzero to stop. */
static int lp2p__kad_found_add(lp2p__kad_found *f, const lp2p_peer_id *id) {
    for (int i = 0; i < f->n_seen; i++)
        if (lp2p_peer_id_eq(&f->seen[i], id)) return 0;
    if (f->n_seen < (int)LP2P__COUNT(f->seen)) f->seen[f->n_seen++] = *id;
    if (f->out && f->n < f->max) f->out[f->n] = *id;
    f->n++;
    if (f->fn && f->fn(f->user, id)) return 1;
    return f->want > 0 && f->n >= f->want;
}

static int lp2p__kad_visit_providers(lp2p__kad_query *q, const lp2p_peer_id *from, const lp2p__kad_msg *m) {
    lp2p__kad_found *f = (lp2p__kad_found *)q->user;
    (void)from;
    for (int i = 0; i < m->n_providers; i++) {
        lp2p_peer_id id;
        const lp2p__kad_wpeer *w = &m->providers[i];
        if (lp2p__peer_id_from_bytes(w->id.p, w->id.len, &id) != LP2P_OK) continue;
        if (!lp2p_peer_id_eq(&id, &q->kad->h->identity.id)) lp2p__kad_learn(q->kad, w, &id, LP2P__KAD_PROVIDER_ADDR_TTL_MS);
        if (lp2p__kad_found_add(f, &id)) return 1;
    }
    return 0;
}

LP2P_API int lp2p_kad_find_providers(lp2p_kad *kad, const uint8_t *key, size_t key_len, int max_providers,
                                     lp2p_kad_peer_fn fn, void *user, lp2p_peer_id *out, int max, int64_t deadline) {
    if (!kad || !key || key_len == 0 || key_len > LP2P__KAD_PROVIDER_KEY_MAX || (max > 0 && !out)) return LP2P_ERR_INVALID;
    lp2p__kad_found *f = (lp2p__kad_found *)lp2p__zalloc(kad->ctx, sizeof *f);
    if (!f) return LP2P_ERR_NOMEM;
    f->fn = fn, f->user = user, f->out = out, f->max = max, f->want = max_providers;
    lp2p_peer_id local[LP2P__KAD_SEND_MAX];
    int nl = lp2p__store_get_providers(&kad->st, key, key_len, lp2p_now(), local, (int)LP2P__COUNT(local));
    bool done = false;
    for (int i = 0; i < nl && !done; i++) done = lp2p__kad_found_add(f, &local[i]) != 0;
    int rc = LP2P_OK;
    if (!done) {
        lp2p__kad_query *q = lp2p__kad_query_new(kad, key, key_len, deadline);
        rc = q ? lp2p__kad_encode_simple(kad, lp2p_pb_KadMessage_MessageType_GET_PROVIDERS, key, key_len, &q->req)
               : LP2P_ERR_NOMEM;
        if (rc == LP2P_OK) {
            q->visit = lp2p__kad_visit_providers, q->user = f;
            rc = lp2p__kad_run(q, NULL, 0);
            if (rc == LP2P_ERR_NOTFOUND && f->n) rc = LP2P_OK;
        } else if (q) {
            lp2p__kad_query_unref(q);
        }
    }
    int n = f->n; /* out holds the first min(n, max) */
    if (rc == LP2P_ERR_NOTFOUND) rc = LP2P_OK, n = 0;
    lp2p__free(kad->ctx, f, sizeof *f);
    return rc < 0 ? rc : n;
}

/* ---- values ------------------------------------------------------------------------------------------ */
static int lp2p__kad_encode_put(lp2p_kad *kad, const uint8_t *key, size_t key_len, const uint8_t *value,
                                size_t value_len, lp2p__buf *b) {
    char when[40];
    lp2p__kad_out o;
    lp2p__kad_rec *r = lp2p__store_get_record(&kad->st, key, key_len, lp2p_now());
    snprintf(when, sizeof when, "%s", r ? r->time : "");
    memset(&o, 0, sizeof o);
    o.h = kad->h, o.type = lp2p_pb_KadMessage_MessageType_PUT_VALUE, o.key = key, o.key_len = key_len;
    o.has_record = true;
    o.rec_key = key, o.rec_key_len = key_len, o.rec_value = value, o.rec_value_len = value_len;
    o.rec_time = (const uint8_t *)when, o.rec_time_len = strlen(when);
    return lp2p__kad_msg_encode(kad->ctx, &o, b);
}

LP2P_API int lp2p_kad_put_value(lp2p_kad *kad, const uint8_t *key, size_t key_len, const uint8_t *value,
                                size_t value_len, int64_t deadline) {
    lp2p_peer_id closest[LP2P__KAD_SEND_MAX];
    if (!kad || !lp2p__kad_key_ok(key, key_len) || (!value && value_len)) return LP2P_ERR_INVALID;
    if (key_len + value_len > (size_t)kad->cfg.max_record_size) return LP2P_ERR_INVALID;
    if (lp2p__store_validate(&kad->st, key, key_len, value, value_len) != LP2P_OK) return LP2P_ERR_INVALID;
    int rc = lp2p__store_put_record(&kad->st, key, key_len, value, value_len, lp2p_now() + kad->cfg.record_ttl_ms);
    if (rc) return rc;
    int n = lp2p__kad_closest(kad, key, key_len, closest, LP2P__MIN(kad->cfg.k, LP2P__KAD_SEND_MAX), deadline);
    if (n <= 0) return n;
    lp2p__kad_fan *f = lp2p__kad_fan_new(kad, closest, n, true, deadline);
    if (!f) return LP2P_ERR_NOMEM;
    rc = lp2p__kad_encode_put(kad, key, key_len, value, value_len, &f->req);
    if (rc) {
        lp2p__kad_fan_unref(f);
        return rc;
    }
    return lp2p__kad_fan_run(f, true);
}

typedef struct lp2p__kad_answer {
    lp2p_peer_id peer;
    uint8_t hash[32];
    bool had;
} lp2p__kad_answer;

typedef struct lp2p__kad_getv {
    lp2p_kad_value_fn fn;
    void *user;
    uint8_t *best;
    size_t best_len;
    uint8_t best_hash[32];
    int values;
    lp2p__kad_answer ans[LP2P__KAD_MAX_LOOKUP_PEERS];
    int n_ans;
} lp2p__kad_getv;

/* A candidate value (already validated): report it, keep the better one. */
static int lp2p__kad_getv_offer(lp2p_kad *kad, lp2p__kad_getv *g, const uint8_t *key, size_t key_len,
                                const lp2p_peer_id *from, const uint8_t *v, size_t len) {
    g->values++;
    if (g->fn && g->fn(g->user, from, v, len)) return 1;
    if (!g->best || lp2p__store_select(&kad->st, key, key_len, g->best, g->best_len, v, len) == 1) {
        uint8_t *copy = (uint8_t *)lp2p__alloc(kad->ctx, len ? len : 1);
        if (!copy) return 1;
        if (len) memcpy(copy, v, len);
        if (g->best) lp2p__free(kad->ctx, g->best, g->best_len ? g->best_len : 1);
        g->best = copy, g->best_len = len;
        lp2p__sha256_once(v, len, g->best_hash);
    }
    return g->values >= kad->cfg.get_quorum;
}

static int lp2p__kad_visit_value(lp2p__kad_query *q, const lp2p_peer_id *from, const lp2p__kad_msg *m) {
    lp2p__kad_getv *g = (lp2p__kad_getv *)q->user;
    lp2p__kad_answer *a = g->n_ans < (int)LP2P__COUNT(g->ans) ? &g->ans[g->n_ans++] : NULL;
    if (a) memset(a, 0, sizeof *a), a->peer = *from;
    if (!m->has_record) return 0;
    if (m->rec_key.len != q->key_len || memcmp(m->rec_key.p, q->key, q->key_len) != 0 ||
        lp2p__store_validate(&q->kad->st, q->key, q->key_len, m->rec_value.p, m->rec_value.len) != LP2P_OK) {
        lp2p__kad_warn_peer(q->kad, from, LP2P_ERR_INVALID, "GET_VALUE answer failing validation (dropped)");
        return 0;
    }
    if (a) a->had = true, lp2p__sha256_once(m->rec_value.p, m->rec_value.len, a->hash);
    return lp2p__kad_getv_offer(q->kad, g, q->key, q->key_len, from, m->rec_value.p, m->rec_value.len);
}

/* Entry correction: the closest peers that answered without the best value get it. */
static void lp2p__kad_correct(lp2p_kad *kad, const lp2p__kad_getv *g, const uint8_t *key, size_t key_len,
                              const lp2p_peer_id *closest, int n) {
    lp2p_peer_id stale[LP2P__KAD_SEND_MAX];
    int ns = 0;
    for (int i = 0; i < n && ns < LP2P__KAD_SEND_MAX; i++)
        for (int j = 0; j < g->n_ans; j++)
            if (lp2p_peer_id_eq(&g->ans[j].peer, &closest[i])) {
                if (!g->ans[j].had || memcmp(g->ans[j].hash, g->best_hash, 32) != 0) stale[ns++] = closest[i];
                break;
            }
    if (!ns) return;
    lp2p__kad_fan *f = lp2p__kad_fan_new(kad, stale, ns, true, lp2p_deadline_in(kad->cfg.request_timeout_ms));
    if (!f) return;
    if (lp2p__kad_encode_put(kad, key, key_len, g->best, g->best_len, &f->req) == LP2P_OK) lp2p__kad_fan_run(f, false);
    else lp2p__kad_fan_unref(f);
}

LP2P_API ptrdiff_t lp2p_kad_get_value(lp2p_kad *kad, const uint8_t *key, size_t key_len, lp2p_kad_value_fn fn,
                                      void *user, uint8_t *out, size_t cap, int64_t deadline) {
    lp2p_peer_id closest[LP2P__KAD_SEND_MAX];
    if (!kad || !lp2p__kad_key_ok(key, key_len) || (!out && cap)) return LP2P_ERR_INVALID;
    lp2p__kad_getv *g = (lp2p__kad_getv *)lp2p__zalloc(kad->ctx, sizeof *g);
    if (!g) return LP2P_ERR_NOMEM;
    g->fn = fn, g->user = user;
    lp2p__kad_rec *r = lp2p__store_get_record(&kad->st, key, key_len, lp2p_now());
    bool done = false;
    if (r && lp2p__store_validate(&kad->st, key, key_len, r->value, r->value_len) == LP2P_OK)
        done = lp2p__kad_getv_offer(kad, g, key, key_len, &kad->h->identity.id, r->value, r->value_len) != 0;
    int rc = LP2P_OK, n = 0;
    if (!done) {
        lp2p__kad_query *q = lp2p__kad_query_new(kad, key, key_len, deadline);
        rc = q ? lp2p__kad_encode_simple(kad, lp2p_pb_KadMessage_MessageType_GET_VALUE, key, key_len, &q->req)
               : LP2P_ERR_NOMEM;
        if (rc == LP2P_OK) {
            q->visit = lp2p__kad_visit_value, q->user = g;
            rc = n = lp2p__kad_run(q, closest, LP2P__MIN(kad->cfg.k, LP2P__KAD_SEND_MAX));
            if (rc == LP2P_ERR_NOTFOUND) rc = n = 0;
        } else if (q) {
            lp2p__kad_query_unref(q);
        }
    }
    ptrdiff_t res = rc < 0 ? rc : LP2P_ERR_NOTFOUND;
    if (rc >= 0 && g->best) {
        if (n > 0) lp2p__kad_correct(kad, g, key, key_len, closest, n);
        if (g->best_len > cap) res = LP2P_ERR_MSGSIZE;
        else {
            if (g->best_len) memcpy(out, g->best, g->best_len);
            res = (ptrdiff_t)g->best_len;
        }
    }
    if (g->best) lp2p__free(kad->ctx, g->best, g->best_len ? g->best_len : 1);
    lp2p__free(kad->ctx, g, sizeof *g);
    return res;
}

LP2P_API int lp2p_kad_set_validator(lp2p_kad *kad, const char *ns, const lp2p_kad_validator *v) {
    if (!kad) return LP2P_ERR_INVALID;
    return lp2p__store_set_validator(&kad->st, ns, v);
}

/* ---- inspection ------------------------------------------------------------------------------------------ */
LP2P_API int lp2p_kad_routing_table(lp2p_kad *kad, lp2p_kad_entry *out, int max) {
    int n = 0;
    int64_t now = lp2p_now();
    for (int b = 0; b < 256; b++)
        for (int i = 0; i < kad->rt.b[b].n; i++, n++)
            if (out && n < max) {
                const lp2p__kad_entry *e = &kad->rt.b[b].e[i];
                out[n].id = e->id, out[n].bucket = b;
                out[n].added_ms_ago = now - e->added, out[n].seen_ms_ago = now - e->seen;
            }
    return n;
}

LP2P_API void lp2p_kad_last_lookup(const lp2p_kad *kad, lp2p_kad_lookup_stats *out) { *out = kad->last; }

LP2P_API ptrdiff_t lp2p_kad_key_from_cid(const char *cid, uint8_t *out, size_t cap) {
    uint8_t buf[256];
    ptrdiff_t n;
    if (!cid || !out) return LP2P_ERR_INVALID;
    size_t len = strlen(cid);
    if (len < 2 || len > 400) return LP2P_ERR_BADADDR;
    if (cid[0] == 'Q' && cid[1] == 'm') n = lp2p__base58_dec(cid, len, buf, sizeof buf); /* CIDv0 = the multihash */
    else if (cid[0] == 'b' || cid[0] == 'B') n = lp2p__base32_dec(cid + 1, len - 1, buf, sizeof buf);
    else if (cid[0] == 'z') n = lp2p__base58_dec(cid + 1, len - 1, buf, sizeof buf);
    else if (cid[0] == 'f' || cid[0] == 'F') n = lp2p__hex_dec(cid + 1, len - 1, buf, sizeof buf);
    else return LP2P_ERR_BADADDR;
    if (n <= 0) return LP2P_ERR_BADADDR;
    size_t off = 0;
    uint64_t v;
    if (!(cid[0] == 'Q' && cid[1] == 'm')) { /* CIDv1: version, codec, then the multihash */
        int a = lp2p__uvarint_get(buf, (size_t)n, &v);
        if (a <= 0 || v != 1) return LP2P_ERR_BADADDR;
        int b = lp2p__uvarint_get(buf + a, (size_t)n - (size_t)a, &v);
        if (b <= 0) return LP2P_ERR_BADADDR;
        off = (size_t)a + (size_t)b;
    }
    /* check the multihash: code, length, digest */
    int a = lp2p__uvarint_get(buf + off, (size_t)n - off, &v);
    if (a <= 0) return LP2P_ERR_BADADDR;
    int b = lp2p__uvarint_get(buf + off + a, (size_t)n - off - (size_t)a, &v);
    if (b <= 0 || off + (size_t)a + (size_t)b + v != (size_t)n) return LP2P_ERR_BADADDR;
    size_t mh = (size_t)n - off;
    if (mh > cap) return LP2P_ERR_MSGSIZE;
    memcpy(out, buf + off, mh);
    return (ptrdiff_t)mh;
}
