/* mss.c - L4: multistream-select 1.0 (dialer, lazy dialer, listener) over any pipe.
 *
 * Spec: multiformats/multistream-select README.md; libp2p/specs connections/README.md.
 * Wire: every message is uvarint(len) || text || '\n' with len counting the '\n'. We accept
 * at most LP2P__MSS_MAX (1024) bytes per message, the limit of go-multistream, and reject
 * messages that do not end in '\n'. Messages are read byte-exact (varint byte by byte, then
 * exactly len bytes), so whatever the peer pipelined after the negotiation - rust's first
 * Noise message, go's lazy stream data - stays in the pipe for the next layer.
 * "ls" answer (format of go-multistream and rust multistream-select): one message whose body
 * is, per protocol, uvarint(len(proto) + 1) || proto || '\n', followed by a final '\n'.
 * Depends on: mss.h (pipe.h, base.h). */
#include "mss.h"

#define LP2P__MSS_HDR_LEN 19 /* strlen("/multistream/1.0.0\n") */
#define LP2P__MSS_MAX_ROUNDS 64 /* proposals a listener answers before giving up */
#define LP2P__MSS_LS_MAX 64     /* protocols listed in an "ls" answer */

/* Append one message (uvarint(len + 1) || s || '\n') to out at *off; out has room for
 * LP2P__UVARINT_MAX + LP2P__MSS_MAX bytes from *off (callers check len < LP2P__MSS_MAX). */
static void lp2p__mss_put(uint8_t *out, size_t *off, const char *s, size_t len) {
    *off += lp2p__uvarint_put(out + *off, len + 1);
    memcpy(out + *off, s, len);
    *off += len;
    out[(*off)++] = '\n';
}

/* A protocol ID we may send: non-empty, fits one message, no '\n' (it would end the line). */
static bool lp2p__mss_valid_proto(const char *proto) {
    size_t n = proto ? strlen(proto) : 0;
    return n > 0 && n < LP2P__MSS_MAX && !memchr(proto, '\n', n);
}

/* Read one message into buf (cap LP2P__MSS_MAX + 1); strip the '\n' and NUL-terminate.
 * Returns the text length, ERR_PROTOCOL (too long, empty, no '\n', bad varint), ERR_EOF or
 * the pipe's error. */
static ptrdiff_t lp2p__mss_read(lp2p__pipe *p, char *buf, int64_t deadline) {
    ptrdiff_t n = lp2p__pipe_read_msg(p, buf, LP2P__MSS_MAX, NULL, deadline);
    if (n == LP2P_ERR_MSGSIZE) return LP2P_ERR_PROTOCOL;
    if (n < 0) return n;
    if (n == 0 || buf[n - 1] != '\n') return LP2P_ERR_PROTOCOL;
    buf[n - 1] = '\0';
    return n - 1;
}

static bool lp2p__mss_is(const char *msg, ptrdiff_t len, const char *want) {
    return (size_t)len == strlen(want) && memcmp(msg, want, (size_t)len) == 0;
}

/* Read the peer's header; anything else first aborts the negotiation (spec). */
static int lp2p__mss_expect_header(lp2p__pipe *p, char *buf, int64_t deadline) {
    ptrdiff_t n = lp2p__mss_read(p, buf, deadline);
    if (n < 0) return (int)n;
    return lp2p__mss_is(buf, n, LP2P__MSS_PROTO) ? LP2P_OK : LP2P_ERR_PROTOCOL;
}

/* Write the header (if with_header) and the proposal proto in one pipe write. */
static int lp2p__mss_propose(lp2p__pipe *p, bool with_header, const char *proto, int64_t deadline) {
    uint8_t out[2 * (LP2P__UVARINT_MAX + LP2P__MSS_MAX)];
    size_t off = 0;
    if (with_header) lp2p__mss_put(out, &off, LP2P__MSS_PROTO, LP2P__MSS_HDR_LEN - 1);
    lp2p__mss_put(out, &off, proto, strlen(proto));
    return lp2p__pipe_write(p, out, off, deadline);
}

/* Read the answer to proposal proto: OK (echoed), ERR_PROTO_NA ("na"), ERR_PROTOCOL. */
static int lp2p__mss_answer(lp2p__pipe *p, const char *proto, char *buf, int64_t deadline) {
    ptrdiff_t n = lp2p__mss_read(p, buf, deadline);
    if (n < 0) return (int)n;
    if (lp2p__mss_is(buf, n, proto)) return LP2P_OK;
    if (lp2p__mss_is(buf, n, "na")) return LP2P_ERR_PROTO_NA;
    return LP2P_ERR_PROTOCOL;
}

LP2P__PRIV int lp2p__mss_select(lp2p__pipe *p, const char *const *protocols, int n, int64_t deadline) {
    char buf[LP2P__MSS_MAX + 1];
    if (n <= 0) return LP2P_ERR_INVALID;
    for (int i = 0; i < n; i++)
        if (!lp2p__mss_valid_proto(protocols[i])) return LP2P_ERR_INVALID;
    /* header + first proposal in one write: one segment, and no wait for the peer's header
     * (both sides may send it at once) */
    int rc = lp2p__mss_propose(p, true, protocols[0], deadline);
    if (rc) return rc;
    rc = lp2p__mss_expect_header(p, buf, deadline);
    if (rc) return rc;
    for (int i = 0;; i++) {
        if (i > 0 && (rc = lp2p__mss_propose(p, false, protocols[i], deadline)) != 0) return rc;
        rc = lp2p__mss_answer(p, protocols[i], buf, deadline);
        if (rc == LP2P_OK) return i;
        if (rc != LP2P_ERR_PROTO_NA || i + 1 == n) return rc;
    }
}

/* ---- listener ---- */

/* Answer "ls": one message holding a length-prefixed line per protocol and a final '\n'.
 * Protocols that do not fit in LP2P__MSS_MAX bytes are left out. */
static int lp2p__mss_send_ls(lp2p__pipe *p, lp2p__mss_list_fn list, void *user, int64_t deadline) {
    const char *protos[LP2P__MSS_LS_MAX];
    uint8_t body[LP2P__MSS_MAX], out[LP2P__UVARINT_MAX + LP2P__MSS_MAX];
    size_t blen = 0;
    int n = list(user, protos, LP2P__MSS_LS_MAX);
    for (int i = 0; i < LP2P__MIN(n, LP2P__MSS_LS_MAX); i++) {
        if (!lp2p__mss_valid_proto(protos[i])) continue;
        size_t len = strlen(protos[i]);
        if (blen + lp2p__uvarint_len(len + 1) + len + 1 + 1 > sizeof body) continue;
        lp2p__mss_put(body, &blen, protos[i], len);
    }
    body[blen++] = '\n';
    size_t off = lp2p__uvarint_put(out, blen);
    memcpy(out + off, body, blen);
    return lp2p__pipe_write(p, out, off + blen, deadline);
}

static int lp2p__mss_send_na(lp2p__pipe *p, int64_t deadline) {
    static const uint8_t na[] = {3, 'n', 'a', '\n'};
    return lp2p__pipe_write(p, na, sizeof na, deadline);
}

LP2P__PRIV int lp2p__mss_handle(lp2p__pipe *p, lp2p__mss_match_fn match, lp2p__mss_list_fn list, void *user,
                                char *out, size_t out_cap, int64_t deadline) {
    char buf[LP2P__MSS_MAX + 1];
    static const uint8_t hdr[] = "\x13/multistream/1.0.0\n";
    if (!match || !out || out_cap < LP2P__MSS_MAX) return LP2P_ERR_INVALID;
    /* our header goes out at once, so a dialer that waits for it before proposing (strict
     * ping-pong) and one that pipelines (go, rust, js) both proceed */
    int rc = lp2p__pipe_write(p, hdr, sizeof hdr - 1, deadline);
    if (rc) return rc;
    rc = lp2p__mss_expect_header(p, buf, deadline);
    if (rc) return rc;
    for (int round = 0; round < LP2P__MSS_MAX_ROUNDS; round++) {
        ptrdiff_t n = lp2p__mss_read(p, buf, deadline);
        if (n < 0) return (int)n;
        if (list && lp2p__mss_is(buf, n, "ls")) {
            rc = lp2p__mss_send_ls(p, list, user, deadline);
        } else if (!memchr(buf, '\0', (size_t)n) && buf[0] != '\0' && match(user, buf)) {
            /* echo exactly what was proposed */
            uint8_t echo[LP2P__UVARINT_MAX + LP2P__MSS_MAX];
            size_t off = 0;
            lp2p__mss_put(echo, &off, buf, (size_t)n);
            rc = lp2p__pipe_write(p, echo, off, deadline);
            if (rc) return rc;
            memcpy(out, buf, (size_t)n + 1);
            return LP2P_OK;
        } else {
            /* unknown protocol, a NUL inside, or "ls" without a list (go answers "na" too) */
            rc = lp2p__mss_send_na(p, deadline);
        }
        if (rc) return rc;
    }
    return LP2P_ERR_PROTOCOL;
}

/* ---- lazy dialer (rust's V1Lazy, go's lazy client streams) ---- */

typedef struct lp2p__mss_lazy_pipe {
    lp2p__pipe base;
    lp2p__ctx *ctx;
    lp2p__pipe *inner;
    int err;      /* sticky: ERR_PROTO_NA / ERR_PROTOCOL / pipe error of the negotiation */
    bool sent;    /* header + proposal handed to the inner pipe */
    bool checked; /* header + echo read and verified */
    size_t plen;
    char *proto; /* NUL-terminated proposal, stored right after the struct */
} lp2p__mss_lazy_pipe;

/* First chunk of user data that rides with header + proposal; larger first writes send the
 * rest straight from the caller's buffer. */
#define LP2P__MSS_LAZY_CHUNK 65536

static int lp2p__mss_lazy_send(lp2p__mss_lazy_pipe *lz, const uint8_t *data, size_t len, int64_t deadline) {
    size_t first = LP2P__MIN(len, (size_t)LP2P__MSS_LAZY_CHUNK);
    size_t cap = 2 * (LP2P__UVARINT_MAX + LP2P__MSS_MAX) + first;
    uint8_t *out = (uint8_t *)lp2p__alloc(lz->ctx, cap);
    size_t off = 0;
    if (!out) return LP2P_ERR_NOMEM;
    lp2p__mss_put(out, &off, LP2P__MSS_PROTO, LP2P__MSS_HDR_LEN - 1);
    lp2p__mss_put(out, &off, lz->proto, lz->plen);
    if (first) memcpy(out + off, data, first);
    lz->sent = true; /* before the write: a concurrent reader must not send them again */
    int rc = lp2p__pipe_write(lz->inner, out, off + first, deadline);
    lp2p__free(lz->ctx, out, cap);
    if (rc == LP2P_OK && len > first) rc = lp2p__pipe_write(lz->inner, data + first, len - first, deadline);
    if (rc) lz->err = rc;
    return rc;
}

static int lp2p__mss_lazy_check(lp2p__mss_lazy_pipe *lz, int64_t deadline) {
    char buf[LP2P__MSS_MAX + 1];
    int rc = lp2p__mss_expect_header(lz->inner, buf, deadline);
    if (rc == LP2P_OK) rc = lp2p__mss_answer(lz->inner, lz->proto, buf, deadline);
    /* a timeout or cancel leaves the negotiation half-read: the stream is unusable anyway */
    if (rc) lz->err = rc;
    else lz->checked = true;
    return rc;
}

static ptrdiff_t lp2p__mss_lazy_read(lp2p__pipe *p, void *buf, size_t cap, int64_t deadline) {
    lp2p__mss_lazy_pipe *lz = (lp2p__mss_lazy_pipe *)p;
    if (lz->err) return lz->err;
    if (!lz->checked) {
        if (!lz->sent) {
            int rc = lp2p__mss_lazy_send(lz, NULL, 0, deadline);
            if (rc) return rc;
        }
        int rc = lp2p__mss_lazy_check(lz, deadline);
        if (rc) return rc;
    }
    return lp2p__pipe_read(lz->inner, buf, cap, deadline);
}

static int lp2p__mss_lazy_write(lp2p__pipe *p, const void *buf, size_t len, int64_t deadline) {
    lp2p__mss_lazy_pipe *lz = (lp2p__mss_lazy_pipe *)p;
    if (lz->err) return lz->err;
    if (!lz->sent) return lp2p__mss_lazy_send(lz, (const uint8_t *)buf, len, deadline);
    return lp2p__pipe_write(lz->inner, buf, len, deadline);
}

static int lp2p__mss_lazy_close_write(lp2p__pipe *p) {
    lp2p__mss_lazy_pipe *lz = (lp2p__mss_lazy_pipe *)p;
    /* nothing written yet: the peer still needs the proposal to see which protocol ended */
    if (!lz->sent && !lz->err) {
        int rc = lp2p__mss_lazy_send(lz, NULL, 0, lp2p_deadline_in(5000));
        if (rc) return rc;
    }
    return lz->inner->vt->close_write(lz->inner);
}

static void lp2p__mss_lazy_free(lp2p__mss_lazy_pipe *lz) {
    lp2p__free(lz->ctx, lz, sizeof *lz + lz->plen + 1);
}

static void lp2p__mss_lazy_reset(lp2p__pipe *p) {
    lp2p__mss_lazy_pipe *lz = (lp2p__mss_lazy_pipe *)p;
    lz->inner->vt->reset(lz->inner);
    lp2p__mss_lazy_free(lz);
}

static void lp2p__mss_lazy_close(lp2p__pipe *p) {
    lp2p__mss_lazy_pipe *lz = (lp2p__mss_lazy_pipe *)p;
    lz->inner->vt->close(lz->inner);
    lp2p__mss_lazy_free(lz);
}

static const lp2p__pipe_vt lp2p__mss_lazy_vt = {
    lp2p__mss_lazy_read,  lp2p__mss_lazy_write, lp2p__mss_lazy_close_write,
    lp2p__mss_lazy_reset, lp2p__mss_lazy_close, NULL,
};

LP2P__PRIV int lp2p__mss_lazy(lp2p__ctx *ctx, lp2p__pipe *p, const char *protocol, lp2p__pipe **out) {
    if (!lp2p__mss_valid_proto(protocol)) return LP2P_ERR_INVALID;
    size_t plen = strlen(protocol);
    lp2p__mss_lazy_pipe *lz = (lp2p__mss_lazy_pipe *)lp2p__zalloc(ctx, sizeof *lz + plen + 1);
    if (!lz) return LP2P_ERR_NOMEM;
    lz->base.vt = &lp2p__mss_lazy_vt;
    lz->ctx = ctx;
    lz->inner = p;
    lz->plen = plen;
    lz->proto = (char *)(lz + 1);
    memcpy(lz->proto, protocol, plen + 1);
    *out = &lz->base;
    return LP2P_OK;
}
