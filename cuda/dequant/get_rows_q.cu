/* get_rows_q.cu - embedding lookups in a table kept as GGUF blocks (weights="quantized"):
 * each thread decodes one 8-element chunk of a selected row with the shared decoders of
 * quant_decode.h, so a looked-up row is bit for bit the dequantized row. The ids are a
 * device array (an explicit step input). */
#include <cuda_runtime.h>

#include <stdint.h>

#include "gguf/ggml_types.h"   /* ORC_TYPE_* */
#include "kernels/kernels.cuh" /* the launcher declared here */
#include "quant/quant_decode.h"
#include "runtime/dtype.cuh"   /* orc_grid_1d */

namespace {

template <int BS, int TS, void (*DECODE)(const uint8_t *, int, float *)>
__global__ void get_rows_q_kernel(const uint8_t *table, uint64_t row_bytes, int64_t cols, const int32_t *ids,
                                  int64_t n, float scale, float *out) {
    const int64_t chunks_per_row = cols / 8;
    const int64_t total = n * chunks_per_row;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t r = i / chunks_per_row, ch = i % chunks_per_row;
        const int64_t e = ch * 8; /* first element of the chunk */
        const uint8_t *block = table + (uint64_t)ids[r] * row_bytes + (uint64_t)(e / BS) * TS;
        float y[8];
        DECODE(block, (int)((e % BS) / 8), y);
        float *o = out + r * cols + e;
#pragma unroll
        for (int k = 0; k < 8; k++) o[k] = __fmul_rn(y[k], scale);
    }
}

} /* namespace */

cudaError_t orc_launch_get_rows_q(int32_t type, const void *table, uint64_t row_bytes, int64_t cols,
                                  const int32_t *ids, int64_t n, float scale, float *out, cudaStream_t s) {
    if (n <= 0) return cudaSuccess;
    if (cols % 8) return cudaErrorInvalidValue;
    const unsigned grid = orc_grid_1d(n * (cols / 8), 256);
    const uint8_t *t = static_cast<const uint8_t *>(table);
    switch (type) {
#define CASE(NAME, FN, BS, TS)                                                                             \
    case ORC_TYPE_##NAME:                                                                                  \
        get_rows_q_kernel<BS, TS, FN><<<grid, 256, 0, s>>>(t, row_bytes, cols, ids, n, scale, out);      \
        break;
        ORC_QD_FOREACH_BLOCK_TYPE(CASE)
#undef CASE
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}
