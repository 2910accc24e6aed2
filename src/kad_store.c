/* kad_store.c - L7: the DHT's local stores: provider records, value records, and the record
 * validators per namespace.
 *
 * Spec: libp2p/specs kad-dht/README.md "Content provider advertisement and discovery" and
 * "Value storage and retrieval" (validator = Validate + Select); ipfs/specs
 * src/routing/kad-dht.md (providers 48 h; only /pk/ and /ipns/ on Amino, all else rejected).
 * Both stores are hash tables with a cap on entries (LP2P_ERR_LIMIT when full, logged by the
 * caller); expired entries are dropped by lp2p__store_expire and skipped on reads.
 * Depends on: kad.h. */
#include "kad.h"

#include <stdio.h>
#include <time.h>

static uint32_t lp2p__store_hash(const uint8_t *p, size_t n) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
    return h % LP2P__KAD_STORE_BUCKETS;
}

/* ---- providers ---------------------------------------------------------------------------- */
static lp2p__kad_pkey *lp2p__store_pkey(lp2p__kad_store *st, const uint8_t *key, size_t len, bool create) {
    lp2p__kad_pkey **head = &st->prov[lp2p__store_hash(key, len)];
    for (lp2p__kad_pkey *k = *head; k; k = k->next)
        if (k->key_len == len && memcmp(k->key, key, len) == 0) return k;
    if (!create || len > LP2P__KAD_PROVIDER_KEY_MAX) return NULL;
    lp2p__kad_pkey *k = (lp2p__kad_pkey *)lp2p__zalloc(st->ctx, sizeof *k);
    if (!k) return NULL;
    memcpy(k->key, key, len);
    k->key_len = (uint8_t)len;
    k->next = *head;
    *head = k;
    return k;
}

LP2P__PRIV int lp2p__store_add_provider(lp2p__kad_store *st, const uint8_t *key, size_t len, const lp2p_peer_id *id,
                                        int64_t expires) {
    if (len == 0 || len > LP2P__KAD_PROVIDER_KEY_MAX) return LP2P_ERR_INVALID;
    lp2p__kad_pkey *k = lp2p__store_pkey(st, key, len, false);
    for (int i = 0; k && i < k->n; i++)
        if (lp2p_peer_id_eq(&k->p[i].id, id)) {
            k->p[i].expires = expires;
            return LP2P_OK;
        }
    if (st->n_prov >= st->max_prov) return LP2P_ERR_LIMIT;
    if (!k && !(k = lp2p__store_pkey(st, key, len, true))) return LP2P_ERR_NOMEM;
    if (k->n == st->max_per_key) { /* full: replace the one that expires first */
        int old = 0;
        for (int i = 1; i < k->n; i++)
            if (k->p[i].expires < k->p[old].expires) old = i;
        k->p[old].id = *id, k->p[old].expires = expires;
        return LP2P_OK;
    }
    if (k->n == k->cap) {
        int cap = k->cap ? LP2P__MIN(k->cap * 2, st->max_per_key) : 4;
        lp2p__kad_prov *p = (lp2p__kad_prov *)lp2p__realloc(st->ctx, k->p, sizeof *p * (size_t)k->cap, sizeof *p * (size_t)cap);
        if (!p) return LP2P_ERR_NOMEM;
        k->p = p, k->cap = cap;
    }
    k->p[k->n].id = *id, k->p[k->n].expires = expires;
    k->n++;
    st->n_prov++;
    return LP2P_OK;
}

LP2P__PRIV int lp2p__store_get_providers(lp2p__kad_store *st, const uint8_t *key, size_t len, int64_t now,
                                         lp2p_peer_id *out, int max) {
    lp2p__kad_pkey *k = lp2p__store_pkey(st, key, len, false);
    int n = 0;
    for (int i = 0; k && i < k->n && n < max; i++)
        if (k->p[i].expires > now) out[n++] = k->p[i].id;
    return n;
}

/* ---- value records ------------------------------------------------------------------------------ */
static lp2p__kad_rec **lp2p__store_rec_slot(lp2p__kad_store *st, const uint8_t *key, size_t len) {
    lp2p__kad_rec **pp = &st->rec[lp2p__store_hash(key, len)];
    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->key_len == len && memcmp((*pp)->key, key, len) == 0) break;
    return pp;
}

static void lp2p__store_rec_free(lp2p__kad_store *st, lp2p__kad_rec *r) {
    lp2p__free(st->ctx, r->key, r->key_len);
    lp2p__free(st->ctx, r->value, r->value_len);
    lp2p__free(st->ctx, r, sizeof *r);
}

LP2P__PRIV lp2p__kad_rec *lp2p__store_get_record(lp2p__kad_store *st, const uint8_t *key, size_t len, int64_t now) {
    lp2p__kad_rec *r = *lp2p__store_rec_slot(st, key, len);
    return r && r->expires > now ? r : NULL;
}

/* RFC 3339 with nanoseconds in UTC, as go's u.FormatRFC3339. */
static void lp2p__rfc3339_now(char out[40]) {
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char tmp[100];
    snprintf(tmp, sizeof tmp, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, (long)ts.tv_nsec);
    snprintf(out, 40, "%.39s", tmp);
}

LP2P__PRIV int lp2p__store_put_record(lp2p__kad_store *st, const uint8_t *key, size_t key_len, const uint8_t *value,
                                      size_t value_len, int64_t expires) {
    lp2p__kad_rec **pp = lp2p__store_rec_slot(st, key, key_len), *r = *pp;
    uint8_t *v = (uint8_t *)lp2p__alloc(st->ctx, value_len);
    if (!v) return LP2P_ERR_NOMEM;
    if (value_len) memcpy(v, value, value_len);
    if (!r) {
        if (st->n_rec >= st->max_rec) {
            lp2p__free(st->ctx, v, value_len);
            return LP2P_ERR_LIMIT;
        }
        r = (lp2p__kad_rec *)lp2p__zalloc(st->ctx, sizeof *r);
        uint8_t *k = (uint8_t *)lp2p__alloc(st->ctx, key_len);
        if (!r || !k) {
            lp2p__free(st->ctx, r, sizeof *r), lp2p__free(st->ctx, k, key_len), lp2p__free(st->ctx, v, value_len);
            return LP2P_ERR_NOMEM;
        }
        memcpy(k, key, key_len);
        r->key = k, r->key_len = key_len;
        *pp = r;
        st->n_rec++;
    } else {
        lp2p__free(st->ctx, r->value, r->value_len);
    }
    r->value = v, r->value_len = value_len;
    r->expires = expires;
    lp2p__rfc3339_now(r->time);
    return LP2P_OK;
}

LP2P__PRIV void lp2p__store_expire(lp2p__kad_store *st, int64_t now) {
    for (int b = 0; b < LP2P__KAD_STORE_BUCKETS; b++) {
        for (lp2p__kad_pkey **pp = &st->prov[b]; *pp;) {
            lp2p__kad_pkey *k = *pp;
            for (int i = 0; i < k->n;)
                if (k->p[i].expires <= now) k->p[i] = k->p[--k->n], st->n_prov--;
                else i++;
            if (k->n == 0) {
                *pp = k->next;
                lp2p__free(st->ctx, k->p, sizeof *k->p * (size_t)k->cap);
                lp2p__free(st->ctx, k, sizeof *k);
            } else {
                pp = &k->next;
            }
        }
        for (lp2p__kad_rec **pp = &st->rec[b]; *pp;) {
            lp2p__kad_rec *r = *pp;
            if (r->expires <= now) {
                *pp = r->next;
                lp2p__store_rec_free(st, r);
                st->n_rec--;
            } else {
                pp = &r->next;
            }
        }
    }
}

LP2P__PRIV void lp2p__store_free(lp2p__kad_store *st) {
    lp2p__store_expire(st, INT64_MAX);
    while (st->ns) {
        lp2p__kad_ns *n = st->ns;
        st->ns = n->next;
        lp2p__strfree(st->ctx, n->ns);
        lp2p__free(st->ctx, n, sizeof *n);
    }
}

/* ---- validators ----------------------------------------------------------------------------------- */
/* "/ns/rest" -> ns (go's record.SplitKey: a leading '/', then the namespace up to the next '/'). */
static bool lp2p__key_ns(const uint8_t *key, size_t len, const uint8_t **ns, size_t *ns_len) {
    if (len < 3 || key[0] != '/') return false;
    const uint8_t *e = (const uint8_t *)memchr(key + 1, '/', len - 1);
    if (!e || e == key + 1 || e == key + len - 1) return false;
    *ns = key + 1, *ns_len = (size_t)(e - key - 1);
    return true;
}

static lp2p__kad_ns *lp2p__store_find_ns(lp2p__kad_store *st, const uint8_t *key, size_t len) {
    const uint8_t *ns;
    size_t n;
    if (!lp2p__key_ns(key, len, &ns, &n)) return NULL;
    for (lp2p__kad_ns *x = st->ns; x; x = x->next)
        if (strlen(x->ns) == n && memcmp(x->ns, ns, n) == 0) return x;
    return NULL;
}

LP2P__PRIV int lp2p__store_set_validator(lp2p__kad_store *st, const char *ns, const lp2p_kad_validator *v) {
    if (!ns || !ns[0] || strchr(ns, '/') || strlen(ns) > 64 || !v) return LP2P_ERR_INVALID;
    for (lp2p__kad_ns *x = st->ns; x; x = x->next)
        if (strcmp(x->ns, ns) == 0) {
            x->v = *v;
            return LP2P_OK;
        }
    lp2p__kad_ns *x = (lp2p__kad_ns *)lp2p__zalloc(st->ctx, sizeof *x);
    if (!x || !(x->ns = lp2p__strdup(st->ctx, ns))) {
        lp2p__free(st->ctx, x, sizeof *x);
        return LP2P_ERR_NOMEM;
    }
    x->v = *v;
    x->next = st->ns;
    st->ns = x;
    return LP2P_OK;
}

LP2P__PRIV int lp2p__store_validate(lp2p__kad_store *st, const uint8_t *key, size_t key_len, const uint8_t *value,
                                    size_t value_len) {
    lp2p__kad_ns *x = lp2p__store_find_ns(st, key, key_len);
    if (!x) return LP2P_ERR_INVALID;
    if (!x->v.validate) return LP2P_OK;
    return x->v.validate(x->v.user, key, key_len, value, value_len) == LP2P_OK ? LP2P_OK : LP2P_ERR_INVALID;
}

LP2P__PRIV int lp2p__store_select(lp2p__kad_store *st, const uint8_t *key, size_t key_len, const uint8_t *a,
                                  size_t a_len, const uint8_t *b, size_t b_len) {
    lp2p__kad_ns *x = lp2p__store_find_ns(st, key, key_len);
    if (!x || !x->v.select) return 0;
    const uint8_t *vals[2] = {a, b};
    size_t lens[2] = {a_len, b_len};
    return x->v.select(x->v.user, key, key_len, vals, lens, 2) == 1 ? 1 : 0;
}

/* /pk/<binary peer ID> -> a serialized PublicKey whose peer ID is that one (go's
 * record.PublicKeyValidator). */
LP2P__PRIV int lp2p__kad_pk_validate(void *user, const uint8_t *key, size_t key_len, const uint8_t *value,
                                     size_t value_len) {
    lp2p_peer_id want, got;
    (void)user;
    if (key_len < 5 || memcmp(key, "/pk/", 4) != 0) return LP2P_ERR_INVALID;
    if (lp2p__peer_id_from_bytes(key + 4, key_len - 4, &want) != LP2P_OK) return LP2P_ERR_INVALID;
    if (value_len > LP2P__PUBKEY_MAX || lp2p__peer_id_from_pubkey(value, value_len, &got) != LP2P_OK)
        return LP2P_ERR_INVALID;
    return lp2p_peer_id_eq(&want, &got) ? LP2P_OK : LP2P_ERR_INVALID;
}
