/* cli.h - shared parts of build/bin/lp2p, the libp2p.h command-line tool: common options,
 * JSON-lines output, host setup. Each subcommand group lives in its own file (dht.c, ...) and
 * is listed in the table in lp2p.c. Only the public API of libp2p.h is used.
 * Output: JSON lines on stdout ("event" first), logs on stderr. Exit status: 0 success,
 * 1 failure (after an "error" event), 2 usage, 3 timeout. */
#ifndef LP2P_CLI_H
#define LP2P_CLI_H

#include "libp2p.h"

#include <stdio.h>

#define CLI_MAX_REPEAT 16
typedef struct cli_opts {
    const char *listen[CLI_MAX_REPEAT];
    int n_listen;
    const char *bootstrap[CLI_MAX_REPEAT];
    int n_bootstrap;
    const char *namespaces[CLI_MAX_REPEAT];
    int n_namespaces;
    uint8_t seed[32];
    bool has_seed;
    double timeout_s;      /* hard exit; default 60 */
    const char *kad_protocol;
    const char *kad_mode;  /* "client", "server" or NULL (the subcommand's default) */
    int count;             /* --count (ping) */
    bool verbose;
    const char *pos[16];   /* positional arguments after the subcommand */
    int n_pos;
} cli_opts;

/* The absolute deadline of the whole run (lp2p_now() ms). */
int64_t cli_deadline(void);
/* A host with the common options applied (listen addresses, seed, log level). Exits on failure. */
lp2p_host *cli_host(const cli_opts *o, bool listen);
/* {"event":"ready","peerId":…,"listenAddrs":[…]} */
void cli_print_ready(lp2p_host *h);
/* JSON helpers: a string with quotes and escapes; a peer's addresses as a JSON array. */
void cli_json_str(FILE *f, const char *s, size_t n);
void cli_json_addrs(FILE *f, lp2p_host *h, const lp2p_peer_id *peer);
/* Print {"event":"error","message":…} and exit 1. */
void cli_fail(const char *fmt, ...);
void cli_usage(void);

int cli_dht(const cli_opts *o); /* dht.c */

#endif
