/* nat_chat.c - chat between two hosts behind NATs: through a relay first, then directly once
 * DCUtR has punched through both NATs. Prints each step.
 *
 *   nat_chat relay  [listen-multiaddr]              a public relay (e.g. /ip4/0.0.0.0/tcp/4001)
 *   nat_chat listen <relay-multiaddr> [listen]      behind NAT 1: reserve on the relay, wait
 *   nat_chat dial   <circuit-multiaddr> [listen]    behind NAT 2: dial the address "listen" printed
 *
 * Then type lines on either side. Build: cc -O2 -o nat_chat nat_chat.c -lsodium -lbearssl
 * -lprotobuf-nanopb -lpthread. The NAT test bed (tests/netns/bed.sh) shows the same flow. */
#define LIBP2P_IMPLEMENTATION
#include "libp2p.h"

#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define CHAT "/chat/1.0.0"

static lp2p_stream *chat; /* the current chat stream (one peer at a time) */

static void on_chat(lp2p_stream *s, void *user) { /* inbound chat: print lines until EOF */
    char buf[1024];
    ptrdiff_t n;
    (void)user;
    chat = s;
    while ((n = lp2p_stream_read(s, buf, sizeof buf, LP2P_FOREVER)) > 0) printf("peer> %.*s", (int)n, buf), fflush(stdout);
    if (chat == s) chat = NULL;
}

static void read_task(void *arg) { /* our outbound chat stream: print what the peer says */
    on_chat((lp2p_stream *)arg, NULL);
}

static void show_events(lp2p_host *h) {
    lp2p_event ev;
    char id[LP2P_PEER_ID_STRLEN];
    while (lp2p_host_next_event(h, &ev)) {
        lp2p_peer_id_str(&ev.peer, id, sizeof id);
        switch (ev.type) {
        case LP2P_EVENT_RELAY_RESERVED: printf("* reserved on relay; peers can dial:\n  %s\n", ev.addr); break;
        case LP2P_EVENT_PEER_CONNECTED:
            printf("* connected to %.16s… %s (%s)\n", id, ev.addr && strstr(ev.addr, "p2p-circuit") ? "through the relay" : "directly",
                   ev.addr ? ev.addr : "inbound");
            break;
        case LP2P_EVENT_HOLE_PUNCH:
            if (ev.err == 0) printf("* hole punched: direct connection to %.16s… at %s\n", id, ev.addr ? ev.addr : "?");
            else printf("* hole punching failed (%s): staying on the relay\n", lp2p_strerror(ev.err));
            break;
        case LP2P_EVENT_RELAY_LOST: printf("* lost the relay (%s), retrying\n", lp2p_strerror(ev.err)); break;
        default: break;
        }
        fflush(stdout);
    }
}

/* Forward stdin lines to the chat stream while driving the host. */
static int loop(lp2p_host *h) {
    char line[1024];
    for (;;) {
        lp2p_host_poll(h, 0);
        show_events(h);
        struct pollfd pfd = {0, POLLIN, 0};
        if (poll(&pfd, 1, 20) > 0) {
            if (!fgets(line, sizeof line, stdin)) return 0;
            if (!chat) printf("* nobody to talk to yet\n");
            else if (lp2p_stream_write(chat, line, strlen(line), lp2p_deadline_in(10000)) != LP2P_OK) chat = NULL;
        }
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s relay [listen] | listen <relay> [listen] | dial <circuit> [listen]\n", argv[0]);
        return 2;
    }
    const char *mode = argv[1], *arg = argc > 2 ? argv[2] : NULL;
    setvbuf(stdout, NULL, _IOLBF, 0); /* one line at a time, also into pipes */
    lp2p_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.listen_addrs[0] = !strcmp(mode, "relay") ? arg : argc > 3 ? argv[3] : "/ip4/0.0.0.0/tcp/0";
    lp2p_host *h;
    int rc = lp2p_host_new(&cfg, &h);
    if (rc) return fprintf(stderr, "host: %s\n", lp2p_strerror(rc)), 1;
    lp2p_host_handle(h, CHAT, on_chat, NULL); /* chat waits for the direct connection (not allowed on relayed ones) */
    for (int i = 0; i < lp2p_host_addr_count(h); i++) printf("* listening on %s\n", lp2p_host_addr(h, i));
    if (!strcmp(mode, "relay")) {
        lp2p_relay_service_start(h, NULL);
        printf("* relay running\n");
        return lp2p_host_run(h);
    }
    if (!strcmp(mode, "listen") && arg) {
        if ((rc = lp2p_relay_reserve(h, arg, lp2p_deadline_in(15000)))) return fprintf(stderr, "reserve: %s\n", lp2p_strerror(rc)), 1;
        return loop(h);
    }
    if (!strcmp(mode, "dial") && arg) {
        printf("* dialing through the relay…\n");
        /* opening the chat protocol waits until DCUtR made a direct connection (or 30 s) */
        if ((rc = lp2p_stream_open(h, arg, CHAT, lp2p_deadline_in(30000), &chat)))
            return fprintf(stderr, "chat: %s\n", lp2p_strerror(rc)), 1;
        show_events(h);
        printf("* chatting over the direct connection; type lines\n");
        lp2p_go(h, read_task, chat);
        return loop(h);
    }
    return 2;
}
