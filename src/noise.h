/* noise.h - L4: the libp2p Noise secure channel (Noise_XX_25519_ChaChaPoly_SHA256).
 *
 * Spec: libp2p/specs noise/README.md; the Noise Protocol Framework rev. 34.
 * Handshake: XX with an empty prologue (still MixHash'ed); the payload carries our identity
 * key, the signature over "noise-libp2p-static-key:" || static key, and the stream_muxers
 * extension (responder in msg 2, initiator in msg 3). Transport frames are u16 BE length ||
 * ciphertext, <= 65535 bytes (65519 plaintext). The result is a pipe.
 * Depends on: pipe.h, crypto.h. */
#ifndef LP2P__NOISE_H
#define LP2P__NOISE_H

#include "pipe.h"
#include "crypto.h"

#define LP2P__NOISE_PROTO "/noise"
#define LP2P__NOISE_MAX_PLAINTEXT 65519

typedef struct lp2p__noise_result {
    lp2p_peer_id remote_id;
    uint8_t remote_pubkey[LP2P__PUBKEY_MAX]; /* serialized PublicKey protobuf */
    size_t remote_pubkey_len;
    char muxer[64]; /* early-negotiated muxer ("" = none: negotiate with multistream) */
} lp2p__noise_result;

/* Run the handshake on raw (which the returned secure pipe then owns; on failure raw is NOT
 * freed). initiator: we dialed. expected: the peer ID we dialed (NULL = any). muxers: our
 * stream_muxers list in preference order (n may be 0). On success *out is the secure pipe.
 * Errors: ERR_HANDSHAKE (bad signature, peer ID mismatch, no common muxer, decrypt failure),
 * ERR_PROTOCOL (malformed message), ERR_TIMEOUT, ERR_EOF, pipe errors. */
LP2P__PRIV int lp2p__noise_handshake(lp2p__ctx *ctx, lp2p__pipe *raw, const lp2p__identity *self, bool initiator,
                                     const lp2p_peer_id *expected, const char *const *muxers, int n_muxers,
                                     lp2p__pipe **out, lp2p__noise_result *res, int64_t deadline);

#endif
