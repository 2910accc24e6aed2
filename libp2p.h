/*==================== begin src/doc.h ====================*/
/* libp2p.h - v0.1.0 - libp2p in one C header (TCP, Noise, yamux, identify, ping)
   (full documentation: see below; this block is filled in as the library grows) */
/* The implementation needs POSIX/GNU declarations (clock_gettime, epoll, mmap, getaddrinfo)
 * even under -std=c11: include libp2p.h first in the implementation file, or build with
 * -D_GNU_SOURCE. */
#if defined(LIBP2P_IMPLEMENTATION) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE 1
#endif
/*==================== end src/doc.h ====================*/
#ifndef LIBP2P_SOURCE_ID
#define LIBP2P_SOURCE_ID "src-2eb2897421502ce8"
#endif
/*==================== begin src/api.h ====================*/
/* api.h - the public surface of libp2p.h (everything a user calls).
 *
 * Part of the amalgamation: this file becomes the declaration half of libp2p.h.
 * Depends on: nothing but the C standard headers below.
 * Conventions: functions return LP2P_OK (0) or a negative LP2P_ERR_*; sizes are
 * ptrdiff_t (>= 0 on success); out-params are written only on success. Every call
 * that can wait takes an absolute deadline in milliseconds of lp2p_now() as its last
 * argument (LP2P_FOREVER waits forever, LP2P_NOWAIT tries once). */
#ifndef LIBP2P_API_H_INCLUDED
#define LIBP2P_API_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define LIBP2P_VERSION_MAJOR 0
#define LIBP2P_VERSION_MINOR 1
#define LIBP2P_VERSION_PATCH 0
#define LIBP2P_VERSION_NUMBER (LIBP2P_VERSION_MAJOR * 1000000 + LIBP2P_VERSION_MINOR * 1000 + LIBP2P_VERSION_PATCH)
#define LIBP2P_VERSION_STRING "0.1.0"
#ifndef LIBP2P_SOURCE_ID
#define LIBP2P_SOURCE_ID "development"
#endif

#ifndef LP2P_API
#if defined(LIBP2P_STATIC)
#define LP2P_API static
#elif defined(LIBP2P_DLL) && defined(_WIN32)
#if defined(LIBP2P_IMPLEMENTATION)
#define LP2P_API __declspec(dllexport)
#else
#define LP2P_API __declspec(dllimport)
#endif
#else
#define LP2P_API extern
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- opaque objects and value types ---------------------------------------------- */
typedef struct lp2p_host lp2p_host;     /* one per network identity; single-threaded */
typedef struct lp2p_stream lp2p_stream; /* owned by the app until lp2p_stream_close/reset */
typedef struct lp2p_task { uint32_t id; } lp2p_task; /* generation-counted handle; 0 = none */

/* A peer ID: the binary multihash of the peer's public key (identity multihash for
 * keys whose protobuf encoding is <= 42 bytes, else sha2-256). Spec: peer-ids/peer-ids.md */
typedef struct lp2p_peer_id { uint8_t len; uint8_t bytes[63]; } lp2p_peer_id;
#define LP2P_PEER_ID_STRLEN 128 /* enough for base58btc and CIDv1 base32 text, with NUL */
#define LP2P_FOREVER ((int64_t)-1)
#define LP2P_NOWAIT ((int64_t)0)

/* ---- errors: one table generates the enum and lp2p_strerror() -------------------- */
#define LP2P_ERRORS(X)                                                                   \
    X(OK, 0, "ok")                                                                       \
    X(ERR_TIMEOUT, -1, "deadline expired")                                               \
    X(ERR_CANCELED, -2, "task canceled or host shutting down")                           \
    X(ERR_CLOSED, -3, "closed locally")                                                  \
    X(ERR_RESET, -4, "reset by remote peer")                                             \
    X(ERR_EOF, -5, "unexpected end of stream")                                           \
    X(ERR_NOMEM, -6, "out of memory")                                                    \
    X(ERR_INVALID, -7, "invalid argument")                                               \
    X(ERR_BADADDR, -8, "malformed multiaddr or peer ID")                                 \
    X(ERR_NOADDR, -9, "no known address for peer (pass .../p2p/<id>)")                   \
    X(ERR_UNREACHABLE, -10, "all dials failed")                                          \
    X(ERR_HANDSHAKE, -11, "security handshake failed or peer ID mismatch")               \
    X(ERR_PROTO_NA, -12, "peer does not speak this protocol")                            \
    X(ERR_PROTOCOL, -13, "peer violated the protocol")                                   \
    X(ERR_LIMIT, -14, "configured limit reached (the log names it)")                     \
    X(ERR_MSGSIZE, -15, "message too large")                                             \
    X(ERR_BUSY, -16, "another task is reading or writing this stream")                   \
    X(ERR_NOTFOUND, -17, "not found")                                                    \
    X(ERR_WOULDBLOCK, -18, "blocking call not allowed here")                             \
    X(ERR_UNSUPPORTED, -19, "not supported or compiled out")                             \
    X(ERR_IO, -20, "operating system error")

typedef enum lp2p_err {
#define LP2P__ERR_ENUM(name, value, text) LP2P_##name = value,
    LP2P_ERRORS(LP2P__ERR_ENUM)
#undef LP2P__ERR_ENUM
    LP2P_ERR__LAST = -21
} lp2p_err;

/* Describe an error code. Returns a static string; unknown codes give "unknown error". */
LP2P_API const char *lp2p_strerror(int err);
/* The version string of the implementation TU ("0.1.0 <source id>"), static. */
LP2P_API const char *lp2p_version(void);
/* Monotonic clock in milliseconds, always > 0. Thread-safe. */
LP2P_API int64_t lp2p_now(void);
/* An absolute deadline ms milliseconds from now; ms < 0 gives LP2P_FOREVER. Thread-safe. */
LP2P_API int64_t lp2p_deadline_in(int64_t ms);

/* ---- memory and logging hooks (runtime fields of the config, per host) ------------ */
typedef struct lp2p_allocator {
    void *(*alloc)(size_t size, void *user);          /* NULL on failure */
    void (*free)(void *ptr, size_t size, void *user); /* size = the size asked for */
    void *user;
} lp2p_allocator; /* both or neither; zero = malloc/free */

typedef enum lp2p_log_level {
    LP2P_LOG_DEFAULT = 0, /* in a config: WARN */
    LP2P_LOG_PANIC,
    LP2P_LOG_ERROR,
    LP2P_LOG_WARN,
    LP2P_LOG_INFO,
    LP2P_LOG_DEBUG,
    LP2P_LOG_TRACE
} lp2p_log_level;

/* item is an LP2P_ERR_* code (or 0) describing the message; msg is NUL-terminated and
 * valid only during the call; file is NULL unless built with LP2P_DEBUG. */
typedef struct lp2p_logger {
    void (*func)(void *user, lp2p_log_level level, int item, const char *msg, const char *file, int line);
    void *user;
} lp2p_logger;

/* ---- config: zero-initialised is valid; every zero field means "default" ---------- */
#define LP2P_MAX_LISTEN_ADDRS 8
typedef struct lp2p_config {
    uint8_t identity_seed[32];            /* all zero -> fresh random Ed25519 identity */
    bool use_identity_seed;               /* true -> use identity_seed even if all zero */
    const char *listen_addrs[LP2P_MAX_LISTEN_ADDRS]; /* {NULL} -> "/ip4/127.0.0.1/tcp/0"; copied */
    bool no_listen;                       /* dial-only client */
    int max_connections;                  /* 0 -> 256 */
    int max_streams_per_conn;             /* 0 -> 1024 inbound streams per connection */
    int max_pending_dials;                /* 0 -> 64 outbound dials in flight */
    int max_stream_buffer;                /* 0 -> 16 MiB: receive window ceiling per stream, bytes */
    int stream_window;                    /* 0 -> 256 KiB initial yamux receive window, bytes */
    int idle_timeout_ms;                  /* 0 -> never close idle connections */
    int keepalive_ms;                     /* 0 -> 15000 ms ping on idle connections; < 0 disables */
    int handshake_timeout_ms;             /* 0 -> 10000 ms for inbound upgrades */
    int stack_size;                       /* 0 -> 64 KiB per task (lazily committed) + guard page */
    int max_tasks;                        /* 0 -> 65536 */
    int event_queue_size;                 /* 0 -> 256; oldest dropped with a WARN when full */
    const char *agent_version;            /* NULL -> "libp2p.h/" LIBP2P_VERSION_STRING */
    bool disable_ping_service;            /* do not answer /ipfs/ping/1.0.0 */
    lp2p_allocator allocator;
    lp2p_logger logger;                   /* zero -> stderr logger (if LP2P_ENABLE_STDIO) */
    lp2p_log_level log_level;             /* LP2P_LOG_DEFAULT -> WARN */
} lp2p_config;

/* ---- host lifecycle and driving ------------------------------------------------------ */
LP2P_API int lp2p_host_new(const lp2p_config *cfg, lp2p_host **out);
LP2P_API void lp2p_host_free(lp2p_host *h);
LP2P_API int lp2p_host_poll(lp2p_host *h, int timeout_ms);
LP2P_API int lp2p_host_run(lp2p_host *h);
LP2P_API void lp2p_host_stop(lp2p_host *h);
LP2P_API int lp2p_host_post(lp2p_host *h, void (*fn)(void *arg), void *arg);
LP2P_API lp2p_peer_id lp2p_host_id(const lp2p_host *h);
LP2P_API int lp2p_host_addr_count(const lp2p_host *h);
LP2P_API const char *lp2p_host_addr(const lp2p_host *h, int i);

/* ---- events for frame-loop code ------------------------------------------------------- */
typedef enum lp2p_event_type {
    LP2P_EVENT_NONE = 0,
    LP2P_EVENT_LISTEN,
    LP2P_EVENT_PEER_CONNECTED,
    LP2P_EVENT_PEER_DISCONNECTED,
    LP2P_EVENT_DIAL_FAILED,
    LP2P_EVENT_PEER_IDENTIFIED,
    LP2P_EVENT_STREAM
} lp2p_event_type;

typedef struct lp2p_event {
    lp2p_event_type type;
    lp2p_peer_id peer;
    const char *addr;     /* multiaddr text, or NULL */
    const char *protocol; /* EVENT_STREAM: the negotiated protocol */
    lp2p_stream *stream;  /* EVENT_STREAM: the app now owns it */
    int err;              /* DIAL_FAILED / PEER_DISCONNECTED: the reason */
} lp2p_event;
LP2P_API bool lp2p_host_next_event(lp2p_host *h, lp2p_event *ev);

/* ---- protocols: handlers are task entry points --------------------------------------- */
typedef void (*lp2p_handler_fn)(lp2p_stream *s, void *user);
LP2P_API int lp2p_host_handle(lp2p_host *h, const char *protocol, lp2p_handler_fn fn, void *user);
LP2P_API int lp2p_host_unhandle(lp2p_host *h, const char *protocol);

/* ---- connecting ------------------------------------------------------------------------ */
LP2P_API int lp2p_host_connect(lp2p_host *h, const char *peer_or_addr, int64_t deadline);
LP2P_API int lp2p_host_connect_async(lp2p_host *h, const char *peer_or_addr);
LP2P_API int lp2p_host_disconnect(lp2p_host *h, const lp2p_peer_id *peer);
LP2P_API int lp2p_host_add_addr(lp2p_host *h, const char *addr_with_p2p, int64_t ttl_ms);
LP2P_API int lp2p_host_is_connected(lp2p_host *h, const lp2p_peer_id *peer);
LP2P_API int lp2p_ping(lp2p_host *h, const char *peer_or_addr, int64_t deadline);

/* ---- streams ------------------------------------------------------------------------- */
LP2P_API int lp2p_stream_open(lp2p_host *h, const char *peer_or_addr, const char *protocol, int64_t deadline,
                              lp2p_stream **out);
LP2P_API ptrdiff_t lp2p_stream_read(lp2p_stream *s, void *buf, size_t cap, int64_t deadline);
LP2P_API int lp2p_stream_read_full(lp2p_stream *s, void *buf, size_t len, int64_t deadline);
LP2P_API int lp2p_stream_write(lp2p_stream *s, const void *buf, size_t len, int64_t deadline);
LP2P_API ptrdiff_t lp2p_stream_read_msg(lp2p_stream *s, void *buf, size_t cap, int64_t deadline);
LP2P_API int lp2p_stream_write_msg(lp2p_stream *s, const void *buf, size_t len, int64_t deadline);
LP2P_API int lp2p_stream_close_write(lp2p_stream *s);
LP2P_API void lp2p_stream_close(lp2p_stream *s);
LP2P_API void lp2p_stream_reset(lp2p_stream *s);
LP2P_API const char *lp2p_stream_protocol(const lp2p_stream *s);
LP2P_API lp2p_peer_id lp2p_stream_peer(const lp2p_stream *s);
LP2P_API lp2p_host *lp2p_stream_host(const lp2p_stream *s);

/* ---- tasks (stackful coroutines on the host's scheduler) -------------------------------- */
typedef void (*lp2p_task_fn)(void *arg);
LP2P_API lp2p_task lp2p_go(lp2p_host *h, lp2p_task_fn fn, void *arg);
LP2P_API int lp2p_task_cancel(lp2p_host *h, lp2p_task t);
LP2P_API int lp2p_task_join(lp2p_host *h, lp2p_task t, int64_t deadline);
LP2P_API bool lp2p_task_alive(lp2p_host *h, lp2p_task t);
LP2P_API int lp2p_sleep(lp2p_host *h, int64_t deadline);
LP2P_API int lp2p_yield(lp2p_host *h);

/* ---- peer IDs and identity ---------------------------------------------------------------- */
LP2P_API int lp2p_peer_id_parse(const char *str, lp2p_peer_id *out);
LP2P_API int lp2p_peer_id_str(const lp2p_peer_id *id, char *buf, size_t cap);
LP2P_API bool lp2p_peer_id_eq(const lp2p_peer_id *a, const lp2p_peer_id *b);
LP2P_API int lp2p_identity_generate(uint8_t seed_out[32]);

#ifdef __cplusplus
}
#endif
#endif /* LIBP2P_API_H_INCLUDED */
/*==================== end src/api.h ====================*/
#if defined(LIBP2P_IMPLEMENTATION) && !defined(LIBP2P_IMPLEMENTATION_INCLUDED)
#define LIBP2P_IMPLEMENTATION_INCLUDED
/*==================== begin src/base.h ====================*/
/* base.h - L0 internal declarations: allocator, log, clock, buffers, varint, base encodings.
 *
 * Every private name starts with lp2p__. Private functions are declared LP2P__PRIV, which is
 * `static` in the amalgamation; development builds that compile src/*.c one by one define
 * LP2P__PRIV to nothing.
 * Spec: multiformats/unsigned-varint (varints), multiformats/multibase (base58btc, base32). */
#ifndef LP2P__BASE_H
#define LP2P__BASE_H

/* #include "api.h" (amalgamated) */
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

/* ---- context: allocator + logger shared by every layer of one host ------------------- */
typedef struct lp2p__ctx {
    lp2p_allocator alloc; /* always both set (defaults resolved) */
    lp2p_logger logger;   /* func may be NULL: silent */
    lp2p_log_level level; /* messages above this level are dropped */
    int in_logger;        /* re-entrancy guard: blocking calls inside the logger fail */
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
/* lp2p_now() is public. Deadline helpers: */
/* ms left until deadline for a poll-style timeout: -1 forever, 0 expired/NOWAIT, else >= 1 */
LP2P__PRIV int lp2p__deadline_ms(int64_t deadline);
/* the earlier of two deadlines (LP2P_FOREVER is the latest) */
static inline int64_t lp2p__deadline_min(int64_t a, int64_t b) {
    if (a < 0) return b;
    if (b < 0) return a;
    return a < b ? a : b;
}

#endif
/*==================== end src/base.h ====================*/
/*==================== begin src/crypto.h ====================*/
/* crypto.h - L1: the thin internal crypto interface (libsodium + BearSSL [+ libsecp256k1]).
 *
 * libsodium: Ed25519, X25519, ChaCha20-Poly1305 (IETF), CSPRNG.
 * BearSSL 0.6 (Debian): SHA-256/512, HMAC, HKDF, RSA PKCS#1 v1.5 and ECDSA P-256 verification.
 * libsecp256k1 (LP2P_ENABLE_SECP256K1, default 0): secp256k1 ECDSA verification.
 * Spec: peer-ids/peer-ids.md (key types and signature rules), noise/README.md.
 * Depends on: base.h. */
#ifndef LP2P__CRYPTO_H
#define LP2P__CRYPTO_H

/* #include "base.h" (amalgamated) */

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
/* in has len bytes incl. the 16-byte tag; out gets len - 16. ERR_HANDSHAKE... no: returns
 * LP2P_ERR_PROTOCOL if authentication fails, LP2P_OK otherwise. */
LP2P__PRIV int lp2p__aead_open(const uint8_t key[32], uint64_t n, const uint8_t *ad, size_t ad_len,
                               const uint8_t *in, size_t len, uint8_t *out);

/* ---- Ed25519 ---- */
LP2P__PRIV void lp2p__ed25519_from_seed(const uint8_t seed[32], uint8_t pk[32], uint8_t sk[64]);
LP2P__PRIV void lp2p__ed25519_sign(const uint8_t sk[64], const void *msg, size_t len, uint8_t sig[64]);
LP2P__PRIV bool lp2p__ed25519_verify(const uint8_t pk[32], const void *msg, size_t len, const uint8_t sig[64]);

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
/* Peer ID from a serialized PublicKey: identity multihash if <= 42 bytes, else sha2-256. */
LP2P__PRIV int lp2p__peer_id_from_pubkey(const uint8_t *pubkey_pb, size_t len, lp2p_peer_id *out);
/* Binary multihash -> peer ID, checking it is a valid identity (<= 42 bytes payload) or sha2-256 multihash. */
LP2P__PRIV int lp2p__peer_id_from_bytes(const uint8_t *p, size_t n, lp2p_peer_id *out);
/* If the peer ID is an identity multihash, the embedded PublicKey protobuf (pointer into id). */
LP2P__PRIV int lp2p__peer_id_pubkey(const lp2p_peer_id *id, const uint8_t **pubkey_pb, size_t *len);
/* Text: parses base58btc multihash ("Qm...", "12D3...", "16Uiu2...") and CIDv1 with codec
 * libp2p-key 0x72 in multibase base32 ('b...') or base58 ('z...'); lp2p_peer_id_str prints base58btc. */

/* ---- signed envelopes (spec: RFC 0002 signed-envelopes; records) ---- */
/* Sign: the signature covers uvarint(len(domain)) || domain || uvarint(len(type)) || type ||
 * uvarint(len(payload)) || payload. Writes the serialized Envelope protobuf (public_key=1,
 * payload_type=2, payload=3, signature=5) into out; returns its length or ERR_MSGSIZE. */
LP2P__PRIV ptrdiff_t lp2p__envelope_seal(const lp2p__identity *idn, const char *domain, const uint8_t *type,
                                         size_t type_len, const uint8_t *payload, size_t payload_len, uint8_t *out,
                                         size_t cap);
/* Parse + verify an Envelope against domain and expected payload type. On OK, *payload points
 * into env and signer gets the signer's peer ID. ERR_PROTOCOL malformed, ERR_HANDSHAKE bad signature. */
LP2P__PRIV int lp2p__envelope_open(const uint8_t *env, size_t env_len, const char *domain, const uint8_t *type,
                                   size_t type_len, const uint8_t **payload, size_t *payload_len, lp2p_peer_id *signer);

#endif
/*==================== end src/crypto.h ====================*/
/*==================== begin src/multiaddr.h ====================*/
/* multiaddr.h - L0: multiaddr text <-> binary.
 *
 * Spec: multiformats/multiaddr (README.md, protocols.csv); libp2p/specs addressing/README.md.
 * Supported protocols: ip4, ip6, dns, dns4, dns6, dnsaddr, tcp, udp, p2p (alias ipfs on
 * input), p2p-circuit, ws, wss, tls, quic-v1, and a few more from protocols.csv as opaque.
 * Unknown or malformed parts are rejected with LP2P_ERR_BADADDR; the reason goes to *why
 * (static string) when the caller passes a non-NULL why.
 * Depends on: base.h, crypto.h (peer IDs in /p2p/). */
#ifndef LP2P__MULTIADDR_H
#define LP2P__MULTIADDR_H

/* #include "crypto.h" (amalgamated) */

#define LP2P__MA_MAX 400 /* bytes of a binary multiaddr we keep */
#define LP2P__MA_STRLEN 600

typedef struct lp2p__ma {
    uint16_t len;
    uint8_t b[LP2P__MA_MAX];
} lp2p__ma;

/* protocol codes (multicodec table) */
#define LP2P__MA_IP4 4
#define LP2P__MA_TCP 6
#define LP2P__MA_UDP 273
#define LP2P__MA_IP6 41
#define LP2P__MA_IP6ZONE 42
#define LP2P__MA_DNS 53
#define LP2P__MA_DNS4 54
#define LP2P__MA_DNS6 55
#define LP2P__MA_DNSADDR 56
#define LP2P__MA_P2P 421
#define LP2P__MA_P2P_CIRCUIT 290
#define LP2P__MA_WS 477
#define LP2P__MA_WSS 478
#define LP2P__MA_TLS 448
#define LP2P__MA_QUIC_V1 461

LP2P__PRIV int lp2p__ma_parse(const char *text, lp2p__ma *out, const char **why);
LP2P__PRIV int lp2p__ma_from_bytes(const uint8_t *p, size_t n, lp2p__ma *out, const char **why); /* validates */
/* Text form (NUL-terminated); returns length or ERR_INVALID if cap is too small. */
LP2P__PRIV ptrdiff_t lp2p__ma_str(const lp2p__ma *ma, char *out, size_t cap);

/* Component iteration: start with *off = 0; returns 1 and fills code/value while components
 * remain, 0 at the end. value points into ma. */
LP2P__PRIV int lp2p__ma_next(const lp2p__ma *ma, size_t *off, uint32_t *code, const uint8_t **value, size_t *value_len);
/* If the last component is /p2p/<id>: fill *id (if non-NULL), set *base (if non-NULL) to the
 * address without it, and return 1; else 0 (and *base = *ma). */
LP2P__PRIV int lp2p__ma_split_p2p(const lp2p__ma *ma, lp2p__ma *base, lp2p_peer_id *id);
/* Append /p2p/<id> (ERR_INVALID if no room). */
LP2P__PRIV int lp2p__ma_append_p2p(lp2p__ma *ma, const lp2p_peer_id *id);
LP2P__PRIV bool lp2p__ma_eq(const lp2p__ma *a, const lp2p__ma *b);
/* ip4|ip6|dns|dns4|dns6 followed by tcp and nothing else (optionally /p2p/ at the end). */
LP2P__PRIV bool lp2p__ma_is_tcp(const lp2p__ma *ma);
/* Is the address (first component) a loopback / unspecified IP? */
LP2P__PRIV bool lp2p__ma_is_loopback(const lp2p__ma *ma);

#endif
/*==================== end src/multiaddr.h ====================*/
/*==================== begin src/runtime.h ====================*/
/* runtime.h - L2: stackful coroutines (tasks), scheduler, timers, I/O poller.
 *
 * A scheduler (one per host) owns: a pool of guard-paged mmap stacks, a run queue, a timer
 * heap, an epoll instance (poll() fallback) and a thread-safe post queue woken by an eventfd
 * or a pipe. Tasks are stackful coroutines switched by hand-written assembly (x86-64 SysV,
 * aarch64; ucontext fallback with LP2P_CORO_UCONTEXT).
 *
 * "Blocking" calls: every wait function below, called inside a task, parks the task and
 * returns when the condition or the absolute deadline (ms of lp2p_now(); LP2P_FOREVER = -1,
 * LP2P_NOWAIT = 0) arrives. Called outside any task (plain main()), it pumps the scheduler
 * loop itself - every scheduler created on this thread, so several hosts in one test
 * process make progress - until the condition or the deadline. Called while the scheduler
 * is already being pumped by non-task code (the logger, a post callback), it returns
 * LP2P_ERR_WOULDBLOCK. A canceled task's waits return LP2P_ERR_CANCELED, at once and on
 * every later wait (each still passes once through the run queue, so a task that ignores the
 * error cannot starve the loop or hang lp2p__sched_free).
 * Threads: a scheduler is driven by one thread at a time; only lp2p__sched_post and
 * lp2p__sched_stop may be called from others. Outside-task waits pump the schedulers created
 * on the calling thread (several hosts in one test talk to each other from main()).
 * Limits: each task stack is two mappings (stack + guard page); Linux's vm.max_map_count
 * (65530 by default) caps live tasks at about 32 k per process.
 * Depends on: base.h. */
#ifndef LP2P__RUNTIME_H
#define LP2P__RUNTIME_H

/* #include "base.h" (amalgamated) */

typedef struct lp2p__sched lp2p__sched;
typedef struct lp2p__task lp2p__task; /* internal task record (pooled, reused) */

typedef struct lp2p__sched_cfg {
    size_t stack_size; /* 0 -> 64 KiB (usable bytes, at least 16 KiB, plus one guard page) */
    int max_tasks;     /* 0 -> 65536 live tasks; spawn past it fails with ERR_LIMIT (logged) */
} lp2p__sched_cfg;

LP2P__PRIV int lp2p__sched_new(lp2p__ctx *ctx, const lp2p__sched_cfg *cfg, lp2p__sched **out);
/* Cancel every task, resume them until they have all returned, free all resources. */
LP2P__PRIV void lp2p__sched_free(lp2p__sched *s);
/* One loop iteration: resume each ready task at most once, poll I/O (waiting at most
 * timeout_ms; 0 never blocks, < 0 waits for the next event), fire due timers, run posted
 * callbacks. Returns the number of tasks resumed (>= 0) or an LP2P_ERR_*. */
LP2P__PRIV int lp2p__sched_poll(lp2p__sched *s, int timeout_ms);
/* Loop until lp2p__sched_stop (a stop made before the call ends it at once; each stop ends
 * one run). Returns LP2P_OK, ERR_IO if the poller fails, ERR_WOULDBLOCK inside a task. */
LP2P__PRIV int lp2p__sched_run(lp2p__sched *s);
LP2P__PRIV void lp2p__sched_stop(lp2p__sched *s);                          /* thread-safe */
/* Thread-safe; fn runs as a new task on the loop's thread. Allocates with the ctx allocator
 * from the calling thread (the default malloc is thread-safe). Returns OK, ERR_NOMEM,
 * ERR_INVALID. Posts not yet run when the scheduler is freed are dropped. */
LP2P__PRIV int lp2p__sched_post(lp2p__sched *s, void (*fn)(void *), void *arg);
LP2P__PRIV lp2p__ctx *lp2p__sched_ctx(lp2p__sched *s);

/* ---- tasks ---- */
/* Start fn(arg) as a new task (runs at the next poll). Handle id 0 means failure (limit or
 * memory; logged). Never blocks. */
LP2P__PRIV lp2p_task lp2p__spawn(lp2p__sched *s, void (*fn)(void *), void *arg);
/* Ask a task to stop: its current and later waits return ERR_CANCELED. ERR_NOTFOUND if dead. */
LP2P__PRIV int lp2p__task_cancel(lp2p__sched *s, lp2p_task t);
/* Wait for a task to end: OK when it ended (also if it had ended before), ERR_NOTFOUND for
 * {0} or a handle this scheduler never gave out, ERR_INVALID for the calling task itself,
 * ERR_TIMEOUT, ERR_CANCELED, ERR_WOULDBLOCK. */
LP2P__PRIV int lp2p__task_join(lp2p__sched *s, lp2p_task t, int64_t deadline);
LP2P__PRIV bool lp2p__task_alive(lp2p__sched *s, lp2p_task t);
/* The task running now on this thread, or NULL outside tasks. */
LP2P__PRIV lp2p__task *lp2p__task_current(void);
/* Handle of the current task ({0} outside tasks). */
LP2P__PRIV lp2p_task lp2p__task_self(void);
/* Has the current task been canceled? (false outside tasks) */
LP2P__PRIV bool lp2p__task_canceled(void);

/* ---- waiting ---- */
#define LP2P__IN 1
#define LP2P__OUT 2
/* Register a non-blocking fd with the poller once (epoll: EPOLLIN|EPOLLOUT|EPOLLET). */
LP2P__PRIV int lp2p__fd_add(lp2p__sched *s, int fd);
/* Unregister before close(); tasks waiting on fd wake with ERR_CLOSED. */
LP2P__PRIV void lp2p__fd_del(lp2p__sched *s, int fd);
/* Wait until fd may be readable (LP2P__IN) or writable (LP2P__OUT) - also on error/hangup,
 * so the caller retries its syscall (try the syscall first, wait on EAGAIN). Registers the fd
 * if needed. Returns OK, ERR_TIMEOUT, ERR_CANCELED, ERR_CLOSED, ERR_WOULDBLOCK, ERR_INVALID
 * (bad fd or dir), ERR_BUSY (a second reader or writer: one of each per fd at a time). */
LP2P__PRIV int lp2p__wait_fd(lp2p__sched *s, int fd, int dir, int64_t deadline);
/* Park until deadline (OK) or cancel (ERR_CANCELED). */
LP2P__PRIV int lp2p__sleep_until(lp2p__sched *s, int64_t deadline);
/* Let every other ready task run once. OK; ERR_CANCELED (after yielding) in a canceled task;
 * outside tasks, one non-blocking round of every scheduler of the thread. */
LP2P__PRIV int lp2p__yield(lp2p__sched *s);

/* A wait queue: tasks (or a main() pump) wait until woken. Wake-ups are not remembered:
 * callers re-check their condition in a loop (spurious wake-ups allowed). Zero-init valid. */
typedef struct lp2p__waiter lp2p__waiter;
typedef struct lp2p__waitq {
    lp2p__waiter *head, *tail;
} lp2p__waitq;
/* OK when woken, ERR_TIMEOUT, ERR_CANCELED, ERR_WOULDBLOCK. */
LP2P__PRIV int lp2p__waitq_wait(lp2p__sched *s, lp2p__waitq *q, int64_t deadline);
LP2P__PRIV void lp2p__waitq_wake_one(lp2p__sched *s, lp2p__waitq *q);
LP2P__PRIV void lp2p__waitq_wake_all(lp2p__sched *s, lp2p__waitq *q);

/* A mutex between tasks of one scheduler (e.g. one writer at a time on a connection). */
typedef struct lp2p__mutex {
    int locked;
    lp2p__waitq q;
} lp2p__mutex;
/* OK / TIMEOUT / CANCELED / WOULDBLOCK. Unlock hands the mutex to the first waiter (FIFO).
 * Taking a free mutex is not a wait: it succeeds even in a canceled task (cleanup). */
LP2P__PRIV int lp2p__mutex_lock(lp2p__sched *s, lp2p__mutex *m, int64_t deadline);
LP2P__PRIV void lp2p__mutex_unlock(lp2p__sched *s, lp2p__mutex *m);

#endif
/*==================== end src/runtime.h ====================*/
/*==================== begin src/pipe.h ====================*/
/* pipe.h - L3: the byte-pipe interface every connection layer speaks.
 *
 * A pipe is an ordered, reliable byte stream with blocking-style calls (see runtime.h for
 * what blocking means inside and outside tasks). TCP connections, in-memory pipes, Noise
 * secure channels and yamux streams all implement it, so multistream-select, Noise and
 * yamux each run on top of any of them.
 * Read-ahead rule: a pipe never loses bytes between calls. A layer that reads one byte at a
 * time (multistream-select) gets the rest on the next read; buffering is inside the pipe.
 * Depends on: base.h, runtime.h. */
#ifndef LP2P__PIPE_H
#define LP2P__PIPE_H

/* #include "runtime.h" (amalgamated) */

typedef struct lp2p__pipe lp2p__pipe;
typedef struct lp2p__pipe_vt {
    /* Read up to cap bytes: > 0 bytes read, 0 at EOF, < 0 an LP2P_ERR_* (TIMEOUT, CANCELED,
     * RESET, CLOSED, IO, PROTOCOL...). */
    ptrdiff_t (*read)(lp2p__pipe *p, void *buf, size_t cap, int64_t deadline);
    /* Write all len bytes: LP2P_OK or < 0 (then an unknown prefix may have been sent). */
    int (*write)(lp2p__pipe *p, const void *buf, size_t len, int64_t deadline);
    /* Half-close: no more writes (FIN); reading still allowed. */
    int (*close_write)(lp2p__pipe *p);
    /* Abort both directions (RST where the layer has one) and release the pipe. */
    void (*reset)(lp2p__pipe *p);
    /* Close gracefully (FIN if not sent yet), never blocks, and release the pipe. */
    void (*close)(lp2p__pipe *p);
} lp2p__pipe_vt;

struct lp2p__pipe {
    const lp2p__pipe_vt *vt;
};

static inline ptrdiff_t lp2p__pipe_read(lp2p__pipe *p, void *buf, size_t cap, int64_t deadline) {
    return p->vt->read(p, buf, cap, deadline);
}
static inline int lp2p__pipe_write(lp2p__pipe *p, const void *buf, size_t len, int64_t deadline) {
    return p->vt->write(p, buf, len, deadline);
}
/* Read exactly len bytes: OK, ERR_EOF if the stream ended first, or the read error. */
LP2P__PRIV int lp2p__pipe_read_full(lp2p__pipe *p, void *buf, size_t len, int64_t deadline);
/* Read one uvarint-length-prefixed message of at most cap bytes into buf: returns its
 * length, ERR_MSGSIZE if longer than cap (the pipe is then unusable), ERR_PROTOCOL on a bad
 * varint, ERR_EOF on EOF inside the message, 0-length messages allowed. EOF before the first
 * byte returns ERR_EOF too; *clean_eof (if non-NULL) is set to 1 in that case only. */
LP2P__PRIV ptrdiff_t lp2p__pipe_read_msg(lp2p__pipe *p, void *buf, size_t cap, int *clean_eof, int64_t deadline);
/* Write uvarint(len) || buf in one write. */
LP2P__PRIV int lp2p__pipe_write_msg(lp2p__ctx *ctx, lp2p__pipe *p, const void *buf, size_t len, int64_t deadline);

#endif
/*==================== end src/pipe.h ====================*/
/*==================== begin src/tcp.h ====================*/
/* tcp.h - L3: TCP transport (and an in-memory pipe pair for tests), over the runtime poller.
 *
 * TCP sockets are non-blocking, registered once with the scheduler's poller, TCP_NODELAY,
 * SO_REUSEADDR + SO_REUSEPORT on listeners (and on dials that reuse a listen port, for hole
 * punching later). A TCP pipe keeps a small read buffer so byte-at-a-time readers (multistream)
 * cost no syscall per byte; large reads into an empty buffer go straight to the socket.
 * /dns, /dns4, /dns6 names are resolved by getaddrinfo on a short-lived worker thread that
 * reports back through lp2p__sched_post, so the loop never stalls.
 * Depends on: runtime.h, pipe.h, multiaddr.h. */
#ifndef LP2P__TCP_H
#define LP2P__TCP_H

/* #include "pipe.h" (amalgamated) */
/* #include "multiaddr.h" (amalgamated) */

typedef struct lp2p__tcp_listener lp2p__tcp_listener;

/* Listen on an /ip4|ip6/<addr>/tcp/<port> multiaddr (port 0 = any). *bound gets the real
 * address (port filled in). ERR_BADADDR (not a TCP address), ERR_IO (bind/listen failed, logged). */
LP2P__PRIV int lp2p__tcp_listen(lp2p__sched *s, const lp2p__ma *addr, lp2p__tcp_listener **out, lp2p__ma *bound);
/* Accept one connection. *remote gets the peer's /ip4|ip6/../tcp/.. address. */
LP2P__PRIV int lp2p__tcp_accept(lp2p__tcp_listener *l, lp2p__pipe **out, lp2p__ma *remote, int64_t deadline);
/* Wake any accept()ing task (it returns ERR_CLOSED), close the socket and free. */
LP2P__PRIV void lp2p__tcp_listener_free(lp2p__tcp_listener *l);

/* Dial an /ip4|ip6|dns|dns4|dns6/../tcp/<port> address (a trailing /p2p/ is ignored).
 * reuse_port: bind the local side to that port first (SO_REUSEADDR/PORT), or 0.
 * *local / *remote (may be NULL) get the connection's addresses.
 * ERR_BADADDR, ERR_UNREACHABLE (refused/unreachable/DNS failure), ERR_TIMEOUT, ERR_CANCELED. */
LP2P__PRIV int lp2p__tcp_dial(lp2p__sched *s, const lp2p__ma *addr, int reuse_port, lp2p__pipe **out, lp2p__ma *local,
                              lp2p__ma *remote, int64_t deadline);
/* Resolve a /dns|dns4|dns6/<name> first component into up to max ip addresses (the rest of the
 * multiaddr kept). Returns the number of results or ERR_UNREACHABLE. */
LP2P__PRIV int lp2p__dns_resolve(lp2p__sched *s, const lp2p__ma *addr, lp2p__ma *out, int max, int64_t deadline);

/* Two connected in-memory pipes (tests, simulation). Each direction buffers up to 1 MiB. */
LP2P__PRIV int lp2p__mempipe_pair(lp2p__sched *s, lp2p__pipe **a, lp2p__pipe **b);

#endif
/*==================== end src/tcp.h ====================*/
/*==================== begin src/mss.h ====================*/
/* mss.h - L4: multistream-select 1.0 over any pipe.
 *
 * Spec: multiformats/multistream-select README.md; libp2p/specs connections/README.md.
 * Messages are uvarint(len) || UTF-8 || '\n' with len including the '\n'; at most 1024 bytes
 * (go-multistream's limit). Reads go byte-exact through the pipe, so bytes that follow the
 * negotiation (rust's pipelined Noise message, go's lazy stream data) stay in the pipe.
 * Depends on: pipe.h. */
#ifndef LP2P__MSS_H
#define LP2P__MSS_H

/* #include "pipe.h" (amalgamated) */

#define LP2P__MSS_PROTO "/multistream/1.0.0"
#define LP2P__MSS_MAX 1024

/* Dialer: send the header and the proposals one by one until one is echoed. Returns the
 * index of the accepted protocol, ERR_PROTO_NA if every one got "na", ERR_PROTOCOL on a bad
 * reply, or the pipe's error. */
LP2P__PRIV int lp2p__mss_select(lp2p__pipe *p, const char *const *protocols, int n, int64_t deadline);
/* Lazy dialer (V1Lazy): wrap p so the header + proposal are sent together with the first
 * write through the wrapper, and the header + echo are checked on the first read. A "na"
 * fails that read with ERR_PROTO_NA. The wrapper owns p (close/reset pass through). */
LP2P__PRIV int lp2p__mss_lazy(lp2p__ctx *ctx, lp2p__pipe *p, const char *protocol, lp2p__pipe **out);

/* Listener: read the header and proposals; answer "na" to unsupported ones (and to "ls" with
 * the list of supported protocols) until match(user, proto) accepts one, then echo it.
 * Returns the matched protocol copied into out (NUL-terminated, out_cap >= LP2P__MSS_MAX),
 * or ERR_PROTOCOL (malformed/oversized message, logged by the caller), ERR_EOF, pipe errors. */
typedef bool (*lp2p__mss_match_fn)(void *user, const char *proto);
typedef int (*lp2p__mss_list_fn)(void *user, const char **protos, int max); /* for "ls" */
LP2P__PRIV int lp2p__mss_handle(lp2p__pipe *p, lp2p__mss_match_fn match, lp2p__mss_list_fn list, void *user,
                                char *out, size_t out_cap, int64_t deadline);

#endif
/*==================== end src/mss.h ====================*/
/*==================== begin src/noise.h ====================*/
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

/* #include "pipe.h" (amalgamated) */
/* #include "crypto.h" (amalgamated) */

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
/*==================== end src/noise.h ====================*/
/*==================== begin src/yamux.h ====================*/
/* yamux.h - L4: the yamux stream multiplexer over a (secure) pipe.
 *
 * Spec: libp2p/specs yamux/README.md (hashicorp yamux spec.md). 12-byte header
 * ver|type|flags|stream id|length, big-endian. The dialer is the client (odd stream IDs).
 *
 * Tasks: one reader task per session reads frames and dispatches them; one writer task
 * owns the pipe's write side and sends, in one pipe write per batch, queued control frames
 * (pongs first) then data frames round-robin over the streams that have data and window.
 * A stream write hands its buffer to the writer and returns once every byte was copied
 * into a batch, so a canceled or timed-out app task never leaves half a frame on the wire.
 * A keepalive task pings at session start (RTT for window tuning) and whenever nothing was
 * received for keepalive_ms; no pong within ping_timeout_ms ends the session (ERR_TIMEOUT).
 *
 * Flow control: receive windows start at init_window (>= 256 KiB, the spec value; the extra
 * rides on the SYN/ACK window update) and auto-tune: a window update is sent once the app
 * has consumed half the window, and the window doubles (up to max_window, and within the
 * session budget max_conn_window) when the previous update was less than 4 RTT ago (go-yamux
 * stream.go rule). Any window the peer grants is accepted (rust/go/js go far above 256 KiB).
 * Data frames carry <= 65507 bytes so header + payload fit one Noise frame (65519).
 * At most 256 unacknowledged outbound streams (libp2p ACK backlog); inbound streams beyond
 * max_inbound are reset (logged once per session at WARN, naming the limit).
 *
 * Streams are pipes (close_write = FIN, reset = RST with code 0). close() sends FIN and
 * releases the handle; if the peer has not finished sending, the stream lingers in the
 * session (as in go-yamux) until the peer's FIN/RST or the session ends: further data is
 * discarded and no window is granted, and once the peer has used up its window we reset
 * the stream instead of leaving the peer blocked forever.
 * Depends on: pipe.h, runtime.h. */
#ifndef LP2P__YAMUX_H
#define LP2P__YAMUX_H

/* #include "pipe.h" (amalgamated) */

#define LP2P__YAMUX_PROTO "/yamux/1.0.0"
#define LP2P__YAMUX_ACK_BACKLOG 256         /* libp2p yamux README: unacknowledged outbound streams */
#define LP2P__YAMUX_MAX_PAYLOAD (65519 - 12) /* data frame payload we send: one Noise frame */

typedef struct lp2p__yamux lp2p__yamux;
typedef struct lp2p__ystream lp2p__ystream; /* begins with an lp2p__pipe */

typedef struct lp2p__yamux_cfg {
    bool is_client;           /* the connection's dialer */
    uint32_t init_window;     /* 0 -> 256 KiB (values below 256 KiB are raised to it) */
    uint32_t max_window;      /* 0 -> 16 MiB */
    uint32_t max_conn_window; /* 0 -> 64 MiB: total auto-tuned growth above init_window, all streams */
    int max_inbound;          /* 0 -> 1024 concurrently open inbound streams */
    int keepalive_ms;         /* 0 -> 15000; < 0 off: ping when nothing was received for this long */
    int ping_timeout_ms;      /* 0 -> 10000: keepalive ping without pong for this long ends the session */
    /* Called (from the session's reader task - do not block in it; spawn a task) for each
     * new inbound stream, which the callee now owns (close or reset it). NULL: reset them. */
    void (*on_stream)(void *user, lp2p__yamux *y, lp2p__pipe *stream);
    /* Called once when the session ends (err = reason: OK for a local close, ERR_EOF when
     * the pipe ended or the peer sent GoAway, ERR_TIMEOUT keepalive, ERR_PROTOCOL peer
     * violation, pipe errors). May run inside lp2p__yamux_close/free. Must not block. */
    void (*on_close)(void *user, lp2p__yamux *y, int err);
    void *user;
} lp2p__yamux_cfg;

/* Start a session on pipe and its tasks. The session owns the pipe from this call on, also
 * on failure (then the pipe is closed). ERR_NOMEM, ERR_LIMIT (task limit). */
LP2P__PRIV int lp2p__yamux_new(lp2p__sched *s, lp2p__pipe *pipe, const lp2p__yamux_cfg *cfg, lp2p__yamux **out);
/* Open an outbound stream. Never waits for the peer's ACK: the SYN goes out with the next
 * batch (or on the first data frame). When 256 streams are unacknowledged it waits for one
 * to be acknowledged until deadline, then fails with ERR_LIMIT (logged). ERR_CLOSED when the
 * session is gone or the peer sent GoAway; ERR_LIMIT when stream IDs are exhausted;
 * ERR_CANCELED. */
LP2P__PRIV int lp2p__yamux_open(lp2p__yamux *y, lp2p__pipe **out, int64_t deadline);
/* Send a ping and wait for the pong (shares an outstanding ping); returns RTT in ms (>= 0)
 * or ERR_TIMEOUT / ERR_CANCELED / ERR_CLOSED. */
LP2P__PRIV int lp2p__yamux_ping(lp2p__yamux *y, int64_t deadline);
/* Queue GoAway(0), flush queued control frames (FINs...) and close the pipe in the background;
 * streams fail with ERR_CLOSED (data already received stays readable). Never blocks.
 * The session object stays valid until lp2p__yamux_free. */
LP2P__PRIV void lp2p__yamux_close(lp2p__yamux *y);
/* Close if needed and drop the caller's reference. Memory goes when the session's tasks have
 * ended and every stream handle was released (streams still held fail safely until then). */
LP2P__PRIV void lp2p__yamux_free(lp2p__yamux *y);
LP2P__PRIV bool lp2p__yamux_is_closed(lp2p__yamux *y);
/* Streams the session still tracks (open, half-closed or lingering after close). */
LP2P__PRIV int lp2p__yamux_num_streams(lp2p__yamux *y);
/* Smoothed RTT from yamux pings in microseconds (0 = not measured yet). */
LP2P__PRIV int64_t lp2p__yamux_rtt_us(lp2p__yamux *y);
/* The yamux stream ID of a stream pipe from this module. */
LP2P__PRIV uint32_t lp2p__ystream_id(lp2p__pipe *stream);

/* Test hooks: override the RTT; read a stream's current receive window size (the auto-tuned
 * maximum, not the remaining credit); count unacknowledged outbound streams. */
LP2P__PRIV void lp2p__yamux_set_rtt_us(lp2p__yamux *y, int64_t rtt_us);
LP2P__PRIV uint32_t lp2p__ystream_recv_window(lp2p__pipe *stream);
LP2P__PRIV int lp2p__yamux_unacked(lp2p__yamux *y);

#endif
/*==================== end src/yamux.h ====================*/
/*==================== begin src/proto/keys.pb.h ====================*/
/* placeholder */
/*==================== end src/proto/keys.pb.h ====================*/
/*==================== begin src/proto/noise.pb.h ====================*/
/* placeholder */
/*==================== end src/proto/noise.pb.h ====================*/
/*==================== begin src/proto/envelope.pb.h ====================*/
/* placeholder */
/*==================== end src/proto/envelope.pb.h ====================*/
/*==================== begin src/proto/peer_record.pb.h ====================*/
/* placeholder */
/*==================== end src/proto/peer_record.pb.h ====================*/
/*==================== begin src/proto/identify.pb.h ====================*/
/* placeholder */
/*==================== end src/proto/identify.pb.h ====================*/
/*==================== begin src/host.h ====================*/
/* host.h - placeholder, being written */
/*==================== end src/host.h ====================*/
/*==================== begin src/base.c ====================*/
/* base.c - L0: allocator, logging, clock, errors, buffers, varints.
 *
 * Spec: multiformats/unsigned-varint (minimal encoding, at most 9 bytes as go-varint).
 * Depends on: base.h. */
/* #include "base.h" (amalgamated) */

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
/*==================== end src/base.c ====================*/
/*==================== begin src/multibase.c ====================*/
/* multibase.c - placeholder, being written */
/*==================== end src/multibase.c ====================*/
/*==================== begin src/crypto.c ====================*/
/* crypto.c - placeholder, being written */
/*==================== end src/crypto.c ====================*/
/*==================== begin src/peerid.c ====================*/
/* peerid.c - placeholder, being written */
/*==================== end src/peerid.c ====================*/
/*==================== begin src/multiaddr.c ====================*/
/* multiaddr.c - placeholder, being written */
/*==================== end src/multiaddr.c ====================*/
/*==================== begin src/runtime.c ====================*/
/* runtime.c - L2: stackful coroutines (tasks), scheduler, timer heap, I/O poller.
 *
 * Sections, in order:
 *   1. platform selection (context-switch backend, poller backend, thread-local storage)
 *   2. context switch: x86-64 SysV asm, aarch64 asm, ucontext fallback
 *   3. data structures
 *   4. stacks (mmap + PROT_NONE guard page, pooled) and task records (pooled, generation-counted)
 *   5. run queue, timer heap, waiters (the one place a parked task is woken)
 *   6. poller: epoll (Linux) or poll(), plus the eventfd/pipe that wakes it for posts and stop
 *   7. scheduler: new / poll / run / stop / post / free
 *   8. outside-task waits: pumping every scheduler of this thread
 *   9. the wait functions of runtime.h, tasks, mutex
 *
 * Model: a task runs until it waits; it then switches back to the context that resumed it
 * (the caller of lp2p__sched_poll). Every parked task has exactly one lp2p__waiter (on its own
 * stack) and at most one timer; lp2p__waiter_fire() is the only way out of a park, so a wake,
 * a timeout, a cancel and an fd close can never both happen.
 *
 * Limits: every guarded stack costs two memory mappings, and Linux caps mappings per process
 * at vm.max_map_count (65530 by default), so about 32 k tasks can be alive at once unless
 * that sysctl is raised. Task handles carry a 12-bit generation: a handle kept across 4096
 * reuses of the same slot may alias a newer task (slots are reused first-in first-out to make
 * that rare).
 * Depends on: base.h, runtime.h. */
/* #include "runtime.h" (amalgamated) */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

/* ==== 1. platform selection ================================================================ */
#if !defined(LP2P_CORO_UCONTEXT) && defined(__x86_64__) && !defined(_WIN32) && (defined(__GNUC__) || defined(__clang__))
#define LP2P__CORO_X64 1
#elif !defined(LP2P_CORO_UCONTEXT) && defined(__aarch64__) && !defined(_WIN32) && (defined(__GNUC__) || defined(__clang__))
#define LP2P__CORO_A64 1
#else
#define LP2P__CORO_UC 1
#include <ucontext.h>
#endif

#if defined(__linux__) && !defined(LP2P_POLLER_POLL)
#define LP2P__EPOLL 1
#include <sys/epoll.h>
#include <sys/eventfd.h>
#endif

#if defined(__cplusplus) && __cplusplus >= 201103L
#define LP2P__TLS thread_local
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define LP2P__TLS _Thread_local
#elif defined(__GNUC__) || defined(__clang__)
#define LP2P__TLS __thread
#elif defined(_MSC_VER)
#define LP2P__TLS __declspec(thread)
#endif

#ifndef MAP_ANONYMOUS
#define MAP_ANONYMOUS MAP_ANON
#endif
#ifndef MAP_NORESERVE
#define MAP_NORESERVE 0
#endif
#ifndef MAP_STACK
#define MAP_STACK 0
#endif

/* ==== 2. context switch ===================================================================== *
 * lp2p__coro_switch(save, load): push the callee-saved registers on the current stack, store
 * the stack pointer in *save, load the stack pointer `load`, pop the registers saved there and
 * return into that context. A new context is a hand-built frame whose "return address" is
 * lp2p__coro_boot, which calls entry(task) with the values planted in callee-saved registers.
 * The asm symbols are not .globl: they stay local to the object file (never exported). */
typedef struct lp2p__coro {
#if LP2P__CORO_UC
    ucontext_t uc;
#else
    void *sp;
#endif
} lp2p__coro;

#if LP2P__CORO_X64
/* ---- 2a. x86-64 SysV: rbx, rbp, r12-r15, MXCSR and the x87 control word ---- */
extern void lp2p__coro_switch(void **save, void *load) __asm__("lp2p__coro_switch");
extern void lp2p__coro_boot(void) __asm__("lp2p__coro_boot");
__asm__(".text\n"
        ".p2align 4\n"
#ifdef __ELF__
        ".type lp2p__coro_switch,@function\n"
#endif
        "lp2p__coro_switch:\n"
        "    pushq %rbp\n"
        "    pushq %rbx\n"
        "    pushq %r12\n"
        "    pushq %r13\n"
        "    pushq %r14\n"
        "    pushq %r15\n"
        "    subq $8, %rsp\n"
        "    stmxcsr (%rsp)\n"
        "    fnstcw 4(%rsp)\n"
        "    movq %rsp, (%rdi)\n"
        "    movq %rsi, %rsp\n"
        "    ldmxcsr (%rsp)\n"
        "    fldcw 4(%rsp)\n"
        "    addq $8, %rsp\n"
        "    popq %r15\n"
        "    popq %r14\n"
        "    popq %r13\n"
        "    popq %r12\n"
        "    popq %rbx\n"
        "    popq %rbp\n"
        "    ret\n"
#ifdef __ELF__
        ".size lp2p__coro_switch, .-lp2p__coro_switch\n"
        ".type lp2p__coro_boot,@function\n"
#endif
        "lp2p__coro_boot:\n"
        "    movq %r12, %rdi\n"
        "    callq *%r13\n"
        "    ud2\n"
#ifdef __ELF__
        ".size lp2p__coro_boot, .-lp2p__coro_boot\n"
#endif
);

static void lp2p__coro_init(lp2p__coro *c, void *lo, size_t size, void (*entry)(void *), void *arg) {
    uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
    uint64_t *f = (uint64_t *)(top - 80); /* after `ret` into boot, rsp = top - 16: aligned for its call */
    uint32_t mxcsr;
    uint16_t fpucw;
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    __asm__ volatile("fnstcw %0" : "=m"(fpucw));
    f[0] = mxcsr | ((uint64_t)fpucw << 32);
    f[1] = 0;                               /* r15 */
    f[2] = 0;                               /* r14 */
    f[3] = (uint64_t)(uintptr_t)entry;      /* r13 */
    f[4] = (uint64_t)(uintptr_t)arg;        /* r12 */
    f[5] = 0;                               /* rbx */
    f[6] = 0;                               /* rbp: ends frame-pointer backtraces */
    f[7] = (uint64_t)(uintptr_t)lp2p__coro_boot;
    f[8] = f[9] = 0;
    c->sp = f;
}
static inline void lp2p__coro_jump(lp2p__coro *from, lp2p__coro *to) { lp2p__coro_switch(&from->sp, to->sp); }

#elif LP2P__CORO_A64
/* ---- 2b. aarch64 AAPCS64: x19-x30 (x29 fp, x30 lr), sp, d8-d15 ---- */
extern void lp2p__coro_switch(void **save, void *load) __asm__("lp2p__coro_switch");
extern void lp2p__coro_boot(void) __asm__("lp2p__coro_boot");
__asm__(".text\n"
        ".p2align 4\n"
#ifdef __ELF__
        ".type lp2p__coro_switch,%function\n"
#endif
        "lp2p__coro_switch:\n"
        "    sub sp, sp, #160\n"
        "    stp x19, x20, [sp, #0]\n"
        "    stp x21, x22, [sp, #16]\n"
        "    stp x23, x24, [sp, #32]\n"
        "    stp x25, x26, [sp, #48]\n"
        "    stp x27, x28, [sp, #64]\n"
        "    stp x29, x30, [sp, #80]\n"
        "    stp d8, d9, [sp, #96]\n"
        "    stp d10, d11, [sp, #112]\n"
        "    stp d12, d13, [sp, #128]\n"
        "    stp d14, d15, [sp, #144]\n"
        "    mov x9, sp\n"
        "    str x9, [x0]\n"
        "    mov sp, x1\n"
        "    ldp x19, x20, [sp, #0]\n"
        "    ldp x21, x22, [sp, #16]\n"
        "    ldp x23, x24, [sp, #32]\n"
        "    ldp x25, x26, [sp, #48]\n"
        "    ldp x27, x28, [sp, #64]\n"
        "    ldp x29, x30, [sp, #80]\n"
        "    ldp d8, d9, [sp, #96]\n"
        "    ldp d10, d11, [sp, #112]\n"
        "    ldp d12, d13, [sp, #128]\n"
        "    ldp d14, d15, [sp, #144]\n"
        "    add sp, sp, #160\n"
        "    ret\n"
#ifdef __ELF__
        ".size lp2p__coro_switch, .-lp2p__coro_switch\n"
        ".type lp2p__coro_boot,%function\n"
#endif
        "lp2p__coro_boot:\n"
        "    mov x0, x19\n"
        "    blr x20\n"
        "    brk #0\n"
#ifdef __ELF__
        ".size lp2p__coro_boot, .-lp2p__coro_boot\n"
#endif
);

static void lp2p__coro_init(lp2p__coro *c, void *lo, size_t size, void (*entry)(void *), void *arg) {
    uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
    uint64_t *f = (uint64_t *)(top - 160); /* after the frame is popped, sp = top (aligned) */
    memset(f, 0, 160);
    f[0] = (uint64_t)(uintptr_t)arg;             /* x19 */
    f[1] = (uint64_t)(uintptr_t)entry;           /* x20 */
    f[11] = (uint64_t)(uintptr_t)lp2p__coro_boot; /* x30: where `ret` goes; x29 = 0 ends backtraces */
    c->sp = f;
}
static inline void lp2p__coro_jump(lp2p__coro *from, lp2p__coro *to) { lp2p__coro_switch(&from->sp, to->sp); }

#else
/* ---- 2c. ucontext fallback (portable, ~30x slower: swapcontext makes a sigprocmask syscall) ---- */
/* makecontext passes only ints: the entry and its argument travel as 32-bit halves */
static void lp2p__uc_boot(unsigned f_hi, unsigned f_lo, unsigned a_hi, unsigned a_lo) {
    void (*entry)(void *) = (void (*)(void *))(uintptr_t)(((uint64_t)f_hi << 32) | f_lo);
    entry((void *)(uintptr_t)(((uint64_t)a_hi << 32) | a_lo));
}
static void lp2p__coro_init(lp2p__coro *c, void *lo, size_t size, void (*entry)(void *), void *arg) {
    uint64_t f = (uint64_t)(uintptr_t)entry, a = (uint64_t)(uintptr_t)arg;
    getcontext(&c->uc);
    c->uc.uc_stack.ss_sp = lo;
    c->uc.uc_stack.ss_size = size;
    c->uc.uc_link = NULL;
    makecontext(&c->uc, (void (*)(void))lp2p__uc_boot, 4, (unsigned)(f >> 32), (unsigned)(f & 0xffffffffu),
                (unsigned)(a >> 32), (unsigned)(a & 0xffffffffu));
}
static inline void lp2p__coro_jump(lp2p__coro *from, lp2p__coro *to) { swapcontext(&from->uc, &to->uc); }
#endif

/* ==== 3. data structures ==================================================================== */
enum { LP2P__T_FREE, LP2P__T_READY, LP2P__T_RUNNING, LP2P__T_PARKED, LP2P__T_DEAD };

#define LP2P__IDX_BITS 20
#define LP2P__IDX_MASK ((1u << LP2P__IDX_BITS) - 1)
#define LP2P__GEN_MASK ((1u << (32 - LP2P__IDX_BITS)) - 1)
#define LP2P__NONE UINT32_MAX
#define LP2P__STACK_POOL 64     /* stacks kept mapped for reuse */
#define LP2P__FREE_ROUNDS 4096  /* sched_free gives up on tasks still running after this */
#define LP2P__RD 1
#define LP2P__WR 2

/* What a parked task (or a main() pump) waits on. Lives on the waiter's stack. */
struct lp2p__waiter {
    lp2p__waiter *next, *prev; /* links in q */
    lp2p__waitq *q;            /* queue it is linked in, or NULL */
    lp2p__sched *fd_sched;     /* fd wait: scheduler whose fd table points at it, or NULL */
    int fd, dir;
    lp2p__task *task; /* NULL: a main() pump waiter */
    int rc, done;
};

struct lp2p__task {
    lp2p__coro ctx;
    lp2p__sched *sched;
    void (*fn)(void *);
    void *arg;
    void *stack;         /* mmap base: guard page, then stack_size usable bytes */
    lp2p__task *run_next;
    lp2p__waiter *w;     /* while parked */
    lp2p__waitq joiners; /* lp2p__task_join waiters, woken when fn returns */
    int64_t deadline;    /* valid while heap_idx >= 0 */
    int heap_idx;
    int timeout_rc; /* what a timer expiry returns: ERR_TIMEOUT, or OK for sleep */
    uint32_t idx, gen, epoch, free_next;
    uint8_t state, canceled;
};

typedef struct lp2p__fdent {
    lp2p__waiter *rd, *wr;
    int pidx;           /* poll(): index in the waiting set, -1 when absent */
    uint8_t registered; /* lp2p__fd_add done */
    uint8_t ready;      /* RD/WR edges seen while nobody waited */
} lp2p__fdent;

typedef struct lp2p__post {
    struct lp2p__post *next;
    void (*fn)(void *);
    void *arg;
} lp2p__post;

struct lp2p__sched {
    lp2p__ctx *ctx;
    lp2p__coro loop; /* the context tasks switch back to */
    size_t stack_size, page;
    int max_tasks, live, freeing;
    uint32_t epoch;
    /* task slots: records are allocated once per slot and reused */
    lp2p__task **slots;
    uint32_t nslots, capslots, free_head, free_tail;
    void *pool[LP2P__STACK_POOL];
    int npool;
    lp2p__task *rq_head, *rq_tail;
    lp2p__task **heap; /* min-heap on deadline; capacity >= capslots, so pushes never fail */
    int nheap;
    lp2p__fdent *fds;
    int nfds;
#if LP2P__EPOLL
    int epfd;
#else
    int *wfds; /* fds with a waiter: the poll() set */
    int nw, capw;
    struct pollfd *pfds;
    int cappfds;
#endif
    int wake_rd, wake_wr, wake_is_eventfd;
    pthread_mutex_t mu; /* guards posts */
    lp2p__post *posts_head, *posts_tail;
    int stop; /* atomic */
    lp2p__sched *tnext, *tprev; /* schedulers created on this thread */
    lp2p__sched **towner;
};

/* The thread-local state (DESIGN.md §2: the only non-host state besides the clock). */
static LP2P__TLS lp2p__task *lp2p__tls_cur;     /* task running now */
static LP2P__TLS int lp2p__tls_depth;           /* > 0 while inside lp2p__sched_poll */
static LP2P__TLS lp2p__sched *lp2p__tls_scheds; /* every scheduler created on this thread */
static LP2P__TLS unsigned lp2p__tls_ver;        /* bumped when that list changes */

static void lp2p__task_main(void *p);
static void lp2p__waiter_fire(lp2p__waiter *w, int rc);

/* ==== 4. stacks and task records ============================================================ */
static void *lp2p__stack_get(lp2p__sched *s) {
    if (s->npool) return s->pool[--s->npool];
    size_t total = s->stack_size + s->page;
    void *p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (p == MAP_FAILED) return NULL;
    if (mprotect(p, s->page, PROT_NONE) != 0) { /* the guard page: an overflow faults here */
        munmap(p, total);
        return NULL;
    }
    return p;
}

static void lp2p__stack_put(lp2p__sched *s, void *p) {
    if (!p) return;
    if (s->npool < LP2P__STACK_POOL && !s->freeing) s->pool[s->npool++] = p;
    else munmap(p, s->stack_size + s->page);
}

static lp2p_task lp2p__handle(const lp2p__task *t) {
    lp2p_task h;
    h.id = (t->gen << LP2P__IDX_BITS) | (t->idx + 1);
    return h;
}

static lp2p__task *lp2p__lookup(lp2p__sched *s, lp2p_task h) {
    uint32_t i = (h.id & LP2P__IDX_MASK);
    if (!s || i == 0 || i > s->nslots) return NULL;
    lp2p__task *t = s->slots[i - 1];
    if (t->state == LP2P__T_FREE || t->state == LP2P__T_DEAD || t->gen != h.id >> LP2P__IDX_BITS) return NULL;
    return t;
}

static int lp2p__slots_grow(lp2p__sched *s) {
    uint32_t cap = s->capslots ? s->capslots * 2 : 64;
    lp2p__task **sl = (lp2p__task **)lp2p__alloc(s->ctx, cap * sizeof *sl);
    lp2p__task **hp = (lp2p__task **)lp2p__alloc(s->ctx, cap * sizeof *hp);
    if (!sl || !hp) {
        lp2p__free(s->ctx, sl, cap * sizeof *sl);
        lp2p__free(s->ctx, hp, cap * sizeof *hp);
        return LP2P_ERR_NOMEM;
    }
    if (s->nslots) memcpy(sl, s->slots, s->nslots * sizeof *sl);
    if (s->nheap) memcpy(hp, s->heap, (size_t)s->nheap * sizeof *hp);
    lp2p__free(s->ctx, s->slots, s->capslots * sizeof *sl);
    lp2p__free(s->ctx, s->heap, s->capslots * sizeof *hp);
    s->slots = sl, s->heap = hp, s->capslots = cap;
    return LP2P_OK;
}

/* A free task record: the oldest freed slot first (spreads generation use), else a new one. */
static lp2p__task *lp2p__slot_get(lp2p__sched *s) {
    if (s->free_head != LP2P__NONE) {
        lp2p__task *t = s->slots[s->free_head];
        s->free_head = t->free_next;
        if (s->free_head == LP2P__NONE) s->free_tail = LP2P__NONE;
        return t;
    }
    if (s->nslots >= LP2P__IDX_MASK) return NULL;
    if (s->nslots == s->capslots && lp2p__slots_grow(s) != LP2P_OK) return NULL;
    lp2p__task *t = (lp2p__task *)lp2p__zalloc(s->ctx, sizeof *t);
    if (!t) return NULL;
    t->idx = s->nslots;
    t->heap_idx = -1;
    s->slots[s->nslots++] = t;
    return t;
}

static void lp2p__slot_put(lp2p__sched *s, lp2p__task *t) {
    t->state = LP2P__T_FREE;
    t->free_next = LP2P__NONE;
    if (s->free_tail == LP2P__NONE) s->free_head = t->idx;
    else s->slots[s->free_tail]->free_next = t->idx;
    s->free_tail = t->idx;
}

/* After the task's function returned (we are back on the loop's stack). */
static void lp2p__task_release(lp2p__sched *s, lp2p__task *t) {
    lp2p__stack_put(s, t->stack);
    t->stack = NULL;
    t->gen = (t->gen + 1) & LP2P__GEN_MASK;
    t->canceled = 0;
    t->fn = NULL;
    t->arg = NULL;
    t->w = NULL;
    lp2p__slot_put(s, t);
    s->live--;
}

/* ==== 5. run queue, timer heap, waiters ===================================================== */
static void lp2p__make_ready(lp2p__task *t) {
    lp2p__sched *s = t->sched;
    t->state = LP2P__T_READY;
    t->run_next = NULL;
    if (s->rq_tail) s->rq_tail->run_next = t;
    else s->rq_head = t;
    s->rq_tail = t;
}

static void lp2p__heap_set(lp2p__sched *s, int i, lp2p__task *t) {
    s->heap[i] = t;
    t->heap_idx = i;
}

static void lp2p__heap_up(lp2p__sched *s, int i) {
    lp2p__task *t = s->heap[i];
    while (i > 0) {
        int p = (i - 1) / 2;
        if (s->heap[p]->deadline <= t->deadline) break;
        lp2p__heap_set(s, i, s->heap[p]);
        i = p;
    }
    lp2p__heap_set(s, i, t);
}

static void lp2p__heap_down(lp2p__sched *s, int i) {
    lp2p__task *t = s->heap[i];
    for (;;) {
        int c = 2 * i + 1;
        if (c >= s->nheap) break;
        if (c + 1 < s->nheap && s->heap[c + 1]->deadline < s->heap[c]->deadline) c++;
        if (t->deadline <= s->heap[c]->deadline) break;
        lp2p__heap_set(s, i, s->heap[c]);
        i = c;
    }
    lp2p__heap_set(s, i, t);
}

static void lp2p__heap_push(lp2p__sched *s, lp2p__task *t) {
    s->heap[s->nheap] = t;
    t->heap_idx = s->nheap++;
    lp2p__heap_up(s, t->heap_idx);
}

static void lp2p__heap_remove(lp2p__sched *s, lp2p__task *t) {
    int i = t->heap_idx;
    t->heap_idx = -1;
    lp2p__task *last = s->heap[--s->nheap];
    if (i == s->nheap) return;
    lp2p__heap_set(s, i, last);
    lp2p__heap_up(s, i);
    lp2p__heap_down(s, last->heap_idx);
}

/* ms until the earliest timer (0 if due), or -1 without timers */
static int lp2p__timer_ms(lp2p__sched *s) {
    if (!s->nheap) return -1;
    int64_t left = s->heap[0]->deadline - lp2p_now();
    return left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
}

static int lp2p__min_timeout(int a, int b) { return a < 0 ? b : b < 0 ? a : LP2P__MIN(a, b); }

static void lp2p__fire_timers(lp2p__sched *s) {
    int64_t now = s->nheap ? lp2p_now() : 0;
    while (s->nheap && s->heap[0]->deadline <= now) {
        lp2p__task *t = s->heap[0];
        lp2p__heap_remove(s, t);
        lp2p__waiter_fire(t->w, t->timeout_rc);
    }
}

static void lp2p__pollset_del(lp2p__sched *s, int fd);

/* Unlink a waiter from whatever it waits on (queue, fd slot). */
static void lp2p__waiter_detach(lp2p__waiter *w) {
    if (w->q) {
        if (w->prev) w->prev->next = w->next;
        else w->q->head = w->next;
        if (w->next) w->next->prev = w->prev;
        else w->q->tail = w->prev;
        w->q = NULL;
        w->next = w->prev = NULL;
    }
    if (w->fd_sched) {
        lp2p__fdent *e = &w->fd_sched->fds[w->fd];
        if (e->rd == w) e->rd = NULL;
        if (e->wr == w) e->wr = NULL;
        if (!e->rd && !e->wr) lp2p__pollset_del(w->fd_sched, w->fd);
        w->fd_sched = NULL;
    }
}

/* End a wait with rc: the single exit of every park. Runs no task code. */
static void lp2p__waiter_fire(lp2p__waiter *w, int rc) {
    if (!w || w->done) return;
    w->done = 1;
    w->rc = rc;
    lp2p__waiter_detach(w);
    lp2p__task *t = w->task;
    if (t) {
        if (t->heap_idx >= 0) lp2p__heap_remove(t->sched, t);
        t->w = NULL;
        lp2p__make_ready(t);
    }
}

static void lp2p__waitq_link(lp2p__waitq *q, lp2p__waiter *w) {
    w->q = q;
    w->next = NULL;
    w->prev = q->tail;
    if (q->tail) q->tail->next = w;
    else q->head = w;
    q->tail = w;
}

/* ==== 6. poller ============================================================================= */
static int lp2p__fd_table(lp2p__sched *s, int fd) {
    if (fd < s->nfds) return LP2P_OK;
    int n = s->nfds ? s->nfds : 64;
    while (n <= fd) n *= 2;
    lp2p__fdent *f = (lp2p__fdent *)lp2p__realloc(s->ctx, s->fds, (size_t)s->nfds * sizeof *f, (size_t)n * sizeof *f);
    if (!f) return LP2P_ERR_NOMEM;
    memset(f + s->nfds, 0, (size_t)(n - s->nfds) * sizeof *f);
    for (int i = s->nfds; i < n; i++) f[i].pidx = -1;
    s->fds = f;
    s->nfds = n;
    return LP2P_OK;
}

/* An edge on fd: wake its waiter, or remember it for the next wait_fd. */
static void lp2p__fd_event(lp2p__sched *s, int fd, int in, int out) {
    if (fd < 0 || fd >= s->nfds) return;
    lp2p__fdent *e = &s->fds[fd];
    if (in) {
        if (e->rd) lp2p__waiter_fire(e->rd, LP2P_OK);
        else e->ready |= LP2P__RD;
    }
    if (out) {
        if (e->wr) lp2p__waiter_fire(e->wr, LP2P_OK);
        else e->ready |= LP2P__WR;
    }
}

static void lp2p__take_posts(lp2p__sched *s);

static void lp2p__drain_wake(lp2p__sched *s) {
    char buf[64];
    while (read(s->wake_rd, buf, s->wake_is_eventfd ? 8 : sizeof buf) > 0 && !s->wake_is_eventfd) {
    }
    lp2p__take_posts(s);
}

static void lp2p__wake_loop(lp2p__sched *s) {
    uint64_t one = 1;
    ssize_t r = write(s->wake_wr, &one, s->wake_is_eventfd ? 8 : 1); /* EAGAIN: already signaled */
    (void)r;
}

#if LP2P__EPOLL
static int lp2p__poller_init(lp2p__sched *s) {
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    return s->epfd < 0 ? LP2P_ERR_IO : LP2P_OK;
}
static void lp2p__poller_close(lp2p__sched *s) {
    if (s->epfd >= 0) close(s->epfd);
}
static int lp2p__poller_add(lp2p__sched *s, int fd) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.fd = fd;
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) == 0 || errno == EEXIST) return LP2P_OK;
    return errno == EBADF || errno == EPERM ? LP2P_ERR_INVALID : LP2P_ERR_IO;
}
static void lp2p__poller_del(lp2p__sched *s, int fd) { epoll_ctl(s->epfd, EPOLL_CTL_DEL, fd, NULL); }
static int lp2p__pollset_add(lp2p__sched *s, int fd) { return (void)s, (void)fd, LP2P_OK; }
static void lp2p__pollset_del(lp2p__sched *s, int fd) { (void)s, (void)fd; }
/* the fds a combined wait over several schedulers must watch */
static int lp2p__poller_nfds(lp2p__sched *s) { return (void)s, 1; }
static int lp2p__poller_fill(lp2p__sched *s, struct pollfd *p) {
    p->fd = s->epfd, p->events = POLLIN, p->revents = 0;
    return 1;
}
static int lp2p__io_poll(lp2p__sched *s, int timeout_ms) {
    struct epoll_event ev[128];
    int n = epoll_wait(s->epfd, ev, (int)LP2P__COUNT(ev), timeout_ms);
    if (n < 0) {
        if (errno == EINTR) return LP2P_OK;
        LP2P__WARN(s->ctx, LP2P_ERR_IO, "epoll_wait: %s", strerror(errno));
        return LP2P_ERR_IO;
    }
    for (int i = 0; i < n; i++) {
        uint32_t e = ev[i].events;
        if (ev[i].data.fd == s->wake_rd) lp2p__drain_wake(s);
        else
            lp2p__fd_event(s, ev[i].data.fd, (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0,
                           (e & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0);
    }
    return LP2P_OK;
}
#else
/* poll(): level-triggered, so only fds that have a waiter are watched (the waiting set). */
static int lp2p__poller_init(lp2p__sched *s) { return (void)s, LP2P_OK; }
static void lp2p__poller_close(lp2p__sched *s) {
    lp2p__free(s->ctx, s->wfds, (size_t)s->capw * sizeof *s->wfds);
    lp2p__free(s->ctx, s->pfds, (size_t)s->cappfds * sizeof *s->pfds);
}
static int lp2p__poller_add(lp2p__sched *s, int fd) {
    (void)s;
    return fcntl(fd, F_GETFD) < 0 ? LP2P_ERR_INVALID : LP2P_OK;
}
static void lp2p__poller_del(lp2p__sched *s, int fd) { (void)s, (void)fd; }
static int lp2p__pollset_add(lp2p__sched *s, int fd) {
    lp2p__fdent *e = &s->fds[fd];
    if (e->pidx >= 0) return LP2P_OK;
    if (s->nw == s->capw) {
        int cap = s->capw ? s->capw * 2 : 16;
        int *w = (int *)lp2p__realloc(s->ctx, s->wfds, (size_t)s->capw * sizeof *w, (size_t)cap * sizeof *w);
        if (!w) return LP2P_ERR_NOMEM;
        s->wfds = w, s->capw = cap;
    }
    e->pidx = s->nw;
    s->wfds[s->nw++] = fd;
    return LP2P_OK;
}
static void lp2p__pollset_del(lp2p__sched *s, int fd) {
    lp2p__fdent *e = &s->fds[fd];
    if (e->pidx < 0) return;
    int last = s->wfds[--s->nw];
    s->wfds[e->pidx] = last;
    s->fds[last].pidx = e->pidx;
    e->pidx = -1;
}
static int lp2p__poller_nfds(lp2p__sched *s) { return 1 + s->nw; }
static int lp2p__poller_fill(lp2p__sched *s, struct pollfd *p) {
    p[0].fd = s->wake_rd, p[0].events = POLLIN, p[0].revents = 0;
    for (int i = 0; i < s->nw; i++) {
        lp2p__fdent *e = &s->fds[s->wfds[i]];
        p[i + 1].fd = s->wfds[i];
        p[i + 1].events = (short)((e->rd ? POLLIN : 0) | (e->wr ? POLLOUT : 0));
        p[i + 1].revents = 0;
    }
    return 1 + s->nw;
}
static int lp2p__io_poll(lp2p__sched *s, int timeout_ms) {
    int n = lp2p__poller_nfds(s);
    if (n > s->cappfds) {
        struct pollfd *p = (struct pollfd *)lp2p__realloc(s->ctx, s->pfds, (size_t)s->cappfds * sizeof *p, (size_t)n * 2 * sizeof *p);
        if (!p) return LP2P_ERR_NOMEM;
        s->pfds = p, s->cappfds = n * 2;
    }
    lp2p__poller_fill(s, s->pfds);
    int r = poll(s->pfds, (nfds_t)n, timeout_ms);
    if (r < 0) {
        if (errno == EINTR) return LP2P_OK;
        LP2P__WARN(s->ctx, LP2P_ERR_IO, "poll: %s", strerror(errno));
        return LP2P_ERR_IO;
    }
    for (int i = 1; i < n && r > 0; i++) {
        short re = s->pfds[i].revents;
        if (re)
            lp2p__fd_event(s, s->pfds[i].fd, (re & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) != 0,
                           (re & (POLLOUT | POLLHUP | POLLERR | POLLNVAL)) != 0);
    }
    if (s->pfds[0].revents) lp2p__drain_wake(s);
    return LP2P_OK;
}
#endif

/* The fd that wakes a blocked poller from another thread: eventfd, else a pipe. */
static int lp2p__wake_init(lp2p__sched *s) {
    s->wake_rd = s->wake_wr = -1;
#if LP2P__EPOLL
    s->wake_rd = s->wake_wr = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->wake_rd >= 0) s->wake_is_eventfd = 1;
#endif
    if (s->wake_rd < 0) {
        int p[2];
        if (pipe(p) != 0) return LP2P_ERR_IO;
        for (int i = 0; i < 2; i++) {
            fcntl(p[i], F_SETFL, fcntl(p[i], F_GETFL) | O_NONBLOCK);
            fcntl(p[i], F_SETFD, FD_CLOEXEC);
        }
        s->wake_rd = p[0], s->wake_wr = p[1];
    }
#if LP2P__EPOLL
    return lp2p__poller_add(s, s->wake_rd);
#else
    return LP2P_OK;
#endif
}

/* ==== 7. scheduler ========================================================================== */
LP2P__PRIV lp2p__ctx *lp2p__sched_ctx(lp2p__sched *s) { return s->ctx; }

static void lp2p__tls_link(lp2p__sched *s) {
    s->towner = &lp2p__tls_scheds;
    s->tprev = NULL;
    s->tnext = lp2p__tls_scheds;
    if (s->tnext) s->tnext->tprev = s;
    lp2p__tls_scheds = s;
    lp2p__tls_ver++;
}

static void lp2p__tls_unlink(lp2p__sched *s) {
    if (!s->towner) return;
    if (s->towner != &lp2p__tls_scheds)
        LP2P__WARN(s->ctx, LP2P_ERR_INVALID, "scheduler freed on another thread than the one that created it");
    if (s->tprev) s->tprev->tnext = s->tnext;
    else *s->towner = s->tnext;
    if (s->tnext) s->tnext->tprev = s->tprev;
    s->towner = NULL;
    lp2p__tls_ver++;
}

LP2P__PRIV int lp2p__sched_new(lp2p__ctx *ctx, const lp2p__sched_cfg *cfg, lp2p__sched **out) {
    lp2p__sched *s = (lp2p__sched *)lp2p__zalloc(ctx, sizeof *s);
    if (!s) return LP2P_ERR_NOMEM;
    long pg = sysconf(_SC_PAGESIZE);
    s->ctx = ctx;
    s->page = pg > 0 ? (size_t)pg : 4096;
    size_t want = cfg && cfg->stack_size ? cfg->stack_size : 64 * 1024;
    if (want < 16 * 1024) want = 16 * 1024;
    s->stack_size = (want + s->page - 1) / s->page * s->page;
    s->max_tasks = cfg && cfg->max_tasks > 0 ? cfg->max_tasks : 65536;
    if (s->max_tasks > (int)LP2P__IDX_MASK - 1) s->max_tasks = (int)LP2P__IDX_MASK - 1;
    s->free_head = s->free_tail = LP2P__NONE;
    s->epoch = 1;
#if LP2P__EPOLL
    s->epfd = -1;
#endif
    s->wake_rd = s->wake_wr = -1;
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        lp2p__free(ctx, s, sizeof *s);
        return LP2P_ERR_IO;
    }
    int rc = lp2p__poller_init(s);
    if (rc == LP2P_OK) rc = lp2p__wake_init(s);
    if (rc != LP2P_OK) {
        LP2P__ERROR(ctx, rc, "scheduler: cannot create poller or wake fd: %s", strerror(errno));
        lp2p__poller_close(s);
        if (s->wake_rd >= 0) close(s->wake_rd);
        if (s->wake_wr >= 0 && s->wake_wr != s->wake_rd) close(s->wake_wr);
        pthread_mutex_destroy(&s->mu);
        lp2p__free(ctx, s, sizeof *s);
        return rc;
    }
    lp2p__tls_link(s);
    *out = s;
    return LP2P_OK;
}

/* Resume t until it parks, yields or ends. Nests safely: a task of one scheduler may free
 * another, which resumes that one's tasks from inside the first task. */
static void lp2p__resume(lp2p__sched *s, lp2p__task *t) {
    lp2p__task *prev = lp2p__tls_cur;
    t->state = LP2P__T_RUNNING;
    t->epoch = s->epoch;
    lp2p__tls_cur = t;
    lp2p__coro_jump(&s->loop, &t->ctx);
    lp2p__tls_cur = prev;
    if (t->state == LP2P__T_DEAD) lp2p__task_release(s, t);
}

/* Resume each task ready now once; tasks already resumed in this poll call wait for the next. */
static int lp2p__run_ready(lp2p__sched *s) {
    lp2p__task *t = s->rq_head;
    int n = 0;
    s->rq_head = s->rq_tail = NULL;
    while (t) {
        lp2p__task *next = t->run_next;
        t->run_next = NULL;
        if (t->epoch == s->epoch) lp2p__make_ready(t);
        else lp2p__resume(s, t), n++;
        t = next;
    }
    return n;
}

LP2P__PRIV int lp2p__sched_poll(lp2p__sched *s, int timeout_ms) {
    if (lp2p__tls_cur || lp2p__tls_depth || s->ctx->in_logger) return LP2P_ERR_WOULDBLOCK;
    lp2p__tls_depth++;
    if (++s->epoch == 0) s->epoch = 1; /* 0 is "never resumed" */
    int n = lp2p__run_ready(s);
    int to = timeout_ms;
    if (s->rq_head || __atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) to = 0;
    else to = lp2p__min_timeout(to, lp2p__timer_ms(s));
    int rc = lp2p__io_poll(s, to);
    lp2p__fire_timers(s);
    n += lp2p__run_ready(s);
    lp2p__tls_depth--;
    return rc < 0 ? rc : n;
}

LP2P__PRIV int lp2p__sched_run(lp2p__sched *s) {
    if (lp2p__tls_cur || lp2p__tls_depth) return LP2P_ERR_WOULDBLOCK;
    while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
        int rc = lp2p__sched_poll(s, -1);
        if (rc < 0) return rc; /* the poller failed (logged) */
    }
    __atomic_store_n(&s->stop, 0, __ATOMIC_RELEASE); /* consumed: the next run loops again */
    return LP2P_OK;
}

LP2P__PRIV void lp2p__sched_stop(lp2p__sched *s) {
    __atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
    lp2p__wake_loop(s);
}

/* Thread-safe; the allocator must then be thread-safe too (the default malloc is). */
LP2P__PRIV int lp2p__sched_post(lp2p__sched *s, void (*fn)(void *), void *arg) {
    if (!fn) return LP2P_ERR_INVALID;
    lp2p__post *p = (lp2p__post *)lp2p__alloc(s->ctx, sizeof *p);
    if (!p) return LP2P_ERR_NOMEM;
    p->next = NULL, p->fn = fn, p->arg = arg;
    pthread_mutex_lock(&s->mu);
    if (s->posts_tail) s->posts_tail->next = p;
    else s->posts_head = p;
    s->posts_tail = p;
    pthread_mutex_unlock(&s->mu);
    lp2p__wake_loop(s);
    return LP2P_OK;
}

static void lp2p__take_posts(lp2p__sched *s) {
    pthread_mutex_lock(&s->mu);
    lp2p__post *p = s->posts_head;
    s->posts_head = s->posts_tail = NULL;
    pthread_mutex_unlock(&s->mu);
    while (p) {
        lp2p__post *next = p->next;
        if (lp2p__spawn(s, p->fn, p->arg).id == 0)
            LP2P__ERROR(s->ctx, LP2P_ERR_LIMIT, "posted callback dropped: cannot start a task for it");
        lp2p__free(s->ctx, p, sizeof *p);
        p = next;
    }
}

/* Cancel everything and resume until all tasks returned, at most LP2P__FREE_ROUNDS rounds. */
static void lp2p__sched_drain(lp2p__sched *s) {
    for (uint32_t i = 0; i < s->nslots; i++) {
        lp2p__task *t = s->slots[i];
        if (t->state == LP2P__T_FREE || t->state == LP2P__T_DEAD) continue;
        t->canceled = 1;
        if (t->state == LP2P__T_PARKED) lp2p__waiter_fire(t->w, LP2P_ERR_CANCELED);
    }
    for (int i = 0; i < s->nfds; i++) { /* tasks of other schedulers parked on our fds */
        if (s->fds[i].rd) lp2p__waiter_fire(s->fds[i].rd, LP2P_ERR_CLOSED);
        if (s->fds[i].wr) lp2p__waiter_fire(s->fds[i].wr, LP2P_ERR_CLOSED);
    }
    for (int round = 0; s->live > 0 && s->rq_head && round < LP2P__FREE_ROUNDS; round++) {
        if (++s->epoch == 0) s->epoch = 1;
        lp2p__run_ready(s);
    }
    if (s->live > 0)
        LP2P__ERROR(s->ctx, LP2P_ERR_CANCELED, "sched_free: %d task(s) still running after cancel; abandoning them",
                    s->live);
}

LP2P__PRIV void lp2p__sched_free(lp2p__sched *s) {
    if (!s) return;
    if ((lp2p__tls_cur && lp2p__tls_cur->sched == s) || (!lp2p__tls_cur && lp2p__tls_depth)) {
        LP2P__ERROR(s->ctx, LP2P_ERR_WOULDBLOCK, "sched_free called from inside its own loop; ignored");
        return;
    }
    s->freeing = 1;
    lp2p__sched_drain(s);
    for (uint32_t i = 0; i < s->nslots; i++) {
        lp2p__task *t = s->slots[i];
        if (t->state != LP2P__T_FREE) { /* abandoned: forget its waits, tell its joiners */
            if (t->w) lp2p__waiter_detach(t->w);
            t->gen = (t->gen + 1) & LP2P__GEN_MASK;
            t->state = LP2P__T_FREE;
            lp2p__waitq_wake_all(s, &t->joiners);
        }
        if (t->stack) munmap(t->stack, s->stack_size + s->page);
        lp2p__free(s->ctx, t, sizeof *t);
    }
    while (s->npool) munmap(s->pool[--s->npool], s->stack_size + s->page);
    lp2p__free(s->ctx, s->slots, s->capslots * sizeof *s->slots);
    lp2p__free(s->ctx, s->heap, s->capslots * sizeof *s->heap);
    lp2p__free(s->ctx, s->fds, (size_t)s->nfds * sizeof *s->fds);
    for (lp2p__post *p = s->posts_head, *next; p; p = next) { /* posted but never run: dropped */
        next = p->next;
        lp2p__free(s->ctx, p, sizeof *p);
    }
    lp2p__poller_close(s);
    if (s->wake_rd >= 0) close(s->wake_rd);
    if (s->wake_wr >= 0 && s->wake_wr != s->wake_rd) close(s->wake_wr);
    pthread_mutex_destroy(&s->mu);
    lp2p__tls_unlink(s);
    lp2p__free(s->ctx, s, sizeof *s);
}

/* ==== 8. waiting outside tasks: pump every scheduler of this thread ========================= */
/* Block until any scheduler of this thread has work: one poll() over their pollers (an epoll
 * fd is readable when it has events), bounded by the earliest timer and the deadline. */
static void lp2p__pump_block(int64_t deadline) {
    struct pollfd local[32], *p = local;
    int n = 0, to = lp2p__deadline_ms(deadline);
    lp2p__ctx *actx = NULL;
    for (lp2p__sched *x = lp2p__tls_scheds; x; x = x->tnext) {
        n += lp2p__poller_nfds(x);
        to = lp2p__min_timeout(to, lp2p__timer_ms(x));
        if (!actx) actx = x->ctx;
    }
    if (n > (int)LP2P__COUNT(local)) {
        p = (struct pollfd *)lp2p__alloc(actx, (size_t)n * sizeof *p);
        if (!p) { /* degrade: watch what fits, wake up often */
            p = local, n = (int)LP2P__COUNT(local);
            to = lp2p__min_timeout(to, 10);
        }
    }
    int k = 0;
    for (lp2p__sched *x = lp2p__tls_scheds; x && k + lp2p__poller_nfds(x) <= n; x = x->tnext) k += lp2p__poller_fill(x, p + k);
    if (poll(p, (nfds_t)k, to) < 0 && errno != EINTR) to = 0;
    if (p != local) lp2p__free(actx, p, (size_t)n * sizeof *p);
}

/* Run the loops until w fires or the deadline passes (then timeout_rc). */
static int lp2p__pump(lp2p__waiter *w, int64_t deadline, int timeout_rc) {
    for (;;) {
        int busy = 0;
        unsigned ver = lp2p__tls_ver;
        for (lp2p__sched *x = lp2p__tls_scheds; x; x = x->tnext) {
            lp2p__sched_poll(x, 0);
            if (w->done) return w->rc;
            if (ver != lp2p__tls_ver) { /* a task created or freed a scheduler: start over */
                busy = 1;
                break;
            }
            if (x->rq_head) busy = 1;
        }
        if (deadline > 0 && lp2p_now() >= deadline) break;
        if (!busy) lp2p__pump_block(deadline);
        if (w->done) return w->rc;
    }
    w->done = 1;
    lp2p__waiter_detach(w);
    return timeout_rc;
}

/* ==== 9. waits, tasks, mutex ================================================================ */
/* A canceled task's waits return ERR_CANCELED, but still pass through the run queue once, so
 * a task that ignores the error cannot spin without ever giving the loop control back. */
static int lp2p__switch_out(lp2p__task *t) {
    lp2p__coro_jump(&t->ctx, &t->sched->loop);
    return LP2P_OK;
}

static int lp2p__canceled_yield(lp2p__task *t) {
    lp2p__make_ready(t);
    lp2p__switch_out(t);
    return LP2P_ERR_CANCELED;
}

/* May the caller wait at all? Returns 1, or 0 with *rc set (WOULDBLOCK / CANCELED). */
static int lp2p__wait_allowed(lp2p__sched *s, int *rc) {
    lp2p__task *t = lp2p__tls_cur;
    if (s->ctx->in_logger || (!t && lp2p__tls_depth)) {
        *rc = LP2P_ERR_WOULDBLOCK;
        return 0;
    }
    if (t && t->canceled) {
        *rc = lp2p__canceled_yield(t);
        return 0;
    }
    return 1;
}

static int lp2p__expired(int64_t deadline) { return deadline == 0 || (deadline > 0 && deadline <= lp2p_now()); }

/* Park the current task on w, or pump the loops when called outside any task. */
static int lp2p__wait(lp2p__waiter *w, int64_t deadline, int timeout_rc) {
    lp2p__task *t = lp2p__tls_cur;
    if (!t) return lp2p__pump(w, deadline, timeout_rc);
    w->task = t;
    t->w = w;
    t->timeout_rc = timeout_rc;
    if (deadline > 0) {
        t->deadline = deadline;
        lp2p__heap_push(t->sched, t);
    }
    t->state = LP2P__T_PARKED;
    lp2p__switch_out(t);
    return w->rc;
}

static void lp2p__task_main(void *p) {
    lp2p__task *t = (lp2p__task *)p;
    t->fn(t->arg);
    t->state = LP2P__T_DEAD;
    lp2p__waitq_wake_all(t->sched, &t->joiners);
    lp2p__switch_out(t); /* the loop releases the stack; never comes back */
    LP2P_ASSERT(0);
}

LP2P__PRIV lp2p_task lp2p__spawn(lp2p__sched *s, void (*fn)(void *), void *arg) {
    lp2p_task h = {0};
    if (!s || !fn) return h;
    if (s->freeing) {
        LP2P__WARN(s->ctx, LP2P_ERR_CANCELED, "spawn refused: scheduler is shutting down");
        return h;
    }
    if (s->live >= s->max_tasks) {
        LP2P__WARN(s->ctx, LP2P_ERR_LIMIT, "limit max_tasks (%d) reached: task not started", s->max_tasks);
        return h;
    }
    lp2p__task *t = lp2p__slot_get(s);
    void *stack = t ? lp2p__stack_get(s) : NULL;
    if (!stack) {
        if (t) lp2p__slot_put(s, t);
        LP2P__ERROR(s->ctx, LP2P_ERR_NOMEM, "spawn: out of memory for a task %s (%zu-byte stacks, %d live)",
                    t ? "stack" : "record", s->stack_size, s->live);
        return h;
    }
    t->sched = s;
    t->fn = fn, t->arg = arg;
    t->stack = stack;
    t->w = NULL;
    t->heap_idx = -1;
    t->canceled = 0;
    t->epoch = 0;
    t->joiners.head = t->joiners.tail = NULL;
    lp2p__coro_init(&t->ctx, (char *)stack + s->page, s->stack_size, lp2p__task_main, t);
    s->live++;
    lp2p__make_ready(t);
    return lp2p__handle(t);
}

LP2P__PRIV int lp2p__task_cancel(lp2p__sched *s, lp2p_task h) {
    lp2p__task *t = lp2p__lookup(s, h);
    if (!t) return LP2P_ERR_NOTFOUND;
    t->canceled = 1;
    if (t->state == LP2P__T_PARKED) lp2p__waiter_fire(t->w, LP2P_ERR_CANCELED);
    return LP2P_OK;
}

LP2P__PRIV bool lp2p__task_alive(lp2p__sched *s, lp2p_task h) { return lp2p__lookup(s, h) != NULL; }

LP2P__PRIV int lp2p__task_join(lp2p__sched *s, lp2p_task h, int64_t deadline) {
    uint32_t i = h.id & LP2P__IDX_MASK;
    if (i == 0 || i > s->nslots) return LP2P_ERR_NOTFOUND;
    lp2p__task *t;
    while ((t = lp2p__lookup(s, h)) != NULL) {
        if (t == lp2p__tls_cur) return LP2P_ERR_INVALID;
        int rc = lp2p__waitq_wait(s, &t->joiners, deadline);
        if (rc != LP2P_OK) return lp2p__lookup(s, h) ? rc : LP2P_OK;
    }
    return LP2P_OK;
}

LP2P__PRIV lp2p__task *lp2p__task_current(void) { return lp2p__tls_cur; }

LP2P__PRIV lp2p_task lp2p__task_self(void) {
    lp2p_task h = {0};
    return lp2p__tls_cur ? lp2p__handle(lp2p__tls_cur) : h;
}

LP2P__PRIV bool lp2p__task_canceled(void) { return lp2p__tls_cur && lp2p__tls_cur->canceled; }

LP2P__PRIV int lp2p__fd_add(lp2p__sched *s, int fd) {
    if (fd < 0) return LP2P_ERR_INVALID;
    if (lp2p__fd_table(s, fd) != LP2P_OK) return LP2P_ERR_NOMEM;
    int rc = lp2p__poller_add(s, fd);
    if (rc != LP2P_OK) {
        LP2P__WARN(s->ctx, rc, "fd_add(%d): %s", fd, strerror(errno));
        return rc;
    }
    s->fds[fd].registered = 1;
    s->fds[fd].ready = 0;
    return LP2P_OK;
}

LP2P__PRIV void lp2p__fd_del(lp2p__sched *s, int fd) {
    if (fd < 0 || fd >= s->nfds) return;
    lp2p__fdent *e = &s->fds[fd];
    if (e->rd) lp2p__waiter_fire(e->rd, LP2P_ERR_CLOSED);
    if (e->wr) lp2p__waiter_fire(e->wr, LP2P_ERR_CLOSED);
    if (e->registered) lp2p__poller_del(s, fd);
    e->registered = 0;
    e->ready = 0;
}

LP2P__PRIV int lp2p__wait_fd(lp2p__sched *s, int fd, int dir, int64_t deadline) {
    int rc;
    if (fd < 0 || (dir != LP2P__IN && dir != LP2P__OUT)) return LP2P_ERR_INVALID;
    if (!lp2p__wait_allowed(s, &rc)) return rc;
    if ((fd >= s->nfds || !s->fds[fd].registered) && (rc = lp2p__fd_add(s, fd)) != LP2P_OK) return rc;
    lp2p__fdent *e = &s->fds[fd];
    int bit = dir == LP2P__IN ? LP2P__RD : LP2P__WR;
    if (e->ready & bit) { /* an edge came while nobody waited: let the caller retry its syscall */
        e->ready &= (uint8_t)~bit;
        return LP2P_OK;
    }
    if (lp2p__expired(deadline)) return LP2P_ERR_TIMEOUT;
    lp2p__waiter **slot = dir == LP2P__IN ? &e->rd : &e->wr;
    if (*slot) return LP2P_ERR_BUSY;
    if ((rc = lp2p__pollset_add(s, fd)) != LP2P_OK) return rc;
    lp2p__waiter w;
    memset(&w, 0, sizeof w);
    w.fd_sched = s, w.fd = fd, w.dir = dir;
    *slot = &w;
    return lp2p__wait(&w, deadline, LP2P_ERR_TIMEOUT);
}

LP2P__PRIV int lp2p__sleep_until(lp2p__sched *s, int64_t deadline) {
    int rc;
    if (!lp2p__wait_allowed(s, &rc)) return rc;
    if (lp2p__expired(deadline)) return LP2P_OK;
    lp2p__waiter w;
    memset(&w, 0, sizeof w);
    return lp2p__wait(&w, deadline, LP2P_OK);
}

LP2P__PRIV int lp2p__yield(lp2p__sched *s) {
    lp2p__task *t = lp2p__tls_cur;
    if (!t) { /* outside tasks: one non-blocking round of every loop of this thread */
        if (lp2p__tls_depth || s->ctx->in_logger) return LP2P_ERR_WOULDBLOCK;
        unsigned ver = lp2p__tls_ver;
        for (lp2p__sched *x = lp2p__tls_scheds; x; x = x->tnext) {
            lp2p__sched_poll(x, 0);
            if (ver != lp2p__tls_ver) break; /* x may be gone */
        }
        return LP2P_OK;
    }
    lp2p__make_ready(t);
    lp2p__switch_out(t);
    return t->canceled ? LP2P_ERR_CANCELED : LP2P_OK;
}

LP2P__PRIV int lp2p__waitq_wait(lp2p__sched *s, lp2p__waitq *q, int64_t deadline) {
    int rc;
    if (!lp2p__wait_allowed(s, &rc)) return rc;
    if (lp2p__expired(deadline)) return LP2P_ERR_TIMEOUT;
    lp2p__waiter w;
    memset(&w, 0, sizeof w);
    lp2p__waitq_link(q, &w);
    return lp2p__wait(&w, deadline, LP2P_ERR_TIMEOUT);
}

LP2P__PRIV void lp2p__waitq_wake_one(lp2p__sched *s, lp2p__waitq *q) {
    (void)s;
    if (q->head) lp2p__waiter_fire(q->head, LP2P_OK);
}

LP2P__PRIV void lp2p__waitq_wake_all(lp2p__sched *s, lp2p__waitq *q) {
    (void)s;
    while (q->head) lp2p__waiter_fire(q->head, LP2P_OK);
}

/* Ownership is handed straight to the woken waiter, so a late locker cannot barge in. */
LP2P__PRIV int lp2p__mutex_lock(lp2p__sched *s, lp2p__mutex *m, int64_t deadline) {
    if (!m->locked) { /* not a wait: succeeds even for a canceled task (cleanup may need it) */
        m->locked = 1;
        return LP2P_OK;
    }
    return lp2p__waitq_wait(s, &m->q, deadline); /* OK: the unlocker handed it over */
}

LP2P__PRIV void lp2p__mutex_unlock(lp2p__sched *s, lp2p__mutex *m) {
    if (m->q.head) lp2p__waitq_wake_one(s, &m->q); /* stays locked: now the waiter's */
    else m->locked = 0;
}
/*==================== end src/runtime.c ====================*/
/*==================== begin src/pipe.c ====================*/
/* pipe.c - L3: helpers shared by every pipe (exact reads, length-prefixed messages).
 * Depends on: pipe.h. */
/* #include "pipe.h" (amalgamated) */

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
/*==================== end src/pipe.c ====================*/
/*==================== begin src/tcp.c ====================*/
/* tcp.c - placeholder, being written */
/*==================== end src/tcp.c ====================*/
/*==================== begin src/mss.c ====================*/
/* mss.c - placeholder, being written */
/*==================== end src/mss.c ====================*/
/*==================== begin src/proto/keys.pb.c ====================*/
/* placeholder */
/*==================== end src/proto/keys.pb.c ====================*/
/*==================== begin src/proto/noise.pb.c ====================*/
/* placeholder */
/*==================== end src/proto/noise.pb.c ====================*/
/*==================== begin src/proto/envelope.pb.c ====================*/
/* placeholder */
/*==================== end src/proto/envelope.pb.c ====================*/
/*==================== begin src/proto/peer_record.pb.c ====================*/
/* placeholder */
/*==================== end src/proto/peer_record.pb.c ====================*/
/*==================== begin src/proto/identify.pb.c ====================*/
/* placeholder */
/*==================== end src/proto/identify.pb.c ====================*/
/*==================== begin src/noise.c ====================*/
/* noise.c - placeholder, being written */
/*==================== end src/noise.c ====================*/
/*==================== begin src/yamux.c ====================*/
/* yamux.c - L4: the yamux stream multiplexer (see yamux.h for the model).
 *
 * Spec: libp2p/specs yamux/README.md (hashicorp yamux spec.md), wire-facts.md §1.7.
 * Behaviour matched to go-yamux (session.go, stream.go) and rust-yamux (connection.rs):
 *   - RST rides on a window update whose length is an error code, not a delta (go);
 *   - the SYN/ACK window update carries init_window - 256 KiB, the peer adds it to 256 KiB;
 *   - frames for streams we already dropped are discarded, not answered (go, rust #110);
 *   - unexpected pongs are ignored (rust treats them as fatal: we never send unasked pongs).
 * Memory: a stream struct is reference counted (app handle, session table, writer's dirty
 * list, operations in progress); the session likewise (owner, its three tasks, every live
 * stream), so handles outliving the session fail cleanly instead of touching freed memory.
 * Depends on: yamux.h (pipe.h, runtime.h). */
/* #include "yamux.h" (amalgamated) */

#include <stdio.h>
#include <time.h>

#define LP2P__Y_HDR 12
#define LP2P__Y_DATA 0
#define LP2P__Y_WINDOW 1
#define LP2P__Y_PING 2
#define LP2P__Y_GOAWAY 3
#define LP2P__Y_SYN 1
#define LP2P__Y_ACK 2
#define LP2P__Y_FIN 4
#define LP2P__Y_RST 8
#define LP2P__Y_SPEC_WINDOW (256u * 1024)   /* every stream starts with this (spec) */
#define LP2P__Y_WBUF (4 * 65519)            /* writer batch: four full Noise frames */
#define LP2P__Y_CTL 256                     /* queued session-level frames (pongs, refusals) */
#define LP2P__Y_SMALL 2048                  /* payloads up to this are copied via scratch */
#define LP2P__Y_CHUNK_SMALL 16384           /* chunk size that small payloads are packed into */
#define LP2P__Y_CHUNK_BIG (256u * 1024)     /* large payloads are read straight into chunks */
#define LP2P__Y_SCRATCH 16384
#define LP2P__Y_WRITE_TIMEOUT_MS 10000      /* go-yamux ConnectionWriteTimeout */
#define LP2P__Y_CLOSE_FLUSH_MS 1000         /* final flush (FINs, GoAway) after close */

typedef struct lp2p__ychunk {
    struct lp2p__ychunk *next;
    uint32_t cap, rpos, wpos;
    uint8_t data[];
} lp2p__ychunk;

struct lp2p__ystream {
    lp2p__pipe pipe; /* first: a stream is a pipe */
    lp2p__yamux *y;
    uint32_t id;
    int refs;
    bool outbound, acked, in_table, app_held, dirty, in_ready, reading, writing;
    /* control frames the writer owes the peer */
    bool syn_pending, ack_pending, fin_pending, rst_pending, wu_pending;
    bool send_closed, recv_fin;
    int rerr, werr; /* terminal error of each direction (0 = none) */
    /* receive side: the peer may still send recv_avail bytes; recv_max is the window size */
    uint32_t recv_max, recv_avail;
    size_t buffered;
    lp2p__ychunk *head, *tail;
    int64_t last_wu_us;
    lp2p__waitq rq, wq;
    /* send side */
    uint64_t send_window;
    const uint8_t *wptr; /* the parked writer's remaining bytes */
    size_t wlen;
    lp2p__ystream *dirty_next, *ready_next;
};

struct lp2p__yamux {
    lp2p__sched *s;
    lp2p__ctx *ctx;
    lp2p__pipe *pipe;
    lp2p__yamux_cfg cfg;
    int refs, pipe_users;
    bool dead, owner_gone, remote_goaway, inbound_logged;
    int dead_err, goaway_send; /* goaway_send: code to send at the final flush, -1 none */
    lp2p_task reader, writer, keepalive;
    /* stream table: open addressing, linear probing, backward-shift deletion */
    lp2p__ystream **slots;
    uint32_t cap, count;
    uint32_t next_id, max_remote_id;
    int n_inbound, n_unacked;
    uint64_t conn_window_used;
    lp2p__ystream *dirty_head, *dirty_tail, *ready_head, *ready_tail;
    uint8_t ctl[LP2P__Y_CTL][LP2P__Y_HDR];
    int ctl_head, ctl_n;
    lp2p__waitq wq_writer, wq_ctl, wq_open, wq_ping;
    bool ping_send, ping_outstanding;
    uint32_t ping_id;
    uint64_t ping_round;
    int64_t ping_sent_us, ping_last_us, rtt_us;
    int64_t last_rx_ms;
    uint8_t *wbuf, *scratch;
};

LP2P__PRIV void lp2p__ymx_fail(lp2p__yamux *y, int err, int goaway);
LP2P__PRIV const lp2p__pipe_vt *lp2p__ystream_vtable(void);

/* A peer violated the protocol: log why (WARN) and return ERR_PROTOCOL; the reader then
 * sends GoAway(1) and ends the session. */
LP2P__PRIV int lp2p__ymx_violation(lp2p__yamux *y, const char *fmt, ...) LP2P__PRINTF(2, 3);
LP2P__PRIV int lp2p__ymx_violation(lp2p__yamux *y, const char *fmt, ...) {
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    LP2P__WARN(y->ctx, LP2P_ERR_PROTOCOL, "yamux: protocol violation: %s", msg);
    return LP2P_ERR_PROTOCOL;
}

/* ---- small helpers ---------------------------------------------------------------------- */
LP2P__PRIV int64_t lp2p__ymx_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

LP2P__PRIV void lp2p__ymx_hdr(uint8_t *p, uint8_t type, uint16_t flags, uint32_t id, uint32_t len) {
    p[0] = 0, p[1] = type;
    lp2p__put_be16(p + 2, flags);
    lp2p__put_be32(p + 4, id);
    lp2p__put_be32(p + 8, len);
}

LP2P__PRIV void lp2p__ymx_wake_writer(lp2p__yamux *y) { lp2p__waitq_wake_one(y->s, &y->wq_writer); }

LP2P__PRIV void lp2p__ymx_ref(lp2p__yamux *y) { y->refs++; }

LP2P__PRIV void lp2p__ymx_unref(lp2p__yamux *y) {
    if (--y->refs > 0) return;
    LP2P_ASSERT(!y->pipe && y->count == 0);
    lp2p__ctx *ctx = y->ctx;
    lp2p__free(ctx, y->slots, (size_t)y->cap * sizeof *y->slots);
    lp2p__free(ctx, y->wbuf, LP2P__Y_WBUF);
    lp2p__free(ctx, y->scratch, LP2P__Y_SCRATCH);
    lp2p__free(ctx, y, sizeof *y);
}

/* A task that used the pipe ended: the last one closes it (never while another may be
 * parked inside a pipe call). */
LP2P__PRIV void lp2p__ymx_task_exit(lp2p__yamux *y, bool pipe_user) {
    if (pipe_user && --y->pipe_users == 0 && y->pipe) {
        lp2p__pipe *p = y->pipe;
        y->pipe = NULL;
        p->vt->close(p);
    }
    lp2p__ymx_unref(y);
}

/* ---- stream memory ---------------------------------------------------------------------- */
LP2P__PRIV void lp2p__ys_free_chunks(lp2p__ystream *st) {
    lp2p__ctx *ctx = st->y->ctx;
    while (st->head) {
        lp2p__ychunk *c = st->head;
        st->head = c->next;
        lp2p__free(ctx, c, sizeof *c + c->cap);
    }
    st->tail = NULL;
    st->buffered = 0;
}

LP2P__PRIV void lp2p__ys_unref(lp2p__ystream *st) {
    if (--st->refs > 0) return;
    lp2p__yamux *y = st->y;
    lp2p__ys_free_chunks(st);
    y->conn_window_used -= st->recv_max - LP2P__MIN(st->recv_max, y->cfg.init_window);
    lp2p__free(y->ctx, st, sizeof *st);
    lp2p__ymx_unref(y);
}

/* ---- stream table ----------------------------------------------------------------------- */
LP2P__PRIV uint32_t lp2p__ymap_slot(uint32_t id, uint32_t cap) { return (id * 2654435761u) & (cap - 1); }

LP2P__PRIV lp2p__ystream *lp2p__ymap_get(lp2p__yamux *y, uint32_t id) {
    for (uint32_t i = lp2p__ymap_slot(id, y->cap);; i = (i + 1) & (y->cap - 1)) {
        if (!y->slots[i]) return NULL;
        if (y->slots[i]->id == id) return y->slots[i];
    }
}

LP2P__PRIV void lp2p__ymap_place(lp2p__ystream **slots, uint32_t cap, lp2p__ystream *st) {
    uint32_t i = lp2p__ymap_slot(st->id, cap);
    while (slots[i]) i = (i + 1) & (cap - 1);
    slots[i] = st;
}

LP2P__PRIV int lp2p__ymap_put(lp2p__yamux *y, lp2p__ystream *st) {
    if ((y->count + 1) * 2 > y->cap) {
        uint32_t ncap = y->cap * 2;
        lp2p__ystream **ns = (lp2p__ystream **)lp2p__zalloc(y->ctx, (size_t)ncap * sizeof *ns);
        if (!ns) return LP2P_ERR_NOMEM;
        for (uint32_t i = 0; i < y->cap; i++)
            if (y->slots[i]) lp2p__ymap_place(ns, ncap, y->slots[i]);
        lp2p__free(y->ctx, y->slots, (size_t)y->cap * sizeof *y->slots);
        y->slots = ns, y->cap = ncap;
    }
    lp2p__ymap_place(y->slots, y->cap, st);
    y->count++;
    return LP2P_OK;
}

LP2P__PRIV void lp2p__ymap_del(lp2p__yamux *y, uint32_t id) {
    uint32_t mask = y->cap - 1, i = lp2p__ymap_slot(id, y->cap);
    while (y->slots[i] && y->slots[i]->id != id) i = (i + 1) & mask;
    if (!y->slots[i]) return;
    y->slots[i] = NULL;
    y->count--;
    /* shift later members of the probe run back so lookups never stop at the hole */
    for (uint32_t j = (i + 1) & mask; y->slots[j]; j = (j + 1) & mask) {
        uint32_t k = lp2p__ymap_slot(y->slots[j]->id, y->cap);
        bool movable = i <= j ? (k <= i || k > j) : (k <= i && k > j);
        if (movable) y->slots[i] = y->slots[j], y->slots[j] = NULL, i = j;
    }
}

/* Could the peer legitimately still send frames for this (no longer tracked) ID? */
LP2P__PRIV bool lp2p__ymx_seen(lp2p__yamux *y, uint32_t id) {
    bool ours = (id & 1) == (y->cfg.is_client ? 1u : 0u);
    return ours ? id < y->next_id : id <= y->max_remote_id;
}

/* Drop a stream from the table (the caller holds its own reference if it goes on). */
LP2P__PRIV void lp2p__ys_untrack(lp2p__ystream *st) {
    lp2p__yamux *y = st->y;
    if (!st->in_table) return;
    lp2p__ymap_del(y, st->id);
    st->in_table = false;
    if (!st->outbound) y->n_inbound--;
    else if (!st->acked) {
        y->n_unacked--;
        lp2p__waitq_wake_all(y->s, &y->wq_open);
    }
    lp2p__ys_unref(st);
}

LP2P__PRIV void lp2p__ys_maybe_untrack(lp2p__ystream *st) {
    if (st->in_table && st->send_closed && st->recv_fin) lp2p__ys_untrack(st);
}

/* After GoAway from the peer the session ends once its last stream is done. */
LP2P__PRIV void lp2p__ymx_check_goaway(lp2p__yamux *y) {
    if (y->remote_goaway && !y->dead && y->count == 0) lp2p__ymx_fail(y, LP2P_ERR_EOF, -1);
}

/* ---- writer queues ---------------------------------------------------------------------- */
LP2P__PRIV void lp2p__ys_mark_dirty(lp2p__ystream *st) {
    lp2p__yamux *y = st->y;
    if (st->dirty || y->dead) return;
    st->dirty = true;
    st->refs++;
    st->dirty_next = NULL;
    if (y->dirty_tail) y->dirty_tail->dirty_next = st;
    else y->dirty_head = st;
    y->dirty_tail = st;
    lp2p__ymx_wake_writer(y);
}

LP2P__PRIV lp2p__ystream *lp2p__ymx_dirty_pop(lp2p__yamux *y) {
    lp2p__ystream *st = y->dirty_head;
    if (!st) return NULL;
    y->dirty_head = st->dirty_next;
    if (!y->dirty_head) y->dirty_tail = NULL;
    st->dirty = false;
    return st;
}

LP2P__PRIV void lp2p__ys_ready_push(lp2p__ystream *st) {
    lp2p__yamux *y = st->y;
    if (st->in_ready || y->dead) return;
    st->in_ready = true;
    st->ready_next = NULL;
    if (y->ready_tail) y->ready_tail->ready_next = st;
    else y->ready_head = st;
    y->ready_tail = st;
    lp2p__ymx_wake_writer(y);
}

LP2P__PRIV void lp2p__ys_ready_remove(lp2p__ystream *st) {
    lp2p__yamux *y = st->y;
    if (!st->in_ready) return;
    lp2p__ystream **pp = &y->ready_head, *prev = NULL;
    while (*pp != st) prev = *pp, pp = &(*pp)->ready_next;
    *pp = st->ready_next;
    if (y->ready_tail == st) y->ready_tail = prev;
    st->in_ready = false;
}

/* Queue a session-level frame. The reader waits for room (the writer drains the queue);
 * pongs are dropped instead when the queue is full, as go-yamux does. */
LP2P__PRIV int lp2p__ymx_ctl_push(lp2p__yamux *y, uint8_t type, uint16_t flags, uint32_t id, uint32_t len, bool wait) {
    while (y->ctl_n == LP2P__Y_CTL) {
        if (!wait || y->dead) return LP2P_ERR_LIMIT;
        int rc = lp2p__waitq_wait(y->s, &y->wq_ctl, LP2P_FOREVER);
        if (rc < 0) return rc;
    }
    if (y->dead) return LP2P_ERR_CLOSED;
    lp2p__ymx_hdr(y->ctl[(y->ctl_head + y->ctl_n) % LP2P__Y_CTL], type, flags, id, len);
    y->ctl_n++;
    lp2p__ymx_wake_writer(y);
    return LP2P_OK;
}

/* ---- session end ------------------------------------------------------------------------ */
LP2P__PRIV void lp2p__ymx_fail(lp2p__yamux *y, int err, int goaway) {
    if (y->dead) return;
    y->dead = true;
    y->dead_err = err;
    y->goaway_send = goaway;
    int serr = err == LP2P_OK ? LP2P_ERR_CLOSED : LP2P_ERR_RESET;
    lp2p__ymx_ref(y);
    for (uint32_t i = 0; i < y->cap; i++) {
        lp2p__ystream *st = y->slots[i];
        if (!st) continue;
        y->slots[i] = NULL;
        st->in_table = false;
        if (!st->recv_fin && !st->rerr) st->rerr = serr;
        if (!st->werr) st->werr = serr;
        lp2p__waitq_wake_all(y->s, &st->rq);
        lp2p__waitq_wake_all(y->s, &st->wq);
        lp2p__ys_unref(st); /* the table's reference */
    }
    y->count = 0, y->n_inbound = 0, y->n_unacked = 0;
    while (y->ready_head) {
        lp2p__ystream *st = y->ready_head;
        y->ready_head = st->ready_next;
        st->in_ready = false;
        if (!st->werr) st->werr = serr;
        lp2p__waitq_wake_all(y->s, &st->wq);
    }
    y->ready_tail = NULL;
    lp2p__waitq_wake_all(y->s, &y->wq_open);
    lp2p__waitq_wake_all(y->s, &y->wq_ping);
    lp2p__waitq_wake_all(y->s, &y->wq_ctl);
    lp2p__waitq_wake_all(y->s, &y->wq_writer);
    lp2p_task self = lp2p__task_self();
    if (y->reader.id && self.id != y->reader.id) lp2p__task_cancel(y->s, y->reader);
    if (y->keepalive.id && self.id != y->keepalive.id) lp2p__task_cancel(y->s, y->keepalive);
    if (y->cfg.on_close) y->cfg.on_close(y->cfg.user, y, err);
    lp2p__ymx_unref(y);
}

/* ---- flow control ----------------------------------------------------------------------- */
/* Window to grant now (and account it as granted). tune: this is a plain window update, so
 * apply go-yamux's rule - if the previous update was less than 4 RTT ago the window is too
 * small for the path: double it (bounded by max_window and the session budget). */
LP2P__PRIV uint32_t lp2p__ys_grant(lp2p__yamux *y, lp2p__ystream *st, bool tune) {
    if (st->recv_fin || st->rerr || !st->app_held) return 0;
    int64_t now = lp2p__ymx_now_us();
    if (tune && y->rtt_us > 0 && now - st->last_wu_us < 4 * y->rtt_us && st->recv_max < y->cfg.max_window) {
        uint64_t grow = LP2P__MIN((uint64_t)st->recv_max * 2, (uint64_t)y->cfg.max_window) - st->recv_max;
        uint64_t left = y->cfg.max_conn_window > y->conn_window_used ? y->cfg.max_conn_window - y->conn_window_used : 0;
        grow = LP2P__MIN(grow, left);
        st->recv_max += (uint32_t)grow;
        y->conn_window_used += grow;
    }
    st->last_wu_us = now;
    uint64_t held = (uint64_t)st->recv_avail + st->buffered;
    if (held >= st->recv_max) return 0;
    uint32_t delta = (uint32_t)(st->recv_max - held);
    st->recv_avail += delta;
    return delta;
}

/* The app consumed data: owe a window update once half the window is free again (go rule). */
LP2P__PRIV void lp2p__ys_after_read(lp2p__ystream *st) {
    if (st->recv_fin || st->rerr || st->y->dead) return;
    uint64_t held = (uint64_t)st->recv_avail + st->buffered;
    if (held < st->recv_max && st->recv_max - held >= st->recv_max / 2) {
        st->wu_pending = true;
        lp2p__ys_mark_dirty(st);
    }
}

/* ---- writer task ------------------------------------------------------------------------ */
LP2P__PRIV uint16_t lp2p__ys_take_open_flags(lp2p__ystream *st) {
    uint16_t f = (uint16_t)((st->syn_pending ? LP2P__Y_SYN : 0) | (st->ack_pending ? LP2P__Y_ACK : 0));
    st->syn_pending = st->ack_pending = false;
    return f;
}

/* The control frame a dirty stream owes (0 or 12 bytes written at p). */
LP2P__PRIV size_t lp2p__ys_build_ctl(lp2p__yamux *y, lp2p__ystream *st, uint8_t *p) {
    if (st->rst_pending) {
        st->rst_pending = st->fin_pending = st->wu_pending = st->syn_pending = st->ack_pending = false;
        lp2p__ymx_hdr(p, LP2P__Y_WINDOW, LP2P__Y_RST, st->id, 0);
        return LP2P__Y_HDR;
    }
    uint16_t flags = lp2p__ys_take_open_flags(st);
    uint32_t delta = 0;
    if (flags || st->wu_pending) delta = lp2p__ys_grant(y, st, flags == 0);
    if (st->fin_pending) flags |= LP2P__Y_FIN;
    st->fin_pending = st->wu_pending = false;
    if (!flags && !delta) return 0;
    lp2p__ymx_hdr(p, LP2P__Y_WINDOW, flags, st->id, delta);
    return LP2P__Y_HDR;
}

/* Data frames round-robin over ready streams, each <= one Noise frame with its header. */
LP2P__PRIV size_t lp2p__ymx_build_data(lp2p__yamux *y, uint8_t *b, size_t n) {
    while (y->ready_head && LP2P__Y_WBUF - n > LP2P__Y_HDR) {
        lp2p__ystream *st = y->ready_head;
        size_t room = LP2P__Y_WBUF - n - LP2P__Y_HDR;
        size_t k = LP2P__MIN(LP2P__MIN(st->wlen, (size_t)st->send_window), LP2P__MIN(room, (size_t)LP2P__YAMUX_MAX_PAYLOAD));
        if (k == room && room < 4096 && k < st->wlen) break; /* no tiny tail fragments: next batch */
        y->ready_head = st->ready_next;
        if (!y->ready_head) y->ready_tail = NULL;
        st->in_ready = false;
        if (!k || st->werr) continue;
        lp2p__ymx_hdr(b + n, LP2P__Y_DATA, lp2p__ys_take_open_flags(st), st->id, (uint32_t)k);
        memcpy(b + n + LP2P__Y_HDR, st->wptr, k);
        n += LP2P__Y_HDR + k;
        st->wptr += k, st->wlen -= k, st->send_window -= k;
        if (!st->wlen) lp2p__waitq_wake_all(y->s, &st->wq);
        else if (st->send_window) lp2p__ys_ready_push(st);
    }
    return n;
}

/* One batch: our ping, pongs and refusals, stream control frames, then data (or, at the
 * final flush, GoAway instead of data). */
LP2P__PRIV size_t lp2p__ymx_build(lp2p__yamux *y, bool final) {
    uint8_t *b = y->wbuf;
    size_t n = 0;
    if (y->ping_send && !final) {
        lp2p__ymx_hdr(b, LP2P__Y_PING, LP2P__Y_SYN, 0, y->ping_id);
        n += LP2P__Y_HDR;
        y->ping_send = false, y->ping_outstanding = true;
        y->ping_sent_us = lp2p__ymx_now_us();
    }
    bool popped = y->ctl_n > 0;
    for (; y->ctl_n && n + LP2P__Y_HDR <= LP2P__Y_WBUF; y->ctl_n--) {
        memcpy(b + n, y->ctl[y->ctl_head], LP2P__Y_HDR);
        y->ctl_head = (y->ctl_head + 1) % LP2P__Y_CTL;
        n += LP2P__Y_HDR;
    }
    if (popped) lp2p__waitq_wake_all(y->s, &y->wq_ctl);
    while (y->dirty_head && n + 2 * LP2P__Y_HDR <= LP2P__Y_WBUF) {
        lp2p__ystream *st = lp2p__ymx_dirty_pop(y);
        n += lp2p__ys_build_ctl(y, st, b + n);
        lp2p__ys_unref(st);
    }
    if (!final) return lp2p__ymx_build_data(y, b, n);
    if (y->goaway_send >= 0 && n + LP2P__Y_HDR <= LP2P__Y_WBUF) {
        lp2p__ymx_hdr(b + n, LP2P__Y_GOAWAY, 0, 0, (uint32_t)y->goaway_send);
        n += LP2P__Y_HDR;
    }
    return n;
}

LP2P__PRIV bool lp2p__ymx_writer_has_work(lp2p__yamux *y) {
    return y->ping_send || y->ctl_n || y->dirty_head || y->ready_head;
}

LP2P__PRIV void lp2p__ymx_writer_main(void *arg) {
    lp2p__yamux *y = (lp2p__yamux *)arg;
    bool broken = false;
    while (!y->dead) {
        if (!lp2p__ymx_writer_has_work(y)) {
            int rc = lp2p__waitq_wait(y->s, &y->wq_writer, LP2P_FOREVER);
            if (rc < 0) {
                lp2p__ymx_fail(y, rc, -1);
                broken = true;
            }
            continue;
        }
        size_t n = lp2p__ymx_build(y, false);
        if (!n) continue;
        int rc = lp2p__pipe_write(y->pipe, y->wbuf, n, lp2p_deadline_in(LP2P__Y_WRITE_TIMEOUT_MS));
        if (rc < 0) {
            if (!y->dead) LP2P__DEBUG(y->ctx, "yamux: write failed: %s", lp2p_strerror(rc));
            lp2p__ymx_fail(y, rc, -1);
            broken = true;
        }
    }
    if (!broken && y->goaway_send >= 0) {
        size_t n = lp2p__ymx_build(y, true);
        if (n) (void)lp2p__pipe_write(y->pipe, y->wbuf, n, lp2p_deadline_in(LP2P__Y_CLOSE_FLUSH_MS));
    }
    lp2p__ystream *st;
    while ((st = lp2p__ymx_dirty_pop(y))) lp2p__ys_unref(st);
    y->ctl_n = 0;
    lp2p__ymx_task_exit(y, true);
}

/* ---- reader task: receiving data ---------------------------------------------------------- */
LP2P__PRIV int lp2p__ymx_discard(lp2p__yamux *y, uint32_t len) {
    while (len) {
        uint32_t k = LP2P__MIN(len, (uint32_t)LP2P__Y_SCRATCH);
        int rc = lp2p__pipe_read_full(y->pipe, y->scratch, k, LP2P_FOREVER);
        if (rc < 0) return rc;
        len -= k;
    }
    return LP2P_OK;
}

LP2P__PRIV bool lp2p__ys_wants_data(lp2p__ystream *st) { return st->app_held && !st->rerr && !st->y->dead; }

LP2P__PRIV void lp2p__ys_link(lp2p__ystream *st, lp2p__ychunk *c) {
    c->next = NULL;
    if (st->tail) st->tail->next = c;
    else st->head = c;
    st->tail = c;
}

/* Copy a small payload into the tail chunk's free space, then into a fresh chunk. */
LP2P__PRIV int lp2p__ys_append(lp2p__ystream *st, const uint8_t *p, size_t n) {
    lp2p__ychunk *t = st->tail;
    if (t && t->cap > t->wpos) {
        size_t k = LP2P__MIN(n, (size_t)(t->cap - t->wpos));
        memcpy(t->data + t->wpos, p, k);
        t->wpos += (uint32_t)k, p += k, n -= k, st->buffered += k;
    }
    if (!n) return LP2P_OK;
    uint32_t cap = (uint32_t)LP2P__MAX(n, (size_t)LP2P__Y_CHUNK_SMALL);
    lp2p__ychunk *c = (lp2p__ychunk *)lp2p__alloc(st->y->ctx, sizeof *c + cap);
    if (!c) return LP2P_ERR_NOMEM;
    c->cap = cap, c->rpos = 0, c->wpos = (uint32_t)n;
    memcpy(c->data, p, n);
    lp2p__ys_link(st, c);
    st->buffered += n;
    return LP2P_OK;
}

/* Read a data payload for st (counted against its window already) into its buffer. Large
 * payloads are read straight into chunks of their own size: one copy pipe -> chunk. */
LP2P__PRIV int lp2p__ys_recv_payload(lp2p__yamux *y, lp2p__ystream *st, uint32_t len) {
    if (!lp2p__ys_wants_data(st)) return lp2p__ymx_discard(y, len);
    int rc = LP2P_OK;
    while (len && rc == LP2P_OK) {
        if (len <= LP2P__Y_SMALL) {
            rc = lp2p__pipe_read_full(y->pipe, y->scratch, len, LP2P_FOREVER);
            if (rc == LP2P_OK && lp2p__ys_wants_data(st)) rc = lp2p__ys_append(st, y->scratch, len);
            break;
        }
        uint32_t k = LP2P__MIN(len, LP2P__Y_CHUNK_BIG);
        lp2p__ychunk *c = (lp2p__ychunk *)lp2p__alloc(y->ctx, sizeof *c + k);
        if (!c) return LP2P_ERR_NOMEM;
        c->cap = k, c->rpos = 0, c->wpos = k;
        rc = lp2p__pipe_read_full(y->pipe, c->data, k, LP2P_FOREVER);
        if (rc == LP2P_OK && lp2p__ys_wants_data(st)) {
            lp2p__ys_link(st, c);
            st->buffered += k;
        } else lp2p__free(y->ctx, c, sizeof *c + k);
        len -= k;
    }
    lp2p__waitq_wake_all(y->s, &st->rq);
    return rc;
}

/* ---- reader task: stream state changes from the peer ---------------------------------------- */
LP2P__PRIV void lp2p__ys_remote_fin(lp2p__ystream *st) {
    if (!st->recv_fin) {
        st->recv_fin = true;
        lp2p__waitq_wake_all(st->y->s, &st->rq);
    }
    lp2p__ys_maybe_untrack(st);
}

LP2P__PRIV void lp2p__ys_remote_reset(lp2p__ystream *st, uint32_t code) {
    lp2p__yamux *y = st->y;
    LP2P__DEBUG(y->ctx, "yamux: stream %u reset by peer (code %u)", st->id, code);
    if (!st->recv_fin) { /* abort: data not yet read is dropped (go discards it too) */
        st->rerr = LP2P_ERR_RESET;
        lp2p__ys_free_chunks(st);
    }
    if (!st->werr) st->werr = LP2P_ERR_RESET;
    st->fin_pending = st->wu_pending = st->syn_pending = st->ack_pending = false;
    lp2p__ys_ready_remove(st);
    lp2p__waitq_wake_all(y->s, &st->rq);
    lp2p__waitq_wake_all(y->s, &st->wq);
    lp2p__ys_untrack(st);
}

/* We reset a stream we still track (after close, or refusing it). */
LP2P__PRIV void lp2p__ys_send_reset(lp2p__ystream *st) {
    st->fin_pending = st->wu_pending = false;
    st->rst_pending = true;
    lp2p__ys_mark_dirty(st);
    lp2p__ys_untrack(st);
}

LP2P__PRIV void lp2p__ys_acked(lp2p__ystream *st) {
    lp2p__yamux *y = st->y;
    if (!st->outbound || st->acked) return;
    st->acked = true;
    if (st->in_table) {
        y->n_unacked--;
        lp2p__waitq_wake_all(y->s, &y->wq_open);
    }
}

LP2P__PRIV lp2p__ystream *lp2p__ys_new(lp2p__yamux *y, uint32_t id, bool outbound) {
    lp2p__ystream *st = (lp2p__ystream *)lp2p__zalloc(y->ctx, sizeof *st);
    if (!st) return NULL;
    st->pipe.vt = lp2p__ystream_vtable();
    st->y = y, st->id = id, st->outbound = outbound;
    st->recv_max = y->cfg.init_window;
    st->recv_avail = LP2P__Y_SPEC_WINDOW; /* what the peer may send before our first update */
    st->send_window = LP2P__Y_SPEC_WINDOW;
    st->last_wu_us = lp2p__ymx_now_us();
    if (lp2p__ymap_put(y, st) < 0) {
        lp2p__free(y->ctx, st, sizeof *st);
        return NULL;
    }
    lp2p__ymx_ref(y);
    st->in_table = true;
    st->refs = 2, st->app_held = true; /* table + the handle given to the app */
    return st;
}

/* A SYN from the peer: *out is the new stream, or NULL when it was refused (RST queued). */
LP2P__PRIV int lp2p__ymx_accept(lp2p__yamux *y, uint32_t id, lp2p__ystream **out) {
    *out = NULL;
    if ((id & 1) == (y->cfg.is_client ? 1u : 0u))
        return lp2p__ymx_violation(y, "peer opened stream %u with our ID parity", id);
    if (lp2p__ymap_get(y, id)) return lp2p__ymx_violation(y, "duplicate SYN for stream %u", id);
    if (id > y->max_remote_id) y->max_remote_id = id;
    if (y->n_inbound >= y->cfg.max_inbound || !y->cfg.on_stream) {
        if (!y->cfg.on_stream) LP2P__DEBUG(y->ctx, "yamux: no stream handler: resetting stream %u", id);
        else if (y->inbound_logged) LP2P__DEBUG(y->ctx, "yamux: max_inbound: resetting stream %u", id);
        else {
            LP2P__WARN(y->ctx, LP2P_ERR_LIMIT, "yamux: limit max_inbound (%d streams) reached: resetting new streams",
                       y->cfg.max_inbound);
            y->inbound_logged = true;
        }
        return lp2p__ymx_ctl_push(y, LP2P__Y_WINDOW, LP2P__Y_RST, id, 0, true);
    }
    lp2p__ystream *st = lp2p__ys_new(y, id, false);
    if (!st) return LP2P_ERR_NOMEM;
    y->n_inbound++;
    st->ack_pending = true; /* ACK at once (with the extra window) so the peer's backlog drains */
    lp2p__ys_mark_dirty(st);
    *out = st;
    return LP2P_OK;
}

/* Give a new inbound stream to the app, or take it back if the frame failed. */
LP2P__PRIV void lp2p__ymx_deliver(lp2p__yamux *y, lp2p__ystream *st, int rc) {
    if (rc == LP2P_OK && !y->dead) {
        y->cfg.on_stream(y->cfg.user, y, &st->pipe);
        return;
    }
    st->app_held = false;
    lp2p__ys_unref(st);
}

LP2P__PRIV int lp2p__ymx_on_data_stream(lp2p__yamux *y, lp2p__ystream *st, uint16_t flags, uint32_t len) {
    if (flags & LP2P__Y_ACK) lp2p__ys_acked(st);
    if (len > st->recv_avail)
        return lp2p__ymx_violation(y, "stream %u: %u data bytes exceed the window (%u left)", st->id, len, st->recv_avail);
    st->recv_avail -= len;
    int rc = len ? lp2p__ys_recv_payload(y, st, len) : LP2P_OK;
    if (rc < 0 || y->dead) return rc;
    if (flags & LP2P__Y_FIN) lp2p__ys_remote_fin(st);
    /* closed by the app, peer still sending: it now has no credit and we grant none */
    if (st->in_table && !st->app_held && !st->recv_fin && st->recv_avail == 0) lp2p__ys_send_reset(st);
    return LP2P_OK;
}

LP2P__PRIV int lp2p__ymx_on_data(lp2p__yamux *y, uint16_t flags, uint32_t id, uint32_t len) {
    if (!id) return lp2p__ymx_violation(y, "data frame on stream 0");
    if (len > y->cfg.max_window) return lp2p__ymx_violation(y, "data frame of %u bytes exceeds any window", len);
    lp2p__ystream *st = NULL, *fresh = NULL;
    int rc;
    if (flags & LP2P__Y_RST) {
        rc = lp2p__ymx_discard(y, len);
        if (rc == LP2P_OK && (st = lp2p__ymap_get(y, id))) lp2p__ys_remote_reset(st, 0);
        return rc;
    }
    if (flags & LP2P__Y_SYN) {
        if (len > LP2P__Y_SPEC_WINDOW) return lp2p__ymx_violation(y, "SYN data of %u bytes exceeds 256 KiB", len);
        if ((rc = lp2p__ymx_accept(y, id, &fresh)) < 0) return rc;
        if (!fresh) return lp2p__ymx_discard(y, len);
        st = fresh;
    } else if (!(st = lp2p__ymap_get(y, id))) {
        if (!lp2p__ymx_seen(y, id)) return lp2p__ymx_violation(y, "data for stream %u that was never opened", id);
        return lp2p__ymx_discard(y, len); /* late frame of a stream we dropped */
    }
    st->refs++;
    rc = lp2p__ymx_on_data_stream(y, st, flags, len);
    if (fresh) lp2p__ymx_deliver(y, fresh, rc);
    lp2p__ys_unref(st);
    return rc;
}

LP2P__PRIV int lp2p__ymx_on_window(lp2p__yamux *y, uint16_t flags, uint32_t id, uint32_t len) {
    if (!id) return lp2p__ymx_violation(y, "window update on stream 0");
    lp2p__ystream *st, *fresh = NULL;
    if (flags & LP2P__Y_RST) { /* length is go's error code, not a delta */
        if ((st = lp2p__ymap_get(y, id))) lp2p__ys_remote_reset(st, len);
        return LP2P_OK;
    }
    if (flags & LP2P__Y_SYN) {
        int rc = lp2p__ymx_accept(y, id, &fresh);
        if (rc < 0 || !fresh) return rc;
        st = fresh;
    } else if (!(st = lp2p__ymap_get(y, id))) {
        if (!lp2p__ymx_seen(y, id)) return lp2p__ymx_violation(y, "window update for stream %u that was never opened", id);
        return LP2P_OK;
    }
    if (flags & LP2P__Y_ACK) lp2p__ys_acked(st);
    int rc = LP2P_OK;
    if (st->send_window + len > 0xffffffffu) rc = lp2p__ymx_violation(y, "stream %u: send window overflow", id);
    else {
        st->send_window += len;
        if (st->wlen && st->send_window && !st->werr) lp2p__ys_ready_push(st);
        st->refs++;
        if (flags & LP2P__Y_FIN) lp2p__ys_remote_fin(st);
        lp2p__ys_unref(st);
    }
    if (fresh) lp2p__ymx_deliver(y, fresh, rc);
    return rc;
}

LP2P__PRIV void lp2p__ymx_on_ping(lp2p__yamux *y, uint16_t flags, uint32_t value) {
    if (flags & LP2P__Y_SYN) {
        if (lp2p__ymx_ctl_push(y, LP2P__Y_PING, LP2P__Y_ACK, 0, value, false) == LP2P_ERR_LIMIT)
            LP2P__DEBUG(y->ctx, "yamux: control queue full, dropped a pong");
        return;
    }
    if (!(flags & LP2P__Y_ACK) || !y->ping_outstanding || value != y->ping_id) return;
    int64_t rtt = LP2P__MAX(lp2p__ymx_now_us() - y->ping_sent_us, (int64_t)1);
    y->rtt_us = y->rtt_us ? (y->rtt_us + rtt) / 2 : rtt; /* smoothed like go-yamux */
    y->ping_last_us = rtt;
    y->ping_outstanding = false;
    y->ping_round++;
    lp2p__waitq_wake_all(y->s, &y->wq_ping);
}

LP2P__PRIV int lp2p__ymx_on_frame(lp2p__yamux *y, const uint8_t *h) {
    uint8_t type = h[1];
    uint16_t flags = lp2p__be16(h + 2);
    uint32_t id = lp2p__be32(h + 4), len = lp2p__be32(h + 8);
    if (h[0] != 0) return lp2p__ymx_violation(y, "frame version %u", h[0]);
    if (type > LP2P__Y_GOAWAY) return lp2p__ymx_violation(y, "frame type %u", type);
    if (flags & ~0xfu) return lp2p__ymx_violation(y, "unknown flags 0x%x", flags);
    switch (type) {
    case LP2P__Y_DATA: return lp2p__ymx_on_data(y, flags, id, len);
    case LP2P__Y_WINDOW: return lp2p__ymx_on_window(y, flags, id, len);
    case LP2P__Y_PING: lp2p__ymx_on_ping(y, flags, len); return LP2P_OK;
    default:
        if (len) LP2P__WARN(y->ctx, LP2P_ERR_EOF, "yamux: peer sent GoAway with error code %u", len);
        y->remote_goaway = true;
        lp2p__waitq_wake_all(y->s, &y->wq_open);
        return LP2P_OK;
    }
}

LP2P__PRIV void lp2p__ymx_reader_main(void *arg) {
    lp2p__yamux *y = (lp2p__yamux *)arg;
    uint8_t h[LP2P__Y_HDR];
    while (!y->dead) {
        int rc = lp2p__pipe_read_full(y->pipe, h, sizeof h, LP2P_FOREVER);
        if (rc == LP2P_OK) {
            y->last_rx_ms = lp2p_now();
            rc = lp2p__ymx_on_frame(y, h);
        }
        if (rc < 0) {
            int goaway = rc == LP2P_ERR_PROTOCOL ? 1 : rc == LP2P_ERR_NOMEM ? 2 : -1;
            lp2p__ymx_fail(y, rc, goaway);
            break;
        }
        lp2p__ymx_check_goaway(y);
    }
    lp2p__ymx_task_exit(y, true);
}

/* ---- pings and keepalive -------------------------------------------------------------------- */
/* Ping (joining an outstanding one); RTT in microseconds or an error. */
LP2P__PRIV int64_t lp2p__ymx_ping_us(lp2p__yamux *y, int64_t deadline) {
    if (y->dead) return LP2P_ERR_CLOSED;
    bool stale = y->ping_outstanding && lp2p__ymx_now_us() - y->ping_sent_us > (int64_t)y->cfg.ping_timeout_ms * 1000;
    if ((!y->ping_outstanding && !y->ping_send) || stale) {
        y->ping_id++;
        y->ping_send = true, y->ping_outstanding = false;
        lp2p__ymx_wake_writer(y);
    }
    uint64_t round = y->ping_round;
    int64_t r = 0;
    lp2p__ymx_ref(y);
    while (y->ping_round == round && r == 0) {
        if (y->dead) r = LP2P_ERR_CLOSED;
        else {
            int rc = lp2p__waitq_wait(y->s, &y->wq_ping, deadline);
            if (rc < 0) r = rc;
        }
    }
    if (r == 0) r = y->ping_last_us;
    lp2p__ymx_unref(y);
    return r;
}

LP2P__PRIV void lp2p__ymx_keepalive_main(void *arg) {
    lp2p__yamux *y = (lp2p__yamux *)arg;
    bool on = y->cfg.keepalive_ms > 0;
    /* first ping at once: the RTT drives window tuning (go and js do the same) */
    int64_t r = lp2p__ymx_ping_us(y, lp2p_deadline_in(y->cfg.ping_timeout_ms));
    while (on && !y->dead && r != LP2P_ERR_CANCELED && r != LP2P_ERR_CLOSED) {
        if (r == LP2P_ERR_TIMEOUT) {
            LP2P__WARN(y->ctx, LP2P_ERR_TIMEOUT, "yamux: no pong within ping_timeout_ms (%d ms): closing session",
                       y->cfg.ping_timeout_ms);
            lp2p__ymx_fail(y, LP2P_ERR_TIMEOUT, -1);
            break;
        }
        int64_t due = y->last_rx_ms + y->cfg.keepalive_ms;
        if (lp2p_now() < due) {
            if (lp2p__sleep_until(y->s, due) < 0) break;
            continue;
        }
        r = lp2p__ymx_ping_us(y, lp2p_deadline_in(y->cfg.ping_timeout_ms));
    }
    lp2p__ymx_task_exit(y, false);
}

/* ---- stream pipe ---------------------------------------------------------------------------- */
LP2P__PRIV size_t lp2p__ys_copy_out(lp2p__ystream *st, uint8_t *out, size_t cap) {
    size_t n = 0;
    while (n < cap && st->head) {
        lp2p__ychunk *c = st->head;
        size_t k = LP2P__MIN(cap - n, (size_t)(c->wpos - c->rpos));
        memcpy(out + n, c->data + c->rpos, k);
        c->rpos += (uint32_t)k, n += k;
        if (c->rpos == c->wpos) {
            st->head = c->next;
            if (!st->head) st->tail = NULL;
            lp2p__free(st->y->ctx, c, sizeof *c + c->cap);
        }
    }
    st->buffered -= n;
    return n;
}

LP2P__PRIV ptrdiff_t lp2p__ys_read(lp2p__pipe *p, void *buf, size_t cap, int64_t deadline) {
    lp2p__ystream *st = (lp2p__ystream *)p;
    if (!st->app_held) return LP2P_ERR_CLOSED;
    if (st->reading) return LP2P_ERR_BUSY;
    if (!cap) return LP2P_ERR_INVALID;
    st->reading = true;
    st->refs++;
    ptrdiff_t r;
    for (;;) {
        if (st->buffered) {
            r = (ptrdiff_t)lp2p__ys_copy_out(st, (uint8_t *)buf, cap);
            lp2p__ys_after_read(st);
            break;
        }
        if (st->rerr) { r = st->rerr; break; }
        if (st->recv_fin) { r = 0; break; }
        int rc = lp2p__waitq_wait(st->y->s, &st->rq, deadline);
        if (rc < 0) { r = rc; break; }
    }
    st->reading = false;
    lp2p__ys_unref(st);
    return r;
}

/* The writer task copies our bytes into its batches; we return once all were taken. */
LP2P__PRIV int lp2p__ys_write(lp2p__pipe *p, const void *buf, size_t len, int64_t deadline) {
    lp2p__ystream *st = (lp2p__ystream *)p;
    if (!st->app_held) return LP2P_ERR_CLOSED;
    if (st->writing) return LP2P_ERR_BUSY;
    if (st->werr) return st->werr;
    if (!len) return LP2P_OK;
    st->writing = true;
    st->refs++;
    st->wptr = (const uint8_t *)buf, st->wlen = len;
    if (st->send_window) lp2p__ys_ready_push(st);
    int rc;
    for (;;) {
        if (!st->wlen) { rc = LP2P_OK; break; }
        if (st->werr) { rc = st->werr; break; }
        if ((rc = lp2p__waitq_wait(st->y->s, &st->wq, deadline)) < 0) break;
    }
    lp2p__ys_ready_remove(st);
    st->wptr = NULL, st->wlen = 0;
    st->writing = false;
    lp2p__ys_unref(st);
    return rc;
}

LP2P__PRIV void lp2p__ys_fin(lp2p__ystream *st) {
    st->send_closed = true;
    st->werr = LP2P_ERR_CLOSED;
    st->fin_pending = true;
    lp2p__ys_mark_dirty(st);
    lp2p__waitq_wake_all(st->y->s, &st->wq);
}

LP2P__PRIV int lp2p__ys_close_write(lp2p__pipe *p) {
    lp2p__ystream *st = (lp2p__ystream *)p;
    if (!st->app_held) return LP2P_ERR_CLOSED;
    if (st->send_closed) return LP2P_OK;
    if (st->werr) return st->werr;
    lp2p__ys_fin(st);
    lp2p__ys_maybe_untrack(st);
    lp2p__ymx_check_goaway(st->y);
    return LP2P_OK;
}

/* The app lets go of its handle (close or reset). */
LP2P__PRIV void lp2p__ys_release(lp2p__ystream *st) {
    lp2p__yamux *y = st->y;
    st->app_held = false;
    lp2p__ys_free_chunks(st);
    lp2p__waitq_wake_all(y->s, &st->rq);
    lp2p__waitq_wake_all(y->s, &st->wq);
    lp2p__ymx_ref(y);
    lp2p__ys_unref(st);
    lp2p__ymx_check_goaway(y);
    lp2p__ymx_unref(y);
}

LP2P__PRIV void lp2p__ys_reset(lp2p__pipe *p) {
    lp2p__ystream *st = (lp2p__ystream *)p;
    if (!st->app_held) return;
    st->rerr = st->werr = LP2P_ERR_CLOSED;
    lp2p__ys_ready_remove(st);
    if (st->in_table) {
        if (st->syn_pending) { /* the peer never heard of it: nothing to send */
            st->syn_pending = st->fin_pending = st->wu_pending = false;
            lp2p__ys_untrack(st);
        } else lp2p__ys_send_reset(st);
    }
    lp2p__ys_release(st);
}

/* go-yamux semantics: FIN, stop reading; see yamux.h for what happens to later data. */
LP2P__PRIV void lp2p__ys_close(lp2p__pipe *p) {
    lp2p__ystream *st = (lp2p__ystream *)p;
    if (!st->app_held) return;
    if (!st->send_closed && !st->werr) lp2p__ys_fin(st);
    if (!st->rerr && !st->recv_fin) st->rerr = LP2P_ERR_CLOSED;
    lp2p__ys_ready_remove(st);
    if (st->in_table) {
        if (st->recv_fin) lp2p__ys_untrack(st);
        else if (st->recv_avail == 0) lp2p__ys_send_reset(st);
        /* else: lingers until the peer's FIN/RST */
    }
    lp2p__ys_release(st);
}

LP2P__PRIV const lp2p__pipe_vt *lp2p__ystream_vtable(void) {
    static const lp2p__pipe_vt vt = {lp2p__ys_read, lp2p__ys_write, lp2p__ys_close_write, lp2p__ys_reset, lp2p__ys_close};
    return &vt;
}

/* ---- session API ---------------------------------------------------------------------------- */
LP2P__PRIV void lp2p__ymx_resolve_cfg(lp2p__yamux_cfg *c) {
    if (c->init_window < LP2P__Y_SPEC_WINDOW) c->init_window = LP2P__Y_SPEC_WINDOW;
    if (!c->max_window) c->max_window = 16u << 20;
    if (c->max_window < c->init_window) c->max_window = c->init_window;
    if (!c->max_conn_window) c->max_conn_window = 64u << 20;
    if (c->max_inbound <= 0) c->max_inbound = 1024;
    if (!c->keepalive_ms) c->keepalive_ms = 15000;
    if (c->ping_timeout_ms <= 0) c->ping_timeout_ms = 10000;
}

LP2P__PRIV bool lp2p__ymx_spawn(lp2p__yamux *y, lp2p_task *t, void (*fn)(void *), bool pipe_user) {
    y->refs++;
    if (pipe_user) y->pipe_users++;
    *t = lp2p__spawn(y->s, fn, y);
    if (t->id) return true;
    y->refs--;
    if (pipe_user) y->pipe_users--;
    return false;
}

LP2P__PRIV int lp2p__yamux_new(lp2p__sched *s, lp2p__pipe *pipe, const lp2p__yamux_cfg *cfg, lp2p__yamux **out) {
    lp2p__ctx *ctx = lp2p__sched_ctx(s);
    lp2p__yamux *y = (lp2p__yamux *)lp2p__zalloc(ctx, sizeof *y);
    if (y) {
        y->wbuf = (uint8_t *)lp2p__alloc(ctx, LP2P__Y_WBUF);
        y->scratch = (uint8_t *)lp2p__alloc(ctx, LP2P__Y_SCRATCH);
        y->cap = 16;
        y->slots = (lp2p__ystream **)lp2p__zalloc(ctx, y->cap * sizeof *y->slots);
    }
    if (!y || !y->wbuf || !y->scratch || !y->slots) {
        if (y) {
            lp2p__free(ctx, y->wbuf, LP2P__Y_WBUF);
            lp2p__free(ctx, y->scratch, LP2P__Y_SCRATCH);
            lp2p__free(ctx, y->slots, 16 * sizeof *y->slots);
            lp2p__free(ctx, y, sizeof *y);
        }
        pipe->vt->close(pipe);
        return LP2P_ERR_NOMEM;
    }
    y->s = s, y->ctx = ctx, y->pipe = pipe;
    y->cfg = cfg ? *cfg : (lp2p__yamux_cfg){0};
    lp2p__ymx_resolve_cfg(&y->cfg);
    y->refs = 1; /* the owner */
    y->goaway_send = -1;
    y->next_id = y->cfg.is_client ? 1 : 2;
    y->last_rx_ms = lp2p_now();
    bool ok = lp2p__ymx_spawn(y, &y->writer, lp2p__ymx_writer_main, true) &&
              lp2p__ymx_spawn(y, &y->reader, lp2p__ymx_reader_main, true) &&
              lp2p__ymx_spawn(y, &y->keepalive, lp2p__ymx_keepalive_main, false);
    if (!ok) {
        y->cfg.on_close = NULL;
        lp2p__ymx_fail(y, LP2P_ERR_LIMIT, -1);
        y->pipe_users++;
        lp2p__ymx_ref(y);
        lp2p__ymx_task_exit(y, true); /* closes the pipe unless a spawned task still will */
        lp2p__yamux_free(y);
        return LP2P_ERR_LIMIT;
    }
    *out = y;
    return LP2P_OK;
}

LP2P__PRIV int lp2p__yamux_open(lp2p__yamux *y, lp2p__pipe **out, int64_t deadline) {
    int rc = LP2P_OK;
    lp2p__ymx_ref(y);
    for (;;) {
        if (y->dead || y->remote_goaway) { rc = LP2P_ERR_CLOSED; break; }
        if (y->n_unacked < LP2P__YAMUX_ACK_BACKLOG) break;
        rc = lp2p__waitq_wait(y->s, &y->wq_open, deadline);
        if (rc == LP2P_ERR_TIMEOUT) {
            LP2P__WARN(y->ctx, LP2P_ERR_LIMIT, "yamux: limit ack backlog (%d unacknowledged streams) reached",
                       LP2P__YAMUX_ACK_BACKLOG);
            rc = LP2P_ERR_LIMIT;
        }
        if (rc < 0) break;
    }
    if (rc == LP2P_OK && y->next_id > 0xffffffffu - 2) {
        LP2P__WARN(y->ctx, LP2P_ERR_LIMIT, "yamux: stream IDs exhausted");
        rc = LP2P_ERR_LIMIT;
    }
    if (rc == LP2P_OK) {
        lp2p__ystream *st = lp2p__ys_new(y, y->next_id, true);
        if (!st) rc = LP2P_ERR_NOMEM;
        else {
            y->next_id += 2;
            y->n_unacked++;
            st->syn_pending = true; /* window update + SYN (go), or SYN on the first data frame */
            lp2p__ys_mark_dirty(st);
            *out = &st->pipe;
        }
    }
    lp2p__ymx_unref(y);
    return rc;
}

LP2P__PRIV int lp2p__yamux_ping(lp2p__yamux *y, int64_t deadline) {
    int64_t r = lp2p__ymx_ping_us(y, deadline);
    return r < 0 ? (int)r : (int)LP2P__MIN(r / 1000, (int64_t)0x7fffffff);
}

LP2P__PRIV void lp2p__yamux_close(lp2p__yamux *y) {
    if (!y->dead) lp2p__ymx_fail(y, LP2P_OK, 0);
}

LP2P__PRIV void lp2p__yamux_free(lp2p__yamux *y) {
    if (!y || y->owner_gone) return;
    lp2p__yamux_close(y);
    y->owner_gone = true;
    lp2p__ymx_unref(y);
}

LP2P__PRIV bool lp2p__yamux_is_closed(lp2p__yamux *y) { return y->dead; }
LP2P__PRIV int lp2p__yamux_num_streams(lp2p__yamux *y) { return (int)y->count; }
LP2P__PRIV int64_t lp2p__yamux_rtt_us(lp2p__yamux *y) { return y->rtt_us; }
LP2P__PRIV uint32_t lp2p__ystream_id(lp2p__pipe *stream) { return ((lp2p__ystream *)stream)->id; }
LP2P__PRIV void lp2p__yamux_set_rtt_us(lp2p__yamux *y, int64_t rtt_us) { y->rtt_us = rtt_us; }
LP2P__PRIV uint32_t lp2p__ystream_recv_window(lp2p__pipe *stream) { return ((lp2p__ystream *)stream)->recv_max; }
LP2P__PRIV int lp2p__yamux_unacked(lp2p__yamux *y) { return y->n_unacked; }
/*==================== end src/yamux.c ====================*/
/*==================== begin src/swarm.c ====================*/
/* swarm.c - placeholder, being written */
/*==================== end src/swarm.c ====================*/
/*==================== begin src/host.c ====================*/
/* host.c - placeholder, being written */
/*==================== end src/host.c ====================*/
/*==================== begin src/identify.c ====================*/
/* identify.c - placeholder, being written */
/*==================== end src/identify.c ====================*/
/*==================== begin src/ping.c ====================*/
/* ping.c - placeholder, being written */
/*==================== end src/ping.c ====================*/
#endif /* LIBP2P_IMPLEMENTATION */
/*
MIT License

Copyright (c) 2026 The libp2p.h authors

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
*/
