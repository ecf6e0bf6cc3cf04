/* moe_grouped_kernel.cuh - the grouped expert product's kernel (moe_grouped.cu has the design and
 * the launcher), on runtime/simt.cuh's primitives so that tests/c/test_moe_grouped_emu.cpp runs this
 * same code on the host emulator (which also stands in for the tensor-core fragments).
 *
 * Tiles: 128 threads (2 x 2 warps of 32 x 32 outputs), 64 rows x 64 slots, K in steps of 64;
 * the weights' tile is decoded into shared memory eight values per chunk, the inputs' tile
 * gathered by slot through the sort order. Simple on purpose (no cp.async ring), and small in
 * shared memory (18 KiB: up to 16 blocks an SM hide the decoders' global loads). Device run 28
 * measured a version that staged both operands by cp.async one step ahead (72 KiB, 3 blocks an
 * SM): no faster on Qwen3-30B-A3B's 512-token prefill (5,385 tokens/s; run 22 5,799 with this
 * one), and forced on gpt-oss-20b 6,178 against the per-expert cuBLAS products' 9,375: the
 * decoding's instructions, not the loads' latency, bound it. Reverted. */
#ifndef ORC_MOE_GROUPED_KERNEL_CUH
#define ORC_MOE_GROUPED_KERNEL_CUH

#include <stdint.h>

#ifndef ORC_SIMT_EMU
#include <cuda_fp16.h>
#include <mma.h>
#endif

#include "runtime/simt.cuh" /* ORC_SHARED_ARRAY; the emulator's stand-ins */

namespace orc_moe_grouped {

constexpr int GM = 64, GN = 64, GK = 64; /* rows, slots, depth of a tile */
constexpr int GTHREADS = 128;
constexpr int LDS = GK + 8;  /* float16 row stride of the staged tiles (skews the banks) */
constexpr int LDC = GM + 4;  /* float stride of the staged outputs, [slot][row] */
constexpr int STAGE_BYTES = 2 * GM * LDS * 2 > GN * LDC * 4 ? 2 * GM * LDS * 2 : GN * LDC * 4;

/* tiles[3 t .. 3 t + 2] = expert, first slot in sort order, slots (<= GN; 0: nothing to do).
 * bias: [n_expert][rows_per] float32 added to the products, or NULL. */
template <class ROW>
__global__ void __launch_bounds__(GTHREADS)
    moe_grouped_kernel(const float *x, bool per_slot, int32_t k, const uint8_t *w, uint64_t row_bytes,
                       int64_t rows_per, int64_t cols, const int32_t *order, const int32_t *tiles, const float *bias,
                       float *out) {
    using namespace nvcuda; /* tensor-core fragments: sm_70 and later (setup.py builds for sm_80+) */
#ifdef ORC_SIMT_EMU
    ORC_SHARED_ARRAY(unsigned char, stage, STAGE_BYTES);
#else
    __shared__ __align__(32) unsigned char stage[STAGE_BYTES]; /* the fragments' loads want 32-byte rows */
#endif
    __half *ws = reinterpret_cast<__half *>(stage);           /* [GM][LDS]: weights, row-major in K */
    __half *xs = ws + GM * LDS;                                /* [GN][LDS]: inputs, one slot per row */
    float *cs = reinterpret_cast<float *>(stage);              /* [GN][LDC]: outputs, after the loop */
    const int tid = threadIdx.x, warp = tid / 32;
    const int wm = warp / 2, wn = warp % 2;
    const int64_t r0 = (int64_t)blockIdx.x * GM;
    const int32_t expert = tiles[3 * blockIdx.y], q0 = tiles[3 * blockIdx.y + 1], nq = tiles[3 * blockIdx.y + 2];
    if (nq <= 0) return; /* an empty tile past the device grouping's count (moe_group_kernel.cuh) */
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
        if (j < nq && r0 + rr < rows_per)
            out[(int64_t)order[q0 + j] * rows_per + r0 + rr] =
                bias ? cs[j * LDC + rr] + bias[(int64_t)expert * rows_per + r0 + rr] : cs[j * LDC + rr];
    }
}

} /* namespace orc_moe_grouped */

#endif /* ORC_MOE_GROUPED_KERNEL_CUH */
