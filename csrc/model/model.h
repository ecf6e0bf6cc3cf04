/* model.h - a loaded model (weights on a backend) and sessions over it (KV cache,
 * forward passes, hook points). The decoder-layer program is written once, in
 * model.c, over the primitives of backend.h. */
#ifndef ORC_MODEL_H
#define ORC_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "model/arch.h"
#include "backend/backend.h"
#include "gguf/gguf.h"
#include "core/orc.h"
#include "quant/quant.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum orc_device_kind { ORC_DEVICE_CPU = 0, ORC_DEVICE_CUDA = 1 } orc_device_kind;

/* Polled between layers and tensors: return nonzero to stop with ORC_E_INTERRUPTED
 * (the binding checks for Ctrl-C here). */
typedef int (*orc_cancel_fn)(void *user);
/* Progress of a load: done of total bytes. */
typedef void (*orc_progress_fn)(void *user, uint64_t done, uint64_t total);

typedef struct orc_model_params {
    orc_device_kind device;
    int cuda_device;
    orc_dtype dtype;        /* weight storage: F32, F16 or BF16 */
    bool keep_quantized;    /* CUDA: keep the stored blocks on the device too */
    int n_threads;          /* CPU backend; <= 0: all cores */
    bool round_matmul_inputs; /* CPU: round activations to the weight dtype before matmuls, as cuBLAS does */
    bool fault_raw_as_f16;  /* test-only: quantized weights used as float16 without dequantization */
    bool profile;           /* time each primitive of the forward pass (slows it: syncs around each) */
    orc_cancel_fn cancel;
    orc_progress_fn progress;
    void *user;
} orc_model_params;

typedef struct orc_model orc_model;

orc_status orc_model_load(const char *path, const orc_model_params *p, orc_model **out, orc_err *err);
/* Free the weights now; the model object lives on (marked closed) while sessions hold it. */
void orc_model_close(orc_model *m);
bool orc_model_is_closed(const orc_model *m);
void orc_model_retain(orc_model *m);
void orc_model_release(orc_model *m); /* NULL is fine; frees at the last release */

const orc_config *orc_model_config(const orc_model *m);
const orc_gguf *orc_model_gguf(const orc_model *m);
orc_device_kind orc_model_device(const orc_model *m);
orc_dtype orc_model_dtype(const orc_model *m);
const char *orc_model_backend_name(const orc_model *m);

/* The weight `name` as the backend stores it, converted to float32 [rows*cols]. */
orc_status orc_model_tensor_shape(const orc_model *m, const char *name, int64_t *rows, int64_t *cols, orc_err *err);
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
 * "embd", per layer "blk.<i>.<step>", then "output_norm", "logits". */
int32_t orc_model_n_hooks(const orc_model *m);
/* name, elements per token, and (heads, head_dim) for per-head hooks (else 0, 0). */
orc_status orc_model_hook_info(const orc_model *m, int32_t index, char *name, size_t name_size, int64_t *width,
                               int32_t *heads, int32_t *head_dim);

/* Where a forward pass writes captured activations: for hook i, dst[i] is NULL (not
 * captured) or a host float32 buffer of n_tokens * width elements. */
typedef struct orc_capture {
    float **dst;
    int32_t n_hooks;
} orc_capture;

/* ---------------------------------------------------------------- sessions */

typedef struct orc_session orc_session;

typedef enum orc_logits_mode { ORC_LOGITS_NONE = 0, ORC_LOGITS_LAST = 1, ORC_LOGITS_ALL = 2 } orc_logits_mode;

typedef struct orc_session_params {
    int32_t n_ctx;
    int32_t n_batch;    /* tokens per chunk of a long forward (<= n_ctx) */
    orc_dtype kv_dtype; /* F32, F16 or BF16 */
    bool graphs;        /* replay one-token steps as a recorded graph where the backend can */
} orc_session_params;

orc_status orc_session_create(orc_model *m, const orc_session_params *p, orc_session **out, orc_err *err);
void orc_session_free(orc_session *s); /* NULL is fine */
orc_status orc_session_fork(orc_session *s, orc_session **out, orc_err *err);

int32_t orc_session_n_past(const orc_session *s);
int32_t orc_session_n_ctx(const orc_session *s);
orc_status orc_session_rewind(orc_session *s, int32_t n, orc_err *err); /* drop the last n tokens */
void orc_session_reset(orc_session *s);

/* Run n tokens at positions n_past.. and append them to the cache. Logits: ALL writes
 * n * n_vocab floats, LAST n_vocab, NONE nothing. `cap` may be NULL. On any error the
 * session is left as it was before the call (n_past unchanged). */
orc_status orc_session_forward(orc_session *s, const int32_t *ids, int32_t n, orc_logits_mode mode, float *logits,
                               const orc_capture *cap, orc_cancel_fn cancel, void *user, orc_err *err);

#ifdef __cplusplus
}
#endif

#endif /* ORC_MODEL_H */
