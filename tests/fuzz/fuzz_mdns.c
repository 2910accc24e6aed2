/* fuzz_mdns.c - libFuzzer target: mDNS packets from the LAN (mdns.c's bounded DNS parser).
 * Build: clang -fsanitize=fuzzer,address -I. tests/fuzz/fuzz_mdns.c -lsodium -lbearssl -lprotobuf-nanopb -lpthread */
#define LIBP2P_IMPLEMENTATION
#include "libp2p.h"

static void on_txt(void *user, const char *txt, size_t len) {
    lp2p__ma ma;
    char text[256];
    (void)user;
    if (len > 8 && len < sizeof text && memcmp(txt, "dnsaddr=", 8) == 0) {
        memcpy(text, txt + 8, len - 8), text[len - 8] = 0;
        lp2p__ma_parse(text, &ma, NULL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lp2p__mdns_parse(data, size, "_p2p._udp.local", on_txt, NULL);
    return 0;
}
