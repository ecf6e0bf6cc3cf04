/* head_norm.cuh - the per-head RMSNorm scale of q and k (qwen3, gemma3: attn_q_norm /
 * attn_k_norm) as one warp computes it, shared by rope.cu's fused norm + rope + KV store and the
 * decode attention's fused rope (attention_kernel.cuh), so both give the same bits. It mirrors
 * orc_rms_norm_kernel at a head's width: that kernel gives each element a thread, reduces each
 * warp's squares by an xor butterfly, then warp 0's lanes reduce the warp sums (zeros past them)
 * the same way; here lane L holds group r's element 32 r + L and replays both butterflies. */
#ifndef ORC_HEAD_NORM_CUH
#define ORC_HEAD_NORM_CUH

#include <math.h>
#include <stdint.h>

/* 1 / sqrt(mean(x^2) + eps) over x[0, head_dim) (head_dim <= 1024), called by all 32 lanes of a
 * warp; every lane gets the same value. */
__device__ __forceinline__ float orc_head_rms_scale(const float *x, int32_t head_dim, float eps) {
    const int lane = threadIdx.x & 31;
    const int32_t groups = (head_dim + 31) / 32;
    float mine = 0.0f; /* lane L ends with group L's sum */
    for (int32_t r = 0; r < groups; r++) {
        const int32_t j = 32 * r + lane;
        float ss = 0.0f;
        if (j < head_dim) ss += x[j] * x[j];
        for (int off = 16; off > 0; off >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, off);
        if (lane == r) mine = ss;
    }
    for (int off = 16; off > 0; off >>= 1) mine += __shfl_xor_sync(0xffffffffu, mine, off);
    return (float)(1.0 / sqrt((double)mine / (double)head_dim + (double)eps));
}

/* An element of the normed head: weight * (x * scale), in that order. */
__device__ __forceinline__ float orc_head_norm_value(float w, float x, float scale) { return w * (x * scale); }

#endif /* ORC_HEAD_NORM_CUH */
