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
#include "host.h"

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
