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

#include "crypto.h"

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
