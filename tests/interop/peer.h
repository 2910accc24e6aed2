/* peer.h - child processes for interop tests: start a program with its stdout on a pipe (stderr
 * to build/interop/logs/<name>-<pid>.log), read its JSON lines while pumping a host, wait for it
 * with a deadline, stop it by PID; plus tiny JSON field getters. The same helpers as in
 * test_interop.c, shared by the newer suites (test_perf.c). Include after libp2p.h. */
#ifndef LP2P_TEST_PEER_H
#define LP2P_TEST_PEER_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct peer_proc {
    pid_t pid;
    int fd; /* its stdout, non-blocking */
    char buf[1 << 16];
    size_t len;
    int eof;
} peer_proc;

/* Start bin with args (NULL-terminated, at most 30). 0 on success. */
static int peer_start(peer_proc *p, const char *bin, const char *const *args) {
    int fds[2];
    char *argv[32];
    int n = 0;
    memset(p, 0, sizeof *p);
    p->fd = -1;
    if (pipe(fds) != 0) return -1;
    argv[n++] = (char *)bin;
    for (; args[n - 1] && n < 31; n++) argv[n] = (char *)args[n - 1];
    argv[n] = NULL;
    p->pid = fork();
    if (p->pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]), close(fds[1]);
        char log[700];
        mkdir("build", 0755), mkdir("build/interop", 0755), mkdir("build/interop/logs", 0755);
        snprintf(log, sizeof log, "build/interop/logs/%s-%d.log", strrchr(bin, '/') ? strrchr(bin, '/') + 1 : bin,
                 (int)getpid());
        int lf = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (lf >= 0) dup2(lf, 2), close(lf);
        execv(bin, argv);
        _exit(127);
    }
    close(fds[1]);
    if (p->pid < 0) {
        close(fds[0]);
        return -1;
    }
    p->fd = fds[0];
    fcntl(p->fd, F_SETFL, O_NONBLOCK);
    return 0;
}

/* Next stdout line containing needle, pumping host h (may be NULL) meanwhile; copies it into
 * out. 1 if found, 0 at EOF or the deadline. */
static int peer_line(peer_proc *p, lp2p_host *h, const char *needle, char *out, size_t cap, int64_t deadline) {
    for (;;) {
        char *nl;
        while ((nl = (char *)memchr(p->buf, '\n', p->len)) != NULL) {
            *nl = 0;
            int hit = strstr(p->buf, needle) != NULL;
            if (hit) snprintf(out, cap, "%s", p->buf);
            size_t used = (size_t)(nl - p->buf) + 1;
            memmove(p->buf, nl + 1, p->len - used);
            p->len -= used;
            if (hit) return 1;
        }
        if (p->eof || lp2p_now() > deadline) return 0;
        ssize_t n = read(p->fd, p->buf + p->len, sizeof p->buf - 1 - p->len);
        if (n > 0) p->len += (size_t)n;
        else if (n == 0) p->eof = 1;
        else if (h) lp2p_host_poll(h, 5);
        else usleep(5000);
        if (p->len == sizeof p->buf - 1) p->len = 0; /* runaway line: drop */
    }
}

/* Wait for exit (pumping h, keeping its stdout buffered); returns the exit code (128+signal if
 * killed), or -1 on timeout (then the child is killed). */
static int peer_wait(peer_proc *p, lp2p_host *h, int64_t deadline) {
    int st;
    for (;;) {
        pid_t r = waitpid(p->pid, &st, WNOHANG);
        if (r == p->pid) {
            p->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        if (lp2p_now() > deadline) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &st, 0);
            p->pid = 0;
            return -1;
        }
        if (h) lp2p_host_poll(h, 5);
        else usleep(5000);
        char tmp[4096];
        ssize_t n = read(p->fd, tmp, sizeof tmp);
        if (n > 0 && p->len + (size_t)n < sizeof p->buf) memcpy(p->buf + p->len, tmp, (size_t)n), p->len += (size_t)n;
    }
}

/* SIGTERM, then SIGKILL after 2 s. Returns the exit status as peer_wait (or 0 if not running). */
static int peer_stop(peer_proc *p) {
    int rc = 0;
    if (p->pid > 0) {
        kill(p->pid, SIGTERM);
        rc = peer_wait(p, NULL, lp2p_deadline_in(2000));
    }
    if (p->fd >= 0) close(p->fd), p->fd = -1;
    return rc;
}

/* "key":"value" -> value */
static int json_str(const char *line, const char *key, char *out, size_t cap) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *s = strstr(line, pat);
    if (!s) return 0;
    s += strlen(pat);
    const char *e = strchr(s, '"');
    if (!e) return 0;
    snprintf(out, cap, "%.*s", (int)(e - s), s);
    return 1;
}

/* first element of "key":["...", ...] */
static int json_first(const char *line, const char *key, char *out, size_t cap) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":[\"", key);
    const char *s = strstr(line, pat);
    if (!s) return 0;
    s += strlen(pat);
    const char *e = strchr(s, '"');
    if (!e) return 0;
    snprintf(out, cap, "%.*s", (int)(e - s), s);
    return 1;
}

/* "key":<unsigned integer> -> value; -1 if absent or not an integer */
static long long json_u64(const char *line, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *s = strstr(line, pat);
    if (!s) return -1;
    s += strlen(pat);
    if (*s < '0' || *s > '9') return -1;
    return strtoll(s, NULL, 10);
}

#endif
