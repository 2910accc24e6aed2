/* multiaddr.c - L0: multiaddr text <-> binary, validation, component helpers.
 *
 * Spec: multiformats/multiaddr README.md + protocols.csv; libp2p/specs addressing/README.md.
 * Where the spec is silent we follow go-multiaddr (codec.go, transcoders.go), the most widely
 * deployed reader of our binary addresses:
 *   - text: must begin with '/', trailing slashes are dropped ("/ip4/1.2.3.4/tcp/1/" is ok),
 *     "/ipfs/<id>" is read as /p2p/ and printed as /p2p/;
 *   - unix is a path protocol: it takes the rest of the text, value keeps its leading '/'
 *     ("/unix/tmp/s" = value "/tmp/s"), nothing may follow it in binary either;
 *   - memory is a fixed 8-byte big-endian uint64 (go and rust; protocols.csv says V but no
 *     implementation encodes it that way);
 *   - length-prefixed values must not be empty; dns names, zones and SNI hold no '/';
 *   - certhash text is any multibase of a multihash, printed as base64url ('u') like go.
 * Binary input (lp2p__ma_from_bytes) comes from peers (identify listen/observed addrs), so
 * it is strict: minimal varints, known codes, exact lengths, bounded total size, and every
 * value checked so that the text form always parses back to the same bytes.
 * Depends on: base.h (varints, base58/base32/hex), crypto.h (peer IDs), <arpa/inet.h>. */
#include "multiaddr.h"

#include <arpa/inet.h>

/* value shapes */
enum {
    LP2P__MAK_NONE,   /* no value */
    LP2P__MAK_IP4,    /* 4 bytes */
    LP2P__MAK_IP6,    /* 16 bytes */
    LP2P__MAK_PORT,   /* 2 bytes big-endian */
    LP2P__MAK_CIDR,   /* 1 byte */
    LP2P__MAK_NAME,   /* V: dns names, sni, ip6zone */
    LP2P__MAK_P2P,    /* V: peer ID multihash */
    LP2P__MAK_UNIX,   /* V: path, terminal */
    LP2P__MAK_CERT,   /* V: multihash, text is multibase */
    LP2P__MAK_MEMORY  /* 8 bytes big-endian */
};

typedef struct lp2p__ma_proto {
    uint32_t code;
    int16_t size; /* value bytes; -1 = uvarint length prefix */
    uint8_t kind;
    const char *name;
} lp2p__ma_proto;

static const lp2p__ma_proto lp2p__ma_protos[] = {
    {LP2P__MA_IP4, 4, LP2P__MAK_IP4, "ip4"},
    {LP2P__MA_TCP, 2, LP2P__MAK_PORT, "tcp"},
    {LP2P__MA_UDP, 2, LP2P__MAK_PORT, "udp"},
    {33, 2, LP2P__MAK_PORT, "dccp"},
    {132, 2, LP2P__MAK_PORT, "sctp"},
    {LP2P__MA_IP6, 16, LP2P__MAK_IP6, "ip6"},
    {LP2P__MA_IP6ZONE, -1, LP2P__MAK_NAME, "ip6zone"},
    {43, 1, LP2P__MAK_CIDR, "ipcidr"},
    {LP2P__MA_DNS, -1, LP2P__MAK_NAME, "dns"},
    {LP2P__MA_DNS4, -1, LP2P__MAK_NAME, "dns4"},
    {LP2P__MA_DNS6, -1, LP2P__MAK_NAME, "dns6"},
    {LP2P__MA_DNSADDR, -1, LP2P__MAK_NAME, "dnsaddr"},
    {LP2P__MA_P2P, -1, LP2P__MAK_P2P, "p2p"},
    {LP2P__MA_P2P_CIRCUIT, 0, LP2P__MAK_NONE, "p2p-circuit"},
    {LP2P__MA_WS, 0, LP2P__MAK_NONE, "ws"},
    {LP2P__MA_WSS, 0, LP2P__MAK_NONE, "wss"},
    {LP2P__MA_TLS, 0, LP2P__MAK_NONE, "tls"},
    {LP2P__MA_SNI, -1, LP2P__MAK_NAME, "sni"},
    {454, 0, LP2P__MAK_NONE, "noise"},
    {460, 0, LP2P__MAK_NONE, "quic"},
    {LP2P__MA_QUIC_V1, 0, LP2P__MAK_NONE, "quic-v1"},
    {LP2P__MA_WEBTRANSPORT, 0, LP2P__MAK_NONE, "webtransport"},
    {LP2P__MA_CERTHASH, -1, LP2P__MAK_CERT, "certhash"},
    {280, 0, LP2P__MAK_NONE, "webrtc-direct"},
    {281, 0, LP2P__MAK_NONE, "webrtc"},
    {480, 0, LP2P__MAK_NONE, "http"},
    {443, 0, LP2P__MAK_NONE, "https"},
    {301, 0, LP2P__MAK_NONE, "udt"},
    {302, 0, LP2P__MAK_NONE, "utp"},
    {LP2P__MA_UNIX, -1, LP2P__MAK_UNIX, "unix"},
    {LP2P__MA_MEMORY, 8, LP2P__MAK_MEMORY, "memory"},
};

#define LP2P__MA_NAME_MAX 255 /* dns names (RFC 1035: 253 chars), zones, SNI */

static int lp2p__ma_fail(const char **why, const char *reason) {
    if (why) *why = reason;
    return LP2P_ERR_BADADDR;
}

static const lp2p__ma_proto *lp2p__ma_proto_by_code(uint64_t code) {
    for (size_t i = 0; i < LP2P__COUNT(lp2p__ma_protos); i++)
        if (lp2p__ma_protos[i].code == code) return &lp2p__ma_protos[i];
    return NULL;
}

static const lp2p__ma_proto *lp2p__ma_proto_by_name(const char *s, size_t n) {
    if (n == 4 && memcmp(s, "ipfs", 4) == 0) return lp2p__ma_proto_by_code(LP2P__MA_P2P); /* legacy alias */
    for (size_t i = 0; i < LP2P__COUNT(lp2p__ma_protos); i++) {
        const char *name = lp2p__ma_protos[i].name;
        if (strlen(name) == n && memcmp(name, s, n) == 0) return &lp2p__ma_protos[i];
    }
    return NULL;
}

/* ---- base64 / base64url (multibase 'm','M','u','U'); only certhash needs them ---------- */
static const char lp2p__b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char lp2p__b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Unpadded encode; returns chars written (NUL-terminated) or ERR_INVALID if cap too small. */
static ptrdiff_t lp2p__b64_enc(const char *alpha, const uint8_t *in, size_t n, char *out, size_t cap) {
    size_t need = (n / 3) * 4 + (n % 3 ? n % 3 + 1 : 0);
    if (need + 1 > cap) return LP2P_ERR_INVALID;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n) v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n) v |= in[i + 2];
        size_t chars = n - i >= 3 ? 4 : n - i + 1;
        for (size_t k = 0; k < chars; k++) out[o++] = alpha[(v >> (18 - 6 * k)) & 63];
    }
    out[o] = 0;
    return (ptrdiff_t)o;
}

/* Decode (padding '=' allowed only at the end); returns bytes or ERR_BADADDR. */
static ptrdiff_t lp2p__b64_dec(const char *alpha, const char *in, size_t n, uint8_t *out, size_t cap) {
    while (n > 0 && in[n - 1] == '=') n--;
    if (n % 4 == 1) return LP2P_ERR_BADADDR;
    size_t o = 0, bits = 0;
    uint32_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        const char *c = in[i] ? strchr(alpha, in[i]) : NULL;
        if (!c) return LP2P_ERR_BADADDR;
        acc = (acc << 6) | (uint32_t)(c - alpha);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap) return LP2P_ERR_BADADDR;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    return (ptrdiff_t)o;
}

/* A multihash: uvarint code, uvarint length, exactly that many digest bytes. */
static bool lp2p__ma_multihash_ok(const uint8_t *p, size_t n) {
    uint64_t code, len;
    int a = lp2p__uvarint_get(p, n, &code);
    if (a <= 0) return false;
    int b = lp2p__uvarint_get(p + a, n - (size_t)a, &len);
    if (b <= 0) return false;
    return len == n - (size_t)a - (size_t)b;
}

/* ---- value checks shared by text and binary ------------------------------------------------ */
static bool lp2p__ma_name_ok(const uint8_t *v, size_t n) {
    if (n == 0 || n > LP2P__MA_NAME_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if (v[i] <= 0x20 || v[i] == 0x7f || v[i] == '/') return false; /* printable, no separators */
    return true;
}

static bool lp2p__ma_unix_ok(const uint8_t *v, size_t n) {
    if (n < 2 || v[0] != '/' || v[n - 1] == '/') return false; /* go: path must start, not end, in '/' */
    for (size_t i = 0; i < n; i++)
        if (v[i] < 0x20 || v[i] == 0x7f) return false;
    return true;
}

/* Validate a binary value for proto pr; returns NULL when fine, else the reason. */
static const char *lp2p__ma_value_check(const lp2p__ma_proto *pr, const uint8_t *v, size_t n) {
    lp2p_peer_id id;
    switch (pr->kind) {
    case LP2P__MAK_NAME: return lp2p__ma_name_ok(v, n) ? NULL : "bad name";
    case LP2P__MAK_UNIX: return lp2p__ma_unix_ok(v, n) ? NULL : "bad unix path";
    case LP2P__MAK_P2P: return lp2p__peer_id_from_bytes(v, n, &id) == LP2P_OK ? NULL : "bad peer ID";
    case LP2P__MAK_CERT: return lp2p__ma_multihash_ok(v, n) ? NULL : "bad certhash";
    default: return NULL; /* fixed-size values: every bit pattern is valid */
    }
}

/* ---- one binary component ------------------------------------------------------------------ */
typedef struct lp2p__ma_comp {
    const lp2p__ma_proto *pr;
    const uint8_t *v;
    size_t vlen;
    size_t next; /* offset after the component */
} lp2p__ma_comp;

/* Decode the component at p[off..n) without checking its value. */
static int lp2p__ma_comp_get(const uint8_t *p, size_t n, size_t off, lp2p__ma_comp *c, const char **why) {
    uint64_t code, len;
    int k = lp2p__uvarint_get(p + off, n - off, &code);
    if (k == 0) return lp2p__ma_fail(why, "truncated protocol code");
    if (k < 0) return lp2p__ma_fail(why, "bad protocol code varint");
    off += (size_t)k;
    c->pr = lp2p__ma_proto_by_code(code);
    if (!c->pr) return lp2p__ma_fail(why, "unknown protocol code");
    if (c->pr->size >= 0) {
        len = (uint64_t)c->pr->size;
    } else {
        k = lp2p__uvarint_get(p + off, n - off, &len);
        if (k == 0) return lp2p__ma_fail(why, "truncated value length");
        if (k < 0) return lp2p__ma_fail(why, "bad value length varint");
        off += (size_t)k;
        if (len == 0) return lp2p__ma_fail(why, "empty value");
    }
    if (len > n - off) return lp2p__ma_fail(why, "truncated value");
    c->v = p + off;
    c->vlen = (size_t)len;
    c->next = off + (size_t)len;
    return LP2P_OK;
}

static ptrdiff_t lp2p__ma_str_impl(const lp2p__ma *ma, char *out, size_t cap);

/* Every valid address must print within LP2P__MA_STRLEN (zero-size protocols and ports
 * expand ~6x from binary to text, so 400 bytes alone do not guarantee it). */
static bool lp2p__ma_text_fits(const lp2p__ma *m) {
    char tmp[LP2P__MA_STRLEN];
    return lp2p__ma_str_impl(m, tmp, sizeof tmp) >= 0;
}

LP2P__PRIV int lp2p__ma_from_bytes(const uint8_t *p, size_t n, lp2p__ma *out, const char **why) {
    if (n == 0) return lp2p__ma_fail(why, "empty multiaddr");
    if (n > LP2P__MA_MAX) return lp2p__ma_fail(why, "multiaddr too long");
    size_t off = 0;
    while (off < n) {
        lp2p__ma_comp c;
        int rc = lp2p__ma_comp_get(p, n, off, &c, why);
        if (rc) return rc;
        const char *bad = lp2p__ma_value_check(c.pr, c.v, c.vlen);
        if (bad) return lp2p__ma_fail(why, bad);
        if (c.pr->kind == LP2P__MAK_UNIX && c.next != n) return lp2p__ma_fail(why, "component after unix path");
        off = c.next;
    }
    lp2p__ma m;
    m.len = (uint16_t)n;
    memcpy(m.b, p, n);
    if (!lp2p__ma_text_fits(&m)) return lp2p__ma_fail(why, "multiaddr text too long");
    *out = m;
    return LP2P_OK;
}

LP2P__PRIV int lp2p__ma_next(const lp2p__ma *ma, size_t *off, uint32_t *code, const uint8_t **value, size_t *value_len) {
    lp2p__ma_comp c;
    if (*off >= ma->len || ma->len > LP2P__MA_MAX) return 0;
    if (lp2p__ma_comp_get(ma->b, ma->len, *off, &c, NULL)) return 0; /* malformed: stop, never loop */
    *code = c.pr->code;
    *value = c.v;
    *value_len = c.vlen;
    *off = c.next;
    return 1;
}

/* ---- text -> binary -------------------------------------------------------------------------- */
/* Parse an unsigned decimal of at most max; false on empty, non-digit or overflow. */
static bool lp2p__ma_dec(const char *s, size_t n, uint64_t max, uint64_t *out) {
    uint64_t v = 0;
    if (n == 0) return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (max - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* certhash text: multibase prefix + data, decoded to a multihash. */
static ptrdiff_t lp2p__ma_multibase_dec(const char *s, size_t n, uint8_t *out, size_t cap) {
    if (n < 2) return LP2P_ERR_BADADDR;
    const char *d = s + 1;
    size_t dn = n - 1;
    switch (s[0]) {
    case 'u': case 'U': return lp2p__b64_dec(lp2p__b64_url, d, dn, out, cap);
    case 'm': case 'M': return lp2p__b64_dec(lp2p__b64_std, d, dn, out, cap);
    case 'b': case 'B': return lp2p__base32_dec(d, dn, out, cap);
    case 'z': return lp2p__base58_dec(d, dn, out, cap);
    case 'f': case 'F': return lp2p__hex_dec(d, dn, out, cap);
    default: return LP2P_ERR_BADADDR;
    }
}

/* Encode the text value s[0..n) of proto pr into out (cap bytes); returns bytes or BADADDR. */
static ptrdiff_t lp2p__ma_value_from_text(const lp2p__ma_proto *pr, const char *s, size_t n, uint8_t *out, size_t cap,
                                          const char **why) {
    char tmp[LP2P_PEER_ID_STRLEN];
    uint64_t v;
    switch (pr->kind) {
    case LP2P__MAK_IP4:
    case LP2P__MAK_IP6:
        if (n >= sizeof tmp) return lp2p__ma_fail(why, pr->kind == LP2P__MAK_IP4 ? "bad ip4 address" : "bad ip6 address");
        memcpy(tmp, s, n), tmp[n] = 0;
        if (inet_pton(pr->kind == LP2P__MAK_IP4 ? AF_INET : AF_INET6, tmp, out) != 1)
            return lp2p__ma_fail(why, pr->kind == LP2P__MAK_IP4 ? "bad ip4 address" : "bad ip6 address");
        return pr->size;
    case LP2P__MAK_PORT:
        if (n == 0) return lp2p__ma_fail(why, "bad port");
        for (size_t i = 0; i < n; i++)
            if (s[i] < '0' || s[i] > '9') return lp2p__ma_fail(why, "bad port");
        if (!lp2p__ma_dec(s, n, 65535, &v)) return lp2p__ma_fail(why, "port out of range");
        lp2p__put_be16(out, (uint16_t)v);
        return 2;
    case LP2P__MAK_CIDR:
        if (!lp2p__ma_dec(s, n, 255, &v)) return lp2p__ma_fail(why, "bad ipcidr mask");
        out[0] = (uint8_t)v;
        return 1;
    case LP2P__MAK_MEMORY:
        if (!lp2p__ma_dec(s, n, UINT64_MAX, &v)) return lp2p__ma_fail(why, "bad memory address");
        lp2p__put_be64(out, v);
        return 8;
    case LP2P__MAK_NAME:
    case LP2P__MAK_UNIX:
        if (n > cap) return lp2p__ma_fail(why, "multiaddr too long");
        memcpy(out, s, n);
        return (ptrdiff_t)n; /* checked by lp2p__ma_value_check */
    case LP2P__MAK_P2P: {
        lp2p_peer_id id;
        if (n >= sizeof tmp) return lp2p__ma_fail(why, "bad peer ID");
        memcpy(tmp, s, n), tmp[n] = 0;
        if (lp2p_peer_id_parse(tmp, &id) != LP2P_OK || id.len > cap) return lp2p__ma_fail(why, "bad peer ID");
        memcpy(out, id.bytes, id.len);
        return id.len;
    }
    case LP2P__MAK_CERT: {
        ptrdiff_t k = lp2p__ma_multibase_dec(s, n, out, cap);
        return k > 0 ? k : lp2p__ma_fail(why, "bad certhash");
    }
    default: return lp2p__ma_fail(why, "unexpected value");
    }
}

/* Append code + value for one text component to m. */
static int lp2p__ma_put(lp2p__ma *m, const lp2p__ma_proto *pr, const char *s, size_t n, const char **why) {
    uint8_t val[LP2P__MA_MAX];
    ptrdiff_t vlen = 0;
    if (pr->size != 0) {
        vlen = lp2p__ma_value_from_text(pr, s, n, val, sizeof val, why);
        if (vlen < 0) return (int)vlen;
        const char *bad = lp2p__ma_value_check(pr, val, (size_t)vlen);
        if (bad) return lp2p__ma_fail(why, bad);
    }
    size_t need = lp2p__uvarint_len(pr->code) + (size_t)vlen + (pr->size < 0 ? lp2p__uvarint_len((uint64_t)vlen) : 0);
    if (need > (size_t)(LP2P__MA_MAX - m->len)) return lp2p__ma_fail(why, "multiaddr too long");
    m->len = (uint16_t)(m->len + lp2p__uvarint_put(m->b + m->len, pr->code));
    if (pr->size < 0) m->len = (uint16_t)(m->len + lp2p__uvarint_put(m->b + m->len, (uint64_t)vlen));
    memcpy(m->b + m->len, val, (size_t)vlen);
    m->len = (uint16_t)(m->len + vlen);
    return LP2P_OK;
}

static size_t lp2p__ma_seg_end(const char *t, size_t pos, size_t n) {
    while (pos < n && t[pos] != '/') pos++;
    return pos;
}

LP2P__PRIV int lp2p__ma_parse(const char *text, lp2p__ma *out, const char **why) {
    if (!text) return lp2p__ma_fail(why, "empty multiaddr");
    size_t n = strlen(text);
    while (n > 0 && text[n - 1] == '/') n--; /* go-multiaddr drops trailing slashes */
    if (n == 0) return lp2p__ma_fail(why, "empty multiaddr");
    if (text[0] != '/') return lp2p__ma_fail(why, "multiaddr must begin with '/'");
    lp2p__ma m;
    m.len = 0;
    size_t pos = 1;
    while (pos <= n) {
        size_t end = lp2p__ma_seg_end(text, pos, n);
        const lp2p__ma_proto *pr = lp2p__ma_proto_by_name(text + pos, end - pos);
        if (!pr) return lp2p__ma_fail(why, "unknown protocol");
        pos = end + 1;
        const char *v = NULL;
        size_t vn = 0;
        if (pr->size != 0) {
            if (pos > n) return lp2p__ma_fail(why, "missing protocol value");
            if (pr->kind == LP2P__MAK_UNIX) { /* path: the rest of the text, with its '/' */
                v = text + pos - 1, vn = n - pos + 1, pos = n + 1;
            } else {
                end = lp2p__ma_seg_end(text, pos, n);
                v = text + pos, vn = end - pos, pos = end + 1;
            }
        }
        int rc = lp2p__ma_put(&m, pr, v, vn, why);
        if (rc) return rc;
    }
    if (!lp2p__ma_text_fits(&m)) return lp2p__ma_fail(why, "multiaddr text too long");
    *out = m;
    return LP2P_OK;
}

/* ---- binary -> text ---------------------------------------------------------------------------- */
typedef struct lp2p__ma_out {
    char *p;
    size_t cap, len;
    bool overflow;
} lp2p__ma_out;

static void lp2p__ma_emit(lp2p__ma_out *o, const void *s, size_t n) {
    if (o->overflow || n >= o->cap - o->len) {
        o->overflow = true;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = 0;
}

static void lp2p__ma_emit_u64(lp2p__ma_out *o, uint64_t v) {
    char d[24];
    size_t i = sizeof d;
    do d[--i] = (char)('0' + v % 10), v /= 10;
    while (v);
    lp2p__ma_emit(o, d + i, sizeof d - i);
}

/* Print one validated value. Returns LP2P_OK or ERR_BADADDR. */
static int lp2p__ma_emit_value(lp2p__ma_out *o, const lp2p__ma_proto *pr, const uint8_t *v, size_t n) {
    char tmp[LP2P__MA_STRLEN];
    switch (pr->kind) {
    case LP2P__MAK_IP4:
    case LP2P__MAK_IP6:
        /* glibc inet_ntop prints RFC 5952 form, and ::ffff:a.b.c.d for mapped v4 like go */
        if (!inet_ntop(pr->kind == LP2P__MAK_IP4 ? AF_INET : AF_INET6, v, tmp, sizeof tmp)) return LP2P_ERR_BADADDR;
        lp2p__ma_emit(o, tmp, strlen(tmp));
        return LP2P_OK;
    case LP2P__MAK_PORT: lp2p__ma_emit_u64(o, lp2p__be16(v)); return LP2P_OK;
    case LP2P__MAK_CIDR: lp2p__ma_emit_u64(o, v[0]); return LP2P_OK;
    case LP2P__MAK_MEMORY: lp2p__ma_emit_u64(o, lp2p__be64(v)); return LP2P_OK;
    case LP2P__MAK_NAME: lp2p__ma_emit(o, v, n); return LP2P_OK;
    case LP2P__MAK_UNIX: lp2p__ma_emit(o, v + 1, n - 1); return LP2P_OK; /* the '/' before it is the path's */
    case LP2P__MAK_P2P: {
        lp2p_peer_id id;
        if (lp2p__peer_id_from_bytes(v, n, &id) != LP2P_OK) return LP2P_ERR_BADADDR;
        if (lp2p_peer_id_str(&id, tmp, sizeof tmp) < 0) return LP2P_ERR_BADADDR;
        lp2p__ma_emit(o, tmp, strlen(tmp));
        return LP2P_OK;
    }
    case LP2P__MAK_CERT:
        tmp[0] = 'u';
        if (lp2p__b64_enc(lp2p__b64_url, v, n, tmp + 1, sizeof tmp - 1) < 0) return LP2P_ERR_BADADDR;
        lp2p__ma_emit(o, tmp, strlen(tmp));
        return LP2P_OK;
    default: return LP2P_OK;
    }
}

static ptrdiff_t lp2p__ma_str_impl(const lp2p__ma *ma, char *out, size_t cap) {
    if (!out || cap == 0) return LP2P_ERR_INVALID;
    lp2p__ma_out o = {out, cap, 0, false};
    size_t off = 0;
    out[0] = 0;
    if (ma->len == 0 || ma->len > LP2P__MA_MAX) return LP2P_ERR_BADADDR;
    while (off < ma->len) {
        lp2p__ma_comp c;
        if (lp2p__ma_comp_get(ma->b, ma->len, off, &c, NULL)) return LP2P_ERR_BADADDR;
        if (lp2p__ma_value_check(c.pr, c.v, c.vlen)) return LP2P_ERR_BADADDR;
        lp2p__ma_emit(&o, "/", 1);
        lp2p__ma_emit(&o, c.pr->name, strlen(c.pr->name));
        if (c.pr->size != 0) {
            lp2p__ma_emit(&o, "/", 1);
            if (lp2p__ma_emit_value(&o, c.pr, c.v, c.vlen)) return LP2P_ERR_BADADDR;
        }
        off = c.next;
    }
    if (o.overflow) {
        out[0] = 0;
        return LP2P_ERR_INVALID;
    }
    return (ptrdiff_t)o.len;
}

LP2P__PRIV ptrdiff_t lp2p__ma_str(const lp2p__ma *ma, char *out, size_t cap) { return lp2p__ma_str_impl(ma, out, cap); }

/* ---- helpers for the swarm ------------------------------------------------------------------- */
LP2P__PRIV int lp2p__ma_split_p2p(const lp2p__ma *ma, lp2p__ma *base, lp2p_peer_id *id) {
    size_t off = 0, last = 0;
    uint32_t code = 0;
    const uint8_t *v = NULL;
    size_t vn = 0;
    for (size_t at = 0; lp2p__ma_next(ma, &off, &code, &v, &vn) == 1; at = off) last = at;
    lp2p_peer_id pid;
    if (code != LP2P__MA_P2P || !v || lp2p__peer_id_from_bytes(v, vn, &pid) != LP2P_OK) {
        if (base) *base = *ma;
        return 0;
    }
    if (id) *id = pid;
    if (base) {
        lp2p__ma tmp = *ma; /* base may alias ma */
        tmp.len = (uint16_t)last;
        *base = tmp;
    }
    return 1;
}

LP2P__PRIV int lp2p__ma_append_p2p(lp2p__ma *ma, const lp2p_peer_id *id) {
    size_t need = 2 + lp2p__uvarint_len(id->len) + id->len;
    if (id->len == 0 || id->len > sizeof id->bytes || ma->len > LP2P__MA_MAX || need > (size_t)(LP2P__MA_MAX - ma->len))
        return LP2P_ERR_INVALID;
    lp2p__ma m = *ma;
    size_t n = m.len;
    n += lp2p__uvarint_put(m.b + n, LP2P__MA_P2P);
    n += lp2p__uvarint_put(m.b + n, id->len);
    memcpy(m.b + n, id->bytes, id->len);
    m.len = (uint16_t)(n + id->len);
    if (!lp2p__ma_text_fits(&m)) return LP2P_ERR_INVALID;
    *ma = m;
    return LP2P_OK;
}

LP2P__PRIV bool lp2p__ma_eq(const lp2p__ma *a, const lp2p__ma *b) {
    return a->len == b->len && a->len <= LP2P__MA_MAX && memcmp(a->b, b->b, a->len) == 0;
}

LP2P__PRIV bool lp2p__ma_is_tcp(const lp2p__ma *ma) {
    size_t off = 0, vn;
    uint32_t code;
    const uint8_t *v;
    if (!lp2p__ma_next(ma, &off, &code, &v, &vn)) return false;
    if (code != LP2P__MA_IP4 && code != LP2P__MA_IP6 && code != LP2P__MA_DNS && code != LP2P__MA_DNS4 &&
        code != LP2P__MA_DNS6)
        return false;
    if (!lp2p__ma_next(ma, &off, &code, &v, &vn) || code != LP2P__MA_TCP) return false;
    if (!lp2p__ma_next(ma, &off, &code, &v, &vn)) return off == ma->len;
    return code == LP2P__MA_P2P && off == ma->len;
}

LP2P__PRIV bool lp2p__ma_is_loopback(const lp2p__ma *ma) {
    static const uint8_t zero16[16] = {0}, one16[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    size_t off = 0, vn;
    uint32_t code;
    const uint8_t *v;
    if (!lp2p__ma_next(ma, &off, &code, &v, &vn)) return false;
    if (code == LP2P__MA_IP4) return v[0] == 127 || lp2p__be32(v) == 0;
    if (code == LP2P__MA_IP6) return memcmp(v, one16, 16) == 0 || memcmp(v, zero16, 16) == 0;
    return false;
}
