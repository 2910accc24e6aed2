/* test_base.c - L0: varints (incl. non-minimal rejection), buffers, errors, clock. */
#define LIBP2P_IMPLEMENTATION
#include "libp2p.h"
#include "tests/test.h"

static void test_varint(void) {
    TEST("varint round trip and known encodings");
    uint8_t b[16];
    uint64_t v;
    CHECK_EQ(lp2p__uvarint_put(b, 1), 1);
    CHECK_EQ(b[0], 1);
    CHECK_EQ(lp2p__uvarint_put(b, 300), 2);
    CHECK(b[0] == 0xac && b[1] == 0x02);
    CHECK_EQ(lp2p__uvarint_put(b, 421), 2); /* p2p multicodec = a5 03 */
    CHECK(b[0] == 0xa5 && b[1] == 0x03);
    CHECK_EQ(lp2p__uvarint_get(b, 2, &v), 2);
    CHECK_EQ(v, 421);
    CHECK_EQ(lp2p__uvarint_get(b, 1, &v), 0); /* needs more */
    uint64_t big = ((uint64_t)1 << 63) - 1;
    size_t n = lp2p__uvarint_put(b, big);
    CHECK_EQ(n, 9);
    CHECK_EQ(lp2p__uvarint_get(b, n, &v), 9);
    CHECK(v == big);
    TEST("varint rejects non-minimal and overlong");
    const uint8_t nonmin[] = {0x81, 0x00};
    CHECK_EQ(lp2p__uvarint_get(nonmin, 2, &v), LP2P_ERR_PROTOCOL);
    const uint8_t zero2[] = {0x80, 0x00};
    CHECK_EQ(lp2p__uvarint_get(zero2, 2, &v), LP2P_ERR_PROTOCOL);
    const uint8_t ten[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
    CHECK_EQ(lp2p__uvarint_get(ten, 10, &v), LP2P_ERR_PROTOCOL);
}

static void test_misc(void) {
    TEST("errors, clock, buffers");
    CHECK_STR(lp2p_strerror(LP2P_ERR_TIMEOUT), "deadline expired");
    CHECK_STR(lp2p_strerror(12345), "unknown error");
    CHECK(lp2p_now() > 0);
    CHECK(lp2p_deadline_in(-5) == LP2P_FOREVER);
    lp2p__ctx ctx;
    lp2p__ctx_init(&ctx, NULL, NULL, LP2P_LOG_DEFAULT);
    lp2p__buf b = {0};
    for (int i = 0; i < 1000; i++) CHECK_EQ(lp2p__buf_append(&ctx, &b, "abc", 3), LP2P_OK);
    CHECK_EQ(b.len, 3000);
    lp2p__buf_consume(&b, 2998);
    CHECK(b.len == 2 && b.p[0] == 'b');
    lp2p__buf_free(&ctx, &b);
}

int main(void) {
    test_varint();
    test_misc();
    TEST_END();
}
