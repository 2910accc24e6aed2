/* base.h - L0 internal declarations: allocator, log, clock, buffers, varint, base encodings.
 *
 * Every private name starts with lp2p__. Private functions are declared LP2P__PRIV, which is
 * `static` in the amalgamation; development builds that compile the src/ files one by one define
 * LP2P__PRIV to nothing.
 * Spec: multiformats/unsigned-varint (varints), multiformats/multibase (base58btc, base32). */
#ifndef LP2P__BASE_H
#define LP2P__BASE_H

#include "api.h"
#include <stdarg.h>
#include <string.h>

#ifndef LP2P_ASSERT
#include <assert.h>
#define LP2P_ASSERT(c) assert(c)
#endif

#ifndef LP2P_ENABLE_STDIO
#define LP2P_ENABLE_STDIO 1
#endif

#if defined(__GNUC__) || defined(__clang__)
#define LP2P__PRINTF(a, b) __attribute__((format(printf, a, b)))
#define LP2P__UNUSED __attribute__((unused))
#define LP2P__LIKELY(x) __builtin_expect(!!(x), 1)
#define LP2P__UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define LP2P__PRINTF(a, b)
#define LP2P__UNUSED
#define LP2P__LIKELY(x) (x)
#define LP2P__UNLIKELY(x) (x)
#endif

#ifndef LP2P__PRIV
#define LP2P__PRIV static LP2P__UNUSED
#endif

#define LP2P__MIN(a, b) ((a) < (b) ? (a) : (b))
#define LP2P__MAX(a, b) ((a) > (b) ? (a) : (b))
#define LP2P__COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- buffer cache: big buffers that connections hold only while data is in flight -------- *
 * (yamux write batches, Noise frames). Freed ones are kept for reuse, so a busy connection does
 * not call the allocator per batch; the owner trims the cache periodically so an idle host
 * keeps none. Bounded: LP2P__CACHE_SLOTS buffers and LP2P__CACHE_BYTES in all. */
#define LP2P__CACHE_SLOTS 16
#define LP2P__CACHE_BYTES (4u << 20)
typedef struct lp2p__cache {
    struct {
        void *p;
        size_t n;
        uint32_t round; /* trim round when it was put back */
    } slot[LP2P__CACHE_SLOTS];
    int n;
    size_t bytes;
    uint32_t round;
} lp2p__cache;

/* ---- context: allocator + logger shared by every layer of one host ------------------- */
typedef struct lp2p__ctx {
    lp2p_allocator alloc; /* always both set (defaults resolved) */
    lp2p_logger logger;   /* func may be NULL: silent */
    lp2p_log_level level; /* messages above this level are dropped */
    int in_logger;        /* re-entrancy guard: blocking calls inside the logger fail */
    lp2p__cache *cache;   /* NULL: lp2p__cache_get/put are plain alloc/free */
} lp2p__ctx;

/* Fill ctx from a (possibly zero) allocator/logger/level. */
LP2P__PRIV void lp2p__ctx_init(lp2p__ctx *ctx, const lp2p_allocator *a, const lp2p_logger *l, lp2p_log_level lv);

/* Allocate n bytes (NULL on failure or n == 0 treated as 1). lp2p__zalloc zeroes them.
 * Free with lp2p__free(ctx, p, n) passing the same n. */
LP2P__PRIV void *lp2p__alloc(lp2p__ctx *ctx, size_t n);
LP2P__PRIV void *lp2p__zalloc(lp2p__ctx *ctx, size_t n);
LP2P__PRIV void lp2p__free(lp2p__ctx *ctx, void *p, size_t n);
/* Resize: returns the new pointer or NULL (old block untouched on failure). */
LP2P__PRIV void *lp2p__realloc(lp2p__ctx *ctx, void *p, size_t old_n, size_t new_n);
/* A buffer of exactly n bytes (contents undefined) from ctx->cache, else allocated; give it
 * back with lp2p__cache_put(ctx, p, n). NULL on failure. */
LP2P__PRIV void *lp2p__cache_get(lp2p__ctx *ctx, size_t n);
LP2P__PRIV void lp2p__cache_put(lp2p__ctx *ctx, void *p, size_t n);
/* Free cached buffers not reused since the previous call (call it about once a second). */
LP2P__PRIV void lp2p__cache_trim(lp2p__ctx *ctx);
/* Free every cached buffer (before the cache or the allocator goes away). */
LP2P__PRIV void lp2p__cache_drain(lp2p__ctx *ctx);
/* Duplicate a NUL-terminated string; free with lp2p__strfree. */
LP2P__PRIV char *lp2p__strdup(lp2p__ctx *ctx, const char *s);
LP2P__PRIV void lp2p__strfree(lp2p__ctx *ctx, char *s);

/* Log a printf-style message at a level; item is an LP2P_ERR_* or 0. */
LP2P__PRIV void lp2p__log_at(lp2p__ctx *ctx, lp2p_log_level lv, int item, const char *file, int line,
                             const char *fmt, ...) LP2P__PRINTF(6, 7);
#define lp2p__log(ctx, lv, item, ...)                                                                      \
    do {                                                                                                   \
        if ((ctx) && (int)(lv) <= (int)(ctx)->level) lp2p__log_at((ctx), (lv), (item), __FILE__, __LINE__, __VA_ARGS__); \
    } while (0)
#define LP2P__ERROR(ctx, item, ...) lp2p__log(ctx, LP2P_LOG_ERROR, item, __VA_ARGS__)
#define LP2P__WARN(ctx, item, ...) lp2p__log(ctx, LP2P_LOG_WARN, item, __VA_ARGS__)
#define LP2P__INFO(ctx, ...) lp2p__log(ctx, LP2P_LOG_INFO, 0, __VA_ARGS__)
#define LP2P__DEBUG(ctx, ...) lp2p__log(ctx, LP2P_LOG_DEBUG, 0, __VA_ARGS__)
#define LP2P__TRACE(ctx, ...) lp2p__log(ctx, LP2P_LOG_TRACE, 0, __VA_ARGS__)

/* ---- growable byte buffer ------------------------------------------------------------------ */
typedef struct lp2p__buf {
    uint8_t *p;
    size_t len, cap;
} lp2p__buf;
LP2P__PRIV int lp2p__buf_reserve(lp2p__ctx *ctx, lp2p__buf *b, size_t extra); /* LP2P_OK / ERR_NOMEM */
LP2P__PRIV int lp2p__buf_append(lp2p__ctx *ctx, lp2p__buf *b, const void *p, size_t n);
LP2P__PRIV void lp2p__buf_consume(lp2p__buf *b, size_t n); /* drop n bytes from the front */
LP2P__PRIV void lp2p__buf_free(lp2p__ctx *ctx, lp2p__buf *b);

/* ---- unsigned varint (LEB128, at most 9 bytes / 63 bits, minimal encoding required) -------- */
#define LP2P__UVARINT_MAX 9
/* Encode v (< 2^63) into out; returns the number of bytes (1..9). */
LP2P__PRIV size_t lp2p__uvarint_put(uint8_t *out, uint64_t v);
/* Decode from p[0..n). Returns bytes consumed (> 0), 0 if more bytes are needed, or
 * LP2P_ERR_PROTOCOL if it is longer than 9 bytes or not minimally encoded. */
LP2P__PRIV int lp2p__uvarint_get(const uint8_t *p, size_t n, uint64_t *out);
LP2P__PRIV size_t lp2p__uvarint_len(uint64_t v);

/* ---- big-endian helpers ---------------------------------------------------------------- */
static inline uint16_t lp2p__be16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t lp2p__be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t lp2p__be64(const uint8_t *p) { return ((uint64_t)lp2p__be32(p) << 32) | lp2p__be32(p + 4); }
static inline void lp2p__put_be16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void lp2p__put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline void lp2p__put_be64(uint8_t *p, uint64_t v) { lp2p__put_be32(p, (uint32_t)(v >> 32)); lp2p__put_be32(p + 4, (uint32_t)v); }

/* ---- base encodings (return bytes/chars written, or a negative LP2P_ERR_*) ---------------- */
/* base58btc (Bitcoin alphabet). enc writes a NUL-terminated string; ERR_INVALID if cap too small. */
LP2P__PRIV ptrdiff_t lp2p__base58_enc(const uint8_t *in, size_t n, char *out, size_t cap);
LP2P__PRIV ptrdiff_t lp2p__base58_dec(const char *in, size_t n, uint8_t *out, size_t cap); /* ERR_BADADDR on bad char */
/* RFC 4648 base32, lowercase, no padding (multibase 'b'). dec accepts upper/lowercase. */
LP2P__PRIV ptrdiff_t lp2p__base32_enc(const uint8_t *in, size_t n, char *out, size_t cap);
LP2P__PRIV ptrdiff_t lp2p__base32_dec(const char *in, size_t n, uint8_t *out, size_t cap);
LP2P__PRIV ptrdiff_t lp2p__hex_enc(const uint8_t *in, size_t n, char *out, size_t cap);
LP2P__PRIV ptrdiff_t lp2p__hex_dec(const char *in, size_t n, uint8_t *out, size_t cap);

/* ---- clock ------------------------------------------------------------------------------- */
/* lp2p_now() is public (ms). A monotonic clock in microseconds, for RTTs: */
LP2P__PRIV int64_t lp2p__now_us(void);
/* Deadline helpers: */
/* ms left until deadline for a poll-style timeout: -1 forever, 0 expired/NOWAIT, else >= 1 */
LP2P__PRIV int lp2p__deadline_ms(int64_t deadline);
/* the earlier of two deadlines (LP2P_FOREVER is the latest) */
static inline int64_t lp2p__deadline_min(int64_t a, int64_t b) {
    if (a < 0) return b;
    if (b < 0) return a;
    return a < b ? a : b;
}

#endif
