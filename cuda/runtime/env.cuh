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

/* An on/off switch: NAME=1 on, NAME=0 off, unset (or anything else) `dflt`. */
inline bool orc_env_switch(std::atomic<int> &slot, const char *name, bool dflt) {
    return orc_env_once(slot, name, [dflt](const char *e) {
        return e && (e[0] == '0' || e[0] == '1') ? e[0] - '0' : (int)dflt;
    }) != 0;
}

#endif /* ORC_ENV_CUH */
