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
#include "host.h"

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
