/* sample.c - the sampler chain described in sample.h (penalties -> top-k ->
 * top-p -> min-p -> temperature -> draw) and its PCG32 RNG, written so that a
 * (seed, logits, parameters) triple picks the same token on every platform.
 *
 * Speed: nothing here touches all of a 262144-entry vocabulary more than a
 * few times. The penalized logits are never copied: tokens seen in the
 * penalty window are kept in a short list sorted by id, and every scan walks
 * the raw logits in the runs between them. Top-k selects with a bounded heap
 * (no full sort); min-p without top-k sorts only the tokens that can pass it;
 * top-p alone, and the draw when nothing truncates, sort a growing prefix
 * (256, then 8192 tokens) and fall back to a full sort only when the
 * distribution is flat enough to need it (llama.cpp's top-p does the same).
 */
#include "sample.h"

#include <float.h>   /* FLT_EVAL_METHOD */
#include <math.h>    /* isnan/isfinite, INFINITY; log only in a conservative prefilter */
#include <stdlib.h>  /* malloc, free, qsort */
#include <string.h>  /* memcpy, memset */

/* Reproducibility needs plain binary64 arithmetic: no x87 extended precision
 * and no fused multiply-add (which would round a*b+c once instead of twice). */
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD != 0
#error "sample.c needs FLT_EVAL_METHOD == 0 (no extended-precision intermediates) for reproducible sampling"
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

double orc_sample_exp(double x) {
    /* x = k*ln2 + r with |r| <= ln2/2; exp(r) = 1 + 2r/(2 - R(r)) where R is
     * fdlibm's degree-10 even minimax fit; then scale by 2^k in the exponent
     * bits. ln2 is split in hi + lo with hi's low bits zero, so k*hi is exact. */
    static const double ln2_hi = 0x1.62e42feep-1, ln2_lo = 0x1.a39ef35793c76p-33;
    static const double inv_ln2 = 0x1.71547652b82fep+0;
    static const double P1 = 0x1.555555555553ep-3, P2 = -0x1.6c16c16bebd93p-9, P3 = 0x1.1566aaf25de2cp-14,
                        P4 = -0x1.bbd41c5d26bf1p-20, P5 = 0x1.6376972bea4d0p-25;
    if (isnan(x)) return x;
    if (x > 0x1.62e42fefa39efp+9) return INFINITY; /* above log(DBL_MAX) */
    if (x < -0x1.74910d52d3051p+9) return 0.0;     /* below log of the least subnormal */
    double ax = x < 0 ? -x : x;
    if (ax < 0x1p-28) return 1.0 + x;

    int k = 0;
    double hi = x, lo = 0.0;
    if (ax > 0.5 * 0x1.62e42feep-1) {
        double kd = x * inv_ln2 + (x < 0 ? -0.5 : 0.5);
        k = (int)kd; /* truncation toward zero: round to nearest */
        double t = (double)k;
        hi = x - t * ln2_hi;
        lo = t * ln2_lo;
        x = hi - lo;
    }
    double t = x * x;
    double c = x - t * (P1 + t * (P2 + t * (P3 + t * (P4 + t * P5))));
    if (k == 0) return 1.0 - ((x * c) / (c - 2.0) - x);
    double y = 1.0 - ((lo - (x * c) / (2.0 - c)) - hi);

    uint64_t bits;
    memcpy(&bits, &y, sizeof bits);
    if (k >= -1021) {
        bits += (uint64_t)(int64_t)k << 52;
        memcpy(&y, &bits, sizeof y);
        return y;
    }
    bits += (uint64_t)(int64_t)(k + 1000) << 52; /* the result is subnormal: round once, at the end */
    memcpy(&y, &bits, sizeof y);
    return y * 0x1p-1000;
}

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

static int64_t first_nonfinite(const float *x, int32_t n) {
    /* Blocks with an OR of the exponent test keep the common case branch-free. */
    for (int32_t i0 = 0; i0 < n; i0 += 4096) {
        int32_t i1 = n - i0 > 4096 ? i0 + 4096 : n;
        uint32_t bad = 0;
        for (int32_t i = i0; i < i1; i++) {
            uint32_t u;
            memcpy(&u, &x[i], sizeof u);
            bad |= (uint32_t)((u & 0x7f800000u) == 0x7f800000u);
        }
        if (bad)
            for (int32_t i = i0; i < i1; i++)
                if (!isfinite(x[i])) return i;
    }
    return -1;
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
            float bf = ch->logits[b];
            int32_t bi = b;
            for (int32_t i = b + 1; i < e; i++)
                if (ch->logits[i] > bf) {
                    bf = ch->logits[i];
                    bi = i;
                }
            if ((double)bf > best) {
                best = bf;
                top = bi;
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

/* The first m tokens in sort order (m <= n), sorted, into a new array. */
static orc_status top_sorted(const chain *ch, int32_t m, cand **out, orc_err *err) {
    cand *h = malloc((size_t)m * sizeof *h);
    if (!h) return orc_fail(err, ORC_E_NOMEM, "sampler: %lld bytes for %d candidates", (long long)m * (long long)sizeof *h, (int)m);
    int32_t size = 0;
    if (m == ch->n) {
        for (int32_t j = 0; j <= ch->n_pen; j++) {
            for (int32_t i = run_begin(ch, j); i < run_end(ch, j); i++) h[size++] = (cand){ch->logits[i], i};
            if (j < ch->n_pen) h[size++] = ch->pen[j];
        }
    } else {
        /* Ids arrive in ascending order, so a newcomer whose z equals the
         * root's sorts after it: only a strictly greater z gets in. */
        for (int32_t j = 0; j <= ch->n_pen; j++) {
            int32_t i = run_begin(ch, j), e = run_end(ch, j);
            for (; i < e && size < m; i++) heap_push(h, &size, (cand){ch->logits[i], i});
            for (; i < e; i++)
                if ((double)ch->logits[i] > h[0].z) heap_replace_root(h, m, (cand){ch->logits[i], i});
            if (j < ch->n_pen) {
                if (size < m)
                    heap_push(h, &size, ch->pen[j]);
                else if (ch->pen[j].z > h[0].z)
                    heap_replace_root(h, m, ch->pen[j]);
            }
        }
    }
    qsort(h, (size_t)m, sizeof *h, cand_cmp);
    *out = h;
    return ORC_OK;
}

/* The tokens that can pass min-p, sorted: every token with z - zmax at least
 * log(min_p) minus a margin far wider than the error of log and of
 * orc_sample_exp. It is a prefix of the sort order, and the exact test runs
 * on it later, so libm's log cannot change which tokens are kept. */
static orc_status min_p_candidates(const chain *ch, double min_p, cand **out, int32_t *n_out, orc_err *err) {
    const double thr = log(min_p) - 1e-6;
    int32_t count = 0;
    for (int32_t j = 0; j <= ch->n_pen; j++) {
        for (int32_t i = run_begin(ch, j); i < run_end(ch, j); i++) count += ((double)ch->logits[i] - ch->zmax >= thr);
        if (j < ch->n_pen) count += (ch->pen[j].z - ch->zmax >= thr);
    }
    cand *c = malloc((size_t)count * sizeof *c);
    if (!c) return orc_fail(err, ORC_E_NOMEM, "sampler: %d min-p candidates", (int)count);
    int32_t k = 0;
    for (int32_t j = 0; j <= ch->n_pen; j++) {
        for (int32_t i = run_begin(ch, j); i < run_end(ch, j); i++)
            if ((double)ch->logits[i] - ch->zmax >= thr) c[k++] = (cand){ch->logits[i], i};
        if (j < ch->n_pen && ch->pen[j].z - ch->zmax >= thr) c[k++] = ch->pen[j];
    }
    qsort(c, (size_t)count, sizeof *c, cand_cmp);
    *out = c;
    *n_out = count;
    return ORC_OK;
}

/* sum over the whole vocabulary, in id order, of exp((z - zmax) / t); when
 * out is not NULL the terms are stored there too. */
static double sum_all(const chain *ch, double t, double *out) {
    double s = 0.0;
    for (int32_t j = 0; j <= ch->n_pen; j++) {
        for (int32_t i = run_begin(ch, j); i < run_end(ch, j); i++) {
            double v = orc_sample_exp(((double)ch->logits[i] - ch->zmax) / t);
            if (out) out[i] = v;
            s += v;
        }
        if (j < ch->n_pen) {
            double v = orc_sample_exp((ch->pen[j].z - ch->zmax) / t);
            if (out) out[ch->pen[j].id] = v;
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
        double w = orc_sample_exp(c[i].z - zmax);
        if (min_p > 0 && i > 0 && w < min_p) return i;
        if (top_p < 1) {
            cum += w / Z;
            if (cum >= top_p) return i + 1;
        }
    }
    return complete ? m : -1;
}

/* Prefix sizes tried before a full sort, when the walk's length is unknown. */
static int32_t next_prefix(int32_t m, int32_t n) {
    int32_t next = m == 0 ? 256 : (m < 8192 ? 8192 : n);
    return next < n ? next : n;
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
    const int top_k_on = p->top_k > 0 && p->top_k < n_vocab;
    int32_t m = 0, L;
    if (top_k_on) {
        m = p->top_k;
        if ((st = top_sorted(ch, m, &c, err)) != ORC_OK) goto cleanup;
        double Z = 0.0;
        if (top_p < 1)
            for (int32_t i = 0; i < m; i++) Z += orc_sample_exp(c[i].z - ch->zmax);
        L = truncate_walk(c, m, 1, ch->zmax, Z, top_p, min_p);
    } else if (top_p < 1 || min_p > 0) {
        double Z = top_p < 1 ? sum_all(ch, 1.0, NULL) : 0.0;
        if (min_p > 0) {
            if ((st = min_p_candidates(ch, min_p, &c, &m, err)) != ORC_OK) goto cleanup;
            L = truncate_walk(c, m, 1, ch->zmax, Z, top_p, min_p);
        } else {
            do {
                free(c);
                c = NULL;
                m = next_prefix(m, n_vocab);
                if ((st = top_sorted(ch, m, &c, err)) != ORC_OK) goto cleanup;
                L = truncate_walk(c, m, m == n_vocab, ch->zmax, Z, top_p, min_p);
            } while (L < 0);
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
        const double t = p->temperature;
        double s = sum_all(&ch, t, probs);
        for (int32_t i = 0; i < n_vocab; i++) probs[i] /= s;
    } else {
        const double t = p->temperature;
        double s = 0.0;
        memset(probs, 0, (size_t)n_vocab * sizeof *probs);
        for (int32_t i = 0; i < n_kept; i++) {
            double v = orc_sample_exp((kept[i].z - ch.zmax) / t);
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
        double v = orc_sample_exp((c[i].z - zmax) / t);
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
        for (int32_t i = 0; i < n_kept; i++) s += orc_sample_exp((kept[i].z - ch.zmax) / t);
        tok = draw_walk(kept, n_kept, ch.zmax, t, u * s, &last);
        if (tok < 0) tok = last;
    } else {
        /* Nothing truncates: the total comes from an id-order pass; the walk
         * goes through growing sorted prefixes, which nearly always stop
         * within the first few hundred tokens. */
        const double target = u * sum_all(&ch, t, NULL);
        int32_t m = 0;
        do {
            free(c);
            c = NULL;
            m = next_prefix(m, n_vocab);
            if ((st = top_sorted(&ch, m, &c, err)) != ORC_OK) goto cleanup;
            tok = draw_walk(c, m, ch.zmax, t, target, &last);
        } while (tok < 0 && m < n_vocab);
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
