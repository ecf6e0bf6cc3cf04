/* model.h - a loaded model (weights on a backend) and sessions over it (KV cache, token
 * history, forward passes, hook points, activation patches). The layer program is
 * written once, in program.c, over the primitives of backend/backend.h.
 *
 * Threads: every call that touches a model's backend (load excepted) holds the model's
 * lock, so calls on one model — through any of its sessions — run one at a time, in
 * whichever order they arrive. Callers that hold another lock the forward's callbacks
 * need (Python's GIL) must release it before calling. A callback (cancel, progress,
 * patch) that calls back into the same model gets ORC_E_STATE instead of a deadlock. */
#ifndef ORC_MODEL_H
#define ORC_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "backend/backend.h"
#include "core/dtype.h"
#include "core/orc.h"
#include "gguf/gguf.h"
#include "model/arch.h"
#include "model/steps.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Polled between layers and tensors: return nonzero to stop with ORC_E_INTERRUPTED
 * (the binding checks for Ctrl-C here). */
typedef int (*orc_cancel_fn)(void *user);
/* Progress of a load: done of total bytes. */
typedef void (*orc_progress_fn)(void *user, uint64_t done, uint64_t total);

/* How matrix weights are kept on the device. */
typedef enum orc_weights_mode {
    ORC_WEIGHTS_DEQUANTIZED = 0, /* dequantized once at load into `dtype`: the reference path */
    ORC_WEIGHTS_QUANTIZED = 1,   /* kept as their GGUF blocks; products dequantize on the fly */
} orc_weights_mode;
const char *orc_weights_mode_name(orc_weights_mode w); /* "dequantized", "quantized" */
orc_status orc_weights_mode_parse(const char *s, orc_weights_mode *out, orc_err *err);

typedef struct orc_model_params {
    orc_backend_kind backend;
    int device;               /* CUDA device index */
    bool dtype_set;           /* false: the backend's default (CPU float32, CUDA float16) */
    orc_dtype dtype;          /* weight storage: F32, F16 or BF16 */
    orc_weights_mode weights;
    int n_threads;            /* CPU backend; <= 0: all cores; at most ORC_MAX_THREADS */
    int round_matmul_inputs;  /* CPU: round activations to the weight dtype before matmuls as cuBLAS
                                 does; < 0: the default (on for float16/bfloat16 weights on the CPU) */
    bool yarn_ggml;           /* YaRN's correction range rounded as ggml does (default: HF's, unrounded) */
    bool fault_raw_as_f16;    /* test-only: quantized weights used as float16 without dequantization */
    bool profile;             /* time each primitive of the forward pass (slows it: syncs around each) */
    orc_cancel_fn cancel;
    orc_progress_fn progress;
    void *user;
} orc_model_params;

#define ORC_MAX_THREADS 1024

void orc_model_params_init(orc_model_params *p); /* CPU, defaults everywhere */

typedef struct orc_model orc_model;

/* Open `path` and load it. The model keeps the file open (mapped) for as long as it lives:
 * orc_model_gguf() hands it to readers that need the metadata or stored bytes. */
orc_status orc_model_load(const char *path, const orc_model_params *p, orc_model **out, orc_err *err);
/* Free the weights now (waits for a call in progress); the model object lives on (marked
 * closed) while sessions hold it. */
void orc_model_close(orc_model *m);
bool orc_model_is_closed(const orc_model *m);
void orc_model_retain(orc_model *m);
void orc_model_release(orc_model *m); /* NULL is fine; frees at the last release */

const orc_config *orc_model_config(const orc_model *m);
const orc_arch_desc *orc_model_arch(const orc_model *m);
orc_gguf *orc_model_gguf(const orc_model *m); /* retained by the caller with orc_gguf_retain */
orc_backend_kind orc_model_backend(const orc_model *m);
int orc_model_device(const orc_model *m);
orc_dtype orc_model_dtype(const orc_model *m);
orc_weights_mode orc_model_weights(const orc_model *m);
bool orc_model_round_matmul_inputs(const orc_model *m);
const char *orc_model_backend_name(const orc_model *m);

/* The weight `name` as the backend stores it, converted to float32; shape in GGUF order. */
orc_status orc_model_tensor_shape(orc_model *m, const char *name, int64_t ne[3], int *n_dims, orc_err *err);
orc_status orc_model_tensor_f32(orc_model *m, const char *name, float *out, orc_err *err);

/* Profile entry i (0 <= i < the returned count): primitive name, calls, seconds; reset
 * zeroes the entry after reading it. */
int32_t orc_model_profile(orc_model *m, int32_t i, const char **name, uint64_t *calls, double *seconds, bool reset);

typedef struct orc_memory_report {
    uint64_t weights, quantized, kv_cache, scratch, total;
} orc_memory_report;
void orc_model_memory(const orc_model *m, orc_memory_report *r);

/* ---------------------------------------------------------------- hook points
 * Names of the activations a forward pass can hand back, in execution order:
 * "embd", per layer "blk.<i>.<step>" (steps.h), then "output_norm", "logits". */
typedef struct orc_hook_info {
    char name[40];
    int64_t width;    /* floats per token (per key for per_key hooks) */
    int32_t heads, head_dim; /* per-head hooks: (heads, head_dim); else 0, 0 */
    int32_t layer;    /* -1 outside the layers */
    int32_t step;     /* orc_step, or -1 for embd/output_norm/logits */
    bool on_request;  /* costs extra work, computed only when captured */
    bool per_key;     /* attn_probs: a row is [heads][keys], keys = the call's key range */
    bool index;       /* the values are indices (moe_topk_ids) */
} orc_hook_info;

int32_t orc_model_n_hooks(const orc_model *m);
const orc_hook_info *orc_model_hook(const orc_model *m, int32_t index); /* NULL out of range */

/* Where a forward pass writes captured activations: for hook i, dst[i] is NULL (not
 * captured) or a host float32 buffer of n_tokens * row width (per_key hooks: width *
 * keys, with keys >= the call's key range, orc_session_call_keys; the call fails if the
 * session moved on meanwhile). Captured values are taken after patches. */
typedef struct orc_capture {
    float **dst;
    int32_t n_hooks;
    int64_t keys; /* the key range per_key buffers were sized for (>= the call's; the row stride) */
} orc_capture;

/* Activation patches: for hook i, replace[i] (host float32, n_tokens * width, or NULL)
 * replaces the activation before the forward continues; fn, when set, is called for every
 * patched hook (replace[i] == NULL and want[i]) with the activation rows [row0, row0 + n)
 * of the call, which it may modify in place. */
typedef orc_status (*orc_patch_fn)(void *user, int32_t hook, int64_t row0, int64_t n, int64_t width, float *data,
                                   orc_err *err);
typedef struct orc_patch {
    const float **replace;
    const bool *want; /* hooks handed to fn */
    int32_t n_hooks;
    orc_patch_fn fn;
    void *user;
} orc_patch;

/* ---------------------------------------------------------------- sessions */

typedef struct orc_session orc_session;

/* ARGMAX: the rows LAST would return, each reduced on the backend to ORC_ARGMAX_FLOATS floats
 * (the argmax primitive's {index, value, non-finite count, first non-finite index}): a greedy
 * step moves 16 bytes instead of n_vocab floats. */
typedef enum orc_logits_mode {
    ORC_LOGITS_NONE = 0,
    ORC_LOGITS_LAST = 1,
    ORC_LOGITS_ALL = 2,
    ORC_LOGITS_ARGMAX = 3
} orc_logits_mode;
#define ORC_ARGMAX_FLOATS 4

typedef struct orc_session_params {
    int32_t n_ctx;       /* positions per sequence */
    int32_t n_batch;     /* tokens per chunk of a long forward (<= n_ctx * n_seq) */
    int32_t n_seq;       /* sequences (1; forward_batch uses more) */
    bool kv_dtype_set;   /* false: the backend's default (CPU float32, CUDA float16) */
    orc_dtype kv_dtype;  /* F32, F16 or BF16 */
    bool graphs;         /* replay one-token steps as a recorded graph where the backend can */
} orc_session_params;

void orc_session_params_init(orc_session_params *p);

orc_status orc_session_create(orc_model *m, const orc_session_params *p, orc_session **out, orc_err *err);
/* Free the KV cache and scratch now (waits for a call in progress); the object stays valid
 * (every call then fails with ORC_E_STATE) until orc_session_free. */
void orc_session_close(orc_session *s);
void orc_session_free(orc_session *s); /* NULL is fine */
bool orc_session_is_closed(const orc_session *s);
orc_status orc_session_fork(orc_session *s, orc_session **out, orc_err *err);

int32_t orc_session_n_past(const orc_session *s); /* tokens of sequence 0 */
int32_t orc_session_n_ctx(const orc_session *s);
orc_dtype orc_session_kv_dtype(const orc_session *s);
bool orc_session_graphs(const orc_session *s); /* graphs asked for and not given up on */
/* Copy the token history of sequence 0 (n_past ids, oldest first) into out[cap]; returns n_past. */
orc_status orc_session_history(orc_session *s, int32_t *out, int32_t cap, int32_t *n, orc_err *err);
orc_status orc_session_rewind(orc_session *s, int32_t n, orc_err *err); /* drop the last n tokens */
orc_status orc_session_reset(orc_session *s, orc_err *err);
/* Keys a query of this call can see at most: n_past + n (the width of per_key hooks). */
int64_t orc_session_call_keys(const orc_session *s, int32_t n);

/* Run n tokens of sequence 0 at positions n_past.. and append them to the cache and the
 * history. Logits: ALL writes n * n_vocab floats, LAST n_vocab, ARGMAX ORC_ARGMAX_FLOATS, NONE nothing. `cap` and
 * `patch` may be NULL. On any error the session is left as it was before the call. */
orc_status orc_session_forward(orc_session *s, const int32_t *ids, int32_t n, orc_logits_mode mode, float *logits,
                               const orc_capture *cap, const orc_patch *patch, orc_cancel_fn cancel, void *user,
                               orc_err *err);

/* Run n_seq sequences from position 0 together, in a session made with n_seq >= that many
 * (its sequences are reset first): ids holds them one after the other, lens[i] tokens each.
 * Logits: ALL -> [sum lens][n_vocab] in the same order; LAST -> [n_seq][n_vocab]; ARGMAX ->
 * [n_seq][ORC_ARGMAX_FLOATS]. Captures
 * are indexed by the concatenated token order (per_key widths: max lens). */
orc_status orc_session_forward_batch(orc_session *s, const int32_t *ids, const int32_t *lens, int32_t n_seq,
                                     orc_logits_mode mode, float *logits, const orc_capture *cap,
                                     orc_cancel_fn cancel, void *user, orc_err *err);

/* How the last forward ran: graph replay, or why not ("eager: captured hooks", ...). Static text. */
const char *orc_session_last_path(const orc_session *s);

#ifdef __cplusplus
}
#endif

#endif /* ORC_MODEL_H */
