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
