/* test_kad.c - the Kademlia DHT of libp2p.h against go-libp2p-kad-dht (peer-go) and
 * @libp2p/kad-dht (peer-js), on 127.0.0.1, in both roles.
 *
 * 1. Mixed network on the app DHT /lp2ptest/kad/1.0.0: 4 go, 4 js and 4 of our servers (plus a go,
 *    a js and one of our nodes in client mode). A value put by a go, a js and one of our
 *    nodes is got by every node; a provide by each is found by every node; find-peer and
 *    closest-peers across implementations; client-mode nodes appear in nobody's table.
 * 2. The Amino protocol /ipfs/kad/1.0.0 with a go server: our node defaults to client mode
 *    there (not in go's table), stores a /pk/ record go validates, provides and finds.
 * Peers are driven through their "dht" mode (tests/interop/README.md); they never contact
 * the public network. Under CI=true a missing peer is a failure.
 * Usage: test_kad [go] [js]   (default: both) */
#define LIBP2P_IMPLEMENTATION
#include "libp2p.h"
#include "tests/test.h"

/* ---- child processes with stdin (the peers' dht mode reads commands) -------------------------
 * Like tests/interop/peer.h, plus a stdin pipe, and waiting runs *all* our hosts (lp2p_sleep
 * outside a task pumps every scheduler of the thread), since several of ours serve at once. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct kad_proc {
    pid_t pid;
    int fd;    /* its stdout, non-blocking */
    int in_fd; /* its stdin (-1 when not piped) */
    char buf[1 << 16];
    size_t len;
    int eof;
    char name[32];
} kad_proc;

/* Start bin with args (NULL-terminated); stderr goes to build/interop/logs/<name>-<pid>.log. */
static int kad_spawn(kad_proc *p, const char *bin, const char *const *args, const char *name) {
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
static void kad_pump(lp2p_host *h, int ms) {
    if (h) lp2p_sleep(h, lp2p_deadline_in(ms));
    else usleep((useconds_t)ms * 1000);
}

/* Next stdout line containing needle (copied into out), running our hosts meanwhile. */
static int kad_line(kad_proc *p, lp2p_host *h, const char *needle, char *out, size_t cap, int64_t deadline) {
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
        else kad_pump(h, 3);
        if (p->len == sizeof p->buf - 1) p->len = 0; /* runaway line: drop */
    }
}

/* Send one command line (a newline is added). */
static int kad_send(kad_proc *p, const char *line) {
    size_t n = strlen(line);
    char buf[2048];
    if (n + 2 > sizeof buf) return -1;
    memcpy(buf, line, n), buf[n] = '\n';
    return write(p->in_fd, buf, n + 1) == (ssize_t)(n + 1) ? 0 : -1;
}

static void kad_stop(kad_proc *p) {
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
static int kad_json_str(const char *line, const char *key, char *out, size_t cap) {
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
static int kad_json_first(const char *line, const char *key, char *out, size_t cap) {
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


#define PREFIX "/lp2ptest"
#define PROTO PREFIX "/kad/1.0.0"
#define N_GO 4
#define N_JS 4
#define N_OURS 4
#define LINE 65536

static char bin[2][600];
static int have[2];
static const char *impl_name[2] = {"go", "js"};

typedef struct ext {
    kad_proc p;
    char id[128], addr[600];
    int impl;
    lp2p_peer_id pid;
} ext;

static lp2p_host *pumper; /* any of our hosts: waiting on it runs all of them */
static char line[LINE];

static int ext_start(ext *e, int impl, const char *mode, const char *prefix) {
    const char *args[] = {"dht", mode, prefix, "--timeout", "280", NULL};
    char name[32];
    e->impl = impl;
    snprintf(name, sizeof name, "kad-%s-%s", impl_name[impl], mode);
    if (kad_spawn(&e->p, bin[impl], args, name) != 0) return 0;
    if (!kad_line(&e->p, pumper, "\"ready\"", line, LINE, lp2p_deadline_in(30000))) return 0;
    return kad_json_str(line, "peerId", e->id, sizeof e->id) && kad_json_first(line, "listenAddrs", e->addr, sizeof e->addr) &&
           lp2p_peer_id_parse(e->id, &e->pid) == LP2P_OK;
}

/* Send a command and wait for its answer line; returns 1 if it says "ok":true. */
static int ext_cmd(ext *e, const char *cmd, int timeout_ms) {
    char ev[64], needle[80];
    sscanf(cmd, "%63s", ev);
    snprintf(needle, sizeof needle, "{\"event\":\"%s\"", ev);
    line[0] = 0;
    if (kad_send(&e->p, cmd) != 0) return 0;
    if (!kad_line(&e->p, pumper, needle, line, LINE, lp2p_deadline_in(timeout_ms))) {
        fprintf(stderr, "    %s %s: no answer to '%.60s'\n", impl_name[e->impl], e->id + 46, cmd);
        return 0;
    }
    int ok = strstr(line, "\"ok\":true") != NULL;
    if (!ok) fprintf(stderr, "    %s %s: '%.60s' -> %.300s\n", impl_name[e->impl], e->id + 46, cmd, line);
    return ok;
}

/* ---- our nodes --------------------------------------------------------------------------- */
typedef struct ours {
    lp2p_host *h;
    lp2p_kad *k;
    char id[LP2P_PEER_ID_STRLEN];
    lp2p_peer_id pid;
} ours;

static int permissive(void *user, const uint8_t *key, size_t key_len, const uint8_t *value, size_t value_len) {
    (void)user, (void)key, (void)key_len, (void)value, (void)value_len;
    return LP2P_OK;
}

static int ours_start(ours *o, const char *proto, lp2p_kad_mode mode) {
    lp2p_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.log_level = getenv("LP2P_TEST_LOG") ? LP2P_LOG_DEBUG : LP2P_LOG_ERROR;
    if (lp2p_host_new(&cfg, &o->h) != LP2P_OK) return 0;
    lp2p_kad_config kc;
    memset(&kc, 0, sizeof kc);
    kc.protocol = proto, kc.mode = mode, kc.request_timeout_ms = 5000, kc.refresh_interval_ms = -1;
    if (lp2p_kad_new(o->h, &kc, &o->k) != LP2P_OK) return 0;
    lp2p_kad_validator v = {permissive, NULL, NULL};
    if (proto && strcmp(proto, "/ipfs/kad/1.0.0") != 0) lp2p_kad_set_validator(o->k, "t", &v);
    o->pid = lp2p_host_id(o->h);
    lp2p_peer_id_str(&o->pid, o->id, sizeof o->id);
    if (!pumper) pumper = o->h;
    return 1;
}

static void ours_stop(ours *o) {
    if (o->k) lp2p_kad_free(o->k);
    if (o->h == pumper) pumper = NULL;
    if (o->h) lp2p_host_free(o->h);
    memset(o, 0, sizeof *o);
}

static int in_our_rt(ours *o, const lp2p_peer_id *id) {
    lp2p_kad_entry e[512];
    int n = lp2p_kad_routing_table(o->k, e, 512);
    for (int i = 0; i < n && i < 512; i++)
        if (lp2p_peer_id_eq(&e[i].id, id)) return 1;
    return 0;
}

/* CIDv1 raw (0x55) sha2-256 of text, base32 */
static void make_cid(const char *text, char *out, size_t cap, uint8_t mh[34]) {
    uint8_t b[36] = {0x01, 0x55, 0x12, 0x20};
    lp2p__sha256_once(text, strlen(text), b + 4);
    memcpy(mh, b + 2, 34);
    out[0] = 'b';
    lp2p__base32_enc(b, sizeof b, out + 1, cap - 1);
}

static void hex(const uint8_t *p, size_t n, char *out) {
    for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", p[i]);
}

/* ---- 1. mixed network ---------------------------------------------------------------------- */
static void test_mixed(void) {
    ext ex[N_GO + N_JS + 2];
    ours us[N_OURS + 1];
    int ne = 0;
    char cmd[2048];
    memset(ex, 0, sizeof ex), memset(us, 0, sizeof us);
    TEST("mixed DHT: go + js + libp2p.h servers, clients of each");
    int64_t t0 = lp2p_now();
    for (int i = 0; i < N_OURS; i++) CHECK(ours_start(&us[i], PROTO, LP2P_KAD_SERVER));
    const char *our0 = lp2p_host_addr(us[0].h, 0);
    for (int impl = 0; impl < 2; impl++)
        for (int i = 0; have[impl] && i < (impl ? N_JS : N_GO); i++) {
            int ok = ext_start(&ex[ne], impl, "server", PREFIX);
            CHECK(ok);
            if (ok) ne++;
        }
    int first_js = 0;
    while (first_js < ne && ex[first_js].impl == 0) first_js++;
    /* bootstrap: they to our node 0; ours to node 0 and to a go and a js server */
    for (int i = 0; i < ne; i++) {
        snprintf(cmd, sizeof cmd, "bootstrap %s", our0);
        CHECK(ext_cmd(&ex[i], cmd, 40000));
    }
    const char *boot[3] = {our0, ne ? ex[0].addr : our0, first_js < ne ? ex[first_js].addr : our0};
    for (int i = 1; i < N_OURS; i++) CHECK(lp2p_kad_bootstrap(us[i].k, boot, 3, lp2p_deadline_in(40000)) >= 3);
    CHECK(lp2p_kad_bootstrap(us[0].k, boot + 1, 2, lp2p_deadline_in(40000)) >= 3);
    for (int i = 0; i < ne; i++) CHECK(ext_cmd(&ex[i], "bootstrap", 40000)); /* a refresh, now that all are up */
    int total = ne + N_OURS;
    int rt0 = lp2p_kad_routing_table(us[0].k, NULL, 0);
    fprintf(stderr, "    %d go/js + %d ours up and bootstrapped in %d ms; our node 0 has %d/%d peers in its table\n",
            ne, N_OURS, (int)(lp2p_now() - t0), rt0, total - 1);
    CHECK(rt0 >= total - 2);
    for (int i = 0; i < ne; i++) CHECK(in_our_rt(&us[0], &ex[i].pid));
    /* every external server has our servers in its table */
    int their_rt_has_ours = 0;
    for (int i = 0; i < ne; i++)
        if (ext_cmd(&ex[i], "rt", 10000))
            for (int j = 0; j < N_OURS; j++) their_rt_has_ours += strstr(line, us[j].id) != NULL;
    CHECK(their_rt_has_ours >= ne * (N_OURS - 1));

    /* values: put by a go, a js and one of our nodes; got by everyone */
    const char *keys[3] = {"/t/from-go", "/t/from-js", "/t/from-c"}, *vals[3] = {"v-go", "v-js", "v-c"};
    if (ne) {
        snprintf(cmd, sizeof cmd, "put %s %s", keys[0], vals[0]);
        CHECK(ext_cmd(&ex[0], cmd, 40000));
    }
    if (first_js < ne) {
        snprintf(cmd, sizeof cmd, "put %s %s", keys[1], vals[1]);
        CHECK(ext_cmd(&ex[first_js], cmd, 40000));
    }
    CHECK(lp2p_kad_put_value(us[1].k, (const uint8_t *)keys[2], strlen(keys[2]), (const uint8_t *)vals[2], 3,
                             lp2p_deadline_in(40000)) >= 3);
    int gets = 0, got = 0;
    for (int kx = 0; kx < 3; kx++) {
        if ((kx == 0 && !ne) || (kx == 1 && first_js >= ne)) continue;
        for (int i = 0; i < ne; i++) {
            snprintf(cmd, sizeof cmd, "get %s", keys[kx]);
            char want[64];
            snprintf(want, sizeof want, "\"value\":\"%s\"", vals[kx]);
            gets++;
            got += ext_cmd(&ex[i], cmd, 40000) && strstr(line, want) != NULL;
        }
        for (int i = 0; i < N_OURS; i++) {
            uint8_t buf[64];
            ptrdiff_t n = lp2p_kad_get_value(us[i].k, (const uint8_t *)keys[kx], strlen(keys[kx]), NULL, NULL, buf,
                                             sizeof buf, lp2p_deadline_in(40000));
            gets++;
            got += n == (ptrdiff_t)strlen(vals[kx]) && memcmp(buf, vals[kx], (size_t)n) == 0;
        }
    }
    fprintf(stderr, "    values: %d/%d gets returned the value put by go/js/us\n", got, gets);
    CHECK_EQ(got, gets);

    /* providers: a provide by each kind is found by everyone */
    char cids[3][128];
    uint8_t mhs[3][34];
    const char *provider_ids[3] = {ne ? ex[0].id : "", first_js < ne ? ex[first_js].id : "", us[2].id};
    for (int kx = 0; kx < 3; kx++) make_cid(kx == 0 ? "go content" : kx == 1 ? "js content" : "c content", cids[kx], 128, mhs[kx]);
    if (ne) {
        snprintf(cmd, sizeof cmd, "provide %s", cids[0]);
        CHECK(ext_cmd(&ex[0], cmd, 40000));
    }
    if (first_js < ne) {
        snprintf(cmd, sizeof cmd, "provide %s", cids[1]);
        CHECK(ext_cmd(&ex[first_js], cmd, 40000));
    }
    CHECK(lp2p_kad_provide(us[2].k, mhs[2], 34, lp2p_deadline_in(40000)) >= 3);
    int finds = 0, found = 0;
    for (int kx = 0; kx < 3; kx++) {
        if (!provider_ids[kx][0]) continue;
        for (int i = 0; i < ne; i++) {
            snprintf(cmd, sizeof cmd, "findprovs %s 1", cids[kx]);
            finds++;
            found += ext_cmd(&ex[i], cmd, 40000) && strstr(line, provider_ids[kx]) != NULL;
        }
        for (int i = 0; i < N_OURS; i++) {
            lp2p_peer_id p[4], want;
            lp2p_peer_id_parse(provider_ids[kx], &want);
            int n = lp2p_kad_find_providers(us[i].k, mhs[kx], 34, 1, NULL, NULL, p, 4, lp2p_deadline_in(40000));
            finds++;
            found += n >= 1 && lp2p_peer_id_eq(&p[0], &want);
        }
    }
    fprintf(stderr, "    providers: %d/%d lookups found the provider (go/js/us)\n", found, finds);
    CHECK_EQ(found, finds);

    /* find-peer across implementations */
    for (int i = 0; i < ne; i++) {
        snprintf(cmd, sizeof cmd, "findpeer %s", us[3].id);
        CHECK(ext_cmd(&ex[i], cmd, 40000) && strstr(line, "/ip4/127.0.0.1/tcp/") != NULL);
    }
    for (int i = 0; i < ne; i++) {
        lp2p_host_disconnect(us[1].h, &ex[i].pid);
        CHECK_EQ(lp2p_kad_find_peer(us[1].k, &ex[i].pid, lp2p_deadline_in(40000)), LP2P_OK);
        lp2p_peer_info info;
        CHECK(lp2p_host_peer_info(us[1].h, &ex[i].pid, &info) == LP2P_OK && info.n_addrs >= 1);
    }
    /* closest peers: everyone names the true closest server (all IDs are known here) */
    const char *ck = "closest-key";
    uint8_t target[32];
    lp2p__kad_hash((const uint8_t *)ck, strlen(ck), target);
    lp2p_peer_id all[N_GO + N_JS + N_OURS];
    int na = 0;
    for (int i = 0; i < ne; i++) all[na++] = ex[i].pid;
    for (int i = 0; i < N_OURS; i++) all[na++] = us[i].pid;
    int best = 0, second = 1;
    for (int i = 0; i < na; i++) {
        uint8_t hi[32], hb[32], hs[32];
        lp2p__kad_hash(all[i].bytes, all[i].len, hi);
        lp2p__kad_hash(all[best].bytes, all[best].len, hb);
        lp2p__kad_hash(all[second].bytes, all[second].len, hs);
        if (i != best && lp2p__kad_cmp(target, hi, hb) < 0) second = best, best = i;
        else if (i != best && i != second && lp2p__kad_cmp(target, hi, hs) < 0) second = i;
    }
    char best_text[LP2P_PEER_ID_STRLEN], second_text[LP2P_PEER_ID_STRLEN];
    lp2p_peer_id_str(&all[best], best_text, sizeof best_text);
    lp2p_peer_id_str(&all[second], second_text, sizeof second_text);
    int agree = 0, asked = 0;
    for (int i = 0; i < ne; i++) {
        snprintf(cmd, sizeof cmd, "closest %s", ck);
        asked++;
        agree += ext_cmd(&ex[i], cmd, 40000) && strstr(line, i == best ? second_text : best_text) != NULL;
    }
    for (int i = 0; i < N_OURS; i++) {
        lp2p_peer_id out[20];
        int n = lp2p_kad_get_closest_peers(us[i].k, (const uint8_t *)ck, strlen(ck), NULL, NULL, out, 20,
                                           lp2p_deadline_in(40000));
        asked++;
        agree += n > 0 && lp2p_peer_id_eq(&out[0], &all[ne + i == best ? second : best]);
    }
    CHECK_EQ(agree, asked);

    /* clients: one of each kind; they use the network but enter nobody's table */
    ext gc, jc;
    int gc_ok = 0, jc_ok = 0;
    memset(&gc, 0, sizeof gc), memset(&jc, 0, sizeof jc);
    CHECK(ours_start(&us[N_OURS], PROTO, LP2P_KAD_CLIENT));
    CHECK(lp2p_kad_bootstrap(us[N_OURS].k, boot, 3, lp2p_deadline_in(40000)) >= 3);
    for (int kx = 0; kx < 3; kx++) {
        if (!provider_ids[kx][0]) continue;
        uint8_t buf[64];
        CHECK_EQ(lp2p_kad_get_value(us[N_OURS].k, (const uint8_t *)keys[kx], strlen(keys[kx]), NULL, NULL, buf,
                                    sizeof buf, lp2p_deadline_in(40000)),
                 (ptrdiff_t)strlen(vals[kx]));
    }
    if (have[0] && (gc_ok = ext_start(&gc, 0, "client", PREFIX))) {
        snprintf(cmd, sizeof cmd, "bootstrap %s", our0);
        CHECK(ext_cmd(&gc, cmd, 40000));
        CHECK(ext_cmd(&gc, "get /t/from-c", 40000) && strstr(line, "\"value\":\"v-c\""));
        snprintf(cmd, sizeof cmd, "findprovs %s 1", cids[2]);
        CHECK(ext_cmd(&gc, cmd, 40000) && strstr(line, us[2].id));
    }
    if (have[1] && (jc_ok = ext_start(&jc, 1, "client", PREFIX))) {
        snprintf(cmd, sizeof cmd, "bootstrap %s", our0);
        CHECK(ext_cmd(&jc, cmd, 40000));
        CHECK(ext_cmd(&jc, "get /t/from-c", 40000) && strstr(line, "\"value\":\"v-c\""));
        snprintf(cmd, sizeof cmd, "findprovs %s 1", cids[2]);
        CHECK(ext_cmd(&jc, cmd, 40000) && strstr(line, us[2].id));
    }
    kad_pump(pumper, 500); /* let identify pushes and table updates settle */
    int listed = 0;
    for (int i = 0; i < ne; i++)
        if (ext_cmd(&ex[i], "rt", 10000)) listed += strstr(line, us[N_OURS].id) != NULL;
    for (int i = 0; i < N_OURS; i++) {
        listed += in_our_rt(&us[i], &us[N_OURS].pid);
        if (gc_ok) listed += in_our_rt(&us[i], &gc.pid);
        if (jc_ok) listed += in_our_rt(&us[i], &jc.pid);
    }
    CHECK_EQ(listed, 0);
    /* our client switches to server: the servers it is connected to take it in */
    CHECK_EQ(lp2p_kad_set_mode(us[N_OURS].k, LP2P_KAD_SERVER), LP2P_OK);
    int taken = 0;
    for (int r = 0; r < 100 && !taken; r++) {
        kad_pump(pumper, 50);
        taken = in_our_rt(&us[0], &us[N_OURS].pid);
    }
    CHECK(taken);
    fprintf(stderr, "    mixed test: %d ms\n", (int)(lp2p_now() - t0));
    if (gc_ok) kad_stop(&gc.p);
    if (jc_ok) kad_stop(&jc.p);
    for (int i = 0; i < ne; i++) kad_stop(&ex[i].p);
    for (int i = N_OURS; i >= 0; i--) ours_stop(&us[i]);
}

/* ---- 2. Amino (/ipfs/kad/1.0.0) with go --------------------------------------------------------- */
static void test_amino(void) {
    ext g;
    ours o, helper;
    char cmd[2048], buf_hex[300];
    TEST("Amino DHT: go server, our node in its default (client) mode");
    memset(&g, 0, sizeof g), memset(&o, 0, sizeof o), memset(&helper, 0, sizeof helper);
    CHECK(ours_start(&helper, NULL, LP2P_KAD_SERVER)); /* a second server, so records have two homes */
    CHECK(ours_start(&o, NULL, LP2P_KAD_AUTO));
    CHECK_EQ(lp2p_kad_get_mode(o.k), LP2P_KAD_CLIENT);
    if (!ext_start(&g, 0, "server", "/ipfs")) {
        CHECK(!"go server");
        goto out;
    }
    snprintf(cmd, sizeof cmd, "bootstrap %s", lp2p_host_addr(helper.h, 0));
    CHECK(ext_cmd(&g, cmd, 40000));
    CHECK(lp2p_kad_bootstrap(o.k, (const char *const[]){g.addr}, 1, lp2p_deadline_in(40000)) >= 1);
    /* /pk/<our ID> -> our public key: go validates it (PublicKeyValidator) */
    uint8_t key[80];
    memcpy(key, "/pk/", 4);
    memcpy(key + 4, o.pid.bytes, o.pid.len);
    const uint8_t *pub = NULL;
    size_t pub_len = 0;
    CHECK_EQ(lp2p__peer_id_pubkey(&o.pid, &pub, &pub_len), LP2P_OK);
    CHECK(lp2p_kad_put_value(o.k, key, 4 + o.pid.len, pub, pub_len, lp2p_deadline_in(40000)) >= 1);
    hex(key, 4 + o.pid.len, buf_hex);
    snprintf(cmd, sizeof cmd, "get hex:%s", buf_hex);
    char want[200] = "\"hex\":\"";
    hex(pub, pub_len, want + 7);
    CHECK(ext_cmd(&g, cmd, 40000) && strstr(line, want) != NULL);
    /* a forged /pk/ record (someone else's key) is refused by go and by us */
    uint8_t forged[36];
    memcpy(forged, g.pid.bytes + 2, 36); /* go's public key under our /pk/ key */
    CHECK(lp2p_kad_put_value(o.k, key, 4 + o.pid.len, forged, sizeof forged, lp2p_deadline_in(5000)) == LP2P_ERR_INVALID);
    /* provide from a client; go finds it; we find go's */
    char cid[128], cid2[128];
    uint8_t mh[34], mh2[34];
    make_cid("amino content", cid, sizeof cid, mh);
    make_cid("amino go content", cid2, sizeof cid2, mh2);
    CHECK(lp2p_kad_provide(o.k, mh, 34, lp2p_deadline_in(40000)) >= 1);
    snprintf(cmd, sizeof cmd, "findprovs %s 1", cid);
    CHECK(ext_cmd(&g, cmd, 40000) && strstr(line, o.id) != NULL);
    snprintf(cmd, sizeof cmd, "provide %s", cid2);
    CHECK(ext_cmd(&g, cmd, 40000));
    lp2p_peer_id p[2];
    CHECK(lp2p_kad_find_providers(o.k, mh2, 34, 1, NULL, NULL, p, 2, lp2p_deadline_in(40000)) == 1 &&
          lp2p_peer_id_eq(&p[0], &g.pid));
    /* the client is in go's table? It must not be (spec: clients neither advertise nor accept) */
    CHECK(ext_cmd(&g, "rt", 10000) && strstr(line, o.id) == NULL && strstr(line, helper.id) != NULL);
    kad_stop(&g.p);
out:
    ours_stop(&o);
    ours_stop(&helper);
}

int main(int argc, char **argv) {
    const char *cache = getenv("LP2P_CACHE");
    char def[512];
    int ci = getenv("CI") && strcmp(getenv("CI"), "true") == 0, want[2] = {argc == 1, argc == 1};
    signal(SIGPIPE, SIG_IGN);
    mkdir("build", 0755), mkdir("build/interop", 0755), mkdir("build/interop/logs", 0755);
    if (!cache) snprintf(def, sizeof def, "%s/.cache/libp2p.h", getenv("HOME") ? getenv("HOME") : "."), cache = def;
    for (int i = 1; i < argc; i++)
        for (int k = 0; k < 2; k++) want[k] |= strcmp(argv[i], impl_name[k]) == 0;
    for (int k = 0; k < 2; k++) {
        if (!want[k]) continue;
        snprintf(bin[k], sizeof bin[k], "%s/bin/peer-%s", cache, impl_name[k]);
        have[k] = access(bin[k], X_OK) == 0;
        if (!have[k]) {
            fprintf(stderr, "kad interop: SKIPPED %s: %s not built (run: scripts/install-peers.sh %s)\n", impl_name[k],
                    bin[k], impl_name[k]);
            if (ci) CHECK(!"interop peer missing under CI=true");
        }
    }
    if (have[0] || have[1]) test_mixed();
    if (have[0]) test_amino();
    TEST_END();
}
