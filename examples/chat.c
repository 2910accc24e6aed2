/* chat.c - line chat between two terminals over /chat/1.0.0.
 *
 *   cc -O2 -I. -o chat examples/chat.c -lsodium -lbearssl -lprotobuf-nanopb -lpthread
 *
 *   ./chat                  listen; prints the address to give the other side
 *   ./chat <multiaddr>      dial it (the multiaddr ends in /p2p/<peer-id>)
 *
 * Every stdin line goes out as one length-prefixed message (lp2p_stream_write_msg); every
 * message that comes in is printed. Ctrl-D (or the peer leaving) ends the chat.
 *
 * Driving mode 2 (DESIGN.md §1): the host lives on a network thread inside lp2p_host_run().
 * The stdin thread never touches the host except through lp2p_host_post() and
 * lp2p_host_stop(), the thread-safe calls; everything else runs as tasks on the host's loop,
 * so the shared state below (peer_stream) is only ever touched from that one thread. */
#define LIBP2P_IMPLEMENTATION
#include "libp2p.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHAT_PROTOCOL "/chat/1.0.0"
#define MAX_LINE 4096

static lp2p_host *host;
static lp2p_stream *peer_stream; /* the one conversation; loop thread only */
static atomic_bool finished;     /* set by the loop thread when the peer left */

/* Print everything the peer sends until it leaves (runs as a task on the loop). */
static void receive_lines(lp2p_stream *s) {
    char line[MAX_LINE + 1];
    char id[LP2P_PEER_ID_STRLEN];
    lp2p_peer_id peer = lp2p_stream_peer(s);
    lp2p_peer_id_str(&peer, id, sizeof id);
    printf("* %s joined\n", id);
    fflush(stdout);
    ptrdiff_t n;
    while ((n = lp2p_stream_read_msg(s, line, MAX_LINE, LP2P_FOREVER)) >= 0) {
        line[n] = '\0';
        printf("> %s\n", line);
        fflush(stdout);
    }
    if (n != LP2P_ERR_CANCELED) printf("* peer left (%s)\n", lp2p_strerror((int)n)); /* else: we quit */
    fflush(stdout);
}

/* Listener side: each inbound chat stream runs this as its own task. */
static void chat_handler(lp2p_stream *s, void *user) {
    (void)user;
    if (peer_stream) { /* one conversation at a time */
        lp2p_stream_reset(s);
        return;
    }
    peer_stream = s;
    receive_lines(s);
    peer_stream = NULL; /* the stream is closed when the handler returns */
    atomic_store(&finished, true);
    lp2p_host_stop(host);
}

/* Dialer side: the stream was opened in main(); this task reads it and closes it at the end
 * (also when lp2p_host_free cancels the task: its read then returns LP2P_ERR_CANCELED). */
static void dialer_reader(void *arg) {
    receive_lines((lp2p_stream *)arg);
    lp2p_stream_close(peer_stream);
    peer_stream = NULL;
    atomic_store(&finished, true);
    lp2p_host_stop(host);
}

/* Posted from the stdin thread: runs as a task on the loop thread. */
static void send_line(void *arg) {
    char *line = (char *)arg;
    if (!peer_stream) printf("* nobody to talk to yet\n");
    else if (lp2p_stream_write_msg(peer_stream, line, strlen(line), lp2p_deadline_in(10000)) != LP2P_OK)
        printf("* could not send that line\n");
    fflush(stdout);
    free(line);
}

/* Posted when stdin ends: say goodbye (EOF on our side of the stream), then stop the loop. */
static void hang_up(void *arg) {
    (void)arg;
    if (peer_stream) lp2p_stream_close_write(peer_stream);
    lp2p_host_stop(host);
}

static void *network_thread(void *arg) {
    (void)arg;
    lp2p_host_run(host);
    return NULL;
}

/* Read stdin lines (waking up now and then to notice that the peer left) and post them. */
static void stdin_loop(void) {
    char buf[MAX_LINE + 1];
    size_t len = 0;
    while (!atomic_load(&finished)) {
        struct pollfd p = {STDIN_FILENO, POLLIN, 0};
        if (poll(&p, 1, 200) <= 0) continue;
        ssize_t n = read(STDIN_FILENO, buf + len, MAX_LINE - len);
        if (n <= 0) break; /* Ctrl-D */
        len += (size_t)n;
        char *nl;
        while ((nl = memchr(buf, '\n', len)) != NULL || len == MAX_LINE) {
            size_t line_len = nl ? (size_t)(nl - buf) : len;
            char *line = malloc(line_len + 1);
            if (line) {
                memcpy(line, buf, line_len);
                line[line_len] = '\0';
                if (lp2p_host_post(host, send_line, line) != LP2P_OK) free(line);
            }
            size_t used = nl ? line_len + 1 : len;
            memmove(buf, buf + used, len - used);
            len -= used;
        }
    }
    if (!atomic_load(&finished)) lp2p_host_post(host, hang_up, NULL);
}

int main(int argc, char **argv) {
    lp2p_config cfg = {0};
    if (argc > 2) {
        fprintf(stderr, "usage: %s [multiaddr/p2p/<peer-id>]\n", argv[0]);
        return 2;
    }
    cfg.no_listen = argc == 2;
    int rc = lp2p_host_new(&cfg, &host);
    if (rc != LP2P_OK) {
        fprintf(stderr, "chat: cannot start the host: %s\n", lp2p_strerror(rc));
        return 1;
    }
    if (argc == 1) {
        lp2p_host_handle(host, CHAT_PROTOCOL, chat_handler, NULL);
        printf("waiting for a peer; on the other terminal run:\n");
        for (int i = 0; i < lp2p_host_addr_count(host); i++) printf("  %s %s\n", argv[0], lp2p_host_addr(host, i));
    } else {
        /* The loop is not running on another thread yet, so main() may still make blocking
         * calls (mode 3) before handing the host over to the network thread. */
        rc = lp2p_stream_open(host, argv[1], CHAT_PROTOCOL, lp2p_deadline_in(10000), &peer_stream);
        if (rc != LP2P_OK) {
            fprintf(stderr, "chat: %s: %s\n", argv[1], lp2p_strerror(rc));
            lp2p_host_free(host);
            return 1;
        }
        lp2p_go(host, dialer_reader, peer_stream);
    }
    fflush(stdout);
    pthread_t net;
    if (pthread_create(&net, NULL, network_thread, NULL) != 0) {
        lp2p_host_free(host);
        return 1;
    }
    stdin_loop();
    pthread_join(net, NULL); /* the loop stops after hang_up, or when the peer left */
    lp2p_host_free(host); /* cancels the reader task, which closes its stream */
    return 0;
}
