/* test.h - the tiny test harness every test binary uses.
 * CHECK counts a pass or prints the failing expression; TEST_END prints the binary's tally as
 * "RESULT <passed> <failed>" (tests/run sums these) and returns the exit status. */
#ifndef LP2P_TEST_H
#define LP2P_TEST_H
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

static int t_pass, t_fail;
#define CHECK(c)                                                                   \
    do {                                                                           \
        if (c) t_pass++;                                                           \
        else {                                                                     \
            t_fail++;                                                              \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c);   \
        }                                                                          \
    } while (0)
#define CHECK_EQ(a, b)                                                                                  \
    do {                                                                                                \
        long long t_a = (long long)(a), t_b = (long long)(b);                                           \
        if (t_a == t_b) t_pass++;                                                                       \
        else {                                                                                          \
            t_fail++;                                                                                   \
            fprintf(stderr, "%s:%d: CHECK_EQ failed: %s = %lld, %s = %lld\n", __FILE__, __LINE__, #a, t_a, #b, t_b); \
        }                                                                                               \
    } while (0)
#define CHECK_MEM(a, b, n) CHECK(memcmp((a), (b), (n)) == 0)
#define CHECK_STR(a, b) CHECK(strcmp((a), (b)) == 0)
#define TEST(name) fprintf(stderr, "-- %s\n", name)
#define TEST_END()                                              \
    do {                                                        \
        printf("RESULT %d %d\n", t_pass, t_fail);               \
        return t_fail ? 1 : 0;                                  \
    } while (0)

/* hex string -> bytes, returns length */
static inline size_t t_unhex(const char *hex, unsigned char *out) {
    size_t n = 0;
    while (hex[0] && hex[1]) {
        unsigned v;
        sscanf(hex, "%2x", &v);
        out[n++] = (unsigned char)v;
        hex += 2;
    }
    return n;
}
#endif
