/* crypto.h - L1: the thin internal crypto interface (libsodium + BearSSL [+ libsecp256k1]).
 *
 * libsodium: Ed25519, X25519, ChaCha20-Poly1305 (IETF), CSPRNG.
 * BearSSL 0.6 (Debian): SHA-256/512, HMAC, HKDF, RSA PKCS#1 v1.5 and ECDSA P-256 verification.
 * libsecp256k1 (LP2P_ENABLE_SECP256K1, default 0): secp256k1 ECDSA verification.
 * Spec: peer-ids/peer-ids.md (key types and signature rules), noise/README.md.
 * Depends on: base.h. */
#ifndef LP2P__CRYPTO_H
#define LP2P__CRYPTO_H

#include "base.h"

/* Initialise the crypto libraries once (thread-safe; sodium_init). LP2P_OK or ERR_IO. */
LP2P__PRIV int lp2p__crypto_init(void);
LP2P__PRIV void lp2p__random(void *buf, size_t n);

/* ---- hashes ---- */
typedef struct lp2p__sha256 { uint64_t opaque[16]; } lp2p__sha256; /* large enough for br_sha256_context */
LP2P__PRIV void lp2p__sha256_init(lp2p__sha256 *c);
LP2P__PRIV void lp2p__sha256_update(lp2p__sha256 *c, const void *p, size_t n);
LP2P__PRIV void lp2p__sha256_final(lp2p__sha256 *c, uint8_t out[32]);
LP2P__PRIV void lp2p__sha256_once(const void *p, size_t n, uint8_t out[32]);
/* Noise HKDF(chaining_key, ikm) with two 32-byte outputs (RFC 5869, salt = ck, info = ""). */
LP2P__PRIV void lp2p__hkdf2(const uint8_t ck[32], const uint8_t *ikm, size_t ikm_len, uint8_t out1[32], uint8_t out2[32]);

/* ---- X25519 and the AEAD ---- */
LP2P__PRIV void lp2p__x25519_keypair(uint8_t pk[32], uint8_t sk[32]);
/* shared = X25519(sk, pk); ERR_HANDSHAKE if the result is all zero (low-order point). */
LP2P__PRIV int lp2p__x25519(uint8_t shared[32], const uint8_t sk[32], const uint8_t pk[32]);
/* ChaCha20-Poly1305 IETF, nonce = 4 zero bytes || 64-bit little-endian n. out gets len + 16
 * bytes (out may equal in). */
LP2P__PRIV void lp2p__aead_seal(const uint8_t key[32], uint64_t n, const uint8_t *ad, size_t ad_len,
                                const uint8_t *in, size_t len, uint8_t *out);
/* The same sealing (no associated data) of the concatenation of n segments seg[i] (len[i]
 * bytes each, any sizes) into out (the total + 16 bytes), without joining them first: what
 * a muxer header followed by application bytes costs is one copy of the first 64 bytes.
 * out must not overlap the segments. */
LP2P__PRIV void lp2p__aead_seal_gather(const uint8_t key[32], uint64_t n, const uint8_t *const *seg, const size_t *len,
                                       int nseg, uint8_t *out);
/* Opening in two steps, so a frame can be decrypted piecewise straight into its readers'
 * buffers: lp2p__aead_verify checks the tag at ct + len over the ciphertext ct (len bytes, no
 * associated data) without decrypting (LP2P_OK or ERR_PROTOCOL, constant time); then
 * lp2p__aead_xor_at decrypts any range [off, off + len) of that ciphertext (in) into out. */
LP2P__PRIV int lp2p__aead_verify(const uint8_t key[32], uint64_t n, const uint8_t *ct, size_t len);
LP2P__PRIV void lp2p__aead_xor_at(const uint8_t key[32], uint64_t n, size_t off, const uint8_t *in, size_t len,
                                  uint8_t *out);
/* in has len bytes incl. the 16-byte tag; out gets len - 16. ERR_HANDSHAKE... no: returns
 * LP2P_ERR_PROTOCOL if authentication fails, LP2P_OK otherwise. */
LP2P__PRIV int lp2p__aead_open(const uint8_t key[32], uint64_t n, const uint8_t *ad, size_t ad_len,
                               const uint8_t *in, size_t len, uint8_t *out);

/* ---- Ed25519 ---- */
LP2P__PRIV void lp2p__ed25519_from_seed(const uint8_t seed[32], uint8_t pk[32], uint8_t sk[64]);
LP2P__PRIV void lp2p__ed25519_sign(const uint8_t sk[64], const void *msg, size_t len, uint8_t sig[64]);
LP2P__PRIV bool lp2p__ed25519_verify(const uint8_t pk[32], const void *msg, size_t len, const uint8_t sig[64]);

/* ---- per-type verification of the Data field of a PublicKey (peer-ids/peer-ids.md) ----
 * All return LP2P_OK, ERR_HANDSHAKE (bad signature), ERR_PROTOCOL (malformed key) or
 * ERR_UNSUPPORTED (key algorithm/curve we do not handle, or compiled out).
 * RSA: PKIX SubjectPublicKeyInfo DER, 2048..4096 bits, RSASSA-PKCS1-v1.5 with SHA-256.
 * ECDSA: PKIX DER, uncompressed point on P-256 (also P-384/P-521), SHA-256, DER signature.
 * secp256k1: 33-byte compressed key, SHA-256, DER signature (high-S accepted: normalized). */
LP2P__PRIV int lp2p__rsa_verify(const uint8_t *der, size_t der_len, const void *msg, size_t msg_len, const uint8_t *sig,
                                size_t sig_len);
LP2P__PRIV int lp2p__ecdsa_verify(const uint8_t *der, size_t der_len, const void *msg, size_t msg_len, const uint8_t *sig,
                                  size_t sig_len);
LP2P__PRIV int lp2p__secp256k1_verify(const uint8_t *key, size_t key_len, const void *msg, size_t msg_len,
                                      const uint8_t *sig, size_t sig_len);

/* ---- libp2p public keys (the PublicKey protobuf: Type=1 enum, Data=2 bytes) ---- */
#define LP2P__KEY_RSA 0
#define LP2P__KEY_ED25519 1
#define LP2P__KEY_SECP256K1 2
#define LP2P__KEY_ECDSA 3
#define LP2P__PUBKEY_MAX 1024 /* bytes of a serialized PublicKey we accept (RSA up to 4096 bits + DER) */

/* Verify sig over msg with a serialized PublicKey protobuf (any supported type: Ed25519,
 * RSA PKCS#1 v1.5 SHA-256 over PKIX DER keys >= 2048 bits, ECDSA P-256 SHA-256 DER sig over PKIX
 * DER key, secp256k1 SHA-256 DER sig over 33-byte key when enabled). Returns LP2P_OK,
 * ERR_HANDSHAKE for a bad signature, ERR_UNSUPPORTED for an unknown/compiled-out type,
 * ERR_PROTOCOL for a malformed key. */
LP2P__PRIV int lp2p__pubkey_verify(const uint8_t *pubkey_pb, size_t pubkey_len, const void *msg, size_t msg_len,
                                   const uint8_t *sig, size_t sig_len);

/* ---- our identity (Ed25519 only) ---- */
typedef struct lp2p__identity {
    uint8_t seed[32];
    uint8_t pk[32];
    uint8_t sk[64];
    uint8_t pubkey_pb[36]; /* serialized PublicKey: 08 01 12 20 <pk> */
    lp2p_peer_id id;
} lp2p__identity;
LP2P__PRIV void lp2p__identity_from_seed(lp2p__identity *idn, const uint8_t seed[32]);
LP2P__PRIV void lp2p__identity_sign(const lp2p__identity *idn, const void *msg, size_t len, uint8_t sig[64]);

/* ---- peer IDs (spec: peer-ids/peer-ids.md) ---- */
/* Peer ID from a serialized PublicKey: identity multihash if <= 42 bytes, else sha2-256. Like go
 * (which re-marshals the parsed key) it hashes the canonical re-encoding of the protobuf, so
 * field order or duplicate fields do not change the ID. ERR_PROTOCOL if it is not a PublicKey
 * (or an Ed25519/secp256k1 key of the wrong length), ERR_UNSUPPORTED for an unknown key type. */
LP2P__PRIV int lp2p__peer_id_from_pubkey(const uint8_t *pubkey_pb, size_t len, lp2p_peer_id *out);
/* Binary multihash -> peer ID, checking it is a valid identity (<= 42 bytes payload) or sha2-256 multihash. */
LP2P__PRIV int lp2p__peer_id_from_bytes(const uint8_t *p, size_t n, lp2p_peer_id *out);
/* If the peer ID is an identity multihash, the embedded PublicKey protobuf (pointer into id). */
LP2P__PRIV int lp2p__peer_id_pubkey(const lp2p_peer_id *id, const uint8_t **pubkey_pb, size_t *len);
/* Text: parses base58btc multihash ("Qm...", "12D3...", "16Uiu2...") and CIDv1 with codec
 * libp2p-key 0x72 in multibase base32 ('b...') or base58 ('z...'); lp2p_peer_id_str prints base58btc. */

/* ---- signed envelopes (spec: RFC 0002 signed-envelopes; records) ---- */
#define LP2P__ENVELOPE_MAX 4096     /* bytes of a serialized Envelope we open (verified on the stack) */
#define LP2P__ENVELOPE_DOMAIN_MAX 100 /* bytes of a domain string ("libp2p-peer-record" is 18) */
#define LP2P__ENVELOPE_TYPE_MAX 64  /* bytes of a payload type (envelope.options max_size) */
/* Sign: the signature covers uvarint(len(domain)) || domain || uvarint(len(type)) || type ||
 * uvarint(len(payload)) || payload. Writes the serialized Envelope protobuf (public_key=1,
 * payload_type=2, payload=3, signature=5) into out (which must not overlap the inputs); returns
 * its length, ERR_MSGSIZE if cap is too small, ERR_INVALID for an empty or over-long domain or
 * payload type (go rejects empty ones too). */
LP2P__PRIV ptrdiff_t lp2p__envelope_seal(const lp2p__identity *idn, const char *domain, const uint8_t *type,
                                         size_t type_len, const uint8_t *payload, size_t payload_len, uint8_t *out,
                                         size_t cap);
/* Parse + verify an Envelope against domain and expected payload type. On OK, *payload points
 * into env and signer gets the signer's peer ID. ERR_PROTOCOL malformed or other payload type,
 * ERR_HANDSHAKE bad signature, ERR_UNSUPPORTED signer key type, ERR_MSGSIZE env_len >
 * LP2P__ENVELOPE_MAX, ERR_INVALID bad arguments. */
LP2P__PRIV int lp2p__envelope_open(const uint8_t *env, size_t env_len, const char *domain, const uint8_t *type,
                                   size_t type_len, const uint8_t **payload, size_t *payload_len, lp2p_peer_id *signer);

#endif
