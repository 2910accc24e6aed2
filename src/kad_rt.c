/* kad_rt.c - L7: the Kademlia keyspace and routing table.
 *
 * Spec: libp2p/specs kad-dht/README.md "Kademlia routing table": keys live in SHA-256 space,
 * distance is XOR, a peer's Kademlia ID is SHA-256 of its binary peer ID; one bucket per
 * common prefix length (cpl) with our ID, k entries each. The caller (kad.c) admits only
 * servers and checks the least recently seen peer before evicting it (entries are kept in
 * least-recently-seen order, e[0] first). IP diversity (ipfs/specs kad-dht: at most 3 peers
 * per IP group in the table and 2 per bucket; a group is a /16 of IPv4 or, lacking an ASN
 * database, a /32 of IPv6); loopback and private addresses are exempt, as in go's filter.
 * Depends on: kad.h. */
#include "kad.h"

LP2P__PRIV void lp2p__kad_hash(const uint8_t *key, size_t len, uint8_t out[32]) { lp2p__sha256_once(key, len, out); }

LP2P__PRIV int lp2p__kad_cpl(const uint8_t a[32], const uint8_t b[32]) {
    for (int i = 0; i < 32; i++) {
        uint8_t x = a[i] ^ b[i];
        if (x) {
            int n = i * 8;
            while (!(x & 0x80)) x <<= 1, n++;
            return n;
        }
    }
    return 256;
}

LP2P__PRIV int lp2p__kad_cmp(const uint8_t target[32], const uint8_t a[32], const uint8_t b[32]) {
    for (int i = 0; i < 32; i++) {
        uint8_t da = a[i] ^ target[i], db = b[i] ^ target[i];
        if (da != db) return da < db ? -1 : 1;
    }
    return 0;
}

static bool lp2p__ip4_private(const uint8_t *v) {
    return v[0] == 10 || v[0] == 127 || v[0] == 0 || (v[0] == 172 && (v[1] & 0xf0) == 16) ||
           (v[0] == 192 && v[1] == 168) || (v[0] == 169 && v[1] == 254) || (v[0] == 100 && (v[1] & 0xc0) == 64);
}

LP2P__PRIV bool lp2p__kad_ip_group(const lp2p__ma *ma, uint8_t group[5]) {
    size_t off = 0, vn;
    uint32_t code;
    const uint8_t *v;
    memset(group, 0, 5);
    if (!ma || !lp2p__ma_next(ma, &off, &code, &v, &vn)) return false;
    if (code == LP2P__MA_IP4 && vn == 4) {
        if (lp2p__ip4_private(v)) return false;
        group[0] = 4, group[1] = v[0], group[2] = v[1];
        return true;
    }
    if (code == LP2P__MA_IP6 && vn == 16) {
        static const uint8_t zero[15] = {0};
        if ((v[0] & 0xfe) == 0xfc || (v[0] == 0xfe && (v[1] & 0xc0) == 0x80) || memcmp(v, zero, 15) == 0) return false;
        group[0] = 6;
        memcpy(group + 1, v, 4);
        return true;
    }
    return false;
}

LP2P__PRIV void lp2p__rt_init(lp2p__kad_rt *rt, lp2p__ctx *ctx, const lp2p_peer_id *self, int k, int max_group,
                              int max_group_bucket) {
    memset(rt, 0, sizeof *rt);
    rt->ctx = ctx;
    rt->k = k, rt->max_group = max_group, rt->max_group_bucket = max_group_bucket;
    lp2p__kad_hash(self->bytes, self->len, rt->self);
}

LP2P__PRIV void lp2p__rt_free(lp2p__kad_rt *rt) {
    for (int i = 0; i < 256; i++) lp2p__free(rt->ctx, rt->b[i].e, sizeof(lp2p__kad_entry) * (size_t)rt->k);
    memset(rt->b, 0, sizeof rt->b);
    rt->size = 0;
}

LP2P__PRIV int lp2p__rt_bucket_of(lp2p__kad_rt *rt, const uint8_t hash[32]) {
    int cpl = lp2p__kad_cpl(rt->self, hash);
    return cpl > 255 ? 255 : cpl;
}

static int lp2p__rt_index(lp2p__kad_bucket *b, const lp2p_peer_id *id) {
    for (int i = 0; i < b->n; i++)
        if (lp2p_peer_id_eq(&b->e[i].id, id)) return i;
    return -1;
}

LP2P__PRIV lp2p__kad_entry *lp2p__rt_find(lp2p__kad_rt *rt, const lp2p_peer_id *id) {
    uint8_t h[32];
    lp2p__kad_hash(id->bytes, id->len, h);
    lp2p__kad_bucket *b = &rt->b[lp2p__rt_bucket_of(rt, h)];
    int i = lp2p__rt_index(b, id);
    return i < 0 ? NULL : &b->e[i];
}

/* Would one more peer of this IP group break the diversity caps? */
static bool lp2p__rt_group_full(lp2p__kad_rt *rt, lp2p__kad_bucket *bucket, const uint8_t group[5]) {
    if (!group || !group[0] || rt->max_group < 0) return false;
    int total = 0, in_bucket = 0;
    for (int i = 0; i < 256; i++)
        for (int j = 0; j < rt->b[i].n; j++)
            if (memcmp(rt->b[i].e[j].group, group, 5) == 0) total++, in_bucket += &rt->b[i] == bucket;
    return total >= rt->max_group || in_bucket >= rt->max_group_bucket;
}

LP2P__PRIV lp2p__rt_result lp2p__rt_add(lp2p__kad_rt *rt, const lp2p_peer_id *id, const uint8_t group[5], int64_t now,
                                        lp2p_peer_id *evict) {
    uint8_t h[32];
    lp2p__kad_hash(id->bytes, id->len, h);
    int cpl = lp2p__kad_cpl(rt->self, h);
    if (cpl == 256) return LP2P__RT_REJECTED; /* ourselves */
    lp2p__kad_bucket *b = &rt->b[cpl];
    int i = lp2p__rt_index(b, id);
    if (i >= 0) { /* seen again: move to the most-recently-seen end */
        lp2p__kad_entry e = b->e[i];
        memmove(&b->e[i], &b->e[i + 1], sizeof e * (size_t)(b->n - i - 1));
        e.seen = now;
        b->e[b->n - 1] = e;
        return LP2P__RT_UPDATED;
    }
    if (lp2p__rt_group_full(rt, b, group)) return LP2P__RT_REJECTED;
    if (b->n == rt->k) {
        if (evict) *evict = b->e[0].id;
        return LP2P__RT_FULL;
    }
    if (!b->e && !(b->e = (lp2p__kad_entry *)lp2p__zalloc(rt->ctx, sizeof(lp2p__kad_entry) * (size_t)rt->k)))
        return LP2P__RT_NOMEM;
    lp2p__kad_entry *e = &b->e[b->n++];
    memset(e, 0, sizeof *e);
    e->id = *id;
    memcpy(e->hash, h, 32);
    e->added = e->seen = now;
    if (group) memcpy(e->group, group, 5);
    rt->size++;
    return LP2P__RT_ADDED;
}

LP2P__PRIV bool lp2p__rt_remove(lp2p__kad_rt *rt, const lp2p_peer_id *id) {
    uint8_t h[32];
    lp2p__kad_hash(id->bytes, id->len, h);
    lp2p__kad_bucket *b = &rt->b[lp2p__rt_bucket_of(rt, h)];
    int i = lp2p__rt_index(b, id);
    if (i < 0) return false;
    memmove(&b->e[i], &b->e[i + 1], sizeof(lp2p__kad_entry) * (size_t)(b->n - i - 1));
    b->n--;
    rt->size--;
    return true;
}

/* Insertion into a small sorted array keeps this O(size * max): tables hold a few hundred. */
LP2P__PRIV int lp2p__rt_closest(lp2p__kad_rt *rt, const uint8_t target[32], const lp2p_peer_id *exclude,
                                lp2p_peer_id *out, int max) {
    const lp2p__kad_entry *best[LP2P__KAD_MAX_LOOKUP_PEERS];
    int n = 0;
    if (max > (int)LP2P__COUNT(best)) max = (int)LP2P__COUNT(best);
    for (int i = 0; i < 256; i++)
        for (int j = 0; j < rt->b[i].n; j++) {
            const lp2p__kad_entry *e = &rt->b[i].e[j];
            if (exclude && lp2p_peer_id_eq(&e->id, exclude)) continue;
            int pos = n;
            while (pos > 0 && lp2p__kad_cmp(target, e->hash, best[pos - 1]->hash) < 0) pos--;
            if (pos >= max) continue;
            if (n < max) n++;
            memmove(&best[pos + 1], &best[pos], sizeof best[0] * (size_t)(n - 1 - pos));
            best[pos] = e;
        }
    for (int i = 0; i < n; i++) out[i] = best[i]->id;
    return n;
}

LP2P__PRIV size_t lp2p__rt_random_key(lp2p__kad_rt *rt, int cpl, uint8_t *key) {
    uint8_t h[32];
    /* looks like an identity-multihash Ed25519 peer ID, as go's refresh keys do */
    key[0] = 0x00, key[1] = 0x24, key[2] = 0x08, key[3] = 0x01, key[4] = 0x12, key[5] = 0x20;
    lp2p__random(key + 6, 32);
    for (uint32_t tries = 0; tries < (1u << 22); tries++) { /* a counter in the last bytes */
        lp2p__put_be32(key + 34, tries);
        lp2p__kad_hash(key, 38, h);
        if (lp2p__kad_cpl(rt->self, h) == cpl) break;
    }
    return 38;
}
