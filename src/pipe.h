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

#include "runtime.h"

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
