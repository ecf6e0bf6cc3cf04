/* dtype.cuh - loading and storing orc_dtype elements in device code. */
#ifndef ORC_DTYPE_CUH
#define ORC_DTYPE_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "quant/quant.h"

__device__ __forceinline__ float orc_load_f32(const void *p, orc_dtype dt, int64_t i) {
    switch (dt) {
    case ORC_DTYPE_F16: return __half2float(((const __half *)p)[i]);
    case ORC_DTYPE_BF16: return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
    case ORC_DTYPE_I32: return (float)((const int32_t *)p)[i]; /* indices, for hooks */
    default: return ((const float *)p)[i];
    }
}

/* Round to nearest even, as the CPU side's orc_f32_to_f16 / orc_f32_to_bf16. */
__device__ __forceinline__ void orc_store_from_f32(void *p, orc_dtype dt, int64_t i, float v) {
    switch (dt) {
    case ORC_DTYPE_F16: ((__half *)p)[i] = __float2half_rn(v); break;
    case ORC_DTYPE_BF16: ((__nv_bfloat16 *)p)[i] = __float2bfloat16_rn(v); break;
    default: ((float *)p)[i] = v; break;
    }
}

static inline unsigned orc_grid_1d(int64_t n, unsigned block) {
    int64_t g = (n + block - 1) / block;
    return (unsigned)(g > 1048576 ? 1048576 : (g < 1 ? 1 : g));
}

#endif /* ORC_DTYPE_CUH */
