/* moe_route_warp.cuh - one warp's top-k of one token's router logits (route_warp), the body of
 * moe_route_kernel.cuh's fast top-k launch and of the MoE gate/up GEMV that ranks the experts
 * itself (gemv_kernel.cuh, route_logits): device functions only, so that every translation unit
 * of the GEMV can include it (the launches live in moe_route_kernel.cuh). moe_route_kernel.cuh's
 * top comment says what it computes and why its bits equal the reference kernel's. */
#ifndef ORC_MOE_ROUTE_WARP_CUH
#define ORC_MOE_ROUTE_WARP_CUH

#include <float.h>
#include <math.h>
#include <stdint.h>

#include "model/arch.h"     /* orc_router_kind */
#include "runtime/simt.cuh" /* the emulator's stand-ins */

namespace orc_moe_route {

constexpr int ROUTE_FAST_MAX_EXPERTS = 256; /* 8 logits a lane */
constexpr int ROUTE_FAST_MAX_K = 32;        /* one winner a lane */
constexpr unsigned ROUTE_FULL = 0xffffffffu;

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

/* The same result as moe_route_kernel for n_expert <= 32 P and k <= 32 (the top comment), one warp
 * per token and blockDim.x / 32 tokens a block. Lanes >= k compute a weight nobody stores: every
 * lane runs every shuffle. */
/* One warp's token: its n_expert logits l, the k ids and weights into id[0..k) and w[0..k) (lane
 * j stores entry j). The whole warp calls it, converged. A device function so that a kernel that
 * needs the ids itself (a product that reads only the chosen experts) can rank a token's logits
 * with the same bits as this launch. */
template <int P>
__device__ __forceinline__ void route_warp(const float *l, int32_t n_expert, int32_t k, int kind, bool norm,
                                           int32_t *id, float *w) {
    const int lane = threadIdx.x % 32;
    float v[P];
    uint32_t key[P];
    bool nan = false;
#pragma unroll
    for (int p = 0; p < P; p++) { /* all P loads in flight at once */
        const int32_t i = lane + 32 * p;
        v[p] = i < n_expert ? l[i] : 0.0f;
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
        id[lane] = (int32_t)mine_id;
        w[lane] = wj;
    }
}

} /* namespace orc_moe_route */

#endif /* ORC_MOE_ROUTE_WARP_CUH */
