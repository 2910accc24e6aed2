/* pipe.c - L3: helpers shared by every pipe (exact reads, length-prefixed messages).
 * Depends on: pipe.h. */
#include "pipe.h"

LP2P__PRIV int lp2p__pipe_read_full(lp2p__pipe *p, void *buf, size_t len, int64_t deadline) {
    uint8_t *b = (uint8_t *)buf;
    while (len > 0) {
        ptrdiff_t n = lp2p__pipe_read(p, b, len, deadline);
        if (n < 0) return (int)n;
        if (n == 0) return LP2P_ERR_EOF;
        b += n, len -= (size_t)n;
    }
    return LP2P_OK;
}

LP2P__PRIV ptrdiff_t lp2p__pipe_read_msg(lp2p__pipe *p, void *buf, size_t cap, int *clean_eof, int64_t deadline) {
    uint8_t hdr[LP2P__UVARINT_MAX];
    uint64_t len = 0;
    size_t n = 0;
    if (clean_eof) *clean_eof = 0;
    for (;;) {
        ptrdiff_t r = lp2p__pipe_read(p, hdr + n, 1, deadline);
        if (r < 0) return r;
        if (r == 0) {
            if (n == 0 && clean_eof) *clean_eof = 1;
            return LP2P_ERR_EOF;
        }
        n++;
        int k = lp2p__uvarint_get(hdr, n, &len);
        if (k < 0) return LP2P_ERR_PROTOCOL;
        if (k > 0) break;
    }
    if (len > cap) return LP2P_ERR_MSGSIZE;
    int rc = lp2p__pipe_read_full(p, buf, (size_t)len, deadline);
    return rc < 0 ? rc : (ptrdiff_t)len;
}

LP2P__PRIV int lp2p__pipe_write_msg(lp2p__ctx *ctx, lp2p__pipe *p, const void *buf, size_t len, int64_t deadline) {
    uint8_t small[512];
    size_t h = lp2p__uvarint_len(len), total = h + len;
    uint8_t *out = total <= sizeof small ? small : (uint8_t *)lp2p__alloc(ctx, total);
    if (!out) return LP2P_ERR_NOMEM;
    lp2p__uvarint_put(out, len);
    if (len) memcpy(out + h, buf, len);
    int rc = lp2p__pipe_write(p, out, total, deadline);
    if (out != small) lp2p__free(ctx, out, total);
    return rc;
}
