/* demo.c - what libp2p.h does, in plain words: two hosts on 127.0.0.1 in one process connect,
 * identify each other, ping three times and echo a message. Exit 0 when all of it worked.
 *
 *   cc -O2 -I. -o demo examples/demo.c -lsodium -lbearssl -lprotobuf-nanopb -lpthread
 *   (or: make demo)
 *
 * Driving mode 3 (DESIGN.md §1): plain blocking calls from main(). A blocking call made
 * outside a task runs the loop of every host created on this thread until it completes, so
 * host B answers while host A waits. */
#define LIBP2P_IMPLEMENTATION
#include "libp2p.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static const char *short_id(lp2p_peer_id id, char *buf) { /* "12D3KooW…xyz" */
    char full[LP2P_PEER_ID_STRLEN];
    lp2p_peer_id_str(&id, full, sizeof full);
    size_t n = strlen(full);
    snprintf(buf, 32, "%.8s…%.6s", full, n > 6 ? full + n - 6 : full);
    return buf;
}

static void echo_handler(lp2p_stream *s, void *user) {
    char buf[1024];
    ptrdiff_t n;
    (void)user;
    while ((n = lp2p_stream_read(s, buf, sizeof buf, lp2p_deadline_in(5000))) > 0)
        if (lp2p_stream_write(s, buf, (size_t)n, lp2p_deadline_in(5000)) != LP2P_OK) break;
}

static int fail(const char *what, int rc) {
    printf("FAILED: %s: %s\n", what, lp2p_strerror(rc));
    return 1;
}

static void print_events(const char *name, lp2p_host *h) {
    lp2p_event ev;
    char id[32];
    static const char *const names[] = {"none", "listening", "peer connected", "peer disconnected",
                                        "dial failed", "peer identified", "stream"};
    while (lp2p_host_next_event(h, &ev)) {
        printf("  event on %s: %s", name, (unsigned)ev.type < 7 ? names[ev.type] : "?");
        if (ev.peer.len) printf(" (peer %s)", short_id(ev.peer, id));
        if (ev.addr) printf(" at %s", ev.addr);
        printf("\n");
    }
}

static int run(lp2p_host *a, lp2p_host *b) {
    char ida[32], idb[32];
    const char *b_addr = lp2p_host_addr(b, 0);
    printf("Host A (%s) listens on %s\n", short_id(lp2p_host_id(a), ida), lp2p_host_addr(a, 0));
    printf("Host B (%s) listens on %s\n", short_id(lp2p_host_id(b), idb), b_addr);

    double t = now_ms();
    int rc = lp2p_host_connect(a, b_addr, lp2p_deadline_in(5000));
    if (rc != LP2P_OK) return fail("A could not connect to B", rc);
    printf("A connected to B in %.1f ms (TCP, Noise handshake, yamux)\n", now_ms() - t);

    rc = lp2p_host_identify(a, b_addr, lp2p_deadline_in(5000));
    if (rc != LP2P_OK) return fail("identify", rc);
    lp2p_peer_id b_id = lp2p_host_id(b);
    lp2p_peer_info info;
    rc = lp2p_host_peer_info(a, &b_id, &info);
    if (rc != LP2P_OK) return fail("peer info", rc);
    printf("B says it runs %s (%s) and speaks:", info.agent_version ? info.agent_version : "?",
           info.protocol_version ? info.protocol_version : "?");
    for (int i = 0; i < info.n_protocols; i++) printf(" %s", info.protocols[i]);
    printf("\nB listens on:");
    for (int i = 0; i < info.n_addrs; i++) printf(" %s", info.addrs[i]);
    printf("\nB sees A coming from %s\n", info.observed_addr ? info.observed_addr : "(not said)");

    for (int i = 0; i < 3; i++) {
        t = now_ms();
        rc = lp2p_ping(a, b_addr, lp2p_deadline_in(5000));
        if (rc < 0) return fail("ping", rc);
        printf("ping: %.3f ms round trip (%.2f ms for the whole call, new stream included)\n", rc / 1e3, now_ms() - t);
    }

    lp2p_stream *s;
    char back[64] = {0};
    const char *msg = "hello";
    rc = lp2p_stream_open(a, b_addr, "/echo/1.0.0", lp2p_deadline_in(5000), &s);
    if (rc != LP2P_OK) return fail("opening an echo stream", rc);
    rc = lp2p_stream_write(s, msg, strlen(msg), lp2p_deadline_in(5000));
    if (rc == LP2P_OK) rc = lp2p_stream_read_full(s, back, strlen(msg), lp2p_deadline_in(5000));
    lp2p_stream_close(s);
    if (rc != LP2P_OK) return fail("echo", rc);
    printf("echo: '%s' came back as '%s'\n", msg, back);
    if (strcmp(back, msg) != 0) return fail("echo", LP2P_ERR_PROTOCOL);

    printf("What the hosts reported through their event queues:\n");
    print_events("A", a);
    print_events("B", b);
    return 0;
}

int main(void) {
    lp2p_host *a = NULL, *b = NULL;
    printf("libp2p.h %s\n", lp2p_version());
    int rc = lp2p_host_new(NULL, &a); /* NULL config: fresh identity, listens on 127.0.0.1 */
    if (rc == LP2P_OK) rc = lp2p_host_new(NULL, &b);
    if (rc != LP2P_OK) return fail("starting a host", rc);
    lp2p_host_handle(b, "/echo/1.0.0", echo_handler, NULL);
    int bad = run(a, b);
    lp2p_host_free(a);
    lp2p_host_free(b);
    printf(bad ? "demo failed\n" : "demo finished: everything worked\n");
    return bad;
}
