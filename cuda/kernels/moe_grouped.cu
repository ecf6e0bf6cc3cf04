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
 * The kernel, its tiles and what was measured: moe_grouped_kernel.cuh. Its pipelined successor
 * on mma.sync (stored blocks by cp.async into shared memory, inputs pre-gathered as float16):
 * moe_mma_kernel.cuh, orc_launch_moe_mma below. The slots' grouping by expert, on the device so
 * that a prefill needs no round trip to the host: moe_group_kernel.cuh, orc_launch_moe_group. */
#include "gguf/ggml_types.h"
#include "kernels/kernels.cuh"
#include "kernels/moe_group_kernel.cuh"
#include "kernels/moe_grouped_kernel.cuh"
#include "kernels/moe_mma_kernel.cuh"
#include "kernels/moe_rows.cuh"
#include "runtime/launch.cuh" /* orc_device_facts, orc_raise_smem_limit */

using namespace orc_moe_grouped;

int orc_moe_grouped_tile_slots(void) { return GN; }

bool orc_moe_grouped_supports(int32_t w_qtype, orc_dtype w_dtype, int64_t cols) {
    if (cols % GK) return false;
    if (w_qtype < 0) return w_dtype == ORC_DTYPE_F16;
    /* every type with a block_row reader (chunks of eight never straddle a block) */
    return orc_with_block_row(w_qtype, [](auto) { return cudaSuccess; }) == cudaSuccess;
}

cudaError_t orc_launch_moe_grouped(const float *x, bool per_slot, int32_t k, const void *w, orc_dtype w_dtype,
                                   int32_t w_qtype, uint64_t row_bytes, int64_t rows_per, int64_t cols,
                                   const int32_t *order, const int32_t *tiles, int32_t n_tiles, const float *bias,
                                   float *out, cudaStream_t s) {
    if (n_tiles <= 0) return cudaSuccess;
    if (!orc_moe_grouped_supports(w_qtype, w_dtype, cols) || n_tiles > 65535) return cudaErrorInvalidValue;
    const dim3 grid((unsigned)((rows_per + GM - 1) / GM), (unsigned)n_tiles);
    const uint8_t *wb = static_cast<const uint8_t *>(w);
    auto go = [&](auto row) {
        moe_grouped_kernel<decltype(row)><<<grid, GTHREADS, 0, s>>>(x, per_slot, k, wb, row_bytes, rows_per, cols,
                                                                    order, tiles, bias, out);
        return cudaGetLastError();
    };
    if (w_qtype < 0) return go(dense_row<ORC_DTYPE_F16>{});
    return orc_with_block_row(w_qtype, go);
}

/* ---- the pipelined kernel (moe_mma_kernel.cuh) ---- */

static_assert(orc_moe_mma::BN == GN, "both grouped kernels take the host's tiles of GN slots");

bool orc_moe_mma_supports(int32_t w_qtype, const void *w, int64_t cols) {
    orc_dev_facts f;
    if (w_qtype < 0 || cols % orc_moe_mma::BK || (uintptr_t)w % 16 || orc_device_facts(&f) != cudaSuccess) return false;
    return orc_with_block_row(w_qtype, [&](auto row) {
               return orc_moe_mma::shape<decltype(row)>::SMEM <= f.optin ? cudaSuccess : cudaErrorInvalidValue;
           }) == cudaSuccess;
}

/* One launch of moe_mma_kernel<ROW, GLU> over a's tiles; a.w's type is w_qtype. */
template <bool GLU>
static cudaError_t launch_mma(const orc_moe_mma::args &a, int32_t w_qtype, int32_t n_tiles, cudaStream_t s) {
    using namespace orc_moe_mma;
    if (n_tiles <= 0) return cudaSuccess;
    if (!orc_moe_mma_supports(w_qtype, a.w, a.cols) || (GLU && !orc_moe_mma_supports(w_qtype, a.w_up, a.cols)) ||
        n_tiles > 65535 || (uintptr_t)a.xg % 16)
        return cudaErrorInvalidValue;
    const dim3 grid((unsigned)((a.rows_per + out_rows<GLU>() - 1) / out_rows<GLU>()), (unsigned)n_tiles);
    return orc_with_block_row(w_qtype, [&](auto row) {
        using ROW = decltype(row);
        constexpr int smem = shape<ROW>::SMEM;
        const cudaError_t e = orc_raise_smem_limit<moe_mma_kernel<ROW, GLU>>(smem);
        if (e != cudaSuccess) return e;
        moe_mma_kernel<ROW, GLU><<<grid, THREADS, smem, s>>>(a);
        return cudaGetLastError();
    });
}

/* The operands both modes share. */
static orc_moe_mma::args mma_args(const void *xg, const void *w, uint64_t row_bytes, uint64_t w_bytes, int64_t rows_per,
                                  int64_t cols, const int32_t *tiles, const float *bias) {
    orc_moe_mma::args a{};
    a.xg = static_cast<const __half *>(xg);
    a.w = static_cast<const uint8_t *>(w);
    a.row_bytes = row_bytes;
    a.w_bytes = w_bytes;
    a.rows_per = rows_per;
    a.cols = cols;
    a.tiles = tiles;
    a.bias = bias;
    return a;
}

cudaError_t orc_launch_moe_mma(const void *xg, const void *w, int32_t w_qtype, uint64_t row_bytes, uint64_t w_bytes,
                               int64_t rows_per, int64_t cols, const int32_t *order, const int32_t *tiles,
                               int32_t n_tiles, const float *bias, float *out, cudaStream_t s) {
    orc_moe_mma::args a = mma_args(xg, w, row_bytes, w_bytes, rows_per, cols, tiles, bias);
    a.order = order;
    a.out = out;
    return launch_mma<false>(a, w_qtype, n_tiles, s);
}

cudaError_t orc_launch_moe_mma_glu(const void *xg, const void *w_gate, const void *w_up, int32_t w_qtype,
                                   uint64_t row_bytes, uint64_t w_bytes, int64_t rows_per, int64_t cols,
                                   const int32_t *tiles, int32_t n_tiles, const float *bias_gate, const float *bias_up,
                                   int act, void *act_out, cudaStream_t s) {
    orc_moe_mma::args a = mma_args(xg, w_gate, row_bytes, w_bytes, rows_per, cols, tiles, bias_gate);
    a.w_up = static_cast<const uint8_t *>(w_up);
    a.bias_up = bias_up;
    a.act = act;
    a.act_out = static_cast<__half *>(act_out);
    return launch_mma<true>(a, w_qtype, n_tiles, s);
}

/* ---- the grouping on the device (moe_group_kernel.cuh) ---- */

int32_t orc_moe_group_max_experts(void) { return orc_moe_group::MAX_EXPERTS; }

int64_t orc_moe_group_max_tiles(int64_t n_slots, int32_t n_expert) {
    return orc_moe_group::max_tiles(n_slots, n_expert, GN);
}

cudaError_t orc_launch_moe_group(const int32_t *ids, int64_t n_slots, int32_t n_expert, int64_t rows, int32_t *order,
                                 int32_t *tiles, float *out, cudaStream_t s) {
    using namespace orc_moe_group;
    if (n_slots <= 0) return cudaSuccess;
    if (n_expert < 1 || n_expert > MAX_EXPERTS || n_slots > 0x7fffffff) return cudaErrorInvalidValue;
    moe_group_kernel<<<1, THREADS, 0, s>>>(ids, n_slots, n_expert, GN, orc_moe_group_max_tiles(n_slots, n_expert),
                                            rows, order, tiles, out);
    return cudaGetLastError();
}
