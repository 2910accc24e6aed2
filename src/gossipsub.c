/* gossipsub.c - L7: the gossipsub router on top of pubsub.c: topic meshes (GRAFT/PRUNE with
 * backoff, peer exchange), fanout, gossip (IHAVE/IWANT from the message cache, promises),
 * IDONTWANT (v1.2), flood publishing, opportunistic grafting, explicit peers and the heartbeat.
 * Peers that speak only /floodsub/1.0.0 get every message of their topics.
 *
 * Spec: libp2p/specs pubsub/gossipsub/gossipsub-v1.0.md (mesh, gossip, heartbeat),
 * gossipsub-v1.1.md (backoff, PX, flood publishing, outbound quota, adaptive gossip, spam
 * protection), gossipsub-v1.2.md (IDONTWANT). Behaviour and defaults follow go-libp2p-pubsub
 * (gossipsub.go), the reference the spec grew from.
 * Control RPCs we send stay under 56 KiB each (IHAVE lists are split): rust peers drop RPCs
 * above 64 KiB.
 * Depends on: pubsub.h, pubsub.c, pubsub_score.c. */
#include "pubsub.h"

#include <pb_decode.h>
#include <stdlib.h>

#define LP2P__GS_CTL_FLUSH (56 << 10)
#define LP2P__GS_IHAVE_CHUNK 1000   /* message IDs per IHAVE entry */
#define LP2P__GS_MAX_PROMISES 20000
#define LP2P__GS_DIRECT_TICKS 300   /* explicit peers are re-dialed every 300 heartbeats (go) */
#define LP2P__GS_MAX_BACKOFF_S (24 * 3600)

/* ---- small helpers ------------------------------------------------------------------------------- */
static uint64_t lp2p__gs_rand(lp2p_pubsub *ps) {
    uint64_t x = ps->rng;
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return ps->rng = x;
}

static void lp2p__gs_shuffle(lp2p_pubsub *ps, void **v, int n) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(lp2p__gs_rand(ps) % (uint64_t)(i + 1));
        void *t = v[i];
        v[i] = v[j], v[j] = t;
    }
}

static bool lp2p__gs_arr_has(lp2p__ps_peer *const *v, int n, const lp2p__ps_peer *p) {
    for (int i = 0; i < n; i++)
        if (v[i] == p) return true;
    return false;
}

static bool lp2p__gs_arr_add(lp2p_pubsub *ps, lp2p__ps_peer ***v, int *n, int *cap, lp2p__ps_peer *p) {
    if (lp2p__gs_arr_has(*v, *n, p)) return true;
    if (*n == *cap) {
        int ncap = *cap ? *cap * 2 : 8;
        void *np = lp2p__realloc(ps->ctx, *v, sizeof **v * (size_t)*cap, sizeof **v * (size_t)ncap);
        if (!np) return false;
        *v = (lp2p__ps_peer **)np, *cap = ncap;
    }
    (*v)[(*n)++] = p;
    return true;
}

static bool lp2p__gs_arr_del(lp2p__ps_peer **v, int *n, const lp2p__ps_peer *p) {
    for (int i = 0; i < *n; i++)
        if (v[i] == p) {
            v[i] = v[--*n];
            return true;
        }
    return false;
}

LP2P__PRIV bool lp2p__gs_in_mesh(const lp2p__ps_topic *t, const lp2p__ps_peer *p) {
    return lp2p__gs_arr_has(t->mesh, t->n_mesh, p);
}

static bool lp2p__gs_speaks_mesh(const lp2p__ps_peer *p) {
    return lp2p__ps_peer_active(p) && p->proto >= LP2P__PS_PROTO_MESH10;
}

/* ---- backoff -------------------------------------------------------------------------------------- */
static lp2p__ps_backoff *lp2p__gs_backoff_find(lp2p__ps_topic *t, const lp2p__ps_peer *p) {
    for (int i = 0; i < t->n_backoff; i++)
        if (lp2p_peer_id_eq(&t->backoff[i].peer, &p->id)) return &t->backoff[i];
    return NULL;
}

static bool lp2p__gs_in_backoff(lp2p__ps_topic *t, const lp2p__ps_peer *p, int64_t now) {
    lp2p__ps_backoff *b = lp2p__gs_backoff_find(t, p);
    return b && b->until > now;
}

static void lp2p__gs_add_backoff(lp2p_pubsub *ps, lp2p__ps_topic *t, const lp2p__ps_peer *p, int64_t ms) {
    int64_t until = lp2p_now() + ms;
    lp2p__ps_backoff *b = lp2p__gs_backoff_find(t, p);
    if (b) {
        if (b->until < until) b->until = until;
        return;
    }
    if (t->n_backoff == t->cap_backoff) {
        int ncap = t->cap_backoff ? t->cap_backoff * 2 : 8;
        void *np = lp2p__realloc(ps->ctx, t->backoff, sizeof *t->backoff * (size_t)t->cap_backoff,
                                 sizeof *t->backoff * (size_t)ncap);
        if (!np) return;
        t->backoff = (lp2p__ps_backoff *)np, t->cap_backoff = ncap;
    }
    t->backoff[t->n_backoff].peer = p->id;
    t->backoff[t->n_backoff++].until = until;
}

static void lp2p__gs_expire_backoff(lp2p__ps_topic *t, int64_t now) {
    for (int i = 0; i < t->n_backoff;)
        if (t->backoff[i].until <= now) t->backoff[i] = t->backoff[--t->n_backoff];
        else i++;
}

/* ---- control RPCs we send -------------------------------------------------------------------------- */
typedef struct lp2p__gs_out {
    lp2p__ps_peer *p;
    lp2p__buf ctl; /* ControlMessage body */
} lp2p__gs_out;

static void lp2p__gs_flush(lp2p_pubsub *ps, lp2p__gs_out *o) {
    lp2p__buf rpc = {0, 0, 0};
    if (o->ctl.len && lp2p__pb_put_bytes(ps->ctx, &rpc, 3, o->ctl.p, o->ctl.len) == LP2P_OK)
        lp2p__ps_send(o->p, rpc.p, rpc.len, true, false);
    lp2p__buf_free(ps->ctx, &rpc);
    o->ctl.len = 0;
}

/* Append one ControlMessage entry (field = 1 IHAVE, 2 IWANT, 3 GRAFT, 4 PRUNE, 5 IDONTWANT). */
static void lp2p__gs_put(lp2p_pubsub *ps, lp2p__gs_out *o, uint32_t field, const lp2p__buf *entry) {
    if (o->ctl.len && o->ctl.len + entry->len + 16 > LP2P__GS_CTL_FLUSH) lp2p__gs_flush(ps, o);
    lp2p__pb_put_bytes(ps->ctx, &o->ctl, field, entry->p, entry->len);
}

static void lp2p__gs_put_topic_entry(lp2p_pubsub *ps, lp2p__gs_out *o, uint32_t field, const lp2p__ps_topic *t) {
    lp2p__buf e = {0, 0, 0};
    if (lp2p__pb_put_bytes(ps->ctx, &e, 1, t->name, t->name_len) == LP2P_OK) lp2p__gs_put(ps, o, field, &e);
    lp2p__buf_free(ps->ctx, &e);
}

/* IHAVE (topic) / IWANT / IDONTWANT (topic NULL) with ids, split in chunks. */
static void lp2p__gs_put_ids(lp2p_pubsub *ps, lp2p__gs_out *o, uint32_t field, const lp2p__ps_topic *t,
                             const lp2p__ps_slice *ids, int n) {
    lp2p__buf e = {0, 0, 0};
    uint32_t id_field = t ? 2 : 1;
    for (int i = 0; i < n;) {
        e.len = 0;
        if (t) lp2p__pb_put_bytes(ps->ctx, &e, 1, t->name, t->name_len);
        for (int k = 0; i < n && k < LP2P__GS_IHAVE_CHUNK && e.len < LP2P__GS_CTL_FLUSH / 2; k++, i++)
            lp2p__pb_put_bytes(ps->ctx, &e, id_field, ids[i].p, ids[i].n);
        lp2p__gs_put(ps, o, field, &e);
    }
    lp2p__buf_free(ps->ctx, &e);
}

/* PRUNE with backoff (v1.1 peers) and peer exchange: up to prune_peers other topic peers
 * scoring >= 0, with the signed peer records we hold (go makePrune). */
static void lp2p__gs_put_prune(lp2p_pubsub *ps, lp2p__gs_out *o, lp2p__ps_topic *t, bool px, bool unsubscribe) {
    lp2p__buf e = {0, 0, 0}, pi = {0, 0, 0};
    lp2p__ps_peer *p = o->p;
    lp2p__pb_put_bytes(ps->ctx, &e, 1, t->name, t->name_len);
    if (p->proto >= LP2P__PS_PROTO_MESH11) {
        if (px && !ps->cfg.no_px && ps->cfg.prune_peers > 0) {
            lp2p__ps_peer **cand = (lp2p__ps_peer **)lp2p__alloc(ps->ctx, sizeof *cand * (size_t)(ps->n_peers + 1));
            int n = 0;
            for (lp2p__ps_peer *x = ps->peers; cand && x; x = x->next)
                if (x != p && lp2p__ps_peer_in_topic(x, t) && lp2p__score(ps, x) >= 0) cand[n++] = x;
            if (cand) lp2p__gs_shuffle(ps, (void **)cand, n);
            for (int i = 0; cand && i < n && i < ps->cfg.prune_peers; i++) {
                lp2p__peer *rec = lp2p__peerstore_get(ps->h, &cand[i]->id, false);
                pi.len = 0;
                lp2p__pb_put_bytes(ps->ctx, &pi, 1, cand[i]->id.bytes, cand[i]->id.len);
                if (rec && rec->record_len) lp2p__pb_put_bytes(ps->ctx, &pi, 2, rec->record, rec->record_len);
                lp2p__pb_put_bytes(ps->ctx, &e, 2, pi.p, pi.len);
            }
            lp2p__free(ps->ctx, cand, sizeof *cand * (size_t)(ps->n_peers + 1));
        }
        int ms = unsubscribe ? ps->cfg.unsubscribe_backoff_ms : ps->cfg.prune_backoff_ms;
        lp2p__pb_put_varint(ps->ctx, &e, 3, (uint64_t)(ms + 999) / 1000);
    }
    lp2p__gs_put(ps, o, 4, &e);
    ps->stats.prune_out++;
    lp2p__buf_free(ps->ctx, &e);
    lp2p__buf_free(ps->ctx, &pi);
}

/* ---- mesh membership --------------------------------------------------------------------------------- */
static void lp2p__gs_graft(lp2p_pubsub *ps, lp2p__ps_topic *t, lp2p__gs_out *o) {
    if (!lp2p__gs_arr_add(ps, &t->mesh, &t->n_mesh, &t->cap_mesh, o->p)) return;
    lp2p__score_graft(ps, o->p, t);
    lp2p__gs_put_topic_entry(ps, o, 3, t);
    ps->stats.graft_out++;
}

static void lp2p__gs_prune(lp2p_pubsub *ps, lp2p__ps_topic *t, lp2p__gs_out *o, bool px, bool unsubscribe) {
    if (lp2p__gs_arr_del(t->mesh, &t->n_mesh, o->p)) lp2p__score_prune(ps, o->p, t);
    lp2p__gs_add_backoff(ps, t, o->p, unsubscribe ? ps->cfg.unsubscribe_backoff_ms : ps->cfg.prune_backoff_ms);
    lp2p__gs_put_prune(ps, o, t, px, unsubscribe);
}

/* Peers of topic t passing filter, shuffled, into a fresh array (*n of them). */
typedef bool (*lp2p__gs_filter)(lp2p_pubsub *ps, lp2p__ps_topic *t, lp2p__ps_peer *p, void *arg);

static lp2p__ps_peer **lp2p__gs_select(lp2p_pubsub *ps, lp2p__ps_topic *t, lp2p__gs_filter f, void *arg, int *n) {
    lp2p__ps_peer **v = (lp2p__ps_peer **)lp2p__alloc(ps->ctx, sizeof *v * (size_t)(ps->n_peers + 1));
    *n = 0;
    if (!v) return NULL;
    for (lp2p__ps_peer *p = ps->peers; p; p = p->next)
        if (lp2p__gs_speaks_mesh(p) && lp2p__ps_peer_in_topic(p, t) && !p->direct && f(ps, t, p, arg)) v[(*n)++] = p;
    lp2p__gs_shuffle(ps, (void **)v, *n);
    return v;
}

static void lp2p__gs_select_free(lp2p_pubsub *ps, lp2p__ps_peer **v) {
    lp2p__free(ps->ctx, v, sizeof *v * (size_t)(ps->n_peers + 1));
}

/* Graft candidates: not in the mesh, not backing off, score >= 0 (arg: only outbound if non-NULL,
 * or score above *(double *)arg for opportunistic grafting, see the callers). */
static bool lp2p__gs_can_graft(lp2p_pubsub *ps, lp2p__ps_topic *t, lp2p__ps_peer *p, void *arg) {
    (void)arg;
    return !lp2p__gs_in_mesh(t, p) && !lp2p__gs_in_backoff(t, p, lp2p_now()) && lp2p__score(ps, p) >= 0;
}
static bool lp2p__gs_can_graft_out(lp2p_pubsub *ps, lp2p__ps_topic *t, lp2p__ps_peer *p, void *arg) {
    return p->outbound && lp2p__gs_can_graft(ps, t, p, arg);
}
static bool lp2p__gs_can_graft_above(lp2p_pubsub *ps, lp2p__ps_topic *t, lp2p__ps_peer *p, void *arg) {
    return lp2p__gs_can_graft(ps, t, p, arg) && lp2p__score(ps, p) > *(double *)arg;
}
static bool lp2p__gs_fanout_ok(lp2p_pubsub *ps, lp2p__ps_topic *t, lp2p__ps_peer *p, void *arg) {
    (void)arg;
    return !lp2p__gs_arr_has(t->fanout, t->n_fanout, p) && lp2p__score(ps, p) >= ps->th.publish;
}
static bool lp2p__gs_gossip_ok(lp2p_pubsub *ps, lp2p__ps_topic *t, lp2p__ps_peer *p, void *arg) {
    (void)arg;
    return !lp2p__gs_in_mesh(t, p) && !lp2p__gs_arr_has(t->fanout, t->n_fanout, p) && lp2p__score(ps, p) >= ps->th.gossip;
}

/* ---- joining and leaving topics --------------------------------------------------------------------- */
LP2P__PRIV void lp2p__gs_join(lp2p_pubsub *ps, lp2p__ps_topic *t) {
    int64_t now = lp2p_now();
    lp2p__ps_peer **grafted = (lp2p__ps_peer **)lp2p__alloc(ps->ctx, sizeof *grafted * (size_t)(ps->n_peers + 1));
    int ng = 0, n = 0;
    if (!grafted) return;
    for (int i = 0; i < t->n_fanout; i++) { /* the fanout becomes the mesh (go Join) */
        lp2p__ps_peer *p = t->fanout[i];
        if (ng < ps->cfg.d && lp2p__score(ps, p) >= 0 && !lp2p__gs_in_backoff(t, p, now)) grafted[ng++] = p;
    }
    t->n_fanout = 0, t->fanout_last_pub = 0;
    lp2p__ps_peer **v = lp2p__gs_select(ps, t, lp2p__gs_can_graft, NULL, &n);
    for (int i = 0; v && i < n && ng < ps->cfg.d; i++)
        if (!lp2p__gs_arr_has(grafted, ng, v[i])) grafted[ng++] = v[i];
    lp2p__gs_select_free(ps, v);
    for (int i = 0; i < ng; i++) {
        lp2p__gs_out o = {grafted[i], {0, 0, 0}};
        lp2p__gs_graft(ps, t, &o);
        lp2p__gs_flush(ps, &o);
        lp2p__buf_free(ps->ctx, &o.ctl);
    }
    lp2p__free(ps->ctx, grafted, sizeof *grafted * (size_t)(ps->n_peers + 1));
}

LP2P__PRIV void lp2p__gs_leave(lp2p_pubsub *ps, lp2p__ps_topic *t) {
    while (t->n_mesh) {
        lp2p__gs_out o = {t->mesh[t->n_mesh - 1], {0, 0, 0}};
        lp2p__gs_prune(ps, t, &o, true, true);
        lp2p__gs_flush(ps, &o);
        lp2p__buf_free(ps->ctx, &o.ctl);
    }
}

LP2P__PRIV void lp2p__gs_peer_added(lp2p_pubsub *ps, lp2p__ps_peer *p) { (void)ps, (void)p; }

LP2P__PRIV void lp2p__gs_peer_removed(lp2p_pubsub *ps, lp2p__ps_peer *p) {
    for (lp2p__ps_topic *t = ps->topics; t; t = t->next) {
        if (lp2p__gs_arr_del(t->mesh, &t->n_mesh, p)) lp2p__score_prune(ps, p, t);
        lp2p__gs_arr_del(t->fanout, &t->n_fanout, p);
    }
}

LP2P__PRIV void lp2p__gs_peer_unsubscribed(lp2p_pubsub *ps, lp2p__ps_peer *p, lp2p__ps_topic *t) {
    if (lp2p__gs_arr_del(t->mesh, &t->n_mesh, p)) lp2p__score_prune(ps, p, t);
    lp2p__gs_arr_del(t->fanout, &t->n_fanout, p);
}

/* ---- message cache ---------------------------------------------------------------------------------- */
LP2P__PRIV void lp2p__gs_mcache_put(lp2p_pubsub *ps, lp2p__ps_msg *m) {
    lp2p__ps_mcache *c = &ps->mcache;
    bool fresh;
    if (c->n[0] == c->cap[0]) {
        int ncap = c->cap[0] ? c->cap[0] * 2 : 64;
        void *np = lp2p__realloc(ps->ctx, c->win[0], sizeof *c->win[0] * (size_t)c->cap[0], sizeof *c->win[0] * (size_t)ncap);
        if (!np) return;
        c->win[0] = (lp2p__ps_msg **)np, c->cap[0] = ncap;
    }
    lp2p__ps_idset_entry *e = lp2p__ps_idset_add(ps->ctx, &c->index, m->digest, 0, &fresh);
    if (!e || !fresh) return;
    e->aux = (int64_t)(intptr_t)m;
    m->refs++;
    c->win[0][c->n[0]++] = m;
}

static lp2p__ps_msg *lp2p__gs_mcache_get(lp2p_pubsub *ps, const uint8_t d[LP2P__PS_DIGEST]) {
    lp2p__ps_idset_entry *e = lp2p__ps_idset_find(&ps->mcache.index, d);
    return e ? (lp2p__ps_msg *)(intptr_t)e->aux : NULL;
}

static void lp2p__gs_mcache_shift(lp2p_pubsub *ps) {
    lp2p__ps_mcache *c = &ps->mcache;
    int last = c->len - 1;
    for (int i = 0; i < c->n[last]; i++) {
        lp2p__ps_idset_del(&c->index, c->win[last][i]->digest);
        lp2p__ps_msg_unref(c->win[last][i]);
    }
    lp2p__ps_msg **w = c->win[last];
    int cap = c->cap[last];
    for (int i = last; i > 0; i--) c->win[i] = c->win[i - 1], c->n[i] = c->n[i - 1], c->cap[i] = c->cap[i - 1];
    c->win[0] = w, c->n[0] = 0, c->cap[0] = cap;
    lp2p__ps_idset_expire(&c->index, -1); /* pops the tombstones at the front of the FIFO */
}

/* IWANT: the message for peer p, unless it asked for it too often (gossip_retransmission). */
static lp2p__ps_msg *lp2p__gs_mcache_for_peer(lp2p_pubsub *ps, const uint8_t d[LP2P__PS_DIGEST], lp2p__ps_peer *p) {
    lp2p__ps_msg *m = lp2p__gs_mcache_get(ps, d);
    if (!m) return NULL;
    for (int i = 0; i < m->n_tx; i++)
        if (m->tx[i].peer == p) return ++m->tx[i].count > ps->cfg.gossip_retransmission ? NULL : m;
    if (m->n_tx == (int)LP2P__COUNT(m->tx)) return NULL;
    m->tx[m->n_tx].peer = p, m->tx[m->n_tx++].count = 1;
    return m;
}

/* ---- gossip promises (v1.1: a peer that IHAVEs must deliver what we IWANT) --------------------------- */
static void lp2p__gs_promise_add(lp2p_pubsub *ps, lp2p__ps_peer *p, const uint8_t d[LP2P__PS_DIGEST]) {
    if (ps->n_promises >= LP2P__GS_MAX_PROMISES) return;
    if (ps->n_promises == ps->cap_promises) {
        int ncap = ps->cap_promises ? ps->cap_promises * 2 : 64;
        void *np = lp2p__realloc(ps->ctx, ps->promises, sizeof *ps->promises * (size_t)ps->cap_promises,
                                 sizeof *ps->promises * (size_t)ncap);
        if (!np) return;
        ps->promises = (lp2p__ps_promise *)np, ps->cap_promises = ncap;
    }
    lp2p__ps_promise *x = &ps->promises[ps->n_promises++];
    memcpy(x->d, d, LP2P__PS_DIGEST);
    x->peer = p->id;
    x->expires = lp2p_now() + ps->cfg.iwant_followup_ms;
}

LP2P__PRIV void lp2p__gs_promise_kept(lp2p_pubsub *ps, const uint8_t d[LP2P__PS_DIGEST]) {
    for (int i = 0; i < ps->n_promises;)
        if (memcmp(ps->promises[i].d, d, LP2P__PS_DIGEST) == 0) ps->promises[i] = ps->promises[--ps->n_promises];
        else i++;
}

static void lp2p__gs_promises_check(lp2p_pubsub *ps, int64_t now) {
    for (int i = 0; i < ps->n_promises;) {
        lp2p__ps_promise *x = &ps->promises[i];
        if (x->expires > now) {
            i++;
            continue;
        }
        lp2p__ps_peer *p = lp2p__ps_peer_find(ps, &x->peer);
        if (p) {
            char id[LP2P_PEER_ID_STRLEN];
            lp2p_peer_id_str(&p->id, id, sizeof id);
            LP2P__INFO(ps->ctx, "pubsub: %s did not deliver a message it advertised (IWANT promise broken)", id);
            lp2p__score_penalty(ps, p, 1);
        }
        *x = ps->promises[--ps->n_promises];
    }
}

/* ---- incoming control --------------------------------------------------------------------------------- */
static lp2p__ps_topic *lp2p__gs_ctl_topic(lp2p_pubsub *ps, const lp2p__ps_rpc_ctl *c) {
    lp2p__ps_topic *t = lp2p__ps_topic_get(ps, c->topic.p, c->topic.n, false);
    return t && t->joined ? t : NULL;
}

static void lp2p__gs_handle_ihave(lp2p_pubsub *ps, lp2p__ps_peer *p, const lp2p__ps_rpc *r, lp2p__gs_out *o) {
    lp2p__ps_slice *want = NULL;
    int n = 0, cap = 0;
    uint8_t d[LP2P__PS_DIGEST];
    for (int i = 0; i < r->n_ctl; i++) {
        const lp2p__ps_rpc_ctl *c = &r->ctl[i];
        if (c->kind != LP2P__PS_CTL_IHAVE) continue;
        ps->stats.ihave_in++;
        if (++p->ihave_in > ps->cfg.max_ihave_messages || p->iasked >= ps->cfg.max_ihave_length) {
            LP2P__DEBUG(ps->ctx, "pubsub: IHAVE flood: max_ihave_messages/max_ihave_length reached, ignored");
            continue;
        }
        if (!lp2p__gs_ctl_topic(ps, c)) continue;
        for (int k = 0; k < c->n_ids && n < ps->cfg.max_ihave_length; k++) {
            const lp2p__ps_slice *id = &r->ids[c->first_id + k];
            lp2p__ps_digest(ps, id->p, id->n, d);
            if (lp2p__ps_idset_find(&ps->seen, d)) continue;
            bool dup = false;
            for (int j = 0; j < n && !dup; j++) dup = want[j].n == id->n && !memcmp(want[j].p, id->p, id->n);
            if (dup) continue;
            if (n == cap) {
                int ncap = cap ? cap * 2 : 16;
                void *np = lp2p__realloc(ps->ctx, want, sizeof *want * (size_t)cap, sizeof *want * (size_t)ncap);
                if (!np) break;
                want = (lp2p__ps_slice *)np, cap = ncap;
            }
            want[n++] = *id;
        }
    }
    int ask = LP2P__MIN(n, ps->cfg.max_ihave_length - p->iasked);
    if (ask > 0) {
        for (int a = 0; a < ask && n > ask; a++) { /* a random subset when we must cut */
            int b = a + (int)(lp2p__gs_rand(ps) % (uint64_t)(n - a));
            lp2p__ps_slice tmp = want[a];
            want[a] = want[b], want[b] = tmp;
        }
        p->iasked += ask;
        int pick = (int)(lp2p__gs_rand(ps) % (uint64_t)ask);
        lp2p__ps_digest(ps, want[pick].p, want[pick].n, d);
        lp2p__gs_promise_add(ps, p, d); /* go tracks one random ID per IWANT */
        lp2p__gs_put_ids(ps, o, 2, NULL, want, ask);
        ps->stats.iwant_out++;
    }
    lp2p__free(ps->ctx, want, sizeof *want * (size_t)cap);
}

static void lp2p__gs_handle_iwant(lp2p_pubsub *ps, lp2p__ps_peer *p, const lp2p__ps_rpc *r) {
    uint8_t d[LP2P__PS_DIGEST];
    for (int i = 0; i < r->n_ctl; i++) {
        const lp2p__ps_rpc_ctl *c = &r->ctl[i];
        if (c->kind != LP2P__PS_CTL_IWANT) continue;
        ps->stats.iwant_in++;
        for (int k = 0; k < c->n_ids; k++) {
            if (p->iwant_served >= ps->cfg.max_ihave_length) {
                LP2P__DEBUG(ps->ctx, "pubsub: IWANT flood: more than max_ihave_length messages asked this heartbeat");
                return;
            }
            lp2p__ps_digest(ps, r->ids[c->first_id + k].p, r->ids[c->first_id + k].n, d);
            lp2p__ps_msg *m = lp2p__gs_mcache_for_peer(ps, d, p);
            if (!m || lp2p__ps_idset_find(&p->dontwant, d)) continue;
            p->iwant_served++;
            if (lp2p__ps_send_msg(p, m) == LP2P_OK) ps->stats.iwant_served++;
        }
    }
}

/* GRAFT: join p to our mesh unless it must back off, scores below 0, or the mesh is full
 * (go handleGraft); refusals answer PRUNE. */
static void lp2p__gs_handle_graft(lp2p_pubsub *ps, lp2p__ps_peer *p, const lp2p__ps_rpc *r, lp2p__gs_out *o) {
    int64_t now = lp2p_now();
    char id[LP2P_PEER_ID_STRLEN];
    for (int i = 0; i < r->n_ctl; i++) {
        const lp2p__ps_rpc_ctl *c = &r->ctl[i];
        if (c->kind != LP2P__PS_CTL_GRAFT) continue;
        ps->stats.graft_in++;
        lp2p__ps_topic *t = lp2p__gs_ctl_topic(ps, c);
        if (!t || lp2p__gs_in_mesh(t, p)) continue; /* unknown topics: ignored (spam hardening) */
        if (!lp2p__ps_peer_in_topic(p, t)) continue; /* it did not subscribe (rust drops these too) */
        bool px = true;
        if (p->direct) {
            lp2p_peer_id_str(&p->id, id, sizeof id);
            LP2P__WARN(ps->ctx, LP2P_ERR_PROTOCOL, "pubsub: GRAFT from direct peer %s: refused", id);
            lp2p__gs_prune(ps, t, o, false, false);
            continue;
        }
        lp2p__ps_backoff *b = lp2p__gs_backoff_find(t, p);
        if (b && b->until > now) {
            lp2p_peer_id_str(&p->id, id, sizeof id);
            LP2P__INFO(ps->ctx, "pubsub: GRAFT from %s on '%s' during its backoff: penalised", id, t->name);
            lp2p__score_penalty(ps, p, 1);
            /* a GRAFT right after our PRUNE is a flood: one more (go: GraftFloodThreshold) */
            if (now < b->until - ps->cfg.prune_backoff_ms + ps->cfg.graft_flood_threshold_ms) lp2p__score_penalty(ps, p, 1);
            lp2p__gs_prune(ps, t, o, false, false);
            continue;
        }
        if (lp2p__score(ps, p) < 0) px = false;
        if (!px || (t->n_mesh >= ps->cfg.d_hi && !p->outbound)) {
            lp2p__gs_prune(ps, t, o, px, false);
            continue;
        }
        if (lp2p__gs_arr_add(ps, &t->mesh, &t->n_mesh, &t->cap_mesh, p)) lp2p__score_graft(ps, p, t);
    }
}

/* The peer record in a PX entry: verified, then its addresses go to the peerstore. */
typedef struct lp2p__gs_rec {
    lp2p_host *h;
    lp2p_peer_id id;
    uint8_t pid[64];
    size_t pid_len;
} lp2p__gs_rec;

static bool lp2p__gs_rec_addr(pb_istream_t *st, const pb_field_t *f, void **arg) {
    lp2p__gs_rec *r = (lp2p__gs_rec *)*arg;
    lp2p__ma ma;
    (void)f;
    if (st->bytes_left <= LP2P__MA_MAX && lp2p__ma_from_bytes((const uint8_t *)st->state, st->bytes_left, &ma, NULL) == LP2P_OK &&
        lp2p__ma_is_tcp(&ma))
        lp2p__peerstore_add_addr(r->h, &r->id, &ma, 2 * 60 * 1000); /* go: TempAddrTTL */
    return pb_read(st, NULL, st->bytes_left);
}

static bool lp2p__gs_rec_info(pb_istream_t *st, const pb_field_t *f, void **arg) {
    lp2p_pb_PeerRecord_AddressInfo ai;
    (void)f;
    ai.multiaddr.funcs.decode = lp2p__gs_rec_addr, ai.multiaddr.arg = *arg;
    return pb_decode(st, lp2p_pb_PeerRecord_AddressInfo_fields, &ai);
}

static bool lp2p__gs_rec_pid(pb_istream_t *st, const pb_field_t *f, void **arg) {
    lp2p__gs_rec *r = (lp2p__gs_rec *)*arg;
    (void)f;
    if (st->bytes_left > sizeof r->pid) return false;
    r->pid_len = st->bytes_left;
    return pb_read(st, r->pid, st->bytes_left);
}

static void lp2p__gs_px_record(lp2p_pubsub *ps, const lp2p_peer_id *peer, const lp2p__ps_slice *env) {
    const uint8_t *payload;
    size_t plen;
    lp2p_peer_id signer, rid;
    static const uint8_t type[2] = {0x03, 0x01};
    if (lp2p__envelope_open(env->p, env->n, "libp2p-peer-record", type, 2, &payload, &plen, &signer) ||
        !lp2p_peer_id_eq(&signer, peer))
        return;
    lp2p__gs_rec r;
    lp2p_pb_PeerRecord m;
    memset(&r, 0, sizeof r);
    memset(&m, 0, sizeof m);
    r.h = ps->h, r.id = *peer;
    m.peer_id.funcs.decode = lp2p__gs_rec_pid, m.peer_id.arg = &r;
    pb_istream_t st = pb_istream_from_buffer(payload, plen);
    /* check the record's peer ID before its addresses land in the peerstore: decode twice */
    if (!pb_decode(&st, lp2p_pb_PeerRecord_fields, &m) || lp2p__peer_id_from_bytes(r.pid, r.pid_len, &rid) ||
        !lp2p_peer_id_eq(&rid, peer))
        return;
    memset(&m, 0, sizeof m);
    m.addresses.funcs.decode = lp2p__gs_rec_info, m.addresses.arg = &r;
    st = pb_istream_from_buffer(payload, plen);
    if (!pb_decode(&st, lp2p_pb_PeerRecord_fields, &m)) return;
}

/* Peer exchange: connect to (at most prune_peers of) the peers a PRUNE offered (go pxConnect). */
static void lp2p__gs_px_connect(lp2p_pubsub *ps, const lp2p__ps_rpc *r, const lp2p__ps_rpc_ctl *c) {
    int limit = LP2P__MIN(c->n_px, ps->cfg.prune_peers);
    for (int i = 0; i < limit; i++) {
        const lp2p__ps_rpc_px *x = &r->px[c->first_px + i];
        lp2p_peer_id id;
        if (lp2p__peer_id_from_bytes(x->peer_id.p, x->peer_id.n, &id) != LP2P_OK) continue;
        if (lp2p__swarm_find_conn(ps->h, &id) || lp2p_peer_id_eq(&id, &ps->h->identity.id)) continue;
        if (x->record.n) lp2p__gs_px_record(ps, &id, &x->record);
        lp2p__peer *known = lp2p__peerstore_get(ps->h, &id, false);
        if (!known || !known->n_addrs) continue; /* nowhere to dial (go skips too) */
        ps->stats.px_connects++;
        lp2p__ps_connect_async(ps, &id);
    }
}

static void lp2p__gs_handle_prune(lp2p_pubsub *ps, lp2p__ps_peer *p, const lp2p__ps_rpc *r) {
    for (int i = 0; i < r->n_ctl; i++) {
        const lp2p__ps_rpc_ctl *c = &r->ctl[i];
        if (c->kind != LP2P__PS_CTL_PRUNE) continue;
        ps->stats.prune_in++;
        lp2p__ps_topic *t = lp2p__gs_ctl_topic(ps, c);
        if (!t) continue;
        if (lp2p__gs_arr_del(t->mesh, &t->n_mesh, p)) lp2p__score_prune(ps, p, t);
        uint64_t secs = c->has_backoff ? LP2P__MIN(c->backoff, (uint64_t)LP2P__GS_MAX_BACKOFF_S) : 0;
        lp2p__gs_add_backoff(ps, t, p, secs ? (int64_t)secs * 1000 : ps->cfg.prune_backoff_ms);
        LP2P__DEBUG(ps->ctx, "pubsub: PRUNE on '%s', backoff %llu s, %d peers offered", t->name, (unsigned long long)secs, c->n_px);
        if (c->n_px && !ps->cfg.no_px) {
            if (lp2p__score(ps, p) < ps->th.accept_px) {
                LP2P__DEBUG(ps->ctx, "pubsub: PRUNE with peer exchange from a peer scoring below accept_px: ignored");
                continue;
            }
            lp2p__gs_px_connect(ps, r, c);
        }
    }
}

static void lp2p__gs_handle_idontwant(lp2p_pubsub *ps, lp2p__ps_peer *p, const lp2p__ps_rpc *r) {
    uint8_t d[LP2P__PS_DIGEST];
    int total = 0;
    bool counted = false;
    for (int i = 0; i < r->n_ctl; i++) {
        const lp2p__ps_rpc_ctl *c = &r->ctl[i];
        if (c->kind != LP2P__PS_CTL_IDONTWANT) continue;
        ps->stats.idontwant_in++;
        if (!counted && ++p->idontwant_in > ps->cfg.max_idontwant_messages) {
            LP2P__DEBUG(ps->ctx, "pubsub: IDONTWANT flood: max_idontwant_messages reached, ignored");
            return;
        }
        counted = true;
        for (int k = 0; k < c->n_ids && total < ps->cfg.max_idontwant_length; k++, total++) {
            lp2p__ps_digest(ps, r->ids[c->first_id + k].p, r->ids[c->first_id + k].n, d);
            lp2p__ps_idset_add(ps->ctx, &p->dontwant, d, (int64_t)ps->heartbeats + ps->cfg.idontwant_ttl, NULL);
        }
    }
}

LP2P__PRIV void lp2p__gs_handle_control(lp2p_pubsub *ps, lp2p__ps_peer *p, const lp2p__ps_rpc *r) {
    lp2p__gs_out o = {p, {0, 0, 0}};
    bool gossip = lp2p__score(ps, p) >= ps->th.gossip; /* below: no gossip either way */
    if (gossip) lp2p__gs_handle_ihave(ps, p, r, &o);
    if (gossip) lp2p__gs_handle_iwant(ps, p, r);
    lp2p__gs_handle_graft(ps, p, r, &o);
    lp2p__gs_handle_prune(ps, p, r);
    lp2p__gs_handle_idontwant(ps, p, r);
    lp2p__gs_flush(ps, &o);
    lp2p__buf_free(ps->ctx, &o.ctl);
}

/* ---- IDONTWANT (v1.2): tell the mesh at once that we have a large message ------------------------------- */
LP2P__PRIV void lp2p__gs_preprocess(lp2p_pubsub *ps, lp2p__ps_peer *from, lp2p__ps_topic *t, const uint8_t *id,
                                    size_t id_len, size_t data_len) {
    if (ps->cfg.idontwant_threshold < 0 || data_len < (size_t)ps->cfg.idontwant_threshold) return;
    lp2p__ps_slice s = {id, id_len};
    for (int i = 0; i < t->n_mesh; i++) {
        lp2p__ps_peer *p = t->mesh[i];
        if (p == from || p->proto < LP2P__PS_PROTO_MESH12) continue;
        lp2p__gs_out o = {p, {0, 0, 0}};
        lp2p__gs_put_ids(ps, &o, 5, NULL, &s, 1);
        lp2p__buf rpc = {0, 0, 0};
        if (lp2p__pb_put_bytes(ps->ctx, &rpc, 3, o.ctl.p, o.ctl.len) == LP2P_OK &&
            lp2p__ps_send(p, rpc.p, rpc.len, true, true) == LP2P_OK)
            ps->stats.idontwant_out++;
        lp2p__buf_free(ps->ctx, &rpc);
        lp2p__buf_free(ps->ctx, &o.ctl);
    }
}

/* ---- forwarding ------------------------------------------------------------------------------------------ */
static bool lp2p__gs_skip(lp2p__ps_peer *p, const lp2p__ps_msg *m, const lp2p__ps_peer *from) {
    return p == from || !lp2p__ps_peer_active(p) || (m->from.len && lp2p_peer_id_eq(&p->id, &m->from)) ||
           lp2p__ps_idset_find(&p->dontwant, m->digest);
}

static int lp2p__gs_send_to(lp2p_pubsub *ps, lp2p__ps_peer **v, int n, const lp2p__ps_msg *m, const lp2p__ps_peer *from) {
    int count = 0;
    (void)ps;
    for (int i = 0; i < n; i++)
        if (!lp2p__gs_skip(v[i], m, from) && lp2p__ps_send_msg(v[i], m) == LP2P_OK) count++;
    return count;
}

LP2P__PRIV int lp2p__gs_forward(lp2p_pubsub *ps, lp2p__ps_topic *t, lp2p__ps_msg *m, lp2p__ps_peer *from, bool own) {
    lp2p__ps_peer **v = (lp2p__ps_peer **)lp2p__alloc(ps->ctx, sizeof *v * (size_t)(ps->n_peers + 1));
    int n = 0;
    if (!v) return 0;
    bool flood = ps->cfg.floodsub || (own && !ps->cfg.no_flood_publish);
    for (lp2p__ps_peer *p = ps->peers; p; p = p->next) {
        if (!lp2p__ps_peer_active(p) || !lp2p__ps_peer_in_topic(p, t)) continue;
        bool floodsub_peer = p->proto == LP2P__PS_PROTO_FLOOD;
        double score = ps->cfg.floodsub ? 0 : lp2p__score(ps, p);
        if (p->direct || ((flood || floodsub_peer) && score >= ps->th.publish)) v[n++] = p;
    }
    if (!flood) {
        if (t->joined) {
            for (int i = 0; i < t->n_mesh; i++)
                if (!lp2p__gs_arr_has(v, n, t->mesh[i])) v[n++] = t->mesh[i];
        } else if (own) { /* publishing to a topic we did not join: the fanout */
            if (!t->n_fanout) {
                int k = 0;
                lp2p__ps_peer **c = lp2p__gs_select(ps, t, lp2p__gs_fanout_ok, NULL, &k);
                for (int i = 0; c && i < k && t->n_fanout < ps->cfg.d; i++)
                    lp2p__gs_arr_add(ps, &t->fanout, &t->n_fanout, &t->cap_fanout, c[i]);
                lp2p__gs_select_free(ps, c);
            }
            t->fanout_last_pub = lp2p_now();
            for (int i = 0; i < t->n_fanout; i++)
                if (!lp2p__gs_arr_has(v, n, t->fanout[i])) v[n++] = t->fanout[i];
        }
    }
    int count = lp2p__gs_send_to(ps, v, n, m, from);
    lp2p__free(ps->ctx, v, sizeof *v * (size_t)(ps->n_peers + 1));
    return count;
}

/* ---- heartbeat -------------------------------------------------------------------------------------------- */
typedef struct lp2p__gs_scored {
    lp2p__ps_peer *p;
    double score;
} lp2p__gs_scored;

static int lp2p__gs_by_score_desc(const void *a, const void *b) {
    double x = ((const lp2p__gs_scored *)a)->score, y = ((const lp2p__gs_scored *)b)->score;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* The heartbeat's control messages, one builder per peer (flushed at the end). */
typedef struct lp2p__gs_hb {
    lp2p__gs_out *out;
    int n;
} lp2p__gs_hb;

static lp2p__gs_out *lp2p__gs_hb_out(lp2p__gs_hb *hb, lp2p__ps_peer *p) {
    for (int i = 0; i < hb->n; i++)
        if (hb->out[i].p == p) return &hb->out[i];
    return NULL; /* every peer has a slot (allocated per heartbeat) */
}

/* Mesh larger than d_hi: keep the d_score best, fill up to d at random, keep d_out outbound
 * peers among the d (go heartbeat), prune the rest with peer exchange. */
static void lp2p__gs_trim_mesh(lp2p_pubsub *ps, lp2p__ps_topic *t, lp2p__gs_hb *hb) {
    int n = t->n_mesh, d = ps->cfg.d;
    lp2p__gs_scored *v = (lp2p__gs_scored *)lp2p__alloc(ps->ctx, sizeof *v * (size_t)n);
    if (!v) return;
    lp2p__gs_shuffle(ps, (void **)t->mesh, n);
    for (int i = 0; i < n; i++) v[i].p = t->mesh[i], v[i].score = lp2p__score(ps, t->mesh[i]);
    qsort(v, (size_t)n, sizeof *v, lp2p__gs_by_score_desc);
    for (int i = n - 1; i > ps->cfg.d_score; i--) { /* shuffle the tail after the best d_score */
        int j = ps->cfg.d_score + (int)(lp2p__gs_rand(ps) % (uint64_t)(i - ps->cfg.d_score + 1));
        lp2p__gs_scored tmp = v[i];
        v[i] = v[j], v[j] = tmp;
    }
    int outbound = 0;
    for (int i = 0; i < d; i++) outbound += v[i].p->outbound;
    for (int i = d; i < n && outbound < ps->cfg.d_out; i++) { /* bubble outbound peers into the first d */
        if (!v[i].p->outbound) continue;
        for (int j = d - 1; j >= 0; j--)
            if (!v[j].p->outbound) {
                lp2p__gs_scored tmp = v[i];
                v[i] = v[j], v[j] = tmp;
                outbound++;
                break;
            }
    }
    for (int i = d; i < n; i++) lp2p__gs_prune(ps, t, lp2p__gs_hb_out(hb, v[i].p), true, false);
    lp2p__free(ps->ctx, v, sizeof *v * (size_t)n);
}

static void lp2p__gs_graft_some(lp2p_pubsub *ps, lp2p__ps_topic *t, lp2p__gs_hb *hb, lp2p__gs_filter f, void *arg, int want) {
    int n = 0;
    lp2p__ps_peer **v = lp2p__gs_select(ps, t, f, arg, &n);
    for (int i = 0; v && i < n && want > 0; i++, want--) lp2p__gs_graft(ps, t, lp2p__gs_hb_out(hb, v[i]));
    lp2p__gs_select_free(ps, v);
}

static double lp2p__gs_median_score(lp2p_pubsub *ps, lp2p__ps_topic *t) {
    int n = t->n_mesh;
    lp2p__gs_scored *v = (lp2p__gs_scored *)lp2p__alloc(ps->ctx, sizeof *v * (size_t)n);
    if (!v) return 0;
    for (int i = 0; i < n; i++) v[i].p = t->mesh[i], v[i].score = lp2p__score(ps, t->mesh[i]);
    qsort(v, (size_t)n, sizeof *v, lp2p__gs_by_score_desc);
    double med = n % 2 ? v[n / 2].score : (v[n / 2 - 1].score + v[n / 2].score) / 2;
    lp2p__free(ps->ctx, v, sizeof *v * (size_t)n);
    return med;
}

static void lp2p__gs_maintain_mesh(lp2p_pubsub *ps, lp2p__ps_topic *t, lp2p__gs_hb *hb) {
    for (int i = 0; i < t->n_mesh;) { /* negative scores leave (no peer exchange for them) */
        lp2p__ps_peer *p = t->mesh[i];
        if (!lp2p__ps_peer_active(p) || !lp2p__ps_peer_in_topic(p, t)) {
            lp2p__gs_arr_del(t->mesh, &t->n_mesh, p);
            lp2p__score_prune(ps, p, t);
        } else if (lp2p__score(ps, p) < 0) {
            lp2p__gs_prune(ps, t, lp2p__gs_hb_out(hb, p), false, false);
        } else {
            i++;
        }
    }
    if (t->n_mesh < ps->cfg.d_lo) lp2p__gs_graft_some(ps, t, hb, lp2p__gs_can_graft, NULL, ps->cfg.d - t->n_mesh);
    if (t->n_mesh > ps->cfg.d_hi) lp2p__gs_trim_mesh(ps, t, hb);
    if (t->n_mesh >= ps->cfg.d_lo && ps->cfg.d_out) { /* keep the outbound quota */
        int outbound = 0;
        for (int i = 0; i < t->n_mesh; i++) outbound += t->mesh[i]->outbound;
        if (outbound < ps->cfg.d_out) lp2p__gs_graft_some(ps, t, hb, lp2p__gs_can_graft_out, NULL, ps->cfg.d_out - outbound);
    }
    if (ps->heartbeats % (uint64_t)ps->cfg.opportunistic_graft_ticks == 0 && t->n_mesh > 1 && !ps->cfg.no_scoring) {
        double med = lp2p__gs_median_score(ps, t);
        if (med < ps->th.opportunistic_graft)
            lp2p__gs_graft_some(ps, t, hb, lp2p__gs_can_graft_above, &med, ps->cfg.opportunistic_graft_peers);
    }
}

static void lp2p__gs_maintain_fanout(lp2p_pubsub *ps, lp2p__ps_topic *t, int64_t now) {
    if (!t->fanout_last_pub) return;
    if (t->fanout_last_pub + ps->cfg.fanout_ttl_ms < now) {
        t->n_fanout = 0, t->fanout_last_pub = 0;
        return;
    }
    for (int i = 0; i < t->n_fanout;) {
        lp2p__ps_peer *p = t->fanout[i];
        if (!lp2p__ps_peer_active(p) || !lp2p__ps_peer_in_topic(p, t) || lp2p__score(ps, p) < ps->th.publish)
            t->fanout[i] = t->fanout[--t->n_fanout];
        else
            i++;
    }
    if (t->n_fanout < ps->cfg.d) {
        int n = 0;
        lp2p__ps_peer **v = lp2p__gs_select(ps, t, lp2p__gs_fanout_ok, NULL, &n);
        for (int i = 0; v && i < n && t->n_fanout < ps->cfg.d; i++)
            lp2p__gs_arr_add(ps, &t->fanout, &t->n_fanout, &t->cap_fanout, v[i]);
        lp2p__gs_select_free(ps, v);
    }
}

/* IHAVE the topic's recent message IDs to max(d_lazy, gossip_factor x eligible) non-mesh peers. */
static void lp2p__gs_emit_gossip(lp2p_pubsub *ps, lp2p__ps_topic *t, lp2p__gs_hb *hb) {
    lp2p__ps_mcache *c = &ps->mcache;
    lp2p__ps_slice *ids = NULL;
    int n = 0, cap = 0;
    for (int w = 0; w < ps->cfg.history_gossip && w < c->len; w++)
        for (int i = 0; i < c->n[w]; i++) {
            lp2p__ps_msg *m = c->win[w][i];
            if (m->topic_len != t->name_len || memcmp(m->topic, t->name, t->name_len)) continue;
            if (n == cap) {
                int ncap = cap ? cap * 2 : 64;
                void *np = lp2p__realloc(ps->ctx, ids, sizeof *ids * (size_t)cap, sizeof *ids * (size_t)ncap);
                if (!np) goto done;
                ids = (lp2p__ps_slice *)np, cap = ncap;
            }
            ids[n].p = m->id, ids[n++].n = m->id_len;
        }
    if (!n) goto done;
    int k = 0;
    lp2p__ps_peer **v = lp2p__gs_select(ps, t, lp2p__gs_gossip_ok, NULL, &k);
    int target = LP2P__MAX(ps->cfg.d_lazy, (int)(ps->cfg.gossip_factor * k));
    for (int i = 0; v && i < k && i < target; i++) {
        int m = n;
        if (m > ps->cfg.max_ihave_length) { /* a random subset */
            for (int a = 0; a < ps->cfg.max_ihave_length; a++) {
                int b = a + (int)(lp2p__gs_rand(ps) % (uint64_t)(n - a));
                lp2p__ps_slice tmp = ids[a];
                ids[a] = ids[b], ids[b] = tmp;
            }
            m = ps->cfg.max_ihave_length;
        }
        lp2p__gs_put_ids(ps, lp2p__gs_hb_out(hb, v[i]), 1, t, ids, m);
        ps->stats.ihave_out++;
    }
    lp2p__gs_select_free(ps, v);
done:
    lp2p__free(ps->ctx, ids, sizeof *ids * (size_t)cap);
}

static void lp2p__gs_heartbeat(lp2p_pubsub *ps) {
    int64_t now = lp2p_now();
    lp2p__gs_hb hb = {NULL, 0};
    ps->heartbeats++;
    if (ps->cfg.floodsub) { /* floodsub: only the seen cache ages */
        lp2p__ps_idset_expire(&ps->seen, now);
        return;
    }
    hb.out = (lp2p__gs_out *)lp2p__zalloc(ps->ctx, sizeof *hb.out * (size_t)(ps->n_peers + 1));
    if (!hb.out) return;
    for (lp2p__ps_peer *p = ps->peers; p; p = p->next) {
        hb.out[hb.n++].p = p;
        p->ihave_in = p->iasked = p->idontwant_in = p->iwant_served = 0;
        lp2p__ps_idset_expire(&p->dontwant, (int64_t)ps->heartbeats);
    }
    lp2p__gs_promises_check(ps, now);
    lp2p__score_decay(ps);
    for (lp2p__ps_topic *t = ps->topics; t; t = t->next) {
        if (t->joined) lp2p__gs_maintain_mesh(ps, t, &hb);
        else lp2p__gs_maintain_fanout(ps, t, now);
        if (t->joined || t->fanout_last_pub) lp2p__gs_emit_gossip(ps, t, &hb);
        if (ps->heartbeats % 15 == 0) lp2p__gs_expire_backoff(t, now);
    }
    for (int i = 0; i < hb.n; i++) {
        lp2p__gs_flush(ps, &hb.out[i]);
        lp2p__buf_free(ps->ctx, &hb.out[i].ctl);
    }
    lp2p__free(ps->ctx, hb.out, sizeof *hb.out * (size_t)(ps->n_peers + 1));
    for (lp2p__ps_topic *t = ps->topics, *next; t; t = next) {
        next = t->next;
        lp2p__ps_topic_maybe_free(ps, t);
    }
    lp2p__gs_mcache_shift(ps);
    lp2p__ps_idset_expire(&ps->seen, now);
    if (ps->n_direct && (ps->heartbeats == 1 || ps->heartbeats % LP2P__GS_DIRECT_TICKS == 0))
        for (int i = 0; i < ps->n_direct; i++) {
            lp2p_peer_id id;
            if (lp2p__ma_split_p2p(&ps->direct[i], NULL, &id)) lp2p__ps_connect_async(ps, &id);
        }
}

static void lp2p__gs_heartbeat_task(void *arg) {
    lp2p_pubsub *ps = (lp2p_pubsub *)arg;
    int64_t next = lp2p_deadline_in(ps->cfg.heartbeat_initial_delay_ms);
    while (lp2p__sleep_until(ps->h->sched, next) == LP2P_OK && !ps->closing) {
        lp2p__gs_heartbeat(ps);
        next += ps->cfg.heartbeat_ms;
        if (next < lp2p_now()) next = lp2p_deadline_in(ps->cfg.heartbeat_ms); /* we fell behind: do not burst */
    }
}

LP2P__PRIV int lp2p__gs_init(lp2p_pubsub *ps) {
    lp2p__ps_mcache *c = &ps->mcache;
    lp2p__random(&ps->rng, sizeof ps->rng);
    ps->rng |= 1;
    c->len = ps->cfg.history_length;
    c->win = (lp2p__ps_msg ***)lp2p__zalloc(ps->ctx, sizeof *c->win * (size_t)c->len);
    c->n = (int *)lp2p__zalloc(ps->ctx, sizeof *c->n * (size_t)c->len);
    c->cap = (int *)lp2p__zalloc(ps->ctx, sizeof *c->cap * (size_t)c->len);
    if (!c->win || !c->n || !c->cap) return LP2P_ERR_NOMEM;
    ps->last_decay = lp2p_now();
    ps->heartbeat_task = lp2p__spawn(ps->h->sched, lp2p__gs_heartbeat_task, ps);
    return ps->heartbeat_task.id ? LP2P_OK : LP2P_ERR_LIMIT;
}

LP2P__PRIV void lp2p__gs_free(lp2p_pubsub *ps) {
    lp2p__ps_mcache *c = &ps->mcache;
    for (int w = 0; c->win && w < c->len; w++) {
        for (int i = 0; i < c->n[w]; i++) lp2p__ps_msg_unref(c->win[w][i]);
        lp2p__free(ps->ctx, c->win[w], sizeof *c->win[w] * (size_t)c->cap[w]);
    }
    lp2p__free(ps->ctx, c->win, sizeof *c->win * (size_t)c->len);
    lp2p__free(ps->ctx, c->n, sizeof *c->n * (size_t)c->len);
    lp2p__free(ps->ctx, c->cap, sizeof *c->cap * (size_t)c->len);
    lp2p__ps_idset_free(ps->ctx, &c->index);
    lp2p__free(ps->ctx, ps->promises, sizeof *ps->promises * (size_t)ps->cap_promises);
    memset(c, 0, sizeof *c);
}
