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

int main(void) {
    CHECK_EQ(lp2p__crypto_init(), LP2P_OK);
    CHECK_EQ(lp2p__crypto_init(), LP2P_OK);
    test_base58();
    test_base32_hex();
    test_sha256_hkdf();
    test_x25519();
    test_ed25519();
    test_aead();
    TEST_END();
}
