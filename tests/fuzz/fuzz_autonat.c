/* fuzz_autonat.c - libFuzzer target: AutoNAT v2 messages (dial request with addresses, dial data,
 * responses), v2 dial-backs and v1 messages from a peer (autonat.c). First byte picks the kind.
 * Build: clang -fsanitize=fuzzer,address -I. tests/fuzz/fuzz_autonat.c -lsodium -lbearssl -lprotobuf-nanopb -lpthread */
#define LIBP2P_IMPLEMENTATION
#include "libp2p.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    lp2p__an_addrs addrs;
    memset(&addrs, 0, sizeof addrs);
    uint64_t counted = 0;
    pb_istream_t st = pb_istream_from_buffer(data + 1, size - 1);
    switch (data[0] % 3) {
    case 0: {
        lp2p_pb_AN2Message m;
        memset(&m, 0, sizeof m);
        m.dialRequest.addrs.funcs.decode = lp2p__an_dec_addr, m.dialRequest.addrs.arg = &addrs;
        m.dialDataResponse.data.funcs.decode = lp2p__an_count_data, m.dialDataResponse.data.arg = &counted;
        if (pb_decode(&st, lp2p_pb_AN2Message_fields, &m))
            for (int i = 0; i < addrs.n; i++) (void)lp2p__an_is_public(&addrs.a[i]);
        break;
    }
    case 1: {
        lp2p_pb_AN2DialBack m;
        memset(&m, 0, sizeof m);
        pb_decode(&st, lp2p_pb_AN2DialBack_fields, &m);
        break;
    }
    default: {
        lp2p_pb_AN1Message m;
        memset(&m, 0, sizeof m);
        m.dial.peer.addrs.funcs.decode = lp2p__an_dec_addr, m.dial.peer.addrs.arg = &addrs;
        pb_decode(&st, lp2p_pb_AN1Message_fields, &m);
    }
    }
    if (addrs.n > LP2P__AN_MAX_ADDRS) __builtin_trap();
    return 0;
}
