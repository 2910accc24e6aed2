/* dht.c - `lp2p dht ...`: run a Kademlia DHT node or one DHT operation (serve, put, get,
 * provide, find-providers, find-peer, closest). Options: see lp2p --help. The node bootstraps
 * from every --bootstrap address first. serve defaults to server mode, the one-shot commands
 * to client mode (--kad-mode overrides). */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

static int permissive(void *user, const uint8_t *key, size_t key_len, const uint8_t *value, size_t value_len) {
    (void)user, (void)key, (void)key_len, (void)value, (void)value_len;
    return LP2P_OK;
}

/* "hex:<hex>" -> bytes; anything else as text. Returns the length. */
static size_t key_bytes(const char *s, uint8_t *out, size_t cap) {
    size_t n = 0;
    if (strncmp(s, "hex:", 4) == 0) {
        for (s += 4; s[0] && s[1] && n < cap; s += 2) {
            unsigned v;
            if (sscanf(s, "%2x", &v) != 1) cli_fail("bad hex key");
            out[n++] = (uint8_t)v;
        }
        return n;
    }
    n = strlen(s);
    if (n > cap) cli_fail("key too long");
    memcpy(out, s, n);
    return n;
}

static void print_peer(const char *event, lp2p_host *h, const lp2p_peer_id *peer) {
    char id[LP2P_PEER_ID_STRLEN];
    lp2p_peer_id_str(peer, id, sizeof id);
    printf("{\"event\":\"%s\",\"peerId\":\"%s\",\"addrs\":", event, id);
    cli_json_addrs(stdout, h, peer);
    printf("}\n");
    fflush(stdout);
}

typedef struct provider_ctx {
    lp2p_host *h;
} provider_ctx;

static int on_provider(void *user, const lp2p_peer_id *peer) {
    print_peer("provider", ((provider_ctx *)user)->h, peer);
    return 0;
}

static void check(int rc, const char *what) {
    if (rc >= 0) return;
    if (rc == LP2P_ERR_TIMEOUT) {
        fprintf(stderr, "lp2p: %s: timeout\n", what);
        exit(3);
    }
    cli_fail("%s: %s", what, lp2p_strerror(rc));
}

int cli_dht(const cli_opts *o) {
    if (o->n_pos < 1) cli_usage();
    const char *sub = o->pos[0];
    bool serve = strcmp(sub, "serve") == 0;
    lp2p_host *h = cli_host(o, true);
    lp2p_kad_config kc;
    memset(&kc, 0, sizeof kc);
    kc.protocol = o->kad_protocol;
    kc.mode = serve ? LP2P_KAD_SERVER : LP2P_KAD_CLIENT;
    if (o->kad_mode) kc.mode = strcmp(o->kad_mode, "server") == 0 ? LP2P_KAD_SERVER : LP2P_KAD_CLIENT;
    lp2p_kad *kad = NULL;
    check(lp2p_kad_new(h, &kc, &kad), "dht");
    lp2p_kad_validator v = {permissive, NULL, NULL};
    for (int i = 0; i < o->n_namespaces; i++) {
        const char *ns = o->namespaces[i];
        char clean[80];
        snprintf(clean, sizeof clean, "%s", ns[0] == '/' ? ns + 1 : ns); /* "/app/" or "app" */
        if (clean[0] && clean[strlen(clean) - 1] == '/') clean[strlen(clean) - 1] = 0;
        check(lp2p_kad_set_validator(kad, clean, &v), "--namespace");
    }
    if (serve) cli_print_ready(h);
    if (o->n_bootstrap) check(lp2p_kad_bootstrap(kad, o->bootstrap, o->n_bootstrap, cli_deadline()), "bootstrap");

    uint8_t key[256], val[65536];
    int rc = 0;
    if (serve) {
        /* serve until the timeout (a normal end for a server) */
        while (lp2p_now() < cli_deadline()) lp2p_host_poll(h, 100);
    } else if (strcmp(sub, "put") == 0 && o->n_pos >= 3) {
        size_t kl = key_bytes(o->pos[1], key, sizeof key);
        rc = lp2p_kad_put_value(kad, key, kl, (const uint8_t *)o->pos[2], strlen(o->pos[2]), cli_deadline());
        check(rc, "put");
        printf("{\"event\":\"put\",\"key\":");
        cli_json_str(stdout, o->pos[1], strlen(o->pos[1]));
        printf(",\"peers\":%d}\n", rc);
    } else if (strcmp(sub, "get") == 0 && o->n_pos >= 2) {
        size_t kl = key_bytes(o->pos[1], key, sizeof key);
        ptrdiff_t n = lp2p_kad_get_value(kad, key, kl, NULL, NULL, val, sizeof val, cli_deadline());
        check((int)n, "get");
        printf("{\"event\":\"value\",\"key\":");
        cli_json_str(stdout, o->pos[1], strlen(o->pos[1]));
        printf(",\"value\":");
        cli_json_str(stdout, (const char *)val, (size_t)n);
        printf("}\n");
    } else if ((strcmp(sub, "provide") == 0 || strcmp(sub, "find-providers") == 0) && o->n_pos >= 2) {
        ptrdiff_t kl = lp2p_kad_key_from_cid(o->pos[1], key, sizeof key);
        if (kl < 0) cli_fail("'%s' is not a CID", o->pos[1]);
        if (sub[0] == 'p') {
            rc = lp2p_kad_provide(kad, key, (size_t)kl, cli_deadline());
            check(rc, "provide");
            printf("{\"event\":\"provide\",\"cid\":\"%s\",\"peers\":%d}\n", o->pos[1], rc);
        } else {
            provider_ctx pc = {h};
            rc = lp2p_kad_find_providers(kad, key, (size_t)kl, o->count > 0 ? o->count : 20, on_provider, &pc, NULL, 0,
                                         cli_deadline());
            check(rc, "find-providers");
            if (rc == 0) cli_fail("no providers found");
        }
    } else if (strcmp(sub, "find-peer") == 0 && o->n_pos >= 2) {
        lp2p_peer_id peer;
        if (lp2p_peer_id_parse(o->pos[1], &peer) != LP2P_OK) cli_fail("'%s' is not a peer ID", o->pos[1]);
        check(lp2p_kad_find_peer(kad, &peer, cli_deadline()), "find-peer");
        print_peer("peer", h, &peer);
    } else if (strcmp(sub, "closest") == 0 && o->n_pos >= 2) {
        size_t kl = key_bytes(o->pos[1], key, sizeof key);
        lp2p_peer_id out[64];
        rc = lp2p_kad_get_closest_peers(kad, key, kl, NULL, NULL, out, 64, cli_deadline());
        check(rc, "closest");
        for (int i = 0; i < rc; i++) print_peer("closest", h, &out[i]);
    } else {
        cli_usage();
    }
    fflush(stdout);
    lp2p_kad_free(kad);
    lp2p_host_free(h);
    return 0;
}
