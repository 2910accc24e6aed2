/* test_runtime_ucontext.c - the runtime tests on the ucontext context switch. */
#define LP2P_CORO_UCONTEXT 1
#include "test_runtime.c"
