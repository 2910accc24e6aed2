/* impl.c - compile test: the implementation TU (LIBP2P_IMPLEMENTATION) and main().
 * Built as C11 and gnu11 (gcc, clang) with -Wall -Wextra -Werror, linked with tu_c.c (C99 or
 * C11), tu_cpp.cpp (C++17) and the generated api_table.c (every LP2P_API function). */
#define LIBP2P_IMPLEMENTATION
#include "libp2p.h"

#include <stdio.h>

size_t compile_tu_c_sizes(size_t out[5]);
int compile_tu_c_check(void);
size_t compile_tu_cpp_sizes(size_t out[5]);
int compile_tu_cpp_check(void);
extern const int compile_api_count;

int main(void) {
    size_t here[5] = {sizeof(lp2p_config), sizeof(lp2p_event), sizeof(lp2p_peer_id), sizeof(lp2p_peer_info),
                      sizeof(lp2p_task)};
    size_t c[5], cpp[5];
    compile_tu_c_sizes(c);
    compile_tu_cpp_sizes(cpp);
    for (int i = 0; i < 5; i++)
        if (c[i] != here[i] || cpp[i] != here[i]) {
            printf("struct %d: %zu bytes here, %zu in C, %zu in C++\n", i, here[i], c[i], cpp[i]);
            return 1;
        }
    int rc_c = compile_tu_c_check(), rc_cpp = compile_tu_cpp_check();
    if (rc_c || rc_cpp) {
        printf("checks failed: C %d, C++ %d\n", rc_c, rc_cpp);
        return 1;
    }
    printf("compile-test ok: %d public functions linked, %s\n", compile_api_count, lp2p_version());
    return 0;
}
