/* fuzz_gossipsub.c - libFuzzer target: a pubsub RPC from a peer.
 * Each input is one RPC body (what follows the uvarint length on a /meshsub/1.x stream). It is
 * decoded (lp2p__ps_rpc_decode: every count capped, fields are slices of the input) and, when it
 * decodes, handled by a gossipsub router as if an (inactive) peer had sent it: subscriptions,
 * messages (signing policy, IDs, signature checks, validation, delivery into bounded queues) and
 * control (IHAVE/IWANT/GRAFT/PRUNE with peer records, IDONTWANT). The router lives across inputs,
 * so its state (topics, seen cache, backoffs, scores) stays bounded under any input sequence.
 * Build: clang -fsanitize=fuzzer,address -I. tests/fuzz/fuzz_gossipsub.c -lsodium -lbearssl -lprotobuf-nanopb -lpthread
 * Run:   scripts/fuzz.sh (seeds in tests/fuzz/corpus/gossipsub: raw RPC bodies) */
#define LIBP2P_IMPLEMENTATION
#include "libp2p.h"

static lp2p_host *h;
static lp2p_pubsub *ps;
static lp2p__ps_peer *peer;

static void setup(void) {
    lp2p_config cfg;
    lp2p_pubsub_config pc;
    lp2p_subscription *sub;
    memset(&cfg, 0, sizeof cfg), memset(&pc, 0, sizeof pc);
    cfg.no_listen = true;
    cfg.log_level = LP2P_LOG_PANIC;
    pc.subscription_queue = 8;
    pc.max_topics = 64;
    pc.max_topics_per_peer = 16;
    if (lp2p_host_new(&cfg, &h) || lp2p_pubsub_new(h, &pc, &ps)) abort();
    if (lp2p_pubsub_subscribe(ps, "t", &sub) || lp2p_pubsub_subscribe(ps, "topic", &sub)) abort();
    lp2p_peer_id id;
    uint8_t seed[32] = {7};
    lp2p__identity idn;
    lp2p__identity_from_seed(&idn, seed);
    id = idn.id;
    peer = lp2p__ps_peer_get(ps, &id);
    if (!peer) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int init;
    if (!init) setup(), init = 1;
    lp2p__ps_rpc r;
    if (lp2p__ps_rpc_decode(&r, ps->ctx, data, size) == LP2P_OK) lp2p__ps_handle_rpc(ps, peer, &r, true);
    lp2p__ps_rpc_clear(&r);
    if (peer->st) peer->st->behaviour_penalty = 0; /* keep it out of the graylist: exercise the handlers */
    return 0;
}
