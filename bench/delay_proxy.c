/* bench/delay_proxy.c - a TCP proxy on 127.0.0.1 that delays every byte by a fixed one-way
 * latency, to count the round trips of a dial without tcpdump or tc-netem (sch_netem is not
 * available in this VM).
 *
 *   delay_proxy <upstream-port> <one-way-ms>
 * prints {"event":"ready","port":N} and forwards every connection accepted on 127.0.0.1:N to
 * 127.0.0.1:<upstream-port>; bytes in either direction are delivered one-way-ms after they
 * were read, in order. Runs until killed.
 *
 * How bench/run counts round trips: the same client action (dial + open a stream + 1-byte
 * echo) is timed directly and through the proxy; (through - direct) / (2 * one-way-ms),
 * rounded, is the number of round trips the application waits for, and 1 is added for TCP's
 * own handshake, which the proxy completes locally (the kernel accepts at once). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct item {
    struct item *next;
    struct timespec due;
    size_t n;
    uint8_t data[];
} item;

typedef struct conn { /* both directions; the sockets close when both are done */
    int fds[2];
    int refs;
    pthread_mutex_t mu;
} conn;

typedef struct pump {
    conn *c;
    int from, to;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    item *head, *tail;
    int eof;
} pump;

static int delay_ms, upstream_port;

static void *pump_reader(void *arg) {
    pump *p = arg;
    uint8_t buf[65536];
    for (;;) {
        ssize_t n = read(p->from, buf, sizeof buf);
        item *it = NULL;
        if (n > 0) {
            it = malloc(sizeof *it + (size_t)n);
            clock_gettime(CLOCK_MONOTONIC, &it->due);
            it->due.tv_nsec += (long)delay_ms * 1000000L;
            it->due.tv_sec += it->due.tv_nsec / 1000000000L, it->due.tv_nsec %= 1000000000L;
            it->n = (size_t)n, it->next = NULL;
            memcpy(it->data, buf, (size_t)n);
        }
        pthread_mutex_lock(&p->mu);
        if (it) {
            if (p->tail) p->tail->next = it;
            else p->head = it;
            p->tail = it;
        } else p->eof = 1;
        pthread_cond_signal(&p->cv);
        pthread_mutex_unlock(&p->mu);
        if (!it) return NULL;
    }
}

static void *pump_writer(void *arg) {
    pump *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (!p->head && !p->eof) pthread_cond_wait(&p->cv, &p->mu);
        item *it = p->head;
        if (it) {
            p->head = it->next;
            if (!p->head) p->tail = NULL;
        }
        pthread_mutex_unlock(&p->mu);
        if (!it) { /* EOF after everything queued was delivered: pass the half-close on */
            shutdown(p->to, SHUT_WR);
            conn *c = p->c;
            pthread_mutex_lock(&c->mu);
            int last = --c->refs == 0;
            pthread_mutex_unlock(&c->mu);
            if (last) close(c->fds[0]), close(c->fds[1]); /* the readers have returned too */
            return NULL;
        }
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &it->due, NULL)) {}
        for (size_t off = 0; off < it->n;) {
            ssize_t k = write(p->to, it->data + off, it->n - off);
            if (k <= 0) break;
            off += (size_t)k;
        }
        free(it);
    }
}

static void start_pump(conn *c, int from, int to) {
    pump *p = calloc(1, sizeof *p);
    pthread_t a, b;
    p->c = c, p->from = from, p->to = to;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    pthread_create(&a, NULL, pump_reader, p);
    pthread_create(&b, NULL, pump_writer, p);
    pthread_detach(a), pthread_detach(b);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: delay_proxy <upstream-port> <one-way-ms>\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    upstream_port = atoi(argv[1]), delay_ms = atoi(argv[2]);
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 128) || getsockname(l, (struct sockaddr *)&a, &al)) {
        perror("delay_proxy: listen");
        return 1;
    }
    printf("{\"event\":\"ready\",\"port\":%d}\n", ntohs(a.sin_port));
    fflush(stdout);
    for (;;) {
        int c = accept(l, NULL, NULL);
        if (c < 0) continue;
        int u = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in up = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                                 .sin_port = htons((uint16_t)upstream_port)};
        if (connect(u, (struct sockaddr *)&up, sizeof up)) {
            close(c), close(u);
            continue;
        }
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(u, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn *cn = calloc(1, sizeof *cn);
        cn->fds[0] = c, cn->fds[1] = u, cn->refs = 2;
        pthread_mutex_init(&cn->mu, NULL);
        start_pump(cn, c, u);
        start_pump(cn, u, c);
    }
}
