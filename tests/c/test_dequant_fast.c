/* test_dequant_fast.c - the GPU whole-tile decoders (cuda/dequant/dequant_fast.cuh) against the
 * shared decoders (csrc/quant/quant_decode.h), on the host, bit for bit (any NaN for a NaN: a
 * NaN's payload and sign on x86 depend on how the compiler arranged the operands; on the
 * GPU every arithmetic NaN is the canonical one): every chunk of
 * random blocks (NaN, inf and subnormal scales included), all-zero, all-0xFF and
 * per-field edge blocks. Blocks sit in a 16-byte aligned buffer at multiples of the
 * type size, as in the kernels' shared-memory tile, and every load's alignment is
 * checked. Compiled and run by tests/test_dequant.py; prints "ok" or the first
 * mismatches. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int misaligned;
#define ORC_DQF_ALIGN_CHECK(p, a) (misaligned += ((uintptr_t)(p) % (a)) != 0)
#include "../../cuda/dequant/dequant_fast.cuh"

typedef void (*decode_fn)(const uint8_t *, int, float *);
typedef void (*fast_fn)(const uint8_t *, uint32_t, float *);

struct type_case {
    const char *name;
    decode_fn ref;
    fast_fn fast;
    int bs, ts;
};

#define CASE_REF(NAME, FN, BS, TS) {#NAME, FN, NULL, BS, TS},
static struct type_case cases[] = {ORC_QD_FOREACH_BLOCK_TYPE(CASE_REF)};
#define NCASES (int)(sizeof cases / sizeof cases[0])

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) { /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

enum { TILE_BLOCKS = 96, PAD = 16 };
static _Alignas(16) uint8_t tile[TILE_BLOCKS * 256 + PAD];

static int check_tile(const struct type_case *t, int nblocks, const char *what) {
    int bad = 0;
    for (int blk = 0; blk < nblocks; blk++) {
        const uint8_t *b = tile + (size_t)blk * (size_t)t->ts;
        for (int c = 0; c < t->bs / 8; c++) {
            float want[8], got[8];
            t->ref(b, c, want);
            t->fast(b, (uint32_t)c, got);
            int differ = 0;
            for (int k = 0; k < 8; k++) /* NaN payloads and signs are the host compiler's business */
                differ |= memcmp(&want[k], &got[k], 4) != 0 && !(want[k] != want[k] && got[k] != got[k]);
            if (differ) {
                if (bad < 3) {
                    uint32_t w[8], g[8];
                    memcpy(w, want, sizeof w);
                    memcpy(g, got, sizeof g);
                    printf("%s %s block %d chunk %d:", t->name, what, blk, c);
                    for (int k = 0; k < 8; k++)
                        if (w[k] != g[k]) printf(" [%d] want %08x got %08x", k, (unsigned)w[k], (unsigned)g[k]);
                    printf("\n");
                }
                bad++;
            }
        }
    }
    return bad;
}

static void fill_random(int nbytes) {
    for (int i = 0; i < nbytes; i++) tile[i] = (uint8_t)(rnd() >> 56);
}

int main(void) {
#define SET_FAST(NAME, FN)                                                             \
    for (int i = 0; i < NCASES; i++)                                                   \
        if (strcmp(cases[i].name, #NAME) == 0) cases[i].fast = FN;
    ORC_DQF_FOREACH(SET_FAST)
    int bad = 0, nfast = 0;
    for (int i = 0; i < NCASES; i++) {
        const struct type_case *t = &cases[i];
        if (!t->fast) continue;
        nfast++;
        const int nb = TILE_BLOCKS, nbytes = nb * t->ts + PAD;
        for (int rep = 0; rep < 200; rep++) { /* random bytes: every scale pattern turns up, NaN and inf too */
            fill_random(nbytes);
            bad += check_tile(t, nb, "random");
        }
        memset(tile, 0, (size_t)nbytes);
        bad += check_tile(t, nb, "zeros");
        memset(tile, 0xFF, (size_t)nbytes);
        bad += check_tile(t, nb, "0xFF");
        for (int pos = 0; pos < t->ts; pos++) /* one byte set against a zero / 0xFF background */
            for (int bg = 0; bg < 2; bg++) {
                memset(tile, bg ? 0xFF : 0, (size_t)nbytes);
                for (int blk = 0; blk < nb; blk++) tile[blk * t->ts + pos] = (uint8_t)(rnd() >> 56);
                bad += check_tile(t, nb, "edge");
            }
    }
    if (nfast != 14) {
        printf("expected 14 fast decoders, found %d\n", nfast);
        return 1;
    }
    if (misaligned) {
        printf("%d misaligned loads\n", misaligned);
        return 1;
    }
    if (bad) {
        printf("%d mismatching chunks\n", bad);
        return 1;
    }
    printf("ok\n");
    return 0;
}
