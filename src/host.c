/* host.c - L6: the public surface: config defaults, host lifecycle and driving, the protocol
 * router, streams, events and tasks.
 *
 * Spec: libp2p/specs connections/README.md (protocol negotiation per stream).
 * Depends on: host.h (swarm and everything below). */
#include "host.h"

#include <stdio.h>

/* ---- config ------------------------------------------------------------------------------ */
static void lp2p__config_resolve(lp2p_config *c) {
#define LP2P__DEFAULT(field, value) \
    if (c->field == 0) c->field = (value)
    LP2P__DEFAULT(max_connections, 256);
    LP2P__DEFAULT(max_streams_per_conn, 1024);
    LP2P__DEFAULT(max_pending_dials, 64);
    LP2P__DEFAULT(max_stream_buffer, 16 << 20);
    LP2P__DEFAULT(stream_window, 256 << 10);
    LP2P__DEFAULT(keepalive_ms, 15000);
    LP2P__DEFAULT(handshake_timeout_ms, 10000);
    LP2P__DEFAULT(stack_size, 64 << 10);
    LP2P__DEFAULT(max_tasks, 65536);
    LP2P__DEFAULT(event_queue_size, 256);
#undef LP2P__DEFAULT
    if (c->stream_window < (256 << 10)) c->stream_window = 256 << 10; /* yamux minimum */
    if (c->max_stream_buffer < c->stream_window) c->max_stream_buffer = c->stream_window;
}

/* ---- events ------------------------------------------------------------------------------- */
static void lp2p__event_slot_clear(lp2p_host *h, lp2p__event_slot *s) {
    lp2p__strfree(&h->ctx, s->addr);
    lp2p__strfree(&h->ctx, s->protocol);
    s->addr = s->protocol = NULL;
}

LP2P__PRIV void lp2p__host_emit(lp2p_host *h, lp2p_event_type type, const lp2p_peer_id *peer, const char *addr,
                                const char *protocol, lp2p_stream *stream, int err) {
    int cap = h->cfg.event_queue_size;
    if (h->ev_count == cap) { /* full: drop the oldest (a stream event's stream is reset) */
        lp2p__event_slot *old = &h->events[h->ev_head];
        /* an app that never reads events (lp2p_host_run with handlers) loses nothing it wanted;
         * warn only when it does read them, or when an inbound stream is dropped */
        if (h->ev_read || old->ev.stream)
            LP2P__WARN(&h->ctx, LP2P_ERR_LIMIT, "event_queue_size=%d reached: dropping the oldest event", cap);
        if (old->ev.stream) lp2p_stream_reset(old->ev.stream);
        lp2p__event_slot_clear(h, old);
        h->ev_head = (h->ev_head + 1) % cap;
        h->ev_count--;
    }
    lp2p__event_slot *s = &h->events[(h->ev_head + h->ev_count) % cap];
    memset(s, 0, sizeof *s);
    s->ev.type = type;
    if (peer) s->ev.peer = *peer;
    if (addr) s->addr = lp2p__strdup(&h->ctx, addr);
    if (protocol) s->protocol = lp2p__strdup(&h->ctx, protocol);
    s->ev.stream = stream;
    s->ev.err = err;
    h->ev_count++;
}

LP2P_API bool lp2p_host_next_event(lp2p_host *h, lp2p_event *ev) {
    h->ev_read = true;
    lp2p__event_slot_clear(h, &h->ev_out);
    if (h->ev_count == 0) return false;
    h->ev_out = h->events[h->ev_head];
    h->ev_head = (h->ev_head + 1) % h->cfg.event_queue_size;
    h->ev_count--;
    *ev = h->ev_out.ev;
    ev->addr = h->ev_out.addr;
    ev->protocol = h->ev_out.protocol;
    return true;
}

/* ---- addresses --------------------------------------------------------------------------- */
LP2P__PRIV void lp2p__host_addrs_changed(lp2p_host *h) {
    for (int i = 0; i < h->n_addr_text; i++) lp2p__strfree(&h->ctx, h->addr_text[i]);
    lp2p__free(&h->ctx, h->addr_text, sizeof(char *) * (size_t)h->n_addr_text);
    h->addr_text = NULL, h->n_addr_text = 0;
    int n = 0;
    for (lp2p__listener *l = h->listeners; l; l = l->next) n++;
    if (!n) return;
    h->addr_text = (char **)lp2p__zalloc(&h->ctx, sizeof(char *) * (size_t)n);
    if (!h->addr_text) return;
    for (lp2p__listener *l = h->listeners; l; l = l->next) {
        lp2p__ma full = l->addr;
        char text[LP2P__MA_STRLEN];
        if (lp2p__ma_append_p2p(&full, &h->identity.id) || lp2p__ma_str(&full, text, sizeof text) < 0) continue;
        h->addr_text[h->n_addr_text++] = lp2p__strdup(&h->ctx, text);
    }
    if (h->identify) lp2p__identify_push_all(h);
}

LP2P_API int lp2p_host_addr_count(const lp2p_host *h) { return h->n_addr_text; }

LP2P__PRIV void lp2p__host_add_service(lp2p_host *h, lp2p__service *s) {
    s->next = h->services;
    h->services = s;
}

LP2P__PRIV void lp2p__host_remove_service(lp2p_host *h, lp2p__service *s) {
    for (lp2p__service **pp = &h->services; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            return;
        }
}

LP2P_API const char *lp2p_host_addr(const lp2p_host *h, int i) {
    return i >= 0 && i < h->n_addr_text ? h->addr_text[i] : NULL;
}

LP2P_API lp2p_peer_id lp2p_host_id(const lp2p_host *h) { return h->identity.id; }

/* ---- lifecycle ----------------------------------------------------------------------------- */
/* idle_timeout_ms (or a connection's own ephemeral_idle_ms): close connections that had no
 * stream for that long (checked every second). */
static void lp2p__close_idle(lp2p_host *h) {
    int64_t now = lp2p_now();
    for (lp2p__conn *c = h->conns, *next; c; c = next) {
        next = c->next;
        if (c->closed || !c->mux) continue;
        int limit = c->ephemeral_idle_ms > 0 ? c->ephemeral_idle_ms : h->cfg.idle_timeout_ms;
        if (limit <= 0 || lp2p__yamux_num_streams(c->mux) > 0) c->idle_since = 0;
        else if (!c->idle_since) c->idle_since = now;
        else if (now - c->idle_since >= limit) lp2p__conn_close(c);
    }
}

static void lp2p__housekeeping_task(void *arg) {
    lp2p_host *h = (lp2p_host *)arg;
    for (unsigned round = 1; lp2p__sleep_until(h->sched, lp2p_deadline_in(1000)) == LP2P_OK; round++) {
        lp2p__close_idle(h);
        lp2p__swarm_reap(h);
        lp2p__sched_trim(h->sched); /* idle connections keep only the stack pages they use */
        lp2p__cache_trim(&h->ctx);  /* and buffers nobody reused for a second go back */
        if (round % 10 == 0) lp2p__peerstore_gc(h, lp2p_now());
    }
}

LP2P_API int lp2p_host_new(const lp2p_config *cfg, lp2p_host **out) {
    lp2p_config zero;
    lp2p__ctx ctx;
    int rc;
    if (!out) return LP2P_ERR_INVALID;
    if (!cfg) memset(&zero, 0, sizeof zero), cfg = &zero;
    if (lp2p__crypto_init() != LP2P_OK) return LP2P_ERR_IO;
    lp2p__ctx_init(&ctx, &cfg->allocator, &cfg->logger, cfg->log_level);
    lp2p_host *h = (lp2p_host *)lp2p__zalloc(&ctx, sizeof *h);
    if (!h) return LP2P_ERR_NOMEM;
    h->ctx = ctx;
    h->ctx.cache = &h->cache;
    h->cfg = *cfg;
    lp2p__config_resolve(&h->cfg);
    memset(h->cfg.listen_addrs, 0, sizeof h->cfg.listen_addrs); /* not kept: caller's strings */
    h->cfg.agent_version = NULL;
    h->agent_version = lp2p__strdup(&h->ctx, cfg->agent_version ? cfg->agent_version : "libp2p.h/" LIBP2P_VERSION_STRING);
    h->events = (lp2p__event_slot *)lp2p__zalloc(&h->ctx, sizeof(lp2p__event_slot) * (size_t)h->cfg.event_queue_size);
    if (!h->agent_version || !h->events) {
        lp2p_host_free(h);
        return LP2P_ERR_NOMEM;
    }
    uint8_t seed[32];
    bool have_seed = cfg->use_identity_seed;
    for (int i = 0; i < 32 && !have_seed; i++) have_seed = cfg->identity_seed[i] != 0;
    if (have_seed) memcpy(seed, cfg->identity_seed, 32);
    else lp2p__random(seed, 32);
    lp2p__identity_from_seed(&h->identity, seed);
    memset(seed, 0, sizeof seed);
    lp2p__sched_cfg scfg = {(size_t)h->cfg.stack_size, h->cfg.max_tasks};
    rc = lp2p__sched_new(&h->ctx, &scfg, &h->sched);
    if (rc) {
        lp2p_host_free(h);
        return rc;
    }
    if ((rc = lp2p__identify_init(h)) || (!h->cfg.disable_ping_service && (rc = lp2p__ping_init(h)))) {
        lp2p_host_free(h);
        return rc;
    }
    lp2p__spawn(h->sched, lp2p__housekeeping_task, h);
    if (!cfg->no_listen) {
        const char *def = "/ip4/127.0.0.1/tcp/0";
        bool any = false;
        for (int i = 0; i < LP2P_MAX_LISTEN_ADDRS && !rc; i++)
            if (cfg->listen_addrs[i]) any = true, rc = lp2p__swarm_listen(h, cfg->listen_addrs[i]);
        if (!any) rc = lp2p__swarm_listen(h, def);
        if (rc) {
            lp2p_host_free(h);
            return rc;
        }
    }
    *out = h;
    return LP2P_OK;
}

LP2P_API void lp2p_host_free(lp2p_host *h) {
    if (!h) return;
    h->freeing = true;
    if (h->sched) {
        lp2p__swarm_close_all(h);
        lp2p__sched_free(h->sched);
    }
    while (h->services) { /* every task has ended: the services' memory can go */
        lp2p__service *sv = h->services;
        h->services = sv->next;
        sv->free(sv->self);
    }
    lp2p__swarm_reap(h);
    while (h->listeners) {
        lp2p__listener *l = h->listeners;
        h->listeners = l->next;
        lp2p__free(&h->ctx, l, sizeof *l);
    }
    lp2p__host_addrs_changed(h);
    while (h->dials) { /* only left if a dialer was canceled mid-dial */
        lp2p__dial *d = h->dials;
        h->dials = d->next;
        lp2p__free(&h->ctx, d, sizeof *d);
    }
    lp2p__identify_free(h);
    lp2p__perf_free(h);
    while (h->handlers) {
        lp2p__handler *x = h->handlers;
        h->handlers = x->next;
        lp2p__strfree(&h->ctx, x->protocol);
        lp2p__free(&h->ctx, x, sizeof *x);
    }
    lp2p__peerstore_free(h);
    if (h->events) {
        while (h->ev_count) {
            lp2p__event_slot_clear(h, &h->events[h->ev_head]);
            h->ev_head = (h->ev_head + 1) % h->cfg.event_queue_size;
            h->ev_count--;
        }
        lp2p__free(&h->ctx, h->events, sizeof(lp2p__event_slot) * (size_t)h->cfg.event_queue_size);
    }
    lp2p__event_slot_clear(h, &h->ev_out);
    lp2p__buf_free(&h->ctx, &h->info_text);
    lp2p__strfree(&h->ctx, h->agent_version);
    memset(&h->identity, 0, sizeof h->identity);
    lp2p__cache_drain(&h->ctx);
    lp2p__ctx ctx = h->ctx;
    lp2p__free(&ctx, h, sizeof *h);
}

LP2P_API int lp2p_host_poll(lp2p_host *h, int timeout_ms) {
    if (lp2p__task_current()) return LP2P_ERR_WOULDBLOCK;
    return lp2p__sched_poll(h->sched, timeout_ms);
}

LP2P_API int lp2p_host_run(lp2p_host *h) {
    if (lp2p__task_current()) return LP2P_ERR_WOULDBLOCK;
    return lp2p__sched_run(h->sched);
}

LP2P_API void lp2p_host_stop(lp2p_host *h) { lp2p__sched_stop(h->sched); }

LP2P_API int lp2p_host_post(lp2p_host *h, void (*fn)(void *arg), void *arg) { return lp2p__sched_post(h->sched, fn, arg); }

/* ---- tasks ------------------------------------------------------------------------------------ */
LP2P_API lp2p_task lp2p_go(lp2p_host *h, lp2p_task_fn fn, void *arg) { return lp2p__spawn(h->sched, fn, arg); }
LP2P_API int lp2p_task_cancel(lp2p_host *h, lp2p_task t) { return lp2p__task_cancel(h->sched, t); }
LP2P_API int lp2p_task_join(lp2p_host *h, lp2p_task t, int64_t deadline) { return lp2p__task_join(h->sched, t, deadline); }
LP2P_API bool lp2p_task_alive(lp2p_host *h, lp2p_task t) { return lp2p__task_alive(h->sched, t); }
LP2P_API int lp2p_sleep(lp2p_host *h, int64_t deadline) { return lp2p__sleep_until(h->sched, deadline); }
LP2P_API int lp2p_yield(lp2p_host *h) { return lp2p__yield(h->sched); }

/* ---- protocol router ---------------------------------------------------------------------------- */
static lp2p__handler *lp2p__find_handler(lp2p_host *h, const char *protocol) {
    for (lp2p__handler *x = h->handlers; x; x = x->next)
        if (strcmp(x->protocol, protocol) == 0) return x;
    return NULL;
}

LP2P_API int lp2p_host_handle(lp2p_host *h, const char *protocol, lp2p_handler_fn fn, void *user) {
    if (!protocol || !protocol[0] || strlen(protocol) >= LP2P__PROTO_MAX) return LP2P_ERR_INVALID;
    lp2p__handler *x = lp2p__find_handler(h, protocol);
    if (!x) {
        x = (lp2p__handler *)lp2p__zalloc(&h->ctx, sizeof *x);
        if (!x || !(x->protocol = lp2p__strdup(&h->ctx, protocol))) {
            lp2p__free(&h->ctx, x, sizeof *x);
            return LP2P_ERR_NOMEM;
        }
        x->next = h->handlers;
        h->handlers = x;
    }
    x->fn = fn, x->user = user;
    if (h->identify) lp2p__identify_push_all(h);
    return LP2P_OK;
}

LP2P_API int lp2p_host_unhandle(lp2p_host *h, const char *protocol) {
    for (lp2p__handler **pp = &h->handlers; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->protocol, protocol) == 0) {
            lp2p__handler *x = *pp;
            *pp = x->next;
            lp2p__strfree(&h->ctx, x->protocol);
            lp2p__free(&h->ctx, x, sizeof *x);
            if (h->identify) lp2p__identify_push_all(h);
            return LP2P_OK;
        }
    return LP2P_ERR_NOTFOUND;
}

LP2P__PRIV int lp2p__host_protocols(lp2p_host *h, const char **out, int max) {
    int n = 0;
    for (lp2p__handler *x = h->handlers; x; x = x->next) {
        if (n < max) out[n] = x->protocol;
        n++;
    }
    return n;
}

static bool lp2p__router_match(void *user, const char *proto) {
    return lp2p__find_handler((lp2p_host *)user, proto) != NULL;
}
static int lp2p__router_list(void *user, const char **protos, int max) {
    return lp2p__host_protocols((lp2p_host *)user, protos, max);
}

static lp2p_stream *lp2p__stream_new(lp2p__conn *c, lp2p__pipe *pipe, const char *protocol) {
    lp2p_stream *s = (lp2p_stream *)lp2p__zalloc(&c->h->ctx, sizeof *s);
    if (!s) return NULL;
    s->h = c->h, s->conn = c, s->pipe = pipe, s->peer = c->peer;
    snprintf(s->protocol, sizeof s->protocol, "%s", protocol);
    c->refs++;
    return s;
}

static void lp2p__stream_release(lp2p_stream *s) {
    lp2p__conn *c = s->conn;
    lp2p_host *h = s->h;
    lp2p__free(&h->ctx, s, sizeof *s);
    lp2p__conn_unref(c);
}

typedef struct lp2p__inbound_stream {
    lp2p__conn *conn;
    lp2p__pipe *pipe;
} lp2p__inbound_stream;

static void lp2p__inbound_stream_task(void *arg) {
    lp2p__inbound_stream in = *(lp2p__inbound_stream *)arg;
    lp2p_host *h = in.conn->h;
    char proto[LP2P__MSS_MAX + 1], id[LP2P_PEER_ID_STRLEN];
    lp2p__free(&h->ctx, arg, sizeof in);
    int rc = lp2p__mss_handle(in.pipe, lp2p__router_match, lp2p__router_list, h, proto, sizeof proto,
                              lp2p_deadline_in(h->cfg.handshake_timeout_ms));
    lp2p__handler *x = rc < 0 ? NULL : lp2p__find_handler(h, proto);
    if (!x) { /* negotiation failed, or the handler went away meanwhile */
        if (rc < 0 && rc != LP2P_ERR_EOF && rc != LP2P_ERR_RESET && rc != LP2P_ERR_CANCELED) {
            lp2p_peer_id_str(&in.conn->peer, id, sizeof id);
            LP2P__INFO(&h->ctx, "stream from %s: protocol negotiation failed: %s", id, lp2p_strerror(rc));
        }
        in.pipe->vt->reset(in.pipe);
        lp2p__conn_unref(in.conn);
        return;
    }
    lp2p_stream *s = lp2p__stream_new(in.conn, in.pipe, proto);
    lp2p__conn_unref(in.conn);
    if (!s) {
        in.pipe->vt->reset(in.pipe);
        return;
    }
    if (!x->fn) {
        lp2p__host_emit(h, LP2P_EVENT_STREAM, &s->peer, NULL, proto, s, 0);
        return;
    }
    s->in_handler = 1;
    x->fn(s, x->user);
    if (!s->released) lp2p_stream_close(s);
    lp2p__stream_release(s);
}

LP2P__PRIV void lp2p__host_on_stream(lp2p__conn *c, lp2p__pipe *stream) {
    lp2p_host *h = c->h;
    lp2p__inbound_stream *in = (lp2p__inbound_stream *)lp2p__alloc(&h->ctx, sizeof *in);
    if (!in) {
        stream->vt->reset(stream);
        return;
    }
    in->conn = c, in->pipe = stream;
    c->refs++;
    if (!lp2p__spawn(h->sched, lp2p__inbound_stream_task, in).id) {
        c->refs--;
        stream->vt->reset(stream);
        lp2p__free(&h->ctx, in, sizeof *in);
    }
}

/* ---- connecting --------------------------------------------------------------------------------- */
LP2P_API int lp2p_host_connect(lp2p_host *h, const char *peer_or_addr, int64_t deadline) {
    lp2p__conn *c = NULL;
    int rc = lp2p__swarm_connect(h, peer_or_addr, &c, deadline);
    if (rc) return rc;
    c->ephemeral_idle_ms = 0; /* the app wants this peer: keep the connection */
    lp2p__conn_unref(c);
    return LP2P_OK;
}

typedef struct lp2p__async_dial {
    lp2p_host *h;
    char *addr;
} lp2p__async_dial;

static void lp2p__async_dial_task(void *arg) {
    lp2p__async_dial *a = (lp2p__async_dial *)arg;
    lp2p_host *h = a->h;
    lp2p_peer_id peer;
    memset(&peer, 0, sizeof peer);
    int rc = lp2p_host_connect(h, a->addr, lp2p_deadline_in(h->cfg.handshake_timeout_ms * 3));
    if (rc) {
        lp2p__ma ma;
        if (a->addr[0] == '/') {
            if (lp2p__ma_parse(a->addr, &ma, NULL) == LP2P_OK) lp2p__ma_split_p2p(&ma, NULL, &peer);
        } else {
            lp2p_peer_id_parse(a->addr, &peer);
        }
        if (rc != LP2P_ERR_CANCELED) lp2p__host_emit(h, LP2P_EVENT_DIAL_FAILED, &peer, a->addr, NULL, NULL, rc);
    }
    lp2p__strfree(&h->ctx, a->addr);
    lp2p__free(&h->ctx, a, sizeof *a);
}

LP2P_API int lp2p_host_connect_async(lp2p_host *h, const char *peer_or_addr) {
    if (!peer_or_addr) return LP2P_ERR_INVALID;
    lp2p__async_dial *a = (lp2p__async_dial *)lp2p__zalloc(&h->ctx, sizeof *a);
    if (!a || !(a->addr = lp2p__strdup(&h->ctx, peer_or_addr))) {
        lp2p__free(&h->ctx, a, sizeof *a);
        return LP2P_ERR_NOMEM;
    }
    a->h = h;
    if (!lp2p__spawn(h->sched, lp2p__async_dial_task, a).id) {
        lp2p__strfree(&h->ctx, a->addr);
        lp2p__free(&h->ctx, a, sizeof *a);
        return LP2P_ERR_LIMIT;
    }
    return LP2P_OK;
}

LP2P_API int lp2p_host_disconnect(lp2p_host *h, const lp2p_peer_id *peer) {
    int n = 0;
    for (lp2p__conn *c; (c = lp2p__swarm_find_conn(h, peer)) != NULL; n++) {
        lp2p__conn_close(c);
    }
    return n ? LP2P_OK : LP2P_ERR_NOTFOUND;
}

LP2P_API int lp2p_host_is_connected(lp2p_host *h, const lp2p_peer_id *peer) {
    return lp2p__swarm_find_conn(h, peer) != NULL;
}

LP2P_API int lp2p_host_add_addr(lp2p_host *h, const char *addr_with_p2p, int64_t ttl_ms) {
    lp2p__ma ma, base;
    lp2p_peer_id id;
    const char *why = NULL;
    if (!addr_with_p2p || lp2p__ma_parse(addr_with_p2p, &ma, &why) != LP2P_OK || !lp2p__ma_split_p2p(&ma, &base, &id))
        return LP2P_ERR_BADADDR;
    lp2p__peerstore_add_addr(h, &id, &base, ttl_ms);
    return LP2P_OK;
}

/* ---- streams --------------------------------------------------------------------------------------- */
LP2P__PRIV int lp2p__host_open_on(lp2p__conn *c, const char *protocol, int64_t deadline, lp2p_stream **out) {
    lp2p__pipe *p = NULL;
    if (!protocol || strlen(protocol) >= LP2P__PROTO_MAX) return LP2P_ERR_INVALID;
    int rc = lp2p__yamux_open(c->mux, &p, deadline);
    if (rc) return rc;
    rc = lp2p__mss_select(p, &protocol, 1, deadline);
    if (rc < 0) {
        p->vt->reset(p);
        return rc;
    }
    lp2p_stream *s = lp2p__stream_new(c, p, protocol);
    if (!s) {
        p->vt->reset(p);
        return LP2P_ERR_NOMEM;
    }
    *out = s;
    return LP2P_OK;
}

LP2P_API int lp2p_stream_open(lp2p_host *h, const char *peer_or_addr, const char *protocol, int64_t deadline,
                              lp2p_stream **out) {
    lp2p__conn *c = NULL;
    if (!out || !protocol) return LP2P_ERR_INVALID;
    int rc = lp2p__swarm_connect(h, peer_or_addr, &c, deadline);
    if (rc) return rc;
    rc = lp2p__host_open_on(c, protocol, deadline, out);
    lp2p__conn_unref(c);
    return rc;
}

LP2P_API ptrdiff_t lp2p_stream_read(lp2p_stream *s, void *buf, size_t cap, int64_t deadline) {
    if (!s || !s->pipe) return LP2P_ERR_CLOSED;
    if (s->reading) return LP2P_ERR_BUSY;
    s->reading = 1;
    ptrdiff_t n = lp2p__pipe_read(s->pipe, buf, cap, deadline);
    s->reading = 0;
    return n;
}

LP2P_API int lp2p_stream_read_full(lp2p_stream *s, void *buf, size_t len, int64_t deadline) {
    if (!s || !s->pipe) return LP2P_ERR_CLOSED;
    if (s->reading) return LP2P_ERR_BUSY;
    s->reading = 1;
    int rc = lp2p__pipe_read_full(s->pipe, buf, len, deadline);
    s->reading = 0;
    return rc;
}

LP2P_API int lp2p_stream_write(lp2p_stream *s, const void *buf, size_t len, int64_t deadline) {
    if (!s || !s->pipe) return LP2P_ERR_CLOSED;
    if (s->writing) return LP2P_ERR_BUSY;
    s->writing = 1;
    int rc = lp2p__pipe_write(s->pipe, buf, len, deadline);
    s->writing = 0;
    return rc;
}

LP2P_API ptrdiff_t lp2p_stream_read_msg(lp2p_stream *s, void *buf, size_t cap, int64_t deadline) {
    if (!s || !s->pipe) return LP2P_ERR_CLOSED;
    if (s->reading) return LP2P_ERR_BUSY;
    s->reading = 1;
    ptrdiff_t n = lp2p__pipe_read_msg(s->pipe, buf, cap, NULL, deadline);
    s->reading = 0;
    if (n == LP2P_ERR_MSGSIZE || n == LP2P_ERR_PROTOCOL) {
        LP2P__WARN(&s->h->ctx, (int)n, "stream %s: bad message from peer (%s): resetting", s->protocol,
                   lp2p_strerror((int)n));
        s->pipe->vt->reset(s->pipe);
        s->pipe = NULL;
    }
    return n;
}

LP2P_API int lp2p_stream_write_msg(lp2p_stream *s, const void *buf, size_t len, int64_t deadline) {
    if (!s || !s->pipe) return LP2P_ERR_CLOSED;
    if (s->writing) return LP2P_ERR_BUSY;
    s->writing = 1;
    int rc = lp2p__pipe_write_msg(&s->h->ctx, s->pipe, buf, len, deadline);
    s->writing = 0;
    return rc;
}

LP2P_API int lp2p_stream_close_write(lp2p_stream *s) {
    if (!s || !s->pipe) return LP2P_ERR_CLOSED;
    return s->pipe->vt->close_write(s->pipe);
}

static void lp2p__stream_end(lp2p_stream *s, bool reset) {
    if (!s) return;
    if (s->pipe) {
        if (reset) s->pipe->vt->reset(s->pipe);
        else s->pipe->vt->close(s->pipe);
        s->pipe = NULL;
    }
    if (s->in_handler) s->released = 1; /* the handler wrapper frees it on return */
    else lp2p__stream_release(s);
}

LP2P_API void lp2p_stream_close(lp2p_stream *s) { lp2p__stream_end(s, false); }
LP2P_API void lp2p_stream_reset(lp2p_stream *s) { lp2p__stream_end(s, true); }
LP2P_API const char *lp2p_stream_protocol(const lp2p_stream *s) { return s->protocol; }
LP2P_API lp2p_peer_id lp2p_stream_peer(const lp2p_stream *s) { return s->peer; }
LP2P_API lp2p_host *lp2p_stream_host(const lp2p_stream *s) { return s->h; }
