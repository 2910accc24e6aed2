/* fuzz_kad.c - libFuzzer target: Kademlia DHT messages from a peer (requests and answers).
 * Decodes the message, then runs what our node does with it: the server's handling of
 * PUT_VALUE (validation, selection, store) and ADD_PROVIDER (sender check, store), the
 * closer peers it would answer with, and what a lookup learns from closerPeers and
 * providerPeers (peer IDs, multiaddrs into the peerstore, routing table); the answer is
 * encoded again. The stores are bounded by the DHT's limits, so memory stays capped.
 * Build: clang -fsanitize=fuzzer,address -I. tests/fuzz/fuzz_kad.c -lsodium -lbearssl -lprotobuf-nanopb -lpthread */
#define LIBP2P_IMPLEMENTATION
#include "libp2p.h"

static int permissive(void *user, const uint8_t *key, size_t key_len, const uint8_t *value, size_t value_len) {
    (void)user, (void)key, (void)key_len, (void)value, (void)value_len;
    return LP2P_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static lp2p_host *h;
    static lp2p_kad *kad;
    static lp2p__kad_msg *m;
    if (!h) {
        lp2p_config cfg;
        memset(&cfg, 0, sizeof cfg);
        cfg.no_listen = true, cfg.log_level = LP2P_LOG_PANIC;
        lp2p_kad_config kc;
        memset(&kc, 0, sizeof kc);
        kc.mode = LP2P_KAD_SERVER, kc.protocol = "/fuzz/kad/1.0.0", kc.max_records = 256, kc.max_provider_records = 256;
        if (lp2p_host_new(&cfg, &h) || lp2p_kad_new(h, &kc, &kad)) abort();
        lp2p_kad_validator v = {permissive, NULL, NULL};
        lp2p_kad_set_validator(kad, "t", &v);
        m = (lp2p__kad_msg *)malloc(sizeof *m);
    }
    if (lp2p__kad_msg_decode(data, size, m) != LP2P_OK) return 0;
    lp2p_peer_id from, closer[LP2P__KAD_SEND_MAX];
    /* the sender: the first provider's ID when it parses (so ADD_PROVIDER can be accepted) */
    if (!(m->n_providers && lp2p__peer_id_from_bytes(m->providers[0].id.p, m->providers[0].id.len, &from) == LP2P_OK))
        lp2p_peer_id_parse("12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN", &from);
    if (m->type == lp2p_pb_KadMessage_MessageType_PUT_VALUE) lp2p__kad_handle_put(kad, &from, m);
    if (m->type == lp2p_pb_KadMessage_MessageType_ADD_PROVIDER) lp2p__kad_handle_add_provider(kad, &from, m);
    for (int i = 0; i < m->n_closer; i++) {
        lp2p_peer_id id;
        if (lp2p__kad_learn(kad, &m->closer[i], &id, 1000)) lp2p__rt_add(&kad->rt, &id, NULL, lp2p_now(), NULL);
    }
    if (m->key.len > 0 && m->key.len <= LP2P__KAD_KEY_MAX) {
        lp2p__kad_out o;
        memset(&o, 0, sizeof o);
        o.h = h, o.type = m->type, o.key = m->key.p, o.key_len = m->key.len;
        o.closer = closer, o.n_closer = lp2p__kad_closer_for(kad, m->key.p, m->key.len, &from, closer, 20);
        lp2p__buf b = {0};
        if (lp2p__kad_msg_encode(&h->ctx, &o, &b) == LP2P_OK && lp2p__kad_msg_decode(b.p, b.len, m) != LP2P_OK) abort();
        lp2p__buf_free(&h->ctx, &b);
    }
    if (kad->rt.size > 200) lp2p__rt_free(&kad->rt); /* keep the table small */
    static unsigned runs;
    if (++runs % 64 == 0) lp2p__peerstore_gc(h, lp2p_now() + 49LL * 3600 * 1000); /* what housekeeping does later */
    return 0;
}
