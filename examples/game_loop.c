/* game_loop.c - two hosts in one process driven by a 60 Hz frame loop (driving mode 1).
 *
 *   cc -O2 -I. -o game_loop examples/game_loop.c -lsodium -lbearssl -lprotobuf-nanopb -lpthread -lm
 *
 * Every frame calls lp2p_host_poll(h, 0) once per host - it never blocks - then drains each
 * host's event queue. Player A connects to player B with lp2p_host_connect_async; when the
 * connection event arrives, A opens a stream in a task (lp2p_go) and B receives it as an
 * LP2P_EVENT_STREAM event (B registered the protocol with a NULL handler). From then on each
 * player writes its position every frame and reads the other's with LP2P_NOWAIT calls, where
 * LP2P_ERR_TIMEOUT means "nothing yet". After ~3 s it prints a summary and exits 0.
 *
 * Positions travel as fixed 12-byte records (frame number, x, y) read with plain
 * lp2p_stream_read into a small buffer: a non-blocking read may return part of a record, and
 * the buffer keeps it until the rest arrives. */
#define LIBP2P_IMPLEMENTATION
#include "libp2p.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define GAME_PROTOCOL "/game/position/1.0.0"
#define RECORD 12
#define FPS 60
#define RUN_MS 3000

typedef struct player {
    const char *name;
    lp2p_host *host;
    lp2p_stream *stream;           /* NULL until connected */
    unsigned char in[RECORD * 64]; /* bytes read but not yet parsed */
    size_t in_len;
    float x, y, other_x, other_y;  /* own position and the latest one heard */
    int sent, received, skipped, events;
} player;

static lp2p_peer_id b_id;

/* A's task: open the stream once connected (blocking call inside a task: only it waits). */
static void open_stream(void *arg) {
    player *a = (player *)arg;
    char id[LP2P_PEER_ID_STRLEN];
    lp2p_peer_id_str(&b_id, id, sizeof id); /* bare peer ID: A already knows B's address */
    int rc = lp2p_stream_open(a->host, id, GAME_PROTOCOL, lp2p_deadline_in(5000), &a->stream);
    if (rc != LP2P_OK) fprintf(stderr, "%s: cannot open the stream: %s\n", a->name, lp2p_strerror(rc));
}

static void put_u32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); } /* same machine: host order */
static void put_f32(unsigned char *p, float v) { memcpy(p, &v, 4); }
static float get_f32(const unsigned char *p) { float v; memcpy(&v, p, 4); return v; }

static int handle_events(player *p) {
    lp2p_event ev;
    while (lp2p_host_next_event(p->host, &ev)) {
        p->events++;
        if (ev.type == LP2P_EVENT_PEER_CONNECTED && p->name[0] == 'A') {
            b_id = ev.peer;
            lp2p_go(p->host, open_stream, p);
        } else if (ev.type == LP2P_EVENT_STREAM) {
            p->stream = ev.stream; /* the app owns it now */
        } else if (ev.type == LP2P_EVENT_DIAL_FAILED) {
            fprintf(stderr, "%s: dial failed: %s\n", p->name, lp2p_strerror(ev.err));
            return -1;
        }
    }
    return 0;
}

/* Send our position and take in whatever the other side sent - never waits. */
static void exchange(player *p, int frame) {
    unsigned char rec[RECORD];
    if (!p->stream) return;
    put_u32(rec, (uint32_t)frame), put_f32(rec + 4, p->x), put_f32(rec + 8, p->y);
    int rc = lp2p_stream_write(p->stream, rec, sizeof rec, LP2P_NOWAIT);
    if (rc == LP2P_OK) p->sent++;
    else p->skipped++; /* ERR_TIMEOUT: no room right now; the next frame sends a fresher one */
    for (;;) {
        ptrdiff_t n = lp2p_stream_read(p->stream, p->in + p->in_len, sizeof p->in - p->in_len, LP2P_NOWAIT);
        if (n <= 0) break; /* ERR_TIMEOUT: nothing yet; 0 or another error: the peer is gone */
        p->in_len += (size_t)n;
        size_t off = 0;
        for (; p->in_len - off >= RECORD; off += RECORD, p->received++)
            p->other_x = get_f32(p->in + off + 4), p->other_y = get_f32(p->in + off + 8);
        memmove(p->in, p->in + off, p->in_len - off);
        p->in_len -= off;
    }
}

static void sleep_until(struct timespec *next) {
    next->tv_nsec += 1000000000L / FPS;
    if (next->tv_nsec >= 1000000000L) next->tv_sec++, next->tv_nsec -= 1000000000L;
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, next, NULL);
}

int main(void) {
    player a = {.name = "A"}, b = {.name = "B"};
    int rc = lp2p_host_new(NULL, &a.host);
    if (rc == LP2P_OK) rc = lp2p_host_new(NULL, &b.host);
    if (rc != LP2P_OK) {
        fprintf(stderr, "game_loop: cannot start a host: %s\n", lp2p_strerror(rc));
        return 1;
    }
    lp2p_host_handle(b.host, GAME_PROTOCOL, NULL, NULL); /* NULL handler: streams arrive as events */
    rc = lp2p_host_connect_async(a.host, lp2p_host_addr(b.host, 0));
    if (rc != LP2P_OK) {
        fprintf(stderr, "game_loop: connect_async: %s\n", lp2p_strerror(rc));
        return 1;
    }
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    int frame = 0, failed = 0, connected_at = -1;
    for (; frame < RUN_MS * FPS / 1000 && !failed; frame++) {
        lp2p_host_poll(a.host, 0);
        lp2p_host_poll(b.host, 0);
        failed = handle_events(&a) || handle_events(&b);
        float t = (float)frame / FPS; /* the "game": A circles, B walks back and forth */
        a.x = 10 * cosf(t), a.y = 10 * sinf(t);
        b.x = 5 * sinf(t / 2), b.y = 0;
        exchange(&a, frame);
        exchange(&b, frame);
        if (connected_at < 0 && a.stream && b.stream) connected_at = frame;
        sleep_until(&next);
    }
    printf("frames: %d at %d Hz (streams up at frame %d)\n", frame, FPS, connected_at);
    printf("A: sent %d, received %d positions (%d writes skipped), %d events; last B at (%.2f, %.2f)\n", a.sent,
           a.received, a.skipped, a.events, a.other_x, a.other_y);
    printf("B: sent %d, received %d positions (%d writes skipped), %d events; last A at (%.2f, %.2f)\n", b.sent,
           b.received, b.skipped, b.events, b.other_x, b.other_y);
    if (a.stream) lp2p_stream_close(a.stream);
    if (b.stream) lp2p_stream_close(b.stream);
    lp2p_host_free(a.host);
    lp2p_host_free(b.host);
    return !failed && a.received > 0 && b.received > 0 ? 0 : 1;
}
