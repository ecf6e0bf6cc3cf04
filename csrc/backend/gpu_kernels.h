/* gpu_kernels.h - host entry points of the fast GPU path's kernels, for the tests and the
 * benchmarks: the fused dequantize-GEMV (cuda/gemv/gemv.cuh) and the flash attention
 * (cuda/kernels/attention_flash.cuh) run on host buffers (allocate, copy in, launch, copy
 * back, free: on every path, every CUDA status checked, errors naming the call), and timed
 * (CUDA events around CUDA-graph replays, after a warm-up; median of the repeats), with
 * the ceilings the benchmark compares against (a device-to-device copy, a cuBLAS f16 GEMM)
 * measured the same way. Definitions: cuda/gemv/gemv_host.cu and
 * cuda/kernels/attention_flash_host.cu; in a build without CUDA every function fails with
 * ORC_E_NO_CUDA (gpu_kernels_none.c). The backend itself calls the launchers directly.
 */
#ifndef ORC_GPU_KERNELS_H
#define ORC_GPU_KERNELS_H

#include <stdint.h>

#include "core/dtype.h" /* orc_dtype */
#include "core/orc.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One GEMV launch described with host buffers (see gemv.cuh for the semantics). */
typedef struct orc_gpu_gemv_job {
    int32_t type;          /* ggml type of W */
    const void *w;         /* host: rows x row bytes (MoE: n_expert such matrices, one after another) */
    const void *w_up;      /* GLU: the up matrix (same size), else NULL */
    uint64_t w_bytes;      /* bytes at w (and at w_up); checked against the shape */
    int64_t rows, cols;
    int32_t n;             /* tokens, 1..8 */
    const float *x;        /* host [n][x_stride] */
    int64_t x_stride;      /* 0: cols */
    float *y;              /* host [nvec][y_stride], nvec = n (MoE: n * k). In: the device output's
                            * content before the launch (a poison pattern, or the residual when
                            * res_in_y); out: the result */
    int64_t y_stride;      /* 0: rows */
    const float *bias;     /* host [rows] (MoE: [n_expert][rows]) or NULL */
    const float *bias_up;  /* GLU: the up bias, or NULL */
    const float *res;      /* host [nvec][y_stride] residual added last, or NULL */
    int32_t res_in_y;      /* 1: the residual is y itself, in place (res must be NULL) */
    const float *norm_w;   /* host [cols]: RMSNorm prologue, or NULL */
    float norm_eps;
    int32_t act;           /* GLU: ORC_GEMV_ACT_* of gemv.cuh (0 SILU, 1 GELU_TANH, 2 SWIGLU_OAI) */
    const int32_t *ids;    /* MoE: host [n][k] expert ids, or NULL */
    int32_t k, n_expert;
    int32_t x_int16;       /* 1: the integer form where the type has it (gemv.cuh) */
} orc_gpu_gemv_job;

/* Run the job on the current GPU; y receives the result. */
orc_status orc_gpu_gemv_run(const orc_gpu_gemv_job *job, orc_err *err);

/* *has = 1 if the GEMV of ggml type `type` has the one-token integer form (no GPU needed). */
orc_status orc_gpu_gemv_integer_form(int32_t type, int32_t *has, orc_err *err);

/* Timings of `launches` back-to-back launches per CUDA-graph replay, `repeats` replays
 * after one warm-up replay: per launch, the median, minimum and maximum over the replays.
 * bytes: what one launch must move at least (weights read; for the copy, read + written). */
typedef struct orc_gpu_timing {
    double ms_median, ms_min, ms_max; /* per launch */
    int32_t launches, repeats;
    int32_t copies;                   /* weight copies rotated over (GEMV) */
    uint64_t bytes;                   /* per launch */
    double flops;                     /* per launch (attention, GEMM) */
} orc_gpu_timing;

/* Time the GEMV: the weights are replicated `copies` times on the device (at least 256 MiB
 * in all, more than 4x the L2) and successive launches use successive copies, so that the
 * weights come from memory, not the cache. */
orc_status orc_gpu_gemv_bench(const orc_gpu_gemv_job *job, int32_t repeats, orc_gpu_timing *out, orc_err *err);

/* The copy ceiling: cudaMemcpyAsync device-to-device of `bytes` (bytes = read + written). */
orc_status orc_gpu_copy_bench(uint64_t bytes, int32_t repeats, orc_gpu_timing *out, orc_err *err);

/* One flash-attention launch with host buffers (see attention_flash.cuh). */
typedef struct orc_gpu_attn_job {
    int64_t n;            /* queries */
    int64_t n_kv;         /* rows of the caches */
    int32_t n_head, n_head_kv, head_dim, head_dim_v;
    const float *q;       /* host [n][n_head * head_dim] */
    const void *k, *v;    /* host [n_kv][n_head_kv * head_dim(_v)] of kv_dtype (f16 / bf16 bits) */
    orc_dtype kv_dtype;
    const int32_t *pos;   /* host [n] */
    const int32_t *kv_base; /* host [n] */
    float scale, softcap;
    int32_t window;
    const float *sinks;   /* host [n_head] or NULL */
    float *out;           /* host [n][n_head * head_dim_v]; in: the device buffer's initial content */
} orc_gpu_attn_job;

orc_status orc_gpu_attention_flash_run(const orc_gpu_attn_job *job, orc_err *err);

/* Time the flash attention (flops: 2 (head_dim + head_dim_v) per visible (query, key, head)). */
orc_status orc_gpu_attention_flash_bench(const orc_gpu_attn_job *job, int32_t repeats, orc_gpu_timing *out,
                                         orc_err *err);

/* The tensor-core ceiling: cuBLAS GEMM m x n x k, float16 operands (random), float32
 * accumulation and output. */
orc_status orc_gpu_gemm_f16_bench(int64_t m, int64_t n, int64_t k, int32_t repeats, orc_gpu_timing *out,
                                  orc_err *err);

#ifdef __cplusplus
}
#endif

#endif /* ORC_GPU_KERNELS_H */
