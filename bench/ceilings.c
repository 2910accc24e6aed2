/* bench/ceilings.c - what this machine allows, measured with nothing of libp2p in the way.
 *
 *   ceilings aead [seconds]   single-core libsodium ChaCha20-Poly1305 (IETF, the Noise cipher)
 *                             sealing and opening 65,519-byte plaintexts: MB/s each
 *   ceilings tcp [bytes]      raw TCP over 127.0.0.1 between two processes (one core each),
 *                             256 KiB writes and reads: MB/s
 *   ceilings pipe [bytes]     the encrypted-pipe ceiling: two processes on 127.0.0.1, the sender
 *                             seals 65,519-byte frames (u16 BE length || ciphertext, Noise
 *                             transport framing, 4 frames per write), the receiver reads 256 KiB
 *                             at a time and opens every frame in place. No multistream, no
 *                             yamux, no coroutines: MB/s of plaintext
 * One JSON line on stdout: {"event":"ceiling","what":...,"MBps":...}. MB = 10^6 bytes. The two
 * processes are pinned to CPUs 0 (receiver) and 1 (sender) when the machine has two. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FRAME_PT 65519
#define TAG 16
#define FRAME_CT (FRAME_PT + TAG)
#define BATCH 4
#define CHUNK (256 * 1024)

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void pin(int cpu) {
    cpu_set_t set;
    if (sysconf(_SC_NPROCESSORS_ONLN) < 2) return;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

static void nonce(uint8_t n[12], uint64_t c) { /* Noise: 4 zero bytes || little-endian counter */
    memset(n, 0, 4);
    for (int i = 0; i < 8; i++) n[4 + i] = (uint8_t)(c >> (8 * i));
}

static const uint8_t key[32] = {1, 2, 3};

static void aead(double secs) {
    static uint8_t pt[FRAME_PT], ct[FRAME_CT];
    uint8_t n[12];
    double rate[2];
    for (int mode = 0; mode < 2; mode++) {
        uint64_t c = 0;
        double t0 = now_s(), t;
        if (mode == 1) crypto_aead_chacha20poly1305_ietf_encrypt(ct, NULL, pt, FRAME_PT, NULL, 0, NULL, (nonce(n, 0), n), key);
        do {
            for (int k = 0; k < 16; k++, c++) {
                nonce(n, mode ? 0 : c);
                if (mode == 0) crypto_aead_chacha20poly1305_ietf_encrypt(ct, NULL, pt, FRAME_PT, NULL, 0, NULL, n, key);
                else if (crypto_aead_chacha20poly1305_ietf_decrypt(pt, NULL, NULL, ct, FRAME_CT, NULL, 0, n, key)) exit(1);
            }
        } while ((t = now_s() - t0) < secs / 2);
        rate[mode] = c * (double)FRAME_PT / t / 1e6;
    }
    printf("{\"event\":\"ceiling\",\"what\":\"aead\",\"sealMBps\":%.1f,\"openMBps\":%.1f,\"MBps\":%.1f}\n", rate[0],
           rate[1], rate[0] < rate[1] ? rate[0] : rate[1]);
}

/* A connected pair over 127.0.0.1: *rx is the receiver's end (this process), returns the sender's. */
static int tcp_pair(int *rx) {
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 1) || getsockname(l, (struct sockaddr *)&a, &al)) exit(1);
    int tx = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(tx, (struct sockaddr *)&a, sizeof a)) exit(1);
    *rx = accept(l, NULL, NULL);
    close(l);
    setsockopt(tx, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(*rx, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (getenv("CEIL_BUF")) {
        int b = atoi(getenv("CEIL_BUF"));
        setsockopt(tx, SOL_SOCKET, SO_SNDBUF, &b, sizeof b);
        setsockopt(*rx, SOL_SOCKET, SO_RCVBUF, &b, sizeof b);
    }
    return tx;
}

static void write_all(int fd, const uint8_t *b, size_t n) {
    while (n) {
        ssize_t k = write(fd, b, n);
        if (k <= 0) exit(1);
        b += k, n -= (size_t)k;
    }
}

static void sender(int fd, uint64_t bytes, int sealed) {
    static uint8_t buf[BATCH * (2 + FRAME_CT)], pt[FRAME_PT];
    pin(1);
    uint64_t c = 0;
    uint8_t n[12];
    while (bytes) {
        size_t off = 0;
        if (!sealed) {
            size_t k = bytes < CHUNK ? (size_t)bytes : CHUNK;
            write_all(fd, buf, k); /* contents do not matter */
            bytes -= k;
            continue;
        }
        for (int f = 0; f < BATCH && bytes; f++) {
            size_t k = bytes < FRAME_PT ? (size_t)bytes : FRAME_PT;
            buf[off] = (uint8_t)((k + TAG) >> 8), buf[off + 1] = (uint8_t)(k + TAG);
            nonce(n, c++);
            crypto_aead_chacha20poly1305_ietf_encrypt(buf + off + 2, NULL, pt, k, NULL, 0, NULL, n, key);
            off += 2 + k + TAG, bytes -= k;
        }
        write_all(fd, buf, off);
    }
    close(fd);
}

/* Receive to EOF; returns plaintext bytes. Frames are opened in place in a sliding buffer. */
static uint64_t receiver(int fd, int sealed) {
    static uint8_t buf[CHUNK + 2 + FRAME_CT];
    size_t have = 0;
    uint64_t total = 0, c = 0;
    uint8_t n[12];
    for (;;) {
        ssize_t k = read(fd, buf + have, sizeof buf - have);
        if (k < 0) exit(1);
        if (k == 0) break;
        if (!sealed) {
            total += (uint64_t)k;
            continue;
        }
        have += (size_t)k;
        size_t off = 0;
        while (have - off >= 2) {
            size_t flen = (size_t)buf[off] << 8 | buf[off + 1];
            if (have - off < 2 + flen) break;
            nonce(n, c++);
            if (crypto_aead_chacha20poly1305_ietf_decrypt(buf + off + 2, NULL, NULL, buf + off + 2, flen, NULL, 0, n, key))
                exit(3);
            total += flen - TAG, off += 2 + flen;
        }
        memmove(buf, buf + off, have - off);
        have -= off;
    }
    return total;
}

static void transfer(const char *what, uint64_t bytes, int sealed) {
    int rx, tx = tcp_pair(&rx);
    pid_t pid = fork();
    if (pid == 0) {
        close(rx);
        sender(tx, bytes, sealed);
        _exit(0);
    }
    close(tx);
    pin(0);
    double t0 = now_s();
    uint64_t got = receiver(rx, sealed);
    double t = now_s() - t0;
    int st;
    waitpid(pid, &st, 0);
    if (got != bytes || !WIFEXITED(st) || WEXITSTATUS(st)) {
        fprintf(stderr, "ceilings %s: got %llu of %llu bytes\n", what, (unsigned long long)got, (unsigned long long)bytes);
        exit(1);
    }
    printf("{\"event\":\"ceiling\",\"what\":\"%s\",\"bytes\":%llu,\"seconds\":%.3f,\"MBps\":%.1f}\n", what,
           (unsigned long long)bytes, t, bytes / t / 1e6);
}

int main(int argc, char **argv) {
    if (argc < 2 || sodium_init() < 0) {
        fprintf(stderr, "usage: ceilings aead [seconds] | tcp [bytes] | pipe [bytes]\n");
        return 2;
    }
    if (!strcmp(argv[1], "aead")) aead(argc > 2 ? atof(argv[2]) : 2);
    else if (!strcmp(argv[1], "tcp")) transfer("tcp", argc > 2 ? strtoull(argv[2], NULL, 10) : 4ull << 30, 0);
    else if (!strcmp(argv[1], "pipe")) transfer("pipe", argc > 2 ? strtoull(argv[2], NULL, 10) : 1ull << 30, 1);
    else return 2;
    return 0;
}
