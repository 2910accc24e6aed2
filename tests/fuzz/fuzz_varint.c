/* fuzz_varint.c - libFuzzer target: unsigned varints and length-prefixed messages from a peer.
 * Every accepted varint must re-encode to exactly the bytes it was read from (minimal). */
#define LIBP2P_IMPLEMENTATION
#include "libp2p.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint64_t v;
    int n = lp2p__uvarint_get(data, size, &v);
    if (n > 0) {
        uint8_t out[LP2P__UVARINT_MAX + 1];
        size_t m = lp2p__uvarint_put(out, v);
        if ((int)m != n || memcmp(out, data, m) != 0) __builtin_trap();
    }
    return 0;
}
