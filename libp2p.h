/*==================== begin src/doc.h ====================*/
/* libp2p.h - v0.1.0 - libp2p in one C header: TCP, multistream-select, Noise, yamux, identify, ping,
   perf, Kademlia DHT, gossipsub/floodsub, circuit relay v2, DCUtR hole punching, AutoNAT, mDNS
   https://libp2p.io - tested against go-libp2p, rust-libp2p and js-libp2p.  MIT license (end of file).

   QUICK START
     Do this in *one* C or C++ file, before any other #include:
         #define LIBP2P_IMPLEMENTATION
         #include "libp2p.h"
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
     identify/README.md, ping/ping.md, perf/perf.md, peer-ids/peer-ids.md, RFC/0002, RFC/0003,
     addressing, kad-dht/README.md (+ ipfs/specs src/routing/kad-dht.md), pubsub/README.md,
     pubsub/gossipsub/gossipsub-v1.0.md, -v1.1.md, -v1.2.md, relay/circuit-v2.md,
     relay/DCUtR.md, connections/hole-punching.md, autonat/autonat-v2.md (v1 served),
     discovery/mdns.md.
*/
/* The implementation needs POSIX/GNU declarations (clock_gettime, epoll, mmap, getaddrinfo)
 * even under -std=c11: include libp2p.h first in the implementation file, or build with
 * -D_GNU_SOURCE. */
#if defined(LIBP2P_IMPLEMENTATION) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE 1
#endif
/*==================== end src/doc.h ====================*/
#ifndef LIBP2P_SOURCE_ID
#define LIBP2P_SOURCE_ID "src-dfb81d82d06a93b9"
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
    int idle_timeout_ms;                  /* 0 -> never close idle connections; > 0: close one that had no
                                             stream for this long, ms (checked every second); never
                                             one carrying a relay reservation (either side) */
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
    LP2P_EVENT_STREAM,
    /* NAT traversal (relay.c, dcutr.c, autonat.c, mdns.c) */
    LP2P_EVENT_RELAY_RESERVED,   /* peer = the relay; addr = our /p2p-circuit address through it */
    LP2P_EVENT_RELAY_LOST,       /* peer = the relay; err = why (the host keeps retrying) */
    LP2P_EVENT_HOLE_PUNCH,       /* peer; err 0: direct connection made (addr = its remote address),
                                    else DCUtR gave up after its attempts (err = the last error) */
    LP2P_EVENT_NAT_STATUS,       /* AutoNAT changed its verdict: err = the new lp2p_nat_status */
    LP2P_EVENT_PEER_DISCOVERED   /* mDNS: peer and one of its addresses (addr, with /p2p/) */
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

/* ---- NAT traversal: circuit relay v2 and hole punching -------------------------------------
 * A host behind a NAT cannot be dialed. It reserves a slot on a relay (a public host running the
 * relay service) and advertises "<relay addr>/p2p/<relay>/p2p-circuit/p2p/<us>"; peers dial
 * that address and reach it through the relay. Such a relayed connection is *limited*: the
 * relay cuts it after a time and byte budget (go: 2 min, 128 KiB per direction), and only
 * protocols marked with lp2p_host_allow_limited run over it (ping, identify and DCUtR by
 * default). The host that received the relayed connection then starts DCUtR hole punching
 * (automatic): both sides learn each other's public address through the relay and dial each
 * other at the same moment from their listen ports, so both NATs open. On success new streams
 * use the direct connection. Specs: relay/circuit-v2.md, relay/DCUtR.md,
 * connections/hole-punching.md. */

/* Reserve a slot on a relay and keep it: relay_addr is the relay's multiaddr with /p2p/<id>
 * (or a bare peer ID the host knows). Connects, sends RESERVE on
 * /libp2p/circuit/relay/0.2.0/hop, checks the relay's signed voucher, and on success adds our
 * /p2p-circuit addresses to lp2p_host_addr (and identify); emits LP2P_EVENT_RELAY_RESERVED.
 * The host refreshes the reservation before it expires and, if the relay connection drops,
 * reconnects and reserves again (LP2P_EVENT_RELAY_LOST, then RESERVED again) until
 * lp2p_relay_release. deadline: absolute ms for the first reservation.
 * Errors: those of lp2p_host_connect; ERR_PROTO_NA (not a relay), ERR_LIMIT (the relay refused:
 * RESERVATION_REFUSED / RESOURCE_LIMIT_EXCEEDED / PERMISSION_DENIED), ERR_PROTOCOL (malformed
 * answer or a voucher not signed by the relay for us), ERR_INVALID (relay reached only through
 * a relayed connection), ERR_NOMEM. Spec: relay/circuit-v2.md "Reservation". */
LP2P_API int lp2p_relay_reserve(lp2p_host *h, const char *relay_addr, int64_t deadline);
/* Stop refreshing the reservation on relay and drop its /p2p-circuit addresses (the relay
 * connection stays). ERR_NOTFOUND if we hold none there. */
LP2P_API int lp2p_relay_release(lp2p_host *h, const lp2p_peer_id *relay);

/* Relay service settings; zero fields mean the defaults in brackets (go-libp2p's). */
typedef struct lp2p_relay_config {
    int max_reservations;     /* [128] reservations held at once, all peers */
    int max_circuits;         /* [16] relayed connections at once, all peers */
    int max_circuits_per_peer; /* [4] relayed connections at once with one peer as either end */
    int reservation_ttl_s;    /* [3600] seconds a reservation lasts unless refreshed */
    int limit_duration_s;     /* [120] seconds a relayed connection lasts; < 0: no limit */
    int64_t limit_data;       /* [131072] bytes per direction a relayed connection carries; < 0: no limit */
} lp2p_relay_config;
/* Serve /libp2p/circuit/relay/0.2.0/hop: accept reservations (at most one per peer, a refresh
 * replaces it; vouchers signed with our key, domain "libp2p-relay-rsvp", payload type 03 02;
 * the reservation lasts while the peer stays connected) and relay CONNECTs to peers holding one,
 * enforcing the duration and data limits (both streams are reset when either is reached).
 * Never over relayed connections. cfg may be NULL. Calling it again applies new settings.
 * Errors: ERR_NOMEM. Spec: relay/circuit-v2.md "Relay". */
LP2P_API int lp2p_relay_service_start(lp2p_host *h, const lp2p_relay_config *cfg);
/* Stop serving hop (reservations are dropped; circuits already relayed run to their limits). */
LP2P_API void lp2p_relay_service_stop(lp2p_host *h);

/* Let protocol run over limited (relayed) connections (allow = true) or not. Applies to inbound
 * streams (others are refused) and to lp2p_stream_open: opening a protocol that is not allowed
 * while the only connection to the peer is limited waits, until deadline, for a direct
 * connection (DCUtR) as go-libp2p does, then fails with ERR_LIMIT. Defaults: ping, identify,
 * identify push, DCUtR. Errors: ERR_INVALID, ERR_NOMEM. */
LP2P_API int lp2p_host_allow_limited(lp2p_host *h, const char *protocol, bool allow);
/* 1 if the host's best connection to peer is direct (not relayed), 0 if it only has a limited
 * (relayed) one, ERR_NOTFOUND if it has none. */
LP2P_API int lp2p_host_is_direct(lp2p_host *h, const lp2p_peer_id *peer);

/* ---- NAT traversal: AutoNAT ----------------------------------------------------------------
 * Is this host reachable from the internet? AutoNAT servers dial our addresses back and tell us.
 * v2 (autonat/autonat-v2.md, /libp2p/autonat/2/dial-request and /dial-back) tests one address
 * per request and proves the dial-back with a nonce; v1 (/libp2p/autonat/1.0.0) is served for
 * older peers. The host probes by itself: when it meets a peer offering the v2 service and its
 * status is unknown (or older than 10 min) it asks; a verdict changes after 2 agreeing answers
 * (LP2P_EVENT_NAT_STATUS). When it turns PRIVATE it reserves a slot on a relay it is connected
 * to (a peer speaking /libp2p/circuit/relay/0.2.0/hop), unless the app already holds one, and a
 * DHT started in LP2P_KAD_AUTO mode turns client (back to server when PUBLIC again). */
typedef enum lp2p_nat_status {
    LP2P_NAT_UNKNOWN = 0, /* not tested yet / no verdict */
    LP2P_NAT_PUBLIC = 1,  /* a server reached one of our addresses */
    LP2P_NAT_PRIVATE = 2  /* servers could not dial our addresses back */
} lp2p_nat_status;
/* The host's current verdict. */
LP2P_API lp2p_nat_status lp2p_host_nat_status(lp2p_host *h);
/* Ask one AutoNAT v2 server (server: multiaddr with /p2p/<id> or a known peer ID) to dial one of
 * our addresses (observed by peers, then our listen addresses; no relay circuits) back.
 * Answers the server's dial-data request (30-100 kB) when it asks. Returns LP2P_NAT_PUBLIC when
 * the dial-back arrived with our nonce, LP2P_NAT_PRIVATE when the server could not dial us, or
 * an error: those of lp2p_host_connect, ERR_PROTO_NA (no AutoNAT v2), ERR_LIMIT (the server
 * refused: rate limit, or no address it is willing to dial: E_REQUEST_REJECTED / E_DIAL_REFUSED),
 * ERR_PROTOCOL (malformed answer, or OK without our nonce), ERR_NOADDR (nothing to test),
 * ERR_TIMEOUT. The result also feeds lp2p_host_nat_status. Spec: autonat/autonat-v2.md. */
LP2P_API int lp2p_autonat_probe(lp2p_host *h, const char *server, int64_t deadline);
typedef struct lp2p_autonat_config {
    bool allow_private_addrs; /* also dial private / documentation-range addresses (test beds, LANs) */
    int max_concurrent;       /* [4] requests served at once; more are refused (E_REQUEST_REJECTED) */
} lp2p_autonat_config;
/* Serve AutoNAT v2 (dial-request) and v1: dial the requester back on one of its addresses
 * (never over relayed connections; v1 only addresses with the requester's observed IP; v2 asks
 * for 30-100 kB of dial data first when the IP differs, against amplification), from a fresh
 * connection (not our listen port). cfg may be NULL. Errors: ERR_NOMEM. */
LP2P_API int lp2p_autonat_service_start(lp2p_host *h, const lp2p_autonat_config *cfg);

/* ---- LAN discovery: mDNS -------------------------------------------------------------------
 * discovery/mdns.md: peers on one LAN find each other by multicast DNS (224.0.0.251:5353):
 * queries for PTR "_p2p._udp.local" are answered with a PTR to a random instance name plus TXT
 * records "dnsaddr=<multiaddr>/p2p/<id>" (and SRV/A records, which go's zeroconf needs). Every
 * address learned emits LP2P_EVENT_PEER_DISCOVERED and goes into the peerstore (so connecting by
 * bare peer ID works). Off by default: it sends multicast on the LAN. */
typedef struct lp2p_mdns_config {
    int interval_ms;            /* [10000] between our queries (and at start) */
    bool auto_connect;          /* connect to every discovered peer (lp2p_host_connect_async) */
    const char *service;        /* [NULL: "_p2p._udp.local"]; a private network uses "_p2p-X._udp.local" */
    const char *interface_addr; /* IPv4 address of the interface to use [NULL: the kernel's choice] */
} lp2p_mdns_config;
/* Start answering and querying. Binds UDP 0.0.0.0:5353 (SO_REUSEADDR/SO_REUSEPORT, so other
 * mDNS responders keep working) and joins 224.0.0.251. cfg may be NULL. Calling it again
 * restarts with the new settings. Errors: ERR_IO (socket, bind, multicast join), ERR_NOMEM,
 * ERR_INVALID (bad service or interface address). */
LP2P_API int lp2p_mdns_start(lp2p_host *h, const lp2p_mdns_config *cfg);
/* Stop mDNS (no-op if not running). */
LP2P_API void lp2p_mdns_stop(lp2p_host *h);

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
                          every other protocol (app DHTs, /ipfs/lan/kad/1.0.0) except while
                          AutoNAT says the host is PRIVATE: then CLIENT. The mode follows each
                          new AutoNAT verdict (lp2p_host_nat_status) */
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

/* ---- publish/subscribe: gossipsub v1.2 (with v1.1 peer scoring) and floodsub ---------------
 * Spec: libp2p/specs pubsub/README.md, pubsub/gossipsub/gossipsub-v1.0.md, -v1.1.md, -v1.2.md.
 * One lp2p_pubsub per host (lp2p_pubsub_new). It speaks /meshsub/1.2.0, /meshsub/1.1.0,
 * /meshsub/1.0.0 and /floodsub/1.0.0, chosen per peer by multistream-select, with one outbound
 * and one inbound stream per peer. Every connected peer that speaks one of them becomes a
 * pubsub peer: connect to peers with lp2p_host_connect as usual, pubsub follows the
 * connections. Messages are signed (StrictSign) by default.
 * Threads: like the host, a pubsub object is used from the host's thread only.
 *
 * Example (a frame loop; error handling elided):
 *     lp2p_pubsub *ps;  lp2p_subscription *sub;  lp2p_pubsub_message m;
 *     lp2p_pubsub_new(h, NULL, &ps);
 *     lp2p_pubsub_subscribe(ps, "chat", &sub);
 *     lp2p_host_connect(h, "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooW...", lp2p_deadline_in(5000));
 *     for (;;) {
 *         lp2p_host_poll(h, 0);
 *         while (lp2p_subscription_next(sub, &m, LP2P_NOWAIT) == LP2P_OK)
 *             printf("%.*s\n", (int)m.data_len, (const char *)m.data);
 *         if (have_input) lp2p_pubsub_publish(ps, "chat", line, strlen(line));
 *     }
 */
typedef struct lp2p_pubsub lp2p_pubsub;             /* the router; freed with its host at the latest */
typedef struct lp2p_subscription lp2p_subscription; /* a local subscription to one topic */

#define LP2P_PUBSUB_TOPIC_MAX 1024  /* bytes of a topic name we accept (longer ones are ignored) */
#define LP2P_PUBSUB_MSG_ID_MAX 256  /* bytes of a message ID */

/* A delivered (validated) message. Every pointer is borrowed: see the function handing it out. */
typedef struct lp2p_pubsub_message {
    const char *topic;           /* NUL-terminated topic name */
    const uint8_t *data;         /* the payload (data_len bytes; not NUL-terminated) */
    size_t data_len;
    lp2p_peer_id from;           /* the author (the Message's "from"); len 0 when unsigned (StrictNoSign) */
    lp2p_peer_id received_from;  /* the neighbour that handed it to us; our own ID for our messages */
    uint64_t seqno;              /* the 8-byte big-endian sequence number; 0 when absent */
    bool has_seqno;
    const uint8_t *id;           /* the message ID (id_len bytes), see lp2p_pubsub_msg_id_fn */
    size_t id_len;
} lp2p_pubsub_message;

/* A message-ID function: write the ID of m (its id/id_len fields are not set yet) into out
 * (cap = LP2P_PUBSUB_MSG_ID_MAX bytes) and return its length (1..cap), or a negative LP2P_ERR_*
 * to drop the message as invalid. Every node of a topic must use the same function: IHAVE,
 * IWANT and IDONTWANT carry IDs on the wire, and duplicates are found by ID. */
typedef ptrdiff_t (*lp2p_pubsub_msg_id_fn)(const lp2p_pubsub_message *m, uint8_t *out, size_t cap, void *user);
/* Built-in message-ID functions (user is ignored):
 * - lp2p_pubsub_msg_id_default: from || seqno as raw bytes (the Message's "from" field, the
 *   peer ID's binary multihash, then the 8 seqno bytes). go-libp2p-pubsub's DefaultMsgIdFn and
 *   the spec's "concatenation of from and seqno". The default under StrictSign.
 * - lp2p_pubsub_msg_id_rust: base58btc(from) followed by seqno as a decimal number, as text
 *   (rust-libp2p gossipsub's default_message_id). Use it to share a topic with rust peers
 *   running their default.
 * - lp2p_pubsub_msg_id_js: the author's serialized public key (the protobuf PublicKey, 36 bytes
 *   for Ed25519) || seqno (js @chainsafe/libp2p-gossipsub's default under StrictSign, msgIdFnStrictSign).
 * - lp2p_pubsub_msg_id_sha256: SHA-256 of the data (32 bytes); content addressing for
 *   StrictNoSign topics (where from and seqno are absent), and the default under StrictNoSign.
 * Alternatively configure the go/rust/js peers to compute from || seqno (go's default). */
LP2P_API ptrdiff_t lp2p_pubsub_msg_id_default(const lp2p_pubsub_message *m, uint8_t *out, size_t cap, void *user);
LP2P_API ptrdiff_t lp2p_pubsub_msg_id_rust(const lp2p_pubsub_message *m, uint8_t *out, size_t cap, void *user);
LP2P_API ptrdiff_t lp2p_pubsub_msg_id_js(const lp2p_pubsub_message *m, uint8_t *out, size_t cap, void *user);
LP2P_API ptrdiff_t lp2p_pubsub_msg_id_sha256(const lp2p_pubsub_message *m, uint8_t *out, size_t cap, void *user);

/* Outcome of a validator (gossipsub-v1.1.md "Extended Validators"). */
typedef enum lp2p_pubsub_validation {
    LP2P_PUBSUB_ACCEPT = 0, /* deliver and forward */
    LP2P_PUBSUB_REJECT,     /* invalid: drop, and penalise the sender (score P4) */
    LP2P_PUBSUB_IGNORE      /* drop without penalty (e.g. stale, not interesting) */
} lp2p_pubsub_validation;
/* A topic validator: runs on every new message of the topic (ours too) before it is delivered
 * or forwarded. It must not block (it runs inside the task reading the peer's stream); m and
 * its pointers are valid only during the call. */
typedef lp2p_pubsub_validation (*lp2p_pubsub_validator_fn)(lp2p_pubsub *ps, const lp2p_pubsub_message *m, void *user);

/* Message signing policy (pubsub/README.md "Message Signing"). */
typedef enum lp2p_pubsub_signing {
    /* StrictSign (default): our messages carry from, seqno (8 bytes), and an Ed25519 signature
     * over "libp2p-pubsub:" || the Message encoded without signature and key; received messages
     * without a valid signature are rejected and their sender penalised. */
    LP2P_PUBSUB_STRICT_SIGN = 0,
    /* StrictNoSign: our messages carry only data and topic; received messages carrying from,
     * seqno, signature or key are rejected. Pair it with a content-based message ID (the default
     * here becomes lp2p_pubsub_msg_id_sha256). */
    LP2P_PUBSUB_STRICT_NO_SIGN
} lp2p_pubsub_signing;

/* Per-topic score parameters (gossipsub-v1.1.md "Topic Parameter Calculation"; the names follow
 * go-libp2p-pubsub's TopicScoreParams). Weights of penalties (P3, P3b, P4) are negative.
 * Durations in milliseconds, decays are factors applied once per decay interval. */
typedef struct lp2p_pubsub_topic_score_params {
    double topic_weight;                         /* multiplies the topic's score */
    double time_in_mesh_weight;                  /* P1 (>= 0) */
    int time_in_mesh_quantum_ms;                 /* P1 counts mesh time in these units (> 0) */
    double time_in_mesh_cap;                     /* P1 stops growing here */
    double first_message_deliveries_weight;      /* P2 (>= 0) */
    double first_message_deliveries_decay;       /* (0, 1) */
    double first_message_deliveries_cap;
    double mesh_message_deliveries_weight;       /* P3 (<= 0; 0 disables) */
    double mesh_message_deliveries_decay;
    double mesh_message_deliveries_cap;
    double mesh_message_deliveries_threshold;    /* deliveries expected per decay window */
    int mesh_message_deliveries_window_ms;       /* a duplicate this soon after validation still counts */
    int mesh_message_deliveries_activation_ms;   /* P3 applies only after this much time in the mesh */
    double mesh_failure_penalty_weight;          /* P3b (<= 0) */
    double mesh_failure_penalty_decay;
    double invalid_message_deliveries_weight;    /* P4 (<= 0) */
    double invalid_message_deliveries_decay;
} lp2p_pubsub_topic_score_params;

/* Global score parameters (go's PeerScoreParams). */
typedef struct lp2p_pubsub_score_params {
    lp2p_pubsub_topic_score_params topic_defaults; /* used for every topic without its own params */
    double topic_score_cap;               /* caps the positive sum of topic scores (0: no cap) */
    /* P5: application-specific score of a peer (NULL: 0), times app_specific_weight */
    double (*app_specific_score)(const lp2p_peer_id *peer, void *user);
    void *app_specific_user;
    double app_specific_weight;
    double ip_colocation_factor_weight;   /* P6 (<= 0): peers sharing an IP beyond the threshold */
    int ip_colocation_factor_threshold;
    double behaviour_penalty_weight;      /* P7 (<= 0): GRAFT during backoff, broken IWANT promises, ... */
    double behaviour_penalty_threshold;
    double behaviour_penalty_decay;
    int decay_interval_ms;                /* how often counters decay (> 0) */
    double decay_to_zero;                 /* counters below this become 0 */
    int retain_score_ms;                  /* how long a disconnected peer's score is remembered */
} lp2p_pubsub_score_params;

/* Score thresholds (gossipsub-v1.1.md "Score Thresholds"): gossip <= 0, publish <= gossip,
 * graylist <= publish, accept_px >= 0, opportunistic_graft >= 0. */
typedef struct lp2p_pubsub_score_thresholds {
    double gossip;              /* below: no gossip to or from the peer */
    double publish;             /* below: our own messages are not flood-published to it */
    double graylist;            /* below: every RPC from the peer is ignored */
    double accept_px;           /* at or above: peer exchange in its PRUNE is followed */
    double opportunistic_graft; /* median mesh score below this: graft better peers */
} lp2p_pubsub_score_thresholds;

/* Fill p / t with the defaults lp2p_pubsub_new uses when the config gives none:
 * topic_defaults: topic_weight 1; P1 weight 0.01 per second in the mesh, cap 300 (max +3);
 * P2 weight 1, decay 0.5, cap 10; P3 and P3b off (weight 0: they need a known message rate, set
 * them per topic); P4 weight -10, decay 0.99 (one invalid message costs 10, four cost 160).
 * P5 off (weight 1, no function); P6 off (weight 0, threshold 10: on loopback every peer shares
 * 127.0.0.1); P7 weight -10, threshold 3, decay 0.9; decay interval 1000 ms, decay to zero 0.01,
 * retain 120000 ms. Thresholds: gossip -10, publish -50, graylist -80, accept_px 10,
 * opportunistic_graft 5. Either pointer may be NULL. */
LP2P_API void lp2p_pubsub_score_defaults(lp2p_pubsub_score_params *p, lp2p_pubsub_score_thresholds *t);

/* Router configuration: zero-initialised is valid, every zero field means its default (the
 * go-libp2p-pubsub defaults; gossipsub-v1.0.md "Parameters", -v1.1.md, -v1.2.md). */
typedef struct lp2p_pubsub_config {
    bool floodsub;                 /* speak only /floodsub/1.0.0: no mesh, no gossip, no scoring */
    lp2p_pubsub_signing signing;   /* default LP2P_PUBSUB_STRICT_SIGN */
    lp2p_pubsub_msg_id_fn msg_id_fn; /* NULL -> lp2p_pubsub_msg_id_default (sha256 under StrictNoSign) */
    void *msg_id_user;
    int max_rpc_size;              /* 0 -> 1 MiB: larger RPCs from peers reset the stream; our
                                    * messages must fit in it (ERR_MSGSIZE). rust peers accept
                                    * only 64 KiB by default */
    int d;                         /* 0 -> 6: mesh degree */
    int d_lo;                      /* 0 -> 5: graft when the mesh is smaller */
    int d_hi;                      /* 0 -> 12: prune when the mesh is larger */
    int d_lazy;                    /* 0 -> 6: gossip (IHAVE) to at least this many non-mesh peers */
    int d_score;                   /* 0 -> 4: best-scoring peers kept when pruning */
    int d_out;                     /* 0 -> 2: outbound-connection peers kept in the mesh; < 0: none */
    double gossip_factor;          /* 0 -> 0.25: gossip to max(d_lazy, factor x eligible peers) */
    int heartbeat_ms;              /* 0 -> 1000 */
    int heartbeat_initial_delay_ms;/* 0 -> 100 */
    int fanout_ttl_ms;             /* 0 -> 60000: forget a fanout topic we stopped publishing to */
    int history_length;            /* 0 -> 5 heartbeats of messages kept for IWANT */
    int history_gossip;            /* 0 -> 3 of them advertised in IHAVE */
    int seen_ttl_ms;               /* 0 -> 120000: duplicate detection window */
    int prune_backoff_ms;          /* 0 -> 60000: no re-GRAFT after a PRUNE */
    int unsubscribe_backoff_ms;    /* 0 -> 10000: backoff after we leave a topic */
    int graft_flood_threshold_ms;  /* 0 -> 10000: a GRAFT this soon after a PRUNE costs extra */
    int prune_peers;               /* 0 -> 16 peers offered in PRUNE (peer exchange); < 0: none */
    int opportunistic_graft_ticks; /* 0 -> 60 heartbeats between opportunistic grafts */
    int opportunistic_graft_peers; /* 0 -> 2 */
    int max_ihave_length;          /* 0 -> 5000 message IDs per IHAVE, and asked per peer per heartbeat */
    int max_ihave_messages;        /* 0 -> 10 IHAVEs accepted per peer per heartbeat */
    int iwant_followup_ms;         /* 0 -> 3000: a peer must deliver what we IWANTed by then (P7) */
    int gossip_retransmission;     /* 0 -> 3: times one message is sent to one peer by IWANT */
    int idontwant_threshold;       /* 0 -> 1024: data bytes from which we send IDONTWANT; < 0 never */
    int max_idontwant_messages;    /* 0 -> 1000 IDONTWANT RPCs accepted per peer per heartbeat */
    int max_idontwant_length;      /* 0 -> 10 message IDs per IDONTWANT accepted (and sent) */
    int idontwant_ttl;             /* 0 -> 3 heartbeats an IDONTWANT is remembered */
    bool no_flood_publish;         /* our messages go to the mesh (or fanout) only, not to every
                                    * topic peer scoring >= publish */
    bool no_self_delivery;         /* our own messages are not delivered to our subscriptions */
    bool no_px;                    /* neither offer nor follow peer exchange */
    int peer_queue_bytes;          /* 0 -> 8 MiB queued per peer; beyond, RPCs are dropped (logged) */
    int subscription_queue;        /* 0 -> 4096 messages waiting per subscription; beyond, the
                                    * oldest is dropped (logged) */
    int max_topics;                /* 0 -> 16384 topics known (ours and peers'); more are ignored */
    int max_topics_per_peer;       /* 0 -> 1024 subscriptions per peer; more are ignored */
    bool no_scoring;               /* disable v1.1 peer scoring (every score is 0) */
    const lp2p_pubsub_score_params *score_params;         /* NULL -> lp2p_pubsub_score_defaults; copied */
    const lp2p_pubsub_score_thresholds *score_thresholds; /* NULL -> lp2p_pubsub_score_defaults; copied */
    const char *const *direct_peers; /* explicit peers (multiaddrs with /p2p/): always sent every
                                      * message, never in the mesh, reconnected every 5 minutes */
    int n_direct_peers;
} lp2p_pubsub_config;

/* Counters since lp2p_pubsub_new (what the router did; useful for tests and dashboards). */
typedef struct lp2p_pubsub_stats {
    uint64_t rpcs_in, rpcs_out;           /* RPCs received / sent */
    uint64_t rpcs_dropped;                /* not sent: peer queue full (peer_queue_bytes) */
    uint64_t rpcs_malformed;              /* undecodable or oversized RPCs received */
    uint64_t rpcs_graylisted;             /* ignored: sender scored below the graylist threshold */
    uint64_t published;                   /* lp2p_pubsub_publish calls that built a message */
    uint64_t messages_in;                 /* messages received (with duplicates) */
    uint64_t duplicates;                  /* received again after the first copy */
    uint64_t delivered;                   /* handed to local subscriptions (per subscription) */
    uint64_t delivery_drops;              /* dropped from full subscription queues */
    uint64_t rejected;                    /* invalid: bad signature, policy, validator REJECT */
    uint64_t ignored;                     /* validator IGNORE, or not subscribed to the topic */
    uint64_t forwarded;                   /* message copies sent to peers (ours and forwarded) */
    uint64_t ihave_in, ihave_out, iwant_in, iwant_out;       /* control messages (per topic entry) */
    uint64_t graft_in, graft_out, prune_in, prune_out;
    uint64_t idontwant_in, idontwant_out;
    uint64_t iwant_served;                /* messages sent in answer to IWANT */
    uint64_t px_connects;                 /* connections started from peer exchange */
} lp2p_pubsub_stats;

/* Start pubsub on host h (it handles the pubsub protocols and joins every current and future
 * connection). cfg may be NULL (defaults); it is copied (direct peer strings too).
 * On success *out is the router; free it with lp2p_pubsub_free, or let lp2p_host_free do it.
 * Errors: ERR_INVALID (h or out NULL, inconsistent d_* values or score parameters, a direct
 * peer address without /p2p/, pubsub already running on h), ERR_NOMEM, ERR_LIMIT (max_tasks). */
LP2P_API int lp2p_pubsub_new(lp2p_host *h, const lp2p_pubsub_config *cfg, lp2p_pubsub **out);
/* Stop pubsub: leave every topic, stop serving the protocols, end its tasks (waits for them),
 * free every subscription (their pointers become invalid) and the router. Call it from
 * outside the host's tasks, before lp2p_host_free (which otherwise frees it). NULL is a no-op. */
LP2P_API void lp2p_pubsub_free(lp2p_pubsub *ps);

/* Subscribe to topic (NUL-terminated, 1..LP2P_PUBSUB_TOPIC_MAX bytes): announce it to every
 * peer and join its mesh. Several subscriptions to one topic each get every message.
 * On success *out is the subscription (until lp2p_subscription_cancel or lp2p_pubsub_free).
 * Errors: ERR_INVALID (bad topic), ERR_NOMEM, ERR_LIMIT (max_topics). Never blocks. */
LP2P_API int lp2p_pubsub_subscribe(lp2p_pubsub *ps, const char *topic, lp2p_subscription **out);
/* Take the next message of the subscription, waiting until the absolute deadline
 * (LP2P_NOWAIT: never wait, for frame loops). *out's pointers stay valid until the next call
 * on sub or its cancellation. Returns LP2P_OK, ERR_TIMEOUT (none before the deadline),
 * ERR_CANCELED (the calling task was canceled), ERR_CLOSED (the pubsub is shutting down),
 * ERR_WOULDBLOCK (called from the logger or a post callback), ERR_INVALID (sub or out NULL). */
LP2P_API int lp2p_subscription_next(lp2p_subscription *sub, lp2p_pubsub_message *out, int64_t deadline);
/* Messages dropped from this subscription because its queue was full (subscription_queue). */
LP2P_API uint64_t lp2p_subscription_dropped(const lp2p_subscription *sub);
/* The topic (borrowed, valid while sub is). */
LP2P_API const char *lp2p_subscription_topic(const lp2p_subscription *sub);
/* Cancel and free the subscription; with the topic's last subscription we leave the topic
 * (announce it, PRUNE the mesh with the unsubscribe backoff). A waiting next() returns
 * ERR_CLOSED. sub is invalid afterwards. NULL is a no-op. */
LP2P_API void lp2p_subscription_cancel(lp2p_subscription *sub);

/* Publish data (len bytes, may be 0) on topic: build and sign the message, run the topic's
 * validator, deliver it to our own subscriptions (unless no_self_delivery), and queue it for
 * peers (all topic peers scoring >= publish threshold with flood publishing, else the mesh or
 * a fanout of d peers; floodsub and direct peers always). Never blocks: sending happens in
 * the background. Returns the number of peers it was queued for (>= 0; 0 is not an error: with
 * no peers yet the message is only delivered locally), or ERR_INVALID (bad topic, data NULL with
 * len > 0, or the validator rejected or ignored it), ERR_MSGSIZE (larger than max_rpc_size),
 * ERR_NOMEM, ERR_LIMIT (a new topic beyond max_topics). */
LP2P_API int lp2p_pubsub_publish(lp2p_pubsub *ps, const char *topic, const void *data, size_t len);

/* Peers that announced a subscription to topic (peers in the topic), or ps's known pubsub
 * peers if topic is NULL. Fills up to max IDs into out (may be NULL with max 0) and returns the
 * total count (>= 0; 0 for an unknown topic). Never blocks. */
LP2P_API int lp2p_pubsub_topic_peers(lp2p_pubsub *ps, const char *topic, lp2p_peer_id *out, int max);
/* Our mesh peers of topic (gossipsub), as lp2p_pubsub_topic_peers; 0 if we are not in the topic. */
LP2P_API int lp2p_pubsub_mesh_peers(lp2p_pubsub *ps, const char *topic, lp2p_peer_id *out, int max);
/* Set (fn non-NULL) or remove (fn NULL) the validator of topic; one per topic.
 * Errors: ERR_INVALID (bad topic), ERR_NOMEM, ERR_LIMIT (max_topics). */
LP2P_API int lp2p_pubsub_set_validator(lp2p_pubsub *ps, const char *topic, lp2p_pubsub_validator_fn fn, void *user);
/* Set topic's score parameters (copied; NULL goes back to score_params->topic_defaults).
 * Errors: ERR_INVALID (bad topic or parameters: positive penalty weights, decays outside (0,1),
 * quantum <= 0), ERR_NOMEM, ERR_LIMIT. */
LP2P_API int lp2p_pubsub_set_topic_score_params(lp2p_pubsub *ps, const char *topic,
                                                const lp2p_pubsub_topic_score_params *params);
/* The current v1.1 score of peer (gossipsub-v1.1.md "The Score Function"). Known peers are
 * connected ones and those disconnected less than retain_score_ms ago (with a score <= 0: a
 * positive score is forgotten at once, as go does). Returns LP2P_OK with *score written,
 * ERR_NOTFOUND, or ERR_INVALID (a NULL argument). With no_scoring every connected peer scores 0. */
LP2P_API int lp2p_pubsub_peer_score(lp2p_pubsub *ps, const lp2p_peer_id *peer, double *score);
/* Copy the counters into *out. */
LP2P_API void lp2p_pubsub_get_stats(lp2p_pubsub *ps, lp2p_pubsub_stats *out);

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

// (amalgamated) #include "api.h"
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

// (amalgamated) #include "base.h"

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
/* The same sealing (no associated data) of the concatenation of n segments seg[i] (len[i]
 * bytes each, any sizes) into out (the total + 16 bytes), without joining them first: what
 * a muxer header followed by application bytes costs is one copy of the first 64 bytes.
 * out must not overlap the segments. */
LP2P__PRIV void lp2p__aead_seal_gather(const uint8_t key[32], uint64_t n, const uint8_t *const *seg, const size_t *len,
                                       int nseg, uint8_t *out);
/* Opening in two steps, so a frame can be decrypted piecewise straight into its readers'
 * buffers: lp2p__aead_verify checks the tag at ct + len over the ciphertext ct (len bytes, no
 * associated data) without decrypting (LP2P_OK or ERR_PROTOCOL, constant time); then
 * lp2p__aead_xor_at decrypts any range [off, off + len) of that ciphertext (in) into out. */
LP2P__PRIV int lp2p__aead_verify(const uint8_t key[32], uint64_t n, const uint8_t *ct, size_t len);
LP2P__PRIV void lp2p__aead_xor_at(const uint8_t key[32], uint64_t n, size_t off, const uint8_t *in, size_t len,
                                  uint8_t *out);
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
/* Peer ID from a serialized PublicKey: identity multihash if <= 42 bytes, else sha2-256. Like go
 * (which re-marshals the parsed key) it hashes the canonical re-encoding of the protobuf, so
 * field order or duplicate fields do not change the ID. ERR_PROTOCOL if it is not a PublicKey
 * (or an Ed25519/secp256k1 key of the wrong length), ERR_UNSUPPORTED for an unknown key type. */
LP2P__PRIV int lp2p__peer_id_from_pubkey(const uint8_t *pubkey_pb, size_t len, lp2p_peer_id *out);
/* Binary multihash -> peer ID, checking it is a valid identity (<= 42 bytes payload) or sha2-256 multihash. */
LP2P__PRIV int lp2p__peer_id_from_bytes(const uint8_t *p, size_t n, lp2p_peer_id *out);
/* If the peer ID is an identity multihash, the embedded PublicKey protobuf (pointer into id). */
LP2P__PRIV int lp2p__peer_id_pubkey(const lp2p_peer_id *id, const uint8_t **pubkey_pb, size_t *len);
/* Text: parses base58btc multihash ("Qm...", "12D3...", "16Uiu2...") and CIDv1 with codec
 * libp2p-key 0x72 in multibase base32 ('b...') or base58 ('z...'); lp2p_peer_id_str prints base58btc. */

/* ---- signed envelopes (spec: RFC 0002 signed-envelopes; records) ---- */
#define LP2P__ENVELOPE_MAX 4096     /* bytes of a serialized Envelope we open (verified on the stack) */
#define LP2P__ENVELOPE_DOMAIN_MAX 100 /* bytes of a domain string ("libp2p-peer-record" is 18) */
#define LP2P__ENVELOPE_TYPE_MAX 64  /* bytes of a payload type (envelope.options max_size) */
/* Sign: the signature covers uvarint(len(domain)) || domain || uvarint(len(type)) || type ||
 * uvarint(len(payload)) || payload. Writes the serialized Envelope protobuf (public_key=1,
 * payload_type=2, payload=3, signature=5) into out (which must not overlap the inputs); returns
 * its length, ERR_MSGSIZE if cap is too small, ERR_INVALID for an empty or over-long domain or
 * payload type (go rejects empty ones too). */
LP2P__PRIV ptrdiff_t lp2p__envelope_seal(const lp2p__identity *idn, const char *domain, const uint8_t *type,
                                         size_t type_len, const uint8_t *payload, size_t payload_len, uint8_t *out,
                                         size_t cap);
/* Parse + verify an Envelope against domain and expected payload type. On OK, *payload points
 * into env and signer gets the signer's peer ID. ERR_PROTOCOL malformed or other payload type,
 * ERR_HANDSHAKE bad signature, ERR_UNSUPPORTED signer key type, ERR_MSGSIZE env_len >
 * LP2P__ENVELOPE_MAX, ERR_INVALID bad arguments. */
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

// (amalgamated) #include "crypto.h"

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

// (amalgamated) #include "base.h"

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
/* Return idle stack memory to the OS: for tasks parked since before the previous call, the
 * pages below their stack pointer; for stacks pooled that long, all but the top page. Call it
 * periodically (the host does, every second); busy tasks are not touched. Returns the bytes
 * advised away (pages that were not resident count too). Never blocks. */
LP2P__PRIV size_t lp2p__sched_trim(lp2p__sched *s);

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

// (amalgamated) #include "runtime.h"

typedef struct lp2p__pipe lp2p__pipe;
typedef struct lp2p__iov {
    const void *p;
    size_t n;
} lp2p__iov;
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
    /* Optional (NULL = absent; callers then join the buffers and use write): write the
     * concatenation of n buffers, as write would. It reads every buffer before it first
     * waits, so their owners may reuse them as soon as the calling task could run again.
     * The Noise pipe has it: a muxer passes its frame headers and the application's bytes
     * and they are sealed where they lie (at most 64 buffers and 4 x 65,519 bytes per call,
     * else ERR_INVALID). */
    int (*writev)(lp2p__pipe *p, const lp2p__iov *iov, int n, int64_t deadline);
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
 * cost no syscall per byte; reads of 64 bytes or more into an empty buffer go straight to the
 * socket, and the buffer is freed then (the byte-wise phase of a connection is its start).
 * /dns, /dns4, /dns6 names are resolved by getaddrinfo on a short-lived worker thread that
 * reports back through lp2p__sched_post, so the loop never stalls.
 * Pipe errors: ERR_RESET when the peer reset or vanished (ECONNRESET, EPIPE, ETIMEDOUT on an
 * open connection), ERR_CLOSED for writes after close_write or calls woken by a concurrent
 * close/reset of the same pipe, ERR_TIMEOUT, ERR_CANCELED, ERR_NOMEM, ERR_IO (other errno).
 * close/reset/listener_free may run while another task is parked in read/write/accept on the
 * same object: that call returns ERR_CLOSED and the record is freed once it has woken.
 * Depends on: runtime.h, pipe.h, multiaddr.h. */
#ifndef LP2P__TCP_H
#define LP2P__TCP_H

// (amalgamated) #include "pipe.h"
// (amalgamated) #include "multiaddr.h"

typedef struct lp2p__tcp_listener lp2p__tcp_listener;

/* Listen on an /ip4|ip6/<addr>/tcp/<port> multiaddr (port 0 = any). *bound gets the real
 * address (port filled in). ERR_BADADDR (not a TCP address), ERR_IO (bind/listen failed, logged). */
LP2P__PRIV int lp2p__tcp_listen(lp2p__sched *s, const lp2p__ma *addr, lp2p__tcp_listener **out, lp2p__ma *bound);
/* Accept one connection. *remote gets the peer's /ip4|ip6/../tcp/.. address.
 * ERR_TIMEOUT, ERR_CANCELED, ERR_CLOSED (listener freed), ERR_NOMEM, ERR_IO (e.g. EMFILE; logged). */
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
 * multiaddr kept), in getaddrinfo order. Returns the number of results (>= 1), ERR_UNREACHABLE
 * (no answer), ERR_TIMEOUT, ERR_CANCELED, ERR_WOULDBLOCK, ERR_BADADDR (not a dns address),
 * ERR_NOMEM. A late answer after a timeout is dropped safely (the worker thread frees it). */
LP2P__PRIV int lp2p__dns_resolve(lp2p__sched *s, const lp2p__ma *addr, lp2p__ma *out, int max, int64_t deadline);

/* Two connected in-memory pipes (tests, simulation). Each direction buffers up to 1 MiB
 * (writers wait when it is full). close_write gives the reader EOF after the buffered bytes;
 * reset makes the other side's reads and writes return ERR_RESET (unread bytes are dropped);
 * writing to a side whose peer closed or reset gives ERR_RESET. ERR_NOMEM. */
LP2P__PRIV int lp2p__mempipe_pair(lp2p__sched *s, lp2p__pipe **a, lp2p__pipe **b);

/* The socket of a TCP pipe (for socket options, e.g. hole punching), or -1 for other pipes.
 * The pipe keeps ownership. */
LP2P__PRIV int lp2p__tcp_pipe_fd(lp2p__pipe *p);

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

// (amalgamated) #include "pipe.h"

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

// (amalgamated) #include "pipe.h"
// (amalgamated) #include "crypto.h"

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
 * Tasks: one reader task per session reads frames and dispatches them; a writer task owns
 * the pipe's write side while there is something to send and sends, in one pipe write per
 * batch, queued control frames (pongs first) then data frames round-robin over the streams
 * that have data and window; it ends when nothing is left (an idle session parks no writer
 * and holds no batch buffer) and is started again by the next frame queued.
 * A stream write hands its buffer to the writer and returns once every byte was copied
 * into a batch, so a canceled or timed-out app task never leaves half a frame on the wire.
 * The reader also keeps the session alive (no task of its own): it pings at session start
 * (RTT for window tuning) and whenever nothing was received for keepalive_ms; no pong within
 * ping_timeout_ms, or a peer stopping inside a frame for keepalive_ms + ping_timeout_ms, ends
 * the session (ERR_TIMEOUT).
 *
 * Flow control: receive windows start at init_window (>= 256 KiB, the spec value; the extra
 * rides on the SYN/ACK window update) and auto-tune: a window update is sent once the app
 * has consumed half the window, and the window doubles (up to max_window, and within the
 * session budget max_conn_window) when the previous update was less than 4 RTT ago (go-yamux
 * stream.go rule; an RTT under 1 ms counts as 1 ms). Any window the peer grants is accepted (rust/go/js go far above 256 KiB).
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

// (amalgamated) #include "pipe.h"

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
// (amalgamated) #include "keys.pb.h"

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
/*==================== begin src/proto/kad.pb.h ====================*/
/* Automatically generated nanopb header */
/* Generated by nanopb-0.4.7 */

#ifndef PB_LP2P_PB_KAD_PB_H_INCLUDED
#define PB_LP2P_PB_KAD_PB_H_INCLUDED
#include <pb.h>

#if PB_PROTO_HEADER_VERSION != 40
#error Regenerate this file with the current version of nanopb generator.
#endif

/* Enum definitions */
typedef enum _lp2p_pb_KadPeer_ConnectionType {
    lp2p_pb_KadPeer_ConnectionType_NOT_CONNECTED = 0,
    lp2p_pb_KadPeer_ConnectionType_CONNECTED = 1,
    lp2p_pb_KadPeer_ConnectionType_CAN_CONNECT = 2,
    lp2p_pb_KadPeer_ConnectionType_CANNOT_CONNECT = 3
} lp2p_pb_KadPeer_ConnectionType;

typedef enum _lp2p_pb_KadMessage_MessageType {
    lp2p_pb_KadMessage_MessageType_PUT_VALUE = 0,
    lp2p_pb_KadMessage_MessageType_GET_VALUE = 1,
    lp2p_pb_KadMessage_MessageType_ADD_PROVIDER = 2,
    lp2p_pb_KadMessage_MessageType_GET_PROVIDERS = 3,
    lp2p_pb_KadMessage_MessageType_FIND_NODE = 4,
    lp2p_pb_KadMessage_MessageType_PING = 5 /* deprecated: never sent */
} lp2p_pb_KadMessage_MessageType;

/* Struct definitions */
typedef struct _lp2p_pb_KadRecord {
    pb_callback_t key;
    pb_callback_t value;
    pb_callback_t timeReceived; /* RFC 3339 text in the spec (`string`) */
} lp2p_pb_KadRecord;

typedef struct _lp2p_pb_KadPeer {
    pb_callback_t id;
    pb_callback_t addrs;
    lp2p_pb_KadPeer_ConnectionType connection;
} lp2p_pb_KadPeer;

typedef struct _lp2p_pb_KadMessage {
    lp2p_pb_KadMessage_MessageType type;
    pb_callback_t key;
    bool has_record;
    lp2p_pb_KadRecord record;
    pb_callback_t closerPeers;
    pb_callback_t providerPeers;
    int32_t clusterLevelRaw;
} lp2p_pb_KadMessage;


#ifdef __cplusplus
extern "C" {
#endif

/* Helper constants for enums */
#define _lp2p_pb_KadPeer_ConnectionType_MIN lp2p_pb_KadPeer_ConnectionType_NOT_CONNECTED
#define _lp2p_pb_KadPeer_ConnectionType_MAX lp2p_pb_KadPeer_ConnectionType_CANNOT_CONNECT
#define _lp2p_pb_KadPeer_ConnectionType_ARRAYSIZE ((lp2p_pb_KadPeer_ConnectionType)(lp2p_pb_KadPeer_ConnectionType_CANNOT_CONNECT+1))

#define _lp2p_pb_KadMessage_MessageType_MIN lp2p_pb_KadMessage_MessageType_PUT_VALUE
#define _lp2p_pb_KadMessage_MessageType_MAX lp2p_pb_KadMessage_MessageType_PING
#define _lp2p_pb_KadMessage_MessageType_ARRAYSIZE ((lp2p_pb_KadMessage_MessageType)(lp2p_pb_KadMessage_MessageType_PING+1))


#define lp2p_pb_KadPeer_connection_ENUMTYPE lp2p_pb_KadPeer_ConnectionType

#define lp2p_pb_KadMessage_type_ENUMTYPE lp2p_pb_KadMessage_MessageType


/* Initializer values for message structs */
#define lp2p_pb_KadRecord_init_default           {{{NULL}, NULL}, {{NULL}, NULL}, {{NULL}, NULL}}
#define lp2p_pb_KadPeer_init_default             {{{NULL}, NULL}, {{NULL}, NULL}, _lp2p_pb_KadPeer_ConnectionType_MIN}
#define lp2p_pb_KadMessage_init_default          {_lp2p_pb_KadMessage_MessageType_MIN, {{NULL}, NULL}, false, lp2p_pb_KadRecord_init_default, {{NULL}, NULL}, {{NULL}, NULL}, 0}
#define lp2p_pb_KadRecord_init_zero              {{{NULL}, NULL}, {{NULL}, NULL}, {{NULL}, NULL}}
#define lp2p_pb_KadPeer_init_zero                {{{NULL}, NULL}, {{NULL}, NULL}, _lp2p_pb_KadPeer_ConnectionType_MIN}
#define lp2p_pb_KadMessage_init_zero             {_lp2p_pb_KadMessage_MessageType_MIN, {{NULL}, NULL}, false, lp2p_pb_KadRecord_init_zero, {{NULL}, NULL}, {{NULL}, NULL}, 0}

/* Field tags (for use in manual encoding/decoding) */
#define lp2p_pb_KadRecord_key_tag                1
#define lp2p_pb_KadRecord_value_tag              2
#define lp2p_pb_KadRecord_timeReceived_tag       5
#define lp2p_pb_KadPeer_id_tag                   1
#define lp2p_pb_KadPeer_addrs_tag                2
#define lp2p_pb_KadPeer_connection_tag           3
#define lp2p_pb_KadMessage_type_tag              1
#define lp2p_pb_KadMessage_key_tag               2
#define lp2p_pb_KadMessage_record_tag            3
#define lp2p_pb_KadMessage_closerPeers_tag       8
#define lp2p_pb_KadMessage_providerPeers_tag     9
#define lp2p_pb_KadMessage_clusterLevelRaw_tag   10

/* Struct field encoding specification for nanopb */
#define lp2p_pb_KadRecord_FIELDLIST(X, a) \
X(a, CALLBACK, SINGULAR, BYTES,    key,               1) \
X(a, CALLBACK, SINGULAR, BYTES,    value,             2) \
X(a, CALLBACK, SINGULAR, BYTES,    timeReceived,      5)
#define lp2p_pb_KadRecord_CALLBACK pb_default_field_callback
#define lp2p_pb_KadRecord_DEFAULT NULL

#define lp2p_pb_KadPeer_FIELDLIST(X, a) \
X(a, CALLBACK, SINGULAR, BYTES,    id,                1) \
X(a, CALLBACK, REPEATED, BYTES,    addrs,             2) \
X(a, STATIC,   SINGULAR, UENUM,    connection,        3)
#define lp2p_pb_KadPeer_CALLBACK pb_default_field_callback
#define lp2p_pb_KadPeer_DEFAULT NULL

#define lp2p_pb_KadMessage_FIELDLIST(X, a) \
X(a, STATIC,   SINGULAR, UENUM,    type,              1) \
X(a, CALLBACK, SINGULAR, BYTES,    key,               2) \
X(a, STATIC,   OPTIONAL, MESSAGE,  record,            3) \
X(a, CALLBACK, REPEATED, MESSAGE,  closerPeers,       8) \
X(a, CALLBACK, REPEATED, MESSAGE,  providerPeers,     9) \
X(a, STATIC,   SINGULAR, INT32,    clusterLevelRaw,  10)
#define lp2p_pb_KadMessage_CALLBACK pb_default_field_callback
#define lp2p_pb_KadMessage_DEFAULT NULL
#define lp2p_pb_KadMessage_record_MSGTYPE lp2p_pb_KadRecord
#define lp2p_pb_KadMessage_closerPeers_MSGTYPE lp2p_pb_KadPeer
#define lp2p_pb_KadMessage_providerPeers_MSGTYPE lp2p_pb_KadPeer

extern const pb_msgdesc_t lp2p_pb_KadRecord_msg;
extern const pb_msgdesc_t lp2p_pb_KadPeer_msg;
extern const pb_msgdesc_t lp2p_pb_KadMessage_msg;

/* Defines for backwards compatibility with code written before nanopb-0.4.0 */
#define lp2p_pb_KadRecord_fields &lp2p_pb_KadRecord_msg
#define lp2p_pb_KadPeer_fields &lp2p_pb_KadPeer_msg
#define lp2p_pb_KadMessage_fields &lp2p_pb_KadMessage_msg

/* Maximum encoded size of messages (where known) */
/* lp2p_pb_KadRecord_size depends on runtime parameters */
/* lp2p_pb_KadPeer_size depends on runtime parameters */
/* lp2p_pb_KadMessage_size depends on runtime parameters */

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif
/*==================== end src/proto/kad.pb.h ====================*/
/*==================== begin src/proto/pubsub.pb.h ====================*/
/* Automatically generated nanopb header */
/* Generated by nanopb-0.4.7 */

#ifndef PB_LP2P_PB_PUBSUB_PB_H_INCLUDED
#define PB_LP2P_PB_PUBSUB_PB_H_INCLUDED
#include <pb.h>

#if PB_PROTO_HEADER_VERSION != 40
#error Regenerate this file with the current version of nanopb generator.
#endif

/* Struct definitions */
typedef struct _lp2p_pb_PubsubRPC_SubOpts {
    bool has_subscribe;
    bool subscribe;
    pb_callback_t topicid;
} lp2p_pb_PubsubRPC_SubOpts;

typedef struct _lp2p_pb_PubsubMessage {
    pb_callback_t from;
    pb_callback_t data;
    pb_callback_t seqno;
    pb_callback_t topic;
    pb_callback_t signature;
    pb_callback_t key;
} lp2p_pb_PubsubMessage;

typedef struct _lp2p_pb_PubsubControl {
    pb_callback_t ihave;
    pb_callback_t iwant;
    pb_callback_t graft;
    pb_callback_t prune;
    pb_callback_t idontwant;
} lp2p_pb_PubsubControl;

typedef struct _lp2p_pb_PubsubRPC {
    pb_callback_t subscriptions;
    pb_callback_t publish;
    bool has_control;
    lp2p_pb_PubsubControl control;
} lp2p_pb_PubsubRPC;

typedef struct _lp2p_pb_PubsubIHave {
    pb_callback_t topicID;
    pb_callback_t messageIDs;
} lp2p_pb_PubsubIHave;

typedef struct _lp2p_pb_PubsubIWant {
    pb_callback_t messageIDs;
} lp2p_pb_PubsubIWant;

typedef struct _lp2p_pb_PubsubGraft {
    pb_callback_t topicID;
} lp2p_pb_PubsubGraft;

typedef struct _lp2p_pb_PubsubPrune {
    pb_callback_t topicID;
    pb_callback_t peers;
    bool has_backoff;
    uint64_t backoff;
} lp2p_pb_PubsubPrune;

typedef struct _lp2p_pb_PubsubPeerInfo {
    pb_callback_t peerID;
    pb_callback_t signedPeerRecord;
} lp2p_pb_PubsubPeerInfo;

typedef struct _lp2p_pb_PubsubIDontWant {
    pb_callback_t messageIDs;
} lp2p_pb_PubsubIDontWant;


#ifdef __cplusplus
extern "C" {
#endif

/* Initializer values for message structs */
#define lp2p_pb_PubsubRPC_init_default           {{{NULL}, NULL}, {{NULL}, NULL}, false, lp2p_pb_PubsubControl_init_default}
#define lp2p_pb_PubsubRPC_SubOpts_init_default   {false, 0, {{NULL}, NULL}}
#define lp2p_pb_PubsubMessage_init_default       {{{NULL}, NULL}, {{NULL}, NULL}, {{NULL}, NULL}, {{NULL}, NULL}, {{NULL}, NULL}, {{NULL}, NULL}}
#define lp2p_pb_PubsubControl_init_default       {{{NULL}, NULL}, {{NULL}, NULL}, {{NULL}, NULL}, {{NULL}, NULL}, {{NULL}, NULL}}
#define lp2p_pb_PubsubIHave_init_default         {{{NULL}, NULL}, {{NULL}, NULL}}
#define lp2p_pb_PubsubIWant_init_default         {{{NULL}, NULL}}
#define lp2p_pb_PubsubGraft_init_default         {{{NULL}, NULL}}
#define lp2p_pb_PubsubPrune_init_default         {{{NULL}, NULL}, {{NULL}, NULL}, false, 0}
#define lp2p_pb_PubsubPeerInfo_init_default      {{{NULL}, NULL}, {{NULL}, NULL}}
#define lp2p_pb_PubsubIDontWant_init_default     {{{NULL}, NULL}}
#define lp2p_pb_PubsubRPC_init_zero              {{{NULL}, NULL}, {{NULL}, NULL}, false, lp2p_pb_PubsubControl_init_zero}
#define lp2p_pb_PubsubRPC_SubOpts_init_zero      {false, 0, {{NULL}, NULL}}
#define lp2p_pb_PubsubMessage_init_zero          {{{NULL}, NULL}, {{NULL}, NULL}, {{NULL}, NULL}, {{NULL}, NULL}, {{NULL}, NULL}, {{NULL}, NULL}}
#define lp2p_pb_PubsubControl_init_zero          {{{NULL}, NULL}, {{NULL}, NULL}, {{NULL}, NULL}, {{NULL}, NULL}, {{NULL}, NULL}}
#define lp2p_pb_PubsubIHave_init_zero            {{{NULL}, NULL}, {{NULL}, NULL}}
#define lp2p_pb_PubsubIWant_init_zero            {{{NULL}, NULL}}
#define lp2p_pb_PubsubGraft_init_zero            {{{NULL}, NULL}}
#define lp2p_pb_PubsubPrune_init_zero            {{{NULL}, NULL}, {{NULL}, NULL}, false, 0}
#define lp2p_pb_PubsubPeerInfo_init_zero         {{{NULL}, NULL}, {{NULL}, NULL}}
#define lp2p_pb_PubsubIDontWant_init_zero        {{{NULL}, NULL}}

/* Field tags (for use in manual encoding/decoding) */
#define lp2p_pb_PubsubRPC_SubOpts_subscribe_tag  1
#define lp2p_pb_PubsubRPC_SubOpts_topicid_tag    2
#define lp2p_pb_PubsubMessage_from_tag           1
#define lp2p_pb_PubsubMessage_data_tag           2
#define lp2p_pb_PubsubMessage_seqno_tag          3
#define lp2p_pb_PubsubMessage_topic_tag          4
#define lp2p_pb_PubsubMessage_signature_tag      5
#define lp2p_pb_PubsubMessage_key_tag            6
#define lp2p_pb_PubsubControl_ihave_tag          1
#define lp2p_pb_PubsubControl_iwant_tag          2
#define lp2p_pb_PubsubControl_graft_tag          3
#define lp2p_pb_PubsubControl_prune_tag          4
#define lp2p_pb_PubsubControl_idontwant_tag      5
#define lp2p_pb_PubsubRPC_subscriptions_tag      1
#define lp2p_pb_PubsubRPC_publish_tag            2
#define lp2p_pb_PubsubRPC_control_tag            3
#define lp2p_pb_PubsubIHave_topicID_tag          1
#define lp2p_pb_PubsubIHave_messageIDs_tag       2
#define lp2p_pb_PubsubIWant_messageIDs_tag       1
#define lp2p_pb_PubsubGraft_topicID_tag          1
#define lp2p_pb_PubsubPrune_topicID_tag          1
#define lp2p_pb_PubsubPrune_peers_tag            2
#define lp2p_pb_PubsubPrune_backoff_tag          3
#define lp2p_pb_PubsubPeerInfo_peerID_tag        1
#define lp2p_pb_PubsubPeerInfo_signedPeerRecord_tag 2
#define lp2p_pb_PubsubIDontWant_messageIDs_tag   1

/* Struct field encoding specification for nanopb */
#define lp2p_pb_PubsubRPC_FIELDLIST(X, a) \
X(a, CALLBACK, REPEATED, MESSAGE,  subscriptions,     1) \
X(a, CALLBACK, REPEATED, MESSAGE,  publish,           2) \
X(a, STATIC,   OPTIONAL, MESSAGE,  control,           3)
#define lp2p_pb_PubsubRPC_CALLBACK pb_default_field_callback
#define lp2p_pb_PubsubRPC_DEFAULT NULL
#define lp2p_pb_PubsubRPC_subscriptions_MSGTYPE lp2p_pb_PubsubRPC_SubOpts
#define lp2p_pb_PubsubRPC_publish_MSGTYPE lp2p_pb_PubsubMessage
#define lp2p_pb_PubsubRPC_control_MSGTYPE lp2p_pb_PubsubControl

#define lp2p_pb_PubsubRPC_SubOpts_FIELDLIST(X, a) \
X(a, STATIC,   OPTIONAL, BOOL,     subscribe,         1) \
X(a, CALLBACK, OPTIONAL, BYTES,    topicid,           2)
#define lp2p_pb_PubsubRPC_SubOpts_CALLBACK pb_default_field_callback
#define lp2p_pb_PubsubRPC_SubOpts_DEFAULT NULL

#define lp2p_pb_PubsubMessage_FIELDLIST(X, a) \
X(a, CALLBACK, OPTIONAL, BYTES,    from,              1) \
X(a, CALLBACK, OPTIONAL, BYTES,    data,              2) \
X(a, CALLBACK, OPTIONAL, BYTES,    seqno,             3) \
X(a, CALLBACK, OPTIONAL, BYTES,    topic,             4) \
X(a, CALLBACK, OPTIONAL, BYTES,    signature,         5) \
X(a, CALLBACK, OPTIONAL, BYTES,    key,               6)
#define lp2p_pb_PubsubMessage_CALLBACK pb_default_field_callback
#define lp2p_pb_PubsubMessage_DEFAULT NULL

#define lp2p_pb_PubsubControl_FIELDLIST(X, a) \
X(a, CALLBACK, REPEATED, MESSAGE,  ihave,             1) \
X(a, CALLBACK, REPEATED, MESSAGE,  iwant,             2) \
X(a, CALLBACK, REPEATED, MESSAGE,  graft,             3) \
X(a, CALLBACK, REPEATED, MESSAGE,  prune,             4) \
X(a, CALLBACK, REPEATED, MESSAGE,  idontwant,         5)
#define lp2p_pb_PubsubControl_CALLBACK pb_default_field_callback
#define lp2p_pb_PubsubControl_DEFAULT NULL
#define lp2p_pb_PubsubControl_ihave_MSGTYPE lp2p_pb_PubsubIHave
#define lp2p_pb_PubsubControl_iwant_MSGTYPE lp2p_pb_PubsubIWant
#define lp2p_pb_PubsubControl_graft_MSGTYPE lp2p_pb_PubsubGraft
#define lp2p_pb_PubsubControl_prune_MSGTYPE lp2p_pb_PubsubPrune
#define lp2p_pb_PubsubControl_idontwant_MSGTYPE lp2p_pb_PubsubIDontWant

#define lp2p_pb_PubsubIHave_FIELDLIST(X, a) \
X(a, CALLBACK, OPTIONAL, BYTES,    topicID,           1) \
X(a, CALLBACK, REPEATED, BYTES,    messageIDs,        2)
#define lp2p_pb_PubsubIHave_CALLBACK pb_default_field_callback
#define lp2p_pb_PubsubIHave_DEFAULT NULL

#define lp2p_pb_PubsubIWant_FIELDLIST(X, a) \
X(a, CALLBACK, REPEATED, BYTES,    messageIDs,        1)
#define lp2p_pb_PubsubIWant_CALLBACK pb_default_field_callback
#define lp2p_pb_PubsubIWant_DEFAULT NULL

#define lp2p_pb_PubsubGraft_FIELDLIST(X, a) \
X(a, CALLBACK, OPTIONAL, BYTES,    topicID,           1)
#define lp2p_pb_PubsubGraft_CALLBACK pb_default_field_callback
#define lp2p_pb_PubsubGraft_DEFAULT NULL

#define lp2p_pb_PubsubPrune_FIELDLIST(X, a) \
X(a, CALLBACK, OPTIONAL, BYTES,    topicID,           1) \
X(a, CALLBACK, REPEATED, MESSAGE,  peers,             2) \
X(a, STATIC,   OPTIONAL, UINT64,   backoff,           3)
#define lp2p_pb_PubsubPrune_CALLBACK pb_default_field_callback
#define lp2p_pb_PubsubPrune_DEFAULT NULL
#define lp2p_pb_PubsubPrune_peers_MSGTYPE lp2p_pb_PubsubPeerInfo

#define lp2p_pb_PubsubPeerInfo_FIELDLIST(X, a) \
X(a, CALLBACK, OPTIONAL, BYTES,    peerID,            1) \
X(a, CALLBACK, OPTIONAL, BYTES,    signedPeerRecord,   2)
#define lp2p_pb_PubsubPeerInfo_CALLBACK pb_default_field_callback
#define lp2p_pb_PubsubPeerInfo_DEFAULT NULL

#define lp2p_pb_PubsubIDontWant_FIELDLIST(X, a) \
X(a, CALLBACK, REPEATED, BYTES,    messageIDs,        1)
#define lp2p_pb_PubsubIDontWant_CALLBACK pb_default_field_callback
#define lp2p_pb_PubsubIDontWant_DEFAULT NULL

extern const pb_msgdesc_t lp2p_pb_PubsubRPC_msg;
extern const pb_msgdesc_t lp2p_pb_PubsubRPC_SubOpts_msg;
extern const pb_msgdesc_t lp2p_pb_PubsubMessage_msg;
extern const pb_msgdesc_t lp2p_pb_PubsubControl_msg;
extern const pb_msgdesc_t lp2p_pb_PubsubIHave_msg;
extern const pb_msgdesc_t lp2p_pb_PubsubIWant_msg;
extern const pb_msgdesc_t lp2p_pb_PubsubGraft_msg;
extern const pb_msgdesc_t lp2p_pb_PubsubPrune_msg;
extern const pb_msgdesc_t lp2p_pb_PubsubPeerInfo_msg;
extern const pb_msgdesc_t lp2p_pb_PubsubIDontWant_msg;

/* Defines for backwards compatibility with code written before nanopb-0.4.0 */
#define lp2p_pb_PubsubRPC_fields &lp2p_pb_PubsubRPC_msg
#define lp2p_pb_PubsubRPC_SubOpts_fields &lp2p_pb_PubsubRPC_SubOpts_msg
#define lp2p_pb_PubsubMessage_fields &lp2p_pb_PubsubMessage_msg
#define lp2p_pb_PubsubControl_fields &lp2p_pb_PubsubControl_msg
#define lp2p_pb_PubsubIHave_fields &lp2p_pb_PubsubIHave_msg
#define lp2p_pb_PubsubIWant_fields &lp2p_pb_PubsubIWant_msg
#define lp2p_pb_PubsubGraft_fields &lp2p_pb_PubsubGraft_msg
#define lp2p_pb_PubsubPrune_fields &lp2p_pb_PubsubPrune_msg
#define lp2p_pb_PubsubPeerInfo_fields &lp2p_pb_PubsubPeerInfo_msg
#define lp2p_pb_PubsubIDontWant_fields &lp2p_pb_PubsubIDontWant_msg

/* Maximum encoded size of messages (where known) */
/* lp2p_pb_PubsubRPC_size depends on runtime parameters */
/* lp2p_pb_PubsubRPC_SubOpts_size depends on runtime parameters */
/* lp2p_pb_PubsubMessage_size depends on runtime parameters */
/* lp2p_pb_PubsubControl_size depends on runtime parameters */
/* lp2p_pb_PubsubIHave_size depends on runtime parameters */
/* lp2p_pb_PubsubIWant_size depends on runtime parameters */
/* lp2p_pb_PubsubGraft_size depends on runtime parameters */
/* lp2p_pb_PubsubPrune_size depends on runtime parameters */
/* lp2p_pb_PubsubPeerInfo_size depends on runtime parameters */
/* lp2p_pb_PubsubIDontWant_size depends on runtime parameters */

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif
/*==================== end src/proto/pubsub.pb.h ====================*/
/*==================== begin src/proto/circuit.pb.h ====================*/
/* Automatically generated nanopb header */
/* Generated by nanopb-0.4.7 */

#ifndef PB_LP2P_PB_CIRCUIT_PB_H_INCLUDED
#define PB_LP2P_PB_CIRCUIT_PB_H_INCLUDED
#include <pb.h>

#if PB_PROTO_HEADER_VERSION != 40
#error Regenerate this file with the current version of nanopb generator.
#endif

/* Enum definitions */
typedef enum _lp2p_pb_Status {
    lp2p_pb_Status_UNUSED = 0,
    lp2p_pb_Status_OK = 100,
    lp2p_pb_Status_RESERVATION_REFUSED = 200,
    lp2p_pb_Status_RESOURCE_LIMIT_EXCEEDED = 201,
    lp2p_pb_Status_PERMISSION_DENIED = 202,
    lp2p_pb_Status_CONNECTION_FAILED = 203,
    lp2p_pb_Status_NO_RESERVATION = 204,
    lp2p_pb_Status_MALFORMED_MESSAGE = 400,
    lp2p_pb_Status_UNEXPECTED_MESSAGE = 401
} lp2p_pb_Status;

typedef enum _lp2p_pb_HopMessage_Type {
    lp2p_pb_HopMessage_Type_RESERVE = 0,
    lp2p_pb_HopMessage_Type_CONNECT = 1,
    lp2p_pb_HopMessage_Type_STATUS = 2
} lp2p_pb_HopMessage_Type;

typedef enum _lp2p_pb_StopMessage_Type {
    lp2p_pb_StopMessage_Type_CONNECT = 0,
    lp2p_pb_StopMessage_Type_STATUS = 1
} lp2p_pb_StopMessage_Type;

/* Struct definitions */
typedef PB_BYTES_ARRAY_T(64) lp2p_pb_Peer_id_t;
typedef struct _lp2p_pb_Peer {
    bool has_id;
    lp2p_pb_Peer_id_t id;
    pb_callback_t addrs;
} lp2p_pb_Peer;

typedef PB_BYTES_ARRAY_T(2048) lp2p_pb_Reservation_voucher_t;
typedef struct _lp2p_pb_Reservation {
    bool has_expire;
    uint64_t expire; /* Unix seconds (UTC) */
    pb_callback_t addrs; /* the relay's addresses for the reserving peer */
    bool has_voucher;
    lp2p_pb_Reservation_voucher_t voucher; /* signed envelope of a ReservationVoucher */
} lp2p_pb_Reservation;

typedef struct _lp2p_pb_Limit {
    bool has_duration;
    uint32_t duration; /* seconds by the spec (js relays send milliseconds) */
    bool has_data;
    uint64_t data; /* bytes per direction */
} lp2p_pb_Limit;

typedef struct _lp2p_pb_HopMessage {
    bool has_type;
    lp2p_pb_HopMessage_Type type;
    bool has_peer;
    lp2p_pb_Peer peer;
    bool has_reservation;
    lp2p_pb_Reservation reservation;
    bool has_limit;
    lp2p_pb_Limit limit;
    bool has_status;
    lp2p_pb_Status status;
} lp2p_pb_HopMessage;

typedef struct _lp2p_pb_StopMessage {
    bool has_type;
    lp2p_pb_StopMessage_Type type;
    bool has_peer;
    lp2p_pb_Peer peer;
    bool has_limit;
    lp2p_pb_Limit limit;
    bool has_status;
    lp2p_pb_Status status;
} lp2p_pb_StopMessage;

typedef PB_BYTES_ARRAY_T(64) lp2p_pb_ReservationVoucher_relay_t;
typedef PB_BYTES_ARRAY_T(64) lp2p_pb_ReservationVoucher_peer_t;
typedef struct _lp2p_pb_ReservationVoucher {
    bool has_relay;
    lp2p_pb_ReservationVoucher_relay_t relay;
    bool has_peer;
    lp2p_pb_ReservationVoucher_peer_t peer;
    bool has_expiration;
    uint64_t expiration;
} lp2p_pb_ReservationVoucher;


#ifdef __cplusplus
extern "C" {
#endif

/* Helper constants for enums */
#define _lp2p_pb_Status_MIN lp2p_pb_Status_UNUSED
#define _lp2p_pb_Status_MAX lp2p_pb_Status_UNEXPECTED_MESSAGE
#define _lp2p_pb_Status_ARRAYSIZE ((lp2p_pb_Status)(lp2p_pb_Status_UNEXPECTED_MESSAGE+1))

#define _lp2p_pb_HopMessage_Type_MIN lp2p_pb_HopMessage_Type_RESERVE
#define _lp2p_pb_HopMessage_Type_MAX lp2p_pb_HopMessage_Type_STATUS
#define _lp2p_pb_HopMessage_Type_ARRAYSIZE ((lp2p_pb_HopMessage_Type)(lp2p_pb_HopMessage_Type_STATUS+1))

#define _lp2p_pb_StopMessage_Type_MIN lp2p_pb_StopMessage_Type_CONNECT
#define _lp2p_pb_StopMessage_Type_MAX lp2p_pb_StopMessage_Type_STATUS
#define _lp2p_pb_StopMessage_Type_ARRAYSIZE ((lp2p_pb_StopMessage_Type)(lp2p_pb_StopMessage_Type_STATUS+1))

#define lp2p_pb_HopMessage_type_ENUMTYPE lp2p_pb_HopMessage_Type
#define lp2p_pb_HopMessage_status_ENUMTYPE lp2p_pb_Status

#define lp2p_pb_StopMessage_type_ENUMTYPE lp2p_pb_StopMessage_Type
#define lp2p_pb_StopMessage_status_ENUMTYPE lp2p_pb_Status






/* Initializer values for message structs */
#define lp2p_pb_HopMessage_init_default          {false, _lp2p_pb_HopMessage_Type_MIN, false, lp2p_pb_Peer_init_default, false, lp2p_pb_Reservation_init_default, false, lp2p_pb_Limit_init_default, false, _lp2p_pb_Status_MIN}
#define lp2p_pb_StopMessage_init_default         {false, _lp2p_pb_StopMessage_Type_MIN, false, lp2p_pb_Peer_init_default, false, lp2p_pb_Limit_init_default, false, _lp2p_pb_Status_MIN}
#define lp2p_pb_Peer_init_default                {false, {0, {0}}, {{NULL}, NULL}}
#define lp2p_pb_Reservation_init_default         {false, 0, {{NULL}, NULL}, false, {0, {0}}}
#define lp2p_pb_Limit_init_default               {false, 0, false, 0}
#define lp2p_pb_ReservationVoucher_init_default  {false, {0, {0}}, false, {0, {0}}, false, 0}
#define lp2p_pb_HopMessage_init_zero             {false, _lp2p_pb_HopMessage_Type_MIN, false, lp2p_pb_Peer_init_zero, false, lp2p_pb_Reservation_init_zero, false, lp2p_pb_Limit_init_zero, false, _lp2p_pb_Status_MIN}
#define lp2p_pb_StopMessage_init_zero            {false, _lp2p_pb_StopMessage_Type_MIN, false, lp2p_pb_Peer_init_zero, false, lp2p_pb_Limit_init_zero, false, _lp2p_pb_Status_MIN}
#define lp2p_pb_Peer_init_zero                   {false, {0, {0}}, {{NULL}, NULL}}
#define lp2p_pb_Reservation_init_zero            {false, 0, {{NULL}, NULL}, false, {0, {0}}}
#define lp2p_pb_Limit_init_zero                  {false, 0, false, 0}
#define lp2p_pb_ReservationVoucher_init_zero     {false, {0, {0}}, false, {0, {0}}, false, 0}

/* Field tags (for use in manual encoding/decoding) */
#define lp2p_pb_Peer_id_tag                      1
#define lp2p_pb_Peer_addrs_tag                   2
#define lp2p_pb_Reservation_expire_tag           1
#define lp2p_pb_Reservation_addrs_tag            2
#define lp2p_pb_Reservation_voucher_tag          3
#define lp2p_pb_Limit_duration_tag               1
#define lp2p_pb_Limit_data_tag                   2
#define lp2p_pb_HopMessage_type_tag              1
#define lp2p_pb_HopMessage_peer_tag              2
#define lp2p_pb_HopMessage_reservation_tag       3
#define lp2p_pb_HopMessage_limit_tag             4
#define lp2p_pb_HopMessage_status_tag            5
#define lp2p_pb_StopMessage_type_tag             1
#define lp2p_pb_StopMessage_peer_tag             2
#define lp2p_pb_StopMessage_limit_tag            3
#define lp2p_pb_StopMessage_status_tag           4
#define lp2p_pb_ReservationVoucher_relay_tag     1
#define lp2p_pb_ReservationVoucher_peer_tag      2
#define lp2p_pb_ReservationVoucher_expiration_tag 3

/* Struct field encoding specification for nanopb */
#define lp2p_pb_HopMessage_FIELDLIST(X, a) \
X(a, STATIC,   OPTIONAL, UENUM,    type,              1) \
X(a, STATIC,   OPTIONAL, MESSAGE,  peer,              2) \
X(a, STATIC,   OPTIONAL, MESSAGE,  reservation,       3) \
X(a, STATIC,   OPTIONAL, MESSAGE,  limit,             4) \
X(a, STATIC,   OPTIONAL, UENUM,    status,            5)
#define lp2p_pb_HopMessage_CALLBACK NULL
#define lp2p_pb_HopMessage_DEFAULT NULL
#define lp2p_pb_HopMessage_peer_MSGTYPE lp2p_pb_Peer
#define lp2p_pb_HopMessage_reservation_MSGTYPE lp2p_pb_Reservation
#define lp2p_pb_HopMessage_limit_MSGTYPE lp2p_pb_Limit

#define lp2p_pb_StopMessage_FIELDLIST(X, a) \
X(a, STATIC,   OPTIONAL, UENUM,    type,              1) \
X(a, STATIC,   OPTIONAL, MESSAGE,  peer,              2) \
X(a, STATIC,   OPTIONAL, MESSAGE,  limit,             3) \
X(a, STATIC,   OPTIONAL, UENUM,    status,            4)
#define lp2p_pb_StopMessage_CALLBACK NULL
#define lp2p_pb_StopMessage_DEFAULT NULL
#define lp2p_pb_StopMessage_peer_MSGTYPE lp2p_pb_Peer
#define lp2p_pb_StopMessage_limit_MSGTYPE lp2p_pb_Limit

#define lp2p_pb_Peer_FIELDLIST(X, a) \
X(a, STATIC,   OPTIONAL, BYTES,    id,                1) \
X(a, CALLBACK, REPEATED, BYTES,    addrs,             2)
#define lp2p_pb_Peer_CALLBACK pb_default_field_callback
#define lp2p_pb_Peer_DEFAULT NULL

#define lp2p_pb_Reservation_FIELDLIST(X, a) \
X(a, STATIC,   OPTIONAL, UINT64,   expire,            1) \
X(a, CALLBACK, REPEATED, BYTES,    addrs,             2) \
X(a, STATIC,   OPTIONAL, BYTES,    voucher,           3)
#define lp2p_pb_Reservation_CALLBACK pb_default_field_callback
#define lp2p_pb_Reservation_DEFAULT NULL

#define lp2p_pb_Limit_FIELDLIST(X, a) \
X(a, STATIC,   OPTIONAL, UINT32,   duration,          1) \
X(a, STATIC,   OPTIONAL, UINT64,   data,              2)
#define lp2p_pb_Limit_CALLBACK NULL
#define lp2p_pb_Limit_DEFAULT NULL

#define lp2p_pb_ReservationVoucher_FIELDLIST(X, a) \
X(a, STATIC,   OPTIONAL, BYTES,    relay,             1) \
X(a, STATIC,   OPTIONAL, BYTES,    peer,              2) \
X(a, STATIC,   OPTIONAL, UINT64,   expiration,        3)
#define lp2p_pb_ReservationVoucher_CALLBACK NULL
#define lp2p_pb_ReservationVoucher_DEFAULT NULL

extern const pb_msgdesc_t lp2p_pb_HopMessage_msg;
extern const pb_msgdesc_t lp2p_pb_StopMessage_msg;
extern const pb_msgdesc_t lp2p_pb_Peer_msg;
extern const pb_msgdesc_t lp2p_pb_Reservation_msg;
extern const pb_msgdesc_t lp2p_pb_Limit_msg;
extern const pb_msgdesc_t lp2p_pb_ReservationVoucher_msg;

/* Defines for backwards compatibility with code written before nanopb-0.4.0 */
#define lp2p_pb_HopMessage_fields &lp2p_pb_HopMessage_msg
#define lp2p_pb_StopMessage_fields &lp2p_pb_StopMessage_msg
#define lp2p_pb_Peer_fields &lp2p_pb_Peer_msg
#define lp2p_pb_Reservation_fields &lp2p_pb_Reservation_msg
#define lp2p_pb_Limit_fields &lp2p_pb_Limit_msg
#define lp2p_pb_ReservationVoucher_fields &lp2p_pb_ReservationVoucher_msg

/* Maximum encoded size of messages (where known) */
/* lp2p_pb_HopMessage_size depends on runtime parameters */
/* lp2p_pb_StopMessage_size depends on runtime parameters */
/* lp2p_pb_Peer_size depends on runtime parameters */
/* lp2p_pb_Reservation_size depends on runtime parameters */
#define lp2p_pb_Limit_size                       17
#define lp2p_pb_ReservationVoucher_size          143

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif
/*==================== end src/proto/circuit.pb.h ====================*/
/*==================== begin src/proto/dcutr.pb.h ====================*/
/* Automatically generated nanopb header */
/* Generated by nanopb-0.4.7 */

#ifndef PB_LP2P_PB_DCUTR_PB_H_INCLUDED
#define PB_LP2P_PB_DCUTR_PB_H_INCLUDED
#include <pb.h>

#if PB_PROTO_HEADER_VERSION != 40
#error Regenerate this file with the current version of nanopb generator.
#endif

/* Enum definitions */
typedef enum _lp2p_pb_HolePunch_Type {
    lp2p_pb_HolePunch_Type_CONNECT = 100,
    lp2p_pb_HolePunch_Type_SYNC = 300
} lp2p_pb_HolePunch_Type;

/* Struct definitions */
typedef struct _lp2p_pb_HolePunch {
    lp2p_pb_HolePunch_Type type;
    pb_callback_t ObsAddrs;
} lp2p_pb_HolePunch;


#ifdef __cplusplus
extern "C" {
#endif

/* Helper constants for enums */
#define _lp2p_pb_HolePunch_Type_MIN lp2p_pb_HolePunch_Type_CONNECT
#define _lp2p_pb_HolePunch_Type_MAX lp2p_pb_HolePunch_Type_SYNC
#define _lp2p_pb_HolePunch_Type_ARRAYSIZE ((lp2p_pb_HolePunch_Type)(lp2p_pb_HolePunch_Type_SYNC+1))

#define lp2p_pb_HolePunch_type_ENUMTYPE lp2p_pb_HolePunch_Type


/* Initializer values for message structs */
#define lp2p_pb_HolePunch_init_default           {_lp2p_pb_HolePunch_Type_MIN, {{NULL}, NULL}}
#define lp2p_pb_HolePunch_init_zero              {_lp2p_pb_HolePunch_Type_MIN, {{NULL}, NULL}}

/* Field tags (for use in manual encoding/decoding) */
#define lp2p_pb_HolePunch_type_tag               1
#define lp2p_pb_HolePunch_ObsAddrs_tag           2

/* Struct field encoding specification for nanopb */
#define lp2p_pb_HolePunch_FIELDLIST(X, a) \
X(a, STATIC,   REQUIRED, UENUM,    type,              1) \
X(a, CALLBACK, REPEATED, BYTES,    ObsAddrs,          2)
#define lp2p_pb_HolePunch_CALLBACK pb_default_field_callback
#define lp2p_pb_HolePunch_DEFAULT (const pb_byte_t*)"\x08\x64\x00"

extern const pb_msgdesc_t lp2p_pb_HolePunch_msg;

/* Defines for backwards compatibility with code written before nanopb-0.4.0 */
#define lp2p_pb_HolePunch_fields &lp2p_pb_HolePunch_msg

/* Maximum encoded size of messages (where known) */
/* lp2p_pb_HolePunch_size depends on runtime parameters */

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif
/*==================== end src/proto/dcutr.pb.h ====================*/
/*==================== begin src/proto/autonat.pb.h ====================*/
/* Automatically generated nanopb header */
/* Generated by nanopb-0.4.7 */

#ifndef PB_LP2P_PB_AUTONAT_PB_H_INCLUDED
#define PB_LP2P_PB_AUTONAT_PB_H_INCLUDED
#include <pb.h>

#if PB_PROTO_HEADER_VERSION != 40
#error Regenerate this file with the current version of nanopb generator.
#endif

/* Enum definitions */
typedef enum _lp2p_pb_AN2DialStatus {
    lp2p_pb_AN2DialStatus_AN2_UNUSED = 0,
    lp2p_pb_AN2DialStatus_AN2_E_DIAL_ERROR = 100,
    lp2p_pb_AN2DialStatus_AN2_E_DIAL_BACK_ERROR = 101,
    lp2p_pb_AN2DialStatus_AN2_OK = 200
} lp2p_pb_AN2DialStatus;

typedef enum _lp2p_pb_AN2DialResponse_ResponseStatus {
    lp2p_pb_AN2DialResponse_ResponseStatus_E_INTERNAL_ERROR = 0,
    lp2p_pb_AN2DialResponse_ResponseStatus_E_REQUEST_REJECTED = 100,
    lp2p_pb_AN2DialResponse_ResponseStatus_E_DIAL_REFUSED = 101,
    lp2p_pb_AN2DialResponse_ResponseStatus_OK = 200
} lp2p_pb_AN2DialResponse_ResponseStatus;

typedef enum _lp2p_pb_AN2DialBackResponse_DialBackStatus {
    lp2p_pb_AN2DialBackResponse_DialBackStatus_OK = 0
} lp2p_pb_AN2DialBackResponse_DialBackStatus;

typedef enum _lp2p_pb_AN1Message_MessageType {
    lp2p_pb_AN1Message_MessageType_DIAL = 0,
    lp2p_pb_AN1Message_MessageType_DIAL_RESPONSE = 1
} lp2p_pb_AN1Message_MessageType;

typedef enum _lp2p_pb_AN1Message_ResponseStatus {
    lp2p_pb_AN1Message_ResponseStatus_OK = 0,
    lp2p_pb_AN1Message_ResponseStatus_E_DIAL_ERROR = 100,
    lp2p_pb_AN1Message_ResponseStatus_E_DIAL_REFUSED = 101,
    lp2p_pb_AN1Message_ResponseStatus_E_BAD_REQUEST = 200,
    lp2p_pb_AN1Message_ResponseStatus_E_INTERNAL_ERROR = 300
} lp2p_pb_AN1Message_ResponseStatus;

/* Struct definitions */
typedef struct _lp2p_pb_AN2DialRequest {
    pb_callback_t addrs;
    bool has_nonce;
    uint64_t nonce;
} lp2p_pb_AN2DialRequest;

typedef struct _lp2p_pb_AN2DialDataRequest {
    bool has_addrIdx;
    uint32_t addrIdx;
    bool has_numBytes;
    uint64_t numBytes;
} lp2p_pb_AN2DialDataRequest;

typedef struct _lp2p_pb_AN2DialResponse {
    bool has_status;
    lp2p_pb_AN2DialResponse_ResponseStatus status;
    bool has_addrIdx;
    uint32_t addrIdx;
    bool has_dialStatus;
    lp2p_pb_AN2DialStatus dialStatus;
} lp2p_pb_AN2DialResponse;

typedef struct _lp2p_pb_AN2DialDataResponse {
    pb_callback_t data;
} lp2p_pb_AN2DialDataResponse;

/* ---- v2 ---- */
typedef struct _lp2p_pb_AN2Message {
    bool has_dialRequest;
    lp2p_pb_AN2DialRequest dialRequest;
    bool has_dialResponse;
    lp2p_pb_AN2DialResponse dialResponse;
    bool has_dialDataRequest;
    lp2p_pb_AN2DialDataRequest dialDataRequest;
    bool has_dialDataResponse;
    lp2p_pb_AN2DialDataResponse dialDataResponse;
} lp2p_pb_AN2Message;

typedef struct _lp2p_pb_AN2DialBack {
    bool has_nonce;
    uint64_t nonce;
} lp2p_pb_AN2DialBack;

typedef struct _lp2p_pb_AN2DialBackResponse {
    bool has_status;
    lp2p_pb_AN2DialBackResponse_DialBackStatus status;
} lp2p_pb_AN2DialBackResponse;

typedef PB_BYTES_ARRAY_T(64) lp2p_pb_AN1Message_PeerInfo_id_t;
typedef struct _lp2p_pb_AN1Message_PeerInfo {
    bool has_id;
    lp2p_pb_AN1Message_PeerInfo_id_t id;
    pb_callback_t addrs;
} lp2p_pb_AN1Message_PeerInfo;

typedef struct _lp2p_pb_AN1Message_Dial {
    bool has_peer;
    lp2p_pb_AN1Message_PeerInfo peer;
} lp2p_pb_AN1Message_Dial;

typedef PB_BYTES_ARRAY_T(400) lp2p_pb_AN1Message_DialResponse_addr_t;
typedef struct _lp2p_pb_AN1Message_DialResponse {
    bool has_status;
    lp2p_pb_AN1Message_ResponseStatus status;
    bool has_statusText;
    char statusText[128];
    bool has_addr;
    lp2p_pb_AN1Message_DialResponse_addr_t addr;
} lp2p_pb_AN1Message_DialResponse;

/* ---- v1 ---- */
typedef struct _lp2p_pb_AN1Message {
    bool has_type;
    lp2p_pb_AN1Message_MessageType type;
    bool has_dial;
    lp2p_pb_AN1Message_Dial dial;
    bool has_dialResponse;
    lp2p_pb_AN1Message_DialResponse dialResponse;
} lp2p_pb_AN1Message;


#ifdef __cplusplus
extern "C" {
#endif

/* Helper constants for enums */
#define _lp2p_pb_AN2DialStatus_MIN lp2p_pb_AN2DialStatus_AN2_UNUSED
#define _lp2p_pb_AN2DialStatus_MAX lp2p_pb_AN2DialStatus_AN2_OK
#define _lp2p_pb_AN2DialStatus_ARRAYSIZE ((lp2p_pb_AN2DialStatus)(lp2p_pb_AN2DialStatus_AN2_OK+1))

#define _lp2p_pb_AN2DialResponse_ResponseStatus_MIN lp2p_pb_AN2DialResponse_ResponseStatus_E_INTERNAL_ERROR
#define _lp2p_pb_AN2DialResponse_ResponseStatus_MAX lp2p_pb_AN2DialResponse_ResponseStatus_OK
#define _lp2p_pb_AN2DialResponse_ResponseStatus_ARRAYSIZE ((lp2p_pb_AN2DialResponse_ResponseStatus)(lp2p_pb_AN2DialResponse_ResponseStatus_OK+1))

#define _lp2p_pb_AN2DialBackResponse_DialBackStatus_MIN lp2p_pb_AN2DialBackResponse_DialBackStatus_OK
#define _lp2p_pb_AN2DialBackResponse_DialBackStatus_MAX lp2p_pb_AN2DialBackResponse_DialBackStatus_OK
#define _lp2p_pb_AN2DialBackResponse_DialBackStatus_ARRAYSIZE ((lp2p_pb_AN2DialBackResponse_DialBackStatus)(lp2p_pb_AN2DialBackResponse_DialBackStatus_OK+1))

#define _lp2p_pb_AN1Message_MessageType_MIN lp2p_pb_AN1Message_MessageType_DIAL
#define _lp2p_pb_AN1Message_MessageType_MAX lp2p_pb_AN1Message_MessageType_DIAL_RESPONSE
#define _lp2p_pb_AN1Message_MessageType_ARRAYSIZE ((lp2p_pb_AN1Message_MessageType)(lp2p_pb_AN1Message_MessageType_DIAL_RESPONSE+1))

#define _lp2p_pb_AN1Message_ResponseStatus_MIN lp2p_pb_AN1Message_ResponseStatus_OK
#define _lp2p_pb_AN1Message_ResponseStatus_MAX lp2p_pb_AN1Message_ResponseStatus_E_INTERNAL_ERROR
#define _lp2p_pb_AN1Message_ResponseStatus_ARRAYSIZE ((lp2p_pb_AN1Message_ResponseStatus)(lp2p_pb_AN1Message_ResponseStatus_E_INTERNAL_ERROR+1))




#define lp2p_pb_AN2DialResponse_status_ENUMTYPE lp2p_pb_AN2DialResponse_ResponseStatus
#define lp2p_pb_AN2DialResponse_dialStatus_ENUMTYPE lp2p_pb_AN2DialStatus



#define lp2p_pb_AN2DialBackResponse_status_ENUMTYPE lp2p_pb_AN2DialBackResponse_DialBackStatus

#define lp2p_pb_AN1Message_type_ENUMTYPE lp2p_pb_AN1Message_MessageType



#define lp2p_pb_AN1Message_DialResponse_status_ENUMTYPE lp2p_pb_AN1Message_ResponseStatus


/* Initializer values for message structs */
#define lp2p_pb_AN2Message_init_default          {false, lp2p_pb_AN2DialRequest_init_default, false, lp2p_pb_AN2DialResponse_init_default, false, lp2p_pb_AN2DialDataRequest_init_default, false, lp2p_pb_AN2DialDataResponse_init_default}
#define lp2p_pb_AN2DialRequest_init_default      {{{NULL}, NULL}, false, 0}
#define lp2p_pb_AN2DialDataRequest_init_default  {false, 0, false, 0}
#define lp2p_pb_AN2DialResponse_init_default     {false, _lp2p_pb_AN2DialResponse_ResponseStatus_MIN, false, 0, false, _lp2p_pb_AN2DialStatus_MIN}
#define lp2p_pb_AN2DialDataResponse_init_default {{{NULL}, NULL}}
#define lp2p_pb_AN2DialBack_init_default         {false, 0}
#define lp2p_pb_AN2DialBackResponse_init_default {false, _lp2p_pb_AN2DialBackResponse_DialBackStatus_MIN}
#define lp2p_pb_AN1Message_init_default          {false, _lp2p_pb_AN1Message_MessageType_MIN, false, lp2p_pb_AN1Message_Dial_init_default, false, lp2p_pb_AN1Message_DialResponse_init_default}
#define lp2p_pb_AN1Message_PeerInfo_init_default {false, {0, {0}}, {{NULL}, NULL}}
#define lp2p_pb_AN1Message_Dial_init_default     {false, lp2p_pb_AN1Message_PeerInfo_init_default}
#define lp2p_pb_AN1Message_DialResponse_init_default {false, _lp2p_pb_AN1Message_ResponseStatus_MIN, false, "", false, {0, {0}}}
#define lp2p_pb_AN2Message_init_zero             {false, lp2p_pb_AN2DialRequest_init_zero, false, lp2p_pb_AN2DialResponse_init_zero, false, lp2p_pb_AN2DialDataRequest_init_zero, false, lp2p_pb_AN2DialDataResponse_init_zero}
#define lp2p_pb_AN2DialRequest_init_zero         {{{NULL}, NULL}, false, 0}
#define lp2p_pb_AN2DialDataRequest_init_zero     {false, 0, false, 0}
#define lp2p_pb_AN2DialResponse_init_zero        {false, _lp2p_pb_AN2DialResponse_ResponseStatus_MIN, false, 0, false, _lp2p_pb_AN2DialStatus_MIN}
#define lp2p_pb_AN2DialDataResponse_init_zero    {{{NULL}, NULL}}
#define lp2p_pb_AN2DialBack_init_zero            {false, 0}
#define lp2p_pb_AN2DialBackResponse_init_zero    {false, _lp2p_pb_AN2DialBackResponse_DialBackStatus_MIN}
#define lp2p_pb_AN1Message_init_zero             {false, _lp2p_pb_AN1Message_MessageType_MIN, false, lp2p_pb_AN1Message_Dial_init_zero, false, lp2p_pb_AN1Message_DialResponse_init_zero}
#define lp2p_pb_AN1Message_PeerInfo_init_zero    {false, {0, {0}}, {{NULL}, NULL}}
#define lp2p_pb_AN1Message_Dial_init_zero        {false, lp2p_pb_AN1Message_PeerInfo_init_zero}
#define lp2p_pb_AN1Message_DialResponse_init_zero {false, _lp2p_pb_AN1Message_ResponseStatus_MIN, false, "", false, {0, {0}}}

/* Field tags (for use in manual encoding/decoding) */
#define lp2p_pb_AN2DialRequest_addrs_tag         1
#define lp2p_pb_AN2DialRequest_nonce_tag         2
#define lp2p_pb_AN2DialDataRequest_addrIdx_tag   1
#define lp2p_pb_AN2DialDataRequest_numBytes_tag  2
#define lp2p_pb_AN2DialResponse_status_tag       1
#define lp2p_pb_AN2DialResponse_addrIdx_tag      2
#define lp2p_pb_AN2DialResponse_dialStatus_tag   3
#define lp2p_pb_AN2DialDataResponse_data_tag     1
#define lp2p_pb_AN2Message_dialRequest_tag       1
#define lp2p_pb_AN2Message_dialResponse_tag      2
#define lp2p_pb_AN2Message_dialDataRequest_tag   3
#define lp2p_pb_AN2Message_dialDataResponse_tag  4
#define lp2p_pb_AN2DialBack_nonce_tag            1
#define lp2p_pb_AN2DialBackResponse_status_tag   1
#define lp2p_pb_AN1Message_PeerInfo_id_tag       1
#define lp2p_pb_AN1Message_PeerInfo_addrs_tag    2
#define lp2p_pb_AN1Message_Dial_peer_tag         1
#define lp2p_pb_AN1Message_DialResponse_status_tag 1
#define lp2p_pb_AN1Message_DialResponse_statusText_tag 2
#define lp2p_pb_AN1Message_DialResponse_addr_tag 3
#define lp2p_pb_AN1Message_type_tag              1
#define lp2p_pb_AN1Message_dial_tag              2
#define lp2p_pb_AN1Message_dialResponse_tag      3

/* Struct field encoding specification for nanopb */
#define lp2p_pb_AN2Message_FIELDLIST(X, a) \
X(a, STATIC,   OPTIONAL, MESSAGE,  dialRequest,       1) \
X(a, STATIC,   OPTIONAL, MESSAGE,  dialResponse,      2) \
X(a, STATIC,   OPTIONAL, MESSAGE,  dialDataRequest,   3) \
X(a, STATIC,   OPTIONAL, MESSAGE,  dialDataResponse,   4)
#define lp2p_pb_AN2Message_CALLBACK NULL
#define lp2p_pb_AN2Message_DEFAULT NULL
#define lp2p_pb_AN2Message_dialRequest_MSGTYPE lp2p_pb_AN2DialRequest
#define lp2p_pb_AN2Message_dialResponse_MSGTYPE lp2p_pb_AN2DialResponse
#define lp2p_pb_AN2Message_dialDataRequest_MSGTYPE lp2p_pb_AN2DialDataRequest
#define lp2p_pb_AN2Message_dialDataResponse_MSGTYPE lp2p_pb_AN2DialDataResponse

#define lp2p_pb_AN2DialRequest_FIELDLIST(X, a) \
X(a, CALLBACK, REPEATED, BYTES,    addrs,             1) \
X(a, STATIC,   OPTIONAL, FIXED64,  nonce,             2)
#define lp2p_pb_AN2DialRequest_CALLBACK pb_default_field_callback
#define lp2p_pb_AN2DialRequest_DEFAULT NULL

#define lp2p_pb_AN2DialDataRequest_FIELDLIST(X, a) \
X(a, STATIC,   OPTIONAL, UINT32,   addrIdx,           1) \
X(a, STATIC,   OPTIONAL, UINT64,   numBytes,          2)
#define lp2p_pb_AN2DialDataRequest_CALLBACK NULL
#define lp2p_pb_AN2DialDataRequest_DEFAULT NULL

#define lp2p_pb_AN2DialResponse_FIELDLIST(X, a) \
X(a, STATIC,   OPTIONAL, UENUM,    status,            1) \
X(a, STATIC,   OPTIONAL, UINT32,   addrIdx,           2) \
X(a, STATIC,   OPTIONAL, UENUM,    dialStatus,        3)
#define lp2p_pb_AN2DialResponse_CALLBACK NULL
#define lp2p_pb_AN2DialResponse_DEFAULT NULL

#define lp2p_pb_AN2DialDataResponse_FIELDLIST(X, a) \
X(a, CALLBACK, OPTIONAL, BYTES,    data,              1)
#define lp2p_pb_AN2DialDataResponse_CALLBACK pb_default_field_callback
#define lp2p_pb_AN2DialDataResponse_DEFAULT NULL

#define lp2p_pb_AN2DialBack_FIELDLIST(X, a) \
X(a, STATIC,   OPTIONAL, FIXED64,  nonce,             1)
#define lp2p_pb_AN2DialBack_CALLBACK NULL
#define lp2p_pb_AN2DialBack_DEFAULT NULL

#define lp2p_pb_AN2DialBackResponse_FIELDLIST(X, a) \
X(a, STATIC,   OPTIONAL, UENUM,    status,            1)
#define lp2p_pb_AN2DialBackResponse_CALLBACK NULL
#define lp2p_pb_AN2DialBackResponse_DEFAULT NULL

#define lp2p_pb_AN1Message_FIELDLIST(X, a) \
X(a, STATIC,   OPTIONAL, UENUM,    type,              1) \
X(a, STATIC,   OPTIONAL, MESSAGE,  dial,              2) \
X(a, STATIC,   OPTIONAL, MESSAGE,  dialResponse,      3)
#define lp2p_pb_AN1Message_CALLBACK NULL
#define lp2p_pb_AN1Message_DEFAULT NULL
#define lp2p_pb_AN1Message_dial_MSGTYPE lp2p_pb_AN1Message_Dial
#define lp2p_pb_AN1Message_dialResponse_MSGTYPE lp2p_pb_AN1Message_DialResponse

#define lp2p_pb_AN1Message_PeerInfo_FIELDLIST(X, a) \
X(a, STATIC,   OPTIONAL, BYTES,    id,                1) \
X(a, CALLBACK, REPEATED, BYTES,    addrs,             2)
#define lp2p_pb_AN1Message_PeerInfo_CALLBACK pb_default_field_callback
#define lp2p_pb_AN1Message_PeerInfo_DEFAULT NULL

#define lp2p_pb_AN1Message_Dial_FIELDLIST(X, a) \
X(a, STATIC,   OPTIONAL, MESSAGE,  peer,              1)
#define lp2p_pb_AN1Message_Dial_CALLBACK NULL
#define lp2p_pb_AN1Message_Dial_DEFAULT NULL
#define lp2p_pb_AN1Message_Dial_peer_MSGTYPE lp2p_pb_AN1Message_PeerInfo

#define lp2p_pb_AN1Message_DialResponse_FIELDLIST(X, a) \
X(a, STATIC,   OPTIONAL, UENUM,    status,            1) \
X(a, STATIC,   OPTIONAL, STRING,   statusText,        2) \
X(a, STATIC,   OPTIONAL, BYTES,    addr,              3)
#define lp2p_pb_AN1Message_DialResponse_CALLBACK NULL
#define lp2p_pb_AN1Message_DialResponse_DEFAULT NULL

extern const pb_msgdesc_t lp2p_pb_AN2Message_msg;
extern const pb_msgdesc_t lp2p_pb_AN2DialRequest_msg;
extern const pb_msgdesc_t lp2p_pb_AN2DialDataRequest_msg;
extern const pb_msgdesc_t lp2p_pb_AN2DialResponse_msg;
extern const pb_msgdesc_t lp2p_pb_AN2DialDataResponse_msg;
extern const pb_msgdesc_t lp2p_pb_AN2DialBack_msg;
extern const pb_msgdesc_t lp2p_pb_AN2DialBackResponse_msg;
extern const pb_msgdesc_t lp2p_pb_AN1Message_msg;
extern const pb_msgdesc_t lp2p_pb_AN1Message_PeerInfo_msg;
extern const pb_msgdesc_t lp2p_pb_AN1Message_Dial_msg;
extern const pb_msgdesc_t lp2p_pb_AN1Message_DialResponse_msg;

/* Defines for backwards compatibility with code written before nanopb-0.4.0 */
#define lp2p_pb_AN2Message_fields &lp2p_pb_AN2Message_msg
#define lp2p_pb_AN2DialRequest_fields &lp2p_pb_AN2DialRequest_msg
#define lp2p_pb_AN2DialDataRequest_fields &lp2p_pb_AN2DialDataRequest_msg
#define lp2p_pb_AN2DialResponse_fields &lp2p_pb_AN2DialResponse_msg
#define lp2p_pb_AN2DialDataResponse_fields &lp2p_pb_AN2DialDataResponse_msg
#define lp2p_pb_AN2DialBack_fields &lp2p_pb_AN2DialBack_msg
#define lp2p_pb_AN2DialBackResponse_fields &lp2p_pb_AN2DialBackResponse_msg
#define lp2p_pb_AN1Message_fields &lp2p_pb_AN1Message_msg
#define lp2p_pb_AN1Message_PeerInfo_fields &lp2p_pb_AN1Message_PeerInfo_msg
#define lp2p_pb_AN1Message_Dial_fields &lp2p_pb_AN1Message_Dial_msg
#define lp2p_pb_AN1Message_DialResponse_fields &lp2p_pb_AN1Message_DialResponse_msg

/* Maximum encoded size of messages (where known) */
/* lp2p_pb_AN2Message_size depends on runtime parameters */
/* lp2p_pb_AN2DialRequest_size depends on runtime parameters */
/* lp2p_pb_AN2DialDataResponse_size depends on runtime parameters */
/* lp2p_pb_AN1Message_size depends on runtime parameters */
/* lp2p_pb_AN1Message_PeerInfo_size depends on runtime parameters */
/* lp2p_pb_AN1Message_Dial_size depends on runtime parameters */
#define lp2p_pb_AN1Message_DialResponse_size     536
#define lp2p_pb_AN2DialBackResponse_size         2
#define lp2p_pb_AN2DialBack_size                 9
#define lp2p_pb_AN2DialDataRequest_size          17
#define lp2p_pb_AN2DialResponse_size             12

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif
/*==================== end src/proto/autonat.pb.h ====================*/
/*==================== begin src/host.h ====================*/
/* host.h - L5/L6 internal declarations: the swarm (connections, dialing, listeners, peerstore)
 * and the host (protocol router, streams, events) that protocols (L7) build on.
 *
 * Spec: libp2p/specs connections/README.md (upgrade order, roles, events).
 * Depends on: every layer below (runtime, tcp, mss, noise, yamux, crypto, multiaddr). */
#ifndef LP2P__HOST_H
#define LP2P__HOST_H

// (amalgamated) #include "tcp.h"
// (amalgamated) #include "mss.h"
// (amalgamated) #include "noise.h"
// (amalgamated) #include "yamux.h"

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
    lp2p__peer_addr *addrs; /* n_addrs used of cap_addrs (<= LP2P__MAX_PEER_ADDRS), grown on demand */
    int n_addrs, cap_addrs;
    uint8_t *pubkey; /* serialized PublicKey, or NULL */
    size_t pubkey_len;
    char **protocols; /* from identify */
    int n_protocols;
    char *agent_version, *protocol_version;
    lp2p__ma observed; /* what the peer told us it sees us as (len 0 = none) */
    uint64_t record_seq; /* highest signed peer record seq seen */
    uint8_t *record;     /* that signed peer record (Envelope bytes, verified), or NULL: handed on in
                          * gossipsub PRUNE peer exchange */
    size_t record_len;
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
    bool limited;         /* relayed (circuit v2): only protocols allowed on limited connections */
    bool held;            /* a relay reservation rides on it (relay.c, either side): not closed as idle */
    int64_t idle_since;   /* no streams since (lp2p_now ms), 0 = busy; for idle_timeout_ms */
    int ephemeral_idle_ms; /* > 0: opened for one-off requests (DHT lookups): closed after this
                              long without streams, whatever idle_timeout_ms says; an app's
                              connect to the peer clears it */
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
    /* identify with the peer finished (pull) or it pushed an update; the peerstore has its
     * protocols and addresses. Runs in the identify task; must not block. May be NULL. */
    void (*identified)(void *user, lp2p__conn *c);
    /* AutoNAT changed its verdict (autonat.c; an lp2p_nat_status). Must not block. May be NULL. */
    void (*nat_changed)(void *user, int status);
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
typedef struct lp2p__perf lp2p__perf;         /* perf.c */
typedef struct lp2p__relay lp2p__relay;       /* relay.c */
typedef struct lp2p__dcutr lp2p__dcutr;       /* dcutr.c */
typedef struct lp2p__autonat lp2p__autonat;   /* autonat.c */
typedef struct lp2p__mdns lp2p__mdns;         /* mdns.c */

#define LP2P__MAX_EXTRA_ADDRS 8 /* advertised addresses beyond the listeners (relay circuits) */

/* A transport the swarm does not implement itself (relay.c: /p2p-circuit addresses). */
typedef struct lp2p__transport {
    bool (*can_dial)(const lp2p__ma *addr);
    /* Dial peer through addr; on success *out is a new connection with a reference. */
    int (*dial)(lp2p_host *h, const lp2p__ma *addr, const lp2p_peer_id *peer, lp2p__conn **out, int64_t deadline);
} lp2p__transport;

/* A protocol object hanging off the host (e.g. a DHT) that lp2p_host_free frees if the app did
 * not: free runs after every task of the host has ended. */
typedef struct lp2p__service {
    void (*free)(void *self);
    void *self;
    struct lp2p__service *next;
} lp2p__service;

struct lp2p_host {
    lp2p__ctx ctx;
    lp2p__cache cache; /* ctx.cache: big connection buffers between uses */
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
    bool ev_read; /* the app has called lp2p_host_next_event: it wants the events */
    lp2p__event_slot ev_out;  /* the slot handed out by next_event (strings live until next call) */
    lp2p__identify *identify;
    lp2p__service *services;
    lp2p__perf *perf;         /* NULL until perf is served or run */
    lp2p__buf info_text; /* lp2p_host_peer_info's strings */
    bool freeing;
    /* NAT traversal hooks */
    const lp2p__transport *circuit; /* relay.c's transport, or NULL */
    lp2p__ma extra_addrs[LP2P__MAX_EXTRA_ADDRS]; /* advertised too (with /p2p/<relay>/p2p-circuit) */
    int n_extra_addrs;
    char **limited_ok; /* protocols allowed on limited connections */
    int n_limited_ok;
    lp2p__waitq conn_wait; /* woken whenever a connection is set up */
    /* dcutr.c: an inbound TCP connection from remote is part of a hole punch in which we are
     * the client (Noise initiator): returns true and the expected peer. NULL: none. */
    bool (*punch_client)(lp2p_host *h, const lp2p__ma *remote, lp2p_peer_id *peer);
    lp2p__relay *relay;
    lp2p__dcutr *dcutr;
    lp2p__autonat *autonat;
    lp2p__mdns *mdns;
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
/* Upgrade a raw pipe (TCP, relayed stream) into a connection: initiator = the Noise initiator,
 * multistream dialer and yamux client (for TCP the dialer; DCUtR assigns it on simultaneous
 * open). expected: the peer we want (NULL = any). limited: a relayed connection. raw is always
 * consumed. The new connection is in the host's table (no reference for the caller unless
 * out_ref: then *out_ref gets one). */
LP2P__PRIV int lp2p__swarm_upgrade(lp2p_host *h, lp2p__pipe *raw, bool initiator, const lp2p_peer_id *expected,
                                   const lp2p__ma *local, const lp2p__ma *remote, bool limited, lp2p__conn **out_ref,
                                   int64_t deadline);
/* Port of our first TCP listener of the address family of addr (for dials that reuse it), 0 if none. */
LP2P__PRIV int lp2p__swarm_listen_port(lp2p_host *h, const lp2p__ma *addr);
/* Does the address contain /p2p-circuit? */
LP2P__PRIV bool lp2p__ma_is_circuit(const lp2p__ma *ma);
LP2P__PRIV void lp2p__swarm_remove_notifee(lp2p_host *h, lp2p__notifee *n);

/* ---- peerstore (swarm.c) ---- */
LP2P__PRIV lp2p__peer *lp2p__peerstore_get(lp2p_host *h, const lp2p_peer_id *id, bool create);
LP2P__PRIV void lp2p__peerstore_add_addr(lp2p_host *h, const lp2p_peer_id *id, const lp2p__ma *ma, int64_t ttl_ms);
LP2P__PRIV void lp2p__peerstore_set_protocols(lp2p_host *h, lp2p__peer *p, char **protos, int n); /* takes ownership */
/* Keep a copy of a verified signed peer record (Envelope bytes) for p; replaces the older one. */
LP2P__PRIV void lp2p__peerstore_set_record(lp2p_host *h, lp2p__peer *p, const uint8_t *env, size_t len);
LP2P__PRIV void lp2p__peerstore_free(lp2p_host *h);
/* Drop peers without a connection whose addresses all expired. */
LP2P__PRIV void lp2p__peerstore_gc(lp2p_host *h, int64_t now);

/* ---- host (host.c) ---- */
LP2P__PRIV void lp2p__host_emit(lp2p_host *h, lp2p_event_type type, const lp2p_peer_id *peer, const char *addr,
                                const char *protocol, lp2p_stream *stream, int err);
/* A new inbound yamux stream on c: negotiate the protocol and dispatch (runs as a task). */
LP2P__PRIV void lp2p__host_on_stream(lp2p__conn *c, lp2p__pipe *stream);
/* Open a stream with protocol on an existing connection. */
LP2P__PRIV int lp2p__host_open_on(lp2p__conn *c, const char *protocol, int64_t deadline, lp2p_stream **out);
/* Same, proposing protocols[0..n) in order; returns the index of the one the peer accepted. */
LP2P__PRIV int lp2p__host_open_on_any(lp2p__conn *c, const char *const *protocols, int n, int64_t deadline,
                                      lp2p_stream **out);
/* The protocols we handle (for identify and "ls"); returns count, fills up to max. */
LP2P__PRIV int lp2p__host_protocols(lp2p_host *h, const char **out, int max);
/* Register / unregister a service (see lp2p__service). */
LP2P__PRIV void lp2p__host_add_service(lp2p_host *h, lp2p__service *s);
LP2P__PRIV void lp2p__host_remove_service(lp2p_host *h, lp2p__service *s);
/* Refresh h->addr_text after listeners or extra addresses change (and push identify). */
LP2P__PRIV void lp2p__host_addrs_changed(lp2p_host *h);
/* The addresses we advertise (listeners, then extra_addrs), without /p2p/<us>. Returns the count. */
LP2P__PRIV int lp2p__host_advertised_addrs(lp2p_host *h, lp2p__ma *out, int max);
/* May protocol run on a limited (relayed) connection? */
LP2P__PRIV bool lp2p__host_limited_ok(lp2p_host *h, const char *protocol);

/* ---- built-in protocols ---- */
LP2P__PRIV int lp2p__identify_init(lp2p_host *h);
LP2P__PRIV void lp2p__identify_free(lp2p_host *h);
/* Push our identify to every connection (addresses or protocols changed). */
LP2P__PRIV void lp2p__identify_push_all(lp2p_host *h);
LP2P__PRIV int lp2p__ping_init(lp2p_host *h);
LP2P__PRIV void lp2p__perf_free(lp2p_host *h); /* after the scheduler is gone */
LP2P__PRIV int lp2p__relay_init(lp2p_host *h);  /* stop handler, circuit transport */
LP2P__PRIV void lp2p__relay_free(lp2p_host *h); /* after the scheduler is gone */
LP2P__PRIV int lp2p__dcutr_init(lp2p_host *h);
LP2P__PRIV void lp2p__dcutr_free(lp2p_host *h);
LP2P__PRIV int lp2p__autonat_init(lp2p_host *h); /* client: dial-back handler, automatic probes */
LP2P__PRIV void lp2p__autonat_free(lp2p_host *h);
/* relay.c: do we hold (or try to hold) a reservation? (autonat.c reserves when private) */
LP2P__PRIV bool lp2p__relay_has_reservation(lp2p_host *h);

#endif
/*==================== end src/host.h ====================*/
/*==================== begin src/kad.h ====================*/
/* kad.h - L7 internal declarations of the Kademlia DHT: keyspace and routing table (kad_rt.c),
 * wire messages (kad_msg.c), record and provider stores with validators (kad_store.c), and the
 * protocol, lookups and public API (kad.c).
 *
 * Spec: libp2p/specs kad-dht/README.md; ipfs/specs src/routing/kad-dht.md (Amino rules).
 * Depends on: host.h, proto/kad.pb.h. */
#ifndef LP2P__KAD_H
#define LP2P__KAD_H

// (amalgamated) #include "host.h"
// (amalgamated) #include "proto/kad.pb.h"

#define LP2P__KAD_PROTO "/ipfs/kad/1.0.0"
#define LP2P__KAD_KEY_MAX 256       /* longest key we look up or store, bytes */
#define LP2P__KAD_PROVIDER_KEY_MAX 80 /* ipfs/specs kad-dht: provider keys are multihashes <= 80 B */
#define LP2P__KAD_MAX_ALPHA 32
#define LP2P__KAD_MSG_PEERS 64      /* peers per list we decode from one message (more are skipped) */
#define LP2P__KAD_PEER_ADDRS 8      /* addresses per peer we decode / send */
#define LP2P__KAD_STREAM_IDLE_MS 60000 /* an inbound stream waiting for its next request (go: 1 min) */
#define LP2P__KAD_QUERY_ADDR_TTL_MS (10 * 60 * 1000) /* addresses learned from closerPeers */
#define LP2P__KAD_PROVIDER_ADDR_TTL_MS (24 * 60 * 60 * 1000) /* go: provider addresses 24 h */
#define LP2P__KAD_RT_ADDR_TTL_MS (60 * 60 * 1000) /* addresses of table peers, renewed when they answer */
#define LP2P__KAD_MAX_LOOKUP_PEERS 256 /* candidates one lookup tracks */
#define LP2P__KAD_REFRESH_MAX_CPL 15   /* go: buckets refreshed by random lookups up to cpl 15 */

/* ---- wire messages (kad_msg.c) ------------------------------------------------------------ */
typedef struct lp2p__kad_slice {
    const uint8_t *p;
    size_t len;
} lp2p__kad_slice;

/* A peer as it appears in closerPeers / providerPeers; slices point into the message bytes. */
typedef struct lp2p__kad_wpeer {
    lp2p__kad_slice id;
    lp2p__kad_slice addrs[LP2P__KAD_PEER_ADDRS];
    int n_addrs;
    int connection;
} lp2p__kad_wpeer;

typedef struct lp2p__kad_msg {
    int type; /* lp2p_pb_KadMessage_MessageType; missing = PUT_VALUE (proto3) */
    int cluster_level;
    lp2p__kad_slice key;
    bool has_record;
    lp2p__kad_slice rec_key, rec_value, rec_time;
    lp2p__kad_wpeer closer[LP2P__KAD_MSG_PEERS];
    int n_closer;
    lp2p__kad_wpeer providers[LP2P__KAD_MSG_PEERS];
    int n_providers;
    int skipped; /* peers or addresses beyond our caps */
    const uint8_t *buf; /* the message the slices point into */
    size_t buf_len;
} lp2p__kad_msg;

/* Decode one message (the bytes must outlive m). LP2P_OK or ERR_PROTOCOL (malformed, unknown
 * type). */
LP2P__PRIV int lp2p__kad_msg_decode(const uint8_t *buf, size_t len, lp2p__kad_msg *m);

typedef struct lp2p__kad lp2p__kad_t; /* = struct lp2p_kad */

/* What to encode: peers are looked up in the peerstore for their addresses (our own ID gets
 * our listen addresses). */
typedef struct lp2p__kad_out {
    int type;
    const uint8_t *key;
    size_t key_len;
    bool has_record;
    const uint8_t *rec_key, *rec_value, *rec_time;
    size_t rec_key_len, rec_value_len, rec_time_len;
    const lp2p_peer_id *closer;
    int n_closer;
    const lp2p_peer_id *providers;
    int n_providers;
    lp2p_host *h;
} lp2p__kad_out;
/* Encode into b (appended). LP2P_OK, ERR_NOMEM, ERR_MSGSIZE. */
LP2P__PRIV int lp2p__kad_msg_encode(lp2p__ctx *ctx, const lp2p__kad_out *o, lp2p__buf *b);

/* ---- keyspace and routing table (kad_rt.c) -------------------------------------------------- */
typedef struct lp2p__kad_entry {
    lp2p_peer_id id;
    uint8_t hash[32];
    int64_t added, seen;
    uint8_t group[5]; /* IP group: family byte + /16 (IPv4) or /32 (IPv6); [0] = 0: exempt */
} lp2p__kad_entry;

typedef struct lp2p__kad_bucket {
    lp2p__kad_entry *e; /* k slots, allocated on first use; e[0] is the least recently seen */
    int n;
    int64_t last_lookup; /* last lookup of a key in this bucket's range (refresh skips fresh ones) */
    bool probing;        /* a liveness check of e[0] runs */
} lp2p__kad_bucket;

typedef struct lp2p__kad_rt {
    lp2p__ctx *ctx;
    uint8_t self[32];
    int k, max_group, max_group_bucket;
    lp2p__kad_bucket b[256];
    int size;
} lp2p__kad_rt;

typedef enum {
    LP2P__RT_ADDED,
    LP2P__RT_UPDATED,  /* already there: marked as seen */
    LP2P__RT_FULL,     /* bucket full: *evict names its least recently seen peer */
    LP2P__RT_REJECTED, /* self, or the IP group cap */
    LP2P__RT_NOMEM
} lp2p__rt_result;

LP2P__PRIV void lp2p__kad_hash(const uint8_t *key, size_t len, uint8_t out[32]);
LP2P__PRIV int lp2p__kad_cpl(const uint8_t a[32], const uint8_t b[32]);
/* < 0 if a is closer to target than b, 0 if equal, > 0 if farther. */
LP2P__PRIV int lp2p__kad_cmp(const uint8_t target[32], const uint8_t a[32], const uint8_t b[32]);
/* IP group of a multiaddr (see lp2p__kad_entry.group); returns false when exempt/unknown. */
LP2P__PRIV bool lp2p__kad_ip_group(const lp2p__ma *ma, uint8_t group[5]);

LP2P__PRIV void lp2p__rt_init(lp2p__kad_rt *rt, lp2p__ctx *ctx, const lp2p_peer_id *self, int k, int max_group,
                              int max_group_bucket);
LP2P__PRIV void lp2p__rt_free(lp2p__kad_rt *rt);
LP2P__PRIV lp2p__kad_entry *lp2p__rt_find(lp2p__kad_rt *rt, const lp2p_peer_id *id);
LP2P__PRIV lp2p__rt_result lp2p__rt_add(lp2p__kad_rt *rt, const lp2p_peer_id *id, const uint8_t group[5], int64_t now,
                                        lp2p_peer_id *evict);
LP2P__PRIV bool lp2p__rt_remove(lp2p__kad_rt *rt, const lp2p_peer_id *id);
/* The up to max peers closest to target, closest first; exclude (may be NULL) is skipped. */
LP2P__PRIV int lp2p__rt_closest(lp2p__kad_rt *rt, const uint8_t target[32], const lp2p_peer_id *exclude,
                                lp2p_peer_id *out, int max);
LP2P__PRIV int lp2p__rt_bucket_of(lp2p__kad_rt *rt, const uint8_t hash[32]);
/* A random key (peer-ID-like bytes, 34 bytes) whose hash has common prefix length cpl with
 * ours (found by trying: ~2^(cpl+1) hashes, so callers keep cpl <= 15). */
LP2P__PRIV size_t lp2p__rt_random_key(lp2p__kad_rt *rt, int cpl, uint8_t *key);

/* ---- stores and validators (kad_store.c) ------------------------------------------------------ */
typedef struct lp2p__kad_prov {
    lp2p_peer_id id;
    int64_t expires;
} lp2p__kad_prov;

typedef struct lp2p__kad_pkey {
    struct lp2p__kad_pkey *next;
    uint8_t key[LP2P__KAD_PROVIDER_KEY_MAX];
    uint8_t key_len;
    lp2p__kad_prov *p;
    int n, cap;
} lp2p__kad_pkey;

typedef struct lp2p__kad_rec {
    struct lp2p__kad_rec *next;
    uint8_t *key, *value;
    size_t key_len, value_len;
    char time[40]; /* RFC 3339 time received */
    int64_t expires;
} lp2p__kad_rec;

typedef struct lp2p__kad_ns {
    struct lp2p__kad_ns *next;
    char *ns;
    lp2p_kad_validator v;
} lp2p__kad_ns;

#define LP2P__KAD_STORE_BUCKETS 1024
typedef struct lp2p__kad_store {
    lp2p__ctx *ctx;
    lp2p__kad_pkey *prov[LP2P__KAD_STORE_BUCKETS];
    int n_prov, max_prov, max_per_key;
    lp2p__kad_rec *rec[LP2P__KAD_STORE_BUCKETS];
    int n_rec, max_rec;
    lp2p__kad_ns *ns;
} lp2p__kad_store;

LP2P__PRIV void lp2p__store_free(lp2p__kad_store *st);
/* Add or refresh provider id of key until expires. ERR_LIMIT (store full), ERR_NOMEM. */
LP2P__PRIV int lp2p__store_add_provider(lp2p__kad_store *st, const uint8_t *key, size_t len, const lp2p_peer_id *id,
                                        int64_t expires);
/* Up to max unexpired providers of key. */
LP2P__PRIV int lp2p__store_get_providers(lp2p__kad_store *st, const uint8_t *key, size_t len, int64_t now,
                                         lp2p_peer_id *out, int max);
LP2P__PRIV lp2p__kad_rec *lp2p__store_get_record(lp2p__kad_store *st, const uint8_t *key, size_t len, int64_t now);
/* Store (replace) a record. ERR_LIMIT, ERR_NOMEM. */
LP2P__PRIV int lp2p__store_put_record(lp2p__kad_store *st, const uint8_t *key, size_t key_len, const uint8_t *value,
                                      size_t value_len, int64_t expires);
/* Drop everything expired. */
LP2P__PRIV void lp2p__store_expire(lp2p__kad_store *st, int64_t now);
LP2P__PRIV int lp2p__store_set_validator(lp2p__kad_store *st, const char *ns, const lp2p_kad_validator *v);
/* Validate a record by its key's namespace: LP2P_OK, ERR_INVALID (no validator / refused). */
LP2P__PRIV int lp2p__store_validate(lp2p__kad_store *st, const uint8_t *key, size_t key_len, const uint8_t *value,
                                    size_t value_len);
/* Index (0 or 1) of the better of two valid values. */
LP2P__PRIV int lp2p__store_select(lp2p__kad_store *st, const uint8_t *key, size_t key_len, const uint8_t *a,
                                  size_t a_len, const uint8_t *b, size_t b_len);
/* The built-in /pk/ validator. */
LP2P__PRIV int lp2p__kad_pk_validate(void *user, const uint8_t *key, size_t key_len, const uint8_t *value,
                                     size_t value_len);

#endif
/*==================== end src/kad.h ====================*/
/*==================== begin src/pubsub.h ====================*/
/* pubsub.h - L7 internal declarations shared by the pubsub files: pubsub_rpc.c (RPC codec,
 * digest sets), pubsub.c (peers and their streams, messages, signing, validation,
 * subscriptions, floodsub forwarding, the public API), gossipsub.c (mesh, fanout, gossip,
 * message cache, control messages, heartbeat, peer exchange) and pubsub_score.c (gossipsub
 * v1.1 peer scoring).
 *
 * Spec: libp2p/specs pubsub/README.md, pubsub/gossipsub/gossipsub-v1.0.md, -v1.1.md, -v1.2.md.
 * Depends on: host.h (streams, connections, notifications, peerstore), proto/pubsub.pb.h. */
#ifndef LP2P__PUBSUB_H
#define LP2P__PUBSUB_H

// (amalgamated) #include "host.h"
// (amalgamated) #include "proto/pubsub.pb.h"

#define LP2P__PS_FLOODSUB "/floodsub/1.0.0"
#define LP2P__PS_MESHSUB10 "/meshsub/1.0.0"
#define LP2P__PS_MESHSUB11 "/meshsub/1.1.0"
#define LP2P__PS_MESHSUB12 "/meshsub/1.2.0"

/* What a peer's outbound stream negotiated (ordered: later versions add features). */
enum { LP2P__PS_PROTO_NONE = 0, LP2P__PS_PROTO_FLOOD, LP2P__PS_PROTO_MESH10, LP2P__PS_PROTO_MESH11, LP2P__PS_PROTO_MESH12 };

/* Caps on what one RPC may carry (beyond them the rest is ignored and counted). go has none but
 * the size limit; these bound our work per RPC without refusing anything a real peer sends. */
#define LP2P__PS_MAX_SUBS_PER_RPC 5000
#define LP2P__PS_MAX_MSGS_PER_RPC 5000
#define LP2P__PS_MAX_CTL_PER_RPC 5000 /* IHAVE/IWANT/GRAFT/PRUNE/IDONTWANT entries together */
#define LP2P__PS_MAX_IDS_PER_RPC 20000 /* message IDs in IHAVE + IWANT + IDONTWANT together */
#define LP2P__PS_MAX_PX_PER_RPC 64     /* PeerInfo entries in all PRUNEs of one RPC */
#define LP2P__PS_MERGE_MAX (60 << 10)  /* RPCs queued for a peer merge up to this (rust reads <= 64 KiB) */
#define LP2P__PS_DIGEST 16             /* bytes of our salted digest of a message ID */

typedef struct lp2p__ps_slice {
    const uint8_t *p;
    size_t n;
} lp2p__ps_slice;

/* ---- a decoded RPC: slices into the received buffer (valid while it is) ---------------------- */
typedef struct lp2p__ps_rpc_sub {
    lp2p__ps_slice topic;
    bool subscribe;
} lp2p__ps_rpc_sub;

typedef struct lp2p__ps_rpc_msg {
    lp2p__ps_slice raw; /* the encoded Message (what we forward unchanged) */
    lp2p__ps_slice from, data, seqno, topic, signature, key;
    bool has_from, has_data, has_seqno, has_signature, has_key, has_topic;
} lp2p__ps_rpc_msg;

enum { LP2P__PS_CTL_IHAVE = 1, LP2P__PS_CTL_IWANT, LP2P__PS_CTL_GRAFT, LP2P__PS_CTL_PRUNE, LP2P__PS_CTL_IDONTWANT };
typedef struct lp2p__ps_rpc_ctl {
    int kind;
    lp2p__ps_slice topic; /* IHAVE, GRAFT, PRUNE */
    int first_id, n_ids;  /* IHAVE, IWANT, IDONTWANT: range in rpc->ids */
    int first_px, n_px;   /* PRUNE: range in rpc->px */
    uint64_t backoff;     /* PRUNE: seconds (0 = none given) */
    bool has_backoff;
} lp2p__ps_rpc_ctl;

typedef struct lp2p__ps_rpc_px {
    lp2p__ps_slice peer_id, record;
} lp2p__ps_rpc_px;

typedef struct lp2p__ps_rpc {
    lp2p__ps_rpc_sub *subs;
    int n_subs, cap_subs;
    lp2p__ps_rpc_msg *msgs;
    int n_msgs, cap_msgs;
    lp2p__ps_rpc_ctl *ctl;
    int n_ctl, cap_ctl;
    lp2p__ps_slice *ids;
    int n_ids, cap_ids;
    lp2p__ps_rpc_px *px;
    int n_px, cap_px;
    int truncated; /* entries beyond the caps (ignored) */
    lp2p__ctx *ctx;
    const char *error; /* why decoding failed */
} lp2p__ps_rpc;

/* Decode one RPC (peer input). OK, ERR_PROTOCOL (malformed), ERR_NOMEM. Free with _rpc_clear. */
LP2P__PRIV int lp2p__ps_rpc_decode(lp2p__ps_rpc *r, lp2p__ctx *ctx, const uint8_t *buf, size_t len);
/* Slices of one encoded Message (ours, after building it). OK or ERR_PROTOCOL. */
LP2P__PRIV int lp2p__ps_msg_parse(const uint8_t *raw, size_t len, lp2p__ps_rpc_msg *out);
LP2P__PRIV void lp2p__ps_rpc_clear(lp2p__ps_rpc *r);

/* ---- protobuf writing (RPCs we send are built by hand: pieces are concatenated) -------------- */
LP2P__PRIV int lp2p__pb_put_tag(lp2p__ctx *ctx, lp2p__buf *b, uint32_t field, int wire);
LP2P__PRIV int lp2p__pb_put_bytes(lp2p__ctx *ctx, lp2p__buf *b, uint32_t field, const void *p, size_t n);
LP2P__PRIV int lp2p__pb_put_varint(lp2p__ctx *ctx, lp2p__buf *b, uint32_t field, uint64_t v);

/* ---- sets of message-ID digests with an expiry (seen cache, IDONTWANT, promises) -------------- */
typedef struct lp2p__ps_idset_entry {
    uint8_t d[LP2P__PS_DIGEST];
    int64_t expires;  /* lp2p_now() ms, or a heartbeat count */
    int64_t aux;      /* user value (validated-at time, ...) */
    uint32_t aux2;
    uint8_t state;    /* 0 empty, 1 used, 2 deleted */
    uint8_t status;   /* user value */
} lp2p__ps_idset_entry;

typedef struct lp2p__ps_idset {
    lp2p__ps_idset_entry *slots;
    size_t cap, used, live; /* cap a power of two; used counts tombstones too */
    uint32_t *fifo;         /* insertion order (slot indexes) for expiry */
    size_t fifo_head, fifo_len, fifo_cap;
    size_t max;             /* entries kept at most (oldest dropped first) */
} lp2p__ps_idset;

LP2P__PRIV lp2p__ps_idset_entry *lp2p__ps_idset_find(lp2p__ps_idset *s, const uint8_t d[LP2P__PS_DIGEST]);
/* Insert (or find); NULL on memory shortage. *fresh tells which. */
LP2P__PRIV lp2p__ps_idset_entry *lp2p__ps_idset_add(lp2p__ctx *ctx, lp2p__ps_idset *s, const uint8_t d[LP2P__PS_DIGEST],
                                                    int64_t expires, bool *fresh);
LP2P__PRIV void lp2p__ps_idset_del(lp2p__ps_idset *s, const uint8_t d[LP2P__PS_DIGEST]);
/* Drop entries whose expires < now (in insertion order: expiries must be monotonic). */
LP2P__PRIV void lp2p__ps_idset_expire(lp2p__ps_idset *s, int64_t now);
LP2P__PRIV void lp2p__ps_idset_free(lp2p__ctx *ctx, lp2p__ps_idset *s);

/* ---- messages ----------------------------------------------------------------------------------- */
typedef struct lp2p__ps_topic lp2p__ps_topic;
typedef struct lp2p__ps_peer lp2p__ps_peer;
typedef struct lp2p__ps_pstats lp2p__ps_pstats;

/* A message we accepted (or built), shared by the mcache and subscription queues. */
typedef struct lp2p__ps_msg {
    int refs;
    lp2p__ctx *ctx;
    size_t alloc;          /* bytes of this block */
    size_t raw_len;        /* the encoded Message, at raw */
    uint8_t *raw;
    lp2p__ps_slice data;   /* into raw */
    char *topic;           /* NUL-terminated copy */
    size_t topic_len;
    lp2p_peer_id from, received_from;
    uint64_t seqno;
    bool has_seqno;
    uint8_t *id;
    size_t id_len;
    uint8_t digest[LP2P__PS_DIGEST];
    /* mcache: IWANT retransmissions per peer (bounded list) */
    struct {
        lp2p__ps_peer *peer;
        int count;
    } tx[16];
    int n_tx;
} lp2p__ps_msg;

LP2P__PRIV void lp2p__ps_msg_unref(lp2p__ps_msg *m);

/* ---- topics, peers, subscriptions ------------------------------------------------------------------ */
typedef struct lp2p__ps_backoff {
    lp2p_peer_id peer;
    int64_t until;
} lp2p__ps_backoff;

struct lp2p_subscription {
    lp2p_pubsub *ps;
    lp2p__ps_topic *t;
    lp2p__ps_msg **q; /* ring of queued messages */
    int q_head, q_len, q_cap;
    lp2p__ps_msg *current; /* handed out by next(), released on the next call */
    uint64_t dropped;
    lp2p__waitq wait;
    struct lp2p_subscription *next; /* in the topic */
};

struct lp2p__ps_topic {
    char *name;
    size_t name_len;
    lp2p_subscription *subs;
    bool joined;                /* we are subscribed: the mesh exists */
    lp2p__ps_peer **mesh;
    int n_mesh, cap_mesh;
    lp2p__ps_peer **fanout;
    int n_fanout, cap_fanout;
    int64_t fanout_last_pub;    /* 0: no fanout */
    int n_peers;                /* peers subscribed */
    lp2p__ps_backoff *backoff;
    int n_backoff, cap_backoff;
    lp2p_pubsub_validator_fn validator;
    void *validator_user;
    lp2p_pubsub_topic_score_params *score; /* own params, or NULL (defaults) */
    uint32_t hash;
    struct lp2p__ps_topic *next;
};

/* A frame of our outbound queue: one RPC body (no length prefix), merged RPCs included. */
typedef struct lp2p__ps_frame {
    struct lp2p__ps_frame *next;
    lp2p__buf b;
    bool has_control;
} lp2p__ps_frame;

struct lp2p__ps_peer {
    lp2p_pubsub *ps;
    lp2p_peer_id id;
    int refs;               /* table + writer task + reader task */
    bool gone;              /* left the table (disconnected) */
    int proto;              /* LP2P__PS_PROTO_*: what our outbound stream negotiated */
    bool outbound;          /* we dialed the connection our stream runs on (gossipsub D_out) */
    bool direct;            /* an explicit peer */
    bool opening;           /* the writer task is opening the stream */
    int open_failures;
    lp2p__conn *conn;       /* the connection of our stream (no reference: compared only) */
    lp2p_task writer, reader;
    lp2p_stream *out;
    lp2p__waitq wake;       /* the writer waits here */
    lp2p__ps_frame *q_head, *q_tail;
    size_t q_bytes;
    lp2p__ps_topic **topics;
    int n_topics, cap_topics;
    /* per heartbeat (gossipsub spam protection) */
    int ihave_in, iasked, idontwant_in, iwant_served;
    lp2p__ps_idset dontwant; /* message digests the peer said it does not want (expires = heartbeat) */
    lp2p__ps_pstats *st;     /* its score record */
    char ip[48];             /* remote IP (P6), "" unknown */
    struct lp2p__ps_peer *next;
};

/* ---- the router ---------------------------------------------------------------------------------- */
typedef struct lp2p__ps_mcache {
    lp2p__ps_msg ***win; /* history_length windows, each a growable array */
    int *n, *cap;
    int len;             /* windows */
    lp2p__ps_idset index; /* digest -> msg (aux holds the pointer) */
} lp2p__ps_mcache;

typedef struct lp2p__ps_promise {
    uint8_t d[LP2P__PS_DIGEST];
    lp2p_peer_id peer;
    int64_t expires;
} lp2p__ps_promise;

struct lp2p_pubsub {
    lp2p_host *h;
    lp2p__ctx *ctx;
    lp2p_pubsub_config cfg;   /* resolved */
    lp2p_pubsub_score_params sp;
    lp2p_pubsub_score_thresholds th;
    lp2p__notifee notifee;
    lp2p__service service;    /* lp2p_host_free frees us if the app did not */
    lp2p__ps_peer *peers;
    int n_peers;
    lp2p__ps_topic *topics;
    int n_topics;
    lp2p__ps_idset seen;      /* status: LP2P__PS_SEEN_* ; aux: validated-at ms */
    lp2p__ps_mcache mcache;
    lp2p__ps_promise *promises;
    int n_promises, cap_promises;
    lp2p__ps_pstats *pstats;  /* score records (connected and retained peers) */
    uint8_t salt[16];         /* digest salt: peers cannot aim IDs at one hash bucket */
    uint64_t seqno;
    uint64_t rng;             /* xorshift state for shuffles (seeded from the CSPRNG) */
    uint64_t heartbeats;
    int64_t last_decay;
    lp2p_task heartbeat_task, direct_task;
    lp2p__waitq tasks_done;   /* pubsub_free waits here for peer tasks */
    int n_tasks;              /* peer tasks running (writers, readers, connectors) */
    struct lp2p__ps_dial *dials; /* connections being made for peer exchange / direct peers */
    int n_dials;
    lp2p__ma *direct;         /* direct peers (with /p2p/) */
    int n_direct;
    lp2p_pubsub_stats stats;
    bool closing;
    bool sched_gone;          /* freed by lp2p_host_free after its scheduler */
    const char *protos[4];
    int n_protos;
};

enum { LP2P__PS_SEEN_VALID = 1, LP2P__PS_SEEN_INVALID = 2 };

/* ---- pubsub.c, used by the others ---------------------------------------------------------------- */
LP2P__PRIV lp2p__ps_topic *lp2p__ps_topic_get(lp2p_pubsub *ps, const uint8_t *name, size_t len, bool create);
LP2P__PRIV void lp2p__ps_topic_maybe_free(lp2p_pubsub *ps, lp2p__ps_topic *t);
LP2P__PRIV bool lp2p__ps_peer_in_topic(const lp2p__ps_peer *p, const lp2p__ps_topic *t);
LP2P__PRIV lp2p__ps_peer *lp2p__ps_peer_find(lp2p_pubsub *ps, const lp2p_peer_id *id);
LP2P__PRIV bool lp2p__ps_peer_active(const lp2p__ps_peer *p); /* stream open, not gone */
/* Queue an RPC body for p (merged with the queue's tail when possible). urgent: ahead of the
 * queue (IDONTWANT). has_control: the body has a control field (never merged with another). */
LP2P__PRIV int lp2p__ps_send(lp2p__ps_peer *p, const uint8_t *rpc, size_t len, bool has_control, bool urgent);
/* Send an encoded Message to p as RPC{publish}. */
LP2P__PRIV int lp2p__ps_send_msg(lp2p__ps_peer *p, const lp2p__ps_msg *m);
LP2P__PRIV void lp2p__ps_digest(const lp2p_pubsub *ps, const uint8_t *id, size_t len, uint8_t d[LP2P__PS_DIGEST]);
LP2P__PRIV void lp2p__ps_connect_async(lp2p_pubsub *ps, const lp2p_peer_id *peer);
LP2P__PRIV bool lp2p__ps_topic_valid(const uint8_t *p, size_t n);

/* ---- gossipsub.c ---------------------------------------------------------------------------------- */
LP2P__PRIV int lp2p__gs_init(lp2p_pubsub *ps);
LP2P__PRIV void lp2p__gs_free(lp2p_pubsub *ps);
LP2P__PRIV void lp2p__gs_peer_added(lp2p_pubsub *ps, lp2p__ps_peer *p);
LP2P__PRIV void lp2p__gs_peer_removed(lp2p_pubsub *ps, lp2p__ps_peer *p);
LP2P__PRIV void lp2p__gs_join(lp2p_pubsub *ps, lp2p__ps_topic *t);
LP2P__PRIV void lp2p__gs_leave(lp2p_pubsub *ps, lp2p__ps_topic *t);
LP2P__PRIV void lp2p__gs_peer_unsubscribed(lp2p_pubsub *ps, lp2p__ps_peer *p, lp2p__ps_topic *t);
/* Control part of an RPC from p. */
LP2P__PRIV void lp2p__gs_handle_control(lp2p_pubsub *ps, lp2p__ps_peer *p, const lp2p__ps_rpc *r);
/* Before validating a new message from p: IDONTWANT to mesh peers (v1.2). */
LP2P__PRIV void lp2p__gs_preprocess(lp2p_pubsub *ps, lp2p__ps_peer *from, lp2p__ps_topic *t, const uint8_t *id,
                                    size_t id_len, size_t data_len);
/* Forward an accepted message (ours: from == NULL) to the right peers; returns how many. */
LP2P__PRIV int lp2p__gs_forward(lp2p_pubsub *ps, lp2p__ps_topic *t, lp2p__ps_msg *m, lp2p__ps_peer *from, bool own);
LP2P__PRIV void lp2p__gs_mcache_put(lp2p_pubsub *ps, lp2p__ps_msg *m);
/* A message reached us (first copy or duplicate): gossip promises are kept. */
LP2P__PRIV void lp2p__gs_promise_kept(lp2p_pubsub *ps, const uint8_t d[LP2P__PS_DIGEST]);
LP2P__PRIV bool lp2p__gs_in_mesh(const lp2p__ps_topic *t, const lp2p__ps_peer *p);

/* ---- pubsub_score.c -------------------------------------------------------------------------------- */
LP2P__PRIV double lp2p__score(lp2p_pubsub *ps, lp2p__ps_peer *p);
LP2P__PRIV void lp2p__score_add_peer(lp2p_pubsub *ps, lp2p__ps_peer *p);
LP2P__PRIV void lp2p__score_remove_peer(lp2p_pubsub *ps, lp2p__ps_peer *p);
LP2P__PRIV void lp2p__score_graft(lp2p_pubsub *ps, lp2p__ps_peer *p, lp2p__ps_topic *t);
LP2P__PRIV void lp2p__score_prune(lp2p_pubsub *ps, lp2p__ps_peer *p, lp2p__ps_topic *t);
LP2P__PRIV void lp2p__score_first_delivery(lp2p_pubsub *ps, lp2p__ps_peer *p, lp2p__ps_topic *t);
LP2P__PRIV void lp2p__score_duplicate(lp2p_pubsub *ps, lp2p__ps_peer *p, lp2p__ps_topic *t, int64_t validated_at);
LP2P__PRIV void lp2p__score_invalid(lp2p_pubsub *ps, lp2p__ps_peer *p, lp2p__ps_topic *t);
LP2P__PRIV void lp2p__score_penalty(lp2p_pubsub *ps, lp2p__ps_peer *p, double count);
LP2P__PRIV void lp2p__score_decay(lp2p_pubsub *ps); /* once per decay interval */
LP2P__PRIV void lp2p__score_free(lp2p_pubsub *ps);
LP2P__PRIV void lp2p__score_topic_freed(lp2p_pubsub *ps, lp2p__ps_topic *t);
LP2P__PRIV int lp2p__score_lookup(lp2p_pubsub *ps, const lp2p_peer_id *id, double *out);
LP2P__PRIV int lp2p__score_check_topic_params(const lp2p_pubsub_topic_score_params *p);

#endif
/*==================== end src/pubsub.h ====================*/
/*==================== begin src/base.c ====================*/
/* base.c - L0: allocator, logging, clock, errors, buffers, varints.
 *
 * Spec: multiformats/unsigned-varint (minimal encoding, at most 9 bytes as go-varint).
 * Depends on: base.h. */
// (amalgamated) #include "base.h"

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
// (amalgamated) #include "base.h"

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
// (amalgamated) #include "crypto.h"

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

/* The AEAD's tag (RFC 8439 §2.8, no associated data): Poly1305 keyed with keystream block 0
 * over ct || pad16 || le64(0) || le64(len). */
static void lp2p__aead_mac(const uint8_t block0[64], const uint8_t *ct, size_t len, uint8_t tag[16]) {
    crypto_onetimeauth_poly1305_state st;
    uint8_t pad[16] = {0}, lens[16] = {0};
    crypto_onetimeauth_poly1305_init(&st, block0);
    crypto_onetimeauth_poly1305_update(&st, ct, len);
    crypto_onetimeauth_poly1305_update(&st, pad, (16 - len % 16) % 16);
    for (int i = 0; i < 8; i++) lens[8 + i] = (uint8_t)((uint64_t)len >> (8 * i));
    crypto_onetimeauth_poly1305_update(&st, lens, sizeof lens);
    crypto_onetimeauth_poly1305_final(&st, tag);
    sodium_memzero(&st, sizeof st);
}

/* RFC 8439 §2.8 by hand: block 0 of the keystream keys Poly1305, the plaintext is XORed with
 * blocks 1.. and the MAC covers ciphertext || pad16 || le64(0) || le64(length). Whole 64-byte
 * blocks of a segment that start on a block boundary are encrypted straight from the
 * segment; other bytes are staged in out and encrypted there, a run of staged blocks at a
 * time, so the keystream never has to start inside a block. */
LP2P__PRIV void lp2p__aead_seal_gather(const uint8_t key[32], uint64_t n, const uint8_t *const *seg, const size_t *len,
                                       int nseg, uint8_t *out) {
    uint8_t nonce[12], block0[64];
    size_t pos = 0, staged = 0; /* [staged, pos) are plaintext bytes copied into out */
    lp2p__aead_nonce(nonce, n);
    crypto_stream_chacha20_ietf(block0, sizeof block0, nonce, key);
    for (int i = 0; i < nseg; i++) {
        const uint8_t *p = seg[i];
        size_t k = len[i];
        while (k) {
            if (pos % 64 == 0 && k >= 64) {
                if (pos > staged)
                    crypto_stream_chacha20_ietf_xor_ic(out + staged, out + staged, pos - staged, nonce,
                                                       (uint32_t)(1 + staged / 64), key);
                size_t d = k / 64 * 64;
                crypto_stream_chacha20_ietf_xor_ic(out + pos, p, d, nonce, (uint32_t)(1 + pos / 64), key);
                pos += d, p += d, k -= d;
                staged = pos;
            } else {
                size_t take = LP2P__MIN(k, 64 - pos % 64);
                memcpy(out + pos, p, take);
                pos += take, p += take, k -= take;
            }
        }
    }
    if (pos > staged)
        crypto_stream_chacha20_ietf_xor_ic(out + staged, out + staged, pos - staged, nonce, (uint32_t)(1 + staged / 64), key);
    lp2p__aead_mac(block0, out, pos, out + pos);
    sodium_memzero(block0, sizeof block0);
}

LP2P__PRIV int lp2p__aead_verify(const uint8_t key[32], uint64_t n, const uint8_t *ct, size_t len) {
    uint8_t nonce[12], block0[64], tag[16];
    lp2p__aead_nonce(nonce, n);
    crypto_stream_chacha20_ietf(block0, sizeof block0, nonce, key);
    lp2p__aead_mac(block0, ct, len, tag);
    sodium_memzero(block0, sizeof block0);
    return crypto_verify_16(tag, ct + len) == 0 ? LP2P_OK : LP2P_ERR_PROTOCOL;
}

LP2P__PRIV void lp2p__aead_xor_at(const uint8_t key[32], uint64_t n, size_t off, const uint8_t *in, size_t len,
                                  uint8_t *out) {
    uint8_t nonce[12];
    lp2p__aead_nonce(nonce, n);
    if (off % 64 && len) { /* the keystream can only start on a block: take this block's by hand */
        uint8_t ks[64] = {0};
        size_t k = LP2P__MIN(len, 64 - off % 64);
        crypto_stream_chacha20_ietf_xor_ic(ks, ks, sizeof ks, nonce, (uint32_t)(1 + off / 64), key);
        for (size_t i = 0; i < k; i++) out[i] = in[i] ^ ks[off % 64 + i];
        sodium_memzero(ks, sizeof ks);
        off += k, in += k, out += k, len -= k;
    }
    if (len) crypto_stream_chacha20_ietf_xor_ic(out, in, len, nonce, (uint32_t)(1 + off / 64), key);
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
// (amalgamated) #include "crypto.h"
// (amalgamated) #include "proto/keys.pb.h"
// (amalgamated) #include "proto/envelope.pb.h"

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
// (amalgamated) #include "multiaddr.h"

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
 * Memory: a stack costs only the pages its tasks touched, but a pooled stack keeps the pages of
 * every task that used it, and a parked task keeps those of its deepest call. lp2p__sched_trim
 * (run about once a second by the host) gives back, with madvise(MADV_DONTNEED), the pages
 * below the stack pointer of tasks parked for a whole trim interval and all but the top page of
 * stacks pooled that long; busy tasks and stacks are never touched, so hot paths pay nothing.
 *
 * Limits: every guarded stack costs two memory mappings, and Linux caps mappings per process
 * at vm.max_map_count (65530 by default), so about 32 k tasks can be alive at once unless
 * that sysctl is raised. Task handles carry a 12-bit generation: a handle kept across 4096
 * reuses of the same slot may alias a newer task (slots are reused first-in first-out to make
 * that rare).
 * Depends on: base.h, runtime.h. */
// (amalgamated) #include "runtime.h"

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
static inline uintptr_t lp2p__coro_sp(const lp2p__coro *c) { return (uintptr_t)c->sp; }

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
static inline uintptr_t lp2p__coro_sp(const lp2p__coro *c) { return (uintptr_t)c->sp; }

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
static inline uintptr_t lp2p__coro_sp(const lp2p__coro *c) { return (void)c, 0; } /* unknown: never trimmed */
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
    uint32_t run_round; /* sched trim_round when last resumed */
    uint8_t state, canceled, trimmed;
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
    uint32_t pool_round[LP2P__STACK_POOL]; /* trim_round when pooled */
    uint8_t pool_trimmed[LP2P__STACK_POOL];
    int npool;
    uint32_t trim_round;
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
    if (s->npool < LP2P__STACK_POOL && !s->freeing) {
        s->pool_round[s->npool] = s->trim_round;
        s->pool_trimmed[s->npool] = 0;
        s->pool[s->npool++] = p;
    } else munmap(p, s->stack_size + s->page);
}

/* Drop the pages of a stack's usable area [lo, lo + stack_size) that lie below keep_from (page
 * rounded down): they hold nothing live. Returns the bytes advised away. */
static size_t lp2p__stack_release_below(lp2p__sched *s, void *stack, uintptr_t keep_from) {
#ifdef MADV_DONTNEED
    uintptr_t lo = (uintptr_t)stack + s->page, hi = keep_from & ~(uintptr_t)(s->page - 1);
    if (hi > lo + s->stack_size) hi = lo + s->stack_size;
    if (hi <= lo || madvise((void *)lo, hi - lo, MADV_DONTNEED) != 0) return 0;
    return hi - lo;
#else
    (void)s, (void)stack, (void)keep_from;
    return 0;
#endif
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

/* A task or pooled stack untouched since the previous call (a whole interval) is idle. */
LP2P__PRIV size_t lp2p__sched_trim(lp2p__sched *s) {
    size_t freed = 0;
    s->trim_round++;
    for (uint32_t i = 0; i < s->nslots; i++) {
        lp2p__task *t = s->slots[i];
        if (t->state != LP2P__T_PARKED || t->trimmed || s->trim_round - t->run_round < 2) continue;
        uintptr_t sp = lp2p__coro_sp(&t->ctx);
        if (sp) freed += lp2p__stack_release_below(s, t->stack, sp);
        t->trimmed = 1;
    }
    for (int i = 0; i < s->npool; i++) { /* keep the top page: every task starts there */
        if (s->pool_trimmed[i] || s->trim_round - s->pool_round[i] < 2) continue;
        freed += lp2p__stack_release_below(s, s->pool[i], (uintptr_t)s->pool[i] + s->stack_size);
        s->pool_trimmed[i] = 1;
    }
    return freed;
}

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
    t->run_round = s->trim_round;
    t->trimmed = 0;
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
// (amalgamated) #include "pipe.h"

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
/* tcp.c - L3: TCP transport over the runtime poller, DNS resolution off the loop, and an
 * in-memory pipe pair.
 *
 * Spec: libp2p/specs connections/README.md (a transport yields a reliable byte stream);
 * addressing/README.md (/ip4|ip6|dns|dns4|dns6/../tcp/..). Sockets are non-blocking and
 * registered once with the poller (edge-triggered): every syscall is retried until EAGAIN
 * before the task parks on lp2p__wait_fd.
 * Lifetimes: close/reset/listener_free may be called by one task while another is parked in
 * read/write/accept on the same object (a muxer closing its connection, a host stopping a
 * listener). The fd is closed at once; the record is freed when the last parked call has
 * woken, and that call returns LP2P_ERR_CLOSED without touching anything else.
 * Errors: ECONNRESET, EPIPE (peer gone while we write), ECONNABORTED and ETIMEDOUT on an
 * open connection map to LP2P_ERR_RESET; a failed connect (refused, unreachable, timed out
 * by the kernel, no route, DNS failure) maps to LP2P_ERR_UNREACHABLE; ENOMEM/ENOBUFS to
 * LP2P_ERR_NOMEM; anything else to LP2P_ERR_IO. Writing after close_write gives ERR_CLOSED.
 * Depends on: tcp.h (runtime.h, pipe.h, multiaddr.h), POSIX sockets, getaddrinfo, pthreads. */
// (amalgamated) #include "tcp.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#define LP2P__TCP_RBUF 4096     /* per-pipe read-ahead for small reads */
#define LP2P__TCP_DIRECT 64     /* reads of at least this many bytes go straight to the socket */
#define LP2P__TCP_BACKLOG 1024
#define LP2P__DNS_MAX 16        /* addresses kept from one getaddrinfo answer */
#define LP2P__DIAL_MAX 8        /* resolved addresses one dial tries */
#define LP2P__MEMPIPE_MAX (1u << 20)

/* ---- errno mapping ------------------------------------------------------------------------- */
static int lp2p__tcp_io_err(int e) {
    switch (e) {
    case ECONNRESET: case EPIPE: case ECONNABORTED: case ETIMEDOUT: case EHOSTUNREACH: case ENETUNREACH:
    case ENETRESET: return LP2P_ERR_RESET;
    case ENOMEM: case ENOBUFS: return LP2P_ERR_NOMEM;
    default: return LP2P_ERR_IO;
    }
}

static int lp2p__tcp_connect_err(int e) {
    switch (e) {
    case ENOMEM: case ENOBUFS: return LP2P_ERR_NOMEM;
    case EMFILE: case ENFILE: case EBADF: case EINVAL: return LP2P_ERR_IO;
    default: return LP2P_ERR_UNREACHABLE; /* ECONNREFUSED, E*UNREACH, ETIMEDOUT, EADDRNOTAVAIL, EACCES ... */
    }
}

/* ---- sockaddr <-> multiaddr -------------------------------------------------------------- */
static void lp2p__tcp_sa_to_ma(const struct sockaddr_storage *ss, lp2p__ma *out) {
    size_t n = 0;
    uint16_t port;
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(s6->sin6_addr.s6_addr, mapped, 12) == 0) { /* a v4 peer on a dual-stack socket */
            out->b[n++] = LP2P__MA_IP4;
            memcpy(out->b + n, s6->sin6_addr.s6_addr + 12, 4), n += 4;
        } else {
            out->b[n++] = LP2P__MA_IP6;
            memcpy(out->b + n, s6->sin6_addr.s6_addr, 16), n += 16;
        }
        port = ntohs(s6->sin6_port);
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
        out->b[n++] = LP2P__MA_IP4;
        memcpy(out->b + n, &s4->sin_addr.s_addr, 4), n += 4;
        port = ntohs(s4->sin_port);
    }
    out->b[n++] = LP2P__MA_TCP;
    lp2p__put_be16(out->b + n, port), n += 2;
    out->len = (uint16_t)n;
}

/* First two components /ip4|ip6/<a>/tcp/<port> -> sockaddr; ERR_BADADDR otherwise. */
static int lp2p__tcp_ma_to_sa(const lp2p__ma *ma, struct sockaddr_storage *ss, socklen_t *len) {
    size_t off = 0, vn = 0;
    uint32_t code = 0, code2 = 0;
    const uint8_t *v = NULL, *pv = NULL;
    if (!lp2p__ma_next(ma, &off, &code, &v, &vn)) return LP2P_ERR_BADADDR;
    if (!lp2p__ma_next(ma, &off, &code2, &pv, &vn) || code2 != LP2P__MA_TCP) return LP2P_ERR_BADADDR;
    memset(ss, 0, sizeof *ss);
    if (code == LP2P__MA_IP4) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        memcpy(&s4->sin_addr.s_addr, v, 4);
        s4->sin_port = htons(lp2p__be16(pv));
        *len = sizeof *s4;
    } else if (code == LP2P__MA_IP6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        memcpy(s6->sin6_addr.s6_addr, v, 16);
        s6->sin6_port = htons(lp2p__be16(pv));
        *len = sizeof *s6;
    } else {
        return LP2P_ERR_BADADDR;
    }
    return LP2P_OK;
}

static void lp2p__tcp_sockopt(int fd, int level, int opt, int val) {
    (void)setsockopt(fd, level, opt, &val, sizeof val); /* best effort: all are optimisations */
}

/* ---- TCP pipe ------------------------------------------------------------------------------- */
typedef struct lp2p__tcp_pipe {
    lp2p__pipe base;
    lp2p__sched *s;
    lp2p__ctx *ctx;
    int fd;
    int waiting;  /* calls parked in read/write; the record outlives them */
    bool closed;  /* released by close/reset: fd is gone */
    bool wr_shut; /* close_write done */
    uint16_t rpos, rlen;
    uint8_t *rbuf; /* LP2P__TCP_RBUF bytes while it holds unread bytes or a read is in progress */
} lp2p__tcp_pipe;

static void lp2p__tcp_pipe_free(lp2p__tcp_pipe *t) {
    lp2p__free(t->ctx, t->rbuf, LP2P__TCP_RBUF);
    lp2p__free(t->ctx, t, sizeof *t);
}

/* Park on the fd; ERR_CLOSED (and nothing touched after) if the pipe was released meanwhile. */
static int lp2p__tcp_wait(lp2p__tcp_pipe *t, int dir, int64_t deadline) {
    t->waiting++;
    int rc = lp2p__wait_fd(t->s, t->fd, dir, deadline);
    t->waiting--;
    if (t->closed) {
        if (t->waiting == 0) lp2p__tcp_pipe_free(t);
        return LP2P_ERR_CLOSED;
    }
    return rc;
}

static ptrdiff_t lp2p__tcp_read(lp2p__pipe *p, void *buf, size_t cap, int64_t deadline) {
    lp2p__tcp_pipe *t = (lp2p__tcp_pipe *)p;
    if (cap == 0) return LP2P_ERR_INVALID; /* 0 would read as EOF */
    if (t->rpos < t->rlen) {
        size_t n = LP2P__MIN(cap, (size_t)(t->rlen - t->rpos));
        memcpy(buf, t->rbuf + t->rpos, n);
        t->rpos = (uint16_t)(t->rpos + n);
        return (ptrdiff_t)n;
    }
    for (;;) {
        ssize_t n;
        if (cap >= LP2P__TCP_DIRECT) { /* big reads go straight to the caller's buffer */
            if (t->rbuf) { /* the byte-wise phase (multistream) is over: give the buffer back */
                lp2p__free(t->ctx, t->rbuf, LP2P__TCP_RBUF);
                t->rbuf = NULL;
            }
            n = recv(t->fd, buf, cap, 0);
            if (n >= 0) return (ptrdiff_t)n;
        } else {
            if (!t->rbuf && !(t->rbuf = (uint8_t *)lp2p__alloc(t->ctx, LP2P__TCP_RBUF))) return LP2P_ERR_NOMEM;
            n = recv(t->fd, t->rbuf, LP2P__TCP_RBUF, 0);
            if (n >= 0) {
                size_t k = LP2P__MIN(cap, (size_t)n);
                memcpy(buf, t->rbuf, k);
                t->rpos = (uint16_t)k, t->rlen = (uint16_t)n;
                return (ptrdiff_t)k;
            }
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) return lp2p__tcp_io_err(errno);
        if (t->rbuf) { /* empty while we wait: an idle connection holds no read-ahead */
            lp2p__free(t->ctx, t->rbuf, LP2P__TCP_RBUF);
            t->rbuf = NULL;
        }
        int rc = lp2p__tcp_wait(t, LP2P__IN, deadline);
        if (rc) return rc;
    }
}

static int lp2p__tcp_write(lp2p__pipe *p, const void *buf, size_t len, int64_t deadline) {
    lp2p__tcp_pipe *t = (lp2p__tcp_pipe *)p;
    const uint8_t *b = (const uint8_t *)buf;
    if (t->wr_shut) return LP2P_ERR_CLOSED;
    while (len > 0) {
        ssize_t n = send(t->fd, b, len, MSG_NOSIGNAL); /* no SIGPIPE when the peer is gone */
        if (n > 0) {
            b += n, len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return lp2p__tcp_io_err(errno);
        int rc = lp2p__tcp_wait(t, LP2P__OUT, deadline);
        if (rc) return rc;
    }
    return LP2P_OK;
}

static int lp2p__tcp_close_write(lp2p__pipe *p) {
    lp2p__tcp_pipe *t = (lp2p__tcp_pipe *)p;
    if (t->wr_shut) return LP2P_OK;
    t->wr_shut = true;
    if (shutdown(t->fd, SHUT_WR) < 0 && errno != ENOTCONN) return lp2p__tcp_io_err(errno);
    return LP2P_OK;
}

static void lp2p__tcp_release(lp2p__tcp_pipe *t, bool abort) {
    int fd = t->fd;
    lp2p__sched *s = t->s;
    bool free_now = t->waiting == 0; /* else the last parked call frees it: never touch t again */
    if (abort) { /* SO_LINGER {1, 0}: close() sends RST and drops unsent data */
        struct linger lg = {1, 0};
        (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    t->closed = true;
    t->fd = -1;
    if (free_now) lp2p__tcp_pipe_free(t);
    lp2p__fd_del(s, fd); /* wakes parked calls with ERR_CLOSED */
    close(fd);
}

static void lp2p__tcp_reset(lp2p__pipe *p) { lp2p__tcp_release((lp2p__tcp_pipe *)p, true); }
static void lp2p__tcp_close(lp2p__pipe *p) { lp2p__tcp_release((lp2p__tcp_pipe *)p, false); }

static const lp2p__pipe_vt lp2p__tcp_vt = {lp2p__tcp_read, lp2p__tcp_write, lp2p__tcp_close_write, lp2p__tcp_reset,
                                           lp2p__tcp_close, NULL};

LP2P__PRIV int lp2p__tcp_pipe_fd(lp2p__pipe *p) {
    return p && p->vt == &lp2p__tcp_vt ? ((lp2p__tcp_pipe *)p)->fd : -1;
}

/* Wrap a connected non-blocking socket (registered with the poller already). */
static int lp2p__tcp_pipe_new(lp2p__sched *s, int fd, lp2p__pipe **out) {
    lp2p__ctx *ctx = lp2p__sched_ctx(s);
    lp2p__tcp_pipe *t = (lp2p__tcp_pipe *)lp2p__zalloc(ctx, sizeof *t);
    if (!t) return LP2P_ERR_NOMEM;
    t->base.vt = &lp2p__tcp_vt;
    t->s = s, t->ctx = ctx, t->fd = fd;
    *out = &t->base;
    return LP2P_OK;
}

static void lp2p__tcp_fd_drop(lp2p__sched *s, int fd, bool registered) {
    if (registered) lp2p__fd_del(s, fd);
    close(fd);
}

/* ---- listener --------------------------------------------------------------------------------- */
struct lp2p__tcp_listener {
    lp2p__sched *s;
    lp2p__ctx *ctx;
    int fd;
    int waiting;
    bool closed;
};

LP2P__PRIV int lp2p__tcp_listen(lp2p__sched *s, const lp2p__ma *addr, lp2p__tcp_listener **out, lp2p__ma *bound) {
    lp2p__ctx *ctx = lp2p__sched_ctx(s);
    struct sockaddr_storage ss;
    socklen_t sl;
    char text[LP2P__MA_STRLEN];
    size_t off = 0, vn;
    uint32_t code;
    const uint8_t *v;
    /* exactly /ip4|ip6/<a>/tcp/<port>: anything after it is not ours to serve */
    if (lp2p__tcp_ma_to_sa(addr, &ss, &sl)) return LP2P_ERR_BADADDR;
    lp2p__ma_next(addr, &off, &code, &v, &vn), lp2p__ma_next(addr, &off, &code, &v, &vn);
    if (off != addr->len) return LP2P_ERR_BADADDR;
    lp2p__ma_str(addr, text, sizeof text);
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        LP2P__WARN(ctx, LP2P_ERR_IO, "tcp listen %s: socket: %s", text, strerror(errno));
        return LP2P_ERR_IO;
    }
    lp2p__tcp_sockopt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
#ifdef SO_REUSEPORT
    lp2p__tcp_sockopt(fd, SOL_SOCKET, SO_REUSEPORT, 1); /* dials from this port (hole punching) */
#endif
    if (ss.ss_family == AF_INET6) lp2p__tcp_sockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1); /* as go: v4 and v6 apart */
    lp2p__tcp_sockopt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
    const char *step = NULL;
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0) step = "bind";
    else if (listen(fd, LP2P__TCP_BACKLOG) < 0) step = "listen";
    else if (sl = sizeof ss, getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) step = "getsockname";
    if (step) {
        LP2P__WARN(ctx, LP2P_ERR_IO, "tcp listen %s: %s: %s", text, step, strerror(errno));
        close(fd);
        return LP2P_ERR_IO;
    }
    int rc = lp2p__fd_add(s, fd);
    if (rc) {
        close(fd);
        return rc;
    }
    lp2p__tcp_listener *l = (lp2p__tcp_listener *)lp2p__zalloc(ctx, sizeof *l);
    if (!l) {
        lp2p__tcp_fd_drop(s, fd, true);
        return LP2P_ERR_NOMEM;
    }
    l->s = s, l->ctx = ctx, l->fd = fd;
    if (bound) lp2p__tcp_sa_to_ma(&ss, bound);
    *out = l;
    return LP2P_OK;
}

static void lp2p__tcp_listener_destroy(lp2p__tcp_listener *l) { lp2p__free(l->ctx, l, sizeof *l); }

LP2P__PRIV int lp2p__tcp_accept(lp2p__tcp_listener *l, lp2p__pipe **out, lp2p__ma *remote, int64_t deadline) {
    if (l->closed) return LP2P_ERR_CLOSED;
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            lp2p__tcp_sockopt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
            int rc = lp2p__fd_add(l->s, fd);
            if (rc) {
                close(fd);
                return rc;
            }
            if ((rc = lp2p__tcp_pipe_new(l->s, fd, out))) {
                lp2p__tcp_fd_drop(l->s, fd, true);
                return rc;
            }
            if (remote) lp2p__tcp_sa_to_ma(&ss, remote);
            return LP2P_OK;
        }
        int e = errno;
        /* accept(2): a connection that died in the queue, or a pending network error, is
         * not the listener's failure: take the next one */
        if (e == EINTR || e == ECONNABORTED || e == EPROTO || e == ENETDOWN || e == ENOPROTOOPT || e == EHOSTDOWN ||
            e == EHOSTUNREACH || e == EOPNOTSUPP || e == ENETUNREACH)
            continue;
        if (e != EAGAIN && e != EWOULDBLOCK) {
            LP2P__WARN(l->ctx, LP2P_ERR_IO, "tcp accept: %s", strerror(e));
            return e == ENOMEM || e == ENOBUFS ? LP2P_ERR_NOMEM : LP2P_ERR_IO;
        }
        l->waiting++;
        int rc = lp2p__wait_fd(l->s, l->fd, LP2P__IN, deadline);
        l->waiting--;
        if (l->closed) {
            if (l->waiting == 0) lp2p__tcp_listener_destroy(l);
            return LP2P_ERR_CLOSED;
        }
        if (rc) return rc;
    }
}

LP2P__PRIV void lp2p__tcp_listener_free(lp2p__tcp_listener *l) {
    if (!l) return;
    int fd = l->fd;
    lp2p__sched *s = l->s;
    bool free_now = l->waiting == 0;
    l->closed = true;
    l->fd = -1;
    if (free_now) lp2p__tcp_listener_destroy(l);
    lp2p__fd_del(s, fd); /* wakes a parked accept with ERR_CLOSED */
    close(fd);
}

/* ---- dialing ------------------------------------------------------------------------------------ */
/* Wait for a non-blocking connect to finish. */
static int lp2p__tcp_connect_wait(lp2p__sched *s, int fd, int64_t deadline) {
    for (;;) {
        int rc = lp2p__wait_fd(s, fd, LP2P__OUT, deadline);
        if (rc) return rc;
        int err = 0;
        socklen_t el = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0) err = errno;
        if (err) return lp2p__tcp_connect_err(err);
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) return LP2P_OK;
        if (errno != ENOTCONN) return lp2p__tcp_connect_err(errno);
        /* woken early: still connecting */
    }
}

static int lp2p__tcp_bind_port(int fd, int family, int port) {
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sl;
    lp2p__tcp_sockopt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
#ifdef SO_REUSEPORT
    lp2p__tcp_sockopt(fd, SOL_SOCKET, SO_REUSEPORT, 1);
#endif
    if (family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6, s6->sin6_port = htons((uint16_t)port), sl = sizeof *s6;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET, s4->sin_port = htons((uint16_t)port), sl = sizeof *s4;
    }
    return bind(fd, (struct sockaddr *)&ss, sl) == 0 ? LP2P_OK : LP2P_ERR_IO;
}

static int lp2p__tcp_dial_one(lp2p__sched *s, const lp2p__ma *addr, int reuse_port, lp2p__pipe **out, lp2p__ma *local,
                              lp2p__ma *remote, int64_t deadline) {
    struct sockaddr_storage ss;
    socklen_t sl;
    if (lp2p__tcp_ma_to_sa(addr, &ss, &sl)) return LP2P_ERR_BADADDR;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return lp2p__tcp_connect_err(errno);
    lp2p__tcp_sockopt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
    if (reuse_port > 0 && reuse_port <= 65535 && lp2p__tcp_bind_port(fd, ss.ss_family, reuse_port)) {
        int e = errno;
        close(fd);
        LP2P__DEBUG(lp2p__sched_ctx(s), "tcp dial: bind to port %d: %s", reuse_port, strerror(e));
        return LP2P_ERR_IO;
    }
    int rc = lp2p__fd_add(s, fd);
    if (rc) {
        close(fd);
        return rc;
    }
    if (connect(fd, (struct sockaddr *)&ss, sl) < 0) {
        if (errno == EINPROGRESS || errno == EINTR) rc = lp2p__tcp_connect_wait(s, fd, deadline);
        else rc = lp2p__tcp_connect_err(errno);
    }
    if (rc == LP2P_OK) rc = lp2p__tcp_pipe_new(s, fd, out);
    if (rc) {
        lp2p__tcp_fd_drop(s, fd, true);
        return rc;
    }
    if (local) {
        struct sockaddr_storage ls;
        socklen_t ll = sizeof ls;
        if (getsockname(fd, (struct sockaddr *)&ls, &ll) == 0) lp2p__tcp_sa_to_ma(&ls, local);
        else local->len = 0;
    }
    if (remote) lp2p__tcp_sa_to_ma(&ss, remote);
    return LP2P_OK;
}

LP2P__PRIV int lp2p__tcp_dial(lp2p__sched *s, const lp2p__ma *addr, int reuse_port, lp2p__pipe **out, lp2p__ma *local,
                              lp2p__ma *remote, int64_t deadline) {
    lp2p__ma targets[LP2P__DIAL_MAX];
    size_t off = 0, vn;
    uint32_t code;
    const uint8_t *v;
    int n = 1, rc = LP2P_ERR_UNREACHABLE;
    if (!lp2p__ma_is_tcp(addr) || !lp2p__ma_next(addr, &off, &code, &v, &vn)) return LP2P_ERR_BADADDR;
    if (code == LP2P__MA_DNS || code == LP2P__MA_DNS4 || code == LP2P__MA_DNS6) {
        n = lp2p__dns_resolve(s, addr, targets, LP2P__DIAL_MAX, deadline);
        if (n < 0) return n;
    } else {
        targets[0] = *addr;
    }
    for (int i = 0; i < n; i++) { /* in resolver order (RFC 6724 sorting by getaddrinfo) */
        rc = lp2p__tcp_dial_one(s, &targets[i], reuse_port, out, local, remote, deadline);
        if (rc == LP2P_OK || rc == LP2P_ERR_TIMEOUT || rc == LP2P_ERR_CANCELED || rc == LP2P_ERR_WOULDBLOCK) break;
    }
    return rc;
}

/* ---- DNS: getaddrinfo on a detached thread -------------------------------------------------------
 * The request is shared by the waiting task (loop thread) and the worker thread, guarded by mu;
 * exactly one of them frees it (plain malloc/free: the worker may outlive the host and its
 * allocator):
 *   - the worker, if the waiter gave up before the answer (it then never touches the scheduler);
 *   - the posted callback, if the waiter gave up after the worker posted;
 *   - the waiter otherwise.
 * The worker posts only while the waiter still waits, so the scheduler is alive at that time. */
typedef struct lp2p__dns_req {
    pthread_mutex_t mu;
    lp2p__sched *s;
    char name[256];
    int family;
    bool waiter_gone, finished, posted, done; /* under mu */
    int n;
    struct sockaddr_storage res[LP2P__DNS_MAX];
    lp2p__waitq wq; /* loop thread only */
} lp2p__dns_req;

static void lp2p__dns_req_free(lp2p__dns_req *r) {
    pthread_mutex_destroy(&r->mu);
    free(r);
}

static void lp2p__dns_done(void *arg) { /* runs as a task on the loop thread */
    lp2p__dns_req *r = (lp2p__dns_req *)arg;
    pthread_mutex_lock(&r->mu);
    r->done = true;
    bool gone = r->waiter_gone;
    pthread_mutex_unlock(&r->mu);
    if (gone) lp2p__dns_req_free(r);
    else lp2p__waitq_wake_all(r->s, &r->wq);
}

static void lp2p__dns_collect(lp2p__dns_req *r, const struct addrinfo *ai) {
    for (; ai && r->n < LP2P__DNS_MAX; ai = ai->ai_next) {
        if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) || ai->ai_addrlen > sizeof r->res[0]) continue;
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof ss);
        memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
        bool dup = false;
        for (int i = 0; i < r->n && !dup; i++) dup = memcmp(&r->res[i], &ss, sizeof ss) == 0;
        if (!dup) r->res[r->n++] = ss;
    }
}

static void *lp2p__dns_thread(void *arg) {
    lp2p__dns_req *r = (lp2p__dns_req *)arg;
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = r->family;
    hints.ai_socktype = SOCK_STREAM; /* no AI_ADDRCONFIG: it hides ::1/127.0.0.1 on loopback-only hosts */
    if (getaddrinfo(r->name, NULL, &hints, &ai) == 0) {
        lp2p__dns_collect(r, ai);
        freeaddrinfo(ai);
    }
    pthread_mutex_lock(&r->mu);
    if (r->waiter_gone) {
        pthread_mutex_unlock(&r->mu);
        lp2p__dns_req_free(r);
        return NULL;
    }
    r->finished = true;
    r->posted = lp2p__sched_post(r->s, lp2p__dns_done, r) == LP2P_OK;
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* Results are ready to read (and the waiter owns r) when the callback ran, or the worker
 * finished but could not post. */
static bool lp2p__dns_ready(lp2p__dns_req *r) { return r->done || (r->finished && !r->posted); }

/* Wait for the worker; returns OK (r owned by the caller) or an error (r handed off). */
static int lp2p__dns_wait(lp2p__sched *s, lp2p__dns_req *r, int64_t deadline) {
    for (;;) {
        pthread_mutex_lock(&r->mu);
        bool ready = lp2p__dns_ready(r);
        pthread_mutex_unlock(&r->mu);
        if (ready) return LP2P_OK;
        /* short slices: also notices a worker whose post failed */
        int rc = lp2p__waitq_wait(s, &r->wq, lp2p__deadline_min(deadline, lp2p_deadline_in(100)));
        if (rc == LP2P_ERR_TIMEOUT && (deadline < 0 || lp2p_now() < deadline)) continue;
        if (rc == LP2P_OK) continue;
        pthread_mutex_lock(&r->mu);
        ready = lp2p__dns_ready(r);
        if (!ready) r->waiter_gone = true; /* the worker or the callback frees r */
        pthread_mutex_unlock(&r->mu);
        return ready ? LP2P_OK : rc;
    }
}

LP2P__PRIV int lp2p__dns_resolve(lp2p__sched *s, const lp2p__ma *addr, lp2p__ma *out, int max, int64_t deadline) {
    size_t off = 0, vn;
    uint32_t code;
    const uint8_t *v;
    if (max <= 0) return LP2P_ERR_INVALID;
    if (!lp2p__ma_next(addr, &off, &code, &v, &vn)) return LP2P_ERR_BADADDR;
    if ((code != LP2P__MA_DNS && code != LP2P__MA_DNS4 && code != LP2P__MA_DNS6) || vn >= 256) return LP2P_ERR_BADADDR;
    lp2p__dns_req *r = (lp2p__dns_req *)calloc(1, sizeof *r);
    if (!r) return LP2P_ERR_NOMEM;
    pthread_mutex_init(&r->mu, NULL);
    r->s = s;
    memcpy(r->name, v, vn);
    r->family = code == LP2P__MA_DNS4 ? AF_INET : code == LP2P__MA_DNS6 ? AF_INET6 : AF_UNSPEC;
    pthread_attr_t attr;
    pthread_t th;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int perr = pthread_create(&th, &attr, lp2p__dns_thread, r);
    pthread_attr_destroy(&attr);
    if (perr) {
        lp2p__dns_req_free(r);
        LP2P__WARN(lp2p__sched_ctx(s), LP2P_ERR_NOMEM, "dns: cannot start resolver thread: %s", strerror(perr));
        return LP2P_ERR_NOMEM;
    }
    int rc = lp2p__dns_wait(s, r, deadline);
    if (rc) return rc;
    /* /dnsX/<name>/rest -> /ipY/<addr>/rest for each answer */
    size_t rest = addr->len - off;
    int n = 0;
    for (int i = 0; i < r->n && n < max; i++) {
        lp2p__ma m;
        lp2p__tcp_sa_to_ma(&r->res[i], &m);
        m.len = (uint16_t)(m.b[0] == LP2P__MA_IP4 ? 5 : 17); /* keep only the ip component */
        if (m.len + rest > LP2P__MA_MAX) continue;
        memcpy(m.b + m.len, addr->b + off, rest);
        m.len = (uint16_t)(m.len + rest);
        out[n++] = m;
    }
    lp2p__dns_req_free(r);
    if (n == 0) LP2P__DEBUG(lp2p__sched_ctx(s), "dns: no usable address for %.*s", (int)vn, (const char *)v);
    return n > 0 ? n : LP2P_ERR_UNREACHABLE;
}

/* ---- in-memory pipe pair ----------------------------------------------------------------------- */
typedef struct lp2p__mem_dir { /* one direction: a ring buffer that grows up to LP2P__MEMPIPE_MAX */
    uint8_t *buf;
    size_t cap, head, len;
    bool eof; /* the writer sent FIN */
    lp2p__waitq readers, writers;
} lp2p__mem_dir;

typedef struct lp2p__mem_shared {
    lp2p__sched *s;
    lp2p__ctx *ctx;
    lp2p__mem_dir dir[2]; /* dir[i] is written by side i */
    bool reset[2], gone[2];
    int refs;
} lp2p__mem_shared;

typedef struct lp2p__mempipe {
    lp2p__pipe base;
    lp2p__mem_shared *sh;
    int side;
    int waiting;
    bool closed;
} lp2p__mempipe;

static void lp2p__mem_unref(lp2p__mem_shared *sh) {
    if (--sh->refs > 0) return;
    for (int i = 0; i < 2; i++) lp2p__free(sh->ctx, sh->dir[i].buf, sh->dir[i].cap);
    lp2p__free(sh->ctx, sh, sizeof *sh);
}

static void lp2p__mem_drop(lp2p__mempipe *m) {
    lp2p__mem_shared *sh = m->sh;
    lp2p__free(sh->ctx, m, sizeof *m);
    lp2p__mem_unref(sh);
}

static int lp2p__mem_wait(lp2p__mempipe *m, lp2p__waitq *q, int64_t deadline) {
    m->waiting++;
    int rc = lp2p__waitq_wait(m->sh->s, q, deadline);
    m->waiting--;
    if (m->closed) {
        if (m->waiting == 0) lp2p__mem_drop(m);
        return LP2P_ERR_CLOSED;
    }
    return rc;
}

static void lp2p__mem_wake_all(lp2p__mem_shared *sh) {
    for (int i = 0; i < 2; i++) {
        lp2p__waitq_wake_all(sh->s, &sh->dir[i].readers);
        lp2p__waitq_wake_all(sh->s, &sh->dir[i].writers);
    }
}

static ptrdiff_t lp2p__mem_read(lp2p__pipe *p, void *buf, size_t cap, int64_t deadline) {
    lp2p__mempipe *m = (lp2p__mempipe *)p;
    lp2p__mem_shared *sh = m->sh;
    int peer = 1 - m->side;
    lp2p__mem_dir *d = &sh->dir[peer];
    if (cap == 0) return LP2P_ERR_INVALID;
    for (;;) {
        if (sh->reset[peer]) return LP2P_ERR_RESET; /* like TCP RST: unread data is lost */
        if (d->len > 0) {
            size_t n = LP2P__MIN(cap, d->len), first = LP2P__MIN(n, d->cap - d->head);
            memcpy(buf, d->buf + d->head, first);
            memcpy((uint8_t *)buf + first, d->buf, n - first);
            d->head = (d->head + n) % d->cap, d->len -= n;
            lp2p__waitq_wake_all(sh->s, &d->writers);
            return (ptrdiff_t)n;
        }
        if (d->eof) return 0;
        int rc = lp2p__mem_wait(m, &d->readers, deadline);
        if (rc) return rc;
    }
}

/* Make room for at least want more bytes (capped at the limit); linearises the ring. */
static int lp2p__mem_grow(lp2p__mem_shared *sh, lp2p__mem_dir *d, size_t want) {
    size_t need = LP2P__MIN(d->len + want, (size_t)LP2P__MEMPIPE_MAX);
    if (need <= d->cap) return LP2P_OK;
    size_t cap = d->cap ? d->cap : 4096;
    while (cap < need) cap *= 2;
    if (cap > LP2P__MEMPIPE_MAX) cap = LP2P__MEMPIPE_MAX;
    uint8_t *nb = (uint8_t *)lp2p__alloc(sh->ctx, cap);
    if (!nb) return LP2P_ERR_NOMEM;
    size_t first = d->len ? LP2P__MIN(d->len, d->cap - d->head) : 0;
    if (first) memcpy(nb, d->buf + d->head, first);
    if (d->len > first) memcpy(nb + first, d->buf, d->len - first);
    lp2p__free(sh->ctx, d->buf, d->cap);
    d->buf = nb, d->cap = cap, d->head = 0;
    return LP2P_OK;
}

static int lp2p__mem_write(lp2p__pipe *p, const void *buf, size_t len, int64_t deadline) {
    lp2p__mempipe *m = (lp2p__mempipe *)p;
    lp2p__mem_shared *sh = m->sh;
    int peer = 1 - m->side;
    lp2p__mem_dir *d = &sh->dir[m->side];
    const uint8_t *b = (const uint8_t *)buf;
    if (d->eof) return LP2P_ERR_CLOSED;
    while (len > 0) {
        if (sh->reset[peer] || sh->gone[peer]) return LP2P_ERR_RESET; /* nobody will read it */
        if (d->len < LP2P__MEMPIPE_MAX) {
            if (lp2p__mem_grow(sh, d, len)) return LP2P_ERR_NOMEM;
            size_t k = LP2P__MIN(len, d->cap - d->len), tail = (d->head + d->len) % d->cap;
            size_t first = LP2P__MIN(k, d->cap - tail);
            memcpy(d->buf + tail, b, first);
            memcpy(d->buf, b + first, k - first);
            d->len += k, b += k, len -= k;
            lp2p__waitq_wake_all(sh->s, &d->readers);
            continue;
        }
        int rc = lp2p__mem_wait(m, &d->writers, deadline);
        if (rc) return rc;
        if (d->eof) return LP2P_ERR_CLOSED; /* close_write by another task meanwhile */
    }
    return LP2P_OK;
}

static int lp2p__mem_close_write(lp2p__pipe *p) {
    lp2p__mempipe *m = (lp2p__mempipe *)p;
    m->sh->dir[m->side].eof = true;
    lp2p__waitq_wake_all(m->sh->s, &m->sh->dir[m->side].readers);
    return LP2P_OK;
}

static void lp2p__mem_release(lp2p__mempipe *m, bool abort) {
    lp2p__mem_shared *sh = m->sh;
    bool free_now = m->waiting == 0; /* else the last parked call drops it */
    sh->dir[m->side].eof = true;
    if (abort) sh->reset[m->side] = true;
    sh->gone[m->side] = true;
    m->closed = true;
    sh->refs++; /* keep sh alive while waking */
    if (free_now) lp2p__mem_drop(m);
    lp2p__mem_wake_all(sh);
    lp2p__mem_unref(sh);
}

static void lp2p__mem_reset(lp2p__pipe *p) { lp2p__mem_release((lp2p__mempipe *)p, true); }
static void lp2p__mem_close(lp2p__pipe *p) { lp2p__mem_release((lp2p__mempipe *)p, false); }

static const lp2p__pipe_vt lp2p__mem_vt = {lp2p__mem_read, lp2p__mem_write, lp2p__mem_close_write, lp2p__mem_reset,
                                           lp2p__mem_close, NULL};

LP2P__PRIV int lp2p__mempipe_pair(lp2p__sched *s, lp2p__pipe **a, lp2p__pipe **b) {
    lp2p__ctx *ctx = lp2p__sched_ctx(s);
    lp2p__mem_shared *sh = (lp2p__mem_shared *)lp2p__zalloc(ctx, sizeof *sh);
    lp2p__mempipe *m[2] = {NULL, NULL};
    if (sh) m[0] = (lp2p__mempipe *)lp2p__zalloc(ctx, sizeof *m[0]);
    if (m[0]) m[1] = (lp2p__mempipe *)lp2p__zalloc(ctx, sizeof *m[1]);
    if (!m[1]) {
        lp2p__free(ctx, m[0], sizeof *m[0]);
        lp2p__free(ctx, sh, sizeof *sh);
        return LP2P_ERR_NOMEM;
    }
    sh->s = s, sh->ctx = ctx, sh->refs = 2;
    for (int i = 0; i < 2; i++) m[i]->base.vt = &lp2p__mem_vt, m[i]->sh = sh, m[i]->side = i;
    *a = &m[0]->base;
    *b = &m[1]->base;
    return LP2P_OK;
}
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
// (amalgamated) #include "mss.h"

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
/*==================== end src/mss.c ====================*/
/*==================== begin src/proto/keys.pb.c ====================*/
/* Automatically generated nanopb constant definitions */
/* Generated by nanopb-0.4.7 */

// (amalgamated) #include "keys.pb.h"
#if PB_PROTO_HEADER_VERSION != 40
#error Regenerate this file with the current version of nanopb generator.
#endif

PB_BIND(lp2p_pb_PublicKey, lp2p_pb_PublicKey, 2)


PB_BIND(lp2p_pb_PrivateKey, lp2p_pb_PrivateKey, AUTO)




/*==================== end src/proto/keys.pb.c ====================*/
/*==================== begin src/proto/noise.pb.c ====================*/
/* Automatically generated nanopb constant definitions */
/* Generated by nanopb-0.4.7 */

// (amalgamated) #include "noise.pb.h"
#if PB_PROTO_HEADER_VERSION != 40
#error Regenerate this file with the current version of nanopb generator.
#endif

PB_BIND(lp2p_pb_NoiseExtensions, lp2p_pb_NoiseExtensions, AUTO)


PB_BIND(lp2p_pb_NoiseHandshakePayload, lp2p_pb_NoiseHandshakePayload, 2)



/*==================== end src/proto/noise.pb.c ====================*/
/*==================== begin src/proto/envelope.pb.c ====================*/
/* Automatically generated nanopb constant definitions */
/* Generated by nanopb-0.4.7 */

// (amalgamated) #include "envelope.pb.h"
#if PB_PROTO_HEADER_VERSION != 40
#error Regenerate this file with the current version of nanopb generator.
#endif

PB_BIND(lp2p_pb_Envelope, lp2p_pb_Envelope, 2)



/*==================== end src/proto/envelope.pb.c ====================*/
/*==================== begin src/proto/peer_record.pb.c ====================*/
/* Automatically generated nanopb constant definitions */
/* Generated by nanopb-0.4.7 */

// (amalgamated) #include "peer_record.pb.h"
#if PB_PROTO_HEADER_VERSION != 40
#error Regenerate this file with the current version of nanopb generator.
#endif

PB_BIND(lp2p_pb_PeerRecord, lp2p_pb_PeerRecord, AUTO)


PB_BIND(lp2p_pb_PeerRecord_AddressInfo, lp2p_pb_PeerRecord_AddressInfo, AUTO)



/*==================== end src/proto/peer_record.pb.c ====================*/
/*==================== begin src/proto/identify.pb.c ====================*/
/* Automatically generated nanopb constant definitions */
/* Generated by nanopb-0.4.7 */

// (amalgamated) #include "identify.pb.h"
#if PB_PROTO_HEADER_VERSION != 40
#error Regenerate this file with the current version of nanopb generator.
#endif

PB_BIND(lp2p_pb_Identify, lp2p_pb_Identify, AUTO)



/*==================== end src/proto/identify.pb.c ====================*/
/*==================== begin src/proto/kad.pb.c ====================*/
/* Automatically generated nanopb constant definitions */
/* Generated by nanopb-0.4.7 */

// (amalgamated) #include "kad.pb.h"
#if PB_PROTO_HEADER_VERSION != 40
#error Regenerate this file with the current version of nanopb generator.
#endif

PB_BIND(lp2p_pb_KadRecord, lp2p_pb_KadRecord, AUTO)


PB_BIND(lp2p_pb_KadPeer, lp2p_pb_KadPeer, AUTO)


PB_BIND(lp2p_pb_KadMessage, lp2p_pb_KadMessage, AUTO)





/*==================== end src/proto/kad.pb.c ====================*/
/*==================== begin src/proto/pubsub.pb.c ====================*/
/* Automatically generated nanopb constant definitions */
/* Generated by nanopb-0.4.7 */

// (amalgamated) #include "pubsub.pb.h"
#if PB_PROTO_HEADER_VERSION != 40
#error Regenerate this file with the current version of nanopb generator.
#endif

PB_BIND(lp2p_pb_PubsubRPC, lp2p_pb_PubsubRPC, AUTO)


PB_BIND(lp2p_pb_PubsubRPC_SubOpts, lp2p_pb_PubsubRPC_SubOpts, AUTO)


PB_BIND(lp2p_pb_PubsubMessage, lp2p_pb_PubsubMessage, AUTO)


PB_BIND(lp2p_pb_PubsubControl, lp2p_pb_PubsubControl, AUTO)


PB_BIND(lp2p_pb_PubsubIHave, lp2p_pb_PubsubIHave, AUTO)


PB_BIND(lp2p_pb_PubsubIWant, lp2p_pb_PubsubIWant, AUTO)


PB_BIND(lp2p_pb_PubsubGraft, lp2p_pb_PubsubGraft, AUTO)


PB_BIND(lp2p_pb_PubsubPrune, lp2p_pb_PubsubPrune, AUTO)


PB_BIND(lp2p_pb_PubsubPeerInfo, lp2p_pb_PubsubPeerInfo, AUTO)


PB_BIND(lp2p_pb_PubsubIDontWant, lp2p_pb_PubsubIDontWant, AUTO)



/*==================== end src/proto/pubsub.pb.c ====================*/
/*==================== begin src/proto/circuit.pb.c ====================*/
/* Automatically generated nanopb constant definitions */
/* Generated by nanopb-0.4.7 */

// (amalgamated) #include "circuit.pb.h"
#if PB_PROTO_HEADER_VERSION != 40
#error Regenerate this file with the current version of nanopb generator.
#endif

PB_BIND(lp2p_pb_HopMessage, lp2p_pb_HopMessage, 2)


PB_BIND(lp2p_pb_StopMessage, lp2p_pb_StopMessage, AUTO)


PB_BIND(lp2p_pb_Peer, lp2p_pb_Peer, AUTO)


PB_BIND(lp2p_pb_Reservation, lp2p_pb_Reservation, 2)


PB_BIND(lp2p_pb_Limit, lp2p_pb_Limit, AUTO)


PB_BIND(lp2p_pb_ReservationVoucher, lp2p_pb_ReservationVoucher, AUTO)






/*==================== end src/proto/circuit.pb.c ====================*/
/*==================== begin src/proto/dcutr.pb.c ====================*/
/* Automatically generated nanopb constant definitions */
/* Generated by nanopb-0.4.7 */

// (amalgamated) #include "dcutr.pb.h"
#if PB_PROTO_HEADER_VERSION != 40
#error Regenerate this file with the current version of nanopb generator.
#endif

PB_BIND(lp2p_pb_HolePunch, lp2p_pb_HolePunch, AUTO)




/*==================== end src/proto/dcutr.pb.c ====================*/
/*==================== begin src/proto/autonat.pb.c ====================*/
/* Automatically generated nanopb constant definitions */
/* Generated by nanopb-0.4.7 */

// (amalgamated) #include "autonat.pb.h"
#if PB_PROTO_HEADER_VERSION != 40
#error Regenerate this file with the current version of nanopb generator.
#endif

PB_BIND(lp2p_pb_AN2Message, lp2p_pb_AN2Message, AUTO)


PB_BIND(lp2p_pb_AN2DialRequest, lp2p_pb_AN2DialRequest, AUTO)


PB_BIND(lp2p_pb_AN2DialDataRequest, lp2p_pb_AN2DialDataRequest, AUTO)


PB_BIND(lp2p_pb_AN2DialResponse, lp2p_pb_AN2DialResponse, AUTO)


PB_BIND(lp2p_pb_AN2DialDataResponse, lp2p_pb_AN2DialDataResponse, AUTO)


PB_BIND(lp2p_pb_AN2DialBack, lp2p_pb_AN2DialBack, AUTO)


PB_BIND(lp2p_pb_AN2DialBackResponse, lp2p_pb_AN2DialBackResponse, AUTO)


PB_BIND(lp2p_pb_AN1Message, lp2p_pb_AN1Message, 2)


PB_BIND(lp2p_pb_AN1Message_PeerInfo, lp2p_pb_AN1Message_PeerInfo, AUTO)


PB_BIND(lp2p_pb_AN1Message_Dial, lp2p_pb_AN1Message_Dial, AUTO)


PB_BIND(lp2p_pb_AN1Message_DialResponse, lp2p_pb_AN1Message_DialResponse, 2)








/*==================== end src/proto/autonat.pb.c ====================*/
/*==================== begin src/noise.c ====================*/
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
// (amalgamated) #include "noise.h"

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
 * list, operations in progress); the session likewise (owner, its tasks, every live stream),
 * so handles outliving the session fail cleanly instead of touching freed memory. An idle
 * session holds no big buffer and parks no writer: the writer task is started when there is
 * something to send and ends (returning its batch buffer to the host's cache) when there is
 * nothing left.
 * Data path: payloads of 2 KiB or more are not copied into the writer's batch when the pipe
 * takes buffer lists (Noise seals them where they lie); a payload for a stream whose reader
 * is parked with nothing buffered is read straight into that reader's buffer.
 * Depends on: yamux.h (pipe.h, runtime.h). */
// (amalgamated) #include "yamux.h"

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
#define LP2P__Y_SMALL 2048                  /* payloads up to this are copied via the stack */
#define LP2P__Y_CHUNK_SMALL 16384           /* chunk size that small payloads are packed into */
#define LP2P__Y_CHUNK_STD 65536u            /* large payloads are read straight into chunks of this size, */
#define LP2P__Y_CHUNK_MIN_STD 32768u        /* from this much on (smaller: exact size); via the host cache */
#define LP2P__Y_IOV 32                      /* buffers in one batch handed to writev */
#define LP2P__Y_ZC_MIN 2048                 /* payloads from this size are sealed where they lie */
#define LP2P__Y_TUNE_RTT_MIN_US 1000       /* window tuning counts a shorter measured RTT as this */
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
    /* the parked reader's buffer (its stream had nothing buffered): the reader task copies
     * payload it can get without waiting straight into it; dst_len bytes delivered so far */
    uint8_t *dst;
    size_t dst_cap, dst_len;
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
    lp2p_task reader, writer;
    /* stream table: open addressing, linear probing, backward-shift deletion */
    lp2p__ystream **slots;
    uint32_t cap, count;
    uint32_t next_id, max_remote_id;
    int n_inbound, n_unacked;
    uint64_t conn_window_used;
    lp2p__ystream *dirty_head, *dirty_tail, *ready_head, *ready_tail;
    uint8_t (*ctl)[LP2P__Y_HDR]; /* ring of ctl_cap frames (<= LP2P__Y_CTL), only while some are queued */
    int ctl_head, ctl_n, ctl_cap;
    lp2p__waitq wq_ctl, wq_open, wq_ping;
    bool ping_send, ping_outstanding;
    uint32_t ping_id;
    uint64_t ping_round;
    int64_t ping_sent_us, ping_last_us, rtt_us;
    int64_t pong_due_ms; /* while a ping is queued or outstanding: its pong is late after this */
    int64_t last_rx_ms;  /* when the last frame header arrived */
    bool writer_on;     /* the writer task exists */
    bool writer_broken; /* a write failed: no more writes */
    uint8_t *wbuf;      /* the writer's batch (LP2P__Y_WBUF bytes), only while it runs */
    bool handed;        /* the reader delivered straight to a parked app reader: let it run next */
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
LP2P__PRIV void lp2p__ymx_hdr(uint8_t *p, uint8_t type, uint16_t flags, uint32_t id, uint32_t len) {
    p[0] = 0, p[1] = type;
    lp2p__put_be16(p + 2, flags);
    lp2p__put_be32(p + 4, id);
    lp2p__put_be32(p + 8, len);
}

LP2P__PRIV void lp2p__ymx_writer_main(void *arg);
LP2P__PRIV bool lp2p__ymx_spawn(lp2p__yamux *y, lp2p_task *t, void (*fn)(void *), bool pipe_user);

/* There is something to send: start the writer unless it runs (it sends until nothing is
 * left). No task means nothing can be sent: the session fails. */
LP2P__PRIV void lp2p__ymx_wake_writer(lp2p__yamux *y) {
    if (y->writer_on || y->writer_broken || !y->pipe) return;
    y->writer_on = lp2p__ymx_spawn(y, &y->writer, lp2p__ymx_writer_main, true);
    if (!y->writer_on && !y->dead) lp2p__ymx_fail(y, LP2P_ERR_LIMIT, -1);
}

LP2P__PRIV void lp2p__ymx_ref(lp2p__yamux *y) { y->refs++; }

LP2P__PRIV void lp2p__ymx_unref(lp2p__yamux *y) {
    if (--y->refs > 0) return;
    LP2P_ASSERT(!y->pipe && y->count == 0);
    lp2p__ctx *ctx = y->ctx;
    lp2p__free(ctx, y->slots, (size_t)y->cap * sizeof *y->slots);
    lp2p__free(ctx, y->ctl, (size_t)y->ctl_cap * LP2P__Y_HDR);
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
/* Standard-size chunks go through the host's buffer cache: a busy stream does not call the
 * allocator per frame, an idle host keeps none (the cache is trimmed). */
LP2P__PRIV lp2p__ychunk *lp2p__ymx_chunk_new(lp2p__yamux *y, uint32_t cap) {
    lp2p__ychunk *c = (lp2p__ychunk *)(cap == LP2P__Y_CHUNK_STD ? lp2p__cache_get(y->ctx, sizeof *c + cap)
                                                                 : lp2p__alloc(y->ctx, sizeof *c + cap));
    if (c) c->cap = cap;
    return c;
}

LP2P__PRIV void lp2p__ymx_chunk_free(lp2p__yamux *y, lp2p__ychunk *c) {
    if (c->cap == LP2P__Y_CHUNK_STD) lp2p__cache_put(y->ctx, c, sizeof *c + c->cap);
    else lp2p__free(y->ctx, c, sizeof *c + c->cap);
}

LP2P__PRIV void lp2p__ys_free_chunks(lp2p__ystream *st) {
    while (st->head) {
        lp2p__ychunk *c = st->head;
        st->head = c->next;
        lp2p__ymx_chunk_free(st->y, c);
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

/* Room for one more queued frame: the ring doubles (from 8) up to LP2P__Y_CTL entries. */
LP2P__PRIV int lp2p__ymx_ctl_grow(lp2p__yamux *y) {
    if (y->ctl_n < y->ctl_cap) return LP2P_OK;
    int cap = y->ctl_cap ? LP2P__MIN(y->ctl_cap * 2, LP2P__Y_CTL) : 8;
    uint8_t(*ring)[LP2P__Y_HDR] = (uint8_t(*)[LP2P__Y_HDR])lp2p__alloc(y->ctx, (size_t)cap * LP2P__Y_HDR);
    if (!ring) return LP2P_ERR_NOMEM;
    for (int i = 0; i < y->ctl_n; i++) memcpy(ring[i], y->ctl[(y->ctl_head + i) % y->ctl_cap], LP2P__Y_HDR);
    lp2p__free(y->ctx, y->ctl, (size_t)y->ctl_cap * LP2P__Y_HDR);
    y->ctl = ring, y->ctl_cap = cap, y->ctl_head = 0;
    return LP2P_OK;
}

/* The ring goes once it is empty (the writer ends with it). */
LP2P__PRIV void lp2p__ymx_ctl_release(lp2p__yamux *y) {
    if (y->ctl_n) return;
    lp2p__free(y->ctx, y->ctl, (size_t)y->ctl_cap * LP2P__Y_HDR);
    y->ctl = NULL, y->ctl_cap = 0, y->ctl_head = 0;
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
    if (lp2p__ymx_ctl_grow(y) != LP2P_OK) return wait ? LP2P_ERR_NOMEM : LP2P_ERR_LIMIT;
    lp2p__ymx_hdr(y->ctl[(y->ctl_head + y->ctl_n) % y->ctl_cap], type, flags, id, len);
    y->ctl_n++;
    lp2p__ymx_wake_writer(y);
    return LP2P_OK;
}

/* The session is dead and no writer will send what is queued: forget it. */
LP2P__PRIV void lp2p__ymx_drop_queued(lp2p__yamux *y) {
    lp2p__ystream *st;
    while ((st = lp2p__ymx_dirty_pop(y))) lp2p__ys_unref(st);
    y->ctl_n = 0;
    lp2p__ymx_ctl_release(y);
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
    lp2p_task self = lp2p__task_self();
    if (y->reader.id && self.id != y->reader.id) lp2p__task_cancel(y->s, y->reader);
    if (goaway >= 0) lp2p__ymx_wake_writer(y); /* the final flush */
    if (!y->writer_on) lp2p__ymx_drop_queued(y);
    if (y->cfg.on_close) y->cfg.on_close(y->cfg.user, y, err);
    lp2p__ymx_unref(y);
}

/* ---- flow control ----------------------------------------------------------------------- */
/* Window to grant now (and account it as granted). tune: this is a plain window update, so
 * apply go-yamux's rule - if the previous update was less than 4 RTT ago the window is too
 * small for the path: double it (bounded by max_window and the session budget). A measured
 * RTT under 1 ms counts as 1 ms: on loopback and LANs the wire RTT (~0.1 ms) is far below the
 * scheduling jitter of the two ends, and a window of ~1 ms of data stalls the sender whenever
 * the receiver is descheduled (512 MiB loopback upload on a loaded 2-CPU machine, median of
 * 6: 1.40 s with the 2 MiB windows the raw RTT gave, 1.20 s with 8 MiB). */
LP2P__PRIV uint32_t lp2p__ys_grant(lp2p__yamux *y, lp2p__ystream *st, bool tune) {
    if (st->recv_fin || st->rerr || !st->app_held) return 0;
    int64_t now = lp2p__now_us();
    int64_t rtt = LP2P__MAX(y->rtt_us, (int64_t)LP2P__Y_TUNE_RTT_MIN_US);
    if (tune && y->rtt_us > 0 && now - st->last_wu_us < 4 * rtt && st->recv_max < y->cfg.max_window) {
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

/* One batch of the writer (on its stack): frames built into y->wbuf, and for pipes with
 * writev the batch as a list of wbuf's runs and app writers' own buffers. */
typedef struct lp2p__ybatch {
    lp2p__iov iov[LP2P__Y_IOV];
    int niov;
    size_t mark, ext; /* wbuf bytes already in iov; batch bytes outside wbuf */
} lp2p__ybatch;

/* Put a writer's own buffer into the batch after wbuf[0, n) (pipes with writev only). */
LP2P__PRIV void lp2p__ymx_batch_ext(lp2p__yamux *y, lp2p__ybatch *bt, size_t n, const void *p, size_t k) {
    if (n > bt->mark) bt->iov[bt->niov++] = (lp2p__iov){y->wbuf + bt->mark, n - bt->mark};
    bt->iov[bt->niov++] = (lp2p__iov){p, k};
    bt->mark = n;
    bt->ext += k;
}

/* Data frames round-robin over ready streams, each <= one Noise frame with its header. When
 * the pipe takes buffer lists, payloads of LP2P__Y_ZC_MIN bytes or more are not copied: the
 * batch points into the app writer's buffer, which the pipe reads before it can wait
 * (pipe.h), that is before the woken app writer can run again. */
LP2P__PRIV size_t lp2p__ymx_build_data(lp2p__yamux *y, lp2p__ybatch *bt, size_t n) {
    bool zc = y->pipe->vt->writev != NULL;
    uint8_t *b = y->wbuf;
    while (y->ready_head && LP2P__Y_WBUF - (n + bt->ext) > LP2P__Y_HDR) {
        lp2p__ystream *st = y->ready_head;
        size_t room = LP2P__Y_WBUF - (n + bt->ext) - LP2P__Y_HDR;
        size_t k = LP2P__MIN(LP2P__MIN(st->wlen, (size_t)st->send_window), LP2P__MIN(room, (size_t)LP2P__YAMUX_MAX_PAYLOAD));
        if (k == room && room < 4096 && k < st->wlen) break; /* no tiny tail fragments: next batch */
        y->ready_head = st->ready_next;
        if (!y->ready_head) y->ready_tail = NULL;
        st->in_ready = false;
        if (!k || st->werr) continue;
        lp2p__ymx_hdr(b + n, LP2P__Y_DATA, lp2p__ys_take_open_flags(st), st->id, (uint32_t)k);
        if (zc && k >= LP2P__Y_ZC_MIN && bt->niov + 3 <= LP2P__Y_IOV) {
            n += LP2P__Y_HDR;
            lp2p__ymx_batch_ext(y, bt, n, st->wptr, k);
        } else {
            memcpy(b + n + LP2P__Y_HDR, st->wptr, k);
            n += LP2P__Y_HDR + k;
        }
        st->wptr += k, st->wlen -= k, st->send_window -= k;
        if (!st->wlen) lp2p__waitq_wake_all(y->s, &st->wq);
        else if (st->send_window) lp2p__ys_ready_push(st);
    }
    return n;
}

/* One batch: our ping, pongs and refusals, stream control frames, then data (or, at the
 * final flush, GoAway instead of data). */
LP2P__PRIV size_t lp2p__ymx_build(lp2p__yamux *y, lp2p__ybatch *bt, bool final) {
    uint8_t *b = y->wbuf;
    size_t n = 0;
    bt->niov = 0, bt->mark = 0, bt->ext = 0;
    if (y->ping_send && !final) {
        lp2p__ymx_hdr(b, LP2P__Y_PING, LP2P__Y_SYN, 0, y->ping_id);
        n += LP2P__Y_HDR;
        y->ping_send = false, y->ping_outstanding = true;
        y->ping_sent_us = lp2p__now_us();
    }
    bool popped = y->ctl_n > 0;
    for (; y->ctl_n && n + LP2P__Y_HDR <= LP2P__Y_WBUF; y->ctl_n--) {
        memcpy(b + n, y->ctl[y->ctl_head], LP2P__Y_HDR);
        y->ctl_head = (y->ctl_head + 1) % y->ctl_cap;
        n += LP2P__Y_HDR;
    }
    if (popped) lp2p__waitq_wake_all(y->s, &y->wq_ctl);
    while (y->dirty_head && n + 2 * LP2P__Y_HDR <= LP2P__Y_WBUF) {
        lp2p__ystream *st = lp2p__ymx_dirty_pop(y);
        n += lp2p__ys_build_ctl(y, st, b + n);
        lp2p__ys_unref(st);
    }
    if (!final) return lp2p__ymx_build_data(y, bt, n);
    if (y->goaway_send >= 0 && n + LP2P__Y_HDR <= LP2P__Y_WBUF) {
        lp2p__ymx_hdr(b + n, LP2P__Y_GOAWAY, 0, 0, (uint32_t)y->goaway_send);
        n += LP2P__Y_HDR;
    }
    return n;
}

/* Send a built batch: wbuf[0, n) alone, or the buffer list. */
LP2P__PRIV int lp2p__ymx_flush(lp2p__yamux *y, lp2p__ybatch *bt, size_t n, int64_t deadline) {
    if (!bt->niov) return lp2p__pipe_write(y->pipe, y->wbuf, n, deadline);
    if (n > bt->mark) bt->iov[bt->niov++] = (lp2p__iov){y->wbuf + bt->mark, n - bt->mark};
    return y->pipe->vt->writev(y->pipe, bt->iov, bt->niov, deadline);
}

LP2P__PRIV bool lp2p__ymx_writer_has_work(lp2p__yamux *y) {
    return y->ping_send || y->ctl_n || y->dirty_head || y->ready_head;
}

/* Runs while there is something to send (see lp2p__ymx_wake_writer), then ends. After the
 * session died it sends the final flush once (when asked for) and drops what is left. */
LP2P__PRIV void lp2p__ymx_writer_main(void *arg) {
    lp2p__yamux *y = (lp2p__yamux *)arg;
    lp2p__ybatch bt;
    y->wbuf = (uint8_t *)lp2p__cache_get(y->ctx, LP2P__Y_WBUF);
    if (!y->wbuf) {
        y->writer_broken = true;
        lp2p__ymx_fail(y, LP2P_ERR_NOMEM, -1);
    }
    while (!y->dead && lp2p__ymx_writer_has_work(y)) {
        size_t n = lp2p__ymx_build(y, &bt, false);
        if (!n && !bt.niov) continue;
        int rc = lp2p__ymx_flush(y, &bt, n, lp2p_deadline_in(LP2P__Y_WRITE_TIMEOUT_MS));
        if (rc < 0) {
            if (!y->dead) LP2P__DEBUG(y->ctx, "yamux: write failed: %s", lp2p_strerror(rc));
            y->writer_broken = true;
            lp2p__ymx_fail(y, rc, -1);
        }
    }
    if (y->dead && !y->writer_broken && y->goaway_send >= 0) {
        size_t n = lp2p__ymx_build(y, &bt, true);
        y->goaway_send = -1; /* once */
        if (n) (void)lp2p__pipe_write(y->pipe, y->wbuf, n, lp2p_deadline_in(LP2P__Y_CLOSE_FLUSH_MS));
    }
    if (y->dead) lp2p__ymx_drop_queued(y);
    lp2p__ymx_ctl_release(y);
    lp2p__cache_put(y->ctx, y->wbuf, LP2P__Y_WBUF);
    y->wbuf = NULL;
    y->writer_on = false;
    lp2p__ymx_task_exit(y, true);
}

/* ---- reader task: receiving data ---------------------------------------------------------- */
/* Reads inside a frame: a peer that stops mid-frame for keepalive_ms + ping_timeout_ms is as
 * dead as one that leaves a keepalive ping unanswered (its pong could only follow the frame). */
LP2P__PRIV int64_t lp2p__ymx_body_deadline(lp2p__yamux *y) {
    if (y->cfg.keepalive_ms <= 0) return LP2P_FOREVER;
    return y->last_rx_ms + y->cfg.keepalive_ms + y->cfg.ping_timeout_ms;
}

LP2P__PRIV int lp2p__ymx_discard(lp2p__yamux *y, uint32_t len) {
    uint8_t tmp[LP2P__Y_SMALL]; /* on the reader's stack: nothing per session stays allocated */
    while (len) {
        uint32_t k = LP2P__MIN(len, (uint32_t)sizeof tmp);
        int rc = lp2p__pipe_read_full(y->pipe, tmp, k, lp2p__ymx_body_deadline(y));
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
    lp2p__ychunk *c = lp2p__ymx_chunk_new(st->y, cap);
    if (!c) return LP2P_ERR_NOMEM;
    c->rpos = 0, c->wpos = (uint32_t)n;
    memcpy(c->data, p, n);
    lp2p__ys_link(st, c);
    st->buffered += n;
    return LP2P_OK;
}

/* A reader is parked on st with nothing buffered: copy what the pipe already holds (never
 * waiting, so the reader's buffer is only touched while it is parked) straight into its
 * buffer. Returns the bytes of the payload still to read, or an error. */
LP2P__PRIV ptrdiff_t lp2p__ys_deliver_direct(lp2p__yamux *y, lp2p__ystream *st, uint32_t len) {
    while (len && st->dst && !st->buffered && st->dst_len < st->dst_cap) {
        size_t want = LP2P__MIN((size_t)len, st->dst_cap - st->dst_len);
        ptrdiff_t r = lp2p__pipe_read(y->pipe, st->dst + st->dst_len, want, LP2P_NOWAIT);
        if (r == LP2P_ERR_TIMEOUT) break; /* the rest is not here yet */
        if (r <= 0) return r == 0 ? LP2P_ERR_EOF : r;
        st->dst_len += (size_t)r, len -= (uint32_t)r;
        y->handed = true;
    }
    return len;
}

/* Read a data payload for st (counted against its window already): into a parked reader's
 * buffer as far as possible, the rest into the stream's chunks (large payloads are read
 * straight into them: one copy pipe -> chunk). */
LP2P__PRIV int lp2p__ys_recv_payload(lp2p__yamux *y, lp2p__ystream *st, uint32_t len) {
    if (!lp2p__ys_wants_data(st)) return lp2p__ymx_discard(y, len);
    ptrdiff_t left = lp2p__ys_deliver_direct(y, st, len);
    if (left < 0) return (int)left;
    len = (uint32_t)left;
    int rc = LP2P_OK;
    while (len && rc == LP2P_OK) {
        if (len <= LP2P__Y_SMALL) {
            uint8_t tmp[LP2P__Y_SMALL]; /* not the stream's chunks: the app may free them meanwhile */
            rc = lp2p__pipe_read_full(y->pipe, tmp, len, lp2p__ymx_body_deadline(y));
            if (rc == LP2P_OK && lp2p__ys_wants_data(st)) rc = lp2p__ys_append(st, tmp, len);
            break;
        }
        uint32_t k = LP2P__MIN(len, LP2P__Y_CHUNK_STD);
        lp2p__ychunk *c = lp2p__ymx_chunk_new(y, k >= LP2P__Y_CHUNK_MIN_STD ? LP2P__Y_CHUNK_STD : k);
        if (!c) return LP2P_ERR_NOMEM;
        c->rpos = 0, c->wpos = k;
        rc = lp2p__pipe_read_full(y->pipe, c->data, k, lp2p__ymx_body_deadline(y));
        if (rc == LP2P_OK && lp2p__ys_wants_data(st)) {
            lp2p__ys_link(st, c);
            st->buffered += k;
        } else lp2p__ymx_chunk_free(y, c);
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
    st->last_wu_us = lp2p__now_us();
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
    int64_t rtt = LP2P__MAX(lp2p__now_us() - y->ping_sent_us, (int64_t)1);
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

/* ---- keepalive: the reader's wait for the next frame ends when a ping is due ---------------- *
 * No task of its own: an idle session parks only its reader. */
LP2P__PRIV void lp2p__ymx_ping_queue(lp2p__yamux *y) {
    y->ping_id++;
    y->ping_send = true, y->ping_outstanding = false;
    y->pong_due_ms = lp2p_deadline_in(y->cfg.ping_timeout_ms);
    lp2p__ymx_wake_writer(y);
}

/* When the reader must stop waiting for a frame header: a keepalive ping is due, or a pong. */
LP2P__PRIV int64_t lp2p__ymx_keepalive_due(lp2p__yamux *y) {
    if (y->cfg.keepalive_ms <= 0) return LP2P_FOREVER;
    if (y->ping_send || y->ping_outstanding) return y->pong_due_ms;
    return y->last_rx_ms + y->cfg.keepalive_ms;
}

/* That time came: ping if nothing was received for keepalive_ms; a ping without pong for
 * ping_timeout_ms ends the session (ERR_TIMEOUT). */
LP2P__PRIV int lp2p__ymx_keepalive(lp2p__yamux *y) {
    int64_t now = lp2p_now();
    if (y->ping_send || y->ping_outstanding) {
        if (now < y->pong_due_ms) return LP2P_OK;
        LP2P__WARN(y->ctx, LP2P_ERR_TIMEOUT, "yamux: no pong within ping_timeout_ms (%d ms): closing session",
                   y->cfg.ping_timeout_ms);
        return LP2P_ERR_TIMEOUT;
    }
    if (now >= y->last_rx_ms + y->cfg.keepalive_ms) lp2p__ymx_ping_queue(y);
    return LP2P_OK;
}

/* One frame header, possibly over several reads (a keepalive deadline may cut a read short). */
LP2P__PRIV void lp2p__ymx_reader_main(void *arg) {
    lp2p__yamux *y = (lp2p__yamux *)arg;
    uint8_t h[LP2P__Y_HDR];
    size_t have = 0;
    if (!y->dead) lp2p__ymx_ping_queue(y); /* at once: the RTT drives window tuning (go and js do the same) */
    while (!y->dead) {
        if (y->handed) { /* let that reader take the data and park again with an empty buffer, so
                          * the next frame goes straight to it too instead of into chunks */
            y->handed = false;
            (void)lp2p__yield(y->s); /* canceled: the session is ending, the loop sees it */
            continue;
        }
        ptrdiff_t r = lp2p__pipe_read(y->pipe, h + have, sizeof h - have, lp2p__ymx_keepalive_due(y));
        int rc = r > 0 ? LP2P_OK : r == 0 ? LP2P_ERR_EOF : (int)r;
        if (r > 0 && (have += (size_t)r) == sizeof h) {
            have = 0;
            y->last_rx_ms = lp2p_now();
            rc = lp2p__ymx_on_frame(y, h);
            if (rc == LP2P_ERR_TIMEOUT)
                LP2P__WARN(y->ctx, rc, "yamux: peer stopped inside a frame for keepalive_ms + ping_timeout_ms: closing session");
        } else if (r == LP2P_ERR_TIMEOUT) {
            rc = lp2p__ymx_keepalive(y);
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

/* ---- pings ---------------------------------------------------------------------------------- */
/* Ping (joining an outstanding one); RTT in microseconds or an error. */
LP2P__PRIV int64_t lp2p__ymx_ping_us(lp2p__yamux *y, int64_t deadline) {
    if (y->dead) return LP2P_ERR_CLOSED;
    bool stale = y->ping_outstanding && lp2p__now_us() - y->ping_sent_us > (int64_t)y->cfg.ping_timeout_ms * 1000;
    if ((!y->ping_outstanding && !y->ping_send) || stale) lp2p__ymx_ping_queue(y);
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
            lp2p__ymx_chunk_free(st->y, c);
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
        st->dst = (uint8_t *)buf, st->dst_cap = cap, st->dst_len = 0;
        int rc = lp2p__waitq_wait(st->y->s, &st->rq, deadline);
        size_t got = st->dst_len; /* delivered while we were parked: ours even after a timeout */
        st->dst = NULL, st->dst_cap = st->dst_len = 0;
        if (got) {
            r = (ptrdiff_t)got;
            lp2p__ys_after_read(st);
            break;
        }
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
    static const lp2p__pipe_vt vt = {lp2p__ys_read,  lp2p__ys_write, lp2p__ys_close_write,
                                     lp2p__ys_reset, lp2p__ys_close, NULL};
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
        y->cap = 16;
        y->slots = (lp2p__ystream **)lp2p__zalloc(ctx, y->cap * sizeof *y->slots);
    }
    if (!y || !y->slots) {
        if (y) {
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
    bool ok = lp2p__ymx_spawn(y, &y->reader, lp2p__ymx_reader_main, true);
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
/* swarm.c - L5: listeners, dialing (dedup, limits), the connection upgrader, the connection
 * table and the peerstore.
 *
 * Upgrade order (libp2p/specs connections/README.md): multistream-select -> /noise ->
 * (muxer from the Noise early negotiation, inlined-muxer-negotiation.md, or multistream) ->
 * /yamux/1.0.0. The dialer pipelines the multistream header, the /noise proposal and the
 * first Noise message in one write (lazy select, as rust's V1Lazy), so a dial costs the TCP
 * handshake + 1.5 RTT of Noise before the first stream.
 * Depends on: host.h (tcp, mss, noise, yamux, multiaddr, crypto, runtime). */
// (amalgamated) #include "host.h"

static const char *const lp2p__muxers[] = {LP2P__YAMUX_PROTO};

/* ---- peerstore ------------------------------------------------------------------------ */
LP2P__PRIV lp2p__peer *lp2p__peerstore_get(lp2p_host *h, const lp2p_peer_id *id, bool create) {
    for (lp2p__peer *p = h->peers; p; p = p->next)
        if (lp2p_peer_id_eq(&p->id, id)) return p;
    if (!create) return NULL;
    lp2p__peer *p = (lp2p__peer *)lp2p__zalloc(&h->ctx, sizeof *p);
    if (!p) return NULL;
    p->id = *id;
    p->next = h->peers;
    h->peers = p;
    return p;
}

LP2P__PRIV void lp2p__peerstore_add_addr(lp2p_host *h, const lp2p_peer_id *id, const lp2p__ma *ma, int64_t ttl_ms) {
    lp2p__peer *p = lp2p__peerstore_get(h, id, true);
    lp2p__ma base;
    if (!p) return;
    lp2p__ma_split_p2p(ma, &base, NULL);
    int64_t exp = ttl_ms < 0 ? LP2P_FOREVER : lp2p_now() + ttl_ms;
    int slot = -1, oldest = 0;
    for (int i = 0; i < p->n_addrs; i++) {
        if (lp2p__ma_eq(&p->addrs[i].ma, &base)) {
            slot = i;
            break;
        }
        if (p->addrs[i].expires >= 0 &&
            (p->addrs[oldest].expires < 0 || p->addrs[i].expires < p->addrs[oldest].expires))
            oldest = i;
    }
    if (slot < 0 && p->n_addrs == p->cap_addrs && p->cap_addrs < LP2P__MAX_PEER_ADDRS) {
        /* most peers (dialers without listen addresses) never get one: no array for them */
        int cap = p->cap_addrs ? LP2P__MIN(p->cap_addrs * 2, LP2P__MAX_PEER_ADDRS) : 2;
        lp2p__peer_addr *a = (lp2p__peer_addr *)lp2p__realloc(&h->ctx, p->addrs, sizeof *a * (size_t)p->cap_addrs,
                                                                sizeof *a * (size_t)cap);
        if (a) p->addrs = a, p->cap_addrs = cap;
    }
    if (slot < 0 && p->n_addrs == 0 && p->cap_addrs == 0) return; /* out of memory: not kept */
    if (slot < 0) slot = p->n_addrs < p->cap_addrs ? p->n_addrs++ : oldest;
    else if (p->addrs[slot].expires < 0 || (exp >= 0 && p->addrs[slot].expires > exp)) return; /* keep the longer TTL */
    p->addrs[slot].ma = base;
    p->addrs[slot].expires = exp;
}

static void lp2p__free_strv(lp2p__ctx *ctx, char **v, int n) {
    for (int i = 0; i < n; i++) lp2p__strfree(ctx, v[i]);
    lp2p__free(ctx, v, sizeof(char *) * (size_t)n);
}

LP2P__PRIV void lp2p__peerstore_set_protocols(lp2p_host *h, lp2p__peer *p, char **protos, int n) {
    lp2p__free_strv(&h->ctx, p->protocols, p->n_protocols);
    p->protocols = protos, p->n_protocols = n;
}

LP2P__PRIV void lp2p__peerstore_set_record(lp2p_host *h, lp2p__peer *p, const uint8_t *env, size_t len) {
    uint8_t *copy = len ? (uint8_t *)lp2p__alloc(&h->ctx, len) : NULL;
    if (len && !copy) return;
    if (copy) memcpy(copy, env, len);
    lp2p__free(&h->ctx, p->record, p->record_len);
    p->record = copy, p->record_len = copy ? len : 0;
}

static void lp2p__peer_free(lp2p_host *h, lp2p__peer *p) {
    lp2p__free(&h->ctx, p->pubkey, p->pubkey_len);
    lp2p__free(&h->ctx, p->record, p->record_len);
    lp2p__free(&h->ctx, p->addrs, sizeof *p->addrs * (size_t)p->cap_addrs);
    lp2p__free_strv(&h->ctx, p->protocols, p->n_protocols);
    lp2p__strfree(&h->ctx, p->agent_version);
    lp2p__strfree(&h->ctx, p->protocol_version);
    lp2p__free(&h->ctx, p, sizeof *p);
}

LP2P__PRIV void lp2p__peerstore_free(lp2p_host *h) {
    while (h->peers) {
        lp2p__peer *p = h->peers;
        h->peers = p->next;
        lp2p__peer_free(h, p);
    }
}

/* Forget peers we are not connected to whose addresses have all expired (peers heard of in
 * DHT answers would otherwise pile up forever). */
LP2P__PRIV void lp2p__peerstore_gc(lp2p_host *h, int64_t now) {
    for (lp2p__peer **pp = &h->peers; *pp;) {
        lp2p__peer *p = *pp;
        bool keep = lp2p__swarm_find_conn(h, &p->id) != NULL;
        for (int i = 0; i < p->n_addrs && !keep; i++) keep = p->addrs[i].expires < 0 || p->addrs[i].expires >= now;
        for (lp2p__dial *d = h->dials; d && !keep; d = d->next) keep = lp2p_peer_id_eq(&d->peer, &p->id);
        if (keep) {
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        lp2p__peer_free(h, p);
    }
}

/* ---- connections ------------------------------------------------------------------------ */
/* A connection is freed by the reaper (never inside its own session's reader task) once it
 * is closed and nothing references it. */
LP2P__PRIV void lp2p__conn_unref(lp2p__conn *c) {
    if (c && --c->refs == 0) {
        c->next = c->h->graveyard;
        c->h->graveyard = c;
    }
}

LP2P__PRIV void lp2p__swarm_reap(lp2p_host *h) {
    while (h->graveyard) {
        lp2p__conn *c = h->graveyard;
        h->graveyard = c->next;
        if (c->mux) lp2p__yamux_free(c->mux);
        lp2p__free(&h->ctx, c, sizeof *c);
    }
}


/* The best live connection: a direct one before a limited (relayed) one. */
LP2P__PRIV lp2p__conn *lp2p__swarm_find_conn(lp2p_host *h, const lp2p_peer_id *peer) {
    lp2p__conn *limited = NULL;
    for (lp2p__conn *c = h->conns; c; c = c->next)
        if (!c->closed && lp2p_peer_id_eq(&c->peer, peer)) {
            if (!c->limited) return c;
            if (!limited) limited = c;
        }
    return limited;
}

LP2P__PRIV bool lp2p__ma_is_circuit(const lp2p__ma *ma) {
    size_t off = 0, vn;
    uint32_t code;
    const uint8_t *v;
    while (lp2p__ma_next(ma, &off, &code, &v, &vn))
        if (code == LP2P__MA_P2P_CIRCUIT) return true;
    return false;
}

static bool lp2p__ma_is_127(const lp2p__ma *ma) {
    static const uint8_t one16[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    return (ma->len >= 5 && ma->b[0] == LP2P__MA_IP4 && ma->b[1] == 127) ||
           (ma->len >= 17 && ma->b[0] == LP2P__MA_IP6 && memcmp(ma->b + 1, one16, 16) == 0);
}

LP2P__PRIV int lp2p__swarm_listen_port(lp2p_host *h, const lp2p__ma *addr) {
    for (lp2p__listener *l = h->listeners; l; l = l->next) {
        size_t off = 0, vn;
        uint32_t code = 0, code2 = 0;
        const uint8_t *v, *pv;
        if (!l->tcp || !addr->len || l->addr.b[0] != addr->b[0]) continue; /* same family (ip4/ip6 code) */
        lp2p__ma_next(&l->addr, &off, &code, &v, &vn);
        if (lp2p__ma_next(&l->addr, &off, &code2, &pv, &vn) && code2 == LP2P__MA_TCP) return lp2p__be16(pv);
    }
    return 0;
}

LP2P__PRIV void lp2p__swarm_add_notifee(lp2p_host *h, lp2p__notifee *n) {
    n->next = h->notifees;
    h->notifees = n;
}

LP2P__PRIV void lp2p__swarm_remove_notifee(lp2p_host *h, lp2p__notifee *n) {
    for (lp2p__notifee **pp = &h->notifees; *pp; pp = &(*pp)->next)
        if (*pp == n) {
            *pp = n->next;
            return;
        }
}

static void lp2p__conn_unlink(lp2p__conn *c) {
    lp2p_host *h = c->h;
    for (lp2p__conn **pp = &h->conns; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            h->n_conns--;
            break;
        }
}

/* yamux session ended: runs in its reader task, so the session is freed later (last unref). */
static void lp2p__conn_on_close(void *user, lp2p__yamux *y, int err) {
    lp2p__conn *c = (lp2p__conn *)user;
    lp2p_host *h = c->h;
    char id[LP2P_PEER_ID_STRLEN];
    (void)y;
    if (c->closed) return;
    c->closed = true;
    lp2p__conn_unlink(c);
    c->identified = true;
    lp2p__waitq_wake_all(h->sched, &c->identify_wait);
    lp2p_peer_id_str(&c->peer, id, sizeof id);
    LP2P__DEBUG(&h->ctx, "connection to %s closed: %s", id, lp2p_strerror(err));
    for (lp2p__notifee *n = h->notifees; n; n = n->next)
        if (n->disconnected) n->disconnected(n->user, c);
    if (!h->freeing) lp2p__host_emit(h, LP2P_EVENT_PEER_DISCONNECTED, &c->peer, NULL, NULL, NULL, err);
    c->next = NULL;
    lp2p__conn_unref(c); /* the host list's reference */
}

/* Close the session (GoAway); the connection leaves the host's table at once. */
LP2P__PRIV void lp2p__conn_close(lp2p__conn *c) {
    if (!c->closed && c->mux) lp2p__yamux_close(c->mux);
    if (!c->closed) lp2p__conn_on_close(c, c->mux, LP2P_ERR_CLOSED); /* the session reports it later, or not */
}

static void lp2p__conn_on_stream(void *user, lp2p__yamux *y, lp2p__pipe *stream) {
    (void)y;
    lp2p__host_on_stream((lp2p__conn *)user, stream);
}

/* Wrap an upgraded secure pipe into a connection and announce it. Takes ownership of secure. */
static int lp2p__conn_setup(lp2p_host *h, lp2p__pipe *secure, const lp2p__noise_result *nr, bool outbound,
                            const lp2p__ma *local, const lp2p__ma *remote, bool limited, lp2p__conn **out) {
    lp2p__conn *c = (lp2p__conn *)lp2p__zalloc(&h->ctx, sizeof *c);
    if (!c) {
        secure->vt->reset(secure);
        return LP2P_ERR_NOMEM;
    }
    c->h = h, c->peer = nr->remote_id, c->outbound = outbound, c->opened_at = lp2p_now(), c->limited = limited;
    if (local) c->local = *local;
    if (remote) c->remote = *remote;
    c->refs = 1; /* the host list's; callers that keep c take their own */
    lp2p__yamux_cfg ycfg;
    memset(&ycfg, 0, sizeof ycfg);
    ycfg.is_client = outbound;
    ycfg.init_window = (uint32_t)h->cfg.stream_window;
    ycfg.max_window = (uint32_t)h->cfg.max_stream_buffer;
    ycfg.max_inbound = h->cfg.max_streams_per_conn;
    ycfg.keepalive_ms = h->cfg.keepalive_ms;
    ycfg.on_stream = lp2p__conn_on_stream;
    ycfg.on_close = lp2p__conn_on_close;
    ycfg.user = c;
    int rc = lp2p__yamux_new(h->sched, secure, &ycfg, &c->mux); /* owns secure, also on failure */
    if (rc) {
        lp2p__free(&h->ctx, c, sizeof *c);
        return rc;
    }
    c->next = h->conns;
    h->conns = c;
    h->n_conns++;
    lp2p__peer *p = lp2p__peerstore_get(h, &c->peer, true);
    if (p && !p->pubkey && nr->remote_pubkey_len) {
        p->pubkey = (uint8_t *)lp2p__alloc(&h->ctx, nr->remote_pubkey_len);
        if (p->pubkey) memcpy(p->pubkey, nr->remote_pubkey, nr->remote_pubkey_len), p->pubkey_len = nr->remote_pubkey_len;
    }
    if (outbound && remote && !limited) lp2p__peerstore_add_addr(h, &c->peer, remote, 60 * 60 * 1000);
    char addr[LP2P__MA_STRLEN];
    if (remote) lp2p__ma_str(remote, addr, sizeof addr);
    lp2p__host_emit(h, LP2P_EVENT_PEER_CONNECTED, &c->peer, remote ? addr : NULL, NULL, NULL, 0);
    for (lp2p__notifee *n = h->notifees; n; n = n->next)
        if (n->connected) n->connected(n->user, c);
    lp2p__waitq_wake_all(h->sched, &h->conn_wait);
    *out = c;
    return LP2P_OK;
}

/* ---- upgrade (both roles) ------------------------------------------------------------------ */
static bool lp2p__match_noise(void *user, const char *proto) {
    (void)user;
    return strcmp(proto, LP2P__NOISE_PROTO) == 0;
}
static bool lp2p__match_yamux(void *user, const char *proto) {
    (void)user;
    return strcmp(proto, LP2P__YAMUX_PROTO) == 0;
}
static int lp2p__list_noise(void *user, const char **protos, int max) {
    (void)user;
    if (max > 0) protos[0] = LP2P__NOISE_PROTO;
    return 1;
}
static int lp2p__list_yamux(void *user, const char **protos, int max) {
    (void)user;
    if (max > 0) protos[0] = LP2P__YAMUX_PROTO;
    return 1;
}

/* Secure + multiplex raw. raw is always consumed (owned by the connection or freed). */
static int lp2p__upgrade(lp2p_host *h, lp2p__pipe *raw, bool outbound, const lp2p_peer_id *expected,
                         const lp2p__ma *local, const lp2p__ma *remote, bool limited, lp2p__conn **out,
                         int64_t deadline) {
    char proto[LP2P__MSS_MAX + 1];
    lp2p__pipe *p = raw, *secure = NULL;
    lp2p__noise_result *nr = (lp2p__noise_result *)lp2p__alloc(&h->ctx, sizeof *nr);
    int rc;
    if (!nr) {
        raw->vt->reset(raw);
        return LP2P_ERR_NOMEM;
    }
    if (outbound) rc = lp2p__mss_lazy(&h->ctx, raw, LP2P__NOISE_PROTO, &p);
    else rc = lp2p__mss_handle(raw, lp2p__match_noise, lp2p__list_noise, NULL, proto, sizeof proto, deadline);
    if (rc < 0) goto fail;
    rc = lp2p__noise_handshake(&h->ctx, p, &h->identity, outbound, expected, lp2p__muxers, 1, &secure, nr, deadline);
    if (rc) goto fail;
    p = secure;
    if (!nr->muxer[0]) { /* the peer did not negotiate a muxer inside Noise: multistream it */
        if (outbound) rc = lp2p__mss_select(secure, lp2p__muxers, 1, deadline);
        else rc = lp2p__mss_handle(secure, lp2p__match_yamux, lp2p__list_yamux, NULL, proto, sizeof proto, deadline);
        if (rc < 0) goto fail;
    } else if (strcmp(nr->muxer, LP2P__YAMUX_PROTO) != 0) {
        rc = LP2P_ERR_HANDSHAKE;
        goto fail;
    }
    rc = lp2p__conn_setup(h, secure, nr, outbound, local, remote, limited, out);
    lp2p__free(&h->ctx, nr, sizeof *nr);
    return rc;
fail:
    p->vt->reset(p);
    lp2p__free(&h->ctx, nr, sizeof *nr);
    return rc;
}

LP2P__PRIV int lp2p__swarm_upgrade(lp2p_host *h, lp2p__pipe *raw, bool initiator, const lp2p_peer_id *expected,
                                   const lp2p__ma *local, const lp2p__ma *remote, bool limited, lp2p__conn **out_ref,
                                   int64_t deadline) {
    lp2p__conn *c = NULL;
    int rc = lp2p__upgrade(h, raw, initiator, expected, local, remote, limited, &c, deadline);
    if (rc == LP2P_OK && out_ref) c->refs++, *out_ref = c;
    return rc;
}

/* ---- listening ------------------------------------------------------------------------------ */
typedef struct lp2p__inbound {
    lp2p_host *h;
    lp2p__pipe *raw;
    lp2p__ma local, remote;
} lp2p__inbound;

static void lp2p__inbound_task(void *arg) {
    lp2p__inbound *in = (lp2p__inbound *)arg;
    lp2p_host *h = in->h;
    lp2p__conn *c = NULL;
    char addr[LP2P__MA_STRLEN];
    /* a hole-punched TCP connection may arrive at the listener instead of our dial (the SYNs did
     * not cross): it keeps the role DCUtR gave us (connections/hole-punching.md) */
    lp2p_peer_id punch_peer;
    bool initiator = h->punch_client && h->punch_client(h, &in->remote, &punch_peer);
    int rc = lp2p__upgrade(h, in->raw, initiator, initiator ? &punch_peer : NULL, &in->local, &in->remote, false, &c,
                           lp2p_deadline_in(h->cfg.handshake_timeout_ms));
    if (rc) {
        lp2p__ma_str(&in->remote, addr, sizeof addr);
        LP2P__INFO(&h->ctx, "inbound connection from %s failed to upgrade: %s", addr, lp2p_strerror(rc));
    }
    h->n_inbound--; /* inbound upgrades count as pending connections */
    lp2p__free(&h->ctx, in, sizeof *in);
}

static void lp2p__accept_task(void *arg) {
    lp2p__listener *l = (lp2p__listener *)arg;
    lp2p_host *h = l->h;
    while (l->tcp) { /* NULL: the host closed it before this task ever ran */
        lp2p__inbound *in = (lp2p__inbound *)lp2p__zalloc(&h->ctx, sizeof *in);
        if (!in) {
            lp2p__sleep_until(h->sched, lp2p_deadline_in(100));
            continue;
        }
        in->h = h;
        int rc = lp2p__tcp_accept(l->tcp, &in->raw, &in->remote, LP2P_FOREVER);
        if (rc) {
            lp2p__free(&h->ctx, in, sizeof *in);
            if (rc == LP2P_ERR_CANCELED || rc == LP2P_ERR_CLOSED) return;
            LP2P__WARN(&h->ctx, rc, "accept failed: %s", lp2p_strerror(rc));
            if (lp2p__sleep_until(h->sched, lp2p_deadline_in(100)) == LP2P_ERR_CANCELED) return;
            continue;
        }
        in->local = l->addr;
        if (h->n_conns + h->n_inbound >= h->cfg.max_connections) {
            LP2P__WARN(&h->ctx, LP2P_ERR_LIMIT, "max_connections=%d reached: inbound connection refused",
                       h->cfg.max_connections);
            in->raw->vt->reset(in->raw);
            lp2p__free(&h->ctx, in, sizeof *in);
            continue;
        }
        h->n_inbound++;
        if (!lp2p__spawn(h->sched, lp2p__inbound_task, in).id) {
            h->n_inbound--;
            in->raw->vt->reset(in->raw);
            lp2p__free(&h->ctx, in, sizeof *in);
        }
    }
}

LP2P__PRIV int lp2p__swarm_listen(lp2p_host *h, const char *text) {
    lp2p__ma ma;
    const char *why = NULL;
    int rc = lp2p__ma_parse(text, &ma, &why);
    if (rc) {
        LP2P__WARN(&h->ctx, rc, "listen address '%s': %s", text, why ? why : "malformed");
        return rc;
    }
    lp2p__listener *l = (lp2p__listener *)lp2p__zalloc(&h->ctx, sizeof *l);
    if (!l) return LP2P_ERR_NOMEM;
    l->h = h;
    rc = lp2p__tcp_listen(h->sched, &ma, &l->tcp, &l->addr);
    if (rc) {
        LP2P__WARN(&h->ctx, rc, "cannot listen on %s: %s", text, lp2p_strerror(rc));
        lp2p__free(&h->ctx, l, sizeof *l);
        return rc;
    }
    l->task = lp2p__spawn(h->sched, lp2p__accept_task, l);
    if (!l->task.id) {
        lp2p__tcp_listener_free(l->tcp);
        lp2p__free(&h->ctx, l, sizeof *l);
        return LP2P_ERR_LIMIT;
    }
    l->next = h->listeners;
    h->listeners = l;
    lp2p__host_addrs_changed(h);
    char addr[LP2P__MA_STRLEN];
    lp2p__ma_str(&l->addr, addr, sizeof addr);
    lp2p__host_emit(h, LP2P_EVENT_LISTEN, &h->identity.id, addr, NULL, NULL, 0);
    return LP2P_OK;
}

/* ---- dialing ------------------------------------------------------------------------------------ */
/* Resolve peer_or_addr into a peer ID and the addresses to try (n_out). */
static int lp2p__dial_targets(lp2p_host *h, const char *peer_or_addr, lp2p_peer_id *peer, lp2p__ma *addrs, int max,
                              int *n_out) {
    int n = 0;
    if (peer_or_addr[0] == '/') {
        lp2p__ma ma;
        const char *why = NULL;
        int rc = lp2p__ma_parse(peer_or_addr, &ma, &why);
        if (rc) {
            LP2P__WARN(&h->ctx, rc, "dial '%s': %s", peer_or_addr, why ? why : "malformed multiaddr");
            return rc;
        }
        if (!lp2p__ma_split_p2p(&ma, &addrs[0], peer)) {
            LP2P__WARN(&h->ctx, LP2P_ERR_BADADDR, "dial '%s': the address must end in /p2p/<peer-id>", peer_or_addr);
            return LP2P_ERR_BADADDR;
        }
        n = 1;
    } else if (lp2p_peer_id_parse(peer_or_addr, peer) != LP2P_OK) {
        LP2P__WARN(&h->ctx, LP2P_ERR_BADADDR, "dial '%s': neither a multiaddr nor a peer ID", peer_or_addr);
        return LP2P_ERR_BADADDR;
    }
    lp2p__peer *p = lp2p__peerstore_get(h, peer, false);
    int64_t now = lp2p_now();
    /* direct TCP addresses first, then relay circuits (when relay.c registered its transport) */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; p && i < p->n_addrs && n < max; i++) {
            const lp2p__ma *a = &p->addrs[i].ma;
            if (p->addrs[i].expires >= 0 && p->addrs[i].expires < now) continue;
            if (pass == 0 ? !lp2p__ma_is_tcp(a) : !(h->circuit && h->circuit->can_dial(a))) continue;
            if (n > 0 && lp2p__ma_eq(a, &addrs[0])) continue;
            addrs[n++] = *a;
        }
    *n_out = n;
    return LP2P_OK;
}

static int lp2p__dial_addrs(lp2p_host *h, const lp2p_peer_id *peer, const lp2p__ma *addrs, int n, lp2p__conn **out,
                            int64_t deadline) {
    int rc = LP2P_ERR_NOADDR;
    char text[LP2P__MA_STRLEN];
    for (int i = 0; i < n; i++) {
        lp2p__pipe *raw = NULL;
        lp2p__ma local, remote;
        if (h->circuit && h->circuit->can_dial(&addrs[i])) {
            rc = h->circuit->dial(h, &addrs[i], peer, out, deadline);
            if (rc == LP2P_OK) {
                (*out)->refs--; /* the caller takes its own reference */
                return LP2P_OK;
            }
        } else {
            if (!lp2p__ma_is_tcp(&addrs[i])) continue;
            /* dial from our listen port (as go's reuseport transport) so peers observe the port
             * a NAT maps for it (hole punching); loopback listeners keep ephemeral ports, and a
             * failed reuse dial (port busy, 4-tuple in TIME_WAIT) is retried without */
            int port = lp2p__swarm_listen_port(h, &addrs[i]);
            bool reuse = port > 0 && !lp2p__ma_is_127(&addrs[i]);
            for (lp2p__listener *l = h->listeners; reuse && l; l = l->next)
                if (l->addr.b[0] == addrs[i].b[0] && lp2p__ma_is_127(&l->addr)) reuse = false;
            rc = lp2p__tcp_dial(h->sched, &addrs[i], reuse ? port : 0, &raw, &local, &remote, deadline);
            if (reuse && rc != LP2P_OK && rc != LP2P_ERR_TIMEOUT && rc != LP2P_ERR_CANCELED)
                rc = lp2p__tcp_dial(h->sched, &addrs[i], 0, &raw, &local, &remote, deadline);
            if (rc == LP2P_OK) rc = lp2p__upgrade(h, raw, true, peer, &local, &addrs[i], false, out, deadline);
        }
        if (rc == LP2P_OK) return LP2P_OK;
        lp2p__ma_str(&addrs[i], text, sizeof text);
        LP2P__INFO(&h->ctx, "dial %s failed: %s", text, lp2p_strerror(rc));
        if (rc == LP2P_ERR_CANCELED || rc == LP2P_ERR_TIMEOUT) break;
    }
    if (n > 1 && rc != LP2P_ERR_CANCELED && rc != LP2P_ERR_TIMEOUT && rc != LP2P_ERR_HANDSHAKE)
        rc = LP2P_ERR_UNREACHABLE;
    return rc;
}

LP2P__PRIV int lp2p__swarm_connect(lp2p_host *h, const char *peer_or_addr, lp2p__conn **out, int64_t deadline) {
    lp2p_peer_id peer;
    lp2p__ma addrs[LP2P__MAX_PEER_ADDRS + 1];
    int n = 0, rc;
    if (!peer_or_addr) return LP2P_ERR_INVALID;
    rc = lp2p__dial_targets(h, peer_or_addr, &peer, addrs, (int)LP2P__COUNT(addrs), &n);
    if (rc) return rc;
    if (lp2p_peer_id_eq(&peer, &h->identity.id)) {
        LP2P__WARN(&h->ctx, LP2P_ERR_INVALID, "refusing to dial ourselves");
        return LP2P_ERR_INVALID;
    }
    for (;;) {
        lp2p__conn *c = lp2p__swarm_find_conn(h, &peer);
        if (c) {
            c->refs++;
            *out = c;
            return LP2P_OK;
        }
        lp2p__dial *d = h->dials;
        while (d && !lp2p_peer_id_eq(&d->peer, &peer)) d = d->next;
        if (!d) break;
        d->waiters++; /* a dial to this peer is in flight: wait for it, then look again */
        rc = lp2p__waitq_wait(h->sched, &d->done, deadline);
        int result = d->result;
        if (--d->waiters == 0 && d->result != 1) lp2p__free(&h->ctx, d, sizeof *d);
        if (rc) return rc;
        if (result != LP2P_OK && result != 1) return result;
    }
    if (n == 0) return LP2P_ERR_NOADDR;
    if (h->n_dials >= h->cfg.max_pending_dials) {
        LP2P__WARN(&h->ctx, LP2P_ERR_LIMIT, "max_pending_dials=%d reached", h->cfg.max_pending_dials);
        return LP2P_ERR_LIMIT;
    }
    if (h->n_conns >= h->cfg.max_connections) {
        LP2P__WARN(&h->ctx, LP2P_ERR_LIMIT, "max_connections=%d reached", h->cfg.max_connections);
        return LP2P_ERR_LIMIT;
    }
    lp2p__dial *d = (lp2p__dial *)lp2p__zalloc(&h->ctx, sizeof *d);
    if (!d) return LP2P_ERR_NOMEM;
    d->peer = peer, d->result = 1;
    d->next = h->dials, h->dials = d, h->n_dials++;
    lp2p__conn *c = NULL;
    rc = lp2p__dial_addrs(h, &peer, addrs, n, &c, deadline);
    for (lp2p__dial **pp = &h->dials; *pp; pp = &(*pp)->next)
        if (*pp == d) {
            *pp = d->next;
            break;
        }
    h->n_dials--;
    d->result = rc;
    lp2p__waitq_wake_all(h->sched, &d->done);
    if (d->waiters == 0) lp2p__free(&h->ctx, d, sizeof *d);
    if (rc) return rc;
    c->refs++;
    *out = c;
    return LP2P_OK;
}

LP2P__PRIV void lp2p__swarm_close_all(lp2p_host *h) {
    for (lp2p__listener *l = h->listeners; l; l = l->next) {
        lp2p__task_cancel(h->sched, l->task);
        lp2p__tcp_listener_free(l->tcp);
        l->tcp = NULL;
    }
    while (h->conns) lp2p__conn_close(h->conns);
}
/*==================== end src/swarm.c ====================*/
/*==================== begin src/host.c ====================*/
/* host.c - L6: the public surface: config defaults, host lifecycle and driving, the protocol
 * router, streams, events and tasks.
 *
 * Spec: libp2p/specs connections/README.md (protocol negotiation per stream).
 * Depends on: host.h (swarm and everything below). */
// (amalgamated) #include "host.h"

#include <stdio.h>

/* ---- config ------------------------------------------------------------------------------ */
static void lp2p__config_resolve(lp2p_config *c) {
#define LP2P__DEFAULT(field, value) \
    if (c->field == 0) c->field = (value)
    LP2P__DEFAULT(max_connections, 256);
    LP2P__DEFAULT(max_streams_per_conn, 1024);
    LP2P__DEFAULT(max_pending_dials, 64);
    LP2P__DEFAULT(max_stream_buffer, 16 << 20);
    LP2P__DEFAULT(stream_window, 256 << 10);
    LP2P__DEFAULT(keepalive_ms, 15000);
    LP2P__DEFAULT(handshake_timeout_ms, 10000);
    LP2P__DEFAULT(stack_size, 64 << 10);
    LP2P__DEFAULT(max_tasks, 65536);
    LP2P__DEFAULT(event_queue_size, 256);
#undef LP2P__DEFAULT
    if (c->stream_window < (256 << 10)) c->stream_window = 256 << 10; /* yamux minimum */
    if (c->max_stream_buffer < c->stream_window) c->max_stream_buffer = c->stream_window;
}

/* ---- events ------------------------------------------------------------------------------- */
static void lp2p__event_slot_clear(lp2p_host *h, lp2p__event_slot *s) {
    lp2p__strfree(&h->ctx, s->addr);
    lp2p__strfree(&h->ctx, s->protocol);
    s->addr = s->protocol = NULL;
}

LP2P__PRIV void lp2p__host_emit(lp2p_host *h, lp2p_event_type type, const lp2p_peer_id *peer, const char *addr,
                                const char *protocol, lp2p_stream *stream, int err) {
    int cap = h->cfg.event_queue_size;
    if (h->ev_count == cap) { /* full: drop the oldest (a stream event's stream is reset) */
        lp2p__event_slot *old = &h->events[h->ev_head];
        /* an app that never reads events (lp2p_host_run with handlers) loses nothing it wanted;
         * warn only when it does read them, or when an inbound stream is dropped */
        if (h->ev_read || old->ev.stream)
            LP2P__WARN(&h->ctx, LP2P_ERR_LIMIT, "event_queue_size=%d reached: dropping the oldest event", cap);
        if (old->ev.stream) lp2p_stream_reset(old->ev.stream);
        lp2p__event_slot_clear(h, old);
        h->ev_head = (h->ev_head + 1) % cap;
        h->ev_count--;
    }
    lp2p__event_slot *s = &h->events[(h->ev_head + h->ev_count) % cap];
    memset(s, 0, sizeof *s);
    s->ev.type = type;
    if (peer) s->ev.peer = *peer;
    if (addr) s->addr = lp2p__strdup(&h->ctx, addr);
    if (protocol) s->protocol = lp2p__strdup(&h->ctx, protocol);
    s->ev.stream = stream;
    s->ev.err = err;
    h->ev_count++;
}

LP2P_API bool lp2p_host_next_event(lp2p_host *h, lp2p_event *ev) {
    h->ev_read = true;
    lp2p__event_slot_clear(h, &h->ev_out);
    if (h->ev_count == 0) return false;
    h->ev_out = h->events[h->ev_head];
    h->ev_head = (h->ev_head + 1) % h->cfg.event_queue_size;
    h->ev_count--;
    *ev = h->ev_out.ev;
    ev->addr = h->ev_out.addr;
    ev->protocol = h->ev_out.protocol;
    return true;
}

/* ---- addresses --------------------------------------------------------------------------- */
LP2P__PRIV void lp2p__host_addrs_changed(lp2p_host *h) {
    for (int i = 0; i < h->n_addr_text; i++) lp2p__strfree(&h->ctx, h->addr_text[i]);
    lp2p__free(&h->ctx, h->addr_text, sizeof(char *) * (size_t)h->n_addr_text);
    h->addr_text = NULL, h->n_addr_text = 0;
    lp2p__ma addrs[LP2P_MAX_LISTEN_ADDRS + LP2P__MAX_EXTRA_ADDRS];
    int n = lp2p__host_advertised_addrs(h, addrs, (int)LP2P__COUNT(addrs));
    if (n) h->addr_text = (char **)lp2p__zalloc(&h->ctx, sizeof(char *) * (size_t)n);
    for (int i = 0; i < n && h->addr_text; i++) {
        lp2p__ma full = addrs[i];
        char text[LP2P__MA_STRLEN];
        if (lp2p__ma_append_p2p(&full, &h->identity.id) || lp2p__ma_str(&full, text, sizeof text) < 0) continue;
        h->addr_text[h->n_addr_text++] = lp2p__strdup(&h->ctx, text);
    }
    if (h->identify && !h->freeing) lp2p__identify_push_all(h);
}

LP2P__PRIV int lp2p__host_advertised_addrs(lp2p_host *h, lp2p__ma *out, int max) {
    int n = 0;
    for (lp2p__listener *l = h->listeners; l && n < max; l = l->next) out[n++] = l->addr;
    for (int i = 0; i < h->n_extra_addrs && n < max; i++) out[n++] = h->extra_addrs[i];
    return n;
}

LP2P_API int lp2p_host_addr_count(const lp2p_host *h) { return h->n_addr_text; }

LP2P__PRIV void lp2p__host_add_service(lp2p_host *h, lp2p__service *s) {
    s->next = h->services;
    h->services = s;
}

LP2P__PRIV void lp2p__host_remove_service(lp2p_host *h, lp2p__service *s) {
    for (lp2p__service **pp = &h->services; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            return;
        }
}

LP2P_API const char *lp2p_host_addr(const lp2p_host *h, int i) {
    return i >= 0 && i < h->n_addr_text ? h->addr_text[i] : NULL;
}

LP2P_API lp2p_peer_id lp2p_host_id(const lp2p_host *h) { return h->identity.id; }

/* ---- lifecycle ----------------------------------------------------------------------------- */
/* idle_timeout_ms (or a connection's own ephemeral_idle_ms): close connections that had no
 * stream for that long (checked every second). A connection carrying a relay reservation has no
 * streams between refreshes but is what keeps the reservation alive: it stays. */
static void lp2p__close_idle(lp2p_host *h) {
    int64_t now = lp2p_now();
    for (lp2p__conn *c = h->conns, *next; c; c = next) {
        next = c->next;
        if (c->closed || !c->mux) continue;
        int limit = c->ephemeral_idle_ms > 0 ? c->ephemeral_idle_ms : h->cfg.idle_timeout_ms;
        if (limit <= 0 || c->held || lp2p__yamux_num_streams(c->mux) > 0) c->idle_since = 0;
        else if (!c->idle_since) c->idle_since = now;
        else if (now - c->idle_since >= limit) lp2p__conn_close(c);
    }
}

static void lp2p__housekeeping_task(void *arg) {
    lp2p_host *h = (lp2p_host *)arg;
    for (unsigned round = 1; lp2p__sleep_until(h->sched, lp2p_deadline_in(1000)) == LP2P_OK; round++) {
        lp2p__close_idle(h);
        lp2p__swarm_reap(h);
        lp2p__sched_trim(h->sched); /* idle connections keep only the stack pages they use */
        lp2p__cache_trim(&h->ctx);  /* and buffers nobody reused for a second go back */
        if (round % 10 == 0) lp2p__peerstore_gc(h, lp2p_now());
    }
}

LP2P_API int lp2p_host_new(const lp2p_config *cfg, lp2p_host **out) {
    lp2p_config zero;
    lp2p__ctx ctx;
    int rc;
    if (!out) return LP2P_ERR_INVALID;
    if (!cfg) memset(&zero, 0, sizeof zero), cfg = &zero;
    if (lp2p__crypto_init() != LP2P_OK) return LP2P_ERR_IO;
    lp2p__ctx_init(&ctx, &cfg->allocator, &cfg->logger, cfg->log_level);
    lp2p_host *h = (lp2p_host *)lp2p__zalloc(&ctx, sizeof *h);
    if (!h) return LP2P_ERR_NOMEM;
    h->ctx = ctx;
    h->ctx.cache = &h->cache;
    h->cfg = *cfg;
    lp2p__config_resolve(&h->cfg);
    memset(h->cfg.listen_addrs, 0, sizeof h->cfg.listen_addrs); /* not kept: caller's strings */
    h->cfg.agent_version = NULL;
    h->agent_version = lp2p__strdup(&h->ctx, cfg->agent_version ? cfg->agent_version : "libp2p.h/" LIBP2P_VERSION_STRING);
    h->events = (lp2p__event_slot *)lp2p__zalloc(&h->ctx, sizeof(lp2p__event_slot) * (size_t)h->cfg.event_queue_size);
    if (!h->agent_version || !h->events) {
        lp2p_host_free(h);
        return LP2P_ERR_NOMEM;
    }
    uint8_t seed[32];
    bool have_seed = cfg->use_identity_seed;
    for (int i = 0; i < 32 && !have_seed; i++) have_seed = cfg->identity_seed[i] != 0;
    if (have_seed) memcpy(seed, cfg->identity_seed, 32);
    else lp2p__random(seed, 32);
    lp2p__identity_from_seed(&h->identity, seed);
    memset(seed, 0, sizeof seed);
    lp2p__sched_cfg scfg = {(size_t)h->cfg.stack_size, h->cfg.max_tasks};
    rc = lp2p__sched_new(&h->ctx, &scfg, &h->sched);
    if (rc) {
        lp2p_host_free(h);
        return rc;
    }
    static const char *const limited_defaults[] = {"/ipfs/ping/1.0.0", "/ipfs/id/1.0.0", "/ipfs/id/push/1.0.0",
                                                   "/libp2p/dcutr"};
    for (size_t i = 0; i < LP2P__COUNT(limited_defaults) && !rc; i++)
        rc = lp2p_host_allow_limited(h, limited_defaults[i], true);
    if (rc || (rc = lp2p__identify_init(h)) || (!h->cfg.disable_ping_service && (rc = lp2p__ping_init(h))) ||
        (rc = lp2p__relay_init(h)) || (rc = lp2p__dcutr_init(h)) || (rc = lp2p__autonat_init(h))) {
        lp2p_host_free(h);
        return rc;
    }
    lp2p__spawn(h->sched, lp2p__housekeeping_task, h);
    if (!cfg->no_listen) {
        const char *def = "/ip4/127.0.0.1/tcp/0";
        bool any = false;
        for (int i = 0; i < LP2P_MAX_LISTEN_ADDRS && !rc; i++)
            if (cfg->listen_addrs[i]) any = true, rc = lp2p__swarm_listen(h, cfg->listen_addrs[i]);
        if (!any) rc = lp2p__swarm_listen(h, def);
        if (rc) {
            lp2p_host_free(h);
            return rc;
        }
    }
    *out = h;
    return LP2P_OK;
}

LP2P_API void lp2p_host_free(lp2p_host *h) {
    if (!h) return;
    h->freeing = true;
    if (h->sched) {
        lp2p_mdns_stop(h); /* its tasks end (and free it) while the scheduler winds down */
        lp2p__swarm_close_all(h);
        lp2p__sched_free(h->sched);
    }
    while (h->services) { /* every task has ended: the services' memory can go */
        lp2p__service *sv = h->services;
        h->services = sv->next;
        sv->free(sv->self);
    }
    lp2p__swarm_reap(h);
    while (h->listeners) {
        lp2p__listener *l = h->listeners;
        h->listeners = l->next;
        lp2p__free(&h->ctx, l, sizeof *l);
    }
    lp2p__host_addrs_changed(h);
    while (h->dials) { /* only left if a dialer was canceled mid-dial */
        lp2p__dial *d = h->dials;
        h->dials = d->next;
        lp2p__free(&h->ctx, d, sizeof *d);
    }
    lp2p__identify_free(h);
    lp2p__perf_free(h);
    lp2p__relay_free(h);
    lp2p__dcutr_free(h);
    lp2p__autonat_free(h);
    for (int i = 0; i < h->n_limited_ok; i++) lp2p__strfree(&h->ctx, h->limited_ok[i]);
    lp2p__free(&h->ctx, h->limited_ok, sizeof(char *) * (size_t)h->n_limited_ok);
    while (h->handlers) {
        lp2p__handler *x = h->handlers;
        h->handlers = x->next;
        lp2p__strfree(&h->ctx, x->protocol);
        lp2p__free(&h->ctx, x, sizeof *x);
    }
    lp2p__peerstore_free(h);
    if (h->events) {
        while (h->ev_count) {
            lp2p__event_slot_clear(h, &h->events[h->ev_head]);
            h->ev_head = (h->ev_head + 1) % h->cfg.event_queue_size;
            h->ev_count--;
        }
        lp2p__free(&h->ctx, h->events, sizeof(lp2p__event_slot) * (size_t)h->cfg.event_queue_size);
    }
    lp2p__event_slot_clear(h, &h->ev_out);
    lp2p__buf_free(&h->ctx, &h->info_text);
    lp2p__strfree(&h->ctx, h->agent_version);
    memset(&h->identity, 0, sizeof h->identity);
    lp2p__cache_drain(&h->ctx);
    lp2p__ctx ctx = h->ctx;
    lp2p__free(&ctx, h, sizeof *h);
}

LP2P_API int lp2p_host_poll(lp2p_host *h, int timeout_ms) {
    if (lp2p__task_current()) return LP2P_ERR_WOULDBLOCK;
    return lp2p__sched_poll(h->sched, timeout_ms);
}

LP2P_API int lp2p_host_run(lp2p_host *h) {
    if (lp2p__task_current()) return LP2P_ERR_WOULDBLOCK;
    return lp2p__sched_run(h->sched);
}

LP2P_API void lp2p_host_stop(lp2p_host *h) { lp2p__sched_stop(h->sched); }

LP2P_API int lp2p_host_post(lp2p_host *h, void (*fn)(void *arg), void *arg) { return lp2p__sched_post(h->sched, fn, arg); }

/* ---- tasks ------------------------------------------------------------------------------------ */
LP2P_API lp2p_task lp2p_go(lp2p_host *h, lp2p_task_fn fn, void *arg) { return lp2p__spawn(h->sched, fn, arg); }
LP2P_API int lp2p_task_cancel(lp2p_host *h, lp2p_task t) { return lp2p__task_cancel(h->sched, t); }
LP2P_API int lp2p_task_join(lp2p_host *h, lp2p_task t, int64_t deadline) { return lp2p__task_join(h->sched, t, deadline); }
LP2P_API bool lp2p_task_alive(lp2p_host *h, lp2p_task t) { return lp2p__task_alive(h->sched, t); }
LP2P_API int lp2p_sleep(lp2p_host *h, int64_t deadline) { return lp2p__sleep_until(h->sched, deadline); }
LP2P_API int lp2p_yield(lp2p_host *h) { return lp2p__yield(h->sched); }

/* ---- protocol router ---------------------------------------------------------------------------- */
static lp2p__handler *lp2p__find_handler(lp2p_host *h, const char *protocol) {
    for (lp2p__handler *x = h->handlers; x; x = x->next)
        if (strcmp(x->protocol, protocol) == 0) return x;
    return NULL;
}

LP2P_API int lp2p_host_handle(lp2p_host *h, const char *protocol, lp2p_handler_fn fn, void *user) {
    if (!protocol || !protocol[0] || strlen(protocol) >= LP2P__PROTO_MAX) return LP2P_ERR_INVALID;
    lp2p__handler *x = lp2p__find_handler(h, protocol);
    if (!x) {
        x = (lp2p__handler *)lp2p__zalloc(&h->ctx, sizeof *x);
        if (!x || !(x->protocol = lp2p__strdup(&h->ctx, protocol))) {
            lp2p__free(&h->ctx, x, sizeof *x);
            return LP2P_ERR_NOMEM;
        }
        x->next = h->handlers;
        h->handlers = x;
    }
    x->fn = fn, x->user = user;
    if (h->identify) lp2p__identify_push_all(h);
    return LP2P_OK;
}

LP2P_API int lp2p_host_unhandle(lp2p_host *h, const char *protocol) {
    for (lp2p__handler **pp = &h->handlers; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->protocol, protocol) == 0) {
            lp2p__handler *x = *pp;
            *pp = x->next;
            lp2p__strfree(&h->ctx, x->protocol);
            lp2p__free(&h->ctx, x, sizeof *x);
            if (h->identify) lp2p__identify_push_all(h);
            return LP2P_OK;
        }
    return LP2P_ERR_NOTFOUND;
}

LP2P__PRIV int lp2p__host_protocols(lp2p_host *h, const char **out, int max) {
    int n = 0;
    for (lp2p__handler *x = h->handlers; x; x = x->next) {
        if (n < max) out[n] = x->protocol;
        n++;
    }
    return n;
}

static bool lp2p__router_match(void *user, const char *proto) {
    return lp2p__find_handler((lp2p_host *)user, proto) != NULL;
}
static int lp2p__router_list(void *user, const char **protos, int max) {
    return lp2p__host_protocols((lp2p_host *)user, protos, max);
}

static lp2p_stream *lp2p__stream_new(lp2p__conn *c, lp2p__pipe *pipe, const char *protocol) {
    lp2p_stream *s = (lp2p_stream *)lp2p__zalloc(&c->h->ctx, sizeof *s);
    if (!s) return NULL;
    s->h = c->h, s->conn = c, s->pipe = pipe, s->peer = c->peer;
    snprintf(s->protocol, sizeof s->protocol, "%s", protocol);
    c->refs++;
    return s;
}

static void lp2p__stream_release(lp2p_stream *s) {
    lp2p__conn *c = s->conn;
    lp2p_host *h = s->h;
    lp2p__free(&h->ctx, s, sizeof *s);
    lp2p__conn_unref(c);
}

typedef struct lp2p__inbound_stream {
    lp2p__conn *conn;
    lp2p__pipe *pipe;
} lp2p__inbound_stream;

static void lp2p__inbound_stream_task(void *arg) {
    lp2p__inbound_stream in = *(lp2p__inbound_stream *)arg;
    lp2p_host *h = in.conn->h;
    char proto[LP2P__MSS_MAX + 1], id[LP2P_PEER_ID_STRLEN];
    lp2p__free(&h->ctx, arg, sizeof in);
    int rc = lp2p__mss_handle(in.pipe, lp2p__router_match, lp2p__router_list, h, proto, sizeof proto,
                              lp2p_deadline_in(h->cfg.handshake_timeout_ms));
    lp2p__handler *x = rc < 0 ? NULL : lp2p__find_handler(h, proto);
    if (x && in.conn->limited && !lp2p__host_limited_ok(h, proto)) {
        lp2p_peer_id_str(&in.conn->peer, id, sizeof id);
        LP2P__INFO(&h->ctx, "stream %s from %s refused: limited (relayed) connection (lp2p_host_allow_limited)", proto,
                   id);
        x = NULL;
    }
    if (!x) { /* negotiation failed, or the handler went away meanwhile */
        if (rc < 0 && rc != LP2P_ERR_EOF && rc != LP2P_ERR_RESET && rc != LP2P_ERR_CANCELED) {
            lp2p_peer_id_str(&in.conn->peer, id, sizeof id);
            LP2P__INFO(&h->ctx, "stream from %s: protocol negotiation failed: %s", id, lp2p_strerror(rc));
        }
        in.pipe->vt->reset(in.pipe);
        lp2p__conn_unref(in.conn);
        return;
    }
    lp2p_stream *s = lp2p__stream_new(in.conn, in.pipe, proto);
    lp2p__conn_unref(in.conn);
    if (!s) {
        in.pipe->vt->reset(in.pipe);
        return;
    }
    if (!x->fn) {
        lp2p__host_emit(h, LP2P_EVENT_STREAM, &s->peer, NULL, proto, s, 0);
        return;
    }
    s->in_handler = 1;
    x->fn(s, x->user);
    if (!s->released) lp2p_stream_close(s);
    lp2p__stream_release(s);
}

LP2P__PRIV void lp2p__host_on_stream(lp2p__conn *c, lp2p__pipe *stream) {
    lp2p_host *h = c->h;
    lp2p__inbound_stream *in = (lp2p__inbound_stream *)lp2p__alloc(&h->ctx, sizeof *in);
    if (!in) {
        stream->vt->reset(stream);
        return;
    }
    in->conn = c, in->pipe = stream;
    c->refs++;
    if (!lp2p__spawn(h->sched, lp2p__inbound_stream_task, in).id) {
        c->refs--;
        stream->vt->reset(stream);
        lp2p__free(&h->ctx, in, sizeof *in);
    }
}

/* ---- connecting --------------------------------------------------------------------------------- */
LP2P_API int lp2p_host_connect(lp2p_host *h, const char *peer_or_addr, int64_t deadline) {
    lp2p__conn *c = NULL;
    int rc = lp2p__swarm_connect(h, peer_or_addr, &c, deadline);
    if (rc) return rc;
    c->ephemeral_idle_ms = 0; /* the app wants this peer: keep the connection */
    lp2p__conn_unref(c);
    return LP2P_OK;
}

typedef struct lp2p__async_dial {
    lp2p_host *h;
    char *addr;
} lp2p__async_dial;

static void lp2p__async_dial_task(void *arg) {
    lp2p__async_dial *a = (lp2p__async_dial *)arg;
    lp2p_host *h = a->h;
    lp2p_peer_id peer;
    memset(&peer, 0, sizeof peer);
    int rc = lp2p_host_connect(h, a->addr, lp2p_deadline_in(h->cfg.handshake_timeout_ms * 3));
    if (rc) {
        lp2p__ma ma;
        if (a->addr[0] == '/') {
            if (lp2p__ma_parse(a->addr, &ma, NULL) == LP2P_OK) lp2p__ma_split_p2p(&ma, NULL, &peer);
        } else {
            lp2p_peer_id_parse(a->addr, &peer);
        }
        if (rc != LP2P_ERR_CANCELED) lp2p__host_emit(h, LP2P_EVENT_DIAL_FAILED, &peer, a->addr, NULL, NULL, rc);
    }
    lp2p__strfree(&h->ctx, a->addr);
    lp2p__free(&h->ctx, a, sizeof *a);
}

LP2P_API int lp2p_host_connect_async(lp2p_host *h, const char *peer_or_addr) {
    if (!peer_or_addr) return LP2P_ERR_INVALID;
    lp2p__async_dial *a = (lp2p__async_dial *)lp2p__zalloc(&h->ctx, sizeof *a);
    if (!a || !(a->addr = lp2p__strdup(&h->ctx, peer_or_addr))) {
        lp2p__free(&h->ctx, a, sizeof *a);
        return LP2P_ERR_NOMEM;
    }
    a->h = h;
    if (!lp2p__spawn(h->sched, lp2p__async_dial_task, a).id) {
        lp2p__strfree(&h->ctx, a->addr);
        lp2p__free(&h->ctx, a, sizeof *a);
        return LP2P_ERR_LIMIT;
    }
    return LP2P_OK;
}

LP2P_API int lp2p_host_disconnect(lp2p_host *h, const lp2p_peer_id *peer) {
    int n = 0;
    for (lp2p__conn *c; (c = lp2p__swarm_find_conn(h, peer)) != NULL; n++) {
        lp2p__conn_close(c);
    }
    return n ? LP2P_OK : LP2P_ERR_NOTFOUND;
}

LP2P_API int lp2p_host_is_connected(lp2p_host *h, const lp2p_peer_id *peer) {
    return lp2p__swarm_find_conn(h, peer) != NULL;
}

LP2P_API int lp2p_host_add_addr(lp2p_host *h, const char *addr_with_p2p, int64_t ttl_ms) {
    lp2p__ma ma, base;
    lp2p_peer_id id;
    const char *why = NULL;
    if (!addr_with_p2p || lp2p__ma_parse(addr_with_p2p, &ma, &why) != LP2P_OK || !lp2p__ma_split_p2p(&ma, &base, &id))
        return LP2P_ERR_BADADDR;
    lp2p__peerstore_add_addr(h, &id, &base, ttl_ms);
    return LP2P_OK;
}

/* ---- streams --------------------------------------------------------------------------------------- */
LP2P__PRIV int lp2p__host_open_on_any(lp2p__conn *c, const char *const *protocols, int n, int64_t deadline,
                                      lp2p_stream **out) {
    lp2p__pipe *p = NULL;
    for (int i = 0; i < n; i++)
        if (!protocols[i] || strlen(protocols[i]) >= LP2P__PROTO_MAX) return LP2P_ERR_INVALID;
    if (n <= 0) return LP2P_ERR_INVALID;
    for (int i = 0; c->limited && i < n; i++) /* a limited (relayed) connection: every protocol must be allowed */
        if (!lp2p__host_limited_ok(c->h, protocols[i])) return LP2P_ERR_LIMIT;
    int rc = lp2p__yamux_open(c->mux, &p, deadline);
    if (rc) return rc;
    int idx = lp2p__mss_select(p, protocols, n, deadline);
    if (idx < 0) {
        p->vt->reset(p);
        return idx;
    }
    lp2p_stream *s = lp2p__stream_new(c, p, protocols[idx]);
    if (!s) {
        p->vt->reset(p);
        return LP2P_ERR_NOMEM;
    }
    *out = s;
    return idx;
}

LP2P__PRIV int lp2p__host_open_on(lp2p__conn *c, const char *protocol, int64_t deadline, lp2p_stream **out) {
    int rc = lp2p__host_open_on_any(c, &protocol, 1, deadline, out);
    return rc < 0 ? rc : LP2P_OK;
}

LP2P_API int lp2p_stream_open(lp2p_host *h, const char *peer_or_addr, const char *protocol, int64_t deadline,
                              lp2p_stream **out) {
    lp2p__conn *c = NULL;
    if (!out || !protocol) return LP2P_ERR_INVALID;
    int rc = lp2p__swarm_connect(h, peer_or_addr, &c, deadline);
    if (rc) return rc;
    /* only a limited (relayed) connection and a protocol not allowed on it: wait for a direct
     * one (hole punching), as go-libp2p's NewStream does */
    while (c->limited && !lp2p__host_limited_ok(h, protocol)) {
        lp2p__conn *d = lp2p__swarm_find_conn(h, &c->peer);
        if (d && !d->limited) {
            d->refs++;
            lp2p__conn_unref(c);
            c = d;
            break;
        }
        if (c->closed) { /* the relayed connection died before a direct one came */
            lp2p__conn_unref(c);
            return LP2P_ERR_CLOSED;
        }
        if (deadline >= 0 && lp2p_now() >= deadline) break;
        rc = lp2p__waitq_wait(h->sched, &h->conn_wait, lp2p__deadline_min(deadline, lp2p_deadline_in(1000)));
        if (rc && rc != LP2P_ERR_TIMEOUT) break;
    }
    if (c->limited && !lp2p__host_limited_ok(h, protocol)) {
        LP2P__INFO(&h->ctx, "stream %s: only a limited (relayed) connection (lp2p_host_allow_limited)", protocol);
        lp2p__conn_unref(c);
        return rc && rc != LP2P_ERR_TIMEOUT ? rc : LP2P_ERR_LIMIT;
    }
    rc = lp2p__host_open_on(c, protocol, deadline, out);
    lp2p__conn_unref(c);
    return rc;
}

/* ---- limited (relayed) connections ----------------------------------------------------------- */
LP2P__PRIV bool lp2p__host_limited_ok(lp2p_host *h, const char *protocol) {
    for (int i = 0; i < h->n_limited_ok; i++)
        if (strcmp(h->limited_ok[i], protocol) == 0) return true;
    return false;
}

LP2P_API int lp2p_host_allow_limited(lp2p_host *h, const char *protocol, bool allow) {
    if (!h || !protocol || !protocol[0] || strlen(protocol) >= LP2P__PROTO_MAX) return LP2P_ERR_INVALID;
    for (int i = 0; i < h->n_limited_ok; i++)
        if (strcmp(h->limited_ok[i], protocol) == 0) {
            if (!allow) { /* move the last one here; shrink the array (sizes must match on free) */
                int n = h->n_limited_ok - 1;
                char **v = n ? (char **)lp2p__alloc(&h->ctx, sizeof(char *) * (size_t)n) : NULL;
                if (n && !v) return LP2P_ERR_NOMEM;
                lp2p__strfree(&h->ctx, h->limited_ok[i]);
                h->limited_ok[i] = h->limited_ok[n];
                if (v) memcpy(v, h->limited_ok, sizeof(char *) * (size_t)n);
                lp2p__free(&h->ctx, h->limited_ok, sizeof(char *) * (size_t)(n + 1));
                h->limited_ok = v, h->n_limited_ok = n;
            }
            return LP2P_OK;
        }
    if (!allow) return LP2P_OK;
    char **v = (char **)lp2p__realloc(&h->ctx, h->limited_ok, sizeof(char *) * (size_t)h->n_limited_ok,
                                      sizeof(char *) * (size_t)(h->n_limited_ok + 1));
    if (!v) return LP2P_ERR_NOMEM;
    h->limited_ok = v;
    if (!(v[h->n_limited_ok] = lp2p__strdup(&h->ctx, protocol))) return LP2P_ERR_NOMEM;
    h->n_limited_ok++;
    return LP2P_OK;
}

LP2P_API int lp2p_host_is_direct(lp2p_host *h, const lp2p_peer_id *peer) {
    lp2p__conn *c = lp2p__swarm_find_conn(h, peer);
    if (!c) return LP2P_ERR_NOTFOUND;
    return c->limited ? 0 : 1;
}

LP2P_API ptrdiff_t lp2p_stream_read(lp2p_stream *s, void *buf, size_t cap, int64_t deadline) {
    if (!s || !s->pipe) return LP2P_ERR_CLOSED;
    if (s->reading) return LP2P_ERR_BUSY;
    s->reading = 1;
    ptrdiff_t n = lp2p__pipe_read(s->pipe, buf, cap, deadline);
    s->reading = 0;
    return n;
}

LP2P_API int lp2p_stream_read_full(lp2p_stream *s, void *buf, size_t len, int64_t deadline) {
    if (!s || !s->pipe) return LP2P_ERR_CLOSED;
    if (s->reading) return LP2P_ERR_BUSY;
    s->reading = 1;
    int rc = lp2p__pipe_read_full(s->pipe, buf, len, deadline);
    s->reading = 0;
    return rc;
}

LP2P_API int lp2p_stream_write(lp2p_stream *s, const void *buf, size_t len, int64_t deadline) {
    if (!s || !s->pipe) return LP2P_ERR_CLOSED;
    if (s->writing) return LP2P_ERR_BUSY;
    s->writing = 1;
    int rc = lp2p__pipe_write(s->pipe, buf, len, deadline);
    s->writing = 0;
    return rc;
}

LP2P_API ptrdiff_t lp2p_stream_read_msg(lp2p_stream *s, void *buf, size_t cap, int64_t deadline) {
    if (!s || !s->pipe) return LP2P_ERR_CLOSED;
    if (s->reading) return LP2P_ERR_BUSY;
    s->reading = 1;
    ptrdiff_t n = lp2p__pipe_read_msg(s->pipe, buf, cap, NULL, deadline);
    s->reading = 0;
    if (n == LP2P_ERR_MSGSIZE || n == LP2P_ERR_PROTOCOL) {
        LP2P__WARN(&s->h->ctx, (int)n, "stream %s: bad message from peer (%s): resetting", s->protocol,
                   lp2p_strerror((int)n));
        s->pipe->vt->reset(s->pipe);
        s->pipe = NULL;
    }
    return n;
}

LP2P_API int lp2p_stream_write_msg(lp2p_stream *s, const void *buf, size_t len, int64_t deadline) {
    if (!s || !s->pipe) return LP2P_ERR_CLOSED;
    if (s->writing) return LP2P_ERR_BUSY;
    s->writing = 1;
    int rc = lp2p__pipe_write_msg(&s->h->ctx, s->pipe, buf, len, deadline);
    s->writing = 0;
    return rc;
}

LP2P_API int lp2p_stream_close_write(lp2p_stream *s) {
    if (!s || !s->pipe) return LP2P_ERR_CLOSED;
    return s->pipe->vt->close_write(s->pipe);
}

static void lp2p__stream_end(lp2p_stream *s, bool reset) {
    if (!s) return;
    if (s->pipe) {
        if (reset) s->pipe->vt->reset(s->pipe);
        else s->pipe->vt->close(s->pipe);
        s->pipe = NULL;
    }
    if (s->in_handler) s->released = 1; /* the handler wrapper frees it on return */
    else lp2p__stream_release(s);
}

LP2P_API void lp2p_stream_close(lp2p_stream *s) { lp2p__stream_end(s, false); }
LP2P_API void lp2p_stream_reset(lp2p_stream *s) { lp2p__stream_end(s, true); }
LP2P_API const char *lp2p_stream_protocol(const lp2p_stream *s) { return s->protocol; }
LP2P_API lp2p_peer_id lp2p_stream_peer(const lp2p_stream *s) { return s->peer; }
LP2P_API lp2p_host *lp2p_stream_host(const lp2p_stream *s) { return s->h; }
/*==================== end src/host.c ====================*/
/*==================== begin src/identify.c ====================*/
/* identify.c - L7: identify (/ipfs/id/1.0.0) and identify push (/ipfs/id/push/1.0.0).
 *
 * Spec: libp2p/specs identify/README.md; signed peer records: RFC/0002-signed-envelopes.md and
 * RFC/0003-routing-records.md (domain "libp2p-peer-record", payload type 03 01 as go and js).
 * On every new connection we ask the peer (read messages until EOF and merge them: go splits a
 * large message in two), store what it says in the peerstore, and answer its request with
 * our message (<= 4 KiB, rust's cap; the signed record goes in a second message if needed).
 * When our protocols or addresses change, we push to every connection.
 * Depends on: host.h, proto/identify.pb.h, proto/peer_record.pb.h.
 */
// (amalgamated) #include "host.h"

#include <pb_decode.h>
#include <pb_encode.h>
#include <time.h>

#define LP2P__ID_PROTO "/ipfs/id/1.0.0"
#define LP2P__ID_PUSH_PROTO "/ipfs/id/push/1.0.0"
#define LP2P__ID_PROTOCOL_VERSION "ipfs/0.1.0"
#define LP2P__ID_MAX_MSG 8192      /* go's cap per received message */
#define LP2P__ID_MAX_OWN 4096      /* rust rejects larger */
#define LP2P__ID_MAX_MSGS 10       /* go reads at most 10 messages */
#define LP2P__ID_TIMEOUT_MS 10000
#define LP2P__ID_ADDR_TTL_MS (60 * 60 * 1000)
#define LP2P__ID_RECORD_DOMAIN "libp2p-peer-record"
static const uint8_t lp2p__id_record_type[2] = {0x03, 0x01};

struct lp2p__identify {
    lp2p__notifee notifee;
    bool push_scheduled;
};

/* ---- decoding (peer input: every field capped) ---------------------------------------------- */
typedef struct lp2p__id_info {
    char protocol_version[128], agent_version[256];
    bool has_pv, has_av;
    uint8_t pubkey[LP2P__PUBKEY_MAX];
    size_t pubkey_len;
    lp2p__ma addrs[LP2P__MAX_PEER_ADDRS];
    int n_addrs;
    lp2p__ma observed;
    char *protocols[LP2P__MAX_PEER_PROTOCOLS];
    int n_protocols;
    bool has_protocols;
    uint8_t record[2048];
    size_t record_len;
    lp2p__ctx *ctx;
} lp2p__id_info;

static bool lp2p__id_read_bytes(pb_istream_t *st, uint8_t *buf, size_t cap, size_t *len) {
    size_t n = st->bytes_left;
    if (n > cap) return pb_read(st, NULL, n) && false; /* too long for us: skip it, but fail the field */
    if (!pb_read(st, buf, n)) return false;
    *len = n;
    return true;
}

static bool lp2p__id_decode_field(pb_istream_t *st, const pb_field_t *field, void **arg) {
    lp2p__id_info *in = (lp2p__id_info *)*arg;
    uint8_t tmp[LP2P__MA_MAX + 1];
    size_t n = 0;
    switch (field->tag) {
    case 5: /* protocolVersion */
        if (!lp2p__id_read_bytes(st, (uint8_t *)in->protocol_version, sizeof in->protocol_version - 1, &n)) return true;
        in->protocol_version[n] = 0, in->has_pv = true;
        return true;
    case 6: /* agentVersion */
        if (!lp2p__id_read_bytes(st, (uint8_t *)in->agent_version, sizeof in->agent_version - 1, &n)) return true;
        in->agent_version[n] = 0, in->has_av = true;
        return true;
    case 1: /* publicKey */
        return lp2p__id_read_bytes(st, in->pubkey, sizeof in->pubkey, &in->pubkey_len);
    case 2: /* listenAddrs: keep the valid ones, up to our cap */
        if (lp2p__id_read_bytes(st, tmp, sizeof tmp, &n) && in->n_addrs < LP2P__MAX_PEER_ADDRS &&
            lp2p__ma_from_bytes(tmp, n, &in->addrs[in->n_addrs], NULL) == LP2P_OK)
            in->n_addrs++;
        return true;
    case 4: /* observedAddr (js appends /p2p/<our id>: strip it) */
        if (lp2p__id_read_bytes(st, tmp, sizeof tmp, &n) && lp2p__ma_from_bytes(tmp, n, &in->observed, NULL) == LP2P_OK)
            lp2p__ma_split_p2p(&in->observed, &in->observed, NULL);
        return true;
    case 3: /* protocols */
        in->has_protocols = true;
        if (lp2p__id_read_bytes(st, tmp, LP2P__PROTO_MAX - 1, &n) && in->n_protocols < LP2P__MAX_PEER_PROTOCOLS) {
            char *p = (char *)lp2p__alloc(in->ctx, n + 1);
            if (!p) return false;
            memcpy(p, tmp, n), p[n] = 0;
            in->protocols[in->n_protocols++] = p;
        }
        return true;
    case 8: /* signedPeerRecord */
        if (!lp2p__id_read_bytes(st, in->record, sizeof in->record, &in->record_len)) in->record_len = 0;
        return true;
    default:
        return pb_read(st, NULL, st->bytes_left);
    }
}

static int lp2p__id_decode(lp2p__id_info *in, const uint8_t *msg, size_t len) {
    lp2p_pb_Identify m;
    memset(&m, 0, sizeof m);
    pb_callback_t cb = {{.decode = lp2p__id_decode_field}, in};
    m.protocolVersion = m.agentVersion = m.publicKey = m.listenAddrs = m.observedAddr = m.protocols =
        m.signedPeerRecord = cb;
    pb_istream_t st = pb_istream_from_buffer(msg, len);
    return pb_decode(&st, lp2p_pb_Identify_fields, &m) ? LP2P_OK : LP2P_ERR_PROTOCOL;
}

static void lp2p__id_info_free(lp2p__id_info *in) {
    for (int i = 0; i < in->n_protocols; i++) lp2p__strfree(in->ctx, in->protocols[i]);
    in->n_protocols = 0;
}

/* Verify the signed peer record; on success its addresses replace the unsigned ones. */
typedef struct lp2p__record_addrs {
    uint8_t peer_id[64];
    size_t peer_id_len;
    lp2p__ma addrs[LP2P__MAX_PEER_ADDRS];
    int n_addrs;
} lp2p__record_addrs;

static bool lp2p__rec_decode_addr(pb_istream_t *st, const pb_field_t *field, void **arg) {
    lp2p__record_addrs *r = (lp2p__record_addrs *)*arg;
    uint8_t tmp[LP2P__MA_MAX + 1];
    size_t n = 0;
    (void)field;
    if (lp2p__id_read_bytes(st, tmp, sizeof tmp, &n) && r->n_addrs < LP2P__MAX_PEER_ADDRS &&
        lp2p__ma_from_bytes(tmp, n, &r->addrs[r->n_addrs], NULL) == LP2P_OK)
        r->n_addrs++;
    return true;
}

static bool lp2p__rec_decode_info(pb_istream_t *st, const pb_field_t *field, void **arg) {
    lp2p_pb_PeerRecord_AddressInfo ai;
    (void)field;
    ai.multiaddr.funcs.decode = lp2p__rec_decode_addr;
    ai.multiaddr.arg = *arg;
    return pb_decode(st, lp2p_pb_PeerRecord_AddressInfo_fields, &ai);
}

static bool lp2p__rec_decode_id(pb_istream_t *st, const pb_field_t *field, void **arg) {
    lp2p__record_addrs *r = (lp2p__record_addrs *)*arg;
    (void)field;
    return lp2p__id_read_bytes(st, r->peer_id, sizeof r->peer_id, &r->peer_id_len);
}

static int lp2p__id_check_record(lp2p_host *h, lp2p__conn *c, lp2p__id_info *in) {
    const uint8_t *payload;
    size_t payload_len;
    lp2p_peer_id signer, rec_id;
    int rc = lp2p__envelope_open(in->record, in->record_len, LP2P__ID_RECORD_DOMAIN, lp2p__id_record_type,
                                 sizeof lp2p__id_record_type, &payload, &payload_len, &signer);
    if (rc) return rc;
    if (!lp2p_peer_id_eq(&signer, &c->peer)) return LP2P_ERR_HANDSHAKE;
    lp2p__record_addrs r;
    memset(&r, 0, sizeof r);
    lp2p_pb_PeerRecord m;
    memset(&m, 0, sizeof m);
    m.peer_id.funcs.decode = lp2p__rec_decode_id, m.peer_id.arg = &r;
    m.addresses.funcs.decode = lp2p__rec_decode_info, m.addresses.arg = &r;
    pb_istream_t st = pb_istream_from_buffer(payload, payload_len);
    if (!pb_decode(&st, lp2p_pb_PeerRecord_fields, &m)) return LP2P_ERR_PROTOCOL;
    if (lp2p__peer_id_from_bytes(r.peer_id, r.peer_id_len, &rec_id) || !lp2p_peer_id_eq(&rec_id, &signer))
        return LP2P_ERR_HANDSHAKE;
    lp2p__peer *p = lp2p__peerstore_get(h, &c->peer, true);
    if (p && m.seq < p->record_seq) return LP2P_OK; /* older than what we have: keep ours */
    if (p) p->record_seq = m.seq, lp2p__peerstore_set_record(h, p, in->record, in->record_len);
    memcpy(in->addrs, r.addrs, sizeof(lp2p__ma) * (size_t)r.n_addrs);
    in->n_addrs = r.n_addrs;
    return LP2P_OK;
}

/* Store what a peer said about itself (pull or push). */
static void lp2p__id_apply(lp2p_host *h, lp2p__conn *c, lp2p__id_info *in) {
    char id[LP2P_PEER_ID_STRLEN];
    lp2p_peer_id_str(&c->peer, id, sizeof id);
    lp2p__peer *p = lp2p__peerstore_get(h, &c->peer, true);
    if (!p) return;
    if (in->pubkey_len) { /* must be the key the Noise handshake proved */
        lp2p_peer_id kid;
        if (lp2p__peer_id_from_pubkey(in->pubkey, in->pubkey_len, &kid) || !lp2p_peer_id_eq(&kid, &c->peer)) {
            LP2P__WARN(&h->ctx, LP2P_ERR_PROTOCOL, "identify from %s: public key does not match the peer ID: ignored", id);
            return;
        }
    }
    if (in->record_len) {
        int rc = lp2p__id_check_record(h, c, in);
        if (rc) LP2P__WARN(&h->ctx, rc, "identify from %s: bad signed peer record (%s): ignored", id, lp2p_strerror(rc));
    }
    if (in->has_av) lp2p__strfree(&h->ctx, p->agent_version), p->agent_version = lp2p__strdup(&h->ctx, in->agent_version);
    if (in->has_pv)
        lp2p__strfree(&h->ctx, p->protocol_version), p->protocol_version = lp2p__strdup(&h->ctx, in->protocol_version);
    if (in->has_protocols) {
        char **v = (char **)lp2p__alloc(&h->ctx, sizeof(char *) * (size_t)(in->n_protocols ? in->n_protocols : 1));
        if (v) {
            memcpy(v, in->protocols, sizeof(char *) * (size_t)in->n_protocols);
            lp2p__peerstore_set_protocols(h, p, v, in->n_protocols);
            in->n_protocols = 0; /* moved */
        }
    }
    for (int i = 0; i < in->n_addrs; i++) lp2p__peerstore_add_addr(h, &c->peer, &in->addrs[i], LP2P__ID_ADDR_TTL_MS);
    if (in->observed.len) p->observed = in->observed;
    for (lp2p__notifee *n = h->notifees; n; n = n->next)
        if (n->identified) n->identified(n->user, c);
}

/* Read identify messages until EOF (at most 10) and merge them into one info. */
static int lp2p__id_read_all(lp2p_stream *s, lp2p__id_info *in, int64_t deadline) {
    uint8_t *buf = (uint8_t *)lp2p__alloc(&s->h->ctx, LP2P__ID_MAX_MSG);
    int rc = LP2P_OK, got = 0;
    if (!buf) return LP2P_ERR_NOMEM;
    for (int i = 0; i < LP2P__ID_MAX_MSGS; i++) {
        int clean_eof = 0;
        ptrdiff_t n = lp2p__pipe_read_msg(s->pipe, buf, LP2P__ID_MAX_MSG, &clean_eof, deadline);
        if (n == LP2P_ERR_EOF && clean_eof && got) break;
        if (n < 0) {
            rc = (int)n;
            break;
        }
        got++;
        if ((rc = lp2p__id_decode(in, buf, (size_t)n)) != LP2P_OK) break;
    }
    lp2p__free(&s->h->ctx, buf, LP2P__ID_MAX_MSG);
    return rc;
}

/* ---- encoding our message ------------------------------------------------------------------------ */
typedef struct lp2p__id_out {
    lp2p_host *h;
    lp2p__conn *c;
    const uint8_t *record;
    size_t record_len;
} lp2p__id_out;

static bool lp2p__enc_bytes(pb_ostream_t *st, const pb_field_t *f, const void *p, size_t n) {
    return pb_encode_tag_for_field(st, f) && pb_encode_string(st, (const pb_byte_t *)p, n);
}

static bool lp2p__id_encode_field(pb_ostream_t *st, const pb_field_t *f, void *const *arg) {
    lp2p__id_out *o = (lp2p__id_out *)*arg;
    lp2p_host *h = o->h;
    switch (f->tag) {
    case 5: return lp2p__enc_bytes(st, f, LP2P__ID_PROTOCOL_VERSION, strlen(LP2P__ID_PROTOCOL_VERSION));
    case 6: return lp2p__enc_bytes(st, f, h->agent_version, strlen(h->agent_version));
    case 1: return lp2p__enc_bytes(st, f, h->identity.pubkey_pb, sizeof h->identity.pubkey_pb);
    case 2: { /* listeners and relay circuits (lp2p__host_advertised_addrs) */
        lp2p__ma addrs[LP2P_MAX_LISTEN_ADDRS + LP2P__MAX_EXTRA_ADDRS];
        int n = lp2p__host_advertised_addrs(h, addrs, (int)LP2P__COUNT(addrs));
        for (int i = 0; i < n; i++)
            if (!lp2p__enc_bytes(st, f, addrs[i].b, addrs[i].len)) return false;
        return true;
    }
    case 4: return !o->c || !o->c->remote.len || lp2p__enc_bytes(st, f, o->c->remote.b, o->c->remote.len);
    case 3:
        for (lp2p__handler *x = h->handlers; x; x = x->next)
            if (!lp2p__enc_bytes(st, f, x->protocol, strlen(x->protocol))) return false;
        return true;
    case 8: return !o->record_len || lp2p__enc_bytes(st, f, o->record, o->record_len);
    default: return true;
    }
}

static bool lp2p__rec_encode_addr(pb_ostream_t *st, const pb_field_t *f, void *const *arg) {
    const lp2p__ma *ma = (const lp2p__ma *)*arg;
    return lp2p__enc_bytes(st, f, ma->b, ma->len);
}

static bool lp2p__rec_encode_addrs(pb_ostream_t *st, const pb_field_t *f, void *const *arg) {
    lp2p_host *h = (lp2p_host *)*arg;
    lp2p__ma addrs[LP2P_MAX_LISTEN_ADDRS + LP2P__MAX_EXTRA_ADDRS];
    int n = lp2p__host_advertised_addrs(h, addrs, (int)LP2P__COUNT(addrs));
    for (int i = 0; i < n; i++) {
        lp2p_pb_PeerRecord_AddressInfo ai;
        ai.multiaddr.funcs.encode = lp2p__rec_encode_addr;
        ai.multiaddr.arg = &addrs[i];
        if (!pb_encode_tag_for_field(st, f) || !pb_encode_submessage(st, lp2p_pb_PeerRecord_AddressInfo_fields, &ai))
            return false;
    }
    return true;
}

static bool lp2p__rec_encode_id(pb_ostream_t *st, const pb_field_t *f, void *const *arg) {
    const lp2p_peer_id *id = (const lp2p_peer_id *)*arg;
    return lp2p__enc_bytes(st, f, id->bytes, id->len);
}

/* Our signed peer record (seq = Unix ms, monotonic per host), as an Envelope. */
static ptrdiff_t lp2p__id_make_record(lp2p_host *h, uint8_t *out, size_t cap) {
    uint8_t payload[1024];
    lp2p_pb_PeerRecord m;
    memset(&m, 0, sizeof m);
    m.peer_id.funcs.encode = lp2p__rec_encode_id, m.peer_id.arg = &h->identity.id;
    m.addresses.funcs.encode = lp2p__rec_encode_addrs, m.addresses.arg = h;
    m.seq = (uint64_t)time(NULL) * 1000u;
    pb_ostream_t st = pb_ostream_from_buffer(payload, sizeof payload);
    if (!pb_encode(&st, lp2p_pb_PeerRecord_fields, &m)) return LP2P_ERR_MSGSIZE;
    return lp2p__envelope_seal(&h->identity, LP2P__ID_RECORD_DOMAIN, lp2p__id_record_type, sizeof lp2p__id_record_type,
                               payload, st.bytes_written, out, cap);
}

/* Encode our identify for connection c into out: the main message, and (when it would exceed
 * 4 KiB) the signed record as a second message. Returns the number of messages, sizes in len[]. */
static int lp2p__id_encode(lp2p_host *h, lp2p__conn *c, uint8_t *out, size_t cap, size_t len[2]) {
    uint8_t record[1536];
    ptrdiff_t rl = lp2p__id_make_record(h, record, sizeof record);
    lp2p__id_out o = {h, c, record, rl > 0 ? (size_t)rl : 0};
    lp2p_pb_Identify m;
    pb_callback_t cb;
    cb.funcs.encode = lp2p__id_encode_field, cb.arg = &o;
    m.protocolVersion = m.agentVersion = m.publicKey = m.listenAddrs = m.observedAddr = m.protocols =
        m.signedPeerRecord = cb;
    pb_ostream_t st = pb_ostream_from_buffer(out, LP2P__MIN(cap, LP2P__ID_MAX_OWN));
    if (pb_encode(&st, lp2p_pb_Identify_fields, &m)) {
        len[0] = st.bytes_written;
        return 1;
    }
    o.record_len = 0; /* too big: send the record on its own */
    st = pb_ostream_from_buffer(out, LP2P__MIN(cap, LP2P__ID_MAX_OWN));
    if (!pb_encode(&st, lp2p_pb_Identify_fields, &m)) return LP2P_ERR_MSGSIZE;
    len[0] = st.bytes_written;
    if (rl <= 0) return 1;
    lp2p_pb_Identify r;
    memset(&r, 0, sizeof r);
    o.record_len = (size_t)rl;
    r.signedPeerRecord = cb;
    pb_ostream_t st2 = pb_ostream_from_buffer(out + len[0], cap - len[0]);
    if (!pb_encode(&st2, lp2p_pb_Identify_fields, &r)) return 1;
    len[1] = st2.bytes_written;
    return 2;
}

static int lp2p__id_send(lp2p_stream *s, int64_t deadline) {
    lp2p_host *h = s->h;
    size_t cap = 2 * LP2P__ID_MAX_OWN, len[2] = {0, 0};
    uint8_t *buf = (uint8_t *)lp2p__alloc(&h->ctx, cap);
    if (!buf) return LP2P_ERR_NOMEM;
    int n = lp2p__id_encode(h, s->conn, buf, cap, len), rc = n < 0 ? n : LP2P_OK;
    for (int i = 0, off = 0; i < n && rc == LP2P_OK; off += (int)len[i], i++)
        rc = lp2p__pipe_write_msg(&h->ctx, s->pipe, buf + off, len[i], deadline);
    lp2p__free(&h->ctx, buf, cap);
    return rc;
}

/* ---- handlers and tasks -------------------------------------------------------------------------- */
static void lp2p__id_serve(lp2p_stream *s, void *user) {
    (void)user;
    int rc = lp2p__id_send(s, lp2p_deadline_in(LP2P__ID_TIMEOUT_MS));
    if (rc) lp2p_stream_reset(s);
}

static void lp2p__id_serve_push(lp2p_stream *s, void *user) {
    lp2p__id_info *in = (lp2p__id_info *)lp2p__zalloc(&s->h->ctx, sizeof *in);
    (void)user;
    if (!in) return;
    in->ctx = &s->h->ctx;
    int rc = lp2p__id_read_all(s, in, lp2p_deadline_in(LP2P__ID_TIMEOUT_MS));
    if (rc == LP2P_OK && !s->conn->closed) lp2p__id_apply(s->h, s->conn, in);
    else if (rc != LP2P_OK) LP2P__INFO(&s->h->ctx, "identify push: %s", lp2p_strerror(rc));
    lp2p__id_info_free(in);
    lp2p__free(&s->h->ctx, in, sizeof *in);
}

static void lp2p__id_finish(lp2p__conn *c) {
    c->identified = true;
    lp2p__waitq_wake_all(c->h->sched, &c->identify_wait);
}

static void lp2p__id_task(void *arg) {
    lp2p__conn *c = (lp2p__conn *)arg;
    lp2p_host *h = c->h;
    lp2p_stream *s = NULL;
    char id[LP2P_PEER_ID_STRLEN];
    int64_t deadline = lp2p_deadline_in(LP2P__ID_TIMEOUT_MS);
    lp2p__id_info *in = (lp2p__id_info *)lp2p__zalloc(&h->ctx, sizeof *in);
    int rc = in ? lp2p__host_open_on(c, LP2P__ID_PROTO, deadline, &s) : LP2P_ERR_NOMEM;
    if (rc == LP2P_OK) {
        in->ctx = &h->ctx;
        lp2p_stream_close_write(s);
        rc = lp2p__id_read_all(s, in, deadline);
        if (rc == LP2P_OK && !c->closed) lp2p__id_apply(h, c, in);
        if (rc) lp2p_stream_reset(s);
        else lp2p_stream_close(s);
    }
    if (rc != LP2P_OK && rc != LP2P_ERR_CANCELED) {
        lp2p_peer_id_str(&c->peer, id, sizeof id);
        LP2P__INFO(&h->ctx, "identify with %s failed: %s", id, lp2p_strerror(rc));
    }
    if (in) lp2p__id_info_free(in), lp2p__free(&h->ctx, in, sizeof *in);
    lp2p__id_finish(c);
    if (rc == LP2P_OK && !h->freeing) lp2p__host_emit(h, LP2P_EVENT_PEER_IDENTIFIED, &c->peer, NULL, NULL, NULL, 0);
    lp2p__conn_unref(c);
}

static void lp2p__id_connected(void *user, lp2p__conn *c) {
    lp2p_host *h = c->h;
    (void)user;
    c->refs++;
    if (!lp2p__spawn(h->sched, lp2p__id_task, c).id) {
        lp2p__id_finish(c);
        c->refs--;
    }
}

static void lp2p__id_push_one(void *arg) {
    lp2p__conn *c = (lp2p__conn *)arg;
    lp2p_stream *s = NULL;
    int64_t deadline = lp2p_deadline_in(LP2P__ID_TIMEOUT_MS);
    if (!c->closed && lp2p__host_open_on(c, LP2P__ID_PUSH_PROTO, deadline, &s) == LP2P_OK) {
        if (lp2p__id_send(s, deadline) == LP2P_OK) lp2p_stream_close(s);
        else lp2p_stream_reset(s);
    }
    lp2p__conn_unref(c);
}

/* Debounced: several changes in one loop iteration give one push. */
static void lp2p__id_push_task(void *arg) {
    lp2p_host *h = (lp2p_host *)arg;
    if (lp2p__sleep_until(h->sched, lp2p_deadline_in(50)) != LP2P_OK) return;
    h->identify->push_scheduled = false;
    for (lp2p__conn *c = h->conns; c; c = c->next) {
        if (c->closed || !c->identified) continue;
        c->refs++;
        if (!lp2p__spawn(h->sched, lp2p__id_push_one, c).id) c->refs--;
    }
}

LP2P__PRIV void lp2p__identify_push_all(lp2p_host *h) {
    if (!h->identify || h->identify->push_scheduled || h->freeing || !h->conns) return;
    if (lp2p__spawn(h->sched, lp2p__id_push_task, h).id) h->identify->push_scheduled = true;
}

LP2P__PRIV int lp2p__identify_init(lp2p_host *h) {
    lp2p__identify *id = (lp2p__identify *)lp2p__zalloc(&h->ctx, sizeof *id);
    if (!id) return LP2P_ERR_NOMEM;
    id->notifee.connected = lp2p__id_connected;
    id->notifee.user = id;
    lp2p__swarm_add_notifee(h, &id->notifee);
    int rc = lp2p_host_handle(h, LP2P__ID_PROTO, lp2p__id_serve, NULL);
    if (!rc) rc = lp2p_host_handle(h, LP2P__ID_PUSH_PROTO, lp2p__id_serve_push, NULL);
    h->identify = id; /* set last: no push for our own built-in handlers */
    return rc;
}

LP2P__PRIV void lp2p__identify_free(lp2p_host *h) {
    lp2p__free(&h->ctx, h->identify, sizeof *h->identify);
    h->identify = NULL;
}

/* ---- public: what a peer told us ------------------------------------------------------------------ */
LP2P_API int lp2p_host_identify(lp2p_host *h, const char *peer_or_addr, int64_t deadline) {
    lp2p__conn *c = NULL;
    int rc = lp2p__swarm_connect(h, peer_or_addr, &c, deadline);
    while (rc == LP2P_OK && !c->identified) rc = lp2p__waitq_wait(h->sched, &c->identify_wait, deadline);
    if (c) lp2p__conn_unref(c);
    return rc;
}

LP2P_API int lp2p_host_peer_info(lp2p_host *h, const lp2p_peer_id *peer, lp2p_peer_info *out) {
    lp2p__peer *p = lp2p__peerstore_get(h, peer, false);
    if (!p) return LP2P_ERR_NOTFOUND;
    lp2p__buf *b = &h->info_text;
    b->len = 0;
    memset(out, 0, sizeof *out);
    out->id = p->id;
    out->agent_version = p->agent_version;
    out->protocol_version = p->protocol_version;
    out->protocols = (const char *const *)p->protocols;
    out->n_protocols = p->n_protocols;
    /* addresses as text, packed in one buffer (which may move while growing): offsets first,
     * pointers after; the last entry is the observed address */
    size_t offs[LP2P__MAX_PEER_ADDRS + 1];
    bool have[LP2P__MAX_PEER_ADDRS + 1];
    for (int i = 0; i <= p->n_addrs; i++) {
        const lp2p__ma *ma = i < p->n_addrs ? &p->addrs[i].ma : &p->observed;
        char text[LP2P__MA_STRLEN];
        have[i] = ma->len && lp2p__ma_str(ma, text, sizeof text) >= 0;
        offs[i] = b->len;
        if (have[i] && lp2p__buf_append(&h->ctx, b, text, strlen(text) + 1)) return LP2P_ERR_NOMEM;
    }
    for (int i = 0; i < p->n_addrs && out->n_addrs < LP2P_MAX_INFO_ADDRS; i++)
        if (have[i]) out->addrs[out->n_addrs++] = (const char *)b->p + offs[i];
    if (have[p->n_addrs]) out->observed_addr = (const char *)b->p + offs[p->n_addrs];
    return LP2P_OK;
}
/*==================== end src/identify.c ====================*/
/*==================== begin src/ping.c ====================*/
/* ping.c - L7: the ping protocol, client (lp2p_ping) and service.
 *
 * Spec: libp2p/specs ping/ping.md. The dialer writes 32 random bytes, the listener echoes them;
 * the dialer may repeat on the same stream. We serve any number of pings per stream (js and
 * go loop on one stream) with a deadline per ping so a silent peer cannot hold a task.
 * Depends on: host.h. */
// (amalgamated) #include "host.h"

#define LP2P__PING_PROTO "/ipfs/ping/1.0.0"
#define LP2P__PING_SIZE 32
#define LP2P__PING_IDLE_MS 60000

static void lp2p__ping_serve(lp2p_stream *s, void *user) {
    uint8_t buf[LP2P__PING_SIZE];
    (void)user;
    while (lp2p_stream_read_full(s, buf, sizeof buf, lp2p_deadline_in(LP2P__PING_IDLE_MS)) == LP2P_OK)
        if (lp2p_stream_write(s, buf, sizeof buf, lp2p_deadline_in(LP2P__PING_IDLE_MS)) != LP2P_OK) break;
}

LP2P__PRIV int lp2p__ping_init(lp2p_host *h) { return lp2p_host_handle(h, LP2P__PING_PROTO, lp2p__ping_serve, NULL); }

LP2P_API int lp2p_ping(lp2p_host *h, const char *peer_or_addr, int64_t deadline) {
    uint8_t out[LP2P__PING_SIZE], in[LP2P__PING_SIZE];
    lp2p_stream *s = NULL;
    int rc = lp2p_stream_open(h, peer_or_addr, LP2P__PING_PROTO, deadline, &s);
    if (rc) return rc;
    lp2p__random(out, sizeof out);
    int64_t t0 = lp2p__now_us();
    rc = lp2p_stream_write(s, out, sizeof out, deadline);
    if (rc == LP2P_OK) rc = lp2p_stream_read_full(s, in, sizeof in, deadline);
    int64_t rtt = lp2p__now_us() - t0;
    if (rc == LP2P_OK && memcmp(in, out, sizeof in) != 0) rc = LP2P_ERR_PROTOCOL;
    if (rc == LP2P_OK) {
        lp2p_stream_close_write(s);
        lp2p_stream_close(s);
        return (int)LP2P__MIN(rtt, (int64_t)INT32_MAX);
    }
    lp2p_stream_reset(s);
    return rc;
}
/*==================== end src/ping.c ====================*/
/*==================== begin src/perf.c ====================*/
/* perf.c - L7: the perf benchmark protocol /perf/1.0.0: client (lp2p_perf) and the opt-in
 * service (lp2p_perf_serve).
 *
 * Spec: libp2p/specs perf/perf.md. Client: open a stream, send the number of bytes it wants
 * back as a big-endian u64, upload, close the write side, read until EOF. Server: read the u64,
 * read until EOF (never concurrently with step 3), send that many bytes, close. Any u64 is a
 * valid count, so the server's own limits (perf.md "Security Considerations") are config: the
 * number of streams served at once, optional byte caps, a stall timeout, an allow callback.
 * Data path: bytes on the wire are zeros, written in LP2P__PERF_WRITE pieces straight from a
 * static zero buffer (yamux copies them into its frames) and read into one discard buffer per
 * host; the only per-chunk work is counting and a clock read for progress reports.
 * Depends on: host.h. */
// (amalgamated) #include "host.h"

/* Writes of 1 MiB take ~15% less sender CPU than 256 KiB ones here (fewer hand-offs to the yamux
 * writer task); reads return at most what yamux has buffered, so the sink stays smaller. */
#define LP2P__PERF_WRITE (1u << 20)   /* bytes per write, straight from the zero buffer */
#define LP2P__PERF_READ (256u * 1024) /* bytes per read into the host's sink */
#define LP2P__PERF_MAX_STREAMS 16
#define LP2P__PERF_TIMEOUT_MS 30000
#define LP2P__PERF_REPORT_MS 1000

/* Never written. Zero-initialised and not const so it lives in .bss: no file size, and pages
 * that are only read map the kernel's shared zero page. */
static uint8_t lp2p__perf_zeros[LP2P__PERF_WRITE];

struct lp2p__perf {
    lp2p_perf_server_config cfg; /* resolved (zeros replaced by defaults; byte caps 0 = none) */
    int active;                  /* streams being served now */
    uint8_t *sink;               /* LP2P__PERF_READ bytes; every read of this host lands here and is
                                    discarded, so concurrent perf tasks can share it */
};

/* The host's perf state, created on first use (service or client). NULL: out of memory. */
static lp2p__perf *lp2p__perf_get(lp2p_host *h) {
    if (h->perf) return h->perf;
    lp2p__perf *p = (lp2p__perf *)lp2p__zalloc(&h->ctx, sizeof *p);
    if (!p) return NULL;
    if (!(p->sink = (uint8_t *)lp2p__alloc(&h->ctx, LP2P__PERF_READ))) {
        lp2p__free(&h->ctx, p, sizeof *p);
        return NULL;
    }
    p->cfg.max_streams = LP2P__PERF_MAX_STREAMS;
    p->cfg.timeout_ms = LP2P__PERF_TIMEOUT_MS;
    h->perf = p;
    return p;
}

LP2P__PRIV void lp2p__perf_free(lp2p_host *h) {
    if (!h->perf) return;
    lp2p__free(&h->ctx, h->perf->sink, LP2P__PERF_READ);
    lp2p__free(&h->ctx, h->perf, sizeof *h->perf);
    h->perf = NULL;
}

/* ---- service ------------------------------------------------------------------------------- */
/* One stream, server side (perf.md "Protocol", server steps 1-3). OK or the error that ends it;
 * a limit is logged here, naming it. */
static int lp2p__perf_serve_one(lp2p_stream *s, lp2p__perf *p, const lp2p_perf_server_config *c, const char *id) {
    lp2p__ctx *ctx = &lp2p_stream_host(s)->ctx;
    uint8_t count[8];
    uint64_t uploaded = 0;
    int rc = lp2p_stream_read_full(s, count, sizeof count, lp2p_deadline_in(c->timeout_ms));
    if (rc) return rc;
    uint64_t want = lp2p__be64(count);
    if (c->max_download_bytes && want > c->max_download_bytes) {
        LP2P__WARN(ctx, LP2P_ERR_LIMIT, "perf: %s asked for %llu bytes: over max_download_bytes=%llu: resetting", id,
                   (unsigned long long)want, (unsigned long long)c->max_download_bytes);
        return LP2P_ERR_LIMIT;
    }
    for (;;) { /* drain the upload to EOF before answering (MUST NOT overlap step 3) */
        ptrdiff_t n = lp2p_stream_read(s, p->sink, LP2P__PERF_READ, lp2p_deadline_in(c->timeout_ms));
        if (n < 0) return (int)n;
        if (n == 0) break;
        uploaded += (uint64_t)n;
        if (c->max_upload_bytes && uploaded > c->max_upload_bytes) {
            LP2P__WARN(ctx, LP2P_ERR_LIMIT, "perf: %s uploaded over max_upload_bytes=%llu: resetting", id,
                       (unsigned long long)c->max_upload_bytes);
            return LP2P_ERR_LIMIT;
        }
    }
    while (want) {
        size_t k = want < LP2P__PERF_WRITE ? (size_t)want : LP2P__PERF_WRITE;
        if ((rc = lp2p_stream_write(s, lp2p__perf_zeros, k, lp2p_deadline_in(c->timeout_ms))) != LP2P_OK) return rc;
        want -= k;
    }
    return LP2P_OK;
}

static void lp2p__perf_handler(lp2p_stream *s, void *user) {
    lp2p_host *h = lp2p_stream_host(s);
    lp2p__perf *p = h->perf;
    lp2p_perf_server_config c = p->cfg; /* a later lp2p_perf_serve applies to later streams */
    lp2p_peer_id peer = lp2p_stream_peer(s);
    char id[LP2P_PEER_ID_STRLEN];
    (void)user;
    lp2p_peer_id_str(&peer, id, sizeof id);
    if (c.allow && !c.allow(c.allow_user, &peer)) {
        LP2P__INFO(&h->ctx, "perf: %s is not allowed: resetting its stream", id);
        lp2p_stream_reset(s);
        return;
    }
    if (p->active >= c.max_streams) {
        LP2P__WARN(&h->ctx, LP2P_ERR_LIMIT, "perf: max_streams=%d reached: resetting a stream from %s", c.max_streams, id);
        lp2p_stream_reset(s);
        return;
    }
    p->active++;
    int rc = lp2p__perf_serve_one(s, p, &c, id);
    p->active--;
    if (rc == LP2P_OK) return; /* the host closes the stream: our FIN ends the download */
    if (rc != LP2P_ERR_LIMIT && rc != LP2P_ERR_CANCELED)
        LP2P__INFO(&h->ctx, "perf: stream from %s ended: %s: resetting", id, lp2p_strerror(rc));
    lp2p_stream_reset(s);
}

LP2P_API int lp2p_perf_serve(lp2p_host *h, const lp2p_perf_server_config *cfg) {
    lp2p_perf_server_config c;
    if (!h) return LP2P_ERR_INVALID;
    if (cfg) c = *cfg;
    else memset(&c, 0, sizeof c);
    if (c.max_streams < 0 || c.timeout_ms < 0) return LP2P_ERR_INVALID;
    if (!c.max_streams) c.max_streams = LP2P__PERF_MAX_STREAMS;
    if (!c.timeout_ms) c.timeout_ms = LP2P__PERF_TIMEOUT_MS;
    lp2p__perf *p = lp2p__perf_get(h);
    if (!p) return LP2P_ERR_NOMEM;
    p->cfg = c;
    return lp2p_host_handle(h, LP2P_PERF_PROTOCOL, lp2p__perf_handler, NULL);
}

/* ---- client -------------------------------------------------------------------------------- */
typedef struct lp2p__perf_meter {
    lp2p_perf_options opt; /* resolved */
    int64_t last_us;       /* end of the previous report */
    uint64_t up, down;     /* totals */
    uint64_t last_up, last_down;
} lp2p__perf_meter;

/* Report progress if an interval has passed (or, with done, always). */
static void lp2p__perf_tick(lp2p__perf_meter *m, bool done) {
    if (!m->opt.progress) return;
    int64_t now = lp2p__now_us();
    if (!done && now - m->last_us < (int64_t)m->opt.report_interval_ms * 1000) return;
    lp2p_perf_report r;
    r.interval_us = now - m->last_us;
    r.upload_bytes = m->up - m->last_up;
    r.download_bytes = m->down - m->last_down;
    r.total_upload_bytes = m->up;
    r.total_download_bytes = m->down;
    r.done = done;
    m->last_us = now, m->last_up = m->up, m->last_down = m->down;
    m->opt.progress(m->opt.user, &r);
}

/* Upload: the count, then `bytes` zeros, then our FIN (client steps 2-4). */
static int lp2p__perf_upload(lp2p_stream *s, uint64_t want_back, uint64_t bytes, lp2p__perf_meter *m, int64_t deadline) {
    uint8_t count[8];
    int timeout = m->opt.timeout_ms;
    lp2p__put_be64(count, want_back);
    int rc = lp2p_stream_write(s, count, sizeof count, lp2p__deadline_min(deadline, lp2p_deadline_in(timeout)));
    while (rc == LP2P_OK && bytes) {
        size_t k = bytes < LP2P__PERF_WRITE ? (size_t)bytes : LP2P__PERF_WRITE;
        rc = lp2p_stream_write(s, lp2p__perf_zeros, k, lp2p__deadline_min(deadline, lp2p_deadline_in(timeout)));
        if (rc == LP2P_OK) bytes -= k, m->up += k, lp2p__perf_tick(m, false);
    }
    return rc == LP2P_OK ? lp2p_stream_close_write(s) : rc;
}

/* Download: count the server's bytes until its EOF; exactly `bytes` or ERR_PROTOCOL (step 5). */
static int lp2p__perf_download(lp2p_stream *s, uint8_t *sink, uint64_t bytes, lp2p__perf_meter *m, int64_t deadline) {
    for (;;) {
        ptrdiff_t n = lp2p_stream_read(s, sink, LP2P__PERF_READ,
                                       lp2p__deadline_min(deadline, lp2p_deadline_in(m->opt.timeout_ms)));
        if (n < 0) return (int)n;
        if (n == 0) return m->down == bytes ? LP2P_OK : LP2P_ERR_PROTOCOL;
        if ((uint64_t)n > bytes - m->down) return LP2P_ERR_PROTOCOL; /* more than we asked for */
        m->down += (uint64_t)n;
        lp2p__perf_tick(m, false);
    }
}

LP2P_API int lp2p_perf(lp2p_host *h, const char *peer_or_addr, uint64_t upload_bytes, uint64_t download_bytes,
                       const lp2p_perf_options *opt, lp2p_perf_result *out, int64_t deadline) {
    lp2p__perf_meter m;
    lp2p_stream *s = NULL;
    if (!h || !peer_or_addr) return LP2P_ERR_INVALID;
    memset(&m, 0, sizeof m);
    if (opt) m.opt = *opt;
    if (m.opt.report_interval_ms < 0 || m.opt.timeout_ms < 0) return LP2P_ERR_INVALID;
    if (!m.opt.report_interval_ms) m.opt.report_interval_ms = LP2P__PERF_REPORT_MS;
    if (!m.opt.timeout_ms) m.opt.timeout_ms = LP2P__PERF_TIMEOUT_MS;
    lp2p__perf *p = lp2p__perf_get(h);
    if (!p) return LP2P_ERR_NOMEM;
    int64_t t0 = m.last_us = lp2p__now_us();
    int rc = lp2p_host_connect(h, peer_or_addr, lp2p__deadline_min(deadline, lp2p_deadline_in(m.opt.timeout_ms)));
    int64_t t1 = lp2p__now_us();
    if (rc == LP2P_OK)
        rc = lp2p_stream_open(h, peer_or_addr, LP2P_PERF_PROTOCOL,
                              lp2p__deadline_min(deadline, lp2p_deadline_in(m.opt.timeout_ms)), &s);
    if (rc) return rc;
    int64_t t2 = lp2p__now_us();
    rc = lp2p__perf_upload(s, download_bytes, upload_bytes, &m, deadline);
    int64_t t3 = lp2p__now_us();
    if (rc == LP2P_OK) rc = lp2p__perf_download(s, p->sink, download_bytes, &m, deadline);
    int64_t t4 = lp2p__now_us();
    if (rc) {
        lp2p_stream_reset(s);
        return rc;
    }
    lp2p_stream_close(s);
    lp2p__perf_tick(&m, true);
    if (out) {
        out->upload_bytes = m.up, out->download_bytes = m.down;
        out->connect_us = t1 - t0, out->stream_us = t2 - t1, out->upload_us = t3 - t2, out->download_us = t4 - t3;
        out->total_us = t4 - t0;
    }
    return LP2P_OK;
}
/*==================== end src/perf.c ====================*/
/*==================== begin src/kad_msg.c ====================*/
/* kad_msg.c - L7: Kademlia DHT wire messages (decode and encode).
 *
 * Spec: libp2p/specs kad-dht/README.md "RPC messages". proto3: a missing `type` means
 * PUT_VALUE (go and js omit it), fields may come in any order, unknown fields are skipped.
 * Decoding is zero-copy: byte fields become slices of the message buffer (nanopb buffer
 * streams keep their read position in `state`). Every list is capped (LP2P__KAD_MSG_PEERS
 * peers, LP2P__KAD_PEER_ADDRS addresses each); what is beyond is skipped and counted.
 * Depends on: kad.h (host.h, proto/kad.pb.h). */
// (amalgamated) #include "kad.h"

#include <pb_decode.h>
#include <pb_encode.h>

/* ---- decoding --------------------------------------------------------------------------- */
/* Take the rest of a (sub)stream as a slice of the message buffer. A field sent with the
 * varint wire type reaches a bytes callback as a stream over nanopb's own stack copy: that
 * is a malformed message, refused. */
static bool lp2p__kad_take(const lp2p__kad_msg *m, pb_istream_t *st, lp2p__kad_slice *out) {
    const uint8_t *p = (const uint8_t *)st->state;
    if (p < m->buf || p > m->buf + m->buf_len || st->bytes_left > (size_t)(m->buf + m->buf_len - p)) return false;
    out->p = p;
    out->len = st->bytes_left;
    return pb_read(st, NULL, st->bytes_left);
}

typedef struct lp2p__kad_dpeer {
    lp2p__kad_wpeer *p;
    lp2p__kad_msg *m;
} lp2p__kad_dpeer;

static bool lp2p__kad_dec_peer_field(pb_istream_t *st, const pb_field_t *f, void **arg) {
    lp2p__kad_dpeer *d = (lp2p__kad_dpeer *)*arg;
    if (f->tag == lp2p_pb_KadPeer_id_tag) return lp2p__kad_take(d->m, st, &d->p->id);
    if (d->p->n_addrs >= LP2P__KAD_PEER_ADDRS) {
        d->m->skipped++;
        return pb_read(st, NULL, st->bytes_left);
    }
    return lp2p__kad_take(d->m, st, &d->p->addrs[d->p->n_addrs++]);
}

static bool lp2p__kad_dec_peer(pb_istream_t *st, const pb_field_t *f, void **arg) {
    lp2p__kad_msg *m = (lp2p__kad_msg *)*arg;
    bool closer = f->tag == lp2p_pb_KadMessage_closerPeers_tag;
    int *n = closer ? &m->n_closer : &m->n_providers;
    lp2p__kad_wpeer tmp, *p = *n < LP2P__KAD_MSG_PEERS ? (closer ? &m->closer[*n] : &m->providers[*n]) : &tmp;
    memset(p, 0, sizeof *p);
    lp2p__kad_dpeer d = {p, m};
    lp2p_pb_KadPeer pm;
    memset(&pm, 0, sizeof pm);
    pm.id.funcs.decode = lp2p__kad_dec_peer_field, pm.id.arg = &d;
    pm.addrs.funcs.decode = lp2p__kad_dec_peer_field, pm.addrs.arg = &d;
    if (!pb_decode(st, lp2p_pb_KadPeer_fields, &pm)) return false;
    p->connection = (int)pm.connection;
    if (p == &tmp) m->skipped++;
    else (*n)++;
    return true;
}

static bool lp2p__kad_dec_key(pb_istream_t *st, const pb_field_t *f, void **arg) {
    lp2p__kad_msg *m = (lp2p__kad_msg *)*arg;
    (void)f;
    return lp2p__kad_take(m, st, &m->key);
}

static bool lp2p__kad_dec_record(pb_istream_t *st, const pb_field_t *f, void **arg) {
    lp2p__kad_msg *m = (lp2p__kad_msg *)*arg;
    lp2p__kad_slice *out = f->tag == lp2p_pb_KadRecord_key_tag     ? &m->rec_key
                           : f->tag == lp2p_pb_KadRecord_value_tag ? &m->rec_value
                                                                    : &m->rec_time;
    return lp2p__kad_take(m, st, out);
}

LP2P__PRIV int lp2p__kad_msg_decode(const uint8_t *buf, size_t len, lp2p__kad_msg *m) {
    lp2p_pb_KadMessage pm;
    memset(m, 0, sizeof *m);
    memset(&pm, 0, sizeof pm);
    m->buf = buf, m->buf_len = len;
    pm.key.funcs.decode = lp2p__kad_dec_key, pm.key.arg = m;
    pm.record.key.funcs.decode = lp2p__kad_dec_record, pm.record.key.arg = m;
    pm.record.value.funcs.decode = lp2p__kad_dec_record, pm.record.value.arg = m;
    pm.record.timeReceived.funcs.decode = lp2p__kad_dec_record, pm.record.timeReceived.arg = m;
    pm.closerPeers.funcs.decode = lp2p__kad_dec_peer, pm.closerPeers.arg = m;
    pm.providerPeers.funcs.decode = lp2p__kad_dec_peer, pm.providerPeers.arg = m;
    pb_istream_t st = pb_istream_from_buffer(buf, len);
    if (!pb_decode(&st, lp2p_pb_KadMessage_fields, &pm)) return LP2P_ERR_PROTOCOL;
    if ((int)pm.type < 0 || pm.type > lp2p_pb_KadMessage_MessageType_PING) return LP2P_ERR_PROTOCOL;
    m->type = (int)pm.type;
    m->cluster_level = pm.clusterLevelRaw;
    m->has_record = pm.has_record;
    return LP2P_OK;
}

/* ---- encoding ------------------------------------------------------------------------------ */
static bool lp2p__kad_enc_bytes(pb_ostream_t *st, const pb_field_t *f, const void *p, size_t n) {
    return pb_encode_tag_for_field(st, f) && pb_encode_string(st, (const pb_byte_t *)p, n);
}

typedef struct lp2p__kad_enc_one {
    const uint8_t *p;
    size_t n;
} lp2p__kad_enc_one;

static bool lp2p__kad_enc_cb_bytes(pb_ostream_t *st, const pb_field_t *f, void *const *arg) {
    const lp2p__kad_enc_one *o = (const lp2p__kad_enc_one *)*arg;
    return !o->p || lp2p__kad_enc_bytes(st, f, o->p, o->n);
}

typedef struct lp2p__kad_enc_peer {
    lp2p_host *h;
    const lp2p_peer_id *id;
} lp2p__kad_enc_peer;

/* A peer's addresses: ours are the listen addresses, others' come from the peerstore
 * (unexpired ones, at most LP2P__KAD_PEER_ADDRS). */
static bool lp2p__kad_enc_addrs(pb_ostream_t *st, const pb_field_t *f, void *const *arg) {
    const lp2p__kad_enc_peer *e = (const lp2p__kad_enc_peer *)*arg;
    lp2p_host *h = e->h;
    int n = 0;
    if (lp2p_peer_id_eq(e->id, &h->identity.id)) {
        for (lp2p__listener *l = h->listeners; l && n < LP2P__KAD_PEER_ADDRS; l = l->next, n++)
            if (!lp2p__kad_enc_bytes(st, f, l->addr.b, l->addr.len)) return false;
        return true;
    }
    lp2p__peer *p = lp2p__peerstore_get(h, e->id, false);
    int64_t now = lp2p_now();
    for (int i = 0; p && i < p->n_addrs && n < LP2P__KAD_PEER_ADDRS; i++) {
        if (p->addrs[i].expires >= 0 && p->addrs[i].expires < now) continue;
        if (!lp2p__kad_enc_bytes(st, f, p->addrs[i].ma.b, p->addrs[i].ma.len)) return false;
        n++;
    }
    return true;
}

static bool lp2p__kad_enc_id(pb_ostream_t *st, const pb_field_t *f, void *const *arg) {
    const lp2p__kad_enc_peer *e = (const lp2p__kad_enc_peer *)*arg;
    return lp2p__kad_enc_bytes(st, f, e->id->bytes, e->id->len);
}

typedef struct lp2p__kad_enc_list {
    lp2p_host *h;
    const lp2p_peer_id *ids;
    int n;
} lp2p__kad_enc_list;

static bool lp2p__kad_enc_peers(pb_ostream_t *st, const pb_field_t *f, void *const *arg) {
    const lp2p__kad_enc_list *l = (const lp2p__kad_enc_list *)*arg;
    for (int i = 0; i < l->n; i++) {
        lp2p__kad_enc_peer e = {l->h, &l->ids[i]};
        lp2p_pb_KadPeer pm;
        memset(&pm, 0, sizeof pm);
        pm.id.funcs.encode = lp2p__kad_enc_id, pm.id.arg = &e;
        pm.addrs.funcs.encode = lp2p__kad_enc_addrs, pm.addrs.arg = &e;
        pm.connection = lp2p__swarm_find_conn(l->h, &l->ids[i]) ? lp2p_pb_KadPeer_ConnectionType_CONNECTED
                                                                 : lp2p_pb_KadPeer_ConnectionType_NOT_CONNECTED;
        if (lp2p_peer_id_eq(&l->ids[i], &l->h->identity.id)) pm.connection = lp2p_pb_KadPeer_ConnectionType_CONNECTED;
        if (!pb_encode_tag_for_field(st, f) || !pb_encode_submessage(st, lp2p_pb_KadPeer_fields, &pm)) return false;
    }
    return true;
}

static bool lp2p__kad_encode_into(pb_ostream_t *st, const lp2p__kad_out *o) {
    lp2p_pb_KadMessage pm;
    memset(&pm, 0, sizeof pm);
    lp2p__kad_enc_one key = {o->key, o->key_len}, rk = {o->rec_key, o->rec_key_len},
                      rv = {o->rec_value, o->rec_value_len}, rt = {o->rec_time, o->rec_time_len};
    lp2p__kad_enc_list closer = {o->h, o->closer, o->n_closer}, prov = {o->h, o->providers, o->n_providers};
    pm.type = (lp2p_pb_KadMessage_MessageType)o->type;
    pm.key.funcs.encode = lp2p__kad_enc_cb_bytes, pm.key.arg = &key;
    pm.has_record = o->has_record;
    pm.record.key.funcs.encode = lp2p__kad_enc_cb_bytes, pm.record.key.arg = &rk;
    pm.record.value.funcs.encode = lp2p__kad_enc_cb_bytes, pm.record.value.arg = &rv;
    pm.record.timeReceived.funcs.encode = lp2p__kad_enc_cb_bytes, pm.record.timeReceived.arg = &rt;
    if (o->n_closer) pm.closerPeers.funcs.encode = lp2p__kad_enc_peers, pm.closerPeers.arg = &closer;
    if (o->n_providers) pm.providerPeers.funcs.encode = lp2p__kad_enc_peers, pm.providerPeers.arg = &prov;
    return pb_encode(st, lp2p_pb_KadMessage_fields, &pm);
}

LP2P__PRIV int lp2p__kad_msg_encode(lp2p__ctx *ctx, const lp2p__kad_out *o, lp2p__buf *b) {
    pb_ostream_t sz = PB_OSTREAM_SIZING;
    if (!lp2p__kad_encode_into(&sz, o)) return LP2P_ERR_MSGSIZE;
    if (lp2p__buf_reserve(ctx, b, sz.bytes_written)) return LP2P_ERR_NOMEM;
    pb_ostream_t st = pb_ostream_from_buffer(b->p + b->len, sz.bytes_written);
    if (!lp2p__kad_encode_into(&st, o)) return LP2P_ERR_MSGSIZE;
    b->len += st.bytes_written;
    return LP2P_OK;
}
/*==================== end src/kad_msg.c ====================*/
/*==================== begin src/kad_rt.c ====================*/
/* kad_rt.c - L7: the Kademlia keyspace and routing table.
 *
 * Spec: libp2p/specs kad-dht/README.md "Kademlia routing table": keys live in SHA-256 space,
 * distance is XOR, a peer's Kademlia ID is SHA-256 of its binary peer ID; one bucket per
 * common prefix length (cpl) with our ID, k entries each. The caller (kad.c) admits only
 * servers and checks the least recently seen peer before evicting it (entries are kept in
 * least-recently-seen order, e[0] first). IP diversity (ipfs/specs kad-dht: at most 3 peers
 * per IP group in the table and 2 per bucket; a group is a /16 of IPv4 or, lacking an ASN
 * database, a /32 of IPv6); loopback and private addresses are exempt, as in go's filter.
 * Depends on: kad.h. */
// (amalgamated) #include "kad.h"

LP2P__PRIV void lp2p__kad_hash(const uint8_t *key, size_t len, uint8_t out[32]) { lp2p__sha256_once(key, len, out); }

LP2P__PRIV int lp2p__kad_cpl(const uint8_t a[32], const uint8_t b[32]) {
    for (int i = 0; i < 32; i++) {
        uint8_t x = a[i] ^ b[i];
        if (x) {
            int n = i * 8;
            while (!(x & 0x80)) x <<= 1, n++;
            return n;
        }
    }
    return 256;
}

LP2P__PRIV int lp2p__kad_cmp(const uint8_t target[32], const uint8_t a[32], const uint8_t b[32]) {
    for (int i = 0; i < 32; i++) {
        uint8_t da = a[i] ^ target[i], db = b[i] ^ target[i];
        if (da != db) return da < db ? -1 : 1;
    }
    return 0;
}

static bool lp2p__ip4_private(const uint8_t *v) {
    return v[0] == 10 || v[0] == 127 || v[0] == 0 || (v[0] == 172 && (v[1] & 0xf0) == 16) ||
           (v[0] == 192 && v[1] == 168) || (v[0] == 169 && v[1] == 254) || (v[0] == 100 && (v[1] & 0xc0) == 64);
}

LP2P__PRIV bool lp2p__kad_ip_group(const lp2p__ma *ma, uint8_t group[5]) {
    size_t off = 0, vn;
    uint32_t code;
    const uint8_t *v;
    memset(group, 0, 5);
    if (!ma || !lp2p__ma_next(ma, &off, &code, &v, &vn)) return false;
    if (code == LP2P__MA_IP4 && vn == 4) {
        if (lp2p__ip4_private(v)) return false;
        group[0] = 4, group[1] = v[0], group[2] = v[1];
        return true;
    }
    if (code == LP2P__MA_IP6 && vn == 16) {
        static const uint8_t zero[15] = {0};
        if ((v[0] & 0xfe) == 0xfc || (v[0] == 0xfe && (v[1] & 0xc0) == 0x80) || memcmp(v, zero, 15) == 0) return false;
        group[0] = 6;
        memcpy(group + 1, v, 4);
        return true;
    }
    return false;
}

LP2P__PRIV void lp2p__rt_init(lp2p__kad_rt *rt, lp2p__ctx *ctx, const lp2p_peer_id *self, int k, int max_group,
                              int max_group_bucket) {
    memset(rt, 0, sizeof *rt);
    rt->ctx = ctx;
    rt->k = k, rt->max_group = max_group, rt->max_group_bucket = max_group_bucket;
    lp2p__kad_hash(self->bytes, self->len, rt->self);
}

LP2P__PRIV void lp2p__rt_free(lp2p__kad_rt *rt) {
    for (int i = 0; i < 256; i++) lp2p__free(rt->ctx, rt->b[i].e, sizeof(lp2p__kad_entry) * (size_t)rt->k);
    memset(rt->b, 0, sizeof rt->b);
    rt->size = 0;
}

LP2P__PRIV int lp2p__rt_bucket_of(lp2p__kad_rt *rt, const uint8_t hash[32]) {
    int cpl = lp2p__kad_cpl(rt->self, hash);
    return cpl > 255 ? 255 : cpl;
}

static int lp2p__rt_index(lp2p__kad_bucket *b, const lp2p_peer_id *id) {
    for (int i = 0; i < b->n; i++)
        if (lp2p_peer_id_eq(&b->e[i].id, id)) return i;
    return -1;
}

LP2P__PRIV lp2p__kad_entry *lp2p__rt_find(lp2p__kad_rt *rt, const lp2p_peer_id *id) {
    uint8_t h[32];
    lp2p__kad_hash(id->bytes, id->len, h);
    lp2p__kad_bucket *b = &rt->b[lp2p__rt_bucket_of(rt, h)];
    int i = lp2p__rt_index(b, id);
    return i < 0 ? NULL : &b->e[i];
}

/* Would one more peer of this IP group break the diversity caps? */
static bool lp2p__rt_group_full(lp2p__kad_rt *rt, lp2p__kad_bucket *bucket, const uint8_t group[5]) {
    if (!group || !group[0] || rt->max_group < 0) return false;
    int total = 0, in_bucket = 0;
    for (int i = 0; i < 256; i++)
        for (int j = 0; j < rt->b[i].n; j++)
            if (memcmp(rt->b[i].e[j].group, group, 5) == 0) total++, in_bucket += &rt->b[i] == bucket;
    return total >= rt->max_group || in_bucket >= rt->max_group_bucket;
}

LP2P__PRIV lp2p__rt_result lp2p__rt_add(lp2p__kad_rt *rt, const lp2p_peer_id *id, const uint8_t group[5], int64_t now,
                                        lp2p_peer_id *evict) {
    uint8_t h[32];
    lp2p__kad_hash(id->bytes, id->len, h);
    int cpl = lp2p__kad_cpl(rt->self, h);
    if (cpl == 256) return LP2P__RT_REJECTED; /* ourselves */
    lp2p__kad_bucket *b = &rt->b[cpl];
    int i = lp2p__rt_index(b, id);
    if (i >= 0) { /* seen again: move to the most-recently-seen end */
        lp2p__kad_entry e = b->e[i];
        memmove(&b->e[i], &b->e[i + 1], sizeof e * (size_t)(b->n - i - 1));
        e.seen = now;
        b->e[b->n - 1] = e;
        return LP2P__RT_UPDATED;
    }
    if (lp2p__rt_group_full(rt, b, group)) return LP2P__RT_REJECTED;
    if (b->n == rt->k) {
        if (evict) *evict = b->e[0].id;
        return LP2P__RT_FULL;
    }
    if (!b->e && !(b->e = (lp2p__kad_entry *)lp2p__zalloc(rt->ctx, sizeof(lp2p__kad_entry) * (size_t)rt->k)))
        return LP2P__RT_NOMEM;
    lp2p__kad_entry *e = &b->e[b->n++];
    memset(e, 0, sizeof *e);
    e->id = *id;
    memcpy(e->hash, h, 32);
    e->added = e->seen = now;
    if (group) memcpy(e->group, group, 5);
    rt->size++;
    return LP2P__RT_ADDED;
}

LP2P__PRIV bool lp2p__rt_remove(lp2p__kad_rt *rt, const lp2p_peer_id *id) {
    uint8_t h[32];
    lp2p__kad_hash(id->bytes, id->len, h);
    lp2p__kad_bucket *b = &rt->b[lp2p__rt_bucket_of(rt, h)];
    int i = lp2p__rt_index(b, id);
    if (i < 0) return false;
    memmove(&b->e[i], &b->e[i + 1], sizeof(lp2p__kad_entry) * (size_t)(b->n - i - 1));
    b->n--;
    rt->size--;
    return true;
}

/* Insertion into a small sorted array keeps this O(size * max): tables hold a few hundred. */
LP2P__PRIV int lp2p__rt_closest(lp2p__kad_rt *rt, const uint8_t target[32], const lp2p_peer_id *exclude,
                                lp2p_peer_id *out, int max) {
    const lp2p__kad_entry *best[LP2P__KAD_MAX_LOOKUP_PEERS];
    int n = 0;
    if (max > (int)LP2P__COUNT(best)) max = (int)LP2P__COUNT(best);
    for (int i = 0; i < 256; i++)
        for (int j = 0; j < rt->b[i].n; j++) {
            const lp2p__kad_entry *e = &rt->b[i].e[j];
            if (exclude && lp2p_peer_id_eq(&e->id, exclude)) continue;
            int pos = n;
            while (pos > 0 && lp2p__kad_cmp(target, e->hash, best[pos - 1]->hash) < 0) pos--;
            if (pos >= max) continue;
            if (n < max) n++;
            memmove(&best[pos + 1], &best[pos], sizeof best[0] * (size_t)(n - 1 - pos));
            best[pos] = e;
        }
    for (int i = 0; i < n; i++) out[i] = best[i]->id;
    return n;
}

LP2P__PRIV size_t lp2p__rt_random_key(lp2p__kad_rt *rt, int cpl, uint8_t *key) {
    uint8_t h[32];
    /* looks like an identity-multihash Ed25519 peer ID, as go's refresh keys do */
    key[0] = 0x00, key[1] = 0x24, key[2] = 0x08, key[3] = 0x01, key[4] = 0x12, key[5] = 0x20;
    lp2p__random(key + 6, 32);
    for (uint32_t tries = 0; tries < (1u << 22); tries++) { /* a counter in the last bytes */
        lp2p__put_be32(key + 34, tries);
        lp2p__kad_hash(key, 38, h);
        if (lp2p__kad_cpl(rt->self, h) == cpl) break;
    }
    return 38;
}
/*==================== end src/kad_rt.c ====================*/
/*==================== begin src/kad_store.c ====================*/
/* kad_store.c - L7: the DHT's local stores: provider records, value records, and the record
 * validators per namespace.
 *
 * Spec: libp2p/specs kad-dht/README.md "Content provider advertisement and discovery" and
 * "Value storage and retrieval" (validator = Validate + Select); ipfs/specs
 * src/routing/kad-dht.md (providers 48 h; only /pk/ and /ipns/ on Amino, all else rejected).
 * Both stores are hash tables with a cap on entries (LP2P_ERR_LIMIT when full, logged by the
 * caller); expired entries are dropped by lp2p__store_expire and skipped on reads.
 * Depends on: kad.h. */
// (amalgamated) #include "kad.h"

#include <stdio.h>
#include <time.h>

static uint32_t lp2p__store_hash(const uint8_t *p, size_t n) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
    return h % LP2P__KAD_STORE_BUCKETS;
}

/* ---- providers ---------------------------------------------------------------------------- */
static lp2p__kad_pkey *lp2p__store_pkey(lp2p__kad_store *st, const uint8_t *key, size_t len, bool create) {
    lp2p__kad_pkey **head = &st->prov[lp2p__store_hash(key, len)];
    for (lp2p__kad_pkey *k = *head; k; k = k->next)
        if (k->key_len == len && memcmp(k->key, key, len) == 0) return k;
    if (!create || len > LP2P__KAD_PROVIDER_KEY_MAX) return NULL;
    lp2p__kad_pkey *k = (lp2p__kad_pkey *)lp2p__zalloc(st->ctx, sizeof *k);
    if (!k) return NULL;
    memcpy(k->key, key, len);
    k->key_len = (uint8_t)len;
    k->next = *head;
    *head = k;
    return k;
}

LP2P__PRIV int lp2p__store_add_provider(lp2p__kad_store *st, const uint8_t *key, size_t len, const lp2p_peer_id *id,
                                        int64_t expires) {
    if (len == 0 || len > LP2P__KAD_PROVIDER_KEY_MAX) return LP2P_ERR_INVALID;
    lp2p__kad_pkey *k = lp2p__store_pkey(st, key, len, false);
    for (int i = 0; k && i < k->n; i++)
        if (lp2p_peer_id_eq(&k->p[i].id, id)) {
            k->p[i].expires = expires;
            return LP2P_OK;
        }
    if (st->n_prov >= st->max_prov) return LP2P_ERR_LIMIT;
    if (!k && !(k = lp2p__store_pkey(st, key, len, true))) return LP2P_ERR_NOMEM;
    if (k->n == st->max_per_key) { /* full: replace the one that expires first */
        int old = 0;
        for (int i = 1; i < k->n; i++)
            if (k->p[i].expires < k->p[old].expires) old = i;
        k->p[old].id = *id, k->p[old].expires = expires;
        return LP2P_OK;
    }
    if (k->n == k->cap) {
        int cap = k->cap ? LP2P__MIN(k->cap * 2, st->max_per_key) : 4;
        lp2p__kad_prov *p = (lp2p__kad_prov *)lp2p__realloc(st->ctx, k->p, sizeof *p * (size_t)k->cap, sizeof *p * (size_t)cap);
        if (!p) return LP2P_ERR_NOMEM;
        k->p = p, k->cap = cap;
    }
    k->p[k->n].id = *id, k->p[k->n].expires = expires;
    k->n++;
    st->n_prov++;
    return LP2P_OK;
}

LP2P__PRIV int lp2p__store_get_providers(lp2p__kad_store *st, const uint8_t *key, size_t len, int64_t now,
                                         lp2p_peer_id *out, int max) {
    lp2p__kad_pkey *k = lp2p__store_pkey(st, key, len, false);
    int n = 0;
    for (int i = 0; k && i < k->n && n < max; i++)
        if (k->p[i].expires > now) out[n++] = k->p[i].id;
    return n;
}

/* ---- value records ------------------------------------------------------------------------------ */
static lp2p__kad_rec **lp2p__store_rec_slot(lp2p__kad_store *st, const uint8_t *key, size_t len) {
    lp2p__kad_rec **pp = &st->rec[lp2p__store_hash(key, len)];
    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->key_len == len && memcmp((*pp)->key, key, len) == 0) break;
    return pp;
}

static void lp2p__store_rec_free(lp2p__kad_store *st, lp2p__kad_rec *r) {
    lp2p__free(st->ctx, r->key, r->key_len);
    lp2p__free(st->ctx, r->value, r->value_len);
    lp2p__free(st->ctx, r, sizeof *r);
}

LP2P__PRIV lp2p__kad_rec *lp2p__store_get_record(lp2p__kad_store *st, const uint8_t *key, size_t len, int64_t now) {
    lp2p__kad_rec *r = *lp2p__store_rec_slot(st, key, len);
    return r && r->expires > now ? r : NULL;
}

/* RFC 3339 with nanoseconds in UTC, as go's u.FormatRFC3339. */
static void lp2p__rfc3339_now(char out[40]) {
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char tmp[100];
    snprintf(tmp, sizeof tmp, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, (long)ts.tv_nsec);
    snprintf(out, 40, "%.39s", tmp);
}

LP2P__PRIV int lp2p__store_put_record(lp2p__kad_store *st, const uint8_t *key, size_t key_len, const uint8_t *value,
                                      size_t value_len, int64_t expires) {
    lp2p__kad_rec **pp = lp2p__store_rec_slot(st, key, key_len), *r = *pp;
    uint8_t *v = (uint8_t *)lp2p__alloc(st->ctx, value_len);
    if (!v) return LP2P_ERR_NOMEM;
    if (value_len) memcpy(v, value, value_len);
    if (!r) {
        if (st->n_rec >= st->max_rec) {
            lp2p__free(st->ctx, v, value_len);
            return LP2P_ERR_LIMIT;
        }
        r = (lp2p__kad_rec *)lp2p__zalloc(st->ctx, sizeof *r);
        uint8_t *k = (uint8_t *)lp2p__alloc(st->ctx, key_len);
        if (!r || !k) {
            lp2p__free(st->ctx, r, sizeof *r), lp2p__free(st->ctx, k, key_len), lp2p__free(st->ctx, v, value_len);
            return LP2P_ERR_NOMEM;
        }
        memcpy(k, key, key_len);
        r->key = k, r->key_len = key_len;
        *pp = r;
        st->n_rec++;
    } else {
        lp2p__free(st->ctx, r->value, r->value_len);
    }
    r->value = v, r->value_len = value_len;
    r->expires = expires;
    lp2p__rfc3339_now(r->time);
    return LP2P_OK;
}

LP2P__PRIV void lp2p__store_expire(lp2p__kad_store *st, int64_t now) {
    for (int b = 0; b < LP2P__KAD_STORE_BUCKETS; b++) {
        for (lp2p__kad_pkey **pp = &st->prov[b]; *pp;) {
            lp2p__kad_pkey *k = *pp;
            for (int i = 0; i < k->n;)
                if (k->p[i].expires <= now) k->p[i] = k->p[--k->n], st->n_prov--;
                else i++;
            if (k->n == 0) {
                *pp = k->next;
                lp2p__free(st->ctx, k->p, sizeof *k->p * (size_t)k->cap);
                lp2p__free(st->ctx, k, sizeof *k);
            } else {
                pp = &k->next;
            }
        }
        for (lp2p__kad_rec **pp = &st->rec[b]; *pp;) {
            lp2p__kad_rec *r = *pp;
            if (r->expires <= now) {
                *pp = r->next;
                lp2p__store_rec_free(st, r);
                st->n_rec--;
            } else {
                pp = &r->next;
            }
        }
    }
}

LP2P__PRIV void lp2p__store_free(lp2p__kad_store *st) {
    lp2p__store_expire(st, INT64_MAX);
    while (st->ns) {
        lp2p__kad_ns *n = st->ns;
        st->ns = n->next;
        lp2p__strfree(st->ctx, n->ns);
        lp2p__free(st->ctx, n, sizeof *n);
    }
}

/* ---- validators ----------------------------------------------------------------------------------- */
/* "/ns/rest" -> ns (go's record.SplitKey: a leading '/', then the namespace up to the next '/'). */
static bool lp2p__key_ns(const uint8_t *key, size_t len, const uint8_t **ns, size_t *ns_len) {
    if (len < 3 || key[0] != '/') return false;
    const uint8_t *e = (const uint8_t *)memchr(key + 1, '/', len - 1);
    if (!e || e == key + 1 || e == key + len - 1) return false;
    *ns = key + 1, *ns_len = (size_t)(e - key - 1);
    return true;
}

static lp2p__kad_ns *lp2p__store_find_ns(lp2p__kad_store *st, const uint8_t *key, size_t len) {
    const uint8_t *ns;
    size_t n;
    if (!lp2p__key_ns(key, len, &ns, &n)) return NULL;
    for (lp2p__kad_ns *x = st->ns; x; x = x->next)
        if (strlen(x->ns) == n && memcmp(x->ns, ns, n) == 0) return x;
    return NULL;
}

LP2P__PRIV int lp2p__store_set_validator(lp2p__kad_store *st, const char *ns, const lp2p_kad_validator *v) {
    if (!ns || !ns[0] || strchr(ns, '/') || strlen(ns) > 64 || !v) return LP2P_ERR_INVALID;
    for (lp2p__kad_ns *x = st->ns; x; x = x->next)
        if (strcmp(x->ns, ns) == 0) {
            x->v = *v;
            return LP2P_OK;
        }
    lp2p__kad_ns *x = (lp2p__kad_ns *)lp2p__zalloc(st->ctx, sizeof *x);
    if (!x || !(x->ns = lp2p__strdup(st->ctx, ns))) {
        lp2p__free(st->ctx, x, sizeof *x);
        return LP2P_ERR_NOMEM;
    }
    x->v = *v;
    x->next = st->ns;
    st->ns = x;
    return LP2P_OK;
}

LP2P__PRIV int lp2p__store_validate(lp2p__kad_store *st, const uint8_t *key, size_t key_len, const uint8_t *value,
                                    size_t value_len) {
    lp2p__kad_ns *x = lp2p__store_find_ns(st, key, key_len);
    if (!x) return LP2P_ERR_INVALID;
    if (!x->v.validate) return LP2P_OK;
    return x->v.validate(x->v.user, key, key_len, value, value_len) == LP2P_OK ? LP2P_OK : LP2P_ERR_INVALID;
}

LP2P__PRIV int lp2p__store_select(lp2p__kad_store *st, const uint8_t *key, size_t key_len, const uint8_t *a,
                                  size_t a_len, const uint8_t *b, size_t b_len) {
    lp2p__kad_ns *x = lp2p__store_find_ns(st, key, key_len);
    if (!x || !x->v.select) return 0;
    const uint8_t *vals[2] = {a, b};
    size_t lens[2] = {a_len, b_len};
    return x->v.select(x->v.user, key, key_len, vals, lens, 2) == 1 ? 1 : 0;
}

/* /pk/<binary peer ID> -> a serialized PublicKey whose peer ID is that one (go's
 * record.PublicKeyValidator). */
LP2P__PRIV int lp2p__kad_pk_validate(void *user, const uint8_t *key, size_t key_len, const uint8_t *value,
                                     size_t value_len) {
    lp2p_peer_id want, got;
    (void)user;
    if (key_len < 5 || memcmp(key, "/pk/", 4) != 0) return LP2P_ERR_INVALID;
    if (lp2p__peer_id_from_bytes(key + 4, key_len - 4, &want) != LP2P_OK) return LP2P_ERR_INVALID;
    if (value_len > LP2P__PUBKEY_MAX || lp2p__peer_id_from_pubkey(value, value_len, &got) != LP2P_OK)
        return LP2P_ERR_INVALID;
    return lp2p_peer_id_eq(&want, &got) ? LP2P_OK : LP2P_ERR_INVALID;
}
/*==================== end src/kad_store.c ====================*/
/*==================== begin src/kad.c ====================*/
/* kad.c - L7: the Kademlia DHT: protocol server, requests, iterative lookups, bootstrap and
 * refresh, and the public lp2p_kad_* API.
 *
 * Spec: libp2p/specs kad-dht/README.md (RPCs, lookups, routing table, records);
 * ipfs/specs src/routing/kad-dht.md (Amino: k 20, alpha 10, beta 3, client/server modes,
 * 48 h provider records, 22 h reprovide, 10 min refresh with a self lookup).
 * Server mode handles the protocol: every inbound stream may carry several requests (go reuses
 * streams), each an uvarint-delimited Message capped at max_message_size. Client mode neither
 * advertises nor accepts it. Only peers whose identify lists the protocol, or which answered
 * one of our requests, enter the routing table; a full bucket asks its least recently seen
 * peer a FIND_NODE before evicting it. A lookup keeps its candidates sorted by XOR distance,
 * has alpha requests in flight (one task each) to the closest not yet queried among the k
 * closest reachable, and ends when the beta closest reachable peers have answered (go's
 * rule), when its visitor is satisfied, or when no candidate is left. Requests open a new
 * stream each (as js), with a per-request deadline.
 * Depends on: kad.h (host, swarm, peerstore; kad_msg.c, kad_rt.c, kad_store.c). */
// (amalgamated) #include "kad.h"

#include <stdio.h>

#define LP2P__KAD_SEND_MAX 64 /* peers one fan-out (PUT_VALUE / ADD_PROVIDER) reaches */

typedef struct lp2p__kad_task {
    lp2p_task t;
    struct lp2p__kad_task *next, *prev;
} lp2p__kad_task;

typedef struct lp2p__kad_mine { /* a key we provide (re-announced) */
    struct lp2p__kad_mine *next;
    uint8_t key[LP2P__KAD_PROVIDER_KEY_MAX];
    size_t len;
    int64_t next_announce;
} lp2p__kad_mine;

typedef struct lp2p__kad_query lp2p__kad_query;

struct lp2p_kad {
    lp2p_host *h;
    lp2p__ctx *ctx;
    lp2p_kad_config cfg; /* resolved; strings below are our copies */
    char *protocol;
    char *boot[LP2P_KAD_MAX_BOOTSTRAP];
    int n_boot;
    lp2p_kad_mode mode;
    bool auto_mode; /* the app asked for AUTO: follow AutoNAT (lp2p__kad_nat_changed) */
    lp2p__kad_rt rt;
    lp2p__kad_store st;
    lp2p__notifee notifee;
    lp2p__service service;
    lp2p__kad_task *tasks; /* tasks that touch us: canceled by lp2p_kad_free */
    int n_tasks, n_api, n_inbound;
    lp2p__waitq idle;      /* woken when n_tasks or n_api drops */
    lp2p__kad_query *queries;
    lp2p__kad_mine *mine;
    int64_t last_refresh, last_expire, last_boot;
    bool refresh_soon;
    lp2p_kad_lookup_stats last;
    bool closing;
    int64_t warned_inbound; /* rate limit of the max_inbound_requests log */
};

/* ---- task bookkeeping ------------------------------------------------------------------------ */
static void lp2p__kad_link(lp2p_kad *kad, lp2p__kad_task *node) {
    node->prev = NULL;
    node->next = kad->tasks;
    if (kad->tasks) kad->tasks->prev = node;
    kad->tasks = node;
    kad->n_tasks++;
}

/* A task we did not spawn (an inbound stream's handler) starts touching us. */
static void lp2p__kad_enter(lp2p_kad *kad, lp2p__kad_task *node) {
    node->t = lp2p__task_self();
    lp2p__kad_link(kad, node);
}

static void lp2p__kad_leave(lp2p_kad *kad, lp2p__kad_task *node) {
    if (node->prev) node->prev->next = node->next;
    else kad->tasks = node->next;
    if (node->next) node->next->prev = node->prev;
    kad->n_tasks--;
    lp2p__waitq_wake_all(kad->h->sched, &kad->idle);
}

typedef struct lp2p__kad_spawned {
    lp2p__kad_task node; /* linked from spawn on, so lp2p_kad_free also waits for tasks not started yet */
    lp2p_kad *kad;
    void (*fn)(void *);
    void *arg;
} lp2p__kad_spawned;

static void lp2p__kad_trampoline(void *p) {
    lp2p__kad_spawned *sp = (lp2p__kad_spawned *)p;
    lp2p_kad *kad = sp->kad;
    sp->fn(sp->arg);
    lp2p__kad_leave(kad, &sp->node);
    lp2p__free(kad->ctx, sp, sizeof *sp);
}

/* Spawn a task of ours. Handle id 0 on failure (then fn never runs: the caller cleans up). */
static lp2p_task lp2p__kad_spawn(lp2p_kad *kad, void (*fn)(void *), void *arg) {
    lp2p_task none = {0};
    if (kad->closing) return none;
    lp2p__kad_spawned *sp = (lp2p__kad_spawned *)lp2p__zalloc(kad->ctx, sizeof *sp);
    if (!sp) return none;
    sp->kad = kad, sp->fn = fn, sp->arg = arg;
    lp2p_task t = lp2p__spawn(kad->h->sched, lp2p__kad_trampoline, sp);
    if (!t.id) {
        lp2p__free(kad->ctx, sp, sizeof *sp);
        return none;
    }
    sp->node.t = t;
    lp2p__kad_link(kad, &sp->node);
    return t;
}

/* ---- messages on streams ------------------------------------------------------------------------ */
/* Read one uvarint-delimited message into a fresh buffer of its exact size. *clean is set
 * when the stream ended before the first byte. */
static int lp2p__kad_read(lp2p_kad *kad, lp2p_stream *s, uint8_t **out, size_t *out_len, int *clean, int64_t deadline) {
    uint8_t hdr[LP2P__UVARINT_MAX];
    uint64_t len = 0;
    size_t n = 0;
    *clean = 0;
    for (;;) {
        ptrdiff_t r = lp2p_stream_read(s, hdr + n, 1, deadline);
        if (r < 0) return (int)r;
        if (r == 0) {
            *clean = n == 0;
            return LP2P_ERR_EOF;
        }
        n++;
        int k = lp2p__uvarint_get(hdr, n, &len);
        if (k < 0) return LP2P_ERR_PROTOCOL;
        if (k > 0) break;
    }
    if (len > (uint64_t)kad->cfg.max_message_size) return LP2P_ERR_MSGSIZE;
    uint8_t *buf = (uint8_t *)lp2p__alloc(kad->ctx, len ? (size_t)len : 1);
    if (!buf) return LP2P_ERR_NOMEM;
    int rc = lp2p_stream_read_full(s, buf, (size_t)len, deadline);
    if (rc) {
        lp2p__free(kad->ctx, buf, len ? (size_t)len : 1);
        return rc;
    }
    *out = buf, *out_len = (size_t)len;
    return LP2P_OK;
}

static void lp2p__kad_buf_free(lp2p_kad *kad, uint8_t *buf, size_t len) { lp2p__free(kad->ctx, buf, len ? len : 1); }

/* One request to one peer: open a stream, send, read the answer (if want_reply), close.
 * *reply (freed by the caller with lp2p__kad_buf_free) gets the answer's bytes.
 * *dial_failed says the peer could not be reached at all or does not speak the protocol. */
static int lp2p__kad_rpc(lp2p_kad *kad, const lp2p_peer_id *peer, const uint8_t *req, size_t req_len, bool want_reply,
                         uint8_t **reply, size_t *reply_len, bool *dial_failed, int64_t deadline) {
    char text[LP2P_PEER_ID_STRLEN];
    lp2p_stream *s = NULL;
    int clean;
    *dial_failed = false;
    if (lp2p_peer_id_str(peer, text, sizeof text)) return LP2P_ERR_INVALID;
    bool had_conn = lp2p__swarm_find_conn(kad->h, peer) != NULL;
    int rc = lp2p_stream_open(kad->h, text, kad->protocol, deadline, &s);
    if (rc == LP2P_OK && !had_conn && kad->cfg.idle_connection_ms > 0)
        s->conn->ephemeral_idle_ms = kad->cfg.idle_connection_ms; /* ours, for this request: not kept open */
    if (rc) {
        *dial_failed = rc == LP2P_ERR_UNREACHABLE || rc == LP2P_ERR_NOADDR || rc == LP2P_ERR_HANDSHAKE ||
                       rc == LP2P_ERR_PROTO_NA || rc == LP2P_ERR_BADADDR;
        return rc;
    }
    rc = lp2p_stream_write_msg(s, req, req_len, deadline);
    if (rc == LP2P_OK && want_reply) rc = lp2p__kad_read(kad, s, reply, reply_len, &clean, deadline);
    if (rc) {
        lp2p_stream_reset(s);
        return rc;
    }
    lp2p_stream_close_write(s);
    lp2p_stream_close(s);
    return LP2P_OK;
}

static int64_t lp2p__kad_req_deadline(lp2p_kad *kad, int64_t deadline) {
    return lp2p__deadline_min(deadline, lp2p_deadline_in(kad->cfg.request_timeout_ms));
}

/* ---- routing table admission ---------------------------------------------------------------------- */
static void lp2p__kad_group_of(lp2p_kad *kad, const lp2p_peer_id *id, uint8_t group[5]) {
    lp2p__conn *c = lp2p__swarm_find_conn(kad->h, id);
    if (c && c->remote.len) {
        lp2p__kad_ip_group(&c->remote, group);
        return;
    }
    lp2p__peer *p = lp2p__peerstore_get(kad->h, id, false);
    lp2p__kad_ip_group(p && p->n_addrs ? &p->addrs[0].ma : NULL, group);
}

typedef struct lp2p__kad_probe {
    lp2p_kad *kad;
    lp2p_peer_id old, cand;
    uint8_t group[5];
    int bucket;
} lp2p__kad_probe;

static int lp2p__kad_encode_simple(lp2p_kad *kad, int type, const uint8_t *key, size_t key_len, lp2p__buf *b) {
    lp2p__kad_out o;
    memset(&o, 0, sizeof o);
    o.type = type, o.key = key, o.key_len = key_len, o.h = kad->h;
    return lp2p__kad_msg_encode(kad->ctx, &o, b);
}

/* Liveness check before eviction: the least recently seen peer must answer a FIND_NODE. */
static void lp2p__kad_probe_task(void *arg) {
    lp2p__kad_probe *p = (lp2p__kad_probe *)arg;
    lp2p_kad *kad = p->kad;
    lp2p__buf req = {0};
    uint8_t *reply = NULL;
    size_t reply_len = 0;
    bool dial_failed;
    int rc = lp2p__kad_encode_simple(kad, lp2p_pb_KadMessage_MessageType_FIND_NODE, kad->h->identity.id.bytes,
                                     kad->h->identity.id.len, &req);
    if (rc == LP2P_OK)
        rc = lp2p__kad_rpc(kad, &p->old, req.p, req.len, true, &reply, &reply_len, &dial_failed,
                           lp2p_deadline_in(LP2P__MIN(kad->cfg.request_timeout_ms, 5000)));
    if (reply) lp2p__kad_buf_free(kad, reply, reply_len);
    lp2p__buf_free(kad->ctx, &req);
    if (!kad->closing && rc != LP2P_ERR_CANCELED) {
        int64_t now = lp2p_now();
        if (rc == LP2P_OK) {
            lp2p__rt_add(&kad->rt, &p->old, NULL, now, NULL); /* alive: it stays, marked seen */
        } else {
            lp2p__rt_remove(&kad->rt, &p->old);
            lp2p__rt_add(&kad->rt, &p->cand, p->group, now, NULL);
        }
    }
    kad->rt.b[p->bucket].probing = false;
    lp2p__free(kad->ctx, p, sizeof *p);
}

/* A peer proved to be a server (identify lists the protocol, or it answered us). */
static void lp2p__kad_consider(lp2p_kad *kad, const lp2p_peer_id *id) {
    uint8_t group[5], h[32];
    lp2p_peer_id old;
    if (kad->closing) return;
    lp2p__kad_group_of(kad, id, group);
    lp2p__rt_result r = lp2p__rt_add(&kad->rt, id, group, lp2p_now(), &old);
    if (r == LP2P__RT_ADDED || r == LP2P__RT_UPDATED) { /* table peers stay dialable (peerstore GC) */
        lp2p__peer *p = lp2p__peerstore_get(kad->h, id, false);
        for (int i = 0; p && i < p->n_addrs; i++)
            lp2p__peerstore_add_addr(kad->h, id, &p->addrs[i].ma, LP2P__KAD_RT_ADDR_TTL_MS);
    }
    if (r == LP2P__RT_ADDED && kad->rt.size == 1) kad->refresh_soon = true; /* first peer: refresh soon */
    if (r != LP2P__RT_FULL) return;
    lp2p__kad_hash(id->bytes, id->len, h);
    int bucket = lp2p__rt_bucket_of(&kad->rt, h);
    if (kad->rt.b[bucket].probing) return; /* one check per bucket at a time; this candidate is dropped */
    lp2p__kad_probe *p = (lp2p__kad_probe *)lp2p__zalloc(kad->ctx, sizeof *p);
    if (!p) return;
    p->kad = kad, p->old = old, p->cand = *id, p->bucket = bucket;
    memcpy(p->group, group, 5);
    kad->rt.b[bucket].probing = true;
    if (!lp2p__kad_spawn(kad, lp2p__kad_probe_task, p).id) {
        kad->rt.b[bucket].probing = false;
        lp2p__free(kad->ctx, p, sizeof *p);
    }
}

static bool lp2p__kad_peer_is_server(lp2p_kad *kad, const lp2p_peer_id *id, bool *known) {
    lp2p__peer *p = lp2p__peerstore_get(kad->h, id, false);
    *known = p && p->protocols;
    for (int i = 0; p && i < p->n_protocols; i++)
        if (strcmp(p->protocols[i], kad->protocol) == 0) return true;
    return false;
}

static void lp2p__kad_identified(void *user, lp2p__conn *c) {
    lp2p_kad *kad = (lp2p_kad *)user;
    bool known;
    if (kad->closing) return;
    if (lp2p__kad_peer_is_server(kad, &c->peer, &known)) lp2p__kad_consider(kad, &c->peer);
    else if (known) lp2p__rt_remove(&kad->rt, &c->peer); /* it went client mode (spec: servers only) */
}

/* AutoNAT's verdict changed: a DHT in AUTO mode follows it (runs in the AutoNAT task, must not
 * block; set_mode only (un)handles the protocol, identify push runs in its own tasks). */
static void lp2p__kad_nat_changed(void *user, int status) {
    lp2p_kad *kad = (lp2p_kad *)user;
    (void)status;
    if (kad->auto_mode && !kad->closing) lp2p_kad_set_mode(kad, LP2P_KAD_AUTO);
}

/* ---- the server ------------------------------------------------------------------------------------ */
/* Closer peers for a request about key from requester: the k closest in our table (without
 * the requester), and the key's own peer if it is a peer ID we have addresses for (spec:
 * servers MUST return it, NATed clients stay findable this way). */
static int lp2p__kad_closer_for(lp2p_kad *kad, const uint8_t *key, size_t key_len, const lp2p_peer_id *requester,
                                lp2p_peer_id *out, int max) {
    uint8_t target[32];
    lp2p_peer_id pid;
    int n = 0;
    if (lp2p__peer_id_from_bytes(key, key_len, &pid) == LP2P_OK) {
        if (lp2p_peer_id_eq(&pid, &kad->h->identity.id)) {
            out[0] = pid;
            return 1;
        }
        lp2p__peer *p = lp2p__peerstore_get(kad->h, &pid, false);
        if (p && p->n_addrs && !lp2p_peer_id_eq(&pid, requester)) out[n++] = pid;
    }
    lp2p__kad_hash(key, key_len, target);
    int m = lp2p__rt_closest(&kad->rt, target, requester, out + n, max - n);
    if (n == 1) /* the peer itself may be in the table too */
        for (int i = 1; i <= m; i++)
            if (lp2p_peer_id_eq(&out[i], &out[0])) {
                memmove(&out[i], &out[i + 1], sizeof *out * (size_t)(m - i));
                m--;
                break;
            }
    return n + m;
}

static void lp2p__kad_warn_peer(lp2p_kad *kad, const lp2p_peer_id *peer, int err, const char *what) {
    char id[LP2P_PEER_ID_STRLEN];
    lp2p_peer_id_str(peer, id, sizeof id);
    LP2P__WARN(kad->ctx, err, "kad: %s from %s: %s", what, id, lp2p_strerror(err));
}

static int lp2p__kad_handle_put(lp2p_kad *kad, const lp2p_peer_id *from, const lp2p__kad_msg *m) {
    if (!m->has_record || m->key.len == 0 || m->rec_key.len != m->key.len ||
        memcmp(m->rec_key.p, m->key.p, m->key.len) != 0 || m->key.len > LP2P__KAD_KEY_MAX ||
        m->key.len + m->rec_value.len > (size_t)kad->cfg.max_record_size) {
        lp2p__kad_warn_peer(kad, from, LP2P_ERR_PROTOCOL, "PUT_VALUE with a missing, mismatched or oversized record");
        return LP2P_ERR_PROTOCOL;
    }
    if (lp2p__store_validate(&kad->st, m->key.p, m->key.len, m->rec_value.p, m->rec_value.len) != LP2P_OK) {
        lp2p__kad_warn_peer(kad, from, LP2P_ERR_INVALID, "PUT_VALUE record failing validation");
        return LP2P_ERR_INVALID;
    }
    int64_t now = lp2p_now();
    lp2p__kad_rec *old = lp2p__store_get_record(&kad->st, m->key.p, m->key.len, now);
    /* as go's handlePutValue: Select([new, old]) must pick the new one, else "old record is better" */
    if (old && lp2p__store_select(&kad->st, m->key.p, m->key.len, m->rec_value.p, m->rec_value.len, old->value,
                                  old->value_len) != 0)
        return LP2P_ERR_INVALID;
    int rc = lp2p__store_put_record(&kad->st, m->key.p, m->key.len, m->rec_value.p, m->rec_value.len,
                                    now + kad->cfg.record_ttl_ms);
    if (rc == LP2P_ERR_LIMIT)
        LP2P__WARN(kad->ctx, rc, "kad: max_records=%d reached: PUT_VALUE refused", kad->cfg.max_records);
    return rc;
}

static int lp2p__kad_handle_add_provider(lp2p_kad *kad, const lp2p_peer_id *from, const lp2p__kad_msg *m) {
    int stored = 0;
    if (m->key.len == 0 || m->key.len > LP2P__KAD_PROVIDER_KEY_MAX) {
        lp2p__kad_warn_peer(kad, from, LP2P_ERR_PROTOCOL, "ADD_PROVIDER with a bad key");
        return LP2P_ERR_PROTOCOL;
    }
    for (int i = 0; i < m->n_providers; i++) {
        lp2p_peer_id id;
        const lp2p__kad_wpeer *w = &m->providers[i];
        if (lp2p__peer_id_from_bytes(w->id.p, w->id.len, &id) || !lp2p_peer_id_eq(&id, from)) {
            lp2p__kad_warn_peer(kad, from, LP2P_ERR_PROTOCOL, "ADD_PROVIDER naming another peer (ignored)");
            continue;
        }
        for (int a = 0; a < w->n_addrs; a++) {
            lp2p__ma ma;
            if (lp2p__ma_from_bytes(w->addrs[a].p, w->addrs[a].len, &ma, NULL) == LP2P_OK)
                lp2p__peerstore_add_addr(kad->h, &id, &ma, LP2P__KAD_PROVIDER_ADDR_TTL_MS);
        }
        int rc = lp2p__store_add_provider(&kad->st, m->key.p, m->key.len, &id, lp2p_now() + kad->cfg.provider_ttl_ms);
        if (rc == LP2P_ERR_LIMIT)
            LP2P__WARN(kad->ctx, rc, "kad: max_provider_records=%d reached: provider dropped",
                       kad->cfg.max_provider_records);
        stored += rc == LP2P_OK;
    }
    return stored ? LP2P_OK : LP2P_ERR_PROTOCOL;
}

/* Answer one request; writes the reply (if the type has one) to s. */
static int lp2p__kad_handle(lp2p_kad *kad, lp2p_stream *s, const uint8_t *buf, size_t len, lp2p__kad_msg *m) {
    lp2p_peer_id from = lp2p_stream_peer(s), closer[LP2P__KAD_SEND_MAX], provs[LP2P__KAD_SEND_MAX];
    int rc = lp2p__kad_msg_decode(buf, len, m);
    if (rc) {
        lp2p__kad_warn_peer(kad, &from, rc, "malformed message");
        return rc;
    }
    lp2p__kad_out o;
    memset(&o, 0, sizeof o);
    o.h = kad->h, o.type = m->type, o.key = m->key.p, o.key_len = m->key.len;
    int k = LP2P__MIN(kad->cfg.k, (int)LP2P__COUNT(closer));
    switch (m->type) {
    case lp2p_pb_KadMessage_MessageType_PUT_VALUE:
        rc = lp2p__kad_handle_put(kad, &from, m);
        return rc ? rc : lp2p_stream_write_msg(s, buf, len, lp2p_deadline_in(kad->cfg.request_timeout_ms)); /* echo */
    case lp2p_pb_KadMessage_MessageType_PING:
        return lp2p_stream_write_msg(s, buf, len, lp2p_deadline_in(kad->cfg.request_timeout_ms));
    case lp2p_pb_KadMessage_MessageType_ADD_PROVIDER: return lp2p__kad_handle_add_provider(kad, &from, m);
    case lp2p_pb_KadMessage_MessageType_GET_VALUE: {
        if (m->key.len == 0 || m->key.len > LP2P__KAD_KEY_MAX) return LP2P_ERR_PROTOCOL;
        lp2p__kad_rec *r = lp2p__store_get_record(&kad->st, m->key.p, m->key.len, lp2p_now());
        if (r) {
            o.has_record = true;
            o.rec_key = r->key, o.rec_key_len = r->key_len, o.rec_value = r->value, o.rec_value_len = r->value_len;
            o.rec_time = (const uint8_t *)r->time, o.rec_time_len = strlen(r->time);
        }
        break;
    }
    case lp2p_pb_KadMessage_MessageType_GET_PROVIDERS:
        if (m->key.len == 0 || m->key.len > LP2P__KAD_PROVIDER_KEY_MAX) return LP2P_ERR_PROTOCOL;
        o.providers = provs;
        o.n_providers = lp2p__store_get_providers(&kad->st, m->key.p, m->key.len, lp2p_now(), provs,
                                                  LP2P__MIN(kad->cfg.max_providers_per_key, (int)LP2P__COUNT(provs)));
        break;
    case lp2p_pb_KadMessage_MessageType_FIND_NODE:
        if (m->key.len == 0 || m->key.len > LP2P__KAD_KEY_MAX) return LP2P_ERR_PROTOCOL;
        break;
    default: return LP2P_ERR_PROTOCOL;
    }
    o.closer = closer;
    o.n_closer = lp2p__kad_closer_for(kad, m->key.p, m->key.len, &from, closer, k);
    lp2p__buf out = {0};
    rc = lp2p__kad_msg_encode(kad->ctx, &o, &out);
    if (rc == LP2P_OK) rc = lp2p_stream_write_msg(s, out.p, out.len, lp2p_deadline_in(kad->cfg.request_timeout_ms));
    lp2p__buf_free(kad->ctx, &out);
    return rc;
}

static void lp2p__kad_serve(lp2p_stream *s, void *user) {
    lp2p_kad *kad = (lp2p_kad *)user;
    lp2p__kad_task node;
    if (kad->closing || kad->mode != LP2P_KAD_SERVER) {
        lp2p_stream_reset(s);
        return;
    }
    if (kad->n_inbound >= kad->cfg.max_inbound_requests) {
        if (lp2p_now() - kad->warned_inbound > 10000) {
            kad->warned_inbound = lp2p_now();
            LP2P__WARN(kad->ctx, LP2P_ERR_LIMIT, "kad: max_inbound_requests=%d reached: streams reset",
                       kad->cfg.max_inbound_requests);
        }
        lp2p_stream_reset(s);
        return;
    }
    lp2p__kad_msg *m = (lp2p__kad_msg *)lp2p__alloc(kad->ctx, sizeof *m);
    if (!m) {
        lp2p_stream_reset(s);
        return;
    }
    kad->n_inbound++;
    lp2p__kad_enter(kad, &node);
    for (;;) {
        uint8_t *buf = NULL;
        size_t len = 0;
        int clean;
        int rc = lp2p__kad_read(kad, s, &buf, &len, &clean, lp2p_deadline_in(LP2P__KAD_STREAM_IDLE_MS));
        if (rc == LP2P_ERR_EOF && clean) break;
        if (rc) {
            lp2p_peer_id from = lp2p_stream_peer(s);
            if (rc == LP2P_ERR_MSGSIZE || rc == LP2P_ERR_PROTOCOL) lp2p__kad_warn_peer(kad, &from, rc, "bad message");
            lp2p_stream_reset(s);
            break;
        }
        rc = kad->closing ? LP2P_ERR_CANCELED : lp2p__kad_handle(kad, s, buf, len, m);
        lp2p__kad_buf_free(kad, buf, len);
        if (rc) {
            lp2p_stream_reset(s);
            break;
        }
    }
    lp2p__free(kad->ctx, m, sizeof *m);
    lp2p__kad_leave(kad, &node);
    kad->n_inbound--;
}

/* ---- lookups ----------------------------------------------------------------------------------------- */
enum { LP2P__CAND_HEARD, LP2P__CAND_WAITING, LP2P__CAND_QUERIED, LP2P__CAND_UNREACHABLE };

typedef struct lp2p__kad_cand {
    lp2p_peer_id id;
    uint8_t hash[32];
    uint8_t state, hop;
    uint8_t follow; /* queried in the follow-up phase */
} lp2p__kad_cand;

/* Called for every answer; returns nonzero to end the lookup. */
typedef int (*lp2p__kad_visit_fn)(lp2p__kad_query *q, const lp2p_peer_id *from, const lp2p__kad_msg *m);

struct lp2p__kad_query {
    lp2p_kad *kad;
    int refs;
    uint8_t target[32];
    const uint8_t *key; /* the caller's, valid until finished */
    size_t key_len;
    lp2p__buf req;
    lp2p__kad_cand c[LP2P__KAD_MAX_LOOKUP_PEERS];
    int n, inflight;
    lp2p__waitq wake;
    bool finished, stop;
    bool followup, in_followup; /* after termination, also ask the rest of the k closest (go) */
    lp2p__kad_visit_fn visit;
    void *user;
    lp2p_kad_peer_fn peer_fn; /* hears each peer that answered (get_closest_peers) */
    void *peer_user;
    lp2p_kad_lookup_stats st;
    int64_t deadline;
    lp2p_task workers[LP2P__KAD_MAX_ALPHA];
    lp2p__kad_query *next;
};

static void lp2p__kad_query_unref(lp2p__kad_query *q) {
    if (--q->refs > 0) return;
    lp2p_kad *kad = q->kad;
    lp2p__buf_free(kad->ctx, &q->req);
    lp2p__free(kad->ctx, q, sizeof *q);
}

static lp2p__kad_cand *lp2p__kad_cand_find(lp2p__kad_query *q, const lp2p_peer_id *id) {
    for (int i = 0; i < q->n; i++)
        if (lp2p_peer_id_eq(&q->c[i].id, id)) return &q->c[i];
    return NULL;
}

/* Insert a peer heard of (sorted by distance; when full, the farthest idle one goes). */
static void lp2p__kad_cand_add(lp2p__kad_query *q, const lp2p_peer_id *id, int hop) {
    uint8_t h[32];
    if (lp2p_peer_id_eq(id, &q->kad->h->identity.id) || lp2p__kad_cand_find(q, id)) return;
    lp2p__kad_hash(id->bytes, id->len, h);
    int pos = q->n;
    while (pos > 0 && lp2p__kad_cmp(q->target, h, q->c[pos - 1].hash) < 0) pos--;
    if (q->n == LP2P__KAD_MAX_LOOKUP_PEERS) {
        int victim = q->n - 1;
        while (victim >= pos && q->c[victim].state == LP2P__CAND_WAITING) victim--;
        if (victim < pos) return;
        memmove(&q->c[victim], &q->c[victim + 1], sizeof q->c[0] * (size_t)(q->n - victim - 1));
        q->n--;
    }
    memmove(&q->c[pos + 1], &q->c[pos], sizeof q->c[0] * (size_t)(q->n - pos));
    lp2p__kad_cand *c = &q->c[pos];
    c->id = *id;
    memcpy(c->hash, h, 32);
    c->state = LP2P__CAND_HEARD;
    c->hop = (uint8_t)LP2P__MIN(hop, 255);
    q->n++;
}

/* Peers of a closerPeers/providerPeers entry: parse, store addresses. false if unusable. */
static bool lp2p__kad_learn(lp2p_kad *kad, const lp2p__kad_wpeer *w, lp2p_peer_id *id, int64_t ttl_ms) {
    if (lp2p__peer_id_from_bytes(w->id.p, w->id.len, id) != LP2P_OK) return false;
    if (lp2p_peer_id_eq(id, &kad->h->identity.id)) return false;
    for (int a = 0; a < w->n_addrs; a++) {
        lp2p__ma ma;
        if (lp2p__ma_from_bytes(w->addrs[a].p, w->addrs[a].len, &ma, NULL) == LP2P_OK)
            lp2p__peerstore_add_addr(kad->h, id, &ma, ttl_ms);
    }
    return true;
}

typedef struct lp2p__kad_worker {
    lp2p__kad_query *q;
    lp2p_peer_id peer;
    int slot;
} lp2p__kad_worker;

static void lp2p__kad_worker_task(void *arg) {
    lp2p__kad_worker w = *(lp2p__kad_worker *)arg;
    lp2p__kad_query *q = w.q;
    lp2p_kad *kad = q->kad;
    uint8_t *reply = NULL;
    size_t reply_len = 0;
    bool dial_failed = false;
    lp2p__free(kad->ctx, arg, sizeof w);
    int rc = lp2p__kad_rpc(kad, &w.peer, q->req.p, q->req.len, true, &reply, &reply_len, &dial_failed,
                           lp2p__kad_req_deadline(kad, q->deadline));
    lp2p__kad_msg *m = NULL;
    if (rc == LP2P_OK) {
        m = (lp2p__kad_msg *)lp2p__alloc(kad->ctx, sizeof *m);
        rc = !m ? LP2P_ERR_NOMEM : lp2p__kad_msg_decode(reply, reply_len, m);
        if (rc == LP2P_ERR_PROTOCOL) lp2p__kad_warn_peer(kad, &w.peer, rc, "malformed answer");
    }
    if (!q->finished && !kad->closing) {
        lp2p__kad_cand *c = lp2p__kad_cand_find(q, &w.peer);
        int hop = c ? c->hop : 1;
        if (rc == LP2P_OK) {
            q->st.answered++;
            if (c) c->state = LP2P__CAND_QUERIED;
            lp2p__kad_consider(kad, &w.peer); /* it answered: a server */
            for (int i = 0; i < m->n_closer; i++) {
                lp2p_peer_id id;
                if (lp2p__kad_learn(kad, &m->closer[i], &id, LP2P__KAD_QUERY_ADDR_TTL_MS)) lp2p__kad_cand_add(q, &id, hop + 1);
            }
            if (q->peer_fn && q->peer_fn(q->peer_user, &w.peer)) q->stop = true;
            if (q->visit && q->visit(q, &w.peer, m)) q->stop = true;
        } else if (rc != LP2P_ERR_CANCELED) {
            q->st.failed++;
            if (c) c->state = LP2P__CAND_UNREACHABLE;
            if (dial_failed) lp2p__rt_remove(&kad->rt, &w.peer); /* go: dial failures leave the table */
        }
    }
    if (m) lp2p__free(kad->ctx, m, sizeof *m);
    if (reply) lp2p__kad_buf_free(kad, reply, reply_len);
    q->inflight--;
    q->workers[w.slot].id = 0;
    lp2p__waitq_wake_all(kad->h->sched, &q->wake);
    lp2p__kad_query_unref(q);
}

/* The beta closest peers not known unreachable have all answered. */
static bool lp2p__kad_terminated(lp2p__kad_query *q) {
    int seen = 0;
    for (int i = 0; i < q->n && seen < q->kad->cfg.beta; i++) {
        if (q->c[i].state == LP2P__CAND_UNREACHABLE) continue;
        if (q->c[i].state != LP2P__CAND_QUERIED) return false;
        seen++;
    }
    return seen > 0;
}

/* Start requests to the closest not-yet-queried peers among the k closest reachable ones. */
static void lp2p__kad_launch(lp2p__kad_query *q) {
    lp2p_kad *kad = q->kad;
    int considered = 0;
    for (int i = 0; i < q->n && considered < kad->cfg.k && q->inflight < kad->cfg.alpha; i++) {
        lp2p__kad_cand *c = &q->c[i];
        if (c->state == LP2P__CAND_UNREACHABLE) continue;
        considered++;
        if (c->state != LP2P__CAND_HEARD || (q->in_followup && !c->follow)) continue;
        int slot = 0;
        while (slot < LP2P__KAD_MAX_ALPHA && q->workers[slot].id) slot++;
        if (slot == LP2P__KAD_MAX_ALPHA) return;
        lp2p__kad_worker *w = (lp2p__kad_worker *)lp2p__alloc(kad->ctx, sizeof *w);
        if (!w) return;
        w->q = q, w->peer = c->id, w->slot = slot;
        q->refs++;
        q->workers[slot] = lp2p__kad_spawn(kad, lp2p__kad_worker_task, w);
        if (!q->workers[slot].id) {
            q->refs--;
            lp2p__free(kad->ctx, w, sizeof *w);
            return;
        }
        c->state = LP2P__CAND_WAITING;
        q->inflight++;
        q->st.requests++;
    }
}

static lp2p__kad_query *lp2p__kad_query_new(lp2p_kad *kad, const uint8_t *key, size_t key_len, int64_t deadline) {
    lp2p__kad_query *q = (lp2p__kad_query *)lp2p__zalloc(kad->ctx, sizeof *q);
    if (!q) return NULL;
    q->kad = kad, q->refs = 1, q->key = key, q->key_len = key_len, q->deadline = deadline;
    lp2p__kad_hash(key, key_len, q->target);
    return q;
}

/* Run the lookup. out (may be NULL) gets the closest peers that answered. Returns their count,
 * ERR_NOTFOUND (no peers at all), ERR_TIMEOUT, ERR_CANCELED. Consumes q. */
static int lp2p__kad_run(lp2p__kad_query *q, lp2p_peer_id *out, int max) {
    lp2p_kad *kad = q->kad;
    lp2p_peer_id seeds[LP2P__KAD_SEND_MAX];
    int64_t t0 = lp2p_now();
    int rc = LP2P_OK, n = 0;
    int ns = lp2p__rt_closest(&kad->rt, q->target, NULL, seeds, LP2P__MIN(kad->cfg.k, (int)LP2P__COUNT(seeds)));
    for (int i = 0; i < ns; i++) lp2p__kad_cand_add(q, &seeds[i], 1);
    if (q->n == 0) rc = LP2P_ERR_NOTFOUND;
    q->next = kad->queries, kad->queries = q;
    kad->n_api++;
    while (rc == LP2P_OK && !q->stop && !kad->closing) {
        if (!q->in_followup && lp2p__kad_terminated(q)) {
            if (!q->followup) break;
            /* go's runLookupWithFollowup: the k closest not yet asked are asked too, so the
             * result is k peers that all answered */
            q->in_followup = true;
            for (int i = 0, seen = 0; i < q->n && seen < kad->cfg.k; i++)
                if (q->c[i].state != LP2P__CAND_UNREACHABLE) seen++, q->c[i].follow = 1;
        }
        lp2p__kad_launch(q);
        if (q->inflight == 0) break; /* nothing left to ask */
        rc = lp2p__waitq_wait(kad->h->sched, &q->wake, q->deadline);
    }
    if (kad->closing && rc == LP2P_OK) rc = LP2P_ERR_CANCELED;
    q->finished = true;
    for (int i = 0; i < LP2P__KAD_MAX_ALPHA; i++)
        if (q->workers[i].id) lp2p__task_cancel(kad->h->sched, q->workers[i]);
    for (lp2p__kad_query **pp = &kad->queries; *pp; pp = &(*pp)->next)
        if (*pp == q) {
            *pp = q->next;
            break;
        }
    /* bookkeeping: stats, bucket freshness, results */
    q->st.ms = lp2p_now() - t0;
    for (int i = 0; i < q->n; i++)
        if (q->c[i].state == LP2P__CAND_QUERIED) {
            if (q->st.hops == 0) q->st.hops = q->c[i].hop;
            if (out && n < max) out[n] = q->c[i].id;
            n++;
        }
    kad->last = q->st;
    kad->rt.b[lp2p__rt_bucket_of(&kad->rt, q->target)].last_lookup = lp2p_now();
    kad->n_api--;
    lp2p__waitq_wake_all(kad->h->sched, &kad->idle);
    lp2p__kad_query_unref(q);
    if (rc) return rc;
    return out ? LP2P__MIN(n, max) : n;
}

/* ---- fan-out: one request to many peers (PUT_VALUE, ADD_PROVIDER, entry correction) ----------- */
typedef struct lp2p__kad_fan {
    lp2p_kad *kad;
    int refs, n, done, ok;
    bool want_reply;
    lp2p__buf req;
    lp2p_peer_id peers[LP2P__KAD_SEND_MAX];
    lp2p_task t[LP2P__KAD_SEND_MAX];
    lp2p__waitq wake;
    int64_t deadline;
} lp2p__kad_fan;

typedef struct lp2p__kad_fan_arg {
    lp2p__kad_fan *f;
    int i;
} lp2p__kad_fan_arg;

static void lp2p__kad_fan_unref(lp2p__kad_fan *f) {
    if (--f->refs > 0) return;
    lp2p__buf_free(f->kad->ctx, &f->req);
    lp2p__free(f->kad->ctx, f, sizeof *f);
}

static void lp2p__kad_fan_task(void *arg) {
    lp2p__kad_fan_arg a = *(lp2p__kad_fan_arg *)arg;
    lp2p__kad_fan *f = a.f;
    lp2p_kad *kad = f->kad;
    uint8_t *reply = NULL;
    size_t reply_len = 0;
    bool dial_failed;
    lp2p__free(kad->ctx, arg, sizeof a);
    int rc = lp2p__kad_rpc(kad, &f->peers[a.i], f->req.p, f->req.len, f->want_reply, &reply, &reply_len, &dial_failed,
                           lp2p__kad_req_deadline(kad, f->deadline));
    if (reply) lp2p__kad_buf_free(kad, reply, reply_len);
    f->ok += rc == LP2P_OK;
    f->done++;
    f->t[a.i].id = 0;
    lp2p__waitq_wake_all(kad->h->sched, &f->wake);
    lp2p__kad_fan_unref(f);
}

/* Send f->req to f->peers concurrently; wait (wait = true) until all are done or the deadline.
 * Returns how many succeeded (with wait) or LP2P_OK. Consumes f. */
static int lp2p__kad_fan_run(lp2p__kad_fan *f, bool wait) {
    lp2p_kad *kad = f->kad;
    int started = 0;
    for (int i = 0; i < f->n; i++) {
        lp2p__kad_fan_arg *a = (lp2p__kad_fan_arg *)lp2p__alloc(kad->ctx, sizeof *a);
        if (!a) break;
        a->f = f, a->i = i;
        f->refs++;
        f->t[i] = lp2p__kad_spawn(kad, lp2p__kad_fan_task, a);
        if (!f->t[i].id) {
            f->refs--;
            lp2p__free(kad->ctx, a, sizeof *a);
            break;
        }
        started++;
    }
    int rc = LP2P_OK;
    if (wait) {
        kad->n_api++;
        while (f->done < started && rc == LP2P_OK && !kad->closing)
            rc = lp2p__waitq_wait(kad->h->sched, &f->wake, f->deadline);
        for (int i = 0; i < started; i++)
            if (f->t[i].id) lp2p__task_cancel(kad->h->sched, f->t[i]);
        kad->n_api--;
        lp2p__waitq_wake_all(kad->h->sched, &kad->idle);
        if (rc == LP2P_OK && kad->closing) rc = LP2P_ERR_CANCELED;
        if (rc == LP2P_OK || rc == LP2P_ERR_TIMEOUT) rc = f->ok;
    }
    lp2p__kad_fan_unref(f);
    return rc;
}

static lp2p__kad_fan *lp2p__kad_fan_new(lp2p_kad *kad, const lp2p_peer_id *peers, int n, bool want_reply,
                                        int64_t deadline) {
    lp2p__kad_fan *f = (lp2p__kad_fan *)lp2p__zalloc(kad->ctx, sizeof *f);
    if (!f) return NULL;
    f->kad = kad, f->refs = 1, f->want_reply = want_reply, f->deadline = deadline;
    f->n = LP2P__MIN(n, LP2P__KAD_SEND_MAX);
    memcpy(f->peers, peers, sizeof *peers * (size_t)f->n);
    return f;
}

/* ---- refresh and bootstrap ---------------------------------------------------------------------------- */
static int lp2p__kad_closest(lp2p_kad *kad, const uint8_t *key, size_t key_len, lp2p_peer_id *out, int max,
                             int64_t deadline) {
    lp2p__kad_query *q = lp2p__kad_query_new(kad, key, key_len, deadline);
    if (!q) return LP2P_ERR_NOMEM;
    int rc = lp2p__kad_encode_simple(kad, lp2p_pb_KadMessage_MessageType_FIND_NODE, key, key_len, &q->req);
    if (rc) {
        lp2p__kad_query_unref(q);
        return rc;
    }
    q->followup = out != NULL;
    return lp2p__kad_run(q, out, max);
}

/* Self lookup, then a random lookup in every bucket up to the deepest one we have (<= 15)
 * that saw no lookup within the refresh interval (go's rtrefresh). */
static int lp2p__kad_refresh(lp2p_kad *kad, bool force, int64_t deadline) {
    const lp2p_peer_id *self = &kad->h->identity.id;
    int64_t interval = kad->cfg.refresh_interval_ms > 0 ? kad->cfg.refresh_interval_ms : 600000;
    kad->last_refresh = lp2p_now();
    int rc = lp2p__kad_closest(kad, self->bytes, self->len, NULL, 0, deadline);
    if (rc < 0) return rc;
    int deepest = 0;
    for (int i = 0; i < 256; i++)
        if (kad->rt.b[i].n) deepest = i;
    for (int cpl = 0; cpl <= LP2P__MIN(deepest, LP2P__KAD_REFRESH_MAX_CPL) && !kad->closing; cpl++) {
        if (!force && lp2p_now() - kad->rt.b[cpl].last_lookup < interval) continue;
        uint8_t key[64];
        size_t n = lp2p__rt_random_key(&kad->rt, cpl, key);
        rc = lp2p__kad_closest(kad, key, n, NULL, 0, deadline);
        if (rc == LP2P_ERR_TIMEOUT || rc == LP2P_ERR_CANCELED) return rc;
    }
    return LP2P_OK;
}

/* Connect to one bootstrap peer, wait for identify, and make sure it is in the table if it
 * is a server (identify lists the protocol, or it answers a FIND_NODE). */
static void lp2p__kad_boot_one(lp2p_kad *kad, const char *addr, int64_t deadline) {
    lp2p__ma ma;
    lp2p_peer_id id;
    bool known;
    if (lp2p__ma_parse(addr, &ma, NULL) || !lp2p__ma_split_p2p(&ma, NULL, &id)) return;
    int64_t dl = lp2p__kad_req_deadline(kad, deadline);
    if (lp2p_host_identify(kad->h, addr, dl) != LP2P_OK) return;
    if (lp2p__kad_peer_is_server(kad, &id, &known)) {
        lp2p__kad_consider(kad, &id);
        return;
    }
    lp2p__buf req = {0};
    uint8_t *reply = NULL;
    size_t reply_len = 0;
    bool dial_failed;
    if (lp2p__kad_encode_simple(kad, lp2p_pb_KadMessage_MessageType_FIND_NODE, kad->h->identity.id.bytes,
                                kad->h->identity.id.len, &req) == LP2P_OK &&
        lp2p__kad_rpc(kad, &id, req.p, req.len, true, &reply, &reply_len, &dial_failed, dl) == LP2P_OK)
        lp2p__kad_consider(kad, &id);
    if (reply) lp2p__kad_buf_free(kad, reply, reply_len);
    lp2p__buf_free(kad->ctx, &req);
}

/* ---- background task: bootstrap when empty, refresh, expiry, reprovide --------------------------------- */
static int lp2p__kad_announce(lp2p_kad *kad, const uint8_t *key, size_t key_len, int64_t deadline);

static void lp2p__kad_background(void *arg) {
    lp2p_kad *kad = (lp2p_kad *)arg;
    if (lp2p__sleep_until(kad->h->sched, lp2p_deadline_in(50)) != LP2P_OK) return;
    while (!kad->closing) {
        int64_t now = lp2p_now();
        if (kad->rt.size == 0 && kad->n_boot && now - kad->last_boot >= 60000) {
            kad->last_boot = now;
            for (int i = 0; i < kad->n_boot && !kad->closing; i++) lp2p__kad_boot_one(kad, kad->boot[i], LP2P_FOREVER);
            if (kad->rt.size) kad->refresh_soon = true;
        }
        if (kad->cfg.refresh_interval_ms > 0 && kad->rt.size &&
            (kad->refresh_soon || now - kad->last_refresh >= kad->cfg.refresh_interval_ms)) {
            kad->refresh_soon = false;
            if (lp2p__kad_refresh(kad, false, lp2p_deadline_in(60000)) == LP2P_ERR_CANCELED) return;
        }
        if (now - kad->last_expire >= 60000) {
            kad->last_expire = now;
            lp2p__store_expire(&kad->st, now);
        }
        for (lp2p__kad_mine *m = kad->mine; m && !kad->closing; m = m->next)
            if (kad->cfg.reprovide_interval_ms > 0 && now >= m->next_announce) {
                m->next_announce = now + kad->cfg.reprovide_interval_ms;
                lp2p__kad_announce(kad, m->key, m->len, lp2p_deadline_in(60000));
                break; /* the list may have changed meanwhile: look again next round */
            }
        if (lp2p__sleep_until(kad->h->sched, lp2p_deadline_in(kad->refresh_soon ? 200 : 1000)) != LP2P_OK) return;
    }
}

/* ---- lifecycle ---------------------------------------------------------------------------------------- */
static void lp2p__kad_config_resolve(lp2p_kad_config *c) {
#define LP2P__KDEF(field, value) \
    if (c->field == 0) c->field = (value)
    LP2P__KDEF(k, 20);
    LP2P__KDEF(alpha, 10);
    LP2P__KDEF(beta, 3);
    LP2P__KDEF(request_timeout_ms, 10000);
    LP2P__KDEF(refresh_interval_ms, 600000);
    LP2P__KDEF(max_peers_per_ip_group, 3);
    LP2P__KDEF(max_peers_per_ip_group_per_bucket, 2);
    LP2P__KDEF(max_message_size, 1 << 20);
    LP2P__KDEF(max_inbound_requests, 128);
    LP2P__KDEF(max_provider_records, 65536);
    LP2P__KDEF(max_providers_per_key, 64);
    LP2P__KDEF(max_records, 16384);
    LP2P__KDEF(max_record_size, 64 << 10);
    LP2P__KDEF(get_quorum, 16);
    LP2P__KDEF(provider_ttl_ms, 48LL * 3600 * 1000);
    LP2P__KDEF(reprovide_interval_ms, 22LL * 3600 * 1000);
    LP2P__KDEF(record_ttl_ms, 48LL * 3600 * 1000);
    LP2P__KDEF(idle_connection_ms, 10000);
#undef LP2P__KDEF
    if (c->k > LP2P__KAD_SEND_MAX) c->k = LP2P__KAD_SEND_MAX;
    if (c->beta > c->k) c->beta = c->k;
}

static void lp2p__kad_release(void *self) {
    lp2p_kad *kad = (lp2p_kad *)self;
    lp2p__ctx *ctx = kad->ctx;
    lp2p__rt_free(&kad->rt);
    lp2p__store_free(&kad->st);
    while (kad->mine) {
        lp2p__kad_mine *m = kad->mine;
        kad->mine = m->next;
        lp2p__free(ctx, m, sizeof *m);
    }
    for (int i = 0; i < kad->n_boot; i++) lp2p__strfree(ctx, kad->boot[i]);
    lp2p__strfree(ctx, kad->protocol);
    lp2p__free(ctx, kad, sizeof *kad);
}

static bool lp2p__kad_proto_ok(const char *p) {
    size_t n = p ? strlen(p) : 0;
    return n > 1 && n < LP2P__PROTO_MAX && p[0] == '/';
}

LP2P_API int lp2p_kad_new(lp2p_host *h, const lp2p_kad_config *cfg, lp2p_kad **out) {
    lp2p_kad_config zero;
    if (!h || !out) return LP2P_ERR_INVALID;
    if (!cfg) memset(&zero, 0, sizeof zero), cfg = &zero;
    const char *proto = cfg->protocol ? cfg->protocol : LP2P__KAD_PROTO;
    if (!lp2p__kad_proto_ok(proto) || cfg->alpha > LP2P__KAD_MAX_ALPHA || cfg->alpha < 0 || cfg->k < 0 || cfg->beta < 0)
        return LP2P_ERR_INVALID;
    for (lp2p__service *s = h->services; s; s = s->next)
        if (s->free == lp2p__kad_release && strcmp(((lp2p_kad *)s->self)->protocol, proto) == 0) return LP2P_ERR_BUSY;
    for (int i = 0; i < LP2P_KAD_MAX_BOOTSTRAP; i++) {
        lp2p__ma ma;
        if (cfg->bootstrap_peers[i] &&
            (lp2p__ma_parse(cfg->bootstrap_peers[i], &ma, NULL) || !lp2p__ma_split_p2p(&ma, NULL, NULL)))
            return LP2P_ERR_BADADDR;
    }
    lp2p_kad *kad = (lp2p_kad *)lp2p__zalloc(&h->ctx, sizeof *kad);
    if (!kad) return LP2P_ERR_NOMEM;
    kad->h = h, kad->ctx = &h->ctx, kad->cfg = *cfg;
    lp2p__kad_config_resolve(&kad->cfg);
    memset(kad->cfg.bootstrap_peers, 0, sizeof kad->cfg.bootstrap_peers);
    kad->cfg.protocol = NULL;
    kad->protocol = lp2p__strdup(kad->ctx, proto);
    bool nomem = !kad->protocol;
    for (int i = 0; i < LP2P_KAD_MAX_BOOTSTRAP; i++)
        if (cfg->bootstrap_peers[i] && !(kad->boot[kad->n_boot++] = lp2p__strdup(kad->ctx, cfg->bootstrap_peers[i])))
            nomem = true;
    lp2p__rt_init(&kad->rt, kad->ctx, &h->identity.id, kad->cfg.k, kad->cfg.max_peers_per_ip_group,
                  kad->cfg.max_peers_per_ip_group_per_bucket);
    kad->st.ctx = kad->ctx, kad->st.max_prov = kad->cfg.max_provider_records;
    kad->st.max_per_key = kad->cfg.max_providers_per_key, kad->st.max_rec = kad->cfg.max_records;
    lp2p_kad_validator pk = {lp2p__kad_pk_validate, NULL, NULL};
    if (nomem || lp2p__store_set_validator(&kad->st, "pk", &pk)) {
        lp2p__kad_release(kad);
        return LP2P_ERR_NOMEM;
    }
    kad->mode = LP2P_KAD_CLIENT;
    kad->last_boot = -60000;
    kad->last_refresh = lp2p_now();
    kad->service.free = lp2p__kad_release, kad->service.self = kad;
    lp2p__host_add_service(h, &kad->service);
    kad->notifee.identified = lp2p__kad_identified, kad->notifee.user = kad;
    kad->notifee.nat_changed = lp2p__kad_nat_changed;
    lp2p__swarm_add_notifee(h, &kad->notifee);
    int rc = lp2p_kad_set_mode(kad, cfg->mode);
    if (rc == LP2P_OK && !lp2p__kad_spawn(kad, lp2p__kad_background, kad).id) rc = LP2P_ERR_NOMEM;
    if (rc) {
        lp2p_kad_free(kad);
        return rc;
    }
    *out = kad;
    return LP2P_OK;
}

LP2P_API void lp2p_kad_free(lp2p_kad *kad) {
    if (!kad) return;
    lp2p_host *h = kad->h;
    kad->closing = true;
    if (kad->mode == LP2P_KAD_SERVER) lp2p_host_unhandle(h, kad->protocol);
    lp2p__swarm_remove_notifee(h, &kad->notifee);
    for (lp2p__kad_task *t = kad->tasks; t; t = t->next) lp2p__task_cancel(h->sched, t->t);
    for (lp2p__kad_query *q = kad->queries; q; q = q->next) lp2p__waitq_wake_all(h->sched, &q->wake);
    for (int i = 0; i < 1000 && (kad->n_tasks > 0 || kad->n_api > 0); i++)
        if (lp2p__waitq_wait(h->sched, &kad->idle, lp2p_deadline_in(100)) == LP2P_ERR_WOULDBLOCK) break;
    if (kad->n_tasks > 0 || kad->n_api > 0) { /* cannot wait here: leave it to lp2p_host_free */
        LP2P__WARN(kad->ctx, LP2P_ERR_BUSY, "kad: freed with %d tasks still running: memory kept until lp2p_host_free",
                   kad->n_tasks + kad->n_api);
        return;
    }
    lp2p__host_remove_service(h, &kad->service);
    lp2p__kad_release(kad);
}

LP2P_API lp2p_kad_mode lp2p_kad_get_mode(const lp2p_kad *kad) { return kad->mode; }

LP2P_API int lp2p_kad_set_mode(lp2p_kad *kad, lp2p_kad_mode mode) {
    if (!kad || mode < LP2P_KAD_AUTO || mode > LP2P_KAD_SERVER) return LP2P_ERR_INVALID;
    kad->auto_mode = mode == LP2P_KAD_AUTO;
    /* AUTO: a host AutoNAT found unreachable must not be a server (peers would put an address
     * nobody can dial in their tables: kad-dht/README.md "Client and server mode") */
    if (mode == LP2P_KAD_AUTO)
        mode = strcmp(kad->protocol, LP2P__KAD_PROTO) == 0 || lp2p_host_nat_status(kad->h) == LP2P_NAT_PRIVATE
                   ? LP2P_KAD_CLIENT
                   : LP2P_KAD_SERVER;
    if (mode == kad->mode) return LP2P_OK;
    if (mode == LP2P_KAD_SERVER) {
        int rc = lp2p_host_handle(kad->h, kad->protocol, lp2p__kad_serve, kad);
        if (rc) return rc;
    } else {
        lp2p_host_unhandle(kad->h, kad->protocol);
    }
    kad->mode = mode;
    return LP2P_OK;
}

/* ---- public lookups ---------------------------------------------------------------------------------- */
static bool lp2p__kad_key_ok(const uint8_t *key, size_t len) { return key && len > 0 && len <= LP2P__KAD_KEY_MAX; }

LP2P_API int lp2p_kad_bootstrap(lp2p_kad *kad, const char *const *addrs, int n, int64_t deadline) {
    if (!kad || (n > 0 && !addrs)) return LP2P_ERR_INVALID;
    for (int i = 0; i < n; i++) {
        lp2p__ma ma;
        if (!addrs[i] || lp2p__ma_parse(addrs[i], &ma, NULL) || !lp2p__ma_split_p2p(&ma, NULL, NULL)) return LP2P_ERR_BADADDR;
    }
    kad->last_boot = lp2p_now();
    for (int i = 0; i < kad->n_boot && !kad->closing; i++) lp2p__kad_boot_one(kad, kad->boot[i], deadline);
    for (int i = 0; i < n && !kad->closing; i++) lp2p__kad_boot_one(kad, addrs[i], deadline);
    if (kad->closing) return LP2P_ERR_CANCELED;
    if (kad->rt.size == 0) return LP2P_ERR_NOTFOUND;
    int rc = lp2p__kad_refresh(kad, true, deadline);
    if (rc == LP2P_ERR_TIMEOUT || rc == LP2P_ERR_CANCELED) return rc;
    kad->refresh_soon = false;
    return kad->rt.size ? kad->rt.size : LP2P_ERR_NOTFOUND;
}

LP2P_API int lp2p_kad_get_closest_peers(lp2p_kad *kad, const uint8_t *key, size_t key_len, lp2p_kad_peer_fn fn,
                                        void *user, lp2p_peer_id *out, int max, int64_t deadline) {
    if (!kad || !lp2p__kad_key_ok(key, key_len) || (max > 0 && !out)) return LP2P_ERR_INVALID;
    lp2p__kad_query *q = lp2p__kad_query_new(kad, key, key_len, deadline);
    if (!q) return LP2P_ERR_NOMEM;
    q->peer_fn = fn, q->peer_user = user, q->followup = true;
    int rc = lp2p__kad_encode_simple(kad, lp2p_pb_KadMessage_MessageType_FIND_NODE, key, key_len, &q->req);
    if (rc) {
        lp2p__kad_query_unref(q);
        return rc;
    }
    return lp2p__kad_run(q, out, LP2P__MIN(max, kad->cfg.k));
}

/* find_peer: stop as soon as an answer carries the target with an address. */
static int lp2p__kad_visit_find_peer(lp2p__kad_query *q, const lp2p_peer_id *from, const lp2p__kad_msg *m) {
    const lp2p_peer_id *target = (const lp2p_peer_id *)q->user;
    if (lp2p_peer_id_eq(from, target)) return 1;
    for (int i = 0; i < m->n_closer; i++)
        if (m->closer[i].id.len == target->len && memcmp(m->closer[i].id.p, target->bytes, target->len) == 0 &&
            m->closer[i].n_addrs > 0)
            return 1;
    return 0;
}

static bool lp2p__kad_has_addrs(lp2p_kad *kad, const lp2p_peer_id *peer) {
    lp2p__peer *p = lp2p__peerstore_get(kad->h, peer, false);
    int64_t now = lp2p_now();
    for (int i = 0; p && i < p->n_addrs; i++)
        if (p->addrs[i].expires < 0 || p->addrs[i].expires >= now) return true;
    return false;
}

LP2P_API int lp2p_kad_find_peer(lp2p_kad *kad, const lp2p_peer_id *peer, int64_t deadline) {
    if (!kad || !peer || !peer->len) return LP2P_ERR_INVALID;
    if (lp2p_peer_id_eq(peer, &kad->h->identity.id) || lp2p__swarm_find_conn(kad->h, peer)) return LP2P_OK;
    lp2p__kad_query *q = lp2p__kad_query_new(kad, peer->bytes, peer->len, deadline);
    if (!q) return LP2P_ERR_NOMEM;
    q->visit = lp2p__kad_visit_find_peer, q->user = (void *)peer;
    int rc = lp2p__kad_encode_simple(kad, lp2p_pb_KadMessage_MessageType_FIND_NODE, peer->bytes, peer->len, &q->req);
    if (rc) {
        lp2p__kad_query_unref(q);
        return rc;
    }
    rc = lp2p__kad_run(q, NULL, 0);
    if (rc < 0 && rc != LP2P_ERR_NOTFOUND) return rc;
    return lp2p__kad_has_addrs(kad, peer) ? LP2P_OK : LP2P_ERR_NOTFOUND;
}

/* ADD_PROVIDER to the k closest peers of key (our listen addresses inside). */
static int lp2p__kad_announce(lp2p_kad *kad, const uint8_t *key, size_t key_len, int64_t deadline) {
    lp2p_peer_id closest[LP2P__KAD_SEND_MAX];
    int n = lp2p__kad_closest(kad, key, key_len, closest, LP2P__MIN(kad->cfg.k, LP2P__KAD_SEND_MAX), deadline);
    if (n < 0) return n;
    if (n == 0) return 0;
    lp2p__kad_fan *f = lp2p__kad_fan_new(kad, closest, n, false, deadline);
    if (!f) return LP2P_ERR_NOMEM;
    lp2p__kad_out o;
    memset(&o, 0, sizeof o);
    o.h = kad->h, o.type = lp2p_pb_KadMessage_MessageType_ADD_PROVIDER, o.key = key, o.key_len = key_len;
    o.providers = &kad->h->identity.id, o.n_providers = 1;
    int rc = lp2p__kad_msg_encode(kad->ctx, &o, &f->req);
    if (rc) {
        lp2p__kad_fan_unref(f);
        return rc;
    }
    return lp2p__kad_fan_run(f, true);
}

LP2P_API int lp2p_kad_provide(lp2p_kad *kad, const uint8_t *key, size_t key_len, int64_t deadline) {
    if (!kad || !key || key_len == 0 || key_len > LP2P__KAD_PROVIDER_KEY_MAX) return LP2P_ERR_INVALID;
    int64_t now = lp2p_now();
    lp2p__store_add_provider(&kad->st, key, key_len, &kad->h->identity.id, now + kad->cfg.provider_ttl_ms);
    lp2p__kad_mine *m = kad->mine;
    while (m && !(m->len == key_len && memcmp(m->key, key, key_len) == 0)) m = m->next;
    if (!m && (m = (lp2p__kad_mine *)lp2p__zalloc(kad->ctx, sizeof *m)) != NULL) {
        memcpy(m->key, key, key_len);
        m->len = key_len;
        m->next = kad->mine, kad->mine = m;
    }
    if (m) m->next_announce = now + kad->cfg.reprovide_interval_ms;
    return lp2p__kad_announce(kad, key, key_len, deadline);
}

typedef struct lp2p__kad_found {
    lp2p_kad_peer_fn fn;
    void *user;
    lp2p_peer_id *out;
    int max, n, want;
    lp2p_peer_id seen[256];
    int n_seen;
} lp2p__kad_found;

/* A provider (or any peer result) heard: dedupe, report, keep. Returns nonzero to stop. */
static int lp2p__kad_found_add(lp2p__kad_found *f, const lp2p_peer_id *id) {
    for (int i = 0; i < f->n_seen; i++)
        if (lp2p_peer_id_eq(&f->seen[i], id)) return 0;
    if (f->n_seen < (int)LP2P__COUNT(f->seen)) f->seen[f->n_seen++] = *id;
    if (f->out && f->n < f->max) f->out[f->n] = *id;
    f->n++;
    if (f->fn && f->fn(f->user, id)) return 1;
    return f->want > 0 && f->n >= f->want;
}

static int lp2p__kad_visit_providers(lp2p__kad_query *q, const lp2p_peer_id *from, const lp2p__kad_msg *m) {
    lp2p__kad_found *f = (lp2p__kad_found *)q->user;
    (void)from;
    for (int i = 0; i < m->n_providers; i++) {
        lp2p_peer_id id;
        const lp2p__kad_wpeer *w = &m->providers[i];
        if (lp2p__peer_id_from_bytes(w->id.p, w->id.len, &id) != LP2P_OK) continue;
        if (!lp2p_peer_id_eq(&id, &q->kad->h->identity.id)) lp2p__kad_learn(q->kad, w, &id, LP2P__KAD_PROVIDER_ADDR_TTL_MS);
        if (lp2p__kad_found_add(f, &id)) return 1;
    }
    return 0;
}

LP2P_API int lp2p_kad_find_providers(lp2p_kad *kad, const uint8_t *key, size_t key_len, int max_providers,
                                     lp2p_kad_peer_fn fn, void *user, lp2p_peer_id *out, int max, int64_t deadline) {
    if (!kad || !key || key_len == 0 || key_len > LP2P__KAD_PROVIDER_KEY_MAX || (max > 0 && !out)) return LP2P_ERR_INVALID;
    lp2p__kad_found *f = (lp2p__kad_found *)lp2p__zalloc(kad->ctx, sizeof *f);
    if (!f) return LP2P_ERR_NOMEM;
    f->fn = fn, f->user = user, f->out = out, f->max = max, f->want = max_providers;
    lp2p_peer_id local[LP2P__KAD_SEND_MAX];
    int nl = lp2p__store_get_providers(&kad->st, key, key_len, lp2p_now(), local, (int)LP2P__COUNT(local));
    bool done = false;
    for (int i = 0; i < nl && !done; i++) done = lp2p__kad_found_add(f, &local[i]) != 0;
    int rc = LP2P_OK;
    if (!done) {
        lp2p__kad_query *q = lp2p__kad_query_new(kad, key, key_len, deadline);
        rc = q ? lp2p__kad_encode_simple(kad, lp2p_pb_KadMessage_MessageType_GET_PROVIDERS, key, key_len, &q->req)
               : LP2P_ERR_NOMEM;
        if (rc == LP2P_OK) {
            q->visit = lp2p__kad_visit_providers, q->user = f;
            rc = lp2p__kad_run(q, NULL, 0);
            if (rc == LP2P_ERR_NOTFOUND && f->n) rc = LP2P_OK;
        } else if (q) {
            lp2p__kad_query_unref(q);
        }
    }
    int n = f->n; /* out holds the first min(n, max) */
    if (rc == LP2P_ERR_NOTFOUND) rc = LP2P_OK, n = 0;
    lp2p__free(kad->ctx, f, sizeof *f);
    return rc < 0 ? rc : n;
}

/* ---- values ------------------------------------------------------------------------------------------ */
static int lp2p__kad_encode_put(lp2p_kad *kad, const uint8_t *key, size_t key_len, const uint8_t *value,
                                size_t value_len, lp2p__buf *b) {
    char when[40];
    lp2p__kad_out o;
    lp2p__kad_rec *r = lp2p__store_get_record(&kad->st, key, key_len, lp2p_now());
    snprintf(when, sizeof when, "%s", r ? r->time : "");
    memset(&o, 0, sizeof o);
    o.h = kad->h, o.type = lp2p_pb_KadMessage_MessageType_PUT_VALUE, o.key = key, o.key_len = key_len;
    o.has_record = true;
    o.rec_key = key, o.rec_key_len = key_len, o.rec_value = value, o.rec_value_len = value_len;
    o.rec_time = (const uint8_t *)when, o.rec_time_len = strlen(when);
    return lp2p__kad_msg_encode(kad->ctx, &o, b);
}

LP2P_API int lp2p_kad_put_value(lp2p_kad *kad, const uint8_t *key, size_t key_len, const uint8_t *value,
                                size_t value_len, int64_t deadline) {
    lp2p_peer_id closest[LP2P__KAD_SEND_MAX];
    if (!kad || !lp2p__kad_key_ok(key, key_len) || (!value && value_len)) return LP2P_ERR_INVALID;
    if (key_len + value_len > (size_t)kad->cfg.max_record_size) return LP2P_ERR_INVALID;
    if (lp2p__store_validate(&kad->st, key, key_len, value, value_len) != LP2P_OK) return LP2P_ERR_INVALID;
    int rc = lp2p__store_put_record(&kad->st, key, key_len, value, value_len, lp2p_now() + kad->cfg.record_ttl_ms);
    if (rc) return rc;
    int n = lp2p__kad_closest(kad, key, key_len, closest, LP2P__MIN(kad->cfg.k, LP2P__KAD_SEND_MAX), deadline);
    if (n <= 0) return n;
    lp2p__kad_fan *f = lp2p__kad_fan_new(kad, closest, n, true, deadline);
    if (!f) return LP2P_ERR_NOMEM;
    rc = lp2p__kad_encode_put(kad, key, key_len, value, value_len, &f->req);
    if (rc) {
        lp2p__kad_fan_unref(f);
        return rc;
    }
    return lp2p__kad_fan_run(f, true);
}

typedef struct lp2p__kad_answer {
    lp2p_peer_id peer;
    uint8_t hash[32];
    bool had;
} lp2p__kad_answer;

typedef struct lp2p__kad_getv {
    lp2p_kad_value_fn fn;
    void *user;
    uint8_t *best;
    size_t best_len;
    uint8_t best_hash[32];
    int values;
    lp2p__kad_answer ans[LP2P__KAD_MAX_LOOKUP_PEERS];
    int n_ans;
} lp2p__kad_getv;

/* A candidate value (already validated): report it, keep the better one. */
static int lp2p__kad_getv_offer(lp2p_kad *kad, lp2p__kad_getv *g, const uint8_t *key, size_t key_len,
                                const lp2p_peer_id *from, const uint8_t *v, size_t len) {
    g->values++;
    if (g->fn && g->fn(g->user, from, v, len)) return 1;
    if (!g->best || lp2p__store_select(&kad->st, key, key_len, g->best, g->best_len, v, len) == 1) {
        uint8_t *copy = (uint8_t *)lp2p__alloc(kad->ctx, len ? len : 1);
        if (!copy) return 1;
        if (len) memcpy(copy, v, len);
        if (g->best) lp2p__free(kad->ctx, g->best, g->best_len ? g->best_len : 1);
        g->best = copy, g->best_len = len;
        lp2p__sha256_once(v, len, g->best_hash);
    }
    return g->values >= kad->cfg.get_quorum;
}

static int lp2p__kad_visit_value(lp2p__kad_query *q, const lp2p_peer_id *from, const lp2p__kad_msg *m) {
    lp2p__kad_getv *g = (lp2p__kad_getv *)q->user;
    lp2p__kad_answer *a = g->n_ans < (int)LP2P__COUNT(g->ans) ? &g->ans[g->n_ans++] : NULL;
    if (a) memset(a, 0, sizeof *a), a->peer = *from;
    if (!m->has_record) return 0;
    if (m->rec_key.len != q->key_len || memcmp(m->rec_key.p, q->key, q->key_len) != 0 ||
        lp2p__store_validate(&q->kad->st, q->key, q->key_len, m->rec_value.p, m->rec_value.len) != LP2P_OK) {
        lp2p__kad_warn_peer(q->kad, from, LP2P_ERR_INVALID, "GET_VALUE answer failing validation (dropped)");
        return 0;
    }
    if (a) a->had = true, lp2p__sha256_once(m->rec_value.p, m->rec_value.len, a->hash);
    return lp2p__kad_getv_offer(q->kad, g, q->key, q->key_len, from, m->rec_value.p, m->rec_value.len);
}

/* Entry correction: the closest peers that answered without the best value get it. */
static void lp2p__kad_correct(lp2p_kad *kad, const lp2p__kad_getv *g, const uint8_t *key, size_t key_len,
                              const lp2p_peer_id *closest, int n) {
    lp2p_peer_id stale[LP2P__KAD_SEND_MAX];
    int ns = 0;
    for (int i = 0; i < n && ns < LP2P__KAD_SEND_MAX; i++)
        for (int j = 0; j < g->n_ans; j++)
            if (lp2p_peer_id_eq(&g->ans[j].peer, &closest[i])) {
                if (!g->ans[j].had || memcmp(g->ans[j].hash, g->best_hash, 32) != 0) stale[ns++] = closest[i];
                break;
            }
    if (!ns) return;
    lp2p__kad_fan *f = lp2p__kad_fan_new(kad, stale, ns, true, lp2p_deadline_in(kad->cfg.request_timeout_ms));
    if (!f) return;
    if (lp2p__kad_encode_put(kad, key, key_len, g->best, g->best_len, &f->req) == LP2P_OK) lp2p__kad_fan_run(f, false);
    else lp2p__kad_fan_unref(f);
}

LP2P_API ptrdiff_t lp2p_kad_get_value(lp2p_kad *kad, const uint8_t *key, size_t key_len, lp2p_kad_value_fn fn,
                                      void *user, uint8_t *out, size_t cap, int64_t deadline) {
    lp2p_peer_id closest[LP2P__KAD_SEND_MAX];
    if (!kad || !lp2p__kad_key_ok(key, key_len) || (!out && cap)) return LP2P_ERR_INVALID;
    lp2p__kad_getv *g = (lp2p__kad_getv *)lp2p__zalloc(kad->ctx, sizeof *g);
    if (!g) return LP2P_ERR_NOMEM;
    g->fn = fn, g->user = user;
    lp2p__kad_rec *r = lp2p__store_get_record(&kad->st, key, key_len, lp2p_now());
    bool done = false;
    if (r && lp2p__store_validate(&kad->st, key, key_len, r->value, r->value_len) == LP2P_OK)
        done = lp2p__kad_getv_offer(kad, g, key, key_len, &kad->h->identity.id, r->value, r->value_len) != 0;
    int rc = LP2P_OK, n = 0;
    if (!done) {
        lp2p__kad_query *q = lp2p__kad_query_new(kad, key, key_len, deadline);
        rc = q ? lp2p__kad_encode_simple(kad, lp2p_pb_KadMessage_MessageType_GET_VALUE, key, key_len, &q->req)
               : LP2P_ERR_NOMEM;
        if (rc == LP2P_OK) {
            q->visit = lp2p__kad_visit_value, q->user = g;
            rc = n = lp2p__kad_run(q, closest, LP2P__MIN(kad->cfg.k, LP2P__KAD_SEND_MAX));
            if (rc == LP2P_ERR_NOTFOUND) rc = n = 0;
        } else if (q) {
            lp2p__kad_query_unref(q);
        }
    }
    ptrdiff_t res = rc < 0 ? rc : LP2P_ERR_NOTFOUND;
    if (rc >= 0 && g->best) {
        if (n > 0) lp2p__kad_correct(kad, g, key, key_len, closest, n);
        if (g->best_len > cap) res = LP2P_ERR_MSGSIZE;
        else {
            if (g->best_len) memcpy(out, g->best, g->best_len);
            res = (ptrdiff_t)g->best_len;
        }
    }
    if (g->best) lp2p__free(kad->ctx, g->best, g->best_len ? g->best_len : 1);
    lp2p__free(kad->ctx, g, sizeof *g);
    return res;
}

LP2P_API int lp2p_kad_set_validator(lp2p_kad *kad, const char *ns, const lp2p_kad_validator *v) {
    if (!kad) return LP2P_ERR_INVALID;
    return lp2p__store_set_validator(&kad->st, ns, v);
}

/* ---- inspection ------------------------------------------------------------------------------------------ */
LP2P_API int lp2p_kad_routing_table(lp2p_kad *kad, lp2p_kad_entry *out, int max) {
    int n = 0;
    int64_t now = lp2p_now();
    for (int b = 0; b < 256; b++)
        for (int i = 0; i < kad->rt.b[b].n; i++, n++)
            if (out && n < max) {
                const lp2p__kad_entry *e = &kad->rt.b[b].e[i];
                out[n].id = e->id, out[n].bucket = b;
                out[n].added_ms_ago = now - e->added, out[n].seen_ms_ago = now - e->seen;
            }
    return n;
}

LP2P_API void lp2p_kad_last_lookup(const lp2p_kad *kad, lp2p_kad_lookup_stats *out) { *out = kad->last; }

LP2P_API ptrdiff_t lp2p_kad_key_from_cid(const char *cid, uint8_t *out, size_t cap) {
    uint8_t buf[256];
    ptrdiff_t n;
    if (!cid || !out) return LP2P_ERR_INVALID;
    size_t len = strlen(cid);
    if (len < 2 || len > 400) return LP2P_ERR_BADADDR;
    if (cid[0] == 'Q' && cid[1] == 'm') n = lp2p__base58_dec(cid, len, buf, sizeof buf); /* CIDv0 = the multihash */
    else if (cid[0] == 'b' || cid[0] == 'B') n = lp2p__base32_dec(cid + 1, len - 1, buf, sizeof buf);
    else if (cid[0] == 'z') n = lp2p__base58_dec(cid + 1, len - 1, buf, sizeof buf);
    else if (cid[0] == 'f' || cid[0] == 'F') n = lp2p__hex_dec(cid + 1, len - 1, buf, sizeof buf);
    else return LP2P_ERR_BADADDR;
    if (n <= 0) return LP2P_ERR_BADADDR;
    size_t off = 0;
    uint64_t v;
    if (!(cid[0] == 'Q' && cid[1] == 'm')) { /* CIDv1: version, codec, then the multihash */
        int a = lp2p__uvarint_get(buf, (size_t)n, &v);
        if (a <= 0 || v != 1) return LP2P_ERR_BADADDR;
        int b = lp2p__uvarint_get(buf + a, (size_t)n - (size_t)a, &v);
        if (b <= 0) return LP2P_ERR_BADADDR;
        off = (size_t)a + (size_t)b;
    }
    /* check the multihash: code, length, digest */
    int a = lp2p__uvarint_get(buf + off, (size_t)n - off, &v);
    if (a <= 0) return LP2P_ERR_BADADDR;
    int b = lp2p__uvarint_get(buf + off + a, (size_t)n - off - (size_t)a, &v);
    if (b <= 0 || off + (size_t)a + (size_t)b + v != (size_t)n) return LP2P_ERR_BADADDR;
    size_t mh = (size_t)n - off;
    if (mh > cap) return LP2P_ERR_MSGSIZE;
    memcpy(out, buf + off, mh);
    return (ptrdiff_t)mh;
}
/*==================== end src/kad.c ====================*/
/*==================== begin src/pubsub_rpc.c ====================*/
/* pubsub_rpc.c - L7: the pubsub RPC codec and message-ID digest sets.
 *
 * Spec: libp2p/specs pubsub/README.md (RPC and Message), gossipsub-v1.0/1.1/1.2 (ControlMessage).
 * Decoding uses nanopb (proto/pubsub.pb.h) with a callback per repeated or variable-size
 * field: every field becomes a slice of the received buffer (no copies, no allocation driven by
 * the peer beyond the capped entry arrays), and every count is capped per RPC. RPCs we send are
 * written by hand (tag, length, bytes), so pieces built at different times can be concatenated.
 * The digest sets (seen cache, IDONTWANT, message cache index) are open-addressing tables of
 * salted 16-byte SHA-256 digests with expiry in insertion order.
 * Depends on: pubsub.h. */
// (amalgamated) #include "pubsub.h"

#include <pb_decode.h>

/* ---- protobuf writing ---------------------------------------------------------------------------- */
static int lp2p__pb_put_uvarint(lp2p__ctx *ctx, lp2p__buf *b, uint64_t v) {
    uint8_t tmp[LP2P__UVARINT_MAX + 1];
    return lp2p__buf_append(ctx, b, tmp, lp2p__uvarint_put(tmp, v));
}

LP2P__PRIV int lp2p__pb_put_tag(lp2p__ctx *ctx, lp2p__buf *b, uint32_t field, int wire) {
    return lp2p__pb_put_uvarint(ctx, b, ((uint64_t)field << 3) | (uint64_t)wire);
}

LP2P__PRIV int lp2p__pb_put_bytes(lp2p__ctx *ctx, lp2p__buf *b, uint32_t field, const void *p, size_t n) {
    int rc = lp2p__pb_put_tag(ctx, b, field, 2);
    if (!rc) rc = lp2p__pb_put_uvarint(ctx, b, n);
    if (!rc && n) rc = lp2p__buf_append(ctx, b, p, n);
    return rc;
}

LP2P__PRIV int lp2p__pb_put_varint(lp2p__ctx *ctx, lp2p__buf *b, uint32_t field, uint64_t v) {
    int rc = lp2p__pb_put_tag(ctx, b, field, 0);
    return rc ? rc : lp2p__pb_put_uvarint(ctx, b, v);
}

/* ---- RPC decoding (nanopb with callbacks; the stream is always a buffer stream, whose state
 * is the read position, so fields become slices of the received RPC) ------------------------------ */
typedef struct lp2p__ps_dec {
    lp2p__ps_rpc *r;
    lp2p__ps_rpc_msg *m;  /* the Message being decoded */
    lp2p__ps_slice topic; /* of the SubOpts / control entry being decoded */
    lp2p__ps_rpc_px px;
    const uint8_t *base;  /* the buffer being decoded: every slice must lie inside it */
    size_t len;
} lp2p__ps_dec;

/* A length-delimited field as a slice. nanopb also calls callbacks for a field sent with a
 * scalar wire type, with a stream over its own stack copy: such a "slice" would dangle, so the
 * position must lie inside the buffer (else the RPC is malformed). */
static bool lp2p__ps_dec_slice(const lp2p__ps_dec *d, pb_istream_t *st, lp2p__ps_slice *out) {
    const uint8_t *p = (const uint8_t *)st->state;
    if (p < d->base || p > d->base + d->len || st->bytes_left > (size_t)(d->base + d->len - p)) return false;
    out->p = p;
    out->n = st->bytes_left;
    return pb_read(st, NULL, st->bytes_left);
}

#define LP2P__PS_GROW(r, arr, n, cap, limit)                                                            \
    ((n) < (cap) ? true                                                                                \
     : (cap) >= (limit) ? false                                                                        \
     : lp2p__ps_grow((r)->ctx, (void **)&(arr), &(cap), sizeof *(arr), (limit)))

static bool lp2p__ps_grow(lp2p__ctx *ctx, void **arr, int *cap, size_t elem, int limit) {
    int ncap = *cap ? *cap * 2 : 8;
    if (ncap > limit) ncap = limit;
    void *p = lp2p__realloc(ctx, *arr, elem * (size_t)*cap, elem * (size_t)ncap);
    if (!p) return false;
    *arr = p, *cap = ncap;
    return true;
}

static bool lp2p__ps_dec_topic(pb_istream_t *st, const pb_field_t *f, void **arg) {
    (void)f;
    lp2p__ps_dec *d = (lp2p__ps_dec *)*arg;
    return lp2p__ps_dec_slice(d, st, &d->topic);
}

static bool lp2p__ps_dec_sub(pb_istream_t *st, const pb_field_t *f, void **arg) {
    lp2p__ps_dec *d = (lp2p__ps_dec *)*arg;
    lp2p__ps_rpc *r = d->r;
    lp2p_pb_PubsubRPC_SubOpts so;
    (void)f;
    memset(&so, 0, sizeof so);
    d->topic.p = NULL, d->topic.n = 0;
    so.topicid.funcs.decode = lp2p__ps_dec_topic, so.topicid.arg = d;
    if (!pb_decode(st, lp2p_pb_PubsubRPC_SubOpts_fields, &so)) return false;
    if (!LP2P__PS_GROW(r, r->subs, r->n_subs, r->cap_subs, LP2P__PS_MAX_SUBS_PER_RPC)) {
        r->truncated++;
        return true;
    }
    r->subs[r->n_subs].topic = d->topic;
    r->subs[r->n_subs++].subscribe = so.subscribe;
    return true;
}

static bool lp2p__ps_dec_msg_field(pb_istream_t *st, const pb_field_t *f, void **arg) {
    const lp2p__ps_dec *d = (const lp2p__ps_dec *)*arg;
    lp2p__ps_rpc_msg *m = d->m;
    switch (f->tag) {
    case 1: m->has_from = true; return lp2p__ps_dec_slice(d, st, &m->from);
    case 2: m->has_data = true; return lp2p__ps_dec_slice(d, st, &m->data);
    case 3: m->has_seqno = true; return lp2p__ps_dec_slice(d, st, &m->seqno);
    case 4: m->has_topic = true; return lp2p__ps_dec_slice(d, st, &m->topic);
    case 5: m->has_signature = true; return lp2p__ps_dec_slice(d, st, &m->signature);
    case 6: m->has_key = true; return lp2p__ps_dec_slice(d, st, &m->key);
    default: return pb_read(st, NULL, st->bytes_left);
    }
}

/* Slices of an encoded Message (our own, after building it). */
LP2P__PRIV int lp2p__ps_msg_parse(const uint8_t *raw, size_t len, lp2p__ps_rpc_msg *out) {
    lp2p__ps_dec d;
    lp2p_pb_PubsubMessage pm;
    memset(&d, 0, sizeof d);
    memset(out, 0, sizeof *out);
    out->raw.p = raw, out->raw.n = len;
    d.m = out, d.base = raw, d.len = len;
    pb_callback_t cb = {{.decode = lp2p__ps_dec_msg_field}, &d};
    pm.from = pm.data = pm.seqno = pm.topic = pm.signature = pm.key = cb;
    pb_istream_t st = pb_istream_from_buffer(raw, len);
    return pb_decode(&st, lp2p_pb_PubsubMessage_fields, &pm) ? LP2P_OK : LP2P_ERR_PROTOCOL;
}

static bool lp2p__ps_dec_publish(pb_istream_t *st, const pb_field_t *f, void **arg) {
    lp2p__ps_dec *d = (lp2p__ps_dec *)*arg;
    lp2p__ps_rpc *r = d->r;
    lp2p__ps_rpc_msg tmp;
    lp2p_pb_PubsubMessage pm;
    (void)f;
    memset(&tmp, 0, sizeof tmp);
    tmp.raw.p = (const uint8_t *)st->state, tmp.raw.n = st->bytes_left;
    if (tmp.raw.p < d->base || tmp.raw.n > (size_t)(d->base + d->len - tmp.raw.p)) return false; /* see _dec_slice */
    d->m = &tmp;
    pb_callback_t cb = {{.decode = lp2p__ps_dec_msg_field}, d};
    pm.from = pm.data = pm.seqno = pm.topic = pm.signature = pm.key = cb;
    if (!pb_decode(st, lp2p_pb_PubsubMessage_fields, &pm)) return false;
    if (!LP2P__PS_GROW(r, r->msgs, r->n_msgs, r->cap_msgs, LP2P__PS_MAX_MSGS_PER_RPC)) {
        r->truncated++;
        return true;
    }
    r->msgs[r->n_msgs++] = tmp;
    return true;
}

static bool lp2p__ps_dec_id(pb_istream_t *st, const pb_field_t *f, void **arg) {
    lp2p__ps_dec *d = (lp2p__ps_dec *)*arg;
    lp2p__ps_rpc *r = d->r;
    lp2p__ps_slice s;
    (void)f;
    if (!lp2p__ps_dec_slice(d, st, &s)) return false;
    if (s.n == 0 || s.n > LP2P_PUBSUB_MSG_ID_MAX ||
        !LP2P__PS_GROW(r, r->ids, r->n_ids, r->cap_ids, LP2P__PS_MAX_IDS_PER_RPC)) {
        r->truncated++;
        return true;
    }
    r->ids[r->n_ids++] = s;
    return true;
}

static bool lp2p__ps_dec_px_field(pb_istream_t *st, const pb_field_t *f, void **arg) {
    lp2p__ps_dec *d = (lp2p__ps_dec *)*arg;
    return lp2p__ps_dec_slice(d, st, f->tag == 1 ? &d->px.peer_id : &d->px.record);
}

static bool lp2p__ps_dec_px(pb_istream_t *st, const pb_field_t *f, void **arg) {
    lp2p__ps_dec *d = (lp2p__ps_dec *)*arg;
    lp2p__ps_rpc *r = d->r;
    lp2p_pb_PubsubPeerInfo pi;
    (void)f;
    memset(&d->px, 0, sizeof d->px);
    pb_callback_t cb = {{.decode = lp2p__ps_dec_px_field}, d};
    pi.peerID = pi.signedPeerRecord = cb;
    if (!pb_decode(st, lp2p_pb_PubsubPeerInfo_fields, &pi)) return false;
    if (!LP2P__PS_GROW(r, r->px, r->n_px, r->cap_px, LP2P__PS_MAX_PX_PER_RPC)) {
        r->truncated++;
        return true;
    }
    r->px[r->n_px++] = d->px;
    return true;
}

/* One control entry of any kind: decode it, then record it (with its ID / PX ranges). */
static bool lp2p__ps_dec_ctl(pb_istream_t *st, const pb_field_t *f, void **arg) {
    lp2p__ps_dec *d = (lp2p__ps_dec *)*arg;
    lp2p__ps_rpc *r = d->r;
    lp2p__ps_rpc_ctl c;
    bool ok = false;
    memset(&c, 0, sizeof c);
    c.kind = (int)f->tag; /* ControlMessage field numbers are the LP2P__PS_CTL_* kinds */
    d->topic.p = NULL, d->topic.n = 0;
    c.first_id = r->n_ids, c.first_px = r->n_px;
    pb_callback_t topic = {{.decode = lp2p__ps_dec_topic}, d}, ids = {{.decode = lp2p__ps_dec_id}, d};
    switch (c.kind) {
    case LP2P__PS_CTL_IHAVE: {
        lp2p_pb_PubsubIHave m;
        m.topicID = topic, m.messageIDs = ids;
        ok = pb_decode(st, lp2p_pb_PubsubIHave_fields, &m);
        break;
    }
    case LP2P__PS_CTL_IWANT: {
        lp2p_pb_PubsubIWant m;
        m.messageIDs = ids;
        ok = pb_decode(st, lp2p_pb_PubsubIWant_fields, &m);
        break;
    }
    case LP2P__PS_CTL_GRAFT: {
        lp2p_pb_PubsubGraft m;
        m.topicID = topic;
        ok = pb_decode(st, lp2p_pb_PubsubGraft_fields, &m);
        break;
    }
    case LP2P__PS_CTL_PRUNE: {
        lp2p_pb_PubsubPrune m;
        memset(&m, 0, sizeof m);
        m.topicID = topic;
        m.peers.funcs.decode = lp2p__ps_dec_px, m.peers.arg = d;
        ok = pb_decode(st, lp2p_pb_PubsubPrune_fields, &m);
        c.backoff = m.backoff, c.has_backoff = m.has_backoff;
        break;
    }
    case LP2P__PS_CTL_IDONTWANT: {
        lp2p_pb_PubsubIDontWant m;
        m.messageIDs = ids;
        ok = pb_decode(st, lp2p_pb_PubsubIDontWant_fields, &m);
        break;
    }
    default: return pb_read(st, NULL, st->bytes_left);
    }
    if (!ok) return false;
    c.topic = d->topic;
    c.n_ids = r->n_ids - c.first_id, c.n_px = r->n_px - c.first_px;
    if (!LP2P__PS_GROW(r, r->ctl, r->n_ctl, r->cap_ctl, LP2P__PS_MAX_CTL_PER_RPC)) {
        r->truncated++;
        return true;
    }
    r->ctl[r->n_ctl++] = c;
    return true;
}

LP2P__PRIV int lp2p__ps_rpc_decode(lp2p__ps_rpc *r, lp2p__ctx *ctx, const uint8_t *buf, size_t len) {
    lp2p__ps_dec d;
    lp2p_pb_PubsubRPC m;
    memset(r, 0, sizeof *r);
    memset(&d, 0, sizeof d);
    memset(&m, 0, sizeof m);
    r->ctx = ctx, d.r = r, d.base = buf, d.len = len;
    m.subscriptions.funcs.decode = lp2p__ps_dec_sub, m.subscriptions.arg = &d;
    m.publish.funcs.decode = lp2p__ps_dec_publish, m.publish.arg = &d;
    pb_callback_t ctl = {{.decode = lp2p__ps_dec_ctl}, &d};
    m.control.ihave = m.control.iwant = m.control.graft = m.control.prune = m.control.idontwant = ctl;
    pb_istream_t st = pb_istream_from_buffer(buf, len);
    if (!pb_decode(&st, lp2p_pb_PubsubRPC_fields, &m)) {
        r->error = PB_GET_ERROR(&st);
        return LP2P_ERR_PROTOCOL;
    }
    return LP2P_OK;
}

LP2P__PRIV void lp2p__ps_rpc_clear(lp2p__ps_rpc *r) {
    lp2p__free(r->ctx, r->subs, sizeof *r->subs * (size_t)r->cap_subs);
    lp2p__free(r->ctx, r->msgs, sizeof *r->msgs * (size_t)r->cap_msgs);
    lp2p__free(r->ctx, r->ctl, sizeof *r->ctl * (size_t)r->cap_ctl);
    lp2p__free(r->ctx, r->ids, sizeof *r->ids * (size_t)r->cap_ids);
    lp2p__free(r->ctx, r->px, sizeof *r->px * (size_t)r->cap_px);
    lp2p__ctx *ctx = r->ctx;
    memset(r, 0, sizeof *r);
    r->ctx = ctx;
}

/* ---- digest sets ---------------------------------------------------------------------------------- */
static size_t lp2p__ps_slot(const lp2p__ps_idset *s, const uint8_t d[LP2P__PS_DIGEST]) {
    uint64_t h;
    memcpy(&h, d, sizeof h); /* the digest is a salted hash already */
    return (size_t)h & (s->cap - 1);
}

LP2P__PRIV lp2p__ps_idset_entry *lp2p__ps_idset_find(lp2p__ps_idset *s, const uint8_t d[LP2P__PS_DIGEST]) {
    if (!s->cap) return NULL;
    for (size_t i = lp2p__ps_slot(s, d), n = 0; n < s->cap; i = (i + 1) & (s->cap - 1), n++) {
        lp2p__ps_idset_entry *e = &s->slots[i];
        if (e->state == 0) return NULL;
        if (e->state == 1 && memcmp(e->d, d, LP2P__PS_DIGEST) == 0) return e;
    }
    return NULL;
}

static void lp2p__ps_idset_del_slot(lp2p__ps_idset *s, size_t i) {
    if (s->slots[i].state == 1) s->slots[i].state = 2, s->live--;
}

/* Rebuild into a table of new_cap slots (drops tombstones; keeps the FIFO order). */
static int lp2p__ps_idset_rehash(lp2p__ctx *ctx, lp2p__ps_idset *s, size_t new_cap) {
    lp2p__ps_idset_entry *slots = (lp2p__ps_idset_entry *)lp2p__zalloc(ctx, sizeof *slots * new_cap);
    uint32_t *fifo = (uint32_t *)lp2p__alloc(ctx, sizeof *fifo * new_cap);
    if (!slots || !fifo) {
        lp2p__free(ctx, slots, sizeof *slots * new_cap);
        lp2p__free(ctx, fifo, sizeof *fifo * new_cap);
        return LP2P_ERR_NOMEM;
    }
    size_t n = 0;
    for (size_t k = 0; k < s->fifo_len; k++) {
        uint32_t old = s->fifo[(s->fifo_head + k) % s->fifo_cap];
        if (s->slots[old].state != 1) continue;
        size_t i = (size_t)lp2p__ps_slot(&(lp2p__ps_idset){.cap = new_cap}, s->slots[old].d);
        while (slots[i].state) i = (i + 1) & (new_cap - 1);
        slots[i] = s->slots[old];
        fifo[n++] = (uint32_t)i;
    }
    lp2p__free(ctx, s->slots, sizeof *s->slots * s->cap);
    lp2p__free(ctx, s->fifo, sizeof *s->fifo * s->fifo_cap);
    s->slots = slots, s->cap = new_cap, s->used = s->live = n;
    s->fifo = fifo, s->fifo_cap = new_cap, s->fifo_head = 0, s->fifo_len = n;
    return LP2P_OK;
}

static void lp2p__ps_idset_pop(lp2p__ps_idset *s) {
    uint32_t i = s->fifo[s->fifo_head];
    s->fifo_head = (s->fifo_head + 1) % s->fifo_cap;
    s->fifo_len--;
    lp2p__ps_idset_del_slot(s, i);
}

LP2P__PRIV lp2p__ps_idset_entry *lp2p__ps_idset_add(lp2p__ctx *ctx, lp2p__ps_idset *s, const uint8_t d[LP2P__PS_DIGEST],
                                                    int64_t expires, bool *fresh) {
    lp2p__ps_idset_entry *e = lp2p__ps_idset_find(s, d);
    if (fresh) *fresh = e == NULL;
    if (e) return e;
    if (s->max && s->live >= s->max) lp2p__ps_idset_pop(s); /* full: forget the oldest */
    if ((s->used + 1) * 4 > s->cap * 3 || s->fifo_len + 1 > s->fifo_cap) {
        size_t want = s->cap ? s->cap : 64;
        while ((s->live + 1) * 2 > want) want *= 2; /* at most half full after a rebuild */
        if (lp2p__ps_idset_rehash(ctx, s, want)) return NULL;
    }
    /* tombstones are not reused (the FIFO may still name them); a rebuild clears them */
    size_t i = lp2p__ps_slot(s, d);
    while (s->slots[i].state != 0) i = (i + 1) & (s->cap - 1);
    s->used++;
    e = &s->slots[i];
    memset(e, 0, sizeof *e);
    memcpy(e->d, d, LP2P__PS_DIGEST);
    e->state = 1, e->expires = expires;
    s->live++;
    s->fifo[(s->fifo_head + s->fifo_len) % s->fifo_cap] = (uint32_t)i;
    s->fifo_len++;
    return e;
}

LP2P__PRIV void lp2p__ps_idset_del(lp2p__ps_idset *s, const uint8_t d[LP2P__PS_DIGEST]) {
    lp2p__ps_idset_entry *e = lp2p__ps_idset_find(s, d);
    if (e) e->state = 2, s->live--;
}

LP2P__PRIV void lp2p__ps_idset_expire(lp2p__ps_idset *s, int64_t now) {
    while (s->fifo_len) {
        lp2p__ps_idset_entry *e = &s->slots[s->fifo[s->fifo_head]];
        if (e->state == 1 && e->expires >= now) break;
        lp2p__ps_idset_pop(s);
    }
}

LP2P__PRIV void lp2p__ps_idset_free(lp2p__ctx *ctx, lp2p__ps_idset *s) {
    lp2p__free(ctx, s->slots, sizeof *s->slots * s->cap);
    lp2p__free(ctx, s->fifo, sizeof *s->fifo * s->fifo_cap);
    size_t max = s->max;
    memset(s, 0, sizeof *s);
    s->max = max;
}
/*==================== end src/pubsub_rpc.c ====================*/
/*==================== begin src/pubsub.c ====================*/
/* pubsub.c - L7: the pubsub core shared by gossipsub and floodsub: peers and their two
 * unidirectional streams, messages (IDs, StrictSign / StrictNoSign), the validation pipeline,
 * subscriptions, and the public lp2p_pubsub_* API. The RPC codec is in pubsub_rpc.c.
 *
 * Spec: libp2p/specs pubsub/README.md (RPC, message signing, IDs), pubsub/gossipsub/ (v1.0, v1.1, v1.2).
 * Per peer we open one outbound stream (proposing /meshsub/1.2.0, 1.1.0, 1.0.0, /floodsub/1.0.0
 * in that order; what it negotiates decides what we send the peer) and read the peer's
 * inbound stream; both carry uvarint-delimited RPCs. The first RPC on our stream announces our
 * subscriptions. Outbound RPCs wait in a per-peer queue drained by a writer task, so nothing
 * that routes a message ever blocks; consecutive queued RPCs are merged (concatenated protobufs
 * merge) up to 60 KiB, but never two with a control part (rust and js keep only the last
 * occurrence of a non-repeated field).
 * Messages are checked in go-libp2p-pubsub's order: signing policy, seen cache, IDONTWANT to
 * the mesh (v1.2), signature, topic validator; then delivered and forwarded.
 * Depends on: pubsub.h (host.h), pubsub_rpc.c, gossipsub.c, pubsub_score.c. */
// (amalgamated) #include "pubsub.h"

#include <pb_decode.h>
#include <stdio.h>
#include <time.h>

#define LP2P__PS_OPEN_TIMEOUT_MS 10000
#define LP2P__PS_WRITE_TIMEOUT_MS 60000 /* a peer that does not read for this long loses its stream */
#define LP2P__PS_WRITE_BATCH (256 << 10)
#define LP2P__PS_SIGN_PREFIX "libp2p-pubsub:"

LP2P__PRIV void lp2p__ps_digest(const lp2p_pubsub *ps, const uint8_t *id, size_t len, uint8_t d[LP2P__PS_DIGEST]) {
    lp2p__sha256 c;
    uint8_t out[32];
    lp2p__sha256_init(&c);
    lp2p__sha256_update(&c, ps->salt, sizeof ps->salt);
    lp2p__sha256_update(&c, id, len);
    lp2p__sha256_final(&c, out);
    memcpy(d, out, LP2P__PS_DIGEST);
}

/* ---- topics --------------------------------------------------------------------------------------- */
LP2P__PRIV bool lp2p__ps_topic_valid(const uint8_t *p, size_t n) {
    return p && n > 0 && n <= LP2P_PUBSUB_TOPIC_MAX && !memchr(p, 0, n);
}

static uint32_t lp2p__ps_hash(const uint8_t *p, size_t n) {
    uint32_t h = 2166136261u; /* FNV-1a: topic lookup only, the table is a list */
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
    return h;
}

LP2P__PRIV lp2p__ps_topic *lp2p__ps_topic_get(lp2p_pubsub *ps, const uint8_t *name, size_t len, bool create) {
    if (!lp2p__ps_topic_valid(name, len)) return NULL;
    uint32_t h = lp2p__ps_hash(name, len);
    for (lp2p__ps_topic *t = ps->topics; t; t = t->next)
        if (t->hash == h && t->name_len == len && memcmp(t->name, name, len) == 0) return t;
    if (!create) return NULL;
    if (ps->n_topics >= ps->cfg.max_topics) {
        LP2P__WARN(ps->ctx, LP2P_ERR_LIMIT, "pubsub: max_topics=%d reached: topic ignored", ps->cfg.max_topics);
        return NULL;
    }
    lp2p__ps_topic *t = (lp2p__ps_topic *)lp2p__zalloc(ps->ctx, sizeof *t);
    if (!t || !(t->name = (char *)lp2p__alloc(ps->ctx, len + 1))) {
        lp2p__free(ps->ctx, t, sizeof *t);
        return NULL;
    }
    memcpy(t->name, name, len), t->name[len] = 0;
    t->name_len = len, t->hash = h;
    t->next = ps->topics, ps->topics = t;
    ps->n_topics++;
    return t;
}

static void lp2p__ps_topic_destroy(lp2p_pubsub *ps, lp2p__ps_topic *t) {
    lp2p__free(ps->ctx, t->mesh, sizeof *t->mesh * (size_t)t->cap_mesh);
    lp2p__free(ps->ctx, t->fanout, sizeof *t->fanout * (size_t)t->cap_fanout);
    lp2p__free(ps->ctx, t->backoff, sizeof *t->backoff * (size_t)t->cap_backoff);
    lp2p__free(ps->ctx, t->score, sizeof *t->score);
    lp2p__free(ps->ctx, t->name, t->name_len + 1);
    lp2p__free(ps->ctx, t, sizeof *t);
}

/* A topic nobody refers to any more goes (topics with score params or a validator stay: the
 * user configured them; score records point at them). */
LP2P__PRIV void lp2p__ps_topic_maybe_free(lp2p_pubsub *ps, lp2p__ps_topic *t) {
    if (t->subs || t->joined || t->n_peers || t->n_mesh || t->n_fanout || t->n_backoff || t->validator || t->score)
        return;
    for (lp2p__ps_topic **pp = &ps->topics; *pp; pp = &(*pp)->next)
        if (*pp == t) {
            *pp = t->next;
            ps->n_topics--;
            lp2p__score_topic_freed(ps, t);
            lp2p__ps_topic_destroy(ps, t);
            return;
        }
}

LP2P__PRIV bool lp2p__ps_peer_in_topic(const lp2p__ps_peer *p, const lp2p__ps_topic *t) {
    for (int i = 0; i < p->n_topics; i++)
        if (p->topics[i] == t) return true;
    return false;
}

/* ---- peers ------------------------------------------------------------------------------------------ */
LP2P__PRIV lp2p__ps_peer *lp2p__ps_peer_find(lp2p_pubsub *ps, const lp2p_peer_id *id) {
    for (lp2p__ps_peer *p = ps->peers; p; p = p->next)
        if (lp2p_peer_id_eq(&p->id, id)) return p;
    return NULL;
}

LP2P__PRIV bool lp2p__ps_peer_active(const lp2p__ps_peer *p) { return !p->gone && p->out && p->proto; }

static void lp2p__ps_frames_free(lp2p_pubsub *ps, lp2p__ps_frame *f) {
    while (f) {
        lp2p__ps_frame *next = f->next;
        lp2p__buf_free(ps->ctx, &f->b);
        lp2p__free(ps->ctx, f, sizeof *f);
        f = next;
    }
}

static void lp2p__ps_peer_unref(lp2p__ps_peer *p) {
    if (--p->refs > 0) return;
    lp2p_pubsub *ps = p->ps;
    lp2p__ps_frames_free(ps, p->q_head);
    lp2p__free(ps->ctx, p->topics, sizeof *p->topics * (size_t)p->cap_topics);
    lp2p__ps_idset_free(ps->ctx, &p->dontwant);
    lp2p__free(ps->ctx, p, sizeof *p);
}

static void lp2p__ps_task_done(lp2p_pubsub *ps) {
    ps->n_tasks--;
    lp2p__waitq_wake_all(ps->h->sched, &ps->tasks_done);
}

static void lp2p__ps_writer_task(void *arg);

/* Start (or restart) our outbound stream to p on connection c. */
static void lp2p__ps_start_writer(lp2p_pubsub *ps, lp2p__ps_peer *p, lp2p__conn *c) {
    if (p->gone || p->writer.id || ps->closing) return;
    p->conn = c, p->outbound = c->outbound;
    p->refs++, ps->n_tasks++;
    p->writer = lp2p__spawn(ps->h->sched, lp2p__ps_writer_task, p);
    if (!p->writer.id) {
        p->refs--;
        lp2p__ps_task_done(ps);
    }
}

static lp2p__ps_peer *lp2p__ps_peer_get(lp2p_pubsub *ps, const lp2p_peer_id *id) {
    lp2p__ps_peer *p = lp2p__ps_peer_find(ps, id);
    if (p || ps->closing) return p;
    p = (lp2p__ps_peer *)lp2p__zalloc(ps->ctx, sizeof *p);
    if (!p) return NULL;
    p->ps = ps, p->id = *id, p->refs = 1;
    p->dontwant.max = (size_t)ps->cfg.max_idontwant_messages * (size_t)ps->cfg.max_idontwant_length;
    for (int i = 0; i < ps->n_direct; i++) {
        lp2p_peer_id did;
        if (lp2p__ma_split_p2p(&ps->direct[i], NULL, &did) && lp2p_peer_id_eq(&did, id)) p->direct = true;
    }
    p->next = ps->peers, ps->peers = p;
    ps->n_peers++;
    lp2p__score_add_peer(ps, p);
    return p;
}

static void lp2p__ps_set_ip(lp2p__ps_peer *p, const lp2p__conn *c) {
    size_t off = 0;
    uint32_t code;
    const uint8_t *v;
    size_t n;
    p->ip[0] = 0;
    if (lp2p__ma_next(&c->remote, &off, &code, &v, &n) && (code == LP2P__MA_IP4 || code == LP2P__MA_IP6))
        lp2p__hex_enc(v, n, p->ip, sizeof p->ip);
}

static void lp2p__ps_peer_leave_topic(lp2p_pubsub *ps, lp2p__ps_peer *p, int i) {
    lp2p__ps_topic *t = p->topics[i];
    p->topics[i] = p->topics[--p->n_topics];
    t->n_peers--;
    if (!ps->cfg.floodsub) lp2p__gs_peer_unsubscribed(ps, p, t);
    lp2p__ps_topic_maybe_free(ps, t);
}

/* The peer left: out of the table, meshes and topics; its tasks are told to end. */
static void lp2p__ps_peer_remove(lp2p_pubsub *ps, lp2p__ps_peer *p) {
    if (p->gone) return;
    if (!ps->cfg.floodsub) lp2p__gs_peer_removed(ps, p);
    p->gone = true;
    while (p->n_topics) lp2p__ps_peer_leave_topic(ps, p, p->n_topics - 1);
    lp2p__score_remove_peer(ps, p);
    for (lp2p__ps_peer **pp = &ps->peers; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            ps->n_peers--;
            break;
        }
    if (!ps->sched_gone) { /* (the host's scheduler is gone when the host frees us: no task is left) */
        if (p->writer.id) lp2p__task_cancel(ps->h->sched, p->writer);
        if (p->reader.id) lp2p__task_cancel(ps->h->sched, p->reader);
        lp2p__waitq_wake_all(ps->h->sched, &p->wake);
    }
    lp2p__ps_peer_unref(p);
}

/* ---- sending ------------------------------------------------------------------------------------------ */
LP2P__PRIV int lp2p__ps_send(lp2p__ps_peer *p, const uint8_t *rpc, size_t len, bool has_control, bool urgent) {
    lp2p_pubsub *ps = p->ps;
    if (!lp2p__ps_peer_active(p)) return LP2P_ERR_CLOSED;
    if (p->q_bytes + len > (size_t)ps->cfg.peer_queue_bytes) {
        ps->stats.rpcs_dropped++;
        if ((ps->stats.rpcs_dropped & (ps->stats.rpcs_dropped - 1)) == 0) { /* log 1st, 2nd, 4th, ... */
            char id[LP2P_PEER_ID_STRLEN];
            lp2p_peer_id_str(&p->id, id, sizeof id);
            LP2P__WARN(ps->ctx, LP2P_ERR_LIMIT, "pubsub: peer_queue_bytes=%d reached for %s: RPC dropped (%llu so far)",
                       ps->cfg.peer_queue_bytes, id, (unsigned long long)ps->stats.rpcs_dropped);
        }
        return LP2P_ERR_LIMIT;
    }
    lp2p__ps_frame *f = urgent ? NULL : p->q_tail;
    if (f && (f->b.len + len > LP2P__PS_MERGE_MAX || (f->has_control && has_control))) f = NULL;
    if (!f) {
        f = (lp2p__ps_frame *)lp2p__zalloc(ps->ctx, sizeof *f);
        if (!f) return LP2P_ERR_NOMEM;
        if (urgent) {
            f->next = p->q_head, p->q_head = f;
            if (!p->q_tail) p->q_tail = f;
        } else {
            if (p->q_tail) p->q_tail->next = f;
            else p->q_head = f;
            p->q_tail = f;
        }
    }
    if (lp2p__buf_append(ps->ctx, &f->b, rpc, len)) return LP2P_ERR_NOMEM; /* an empty frame is harmless */
    f->has_control |= has_control;
    p->q_bytes += len;
    lp2p__waitq_wake_all(ps->h->sched, &p->wake);
    return LP2P_OK;
}

LP2P__PRIV int lp2p__ps_send_msg(lp2p__ps_peer *p, const lp2p__ps_msg *m) {
    uint8_t hdr[1 + LP2P__UVARINT_MAX];
    lp2p__buf b = {0, 0, 0};
    lp2p_pubsub *ps = p->ps;
    hdr[0] = 0x12; /* RPC.publish, length-delimited */
    size_t n = 1 + lp2p__uvarint_put(hdr + 1, m->raw_len);
    int rc = lp2p__buf_reserve(ps->ctx, &b, n + m->raw_len);
    if (!rc) {
        lp2p__buf_append(ps->ctx, &b, hdr, n);
        lp2p__buf_append(ps->ctx, &b, m->raw, m->raw_len);
        rc = lp2p__ps_send(p, b.p, b.len, false, false);
    }
    lp2p__buf_free(ps->ctx, &b);
    if (!rc) ps->stats.forwarded++;
    return rc;
}

/* RPC{subscriptions: [(subscribe, topic) ...]} for every topic we joined, or one topic. */
static int lp2p__ps_encode_subs(lp2p_pubsub *ps, lp2p__buf *out, lp2p__ps_topic *only, bool subscribe) {
    lp2p__buf so = {0, 0, 0};
    int rc = LP2P_OK;
    for (lp2p__ps_topic *t = only ? only : ps->topics; t && !rc; t = only ? NULL : t->next) {
        if (!only && !t->joined) continue;
        so.len = 0;
        rc = lp2p__pb_put_varint(ps->ctx, &so, 1, subscribe);
        if (!rc) rc = lp2p__pb_put_bytes(ps->ctx, &so, 2, t->name, t->name_len);
        if (!rc) rc = lp2p__pb_put_bytes(ps->ctx, out, 1, so.p, so.len);
    }
    lp2p__buf_free(ps->ctx, &so);
    return rc;
}

static void lp2p__ps_announce(lp2p_pubsub *ps, lp2p__ps_topic *t, bool subscribe) {
    lp2p__buf b = {0, 0, 0};
    if (lp2p__ps_encode_subs(ps, &b, t, subscribe) == LP2P_OK)
        for (lp2p__ps_peer *p = ps->peers; p; p = p->next) lp2p__ps_send(p, b.p, b.len, false, false);
    lp2p__buf_free(ps->ctx, &b);
}

/* Our stream is open: greet the peer with our subscriptions, then it is a pubsub peer. */
static void lp2p__ps_peer_activated(lp2p_pubsub *ps, lp2p__ps_peer *p) {
    lp2p__buf b = {0, 0, 0};
    char id[LP2P_PEER_ID_STRLEN];
    lp2p_peer_id_str(&p->id, id, sizeof id);
    LP2P__DEBUG(ps->ctx, "pubsub: %s speaks %s", id, lp2p_stream_protocol(p->out));
    if (lp2p__ps_encode_subs(ps, &b, NULL, true) == LP2P_OK && b.len) lp2p__ps_send(p, b.p, b.len, false, false);
    lp2p__buf_free(ps->ctx, &b);
    if (!ps->cfg.floodsub) lp2p__gs_peer_added(ps, p);
}

static int lp2p__ps_proto_of(const char *s) {
    if (!strcmp(s, LP2P__PS_MESHSUB12)) return LP2P__PS_PROTO_MESH12;
    if (!strcmp(s, LP2P__PS_MESHSUB11)) return LP2P__PS_PROTO_MESH11;
    if (!strcmp(s, LP2P__PS_MESHSUB10)) return LP2P__PS_PROTO_MESH10;
    return LP2P__PS_PROTO_FLOOD;
}

/* Take frames off p's queue into one write buffer: uvarint(len) || RPC, ... */
static int lp2p__ps_take_batch(lp2p_pubsub *ps, lp2p__ps_peer *p, lp2p__buf *w) {
    uint8_t hdr[LP2P__UVARINT_MAX];
    w->len = 0;
    while (p->q_head && (w->len == 0 || w->len + p->q_head->b.len <= LP2P__PS_WRITE_BATCH)) {
        lp2p__ps_frame *f = p->q_head;
        size_t n = lp2p__uvarint_put(hdr, f->b.len);
        if (f->b.len && (lp2p__buf_append(ps->ctx, w, hdr, n) || lp2p__buf_append(ps->ctx, w, f->b.p, f->b.len)))
            return LP2P_ERR_NOMEM;
        if (f->b.len) ps->stats.rpcs_out++;
        p->q_head = f->next;
        if (!p->q_head) p->q_tail = NULL;
        p->q_bytes -= f->b.len;
        f->next = NULL;
        lp2p__ps_frames_free(ps, f);
    }
    return LP2P_OK;
}

/* Drain the queue into the stream until it breaks, the peer goes or its connection closes. */
static void lp2p__ps_writer_loop(lp2p_pubsub *ps, lp2p__ps_peer *p) {
    lp2p__buf w = {0, 0, 0};
    for (;;) {
        while (!p->q_head && !p->gone && !ps->closing && !p->conn->closed)
            if (lp2p__waitq_wait(ps->h->sched, &p->wake, LP2P_FOREVER) == LP2P_ERR_CANCELED) goto out;
        if (p->gone || ps->closing || p->conn->closed || lp2p__task_canceled()) break;
        if (lp2p__ps_take_batch(ps, p, &w) || !w.len) continue;
        if (lp2p_stream_write(p->out, w.p, w.len, lp2p_deadline_in(LP2P__PS_WRITE_TIMEOUT_MS)) != LP2P_OK) break;
        if (w.cap > (1 << 20)) lp2p__buf_free(ps->ctx, &w); /* do not keep a huge buffer around */
    }
out:
    lp2p__buf_free(ps->ctx, &w);
}

/* Open our stream on p->conn; returns the index of the protocol or an error. */
static int lp2p__ps_open(lp2p_pubsub *ps, lp2p__ps_peer *p, lp2p_stream **s) {
    lp2p__conn *c = p->conn;
    if (!c || c->closed) c = lp2p__swarm_find_conn(ps->h, &p->id);
    if (!c) return LP2P_ERR_CLOSED;
    p->conn = c, p->outbound = c->outbound;
    c->refs++;
    int rc = lp2p__host_open_on_any(c, ps->protos, ps->n_protos, lp2p_deadline_in(LP2P__PS_OPEN_TIMEOUT_MS), s);
    lp2p__conn_unref(c); /* our stream keeps the connection alive from here */
    if (rc >= 0 && (p->gone || ps->closing)) lp2p_stream_reset(*s), rc = LP2P_ERR_CANCELED;
    return rc;
}

/* Our stream to p: open it, greet, drain the queue. If it breaks while the peer stays connected
 * (a second connection replaced the first, the peer reset it), open it again, at most 3 times in
 * a row; a peer that does not speak pubsub is left alone (its own stream to us restarts us). */
static void lp2p__ps_writer_task(void *arg) {
    lp2p__ps_peer *p = (lp2p__ps_peer *)arg;
    lp2p_pubsub *ps = p->ps;
    char id[LP2P_PEER_ID_STRLEN];
    lp2p_peer_id_str(&p->id, id, sizeof id);
    for (int failures = 0; failures < 3 && !p->gone && !ps->closing;) {
        lp2p_stream *s = NULL;
        if (failures && lp2p__sleep_until(ps->h->sched, lp2p_deadline_in(1000)) != LP2P_OK) break;
        p->opening = true;
        int rc = lp2p__ps_open(ps, p, &s);
        p->opening = false;
        if (rc < 0) {
            if (rc != LP2P_ERR_CANCELED) LP2P__DEBUG(ps->ctx, "pubsub: no pubsub stream to %s: %s", id, lp2p_strerror(rc));
            if (rc == LP2P_ERR_PROTO_NA || rc == LP2P_ERR_CANCELED || rc == LP2P_ERR_CLOSED) break;
            failures++;
            continue;
        }
        p->out = s, p->proto = lp2p__ps_proto_of(ps->protos[rc]);
        lp2p__ps_set_ip(p, p->conn);
        lp2p__ps_peer_activated(ps, p);
        int64_t t0 = lp2p_now();
        lp2p__ps_writer_loop(ps, p);
        if (!p->gone && !ps->closing) {
            LP2P__INFO(ps->ctx, "pubsub: stream to %s ended", id);
            if (!ps->cfg.floodsub) lp2p__gs_peer_removed(ps, p);
        }
        p->proto = LP2P__PS_PROTO_NONE, p->out = NULL;
        lp2p__ps_frames_free(ps, p->q_head);
        p->q_head = p->q_tail = NULL, p->q_bytes = 0;
        lp2p_stream_reset(s); /* a pubsub stream ends only with the peer or with us */
        failures = lp2p_now() - t0 > 10000 ? 1 : failures + 1;
        if (lp2p__task_canceled()) break;
    }
    p->writer.id = 0;
    lp2p__ps_task_done(ps);
    lp2p__ps_peer_unref(p);
}

/* ---- connection notifications ------------------------------------------------------------------------ */
static void lp2p__ps_on_connected(void *user, lp2p__conn *c) {
    lp2p_pubsub *ps = (lp2p_pubsub *)user;
    lp2p__ps_peer *p = lp2p__ps_peer_get(ps, &c->peer);
    if (p) lp2p__ps_start_writer(ps, p, c);
}

static void lp2p__ps_on_disconnected(void *user, lp2p__conn *c) {
    lp2p_pubsub *ps = (lp2p_pubsub *)user;
    lp2p__ps_peer *p = lp2p__ps_peer_find(ps, &c->peer);
    if (!p) return;
    if (!lp2p__swarm_find_conn(ps->h, &c->peer)) lp2p__ps_peer_remove(ps, p);
    else if (p->conn == c) lp2p__waitq_wake_all(ps->h->sched, &p->wake); /* the writer moves to another one */
}

/* ---- messages: IDs ------------------------------------------------------------------------------------ */
LP2P_API ptrdiff_t lp2p_pubsub_msg_id_default(const lp2p_pubsub_message *m, uint8_t *out, size_t cap, void *user) {
    (void)user;
    size_t n = m->from.len + (m->has_seqno ? 8 : 0);
    if (n == 0) return LP2P_ERR_INVALID; /* nothing identifies an unsigned message: use a hash */
    if (n > cap) return LP2P_ERR_MSGSIZE;
    memcpy(out, m->from.bytes, m->from.len);
    if (m->has_seqno) lp2p__put_be64(out + m->from.len, m->seqno);
    return (ptrdiff_t)n;
}

LP2P_API ptrdiff_t lp2p_pubsub_msg_id_rust(const lp2p_pubsub_message *m, uint8_t *out, size_t cap, void *user) {
    char text[LP2P_PEER_ID_STRLEN + 24];
    static const uint8_t none[3] = {0, 1, 0}; /* rust uses PeerId::from_bytes(&[0, 1, 0]) without a source */
    (void)user;
    lp2p_peer_id from = m->from;
    if (!from.len) from.len = 3, memcpy(from.bytes, none, 3);
    if (lp2p__base58_enc(from.bytes, from.len, text, sizeof text) < 0) return LP2P_ERR_INVALID;
    size_t n = strlen(text);
    n += (size_t)snprintf(text + n, sizeof text - n, "%llu", (unsigned long long)(m->has_seqno ? m->seqno : 0));
    if (n > cap) return LP2P_ERR_MSGSIZE;
    memcpy(out, text, n);
    return (ptrdiff_t)n;
}

LP2P_API ptrdiff_t lp2p_pubsub_msg_id_js(const lp2p_pubsub_message *m, uint8_t *out, size_t cap, void *user) {
    const uint8_t *key;
    size_t klen;
    (void)user;
    if (!m->from.len || !m->has_seqno || lp2p__peer_id_pubkey(&m->from, &key, &klen) != LP2P_OK)
        return LP2P_ERR_UNSUPPORTED; /* js needs the key: only peer IDs that inline it (Ed25519, secp256k1) */
    if (klen + 8 > cap) return LP2P_ERR_MSGSIZE;
    memcpy(out, key, klen);
    lp2p__put_be64(out + klen, m->seqno);
    return (ptrdiff_t)(klen + 8);
}

LP2P_API ptrdiff_t lp2p_pubsub_msg_id_sha256(const lp2p_pubsub_message *m, uint8_t *out, size_t cap, void *user) {
    (void)user;
    if (cap < 32) return LP2P_ERR_MSGSIZE;
    lp2p__sha256_once(m->data, m->data_len, out);
    return 32;
}

static ptrdiff_t lp2p__ps_msg_id(lp2p_pubsub *ps, const lp2p_pubsub_message *v, uint8_t out[LP2P_PUBSUB_MSG_ID_MAX]) {
    ptrdiff_t n = ps->cfg.msg_id_fn(v, out, LP2P_PUBSUB_MSG_ID_MAX, ps->cfg.msg_id_user);
    return n <= 0 || n > LP2P_PUBSUB_MSG_ID_MAX ? (n < 0 ? n : LP2P_ERR_INVALID) : n;
}

/* ---- messages: encoding and signatures ---------------------------------------------------------------- */
/* Message fields 1-4 in field order (what go marshals; the signed part). */
static int lp2p__ps_encode_unsigned(lp2p__ctx *ctx, lp2p__buf *b, const lp2p__ps_rpc_msg *m) {
    int rc = LP2P_OK;
    if (!rc && m->has_from) rc = lp2p__pb_put_bytes(ctx, b, 1, m->from.p, m->from.n);
    if (!rc && m->has_data) rc = lp2p__pb_put_bytes(ctx, b, 2, m->data.p, m->data.n);
    if (!rc && m->has_seqno) rc = lp2p__pb_put_bytes(ctx, b, 3, m->seqno.p, m->seqno.n);
    if (!rc && m->has_topic) rc = lp2p__pb_put_bytes(ctx, b, 4, m->topic.p, m->topic.n);
    return rc;
}

/* StrictSign check of a received message: "libp2p-pubsub:" || Message without signature and key
 * (re-encoded in field order, as go does), verified with key (which must hash to from) or with
 * the key inlined in from. OK, ERR_HANDSHAKE (bad signature), ERR_PROTOCOL / ERR_UNSUPPORTED. */
static int lp2p__ps_verify(lp2p_pubsub *ps, const lp2p__ps_rpc_msg *m, const lp2p_peer_id *from) {
    const uint8_t *key;
    size_t klen;
    if (m->has_key) {
        lp2p_peer_id kid;
        if (lp2p__peer_id_from_pubkey(m->key.p, m->key.n, &kid) || !lp2p_peer_id_eq(&kid, from)) return LP2P_ERR_PROTOCOL;
        key = m->key.p, klen = m->key.n;
    } else if (lp2p__peer_id_pubkey(from, &key, &klen) != LP2P_OK) {
        return LP2P_ERR_PROTOCOL; /* a hashed peer ID needs the key field */
    }
    lp2p__buf b = {0, 0, 0};
    int rc = lp2p__buf_append(ps->ctx, &b, LP2P__PS_SIGN_PREFIX, strlen(LP2P__PS_SIGN_PREFIX));
    if (!rc) rc = lp2p__ps_encode_unsigned(ps->ctx, &b, m);
    if (!rc) rc = lp2p__pubkey_verify(key, klen, b.p, b.len, m->signature.p, m->signature.n);
    lp2p__buf_free(ps->ctx, &b);
    return rc;
}

/* Allocate a message holding a copy of raw (and its ID); fields as slices of the copy. */
static lp2p__ps_msg *lp2p__ps_msg_new(lp2p_pubsub *ps, const lp2p__ps_rpc_msg *rm, const lp2p_pubsub_message *v,
                                      const uint8_t *id, size_t id_len) {
    size_t sz = sizeof(lp2p__ps_msg) + rm->raw.n + id_len + rm->topic.n + 1;
    lp2p__ps_msg *m = (lp2p__ps_msg *)lp2p__zalloc(ps->ctx, sz);
    if (!m) return NULL;
    m->refs = 1, m->alloc = sz, m->ctx = ps->ctx;
    m->raw = (uint8_t *)(m + 1);
    memcpy(m->raw, rm->raw.p, rm->raw.n), m->raw_len = rm->raw.n;
    m->id = m->raw + rm->raw.n;
    memcpy(m->id, id, id_len), m->id_len = id_len;
    m->topic = (char *)m->id + id_len;
    memcpy(m->topic, rm->topic.p, rm->topic.n), m->topic[rm->topic.n] = 0, m->topic_len = rm->topic.n;
    if (rm->has_data) m->data.p = m->raw + (rm->data.p - rm->raw.p), m->data.n = rm->data.n;
    m->from = v->from, m->received_from = v->received_from;
    m->seqno = v->seqno, m->has_seqno = v->has_seqno;
    lp2p__ps_digest(ps, id, id_len, m->digest);
    return m;
}

LP2P__PRIV void lp2p__ps_msg_unref(lp2p__ps_msg *m) {
    if (m && --m->refs == 0) lp2p__free(m->ctx, m, m->alloc);
}

static void lp2p__ps_view(const lp2p__ps_msg *m, lp2p_pubsub_message *out) {
    memset(out, 0, sizeof *out);
    out->topic = m->topic;
    out->data = m->data.p, out->data_len = m->data.n;
    out->from = m->from, out->received_from = m->received_from;
    out->seqno = m->seqno, out->has_seqno = m->has_seqno;
    out->id = m->id, out->id_len = m->id_len;
}

/* ---- delivery to subscriptions --------------------------------------------------------------------------- */
static void lp2p__ps_deliver(lp2p_pubsub *ps, lp2p__ps_topic *t, lp2p__ps_msg *m) {
    for (lp2p_subscription *s = t->subs; s; s = s->next) {
        if (s->q_len == s->q_cap) { /* full: the oldest goes */
            lp2p__ps_msg_unref(s->q[s->q_head]);
            s->q_head = (s->q_head + 1) % s->q_cap;
            s->q_len--;
            s->dropped++, ps->stats.delivery_drops++;
            if ((s->dropped & (s->dropped - 1)) == 0)
                LP2P__WARN(ps->ctx, LP2P_ERR_LIMIT, "pubsub: subscription_queue=%d full on '%s': dropped %llu messages",
                           s->q_cap, t->name, (unsigned long long)s->dropped);
        }
        m->refs++;
        s->q[(s->q_head + s->q_len) % s->q_cap] = m;
        s->q_len++;
        ps->stats.delivered++;
        lp2p__waitq_wake_all(ps->h->sched, &s->wait);
    }
}

/* ---- receiving ------------------------------------------------------------------------------------------------ */
static void lp2p__ps_reject(lp2p_pubsub *ps, lp2p__ps_peer *p, lp2p__ps_topic *t, const char *why) {
    char id[LP2P_PEER_ID_STRLEN];
    ps->stats.rejected++;
    lp2p__score_invalid(ps, p, t);
    lp2p_peer_id_str(&p->id, id, sizeof id);
    LP2P__INFO(ps->ctx, "pubsub: message from %s on '%s' rejected: %s", id, t->name, why);
}

/* The signing policy and the message view (from, seqno) of a received message. */
static const char *lp2p__ps_check_policy(lp2p_pubsub *ps, const lp2p__ps_rpc_msg *rm, lp2p_pubsub_message *v) {
    if (ps->cfg.signing == LP2P_PUBSUB_STRICT_NO_SIGN) {
        if (rm->has_from || rm->has_seqno || rm->has_signature || rm->has_key) return "unexpected signature or author";
        return NULL;
    }
    if (!rm->has_signature || !rm->has_from || !rm->has_seqno) return "missing signature, from or seqno";
    if (rm->seqno.n != 8) return "seqno is not 8 bytes";
    if (lp2p__peer_id_from_bytes(rm->from.p, rm->from.n, &v->from) != LP2P_OK) return "bad from peer ID";
    v->seqno = lp2p__be64(rm->seqno.p), v->has_seqno = true;
    return NULL;
}

static lp2p_pubsub_validation lp2p__ps_validate(lp2p_pubsub *ps, lp2p__ps_topic *t, const lp2p_pubsub_message *v) {
    return t->validator ? t->validator(ps, v, t->validator_user) : LP2P_PUBSUB_ACCEPT;
}

static void lp2p__ps_handle_msg(lp2p_pubsub *ps, lp2p__ps_peer *p, const lp2p__ps_rpc_msg *rm) {
    uint8_t id[LP2P_PUBSUB_MSG_ID_MAX], d[LP2P__PS_DIGEST];
    lp2p_pubsub_message v;
    ps->stats.messages_in++;
    lp2p__ps_topic *t = rm->has_topic ? lp2p__ps_topic_get(ps, rm->topic.p, rm->topic.n, false) : NULL;
    if (!t || !t->joined) { /* not our topic (go: not subscribed, not relaying): not forwarded either */
        ps->stats.ignored++;
        return;
    }
    memset(&v, 0, sizeof v);
    v.topic = t->name, v.received_from = p->id;
    v.data = rm->data.p, v.data_len = rm->data.n;
    const char *why = lp2p__ps_check_policy(ps, rm, &v);
    if (why) {
        lp2p__ps_reject(ps, p, t, why);
        return;
    }
    ptrdiff_t idn = lp2p__ps_msg_id(ps, &v, id);
    if (idn <= 0) {
        lp2p__ps_reject(ps, p, t, "no message ID");
        return;
    }
    lp2p__ps_digest(ps, id, (size_t)idn, d);
    if (!ps->cfg.floodsub) lp2p__gs_promise_kept(ps, d);
    lp2p__ps_idset_entry *e = lp2p__ps_idset_find(&ps->seen, d);
    if (e) {
        ps->stats.duplicates++;
        if (e->status == LP2P__PS_SEEN_VALID) lp2p__score_duplicate(ps, p, t, e->aux);
        else lp2p__score_invalid(ps, p, t);
        return;
    }
    if (v.from.len && lp2p_peer_id_eq(&v.from, &ps->h->identity.id)) { /* ours, unseen: a forgery or a replay */
        lp2p__ps_reject(ps, p, t, "claims to be ours");
        return;
    }
    if (!ps->cfg.floodsub) lp2p__gs_preprocess(ps, p, t, id, (size_t)idn, rm->data.n);
    if (ps->cfg.signing == LP2P_PUBSUB_STRICT_SIGN) {
        int rc = lp2p__ps_verify(ps, rm, &v.from);
        if (rc) {
            lp2p__ps_reject(ps, p, t, rc == LP2P_ERR_HANDSHAKE ? "bad signature" : "bad key");
            return;
        }
    }
    v.id = id, v.id_len = (size_t)idn;
    lp2p_pubsub_validation res = lp2p__ps_validate(ps, t, &v);
    int64_t now = lp2p_now();
    if (res == LP2P_PUBSUB_IGNORE) {
        ps->stats.ignored++;
        return;
    }
    e = lp2p__ps_idset_add(ps->ctx, &ps->seen, d, now + ps->cfg.seen_ttl_ms, NULL);
    if (res == LP2P_PUBSUB_REJECT) {
        if (e) e->status = LP2P__PS_SEEN_INVALID;
        lp2p__ps_reject(ps, p, t, "validator");
        return;
    }
    if (e) e->status = LP2P__PS_SEEN_VALID, e->aux = now;
    lp2p__ps_msg *m = lp2p__ps_msg_new(ps, rm, &v, id, (size_t)idn);
    if (!m) return;
    lp2p__score_first_delivery(ps, p, t);
    if (!ps->cfg.floodsub) lp2p__gs_mcache_put(ps, m);
    lp2p__ps_deliver(ps, t, m);
    lp2p__gs_forward(ps, t, m, p, false);
    lp2p__ps_msg_unref(m);
}

static void lp2p__ps_handle_subs(lp2p_pubsub *ps, lp2p__ps_peer *p, const lp2p__ps_rpc *r) {
    for (int i = 0; i < r->n_subs; i++) {
        const lp2p__ps_rpc_sub *s = &r->subs[i];
        if (s->subscribe) {
            lp2p__ps_topic *t = lp2p__ps_topic_get(ps, s->topic.p, s->topic.n, false);
            if (t && lp2p__ps_peer_in_topic(p, t)) continue;
            if (p->n_topics >= ps->cfg.max_topics_per_peer) {
                LP2P__INFO(ps->ctx, "pubsub: max_topics_per_peer=%d reached: subscription ignored", ps->cfg.max_topics_per_peer);
                continue;
            }
            if (!t && !(t = lp2p__ps_topic_get(ps, s->topic.p, s->topic.n, true))) continue;
            if (p->n_topics == p->cap_topics) {
                int ncap = p->cap_topics ? p->cap_topics * 2 : 4;
                void *np = lp2p__realloc(ps->ctx, p->topics, sizeof *p->topics * (size_t)p->cap_topics,
                                         sizeof *p->topics * (size_t)ncap);
                if (!np) {
                    lp2p__ps_topic_maybe_free(ps, t);
                    continue;
                }
                p->topics = (lp2p__ps_topic **)np, p->cap_topics = ncap;
            }
            p->topics[p->n_topics++] = t;
            t->n_peers++;
        } else {
            lp2p__ps_topic *t = lp2p__ps_topic_get(ps, s->topic.p, s->topic.n, false);
            for (int k = 0; t && k < p->n_topics; k++)
                if (p->topics[k] == t) {
                    lp2p__ps_peer_leave_topic(ps, p, k);
                    break;
                }
        }
    }
}

static void lp2p__ps_handle_rpc(lp2p_pubsub *ps, lp2p__ps_peer *p, const lp2p__ps_rpc *r, bool gossip) {
    ps->stats.rpcs_in++;
    if (!ps->cfg.floodsub && !p->direct && lp2p__score(ps, p) < ps->th.graylist) {
        ps->stats.rpcs_graylisted++;
        return;
    }
    lp2p__ps_handle_subs(ps, p, r);
    for (int i = 0; i < r->n_msgs && !p->gone; i++) lp2p__ps_handle_msg(ps, p, &r->msgs[i]);
    if (gossip && r->n_ctl && !p->gone && !ps->cfg.floodsub) lp2p__gs_handle_control(ps, p, r);
}

static void lp2p__ps_bad_rpc(lp2p_pubsub *ps, lp2p__ps_peer *p, const char *why) {
    char id[LP2P_PEER_ID_STRLEN];
    ps->stats.rpcs_malformed++;
    lp2p_peer_id_str(&p->id, id, sizeof id);
    LP2P__WARN(ps->ctx, LP2P_ERR_PROTOCOL, "pubsub: bad RPC from %s (%s): resetting its stream", id, why);
    lp2p__score_penalty(ps, p, 1);
}

/* Parse every complete uvarint-delimited RPC at the front of in; 0 = need more, 1 = consumed
 * one, < 0 = a protocol violation. */
static int lp2p__ps_next_rpc(lp2p_pubsub *ps, lp2p__ps_peer *p, lp2p__buf *in, bool gossip) {
    uint64_t len;
    int k = lp2p__uvarint_get(in->p, in->len, &len);
    if (k < 0) return lp2p__ps_bad_rpc(ps, p, "bad length prefix"), LP2P_ERR_PROTOCOL;
    if (k > 0 && len > (uint64_t)ps->cfg.max_rpc_size) return lp2p__ps_bad_rpc(ps, p, "larger than max_rpc_size"), LP2P_ERR_MSGSIZE;
    if (k == 0 || in->len < (size_t)k + len) return 0;
    lp2p__ps_rpc r;
    int rc = lp2p__ps_rpc_decode(&r, ps->ctx, in->p + k, (size_t)len);
    if (rc) {
        lp2p__ps_bad_rpc(ps, p, r.error ? r.error : "malformed");
        lp2p__ps_rpc_clear(&r);
        return rc;
    }
    if (r.truncated) LP2P__DEBUG(ps->ctx, "pubsub: RPC over the per-RPC caps: %d entries ignored", r.truncated);
    lp2p__ps_handle_rpc(ps, p, &r, gossip);
    lp2p__ps_rpc_clear(&r);
    lp2p__buf_consume(in, (size_t)k + (size_t)len);
    return 1;
}

/* The peer's stream to us (one per peer: a newer one replaces the older, as go does). */
static void lp2p__ps_serve(lp2p_stream *s, void *user) {
    lp2p_pubsub *ps = (lp2p_pubsub *)user;
    lp2p__buf in = {0, 0, 0};
    if (ps->closing) return;
    lp2p__ps_peer *p = lp2p__ps_peer_get(ps, &s->peer);
    if (!p) return;
    if (p->reader.id) lp2p__task_cancel(ps->h->sched, p->reader);
    p->reader = lp2p__task_self();
    p->refs++, ps->n_tasks++;
    if (!p->writer.id && s->conn && !s->conn->closed) lp2p__ps_start_writer(ps, p, s->conn);
    bool gossip = strcmp(lp2p_stream_protocol(s), LP2P__PS_FLOODSUB) != 0;
    int rc = 0;
    while (!p->gone && !ps->closing && rc >= 0) {
        if ((rc = lp2p__ps_next_rpc(ps, p, &in, gossip)) != 0) continue;
        if (lp2p__buf_reserve(ps->ctx, &in, 64 << 10)) break;
        ptrdiff_t n = lp2p_stream_read(s, in.p + in.len, in.cap - in.len, LP2P_FOREVER);
        if (n <= 0) break;
        in.len += (size_t)n;
        if (in.cap > (256 << 10) && in.len < (64 << 10)) { /* shrink after a large RPC */
            lp2p__buf small = {0, 0, 0};
            if (lp2p__buf_append(ps->ctx, &small, in.p, in.len) == LP2P_OK) lp2p__buf_free(ps->ctx, &in), in = small;
        }
    }
    if (rc < 0) lp2p_stream_reset(s);
    lp2p__buf_free(ps->ctx, &in);
    if (p->reader.id == lp2p__task_self().id) p->reader.id = 0;
    lp2p__ps_task_done(ps);
    lp2p__ps_peer_unref(p);
}

/* ---- connecting to peers learnt by peer exchange / direct peers ------------------------------------------------- */
typedef struct lp2p__ps_dial {
    lp2p_pubsub *ps;
    lp2p_peer_id peer;
    lp2p_task task;
    struct lp2p__ps_dial *next;
} lp2p__ps_dial;

static void lp2p__ps_dial_task(void *arg) {
    lp2p__ps_dial *d = (lp2p__ps_dial *)arg;
    lp2p_pubsub *ps = d->ps;
    char id[LP2P_PEER_ID_STRLEN];
    lp2p_peer_id_str(&d->peer, id, sizeof id);
    if (!ps->closing) lp2p_host_connect(ps->h, id, lp2p_deadline_in(LP2P__PS_OPEN_TIMEOUT_MS * 3));
    for (lp2p__ps_dial **pp = &ps->dials; *pp; pp = &(*pp)->next)
        if (*pp == d) {
            *pp = d->next;
            break;
        }
    ps->n_dials--;
    lp2p__free(ps->ctx, d, sizeof *d);
    lp2p__ps_task_done(ps);
}

LP2P__PRIV void lp2p__ps_connect_async(lp2p_pubsub *ps, const lp2p_peer_id *peer) {
    if (ps->closing || lp2p__swarm_find_conn(ps->h, peer) || lp2p_peer_id_eq(peer, &ps->h->identity.id)) return;
    if (ps->n_dials >= 16) return; /* go: 8 connectors, 128 pending; ours is a bounded best effort */
    for (lp2p__ps_dial *x = ps->dials; x; x = x->next)
        if (lp2p_peer_id_eq(&x->peer, peer)) return;
    lp2p__ps_dial *d = (lp2p__ps_dial *)lp2p__zalloc(ps->ctx, sizeof *d);
    if (!d) return;
    d->ps = ps, d->peer = *peer;
    ps->n_tasks++;
    d->task = lp2p__spawn(ps->h->sched, lp2p__ps_dial_task, d);
    if (!d->task.id) {
        lp2p__free(ps->ctx, d, sizeof *d);
        lp2p__ps_task_done(ps);
        return;
    }
    d->next = ps->dials, ps->dials = d, ps->n_dials++;
}

/* ---- configuration -------------------------------------------------------------------------------------- */
static int lp2p__ps_config_resolve(lp2p_pubsub_config *c) {
#define LP2P__PS_DEF(field, value) \
    if (c->field == 0) c->field = (value)
    LP2P__PS_DEF(max_rpc_size, 1 << 20);
    LP2P__PS_DEF(d, 6);
    LP2P__PS_DEF(d_lo, 5);
    LP2P__PS_DEF(d_hi, 12);
    LP2P__PS_DEF(d_lazy, 6);
    LP2P__PS_DEF(d_score, 4);
    LP2P__PS_DEF(d_out, 2);
    LP2P__PS_DEF(gossip_factor, 0.25);
    LP2P__PS_DEF(heartbeat_ms, 1000);
    LP2P__PS_DEF(heartbeat_initial_delay_ms, 100);
    LP2P__PS_DEF(fanout_ttl_ms, 60000);
    LP2P__PS_DEF(history_length, 5);
    LP2P__PS_DEF(history_gossip, 3);
    LP2P__PS_DEF(seen_ttl_ms, 120000);
    LP2P__PS_DEF(prune_backoff_ms, 60000);
    LP2P__PS_DEF(unsubscribe_backoff_ms, 10000);
    LP2P__PS_DEF(graft_flood_threshold_ms, 10000);
    LP2P__PS_DEF(prune_peers, 16);
    LP2P__PS_DEF(opportunistic_graft_ticks, 60);
    LP2P__PS_DEF(opportunistic_graft_peers, 2);
    LP2P__PS_DEF(max_ihave_length, 5000);
    LP2P__PS_DEF(max_ihave_messages, 10);
    LP2P__PS_DEF(iwant_followup_ms, 3000);
    LP2P__PS_DEF(gossip_retransmission, 3);
    LP2P__PS_DEF(idontwant_threshold, 1024);
    LP2P__PS_DEF(max_idontwant_messages, 1000);
    LP2P__PS_DEF(max_idontwant_length, 10);
    LP2P__PS_DEF(idontwant_ttl, 3);
    LP2P__PS_DEF(peer_queue_bytes, 8 << 20);
    LP2P__PS_DEF(subscription_queue, 4096);
    LP2P__PS_DEF(max_topics, 16384);
    LP2P__PS_DEF(max_topics_per_peer, 1024);
#undef LP2P__PS_DEF
    if (c->d_out < 0) c->d_out = 0;
    if (c->prune_peers < 0) c->prune_peers = 0;
    if (!c->msg_id_fn)
        c->msg_id_fn = c->signing == LP2P_PUBSUB_STRICT_NO_SIGN ? lp2p_pubsub_msg_id_sha256 : lp2p_pubsub_msg_id_default;
    /* gossipsub-v1.1.md: D_lo <= D <= D_hi, D_out < D_lo, D_out <= D/2, history_gossip <= history_length */
    if (c->d_lo > c->d || c->d > c->d_hi || c->d_score > c->d || (c->d_out && (c->d_out >= c->d_lo || c->d_out > c->d / 2)) ||
        c->history_gossip > c->history_length || c->max_rpc_size < 1024 || c->heartbeat_ms < 10 || c->gossip_factor < 0 ||
        c->gossip_factor > 1 || c->subscription_queue < 1 || c->max_idontwant_length < 1)
        return LP2P_ERR_INVALID;
    return LP2P_OK;
}

static bool lp2p__ps_thresholds_ok(const lp2p_pubsub_score_thresholds *t) {
    return t->gossip <= 0 && t->publish <= t->gossip && t->graylist <= t->publish && t->accept_px >= 0 &&
           t->opportunistic_graft >= 0;
}

/* ---- public API ---------------------------------------------------------------------------------------------- */
static void lp2p__ps_destroy(lp2p_pubsub *ps);
static void lp2p__ps_release(void *self) { /* the host's service free: its scheduler is gone */
    lp2p_pubsub *ps = (lp2p_pubsub *)self;
    ps->sched_gone = true;
    lp2p__ps_destroy(ps);
}

LP2P_API int lp2p_pubsub_new(lp2p_host *h, const lp2p_pubsub_config *cfg, lp2p_pubsub **out) {
    lp2p_pubsub_config zero;
    if (!h || !out) return LP2P_ERR_INVALID;
    if (!cfg) memset(&zero, 0, sizeof zero), cfg = &zero;
    for (lp2p__service *s = h->services; s; s = s->next)
        if (s->free == lp2p__ps_release) return LP2P_ERR_INVALID; /* one per host */
    lp2p_pubsub *ps = (lp2p_pubsub *)lp2p__zalloc(&h->ctx, sizeof *ps);
    if (!ps) return LP2P_ERR_NOMEM;
    ps->h = h, ps->ctx = &h->ctx, ps->cfg = *cfg;
    if (lp2p__ps_config_resolve(&ps->cfg)) {
        LP2P__WARN(&h->ctx, LP2P_ERR_INVALID, "pubsub: inconsistent configuration (d_lo <= d <= d_hi, d_out < d_lo, ...)");
        lp2p__free(&h->ctx, ps, sizeof *ps);
        return LP2P_ERR_INVALID;
    }
    lp2p_pubsub_score_defaults(&ps->sp, &ps->th);
    if (cfg->score_params) ps->sp = *cfg->score_params;
    if (cfg->score_thresholds) ps->th = *cfg->score_thresholds;
    if (!lp2p__ps_thresholds_ok(&ps->th) || lp2p__score_check_topic_params(&ps->sp.topic_defaults) ||
        ps->sp.decay_interval_ms <= 0) {
        LP2P__WARN(&h->ctx, LP2P_ERR_INVALID, "pubsub: bad score parameters or thresholds");
        lp2p__free(&h->ctx, ps, sizeof *ps);
        return LP2P_ERR_INVALID;
    }
    ps->cfg.score_params = NULL, ps->cfg.score_thresholds = NULL, ps->cfg.direct_peers = NULL;
    if (cfg->n_direct_peers > 0) {
        ps->direct = (lp2p__ma *)lp2p__zalloc(&h->ctx, sizeof *ps->direct * (size_t)cfg->n_direct_peers);
        if (!ps->direct) return lp2p__free(&h->ctx, ps, sizeof *ps), LP2P_ERR_NOMEM;
        for (int i = 0; i < cfg->n_direct_peers; i++) {
            lp2p_peer_id id;
            lp2p__ma base;
            if (!cfg->direct_peers[i] || lp2p__ma_parse(cfg->direct_peers[i], &ps->direct[i], NULL) ||
                !lp2p__ma_split_p2p(&ps->direct[i], &base, &id)) {
                lp2p__free(&h->ctx, ps->direct, sizeof *ps->direct * (size_t)cfg->n_direct_peers);
                lp2p__free(&h->ctx, ps, sizeof *ps);
                return LP2P_ERR_INVALID;
            }
            lp2p__peerstore_add_addr(h, &id, &base, -1);
        }
        ps->n_direct = cfg->n_direct_peers;
    }
    lp2p__random(ps->salt, sizeof ps->salt);
    ps->seqno = (uint64_t)time(NULL) * 1000000000u; /* go seeds its counter with Unix nanoseconds */
    ps->seen.max = 1 << 18; /* 2 min of 2,000 messages/s; beyond, the oldest IDs are forgotten early */
    if (ps->cfg.floodsub) {
        ps->protos[ps->n_protos++] = LP2P__PS_FLOODSUB;
    } else {
        ps->protos[ps->n_protos++] = LP2P__PS_MESHSUB12;
        ps->protos[ps->n_protos++] = LP2P__PS_MESHSUB11;
        ps->protos[ps->n_protos++] = LP2P__PS_MESHSUB10;
        ps->protos[ps->n_protos++] = LP2P__PS_FLOODSUB;
    }
    int rc = lp2p__gs_init(ps); /* floodsub too: its heartbeat expires the seen cache */
    for (int i = 0; i < ps->n_protos && !rc; i++) rc = lp2p_host_handle(h, ps->protos[i], lp2p__ps_serve, ps);
    if (rc) {
        ps->closing = true;
        for (int i = 0; i < ps->n_protos; i++) lp2p_host_unhandle(h, ps->protos[i]);
        lp2p__ps_destroy(ps);
        return rc;
    }
    ps->notifee.connected = lp2p__ps_on_connected;
    ps->notifee.disconnected = lp2p__ps_on_disconnected;
    ps->notifee.user = ps;
    lp2p__swarm_add_notifee(h, &ps->notifee);
    ps->service.free = lp2p__ps_release, ps->service.self = ps;
    lp2p__host_add_service(h, &ps->service);
    for (lp2p__conn *c = h->conns; c; c = c->next) /* join the connections we already have */
        if (!c->closed) lp2p__ps_on_connected(ps, c);
    *out = ps;
    return LP2P_OK;
}

/* Free everything (no task of ours runs any more). */
static void lp2p__ps_destroy(lp2p_pubsub *ps) {
    lp2p__ctx *ctx = ps->ctx;
    ps->closing = true;
    while (ps->peers) lp2p__ps_peer_remove(ps, ps->peers);
    for (lp2p__ps_topic *t = ps->topics; t; t = t->next)
        while (t->subs) {
            lp2p_subscription *s = t->subs;
            t->subs = s->next;
            lp2p__ps_msg_unref(s->current);
            for (int i = 0; i < s->q_len; i++) lp2p__ps_msg_unref(s->q[(s->q_head + i) % s->q_cap]);
            lp2p__free(ctx, s->q, sizeof *s->q * (size_t)s->q_cap);
            lp2p__free(ctx, s, sizeof *s);
        }
    lp2p__gs_free(ps);
    lp2p__score_free(ps);
    while (ps->topics) {
        lp2p__ps_topic *t = ps->topics;
        ps->topics = t->next;
        lp2p__ps_topic_destroy(ps, t);
    }
    lp2p__ps_idset_free(ctx, &ps->seen);
    lp2p__free(ctx, ps->direct, sizeof *ps->direct * (size_t)ps->n_direct);
    lp2p__free(ctx, ps, sizeof *ps);
}

LP2P_API void lp2p_pubsub_free(lp2p_pubsub *ps) {
    if (!ps) return;
    lp2p_host *h = ps->h;
    ps->closing = true;
    for (int i = 0; i < ps->n_protos; i++) lp2p_host_unhandle(h, ps->protos[i]);
    lp2p__swarm_remove_notifee(h, &ps->notifee);
    for (lp2p__ps_topic *t = ps->topics; t; t = t->next)
        for (lp2p_subscription *s = t->subs; s; s = s->next) lp2p__waitq_wake_all(h->sched, &s->wait);
    while (ps->peers) lp2p__ps_peer_remove(ps, ps->peers);
    for (lp2p__ps_dial *d = ps->dials; d; d = d->next) lp2p__task_cancel(h->sched, d->task);
    if (ps->heartbeat_task.id) lp2p__task_cancel(h->sched, ps->heartbeat_task);
    if (ps->direct_task.id) lp2p__task_cancel(h->sched, ps->direct_task);
    lp2p__task_join(h->sched, ps->heartbeat_task, lp2p_deadline_in(10000));
    lp2p__task_join(h->sched, ps->direct_task, lp2p_deadline_in(10000));
    for (int64_t end = lp2p_deadline_in(10000); ps->n_tasks > 0 && lp2p_now() < end;)
        lp2p__waitq_wait(h->sched, &ps->tasks_done, end);
    if (ps->n_tasks > 0) { /* cannot wait longer here: lp2p_host_free frees it */
        LP2P__WARN(ps->ctx, LP2P_ERR_TIMEOUT, "pubsub: freed with %d tasks still running: memory kept until lp2p_host_free",
                   ps->n_tasks);
        return;
    }
    lp2p__host_remove_service(h, &ps->service);
    lp2p__ps_destroy(ps);
}

static int lp2p__ps_topic_arg(lp2p_pubsub *ps, const char *topic, bool create, lp2p__ps_topic **out) {
    if (!ps || !topic || !lp2p__ps_topic_valid((const uint8_t *)topic, strlen(topic))) return LP2P_ERR_INVALID;
    *out = lp2p__ps_topic_get(ps, (const uint8_t *)topic, strlen(topic), create);
    return *out || !create ? LP2P_OK : (ps->n_topics >= ps->cfg.max_topics ? LP2P_ERR_LIMIT : LP2P_ERR_NOMEM);
}

LP2P_API int lp2p_pubsub_subscribe(lp2p_pubsub *ps, const char *topic, lp2p_subscription **out) {
    lp2p__ps_topic *t;
    if (!out) return LP2P_ERR_INVALID;
    int rc = lp2p__ps_topic_arg(ps, topic, true, &t);
    if (rc) return rc;
    lp2p_subscription *s = (lp2p_subscription *)lp2p__zalloc(ps->ctx, sizeof *s);
    if (s) s->q = (lp2p__ps_msg **)lp2p__alloc(ps->ctx, sizeof *s->q * (size_t)ps->cfg.subscription_queue);
    if (!s || !s->q) {
        lp2p__free(ps->ctx, s, sizeof *s);
        lp2p__ps_topic_maybe_free(ps, t);
        return LP2P_ERR_NOMEM;
    }
    s->ps = ps, s->t = t, s->q_cap = ps->cfg.subscription_queue;
    s->next = t->subs, t->subs = s;
    if (!t->joined) {
        t->joined = true;
        lp2p__ps_announce(ps, t, true);
        if (!ps->cfg.floodsub) lp2p__gs_join(ps, t);
    }
    *out = s;
    return LP2P_OK;
}

LP2P_API int lp2p_subscription_next(lp2p_subscription *sub, lp2p_pubsub_message *out, int64_t deadline) {
    if (!sub || !out) return LP2P_ERR_INVALID;
    lp2p_pubsub *ps = sub->ps;
    lp2p__ps_msg_unref(sub->current);
    sub->current = NULL;
    while (!sub->q_len) {
        if (ps->closing) return LP2P_ERR_CLOSED;
        if (deadline == LP2P_NOWAIT || (deadline > 0 && lp2p_now() >= deadline)) return LP2P_ERR_TIMEOUT;
        int rc = lp2p__waitq_wait(ps->h->sched, &sub->wait, deadline);
        if (rc && rc != LP2P_ERR_TIMEOUT) return rc;
    }
    sub->current = sub->q[sub->q_head];
    sub->q_head = (sub->q_head + 1) % sub->q_cap;
    sub->q_len--;
    lp2p__ps_view(sub->current, out);
    return LP2P_OK;
}

LP2P_API uint64_t lp2p_subscription_dropped(const lp2p_subscription *sub) { return sub ? sub->dropped : 0; }
LP2P_API const char *lp2p_subscription_topic(const lp2p_subscription *sub) { return sub ? sub->t->name : NULL; }

LP2P_API void lp2p_subscription_cancel(lp2p_subscription *sub) {
    if (!sub) return;
    lp2p_pubsub *ps = sub->ps;
    lp2p__ps_topic *t = sub->t;
    for (lp2p_subscription **pp = &t->subs; *pp; pp = &(*pp)->next)
        if (*pp == sub) {
            *pp = sub->next;
            break;
        }
    lp2p__ps_msg_unref(sub->current);
    for (int i = 0; i < sub->q_len; i++) lp2p__ps_msg_unref(sub->q[(sub->q_head + i) % sub->q_cap]);
    lp2p__waitq_wake_all(ps->h->sched, &sub->wait);
    lp2p__free(ps->ctx, sub->q, sizeof *sub->q * (size_t)sub->q_cap);
    lp2p__free(ps->ctx, sub, sizeof *sub);
    if (!t->subs && t->joined) {
        t->joined = false;
        lp2p__ps_announce(ps, t, false);
        if (!ps->cfg.floodsub) lp2p__gs_leave(ps, t);
    }
    lp2p__ps_topic_maybe_free(ps, t);
}

/* Build our message: from, data, seqno, topic (+ signature) or, unsigned, data and topic. */
static int lp2p__ps_build_own(lp2p_pubsub *ps, lp2p__ps_topic *t, const void *data, size_t len, lp2p__buf *raw,
                              lp2p__ps_rpc_msg *rm, lp2p_pubsub_message *v) {
    uint8_t seq[8], sig[64];
    memset(rm, 0, sizeof *rm);
    memset(v, 0, sizeof *v);
    v->topic = t->name, v->received_from = ps->h->identity.id;
    v->data = (const uint8_t *)data, v->data_len = len;
    rm->has_data = rm->has_topic = true;
    rm->data.p = (const uint8_t *)data, rm->data.n = len;
    rm->topic.p = (const uint8_t *)t->name, rm->topic.n = t->name_len;
    if (ps->cfg.signing == LP2P_PUBSUB_STRICT_SIGN) {
        v->from = ps->h->identity.id;
        v->seqno = ++ps->seqno, v->has_seqno = true;
        lp2p__put_be64(seq, v->seqno);
        rm->has_from = rm->has_seqno = true;
        rm->from.p = v->from.bytes, rm->from.n = v->from.len;
        rm->seqno.p = seq, rm->seqno.n = 8;
    }
    int rc = LP2P_OK;
    if (rm->has_from) {
        rc = lp2p__buf_append(ps->ctx, raw, LP2P__PS_SIGN_PREFIX, strlen(LP2P__PS_SIGN_PREFIX));
        if (!rc) rc = lp2p__ps_encode_unsigned(ps->ctx, raw, rm);
        if (!rc) lp2p__identity_sign(&ps->h->identity, raw->p, raw->len, sig);
        if (!rc) rc = lp2p__pb_put_bytes(ps->ctx, raw, 5, sig, sizeof sig);
        if (!rc) lp2p__buf_consume(raw, strlen(LP2P__PS_SIGN_PREFIX));
    } else {
        rc = lp2p__ps_encode_unsigned(ps->ctx, raw, rm);
    }
    return rc ? rc : lp2p__ps_msg_parse(raw->p, raw->len, rm); /* slices into raw from here */
}

LP2P_API int lp2p_pubsub_publish(lp2p_pubsub *ps, const char *topic, const void *data, size_t len) {
    uint8_t id[LP2P_PUBSUB_MSG_ID_MAX];
    lp2p__ps_topic *t;
    lp2p__ps_rpc_msg rm;
    lp2p_pubsub_message v;
    lp2p__buf raw = {0, 0, 0};
    if (!data && len) return LP2P_ERR_INVALID;
    int rc = lp2p__ps_topic_arg(ps, topic, true, &t);
    if (rc) return rc;
    if (len + t->name_len + 256 > (size_t)ps->cfg.max_rpc_size) rc = LP2P_ERR_MSGSIZE;
    if (!rc) rc = lp2p__ps_build_own(ps, t, data, len, &raw, &rm, &v);
    ptrdiff_t idn = rc ? rc : lp2p__ps_msg_id(ps, &v, id);
    if (idn < 0) rc = (int)idn;
    if (!rc) v.id = id, v.id_len = (size_t)idn;
    if (!rc && lp2p__ps_validate(ps, t, &v) != LP2P_PUBSUB_ACCEPT) rc = LP2P_ERR_INVALID;
    lp2p__ps_msg *m = rc ? NULL : lp2p__ps_msg_new(ps, &rm, &v, id, (size_t)idn);
    lp2p__buf_free(ps->ctx, &raw);
    if (!m) {
        lp2p__ps_topic_maybe_free(ps, t);
        return rc ? rc : LP2P_ERR_NOMEM;
    }
    ps->stats.published++;
    lp2p__ps_idset_entry *e = lp2p__ps_idset_add(ps->ctx, &ps->seen, m->digest, lp2p_now() + ps->cfg.seen_ttl_ms, NULL);
    if (e) e->status = LP2P__PS_SEEN_VALID, e->aux = lp2p_now();
    if (!ps->cfg.floodsub) lp2p__gs_mcache_put(ps, m);
    if (!ps->cfg.no_self_delivery) lp2p__ps_deliver(ps, t, m);
    int n = lp2p__gs_forward(ps, t, m, NULL, true);
    lp2p__ps_msg_unref(m);
    lp2p__ps_topic_maybe_free(ps, t);
    return n;
}

static int lp2p__ps_copy_ids(lp2p__ps_peer *const *v, int n, lp2p_peer_id *out, int max) {
    for (int i = 0; i < n && i < max && out; i++) out[i] = v[i]->id;
    return n;
}

LP2P_API int lp2p_pubsub_topic_peers(lp2p_pubsub *ps, const char *topic, lp2p_peer_id *out, int max) {
    lp2p__ps_topic *t = NULL;
    if (!ps) return 0;
    if (topic && (lp2p__ps_topic_arg(ps, topic, false, &t) || !t)) return 0;
    int n = 0;
    for (lp2p__ps_peer *p = ps->peers; p; p = p->next) {
        if (t ? !lp2p__ps_peer_in_topic(p, t) : !lp2p__ps_peer_active(p)) continue;
        if (out && n < max) out[n] = p->id;
        n++;
    }
    return n;
}

LP2P_API int lp2p_pubsub_mesh_peers(lp2p_pubsub *ps, const char *topic, lp2p_peer_id *out, int max) {
    lp2p__ps_topic *t = NULL;
    if (!ps || lp2p__ps_topic_arg(ps, topic, false, &t) || !t) return 0;
    return lp2p__ps_copy_ids(t->mesh, t->n_mesh, out, max);
}

LP2P_API int lp2p_pubsub_set_validator(lp2p_pubsub *ps, const char *topic, lp2p_pubsub_validator_fn fn, void *user) {
    lp2p__ps_topic *t;
    int rc = lp2p__ps_topic_arg(ps, topic, fn != NULL, &t);
    if (rc || !t) return rc;
    t->validator = fn, t->validator_user = user;
    lp2p__ps_topic_maybe_free(ps, t);
    return LP2P_OK;
}

LP2P_API int lp2p_pubsub_set_topic_score_params(lp2p_pubsub *ps, const char *topic,
                                                const lp2p_pubsub_topic_score_params *params) {
    lp2p__ps_topic *t;
    if (params && lp2p__score_check_topic_params(params)) return LP2P_ERR_INVALID;
    int rc = lp2p__ps_topic_arg(ps, topic, params != NULL, &t);
    if (rc || !t) return rc;
    if (!params) {
        lp2p__free(ps->ctx, t->score, sizeof *t->score), t->score = NULL;
        lp2p__ps_topic_maybe_free(ps, t);
        return LP2P_OK;
    }
    if (!t->score && !(t->score = (lp2p_pubsub_topic_score_params *)lp2p__alloc(ps->ctx, sizeof *t->score)))
        return LP2P_ERR_NOMEM;
    *t->score = *params;
    return LP2P_OK;
}

LP2P_API int lp2p_pubsub_peer_score(lp2p_pubsub *ps, const lp2p_peer_id *peer, double *score) {
    if (!ps || !peer || !score) return LP2P_ERR_INVALID;
    return lp2p__score_lookup(ps, peer, score);
}

LP2P_API void lp2p_pubsub_get_stats(lp2p_pubsub *ps, lp2p_pubsub_stats *out) {
    if (ps && out) *out = ps->stats;
}
/*==================== end src/pubsub.c ====================*/
/*==================== begin src/gossipsub.c ====================*/
/* gossipsub.c - L7: the gossipsub router on top of pubsub.c: topic meshes (GRAFT/PRUNE with
 * backoff, peer exchange), fanout, gossip (IHAVE/IWANT from the message cache, promises),
 * IDONTWANT (v1.2), flood publishing, opportunistic grafting, explicit peers and the heartbeat.
 * Peers that speak only /floodsub/1.0.0 get every message of their topics.
 *
 * Spec: libp2p/specs pubsub/gossipsub/gossipsub-v1.0.md (mesh, gossip, heartbeat),
 * gossipsub-v1.1.md (backoff, PX, flood publishing, outbound quota, adaptive gossip, spam
 * protection), gossipsub-v1.2.md (IDONTWANT). Behaviour and defaults follow go-libp2p-pubsub
 * (gossipsub.go), the reference the spec grew from.
 * Control RPCs we send stay under 56 KiB each (IHAVE lists are split): rust peers drop RPCs
 * above 64 KiB.
 * Depends on: pubsub.h, pubsub.c, pubsub_score.c. */
// (amalgamated) #include "pubsub.h"

#include <pb_decode.h>
#include <stdlib.h>

#define LP2P__GS_CTL_FLUSH (56 << 10)
#define LP2P__GS_IHAVE_CHUNK 1000   /* message IDs per IHAVE entry */
#define LP2P__GS_MAX_PROMISES 20000
#define LP2P__GS_DIRECT_TICKS 300   /* explicit peers are re-dialed every 300 heartbeats (go) */
#define LP2P__GS_MAX_BACKOFF_S (24 * 3600)

/* ---- small helpers ------------------------------------------------------------------------------- */
static uint64_t lp2p__gs_rand(lp2p_pubsub *ps) {
    uint64_t x = ps->rng;
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return ps->rng = x;
}

static void lp2p__gs_shuffle(lp2p_pubsub *ps, void **v, int n) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(lp2p__gs_rand(ps) % (uint64_t)(i + 1));
        void *t = v[i];
        v[i] = v[j], v[j] = t;
    }
}

static bool lp2p__gs_arr_has(lp2p__ps_peer *const *v, int n, const lp2p__ps_peer *p) {
    for (int i = 0; i < n; i++)
        if (v[i] == p) return true;
    return false;
}

static bool lp2p__gs_arr_add(lp2p_pubsub *ps, lp2p__ps_peer ***v, int *n, int *cap, lp2p__ps_peer *p) {
    if (lp2p__gs_arr_has(*v, *n, p)) return true;
    if (*n == *cap) {
        int ncap = *cap ? *cap * 2 : 8;
        void *np = lp2p__realloc(ps->ctx, *v, sizeof **v * (size_t)*cap, sizeof **v * (size_t)ncap);
        if (!np) return false;
        *v = (lp2p__ps_peer **)np, *cap = ncap;
    }
    (*v)[(*n)++] = p;
    return true;
}

static bool lp2p__gs_arr_del(lp2p__ps_peer **v, int *n, const lp2p__ps_peer *p) {
    for (int i = 0; i < *n; i++)
        if (v[i] == p) {
            v[i] = v[--*n];
            return true;
        }
    return false;
}

LP2P__PRIV bool lp2p__gs_in_mesh(const lp2p__ps_topic *t, const lp2p__ps_peer *p) {
    return lp2p__gs_arr_has(t->mesh, t->n_mesh, p);
}

static bool lp2p__gs_speaks_mesh(const lp2p__ps_peer *p) {
    return lp2p__ps_peer_active(p) && p->proto >= LP2P__PS_PROTO_MESH10;
}

/* ---- backoff -------------------------------------------------------------------------------------- */
static lp2p__ps_backoff *lp2p__gs_backoff_find(lp2p__ps_topic *t, const lp2p__ps_peer *p) {
    for (int i = 0; i < t->n_backoff; i++)
        if (lp2p_peer_id_eq(&t->backoff[i].peer, &p->id)) return &t->backoff[i];
    return NULL;
}

static bool lp2p__gs_in_backoff(lp2p__ps_topic *t, const lp2p__ps_peer *p, int64_t now) {
    lp2p__ps_backoff *b = lp2p__gs_backoff_find(t, p);
    return b && b->until > now;
}

static void lp2p__gs_add_backoff(lp2p_pubsub *ps, lp2p__ps_topic *t, const lp2p__ps_peer *p, int64_t ms) {
    int64_t until = lp2p_now() + ms;
    lp2p__ps_backoff *b = lp2p__gs_backoff_find(t, p);
    if (b) {
        if (b->until < until) b->until = until;
        return;
    }
    if (t->n_backoff == t->cap_backoff) {
        int ncap = t->cap_backoff ? t->cap_backoff * 2 : 8;
        void *np = lp2p__realloc(ps->ctx, t->backoff, sizeof *t->backoff * (size_t)t->cap_backoff,
                                 sizeof *t->backoff * (size_t)ncap);
        if (!np) return;
        t->backoff = (lp2p__ps_backoff *)np, t->cap_backoff = ncap;
    }
    t->backoff[t->n_backoff].peer = p->id;
    t->backoff[t->n_backoff++].until = until;
}

static void lp2p__gs_expire_backoff(lp2p__ps_topic *t, int64_t now) {
    for (int i = 0; i < t->n_backoff;)
        if (t->backoff[i].until <= now) t->backoff[i] = t->backoff[--t->n_backoff];
        else i++;
}

/* ---- control RPCs we send -------------------------------------------------------------------------- */
typedef struct lp2p__gs_out {
    lp2p__ps_peer *p;
    lp2p__buf ctl; /* ControlMessage body */
} lp2p__gs_out;

static void lp2p__gs_flush(lp2p_pubsub *ps, lp2p__gs_out *o) {
    lp2p__buf rpc = {0, 0, 0};
    if (o->ctl.len && lp2p__pb_put_bytes(ps->ctx, &rpc, 3, o->ctl.p, o->ctl.len) == LP2P_OK)
        lp2p__ps_send(o->p, rpc.p, rpc.len, true, false);
    lp2p__buf_free(ps->ctx, &rpc);
    o->ctl.len = 0;
}

/* Append one ControlMessage entry (field = 1 IHAVE, 2 IWANT, 3 GRAFT, 4 PRUNE, 5 IDONTWANT). */
static void lp2p__gs_put(lp2p_pubsub *ps, lp2p__gs_out *o, uint32_t field, const lp2p__buf *entry) {
    if (o->ctl.len && o->ctl.len + entry->len + 16 > LP2P__GS_CTL_FLUSH) lp2p__gs_flush(ps, o);
    lp2p__pb_put_bytes(ps->ctx, &o->ctl, field, entry->p, entry->len);
}

static void lp2p__gs_put_topic_entry(lp2p_pubsub *ps, lp2p__gs_out *o, uint32_t field, const lp2p__ps_topic *t) {
    lp2p__buf e = {0, 0, 0};
    if (lp2p__pb_put_bytes(ps->ctx, &e, 1, t->name, t->name_len) == LP2P_OK) lp2p__gs_put(ps, o, field, &e);
    lp2p__buf_free(ps->ctx, &e);
}

/* IHAVE (topic) / IWANT / IDONTWANT (topic NULL) with ids, split in chunks. */
static void lp2p__gs_put_ids(lp2p_pubsub *ps, lp2p__gs_out *o, uint32_t field, const lp2p__ps_topic *t,
                             const lp2p__ps_slice *ids, int n) {
    lp2p__buf e = {0, 0, 0};
    uint32_t id_field = t ? 2 : 1;
    for (int i = 0; i < n;) {
        e.len = 0;
        if (t) lp2p__pb_put_bytes(ps->ctx, &e, 1, t->name, t->name_len);
        for (int k = 0; i < n && k < LP2P__GS_IHAVE_CHUNK && e.len < LP2P__GS_CTL_FLUSH / 2; k++, i++)
            lp2p__pb_put_bytes(ps->ctx, &e, id_field, ids[i].p, ids[i].n);
        lp2p__gs_put(ps, o, field, &e);
    }
    lp2p__buf_free(ps->ctx, &e);
}

/* PRUNE with backoff (v1.1 peers) and peer exchange: up to prune_peers other topic peers
 * scoring >= 0, with the signed peer records we hold (go makePrune). */
static void lp2p__gs_put_prune(lp2p_pubsub *ps, lp2p__gs_out *o, lp2p__ps_topic *t, bool px, bool unsubscribe) {
    lp2p__buf e = {0, 0, 0}, pi = {0, 0, 0};
    lp2p__ps_peer *p = o->p;
    lp2p__pb_put_bytes(ps->ctx, &e, 1, t->name, t->name_len);
    if (p->proto >= LP2P__PS_PROTO_MESH11) {
        if (px && !ps->cfg.no_px && ps->cfg.prune_peers > 0) {
            lp2p__ps_peer **cand = (lp2p__ps_peer **)lp2p__alloc(ps->ctx, sizeof *cand * (size_t)(ps->n_peers + 1));
            int n = 0;
            for (lp2p__ps_peer *x = ps->peers; cand && x; x = x->next)
                if (x != p && lp2p__ps_peer_in_topic(x, t) && lp2p__score(ps, x) >= 0) cand[n++] = x;
            if (cand) lp2p__gs_shuffle(ps, (void **)cand, n);
            for (int i = 0; cand && i < n && i < ps->cfg.prune_peers; i++) {
                lp2p__peer *rec = lp2p__peerstore_get(ps->h, &cand[i]->id, false);
                pi.len = 0;
                lp2p__pb_put_bytes(ps->ctx, &pi, 1, cand[i]->id.bytes, cand[i]->id.len);
                if (rec && rec->record_len) lp2p__pb_put_bytes(ps->ctx, &pi, 2, rec->record, rec->record_len);
                lp2p__pb_put_bytes(ps->ctx, &e, 2, pi.p, pi.len);
            }
            lp2p__free(ps->ctx, cand, sizeof *cand * (size_t)(ps->n_peers + 1));
        }
        int ms = unsubscribe ? ps->cfg.unsubscribe_backoff_ms : ps->cfg.prune_backoff_ms;
        lp2p__pb_put_varint(ps->ctx, &e, 3, (uint64_t)(ms + 999) / 1000);
    }
    lp2p__gs_put(ps, o, 4, &e);
    ps->stats.prune_out++;
    lp2p__buf_free(ps->ctx, &e);
    lp2p__buf_free(ps->ctx, &pi);
}

/* ---- mesh membership --------------------------------------------------------------------------------- */
static void lp2p__gs_graft(lp2p_pubsub *ps, lp2p__ps_topic *t, lp2p__gs_out *o) {
    if (!lp2p__gs_arr_add(ps, &t->mesh, &t->n_mesh, &t->cap_mesh, o->p)) return;
    lp2p__score_graft(ps, o->p, t);
    lp2p__gs_put_topic_entry(ps, o, 3, t);
    ps->stats.graft_out++;
}

static void lp2p__gs_prune(lp2p_pubsub *ps, lp2p__ps_topic *t, lp2p__gs_out *o, bool px, bool unsubscribe) {
    if (lp2p__gs_arr_del(t->mesh, &t->n_mesh, o->p)) lp2p__score_prune(ps, o->p, t);
    lp2p__gs_add_backoff(ps, t, o->p, unsubscribe ? ps->cfg.unsubscribe_backoff_ms : ps->cfg.prune_backoff_ms);
    lp2p__gs_put_prune(ps, o, t, px, unsubscribe);
}

/* Peers of topic t passing filter, shuffled, into a fresh array (*n of them). */
typedef bool (*lp2p__gs_filter)(lp2p_pubsub *ps, lp2p__ps_topic *t, lp2p__ps_peer *p, void *arg);

static lp2p__ps_peer **lp2p__gs_select(lp2p_pubsub *ps, lp2p__ps_topic *t, lp2p__gs_filter f, void *arg, int *n) {
    lp2p__ps_peer **v = (lp2p__ps_peer **)lp2p__alloc(ps->ctx, sizeof *v * (size_t)(ps->n_peers + 1));
    *n = 0;
    if (!v) return NULL;
    for (lp2p__ps_peer *p = ps->peers; p; p = p->next)
        if (lp2p__gs_speaks_mesh(p) && lp2p__ps_peer_in_topic(p, t) && !p->direct && f(ps, t, p, arg)) v[(*n)++] = p;
    lp2p__gs_shuffle(ps, (void **)v, *n);
    return v;
}

static void lp2p__gs_select_free(lp2p_pubsub *ps, lp2p__ps_peer **v) {
    lp2p__free(ps->ctx, v, sizeof *v * (size_t)(ps->n_peers + 1));
}

/* Graft candidates: not in the mesh, not backing off, score >= 0 (arg: only outbound if non-NULL,
 * or score above *(double *)arg for opportunistic grafting, see the callers). */
static bool lp2p__gs_can_graft(lp2p_pubsub *ps, lp2p__ps_topic *t, lp2p__ps_peer *p, void *arg) {
    (void)arg;
    return !lp2p__gs_in_mesh(t, p) && !lp2p__gs_in_backoff(t, p, lp2p_now()) && lp2p__score(ps, p) >= 0;
}
static bool lp2p__gs_can_graft_out(lp2p_pubsub *ps, lp2p__ps_topic *t, lp2p__ps_peer *p, void *arg) {
    return p->outbound && lp2p__gs_can_graft(ps, t, p, arg);
}
static bool lp2p__gs_can_graft_above(lp2p_pubsub *ps, lp2p__ps_topic *t, lp2p__ps_peer *p, void *arg) {
    return lp2p__gs_can_graft(ps, t, p, arg) && lp2p__score(ps, p) > *(double *)arg;
}
static bool lp2p__gs_fanout_ok(lp2p_pubsub *ps, lp2p__ps_topic *t, lp2p__ps_peer *p, void *arg) {
    (void)arg;
    return !lp2p__gs_arr_has(t->fanout, t->n_fanout, p) && lp2p__score(ps, p) >= ps->th.publish;
}
static bool lp2p__gs_gossip_ok(lp2p_pubsub *ps, lp2p__ps_topic *t, lp2p__ps_peer *p, void *arg) {
    (void)arg;
    return !lp2p__gs_in_mesh(t, p) && !lp2p__gs_arr_has(t->fanout, t->n_fanout, p) && lp2p__score(ps, p) >= ps->th.gossip;
}

/* ---- joining and leaving topics --------------------------------------------------------------------- */
LP2P__PRIV void lp2p__gs_join(lp2p_pubsub *ps, lp2p__ps_topic *t) {
    int64_t now = lp2p_now();
    lp2p__ps_peer **grafted = (lp2p__ps_peer **)lp2p__alloc(ps->ctx, sizeof *grafted * (size_t)(ps->n_peers + 1));
    int ng = 0, n = 0;
    if (!grafted) return;
    for (int i = 0; i < t->n_fanout; i++) { /* the fanout becomes the mesh (go Join) */
        lp2p__ps_peer *p = t->fanout[i];
        if (ng < ps->cfg.d && lp2p__score(ps, p) >= 0 && !lp2p__gs_in_backoff(t, p, now)) grafted[ng++] = p;
    }
    t->n_fanout = 0, t->fanout_last_pub = 0;
    lp2p__ps_peer **v = lp2p__gs_select(ps, t, lp2p__gs_can_graft, NULL, &n);
    for (int i = 0; v && i < n && ng < ps->cfg.d; i++)
        if (!lp2p__gs_arr_has(grafted, ng, v[i])) grafted[ng++] = v[i];
    lp2p__gs_select_free(ps, v);
    for (int i = 0; i < ng; i++) {
        lp2p__gs_out o = {grafted[i], {0, 0, 0}};
        lp2p__gs_graft(ps, t, &o);
        lp2p__gs_flush(ps, &o);
        lp2p__buf_free(ps->ctx, &o.ctl);
    }
    lp2p__free(ps->ctx, grafted, sizeof *grafted * (size_t)(ps->n_peers + 1));
}

LP2P__PRIV void lp2p__gs_leave(lp2p_pubsub *ps, lp2p__ps_topic *t) {
    while (t->n_mesh) {
        lp2p__gs_out o = {t->mesh[t->n_mesh - 1], {0, 0, 0}};
        lp2p__gs_prune(ps, t, &o, true, true);
        lp2p__gs_flush(ps, &o);
        lp2p__buf_free(ps->ctx, &o.ctl);
    }
}

LP2P__PRIV void lp2p__gs_peer_added(lp2p_pubsub *ps, lp2p__ps_peer *p) { (void)ps, (void)p; }

LP2P__PRIV void lp2p__gs_peer_removed(lp2p_pubsub *ps, lp2p__ps_peer *p) {
    for (lp2p__ps_topic *t = ps->topics; t; t = t->next) {
        if (lp2p__gs_arr_del(t->mesh, &t->n_mesh, p)) lp2p__score_prune(ps, p, t);
        lp2p__gs_arr_del(t->fanout, &t->n_fanout, p);
    }
}

LP2P__PRIV void lp2p__gs_peer_unsubscribed(lp2p_pubsub *ps, lp2p__ps_peer *p, lp2p__ps_topic *t) {
    if (lp2p__gs_arr_del(t->mesh, &t->n_mesh, p)) lp2p__score_prune(ps, p, t);
    lp2p__gs_arr_del(t->fanout, &t->n_fanout, p);
}

/* ---- message cache ---------------------------------------------------------------------------------- */
LP2P__PRIV void lp2p__gs_mcache_put(lp2p_pubsub *ps, lp2p__ps_msg *m) {
    lp2p__ps_mcache *c = &ps->mcache;
    bool fresh;
    if (c->n[0] == c->cap[0]) {
        int ncap = c->cap[0] ? c->cap[0] * 2 : 64;
        void *np = lp2p__realloc(ps->ctx, c->win[0], sizeof *c->win[0] * (size_t)c->cap[0], sizeof *c->win[0] * (size_t)ncap);
        if (!np) return;
        c->win[0] = (lp2p__ps_msg **)np, c->cap[0] = ncap;
    }
    lp2p__ps_idset_entry *e = lp2p__ps_idset_add(ps->ctx, &c->index, m->digest, 0, &fresh);
    if (!e || !fresh) return;
    e->aux = (int64_t)(intptr_t)m;
    m->refs++;
    c->win[0][c->n[0]++] = m;
}

static lp2p__ps_msg *lp2p__gs_mcache_get(lp2p_pubsub *ps, const uint8_t d[LP2P__PS_DIGEST]) {
    lp2p__ps_idset_entry *e = lp2p__ps_idset_find(&ps->mcache.index, d);
    return e ? (lp2p__ps_msg *)(intptr_t)e->aux : NULL;
}

static void lp2p__gs_mcache_shift(lp2p_pubsub *ps) {
    lp2p__ps_mcache *c = &ps->mcache;
    int last = c->len - 1;
    for (int i = 0; i < c->n[last]; i++) {
        lp2p__ps_idset_del(&c->index, c->win[last][i]->digest);
        lp2p__ps_msg_unref(c->win[last][i]);
    }
    lp2p__ps_msg **w = c->win[last];
    int cap = c->cap[last];
    for (int i = last; i > 0; i--) c->win[i] = c->win[i - 1], c->n[i] = c->n[i - 1], c->cap[i] = c->cap[i - 1];
    c->win[0] = w, c->n[0] = 0, c->cap[0] = cap;
    lp2p__ps_idset_expire(&c->index, -1); /* pops the tombstones at the front of the FIFO */
}

/* IWANT: the message for peer p, unless it asked for it too often (gossip_retransmission). */
static lp2p__ps_msg *lp2p__gs_mcache_for_peer(lp2p_pubsub *ps, const uint8_t d[LP2P__PS_DIGEST], lp2p__ps_peer *p) {
    lp2p__ps_msg *m = lp2p__gs_mcache_get(ps, d);
    if (!m) return NULL;
    for (int i = 0; i < m->n_tx; i++)
        if (m->tx[i].peer == p) return ++m->tx[i].count > ps->cfg.gossip_retransmission ? NULL : m;
    if (m->n_tx == (int)LP2P__COUNT(m->tx)) return NULL;
    m->tx[m->n_tx].peer = p, m->tx[m->n_tx++].count = 1;
    return m;
}

/* ---- gossip promises (v1.1: a peer that IHAVEs must deliver what we IWANT) --------------------------- */
static void lp2p__gs_promise_add(lp2p_pubsub *ps, lp2p__ps_peer *p, const uint8_t d[LP2P__PS_DIGEST]) {
    if (ps->n_promises >= LP2P__GS_MAX_PROMISES) return;
    if (ps->n_promises == ps->cap_promises) {
        int ncap = ps->cap_promises ? ps->cap_promises * 2 : 64;
        void *np = lp2p__realloc(ps->ctx, ps->promises, sizeof *ps->promises * (size_t)ps->cap_promises,
                                 sizeof *ps->promises * (size_t)ncap);
        if (!np) return;
        ps->promises = (lp2p__ps_promise *)np, ps->cap_promises = ncap;
    }
    lp2p__ps_promise *x = &ps->promises[ps->n_promises++];
    memcpy(x->d, d, LP2P__PS_DIGEST);
    x->peer = p->id;
    x->expires = lp2p_now() + ps->cfg.iwant_followup_ms;
}

LP2P__PRIV void lp2p__gs_promise_kept(lp2p_pubsub *ps, const uint8_t d[LP2P__PS_DIGEST]) {
    for (int i = 0; i < ps->n_promises;)
        if (memcmp(ps->promises[i].d, d, LP2P__PS_DIGEST) == 0) ps->promises[i] = ps->promises[--ps->n_promises];
        else i++;
}

static void lp2p__gs_promises_check(lp2p_pubsub *ps, int64_t now) {
    for (int i = 0; i < ps->n_promises;) {
        lp2p__ps_promise *x = &ps->promises[i];
        if (x->expires > now) {
            i++;
            continue;
        }
        lp2p__ps_peer *p = lp2p__ps_peer_find(ps, &x->peer);
        if (p) {
            char id[LP2P_PEER_ID_STRLEN];
            lp2p_peer_id_str(&p->id, id, sizeof id);
            LP2P__INFO(ps->ctx, "pubsub: %s did not deliver a message it advertised (IWANT promise broken)", id);
            lp2p__score_penalty(ps, p, 1);
        }
        *x = ps->promises[--ps->n_promises];
    }
}

/* ---- incoming control --------------------------------------------------------------------------------- */
static lp2p__ps_topic *lp2p__gs_ctl_topic(lp2p_pubsub *ps, const lp2p__ps_rpc_ctl *c) {
    lp2p__ps_topic *t = lp2p__ps_topic_get(ps, c->topic.p, c->topic.n, false);
    return t && t->joined ? t : NULL;
}

static void lp2p__gs_handle_ihave(lp2p_pubsub *ps, lp2p__ps_peer *p, const lp2p__ps_rpc *r, lp2p__gs_out *o) {
    lp2p__ps_slice *want = NULL;
    int n = 0, cap = 0;
    uint8_t d[LP2P__PS_DIGEST];
    for (int i = 0; i < r->n_ctl; i++) {
        const lp2p__ps_rpc_ctl *c = &r->ctl[i];
        if (c->kind != LP2P__PS_CTL_IHAVE) continue;
        ps->stats.ihave_in++;
        if (++p->ihave_in > ps->cfg.max_ihave_messages || p->iasked >= ps->cfg.max_ihave_length) {
            LP2P__DEBUG(ps->ctx, "pubsub: IHAVE flood: max_ihave_messages/max_ihave_length reached, ignored");
            continue;
        }
        if (!lp2p__gs_ctl_topic(ps, c)) continue;
        for (int k = 0; k < c->n_ids && n < ps->cfg.max_ihave_length; k++) {
            const lp2p__ps_slice *id = &r->ids[c->first_id + k];
            lp2p__ps_digest(ps, id->p, id->n, d);
            if (lp2p__ps_idset_find(&ps->seen, d)) continue;
            bool dup = false;
            for (int j = 0; j < n && !dup; j++) dup = want[j].n == id->n && !memcmp(want[j].p, id->p, id->n);
            if (dup) continue;
            if (n == cap) {
                int ncap = cap ? cap * 2 : 16;
                void *np = lp2p__realloc(ps->ctx, want, sizeof *want * (size_t)cap, sizeof *want * (size_t)ncap);
                if (!np) break;
                want = (lp2p__ps_slice *)np, cap = ncap;
            }
            want[n++] = *id;
        }
    }
    int ask = LP2P__MIN(n, ps->cfg.max_ihave_length - p->iasked);
    if (ask > 0) {
        for (int a = 0; a < ask && n > ask; a++) { /* a random subset when we must cut */
            int b = a + (int)(lp2p__gs_rand(ps) % (uint64_t)(n - a));
            lp2p__ps_slice tmp = want[a];
            want[a] = want[b], want[b] = tmp;
        }
        p->iasked += ask;
        int pick = (int)(lp2p__gs_rand(ps) % (uint64_t)ask);
        lp2p__ps_digest(ps, want[pick].p, want[pick].n, d);
        lp2p__gs_promise_add(ps, p, d); /* go tracks one random ID per IWANT */
        lp2p__gs_put_ids(ps, o, 2, NULL, want, ask);
        ps->stats.iwant_out++;
    }
    lp2p__free(ps->ctx, want, sizeof *want * (size_t)cap);
}

static void lp2p__gs_handle_iwant(lp2p_pubsub *ps, lp2p__ps_peer *p, const lp2p__ps_rpc *r) {
    uint8_t d[LP2P__PS_DIGEST];
    for (int i = 0; i < r->n_ctl; i++) {
        const lp2p__ps_rpc_ctl *c = &r->ctl[i];
        if (c->kind != LP2P__PS_CTL_IWANT) continue;
        ps->stats.iwant_in++;
        for (int k = 0; k < c->n_ids; k++) {
            if (p->iwant_served >= ps->cfg.max_ihave_length) {
                LP2P__DEBUG(ps->ctx, "pubsub: IWANT flood: more than max_ihave_length messages asked this heartbeat");
                return;
            }
            lp2p__ps_digest(ps, r->ids[c->first_id + k].p, r->ids[c->first_id + k].n, d);
            lp2p__ps_msg *m = lp2p__gs_mcache_for_peer(ps, d, p);
            if (!m || lp2p__ps_idset_find(&p->dontwant, d)) continue;
            p->iwant_served++;
            if (lp2p__ps_send_msg(p, m) == LP2P_OK) ps->stats.iwant_served++;
        }
    }
}

/* GRAFT: join p to our mesh unless it must back off, scores below 0, or the mesh is full
 * (go handleGraft); refusals answer PRUNE. */
static void lp2p__gs_handle_graft(lp2p_pubsub *ps, lp2p__ps_peer *p, const lp2p__ps_rpc *r, lp2p__gs_out *o) {
    int64_t now = lp2p_now();
    char id[LP2P_PEER_ID_STRLEN];
    for (int i = 0; i < r->n_ctl; i++) {
        const lp2p__ps_rpc_ctl *c = &r->ctl[i];
        if (c->kind != LP2P__PS_CTL_GRAFT) continue;
        ps->stats.graft_in++;
        lp2p__ps_topic *t = lp2p__gs_ctl_topic(ps, c);
        if (!t || lp2p__gs_in_mesh(t, p)) continue; /* unknown topics: ignored (spam hardening) */
        if (!lp2p__ps_peer_in_topic(p, t)) continue; /* it did not subscribe (rust drops these too) */
        bool px = true;
        if (p->direct) {
            lp2p_peer_id_str(&p->id, id, sizeof id);
            LP2P__WARN(ps->ctx, LP2P_ERR_PROTOCOL, "pubsub: GRAFT from direct peer %s: refused", id);
            lp2p__gs_prune(ps, t, o, false, false);
            continue;
        }
        lp2p__ps_backoff *b = lp2p__gs_backoff_find(t, p);
        if (b && b->until > now) {
            lp2p_peer_id_str(&p->id, id, sizeof id);
            LP2P__INFO(ps->ctx, "pubsub: GRAFT from %s on '%s' during its backoff: penalised", id, t->name);
            lp2p__score_penalty(ps, p, 1);
            /* a GRAFT right after our PRUNE is a flood: one more (go: GraftFloodThreshold) */
            if (now < b->until - ps->cfg.prune_backoff_ms + ps->cfg.graft_flood_threshold_ms) lp2p__score_penalty(ps, p, 1);
            lp2p__gs_prune(ps, t, o, false, false);
            continue;
        }
        if (lp2p__score(ps, p) < 0) px = false;
        if (!px || (t->n_mesh >= ps->cfg.d_hi && !p->outbound)) {
            lp2p__gs_prune(ps, t, o, px, false);
            continue;
        }
        if (lp2p__gs_arr_add(ps, &t->mesh, &t->n_mesh, &t->cap_mesh, p)) lp2p__score_graft(ps, p, t);
    }
}

/* The peer record in a PX entry: verified, then its addresses go to the peerstore. */
typedef struct lp2p__gs_rec {
    lp2p_host *h;
    lp2p_peer_id id;
    uint8_t pid[64];
    size_t pid_len;
} lp2p__gs_rec;

static bool lp2p__gs_rec_addr(pb_istream_t *st, const pb_field_t *f, void **arg) {
    lp2p__gs_rec *r = (lp2p__gs_rec *)*arg;
    lp2p__ma ma;
    (void)f;
    if (st->bytes_left <= LP2P__MA_MAX && lp2p__ma_from_bytes((const uint8_t *)st->state, st->bytes_left, &ma, NULL) == LP2P_OK &&
        lp2p__ma_is_tcp(&ma))
        lp2p__peerstore_add_addr(r->h, &r->id, &ma, 2 * 60 * 1000); /* go: TempAddrTTL */
    return pb_read(st, NULL, st->bytes_left);
}

static bool lp2p__gs_rec_info(pb_istream_t *st, const pb_field_t *f, void **arg) {
    lp2p_pb_PeerRecord_AddressInfo ai;
    (void)f;
    ai.multiaddr.funcs.decode = lp2p__gs_rec_addr, ai.multiaddr.arg = *arg;
    return pb_decode(st, lp2p_pb_PeerRecord_AddressInfo_fields, &ai);
}

static bool lp2p__gs_rec_pid(pb_istream_t *st, const pb_field_t *f, void **arg) {
    lp2p__gs_rec *r = (lp2p__gs_rec *)*arg;
    (void)f;
    if (st->bytes_left > sizeof r->pid) return false;
    r->pid_len = st->bytes_left;
    return pb_read(st, r->pid, st->bytes_left);
}

static void lp2p__gs_px_record(lp2p_pubsub *ps, const lp2p_peer_id *peer, const lp2p__ps_slice *env) {
    const uint8_t *payload;
    size_t plen;
    lp2p_peer_id signer, rid;
    static const uint8_t type[2] = {0x03, 0x01};
    if (lp2p__envelope_open(env->p, env->n, "libp2p-peer-record", type, 2, &payload, &plen, &signer) ||
        !lp2p_peer_id_eq(&signer, peer))
        return;
    lp2p__gs_rec r;
    lp2p_pb_PeerRecord m;
    memset(&r, 0, sizeof r);
    memset(&m, 0, sizeof m);
    r.h = ps->h, r.id = *peer;
    m.peer_id.funcs.decode = lp2p__gs_rec_pid, m.peer_id.arg = &r;
    pb_istream_t st = pb_istream_from_buffer(payload, plen);
    /* check the record's peer ID before its addresses land in the peerstore: decode twice */
    if (!pb_decode(&st, lp2p_pb_PeerRecord_fields, &m) || lp2p__peer_id_from_bytes(r.pid, r.pid_len, &rid) ||
        !lp2p_peer_id_eq(&rid, peer))
        return;
    memset(&m, 0, sizeof m);
    m.addresses.funcs.decode = lp2p__gs_rec_info, m.addresses.arg = &r;
    st = pb_istream_from_buffer(payload, plen);
    if (!pb_decode(&st, lp2p_pb_PeerRecord_fields, &m)) return;
}

/* Peer exchange: connect to (at most prune_peers of) the peers a PRUNE offered (go pxConnect). */
static void lp2p__gs_px_connect(lp2p_pubsub *ps, const lp2p__ps_rpc *r, const lp2p__ps_rpc_ctl *c) {
    int limit = LP2P__MIN(c->n_px, ps->cfg.prune_peers);
    for (int i = 0; i < limit; i++) {
        const lp2p__ps_rpc_px *x = &r->px[c->first_px + i];
        lp2p_peer_id id;
        if (lp2p__peer_id_from_bytes(x->peer_id.p, x->peer_id.n, &id) != LP2P_OK) continue;
        if (lp2p__swarm_find_conn(ps->h, &id) || lp2p_peer_id_eq(&id, &ps->h->identity.id)) continue;
        if (x->record.n) lp2p__gs_px_record(ps, &id, &x->record);
        lp2p__peer *known = lp2p__peerstore_get(ps->h, &id, false);
        if (!known || !known->n_addrs) continue; /* nowhere to dial (go skips too) */
        ps->stats.px_connects++;
        lp2p__ps_connect_async(ps, &id);
    }
}

static void lp2p__gs_handle_prune(lp2p_pubsub *ps, lp2p__ps_peer *p, const lp2p__ps_rpc *r) {
    for (int i = 0; i < r->n_ctl; i++) {
        const lp2p__ps_rpc_ctl *c = &r->ctl[i];
        if (c->kind != LP2P__PS_CTL_PRUNE) continue;
        ps->stats.prune_in++;
        lp2p__ps_topic *t = lp2p__gs_ctl_topic(ps, c);
        if (!t) continue;
        if (lp2p__gs_arr_del(t->mesh, &t->n_mesh, p)) lp2p__score_prune(ps, p, t);
        uint64_t secs = c->has_backoff ? LP2P__MIN(c->backoff, (uint64_t)LP2P__GS_MAX_BACKOFF_S) : 0;
        lp2p__gs_add_backoff(ps, t, p, secs ? (int64_t)secs * 1000 : ps->cfg.prune_backoff_ms);
        LP2P__DEBUG(ps->ctx, "pubsub: PRUNE on '%s', backoff %llu s, %d peers offered", t->name, (unsigned long long)secs, c->n_px);
        if (c->n_px && !ps->cfg.no_px) {
            if (lp2p__score(ps, p) < ps->th.accept_px) {
                LP2P__DEBUG(ps->ctx, "pubsub: PRUNE with peer exchange from a peer scoring below accept_px: ignored");
                continue;
            }
            lp2p__gs_px_connect(ps, r, c);
        }
    }
}

static void lp2p__gs_handle_idontwant(lp2p_pubsub *ps, lp2p__ps_peer *p, const lp2p__ps_rpc *r) {
    uint8_t d[LP2P__PS_DIGEST];
    int total = 0;
    bool counted = false;
    for (int i = 0; i < r->n_ctl; i++) {
        const lp2p__ps_rpc_ctl *c = &r->ctl[i];
        if (c->kind != LP2P__PS_CTL_IDONTWANT) continue;
        ps->stats.idontwant_in++;
        if (!counted && ++p->idontwant_in > ps->cfg.max_idontwant_messages) {
            LP2P__DEBUG(ps->ctx, "pubsub: IDONTWANT flood: max_idontwant_messages reached, ignored");
            return;
        }
        counted = true;
        for (int k = 0; k < c->n_ids && total < ps->cfg.max_idontwant_length; k++, total++) {
            lp2p__ps_digest(ps, r->ids[c->first_id + k].p, r->ids[c->first_id + k].n, d);
            lp2p__ps_idset_add(ps->ctx, &p->dontwant, d, (int64_t)ps->heartbeats + ps->cfg.idontwant_ttl, NULL);
        }
    }
}

LP2P__PRIV void lp2p__gs_handle_control(lp2p_pubsub *ps, lp2p__ps_peer *p, const lp2p__ps_rpc *r) {
    lp2p__gs_out o = {p, {0, 0, 0}};
    bool gossip = lp2p__score(ps, p) >= ps->th.gossip; /* below: no gossip either way */
    if (gossip) lp2p__gs_handle_ihave(ps, p, r, &o);
    if (gossip) lp2p__gs_handle_iwant(ps, p, r);
    lp2p__gs_handle_graft(ps, p, r, &o);
    lp2p__gs_handle_prune(ps, p, r);
    lp2p__gs_handle_idontwant(ps, p, r);
    lp2p__gs_flush(ps, &o);
    lp2p__buf_free(ps->ctx, &o.ctl);
}

/* ---- IDONTWANT (v1.2): tell the mesh at once that we have a large message ------------------------------- */
LP2P__PRIV void lp2p__gs_preprocess(lp2p_pubsub *ps, lp2p__ps_peer *from, lp2p__ps_topic *t, const uint8_t *id,
                                    size_t id_len, size_t data_len) {
    if (ps->cfg.idontwant_threshold < 0 || data_len < (size_t)ps->cfg.idontwant_threshold) return;
    lp2p__ps_slice s = {id, id_len};
    for (int i = 0; i < t->n_mesh; i++) {
        lp2p__ps_peer *p = t->mesh[i];
        if (p == from || p->proto < LP2P__PS_PROTO_MESH12) continue;
        lp2p__gs_out o = {p, {0, 0, 0}};
        lp2p__gs_put_ids(ps, &o, 5, NULL, &s, 1);
        lp2p__buf rpc = {0, 0, 0};
        if (lp2p__pb_put_bytes(ps->ctx, &rpc, 3, o.ctl.p, o.ctl.len) == LP2P_OK &&
            lp2p__ps_send(p, rpc.p, rpc.len, true, true) == LP2P_OK)
            ps->stats.idontwant_out++;
        lp2p__buf_free(ps->ctx, &rpc);
        lp2p__buf_free(ps->ctx, &o.ctl);
    }
}

/* ---- forwarding ------------------------------------------------------------------------------------------ */
static bool lp2p__gs_skip(lp2p__ps_peer *p, const lp2p__ps_msg *m, const lp2p__ps_peer *from) {
    return p == from || !lp2p__ps_peer_active(p) || (m->from.len && lp2p_peer_id_eq(&p->id, &m->from)) ||
           lp2p__ps_idset_find(&p->dontwant, m->digest);
}

static int lp2p__gs_send_to(lp2p_pubsub *ps, lp2p__ps_peer **v, int n, const lp2p__ps_msg *m, const lp2p__ps_peer *from) {
    int count = 0;
    (void)ps;
    for (int i = 0; i < n; i++)
        if (!lp2p__gs_skip(v[i], m, from) && lp2p__ps_send_msg(v[i], m) == LP2P_OK) count++;
    return count;
}

LP2P__PRIV int lp2p__gs_forward(lp2p_pubsub *ps, lp2p__ps_topic *t, lp2p__ps_msg *m, lp2p__ps_peer *from, bool own) {
    lp2p__ps_peer **v = (lp2p__ps_peer **)lp2p__alloc(ps->ctx, sizeof *v * (size_t)(ps->n_peers + 1));
    int n = 0;
    if (!v) return 0;
    bool flood = ps->cfg.floodsub || (own && !ps->cfg.no_flood_publish);
    for (lp2p__ps_peer *p = ps->peers; p; p = p->next) {
        if (!lp2p__ps_peer_active(p) || !lp2p__ps_peer_in_topic(p, t)) continue;
        bool floodsub_peer = p->proto == LP2P__PS_PROTO_FLOOD;
        double score = ps->cfg.floodsub ? 0 : lp2p__score(ps, p);
        if (p->direct || ((flood || floodsub_peer) && score >= ps->th.publish)) v[n++] = p;
    }
    if (!flood) {
        if (t->joined) {
            for (int i = 0; i < t->n_mesh; i++)
                if (!lp2p__gs_arr_has(v, n, t->mesh[i])) v[n++] = t->mesh[i];
        } else if (own) { /* publishing to a topic we did not join: the fanout */
            if (!t->n_fanout) {
                int k = 0;
                lp2p__ps_peer **c = lp2p__gs_select(ps, t, lp2p__gs_fanout_ok, NULL, &k);
                for (int i = 0; c && i < k && t->n_fanout < ps->cfg.d; i++)
                    lp2p__gs_arr_add(ps, &t->fanout, &t->n_fanout, &t->cap_fanout, c[i]);
                lp2p__gs_select_free(ps, c);
            }
            t->fanout_last_pub = lp2p_now();
            for (int i = 0; i < t->n_fanout; i++)
                if (!lp2p__gs_arr_has(v, n, t->fanout[i])) v[n++] = t->fanout[i];
        }
    }
    int count = lp2p__gs_send_to(ps, v, n, m, from);
    lp2p__free(ps->ctx, v, sizeof *v * (size_t)(ps->n_peers + 1));
    return count;
}

/* ---- heartbeat -------------------------------------------------------------------------------------------- */
typedef struct lp2p__gs_scored {
    lp2p__ps_peer *p;
    double score;
} lp2p__gs_scored;

static int lp2p__gs_by_score_desc(const void *a, const void *b) {
    double x = ((const lp2p__gs_scored *)a)->score, y = ((const lp2p__gs_scored *)b)->score;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* The heartbeat's control messages, one builder per peer (flushed at the end). */
typedef struct lp2p__gs_hb {
    lp2p__gs_out *out;
    int n;
} lp2p__gs_hb;

static lp2p__gs_out *lp2p__gs_hb_out(lp2p__gs_hb *hb, lp2p__ps_peer *p) {
    for (int i = 0; i < hb->n; i++)
        if (hb->out[i].p == p) return &hb->out[i];
    return NULL; /* every peer has a slot (allocated per heartbeat) */
}

/* Mesh larger than d_hi: keep the d_score best, fill up to d at random, keep d_out outbound
 * peers among the d (go heartbeat), prune the rest with peer exchange. */
static void lp2p__gs_trim_mesh(lp2p_pubsub *ps, lp2p__ps_topic *t, lp2p__gs_hb *hb) {
    int n = t->n_mesh, d = ps->cfg.d;
    lp2p__gs_scored *v = (lp2p__gs_scored *)lp2p__alloc(ps->ctx, sizeof *v * (size_t)n);
    if (!v) return;
    lp2p__gs_shuffle(ps, (void **)t->mesh, n);
    for (int i = 0; i < n; i++) v[i].p = t->mesh[i], v[i].score = lp2p__score(ps, t->mesh[i]);
    qsort(v, (size_t)n, sizeof *v, lp2p__gs_by_score_desc);
    for (int i = n - 1; i > ps->cfg.d_score; i--) { /* shuffle the tail after the best d_score */
        int j = ps->cfg.d_score + (int)(lp2p__gs_rand(ps) % (uint64_t)(i - ps->cfg.d_score + 1));
        lp2p__gs_scored tmp = v[i];
        v[i] = v[j], v[j] = tmp;
    }
    int outbound = 0;
    for (int i = 0; i < d; i++) outbound += v[i].p->outbound;
    for (int i = d; i < n && outbound < ps->cfg.d_out; i++) { /* bubble outbound peers into the first d */
        if (!v[i].p->outbound) continue;
        for (int j = d - 1; j >= 0; j--)
            if (!v[j].p->outbound) {
                lp2p__gs_scored tmp = v[i];
                v[i] = v[j], v[j] = tmp;
                outbound++;
                break;
            }
    }
    for (int i = d; i < n; i++) lp2p__gs_prune(ps, t, lp2p__gs_hb_out(hb, v[i].p), true, false);
    lp2p__free(ps->ctx, v, sizeof *v * (size_t)n);
}

static void lp2p__gs_graft_some(lp2p_pubsub *ps, lp2p__ps_topic *t, lp2p__gs_hb *hb, lp2p__gs_filter f, void *arg, int want) {
    int n = 0;
    lp2p__ps_peer **v = lp2p__gs_select(ps, t, f, arg, &n);
    for (int i = 0; v && i < n && want > 0; i++, want--) lp2p__gs_graft(ps, t, lp2p__gs_hb_out(hb, v[i]));
    lp2p__gs_select_free(ps, v);
}

static double lp2p__gs_median_score(lp2p_pubsub *ps, lp2p__ps_topic *t) {
    int n = t->n_mesh;
    lp2p__gs_scored *v = (lp2p__gs_scored *)lp2p__alloc(ps->ctx, sizeof *v * (size_t)n);
    if (!v) return 0;
    for (int i = 0; i < n; i++) v[i].p = t->mesh[i], v[i].score = lp2p__score(ps, t->mesh[i]);
    qsort(v, (size_t)n, sizeof *v, lp2p__gs_by_score_desc);
    double med = n % 2 ? v[n / 2].score : (v[n / 2 - 1].score + v[n / 2].score) / 2;
    lp2p__free(ps->ctx, v, sizeof *v * (size_t)n);
    return med;
}

static void lp2p__gs_maintain_mesh(lp2p_pubsub *ps, lp2p__ps_topic *t, lp2p__gs_hb *hb) {
    for (int i = 0; i < t->n_mesh;) { /* negative scores leave (no peer exchange for them) */
        lp2p__ps_peer *p = t->mesh[i];
        if (!lp2p__ps_peer_active(p) || !lp2p__ps_peer_in_topic(p, t)) {
            lp2p__gs_arr_del(t->mesh, &t->n_mesh, p);
            lp2p__score_prune(ps, p, t);
        } else if (lp2p__score(ps, p) < 0) {
            lp2p__gs_prune(ps, t, lp2p__gs_hb_out(hb, p), false, false);
        } else {
            i++;
        }
    }
    if (t->n_mesh < ps->cfg.d_lo) lp2p__gs_graft_some(ps, t, hb, lp2p__gs_can_graft, NULL, ps->cfg.d - t->n_mesh);
    if (t->n_mesh > ps->cfg.d_hi) lp2p__gs_trim_mesh(ps, t, hb);
    if (t->n_mesh >= ps->cfg.d_lo && ps->cfg.d_out) { /* keep the outbound quota */
        int outbound = 0;
        for (int i = 0; i < t->n_mesh; i++) outbound += t->mesh[i]->outbound;
        if (outbound < ps->cfg.d_out) lp2p__gs_graft_some(ps, t, hb, lp2p__gs_can_graft_out, NULL, ps->cfg.d_out - outbound);
    }
    if (ps->heartbeats % (uint64_t)ps->cfg.opportunistic_graft_ticks == 0 && t->n_mesh > 1 && !ps->cfg.no_scoring) {
        double med = lp2p__gs_median_score(ps, t);
        if (med < ps->th.opportunistic_graft)
            lp2p__gs_graft_some(ps, t, hb, lp2p__gs_can_graft_above, &med, ps->cfg.opportunistic_graft_peers);
    }
}

static void lp2p__gs_maintain_fanout(lp2p_pubsub *ps, lp2p__ps_topic *t, int64_t now) {
    if (!t->fanout_last_pub) return;
    if (t->fanout_last_pub + ps->cfg.fanout_ttl_ms < now) {
        t->n_fanout = 0, t->fanout_last_pub = 0;
        return;
    }
    for (int i = 0; i < t->n_fanout;) {
        lp2p__ps_peer *p = t->fanout[i];
        if (!lp2p__ps_peer_active(p) || !lp2p__ps_peer_in_topic(p, t) || lp2p__score(ps, p) < ps->th.publish)
            t->fanout[i] = t->fanout[--t->n_fanout];
        else
            i++;
    }
    if (t->n_fanout < ps->cfg.d) {
        int n = 0;
        lp2p__ps_peer **v = lp2p__gs_select(ps, t, lp2p__gs_fanout_ok, NULL, &n);
        for (int i = 0; v && i < n && t->n_fanout < ps->cfg.d; i++)
            lp2p__gs_arr_add(ps, &t->fanout, &t->n_fanout, &t->cap_fanout, v[i]);
        lp2p__gs_select_free(ps, v);
    }
}

/* IHAVE the topic's recent message IDs to max(d_lazy, gossip_factor x eligible) non-mesh peers. */
static void lp2p__gs_emit_gossip(lp2p_pubsub *ps, lp2p__ps_topic *t, lp2p__gs_hb *hb) {
    lp2p__ps_mcache *c = &ps->mcache;
    lp2p__ps_slice *ids = NULL;
    int n = 0, cap = 0;
    for (int w = 0; w < ps->cfg.history_gossip && w < c->len; w++)
        for (int i = 0; i < c->n[w]; i++) {
            lp2p__ps_msg *m = c->win[w][i];
            if (m->topic_len != t->name_len || memcmp(m->topic, t->name, t->name_len)) continue;
            if (n == cap) {
                int ncap = cap ? cap * 2 : 64;
                void *np = lp2p__realloc(ps->ctx, ids, sizeof *ids * (size_t)cap, sizeof *ids * (size_t)ncap);
                if (!np) goto done;
                ids = (lp2p__ps_slice *)np, cap = ncap;
            }
            ids[n].p = m->id, ids[n++].n = m->id_len;
        }
    if (!n) goto done;
    int k = 0;
    lp2p__ps_peer **v = lp2p__gs_select(ps, t, lp2p__gs_gossip_ok, NULL, &k);
    int target = LP2P__MAX(ps->cfg.d_lazy, (int)(ps->cfg.gossip_factor * k));
    for (int i = 0; v && i < k && i < target; i++) {
        int m = n;
        if (m > ps->cfg.max_ihave_length) { /* a random subset */
            for (int a = 0; a < ps->cfg.max_ihave_length; a++) {
                int b = a + (int)(lp2p__gs_rand(ps) % (uint64_t)(n - a));
                lp2p__ps_slice tmp = ids[a];
                ids[a] = ids[b], ids[b] = tmp;
            }
            m = ps->cfg.max_ihave_length;
        }
        lp2p__gs_put_ids(ps, lp2p__gs_hb_out(hb, v[i]), 1, t, ids, m);
        ps->stats.ihave_out++;
    }
    lp2p__gs_select_free(ps, v);
done:
    lp2p__free(ps->ctx, ids, sizeof *ids * (size_t)cap);
}

static void lp2p__gs_heartbeat(lp2p_pubsub *ps) {
    int64_t now = lp2p_now();
    lp2p__gs_hb hb = {NULL, 0};
    ps->heartbeats++;
    if (ps->cfg.floodsub) { /* floodsub: only the seen cache ages */
        lp2p__ps_idset_expire(&ps->seen, now);
        return;
    }
    hb.out = (lp2p__gs_out *)lp2p__zalloc(ps->ctx, sizeof *hb.out * (size_t)(ps->n_peers + 1));
    if (!hb.out) return;
    for (lp2p__ps_peer *p = ps->peers; p; p = p->next) {
        hb.out[hb.n++].p = p;
        p->ihave_in = p->iasked = p->idontwant_in = p->iwant_served = 0;
        lp2p__ps_idset_expire(&p->dontwant, (int64_t)ps->heartbeats);
    }
    lp2p__gs_promises_check(ps, now);
    lp2p__score_decay(ps);
    for (lp2p__ps_topic *t = ps->topics; t; t = t->next) {
        if (t->joined) lp2p__gs_maintain_mesh(ps, t, &hb);
        else lp2p__gs_maintain_fanout(ps, t, now);
        if (t->joined || t->fanout_last_pub) lp2p__gs_emit_gossip(ps, t, &hb);
        if (ps->heartbeats % 15 == 0) lp2p__gs_expire_backoff(t, now);
    }
    for (int i = 0; i < hb.n; i++) {
        lp2p__gs_flush(ps, &hb.out[i]);
        lp2p__buf_free(ps->ctx, &hb.out[i].ctl);
    }
    lp2p__free(ps->ctx, hb.out, sizeof *hb.out * (size_t)(ps->n_peers + 1));
    for (lp2p__ps_topic *t = ps->topics, *next; t; t = next) {
        next = t->next;
        lp2p__ps_topic_maybe_free(ps, t);
    }
    lp2p__gs_mcache_shift(ps);
    lp2p__ps_idset_expire(&ps->seen, now);
    if (ps->n_direct && (ps->heartbeats == 1 || ps->heartbeats % LP2P__GS_DIRECT_TICKS == 0))
        for (int i = 0; i < ps->n_direct; i++) {
            lp2p_peer_id id;
            if (lp2p__ma_split_p2p(&ps->direct[i], NULL, &id)) lp2p__ps_connect_async(ps, &id);
        }
}

static void lp2p__gs_heartbeat_task(void *arg) {
    lp2p_pubsub *ps = (lp2p_pubsub *)arg;
    int64_t next = lp2p_deadline_in(ps->cfg.heartbeat_initial_delay_ms);
    while (lp2p__sleep_until(ps->h->sched, next) == LP2P_OK && !ps->closing) {
        lp2p__gs_heartbeat(ps);
        next += ps->cfg.heartbeat_ms;
        if (next < lp2p_now()) next = lp2p_deadline_in(ps->cfg.heartbeat_ms); /* we fell behind: do not burst */
    }
}

LP2P__PRIV int lp2p__gs_init(lp2p_pubsub *ps) {
    lp2p__ps_mcache *c = &ps->mcache;
    lp2p__random(&ps->rng, sizeof ps->rng);
    ps->rng |= 1;
    c->len = ps->cfg.history_length;
    c->win = (lp2p__ps_msg ***)lp2p__zalloc(ps->ctx, sizeof *c->win * (size_t)c->len);
    c->n = (int *)lp2p__zalloc(ps->ctx, sizeof *c->n * (size_t)c->len);
    c->cap = (int *)lp2p__zalloc(ps->ctx, sizeof *c->cap * (size_t)c->len);
    if (!c->win || !c->n || !c->cap) return LP2P_ERR_NOMEM;
    ps->last_decay = lp2p_now();
    ps->heartbeat_task = lp2p__spawn(ps->h->sched, lp2p__gs_heartbeat_task, ps);
    return ps->heartbeat_task.id ? LP2P_OK : LP2P_ERR_LIMIT;
}

LP2P__PRIV void lp2p__gs_free(lp2p_pubsub *ps) {
    lp2p__ps_mcache *c = &ps->mcache;
    for (int w = 0; c->win && w < c->len; w++) {
        for (int i = 0; i < c->n[w]; i++) lp2p__ps_msg_unref(c->win[w][i]);
        lp2p__free(ps->ctx, c->win[w], sizeof *c->win[w] * (size_t)c->cap[w]);
    }
    lp2p__free(ps->ctx, c->win, sizeof *c->win * (size_t)c->len);
    lp2p__free(ps->ctx, c->n, sizeof *c->n * (size_t)c->len);
    lp2p__free(ps->ctx, c->cap, sizeof *c->cap * (size_t)c->len);
    lp2p__ps_idset_free(ps->ctx, &c->index);
    lp2p__free(ps->ctx, ps->promises, sizeof *ps->promises * (size_t)ps->cap_promises);
    memset(c, 0, sizeof *c);
}
/*==================== end src/gossipsub.c ====================*/
/*==================== begin src/pubsub_score.c ====================*/
/* pubsub_score.c - L7: gossipsub v1.1 peer scoring (P1-P7, decay, retention).
 *
 * Spec: libp2p/specs pubsub/gossipsub/gossipsub-v1.1.md "Peer Scoring": the score is
 *   sum over topics of topic_weight * (P1 w1 + P2 w2 + P3 w3 + P3b w3b + P4 w4)  (capped)
 *   + P5 w5 + P6 w6 + P7 w7
 * with P1 time in mesh, P2 first message deliveries, P3 squared mesh delivery deficit, P3b
 * mesh failure penalty, P4 squared invalid messages, P5 application score, P6 squared IP
 * colocation surplus, P7 squared behaviour penalty above its threshold. Counters decay once per
 * decay interval; a disconnected peer's record is kept retain_score_ms (unless its score was
 * positive), so reconnecting does not wash a bad score. Semantics follow go-libp2p-pubsub
 * score.go. Stats are kept for topics we joined (the only ones whose messages we accept).
 * Depends on: pubsub.h. */
// (amalgamated) #include "pubsub.h"

typedef struct lp2p__ps_tstats {
    lp2p__ps_topic *t;
    bool in_mesh, mesh_active;
    int64_t graft_time, mesh_time;
    double first_deliveries, mesh_deliveries, mesh_failure_penalty, invalid_deliveries;
} lp2p__ps_tstats;

struct lp2p__ps_pstats {
    lp2p_peer_id id;
    bool connected;
    int64_t expire;
    lp2p__ps_tstats *topics;
    int n_topics, cap_topics;
    double behaviour_penalty;
    struct lp2p__ps_pstats *next;
};

LP2P_API void lp2p_pubsub_score_defaults(lp2p_pubsub_score_params *p, lp2p_pubsub_score_thresholds *t) {
    if (p) {
        memset(p, 0, sizeof *p);
        lp2p_pubsub_topic_score_params *tp = &p->topic_defaults;
        tp->topic_weight = 1;
        tp->time_in_mesh_weight = 0.01, tp->time_in_mesh_quantum_ms = 1000, tp->time_in_mesh_cap = 300;
        tp->first_message_deliveries_weight = 1, tp->first_message_deliveries_decay = 0.5;
        tp->first_message_deliveries_cap = 10;
        tp->mesh_message_deliveries_decay = 0.5, tp->mesh_message_deliveries_cap = 100;
        tp->mesh_message_deliveries_threshold = 1, tp->mesh_message_deliveries_window_ms = 10;
        tp->mesh_message_deliveries_activation_ms = 5000;
        tp->mesh_failure_penalty_decay = 0.5;
        tp->invalid_message_deliveries_weight = -10, tp->invalid_message_deliveries_decay = 0.99;
        p->app_specific_weight = 1;
        p->ip_colocation_factor_weight = 0, p->ip_colocation_factor_threshold = 10;
        p->behaviour_penalty_weight = -10, p->behaviour_penalty_threshold = 3, p->behaviour_penalty_decay = 0.9;
        p->decay_interval_ms = 1000, p->decay_to_zero = 0.01, p->retain_score_ms = 120000;
    }
    if (t) {
        t->gossip = -10, t->publish = -50, t->graylist = -80;
        t->accept_px = 10, t->opportunistic_graft = 5;
    }
}

static bool lp2p__decay_ok(double w, double decay) { return w == 0 || (decay > 0 && decay < 1); }

LP2P__PRIV int lp2p__score_check_topic_params(const lp2p_pubsub_topic_score_params *p) {
    bool ok = p->topic_weight >= 0 && p->time_in_mesh_weight >= 0 &&
              (p->time_in_mesh_weight == 0 || (p->time_in_mesh_quantum_ms > 0 && p->time_in_mesh_cap > 0)) &&
              p->first_message_deliveries_weight >= 0 &&
              lp2p__decay_ok(p->first_message_deliveries_weight, p->first_message_deliveries_decay) &&
              p->mesh_message_deliveries_weight <= 0 &&
              lp2p__decay_ok(p->mesh_message_deliveries_weight, p->mesh_message_deliveries_decay) &&
              (p->mesh_message_deliveries_weight == 0 ||
               (p->mesh_message_deliveries_threshold > 0 && p->mesh_message_deliveries_window_ms >= 0 &&
                p->mesh_message_deliveries_activation_ms >= 0)) &&
              p->mesh_failure_penalty_weight <= 0 &&
              lp2p__decay_ok(p->mesh_failure_penalty_weight, p->mesh_failure_penalty_decay) &&
              p->invalid_message_deliveries_weight <= 0 &&
              lp2p__decay_ok(p->invalid_message_deliveries_weight, p->invalid_message_deliveries_decay);
    return ok ? LP2P_OK : LP2P_ERR_INVALID;
}

static bool lp2p__score_on(const lp2p_pubsub *ps) { return !ps->cfg.floodsub && !ps->cfg.no_scoring; }

static const lp2p_pubsub_topic_score_params *lp2p__tparams(const lp2p_pubsub *ps, const lp2p__ps_topic *t) {
    return t->score ? t->score : &ps->sp.topic_defaults;
}

static lp2p__ps_tstats *lp2p__tstats(lp2p_pubsub *ps, lp2p__ps_peer *p, lp2p__ps_topic *t, bool create) {
    lp2p__ps_pstats *st = p->st;
    if (!st || !lp2p__score_on(ps)) return NULL;
    for (int i = 0; i < st->n_topics; i++)
        if (st->topics[i].t == t) return &st->topics[i];
    if (!create || !t->joined) return NULL;
    if (st->n_topics == st->cap_topics) {
        int ncap = st->cap_topics ? st->cap_topics * 2 : 4;
        void *np = lp2p__realloc(ps->ctx, st->topics, sizeof *st->topics * (size_t)st->cap_topics,
                                 sizeof *st->topics * (size_t)ncap);
        if (!np) return NULL;
        st->topics = (lp2p__ps_tstats *)np, st->cap_topics = ncap;
    }
    lp2p__ps_tstats *ts = &st->topics[st->n_topics++];
    memset(ts, 0, sizeof *ts);
    ts->t = t;
    return ts;
}

static double lp2p__topic_score(const lp2p__ps_tstats *ts, const lp2p_pubsub_topic_score_params *tp) {
    double s = 0;
    if (ts->in_mesh && tp->time_in_mesh_weight != 0) { /* P1 */
        double p1 = (double)ts->mesh_time / tp->time_in_mesh_quantum_ms;
        s += LP2P__MIN(p1, tp->time_in_mesh_cap) * tp->time_in_mesh_weight;
    }
    s += ts->first_deliveries * tp->first_message_deliveries_weight; /* P2 (capped when counted) */
    if (ts->mesh_active && ts->mesh_deliveries < tp->mesh_message_deliveries_threshold) { /* P3 */
        double deficit = tp->mesh_message_deliveries_threshold - ts->mesh_deliveries;
        s += deficit * deficit * tp->mesh_message_deliveries_weight;
    }
    s += ts->mesh_failure_penalty * tp->mesh_failure_penalty_weight;                    /* P3b */
    s += ts->invalid_deliveries * ts->invalid_deliveries * tp->invalid_message_deliveries_weight; /* P4 */
    return s * tp->topic_weight;
}

LP2P__PRIV double lp2p__score(lp2p_pubsub *ps, lp2p__ps_peer *p) {
    lp2p__ps_pstats *st = p->st;
    if (!st || !lp2p__score_on(ps)) return 0;
    double s = 0;
    for (int i = 0; i < st->n_topics; i++) s += lp2p__topic_score(&st->topics[i], lp2p__tparams(ps, st->topics[i].t));
    if (ps->sp.topic_score_cap > 0 && s > ps->sp.topic_score_cap) s = ps->sp.topic_score_cap;
    if (ps->sp.app_specific_score) s += ps->sp.app_specific_score(&p->id, ps->sp.app_specific_user) * ps->sp.app_specific_weight;
    if (ps->sp.ip_colocation_factor_weight != 0 && p->ip[0]) { /* P6 */
        int same = 0;
        for (lp2p__ps_peer *x = ps->peers; x; x = x->next) same += strcmp(x->ip, p->ip) == 0;
        if (same > ps->sp.ip_colocation_factor_threshold) {
            double surplus = same - ps->sp.ip_colocation_factor_threshold;
            s += surplus * surplus * ps->sp.ip_colocation_factor_weight;
        }
    }
    if (st->behaviour_penalty > ps->sp.behaviour_penalty_threshold) { /* P7 */
        double excess = st->behaviour_penalty - ps->sp.behaviour_penalty_threshold;
        s += excess * excess * ps->sp.behaviour_penalty_weight;
    }
    return s;
}

static lp2p__ps_pstats *lp2p__pstats_find(lp2p_pubsub *ps, const lp2p_peer_id *id) {
    for (lp2p__ps_pstats *st = ps->pstats; st; st = st->next)
        if (lp2p_peer_id_eq(&st->id, id)) return st;
    return NULL;
}

LP2P__PRIV void lp2p__score_add_peer(lp2p_pubsub *ps, lp2p__ps_peer *p) {
    lp2p__ps_pstats *st = lp2p__pstats_find(ps, &p->id); /* a retained record comes back */
    if (!st) {
        st = (lp2p__ps_pstats *)lp2p__zalloc(ps->ctx, sizeof *st);
        if (!st) return;
        st->id = p->id;
        st->next = ps->pstats, ps->pstats = st;
    }
    st->connected = true;
    p->st = st;
}

static void lp2p__tstats_prune(lp2p__ps_tstats *ts, const lp2p_pubsub_topic_score_params *tp) {
    if (ts->mesh_active && ts->mesh_deliveries < tp->mesh_message_deliveries_threshold) {
        double deficit = tp->mesh_message_deliveries_threshold - ts->mesh_deliveries;
        ts->mesh_failure_penalty += deficit * deficit;
    }
    ts->in_mesh = false, ts->mesh_active = false;
}

static void lp2p__pstats_free(lp2p_pubsub *ps, lp2p__ps_pstats *st) {
    lp2p__free(ps->ctx, st->topics, sizeof *st->topics * (size_t)st->cap_topics);
    lp2p__free(ps->ctx, st, sizeof *st);
}

LP2P__PRIV void lp2p__score_remove_peer(lp2p_pubsub *ps, lp2p__ps_peer *p) {
    lp2p__ps_pstats *st = p->st;
    if (!st) return;
    double score = lp2p__score(ps, p);
    for (int i = 0; i < st->n_topics; i++)
        if (st->topics[i].in_mesh) lp2p__tstats_prune(&st->topics[i], lp2p__tparams(ps, st->topics[i].t));
    p->st = NULL;
    st->connected = false;
    st->expire = lp2p_now() + ps->sp.retain_score_ms;
    if (score > 0 || ps->closing) { /* nothing to hold against it (go forgets positive scores at once) */
        for (lp2p__ps_pstats **pp = &ps->pstats; *pp; pp = &(*pp)->next)
            if (*pp == st) {
                *pp = st->next;
                break;
            }
        lp2p__pstats_free(ps, st);
    }
}

LP2P__PRIV void lp2p__score_graft(lp2p_pubsub *ps, lp2p__ps_peer *p, lp2p__ps_topic *t) {
    lp2p__ps_tstats *ts = lp2p__tstats(ps, p, t, true);
    if (!ts) return;
    ts->in_mesh = true, ts->mesh_active = false;
    ts->graft_time = lp2p_now(), ts->mesh_time = 0;
}

LP2P__PRIV void lp2p__score_prune(lp2p_pubsub *ps, lp2p__ps_peer *p, lp2p__ps_topic *t) {
    lp2p__ps_tstats *ts = lp2p__tstats(ps, p, t, false);
    if (ts) lp2p__tstats_prune(ts, lp2p__tparams(ps, t));
}

LP2P__PRIV void lp2p__score_first_delivery(lp2p_pubsub *ps, lp2p__ps_peer *p, lp2p__ps_topic *t) {
    lp2p__ps_tstats *ts = lp2p__tstats(ps, p, t, true);
    if (!ts) return;
    const lp2p_pubsub_topic_score_params *tp = lp2p__tparams(ps, t);
    ts->first_deliveries = LP2P__MIN(ts->first_deliveries + 1, tp->first_message_deliveries_cap);
    if (ts->in_mesh) ts->mesh_deliveries = LP2P__MIN(ts->mesh_deliveries + 1, tp->mesh_message_deliveries_cap);
}

LP2P__PRIV void lp2p__score_duplicate(lp2p_pubsub *ps, lp2p__ps_peer *p, lp2p__ps_topic *t, int64_t validated_at) {
    lp2p__ps_tstats *ts = lp2p__tstats(ps, p, t, false);
    if (!ts || !ts->in_mesh) return;
    const lp2p_pubsub_topic_score_params *tp = lp2p__tparams(ps, t);
    if (lp2p_now() - validated_at <= tp->mesh_message_deliveries_window_ms) /* near-first copies count (P3) */
        ts->mesh_deliveries = LP2P__MIN(ts->mesh_deliveries + 1, tp->mesh_message_deliveries_cap);
}

LP2P__PRIV void lp2p__score_invalid(lp2p_pubsub *ps, lp2p__ps_peer *p, lp2p__ps_topic *t) {
    lp2p__ps_tstats *ts = lp2p__tstats(ps, p, t, true);
    if (ts) ts->invalid_deliveries += 1;
}

LP2P__PRIV void lp2p__score_penalty(lp2p_pubsub *ps, lp2p__ps_peer *p, double count) {
    if (p->st && lp2p__score_on(ps)) p->st->behaviour_penalty += count;
}

static double lp2p__decayed(double v, double decay, double to_zero) {
    v *= decay;
    return v < to_zero ? 0 : v;
}

/* Once per decay interval (called every heartbeat): decay counters, refresh mesh times, drop
 * expired records of disconnected peers. */
LP2P__PRIV void lp2p__score_decay(lp2p_pubsub *ps) {
    int64_t now = lp2p_now();
    if (!lp2p__score_on(ps) || now - ps->last_decay < ps->sp.decay_interval_ms) return;
    ps->last_decay = now;
    double z = ps->sp.decay_to_zero;
    for (lp2p__ps_pstats **pp = &ps->pstats; *pp;) {
        lp2p__ps_pstats *st = *pp;
        if (!st->connected && st->expire < now) {
            *pp = st->next;
            lp2p__pstats_free(ps, st);
            continue;
        }
        for (int i = 0; i < st->n_topics; i++) {
            lp2p__ps_tstats *ts = &st->topics[i];
            const lp2p_pubsub_topic_score_params *tp = lp2p__tparams(ps, ts->t);
            ts->first_deliveries = lp2p__decayed(ts->first_deliveries, tp->first_message_deliveries_decay, z);
            ts->mesh_deliveries = lp2p__decayed(ts->mesh_deliveries, tp->mesh_message_deliveries_decay, z);
            ts->mesh_failure_penalty = lp2p__decayed(ts->mesh_failure_penalty, tp->mesh_failure_penalty_decay, z);
            ts->invalid_deliveries = lp2p__decayed(ts->invalid_deliveries, tp->invalid_message_deliveries_decay, z);
            if (ts->in_mesh) {
                ts->mesh_time = now - ts->graft_time;
                if (ts->mesh_time > tp->mesh_message_deliveries_activation_ms) ts->mesh_active = true;
            }
        }
        st->behaviour_penalty = lp2p__decayed(st->behaviour_penalty, ps->sp.behaviour_penalty_decay, z);
        pp = &st->next;
    }
}

/* A topic is going away: forget the stats that point at it. */
LP2P__PRIV void lp2p__score_topic_freed(lp2p_pubsub *ps, lp2p__ps_topic *t) {
    for (lp2p__ps_pstats *st = ps->pstats; st; st = st->next)
        for (int i = 0; i < st->n_topics;)
            if (st->topics[i].t == t) st->topics[i] = st->topics[--st->n_topics];
            else i++;
}

LP2P__PRIV void lp2p__score_free(lp2p_pubsub *ps) {
    while (ps->pstats) {
        lp2p__ps_pstats *st = ps->pstats;
        ps->pstats = st->next;
        lp2p__pstats_free(ps, st);
    }
}

LP2P__PRIV int lp2p__score_lookup(lp2p_pubsub *ps, const lp2p_peer_id *id, double *out) {
    lp2p__ps_peer *p = lp2p__ps_peer_find(ps, id);
    if (p) {
        *out = lp2p__score(ps, p);
        return LP2P_OK;
    }
    lp2p__ps_pstats *st = lp2p__pstats_find(ps, id);
    if (!st || !lp2p__score_on(ps)) return LP2P_ERR_NOTFOUND;
    lp2p__ps_peer tmp; /* a retained record: score it as a peer without an address */
    memset(&tmp, 0, sizeof tmp);
    tmp.id = *id, tmp.st = st;
    *out = lp2p__score(ps, &tmp);
    return LP2P_OK;
}
/*==================== end src/pubsub_score.c ====================*/
/*==================== begin src/relay.c ====================*/
/* relay.c - L7: circuit relay v2: the client (reservations, the /p2p-circuit transport, the
 * stop handler) and the relay service (hop handler, reservations, vouchers, limited splicing).
 *
 * Spec: libp2p/specs relay/circuit-v2.md; vouchers are signed envelopes (RFC 0002, domain
 * "libp2p-relay-rsvp", payload type 03 02) of a ReservationVoucher.
 * A relayed connection is a transport: after HOP CONNECT (dialer) or STOP CONNECT (target) the
 * stream's pipe *is* the raw connection, upgraded with multistream -> Noise -> yamux like TCP
 * (lp2p__swarm_upgrade), the dialer as initiator. Such connections are limited (host.c lets only
 * the protocols of lp2p_host_allow_limited run on them).
 * Peer quirks: js relays send Limit.duration in milliseconds (120000) although the field is
 * seconds; as a client we only report limits, the relay enforces them, so nothing depends on it.
 * go relays cap messages at 4096 bytes; so do we.
 * Depends on: host.h (swarm, streams, envelopes), proto/circuit.pb.h. */
// (amalgamated) #include "host.h"

#include <pb_decode.h>
#include <pb_encode.h>
#include <time.h>

#define LP2P__HOP_PROTO "/libp2p/circuit/relay/0.2.0/hop"
#define LP2P__STOP_PROTO "/libp2p/circuit/relay/0.2.0/stop"
#define LP2P__RELAY_MSG_MAX 4096
#define LP2P__RELAY_MAX_ADDRS 8       /* addresses we keep from one message */
#define LP2P__RELAY_STREAM_MS 30000   /* hop/stop message exchange (go: connect timeout 30 s) */
#define LP2P__RELAY_COPY_BUF 16384
#define LP2P__RSVP_DOMAIN "libp2p-relay-rsvp"
static const uint8_t lp2p__rsvp_type[2] = {0x03, 0x02};

/* ---- state ---------------------------------------------------------------------------------- */
typedef struct lp2p__rsvp_in { /* relay service: a reservation we granted */
    lp2p_peer_id peer;
    lp2p__conn *conn; /* the reserving connection (no reference: dropped when it closes) */
    int64_t expires;  /* lp2p_now() ms */
    struct lp2p__rsvp_in *next;
} lp2p__rsvp_in;

typedef struct lp2p__rsvp_out { /* client: a reservation we hold (and refresh) */
    lp2p__relay *r;
    lp2p_peer_id relay;
    char *relay_addr; /* what the app passed: reconnects use it */
    lp2p__ma circuits[LP2P__RELAY_MAX_ADDRS]; /* "<relay addr>/p2p/<relay>/p2p-circuit" */
    int n_circuits;
    bool active, released;
    int64_t refresh_at;
    lp2p_task task;
    lp2p__waitq wake;
    struct lp2p__rsvp_out *next;
} lp2p__rsvp_out;

typedef struct lp2p__splice lp2p__splice;
typedef struct lp2p__splice_dir {
    lp2p__splice *sp;
    int from; /* reads pipe[from], writes pipe[1 - from] */
} lp2p__splice_dir;
struct lp2p__splice { /* relay service: one relayed connection, two copier tasks */
    lp2p__relay *r;
    lp2p__pipe *pipe[2]; /* [0] the dialer's hop stream, [1] the target's stop stream */
    lp2p_peer_id peer[2];
    lp2p__splice_dir dir[2];
    lp2p_task task[2];
    int64_t end;    /* duration limit (lp2p_now ms) or LP2P_FOREVER */
    uint64_t limit; /* bytes per direction, 0 = none */
    int live;
    bool failed;
    struct lp2p__splice *next;
};

struct lp2p__relay {
    lp2p_host *h;
    lp2p__notifee notifee;
    lp2p__transport transport;
    bool serving;
    lp2p_relay_config cfg; /* resolved */
    lp2p__rsvp_in *rsvps;
    int n_rsvps;
    lp2p__splice *splices;
    int n_circuits;
    lp2p__rsvp_out *outs;
};

/* ---- messages ------------------------------------------------------------------------------- */
typedef struct lp2p__ma_list {
    lp2p__ma a[LP2P__RELAY_MAX_ADDRS];
    int n;
} lp2p__ma_list;

static bool lp2p__relay_dec_addr(pb_istream_t *st, const pb_field_t *f, void **arg) {
    lp2p__ma_list *l = (lp2p__ma_list *)*arg;
    uint8_t tmp[LP2P__MA_MAX];
    size_t n = st->bytes_left;
    (void)f;
    if (n > sizeof tmp || !l || l->n >= LP2P__RELAY_MAX_ADDRS) return pb_read(st, NULL, n); /* skip */
    if (!pb_read(st, tmp, n)) return false;
    if (lp2p__ma_from_bytes(tmp, n, &l->a[l->n], NULL) == LP2P_OK) l->n++;
    return true;
}

static bool lp2p__relay_enc_addrs(pb_ostream_t *st, const pb_field_t *f, void *const *arg) {
    const lp2p__ma_list *l = (const lp2p__ma_list *)*arg;
    for (int i = 0; l && i < l->n; i++)
        if (!pb_encode_tag_for_field(st, f) || !pb_encode_string(st, l->a[i].b, l->a[i].len)) return false;
    return true;
}

static void lp2p__relay_set_peer(lp2p_pb_Peer *p, const lp2p_peer_id *id) {
    p->has_id = true;
    p->id.size = id->len;
    memcpy(p->id.bytes, id->bytes, id->len);
}

/* Encode and write one message (fields: a nanopb descriptor and struct). */
static int lp2p__relay_send(lp2p_host *h, lp2p__pipe *p, const pb_msgdesc_t *fields, const void *msg, int64_t deadline) {
    uint8_t *buf = (uint8_t *)lp2p__alloc(&h->ctx, LP2P__RELAY_MSG_MAX);
    if (!buf) return LP2P_ERR_NOMEM;
    pb_ostream_t st = pb_ostream_from_buffer(buf, LP2P__RELAY_MSG_MAX);
    int rc = pb_encode(&st, fields, msg) ? lp2p__pipe_write_msg(&h->ctx, p, buf, st.bytes_written, deadline)
                                         : LP2P_ERR_MSGSIZE;
    lp2p__free(&h->ctx, buf, LP2P__RELAY_MSG_MAX);
    return rc;
}

/* Read and decode one message (callbacks already set in msg). ERR_PROTOCOL if malformed. */
static int lp2p__relay_recv(lp2p_host *h, lp2p__pipe *p, const pb_msgdesc_t *fields, void *msg, int64_t deadline) {
    uint8_t *buf = (uint8_t *)lp2p__alloc(&h->ctx, LP2P__RELAY_MSG_MAX);
    if (!buf) return LP2P_ERR_NOMEM;
    ptrdiff_t n = lp2p__pipe_read_msg(p, buf, LP2P__RELAY_MSG_MAX, NULL, deadline);
    int rc = n < 0 ? (int)n : LP2P_OK;
    if (rc == LP2P_OK) {
        pb_istream_t st = pb_istream_from_buffer(buf, (size_t)n);
        if (!pb_decode(&st, fields, msg)) rc = LP2P_ERR_PROTOCOL;
    }
    lp2p__free(&h->ctx, buf, LP2P__RELAY_MSG_MAX);
    return rc == LP2P_ERR_MSGSIZE ? LP2P_ERR_PROTOCOL : rc;
}

static void lp2p__hop_init(lp2p_pb_HopMessage *m, lp2p__ma_list *peer_addrs, lp2p__ma_list *rsvp_addrs) {
    memset(m, 0, sizeof *m);
    m->peer.addrs.funcs.decode = lp2p__relay_dec_addr, m->peer.addrs.arg = peer_addrs;
    m->reservation.addrs.funcs.decode = lp2p__relay_dec_addr, m->reservation.addrs.arg = rsvp_addrs;
}

static void lp2p__stop_init(lp2p_pb_StopMessage *m, lp2p__ma_list *peer_addrs) {
    memset(m, 0, sizeof *m);
    m->peer.addrs.funcs.decode = lp2p__relay_dec_addr, m->peer.addrs.arg = peer_addrs;
}

static int lp2p__hop_status(lp2p_host *h, lp2p__pipe *p, lp2p_pb_Status status) {
    lp2p_pb_HopMessage m;
    memset(&m, 0, sizeof m);
    m.has_type = true, m.type = lp2p_pb_HopMessage_Type_STATUS;
    m.has_status = true, m.status = status;
    return lp2p__relay_send(h, p, lp2p_pb_HopMessage_fields, &m, lp2p_deadline_in(LP2P__RELAY_STREAM_MS));
}

static int lp2p__relay_status_err(lp2p_pb_Status st) {
    switch (st) {
    case lp2p_pb_Status_OK: return LP2P_OK;
    case lp2p_pb_Status_RESERVATION_REFUSED:
    case lp2p_pb_Status_RESOURCE_LIMIT_EXCEEDED:
    case lp2p_pb_Status_PERMISSION_DENIED: return LP2P_ERR_LIMIT;
    case lp2p_pb_Status_CONNECTION_FAILED:
    case lp2p_pb_Status_NO_RESERVATION: return LP2P_ERR_UNREACHABLE;
    default: return LP2P_ERR_PROTOCOL;
    }
}

static void lp2p__relay_fill_limit(const lp2p__relay *r, bool *has, lp2p_pb_Limit *l) {
    memset(l, 0, sizeof *l);
    if (r->cfg.limit_duration_s > 0) l->has_duration = true, l->duration = (uint32_t)r->cfg.limit_duration_s;
    if (r->cfg.limit_data > 0) l->has_data = true, l->data = (uint64_t)r->cfg.limit_data;
    *has = l->has_duration || l->has_data;
}

/* Take the pipe out of a stream (the stream handle is released without touching it). */
static lp2p__pipe *lp2p__relay_take_pipe(lp2p_stream *s) {
    lp2p__pipe *p = s->pipe;
    s->pipe = NULL;
    return p;
}

/* ---- relay service: splicing ---------------------------------------------------------------- */
static void lp2p__splice_copy(void *arg) {
    lp2p__splice_dir *d = (lp2p__splice_dir *)arg;
    lp2p__splice *sp = d->sp;
    lp2p__relay *r = sp->r;
    lp2p_host *h = r->h;
    lp2p__pipe *in = sp->pipe[d->from], *out = sp->pipe[1 - d->from];
    uint64_t total = 0;
    uint8_t *buf = (uint8_t *)lp2p__alloc(&h->ctx, LP2P__RELAY_COPY_BUF);
    int rc = buf ? LP2P_OK : LP2P_ERR_NOMEM;
    while (rc == LP2P_OK) {
        ptrdiff_t n = lp2p__pipe_read(in, buf, LP2P__RELAY_COPY_BUF, sp->end);
        if (n == 0) { /* half-close travels through */
            out->vt->close_write(out);
            break;
        }
        if (n < 0) {
            rc = (int)n;
            break;
        }
        if (sp->limit && total + (uint64_t)n > sp->limit) { /* pass what fits, then cut the circuit */
            n = (ptrdiff_t)(sp->limit - total);
            rc = LP2P_ERR_LIMIT;
        }
        total += (uint64_t)n;
        if (n > 0) {
            int wrc = lp2p__pipe_write(out, buf, (size_t)n, sp->end);
            if (wrc) rc = wrc;
        }
    }
    lp2p__free(&h->ctx, buf, LP2P__RELAY_COPY_BUF);
    if (rc != LP2P_OK) {
        char a[LP2P_PEER_ID_STRLEN], b[LP2P_PEER_ID_STRLEN];
        lp2p_peer_id_str(&sp->peer[0], a, sizeof a), lp2p_peer_id_str(&sp->peer[1], b, sizeof b);
        if (rc == LP2P_ERR_LIMIT || rc == LP2P_ERR_TIMEOUT)
            LP2P__INFO(&h->ctx, "relay: circuit %s -> %s reached its %s limit: reset", a, b,
                       rc == LP2P_ERR_LIMIT ? "data" : "duration");
        else LP2P__DEBUG(&h->ctx, "relay: circuit %s -> %s ended: %s", a, b, lp2p_strerror(rc));
        if (!sp->failed) {
            sp->failed = true;
            lp2p__task_cancel(h->sched, sp->task[1 - d->from]); /* wake the other direction */
        }
    }
    if (--sp->live > 0) return;
    /* the last copier out releases both streams and the circuit slot */
    for (int i = 0; i < 2; i++) {
        if (sp->failed) sp->pipe[i]->vt->reset(sp->pipe[i]);
        else sp->pipe[i]->vt->close(sp->pipe[i]);
    }
    for (lp2p__splice **pp = &r->splices; *pp; pp = &(*pp)->next)
        if (*pp == sp) {
            *pp = sp->next;
            break;
        }
    r->n_circuits--;
    lp2p__free(&h->ctx, sp, sizeof *sp);
}

/* Start relaying between a (dialer's hop stream) and b (target's stop stream). Takes both and
 * the circuit slot the caller holds. */
static void lp2p__splice_start(lp2p__relay *r, lp2p__pipe *a, lp2p__pipe *b, const lp2p_peer_id *pa,
                               const lp2p_peer_id *pb) {
    lp2p_host *h = r->h;
    lp2p__splice *sp = (lp2p__splice *)lp2p__zalloc(&h->ctx, sizeof *sp);
    if (sp) {
        sp->r = r, sp->pipe[0] = a, sp->pipe[1] = b, sp->peer[0] = *pa, sp->peer[1] = *pb;
        sp->end = r->cfg.limit_duration_s > 0 ? lp2p_deadline_in((int64_t)r->cfg.limit_duration_s * 1000) : LP2P_FOREVER;
        sp->limit = r->cfg.limit_data > 0 ? (uint64_t)r->cfg.limit_data : 0;
        for (int i = 0; i < 2; i++) sp->dir[i].sp = sp, sp->dir[i].from = i;
        sp->task[0] = lp2p__spawn(h->sched, lp2p__splice_copy, &sp->dir[0]);
    }
    if (!sp || !sp->task[0].id) {
        a->vt->reset(a), b->vt->reset(b);
        if (sp) lp2p__free(&h->ctx, sp, sizeof *sp);
        r->n_circuits--;
        return;
    }
    sp->next = r->splices, r->splices = sp;
    sp->live = 2;
    sp->task[1] = lp2p__spawn(h->sched, lp2p__splice_copy, &sp->dir[1]);
    if (!sp->task[1].id) { /* the first copier sees the cancel and cleans up */
        sp->live = 1, sp->failed = true;
        lp2p__task_cancel(h->sched, sp->task[0]);
    }
}

/* ---- relay service: hop handler --------------------------------------------------------------- */
static lp2p__rsvp_in *lp2p__rsvp_find(lp2p__relay *r, const lp2p_peer_id *peer) {
    for (lp2p__rsvp_in *x = r->rsvps; x; x = x->next)
        if (lp2p_peer_id_eq(&x->peer, peer)) return x;
    return NULL;
}

static void lp2p__rsvp_drop(lp2p__relay *r, lp2p__rsvp_in *x) {
    for (lp2p__rsvp_in **pp = &r->rsvps; *pp; pp = &(*pp)->next)
        if (*pp == x) {
            *pp = x->next;
            if (x->conn) x->conn->held = false; /* idle_timeout_ms may close it again */
            r->n_rsvps--;
            lp2p__free(&r->h->ctx, x, sizeof *x);
            return;
        }
}

static void lp2p__rsvp_expire(lp2p__relay *r) {
    int64_t now = lp2p_now();
    for (lp2p__rsvp_in *x = r->rsvps, *next; x; x = next) {
        next = x->next;
        if (x->expires <= now || !x->conn || x->conn->closed) lp2p__rsvp_drop(r, x);
    }
}

/* The voucher: an envelope over ReservationVoucher{relay, peer, expiration}. */
static int lp2p__relay_voucher(lp2p_host *h, const lp2p_peer_id *peer, uint64_t expire, lp2p_pb_Reservation *rs) {
    lp2p_pb_ReservationVoucher v;
    uint8_t payload[256];
    memset(&v, 0, sizeof v);
    v.has_relay = true, v.relay.size = h->identity.id.len;
    memcpy(v.relay.bytes, h->identity.id.bytes, h->identity.id.len);
    v.has_peer = true, v.peer.size = peer->len;
    memcpy(v.peer.bytes, peer->bytes, peer->len);
    v.has_expiration = true, v.expiration = expire;
    pb_ostream_t st = pb_ostream_from_buffer(payload, sizeof payload);
    if (!pb_encode(&st, lp2p_pb_ReservationVoucher_fields, &v)) return LP2P_ERR_MSGSIZE;
    ptrdiff_t n = lp2p__envelope_seal(&h->identity, LP2P__RSVP_DOMAIN, lp2p__rsvp_type, sizeof lp2p__rsvp_type, payload,
                                      st.bytes_written, rs->voucher.bytes, sizeof rs->voucher.bytes);
    if (n < 0) return (int)n;
    rs->has_voucher = true, rs->voucher.size = (pb_size_t)n;
    return LP2P_OK;
}

static void lp2p__hop_reserve(lp2p__relay *r, lp2p_stream *s) {
    lp2p_host *h = r->h;
    char id[LP2P_PEER_ID_STRLEN];
    lp2p_peer_id_str(&s->peer, id, sizeof id);
    lp2p__rsvp_expire(r);
    lp2p__rsvp_in *x = lp2p__rsvp_find(r, &s->peer);
    if (!x && r->n_rsvps >= r->cfg.max_reservations) {
        LP2P__WARN(&h->ctx, LP2P_ERR_LIMIT, "relay: max_reservations=%d reached: refusing %s", r->cfg.max_reservations,
                   id);
        lp2p__hop_status(h, s->pipe, lp2p_pb_Status_RESERVATION_REFUSED);
        return;
    }
    if (!x) {
        if (!(x = (lp2p__rsvp_in *)lp2p__zalloc(&h->ctx, sizeof *x))) {
            lp2p__hop_status(h, s->pipe, lp2p_pb_Status_RESOURCE_LIMIT_EXCEEDED);
            return;
        }
        x->peer = s->peer;
        x->next = r->rsvps, r->rsvps = x, r->n_rsvps++;
    }
    uint64_t expire = (uint64_t)time(NULL) + (uint64_t)r->cfg.reservation_ttl_s;
    if (x->conn && x->conn != s->conn) x->conn->held = false;
    x->conn = s->conn; /* a refresh moves it to the current connection */
    x->conn->held = true; /* the reservation lasts while this connection does: not idle */
    x->expires = lp2p_deadline_in((int64_t)r->cfg.reservation_ttl_s * 1000);
    lp2p__ma_list addrs; /* our direct addresses, with /p2p/<us> (as go and js send them) */
    lp2p__ma all[LP2P_MAX_LISTEN_ADDRS + LP2P__MAX_EXTRA_ADDRS];
    int n = lp2p__host_advertised_addrs(h, all, (int)LP2P__COUNT(all));
    addrs.n = 0;
    for (int i = 0; i < n && addrs.n < LP2P__RELAY_MAX_ADDRS; i++) {
        if (lp2p__ma_is_circuit(&all[i])) continue;
        addrs.a[addrs.n] = all[i];
        if (lp2p__ma_append_p2p(&addrs.a[addrs.n], &h->identity.id) == LP2P_OK) addrs.n++;
    }
    lp2p_pb_HopMessage *m = (lp2p_pb_HopMessage *)lp2p__zalloc(&h->ctx, sizeof *m);
    if (!m) return;
    m->has_type = true, m->type = lp2p_pb_HopMessage_Type_STATUS;
    m->has_status = true, m->status = lp2p_pb_Status_OK;
    m->has_reservation = true, m->reservation.has_expire = true, m->reservation.expire = expire;
    m->reservation.addrs.funcs.encode = lp2p__relay_enc_addrs, m->reservation.addrs.arg = &addrs;
    lp2p__relay_fill_limit(r, &m->has_limit, &m->limit);
    int rc = lp2p__relay_voucher(h, &s->peer, expire, &m->reservation);
    if (rc == LP2P_OK) rc = lp2p__relay_send(h, s->pipe, lp2p_pb_HopMessage_fields, m, lp2p_deadline_in(LP2P__RELAY_STREAM_MS));
    lp2p__free(&h->ctx, m, sizeof *m);
    LP2P__DEBUG(&h->ctx, "relay: reservation for %s: %s", id, lp2p_strerror(rc));
}

static int lp2p__relay_circuits_of(lp2p__relay *r, const lp2p_peer_id *peer) {
    int n = 0;
    for (lp2p__splice *sp = r->splices; sp; sp = sp->next)
        n += lp2p_peer_id_eq(&sp->peer[0], peer) || lp2p_peer_id_eq(&sp->peer[1], peer);
    return n;
}

static void lp2p__hop_connect(lp2p__relay *r, lp2p_stream *s, const lp2p_pb_HopMessage *req) {
    lp2p_host *h = r->h;
    lp2p_peer_id target;
    char a[LP2P_PEER_ID_STRLEN], b[LP2P_PEER_ID_STRLEN];
    lp2p_peer_id_str(&s->peer, a, sizeof a);
    if (!req->has_peer || !req->peer.has_id || lp2p__peer_id_from_bytes(req->peer.id.bytes, req->peer.id.size, &target)) {
        LP2P__WARN(&h->ctx, LP2P_ERR_PROTOCOL, "relay: CONNECT from %s without a valid peer ID", a);
        lp2p__hop_status(h, s->pipe, lp2p_pb_Status_MALFORMED_MESSAGE);
        return;
    }
    lp2p_peer_id_str(&target, b, sizeof b);
    lp2p__rsvp_expire(r);
    lp2p__rsvp_in *x = lp2p__rsvp_find(r, &target);
    if (!x) {
        LP2P__INFO(&h->ctx, "relay: CONNECT %s -> %s refused: no reservation", a, b);
        lp2p__hop_status(h, s->pipe, lp2p_pb_Status_NO_RESERVATION);
        return;
    }
    if (r->n_circuits >= r->cfg.max_circuits || lp2p__relay_circuits_of(r, &s->peer) >= r->cfg.max_circuits_per_peer ||
        lp2p__relay_circuits_of(r, &target) >= r->cfg.max_circuits_per_peer) {
        LP2P__WARN(&h->ctx, LP2P_ERR_LIMIT, "relay: max_circuits=%d / max_circuits_per_peer=%d reached: %s -> %s refused",
                   r->cfg.max_circuits, r->cfg.max_circuits_per_peer, a, b);
        lp2p__hop_status(h, s->pipe, lp2p_pb_Status_RESOURCE_LIMIT_EXCEEDED);
        return;
    }
    r->n_circuits++; /* held while we talk to the target; the splice releases it */
    int64_t deadline = lp2p_deadline_in(LP2P__RELAY_STREAM_MS);
    lp2p_stream *ts = NULL;
    lp2p__conn *tc = x->conn;
    tc->refs++;
    int rc = lp2p__host_open_on(tc, LP2P__STOP_PROTO, deadline, &ts);
    lp2p__conn_unref(tc);
    lp2p_pb_StopMessage sm;
    lp2p__ma_list ignored = {.n = 0};
    if (rc == LP2P_OK) {
        memset(&sm, 0, sizeof sm);
        sm.has_type = true, sm.type = lp2p_pb_StopMessage_Type_CONNECT;
        sm.has_peer = true;
        lp2p__relay_set_peer(&sm.peer, &s->peer);
        lp2p__relay_fill_limit(r, &sm.has_limit, &sm.limit);
        rc = lp2p__relay_send(h, ts->pipe, lp2p_pb_StopMessage_fields, &sm, deadline);
    }
    if (rc == LP2P_OK) {
        lp2p__stop_init(&sm, &ignored);
        rc = lp2p__relay_recv(h, ts->pipe, lp2p_pb_StopMessage_fields, &sm, deadline);
        if (rc == LP2P_OK && (!sm.has_type || sm.type != lp2p_pb_StopMessage_Type_STATUS || !sm.has_status))
            rc = LP2P_ERR_PROTOCOL;
        if (rc == LP2P_OK) rc = lp2p__relay_status_err(sm.status);
    }
    if (rc != LP2P_OK) {
        LP2P__INFO(&h->ctx, "relay: CONNECT %s -> %s failed at the target: %s", a, b, lp2p_strerror(rc));
        if (ts) lp2p_stream_reset(ts);
        r->n_circuits--;
        lp2p__hop_status(h, s->pipe, lp2p_pb_Status_CONNECTION_FAILED);
        return;
    }
    lp2p_pb_HopMessage m;
    memset(&m, 0, sizeof m);
    m.has_type = true, m.type = lp2p_pb_HopMessage_Type_STATUS;
    m.has_status = true, m.status = lp2p_pb_Status_OK;
    lp2p__relay_fill_limit(r, &m.has_limit, &m.limit);
    rc = lp2p__relay_send(h, s->pipe, lp2p_pb_HopMessage_fields, &m, deadline);
    if (rc != LP2P_OK) {
        lp2p_stream_reset(ts);
        r->n_circuits--;
        return;
    }
    LP2P__DEBUG(&h->ctx, "relay: circuit %s -> %s open", a, b);
    lp2p__pipe *pa = lp2p__relay_take_pipe(s), *pb = lp2p__relay_take_pipe(ts);
    lp2p_stream_close(ts);
    lp2p__splice_start(r, pa, pb, &s->peer, &target);
}

static void lp2p__hop_serve(lp2p_stream *s, void *user) {
    lp2p__relay *r = (lp2p__relay *)user;
    lp2p_host *h = r->h;
    char id[LP2P_PEER_ID_STRLEN];
    lp2p_peer_id_str(&s->peer, id, sizeof id);
    if (!r->serving) return;
    if (s->conn->limited) { /* circuit-v2.md: no reservations or connects over relayed connections */
        LP2P__INFO(&h->ctx, "relay: hop request from %s over a relayed connection refused", id);
        lp2p__hop_status(h, s->pipe, lp2p_pb_Status_PERMISSION_DENIED);
        return;
    }
    lp2p_pb_HopMessage *m = (lp2p_pb_HopMessage *)lp2p__alloc(&h->ctx, sizeof *m);
    lp2p__ma_list *ignored = (lp2p__ma_list *)lp2p__alloc(&h->ctx, sizeof *ignored);
    int rc = m && ignored ? LP2P_OK : LP2P_ERR_NOMEM;
    if (rc == LP2P_OK) {
        ignored->n = 0;
        lp2p__hop_init(m, ignored, ignored);
        rc = lp2p__relay_recv(h, s->pipe, lp2p_pb_HopMessage_fields, m, lp2p_deadline_in(LP2P__RELAY_STREAM_MS));
    }
    if (rc == LP2P_ERR_PROTOCOL || (rc == LP2P_OK && !m->has_type)) {
        LP2P__WARN(&h->ctx, LP2P_ERR_PROTOCOL, "relay: malformed hop message from %s", id);
        lp2p__hop_status(h, s->pipe, lp2p_pb_Status_MALFORMED_MESSAGE);
    } else if (rc == LP2P_OK && m->type == lp2p_pb_HopMessage_Type_RESERVE) {
        lp2p__hop_reserve(r, s);
    } else if (rc == LP2P_OK && m->type == lp2p_pb_HopMessage_Type_CONNECT) {
        lp2p__hop_connect(r, s, m);
    } else if (rc == LP2P_OK) {
        LP2P__WARN(&h->ctx, LP2P_ERR_PROTOCOL, "relay: unexpected hop message type %d from %s", (int)m->type, id);
        lp2p__hop_status(h, s->pipe, lp2p_pb_Status_UNEXPECTED_MESSAGE);
    }
    lp2p__free(&h->ctx, m, sizeof *m);
    lp2p__free(&h->ctx, ignored, sizeof *ignored);
}

LP2P_API int lp2p_relay_service_start(lp2p_host *h, const lp2p_relay_config *cfg) {
    lp2p__relay *r = h->relay;
    lp2p_relay_config c;
    if (cfg) c = *cfg;
    else memset(&c, 0, sizeof c);
    if (c.max_reservations <= 0) c.max_reservations = 128;
    if (c.max_circuits <= 0) c.max_circuits = 16;
    if (c.max_circuits_per_peer <= 0) c.max_circuits_per_peer = 4;
    if (c.reservation_ttl_s <= 0) c.reservation_ttl_s = 3600;
    if (c.limit_duration_s == 0) c.limit_duration_s = 120;
    if (c.limit_data == 0) c.limit_data = 128 << 10;
    r->cfg = c;
    r->serving = true;
    return lp2p_host_handle(h, LP2P__HOP_PROTO, lp2p__hop_serve, r);
}

LP2P_API void lp2p_relay_service_stop(lp2p_host *h) {
    lp2p__relay *r = h->relay;
    if (!r->serving) return;
    r->serving = false;
    lp2p_host_unhandle(h, LP2P__HOP_PROTO);
    while (r->rsvps) lp2p__rsvp_drop(r, r->rsvps);
}

/* ---- client: the /p2p-circuit transport (dialer side) ---------------------------------------- */
static bool lp2p__circuit_can_dial(const lp2p__ma *addr) { return lp2p__ma_is_circuit(addr); }

/* Split "<relay part>/p2p-circuit[/p2p/<target>]" at the first /p2p-circuit. */
static int lp2p__circuit_split(const lp2p__ma *addr, lp2p__ma *relay_part) {
    size_t off = 0, prev = 0, vn;
    uint32_t code;
    const uint8_t *v;
    while (lp2p__ma_next(addr, &off, &code, &v, &vn)) {
        if (code == LP2P__MA_P2P_CIRCUIT) {
            if (prev == 0) return LP2P_ERR_BADADDR;
            memcpy(relay_part->b, addr->b, prev);
            relay_part->len = (uint16_t)prev;
            return LP2P_OK;
        }
        prev = off;
    }
    return LP2P_ERR_BADADDR;
}

/* Text to hand to lp2p__swarm_connect for the relay: its multiaddr, or its bare peer ID. */
static int lp2p__circuit_relay_text(const lp2p__ma *relay_part, lp2p_peer_id *relay, char *text, size_t cap) {
    lp2p__ma base;
    if (!lp2p__ma_split_p2p(relay_part, &base, relay)) return LP2P_ERR_BADADDR;
    if (base.len == 0) return lp2p_peer_id_str(relay, text, cap);
    return lp2p__ma_str(relay_part, text, cap) < 0 ? LP2P_ERR_BADADDR : LP2P_OK;
}

static int lp2p__circuit_dial(lp2p_host *h, const lp2p__ma *addr, const lp2p_peer_id *peer, lp2p__conn **out,
                              int64_t deadline) {
    lp2p__ma relay_part, remote;
    lp2p_peer_id relay;
    char text[LP2P__MA_STRLEN], pid[LP2P_PEER_ID_STRLEN];
    lp2p__conn *rc = NULL;
    lp2p_stream *s = NULL;
    int err = lp2p__circuit_split(addr, &relay_part);
    if (!err) err = lp2p__circuit_relay_text(&relay_part, &relay, text, sizeof text);
    if (err) return err;
    if (lp2p_peer_id_eq(&relay, peer) || lp2p_peer_id_eq(&relay, &h->identity.id)) return LP2P_ERR_BADADDR;
    err = lp2p__swarm_connect(h, text, &rc, deadline);
    if (err) return err;
    if (rc->limited) { /* no relaying through relayed connections */
        lp2p__conn_unref(rc);
        return LP2P_ERR_UNREACHABLE;
    }
    int64_t step = lp2p__deadline_min(deadline, lp2p_deadline_in(LP2P__RELAY_STREAM_MS));
    err = lp2p__host_open_on(rc, LP2P__HOP_PROTO, step, &s);
    remote = rc->remote;
    lp2p__conn_unref(rc);
    if (err) return err;
    lp2p_pb_HopMessage m;
    memset(&m, 0, sizeof m);
    m.has_type = true, m.type = lp2p_pb_HopMessage_Type_CONNECT;
    m.has_peer = true;
    lp2p__relay_set_peer(&m.peer, peer);
    err = lp2p__relay_send(h, s->pipe, lp2p_pb_HopMessage_fields, &m, step);
    lp2p__ma_list ignored = {.n = 0};
    if (!err) {
        lp2p__hop_init(&m, &ignored, &ignored);
        err = lp2p__relay_recv(h, s->pipe, lp2p_pb_HopMessage_fields, &m, step);
    }
    if (!err && (!m.has_type || m.type != lp2p_pb_HopMessage_Type_STATUS || !m.has_status)) err = LP2P_ERR_PROTOCOL;
    if (!err) err = lp2p__relay_status_err(m.status);
    lp2p_peer_id_str(peer, pid, sizeof pid);
    if (err) {
        LP2P__INFO(&h->ctx, "circuit dial to %s via %s: %s (status %d)", pid, text, lp2p_strerror(err),
                   m.has_status ? (int)m.status : -1);
        lp2p_stream_reset(s);
        return err;
    }
    /* remote address of the relayed connection: "<relay transport addr>/p2p/<relay>/p2p-circuit" */
    if (lp2p__ma_append_p2p(&remote, &relay) || remote.len + 2 > LP2P__MA_MAX) remote = relay_part;
    remote.b[remote.len++] = 0xa2, remote.b[remote.len++] = 0x02; /* /p2p-circuit (code 290) */
    lp2p__pipe *p = lp2p__relay_take_pipe(s);
    lp2p_stream_close(s);
    return lp2p__swarm_upgrade(h, p, true, peer, NULL, &remote, true, out, deadline);
}

/* ---- client: stop handler (target side) ------------------------------------------------------ */
static void lp2p__stop_serve(lp2p_stream *s, void *user) {
    lp2p__relay *r = (lp2p__relay *)user;
    lp2p_host *h = r->h;
    lp2p_peer_id from;
    char id[LP2P_PEER_ID_STRLEN];
    lp2p_peer_id_str(&s->peer, id, sizeof id);
    if (s->conn->limited) {
        LP2P__INFO(&h->ctx, "relay: stop request over a relayed connection from %s refused", id);
        lp2p_stream_reset(s);
        return;
    }
    lp2p_pb_StopMessage m;
    lp2p__ma_list ignored = {.n = 0};
    lp2p__stop_init(&m, &ignored);
    int64_t deadline = lp2p_deadline_in(LP2P__RELAY_STREAM_MS);
    int rc = lp2p__relay_recv(h, s->pipe, lp2p_pb_StopMessage_fields, &m, deadline);
    if (rc) {
        if (rc == LP2P_ERR_PROTOCOL) LP2P__WARN(&h->ctx, rc, "relay: malformed stop message from %s", id);
        lp2p_stream_reset(s);
        return;
    }
    lp2p_pb_Status st = lp2p_pb_Status_OK;
    if (!m.has_type || m.type != lp2p_pb_StopMessage_Type_CONNECT) st = lp2p_pb_Status_UNEXPECTED_MESSAGE;
    else if (!m.has_peer || !m.peer.has_id || lp2p__peer_id_from_bytes(m.peer.id.bytes, m.peer.id.size, &from))
        st = lp2p_pb_Status_MALFORMED_MESSAGE;
    else if (lp2p_peer_id_eq(&from, &h->identity.id)) st = lp2p_pb_Status_CONNECTION_FAILED;
    lp2p_pb_StopMessage reply;
    memset(&reply, 0, sizeof reply);
    reply.has_type = true, reply.type = lp2p_pb_StopMessage_Type_STATUS;
    reply.has_status = true, reply.status = st;
    rc = lp2p__relay_send(h, s->pipe, lp2p_pb_StopMessage_fields, &reply, deadline);
    if (st != lp2p_pb_Status_OK || rc) {
        if (st != lp2p_pb_Status_OK) LP2P__WARN(&h->ctx, LP2P_ERR_PROTOCOL, "relay: bad stop CONNECT from %s", id);
        lp2p_stream_reset(s);
        return;
    }
    lp2p__ma remote = s->conn->remote;
    if (lp2p__ma_append_p2p(&remote, &s->peer) || remote.len + 2 > LP2P__MA_MAX) remote.len = 0;
    else remote.b[remote.len++] = 0xa2, remote.b[remote.len++] = 0x02;
    lp2p__pipe *p = lp2p__relay_take_pipe(s);
    rc = lp2p__swarm_upgrade(h, p, false, &from, NULL, remote.len ? &remote : NULL, true, NULL,
                             lp2p_deadline_in(h->cfg.handshake_timeout_ms));
    if (rc) {
        char fid[LP2P_PEER_ID_STRLEN];
        lp2p_peer_id_str(&from, fid, sizeof fid);
        LP2P__INFO(&h->ctx, "relayed connection from %s via %s failed to upgrade: %s", fid, id, lp2p_strerror(rc));
    }
}

/* ---- client: reservations ------------------------------------------------------------------------ */
static bool lp2p__rsvp_check_voucher(lp2p_host *h, const lp2p_pb_Reservation *rs, const lp2p_peer_id *relay) {
    const uint8_t *payload;
    size_t len;
    lp2p_peer_id signer, vr, vp;
    if (lp2p__envelope_open(rs->voucher.bytes, rs->voucher.size, LP2P__RSVP_DOMAIN, lp2p__rsvp_type,
                            sizeof lp2p__rsvp_type, &payload, &len, &signer))
        return false;
    lp2p_pb_ReservationVoucher v;
    memset(&v, 0, sizeof v);
    pb_istream_t st = pb_istream_from_buffer(payload, len);
    if (!pb_decode(&st, lp2p_pb_ReservationVoucher_fields, &v)) return false;
    if (lp2p__peer_id_from_bytes(v.relay.bytes, v.relay.size, &vr) || lp2p__peer_id_from_bytes(v.peer.bytes, v.peer.size, &vp))
        return false;
    return lp2p_peer_id_eq(&signer, relay) && lp2p_peer_id_eq(&vr, relay) && lp2p_peer_id_eq(&vp, &h->identity.id);
}

/* Recompute the host's extra (circuit) addresses from the active reservations. */
static void lp2p__relay_update_addrs(lp2p__relay *r) {
    lp2p_host *h = r->h;
    int n = 0;
    for (lp2p__rsvp_out *o = r->outs; o; o = o->next)
        for (int i = 0; o->active && i < o->n_circuits && n < LP2P__MAX_EXTRA_ADDRS; i++) h->extra_addrs[n++] = o->circuits[i];
    h->n_extra_addrs = n;
    if (!h->freeing) lp2p__host_addrs_changed(h);
}

/* One RESERVE exchange; on success fills o->circuits and o->refresh_at. */
static int lp2p__rsvp_do(lp2p__rsvp_out *o, int64_t deadline) {
    lp2p__relay *r = o->r;
    lp2p_host *h = r->h;
    lp2p__conn *rc = NULL;
    lp2p_stream *s = NULL;
    int err = lp2p__swarm_connect(h, o->relay_addr, &rc, deadline);
    if (err) return err;
    if (rc->limited) {
        lp2p__conn_unref(rc);
        return LP2P_ERR_INVALID;
    }
    err = lp2p__host_open_on(rc, LP2P__HOP_PROTO, deadline, &s);
    lp2p__ma remote = rc->remote;
    if (err) {
        lp2p__conn_unref(rc);
        return err;
    }
    lp2p_pb_HopMessage *m = (lp2p_pb_HopMessage *)lp2p__alloc(&h->ctx, sizeof *m);
    lp2p__ma_list *addrs = (lp2p__ma_list *)lp2p__alloc(&h->ctx, sizeof *addrs);
    if (!m || !addrs) err = LP2P_ERR_NOMEM;
    if (!err) {
        memset(m, 0, sizeof *m);
        m->has_type = true, m->type = lp2p_pb_HopMessage_Type_RESERVE;
        err = lp2p__relay_send(h, s->pipe, lp2p_pb_HopMessage_fields, m, deadline);
    }
    if (!err) {
        addrs->n = 0;
        lp2p__hop_init(m, NULL, addrs);
        err = lp2p__relay_recv(h, s->pipe, lp2p_pb_HopMessage_fields, m, deadline);
    }
    if (!err && (!m->has_type || m->type != lp2p_pb_HopMessage_Type_STATUS || !m->has_status)) err = LP2P_ERR_PROTOCOL;
    if (!err) err = lp2p__relay_status_err(m->status);
    uint64_t now_s = (uint64_t)time(NULL);
    if (!err && (!m->has_reservation || !m->reservation.has_expire || m->reservation.expire <= now_s))
        err = LP2P_ERR_PROTOCOL;
    char rid[LP2P_PEER_ID_STRLEN];
    lp2p_peer_id_str(&o->relay, rid, sizeof rid);
    if (!err && m->reservation.has_voucher && !lp2p__rsvp_check_voucher(h, &m->reservation, &o->relay)) {
        LP2P__WARN(&h->ctx, LP2P_ERR_PROTOCOL, "relay %s: reservation voucher is not signed by the relay for us", rid);
        err = LP2P_ERR_PROTOCOL;
    }
    if (!err) {
        o->n_circuits = 0;
        for (int i = 0; i < addrs->n && o->n_circuits < LP2P__RELAY_MAX_ADDRS; i++) {
            lp2p__ma base, c;
            lp2p_peer_id pid;
            char text[LP2P__MA_STRLEN + 20];
            if (lp2p__ma_is_circuit(&addrs->a[i])) continue;
            if (lp2p__ma_split_p2p(&addrs->a[i], &base, &pid) && !lp2p_peer_id_eq(&pid, &o->relay)) continue;
            if (!base.len || lp2p__ma_append_p2p(&base, &o->relay) || lp2p__ma_str(&base, text, LP2P__MA_STRLEN) < 0) continue;
            strcat(text, "/p2p-circuit");
            if (lp2p__ma_parse(text, &c, NULL) == LP2P_OK) o->circuits[o->n_circuits++] = c;
        }
        if (o->n_circuits == 0 && remote.len && lp2p__ma_append_p2p(&remote, &o->relay) == LP2P_OK &&
            remote.len + 2 <= LP2P__MA_MAX) { /* no addresses in the answer: the one we dialed */
            remote.b[remote.len++] = 0xa2, remote.b[remote.len++] = 0x02;
            o->circuits[o->n_circuits++] = remote;
        }
        /* refresh after 3/4 of the remaining time (at least 1 s, at most 15 min before expiry) */
        int64_t left_ms = (int64_t)(m->reservation.expire - now_s) * 1000;
        int64_t wait = LP2P__MAX(1000, LP2P__MAX(left_ms * 3 / 4, left_ms - 15 * 60 * 1000));
        o->refresh_at = lp2p_deadline_in(wait);
        LP2P__DEBUG(&h->ctx, "relay %s: reserved until %llu (limit %u s / %llu B), refresh in %lld ms", rid,
                    (unsigned long long)m->reservation.expire, m->limit.duration, (unsigned long long)m->limit.data,
                    (long long)wait);
    }
    if (err) LP2P__INFO(&h->ctx, "relay %s: reservation failed: %s", rid, lp2p_strerror(err));
    else rc->held = true, rc->ephemeral_idle_ms = 0; /* the relay drops the reservation with the connection */
    lp2p__conn_unref(rc);
    lp2p__free(&h->ctx, m, sizeof *m);
    lp2p__free(&h->ctx, addrs, sizeof *addrs);
    if (err) lp2p_stream_reset(s);
    else lp2p_stream_close(s);
    return err;
}

static void lp2p__rsvp_set_active(lp2p__rsvp_out *o, bool active, int err) {
    lp2p_host *h = o->r->h;
    bool was = o->active;
    o->active = active;
    lp2p__relay_update_addrs(o->r);
    if (h->freeing || was == active) return;
    if (active) {
        char text[LP2P__MA_STRLEN];
        lp2p__ma full = o->circuits[0];
        if (lp2p__ma_append_p2p(&full, &h->identity.id) || lp2p__ma_str(&full, text, sizeof text) < 0) text[0] = 0;
        lp2p__host_emit(h, LP2P_EVENT_RELAY_RESERVED, &o->relay, text[0] ? text : NULL, NULL, NULL, 0);
    } else {
        lp2p__host_emit(h, LP2P_EVENT_RELAY_LOST, &o->relay, NULL, NULL, NULL, err);
    }
}

static void lp2p__rsvp_free(lp2p__relay *r, lp2p__rsvp_out *o) {
    lp2p__strfree(&r->h->ctx, o->relay_addr);
    lp2p__free(&r->h->ctx, o, sizeof *o);
}

/* Keeps one reservation: refreshes before expiry, re-reserves after the relay connection drops. */
static void lp2p__rsvp_task(void *arg) {
    lp2p__rsvp_out *o = (lp2p__rsvp_out *)arg;
    lp2p__relay *r = o->r;
    lp2p_host *h = r->h;
    int64_t backoff = 1000;
    while (!o->released) {
        int rc = LP2P_OK;
        if (o->active) rc = lp2p__waitq_wait(h->sched, &o->wake, o->refresh_at);
        if (rc == LP2P_ERR_CANCELED || o->released) break;
        if (o->active && lp2p_now() < o->refresh_at) continue; /* woken early, still fine */
        rc = lp2p__rsvp_do(o, lp2p_deadline_in(LP2P__RELAY_STREAM_MS));
        if (o->released || rc == LP2P_ERR_CANCELED) break;
        if (rc == LP2P_OK) {
            backoff = 1000;
            lp2p__rsvp_set_active(o, true, 0);
            continue;
        }
        if (o->active) lp2p__rsvp_set_active(o, false, rc);
        if (lp2p__sleep_until(h->sched, lp2p_deadline_in(backoff)) != LP2P_OK) break;
        backoff = LP2P__MIN(backoff * 2, 60000);
    }
    /* unlink and free (release only marks it) */
    for (lp2p__rsvp_out **pp = &r->outs; *pp; pp = &(*pp)->next)
        if (*pp == o) {
            *pp = o->next;
            break;
        }
    if (o->active && !h->freeing) {
        o->active = false;
        lp2p__relay_update_addrs(r);
    }
    lp2p__rsvp_free(r, o);
}

LP2P_API int lp2p_relay_reserve(lp2p_host *h, const char *relay_addr, int64_t deadline) {
    lp2p__relay *r = h->relay;
    lp2p_peer_id relay;
    lp2p__ma ma;
    if (!relay_addr) return LP2P_ERR_INVALID;
    if (relay_addr[0] == '/') {
        if (lp2p__ma_parse(relay_addr, &ma, NULL) || !lp2p__ma_split_p2p(&ma, NULL, &relay)) return LP2P_ERR_BADADDR;
    } else if (lp2p_peer_id_parse(relay_addr, &relay)) {
        return LP2P_ERR_BADADDR;
    }
    for (lp2p__rsvp_out *o = r->outs; o; o = o->next)
        if (lp2p_peer_id_eq(&o->relay, &relay) && !o->released) { /* already held: refresh now */
            int rc = lp2p__rsvp_do(o, deadline);
            if (rc == LP2P_OK) lp2p__rsvp_set_active(o, true, 0), lp2p__waitq_wake_all(h->sched, &o->wake);
            return rc;
        }
    lp2p__rsvp_out *o = (lp2p__rsvp_out *)lp2p__zalloc(&h->ctx, sizeof *o);
    if (!o || !(o->relay_addr = lp2p__strdup(&h->ctx, relay_addr))) {
        lp2p__free(&h->ctx, o, sizeof *o);
        return LP2P_ERR_NOMEM;
    }
    o->r = r, o->relay = relay;
    int rc = lp2p__rsvp_do(o, deadline);
    if (rc) {
        lp2p__rsvp_free(r, o);
        return rc;
    }
    o->next = r->outs, r->outs = o;
    o->task = lp2p__spawn(h->sched, lp2p__rsvp_task, o);
    if (!o->task.id) {
        r->outs = o->next;
        lp2p__rsvp_free(r, o);
        return LP2P_ERR_NOMEM;
    }
    lp2p__rsvp_set_active(o, true, 0);
    return LP2P_OK;
}

LP2P_API int lp2p_relay_release(lp2p_host *h, const lp2p_peer_id *relay) {
    lp2p__relay *r = h->relay;
    for (lp2p__rsvp_out *o = r->outs; o; o = o->next)
        if (lp2p_peer_id_eq(&o->relay, relay) && !o->released) {
            o->released = true;
            o->active = false;
            lp2p__conn *c = lp2p__swarm_find_conn(h, relay);
            if (c) c->held = false;
            lp2p__relay_update_addrs(r);
            lp2p__waitq_wake_all(h->sched, &o->wake);
            return LP2P_OK;
        }
    return LP2P_ERR_NOTFOUND;
}

LP2P__PRIV bool lp2p__relay_has_reservation(lp2p_host *h) {
    for (lp2p__rsvp_out *o = h->relay ? h->relay->outs : NULL; o; o = o->next)
        if (!o->released) return true;
    return false;
}

/* ---- swarm notifications ------------------------------------------------------------------------ */
static void lp2p__relay_disconnected(void *user, lp2p__conn *c) {
    lp2p__relay *r = (lp2p__relay *)user;
    for (lp2p__rsvp_in *x = r->rsvps, *next; x; x = next) { /* a reservation lives with its connection */
        next = x->next;
        if (x->conn == c) lp2p__rsvp_drop(r, x);
    }
    if (c->limited) return;
    for (lp2p__rsvp_out *o = r->outs; o; o = o->next) {
        if (!o->active || o->released || !lp2p_peer_id_eq(&o->relay, &c->peer)) continue;
        lp2p__conn *other = lp2p__swarm_find_conn(r->h, &c->peer);
        if (other && !other->limited) continue; /* still connected another way */
        lp2p__rsvp_set_active(o, false, LP2P_ERR_CLOSED);
        lp2p__waitq_wake_all(r->h->sched, &o->wake);
    }
}

LP2P__PRIV int lp2p__relay_init(lp2p_host *h) {
    lp2p__relay *r = (lp2p__relay *)lp2p__zalloc(&h->ctx, sizeof *r);
    if (!r) return LP2P_ERR_NOMEM;
    r->h = h;
    r->notifee.disconnected = lp2p__relay_disconnected;
    r->notifee.user = r;
    r->transport.can_dial = lp2p__circuit_can_dial;
    r->transport.dial = lp2p__circuit_dial;
    h->relay = r;
    h->circuit = &r->transport;
    lp2p__swarm_add_notifee(h, &r->notifee);
    return lp2p_host_handle(h, LP2P__STOP_PROTO, lp2p__stop_serve, r);
}

LP2P__PRIV void lp2p__relay_free(lp2p_host *h) {
    lp2p__relay *r = h->relay;
    if (!r) return;
    while (r->rsvps) lp2p__rsvp_drop(r, r->rsvps);
    while (r->outs) { /* tasks are gone (scheduler freed) */
        lp2p__rsvp_out *o = r->outs;
        r->outs = o->next;
        lp2p__rsvp_free(r, o);
    }
    h->circuit = NULL;
    lp2p__free(&h->ctx, r, sizeof *r);
    h->relay = NULL;
}
/*==================== end src/relay.c ====================*/
/*==================== begin src/dcutr.c ====================*/
/* dcutr.c - L7: DCUtR (Direct Connection Upgrade through Relay): TCP hole punching over a
 * relayed connection.
 *
 * Spec: libp2p/specs relay/DCUtR.md, connections/hole-punching.md. Roles (spec names): B received
 * the relayed connection (normally the NATed listener) and starts: it opens /libp2p/dcutr, sends
 * CONNECT{its addresses}, measures the RTT until A's CONNECT{addresses} arrives, sends SYNC and
 * waits RTT/2; A dials as soon as SYNC arrives. Both dial from their listen ports (SO_REUSEPORT),
 * so each side's outgoing SYN opens its own NAT for the other's; the SYNs cross and TCP's
 * simultaneous open yields one connection. A is the client (multistream dialer, Noise initiator,
 * yamux odd IDs), B the server. B retries twice (3 attempts, a new stream each, as go) and, as go
 * does, acts as client on its last attempt (peers older than go-libp2p 0.41 had the roles
 * swapped; notes/wire-facts.md 1.14).
 * Our addresses in CONNECT: what peers observed of us (identify), then our listen addresses.
 * Messages: uvarint-delimited HolePunch, at most 4 KiB.
 * Enabled while the host handles /libp2p/dcutr (lp2p_host_unhandle turns it off).
 * Depends on: host.h (swarm, streams, tcp), proto/dcutr.pb.h. */
// (amalgamated) #include "host.h"

#include <pb_decode.h>
#include <pb_encode.h>

#define LP2P__DCUTR_PROTO "/libp2p/dcutr"
#define LP2P__DCUTR_MSG_MAX 4096
#define LP2P__DCUTR_ATTEMPTS 3
#define LP2P__DCUTR_MAX_ADDRS 8
#define LP2P__DCUTR_DIAL_MS 10000   /* go: direct dial timeout 10 s */
#define LP2P__DCUTR_STREAM_MS 60000 /* go: stream timeout 1 min */
#define LP2P__DCUTR_IDENTIFY_MS 10000

typedef struct lp2p__dc_punching lp2p__dc_punching;
struct lp2p__dcutr {
    lp2p_host *h;
    lp2p__notifee notifee;
    lp2p__dc_punching *punching; /* hole punches in progress where we are the client */
};

typedef struct lp2p__dc_addrs {
    lp2p__ma a[LP2P__DCUTR_MAX_ADDRS];
    int n;
} lp2p__dc_addrs;

/* While we punch as the client, a TCP connection from one of the peer's addresses that reaches
 * our listener (its SYN arrived before ours left: no NAT, or a NAT that let it through) is the
 * punched connection too, and must keep the client role: swarm.c asks lp2p__dc_punch_client. */
struct lp2p__dc_punching {
    lp2p_peer_id peer;
    const lp2p__dc_addrs *addrs;
    struct lp2p__dc_punching *next;
};

static bool lp2p__dc_punch_client(lp2p_host *h, const lp2p__ma *remote, lp2p_peer_id *peer) {
    for (lp2p__dc_punching *p = h->dcutr ? h->dcutr->punching : NULL; p; p = p->next)
        for (int i = 0; i < p->addrs->n; i++)
            if (lp2p__ma_eq(&p->addrs->a[i], remote)) {
                *peer = p->peer;
                return true;
            }
    return false;
}

static void lp2p__dc_add(lp2p__dc_addrs *l, const lp2p__ma *ma) {
    lp2p__ma base;
    lp2p__ma_split_p2p(ma, &base, NULL);
    if (l->n >= LP2P__DCUTR_MAX_ADDRS || !lp2p__ma_is_tcp(&base) || lp2p__ma_is_circuit(&base)) return;
    for (int i = 0; i < l->n; i++)
        if (lp2p__ma_eq(&l->a[i], &base)) return;
    l->a[l->n++] = base;
}

/* Is the IP part of a TCP address 0.0.0.0 / :: (a wildcard listener)? */
static bool lp2p__dc_unspecified(const lp2p__ma *ma) {
    static const uint8_t zero[16] = {0};
    return (ma->len >= 5 && ma->b[0] == LP2P__MA_IP4 && memcmp(ma->b + 1, zero, 4) == 0) ||
           (ma->len >= 17 && ma->b[0] == LP2P__MA_IP6 && memcmp(ma->b + 1, zero, 16) == 0);
}

/* Our candidate addresses: observed by peers (NAT mappings of our listen port), then listeners. */
static void lp2p__dc_own_addrs(lp2p_host *h, lp2p__dc_addrs *out) {
    out->n = 0;
    for (lp2p__peer *p = h->peers; p; p = p->next)
        if (p->observed.len) lp2p__dc_add(out, &p->observed);
    for (lp2p__listener *l = h->listeners; l; l = l->next)
        if (!lp2p__dc_unspecified(&l->addr)) lp2p__dc_add(out, &l->addr);
}

/* ---- messages ---------------------------------------------------------------------------------- */
static bool lp2p__dc_dec_addr(pb_istream_t *st, const pb_field_t *f, void **arg) {
    lp2p__dc_addrs *l = (lp2p__dc_addrs *)*arg;
    uint8_t tmp[LP2P__MA_MAX];
    lp2p__ma ma;
    size_t n = st->bytes_left;
    (void)f;
    if (n > sizeof tmp) return pb_read(st, NULL, n);
    if (!pb_read(st, tmp, n)) return false;
    if (lp2p__ma_from_bytes(tmp, n, &ma, NULL) == LP2P_OK) lp2p__dc_add(l, &ma);
    return true;
}

static bool lp2p__dc_enc_addrs(pb_ostream_t *st, const pb_field_t *f, void *const *arg) {
    const lp2p__dc_addrs *l = (const lp2p__dc_addrs *)*arg;
    for (int i = 0; l && i < l->n; i++)
        if (!pb_encode_tag_for_field(st, f) || !pb_encode_string(st, l->a[i].b, l->a[i].len)) return false;
    return true;
}

static int lp2p__dc_send(lp2p_stream *s, lp2p_pb_HolePunch_Type type, const lp2p__dc_addrs *addrs, int64_t deadline) {
    uint8_t buf[LP2P__DCUTR_MSG_MAX];
    lp2p_pb_HolePunch m;
    memset(&m, 0, sizeof m);
    m.type = type;
    m.ObsAddrs.funcs.encode = lp2p__dc_enc_addrs, m.ObsAddrs.arg = (void *)addrs;
    pb_ostream_t st = pb_ostream_from_buffer(buf, sizeof buf);
    if (!pb_encode(&st, lp2p_pb_HolePunch_fields, &m)) return LP2P_ERR_MSGSIZE;
    return lp2p__pipe_write_msg(&s->h->ctx, s->pipe, buf, st.bytes_written, deadline);
}

/* Read one HolePunch of the expected type; its addresses (TCP, not relayed) go to addrs. */
static int lp2p__dc_recv(lp2p_stream *s, lp2p_pb_HolePunch_Type want, lp2p__dc_addrs *addrs, int64_t deadline) {
    uint8_t buf[LP2P__DCUTR_MSG_MAX];
    lp2p__dc_addrs ignored;
    ptrdiff_t n = lp2p__pipe_read_msg(s->pipe, buf, sizeof buf, NULL, deadline);
    if (n == LP2P_ERR_MSGSIZE) return LP2P_ERR_PROTOCOL;
    if (n < 0) return (int)n;
    lp2p_pb_HolePunch m;
    memset(&m, 0, sizeof m);
    if (!addrs) addrs = &ignored;
    addrs->n = 0;
    m.ObsAddrs.funcs.decode = lp2p__dc_dec_addr, m.ObsAddrs.arg = addrs;
    pb_istream_t st = pb_istream_from_buffer(buf, (size_t)n);
    if (!pb_decode(&st, lp2p_pb_HolePunch_fields, &m) || m.type != want) return LP2P_ERR_PROTOCOL;
    return LP2P_OK;
}

/* ---- punching ------------------------------------------------------------------------------------ */
typedef struct lp2p__punch { /* shared by the punching task and its dial tasks; the last frees it */
    lp2p_host *h;
    int refs, live;
    bool taken;         /* the punching task took a winner (or gave up): close later successes */
    lp2p__pipe *winner;
    lp2p__ma local, remote;
    int last_err;
    lp2p__waitq done;
} lp2p__punch;

typedef struct lp2p__punch_dial {
    lp2p__punch *pu;
    lp2p__ma addr;
    int64_t deadline;
} lp2p__punch_dial;

static void lp2p__punch_unref(lp2p__punch *pu) {
    if (--pu->refs == 0) lp2p__free(&pu->h->ctx, pu, sizeof *pu);
}

static void lp2p__punch_dial_task(void *arg) {
    lp2p__punch_dial *d = (lp2p__punch_dial *)arg;
    lp2p__punch *pu = d->pu;
    lp2p_host *h = pu->h;
    lp2p__pipe *raw = NULL;
    lp2p__ma local, remote;
    int port = lp2p__swarm_listen_port(h, &d->addr);
    int rc = lp2p__tcp_dial(h->sched, &d->addr, port, &raw, &local, &remote, d->deadline);
    if (rc == LP2P_OK && (pu->taken || pu->winner)) raw->vt->close(raw); /* another address won */
    else if (rc == LP2P_OK) pu->winner = raw, pu->local = local, pu->remote = remote;
    else pu->last_err = rc;
    lp2p__free(&h->ctx, d, sizeof *d);
    pu->live--;
    lp2p__waitq_wake_all(h->sched, &pu->done);
    lp2p__punch_unref(pu);
}

/* Dial every address of the peer at once from our listen port; upgrade the first TCP connection
 * with our role. A connection that arrives at our listener instead (no NAT in between: the
 * peer's SYN reached the listener before ours left) is upgraded by the swarm: wait a little for
 * it. Returns OK when a direct connection to peer exists. */
static void lp2p__dc_register(lp2p_host *h, lp2p__dc_punching *reg, const lp2p_peer_id *peer,
                              const lp2p__dc_addrs *addrs) {
    reg->peer = *peer, reg->addrs = addrs;
    reg->next = h->dcutr->punching, h->dcutr->punching = reg;
}

static void lp2p__dc_unregister(lp2p_host *h, lp2p__dc_punching *reg) {
    for (lp2p__dc_punching **pp = &h->dcutr->punching; *pp; pp = &(*pp)->next)
        if (*pp == reg) {
            *pp = reg->next;
            return;
        }
}

static int lp2p__punch_run(lp2p_host *h, const lp2p_peer_id *peer, const lp2p__dc_addrs *addrs, bool is_client,
                             lp2p__ma *direct) {
    lp2p__punch *pu = (lp2p__punch *)lp2p__zalloc(&h->ctx, sizeof *pu);
    int64_t deadline = lp2p_deadline_in(LP2P__DCUTR_DIAL_MS);
    int rc = LP2P_OK;
    if (!pu) return LP2P_ERR_NOMEM;
    pu->h = h, pu->refs = 1;
    for (int i = 0; i < addrs->n; i++) {
        lp2p__punch_dial *d = (lp2p__punch_dial *)lp2p__zalloc(&h->ctx, sizeof *d);
        if (!d) break;
        d->pu = pu, d->addr = addrs->a[i], d->deadline = deadline;
        pu->live++, pu->refs++;
        if (!lp2p__spawn(h->sched, lp2p__punch_dial_task, d).id)
            pu->live--, pu->refs--, lp2p__free(&h->ctx, d, sizeof *d);
    }
    while (rc == LP2P_OK && pu->live > 0 && !pu->winner) rc = lp2p__waitq_wait(h->sched, &pu->done, deadline);
    lp2p__pipe *raw = pu->winner;
    lp2p__ma local = pu->local, remote = pu->remote;
    int last_err = pu->last_err;
    pu->taken = true, pu->winner = NULL;
    lp2p__punch_unref(pu); /* dial tasks still running close what they get */
    if (rc == LP2P_ERR_CANCELED) {
        if (raw) raw->vt->reset(raw);
        return rc;
    }
    rc = raw ? LP2P_OK : last_err ? last_err : LP2P_ERR_UNREACHABLE;
    if (raw) {
        lp2p__conn *c = NULL;
        rc = lp2p__swarm_upgrade(h, raw, is_client, peer, &local, &remote, false, &c, lp2p_deadline_in(LP2P__DCUTR_DIAL_MS));
        if (rc == LP2P_OK) {
            *direct = c->remote;
            lp2p__conn_unref(c);
            return LP2P_OK;
        }
    }
    /* did the peer's connection reach our listener? */
    int64_t grace = lp2p_deadline_in(3000);
    for (;;) {
        lp2p__conn *c = lp2p__swarm_find_conn(h, peer);
        if (c && !c->limited) {
            *direct = c->remote;
            return LP2P_OK;
        }
        if (lp2p__waitq_wait(h->sched, &h->conn_wait, grace) != LP2P_OK) break;
    }
    return rc;
}

static void lp2p__dc_result(lp2p_host *h, const lp2p_peer_id *peer, int rc, const lp2p__ma *direct, int attempt) {
    char id[LP2P_PEER_ID_STRLEN], text[LP2P__MA_STRLEN];
    lp2p_peer_id_str(peer, id, sizeof id);
    text[0] = 0;
    if (rc == LP2P_OK && direct && direct->len) lp2p__ma_str(direct, text, sizeof text);
    if (rc == LP2P_OK) LP2P__INFO(&h->ctx, "dcutr: direct connection to %s (%s) on attempt %d", id, text, attempt);
    else LP2P__INFO(&h->ctx, "dcutr: hole punch with %s failed: %s", id, lp2p_strerror(rc));
    if (!h->freeing) lp2p__host_emit(h, LP2P_EVENT_HOLE_PUNCH, peer, text[0] ? text : NULL, NULL, NULL, rc);
}

/* ---- initiator (B: we received the relayed connection) ------------------------------------------ */
static bool lp2p__dc_peer_speaks(lp2p_host *h, const lp2p_peer_id *peer) {
    lp2p__peer *p = lp2p__peerstore_get(h, peer, false);
    if (!p || !p->protocols) return true; /* unknown: just try */
    for (int i = 0; i < p->n_protocols; i++)
        if (strcmp(p->protocols[i], LP2P__DCUTR_PROTO) == 0) return true;
    return false;
}

static int lp2p__dc_attempt(lp2p__conn *c, int attempt, lp2p__ma *direct) {
    lp2p_host *h = c->h;
    lp2p_stream *s = NULL;
    lp2p__dc_addrs *own = (lp2p__dc_addrs *)lp2p__alloc(&h->ctx, sizeof *own);
    lp2p__dc_addrs *theirs = (lp2p__dc_addrs *)lp2p__alloc(&h->ctx, sizeof *theirs);
    int64_t deadline = lp2p_deadline_in(LP2P__DCUTR_STREAM_MS);
    int rc = own && theirs ? lp2p__host_open_on(c, LP2P__DCUTR_PROTO, deadline, &s) : LP2P_ERR_NOMEM;
    if (rc == LP2P_OK) {
        lp2p__dc_own_addrs(h, own);
        rc = lp2p__dc_send(s, lp2p_pb_HolePunch_Type_CONNECT, own, deadline);
    }
    int64_t t0 = lp2p_now();
    if (rc == LP2P_OK) rc = lp2p__dc_recv(s, lp2p_pb_HolePunch_Type_CONNECT, theirs, deadline);
    int64_t rtt = lp2p_now() - t0;
    if (rc == LP2P_OK && theirs->n == 0) rc = LP2P_ERR_NOADDR;
    bool is_client = attempt == LP2P__DCUTR_ATTEMPTS; /* go's last-attempt role flip */
    lp2p__dc_punching reg;
    if (rc == LP2P_OK && is_client) lp2p__dc_register(h, &reg, &c->peer, theirs);
    if (rc == LP2P_OK) rc = lp2p__dc_send(s, lp2p_pb_HolePunch_Type_SYNC, NULL, deadline);
    if (s) {
        if (rc == LP2P_OK) lp2p_stream_close(s);
        else lp2p_stream_reset(s);
    }
    if (rc == LP2P_OK) rc = lp2p__sleep_until(h->sched, lp2p_deadline_in(rtt / 2));
    if (rc == LP2P_OK) rc = lp2p__punch_run(h, &c->peer, theirs, is_client, direct);
    if (theirs && theirs->n && is_client) lp2p__dc_unregister(h, &reg);
    lp2p__free(&h->ctx, own, sizeof *own);
    lp2p__free(&h->ctx, theirs, sizeof *theirs);
    return rc;
}

static void lp2p__dc_initiator_task(void *arg) {
    lp2p__conn *c = (lp2p__conn *)arg;
    lp2p_host *h = c->h;
    lp2p__ma direct;
    int rc = LP2P_OK, attempt = 0;
    direct.len = 0;
    int64_t id_deadline = lp2p_deadline_in(LP2P__DCUTR_IDENTIFY_MS);
    while (!c->identified && !c->closed && rc == LP2P_OK) rc = lp2p__waitq_wait(h->sched, &c->identify_wait, id_deadline);
    if (rc == LP2P_OK && !c->closed && lp2p__dc_peer_speaks(h, &c->peer)) {
        for (attempt = 1; attempt <= LP2P__DCUTR_ATTEMPTS && !c->closed; attempt++) {
            lp2p__conn *d = lp2p__swarm_find_conn(h, &c->peer);
            if (d && !d->limited) { /* a direct connection appeared meanwhile */
                direct = d->remote;
                rc = LP2P_OK;
                break;
            }
            rc = lp2p__dc_attempt(c, attempt, &direct);
            if (rc == LP2P_OK || rc == LP2P_ERR_CANCELED || rc == LP2P_ERR_PROTO_NA) break;
        }
        lp2p__conn *d = lp2p__swarm_find_conn(h, &c->peer);
        if (rc != LP2P_OK && rc != LP2P_ERR_CANCELED && d && !d->limited) { /* the peer came directly (rust
                                                                                  dials our listen addresses,
                                                                                  then drops the relayed link) */
            direct = d->remote;
            rc = LP2P_OK;
        }
        if (rc != LP2P_ERR_CANCELED) lp2p__dc_result(h, &c->peer, rc, &direct, attempt);
    }
    lp2p__conn_unref(c);
}

static void lp2p__dc_connected(void *user, lp2p__conn *c) {
    lp2p__dcutr *d = (lp2p__dcutr *)user;
    lp2p_host *h = d->h;
    bool enabled = false;
    const char *protos[LP2P__MAX_PEER_PROTOCOLS];
    int n = lp2p__host_protocols(h, protos, (int)LP2P__COUNT(protos));
    for (int i = 0; i < n && i < (int)LP2P__COUNT(protos); i++) enabled |= strcmp(protos[i], LP2P__DCUTR_PROTO) == 0;
    if (!enabled || !c->limited || c->outbound) return;
    c->refs++;
    if (!lp2p__spawn(h->sched, lp2p__dc_initiator_task, c).id) c->refs--;
}

/* ---- responder (A: we dialed through the relay) ---------------------------------------------------- */
static void lp2p__dc_serve(lp2p_stream *s, void *user) {
    lp2p_host *h = s->h;
    char id[LP2P_PEER_ID_STRLEN];
    (void)user;
    lp2p_peer_id_str(&s->peer, id, sizeof id);
    if (!s->conn->limited || !s->conn->outbound) { /* go: only on the relayed connection we dialed */
        LP2P__INFO(&h->ctx, "dcutr: stream from %s not on a relayed connection we dialed: refused", id);
        lp2p_stream_reset(s);
        return;
    }
    lp2p__dc_addrs *own = (lp2p__dc_addrs *)lp2p__alloc(&h->ctx, sizeof *own);
    lp2p__dc_addrs *theirs = (lp2p__dc_addrs *)lp2p__alloc(&h->ctx, sizeof *theirs);
    int64_t deadline = lp2p_deadline_in(LP2P__DCUTR_STREAM_MS);
    int rc = own && theirs ? lp2p__dc_recv(s, lp2p_pb_HolePunch_Type_CONNECT, theirs, deadline) : LP2P_ERR_NOMEM;
    if (rc == LP2P_OK && theirs->n == 0) rc = LP2P_ERR_NOADDR;
    lp2p__dc_punching reg; /* from now on their SYN may arrive at our listener: we are the client */
    bool registered = rc == LP2P_OK;
    if (registered) lp2p__dc_register(h, &reg, &s->peer, theirs);
    if (rc == LP2P_OK) {
        lp2p__dc_own_addrs(h, own);
        rc = lp2p__dc_send(s, lp2p_pb_HolePunch_Type_CONNECT, own, deadline);
    }
    if (rc == LP2P_OK) rc = lp2p__dc_recv(s, lp2p_pb_HolePunch_Type_SYNC, NULL, deadline);
    if (rc != LP2P_OK) {
        if (rc == LP2P_ERR_PROTOCOL) LP2P__WARN(&h->ctx, rc, "dcutr: malformed message from %s", id);
        else LP2P__INFO(&h->ctx, "dcutr: exchange with %s failed: %s", id, lp2p_strerror(rc));
        lp2p_stream_reset(s);
    } else {
        lp2p_stream_close(s);
        lp2p__ma direct;
        direct.len = 0;
        lp2p__conn *c = lp2p__swarm_find_conn(h, &s->peer);
        if (c && !c->limited) direct = c->remote, rc = LP2P_OK;
        else rc = lp2p__punch_run(h, &s->peer, theirs, true, &direct);
        if (rc != LP2P_ERR_CANCELED) lp2p__dc_result(h, &s->peer, rc, &direct, 1);
    }
    if (registered) lp2p__dc_unregister(h, &reg);
    lp2p__free(&h->ctx, own, sizeof *own);
    lp2p__free(&h->ctx, theirs, sizeof *theirs);
}

LP2P__PRIV int lp2p__dcutr_init(lp2p_host *h) {
    lp2p__dcutr *d = (lp2p__dcutr *)lp2p__zalloc(&h->ctx, sizeof *d);
    if (!d) return LP2P_ERR_NOMEM;
    d->h = h;
    d->notifee.connected = lp2p__dc_connected;
    d->notifee.user = d;
    h->dcutr = d;
    h->punch_client = lp2p__dc_punch_client;
    lp2p__swarm_add_notifee(h, &d->notifee);
    return lp2p_host_handle(h, LP2P__DCUTR_PROTO, lp2p__dc_serve, d);
}

LP2P__PRIV void lp2p__dcutr_free(lp2p_host *h) {
    h->punch_client = NULL;
    lp2p__free(&h->ctx, h->dcutr, sizeof *h->dcutr);
    h->dcutr = NULL;
}
/*==================== end src/dcutr.c ====================*/
/*==================== begin src/autonat.c ====================*/
/* autonat.c - L7: AutoNAT v2 (client and server) and the AutoNAT v1 server: is this host
 * reachable from outside, and (when it is not) a relay reservation.
 *
 * Spec: libp2p/specs autonat/autonat-v2.md, autonat/autonat-v1.md.
 * v2: the client opens /libp2p/autonat/2/dial-request and sends DialRequest{addrs, nonce}; the
 * server picks the first address it is willing to dial, may first ask for 30-100 kB of dial data
 * (when the address's IP differs from the client's observed IP: amplification guard), dials it
 * on a fresh connection (not from its listen port) and sends DialBack{nonce} on
 * /libp2p/autonat/2/dial-back, then answers DialResponse{status, addrIdx, dialStatus}. The client
 * trusts an OK only if the nonce came back. v1: one DIAL/DIAL_RESPONSE exchange; the server dials
 * only addresses with the requester's observed IP.
 * Servers never serve requests over relayed (limited) connections and never dial private or
 * documentation-range addresses unless lp2p_autonat_config.allow_private_addrs.
 * Verdicts: the first answer sets an unknown status; a known one changes after 2 agreeing
 * answers (the spec suggests > 3 confirmations; go/rust have flapped: go-libp2p #2046).
 * Depends on: host.h (swarm, streams, tcp, relay hook), proto/autonat.pb.h. */
// (amalgamated) #include "host.h"

#include <pb_decode.h>
#include <pb_encode.h>

#define LP2P__AN2_DIAL "/libp2p/autonat/2/dial-request"
#define LP2P__AN2_BACK "/libp2p/autonat/2/dial-back"
#define LP2P__AN1 "/libp2p/autonat/1.0.0"
#define LP2P__HOP_PROTO_ID "/libp2p/circuit/relay/0.2.0/hop"
#define LP2P__AN_MSG_MAX 8192          /* go: maxMsgSize */
#define LP2P__AN_MAX_ADDRS 8           /* addresses we send / consider */
#define LP2P__AN_STREAM_MS 15000       /* go: streamTimeout */
#define LP2P__AN_DIAL_MS 10000         /* go: dialBackDialTimeout */
#define LP2P__AN_DIALBACK_MS 5000      /* go: dialBackStreamTimeout */
#define LP2P__AN_DATA_MIN 30000        /* dial data bounds (go and rust) */
#define LP2P__AN_DATA_MAX 100000
#define LP2P__AN_CHUNK 4096
#define LP2P__AN_REFRESH_MS (10 * 60 * 1000)
#define LP2P__AN_AUTO_TRIES 3          /* automatic probes of one peer that end without a verdict */

typedef struct lp2p__an_probe {
    uint64_t nonce;
    bool dialed_back;
    lp2p__ma local; /* where the dial-back arrived */
    struct lp2p__an_probe *next;
} lp2p__an_probe;

struct lp2p__autonat {
    lp2p_host *h;
    lp2p__notifee notifee;
    bool serving;
    lp2p_autonat_config cfg;
    int active; /* requests being served */
    lp2p__an_probe *probes;
    lp2p_nat_status status, last;
    int streak;
    int64_t status_at;
    bool probing, reserving;
};

typedef struct lp2p__an_addrs {
    lp2p__ma a[LP2P__AN_MAX_ADDRS];
    int n, seen; /* seen: entries in the message (indexes stay the peer's) */
    int idx[LP2P__AN_MAX_ADDRS];
} lp2p__an_addrs;

/* ---- addresses -------------------------------------------------------------------------------- */
static bool lp2p__an_dec_addr(pb_istream_t *st, const pb_field_t *f, void **arg) {
    lp2p__an_addrs *l = (lp2p__an_addrs *)*arg;
    uint8_t tmp[LP2P__MA_MAX];
    size_t n = st->bytes_left;
    (void)f;
    int index = l->seen++;
    if (n > sizeof tmp || l->n >= LP2P__AN_MAX_ADDRS) return pb_read(st, NULL, n);
    if (!pb_read(st, tmp, n)) return false;
    if (lp2p__ma_from_bytes(tmp, n, &l->a[l->n], NULL) == LP2P_OK) l->idx[l->n++] = index;
    return true;
}

static bool lp2p__an_enc_addrs(pb_ostream_t *st, const pb_field_t *f, void *const *arg) {
    const lp2p__an_addrs *l = (const lp2p__an_addrs *)*arg;
    for (int i = 0; i < l->n; i++)
        if (!pb_encode_tag_for_field(st, f) || !pb_encode_string(st, l->a[i].b, l->a[i].len)) return false;
    return true;
}

/* The IP component (code + bytes) of an address, for "same IP as observed" checks. */
static bool lp2p__an_same_ip(const lp2p__ma *a, const lp2p__ma *b) {
    size_t la = a->len && a->b[0] == LP2P__MA_IP4 ? 5 : a->len && a->b[0] == LP2P__MA_IP6 ? 17 : 0;
    return la && a->len >= la && b->len >= la && memcmp(a->b, b->b, la) == 0;
}

/* Publicly routable? Not private, loopback, link-local, shared (100.64/10), documentation
 * (192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32), multicast or reserved. */
static bool lp2p__an_is_public(const lp2p__ma *ma) {
    if (ma->len >= 5 && ma->b[0] == LP2P__MA_IP4) {
        const uint8_t *v = ma->b + 1;
        if (v[0] == 0 || v[0] == 10 || v[0] == 127 || v[0] >= 224) return false;
        if (v[0] == 100 && (v[1] & 0xc0) == 64) return false;
        if (v[0] == 169 && v[1] == 254) return false;
        if (v[0] == 172 && (v[1] & 0xf0) == 16) return false;
        if (v[0] == 192 && v[1] == 168) return false;
        if (v[0] == 192 && v[1] == 0 && (v[2] == 0 || v[2] == 2)) return false;
        if (v[0] == 198 && ((v[1] & 0xfe) == 18 || (v[1] == 51 && v[2] == 100))) return false;
        if (v[0] == 203 && v[1] == 0 && v[2] == 113) return false;
        return true;
    }
    if (ma->len >= 17 && ma->b[0] == LP2P__MA_IP6) {
        const uint8_t *v = ma->b + 1;
        if ((v[0] & 0xe0) != 0x20) return false; /* global unicast is 2000::/3 */
        return !(v[0] == 0x20 && v[1] == 0x01 && v[2] == 0x0d && v[3] == 0xb8);
    }
    return false;
}

static bool lp2p__an_dialable(lp2p__autonat *an, const lp2p__ma *ma) {
    return lp2p__ma_is_tcp(ma) && !lp2p__ma_is_circuit(ma) && (an->cfg.allow_private_addrs || lp2p__an_is_public(ma));
}

static int lp2p__an_port(const lp2p__ma *ma) {
    size_t off = 0, vn;
    uint32_t code;
    const uint8_t *v;
    while (lp2p__ma_next(ma, &off, &code, &v, &vn))
        if (code == LP2P__MA_TCP && vn == 2) return lp2p__be16(v);
    return -1;
}

/* Our candidates, best first (the server dials only the first it accepts): what peers observed
 * of our listen port (a NAT's mapping of it: we dial from the listen port), our specific listen
 * addresses, then other observed addresses (ephemeral dial ports: a dial-only host's last hope). */
static void lp2p__an_own_addrs(lp2p_host *h, lp2p__an_addrs *out) {
    static const uint8_t zero[16] = {0};
    out->n = 0;
    for (int pass = 0; pass < 3; pass++) {
        const lp2p__ma *cand[LP2P__MAX_PEER_ADDRS * 4];
        int nc = 0;
        if (pass == 1)
            for (lp2p__listener *l = h->listeners; l && nc < (int)LP2P__COUNT(cand); l = l->next) cand[nc++] = &l->addr;
        else
            for (lp2p__peer *p = h->peers; p && nc < (int)LP2P__COUNT(cand); p = p->next) {
                if (!p->observed.len) continue;
                bool listen_port = false;
                for (lp2p__listener *l = h->listeners; l && !listen_port; l = l->next)
                    listen_port = lp2p__an_port(&l->addr) == lp2p__an_port(&p->observed);
                if (listen_port == (pass == 0)) cand[nc++] = &p->observed;
            }
        for (int i = 0; i < nc && out->n < LP2P__AN_MAX_ADDRS; i++) {
            lp2p__ma base;
            lp2p__ma_split_p2p(cand[i], &base, NULL);
            if (!lp2p__ma_is_tcp(&base) || lp2p__ma_is_circuit(&base)) continue;
            if ((base.b[0] == LP2P__MA_IP4 && !memcmp(base.b + 1, zero, 4)) ||
                (base.b[0] == LP2P__MA_IP6 && !memcmp(base.b + 1, zero, 16)))
                continue; /* wildcard listener */
            bool dup = false;
            for (int k = 0; k < out->n && !dup; k++) dup = lp2p__ma_eq(&out->a[k], &base);
            if (!dup) out->a[out->n++] = base;
        }
    }
}

/* ---- messages --------------------------------------------------------------------------------- */
static int lp2p__an_send(lp2p_host *h, lp2p__pipe *p, const pb_msgdesc_t *fields, const void *msg, int64_t deadline) {
    uint8_t *buf = (uint8_t *)lp2p__alloc(&h->ctx, LP2P__AN_MSG_MAX);
    if (!buf) return LP2P_ERR_NOMEM;
    pb_ostream_t st = pb_ostream_from_buffer(buf, LP2P__AN_MSG_MAX);
    int rc = pb_encode(&st, fields, msg) ? lp2p__pipe_write_msg(&h->ctx, p, buf, st.bytes_written, deadline)
                                         : LP2P_ERR_MSGSIZE;
    lp2p__free(&h->ctx, buf, LP2P__AN_MSG_MAX);
    return rc;
}

static int lp2p__an_recv(lp2p_host *h, lp2p__pipe *p, const pb_msgdesc_t *fields, void *msg, int64_t deadline) {
    uint8_t *buf = (uint8_t *)lp2p__alloc(&h->ctx, LP2P__AN_MSG_MAX);
    if (!buf) return LP2P_ERR_NOMEM;
    ptrdiff_t n = lp2p__pipe_read_msg(p, buf, LP2P__AN_MSG_MAX, NULL, deadline);
    int rc = n < 0 ? (int)n : LP2P_OK;
    if (rc == LP2P_OK) {
        pb_istream_t st = pb_istream_from_buffer(buf, (size_t)n);
        if (!pb_decode(&st, fields, msg)) rc = LP2P_ERR_PROTOCOL;
    }
    lp2p__free(&h->ctx, buf, LP2P__AN_MSG_MAX);
    return rc == LP2P_ERR_MSGSIZE ? LP2P_ERR_PROTOCOL : rc;
}

/* ---- status ----------------------------------------------------------------------------------- */
static void lp2p__an_reserve_task(void *arg);

static void lp2p__an_result(lp2p__autonat *an, lp2p_nat_status r) {
    lp2p_host *h = an->h;
    an->streak = r == an->last ? an->streak + 1 : 1;
    an->last = r;
    an->status_at = lp2p_now();
    if (r == an->status || (an->status != LP2P_NAT_UNKNOWN && an->streak < 2)) return;
    an->status = r;
    LP2P__INFO(&h->ctx, "autonat: reachability is now %s", r == LP2P_NAT_PUBLIC ? "public" : "private");
    if (!h->freeing) lp2p__host_emit(h, LP2P_EVENT_NAT_STATUS, &h->identity.id, NULL, NULL, NULL, (int)r);
    for (lp2p__notifee *n = h->notifees; n && !h->freeing; n = n->next)
        if (n->nat_changed) n->nat_changed(n->user, (int)r); /* e.g. a DHT in AUTO mode */
    if (r == LP2P_NAT_PRIVATE && !an->reserving && !lp2p__relay_has_reservation(h)) {
        an->reserving = true;
        if (!lp2p__spawn(h->sched, lp2p__an_reserve_task, an).id) an->reserving = false;
    }
}

LP2P_API lp2p_nat_status lp2p_host_nat_status(lp2p_host *h) { return h->autonat->status; }

/* Private: reserve on a relay we are connected to (the first peer offering hop). */
static void lp2p__an_reserve_task(void *arg) {
    lp2p__autonat *an = (lp2p__autonat *)arg;
    lp2p_host *h = an->h;
    for (lp2p__conn *c = h->conns; c && !lp2p__relay_has_reservation(h); c = c->next) {
        lp2p__peer *p = c->closed || c->limited ? NULL : lp2p__peerstore_get(h, &c->peer, false);
        bool relay = false;
        for (int i = 0; p && i < p->n_protocols && !relay; i++) relay = strcmp(p->protocols[i], LP2P__HOP_PROTO_ID) == 0;
        if (!relay) continue;
        char id[LP2P_PEER_ID_STRLEN];
        lp2p_peer_id_str(&c->peer, id, sizeof id);
        int rc = lp2p_relay_reserve(h, id, lp2p_deadline_in(LP2P__AN_STREAM_MS));
        LP2P__INFO(&h->ctx, "autonat: private: reservation on relay %s: %s", id, lp2p_strerror(rc));
        break; /* the list may have changed while we waited */
    }
    an->reserving = false;
}

/* ---- client ----------------------------------------------------------------------------------- */
/* Send DialDataResponse messages carrying n bytes (chunks of 4 KiB). */
static bool lp2p__an_enc_zero(pb_ostream_t *st, const pb_field_t *f, void *const *arg) {
    static const uint8_t zero[LP2P__AN_CHUNK];
    size_t n = *(const size_t *)*arg;
    return pb_encode_tag_for_field(st, f) && pb_encode_string(st, zero, n);
}

static int lp2p__an_send_data(lp2p_host *h, lp2p__pipe *p, uint64_t total, int64_t deadline) {
    int rc = LP2P_OK;
    for (uint64_t sent = 0; sent < total && rc == LP2P_OK;) {
        size_t n = (size_t)LP2P__MIN((uint64_t)LP2P__AN_CHUNK, total - sent);
        lp2p_pb_AN2Message m;
        memset(&m, 0, sizeof m);
        m.has_dialDataResponse = true;
        m.dialDataResponse.data.funcs.encode = lp2p__an_enc_zero, m.dialDataResponse.data.arg = &n;
        rc = lp2p__an_send(h, p, lp2p_pb_AN2Message_fields, &m, deadline);
        sent += n;
    }
    return rc;
}

static int lp2p__an_exchange(lp2p_host *h, lp2p_stream *s, lp2p__an_addrs *own, uint64_t nonce, int64_t deadline,
                             lp2p_pb_AN2DialResponse *resp) {
    lp2p_pb_AN2Message *m = (lp2p_pb_AN2Message *)lp2p__zalloc(&h->ctx, sizeof *m);
    if (!m) return LP2P_ERR_NOMEM;
    m->has_dialRequest = true;
    m->dialRequest.addrs.funcs.encode = lp2p__an_enc_addrs, m->dialRequest.addrs.arg = own;
    m->dialRequest.has_nonce = true, m->dialRequest.nonce = nonce;
    int rc = lp2p__an_send(h, s->pipe, lp2p_pb_AN2Message_fields, m, deadline);
    for (int rounds = 0; rc == LP2P_OK; rounds++) {
        memset(m, 0, sizeof *m);
        rc = lp2p__an_recv(h, s->pipe, lp2p_pb_AN2Message_fields, m, deadline);
        if (rc) break;
        if (m->has_dialResponse) {
            *resp = m->dialResponse;
            break;
        }
        /* one dial-data request, for one of our addresses, within the bounds (else refuse) */
        if (!m->has_dialDataRequest || rounds > 0 || m->dialDataRequest.numBytes > LP2P__AN_DATA_MAX ||
            m->dialDataRequest.addrIdx >= (uint32_t)own->n) {
            rc = LP2P_ERR_PROTOCOL;
            break;
        }
        rc = lp2p__an_send_data(h, s->pipe, m->dialDataRequest.numBytes, deadline);
    }
    lp2p__free(&h->ctx, m, sizeof *m);
    return rc;
}

LP2P_API int lp2p_autonat_probe(lp2p_host *h, const char *server, int64_t deadline) {
    lp2p__autonat *an = h->autonat;
    lp2p__conn *c = NULL;
    lp2p_stream *s = NULL;
    lp2p__an_addrs own;
    lp2p__an_own_addrs(h, &own);
    if (own.n == 0) return LP2P_ERR_NOADDR;
    int rc = lp2p__swarm_connect(h, server, &c, deadline);
    if (rc) return rc;
    if (c->limited) { /* servers refuse these; a dial-back could not prove anything anyway */
        lp2p__conn_unref(c);
        return LP2P_ERR_INVALID;
    }
    lp2p__an_probe probe;
    memset(&probe, 0, sizeof probe);
    lp2p__random(&probe.nonce, sizeof probe.nonce);
    probe.next = an->probes, an->probes = &probe;
    int64_t step = lp2p__deadline_min(deadline, lp2p_deadline_in(LP2P__AN_STREAM_MS + LP2P__AN_DIAL_MS));
    rc = lp2p__host_open_on(c, LP2P__AN2_DIAL, step, &s);
    char id[LP2P_PEER_ID_STRLEN];
    lp2p_peer_id_str(&c->peer, id, sizeof id);
    lp2p__conn_unref(c);
    lp2p_pb_AN2DialResponse resp;
    memset(&resp, 0, sizeof resp);
    if (rc == LP2P_OK) rc = lp2p__an_exchange(h, s, &own, probe.nonce, step, &resp);
    for (lp2p__an_probe **pp = &an->probes; *pp; pp = &(*pp)->next)
        if (*pp == &probe) {
            *pp = probe.next;
            break;
        }
    if (s) {
        if (rc) lp2p_stream_reset(s);
        else lp2p_stream_close(s);
    }
    if (rc) {
        if (rc == LP2P_ERR_PROTOCOL) LP2P__WARN(&h->ctx, rc, "autonat: malformed answer from %s", id);
        return rc;
    }
    if (resp.status == lp2p_pb_AN2DialResponse_ResponseStatus_E_REQUEST_REJECTED ||
        resp.status == lp2p_pb_AN2DialResponse_ResponseStatus_E_DIAL_REFUSED) {
        LP2P__INFO(&h->ctx, "autonat: %s refused (status %d)", id, (int)resp.status);
        return LP2P_ERR_LIMIT;
    }
    if (resp.status != lp2p_pb_AN2DialResponse_ResponseStatus_OK || resp.addrIdx >= (uint32_t)own.n) return LP2P_ERR_PROTOCOL;
    char addr[LP2P__MA_STRLEN];
    lp2p__ma_str(&own.a[resp.addrIdx], addr, sizeof addr);
    if (resp.dialStatus == lp2p_pb_AN2DialStatus_AN2_OK) {
        if (!probe.dialed_back) { /* autonat-v2.md: an OK without our nonce is discarded */
            LP2P__WARN(&h->ctx, LP2P_ERR_PROTOCOL, "autonat: %s says it reached %s, but no dial-back with our nonce came",
                       id, addr);
            return LP2P_ERR_PROTOCOL;
        }
        LP2P__INFO(&h->ctx, "autonat: %s reached us at %s", id, addr);
        lp2p__an_result(an, LP2P_NAT_PUBLIC);
        return LP2P_NAT_PUBLIC;
    }
    if (resp.dialStatus == lp2p_pb_AN2DialStatus_AN2_E_DIAL_ERROR) {
        LP2P__INFO(&h->ctx, "autonat: %s could not dial %s", id, addr);
        lp2p__an_result(an, LP2P_NAT_PRIVATE);
        return LP2P_NAT_PRIVATE;
    }
    return LP2P_ERR_PROTOCOL; /* E_DIAL_BACK_ERROR: reached, but the proof failed: no verdict */
}

/* dial-back: the server proves it reached us. Only nonces of our own pending probes count. */
static void lp2p__an_dialback_serve(lp2p_stream *s, void *user) {
    lp2p__autonat *an = (lp2p__autonat *)user;
    lp2p_host *h = an->h;
    lp2p_pb_AN2DialBack m;
    memset(&m, 0, sizeof m);
    int rc = lp2p__an_recv(h, s->pipe, lp2p_pb_AN2DialBack_fields, &m, lp2p_deadline_in(LP2P__AN_DIALBACK_MS));
    lp2p__an_probe *p = an->probes;
    while (rc == LP2P_OK && p && p->nonce != m.nonce) p = p->next;
    if (!p) {
        if (rc == LP2P_OK) LP2P__INFO(&h->ctx, "autonat: dial-back with an unknown nonce: ignored");
        lp2p_stream_reset(s);
        return;
    }
    p->dialed_back = true;
    p->local = s->conn->local;
    lp2p_pb_AN2DialBackResponse r;
    memset(&r, 0, sizeof r);
    r.has_status = true, r.status = lp2p_pb_AN2DialBackResponse_DialBackStatus_OK;
    lp2p__an_send(h, s->pipe, lp2p_pb_AN2DialBackResponse_fields, &r, lp2p_deadline_in(LP2P__AN_DIALBACK_MS));
}

/* Automatic probes: after identify, ask a peer that serves v2 when our status is stale. */
static void lp2p__an_auto_task(void *arg) {
    lp2p__conn *c = (lp2p__conn *)arg;
    lp2p_host *h = c->h;
    lp2p__autonat *an = h->autonat;
    int64_t deadline = lp2p_deadline_in(LP2P__AN_STREAM_MS);
    int rc = LP2P_OK;
    while (!c->identified && !c->closed && rc == LP2P_OK) rc = lp2p__waitq_wait(h->sched, &c->identify_wait, deadline);
    lp2p__peer *p = rc == LP2P_OK && !c->closed ? lp2p__peerstore_get(h, &c->peer, false) : NULL;
    bool serves = false;
    for (int i = 0; p && i < p->n_protocols && !serves; i++) serves = strcmp(p->protocols[i], LP2P__AN2_DIAL) == 0;
    /* A probe that dies with its connection gets another try on the peer's next one: the
     * connection it ran on may have been a short-lived one (e.g. the fresh connection our own
     * AutoNAT service opened to dial that peer back, which it closes at once). */
    for (int attempt = 1; serves && !an->probing && !h->freeing && attempt <= LP2P__AN_AUTO_TRIES; attempt++) {
        bool stale = an->status == LP2P_NAT_UNKNOWN || lp2p_now() - an->status_at > LP2P__AN_REFRESH_MS;
        if (!stale) break;
        char id[LP2P_PEER_ID_STRLEN];
        lp2p_peer_id_str(&c->peer, id, sizeof id);
        an->probing = true;
        rc = lp2p_autonat_probe(h, id, lp2p_deadline_in(LP2P__AN_STREAM_MS + LP2P__AN_DIAL_MS));
        an->probing = false;
        LP2P__DEBUG(&h->ctx, "autonat: automatic probe %d via %s: %d", attempt, id, rc);
        if (rc >= 0 || rc == LP2P_ERR_LIMIT || rc == LP2P_ERR_PROTO_NA || rc == LP2P_ERR_NOADDR ||
            rc == LP2P_ERR_PROTOCOL || rc == LP2P_ERR_CANCELED || !lp2p_host_is_connected(h, &c->peer))
            break; /* a verdict, a refusal, or nobody left to ask */
        if (lp2p__sleep_until(h->sched, lp2p_deadline_in(1000)) != LP2P_OK) break;
    }
    lp2p__conn_unref(c);
}

static void lp2p__an_connected(void *user, lp2p__conn *c) {
    lp2p__autonat *an = (lp2p__autonat *)user;
    if (c->limited || an->probing || an->h->freeing) return;
    c->refs++;
    if (!lp2p__spawn(an->h->sched, lp2p__an_auto_task, c).id) c->refs--;
}

/* ---- server ----------------------------------------------------------------------------------- */
/* Dial peer at addr on a fresh connection (ephemeral port) and hand it to fn; then close it. */
static int lp2p__an_dial_fresh(lp2p_host *h, const lp2p_peer_id *peer, const lp2p__ma *addr, lp2p__conn **out) {
    lp2p__pipe *raw = NULL;
    lp2p__ma local, remote;
    int64_t deadline = lp2p_deadline_in(LP2P__AN_DIAL_MS);
    int rc = lp2p__tcp_dial(h->sched, addr, 0, &raw, &local, &remote, deadline);
    if (rc == LP2P_OK) rc = lp2p__swarm_upgrade(h, raw, true, peer, &local, addr, false, out, deadline);
    return rc;
}

static lp2p_pb_AN2DialStatus lp2p__an_dial_back(lp2p_host *h, const lp2p_peer_id *peer, const lp2p__ma *addr,
                                                uint64_t nonce) {
    lp2p__conn *c = NULL;
    lp2p_stream *s = NULL;
    if (lp2p__an_dial_fresh(h, peer, addr, &c) != LP2P_OK) return lp2p_pb_AN2DialStatus_AN2_E_DIAL_ERROR;
    int64_t deadline = lp2p_deadline_in(LP2P__AN_DIALBACK_MS);
    int rc = lp2p__host_open_on(c, LP2P__AN2_BACK, deadline, &s);
    if (rc == LP2P_OK) {
        lp2p_pb_AN2DialBack m;
        memset(&m, 0, sizeof m);
        m.has_nonce = true, m.nonce = nonce;
        rc = lp2p__an_send(h, s->pipe, lp2p_pb_AN2DialBack_fields, &m, deadline);
        if (rc == LP2P_OK) { /* wait for the answer (or EOF) so the nonce surely arrived */
            lp2p_stream_close_write(s);
            uint8_t b[16];
            rc = lp2p_stream_read(s, b, sizeof b, deadline) > 0 ? LP2P_OK : LP2P_ERR_EOF;
        }
        if (rc) lp2p_stream_reset(s);
        else lp2p_stream_close(s);
    }
    lp2p__conn_close(c);
    lp2p__conn_unref(c);
    return rc == LP2P_OK ? lp2p_pb_AN2DialStatus_AN2_OK : lp2p_pb_AN2DialStatus_AN2_E_DIAL_BACK_ERROR;
}

static bool lp2p__an_count_data(pb_istream_t *st, const pb_field_t *f, void **arg) {
    size_t n = st->bytes_left;
    (void)f;
    *(uint64_t *)*arg += n;
    return pb_read(st, NULL, n);
}

/* Read dial data until numBytes arrived; messages must carry >= 100 bytes (go's rule). */
static int lp2p__an_read_data(lp2p_host *h, lp2p__pipe *p, uint64_t want, int64_t deadline) {
    uint64_t got = 0;
    while (got < want) {
        uint64_t n = 0;
        lp2p_pb_AN2Message m;
        memset(&m, 0, sizeof m);
        m.dialDataResponse.data.funcs.decode = lp2p__an_count_data, m.dialDataResponse.data.arg = &n;
        int rc = lp2p__an_recv(h, p, lp2p_pb_AN2Message_fields, &m, deadline);
        if (rc) return rc;
        if (!m.has_dialDataResponse || (n < 100 && got + n < want)) return LP2P_ERR_PROTOCOL;
        got += n;
    }
    return LP2P_OK;
}

static int lp2p__an2_respond(lp2p_host *h, lp2p_stream *s, lp2p_pb_AN2DialResponse_ResponseStatus st, uint32_t idx,
                             lp2p_pb_AN2DialStatus ds) {
    lp2p_pb_AN2Message m;
    memset(&m, 0, sizeof m);
    m.has_dialResponse = true;
    m.dialResponse.has_status = true, m.dialResponse.status = st;
    if (st == lp2p_pb_AN2DialResponse_ResponseStatus_OK) {
        m.dialResponse.has_addrIdx = true, m.dialResponse.addrIdx = idx;
        m.dialResponse.has_dialStatus = true, m.dialResponse.dialStatus = ds;
    }
    return lp2p__an_send(h, s->pipe, lp2p_pb_AN2Message_fields, &m, lp2p_deadline_in(LP2P__AN_STREAM_MS));
}

static void lp2p__an2_serve_request(lp2p__autonat *an, lp2p_stream *s) {
    lp2p_host *h = an->h;
    char id[LP2P_PEER_ID_STRLEN];
    lp2p_peer_id_str(&s->peer, id, sizeof id);
    int64_t deadline = lp2p_deadline_in(LP2P__AN_STREAM_MS);
    lp2p_pb_AN2Message *m = (lp2p_pb_AN2Message *)lp2p__zalloc(&h->ctx, sizeof *m);
    lp2p__an_addrs *addrs = (lp2p__an_addrs *)lp2p__zalloc(&h->ctx, sizeof *addrs);
    int rc = m && addrs ? LP2P_OK : LP2P_ERR_NOMEM;
    if (rc == LP2P_OK) {
        m->dialRequest.addrs.funcs.decode = lp2p__an_dec_addr, m->dialRequest.addrs.arg = addrs;
        rc = lp2p__an_recv(h, s->pipe, lp2p_pb_AN2Message_fields, m, deadline);
    }
    if (rc == LP2P_OK && !m->has_dialRequest) rc = LP2P_ERR_PROTOCOL;
    if (rc) {
        if (rc == LP2P_ERR_PROTOCOL) LP2P__WARN(&h->ctx, rc, "autonat: malformed dial request from %s", id);
        lp2p_stream_reset(s);
    } else {
        int pick = -1;
        for (int i = 0; i < addrs->n && pick < 0; i++)
            if (lp2p__an_dialable(an, &addrs->a[i])) pick = i;
        if (pick < 0) {
            LP2P__INFO(&h->ctx, "autonat: nothing we may dial among %d addresses of %s", addrs->seen, id);
            lp2p__an2_respond(h, s, lp2p_pb_AN2DialResponse_ResponseStatus_E_DIAL_REFUSED, 0, 0);
        } else {
            /* another IP than the one we see: make the requester pay in bytes first (amplification) */
            if (!lp2p__an_same_ip(&addrs->a[pick], &s->conn->remote)) {
                uint32_t r;
                lp2p__random(&r, sizeof r);
                uint64_t want = LP2P__AN_DATA_MIN + r % (LP2P__AN_DATA_MAX - LP2P__AN_DATA_MIN);
                m->has_dialDataRequest = true, m->has_dialRequest = false, m->has_dialResponse = false;
                m->dialDataRequest.has_addrIdx = true, m->dialDataRequest.addrIdx = (uint32_t)addrs->idx[pick];
                m->dialDataRequest.has_numBytes = true, m->dialDataRequest.numBytes = want;
                m->dialRequest.addrs.funcs.encode = NULL;
                rc = lp2p__an_send(h, s->pipe, lp2p_pb_AN2Message_fields, m, deadline);
                if (rc == LP2P_OK) rc = lp2p__an_read_data(h, s->pipe, want, deadline);
                if (rc) LP2P__INFO(&h->ctx, "autonat: %s did not send the dial data: %s", id, lp2p_strerror(rc));
            }
            if (rc == LP2P_OK) {
                lp2p_pb_AN2DialStatus ds = lp2p__an_dial_back(h, &s->peer, &addrs->a[pick], m->dialRequest.nonce);
                rc = lp2p__an2_respond(h, s, lp2p_pb_AN2DialResponse_ResponseStatus_OK, (uint32_t)addrs->idx[pick], ds);
            } else {
                lp2p_stream_reset(s);
            }
        }
    }
    lp2p__free(&h->ctx, m, sizeof *m);
    lp2p__free(&h->ctx, addrs, sizeof *addrs);
}

static void lp2p__an2_serve(lp2p_stream *s, void *user) {
    lp2p__autonat *an = (lp2p__autonat *)user;
    if (!an->serving || s->conn->limited) { /* autonat-v2.md: not over relayed connections */
        lp2p_stream_reset(s);
        return;
    }
    if (an->active >= an->cfg.max_concurrent) {
        LP2P__WARN(&an->h->ctx, LP2P_ERR_LIMIT, "autonat: max_concurrent=%d reached: request rejected",
                   an->cfg.max_concurrent);
        lp2p__an2_respond(an->h, s, lp2p_pb_AN2DialResponse_ResponseStatus_E_REQUEST_REJECTED, 0, 0);
        return;
    }
    an->active++;
    lp2p__an2_serve_request(an, s);
    an->active--;
}

/* v1: dial back on addresses with the requester's observed IP (autonat-v1.md). */
static void lp2p__an1_serve(lp2p_stream *s, void *user) {
    lp2p__autonat *an = (lp2p__autonat *)user;
    lp2p_host *h = an->h;
    if (!an->serving || s->conn->limited || an->active >= an->cfg.max_concurrent) {
        lp2p_stream_reset(s);
        return;
    }
    an->active++;
    int64_t deadline = lp2p_deadline_in(LP2P__AN_STREAM_MS);
    lp2p__an_addrs *addrs = (lp2p__an_addrs *)lp2p__zalloc(&h->ctx, sizeof *addrs);
    lp2p_pb_AN1Message *m = (lp2p_pb_AN1Message *)lp2p__zalloc(&h->ctx, sizeof *m);
    int rc = m && addrs ? LP2P_OK : LP2P_ERR_NOMEM;
    if (rc == LP2P_OK) {
        m->dial.peer.addrs.funcs.decode = lp2p__an_dec_addr, m->dial.peer.addrs.arg = addrs;
        rc = lp2p__an_recv(h, s->pipe, lp2p_pb_AN1Message_fields, m, deadline);
    }
    if (rc) {
        lp2p_stream_reset(s);
    } else {
        lp2p_pb_AN1Message_ResponseStatus st = lp2p_pb_AN1Message_ResponseStatus_E_DIAL_REFUSED;
        lp2p_peer_id claimed;
        lp2p__ma reached;
        reached.len = 0;
        if (!m->has_type || m->type != lp2p_pb_AN1Message_MessageType_DIAL || !m->has_dial || !m->dial.peer.has_id ||
            lp2p__peer_id_from_bytes(m->dial.peer.id.bytes, m->dial.peer.id.size, &claimed) ||
            !lp2p_peer_id_eq(&claimed, &s->peer)) {
            st = lp2p_pb_AN1Message_ResponseStatus_E_BAD_REQUEST;
        } else {
            for (int i = 0, tried = 0; i < addrs->n && tried < 3 && !reached.len; i++) {
                if (!lp2p__an_dialable(an, &addrs->a[i]) || !lp2p__an_same_ip(&addrs->a[i], &s->conn->remote)) continue;
                tried++;
                st = lp2p_pb_AN1Message_ResponseStatus_E_DIAL_ERROR;
                lp2p__conn *c = NULL;
                if (lp2p__an_dial_fresh(h, &s->peer, &addrs->a[i], &c) == LP2P_OK) {
                    reached = addrs->a[i];
                    st = lp2p_pb_AN1Message_ResponseStatus_OK;
                    lp2p__conn_close(c);
                    lp2p__conn_unref(c);
                }
            }
        }
        memset(m, 0, sizeof *m);
        m->has_type = true, m->type = lp2p_pb_AN1Message_MessageType_DIAL_RESPONSE;
        m->has_dialResponse = true, m->dialResponse.has_status = true, m->dialResponse.status = st;
        if (reached.len) {
            m->dialResponse.has_addr = true, m->dialResponse.addr.size = reached.len;
            memcpy(m->dialResponse.addr.bytes, reached.b, reached.len);
        }
        lp2p__an_send(h, s->pipe, lp2p_pb_AN1Message_fields, m, deadline);
    }
    lp2p__free(&h->ctx, m, sizeof *m);
    lp2p__free(&h->ctx, addrs, sizeof *addrs);
    an->active--;
}

LP2P_API int lp2p_autonat_service_start(lp2p_host *h, const lp2p_autonat_config *cfg) {
    lp2p__autonat *an = h->autonat;
    if (cfg) an->cfg = *cfg;
    else memset(&an->cfg, 0, sizeof an->cfg);
    if (an->cfg.max_concurrent <= 0) an->cfg.max_concurrent = 4;
    an->serving = true;
    int rc = lp2p_host_handle(h, LP2P__AN2_DIAL, lp2p__an2_serve, an);
    if (rc == LP2P_OK) rc = lp2p_host_handle(h, LP2P__AN1, lp2p__an1_serve, an);
    return rc;
}

LP2P__PRIV int lp2p__autonat_init(lp2p_host *h) {
    lp2p__autonat *an = (lp2p__autonat *)lp2p__zalloc(&h->ctx, sizeof *an);
    if (!an) return LP2P_ERR_NOMEM;
    an->h = h;
    an->cfg.max_concurrent = 4;
    an->notifee.connected = lp2p__an_connected;
    an->notifee.user = an;
    h->autonat = an;
    lp2p__swarm_add_notifee(h, &an->notifee);
    return lp2p_host_handle(h, LP2P__AN2_BACK, lp2p__an_dialback_serve, an);
}

LP2P__PRIV void lp2p__autonat_free(lp2p_host *h) {
    lp2p__free(&h->ctx, h->autonat, sizeof *h->autonat);
    h->autonat = NULL;
}
/*==================== end src/autonat.c ====================*/
/*==================== begin src/mdns.c ====================*/
/* mdns.c - L7: LAN peer discovery with multicast DNS.
 *
 * Spec: libp2p/specs discovery/mdns.md; DNS wire format RFC 1035, mDNS RFC 6762, DNS-SD RFC 6763.
 * We query PTR "_p2p._udp.local" every interval and answer such queries with
 *   answer:     PTR  _p2p._udp.local            -> <name>._p2p._udp.local
 *   additional: TXT  <name>._p2p._udp.local     "dnsaddr=<addr>/p2p/<id>" (one string per address)
 *               SRV  <name>._p2p._udp.local     0 0 <port> <name>.local
 *               A    <name>.local               <our IPv4>
 * where <name> is 40 random lowercase letters and digits (not the peer ID). go's resolver
 * (libp2p/zeroconf) drops entries without an SRV+A pair, rust reads TXT among the additional
 * records, js reads answers and additional records: this layout satisfies all three.
 * From responses we take every "dnsaddr=" TXT string with a /p2p/ suffix that is not ours.
 * Parsing is bounded: names <= 255 bytes with at most 16 compression jumps, at most 64 records
 * and 64 TXT strings per packet, packets <= 9000 bytes.
 * Depends on: host.h (peerstore, events), POSIX UDP sockets with IPv4 multicast. */
// (amalgamated) #include "host.h"

#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <unistd.h>

#define LP2P__MDNS_PORT 5353
#define LP2P__MDNS_GROUP "224.0.0.251"
#define LP2P__MDNS_SERVICE "_p2p._udp.local"
#define LP2P__MDNS_PKT 9000
#define LP2P__MDNS_TTL 120 /* seconds, as go and rust */
#define LP2P__MDNS_MAX_RR 64
#define LP2P__MDNS_NAME_MAX 256
#define LP2P__MDNS_TYPE_A 1
#define LP2P__MDNS_TYPE_PTR 12
#define LP2P__MDNS_TYPE_TXT 16
#define LP2P__MDNS_TYPE_SRV 33
#define LP2P__MDNS_TYPE_ANY 255

struct lp2p__mdns {
    lp2p_host *h;
    int refs; /* the host's + one per running task */
    int fd;
    bool stopped;
    lp2p_mdns_config cfg;
    char service[LP2P__MDNS_NAME_MAX];
    char name[48]; /* our instance label */
    struct sockaddr_in dest; /* where queries and answers go (the group, or a test peer) */
    uint32_t iface;          /* IPv4 for the A record (network order), 0 = unknown */
    lp2p_task reader, querier;
    int64_t last_answer;
    struct { lp2p_peer_id peer; int64_t at; } seen[64]; /* peers reported lately (event throttle) */
};

/* ---- DNS encoding --------------------------------------------------------------------------- */
typedef struct lp2p__dns_w {
    uint8_t *p;
    size_t len, cap;
    bool overflow;
} lp2p__dns_w;

static void lp2p__dw_bytes(lp2p__dns_w *w, const void *b, size_t n) {
    if (w->len + n > w->cap) {
        w->overflow = true;
        return;
    }
    memcpy(w->p + w->len, b, n);
    w->len += n;
}
static void lp2p__dw_u16(lp2p__dns_w *w, uint16_t v) {
    uint8_t b[2];
    lp2p__put_be16(b, v);
    lp2p__dw_bytes(w, b, 2);
}
static void lp2p__dw_u32(lp2p__dns_w *w, uint32_t v) {
    uint8_t b[4];
    lp2p__put_be32(b, v);
    lp2p__dw_bytes(w, b, 4);
}
/* A dotted name as labels (no compression: our packets are small). */
static void lp2p__dw_name(lp2p__dns_w *w, const char *name) {
    while (*name) {
        const char *dot = strchr(name, '.');
        size_t n = dot ? (size_t)(dot - name) : strlen(name);
        uint8_t l = (uint8_t)LP2P__MIN(n, (size_t)63);
        lp2p__dw_bytes(w, &l, 1);
        lp2p__dw_bytes(w, name, l);
        name += n + (dot ? 1 : 0);
    }
    lp2p__dw_bytes(w, "", 1);
}
static void lp2p__dw_rr(lp2p__dns_w *w, const char *name, uint16_t type, uint16_t cls) {
    lp2p__dw_name(w, name);
    lp2p__dw_u16(w, type);
    lp2p__dw_u16(w, cls);
    lp2p__dw_u32(w, LP2P__MDNS_TTL);
}
/* rdlength placeholder: returns its offset; lp2p__dw_fix fills it */
static size_t lp2p__dw_rdlen(lp2p__dns_w *w) {
    size_t at = w->len;
    lp2p__dw_u16(w, 0);
    return at;
}
static void lp2p__dw_fix(lp2p__dns_w *w, size_t at) {
    if (!w->overflow) lp2p__put_be16(w->p + at, (uint16_t)(w->len - at - 2));
}

static size_t lp2p__mdns_query(lp2p__mdns *m, uint8_t *out, size_t cap) {
    lp2p__dns_w w = {out, 0, cap, false};
    lp2p__dw_u16(&w, 0), lp2p__dw_u16(&w, 0);                          /* id, flags: standard query */
    lp2p__dw_u16(&w, 1), lp2p__dw_u16(&w, 0), lp2p__dw_u16(&w, 0), lp2p__dw_u16(&w, 0); /* 1 question */
    lp2p__dw_name(&w, m->service);
    lp2p__dw_u16(&w, LP2P__MDNS_TYPE_PTR), lp2p__dw_u16(&w, 1);
    return w.overflow ? 0 : w.len;
}

static size_t lp2p__mdns_answer(lp2p__mdns *m, uint8_t *out, size_t cap) {
    lp2p_host *h = m->h;
    char inst[LP2P__MDNS_NAME_MAX + 64], host[LP2P__MDNS_NAME_MAX + 64]; /* <= 246 bytes: service < 206 */
    snprintf(inst, sizeof inst, "%s.%s", m->name, m->service);
    snprintf(host, sizeof host, "%s.local", m->name);
    lp2p__dns_w w = {out, 0, cap, false};
    lp2p__dw_u16(&w, 0), lp2p__dw_u16(&w, 0x8400); /* response, authoritative */
    lp2p__dw_u16(&w, 0), lp2p__dw_u16(&w, 1), lp2p__dw_u16(&w, 0), lp2p__dw_u16(&w, m->iface ? 3 : 2);
    lp2p__dw_rr(&w, m->service, LP2P__MDNS_TYPE_PTR, 1);
    size_t at = lp2p__dw_rdlen(&w);
    lp2p__dw_name(&w, inst);
    lp2p__dw_fix(&w, at);
    /* TXT: one "dnsaddr=" string per advertised address (circuits included) */
    lp2p__dw_rr(&w, inst, LP2P__MDNS_TYPE_TXT, 0x8001);
    at = lp2p__dw_rdlen(&w);
    int port = 0;
    for (int i = 0; i < lp2p_host_addr_count(h); i++) {
        char txt[256];
        int n = snprintf(txt, sizeof txt, "dnsaddr=%s", lp2p_host_addr(h, i));
        if (n <= 0 || n > 255) continue;
        uint8_t l = (uint8_t)n;
        lp2p__dw_bytes(&w, &l, 1), lp2p__dw_bytes(&w, txt, (size_t)n);
    }
    lp2p__dw_fix(&w, at);
    for (lp2p__listener *l = h->listeners; l && !port; l = l->next)
        if (l->addr.len >= 8 && l->addr.b[0] == LP2P__MA_IP4 && l->addr.b[5] == LP2P__MA_TCP) port = lp2p__be16(l->addr.b + 6);
    lp2p__dw_rr(&w, inst, LP2P__MDNS_TYPE_SRV, 0x8001);
    at = lp2p__dw_rdlen(&w);
    lp2p__dw_u16(&w, 0), lp2p__dw_u16(&w, 0), lp2p__dw_u16(&w, (uint16_t)port);
    lp2p__dw_name(&w, host);
    lp2p__dw_fix(&w, at);
    if (m->iface) {
        lp2p__dw_rr(&w, host, LP2P__MDNS_TYPE_A, 0x8001);
        lp2p__dw_u16(&w, 4);
        lp2p__dw_bytes(&w, &m->iface, 4);
    }
    return w.overflow ? 0 : w.len;
}

/* ---- DNS parsing (peer input) ----------------------------------------------------------------- */
/* Read a possibly compressed name at *off into out (dotted, lowercase, NUL-terminated). */
LP2P__PRIV int lp2p__dns_read_name(const uint8_t *p, size_t n, size_t *off, char *out, size_t cap) {
    size_t pos = *off, o = 0, after = 0;
    int jumps = 0;
    for (;;) {
        if (pos >= n) return LP2P_ERR_PROTOCOL;
        uint8_t l = p[pos];
        if ((l & 0xc0) == 0xc0) { /* pointer */
            if (pos + 1 >= n || ++jumps > 16) return LP2P_ERR_PROTOCOL;
            if (!after) after = pos + 2;
            pos = (size_t)((l & 0x3f) << 8 | p[pos + 1]);
            continue;
        }
        if (l & 0xc0) return LP2P_ERR_PROTOCOL;
        pos++;
        if (l == 0) break;
        if (pos + l > n || o + l + 2 > cap || o + l + 1 > LP2P__MDNS_NAME_MAX) return LP2P_ERR_PROTOCOL;
        if (o) out[o++] = '.';
        for (size_t i = 0; i < l; i++) {
            char c = (char)p[pos + i];
            out[o++] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
        }
        pos += l;
    }
    out[o] = 0;
    *off = after ? after : pos;
    return LP2P_OK;
}

typedef void (*lp2p__mdns_txt_fn)(void *user, const char *txt, size_t len);

/* Walk a packet: returns 1 if it is a query asking for service, 0 otherwise; calls fn for each
 * TXT string of a response (any record name). ERR_PROTOCOL when malformed. */
LP2P__PRIV int lp2p__mdns_parse(const uint8_t *p, size_t n, const char *service, lp2p__mdns_txt_fn fn, void *user) {
    char name[LP2P__MDNS_NAME_MAX];
    if (n < 12 || n > LP2P__MDNS_PKT) return LP2P_ERR_PROTOCOL;
    bool response = (p[2] & 0x80) != 0;
    unsigned qd = lp2p__be16(p + 4), rr = (unsigned)lp2p__be16(p + 6) + lp2p__be16(p + 8) + lp2p__be16(p + 10);
    if (qd > LP2P__MDNS_MAX_RR || rr > LP2P__MDNS_MAX_RR) return LP2P_ERR_PROTOCOL;
    size_t off = 12;
    int asks = 0, strings = 0;
    for (unsigned i = 0; i < qd; i++) {
        if (lp2p__dns_read_name(p, n, &off, name, sizeof name) || off + 4 > n) return LP2P_ERR_PROTOCOL;
        uint16_t type = lp2p__be16(p + off);
        off += 4;
        if (!response && (type == LP2P__MDNS_TYPE_PTR || type == LP2P__MDNS_TYPE_ANY) && strcmp(name, service) == 0) asks = 1;
    }
    for (unsigned i = 0; i < rr; i++) {
        if (lp2p__dns_read_name(p, n, &off, name, sizeof name) || off + 10 > n) return LP2P_ERR_PROTOCOL;
        uint16_t type = lp2p__be16(p + off);
        size_t rdlen = lp2p__be16(p + off + 8);
        off += 10;
        if (off + rdlen > n) return LP2P_ERR_PROTOCOL;
        if (response && type == LP2P__MDNS_TYPE_TXT && fn)
            for (size_t t = off; t < off + rdlen && strings < 64; strings++) {
                size_t l = p[t];
                if (t + 1 + l > off + rdlen) return LP2P_ERR_PROTOCOL;
                fn(user, (const char *)p + t + 1, l);
                t += 1 + l;
            }
        off += rdlen;
    }
    return asks;
}

/* ---- discovery -------------------------------------------------------------------------------- */
static void lp2p__mdns_txt(void *user, const char *txt, size_t len) {
    lp2p__mdns *m = (lp2p__mdns *)user;
    lp2p_host *h = m->h;
    char text[256];
    lp2p__ma ma, base;
    lp2p_peer_id peer;
    if (len <= 8 || len >= sizeof text || memcmp(txt, "dnsaddr=", 8) != 0) return;
    memcpy(text, txt + 8, len - 8);
    text[len - 8] = 0;
    if (lp2p__ma_parse(text, &ma, NULL) || !lp2p__ma_split_p2p(&ma, &base, &peer)) return;
    if (lp2p_peer_id_eq(&peer, &h->identity.id)) return;
    lp2p__peerstore_add_addr(h, &peer, &base, (int64_t)LP2P__MDNS_TTL * 1000);
    /* one event per peer per TTL/2 (peers answer every query; a peer has several addresses) */
    int slot = 0;
    int64_t now = lp2p_now();
    for (int i = 0; i < (int)LP2P__COUNT(m->seen); i++) {
        if (lp2p_peer_id_eq(&m->seen[i].peer, &peer)) {
            if (now - m->seen[i].at < (LP2P__MDNS_TTL / 2) * 1000) return;
            slot = i;
            break;
        }
        if (m->seen[i].at < m->seen[slot].at) slot = i;
    }
    m->seen[slot].peer = peer, m->seen[slot].at = now;
    lp2p__host_emit(h, LP2P_EVENT_PEER_DISCOVERED, &peer, text, NULL, NULL, 0);
    if (m->cfg.auto_connect && !lp2p__swarm_find_conn(h, &peer)) lp2p_host_connect_async(h, text);
}

static void lp2p__mdns_send(lp2p__mdns *m, const uint8_t *pkt, size_t len) {
    if (!len || m->fd < 0) return;
    if (sendto(m->fd, pkt, len, 0, (const struct sockaddr *)&m->dest, sizeof m->dest) < 0)
        LP2P__DEBUG(&m->h->ctx, "mdns: send: %s", strerror(errno));
}

static void lp2p__mdns_unref(lp2p__mdns *m) {
    if (--m->refs == 0) lp2p__free(&m->h->ctx, m, sizeof *m);
}

static void lp2p__mdns_reader(void *arg) {
    lp2p__mdns *m = (lp2p__mdns *)arg;
    lp2p_host *h = m->h;
    uint8_t *pkt = (uint8_t *)lp2p__alloc(&h->ctx, LP2P__MDNS_PKT);
    while (pkt && !m->stopped) {
        ssize_t n = recv(m->fd, pkt, LP2P__MDNS_PKT, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            if ((errno != EAGAIN && errno != EWOULDBLOCK) || lp2p__wait_fd(h->sched, m->fd, LP2P__IN, LP2P_FOREVER)) break;
            continue;
        }
        int rc = lp2p__mdns_parse(pkt, (size_t)n, m->service, lp2p__mdns_txt, m);
        if (rc == 1 && lp2p_now() - m->last_answer >= 1000) { /* answer at most once a second */
            m->last_answer = lp2p_now();
            uint8_t out[LP2P__MDNS_PKT];
            lp2p__mdns_send(m, out, lp2p__mdns_answer(m, out, sizeof out));
        } else if (rc < 0) {
            LP2P__DEBUG(&h->ctx, "mdns: malformed packet (%zd bytes) ignored", n);
        }
    }
    lp2p__free(&h->ctx, pkt, LP2P__MDNS_PKT);
    lp2p__mdns_unref(m);
}

static void lp2p__mdns_querier(void *arg) {
    lp2p__mdns *m = (lp2p__mdns *)arg;
    uint8_t q[LP2P__MDNS_NAME_MAX + 32];
    while (!m->stopped) {
        lp2p__mdns_send(m, q, lp2p__mdns_query(m, q, sizeof q));
        if (lp2p__sleep_until(m->h->sched, lp2p_deadline_in(m->cfg.interval_ms)) != LP2P_OK) break;
    }
    lp2p__mdns_unref(m);
}

/* Start with an explicit socket setup: bind_ip:bind_port, send to dest_ip:dest_port; join the
 * group when dest_ip is multicast. Tests use unicast on 127.0.0.1 (never the LAN). */
LP2P__PRIV int lp2p__mdns_start_at(lp2p_host *h, const lp2p_mdns_config *cfg, const char *bind_ip, int bind_port,
                                   const char *dest_ip, int dest_port) {
    lp2p_mdns_stop(h);
    lp2p__mdns *m = (lp2p__mdns *)lp2p__zalloc(&h->ctx, sizeof *m);
    if (!m) return LP2P_ERR_NOMEM;
    m->h = h, m->fd = -1, m->refs = 1;
    if (cfg) m->cfg = *cfg;
    if (m->cfg.interval_ms <= 0) m->cfg.interval_ms = 10000;
    const char *svc = m->cfg.service ? m->cfg.service : LP2P__MDNS_SERVICE;
    if (strlen(svc) >= sizeof m->service - 50 || !strstr(svc, "._udp.local")) {
        lp2p__free(&h->ctx, m, sizeof *m);
        return LP2P_ERR_INVALID;
    }
    for (size_t i = 0; svc[i]; i++) m->service[i] = svc[i] >= 'A' && svc[i] <= 'Z' ? (char)(svc[i] - 'A' + 'a') : svc[i];
    m->cfg.service = NULL; /* not kept */
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    uint8_t r[40];
    lp2p__random(r, sizeof r);
    for (int i = 0; i < 40; i++) m->name[i] = alnum[r[i] % 36];
    struct in_addr iface = {0};
    if (m->cfg.interface_addr && inet_pton(AF_INET, m->cfg.interface_addr, &iface) != 1) {
        lp2p__free(&h->ctx, m, sizeof *m);
        return LP2P_ERR_INVALID;
    }
    m->cfg.interface_addr = NULL;
    m->iface = iface.s_addr;
    for (lp2p__listener *l = h->listeners; l && !m->iface; l = l->next) /* else a specific IPv4 listener */
        if (l->addr.len >= 5 && l->addr.b[0] == LP2P__MA_IP4 && lp2p__be32(l->addr.b + 1) != 0) memcpy(&m->iface, l->addr.b + 1, 4);
    memset(&m->dest, 0, sizeof m->dest);
    m->dest.sin_family = AF_INET, m->dest.sin_port = htons((uint16_t)dest_port);
    inet_pton(AF_INET, dest_ip, &m->dest.sin_addr);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET, sa.sin_port = htons((uint16_t)bind_port);
    inet_pton(AF_INET, bind_ip, &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1, ttl = 255;
    const char *step = fd < 0 ? "socket" : NULL;
    if (!step) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
#ifdef SO_REUSEPORT
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
#endif
        if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) step = "bind";
    }
    if (!step && IN_MULTICAST(ntohl(m->dest.sin_addr.s_addr))) {
        struct ip_mreq mr;
        mr.imr_multiaddr = m->dest.sin_addr, mr.imr_interface = iface;
        setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl);
        setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &one, sizeof one); /* other hosts on this machine */
        if (iface.s_addr) setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &iface, sizeof iface);
        if (setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr) < 0) step = "join 224.0.0.251";
    }
    if (!step && lp2p__fd_add(h->sched, fd) != LP2P_OK) step = "poller";
    if (step) {
        LP2P__WARN(&h->ctx, LP2P_ERR_IO, "mdns: %s: %s", step, strerror(errno));
        if (fd >= 0) close(fd);
        lp2p__free(&h->ctx, m, sizeof *m);
        return LP2P_ERR_IO;
    }
    m->fd = fd;
    h->mdns = m;
    m->refs += 2;
    m->reader = lp2p__spawn(h->sched, lp2p__mdns_reader, m);
    m->querier = lp2p__spawn(h->sched, lp2p__mdns_querier, m);
    if (!m->reader.id) m->refs--;
    if (!m->querier.id) m->refs--;
    if (!m->reader.id || !m->querier.id) {
        lp2p_mdns_stop(h);
        return LP2P_ERR_NOMEM;
    }
    return LP2P_OK;
}

LP2P_API int lp2p_mdns_start(lp2p_host *h, const lp2p_mdns_config *cfg) {
    return lp2p__mdns_start_at(h, cfg, "0.0.0.0", LP2P__MDNS_PORT, LP2P__MDNS_GROUP, LP2P__MDNS_PORT);
}

LP2P_API void lp2p_mdns_stop(lp2p_host *h) {
    lp2p__mdns *m = h->mdns;
    if (!m) return;
    h->mdns = NULL;
    m->stopped = true;
    if (m->reader.id) lp2p__task_cancel(h->sched, m->reader);
    if (m->querier.id) lp2p__task_cancel(h->sched, m->querier);
    lp2p__fd_del(h->sched, m->fd); /* wakes the reader (ERR_CLOSED) */
    close(m->fd);
    m->fd = -1;
    lp2p__mdns_unref(m); /* the tasks drop theirs when they end */
}
/*==================== end src/mdns.c ====================*/
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
