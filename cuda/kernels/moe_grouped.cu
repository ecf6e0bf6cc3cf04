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
 * The kernel, its tiles and what was measured: moe_grouped_kernel.cuh. */
#include "gguf/ggml_types.h"
#include "kernels/kernels.cuh"
#include "kernels/moe_grouped_kernel.cuh"
#include "kernels/moe_rows.cuh"

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
                                   const int32_t *order, const int32_t *tiles, int32_t n_tiles, float *out,
                                   cudaStream_t s) {
    if (n_tiles <= 0) return cudaSuccess;
    if (!orc_moe_grouped_supports(w_qtype, w_dtype, cols) || n_tiles > 65535) return cudaErrorInvalidValue;
    const dim3 grid((unsigned)((rows_per + GM - 1) / GM), (unsigned)n_tiles);
    const uint8_t *wb = static_cast<const uint8_t *>(w);
    auto go = [&](auto row) {
        moe_grouped_kernel<decltype(row)><<<grid, GTHREADS, 0, s>>>(x, per_slot, k, wb, row_bytes, rows_per, cols,
                                                                    order, tiles, out);
        return cudaGetLastError();
    };
    if (w_qtype < 0) return go(dense_row<ORC_DTYPE_F16>{});
    return orc_with_block_row(w_qtype, go);
}
