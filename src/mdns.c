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
#include "host.h"

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
