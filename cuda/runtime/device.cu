/* device.cu - probing the GPU, device facts and versions, the error helpers of
 * cuda_check.cuh, and a self-test that exercises allocation, cuBLAS and a
 * kernel of ours end to end (the `gpu` smoke test calls it). */
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <atomic>
#include <mutex>

#include "backend/gpu.h"
#include "runtime/cuda_check.cuh"
#include "runtime/env.cuh"
#include "runtime/launch.cuh"

bool orc_pdl_on() {
    static std::atomic<int> env_on{INT_MIN};
    static std::atomic<int> major[64]; /* compute capability major + 1 per device; 0 unknown */
    if (!orc_env_switch(env_on, "ORC_PDL", true)) return false;
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess) return false;
    std::atomic<int> &slot = major[dev & 63];
    int m = slot.load(std::memory_order_acquire);
    if (m == 0) {
        int cc = 0;
        if (cudaDeviceGetAttribute(&cc, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess) return false;
        m = cc + 1;
        slot.store(m, std::memory_order_release);
    }
    return m - 1 >= 9;
}

/* Does `name` match one ','-separated alternative of pat: "=NAME" the whole name, else every
 * '+'-separated part of it somewhere in the name? */
static bool profile_match(const char *name, const char *pat) {
    char part[512];
    for (const char *alt = pat; *alt;) {
        const char *alt_end = alt + strcspn(alt, ",");
        if (*alt == '=') {
            const size_t n = (size_t)(alt_end - alt - 1);
            if (strlen(name) == n && strncmp(name, alt + 1, n) == 0) return true;
            alt = alt_end + (*alt_end == ',');
            continue;
        }
        bool all = alt_end > alt;
        for (const char *q = alt; q < alt_end && all;) {
            const size_t n = strcspn(q, "+,");
            if (n == 0 || n >= sizeof part) {
                all = false;
                break;
            }
            memcpy(part, q, n);
            part[n] = 0;
            all = strstr(name, part) != nullptr;
            q += n + (q[n] == '+');
        }
        if (all) return true;
        alt = alt_end + (*alt_end == ',');
    }
    return false;
}

int orc_profile_launches(const void *kernel) {
    static std::atomic<int> on{INT_MIN};
    if (!orc_env_once(on, "ORC_PROFILE_DUP", [](const char *v) { return (int)(v && v[0]); })) return 1;
    /* Profiling only: a lock per launch, verdicts cached per kernel until the pattern changes. */
    static std::mutex mu;
    static char pat[1024];
    static const void *seen[512];
    static int verdict[512], n_seen;
    std::lock_guard<std::mutex> lock(mu);
    const char *now = getenv("ORC_PROFILE_DUP");
    if (!now) now = "";
    if (strncmp(now, pat, sizeof pat) != 0) {
        snprintf(pat, sizeof pat, "%s", now);
        n_seen = 0;
    }
    const bool each = strcmp(pat, "??") == 0; /* name every launch, run each once */
    if (!each)
        for (int i = 0; i < n_seen; i++)
            if (seen[i] == kernel) return verdict[i];
    const char *name = nullptr;
    if (cudaFuncGetName(&name, kernel) != cudaSuccess || !name) {
        (void)cudaGetLastError(); /* the query's failure is not the launch's */
        name = "(unnamed)";
    }
    if (each) {
        fprintf(stderr, "orc: ORC_PROFILE_DUP launch: %s\n", name);
        return 1;
    }
    const int times = strcmp(pat, "?") != 0 && profile_match(name, pat) ? 2 : 1;
    fprintf(stderr, "orc: ORC_PROFILE_DUP %s %s\n", times == 2 ? "twice (timing only, results wrong):" : "once:", name);
    if (n_seen < 512) {
        seen[n_seen] = kernel;
        verdict[n_seen++] = times;
    }
    return times;
}

cudaError_t orc_device_facts(orc_dev_facts *out) {
    static std::atomic<int> known[64]; /* 1: facts[dev] filled */
    static orc_dev_facts facts[64];
    int dev = 0;
    cudaError_t e = cudaGetDevice(&dev);
    if (e != cudaSuccess) return e;
    dev &= 63;
    if (!known[dev].load(std::memory_order_acquire)) {
        orc_dev_facts f;
        if ((e = cudaDeviceGetAttribute(&f.nsm, cudaDevAttrMultiProcessorCount, dev)) != cudaSuccess ||
            (e = cudaDeviceGetAttribute(&f.smem_per_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor, dev)) !=
                cudaSuccess ||
            (e = cudaDeviceGetAttribute(&f.regs_per_sm, cudaDevAttrMaxRegistersPerMultiprocessor, dev)) != cudaSuccess ||
            (e = cudaDeviceGetAttribute(&f.optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev)) != cudaSuccess)
            return e;
        facts[dev] = f; /* the same values whoever writes them */
        known[dev].store(1, std::memory_order_release);
    }
    *out = facts[dev];
    return cudaSuccess;
}

extern "C" const char *orc_cublas_status_string(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    default: return "CUBLAS_STATUS_UNKNOWN";
    }
}

extern "C" orc_status orc_cuda_fail(orc_err *err, cudaError_t e, const char *call, const char *file,
                                    int line) {
    orc_status s = (e == cudaErrorMemoryAllocation) ? ORC_E_NOMEM : ORC_E_CUDA;
    return orc_fail(err, s, "%s failed: %s (%s, cudaError %d) at %s:%d", call, cudaGetErrorString(e),
                    cudaGetErrorName(e), (int)e, file, line);
}

extern "C" orc_status orc_cublas_fail(orc_err *err, cublasStatus_t s, const char *call, const char *file,
                                      int line) {
    orc_status st = (s == CUBLAS_STATUS_ALLOC_FAILED) ? ORC_E_NOMEM : ORC_E_CUDA;
    return orc_fail(err, st, "%s failed: %s (cublasStatus %d) at %s:%d", call, orc_cublas_status_string(s),
                    (int)s, file, line);
}

extern "C" orc_status orc_cuda_probe(int *count, orc_err *err) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (count) *count = 0;
    if (e != cudaSuccess) {
        /* Clear the sticky-free "last error" so later calls do not see it. */
        (void)cudaGetLastError();
        return orc_fail(err, ORC_E_NO_CUDA, "no usable CUDA device: cudaGetDeviceCount: %s (%s)",
                        cudaGetErrorString(e), cudaGetErrorName(e));
    }
    if (n == 0) return orc_fail(err, ORC_E_NO_CUDA, "no usable CUDA device: the driver reports 0 devices");
    if (count) *count = n;
    return ORC_OK;
}

extern "C" orc_status orc_cuda_device_info_get(int index, orc_cuda_device_info *out, orc_err *err) {
    orc_status st = ORC_OK;
    int prev = -1;
    cudaDeviceProp p;
    size_t free_b = 0, total_b = 0;
    memset(out, 0, sizeof *out);
    ORC_CUDA_CHECK(cudaGetDevice(&prev));
    ORC_CUDA_CHECK(cudaGetDeviceProperties(&p, index));
    snprintf(out->name, sizeof out->name, "%s", p.name);
    ORC_CUDA_CHECK(cudaDeviceGetPCIBusId(out->pci_bus_id, (int)sizeof out->pci_bus_id, index));
    ORC_CUDA_CHECK(cudaSetDevice(index));
    ORC_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    out->total_memory = (uint64_t)total_b;
    out->free_memory = (uint64_t)free_b;
    out->cc_major = p.major;
    out->cc_minor = p.minor;
    out->multiprocessors = p.multiProcessorCount;
cleanup:
    if (prev >= 0) (void)cudaSetDevice(prev);
    return st;
}

extern "C" void orc_cuda_versions_get(orc_cuda_versions *out) {
    memset(out, 0, sizeof *out);
    out->runtime_compiled = CUDART_VERSION;
    if (cudaRuntimeGetVersion(&out->runtime) != cudaSuccess) out->runtime = 0;
    if (cudaDriverGetVersion(&out->driver) != cudaSuccess) out->driver = 0;
    int major = 0, minor = 0, patch = 0;
    if (cublasGetProperty(MAJOR_VERSION, &major) == CUBLAS_STATUS_SUCCESS &&
        cublasGetProperty(MINOR_VERSION, &minor) == CUBLAS_STATUS_SUCCESS &&
        cublasGetProperty(PATCH_LEVEL, &patch) == CUBLAS_STATUS_SUCCESS)
        out->cublas = major * 10000 + minor * 100 + patch;
    (void)cudaGetLastError();
}

/* y[i] = alpha * x[i] + i: position-dependent, so a kernel that skips or
 * repeats elements cannot pass. */
__global__ void orc_selftest_axpi_kernel(const float *x, float *y, float alpha, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    /* _rn intrinsics: no multiply-add contraction, so the result is exactly numpy's. */
    if (i < n) y[i] = __fadd_rn(__fmul_rn(alpha, x[i]), (float)i);
}

extern "C" orc_status orc_cuda_selftest(const float *a, const float *b, int m, int k, int n, float alpha,
                                        float *c, float *y, orc_err *err) {
    orc_status st = ORC_OK;
    float *da = NULL, *db = NULL, *dc = NULL, *dy = NULL;
    cublasHandle_t h = NULL;
    const float one = 1.0f, zero = 0.0f;
    size_t na = (size_t)m * k, nb = (size_t)k * n, nc = (size_t)m * n;

    ORC_CUDA_CHECK(cudaMalloc((void **)&da, na * sizeof(float)));
    ORC_CUDA_CHECK(cudaMalloc((void **)&db, nb * sizeof(float)));
    ORC_CUDA_CHECK(cudaMalloc((void **)&dc, nc * sizeof(float)));
    ORC_CUDA_CHECK(cudaMalloc((void **)&dy, na * sizeof(float)));
    ORC_CUDA_CHECK(cudaMemcpy(da, a, na * sizeof(float), cudaMemcpyHostToDevice));
    ORC_CUDA_CHECK(cudaMemcpy(db, b, nb * sizeof(float), cudaMemcpyHostToDevice));
    ORC_CUBLAS_CHECK(cublasCreate(&h));
    /* Row-major C = A B is column-major C^T = B^T A^T: swap the operands. */
    ORC_CUBLAS_CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, n, m, k, &one, db, n, da, k, &zero, dc, n));
    orc_selftest_axpi_kernel<<<(unsigned)((na + 255) / 256), 256>>>(da, dy, alpha, (int)na);
    ORC_CUDA_CHECK_LAUNCH("orc_selftest_axpi_kernel");
    ORC_CUDA_CHECK(cudaDeviceSynchronize());
    ORC_CUDA_CHECK(cudaMemcpy(c, dc, nc * sizeof(float), cudaMemcpyDeviceToHost));
    ORC_CUDA_CHECK(cudaMemcpy(y, dy, na * sizeof(float), cudaMemcpyDeviceToHost));
cleanup:
    if (h) cublasDestroy(h);
    cudaFree(da);
    cudaFree(db);
    cudaFree(dc);
    cudaFree(dy);
    return st;
}

extern "C" orc_status orc_cuda_mem_info(int device, uint64_t *free_bytes, uint64_t *total_bytes, orc_err *err) {
    orc_status st = ORC_OK;
    int prev = -1;
    size_t f = 0, t = 0;
    *free_bytes = *total_bytes = 0;
    ORC_CUDA_CHECK(cudaGetDevice(&prev));
    ORC_CUDA_CHECK(cudaSetDevice(device));
    ORC_CUDA_CHECK(cudaMemGetInfo(&f, &t));
    *free_bytes = f;
    *total_bytes = t;
cleanup:
    if (prev >= 0) (void)cudaSetDevice(prev);
    return st;
}

extern "C" orc_status orc_cuda_fail_on_purpose(orc_err *err) {
    orc_status st = ORC_OK;
    float host = 0.0f;
    /* An address no allocation owns: cudaMemcpy rejects it with cudaErrorInvalidValue. */
    ORC_CUDA_CHECK(cudaMemcpy(&host, (const void *)(uintptr_t)0x10, sizeof host, cudaMemcpyDeviceToHost));
cleanup:
    (void)cudaGetLastError();
    return st;
}
