/* fuzz_peerid.c - libFuzzer target for the peer-input parsers of peerid.c / crypto.c / multibase.c:
 * peer ID text (lp2p_peer_id_parse), binary peer IDs, PublicKey protobufs and their PKIX DER
 * (lp2p__pubkey_verify, lp2p__peer_id_from_pubkey) and signed envelopes (lp2p__envelope_open).
 * Build: clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -I. tests/fuzz/fuzz_peerid.c \
 *          -lsodium -lbearssl -lprotobuf-nanopb -lpthread
 * The first input byte picks the target, the rest is the input. Seeds: tests/fuzz/peerid/. */
#define LIBP2P_IMPLEMENTATION
#include "libp2p.h"

static void fuzz_text(const uint8_t *p, size_t n) {
    char s[LP2P_PEER_ID_STRLEN * 2 + 1];
    lp2p_peer_id id, again;
    if (n > sizeof s - 1) n = sizeof s - 1;
    memcpy(s, p, n);
    s[n] = '\0';
    if (lp2p_peer_id_parse(s, &id) != LP2P_OK) return;
    /* anything accepted prints and re-parses to the same ID */
    char out[LP2P_PEER_ID_STRLEN];
    if (lp2p_peer_id_str(&id, out, sizeof out) != LP2P_OK) __builtin_trap();
    if (lp2p_peer_id_parse(out, &again) != LP2P_OK || !lp2p_peer_id_eq(&id, &again)) __builtin_trap();
}

static void fuzz_key(const uint8_t *p, size_t n) {
    /* layout: 2-byte key length || key || signature; the message is fixed */
    static const char msg[] = "fuzz message";
    lp2p_peer_id id;
    if (n < 2) return;
    size_t kl = (size_t)p[0] << 8 | p[1];
    p += 2, n -= 2;
    if (kl > n) kl = n;
    (void)lp2p__pubkey_verify(p, kl, msg, sizeof msg - 1, p + kl, n - kl);
    if (lp2p__peer_id_from_pubkey(p, kl, &id) == LP2P_OK) {
        const uint8_t *pk;
        size_t pkl;
        if (id.len > sizeof id.bytes) __builtin_trap();
        if (lp2p__peer_id_pubkey(&id, &pk, &pkl) == LP2P_OK && pkl > 42) __builtin_trap();
    }
    /* the raw DER verifiers too, with the same bytes */
    (void)lp2p__rsa_verify(p, kl, msg, sizeof msg - 1, p + kl, n - kl);
    (void)lp2p__ecdsa_verify(p, kl, msg, sizeof msg - 1, p + kl, n - kl);
    (void)lp2p__secp256k1_verify(p, kl, msg, sizeof msg - 1, p + kl, n - kl);
}

static void fuzz_envelope(const uint8_t *p, size_t n) {
    static const uint8_t type[2] = {0x03, 0x01};
    const uint8_t *payload;
    size_t payload_len;
    lp2p_peer_id signer;
    if (lp2p__envelope_open(p, n, "libp2p-peer-record", type, 2, &payload, &payload_len, &signer) == LP2P_OK) {
        if (payload < p || payload + payload_len > p + n) __builtin_trap();
    }
}

static void fuzz_binary_id(const uint8_t *p, size_t n) {
    lp2p_peer_id id;
    char s[LP2P_PEER_ID_STRLEN];
    uint8_t b[400];
    if (lp2p__peer_id_from_bytes(p, n, &id) == LP2P_OK && lp2p_peer_id_str(&id, s, sizeof s) != LP2P_OK)
        __builtin_trap();
    /* the base decoders on raw text */
    (void)lp2p__base58_dec((const char *)p, n, b, sizeof b);
    (void)lp2p__base32_dec((const char *)p, n, b, sizeof b);
    (void)lp2p__hex_dec((const char *)p, n, b, sizeof b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static int inited;
    if (!inited) inited = 1, (void)lp2p__crypto_init();
    switch (data[0] & 3) {
    case 0: fuzz_text(data + 1, size - 1); break;
    case 1: fuzz_key(data + 1, size - 1); break;
    case 2: fuzz_envelope(data + 1, size - 1); break;
    default: fuzz_binary_id(data + 1, size - 1); break;
    }
    return 0;
}
