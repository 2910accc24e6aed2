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

#include "pipe.h"

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
