/* peerid.c - L0/L1: our Ed25519 identity, libp2p public keys, peer IDs (binary and text) and
 * signed envelopes.
 *
 * Spec: peer-ids/peer-ids.md (key protobuf, signing rules, peer ID derivation, text forms);
 * RFC/0002-signed-envelopes.md (envelope wire format and signing buffer); multiformats/cid
 * (CIDv1 = <multibase><version=1><codec=libp2p-key 0x72><multihash>).
 * Peer input (keys, envelopes, text) is parsed with nanopb into fixed-size structs or with
 * callbacks that only record where the bytes are; everything is bounded by LP2P__PUBKEY_MAX,
 * LP2P__ENVELOPE_MAX and LP2P_PEER_ID_STRLEN.
 * Depends on: base.h, crypto.h, multibase.c, proto/keys.pb.h, proto/envelope.pb.h, nanopb. */
#include "crypto.h"
#include "proto/keys.pb.h"
#include "proto/envelope.pb.h"

#include <pb_decode.h>
#include <pb_encode.h>

#define LP2P__MH_IDENTITY 0x00
#define LP2P__MH_SHA2_256 0x12
#define LP2P__MH_IDENTITY_MAX 42 /* longest key protobuf inlined in a peer ID */
#define LP2P__CID_V1 0x01
#define LP2P__CODEC_LIBP2P_KEY 0x72

/* ---- public keys ---- */

/* Decode a serialized PublicKey (both fields required) and check the per-type key length where
 * the spec fixes it. */
static int lp2p__pubkey_decode(const uint8_t *pb, size_t len, lp2p_pb_PublicKey *key) {
    if (!pb || len == 0 || len > LP2P__PUBKEY_MAX) return LP2P_ERR_PROTOCOL;
    pb_istream_t is = pb_istream_from_buffer(pb, len);
    memset(key, 0, sizeof *key);
    if (!pb_decode(&is, lp2p_pb_PublicKey_fields, key)) return LP2P_ERR_PROTOCOL;
    switch ((int)key->Type) {
    case LP2P__KEY_ED25519: return key->Data.size == 32 ? LP2P_OK : LP2P_ERR_PROTOCOL;
    case LP2P__KEY_SECP256K1: return key->Data.size == 33 ? LP2P_OK : LP2P_ERR_PROTOCOL;
    case LP2P__KEY_RSA:
    case LP2P__KEY_ECDSA: return LP2P_OK;
    default: return LP2P_ERR_UNSUPPORTED;
    }
}

LP2P__PRIV int lp2p__pubkey_verify(const uint8_t *pubkey_pb, size_t pubkey_len, const void *msg, size_t msg_len,
                                   const uint8_t *sig, size_t sig_len) {
    lp2p_pb_PublicKey key;
    int rc = lp2p__pubkey_decode(pubkey_pb, pubkey_len, &key);
    if (rc) return rc;
    if (!msg && msg_len) return LP2P_ERR_INVALID;
    const uint8_t *d = key.Data.bytes;
    size_t n = key.Data.size;
    switch ((int)key.Type) {
    case LP2P__KEY_ED25519:
        if (!sig || sig_len != 64) return LP2P_ERR_HANDSHAKE;
        return lp2p__ed25519_verify(d, msg, msg_len, sig) ? LP2P_OK : LP2P_ERR_HANDSHAKE;
    case LP2P__KEY_RSA: return lp2p__rsa_verify(d, n, msg, msg_len, sig, sig_len);
    case LP2P__KEY_ECDSA: return lp2p__ecdsa_verify(d, n, msg, msg_len, sig, sig_len);
    case LP2P__KEY_SECP256K1: return lp2p__secp256k1_verify(d, n, msg, msg_len, sig, sig_len);
    default: return LP2P_ERR_UNSUPPORTED;
    }
}

/* ---- peer IDs ---- */

/* The multihash step of peer-ids.md: identity for <= 42 bytes, else sha2-256. */
static void lp2p__peer_id_hash(const uint8_t *pb, size_t len, lp2p_peer_id *out) {
    if (len <= LP2P__MH_IDENTITY_MAX) {
        out->bytes[0] = LP2P__MH_IDENTITY;
        out->bytes[1] = (uint8_t)len;
        memcpy(out->bytes + 2, pb, len);
        out->len = (uint8_t)(2 + len);
    } else {
        out->bytes[0] = LP2P__MH_SHA2_256;
        out->bytes[1] = 32;
        lp2p__sha256_once(pb, len, out->bytes + 2);
        out->len = 34;
    }
}

LP2P__PRIV int lp2p__peer_id_from_pubkey(const uint8_t *pubkey_pb, size_t len, lp2p_peer_id *out) {
    lp2p_pb_PublicKey key;
    uint8_t canon[lp2p_pb_PublicKey_size];
    int rc = lp2p__pubkey_decode(pubkey_pb, len, &key);
    if (rc) return rc;
    /* deterministic encoding (peer-ids.md "Keys"): both fields, in tag order, minimal varints */
    pb_ostream_t os = pb_ostream_from_buffer(canon, sizeof canon);
    if (!pb_encode(&os, lp2p_pb_PublicKey_fields, &key)) return LP2P_ERR_PROTOCOL;
    lp2p__peer_id_hash(canon, os.bytes_written, out);
    return LP2P_OK;
}

LP2P__PRIV int lp2p__peer_id_from_bytes(const uint8_t *p, size_t n, lp2p_peer_id *out) {
    if (!p || !out || n < 3 || n > sizeof out->bytes) return LP2P_ERR_BADADDR;
    if (p[0] == LP2P__MH_IDENTITY) {
        /* one-byte length: <= 42, so its varint is the byte itself */
        if (p[1] == 0 || p[1] > LP2P__MH_IDENTITY_MAX || n != 2u + p[1]) return LP2P_ERR_BADADDR;
    } else if (p[0] == LP2P__MH_SHA2_256) {
        if (p[1] != 32 || n != 34) return LP2P_ERR_BADADDR;
    } else {
        return LP2P_ERR_BADADDR;
    }
    memcpy(out->bytes, p, n);
    out->len = (uint8_t)n;
    return LP2P_OK;
}

LP2P__PRIV int lp2p__peer_id_pubkey(const lp2p_peer_id *id, const uint8_t **pubkey_pb, size_t *len) {
    if (!id || id->len < 3 || id->bytes[0] != LP2P__MH_IDENTITY || id->len != 2u + id->bytes[1])
        return LP2P_ERR_NOTFOUND; /* a hashed ID: the key must come from the peer */
    *pubkey_pb = id->bytes + 2;
    *len = id->bytes[1];
    return LP2P_OK;
}

/* The multihash inside a CIDv1: <version 1><codec libp2p-key><multihash>. */
static int lp2p__peer_id_from_cid(const uint8_t *p, size_t n, lp2p_peer_id *out) {
    uint64_t version, codec;
    int a = lp2p__uvarint_get(p, n, &version);
    if (a <= 0 || version != LP2P__CID_V1) return LP2P_ERR_BADADDR;
    int b = lp2p__uvarint_get(p + a, n - (size_t)a, &codec);
    if (b <= 0 || codec != LP2P__CODEC_LIBP2P_KEY) return LP2P_ERR_BADADDR;
    return lp2p__peer_id_from_bytes(p + a + b, n - (size_t)a - (size_t)b, out);
}

LP2P_API int lp2p_peer_id_parse(const char *str, lp2p_peer_id *out) {
    uint8_t buf[96];
    ptrdiff_t n;
    size_t len = 0;
    if (!str || !out) return LP2P_ERR_INVALID;
    while (len < LP2P_PEER_ID_STRLEN && str[len]) len++;
    if (len == 0 || len >= LP2P_PEER_ID_STRLEN) return LP2P_ERR_BADADDR;
    switch (str[0]) {
    case '1':
    case 'Q':
        n = lp2p__base58_dec(str, len, buf, sizeof buf);
        return n < 0 ? LP2P_ERR_BADADDR : lp2p__peer_id_from_bytes(buf, (size_t)n, out);
    case 'b':
    case 'B':
        n = lp2p__base32_dec(str + 1, len - 1, buf, sizeof buf);
        return n < 0 ? LP2P_ERR_BADADDR : lp2p__peer_id_from_cid(buf, (size_t)n, out);
    case 'z':
        n = lp2p__base58_dec(str + 1, len - 1, buf, sizeof buf);
        return n < 0 ? LP2P_ERR_BADADDR : lp2p__peer_id_from_cid(buf, (size_t)n, out);
    default: return LP2P_ERR_BADADDR;
    }
}

LP2P_API int lp2p_peer_id_str(const lp2p_peer_id *id, char *buf, size_t cap) {
    if (!id || !buf || id->len == 0 || id->len > sizeof id->bytes) return LP2P_ERR_INVALID;
    ptrdiff_t n = lp2p__base58_enc(id->bytes, id->len, buf, cap);
    return n < 0 ? LP2P_ERR_INVALID : LP2P_OK;
}

LP2P_API bool lp2p_peer_id_eq(const lp2p_peer_id *a, const lp2p_peer_id *b) {
    if (!a || !b || a->len != b->len || a->len > sizeof a->bytes) return false;
    return memcmp(a->bytes, b->bytes, a->len) == 0;
}

LP2P_API int lp2p_identity_generate(uint8_t seed_out[32]) {
    if (!seed_out) return LP2P_ERR_INVALID;
    if (lp2p__crypto_init() != LP2P_OK) return LP2P_ERR_IO;
    lp2p__random(seed_out, 32);
    return LP2P_OK;
}

/* ---- our identity ---- */
LP2P__PRIV void lp2p__identity_from_seed(lp2p__identity *idn, const uint8_t seed[32]) {
    memcpy(idn->seed, seed, 32);
    lp2p__ed25519_from_seed(seed, idn->pk, idn->sk);
    /* PublicKey{Type: Ed25519 (field 1 varint = 1), Data (field 2, 32 bytes)} */
    static const uint8_t prefix[4] = {0x08, LP2P__KEY_ED25519, 0x12, 0x20};
    memcpy(idn->pubkey_pb, prefix, 4);
    memcpy(idn->pubkey_pb + 4, idn->pk, 32);
    lp2p__peer_id_hash(idn->pubkey_pb, sizeof idn->pubkey_pb, &idn->id);
}

LP2P__PRIV void lp2p__identity_sign(const lp2p__identity *idn, const void *msg, size_t len, uint8_t sig[64]) {
    lp2p__ed25519_sign(idn->sk, msg, len, sig);
}

/* ---- signed envelopes ---- */
typedef struct lp2p__slice {
    const uint8_t *p;
    size_t n;
} lp2p__slice;

/* encode callback: a length-delimited field (bytes, or an already serialized submessage) */
static bool lp2p__pb_put_slice(pb_ostream_t *s, const pb_field_t *f, void *const *arg) {
    const lp2p__slice *sl = (const lp2p__slice *)*arg;
    if (sl->n == 0) return true; /* proto3: empty bytes are not sent */
    return pb_encode_tag_for_field(s, f) && pb_encode_string(s, sl->p, sl->n);
}

/* decode callback: record where the field's bytes are. Only valid on streams made by
 * pb_istream_from_buffer, whose state is the read pointer (nanopb's buffer stream). */
static bool lp2p__pb_get_slice(pb_istream_t *s, const pb_field_t *f, void **arg) {
    lp2p__slice *sl = (lp2p__slice *)*arg;
    (void)f;
    sl->p = (const uint8_t *)s->state;
    sl->n = s->bytes_left;
    return pb_read(s, NULL, s->bytes_left);
}

/* RFC 0002 signing buffer: uvarint-length-prefixed domain, payload type and payload. Returns
 * its length, or 0 if it does not fit in cap. */
static size_t lp2p__envelope_signing_data(const char *domain, size_t dl, const uint8_t *type, size_t type_len,
                                          const uint8_t *payload, size_t payload_len, uint8_t *out, size_t cap) {
    size_t need = lp2p__uvarint_len(dl) + dl + lp2p__uvarint_len(type_len) + type_len +
                  lp2p__uvarint_len(payload_len) + payload_len;
    if (need > cap) return 0;
    size_t o = lp2p__uvarint_put(out, dl);
    memcpy(out + o, domain, dl), o += dl;
    o += lp2p__uvarint_put(out + o, type_len);
    if (type_len) memcpy(out + o, type, type_len), o += type_len;
    o += lp2p__uvarint_put(out + o, payload_len);
    if (payload_len) memcpy(out + o, payload, payload_len), o += payload_len;
    return o;
}

LP2P__PRIV ptrdiff_t lp2p__envelope_seal(const lp2p__identity *idn, const char *domain, const uint8_t *type,
                                         size_t type_len, const uint8_t *payload, size_t payload_len, uint8_t *out,
                                         size_t cap) {
    size_t dl = domain ? strlen(domain) : 0;
    if (!idn || !out || dl == 0 || dl > LP2P__ENVELOPE_DOMAIN_MAX || !type || type_len == 0 ||
        type_len > LP2P__ENVELOPE_TYPE_MAX || (payload_len && !payload))
        return LP2P_ERR_INVALID;
    /* The signing buffer is built in out: with the domain capped it is never longer than the
     * envelope (which adds a 38-byte key and a 66-byte signature), so if it does not fit,
     * neither would the envelope. */
    uint8_t sig[64];
    size_t sdl = lp2p__envelope_signing_data(domain, dl, type, type_len, payload, payload_len, out, cap);
    if (sdl == 0) return LP2P_ERR_MSGSIZE;
    lp2p__identity_sign(idn, out, sdl, sig);

    lp2p_pb_Envelope e;
    lp2p__slice key = {idn->pubkey_pb, sizeof idn->pubkey_pb}, pl = {payload, payload_len};
    memset(&e, 0, sizeof e);
    e.public_key.funcs.encode = lp2p__pb_put_slice;
    e.public_key.arg = &key;
    e.payload.funcs.encode = lp2p__pb_put_slice;
    e.payload.arg = &pl;
    e.payload_type.size = (pb_size_t)type_len;
    memcpy(e.payload_type.bytes, type, type_len);
    e.signature.size = 64;
    memcpy(e.signature.bytes, sig, 64);
    pb_ostream_t os = pb_ostream_from_buffer(out, cap);
    if (!pb_encode(&os, lp2p_pb_Envelope_fields, &e)) return LP2P_ERR_MSGSIZE;
    return (ptrdiff_t)os.bytes_written;
}

LP2P__PRIV int lp2p__envelope_open(const uint8_t *env, size_t env_len, const char *domain, const uint8_t *type,
                                   size_t type_len, const uint8_t **payload, size_t *payload_len,
                                   lp2p_peer_id *signer) {
    size_t dl = domain ? strlen(domain) : 0;
    if (!env || !payload || !payload_len || !signer || dl == 0 || dl > LP2P__ENVELOPE_DOMAIN_MAX ||
        (type_len && !type) || type_len > LP2P__ENVELOPE_TYPE_MAX)
        return LP2P_ERR_INVALID;
    if (env_len > LP2P__ENVELOPE_MAX) return LP2P_ERR_MSGSIZE;

    lp2p_pb_Envelope e;
    lp2p__slice key = {NULL, 0}, pl = {NULL, 0};
    memset(&e, 0, sizeof e);
    e.public_key.funcs.decode = lp2p__pb_get_slice;
    e.public_key.arg = &key;
    e.payload.funcs.decode = lp2p__pb_get_slice;
    e.payload.arg = &pl;
    pb_istream_t is = pb_istream_from_buffer(env, env_len);
    if (!pb_decode(&is, lp2p_pb_Envelope_fields, &e) || !key.p) return LP2P_ERR_PROTOCOL;
    /* the payload type is part of what was signed, but a record of another type must not be
     * accepted as ours even with a good signature (RFC 0002 "Payload Type Information") */
    if (e.payload_type.size != type_len || (type_len && memcmp(e.payload_type.bytes, type, type_len) != 0))
        return LP2P_ERR_PROTOCOL;

    uint8_t sd[LP2P__ENVELOPE_MAX + LP2P__ENVELOPE_DOMAIN_MAX + LP2P__ENVELOPE_TYPE_MAX + 16];
    size_t sdl = lp2p__envelope_signing_data(domain, dl, type, type_len, pl.p, pl.n, sd, sizeof sd);
    if (sdl == 0) return LP2P_ERR_MSGSIZE; /* cannot happen: pl.n < env_len */
    int rc = lp2p__pubkey_verify(key.p, key.n, sd, sdl, e.signature.bytes, e.signature.size);
    if (rc) return rc;
    lp2p_peer_id id;
    rc = lp2p__peer_id_from_pubkey(key.p, key.n, &id);
    if (rc) return rc;
    *payload = pl.p ? pl.p : env;
    *payload_len = pl.n;
    *signer = id;
    return LP2P_OK;
}
