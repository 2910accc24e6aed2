/* ping.c - L7: the ping protocol, client (lp2p_ping) and service.
 *
 * Spec: libp2p/specs ping/ping.md. The dialer writes 32 random bytes, the listener echoes them;
 * the dialer may repeat on the same stream. We serve any number of pings per stream (js and
 * go loop on one stream) with a deadline per ping so a silent peer cannot hold a task.
 * Depends on: host.h. */
#include "host.h"

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
