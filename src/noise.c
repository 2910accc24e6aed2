/* noise.c - L4: the libp2p Noise secure channel, Noise_XX_25519_ChaChaPoly_SHA256.
 *
 * Spec: libp2p/specs noise/README.md; connections/inlined-muxer-negotiation.md; the Noise
 * Protocol Framework rev. 34 (§5 processing rules, §7.5 XX).
 * Three parts:
 *  1. the Noise state machine (symmetric state + XX handshake state) with arbitrary prologue and
 *     payloads, so it can be checked against the cacophony test vectors;
 *  2. the libp2p handshake: u16 BE length-prefixed messages, the NoiseHandshakePayload protobuf
 *     (hand-encoded / bounded hand-decoded here: identity_key = 1, identity_sig = 2,
 *     extensions = 4 { webtransport_certhashes = 1, stream_muxers = 2 }), the identity signature
 *     over "noise-libp2p-static-key:" || static key, the peer ID check, early muxer negotiation;
 *  3. the secure pipe: frames of u16 BE length || ciphertext (<= 65535 bytes, 65519 plaintext),
 *     k1 initiator->responder, k2 responder->initiator, little-endian 64-bit nonces.
 *     Reads go ahead (several frames per syscall); a frame's tag is checked, then each read
 *     decrypts the bytes it takes straight into the caller's buffer. Writes seal straight from
 *     the caller's buffers (writev: a muxer's headers and the application's bytes where they
 *     lie). Memory: the read-ahead and the sealed-frame batch come from the host's buffer cache
 *     only while bytes are buffered or a write runs: an idle secure pipe holds neither.
 * Depends on: noise.h (pipe.h, crypto.h). */
#include "noise.h"

#define LP2P__NOISE_NAME "Noise_XX_25519_ChaChaPoly_SHA256" /* exactly 32 bytes: h = name */
#define LP2P__NOISE_MAX_MSG 65535
#define LP2P__NOISE_TAG 16
#define LP2P__NOISE_SIG_PREFIX "noise-libp2p-static-key:"
#define LP2P__NOISE_MAX_MUXERS 8       /* muxers we send */
#define LP2P__NOISE_MAX_REMOTE_MUXERS 32 /* a longer remote list is ignored, like go (its cap: 100) */
#define LP2P__NOISE_PAYLOAD_MAX 1024   /* our own handshake payload */
#define LP2P__NOISE_WBATCH (4 * (LP2P__NOISE_MAX_PLAINTEXT)) /* plaintext bytes per raw write */
#define LP2P__NOISE_WBUF (LP2P__NOISE_WBATCH + 4 * (2 + LP2P__NOISE_TAG)) /* its sealed frames */
#define LP2P__NOISE_WSMALL 1024 /* sealed writes up to this go through the stack, not the cache */
#define LP2P__NOISE_IOV_MAX 64  /* buffers one writev takes */
#define LP2P__NOISE_RINL 64     /* inline receive buffer: where an idle pipe waits */
#define LP2P__NOISE_RSMALL 4096 /* read-ahead while frames are small */
#define LP2P__NOISE_RBIG LP2P__NOISE_WBUF /* read-ahead once a big frame arrives: four full frames
                                           * (the same size as the write batch: one cache class) */

/* Test hook: when set, supplies the X25519 private keys lp2p__noise_handshake would draw from
 * the CSPRNG (which: 0 = static, 1 = ephemeral), for known-answer tests. NULL in production. */
static void (*lp2p__noise_key_hook)(bool initiator, int which, uint8_t sk[32]);

static void lp2p__noise_wipe(void *p, size_t n) {
    volatile uint8_t *v = (volatile uint8_t *)p;
    while (n--) *v++ = 0;
}

/* ==== 1. Noise state machine ================================================================ */

typedef struct lp2p__noise_sym { /* SymmetricState with its CipherState */
    uint8_t h[32], ck[32], k[32];
    uint64_t n;
    bool has_k;
} lp2p__noise_sym;

typedef struct lp2p__noise_hs { /* HandshakeState for XX */
    lp2p__noise_sym ss;
    uint8_t s_pk[32], s_sk[32], e_pk[32], e_sk[32], rs[32], re[32];
    bool initiator;
    int msg; /* index of the next handshake message, 0..3 (3 = done) */
} lp2p__noise_hs;

static void lp2p__noise_mix_hash(lp2p__noise_sym *ss, const uint8_t *data, size_t n) {
    lp2p__sha256 c;
    lp2p__sha256_init(&c);
    lp2p__sha256_update(&c, ss->h, 32);
    lp2p__sha256_update(&c, data, n);
    lp2p__sha256_final(&c, ss->h);
}

static void lp2p__noise_mix_key(lp2p__noise_sym *ss, const uint8_t ikm[32]) {
    lp2p__hkdf2(ss->ck, ikm, 32, ss->ck, ss->k);
    ss->n = 0;
    ss->has_k = true;
}

/* EncryptAndHash: out gets n (+ 16 once a key is set) bytes; out may equal in. */
static size_t lp2p__noise_encrypt_hash(lp2p__noise_sym *ss, const uint8_t *in, size_t n, uint8_t *out) {
    if (ss->has_k) {
        lp2p__aead_seal(ss->k, ss->n++, ss->h, 32, in, n, out);
        n += LP2P__NOISE_TAG;
    } else if (out != in && n) {
        memmove(out, in, n);
    }
    lp2p__noise_mix_hash(ss, out, n);
    return n;
}

/* DecryptAndHash in place: msg has n bytes (incl. the tag once a key is set); returns the
 * plaintext length or ERR_HANDSHAKE (authentication failure), ERR_PROTOCOL (too short). */
static ptrdiff_t lp2p__noise_decrypt_hash(lp2p__noise_sym *ss, uint8_t *msg, size_t n) {
    if (!ss->has_k) {
        lp2p__noise_mix_hash(ss, msg, n);
        return (ptrdiff_t)n;
    }
    if (n < LP2P__NOISE_TAG) return LP2P_ERR_PROTOCOL;
    /* h must cover the ciphertext, which decrypting in place destroys: hash it first */
    lp2p__noise_sym next = *ss;
    lp2p__noise_mix_hash(&next, msg, n);
    if (lp2p__aead_open(ss->k, ss->n, ss->h, 32, msg, n, msg) != LP2P_OK) {
        lp2p__noise_wipe(&next, sizeof next);
        return LP2P_ERR_HANDSHAKE;
    }
    memcpy(ss->h, next.h, 32);
    ss->n++;
    lp2p__noise_wipe(&next, sizeof next);
    return (ptrdiff_t)(n - LP2P__NOISE_TAG);
}

static int lp2p__noise_dh_mix(lp2p__noise_sym *ss, const uint8_t sk[32], const uint8_t pk[32]) {
    uint8_t shared[32];
    int rc = lp2p__x25519(shared, sk, pk);
    if (rc == LP2P_OK) lp2p__noise_mix_key(ss, shared);
    lp2p__noise_wipe(shared, sizeof shared);
    return rc == LP2P_OK ? LP2P_OK : LP2P_ERR_HANDSHAKE;
}

/* An X25519 key pair from a given private key (pk = sk * basepoint) or, sk_in NULL, a fresh one. */
static void lp2p__noise_keypair(const uint8_t *sk_in, uint8_t pk[32], uint8_t sk[32]) {
    static const uint8_t base[32] = {9};
    if (!sk_in) {
        lp2p__x25519_keypair(pk, sk);
        return;
    }
    memcpy(sk, sk_in, 32);
    (void)lp2p__x25519(pk, sk, base); /* never all-zero for the base point */
}

/* Initialize: h = protocol name (32 bytes, not hashed), ck = h, MixHash(prologue) - also for an
 * empty prologue. s_sk / e_sk: fixed private keys (tests) or NULL for fresh random ones. */
static void lp2p__noise_hs_init(lp2p__noise_hs *hs, bool initiator, const uint8_t *prologue, size_t prologue_len,
                                const uint8_t *s_sk, const uint8_t *e_sk) {
    memset(hs, 0, sizeof *hs);
    hs->initiator = initiator;
    memcpy(hs->ss.h, LP2P__NOISE_NAME, 32);
    memcpy(hs->ss.ck, hs->ss.h, 32);
    lp2p__noise_mix_hash(&hs->ss, prologue, prologue_len);
    lp2p__noise_keypair(s_sk, hs->s_pk, hs->s_sk);
    lp2p__noise_keypair(e_sk, hs->e_pk, hs->e_sk);
}

/* Upper bound of a handshake message carrying a payload of n bytes. */
#define LP2P__NOISE_HS_OVERHEAD (32 + 48 + LP2P__NOISE_TAG)

/* WriteMessage: the next message of our role into out (room for n + LP2P__NOISE_HS_OVERHEAD).
 * Returns its length or ERR_HANDSHAKE (low-order key) / ERR_INVALID (not our turn). */
static ptrdiff_t lp2p__noise_hs_write(lp2p__noise_hs *hs, const uint8_t *payload, size_t n, uint8_t *out) {
    size_t off = 0;
    int rc = LP2P_OK;
    if (hs->msg >= 3 || (hs->msg == 1) == hs->initiator) return LP2P_ERR_INVALID;
    if (hs->msg < 2) { /* -> e  /  <- e, ee, s, es */
        memcpy(out, hs->e_pk, 32), off = 32;
        lp2p__noise_mix_hash(&hs->ss, hs->e_pk, 32);
        if (hs->msg == 1) {
            rc = lp2p__noise_dh_mix(&hs->ss, hs->e_sk, hs->re);
            off += lp2p__noise_encrypt_hash(&hs->ss, hs->s_pk, 32, out + off);
            if (rc == LP2P_OK) rc = lp2p__noise_dh_mix(&hs->ss, hs->s_sk, hs->re);
        }
    } else { /* -> s, se */
        off = lp2p__noise_encrypt_hash(&hs->ss, hs->s_pk, 32, out);
        rc = lp2p__noise_dh_mix(&hs->ss, hs->s_sk, hs->re);
    }
    if (rc) return rc;
    off += lp2p__noise_encrypt_hash(&hs->ss, payload, n, out + off);
    hs->msg++;
    return (ptrdiff_t)off;
}

/* ReadMessage in place: msg (len bytes) is the peer's next message; on success the payload is
 * at msg + *payload_off and the return value is its length. ERR_PROTOCOL (too short),
 * ERR_HANDSHAKE (decryption failed, low-order key), ERR_INVALID (not their turn). */
static ptrdiff_t lp2p__noise_hs_read(lp2p__noise_hs *hs, uint8_t *msg, size_t len, size_t *payload_off) {
    size_t off = 0;
    ptrdiff_t r;
    int rc = LP2P_OK;
    if (hs->msg >= 3 || (hs->msg == 1) != hs->initiator) return LP2P_ERR_INVALID;
    if (hs->msg < 2) { /* -> e  /  <- e, ee, s, es */
        size_t need = hs->msg == 0 ? 32 : 32 + 48 + LP2P__NOISE_TAG;
        if (len < need) return LP2P_ERR_PROTOCOL;
        memcpy(hs->re, msg, 32), off = 32;
        lp2p__noise_mix_hash(&hs->ss, hs->re, 32);
        if (hs->msg == 1) {
            if ((rc = lp2p__noise_dh_mix(&hs->ss, hs->e_sk, hs->re)) != 0) return rc;
            if ((r = lp2p__noise_decrypt_hash(&hs->ss, msg + off, 48)) < 0) return r;
            memcpy(hs->rs, msg + off, 32), off += 48;
            if ((rc = lp2p__noise_dh_mix(&hs->ss, hs->e_sk, hs->rs)) != 0) return rc;
        }
    } else { /* -> s, se */
        if (len < 48 + LP2P__NOISE_TAG) return LP2P_ERR_PROTOCOL;
        if ((r = lp2p__noise_decrypt_hash(&hs->ss, msg, 48)) < 0) return r;
        memcpy(hs->rs, msg, 32), off = 48;
        if ((rc = lp2p__noise_dh_mix(&hs->ss, hs->e_sk, hs->rs)) != 0) return rc;
    }
    if ((r = lp2p__noise_decrypt_hash(&hs->ss, msg + off, len - off)) < 0) return r;
    hs->msg++;
    *payload_off = off;
    return r;
}

/* Split: k1 protects initiator->responder traffic, k2 the other direction. */
static void lp2p__noise_hs_split(lp2p__noise_hs *hs, uint8_t k1[32], uint8_t k2[32]) {
    lp2p__hkdf2(hs->ss.ck, NULL, 0, k1, k2);
}

/* ==== 3. the secure pipe (declared before the handshake, which allocates it) ================= */

typedef struct lp2p__noise_pipe {
    lp2p__pipe base;
    lp2p__ctx *ctx;
    lp2p__pipe *raw;
    uint8_t k_send[32], k_recv[32];
    uint64_t n_send, n_recv;
    int err;  /* sticky, both directions: decrypt failure, truncated frame */
    int werr; /* sticky, writes only: a raw write failed mid-frame */
    /* Receive: raw bytes read ahead at [rpos, rend) of rbuf, so one syscall brings several
     * frames. A complete frame's tag is checked first; its ciphertext then stays where it is
     * and every read decrypts the range it takes straight into the caller's buffer: [poff,
     * poff + plen) is the part not yet returned, pdone bytes into the frame with nonce pnonce.
     * rbuf is rinl while nothing is buffered (an idle pipe waits there, holding no heap
     * buffer), else a buffer from the host cache: LP2P__NOISE_RSMALL bytes for small frames,
     * LP2P__NOISE_RBIG (four full frames) once a big one arrives. */
    uint8_t *rbuf;
    size_t rcap, rpos, rend;
    size_t poff, plen, pdone;
    uint64_t pnonce;
    uint8_t rinl[LP2P__NOISE_RINL];
} lp2p__noise_pipe;

/* Back to the inline buffer (only when nothing is buffered): the cache buffer goes back. */
static void lp2p__noise_rbuf_release(lp2p__noise_pipe *np) {
    if (np->rbuf != np->rinl) lp2p__cache_put(np->ctx, np->rbuf, np->rcap);
    np->rbuf = np->rinl, np->rcap = sizeof np->rinl, np->rpos = np->rend = 0;
}

static ptrdiff_t lp2p__noise_copy_out(lp2p__noise_pipe *np, void *buf, size_t cap) {
    size_t n = LP2P__MIN(cap, np->plen);
    lp2p__aead_xor_at(np->k_recv, np->pnonce, np->pdone, np->rbuf + np->poff, n, (uint8_t *)buf);
    np->poff += n, np->plen -= n, np->pdone += n;
    if (!np->plen && np->rpos == np->rend) np->rpos = np->rend = 0; /* drained: start over at the front */
    return (ptrdiff_t)n;
}

/* Room for `want` raw bytes from rpos on (no plaintext is pending when this runs): move the
 * unread bytes to the front, or move them into a bigger buffer from the cache. */
static int lp2p__noise_rbuf_room(lp2p__noise_pipe *np, size_t want) {
    size_t avail = np->rend - np->rpos;
    if (np->rcap - np->rpos >= want) return LP2P_OK;
    if (np->rcap >= want) {
        memmove(np->rbuf, np->rbuf + np->rpos, avail);
        np->rpos = 0, np->rend = avail;
        return LP2P_OK;
    }
    size_t cap = want <= LP2P__NOISE_RSMALL ? LP2P__NOISE_RSMALL : LP2P__NOISE_RBIG;
    uint8_t *nb = (uint8_t *)lp2p__cache_get(np->ctx, cap);
    if (!nb) return LP2P_ERR_NOMEM;
    if (avail) memcpy(nb, np->rbuf + np->rpos, avail);
    if (np->rbuf != np->rinl) lp2p__cache_put(np->ctx, np->rbuf, np->rcap);
    np->rbuf = nb, np->rcap = cap, np->rpos = 0, np->rend = avail;
    return LP2P_OK;
}

/* Check the tag of the complete frame at rpos (2-byte header, then flen bytes) and make its
 * ciphertext the pending plaintext (decrypted as it is read). Returns the plaintext length or
 * ERR_PROTOCOL (sticky). */
static ptrdiff_t lp2p__noise_open_frame(lp2p__noise_pipe *np, size_t flen) {
    uint8_t *f = np->rbuf + np->rpos + 2;
    np->rpos += 2 + flen;
    if (np->n_recv == UINT64_MAX || lp2p__aead_verify(np->k_recv, np->n_recv, f, flen - LP2P__NOISE_TAG) != LP2P_OK) {
        LP2P__WARN(np->ctx, LP2P_ERR_PROTOCOL, "noise: transport frame failed to decrypt (nonce %llu)",
                   (unsigned long long)np->n_recv);
        return np->err = LP2P_ERR_PROTOCOL;
    }
    np->pnonce = np->n_recv++;
    np->poff = (size_t)(f - np->rbuf), np->plen = flen - LP2P__NOISE_TAG, np->pdone = 0;
    return (ptrdiff_t)np->plen;
}

/* Read ahead: as many raw bytes as fit (at least one more). An empty cache buffer is kept
 * only if the read needs no wait: a busy pipe reuses it, a pipe about to wait gives it back
 * first. 1 = got bytes, 0 = clean EOF between frames, < 0 error (timeout/cancel: resumable). */
static int lp2p__noise_fill(lp2p__noise_pipe *np, size_t want, int64_t deadline) {
    ptrdiff_t r = LP2P_ERR_TIMEOUT;
    if (np->rpos == np->rend && np->rbuf != np->rinl) {
        np->rpos = np->rend = 0;
        r = lp2p__pipe_read(np->raw, np->rbuf, np->rcap, LP2P_NOWAIT);
        if (r == LP2P_ERR_TIMEOUT) lp2p__noise_rbuf_release(np);
    }
    if (r == LP2P_ERR_TIMEOUT) {
        int rc = lp2p__noise_rbuf_room(np, want);
        if (rc) return rc;
        r = lp2p__pipe_read(np->raw, np->rbuf + np->rend, np->rcap - np->rend, deadline);
    }
    if (r < 0) return (int)r;
    if (r == 0) return np->rend == np->rpos ? 0 : (np->err = LP2P_ERR_EOF);
    np->rend += (size_t)r;
    return 1;
}

static ptrdiff_t lp2p__noise_read(lp2p__pipe *p, void *buf, size_t cap, int64_t deadline) {
    lp2p__noise_pipe *np = (lp2p__noise_pipe *)p;
    if (np->err) return np->err;
    if (cap == 0) return LP2P_ERR_INVALID;
    if (np->plen) return lp2p__noise_copy_out(np, buf, cap);
    for (;;) {
        size_t avail = np->rend - np->rpos, want = 2;
        if (avail >= 2) {
            size_t flen = lp2p__be16(np->rbuf + np->rpos);
            if (flen < LP2P__NOISE_TAG) return np->err = LP2P_ERR_PROTOCOL;
            want = 2 + flen;
            if (avail >= want) {
                ptrdiff_t n = lp2p__noise_open_frame(np, flen);
                if (n < 0) return n;
                if (n > 0) return lp2p__noise_copy_out(np, buf, cap);
                if (np->rpos == np->rend) np->rpos = np->rend = 0;
                continue; /* an empty frame: nothing for the caller, read the next one */
            }
        }
        int rc = lp2p__noise_fill(np, want, deadline);
        if (rc <= 0) return rc;
    }
}

/* Seal `total` plaintext bytes, the concatenation of n buffers, as frames of <= 65519 bytes
 * into out, each sealed from the buffers where they lie (lp2p__aead_seal_gather). Returns the
 * sealed length. */
static size_t lp2p__noise_seal_iov(lp2p__noise_pipe *np, const lp2p__iov *iov, int n, uint8_t *out) {
    const uint8_t *seg[LP2P__NOISE_IOV_MAX];
    size_t len[LP2P__NOISE_IOV_MAX], off = 0, used = 0; /* used: bytes of iov[i] already sealed */
    for (int i = 0; i < n;) {
        int k = 0;
        size_t c = 0;
        while (i < n && c < LP2P__NOISE_MAX_PLAINTEXT) {
            size_t take = LP2P__MIN(iov[i].n - used, (size_t)LP2P__NOISE_MAX_PLAINTEXT - c);
            if (take) seg[k] = (const uint8_t *)iov[i].p + used, len[k++] = take, c += take;
            used += take;
            if (used == iov[i].n) i++, used = 0;
        }
        if (!c) break;
        lp2p__put_be16(out + off, (uint16_t)(c + LP2P__NOISE_TAG));
        lp2p__aead_seal_gather(np->k_send, np->n_send++, seg, len, k, out + off + 2);
        off += 2 + c + LP2P__NOISE_TAG;
    }
    return off;
}

/* Up to LP2P__NOISE_WBATCH plaintext bytes from n buffers: sealed into the caller's stack
 * buffer (LP2P__NOISE_WSMALL bytes) if they fit, else a cache buffer, then handed to raw in
 * one write. */
static int lp2p__noise_write_batch(lp2p__noise_pipe *np, const lp2p__iov *iov, int n, size_t total, uint8_t *small,
                                   int64_t deadline) {
    uint8_t *out = small;
    size_t frames = (total + LP2P__NOISE_MAX_PLAINTEXT - 1) / LP2P__NOISE_MAX_PLAINTEXT;
    /* nonce 2^64-1 is reserved (Noise §5.1): the last frame may use 2^64-2 */
    if (frames > UINT64_MAX - np->n_send) return np->werr = LP2P_ERR_LIMIT;
    if (total + frames * (2 + LP2P__NOISE_TAG) > LP2P__NOISE_WSMALL &&
        !(out = (uint8_t *)lp2p__cache_get(np->ctx, LP2P__NOISE_WBUF)))
        return LP2P_ERR_NOMEM;
    size_t off = lp2p__noise_seal_iov(np, iov, n, out);
    int rc = lp2p__pipe_write(np->raw, out, off, deadline);
    if (out != small) lp2p__cache_put(np->ctx, out, LP2P__NOISE_WBUF);
    return rc ? (np->werr = rc) : LP2P_OK; /* an unknown prefix went out: the stream is desynced */
}

static int lp2p__noise_write(lp2p__pipe *p, const void *buf, size_t len, int64_t deadline) {
    lp2p__noise_pipe *np = (lp2p__noise_pipe *)p;
    const uint8_t *src = (const uint8_t *)buf;
    uint8_t small[LP2P__NOISE_WSMALL];
    int rc = LP2P_OK;
    if (np->err) return np->err;
    if (np->werr) return np->werr;
    while (len > 0 && rc == LP2P_OK) {
        size_t batch = LP2P__MIN(len, (size_t)LP2P__NOISE_WBATCH);
        lp2p__iov one = {src, batch};
        rc = lp2p__noise_write_batch(np, &one, 1, batch, small, deadline);
        src += batch, len -= batch;
    }
    return rc;
}

/* The muxer's frame headers and the application's bytes, sealed where they lie: no copy into
 * a staging buffer. Everything is sealed before the one raw write (pipe.h: the owners may
 * reuse the buffers once we can wait), so at most LP2P__NOISE_WBATCH bytes in
 * LP2P__NOISE_IOV_MAX buffers. */
static int lp2p__noise_writev(lp2p__pipe *p, const lp2p__iov *iov, int n, int64_t deadline) {
    lp2p__noise_pipe *np = (lp2p__noise_pipe *)p;
    uint8_t small[LP2P__NOISE_WSMALL];
    size_t total = 0;
    if (np->err) return np->err;
    if (np->werr) return np->werr;
    if (n < 0 || n > LP2P__NOISE_IOV_MAX) return LP2P_ERR_INVALID;
    for (int i = 0; i < n; i++) total += iov[i].n;
    if (total > LP2P__NOISE_WBATCH) return LP2P_ERR_INVALID;
    return total ? lp2p__noise_write_batch(np, iov, n, total, small, deadline) : LP2P_OK;
}

static int lp2p__noise_close_write(lp2p__pipe *p) {
    lp2p__noise_pipe *np = (lp2p__noise_pipe *)p;
    return np->raw->vt->close_write(np->raw);
}

static void lp2p__noise_pipe_free(lp2p__noise_pipe *np) {
    lp2p__noise_wipe(np->k_send, 32);
    lp2p__noise_wipe(np->k_recv, 32);
    lp2p__noise_rbuf_release(np);
    lp2p__free(np->ctx, np, sizeof *np);
}

static void lp2p__noise_reset(lp2p__pipe *p) {
    lp2p__noise_pipe *np = (lp2p__noise_pipe *)p;
    np->raw->vt->reset(np->raw);
    lp2p__noise_pipe_free(np);
}

static void lp2p__noise_close(lp2p__pipe *p) {
    lp2p__noise_pipe *np = (lp2p__noise_pipe *)p;
    np->raw->vt->close(np->raw);
    lp2p__noise_pipe_free(np);
}

static const lp2p__pipe_vt lp2p__noise_vt = {
    lp2p__noise_read,  lp2p__noise_write, lp2p__noise_close_write,
    lp2p__noise_reset, lp2p__noise_close, lp2p__noise_writev,
};

static lp2p__noise_pipe *lp2p__noise_pipe_new(lp2p__ctx *ctx, lp2p__pipe *raw) {
    lp2p__noise_pipe *np = (lp2p__noise_pipe *)lp2p__zalloc(ctx, sizeof *np);
    if (!np) return NULL;
    np->base.vt = &lp2p__noise_vt;
    np->ctx = ctx;
    np->raw = raw;
    np->rbuf = np->rinl, np->rcap = sizeof np->rinl;
    return np;
}

/* ==== 2. the libp2p handshake ================================================================= */

/* ---- the handshake payload protobuf ---- */

typedef struct lp2p__noise_payload {
    const uint8_t *key, *sig;
    size_t key_len, sig_len;
    int n_muxers; /* 0 = no list (absent, empty, or over the cap) */
    bool too_many;
    const uint8_t *muxer[LP2P__NOISE_MAX_REMOTE_MUXERS];
    size_t muxer_len[LP2P__NOISE_MAX_REMOTE_MUXERS];
} lp2p__noise_payload;

/* Protobuf varint (up to 10 bytes). Returns bytes used or 0 if malformed/truncated. */
static size_t lp2p__noise_pb_varint(const uint8_t *p, size_t n, uint64_t *v) {
    *v = 0;
    for (size_t i = 0; i < n && i < 10; i++) {
        *v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) return i + 1;
    }
    return 0;
}

/* One field: its number and wire type; for length-delimited fields val and val_len give the bytes.
 * Returns bytes used or 0 if malformed. */
static size_t lp2p__noise_pb_field(const uint8_t *p, size_t n, uint32_t *field, int *wire, const uint8_t **val,
                                   size_t *val_len) {
    uint64_t tag, v;
    size_t off = lp2p__noise_pb_varint(p, n, &tag), k;
    if (!off || (tag >> 3) == 0 || (tag >> 3) > 0x1fffffff) return 0;
    *field = (uint32_t)(tag >> 3), *wire = (int)(tag & 7);
    *val = NULL, *val_len = 0;
    switch (*wire) {
    case 0: k = lp2p__noise_pb_varint(p + off, n - off, &v); return k ? off + k : 0;
    case 1: return n - off >= 8 ? off + 8 : 0;
    case 5: return n - off >= 4 ? off + 4 : 0;
    case 2:
        k = lp2p__noise_pb_varint(p + off, n - off, &v);
        if (!k || v > n - off - k) return 0;
        *val = p + off + k, *val_len = (size_t)v;
        return off + k + (size_t)v;
    default: return 0; /* groups (3, 4) and reserved wire types */
    }
}

static int lp2p__noise_parse_ext(const uint8_t *p, size_t n, lp2p__noise_payload *pl) {
    while (n > 0) {
        uint32_t f;
        int w;
        const uint8_t *v;
        size_t vl, used = lp2p__noise_pb_field(p, n, &f, &w, &v, &vl);
        if (!used) return LP2P_ERR_PROTOCOL;
        if ((f == 1 || f == 2) && w != 2) return LP2P_ERR_PROTOCOL;
        if (f == 2) { /* stream_muxers; webtransport_certhashes (1) means nothing over TCP */
            if (pl->n_muxers == LP2P__NOISE_MAX_REMOTE_MUXERS) pl->too_many = true;
            else pl->muxer[pl->n_muxers] = v, pl->muxer_len[pl->n_muxers++] = vl;
        }
        p += used, n -= used;
    }
    return LP2P_OK;
}

/* Bounded decode of NoiseHandshakePayload; pointers go into p. Unknown fields are skipped; a
 * repeated bytes field keeps the last value (proto2), repeated extensions merge. */
LP2P__PRIV int lp2p__noise_payload_parse(const uint8_t *p, size_t n, lp2p__noise_payload *pl) {
    memset(pl, 0, sizeof *pl);
    while (n > 0) {
        uint32_t f;
        int w;
        const uint8_t *v;
        size_t vl, used = lp2p__noise_pb_field(p, n, &f, &w, &v, &vl);
        if (!used) return LP2P_ERR_PROTOCOL;
        if ((f == 1 || f == 2 || f == 4) && w != 2) return LP2P_ERR_PROTOCOL;
        if (f == 1) pl->key = v, pl->key_len = vl;
        else if (f == 2) pl->sig = v, pl->sig_len = vl;
        else if (f == 4 && lp2p__noise_parse_ext(v, vl, pl) != LP2P_OK) return LP2P_ERR_PROTOCOL;
        p += used, n -= used;
    }
    if (pl->too_many) pl->n_muxers = 0;
    if (!pl->key || pl->key_len == 0 || pl->key_len > LP2P__PUBKEY_MAX || !pl->sig || pl->sig_len == 0)
        return LP2P_ERR_PROTOCOL;
    return LP2P_OK;
}

static size_t lp2p__noise_pb_put_bytes(uint8_t *out, uint8_t tag, const void *p, size_t n) {
    size_t off = 0;
    out[off++] = tag;
    off += lp2p__uvarint_put(out + off, n);
    memcpy(out + off, p, n);
    return off + n;
}

/* Our payload: identity_key, identity_sig over prefix || static key, extensions.stream_muxers
 * (only when we have muxers; never in msg 1, which has no payload at all). out has
 * LP2P__NOISE_PAYLOAD_MAX bytes; the muxer list was validated by the caller. */
static size_t lp2p__noise_payload_build(const lp2p__identity *self, const uint8_t s_pk[32],
                                        const char *const *muxers, int n_muxers, uint8_t *out) {
    uint8_t msg[sizeof LP2P__NOISE_SIG_PREFIX - 1 + 32], sig[64], ext[LP2P__NOISE_MAX_MUXERS * 66];
    size_t off = 0, elen = 0;
    memcpy(msg, LP2P__NOISE_SIG_PREFIX, sizeof LP2P__NOISE_SIG_PREFIX - 1);
    memcpy(msg + sizeof LP2P__NOISE_SIG_PREFIX - 1, s_pk, 32);
    lp2p__identity_sign(self, msg, sizeof msg, sig);
    off += lp2p__noise_pb_put_bytes(out + off, 0x0a, self->pubkey_pb, sizeof self->pubkey_pb);
    off += lp2p__noise_pb_put_bytes(out + off, 0x12, sig, sizeof sig);
    for (int i = 0; i < n_muxers; i++) elen += lp2p__noise_pb_put_bytes(ext + elen, 0x12, muxers[i], strlen(muxers[i]));
    if (elen) off += lp2p__noise_pb_put_bytes(out + off, 0x22, ext, elen);
    return off;
}

/* ---- the handshake proper ---- */

typedef struct lp2p__noise_run {
    lp2p__ctx *ctx;
    lp2p__pipe *raw;
    lp2p__noise_pipe *np;
    uint8_t *msg; /* LP2P__NOISE_MAX_MSG bytes from the cache: the peer's handshake messages */
    lp2p__noise_hs hs;
    const lp2p__identity *self;
    const lp2p_peer_id *expected;
    const char *const *muxers;
    int n_muxers;
    lp2p__noise_result *res; /* filled as we learn; the caller's copy only on success */
    bool no_common_muxer;
    int64_t deadline;
} lp2p__noise_run;

static int lp2p__noise_send(lp2p__noise_run *r, const uint8_t *payload, size_t n) {
    uint8_t out[2 + LP2P__NOISE_HS_OVERHEAD + LP2P__NOISE_PAYLOAD_MAX];
    ptrdiff_t len = lp2p__noise_hs_write(&r->hs, payload, n, out + 2);
    if (len < 0) return (int)len;
    lp2p__put_be16(out, (uint16_t)len);
    int rc = lp2p__pipe_write(r->raw, out, (size_t)len + 2, r->deadline);
    lp2p__noise_wipe(out, sizeof out);
    return rc;
}

/* Read and process the peer's next message; *payload points into r->msg. */
static ptrdiff_t lp2p__noise_recv(lp2p__noise_run *r, uint8_t **payload) {
    uint8_t hdr[2];
    int rc = lp2p__pipe_read_full(r->raw, hdr, 2, r->deadline);
    if (rc) return rc;
    size_t len = lp2p__be16(hdr), off = 0;
    rc = lp2p__pipe_read_full(r->raw, r->msg, len, r->deadline);
    if (rc) return rc;
    ptrdiff_t n = lp2p__noise_hs_read(&r->hs, r->msg, len, &off);
    if (n >= 0) *payload = r->msg + off;
    return n;
}

static bool lp2p__noise_has_muxer(const lp2p__noise_payload *pl, const char *m) {
    size_t len = strlen(m);
    for (int i = 0; i < pl->n_muxers; i++)
        if (pl->muxer_len[i] == len && memcmp(pl->muxer[i], m, len) == 0) return true;
    return false;
}

/* Early muxer negotiation (connections/inlined-muxer-negotiation.md): the first entry of the
 * INITIATOR's list that both support; no overlap between two lists fails the handshake; no
 * list on either side means "" (negotiate the muxer with multistream-select). */
static void lp2p__noise_pick_muxer(lp2p__noise_run *r, const lp2p__noise_payload *pl) {
    r->res->muxer[0] = '\0';
    if (r->n_muxers == 0 || pl->n_muxers == 0) return;
    if (r->hs.initiator) {
        for (int i = 0; i < r->n_muxers; i++)
            if (lp2p__noise_has_muxer(pl, r->muxers[i])) {
                memcpy(r->res->muxer, r->muxers[i], strlen(r->muxers[i]) + 1);
                return;
            }
    } else {
        for (int i = 0; i < pl->n_muxers; i++)
            for (int j = 0; j < r->n_muxers; j++)
                if (strlen(r->muxers[j]) == pl->muxer_len[i] && memcmp(r->muxers[j], pl->muxer[i], pl->muxer_len[i]) == 0) {
                    memcpy(r->res->muxer, r->muxers[j], pl->muxer_len[i] + 1);
                    return;
                }
    }
    r->no_common_muxer = true;
}

/* Check the peer's payload against the static key it just proved (hs.rs). */
static int lp2p__noise_check_peer(lp2p__noise_run *r, const uint8_t *payload, size_t n) {
    lp2p__noise_payload pl;
    uint8_t msg[sizeof LP2P__NOISE_SIG_PREFIX - 1 + 32];
    int rc = lp2p__noise_payload_parse(payload, n, &pl);
    if (rc) {
        LP2P__WARN(r->ctx, rc, "noise: malformed handshake payload (%zu bytes)", n);
        return rc;
    }
    memcpy(msg, LP2P__NOISE_SIG_PREFIX, sizeof LP2P__NOISE_SIG_PREFIX - 1);
    memcpy(msg + sizeof LP2P__NOISE_SIG_PREFIX - 1, r->hs.rs, 32);
    rc = lp2p__pubkey_verify(pl.key, pl.key_len, msg, sizeof msg, pl.sig, pl.sig_len);
    if (rc) {
        LP2P__WARN(r->ctx, rc, "noise: identity signature over the static key rejected (%s)", lp2p_strerror(rc));
        return rc == LP2P_ERR_PROTOCOL ? rc : LP2P_ERR_HANDSHAKE;
    }
    rc = lp2p__peer_id_from_pubkey(pl.key, pl.key_len, &r->res->remote_id);
    if (rc) return rc == LP2P_ERR_PROTOCOL ? rc : LP2P_ERR_HANDSHAKE;
    if (r->expected && (r->expected->len != r->res->remote_id.len ||
                        memcmp(r->expected->bytes, r->res->remote_id.bytes, r->expected->len) != 0)) {
        LP2P__WARN(r->ctx, LP2P_ERR_HANDSHAKE, "noise: peer ID mismatch (remote key is not the peer we dialed)");
        return LP2P_ERR_HANDSHAKE;
    }
    memcpy(r->res->remote_pubkey, pl.key, pl.key_len);
    r->res->remote_pubkey_len = pl.key_len;
    lp2p__noise_pick_muxer(r, &pl);
    return LP2P_OK;
}

static int lp2p__noise_run_initiator(lp2p__noise_run *r, const uint8_t *ours, size_t ours_len) {
    uint8_t *payload;
    int rc = lp2p__noise_send(r, NULL, 0); /* -> e, no payload (spec: no extensions in msg 1) */
    if (rc) return rc;
    ptrdiff_t n = lp2p__noise_recv(r, &payload); /* <- e, ee, s, es */
    if (n < 0) return (int)n;
    if ((rc = lp2p__noise_check_peer(r, payload, (size_t)n)) != 0) return rc;
    /* -> s, se: sent even without a common muxer, so the responder fails the same way */
    return lp2p__noise_send(r, ours, ours_len);
}

static int lp2p__noise_run_responder(lp2p__noise_run *r, const uint8_t *ours, size_t ours_len) {
    uint8_t *payload;
    ptrdiff_t n = lp2p__noise_recv(r, &payload); /* -> e (a payload, if any, is only hashed) */
    if (n < 0) return (int)n;
    int rc = lp2p__noise_send(r, ours, ours_len); /* <- e, ee, s, es */
    if (rc) return rc;
    n = lp2p__noise_recv(r, &payload); /* -> s, se */
    if (n < 0) return (int)n;
    return lp2p__noise_check_peer(r, payload, (size_t)n);
}

static bool lp2p__noise_muxers_ok(const char *const *muxers, int n) {
    if (n < 0 || n > LP2P__NOISE_MAX_MUXERS || (n > 0 && !muxers)) return false;
    for (int i = 0; i < n; i++) {
        size_t len = muxers[i] ? strlen(muxers[i]) : 0;
        if (len == 0 || len >= sizeof(((lp2p__noise_result *)0)->muxer)) return false;
    }
    return true;
}

LP2P__PRIV int lp2p__noise_handshake(lp2p__ctx *ctx, lp2p__pipe *raw, const lp2p__identity *self, bool initiator,
                                     const lp2p_peer_id *expected, const char *const *muxers, int n_muxers,
                                     lp2p__pipe **out, lp2p__noise_result *res, int64_t deadline) {
    uint8_t keys[2][32], ours[LP2P__NOISE_PAYLOAD_MAX];
    if (!ctx || !raw || !self || !out || !lp2p__noise_muxers_ok(muxers, n_muxers)) return LP2P_ERR_INVALID;
    if (lp2p__crypto_init() != LP2P_OK) return LP2P_ERR_IO;
    lp2p__noise_result *tmp = (lp2p__noise_result *)lp2p__zalloc(ctx, sizeof *tmp);
    lp2p__noise_pipe *np = lp2p__noise_pipe_new(ctx, raw);
    lp2p__noise_run *r = (lp2p__noise_run *)lp2p__zalloc(ctx, sizeof *r);
    int rc = LP2P_ERR_NOMEM;
    if (!tmp || !np || !r || !(r->msg = (uint8_t *)lp2p__cache_get(ctx, LP2P__NOISE_MAX_MSG))) goto done;
    /* the static key is per session (spec: SHOULD NOT be persisted) */
    for (int which = 0; which < 2; which++) {
        if (lp2p__noise_key_hook) lp2p__noise_key_hook(initiator, which, keys[which]);
        else lp2p__random(keys[which], 32);
    }
    lp2p__noise_hs_init(&r->hs, initiator, NULL, 0, keys[0], keys[1]);
    r->ctx = ctx, r->raw = raw, r->np = np, r->self = self, r->expected = expected;
    r->muxers = muxers, r->n_muxers = n_muxers, r->res = tmp, r->deadline = deadline;
    size_t ours_len = lp2p__noise_payload_build(self, r->hs.s_pk, muxers, n_muxers, ours);
    rc = initiator ? lp2p__noise_run_initiator(r, ours, ours_len) : lp2p__noise_run_responder(r, ours, ours_len);
    if (rc == LP2P_OK && r->no_common_muxer) {
        LP2P__WARN(ctx, LP2P_ERR_HANDSHAKE, "noise: no stream muxer in common with the peer");
        rc = LP2P_ERR_HANDSHAKE;
    }
    if (rc == LP2P_OK) {
        lp2p__noise_hs_split(&r->hs, keys[0], keys[1]);
        memcpy(np->k_send, keys[initiator ? 0 : 1], 32);
        memcpy(np->k_recv, keys[initiator ? 1 : 0], 32);
        if (res) *res = *tmp;
        *out = &np->base;
        np = NULL;
    }
done:
    if (np) lp2p__noise_pipe_free(np);
    if (r) lp2p__cache_put(ctx, r->msg, LP2P__NOISE_MAX_MSG);
    if (r) lp2p__noise_wipe(r, sizeof *r), lp2p__free(ctx, r, sizeof *r);
    lp2p__free(ctx, tmp, sizeof *tmp);
    lp2p__noise_wipe(keys, sizeof keys);
    return rc;
}
