/* moe_rows.cuh - eight consecutive weights of a stored row as float32, for the expert
 * products of moe.cu (one warp per row) and moe_grouped.cu (tensor-core tiles): dense
 * dtypes loaded, GGUF blocks decoded by quant_decode.h's decoders (the CPU's code). */
#ifndef ORC_MOE_ROWS_CUH
#define ORC_MOE_ROWS_CUH

#include <stdint.h>

#include "gguf/ggml_types.h"

#include "quant/quant_decode.h"
#ifndef ORC_SIMT_EMU /* the host emulator (tests/c) has the block readers only */
#include <cuda_runtime.h>

#include "runtime/dtype.cuh"
#endif

/* Eight consecutive weights of a row, as float32: dense dtypes loaded, blocks decoded (block_row's
 * BS / TS: elements and bytes of a block; QT: the ggml type, -1 where a caller does not say). */
#ifndef ORC_SIMT_EMU
template <int DT>
struct dense_row {
    static __device__ __forceinline__ void get(const uint8_t *row, int64_t c8, float *y) {
        for (int q = 0; q < 8; q++) y[q] = orc_load_f32(row, (orc_dtype)DT, c8 * 8 + q);
    }
};
#endif
template <int BS_, int TS_, void (*DECODE)(const uint8_t *, int, float *), int QT_ = -1>
struct block_row {
    static constexpr int BS = BS_, TS = TS_, QT = QT_;
    static __device__ __forceinline__ void get(const uint8_t *row, int64_t c8, float *y) {
        const int64_t e = c8 * 8;
        DECODE(row + (e / BS) * TS, (int)((e % BS) / 8), y);
    }
};

/* launch(row) with the block_row reader of ggml type qtype (a value of that type: its methods are
 * static); cudaErrorInvalidValue for a type without one. */
#ifndef ORC_SIMT_EMU
template <class F>
static inline cudaError_t orc_with_block_row(int32_t qtype, F &&launch) {
    switch (qtype) {
#define ORC_ROW_CASE(NAME, FN, BS, TS) \
    case ORC_TYPE_##NAME: return launch(block_row<BS, TS, FN, ORC_TYPE_##NAME>{});
        ORC_QD_FOREACH_BLOCK_TYPE(ORC_ROW_CASE)
#undef ORC_ROW_CASE
    default: return cudaErrorInvalidValue;
    }
}
#endif

#endif /* ORC_MOE_ROWS_CUH */
