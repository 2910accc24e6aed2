/* base.c - L0: allocator, logging, clock, errors, buffers, varints.
 *
 * Spec: multiformats/unsigned-varint (minimal encoding, at most 9 bytes as go-varint).
 * Depends on: base.h. */
#include "base.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* ---- errors and version ---- */
LP2P_API const char *lp2p_strerror(int err) {
    switch (err) {
#define LP2P__ERR_CASE(name, value, text) \
    case value: return text;
        LP2P_ERRORS(LP2P__ERR_CASE)
#undef LP2P__ERR_CASE
    default: return "unknown error";
    }
}

LP2P_API const char *lp2p_version(void) { return LIBP2P_VERSION_STRING " " LIBP2P_SOURCE_ID; }

/* ---- clock ---- */
LP2P_API int64_t lp2p_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    /* + 1 so the clock is never 0 (LP2P_NOWAIT) even right after boot */
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + 1;
}

LP2P__PRIV int64_t lp2p__now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

LP2P_API int64_t lp2p_deadline_in(int64_t ms) { return ms < 0 ? LP2P_FOREVER : lp2p_now() + ms; }

LP2P__PRIV int lp2p__deadline_ms(int64_t deadline) {
    if (deadline < 0) return -1;
    int64_t left = deadline - lp2p_now();
    if (left <= 0) return 0;
    return left > 0x3fffffff ? 0x3fffffff : (int)left;
}

/* ---- allocator ---- */
static void *lp2p__default_alloc(size_t size, void *user) {
    (void)user;
    return malloc(size);
}
static void lp2p__default_free(void *p, size_t size, void *user) {
    (void)size, (void)user;
    free(p);
}

#if LP2P_ENABLE_STDIO
static void lp2p__stderr_logger(void *user, lp2p_log_level lv, int item, const char *msg, const char *file, int line) {
    static const char *names[] = {"", "PANIC", "ERROR", "WARN", "INFO", "DEBUG", "TRACE"};
    (void)user, (void)item, (void)file, (void)line;
    fprintf(stderr, "libp2p %s: %s\n", names[(int)lv < 7 ? (int)lv : 6], msg);
}
#endif

LP2P__PRIV void lp2p__ctx_init(lp2p__ctx *ctx, const lp2p_allocator *a, const lp2p_logger *l, lp2p_log_level lv) {
    memset(ctx, 0, sizeof *ctx);
    if (a && a->alloc && a->free) ctx->alloc = *a;
    else ctx->alloc.alloc = lp2p__default_alloc, ctx->alloc.free = lp2p__default_free;
    if (l && l->func) ctx->logger = *l;
#if LP2P_ENABLE_STDIO
    else ctx->logger.func = lp2p__stderr_logger;
#endif
    ctx->level = lv == LP2P_LOG_DEFAULT ? LP2P_LOG_WARN : lv;
}

LP2P__PRIV void *lp2p__alloc(lp2p__ctx *ctx, size_t n) { return ctx->alloc.alloc(n ? n : 1, ctx->alloc.user); }

LP2P__PRIV void *lp2p__zalloc(lp2p__ctx *ctx, size_t n) {
    void *p = lp2p__alloc(ctx, n);
    if (p) memset(p, 0, n ? n : 1);
    return p;
}

LP2P__PRIV void lp2p__free(lp2p__ctx *ctx, void *p, size_t n) {
    if (p) ctx->alloc.free(p, n ? n : 1, ctx->alloc.user);
}

LP2P__PRIV void *lp2p__realloc(lp2p__ctx *ctx, void *p, size_t old_n, size_t new_n) {
    void *q = lp2p__alloc(ctx, new_n);
    if (!q) return NULL;
    if (p) {
        memcpy(q, p, LP2P__MIN(old_n, new_n));
        lp2p__free(ctx, p, old_n);
    }
    return q;
}

/* ---- buffer cache ---- */
LP2P__PRIV void *lp2p__cache_get(lp2p__ctx *ctx, size_t n) {
    lp2p__cache *c = ctx->cache;
    for (int i = c ? c->n - 1 : -1; i >= 0; i--) { /* the most recently returned first: warm */
        if (c->slot[i].n != n) continue;
        void *p = c->slot[i].p;
        c->bytes -= n;
        c->slot[i] = c->slot[--c->n];
        return p;
    }
    return lp2p__alloc(ctx, n);
}

LP2P__PRIV void lp2p__cache_put(lp2p__ctx *ctx, void *p, size_t n) {
    lp2p__cache *c = ctx->cache;
    if (!p) return;
    if (!c || c->n == LP2P__CACHE_SLOTS || c->bytes + n > LP2P__CACHE_BYTES) {
        lp2p__free(ctx, p, n);
        return;
    }
    c->slot[c->n].p = p, c->slot[c->n].n = n, c->slot[c->n].round = c->round;
    c->n++;
    c->bytes += n;
}

LP2P__PRIV void lp2p__cache_trim(lp2p__ctx *ctx) {
    lp2p__cache *c = ctx->cache;
    if (!c) return;
    c->round++;
    for (int i = 0; i < c->n;) {
        if (c->round - c->slot[i].round < 2) { /* put back during the last interval: keep */
            i++;
            continue;
        }
        c->bytes -= c->slot[i].n;
        lp2p__free(ctx, c->slot[i].p, c->slot[i].n);
        c->slot[i] = c->slot[--c->n];
    }
}

LP2P__PRIV void lp2p__cache_drain(lp2p__ctx *ctx) {
    lp2p__cache *c = ctx->cache;
    while (c && c->n) {
        c->n--;
        lp2p__free(ctx, c->slot[c->n].p, c->slot[c->n].n);
    }
    if (c) c->bytes = 0;
}

LP2P__PRIV char *lp2p__strdup(lp2p__ctx *ctx, const char *s) {
    size_t n = strlen(s) + 1;
    char *d = (char *)lp2p__alloc(ctx, n);
    if (d) memcpy(d, s, n);
    return d;
}

LP2P__PRIV void lp2p__strfree(lp2p__ctx *ctx, char *s) {
    if (s) lp2p__free(ctx, s, strlen(s) + 1);
}

/* ---- logging ---- */
LP2P__PRIV void lp2p__log_at(lp2p__ctx *ctx, lp2p_log_level lv, int item, const char *file, int line, const char *fmt,
                             ...) {
    char msg[512];
    va_list ap;
    if (!ctx->logger.func || ctx->in_logger) return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
#ifndef LP2P_DEBUG
    file = NULL, line = 0;
#endif
    ctx->in_logger++;
    ctx->logger.func(ctx->logger.user, lv, item, msg, file, line);
    ctx->in_logger--;
}

/* ---- buffers ---- */
LP2P__PRIV int lp2p__buf_reserve(lp2p__ctx *ctx, lp2p__buf *b, size_t extra) {
    if (b->cap - b->len >= extra) return LP2P_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap - b->len < extra) cap *= 2;
    uint8_t *p = (uint8_t *)lp2p__realloc(ctx, b->p, b->cap, cap);
    if (!p) return LP2P_ERR_NOMEM;
    b->p = p, b->cap = cap;
    return LP2P_OK;
}

LP2P__PRIV int lp2p__buf_append(lp2p__ctx *ctx, lp2p__buf *b, const void *p, size_t n) {
    int rc = lp2p__buf_reserve(ctx, b, n);
    if (rc) return rc;
    if (n) memcpy(b->p + b->len, p, n);
    b->len += n;
    return LP2P_OK;
}

LP2P__PRIV void lp2p__buf_consume(lp2p__buf *b, size_t n) {
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

LP2P__PRIV void lp2p__buf_free(lp2p__ctx *ctx, lp2p__buf *b) {
    lp2p__free(ctx, b->p, b->cap);
    b->p = NULL, b->len = b->cap = 0;
}

/* ---- varints ---- */
LP2P__PRIV size_t lp2p__uvarint_put(uint8_t *out, uint64_t v) {
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

LP2P__PRIV size_t lp2p__uvarint_len(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) v >>= 7, n++;
    return n;
}

LP2P__PRIV int lp2p__uvarint_get(const uint8_t *p, size_t n, uint64_t *out) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (i >= LP2P__UVARINT_MAX) return LP2P_ERR_PROTOCOL;
        v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) {
            /* minimal: the last byte of a multi-byte varint must not be zero */
            if (i > 0 && p[i] == 0) return LP2P_ERR_PROTOCOL;
            *out = v;
            return (int)i + 1;
        }
    }
    return n >= LP2P__UVARINT_MAX ? LP2P_ERR_PROTOCOL : 0;
}
