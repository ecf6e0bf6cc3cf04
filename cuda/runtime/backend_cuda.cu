/* backend_cuda.cu - the CUDA backend behind backend.h: device memory, one stream and one
 * cuBLAS handle per model (no globals), weights dequantized on the GPU at load
 * (gpu_dequant.h) or kept as their GGUF blocks, cuBLAS for the matrix products with
 * float32 accumulation, and the kernels of kernels/kernels.cuh for the rest.
 *
 * Per step the only host<->device traffic is the step inputs in and the requested
 * logits/activations out. Scratch a primitive needs lives in the session's exec, sized
 * when the session is created, so a recorded CUDA graph always finds the memory it was
 * recorded with. Every CUDA and cuBLAS status is checked; errors name the call and
 * location (cuda_check.cuh) and out-of-memory names what was allocated. */
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <stdio.h>
#include <stdlib.h>

#include <atomic>
#include <string.h>

#include "backend/backend.h"
#include "backend/gpu.h"
#include "gguf/ggml_types.h"
#include "gemv/gemv.cuh"
#include "kernels/attention_flash.cuh"
#include "kernels/kernels.cuh"
#include "model/arch.h" /* ORC_ACT_* */
#include "quant/gpu_dequant.h"
#include "quant/quant.h"
#include "runtime/cuda_check.cuh"
#include "runtime/env.cuh"

typedef struct cuda_backend {
    orc_backend base;
    int device;
    bool fast; /* weights="quantized": fused GEMV on the stored blocks, flash attention in prefill */
    cudaStream_t stream;
    cublasHandle_t blas;
    uint64_t allocated;
    int n_sm;
    void *d_staging; /* stored weight bytes on their way to dequantization (load only) */
    uint64_t staging_bytes;
    /* Quantized weights without a fused kernel: dequantized to float16 here before the
     * product. Sized at load for the largest such weight, never regrown after. */
    void *d_wdeq;
    uint64_t wdeq_bytes;
    void *d_blas_ws; /* cuBLAS workspace, set explicitly: no allocation while recording */
    uint64_t blas_ws_bytes;
} cuda_backend;

/* Sibling launches of one stack (cu_matvec_stack): at most two beside the first, each with
 * this much split-K scratch (a v matrix needs ~100 KB). */
enum { kSiblings = ORC_GEMV_MAX_MORE };
static const size_t kSiblingScratch = 4u << 20;

typedef struct cuda_exec {
    orc_exec base;
    bool recording;
    void *d_half;     /* matmul inputs rounded to the weight dtype: max_tokens * max_cols halves */
    uint64_t half_bytes;
    float *d_part;    /* attention split partials for split mode */
    uint64_t part_bytes;
    int32_t max_splits;
    /* grouped expert products (prefill): inputs in expert order, outputs, the order itself */
    void *d_moe_x;
    float *d_moe_y;
    int32_t *d_moe_order;
    uint64_t moe_x_bytes, moe_y_bytes, moe_order_bytes;
    int32_t *h_moe; /* host: ids, order, tiles, group starts */
    int64_t moe_slots;
    void *d_gemv;     /* split-K partial sums of the fused GEMV (a launch needing more falls back) */
    uint64_t gemv_bytes;
    void *d_gemv_sib; /* the same for sibling launches (ORC_GEMV_PDL_SIBLING): kSiblings regions */
    uint64_t gemv_sib_bytes;
    int32_t *d_ids1;  /* MoE slots as single-expert rows: ids of [n*k][1] */
    void *d_argmax;   /* the argmax launch's counts and partials (max_tokens rows) */
    uint64_t argmax_bytes;
    int64_t max_tokens;
} cuda_exec;

static cuda_backend *cb(orc_backend *b) { return (cuda_backend *)b; }
static cuda_backend *cb_of(orc_exec *e) { return (cuda_backend *)e->be; }

static orc_status dev_malloc(cuda_backend *c, void **p, uint64_t bytes, const char *what, orc_err *err) {
    cudaError_t e = cudaMalloc(p, bytes ? bytes : 16);
    if (e == cudaSuccess) {
        c->allocated += bytes;
        return ORC_OK;
    }
    (void)cudaGetLastError();
    *p = NULL;
    if (e == cudaErrorMemoryAllocation) {
        size_t free_b = 0, total_b = 0;
        cudaMemGetInfo(&free_b, &total_b);
        (void)cudaGetLastError();
        return orc_fail(err, ORC_E_NOMEM, "CUDA out of memory allocating %s (%llu bytes) on device %d: %llu of %llu bytes free",
                        what, (unsigned long long)bytes, c->device, (unsigned long long)free_b,
                        (unsigned long long)total_b);
    }
    return orc_cuda_fail(err, e, "cudaMalloc", __FILE__, __LINE__);
}

/* dev_malloc, zero-filled on the backend's stream (before any launch queued after it): the
 * scratch whose split counts must start at zero (each launch leaves them so). */
static orc_status dev_calloc(cuda_backend *c, void **p, uint64_t bytes, const char *what, orc_err *err) {
    orc_status st = dev_malloc(c, p, bytes, what, err);
    if (st != ORC_OK) return st;
    const cudaError_t e = cudaMemsetAsync(*p, 0, bytes, c->stream);
    if (e != cudaSuccess) return orc_cuda_fail(err, e, "cudaMemsetAsync (zeroing session scratch)", __FILE__, __LINE__);
    return ORC_OK;
}

/* Grow a load-time buffer (never called while a session exists that recorded graphs). */
static orc_status grow(cuda_backend *c, void **buf, uint64_t *have, uint64_t bytes, const char *what, orc_err *err) {
    orc_status st = ORC_OK;
    if (bytes <= *have) return ORC_OK;
    if (*buf) {
        ORC_CUDA_CHECK(cudaStreamSynchronize(c->stream));
        ORC_CUDA_CHECK(cudaFree(*buf));
        c->allocated -= *have;
        *buf = NULL;
        *have = 0;
    }
    if ((st = dev_malloc(c, buf, bytes, what, err)) != ORC_OK) return st;
    *have = bytes;
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
    if ((st = dev_malloc(c, &p, bytes, what, err)) != ORC_OK) return st;
    t->data = p;
    t->dtype = dtype;
    t->qtype = -1;
    t->rows = rows;
    t->cols = cols;
    t->row_bytes = (uint64_t)cols * (uint64_t)orc_dtype_size(dtype);
    t->nbytes = bytes;
    return ORC_OK;
}

static void cu_free(orc_backend *b, orc_tensor *t) {
    cuda_backend *c = cb(b);
    if (!t) return;
    if (t->data && t->nbytes) {
        cudaSetDevice(c->device);
        cudaFree(t->data);
        c->allocated -= t->nbytes;
    }
    memset(t, 0, sizeof *t);
}

static uint64_t cu_allocated(const orc_backend *b) { return ((const cuda_backend *)b)->allocated; }

static orc_status cu_upload_weight(orc_backend *b, orc_tensor *dst, int32_t type, const void *src, uint64_t src_bytes,
                                   bool raw_as_f16, orc_err *err) {
    cuda_backend *c = cb(b);
    orc_status st = set_device(c, err);
    if (st != ORC_OK) return st;
    st = grow(c, &c->d_staging, &c->staging_bytes, src_bytes, "the weight staging buffer", err);
    if (st != ORC_OK) return st;
    /* From the memory-mapped file: a pageable copy, which the driver stages itself. */
    ORC_CUDA_CHECK(cudaMemcpyAsync(c->d_staging, src, src_bytes, cudaMemcpyHostToDevice, c->stream));
    if (raw_as_f16) {
        ORC_CUDA_CHECK(orc_launch_raw_as_f16((const uint16_t *)c->d_staging, src_bytes / 2, dst->data, dst->dtype,
                                             dst->rows * dst->cols, c->stream));
    } else {
        st = orc_cuda_dequantize(type, c->d_staging, src_bytes, dst->rows * dst->cols, dst->dtype, dst->data, c->stream,
                                 err);
        if (st != ORC_OK) goto cleanup;
    }
    /* The staging buffer is reused by the next upload: finish this one first. */
    ORC_CUDA_CHECK(cudaStreamSynchronize(c->stream));
cleanup:
    return st;
}

static orc_status cu_upload_blocks(orc_backend *b, orc_tensor *dst, int32_t type, int64_t rows, int64_t cols,
                                   const void *src, uint64_t src_bytes, const char *what, orc_err *err) {
    cuda_backend *c = cb(b);
    orc_status st = orc_tensor_stored_shape(dst, type, rows, cols, src_bytes, what, err);
    void *p = NULL;
    if (st != ORC_OK) return st;
    if ((st = set_device(c, err)) != ORC_OK) return st;
    if (dst->qtype >= 0) {
        /* Products of this weight may need it as float16 (no fused kernel for the shape). */
        st = grow(c, &c->d_wdeq, &c->wdeq_bytes, (uint64_t)rows * (uint64_t)cols * 2u,
                  "the dequantization buffer of quantized weights", err);
        if (st != ORC_OK) return st;
    }
    if ((st = dev_malloc(c, &p, src_bytes, what, err)) != ORC_OK) return st;
    dst->data = p;
    dst->nbytes = src_bytes;
    ORC_CUDA_CHECK(cudaMemcpyAsync(p, src, src_bytes, cudaMemcpyHostToDevice, c->stream));
    ORC_CUDA_CHECK(cudaStreamSynchronize(c->stream));
cleanup:
    if (st != ORC_OK) cu_free(b, dst);
    return st;
}

static orc_status cu_download(orc_backend *b, const orc_tensor *src, int64_t row0, int64_t n, float *dst, orc_err *err) {
    cuda_backend *c = cb(b);
    orc_status st = set_device(c, err);
    float *d_f32 = NULL;
    if (st != ORC_OK) return st;
    if (row0 < 0 || n < 0 || row0 + n > src->rows)
        return orc_fail(err, ORC_E_INTERNAL, "download: rows %lld..%lld of %lld", (long long)row0, (long long)(row0 + n),
                        (long long)src->rows);
    {
        const int64_t len = n * src->cols;
        const orc_tensor v = orc_tensor_rows(src, row0, n);
        if (src->qtype < 0 && src->dtype == ORC_DTYPE_F32) {
            ORC_CUDA_CHECK(cudaMemcpyAsync(dst, v.data, (size_t)len * sizeof(float), cudaMemcpyDeviceToHost, c->stream));
        } else {
            /* Off the hot path (hooks of other dtypes, Model.tensor): a buffer of its own. */
            if ((st = dev_malloc(c, (void **)&d_f32, (uint64_t)len * sizeof(float), "a download buffer", err)) != ORC_OK)
                return st;
            if (src->qtype >= 0) {
                st = orc_cuda_dequantize(src->qtype, v.data, (uint64_t)n * src->row_bytes, len, ORC_DTYPE_F32, d_f32,
                                         c->stream, err);
                if (st != ORC_OK) goto cleanup;
            } else {
                ORC_CUDA_CHECK(orc_launch_convert_to_f32(v.data, src->dtype, d_f32, len, c->stream));
            }
            ORC_CUDA_CHECK(cudaMemcpyAsync(dst, d_f32, (size_t)len * sizeof(float), cudaMemcpyDeviceToHost, c->stream));
        }
        ORC_CUDA_CHECK(cudaStreamSynchronize(c->stream));
    }
cleanup:
    if (d_f32) {
        cudaFree(d_f32);
        c->allocated -= (uint64_t)(n * src->cols) * sizeof(float);
    }
    return st;
}

static orc_status cu_upload(orc_backend *b, orc_tensor *dst, int64_t row0, int64_t n, const void *src, orc_err *err) {
    cuda_backend *c = cb(b);
    orc_status st = ORC_OK;
    if (row0 < 0 || n < 0 || row0 + n > dst->rows || dst->qtype >= 0)
        return orc_fail(err, ORC_E_INTERNAL, "upload: rows %lld..%lld of %lld", (long long)row0, (long long)(row0 + n),
                        (long long)dst->rows);
    /* From pageable host memory: the call returns once the bytes are staged, so the caller
     * may reuse its buffer; the copy is ordered with the stream's kernels. */
    ORC_CUDA_CHECK(cudaMemcpyAsync((char *)dst->data + (uint64_t)row0 * dst->row_bytes, src,
                                   (size_t)((uint64_t)n * dst->row_bytes), cudaMemcpyHostToDevice, c->stream));
cleanup:
    return st;
}

static orc_status cu_copy_rows(orc_backend *b, const orc_tensor *src, int64_t s0, orc_tensor *dst, int64_t d0, int64_t n,
                               orc_err *err) {
    orc_status st = ORC_OK;
    const orc_tensor s = orc_tensor_rows(src, s0, n), d = orc_tensor_rows(dst, d0, n);
    ORC_CUDA_CHECK(cudaMemcpyAsync(d.data, s.data, (size_t)n * src->row_bytes, cudaMemcpyDeviceToDevice, cb(b)->stream));
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

/* --------------------------------------------------------------------------- exec */

static void cu_exec_destroy(orc_exec *e) {
    if (!e) return;
    cuda_exec *x = (cuda_exec *)e;
    cuda_backend *c = cb_of(e);
    cudaSetDevice(c->device);
    if (x->d_half) {
        cudaFree(x->d_half);
        c->allocated -= x->half_bytes;
    }
    if (x->d_part) {
        cudaFree(x->d_part);
        c->allocated -= x->part_bytes;
    }
    void *more[] = {x->d_moe_x, x->d_moe_y, x->d_moe_order, x->d_gemv, x->d_argmax, x->d_gemv_sib};
    for (int i = 0; i < 6; i++) cudaFree(more[i]);
    c->allocated -= x->moe_x_bytes + x->moe_y_bytes + x->moe_order_bytes + x->gemv_bytes + x->argmax_bytes +
                    x->gemv_sib_bytes;
    free(x->h_moe);
    (void)cudaGetLastError();
    free(x);
}

static orc_status cu_exec_create(orc_backend *b, const orc_exec_shape *sh, orc_exec **out, orc_err *err) {
    cuda_backend *c = cb(b);
    *out = NULL;
    cuda_exec *x = (cuda_exec *)calloc(1, sizeof *x);
    if (!x) return orc_fail(err, ORC_E_NOMEM, "allocating session scratch");
    x->base.be = b;
    orc_status st = set_device(c, err);
    if (st == ORC_OK) {
        x->half_bytes = (uint64_t)sh->max_tokens * (uint64_t)sh->max_cols * 2u;
        st = dev_malloc(c, &x->d_half, x->half_bytes, "session scratch (matmul inputs)", err);
    }
    if (st == ORC_OK) {
        /* Split mode covers fewer than n_sm (query, head) rows, each with up to max_keys keys. */
        x->max_splits = orc_attention_splits(1, 1, sh->max_keys, 1 << 30) > 0
                            ? orc_attention_splits(1, 1, sh->max_keys, 1 << 30) : 1;
        const int64_t rows = c->n_sm; /* n * n_head < n_sm */
        x->part_bytes = (uint64_t)orc_attention_partials_floats(1, (int32_t)rows, sh->head_dim_v, x->max_splits) *
                        sizeof(float);
        st = dev_calloc(c, (void **)&x->d_part, x->part_bytes, "session scratch (attention splits)", err);
    }
    if (st == ORC_OK) {
        x->max_tokens = sh->max_tokens;
        x->argmax_bytes = orc_argmax_scratch_bytes(sh->max_tokens);
        st = dev_calloc(c, &x->d_argmax, x->argmax_bytes, "session scratch (argmax)", err);
    }
    if (st == ORC_OK && c->fast) {
        x->gemv_bytes = 32u << 20;
        st = dev_calloc(c, &x->d_gemv, x->gemv_bytes, "session scratch (fused products)", err);
    }
    if (st == ORC_OK && c->fast) {
        x->gemv_sib_bytes = (uint64_t)kSiblings * kSiblingScratch;
        st = dev_calloc(c, &x->d_gemv_sib, x->gemv_sib_bytes, "session scratch (sibling products)", err);
    }
    if (st == ORC_OK && sh->moe_slots > 0) {
        x->moe_slots = sh->moe_slots;
        x->moe_x_bytes = (uint64_t)sh->moe_slots * (uint64_t)sh->moe_width * 4u; /* up to float32 inputs */
        x->moe_y_bytes = (uint64_t)sh->moe_slots * (uint64_t)sh->moe_width * 4u;
        x->moe_order_bytes = (uint64_t)sh->moe_slots * 4u * 4u; /* the order, then up to one tile a slot */
        x->h_moe = (int32_t *)malloc((size_t)(5 * sh->moe_slots + 8192) * sizeof(int32_t));
        if (!x->h_moe) st = orc_fail(err, ORC_E_NOMEM, "session scratch (expert grouping)");
        if (st == ORC_OK) st = dev_malloc(c, &x->d_moe_x, x->moe_x_bytes, "session scratch (grouped expert inputs)", err);
        if (st == ORC_OK)
            st = dev_malloc(c, (void **)&x->d_moe_y, x->moe_y_bytes, "session scratch (grouped expert outputs)", err);
        if (st == ORC_OK)
            st = dev_malloc(c, (void **)&x->d_moe_order, x->moe_order_bytes, "session scratch (expert order)", err);
    }
    if (st != ORC_OK) {
        cu_exec_destroy(&x->base);
        return st;
    }
    *out = &x->base;
    return ORC_OK;
}

/* --------------------------------------------------------------------------- ops */

static orc_status cu_get_rows(orc_exec *e, const orc_tensor *table, const orc_tensor *ids, int64_t n, float scale,
                              orc_tensor *out, orc_err *err) {
    cuda_backend *c = cb_of(e);
    orc_status st = ORC_OK;
    if (table->qtype >= 0) {
        ORC_CUDA_CHECK(orc_launch_get_rows_q(table->qtype, table->data, table->row_bytes, table->cols,
                                             (const int32_t *)ids->data, n, scale, (float *)out->data, c->stream));
    } else {
        ORC_CUDA_CHECK(orc_launch_get_rows(table->data, table->dtype, table->cols, (const int32_t *)ids->data, n, scale,
                                           (float *)out->data, c->stream));
    }
cleanup:
    return st;
}

static orc_status cu_rms_norm(orc_exec *e, const orc_tensor *x, const orc_tensor *w, int64_t n, int64_t width,
                              float eps, orc_tensor *out, orc_err *err) {
    orc_status st = ORC_OK;
    ORC_CUDA_CHECK(orc_launch_rms_norm((const float *)x->data, (const float *)w->data, (float *)out->data,
                                       n * (x->cols / width), width, eps, cb_of(e)->stream));
cleanup:
    return st;
}

static cudaDataType_t blas_type(orc_dtype d) {
    return d == ORC_DTYPE_F16 ? CUDA_R_16F : d == ORC_DTYPE_BF16 ? CUDA_R_16BF : CUDA_R_32F;
}

/* ---- the fused GEMV of the fast path (gemv/gemv.cuh) */

/* The ggml type a weight's bytes are in: its blocks' type, or its dense dtype's. */
static int32_t stored_type(const orc_tensor *w) {
    if (w->qtype >= 0) return w->qtype;
    return w->dtype == ORC_DTYPE_F16 ? ORC_TYPE_F16 : w->dtype == ORC_DTYPE_BF16 ? ORC_TYPE_BF16 : ORC_TYPE_F32;
}

static orc_gemv_args gemv_args(cuda_exec *x, const orc_tensor *in, const orc_tensor *w, int64_t rows, int64_t n,
                               orc_tensor *out) {
    orc_gemv_args a;
    memset(&a, 0, sizeof a);
    a.type = stored_type(w);
    a.w = w->data;
    a.rows = rows;
    a.cols = w->cols;
    a.row_bytes = (int64_t)w->row_bytes;
    a.n = (int32_t)n;
    a.x = (const float *)in->data;
    a.x_stride = in->cols;
    a.y = (float *)out->data;
    a.y_stride = out->cols;
    a.scratch = x->d_gemv;
    a.scratch_bytes = x->gemv_bytes;
    /* The one-token integer form where the type has it: 8-21% shorter decode steps than the
     * float form, ~5e-10 NMSE from it (device run 16, docs/perf.md); ORC_GEMV_X16=0 turns it off. */
    a.x_int16 = 1;
    return a;
}

/* ORC_DEBUG_FAST=1: say on stderr why the fast path refused a launch (its first 64 refusals). */
static void gemv_refused(const orc_gemv_args *a, const char *why) {
    static std::atomic<int> told{0};
    static const bool on = [] {
        const char *env = getenv("ORC_DEBUG_FAST");
        return env && *env && *env != '0';
    }(); /* read once (a thread-safe static initialisation) */
    if (!on || told.fetch_add(1) >= 64) return;
    fprintf(stderr, "orc fast path: no GEMV for type %d, %lld x %lld, n = %d, k = %d: %s\n", (int)a->type,
            (long long)a->rows, (long long)a->cols, (int)a->n, (int)a->k, why);
}

/* Does the fast path have a kernel for this launch? (ORC_OK, or ORC_E_UNSUPPORTED.) */
static orc_status gemv_ready(cuda_exec *x, const orc_gemv_args *a) {
    char why[160] = "";
    if (!cb_of(&x->base)->fast) return ORC_E_UNSUPPORTED;
    if (a->n < 1 || a->n > ORC_GEMV_MAX_N || !orc_gemv_supported(a->type)) {
        gemv_refused(a, "token count or type");
        return ORC_E_UNSUPPORTED;
    }
    if (orc_gemv_check(a, why, sizeof why) != cudaSuccess) {
        gemv_refused(a, why);
        return ORC_E_UNSUPPORTED;
    }
    if (orc_gemv_scratch_bytes(a) > a->scratch_bytes) {
        gemv_refused(a, "split-K scratch too small");
        return ORC_E_UNSUPPORTED;
    }
    return ORC_OK;
}

/* Launch if the fast path has a kernel for this launch (ORC_E_UNSUPPORTED otherwise, err untouched). */
static orc_status gemv_launch(cuda_exec *x, orc_gemv_args *a, orc_err *err) {
    orc_status st = gemv_ready(x, a);
    if (st != ORC_OK) return st;
    ORC_CUDA_CHECK(orc_launch_gemv(a, cb_of(&x->base)->stream));
cleanup:
    return st;
}

/* out[t] = W . x'[t] (+ bias) (+ res[t]): cu_matvec's launch, and the router's before its epilogue. */
static orc_gemv_args matvec_args(cuda_exec *xe, const orc_tensor *x, const orc_tensor *norm_w, float eps,
                                 const orc_tensor *w, const orc_tensor *bias, const orc_tensor *res, int64_t n,
                                 orc_tensor *out) {
    orc_gemv_args a = gemv_args(xe, x, w, w->rows, n, out);
    a.norm_w = norm_w ? (const float *)norm_w->data : NULL;
    a.norm_eps = eps;
    a.bias = bias ? (const float *)bias->data : NULL;
    a.res = res ? (const float *)res->data : NULL;
    a.res_stride = res ? res->cols : 0;
    return a;
}

static orc_status cu_matvec(orc_exec *e, const orc_tensor *x, const orc_tensor *norm_w, float eps, const orc_tensor *w,
                            const orc_tensor *bias, const orc_tensor *res, int64_t n, orc_tensor *out, orc_err *err) {
    orc_gemv_args a = matvec_args((cuda_exec *)e, x, norm_w, eps, w, bias, res, n, out);
    return gemv_launch((cuda_exec *)e, &a, err);
}

static orc_status cu_matvec_glu(orc_exec *e, const orc_tensor *x, const orc_tensor *norm_w, float eps,
                                const orc_tensor *wg, const orc_tensor *wu, int act, int64_t n, orc_tensor *out,
                                orc_err *err) {
    cuda_exec *xe = (cuda_exec *)e;
    if (stored_type(wg) != stored_type(wu) || wg->rows != wu->rows || wg->row_bytes != wu->row_bytes)
        return ORC_E_UNSUPPORTED;
    orc_gemv_args a = gemv_args(xe, x, wg, wg->rows, n, out);
    a.w_up = wu->data;
    a.norm_w = norm_w ? (const float *)norm_w->data : NULL;
    a.norm_eps = eps;
    a.act = act;
    return gemv_launch(xe, &a, err);
}

/* Whether the experts' gate/up launch takes the router's top-k by default; ORC_MOE_ROUTE_IN_GLU=1 / 0
 * (read once) turns it on / off. Off, it refuses it and the program launches moe_route first; the
 * same bits either way. Off by default: device run 38 (H100) measured Qwen3-30B-A3B's decode step
 * slower with it (3.542 -> 3.614 ms after an 8-token prompt; 3.390 -> 3.480 beside the fused rope):
 * every gate/up block ranks 128 logits (8 rounds of warp reductions) on its critical path, which
 * costs more than the top-k launch's link in the chain. */
#define MOE_ROUTE_IN_GLU_DEFAULT 0
static bool route_in_glu() {
    static std::atomic<int> on{INT_MIN};
    return orc_env_switch(on, "ORC_MOE_ROUTE_IN_GLU", MOE_ROUTE_IN_GLU_DEFAULT);
}

static orc_status cu_matvec_glu_id(orc_exec *e, const orc_tensor *x, const orc_tensor *norm_w, float eps,
                                   const orc_tensor *wg, const orc_tensor *wu, const orc_tensor *bg,
                                   const orc_tensor *bu, orc_tensor *ids, const orc_moe_route_in *route, int64_t n,
                                   int32_t k, int act, orc_tensor *out, orc_err *err) {
    cuda_exec *xe = (cuda_exec *)e;
    const int64_t rows = out->cols;
    if (stored_type(wg) != stored_type(wu) || wg->rows != wu->rows || k > ORC_GEMV_MAX_K || rows <= 0 ||
        wg->rows % rows)
        return ORC_E_UNSUPPORTED;
    /* the top-k in the launch: ids and weights [n][k], logits [n][n_expert] (the plan checks the rest) */
    if (route && (!route_in_glu() || ids->cols != k || route->w->cols != k || route->logits->cols != wg->rows / rows))
        return ORC_E_UNSUPPORTED;
    orc_gemv_args a = gemv_args(xe, x, wg, rows, n, out);
    a.w_up = wu->data;
    a.act = act;
    a.norm_w = norm_w ? (const float *)norm_w->data : NULL;
    a.norm_eps = eps;
    a.ids = (const int32_t *)ids->data;
    a.k = k;
    a.ids_stride = ids->cols;
    a.n_expert = (int32_t)(wg->rows / rows);
    a.expert_stride = (int64_t)(rows * wg->row_bytes);
    a.bias = bg ? (const float *)bg->data : NULL;
    a.bias_up = bu ? (const float *)bu->data : NULL;
    a.bias_expert_stride = rows;
    if (route) {
        a.route_logits = (const float *)route->logits->data;
        a.route_kind = route->kind;
        a.route_norm = route->norm ? 1 : 0;
        a.route_w = (float *)route->w->data;
    }
    return gemv_launch(xe, &a, err);
}

/* Slots as tokens of one expert each: x [n*k][cols], ids viewed as [n*k][1]. False (a unset)
 * where out's rows do not divide the experts tensor. */
static bool slots_args(cuda_exec *xe, const orc_tensor *x, const orc_tensor *w, const orc_tensor *b,
                       const orc_tensor *ids, int64_t n, int32_t k, orc_tensor *out, orc_gemv_args *a) {
    const int64_t rows = out->cols;
    if (rows <= 0 || w->rows % rows) return false;
    *a = gemv_args(xe, x, w, rows, n * k, out);
    a->ids = (const int32_t *)ids->data;
    a->k = 1;
    a->ids_stride = 1;
    a->n_expert = (int32_t)(w->rows / rows);
    a->expert_stride = (int64_t)(rows * w->row_bytes);
    a->bias = b ? (const float *)b->data : NULL;
    a->bias_expert_stride = rows;
    return true;
}

static orc_status cu_matvec_slots(orc_exec *e, const orc_tensor *x, const orc_tensor *w, const orc_tensor *b,
                                  const orc_tensor *ids, int64_t n, int32_t k, orc_tensor *out, orc_err *err) {
    orc_gemv_args a;
    if (!slots_args((cuda_exec *)e, x, w, b, ids, n, k, out, &a)) return ORC_E_UNSUPPORTED;
    return gemv_launch((cuda_exec *)e, &a, err);
}

/* ORC_GEMV_SIBLINGS=0 (read once): a stack's launches one after the other, as other products. */
static bool siblings_on(void) {
    static std::atomic<int> v{INT_MIN};
    return orc_env_switch(v, "ORC_GEMV_SIBLINGS", true);
}

/* q, k, v (count <= 3) as stacked products: consecutive matrices of one stored type and row
 * layout share a launch (all three for most files; a Q4_K_M file's Q6_K v gets its own). Every
 * launch is checked before the first is queued, so a refusal leaves nothing half done. The
 * launches after the first read the same x and write other outputs: they run beside it
 * (ORC_GEMV_PDL_FIRST / _SIBLING, gemv.cuh), each with a split-K scratch of its own, unless
 * that scratch is too small for it. Which launch runs when never changes a result. */
static orc_status cu_matvec_stack(orc_exec *e, const orc_tensor *x, const orc_tensor *norm_w, float eps,
                                  const orc_tensor *const *w, const orc_tensor *const *bias, int32_t count, int64_t n,
                                  orc_tensor *const *out, orc_err *err) {
    cuda_exec *xe = (cuda_exec *)e;
    orc_gemv_args a[3];
    int na = 0;
    if (count < 1 || count > 3) return ORC_E_UNSUPPORTED;
    for (int32_t i = 0; i < count; i++) {
        orc_gemv_args *g = na ? &a[na - 1] : NULL;
        const bool joins = g && g->n_more < ORC_GEMV_MAX_MORE && stored_type(w[i]) == g->type &&
                           w[i]->cols == g->cols && (int64_t)w[i]->row_bytes == g->row_bytes;
        if (joins) {
            const int j = g->n_more++;
            g->more_w[j] = w[i]->data;
            g->more_rows[j] = w[i]->rows;
            g->more_y[j] = (float *)out[i]->data;
            g->more_y_stride[j] = out[i]->cols;
            g->more_bias[j] = bias[i] ? (const float *)bias[i]->data : NULL;
            continue;
        }
        g = &a[na++];
        *g = gemv_args(xe, x, w[i], w[i]->rows, n, out[i]);
        g->norm_w = norm_w ? (const float *)norm_w->data : NULL;
        g->norm_eps = eps;
        g->bias = bias[i] ? (const float *)bias[i]->data : NULL;
    }
    for (int i = 0; i < na; i++) {
        const orc_status st = gemv_ready(xe, &a[i]);
        if (st != ORC_OK) return st;
    }
    if (na > 1 && xe->d_gemv_sib && siblings_on()) {
        a[0].pdl_role = ORC_GEMV_PDL_FIRST;
        for (int i = 1; i < na; i++) {
            orc_gemv_args sib = a[i];
            sib.pdl_role = ORC_GEMV_PDL_SIBLING;
            sib.scratch = (uint8_t *)xe->d_gemv_sib + (size_t)(i - 1) * kSiblingScratch;
            sib.scratch_bytes = kSiblingScratch;
            if (orc_gemv_scratch_bytes(&sib) <= sib.scratch_bytes) a[i] = sib;
        }
    }
    for (int i = 0; i < na; i++) {
        const orc_status st = gemv_launch(xe, &a[i], err);
        if (st != ORC_OK) return st;
    }
    return ORC_OK;
}

static orc_status cu_matmul(orc_exec *e, const orc_tensor *x, const orc_tensor *w, int64_t n, orc_tensor *out,
                            orc_err *err) {
    cuda_exec *xe = (cuda_exec *)e;
    cuda_backend *c = cb_of(e);
    orc_status st = ORC_OK;
    const int64_t k = w->cols, m = w->rows;
    const float one = 1.0f, zero = 0.0f;
    const void *xin = x->data, *wdata = w->data;
    if (x->cols != k || out->cols != m)
        return orc_fail(err, ORC_E_INTERNAL, "matmul: x has %lld cols, w is %lld x %lld", (long long)x->cols,
                        (long long)m, (long long)k);
    if (c->fast && n <= ORC_GEMV_MAX_N) { /* a few tokens: the fused GEMV on the stored form */
        orc_gemv_args a = gemv_args(xe, x, w, m, n, out);
        if ((st = gemv_launch(xe, &a, err)) != ORC_E_UNSUPPORTED) return st;
        st = ORC_OK;
    }
    if (w->qtype >= 0) {
        /* Blocks without a fused kernel: dequantize into the model's buffer (sized at load). */
        if ((uint64_t)(m * k) * 2u > c->wdeq_bytes)
            return orc_fail(err, ORC_E_INTERNAL, "matmul: dequantization buffer too small");
        st = orc_cuda_dequantize(w->qtype, w->data, (uint64_t)m * w->row_bytes, m * k, ORC_DTYPE_F16, c->d_wdeq,
                                 c->stream, err);
        if (st != ORC_OK) return st;
        wdata = c->d_wdeq;
    }
    if (w->dtype != ORC_DTYPE_F32) {
        /* cuBLAS multiplies equal input types: round the activations to the weight dtype. */
        if ((uint64_t)(n * k) * 2u > xe->half_bytes)
            return orc_fail(err, ORC_E_INTERNAL, "matmul: %lld x %lld inputs past the session's scratch", (long long)n,
                            (long long)k);
        ORC_CUDA_CHECK(orc_launch_convert_from_f32((const float *)x->data, xe->d_half, w->dtype, n * k, c->stream));
        xin = xe->d_half;
    }
    /* float32 weights: true float32 products (pedantic: no TF32, no reduced-precision emulation);
     * float16/bfloat16: tensor cores with float32 accumulation. */
    ORC_CUBLAS_CHECK(cublasSetMathMode(c->blas, w->dtype == ORC_DTYPE_F32 ? CUBLAS_PEDANTIC_MATH : CUBLAS_DEFAULT_MATH));
    /* Row-major out[n][m] = x[n][k] . w[m][k]^T is column-major out^T (m x n) = w^T(op T of k x m) . x^T (k x n). */
    ORC_CUBLAS_CHECK(cublasGemmEx(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)m, (int)n, (int)k, &one, wdata,
                                  blas_type(w->dtype), (int)k, xin, blas_type(w->dtype), (int)k, &zero, out->data,
                                  CUDA_R_32F, (int)m, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
cleanup:
    return st;
}

static orc_status cu_add_bias(orc_exec *e, orc_tensor *x, const orc_tensor *bias, int64_t n, orc_err *err) {
    orc_status st = ORC_OK;
    ORC_CUDA_CHECK(orc_launch_add_bias((float *)x->data, (const float *)bias->data, n, x->cols, cb_of(e)->stream));
cleanup:
    return st;
}

static orc_status cu_add(orc_exec *e, const orc_tensor *a, const orc_tensor *c2, int64_t n, orc_tensor *out,
                         orc_err *err) {
    orc_status st = ORC_OK;
    ORC_CUDA_CHECK(orc_launch_add((const float *)a->data, (const float *)c2->data, (float *)out->data, n * a->cols,
                                  cb_of(e)->stream));
cleanup:
    return st;
}

/* The rotation's cos/sin factor: YaRN's attention factor, else 1. */
static float rope_mscale(const orc_rope_params *rp) { return rp->yarn_attn_factor > 0 ? rp->yarn_attn_factor : 1.0f; }

static orc_status cu_rope(orc_exec *e, orc_tensor *x, const orc_batch *bt, int32_t n_heads, int32_t head_dim,
                          const orc_rope_params *rp, const orc_tensor *inv_freq, orc_err *err) {
    orc_status st = ORC_OK;
    const float ms = rope_mscale(rp);
    ORC_CUDA_CHECK(orc_launch_rope((float *)x->data, bt->n, n_heads, head_dim, rp->n_rot, rp->neox,
                                   (const int32_t *)bt->pos.data, rp->freq_scale, ms, (const float *)inv_freq->data,
                                   x->cols, cb_of(e)->stream));
cleanup:
    return st;
}

static orc_status cu_kv_store(orc_exec *e, orc_tensor *kc, orc_tensor *vc, const orc_tensor *k, const orc_tensor *v,
                              const orc_batch *bt, orc_err *err) {
    orc_status st = ORC_OK;
    ORC_CUDA_CHECK(orc_launch_kv_store((const float *)k->data, (const float *)v->data, kc->data, vc->data, kc->dtype,
                                       k->cols, v->cols, bt->n, (const int32_t *)bt->kv_row.data, cb_of(e)->stream));
cleanup:
    return st;
}

/* The decode attention's key splits for this batch (attention.cu's one rule: the key bound only
 * adds empty splits); false where the session's split scratch is too small for them. */
static bool decode_splits(const cuda_exec *x, const cuda_backend *c, const orc_batch *bt, const orc_attn_params *ap,
                          int32_t *splits) {
    *splits = orc_attention_splits(bt->n, ap->n_head, bt->n_keys_max, c->n_sm);
    return *splits <= x->max_splits &&
           orc_attention_partials_floats(bt->n, ap->n_head, ap->head_dim_v, *splits) * (int64_t)sizeof(float) <=
               (int64_t)x->part_bytes;
}

/* The decode attention kernel (attention.cu) on the session's split scratch; rope: its fused rope
 * + KV store, or NULL. */
static cudaError_t launch_decode_attention(const cuda_exec *x, const cuda_backend *c, const orc_tensor *q,
                                           const orc_tensor *kc, const orc_tensor *vc, const orc_batch *bt,
                                           const orc_attn_params *ap, orc_tensor *out, int32_t splits,
                                           const orc_attn_rope *rope) {
    return orc_launch_attention((const float *)q->data, q->cols, kc->data, vc->data, kc->dtype, kc->cols, vc->cols,
                                (float *)out->data, out->cols, x->d_part, splits, bt->n, (const int32_t *)bt->pos.data,
                                (const int32_t *)bt->kv_base.data, (const int32_t *)bt->kv_row.data, ap->n_head,
                                ap->n_head_kv, ap->head_dim,
                                ap->head_dim_v, ap->scale, ap->softcap, ap->window,
                                ap->sinks ? (const float *)ap->sinks->data : NULL, rope, c->stream);
}

static orc_status cu_attention(orc_exec *e, const orc_tensor *q, const orc_tensor *kc, const orc_tensor *vc,
                               const orc_batch *bt, const orc_attn_params *ap, orc_tensor *out, orc_tensor *probs,
                               orc_err *err) {
    cuda_exec *x = (cuda_exec *)e;
    cuda_backend *c = cb_of(e);
    orc_status st = ORC_OK;
    const int32_t *pos = (const int32_t *)bt->pos.data, *base = (const int32_t *)bt->kv_base.data;
    const float *sinks = ap->sinks ? (const float *)ap->sinks->data : NULL;
    int32_t splits;
    if (!decode_splits(x, c, bt, ap, &splits))
        return orc_fail(err, ORC_E_INTERNAL, "attention: %d splits past the session's scratch", (int)splits);
    /* Fast path, many queries: FlashAttention-style tiles with tensor-core products, one launch
     * per run of consecutive positions of one sequence (its contract). */
    if (c->fast && splits == 0 && !probs && orc_attention_flash_supported(kc->dtype, ap->head_dim, ap->head_dim_v)) {
        bool all = true;
        for (int32_t r = 0; r < bt->n_runs && all; r++) {
            const int64_t t0 = bt->run_start[r], t1 = bt->run_start[r + 1];
            orc_attn_flash_args fa;
            memset(&fa, 0, sizeof fa);
            fa.q = (const float *)q->data + t0 * q->cols;
            fa.q_stride = q->cols;
            fa.k_cache = kc->data;
            fa.v_cache = vc->data;
            fa.kv_dtype = kc->dtype;
            fa.k_stride = kc->cols;
            fa.v_stride = vc->cols;
            fa.out = (float *)out->data + t0 * out->cols;
            fa.out_stride = out->cols;
            fa.pos = pos + t0;
            fa.kv_base = base + t0;
            fa.n = t1 - t0;
            fa.n_head = ap->n_head;
            fa.n_head_kv = ap->n_head_kv;
            fa.head_dim = ap->head_dim;
            fa.head_dim_v = ap->head_dim_v;
            fa.scale = ap->scale;
            fa.softcap = ap->softcap;
            fa.window = ap->window;
            fa.sinks = sinks;
            const cudaError_t ce = orc_launch_attention_flash(&fa, c->stream);
            if (ce == cudaErrorNotSupported && r == 0) {
                (void)cudaGetLastError();
                all = false;
                break;
            }
            ORC_CUDA_CHECK(ce);
        }
        if (all) return ORC_OK;
    }
    ORC_CUDA_CHECK(launch_decode_attention(x, c, q, kc, vc, bt, ap, out, splits, NULL));
    if (probs) {
        ORC_CUDA_CHECK(orc_launch_attention_probs((const float *)q->data, q->cols, kc->data, kc->dtype, kc->cols, bt->n,
                                                  pos, base, ap->n_head, ap->n_head_kv, ap->head_dim, ap->scale,
                                                  ap->softcap, ap->window, sinks, (float *)probs->data,
                                                  probs->cols / ap->n_head, c->stream));
    }
cleanup:
    return st;
}

static orc_status cu_glu(orc_exec *e, const orc_tensor *gate, const orc_tensor *up, int64_t n, int act,
                         orc_tensor *out, orc_err *err) {
    orc_status st = ORC_OK;
    ORC_CUDA_CHECK(orc_launch_glu((const float *)gate->data, (const float *)up->data, (float *)out->data,
                                  n * gate->cols, act, cb_of(e)->stream));
cleanup:
    return st;
}

static orc_status cu_softcap(orc_exec *e, orc_tensor *x, int64_t n, float cap, orc_err *err) {
    orc_status st = ORC_OK;
    ORC_CUDA_CHECK(orc_launch_softcap((float *)x->data, n * x->cols, cap, cb_of(e)->stream));
cleanup:
    return st;
}

static orc_status cu_argmax(orc_exec *e, const orc_tensor *x, int64_t n, orc_tensor *out, orc_err *err) {
    orc_status st = ORC_OK;
    cuda_exec *ex = (cuda_exec *)e;
    if (n > ex->max_tokens || x->dtype != ORC_DTYPE_F32 || x->qtype >= 0 || out->cols < 4 || x->row_bytes % 4)
        return orc_fail(err, ORC_E_INTERNAL, "argmax: %lld rows (scratch for %lld), or not float32 logits / [n][4] out",
                        (long long)n, (long long)ex->max_tokens);
    ORC_CUDA_CHECK(orc_launch_argmax((const float *)x->data, (int64_t)(x->row_bytes / 4), n, x->cols, (float *)out->data,
                                     ex->d_argmax, cb_of(e)->stream));
cleanup:
    return st;
}

static orc_status cu_rope_kv_store(orc_exec *e, orc_tensor *q, orc_tensor *k, const orc_tensor *v, orc_tensor *kc,
                                   orc_tensor *vc, const orc_batch *bt, int32_t n_head, int32_t n_head_kv,
                                   int32_t head_dim, const orc_rope_params *rp, const orc_tensor *inv_freq,
                                   const orc_tensor *q_norm, const orc_tensor *k_norm, float eps, orc_err *err) {
    orc_status st = ORC_OK;
    const float ms = rope_mscale(rp);
    ORC_CUDA_CHECK(orc_launch_rope_kv_store((float *)q->data, (float *)k->data, (const float *)v->data, kc->data,
                                            vc->data, kc->dtype, bt->n, n_head, n_head_kv, head_dim, rp->n_rot,
                                            rp->neox, (const int32_t *)bt->pos.data, (const int32_t *)bt->kv_row.data,
                                            rp->freq_scale, ms, (const float *)inv_freq->data, q->cols, k->cols,
                                            v->cols, q_norm ? (const float *)q_norm->data : NULL,
                                            k_norm ? (const float *)k_norm->data : NULL, eps, cb_of(e)->stream));
cleanup:
    return st;
}

/* The decode step's rope + KV store inside its attention launch (attention.cu), on the fast path:
 * the decode attention with its prefetch, one query. */
static orc_status cu_rope_attention(orc_exec *e, const orc_tensor *q, const orc_tensor *k, const orc_tensor *v,
                                    orc_tensor *kc, orc_tensor *vc, const orc_batch *bt, const orc_rope_params *rp,
                                    const orc_tensor *inv_freq, const orc_tensor *q_norm, const orc_tensor *k_norm,
                                    float eps, const orc_attn_params *ap, orc_tensor *out, orc_err *err) {
    cuda_exec *x = (cuda_exec *)e;
    cuda_backend *c = cb_of(e);
    orc_status st = ORC_OK;
    int32_t splits;
    if (!c->fast || bt->n != 1 || !decode_splits(x, c, bt, ap, &splits) || splits == 0 ||
        k->cols != (int64_t)ap->n_head_kv * ap->head_dim || v->cols != (int64_t)ap->n_head_kv * ap->head_dim_v)
        return ORC_E_UNSUPPORTED;
    orc_attn_rope r;
    memset(&r, 0, sizeof r);
    r.k = (const float *)k->data;
    r.v = (const float *)v->data;
    r.q_norm = q_norm ? (const float *)q_norm->data : NULL;
    r.k_norm = k_norm ? (const float *)k_norm->data : NULL;
    r.eps = eps;
    r.inv_freq = (const float *)inv_freq->data;
    r.n_rot = rp->n_rot;
    r.neox = rp->neox;
    r.freq_scale = rp->freq_scale;
    r.mscale = rope_mscale(rp);
    {
        const cudaError_t ce = launch_decode_attention(x, c, q, kc, vc, bt, ap, out, splits, &r);
        if (ce == cudaErrorNotSupported) return ORC_E_UNSUPPORTED; /* refused before launching */
        ORC_CUDA_CHECK(ce);
    }
cleanup:
    return st;
}

/* --------------------------------------------------------------------------- mixture of experts */

static orc_status cu_moe_route(orc_exec *e, const orc_tensor *logits, int64_t n, int32_t k, int kind, bool norm,
                               orc_tensor *ids, orc_tensor *w, orc_err *err) {
    orc_status st = ORC_OK;
    ORC_CUDA_CHECK(orc_launch_moe_route((const float *)logits->data, n, (int32_t)logits->cols, k, kind, norm,
                                        (int32_t *)ids->data, (float *)w->data, cb_of(e)->stream));
cleanup:
    return st;
}

/* Many slots (prefill): group them by expert, then, where moe_grouped.cu takes the stored form,
 * one tensor-core launch over every used expert's tiles, reading the blocks directly; otherwise
 * (float32 or bfloat16 experts, or ORC_MOE_GROUPED=0) one cuBLAS product per used expert over
 * its rows, as dense products run. Both round inputs and weights to float16 (bfloat16 experts:
 * bfloat16) and accumulate in float32. The grouped launch's grouping runs on the device
 * (moe_group_kernel.cuh: no copy of the ids and no synchronisation, three a layer before); the
 * cuBLAS products need each expert's slot count on the host, so they group there (a copy of
 * the ids and a sync: never inside a recorded step, whose slots are few). */
#define MOE_GROUP_MIN_SLOTS 64

/* ORC_MOE_GROUPED (read once): 0 per-expert cuBLAS products always, 1 the grouped launch always,
 * unset: the rule below. */
static int moe_grouped_mode(void) {
    static std::atomic<int> mode{INT_MIN};
    return orc_env_once(mode, "ORC_MOE_GROUPED", [](const char *e) { return e && (e[0] == '0' || e[0] == '1') ? e[0] - '0' : 2; });
}

/* The pipelined mma.sync kernel (moe_mma_kernel.cuh) for every grouped product over stored blocks
 * it takes, whatever the slots an expert, unless ORC_MOE_GROUPED=0; ORC_MOE_MMA=0 (read once) leaves
 * them to the tile kernel and the shape rule below. Device run 29 (H100, pp512): gpt-oss-20b 9,762
 * -> 11,301 tokens/s, Qwen3-30B-A3B 6,147 -> 9,896 (llama.cpp 10,735 and 7,998, same call). */
static bool moe_mma_mode(void) {
    static std::atomic<int> mode{INT_MIN};
    return orc_env_switch(mode, "ORC_MOE_MMA", true);
}

/* ORC_MOE_GROUP_HOST=1 (read once): the grouped launch's slots grouped on the host, as before the
 * device grouping (the same order and tiles, so the same bits): to measure what it saves. */
static bool moe_group_host_mode(void) {
    static std::atomic<int> mode{INT_MIN};
    return orc_env_switch(mode, "ORC_MOE_GROUP_HOST", false);
}

/* The grouped launch over tiles [0, n_tiles) of x->d_moe_order (order, then the tiles). */
static orc_status launch_grouped(cuda_exec *x, const orc_tensor *in, bool per_slot, const orc_tensor *w,
                                 const float *bias, int64_t slots, int32_t k, bool mma, int64_t n_tiles,
                                 orc_tensor *out, orc_err *err) {
    cuda_backend *c = cb_of(&x->base);
    orc_status st = ORC_OK;
    const int64_t rows = out->cols, cols = w->cols;
    const int32_t *order = x->d_moe_order, *tiles = x->d_moe_order + slots;
    if (n_tiles > 65535)
        return orc_fail(err, ORC_E_INTERNAL, "matmul_id: %lld tiles past one launch's grid", (long long)n_tiles);
    if (mma) {
        ORC_CUDA_CHECK(orc_launch_moe_gather((const float *)in->data, per_slot, order, slots, k, cols, x->d_moe_x,
                                             ORC_DTYPE_F16, c->stream));
        ORC_CUDA_CHECK(orc_launch_moe_mma(x->d_moe_x, w->data, w->qtype, w->row_bytes, (uint64_t)w->rows * w->row_bytes,
                                          rows, cols, order, tiles, (int32_t)n_tiles, bias, (float *)out->data,
                                          c->stream));
    } else {
        ORC_CUDA_CHECK(orc_launch_moe_grouped((const float *)in->data, per_slot, k, w->data, w->dtype, w->qtype,
                                              w->row_bytes, rows, cols, order, tiles, (int32_t)n_tiles, bias,
                                              (float *)out->data, c->stream));
    }
cleanup:
    return st;
}

static orc_status matmul_id_grouped(cuda_exec *x, const orc_tensor *in, bool per_slot, const orc_tensor *w,
                                    const float *bias, const orc_tensor *ids, int64_t n, int32_t k, orc_tensor *out,
                                    orc_err *err) {
    cuda_backend *c = cb_of(&x->base);
    orc_status st = ORC_OK;
    const int64_t slots = n * k, rows = out->cols, cols = w->cols, n_expert = w->rows / rows;
    int32_t *h_ids = x->h_moe, *order = h_ids + slots, *tiles = order + slots, *start = tiles + 3 * slots;
    const orc_dtype dt = w->qtype >= 0 ? ORC_DTYPE_F16 : w->dtype;
    const float one = 1.0f, zero = 0.0f;
    const int64_t tn = orc_moe_grouped_tile_slots();
    const bool mma = moe_grouped_mode() != 0 && moe_mma_mode() && orc_moe_mma_supports(w->qtype, w->data, cols);
    /* Device run 10 (prefill 512): the grouped launch took Qwen3-30B-A3B's 128 experts (32 slots
     * each on average) from 1.7k to 5.6k tokens/s, but gpt-oss-20b's 32 experts (64 slots each)
     * from 9.1k down to 7.3k: with a full tile per expert, the per-expert cuBLAS products on
     * float16 copies win. So: grouped while the experts average fewer slots than a tile (a rule
     * on the shape, so that the grouping can stay on the device). */
    const bool grouped = mma || (moe_grouped_mode() != 0 && orc_moe_grouped_supports(w->qtype, w->dtype, cols) &&
                                 (moe_grouped_mode() == 1 || slots < n_expert * tn));
    if (slots > x->moe_slots || n_expert + 1 > 8192 ||
        (uint64_t)(slots * cols) * 4u > x->moe_x_bytes || (uint64_t)(slots * rows) * 4u > x->moe_y_bytes)
        return orc_fail(err, ORC_E_INTERNAL, "matmul_id: %lld slots past the session's grouping scratch",
                        (long long)slots);
    if (grouped && !moe_group_host_mode() && n_expert <= orc_moe_group_max_experts()) {
        ORC_CUDA_CHECK(orc_launch_moe_group((const int32_t *)ids->data, slots, (int32_t)n_expert, rows,
                                            x->d_moe_order, x->d_moe_order + slots, (float *)out->data, c->stream));
        return launch_grouped(x, in, per_slot, w, bias, slots, k, mma,
                              orc_moe_group_max_tiles(slots, (int32_t)n_expert), out, err);
    }
    ORC_CUDA_CHECK(cudaMemcpyAsync(h_ids, ids->data, (size_t)slots * sizeof(int32_t), cudaMemcpyDeviceToHost, c->stream));
    ORC_CUDA_CHECK(cudaStreamSynchronize(c->stream));
    memset(start, 0, (size_t)(n_expert + 1) * sizeof(int32_t));
    for (int64_t i = 0; i < slots; i++) {
        if (h_ids[i] < 0 || h_ids[i] >= n_expert)
            return orc_fail(err, ORC_E_INTERNAL, "matmul_id: expert %d of %lld", (int)h_ids[i], (long long)n_expert);
        start[h_ids[i] + 1]++;
    }
    for (int64_t ex = 0; ex < n_expert; ex++) start[ex + 1] += start[ex];
    for (int64_t i = 0, fill; i < slots; i++) { /* stable: slots of an expert keep their order */
        fill = start[h_ids[i]]++;
        order[fill] = (int32_t)i;
    }
    for (int64_t ex = n_expert; ex > 0; ex--) start[ex] = start[ex - 1]; /* back to the group starts */
    start[0] = 0;
    if (grouped) {
        int32_t n_tiles = 0; /* each tile holds >= 1 slot: at most `slots` tiles */
        for (int64_t ex = 0; ex < n_expert; ex++)
            for (int64_t q = start[ex]; q < start[ex + 1]; q += tn, n_tiles++) {
                tiles[3 * n_tiles] = (int32_t)ex;
                tiles[3 * n_tiles + 1] = (int32_t)q;
                tiles[3 * n_tiles + 2] = (int32_t)(start[ex + 1] - q < tn ? start[ex + 1] - q : tn);
            }
        ORC_CUDA_CHECK(cudaMemcpyAsync(x->d_moe_order, order, (size_t)(slots + 3 * n_tiles) * sizeof(int32_t),
                                       cudaMemcpyHostToDevice, c->stream));
        return launch_grouped(x, in, per_slot, w, bias, slots, k, mma, n_tiles, out, err);
    }
    ORC_CUDA_CHECK(cudaMemcpyAsync(x->d_moe_order, order, (size_t)slots * sizeof(int32_t), cudaMemcpyHostToDevice,
                                   c->stream));
    ORC_CUDA_CHECK(orc_launch_moe_gather((const float *)in->data, per_slot, x->d_moe_order, slots, k, cols, x->d_moe_x,
                                         dt, c->stream));
    ORC_CUBLAS_CHECK(cublasSetMathMode(c->blas, dt == ORC_DTYPE_F32 ? CUBLAS_PEDANTIC_MATH : CUBLAS_DEFAULT_MATH));
    for (int64_t ex = 0; ex < n_expert; ex++) {
        const int64_t m = start[ex + 1] - start[ex];
        if (m == 0) continue;
        const void *wd = (const char *)w->data + (uint64_t)ex * (uint64_t)rows * w->row_bytes;
        if (w->qtype >= 0) {
            st = orc_cuda_dequantize(w->qtype, wd, (uint64_t)rows * w->row_bytes, rows * cols, ORC_DTYPE_F16, c->d_wdeq,
                                     c->stream, err);
            if (st != ORC_OK) return st;
            wd = c->d_wdeq;
        }
        const char *xg = (const char *)x->d_moe_x + (uint64_t)start[ex] * (uint64_t)cols * (uint64_t)orc_dtype_size(dt);
        ORC_CUBLAS_CHECK(cublasGemmEx(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)rows, (int)m, (int)cols, &one, wd,
                                      blas_type(dt), (int)cols, xg, blas_type(dt), (int)cols, &zero,
                                      x->d_moe_y + start[ex] * rows, CUDA_R_32F, (int)rows, CUBLAS_COMPUTE_32F,
                                      CUBLAS_GEMM_DEFAULT));
    }
    ORC_CUDA_CHECK(orc_launch_moe_scatter(x->d_moe_y, x->d_moe_order, (const int32_t *)ids->data, bias, slots, rows,
                                          (float *)out->data, c->stream));
cleanup:
    return st;
}

/* An expert bias: absent, or float32 [n_expert][rows], one value per row of the experts tensor w. */
static bool expert_bias_fits(const orc_tensor *b, const orc_tensor *w) {
    return !b || (b->dtype == ORC_DTYPE_F32 && b->qtype < 0 && b->rows * b->cols == w->rows);
}

static orc_status cu_matmul_id(orc_exec *e, const orc_tensor *x, bool x_per_slot, const orc_tensor *w,
                               const orc_tensor *bias, const orc_tensor *ids, int64_t n, int32_t k, orc_tensor *out,
                               orc_err *err) {
    orc_status st = ORC_OK;
    if (x->cols != w->cols || out->cols <= 0 || w->rows % out->cols)
        return orc_fail(err, ORC_E_INTERNAL, "matmul_id: x has %lld cols, experts %lld x %lld, out %lld",
                        (long long)x->cols, (long long)w->rows, (long long)w->cols, (long long)out->cols);
    if (!expert_bias_fits(bias, w))
        return orc_fail(err, ORC_E_INTERNAL, "matmul_id: expert bias of %lld x %lld for experts of %lld rows",
                        (long long)bias->rows, (long long)bias->cols, (long long)w->rows);
    const float *b = bias ? (const float *)bias->data : NULL;
    cuda_exec *xe = (cuda_exec *)e;
    if (n * k >= MOE_GROUP_MIN_SLOTS && !xe->recording && xe->moe_slots > 0)
        return matmul_id_grouped(xe, x, x_per_slot, w, b, ids, n, k, out, err);
    /* float16/bfloat16 experts see their inputs rounded, as cuBLAS products do */
    ORC_CUDA_CHECK(orc_launch_matmul_id((const float *)x->data, x_per_slot, w->data, w->dtype, w->qtype, w->row_bytes,
                                        b, (const int32_t *)ids->data, n, k, out->cols, w->cols, true,
                                        (float *)out->data, cb_of(e)->stream));
cleanup:
    return st;
}

/* ORC_MOE_FFN=0 (read once): a prefill's expert FFN as matmul_id, glu, matmul_id (ten launches)
 * instead of cu_moe_ffn's four: the same bits. */
static bool moe_ffn_mode(void) {
    static std::atomic<int> mode{INT_MIN};
    return orc_env_switch(mode, "ORC_MOE_FFN", true);
}

/* The selected experts' FFN of a prefill on the pipelined kernel (unless ORC_MOE_MMA=0): the slots
 * grouped once on the device, x gathered once as float16, gate and up in one launch whose
 * epilogue applies the activation and writes the down product's float16 input in sort order,
 * then down into slot order. Four launches where matmul_id, glu and matmul_id take ten (three
 * groupings, two gathers of x, one of the activations), and the same bits: the GLU mode computes
 * the plain products' floats and the GLU kernel's activation, and rounds once to float16, as the
 * down product's gather would. */
static orc_status cu_moe_ffn(orc_exec *e, const orc_tensor *x, const orc_tensor *wg, const orc_tensor *wu,
                             const orc_tensor *wd, const orc_tensor *bg, const orc_tensor *bu, const orc_tensor *bd,
                             const orc_tensor *ids, int64_t n, int32_t k, int act, orc_tensor *out, orc_err *err) {
    cuda_exec *xe = (cuda_exec *)e;
    cuda_backend *c = cb_of(e);
    orc_status st = ORC_OK;
    const int64_t slots = n * k, embd = x->cols, ff = wd->cols;
    const int64_t n_expert = embd > 0 ? wd->rows / embd : 0;
    if (slots < MOE_GROUP_MIN_SLOTS || xe->recording || slots > xe->moe_slots || !moe_ffn_mode() ||
        moe_grouped_mode() == 0 || !moe_mma_mode() || moe_group_host_mode())
        return ORC_E_UNSUPPORTED;
    if (out->cols != embd || wd->rows != n_expert * embd || n_expert < 1 || n_expert > orc_moe_group_max_experts() ||
        wg->cols != embd || wg->rows != n_expert * ff || wu->rows != wg->rows || wu->cols != embd ||
        wu->qtype != wg->qtype || wu->row_bytes != wg->row_bytes || act < ORC_ACT_SILU || act > ORC_ACT_SWIGLU_OAI ||
        !expert_bias_fits(bg, wg) || !expert_bias_fits(bu, wu) || !expert_bias_fits(bd, wd))
        return ORC_E_UNSUPPORTED;
    if (!orc_moe_mma_supports(wg->qtype, wg->data, embd) || !orc_moe_mma_supports(wu->qtype, wu->data, embd) ||
        !orc_moe_mma_supports(wd->qtype, wd->data, ff))
        return ORC_E_UNSUPPORTED;
    const int64_t n_tiles = orc_moe_group_max_tiles(slots, (int32_t)n_expert);
    if (n_tiles > 65535 || (uint64_t)(slots * embd) * 2u > xe->moe_x_bytes ||
        (uint64_t)(slots * ff) * 2u > xe->moe_y_bytes)
        return ORC_E_UNSUPPORTED;
    int32_t *order = xe->d_moe_order, *tiles = order + slots;
    void *act_h = xe->d_moe_y; /* the activations, float16 [sorted position][ff] */
    const float *pbg = bg ? (const float *)bg->data : NULL, *pbu = bu ? (const float *)bu->data : NULL;
    ORC_CUDA_CHECK(orc_launch_moe_group((const int32_t *)ids->data, slots, (int32_t)n_expert, embd, order, tiles,
                                        (float *)out->data, c->stream));
    ORC_CUDA_CHECK(orc_launch_moe_gather((const float *)x->data, false, order, slots, k, embd, xe->d_moe_x,
                                         ORC_DTYPE_F16, c->stream));
    ORC_CUDA_CHECK(orc_launch_moe_mma_glu(xe->d_moe_x, wg->data, wu->data, wg->qtype, wg->row_bytes,
                                          (uint64_t)wg->rows * wg->row_bytes, ff, embd, tiles, (int32_t)n_tiles, pbg,
                                          pbu, act, act_h, c->stream));
    ORC_CUDA_CHECK(orc_launch_moe_mma(act_h, wd->data, wd->qtype, wd->row_bytes, (uint64_t)wd->rows * wd->row_bytes,
                                      embd, ff, order, tiles, (int32_t)n_tiles, bd ? (const float *)bd->data : NULL,
                                      (float *)out->data, c->stream));
cleanup:
    return st;
}

static orc_status cu_moe_combine(orc_exec *e, const orc_tensor *y, const orc_tensor *w, int64_t n, int32_t k,
                                 const orc_tensor *res, orc_tensor *out, orc_err *err) {
    orc_status st = ORC_OK;
    ORC_CUDA_CHECK(orc_launch_moe_combine((const float *)y->data, (const float *)w->data, n, k, out->cols,
                                          res ? (const float *)res->data : NULL,
                                          (float *)out->data, cb_of(e)->stream));
cleanup:
    return st;
}

/* ---------------------------------------------------------------------------- CUDA graphs */

static orc_status cu_record_begin(orc_exec *e, orc_err *err) {
    cuda_exec *x = (cuda_exec *)e;
    orc_status st = ORC_OK;
    ORC_CUDA_CHECK(cudaStreamBeginCapture(cb_of(e)->stream, cudaStreamCaptureModeThreadLocal));
    x->recording = true;
cleanup:
    return st;
}

static orc_status cu_record_end(orc_exec *e, void **out, orc_err *err) {
    cuda_exec *x = (cuda_exec *)e;
    orc_status st = ORC_OK;
    cudaGraph_t g = NULL;
    cudaGraphExec_t exec = NULL;
    *out = NULL;
    x->recording = false;
    ORC_CUDA_CHECK(cudaStreamEndCapture(cb_of(e)->stream, &g));
    ORC_CUDA_CHECK(cudaGraphInstantiate(&exec, g, 0));
    *out = (void *)exec;
cleanup:
    if (g) cudaGraphDestroy(g);
    (void)cudaGetLastError(); /* a failed recording leaves an error behind; it was reported */
    return st;
}

static orc_status cu_graph_launch(orc_exec *e, void *graph, orc_err *err) {
    orc_status st = ORC_OK;
    ORC_CUDA_CHECK(cudaGraphLaunch((cudaGraphExec_t)graph, cb_of(e)->stream));
cleanup:
    return st;
}

static void cu_graph_free(orc_exec *e, void *graph) {
    if (!graph) return;
    cudaSetDevice(cb_of(e)->device);
    cudaGraphExecDestroy((cudaGraphExec_t)graph);
    (void)cudaGetLastError();
}

static bool cu_supports(const orc_backend *b, orc_op op) {
    return op == ORC_OP_GRAPHS || op == ORC_OP_ATTN_PROBS || (op == ORC_OP_FUSED && cb((orc_backend *)b)->fast);
}

/* Free the backend's own scratch, and the cuBLAS handle with its workspace. Errors here
 * are not reportable (a teardown path): leave no sticky "last error" behind for the next,
 * unrelated CUDA call to pick up. */
static void cu_trim(orc_backend *b) {
    cuda_backend *c = cb(b);
    if (!c->stream) return; /* never initialised on a device */
    cudaSetDevice(c->device);
    cudaStreamSynchronize(c->stream);
    cudaFree(c->d_staging);
    cudaFree(c->d_wdeq);
    c->d_staging = c->d_wdeq = NULL;
    c->allocated -= c->staging_bytes + c->wdeq_bytes;
    c->staging_bytes = c->wdeq_bytes = 0;
    if (c->blas) cublasDestroy(c->blas);
    c->blas = NULL;
    cudaFree(c->d_blas_ws);
    c->d_blas_ws = NULL;
    c->allocated -= c->blas_ws_bytes;
    c->blas_ws_bytes = 0;
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
    /* .supports = */ cu_supports,
    /* .alloc = */ cu_alloc,
    /* .free = */ cu_free,
    /* .upload_weight = */ cu_upload_weight,
    /* .upload_blocks = */ cu_upload_blocks,
    /* .download = */ cu_download,
    /* .upload = */ cu_upload,
    /* .copy_rows = */ cu_copy_rows,
    /* .sync = */ cu_sync,
    /* .allocated = */ cu_allocated,
    /* .trim = */ cu_trim,
    /* .exec_create = */ cu_exec_create,
    /* .exec_destroy = */ cu_exec_destroy,
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
    /* .argmax = */ cu_argmax,
    /* .rope_kv_store = */ cu_rope_kv_store,
    /* .rope_attention = */ cu_rope_attention,
    /* .matvec = */ cu_matvec,
    /* .matvec_glu = */ cu_matvec_glu,
    /* .matvec_glu_id = */ cu_matvec_glu_id,
    /* .matvec_slots = */ cu_matvec_slots,
    /* .matvec_stack = */ cu_matvec_stack,
    /* .moe_route = */ cu_moe_route,
    /* .matmul_id = */ cu_matmul_id,
    /* .moe_combine = */ cu_moe_combine,
    /* .record_begin = */ cu_record_begin,
    /* .record_end = */ cu_record_end,
    /* .graph_launch = */ cu_graph_launch,
    /* .graph_free = */ cu_graph_free,
    /* .moe_ffn = */ cu_moe_ffn,
};

extern "C" orc_status orc_backend_cuda_create(const orc_backend_params *p, orc_backend **out, orc_err *err) {
    orc_status st = ORC_OK;
    int count = 0;
    const int device = p->device;
    *out = NULL;
    cuda_backend *c = (cuda_backend *)calloc(1, sizeof *c);
    if (!c) return orc_fail(err, ORC_E_NOMEM, "allocating the CUDA backend");
    c->base.ops = &k_cuda_ops;
    c->device = device;
    c->fast = p->fast;
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
    if ((st = dev_malloc(c, &c->d_blas_ws, c->blas_ws_bytes, "the cuBLAS workspace", err)) != ORC_OK) {
        c->blas_ws_bytes = 0;
        goto cleanup;
    }
    ORC_CUBLAS_CHECK(cublasSetWorkspace(c->blas, c->d_blas_ws, c->blas_ws_bytes));
    *out = &c->base;
    return ORC_OK;
cleanup:
    cu_destroy(&c->base);
    return st;
}
