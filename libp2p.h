/*==================== begin src/doc.h ====================*/
/* libp2p.h - v0.1.0 - libp2p in one C header: TCP, multistream-select, Noise, yamux, identify, ping
   https://libp2p.io - tested against go-libp2p, rust-libp2p and js-libp2p.  MIT license (end of file).

   QUICK START
     Do this in *one* C or C++ file, before any other #include:
         #define LIBP2P_IMPLEMENTATION
/* #include "libp2p.h" (amalgamated) */
     Other files just #include "libp2p.h". Link with:
         -lsodium -lbearssl -lprotobuf-nanopb -lpthread
     (Debian/Ubuntu: libsodium-dev libbearssl-dev libnanopb-dev.) The declarations are C99 and
     C++ compatible; the implementation file must be C11 (or gnu11) or C++.

         static void echo(lp2p_stream *s, void *user) {        // runs as its own task
             char buf[4096]; ptrdiff_t n;
             while ((n = lp2p_stream_read(s, buf, sizeof buf, lp2p_deadline_in(30000))) > 0)
                 if (lp2p_stream_write(s, buf, (size_t)n, lp2p_deadline_in(30000)) < 0) break;
         }                                                      // stream closed on return
         int main(void) {
             lp2p_host *h;
             if (lp2p_host_new(NULL, &h) != LP2P_OK) return 1; // NULL config = defaults
             lp2p_host_handle(h, "/echo/1.0.0", echo, NULL);
             for (int i = 0; i < lp2p_host_addr_count(h); i++) puts(lp2p_host_addr(h, i));
             return lp2p_host_run(h);
         }

   CONFIG MACROS (define before the implementation include)
     LIBP2P_STATIC          all TUs: public functions become static (one-TU programs)
     LP2P_ASSERT(c)         default assert(c)
     LP2P_DEBUG             log messages carry file and line
     LP2P_ENABLE_STDIO      1 (default): WARN and worse go to stderr unless a logger is set
     LP2P_ENABLE_SECP256K1  0 (default); 1 verifies secp256k1 peers (link -lsecp256k1)
     LP2P_CORO_UCONTEXT     use ucontext instead of the assembly context switch
     LP2P_POLLER_POLL       use poll() instead of epoll

   DRIVING THE HOST (three ways, all first-class)
     1. Game / frame loop: call lp2p_host_poll(h, 0) once per frame; it never blocks. Handlers and
        tasks run inside it. Read results with LP2P_NOWAIT and lp2p_host_next_event().
     2. Network thread: lp2p_host_run(h) on its own thread. Other threads talk to the host only
        through lp2p_host_post(h, fn, arg) and lp2p_host_stop(h).
     3. Scripts, CLIs, teaching: call blocking functions straight from main(); outside a task a
        blocking call runs the event loop (of every host on this thread) until it completes.

   DEADLINES
     Every call that can wait takes an absolute deadline in milliseconds of lp2p_now() as its
     last argument: lp2p_deadline_in(ms), LP2P_FOREVER (-1) or LP2P_NOWAIT (0, try once). Inside a
     task it parks only that task. An expired deadline means the operation was abandoned.

   THREADS
     A host lives on the thread that polls it. Only lp2p_host_post, lp2p_host_stop, lp2p_now and
     lp2p_deadline_in are thread-safe. Several hosts may live on one thread or on several.

   ERRORS
     Functions return LP2P_OK (0) or a negative LP2P_ERR_* (see LP2P_ERRORS below); sizes come back
     as ptrdiff_t (>= 0 on success). lp2p_strerror() describes a code. Out-parameters are written
     only on success. A peer that violates a protocol gets its stream or connection closed with a
     WARN log naming the peer and the reason; the host keeps serving everyone else.

   MEMORY
     All allocations go through lp2p_config.allocator (default malloc/free); task stacks are
     mmap'd (64 KiB virtual each, only touched pages are resident) with a guard page below.
     Strings passed in are copied. Strings handed out are borrowed: each function says how long
     they live. Streams belong to the app until lp2p_stream_close/lp2p_stream_reset; a stream
     handed to a handler is closed when the handler returns.

   LIMITS
     Few and named in lp2p_config (max_connections, max_streams_per_conn, max_pending_dials,
     max_stream_buffer, event_queue_size, max_tasks). Hitting one returns LP2P_ERR_LIMIT and
     logs the field name and value. Idle connections stay open; keepalive pings find dead peers.

   SPECS FOLLOWED (github.com/libp2p/specs)
     connections/README.md, multistream-select, noise/README.md, yamux/README.md,
     identify/README.md, ping/ping.md, peer-ids/peer-ids.md, RFC/0002, RFC/0003, addressing.
*/
/* The implementation needs POSIX/GNU declarations (clock_gettime, epoll, mmap, getaddrinfo)
 * even under -std=c11: include libp2p.h first in the implementation file, or build with
 * -D_GNU_SOURCE. */
#if defined(LIBP2P_IMPLEMENTATION) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE 1
#endif
/*==================== end src/doc.h ====================*/
#ifndef LIBP2P_SOURCE_ID
#define LIBP2P_SOURCE_ID "src-fdb62c317d651a3d"
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

/* ---- what peers told us (identify) ------------------------------------------------------- */
#define LP2P_MAX_INFO_ADDRS 16
typedef struct lp2p_peer_info {
    lp2p_peer_id id;
    const char *agent_version;        /* NULL until identify finished */
    const char *protocol_version;
    const char *const *protocols;     /* n_protocols protocol IDs the peer handles */
    int n_protocols;
    const char *addrs[LP2P_MAX_INFO_ADDRS]; /* listen addresses (multiaddr text, no /p2p/) */
    int n_addrs;
    const char *observed_addr;        /* how the peer sees us, or NULL */
} lp2p_peer_info;
LP2P_API int lp2p_host_identify(lp2p_host *h, const char *peer_or_addr, int64_t deadline);
LP2P_API int lp2p_host_peer_info(lp2p_host *h, const lp2p_peer_id *peer, lp2p_peer_info *out);

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
 * `static` in the amalgamation; development builds that compile the src/ files one by one define
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
 * Supported protocols: ip4, ip6, ip6zone, ipcidr, dns, dns4, dns6, dnsaddr, tcp, udp, dccp, sctp,
 * p2p (alias ipfs on input, printed as p2p), p2p-circuit, ws, wss, tls, sni, noise, quic,
 * quic-v1, webtransport, certhash (any multibase in, base64url 'u' out), webrtc, webrtc-direct,
 * http, https, udt, utp, memory (8-byte uint64, as go/rust), unix (a path: takes the rest of
 * the text, "/unix/tmp/s" has value "/tmp/s"; must be last).
 * Text follows go-multiaddr: must begin with '/', trailing slashes are ignored.
 * Unknown or malformed parts are rejected with LP2P_ERR_BADADDR; the reason goes to *why
 * (static string such as "unknown protocol", "bad ip4 address", "port out of range",
 * "bad peer ID", "missing protocol value", "truncated value") when why is non-NULL.
 * A valid lp2p__ma is never empty; its text form parses back to the same bytes.
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
#define LP2P__MA_SNI 449
#define LP2P__MA_WEBTRANSPORT 465
#define LP2P__MA_CERTHASH 466
#define LP2P__MA_UNIX 400
#define LP2P__MA_MEMORY 777

LP2P__PRIV int lp2p__ma_parse(const char *text, lp2p__ma *out, const char **why);
LP2P__PRIV int lp2p__ma_from_bytes(const uint8_t *p, size_t n, lp2p__ma *out, const char **why); /* validates */
/* Text form (NUL-terminated); returns length, ERR_INVALID if cap is too small (out is then
 * ""), ERR_BADADDR if ma is not valid. LP2P__MA_STRLEN is always enough. */
LP2P__PRIV ptrdiff_t lp2p__ma_str(const lp2p__ma *ma, char *out, size_t cap);

/* Component iteration: start with *off = 0; returns 1 and fills code/value while components
 * remain, 0 at the end (also 0 at a malformed component, so loops always end). value points
 * into ma. */
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
 * every later wait.
 * Depends on: base.h. */
#ifndef LP2P__RUNTIME_H
#define LP2P__RUNTIME_H

/* #include "base.h" (amalgamated) */

typedef struct lp2p__sched lp2p__sched;
typedef struct lp2p__task lp2p__task; /* internal task record (pooled, reused) */

typedef struct lp2p__sched_cfg {
    size_t stack_size; /* 0 -> 64 KiB (usable bytes, plus one guard page) */
    int max_tasks;     /* 0 -> 65536 live tasks; spawn past it fails with ERR_LIMIT (logged) */
} lp2p__sched_cfg;

LP2P__PRIV int lp2p__sched_new(lp2p__ctx *ctx, const lp2p__sched_cfg *cfg, lp2p__sched **out);
/* Cancel every task, resume them until they have all returned, free all resources. */
LP2P__PRIV void lp2p__sched_free(lp2p__sched *s);
/* One loop iteration: resume each ready task at most once, poll I/O (waiting at most
 * timeout_ms; 0 never blocks, < 0 waits for the next event), fire due timers, run posted
 * callbacks. Returns the number of tasks resumed (>= 0) or an LP2P_ERR_*. */
LP2P__PRIV int lp2p__sched_poll(lp2p__sched *s, int timeout_ms);
/* Loop until lp2p__sched_stop. Returns LP2P_OK. */
LP2P__PRIV int lp2p__sched_run(lp2p__sched *s);
LP2P__PRIV void lp2p__sched_stop(lp2p__sched *s);                          /* thread-safe */
LP2P__PRIV int lp2p__sched_post(lp2p__sched *s, void (*fn)(void *), void *arg); /* thread-safe; fn runs as a new task */
LP2P__PRIV lp2p__ctx *lp2p__sched_ctx(lp2p__sched *s);

/* ---- tasks ---- */
/* Start fn(arg) as a new task (runs at the next poll). Handle id 0 means failure (limit or
 * memory; logged). Never blocks. */
LP2P__PRIV lp2p_task lp2p__spawn(lp2p__sched *s, void (*fn)(void *), void *arg);
/* Ask a task to stop: its current and later waits return ERR_CANCELED. ERR_NOTFOUND if dead. */
LP2P__PRIV int lp2p__task_cancel(lp2p__sched *s, lp2p_task t);
LP2P__PRIV int lp2p__task_join(lp2p__sched *s, lp2p_task t, int64_t deadline); /* OK when it ended */
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
 * so the caller retries its syscall. Returns OK, ERR_TIMEOUT, ERR_CANCELED, ERR_CLOSED,
 * ERR_WOULDBLOCK. One reader and one writer task per fd at a time. */
LP2P__PRIV int lp2p__wait_fd(lp2p__sched *s, int fd, int dir, int64_t deadline);
/* Park until deadline (OK) or cancel (ERR_CANCELED). */
LP2P__PRIV int lp2p__sleep_until(lp2p__sched *s, int64_t deadline);
/* Let every other ready task run once. */
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
LP2P__PRIV int lp2p__mutex_lock(lp2p__sched *s, lp2p__mutex *m, int64_t deadline); /* OK / TIMEOUT / CANCELED */
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
 * One reader task per session reads frames and dispatches them; writers share the pipe
 * under a mutex. Pings are answered at once; GoAway is sent on close. Receive windows start
 * at 256 KiB and auto-tune (double when a window's worth is consumed within ~4 RTT) up to
 * max_window; at most 256 unacknowledged outbound streams; inbound streams beyond
 * max_inbound are reset (logged); frames carry <= 64 KiB of data.
 * Streams are pipes (close_write = FIN, reset = RST).
 * Depends on: pipe.h, runtime.h. */
#ifndef LP2P__YAMUX_H
#define LP2P__YAMUX_H

/* #include "pipe.h" (amalgamated) */

#define LP2P__YAMUX_PROTO "/yamux/1.0.0"

typedef struct lp2p__yamux lp2p__yamux;
typedef struct lp2p__ystream lp2p__ystream; /* begins with an lp2p__pipe */

typedef struct lp2p__yamux_cfg {
    bool is_client;          /* the connection's dialer */
    uint32_t init_window;    /* 0 -> 256 KiB */
    uint32_t max_window;     /* 0 -> 16 MiB */
    int max_inbound;         /* 0 -> 1024 concurrently open inbound streams */
    int keepalive_ms;        /* 0 -> 15000; < 0 off: ping when idle, session fails if no pong in 10 s */
    /* Called (from the session's reader task - do not block in it; spawn a task) for each
     * new inbound stream, which the callee now owns. */
    void (*on_stream)(void *user, lp2p__yamux *y, lp2p__pipe *stream);
    /* Called once when the session ends (err = reason: OK for a local close, ERR_EOF, ...). */
    void (*on_close)(void *user, lp2p__yamux *y, int err);
    void *user;
} lp2p__yamux_cfg;

/* Start a session on pipe (the session owns it) and its reader task. */
LP2P__PRIV int lp2p__yamux_new(lp2p__sched *s, lp2p__pipe *pipe, const lp2p__yamux_cfg *cfg, lp2p__yamux **out);
/* Open an outbound stream (SYN is sent with the first write or at once). ERR_LIMIT when 256
 * are unacknowledged, ERR_CLOSED when the session is gone, ERR_TIMEOUT. */
LP2P__PRIV int lp2p__yamux_open(lp2p__yamux *y, lp2p__pipe **out, int64_t deadline);
/* Send a ping and wait for the pong; returns RTT in ms (>= 0) or an error. */
LP2P__PRIV int lp2p__yamux_ping(lp2p__yamux *y, int64_t deadline);
/* GoAway + close the pipe; streams fail with ERR_CLOSED (local) / ERR_RESET.  Never blocks
 * for long. The session object stays valid until lp2p__yamux_free. */
LP2P__PRIV void lp2p__yamux_close(lp2p__yamux *y);
/* Free after close (streams still held by users keep failing safely until released). */
LP2P__PRIV void lp2p__yamux_free(lp2p__yamux *y);
LP2P__PRIV bool lp2p__yamux_is_closed(lp2p__yamux *y);
LP2P__PRIV int lp2p__yamux_num_streams(lp2p__yamux *y);

#endif
/*==================== end src/yamux.h ====================*/
/*==================== begin src/proto/keys.pb.h ====================*/
/* Automatically generated nanopb header */
/* Generated by nanopb-0.4.7 */

#ifndef PB_LP2P_PB_KEYS_PB_H_INCLUDED
#define PB_LP2P_PB_KEYS_PB_H_INCLUDED
#include <pb.h>

#if PB_PROTO_HEADER_VERSION != 40
#error Regenerate this file with the current version of nanopb generator.
#endif

/* Enum definitions */
typedef enum _lp2p_pb_KeyType {
    lp2p_pb_KeyType_RSA = 0,
    lp2p_pb_KeyType_Ed25519 = 1,
    lp2p_pb_KeyType_Secp256k1 = 2,
    lp2p_pb_KeyType_ECDSA = 3
} lp2p_pb_KeyType;

/* Struct definitions */
typedef PB_BYTES_ARRAY_T(1024) lp2p_pb_PublicKey_Data_t;
typedef struct _lp2p_pb_PublicKey {
    lp2p_pb_KeyType Type;
    lp2p_pb_PublicKey_Data_t Data;
} lp2p_pb_PublicKey;

typedef PB_BYTES_ARRAY_T(96) lp2p_pb_PrivateKey_Data_t;
typedef struct _lp2p_pb_PrivateKey {
    lp2p_pb_KeyType Type;
    lp2p_pb_PrivateKey_Data_t Data;
} lp2p_pb_PrivateKey;


#ifdef __cplusplus
extern "C" {
#endif

/* Helper constants for enums */
#define _lp2p_pb_KeyType_MIN lp2p_pb_KeyType_RSA
#define _lp2p_pb_KeyType_MAX lp2p_pb_KeyType_ECDSA
#define _lp2p_pb_KeyType_ARRAYSIZE ((lp2p_pb_KeyType)(lp2p_pb_KeyType_ECDSA+1))

#define lp2p_pb_PublicKey_Type_ENUMTYPE lp2p_pb_KeyType

#define lp2p_pb_PrivateKey_Type_ENUMTYPE lp2p_pb_KeyType


/* Initializer values for message structs */
#define lp2p_pb_PublicKey_init_default           {_lp2p_pb_KeyType_MIN, {0, {0}}}
#define lp2p_pb_PrivateKey_init_default          {_lp2p_pb_KeyType_MIN, {0, {0}}}
#define lp2p_pb_PublicKey_init_zero              {_lp2p_pb_KeyType_MIN, {0, {0}}}
#define lp2p_pb_PrivateKey_init_zero             {_lp2p_pb_KeyType_MIN, {0, {0}}}

/* Field tags (for use in manual encoding/decoding) */
#define lp2p_pb_PublicKey_Type_tag               1
#define lp2p_pb_PublicKey_Data_tag               2
#define lp2p_pb_PrivateKey_Type_tag              1
#define lp2p_pb_PrivateKey_Data_tag              2

/* Struct field encoding specification for nanopb */
#define lp2p_pb_PublicKey_FIELDLIST(X, a) \
X(a, STATIC,   REQUIRED, UENUM,    Type,              1) \
X(a, STATIC,   REQUIRED, BYTES,    Data,              2)
#define lp2p_pb_PublicKey_CALLBACK NULL
#define lp2p_pb_PublicKey_DEFAULT NULL

#define lp2p_pb_PrivateKey_FIELDLIST(X, a) \
X(a, STATIC,   REQUIRED, UENUM,    Type,              1) \
X(a, STATIC,   REQUIRED, BYTES,    Data,              2)
#define lp2p_pb_PrivateKey_CALLBACK NULL
#define lp2p_pb_PrivateKey_DEFAULT NULL

extern const pb_msgdesc_t lp2p_pb_PublicKey_msg;
extern const pb_msgdesc_t lp2p_pb_PrivateKey_msg;

/* Defines for backwards compatibility with code written before nanopb-0.4.0 */
#define lp2p_pb_PublicKey_fields &lp2p_pb_PublicKey_msg
#define lp2p_pb_PrivateKey_fields &lp2p_pb_PrivateKey_msg

/* Maximum encoded size of messages (where known) */
#define lp2p_pb_PrivateKey_size                  100
#define lp2p_pb_PublicKey_size                   1029

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif
/*==================== end src/proto/keys.pb.h ====================*/
/*==================== begin src/proto/noise.pb.h ====================*/
/* Automatically generated nanopb header */
/* Generated by nanopb-0.4.7 */

#ifndef PB_LP2P_PB_NOISE_PB_H_INCLUDED
#define PB_LP2P_PB_NOISE_PB_H_INCLUDED
#include <pb.h>

#if PB_PROTO_HEADER_VERSION != 40
#error Regenerate this file with the current version of nanopb generator.
#endif

/* Struct definitions */
typedef struct _lp2p_pb_NoiseExtensions {
    pb_callback_t webtransport_certhashes;
    pb_callback_t stream_muxers; /* string in the spec */
} lp2p_pb_NoiseExtensions;

typedef PB_BYTES_ARRAY_T(1024) lp2p_pb_NoiseHandshakePayload_identity_key_t;
typedef PB_BYTES_ARRAY_T(512) lp2p_pb_NoiseHandshakePayload_identity_sig_t;
typedef struct _lp2p_pb_NoiseHandshakePayload {
    bool has_identity_key;
    lp2p_pb_NoiseHandshakePayload_identity_key_t identity_key; /* a serialized PublicKey (keys.proto) */
    bool has_identity_sig;
    lp2p_pb_NoiseHandshakePayload_identity_sig_t identity_sig;
    bool has_extensions;
    lp2p_pb_NoiseExtensions extensions;
} lp2p_pb_NoiseHandshakePayload;


#ifdef __cplusplus
extern "C" {
#endif

/* Initializer values for message structs */
#define lp2p_pb_NoiseExtensions_init_default     {{{NULL}, NULL}, {{NULL}, NULL}}
#define lp2p_pb_NoiseHandshakePayload_init_default {false, {0, {0}}, false, {0, {0}}, false, lp2p_pb_NoiseExtensions_init_default}
#define lp2p_pb_NoiseExtensions_init_zero        {{{NULL}, NULL}, {{NULL}, NULL}}
#define lp2p_pb_NoiseHandshakePayload_init_zero  {false, {0, {0}}, false, {0, {0}}, false, lp2p_pb_NoiseExtensions_init_zero}

/* Field tags (for use in manual encoding/decoding) */
#define lp2p_pb_NoiseExtensions_webtransport_certhashes_tag 1
#define lp2p_pb_NoiseExtensions_stream_muxers_tag 2
#define lp2p_pb_NoiseHandshakePayload_identity_key_tag 1
#define lp2p_pb_NoiseHandshakePayload_identity_sig_tag 2
#define lp2p_pb_NoiseHandshakePayload_extensions_tag 4

/* Struct field encoding specification for nanopb */
#define lp2p_pb_NoiseExtensions_FIELDLIST(X, a) \
X(a, CALLBACK, REPEATED, BYTES,    webtransport_certhashes,   1) \
X(a, CALLBACK, REPEATED, BYTES,    stream_muxers,     2)
#define lp2p_pb_NoiseExtensions_CALLBACK pb_default_field_callback
#define lp2p_pb_NoiseExtensions_DEFAULT NULL

#define lp2p_pb_NoiseHandshakePayload_FIELDLIST(X, a) \
X(a, STATIC,   OPTIONAL, BYTES,    identity_key,      1) \
X(a, STATIC,   OPTIONAL, BYTES,    identity_sig,      2) \
X(a, STATIC,   OPTIONAL, MESSAGE,  extensions,        4)
#define lp2p_pb_NoiseHandshakePayload_CALLBACK NULL
#define lp2p_pb_NoiseHandshakePayload_DEFAULT NULL
#define lp2p_pb_NoiseHandshakePayload_extensions_MSGTYPE lp2p_pb_NoiseExtensions

extern const pb_msgdesc_t lp2p_pb_NoiseExtensions_msg;
extern const pb_msgdesc_t lp2p_pb_NoiseHandshakePayload_msg;

/* Defines for backwards compatibility with code written before nanopb-0.4.0 */
#define lp2p_pb_NoiseExtensions_fields &lp2p_pb_NoiseExtensions_msg
#define lp2p_pb_NoiseHandshakePayload_fields &lp2p_pb_NoiseHandshakePayload_msg

/* Maximum encoded size of messages (where known) */
/* lp2p_pb_NoiseExtensions_size depends on runtime parameters */
/* lp2p_pb_NoiseHandshakePayload_size depends on runtime parameters */

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif
/*==================== end src/proto/noise.pb.h ====================*/
/*==================== begin src/proto/envelope.pb.h ====================*/
/* Automatically generated nanopb header */
/* Generated by nanopb-0.4.7 */

#ifndef PB_LP2P_PB_ENVELOPE_PB_H_INCLUDED
#define PB_LP2P_PB_ENVELOPE_PB_H_INCLUDED
#include <pb.h>
/* #include "keys.pb.h" (amalgamated) */

#if PB_PROTO_HEADER_VERSION != 40
#error Regenerate this file with the current version of nanopb generator.
#endif

/* Struct definitions */
typedef PB_BYTES_ARRAY_T(64) lp2p_pb_Envelope_payload_type_t;
typedef PB_BYTES_ARRAY_T(512) lp2p_pb_Envelope_signature_t;
typedef struct _lp2p_pb_Envelope {
    pb_callback_t public_key;
    lp2p_pb_Envelope_payload_type_t payload_type;
    pb_callback_t payload;
    lp2p_pb_Envelope_signature_t signature;
} lp2p_pb_Envelope;


#ifdef __cplusplus
extern "C" {
#endif

/* Initializer values for message structs */
#define lp2p_pb_Envelope_init_default            {{{NULL}, NULL}, {0, {0}}, {{NULL}, NULL}, {0, {0}}}
#define lp2p_pb_Envelope_init_zero               {{{NULL}, NULL}, {0, {0}}, {{NULL}, NULL}, {0, {0}}}

/* Field tags (for use in manual encoding/decoding) */
#define lp2p_pb_Envelope_public_key_tag          1
#define lp2p_pb_Envelope_payload_type_tag        2
#define lp2p_pb_Envelope_payload_tag             3
#define lp2p_pb_Envelope_signature_tag           5

/* Struct field encoding specification for nanopb */
#define lp2p_pb_Envelope_FIELDLIST(X, a) \
X(a, CALLBACK, OPTIONAL, MESSAGE,  public_key,        1) \
X(a, STATIC,   SINGULAR, BYTES,    payload_type,      2) \
X(a, CALLBACK, SINGULAR, BYTES,    payload,           3) \
X(a, STATIC,   SINGULAR, BYTES,    signature,         5)
#define lp2p_pb_Envelope_CALLBACK pb_default_field_callback
#define lp2p_pb_Envelope_DEFAULT NULL
#define lp2p_pb_Envelope_public_key_MSGTYPE lp2p_pb_PublicKey

extern const pb_msgdesc_t lp2p_pb_Envelope_msg;

/* Defines for backwards compatibility with code written before nanopb-0.4.0 */
#define lp2p_pb_Envelope_fields &lp2p_pb_Envelope_msg

/* Maximum encoded size of messages (where known) */
/* lp2p_pb_Envelope_size depends on runtime parameters */

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif
/*==================== end src/proto/envelope.pb.h ====================*/
/*==================== begin src/proto/peer_record.pb.h ====================*/
/* Automatically generated nanopb header */
/* Generated by nanopb-0.4.7 */

#ifndef PB_LP2P_PB_PEER_RECORD_PB_H_INCLUDED
#define PB_LP2P_PB_PEER_RECORD_PB_H_INCLUDED
#include <pb.h>

#if PB_PROTO_HEADER_VERSION != 40
#error Regenerate this file with the current version of nanopb generator.
#endif

/* Struct definitions */
typedef struct _lp2p_pb_PeerRecord {
    pb_callback_t peer_id;
    uint64_t seq;
    pb_callback_t addresses;
} lp2p_pb_PeerRecord;

typedef struct _lp2p_pb_PeerRecord_AddressInfo {
    pb_callback_t multiaddr;
} lp2p_pb_PeerRecord_AddressInfo;


#ifdef __cplusplus
extern "C" {
#endif

/* Initializer values for message structs */
#define lp2p_pb_PeerRecord_init_default          {{{NULL}, NULL}, 0, {{NULL}, NULL}}
#define lp2p_pb_PeerRecord_AddressInfo_init_default {{{NULL}, NULL}}
#define lp2p_pb_PeerRecord_init_zero             {{{NULL}, NULL}, 0, {{NULL}, NULL}}
#define lp2p_pb_PeerRecord_AddressInfo_init_zero {{{NULL}, NULL}}

/* Field tags (for use in manual encoding/decoding) */
#define lp2p_pb_PeerRecord_peer_id_tag           1
#define lp2p_pb_PeerRecord_seq_tag               2
#define lp2p_pb_PeerRecord_addresses_tag         3
#define lp2p_pb_PeerRecord_AddressInfo_multiaddr_tag 1

/* Struct field encoding specification for nanopb */
#define lp2p_pb_PeerRecord_FIELDLIST(X, a) \
X(a, CALLBACK, SINGULAR, BYTES,    peer_id,           1) \
X(a, STATIC,   SINGULAR, UINT64,   seq,               2) \
X(a, CALLBACK, REPEATED, MESSAGE,  addresses,         3)
#define lp2p_pb_PeerRecord_CALLBACK pb_default_field_callback
#define lp2p_pb_PeerRecord_DEFAULT NULL
#define lp2p_pb_PeerRecord_addresses_MSGTYPE lp2p_pb_PeerRecord_AddressInfo

#define lp2p_pb_PeerRecord_AddressInfo_FIELDLIST(X, a) \
X(a, CALLBACK, SINGULAR, BYTES,    multiaddr,         1)
#define lp2p_pb_PeerRecord_AddressInfo_CALLBACK pb_default_field_callback
#define lp2p_pb_PeerRecord_AddressInfo_DEFAULT NULL

extern const pb_msgdesc_t lp2p_pb_PeerRecord_msg;
extern const pb_msgdesc_t lp2p_pb_PeerRecord_AddressInfo_msg;

/* Defines for backwards compatibility with code written before nanopb-0.4.0 */
#define lp2p_pb_PeerRecord_fields &lp2p_pb_PeerRecord_msg
#define lp2p_pb_PeerRecord_AddressInfo_fields &lp2p_pb_PeerRecord_AddressInfo_msg

/* Maximum encoded size of messages (where known) */
/* lp2p_pb_PeerRecord_size depends on runtime parameters */
/* lp2p_pb_PeerRecord_AddressInfo_size depends on runtime parameters */

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif
/*==================== end src/proto/peer_record.pb.h ====================*/
/*==================== begin src/proto/identify.pb.h ====================*/
/* Automatically generated nanopb header */
/* Generated by nanopb-0.4.7 */

#ifndef PB_LP2P_PB_IDENTIFY_PB_H_INCLUDED
#define PB_LP2P_PB_IDENTIFY_PB_H_INCLUDED
#include <pb.h>

#if PB_PROTO_HEADER_VERSION != 40
#error Regenerate this file with the current version of nanopb generator.
#endif

/* Struct definitions */
typedef struct _lp2p_pb_Identify {
    pb_callback_t publicKey;
    pb_callback_t listenAddrs;
    pb_callback_t protocols;
    pb_callback_t observedAddr;
    pb_callback_t protocolVersion;
    pb_callback_t agentVersion;
    pb_callback_t signedPeerRecord;
} lp2p_pb_Identify;


#ifdef __cplusplus
extern "C" {
#endif

/* Initializer values for message structs */
#define lp2p_pb_Identify_init_default            {{{NULL}, NULL}, {{NULL}, NULL}, {{NULL}, NULL}, {{NULL}, NULL}, {{NULL}, NULL}, {{NULL}, NULL}, {{NULL}, NULL}}
#define lp2p_pb_Identify_init_zero               {{{NULL}, NULL}, {{NULL}, NULL}, {{NULL}, NULL}, {{NULL}, NULL}, {{NULL}, NULL}, {{NULL}, NULL}, {{NULL}, NULL}}

/* Field tags (for use in manual encoding/decoding) */
#define lp2p_pb_Identify_publicKey_tag           1
#define lp2p_pb_Identify_listenAddrs_tag         2
#define lp2p_pb_Identify_protocols_tag           3
#define lp2p_pb_Identify_observedAddr_tag        4
#define lp2p_pb_Identify_protocolVersion_tag     5
#define lp2p_pb_Identify_agentVersion_tag        6
#define lp2p_pb_Identify_signedPeerRecord_tag    8

/* Struct field encoding specification for nanopb */
#define lp2p_pb_Identify_FIELDLIST(X, a) \
X(a, CALLBACK, OPTIONAL, BYTES,    publicKey,         1) \
X(a, CALLBACK, REPEATED, BYTES,    listenAddrs,       2) \
X(a, CALLBACK, REPEATED, BYTES,    protocols,         3) \
X(a, CALLBACK, OPTIONAL, BYTES,    observedAddr,      4) \
X(a, CALLBACK, OPTIONAL, BYTES,    protocolVersion,   5) \
X(a, CALLBACK, OPTIONAL, BYTES,    agentVersion,      6) \
X(a, CALLBACK, OPTIONAL, BYTES,    signedPeerRecord,   8)
#define lp2p_pb_Identify_CALLBACK pb_default_field_callback
#define lp2p_pb_Identify_DEFAULT NULL

extern const pb_msgdesc_t lp2p_pb_Identify_msg;

/* Defines for backwards compatibility with code written before nanopb-0.4.0 */
#define lp2p_pb_Identify_fields &lp2p_pb_Identify_msg

/* Maximum encoded size of messages (where known) */
/* lp2p_pb_Identify_size depends on runtime parameters */

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif
/*==================== end src/proto/identify.pb.h ====================*/
/*==================== begin src/host.h ====================*/
/* host.h - L5/L6 internal declarations: the swarm (connections, dialing, listeners, peerstore)
 * and the host (protocol router, streams, events) that protocols (L7) build on.
 *
 * Spec: libp2p/specs connections/README.md (upgrade order, roles, events).
 * Depends on: every layer below (runtime, tcp, mss, noise, yamux, crypto, multiaddr). */
#ifndef LP2P__HOST_H
#define LP2P__HOST_H

/* #include "tcp.h" (amalgamated) */
/* #include "mss.h" (amalgamated) */
/* #include "noise.h" (amalgamated) */
/* #include "yamux.h" (amalgamated) */

#define LP2P__MAX_PEER_ADDRS 16
#define LP2P__MAX_PEER_PROTOCOLS 128
#define LP2P__PROTO_MAX 256 /* bytes of a protocol ID we keep */

/* ---- peerstore ---------------------------------------------------------------------- */
typedef struct lp2p__peer_addr {
    lp2p__ma ma;        /* without /p2p/ */
    int64_t expires;    /* lp2p_now() ms; LP2P_FOREVER = permanent */
} lp2p__peer_addr;

typedef struct lp2p__peer {
    lp2p_peer_id id;
    lp2p__peer_addr addrs[LP2P__MAX_PEER_ADDRS];
    int n_addrs;
    uint8_t *pubkey; /* serialized PublicKey, or NULL */
    size_t pubkey_len;
    char **protocols; /* from identify */
    int n_protocols;
    char *agent_version, *protocol_version;
    lp2p__ma observed; /* what the peer told us it sees us as (len 0 = none) */
    uint64_t record_seq; /* highest signed peer record seq seen */
    struct lp2p__peer *next;
} lp2p__peer;

/* ---- connections ------------------------------------------------------------------- */
typedef struct lp2p__conn {
    lp2p_host *h;
    lp2p_peer_id peer;
    lp2p__yamux *mux;
    lp2p__ma local, remote; /* transport addresses (no /p2p/) */
    bool outbound;
    bool closed;          /* session ended; unlinked from the host */
    bool identified;      /* identify finished (ok or failed) */
    lp2p__waitq identify_wait;
    int refs;             /* host list + tasks using it; freed at 0 */
    int64_t opened_at;
    struct lp2p__conn *next;
} lp2p__conn;

/* A dial in flight (dedup: a second connect to the same peer waits for the first). */
typedef struct lp2p__dial {
    lp2p_peer_id peer;
    int result;       /* 1 = running, else LP2P_OK / error */
    lp2p__conn *conn; /* on success */
    lp2p__waitq done;
    int waiters;
    struct lp2p__dial *next;
} lp2p__dial;

/* ---- protocol router ------------------------------------------------------------------ */
typedef struct lp2p__handler {
    char *protocol;
    lp2p_handler_fn fn; /* NULL: queue LP2P_EVENT_STREAM */
    void *user;
    struct lp2p__handler *next;
} lp2p__handler;

/* Swarm notifications for protocols (identify, keepalive, later DHT/pubsub). */
typedef struct lp2p__notifee {
    void (*connected)(void *user, lp2p__conn *c);    /* runs in the connection's upgrade task */
    void (*disconnected)(void *user, lp2p__conn *c);
    void *user;
    struct lp2p__notifee *next;
} lp2p__notifee;

struct lp2p_stream {
    lp2p_host *h;
    lp2p__conn *conn;
    lp2p__pipe *pipe; /* the yamux stream; NULL after close/reset */
    lp2p_peer_id peer;
    char protocol[LP2P__PROTO_MAX];
    uint8_t reading, writing; /* one reader and one writer at a time (ERR_BUSY) */
    uint8_t in_handler;       /* released by the handler wrapper on return */
    uint8_t released;         /* close/reset called inside a handler */
};

typedef struct lp2p__listener {
    lp2p_host *h;
    lp2p__tcp_listener *tcp;
    lp2p__ma addr; /* bound address, no /p2p/ */
    lp2p_task task;
    struct lp2p__listener *next;
} lp2p__listener;

typedef struct lp2p__event_slot {
    lp2p_event ev;
    char *addr, *protocol; /* owned copies */
} lp2p__event_slot;

typedef struct lp2p__identify lp2p__identify; /* identify.c */

struct lp2p_host {
    lp2p__ctx ctx;
    lp2p__sched *sched;
    lp2p__identity identity;
    lp2p_config cfg; /* resolved: every zero replaced by its default */
    char *agent_version;
    lp2p__listener *listeners;
    char **addr_text; /* cached "<addr>/p2p/<id>" strings for lp2p_host_addr */
    int n_addr_text;
    lp2p__conn *conns;
    int n_conns;
    int n_inbound;          /* inbound connections being upgraded */
    lp2p__conn *graveyard;  /* closed, unreferenced, waiting for lp2p__swarm_reap */
    lp2p__dial *dials;
    int n_dials;
    lp2p__peer *peers;
    lp2p__handler *handlers;
    lp2p__notifee *notifees;
    lp2p__event_slot *events; /* ring */
    int ev_head, ev_count;
    lp2p__event_slot ev_out;  /* the slot handed out by next_event (strings live until next call) */
    lp2p__identify *identify;
    lp2p__buf info_text; /* lp2p_host_peer_info's strings */
    bool freeing;
};

/* ---- swarm (swarm.c) ---- */
LP2P__PRIV int lp2p__swarm_listen(lp2p_host *h, const char *addr);
LP2P__PRIV void lp2p__swarm_close_all(lp2p_host *h);
/* Parse "peer_or_addr" (full multiaddr with /p2p/, or a bare peer ID the peerstore knows) and
 * return a live connection (existing or new). The returned conn has a reference: drop it
 * with lp2p__conn_unref. */
LP2P__PRIV int lp2p__swarm_connect(lp2p_host *h, const char *peer_or_addr, lp2p__conn **out, int64_t deadline);
LP2P__PRIV lp2p__conn *lp2p__swarm_find_conn(lp2p_host *h, const lp2p_peer_id *peer);
LP2P__PRIV void lp2p__conn_unref(lp2p__conn *c);
LP2P__PRIV void lp2p__conn_close(lp2p__conn *c);
/* Free closed connections nothing references any more (never from a session's own task). */
LP2P__PRIV void lp2p__swarm_reap(lp2p_host *h);
LP2P__PRIV void lp2p__swarm_add_notifee(lp2p_host *h, lp2p__notifee *n);

/* ---- peerstore (swarm.c) ---- */
LP2P__PRIV lp2p__peer *lp2p__peerstore_get(lp2p_host *h, const lp2p_peer_id *id, bool create);
LP2P__PRIV void lp2p__peerstore_add_addr(lp2p_host *h, const lp2p_peer_id *id, const lp2p__ma *ma, int64_t ttl_ms);
LP2P__PRIV void lp2p__peerstore_set_protocols(lp2p_host *h, lp2p__peer *p, char **protos, int n); /* takes ownership */
LP2P__PRIV void lp2p__peerstore_free(lp2p_host *h);

/* ---- host (host.c) ---- */
LP2P__PRIV void lp2p__host_emit(lp2p_host *h, lp2p_event_type type, const lp2p_peer_id *peer, const char *addr,
                                const char *protocol, lp2p_stream *stream, int err);
/* A new inbound yamux stream on c: negotiate the protocol and dispatch (runs as a task). */
LP2P__PRIV void lp2p__host_on_stream(lp2p__conn *c, lp2p__pipe *stream);
/* Open a stream with protocol on an existing connection. */
LP2P__PRIV int lp2p__host_open_on(lp2p__conn *c, const char *protocol, int64_t deadline, lp2p_stream **out);
/* The protocols we handle (for identify and "ls"); returns count, fills up to max. */
LP2P__PRIV int lp2p__host_protocols(lp2p_host *h, const char **out, int max);
/* Refresh h->addr_text after listeners change. */
LP2P__PRIV void lp2p__host_addrs_changed(lp2p_host *h);

/* ---- built-in protocols ---- */
LP2P__PRIV int lp2p__identify_init(lp2p_host *h);
LP2P__PRIV void lp2p__identify_free(lp2p_host *h);
/* Push our identify to every connection (addresses or protocols changed). */
LP2P__PRIV void lp2p__identify_push_all(lp2p_host *h);
LP2P__PRIV int lp2p__ping_init(lp2p_host *h);

#endif
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
/* multibase.c - L0: base58btc, base32 (RFC 4648, lowercase, no padding) and hex codecs.
 *
 * Spec: multiformats/multibase (prefixes 'z' base58btc, 'b' base32, 'f' base16); base58btc uses
 * the Bitcoin alphabet; base32 is RFC 4648 §6 without '=' padding. These are the text forms of
 * peer IDs (peer-ids/peer-ids.md "String representation") and of /p2p/ in multiaddrs.
 * Conventions for every function here:
 *   - enc writes a NUL-terminated string and returns its length (without the NUL);
 *     LP2P_ERR_INVALID if cap cannot hold it (with the NUL);
 *   - dec returns the number of bytes written; LP2P_ERR_BADADDR for a character outside the
 *     alphabet, an impossible length or an over-long input; LP2P_ERR_INVALID if cap is too small.
 * base58 is quadratic, so both directions are capped at LP2P__BASE58_MAX bytes of binary data
 * (peer IDs are at most 63 bytes; the cap only stops a peer from making us burn CPU).
 * Depends on: base.h. */
/* #include "base.h" (amalgamated) */

#define LP2P__BASE58_MAX 256     /* binary bytes */
#define LP2P__BASE58_MAXCHARS 350 /* ceil(256 * log(256) / log(58)) */

static const char lp2p__b58_alphabet[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/* value of a base58 character, or -1 */
static int lp2p__b58_value(unsigned char c) {
    const char *p = (c != 0) ? strchr(lp2p__b58_alphabet, c) : NULL;
    return p ? (int)(p - lp2p__b58_alphabet) : -1;
}

LP2P__PRIV ptrdiff_t lp2p__base58_enc(const uint8_t *in, size_t n, char *out, size_t cap) {
    uint8_t digits[LP2P__BASE58_MAXCHARS]; /* base58 digits, most significant first */
    size_t zeros = 0, ndig = 0;
    if (n > LP2P__BASE58_MAX || (n && !in) || !out) return LP2P_ERR_INVALID;
    while (zeros < n && in[zeros] == 0) zeros++;
    /* repeated multiply-and-add: digits = digits * 256 + byte, kept in a right-aligned window */
    for (size_t i = zeros; i < n; i++) {
        unsigned carry = in[i];
        size_t j = 0;
        for (; j < ndig || carry; j++) {
            size_t k = sizeof digits - 1 - j;
            if (j < ndig) carry += (unsigned)digits[k] << 8;
            digits[k] = (uint8_t)(carry % 58);
            carry /= 58;
        }
        ndig = j;
    }
    if (zeros + ndig + 1 > cap) return LP2P_ERR_INVALID;
    memset(out, '1', zeros);
    for (size_t j = 0; j < ndig; j++) out[zeros + j] = lp2p__b58_alphabet[digits[sizeof digits - ndig + j]];
    out[zeros + ndig] = '\0';
    return (ptrdiff_t)(zeros + ndig);
}

LP2P__PRIV ptrdiff_t lp2p__base58_dec(const char *in, size_t n, uint8_t *out, size_t cap) {
    uint8_t bytes[LP2P__BASE58_MAX]; /* big-endian value, right-aligned */
    size_t zeros = 0, nbytes = 0;
    if (n && !in) return LP2P_ERR_INVALID;
    if (n > LP2P__BASE58_MAXCHARS) return LP2P_ERR_BADADDR;
    while (zeros < n && in[zeros] == '1') zeros++;
    for (size_t i = zeros; i < n; i++) {
        int v = lp2p__b58_value((unsigned char)in[i]);
        if (v < 0) return LP2P_ERR_BADADDR;
        unsigned carry = (unsigned)v;
        size_t j = 0;
        for (; j < nbytes || carry; j++) {
            if (j >= sizeof bytes) return LP2P_ERR_BADADDR; /* more than LP2P__BASE58_MAX bytes */
            size_t k = sizeof bytes - 1 - j;
            if (j < nbytes) carry += (unsigned)bytes[k] * 58;
            bytes[k] = (uint8_t)carry;
            carry >>= 8;
        }
        nbytes = j;
    }
    if (zeros + nbytes > LP2P__BASE58_MAX) return LP2P_ERR_BADADDR;
    if (zeros + nbytes > cap || (zeros + nbytes && !out)) return LP2P_ERR_INVALID;
    memset(out, 0, zeros);
    memcpy(out + zeros, bytes + sizeof bytes - nbytes, nbytes);
    return (ptrdiff_t)(zeros + nbytes);
}

static const char lp2p__b32_alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";

LP2P__PRIV ptrdiff_t lp2p__base32_enc(const uint8_t *in, size_t n, char *out, size_t cap) {
    if ((n && !in) || !out || n > ((size_t)-1 - 8) / 8) return LP2P_ERR_INVALID;
    size_t len = (n * 8 + 4) / 5, o = 0;
    if (len + 1 > cap) return LP2P_ERR_INVALID;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            out[o++] = lp2p__b32_alphabet[(acc >> bits) & 31];
        }
    }
    if (bits) out[o++] = lp2p__b32_alphabet[(acc << (5 - bits)) & 31];
    out[o] = '\0';
    return (ptrdiff_t)o;
}

static int lp2p__b32_value(unsigned char c) {
    if (c >= 'a' && c <= 'z') return c - 'a';
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= '2' && c <= '7') return c - '2' + 26;
    return -1;
}

LP2P__PRIV ptrdiff_t lp2p__base32_dec(const char *in, size_t n, uint8_t *out, size_t cap) {
    if (n && !in) return LP2P_ERR_INVALID;
    /* unpadded RFC 4648 text never has 1, 3 or 6 characters in its last 8-character group */
    size_t rem = n % 8;
    if (rem == 1 || rem == 3 || rem == 6) return LP2P_ERR_BADADDR;
    size_t len = n / 8 * 5 + rem * 5 / 8, o = 0;
    if (len > cap || (len && !out)) return LP2P_ERR_INVALID;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = lp2p__b32_value((unsigned char)in[i]);
        if (v < 0) return LP2P_ERR_BADADDR;
        acc = (acc << 5) | (uint32_t)v;
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    /* the leftover bits must be zero, so that each byte string has exactly one text form */
    if (acc & ((1u << bits) - 1)) return LP2P_ERR_BADADDR;
    return (ptrdiff_t)o;
}

LP2P__PRIV ptrdiff_t lp2p__hex_enc(const uint8_t *in, size_t n, char *out, size_t cap) {
    static const char digits[] = "0123456789abcdef";
    if ((n && !in) || !out || n > ((size_t)-1 - 1) / 2 || n * 2 + 1 > cap) return LP2P_ERR_INVALID;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
    return (ptrdiff_t)(2 * n);
}

static int lp2p__hex_value(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

LP2P__PRIV ptrdiff_t lp2p__hex_dec(const char *in, size_t n, uint8_t *out, size_t cap) {
    if (n && !in) return LP2P_ERR_INVALID;
    if (n % 2) return LP2P_ERR_BADADDR;
    if (n / 2 > cap || (n && !out)) return LP2P_ERR_INVALID;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = lp2p__hex_value((unsigned char)in[2 * i]), lo = lp2p__hex_value((unsigned char)in[2 * i + 1]);
        if (hi < 0 || lo < 0) return LP2P_ERR_BADADDR;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return (ptrdiff_t)(n / 2);
}
/*==================== end src/multibase.c ====================*/
/*==================== begin src/crypto.c ====================*/
/* crypto.c - L1: the thin crypto layer over libsodium, BearSSL 0.6 and (optionally) libsecp256k1.
 *
 * libsodium: CSPRNG, Ed25519, X25519, ChaCha20-Poly1305 (IETF). BearSSL: SHA-256, HKDF, RSA PKCS#1
 * v1.5 and ECDSA verification. libsecp256k1 (LP2P_ENABLE_SECP256K1): secp256k1 ECDSA verification.
 * Spec: peer-ids/peer-ids.md ("How Keys are Encoded and Messages Signed"), noise/README.md
 * (HKDF and the little-endian AEAD nonce), RFC 5869, RFC 7748, RFC 8032, RFC 8439.
 * RSA and ECDSA public keys arrive as PKIX SubjectPublicKeyInfo DER (RFC 5280 §4.1); they are read
 * by a small, bounded, strict-DER reader below (no allocation, no recursion).
 * Depends on: base.h, crypto.h. */
/* #include "crypto.h" (amalgamated) */

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
/*==================== end src/crypto.c ====================*/
/*==================== begin src/peerid.c ====================*/
/* peerid.c - placeholder, being written */
/*==================== end src/peerid.c ====================*/
/*==================== begin src/multiaddr.c ====================*/
/* multiaddr.c - L0: multiaddr text <-> binary, validation, component helpers.
 *
 * Spec: multiformats/multiaddr README.md + protocols.csv; libp2p/specs addressing/README.md.
 * Where the spec is silent we follow go-multiaddr (codec.go, transcoders.go), the most widely
 * deployed reader of our binary addresses:
 *   - text: must begin with '/', trailing slashes are dropped ("/ip4/1.2.3.4/tcp/1/" is ok),
 *     "/ipfs/<id>" is read as /p2p/ and printed as /p2p/;
 *   - unix is a path protocol: it takes the rest of the text, value keeps its leading '/'
 *     ("/unix/tmp/s" = value "/tmp/s"), nothing may follow it in binary either;
 *   - memory is a fixed 8-byte big-endian uint64 (go and rust; protocols.csv says V but no
 *     implementation encodes it that way);
 *   - length-prefixed values must not be empty; dns names, zones and SNI hold no '/';
 *   - certhash text is any multibase of a multihash, printed as base64url ('u') like go.
 * Binary input (lp2p__ma_from_bytes) comes from peers (identify listen/observed addrs), so
 * it is strict: minimal varints, known codes, exact lengths, bounded total size, and every
 * value checked so that the text form always parses back to the same bytes.
 * Depends on: base.h (varints, base58/base32/hex), crypto.h (peer IDs), <arpa/inet.h>. */
/* #include "multiaddr.h" (amalgamated) */

#include <arpa/inet.h>

/* value shapes */
enum {
    LP2P__MAK_NONE,   /* no value */
    LP2P__MAK_IP4,    /* 4 bytes */
    LP2P__MAK_IP6,    /* 16 bytes */
    LP2P__MAK_PORT,   /* 2 bytes big-endian */
    LP2P__MAK_CIDR,   /* 1 byte */
    LP2P__MAK_NAME,   /* V: dns names, sni, ip6zone */
    LP2P__MAK_P2P,    /* V: peer ID multihash */
    LP2P__MAK_UNIX,   /* V: path, terminal */
    LP2P__MAK_CERT,   /* V: multihash, text is multibase */
    LP2P__MAK_MEMORY  /* 8 bytes big-endian */
};

typedef struct lp2p__ma_proto {
    uint32_t code;
    int16_t size; /* value bytes; -1 = uvarint length prefix */
    uint8_t kind;
    const char *name;
} lp2p__ma_proto;

static const lp2p__ma_proto lp2p__ma_protos[] = {
    {LP2P__MA_IP4, 4, LP2P__MAK_IP4, "ip4"},
    {LP2P__MA_TCP, 2, LP2P__MAK_PORT, "tcp"},
    {LP2P__MA_UDP, 2, LP2P__MAK_PORT, "udp"},
    {33, 2, LP2P__MAK_PORT, "dccp"},
    {132, 2, LP2P__MAK_PORT, "sctp"},
    {LP2P__MA_IP6, 16, LP2P__MAK_IP6, "ip6"},
    {LP2P__MA_IP6ZONE, -1, LP2P__MAK_NAME, "ip6zone"},
    {43, 1, LP2P__MAK_CIDR, "ipcidr"},
    {LP2P__MA_DNS, -1, LP2P__MAK_NAME, "dns"},
    {LP2P__MA_DNS4, -1, LP2P__MAK_NAME, "dns4"},
    {LP2P__MA_DNS6, -1, LP2P__MAK_NAME, "dns6"},
    {LP2P__MA_DNSADDR, -1, LP2P__MAK_NAME, "dnsaddr"},
    {LP2P__MA_P2P, -1, LP2P__MAK_P2P, "p2p"},
    {LP2P__MA_P2P_CIRCUIT, 0, LP2P__MAK_NONE, "p2p-circuit"},
    {LP2P__MA_WS, 0, LP2P__MAK_NONE, "ws"},
    {LP2P__MA_WSS, 0, LP2P__MAK_NONE, "wss"},
    {LP2P__MA_TLS, 0, LP2P__MAK_NONE, "tls"},
    {LP2P__MA_SNI, -1, LP2P__MAK_NAME, "sni"},
    {454, 0, LP2P__MAK_NONE, "noise"},
    {460, 0, LP2P__MAK_NONE, "quic"},
    {LP2P__MA_QUIC_V1, 0, LP2P__MAK_NONE, "quic-v1"},
    {LP2P__MA_WEBTRANSPORT, 0, LP2P__MAK_NONE, "webtransport"},
    {LP2P__MA_CERTHASH, -1, LP2P__MAK_CERT, "certhash"},
    {280, 0, LP2P__MAK_NONE, "webrtc-direct"},
    {281, 0, LP2P__MAK_NONE, "webrtc"},
    {480, 0, LP2P__MAK_NONE, "http"},
    {443, 0, LP2P__MAK_NONE, "https"},
    {301, 0, LP2P__MAK_NONE, "udt"},
    {302, 0, LP2P__MAK_NONE, "utp"},
    {LP2P__MA_UNIX, -1, LP2P__MAK_UNIX, "unix"},
    {LP2P__MA_MEMORY, 8, LP2P__MAK_MEMORY, "memory"},
};

#define LP2P__MA_NAME_MAX 255 /* dns names (RFC 1035: 253 chars), zones, SNI */

static int lp2p__ma_fail(const char **why, const char *reason) {
    if (why) *why = reason;
    return LP2P_ERR_BADADDR;
}

static const lp2p__ma_proto *lp2p__ma_proto_by_code(uint64_t code) {
    for (size_t i = 0; i < LP2P__COUNT(lp2p__ma_protos); i++)
        if (lp2p__ma_protos[i].code == code) return &lp2p__ma_protos[i];
    return NULL;
}

static const lp2p__ma_proto *lp2p__ma_proto_by_name(const char *s, size_t n) {
    if (n == 4 && memcmp(s, "ipfs", 4) == 0) return lp2p__ma_proto_by_code(LP2P__MA_P2P); /* legacy alias */
    for (size_t i = 0; i < LP2P__COUNT(lp2p__ma_protos); i++) {
        const char *name = lp2p__ma_protos[i].name;
        if (strlen(name) == n && memcmp(name, s, n) == 0) return &lp2p__ma_protos[i];
    }
    return NULL;
}

/* ---- base64 / base64url (multibase 'm','M','u','U'); only certhash needs them ---------- */
static const char lp2p__b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char lp2p__b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Unpadded encode; returns chars written (NUL-terminated) or ERR_INVALID if cap too small. */
static ptrdiff_t lp2p__b64_enc(const char *alpha, const uint8_t *in, size_t n, char *out, size_t cap) {
    size_t need = (n / 3) * 4 + (n % 3 ? n % 3 + 1 : 0);
    if (need + 1 > cap) return LP2P_ERR_INVALID;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n) v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n) v |= in[i + 2];
        size_t chars = n - i >= 3 ? 4 : n - i + 1;
        for (size_t k = 0; k < chars; k++) out[o++] = alpha[(v >> (18 - 6 * k)) & 63];
    }
    out[o] = 0;
    return (ptrdiff_t)o;
}

/* Decode (padding '=' allowed only at the end); returns bytes or ERR_BADADDR. */
static ptrdiff_t lp2p__b64_dec(const char *alpha, const char *in, size_t n, uint8_t *out, size_t cap) {
    while (n > 0 && in[n - 1] == '=') n--;
    if (n % 4 == 1) return LP2P_ERR_BADADDR;
    size_t o = 0, bits = 0;
    uint32_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        const char *c = in[i] ? strchr(alpha, in[i]) : NULL;
        if (!c) return LP2P_ERR_BADADDR;
        acc = (acc << 6) | (uint32_t)(c - alpha);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap) return LP2P_ERR_BADADDR;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    return (ptrdiff_t)o;
}

/* A multihash: uvarint code, uvarint length, exactly that many digest bytes. */
static bool lp2p__ma_multihash_ok(const uint8_t *p, size_t n) {
    uint64_t code, len;
    int a = lp2p__uvarint_get(p, n, &code);
    if (a <= 0) return false;
    int b = lp2p__uvarint_get(p + a, n - (size_t)a, &len);
    if (b <= 0) return false;
    return len == n - (size_t)a - (size_t)b;
}

/* ---- value checks shared by text and binary ------------------------------------------------ */
static bool lp2p__ma_name_ok(const uint8_t *v, size_t n) {
    if (n == 0 || n > LP2P__MA_NAME_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if (v[i] <= 0x20 || v[i] == 0x7f || v[i] == '/') return false; /* printable, no separators */
    return true;
}

static bool lp2p__ma_unix_ok(const uint8_t *v, size_t n) {
    if (n < 2 || v[0] != '/' || v[n - 1] == '/') return false; /* go: path must start, not end, in '/' */
    for (size_t i = 0; i < n; i++)
        if (v[i] < 0x20 || v[i] == 0x7f) return false;
    return true;
}

/* Validate a binary value for proto pr; returns NULL when fine, else the reason. */
static const char *lp2p__ma_value_check(const lp2p__ma_proto *pr, const uint8_t *v, size_t n) {
    lp2p_peer_id id;
    switch (pr->kind) {
    case LP2P__MAK_NAME: return lp2p__ma_name_ok(v, n) ? NULL : "bad name";
    case LP2P__MAK_UNIX: return lp2p__ma_unix_ok(v, n) ? NULL : "bad unix path";
    case LP2P__MAK_P2P: return lp2p__peer_id_from_bytes(v, n, &id) == LP2P_OK ? NULL : "bad peer ID";
    case LP2P__MAK_CERT: return lp2p__ma_multihash_ok(v, n) ? NULL : "bad certhash";
    default: return NULL; /* fixed-size values: every bit pattern is valid */
    }
}

/* ---- one binary component ------------------------------------------------------------------ */
typedef struct lp2p__ma_comp {
    const lp2p__ma_proto *pr;
    const uint8_t *v;
    size_t vlen;
    size_t next; /* offset after the component */
} lp2p__ma_comp;

/* Decode the component at p[off..n) without checking its value. */
static int lp2p__ma_comp_get(const uint8_t *p, size_t n, size_t off, lp2p__ma_comp *c, const char **why) {
    uint64_t code, len;
    int k = lp2p__uvarint_get(p + off, n - off, &code);
    if (k == 0) return lp2p__ma_fail(why, "truncated protocol code");
    if (k < 0) return lp2p__ma_fail(why, "bad protocol code varint");
    off += (size_t)k;
    c->pr = lp2p__ma_proto_by_code(code);
    if (!c->pr) return lp2p__ma_fail(why, "unknown protocol code");
    if (c->pr->size >= 0) {
        len = (uint64_t)c->pr->size;
    } else {
        k = lp2p__uvarint_get(p + off, n - off, &len);
        if (k == 0) return lp2p__ma_fail(why, "truncated value length");
        if (k < 0) return lp2p__ma_fail(why, "bad value length varint");
        off += (size_t)k;
        if (len == 0) return lp2p__ma_fail(why, "empty value");
    }
    if (len > n - off) return lp2p__ma_fail(why, "truncated value");
    c->v = p + off;
    c->vlen = (size_t)len;
    c->next = off + (size_t)len;
    return LP2P_OK;
}

static ptrdiff_t lp2p__ma_str_impl(const lp2p__ma *ma, char *out, size_t cap);

/* Every valid address must print within LP2P__MA_STRLEN (zero-size protocols and ports
 * expand ~6x from binary to text, so 400 bytes alone do not guarantee it). */
static bool lp2p__ma_text_fits(const lp2p__ma *m) {
    char tmp[LP2P__MA_STRLEN];
    return lp2p__ma_str_impl(m, tmp, sizeof tmp) >= 0;
}

LP2P__PRIV int lp2p__ma_from_bytes(const uint8_t *p, size_t n, lp2p__ma *out, const char **why) {
    if (n == 0) return lp2p__ma_fail(why, "empty multiaddr");
    if (n > LP2P__MA_MAX) return lp2p__ma_fail(why, "multiaddr too long");
    size_t off = 0;
    while (off < n) {
        lp2p__ma_comp c;
        int rc = lp2p__ma_comp_get(p, n, off, &c, why);
        if (rc) return rc;
        const char *bad = lp2p__ma_value_check(c.pr, c.v, c.vlen);
        if (bad) return lp2p__ma_fail(why, bad);
        if (c.pr->kind == LP2P__MAK_UNIX && c.next != n) return lp2p__ma_fail(why, "component after unix path");
        off = c.next;
    }
    lp2p__ma m;
    m.len = (uint16_t)n;
    memcpy(m.b, p, n);
    if (!lp2p__ma_text_fits(&m)) return lp2p__ma_fail(why, "multiaddr text too long");
    *out = m;
    return LP2P_OK;
}

LP2P__PRIV int lp2p__ma_next(const lp2p__ma *ma, size_t *off, uint32_t *code, const uint8_t **value, size_t *value_len) {
    lp2p__ma_comp c;
    if (*off >= ma->len || ma->len > LP2P__MA_MAX) return 0;
    if (lp2p__ma_comp_get(ma->b, ma->len, *off, &c, NULL)) return 0; /* malformed: stop, never loop */
    *code = c.pr->code;
    *value = c.v;
    *value_len = c.vlen;
    *off = c.next;
    return 1;
}

/* ---- text -> binary -------------------------------------------------------------------------- */
/* Parse an unsigned decimal of at most max; false on empty, non-digit or overflow. */
static bool lp2p__ma_dec(const char *s, size_t n, uint64_t max, uint64_t *out) {
    uint64_t v = 0;
    if (n == 0) return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (max - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* certhash text: multibase prefix + data, decoded to a multihash. */
static ptrdiff_t lp2p__ma_multibase_dec(const char *s, size_t n, uint8_t *out, size_t cap) {
    if (n < 2) return LP2P_ERR_BADADDR;
    const char *d = s + 1;
    size_t dn = n - 1;
    switch (s[0]) {
    case 'u': case 'U': return lp2p__b64_dec(lp2p__b64_url, d, dn, out, cap);
    case 'm': case 'M': return lp2p__b64_dec(lp2p__b64_std, d, dn, out, cap);
    case 'b': case 'B': return lp2p__base32_dec(d, dn, out, cap);
    case 'z': return lp2p__base58_dec(d, dn, out, cap);
    case 'f': case 'F': return lp2p__hex_dec(d, dn, out, cap);
    default: return LP2P_ERR_BADADDR;
    }
}

/* Encode the text value s[0..n) of proto pr into out (cap bytes); returns bytes or BADADDR. */
static ptrdiff_t lp2p__ma_value_from_text(const lp2p__ma_proto *pr, const char *s, size_t n, uint8_t *out, size_t cap,
                                          const char **why) {
    char tmp[LP2P_PEER_ID_STRLEN];
    uint64_t v;
    switch (pr->kind) {
    case LP2P__MAK_IP4:
    case LP2P__MAK_IP6:
        if (n >= sizeof tmp) return lp2p__ma_fail(why, pr->kind == LP2P__MAK_IP4 ? "bad ip4 address" : "bad ip6 address");
        memcpy(tmp, s, n), tmp[n] = 0;
        if (inet_pton(pr->kind == LP2P__MAK_IP4 ? AF_INET : AF_INET6, tmp, out) != 1)
            return lp2p__ma_fail(why, pr->kind == LP2P__MAK_IP4 ? "bad ip4 address" : "bad ip6 address");
        return pr->size;
    case LP2P__MAK_PORT:
        if (n == 0) return lp2p__ma_fail(why, "bad port");
        for (size_t i = 0; i < n; i++)
            if (s[i] < '0' || s[i] > '9') return lp2p__ma_fail(why, "bad port");
        if (!lp2p__ma_dec(s, n, 65535, &v)) return lp2p__ma_fail(why, "port out of range");
        lp2p__put_be16(out, (uint16_t)v);
        return 2;
    case LP2P__MAK_CIDR:
        if (!lp2p__ma_dec(s, n, 255, &v)) return lp2p__ma_fail(why, "bad ipcidr mask");
        out[0] = (uint8_t)v;
        return 1;
    case LP2P__MAK_MEMORY:
        if (!lp2p__ma_dec(s, n, UINT64_MAX, &v)) return lp2p__ma_fail(why, "bad memory address");
        lp2p__put_be64(out, v);
        return 8;
    case LP2P__MAK_NAME:
    case LP2P__MAK_UNIX:
        if (n > cap) return lp2p__ma_fail(why, "multiaddr too long");
        memcpy(out, s, n);
        return (ptrdiff_t)n; /* checked by lp2p__ma_value_check */
    case LP2P__MAK_P2P: {
        lp2p_peer_id id;
        if (n >= sizeof tmp) return lp2p__ma_fail(why, "bad peer ID");
        memcpy(tmp, s, n), tmp[n] = 0;
        if (lp2p_peer_id_parse(tmp, &id) != LP2P_OK || id.len > cap) return lp2p__ma_fail(why, "bad peer ID");
        memcpy(out, id.bytes, id.len);
        return id.len;
    }
    case LP2P__MAK_CERT: {
        ptrdiff_t k = lp2p__ma_multibase_dec(s, n, out, cap);
        return k > 0 ? k : lp2p__ma_fail(why, "bad certhash");
    }
    default: return lp2p__ma_fail(why, "unexpected value");
    }
}

/* Append code + value for one text component to m. */
static int lp2p__ma_put(lp2p__ma *m, const lp2p__ma_proto *pr, const char *s, size_t n, const char **why) {
    uint8_t val[LP2P__MA_MAX];
    ptrdiff_t vlen = 0;
    if (pr->size != 0) {
        vlen = lp2p__ma_value_from_text(pr, s, n, val, sizeof val, why);
        if (vlen < 0) return (int)vlen;
        const char *bad = lp2p__ma_value_check(pr, val, (size_t)vlen);
        if (bad) return lp2p__ma_fail(why, bad);
    }
    size_t need = lp2p__uvarint_len(pr->code) + (size_t)vlen + (pr->size < 0 ? lp2p__uvarint_len((uint64_t)vlen) : 0);
    if (need > (size_t)(LP2P__MA_MAX - m->len)) return lp2p__ma_fail(why, "multiaddr too long");
    m->len = (uint16_t)(m->len + lp2p__uvarint_put(m->b + m->len, pr->code));
    if (pr->size < 0) m->len = (uint16_t)(m->len + lp2p__uvarint_put(m->b + m->len, (uint64_t)vlen));
    memcpy(m->b + m->len, val, (size_t)vlen);
    m->len = (uint16_t)(m->len + vlen);
    return LP2P_OK;
}

static size_t lp2p__ma_seg_end(const char *t, size_t pos, size_t n) {
    while (pos < n && t[pos] != '/') pos++;
    return pos;
}

LP2P__PRIV int lp2p__ma_parse(const char *text, lp2p__ma *out, const char **why) {
    if (!text) return lp2p__ma_fail(why, "empty multiaddr");
    size_t n = strlen(text);
    while (n > 0 && text[n - 1] == '/') n--; /* go-multiaddr drops trailing slashes */
    if (n == 0) return lp2p__ma_fail(why, "empty multiaddr");
    if (text[0] != '/') return lp2p__ma_fail(why, "multiaddr must begin with '/'");
    lp2p__ma m;
    m.len = 0;
    size_t pos = 1;
    while (pos <= n) {
        size_t end = lp2p__ma_seg_end(text, pos, n);
        const lp2p__ma_proto *pr = lp2p__ma_proto_by_name(text + pos, end - pos);
        if (!pr) return lp2p__ma_fail(why, "unknown protocol");
        pos = end + 1;
        const char *v = NULL;
        size_t vn = 0;
        if (pr->size != 0) {
            if (pos > n) return lp2p__ma_fail(why, "missing protocol value");
            if (pr->kind == LP2P__MAK_UNIX) { /* path: the rest of the text, with its '/' */
                v = text + pos - 1, vn = n - pos + 1, pos = n + 1;
            } else {
                end = lp2p__ma_seg_end(text, pos, n);
                v = text + pos, vn = end - pos, pos = end + 1;
            }
        }
        int rc = lp2p__ma_put(&m, pr, v, vn, why);
        if (rc) return rc;
    }
    if (!lp2p__ma_text_fits(&m)) return lp2p__ma_fail(why, "multiaddr text too long");
    *out = m;
    return LP2P_OK;
}

/* ---- binary -> text ---------------------------------------------------------------------------- */
typedef struct lp2p__ma_out {
    char *p;
    size_t cap, len;
    bool overflow;
} lp2p__ma_out;

static void lp2p__ma_emit(lp2p__ma_out *o, const void *s, size_t n) {
    if (o->overflow || n >= o->cap - o->len) {
        o->overflow = true;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = 0;
}

static void lp2p__ma_emit_u64(lp2p__ma_out *o, uint64_t v) {
    char d[24];
    size_t i = sizeof d;
    do d[--i] = (char)('0' + v % 10), v /= 10;
    while (v);
    lp2p__ma_emit(o, d + i, sizeof d - i);
}

/* Print one validated value. Returns LP2P_OK or ERR_BADADDR. */
static int lp2p__ma_emit_value(lp2p__ma_out *o, const lp2p__ma_proto *pr, const uint8_t *v, size_t n) {
    char tmp[LP2P__MA_STRLEN];
    switch (pr->kind) {
    case LP2P__MAK_IP4:
    case LP2P__MAK_IP6:
        /* glibc inet_ntop prints RFC 5952 form, and ::ffff:a.b.c.d for mapped v4 like go */
        if (!inet_ntop(pr->kind == LP2P__MAK_IP4 ? AF_INET : AF_INET6, v, tmp, sizeof tmp)) return LP2P_ERR_BADADDR;
        lp2p__ma_emit(o, tmp, strlen(tmp));
        return LP2P_OK;
    case LP2P__MAK_PORT: lp2p__ma_emit_u64(o, lp2p__be16(v)); return LP2P_OK;
    case LP2P__MAK_CIDR: lp2p__ma_emit_u64(o, v[0]); return LP2P_OK;
    case LP2P__MAK_MEMORY: lp2p__ma_emit_u64(o, lp2p__be64(v)); return LP2P_OK;
    case LP2P__MAK_NAME: lp2p__ma_emit(o, v, n); return LP2P_OK;
    case LP2P__MAK_UNIX: lp2p__ma_emit(o, v + 1, n - 1); return LP2P_OK; /* the '/' before it is the path's */
    case LP2P__MAK_P2P: {
        lp2p_peer_id id;
        if (lp2p__peer_id_from_bytes(v, n, &id) != LP2P_OK) return LP2P_ERR_BADADDR;
        if (lp2p_peer_id_str(&id, tmp, sizeof tmp) < 0) return LP2P_ERR_BADADDR;
        lp2p__ma_emit(o, tmp, strlen(tmp));
        return LP2P_OK;
    }
    case LP2P__MAK_CERT:
        tmp[0] = 'u';
        if (lp2p__b64_enc(lp2p__b64_url, v, n, tmp + 1, sizeof tmp - 1) < 0) return LP2P_ERR_BADADDR;
        lp2p__ma_emit(o, tmp, strlen(tmp));
        return LP2P_OK;
    default: return LP2P_OK;
    }
}

static ptrdiff_t lp2p__ma_str_impl(const lp2p__ma *ma, char *out, size_t cap) {
    if (!out || cap == 0) return LP2P_ERR_INVALID;
    lp2p__ma_out o = {out, cap, 0, false};
    size_t off = 0;
    out[0] = 0;
    if (ma->len == 0 || ma->len > LP2P__MA_MAX) return LP2P_ERR_BADADDR;
    while (off < ma->len) {
        lp2p__ma_comp c;
        if (lp2p__ma_comp_get(ma->b, ma->len, off, &c, NULL)) return LP2P_ERR_BADADDR;
        if (lp2p__ma_value_check(c.pr, c.v, c.vlen)) return LP2P_ERR_BADADDR;
        lp2p__ma_emit(&o, "/", 1);
        lp2p__ma_emit(&o, c.pr->name, strlen(c.pr->name));
        if (c.pr->size != 0) {
            lp2p__ma_emit(&o, "/", 1);
            if (lp2p__ma_emit_value(&o, c.pr, c.v, c.vlen)) return LP2P_ERR_BADADDR;
        }
        off = c.next;
    }
    if (o.overflow) {
        out[0] = 0;
        return LP2P_ERR_INVALID;
    }
    return (ptrdiff_t)o.len;
}

LP2P__PRIV ptrdiff_t lp2p__ma_str(const lp2p__ma *ma, char *out, size_t cap) { return lp2p__ma_str_impl(ma, out, cap); }

/* ---- helpers for the swarm ------------------------------------------------------------------- */
LP2P__PRIV int lp2p__ma_split_p2p(const lp2p__ma *ma, lp2p__ma *base, lp2p_peer_id *id) {
    size_t off = 0, last = 0;
    uint32_t code = 0;
    const uint8_t *v = NULL;
    size_t vn = 0;
    for (size_t at = 0; lp2p__ma_next(ma, &off, &code, &v, &vn) == 1; at = off) last = at;
    lp2p_peer_id pid;
    if (code != LP2P__MA_P2P || !v || lp2p__peer_id_from_bytes(v, vn, &pid) != LP2P_OK) {
        if (base) *base = *ma;
        return 0;
    }
    if (id) *id = pid;
    if (base) {
        lp2p__ma tmp = *ma; /* base may alias ma */
        tmp.len = (uint16_t)last;
        *base = tmp;
    }
    return 1;
}

LP2P__PRIV int lp2p__ma_append_p2p(lp2p__ma *ma, const lp2p_peer_id *id) {
    size_t need = 2 + lp2p__uvarint_len(id->len) + id->len;
    if (id->len == 0 || id->len > sizeof id->bytes || ma->len > LP2P__MA_MAX || need > (size_t)(LP2P__MA_MAX - ma->len))
        return LP2P_ERR_INVALID;
    lp2p__ma m = *ma;
    size_t n = m.len;
    n += lp2p__uvarint_put(m.b + n, LP2P__MA_P2P);
    n += lp2p__uvarint_put(m.b + n, id->len);
    memcpy(m.b + n, id->bytes, id->len);
    m.len = (uint16_t)(n + id->len);
    if (!lp2p__ma_text_fits(&m)) return LP2P_ERR_INVALID;
    *ma = m;
    return LP2P_OK;
}

LP2P__PRIV bool lp2p__ma_eq(const lp2p__ma *a, const lp2p__ma *b) {
    return a->len == b->len && a->len <= LP2P__MA_MAX && memcmp(a->b, b->b, a->len) == 0;
}

LP2P__PRIV bool lp2p__ma_is_tcp(const lp2p__ma *ma) {
    size_t off = 0, vn;
    uint32_t code;
    const uint8_t *v;
    if (!lp2p__ma_next(ma, &off, &code, &v, &vn)) return false;
    if (code != LP2P__MA_IP4 && code != LP2P__MA_IP6 && code != LP2P__MA_DNS && code != LP2P__MA_DNS4 &&
        code != LP2P__MA_DNS6)
        return false;
    if (!lp2p__ma_next(ma, &off, &code, &v, &vn) || code != LP2P__MA_TCP) return false;
    if (!lp2p__ma_next(ma, &off, &code, &v, &vn)) return off == ma->len;
    return code == LP2P__MA_P2P && off == ma->len;
}

LP2P__PRIV bool lp2p__ma_is_loopback(const lp2p__ma *ma) {
    static const uint8_t zero16[16] = {0}, one16[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    size_t off = 0, vn;
    uint32_t code;
    const uint8_t *v;
    if (!lp2p__ma_next(ma, &off, &code, &v, &vn)) return false;
    if (code == LP2P__MA_IP4) return v[0] == 127 || lp2p__be32(v) == 0;
    if (code == LP2P__MA_IP6) return memcmp(v, one16, 16) == 0 || memcmp(v, zero16, 16) == 0;
    return false;
}
/*==================== end src/multiaddr.c ====================*/
/*==================== begin src/runtime.c ====================*/
/* runtime.c - placeholder, being written */
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
/* #include "mss.h" (amalgamated) */

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
    lp2p__mss_lazy_read, lp2p__mss_lazy_write, lp2p__mss_lazy_close_write, lp2p__mss_lazy_reset, lp2p__mss_lazy_close,
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
/*==================== end src/mss.c ====================*/
/*==================== begin src/proto/keys.pb.c ====================*/
/* Automatically generated nanopb constant definitions */
/* Generated by nanopb-0.4.7 */

/* #include "keys.pb.h" (amalgamated) */
#if PB_PROTO_HEADER_VERSION != 40
#error Regenerate this file with the current version of nanopb generator.
#endif

PB_BIND(lp2p_pb_PublicKey, lp2p_pb_PublicKey, 2)


PB_BIND(lp2p_pb_PrivateKey, lp2p_pb_PrivateKey, AUTO)




/*==================== end src/proto/keys.pb.c ====================*/
/*==================== begin src/proto/noise.pb.c ====================*/
/* Automatically generated nanopb constant definitions */
/* Generated by nanopb-0.4.7 */

/* #include "noise.pb.h" (amalgamated) */
#if PB_PROTO_HEADER_VERSION != 40
#error Regenerate this file with the current version of nanopb generator.
#endif

PB_BIND(lp2p_pb_NoiseExtensions, lp2p_pb_NoiseExtensions, AUTO)


PB_BIND(lp2p_pb_NoiseHandshakePayload, lp2p_pb_NoiseHandshakePayload, 2)



/*==================== end src/proto/noise.pb.c ====================*/
/*==================== begin src/proto/envelope.pb.c ====================*/
/* Automatically generated nanopb constant definitions */
/* Generated by nanopb-0.4.7 */

/* #include "envelope.pb.h" (amalgamated) */
#if PB_PROTO_HEADER_VERSION != 40
#error Regenerate this file with the current version of nanopb generator.
#endif

PB_BIND(lp2p_pb_Envelope, lp2p_pb_Envelope, 2)



/*==================== end src/proto/envelope.pb.c ====================*/
/*==================== begin src/proto/peer_record.pb.c ====================*/
/* Automatically generated nanopb constant definitions */
/* Generated by nanopb-0.4.7 */

/* #include "peer_record.pb.h" (amalgamated) */
#if PB_PROTO_HEADER_VERSION != 40
#error Regenerate this file with the current version of nanopb generator.
#endif

PB_BIND(lp2p_pb_PeerRecord, lp2p_pb_PeerRecord, AUTO)


PB_BIND(lp2p_pb_PeerRecord_AddressInfo, lp2p_pb_PeerRecord_AddressInfo, AUTO)



/*==================== end src/proto/peer_record.pb.c ====================*/
/*==================== begin src/proto/identify.pb.c ====================*/
/* Automatically generated nanopb constant definitions */
/* Generated by nanopb-0.4.7 */

/* #include "identify.pb.h" (amalgamated) */
#if PB_PROTO_HEADER_VERSION != 40
#error Regenerate this file with the current version of nanopb generator.
#endif

PB_BIND(lp2p_pb_Identify, lp2p_pb_Identify, AUTO)



/*==================== end src/proto/identify.pb.c ====================*/
/*==================== begin src/noise.c ====================*/
/* noise.c - placeholder, being written */
/*==================== end src/noise.c ====================*/
/*==================== begin src/yamux.c ====================*/
/* yamux.c - placeholder, being written */
/*==================== end src/yamux.c ====================*/
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
