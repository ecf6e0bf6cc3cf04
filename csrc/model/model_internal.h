/* model_internal.h - the model and session structures shared by model.c (loading,
 * weights, hooks), session.c (KV cache, history, the forward driver, graphs) and
 * program.c (the layer program). Not part of the core's public API (model.h). */
#ifndef ORC_MODEL_INTERNAL_H
#define ORC_MODEL_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "model/model.h"
#include "model/tensors.h"

/* Per-primitive timing (Model(profile=True)). */
#define ORC_PROFILE_OPS(X) \
    X(GET_ROWS, "get_rows") X(RMS_NORM, "rms_norm") X(MATMUL, "matmul") X(ADD_BIAS, "add_bias") X(ADD, "add") \
    X(ROPE, "rope") X(KV_STORE, "kv_store") X(ATTENTION, "attention") X(GLU, "glu") X(SOFTCAP, "softcap")    \
    X(ARGMAX, "argmax")                                                                                     \
    X(MOE, "moe") X(DOWNLOAD, "download") X(FUSED, "fused")                    \
    X(FUSED_REFUSED, "fused_refused")
typedef enum orc_prof_op {
#define ORC_P_ENUM(op, name) ORC_P_##op,
    ORC_PROFILE_OPS(ORC_P_ENUM)
#undef ORC_P_ENUM
    ORC_P_COUNT
} orc_prof_op;

struct orc_model {
    atomic_int refs;
    pthread_mutex_t lock; /* error-checking: a callback re-entering gets EDEADLK, not a hang */
    bool closed;
    orc_model_params params;
    orc_gguf *gguf;
    orc_config cfg;
    const orc_arch_desc *desc;
    uint32_t block_opts[ORC_BLOCK_KIND_COUNT]; /* options of each block the architecture uses */
    uint32_t block_used;                       /* ORC_B_* mask */
    orc_plan plan;
    orc_backend *be;
    orc_tensor *w;             /* [plan.n_slots]: the loaded weights, zeroed where absent */
    orc_tensor rope_inv[2];    /* inverse-frequency tables: [0] global layers, [1] sliding-window layers */
    uint64_t weight_bytes, quant_bytes;
    atomic_ullong kv_bytes, scratch_bytes; /* summed over live sessions */
    orc_hook_info *hooks;
    int32_t n_hooks;
    int32_t hook_embd, hook_output_norm, hook_logits;
    int32_t *hook_index; /* [n_layer][ORC_S_COUNT], -1 where the layer has no such step */
    double prof_seconds[ORC_P_COUNT];
    uint64_t prof_calls[ORC_P_COUNT];
};

/* The weight of a role (NULL where absent). */
static inline const orc_tensor *orc_model_w(const orc_model *m, orc_tensor_slot slot, int32_t il) {
    const orc_tensor *t = &m->w[orc_plan_index(slot, il)];
    return t->data ? t : NULL;
}

/* Take the model's lock (ORC_E_STATE for a re-entrant call from the same thread). */
orc_status orc_model_lock(orc_model *m, orc_err *err);
void orc_model_unlock(orc_model *m);

struct orc_session {
    orc_model *m;
    orc_session_params p;
    atomic_int n_past0;  /* n_past[0], readable without the lock */
    int32_t *n_past;     /* [n_seq] */
    int32_t *history;    /* [n_seq][n_ctx] */
    bool closed;
    orc_exec *ex;
    orc_tensor *kc, *vc; /* per layer: [n_seq * n_ctx][n_head_kv * head_dim(_v)] */
    /* scratch, n_batch rows each */
    orc_tensor x, xn, q, k, v, att, proj, gate, up, act, logits, lrows;
    orc_tensor greedy; /* [LOGITS_ROWS][ORC_ARGMAX_FLOATS]: the logits rows' argmax (logits "argmax") */
    /* mixture-of-experts scratch: router logits [B][n_expert], the selected experts and their
     * weights [B][k], per-slot gate/up/act [B*k][n_ff_exp] and outputs [B*k][n_embd] */
    orc_tensor router, topk_ids, topk_w, egate, eup, eact, ey;
    /* step inputs (int32 [n_batch]) and their host staging */
    orc_tensor in_ids, in_pos, in_row, in_base, in_lidx;
    int32_t *h_ids, *h_pos, *h_row, *h_base, *h_lidx, *h_runs;
    uint64_t kv_bytes, scratch_bytes;
    /* The recorded one-token steps (backends with graphs): [0] returns the logits, [1] their argmax. */
    void *graph[2];
    int eager_steps; /* one-token steps run eagerly before the recording */
    bool graph_failed;
    const char *last_path;
};

/* One chunk of a forward pass through the layer program. */
typedef struct orc_fwd {
    orc_session *s;
    orc_batch bt;               /* this chunk's inputs */
    const orc_capture *cap;
    const orc_patch *patch;
    int64_t row0;               /* row of the capture/patch buffers this chunk starts at */
    int64_t call_keys;          /* per_key hooks' key range for the whole call */
    /* Logits: rows lrow[j] (chunk-relative) go to logits + ldst[j] * n_vocab (ldst < 0: not
     * downloaded, computed for the logits hook), j < n_lrows.
     * Contiguous ranges are taken straight from the final norm's rows, others gathered. */
    const int32_t *lrow, *ldst;
    int64_t n_lrows;
    bool lrows_contiguous;
    float *logits;              /* n_vocab floats a row, or ORC_ARGMAX_FLOATS with `argmax` */
    bool argmax;                /* reduce each row to its argmax (ORC_LOGITS_ARGMAX) before the download */
    bool keep_logits;           /* leave the logits on the device (a recorded step) */
    bool norm_in_logits;        /* the final norm is fused into the output product */
    orc_cancel_fn cancel;
    void *user;
    orc_err *err;
} orc_fwd;

orc_status orc_program_run(orc_fwd *f);

#endif /* ORC_MODEL_INTERNAL_H */
