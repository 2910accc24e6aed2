/* crypto.c - L1: the thin crypto layer over libsodium, BearSSL 0.6 and (optionally) libsecp256k1.
 *
 * libsodium: CSPRNG, Ed25519, X25519, ChaCha20-Poly1305 (IETF). BearSSL: SHA-256, HKDF, RSA PKCS#1
 * v1.5 and ECDSA verification. libsecp256k1 (LP2P_ENABLE_SECP256K1): secp256k1 ECDSA verification.
 * Spec: peer-ids/peer-ids.md ("How Keys are Encoded and Messages Signed"), noise/README.md
 * (HKDF and the little-endian AEAD nonce), RFC 5869, RFC 7748, RFC 8032, RFC 8439.
 * RSA and ECDSA public keys arrive as PKIX SubjectPublicKeyInfo DER (RFC 5280 §4.1); they are read
 * by a small, bounded, strict-DER reader below (no allocation, no recursion).
 * Depends on: base.h, crypto.h. */
#include "crypto.h"

#include <sodium.h>
#include <bearssl.h>
#ifndef LP2P_ENABLE_SECP256K1
#define LP2P_ENABLE_SECP256K1 0
#endif
#if LP2P_ENABLE_SECP256K1
#include <secp256k1.h>
#endif

/* lp2p__sha256 is an opaque stand-in for br_sha256_context so that crypto.h needs no bearssl.h */
typedef char lp2p__sha256_fits[sizeof(lp2p__sha256) >= sizeof(br_sha256_context) ? 1 : -1];

/* ---- initialisation ---- */
static int lp2p__crypto_ready;
#if LP2P_ENABLE_SECP256K1
#if defined(SECP256K1_CONTEXT_NONE)
/* libsecp256k1 >= 0.2: the static context can verify */
#define LP2P__SECP_CTX secp256k1_context_static
#else
/* older releases need a verification context built once (immutable afterwards) */
#include <pthread.h>
static secp256k1_context *lp2p__secp_ctx;
#define LP2P__SECP_CTX lp2p__secp_ctx
static void lp2p__secp_ctx_create(void) { lp2p__secp_ctx = secp256k1_context_create(SECP256K1_CONTEXT_VERIFY); }
#endif
#endif

LP2P__PRIV int lp2p__crypto_init(void) {
#if defined(__GNUC__) || defined(__clang__)
    if (__atomic_load_n(&lp2p__crypto_ready, __ATOMIC_ACQUIRE)) return LP2P_OK;
#endif
    /* sodium_init is itself thread-safe and idempotent (0 first time, 1 afterwards) */
    if (sodium_init() < 0) return LP2P_ERR_IO;
#if LP2P_ENABLE_SECP256K1 && !defined(SECP256K1_CONTEXT_NONE)
    {
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        pthread_once(&once, lp2p__secp_ctx_create);
        if (!lp2p__secp_ctx) return LP2P_ERR_IO;
    }
#endif
#if defined(__GNUC__) || defined(__clang__)
    __atomic_store_n(&lp2p__crypto_ready, 1, __ATOMIC_RELEASE);
#endif
    return LP2P_OK;
}

LP2P__PRIV void lp2p__random(void *buf, size_t n) {
    /* randombytes_buf aborts rather than return weak bytes; init picks the OS source */
    (void)lp2p__crypto_init();
    randombytes_buf(buf, n);
}

/* ---- SHA-256 and the Noise HKDF ---- */
LP2P__PRIV void lp2p__sha256_init(lp2p__sha256 *c) { br_sha256_init((br_sha256_context *)(void *)c->opaque); }

LP2P__PRIV void lp2p__sha256_update(lp2p__sha256 *c, const void *p, size_t n) {
    br_sha256_update((br_sha256_context *)(void *)c->opaque, p, n);
}

LP2P__PRIV void lp2p__sha256_final(lp2p__sha256 *c, uint8_t out[32]) {
    br_sha256_out((const br_sha256_context *)(const void *)c->opaque, out);
}

LP2P__PRIV void lp2p__sha256_once(const void *p, size_t n, uint8_t out[32]) {
    br_sha256_context c;
    br_sha256_init(&c);
    br_sha256_update(&c, p, n);
    br_sha256_out(&c, out);
}

LP2P__PRIV void lp2p__hkdf2(const uint8_t ck[32], const uint8_t *ikm, size_t ikm_len, uint8_t out1[32],
                            uint8_t out2[32]) {
    /* noise/README.md uses the Noise spec's HKDF(ck, ikm, 2) = RFC 5869 with salt = ck, info = ""
     * and L = 64: out1 = T(1), out2 = T(2). */
    br_hkdf_context hc;
    uint8_t okm[64];
    br_hkdf_init(&hc, &br_sha256_vtable, ck, 32);
    br_hkdf_inject(&hc, ikm, ikm_len);
    br_hkdf_flip(&hc);
    br_hkdf_produce(&hc, NULL, 0, okm, sizeof okm);
    memcpy(out1, okm, 32);
    memcpy(out2, okm + 32, 32);
    sodium_memzero(okm, sizeof okm);
    sodium_memzero(&hc, sizeof hc);
}

/* ---- X25519 and ChaCha20-Poly1305 ---- */
LP2P__PRIV void lp2p__x25519_keypair(uint8_t pk[32], uint8_t sk[32]) {
    lp2p__random(sk, 32);
    crypto_scalarmult_curve25519_base(pk, sk);
}

LP2P__PRIV int lp2p__x25519(uint8_t shared[32], const uint8_t sk[32], const uint8_t pk[32]) {
    /* libsodium fails when the result is all zero (a low-order peer point): the Noise handshake
     * must not continue with a predictable key */
    return crypto_scalarmult_curve25519(shared, sk, pk) == 0 ? LP2P_OK : LP2P_ERR_HANDSHAKE;
}

/* noise/README.md: 96-bit nonce = 32 zero bits || 64-bit little-endian counter */
static void lp2p__aead_nonce(uint8_t nonce[12], uint64_t n) {
    memset(nonce, 0, 4);
    for (int i = 0; i < 8; i++) nonce[4 + i] = (uint8_t)(n >> (8 * i));
}

LP2P__PRIV void lp2p__aead_seal(const uint8_t key[32], uint64_t n, const uint8_t *ad, size_t ad_len, const uint8_t *in,
                                size_t len, uint8_t *out) {
    uint8_t nonce[12];
    lp2p__aead_nonce(nonce, n);
    crypto_aead_chacha20poly1305_ietf_encrypt(out, NULL, in, len, ad, ad_len, NULL, nonce, key);
}

/* The AEAD's tag (RFC 8439 §2.8, no associated data): Poly1305 keyed with keystream block 0
 * over ct || pad16 || le64(0) || le64(len). */
static void lp2p__aead_mac(const uint8_t block0[64], const uint8_t *ct, size_t len, uint8_t tag[16]) {
    crypto_onetimeauth_poly1305_state st;
    uint8_t pad[16] = {0}, lens[16] = {0};
    crypto_onetimeauth_poly1305_init(&st, block0);
    crypto_onetimeauth_poly1305_update(&st, ct, len);
    crypto_onetimeauth_poly1305_update(&st, pad, (16 - len % 16) % 16);
    for (int i = 0; i < 8; i++) lens[8 + i] = (uint8_t)((uint64_t)len >> (8 * i));
    crypto_onetimeauth_poly1305_update(&st, lens, sizeof lens);
    crypto_onetimeauth_poly1305_final(&st, tag);
    sodium_memzero(&st, sizeof st);
}

/* RFC 8439 §2.8 by hand: block 0 of the keystream keys Poly1305, the plaintext is XORed with
 * blocks 1.. and the MAC covers ciphertext || pad16 || le64(0) || le64(length). Whole 64-byte
 * blocks of a segment that start on a block boundary are encrypted straight from the
 * segment; other bytes are staged in out and encrypted there, a run of staged blocks at a
 * time, so the keystream never has to start inside a block. */
LP2P__PRIV void lp2p__aead_seal_gather(const uint8_t key[32], uint64_t n, const uint8_t *const *seg, const size_t *len,
                                       int nseg, uint8_t *out) {
    uint8_t nonce[12], block0[64];
    size_t pos = 0, staged = 0; /* [staged, pos) are plaintext bytes copied into out */
    lp2p__aead_nonce(nonce, n);
    crypto_stream_chacha20_ietf(block0, sizeof block0, nonce, key);
    for (int i = 0; i < nseg; i++) {
        const uint8_t *p = seg[i];
        size_t k = len[i];
        while (k) {
            if (pos % 64 == 0 && k >= 64) {
                if (pos > staged)
                    crypto_stream_chacha20_ietf_xor_ic(out + staged, out + staged, pos - staged, nonce,
                                                       (uint32_t)(1 + staged / 64), key);
                size_t d = k / 64 * 64;
                crypto_stream_chacha20_ietf_xor_ic(out + pos, p, d, nonce, (uint32_t)(1 + pos / 64), key);
                pos += d, p += d, k -= d;
                staged = pos;
            } else {
                size_t take = LP2P__MIN(k, 64 - pos % 64);
                memcpy(out + pos, p, take);
                pos += take, p += take, k -= take;
            }
        }
    }
    if (pos > staged)
        crypto_stream_chacha20_ietf_xor_ic(out + staged, out + staged, pos - staged, nonce, (uint32_t)(1 + staged / 64), key);
    lp2p__aead_mac(block0, out, pos, out + pos);
    sodium_memzero(block0, sizeof block0);
}

LP2P__PRIV int lp2p__aead_verify(const uint8_t key[32], uint64_t n, const uint8_t *ct, size_t len) {
    uint8_t nonce[12], block0[64], tag[16];
    lp2p__aead_nonce(nonce, n);
    crypto_stream_chacha20_ietf(block0, sizeof block0, nonce, key);
    lp2p__aead_mac(block0, ct, len, tag);
    sodium_memzero(block0, sizeof block0);
    return crypto_verify_16(tag, ct + len) == 0 ? LP2P_OK : LP2P_ERR_PROTOCOL;
}

LP2P__PRIV void lp2p__aead_xor_at(const uint8_t key[32], uint64_t n, size_t off, const uint8_t *in, size_t len,
                                  uint8_t *out) {
    uint8_t nonce[12];
    lp2p__aead_nonce(nonce, n);
    if (off % 64 && len) { /* the keystream can only start on a block: take this block's by hand */
        uint8_t ks[64] = {0};
        size_t k = LP2P__MIN(len, 64 - off % 64);
        crypto_stream_chacha20_ietf_xor_ic(ks, ks, sizeof ks, nonce, (uint32_t)(1 + off / 64), key);
        for (size_t i = 0; i < k; i++) out[i] = in[i] ^ ks[off % 64 + i];
        sodium_memzero(ks, sizeof ks);
        off += k, in += k, out += k, len -= k;
    }
    if (len) crypto_stream_chacha20_ietf_xor_ic(out, in, len, nonce, (uint32_t)(1 + off / 64), key);
}

LP2P__PRIV int lp2p__aead_open(const uint8_t key[32], uint64_t n, const uint8_t *ad, size_t ad_len, const uint8_t *in,
                               size_t len, uint8_t *out) {
    uint8_t nonce[12];
    if (len < crypto_aead_chacha20poly1305_ietf_ABYTES) return LP2P_ERR_PROTOCOL;
    lp2p__aead_nonce(nonce, n);
    /* libsodium checks the tag before decrypting, so out is untouched on failure */
    if (crypto_aead_chacha20poly1305_ietf_decrypt(out, NULL, NULL, in, len, ad, ad_len, nonce, key) != 0)
        return LP2P_ERR_PROTOCOL;
    return LP2P_OK;
}

/* ---- Ed25519 ---- */
LP2P__PRIV void lp2p__ed25519_from_seed(const uint8_t seed[32], uint8_t pk[32], uint8_t sk[64]) {
    crypto_sign_ed25519_seed_keypair(pk, sk, seed);
}

LP2P__PRIV void lp2p__ed25519_sign(const uint8_t sk[64], const void *msg, size_t len, uint8_t sig[64]) {
    crypto_sign_ed25519_detached(sig, NULL, (const unsigned char *)msg, len, sk);
}

LP2P__PRIV bool lp2p__ed25519_verify(const uint8_t pk[32], const void *msg, size_t len, const uint8_t sig[64]) {
    return crypto_sign_ed25519_verify_detached(sig, (const unsigned char *)msg, len, pk) == 0;
}

/* ---- a bounded strict-DER reader (just enough for SubjectPublicKeyInfo) ---- */
typedef struct lp2p__der {
    const uint8_t *p, *end;
} lp2p__der;

/* Read one TLV with the given tag from d; on success v spans its contents and d moves past it.
 * DER only: definite, minimal lengths (at most 2 length bytes: keys here are < 64 KiB). */
static int lp2p__der_get(lp2p__der *d, uint8_t tag, lp2p__der *v) {
    size_t left = (size_t)(d->end - d->p), len, hdr = 2;
    if (left < 2 || d->p[0] != tag) return LP2P_ERR_PROTOCOL;
    len = d->p[1];
    if (len == 0x81) {
        if (left < 3 || d->p[2] < 0x80) return LP2P_ERR_PROTOCOL;
        len = d->p[2], hdr = 3;
    } else if (len == 0x82) {
        if (left < 4 || d->p[2] == 0) return LP2P_ERR_PROTOCOL;
        len = (size_t)d->p[2] << 8 | d->p[3], hdr = 4;
    } else if (len >= 0x80) {
        return LP2P_ERR_PROTOCOL; /* indefinite or too long for a key */
    }
    if (len > left - hdr) return LP2P_ERR_PROTOCOL;
    v->p = d->p + hdr;
    v->end = v->p + len;
    d->p = v->end;
    return LP2P_OK;
}

static bool lp2p__der_is(const lp2p__der *v, const void *bytes, size_t n) {
    return (size_t)(v->end - v->p) == n && memcmp(v->p, bytes, n) == 0;
}

/* A positive INTEGER without its sign byte; rejects negative and non-minimal encodings. */
static int lp2p__der_uint(lp2p__der *d, const uint8_t **p, size_t *n) {
    lp2p__der v;
    if (lp2p__der_get(d, 0x02, &v) != LP2P_OK || v.p == v.end) return LP2P_ERR_PROTOCOL;
    size_t len = (size_t)(v.end - v.p);
    if (v.p[0] & 0x80) return LP2P_ERR_PROTOCOL; /* negative */
    if (v.p[0] == 0 && len > 1) {
        if (!(v.p[1] & 0x80)) return LP2P_ERR_PROTOCOL; /* non-minimal */
        v.p++, len--;
    }
    if (len == 1 && v.p[0] == 0) return LP2P_ERR_PROTOCOL; /* zero is no use as modulus or exponent */
    *p = v.p, *n = len;
    return LP2P_OK;
}

/* SubjectPublicKeyInfo ::= SEQUENCE { SEQUENCE { algorithm OID, parameters }, BIT STRING }.
 * Returns the parameters TLV (whole, tag included) and the BIT STRING contents without the
 * unused-bits byte (which must be 0). The whole input must be exactly one SEQUENCE. */
static int lp2p__spki_parse(const uint8_t *der, size_t n, const uint8_t *oid, size_t oid_len, lp2p__der *params,
                            lp2p__der *key) {
    lp2p__der d = {der, der + n}, spki, alg, o, bits;
    if (lp2p__der_get(&d, 0x30, &spki) || d.p != d.end) return LP2P_ERR_PROTOCOL;
    if (lp2p__der_get(&spki, 0x30, &alg) || lp2p__der_get(&alg, 0x06, &o)) return LP2P_ERR_PROTOCOL;
    if (!lp2p__der_is(&o, oid, oid_len)) return LP2P_ERR_UNSUPPORTED;
    *params = alg; /* the rest of the AlgorithmIdentifier */
    if (lp2p__der_get(&spki, 0x03, &bits) || spki.p != spki.end) return LP2P_ERR_PROTOCOL;
    if (bits.p == bits.end || bits.p[0] != 0) return LP2P_ERR_PROTOCOL;
    key->p = bits.p + 1, key->end = bits.end;
    return LP2P_OK;
}

/* ---- RSA PKCS#1 v1.5 with SHA-256 over a PKIX key ---- */
#define LP2P__RSA_MIN_BITS 2048 /* go-libp2p rejects smaller keys (ErrRsaKeyTooSmall) */
#define LP2P__RSA_MAX_BITS 4096 /* BearSSL's BR_MAX_RSA_SIZE */

static size_t lp2p__bitlen(const uint8_t *p, size_t n) {
    if (!n) return 0;
    size_t bits = (n - 1) * 8;
    for (unsigned top = p[0]; top; top >>= 1) bits++;
    return bits;
}

LP2P__PRIV int lp2p__rsa_verify(const uint8_t *der, size_t der_len, const void *msg, size_t msg_len, const uint8_t *sig,
                                size_t sig_len) {
    static const uint8_t rsa_oid[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01}; /* rsaEncryption */
    lp2p__der params, key, seq;
    const uint8_t *n, *e;
    size_t nlen, elen;
    uint8_t want[32], got[32];
    int rc = lp2p__spki_parse(der, der_len, rsa_oid, sizeof rsa_oid, &params, &key);
    if (rc) return rc;
    /* parameters: NULL (RFC 3279 §2.3.1) */
    if (!lp2p__der_is(&params, "\x05\x00", 2)) return LP2P_ERR_PROTOCOL;
    /* RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER } */
    if (lp2p__der_get(&key, 0x30, &seq) || key.p != key.end) return LP2P_ERR_PROTOCOL;
    if (lp2p__der_uint(&seq, &n, &nlen) || lp2p__der_uint(&seq, &e, &elen) || seq.p != seq.end)
        return LP2P_ERR_PROTOCOL;
    size_t bits = lp2p__bitlen(n, nlen);
    if (bits < LP2P__RSA_MIN_BITS || bits > LP2P__RSA_MAX_BITS || elen > nlen) return LP2P_ERR_PROTOCOL;
    br_rsa_public_key pk = {(unsigned char *)n, nlen, (unsigned char *)e, elen};
    /* BearSSL checks sig_len == modulus length and the DigestInfo (OID + NULL); it hands back
     * the signed hash for us to compare */
    if (!sig || sig_len != pk.nlen) return LP2P_ERR_HANDSHAKE;
    if (!br_rsa_pkcs1_vrfy_get_default()(sig, sig_len, BR_HASH_OID_SHA256, sizeof got, &pk, got))
        return LP2P_ERR_HANDSHAKE;
    lp2p__sha256_once(msg, msg_len, want);
    return memcmp(want, got, sizeof want) == 0 ? LP2P_OK : LP2P_ERR_HANDSHAKE;
}

/* ---- ECDSA (NIST curves) with SHA-256 over a PKIX key ---- */
LP2P__PRIV int lp2p__ecdsa_verify(const uint8_t *der, size_t der_len, const void *msg, size_t msg_len, const uint8_t *sig,
                                  size_t sig_len) {
    static const uint8_t ec_oid[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01}; /* id-ecPublicKey */
    /* namedCurve parameters (RFC 5480 §2.1.1.1), as whole OID TLVs. go-libp2p generates P-256
     * keys but accepts any curve x509 parses; BearSSL does P-256/384/521. */
    static const struct {
        uint8_t tlv[10], len;
        int curve;
        size_t point_len;
    } curves[] = {
        {{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}, 10, BR_EC_secp256r1, 65},
        {{0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22}, 7, BR_EC_secp384r1, 97},
        {{0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23}, 7, BR_EC_secp521r1, 133},
    };
    lp2p__der params, key;
    uint8_t hash[32];
    int rc = lp2p__spki_parse(der, der_len, ec_oid, sizeof ec_oid, &params, &key);
    if (rc) return rc;
    for (size_t i = 0; i < LP2P__COUNT(curves); i++) {
        if (!lp2p__der_is(&params, curves[i].tlv, curves[i].len)) continue;
        /* only the uncompressed point form, as go's x509 (elliptic.Unmarshal) and BearSSL */
        size_t qlen = (size_t)(key.end - key.p);
        if (qlen != curves[i].point_len || key.p[0] != 0x04) return LP2P_ERR_PROTOCOL;
        br_ec_public_key pk = {curves[i].curve, (unsigned char *)key.p, qlen};
        if (!sig || sig_len == 0 || sig_len > 256) return LP2P_ERR_HANDSHAKE;
        lp2p__sha256_once(msg, msg_len, hash);
        return br_ecdsa_vrfy_asn1_get_default()(br_ec_get_default(), hash, sizeof hash, &pk, sig, sig_len)
                   ? LP2P_OK
                   : LP2P_ERR_HANDSHAKE;
    }
    return LP2P_ERR_UNSUPPORTED;
}

/* ---- secp256k1: SHA-256, DER signature, 33-byte compressed key ---- */
LP2P__PRIV int lp2p__secp256k1_verify(const uint8_t *key, size_t key_len, const void *msg, size_t msg_len,
                                      const uint8_t *sig, size_t sig_len) {
#if LP2P_ENABLE_SECP256K1
    secp256k1_pubkey pk;
    secp256k1_ecdsa_signature s;
    uint8_t hash[32];
    if (lp2p__crypto_init() != LP2P_OK) return LP2P_ERR_IO;
    /* the spec's "standard Bitcoin EC encoding" is the compressed point (rust accepts only that) */
    if (key_len != 33 || !secp256k1_ec_pubkey_parse(LP2P__SECP_CTX, &pk, key, key_len)) return LP2P_ERR_PROTOCOL;
    if (!sig || !secp256k1_ecdsa_signature_parse_der(LP2P__SECP_CTX, &s, sig, sig_len)) return LP2P_ERR_HANDSHAKE;
    /* libsecp256k1 verifies only low-S signatures; go (btcec) accepts high-S, so normalize first */
    secp256k1_ecdsa_signature_normalize(LP2P__SECP_CTX, &s, &s);
    lp2p__sha256_once(msg, msg_len, hash);
    return secp256k1_ecdsa_verify(LP2P__SECP_CTX, &s, hash, &pk) ? LP2P_OK : LP2P_ERR_HANDSHAKE;
#else
    (void)key, (void)key_len, (void)msg, (void)msg_len, (void)sig, (void)sig_len;
    return LP2P_ERR_UNSUPPORTED;
#endif
}
