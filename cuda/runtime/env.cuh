/* env.cuh - launch switches from the environment, read once a process: every launch and every
 * session's scratch of the process then follow one rule (a recorded graph and an eager step
 * must agree), and the hot path pays one atomic load. */
#ifndef ORC_ENV_CUH
#define ORC_ENV_CUH

#include <limits.h> /* INT_MIN */
#include <stdlib.h> /* getenv */

#include <atomic>

/* parse(getenv(name)) (NULL when unset), cached in `slot`, which starts at INT_MIN. */
template <class Parse>
inline int orc_env_once(std::atomic<int> &slot, const char *name, Parse parse) {
    int v = slot.load(std::memory_order_acquire);
    if (v == INT_MIN) {
        v = parse(getenv(name));
        slot.store(v, std::memory_order_release);
    }
    return v;
}

#endif /* ORC_ENV_CUH */
