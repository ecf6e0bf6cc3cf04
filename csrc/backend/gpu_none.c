/* gpu_none.c - the CUDA entry points of gpu.h for a build without CUDA: each
 * fails with ORC_E_NO_CUDA and says how to get a CUDA build. */
#include "backend/gpu.h"
#include "backend/backend.h" /* orc_backend_cuda_create */

#include <string.h>  /* memset */

#ifndef ORC_HAVE_CUDA

#define ORC_NO_CUDA_MSG \
    "orc was built without CUDA (ORC_CUDA=0, or nvcc/CUDA headers not found at build time); " \
    "rebuild with ORC_CUDA=1 to use a GPU"

orc_status orc_cuda_probe(int *count, orc_err *err) {
    if (count) *count = 0;
    return orc_fail(err, ORC_E_NO_CUDA, ORC_NO_CUDA_MSG);
}

orc_status orc_cuda_device_info_get(int index, orc_cuda_device_info *out, orc_err *err) {
    (void)index;
    if (out) memset(out, 0, sizeof *out);
    return orc_fail(err, ORC_E_NO_CUDA, ORC_NO_CUDA_MSG);
}

void orc_cuda_versions_get(orc_cuda_versions *out) {
    if (out) memset(out, 0, sizeof *out);
}

orc_status orc_cuda_selftest(const float *a, const float *b, int m, int k, int n, float alpha,
                             float *c, float *y, orc_err *err) {
    (void)a; (void)b; (void)m; (void)k; (void)n; (void)alpha; (void)c; (void)y;
    return orc_fail(err, ORC_E_NO_CUDA, ORC_NO_CUDA_MSG);
}

orc_status orc_cuda_mem_info(int device, uint64_t *free_bytes, uint64_t *total_bytes, orc_err *err) {
    (void)device;
    *free_bytes = *total_bytes = 0;
    return orc_fail(err, ORC_E_NO_CUDA, ORC_NO_CUDA_MSG);
}

orc_status orc_cuda_fail_on_purpose(orc_err *err) { return orc_fail(err, ORC_E_NO_CUDA, ORC_NO_CUDA_MSG); }

orc_status orc_backend_cuda_create(const orc_backend_params *p, orc_backend **out, orc_err *err) {
    (void)p;
    if (out) *out = NULL;
    return orc_fail(err, ORC_E_NO_CUDA, ORC_NO_CUDA_MSG);
}

#else
/* ISO C forbids an empty translation unit. */
typedef int orc_gpu_none_unused;
#endif
