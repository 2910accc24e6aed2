/* test_gossipsub.c - pubsub between many of our hosts in one process over TCP on 127.0.0.1:
 * gossipsub and floodsub publish/subscribe, mesh bounds, gossip (IHAVE/IWANT), fanout, PRUNE
 * backoff and peer exchange, IDONTWANT, signing policies and forged signatures, validators,
 * peer scoring, bad input from a hand-written peer, and a 100-host network (1,000 messages:
 * delivery, duplicates per message, latency median and p99, printed).
 * Usage: test_gossipsub [quick]  ("quick" skips the 100-host run) */
#define LIBP2P_IMPLEMENTATION
#include "libp2p.h"
#include "tests/test.h"

#include <pthread.h>
#include <time.h>

#define TOPIC "test-topic"

static lp2p_host *new_host(void) {
    lp2p_config cfg;
    lp2p_host *h = NULL;
    memset(&cfg, 0, sizeof cfg);
    cfg.log_level = getenv("LP2P_TEST_LOG") ? LP2P_LOG_DEBUG : LP2P_LOG_ERROR;
    CHECK_EQ(lp2p_host_new(&cfg, &h), LP2P_OK);
    return h;
}

/* Pump every host on this thread (blocking calls outside tasks run all schedulers). */
static void run_ms(lp2p_host *h, int ms) { lp2p_sleep(h, lp2p_deadline_in(ms)); }

#define WAIT_UNTIL(h, cond, ms)                                                          \
    do {                                                                                 \
        for (int64_t wu_end = lp2p_deadline_in(ms); !(cond) && lp2p_now() < wu_end;)   \
            run_ms(h, 5);                                                                \
    } while (0)

static int count_msgs(lp2p_subscription *s, const char *prefix, int *bad) {
    lp2p_pubsub_message m;
    int n = 0;
    while (lp2p_subscription_next(s, &m, LP2P_NOWAIT) == LP2P_OK) {
        if (prefix && (m.data_len < strlen(prefix) || memcmp(m.data, prefix, strlen(prefix)) != 0)) (*bad)++;
        n++;
    }
    return n;
}

/* ---- two hosts ------------------------------------------------------------------------------------- */
static void test_two_hosts(bool flood_a, bool flood_b) {
    char name[128];
    snprintf(name, sizeof name, "two hosts: %s <-> %s", flood_a ? "floodsub" : "gossipsub", flood_b ? "floodsub" : "gossipsub");
    TEST(name);
    lp2p_host *a = new_host(), *b = new_host();
    lp2p_pubsub *pa = NULL, *pb = NULL;
    lp2p_pubsub_config ca, cb;
    memset(&ca, 0, sizeof ca), memset(&cb, 0, sizeof cb);
    ca.floodsub = flood_a, cb.floodsub = flood_b;
    CHECK_EQ(lp2p_pubsub_new(a, &ca, &pa), LP2P_OK);
    CHECK_EQ(lp2p_pubsub_new(b, &cb, &pb), LP2P_OK);
    CHECK_EQ(lp2p_pubsub_new(b, &cb, &pb), LP2P_ERR_INVALID); /* one per host */
    lp2p_subscription *sa = NULL, *sb = NULL;
    CHECK_EQ(lp2p_pubsub_subscribe(pa, TOPIC, &sa), LP2P_OK);
    CHECK_EQ(lp2p_pubsub_subscribe(pb, TOPIC, &sb), LP2P_OK);
    CHECK_EQ(lp2p_host_connect(a, lp2p_host_addr(b, 0), lp2p_deadline_in(5000)), LP2P_OK);
    lp2p_peer_id ida = lp2p_host_id(a), idb = lp2p_host_id(b), got;
    WAIT_UNTIL(a, lp2p_pubsub_topic_peers(pa, TOPIC, NULL, 0) == 1 && lp2p_pubsub_topic_peers(pb, TOPIC, NULL, 0) == 1, 5000);
    CHECK_EQ(lp2p_pubsub_topic_peers(pa, TOPIC, &got, 1), 1);
    CHECK(lp2p_peer_id_eq(&got, &idb));
    CHECK_EQ(lp2p_pubsub_topic_peers(pb, TOPIC, &got, 1), 1);
    CHECK(lp2p_peer_id_eq(&got, &ida));
    if (!flood_a && !flood_b) { /* both gossipsub: each grafts the other within a heartbeat */
        WAIT_UNTIL(a, lp2p_pubsub_mesh_peers(pa, TOPIC, NULL, 0) == 1 && lp2p_pubsub_mesh_peers(pb, TOPIC, NULL, 0) == 1, 5000);
        CHECK_EQ(lp2p_pubsub_mesh_peers(pa, TOPIC, NULL, 0), 1);
        CHECK_EQ(lp2p_pubsub_mesh_peers(pb, TOPIC, NULL, 0), 1);
    }
    for (int i = 0; i < 10; i++) {
        char msg[32];
        int n = snprintf(msg, sizeof msg, "hello %d", i);
        CHECK_EQ(lp2p_pubsub_publish(pa, TOPIC, msg, (size_t)n), 1);
    }
    lp2p_pubsub_message m;
    int rcv = 0, order_ok = 1;
    for (int i = 0; i < 10; i++) {
        if (lp2p_subscription_next(sb, &m, lp2p_deadline_in(5000)) != LP2P_OK) break;
        char want[32];
        int n = snprintf(want, sizeof want, "hello %d", i);
        order_ok &= m.data_len == (size_t)n && memcmp(m.data, want, (size_t)n) == 0;
        order_ok &= strcmp(m.topic, TOPIC) == 0 && lp2p_peer_id_eq(&m.from, &ida) && lp2p_peer_id_eq(&m.received_from, &ida);
        order_ok &= m.has_seqno && m.id_len == (size_t)ida.len + 8;
        rcv++;
    }
    CHECK_EQ(rcv, 10);
    CHECK(order_ok);
    CHECK_EQ(lp2p_subscription_next(sb, &m, lp2p_deadline_in(200)), LP2P_ERR_TIMEOUT); /* exactly once */
    int bad = 0;
    CHECK_EQ(count_msgs(sa, "hello ", &bad), 10); /* our own messages come back to us (go does the same) */
    /* the other way */
    CHECK_EQ(lp2p_pubsub_publish(pb, TOPIC, "back", 4), 1);
    CHECK_EQ(lp2p_subscription_next(sa, &m, lp2p_deadline_in(5000)), LP2P_OK);
    CHECK(m.data_len == 4 && memcmp(m.data, "back", 4) == 0 && lp2p_peer_id_eq(&m.from, &idb));
    /* unsubscribe: the other side sees it */
    lp2p_subscription_cancel(sb);
    WAIT_UNTIL(a, lp2p_pubsub_topic_peers(pa, TOPIC, NULL, 0) == 0, 5000);
    CHECK_EQ(lp2p_pubsub_topic_peers(pa, TOPIC, NULL, 0), 0);
    CHECK_EQ(lp2p_pubsub_mesh_peers(pa, TOPIC, NULL, 0), 0);
    CHECK_EQ(lp2p_pubsub_publish(pa, TOPIC, "alone", 5), 0); /* no peers: not an error */
    lp2p_pubsub_stats st;
    lp2p_pubsub_get_stats(pb, &st);
    CHECK(st.messages_in >= 10 && st.rejected == 0 && st.rpcs_malformed == 0);
    lp2p_pubsub_free(pa);
    lp2p_host_free(a);
    lp2p_host_free(b); /* frees pb with it */
}

/* ---- a small network of our hosts ----------------------------------------------------------------- */
#define MAXN 128
typedef struct net {
    int n;
    lp2p_host *h[MAXN];
    lp2p_pubsub *ps[MAXN];
    lp2p_subscription *sub[MAXN];
} net;

static void net_new(net *w, int n, const lp2p_pubsub_config *cfg) {
    memset(w, 0, sizeof *w);
    w->n = n;
    for (int i = 0; i < n; i++) {
        w->h[i] = new_host();
        if (w->h[i]) CHECK_EQ(lp2p_pubsub_new(w->h[i], cfg, &w->ps[i]), LP2P_OK);
    }
}

static void net_sub(net *w, int i, const char *topic) { CHECK_EQ(lp2p_pubsub_subscribe(w->ps[i], topic, &w->sub[i]), LP2P_OK); }

static void net_connect(net *w, int i, int j) {
    CHECK_EQ(lp2p_host_connect(w->h[i], lp2p_host_addr(w->h[j], 0), lp2p_deadline_in(10000)), LP2P_OK);
}

static void net_free(net *w) {
    for (int i = 0; i < w->n; i++) lp2p_host_free(w->h[i]);
    memset(w, 0, sizeof *w);
}

static int mesh_of(net *w, int i, const char *topic) { return lp2p_pubsub_mesh_peers(w->ps[i], topic, NULL, 0); }

static bool in_mesh(net *w, int i, int j, const char *topic) {
    lp2p_peer_id v[64], id = lp2p_host_id(w->h[j]);
    int n = lp2p_pubsub_mesh_peers(w->ps[i], topic, v, 64);
    for (int k = 0; k < n && k < 64; k++)
        if (lp2p_peer_id_eq(&v[k], &id)) return true;
    return false;
}

static lp2p_pubsub_stats stats_of(net *w, int i) {
    lp2p_pubsub_stats st;
    memset(&st, 0, sizeof st);
    lp2p_pubsub_get_stats(w->ps[i], &st);
    return st;
}

/* ---- mesh degree stays within [d_lo, d_hi] in a dense network --------------------------------------- */
static void test_mesh_bounds(void) {
    TEST("mesh: 20 densely connected hosts, every mesh within [D_lo, D_hi] and symmetric");
    net w;
    lp2p_pubsub_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.heartbeat_ms = 200; /* faster heartbeats: same rules, quicker test */
    net_new(&w, 20, &cfg);
    for (int i = 0; i < w.n; i++) net_sub(&w, i, TOPIC);
    for (int i = 0; i < w.n; i++) /* each host dials the next 7: 14 neighbours each */
        for (int k = 1; k <= 7; k++) net_connect(&w, i, (i + k) % w.n);
    int ok = 0;
    for (int64_t end = lp2p_deadline_in(15000); !ok && lp2p_now() < end;) {
        run_ms(w.h[0], 200);
        ok = 1;
        for (int i = 0; i < w.n; i++) ok &= mesh_of(&w, i, TOPIC) >= 5 && mesh_of(&w, i, TOPIC) <= 12;
    }
    run_ms(w.h[0], 1000); /* a few more heartbeats: still within bounds, and GRAFT/PRUNE agreed on both sides */
    int lo = 99, hi = 0, asym = 0;
    for (int i = 0; i < w.n; i++) {
        int m = mesh_of(&w, i, TOPIC);
        lo = m < lo ? m : lo, hi = m > hi ? m : hi;
        for (int j = 0; j < w.n; j++)
            if (i != j && in_mesh(&w, i, j, TOPIC) && !in_mesh(&w, j, i, TOPIC)) asym++;
    }
    fprintf(stderr, "    mesh degrees %d..%d, %d one-sided links\n", lo, hi, asym);
    CHECK(lo >= 5 && hi <= 12);
    CHECK(asym <= 2); /* a GRAFT/PRUNE may be in flight at the moment we look */
    lp2p_pubsub_stats st = stats_of(&w, 0);
    CHECK(st.graft_out > 0 || st.graft_in > 0);
    net_free(&w);
}

/* ---- gossip: a message reaches a non-mesh peer by IHAVE/IWANT only ------------------------------------- */
static void test_gossip_only(void) {
    TEST("gossip: IHAVE/IWANT delivers to a peer outside the mesh (D = 1, no flood publish)");
    net w;
    lp2p_pubsub_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.d = cfg.d_lo = cfg.d_hi = cfg.d_score = 1;
    cfg.d_out = -1;
    cfg.no_flood_publish = true;
    cfg.heartbeat_ms = 200;
    net_new(&w, 3, &cfg);
    for (int i = 0; i < 3; i++) net_sub(&w, i, TOPIC);
    net_connect(&w, 0, 1); /* A - B first: B is A's one mesh peer */
    WAIT_UNTIL(w.h[0], in_mesh(&w, 0, 1, TOPIC) && in_mesh(&w, 1, 0, TOPIC), 5000);
    CHECK(in_mesh(&w, 0, 1, TOPIC));
    net_connect(&w, 2, 0); /* C - A: A's mesh is full, so C only gets gossip from A */
    WAIT_UNTIL(w.h[0], lp2p_pubsub_topic_peers(w.ps[0], TOPIC, NULL, 0) == 2, 5000);
    run_ms(w.h[0], 600);
    CHECK(!in_mesh(&w, 0, 2, TOPIC));
    CHECK_EQ(lp2p_pubsub_publish(w.ps[0], TOPIC, "gossiped", 8), 1); /* to the mesh (B) only */
    lp2p_pubsub_message m;
    CHECK_EQ(lp2p_subscription_next(w.sub[2], &m, lp2p_deadline_in(5000)), LP2P_OK);
    CHECK(m.data_len == 8 && memcmp(m.data, "gossiped", 8) == 0);
    lp2p_pubsub_stats a = stats_of(&w, 0), c = stats_of(&w, 2);
    CHECK(a.ihave_out >= 1 && a.iwant_in >= 1 && a.iwant_served >= 1);
    CHECK(c.ihave_in >= 1 && c.iwant_out >= 1);
    CHECK(c.prune_in >= 1); /* C tried to GRAFT and was refused */
    CHECK_EQ(lp2p_subscription_next(w.sub[2], &m, lp2p_deadline_in(500)), LP2P_ERR_TIMEOUT); /* once */
    net_free(&w);
}

/* ---- fanout: publishing to a topic we did not join ------------------------------------------------------ */
static void test_fanout(void) {
    TEST("fanout: a host not in the topic publishes to D topic peers; everyone gets it once");
    net w;
    lp2p_pubsub_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.no_flood_publish = true;
    cfg.d = 3, cfg.d_lo = 2, cfg.d_hi = 4, cfg.d_score = 2, cfg.d_out = 1;
    cfg.heartbeat_ms = 200;
    net_new(&w, 7, &cfg);
    for (int i = 1; i < 7; i++) net_sub(&w, i, TOPIC);
    for (int i = 1; i < 7; i++) net_connect(&w, 0, i);
    for (int i = 1; i < 7; i++) net_connect(&w, i, i % 6 + 1); /* a ring among subscribers */
    WAIT_UNTIL(w.h[0], lp2p_pubsub_topic_peers(w.ps[0], TOPIC, NULL, 0) == 6, 5000);
    run_ms(w.h[0], 800);
    CHECK_EQ(lp2p_pubsub_publish(w.ps[0], TOPIC, "fan", 3), 3); /* D = 3 fanout peers */
    int got = 0;
    for (int i = 1; i < 7; i++) {
        lp2p_pubsub_message m;
        if (lp2p_subscription_next(w.sub[i], &m, lp2p_deadline_in(5000)) == LP2P_OK) got++;
    }
    CHECK_EQ(got, 6);
    run_ms(w.h[0], 300);
    int dups = 0;
    for (int i = 1; i < 7; i++) {
        lp2p_pubsub_message m;
        dups += lp2p_subscription_next(w.sub[i], &m, LP2P_NOWAIT) == LP2P_OK;
    }
    CHECK_EQ(dups, 0);
    CHECK_EQ(lp2p_pubsub_mesh_peers(w.ps[0], TOPIC, NULL, 0), 0); /* a fanout is no mesh */
    net_free(&w);
}

/* ---- PRUNE: backoff respected, peer exchange followed ------------------------------------------------- */
static void test_prune_px(void) {
    TEST("prune: the pruned peer backs off, and follows peer exchange to another peer");
    net w;
    lp2p_pubsub_config cfg;
    lp2p_pubsub_score_params sp;
    lp2p_pubsub_score_thresholds th;
    lp2p_pubsub_score_defaults(&sp, &th);
    th.accept_px = 0; /* follow PX from any peer scoring >= 0 */
    memset(&cfg, 0, sizeof cfg);
    cfg.d = cfg.d_lo = cfg.d_hi = cfg.d_score = 1;
    cfg.d_out = -1;
    cfg.heartbeat_ms = 200;
    cfg.score_thresholds = &th;
    net_new(&w, 3, &cfg);
    for (int i = 0; i < 3; i++) net_sub(&w, i, TOPIC);
    net_connect(&w, 0, 1);
    WAIT_UNTIL(w.h[0], in_mesh(&w, 0, 1, TOPIC), 5000);
    CHECK_EQ(lp2p_host_identify(w.h[0], lp2p_host_addr(w.h[1], 0), lp2p_deadline_in(5000)), LP2P_OK); /* A holds B's record */
    net_connect(&w, 2, 0);
    lp2p_peer_id b = lp2p_host_id(w.h[1]);
    WAIT_UNTIL(w.h[0], lp2p_host_is_connected(w.h[2], &b), 8000);
    CHECK(lp2p_host_is_connected(w.h[2], &b)); /* C learnt B from A's PRUNE */
    lp2p_pubsub_stats c = stats_of(&w, 2);
    CHECK(c.prune_in >= 1 && c.px_connects >= 1);
    CHECK(!in_mesh(&w, 2, 0, TOPIC));
    /* C keeps away from A while its backoff runs: no GRAFT from C reaches A again */
    lp2p_pubsub_stats a0 = stats_of(&w, 0);
    run_ms(w.h[0], 1500);
    lp2p_pubsub_stats a1 = stats_of(&w, 0);
    CHECK_EQ(a1.graft_in, a0.graft_in);
    net_free(&w);
}

/* ---- IDONTWANT ------------------------------------------------------------------------------------------- */
static void test_idontwant(void) {
    TEST("v1.2: large messages make mesh peers send IDONTWANT at once; small ones do not");
    net w;
    lp2p_pubsub_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.heartbeat_ms = 200;
    net_new(&w, 3, &cfg);
    for (int i = 0; i < 3; i++) net_sub(&w, i, TOPIC);
    net_connect(&w, 0, 1), net_connect(&w, 1, 2), net_connect(&w, 2, 0);
    WAIT_UNTIL(w.h[0], mesh_of(&w, 0, TOPIC) == 2 && mesh_of(&w, 1, TOPIC) == 2 && mesh_of(&w, 2, TOPIC) == 2, 5000);
    CHECK(mesh_of(&w, 1, TOPIC) == 2);
    CHECK_EQ(lp2p_pubsub_publish(w.ps[0], TOPIC, "small", 5), 2);
    run_ms(w.h[0], 300);
    lp2p_pubsub_stats b0 = stats_of(&w, 1);
    CHECK_EQ(b0.idontwant_out, 0);
    static char big[4000];
    memset(big, 'x', sizeof big);
    CHECK_EQ(lp2p_pubsub_publish(w.ps[0], TOPIC, big, sizeof big), 2);
    lp2p_pubsub_message m;
    int got = 0;
    for (int i = 1; i < 3; i++)
        while (lp2p_subscription_next(w.sub[i], &m, lp2p_deadline_in(3000)) == LP2P_OK)
            if (m.data_len == sizeof big) {
                got++;
                break;
            }
    CHECK_EQ(got, 2);
    run_ms(w.h[0], 300);
    lp2p_pubsub_stats b = stats_of(&w, 1), c = stats_of(&w, 2);
    CHECK(b.idontwant_out >= 1 && c.idontwant_out >= 1); /* B and C told each other (not A: it sent it) */
    CHECK(b.idontwant_in + c.idontwant_in >= 1);
    net_free(&w);
}

/* ---- signing policies -------------------------------------------------------------------------------- */
static void test_signing(void) {
    TEST("signing: StrictNoSign hosts talk; StrictSign and StrictNoSign reject each other's messages");
    lp2p_pubsub_config sign, nosign;
    memset(&sign, 0, sizeof sign), memset(&nosign, 0, sizeof nosign);
    nosign.signing = LP2P_PUBSUB_STRICT_NO_SIGN;
    net w;
    net_new(&w, 3, &nosign);
    lp2p_pubsub_free(w.ps[2]);
    CHECK_EQ(lp2p_pubsub_new(w.h[2], &sign, &w.ps[2]), LP2P_OK);
    for (int i = 0; i < 3; i++) net_sub(&w, i, TOPIC);
    net_connect(&w, 0, 1), net_connect(&w, 0, 2);
    WAIT_UNTIL(w.h[0], lp2p_pubsub_topic_peers(w.ps[0], TOPIC, NULL, 0) == 2 && lp2p_pubsub_topic_peers(w.ps[2], TOPIC, NULL, 0) == 1, 5000);
    CHECK_EQ(lp2p_pubsub_publish(w.ps[0], TOPIC, "unsigned", 8), 2);
    lp2p_pubsub_message m;
    CHECK_EQ(lp2p_subscription_next(w.sub[1], &m, lp2p_deadline_in(5000)), LP2P_OK);
    CHECK(m.from.len == 0 && !m.has_seqno && m.id_len == 32); /* sha256 of the data */
    CHECK_EQ(lp2p_subscription_next(w.sub[2], &m, lp2p_deadline_in(500)), LP2P_ERR_TIMEOUT);
    CHECK(stats_of(&w, 2).rejected >= 1);
    CHECK_EQ(lp2p_pubsub_publish(w.ps[2], TOPIC, "signed", 6), 1);
    run_ms(w.h[0], 500);
    CHECK(stats_of(&w, 0).rejected >= 1);
    int bad = 0;
    count_msgs(w.sub[0], NULL, &bad);
    net_free(&w);
}

/* ---- validators ---------------------------------------------------------------------------------------- */
static lp2p_pubsub_validation only_good(lp2p_pubsub *ps, const lp2p_pubsub_message *m, void *user) {
    (void)ps, (void)user;
    if (m->data_len >= 3 && memcmp(m->data, "bad", 3) == 0) return LP2P_PUBSUB_REJECT;
    if (m->data_len >= 4 && memcmp(m->data, "meh", 3) == 0) return LP2P_PUBSUB_IGNORE;
    return LP2P_PUBSUB_ACCEPT;
}

static void test_validator(void) {
    TEST("validators: REJECT drops and penalises, IGNORE drops quietly, neither is forwarded");
    net w;
    lp2p_pubsub_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.heartbeat_ms = 200;
    net_new(&w, 3, &cfg);
    for (int i = 0; i < 3; i++) net_sub(&w, i, TOPIC);
    CHECK_EQ(lp2p_pubsub_set_validator(w.ps[1], TOPIC, only_good, NULL), LP2P_OK);
    net_connect(&w, 0, 1), net_connect(&w, 1, 2); /* A - B - C: C hears A only through B */
    WAIT_UNTIL(w.h[0], mesh_of(&w, 1, TOPIC) == 2 && mesh_of(&w, 0, TOPIC) == 1 && mesh_of(&w, 2, TOPIC) == 1, 5000);
    CHECK_EQ(lp2p_pubsub_publish(w.ps[0], TOPIC, "good", 4), 1);
    CHECK_EQ(lp2p_pubsub_publish(w.ps[0], TOPIC, "bad!", 4), 1);
    CHECK_EQ(lp2p_pubsub_publish(w.ps[0], TOPIC, "meh!", 4), 1);
    CHECK_EQ(lp2p_pubsub_publish(w.ps[1], TOPIC, "bad-own", 7), LP2P_ERR_INVALID); /* our own messages too */
    run_ms(w.h[0], 800);
    int bad = 0;
    CHECK_EQ(count_msgs(w.sub[1], "good", &bad), 1);
    CHECK_EQ(count_msgs(w.sub[2], "good", &bad), 1);
    CHECK_EQ(bad, 0);
    lp2p_pubsub_stats b = stats_of(&w, 1);
    CHECK_EQ(b.rejected, 1);
    CHECK(b.ignored >= 1); /* IGNOREd messages are not "seen" (as go): gossip may offer them again */
    double score = 0;
    lp2p_peer_id a = lp2p_host_id(w.h[0]);
    CHECK_EQ(lp2p_pubsub_peer_score(w.ps[1], &a, &score), LP2P_OK);
    CHECK(score < 0); /* one invalid message: P4 = -10 x 1^2, above P1/P2 */
    CHECK_EQ(lp2p_pubsub_set_validator(w.ps[1], TOPIC, NULL, NULL), LP2P_OK);
    net_free(&w);
}

/* ---- explicit (direct) peers and leaving a topic ------------------------------------------------------ */
static void test_direct_and_leave(void) {
    TEST("direct peers: dialed by the router, always sent every message, never in the mesh; leaving PRUNEs with the unsubscribe backoff");
    lp2p_host *a = new_host(), *b = new_host(), *c = new_host();
    lp2p_pubsub *pa = NULL, *pb = NULL, *pc = NULL;
    lp2p_subscription *sa = NULL, *sb = NULL, *sc = NULL;
    lp2p_pubsub_config ca, cb;
    memset(&ca, 0, sizeof ca), memset(&cb, 0, sizeof cb);
    const char *direct_b[] = {lp2p_host_addr(b, 0)}, *direct_a[] = {lp2p_host_addr(a, 0)}, *bad[] = {"/ip4/1.2.3.4/tcp/1"};
    ca.direct_peers = bad, ca.n_direct_peers = 1;
    CHECK_EQ(lp2p_pubsub_new(a, &ca, &pa), LP2P_ERR_INVALID); /* no /p2p/ */
    ca.direct_peers = direct_b, ca.n_direct_peers = 1, ca.heartbeat_ms = 200;
    cb.direct_peers = direct_a, cb.n_direct_peers = 1, cb.heartbeat_ms = 200;
    CHECK_EQ(lp2p_pubsub_new(a, &ca, &pa), LP2P_OK);
    CHECK_EQ(lp2p_pubsub_new(b, &cb, &pb), LP2P_OK);
    lp2p_pubsub_config cc;
    memset(&cc, 0, sizeof cc);
    cc.heartbeat_ms = 200;
    CHECK_EQ(lp2p_pubsub_new(c, &cc, &pc), LP2P_OK);
    CHECK_EQ(lp2p_pubsub_subscribe(pa, TOPIC, &sa), LP2P_OK);
    CHECK_EQ(lp2p_pubsub_subscribe(pb, TOPIC, &sb), LP2P_OK);
    CHECK_EQ(lp2p_pubsub_subscribe(pc, TOPIC, &sc), LP2P_OK);
    lp2p_peer_id idb = lp2p_host_id(b);
    WAIT_UNTIL(a, lp2p_host_is_connected(a, &idb), 5000); /* nobody called connect */
    CHECK(lp2p_host_is_connected(a, &idb));
    CHECK_EQ(lp2p_host_connect(c, lp2p_host_addr(a, 0), lp2p_deadline_in(5000)), LP2P_OK);
    WAIT_UNTIL(a, lp2p_pubsub_topic_peers(pa, TOPIC, NULL, 0) == 2, 5000);
    run_ms(a, 800);
    CHECK_EQ(lp2p_pubsub_mesh_peers(pa, TOPIC, NULL, 0), 1); /* C only: B is direct */
    CHECK_EQ(lp2p_pubsub_mesh_peers(pb, TOPIC, NULL, 0), 0);
    CHECK_EQ(lp2p_pubsub_publish(pa, TOPIC, "direct", 6), 2);
    lp2p_pubsub_message m;
    CHECK_EQ(lp2p_subscription_next(sb, &m, lp2p_deadline_in(3000)), LP2P_OK);
    CHECK(m.data_len == 6 && !memcmp(m.data, "direct", 6));
    /* A leaves the topic: C, its mesh peer, gets a PRUNE and sees the unsubscription */
    lp2p_pubsub_stats c0;
    memset(&c0, 0, sizeof c0);
    lp2p_pubsub_get_stats(pc, &c0);
    lp2p_subscription_cancel(sa);
    run_ms(a, 400);
    lp2p_pubsub_stats c1;
    memset(&c1, 0, sizeof c1);
    lp2p_pubsub_get_stats(pc, &c1);
    CHECK_EQ(c1.prune_in, c0.prune_in + 1);
    CHECK_EQ(lp2p_pubsub_mesh_peers(pc, TOPIC, NULL, 0), 0);
    CHECK_EQ(lp2p_pubsub_topic_peers(pc, TOPIC, NULL, 0), 0);
    lp2p_host_free(a), lp2p_host_free(b), lp2p_host_free(c);
}

/* ---- bad input from a hand-written peer ("evil"): it speaks /meshsub/1.1.0 with raw RPCs --------------- */
typedef struct sink {
    int rpcs, prunes, grafts, iwant_ids, ihaves;
    int msgs_with[4]; /* publish entries whose data starts with "m0".."m3" */
} sink;
static sink evil_sink, other_sink;

static void sink_handler(lp2p_stream *s, void *user) {
    static uint8_t buf[1 << 20];
    ptrdiff_t n;
    sink *sk = (sink *)user;
    while ((n = lp2p_stream_read_msg(s, buf, sizeof buf, lp2p_deadline_in(60000))) >= 0) {
        lp2p__ps_rpc r;
        lp2p__ctx *ctx = &lp2p_stream_host(s)->ctx;
        if (lp2p__ps_rpc_decode(&r, ctx, buf, (size_t)n) == LP2P_OK) {
            sk->rpcs++;
            for (int i = 0; i < r.n_msgs; i++)
                if (r.msgs[i].data.n >= 2 && r.msgs[i].data.p[0] == 'm' && r.msgs[i].data.p[1] >= '0' && r.msgs[i].data.p[1] <= '3')
                    sk->msgs_with[r.msgs[i].data.p[1] - '0']++;
            for (int i = 0; i < r.n_ctl; i++) {
                sk->prunes += r.ctl[i].kind == LP2P__PS_CTL_PRUNE;
                sk->grafts += r.ctl[i].kind == LP2P__PS_CTL_GRAFT;
                sk->ihaves += r.ctl[i].kind == LP2P__PS_CTL_IHAVE;
                if (r.ctl[i].kind == LP2P__PS_CTL_IWANT) sk->iwant_ids += r.ctl[i].n_ids;
            }
        }
        lp2p__ps_rpc_clear(&r);
    }
}

static lp2p__ctx tctx; /* for the raw encoders */

static void rpc_sub(lp2p__buf *rpc, const char *topic) {
    lp2p__buf so = {0, 0, 0};
    lp2p__pb_put_varint(&tctx, &so, 1, 1);
    lp2p__pb_put_bytes(&tctx, &so, 2, topic, strlen(topic));
    lp2p__pb_put_bytes(&tctx, rpc, 1, so.p, so.len);
    lp2p__buf_free(&tctx, &so);
}

/* control with one entry of field (1 IHAVE, 2 IWANT, 3 GRAFT, 4 PRUNE) built from entry */
static void rpc_ctl(lp2p__buf *rpc, uint32_t field, const lp2p__buf *entry) {
    lp2p__buf c = {0, 0, 0};
    lp2p__pb_put_bytes(&tctx, &c, field, entry->p, entry->len);
    lp2p__pb_put_bytes(&tctx, rpc, 3, c.p, c.len);
    lp2p__buf_free(&tctx, &c);
}

static void rpc_topic_ctl(lp2p__buf *rpc, uint32_t field, const char *topic) {
    lp2p__buf e = {0, 0, 0};
    lp2p__pb_put_bytes(&tctx, &e, 1, topic, strlen(topic));
    rpc_ctl(rpc, field, &e);
    lp2p__buf_free(&tctx, &e);
}

/* A Message signed by nobody in particular: from = author, random 64-byte signature. */
static void rpc_forged(lp2p__buf *rpc, const lp2p_peer_id *author, const char *data, uint64_t seq) {
    lp2p__buf m = {0, 0, 0};
    uint8_t sq[8], sig[64];
    lp2p__put_be64(sq, seq);
    lp2p__random(sig, sizeof sig);
    lp2p__pb_put_bytes(&tctx, &m, 1, author->bytes, author->len);
    lp2p__pb_put_bytes(&tctx, &m, 2, data, strlen(data));
    lp2p__pb_put_bytes(&tctx, &m, 3, sq, 8);
    lp2p__pb_put_bytes(&tctx, &m, 4, TOPIC, strlen(TOPIC));
    lp2p__pb_put_bytes(&tctx, &m, 5, sig, sizeof sig);
    lp2p__pb_put_bytes(&tctx, rpc, 2, m.p, m.len);
    lp2p__buf_free(&tctx, &m);
}

static int send_rpc(lp2p_stream *s, lp2p__buf *rpc) {
    int rc = lp2p_stream_write_msg(s, rpc->p, rpc->len, lp2p_deadline_in(5000));
    rpc->len = 0;
    return rc;
}

static double score_of(net *w, int i, lp2p_host *peer) {
    double sc = 0;
    lp2p_peer_id id = lp2p_host_id(peer);
    lp2p_pubsub_peer_score(w->ps[i], &id, &sc);
    return sc;
}

static void test_bad_input(void) {
    TEST("bad input: malformed and oversized RPCs, forged signatures, GRAFT spam in backoff, IHAVE/IWANT floods");
    net w; /* V = 0 (victim), N = 1 (an honest peer of V) */
    lp2p_pubsub_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.heartbeat_ms = 200;
    cfg.max_rpc_size = 64 << 10;
    net_new(&w, 2, &cfg);
    net_sub(&w, 0, TOPIC), net_sub(&w, 1, TOPIC);
    net_connect(&w, 1, 0);
    lp2p_host *e = new_host();
    memset(&evil_sink, 0, sizeof evil_sink);
    lp2p__ctx_init(&tctx, NULL, NULL, LP2P_LOG_ERROR);
    CHECK_EQ(lp2p_host_handle(e, "/meshsub/1.1.0", sink_handler, &other_sink), LP2P_OK);
    const char *vaddr = lp2p_host_addr(w.h[0], 0);
    lp2p_stream *s = NULL;
    lp2p__buf rpc = {0, 0, 0};
    lp2p_pubsub_message m;
    int bad = 0;

    /* 1. garbage, then an oversized length: the stream is reset each time, the host keeps serving */
    CHECK_EQ(lp2p_stream_open(e, vaddr, "/meshsub/1.1.0", lp2p_deadline_in(5000), &s), LP2P_OK);
    static const uint8_t junk[] = {0x05, 0x0a, 0xff, 0xff, 0xff, 0xff};
    CHECK_EQ(lp2p_stream_write(s, junk, sizeof junk, lp2p_deadline_in(5000)), LP2P_OK);
    char c;
    CHECK(lp2p_stream_read(s, &c, 1, lp2p_deadline_in(5000)) < 0); /* reset */
    lp2p_stream_reset(s);
    CHECK_EQ(lp2p_stream_open(e, vaddr, "/meshsub/1.1.0", lp2p_deadline_in(5000), &s), LP2P_OK);
    uint8_t big[LP2P__UVARINT_MAX];
    size_t k = lp2p__uvarint_put(big, 1 << 20);
    CHECK_EQ(lp2p_stream_write(s, big, k, lp2p_deadline_in(5000)), LP2P_OK);
    CHECK(lp2p_stream_read(s, &c, 1, lp2p_deadline_in(5000)) < 0);
    lp2p_stream_reset(s);
    CHECK_EQ(stats_of(&w, 0).rpcs_malformed, 2);
    WAIT_UNTIL(w.h[0], lp2p_pubsub_topic_peers(w.ps[0], TOPIC, NULL, 0) >= 1, 3000);
    CHECK_EQ(lp2p_pubsub_publish(w.ps[1], TOPIC, "still-ok", 8), 1);
    CHECK_EQ(lp2p_subscription_next(w.sub[0], &m, lp2p_deadline_in(3000)), LP2P_OK);
    count_msgs(w.sub[0], NULL, &bad);
    run_ms(w.h[0], 100);
    count_msgs(w.sub[1], NULL, &bad); /* N's own copy */

    /* 2. forged signatures (someone else's name; ours) are rejected, not forwarded, and cost E */
    CHECK_EQ(lp2p_stream_open(e, vaddr, "/meshsub/1.1.0", lp2p_deadline_in(5000), &s), LP2P_OK);
    rpc_sub(&rpc, TOPIC);
    CHECK_EQ(send_rpc(s, &rpc), LP2P_OK);
    WAIT_UNTIL(w.h[0], lp2p_pubsub_topic_peers(w.ps[0], TOPIC, NULL, 0) == 2, 3000);
    lp2p_peer_id nid = lp2p_host_id(w.h[1]), vid = lp2p_host_id(w.h[0]);
    rpc_forged(&rpc, &nid, "forged-1", 1);
    rpc_forged(&rpc, &vid, "forged-2", 2);
    CHECK_EQ(send_rpc(s, &rpc), LP2P_OK);
    run_ms(w.h[0], 400);
    CHECK_EQ(lp2p_subscription_next(w.sub[0], &m, LP2P_NOWAIT), LP2P_ERR_TIMEOUT);
    CHECK_EQ(lp2p_subscription_next(w.sub[1], &m, lp2p_deadline_in(300)), LP2P_ERR_TIMEOUT);
    CHECK_EQ(stats_of(&w, 0).rejected, 2);
    double sc = score_of(&w, 0, e);
    fprintf(stderr, "    forger's score after 2 forged messages: %.1f\n", sc);
    CHECK(sc < 0);

    CHECK(sc <= -40 + 1); /* P4: -10 x 2^2 (plus a little P1) */
    lp2p_stream_reset(s);

    /* 4. a fresh evil peer (E2): IHAVE flood, then GRAFT spam during the backoff it asked for */
    lp2p_host *e2 = new_host();
    CHECK_EQ(lp2p_host_handle(e2, "/meshsub/1.1.0", sink_handler, &evil_sink), LP2P_OK);
    memset(&evil_sink, 0, sizeof evil_sink);
    CHECK_EQ(lp2p_stream_open(e2, vaddr, "/meshsub/1.1.0", lp2p_deadline_in(5000), &s), LP2P_OK);
    rpc_sub(&rpc, TOPIC);
    CHECK_EQ(send_rpc(s, &rpc), LP2P_OK);
    WAIT_UNTIL(w.h[0], lp2p_pubsub_topic_peers(w.ps[0], TOPIC, NULL, 0) == 3, 3000);
    /* IWANT flood: the same message asked 10 times is served gossip_retransmission (3) times */
    CHECK_EQ(lp2p_pubsub_publish(w.ps[0], TOPIC, "m0-wanted", 9), 3);
    lp2p_pubsub_message own;
    CHECK_EQ(lp2p_subscription_next(w.sub[0], &own, lp2p_deadline_in(1000)), LP2P_OK);
    lp2p__buf ids = {0, 0, 0};
    lp2p__pb_put_bytes(&tctx, &ids, 1, own.id, own.id_len);
    for (int i = 0; i < 10; i++) rpc_ctl(&rpc, 2, &ids);
    CHECK_EQ(send_rpc(s, &rpc), LP2P_OK);
    run_ms(w.h[0], 400);
    fprintf(stderr, "    copies of one message after 10 IWANTs: %d\n", evil_sink.msgs_with[0]);
    CHECK(evil_sink.msgs_with[0] >= 2 && evil_sink.msgs_with[0] <= 1 + 3);
    lp2p__buf_free(&tctx, &ids);
    for (int r = 0; r < 3; r++) { /* 3 RPCs of 10 IHAVEs x 200 fresh IDs (each RPC < 64 KiB) */
        for (int i = 0; i < 10; i++) {
            lp2p__buf ih = {0, 0, 0};
            lp2p__pb_put_bytes(&tctx, &ih, 1, TOPIC, strlen(TOPIC));
            for (int j = 0; j < 200; j++) {
                uint8_t id[20];
                lp2p__random(id, sizeof id);
                lp2p__pb_put_bytes(&tctx, &ih, 2, id, sizeof id);
            }
            rpc_ctl(&rpc, 1, &ih);
            lp2p__buf_free(&tctx, &ih);
        }
        CHECK_EQ(send_rpc(s, &rpc), LP2P_OK);
    }
    run_ms(w.h[0], 150);
    fprintf(stderr, "    IWANT IDs asked after 30 IHAVEs x 200 IDs: %d (cap %d per heartbeat)\n", evil_sink.iwant_ids, 5000);
    CHECK(evil_sink.iwant_ids > 0 && evil_sink.iwant_ids <= 2000); /* max_ihave_messages = 10 IHAVEs counted */
    /* PRUNE from E2 puts it in backoff; its GRAFTs are then refused with PRUNE and penalised */
    rpc_topic_ctl(&rpc, 3, TOPIC);
    CHECK_EQ(send_rpc(s, &rpc), LP2P_OK);
    run_ms(w.h[0], 100);
    rpc_topic_ctl(&rpc, 4, TOPIC);
    CHECK_EQ(send_rpc(s, &rpc), LP2P_OK);
    run_ms(w.h[0], 100);
    int prunes0 = evil_sink.prunes;
    for (int i = 0; i < 10; i++) {
        rpc_topic_ctl(&rpc, 3, TOPIC);
        CHECK_EQ(send_rpc(s, &rpc), LP2P_OK);
    }
    run_ms(w.h[0], 300);
    sc = score_of(&w, 0, e2);
    fprintf(stderr, "    GRAFT spammer: %d PRUNEs back, score %.1f\n", evil_sink.prunes - prunes0, sc);
    CHECK(evil_sink.prunes - prunes0 >= 1);
    CHECK(sc < -80); /* graylisted: ten GRAFTs in backoff, all within the flood threshold */
    uint64_t gl = stats_of(&w, 0).rpcs_graylisted;
    rpc_topic_ctl(&rpc, 3, TOPIC);
    CHECK_EQ(send_rpc(s, &rpc), LP2P_OK);
    run_ms(w.h[0], 200);
    CHECK(stats_of(&w, 0).rpcs_graylisted > gl);
    CHECK(!in_mesh(&w, 0, 0, TOPIC));
    lp2p_stream_reset(s);

    /* the victim still serves its honest peer */
    CHECK_EQ(lp2p_pubsub_publish(w.ps[1], TOPIC, "after", 5), lp2p_pubsub_topic_peers(w.ps[1], TOPIC, NULL, 0));
    int got = 0;
    while (lp2p_subscription_next(w.sub[0], &m, lp2p_deadline_in(2000)) == LP2P_OK)
        if (m.data_len == 5 && !memcmp(m.data, "after", 5)) got++;
    CHECK_EQ(got, 1);
    lp2p__buf_free(&tctx, &rpc);
    lp2p_host_free(e);
    lp2p_host_free(e2);
    net_free(&w);
}

/* ---- scores: visible, P2 grows with first deliveries, retained after disconnect --------------------------- */
static void test_scores(void) {
    TEST("scores: P2 from first deliveries, P1 from mesh time, retained after disconnect");
    net w;
    lp2p_pubsub_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.heartbeat_ms = 200;
    net_new(&w, 2, &cfg);
    net_sub(&w, 0, TOPIC), net_sub(&w, 1, TOPIC);
    net_connect(&w, 0, 1);
    WAIT_UNTIL(w.h[0], in_mesh(&w, 0, 1, TOPIC), 5000);
    for (int i = 0; i < 5; i++) CHECK_EQ(lp2p_pubsub_publish(w.ps[1], TOPIC, "p2", 2 + 0 * i), 1);
    run_ms(w.h[0], 1200);
    double sc = score_of(&w, 0, w.h[1]);
    fprintf(stderr, "    score after 5 first deliveries: %.2f\n", sc);
    CHECK(sc > 1);
    lp2p_peer_id b = lp2p_host_id(w.h[1]);
    CHECK_EQ(lp2p_host_disconnect(w.h[0], &b), LP2P_OK);
    run_ms(w.h[0], 300);
    double after = 0;
    CHECK_EQ(lp2p_pubsub_peer_score(w.ps[0], &b, &after), LP2P_ERR_NOTFOUND); /* positive: forgotten at once (go) */
    lp2p_peer_id nobody;
    CHECK_EQ(lp2p_peer_id_parse("12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN", &nobody), LP2P_OK);
    CHECK_EQ(lp2p_pubsub_peer_score(w.ps[0], &nobody, &after), LP2P_ERR_NOTFOUND);
    lp2p_pubsub_topic_score_params tp;
    lp2p_pubsub_score_params sp;
    lp2p_pubsub_score_defaults(&sp, NULL);
    tp = sp.topic_defaults;
    tp.invalid_message_deliveries_weight = 1; /* a positive penalty weight is refused */
    CHECK_EQ(lp2p_pubsub_set_topic_score_params(w.ps[0], TOPIC, &tp), LP2P_ERR_INVALID);
    tp = sp.topic_defaults;
    tp.first_message_deliveries_weight = 5;
    CHECK_EQ(lp2p_pubsub_set_topic_score_params(w.ps[0], TOPIC, &tp), LP2P_OK);
    CHECK_EQ(lp2p_pubsub_set_topic_score_params(w.ps[0], TOPIC, NULL), LP2P_OK);
    net_free(&w);
}

/* ---- P3 (mesh delivery deficit), P5 (application), P6 (IP colocation) -------------------------------------- */
static double app_score(const lp2p_peer_id *peer, void *user) {
    return lp2p_peer_id_eq(peer, (const lp2p_peer_id *)user) ? -100 : 0;
}

static void test_score_components(void) {
    TEST("scores: P3 punishes a silent mesh peer, P5 application scores, P6 peers sharing an IP");
    net w;
    lp2p_pubsub_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.heartbeat_ms = 200;
    net_new(&w, 3, &cfg);
    lp2p_pubsub_topic_score_params tp;
    lp2p_pubsub_score_params sp;
    lp2p_pubsub_score_defaults(&sp, NULL);
    tp = sp.topic_defaults;
    tp.mesh_message_deliveries_weight = -1, tp.mesh_message_deliveries_threshold = 4;
    tp.mesh_message_deliveries_activation_ms = 600, tp.mesh_message_deliveries_window_ms = 50;
    tp.mesh_failure_penalty_weight = -1;
    CHECK_EQ(lp2p_pubsub_set_topic_score_params(w.ps[0], TOPIC, &tp), LP2P_OK);
    for (int i = 0; i < 3; i++) net_sub(&w, i, TOPIC);
    net_connect(&w, 0, 1);
    WAIT_UNTIL(w.h[0], in_mesh(&w, 0, 1, TOPIC), 5000);
    CHECK(in_mesh(&w, 0, 1, TOPIC));
    run_ms(w.h[0], 1500); /* B says nothing: after 600 ms its deficit counts, A prunes it */
    double sc = score_of(&w, 0, w.h[1]);
    fprintf(stderr, "    silent mesh peer after activation: score %.1f, in mesh: %d\n", sc, in_mesh(&w, 0, 1, TOPIC));
    CHECK(sc < 0);
    CHECK(!in_mesh(&w, 0, 1, TOPIC));
    net_free(&w);

    lp2p_host *a = new_host(), *b = new_host(), *c = new_host();
    lp2p_peer_id idb = lp2p_host_id(b);
    lp2p_pubsub_score_defaults(&sp, NULL);
    sp.app_specific_score = app_score, sp.app_specific_user = &idb;
    sp.ip_colocation_factor_weight = -1, sp.ip_colocation_factor_threshold = 1; /* all of us are on 127.0.0.1 */
    memset(&cfg, 0, sizeof cfg);
    cfg.score_params = &sp;
    lp2p_pubsub *pa = NULL, *pb = NULL, *pc = NULL;
    CHECK_EQ(lp2p_pubsub_new(a, &cfg, &pa), LP2P_OK);
    CHECK_EQ(lp2p_pubsub_new(b, NULL, &pb), LP2P_OK);
    CHECK_EQ(lp2p_pubsub_new(c, NULL, &pc), LP2P_OK);
    CHECK_EQ(lp2p_host_connect(a, lp2p_host_addr(b, 0), lp2p_deadline_in(5000)), LP2P_OK);
    CHECK_EQ(lp2p_host_connect(a, lp2p_host_addr(c, 0), lp2p_deadline_in(5000)), LP2P_OK);
    WAIT_UNTIL(a, lp2p_pubsub_topic_peers(pa, NULL, NULL, 0) == 2, 5000);
    lp2p_peer_id idc = lp2p_host_id(c);
    double sb = 0, scc = 0;
    CHECK_EQ(lp2p_pubsub_peer_score(pa, &idb, &sb), LP2P_OK);
    CHECK_EQ(lp2p_pubsub_peer_score(pa, &idc, &scc), LP2P_OK);
    fprintf(stderr, "    P5 -100 and P6 (2 peers on one IP, threshold 1): %.1f; P6 alone: %.1f\n", sb, scc);
    CHECK(sb <= -100 - 1 + 0.001 && sb >= -101 - 0.001); /* -100 (P5) - 1 (P6: (2-1)^2 x -1) */
    CHECK(scc <= -1 + 0.001 && scc >= -1 - 0.001);
    lp2p_host_free(a), lp2p_host_free(b), lp2p_host_free(c);
}

/* ---- 100 hosts, 1,000 messages --------------------------------------------------------------------------
 * Each host lives on its own thread (lp2p_host_run), as if in its own process; the main thread
 * talks to them only with lp2p_host_post. A task per host drains its subscription and stamps
 * every delivery; the main thread publishes from a pseudo-random host, waits until the other 99
 * have the message (at most 2 s), then publishes the next, so the latency is the network's and
 * not a queue's. */
#define HN 100
#define HMSGS 1000
typedef struct hnode {
    int idx;
    pthread_t th;
    lp2p_host *h;
    lp2p_pubsub *ps;
    lp2p_subscription *sub;
    const char *addr;
    volatile int ready, mesh, topic_peers;
    lp2p_pubsub_stats st;
} hnode;
static hnode hn[HN];
static double h_sent[HMSGS];
static float h_lat[HN][HMSGS]; /* ms; 0 = not received */
static int h_count[HMSGS], h_app_dups, h_links;
static volatile int h_stop;

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void h_receiver(void *arg) {
    hnode *n = (hnode *)arg;
    lp2p_pubsub_message m;
    while (lp2p_subscription_next(n->sub, &m, LP2P_FOREVER) == LP2P_OK) {
        if (m.data_len != 16) continue;
        uint32_t k = lp2p__be32(m.data), src = lp2p__be32(m.data + 4);
        if (k >= HMSGS || (int)src == n->idx) continue; /* our own message, delivered locally */
        if (h_lat[n->idx][k] != 0) {
            __atomic_add_fetch(&h_app_dups, 1, __ATOMIC_RELAXED);
            continue;
        }
        h_lat[n->idx][k] = (float)((now_us() - h_sent[k]) / 1000.0);
        if (h_lat[n->idx][k] == 0) h_lat[n->idx][k] = 1e-6f;
        __atomic_add_fetch(&h_count[k], 1, __ATOMIC_RELEASE);
    }
}

typedef struct hjob {
    int from, to, k;
} hjob;
static hjob h_jobs[HN * 8];
static int n_jobs;

static void h_connect(void *arg) {
    hjob *j = (hjob *)arg;
    if (lp2p_host_connect(hn[j->from].h, hn[j->to].addr, lp2p_deadline_in(10000)) == LP2P_OK)
        __atomic_add_fetch(&h_links, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&n_jobs, -1, __ATOMIC_RELEASE);
}

static void h_publish(void *arg) {
    hjob *j = (hjob *)arg;
    uint8_t data[16];
    lp2p__put_be32(data, (uint32_t)j->k);
    lp2p__put_be32(data + 4, (uint32_t)j->from);
    memset(data + 8, 0, 8);
    h_sent[j->k] = now_us();
    lp2p_pubsub_publish(hn[j->from].ps, TOPIC, data, sizeof data);
}

static void h_probe(void *arg) {
    hnode *n = (hnode *)arg;
    n->mesh = lp2p_pubsub_mesh_peers(n->ps, TOPIC, NULL, 0);
    n->topic_peers = lp2p_pubsub_topic_peers(n->ps, TOPIC, NULL, 0);
}

static void h_stop_loop(void *arg) { lp2p_host_stop(((hnode *)arg)->h); }

static void *h_thread(void *arg) {
    hnode *n = (hnode *)arg;
    lp2p_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.log_level = LP2P_LOG_ERROR;
    if (lp2p_host_new(&cfg, &n->h) != LP2P_OK || lp2p_pubsub_new(n->h, NULL, &n->ps) != LP2P_OK ||
        lp2p_pubsub_subscribe(n->ps, TOPIC, &n->sub) != LP2P_OK) {
        n->ready = -1;
        return NULL;
    }
    n->addr = lp2p_host_addr(n->h, 0);
    lp2p_go(n->h, h_receiver, n);
    __atomic_store_n(&n->ready, 1, __ATOMIC_RELEASE);
    while (!h_stop) lp2p_host_run(n->h);
    lp2p_pubsub_get_stats(n->ps, &n->st);
    lp2p_host_free(n->h);
    return NULL;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* n hosts, m messages (100 and 1,000; fewer under the sanitizers, which are ~20x slower) */
static void test_hundred(int n, int m) {
    char name[160];
    snprintf(name, sizeof name, "%d hosts on %d threads (ring + 4 random links each), %d messages: delivery, duplicates, latency", n, n, m);
    TEST(name);
    memset(hn, 0, sizeof hn), memset(h_lat, 0, sizeof h_lat), memset(h_count, 0, sizeof h_count);
    h_app_dups = h_links = 0, h_stop = 0;
    double t0 = now_us();
    int ok = 1;
    for (int i = 0; i < n; i++) hn[i].idx = i, ok &= pthread_create(&hn[i].th, NULL, h_thread, &hn[i]) == 0;
    for (int i = 0; i < n; i++)
        while (__atomic_load_n(&hn[i].ready, __ATOMIC_ACQUIRE) == 0) usleep(1000);
    for (int i = 0; i < n; i++) ok &= hn[i].ready == 1;
    CHECK(ok);
    if (!ok) exit(1);
    unsigned seed = 12345;
    int nj = 0;
    for (int i = 0; i < n; i++) {
        h_jobs[nj++] = (hjob){i, (i + 1) % n, 0};
        for (int k = 0; k < 4; k++) {
            seed = seed * 1103515245u + 12345u;
            int j = (int)((seed >> 8) % n);
            if (j != i) h_jobs[nj++] = (hjob){i, j, 0};
        }
    }
    n_jobs = nj;
    for (int i = 0; i < nj; i++) lp2p_host_post(hn[h_jobs[i].from].h, h_connect, &h_jobs[i]);
    for (double end = now_us() + 30e6; __atomic_load_n(&n_jobs, __ATOMIC_ACQUIRE) > 0 && now_us() < end;) usleep(1000);
    int formed = 0, lo = 99, hi = 0;
    for (double end = now_us() + 20e6; !formed && now_us() < end;) {
        usleep(200000);
        for (int i = 0; i < n; i++) hn[i].mesh = -1, lp2p_host_post(hn[i].h, h_probe, &hn[i]);
        for (int i = 0; i < n; i++)
            while (__atomic_load_n(&hn[i].mesh, __ATOMIC_ACQUIRE) < 0) usleep(200);
        formed = 1, lo = 99, hi = 0;
        for (int i = 0; i < n; i++) {
            int want = hn[i].topic_peers < 5 ? hn[i].topic_peers : 5;
            formed &= hn[i].mesh >= want;
            lo = hn[i].mesh < lo ? hn[i].mesh : lo, hi = hn[i].mesh > hi ? hn[i].mesh : hi;
        }
    }
    CHECK(formed);
    CHECK(lo >= 1 && hi <= 12);
    double t_setup = (now_us() - t0) / 1e6, t_pub = now_us();
    static hjob pub[HMSGS];
    for (int k = 0; k < m; k++) {
        seed = seed * 1103515245u + 12345u;
        pub[k] = (hjob){(int)((seed >> 8) % n), 0, k};
        lp2p_host_post(hn[pub[k].from].h, h_publish, &pub[k]);
        for (double end = now_us() + 2e6; __atomic_load_n(&h_count[k], __ATOMIC_ACQUIRE) < n - 1 && now_us() < end;)
            usleep(100);
    }
    for (double end = now_us() + 5e6; now_us() < end;) { /* stragglers */
        int all = 1;
        for (int k = 0; k < m && all; k++) all = __atomic_load_n(&h_count[k], __ATOMIC_ACQUIRE) == n - 1;
        if (all) break;
        usleep(1000);
    }
    double t_run = (now_us() - t_pub) / 1e6;
    h_stop = 1;
    for (int i = 0; i < n; i++) lp2p_host_post(hn[i].h, h_stop_loop, &hn[i]);
    for (int i = 0; i < n; i++) pthread_join(hn[i].th, NULL);
    static float lat[HN * HMSGS];
    int n_lat = 0, received = 0;
    uint64_t net_dups = 0, forwarded = 0, iwant = 0;
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < m; k++)
            if (h_lat[i][k] > 0) lat[n_lat++] = h_lat[i][k], received++;
        net_dups += hn[i].st.duplicates, forwarded += hn[i].st.forwarded, iwant += hn[i].st.iwant_served;
    }
    qsort(lat, (size_t)n_lat, sizeof *lat, cmp_float);
    double med = n_lat ? lat[n_lat / 2] : 0, p99 = n_lat ? lat[(int)(n_lat * 0.99)] : 0, mx = n_lat ? lat[n_lat - 1] : 0;
    int want = m * (n - 1);
    fprintf(stderr, "    setup: %d hosts, %d connections, meshes %d..%d, %.1f s\n", n, h_links, lo, hi, t_setup);
    fprintf(stderr, "    delivered %d of %d (%.2f %%) in %.2f s; duplicates at the application: %d\n", received, want,
            100.0 * received / want, t_run, h_app_dups);
    fprintf(stderr, "    duplicates on the wire: %.2f per message per host (%llu); copies sent: %.2f per message per host; served by IWANT: %llu\n",
            (double)net_dups / m / n, (unsigned long long)net_dups, (double)forwarded / m / n, (unsigned long long)iwant);
    fprintf(stderr, "    latency publish -> subscriber: median %.2f ms, p99 %.2f ms, max %.2f ms\n", med, p99, mx);
    printf("BENCH gossipsub_network hosts=%d messages=%d delivered_pct=%.2f dup_per_msg_per_host=%.2f median_ms=%.2f p99_ms=%.2f\n",
           n, m, 100.0 * received / want, (double)net_dups / m / n, med, p99);
    CHECK_EQ(received, want);
    CHECK_EQ(h_app_dups, 0);
}

int main(int argc, char **argv) {
    bool quick = argc > 1 && strcmp(argv[1], "quick") == 0;
    if (argc > 1 && strcmp(argv[1], "hundred") == 0) { /* just the 100-host run (benchmarks) */
        test_hundred(HN, HMSGS);
        TEST_END();
    }
    test_two_hosts(false, false);
    test_two_hosts(true, true);
    test_two_hosts(false, true);
    test_two_hosts(true, false);
    test_mesh_bounds();
    test_gossip_only();
    test_fanout();
    test_prune_px();
    test_idontwant();
    test_signing();
    test_validator();
    test_direct_and_leave();
    test_bad_input();
    test_scores();
    test_score_components();
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    if (!quick) test_hundred(30, 100);
#else
    if (!quick) test_hundred(HN, HMSGS);
#endif
    TEST_END();
}
