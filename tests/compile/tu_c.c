/* tu_c.c - compile test: a C TU that includes libp2p.h without the implementation.
 * Built as C99 and C11 (gcc, clang) with -Wall -Wextra -Werror -pedantic. Reports the sizes
 * of the public structs so main() can check that every TU sees the same layout. */
#include "libp2p.h"

#include <string.h>

size_t compile_tu_c_sizes(size_t out[5]);
int compile_tu_c_check(void);

size_t compile_tu_c_sizes(size_t out[5]) {
    out[0] = sizeof(lp2p_config), out[1] = sizeof(lp2p_event), out[2] = sizeof(lp2p_peer_id);
    out[3] = sizeof(lp2p_peer_info), out[4] = sizeof(lp2p_task);
    return 5;
}

/* The declarations are usable from C99: zero-init config, error table, version. */
int compile_tu_c_check(void) {
    lp2p_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.listen_addrs[0] = "/ip4/127.0.0.1/tcp/0";
    if (strcmp(lp2p_strerror(LP2P_OK), "ok") != 0) return 1;
    if (strcmp(lp2p_strerror(LP2P_ERR_TIMEOUT), "deadline expired") != 0) return 2;
    if (strncmp(lp2p_version(), LIBP2P_VERSION_STRING, strlen(LIBP2P_VERSION_STRING)) != 0) return 3;
    if (lp2p_deadline_in(-5) != LP2P_FOREVER || lp2p_now() <= 0) return 4;
    return 0;
}
