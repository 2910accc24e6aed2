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

#include "pipe.h"

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
