/* gpu_dequant_none.c - the entry points of gpu_dequant.h for a build without CUDA:
 * each fails with ORC_E_NO_CUDA and says how to get a CUDA build. */
#include "quant/gpu_dequant.h"

#include <string.h>  /* memset */

#ifndef ORC_HAVE_CUDA

#define ORC_DEQUANT_NO_CUDA_MSG \
    "orc was built without CUDA (ORC_CUDA=0, or nvcc/CUDA headers not found at build time); " \
    "rebuild with ORC_CUDA=1 to dequantize on a GPU"

orc_status orc_cuda_dequantize(int32_t type, const void *d_src, uint64_t src_bytes, int64_t n, orc_dtype dtype,
                               void *d_dst, void *stream, orc_err *err) {
    (void)type; (void)d_src; (void)src_bytes; (void)n; (void)dtype; (void)d_dst; (void)stream;
    return orc_fail(err, ORC_E_NO_CUDA, ORC_DEQUANT_NO_CUDA_MSG);
}

orc_status orc_cuda_dequantize_host(int32_t type, const void *src, uint64_t src_bytes, int64_t n, orc_dtype dtype,
                                    void *dst, orc_err *err) {
    (void)type; (void)src; (void)src_bytes; (void)n; (void)dtype; (void)dst;
    return orc_fail(err, ORC_E_NO_CUDA, ORC_DEQUANT_NO_CUDA_MSG);
}

orc_status orc_cuda_dequantize_host_at(int32_t type, const void *src, uint64_t src_bytes, int64_t n, orc_dtype dtype,
                                       void *dst, uint32_t src_offset, uint32_t dst_offset, orc_err *err) {
    (void)type; (void)src; (void)src_bytes; (void)n; (void)dtype; (void)dst; (void)src_offset; (void)dst_offset;
    return orc_fail(err, ORC_E_NO_CUDA, ORC_DEQUANT_NO_CUDA_MSG);
}

orc_status orc_cuda_dequantize_bench(int32_t type, const void *src, uint64_t src_bytes, int64_t n, orc_dtype dtype,
                                     int iters, orc_cuda_dequant_timing *out, orc_err *err) {
    (void)type; (void)src; (void)src_bytes; (void)n; (void)dtype; (void)iters;
    if (out) memset(out, 0, sizeof *out);
    return orc_fail(err, ORC_E_NO_CUDA, ORC_DEQUANT_NO_CUDA_MSG);
}

#else
/* ISO C forbids an empty translation unit. */
typedef int orc_gpu_dequant_none_unused;
#endif
