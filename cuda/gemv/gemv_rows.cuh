/* gemv_rows.cuh - small float32 products a warp a row: the mixture-of-experts router (Qwen3-MoE:
 * 2048 -> 128, 1 MB; gpt-oss: 2880 -> 32), which the general GEMV (gemv_kernel.cuh) spreads over
 * 32 blocks of eight warps, four rows a warp and an eight-way column split combined by the last
 * block: 8.5 us alone, where llama.cpp's one block a row takes 3.3 (device run 31). Here every
 * warp owns one row and all its columns: its weights are in flight before the wait for the
 * previous kernel, then one pass over x, a butterfly, the epilogue. No scratch, no combine.
 *
 * The same arguments as orc_launch_gemv (gemv.cuh) for what it takes (rows_eligible below): F32
 * weights, plain products (no w_up, ids or stacked matrices; bias, res and the RMSNorm prologue
 * allowed), 1..8 tokens. The norm's inv_rms has the general GEMV's bits: lane l's float4 j is the
 * GEMV thread (l + 32 j) mod 256's, summed in the same order, the 8 virtual warps' butterflies
 * then added in warp order, so the router's normalized x is the gate/up product's, bit for bit.
 * The products themselves sum in another order than the general GEMV's (a float32 rounding apart).
 * Plain CUDA on runtime/simt.cuh: tests/c/test_gemv_rows_emu.cpp runs this code on the host. */
#ifndef ORC_GEMV_ROWS_CUH
#define ORC_GEMV_ROWS_CUH

#include <stdint.h>

#include "gemv/gemv.cuh"
#include "gguf/ggml_types.h" /* ORC_TYPE_F32 */
#include "runtime/simt.cuh"

namespace orc_gv_rows {

constexpr int kWarps = 4; /* rows a block */
constexpr int kThreads = 32 * kWarps;
constexpr int kNormThreads = 256; /* the general GEMV's block (orc_gv::kThreads: gemv.cu checks) */
constexpr int kVirtWarps = kNormThreads / 32;
constexpr int kChunk = 16;       /* float4s of the row a lane holds at a time: 2048 columns a warp */
constexpr int64_t kMaxRows = 1024; /* larger products fill the card through the general GEMV */
constexpr int64_t kMaxCols = 16384;

/* Does this launch take the row kernel? (The arguments are already checked by make_plan.) */
inline bool rows_eligible(const orc_gemv_args *a) {
    return a->type == ORC_TYPE_F32 && !a->w_up && !a->ids && a->n_more == 0 && a->pdl_role == ORC_GEMV_PDL_NEXT &&
           a->rows <= kMaxRows && a->cols <= kMaxCols && a->cols % 4 == 0 && (uintptr_t)a->x % 16 == 0 &&
           a->x_stride % 4 == 0 && (a->row_bytes == 0 || a->row_bytes % 16 == 0) &&
           (!a->norm_w || (uintptr_t)a->norm_w % 16 == 0);
}

struct rparams {
    const float *w;
    int64_t row_floats; /* floats from one row to the next */
    int64_t rows;
    int cols;
    const float *x;
    int64_t x_stride;
    float *y;
    int64_t y_stride;
    const float *bias, *res;
    int64_t res_stride;
    const float *norm_w;
    float eps;
};

inline rparams params_of(const orc_gemv_args *a) {
    rparams p;
    p.w = static_cast<const float *>(a->w);
    p.row_floats = a->row_bytes ? a->row_bytes / 4 : a->cols;
    p.rows = a->rows;
    p.cols = (int)a->cols;
    p.x = a->x;
    p.x_stride = a->x_stride;
    p.y = a->y;
    p.y_stride = a->y_stride;
    p.bias = a->bias;
    p.res = a->res;
    p.res_stride = a->res_stride;
    p.norm_w = a->norm_w;
    p.eps = a->norm_eps;
    return p;
}

__device__ __forceinline__ float butterfly(float v) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) v = __fadd_rn(v, __shfl_xor_sync(0xffffffffu, v, off));
    return v;
}

/* grid (ceil(rows / kWarps)), block kThreads; NT tokens. */
template <int NT>
__global__ void __launch_bounds__(kThreads) orc_gemv_rows_kernel(const rparams p) {
    const int lane = threadIdx.x & 31;
    const int64_t r = (int64_t)blockIdx.x * kWarps + (threadIdx.x >> 5);
    const bool has_row = r < p.rows; /* warp-uniform */
    const int nf4 = p.cols / 4;
    const float4 *wr = reinterpret_cast<const float4 *>(p.w + (has_row ? r : 0) * p.row_floats);

    /* The first chunk of the row's weights (written by no kernel) before the wait. */
    float4 wv[kChunk];
#pragma unroll
    for (int i = 0; i < kChunk; i++) {
        const int j = i * 32 + lane;
        wv[i] = has_row && j < nf4 ? __ldg(wr + j) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    }
    orc_pdl_trigger();
    orc_pdl_wait(); /* x and res from here on */
    if (!has_row) return;

    /* inv_rms per token in the general GEMV's order (see the top). */
    float inv[NT];
#pragma unroll
    for (int t = 0; t < NT; t++) inv[t] = 1.0f;
    if (p.norm_w) {
#pragma unroll
        for (int t = 0; t < NT; t++) {
            const float4 *xr = reinterpret_cast<const float4 *>(p.x + t * p.x_stride);
            float ss[kVirtWarps];
#pragma unroll
            for (int v = 0; v < kVirtWarps; v++) ss[v] = 0.0f;
            for (int j0 = 0; j0 * 32 < nf4; j0 += kVirtWarps)
#pragma unroll
                for (int v = 0; v < kVirtWarps; v++) {
                    const int idx = (j0 + v) * 32 + lane;
                    if (idx < nf4) {
                        const float4 x4 = xr[idx];
                        ss[v] = __fmaf_rn(x4.x, x4.x, ss[v]);
                        ss[v] = __fmaf_rn(x4.y, x4.y, ss[v]);
                        ss[v] = __fmaf_rn(x4.z, x4.z, ss[v]);
                        ss[v] = __fmaf_rn(x4.w, x4.w, ss[v]);
                    }
                }
            float a = butterfly(ss[0]);
#pragma unroll
            for (int v = 1; v < kVirtWarps; v++) a = __fadd_rn(a, butterfly(ss[v]));
            inv[t] = __fdiv_rn(1.0f, __fsqrt_rn(__fadd_rn(__fdiv_rn(a, (float)p.cols), p.eps)));
        }
    }

    /* acc[t] = sum over this lane's float4s j (in order) of w . x' (x' = (x * inv) * norm_w). */
    float acc[NT];
#pragma unroll
    for (int t = 0; t < NT; t++) acc[t] = 0.0f;
    for (int base = 0; base * 32 < nf4; base += kChunk) {
        if (base > 0) {
#pragma unroll
            for (int i = 0; i < kChunk; i++) {
                const int j = (base + i) * 32 + lane;
                wv[i] = j < nf4 ? __ldg(wr + j) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            }
        }
#pragma unroll
        for (int i = 0; i < kChunk; i++) {
            const int j = (base + i) * 32 + lane;
            if (j >= nf4) break;
            const float4 nw = p.norm_w ? __ldg(reinterpret_cast<const float4 *>(p.norm_w) + j)
                                       : make_float4(1.0f, 1.0f, 1.0f, 1.0f);
#pragma unroll
            for (int t = 0; t < NT; t++) {
                float4 x4 = reinterpret_cast<const float4 *>(p.x + t * p.x_stride)[j];
                if (p.norm_w) {
                    x4.x = __fmul_rn(__fmul_rn(x4.x, inv[t]), nw.x);
                    x4.y = __fmul_rn(__fmul_rn(x4.y, inv[t]), nw.y);
                    x4.z = __fmul_rn(__fmul_rn(x4.z, inv[t]), nw.z);
                    x4.w = __fmul_rn(__fmul_rn(x4.w, inv[t]), nw.w);
                }
                acc[t] = __fmaf_rn(wv[i].x, x4.x, acc[t]);
                acc[t] = __fmaf_rn(wv[i].y, x4.y, acc[t]);
                acc[t] = __fmaf_rn(wv[i].z, x4.z, acc[t]);
                acc[t] = __fmaf_rn(wv[i].w, x4.w, acc[t]);
            }
        }
    }

    /* The epilogue, as the general GEMV's: (sum + bias) + res. */
#pragma unroll
    for (int t = 0; t < NT; t++) {
        float out = butterfly(acc[t]);
        if (lane == t) {
            if (p.bias) out = __fadd_rn(out, p.bias[r]);
            if (p.res) out = __fadd_rn(out, p.res[t * p.res_stride + r]);
            p.y[t * p.y_stride + r] = out;
        }
    }
}

} /* namespace orc_gv_rows */

#endif /* ORC_GEMV_ROWS_CUH */
