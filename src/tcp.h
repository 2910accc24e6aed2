/* tcp.h - L3: TCP transport (and an in-memory pipe pair for tests), over the runtime poller.
 *
 * TCP sockets are non-blocking, registered once with the scheduler's poller, TCP_NODELAY,
 * SO_REUSEADDR + SO_REUSEPORT on listeners (and on dials that reuse a listen port, for hole
 * punching later). A TCP pipe keeps a small read buffer so byte-at-a-time readers (multistream)
 * cost no syscall per byte; reads of 64 bytes or more into an empty buffer go straight to the
 * socket, and the buffer is freed then (the byte-wise phase of a connection is its start).
 * /dns, /dns4, /dns6 names are resolved by getaddrinfo on a short-lived worker thread that
 * reports back through lp2p__sched_post, so the loop never stalls.
 * Pipe errors: ERR_RESET when the peer reset or vanished (ECONNRESET, EPIPE, ETIMEDOUT on an
 * open connection), ERR_CLOSED for writes after close_write or calls woken by a concurrent
 * close/reset of the same pipe, ERR_TIMEOUT, ERR_CANCELED, ERR_NOMEM, ERR_IO (other errno).
 * close/reset/listener_free may run while another task is parked in read/write/accept on the
 * same object: that call returns ERR_CLOSED and the record is freed once it has woken.
 * Depends on: runtime.h, pipe.h, multiaddr.h. */
#ifndef LP2P__TCP_H
#define LP2P__TCP_H

#include "pipe.h"
#include "multiaddr.h"

typedef struct lp2p__tcp_listener lp2p__tcp_listener;

/* Listen on an /ip4|ip6/<addr>/tcp/<port> multiaddr (port 0 = any). *bound gets the real
 * address (port filled in). ERR_BADADDR (not a TCP address), ERR_IO (bind/listen failed, logged). */
LP2P__PRIV int lp2p__tcp_listen(lp2p__sched *s, const lp2p__ma *addr, lp2p__tcp_listener **out, lp2p__ma *bound);
/* Accept one connection. *remote gets the peer's /ip4|ip6/../tcp/.. address.
 * ERR_TIMEOUT, ERR_CANCELED, ERR_CLOSED (listener freed), ERR_NOMEM, ERR_IO (e.g. EMFILE; logged). */
LP2P__PRIV int lp2p__tcp_accept(lp2p__tcp_listener *l, lp2p__pipe **out, lp2p__ma *remote, int64_t deadline);
/* Wake any accept()ing task (it returns ERR_CLOSED), close the socket and free. */
LP2P__PRIV void lp2p__tcp_listener_free(lp2p__tcp_listener *l);

/* Dial an /ip4|ip6|dns|dns4|dns6/../tcp/<port> address (a trailing /p2p/ is ignored).
 * reuse_port: bind the local side to that port first (SO_REUSEADDR/PORT), or 0.
 * *local / *remote (may be NULL) get the connection's addresses.
 * ERR_BADADDR, ERR_UNREACHABLE (refused/unreachable/DNS failure), ERR_TIMEOUT, ERR_CANCELED. */
LP2P__PRIV int lp2p__tcp_dial(lp2p__sched *s, const lp2p__ma *addr, int reuse_port, lp2p__pipe **out, lp2p__ma *local,
                              lp2p__ma *remote, int64_t deadline);
/* Resolve a /dns|dns4|dns6/<name> first component into up to max ip addresses (the rest of the
 * multiaddr kept), in getaddrinfo order. Returns the number of results (>= 1), ERR_UNREACHABLE
 * (no answer), ERR_TIMEOUT, ERR_CANCELED, ERR_WOULDBLOCK, ERR_BADADDR (not a dns address),
 * ERR_NOMEM. A late answer after a timeout is dropped safely (the worker thread frees it). */
LP2P__PRIV int lp2p__dns_resolve(lp2p__sched *s, const lp2p__ma *addr, lp2p__ma *out, int max, int64_t deadline);

/* Two connected in-memory pipes (tests, simulation). Each direction buffers up to 1 MiB
 * (writers wait when it is full). close_write gives the reader EOF after the buffered bytes;
 * reset makes the other side's reads and writes return ERR_RESET (unread bytes are dropped);
 * writing to a side whose peer closed or reset gives ERR_RESET. ERR_NOMEM. */
LP2P__PRIV int lp2p__mempipe_pair(lp2p__sched *s, lp2p__pipe **a, lp2p__pipe **b);

/* The socket of a TCP pipe (for socket options, e.g. hole punching), or -1 for other pipes.
 * The pipe keeps ownership. */
LP2P__PRIV int lp2p__tcp_pipe_fd(lp2p__pipe *p);

#endif
