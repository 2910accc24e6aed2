/* peer.h - helpers for interop tests that drive reference peers (tests/interop/{go,js,rust})
 * as child processes: start with stdin/stdout pipes, read JSON lines while our hosts keep
 * running, send commands, stop by PID. Copied from test_interop.c's helpers (plus stdin).
 * Include after libp2p.h and tests/test.h. */
#ifndef LP2P_TEST_PEER_H
#define LP2P_TEST_PEER_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct peer_proc {
    pid_t pid;
    int fd;    /* its stdout, non-blocking */
    int in_fd; /* its stdin (-1 when not piped) */
    char buf[1 << 16];
    size_t len;
    int eof;
    char name[32];
} peer_proc;

/* Start bin with args (NULL-terminated); stderr goes to build/interop/logs/<name>-<pid>.log. */
static int peer_spawn(peer_proc *p, const char *bin, const char *const *args, const char *name) {
    int out[2], in[2];
    char *argv[24];
    int n = 0;
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    if (pipe(out) != 0) return -1;
    if (pipe(in) != 0) {
        close(out[0]), close(out[1]);
        return -1;
    }
    argv[n++] = (char *)bin;
    for (; args[n - 1] && n < 23; n++) argv[n] = (char *)args[n - 1];
    argv[n] = NULL;
    p->pid = fork();
    if (p->pid == 0) {
        dup2(out[1], 1), dup2(in[0], 0);
        close(out[0]), close(out[1]), close(in[0]), close(in[1]);
        char log[600];
        snprintf(log, sizeof log, "build/interop/logs/%s-%d.log", name, (int)getpid());
        int lf = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (lf >= 0) dup2(lf, 2), close(lf);
        execv(bin, argv);
        _exit(127);
    }
    close(out[1]), close(in[0]);
    p->fd = out[0], p->in_fd = in[1];
    fcntl(p->fd, F_SETFL, O_NONBLOCK);
    return p->pid > 0 ? 0 : -1;
}

/* Run our hosts (every scheduler of this thread) for about ms milliseconds. */
static void peer_pump(lp2p_host *h, int ms) {
    if (h) lp2p_sleep(h, lp2p_deadline_in(ms));
    else usleep((useconds_t)ms * 1000);
}

/* Next stdout line containing needle (copied into out), running our hosts meanwhile. */
static int peer_line(peer_proc *p, lp2p_host *h, const char *needle, char *out, size_t cap, int64_t deadline) {
    for (;;) {
        char *nl;
        while ((nl = memchr(p->buf, '\n', p->len)) != NULL) {
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
        else peer_pump(h, 3);
        if (p->len == sizeof p->buf - 1) p->len = 0; /* runaway line: drop */
    }
}

/* Send one command line (a newline is added). */
static int peer_send(peer_proc *p, const char *line) {
    size_t n = strlen(line);
    char buf[2048];
    if (n + 2 > sizeof buf) return -1;
    memcpy(buf, line, n), buf[n] = '\n';
    return write(p->in_fd, buf, n + 1) == (ssize_t)(n + 1) ? 0 : -1;
}

static void peer_stop(peer_proc *p) {
    if (p->in_fd > 0) close(p->in_fd), p->in_fd = -1;
    if (p->pid > 0) {
        kill(p->pid, SIGTERM);
        for (int i = 0; i < 100 && waitpid(p->pid, NULL, WNOHANG) == 0; i++) usleep(20000);
        if (waitpid(p->pid, NULL, WNOHANG) == 0) kill(p->pid, SIGKILL), waitpid(p->pid, NULL, 0);
        p->pid = 0;
    }
    if (p->fd > 0) close(p->fd), p->fd = -1;
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

#endif
