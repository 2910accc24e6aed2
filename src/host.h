/* host.h - L5/L6 internal declarations: the swarm (connections, dialing, listeners, peerstore)
 * and the host (protocol router, streams, events) that protocols (L7) build on.
 *
 * Spec: libp2p/specs connections/README.md (upgrade order, roles, events).
 * Depends on: every layer below (runtime, tcp, mss, noise, yamux, crypto, multiaddr). */
#ifndef LP2P__HOST_H
#define LP2P__HOST_H

#include "tcp.h"
#include "mss.h"
#include "noise.h"
#include "yamux.h"

#define LP2P__MAX_PEER_ADDRS 16
#define LP2P__MAX_PEER_PROTOCOLS 128
#define LP2P__PROTO_MAX 256 /* bytes of a protocol ID we keep */

/* ---- peerstore ---------------------------------------------------------------------- */
typedef struct lp2p__peer_addr {
    lp2p__ma ma;        /* without /p2p/ */
    int64_t expires;    /* lp2p_now() ms; LP2P_FOREVER = permanent */
} lp2p__peer_addr;

typedef struct lp2p__peer {
    lp2p_peer_id id;
    lp2p__peer_addr *addrs; /* n_addrs used of cap_addrs (<= LP2P__MAX_PEER_ADDRS), grown on demand */
    int n_addrs, cap_addrs;
    uint8_t *pubkey; /* serialized PublicKey, or NULL */
    size_t pubkey_len;
    char **protocols; /* from identify */
    int n_protocols;
    char *agent_version, *protocol_version;
    lp2p__ma observed; /* what the peer told us it sees us as (len 0 = none) */
    uint64_t record_seq; /* highest signed peer record seq seen */
    struct lp2p__peer *next;
} lp2p__peer;

/* ---- connections ------------------------------------------------------------------- */
typedef struct lp2p__conn {
    lp2p_host *h;
    lp2p_peer_id peer;
    lp2p__yamux *mux;
    lp2p__ma local, remote; /* transport addresses (no /p2p/) */
    bool outbound;
    bool closed;          /* session ended; unlinked from the host */
    bool identified;      /* identify finished (ok or failed) */
    lp2p__waitq identify_wait;
    int refs;             /* host list + tasks using it; freed at 0 */
    int64_t opened_at;
    int64_t idle_since;   /* no streams since (lp2p_now ms), 0 = busy; for idle_timeout_ms */
    int ephemeral_idle_ms; /* > 0: opened for one-off requests (DHT lookups): closed after this
                              long without streams, whatever idle_timeout_ms says; an app's
                              connect to the peer clears it */
    struct lp2p__conn *next;
} lp2p__conn;

/* A dial in flight (dedup: a second connect to the same peer waits for the first). */
typedef struct lp2p__dial {
    lp2p_peer_id peer;
    int result;       /* 1 = running, else LP2P_OK / error */
    lp2p__conn *conn; /* on success */
    lp2p__waitq done;
    int waiters;
    struct lp2p__dial *next;
} lp2p__dial;

/* ---- protocol router ------------------------------------------------------------------ */
typedef struct lp2p__handler {
    char *protocol;
    lp2p_handler_fn fn; /* NULL: queue LP2P_EVENT_STREAM */
    void *user;
    struct lp2p__handler *next;
} lp2p__handler;

/* Swarm notifications for protocols (identify, keepalive, later DHT/pubsub). */
typedef struct lp2p__notifee {
    void (*connected)(void *user, lp2p__conn *c);    /* runs in the connection's upgrade task */
    void (*disconnected)(void *user, lp2p__conn *c);
    /* identify with the peer finished (pull) or it pushed an update; the peerstore has its
     * protocols and addresses. Runs in the identify task; must not block. May be NULL. */
    void (*identified)(void *user, lp2p__conn *c);
    void *user;
    struct lp2p__notifee *next;
} lp2p__notifee;

struct lp2p_stream {
    lp2p_host *h;
    lp2p__conn *conn;
    lp2p__pipe *pipe; /* the yamux stream; NULL after close/reset */
    lp2p_peer_id peer;
    char protocol[LP2P__PROTO_MAX];
    uint8_t reading, writing; /* one reader and one writer at a time (ERR_BUSY) */
    uint8_t in_handler;       /* released by the handler wrapper on return */
    uint8_t released;         /* close/reset called inside a handler */
};

typedef struct lp2p__listener {
    lp2p_host *h;
    lp2p__tcp_listener *tcp;
    lp2p__ma addr; /* bound address, no /p2p/ */
    lp2p_task task;
    struct lp2p__listener *next;
} lp2p__listener;

typedef struct lp2p__event_slot {
    lp2p_event ev;
    char *addr, *protocol; /* owned copies */
} lp2p__event_slot;

typedef struct lp2p__identify lp2p__identify; /* identify.c */
typedef struct lp2p__perf lp2p__perf;         /* perf.c */

/* A protocol object hanging off the host (e.g. a DHT) that lp2p_host_free frees if the app did
 * not: free runs after every task of the host has ended. */
typedef struct lp2p__service {
    void (*free)(void *self);
    void *self;
    struct lp2p__service *next;
} lp2p__service;

struct lp2p_host {
    lp2p__ctx ctx;
    lp2p__cache cache; /* ctx.cache: big connection buffers between uses */
    lp2p__sched *sched;
    lp2p__identity identity;
    lp2p_config cfg; /* resolved: every zero replaced by its default */
    char *agent_version;
    lp2p__listener *listeners;
    char **addr_text; /* cached "<addr>/p2p/<id>" strings for lp2p_host_addr */
    int n_addr_text;
    lp2p__conn *conns;
    int n_conns;
    int n_inbound;          /* inbound connections being upgraded */
    lp2p__conn *graveyard;  /* closed, unreferenced, waiting for lp2p__swarm_reap */
    lp2p__dial *dials;
    int n_dials;
    lp2p__peer *peers;
    lp2p__handler *handlers;
    lp2p__notifee *notifees;
    lp2p__event_slot *events; /* ring */
    int ev_head, ev_count;
    bool ev_read; /* the app has called lp2p_host_next_event: it wants the events */
    lp2p__event_slot ev_out;  /* the slot handed out by next_event (strings live until next call) */
    lp2p__identify *identify;
    lp2p__service *services;
    lp2p__perf *perf;         /* NULL until perf is served or run */
    lp2p__buf info_text; /* lp2p_host_peer_info's strings */
    bool freeing;
};

/* ---- swarm (swarm.c) ---- */
LP2P__PRIV int lp2p__swarm_listen(lp2p_host *h, const char *addr);
LP2P__PRIV void lp2p__swarm_close_all(lp2p_host *h);
/* Parse "peer_or_addr" (full multiaddr with /p2p/, or a bare peer ID the peerstore knows) and
 * return a live connection (existing or new). The returned conn has a reference: drop it
 * with lp2p__conn_unref. */
LP2P__PRIV int lp2p__swarm_connect(lp2p_host *h, const char *peer_or_addr, lp2p__conn **out, int64_t deadline);
LP2P__PRIV lp2p__conn *lp2p__swarm_find_conn(lp2p_host *h, const lp2p_peer_id *peer);
LP2P__PRIV void lp2p__conn_unref(lp2p__conn *c);
LP2P__PRIV void lp2p__conn_close(lp2p__conn *c);
/* Free closed connections nothing references any more (never from a session's own task). */
LP2P__PRIV void lp2p__swarm_reap(lp2p_host *h);
LP2P__PRIV void lp2p__swarm_add_notifee(lp2p_host *h, lp2p__notifee *n);
LP2P__PRIV void lp2p__swarm_remove_notifee(lp2p_host *h, lp2p__notifee *n);

/* ---- peerstore (swarm.c) ---- */
LP2P__PRIV lp2p__peer *lp2p__peerstore_get(lp2p_host *h, const lp2p_peer_id *id, bool create);
LP2P__PRIV void lp2p__peerstore_add_addr(lp2p_host *h, const lp2p_peer_id *id, const lp2p__ma *ma, int64_t ttl_ms);
LP2P__PRIV void lp2p__peerstore_set_protocols(lp2p_host *h, lp2p__peer *p, char **protos, int n); /* takes ownership */
LP2P__PRIV void lp2p__peerstore_free(lp2p_host *h);
/* Drop peers without a connection whose addresses all expired. */
LP2P__PRIV void lp2p__peerstore_gc(lp2p_host *h, int64_t now);

/* ---- host (host.c) ---- */
LP2P__PRIV void lp2p__host_emit(lp2p_host *h, lp2p_event_type type, const lp2p_peer_id *peer, const char *addr,
                                const char *protocol, lp2p_stream *stream, int err);
/* A new inbound yamux stream on c: negotiate the protocol and dispatch (runs as a task). */
LP2P__PRIV void lp2p__host_on_stream(lp2p__conn *c, lp2p__pipe *stream);
/* Open a stream with protocol on an existing connection. */
LP2P__PRIV int lp2p__host_open_on(lp2p__conn *c, const char *protocol, int64_t deadline, lp2p_stream **out);
/* The protocols we handle (for identify and "ls"); returns count, fills up to max. */
LP2P__PRIV int lp2p__host_protocols(lp2p_host *h, const char **out, int max);
/* Register / unregister a service (see lp2p__service). */
LP2P__PRIV void lp2p__host_add_service(lp2p_host *h, lp2p__service *s);
LP2P__PRIV void lp2p__host_remove_service(lp2p_host *h, lp2p__service *s);
/* Refresh h->addr_text after listeners change. */
LP2P__PRIV void lp2p__host_addrs_changed(lp2p_host *h);

/* ---- built-in protocols ---- */
LP2P__PRIV int lp2p__identify_init(lp2p_host *h);
LP2P__PRIV void lp2p__identify_free(lp2p_host *h);
/* Push our identify to every connection (addresses or protocols changed). */
LP2P__PRIV void lp2p__identify_push_all(lp2p_host *h);
LP2P__PRIV int lp2p__ping_init(lp2p_host *h);
LP2P__PRIV void lp2p__perf_free(lp2p_host *h); /* after the scheduler is gone */

#endif
