/* lp2p.c - build/bin/lp2p, the libp2p.h command-line tool: option parsing, the subcommand
 * table, and the small subcommands id, ping and identify. Usage: lp2p --help.
 * Build: cc -std=c11 -I. -o build/bin/lp2p cli/lp2p.c cli/dht.c -lsodium -lbearssl -lprotobuf-nanopb -lpthread */
#define LIBP2P_IMPLEMENTATION
#include "cli/cli.h"

#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int64_t deadline_all;

int64_t cli_deadline(void) { return deadline_all; }

void cli_usage(void) {
    fputs("usage: lp2p <command> [args] [options]\n"
          "  id                          print a fresh (or --seed) identity\n"
          "  ping <multiaddr/p2p/ID>     RTTs as JSON lines (--count N, default 5)\n"
          "  identify <multiaddr/p2p/ID> the remote's identify as JSON\n"
          "  dht serve                   run a DHT server (prints the ready line first)\n"
          "  dht put <key> <value>       store a value record (key \"/ns/...\", or hex:<hex>)\n"
          "  dht get <key>               {\"event\":\"value\",...}\n"
          "  dht provide <cid>           announce that we provide a CID\n"
          "  dht find-providers <cid>    one {\"event\":\"provider\",...} per provider\n"
          "  dht find-peer <peer-id>     {\"event\":\"peer\",...}\n"
          "  dht closest <key>           the closest peers, one line each\n"
          "options: --listen <multiaddr> (repeatable; default /ip4/127.0.0.1/tcp/0)\n"
          "         --bootstrap <multiaddr/p2p/ID> (repeatable)   --seed <64 hex>\n"
          "         --timeout <seconds> (hard exit, default 60)    --kad-protocol <id>\n"
          "         --kad-mode client|server   --namespace <prefix> (repeatable: accept value\n"
          "         records under /<prefix>/ with a permissive validator)   --count N   -v\n",
          stderr);
    exit(2);
}

void cli_fail(const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    printf("{\"event\":\"error\",\"message\":");
    cli_json_str(stdout, msg, strlen(msg));
    printf("}\n");
    fflush(stdout);
    fprintf(stderr, "lp2p: %s\n", msg);
    exit(1);
}

void cli_json_str(FILE *f, const char *s, size_t n) {
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20 || c == 0x7f) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

void cli_json_addrs(FILE *f, lp2p_host *h, const lp2p_peer_id *peer) {
    lp2p_peer_info info;
    fputc('[', f);
    if (lp2p_host_peer_info(h, peer, &info) == LP2P_OK)
        for (int i = 0; i < info.n_addrs; i++) {
            if (i) fputc(',', f);
            cli_json_str(f, info.addrs[i], strlen(info.addrs[i]));
        }
    fputc(']', f);
}

lp2p_host *cli_host(const cli_opts *o, bool listen) {
    lp2p_config cfg;
    memset(&cfg, 0, sizeof cfg);
    for (int i = 0; i < o->n_listen && i < LP2P_MAX_LISTEN_ADDRS; i++) cfg.listen_addrs[i] = o->listen[i];
    cfg.no_listen = !listen;
    if (o->has_seed) memcpy(cfg.identity_seed, o->seed, 32), cfg.use_identity_seed = true;
    cfg.log_level = o->verbose ? LP2P_LOG_INFO : LP2P_LOG_ERROR;
    lp2p_host *h = NULL;
    int rc = lp2p_host_new(&cfg, &h);
    if (rc) cli_fail("host: %s", lp2p_strerror(rc));
    return h;
}

void cli_print_ready(lp2p_host *h) {
    char id[LP2P_PEER_ID_STRLEN];
    lp2p_peer_id me = lp2p_host_id(h);
    lp2p_peer_id_str(&me, id, sizeof id);
    printf("{\"event\":\"ready\",\"peerId\":\"%s\",\"listenAddrs\":[", id);
    for (int i = 0; i < lp2p_host_addr_count(h); i++) printf("%s\"%s\"", i ? "," : "", lp2p_host_addr(h, i));
    printf("]}\n");
    fflush(stdout);
}

static void on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "lp2p: timeout\n";
    if (write(2, msg, sizeof msg - 1) < 0) _exit(3);
    _exit(3);
}

/* ---- small subcommands ----------------------------------------------------------------------- */
static int cmd_id(const cli_opts *o) {
    uint8_t seed[32];
    char hex[65], id[LP2P_PEER_ID_STRLEN];
    if (o->has_seed) memcpy(seed, o->seed, 32);
    else if (lp2p_identity_generate(seed) != LP2P_OK) cli_fail("no randomness");
    lp2p_config cfg;
    memset(&cfg, 0, sizeof cfg);
    memcpy(cfg.identity_seed, seed, 32), cfg.use_identity_seed = true, cfg.no_listen = true;
    lp2p_host *h = NULL;
    if (lp2p_host_new(&cfg, &h) != LP2P_OK) cli_fail("host");
    lp2p_peer_id me = lp2p_host_id(h);
    lp2p_peer_id_str(&me, id, sizeof id);
    for (int i = 0; i < 32; i++) sprintf(hex + 2 * i, "%02x", seed[i]);
    printf("{\"event\":\"id\",\"peerId\":\"%s\",\"seed\":\"%s\"}\n", id, hex);
    lp2p_host_free(h);
    return 0;
}

static int cmd_ping(const cli_opts *o) {
    if (o->n_pos < 1) cli_usage();
    lp2p_host *h = cli_host(o, false);
    int n = o->count > 0 ? o->count : 5;
    for (int i = 0; i < n; i++) {
        int rtt_us = lp2p_ping(h, o->pos[0], cli_deadline());
        if (rtt_us < 0) cli_fail("ping %s: %s", o->pos[0], lp2p_strerror(rtt_us));
        printf("{\"event\":\"ping\",\"seq\":%d,\"rttMs\":%.3f}\n", i + 1, rtt_us / 1000.0);
        fflush(stdout);
    }
    lp2p_host_free(h);
    return 0;
}

static int cmd_identify(const cli_opts *o) {
    if (o->n_pos < 1) cli_usage();
    lp2p_host *h = cli_host(o, false);
    int rc = lp2p_host_identify(h, o->pos[0], cli_deadline());
    if (rc) cli_fail("identify %s: %s", o->pos[0], lp2p_strerror(rc));
    const char *p2p = strstr(o->pos[0], "/p2p/");
    lp2p_peer_id peer;
    lp2p_peer_info info;
    if (!p2p || lp2p_peer_id_parse(p2p + 5, &peer) || lp2p_host_peer_info(h, &peer, &info)) cli_fail("no peer info");
    char id[LP2P_PEER_ID_STRLEN];
    lp2p_peer_id_str(&peer, id, sizeof id);
    printf("{\"event\":\"identify\",\"peerId\":\"%s\",\"agentVersion\":", id);
    const char *av = info.agent_version ? info.agent_version : "", *pv = info.protocol_version ? info.protocol_version : "";
    cli_json_str(stdout, av, strlen(av));
    printf(",\"protocolVersion\":");
    cli_json_str(stdout, pv, strlen(pv));
    printf(",\"protocols\":[");
    for (int i = 0; i < info.n_protocols; i++) {
        if (i) putchar(',');
        cli_json_str(stdout, info.protocols[i], strlen(info.protocols[i]));
    }
    printf("],\"listenAddrs\":");
    cli_json_addrs(stdout, h, &peer);
    printf(",\"observedAddr\":");
    const char *obs = info.observed_addr ? info.observed_addr : "";
    cli_json_str(stdout, obs, strlen(obs));
    printf("}\n");
    lp2p_host_free(h);
    return 0;
}

/* ---- options and dispatch ----------------------------------------------------------------------- */
static const struct {
    const char *name;
    int (*fn)(const cli_opts *o);
} commands[] = {
    {"id", cmd_id},
    {"ping", cmd_ping},
    {"identify", cmd_identify},
    {"dht", cli_dht},
};

static int unhex(const char *s, uint8_t *out, size_t n) {
    if (strlen(s) != 2 * n) return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1) return -1;
        out[i] = (uint8_t)v;
    }
    return 0;
}

static void parse(int argc, char **argv, cli_opts *o) {
    memset(o, 0, sizeof *o);
    o->timeout_s = 60;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *eq = strchr(a, '=');
        char name[32];
        if (strcmp(a, "-v") == 0) {
            o->verbose = true;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            if (o->n_pos < 16) o->pos[o->n_pos++] = a;
            continue;
        }
        snprintf(name, sizeof name, "%.*s", eq ? (int)(eq - a - 2) : (int)strlen(a + 2), a + 2);
        if (strcmp(name, "help") == 0) cli_usage();
        const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!v) cli_usage();
        if (strcmp(name, "listen") == 0 && o->n_listen < CLI_MAX_REPEAT) o->listen[o->n_listen++] = v;
        else if (strcmp(name, "bootstrap") == 0 && o->n_bootstrap < CLI_MAX_REPEAT) o->bootstrap[o->n_bootstrap++] = v;
        else if (strcmp(name, "namespace") == 0 && o->n_namespaces < CLI_MAX_REPEAT) o->namespaces[o->n_namespaces++] = v;
        else if (strcmp(name, "seed") == 0) {
            if (unhex(v, o->seed, 32)) cli_fail("--seed needs 64 hex characters");
            o->has_seed = true;
        } else if (strcmp(name, "timeout") == 0) {
            o->timeout_s = atof(v);
            if (!(o->timeout_s > 0)) cli_usage();
        } else if (strcmp(name, "kad-protocol") == 0) o->kad_protocol = v;
        else if (strcmp(name, "kad-mode") == 0) o->kad_mode = v;
        else if (strcmp(name, "count") == 0) o->count = atoi(v);
        else {
            fprintf(stderr, "lp2p: unknown option --%s\n", name);
            cli_usage();
        }
    }
}

int main(int argc, char **argv) {
    cli_opts o;
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) cli_usage();
    parse(argc, argv, &o);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, on_alarm);
    alarm((unsigned)o.timeout_s + 2); /* the hard exit, should a call overrun its deadline */
    deadline_all = lp2p_deadline_in((int64_t)(o.timeout_s * 1000));
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].fn(&o);
    fprintf(stderr, "lp2p: unknown command '%s'\n", argv[1]);
    cli_usage();
    return 2;
}
