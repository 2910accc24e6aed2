/* kad.h - L7 internal declarations of the Kademlia DHT: keyspace and routing table (kad_rt.c),
 * wire messages (kad_msg.c), record and provider stores with validators (kad_store.c), and the
 * protocol, lookups and public API (kad.c).
 *
 * Spec: libp2p/specs kad-dht/README.md; ipfs/specs src/routing/kad-dht.md (Amino rules).
 * Depends on: host.h, proto/kad.pb.h. */
#ifndef LP2P__KAD_H
#define LP2P__KAD_H

#include "host.h"
#include "proto/kad.pb.h"

#define LP2P__KAD_PROTO "/ipfs/kad/1.0.0"
#define LP2P__KAD_KEY_MAX 256       /* longest key we look up or store, bytes */
#define LP2P__KAD_PROVIDER_KEY_MAX 80 /* ipfs/specs kad-dht: provider keys are multihashes <= 80 B */
#define LP2P__KAD_MAX_ALPHA 32
#define LP2P__KAD_MSG_PEERS 64      /* peers per list we decode from one message (more are skipped) */
#define LP2P__KAD_PEER_ADDRS 8      /* addresses per peer we decode / send */
#define LP2P__KAD_STREAM_IDLE_MS 60000 /* an inbound stream waiting for its next request (go: 1 min) */
#define LP2P__KAD_QUERY_ADDR_TTL_MS (10 * 60 * 1000) /* addresses learned from closerPeers */
#define LP2P__KAD_PROVIDER_ADDR_TTL_MS (24 * 60 * 60 * 1000) /* go: provider addresses 24 h */
#define LP2P__KAD_RT_ADDR_TTL_MS (60 * 60 * 1000) /* addresses of table peers, renewed when they answer */
#define LP2P__KAD_MAX_LOOKUP_PEERS 256 /* candidates one lookup tracks */
#define LP2P__KAD_REFRESH_MAX_CPL 15   /* go: buckets refreshed by random lookups up to cpl 15 */

/* ---- wire messages (kad_msg.c) ------------------------------------------------------------ */
typedef struct lp2p__kad_slice {
    const uint8_t *p;
    size_t len;
} lp2p__kad_slice;

/* A peer as it appears in closerPeers / providerPeers; slices point into the message bytes. */
typedef struct lp2p__kad_wpeer {
    lp2p__kad_slice id;
    lp2p__kad_slice addrs[LP2P__KAD_PEER_ADDRS];
    int n_addrs;
    int connection;
} lp2p__kad_wpeer;

typedef struct lp2p__kad_msg {
    int type; /* lp2p_pb_KadMessage_MessageType; missing = PUT_VALUE (proto3) */
    int cluster_level;
    lp2p__kad_slice key;
    bool has_record;
    lp2p__kad_slice rec_key, rec_value, rec_time;
    lp2p__kad_wpeer closer[LP2P__KAD_MSG_PEERS];
    int n_closer;
    lp2p__kad_wpeer providers[LP2P__KAD_MSG_PEERS];
    int n_providers;
    int skipped; /* peers or addresses beyond our caps */
    const uint8_t *buf; /* the message the slices point into */
    size_t buf_len;
} lp2p__kad_msg;

/* Decode one message (the bytes must outlive m). LP2P_OK or ERR_PROTOCOL (malformed, unknown
 * type). */
LP2P__PRIV int lp2p__kad_msg_decode(const uint8_t *buf, size_t len, lp2p__kad_msg *m);

typedef struct lp2p__kad lp2p__kad_t; /* = struct lp2p_kad */

/* What to encode: peers are looked up in the peerstore for their addresses (our own ID gets
 * our listen addresses). */
typedef struct lp2p__kad_out {
    int type;
    const uint8_t *key;
    size_t key_len;
    bool has_record;
    const uint8_t *rec_key, *rec_value, *rec_time;
    size_t rec_key_len, rec_value_len, rec_time_len;
    const lp2p_peer_id *closer;
    int n_closer;
    const lp2p_peer_id *providers;
    int n_providers;
    lp2p_host *h;
} lp2p__kad_out;
/* Encode into b (appended). LP2P_OK, ERR_NOMEM, ERR_MSGSIZE. */
LP2P__PRIV int lp2p__kad_msg_encode(lp2p__ctx *ctx, const lp2p__kad_out *o, lp2p__buf *b);

/* ---- keyspace and routing table (kad_rt.c) -------------------------------------------------- */
typedef struct lp2p__kad_entry {
    lp2p_peer_id id;
    uint8_t hash[32];
    int64_t added, seen;
    uint8_t group[5]; /* IP group: family byte + /16 (IPv4) or /32 (IPv6); [0] = 0: exempt */
} lp2p__kad_entry;

typedef struct lp2p__kad_bucket {
    lp2p__kad_entry *e; /* k slots, allocated on first use; e[0] is the least recently seen */
    int n;
    int64_t last_lookup; /* last lookup of a key in this bucket's range (refresh skips fresh ones) */
    bool probing;        /* a liveness check of e[0] runs */
} lp2p__kad_bucket;

typedef struct lp2p__kad_rt {
    lp2p__ctx *ctx;
    uint8_t self[32];
    int k, max_group, max_group_bucket;
    lp2p__kad_bucket b[256];
    int size;
} lp2p__kad_rt;

typedef enum {
    LP2P__RT_ADDED,
    LP2P__RT_UPDATED,  /* already there: marked as seen */
    LP2P__RT_FULL,     /* bucket full: *evict names its least recently seen peer */
    LP2P__RT_REJECTED, /* self, or the IP group cap */
    LP2P__RT_NOMEM
} lp2p__rt_result;

LP2P__PRIV void lp2p__kad_hash(const uint8_t *key, size_t len, uint8_t out[32]);
LP2P__PRIV int lp2p__kad_cpl(const uint8_t a[32], const uint8_t b[32]);
/* < 0 if a is closer to target than b, 0 if equal, > 0 if farther. */
LP2P__PRIV int lp2p__kad_cmp(const uint8_t target[32], const uint8_t a[32], const uint8_t b[32]);
/* IP group of a multiaddr (see lp2p__kad_entry.group); returns false when exempt/unknown. */
LP2P__PRIV bool lp2p__kad_ip_group(const lp2p__ma *ma, uint8_t group[5]);

LP2P__PRIV void lp2p__rt_init(lp2p__kad_rt *rt, lp2p__ctx *ctx, const lp2p_peer_id *self, int k, int max_group,
                              int max_group_bucket);
LP2P__PRIV void lp2p__rt_free(lp2p__kad_rt *rt);
LP2P__PRIV lp2p__kad_entry *lp2p__rt_find(lp2p__kad_rt *rt, const lp2p_peer_id *id);
LP2P__PRIV lp2p__rt_result lp2p__rt_add(lp2p__kad_rt *rt, const lp2p_peer_id *id, const uint8_t group[5], int64_t now,
                                        lp2p_peer_id *evict);
LP2P__PRIV bool lp2p__rt_remove(lp2p__kad_rt *rt, const lp2p_peer_id *id);
/* The up to max peers closest to target, closest first; exclude (may be NULL) is skipped. */
LP2P__PRIV int lp2p__rt_closest(lp2p__kad_rt *rt, const uint8_t target[32], const lp2p_peer_id *exclude,
                                lp2p_peer_id *out, int max);
LP2P__PRIV int lp2p__rt_bucket_of(lp2p__kad_rt *rt, const uint8_t hash[32]);
/* A random key (peer-ID-like bytes, 34 bytes) whose hash has common prefix length cpl with
 * ours (found by trying: ~2^(cpl+1) hashes, so callers keep cpl <= 15). */
LP2P__PRIV size_t lp2p__rt_random_key(lp2p__kad_rt *rt, int cpl, uint8_t *key);

/* ---- stores and validators (kad_store.c) ------------------------------------------------------ */
typedef struct lp2p__kad_prov {
    lp2p_peer_id id;
    int64_t expires;
} lp2p__kad_prov;

typedef struct lp2p__kad_pkey {
    struct lp2p__kad_pkey *next;
    uint8_t key[LP2P__KAD_PROVIDER_KEY_MAX];
    uint8_t key_len;
    lp2p__kad_prov *p;
    int n, cap;
} lp2p__kad_pkey;

typedef struct lp2p__kad_rec {
    struct lp2p__kad_rec *next;
    uint8_t *key, *value;
    size_t key_len, value_len;
    char time[40]; /* RFC 3339 time received */
    int64_t expires;
} lp2p__kad_rec;

typedef struct lp2p__kad_ns {
    struct lp2p__kad_ns *next;
    char *ns;
    lp2p_kad_validator v;
} lp2p__kad_ns;

#define LP2P__KAD_STORE_BUCKETS 1024
typedef struct lp2p__kad_store {
    lp2p__ctx *ctx;
    lp2p__kad_pkey *prov[LP2P__KAD_STORE_BUCKETS];
    int n_prov, max_prov, max_per_key;
    lp2p__kad_rec *rec[LP2P__KAD_STORE_BUCKETS];
    int n_rec, max_rec;
    lp2p__kad_ns *ns;
} lp2p__kad_store;

LP2P__PRIV void lp2p__store_free(lp2p__kad_store *st);
/* Add or refresh provider id of key until expires. ERR_LIMIT (store full), ERR_NOMEM. */
LP2P__PRIV int lp2p__store_add_provider(lp2p__kad_store *st, const uint8_t *key, size_t len, const lp2p_peer_id *id,
                                        int64_t expires);
/* Up to max unexpired providers of key. */
LP2P__PRIV int lp2p__store_get_providers(lp2p__kad_store *st, const uint8_t *key, size_t len, int64_t now,
                                         lp2p_peer_id *out, int max);
LP2P__PRIV lp2p__kad_rec *lp2p__store_get_record(lp2p__kad_store *st, const uint8_t *key, size_t len, int64_t now);
/* Store (replace) a record. ERR_LIMIT, ERR_NOMEM. */
LP2P__PRIV int lp2p__store_put_record(lp2p__kad_store *st, const uint8_t *key, size_t key_len, const uint8_t *value,
                                      size_t value_len, int64_t expires);
/* Drop everything expired. */
LP2P__PRIV void lp2p__store_expire(lp2p__kad_store *st, int64_t now);
LP2P__PRIV int lp2p__store_set_validator(lp2p__kad_store *st, const char *ns, const lp2p_kad_validator *v);
/* Validate a record by its key's namespace: LP2P_OK, ERR_INVALID (no validator / refused). */
LP2P__PRIV int lp2p__store_validate(lp2p__kad_store *st, const uint8_t *key, size_t key_len, const uint8_t *value,
                                    size_t value_len);
/* Index (0 or 1) of the better of two valid values. */
LP2P__PRIV int lp2p__store_select(lp2p__kad_store *st, const uint8_t *key, size_t key_len, const uint8_t *a,
                                  size_t a_len, const uint8_t *b, size_t b_len);
/* The built-in /pk/ validator. */
LP2P__PRIV int lp2p__kad_pk_validate(void *user, const uint8_t *key, size_t key_len, const uint8_t *value,
                                     size_t value_len);

#endif
