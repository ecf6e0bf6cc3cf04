/* moe.cu - the mixture-of-experts primitives of the reference path: the router's top-k (its
 * kernels: moe_route_kernel.cuh), a product with per-slot expert selection (any stored form:
 * dense float32/float16/bfloat16 or GGUF blocks, decoded with quant_decode.h's decoders) and
 * its per-expert bias, and the weighted sum. Simple and exact before fast: one warp per output
 * row of one slot; the fast path's fused expert GEMV (cuda/gemv) reads only the selected
 * experts' blocks as well. */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <float.h>

#include "gguf/ggml_types.h"
#include "kernels/kernels.cuh"
#include "kernels/moe_route_kernel.cuh" /* the router's top-k: moe_route_kernel, moe_route_fast_kernel */
#include "kernels/moe_rows.cuh"
#include "quant/quant_decode.h"
#include "runtime/dtype.cuh"
#include "runtime/launch.cuh" /* orc_launch_dependent */
#include "runtime/simt.cuh"   /* orc_pdl_enter */

namespace {

/* out[s][r] = W[ids[s]][r] . x[s or s / k] (+ bias[ids[s]][r]); one warp per (slot, row). */
template <class ROW>
__global__ void matmul_id_kernel(const float *x, bool per_slot, const uint8_t *w, uint64_t row_bytes,
                                 const float *bias, const int32_t *ids, int64_t n_slots, int32_t k, int64_t rows_per,
                                 int64_t cols, int round_dt, float *out) {
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
    if (lane == 0) out[slot * rows_per + r] = bias ? acc + bias[(int64_t)ids[slot] * rows_per + r] : acc;
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
 * input dtype (as cuBLAS products round them), and the results back in slot order (+ the
 * slot's expert bias). One block a row (sorted position q = blockIdx.x): no divisions. */
__global__ void moe_gather_kernel(const float *x, bool per_slot, const int32_t *order, int32_t k, int64_t cols,
                                  void *xg, int dt) {
    const int64_t q = blockIdx.x, slot = order[q];
    const float *xr = x + (per_slot ? slot : slot / k) * cols;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) orc_store_from_f32(xg, (orc_dtype)dt, q * cols + c, xr[c]);
}

__global__ void moe_scatter_kernel(const float *yg, const int32_t *order, const int32_t *ids, const float *bias,
                                   int64_t rows, float *out) {
    const int64_t q = blockIdx.x, slot = order[q];
    const float *y = yg + q * rows;
    float *o = out + slot * rows;
    const float *b = bias ? bias + (int64_t)ids[slot] * rows : nullptr;
    for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) o[r] = b ? y[r] + b[r] : y[r];
}

} /* namespace */

cudaError_t orc_launch_moe_gather(const float *x, bool per_slot, const int32_t *order, int64_t n_slots, int32_t k,
                                  int64_t cols, void *xg, orc_dtype dt, cudaStream_t s) {
    if (n_slots <= 0) return cudaSuccess;
    if (n_slots > 0x7fffffff) return cudaErrorInvalidValue;
    moe_gather_kernel<<<(unsigned)n_slots, 256, 0, s>>>(x, per_slot, order, k, cols, xg, (int)dt);
    return cudaGetLastError();
}

cudaError_t orc_launch_moe_scatter(const float *yg, const int32_t *order, const int32_t *ids, const float *bias,
                                   int64_t n_slots, int64_t rows, float *out, cudaStream_t s) {
    if (n_slots <= 0) return cudaSuccess;
    if (n_slots > 0x7fffffff) return cudaErrorInvalidValue;
    moe_scatter_kernel<<<(unsigned)n_slots, 256, 0, s>>>(yg, order, ids, bias, rows, out);
    return cudaGetLastError();
}

cudaError_t orc_launch_moe_route(const float *logits, int64_t n, int32_t n_expert, int32_t k, int kind, bool norm,
                                 int32_t *ids, float *w, cudaStream_t s) {
    using namespace orc_moe_route;
    if (n <= 0) return cudaSuccess;
    if (k <= 0 || k > n_expert || n_expert > ROUTE_MAX_EXPERTS) return cudaErrorInvalidValue;
    if (n_expert <= ROUTE_FAST_MAX_EXPERTS && k <= ROUTE_FAST_MAX_K) {
        /* Up to 1024 tokens (decode, small batches) one warp a block: no idle warps, the tokens
         * spread over the SMs (within their 32 resident blocks); more, four a block. */
        const int warps = n <= 1024 ? 1 : ROUTE_WARPS;
        const dim3 grid((unsigned)((n + warps - 1) / warps)), block(32 * warps);
        const auto go = [&](void (*kernel)(const float *, int64_t, int32_t, int32_t, int, bool, int32_t *, float *)) {
            return orc_launch_dependent(kernel, grid, block, 0, s, logits, n, n_expert, k, kind, norm, ids, w);
        };
        const int32_t per_lane = (n_expert + 31) / 32;
        if (per_lane <= 1) return go(moe_route_fast_kernel<1>);
        if (per_lane <= 2) return go(moe_route_fast_kernel<2>);
        if (per_lane <= 4) return go(moe_route_fast_kernel<4>);
        return go(moe_route_fast_kernel<8>);
    }
    return orc_launch_dependent(moe_route_kernel, dim3((unsigned)((n + ROUTE_WARPS - 1) / ROUTE_WARPS)),
                                dim3(32 * ROUTE_WARPS), 0, s, logits, n, n_expert, k, kind, norm, ids, w);
}

cudaError_t orc_launch_matmul_id(const float *x, bool per_slot, const void *w, orc_dtype w_dtype, int32_t w_qtype,
                                 uint64_t row_bytes, const float *bias, const int32_t *ids, int64_t n, int32_t k,
                                 int64_t rows_per, int64_t cols, bool round_inputs, float *out, cudaStream_t s) {
    const int64_t slots = n * k;
    if (slots <= 0) return cudaSuccess;
    if (cols % 8) return cudaErrorInvalidValue;
    const dim3 grid((unsigned)slots, (unsigned)((rows_per + 3) / 4));
    const uint8_t *wb = static_cast<const uint8_t *>(w);
    const int round_dt = round_inputs && w_qtype < 0 && w_dtype != ORC_DTYPE_F32 ? (int)w_dtype : -1;
#define GO(ROW) matmul_id_kernel<ROW><<<grid, 128, 0, s>>>(x, per_slot, wb, row_bytes, bias, ids, slots, k, rows_per, \
                                                         cols, round_dt, out)
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

cudaError_t orc_launch_moe_combine(const float *y, const float *w, int64_t n, int32_t k, int64_t cols,
                                   const float *res, float *out, cudaStream_t s) {
    if (n <= 0) return cudaSuccess;
    return orc_launch_dependent(moe_combine_kernel, dim3(orc_grid_1d(n * cols, 256)), dim3(256), 0, s, y, w, n, k, cols,
                                res, out);
}
