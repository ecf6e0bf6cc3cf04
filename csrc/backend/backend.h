/* backend.h - the interface both backends implement (backend_cpu.c, and
 * cuda/runtime/backend_cuda.cu), and the registry that creates them (registry.c).
 *
 * The layer program lives once, in csrc/model/program.c, and calls these primitives; a
 * backend owns memory and arithmetic, nothing about architectures. That keeps the CPU
 * reference and the GPU path running the very same sequence of steps, so a divergence
 * between them points at one primitive.
 *
 * Backends hold no modes. What a step depends on (token ids, positions, the cache rows
 * they write and read) comes in as explicit device tensors (orc_batch); launch shapes
 * come in as explicit arguments (n_keys_max). Scratch a primitive needs lives in an
 * orc_exec, one per session, sized when the session is created and never regrown while a
 * step runs: so a recorded CUDA graph is only a way to launch the same kernels on the same
 * memory, and replays compute exactly what eager steps compute.
 *
 * Conventions: activations are float32, row-major [rows][cols] with one row per token;
 * weights are [rows = out features][cols = in features], in a dense dtype or as GGUF
 * blocks (qtype >= 0); all pointers in an orc_tensor live on the backend (host memory for
 * the CPU, device memory for CUDA). Every call is ordered after the previous one on the
 * same backend (CUDA: one stream). A backend is used by one thread at a time (the model
 * serialises its users).
 */
#ifndef ORC_BACKEND_H
#define ORC_BACKEND_H

#include <math.h> /* powf */
#include <stdbool.h>
#include <stdint.h>

#include "core/dtype.h"
#include "core/orc.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct orc_tensor {
    void *data;      /* backend memory */
    orc_dtype dtype; /* F32 activations; F32/F16/BF16 weights and KV caches; I32 inputs */
    int32_t qtype;   /* >= 0: data holds GGUF blocks of this ggml type (rows of row_bytes); -1: dense */
    int64_t rows, cols;
    uint64_t row_bytes; /* bytes of one row */
    uint64_t nbytes;    /* bytes of `data` owned by this tensor; 0 for a view */
} orc_tensor;

/* Rows [row0, row0 + n) of t, sharing its memory (never freed through the view). */
static inline orc_tensor orc_tensor_rows(const orc_tensor *t, int64_t row0, int64_t n) {
    orc_tensor v = *t;
    v.data = (char *)t->data + (uint64_t)row0 * t->row_bytes;
    v.rows = n;
    v.nbytes = 0;
    return v;
}

/* The stored form of a matrix weight: GGUF blocks (qtype = ggml_type) or, for F32/F16/BF16
 * files, a dense matrix of that dtype. Checks that src_bytes is exactly rows x cols of the
 * type and fills everything but data/nbytes (stored.c). */
orc_status orc_tensor_stored_shape(orc_tensor *t, int32_t ggml_type, int64_t rows, int64_t cols, uint64_t src_bytes,
                                   const char *what, orc_err *err);

typedef struct orc_backend orc_backend;
typedef struct orc_exec orc_exec;

/* moe_route's inputs and weights output, for a fused product that ranks the experts itself. */
typedef struct orc_moe_route_in {
    const orc_tensor *logits; /* [n][n_expert] */
    int kind;                 /* orc_router_kind */
    bool norm;                /* renormalise the k weights */
    orc_tensor *w;            /* [n][k] */
} orc_moe_route_in;

/* The tokens of one step: explicit inputs, never hidden state. */
typedef struct orc_batch {
    int64_t n;          /* tokens */
    orc_tensor ids;     /* int32 [n]: token ids (range-checked on the host) */
    orc_tensor pos;     /* int32 [n]: position of each token in its sequence */
    orc_tensor kv_row;  /* int32 [n]: the cache row each token's K and V are written to */
    orc_tensor kv_base; /* int32 [n]: the cache row of position 0 of each token's sequence */
    /* Launch shapes (not data): an upper bound of pos + 1 over the tokens (the session's
     * n_ctx in a recorded step), and the runs of consecutive positions of one sequence,
     * tokens [run_start[r], run_start[r + 1]) for r < n_runs (host memory). */
    int64_t n_keys_max;
    int32_t n_runs;
    const int32_t *run_start;
} orc_batch;

/* RoPE parameters of one layer. */
typedef struct orc_rope_params {
    int32_t n_rot;                  /* rotated dims per head (even, <= head_dim) */
    int32_t neox;                   /* 1: pairs (i, i + n_rot/2); 0: adjacent pairs (2i, 2i+1) */
    float base;
    float freq_scale;               /* positions are multiplied by this (linear scaling) */
    const orc_tensor *freq_factors; /* optional [n_rot/2] f32 divisors of the frequencies */
    /* YaRN (factor > 0): frequencies blended between interpolation and extrapolation over the
     * correction range, cos/sin multiplied by attn_factor. */
    float yarn_factor, yarn_beta_fast, yarn_beta_slow, yarn_attn_factor;
    int32_t yarn_orig_ctx;
    bool yarn_round;
} orc_rope_params;

/* Inverse frequency of rotation pair i, as HF computes it (float32: 1 / base^(2i/n_rot)),
 * divided by the optional frequency factor. Both backends take their tables from here so
 * that they rotate by the very same angles. */
static inline float orc_rope_inv_freq(float base, int32_t i, int32_t n_rot, const float *factors) {
    float inv = 1.0f / powf(base, (float)(2 * i) / (float)n_rot);
    return factors ? inv / factors[i] : inv;
}

/* The float32 inverse-frequency table of a layer's RoPE ([n_rot/2], YaRN applied), computed
 * on the host once for both backends (rope.c). `factors` is the host copy of freq_factors. */
void orc_rope_table(const orc_rope_params *rp, const float *factors, float *inv_freq);

typedef struct orc_attn_params {
    int32_t n_head, n_head_kv, head_dim, head_dim_v;
    float scale;             /* multiplies Q.K */
    float softcap;           /* 0: off; else scores = softcap * tanh(scores / softcap) */
    int32_t window;          /* 0: causal; else a query at p sees keys at p-window < k <= p */
    const orc_tensor *sinks; /* optional [n_head] float32 sink logits (gpt-oss) */
} orc_attn_params;

/* Optional primitives a caller may ask about (orc_backend_supports). */
typedef enum orc_op {
    ORC_OP_GRAPHS = 0,   /* record_begin/record_end/graph_launch/graph_free */
    ORC_OP_ATTN_PROBS,   /* attention can also write its probabilities */
    ORC_OP_FUSED,        /* the fused products (matvec*) may run: worth trying for a few tokens */
    ORC_OP_COUNT
} orc_op;

typedef struct orc_exec_shape {
    int64_t max_tokens; /* rows of a step (the session's n_batch) */
    int64_t max_cols;   /* widest activation or weight row fed to a matmul */
    int64_t max_keys;   /* longest key range one query sees (the session's n_ctx) */
    int32_t n_head, head_dim_v;
    int64_t moe_slots;  /* mixture of experts: (token, expert) slots of a step (0: none) */
    int64_t moe_width;  /* widest expert input or output row */
} orc_exec_shape;

typedef struct orc_backend_ops {
    const char *name; /* "cpu", "cuda" */
    void (*destroy)(orc_backend *b);
    bool (*supports)(const orc_backend *b, orc_op op);

    /* Memory. `what` names the allocation in out-of-memory errors. */
    orc_status (*alloc)(orc_backend *b, orc_tensor *t, orc_dtype dtype, int64_t rows, int64_t cols, const char *what,
                        orc_err *err);
    void (*free)(orc_backend *b, orc_tensor *t); /* zeroes *t; a zeroed tensor is fine */

    /* A weight from its stored GGUF bytes (host memory) into `dst` (already allocated, of
     * dst->dtype), dequantized on the backend. `raw_as_f16` is the test-only fault of the
     * bug orc was born from: reinterpret the stored bytes as float16 values instead. */
    orc_status (*upload_weight)(orc_backend *b, orc_tensor *dst, int32_t ggml_type, const void *src,
                                uint64_t src_bytes, bool raw_as_f16, orc_err *err);
    /* A matrix weight kept in its stored form: GGUF blocks (dst->qtype = ggml_type), or for
     * F32/F16/BF16 files a dense tensor of that dtype. Allocates dst. */
    orc_status (*upload_blocks)(orc_backend *b, orc_tensor *dst, int32_t ggml_type, int64_t rows, int64_t cols,
                                const void *src, uint64_t src_bytes, const char *what, orc_err *err);
    /* Rows [row0, row0+n) of `src` converted to float32 on the host (blocks dequantized). */
    orc_status (*download)(orc_backend *b, const orc_tensor *src, int64_t row0, int64_t n, float *dst, orc_err *err);
    /* Host bytes into rows [row0, row0+n) of `dst` (its own dtype: float32 activations, int32 inputs). */
    orc_status (*upload)(orc_backend *b, orc_tensor *dst, int64_t row0, int64_t n, const void *src, orc_err *err);
    /* Copy rows [src_row0, src_row0+n) of src to rows [dst_row0, ...) of dst (same cols and dtype). */
    orc_status (*copy_rows)(orc_backend *b, const orc_tensor *src, int64_t src_row0, orc_tensor *dst,
                            int64_t dst_row0, int64_t n, orc_err *err);
    /* Wait for all queued work; report any asynchronous error. */
    orc_status (*sync)(orc_backend *b, orc_err *err);
    /* Bytes currently allocated, for Model.memory(). */
    uint64_t (*allocated)(const orc_backend *b);
    /* Free caches and scratch the backend keeps for itself (the model was closed; only
     * frees of remaining tensors follow). May be NULL. */
    void (*trim)(orc_backend *b);

    /* Per-session scratch (one orc_exec per session; see the top of this file). */
    orc_status (*exec_create)(orc_backend *b, const orc_exec_shape *shape, orc_exec **out, orc_err *err);
    void (*exec_destroy)(orc_exec *e); /* NULL is fine */

    /* ---- the primitives of the layer program */
    /* out[i] = table[ids[i]] * scale */
    orc_status (*get_rows)(orc_exec *e, const orc_tensor *table, const orc_tensor *ids, int64_t n, float scale,
                           orc_tensor *out, orc_err *err);
    /* RMSNorm over rows of `width` elements: x is viewed as [n*cols/width][width]; w is [width]. */
    orc_status (*rms_norm)(orc_exec *e, const orc_tensor *x, const orc_tensor *w, int64_t n, int64_t width,
                           float eps, orc_tensor *out, orc_err *err);
    /* out[n][w.rows] = x[n][w.cols] . w^T (float32 accumulation). */
    orc_status (*matmul)(orc_exec *e, const orc_tensor *x, const orc_tensor *w, int64_t n, orc_tensor *out,
                         orc_err *err);
    /* x[i][j] += bias[j] */
    orc_status (*add_bias)(orc_exec *e, orc_tensor *x, const orc_tensor *bias, int64_t n, orc_err *err);
    /* out = a + c (elementwise over n rows) */
    orc_status (*add)(orc_exec *e, const orc_tensor *a, const orc_tensor *c, int64_t n, orc_tensor *out,
                      orc_err *err);
    /* In place on x viewed as [n][n_heads][head_dim]; token i at position pos[i];
     * inv_freq is the layer's [n_rot/2] table (orc_rope_table) on the backend. */
    orc_status (*rope)(orc_exec *e, orc_tensor *x, const orc_batch *bt, int32_t n_heads, int32_t head_dim,
                       const orc_rope_params *rp, const orc_tensor *inv_freq, orc_err *err);
    /* Write the k, v rows of the batch's tokens into cache rows kv_row[i] (converting to the caches' dtype). */
    orc_status (*kv_store)(orc_exec *e, orc_tensor *k_cache, orc_tensor *v_cache, const orc_tensor *k,
                           const orc_tensor *v, const orc_batch *bt, orc_err *err);
    /* Attention of the batch's queries: token i sees cache rows kv_base[i] + j for the allowed
     * j <= pos[i]; out [n][n_head*head_dim_v]. probs (optional, ORC_OP_ATTN_PROBS): float32
     * [n][n_head][n_keys_max], the softmax weights of each key (0 where masked). */
    orc_status (*attention)(orc_exec *e, const orc_tensor *q, const orc_tensor *k_cache, const orc_tensor *v_cache,
                            const orc_batch *bt, const orc_attn_params *ap, orc_tensor *out, orc_tensor *probs,
                            orc_err *err);
    /* out = act(gate) * up */
    orc_status (*glu)(orc_exec *e, const orc_tensor *gate, const orc_tensor *up, int64_t n, int act, orc_tensor *out,
                      orc_err *err);
    /* x = cap * tanh(x / cap) over n rows */
    orc_status (*softcap)(orc_exec *e, orc_tensor *x, int64_t n, float cap, orc_err *err);
    /* The greedy choice of each of n rows of logits x: out[i] (float32 [n][4]) = {the index of
     * the greatest finite value (the first of equal ones; -1 when none), that value (NaN when
     * none), how many values are NaN or infinite, the first such index (-1 when none)}; indices
     * are exact (rows are shorter than 2^24). The host sampler's greedy rule, on the device. */
    orc_status (*argmax)(orc_exec *e, const orc_tensor *x, int64_t n, orc_tensor *out, orc_err *err);

    /* Optional (NULL where absent): rope(q), rope(k) and kv_store(k, v) in one launch, with
     * rope's and kv_store's arithmetic (so results equal the three primitives'); with q_norm and
     * k_norm set, rms_norm(q, q_norm) and rms_norm(k, k_norm) per head first, bit-identical to
     * the rms_norm primitive. */
    orc_status (*rope_kv_store)(orc_exec *e, orc_tensor *q, orc_tensor *k, const orc_tensor *v, orc_tensor *k_cache,
                                orc_tensor *v_cache, const orc_batch *bt, int32_t n_head, int32_t n_head_kv,
                                int32_t head_dim, const orc_rope_params *rp, const orc_tensor *inv_freq,
                                const orc_tensor *q_norm, const orc_tensor *k_norm, float eps, orc_err *err);
    /* Optional: rope_kv_store (its arguments and bits), then attention (no probabilities), in one
     * launch, for the steps whose shape the backend takes (a decode step); ORC_E_UNSUPPORTED, err
     * untouched and nothing run, for the others: the caller then runs the two. q and k are left
     * as they came (not normed or rotated): for steps whose q_rope / k_rope nobody reads. */
    orc_status (*rope_attention)(orc_exec *e, const orc_tensor *q, const orc_tensor *k, const orc_tensor *v,
                                 orc_tensor *k_cache, orc_tensor *v_cache, const orc_batch *bt, const orc_rope_params *rp,
                                 const orc_tensor *inv_freq, const orc_tensor *q_norm, const orc_tensor *k_norm,
                                 float eps, const orc_attn_params *ap, orc_tensor *out, orc_err *err);

    /* Optional fused products for a few tokens (NULL where absent; a backend returns
     * ORC_E_UNSUPPORTED, err untouched, for a shape or type it has no fused kernel for, and
     * the program then runs the unfused primitives; the answer depends on shapes and types
     * only). Prologue: x' = rms_norm(x[t]) * norm_w when norm_w is set, else x[t].
     * matvec:         out[t] = W . x'[t] (+ bias) (+ res[t]); res may be out (in place).
     * matvec_glu:     out[t] = act(Wg . x'[t]) * (Wu . x'[t]).
     * matvec_glu_id:  out[t*k + j] = act(Wg[e] . x'[t] + bg[e]) * (Wu[e] . x'[t] + bu[e]), e = ids[t][j]
     *                 (biases [n_expert][rows] or NULL); with `route` (else NULL) it is moe_route's
     *                 step too: ids and route->w written with moe_route's values from route->logits.
     * matvec_slots:   out[s] = W[ids[s]] . x[s] + b[ids[s]] over the n*k slots (x per slot).
     * matvec_stack:   out[i][t] = W[i] . x'[t] (+ bias[i]) for i < count (1..3: a layer's q, k, v),
     *                 in as few launches as the matrices' types allow; all or nothing (refused
     *                 before anything runs). */
    orc_status (*matvec)(orc_exec *e, const orc_tensor *x, const orc_tensor *norm_w, float eps, const orc_tensor *w,
                         const orc_tensor *bias, const orc_tensor *res, int64_t n, orc_tensor *out, orc_err *err);
    orc_status (*matvec_glu)(orc_exec *e, const orc_tensor *x, const orc_tensor *norm_w, float eps,
                             const orc_tensor *wg, const orc_tensor *wu, int act, int64_t n, orc_tensor *out,
                             orc_err *err);
    orc_status (*matvec_glu_id)(orc_exec *e, const orc_tensor *x, const orc_tensor *norm_w, float eps,
                                const orc_tensor *wg, const orc_tensor *wu, const orc_tensor *bg, const orc_tensor *bu,
                                orc_tensor *ids, const orc_moe_route_in *route, int64_t n, int32_t k, int act,
                                orc_tensor *out, orc_err *err);
    orc_status (*matvec_slots)(orc_exec *e, const orc_tensor *x, const orc_tensor *w, const orc_tensor *b,
                               const orc_tensor *ids, int64_t n, int32_t k, orc_tensor *out, orc_err *err);
    orc_status (*matvec_stack)(orc_exec *e, const orc_tensor *x, const orc_tensor *norm_w, float eps,
                               const orc_tensor *const *w, const orc_tensor *const *bias, int32_t count, int64_t n,
                               orc_tensor *const *out, orc_err *err);

    /* ---- mixture of experts. Router: from logits [n][n_expert], the k experts of each token
     * t (ids, int32 [n][k]) and their weights (w, float32 [n][k]) by `kind` (orc_router_kind):
     * SOFTMAX_TOPK: p = softmax(logits), the k largest p, weights p (divided by their sum when
     * `norm`); TOPK_SOFTMAX: the k largest logits, weights the softmax over those k. Larger
     * first; ties: the lower expert first. */
    orc_status (*moe_route)(orc_exec *e, const orc_tensor *logits, int64_t n, int32_t k, int kind, bool norm,
                            orc_tensor *ids, orc_tensor *w, orc_err *err);
    /* out[t*k + j] = W[ids[t][j]] . x[r] for r = t (x_per_slot false) or t*k + j (true); W is an
     * experts tensor: expert e's rows are [e * out->cols, (e + 1) * out->cols). Float32
     * accumulation; float16/bfloat16 weights see inputs rounded as matmul rounds them. With
     * bias (float32 [n_expert][out->cols], or NULL): + bias[ids[t][j]], added to the float32
     * product (one rounding, as a separate add would round it). */
    orc_status (*matmul_id)(orc_exec *e, const orc_tensor *x, bool x_per_slot, const orc_tensor *w,
                            const orc_tensor *bias, const orc_tensor *ids, int64_t n, int32_t k, orc_tensor *out,
                            orc_err *err);
    /* out[t][c] = sum over j = 0..k-1 in order of w[t][j] * y[t*k + j][c], then + res[t][c]
     * when res is set (the residual add of the block, folded in: the same two roundings) */
    orc_status (*moe_combine)(orc_exec *e, const orc_tensor *y, const orc_tensor *w, int64_t n, int32_t k,
                              const orc_tensor *res, orc_tensor *out, orc_err *err);

    /* Optional (ORC_OP_GRAPHS): record the primitives queued between record_begin and
     * record_end on this exec, and replay them. */
    orc_status (*record_begin)(orc_exec *e, orc_err *err);
    orc_status (*record_end)(orc_exec *e, void **graph, orc_err *err); /* ends recording even on error */
    orc_status (*graph_launch)(orc_exec *e, void *graph, orc_err *err);
    void (*graph_free)(orc_exec *e, void *graph);

    /* Optional (NULL: the primitives run): the selected experts' FFN of a chunk in one call,
     * out[t*k + j] = Wd[e] . act(Wg[e] . x[t] + bg[e], Wu[e] . x[t] + bu[e]) + bd[e], e = ids[t][j]
     * (biases float32 [n_expert][rows] or NULL): what matmul_id, glu and matmul_id compute on this
     * backend, bit for bit, without their intermediates. ORC_E_UNSUPPORTED, before anything runs,
     * where it has no such launch for the shapes, types or settings. */
    orc_status (*moe_ffn)(orc_exec *e, const orc_tensor *x, const orc_tensor *wg, const orc_tensor *wu,
                          const orc_tensor *wd, const orc_tensor *bg, const orc_tensor *bu, const orc_tensor *bd,
                          const orc_tensor *ids, int64_t n, int32_t k, int act, orc_tensor *out, orc_err *err);
} orc_backend_ops;

struct orc_backend {
    const orc_backend_ops *ops;
};

/* Every exec starts with this header. */
struct orc_exec {
    orc_backend *be;
};

/* ------------------------------------------------------------------ registry (registry.c) */

typedef enum orc_backend_kind { ORC_BACKEND_CPU = 0, ORC_BACKEND_CUDA = 1 } orc_backend_kind;

typedef struct orc_backend_params {
    int device;               /* CUDA device index */
    int n_threads;            /* CPU: <= 0 one per online CPU */
    bool round_matmul_inputs; /* CPU: round activations to the weight dtype before matmuls, as cuBLAS does */
    bool fast;                /* weights="quantized": fused kernels on the stored blocks, flash attention */
} orc_backend_params;

orc_status orc_backend_create(orc_backend_kind kind, const orc_backend_params *p, orc_backend **out, orc_err *err);
const char *orc_backend_kind_name(orc_backend_kind kind); /* "cpu", "cuda" */
/* "cpu", "cuda", "cuda:N" -> kind and device index; "auto" -> CUDA device 0 when usable, else CPU. */
orc_status orc_backend_parse(const char *s, orc_backend_kind *kind, int *device, orc_err *err);
bool orc_backend_supports(const orc_backend *b, orc_op op);

/* The backends' constructors (registry.c calls them). */
orc_status orc_backend_cpu_create(const orc_backend_params *p, orc_backend **out, orc_err *err);
orc_status orc_backend_cuda_create(const orc_backend_params *p, orc_backend **out, orc_err *err);

#ifdef __cplusplus
}
#endif

#endif /* ORC_BACKEND_H */
