/* emu_random.h - the emulator tests' random numbers: xorshift64*, seeded by each test with
 * EMU_SEED (defined before the include), uniform doubles in [0, 1) and standard normals. */
#ifndef ORC_EMU_RANDOM_H
#define ORC_EMU_RANDOM_H

#include <math.h>
#include <stdint.h>

static uint64_t rng_state = EMU_SEED;
static inline uint64_t rnd() {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}
static inline double unif() { return (double)(rnd() >> 11) * (1.0 / 9007199254740992.0); }
static inline float gauss() { /* Box-Muller, the two uniforms drawn in this order */
    const double u = unif() + 1e-12, v = unif();
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

#endif /* ORC_EMU_RANDOM_H */
