/* quant.h - CPU dequantization of every ggml tensor type orc supports, to
 * float32, float16 or bfloat16, bit-exact with gguf-py (gguf.quants.dequantize)
 * and ggml's reference dequantizers. Block layouts are documented in quant.c. */
#ifndef ORC_QUANT_H
#define ORC_QUANT_H

#include <stdbool.h>
#include <stdint.h>

#include "orc.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Output element types, shared with the GPU side. */
typedef enum orc_dtype { ORC_DTYPE_F32 = 0, ORC_DTYPE_F16 = 1, ORC_DTYPE_BF16 = 2 } orc_dtype;
const char *orc_dtype_name(orc_dtype d);  /* "float32", "float16", "bfloat16" */
int orc_dtype_size(orc_dtype d);          /* 4 or 2 */

/* Can orc dequantize ggml type `type`? */
bool orc_quant_supported(int32_t type);

/* Dequantize `n` elements (a multiple of the type's block size) stored in `src`
 * (`src_bytes` must be exactly their size) into `dst` as `dtype`. float16/bfloat16
 * outputs are the float32 values rounded to nearest-even. Unsupported types fail
 * with ORC_E_UNSUPPORTED naming the type; size mismatches with ORC_E_INVALID. */
orc_status orc_dequantize(int32_t type, const void *src, uint64_t src_bytes, int64_t n, orc_dtype dtype, void *dst,
                          orc_err *err);

/* Scalar conversions (round-to-nearest-even; NaN stays NaN). */
float orc_f16_to_f32(uint16_t h);
uint16_t orc_f32_to_f16(float f);
float orc_bf16_to_f32(uint16_t h);
uint16_t orc_f32_to_bf16(float f);

#ifdef __cplusplus
}
#endif

#endif /* ORC_QUANT_H */
