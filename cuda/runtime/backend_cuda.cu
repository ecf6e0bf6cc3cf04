/* backend_cuda.cu - the CUDA backend behind backend.h: device memory, one stream,
 * one cuBLAS handle per model (no globals), weights dequantized on the GPU at load
 * (gpu_dequant.h), cuBLAS for the matrix products with float32 accumulation, and
 * the kernels of kernels.cuh for the rest.
 *
 * Per step the only host<->device traffic is the token ids in and the requested
 * logits/activations out. Every CUDA and cuBLAS status is checked; errors name the
 * call and location (cuda_check.cuh) and out-of-memory names what was allocated. */
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "gguf/ggml_types.h"
#include "backend/gpu.h"
#include "quant/gpu_dequant.h"
#include "runtime/cuda_check.cuh"
#include "kernels/kernels.cuh"

#define ROPE_TABLES 4

typedef struct rope_table {
    float base;
    int32_t n_rot;
    const void *factors; /* device pointer of the factor tensor, or NULL */
    float *d_inv;        /* [n_rot/2] */
} rope_table;

typedef struct cuda_backend {
    orc_backend base;
    int device;
    bool keep_quantized;
    cudaStream_t stream;
    cublasHandle_t blas;
    uint64_t allocated;
    /* grown on demand */
    void *d_staging;    /* stored weight bytes on their way to dequantization */
    uint64_t staging_bytes;
    void *d_half;       /* matmul inputs rounded to the weight dtype */
    uint64_t half_bytes;
    float *d_f32;       /* downloads of non-f32 tensors */
    uint64_t f32_bytes;
    int32_t *d_ids;     /* token ids / argmax results */
    uint64_t ids_bytes;
    float *d_attn;      /* partial results of split attention */
    uint64_t attn_bytes;
    int n_sm;
    /* CUDA graphs of decode steps */
    int graph_mode;     /* ORC_GRAPH_* */
    int64_t *d_pos;     /* the step's position, read by graph-mode kernels */
    int64_t *h_pos;     /* pinned staging of it */
    void *d_blas_ws;    /* cuBLAS workspace, set explicitly: no allocation while recording */
    uint64_t blas_ws_bytes;
    rope_table rope[ROPE_TABLES];
} cuda_backend;

static cuda_backend *cb(orc_backend *b) { return (cuda_backend *)b; }

/* Grow a device scratch buffer to at least `bytes`. */
static orc_status grow(cuda_backend *c, void **buf, uint64_t *have, uint64_t bytes, const char *what, orc_err *err) {
    orc_status st = ORC_OK;
    if (bytes <= *have) return ORC_OK;
    if (c->graph_mode == ORC_GRAPH_RECORD)
        return orc_fail(err, ORC_E_INTERNAL, "%s would grow while recording a CUDA graph", what);
    if (*buf) {
        ORC_CUDA_CHECK(cudaStreamSynchronize(c->stream));
        ORC_CUDA_CHECK(cudaFree(*buf));
        c->allocated -= *have;
        *buf = NULL;
        *have = 0;
    }
    if (cudaMalloc(buf, bytes) != cudaSuccess) {
        (void)cudaGetLastError();
        *buf = NULL;
        return orc_fail(err, ORC_E_NOMEM, "CUDA out of memory allocating %s (%llu bytes) on device %d", what,
                        (unsigned long long)bytes, c->device);
    }
    *have = bytes;
    c->allocated += bytes;
cleanup:
    return st;
}

static orc_status set_device(cuda_backend *c, orc_err *err) {
    orc_status st = ORC_OK;
    ORC_CUDA_CHECK(cudaSetDevice(c->device));
cleanup:
    return st;
}

/* --------------------------------------------------------------------------- memory */

static orc_status cu_alloc(orc_backend *b, orc_tensor *t, orc_dtype dtype, int64_t rows, int64_t cols, const char *what,
                           orc_err *err) {
    cuda_backend *c = cb(b);
    memset(t, 0, sizeof *t);
    orc_status st = set_device(c, err);
    if (st != ORC_OK) return st;
    uint64_t n, bytes;
    if (rows < 0 || cols < 0 || orc_mul_overflow_u64((uint64_t)rows, (uint64_t)cols, &n) ||
        orc_mul_overflow_u64(n, (uint64_t)orc_dtype_size(dtype), &bytes))
        return orc_fail(err, ORC_E_NOMEM, "cannot allocate %s: %lld x %lld is too large", what, (long long)rows,
                        (long long)cols);
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 16);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        if (e == cudaErrorMemoryAllocation) {
            size_t free_b = 0, total_b = 0;
            cudaMemGetInfo(&free_b, &total_b);
            return orc_fail(err, ORC_E_NOMEM,
                            "CUDA out of memory allocating %s (%llu bytes) on device %d: %llu of %llu bytes free", what,
                            (unsigned long long)bytes, c->device, (unsigned long long)free_b,
                            (unsigned long long)total_b);
        }
        return orc_cuda_fail(err, e, "cudaMalloc", __FILE__, __LINE__);
    }
    t->data = p;
    t->dtype = dtype;
    t->rows = rows;
    t->cols = cols;
    t->nbytes = bytes;
    c->allocated += bytes;
    return ORC_OK;
}

static void cu_free(orc_backend *b, orc_tensor *t) {
    cuda_backend *c = cb(b);
    if (!t) return;
    cudaSetDevice(c->device);
    if (t->data && t->nbytes) {
        cudaFree(t->data);
        c->allocated -= t->nbytes;
    }
    if (t->quant) {
        cudaFree(t->quant);
        c->allocated -= t->quant_bytes;
    }
    memset(t, 0, sizeof *t);
}

static uint64_t cu_allocated(const orc_backend *b) { return ((const cuda_backend *)b)->allocated; }

static orc_status cu_upload_weight(orc_backend *b, orc_tensor *dst, int32_t type, const void *src, uint64_t src_bytes,
                                   bool raw_as_f16, orc_err *err) {
    cuda_backend *c = cb(b);
    orc_status st = set_device(c, err);
    void *d_src = NULL;
    bool own = c->keep_quantized && !raw_as_f16;
    if (st != ORC_OK) return st;
    if (own) {
        if (cudaMalloc(&d_src, src_bytes) != cudaSuccess) {
            (void)cudaGetLastError();
            return orc_fail(err, ORC_E_NOMEM, "CUDA out of memory keeping the quantized blocks (%llu bytes)",
                            (unsigned long long)src_bytes);
        }
        c->allocated += src_bytes;
    } else {
        st = grow(c, &c->d_staging, &c->staging_bytes, src_bytes, "the weight staging buffer", err);
        if (st != ORC_OK) return st;
        d_src = c->d_staging;
    }
    /* From the memory-mapped file: a pageable copy, which the driver stages itself. */
    ORC_CUDA_CHECK(cudaMemcpyAsync(d_src, src, src_bytes, cudaMemcpyHostToDevice, c->stream));
    if (raw_as_f16) {
        ORC_CUDA_CHECK(orc_launch_raw_as_f16((const uint16_t *)d_src, src_bytes / 2, dst->data, dst->dtype,
                                             dst->rows * dst->cols, c->stream));
    } else {
        st = orc_cuda_dequantize(type, d_src, src_bytes, dst->rows * dst->cols, dst->dtype, dst->data, c->stream, err);
        if (st != ORC_OK) goto cleanup;
    }
    if (own) {
        dst->quant = d_src;
        dst->quant_bytes = src_bytes;
        dst->quant_type = type;
        d_src = NULL;
    }
    /* The staging buffer is reused by the next upload: finish this one first. */
    ORC_CUDA_CHECK(cudaStreamSynchronize(c->stream));
cleanup:
    if (own && d_src) {
        cudaFree(d_src);
        c->allocated -= src_bytes;
    }
    return st;
}

static orc_status cu_download(orc_backend *b, const orc_tensor *src, int64_t row0, int64_t n, float *dst, orc_err *err) {
    cuda_backend *c = cb(b);
    orc_status st = set_device(c, err);
    if (st != ORC_OK) return st;
    if (row0 < 0 || n < 0 || row0 + n > src->rows)
        return orc_fail(err, ORC_E_INTERNAL, "download: rows %lld..%lld of %lld", (long long)row0, (long long)(row0 + n),
                        (long long)src->rows);
    const int64_t len = n * src->cols;
    const orc_tensor v = orc_tensor_rows(src, row0, n);
    if (src->dtype == ORC_DTYPE_F32) {
        ORC_CUDA_CHECK(cudaMemcpyAsync(dst, v.data, (size_t)len * sizeof(float), cudaMemcpyDeviceToHost, c->stream));
    } else {
        st = grow(c, (void **)&c->d_f32, &c->f32_bytes, (uint64_t)len * sizeof(float), "a download buffer", err);
        if (st != ORC_OK) return st;
        ORC_CUDA_CHECK(orc_launch_convert_to_f32(v.data, src->dtype, c->d_f32, len, c->stream));
        ORC_CUDA_CHECK(cudaMemcpyAsync(dst, c->d_f32, (size_t)len * sizeof(float), cudaMemcpyDeviceToHost, c->stream));
    }
    ORC_CUDA_CHECK(cudaStreamSynchronize(c->stream));
cleanup:
    return st;
}

/* --------------------------------------------------------------------------- ops */

static orc_status upload_ids(cuda_backend *c, const int32_t *ids, int64_t n, orc_err *err) {
    orc_status st = grow(c, (void **)&c->d_ids, &c->ids_bytes, (uint64_t)n * sizeof(int32_t), "token ids", err);
    if (st != ORC_OK) return st;
    ORC_CUDA_CHECK(cudaMemcpyAsync(c->d_ids, ids, (size_t)n * sizeof(int32_t), cudaMemcpyHostToDevice, c->stream));
cleanup:
    return st;
}

static orc_status cu_get_rows(orc_backend *b, const orc_tensor *table, const int32_t *ids, int64_t n, float scale,
                              orc_tensor *out, orc_err *err) {
    cuda_backend *c = cb(b);
    orc_status st = c->graph_mode ? ORC_OK : upload_ids(c, ids, n, err); /* graph modes: step_inputs did */
    if (st != ORC_OK) return st;
    ORC_CUDA_CHECK(orc_launch_get_rows(table->data, table->dtype, table->cols, c->d_ids, n, scale, (float *)out->data,
                                       c->stream));
cleanup:
    return st;
}

static orc_status cu_rms_norm(orc_backend *b, const orc_tensor *x, const orc_tensor *w, int64_t n, int64_t width,
                              float eps, orc_tensor *out, orc_err *err) {
    orc_status st = ORC_OK;
    ORC_CUDA_CHECK(orc_launch_rms_norm((const float *)x->data, (const float *)w->data, (float *)out->data,
                                       n * (x->cols / width), width, eps, cb(b)->stream));
cleanup:
    return st;
}

static cudaDataType_t blas_type(orc_dtype d) {
    return d == ORC_DTYPE_F16 ? CUDA_R_16F : d == ORC_DTYPE_BF16 ? CUDA_R_16BF : CUDA_R_32F;
}

static orc_status cu_matmul(orc_backend *b, const orc_tensor *x, const orc_tensor *w, int64_t n, orc_tensor *out,
                            orc_err *err) {
    cuda_backend *c = cb(b);
    orc_status st = ORC_OK;
    const int64_t k = w->cols, m = w->rows;
    const float one = 1.0f, zero = 0.0f;
    const void *xin = x->data;
    if (x->cols != k || out->cols != m)
        return orc_fail(err, ORC_E_INTERNAL, "matmul: x has %lld cols, w is %lld x %lld", (long long)x->cols,
                        (long long)m, (long long)k);
    if (w->dtype != ORC_DTYPE_F32) {
        /* cuBLAS multiplies equal input types: round the activations to the weight dtype. */
        st = grow(c, &c->d_half, &c->half_bytes, (uint64_t)(n * k) * 2, "matmul input conversion", err);
        if (st != ORC_OK) return st;
        ORC_CUDA_CHECK(orc_launch_convert_from_f32((const float *)x->data, c->d_half, w->dtype, n * k, c->stream));
        xin = c->d_half;
    }
    /* float32 weights: true float32 products (pedantic: no TF32, no reduced-precision emulation);
     * float16/bfloat16: tensor cores with float32 accumulation. */
    ORC_CUBLAS_CHECK(cublasSetMathMode(c->blas, w->dtype == ORC_DTYPE_F32 ? CUBLAS_PEDANTIC_MATH : CUBLAS_DEFAULT_MATH));
    /* Row-major out[n][m] = x[n][k] . w[m][k]^T is column-major out^T (m x n) = w^T(op T of k x m) . x^T (k x n). */
    ORC_CUBLAS_CHECK(cublasGemmEx(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)m, (int)n, (int)k, &one, w->data,
                                  blas_type(w->dtype), (int)k, xin, blas_type(w->dtype), (int)k, &zero, out->data,
                                  CUDA_R_32F, (int)m, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
cleanup:
    return st;
}

static orc_status cu_add_bias(orc_backend *b, orc_tensor *x, const orc_tensor *bias, int64_t n, orc_err *err) {
    orc_status st = ORC_OK;
    ORC_CUDA_CHECK(orc_launch_add_bias((float *)x->data, (const float *)bias->data, n, x->cols, cb(b)->stream));
cleanup:
    return st;
}

static orc_status cu_add(orc_backend *b, const orc_tensor *a, const orc_tensor *c2, int64_t n, orc_tensor *out,
                         orc_err *err) {
    orc_status st = ORC_OK;
    ORC_CUDA_CHECK(orc_launch_add((const float *)a->data, (const float *)c2->data, (float *)out->data, n * a->cols,
                                  cb(b)->stream));
cleanup:
    return st;
}

/* The inverse-frequency table for (base, n_rot, factors), computed on the host with
 * orc_rope_inv_freq (as the CPU backend does) and kept on the device. */
static orc_status rope_table_get(cuda_backend *c, const orc_rope_params *rp, const float **out, orc_err *err) {
    orc_status st = ORC_OK;
    const void *fkey = rp->freq_factors ? rp->freq_factors->data : NULL;
    float *host = NULL, *hf = NULL;
    int slot = -1;
    for (int i = 0; i < ROPE_TABLES; i++) {
        rope_table *t = &c->rope[i];
        if (t->d_inv && t->base == rp->base && t->n_rot == rp->n_rot && t->factors == fkey) {
            *out = t->d_inv;
            return ORC_OK;
        }
        if (!t->d_inv && slot < 0) slot = i;
    }
    if (slot < 0) return orc_fail(err, ORC_E_INTERNAL, "more than %d distinct RoPE tables", ROPE_TABLES);
    const int32_t half = rp->n_rot / 2;
    host = (float *)malloc((size_t)half * sizeof(float));
    if (!host) return orc_fail(err, ORC_E_NOMEM, "rope table");
    if (fkey) {
        hf = (float *)malloc((size_t)half * sizeof(float));
        if (!hf) {
            st = orc_fail(err, ORC_E_NOMEM, "rope table");
            goto cleanup;
        }
        ORC_CUDA_CHECK(cudaMemcpyAsync(hf, fkey, (size_t)half * sizeof(float), cudaMemcpyDeviceToHost, c->stream));
        ORC_CUDA_CHECK(cudaStreamSynchronize(c->stream));
    }
    for (int32_t i = 0; i < half; i++) host[i] = orc_rope_inv_freq(rp->base, i, rp->n_rot, hf);
    {
        rope_table *t = &c->rope[slot];
        ORC_CUDA_CHECK(cudaMalloc((void **)&t->d_inv, (size_t)half * sizeof(float)));
        c->allocated += (uint64_t)half * sizeof(float);
        ORC_CUDA_CHECK(cudaMemcpy(t->d_inv, host, (size_t)half * sizeof(float), cudaMemcpyHostToDevice));
        t->base = rp->base;
        t->n_rot = rp->n_rot;
        t->factors = fkey;
        *out = t->d_inv;
    }
cleanup:
    free(host);
    free(hf);
    return st;
}

static orc_status cu_rope(orc_backend *b, orc_tensor *x, int64_t n, int32_t n_heads, int32_t head_dim, int64_t pos0,
                          const orc_rope_params *rp, orc_err *err) {
    cuda_backend *c = cb(b);
    const float *inv = NULL;
    orc_status st = rope_table_get(c, rp, &inv, err);
    if (st != ORC_OK) return st;
    ORC_CUDA_CHECK(orc_launch_rope((float *)x->data, n, n_heads, head_dim, rp->n_rot, rp->neox, pos0,
                                   c->graph_mode ? c->d_pos : NULL, rp->freq_scale, inv, x->cols, c->stream));
cleanup:
    return st;
}

static orc_status cu_kv_store(orc_backend *b, orc_tensor *kc, orc_tensor *vc, const orc_tensor *k, const orc_tensor *v,
                              int64_t n, int64_t pos0, orc_err *err) {
    cuda_backend *c = cb(b);
    orc_status st = ORC_OK;
    if (pos0 < 0 || pos0 + n > kc->rows) return orc_fail(err, ORC_E_INTERNAL, "kv_store past the cache");
    ORC_CUDA_CHECK(orc_launch_kv_store((const float *)k->data, (const float *)v->data, kc->data, vc->data, kc->dtype,
                                       k->cols, v->cols, n, pos0, c->graph_mode ? c->d_pos : NULL, c->stream));
cleanup:
    return st;
}

static orc_status cu_attention(orc_backend *b, const orc_tensor *q, const orc_tensor *kc, const orc_tensor *vc, int64_t n,
                               int64_t pos0, const orc_attn_params *ap, orc_tensor *out, orc_err *err) {
    cuda_backend *c = cb(b);
    orc_status st = ORC_OK;
    /* Graph modes: one recording serves every position, so size the split for a full cache. */
    const int64_t reach = c->graph_mode ? kc->rows : pos0 + n;
    const int64_t keys = ap->window > 0 && ap->window < reach ? ap->window : reach;
    const int32_t splits = orc_attention_splits(n, ap->n_head, keys, c->n_sm);
    const int64_t part = orc_attention_partials_floats(n, ap->n_head, ap->head_dim_v, splits);
    if (part > 0) {
        st = grow(c, (void **)&c->d_attn, &c->attn_bytes, (uint64_t)part * sizeof(float), "attention partials", err);
        if (st != ORC_OK) return st;
    }
    ORC_CUDA_CHECK(orc_launch_attention((const float *)q->data, q->cols, kc->data, vc->data, kc->dtype, kc->cols,
                                        vc->cols, (float *)out->data, out->cols, c->d_attn, splits, n, pos0,
                                        c->graph_mode ? c->d_pos : NULL, ap->n_head, ap->n_head_kv, ap->head_dim,
                                        ap->head_dim_v, ap->scale, ap->softcap, ap->window, c->stream));
cleanup:
    return st;
}

static orc_status cu_glu(orc_backend *b, const orc_tensor *gate, const orc_tensor *up, int64_t n, orc_act act,
                         orc_tensor *out, orc_err *err) {
    orc_status st = ORC_OK;
    ORC_CUDA_CHECK(orc_launch_glu((const float *)gate->data, (const float *)up->data, (float *)out->data,
                                  n * gate->cols, (int)act, cb(b)->stream));
cleanup:
    return st;
}

static orc_status cu_softcap(orc_backend *b, orc_tensor *x, int64_t n, float cap, orc_err *err) {
    orc_status st = ORC_OK;
    ORC_CUDA_CHECK(orc_launch_softcap((float *)x->data, n * x->cols, cap, cb(b)->stream));
cleanup:
    return st;
}

static orc_status cu_copy_rows(orc_backend *b, const orc_tensor *src, int64_t s0, orc_tensor *dst, int64_t d0, int64_t n,
                               orc_err *err) {
    orc_status st = ORC_OK;
    const orc_tensor s = orc_tensor_rows(src, s0, n), d = orc_tensor_rows(dst, d0, n);
    const size_t bytes = (size_t)n * (size_t)src->cols * (size_t)orc_dtype_size(src->dtype);
    ORC_CUDA_CHECK(cudaMemcpyAsync(d.data, s.data, bytes, cudaMemcpyDeviceToDevice, cb(b)->stream));
cleanup:
    return st;
}

static orc_status cu_argmax(orc_backend *b, const orc_tensor *x, int64_t n, int32_t *out, orc_err *err) {
    cuda_backend *c = cb(b);
    orc_status st = grow(c, (void **)&c->d_ids, &c->ids_bytes, (uint64_t)n * sizeof(int32_t), "argmax results", err);
    if (st != ORC_OK) return st;
    ORC_CUDA_CHECK(orc_launch_argmax((const float *)x->data, n, x->cols, c->d_ids, c->stream));
    ORC_CUDA_CHECK(cudaMemcpyAsync(out, c->d_ids, (size_t)n * sizeof(int32_t), cudaMemcpyDeviceToHost, c->stream));
    ORC_CUDA_CHECK(cudaStreamSynchronize(c->stream));
cleanup:
    return st;
}

static orc_status cu_sync(orc_backend *b, orc_err *err) {
    orc_status st = ORC_OK;
    ORC_CUDA_CHECK(cudaStreamSynchronize(cb(b)->stream));
    ORC_CUDA_CHECK(cudaGetLastError());
cleanup:
    return st;
}

/* ---------------------------------------------------------------------------- CUDA graphs */

static orc_status cu_step_inputs(orc_backend *b, const int32_t *ids, int64_t n, int64_t pos0, orc_err *err) {
    cuda_backend *c = cb(b);
    orc_status st = upload_ids(c, ids, n, err);
    if (st != ORC_OK) return st;
    /* The previous step finished (its logits were downloaded) before the host writes here. */
    *c->h_pos = pos0;
    ORC_CUDA_CHECK(cudaMemcpyAsync(c->d_pos, c->h_pos, sizeof(int64_t), cudaMemcpyHostToDevice, c->stream));
cleanup:
    return st;
}

static void cu_set_graph_mode(orc_backend *b, int mode) { cb(b)->graph_mode = mode; }

static orc_status cu_record_begin(orc_backend *b, orc_err *err) {
    cuda_backend *c = cb(b);
    orc_status st = ORC_OK;
    ORC_CUDA_CHECK(cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal));
    c->graph_mode = ORC_GRAPH_RECORD;
cleanup:
    return st;
}

static orc_status cu_record_end(orc_backend *b, void **out, orc_err *err) {
    cuda_backend *c = cb(b);
    orc_status st = ORC_OK;
    cudaGraph_t g = NULL;
    cudaGraphExec_t exec = NULL;
    *out = NULL;
    c->graph_mode = ORC_GRAPH_OFF;
    ORC_CUDA_CHECK(cudaStreamEndCapture(c->stream, &g));
    ORC_CUDA_CHECK(cudaGraphInstantiate(&exec, g, 0));
    *out = (void *)exec;
cleanup:
    if (g) cudaGraphDestroy(g);
    (void)cudaGetLastError(); /* a failed recording leaves an error behind; it was reported */
    return st;
}

static orc_status cu_graph_launch(orc_backend *b, void *graph, orc_err *err) {
    orc_status st = ORC_OK;
    ORC_CUDA_CHECK(cudaGraphLaunch((cudaGraphExec_t)graph, cb(b)->stream));
cleanup:
    return st;
}

static void cu_graph_free(orc_backend *b, void *graph) {
    if (!graph) return;
    cudaSetDevice(cb(b)->device);
    cudaGraphExecDestroy((cudaGraphExec_t)graph);
}

/* Free the backend's own caches and scratch, and the cuBLAS handle with its workspace.
 * Errors here are not reportable (a teardown path): leave no sticky "last error" behind
 * for the next, unrelated CUDA call to pick up. */
static void cu_trim(orc_backend *b) {
    cuda_backend *c = cb(b);
    if (!c->stream) return; /* never initialised on a device */
    cudaSetDevice(c->device);
    cudaStreamSynchronize(c->stream);
    void **bufs[] = {&c->d_staging, &c->d_half, (void **)&c->d_f32, (void **)&c->d_ids, (void **)&c->d_attn};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        cudaFree(*bufs[i]);
        *bufs[i] = NULL;
    }
    c->allocated -= c->staging_bytes + c->half_bytes + c->f32_bytes + c->attn_bytes + c->ids_bytes;
    c->staging_bytes = c->half_bytes = c->f32_bytes = c->attn_bytes = c->ids_bytes = 0;
    for (int i = 0; i < ROPE_TABLES; i++) {
        if (c->rope[i].d_inv) c->allocated -= (uint64_t)(c->rope[i].n_rot / 2) * sizeof(float);
        cudaFree(c->rope[i].d_inv);
        memset(&c->rope[i], 0, sizeof c->rope[i]);
    }
    if (c->blas) cublasDestroy(c->blas);
    c->blas = NULL;
    cudaFree(c->d_blas_ws);
    c->d_blas_ws = NULL;
    c->allocated -= c->blas_ws_bytes;
    c->blas_ws_bytes = 0;
    cudaFree(c->d_pos);
    c->d_pos = NULL;
    cudaFreeHost(c->h_pos);
    c->h_pos = NULL;
    (void)cudaGetLastError();
}

static void cu_destroy(orc_backend *b) {
    if (!b) return;
    cuda_backend *c = cb(b);
    cu_trim(b);
    if (c->stream) cudaStreamDestroy(c->stream);
    (void)cudaGetLastError();
    free(c);
}

static const orc_backend_ops k_cuda_ops = {
    /* .name = */ "cuda",
    /* .destroy = */ cu_destroy,
    /* .alloc = */ cu_alloc,
    /* .free = */ cu_free,
    /* .upload_weight = */ cu_upload_weight,
    /* .download = */ cu_download,
    /* .get_rows = */ cu_get_rows,
    /* .rms_norm = */ cu_rms_norm,
    /* .matmul = */ cu_matmul,
    /* .add_bias = */ cu_add_bias,
    /* .add = */ cu_add,
    /* .rope = */ cu_rope,
    /* .kv_store = */ cu_kv_store,
    /* .attention = */ cu_attention,
    /* .glu = */ cu_glu,
    /* .softcap = */ cu_softcap,
    /* .copy_rows = */ cu_copy_rows,
    /* .argmax = */ cu_argmax,
    /* .sync = */ cu_sync,
    /* .allocated = */ cu_allocated,
    /* .trim = */ cu_trim,
    /* .step_inputs = */ cu_step_inputs,
    /* .set_graph_mode = */ cu_set_graph_mode,
    /* .record_begin = */ cu_record_begin,
    /* .record_end = */ cu_record_end,
    /* .graph_launch = */ cu_graph_launch,
    /* .graph_free = */ cu_graph_free,
};

extern "C" orc_status orc_backend_cuda_create(int device, bool keep_quantized, orc_backend **out, orc_err *err) {
    orc_status st = ORC_OK;
    int count = 0;
    *out = NULL;
    cuda_backend *c = (cuda_backend *)calloc(1, sizeof *c);
    if (!c) return orc_fail(err, ORC_E_NOMEM, "allocating the CUDA backend");
    c->base.ops = &k_cuda_ops;
    c->device = device;
    c->keep_quantized = keep_quantized;
    st = orc_cuda_probe(&count, err);
    if (st != ORC_OK) goto cleanup;
    if (device < 0 || device >= count) {
        st = orc_fail(err, ORC_E_INVALID, "no CUDA device %d: %d device(s) visible", device, count);
        goto cleanup;
    }
    ORC_CUDA_CHECK(cudaSetDevice(device));
    ORC_CUDA_CHECK(cudaDeviceGetAttribute(&c->n_sm, cudaDevAttrMultiProcessorCount, device));
    ORC_CUDA_CHECK(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
    ORC_CUBLAS_CHECK(cublasCreate(&c->blas));
    ORC_CUBLAS_CHECK(cublasSetStream(c->blas, c->stream));
    ORC_CUBLAS_CHECK(cublasSetMathMode(c->blas, CUBLAS_DEFAULT_MATH));
    /* An explicit workspace: cuBLAS then allocates nothing while a graph is recorded. */
    c->blas_ws_bytes = 32u << 20;
    if (cudaMalloc(&c->d_blas_ws, c->blas_ws_bytes) != cudaSuccess) {
        (void)cudaGetLastError();
        c->d_blas_ws = NULL;
        st = orc_fail(err, ORC_E_NOMEM, "CUDA out of memory allocating the cuBLAS workspace (%llu bytes) on device %d",
                      (unsigned long long)c->blas_ws_bytes, device);
        c->blas_ws_bytes = 0;
        goto cleanup;
    }
    c->allocated += c->blas_ws_bytes;
    ORC_CUBLAS_CHECK(cublasSetWorkspace(c->blas, c->d_blas_ws, c->blas_ws_bytes));
    ORC_CUDA_CHECK(cudaMalloc((void **)&c->d_pos, sizeof(int64_t)));
    ORC_CUDA_CHECK(cudaMallocHost((void **)&c->h_pos, sizeof(int64_t)));
    *out = &c->base;
    return ORC_OK;
cleanup:
    cu_destroy(&c->base);
    return st;
}
