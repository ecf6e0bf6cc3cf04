/* attention_flash_host.cu - the flash-attention entry points of gpu_kernels.h (run from
 * host buffers, time) and the tensor-core ceiling the benchmark compares it with (a cuBLAS
 * float16 GEMM with float32 accumulation on random operands). */
#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <string.h>

#include "backend/gpu_kernels.h"
#include "kernels/attention_flash.cuh"
#include "runtime/cuda_check.cuh"
#include "runtime/timing.cuh"

namespace {

struct fa_dev {
    float *q = nullptr, *out = nullptr, *sinks = nullptr;
    void *k = nullptr, *v = nullptr;
    int32_t *pos = nullptr, *kv_base = nullptr;
    size_t out_bytes = 0;
    orc_attn_flash_args a;
};

void fa_free(fa_dev *d) {
    void *p[] = {d->q, d->out, d->sinks, d->k, d->v, d->pos, d->kv_base};
    for (void *x : p)
        if (x) (void)cudaFree(x);
    *d = fa_dev();
}

orc_status fa_setup(const orc_gpu_attn_job *j, fa_dev *d, orc_err *err) {
    orc_status st = ORC_OK;
    size_t qb = 0, kb = 0, vb = 0, esz = 0;
    if (!j || !j->q || !j->k || !j->v || !j->pos || !j->kv_base || !j->out)
        return orc_fail(err, ORC_E_INVALID, "orc_gpu_attention_flash: NULL job or buffer");
    if (j->n < 1 || j->n_kv < 1 || j->n_head < 1 || j->n_head_kv < 1 || j->n_head % j->n_head_kv != 0)
        return orc_fail(err, ORC_E_INVALID,
                        "orc_gpu_attention_flash: n %lld, n_kv %lld, n_head %d, n_head_kv %d (must divide n_head)",
                        (long long)j->n, (long long)j->n_kv, (int)j->n_head, (int)j->n_head_kv);
    if (!orc_attention_flash_supported(j->kv_dtype, j->head_dim, j->head_dim_v))
        return orc_fail(err, ORC_E_UNSUPPORTED,
                        "orc_gpu_attention_flash: %s cache with head sizes %d/%d is not supported (float16 or "
                        "bfloat16, equal head sizes 64, 80, 96, 128 or 256)",
                        orc_dtype_name(j->kv_dtype), (int)j->head_dim, (int)j->head_dim_v);
    for (int64_t t = 0; t < j->n; t++) /* the device reads these rows: keep them inside the cache */
        if (j->pos[t] < 0 || (int64_t)j->kv_base[0] + j->pos[t] >= j->n_kv || j->kv_base[0] < 0)
            return orc_fail(err, ORC_E_RANGE,
                            "orc_gpu_attention_flash: query %lld: kv_base %d + position %d outside the %lld cache rows",
                            (long long)t, (int)j->kv_base[0], (int)j->pos[t], (long long)j->n_kv);
    esz = 2;
    qb = (size_t)j->n * j->n_head * j->head_dim * sizeof(float);
    kb = (size_t)j->n_kv * j->n_head_kv * j->head_dim * esz;
    vb = (size_t)j->n_kv * j->n_head_kv * j->head_dim_v * esz;
    d->out_bytes = (size_t)j->n * j->n_head * j->head_dim_v * sizeof(float);
    ORC_CUDA_CHECK(cudaMalloc((void **)&d->q, qb));
    ORC_CUDA_CHECK(cudaMemcpy(d->q, j->q, qb, cudaMemcpyHostToDevice));
    ORC_CUDA_CHECK(cudaMalloc(&d->k, kb));
    ORC_CUDA_CHECK(cudaMemcpy(d->k, j->k, kb, cudaMemcpyHostToDevice));
    ORC_CUDA_CHECK(cudaMalloc(&d->v, vb));
    ORC_CUDA_CHECK(cudaMemcpy(d->v, j->v, vb, cudaMemcpyHostToDevice));
    ORC_CUDA_CHECK(cudaMalloc((void **)&d->pos, (size_t)j->n * sizeof(int32_t)));
    ORC_CUDA_CHECK(cudaMemcpy(d->pos, j->pos, (size_t)j->n * sizeof(int32_t), cudaMemcpyHostToDevice));
    ORC_CUDA_CHECK(cudaMalloc((void **)&d->kv_base, (size_t)j->n * sizeof(int32_t)));
    ORC_CUDA_CHECK(cudaMemcpy(d->kv_base, j->kv_base, (size_t)j->n * sizeof(int32_t), cudaMemcpyHostToDevice));
    if (j->sinks) {
        ORC_CUDA_CHECK(cudaMalloc((void **)&d->sinks, (size_t)j->n_head * sizeof(float)));
        ORC_CUDA_CHECK(cudaMemcpy(d->sinks, j->sinks, (size_t)j->n_head * sizeof(float), cudaMemcpyHostToDevice));
    }
    ORC_CUDA_CHECK(cudaMalloc((void **)&d->out, d->out_bytes));
    ORC_CUDA_CHECK(cudaMemcpy(d->out, j->out, d->out_bytes, cudaMemcpyHostToDevice)); /* the caller's poison */
    memset(&d->a, 0, sizeof d->a);
    d->a.q = d->q;
    d->a.q_stride = (int64_t)j->n_head * j->head_dim;
    d->a.k_cache = d->k;
    d->a.v_cache = d->v;
    d->a.kv_dtype = j->kv_dtype;
    d->a.k_stride = (int64_t)j->n_head_kv * j->head_dim;
    d->a.v_stride = (int64_t)j->n_head_kv * j->head_dim_v;
    d->a.out = d->out;
    d->a.out_stride = (int64_t)j->n_head * j->head_dim_v;
    d->a.pos = d->pos;
    d->a.kv_base = d->kv_base;
    d->a.n = j->n;
    d->a.n_head = j->n_head;
    d->a.n_head_kv = j->n_head_kv;
    d->a.head_dim = j->head_dim;
    d->a.head_dim_v = j->head_dim_v;
    d->a.scale = j->scale;
    d->a.softcap = j->softcap;
    d->a.window = j->window;
    d->a.sinks = d->sinks;
    return ORC_OK;
cleanup:
    fa_free(d);
    return st;
}

/* Uniform values in [-1, 1) from a hash of the index, as float16. */
__global__ void orc_fill_f16_kernel(__half *p, size_t n, uint32_t seed) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        uint32_t h = (uint32_t)i * 0x9E3779B1u ^ seed;
        h ^= h >> 16;
        h *= 0x85EBCA6Bu;
        h ^= h >> 13;
        h *= 0xC2B2AE35u;
        h ^= h >> 16;
        p[i] = __float2half_rn((float)(h >> 8) * (2.0f / 16777216.0f) - 1.0f);
    }
}

} /* namespace */

extern "C" orc_status orc_gpu_attention_flash_run(const orc_gpu_attn_job *j, orc_err *err) {
    orc_status st = ORC_OK;
    fa_dev d;
    st = fa_setup(j, &d, err);
    if (st != ORC_OK) return st;
    ORC_CUDA_CHECK(orc_launch_attention_flash(&d.a, 0));
    ORC_CUDA_CHECK(cudaDeviceSynchronize());
    ORC_CUDA_CHECK(cudaMemcpy(j->out, d.out, d.out_bytes, cudaMemcpyDeviceToHost));
cleanup:
    fa_free(&d);
    return st;
}

extern "C" orc_status orc_gpu_attention_flash_bench(const orc_gpu_attn_job *j, int32_t repeats, orc_gpu_timing *out,
                                                    orc_err *err) {
    orc_status st = ORC_OK;
    fa_dev d;
    double flops = 0;
    if (!out) return orc_fail(err, ORC_E_INVALID, "orc_gpu_attention_flash_bench: NULL out");
    memset(out, 0, sizeof *out);
    st = fa_setup(j, &d, err);
    if (st != ORC_OK) return st;
    for (int64_t t = 0; t < j->n; t++) {
        const int64_t p = j->pos[t];
        const int64_t lo = j->window > 0 && p - j->window + 1 > 0 ? p - j->window + 1 : 0;
        flops += 2.0 * (double)(p - lo + 1) * (j->head_dim + j->head_dim_v) * j->n_head;
    }
    {
        auto enqueue = [&](int, cudaStream_t s) { return orc_launch_attention_flash(&d.a, s); };
        st = orc_time_launches("orc_launch_attention_flash", 3, repeats, false, enqueue, out, err);
    }
    out->flops = flops;
    out->bytes = (uint64_t)(j->n * j->n_head * (j->head_dim + j->head_dim_v) * 4);
    fa_free(&d);
    return st;
}

extern "C" orc_status orc_gpu_gemm_f16_bench(int64_t m, int64_t n, int64_t k, int32_t repeats, orc_gpu_timing *out,
                                             orc_err *err) {
    orc_status st = ORC_OK;
    __half *a = nullptr, *b = nullptr;
    float *c = nullptr;
    cublasHandle_t h = nullptr;
    const float one = 1.0f, zero = 0.0f;
    if (!out) return orc_fail(err, ORC_E_INVALID, "orc_gpu_gemm_f16_bench: NULL out");
    memset(out, 0, sizeof *out);
    if (m < 1 || n < 1 || k < 1 || m > 65536 || n > 65536 || k > 65536)
        return orc_fail(err, ORC_E_INVALID, "orc_gpu_gemm_f16_bench: m, n, k must be 1..65536");
    ORC_CUDA_CHECK(cudaMalloc((void **)&a, (size_t)m * k * sizeof(__half)));
    ORC_CUDA_CHECK(cudaMalloc((void **)&b, (size_t)k * n * sizeof(__half)));
    ORC_CUDA_CHECK(cudaMalloc((void **)&c, (size_t)m * n * sizeof(float)));
    orc_fill_f16_kernel<<<1024, 256>>>(a, (size_t)m * k, 1u);
    ORC_CUDA_CHECK_LAUNCH("orc_fill_f16_kernel");
    orc_fill_f16_kernel<<<1024, 256>>>(b, (size_t)k * n, 2u);
    ORC_CUDA_CHECK_LAUNCH("orc_fill_f16_kernel");
    ORC_CUDA_CHECK(cudaDeviceSynchronize());
    ORC_CUBLAS_CHECK(cublasCreate(&h));
    {
        cudaError_t serr = cudaSuccess;
        auto enqueue = [&](int, cudaStream_t s) {
            if (cublasSetStream(h, s) != CUBLAS_STATUS_SUCCESS) return cudaErrorUnknown;
            const cublasStatus_t cs =
                cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, (int)m, (int)n, (int)k, &one, a, CUDA_R_16F, (int)m, b,
                             CUDA_R_16F, (int)k, &zero, c, CUDA_R_32F, (int)m, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
            return cs == CUBLAS_STATUS_SUCCESS ? serr : cudaErrorUnknown;
        };
        st = orc_time_launches("cublasGemmEx(f16, f32 accumulate)", 3, repeats, false, enqueue, out, err);
    }
    out->flops = 2.0 * (double)m * (double)n * (double)k;
cleanup:
    if (h) (void)cublasDestroy(h);
    if (a) (void)cudaFree(a);
    if (b) (void)cudaFree(b);
    if (c) (void)cudaFree(c);
    return st;
}
