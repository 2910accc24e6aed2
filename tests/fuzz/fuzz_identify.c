/* fuzz_identify.c - libFuzzer target: identify messages and signed peer records from a peer.
 * Build: clang -fsanitize=fuzzer,address -I. tests/fuzz/fuzz_identify.c -lsodium -lbearssl -lprotobuf-nanopb -lpthread */
#define LIBP2P_IMPLEMENTATION
#include "libp2p.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static lp2p__ctx ctx;
    static int init;
    if (!init) lp2p__ctx_init(&ctx, NULL, NULL, LP2P_LOG_PANIC), lp2p__crypto_init(), init = 1;
    lp2p__id_info *in = (lp2p__id_info *)calloc(1, sizeof *in);
    in->ctx = &ctx;
    lp2p__id_decode(in, data, size);
    if (in->record_len) {
        const uint8_t *payload;
        size_t plen;
        lp2p_peer_id signer;
        lp2p__envelope_open(in->record, in->record_len, LP2P__ID_RECORD_DOMAIN, lp2p__id_record_type, 2, &payload,
                            &plen, &signer);
    }
    lp2p__id_info_free(in);
    free(in);
    return 0;
}
