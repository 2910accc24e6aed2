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
    int idle_timeout_ms;                  /* 0 -> never close idle connections; > 0: close one that had no
                                             stream for this long, ms (checked every second) */
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
/* Create a host. cfg may be NULL or zero-initialised (every zero field means its default, see
 * lp2p_config). Listens on cfg->listen_addrs (default /ip4/127.0.0.1/tcp/0) unless no_listen.
 * On success *out is the host; free it with lp2p_host_free.
 * Errors: ERR_INVALID (out NULL), ERR_NOMEM, ERR_IO (crypto init or poller), ERR_BADADDR
 * (a listen address is malformed), ERR_IO (cannot bind). */
LP2P_API int lp2p_host_new(const lp2p_config *cfg, lp2p_host **out);
/* Free the host: close listeners and connections (GoAway), cancel every task and wait for them
 * to return (their blocking calls fail with ERR_CANCELED), free everything. Streams the app
 * still holds become invalid. Must not be called from inside one of the host's tasks. */
LP2P_API void lp2p_host_free(lp2p_host *h);
/* One iteration of the host's loop: run every ready task once (handlers, protocol tasks), poll
 * sockets waiting at most timeout_ms (0 never blocks: call it once per frame; < 0 waits for
 * the next event), fire due timers. Returns the number of tasks resumed (>= 0) or an error
 * (ERR_WOULDBLOCK when called from inside a task or the logger). */
LP2P_API int lp2p_host_poll(lp2p_host *h, int timeout_ms);
/* Run the loop until lp2p_host_stop (from any thread or task). Returns LP2P_OK, or
 * ERR_WOULDBLOCK when called from inside a task. Use it on a dedicated network thread. */
LP2P_API int lp2p_host_run(lp2p_host *h);
/* Make lp2p_host_run return soon. Thread-safe. */
LP2P_API void lp2p_host_stop(lp2p_host *h);
/* Run fn(arg) as a new task on the host's loop. Thread-safe: the only way for another thread
 * to touch the host. Returns LP2P_OK or ERR_NOMEM. */
LP2P_API int lp2p_host_post(lp2p_host *h, void (*fn)(void *arg), void *arg);
/* The host's peer ID (binary multihash; print it with lp2p_peer_id_str). */
LP2P_API lp2p_peer_id lp2p_host_id(const lp2p_host *h);
/* Number of addresses the host listens on (see lp2p_host_addr). */
LP2P_API int lp2p_host_addr_count(const lp2p_host *h);
/* The i-th listen address as text with /p2p/<our id> (e.g. "/ip4/127.0.0.1/tcp/4001/p2p/12D3…"),
 * ready to hand to another host's lp2p_host_connect. NULL if i is out of range. Borrowed:
 * valid until the listen addresses change (lp2p_host_free at the latest). */
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
/* Take the next event. Strings (addr, protocol) stay valid until the next call. Never blocks.
 * Returns false when the queue is empty. When the queue is full (event_queue_size) the oldest
 * event is dropped; once the app reads events, each drop logs a WARN. */
LP2P_API bool lp2p_host_next_event(lp2p_host *h, lp2p_event *ev);

/* ---- protocols: handlers are task entry points --------------------------------------- */
typedef void (*lp2p_handler_fn)(lp2p_stream *s, void *user);
/* Serve protocol: every inbound stream that negotiates it runs fn(stream, user) as a new task,
 * and the stream is closed when fn returns (call lp2p_stream_reset first to abort it). With
 * fn NULL, inbound streams are queued as LP2P_EVENT_STREAM events and the app owns them.
 * Replaces an earlier handler of the same protocol. protocol is copied (at most 255 bytes).
 * Errors: ERR_INVALID, ERR_NOMEM. Peers learn the new protocol by identify push. */
LP2P_API int lp2p_host_handle(lp2p_host *h, const char *protocol, lp2p_handler_fn fn, void *user);
/* Stop serving protocol (later streams get "na"). ERR_NOTFOUND if it was not handled. */
LP2P_API int lp2p_host_unhandle(lp2p_host *h, const char *protocol);

/* ---- connecting ------------------------------------------------------------------------ */
/* Connect to a peer: peer_or_addr is a full multiaddr ending in /p2p/<peer-id> (the Noise
 * handshake checks that the remote really is that peer) or a bare peer ID whose addresses the
 * host already knows (lp2p_host_add_addr, identify). Returns at once if already connected.
 * deadline: absolute ms (lp2p_deadline_in). Errors: ERR_BADADDR, ERR_NOADDR, ERR_UNREACHABLE,
 * ERR_HANDSHAKE (wrong peer ID or failed security handshake), ERR_PROTO_NA (no common security
 * or muxer protocol), ERR_TIMEOUT, ERR_CANCELED, ERR_LIMIT (max_connections, max_pending_dials).
 * Spec: connections/README.md (upgrade), noise/README.md, yamux/README.md. */
LP2P_API int lp2p_host_connect(lp2p_host *h, const char *peer_or_addr, int64_t deadline);
/* Start connecting in the background and return at once (never blocks). The result arrives
 * as LP2P_EVENT_PEER_CONNECTED or LP2P_EVENT_DIAL_FAILED (err = the reason). Errors here:
 * ERR_INVALID, ERR_NOMEM, ERR_LIMIT (max_tasks). */
LP2P_API int lp2p_host_connect_async(lp2p_host *h, const char *peer_or_addr);
/* Close every connection to peer (GoAway; its streams fail). ERR_NOTFOUND if none. */
LP2P_API int lp2p_host_disconnect(lp2p_host *h, const lp2p_peer_id *peer);
/* Tell the host an address of a peer: addr_with_p2p is a multiaddr ending in /p2p/<id>; it is
 * kept ttl_ms milliseconds (< 0: forever). Later connects by bare peer ID use it.
 * Errors: ERR_BADADDR. */
LP2P_API int lp2p_host_add_addr(lp2p_host *h, const char *addr_with_p2p, int64_t ttl_ms);
/* 1 if the host has a live connection to peer, else 0. */
LP2P_API int lp2p_host_is_connected(lp2p_host *h, const lp2p_peer_id *peer);
/* Ping a peer (peer_or_addr as in lp2p_host_connect; connects first if needed): one 32-byte
 * round trip on a new /ipfs/ping/1.0.0 stream. Returns the round-trip time in MICROseconds
 * (>= 0, stream negotiation excluded; loopback and LAN round trips are well under 1 ms) or an error: those of lp2p_stream_open, ERR_PROTOCOL
 * (the echo did not match), ERR_TIMEOUT. Spec: ping/ping.md. */
LP2P_API int lp2p_ping(lp2p_host *h, const char *peer_or_addr, int64_t deadline);

/* ---- perf: the throughput benchmark protocol ------------------------------------------------ */
/* Spec: libp2p/specs perf/perf.md. The client opens a /perf/1.0.0 stream, sends the number of
 * bytes it wants back as a big-endian u64, uploads any number of bytes and closes its write
 * side; the server reads the u64, reads the upload until EOF, then sends the requested number of
 * bytes and closes. The bytes themselves carry no meaning (we send zeros). perf.md "Security
 * Considerations": a server does work on a client's request, so it is off by default; enable it
 * only on hosts that are not publicly reachable, or pass an allow callback. */
#define LP2P_PERF_PROTOCOL "/perf/1.0.0"

typedef struct lp2p_perf_server_config {
    int max_streams;             /* 0 -> 16 perf streams served at once; more are reset (logged) */
    uint64_t max_download_bytes; /* 0 -> no cap; else a request for more bytes than this is reset */
    uint64_t max_upload_bytes;   /* 0 -> no cap; else a stream uploading more than this is reset */
    int timeout_ms;              /* 0 -> 30000: longest wait for the client (the u64, each read, each
                                    write against its flow-control window); then the stream is reset */
    /* NULL -> everyone may use the service; else called for each perf stream, false resets it
       (perf.md: authenticate clients by peer ID). Runs in the stream's task; must not block. */
    bool (*allow)(void *user, const lp2p_peer_id *peer);
    void *allow_user;
} lp2p_perf_server_config;

/* Serve /perf/1.0.0 on host h with the limits in cfg (NULL or zeroed: the defaults above; the
 * config is copied). Calling it again replaces the limits for later streams; stop serving with
 * lp2p_host_unhandle(h, LP2P_PERF_PROTOCOL). Peers learn the protocol by identify push.
 * Each stream runs as its own task: read the 8-byte count (big-endian u64, any value up to
 * UINT64_MAX is valid per perf.md), read and discard the upload until EOF (into one 256 KiB
 * buffer per host), send that many zero bytes (1 MiB writes from a static zero buffer), close
 * (perf.md "Protocol", server steps 1-4). A stream that breaks a
 * limit, stalls longer than timeout_ms, or ends before its 8-byte count is reset and logged
 * (limits at WARN with the limit's name, the rest at INFO).
 * Errors: ERR_INVALID (h NULL, a negative field), ERR_NOMEM. */
LP2P_API int lp2p_perf_serve(lp2p_host *h, const lp2p_perf_server_config *cfg);

/* Progress of a running lp2p_perf, for per-second output like the test-plans perf contract. */
typedef struct lp2p_perf_report {
    int64_t interval_us;           /* microseconds this report covers (since the previous one or the call) */
    uint64_t upload_bytes;         /* bytes uploaded during the interval */
    uint64_t download_bytes;       /* bytes downloaded during the interval */
    uint64_t total_upload_bytes;   /* uploaded since the call */
    uint64_t total_download_bytes; /* downloaded since the call */
    bool done;                     /* the last report of a successful run: the interval deltas of all
                                      reports add up to the totals */
} lp2p_perf_report;

typedef struct lp2p_perf_options {
    /* NULL -> no reports. Else called every report_interval_ms (checked after each read and
       write, so a report may come later when the peer stalls) and once at the end with done
       set. Runs inside lp2p_perf; must not block or call into the host. */
    void (*progress)(void *user, const lp2p_perf_report *r);
    void *user;
    int report_interval_ms; /* 0 -> 1000 */
    int timeout_ms;         /* 0 -> 30000: longest wait on any one step: connecting, opening the
                               stream, each read, each write (against the flow-control window) */
} lp2p_perf_options;

typedef struct lp2p_perf_result {
    uint64_t upload_bytes;   /* bytes uploaded (the 8-byte count not included) */
    uint64_t download_bytes; /* bytes downloaded: always the number requested */
    int64_t connect_us;      /* connecting to the peer (near 0 if already connected), microseconds */
    int64_t stream_us;       /* opening the stream and negotiating /perf/1.0.0 */
    int64_t upload_us;       /* sending the count and the upload, until our write side was closed */
    int64_t download_us;     /* from then until the server's end of stream */
    int64_t total_us;        /* the whole call: connect + stream + upload + download */
} lp2p_perf_result;

/* Run one perf measurement against a peer (peer_or_addr as in lp2p_host_connect; connects first
 * if needed): ask for download_bytes, upload upload_bytes zero bytes (written in large chunks
 * straight from a static zero buffer), close our write side, then read and count the server's
 * bytes until its end of stream (into one reused buffer per host). Both sizes are bytes; 0 is
 * valid for either. opt may be NULL (defaults, no progress reports). deadline: absolute ms for
 * the whole run (LP2P_FOREVER: bounded only by opt->timeout_ms per step). Runs from main() or
 * inside a task like every blocking call; the transfer itself allocates nothing.
 * On success writes *out (if non-NULL) and returns LP2P_OK. Errors: those of lp2p_host_connect
 * and lp2p_stream_open (ERR_PROTO_NA: the peer does not serve perf), ERR_TIMEOUT (deadline, or
 * one read/write waited opt->timeout_ms), ERR_CANCELED, ERR_RESET (the server reset the stream,
 * e.g. one of its limits), ERR_CLOSED (the connection died), ERR_PROTOCOL (the server sent more
 * or fewer bytes than requested; the stream is reset), ERR_INVALID (h or peer_or_addr NULL, a
 * negative option). Spec: perf/perf.md "Protocol" (client), "Single connection throughput". */
LP2P_API int lp2p_perf(lp2p_host *h, const char *peer_or_addr, uint64_t upload_bytes, uint64_t download_bytes,
                       const lp2p_perf_options *opt, lp2p_perf_result *out, int64_t deadline);

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
/* Connect to a peer (as lp2p_host_connect) and wait until identify with it has finished, so
 * lp2p_host_peer_info has its agent, protocols and addresses. LP2P_OK, the errors of
 * lp2p_host_connect, ERR_TIMEOUT. Spec: identify/README.md. */
LP2P_API int lp2p_host_identify(lp2p_host *h, const char *peer_or_addr, int64_t deadline);
/* What the host knows about a peer (from identify and the Noise handshake). The strings are
 * borrowed from the host: valid until the next call of lp2p_host_peer_info or until the host
 * runs again (poll, blocking calls). ERR_NOTFOUND if the peer is unknown. */
LP2P_API int lp2p_host_peer_info(lp2p_host *h, const lp2p_peer_id *peer, lp2p_peer_info *out);

/* ---- streams ------------------------------------------------------------------------- */
/* Open a stream speaking protocol to a peer, connecting first if needed (peer_or_addr as in
 * lp2p_host_connect). On success *out is the stream, owned by the caller until
 * lp2p_stream_close / lp2p_stream_reset. Errors: those of lp2p_host_connect, plus
 * ERR_PROTO_NA (the peer does not speak protocol), ERR_LIMIT (256 streams awaiting the peer's
 * acknowledgement), ERR_CLOSED (the connection died). Spec: connections/README.md. */
LP2P_API int lp2p_stream_open(lp2p_host *h, const char *peer_or_addr, const char *protocol, int64_t deadline,
                              lp2p_stream **out);
/* Read up to cap bytes. Returns > 0 bytes read, 0 at the end of the stream (the peer closed
 * its write side), or an error: ERR_TIMEOUT, ERR_CANCELED, ERR_RESET (peer aborted),
 * ERR_CLOSED (closed locally / connection gone), ERR_BUSY (another task is reading). */
LP2P_API ptrdiff_t lp2p_stream_read(lp2p_stream *s, void *buf, size_t cap, int64_t deadline);
/* Read exactly len bytes: LP2P_OK, ERR_EOF if the stream ended first, or a read error. */
LP2P_API int lp2p_stream_read_full(lp2p_stream *s, void *buf, size_t len, int64_t deadline);
/* Write all len bytes (waiting for the peer's flow-control window as needed): LP2P_OK or
 * ERR_TIMEOUT, ERR_CANCELED, ERR_RESET, ERR_CLOSED, ERR_BUSY. After a timeout an unknown prefix
 * may have been sent. */
LP2P_API int lp2p_stream_write(lp2p_stream *s, const void *buf, size_t len, int64_t deadline);
/* Read one message framed as uvarint(length) || bytes (the framing of identify, kad, pubsub).
 * Returns its length (>= 0), ERR_EOF if the stream ended (cleanly or inside the message),
 * ERR_MSGSIZE if it is longer than cap (the stream is then reset), ERR_PROTOCOL for a bad
 * length prefix, or the errors of lp2p_stream_read. */
LP2P_API ptrdiff_t lp2p_stream_read_msg(lp2p_stream *s, void *buf, size_t cap, int64_t deadline);
/* Write uvarint(len) || buf as one message. Errors as lp2p_stream_write. */
LP2P_API int lp2p_stream_write_msg(lp2p_stream *s, const void *buf, size_t len, int64_t deadline);
/* Half-close: tell the peer we will write no more (it reads EOF); reading stays possible.
 * Never blocks. Errors: ERR_CLOSED. */
LP2P_API int lp2p_stream_close_write(lp2p_stream *s);
/* Close gracefully (FIN if not sent yet) and release the stream; never blocks. s is invalid
 * afterwards (inside a handler: until the handler returns). */
LP2P_API void lp2p_stream_close(lp2p_stream *s);
/* Abort both directions (the peer sees a reset) and release the stream; s is invalid afterwards. */
LP2P_API void lp2p_stream_reset(lp2p_stream *s);
/* The negotiated protocol (borrowed, valid while s is). */
LP2P_API const char *lp2p_stream_protocol(const lp2p_stream *s);
/* The remote peer's ID. */
LP2P_API lp2p_peer_id lp2p_stream_peer(const lp2p_stream *s);
/* The host the stream belongs to (handy inside handlers). */
LP2P_API lp2p_host *lp2p_stream_host(const lp2p_stream *s);

/* ---- tasks (stackful coroutines on the host's scheduler) -------------------------------- */
typedef void (*lp2p_task_fn)(void *arg);
/* Start fn(arg) as a new task (a stackful coroutine on the host's loop; it starts at the next
 * poll). Blocking library calls inside it park only the task. Returns the handle, or one with
 * id 0 if max_tasks is reached (logged) or memory is short. */
LP2P_API lp2p_task lp2p_go(lp2p_host *h, lp2p_task_fn fn, void *arg);
/* Cancel a task: its current and later blocking calls return ERR_CANCELED. ERR_NOTFOUND if it ended. */
LP2P_API int lp2p_task_cancel(lp2p_host *h, lp2p_task t);
/* Wait until the task has returned (OK), the deadline passed (ERR_TIMEOUT) or the caller is canceled. */
LP2P_API int lp2p_task_join(lp2p_host *h, lp2p_task t, int64_t deadline);
/* Is the task still running? A stale handle gives false. */
LP2P_API bool lp2p_task_alive(lp2p_host *h, lp2p_task t);
/* Sleep until the absolute deadline (OK) unless canceled (ERR_CANCELED). */
LP2P_API int lp2p_sleep(lp2p_host *h, int64_t deadline);
/* Let the other ready tasks run (CPU-bound tasks should call it now and then). */
LP2P_API int lp2p_yield(lp2p_host *h);

/* ---- peer IDs and identity ---------------------------------------------------------------- */
/* lp2p_peer_id_parse - parse the text form of a peer ID.
 *
 * Accepts (peer-ids/peer-ids.md "Decoding"):
 *   - a bare base58btc multihash: "12D3KooW..." (Ed25519), "16Uiu2..." (secp256k1),
 *     "Qm..." (sha2-256 of an RSA/ECDSA key), i.e. text starting with '1' or 'Q';
 *   - a CIDv1 with multicodec libp2p-key (0x72) in multibase base32 ('b', e.g. "bafz...";
 *     'B' upper-case also accepted) or base58btc ('z').
 * The multihash must be an identity multihash of at most 42 bytes or a sha2-256 multihash.
 * str: NUL-terminated, shorter than LP2P_PEER_ID_STRLEN (128) characters, no whitespace.
 * out: written only on success.
 * Returns LP2P_OK; LP2P_ERR_BADADDR if str is not a valid peer ID in one of these forms (bad
 * character, wrong multibase prefix, CID version or codec, unsupported multihash, too long);
 * LP2P_ERR_INVALID if str or out is NULL. */
LP2P_API int lp2p_peer_id_parse(const char *str, lp2p_peer_id *out);
/* lp2p_peer_id_str - print a peer ID as a base58btc multihash ("12D3KooW...", "Qm...").
 *
 * This is the form peer-ids/peer-ids.md says implementations SHOULD display, and the one
 * go/rust/js print and accept everywhere.
 * buf gets a NUL-terminated string; cap is its size in bytes (LP2P_PEER_ID_STRLEN is always
 * enough; a 12D3KooW... ID needs 53, a Qm... ID 47).
 * Returns LP2P_OK; LP2P_ERR_INVALID if id or buf is NULL, id is empty/over-long, or cap is too
 * small (buf is then left untouched). */
LP2P_API int lp2p_peer_id_str(const lp2p_peer_id *id, char *buf, size_t cap);
/* lp2p_peer_id_eq - whether two peer IDs are the same (byte-equal multihashes).
 *
 * Returns true when both are non-NULL and equal; false otherwise (NULL is never equal to
 * anything, not even another NULL). Text forms are not compared: parse them first. */
LP2P_API bool lp2p_peer_id_eq(const lp2p_peer_id *a, const lp2p_peer_id *b);
/* lp2p_identity_generate - make a fresh Ed25519 identity seed.
 *
 * Fills seed_out with 32 bytes from the operating system's CSPRNG (libsodium randombytes).
 * Store them and pass them back in lp2p_config.identity_seed (with use_identity_seed = true)
 * to keep the same peer ID across runs; keep them secret, they are the private key.
 * Thread-safe.
 * Returns LP2P_OK; LP2P_ERR_INVALID if seed_out is NULL; LP2P_ERR_IO if the crypto library
 * cannot be initialised (no OS randomness). */
LP2P_API int lp2p_identity_generate(uint8_t seed_out[32]);

/* ---- Kademlia DHT (kad.c) ------------------------------------------------------------------
 * Peer routing, provider records and value records over /ipfs/kad/1.0.0 (or an app's own
 * /<app>/kad/1.0.0). Spec: libp2p/specs kad-dht/README.md; ipfs/specs src/routing/kad-dht.md
 * (the public "Amino" DHT's rules). One DHT per host, running on the host's loop; every call
 * below is a blocking call in the usual sense (inside a task it parks the task, from main() it
 * runs the loop). Keys are bytes: a peer ID's bytes for peer routing, a multihash for content
 * (lp2p_kad_key_from_cid turns a CID into one), "/<namespace>/..." for value records.
 * Peers the DHT finds land in the host's peerstore with their addresses, so lp2p_host_connect
 * by bare peer ID and lp2p_host_peer_info work on them right after a lookup.
 *
 *     lp2p_kad_config kc = {0};
 *     kc.mode = LP2P_KAD_SERVER;
 *     kc.bootstrap_peers[0] = "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooW...";
 *     lp2p_kad *dht;
 *     lp2p_kad_new(h, &kc, &dht);
 *     lp2p_kad_bootstrap(dht, NULL, 0, lp2p_deadline_in(30000));
 *     uint8_t mh[64]; ptrdiff_t n = lp2p_kad_key_from_cid("bafkrei...", mh, sizeof mh);
 *     lp2p_kad_provide(dht, mh, (size_t)n, lp2p_deadline_in(60000));
 */
typedef struct lp2p_kad lp2p_kad;

typedef enum lp2p_kad_mode {
    LP2P_KAD_AUTO = 0, /* in a config: CLIENT on the public Amino DHT (protocol /ipfs/kad/1.0.0,
                          whose servers must be publicly reachable over QUIC and TCP), SERVER on
                          every other protocol (app DHTs, /ipfs/lan/kad/1.0.0) */
    LP2P_KAD_CLIENT,   /* query others; neither advertise nor accept the protocol (spec: MUST) */
    LP2P_KAD_SERVER    /* also answer queries, store records, and join others' routing tables */
} lp2p_kad_mode;

#define LP2P_KAD_MAX_BOOTSTRAP 16
typedef struct lp2p_kad_config {
    const char *protocol;       /* NULL -> "/ipfs/kad/1.0.0"; an app DHT uses "/<app>/kad/1.0.0" */
    lp2p_kad_mode mode;         /* LP2P_KAD_AUTO -> see lp2p_kad_mode */
    const char *bootstrap_peers[LP2P_KAD_MAX_BOOTSTRAP]; /* multiaddrs with /p2p/<id>; copied.
                                   Used by lp2p_kad_bootstrap and whenever the table runs empty */
    int k;                      /* 0 -> 20: bucket size, and peers returned per query */
    int alpha;                  /* 0 -> 10: concurrent requests per lookup (max 32) */
    int beta;                   /* 0 -> 3: a lookup ends when the beta closest reachable peers answered */
    int request_timeout_ms;     /* 0 -> 10000: one request (dial + stream + answer) to one peer */
    int refresh_interval_ms;    /* 0 -> 600000 (10 min): bucket refresh and self lookup; < 0 off */
    int max_peers_per_ip_group; /* 0 -> 3 peers per /16 (IPv4) or /32 (IPv6) in the table; < 0 off.
                                   Loopback and private addresses are exempt */
    int max_peers_per_ip_group_per_bucket; /* 0 -> 2 per bucket */
    int max_message_size;       /* 0 -> 1 MiB: longest message read from a peer, bytes */
    int max_inbound_requests;   /* 0 -> 128 inbound streams served at once (more are reset) */
    int max_provider_records;   /* 0 -> 65536 (key, provider) pairs stored for others */
    int max_providers_per_key;  /* 0 -> 64 */
    int max_records;            /* 0 -> 16384 value records stored for others */
    int max_record_size;        /* 0 -> 64 KiB: longest key + value accepted, bytes */
    int get_quorum;             /* 0 -> 16: lp2p_kad_get_value stops after this many answers with a value */
    int64_t provider_ttl_ms;    /* 0 -> 48 h: provider records expire after this */
    int64_t reprovide_interval_ms; /* 0 -> 22 h: our own provides are announced again; < 0 never */
    int64_t record_ttl_ms;      /* 0 -> 48 h: stored value records expire after this */
    int idle_connection_ms;     /* 0 -> 10000: a connection the DHT opened for its requests closes
                                   after this long without streams (so lookups do not pile up
                                   connections against max_connections); < 0 keeps them.
                                   lp2p_host_connect to the peer makes it the app's, kept */
} lp2p_kad_config;

/* Start the DHT on host h. cfg may be NULL (all defaults). In server mode the protocol is
 * handled at once (and announced to connected peers by identify push). A background task
 * bootstraps from cfg->bootstrap_peers when the routing table is empty, refreshes buckets
 * every refresh_interval_ms, expires records and re-announces our provider records.
 * Free it with lp2p_kad_free before lp2p_host_free (lp2p_host_free also frees a DHT left
 * behind). At most one DHT per protocol per host. Errors: ERR_INVALID (h or out NULL, bad
 * protocol ID, alpha > 32), ERR_BADADDR (a bootstrap address is not a multiaddr with /p2p/),
 * ERR_NOMEM, ERR_BUSY (a DHT with this protocol already runs on h). */
LP2P_API int lp2p_kad_new(lp2p_host *h, const lp2p_kad_config *cfg, lp2p_kad **out);
/* Stop the DHT: unhandle the protocol, cancel its tasks (lookups in progress fail with
 * ERR_CANCELED) and free everything. Must not be called from one of its own callbacks. */
LP2P_API void lp2p_kad_free(lp2p_kad *kad);
/* The current mode (CLIENT or SERVER, never AUTO). */
LP2P_API lp2p_kad_mode lp2p_kad_get_mode(const lp2p_kad *kad);
/* Switch mode at run time. SERVER handles the protocol, CLIENT stops handling it; connected
 * peers learn it by identify push, so servers stop (or start) putting us in their tables.
 * AUTO resolves as in the config. Returns LP2P_OK, ERR_INVALID, ERR_NOMEM. */
LP2P_API int lp2p_kad_set_mode(lp2p_kad *kad, lp2p_kad_mode mode);

/* Bootstrap: connect to the configured bootstrap peers and to addrs[0..n) (multiaddrs with
 * /p2p/), wait for their identify, put the servers among them in the routing table, then run
 * a self lookup and refresh every bucket (as the periodic refresh does). Returns the number of
 * peers in the routing table afterwards (> 0), or ERR_NOTFOUND if it stays empty (no bootstrap
 * peer reachable or none is a server), ERR_BADADDR, ERR_TIMEOUT, ERR_CANCELED. */
LP2P_API int lp2p_kad_bootstrap(lp2p_kad *kad, const char *const *addrs, int n, int64_t deadline);

/* Called for each result as it arrives (a closer peer, a provider). Return nonzero to end the
 * lookup early. peer is valid during the call; its addresses are in the host's peerstore. */
typedef int (*lp2p_kad_peer_fn)(void *user, const lp2p_peer_id *peer);
/* Called for each valid value as it arrives; from is the peer that sent it (our own ID for the
 * local record). Return nonzero to end the lookup early. The bytes are valid during the call. */
typedef int (*lp2p_kad_value_fn)(void *user, const lp2p_peer_id *from, const uint8_t *value, size_t len);

/* Find the k peers closest to key (XOR distance of SHA-256 hashes, kad-dht/README.md
 * "Peer routing"), by an iterative lookup: alpha requests in flight, ending when the beta
 * closest reachable peers have answered or no candidate is left. fn (may be NULL) hears every
 * peer that answered, as it answers. out gets up to max peer IDs, closest first.
 * Returns how many were written (>= 0), ERR_NOTFOUND if the routing table is empty,
 * ERR_INVALID (key_len 0 or > 256), ERR_TIMEOUT (then out holds nothing), ERR_CANCELED. */
LP2P_API int lp2p_kad_get_closest_peers(lp2p_kad *kad, const uint8_t *key, size_t key_len, lp2p_kad_peer_fn fn,
                                        void *user, lp2p_peer_id *out, int max, int64_t deadline);
/* Find a peer's addresses: done at once if we are connected to it, else by a lookup that
 * ends as soon as some peer returns it with addresses (spec: servers MUST return a peer they
 * know for FIND_NODE on its exact ID). On LP2P_OK the addresses are in the peerstore
 * (lp2p_host_peer_info, lp2p_host_connect by bare ID). ERR_NOTFOUND, ERR_TIMEOUT, ERR_CANCELED. */
LP2P_API int lp2p_kad_find_peer(lp2p_kad *kad, const lp2p_peer_id *peer, int64_t deadline);
/* Announce that we provide key (a multihash, <= 80 bytes): store it locally, find the k
 * closest peers and send each ADD_PROVIDER with our listen addresses. It is re-announced
 * every reprovide_interval_ms until lp2p_kad_free. Returns the number of peers it was sent to
 * (>= 0; ADD_PROVIDER has no reply), ERR_INVALID, ERR_NOTFOUND (no peers), ERR_TIMEOUT,
 * ERR_CANCELED. Spec: kad-dht/README.md "Content provider advertisement". */
LP2P_API int lp2p_kad_provide(lp2p_kad *kad, const uint8_t *key, size_t key_len, int64_t deadline);
/* Find providers of key: our own store first, then a GET_PROVIDERS lookup that ends after
 * max_providers distinct providers (<= 0: run the whole lookup). fn (may be NULL) hears each
 * provider once, as it arrives; out (may be NULL with max 0) gets the first max of them.
 * Their addresses go to the peerstore. Returns the number found (>= 0; may exceed max),
 * ERR_INVALID, ERR_TIMEOUT, ERR_CANCELED. */
LP2P_API int lp2p_kad_find_providers(lp2p_kad *kad, const uint8_t *key, size_t key_len, int max_providers,
                                     lp2p_kad_peer_fn fn, void *user, lp2p_peer_id *out, int max, int64_t deadline);
/* Store a value record: the namespace's validator must accept it (else ERR_INVALID); it is
 * stored locally and sent with PUT_VALUE to the k peers closest to key. Returns the number of
 * peers that stored it (>= 0), ERR_INVALID (no validator for the namespace, validation failed,
 * key or value too long), ERR_NOTFOUND (no peers), ERR_TIMEOUT, ERR_CANCELED.
 * Spec: kad-dht/README.md "Value storage and retrieval". */
LP2P_API int lp2p_kad_put_value(lp2p_kad *kad, const uint8_t *key, size_t key_len, const uint8_t *value,
                                size_t value_len, int64_t deadline);
/* Get the best value of key: the local record and a GET_VALUE lookup; every value is checked
 * by the namespace's validator (invalid ones are dropped), fn (may be NULL) hears each valid
 * one, the selector picks the best, and the lookup stops after get_quorum values. Afterwards
 * peers that answered with an older value or none get the best one (entry correction).
 * Copies the best value into out and returns its length; ERR_NOTFOUND (no valid value),
 * ERR_MSGSIZE (cap too small; nothing copied), ERR_INVALID, ERR_TIMEOUT, ERR_CANCELED. */
LP2P_API ptrdiff_t lp2p_kad_get_value(lp2p_kad *kad, const uint8_t *key, size_t key_len, lp2p_kad_value_fn fn,
                                      void *user, uint8_t *out, size_t cap, int64_t deadline);

/* A record validator for one namespace: keys "/<ns>/...". validate returns LP2P_OK to accept
 * a value; select returns the index (0..n-1) of the best of n valid values (NULL: the first).
 * Both must not block. */
typedef struct lp2p_kad_validator {
    int (*validate)(void *user, const uint8_t *key, size_t key_len, const uint8_t *value, size_t value_len);
    int (*select)(void *user, const uint8_t *key, size_t key_len, const uint8_t *const *values, const size_t *lens,
                  int n);
    void *user;
} lp2p_kad_validator;
/* Register (or replace) the validator of namespace ns (without slashes, e.g. "myapp").
 * "pk" is built in (/pk/<peer ID bytes> -> the public key whose peer ID that is). Keys of
 * namespaces without a validator are refused, as the Amino spec requires. A NULL validate
 * accepts every value (for tests and closed apps). ERR_INVALID, ERR_NOMEM. */
LP2P_API int lp2p_kad_set_validator(lp2p_kad *kad, const char *ns, const lp2p_kad_validator *v);

/* ---- inspection (teaching, tests) */
typedef struct lp2p_kad_entry {
    lp2p_peer_id id;
    int bucket;           /* common prefix length of SHA-256(our ID) and SHA-256(its ID), 0..255 */
    int64_t added_ms_ago; /* when it entered the table */
    int64_t seen_ms_ago;  /* last time it answered us or identified as a server */
} lp2p_kad_entry;
/* Copy up to max routing-table entries into out (ordered by bucket, then age). Returns the
 * total number of entries (may exceed max). */
LP2P_API int lp2p_kad_routing_table(lp2p_kad *kad, lp2p_kad_entry *out, int max);
/* Figures of the most recent lookup that finished on this DHT (any kind). */
typedef struct lp2p_kad_lookup_stats {
    int requests;   /* requests sent */
    int answered;   /* requests that got an answer */
    int failed;     /* unreachable peers, timeouts, bad answers */
    int hops;       /* longest chain of referrals to the closest answering peer (1 = a table peer) */
    int64_t ms;     /* duration */
} lp2p_kad_lookup_stats;
LP2P_API void lp2p_kad_last_lookup(const lp2p_kad *kad, lp2p_kad_lookup_stats *out);
/* The multihash inside a CID (CIDv0 "Qm..." base58btc; CIDv1 in multibase base32 'b', base58btc
 * 'z' or base16 'f'), the key under which content is provided (ipfs/specs kad-dht: providers
 * are keyed by multihash). Returns its length, ERR_BADADDR (not a CID), ERR_MSGSIZE (cap). */
LP2P_API ptrdiff_t lp2p_kad_key_from_cid(const char *cid, uint8_t *out, size_t cap);

#ifdef __cplusplus
}
#endif
#endif /* LIBP2P_API_H_INCLUDED */
