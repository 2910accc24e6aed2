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
#include "host.h"

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
