/* test_multiaddr.c - L0: multiaddr text <-> binary vectors, round trips, rejections, helpers.
 * Vectors: multiformats/multiaddr protocols.csv, libp2p/specs addressing/README.md, and the
 * text forms go-multiaddr prints (trailing slash, /ipfs alias, ip6 canonical form). */
#define LIBP2P_IMPLEMENTATION
#include "libp2p.h"
#include "tests/test.h"

#define PID_ED "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"
#define PID_ED_HEX "0024080112203b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29"
#define PID_ED_CID "bafzaajaiaejcao3ke66m5nvefvrkhkgqfjxq243fgikxohpciotdvqciugfvtwrj"
#define PID_RSA "QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC"
#define PID_RSA_HEX "1220d52ebb89d85b02a284948203a62ff28389c57c9f42beec4ec20db76a68911c0b"
#define CERT_U "uEiAAAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHw"
#define CERT_HEX "1220000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

typedef struct vec {
    const char *in;  /* text input */
    const char *hex; /* binary form */
    const char *out; /* printed text, NULL = same as in */
} vec;

static const vec vectors[] = {
    {"/ip4/127.0.0.1/tcp/4001", "047f000001060fa1", NULL},
    {"/ip6/::1/tcp/80", "2900000000000000000000000000000001060050", NULL},
    {"/dns4/example.com/tcp/443/wss", "360b6578616d706c652e636f6d0601bbde03", NULL},
    {"/ip4/1.2.3.4/udp/4001/quic-v1", "040102030491020fa1cd03", NULL},
    {"/ip4/127.0.0.1/tcp/4001/p2p/" PID_ED, "047f000001060fa1a50326" PID_ED_HEX, NULL},
    {"/ip4/1.2.3.4/tcp/4001/p2p/" PID_RSA "/p2p-circuit/p2p/" PID_ED,
     "0401020304060fa1a50322" PID_RSA_HEX "a202a50326" PID_ED_HEX, NULL},
    {"/p2p/" PID_RSA "/p2p-circuit", "a50322" PID_RSA_HEX "a202", NULL},
    {"/ipfs/" PID_RSA, "a50322" PID_RSA_HEX, "/p2p/" PID_RSA},
    {"/p2p/" PID_ED_CID, "a50326" PID_ED_HEX, "/p2p/" PID_ED},
    {"/ip4/1.2.3.4/tcp/1/", "0401020304060001", "/ip4/1.2.3.4/tcp/1"},
    {"/ip4/1.2.3.4/tcp/1///", "0401020304060001", "/ip4/1.2.3.4/tcp/1"},
    {"/ip4/0.0.0.0/tcp/0", "0400000000060000", NULL},
    {"/ip4/255.255.255.255/udp/65535", "04ffffffff9102ffff", NULL},
    {"/ip4/1.2.3.4/tcp/0080", "0401020304060050", "/ip4/1.2.3.4/tcp/80"},
    {"/ip6/2001:0db8:0000:0000:0000:0000:0000:0001/tcp/1", "2920010db8000000000000000000000001060001",
     "/ip6/2001:db8::1/tcp/1"},
    {"/ip6/2001:DB8:0:0:1:0:0:1/tcp/1", "2920010db8000000000001000000000001060001", "/ip6/2001:db8::1:0:0:1/tcp/1"},
    {"/ip6/::/tcp/0", "2900000000000000000000000000000000060000", NULL},
    {"/ip6/::ffff:1.2.3.4/tcp/1", "2900000000000000000000ffff01020304060001", NULL},
    {"/ip6zone/eth0/ip6/fe80::1/tcp/1", "2a0465746830" "29fe800000000000000000000000000001" "060001", NULL},
    {"/dns/localhost/tcp/1", "35096c6f63616c686f7374060001", NULL},
    {"/dns6/localhost/tcp/1", "37096c6f63616c686f7374060001", NULL},
    {"/dnsaddr/bootstrap.libp2p.io", "3813626f6f7473747261702e6c69627032702e696f", NULL},
    {"/ip4/1.2.3.4/tcp/443/tls/sni/example.com/ws", "0401020304060" "1bb" "c003c1030b6578616d706c652e636f6d" "dd03",
     NULL},
    {"/ip4/127.0.0.1/udp/1234/quic-v1/webtransport/certhash/" CERT_U,
     "047f000001910204d2cd03d103d20322" CERT_HEX, NULL},
    {"/certhash/mEiAAAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHw", "d20322" CERT_HEX, "/certhash/" CERT_U},
    {"/certhash/f" CERT_HEX, "d20322" CERT_HEX, "/certhash/" CERT_U},
    {"/memory/1234", "890600000000000004d2", NULL},
    {"/memory/18446744073709551615", "8906ffffffffffffffff", NULL},
    {"/unix/tmp/p2p.sock", "90030d2f746d702f7032702e736f636b", NULL},
    {"/unix/a/b/c/", "9003062f612f622f63", "/unix/a/b/c"},
    {"/ip4/1.2.3.4/tcp/1/ws/p2p-circuit/tls/noise/http/https", "0401020304060001dd03a202c003c603e003bb03", NULL},
    {"/ip4/1.2.3.4/udp/1/quic/webrtc-direct/webrtc/udt/utp", "04010203049102" "0001" "cc039802" "9902ad02ae02", NULL},
    {"/ip4/10.0.0.0/ipcidr/8", "040a0000002b08", NULL},
    {"/ip4/1.2.3.4/dccp/1/sctp/2", "040102030421000184010002", NULL},
};

static void hexstr(const uint8_t *b, size_t n, char *out) {
    for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", b[i]);
    out[2 * n] = 0;
}

static void test_vectors(void) {
    TEST("multiaddr text <-> binary vectors");
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        const vec *v = &vectors[i];
        lp2p__ma ma, back;
        const char *why = NULL;
        char hex[2 * LP2P__MA_MAX + 1], text[LP2P__MA_STRLEN];
        int rc = lp2p__ma_parse(v->in, &ma, &why);
        CHECK_EQ(rc, LP2P_OK);
        if (rc) {
            fprintf(stderr, "  parse %s: %s\n", v->in, why ? why : "?");
            continue;
        }
        hexstr(ma.b, ma.len, hex);
        CHECK_STR(hex, v->hex);
        if (strcmp(hex, v->hex)) fprintf(stderr, "  %s\n  got  %s\n  want %s\n", v->in, hex, v->hex);
        ptrdiff_t n = lp2p__ma_str(&ma, text, sizeof text);
        const char *want = v->out ? v->out : v->in;
        CHECK_EQ(n, (ptrdiff_t)strlen(want));
        CHECK_STR(text, want);
        if (strcmp(text, want)) fprintf(stderr, "  printed %s, want %s\n", text, want);
        /* binary round trip and text round trip */
        CHECK_EQ(lp2p__ma_from_bytes(ma.b, ma.len, &back, NULL), LP2P_OK);
        CHECK(lp2p__ma_eq(&ma, &back));
        CHECK_EQ(lp2p__ma_parse(text, &back, NULL), LP2P_OK);
        CHECK(lp2p__ma_eq(&ma, &back));
    }
}

typedef struct bad {
    const char *in;
    const char *why; /* expected reason, NULL = any */
} bad;

static const bad bad_text[] = {
    {"", "empty multiaddr"},
    {"/", "empty multiaddr"},
    {"///", "empty multiaddr"},
    {"ip4/1.2.3.4", "multiaddr must begin with '/'"},
    {"/ip4", "missing protocol value"},
    {"/ip4/", "missing protocol value"},
    {"/ip4/1.2.3.256", "bad ip4 address"},
    {"/ip4/1.2.3", "bad ip4 address"},
    {"/ip4/::1", "bad ip4 address"},
    {"/ip4/1.2.3.4.5", "bad ip4 address"},
    {"/ip4/ 1.2.3.4", "bad ip4 address"},
    {"/ip6/1.2.3.4::1::2", "bad ip6 address"},
    {"/ip6/fe80::1%eth0", "bad ip6 address"},
    {"/ip6/12345::", "bad ip6 address"},
    {"/tcp/65536", "port out of range"},
    {"/tcp/99999999999999999999999", "port out of range"},
    {"/tcp/-1", "bad port"},
    {"/tcp/+1", "bad port"},
    {"/tcp/1a", "bad port"},
    {"/tcp", "missing protocol value"},
    {"/udp//ws", "bad port"},
    {"/foo/1", "unknown protocol"},
    {"/ip4/1.2.3.4/tcp/1/foo", "unknown protocol"},
    {"//ip4/1.2.3.4", "unknown protocol"},
    {"/ip4/1.2.3.4//tcp/1", "unknown protocol"},
    {"/IP4/1.2.3.4", "unknown protocol"},
    {"/ws/1", "unknown protocol"},
    {"/p2p/notapeerid", "bad peer ID"},
    {"/p2p/" PID_RSA "x", "bad peer ID"},
    {"/p2p/QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNK", "bad peer ID"},
    {"/p2p/0" PID_RSA, "bad peer ID"},
    {"/dns4//tcp/1", "bad name"},
    {"/dns4/a b/tcp/1", "bad name"},
    {"/sni/a\tb", "bad name"},
    {"/ip6zone", "missing protocol value"},
    {"/unix", "missing protocol value"},
    {"/unix/", "missing protocol value"},
    {"/unix/a\x01", "bad unix path"},
    {"/memory/-1", "bad memory address"},
    {"/memory/18446744073709551616", "bad memory address"},
    {"/ipcidr/256", "bad ipcidr mask"},
    {"/certhash/xyz", "bad certhash"},
    {"/certhash/u", "bad certhash"},
    {"/certhash/uAA", "bad certhash"},      /* one byte 00: multihash without a length */
    {"/certhash/uEiAA", "bad certhash"},    /* sha2-256 claiming 32 bytes, 0 present */
    {"/certhash/u!!!!", "bad certhash"},
};

static void test_bad_text(void) {
    TEST("multiaddr text rejections with reasons");
    for (size_t i = 0; i < sizeof bad_text / sizeof bad_text[0]; i++) {
        lp2p__ma ma;
        ma.len = 7;
        const char *why = NULL;
        int rc = lp2p__ma_parse(bad_text[i].in, &ma, &why);
        CHECK_EQ(rc, LP2P_ERR_BADADDR);
        CHECK_EQ(ma.len, 7); /* out untouched on failure */
        CHECK(why != NULL);
        if (why && bad_text[i].why && strcmp(why, bad_text[i].why)) {
            t_fail++;
            fprintf(stderr, "  %s: why '%s', want '%s'\n", bad_text[i].in, why, bad_text[i].why);
        }
    }
    CHECK_EQ(lp2p__ma_parse(NULL, &(lp2p__ma){0}, NULL), LP2P_ERR_BADADDR); /* why may be NULL */
    /* a text longer than the binary limit */
    char big[2000] = "";
    for (int i = 0; i < 60; i++) strcat(big, "/dns/aaaaaaaaaa.example");
    lp2p__ma ma;
    const char *why = NULL;
    CHECK_EQ(lp2p__ma_parse(big, &ma, &why), LP2P_ERR_BADADDR);
    CHECK(why && strcmp(why, "multiaddr too long") == 0);
    /* names over 255 bytes */
    char longname[400] = "/dns/";
    memset(longname + 5, 'a', 256);
    longname[5 + 256] = 0;
    CHECK_EQ(lp2p__ma_parse(longname, &ma, NULL), LP2P_ERR_BADADDR);
    longname[5 + 255] = 0;
    CHECK_EQ(lp2p__ma_parse(longname, &ma, NULL), LP2P_OK);
}

typedef struct badbin {
    const char *hex;
    const char *why;
} badbin;

static const badbin bad_bin[] = {
    {"047f0000", "truncated value"},                 /* ip4 cut short */
    {"047f000001060f", "truncated value"},           /* port cut short */
    {"047f000001ff", "truncated protocol code"},     /* trailing garbage: half a varint */
    {"047f00000106", "truncated value"},             /* trailing code without value */
    {"047f0000010fa1", "unknown protocol code"},     /* trailing garbage bytes */
    {"05", "unknown protocol code"},
    {"8400" "7f000001", "bad protocol code varint"}, /* non-minimal varint for 4 */
    {"a58300", "bad protocol code varint"},           /* 421 padded */
    {"ffffffffffffffffff01", "bad protocol code varint"},
    {"3600", "empty value"},                         /* dns4 with empty name */
    {"3605616263", "truncated value"},
    {"368000", "bad value length varint"},
    {"3680", "truncated value length"},
    {"36", "truncated value length"},
    {"36012f", "bad name"},                          /* '/' in a name */
    {"360100", "bad name"},                          /* NUL in a name */
    {"3602410a", "bad name"},                        /* newline in a name */
    {"a50302" "1220", "bad peer ID"},                /* sha2-256 without digest */
    {"a50304" "13200000", "bad peer ID"},            /* unknown multihash code */
    {"a503" "22" "1220d52ebb89d85b02a284948203a62ff28389c57c9f42beec4ec20db76a68911c", "truncated value"},
    {"9003062f612f622f63" "060001", "component after unix path"},
    {"9003022f2f", "bad unix path"},
    {"900301" "2f", "bad unix path"},
    {"900302" "612f", "bad unix path"},
    {"d20302" "1221", "bad certhash"},
    {"d20301" "80", "bad certhash"},
};

static void test_bad_bytes(void) {
    TEST("multiaddr binary rejections (strict, bounded)");
    for (size_t i = 0; i < sizeof bad_bin / sizeof bad_bin[0]; i++) {
        uint8_t b[LP2P__MA_MAX];
        size_t n = t_unhex(bad_bin[i].hex, b);
        lp2p__ma ma;
        ma.len = 9;
        const char *why = NULL;
        CHECK_EQ(lp2p__ma_from_bytes(b, n, &ma, &why), LP2P_ERR_BADADDR);
        CHECK_EQ(ma.len, 9);
        if (!why || strcmp(why, bad_bin[i].why)) {
            t_fail++;
            fprintf(stderr, "  %s: why '%s', want '%s'\n", bad_bin[i].hex, why ? why : "(null)", bad_bin[i].why);
        }
    }
    lp2p__ma ma;
    const char *why = NULL;
    CHECK_EQ(lp2p__ma_from_bytes((const uint8_t *)"", 0, &ma, &why), LP2P_ERR_BADADDR);
    CHECK_STR(why, "empty multiaddr");
    /* longer than LP2P__MA_MAX */
    uint8_t big[LP2P__MA_MAX + 2];
    for (size_t i = 0; i < sizeof big; i += 2) big[i] = 0xdd, big[i + 1] = 0x03; /* /ws repeated */
    CHECK_EQ(lp2p__ma_from_bytes(big, sizeof big, &ma, &why), LP2P_ERR_BADADDR);
    CHECK_STR(why, "multiaddr too long");
    /* fits in 400 bytes but its text would not fit LP2P__MA_STRLEN */
    for (size_t i = 0; i < 200; i += 2) big[i] = 0xd1, big[i + 1] = 0x03; /* 100 x /webtransport */
    CHECK_EQ(lp2p__ma_from_bytes(big, 200, &ma, &why), LP2P_ERR_BADADDR);
    CHECK_STR(why, "multiaddr text too long");
    CHECK_EQ(lp2p__ma_from_bytes(big, 80, &ma, &why), LP2P_OK); /* 40 x /webtransport = 520 chars */
    char text[LP2P__MA_STRLEN];
    CHECK_EQ(lp2p__ma_str(&ma, text, sizeof text), 520);
}

static void test_helpers(void) {
    TEST("multiaddr iteration, split/append p2p, is_tcp, is_loopback, str capacity");
    lp2p__ma ma, base, again;
    lp2p_peer_id id, id2;
    char text[LP2P__MA_STRLEN];
    CHECK_EQ(lp2p__ma_parse("/ip4/127.0.0.1/tcp/4001/p2p/" PID_ED, &ma, NULL), LP2P_OK);
    size_t off = 0, vn = 0, count = 0;
    uint32_t code = 0, codes[4] = {0};
    const uint8_t *v = NULL;
    while (lp2p__ma_next(&ma, &off, &code, &v, &vn) == 1 && count < 4) codes[count++] = code;
    CHECK_EQ(count, 3);
    CHECK(codes[0] == LP2P__MA_IP4 && codes[1] == LP2P__MA_TCP && codes[2] == LP2P__MA_P2P);
    CHECK_EQ(vn, 38);
    CHECK_EQ(lp2p__ma_split_p2p(&ma, &base, &id), 1);
    CHECK_EQ(lp2p__ma_str(&base, text, sizeof text), (ptrdiff_t)strlen("/ip4/127.0.0.1/tcp/4001"));
    CHECK_STR(text, "/ip4/127.0.0.1/tcp/4001");
    CHECK_EQ(lp2p_peer_id_parse(PID_ED, &id2), LP2P_OK);
    CHECK(lp2p_peer_id_eq(&id, &id2));
    CHECK(lp2p__ma_is_tcp(&ma));
    CHECK(lp2p__ma_is_tcp(&base));
    CHECK(lp2p__ma_is_loopback(&ma));
    again = base;
    CHECK_EQ(lp2p__ma_append_p2p(&again, &id), LP2P_OK);
    CHECK(lp2p__ma_eq(&again, &ma));
    CHECK(!lp2p__ma_eq(&again, &base));
    /* split in place (base aliases ma) */
    again = ma;
    CHECK_EQ(lp2p__ma_split_p2p(&again, &again, NULL), 1);
    CHECK(lp2p__ma_eq(&again, &base));
    CHECK_EQ(lp2p__ma_split_p2p(&base, &again, &id2), 0);
    CHECK(lp2p__ma_eq(&again, &base));
    /* relay address: last p2p is the target */
    CHECK_EQ(lp2p__ma_parse("/ip4/1.2.3.4/tcp/1/p2p/" PID_RSA "/p2p-circuit/p2p/" PID_ED, &ma, NULL), LP2P_OK);
    CHECK_EQ(lp2p__ma_split_p2p(&ma, &base, &id2), 1);
    CHECK(lp2p_peer_id_eq(&id, &id2));
    lp2p__ma_str(&base, text, sizeof text);
    CHECK_STR(text, "/ip4/1.2.3.4/tcp/1/p2p/" PID_RSA "/p2p-circuit");
    CHECK(!lp2p__ma_is_tcp(&ma));
    CHECK(!lp2p__ma_is_loopback(&ma));
    /* is_tcp */
    static const char *tcp_yes[] = {"/ip6/::1/tcp/1", "/dns/localhost/tcp/1", "/dns4/a/tcp/1", ("/dns6/a/tcp/1/p2p/" PID_ED)};
    static const char *tcp_no[] = {"/ip4/1.2.3.4/udp/1", "/ip4/1.2.3.4/tcp/1/ws", "/dnsaddr/a/tcp/1", "/ip4/1.2.3.4",
                                   "/tcp/1", ("/ip4/1.2.3.4/tcp/1/p2p/" PID_ED "/p2p-circuit")};
    for (size_t i = 0; i < 4; i++) {
        CHECK_EQ(lp2p__ma_parse(tcp_yes[i], &ma, NULL), LP2P_OK);
        CHECK(lp2p__ma_is_tcp(&ma));
    }
    for (size_t i = 0; i < 6; i++) {
        CHECK_EQ(lp2p__ma_parse(tcp_no[i], &ma, NULL), LP2P_OK);
        CHECK(!lp2p__ma_is_tcp(&ma));
    }
    /* loopback / unspecified */
    static const char *lo_yes[] = {"/ip4/127.0.0.1/tcp/1", "/ip4/127.255.0.9", "/ip4/0.0.0.0/tcp/0", "/ip6/::1/tcp/1",
                                   "/ip6/::/tcp/1"};
    static const char *lo_no[] = {"/ip4/10.0.0.1/tcp/1", "/ip6/::2/tcp/1", "/dns/localhost/tcp/1", "/ip4/128.0.0.1"};
    for (size_t i = 0; i < 5; i++) {
        CHECK_EQ(lp2p__ma_parse(lo_yes[i], &ma, NULL), LP2P_OK);
        CHECK(lp2p__ma_is_loopback(&ma));
    }
    for (size_t i = 0; i < 4; i++) {
        CHECK_EQ(lp2p__ma_parse(lo_no[i], &ma, NULL), LP2P_OK);
        CHECK(!lp2p__ma_is_loopback(&ma));
    }
    /* str capacity: exact fit needs room for the NUL */
    CHECK_EQ(lp2p__ma_parse("/ip4/1.2.3.4/tcp/1", &ma, NULL), LP2P_OK);
    CHECK_EQ(lp2p__ma_str(&ma, text, 19), 18);
    CHECK_EQ(lp2p__ma_str(&ma, text, 18), LP2P_ERR_INVALID);
    CHECK_STR(text, "");
    CHECK_EQ(lp2p__ma_str(&ma, text, 0), LP2P_ERR_INVALID);
    /* a hand-made broken ma prints as an error, iterates to an end */
    ma.len = 3, ma.b[0] = 0x04, ma.b[1] = 1, ma.b[2] = 2;
    CHECK_EQ(lp2p__ma_str(&ma, text, sizeof text), LP2P_ERR_BADADDR);
    off = 0;
    CHECK_EQ(lp2p__ma_next(&ma, &off, &code, &v, &vn), 0);
    ma.len = 0;
    CHECK_EQ(lp2p__ma_str(&ma, text, sizeof text), LP2P_ERR_BADADDR);
    /* append past the text limit: 40 x /webtransport (520 chars) + /p2p/<52> fits, twice does not */
    uint8_t wt[80];
    for (size_t i = 0; i < sizeof wt; i += 2) wt[i] = 0xd1, wt[i + 1] = 0x03;
    CHECK_EQ(lp2p__ma_from_bytes(wt, sizeof wt, &ma, NULL), LP2P_OK);
    CHECK_EQ(lp2p__ma_append_p2p(&ma, &id), LP2P_OK);
    uint16_t len = ma.len;
    CHECK_EQ(lp2p__ma_append_p2p(&ma, &id), LP2P_ERR_INVALID);
    CHECK_EQ(ma.len, len);
    CHECK_EQ(lp2p__ma_str(&ma, text, sizeof text), 520 + 57);
    /* append past the byte limit */
    memset(&ma, 0, sizeof ma);
    for (int i = 0; i < 9; i++) CHECK_EQ(lp2p__ma_append_p2p(&ma, &id), LP2P_OK); /* 9 x 41 B */
    CHECK_EQ(lp2p__ma_append_p2p(&ma, &id), LP2P_ERR_INVALID);
    CHECK_EQ(ma.len, 9 * 41);
    CHECK(lp2p__ma_str(&ma, text, sizeof text) > 0);
}

int main(void) {
    test_vectors();
    test_bad_text();
    test_bad_bytes();
    test_helpers();
    TEST_END();
}
