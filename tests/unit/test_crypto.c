/* test_crypto.c - L0/L1: base encodings, hashes, HKDF, X25519, Ed25519, AEAD, key verification,
 * peer IDs and signed envelopes, with known-answer vectors (sources cited per test). */
#define LIBP2P_IMPLEMENTATION
#include "libp2p.h"
#include "tests/test.h"

/* hex literal -> static-size buffer helper */
#define UNHEX(name, hex)                                                                                   \
    uint8_t name[sizeof(hex) / 2 + 1];                                                                     \
    size_t name##_len LP2P__UNUSED = t_unhex(hex, name)

static void test_base58(void) {
    TEST("base58btc: known encodings, leading zeros, round trip");
    char s[400];
    uint8_t b[300];
    CHECK_EQ(lp2p__base58_enc((const uint8_t *)"hello world", 11, s, sizeof s), 15);
    CHECK_STR(s, "StV1DL6CwTryKyV");
    CHECK_EQ(lp2p__base58_enc((const uint8_t *)"\0\0\x01", 3, s, sizeof s), 3);
    CHECK_STR(s, "112");
    CHECK_EQ(lp2p__base58_enc(NULL, 0, s, sizeof s), 0);
    CHECK_STR(s, "");
    CHECK_EQ(lp2p__base58_dec("112", 3, b, sizeof b), 3);
    CHECK(b[0] == 0 && b[1] == 0 && b[2] == 1);
    CHECK_EQ(lp2p__base58_dec("StV1DL6CwTryKyV", 15, b, sizeof b), 11);
    CHECK_MEM(b, "hello world", 11);
    for (int n = 0; n <= 256; n += 7) { /* every length class, with leading zero bytes */
        uint8_t in[256];
        for (int i = 0; i < n; i++) in[i] = (uint8_t)(i < 3 ? 0 : i * 37 + n);
        ptrdiff_t len = lp2p__base58_enc(in, (size_t)n, s, sizeof s);
        CHECK(len >= 0);
        CHECK_EQ(lp2p__base58_dec(s, (size_t)len, b, sizeof b), n);
        CHECK_MEM(b, in, (size_t)n);
    }
    TEST("base58btc: invalid characters, limits, small buffers");
    CHECK_EQ(lp2p__base58_dec("abc0", 4, b, sizeof b), LP2P_ERR_BADADDR); /* 0 not in alphabet */
    CHECK_EQ(lp2p__base58_dec("abcO", 4, b, sizeof b), LP2P_ERR_BADADDR);
    CHECK_EQ(lp2p__base58_dec("abcI", 4, b, sizeof b), LP2P_ERR_BADADDR);
    CHECK_EQ(lp2p__base58_dec("abcl", 4, b, sizeof b), LP2P_ERR_BADADDR);
    CHECK_EQ(lp2p__base58_dec("ab c", 4, b, sizeof b), LP2P_ERR_BADADDR);
    CHECK_EQ(lp2p__base58_dec("ab\0c", 4, b, sizeof b), LP2P_ERR_BADADDR);
    CHECK_EQ(lp2p__base58_dec("\xff", 1, b, sizeof b), LP2P_ERR_BADADDR);
    memset(s, 'z', 351);
    CHECK_EQ(lp2p__base58_dec(s, 351, b, sizeof b), LP2P_ERR_BADADDR);  /* over the char cap */
    CHECK_EQ(lp2p__base58_dec(s, 350, b, sizeof b), LP2P_ERR_BADADDR);  /* > 256 bytes of value */
    CHECK_EQ(lp2p__base58_dec("StV1DL6CwTryKyV", 15, b, 10), LP2P_ERR_INVALID);
    CHECK_EQ(lp2p__base58_enc((const uint8_t *)"hello world", 11, s, 15), LP2P_ERR_INVALID); /* no room for NUL */
    CHECK_EQ(lp2p__base58_enc(b, 257, s, sizeof s), LP2P_ERR_INVALID);
}

static void test_base32_hex(void) {
    TEST("base32 (RFC 4648 §10 vectors, lowercase, unpadded)");
    static const char *const vec[][2] = {{"", ""},         {"f", "my"},         {"fo", "mzxq"},        {"foo", "mzxw6"},
                                         {"foob", "mzxw6yq"}, {"fooba", "mzxw6ytb"}, {"foobar", "mzxw6ytboi"}};
    char s[64];
    uint8_t b[64];
    for (size_t i = 0; i < LP2P__COUNT(vec); i++) {
        size_t n = strlen(vec[i][0]);
        CHECK_EQ(lp2p__base32_enc((const uint8_t *)vec[i][0], n, s, sizeof s), strlen(vec[i][1]));
        CHECK_STR(s, vec[i][1]);
        CHECK_EQ(lp2p__base32_dec(vec[i][1], strlen(vec[i][1]), b, sizeof b), n);
        CHECK_MEM(b, vec[i][0], n);
    }
    CHECK_EQ(lp2p__base32_dec("MZXW6YTBOI", 10, b, sizeof b), 6); /* upper case accepted */
    CHECK_MEM(b, "foobar", 6);
    TEST("base32: invalid characters, lengths, trailing bits, small buffers");
    CHECK_EQ(lp2p__base32_dec("mzxw6yt1", 8, b, sizeof b), LP2P_ERR_BADADDR); /* 1 not in alphabet */
    CHECK_EQ(lp2p__base32_dec("mzxw6yt=", 8, b, sizeof b), LP2P_ERR_BADADDR); /* no padding */
    CHECK_EQ(lp2p__base32_dec("m", 1, b, sizeof b), LP2P_ERR_BADADDR);
    CHECK_EQ(lp2p__base32_dec("mzx", 3, b, sizeof b), LP2P_ERR_BADADDR);
    CHECK_EQ(lp2p__base32_dec("my", 2, b, sizeof b), 1);
    CHECK_EQ(lp2p__base32_dec("mz", 2, b, sizeof b), LP2P_ERR_BADADDR); /* leftover bits 01 */
    CHECK_EQ(lp2p__base32_dec("my", 2, b, 0), LP2P_ERR_INVALID);
    CHECK_EQ(lp2p__base32_dec("mzzz", 4, b, sizeof b), LP2P_ERR_BADADDR); /* non-zero leftover bits */
    CHECK_EQ(lp2p__base32_enc((const uint8_t *)"foobar", 6, s, 10), LP2P_ERR_INVALID);
    TEST("hex");
    CHECK_EQ(lp2p__hex_enc((const uint8_t *)"\x00\xab\xff", 3, s, sizeof s), 6);
    CHECK_STR(s, "00abff");
    CHECK_EQ(lp2p__hex_dec("00ABfF", 6, b, sizeof b), 3);
    CHECK(b[0] == 0 && b[1] == 0xab && b[2] == 0xff);
    CHECK_EQ(lp2p__hex_dec("0g", 2, b, sizeof b), LP2P_ERR_BADADDR);
    CHECK_EQ(lp2p__hex_dec("abc", 3, b, sizeof b), LP2P_ERR_BADADDR);
    CHECK_EQ(lp2p__hex_dec("abcd", 4, b, 1), LP2P_ERR_INVALID);
    CHECK_EQ(lp2p__hex_enc(b, 3, s, 6), LP2P_ERR_INVALID);
}

static void test_sha256_hkdf(void) {
    TEST("SHA-256 (FIPS 180-2 \"abc\" and the two-block message), incremental");
    uint8_t out[32], out2[32];
    UNHEX(abc, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    UNHEX(two, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    lp2p__sha256_once("abc", 3, out);
    CHECK_MEM(out, abc, 32);
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    lp2p__sha256 c;
    lp2p__sha256_init(&c);
    for (size_t i = 0; i < strlen(m); i += 5) lp2p__sha256_update(&c, m + i, LP2P__MIN(5, strlen(m) - i));
    lp2p__sha256_final(&c, out);
    CHECK_MEM(out, two, 32);
    (void)abc_len, (void)two_len;

    TEST("HKDF: RFC 5869 test case 1 through BearSSL, and lp2p__hkdf2 = HKDF(salt=ck, info=\"\", L=64)");
    UNHEX(ikm, "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b");
    UNHEX(salt, "000102030405060708090a0b0c");
    UNHEX(info, "f0f1f2f3f4f5f6f7f8f9");
    UNHEX(okm1, "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
    br_hkdf_context hc;
    uint8_t okm[64];
    br_hkdf_init(&hc, &br_sha256_vtable, salt, salt_len);
    br_hkdf_inject(&hc, ikm, ikm_len);
    br_hkdf_flip(&hc);
    br_hkdf_produce(&hc, info, info_len, okm, 42);
    CHECK_MEM(okm, okm1, okm1_len);
    /* RFC 5869 test case 3 has an empty salt, which HMAC pads to the same key block as a
     * 32-byte all-zero chaining key; info is empty: exactly lp2p__hkdf2's shape */
    UNHEX(okm3, "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
    uint8_t ck[32] = {0};
    lp2p__hkdf2(ck, ikm, ikm_len, out, out2);
    CHECK_MEM(out, okm3, 32);
    CHECK_MEM(out2, okm3 + 32, okm3_len - 32);
    /* and against the Noise definition written out with libsodium's HMAC (an independent
     * implementation): temp = HMAC(ck, ikm); o1 = HMAC(temp, 01); o2 = HMAC(temp, o1 || 02) */
    for (int i = 0; i < 32; i++) ck[i] = (uint8_t)(i * 7 + 1);
    uint8_t temp[32], e1[33], e2[32];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, ck, 32);
    crypto_auth_hmacsha256_update(&st, ikm, ikm_len);
    crypto_auth_hmacsha256_final(&st, temp);
    crypto_auth_hmacsha256_init(&st, temp, 32);
    crypto_auth_hmacsha256_update(&st, (const uint8_t *)"\x01", 1);
    crypto_auth_hmacsha256_final(&st, e1);
    e1[32] = 2;
    crypto_auth_hmacsha256_init(&st, temp, 32);
    crypto_auth_hmacsha256_update(&st, e1, 33);
    crypto_auth_hmacsha256_final(&st, e2);
    lp2p__hkdf2(ck, ikm, ikm_len, out, out2);
    CHECK_MEM(out, e1, 32);
    CHECK_MEM(out2, e2, 32);
    lp2p__hkdf2(ck, NULL, 0, out, out2); /* Noise Split() uses an empty ikm */
    CHECK(memcmp(out, e1, 32) != 0);
}

static void test_x25519(void) {
    TEST("X25519: RFC 7748 §5.2 and §6.1");
    uint8_t out[32], pk[32], sk[32];
    UNHEX(k1, "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4");
    UNHEX(u1, "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c");
    UNHEX(r1, "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552");
    UNHEX(k2, "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d");
    UNHEX(u2, "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493");
    UNHEX(r2, "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957");
    CHECK_EQ(lp2p__x25519(out, k1, u1), LP2P_OK);
    CHECK_MEM(out, r1, 32);
    CHECK_EQ(lp2p__x25519(out, k2, u2), LP2P_OK);
    CHECK_MEM(out, r2, 32);
    UNHEX(a_sk, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    UNHEX(a_pk, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    UNHEX(b_sk, "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
    UNHEX(b_pk, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
    UNHEX(shared, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
    CHECK_EQ(lp2p__x25519(out, a_sk, b_pk), LP2P_OK);
    CHECK_MEM(out, shared, 32);
    CHECK_EQ(lp2p__x25519(out, b_sk, a_pk), LP2P_OK);
    CHECK_MEM(out, shared, 32);
    (void)k1_len, (void)u1_len, (void)r1_len, (void)k2_len, (void)u2_len, (void)r2_len, (void)a_sk_len, (void)a_pk_len,
        (void)b_sk_len, (void)b_pk_len, (void)shared_len;
    TEST("X25519: fresh key pairs agree; low-order point rejected");
    uint8_t pk2[32], sk2[32], s1[32], s2[32];
    lp2p__x25519_keypair(pk, sk);
    lp2p__x25519_keypair(pk2, sk2);
    CHECK(memcmp(sk, sk2, 32) != 0);
    CHECK_EQ(lp2p__x25519(s1, sk, pk2), LP2P_OK);
    CHECK_EQ(lp2p__x25519(s2, sk2, pk), LP2P_OK);
    CHECK_MEM(s1, s2, 32);
    uint8_t zero[32] = {0};
    CHECK_EQ(lp2p__x25519(out, sk, zero), LP2P_ERR_HANDSHAKE);
}

static void test_ed25519(void) {
    TEST("Ed25519: RFC 8032 §7.1 tests 1-3");
    static const char *const vec[][4] = {
        {"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
         "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
         "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
        {"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
         "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
         "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
        {"c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
         "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
         "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"},
    };
    for (size_t i = 0; i < LP2P__COUNT(vec); i++) {
        uint8_t seed[32], pk_want[32], msg[8], sig_want[64], pk[32], sk[64], sig[64];
        t_unhex(vec[i][0], seed);
        t_unhex(vec[i][1], pk_want);
        size_t mlen = t_unhex(vec[i][2], msg);
        t_unhex(vec[i][3], sig_want);
        lp2p__ed25519_from_seed(seed, pk, sk);
        CHECK_MEM(pk, pk_want, 32);
        lp2p__ed25519_sign(sk, msg, mlen, sig);
        CHECK_MEM(sig, sig_want, 64);
        CHECK(lp2p__ed25519_verify(pk, msg, mlen, sig));
        sig[10] ^= 1;
        CHECK(!lp2p__ed25519_verify(pk, msg, mlen, sig));
        sig[10] ^= 1;
        msg[0] ^= 1;
        CHECK(!lp2p__ed25519_verify(pk, msg, mlen + 1, sig));
    }
}

static void test_aead(void) {
    TEST("ChaCha20-Poly1305: RFC 8439 §2.8.2 through libsodium (nonce 07000000...)");
    uint8_t key[32], ad[12], nonce[12], buf[400], out[400];
    const char *pt = "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, "
                     "sunscreen would be it.";
    size_t ptlen = strlen(pt);
    UNHEX(ct, "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b"
              "1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
              "3ff4def08e4b7a9de576d26586cec64b6116"
              "1ae10b594f09e26a7e902ecbd0600691");
    for (int i = 0; i < 32; i++) key[i] = (uint8_t)(0x80 + i);
    t_unhex("50515253c0c1c2c3c4c5c6c7", ad);
    t_unhex("070000004041424344454647", nonce);
    unsigned long long clen;
    crypto_aead_chacha20poly1305_ietf_encrypt(buf, &clen, (const uint8_t *)pt, ptlen, ad, 12, NULL, nonce, key);
    CHECK_EQ(clen, ct_len);
    CHECK_MEM(buf, ct, ct_len);

    TEST("ChaCha20-Poly1305: RFC 8439 A.5 (nonce 00000000 || LE64) through lp2p__aead_open/seal");
    /* A.5's nonce is 00000000 0102030405060708: the Noise layout with n = 0x0807060504030201 */
    const uint64_t n = 0x0807060504030201ull;
    const char *pt5 = "Internet-Drafts are draft documents valid for a maximum of six months and may be updated, "
                      "replaced, or obsoleted by other documents at any time. It is inappropriate to use "
                      "Internet-Drafts as reference material or to cite them other than as /\xe2\x80\x9cwork in "
                      "progress./\xe2\x80\x9d";
    UNHEX(key5, "1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0");
    UNHEX(ad5, "f33388860000000000004e91");
    UNHEX(ct5, "64a0861575861af460f062c79be643bd5e805cfd345cf389f108670ac76c8cb24c6cfc18755d43eea09ee94e382d26b0"
               "bdb7b73c321b0100d4f03b7f355894cf332f830e710b97ce98c8a84abd0b948114ad176e008d33bd60f982b1ff37c855"
               "9797a06ef4f0ef61c186324e2b3506383606907b6a7c02b0f9f6157b53c867e4b9166c767b804d46a59b5216cde7a4e9"
               "9040c5a40433225ee282a1b0a06c523eaf4534d7f83fa1155b0047718cbc546a0d072b04b3564eea1b422273f548271a"
               "0bb2316053fa76991955ebd63159434ecebb4e466dae5a1073a6727627097a1049e617d91d361094fa68f0ff77987130"
               "305beaba2eda04df997b714d6c6f2c29a6ad5cb4022b02709b"
               "eead9d67890cbb22392336fea1851f38");
    CHECK_EQ(strlen(pt5), 265);
    CHECK_EQ(ct5_len, 265 + 16);
    CHECK_EQ(lp2p__aead_open(key5, n, ad5, ad5_len, ct5, ct5_len, out), LP2P_OK);
    CHECK_MEM(out, pt5, 265);
    lp2p__aead_seal(key5, n, ad5, ad5_len, (const uint8_t *)pt5, 265, out);
    CHECK_MEM(out, ct5, ct5_len);
    memcpy(buf, pt5, 265); /* in place */
    lp2p__aead_seal(key5, n, ad5, ad5_len, buf, 265, buf);
    CHECK_MEM(buf, ct5, ct5_len);
    CHECK_EQ(lp2p__aead_open(key5, n, ad5, ad5_len, buf, ct5_len, buf), LP2P_OK);
    CHECK_MEM(buf, pt5, 265);
    TEST("ChaCha20-Poly1305: wrong nonce, tag, AD or length rejected");
    CHECK_EQ(lp2p__aead_open(key5, n + 1, ad5, ad5_len, ct5, ct5_len, out), LP2P_ERR_PROTOCOL);
    CHECK_EQ(lp2p__aead_open(key5, n, ad5, ad5_len - 1, ct5, ct5_len, out), LP2P_ERR_PROTOCOL);
    ct5[ct5_len - 1] ^= 0x80;
    CHECK_EQ(lp2p__aead_open(key5, n, ad5, ad5_len, ct5, ct5_len, out), LP2P_ERR_PROTOCOL);
    CHECK_EQ(lp2p__aead_open(key5, n, ad5, ad5_len, ct5, 15, out), LP2P_ERR_PROTOCOL);
    /* empty plaintext with no AD: just a tag, as Noise sends for empty payloads */
    lp2p__aead_seal(key5, 0, NULL, 0, NULL, 0, out);
    CHECK_EQ(lp2p__aead_open(key5, 0, NULL, 0, out, 16, buf), LP2P_OK);
}

/* ---- keys, generated with openssl on the test author's machine (see each comment) ---- */
/* openssl genpkey RSA 2048; pkey -pubout -outform DER; dgst -sha256 -sign over MSG */
#define MSG "libp2p.h test message"
static const char rsa_spki[] =
    "30820122300d06092a864886f70d01010105000382010f003082010a0282010100b0dfb982bc0c117a90439c2e0e6e21de249dae85"
    "1762658e3591cc4b8d478cb2eaeeae6a93b1e822ceb0073c3c7dd39ba22202f7bacc1904c98e48b3395eced2eb6b08f3ce9d39f2879146"
    "e3d3be948d8abed23b7bd827cf3f1680108c13cb1517f1e2ddf4010105256cd8d695fd5959b28f36bcf26095d84753d6eb99b14ca803e0"
    "dcefc4174cb7e9a28e2946b4450a4138c31a6f5b9662a63ebafbc8d40c2f82cf2d996b82c439aefc1e90ddfbe49522f7babf9653369d44"
    "9e2acf46353d4c9a093946fd0bc1fd7a5ef639b6eab7ce11dd3f55962eade2f8bef504869eb264d27e941aafd87245651440862eab2676"
    "f1a73e095c7f738bfb5ba5df6c3f07ff0203010001";
static const char rsa_sig[] =
    "0e0b8f59ac7365f9e42704f7d8dc5baec3f5f7a68d886d6d026005665ce96ce005dc49d9bcfb3e5bac4ef0439b213c7e77f64c2d80cf4a"
    "fa2f29ba1d5c49e7628a933d524dd57f5d54de4c46091d5cf11d4195e2717a4b03008d1265d01f44c700cd5763d10ecdd75709828ae66b"
    "21dc2ecab24c39ea07b3e10f1c60e91bccc5b609f7c43baa1afcbf8320bdde4cd3e831b8c991771ddb837be1f5c71cc5221ab109cb8ed9"
    "09e31a0c5da2116cc03eaa4bd6f5c7c1244b8497c8cc57d060f6e12b2301b2fb1bc23028a40ac2db608fa283a72f5b211f0c42764db1ea"
    "d927f91605e6407f81c7c1a17b2bd21b14172d41037f5cc0008d0a26a3b034b35a618720";
/* RSA 1024: valid signature, but go-libp2p (and we) refuse keys under 2048 bits */
static const char rsa1k_spki[] =
    "30819f300d06092a864886f70d010101050003818d0030818902818100ae344e127ca53c9af09b7cf25a6b6f7f4e326a5010c0d1a1bcb2"
    "3b1af7ba755ec78e42043b7f747ff143be26d418fc44477c20960d4908b68a85f2e821742d3c88b57663b04f167e15da54f735fc81e719"
    "959ada46b305561f24968e1ece66e4c79f4268ab0a1d1f490bf7a930bbc5448648e9bcaaa0d8850bdb49f7b3081cf30203010001";
static const char rsa1k_sig[] =
    "a8da94ca5340e0b84585d643220bc1013e5f1fda4afa1e9c81e329f012351d6117d1d5e9956d6a6cc42a1434efaa9e9328fcf33d0a5dcb"
    "e463710b89b0b3350f31f5537e631d2f5b9e86b9d7c29d1ba5dff8488ce560507fbbedd5f671b2898923f94be5df44b5ab3a7f9327ad89"
    "7eef7167fa619d664191f0264eedc55287f2";
/* openssl genpkey EC P-256 / P-384; dgst -sha256 -sign (DER signatures) */
static const char p256_spki[] =
    "3059301306072a8648ce3d020106082a8648ce3d0301070342000485b4a10dfdd867536b91f7433d3a3e6501673c2be2d6aebf5931326b"
    "7480cf82c64fda91f6332bf9ceeb86d44842724e56d8189625ea04f084361439a4a3b9b2";
static const char p256_sig[] = "304502203713dc5b9fefb8c8d5accc3deb175326ce0137194e1946629356b2291d1941a8022100e9eeea0b1e"
                               "403bad7773aedd816fb7121d80fe2ca8fd33f6b7937370926358a3";
static const char p384_spki[] =
    "3076301006072a8648ce3d020106052b8104002203620004de2243f446f939ece939a07ff0bed39cad54744dce70a00e69bfec87c5dbd0"
    "3265c8bed5d598d95ca93e1a90d6ca1ae0495e079763eb6b7c5e4b9b39f5cc0625818630ff141b3e41f72fd3555c391c32fc0c9e56ffa8"
    "57692e9cc7e6ee49b095";
static const char p384_sig[] = "306602310086d93a999bc0aa888cc95a57fe599e35657332a54bef6ad84b8f8b610e2097c0c123e9b5a82cc7"
                               "ee6c33d983d6f42828023100ac69da95c43b8d70e14ef2677fe071661901b8bfe29b1d4ba20b64734f4b4c58"
                               "92c91f6f6bc57ac9668f2ed1b8ddb8c9";
/* openssl EC secp256k1, compressed public key; the low-S and high-S (n - s) forms of one signature */
static const char k1_pub[] = "02f0ae67512518bc0b4903a41c940434b9c761e714d9d59490a96e90e73c676486";
static const char k1_sig_low[] = "30440220727d37a57368a877318d4c88d72dc0d9234bd659591557fec7522a332ccb654102205ef513a55e"
                                 "803fdb648ff39899e3831c43798ef4f19e01ab71337c583580cbfd";
static const char k1_sig_high[] = "30450220727d37a57368a877318d4c88d72dc0d9234bd659591557fec7522a332ccb6541022100a10aec5a"
                                  "a17fc0249b700c67661c7ce277354df1bdaa9e904e9ee2349ab57544";

/* PublicKey{Type, Data} from hex key bytes; returns the protobuf length */
static size_t make_pubkey(int type, const char *hex, uint8_t *out) {
    uint8_t data[1100];
    size_t n = t_unhex(hex, data), o = 0;
    out[o++] = 0x08, out[o++] = (uint8_t)type, out[o++] = 0x12;
    o += lp2p__uvarint_put(out + o, n);
    memcpy(out + o, data, n);
    return o + n;
}

static int verify_hex(int type, const char *key, const char *sig_hex, const char *msg) {
    uint8_t pb[1200], sig[600];
    size_t n = make_pubkey(type, key, pb), sl = t_unhex(sig_hex, sig);
    return lp2p__pubkey_verify(pb, n, msg, strlen(msg), sig, sl);
}

static void test_key_verify(void) {
    TEST("RSA-2048 PKCS#1 v1.5 SHA-256 (openssl signature) accepted; tampering rejected");
    uint8_t pb[1200], sig[600], der[600];
    CHECK_EQ(verify_hex(LP2P__KEY_RSA, rsa_spki, rsa_sig, MSG), LP2P_OK);
    CHECK_EQ(verify_hex(LP2P__KEY_RSA, rsa_spki, rsa_sig, MSG "!"), LP2P_ERR_HANDSHAKE);
    size_t n = make_pubkey(LP2P__KEY_RSA, rsa_spki, pb), sl = t_unhex(rsa_sig, sig);
    sig[100] ^= 4;
    CHECK_EQ(lp2p__pubkey_verify(pb, n, MSG, strlen(MSG), sig, sl), LP2P_ERR_HANDSHAKE);
    sig[100] ^= 4;
    CHECK_EQ(lp2p__pubkey_verify(pb, n, MSG, strlen(MSG), sig, sl - 1), LP2P_ERR_HANDSHAKE);
    CHECK_EQ(lp2p__pubkey_verify(pb, n, MSG, strlen(MSG), NULL, 0), LP2P_ERR_HANDSHAKE);
    CHECK_EQ(verify_hex(LP2P__KEY_RSA, rsa1k_spki, rsa1k_sig, MSG), LP2P_ERR_PROTOCOL); /* < 2048 bits */
    TEST("RSA: malformed PKIX DER rejected");
    size_t dl = t_unhex(rsa_spki, der);
    for (size_t cut = 0; cut < dl; cut += 13) /* every truncation is malformed */
        CHECK_EQ(lp2p__rsa_verify(der, cut, MSG, strlen(MSG), sig, sl), LP2P_ERR_PROTOCOL);
    der[1] = 0x83; /* 3 length bytes: not accepted */
    CHECK_EQ(lp2p__rsa_verify(der, dl, MSG, strlen(MSG), sig, sl), LP2P_ERR_PROTOCOL);
    t_unhex(rsa_spki, der);
    der[dl - 6] = 0x82; /* exponent INTEGER made negative-looking/longer: inconsistent */
    CHECK(lp2p__rsa_verify(der, dl, MSG, strlen(MSG), sig, sl) != LP2P_OK);
    t_unhex(rsa_spki, der);
    der[8] = 0x0b; /* other algorithm OID (sha256WithRSAEncryption) */
    CHECK_EQ(lp2p__rsa_verify(der, dl, MSG, strlen(MSG), sig, sl), LP2P_ERR_UNSUPPORTED);
    t_unhex(rsa_spki, der);
    CHECK_EQ(lp2p__rsa_verify(der, dl, MSG, strlen(MSG), sig, sl), LP2P_OK);
    uint8_t longer[700];
    memcpy(longer, der, dl), longer[dl] = 0; /* trailing garbage after the SEQUENCE */
    CHECK_EQ(lp2p__rsa_verify(longer, dl + 1, MSG, strlen(MSG), sig, sl), LP2P_ERR_PROTOCOL);

    TEST("ECDSA P-256 / P-384 with SHA-256 (openssl signatures); tampering rejected");
    CHECK_EQ(verify_hex(LP2P__KEY_ECDSA, p256_spki, p256_sig, MSG), LP2P_OK);
    CHECK_EQ(verify_hex(LP2P__KEY_ECDSA, p256_spki, p256_sig, "other"), LP2P_ERR_HANDSHAKE);
    CHECK_EQ(verify_hex(LP2P__KEY_ECDSA, p384_spki, p384_sig, MSG), LP2P_OK);
    CHECK_EQ(verify_hex(LP2P__KEY_ECDSA, p256_spki, p384_sig, MSG), LP2P_ERR_HANDSHAKE);
    n = make_pubkey(LP2P__KEY_ECDSA, p256_spki, pb), sl = t_unhex(p256_sig, sig);
    sig[sl - 1] ^= 1;
    CHECK_EQ(lp2p__pubkey_verify(pb, n, MSG, strlen(MSG), sig, sl), LP2P_ERR_HANDSHAKE);
    CHECK_EQ(lp2p__pubkey_verify(pb, n, MSG, strlen(MSG), sig, 3), LP2P_ERR_HANDSHAKE);
    dl = t_unhex(p256_spki, der);
    der[26] = 0x02; /* compressed point marker: go's x509 refuses it too */
    CHECK_EQ(lp2p__ecdsa_verify(der, dl, MSG, strlen(MSG), sig, sl), LP2P_ERR_PROTOCOL);
    t_unhex(p256_spki, der);
    der[22] = 0x08; /* curve OID 1.2.840.10045.3.1.8: unknown curve */
    CHECK_EQ(lp2p__ecdsa_verify(der, dl, MSG, strlen(MSG), sig, sl), LP2P_ERR_UNSUPPORTED);
    CHECK_EQ(verify_hex(LP2P__KEY_ECDSA, rsa_spki, rsa_sig, MSG), LP2P_ERR_UNSUPPORTED); /* RSA key as ECDSA */
    CHECK_EQ(verify_hex(LP2P__KEY_RSA, p256_spki, p256_sig, MSG), LP2P_ERR_UNSUPPORTED);

    TEST("secp256k1: low-S and high-S accepted when compiled in, else ERR_UNSUPPORTED");
#if LP2P_ENABLE_SECP256K1
    CHECK_EQ(verify_hex(LP2P__KEY_SECP256K1, k1_pub, k1_sig_low, MSG), LP2P_OK);
    CHECK_EQ(verify_hex(LP2P__KEY_SECP256K1, k1_pub, k1_sig_high, MSG), LP2P_OK);
    CHECK_EQ(verify_hex(LP2P__KEY_SECP256K1, k1_pub, k1_sig_low, "other"), LP2P_ERR_HANDSHAKE);
    CHECK_EQ(verify_hex(LP2P__KEY_SECP256K1, k1_pub, "3000", MSG), LP2P_ERR_HANDSHAKE);
    CHECK_EQ(verify_hex(LP2P__KEY_SECP256K1, "05f0ae67512518bc0b4903a41c940434b9c761e714d9d59490a96e90e73c676486",
                        k1_sig_low, MSG),
             LP2P_ERR_PROTOCOL);
#else
    CHECK_EQ(verify_hex(LP2P__KEY_SECP256K1, k1_pub, k1_sig_low, MSG), LP2P_ERR_UNSUPPORTED);
    (void)k1_sig_high;
#endif

    TEST("Ed25519 through the PublicKey protobuf; malformed and unknown keys");
    CHECK_EQ(verify_hex(LP2P__KEY_ED25519, "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
                        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b"
                        "2eaeb4302aeeb00d291612bb0c00",
                        "r"),
             LP2P_OK);
    CHECK_EQ(verify_hex(LP2P__KEY_ED25519, "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
                        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b"
                        "2eaeb4302aeeb00d291612bb0c00",
                        "s"),
             LP2P_ERR_HANDSHAKE);
    CHECK_EQ(verify_hex(LP2P__KEY_ED25519, "3d40", "00", "r"), LP2P_ERR_PROTOCOL); /* short key */
    CHECK_EQ(verify_hex(7, "3d40", "00", "r"), LP2P_ERR_UNSUPPORTED);
    const uint8_t no_data[] = {0x08, 0x01};
    CHECK_EQ(lp2p__pubkey_verify(no_data, sizeof no_data, "r", 1, sig, 64), LP2P_ERR_PROTOCOL);
    const uint8_t garbage[] = {0xff, 0xff, 0xff};
    CHECK_EQ(lp2p__pubkey_verify(garbage, sizeof garbage, "r", 1, sig, 64), LP2P_ERR_PROTOCOL);
    CHECK_EQ(lp2p__pubkey_verify(pb, 0, "r", 1, sig, 64), LP2P_ERR_PROTOCOL);
    CHECK_EQ(lp2p__pubkey_verify(pb, LP2P__PUBKEY_MAX + 1, "r", 1, sig, 64), LP2P_ERR_PROTOCOL);
}

/* peer-ids/peer-ids.md "Test vectors": public keys; expected IDs computed independently (python)
 * and also found in other libp2p implementations' tests */
static const char spec_ecdsa_pub[] =
    "0803125b3059301306072a8648ce3d020106082a8648ce3d03010703420004de3d300fa36ae0e8f5d530899d83abab44abf3161f162a4b"
    "c901d8e6ecda020e8b6d5f8da30525e71d6851510c098e5c47c646a597fb4dcec034e9f77c409e62";
static const char spec_ed25519_pub[] = "080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e";
static const char spec_ed25519_priv[] = "080112407e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d1ed1e8fa"
                                        "e2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e";
static const char spec_secp256k1_pub[] = "08021221037777e994e452c21604f91de093ce415f5432f701dd8cd1a7a6fea0e630bfca99";
static const char spec_rsa_pub[] =
    "080012a60430820222300d06092a864886f70d01010105000382020f003082020a0282020100e1beab071d08200bde24eef00d049449b0"
    "7770ff9910257b2d7d5dda242ce8f0e2f12e1af4b32d9efd2c090f66b0f29986dbb645dae9880089704a94e5066d594162ae6ee8892e6e"
    "c70701db0a6c445c04778eb3de1293aa1a23c3825b85c6620a2bc3f82f9b0c309bc0ab3aeb1873282bebd3da03c33e76c21e9beb172fd4"
    "4c9e43be32e2c99827033cf8d0f0c606f4579326c930eb4e854395ad941256542c793902185153c474bed109d6ff5141ebf9cd256cf588"
    "93a37f83729f97e7cb435ec679d2e33901d27bb35aa0d7e20561da08885ef0abbf8e2fb48d6a5487047a9ecb1ad41fa7ed84f6e3e8ecd5"
    "d98b3982d2a901b4454991766da295ab78822add5612a2df83bcee814cf50973e80d7ef38111b1bd87da2ae92438a2c8cbcc70b31ee319"
    "939a3b9c761dbc13b5c086d6b64bf7ae7dacc14622375d92a8ff9af7eb962162bbddebf90acb32adb5e4e4029f1c96019949ecfbfeffd7"
    "ac1e3fbcc6b6168c34be3d5a2e5999fcbb39bba7adbca78eab09b9bc39f7fa4b93411f4cc175e70c0a083e96bfaefb04a9580b4753c173"
    "8a6a760ae1afd851a1a4bdad231cf56e9284d832483df215a46c1c21bdf0c6cfe951c18f1ee4078c79c13d63edb6e14feaeffabc90ad31"
    "7e4875fe648101b0864097e998f0ca3025ef9638cd2b0caecd3770ab54a1d9c6ca959b0f5dcbc90caeefc4135baca6fd475224269bbe1b"
    "0203010001";

static void check_key_id(const char *pub_hex, const char *b58, const char *cid) {
    uint8_t pb[700];
    char s[LP2P_PEER_ID_STRLEN];
    lp2p_peer_id id, p1, p2;
    size_t n = t_unhex(pub_hex, pb);
    CHECK_EQ(lp2p__peer_id_from_pubkey(pb, n, &id), LP2P_OK);
    CHECK_EQ(lp2p_peer_id_str(&id, s, sizeof s), LP2P_OK);
    CHECK_STR(s, b58);
    CHECK_EQ(lp2p_peer_id_parse(b58, &p1), LP2P_OK);
    CHECK_EQ(lp2p_peer_id_parse(cid, &p2), LP2P_OK);
    CHECK(lp2p_peer_id_eq(&id, &p1));
    CHECK(lp2p_peer_id_eq(&id, &p2));
}

static void test_peer_ids(void) {
    TEST("peer IDs of the peer-ids.md test-vector keys (RSA, Ed25519, secp256k1, ECDSA)");
    check_key_id(spec_ecdsa_pub, "QmVMT29id3TUASyfZZ6k9hmNyc2nYabCo4uMSpDw4zrgDk",
                 "bafzbeidigywdclqvl5hxfefwp5onbffcfife7pza57mmfb4tiqmtkdjw64");
    check_key_id(spec_ed25519_pub, "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq",
                 "bafzaajaiaejcahwr5d5ofrfbis4l5d6uwr57hu5tjodrypfm6yaq6dsc2r2pzyt6");
    check_key_id(spec_secp256k1_pub, "16Uiu2HAmLhLvBoYaoZfaMUKuibM6ac163GwKY74c5kiSLg5KvLpY",
                 "bafzaajiiaijcca3xo7uzjzcsyilaj6i54cj44qk7kqzpoao5rti2pjx6udtdbp6kte");
    check_key_id(spec_rsa_pub, "QmaeANgBs1DTSxWSrPPtobgQuxW8XTfsS4ydbK4rCHzqxG",
                 "bafzbeifwzcumbiyql7bhv7fe7mixg6i7aohegq75k234m63bnw6dbicmzu");

    TEST("Ed25519 identity from the spec's private key and from fixed seeds");
    lp2p__identity idn;
    uint8_t priv[80], pub[40], seed[32];
    char s[LP2P_PEER_ID_STRLEN];
    t_unhex(spec_ed25519_priv, priv);
    t_unhex(spec_ed25519_pub, pub);
    lp2p__identity_from_seed(&idn, priv + 4); /* Data = 32-byte seed || 32-byte public key */
    CHECK_MEM(idn.pubkey_pb, pub, 36);
    CHECK_MEM(idn.sk, priv + 4, 64);
    static const struct {
        uint8_t fill;
        const char *id;
    } seeds[] = {{0x00, "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"},
                 {0xff, "12D3KooWA4Xop1JaT3MHxwYMkCepYsv4iPVopMXwCz5iHYdBfeSB"}, /* 0xff: 00 01 .. 1f */
                 {0xaa, "12D3KooWRNu9R82AP62eXkL4qwc7FPoGeP7v6vKRGJAD2QFTGXmq"},
                 {0xbb, "12D3KooWJFgXQJVGPW7kYeBA9XTpundbPmaHwX75KU1WSHDMGdSq"}};
    for (size_t i = 0; i < LP2P__COUNT(seeds); i++) {
        for (int j = 0; j < 32; j++) seed[j] = seeds[i].fill == 0xff ? (uint8_t)j : seeds[i].fill;
        lp2p__identity_from_seed(&idn, seed);
        CHECK_EQ(lp2p_peer_id_str(&idn.id, s, sizeof s), LP2P_OK);
        CHECK_STR(s, seeds[i].id);
        lp2p_peer_id again;
        CHECK_EQ(lp2p__peer_id_from_pubkey(idn.pubkey_pb, 36, &again), LP2P_OK);
        CHECK(lp2p_peer_id_eq(&again, &idn.id));
    }
    memset(seed, 0, 32);
    lp2p__identity_from_seed(&idn, seed);
    UNHEX(pb0, "080112203b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29");
    CHECK_MEM(idn.pubkey_pb, pb0, 36);
    CHECK_EQ(idn.id.len, 38);
    const uint8_t *kp = NULL;
    size_t kl = 0;
    CHECK_EQ(lp2p__peer_id_pubkey(&idn.id, &kp, &kl), LP2P_OK);
    CHECK(kl == 36 && memcmp(kp, pb0, 36) == 0);
    uint8_t sig[64];
    lp2p__identity_sign(&idn, "hi", 2, sig);
    CHECK_EQ(lp2p__pubkey_verify(kp, kl, "hi", 2, sig, 64), LP2P_OK);

    TEST("text forms: CIDv1 base32 / base58 round trips, upper case, str buffer sizes");
    lp2p_peer_id id;
    const char *ed0 = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN";
    CHECK_EQ(lp2p_peer_id_parse("bafzaajaiaejcao3ke66m5nvefvrkhkgqfjxq243fgikxohpciotdvqciugfvtwrj", &id), LP2P_OK);
    CHECK(lp2p_peer_id_eq(&id, &idn.id));
    CHECK_EQ(lp2p_peer_id_parse("BAFZAAJAIAEJCAO3KE66M5NVEFVRKHKGQFJXQ243FGIKXOHPCIOTDVQCIUGFVTWRJ", &id), LP2P_OK);
    CHECK(lp2p_peer_id_eq(&id, &idn.id));
    CHECK_EQ(lp2p_peer_id_parse("z5AanNVJCxnJqKC3batZBdpMCpLX9Uea96wKjcfFnuvfnzoJaWxBDex", &id), LP2P_OK);
    CHECK(lp2p_peer_id_eq(&id, &idn.id));
    CHECK_EQ(lp2p_peer_id_parse(ed0, &id), LP2P_OK);
    CHECK(lp2p_peer_id_eq(&id, &idn.id));
    CHECK_EQ(lp2p_peer_id_str(&id, s, strlen(ed0)), LP2P_ERR_INVALID); /* no room for the NUL */
    CHECK_EQ(lp2p_peer_id_str(&id, s, strlen(ed0) + 1), LP2P_OK);
    CHECK_STR(s, ed0);
    CHECK(!lp2p_peer_id_eq(&id, NULL));
    lp2p_peer_id qm;
    CHECK_EQ(lp2p_peer_id_parse("QmaeANgBs1DTSxWSrPPtobgQuxW8XTfsS4ydbK4rCHzqxG", &qm), LP2P_OK);
    CHECK(!lp2p_peer_id_eq(&id, &qm));
    CHECK_EQ(lp2p__peer_id_pubkey(&qm, &kp, &kl), LP2P_ERR_NOTFOUND);

    TEST("text forms: invalid peer IDs rejected with ERR_BADADDR, out untouched");
    static const char *const bad[] = {
        "",
        "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXT0",  /* '0' not base58 */
        "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXT",   /* truncated */
        "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTNN", /* one char more */
        " 12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN",
        "QmaeANgBs1DTSxWSrPPtobgQuxW8XTfsS4ydbK4rCHzqx",
        "bafyaajaiaejcao3ke66m5nvefvrkhkgqfjxq243fgikxohpciotdvqciugfvtwrj", /* codec dag-pb 0x70 */
        "babzaajaiaejcao3ke66m5nvefvrkhkgqfjxq243fgikxohpciotdvqciugfvtwrj", /* CID version 0 */
        "8VsnXyGnRwJpnrQXB8KcLstvgFYGZ2f5BCm3DVndcNZ8NswtkCqsut69e7yd1FKNtettjgy669GNVt8VSTGxkAiJaB", /* sha2-512 */
        "f01720024080112203b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29", /* base16: not taken */
        "bafz",
        "z",
        "hello",
    };
    lp2p_peer_id untouched = id;
    for (size_t i = 0; i < LP2P__COUNT(bad); i++) {
        int rc = lp2p_peer_id_parse(bad[i], &id);
        if (rc != LP2P_ERR_BADADDR) fprintf(stderr, "  accepted or wrong error for \"%s\": %d\n", bad[i], rc);
        CHECK_EQ(rc, LP2P_ERR_BADADDR);
    }
    CHECK(lp2p_peer_id_eq(&id, &untouched));
    char longs[300];
    memset(longs, '1', sizeof longs - 1), longs[sizeof longs - 1] = 0;
    CHECK_EQ(lp2p_peer_id_parse(longs, &id), LP2P_ERR_BADADDR);
    CHECK_EQ(lp2p_peer_id_parse(NULL, &id), LP2P_ERR_INVALID);
    CHECK_EQ(lp2p_peer_id_parse(ed0, NULL), LP2P_ERR_INVALID);

    TEST("binary peer IDs: multihash validation");
    uint8_t mh[64] = {0x12, 0x20};
    CHECK_EQ(lp2p__peer_id_from_bytes(mh, 34, &id), LP2P_OK);
    CHECK_EQ(lp2p__peer_id_from_bytes(mh, 33, &id), LP2P_ERR_BADADDR);
    mh[1] = 0x21;
    CHECK_EQ(lp2p__peer_id_from_bytes(mh, 35, &id), LP2P_ERR_BADADDR);
    mh[0] = 0x00, mh[1] = 42;
    CHECK_EQ(lp2p__peer_id_from_bytes(mh, 44, &id), LP2P_OK);
    mh[1] = 43; /* identity over 42 bytes */
    CHECK_EQ(lp2p__peer_id_from_bytes(mh, 45, &id), LP2P_ERR_BADADDR);
    mh[1] = 0;
    CHECK_EQ(lp2p__peer_id_from_bytes(mh, 2, &id), LP2P_ERR_BADADDR);
    mh[0] = 0x13, mh[1] = 0x40;
    CHECK_EQ(lp2p__peer_id_from_bytes(mh, 66, &id), LP2P_ERR_BADADDR);

    TEST("peer ID from a non-canonical key encoding equals the canonical one (as go)");
    uint8_t rev[40] = {0x12, 0x20};
    memcpy(rev + 2, pb0 + 4, 32);
    rev[34] = 0x08, rev[35] = 0x01; /* Data before Type */
    CHECK_EQ(lp2p__peer_id_from_pubkey(rev, 36, &id), LP2P_OK);
    CHECK(lp2p_peer_id_eq(&id, &idn.id));
    CHECK_EQ(lp2p__peer_id_from_pubkey(rev, 34, &id), LP2P_ERR_PROTOCOL); /* Type missing */
    rev[35] = 0x09;
    CHECK_EQ(lp2p__peer_id_from_pubkey(rev, 36, &id), LP2P_ERR_UNSUPPORTED);

    TEST("lp2p_identity_generate");
    uint8_t s1[32], s2[32];
    CHECK_EQ(lp2p_identity_generate(s1), LP2P_OK);
    CHECK_EQ(lp2p_identity_generate(s2), LP2P_OK);
    CHECK(memcmp(s1, s2, 32) != 0);
    CHECK_EQ(lp2p_identity_generate(NULL), LP2P_ERR_INVALID);
}

static void test_envelope(void) {
    static const char *dom = "libp2p-peer-record";
    static const uint8_t type[2] = {0x03, 0x01};
    TEST("envelope: seal with seed 00x32 matches an independent (python) encoding; open round trip");
    /* python: Envelope{public_key, payload_type 0301, payload "hello", Ed25519 signature over
     * uvarint-prefixed domain || type || payload} */
    UNHEX(want, "0a24080112203b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29120203011a0568656c6c6f2a40eb51c7a8"
                "cadeb62c2ec53d25f3512ce5be39b8921f0ace7e1febd0a51254b257e2854d92cf1582fc6aa08af627980e34ae03220bee0abe3531"
                "6969423fc62202");
    lp2p__identity idn;
    uint8_t seed[32] = {0}, env[600];
    lp2p__identity_from_seed(&idn, seed);
    ptrdiff_t n = lp2p__envelope_seal(&idn, dom, type, 2, (const uint8_t *)"hello", 5, env, sizeof env);
    CHECK_EQ(n, want_len);
    CHECK_MEM(env, want, want_len);
    const uint8_t *pl;
    size_t pll;
    lp2p_peer_id signer;
    CHECK_EQ(lp2p__envelope_open(env, (size_t)n, dom, type, 2, &pl, &pll, &signer), LP2P_OK);
    CHECK(pll == 5 && memcmp(pl, "hello", 5) == 0 && pl > env && pl < env + n);
    CHECK(lp2p_peer_id_eq(&signer, &idn.id));

    TEST("envelope: RSA-signed envelope (python + the openssl RSA-2048 key) opens, signer Qm...");
    UNHEX(rsaenv,
          "0aab02080012a60230820122300d06092a864886f70d01010105000382010f003082010a0282010100b0dfb982bc0c117a90439c2e0e6e"
          "21de249dae851762658e3591cc4b8d478cb2eaeeae6a93b1e822ceb0073c3c7dd39ba22202f7bacc1904c98e48b3395eced2eb6b08f3ce"
          "9d39f2879146e3d3be948d8abed23b7bd827cf3f1680108c13cb1517f1e2ddf4010105256cd8d695fd5959b28f36bcf26095d84753d6eb"
          "99b14ca803e0dcefc4174cb7e9a28e2946b4450a4138c31a6f5b9662a63ebafbc8d40c2f82cf2d996b82c439aefc1e90ddfbe49522f7ba"
          "bf9653369d449e2acf46353d4c9a093946fd0bc1fd7a5ef639b6eab7ce11dd3f55962eade2f8bef504869eb264d27e941aafd872456514"
          "40862eab2676f1a73e095c7f738bfb5ba5df6c3f07ff0203010001120203011a12727361207369676e6564207061796c6f61642a800284"
          "cc3693d07bcff95edc23b340c5a8b1ec4bef78f25ef9016f852d7a24c58acd167624058ed1783ba2acb8dbf8ba665b47847360644acd45"
          "090fdd3674552d70f40f0ef7f5bb7498ead692e67cc67e2a648924165316a42de14f3a26550619422c35b9f0b127cbbf63d7cdc427d87e"
          "a314516067ce0cfd0d7a5897b8ff0f0deafdbe37dd95b2d90220d88305f991c1cd3824a2543168ef5f7bb74a2f8cdcd15256c2e2c473f6"
          "6fefb74465ad002a105a9e705e3771c91e4071c05261afd29e05efe57e4830e2b308d67e6730a875b116f8eb5f4583f71a1c419b0ee9ee"
          "b9f154646ec37554fdef5816652dacf0d95a0259f340dd8b4a00c02b033ce9731e8ce9");
    CHECK_EQ(lp2p__envelope_open(rsaenv, rsaenv_len, dom, type, 2, &pl, &pll, &signer), LP2P_OK);
    CHECK(pll == 18 && memcmp(pl, "rsa signed payload", 18) == 0);
    char s[LP2P_PEER_ID_STRLEN];
    CHECK_EQ(lp2p_peer_id_str(&signer, s, sizeof s), LP2P_OK);
    CHECK_STR(s, "QmZd8NmDJafKshisYfW9jB57PQBq7Wq4dxFYRE3NFMTGFk");
    rsaenv[rsaenv_len - 100] ^= 1;
    CHECK_EQ(lp2p__envelope_open(rsaenv, rsaenv_len, dom, type, 2, &pl, &pll, &signer), LP2P_ERR_HANDSHAKE);

    TEST("envelope: tampering, wrong domain/type, truncation, limits");
    lp2p_peer_id untouched = signer;
    for (ptrdiff_t i = 0; i < n; i++) { /* flipping any byte must never yield an accepted envelope */
        env[i] ^= 0x01;
        int rc = lp2p__envelope_open(env, (size_t)n, dom, type, 2, &pl, &pll, &signer);
        env[i] ^= 0x01;
        if (rc == LP2P_OK) fprintf(stderr, "  accepted with byte %d flipped\n", (int)i);
        CHECK(rc != LP2P_OK);
    }
    CHECK(lp2p_peer_id_eq(&signer, &untouched));
    CHECK_EQ(lp2p__envelope_open(env, (size_t)n, "libp2p-relay-rsvp", type, 2, &pl, &pll, &signer),
             LP2P_ERR_HANDSHAKE);
    const uint8_t rsvp[2] = {0x03, 0x02};
    CHECK_EQ(lp2p__envelope_open(env, (size_t)n, dom, rsvp, 2, &pl, &pll, &signer), LP2P_ERR_PROTOCOL);
    for (ptrdiff_t cut = 0; cut < n; cut++)
        CHECK(lp2p__envelope_open(env, (size_t)cut, dom, type, 2, &pl, &pll, &signer) != LP2P_OK);
    CHECK_EQ(lp2p__envelope_open(env, (size_t)n - 66, dom, type, 2, &pl, &pll, &signer), LP2P_ERR_HANDSHAKE);
    CHECK_EQ(lp2p__envelope_open(env + 38, (size_t)n - 38, dom, type, 2, &pl, &pll, &signer), LP2P_ERR_PROTOCOL);
    static uint8_t big[LP2P__ENVELOPE_MAX + 1];
    CHECK_EQ(lp2p__envelope_open(big, sizeof big, dom, type, 2, &pl, &pll, &signer), LP2P_ERR_MSGSIZE);
    CHECK_EQ(lp2p__envelope_seal(&idn, dom, type, 2, (const uint8_t *)"hello", 5, env, (size_t)n - 1),
             LP2P_ERR_MSGSIZE);
    CHECK_EQ(lp2p__envelope_seal(&idn, dom, type, 2, (const uint8_t *)"hello", 5, env, 10), LP2P_ERR_MSGSIZE);
    CHECK_EQ(lp2p__envelope_seal(&idn, "", type, 2, (const uint8_t *)"hello", 5, env, sizeof env), LP2P_ERR_INVALID);
    CHECK_EQ(lp2p__envelope_seal(&idn, dom, type, 0, (const uint8_t *)"hello", 5, env, sizeof env), LP2P_ERR_INVALID);

    TEST("envelope: large payload and empty payload round trips");
    static uint8_t payload[3800], out[LP2P__ENVELOPE_MAX];
    for (size_t i = 0; i < sizeof payload; i++) payload[i] = (uint8_t)(i * 31);
    n = lp2p__envelope_seal(&idn, dom, type, 2, payload, sizeof payload, out, sizeof out);
    CHECK(n > 0);
    CHECK_EQ(lp2p__envelope_open(out, (size_t)n, dom, type, 2, &pl, &pll, &signer), LP2P_OK);
    CHECK(pll == sizeof payload && memcmp(pl, payload, pll) == 0);
    n = lp2p__envelope_seal(&idn, dom, type, 2, NULL, 0, out, sizeof out);
    CHECK(n > 0);
    CHECK_EQ(lp2p__envelope_open(out, (size_t)n, dom, type, 2, &pl, &pll, &signer), LP2P_OK);
    CHECK_EQ(pll, 0);
}

int main(void) {
    CHECK_EQ(lp2p__crypto_init(), LP2P_OK);
    CHECK_EQ(lp2p__crypto_init(), LP2P_OK);
    test_base58();
    test_base32_hex();
    test_sha256_hkdf();
    test_x25519();
    test_ed25519();
    test_aead();
    test_key_verify();
    test_peer_ids();
    test_envelope();
    TEST_END();
}
