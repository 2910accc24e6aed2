// tu_cpp.cpp - compile test: a C++17 TU that includes libp2p.h without the implementation
// (extern "C" declarations, no C-only constructs in the public half of the header).
#include "libp2p.h"

#include <cstring>
#include <string>

extern "C" size_t compile_tu_cpp_sizes(size_t out[5]);
extern "C" int compile_tu_cpp_check(void);

size_t compile_tu_cpp_sizes(size_t out[5]) {
    out[0] = sizeof(lp2p_config), out[1] = sizeof(lp2p_event), out[2] = sizeof(lp2p_peer_id);
    out[3] = sizeof(lp2p_peer_info), out[4] = sizeof(lp2p_task);
    return 5;
}

int compile_tu_cpp_check(void) {
    lp2p_config cfg{};                       // value-initialised = all defaults
    cfg.log_level = LP2P_LOG_WARN;
    lp2p_task none{};
    std::string text = lp2p_strerror(LP2P_ERR_CANCELED);
    if (text.empty() || none.id != 0 || cfg.max_connections != 0) return 1;
    constexpr int64_t forever = LP2P_FOREVER;
    if (lp2p_deadline_in(-1) != forever) return 2;
    lp2p_handler_fn fn = [](lp2p_stream *, void *) {}; // captureless lambdas convert to handlers
    return fn ? 0 : 3;
}
