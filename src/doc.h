/* libp2p.h - v0.1.0 - libp2p in one C header (TCP, Noise, yamux, identify, ping)
   (full documentation: see below; this block is filled in as the library grows) */
/* The implementation needs POSIX/GNU declarations (clock_gettime, epoll, mmap, getaddrinfo)
 * even under -std=c11: include libp2p.h first in the implementation file, or build with
 * -D_GNU_SOURCE. */
#if defined(LIBP2P_IMPLEMENTATION) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE 1
#endif
