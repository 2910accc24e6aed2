/* test_kad_scale.c - a DHT of N (default 200) libp2p.h hosts in one process, one thread, over
 * TCP on 127.0.0.1. Every node bootstraps from node 0 and a random earlier node; then one
 * closest-peers lookup per node for a random key must put the true closest live node first
 * (known here: we hold every ID). Then 20 % of the nodes are killed and the survivors look up
 * again. Median / p99 hops, requests and time per lookup are printed.
 * Connections close after 1 s without streams (idle_timeout_ms) so sockets, tasks and memory
 * maps stay within this machine's limits (20 k fds, 65 k maps).
 * Env: LP2P_KAD_SCALE_N (nodes, 20..400; default 200, 50 under ASan), LP2P_KAD_SCALE_SEED. */
#define LIBP2P_IMPLEMENTATION
#include "libp2p.h"
#include "tests/test.h"

#define MAX_NODES 400
static lp2p_host *hosts[MAX_NODES];
static lp2p_kad *kads[MAX_NODES];
static lp2p_peer_id ids[MAX_NODES];
static uint8_t hashes[MAX_NODES][32];
static bool alive[MAX_NODES];
static int n_nodes;
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

static int start_node(int i) {
    lp2p_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.log_level = getenv("LP2P_TEST_LOG") ? LP2P_LOG_INFO : LP2P_LOG_PANIC;
    cfg.idle_timeout_ms = 1000;
    cfg.identity_seed[0] = (uint8_t)i, cfg.identity_seed[1] = (uint8_t)(i >> 8), cfg.identity_seed[2] = 0x5c;
    cfg.identity_seed[3] = (uint8_t)rng;
    if (lp2p_host_new(&cfg, &hosts[i]) != LP2P_OK) return 0;
    lp2p_kad_config kc;
    memset(&kc, 0, sizeof kc);
    kc.protocol = "/scale/kad/1.0.0";
    kc.mode = LP2P_KAD_SERVER;
    kc.request_timeout_ms = 5000;
    kc.refresh_interval_ms = -1;
    if (lp2p_kad_new(hosts[i], &kc, &kads[i]) != LP2P_OK) return 0;
    ids[i] = lp2p_host_id(hosts[i]);
    lp2p__kad_hash(ids[i].bytes, ids[i].len, hashes[i]);
    alive[i] = true;
    return 1;
}

static void kill_node(int i) {
    lp2p_kad_free(kads[i]);
    lp2p_host_free(hosts[i]);
    alive[i] = false;
}

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

typedef struct figures {
    int ok, total;
    int hops[MAX_NODES], reqs[MAX_NODES], ms[MAX_NODES];
} figures;

static void print_figures(const char *what, figures *f) {
    int n = f->total;
    if (!n) return;
    qsort(f->hops, (size_t)n, sizeof(int), cmp_int);
    qsort(f->reqs, (size_t)n, sizeof(int), cmp_int);
    qsort(f->ms, (size_t)n, sizeof(int), cmp_int);
    int p99 = (n * 99 + 99) / 100 - 1;
    fprintf(stderr,
            "    %s: %d/%d lookups found the true closest node; hops median %d p99 %d max %d; requests median %d p99 %d; "
            "ms median %d p99 %d\n",
            what, f->ok, n, f->hops[n / 2], f->hops[p99], f->hops[n - 1], f->reqs[n / 2], f->reqs[p99], f->ms[n / 2],
            f->ms[p99]);
    printf("SCALE %s nodes=%d ok=%d/%d hops_median=%d hops_p99=%d requests_median=%d requests_p99=%d ms_median=%d "
           "ms_p99=%d\n",
           what, n_nodes, f->ok, n, f->hops[n / 2], f->hops[p99], f->reqs[n / 2], f->reqs[p99], f->ms[n / 2], f->ms[p99]);
}

/* One closest-peers lookup per live node for a random key. */
static void lookup_round(const char *what, figures *f) {
    memset(f, 0, sizeof *f);
    for (int i = 0; i < n_nodes; i++) {
        if (!alive[i]) continue;
        uint8_t key[16], target[32];
        for (int b = 0; b < 16; b++) key[b] = (uint8_t)rnd();
        lp2p__kad_hash(key, sizeof key, target);
        int best = -1;
        for (int j = 0; j < n_nodes; j++)
            if (alive[j] && j != i && (best < 0 || lp2p__kad_cmp(target, hashes[j], hashes[best]) < 0)) best = j;
        lp2p_peer_id out[20];
        int n = lp2p_kad_get_closest_peers(kads[i], key, sizeof key, NULL, NULL, out, 20, lp2p_deadline_in(60000));
        lp2p_kad_lookup_stats st;
        lp2p_kad_last_lookup(kads[i], &st);
        int ok = n > 0 && lp2p_peer_id_eq(&out[0], &ids[best]);
        if (!ok && getenv("LP2P_TEST_LOG")) fprintf(stderr, "    node %d: lookup rc %d, first is not the closest\n", i, n);
        f->ok += ok;
        f->hops[f->total] = st.hops, f->reqs[f->total] = st.requests, f->ms[f->total] = (int)st.ms;
        f->total++;
    }
    print_figures(what, f);
}

int main(void) {
    const char *env = getenv("LP2P_KAD_SCALE_N");
#if defined(__SANITIZE_ADDRESS__)
    n_nodes = env ? atoi(env) : 50; /* the ASan+UBSan copy: same test, smaller network */
#else
    n_nodes = env ? atoi(env) : 200;
#endif
    if (n_nodes < 20) n_nodes = 20;
    if (n_nodes > MAX_NODES) n_nodes = MAX_NODES;
    if (getenv("LP2P_KAD_SCALE_SEED")) rng = strtoull(getenv("LP2P_KAD_SCALE_SEED"), NULL, 0) | 1;
    TEST("kad scale: one DHT of many hosts in one process");
    int64_t t0 = lp2p_now();
    int started = 0;
    for (int i = 0; i < n_nodes; i++) started += start_node(i);
    CHECK_EQ(started, n_nodes);
    if (started != n_nodes) TEST_END();

    /* bootstrap, one node after the other (node 0 is everyone's seed) */
    int booted = 0;
    for (int i = 1; i < n_nodes; i++) {
        const char *seeds[2] = {lp2p_host_addr(hosts[0], 0), lp2p_host_addr(hosts[rnd() % (unsigned)i], 0)};
        booted += lp2p_kad_bootstrap(kads[i], seeds, 2, lp2p_deadline_in(60000)) > 0;
    }
    booted += lp2p_kad_bootstrap(kads[0], NULL, 0, lp2p_deadline_in(60000)) > 0;
    CHECK_EQ(booted, n_nodes);
    int rt_min = 1 << 30, rt_sum = 0;
    for (int i = 0; i < n_nodes; i++) {
        int n = lp2p_kad_routing_table(kads[i], NULL, 0);
        rt_sum += n, rt_min = n < rt_min ? n : rt_min;
    }
    fprintf(stderr, "    %d nodes bootstrapped in %d ms; routing tables: mean %d, min %d peers\n", n_nodes,
            (int)(lp2p_now() - t0), rt_sum / n_nodes, rt_min);
    CHECK(rt_min >= 20);

    figures f;
    int64_t t1 = lp2p_now();
    lookup_round("all nodes up", &f);
    fprintf(stderr, "    (%d ms)\n", (int)(lp2p_now() - t1));
    CHECK_EQ(f.ok, f.total);

    /* 20 % of the nodes die (never node 0's successors in particular: a random 20 %) */
    int killed = 0;
    while (killed < n_nodes / 5) {
        int i = (int)(rnd() % (unsigned)n_nodes);
        if (!alive[i]) continue;
        kill_node(i);
        killed++;
    }
    t1 = lp2p_now();
    lookup_round("20% of nodes killed", &f);
    fprintf(stderr, "    (%d ms)\n", (int)(lp2p_now() - t1));
    CHECK_EQ(f.ok, f.total);
    for (int i = 0; i < n_nodes; i++)
        if (alive[i]) kill_node(i);
    fprintf(stderr, "    total %d ms\n", (int)(lp2p_now() - t0));
    TEST_END();
}
