/* fuzz_relay.c - libFuzzer target: circuit relay v2 hop/stop messages and reservation vouchers
 * from a peer (relay.c). The first input byte picks the message kind.
 * Build: clang -fsanitize=fuzzer,address -I. tests/fuzz/fuzz_relay.c -lsodium -lbearssl -lprotobuf-nanopb -lpthread */
#define LIBP2P_IMPLEMENTATION
#include "libp2p.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static lp2p_host host; /* only identity is used by the voucher check */
    static int init;
    if (!init) {
        uint8_t seed[32] = {1};
        lp2p__crypto_init(), lp2p__identity_from_seed(&host.identity, seed), init = 1;
    }
    if (size < 1) return 0;
    lp2p__ma_list peer_addrs = {.n = 0}, rsvp_addrs = {.n = 0};
    pb_istream_t st = pb_istream_from_buffer(data + 1, size - 1);
    if (data[0] & 1) {
        lp2p_pb_StopMessage m;
        lp2p__stop_init(&m, &peer_addrs);
        pb_decode(&st, lp2p_pb_StopMessage_fields, &m);
    } else {
        lp2p_pb_HopMessage m;
        lp2p__hop_init(&m, &peer_addrs, &rsvp_addrs);
        if (pb_decode(&st, lp2p_pb_HopMessage_fields, &m) && m.has_reservation && m.reservation.has_voucher) {
            lp2p_peer_id relay = host.identity.id;
            lp2p__rsvp_check_voucher(&host, &m.reservation, &relay);
        }
    }
    return 0;
}
