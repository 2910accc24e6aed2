/* fuzz_dcutr.c - libFuzzer target: DCUtR HolePunch messages from a peer (dcutr.c).
 * Build: clang -fsanitize=fuzzer,address -I. tests/fuzz/fuzz_dcutr.c -lsodium -lbearssl -lprotobuf-nanopb -lpthread */
#define LIBP2P_IMPLEMENTATION
#include "libp2p.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lp2p__dc_addrs addrs;
    lp2p_pb_HolePunch m;
    memset(&m, 0, sizeof m);
    addrs.n = 0;
    m.ObsAddrs.funcs.decode = lp2p__dc_dec_addr, m.ObsAddrs.arg = &addrs;
    pb_istream_t st = pb_istream_from_buffer(data, size);
    if (pb_decode(&st, lp2p_pb_HolePunch_fields, &m))
        for (int i = 0; i < addrs.n; i++) { /* what we would dial: TCP, not relayed, printable */
            char text[LP2P__MA_STRLEN];
            if (!lp2p__ma_is_tcp(&addrs.a[i]) || lp2p__ma_str(&addrs.a[i], text, sizeof text) < 0) __builtin_trap();
        }
    return 0;
}
