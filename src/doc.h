/* libp2p.h - v0.1.0 - libp2p in one C header: TCP, multistream-select, Noise, yamux, identify, ping,
   perf, Kademlia DHT
   https://libp2p.io - tested against go-libp2p, rust-libp2p and js-libp2p.  MIT license (end of file).

   QUICK START
     Do this in *one* C or C++ file, before any other #include:
         #define LIBP2P_IMPLEMENTATION
         #include "libp2p.h"
     Other files just #include "libp2p.h". Link with:
         -lsodium -lbearssl -lprotobuf-nanopb -lpthread
     (Debian/Ubuntu: libsodium-dev libbearssl-dev libnanopb-dev.) The declarations are C99 and
     C++ compatible; the implementation file must be C11 (or gnu11) or C++.

         static void echo(lp2p_stream *s, void *user) {        // runs as its own task
             char buf[4096]; ptrdiff_t n;
             while ((n = lp2p_stream_read(s, buf, sizeof buf, lp2p_deadline_in(30000))) > 0)
                 if (lp2p_stream_write(s, buf, (size_t)n, lp2p_deadline_in(30000)) < 0) break;
         }                                                      // stream closed on return
         int main(void) {
             lp2p_host *h;
             if (lp2p_host_new(NULL, &h) != LP2P_OK) return 1; // NULL config = defaults
             lp2p_host_handle(h, "/echo/1.0.0", echo, NULL);
             for (int i = 0; i < lp2p_host_addr_count(h); i++) puts(lp2p_host_addr(h, i));
             return lp2p_host_run(h);
         }

   CONFIG MACROS (define before the implementation include)
     LIBP2P_STATIC          all TUs: public functions become static (one-TU programs)
     LP2P_ASSERT(c)         default assert(c)
     LP2P_DEBUG             log messages carry file and line
     LP2P_ENABLE_STDIO      1 (default): WARN and worse go to stderr unless a logger is set
     LP2P_ENABLE_SECP256K1  0 (default); 1 verifies secp256k1 peers (link -lsecp256k1)
     LP2P_CORO_UCONTEXT     use ucontext instead of the assembly context switch
     LP2P_POLLER_POLL       use poll() instead of epoll

   DRIVING THE HOST (three ways, all first-class)
     1. Game / frame loop: call lp2p_host_poll(h, 0) once per frame; it never blocks. Handlers and
        tasks run inside it. Read results with LP2P_NOWAIT and lp2p_host_next_event().
     2. Network thread: lp2p_host_run(h) on its own thread. Other threads talk to the host only
        through lp2p_host_post(h, fn, arg) and lp2p_host_stop(h).
     3. Scripts, CLIs, teaching: call blocking functions straight from main(); outside a task a
        blocking call runs the event loop (of every host on this thread) until it completes.

   DEADLINES
     Every call that can wait takes an absolute deadline in milliseconds of lp2p_now() as its
     last argument: lp2p_deadline_in(ms), LP2P_FOREVER (-1) or LP2P_NOWAIT (0, try once). Inside a
     task it parks only that task. An expired deadline means the operation was abandoned.

   THREADS
     A host lives on the thread that polls it. Only lp2p_host_post, lp2p_host_stop, lp2p_now and
     lp2p_deadline_in are thread-safe. Several hosts may live on one thread or on several.

   ERRORS
     Functions return LP2P_OK (0) or a negative LP2P_ERR_* (see LP2P_ERRORS below); sizes come back
     as ptrdiff_t (>= 0 on success). lp2p_strerror() describes a code. Out-parameters are written
     only on success. A peer that violates a protocol gets its stream or connection closed with a
     WARN log naming the peer and the reason; the host keeps serving everyone else.

   MEMORY
     All allocations go through lp2p_config.allocator (default malloc/free); task stacks are
     mmap'd (64 KiB virtual each, only touched pages are resident) with a guard page below.
     Strings passed in are copied. Strings handed out are borrowed: each function says how long
     they live. Streams belong to the app until lp2p_stream_close/lp2p_stream_reset; a stream
     handed to a handler is closed when the handler returns.

   LIMITS
     Few and named in lp2p_config (max_connections, max_streams_per_conn, max_pending_dials,
     max_stream_buffer, event_queue_size, max_tasks). Hitting one returns LP2P_ERR_LIMIT and
     logs the field name and value. Idle connections stay open; keepalive pings find dead peers.

   SPECS FOLLOWED (github.com/libp2p/specs)
     connections/README.md, multistream-select, noise/README.md, yamux/README.md,
     identify/README.md, ping/ping.md, perf/perf.md, peer-ids/peer-ids.md, RFC/0002, RFC/0003,
     addressing, kad-dht/README.md (+ ipfs/specs src/routing/kad-dht.md).
*/
/* The implementation needs POSIX/GNU declarations (clock_gettime, epoll, mmap, getaddrinfo)
 * even under -std=c11: include libp2p.h first in the implementation file, or build with
 * -D_GNU_SOURCE. */
#if defined(LIBP2P_IMPLEMENTATION) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE 1
#endif
