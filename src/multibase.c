/* multibase.c - L0: base58btc, base32 (RFC 4648, lowercase, no padding) and hex codecs.
 *
 * Spec: multiformats/multibase (prefixes 'z' base58btc, 'b' base32, 'f' base16); base58btc uses
 * the Bitcoin alphabet; base32 is RFC 4648 §6 without '=' padding. These are the text forms of
 * peer IDs (peer-ids/peer-ids.md "String representation") and of /p2p/ in multiaddrs.
 * Conventions for every function here:
 *   - enc writes a NUL-terminated string and returns its length (without the NUL);
 *     LP2P_ERR_INVALID if cap cannot hold it (with the NUL);
 *   - dec returns the number of bytes written; LP2P_ERR_BADADDR for a character outside the
 *     alphabet, an impossible length or an over-long input; LP2P_ERR_INVALID if cap is too small.
 * base58 is quadratic, so both directions are capped at LP2P__BASE58_MAX bytes of binary data
 * (peer IDs are at most 63 bytes; the cap only stops a peer from making us burn CPU).
 * Depends on: base.h. */
#include "base.h"

#define LP2P__BASE58_MAX 256     /* binary bytes */
#define LP2P__BASE58_MAXCHARS 350 /* ceil(256 * log(256) / log(58)) */

static const char lp2p__b58_alphabet[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/* value of a base58 character, or -1 */
static int lp2p__b58_value(unsigned char c) {
    const char *p = (c != 0) ? strchr(lp2p__b58_alphabet, c) : NULL;
    return p ? (int)(p - lp2p__b58_alphabet) : -1;
}

LP2P__PRIV ptrdiff_t lp2p__base58_enc(const uint8_t *in, size_t n, char *out, size_t cap) {
    uint8_t digits[LP2P__BASE58_MAXCHARS]; /* base58 digits, most significant first */
    size_t zeros = 0, ndig = 0;
    if (n > LP2P__BASE58_MAX || (n && !in) || !out) return LP2P_ERR_INVALID;
    while (zeros < n && in[zeros] == 0) zeros++;
    /* repeated multiply-and-add: digits = digits * 256 + byte, kept in a right-aligned window */
    for (size_t i = zeros; i < n; i++) {
        unsigned carry = in[i];
        size_t j = 0;
        for (; j < ndig || carry; j++) {
            size_t k = sizeof digits - 1 - j;
            if (j < ndig) carry += (unsigned)digits[k] << 8;
            digits[k] = (uint8_t)(carry % 58);
            carry /= 58;
        }
        ndig = j;
    }
    if (zeros + ndig + 1 > cap) return LP2P_ERR_INVALID;
    memset(out, '1', zeros);
    for (size_t j = 0; j < ndig; j++) out[zeros + j] = lp2p__b58_alphabet[digits[sizeof digits - ndig + j]];
    out[zeros + ndig] = '\0';
    return (ptrdiff_t)(zeros + ndig);
}

LP2P__PRIV ptrdiff_t lp2p__base58_dec(const char *in, size_t n, uint8_t *out, size_t cap) {
    uint8_t bytes[LP2P__BASE58_MAX]; /* big-endian value, right-aligned */
    size_t zeros = 0, nbytes = 0;
    if (n && !in) return LP2P_ERR_INVALID;
    if (n > LP2P__BASE58_MAXCHARS) return LP2P_ERR_BADADDR;
    while (zeros < n && in[zeros] == '1') zeros++;
    for (size_t i = zeros; i < n; i++) {
        int v = lp2p__b58_value((unsigned char)in[i]);
        if (v < 0) return LP2P_ERR_BADADDR;
        unsigned carry = (unsigned)v;
        size_t j = 0;
        for (; j < nbytes || carry; j++) {
            if (j >= sizeof bytes) return LP2P_ERR_BADADDR; /* more than LP2P__BASE58_MAX bytes */
            size_t k = sizeof bytes - 1 - j;
            if (j < nbytes) carry += (unsigned)bytes[k] * 58;
            bytes[k] = (uint8_t)carry;
            carry >>= 8;
        }
        nbytes = j;
    }
    if (zeros + nbytes > LP2P__BASE58_MAX) return LP2P_ERR_BADADDR;
    if (zeros + nbytes > cap || (zeros + nbytes && !out)) return LP2P_ERR_INVALID;
    memset(out, 0, zeros);
    memcpy(out + zeros, bytes + sizeof bytes - nbytes, nbytes);
    return (ptrdiff_t)(zeros + nbytes);
}

static const char lp2p__b32_alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";

LP2P__PRIV ptrdiff_t lp2p__base32_enc(const uint8_t *in, size_t n, char *out, size_t cap) {
    if ((n && !in) || !out || n > ((size_t)-1 - 8) / 8) return LP2P_ERR_INVALID;
    size_t len = (n * 8 + 4) / 5, o = 0;
    if (len + 1 > cap) return LP2P_ERR_INVALID;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            out[o++] = lp2p__b32_alphabet[(acc >> bits) & 31];
        }
    }
    if (bits) out[o++] = lp2p__b32_alphabet[(acc << (5 - bits)) & 31];
    out[o] = '\0';
    return (ptrdiff_t)o;
}

static int lp2p__b32_value(unsigned char c) {
    if (c >= 'a' && c <= 'z') return c - 'a';
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= '2' && c <= '7') return c - '2' + 26;
    return -1;
}

LP2P__PRIV ptrdiff_t lp2p__base32_dec(const char *in, size_t n, uint8_t *out, size_t cap) {
    if (n && !in) return LP2P_ERR_INVALID;
    /* unpadded RFC 4648 text never has 1, 3 or 6 characters in its last 8-character group */
    size_t rem = n % 8;
    if (rem == 1 || rem == 3 || rem == 6) return LP2P_ERR_BADADDR;
    size_t len = n / 8 * 5 + rem * 5 / 8, o = 0;
    if (len > cap || (len && !out)) return LP2P_ERR_INVALID;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = lp2p__b32_value((unsigned char)in[i]);
        if (v < 0) return LP2P_ERR_BADADDR;
        acc = (acc << 5) | (uint32_t)v;
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    /* the leftover bits must be zero, so that each byte string has exactly one text form */
    if (acc & ((1u << bits) - 1)) return LP2P_ERR_BADADDR;
    return (ptrdiff_t)o;
}

LP2P__PRIV ptrdiff_t lp2p__hex_enc(const uint8_t *in, size_t n, char *out, size_t cap) {
    static const char digits[] = "0123456789abcdef";
    if ((n && !in) || !out || n > ((size_t)-1 - 1) / 2 || n * 2 + 1 > cap) return LP2P_ERR_INVALID;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
    return (ptrdiff_t)(2 * n);
}

static int lp2p__hex_value(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

LP2P__PRIV ptrdiff_t lp2p__hex_dec(const char *in, size_t n, uint8_t *out, size_t cap) {
    if (n && !in) return LP2P_ERR_INVALID;
    if (n % 2) return LP2P_ERR_BADADDR;
    if (n / 2 > cap || (n && !out)) return LP2P_ERR_INVALID;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = lp2p__hex_value((unsigned char)in[2 * i]), lo = lp2p__hex_value((unsigned char)in[2 * i + 1]);
        if (hi < 0 || lo < 0) return LP2P_ERR_BADADDR;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return (ptrdiff_t)(n / 2);
}
