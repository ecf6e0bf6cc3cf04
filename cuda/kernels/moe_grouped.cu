/* moe_grouped.cu - the expert products of a prefill in one launch: every (expert, 64-slot
 * tile) pair of the step is one column of the grid, every 64 output rows one row of it.
 *
 * What it computes is what the per-expert cuBLAS products of the reference grouping compute:
 * weights decoded to float32 by quant_decode.h (the CPU's decoders) and rounded to float16,
 * inputs rounded to float16, products on the tensor cores with float32 accumulation. Only the
 * order of the float32 sums differs. It reads each used expert's stored blocks directly (no
 * float16 copy of the expert tensor is written and read back) and writes each slot's row in
 * slot order (no gather and scatter launches).
 *
 * Tiles: 128 threads (2 x 2 warps of 32 x 32 outputs), 64 rows x 64 slots, K in steps of 64;
 * the weights' tile is decoded into shared memory eight values per chunk, the inputs' tile
 * gathered by slot through the sort order. Simple on purpose (no cp.async ring): the decoding
 * is the cost, and the grid covers the whole step's experts at once. */
#include <cuda_fp16.h>
#include <mma.h>

#include "gguf/ggml_types.h"
#include "kernels/kernels.cuh"
#include "kernels/moe_rows.cuh"

namespace {

constexpr int GM = 64, GN = 64, GK = 64; /* rows, slots, depth of a tile */
constexpr int GTHREADS = 128;
constexpr int LDS = GK + 8;  /* float16 row stride of the staged tiles (skews the banks) */
constexpr int LDC = GM + 4;  /* float stride of the staged outputs, [slot][row] */
constexpr int STAGE_BYTES = 2 * GM * LDS * 2 > GN * LDC * 4 ? 2 * GM * LDS * 2 : GN * LDC * 4;

/* tiles[3 t .. 3 t + 2] = expert, first slot in sort order, slots (<= GN). */
template <class ROW>
__global__ void __launch_bounds__(GTHREADS)
    moe_grouped_kernel(const float *x, bool per_slot, int32_t k, const uint8_t *w, uint64_t row_bytes,
                       int64_t rows_per, int64_t cols, const int32_t *order, const int32_t *tiles, float *out) {
    using namespace nvcuda; /* tensor-core fragments: sm_70 and later (setup.py builds for sm_80+) */
    __shared__ __align__(32) unsigned char stage[STAGE_BYTES];
    __half *ws = reinterpret_cast<__half *>(stage);           /* [GM][LDS]: weights, row-major in K */
    __half *xs = ws + GM * LDS;                                /* [GN][LDS]: inputs, one slot per row */
    float *cs = reinterpret_cast<float *>(stage);              /* [GN][LDC]: outputs, after the loop */
    const int tid = threadIdx.x, warp = tid / 32;
    const int wm = warp / 2, wn = warp % 2;
    const int64_t r0 = (int64_t)blockIdx.x * GM;
    const int32_t expert = tiles[3 * blockIdx.y], q0 = tiles[3 * blockIdx.y + 1], nq = tiles[3 * blockIdx.y + 2];
    const uint8_t *wex = w + (uint64_t)expert * (uint64_t)rows_per * row_bytes;

    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) wmma::fill_fragment(acc[i][j], 0.0f);

    for (int64_t k0 = 0; k0 < cols; k0 += GK) {
        /* weights: GM rows x GK = 512 chunks of eight, four a thread */
        for (int c = tid; c < GM * GK / 8; c += GTHREADS) {
            const int rr = c / (GK / 8), kk = (c % (GK / 8)) * 8;
            __align__(16) __half h[8];
            if (r0 + rr < rows_per) {
                float y[8];
                ROW::get(wex + (uint64_t)(r0 + rr) * row_bytes, (k0 + kk) / 8, y);
#pragma unroll
                for (int q = 0; q < 8; q++) h[q] = __float2half_rn(y[q]);
            } else {
#pragma unroll
                for (int q = 0; q < 8; q++) h[q] = __float2half_rn(0.0f);
            }
            *reinterpret_cast<uint4 *>(ws + rr * LDS + kk) = *reinterpret_cast<const uint4 *>(h);
        }
        /* inputs: GN slots x GK, in fours */
        for (int c = tid; c < GN * GK / 4; c += GTHREADS) {
            const int j = c / (GK / 4), kk = (c % (GK / 4)) * 4;
            float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            if (j < nq) {
                const int32_t slot = order[q0 + j];
                v = *reinterpret_cast<const float4 *>(x + (int64_t)(per_slot ? slot : slot / k) * cols + k0 + kk);
            }
            __half2 *dst = reinterpret_cast<__half2 *>(xs + j * LDS + kk);
            dst[0] = __floats2half2_rn(v.x, v.y);
            dst[1] = __floats2half2_rn(v.z, v.w);
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < GK; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> a[2];
            wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> b[2];
            for (int i = 0; i < 2; i++) wmma::load_matrix_sync(a[i], ws + (wm * 32 + i * 16) * LDS + kk, LDS);
            for (int j = 0; j < 2; j++) wmma::load_matrix_sync(b[j], xs + (wn * 32 + j * 16) * LDS + kk, LDS);
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 2; j++) wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
        }
        __syncthreads();
    }
    /* outputs [row][slot] stored column-major = cs[slot][row], then each slot's row out in order */
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++)
            wmma::store_matrix_sync(cs + (wn * 32 + j * 16) * LDC + wm * 32 + i * 16, acc[i][j], LDC,
                                    wmma::mem_col_major);
    __syncthreads();
    for (int c = tid; c < GN * GM; c += GTHREADS) {
        const int j = c / GM, rr = c % GM;
        if (j < nq && r0 + rr < rows_per) out[(int64_t)order[q0 + j] * rows_per + r0 + rr] = cs[j * LDC + rr];
    }
}

} /* namespace */

int orc_moe_grouped_tile_slots(void) { return GN; }

bool orc_moe_grouped_supports(int32_t w_qtype, orc_dtype w_dtype, int64_t cols) {
    if (cols % GK) return false;
    if (w_qtype < 0) return w_dtype == ORC_DTYPE_F16;
    /* every type with a block_row reader (chunks of eight never straddle a block) */
    return orc_with_block_row(w_qtype, [](auto) { return cudaSuccess; }) == cudaSuccess;
}

cudaError_t orc_launch_moe_grouped(const float *x, bool per_slot, int32_t k, const void *w, orc_dtype w_dtype,
                                   int32_t w_qtype, uint64_t row_bytes, int64_t rows_per, int64_t cols,
                                   const int32_t *order, const int32_t *tiles, int32_t n_tiles, float *out,
                                   cudaStream_t s) {
    if (n_tiles <= 0) return cudaSuccess;
    if (!orc_moe_grouped_supports(w_qtype, w_dtype, cols) || n_tiles > 65535) return cudaErrorInvalidValue;
    const dim3 grid((unsigned)((rows_per + GM - 1) / GM), (unsigned)n_tiles);
    const uint8_t *wb = static_cast<const uint8_t *>(w);
#define GO(ROW) \
    moe_grouped_kernel<ROW><<<grid, GTHREADS, 0, s>>>(x, per_slot, k, wb, row_bytes, rows_per, cols, order, tiles, out)
    if (w_qtype < 0) {
        GO(dense_row<ORC_DTYPE_F16>);
        return cudaGetLastError();
    }
    return orc_with_block_row(w_qtype, [&](auto row) {
        GO(decltype(row));
        return cudaGetLastError();
    });
#undef GO
}
