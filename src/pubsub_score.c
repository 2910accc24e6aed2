/* pubsub_score.c - L7: gossipsub v1.1 peer scoring (P1-P7, decay, retention).
 *
 * Spec: libp2p/specs pubsub/gossipsub/gossipsub-v1.1.md "Peer Scoring": the score is
 *   sum over topics of topic_weight * (P1 w1 + P2 w2 + P3 w3 + P3b w3b + P4 w4)  (capped)
 *   + P5 w5 + P6 w6 + P7 w7
 * with P1 time in mesh, P2 first message deliveries, P3 squared mesh delivery deficit, P3b
 * mesh failure penalty, P4 squared invalid messages, P5 application score, P6 squared IP
 * colocation surplus, P7 squared behaviour penalty above its threshold. Counters decay once per
 * decay interval; a disconnected peer's record is kept retain_score_ms (unless its score was
 * positive), so reconnecting does not wash a bad score. Semantics follow go-libp2p-pubsub
 * score.go. Stats are kept for topics we joined (the only ones whose messages we accept).
 * Depends on: pubsub.h. */
#include "pubsub.h"

typedef struct lp2p__ps_tstats {
    lp2p__ps_topic *t;
    bool in_mesh, mesh_active;
    int64_t graft_time, mesh_time;
    double first_deliveries, mesh_deliveries, mesh_failure_penalty, invalid_deliveries;
} lp2p__ps_tstats;

struct lp2p__ps_pstats {
    lp2p_peer_id id;
    bool connected;
    int64_t expire;
    lp2p__ps_tstats *topics;
    int n_topics, cap_topics;
    double behaviour_penalty;
    struct lp2p__ps_pstats *next;
};

LP2P_API void lp2p_pubsub_score_defaults(lp2p_pubsub_score_params *p, lp2p_pubsub_score_thresholds *t) {
    if (p) {
        memset(p, 0, sizeof *p);
        lp2p_pubsub_topic_score_params *tp = &p->topic_defaults;
        tp->topic_weight = 1;
        tp->time_in_mesh_weight = 0.01, tp->time_in_mesh_quantum_ms = 1000, tp->time_in_mesh_cap = 300;
        tp->first_message_deliveries_weight = 1, tp->first_message_deliveries_decay = 0.5;
        tp->first_message_deliveries_cap = 10;
        tp->mesh_message_deliveries_decay = 0.5, tp->mesh_message_deliveries_cap = 100;
        tp->mesh_message_deliveries_threshold = 1, tp->mesh_message_deliveries_window_ms = 10;
        tp->mesh_message_deliveries_activation_ms = 5000;
        tp->mesh_failure_penalty_decay = 0.5;
        tp->invalid_message_deliveries_weight = -10, tp->invalid_message_deliveries_decay = 0.99;
        p->app_specific_weight = 1;
        p->ip_colocation_factor_weight = 0, p->ip_colocation_factor_threshold = 10;
        p->behaviour_penalty_weight = -10, p->behaviour_penalty_threshold = 3, p->behaviour_penalty_decay = 0.9;
        p->decay_interval_ms = 1000, p->decay_to_zero = 0.01, p->retain_score_ms = 120000;
    }
    if (t) {
        t->gossip = -10, t->publish = -50, t->graylist = -80;
        t->accept_px = 10, t->opportunistic_graft = 5;
    }
}

static bool lp2p__decay_ok(double w, double decay) { return w == 0 || (decay > 0 && decay < 1); }

LP2P__PRIV int lp2p__score_check_topic_params(const lp2p_pubsub_topic_score_params *p) {
    bool ok = p->topic_weight >= 0 && p->time_in_mesh_weight >= 0 &&
              (p->time_in_mesh_weight == 0 || (p->time_in_mesh_quantum_ms > 0 && p->time_in_mesh_cap > 0)) &&
              p->first_message_deliveries_weight >= 0 &&
              lp2p__decay_ok(p->first_message_deliveries_weight, p->first_message_deliveries_decay) &&
              p->mesh_message_deliveries_weight <= 0 &&
              lp2p__decay_ok(p->mesh_message_deliveries_weight, p->mesh_message_deliveries_decay) &&
              (p->mesh_message_deliveries_weight == 0 ||
               (p->mesh_message_deliveries_threshold > 0 && p->mesh_message_deliveries_window_ms >= 0 &&
                p->mesh_message_deliveries_activation_ms >= 0)) &&
              p->mesh_failure_penalty_weight <= 0 &&
              lp2p__decay_ok(p->mesh_failure_penalty_weight, p->mesh_failure_penalty_decay) &&
              p->invalid_message_deliveries_weight <= 0 &&
              lp2p__decay_ok(p->invalid_message_deliveries_weight, p->invalid_message_deliveries_decay);
    return ok ? LP2P_OK : LP2P_ERR_INVALID;
}

static bool lp2p__score_on(const lp2p_pubsub *ps) { return !ps->cfg.floodsub && !ps->cfg.no_scoring; }

static const lp2p_pubsub_topic_score_params *lp2p__tparams(const lp2p_pubsub *ps, const lp2p__ps_topic *t) {
    return t->score ? t->score : &ps->sp.topic_defaults;
}

static lp2p__ps_tstats *lp2p__tstats(lp2p_pubsub *ps, lp2p__ps_peer *p, lp2p__ps_topic *t, bool create) {
    lp2p__ps_pstats *st = p->st;
    if (!st || !lp2p__score_on(ps)) return NULL;
    for (int i = 0; i < st->n_topics; i++)
        if (st->topics[i].t == t) return &st->topics[i];
    if (!create || !t->joined) return NULL;
    if (st->n_topics == st->cap_topics) {
        int ncap = st->cap_topics ? st->cap_topics * 2 : 4;
        void *np = lp2p__realloc(ps->ctx, st->topics, sizeof *st->topics * (size_t)st->cap_topics,
                                 sizeof *st->topics * (size_t)ncap);
        if (!np) return NULL;
        st->topics = (lp2p__ps_tstats *)np, st->cap_topics = ncap;
    }
    lp2p__ps_tstats *ts = &st->topics[st->n_topics++];
    memset(ts, 0, sizeof *ts);
    ts->t = t;
    return ts;
}

static double lp2p__topic_score(const lp2p__ps_tstats *ts, const lp2p_pubsub_topic_score_params *tp) {
    double s = 0;
    if (ts->in_mesh && tp->time_in_mesh_weight != 0) { /* P1 */
        double p1 = (double)ts->mesh_time / tp->time_in_mesh_quantum_ms;
        s += LP2P__MIN(p1, tp->time_in_mesh_cap) * tp->time_in_mesh_weight;
    }
    s += ts->first_deliveries * tp->first_message_deliveries_weight; /* P2 (capped when counted) */
    if (ts->mesh_active && ts->mesh_deliveries < tp->mesh_message_deliveries_threshold) { /* P3 */
        double deficit = tp->mesh_message_deliveries_threshold - ts->mesh_deliveries;
        s += deficit * deficit * tp->mesh_message_deliveries_weight;
    }
    s += ts->mesh_failure_penalty * tp->mesh_failure_penalty_weight;                    /* P3b */
    s += ts->invalid_deliveries * ts->invalid_deliveries * tp->invalid_message_deliveries_weight; /* P4 */
    return s * tp->topic_weight;
}

LP2P__PRIV double lp2p__score(lp2p_pubsub *ps, lp2p__ps_peer *p) {
    lp2p__ps_pstats *st = p->st;
    if (!st || !lp2p__score_on(ps)) return 0;
    double s = 0;
    for (int i = 0; i < st->n_topics; i++) s += lp2p__topic_score(&st->topics[i], lp2p__tparams(ps, st->topics[i].t));
    if (ps->sp.topic_score_cap > 0 && s > ps->sp.topic_score_cap) s = ps->sp.topic_score_cap;
    if (ps->sp.app_specific_score) s += ps->sp.app_specific_score(&p->id, ps->sp.app_specific_user) * ps->sp.app_specific_weight;
    if (ps->sp.ip_colocation_factor_weight != 0 && p->ip[0]) { /* P6 */
        int same = 0;
        for (lp2p__ps_peer *x = ps->peers; x; x = x->next) same += strcmp(x->ip, p->ip) == 0;
        if (same > ps->sp.ip_colocation_factor_threshold) {
            double surplus = same - ps->sp.ip_colocation_factor_threshold;
            s += surplus * surplus * ps->sp.ip_colocation_factor_weight;
        }
    }
    if (st->behaviour_penalty > ps->sp.behaviour_penalty_threshold) { /* P7 */
        double excess = st->behaviour_penalty - ps->sp.behaviour_penalty_threshold;
        s += excess * excess * ps->sp.behaviour_penalty_weight;
    }
    return s;
}

static lp2p__ps_pstats *lp2p__pstats_find(lp2p_pubsub *ps, const lp2p_peer_id *id) {
    for (lp2p__ps_pstats *st = ps->pstats; st; st = st->next)
        if (lp2p_peer_id_eq(&st->id, id)) return st;
    return NULL;
}

LP2P__PRIV void lp2p__score_add_peer(lp2p_pubsub *ps, lp2p__ps_peer *p) {
    lp2p__ps_pstats *st = lp2p__pstats_find(ps, &p->id); /* a retained record comes back */
    if (!st) {
        st = (lp2p__ps_pstats *)lp2p__zalloc(ps->ctx, sizeof *st);
        if (!st) return;
        st->id = p->id;
        st->next = ps->pstats, ps->pstats = st;
    }
    st->connected = true;
    p->st = st;
}

static void lp2p__tstats_prune(lp2p__ps_tstats *ts, const lp2p_pubsub_topic_score_params *tp) {
    if (ts->mesh_active && ts->mesh_deliveries < tp->mesh_message_deliveries_threshold) {
        double deficit = tp->mesh_message_deliveries_threshold - ts->mesh_deliveries;
        ts->mesh_failure_penalty += deficit * deficit;
    }
    ts->in_mesh = false, ts->mesh_active = false;
}

static void lp2p__pstats_free(lp2p_pubsub *ps, lp2p__ps_pstats *st) {
    lp2p__free(ps->ctx, st->topics, sizeof *st->topics * (size_t)st->cap_topics);
    lp2p__free(ps->ctx, st, sizeof *st);
}

LP2P__PRIV void lp2p__score_remove_peer(lp2p_pubsub *ps, lp2p__ps_peer *p) {
    lp2p__ps_pstats *st = p->st;
    if (!st) return;
    double score = lp2p__score(ps, p);
    for (int i = 0; i < st->n_topics; i++)
        if (st->topics[i].in_mesh) lp2p__tstats_prune(&st->topics[i], lp2p__tparams(ps, st->topics[i].t));
    p->st = NULL;
    st->connected = false;
    st->expire = lp2p_now() + ps->sp.retain_score_ms;
    if (score > 0 || ps->closing) { /* nothing to hold against it (go forgets positive scores at once) */
        for (lp2p__ps_pstats **pp = &ps->pstats; *pp; pp = &(*pp)->next)
            if (*pp == st) {
                *pp = st->next;
                break;
            }
        lp2p__pstats_free(ps, st);
    }
}

LP2P__PRIV void lp2p__score_graft(lp2p_pubsub *ps, lp2p__ps_peer *p, lp2p__ps_topic *t) {
    lp2p__ps_tstats *ts = lp2p__tstats(ps, p, t, true);
    if (!ts) return;
    ts->in_mesh = true, ts->mesh_active = false;
    ts->graft_time = lp2p_now(), ts->mesh_time = 0;
}

LP2P__PRIV void lp2p__score_prune(lp2p_pubsub *ps, lp2p__ps_peer *p, lp2p__ps_topic *t) {
    lp2p__ps_tstats *ts = lp2p__tstats(ps, p, t, false);
    if (ts) lp2p__tstats_prune(ts, lp2p__tparams(ps, t));
}

LP2P__PRIV void lp2p__score_first_delivery(lp2p_pubsub *ps, lp2p__ps_peer *p, lp2p__ps_topic *t) {
    lp2p__ps_tstats *ts = lp2p__tstats(ps, p, t, true);
    if (!ts) return;
    const lp2p_pubsub_topic_score_params *tp = lp2p__tparams(ps, t);
    ts->first_deliveries = LP2P__MIN(ts->first_deliveries + 1, tp->first_message_deliveries_cap);
    if (ts->in_mesh) ts->mesh_deliveries = LP2P__MIN(ts->mesh_deliveries + 1, tp->mesh_message_deliveries_cap);
}

LP2P__PRIV void lp2p__score_duplicate(lp2p_pubsub *ps, lp2p__ps_peer *p, lp2p__ps_topic *t, int64_t validated_at) {
    lp2p__ps_tstats *ts = lp2p__tstats(ps, p, t, false);
    if (!ts || !ts->in_mesh) return;
    const lp2p_pubsub_topic_score_params *tp = lp2p__tparams(ps, t);
    if (lp2p_now() - validated_at <= tp->mesh_message_deliveries_window_ms) /* near-first copies count (P3) */
        ts->mesh_deliveries = LP2P__MIN(ts->mesh_deliveries + 1, tp->mesh_message_deliveries_cap);
}

LP2P__PRIV void lp2p__score_invalid(lp2p_pubsub *ps, lp2p__ps_peer *p, lp2p__ps_topic *t) {
    lp2p__ps_tstats *ts = lp2p__tstats(ps, p, t, true);
    if (ts) ts->invalid_deliveries += 1;
}

LP2P__PRIV void lp2p__score_penalty(lp2p_pubsub *ps, lp2p__ps_peer *p, double count) {
    if (p->st && lp2p__score_on(ps)) p->st->behaviour_penalty += count;
}

static double lp2p__decayed(double v, double decay, double to_zero) {
    v *= decay;
    return v < to_zero ? 0 : v;
}

/* Once per decay interval (called every heartbeat): decay counters, refresh mesh times, drop
 * expired records of disconnected peers. */
LP2P__PRIV void lp2p__score_decay(lp2p_pubsub *ps) {
    int64_t now = lp2p_now();
    if (!lp2p__score_on(ps) || now - ps->last_decay < ps->sp.decay_interval_ms) return;
    ps->last_decay = now;
    double z = ps->sp.decay_to_zero;
    for (lp2p__ps_pstats **pp = &ps->pstats; *pp;) {
        lp2p__ps_pstats *st = *pp;
        if (!st->connected && st->expire < now) {
            *pp = st->next;
            lp2p__pstats_free(ps, st);
            continue;
        }
        for (int i = 0; i < st->n_topics; i++) {
            lp2p__ps_tstats *ts = &st->topics[i];
            const lp2p_pubsub_topic_score_params *tp = lp2p__tparams(ps, ts->t);
            ts->first_deliveries = lp2p__decayed(ts->first_deliveries, tp->first_message_deliveries_decay, z);
            ts->mesh_deliveries = lp2p__decayed(ts->mesh_deliveries, tp->mesh_message_deliveries_decay, z);
            ts->mesh_failure_penalty = lp2p__decayed(ts->mesh_failure_penalty, tp->mesh_failure_penalty_decay, z);
            ts->invalid_deliveries = lp2p__decayed(ts->invalid_deliveries, tp->invalid_message_deliveries_decay, z);
            if (ts->in_mesh) {
                ts->mesh_time = now - ts->graft_time;
                if (ts->mesh_time > tp->mesh_message_deliveries_activation_ms) ts->mesh_active = true;
            }
        }
        st->behaviour_penalty = lp2p__decayed(st->behaviour_penalty, ps->sp.behaviour_penalty_decay, z);
        pp = &st->next;
    }
}

/* A topic is going away: forget the stats that point at it. */
LP2P__PRIV void lp2p__score_topic_freed(lp2p_pubsub *ps, lp2p__ps_topic *t) {
    for (lp2p__ps_pstats *st = ps->pstats; st; st = st->next)
        for (int i = 0; i < st->n_topics;)
            if (st->topics[i].t == t) st->topics[i] = st->topics[--st->n_topics];
            else i++;
}

LP2P__PRIV void lp2p__score_free(lp2p_pubsub *ps) {
    while (ps->pstats) {
        lp2p__ps_pstats *st = ps->pstats;
        ps->pstats = st->next;
        lp2p__pstats_free(ps, st);
    }
}

LP2P__PRIV int lp2p__score_lookup(lp2p_pubsub *ps, const lp2p_peer_id *id, double *out) {
    lp2p__ps_peer *p = lp2p__ps_peer_find(ps, id);
    if (p) {
        *out = lp2p__score(ps, p);
        return LP2P_OK;
    }
    lp2p__ps_pstats *st = lp2p__pstats_find(ps, id);
    if (!st || !lp2p__score_on(ps)) return LP2P_ERR_NOTFOUND;
    lp2p__ps_peer tmp; /* a retained record: score it as a peer without an address */
    memset(&tmp, 0, sizeof tmp);
    tmp.id = *id, tmp.st = st;
    *out = lp2p__score(ps, &tmp);
    return LP2P_OK;
}
