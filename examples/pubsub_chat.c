/* pubsub_chat.c - a chat room over gossipsub: everyone in the room sees every line.
 *
 *   cc -O2 -I. -o pubsub_chat examples/pubsub_chat.c -lsodium -lbearssl -lprotobuf-nanopb -lpthread
 *
 *   ./pubsub_chat                        start a room; prints the address others join with
 *   ./pubsub_chat <multiaddr> [...]      join through one or more members (/p2p/<peer-id> at the end)
 *   options: --room <name> (default "lobby"), --listen <multiaddr>
 *
 * Members need not all know each other: gossipsub forwards through the mesh, so a line typed
 * anywhere reaches every member once (go-libp2p-pubsub, rust-libp2p and js-libp2p gossipsub
 * peers can join the same topic: the topic name is the room name).
 *
 * Driving mode 1 (DESIGN.md §1), the game-loop way: one thread, lp2p_host_poll() every 10 ms,
 * stdin checked with poll(), messages taken with lp2p_subscription_next(..., LP2P_NOWAIT). */
#define LIBP2P_IMPLEMENTATION
#include "libp2p.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_LINE 4096

static void show(const lp2p_pubsub_message *m, const lp2p_peer_id *me) {
    char id[LP2P_PEER_ID_STRLEN];
    if (lp2p_peer_id_eq(&m->from, me)) return; /* our own line comes back too: already on screen */
    lp2p_peer_id_str(&m->from, id, sizeof id);
    printf("%.*s..%s: %.*s\n", 8, id, id + strlen(id) - 4, (int)m->data_len, (const char *)m->data);
    fflush(stdout);
}

int main(int argc, char **argv) {
    const char *room = "lobby", *listen = NULL, *peers[16];
    int n_peers = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--room") && i + 1 < argc) room = argv[++i];
        else if (!strcmp(argv[i], "--listen") && i + 1 < argc) listen = argv[++i];
        else if (argv[i][0] == '/' && n_peers < 16) peers[n_peers++] = argv[i];
        else {
            fprintf(stderr, "usage: %s [--room name] [--listen multiaddr] [member-multiaddr ...]\n", argv[0]);
            return 2;
        }
    }
    lp2p_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.listen_addrs[0] = listen; /* NULL: the default, 127.0.0.1 on a free port */
    lp2p_host *h;
    lp2p_pubsub *ps;
    lp2p_subscription *sub;
    int rc = lp2p_host_new(&cfg, &h);
    if (rc) return fprintf(stderr, "host: %s\n", lp2p_strerror(rc)), 1;
    if ((rc = lp2p_pubsub_new(h, NULL, &ps)) || (rc = lp2p_pubsub_subscribe(ps, room, &sub)))
        return fprintf(stderr, "pubsub: %s\n", lp2p_strerror(rc)), 1;
    lp2p_peer_id me = lp2p_host_id(h);
    printf("room '%s'; others join with:\n  %s %s\n", room, argv[0], lp2p_host_addr(h, 0));
    for (int i = 0; i < n_peers; i++)
        if (lp2p_host_connect_async(h, peers[i]) != LP2P_OK) fprintf(stderr, "cannot dial %s\n", peers[i]);
    fflush(stdout);

    char buf[MAX_LINE + 1];
    size_t len = 0;
    for (bool open = true; open;) {
        lp2p_host_poll(h, 10); /* never blocks longer than 10 ms */
        lp2p_event ev;
        while (lp2p_host_next_event(h, &ev)) /* who came and went */
            if (ev.type == LP2P_EVENT_DIAL_FAILED) fprintf(stderr, "* dial %s failed: %s\n", ev.addr, lp2p_strerror(ev.err));
        lp2p_pubsub_message m;
        while (lp2p_subscription_next(sub, &m, LP2P_NOWAIT) == LP2P_OK) show(&m, &me);
        struct pollfd p = {STDIN_FILENO, POLLIN, 0};
        if (poll(&p, 1, 0) <= 0) continue;
        ssize_t n = read(STDIN_FILENO, buf + len, MAX_LINE - len);
        if (n <= 0) break; /* Ctrl-D */
        len += (size_t)n;
        char *nl;
        while ((nl = memchr(buf, '\n', len)) != NULL || len == MAX_LINE) {
            size_t line_len = nl ? (size_t)(nl - buf) : len;
            int reached = lp2p_pubsub_publish(ps, room, buf, line_len);
            if (reached == 0) printf("* nobody else in '%s' yet\n", room);
            else if (reached < 0) printf("* not sent: %s\n", lp2p_strerror(reached));
            fflush(stdout);
            size_t used = nl ? line_len + 1 : len;
            memmove(buf, buf + used, len - used);
            len -= used;
        }
    }
    lp2p_host_free(h); /* frees the pubsub router and the subscription too */
    return 0;
}
