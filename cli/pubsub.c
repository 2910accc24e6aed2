/* pubsub.c - `lp2p pubsub ...`: gossipsub from the command line.
 *
 *   lp2p pubsub sub <topic> [--hex]
 *       prints the ready line, then one {"event":"message","topic":…,"from":…,"data":…,
 *       "receivedFrom":…,"id":…} per delivered message until --timeout (exit 0). data is UTF-8
 *       text (bytes that are not UTF-8 print as U+FFFD), or hex with --hex; id is hex; from is ""
 *       for unsigned messages.
 *   lp2p pubsub pub <topic> <data> [--count N] [--interval-ms M] [--min-peers K]
 *       prints the ready line, waits until K peers (default 1) are in the topic, publishes N
 *       messages (default 1) M ms apart (default 1000), one {"event":"published",…} each, and
 *       stays up until --timeout so that it keeps forwarding (exit 0). With --count > 1 every
 *       message carries " #i" after the data (so their IDs and contents differ). Without K
 *       topic peers by --timeout it prints an "error" event and exits 3.
 * Common options (cli.h): --listen, --bootstrap (dialed first), --seed, --timeout.
 * Spec: libp2p/specs pubsub/gossipsub/gossipsub-v1.1.md; only the public API is used. */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at p (1..4), or 0 (RFC 3629: no overlongs, surrogates, > U+10FFFF). */
static size_t utf8_len(const uint8_t *p, size_t n) {
    if (p[0] < 0x80) return 1;
    size_t len = p[0] >= 0xc2 && p[0] <= 0xdf ? 2 : p[0] >= 0xe0 && p[0] <= 0xef ? 3 : p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : 0;
    if (!len || len > n) return 0;
    for (size_t i = 1; i < len; i++)
        if ((p[i] & 0xc0) != 0x80) return 0;
    if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] > 0x9f) || (p[0] == 0xf0 && p[1] < 0x90) ||
        (p[0] == 0xf4 && p[1] > 0x8f))
        return 0;
    return len;
}

/* Data as a JSON string; bytes that are not UTF-8 become U+FFFD (as go's encoding/json does),
 * so the line stays valid JSON whatever a peer sends. */
static void print_text(const uint8_t *p, size_t n) {
    putchar('"');
    for (size_t i = 0; i < n;) {
        size_t len = utf8_len(p + i, n - i);
        if (!len) {
            fputs("\\ufffd", stdout);
            i++;
        } else if (len == 1 && (p[i] < 0x20 || p[i] == 0x7f || p[i] == '"' || p[i] == '\\')) {
            if (p[i] == '"' || p[i] == '\\') printf("\\%c", p[i]);
            else printf("\\u%04x", p[i]);
            i++;
        } else {
            fwrite(p + i, 1, len, stdout);
            i += len;
        }
    }
    putchar('"');
}

static void print_data(const uint8_t *p, size_t n, bool hex) {
    if (!hex) {
        print_text(p, n);
        return;
    }
    putchar('"');
    for (size_t i = 0; i < n; i++) printf("%02x", p[i]);
    putchar('"');
}

static void print_message(const lp2p_pubsub_message *m, bool hex) {
    char from[LP2P_PEER_ID_STRLEN] = "", via[LP2P_PEER_ID_STRLEN];
    if (m->from.len) lp2p_peer_id_str(&m->from, from, sizeof from);
    lp2p_peer_id_str(&m->received_from, via, sizeof via);
    printf("{\"event\":\"message\",\"topic\":");
    cli_json_str(stdout, m->topic, strlen(m->topic));
    printf(",\"from\":\"%s\",\"data\":", from);
    print_data(m->data, m->data_len, hex);
    printf(",\"receivedFrom\":\"%s\",\"id\":", via);
    print_data(m->id, m->id_len, true);
    printf("}\n");
    fflush(stdout);
}

static int64_t min_deadline(int64_t a, int64_t b) { return a < 0 ? b : b < 0 ? a : a < b ? a : b; }

static void connect_bootstrap(const cli_opts *o, lp2p_host *h) {
    for (int i = 0; i < o->n_bootstrap; i++) {
        int rc = lp2p_host_connect(h, o->bootstrap[i], cli_deadline());
        if (rc) fprintf(stderr, "lp2p: bootstrap %s: %s\n", o->bootstrap[i], lp2p_strerror(rc));
    }
}

static int pubsub_sub(const cli_opts *o, lp2p_host *h, lp2p_pubsub *ps, lp2p_subscription *sub) {
    lp2p_peer_id me = lp2p_host_id(h);
    lp2p_pubsub_message m;
    (void)ps;
    for (;;) {
        int rc = lp2p_subscription_next(sub, &m, cli_deadline());
        if (rc == LP2P_ERR_TIMEOUT) return 0; /* ran for --timeout: done */
        if (rc) cli_fail("subscription: %s", lp2p_strerror(rc));
        if (!lp2p_peer_id_eq(&m.received_from, &me)) print_message(&m, o->hex);
    }
}

static int pubsub_pub(const cli_opts *o, lp2p_host *h, lp2p_pubsub *ps, const char *topic, const char *data) {
    int want = o->min_peers > 0 ? o->min_peers : 1, count = o->count > 0 ? o->count : 1;
    int interval = o->interval_ms > 0 ? o->interval_ms : 1000;
    while (lp2p_pubsub_topic_peers(ps, topic, NULL, 0) < want)
        if (lp2p_sleep(h, min_deadline(cli_deadline(), lp2p_deadline_in(50))) != LP2P_OK || lp2p_now() >= cli_deadline()) {
            printf("{\"event\":\"error\",\"message\":\"timeout waiting for %d topic peers\"}\n", want);
            fflush(stdout);
            exit(3);
        }
    for (int i = 0; i < count; i++) {
        char buf[4096];
        int n = count > 1 ? snprintf(buf, sizeof buf, "%s #%d", data, i + 1) : snprintf(buf, sizeof buf, "%s", data);
        if (n >= (int)sizeof buf) cli_fail("data too long (%d bytes at most)", (int)sizeof buf - 16);
        int peers = lp2p_pubsub_publish(ps, topic, buf, (size_t)n);
        if (peers < 0) cli_fail("publish: %s", lp2p_strerror(peers));
        printf("{\"event\":\"published\",\"topic\":");
        cli_json_str(stdout, topic, strlen(topic));
        printf(",\"seq\":%d,\"peers\":%d,\"data\":", i + 1, peers);
        cli_json_str(stdout, buf, (size_t)n);
        printf("}\n");
        fflush(stdout);
        if (i + 1 < count) lp2p_sleep(h, min_deadline(cli_deadline(), lp2p_deadline_in(interval)));
    }
    lp2p_sleep(h, cli_deadline()); /* keep forwarding until --timeout */
    return 0;
}

int cli_pubsub(const cli_opts *o) {
    if (o->n_pos < 2) cli_usage();
    const char *verb = o->pos[0], *topic = o->pos[1];
    bool pub = strcmp(verb, "pub") == 0;
    if ((!pub && strcmp(verb, "sub") != 0) || (pub && o->n_pos < 3)) cli_usage();
    lp2p_host *h = cli_host(o, true);
    lp2p_pubsub *ps = NULL;
    lp2p_subscription *sub = NULL;
    int rc = lp2p_pubsub_new(h, NULL, &ps);
    if (!rc) rc = lp2p_pubsub_subscribe(ps, topic, &sub); /* publishers join too: they forward */
    if (rc) cli_fail("pubsub: %s", lp2p_strerror(rc));
    cli_print_ready(h);
    connect_bootstrap(o, h);
    rc = pub ? pubsub_pub(o, h, ps, topic, o->pos[2]) : pubsub_sub(o, h, ps, sub);
    lp2p_host_free(h);
    return rc;
}
