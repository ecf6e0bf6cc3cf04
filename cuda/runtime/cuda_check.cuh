/* cuda_check.cuh - checking every CUDA runtime and cuBLAS return code.
 *
 * The macros record the failing call, file and line in the function's orc_err
 * and jump to its `cleanup:` label, so each function has one exit path that
 * frees what it took. They expect `orc_status st` and `orc_err *err` in scope.
 * Out-of-memory becomes ORC_E_NOMEM (-> MemoryError), everything else ORC_E_CUDA.
 */
#ifndef ORC_CUDA_CHECK_CUH
#define ORC_CUDA_CHECK_CUH

#include <cublas_v2.h>     /* cublasStatus_t */
#include <cuda_runtime.h>  /* cudaError_t */

#include "core/orc.h"

#ifdef __cplusplus
extern "C" {
#endif
orc_status orc_cuda_fail(orc_err *err, cudaError_t e, const char *call, const char *file, int line);
orc_status orc_cublas_fail(orc_err *err, cublasStatus_t s, const char *call, const char *file, int line);
const char *orc_cublas_status_string(cublasStatus_t s);
#ifdef __cplusplus
}
#endif

#define ORC_CUDA_CHECK(call)                                                  \
    do {                                                                      \
        cudaError_t orc_e_ = (call);                                          \
        if (orc_e_ != cudaSuccess) {                                          \
            st = orc_cuda_fail(err, orc_e_, #call, __FILE__, __LINE__);       \
            goto cleanup;                                                     \
        }                                                                     \
    } while (0)

#define ORC_CUBLAS_CHECK(call)                                                \
    do {                                                                      \
        cublasStatus_t orc_s_ = (call);                                       \
        if (orc_s_ != CUBLAS_STATUS_SUCCESS) {                                \
            st = orc_cublas_fail(err, orc_s_, #call, __FILE__, __LINE__);     \
            goto cleanup;                                                     \
        }                                                                     \
    } while (0)

/* After a kernel launch: launch-configuration errors show up here at once;
 * faults inside the kernel show up at the next synchronizing call. */
#define ORC_CUDA_CHECK_LAUNCH(what) ORC_CUDA_CHECK(cudaGetLastError())

#endif /* ORC_CUDA_CHECK_CUH */
