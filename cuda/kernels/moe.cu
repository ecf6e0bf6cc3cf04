/* moe.cu - the mixture-of-experts primitives of the reference path: the router's top-k, a
 * product with per-slot expert selection (any stored form: dense float32/float16/bfloat16
 * or GGUF blocks, decoded with quant_decode.h's decoders), per-expert biases and the
 * weighted sum. Simple and exact before fast: one warp per output row of one slot; the fast
 * path's fused expert GEMV (cuda/gemv) reads only the selected experts' blocks as well. */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <float.h>

#include "gguf/ggml_types.h"
#include "kernels/kernels.cuh"
#include "kernels/moe_rows.cuh"
#include "model/arch.h" /* orc_router_kind */
#include "quant/quant_decode.h"
#include "runtime/dtype.cuh"
#include "runtime/launch.cuh" /* orc_launch_dependent */
#include "runtime/simt.cuh"   /* orc_pdl_enter */

namespace {

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
    __shared__ unsigned char taken_all[ROUTE_WARPS][ROUTE_MAX_EXPERTS];
    orc_pdl_enter();
    const int lane = threadIdx.x % 32, wi = threadIdx.x / 32;
    const int64_t t = blockIdx.x * (int64_t)ROUTE_WARPS + wi;
    if (t >= n) return;
    unsigned char *taken = taken_all[wi];
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

/* out[s][r] = W[ids[s]][r] . x[s or s / k]; one warp per (slot, row). */
template <class ROW>
__global__ void matmul_id_kernel(const float *x, bool per_slot, const uint8_t *w, uint64_t row_bytes,
                                 const int32_t *ids, int64_t n_slots, int32_t k, int64_t rows_per, int64_t cols,
                                 int round_dt, float *out) {
    const int lane = threadIdx.x % 32;
    const int64_t slot = blockIdx.x;
    const int64_t r = (int64_t)blockIdx.y * (blockDim.x / 32) + threadIdx.x / 32;
    if (slot >= n_slots || r >= rows_per) return;
    const float *xr = x + (per_slot ? slot : slot / k) * cols;
    const uint8_t *row = w + ((uint64_t)ids[slot] * (uint64_t)rows_per + (uint64_t)r) * row_bytes;
    float acc = 0.0f;
    for (int64_t c8 = lane; c8 < cols / 8; c8 += 32) {
        float y[8];
        ROW::get(row, c8, y);
#pragma unroll
        for (int q = 0; q < 8; q++) {
            float xv = xr[c8 * 8 + q];
            if (round_dt == ORC_DTYPE_F16) xv = __half2float(__float2half_rn(xv));
            else if (round_dt == ORC_DTYPE_BF16) xv = __bfloat162float(__float2bfloat16_rn(xv));
            acc += xv * y[q];
        }
    }
    for (int off = 16; off > 0; off >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, off);
    if (lane == 0) out[slot * rows_per + r] = acc;
}

__global__ void add_bias_id_kernel(float *x, const float *bias, const int32_t *ids, int64_t n_slots, int64_t cols) {
    const int64_t total = n_slots * cols;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x)
        x[i] += bias[(int64_t)ids[i / cols] * cols + i % cols];
}

__global__ void moe_combine_kernel(const float *y, const float *w, int64_t n, int32_t k, int64_t cols,
                                   const float *res, float *out) {
    orc_pdl_enter();
    const int64_t total = n * cols;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t t = i / cols, c = i % cols;
        float acc = 0.0f;
        for (int32_t j = 0; j < k; j++) acc += w[t * k + j] * y[(t * k + j) * cols + c];
        out[i] = res ? res[i] + acc : acc;
    }
}

/* Grouped products (many slots): rows of x in expert order, converted to the product's
 * input dtype (as cuBLAS products round them), and the results back in slot order. */
__global__ void moe_gather_kernel(const float *x, bool per_slot, const int32_t *order, int64_t n_slots, int32_t k,
                                  int64_t cols, void *xg, int dt) {
    const int64_t total = n_slots * cols;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t q = i / cols, c = i % cols, slot = order[q];
        orc_store_from_f32(xg, (orc_dtype)dt, i, x[(per_slot ? slot : slot / k) * cols + c]);
    }
}

__global__ void moe_scatter_kernel(const float *yg, const int32_t *order, int64_t n_slots, int64_t rows,
                                   float *out) {
    const int64_t total = n_slots * rows;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x)
        out[(int64_t)order[i / rows] * rows + i % rows] = yg[i];
}

} /* namespace */

cudaError_t orc_launch_moe_gather(const float *x, bool per_slot, const int32_t *order, int64_t n_slots, int32_t k,
                                  int64_t cols, void *xg, orc_dtype dt, cudaStream_t s) {
    if (n_slots <= 0) return cudaSuccess;
    moe_gather_kernel<<<orc_grid_1d(n_slots * cols, 256), 256, 0, s>>>(x, per_slot, order, n_slots, k, cols, xg, (int)dt);
    return cudaGetLastError();
}

cudaError_t orc_launch_moe_scatter(const float *yg, const int32_t *order, int64_t n_slots, int64_t rows, float *out,
                                   cudaStream_t s) {
    if (n_slots <= 0) return cudaSuccess;
    moe_scatter_kernel<<<orc_grid_1d(n_slots * rows, 256), 256, 0, s>>>(yg, order, n_slots, rows, out);
    return cudaGetLastError();
}

cudaError_t orc_launch_moe_route(const float *logits, int64_t n, int32_t n_expert, int32_t k, int kind, bool norm,
                                 int32_t *ids, float *w, cudaStream_t s) {
    if (n <= 0) return cudaSuccess;
    if (k <= 0 || k > n_expert || n_expert > ROUTE_MAX_EXPERTS) return cudaErrorInvalidValue;
    return orc_launch_dependent(moe_route_kernel, dim3((unsigned)((n + ROUTE_WARPS - 1) / ROUTE_WARPS)),
                                dim3(32 * ROUTE_WARPS), 0, s, logits, n, n_expert, k, kind, norm, ids, w);
}

cudaError_t orc_launch_matmul_id(const float *x, bool per_slot, const void *w, orc_dtype w_dtype, int32_t w_qtype,
                                 uint64_t row_bytes, const int32_t *ids, int64_t n, int32_t k, int64_t rows_per,
                                 int64_t cols, bool round_inputs, float *out, cudaStream_t s) {
    const int64_t slots = n * k;
    if (slots <= 0) return cudaSuccess;
    if (cols % 8) return cudaErrorInvalidValue;
    const dim3 grid((unsigned)slots, (unsigned)((rows_per + 3) / 4));
    const uint8_t *wb = static_cast<const uint8_t *>(w);
    const int round_dt = round_inputs && w_qtype < 0 && w_dtype != ORC_DTYPE_F32 ? (int)w_dtype : -1;
#define GO(ROW) matmul_id_kernel<ROW><<<grid, 128, 0, s>>>(x, per_slot, wb, row_bytes, ids, slots, k, rows_per, cols, \
                                                         round_dt, out)
    if (w_qtype < 0) {
        switch (w_dtype) {
        case ORC_DTYPE_F16: GO(dense_row<ORC_DTYPE_F16>); break;
        case ORC_DTYPE_BF16: GO(dense_row<ORC_DTYPE_BF16>); break;
        default: GO(dense_row<ORC_DTYPE_F32>); break;
        }
    } else {
        return orc_with_block_row(w_qtype, [&](auto row) {
            GO(decltype(row));
            return cudaGetLastError();
        });
    }
#undef GO
    return cudaGetLastError();
}

cudaError_t orc_launch_add_bias_id(float *x, const float *bias, const int32_t *ids, int64_t n_slots, int64_t cols,
                                   cudaStream_t s) {
    if (n_slots <= 0) return cudaSuccess;
    add_bias_id_kernel<<<orc_grid_1d(n_slots * cols, 256), 256, 0, s>>>(x, bias, ids, n_slots, cols);
    return cudaGetLastError();
}

cudaError_t orc_launch_moe_combine(const float *y, const float *w, int64_t n, int32_t k, int64_t cols,
                                   const float *res, float *out, cudaStream_t s) {
    if (n <= 0) return cudaSuccess;
    return orc_launch_dependent(moe_combine_kernel, dim3(orc_grid_1d(n * cols, 256)), dim3(256), 0, s, y, w, n, k, cols,
                                res, out);
}
