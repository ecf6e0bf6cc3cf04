/* backend.h - the interface both backends implement (backend_cpu.c, and
 * cuda/backend_cuda.cu behind gpu_backend.h).
 *
 * The decoder program lives once, in model.c, and calls these primitives; a
 * backend owns memory and arithmetic, nothing about architectures. That keeps
 * the CPU reference and the GPU path running the very same sequence of steps,
 * so a divergence between them points at one primitive.
 *
 * Conventions: activations are float32, row-major [rows][cols] with one row per
 * token; weights are [rows = out features][cols = in features] in the model's
 * weight dtype; all pointers in an orc_tensor live on the backend (host memory
 * for the CPU, device memory for CUDA). Every call is ordered after the previous
 * one on the same backend (a CUDA backend uses one stream).
 */
#ifndef ORC_BACKEND_H
#define ORC_BACKEND_H

#include <math.h>     /* powf */
#include <stdbool.h>
#include <stdint.h>

#include "core/orc.h"
#include "quant/quant.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct orc_tensor {
    void *data;       /* backend memory */
    orc_dtype dtype;  /* F32 for activations; F32/F16/BF16 for weights and the KV cache */
    int64_t rows, cols;
    uint64_t nbytes;  /* bytes of `data` owned by this tensor; 0 for a view */
    void *quant;      /* the stored GGUF blocks, when the backend keeps them (CUDA keep_quantized) */
    uint64_t quant_bytes;
    int32_t quant_type;
} orc_tensor;

/* Rows [row0, row0 + n) of t, sharing its memory (never freed through the view). */
static inline orc_tensor orc_tensor_rows(const orc_tensor *t, int64_t row0, int64_t n) {
    orc_tensor v = *t;
    v.data = (char *)t->data + (uint64_t)row0 * (uint64_t)t->cols * (uint64_t)orc_dtype_size(t->dtype);
    v.rows = n;
    v.nbytes = 0;
    v.quant = NULL;
    v.quant_bytes = 0;
    return v;
}

typedef struct orc_backend orc_backend;

/* RoPE parameters of one layer. */
typedef struct orc_rope_params {
    int32_t n_rot;        /* rotated dims per head (even, <= head_dim) */
    int32_t neox;         /* 1: pairs (i, i + n_rot/2); 0: adjacent pairs (2i, 2i+1) */
    float base;
    float freq_scale;     /* positions are multiplied by this (linear scaling) */
    const orc_tensor *freq_factors; /* optional [n_rot/2] f32 divisors of the frequencies */
} orc_rope_params;

/* Inverse frequency of rotation pair i, as HF computes it (float32: 1 / base^(2i/n_rot)),
 * divided by the optional frequency factor. Both backends take their tables from here so
 * that they rotate by the very same angles. */
static inline float orc_rope_inv_freq(float base, int32_t i, int32_t n_rot, const float *factors) {
    float inv = 1.0f / powf(base, (float)(2 * i) / (float)n_rot);
    return factors ? inv / factors[i] : inv;
}

typedef struct orc_attn_params {
    int32_t n_head, n_head_kv, head_dim, head_dim_v;
    float scale;          /* multiplies Q.K */
    float softcap;        /* 0: off; else scores = softcap * tanh(scores / softcap) */
    int32_t window;       /* 0: causal; else a query at p sees keys at p-window < k <= p */
} orc_attn_params;

typedef enum orc_act { ORC_BACKEND_ACT_SILU = 0, ORC_BACKEND_ACT_GELU_TANH = 1 } orc_act;

typedef struct orc_backend_ops {
    const char *name; /* "cpu", "cuda" */
    void (*destroy)(orc_backend *b);

    /* Memory. `what` names the allocation in out-of-memory errors. */
    orc_status (*alloc)(orc_backend *b, orc_tensor *t, orc_dtype dtype, int64_t rows, int64_t cols, const char *what,
                        orc_err *err);
    void (*free)(orc_backend *b, orc_tensor *t); /* zeroes *t; a zeroed tensor is fine */

    /* A weight from its stored GGUF bytes (host memory) into `dst` (already allocated, of
     * dst->dtype), dequantized on the backend. `raw_as_f16` is the test-only fault of the
     * bug orc was born from: reinterpret the stored bytes as float16 values instead. */
    orc_status (*upload_weight)(orc_backend *b, orc_tensor *dst, int32_t ggml_type, const void *src,
                                uint64_t src_bytes, bool raw_as_f16, orc_err *err);
    /* Rows [row0, row0+n) of `src` converted to float32 on the host. */
    orc_status (*download)(orc_backend *b, const orc_tensor *src, int64_t row0, int64_t n, float *dst, orc_err *err);

    /* out[i] = table[ids[i]] * scale, ids on the host (already range-checked). */
    orc_status (*get_rows)(orc_backend *b, const orc_tensor *table, const int32_t *ids, int64_t n, float scale,
                           orc_tensor *out, orc_err *err);
    /* RMSNorm over rows of `width` elements: x is viewed as [n*cols/width][width]; w is [width]. */
    orc_status (*rms_norm)(orc_backend *b, const orc_tensor *x, const orc_tensor *w, int64_t n, int64_t width,
                           float eps, orc_tensor *out, orc_err *err);
    /* out[n][w.rows] = x[n][w.cols] . w^T (float32 accumulation). */
    orc_status (*matmul)(orc_backend *b, const orc_tensor *x, const orc_tensor *w, int64_t n, orc_tensor *out,
                         orc_err *err);
    /* x[i][j] += bias[j] */
    orc_status (*add_bias)(orc_backend *b, orc_tensor *x, const orc_tensor *bias, int64_t n, orc_err *err);
    /* out = a + c (elementwise over n rows) */
    orc_status (*add)(orc_backend *b, const orc_tensor *a, const orc_tensor *c, int64_t n, orc_tensor *out,
                      orc_err *err);
    /* In place on x viewed as [n][n_heads][head_dim], token i at position pos0 + i. */
    orc_status (*rope)(orc_backend *b, orc_tensor *x, int64_t n, int32_t n_heads, int32_t head_dim, int64_t pos0,
                       const orc_rope_params *rp, orc_err *err);
    /* Write k, v rows for positions pos0..pos0+n-1 into the layer's caches (converting to their dtype). */
    orc_status (*kv_store)(orc_backend *b, orc_tensor *k_cache, orc_tensor *v_cache, const orc_tensor *k,
                           const orc_tensor *v, int64_t n, int64_t pos0, orc_err *err);
    /* Causal attention of n queries at pos0.. over cached keys 0..pos0+n-1; out [n][n_head*head_dim_v]. */
    orc_status (*attention)(orc_backend *b, const orc_tensor *q, const orc_tensor *k_cache, const orc_tensor *v_cache,
                            int64_t n, int64_t pos0, const orc_attn_params *ap, orc_tensor *out, orc_err *err);
    /* out = act(gate) * up */
    orc_status (*glu)(orc_backend *b, const orc_tensor *gate, const orc_tensor *up, int64_t n, orc_act act,
                      orc_tensor *out, orc_err *err);
    /* x = cap * tanh(x / cap) over n rows */
    orc_status (*softcap)(orc_backend *b, orc_tensor *x, int64_t n, float cap, orc_err *err);
    /* Copy rows [src_row0, src_row0+n) of src to rows [dst_row0, ...) of dst (same cols and dtype). */
    orc_status (*copy_rows)(orc_backend *b, const orc_tensor *src, int64_t src_row0, orc_tensor *dst,
                            int64_t dst_row0, int64_t n, orc_err *err);
    /* argmax of each of n rows (ties -> lowest index), result on the host. */
    orc_status (*argmax)(orc_backend *b, const orc_tensor *x, int64_t n, int32_t *out, orc_err *err);
    /* Wait for all queued work; report any asynchronous error. */
    orc_status (*sync)(orc_backend *b, orc_err *err);
    /* Bytes currently allocated, for Model.memory(). */
    uint64_t (*allocated)(const orc_backend *b);
    /* Free caches and scratch the backend keeps for itself (the model was closed; only
     * frees of remaining tensors follow). May be NULL. */
    void (*trim)(orc_backend *b);

    /* Optional (NULL where unsupported): replaying one-token steps as a recorded graph.
     * step_inputs puts the step's token ids and position where graph-mode ops read them
     * (device memory, outside any recording). In ORC_GRAPH_SHAPED and ORC_GRAPH_RECORD modes
     * get_rows, rope, kv_store and attention take those instead of their arguments, and
     * attention sizes its work for the whole cache, so that one recording serves every
     * position; RECORD queues nothing that may not be recorded (no allocation, no sync). */
    orc_status (*step_inputs)(orc_backend *b, const int32_t *ids, int64_t n, int64_t pos0, orc_err *err);
    void (*set_graph_mode)(orc_backend *b, int mode);
    orc_status (*record_begin)(orc_backend *b, orc_err *err);
    orc_status (*record_end)(orc_backend *b, void **graph, orc_err *err); /* ends recording even on error */
    orc_status (*graph_launch)(orc_backend *b, void *graph, orc_err *err);
    void (*graph_free)(orc_backend *b, void *graph);
} orc_backend_ops;

enum { ORC_GRAPH_OFF = 0, ORC_GRAPH_SHAPED = 1, ORC_GRAPH_RECORD = 2 };

struct orc_backend {
    const orc_backend_ops *ops;
};

/* The CPU reference backend. n_threads <= 0: one per online CPU. */
orc_status orc_backend_cpu_create(int n_threads, orc_backend **out, orc_err *err);

/* Matmul inputs are rounded to the weight dtype by backends whose matrix units need
 * equal input types (cuBLAS f16 x f16); the CPU backend does the same when this is
 * set, so that it computes what the GPU computes. */
void orc_backend_cpu_set_round_matmul_inputs(orc_backend *b, bool on);

#ifdef __cplusplus
}
#endif

#endif /* ORC_BACKEND_H */
