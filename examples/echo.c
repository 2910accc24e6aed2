/* echo.c - serve /echo/1.0.0, or send a line to an echo server and print what comes back.
 *
 *   cc -O2 -I. -o echo examples/echo.c -lsodium -lbearssl -lprotobuf-nanopb -lpthread
 *
 *   ./echo listen [multiaddr]          e.g. ./echo listen /ip4/127.0.0.1/tcp/4001
 *   ./echo dial <multiaddr> <text>     the multiaddr ends in /p2p/<peer-id> (printed by listen)
 *
 * Driving mode 3 (DESIGN.md §1): plain main(), blocking calls with deadlines. A blocking call
 * made outside a task runs the host's loop itself until it completes or its deadline passes. */
#define LIBP2P_IMPLEMENTATION
#include "libp2p.h"

#include <stdio.h>
#include <string.h>

#define ECHO_PROTOCOL "/echo/1.0.0"

/* Runs as its own task for every inbound stream; the stream is closed when it returns. */
static void echo_handler(lp2p_stream *s, void *user) {
    char buf[4096];
    ptrdiff_t n;
    (void)user;
    while ((n = lp2p_stream_read(s, buf, sizeof buf, lp2p_deadline_in(30000))) > 0)
        if (lp2p_stream_write(s, buf, (size_t)n, lp2p_deadline_in(30000)) != LP2P_OK) break;
}

static int listen_main(const char *addr) {
    lp2p_config cfg = {0};
    lp2p_host *h;
    cfg.listen_addrs[0] = addr; /* NULL: the default, /ip4/127.0.0.1/tcp/0 */
    int rc = lp2p_host_new(&cfg, &h);
    if (rc != LP2P_OK) {
        fprintf(stderr, "echo: cannot start the host: %s\n", lp2p_strerror(rc));
        return 1;
    }
    lp2p_host_handle(h, ECHO_PROTOCOL, echo_handler, NULL);
    printf("serving %s on:\n", ECHO_PROTOCOL);
    for (int i = 0; i < lp2p_host_addr_count(h); i++) printf("  %s\n", lp2p_host_addr(h, i));
    fflush(stdout);
    rc = lp2p_host_run(h); /* until killed */
    lp2p_host_free(h);
    return rc == LP2P_OK ? 0 : 1;
}

static int dial_main(const char *addr, const char *text) {
    lp2p_config cfg = {0};
    lp2p_host *h;
    lp2p_stream *s;
    char buf[4096];
    size_t len = strlen(text), got = 0;
    cfg.no_listen = true; /* a client needs no listener */
    int rc = lp2p_host_new(&cfg, &h);
    if (rc != LP2P_OK) {
        fprintf(stderr, "echo: cannot start the host: %s\n", lp2p_strerror(rc));
        return 1;
    }
    rc = lp2p_stream_open(h, addr, ECHO_PROTOCOL, lp2p_deadline_in(10000), &s);
    if (rc != LP2P_OK) {
        fprintf(stderr, "echo: %s: %s\n", addr, lp2p_strerror(rc));
        lp2p_host_free(h);
        return 1;
    }
    rc = lp2p_stream_write(s, text, len, lp2p_deadline_in(10000));
    if (rc == LP2P_OK) rc = lp2p_stream_close_write(s); /* the server echoes until our EOF */
    while (rc == LP2P_OK) {
        ptrdiff_t n = lp2p_stream_read(s, buf + got, sizeof buf - 1 - got, lp2p_deadline_in(10000));
        if (n < 0) rc = (int)n;
        if (n <= 0 || (got += (size_t)n) == sizeof buf - 1) break;
    }
    lp2p_stream_close(s);
    lp2p_host_free(h);
    if (rc != LP2P_OK) {
        fprintf(stderr, "echo: %s\n", lp2p_strerror(rc));
        return 1;
    }
    buf[got] = '\0';
    printf("%s\n", buf);
    return got == len && memcmp(buf, text, len) == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "listen") == 0 && argc <= 3) return listen_main(argc == 3 ? argv[2] : NULL);
    if (argc == 4 && strcmp(argv[1], "dial") == 0) return dial_main(argv[2], argv[3]);
    fprintf(stderr, "usage: %s listen [multiaddr]\n       %s dial <multiaddr>/p2p/<peer-id> <text>\n", argv[0], argv[0]);
    return 2;
}
