/* mss.h - L4: multistream-select 1.0 over any pipe.
 *
 * Spec: multiformats/multistream-select README.md; libp2p/specs connections/README.md.
 * Messages are uvarint(len) || UTF-8 || '\n' with len including the '\n'; at most 1024 bytes
 * (go-multistream's limit). Reads go byte-exact through the pipe, so bytes that follow the
 * negotiation (rust's pipelined Noise message, go's lazy stream data) stay in the pipe.
 * Depends on: pipe.h. */
#ifndef LP2P__MSS_H
#define LP2P__MSS_H

#include "pipe.h"

#define LP2P__MSS_PROTO "/multistream/1.0.0"
#define LP2P__MSS_MAX 1024

/* Dialer: send the header and the proposals one by one until one is echoed. Returns the
 * index of the accepted protocol, ERR_PROTO_NA if every one got "na", ERR_PROTOCOL on a bad
 * reply, or the pipe's error. */
LP2P__PRIV int lp2p__mss_select(lp2p__pipe *p, const char *const *protocols, int n, int64_t deadline);
/* Lazy dialer (V1Lazy): wrap p so the header + proposal are sent together with the first
 * write through the wrapper, and the header + echo are checked on the first read. A "na"
 * fails that read with ERR_PROTO_NA. The wrapper owns p (close/reset pass through). */
LP2P__PRIV int lp2p__mss_lazy(lp2p__ctx *ctx, lp2p__pipe *p, const char *protocol, lp2p__pipe **out);

/* Listener: read the header and proposals; answer "na" to unsupported ones (and to "ls" with
 * the list of supported protocols) until match(user, proto) accepts one, then echo it.
 * Returns the matched protocol copied into out (NUL-terminated, out_cap >= LP2P__MSS_MAX),
 * or ERR_PROTOCOL (malformed/oversized message, logged by the caller), ERR_EOF, pipe errors. */
typedef bool (*lp2p__mss_match_fn)(void *user, const char *proto);
typedef int (*lp2p__mss_list_fn)(void *user, const char **protos, int max); /* for "ls" */
LP2P__PRIV int lp2p__mss_handle(lp2p__pipe *p, lp2p__mss_match_fn match, lp2p__mss_list_fn list, void *user,
                                char *out, size_t out_cap, int64_t deadline);

#endif
