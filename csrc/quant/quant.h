/* quant.h - CPU dequantization of every ggml tensor type orc supports, to
 * float32, float16 or bfloat16, bit-exact with gguf-py (gguf.quants.dequantize)
 * and ggml's reference dequantizers. Block layouts are documented beside their
 * decoders in quant_decode.h (shared with the CUDA kernels, see gpu_dequant.h). */
#ifndef ORC_QUANT_H
#define ORC_QUANT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/dtype.h" /* orc_dtype: the output element types */
#include "core/orc.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Can orc dequantize ggml type `type`? F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
 * Q2_K..Q6_K, the IQ types, TQ1_0, TQ2_0, MXFP4, NVFP4 and Q1_0. */
bool orc_quant_supported(int32_t type);

/* Check the arguments of a dequantization without doing it: `type` supported, `n` >= 0
 * and a multiple of the block size, `src_bytes` exactly the size of `n` elements, `dtype`
 * valid. ORC_E_UNSUPPORTED for unknown/unsupported types, ORC_E_INVALID otherwise; the
 * message names the type and the expected and actual sizes. Used by the GPU path too. */
orc_status orc_quant_validate(int32_t type, uint64_t src_bytes, int64_t n, orc_dtype dtype, orc_err *err);

/* Dequantize `n` elements (a multiple of the type's block size) stored in `src`
 * (`src_bytes` must be exactly their size) into `dst` as `dtype`. float16/bfloat16
 * outputs are the float32 values rounded to nearest-even. Unsupported types fail
 * with ORC_E_UNSUPPORTED naming the type; size mismatches with ORC_E_INVALID. */
orc_status orc_dequantize(int32_t type, const void *src, uint64_t src_bytes, int64_t n, orc_dtype dtype, void *dst,
                          orc_err *err);

/* orc_dequantize split by blocks over up to `n_threads` threads (<= 0: one per online
 * CPU); small tensors run on the calling thread. Same result, bit for bit. */
orc_status orc_dequantize_mt(int32_t type, const void *src, uint64_t src_bytes, int64_t n, orc_dtype dtype,
                             void *dst, int n_threads, orc_err *err);

/* Scalar conversions. f16 -> f32 and bf16 -> f32 are exact (NaN payloads kept).
 * f32 -> f16 / bf16 round to nearest even, overflow to inf; NaN stays NaN with its
 * sign: for f16 as NumPy's astype (sign | 0x7c00 + (mantissa >> 13), 0x7c01 if that
 * is 0x7c00), for bf16 as ggml/gguf-py (top bits kept, quiet bit set). */
float orc_f16_to_f32(uint16_t h);
uint16_t orc_f32_to_f16(float f);
float orc_bf16_to_f32(uint16_t h);
uint16_t orc_f32_to_bf16(float f);

#ifdef __cplusplus
}
#endif

#endif /* ORC_QUANT_H */
