/* moe_route_topk.cuh - the router's warp top-k as device functions (route_token_fast, and
 * route_token_fast_cg for a kernel's last block): moe_route_kernel.cuh's fast kernel runs it, and so
 * does the GEMV's route epilogue (cuda/gemv/gemv_kernel.cuh), so that both give the same bits. What
 * it computes and why it equals the reference kernel: moe_route_kernel.cuh's top comment. */
#ifndef ORC_MOE_ROUTE_TOPK_CUH
#define ORC_MOE_ROUTE_TOPK_CUH

#include <float.h>
#include <math.h>
#include <stdint.h>

#include "model/arch.h"     /* orc_router_kind */
#include "runtime/simt.cuh" /* orc_ldcg; the emulator's stand-ins */

namespace orc_moe_route {

constexpr int ROUTE_WARPS = 4;              /* tokens a block (moe_route_kernel.cuh's kernels) */
constexpr int ROUTE_MAX_EXPERTS = 4096;     /* arch.c caps expert_count there */
constexpr int ROUTE_FAST_MAX_EXPERTS = 256; /* 8 logits a lane */
constexpr int ROUTE_FAST_MAX_K = 32;        /* one winner a lane */
constexpr unsigned ROUTE_FULL = 0xffffffffu;

__device__ __forceinline__ bool route_beats(float v, int32_t i, float bv, int32_t bi) {
    if (bi < 0) return i >= 0;
    if (i < 0) return false;
    const bool vn = v != v, bn = bv != bv;
    if (vn != bn) return bn;          /* a number beats NaN */
    if (!vn && v != bv) return v > bv; /* both numbers */
    return i < bi;                     /* equal, or both NaN: the lower index */
}

/* route_beats as an unsigned order: a greater key is a better logit, equal keys are equal logits
 * (both NaN, or equal numbers: -0 and +0 one key), so a round's winner is the greatest key and
 * among equal keys the lowest index. NaN is 1, the numbers 0x007fffff (-inf) .. 0xff800000 (+inf)
 * by the sign-magnitude flip; 0 is left for "taken" (and the lanes past n_expert). */
__device__ __forceinline__ uint32_t route_key(float v) {
    const uint32_t u = __float_as_uint(v);
    if (v != v) return 1u;
    if (v == 0.0f) return 0x80000000u;
    return u & 0x80000000u ? ~u : u | 0x80000000u;
}

/* One token's top-k by one warp, the same result as moe_route_kernel for n_expert <= 32 P and
 * k <= 32 (the top comment): logits l[0..n_expert), ids[0..k) and w[0..k) out. Lanes >= k compute
 * a weight nobody stores: every lane runs every shuffle. CG: the logits are read through L2 (a
 * kernel's last block reading what its other blocks wrote: the GEMV's route epilogue). */
template <int P, bool CG>
__device__ __forceinline__ void route_token_fast(const float *l, int32_t n_expert, int32_t k, int kind, bool norm,
                                                 int32_t *ids, float *w) {
    const int lane = threadIdx.x % 32;
    float v[P];
    uint32_t key[P];
    bool nan = false;
#pragma unroll
    for (int p = 0; p < P; p++) { /* all P loads in flight at once */
        const int32_t i = lane + 32 * p;
        v[p] = i < n_expert ? (CG ? orc_ldcg(l + i) : l[i]) : 0.0f;
    }
#pragma unroll
    for (int p = 0; p < P; p++) {
        const bool in = lane + 32 * p < n_expert;
        key[p] = in ? route_key(v[p]) : 0u;
        nan = nan || (in && v[p] != v[p]);
    }
    nan = __any_sync(ROUTE_FULL, nan);

    /* k rounds; lane j keeps winner j (its id and logit), every lane round 0's logit */
    float top = 0.0f, mine = 0.0f;
    uint32_t mine_id = 0;
    for (int32_t j = 0; j < k; j++) {
        uint32_t best = 0u, bi = 0xffffffffu;
        float bv = 0.0f;
#pragma unroll
        for (int p = 0; p < P; p++) /* strictly greater: the lower index keeps a tie */
            if (key[p] > best) best = key[p], bi = (uint32_t)(lane + 32 * p), bv = v[p];
        /* redux.sync: sm_80 and later, which cp.async and mma.sync elsewhere already require */
        const uint32_t m = __reduce_max_sync(ROUTE_FULL, best); /* >= 1: k <= n_expert leaves an expert untaken */
        const uint32_t win = __reduce_min_sync(ROUTE_FULL, best == m ? bi : 0xffffffffu);
        const float wv = __shfl_sync(ROUTE_FULL, bv, (int)(win % 32)); /* the owner's best is the winner */
        if (j == 0) top = wv;
        if (lane == j) mine = wv, mine_id = win;
#pragma unroll
        for (int p = 0; p < P; p++)
            if ((uint32_t)(lane + 32 * p) == win) key[p] = 0u;
    }

    float wj = mine;
    if (kind == ORC_ROUTER_SOFTMAX_TOPK) {
        /* fmaxf over all logits from -FLT_MAX (the reference's mx) is max(-FLT_MAX, the greatest
         * number), and the greatest number, when there is one, is round 0's winner (numbers beat
         * NaN). Only the sign of a zero may differ, which no l - mx below can tell. */
        const float mx = fmaxf(-FLT_MAX, top);
        float sum = 0.0f;
        /* written as the reference writes it: nvcc fuses expf's last product into this add (an
         * FFMA into the sum, in both kernels alike; the emulator, built without contraction,
         * cannot see that, the SASS shows it) */
#pragma unroll
        for (int p = 0; p < P; p++)
            if (lane + 32 * p < n_expert) sum += expf(v[p] - mx);
        for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(ROUTE_FULL, sum, off);
        sum = __shfl_sync(ROUTE_FULL, sum, 0); /* lane 0's, as the reference (a NaN's payload may differ) */
        wj = expf(mine - mx) / sum;
    }
    if (kind == ORC_ROUTER_TOPK_SOFTMAX) {
        const float m0 = top; /* wt[0]: winner 0's raw logit */
        const float e = expf(wj - m0);
        float s = 0.0f;
        for (int32_t j = 0; j < k; j++) s += __shfl_sync(ROUTE_FULL, e, j);
        wj = e / s;
    } else if (norm) {
        float s = 0.0f;
        for (int32_t j = 0; j < k; j++) s += __shfl_sync(ROUTE_FULL, wj, j);
        wj = wj / s;
    }
    if (nan) wj = __int_as_float(0x7fc00000);
    if (lane < k) {
        ids[lane] = (int32_t)mine_id;
        w[lane] = wj;
    }
}

/* route_token_fast with P chosen for n_expert (<= ROUTE_FAST_MAX_EXPERTS), CG loads: the
 * GEMV's route epilogue (gemv_kernel.cuh), whose last block routes every token. Not inlined: the
 * GEMV's main loop keeps its registers. */
__device__ __noinline__ inline void route_token_fast_cg(const float *l, int32_t n_expert, int32_t k, int kind, bool norm,
                                                 int32_t *ids, float *w) {
    const int32_t per_lane = (n_expert + 31) / 32;
    if (per_lane <= 1) route_token_fast<1, true>(l, n_expert, k, kind, norm, ids, w);
    else if (per_lane <= 2) route_token_fast<2, true>(l, n_expert, k, kind, norm, ids, w);
    else if (per_lane <= 4) route_token_fast<4, true>(l, n_expert, k, kind, norm, ids, w);
    else route_token_fast<8, true>(l, n_expert, k, kind, norm, ids, w);
}

} /* namespace orc_moe_route */

#endif /* ORC_MOE_ROUTE_TOPK_CUH */
