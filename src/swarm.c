/* swarm.c - L5: listeners, dialing (dedup, limits), the connection upgrader, the connection
 * table and the peerstore.
 *
 * Upgrade order (libp2p/specs connections/README.md): multistream-select -> /noise ->
 * (muxer from the Noise early negotiation, inlined-muxer-negotiation.md, or multistream) ->
 * /yamux/1.0.0. The dialer pipelines the multistream header, the /noise proposal and the
 * first Noise message in one write (lazy select, as rust's V1Lazy), so a dial costs the TCP
 * handshake + 1.5 RTT of Noise before the first stream.
 * Depends on: host.h (tcp, mss, noise, yamux, multiaddr, crypto, runtime). */
#include "host.h"

static const char *const lp2p__muxers[] = {LP2P__YAMUX_PROTO};

/* ---- peerstore ------------------------------------------------------------------------ */
LP2P__PRIV lp2p__peer *lp2p__peerstore_get(lp2p_host *h, const lp2p_peer_id *id, bool create) {
    for (lp2p__peer *p = h->peers; p; p = p->next)
        if (lp2p_peer_id_eq(&p->id, id)) return p;
    if (!create) return NULL;
    lp2p__peer *p = (lp2p__peer *)lp2p__zalloc(&h->ctx, sizeof *p);
    if (!p) return NULL;
    p->id = *id;
    p->next = h->peers;
    h->peers = p;
    return p;
}

LP2P__PRIV void lp2p__peerstore_add_addr(lp2p_host *h, const lp2p_peer_id *id, const lp2p__ma *ma, int64_t ttl_ms) {
    lp2p__peer *p = lp2p__peerstore_get(h, id, true);
    lp2p__ma base;
    if (!p) return;
    lp2p__ma_split_p2p(ma, &base, NULL);
    int64_t exp = ttl_ms < 0 ? LP2P_FOREVER : lp2p_now() + ttl_ms;
    int slot = -1, oldest = 0;
    for (int i = 0; i < p->n_addrs; i++) {
        if (lp2p__ma_eq(&p->addrs[i].ma, &base)) {
            slot = i;
            break;
        }
        if (p->addrs[i].expires >= 0 &&
            (p->addrs[oldest].expires < 0 || p->addrs[i].expires < p->addrs[oldest].expires))
            oldest = i;
    }
    if (slot < 0 && p->n_addrs == p->cap_addrs && p->cap_addrs < LP2P__MAX_PEER_ADDRS) {
        /* most peers (dialers without listen addresses) never get one: no array for them */
        int cap = p->cap_addrs ? LP2P__MIN(p->cap_addrs * 2, LP2P__MAX_PEER_ADDRS) : 2;
        lp2p__peer_addr *a = (lp2p__peer_addr *)lp2p__realloc(&h->ctx, p->addrs, sizeof *a * (size_t)p->cap_addrs,
                                                                sizeof *a * (size_t)cap);
        if (a) p->addrs = a, p->cap_addrs = cap;
    }
    if (slot < 0 && p->n_addrs == 0 && p->cap_addrs == 0) return; /* out of memory: not kept */
    if (slot < 0) slot = p->n_addrs < p->cap_addrs ? p->n_addrs++ : oldest;
    else if (p->addrs[slot].expires < 0 || (exp >= 0 && p->addrs[slot].expires > exp)) return; /* keep the longer TTL */
    p->addrs[slot].ma = base;
    p->addrs[slot].expires = exp;
}

static void lp2p__free_strv(lp2p__ctx *ctx, char **v, int n) {
    for (int i = 0; i < n; i++) lp2p__strfree(ctx, v[i]);
    lp2p__free(ctx, v, sizeof(char *) * (size_t)n);
}

LP2P__PRIV void lp2p__peerstore_set_protocols(lp2p_host *h, lp2p__peer *p, char **protos, int n) {
    lp2p__free_strv(&h->ctx, p->protocols, p->n_protocols);
    p->protocols = protos, p->n_protocols = n;
}

static void lp2p__peer_free(lp2p_host *h, lp2p__peer *p) {
    lp2p__free(&h->ctx, p->pubkey, p->pubkey_len);
    lp2p__free(&h->ctx, p->addrs, sizeof *p->addrs * (size_t)p->cap_addrs);
    lp2p__free_strv(&h->ctx, p->protocols, p->n_protocols);
    lp2p__strfree(&h->ctx, p->agent_version);
    lp2p__strfree(&h->ctx, p->protocol_version);
    lp2p__free(&h->ctx, p, sizeof *p);
}

LP2P__PRIV void lp2p__peerstore_free(lp2p_host *h) {
    while (h->peers) {
        lp2p__peer *p = h->peers;
        h->peers = p->next;
        lp2p__peer_free(h, p);
    }
}

/* Forget peers we are not connected to whose addresses have all expired (peers heard of in
 * DHT answers would otherwise pile up forever). */
LP2P__PRIV void lp2p__peerstore_gc(lp2p_host *h, int64_t now) {
    for (lp2p__peer **pp = &h->peers; *pp;) {
        lp2p__peer *p = *pp;
        bool keep = lp2p__swarm_find_conn(h, &p->id) != NULL;
        for (int i = 0; i < p->n_addrs && !keep; i++) keep = p->addrs[i].expires < 0 || p->addrs[i].expires >= now;
        for (lp2p__dial *d = h->dials; d && !keep; d = d->next) keep = lp2p_peer_id_eq(&d->peer, &p->id);
        if (keep) {
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        lp2p__peer_free(h, p);
    }
}

/* ---- connections ------------------------------------------------------------------------ */
/* A connection is freed by the reaper (never inside its own session's reader task) once it
 * is closed and nothing references it. */
LP2P__PRIV void lp2p__conn_unref(lp2p__conn *c) {
    if (c && --c->refs == 0) {
        c->next = c->h->graveyard;
        c->h->graveyard = c;
    }
}

LP2P__PRIV void lp2p__swarm_reap(lp2p_host *h) {
    while (h->graveyard) {
        lp2p__conn *c = h->graveyard;
        h->graveyard = c->next;
        if (c->mux) lp2p__yamux_free(c->mux);
        lp2p__free(&h->ctx, c, sizeof *c);
    }
}


LP2P__PRIV lp2p__conn *lp2p__swarm_find_conn(lp2p_host *h, const lp2p_peer_id *peer) {
    for (lp2p__conn *c = h->conns; c; c = c->next)
        if (!c->closed && lp2p_peer_id_eq(&c->peer, peer)) return c;
    return NULL;
}

LP2P__PRIV void lp2p__swarm_add_notifee(lp2p_host *h, lp2p__notifee *n) {
    n->next = h->notifees;
    h->notifees = n;
}

LP2P__PRIV void lp2p__swarm_remove_notifee(lp2p_host *h, lp2p__notifee *n) {
    for (lp2p__notifee **pp = &h->notifees; *pp; pp = &(*pp)->next)
        if (*pp == n) {
            *pp = n->next;
            return;
        }
}

static void lp2p__conn_unlink(lp2p__conn *c) {
    lp2p_host *h = c->h;
    for (lp2p__conn **pp = &h->conns; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            h->n_conns--;
            break;
        }
}

/* yamux session ended: runs in its reader task, so the session is freed later (last unref). */
static void lp2p__conn_on_close(void *user, lp2p__yamux *y, int err) {
    lp2p__conn *c = (lp2p__conn *)user;
    lp2p_host *h = c->h;
    char id[LP2P_PEER_ID_STRLEN];
    (void)y;
    if (c->closed) return;
    c->closed = true;
    lp2p__conn_unlink(c);
    c->identified = true;
    lp2p__waitq_wake_all(h->sched, &c->identify_wait);
    lp2p_peer_id_str(&c->peer, id, sizeof id);
    LP2P__DEBUG(&h->ctx, "connection to %s closed: %s", id, lp2p_strerror(err));
    for (lp2p__notifee *n = h->notifees; n; n = n->next)
        if (n->disconnected) n->disconnected(n->user, c);
    if (!h->freeing) lp2p__host_emit(h, LP2P_EVENT_PEER_DISCONNECTED, &c->peer, NULL, NULL, NULL, err);
    c->next = NULL;
    lp2p__conn_unref(c); /* the host list's reference */
}

/* Close the session (GoAway); the connection leaves the host's table at once. */
LP2P__PRIV void lp2p__conn_close(lp2p__conn *c) {
    if (!c->closed && c->mux) lp2p__yamux_close(c->mux);
    if (!c->closed) lp2p__conn_on_close(c, c->mux, LP2P_ERR_CLOSED); /* the session reports it later, or not */
}

static void lp2p__conn_on_stream(void *user, lp2p__yamux *y, lp2p__pipe *stream) {
    (void)y;
    lp2p__host_on_stream((lp2p__conn *)user, stream);
}

/* Wrap an upgraded secure pipe into a connection and announce it. Takes ownership of secure. */
static int lp2p__conn_setup(lp2p_host *h, lp2p__pipe *secure, const lp2p__noise_result *nr, bool outbound,
                            const lp2p__ma *local, const lp2p__ma *remote, lp2p__conn **out) {
    lp2p__conn *c = (lp2p__conn *)lp2p__zalloc(&h->ctx, sizeof *c);
    if (!c) {
        secure->vt->reset(secure);
        return LP2P_ERR_NOMEM;
    }
    c->h = h, c->peer = nr->remote_id, c->outbound = outbound, c->opened_at = lp2p_now();
    if (local) c->local = *local;
    if (remote) c->remote = *remote;
    c->refs = 1; /* the host list's; callers that keep c take their own */
    lp2p__yamux_cfg ycfg;
    memset(&ycfg, 0, sizeof ycfg);
    ycfg.is_client = outbound;
    ycfg.init_window = (uint32_t)h->cfg.stream_window;
    ycfg.max_window = (uint32_t)h->cfg.max_stream_buffer;
    ycfg.max_inbound = h->cfg.max_streams_per_conn;
    ycfg.keepalive_ms = h->cfg.keepalive_ms;
    ycfg.on_stream = lp2p__conn_on_stream;
    ycfg.on_close = lp2p__conn_on_close;
    ycfg.user = c;
    int rc = lp2p__yamux_new(h->sched, secure, &ycfg, &c->mux); /* owns secure, also on failure */
    if (rc) {
        lp2p__free(&h->ctx, c, sizeof *c);
        return rc;
    }
    c->next = h->conns;
    h->conns = c;
    h->n_conns++;
    lp2p__peer *p = lp2p__peerstore_get(h, &c->peer, true);
    if (p && !p->pubkey && nr->remote_pubkey_len) {
        p->pubkey = (uint8_t *)lp2p__alloc(&h->ctx, nr->remote_pubkey_len);
        if (p->pubkey) memcpy(p->pubkey, nr->remote_pubkey, nr->remote_pubkey_len), p->pubkey_len = nr->remote_pubkey_len;
    }
    if (outbound && remote) lp2p__peerstore_add_addr(h, &c->peer, remote, 60 * 60 * 1000);
    char addr[LP2P__MA_STRLEN];
    if (remote) lp2p__ma_str(remote, addr, sizeof addr);
    lp2p__host_emit(h, LP2P_EVENT_PEER_CONNECTED, &c->peer, remote ? addr : NULL, NULL, NULL, 0);
    for (lp2p__notifee *n = h->notifees; n; n = n->next)
        if (n->connected) n->connected(n->user, c);
    *out = c;
    return LP2P_OK;
}

/* ---- upgrade (both roles) ------------------------------------------------------------------ */
static bool lp2p__match_noise(void *user, const char *proto) {
    (void)user;
    return strcmp(proto, LP2P__NOISE_PROTO) == 0;
}
static bool lp2p__match_yamux(void *user, const char *proto) {
    (void)user;
    return strcmp(proto, LP2P__YAMUX_PROTO) == 0;
}
static int lp2p__list_noise(void *user, const char **protos, int max) {
    (void)user;
    if (max > 0) protos[0] = LP2P__NOISE_PROTO;
    return 1;
}
static int lp2p__list_yamux(void *user, const char **protos, int max) {
    (void)user;
    if (max > 0) protos[0] = LP2P__YAMUX_PROTO;
    return 1;
}

/* Secure + multiplex raw. raw is always consumed (owned by the connection or freed). */
static int lp2p__upgrade(lp2p_host *h, lp2p__pipe *raw, bool outbound, const lp2p_peer_id *expected,
                         const lp2p__ma *local, const lp2p__ma *remote, lp2p__conn **out, int64_t deadline) {
    char proto[LP2P__MSS_MAX + 1];
    lp2p__pipe *p = raw, *secure = NULL;
    lp2p__noise_result *nr = (lp2p__noise_result *)lp2p__alloc(&h->ctx, sizeof *nr);
    int rc;
    if (!nr) {
        raw->vt->reset(raw);
        return LP2P_ERR_NOMEM;
    }
    if (outbound) rc = lp2p__mss_lazy(&h->ctx, raw, LP2P__NOISE_PROTO, &p);
    else rc = lp2p__mss_handle(raw, lp2p__match_noise, lp2p__list_noise, NULL, proto, sizeof proto, deadline);
    if (rc < 0) goto fail;
    rc = lp2p__noise_handshake(&h->ctx, p, &h->identity, outbound, expected, lp2p__muxers, 1, &secure, nr, deadline);
    if (rc) goto fail;
    p = secure;
    if (!nr->muxer[0]) { /* the peer did not negotiate a muxer inside Noise: multistream it */
        if (outbound) rc = lp2p__mss_select(secure, lp2p__muxers, 1, deadline);
        else rc = lp2p__mss_handle(secure, lp2p__match_yamux, lp2p__list_yamux, NULL, proto, sizeof proto, deadline);
        if (rc < 0) goto fail;
    } else if (strcmp(nr->muxer, LP2P__YAMUX_PROTO) != 0) {
        rc = LP2P_ERR_HANDSHAKE;
        goto fail;
    }
    rc = lp2p__conn_setup(h, secure, nr, outbound, local, remote, out);
    lp2p__free(&h->ctx, nr, sizeof *nr);
    return rc;
fail:
    p->vt->reset(p);
    lp2p__free(&h->ctx, nr, sizeof *nr);
    return rc;
}

/* ---- listening ------------------------------------------------------------------------------ */
typedef struct lp2p__inbound {
    lp2p_host *h;
    lp2p__pipe *raw;
    lp2p__ma local, remote;
} lp2p__inbound;

static void lp2p__inbound_task(void *arg) {
    lp2p__inbound *in = (lp2p__inbound *)arg;
    lp2p_host *h = in->h;
    lp2p__conn *c = NULL;
    char addr[LP2P__MA_STRLEN];
    int rc = lp2p__upgrade(h, in->raw, false, NULL, &in->local, &in->remote, &c,
                           lp2p_deadline_in(h->cfg.handshake_timeout_ms));
    if (rc) {
        lp2p__ma_str(&in->remote, addr, sizeof addr);
        LP2P__INFO(&h->ctx, "inbound connection from %s failed to upgrade: %s", addr, lp2p_strerror(rc));
    }
    h->n_inbound--; /* inbound upgrades count as pending connections */
    lp2p__free(&h->ctx, in, sizeof *in);
}

static void lp2p__accept_task(void *arg) {
    lp2p__listener *l = (lp2p__listener *)arg;
    lp2p_host *h = l->h;
    while (l->tcp) { /* NULL: the host closed it before this task ever ran */
        lp2p__inbound *in = (lp2p__inbound *)lp2p__zalloc(&h->ctx, sizeof *in);
        if (!in) {
            lp2p__sleep_until(h->sched, lp2p_deadline_in(100));
            continue;
        }
        in->h = h;
        int rc = lp2p__tcp_accept(l->tcp, &in->raw, &in->remote, LP2P_FOREVER);
        if (rc) {
            lp2p__free(&h->ctx, in, sizeof *in);
            if (rc == LP2P_ERR_CANCELED || rc == LP2P_ERR_CLOSED) return;
            LP2P__WARN(&h->ctx, rc, "accept failed: %s", lp2p_strerror(rc));
            if (lp2p__sleep_until(h->sched, lp2p_deadline_in(100)) == LP2P_ERR_CANCELED) return;
            continue;
        }
        in->local = l->addr;
        if (h->n_conns + h->n_inbound >= h->cfg.max_connections) {
            LP2P__WARN(&h->ctx, LP2P_ERR_LIMIT, "max_connections=%d reached: inbound connection refused",
                       h->cfg.max_connections);
            in->raw->vt->reset(in->raw);
            lp2p__free(&h->ctx, in, sizeof *in);
            continue;
        }
        h->n_inbound++;
        if (!lp2p__spawn(h->sched, lp2p__inbound_task, in).id) {
            h->n_inbound--;
            in->raw->vt->reset(in->raw);
            lp2p__free(&h->ctx, in, sizeof *in);
        }
    }
}

LP2P__PRIV int lp2p__swarm_listen(lp2p_host *h, const char *text) {
    lp2p__ma ma;
    const char *why = NULL;
    int rc = lp2p__ma_parse(text, &ma, &why);
    if (rc) {
        LP2P__WARN(&h->ctx, rc, "listen address '%s': %s", text, why ? why : "malformed");
        return rc;
    }
    lp2p__listener *l = (lp2p__listener *)lp2p__zalloc(&h->ctx, sizeof *l);
    if (!l) return LP2P_ERR_NOMEM;
    l->h = h;
    rc = lp2p__tcp_listen(h->sched, &ma, &l->tcp, &l->addr);
    if (rc) {
        LP2P__WARN(&h->ctx, rc, "cannot listen on %s: %s", text, lp2p_strerror(rc));
        lp2p__free(&h->ctx, l, sizeof *l);
        return rc;
    }
    l->task = lp2p__spawn(h->sched, lp2p__accept_task, l);
    if (!l->task.id) {
        lp2p__tcp_listener_free(l->tcp);
        lp2p__free(&h->ctx, l, sizeof *l);
        return LP2P_ERR_LIMIT;
    }
    l->next = h->listeners;
    h->listeners = l;
    lp2p__host_addrs_changed(h);
    char addr[LP2P__MA_STRLEN];
    lp2p__ma_str(&l->addr, addr, sizeof addr);
    lp2p__host_emit(h, LP2P_EVENT_LISTEN, &h->identity.id, addr, NULL, NULL, 0);
    return LP2P_OK;
}

/* ---- dialing ------------------------------------------------------------------------------------ */
/* Resolve peer_or_addr into a peer ID and the addresses to try (n_out). */
static int lp2p__dial_targets(lp2p_host *h, const char *peer_or_addr, lp2p_peer_id *peer, lp2p__ma *addrs, int max,
                              int *n_out) {
    int n = 0;
    if (peer_or_addr[0] == '/') {
        lp2p__ma ma;
        const char *why = NULL;
        int rc = lp2p__ma_parse(peer_or_addr, &ma, &why);
        if (rc) {
            LP2P__WARN(&h->ctx, rc, "dial '%s': %s", peer_or_addr, why ? why : "malformed multiaddr");
            return rc;
        }
        if (!lp2p__ma_split_p2p(&ma, &addrs[0], peer)) {
            LP2P__WARN(&h->ctx, LP2P_ERR_BADADDR, "dial '%s': the address must end in /p2p/<peer-id>", peer_or_addr);
            return LP2P_ERR_BADADDR;
        }
        n = 1;
    } else if (lp2p_peer_id_parse(peer_or_addr, peer) != LP2P_OK) {
        LP2P__WARN(&h->ctx, LP2P_ERR_BADADDR, "dial '%s': neither a multiaddr nor a peer ID", peer_or_addr);
        return LP2P_ERR_BADADDR;
    }
    lp2p__peer *p = lp2p__peerstore_get(h, peer, false);
    int64_t now = lp2p_now();
    for (int i = 0; p && i < p->n_addrs && n < max; i++) {
        if (p->addrs[i].expires >= 0 && p->addrs[i].expires < now) continue;
        if (!lp2p__ma_is_tcp(&p->addrs[i].ma)) continue;
        if (n > 0 && lp2p__ma_eq(&p->addrs[i].ma, &addrs[0])) continue;
        addrs[n++] = p->addrs[i].ma;
    }
    *n_out = n;
    return LP2P_OK;
}

static int lp2p__dial_addrs(lp2p_host *h, const lp2p_peer_id *peer, const lp2p__ma *addrs, int n, lp2p__conn **out,
                            int64_t deadline) {
    int rc = LP2P_ERR_NOADDR;
    char text[LP2P__MA_STRLEN];
    for (int i = 0; i < n; i++) {
        lp2p__pipe *raw = NULL;
        lp2p__ma local, remote;
        if (!lp2p__ma_is_tcp(&addrs[i])) continue;
        rc = lp2p__tcp_dial(h->sched, &addrs[i], 0, &raw, &local, &remote, deadline);
        if (rc == LP2P_OK) rc = lp2p__upgrade(h, raw, true, peer, &local, &addrs[i], out, deadline);
        if (rc == LP2P_OK) return LP2P_OK;
        lp2p__ma_str(&addrs[i], text, sizeof text);
        LP2P__INFO(&h->ctx, "dial %s failed: %s", text, lp2p_strerror(rc));
        if (rc == LP2P_ERR_CANCELED || rc == LP2P_ERR_TIMEOUT) break;
    }
    if (n > 1 && rc != LP2P_ERR_CANCELED && rc != LP2P_ERR_TIMEOUT && rc != LP2P_ERR_HANDSHAKE)
        rc = LP2P_ERR_UNREACHABLE;
    return rc;
}

LP2P__PRIV int lp2p__swarm_connect(lp2p_host *h, const char *peer_or_addr, lp2p__conn **out, int64_t deadline) {
    lp2p_peer_id peer;
    lp2p__ma addrs[LP2P__MAX_PEER_ADDRS + 1];
    int n = 0, rc;
    if (!peer_or_addr) return LP2P_ERR_INVALID;
    rc = lp2p__dial_targets(h, peer_or_addr, &peer, addrs, (int)LP2P__COUNT(addrs), &n);
    if (rc) return rc;
    if (lp2p_peer_id_eq(&peer, &h->identity.id)) {
        LP2P__WARN(&h->ctx, LP2P_ERR_INVALID, "refusing to dial ourselves");
        return LP2P_ERR_INVALID;
    }
    for (;;) {
        lp2p__conn *c = lp2p__swarm_find_conn(h, &peer);
        if (c) {
            c->refs++;
            *out = c;
            return LP2P_OK;
        }
        lp2p__dial *d = h->dials;
        while (d && !lp2p_peer_id_eq(&d->peer, &peer)) d = d->next;
        if (!d) break;
        d->waiters++; /* a dial to this peer is in flight: wait for it, then look again */
        rc = lp2p__waitq_wait(h->sched, &d->done, deadline);
        int result = d->result;
        if (--d->waiters == 0 && d->result != 1) lp2p__free(&h->ctx, d, sizeof *d);
        if (rc) return rc;
        if (result != LP2P_OK && result != 1) return result;
    }
    if (n == 0) return LP2P_ERR_NOADDR;
    if (h->n_dials >= h->cfg.max_pending_dials) {
        LP2P__WARN(&h->ctx, LP2P_ERR_LIMIT, "max_pending_dials=%d reached", h->cfg.max_pending_dials);
        return LP2P_ERR_LIMIT;
    }
    if (h->n_conns >= h->cfg.max_connections) {
        LP2P__WARN(&h->ctx, LP2P_ERR_LIMIT, "max_connections=%d reached", h->cfg.max_connections);
        return LP2P_ERR_LIMIT;
    }
    lp2p__dial *d = (lp2p__dial *)lp2p__zalloc(&h->ctx, sizeof *d);
    if (!d) return LP2P_ERR_NOMEM;
    d->peer = peer, d->result = 1;
    d->next = h->dials, h->dials = d, h->n_dials++;
    lp2p__conn *c = NULL;
    rc = lp2p__dial_addrs(h, &peer, addrs, n, &c, deadline);
    for (lp2p__dial **pp = &h->dials; *pp; pp = &(*pp)->next)
        if (*pp == d) {
            *pp = d->next;
            break;
        }
    h->n_dials--;
    d->result = rc;
    lp2p__waitq_wake_all(h->sched, &d->done);
    if (d->waiters == 0) lp2p__free(&h->ctx, d, sizeof *d);
    if (rc) return rc;
    c->refs++;
    *out = c;
    return LP2P_OK;
}

LP2P__PRIV void lp2p__swarm_close_all(lp2p_host *h) {
    for (lp2p__listener *l = h->listeners; l; l = l->next) {
        lp2p__task_cancel(h->sched, l->task);
        lp2p__tcp_listener_free(l->tcp);
        l->tcp = NULL;
    }
    while (h->conns) lp2p__conn_close(h->conns);
}
