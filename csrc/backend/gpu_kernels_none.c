/* gpu_kernels_none.c - the entry points of gpu_kernels.h for a build without CUDA: each
 * fails with ORC_E_NO_CUDA and says how to get a CUDA build. */
#include "backend/gpu_kernels.h"

#include <string.h> /* memset */

#ifndef ORC_HAVE_CUDA

#define ORC_KERNELS_NO_CUDA_MSG \
    "orc was built without CUDA (ORC_CUDA=0, or nvcc/CUDA headers not found at build time); " \
    "rebuild with ORC_CUDA=1 to run the GPU kernels"

static orc_status no_cuda(orc_gpu_timing *out, orc_err *err) {
    if (out) memset(out, 0, sizeof *out);
    return orc_fail(err, ORC_E_NO_CUDA, ORC_KERNELS_NO_CUDA_MSG);
}

orc_status orc_gpu_gemv_run(const orc_gpu_gemv_job *job, orc_err *err) {
    (void)job;
    return no_cuda(NULL, err);
}

orc_status orc_gpu_gemv_integer_form(int32_t type, int32_t *has, orc_err *err) {
    (void)type;
    if (has) *has = 0;
    return no_cuda(NULL, err);
}

orc_status orc_gpu_gemv_bench(const orc_gpu_gemv_job *job, int32_t repeats, orc_gpu_timing *out, orc_err *err) {
    (void)job; (void)repeats;
    return no_cuda(out, err);
}

orc_status orc_gpu_copy_bench(uint64_t bytes, int32_t repeats, orc_gpu_timing *out, orc_err *err) {
    (void)bytes; (void)repeats;
    return no_cuda(out, err);
}

orc_status orc_gpu_attention_flash_run(const orc_gpu_attn_job *job, orc_err *err) {
    (void)job;
    return no_cuda(NULL, err);
}

orc_status orc_gpu_attention_flash_bench(const orc_gpu_attn_job *job, int32_t repeats, orc_gpu_timing *out,
                                         orc_err *err) {
    (void)job; (void)repeats;
    return no_cuda(out, err);
}

orc_status orc_gpu_gemm_f16_bench(int64_t m, int64_t n, int64_t k, int32_t repeats, orc_gpu_timing *out,
                                  orc_err *err) {
    (void)m; (void)n; (void)k; (void)repeats;
    return no_cuda(out, err);
}

#else
/* ISO C forbids an empty translation unit. */
typedef int orc_gpu_kernels_none_unused;
#endif
