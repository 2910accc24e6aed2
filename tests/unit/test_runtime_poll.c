/* test_runtime_poll.c - the runtime tests on the poll() poller (the non-Linux path). */
#define LP2P_POLLER_POLL 1
#include "test_runtime.c"
