/* moe_grouped_kernel.cuh - the grouped expert product's kernel (moe_grouped.cu has the design and
 * the launcher), on runtime/simt.cuh's copies so that tests/c/test_moe_grouped_emu.cpp runs this
 * same code on the host emulator (which also stands in for the tensor-core fragments).
 *
 * A block: 64 output rows of one expert x one tile of <= 64 of its slots (in sort order), K in
 * steps of 64. Both operands reach shared memory by 16-byte cp.async, one step ahead of the
 * products: the inputs' float32 rows of the step (gathered by slot), and the weights' stored
 * blocks as they lie in each row (a K-quant's 256-element block serves four steps; 32-element
 * blocks come two to a step). Each step then rounds the inputs to float16 and decodes its weights
 * from shared memory (quant_decode.h's decoders, rounded to float16) into the tiles the tensor
 * cores read. Before device run 27 every thread decoded straight from global memory, a chain of
 * dependent loads per chunk: 540 us per Qwen3-30B-A3B expert product of a 512-token prefill. */
#ifndef ORC_MOE_GROUPED_KERNEL_CUH
#define ORC_MOE_GROUPED_KERNEL_CUH

#include <stdint.h>

#ifndef ORC_SIMT_EMU
#include <cuda_fp16.h>
#include <mma.h>
#endif

#include "runtime/simt.cuh" /* orc_cp16 & co.: also emulated on the host */

namespace orc_moe_grouped {

constexpr int GM = 64, GN = 64, GK = 64; /* rows, slots, depth of a step */
constexpr int GTHREADS = 128;
constexpr int LDS = GK + 8; /* float16 row stride of the product tiles (skews the banks) */
constexpr int LDC = GM + 4; /* float stride of the staged outputs, [slot][row] */
constexpr int TILE_BYTES = 2 * GM * LDS * 2 > GN * LDC * 4 ? 2 * GM * LDS * 2 : GN * LDC * 4;
constexpr int XRAW_BYTES = GN * GK * 4; /* one step's float32 inputs */

/* Elements of stored blocks one staging covers (a whole number of blocks, of steps). */
template <class ROW>
__host__ __device__ constexpr int span() { return ROW::BS > GK ? ROW::BS : GK; }
/* Bytes of one row's staging slot: the span's blocks, the 16-byte chunks around them. */
template <class ROW>
__host__ __device__ constexpr int slot_bytes() { return (span<ROW>() / ROW::BS * ROW::TS + 15 + 15) / 16 * 16; }
/* Dynamic shared memory of a launch: two weight stagings, two input stagings, the tiles. */
template <class ROW>
__host__ __device__ constexpr int smem_bytes() { return 2 * GM * slot_bytes<ROW>() + 2 * XRAW_BYTES + TILE_BYTES; }

/* tiles[3 t .. 3 t + 2] = expert, first slot in sort order, slots (<= GN); w_end: one past the
 * expert tensor's last byte (the copies of the last row's last chunk stop there). */
template <class ROW>
__global__ void __launch_bounds__(GTHREADS)
    moe_grouped_kernel(const float *x, bool per_slot, int32_t k, const uint8_t *w, const uint8_t *w_end,
                       uint64_t row_bytes, int64_t rows_per, int64_t cols, const int32_t *order, const int32_t *tiles,
                       float *out) {
    using namespace nvcuda; /* tensor-core fragments: sm_70 and later (setup.py builds for sm_80+) */
    constexpr int SB = slot_bytes<ROW>(), SPAN = span<ROW>(), SPS = SPAN / GK;
    ORC_EXTERN_SHARED(unsigned char, smem);
    unsigned char *wraw = smem;                       /* [2][GM][SB]: stored blocks, as in the rows */
    float *xraw = reinterpret_cast<float *>(smem + 2 * GM * SB); /* [2][GN][GK] */
    unsigned char *tile = smem + 2 * GM * SB + 2 * XRAW_BYTES;
    __half *ws = reinterpret_cast<__half *>(tile);   /* [GM][LDS]: weights, row-major in K */
    __half *xs = ws + GM * LDS;                       /* [GN][LDS]: inputs, one slot per row */
    float *cs = reinterpret_cast<float *>(tile);      /* [GN][LDC]: outputs, after the loop */
    const int tid = threadIdx.x, warp = tid / 32;
    const int wm = warp / 2, wn = warp % 2;
    const int64_t r0 = (int64_t)blockIdx.x * GM;
    const int32_t expert = tiles[3 * blockIdx.y], q0 = tiles[3 * blockIdx.y + 1], nq = tiles[3 * blockIdx.y + 2];
    const uint8_t *wex = w + (uint64_t)expert * (uint64_t)rows_per * row_bytes;
    const int n_steps = (int)(cols / GK);

    /* Step i's inputs, and at the start of a span its weights, into staging buffer i % 2 (the
     * span's: (i / SPS) % 2); one commit group per step, empty past the last. */
    auto issue = [&](int i) {
        if (i < n_steps) {
            float *xd = xraw + (i % 2) * GN * GK;
            for (int c = tid; c < GN * GK / 4; c += GTHREADS) {
                const int j = c / (GK / 4), kk = (c % (GK / 4)) * 4;
                const float *src = x; /* zero-filled past the tile's slots: nothing read */
                uint32_t n = 0;
                if (j < nq) {
                    const int32_t slot = order[q0 + j];
                    src = x + (int64_t)(per_slot ? slot : slot / k) * cols + (int64_t)i * GK + kk;
                    n = 16;
                }
                orc_cp16(xd + j * GK + kk, src, n);
            }
            if (i % SPS == 0) {
                unsigned char *wd = wraw + ((i / SPS) % 2) * GM * SB;
                const int64_t off = (int64_t)(i / SPS) * (SPAN / ROW::BS) * ROW::TS; /* the span's first block */
                const uint32_t bytes = SPAN / ROW::BS * ROW::TS;
                for (int c = tid; c < GM * (SB / 16); c += GTHREADS) {
                    const int rr = c / (SB / 16), ch = c % (SB / 16);
                    if (r0 + rr >= rows_per) continue; /* decoded as zeros */
                    const uint8_t *a = wex + (uint64_t)(r0 + rr) * row_bytes + off;
                    const uint32_t mis = (uint32_t)((uintptr_t)a & 15u);
                    if ((uint32_t)(16 * ch) >= mis + bytes) continue; /* past the span's bytes */
                    const uint8_t *src = a - mis + 16 * ch;
                    const int64_t left = w_end - src;
                    orc_cp16(wd + rr * SB + 16 * ch, src, left < 16 ? (uint32_t)left : 16u);
                }
            }
        }
        orc_cp_commit();
    };

    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) wmma::fill_fragment(acc[i][j], 0.0f);

    issue(0);
    for (int i = 0; i < n_steps; i++) {
        issue(i + 1);
        orc_cp_wait<1>(); /* step i's copies (this thread's) are complete */
        __syncthreads();  /* ... and every thread's; the previous step's products are done */
        const float *xr = xraw + (i % 2) * GN * GK;
        for (int c = tid; c < GN * GK / 4; c += GTHREADS) { /* inputs to float16 */
            const int j = c / (GK / 4), kk = (c % (GK / 4)) * 4;
            const float4 v = *reinterpret_cast<const float4 *>(xr + j * GK + kk);
            __half2 *dst = reinterpret_cast<__half2 *>(xs + j * LDS + kk);
            dst[0] = __floats2half2_rn(v.x, v.y);
            dst[1] = __floats2half2_rn(v.z, v.w);
        }
        const unsigned char *wr = wraw + ((i / SPS) % 2) * GM * SB;
        const int64_t off = (int64_t)(i / SPS) * (SPAN / ROW::BS) * ROW::TS;
        for (int c = tid; c < GM * GK / 8; c += GTHREADS) { /* weights: 512 chunks of eight, four a thread */
            const int rr = c / (GK / 8), kk = (c % (GK / 8)) * 8;
            __align__(16) __half h[8];
            if (r0 + rr < rows_per) {
                const uint32_t mis = (uint32_t)((uintptr_t)(wex + (uint64_t)(r0 + rr) * row_bytes + off) & 15u);
                const int e = (i % SPS) * GK + kk; /* the chunk's first element within the span */
                float y[8];
                ROW::decode(wr + rr * SB + mis + (e / ROW::BS) * ROW::TS, (e % ROW::BS) / 8, y);
#pragma unroll
                for (int q = 0; q < 8; q++) h[q] = __float2half_rn(y[q]);
            } else {
#pragma unroll
                for (int q = 0; q < 8; q++) h[q] = __float2half_rn(0.0f);
            }
            *reinterpret_cast<uint4 *>(ws + rr * LDS + kk) = *reinterpret_cast<const uint4 *>(h);
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < GK; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> a[2];
            wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> b[2];
            for (int m = 0; m < 2; m++) wmma::load_matrix_sync(a[m], ws + (wm * 32 + m * 16) * LDS + kk, LDS);
            for (int j = 0; j < 2; j++) wmma::load_matrix_sync(b[j], xs + (wn * 32 + j * 16) * LDS + kk, LDS);
            for (int m = 0; m < 2; m++)
                for (int j = 0; j < 2; j++) wmma::mma_sync(acc[m][j], a[m], b[j], acc[m][j]);
        }
    }
    orc_cp_wait<0>();
    __syncthreads(); /* the last products are done before cs (over the tiles) is written */
    /* outputs [row][slot] stored column-major = cs[slot][row], then each slot's row out in order */
    for (int m = 0; m < 2; m++)
        for (int j = 0; j < 2; j++)
            wmma::store_matrix_sync(cs + (wn * 32 + j * 16) * LDC + wm * 32 + m * 16, acc[m][j], LDC,
                                    wmma::mem_col_major);
    __syncthreads();
    for (int c = tid; c < GN * GM; c += GTHREADS) {
        const int j = c / GM, rr = c % GM;
        if (j < nq && r0 + rr < rows_per) out[(int64_t)order[q0 + j] * rows_per + r0 + rr] = cs[j * LDC + rr];
    }
}

} /* namespace orc_moe_grouped */

#endif /* ORC_MOE_GROUPED_KERNEL_CUH */
