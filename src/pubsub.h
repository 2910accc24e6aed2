/* pubsub.h - L7 internal declarations shared by the pubsub files: pubsub_rpc.c (RPC codec,
 * digest sets), pubsub.c (peers and their streams, messages, signing, validation,
 * subscriptions, floodsub forwarding, the public API), gossipsub.c (mesh, fanout, gossip,
 * message cache, control messages, heartbeat, peer exchange) and pubsub_score.c (gossipsub
 * v1.1 peer scoring).
 *
 * Spec: libp2p/specs pubsub/README.md, pubsub/gossipsub/gossipsub-v1.0.md, -v1.1.md, -v1.2.md.
 * Depends on: host.h (streams, connections, notifications, peerstore), proto/pubsub.pb.h. */
#ifndef LP2P__PUBSUB_H
#define LP2P__PUBSUB_H

#include "host.h"
#include "proto/pubsub.pb.h"

#define LP2P__PS_FLOODSUB "/floodsub/1.0.0"
#define LP2P__PS_MESHSUB10 "/meshsub/1.0.0"
#define LP2P__PS_MESHSUB11 "/meshsub/1.1.0"
#define LP2P__PS_MESHSUB12 "/meshsub/1.2.0"

/* What a peer's outbound stream negotiated (ordered: later versions add features). */
enum { LP2P__PS_PROTO_NONE = 0, LP2P__PS_PROTO_FLOOD, LP2P__PS_PROTO_MESH10, LP2P__PS_PROTO_MESH11, LP2P__PS_PROTO_MESH12 };

/* Caps on what one RPC may carry (beyond them the rest is ignored and counted). go has none but
 * the size limit; these bound our work per RPC without refusing anything a real peer sends. */
#define LP2P__PS_MAX_SUBS_PER_RPC 5000
#define LP2P__PS_MAX_MSGS_PER_RPC 5000
#define LP2P__PS_MAX_CTL_PER_RPC 5000 /* IHAVE/IWANT/GRAFT/PRUNE/IDONTWANT entries together */
#define LP2P__PS_MAX_IDS_PER_RPC 20000 /* message IDs in IHAVE + IWANT + IDONTWANT together */
#define LP2P__PS_MAX_PX_PER_RPC 64     /* PeerInfo entries in all PRUNEs of one RPC */
#define LP2P__PS_MERGE_MAX (60 << 10)  /* RPCs queued for a peer merge up to this (rust reads <= 64 KiB) */
#define LP2P__PS_DIGEST 16             /* bytes of our salted digest of a message ID */

typedef struct lp2p__ps_slice {
    const uint8_t *p;
    size_t n;
} lp2p__ps_slice;

/* ---- a decoded RPC: slices into the received buffer (valid while it is) ---------------------- */
typedef struct lp2p__ps_rpc_sub {
    lp2p__ps_slice topic;
    bool subscribe;
} lp2p__ps_rpc_sub;

typedef struct lp2p__ps_rpc_msg {
    lp2p__ps_slice raw; /* the encoded Message (what we forward unchanged) */
    lp2p__ps_slice from, data, seqno, topic, signature, key;
    bool has_from, has_data, has_seqno, has_signature, has_key, has_topic;
} lp2p__ps_rpc_msg;

enum { LP2P__PS_CTL_IHAVE = 1, LP2P__PS_CTL_IWANT, LP2P__PS_CTL_GRAFT, LP2P__PS_CTL_PRUNE, LP2P__PS_CTL_IDONTWANT };
typedef struct lp2p__ps_rpc_ctl {
    int kind;
    lp2p__ps_slice topic; /* IHAVE, GRAFT, PRUNE */
    int first_id, n_ids;  /* IHAVE, IWANT, IDONTWANT: range in rpc->ids */
    int first_px, n_px;   /* PRUNE: range in rpc->px */
    uint64_t backoff;     /* PRUNE: seconds (0 = none given) */
    bool has_backoff;
} lp2p__ps_rpc_ctl;

typedef struct lp2p__ps_rpc_px {
    lp2p__ps_slice peer_id, record;
} lp2p__ps_rpc_px;

typedef struct lp2p__ps_rpc {
    lp2p__ps_rpc_sub *subs;
    int n_subs, cap_subs;
    lp2p__ps_rpc_msg *msgs;
    int n_msgs, cap_msgs;
    lp2p__ps_rpc_ctl *ctl;
    int n_ctl, cap_ctl;
    lp2p__ps_slice *ids;
    int n_ids, cap_ids;
    lp2p__ps_rpc_px *px;
    int n_px, cap_px;
    int truncated; /* entries beyond the caps (ignored) */
    lp2p__ctx *ctx;
    const char *error; /* why decoding failed */
} lp2p__ps_rpc;

/* Decode one RPC (peer input). OK, ERR_PROTOCOL (malformed), ERR_NOMEM. Free with _rpc_clear. */
LP2P__PRIV int lp2p__ps_rpc_decode(lp2p__ps_rpc *r, lp2p__ctx *ctx, const uint8_t *buf, size_t len);
/* Slices of one encoded Message (ours, after building it). OK or ERR_PROTOCOL. */
LP2P__PRIV int lp2p__ps_msg_parse(const uint8_t *raw, size_t len, lp2p__ps_rpc_msg *out);
LP2P__PRIV void lp2p__ps_rpc_clear(lp2p__ps_rpc *r);

/* ---- protobuf writing (RPCs we send are built by hand: pieces are concatenated) -------------- */
LP2P__PRIV int lp2p__pb_put_tag(lp2p__ctx *ctx, lp2p__buf *b, uint32_t field, int wire);
LP2P__PRIV int lp2p__pb_put_bytes(lp2p__ctx *ctx, lp2p__buf *b, uint32_t field, const void *p, size_t n);
LP2P__PRIV int lp2p__pb_put_varint(lp2p__ctx *ctx, lp2p__buf *b, uint32_t field, uint64_t v);

/* ---- sets of message-ID digests with an expiry (seen cache, IDONTWANT, promises) -------------- */
typedef struct lp2p__ps_idset_entry {
    uint8_t d[LP2P__PS_DIGEST];
    int64_t expires;  /* lp2p_now() ms, or a heartbeat count */
    int64_t aux;      /* user value (validated-at time, ...) */
    uint32_t aux2;
    uint8_t state;    /* 0 empty, 1 used, 2 deleted */
    uint8_t status;   /* user value */
} lp2p__ps_idset_entry;

typedef struct lp2p__ps_idset {
    lp2p__ps_idset_entry *slots;
    size_t cap, used, live; /* cap a power of two; used counts tombstones too */
    uint32_t *fifo;         /* insertion order (slot indexes) for expiry */
    size_t fifo_head, fifo_len, fifo_cap;
    size_t max;             /* entries kept at most (oldest dropped first) */
} lp2p__ps_idset;

LP2P__PRIV lp2p__ps_idset_entry *lp2p__ps_idset_find(lp2p__ps_idset *s, const uint8_t d[LP2P__PS_DIGEST]);
/* Insert (or find); NULL on memory shortage. *fresh tells which. */
LP2P__PRIV lp2p__ps_idset_entry *lp2p__ps_idset_add(lp2p__ctx *ctx, lp2p__ps_idset *s, const uint8_t d[LP2P__PS_DIGEST],
                                                    int64_t expires, bool *fresh);
LP2P__PRIV void lp2p__ps_idset_del(lp2p__ps_idset *s, const uint8_t d[LP2P__PS_DIGEST]);
/* Drop entries whose expires < now (in insertion order: expiries must be monotonic). */
LP2P__PRIV void lp2p__ps_idset_expire(lp2p__ps_idset *s, int64_t now);
LP2P__PRIV void lp2p__ps_idset_free(lp2p__ctx *ctx, lp2p__ps_idset *s);

/* ---- messages ----------------------------------------------------------------------------------- */
typedef struct lp2p__ps_topic lp2p__ps_topic;
typedef struct lp2p__ps_peer lp2p__ps_peer;
typedef struct lp2p__ps_pstats lp2p__ps_pstats;

/* A message we accepted (or built), shared by the mcache and subscription queues. */
typedef struct lp2p__ps_msg {
    int refs;
    lp2p__ctx *ctx;
    size_t alloc;          /* bytes of this block */
    size_t raw_len;        /* the encoded Message, at raw */
    uint8_t *raw;
    lp2p__ps_slice data;   /* into raw */
    char *topic;           /* NUL-terminated copy */
    size_t topic_len;
    lp2p_peer_id from, received_from;
    uint64_t seqno;
    bool has_seqno;
    uint8_t *id;
    size_t id_len;
    uint8_t digest[LP2P__PS_DIGEST];
    /* mcache: IWANT retransmissions per peer (bounded list) */
    struct {
        lp2p__ps_peer *peer;
        int count;
    } tx[16];
    int n_tx;
} lp2p__ps_msg;

LP2P__PRIV void lp2p__ps_msg_unref(lp2p__ps_msg *m);

/* ---- topics, peers, subscriptions ------------------------------------------------------------------ */
typedef struct lp2p__ps_backoff {
    lp2p_peer_id peer;
    int64_t until;
} lp2p__ps_backoff;

struct lp2p_subscription {
    lp2p_pubsub *ps;
    lp2p__ps_topic *t;
    lp2p__ps_msg **q; /* ring of queued messages */
    int q_head, q_len, q_cap;
    lp2p__ps_msg *current; /* handed out by next(), released on the next call */
    uint64_t dropped;
    lp2p__waitq wait;
    struct lp2p_subscription *next; /* in the topic */
};

struct lp2p__ps_topic {
    char *name;
    size_t name_len;
    lp2p_subscription *subs;
    bool joined;                /* we are subscribed: the mesh exists */
    lp2p__ps_peer **mesh;
    int n_mesh, cap_mesh;
    lp2p__ps_peer **fanout;
    int n_fanout, cap_fanout;
    int64_t fanout_last_pub;    /* 0: no fanout */
    int n_peers;                /* peers subscribed */
    lp2p__ps_backoff *backoff;
    int n_backoff, cap_backoff;
    lp2p_pubsub_validator_fn validator;
    void *validator_user;
    lp2p_pubsub_topic_score_params *score; /* own params, or NULL (defaults) */
    uint32_t hash;
    struct lp2p__ps_topic *next;
};

/* A frame of our outbound queue: one RPC body (no length prefix), merged RPCs included. */
typedef struct lp2p__ps_frame {
    struct lp2p__ps_frame *next;
    lp2p__buf b;
    bool has_control;
} lp2p__ps_frame;

struct lp2p__ps_peer {
    lp2p_pubsub *ps;
    lp2p_peer_id id;
    int refs;               /* table + writer task + reader task */
    bool gone;              /* left the table (disconnected) */
    int proto;              /* LP2P__PS_PROTO_*: what our outbound stream negotiated */
    bool outbound;          /* we dialed the connection our stream runs on (gossipsub D_out) */
    bool direct;            /* an explicit peer */
    bool opening;           /* the writer task is opening the stream */
    int open_failures;
    lp2p__conn *conn;       /* the connection of our stream (no reference: compared only) */
    lp2p_task writer, reader;
    lp2p_stream *out;
    lp2p__waitq wake;       /* the writer waits here */
    lp2p__ps_frame *q_head, *q_tail;
    size_t q_bytes;
    lp2p__ps_topic **topics;
    int n_topics, cap_topics;
    /* per heartbeat (gossipsub spam protection) */
    int ihave_in, iasked, idontwant_in, iwant_served;
    lp2p__ps_idset dontwant; /* message digests the peer said it does not want (expires = heartbeat) */
    lp2p__ps_pstats *st;     /* its score record */
    char ip[48];             /* remote IP (P6), "" unknown */
    struct lp2p__ps_peer *next;
};

/* ---- the router ---------------------------------------------------------------------------------- */
typedef struct lp2p__ps_mcache {
    lp2p__ps_msg ***win; /* history_length windows, each a growable array */
    int *n, *cap;
    int len;             /* windows */
    lp2p__ps_idset index; /* digest -> msg (aux holds the pointer) */
} lp2p__ps_mcache;

typedef struct lp2p__ps_promise {
    uint8_t d[LP2P__PS_DIGEST];
    lp2p_peer_id peer;
    int64_t expires;
} lp2p__ps_promise;

struct lp2p_pubsub {
    lp2p_host *h;
    lp2p__ctx *ctx;
    lp2p_pubsub_config cfg;   /* resolved */
    lp2p_pubsub_score_params sp;
    lp2p_pubsub_score_thresholds th;
    lp2p__notifee notifee;
    lp2p__service service;    /* lp2p_host_free frees us if the app did not */
    lp2p__ps_peer *peers;
    int n_peers;
    lp2p__ps_topic *topics;
    int n_topics;
    lp2p__ps_idset seen;      /* status: LP2P__PS_SEEN_* ; aux: validated-at ms */
    lp2p__ps_mcache mcache;
    lp2p__ps_promise *promises;
    int n_promises, cap_promises;
    lp2p__ps_pstats *pstats;  /* score records (connected and retained peers) */
    uint8_t salt[16];         /* digest salt: peers cannot aim IDs at one hash bucket */
    uint64_t seqno;
    uint64_t rng;             /* xorshift state for shuffles (seeded from the CSPRNG) */
    uint64_t heartbeats;
    int64_t last_decay;
    lp2p_task heartbeat_task, direct_task;
    lp2p__waitq tasks_done;   /* pubsub_free waits here for peer tasks */
    int n_tasks;              /* peer tasks running (writers, readers, connectors) */
    struct lp2p__ps_dial *dials; /* connections being made for peer exchange / direct peers */
    int n_dials;
    lp2p__ma *direct;         /* direct peers (with /p2p/) */
    int n_direct;
    lp2p_pubsub_stats stats;
    bool closing;
    bool sched_gone;          /* freed by lp2p_host_free after its scheduler */
    const char *protos[4];
    int n_protos;
};

enum { LP2P__PS_SEEN_VALID = 1, LP2P__PS_SEEN_INVALID = 2 };

/* ---- pubsub.c, used by the others ---------------------------------------------------------------- */
LP2P__PRIV lp2p__ps_topic *lp2p__ps_topic_get(lp2p_pubsub *ps, const uint8_t *name, size_t len, bool create);
LP2P__PRIV void lp2p__ps_topic_maybe_free(lp2p_pubsub *ps, lp2p__ps_topic *t);
LP2P__PRIV bool lp2p__ps_peer_in_topic(const lp2p__ps_peer *p, const lp2p__ps_topic *t);
LP2P__PRIV lp2p__ps_peer *lp2p__ps_peer_find(lp2p_pubsub *ps, const lp2p_peer_id *id);
LP2P__PRIV bool lp2p__ps_peer_active(const lp2p__ps_peer *p); /* stream open, not gone */
/* Queue an RPC body for p (merged with the queue's tail when possible). urgent: ahead of the
 * queue (IDONTWANT). has_control: the body has a control field (never merged with another). */
LP2P__PRIV int lp2p__ps_send(lp2p__ps_peer *p, const uint8_t *rpc, size_t len, bool has_control, bool urgent);
/* Send an encoded Message to p as RPC{publish}. */
LP2P__PRIV int lp2p__ps_send_msg(lp2p__ps_peer *p, const lp2p__ps_msg *m);
LP2P__PRIV void lp2p__ps_digest(const lp2p_pubsub *ps, const uint8_t *id, size_t len, uint8_t d[LP2P__PS_DIGEST]);
LP2P__PRIV void lp2p__ps_connect_async(lp2p_pubsub *ps, const lp2p_peer_id *peer);
LP2P__PRIV bool lp2p__ps_topic_valid(const uint8_t *p, size_t n);

/* ---- gossipsub.c ---------------------------------------------------------------------------------- */
LP2P__PRIV int lp2p__gs_init(lp2p_pubsub *ps);
LP2P__PRIV void lp2p__gs_free(lp2p_pubsub *ps);
LP2P__PRIV void lp2p__gs_peer_added(lp2p_pubsub *ps, lp2p__ps_peer *p);
LP2P__PRIV void lp2p__gs_peer_removed(lp2p_pubsub *ps, lp2p__ps_peer *p);
LP2P__PRIV void lp2p__gs_join(lp2p_pubsub *ps, lp2p__ps_topic *t);
LP2P__PRIV void lp2p__gs_leave(lp2p_pubsub *ps, lp2p__ps_topic *t);
LP2P__PRIV void lp2p__gs_peer_unsubscribed(lp2p_pubsub *ps, lp2p__ps_peer *p, lp2p__ps_topic *t);
/* Control part of an RPC from p. */
LP2P__PRIV void lp2p__gs_handle_control(lp2p_pubsub *ps, lp2p__ps_peer *p, const lp2p__ps_rpc *r);
/* Before validating a new message from p: IDONTWANT to mesh peers (v1.2). */
LP2P__PRIV void lp2p__gs_preprocess(lp2p_pubsub *ps, lp2p__ps_peer *from, lp2p__ps_topic *t, const uint8_t *id,
                                    size_t id_len, size_t data_len);
/* Forward an accepted message (ours: from == NULL) to the right peers; returns how many. */
LP2P__PRIV int lp2p__gs_forward(lp2p_pubsub *ps, lp2p__ps_topic *t, lp2p__ps_msg *m, lp2p__ps_peer *from, bool own);
LP2P__PRIV void lp2p__gs_mcache_put(lp2p_pubsub *ps, lp2p__ps_msg *m);
/* A message reached us (first copy or duplicate): gossip promises are kept. */
LP2P__PRIV void lp2p__gs_promise_kept(lp2p_pubsub *ps, const uint8_t d[LP2P__PS_DIGEST]);
LP2P__PRIV bool lp2p__gs_in_mesh(const lp2p__ps_topic *t, const lp2p__ps_peer *p);

/* ---- pubsub_score.c -------------------------------------------------------------------------------- */
LP2P__PRIV double lp2p__score(lp2p_pubsub *ps, lp2p__ps_peer *p);
LP2P__PRIV void lp2p__score_add_peer(lp2p_pubsub *ps, lp2p__ps_peer *p);
LP2P__PRIV void lp2p__score_remove_peer(lp2p_pubsub *ps, lp2p__ps_peer *p);
LP2P__PRIV void lp2p__score_graft(lp2p_pubsub *ps, lp2p__ps_peer *p, lp2p__ps_topic *t);
LP2P__PRIV void lp2p__score_prune(lp2p_pubsub *ps, lp2p__ps_peer *p, lp2p__ps_topic *t);
LP2P__PRIV void lp2p__score_first_delivery(lp2p_pubsub *ps, lp2p__ps_peer *p, lp2p__ps_topic *t);
LP2P__PRIV void lp2p__score_duplicate(lp2p_pubsub *ps, lp2p__ps_peer *p, lp2p__ps_topic *t, int64_t validated_at);
LP2P__PRIV void lp2p__score_invalid(lp2p_pubsub *ps, lp2p__ps_peer *p, lp2p__ps_topic *t);
LP2P__PRIV void lp2p__score_penalty(lp2p_pubsub *ps, lp2p__ps_peer *p, double count);
LP2P__PRIV void lp2p__score_decay(lp2p_pubsub *ps); /* once per decay interval */
LP2P__PRIV void lp2p__score_free(lp2p_pubsub *ps);
LP2P__PRIV void lp2p__score_topic_freed(lp2p_pubsub *ps, lp2p__ps_topic *t);
LP2P__PRIV int lp2p__score_lookup(lp2p_pubsub *ps, const lp2p_peer_id *id, double *out);
LP2P__PRIV int lp2p__score_check_topic_params(const lp2p_pubsub_topic_score_params *p);

#endif
