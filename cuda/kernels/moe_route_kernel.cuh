/* moe_route_kernel.cuh - the mixture-of-experts router's top-k (moe.cu's orc_launch_moe_route
 * launches it), on runtime/simt.cuh's primitives so that tests/c/test_moe_route_emu.cpp runs this
 * same code on the host emulator.
 *
 * Per token: the k experts with the greatest logits (ties and NaNs: route_beats), and their
 * weights: softmax over all experts then the k chosen (ORC_ROUTER_SOFTMAX_TOPK, qwen3moe),
 * optionally renormalised, or softmax over the k raw logits (ORC_ROUTER_TOPK_SOFTMAX, gpt-oss).
 *
 * Two kernels, one result. moe_route_kernel is the reference form (k rounds over the logits in
 * global memory, the chosen experts marked in shared memory, lane 0 finishing the weights in
 * global memory); it serves n_expert > ROUTE_FAST_MAX_EXPERTS and k > ROUTE_FAST_MAX_K.
 * moe_route_fast_kernel<P> (the models' shapes: 128 / 32 experts, k 8 / 4) holds the logits in
 * registers, P a lane (expert lane + 32 p), each as an unsigned key that orders as route_beats
 * does; a round is two warp reductions (the greatest key, then the lowest index holding it) and
 * a shuffle of the winner's logit, and a chosen expert's key is zeroed in its lane. Lane j keeps
 * winner j and computes its weight; the serial sums are shuffles from lanes 0..k-1 in order.
 * Both give bit-identical ids and weights for every input: the fast kernel does the same float
 * operations on the same operands in the same order (the softmax denominator: each lane's
 * expf sum in increasing index, then the xor butterfly 16..1, lane 0's value; the
 * renormalisations: sums over j = 0..k-1, one division per weight), and the emulator test runs
 * both on random and adversarial rows (NaN, infinities, ties, signed zeros) and compares bits.
 * (On the device nvcc also contracts the same products into the same sums in both: see the fast
 * kernel's softmax sum.) */
#ifndef ORC_MOE_ROUTE_KERNEL_CUH
#define ORC_MOE_ROUTE_KERNEL_CUH

#include <float.h>
#include <math.h>
#include <stdint.h>

#include "kernels/moe_route_warp.cuh" /* route_warp: the fast kernel's body */
#include "model/arch.h"     /* orc_router_kind */
#include "runtime/simt.cuh" /* orc_pdl_enter, ORC_SHARED_ARRAY; the emulator's stand-ins */

namespace orc_moe_route {

/* One warp per token: k rounds of a warp arg-max over the experts (lanes stride the experts).
 * A round's winner is the greatest logit, the lowest index among equals; NaN logits lose to
 * every number (a token whose logits are all NaN still gets k distinct ids). Chosen experts
 * are marked in shared memory. Weights: softmax over all experts then top-k (qwen3moe), or
 * softmax over the k raw logits (gpt-oss); optional renormalisation of the k weights. A token
 * with a NaN logit gets NaN weights (as on the CPU): a NaN never passes unseen. */
constexpr int ROUTE_WARPS = 4;
constexpr int ROUTE_MAX_EXPERTS = 4096; /* arch.c caps expert_count there */

__device__ __forceinline__ bool route_beats(float v, int32_t i, float bv, int32_t bi) {
    if (bi < 0) return i >= 0;
    if (i < 0) return false;
    const bool vn = v != v, bn = bv != bv;
    if (vn != bn) return bn;          /* a number beats NaN */
    if (!vn && v != bv) return v > bv; /* both numbers */
    return i < bi;                     /* equal, or both NaN: the lower index */
}

__global__ void moe_route_kernel(const float *logits, int64_t n, int32_t n_expert, int32_t k, int kind, bool norm,
                                 int32_t *ids, float *w) {
    ORC_SHARED_ARRAY(unsigned char, taken_all, ROUTE_WARPS * ROUTE_MAX_EXPERTS);
    orc_pdl_enter();
    const int lane = threadIdx.x % 32, wi = threadIdx.x / 32;
    const int64_t t = blockIdx.x * (int64_t)ROUTE_WARPS + wi;
    if (t >= n) return;
    unsigned char *taken = taken_all + wi * ROUTE_MAX_EXPERTS;
    const float *l = logits + t * n_expert;
    int32_t *id = ids + t * k;
    float *wt = w + t * k;
    float mx = -FLT_MAX, sum = 0.0f;
    bool nan = false;
    for (int32_t i = lane; i < n_expert; i += 32) {
        taken[i] = 0;
        mx = fmaxf(mx, l[i]);
        nan = nan || l[i] != l[i];
    }
    nan = __any_sync(0xffffffffu, nan);
    for (int off = 16; off > 0; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
    if (kind == ORC_ROUTER_SOFTMAX_TOPK) {
        for (int32_t i = lane; i < n_expert; i += 32) sum += expf(l[i] - mx);
        for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
    }
    __syncwarp();
    for (int32_t j = 0; j < k; j++) {
        float bv = 0.0f;
        int32_t bi = -1;
        for (int32_t i = lane; i < n_expert; i += 32)
            if (!taken[i] && route_beats(l[i], i, bv, bi)) bv = l[i], bi = i;
        for (int off = 16; off > 0; off >>= 1) {
            const float ov = __shfl_xor_sync(0xffffffffu, bv, off);
            const int32_t oi = __shfl_xor_sync(0xffffffffu, bi, off);
            if (route_beats(ov, oi, bv, bi)) bv = ov, bi = oi;
        }
        if (lane == 0) {
            taken[bi] = 1;
            id[j] = bi;
            wt[j] = kind == ORC_ROUTER_SOFTMAX_TOPK ? expf(bv - mx) / sum : bv;
        }
        __syncwarp();
    }
    if (lane != 0) return;
    if (kind == ORC_ROUTER_TOPK_SOFTMAX) {
        const float m0 = wt[0];
        float s = 0.0f;
        for (int32_t j = 0; j < k; j++) s += (wt[j] = expf(wt[j] - m0));
        for (int32_t j = 0; j < k; j++) wt[j] /= s;
    } else if (norm) {
        float s = 0.0f;
        for (int32_t j = 0; j < k; j++) s += wt[j];
        for (int32_t j = 0; j < k; j++) wt[j] /= s;
    }
    if (nan)
        for (int32_t j = 0; j < k; j++) wt[j] = __int_as_float(0x7fc00000);
}

template <int P>
__global__ void __launch_bounds__(32 * ROUTE_WARPS)
    moe_route_fast_kernel(const float *logits, int64_t n, int32_t n_expert, int32_t k, int kind, bool norm,
                          int32_t *ids, float *w) {
    orc_pdl_enter();
    const int64_t t = blockIdx.x * (int64_t)(blockDim.x / 32) + threadIdx.x / 32;
    if (t >= n) return; /* the whole warp */
    route_warp<P>(logits + t * n_expert, n_expert, k, kind, norm, ids + t * k, w + t * k);
}

} /* namespace orc_moe_route */

#endif /* ORC_MOE_ROUTE_KERNEL_CUH */
