/* sample.h - token sampling: repetition/frequency/presence penalties, top-k,
 * top-p, min-p and temperature, drawn with an explicit seeded RNG so that the
 * same seed, logits and parameters give the same token on every run and every
 * platform. Pure C; the Python side is py_sample.c.
 *
 * THE CHAIN (the order is the one of llama.cpp's default sampler chain, minus
 * the samplers orc does not have: penalties -> top-k -> top-p -> min-p ->
 * temperature -> draw). We follow llama.cpp rather than Hugging Face because
 * orc's users compare against GGUF engines first, and because with temperature
 * last the truncation set does not depend on the temperature: top-p/min-p pick
 * the same tokens at T=0.7 and T=1.3, temperature only reshapes the mass
 * among them. HF applies temperature first; orc.probs(logits / T,
 * temperature=1, ...) reproduces HF's (repetition_penalty, temperature, top_k,
 * top_p, min_p) exactly (see docs/sampling.md; tests check it).
 *
 * Every step works on z, the logits as float64, and on the sort order
 * "z descending, then token id ascending" (a total order: ties at any
 * boundary are decided by id, the lower id first). Let W be the window: the
 * last penalty_last_n entries of history (all of it for -1, none for 0), and
 * c_t the number of times token t occurs in W.
 *  1. penalties, for every t with c_t > 0 (llama.cpp's arithmetic):
 *       z_t = z_t <= 0 ? z_t * repeat_penalty : z_t / repeat_penalty
 *       z_t = z_t - (c_t * frequency_penalty + presence_penalty)
 *  2. greedy (temperature == 0): the first token in sort order, i.e. the
 *     argmax of the penalized logits with ties to the lowest id. Stop: probs
 *     is one-hot, and the RNG is NOT advanced.
 *  3. top-k (0 < top_k < n_vocab): keep the first top_k tokens in sort order.
 *  4. top-p (top_p < 1): w_i = exp(z_i - z_max) and P_i = w_i / sum(w) over the
 *     tokens still kept (temperature 1: temperature comes later). Walking in
 *     sort order, cum += P_i; keep tokens up to and including the first one at
 *     which cum >= top_p (top_p = 0 keeps one token). If cum never reaches
 *     top_p (rounding), keep all.
 *  5. min-p (min_p > 0): walking the kept tokens in sort order, stop at the
 *     first with exp(z_i - z_max) < min_p (i.e. p_i < min_p * p_max, at
 *     temperature 1, as llama.cpp); the top token always stays.
 *  6. temperature T > 0: v_i = exp((z_i - z_max) / T) over the kept tokens,
 *     probs_i = v_i / sum(v).
 *  7. draw: u = orc_rng_uniform() (exactly one per call, 2 RNG outputs),
 *     target = u * sum(v); walking the kept tokens in sort order, pick the
 *     first at which the running sum of v exceeds target.
 *
 * DETERMINISM: the only floating-point work is IEEE-754 binary64 +, -, *, /
 * and comparisons in a fixed order, with exp computed by orc_sample_exp (built
 * from those operations only, so no libm difference between platforms can
 * change a token). The build must not contract a*b+c into FMA (GCC's -std=c11
 * implies -ffp-contract=off; the source turns it off for clang) and must not
 * evaluate in extended precision (FLT_EVAL_METHOD == 0 is checked at compile
 * time). Sums over the whole vocabulary (top-p's normalizer when top-k is off,
 * the temperature normalizer when nothing truncates) run in token-id order;
 * every other sum runs in sort order. How a sorted prefix is found (heap,
 * radix sort, how long a prefix is sorted) never changes a result: the walks
 * above read the same tokens in the same order whatever found them.
 */
#ifndef ORC_SAMPLE_H
#define ORC_SAMPLE_H

#include "core/orc.h"  /* orc_status, orc_err */

#ifdef __cplusplus
extern "C" {
#endif

/* PCG32: O'Neill's pcg32_random_r (64-bit LCG state, XSH-RR output), bit for
 * bit. `inc` must be odd. */
typedef struct orc_rng {
    uint64_t state, inc;
} orc_rng;

/* The stream orc_rng_seed uses: the one of O'Neill's pcg32-demo, so that
 * orc_rng_seed(r, 42) reproduces its published first outputs 0xa15c02b7
 * 0x7b47f409 0xba1d3330 0x83d2f293 0xbfa4784b 0xcbed606e. */
#define ORC_RNG_DEFAULT_STREAM 54u

/* == pcg32_srandom_r(r, seed, stream). */
void orc_rng_seed_stream(orc_rng *r, uint64_t seed, uint64_t stream);
/* == orc_rng_seed_stream(r, seed, ORC_RNG_DEFAULT_STREAM). */
void orc_rng_seed(orc_rng *r, uint64_t seed);
uint32_t orc_rng_u32(orc_rng *r);
/* A double in [0, 1) with 53 random bits: a = u32() >> 5, b = u32() >> 6,
 * (a * 2^26 + b) * 2^-53, formed in integers and converted exactly (MT19937's
 * genrand_res53 recipe). Consumes two outputs. */
double orc_rng_uniform(orc_rng *r);

typedef struct orc_sampler_params {
    float temperature;        /* 0 = greedy (argmax, ties -> lowest id); finite, >= 0 */
    int32_t top_k;            /* 0 = off (so is >= n_vocab); >= 0 */
    float top_p;              /* 1 = off; in [0, 1] */
    float min_p;              /* 0 = off; in [0, 1] */
    float repeat_penalty;     /* 1 = off (llama.cpp/CTRL style: divide positive logits, multiply the others); finite, > 0 */
    float frequency_penalty;  /* 0 = off (OpenAI style: minus count * frequency_penalty); finite */
    float presence_penalty;   /* 0 = off (minus presence_penalty if count > 0); finite */
    int32_t penalty_last_n;   /* how many of the most recent history tokens the penalties look at; -1 = all, 0 = none */
} orc_sampler_params;

/* temperature 1, top_k 0, top_p 1, min_p 0, penalties off, penalty_last_n 64
 * (llama.cpp's default window). */
void orc_sampler_params_default(orc_sampler_params *p);

/* ORC_E_INVALID with a message naming the parameter and its value when one is
 * NaN/Inf or out of range. */
orc_status orc_sampler_params_check(const orc_sampler_params *p, orc_err *err);

/* Sample one token id into *token. history: the token ids seen so far (prompt
 * + generated, oldest first), used by the penalties; may be NULL when
 * n_history == 0. Every history id is checked (ORC_E_RANGE naming the position
 * and id); a NaN/Inf logit is ORC_E_INVALID naming the first bad index and
 * value. On error *token and the RNG are unchanged. rng may be NULL only for
 * greedy. Allocates its scratch memory per call and frees it on every path:
 * O(top_k) and O(window) always; without top-k, the sorted prefix that top-p,
 * min-p or the draw needs (up to O(n_vocab) for flat distributions). */
orc_status orc_sample(const float *logits, int32_t n_vocab, const orc_sampler_params *p,
                      const int32_t *history, int64_t n_history, orc_rng *rng, int32_t *token, orc_err *err);

/* The distribution orc_sample draws from, as float64 probabilities over the
 * vocabulary (zeros for removed tokens); for greedy a one-hot. Same checks as
 * orc_sample. For debugging and tests. */
orc_status orc_sampler_probs(const float *logits, int32_t n_vocab, const orc_sampler_params *p,
                             const int32_t *history, int64_t n_history, double *probs, orc_err *err);

/* exp(x) from IEEE +,-,* and integer operations only (Tang's table method:
 * x = (32e + j) ln2/32 + r, a 32-entry hi+lo table of 2^(j/32) and a degree-6
 * polynomial; measured error at most 0.52 ulp), so it gives the same bits on
 * every platform, unlike libm's exp. exp(0) == 1 exactly; exp(-inf) == 0;
 * NaN in, NaN out. Exported for tests and for other code that needs a
 * reproducible exp. */
double orc_sample_exp(double x);

#ifdef __cplusplus
}
#endif

#endif /* ORC_SAMPLE_H */
