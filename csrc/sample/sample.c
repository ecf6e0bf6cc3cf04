/* sample.c - the sampler chain described in sample.h (penalties -> top-k ->
 * top-p -> min-p -> temperature -> draw) and its PCG32 RNG, written so that a
 * (seed, logits, parameters) triple picks the same token on every platform.
 *
 * Speed: nothing here touches all of a 262144-entry vocabulary more than a
 * few times. The penalized logits are never copied: tokens seen in the
 * penalty window are kept in a short list sorted by id, and every scan walks
 * the raw logits in the runs between them. Top-k selects with a bounded heap
 * (no full sort); min-p without top-k sorts only the tokens that can pass it;
 * top-p alone, and the draw when nothing truncates, sort only the prefix that
 * a mass histogram says they need (a stable radix sort when it is long), so a
 * full sort happens only for distributions flat enough to need one. exp is
 * our own (table-based, no division, no libm) because libm's differs between
 * platforms in the last bit.
 */
#include "sample/sample.h"

#include <float.h>   /* FLT_EVAL_METHOD */
#include <math.h>    /* isnan/isfinite, INFINITY; log only in a conservative prefilter */
#include <stdlib.h>  /* malloc, free, qsort */
#include <string.h>  /* memcpy, memset */

/* Reproducibility needs plain binary64 arithmetic: no x87 extended precision
 * and no fused multiply-add (which would round a*b+c once instead of twice).
 * FLT_EVAL_METHOD 16 (GCC with AVX512-FP16) only concerns _Float16. Clang
 * honours the pragma unless built with -ffp-contract=fast, which overrides
 * every source pragma: do not build orc that way. */
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD != 0 && FLT_EVAL_METHOD != 16
#error "sample.c needs double arithmetic evaluated in double (FLT_EVAL_METHOD 0) for reproducible sampling"
#endif
#if defined(__FAST_MATH__)
#error "sample.c must not be built with -ffast-math: it reorders and fuses the arithmetic that makes tokens reproducible"
#endif
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

/* ---------------------------------------------------------------- RNG */

uint32_t orc_rng_u32(orc_rng *r) {
    uint64_t old = r->state;
    r->state = old * 6364136223846793005ULL + r->inc;
    uint32_t xorshifted = (uint32_t)(((old >> 18) ^ old) >> 27);
    uint32_t rot = (uint32_t)(old >> 59);
    return (xorshifted >> rot) | (xorshifted << ((32u - rot) & 31u));
}

void orc_rng_seed_stream(orc_rng *r, uint64_t seed, uint64_t stream) {
    r->state = 0;
    r->inc = (stream << 1) | 1u;
    (void)orc_rng_u32(r);
    r->state += seed;
    (void)orc_rng_u32(r);
}

void orc_rng_seed(orc_rng *r, uint64_t seed) { orc_rng_seed_stream(r, seed, ORC_RNG_DEFAULT_STREAM); }

double orc_rng_uniform(orc_rng *r) {
    uint64_t a = orc_rng_u32(r) >> 5; /* 27 bits */
    uint64_t b = orc_rng_u32(r) >> 6; /* 26 bits */
    /* < 2^53, so the conversion is exact; scaling by a power of two is exact. */
    return (double)((a << 26) | b) * 0x1p-53;
}

/* ---------------------------------------------------------------- exp */

/* 2^(j/32) for j = 0..31 as hi + lo: hi is the double nearest to it, lo the
 * double nearest to what hi leaves out (computed with 60-digit decimals). */
static const double exp2_32[32][2] = {
    {0x1.0000000000000p+0, 0x0.0p+0},
    {0x1.059b0d3158574p+0, 0x1.d73e2a475b465p-55},
    {0x1.0b5586cf9890fp+0, 0x1.8a62e4adc610bp-54},
    {0x1.11301d0125b51p+0, -0x1.6c51039449b3ap-54},
    {0x1.172b83c7d517bp+0, -0x1.19041b9d78a76p-55},
    {0x1.1d4873168b9aap+0, 0x1.e016e00a2643cp-54},
    {0x1.2387a6e756238p+0, 0x1.9b07eb6c70573p-54},
    {0x1.29e9df51fdee1p+0, 0x1.612e8afad1255p-55},
    {0x1.306fe0a31b715p+0, 0x1.6f46ad23182e4p-55},
    {0x1.371a7373aa9cbp+0, -0x1.63aeabf42eae2p-54},
    {0x1.3dea64c123422p+0, 0x1.ada0911f09ebcp-55},
    {0x1.44e086061892dp+0, 0x1.89b7a04ef80d0p-59},
    {0x1.4bfdad5362a27p+0, 0x1.d4397afec42e2p-56},
    {0x1.5342b569d4f82p+0, -0x1.07abe1db13cadp-55},
    {0x1.5ab07dd485429p+0, 0x1.6324c054647adp-54},
    {0x1.6247eb03a5585p+0, -0x1.383c17e40b497p-54},
    {0x1.6a09e667f3bcdp+0, -0x1.bdd3413b26456p-54},
    {0x1.71f75e8ec5f74p+0, -0x1.16e4786887a99p-55},
    {0x1.7a11473eb0187p+0, -0x1.41577ee04992fp-55},
    {0x1.82589994cce13p+0, -0x1.d4c1dd41532d8p-54},
    {0x1.8ace5422aa0dbp+0, 0x1.6e9f156864b27p-54},
    {0x1.93737b0cdc5e5p+0, -0x1.75fc781b57ebcp-57},
    {0x1.9c49182a3f090p+0, 0x1.c7c46b071f2bep-56},
    {0x1.a5503b23e255dp+0, -0x1.d2f6edb8d41e1p-54},
    {0x1.ae89f995ad3adp+0, 0x1.7a1cd345dcc81p-54},
    {0x1.b7f76f2fb5e47p+0, -0x1.5584f7e54ac3bp-56},
    {0x1.c199bdd85529cp+0, 0x1.11065895048ddp-55},
    {0x1.cb720dcef9069p+0, 0x1.503cbd1e949dbp-56},
    {0x1.d5818dcfba487p+0, 0x1.2ed02d75b3707p-55},
    {0x1.dfc97337b9b5fp+0, -0x1.1a5cd4f184b5cp-54},
    {0x1.ea4afa2a490dap+0, -0x1.e9c23179c2893p-54},
    {0x1.f50765b6e4540p+0, 0x1.9d3e12dd8a18bp-54},
};

/* Tang's table method: x = (32e + j) ln2/32 + r with |r| <= ln2/64, so
 * exp(x) = 2^e * 2^(j/32) * exp(r), and exp(r) - 1 is its Taylor polynomial
 * of degree 6 (the first term left out is below 4e-18). No division: this is
 * the inner loop of every full-vocabulary pass. Error: 2^(j/32)'s lo part
 * keeps it near half an ulp. */
static inline double exp_core(double x) {
    static const double inv_ln2_32 = 0x1.71547652b82fep+5;
    static const double ln2_32_hi = 0x1.62e42fefa0000p-6; /* 36 bits: k * hi is exact for |k| < 2^17 */
    static const double ln2_32_lo = 0x1.cf79abc9e3b3ap-45;
    static const double C2 = 0x1.0000000000000p-1, C3 = 0x1.5555555555555p-3, C4 = 0x1.5555555555555p-5,
                        C5 = 0x1.1111111111111p-7, C6 = 0x1.6c16c16c16c17p-10;
    if (isnan(x)) return x;
    if (x > 0x1.62e42fefa39efp+9) return INFINITY; /* above log(DBL_MAX) */
    if (x < -0x1.74910d52d3051p+9) return 0.0;     /* below log of the least subnormal, and -inf */
    const int32_t k = (int32_t)(x * inv_ln2_32 + (x < 0 ? -0.5 : 0.5)); /* round half away from zero */
    const double kd = (double)k;
    const double r = (x - kd * ln2_32_hi) - kd * ln2_32_lo;
    const int32_t j = k & 31, e = (k - j) / 32;
    const double p = r + (r * r) * (C2 + r * (C3 + r * (C4 + r * (C5 + r * C6))));
    const double hi = exp2_32[j][0];
    double y = hi + (exp2_32[j][1] + hi * p);
    uint64_t bits;
    memcpy(&bits, &y, sizeof bits);
    if (e >= -1021) {
        bits += (uint64_t)(int64_t)e << 52;
        memcpy(&y, &bits, sizeof y);
        return y;
    }
    bits += (uint64_t)(int64_t)(e + 1000) << 52; /* the result is subnormal: round once, at the end */
    memcpy(&y, &bits, sizeof y);
    return y * 0x1p-1000;
}

double orc_sample_exp(double x) { return exp_core(x); }

/* ---------------------------------------------------------------- parameters */

void orc_sampler_params_default(orc_sampler_params *p) {
    p->temperature = 1.0f;
    p->top_k = 0;
    p->top_p = 1.0f;
    p->min_p = 0.0f;
    p->repeat_penalty = 1.0f;
    p->frequency_penalty = 0.0f;
    p->presence_penalty = 0.0f;
    p->penalty_last_n = 64;
}

orc_status orc_sampler_params_check(const orc_sampler_params *p, orc_err *err) {
    if (!p) return orc_fail(err, ORC_E_INVALID, "sampler parameters are NULL");
    if (!isfinite(p->temperature) || p->temperature < 0)
        return orc_fail(err, ORC_E_INVALID, "temperature = %g is invalid: it must be a finite number >= 0 (0 = greedy)",
                        (double)p->temperature);
    if (p->top_k < 0)
        return orc_fail(err, ORC_E_INVALID, "top_k = %d is invalid: it must be >= 0 (0 = off)", (int)p->top_k);
    if (isnan(p->top_p) || p->top_p < 0 || p->top_p > 1)
        return orc_fail(err, ORC_E_INVALID, "top_p = %g is invalid: it must be in [0, 1] (1 = off)", (double)p->top_p);
    if (isnan(p->min_p) || p->min_p < 0 || p->min_p > 1)
        return orc_fail(err, ORC_E_INVALID, "min_p = %g is invalid: it must be in [0, 1] (0 = off)", (double)p->min_p);
    if (!isfinite(p->repeat_penalty) || p->repeat_penalty <= 0)
        return orc_fail(err, ORC_E_INVALID,
                        "repeat_penalty = %g is invalid: it must be a finite number > 0 (1 = off)",
                        (double)p->repeat_penalty);
    if (!isfinite(p->frequency_penalty))
        return orc_fail(err, ORC_E_INVALID, "frequency_penalty = %g is invalid: it must be a finite number (0 = off)",
                        (double)p->frequency_penalty);
    if (!isfinite(p->presence_penalty))
        return orc_fail(err, ORC_E_INVALID, "presence_penalty = %g is invalid: it must be a finite number (0 = off)",
                        (double)p->presence_penalty);
    if (p->penalty_last_n < -1)
        return orc_fail(err, ORC_E_INVALID,
                        "penalty_last_n = %d is invalid: it must be >= -1 (-1 = the whole history, 0 = none)",
                        (int)p->penalty_last_n);
    return ORC_OK;
}

/* ---------------------------------------------------------------- scans */

/* The full-vocabulary scans (finite check, max, top-k filter) run 4-wide with
 * GCC/Clang vector extensions, which lower to SSE2/NEON or to scalar code;
 * they only compare floats, so they cannot change a result. */
#if defined(__GNUC__)
#define ORC_VEC 1
typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));
static inline v4f load4(const float *p) {
    v4f v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline int any4(v4i m) { return (m[0] | m[1] | m[2] | m[3]) != 0; }
#else
#define ORC_VEC 0
#endif

static int64_t first_nonfinite(const float *x, int32_t n) {
    int32_t i = 0;
#if ORC_VEC
    const v4i expo = {0x7f800000, 0x7f800000, 0x7f800000, 0x7f800000};
    for (; i + 64 <= n; i += 64) {
        v4i bad = {0, 0, 0, 0};
        for (int32_t k = 0; k < 64; k += 4) {
            v4i u;
            memcpy(&u, x + i + k, sizeof u);
            bad |= (u & expo) == expo;
        }
        if (any4(bad)) break; /* the scalar loop finds which */
    }
#endif
    for (; i < n; i++)
        if (!isfinite(x[i])) return i;
    return -1;
}

/* max of x[b..e), e > b. */
static float run_max(const float *x, int32_t b, int32_t e) {
    int32_t i = b;
    float m = x[b];
#if ORC_VEC
    if (e - b >= 16) {
        v4f m0 = load4(x + b), m1 = m0, m2 = m0, m3 = m0;
        for (; i + 16 <= e; i += 16) {
            v4f a = load4(x + i), c = load4(x + i + 4), d = load4(x + i + 8), f = load4(x + i + 12);
            v4i g0 = a > m0, g1 = c > m1, g2 = d > m2, g3 = f > m3;
            m0 = (v4f)(((v4i)a & g0) | ((v4i)m0 & ~g0));
            m1 = (v4f)(((v4i)c & g1) | ((v4i)m1 & ~g1));
            m2 = (v4f)(((v4i)d & g2) | ((v4i)m2 & ~g2));
            m3 = (v4f)(((v4i)f & g3) | ((v4i)m3 & ~g3));
        }
        for (int k = 0; k < 4; k++) {
            if (m0[k] > m) m = m0[k];
            if (m1[k] > m) m = m1[k];
            if (m2[k] > m) m = m2[k];
            if (m3[k] > m) m = m3[k];
        }
    }
#endif
    for (; i < e; i++)
        if (x[i] > m) m = x[i];
    return m;
}

/* ---------------------------------------------------------------- candidates */

/* A token and its (penalized) logit. Sort order: z descending, id ascending. */
typedef struct cand {
    double z;
    int32_t id;
} cand;

static inline int cand_before(const cand *a, const cand *b) {
    return a->z > b->z || (a->z == b->z && a->id < b->id);
}

static int cand_cmp(const void *pa, const void *pb) {
    const cand *a = pa, *b = pb;
    if (cand_before(a, b)) return -1;
    return cand_before(b, a) ? 1 : 0;
}

static int i32_cmp(const void *pa, const void *pb) {
    int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
    return (a > b) - (a < b);
}

/* An unsigned key whose ascending order is z's descending order; -0.0 and
 * +0.0 get the same key, as they compare equal. */
static inline uint64_t desc_key(double z) {
    z += 0.0;
    uint64_t u;
    memcpy(&u, &z, sizeof u);
    u = (u >> 63) ? ~u : (u | 0x8000000000000000ULL);
    return ~u;
}

#define RADIX_BITS 11
#define RADIX_PASSES 6 /* 66 >= 64 bits */
#define RADIX_SIZE (1 << RADIX_BITS)

/* Sort c into sort order. c must be in ascending id order: the radix sort is
 * stable, so equal z keep that order, which is the id tie-break. */
static orc_status sort_cands(cand *c, int32_t n, orc_err *err) {
    if (n < 2048) {
        qsort(c, (size_t)n, sizeof *c, cand_cmp);
        return ORC_OK;
    }
    cand *tmp = malloc((size_t)n * sizeof *tmp);
    uint32_t *count = calloc((size_t)RADIX_PASSES * RADIX_SIZE, sizeof *count);
    if (!tmp || !count) {
        free(tmp);
        free(count);
        return orc_fail(err, ORC_E_NOMEM, "sampler: %lld bytes to sort %d candidates",
                        (long long)n * (long long)sizeof *tmp, (int)n);
    }
    for (int32_t i = 0; i < n; i++) {
        uint64_t k = desc_key(c[i].z);
        for (int p = 0; p < RADIX_PASSES; p++) count[p * RADIX_SIZE + ((k >> (p * RADIX_BITS)) & (RADIX_SIZE - 1))]++;
    }
    cand *src = c, *dst = tmp;
    for (int p = 0; p < RADIX_PASSES; p++) {
        uint32_t *cnt = count + p * RADIX_SIZE;
        const int shift = p * RADIX_BITS;
        if (cnt[(desc_key(src[0].z) >> shift) & (RADIX_SIZE - 1)] == (uint32_t)n) continue; /* one bucket: no-op */
        uint32_t sum = 0;
        for (int d = 0; d < RADIX_SIZE; d++) {
            uint32_t c0 = cnt[d];
            cnt[d] = sum;
            sum += c0;
        }
        for (int32_t i = 0; i < n; i++) dst[cnt[(desc_key(src[i].z) >> shift) & (RADIX_SIZE - 1)]++] = src[i];
        cand *t = src;
        src = dst;
        dst = t;
    }
    if (src != c) memcpy(c, src, (size_t)n * sizeof *c);
    free(tmp);
    free(count);
    return ORC_OK;
}

/* The state of one call: the logits as the chain sees them after the
 * penalties. Tokens in pen (ascending id) have the logit stored there; every
 * other token has (double)logits[id]. The ids not in pen form n_pen + 1 runs;
 * every scan below visits ids in ascending order, run by run, which is what
 * makes "strictly greater wins" keep the lowest id among ties. */
typedef struct chain {
    const float *logits;
    int32_t n;
    cand *pen;
    int32_t n_pen;
    double zmax;  /* the largest penalized logit */
    int32_t top;  /* the first token in sort order (the greedy choice) */
} chain;

static inline int32_t run_begin(const chain *ch, int32_t j) { return j == 0 ? 0 : ch->pen[j - 1].id + 1; }
static inline int32_t run_end(const chain *ch, int32_t j) { return j == ch->n_pen ? ch->n : ch->pen[j].id; }

/* (z - zmax) / t, the exponent every weight is built from. */
static inline double scaled(double z, double zmax, double t) {
    double d = z - zmax;
    return t == 1.0 ? d : d / t;
}

static orc_status check_call(const float *logits, int32_t n_vocab, const orc_sampler_params *p,
                             const int32_t *history, int64_t n_history, orc_err *err) {
    orc_status st = orc_sampler_params_check(p, err);
    if (st != ORC_OK) return st;
    if (n_vocab <= 0) return orc_fail(err, ORC_E_INVALID, "n_vocab = %d: there must be at least one logit", (int)n_vocab);
    if (!logits) return orc_fail(err, ORC_E_INVALID, "logits are NULL");
    if (n_history < 0) return orc_fail(err, ORC_E_INVALID, "n_history = %lld is negative", (long long)n_history);
    if (n_history > 0 && !history) return orc_fail(err, ORC_E_INVALID, "history is NULL but n_history = %lld", (long long)n_history);
    for (int64_t i = 0; i < n_history; i++)
        if (history[i] < 0 || history[i] >= n_vocab)
            return orc_fail(err, ORC_E_RANGE, "history[%lld] = %d is not a token id (n_vocab = %d)", (long long)i,
                            (int)history[i], (int)n_vocab);
    int64_t bad = first_nonfinite(logits, n_vocab);
    if (bad >= 0)
        return orc_fail(err, ORC_E_INVALID,
                        "logits[%lld] = %g is not finite (NaN/Inf logits are never sampled; this is the first one)",
                        (long long)bad, (double)logits[bad]);
    return ORC_OK;
}

/* Fill ch->pen with the penalized logits of the tokens in the window. */
static orc_status build_penalties(chain *ch, const orc_sampler_params *p, const int32_t *history, int64_t n_history,
                                  orc_err *err) {
    orc_status st = ORC_OK;
    int32_t *ids = NULL;
    if (p->repeat_penalty == 1.0f && p->frequency_penalty == 0.0f && p->presence_penalty == 0.0f) return ORC_OK;
    int64_t w = p->penalty_last_n < 0 ? n_history : (p->penalty_last_n < n_history ? p->penalty_last_n : n_history);
    if (w == 0) return ORC_OK;
    if ((uint64_t)w > SIZE_MAX / sizeof(cand)) return orc_fail(err, ORC_E_NOMEM, "penalty window of %lld tokens", (long long)w);

    ids = malloc((size_t)w * sizeof *ids);
    if (!ids) {
        st = orc_fail(err, ORC_E_NOMEM, "sampler: %lld bytes for the penalty window", (long long)w * 4);
        goto cleanup;
    }
    memcpy(ids, history + (n_history - w), (size_t)w * sizeof *ids);
    qsort(ids, (size_t)w, sizeof *ids, i32_cmp);
    int64_t distinct = 0;
    for (int64_t i = 0; i < w; i++) distinct += (i == 0 || ids[i] != ids[i - 1]);
    ch->pen = malloc((size_t)distinct * sizeof *ch->pen);
    if (!ch->pen) {
        st = orc_fail(err, ORC_E_NOMEM, "sampler: %lld penalized tokens", (long long)distinct);
        goto cleanup;
    }
    const double rp = p->repeat_penalty, fp = p->frequency_penalty, pp = p->presence_penalty;
    int32_t j = 0;
    for (int64_t i = 0; i < w;) {
        int64_t e = i;
        while (e < w && ids[e] == ids[i]) e++;
        double z = ch->logits[ids[i]];
        z = z <= 0 ? z * rp : z / rp;
        z = z - ((double)(e - i) * fp + pp);
        ch->pen[j].z = z;
        ch->pen[j].id = ids[i];
        j++;
        i = e;
    }
    ch->n_pen = j;
cleanup:
    free(ids);
    return st;
}

static void find_top(chain *ch) {
    double best = -INFINITY;
    int32_t top = -1;
    for (int32_t j = 0; j <= ch->n_pen; j++) {
        int32_t b = run_begin(ch, j), e = run_end(ch, j);
        if (b < e) {
            float m = run_max(ch->logits, b, e);
            if ((double)m > best) {
                int32_t i = b;
                while (ch->logits[i] != m) i++; /* its first (lowest-id) occurrence */
                best = m;
                top = i;
            }
        }
        if (j < ch->n_pen && ch->pen[j].z > best) {
            best = ch->pen[j].z;
            top = ch->pen[j].id;
        }
    }
    ch->zmax = best;
    ch->top = top;
}

/* Bounded heap whose root is the worst of the kept candidates. */
static void heap_push(cand *h, int32_t *size, cand x) {
    int32_t i = (*size)++;
    while (i > 0) {
        int32_t parent = (i - 1) / 2;
        if (!cand_before(&h[parent], &x)) break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = x;
}

static void heap_replace_root(cand *h, int32_t size, cand x) {
    int32_t i = 0;
    for (;;) {
        int32_t worse = 2 * i + 1;
        if (worse >= size) break;
        if (worse + 1 < size && cand_before(&h[worse], &h[worse + 1])) worse++;
        if (cand_before(&h[worse], &x)) break;
        h[i] = h[worse];
        i = worse;
    }
    h[i] = x;
}

/* The largest float <= z: a cheap filter that never rejects a logit > z. */
static float float_at_most(double z) {
    if (z < -FLT_MAX) return -INFINITY;
    if (z >= FLT_MAX) return FLT_MAX;
    float f = (float)z;
    return (double)f > z ? nextafterf(f, -INFINITY) : f;
}

/* Offer raw logits x[i..e) to a full heap of m. Ids arrive in ascending
 * order, so a newcomer whose z equals the root's sorts after it: only a
 * strictly greater z gets in. */
static void heap_offer_run(cand *h, int32_t m, const float *x, int32_t i, int32_t e) {
    float thr = float_at_most(h[0].z);
    while (i < e) {
        int32_t stop = e - i >= 16 ? i + 16 : e;
#if ORC_VEC
        if (stop - i == 16) {
            const v4f t = {thr, thr, thr, thr};
            if (!any4((load4(x + i) > t) | (load4(x + i + 4) > t) | (load4(x + i + 8) > t) | (load4(x + i + 12) > t))) {
                i = stop;
                continue;
            }
        }
#endif
        for (; i < stop; i++)
            if ((double)x[i] > h[0].z) {
                heap_replace_root(h, m, (cand){x[i], i});
                thr = float_at_most(h[0].z);
            }
    }
}

/* The first m tokens in sort order (m < n), sorted, into a new array. */
static orc_status top_sorted(const chain *ch, int32_t m, cand **out, orc_err *err) {
    cand *h = malloc((size_t)m * sizeof *h);
    if (!h) return orc_fail(err, ORC_E_NOMEM, "sampler: %lld bytes for %d candidates", (long long)m * (long long)sizeof *h, (int)m);
    int32_t size = 0;
    for (int32_t j = 0; j <= ch->n_pen; j++) {
        int32_t i = run_begin(ch, j), e = run_end(ch, j);
        for (; i < e && size < m; i++) heap_push(h, &size, (cand){ch->logits[i], i});
        if (i < e) heap_offer_run(h, m, ch->logits, i, e);
        if (j < ch->n_pen) {
            if (size < m)
                heap_push(h, &size, ch->pen[j]);
            else if (ch->pen[j].z > h[0].z)
                heap_replace_root(h, m, ch->pen[j]);
        }
    }
    qsort(h, (size_t)m, sizeof *h, cand_cmp); /* not in id order: the comparator sort */
    *out = h;
    return ORC_OK;
}

/* Every token with z >= zthr, sorted: a prefix of the sort order. */
static orc_status collect_sorted(const chain *ch, double zthr, cand **out, int32_t *n_out, orc_err *err) {
    int32_t count = 0;
    if (zthr == -INFINITY) {
        count = ch->n;
    } else {
        for (int32_t j = 0; j <= ch->n_pen; j++) {
            for (int32_t i = run_begin(ch, j); i < run_end(ch, j); i++) count += ((double)ch->logits[i] >= zthr);
            if (j < ch->n_pen) count += (ch->pen[j].z >= zthr);
        }
    }
    cand *c = malloc((size_t)count * sizeof *c);
    if (!c) return orc_fail(err, ORC_E_NOMEM, "sampler: %lld bytes for %d candidates", (long long)count * (long long)sizeof *c, (int)count);
    int32_t k = 0;
    for (int32_t j = 0; j <= ch->n_pen; j++) {
        for (int32_t i = run_begin(ch, j); i < run_end(ch, j); i++)
            if ((double)ch->logits[i] >= zthr) c[k++] = (cand){ch->logits[i], i};
        if (j < ch->n_pen && ch->pen[j].z >= zthr) c[k++] = ch->pen[j];
    }
    orc_status st = sort_cands(c, count, err);
    if (st != ORC_OK) {
        free(c);
        return st;
    }
    *out = c;
    *n_out = count;
    return ORC_OK;
}

/* Mass histogram over the distance below the top, (zmax - z) / t, in
 * sixteenths; it tells how long a sorted prefix must be to hold a given
 * mass, so the passes that need "the first tokens in sort order until a sum
 * is reached" sort only those. It only sizes the prefix, never decides. */
#define NBUCKET 1024
#define BUCKETS_PER_UNIT 16.0

static inline int32_t bucket_of(double x /* (z - zmax) / t <= 0 */) {
    double d = -x * BUCKETS_PER_UNIT;
    return d < (double)(NBUCKET - 1) ? (int32_t)d : NBUCKET - 1;
}

/* The z threshold of a prefix holding more than `goal` of the histogram's
 * mass, with a bucket to spare; -inf for everything. */
static double prefix_threshold(const double *hist, double goal, double zmax, double t) {
    const double need = goal * (1.0 + 1e-9);
    double cum = 0.0;
    for (int32_t b = 0; b < NBUCKET - 2; b++) {
        cum += hist[b];
        if (cum > need) return zmax - (double)(b + 2) * t / BUCKETS_PER_UNIT;
    }
    return -INFINITY;
}

/* sum over the whole vocabulary, in id order, of exp((z - zmax) / t); when
 * out is not NULL the terms are stored there, when hist is not NULL they are
 * also added to it by bucket. */
static double sum_all(const chain *ch, double t, double *out, double *hist) {
    double s = 0.0;
    const double zmax = ch->zmax;
    for (int32_t j = 0; j <= ch->n_pen; j++) {
        for (int32_t i = run_begin(ch, j); i < run_end(ch, j); i++) {
            double x = scaled(ch->logits[i], zmax, t), v = exp_core(x);
            if (out) out[i] = v;
            if (hist) hist[bucket_of(x)] += v;
            s += v;
        }
        if (j < ch->n_pen) {
            double x = scaled(ch->pen[j].z, zmax, t), v = exp_core(x);
            if (out) out[ch->pen[j].id] = v;
            if (hist) hist[bucket_of(x)] += v;
            s += v;
        }
    }
    return s;
}

/* Steps 4 and 5 over the first m tokens in sort order, c. Z: top-p's
 * normalizer. Returns how many tokens stay, or -1 when c ran out before the
 * walk decided and c is not the whole candidate set (complete == 0). */
static int32_t truncate_walk(const cand *c, int32_t m, int complete, double zmax, double Z, double top_p,
                             double min_p) {
    double cum = 0.0;
    for (int32_t i = 0; i < m; i++) {
        double w = exp_core(c[i].z - zmax);
        if (min_p > 0 && i > 0 && w < min_p) return i;
        if (top_p < 1) {
            cum += w / Z;
            if (cum >= top_p) return i + 1;
        }
    }
    return complete ? m : -1;
}

/* Steps 1-5. On success either *greedy is set (the token is ch->top), or
 * *kept is the sorted list of the *n_kept tokens left, or *kept is NULL and
 * every token is left. */
static orc_status run_chain(chain *ch, const float *logits, int32_t n_vocab, const orc_sampler_params *p,
                            const int32_t *history, int64_t n_history, int *greedy, cand **kept, int32_t *n_kept,
                            orc_err *err) {
    orc_status st;
    cand *c = NULL;
    memset(ch, 0, sizeof *ch);
    ch->logits = logits;
    ch->n = n_vocab;
    *greedy = 0;
    *kept = NULL;
    *n_kept = n_vocab;
    if ((st = check_call(logits, n_vocab, p, history, n_history, err)) != ORC_OK) return st;
    if ((st = build_penalties(ch, p, history, n_history, err)) != ORC_OK) return st;
    find_top(ch);
    if (p->temperature == 0.0f || n_vocab == 1) {
        *greedy = p->temperature == 0.0f;
        if (n_vocab == 1) *n_kept = 1;
        return ORC_OK;
    }

    const double top_p = p->top_p, min_p = p->min_p;
    int32_t m = 0, L;
    if (p->top_k > 0 && p->top_k < n_vocab) {
        m = p->top_k;
        if ((st = top_sorted(ch, m, &c, err)) != ORC_OK) goto cleanup;
        double Z = 0.0;
        if (top_p < 1)
            for (int32_t i = 0; i < m; i++) Z += exp_core(c[i].z - ch->zmax);
        L = truncate_walk(c, m, 1, ch->zmax, Z, top_p, min_p);
    } else if (min_p > 0) {
        /* Only tokens with z - zmax >= log(min_p) can pass: collect those,
         * with a margin far wider than the error of log, of exp_core and of
         * the subtraction, so libm's log cannot change which tokens are kept
         * (the exact test runs in the walk). */
        double Z = top_p < 1 ? sum_all(ch, 1.0, NULL, NULL) : 0.0;
        const double zthr = ch->zmax + log(min_p) - 1e-6 * (1.0 + fabs(ch->zmax));
        if ((st = collect_sorted(ch, zthr, &c, &m, err)) != ORC_OK) goto cleanup;
        L = truncate_walk(c, m, 1, ch->zmax, Z, top_p, min_p);
    } else if (top_p < 1) {
        double hist[NBUCKET] = {0};
        double Z = sum_all(ch, 1.0, NULL, hist);
        double zthr = prefix_threshold(hist, top_p * Z, ch->zmax, 1.0);
        if ((st = collect_sorted(ch, zthr, &c, &m, err)) != ORC_OK) goto cleanup;
        L = truncate_walk(c, m, m == n_vocab, ch->zmax, Z, top_p, min_p);
        if (L < 0) { /* rounding left the prefix a hair short: take everything */
            free(c);
            c = NULL;
            if ((st = collect_sorted(ch, -INFINITY, &c, &m, err)) != ORC_OK) goto cleanup;
            L = truncate_walk(c, m, 1, ch->zmax, Z, top_p, min_p);
        }
    } else {
        return ORC_OK; /* nothing truncates */
    }
    *kept = c;
    *n_kept = L;
    c = NULL;
cleanup:
    free(c);
    return st;
}

/* ---------------------------------------------------------------- public */

orc_status orc_sampler_probs(const float *logits, int32_t n_vocab, const orc_sampler_params *p,
                             const int32_t *history, int64_t n_history, double *probs, orc_err *err) {
    chain ch;
    cand *kept = NULL;
    int32_t n_kept = 0;
    int greedy = 0;
    if (!probs) return orc_fail(err, ORC_E_INVALID, "probs output is NULL");
    orc_status st = run_chain(&ch, logits, n_vocab, p, history, n_history, &greedy, &kept, &n_kept, err);
    if (st != ORC_OK) goto cleanup;
    if (greedy || n_vocab == 1) {
        memset(probs, 0, (size_t)n_vocab * sizeof *probs);
        probs[ch.top] = 1.0;
    } else if (!kept) {
        double s = sum_all(&ch, p->temperature, probs, NULL);
        for (int32_t i = 0; i < n_vocab; i++) probs[i] /= s;
    } else {
        const double t = p->temperature;
        double s = 0.0;
        memset(probs, 0, (size_t)n_vocab * sizeof *probs);
        for (int32_t i = 0; i < n_kept; i++) {
            double v = exp_core(scaled(kept[i].z, ch.zmax, t));
            probs[kept[i].id] = v;
            s += v;
        }
        for (int32_t i = 0; i < n_kept; i++) probs[kept[i].id] /= s;
    }
cleanup:
    free(kept);
    free(ch.pen);
    return st;
}

/* Step 7 over a sorted list: the first token at which the running sum of
 * v exceeds target; -1 if the list ran out first. *last: the last token with
 * v > 0 seen (the fallback when rounding leaves target >= the total). */
static int32_t draw_walk(const cand *c, int32_t m, double zmax, double t, double target, int32_t *last) {
    double cum = 0.0;
    for (int32_t i = 0; i < m; i++) {
        double v = exp_core(scaled(c[i].z, zmax, t));
        cum += v;
        if (v > 0) *last = c[i].id;
        if (target < cum) return c[i].id;
    }
    return -1;
}

orc_status orc_sample(const float *logits, int32_t n_vocab, const orc_sampler_params *p, const int32_t *history,
                      int64_t n_history, orc_rng *rng, int32_t *token, orc_err *err) {
    chain ch;
    cand *kept = NULL, *c = NULL;
    int32_t n_kept = 0;
    int greedy = 0;
    if (!token) return orc_fail(err, ORC_E_INVALID, "token output is NULL");
    if (!rng && !(p && p->temperature == 0.0f))
        return orc_fail(err, ORC_E_INVALID, "rng is NULL (only greedy sampling, temperature = 0, needs none)");
    orc_status st = run_chain(&ch, logits, n_vocab, p, history, n_history, &greedy, &kept, &n_kept, err);
    if (st != ORC_OK) goto cleanup;
    if (greedy) {
        *token = ch.top;
        goto cleanup;
    }
    const double t = p->temperature;
    orc_rng r = *rng; /* committed only on success: a failed call leaves the RNG alone */
    const double u = orc_rng_uniform(&r);
    int32_t last = ch.top, tok;
    if (n_vocab == 1) {
        tok = 0;
    } else if (kept) {
        double s = 0.0;
        for (int32_t i = 0; i < n_kept; i++) s += exp_core(scaled(kept[i].z, ch.zmax, t));
        tok = draw_walk(kept, n_kept, ch.zmax, t, u * s, &last);
        if (tok < 0) tok = last;
    } else {
        /* Nothing truncates: the total comes from an id-order pass, the walk
         * goes through the sorted prefix that the histogram says holds the
         * target (nearly always a few hundred tokens). */
        double hist[NBUCKET] = {0};
        const double target = u * sum_all(&ch, t, NULL, hist);
        int32_t m = 0;
        if ((st = collect_sorted(&ch, prefix_threshold(hist, target, ch.zmax, t), &c, &m, err)) != ORC_OK) goto cleanup;
        tok = draw_walk(c, m, ch.zmax, t, target, &last);
        if (tok < 0 && m < n_vocab) {
            free(c);
            c = NULL;
            if ((st = collect_sorted(&ch, -INFINITY, &c, &m, err)) != ORC_OK) goto cleanup;
            tok = draw_walk(c, m, ch.zmax, t, target, &last);
        }
        if (tok < 0) tok = last;
    }
    *token = tok;
    *rng = r;
cleanup:
    free(c);
    free(kept);
    free(ch.pen);
    return st;
}
