/* gpu.h - the C side of the CUDA code in cuda/: every entry point the core and
 * the binding may call. Definitions live in the cuda/ sources (extern "C") when orc is
 * built with CUDA, and in gpu_none.c otherwise, where each one fails with
 * ORC_E_NO_CUDA so that a CPU-only build links and explains itself.
 */
#ifndef ORC_GPU_H
#define ORC_GPU_H

#include <stdbool.h>

#include "core/orc.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Is CUDA usable here? ORC_OK with *count >= 1 when it is; otherwise a status
 * and a message that says why (no driver, no device, built without CUDA). */
orc_status orc_cuda_probe(int *count, orc_err *err);

typedef struct orc_cuda_device_info {
    char name[256];
    char pci_bus_id[32];
    uint64_t total_memory;  /* bytes */
    uint64_t free_memory;   /* bytes, at the time of the call */
    int cc_major, cc_minor; /* compute capability */
    int multiprocessors;
} orc_cuda_device_info;

orc_status orc_cuda_device_info_get(int index, orc_cuda_device_info *out, orc_err *err);

/* Versions as CUDA encodes them (12080 = 12.8); 0 where unknown. The compiled-in
 * runtime version and cuBLAS version need no GPU; the driver version needs a driver. */
typedef struct orc_cuda_versions {
    int runtime_compiled, runtime, driver, cublas;
} orc_cuda_versions;
void orc_cuda_versions_get(orc_cuda_versions *out);

/* Smoke test of the whole GPU path: device allocation, a cuBLAS SGEMM and a
 * kernel of ours. c = a @ b with a [m,k], b [k,n] row-major; y[i] = alpha*a[i] + i
 * over the m*k elements of a. */
orc_status orc_cuda_selftest(const float *a, const float *b, int m, int k, int n, float alpha,
                             float *c, float *y, orc_err *err);

/* Free and total bytes on device `device` (cudaMemGetInfo). */
orc_status orc_cuda_mem_info(int device, uint64_t *free_bytes, uint64_t *total_bytes, orc_err *err);

/* A deliberately failing CUDA call (a copy from an invalid device address), so tests
 * can see how a CUDA error surfaces: status, call, file and line. */
orc_status orc_cuda_fail_on_purpose(orc_err *err);

/* The CUDA backend itself is created through backend.h's registry (orc_backend_create). */

#ifdef __cplusplus
}
#endif

#endif /* ORC_GPU_H */
