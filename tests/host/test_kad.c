/* test_kad.c - the Kademlia DHT: message codec, keyspace and routing table, stores and
 * validators, then networks of our own hosts on 127.0.0.1: bootstrap, closest peers, find
 * peer, provide / find providers, put / get with entry correction, client mode, mode switch
 * at run time, bad input from a raw peer, and lp2p_kad_free with lookups in flight. */
#define LIBP2P_IMPLEMENTATION
#include "libp2p.h"
#include "tests/test.h"

/* ---- codec ------------------------------------------------------------------------------- */
static void test_codec(void) {
    TEST("kad codec");
    lp2p__kad_msg *m = malloc(sizeof *m);
    /* js's PUT_VALUE: no type field (proto3 zero), key, record {key, value, timeReceived} */
    uint8_t js_put[] = {0x12, 0x03, '/', 'a', 'b', 0x1a, 0x0c, 0x0a, 0x03, '/', 'a', 'b', 0x12, 0x01, 'v',
                        0x2a, 0x02, 't', 'z'};
    CHECK_EQ(lp2p__kad_msg_decode(js_put, sizeof js_put, m), LP2P_OK);
    CHECK_EQ(m->type, 0);
    CHECK(m->has_record);
    CHECK_EQ(m->key.len, 3);
    CHECK_EQ(m->rec_value.len, 1);
    CHECK(m->rec_value.len == 1 && m->rec_value.p[0] == 'v');
    CHECK_EQ(m->rec_time.len, 2);
    /* unknown type, truncated, bad wire type */
    uint8_t bad_type[] = {0x08, 0x09};
    CHECK_EQ(lp2p__kad_msg_decode(bad_type, sizeof bad_type, m), LP2P_ERR_PROTOCOL);
    uint8_t trunc[] = {0x12, 0x05, 'a'};
    CHECK_EQ(lp2p__kad_msg_decode(trunc, sizeof trunc, m), LP2P_ERR_PROTOCOL);
    uint8_t wire[] = {0x0b};
    CHECK_EQ(lp2p__kad_msg_decode(wire, sizeof wire, m), LP2P_ERR_PROTOCOL);
    /* unknown fields are skipped; clusterLevel kept */
    uint8_t extra[] = {0x08, 0x04, 0x50, 0x07, 0x78, 0x01, 0x12, 0x01, 'k'};
    CHECK_EQ(lp2p__kad_msg_decode(extra, sizeof extra, m), LP2P_OK);
    CHECK_EQ(m->type, 4);
    CHECK_EQ(m->cluster_level, 7);
    CHECK_EQ(m->key.len, 1);

    /* round trip through the encoder with peers from a host's peerstore */
    lp2p_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.no_listen = true;
    lp2p_host *h = NULL;
    CHECK_EQ(lp2p_host_new(&cfg, &h), LP2P_OK);
    lp2p_peer_id a;
    CHECK_EQ(lp2p_peer_id_parse("12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN", &a), LP2P_OK);
    CHECK_EQ(lp2p_host_add_addr(h, "/ip4/1.2.3.4/tcp/5/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN", -1),
             LP2P_OK);
    lp2p_peer_id peers[2] = {a, lp2p_host_id(h)};
    lp2p__kad_out o;
    memset(&o, 0, sizeof o);
    o.h = h, o.type = 3, o.key = (const uint8_t *)"key", o.key_len = 3;
    o.closer = peers, o.n_closer = 2, o.providers = peers, o.n_providers = 1;
    lp2p__buf b = {0};
    CHECK_EQ(lp2p__kad_msg_encode(&h->ctx, &o, &b), LP2P_OK);
    CHECK_EQ(lp2p__kad_msg_decode(b.p, b.len, m), LP2P_OK);
    CHECK_EQ(m->type, 3);
    CHECK_EQ(m->n_closer, 2);
    CHECK_EQ(m->n_providers, 1);
    CHECK(m->closer[0].id.len == a.len && memcmp(m->closer[0].id.p, a.bytes, a.len) == 0);
    CHECK_EQ(m->closer[0].n_addrs, 1);
    CHECK_EQ(m->closer[1].n_addrs, 0); /* no_listen: we have no addresses */
    lp2p__buf_free(&h->ctx, &b);
    /* PUT_VALUE encodes no type field at all (proto3), like go and js */
    memset(&o, 0, sizeof o);
    o.h = h, o.type = 0, o.key = (const uint8_t *)"/ab", o.key_len = 3, o.has_record = true;
    o.rec_key = o.key, o.rec_key_len = 3, o.rec_value = (const uint8_t *)"v", o.rec_value_len = 1;
    CHECK_EQ(lp2p__kad_msg_encode(&h->ctx, &o, &b), LP2P_OK);
    CHECK(b.len > 0 && b.p[0] == 0x12);
    lp2p__buf_free(&h->ctx, &b);
    lp2p_host_free(h);
    free(m);
}

/* ---- keyspace, routing table, stores ------------------------------------------------------- */
static lp2p_peer_id mk_peer(int i) {
    lp2p_peer_id id;
    memset(&id, 0, sizeof id);
    id.len = 38;
    id.bytes[0] = 0x00, id.bytes[1] = 0x24, id.bytes[2] = 0x08, id.bytes[3] = 0x01, id.bytes[4] = 0x12, id.bytes[5] = 0x20;
    id.bytes[6] = (uint8_t)i, id.bytes[7] = (uint8_t)(i >> 8), id.bytes[8] = 0x5a;
    return id;
}

static void test_rt(void) {
    TEST("kad routing table");
    uint8_t a[32] = {0}, b[32] = {0}, t[32] = {0};
    CHECK_EQ(lp2p__kad_cpl(a, b), 256);
    b[0] = 0x80;
    CHECK_EQ(lp2p__kad_cpl(a, b), 0);
    b[0] = 0, b[3] = 0x01;
    CHECK_EQ(lp2p__kad_cpl(a, b), 31);
    a[0] = 1, b[0] = 2;
    CHECK(lp2p__kad_cmp(t, a, b) < 0);
    CHECK(lp2p__kad_cmp(t, b, a) > 0);
    CHECK_EQ(lp2p__kad_cmp(t, a, a), 0);

    lp2p__ctx ctx;
    lp2p__ctx_init(&ctx, NULL, NULL, LP2P_LOG_ERROR);
    lp2p_peer_id self = mk_peer(0);
    lp2p__kad_rt rt;
    lp2p__rt_init(&rt, &ctx, &self, 4, 3, 2);
    CHECK_EQ(lp2p__rt_add(&rt, &self, NULL, 1, NULL), LP2P__RT_REJECTED);
    /* fill buckets; a full bucket names its least recently seen peer */
    int added = 0, full = 0;
    lp2p_peer_id evict;
    for (int i = 1; i < 200; i++) {
        lp2p_peer_id p = mk_peer(i);
        lp2p__rt_result r = lp2p__rt_add(&rt, &p, NULL, i, &evict);
        added += r == LP2P__RT_ADDED, full += r == LP2P__RT_FULL;
    }
    CHECK_EQ(added, rt.size);
    CHECK(full > 0);
    CHECK(rt.b[0].n == 4);
    lp2p_peer_id first = rt.b[0].e[0].id, second = rt.b[0].e[1].id;
    /* seen again: moves to the back */
    CHECK_EQ(lp2p__rt_add(&rt, &first, NULL, 1000, NULL), LP2P__RT_UPDATED);
    CHECK(lp2p_peer_id_eq(&rt.b[0].e[3].id, &first));
    CHECK(lp2p_peer_id_eq(&rt.b[0].e[0].id, &second));
    CHECK(lp2p__rt_find(&rt, &first) != NULL);
    CHECK(lp2p__rt_remove(&rt, &first));
    CHECK(lp2p__rt_find(&rt, &first) == NULL);
    CHECK(!lp2p__rt_remove(&rt, &first));
    /* closest: sorted by XOR distance */
    uint8_t target[32];
    lp2p_peer_id out[8];
    lp2p__kad_hash((const uint8_t *)"x", 1, target);
    int n = lp2p__rt_closest(&rt, target, NULL, out, 8);
    CHECK_EQ(n, LP2P__MIN(8, rt.size));
    int sorted = 1;
    for (int i = 1; i < n; i++) {
        uint8_t h0[32], h1[32];
        lp2p__kad_hash(out[i - 1].bytes, out[i - 1].len, h0);
        lp2p__kad_hash(out[i].bytes, out[i].len, h1);
        sorted &= lp2p__kad_cmp(target, h0, h1) < 0;
    }
    CHECK(sorted);
    /* random refresh keys land in the asked bucket */
    uint8_t key[64], kh[32];
    size_t kl = lp2p__rt_random_key(&rt, 9, key);
    lp2p__kad_hash(key, kl, kh);
    CHECK_EQ(lp2p__rt_bucket_of(&rt, kh), 9);
    lp2p__rt_free(&rt);

    /* IP diversity: 3 per /16 in the table, 2 per bucket; loopback is exempt */
    lp2p__rt_init(&rt, &ctx, &self, 20, 3, 2);
    lp2p__ma ma;
    uint8_t g[5];
    CHECK_EQ(lp2p__ma_parse("/ip4/8.8.1.1/tcp/1", &ma, NULL), LP2P_OK);
    CHECK(lp2p__kad_ip_group(&ma, g));
    CHECK_EQ(lp2p__ma_parse("/ip4/127.0.0.1/tcp/1", &ma, NULL), LP2P_OK);
    CHECK(!lp2p__kad_ip_group(&ma, g));
    CHECK_EQ(lp2p__ma_parse("/ip4/192.168.1.1/tcp/1", &ma, NULL), LP2P_OK);
    CHECK(!lp2p__kad_ip_group(&ma, g));
    uint8_t grp[5] = {4, 8, 8, 0, 0};
    int ok = 0, rejected = 0;
    for (int i = 1; i < 100; i++) {
        lp2p_peer_id p = mk_peer(i);
        lp2p__rt_result r = lp2p__rt_add(&rt, &p, grp, i, NULL);
        ok += r == LP2P__RT_ADDED, rejected += r == LP2P__RT_REJECTED;
    }
    CHECK(ok <= 3);
    CHECK(ok >= 2);
    CHECK(rejected > 90);
    for (int i = 1; i < 30; i++) {
        lp2p_peer_id p = mk_peer(i);
        lp2p__rt_add(&rt, &p, NULL, i, NULL);
    }
    CHECK(rt.size > 10); /* exempt peers are not capped */
    lp2p__rt_free(&rt);
}

static int ctr_validate(void *user, const uint8_t *key, size_t key_len, const uint8_t *value, size_t value_len) {
    (void)user, (void)key, (void)key_len;
    return value_len > 0 && value[0] == 'v' ? LP2P_OK : LP2P_ERR_INVALID;
}
/* bigger second byte wins */
static int ctr_select(void *user, const uint8_t *key, size_t key_len, const uint8_t *const *values, const size_t *lens,
                      int n) {
    int best = 0;
    (void)user, (void)key, (void)key_len;
    for (int i = 1; i < n; i++)
        if (lens[i] > 1 && (lens[best] < 2 || values[i][1] > values[best][1])) best = i;
    return best;
}

static void test_store(void) {
    TEST("kad stores and validators");
    lp2p__ctx ctx;
    lp2p__ctx_init(&ctx, NULL, NULL, LP2P_LOG_ERROR);
    lp2p__kad_store st;
    memset(&st, 0, sizeof st);
    st.ctx = &ctx, st.max_prov = 5, st.max_per_key = 3, st.max_rec = 2;
    lp2p_peer_id p1 = mk_peer(1), p2 = mk_peer(2), p3 = mk_peer(3), p4 = mk_peer(4), out[8];
    const uint8_t k1[] = {0x12, 0x20, 1}, k2[] = {0x12, 0x20, 2};
    CHECK_EQ(lp2p__store_add_provider(&st, k1, 3, &p1, 100), LP2P_OK);
    CHECK_EQ(lp2p__store_add_provider(&st, k1, 3, &p1, 200), LP2P_OK); /* refresh, no duplicate */
    CHECK_EQ(lp2p__store_add_provider(&st, k1, 3, &p2, 50), LP2P_OK);
    CHECK_EQ(lp2p__store_add_provider(&st, k1, 3, &p3, 300), LP2P_OK);
    CHECK_EQ(lp2p__store_get_providers(&st, k1, 3, 10, out, 8), 3);
    CHECK_EQ(lp2p__store_add_provider(&st, k1, 3, &p4, 400), LP2P_OK); /* per-key cap: p2 (soonest) replaced */
    CHECK_EQ(lp2p__store_get_providers(&st, k1, 3, 10, out, 8), 3);
    int has_p2 = 0;
    for (int i = 0; i < 3; i++) has_p2 |= lp2p_peer_id_eq(&out[i], &p2);
    CHECK(!has_p2);
    CHECK_EQ(lp2p__store_get_providers(&st, k1, 3, 250, out, 8), 2); /* expired ones skipped */
    CHECK_EQ(lp2p__store_add_provider(&st, k2, 3, &p1, 100), LP2P_OK);
    CHECK_EQ(lp2p__store_add_provider(&st, k2, 3, &p2, 100), LP2P_OK);
    CHECK_EQ(lp2p__store_add_provider(&st, k2, 3, &p3, 100), LP2P_ERR_LIMIT); /* total cap 5 */
    uint8_t big[81] = {0};
    CHECK_EQ(lp2p__store_add_provider(&st, big, 81, &p1, 100), LP2P_ERR_INVALID);
    lp2p__store_expire(&st, 150);
    CHECK_EQ(lp2p__store_get_providers(&st, k2, 3, 0, out, 8), 0);
    CHECK_EQ(st.n_prov, 3);

    /* records */
    CHECK_EQ(lp2p__store_put_record(&st, (const uint8_t *)"/t/a", 4, (const uint8_t *)"v1", 2, 100), LP2P_OK);
    CHECK_EQ(lp2p__store_put_record(&st, (const uint8_t *)"/t/a", 4, (const uint8_t *)"v2", 2, 100), LP2P_OK);
    CHECK_EQ(lp2p__store_put_record(&st, (const uint8_t *)"/t/b", 4, (const uint8_t *)"v", 1, 100), LP2P_OK);
    CHECK_EQ(lp2p__store_put_record(&st, (const uint8_t *)"/t/c", 4, (const uint8_t *)"v", 1, 100), LP2P_ERR_LIMIT);
    lp2p__kad_rec *r = lp2p__store_get_record(&st, (const uint8_t *)"/t/a", 4, 10);
    CHECK(r && r->value_len == 2 && r->value[1] == '2');
    CHECK(r && strlen(r->time) > 20 && r->time[4] == '-');
    CHECK(lp2p__store_get_record(&st, (const uint8_t *)"/t/a", 4, 100) == NULL);

    /* validators: none for a namespace -> refused; pk built in */
    CHECK_EQ(lp2p__store_validate(&st, (const uint8_t *)"/t/a", 4, (const uint8_t *)"v", 1), LP2P_ERR_INVALID);
    lp2p_kad_validator v = {ctr_validate, ctr_select, NULL};
    CHECK_EQ(lp2p__store_set_validator(&st, "t", &v), LP2P_OK);
    CHECK_EQ(lp2p__store_set_validator(&st, "a/b", &v), LP2P_ERR_INVALID);
    CHECK_EQ(lp2p__store_validate(&st, (const uint8_t *)"/t/a", 4, (const uint8_t *)"v", 1), LP2P_OK);
    CHECK_EQ(lp2p__store_validate(&st, (const uint8_t *)"/t/a", 4, (const uint8_t *)"x", 1), LP2P_ERR_INVALID);
    CHECK_EQ(lp2p__store_validate(&st, (const uint8_t *)"/t", 2, (const uint8_t *)"v", 1), LP2P_ERR_INVALID);
    CHECK_EQ(lp2p__store_validate(&st, (const uint8_t *)"t/a", 3, (const uint8_t *)"v", 1), LP2P_ERR_INVALID);
    CHECK_EQ(lp2p__store_select(&st, (const uint8_t *)"/t/a", 4, (const uint8_t *)"v1", 2, (const uint8_t *)"v2", 2), 1);
    CHECK_EQ(lp2p__store_select(&st, (const uint8_t *)"/t/a", 4, (const uint8_t *)"v3", 2, (const uint8_t *)"v2", 2), 0);

    lp2p__identity idn;
    uint8_t seed[32] = {1}, key[80];
    lp2p__identity_from_seed(&idn, seed);
    memcpy(key, "/pk/", 4);
    memcpy(key + 4, idn.id.bytes, idn.id.len);
    CHECK_EQ(lp2p__kad_pk_validate(NULL, key, 4 + idn.id.len, idn.pubkey_pb, sizeof idn.pubkey_pb), LP2P_OK);
    lp2p__identity other;
    seed[0] = 2;
    lp2p__identity_from_seed(&other, seed);
    CHECK_EQ(lp2p__kad_pk_validate(NULL, key, 4 + idn.id.len, other.pubkey_pb, sizeof other.pubkey_pb), LP2P_ERR_INVALID);
    CHECK_EQ(lp2p__kad_pk_validate(NULL, key, 4 + idn.id.len, (const uint8_t *)"junk", 4), LP2P_ERR_INVALID);
    lp2p__store_free(&st);

    uint8_t mh[64];
    /* CIDv1 raw sha2-256 (base32) and the same multihash as CIDv0 */
    ptrdiff_t n = lp2p_kad_key_from_cid("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy", mh, sizeof mh);
    CHECK_EQ(n, 34);
    CHECK(n == 34 && mh[0] == 0x12 && mh[1] == 0x20);
    CHECK_EQ(lp2p_kad_key_from_cid("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG", mh, sizeof mh), 34);
    CHECK_EQ(lp2p_kad_key_from_cid("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52z", mh, sizeof mh),
             LP2P_ERR_BADADDR);
    CHECK_EQ(lp2p_kad_key_from_cid("xyz", mh, sizeof mh), LP2P_ERR_BADADDR);
    CHECK_EQ(lp2p_kad_key_from_cid("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG", mh, 10), LP2P_ERR_MSGSIZE);
}

/* ---- networks of our hosts ------------------------------------------------------------------- */
#define NET_MAX 24
typedef struct net {
    lp2p_host *h[NET_MAX];
    lp2p_kad *k[NET_MAX];
    int n;
} net;

static lp2p_kad_config net_cfg(lp2p_kad_mode mode) {
    lp2p_kad_config kc;
    memset(&kc, 0, sizeof kc);
    kc.protocol = "/lp2ptest/kad/1.0.0";
    kc.mode = mode;
    kc.request_timeout_ms = 5000;
    kc.refresh_interval_ms = -1; /* tests drive refreshes themselves */
    return kc;
}

static int permissive(void *user, const uint8_t *key, size_t key_len, const uint8_t *value, size_t value_len) {
    (void)user, (void)key, (void)key_len, (void)value, (void)value_len;
    return LP2P_OK;
}

static int net_add(net *nw, lp2p_kad_mode mode) {
    lp2p_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.log_level = getenv("LP2P_TEST_LOG") ? LP2P_LOG_DEBUG : LP2P_LOG_ERROR;
    int i = nw->n;
    if (lp2p_host_new(&cfg, &nw->h[i]) != LP2P_OK) return -1;
    lp2p_kad_config kc = net_cfg(mode);
    if (lp2p_kad_new(nw->h[i], &kc, &nw->k[i]) != LP2P_OK) return -1;
    lp2p_kad_validator v = {permissive, NULL, NULL};
    lp2p_kad_set_validator(nw->k[i], "t", &v);
    lp2p_kad_set_validator(nw->k[i], "c", &(lp2p_kad_validator){ctr_validate, ctr_select, NULL});
    nw->n++;
    return i;
}

static void net_free(net *nw) {
    for (int i = 0; i < nw->n; i++) {
        if (nw->k[i]) lp2p_kad_free(nw->k[i]);
        lp2p_host_free(nw->h[i]);
    }
    nw->n = 0;
}

static void pump_all(net *nw, int rounds) {
    for (int r = 0; r < rounds; r++)
        for (int i = 0; i < nw->n; i++) lp2p_host_poll(nw->h[i], r % 4 == 0 ? 1 : 0);
}

static int in_rt(lp2p_kad *k, const lp2p_peer_id *id) {
    lp2p_kad_entry e[256];
    int n = lp2p_kad_routing_table(k, e, 256);
    for (int i = 0; i < n && i < 256; i++)
        if (lp2p_peer_id_eq(&e[i].id, id)) return 1;
    return 0;
}

static int count_cb(void *user, const lp2p_peer_id *peer) {
    (void)peer;
    (*(int *)user)++;
    return 0;
}

static void test_network(void) {
    TEST("kad network of 12 servers + 1 client");
    net nw;
    memset(&nw, 0, sizeof nw);
    for (int i = 0; i < 12; i++) CHECK_EQ(net_add(&nw, LP2P_KAD_SERVER), i);
    const char *boot = lp2p_host_addr(nw.h[0], 0);
    CHECK_EQ(lp2p_kad_bootstrap(nw.k[0], NULL, 0, lp2p_deadline_in(5000)), LP2P_ERR_NOTFOUND); /* nobody yet */
    for (int i = 1; i < 12; i++) CHECK(lp2p_kad_bootstrap(nw.k[i], &boot, 1, lp2p_deadline_in(20000)) >= 1);
    CHECK(lp2p_kad_bootstrap(nw.k[0], NULL, 0, lp2p_deadline_in(20000)) >= 5);
    lp2p_kad_entry e[64];
    int n0 = lp2p_kad_routing_table(nw.k[0], e, 64);
    CHECK(n0 >= 8);
    fprintf(stderr, "    routing table of node 0: %d peers; node 11: %d\n", n0, lp2p_kad_routing_table(nw.k[11], NULL, 0));

    /* closest peers of a key agree with the exact answer computed from all IDs */
    uint8_t key[] = "some key";
    lp2p_peer_id got[20];
    int heard = 0;
    int n = lp2p_kad_get_closest_peers(nw.k[5], key, sizeof key, count_cb, &heard, got, 20, lp2p_deadline_in(20000));
    CHECK_EQ(n, 11); /* everyone but us */
    CHECK(heard >= n);
    uint8_t target[32];
    lp2p__kad_hash(key, sizeof key, target);
    int best = -1;
    for (int i = 0; i < 12; i++) {
        if (i == 5) continue;
        lp2p_peer_id id = lp2p_host_id(nw.h[i]);
        uint8_t hi[32], hb[32];
        lp2p__kad_hash(id.bytes, id.len, hi);
        if (best >= 0) {
            lp2p_peer_id bid = lp2p_host_id(nw.h[best]);
            lp2p__kad_hash(bid.bytes, bid.len, hb);
        }
        if (best < 0 || lp2p__kad_cmp(target, hi, hb) < 0) best = i;
    }
    lp2p_peer_id bid = lp2p_host_id(nw.h[best]);
    CHECK(n > 0 && lp2p_peer_id_eq(&got[0], &bid));
    lp2p_kad_lookup_stats st;
    lp2p_kad_last_lookup(nw.k[5], &st);
    CHECK(st.requests >= 1 && st.answered >= 1 && st.hops >= 1);

    /* find peer */
    lp2p_peer_id far = lp2p_host_id(nw.h[11]);
    lp2p_host_disconnect(nw.h[3], &far);
    CHECK_EQ(lp2p_kad_find_peer(nw.k[3], &far, lp2p_deadline_in(20000)), LP2P_OK);
    lp2p_peer_info info;
    CHECK(lp2p_host_peer_info(nw.h[3], &far, &info) == LP2P_OK && info.n_addrs >= 1);
    lp2p_peer_id nobody = mk_peer(7);
    CHECK_EQ(lp2p_kad_find_peer(nw.k[3], &nobody, lp2p_deadline_in(20000)), LP2P_ERR_NOTFOUND);

    /* provide / find providers */
    uint8_t mh[34] = {0x12, 0x20};
    lp2p__sha256_once("content", 7, mh + 2);
    CHECK(lp2p_kad_provide(nw.k[2], mh, sizeof mh, lp2p_deadline_in(20000)) >= 3);
    lp2p_peer_id provs[4];
    for (int i = 0; i < 12; i += 3) {
        int heard_p = 0;
        int np = lp2p_kad_find_providers(nw.k[i], mh, sizeof mh, 1, count_cb, &heard_p, provs, 4, lp2p_deadline_in(20000));
        lp2p_peer_id p2 = lp2p_host_id(nw.h[2]);
        CHECK_EQ(np, 1);
        CHECK(np == 1 && lp2p_peer_id_eq(&provs[0], &p2));
        CHECK_EQ(heard_p, 1);
    }
    uint8_t none[34] = {0x12, 0x20, 9};
    CHECK_EQ(lp2p_kad_find_providers(nw.k[4], none, sizeof none, 1, NULL, NULL, provs, 4, lp2p_deadline_in(20000)), 0);

    /* put / get */
    const uint8_t vk[] = "/t/hello";
    CHECK(lp2p_kad_put_value(nw.k[1], vk, sizeof vk - 1, (const uint8_t *)"world", 5, lp2p_deadline_in(20000)) >= 3);
    for (int i = 0; i < 12; i++) {
        uint8_t buf[64];
        ptrdiff_t len = lp2p_kad_get_value(nw.k[i], vk, sizeof vk - 1, NULL, NULL, buf, sizeof buf, lp2p_deadline_in(20000));
        CHECK_EQ(len, 5);
        if (len == 5) CHECK_MEM(buf, "world", 5);
    }
    uint8_t small[2];
    CHECK_EQ(lp2p_kad_get_value(nw.k[7], vk, sizeof vk - 1, NULL, NULL, small, sizeof small, lp2p_deadline_in(20000)),
             LP2P_ERR_MSGSIZE);
    CHECK_EQ(lp2p_kad_get_value(nw.k[7], (const uint8_t *)"/t/none", 7, NULL, NULL, small, 2, lp2p_deadline_in(20000)),
             LP2P_ERR_NOTFOUND);
    /* no validator for the namespace: refused locally */
    CHECK_EQ(lp2p_kad_put_value(nw.k[1], (const uint8_t *)"/zz/a", 5, (const uint8_t *)"x", 1, lp2p_deadline_in(5000)),
             LP2P_ERR_INVALID);
    /* selector: a newer value wins; entry correction brings the stale copies up to date */
    const uint8_t ck[] = "/c/counter";
    CHECK(lp2p_kad_put_value(nw.k[4], ck, sizeof ck - 1, (const uint8_t *)"v1", 2, lp2p_deadline_in(20000)) >= 3);
    /* node 6 alone learns v2 */
    CHECK_EQ(lp2p__store_put_record(&nw.k[6]->st, ck, sizeof ck - 1, (const uint8_t *)"v2", 2, lp2p_now() + 60000), LP2P_OK);
    uint8_t buf[8];
    CHECK_EQ(lp2p_kad_get_value(nw.k[6], ck, sizeof ck - 1, NULL, NULL, buf, sizeof buf, lp2p_deadline_in(20000)), 2);
    CHECK(buf[1] == '2');
    /* corrections are sent in the background: let them land, then every store has v2 */
    pump_all(&nw, 300);
    int updated = 0, holders = 0;
    for (int i = 0; i < 12; i++) {
        lp2p__kad_rec *r = lp2p__store_get_record(&nw.k[i]->st, ck, sizeof ck - 1, lp2p_now());
        holders += r != NULL;
        updated += r && r->value[1] == '2';
    }
    CHECK(holders >= 3);
    CHECK(updated >= 3); /* the peers that answered node 6 (all but those the lookup skipped) */
    fprintf(stderr, "    entry correction: %d of %d holders now have v2\n", updated, holders);

    /* a client joins: it can query, but it is in nobody's table */
    int c = net_add(&nw, LP2P_KAD_CLIENT);
    CHECK(c == 12);
    CHECK_EQ(lp2p_kad_get_mode(nw.k[c]), LP2P_KAD_CLIENT);
    CHECK(lp2p_kad_bootstrap(nw.k[c], &boot, 1, lp2p_deadline_in(20000)) >= 5);
    uint8_t cbuf[8];
    CHECK_EQ(lp2p_kad_get_value(nw.k[c], vk, sizeof vk - 1, NULL, NULL, cbuf, sizeof cbuf, lp2p_deadline_in(20000)), 5);
    lp2p_peer_id cid = lp2p_host_id(nw.h[c]);
    int listed = 0;
    for (int i = 0; i < 12; i++) listed += in_rt(nw.k[i], &cid);
    CHECK_EQ(listed, 0);
    /* switch it to server at run time: identify push puts it in its peers' tables */
    CHECK_EQ(lp2p_kad_set_mode(nw.k[c], LP2P_KAD_SERVER), LP2P_OK);
    for (int i = 0; i < 200 && !in_rt(nw.k[0], &cid); i++) pump_all(&nw, 5);
    CHECK(in_rt(nw.k[0], &cid));
    /* and back to client: it leaves them again */
    CHECK_EQ(lp2p_kad_set_mode(nw.k[c], LP2P_KAD_CLIENT), LP2P_OK);
    for (int i = 0; i < 200 && in_rt(nw.k[0], &cid); i++) pump_all(&nw, 5);
    CHECK(!in_rt(nw.k[0], &cid));
    net_free(&nw);
}

/* ---- bad input from a raw peer ------------------------------------------------------------------ */
static int send_raw(lp2p_host *h, const char *addr, const char *proto, const uint8_t *msg, size_t len, bool framed,
                    uint8_t *reply, size_t cap) {
    lp2p_stream *s = NULL;
    int rc = lp2p_stream_open(h, addr, proto, lp2p_deadline_in(5000), &s);
    if (rc) return rc;
    rc = framed ? lp2p_stream_write_msg(s, msg, len, lp2p_deadline_in(5000)) : lp2p_stream_write(s, msg, len, lp2p_deadline_in(5000));
    ptrdiff_t n = rc ? rc : lp2p_stream_read_msg(s, reply, cap, lp2p_deadline_in(5000));
    lp2p_stream_close(s);
    return (int)n;
}

static void test_bad_input(void) {
    TEST("kad bad input");
    net nw;
    memset(&nw, 0, sizeof nw);
    CHECK_EQ(net_add(&nw, LP2P_KAD_SERVER), 0);
    lp2p_host *raw = NULL;
    lp2p_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.log_level = LP2P_LOG_PANIC;
    CHECK_EQ(lp2p_host_new(&cfg, &raw), LP2P_OK);
    nw.h[0]->ctx.level = LP2P_LOG_PANIC; /* the warnings below are expected */
    const char *addr = lp2p_host_addr(nw.h[0], 0), *P = "/lp2ptest/kad/1.0.0";
    uint8_t reply[4096];
    /* a good FIND_NODE works */
    lp2p_peer_id me = lp2p_host_id(raw);
    uint8_t fn[80] = {0x08, 0x04, 0x12, (uint8_t)me.len};
    memcpy(fn + 4, me.bytes, me.len);
    CHECK(send_raw(raw, addr, P, fn, 4 + me.len, true, reply, sizeof reply) >= 0);
    /* garbage, a bad enum, an oversized length prefix, a truncated message: stream reset */
    uint8_t junk[] = {0xff, 0xff, 0xff};
    CHECK(send_raw(raw, addr, P, junk, sizeof junk, true, reply, sizeof reply) < 0);
    uint8_t badenum[] = {0x08, 0x63};
    CHECK(send_raw(raw, addr, P, badenum, sizeof badenum, true, reply, sizeof reply) < 0);
    uint8_t huge[] = {0x80, 0x80, 0x80, 0x10}; /* 32 MiB */
    CHECK(send_raw(raw, addr, P, huge, sizeof huge, false, reply, sizeof reply) < 0);
    uint8_t nonmin[] = {0x81, 0x00};
    CHECK(send_raw(raw, addr, P, nonmin, sizeof nonmin, false, reply, sizeof reply) < 0);
    /* a provider record naming another peer is not stored */
    lp2p_peer_id other = mk_peer(3);
    uint8_t ap[200], *p = ap;
    *p++ = 0x08, *p++ = 0x02, *p++ = 0x12, *p++ = 0x03, *p++ = 0x12, *p++ = 0x01, *p++ = 0x07;
    *p++ = 0x4a, *p++ = (uint8_t)(other.len + 2), *p++ = 0x0a, *p++ = (uint8_t)other.len;
    memcpy(p, other.bytes, other.len), p += other.len;
    CHECK(send_raw(raw, addr, P, ap, (size_t)(p - ap), true, reply, sizeof reply) < 0);
    lp2p_peer_id got[2];
    CHECK_EQ(lp2p__store_get_providers(&nw.k[0]->st, (const uint8_t *)"\x12\x01\x07", 3, lp2p_now(), got, 2), 0);
    /* a record failing validation is refused */
    uint8_t pv[] = {0x12, 0x05, '/', 'c', '/', 'x', 'y', 0x1a, 0x0b, 0x0a, 0x05, '/', 'c', '/', 'x', 'y', 0x12, 0x02, 'B', 'A'};
    CHECK(send_raw(raw, addr, P, pv, sizeof pv, true, reply, sizeof reply) < 0);
    CHECK(lp2p__store_get_record(&nw.k[0]->st, (const uint8_t *)"/c/xy", 5, lp2p_now()) == NULL);
    /* a valid one is echoed */
    pv[18] = 'v';
    CHECK_EQ(send_raw(raw, addr, P, pv, sizeof pv, true, reply, sizeof reply), (int)sizeof pv);
    /* a flood of streams: bounded by max_inbound_requests, the node keeps serving */
    lp2p_stream *held[40];
    int opened = 0;
    nw.k[0]->cfg.max_inbound_requests = 16;
    for (int i = 0; i < 40; i++)
        if (lp2p_stream_open(raw, addr, P, lp2p_deadline_in(5000), &held[opened]) == LP2P_OK) {
            lp2p_stream_write(held[opened], "\x0a", 1, lp2p_deadline_in(1000)); /* half a message */
            opened++;
        }
    for (int i = 0; i < 50; i++) lp2p_host_poll(raw, 5);
    CHECK(nw.k[0]->n_inbound <= 16);
    for (int i = 0; i < opened; i++) lp2p_stream_reset(held[i]);
    for (int i = 0; i < 50 && nw.k[0]->n_inbound; i++) lp2p_host_poll(raw, 5);
    CHECK(send_raw(raw, addr, P, fn, 4 + me.len, true, reply, sizeof reply) >= 0);
    /* several requests on one stream (as go sends them) */
    lp2p_stream *s = NULL;
    CHECK_EQ(lp2p_stream_open(raw, addr, P, lp2p_deadline_in(5000), &s), LP2P_OK);
    int answers = 0;
    for (int i = 0; s && i < 5; i++)
        if (lp2p_stream_write_msg(s, fn, 4 + me.len, lp2p_deadline_in(5000)) == LP2P_OK &&
            lp2p_stream_read_msg(s, reply, sizeof reply, lp2p_deadline_in(5000)) >= 0)
            answers++;
    CHECK_EQ(answers, 5);
    if (s) lp2p_stream_close(s);
    lp2p_host_free(raw);
    net_free(&nw);
}


/* ---- liveness check before eviction, config bootstrap, periodic refresh, reprovide ------------- */
static void test_maintenance(void) {
    TEST("kad table maintenance: liveness check, config bootstrap, refresh, reprovide");
    net nw;
    memset(&nw, 0, sizeof nw);
    lp2p_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.log_level = LP2P_LOG_ERROR;
    /* node A with k = 1, and two servers B, C that land in the same bucket of A */
    lp2p_kad_config kc = net_cfg(LP2P_KAD_SERVER);
    kc.k = 1;
    CHECK_EQ(lp2p_host_new(&cfg, &nw.h[0]), LP2P_OK);
    CHECK_EQ(lp2p_kad_new(nw.h[0], &kc, &nw.k[0]), LP2P_OK);
    nw.n = 1;
    uint8_t ha[32];
    lp2p_peer_id a = lp2p_host_id(nw.h[0]);
    lp2p__kad_hash(a.bytes, a.len, ha);
    int want_bucket = -1;
    while (nw.n < 3) {
        int i = net_add(&nw, LP2P_KAD_SERVER);
        lp2p_peer_id id = lp2p_host_id(nw.h[i]);
        uint8_t hi[32];
        lp2p__kad_hash(id.bytes, id.len, hi);
        int b = lp2p__kad_cpl(ha, hi);
        if (want_bucket < 0) want_bucket = b;
        if (b != want_bucket) { /* another bucket: drop it, try again */
            lp2p_kad_free(nw.k[i]);
            lp2p_host_free(nw.h[i]);
            nw.n--;
        }
    }
    lp2p_peer_id b = lp2p_host_id(nw.h[1]), c = lp2p_host_id(nw.h[2]);
    CHECK_EQ(lp2p_host_identify(nw.h[1], lp2p_host_addr(nw.h[0], 0), lp2p_deadline_in(5000)), LP2P_OK);
    for (int i = 0; i < 100 && !in_rt(nw.k[0], &b); i++) pump_all(&nw, 2);
    CHECK(in_rt(nw.k[0], &b));
    /* C arrives: the bucket is full, B answers the check, so B stays and C is not taken */
    CHECK_EQ(lp2p_host_identify(nw.h[2], lp2p_host_addr(nw.h[0], 0), lp2p_deadline_in(5000)), LP2P_OK);
    pump_all(&nw, 100);
    CHECK(in_rt(nw.k[0], &b));
    CHECK(!in_rt(nw.k[0], &c));
    /* B dies: next time C shows up, the check fails and C replaces B */
    lp2p_kad_free(nw.k[1]), nw.k[1] = NULL;
    lp2p_host_free(nw.h[1]);
    nw.h[1] = nw.h[2], nw.k[1] = nw.k[2], nw.n = 2;
    lp2p__kad_consider(nw.k[0], &c);
    for (int i = 0; i < 300 && !in_rt(nw.k[0], &c); i++) pump_all(&nw, 2);
    CHECK(in_rt(nw.k[0], &c));
    CHECK(!in_rt(nw.k[0], &b));
    net_free(&nw);

    /* a DHT with bootstrap peers in its config joins by itself; refresh and reprovide run */
    CHECK_EQ(net_add(&nw, LP2P_KAD_SERVER), 0);
    CHECK_EQ(net_add(&nw, LP2P_KAD_SERVER), 1);
    lp2p_kad_config kb = net_cfg(LP2P_KAD_SERVER);
    kb.bootstrap_peers[0] = lp2p_host_addr(nw.h[0], 0);
    kb.bootstrap_peers[1] = "not a multiaddr";
    CHECK_EQ(lp2p_host_new(&cfg, &nw.h[2]), LP2P_OK);
    CHECK_EQ(lp2p_kad_new(nw.h[2], &kb, &nw.k[2]), LP2P_ERR_BADADDR);
    kb.bootstrap_peers[1] = NULL;
    kb.refresh_interval_ms = 300;
    kb.reprovide_interval_ms = 300;
    CHECK_EQ(lp2p_kad_new(nw.h[2], &kb, &nw.k[2]), LP2P_OK);
    nw.n = 3;
    lp2p_peer_id n0 = lp2p_host_id(nw.h[0]);
    for (int i = 0; i < 300 && !in_rt(nw.k[2], &n0); i++) pump_all(&nw, 2);
    CHECK(in_rt(nw.k[2], &n0));
    /* node 1 is known to node 0 only; the periodic self lookup finds it */
    CHECK(lp2p_kad_bootstrap(nw.k[1], (const char *const[]){lp2p_host_addr(nw.h[0], 0)}, 1, lp2p_deadline_in(5000)) >= 1);
    lp2p_peer_id n1 = lp2p_host_id(nw.h[1]);
    for (int i = 0; i < 500 && !in_rt(nw.k[2], &n1); i++) pump_all(&nw, 2);
    CHECK(in_rt(nw.k[2], &n1));
    /* reprovide: node 0 forgets the record, node 2 announces it again */
    uint8_t mh[34] = {0x12, 0x20, 0x42};
    CHECK(lp2p_kad_provide(nw.k[2], mh, sizeof mh, lp2p_deadline_in(5000)) >= 1);
    lp2p_peer_id got[2], n2 = lp2p_host_id(nw.h[2]);
    for (int i = 0; i < 200 && !lp2p__store_get_providers(&nw.k[0]->st, mh, sizeof mh, lp2p_now(), got, 2); i++)
        pump_all(&nw, 2); /* ADD_PROVIDER has no answer: node 0 stores it a moment later */
    CHECK_EQ(lp2p__store_get_providers(&nw.k[0]->st, mh, sizeof mh, lp2p_now(), got, 2), 1);
    lp2p__store_expire(&nw.k[0]->st, INT64_MAX);
    CHECK_EQ(lp2p__store_get_providers(&nw.k[0]->st, mh, sizeof mh, lp2p_now(), got, 2), 0);
    int back = 0;
    for (int i = 0; i < 500 && !back; i++) {
        pump_all(&nw, 2);
        back = lp2p__store_get_providers(&nw.k[0]->st, mh, sizeof mh, lp2p_now(), got, 2) == 1;
    }
    CHECK(back && lp2p_peer_id_eq(&got[0], &n2));
    net_free(&nw);
}


/* ---- connections the DHT opened for its requests do not pile up ------------------------------- */
static void test_idle_connections(void) {
    TEST("kad: connections opened for requests close when idle; the app's are kept");
    net nw;
    memset(&nw, 0, sizeof nw);
    for (int i = 0; i < 3; i++) CHECK_EQ(net_add(&nw, LP2P_KAD_SERVER), i);
    nw.k[2]->cfg.idle_connection_ms = 300;
    const char *boot = lp2p_host_addr(nw.h[0], 0);
    CHECK(lp2p_kad_bootstrap(nw.k[1], &boot, 1, lp2p_deadline_in(5000)) >= 1);
    CHECK(lp2p_kad_bootstrap(nw.k[2], &boot, 1, lp2p_deadline_in(5000)) >= 2); /* learns node 1 */
    lp2p_peer_id n0 = lp2p_host_id(nw.h[0]), n1 = lp2p_host_id(nw.h[1]);
    CHECK(lp2p_host_is_connected(nw.h[2], &n1)); /* opened by the lookup */
    int64_t until = lp2p_now() + 3000;
    while (lp2p_now() < until && lp2p_host_is_connected(nw.h[2], &n1)) pump_all(&nw, 5);
    CHECK(!lp2p_host_is_connected(nw.h[2], &n1));
    CHECK(lp2p_host_is_connected(nw.h[2], &n0)); /* the bootstrap connection stays */
    /* a lookup reconnects; the app connecting makes the connection its own */
    lp2p_peer_id out[4];
    CHECK(lp2p_kad_get_closest_peers(nw.k[2], (const uint8_t *)"k", 1, NULL, NULL, out, 4, lp2p_deadline_in(5000)) == 2);
    char id1[LP2P_PEER_ID_STRLEN];
    lp2p_peer_id_str(&n1, id1, sizeof id1);
    CHECK_EQ(lp2p_host_connect(nw.h[2], id1, lp2p_deadline_in(5000)), LP2P_OK);
    until = lp2p_now() + 2500;
    while (lp2p_now() < until) pump_all(&nw, 5);
    CHECK(lp2p_host_is_connected(nw.h[2], &n1));
    net_free(&nw);
}

/* ---- free with work in flight ------------------------------------------------------------------- */
typedef struct bg_lookup {
    lp2p_kad *k;
    int rc;
} bg_lookup;

static void bg_lookup_task(void *arg) {
    bg_lookup *b = (bg_lookup *)arg;
    lp2p_peer_id out[4];
    b->rc = lp2p_kad_get_closest_peers(b->k, (const uint8_t *)"abc", 3, NULL, NULL, out, 4, lp2p_deadline_in(30000));
}

static void test_free_busy(void) {
    TEST("kad free with lookups in flight");
    net nw;
    memset(&nw, 0, sizeof nw);
    for (int i = 0; i < 3; i++) net_add(&nw, LP2P_KAD_SERVER);
    const char *boot = lp2p_host_addr(nw.h[0], 0);
    for (int i = 1; i < 3; i++) CHECK(lp2p_kad_bootstrap(nw.k[i], &boot, 1, lp2p_deadline_in(20000)) >= 1);
    /* a peer that never answers: its table entry makes lookups wait */
    bg_lookup b = {nw.k[1], 1};
    lp2p_task t = lp2p_go(nw.h[1], bg_lookup_task, &b);
    for (int i = 0; i < 3; i++) lp2p_host_poll(nw.h[1], 0);
    lp2p_kad_free(nw.k[1]);
    nw.k[1] = NULL;
    CHECK_EQ(lp2p_task_join(nw.h[1], t, lp2p_deadline_in(5000)), LP2P_OK);
    CHECK(b.rc != 1);
    /* a DHT the app forgot is freed by lp2p_host_free (ASan would report a leak) */
    nw.k[2] = NULL;
    net_free(&nw);
    CHECK(1);
}

int main(void) {
    test_codec();
    test_rt();
    test_store();
    test_network();
    test_bad_input();
    test_maintenance();
    test_idle_connections();
    test_free_busy();
    TEST_END();
}
