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
#include "yamux.h"

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
