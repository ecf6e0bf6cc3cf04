/* sample_determinism.c - a standalone driver for csrc/sample/sample.c that
 * tests/test_sample.py compiles with other compilers and flags (-O0,
 * -O3 -march=native -ffp-contract=fast, clang) to check that every build
 * gives the bytes the extension gives. Writes, for each configuration, the
 * float64 probs (n doubles) and 20 sampled token ids (int32) to stdout. */
#include <stdio.h>   /* fwrite */
#include <stdlib.h>  /* malloc */

#include "sample/sample.h"

#define N_VOCAB 4000
#define N_HIST 300
#define N_CONFIGS 60
#define N_DRAWS 20

/* The configuration i, shared with the Python side of the test. */
static void config(int i, orc_sampler_params *p) {
    orc_sampler_params_default(p);
    p->temperature = (float)(i % 4) * 0.4f;
    p->top_k = i % 7 == 0 ? 50 : 0;
    p->top_p = i % 2 ? 0.9f : 1.0f;
    p->min_p = i % 5 == 1 ? 0.05f : 0.0f;
    p->repeat_penalty = i % 3 == 0 ? 1.3f : 1.0f;
    p->frequency_penalty = i % 4 == 1 ? 0.2f : 0.0f;
    p->penalty_last_n = i % 6 == 5 ? -1 : 64;
}

int main(void) {
    float *x = malloc(N_VOCAB * sizeof *x);
    double *probs = malloc(N_VOCAB * sizeof *probs);
    int32_t hist[N_HIST];
    if (!x || !probs) return 2;
    orc_rng data, r;
    orc_err err;
    orc_rng_seed(&data, 5);
    for (int i = 0; i < N_CONFIGS; i++) {
        const float scale = (float)(i % 5 + 1);
        for (int k = 0; k < N_VOCAB; k++) x[k] = (float)((int32_t)(orc_rng_u32(&data) % 20001u) - 10000) / 1000.0f * scale;
        for (int k = 0; k < N_HIST; k++) hist[k] = (int32_t)(orc_rng_u32(&data) % N_VOCAB);
        orc_sampler_params p;
        config(i, &p);
        if (orc_sampler_probs(x, N_VOCAB, &p, hist, N_HIST, probs, &err) != ORC_OK) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        fwrite(probs, sizeof *probs, N_VOCAB, stdout);
        orc_rng_seed(&r, (uint64_t)i);
        for (int k = 0; k < N_DRAWS; k++) {
            int32_t tok;
            if (orc_sample(x, N_VOCAB, &p, hist, N_HIST, &r, &tok, &err) != ORC_OK) {
                fprintf(stderr, "%s\n", err.msg);
                return 1;
            }
            fwrite(&tok, sizeof tok, 1, stdout);
        }
    }
    free(x);
    free(probs);
    return 0;
}
