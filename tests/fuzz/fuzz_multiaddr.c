/* fuzz_multiaddr.c - libFuzzer target for the multiaddr parsers (binary addresses come from
 * peers in identify listenAddrs/observedAddr; text from users and dnsaddr TXT records).
 * Invariants: never crash or read out of bounds; every accepted binary address prints, and
 * its text parses back to the same bytes; every accepted text prints and re-parses equal.
 * Run with `make fuzz` (scripts/fuzz.sh); seeds in tests/fuzz/corpus/multiaddr/. */
#define LIBP2P_IMPLEMENTATION
#include "libp2p.h"

#include <stdlib.h>

static void roundtrip(const lp2p__ma *ma) {
    char text[LP2P__MA_STRLEN];
    lp2p__ma again;
    ptrdiff_t n = lp2p__ma_str(ma, text, sizeof text);
    if (n < 0 || (size_t)n != strlen(text)) abort();
    if (lp2p__ma_parse(text, &again, NULL) != LP2P_OK) abort();
    if (!lp2p__ma_eq(ma, &again)) abort();
    /* helpers must cope with any valid address */
    size_t off = 0, vn;
    uint32_t code;
    const uint8_t *v;
    int count = 0;
    while (lp2p__ma_next(ma, &off, &code, &v, &vn) == 1) {
        if (++count > LP2P__MA_MAX) abort();
    }
    if (off != ma->len) abort();
    lp2p__ma base;
    lp2p_peer_id id;
    if (lp2p__ma_split_p2p(ma, &base, &id) == 1 && base.len >= ma->len) abort();
    (void)lp2p__ma_is_tcp(ma);
    (void)lp2p__ma_is_loopback(ma);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lp2p__ma ma;
    const char *why = NULL;
    if (lp2p__ma_from_bytes(data, size, &ma, &why) == LP2P_OK) roundtrip(&ma);
    else if (!why) abort();
    if (size < 2048) {
        char text[2048];
        memcpy(text, data, size);
        text[size] = 0;
        why = NULL;
        if (lp2p__ma_parse(text, &ma, &why) == LP2P_OK) roundtrip(&ma);
        else if (!why) abort();
    }
    return 0;
}
