/* model.c - loading weights onto a backend, the decoder-layer program with its
 * hook points, and sessions (KV cache, chunked forward, fork/rewind).
 *
 * The program below is the only description of the architectures' forward
 * pass in orc: both backends run it, so CPU-vs-GPU comparisons test the
 * primitives, and the hook points name the same steps on both. */
#include "model/model.h"

#include <math.h>
#include <stdatomic.h>
#include <time.h> /* clock_gettime */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/ggml_types.h"
#include "backend/gpu.h"

/* Steps of one decoder layer, in execution order; names as in ../shared/DESIGN.md. */
enum hook_step {
    H_ATTN_NORM, H_Q, H_K, H_V, H_Q_NORM, H_K_NORM, H_Q_ROPE, H_K_ROPE, H_ATTN_OUT, H_ATTN_PROJ,
    H_ATTN_POST_NORM, H_RESID_MID, H_FFN_NORM, H_FFN_GATE, H_FFN_UP, H_FFN_ACT, H_FFN_OUT,
    H_FFN_POST_NORM, H_RESID_POST, H_STEP_COUNT
};
static const char *const k_step_names[H_STEP_COUNT] = {
    "attn_norm", "q", "k", "v", "q_norm", "k_norm", "q_rope", "k_rope", "attn_out", "attn_proj",
    "attn_post_norm", "resid_mid", "ffn_norm", "ffn_gate", "ffn_up", "ffn_act", "ffn_out",
    "ffn_post_norm", "resid_post",
};

/* Per-primitive timing (Model(profile=True)): each op is bracketed by backend syncs,
 * so the numbers include launch and synchronisation costs and slow the run down; they
 * say where the time goes, not how fast an unprofiled run is. */
enum prof_op { P_GET_ROWS, P_RMS_NORM, P_MATMUL, P_ADD_BIAS, P_ADD, P_ROPE, P_KV_STORE, P_ATTENTION, P_GLU,
               P_SOFTCAP, P_DOWNLOAD, P_OP_COUNT };
static const char *const k_prof_names[P_OP_COUNT] = {"get_rows", "rms_norm", "matmul", "add_bias", "add", "rope",
                                                     "kv_store", "attention", "glu", "softcap", "download"};

typedef struct hook_info {
    char name[32];
    int64_t width;
    int32_t heads, head_dim;
} hook_info;

/* One loaded weight: where it came from and where it lives. */
typedef struct weight {
    const orc_gguf_tensor *src;
    orc_tensor t;
} weight;

typedef struct layer_weights {
    orc_tensor *attn_norm, *wq, *wk, *wv, *bq, *bk, *bv, *q_norm, *k_norm, *wo, *attn_post_norm;
    orc_tensor *ffn_norm, *w_gate, *w_up, *w_down, *ffn_post_norm;
} layer_weights;

struct orc_model {
    atomic_int refs;
    bool closed;
    orc_model_params params;
    orc_gguf *gguf;
    orc_config cfg;
    orc_tensor_plan plan;
    orc_backend *be;
    weight *weights;
    int32_t n_weights;
    orc_tensor *tok_embd, *output_norm, *output, *rope_freqs;
    layer_weights *layers;
    uint64_t weight_bytes, quant_bytes;
    atomic_ullong kv_bytes, scratch_bytes; /* summed over live sessions */
    hook_info *hooks;
    int32_t n_hooks;
    int32_t hook_embd, hook_output_norm, hook_logits;
    int32_t *hook_index; /* [n_layer][H_STEP_COUNT], -1 where the architecture has no such step */
    double prof_seconds[P_OP_COUNT];
    uint64_t prof_calls[P_OP_COUNT];
};

/* --------------------------------------------------------------------------- loading */

static orc_tensor *load_weight(orc_model *m, const orc_gguf_tensor *src, orc_dtype dtype, orc_err *err,
                               orc_status *st) {
    if (!src) return NULL;
    weight *w = &m->weights[m->n_weights];
    w->src = src;
    const int64_t cols = src->ne[0], rows = src->n_elements / src->ne[0];
    *st = m->be->ops->alloc(m->be, &w->t, dtype, rows, cols, src->name_z, err);
    if (*st != ORC_OK) return NULL;
    m->n_weights++; /* counted now, so a failure below still frees it */
    bool fault = m->params.fault_raw_as_f16 && src->type != ORC_TYPE_F32 && src->type != ORC_TYPE_F16 &&
                 src->type != ORC_TYPE_BF16 && rows > 1;
    *st = m->be->ops->upload_weight(m->be, &w->t, src->type, src->data, src->nbytes, fault, err);
    if (*st != ORC_OK) {
        orc_err_prefix(err, "loading tensor '%s': ", src->name_z);
        return NULL;
    }
    m->weight_bytes += w->t.nbytes;
    m->quant_bytes += w->t.quant_bytes;
    return &w->t;
}

static orc_status build_hooks(orc_model *m, orc_err *err) {
    const orc_config *c = &m->cfg;
    const int32_t E = c->n_embd, F = c->n_ff;
    int32_t n = 3 + c->n_layer * H_STEP_COUNT;
    m->hooks = calloc((size_t)n, sizeof *m->hooks);
    m->hook_index = malloc((size_t)c->n_layer * H_STEP_COUNT * sizeof *m->hook_index);
    if (!m->hooks || !m->hook_index) return orc_fail(err, ORC_E_NOMEM, "allocating the hook table");
    int32_t k = 0;
#define ADD(fmt_name, w, h, d)                                        \
    do {                                                              \
        hook_info *hi = &m->hooks[k];                                 \
        snprintf(hi->name, sizeof hi->name, "%s", fmt_name);          \
        hi->width = (w);                                              \
        hi->heads = (h);                                              \
        hi->head_dim = (d);                                           \
        k++;                                                          \
    } while (0)
    m->hook_embd = k;
    ADD("embd", E, 0, 0);
    for (int32_t il = 0; il < c->n_layer; il++) {
        for (int s = 0; s < H_STEP_COUNT; s++) {
            int64_t w = E;
            int32_t h = 0, d = 0;
            bool present = true;
            switch (s) {
            case H_Q: case H_Q_NORM: case H_Q_ROPE: h = c->n_head; d = c->head_dim; break;
            case H_K: case H_K_NORM: case H_K_ROPE: h = c->n_head_kv; d = c->head_dim; break;
            case H_V: h = c->n_head_kv; d = c->head_dim_v; break;
            case H_ATTN_OUT: h = c->n_head; d = c->head_dim_v; break;
            case H_FFN_GATE: case H_FFN_UP: case H_FFN_ACT: w = F; break;
            default: break;
            }
            if (h) w = (int64_t)h * d;
            if ((s == H_Q_NORM || s == H_K_NORM) && !c->qk_norm) present = false;
            if ((s == H_ATTN_POST_NORM || s == H_FFN_POST_NORM) && !c->post_norms) present = false;
            m->hook_index[il * H_STEP_COUNT + s] = present ? k : -1;
            if (present) {
                char nm[32];
                snprintf(nm, sizeof nm, "blk.%d.%s", (int)il, k_step_names[s]);
                ADD(nm, w, h, d);
            }
        }
    }
    m->hook_output_norm = k;
    ADD("output_norm", E, 0, 0);
    m->hook_logits = k;
    ADD("logits", c->n_vocab, 0, 0);
#undef ADD
    m->n_hooks = k;
    return ORC_OK;
}

static void free_weights(orc_model *m) {
    if (m->weights && m->be) {
        for (int32_t i = 0; i < m->n_weights; i++) m->be->ops->free(m->be, &m->weights[i].t);
    }
    free(m->weights);
    m->weights = NULL;
    m->n_weights = 0;
    free(m->layers);
    m->layers = NULL;
    m->tok_embd = m->output_norm = m->output = m->rope_freqs = NULL;
    m->weight_bytes = m->quant_bytes = 0;
}

static void model_destroy(orc_model *m) {
    free_weights(m);
    if (m->be) m->be->ops->destroy(m->be);
    orc_tensor_plan_free(&m->plan);
    orc_gguf_close(m->gguf);
    free(m->hooks);
    free(m->hook_index);
    free(m);
}

static orc_status load_all_weights(orc_model *m, orc_err *err) {
    const orc_config *c = &m->cfg;
    const orc_tensor_plan *p = &m->plan;
    const orc_dtype wd = m->params.dtype;
    orc_status st = ORC_OK;
    uint64_t total = 0, done = 0;
    for (uint64_t i = 0; i < orc_gguf_n_tensors(m->gguf); i++) total += orc_gguf_tensor_at(m->gguf, i)->nbytes;

    m->weights = calloc((size_t)(4 + 16 * (int64_t)c->n_layer), sizeof *m->weights);
    m->layers = calloc((size_t)c->n_layer, sizeof *m->layers);
    if (!m->weights || !m->layers) return orc_fail(err, ORC_E_NOMEM, "allocating the weight table");

#define LOAD(dst, src, dt)                                               \
    do {                                                                 \
        if (src) {                                                       \
            if (m->params.cancel && m->params.cancel(m->params.user))    \
                return orc_fail(err, ORC_E_INTERRUPTED, "load interrupted"); \
            (dst) = load_weight(m, (src), (dt), err, &st);               \
            if (st != ORC_OK) return st;                                 \
            done += (src)->nbytes;                                       \
            if (m->params.progress) m->params.progress(m->params.user, done, total); \
        }                                                                \
    } while (0)
    /* Norms, biases and RoPE factors stay float32 on every backend (HF keeps them so too). */
    LOAD(m->tok_embd, p->tok_embd, wd);
    for (int32_t il = 0; il < c->n_layer; il++) {
        const orc_layer_plan *P = &p->layers[il];
        layer_weights *L = &m->layers[il];
        LOAD(L->attn_norm, P->attn_norm, ORC_DTYPE_F32);
        LOAD(L->wq, P->wq, wd);
        LOAD(L->wk, P->wk, wd);
        LOAD(L->wv, P->wv, wd);
        LOAD(L->bq, P->bq, ORC_DTYPE_F32);
        LOAD(L->bk, P->bk, ORC_DTYPE_F32);
        LOAD(L->bv, P->bv, ORC_DTYPE_F32);
        LOAD(L->q_norm, P->q_norm, ORC_DTYPE_F32);
        LOAD(L->k_norm, P->k_norm, ORC_DTYPE_F32);
        LOAD(L->wo, P->wo, wd);
        LOAD(L->attn_post_norm, P->attn_post_norm, ORC_DTYPE_F32);
        LOAD(L->ffn_norm, P->ffn_norm, ORC_DTYPE_F32);
        LOAD(L->w_gate, P->w_gate, wd);
        LOAD(L->w_up, P->w_up, wd);
        LOAD(L->w_down, P->w_down, wd);
        LOAD(L->ffn_post_norm, P->ffn_post_norm, ORC_DTYPE_F32);
    }
    LOAD(m->output_norm, p->output_norm, ORC_DTYPE_F32);
    LOAD(m->output, p->output, wd);
    LOAD(m->rope_freqs, p->rope_freqs, ORC_DTYPE_F32);
#undef LOAD
    if (!m->output) m->output = m->tok_embd;
    return m->be->ops->sync(m->be, err);
}

orc_status orc_model_load(const char *path, const orc_model_params *params, orc_model **out, orc_err *err) {
    orc_status st;
    *out = NULL;
    if (params->dtype != ORC_DTYPE_F32 && params->dtype != ORC_DTYPE_F16 && params->dtype != ORC_DTYPE_BF16)
        return orc_fail(err, ORC_E_INVALID, "dtype must be float32, float16 or bfloat16");
    orc_model *m = calloc(1, sizeof *m);
    if (!m) return orc_fail(err, ORC_E_NOMEM, "allocating the model");
    atomic_init(&m->refs, 1);
    atomic_init(&m->kv_bytes, 0);
    atomic_init(&m->scratch_bytes, 0);
    m->params = *params;

    st = orc_gguf_open(path, &m->gguf, err);
    if (st != ORC_OK) goto fail;
    st = orc_config_from_gguf(m->gguf, &m->cfg, err);
    if (st != ORC_OK) goto fail;
    st = orc_tensor_plan_build(m->gguf, &m->cfg, &m->plan, err);
    if (st != ORC_OK) goto fail;
    st = build_hooks(m, err);
    if (st != ORC_OK) goto fail;
    if (params->device == ORC_DEVICE_CUDA) {
        st = orc_backend_cuda_create(params->cuda_device, params->keep_quantized, &m->be, err);
    } else {
        st = orc_backend_cpu_create(params->n_threads, &m->be, err);
        if (st == ORC_OK) orc_backend_cpu_set_round_matmul_inputs(m->be, params->round_matmul_inputs);
    }
    if (st != ORC_OK) goto fail;
    st = load_all_weights(m, err);
    if (st != ORC_OK) goto fail;
    *out = m;
    return ORC_OK;
fail:
    model_destroy(m);
    return st;
}

void orc_model_retain(orc_model *m) { atomic_fetch_add(&m->refs, 1); }

void orc_model_release(orc_model *m) {
    if (m && atomic_fetch_sub(&m->refs, 1) == 1) model_destroy(m);
}

void orc_model_close(orc_model *m) {
    if (!m || m->closed) return;
    m->closed = true;
    free_weights(m);
    if (m->be && m->be->ops->trim) m->be->ops->trim(m->be);
}

bool orc_model_is_closed(const orc_model *m) { return m->closed; }
const orc_config *orc_model_config(const orc_model *m) { return &m->cfg; }
const orc_gguf *orc_model_gguf(const orc_model *m) { return m->gguf; }
orc_device_kind orc_model_device(const orc_model *m) { return m->params.device; }
orc_dtype orc_model_dtype(const orc_model *m) { return m->params.dtype; }
const char *orc_model_backend_name(const orc_model *m) { return m->be->ops->name; }

static const weight *find_weight(const orc_model *m, const char *name) {
    for (int32_t i = 0; i < m->n_weights; i++)
        if (strcmp(m->weights[i].src->name_z, name) == 0) return &m->weights[i];
    return NULL;
}

int32_t orc_model_profile(orc_model *m, int32_t i, const char **name, uint64_t *calls, double *seconds, bool reset) {
    if (i < 0 || i >= P_OP_COUNT) return P_OP_COUNT;
    *name = k_prof_names[i];
    *calls = m->prof_calls[i];
    *seconds = m->prof_seconds[i];
    if (reset) {
        m->prof_calls[i] = 0;
        m->prof_seconds[i] = 0;
    }
    return P_OP_COUNT;
}

orc_status orc_model_tensor_shape(const orc_model *m, const char *name, int64_t *rows, int64_t *cols, orc_err *err) {
    if (m->closed) return orc_fail(err, ORC_E_STATE, "the model was closed");
    const weight *w = find_weight(m, name);
    if (!w) {
        if (orc_gguf_find_tensor(m->gguf, name))
            return orc_fail(err, ORC_E_NOT_FOUND, "tensor '%s' is in the file but not used by the %s model", name,
                            m->cfg.arch_name);
        return orc_fail(err, ORC_E_NOT_FOUND, "no tensor named '%s'", name);
    }
    *rows = w->t.rows;
    *cols = w->t.cols;
    return ORC_OK;
}

orc_status orc_model_tensor_f32(orc_model *m, const char *name, float *out, orc_err *err) {
    int64_t r, c;
    orc_status st = orc_model_tensor_shape(m, name, &r, &c, err);
    if (st != ORC_OK) return st;
    const weight *w = find_weight(m, name);
    return m->be->ops->download(m->be, &w->t, 0, r, out, err);
}

void orc_model_memory(const orc_model *m, orc_memory_report *r) {
    r->weights = m->weight_bytes;
    r->quantized = m->quant_bytes;
    r->kv_cache = atomic_load(&m->kv_bytes);
    r->scratch = atomic_load(&m->scratch_bytes);
    r->total = m->be ? m->be->ops->allocated(m->be) : 0;
}

int32_t orc_model_n_hooks(const orc_model *m) { return m->n_hooks; }

orc_status orc_model_hook_info(const orc_model *m, int32_t i, char *name, size_t name_size, int64_t *width,
                               int32_t *heads, int32_t *head_dim) {
    if (i < 0 || i >= m->n_hooks) return ORC_E_RANGE;
    snprintf(name, name_size, "%s", m->hooks[i].name);
    *width = m->hooks[i].width;
    *heads = m->hooks[i].heads;
    *head_dim = m->hooks[i].head_dim;
    return ORC_OK;
}

/* --------------------------------------------------------------------------- sessions */

struct orc_session {
    orc_model *m;
    orc_session_params p;
    int32_t n_past;
    orc_tensor *kc, *vc; /* per layer: [n_ctx][n_head_kv * head_dim(_v)] */
    /* scratch, n_batch rows each */
    orc_tensor x, xn, q, k, v, att, proj, gate, up, act, logits;
    uint64_t kv_bytes, scratch_bytes;
    /* One-token steps replayed as a recorded graph (backends that have them): the first
     * step runs graph-shaped (growing every buffer), the second records, later ones replay. */
    void *graph;
    int graph_steps;  /* one-token steps seen so far */
    bool graph_failed; /* recording failed once: stay eager */
};

#define LOGITS_ROWS 32 /* rows of logits computed at once: bounds scratch for large vocabularies */

static void session_free_buffers(orc_session *s) {
    orc_backend *be = s->m->be;
    if (be) {
        for (int32_t il = 0; s->kc && s->vc && il < s->m->cfg.n_layer; il++) {
            be->ops->free(be, &s->kc[il]);
            be->ops->free(be, &s->vc[il]);
        }
        orc_tensor *bufs[] = {&s->x, &s->xn, &s->q, &s->k, &s->v, &s->att, &s->proj, &s->gate, &s->up, &s->act,
                              &s->logits};
        for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) be->ops->free(be, bufs[i]);
    }
    free(s->kc);
    free(s->vc);
    s->kc = s->vc = NULL;
    atomic_fetch_sub(&s->m->kv_bytes, s->kv_bytes);
    atomic_fetch_sub(&s->m->scratch_bytes, s->scratch_bytes);
    s->kv_bytes = s->scratch_bytes = 0;
}

void orc_session_free(orc_session *s) {
    if (!s) return;
    if (s->graph && s->m->be && s->m->be->ops->graph_free) s->m->be->ops->graph_free(s->m->be, s->graph);
    s->graph = NULL;
    session_free_buffers(s);
    orc_model_release(s->m);
    free(s);
}

orc_status orc_session_create(orc_model *m, const orc_session_params *p, orc_session **out, orc_err *err) {
    *out = NULL;
    if (m->closed) return orc_fail(err, ORC_E_STATE, "the model was closed");
    const orc_config *c = &m->cfg;
    if (p->n_ctx <= 0) return orc_fail(err, ORC_E_INVALID, "n_ctx must be positive, got %d", (int)p->n_ctx);
    if (p->n_batch <= 0) return orc_fail(err, ORC_E_INVALID, "n_batch must be positive, got %d", (int)p->n_batch);
    if (p->kv_dtype != ORC_DTYPE_F32 && p->kv_dtype != ORC_DTYPE_F16 && p->kv_dtype != ORC_DTYPE_BF16)
        return orc_fail(err, ORC_E_INVALID, "kv_dtype must be float32, float16 or bfloat16");
    orc_session *s = calloc(1, sizeof *s);
    if (!s) return orc_fail(err, ORC_E_NOMEM, "allocating a session");
    orc_model_retain(m);
    s->m = m;
    s->p = *p;
    if (s->p.n_batch > s->p.n_ctx) s->p.n_batch = s->p.n_ctx;
    orc_backend *be = m->be;
    orc_status st = ORC_OK;
    const int64_t B = s->p.n_batch, E = c->n_embd, F = c->n_ff;
    const int64_t NQ = (int64_t)c->n_head * c->head_dim, NK = (int64_t)c->n_head_kv * c->head_dim,
                  NV = (int64_t)c->n_head_kv * c->head_dim_v, NO = (int64_t)c->n_head * c->head_dim_v;
    s->kc = calloc((size_t)c->n_layer, sizeof *s->kc);
    s->vc = calloc((size_t)c->n_layer, sizeof *s->vc);
    if (!s->kc || !s->vc) {
        st = orc_fail(err, ORC_E_NOMEM, "allocating a session");
        goto fail;
    }
    char what[64];
    for (int32_t il = 0; il < c->n_layer; il++) {
        snprintf(what, sizeof what, "the KV cache (layer %d keys)", (int)il);
        if ((st = be->ops->alloc(be, &s->kc[il], p->kv_dtype, p->n_ctx, NK, what, err)) != ORC_OK) goto fail;
        snprintf(what, sizeof what, "the KV cache (layer %d values)", (int)il);
        if ((st = be->ops->alloc(be, &s->vc[il], p->kv_dtype, p->n_ctx, NV, what, err)) != ORC_OK) goto fail;
        s->kv_bytes += s->kc[il].nbytes + s->vc[il].nbytes;
    }
    struct { orc_tensor *t; int64_t rows, cols; const char *what; } bufs[] = {
        {&s->x, B, E, "session scratch (residual)"}, {&s->xn, B, E, "session scratch (norm)"},
        {&s->q, B, NQ, "session scratch (q)"},       {&s->k, B, NK, "session scratch (k)"},
        {&s->v, B, NV, "session scratch (v)"},       {&s->att, B, NO, "session scratch (attention)"},
        {&s->proj, B, E, "session scratch (projection)"}, {&s->gate, B, F, "session scratch (ffn gate)"},
        {&s->up, B, F, "session scratch (ffn up)"},  {&s->act, B, F, "session scratch (ffn act)"},
        {&s->logits, B < LOGITS_ROWS ? B : LOGITS_ROWS, c->n_vocab, "session scratch (logits)"},
    };
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        if ((st = be->ops->alloc(be, bufs[i].t, ORC_DTYPE_F32, bufs[i].rows, bufs[i].cols, bufs[i].what, err)) != ORC_OK)
            goto fail;
        s->scratch_bytes += bufs[i].t->nbytes;
    }
    atomic_fetch_add(&m->kv_bytes, s->kv_bytes);
    atomic_fetch_add(&m->scratch_bytes, s->scratch_bytes);
    *out = s;
    return ORC_OK;
fail:
    atomic_fetch_add(&m->kv_bytes, s->kv_bytes); /* session_free_buffers subtracts them */
    atomic_fetch_add(&m->scratch_bytes, s->scratch_bytes);
    orc_session_free(s);
    return st;
}

orc_status orc_session_fork(orc_session *s, orc_session **out, orc_err *err) {
    orc_status st = orc_session_create(s->m, &s->p, out, err);
    if (st != ORC_OK) return st;
    orc_backend *be = s->m->be;
    for (int32_t il = 0; il < s->m->cfg.n_layer && s->n_past > 0; il++) {
        if ((st = be->ops->copy_rows(be, &s->kc[il], 0, &(*out)->kc[il], 0, s->n_past, err)) != ORC_OK) break;
        if ((st = be->ops->copy_rows(be, &s->vc[il], 0, &(*out)->vc[il], 0, s->n_past, err)) != ORC_OK) break;
    }
    if (st == ORC_OK) st = be->ops->sync(be, err);
    if (st != ORC_OK) {
        orc_session_free(*out);
        *out = NULL;
        return st;
    }
    (*out)->n_past = s->n_past;
    return ORC_OK;
}

int32_t orc_session_n_past(const orc_session *s) { return s->n_past; }
int32_t orc_session_n_ctx(const orc_session *s) { return s->p.n_ctx; }
void orc_session_reset(orc_session *s) { s->n_past = 0; }

orc_status orc_session_rewind(orc_session *s, int32_t n, orc_err *err) {
    if (n < 0 || n > s->n_past)
        return orc_fail(err, ORC_E_RANGE, "cannot rewind %d tokens: the session holds %d", (int)n, (int)s->n_past);
    s->n_past -= n;
    return ORC_OK;
}

/* The forward pass of one chunk of n <= n_batch tokens at positions pos0... */
typedef struct fwd {
    orc_session *s;
    const orc_capture *cap;
    int64_t cap_row0; /* row of the capture buffers this chunk starts at */
    bool keep_logits; /* leave the last row's logits in s->logits (graph steps download them after) */
    orc_err *err;
} fwd;

static orc_status hook(fwd *f, int32_t index, const orc_tensor *t, int64_t n) {
    if (!f->cap || index < 0 || index >= f->cap->n_hooks || !f->cap->dst[index]) return ORC_OK;
    orc_backend *be = f->s->m->be;
    return be->ops->download(be, t, 0, n, f->cap->dst[index] + f->cap_row0 * t->cols, f->err);
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#define CHECK(call)                        \
    do {                                   \
        orc_status st_ = (call);           \
        if (st_ != ORC_OK) return st_;     \
    } while (0)
/* CHECK, timed when profiling. */
#define OP(kind, call)                                                    \
    do {                                                                  \
        if (m->params.profile) {                                          \
            CHECK(be->ops->sync(be, err));                                \
            double t0_ = now_seconds();                                   \
            CHECK(call);                                                  \
            CHECK(be->ops->sync(be, err));                                \
            m->prof_seconds[kind] += now_seconds() - t0_;                 \
            m->prof_calls[kind]++;                                        \
        } else {                                                          \
            CHECK(call);                                                  \
        }                                                                 \
    } while (0)
#define HOOK(step, t) CHECK(hook(f, m->hook_index[il * H_STEP_COUNT + (step)], (t), n))

static orc_status forward_chunk(fwd *f, const int32_t *ids, int64_t n, int64_t pos0, orc_logits_mode mode,
                                float *logits, orc_cancel_fn cancel, void *user) {
    orc_session *s = f->s;
    orc_model *m = s->m;
    orc_backend *be = m->be;
    const orc_backend_ops *o = be->ops;
    const orc_config *c = &m->cfg;
    orc_err *err = f->err;

    OP(P_GET_ROWS, o->get_rows(be, m->tok_embd, ids, n, c->embd_scale, &s->x, err));
    CHECK(hook(f, m->hook_embd, &s->x, n));
    for (int32_t il = 0; il < c->n_layer; il++) {
        const layer_weights *L = &m->layers[il];
        const bool swa = orc_config_layer_swa(c, il);
        const orc_rope_params rp = {
            .n_rot = c->n_rot,
            .neox = c->rope_kind == ORC_ROPE_NEOX,
            .base = swa ? c->rope_base_swa : c->rope_base,
            .freq_scale = swa ? c->rope_freq_scale_swa : c->rope_freq_scale,
            .freq_factors = swa ? NULL : m->rope_freqs,
        };
        const orc_attn_params ap = {
            .n_head = c->n_head, .n_head_kv = c->n_head_kv, .head_dim = c->head_dim, .head_dim_v = c->head_dim_v,
            .scale = c->attn_scale, .softcap = c->attn_softcap, .window = swa ? c->sliding_window : 0,
        };
        /* attention */
        OP(P_RMS_NORM, o->rms_norm(be, &s->x, L->attn_norm, n, c->n_embd, c->rms_eps, &s->xn, err));
        HOOK(H_ATTN_NORM, &s->xn);
        OP(P_MATMUL, o->matmul(be, &s->xn, L->wq, n, &s->q, err));
        if (L->bq) OP(P_ADD_BIAS, o->add_bias(be, &s->q, L->bq, n, err));
        HOOK(H_Q, &s->q);
        OP(P_MATMUL, o->matmul(be, &s->xn, L->wk, n, &s->k, err));
        if (L->bk) OP(P_ADD_BIAS, o->add_bias(be, &s->k, L->bk, n, err));
        HOOK(H_K, &s->k);
        OP(P_MATMUL, o->matmul(be, &s->xn, L->wv, n, &s->v, err));
        if (L->bv) OP(P_ADD_BIAS, o->add_bias(be, &s->v, L->bv, n, err));
        HOOK(H_V, &s->v);
        if (c->qk_norm) {
            OP(P_RMS_NORM, o->rms_norm(be, &s->q, L->q_norm, n, c->head_dim, c->rms_eps, &s->q, err));
            HOOK(H_Q_NORM, &s->q);
            OP(P_RMS_NORM, o->rms_norm(be, &s->k, L->k_norm, n, c->head_dim, c->rms_eps, &s->k, err));
            HOOK(H_K_NORM, &s->k);
        }
        OP(P_ROPE, o->rope(be, &s->q, n, c->n_head, c->head_dim, pos0, &rp, err));
        HOOK(H_Q_ROPE, &s->q);
        OP(P_ROPE, o->rope(be, &s->k, n, c->n_head_kv, c->head_dim, pos0, &rp, err));
        HOOK(H_K_ROPE, &s->k);
        OP(P_KV_STORE, o->kv_store(be, &s->kc[il], &s->vc[il], &s->k, &s->v, n, pos0, err));
        OP(P_ATTENTION, o->attention(be, &s->q, &s->kc[il], &s->vc[il], n, pos0, &ap, &s->att, err));
        HOOK(H_ATTN_OUT, &s->att);
        OP(P_MATMUL, o->matmul(be, &s->att, L->wo, n, &s->proj, err));
        HOOK(H_ATTN_PROJ, &s->proj);
        if (c->post_norms) {
            OP(P_RMS_NORM, o->rms_norm(be, &s->proj, L->attn_post_norm, n, c->n_embd, c->rms_eps, &s->proj, err));
            HOOK(H_ATTN_POST_NORM, &s->proj);
        }
        OP(P_ADD, o->add(be, &s->x, &s->proj, n, &s->x, err));
        HOOK(H_RESID_MID, &s->x);
        /* feed-forward */
        OP(P_RMS_NORM, o->rms_norm(be, &s->x, L->ffn_norm, n, c->n_embd, c->rms_eps, &s->xn, err));
        HOOK(H_FFN_NORM, &s->xn);
        OP(P_MATMUL, o->matmul(be, &s->xn, L->w_gate, n, &s->gate, err));
        HOOK(H_FFN_GATE, &s->gate);
        OP(P_MATMUL, o->matmul(be, &s->xn, L->w_up, n, &s->up, err));
        HOOK(H_FFN_UP, &s->up);
        OP(P_GLU, o->glu(be, &s->gate, &s->up, n, c->act == ORC_ACT_GELU_TANH ? ORC_BACKEND_ACT_GELU_TANH
                                                                        : ORC_BACKEND_ACT_SILU, &s->act, err));
        HOOK(H_FFN_ACT, &s->act);
        OP(P_MATMUL, o->matmul(be, &s->act, L->w_down, n, &s->proj, err));
        HOOK(H_FFN_OUT, &s->proj);
        if (c->post_norms) {
            OP(P_RMS_NORM, o->rms_norm(be, &s->proj, L->ffn_post_norm, n, c->n_embd, c->rms_eps, &s->proj, err));
            HOOK(H_FFN_POST_NORM, &s->proj);
        }
        OP(P_ADD, o->add(be, &s->x, &s->proj, n, &s->x, err));
        HOOK(H_RESID_POST, &s->x);
        if (cancel && cancel(user)) return orc_fail(err, ORC_E_INTERRUPTED, "forward interrupted at layer %d", (int)il);
    }
    OP(P_RMS_NORM, o->rms_norm(be, &s->x, m->output_norm, n, c->n_embd, c->rms_eps, &s->xn, err));
    CHECK(hook(f, m->hook_output_norm, &s->xn, n));

    /* Logits, a few rows at a time: rows r0..n-1 (only the last row in LAST mode). */
    const bool cap_logits = f->cap && f->cap->dst[m->hook_logits];
    int64_t r0 = (mode == ORC_LOGITS_ALL || cap_logits) ? 0 : n - 1;
    if (mode == ORC_LOGITS_NONE && !cap_logits) r0 = n;
    for (int64_t r = r0; r < n; r += s->logits.rows) {
        int64_t k = n - r < s->logits.rows ? n - r : s->logits.rows;
        orc_tensor xin = orc_tensor_rows(&s->xn, r, k);
        OP(P_MATMUL, o->matmul(be, &xin, m->output, k, &s->logits, err));
        if (c->final_softcap > 0) OP(P_SOFTCAP, o->softcap(be, &s->logits, k, c->final_softcap, err));
        if (cap_logits)
            OP(P_DOWNLOAD, o->download(be, &s->logits, 0, k, f->cap->dst[m->hook_logits] + (f->cap_row0 + r) * c->n_vocab, err));
        if (f->keep_logits) continue; /* graph steps download after the replay */
        if (mode == ORC_LOGITS_ALL) OP(P_DOWNLOAD, o->download(be, &s->logits, 0, k, logits + r * c->n_vocab, err));
        if (mode == ORC_LOGITS_LAST && r + k == n)
            OP(P_DOWNLOAD, o->download(be, &s->logits, k - 1, 1, logits, err));
    }
    return ORC_OK;
}
#undef HOOK
#undef CHECK

/* One token, logits of it, nothing captured: the step a decode loop repeats. On a backend
 * with graphs, step 1 runs graph-shaped, step 2 is recorded, later steps replay it. */
static orc_status forward_one_graph(orc_session *s, const int32_t *id, float *logits, orc_cancel_fn cancel,
                                    void *user, orc_err *err) {
    orc_model *m = s->m;
    orc_backend *be = m->be;
    const orc_backend_ops *o = be->ops;
    const int64_t pos0 = s->n_past;
    fwd f = {.s = s, .keep_logits = true, .err = err};
    orc_status st = o->step_inputs(be, id, 1, pos0, err);
    if (st != ORC_OK) return st;
    if (!s->graph && s->graph_steps >= 1) {
        st = o->record_begin(be, err);
        if (st == ORC_OK) {
            orc_err rec_err = {0};
            orc_status rst = forward_chunk(&f, id, 1, pos0, ORC_LOGITS_LAST, NULL, NULL, NULL);
            orc_status est = o->record_end(be, &s->graph, &rec_err);
            if (rst != ORC_OK || est != ORC_OK) {
                /* Recording is an optimisation: on any failure stay eager from now on. */
                if (s->graph) o->graph_free(be, s->graph);
                s->graph = NULL;
                s->graph_failed = true;
                orc_err_clear(err);
                return ORC_E_STATE; /* the caller reruns the step eagerly */
            }
        }
    }
    if (s->graph) {
        st = o->graph_launch(be, s->graph, err);
    } else {
        o->set_graph_mode(be, ORC_GRAPH_SHAPED);
        st = forward_chunk(&f, id, 1, pos0, ORC_LOGITS_LAST, NULL, cancel, user);
        o->set_graph_mode(be, ORC_GRAPH_OFF);
    }
    if (st != ORC_OK) return st;
    s->graph_steps++;
    return o->download(be, &s->logits, 0, 1, logits, err);
}

orc_status orc_session_forward(orc_session *s, const int32_t *ids, int32_t n, orc_logits_mode mode, float *logits,
                               const orc_capture *cap, orc_cancel_fn cancel, void *user, orc_err *err) {
    orc_model *m = s->m;
    if (m->closed) return orc_fail(err, ORC_E_STATE, "the model of this session was closed");
    if (!s->kc) return orc_fail(err, ORC_E_STATE, "the session was closed");
    if (n <= 0) return orc_fail(err, ORC_E_INVALID, "forward needs at least one token");
    for (int32_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= m->cfg.n_vocab)
            return orc_fail(err, ORC_E_RANGE, "token id %d at position %d is out of range [0, %d)", (int)ids[i], (int)i,
                            (int)m->cfg.n_vocab);
    if ((int64_t)s->n_past + n > s->p.n_ctx)
        return orc_fail(err, ORC_E_RANGE,
                        "%d tokens after %d already in the session exceed n_ctx = %d (rewind, reset, or use a larger "
                        "n_ctx)",
                        (int)n, (int)s->n_past, (int)s->p.n_ctx);
    if (cap && cap->n_hooks != m->n_hooks) return orc_fail(err, ORC_E_INTERNAL, "capture table size mismatch");
    if (n == 1 && mode != ORC_LOGITS_NONE && !cap && !m->params.profile && s->p.graphs && !s->graph_failed &&
        m->be->ops->record_begin) {
        orc_status st = forward_one_graph(s, ids, logits, cancel, user, err);
        if (st == ORC_OK) {
            s->n_past += 1;
            return ORC_OK;
        }
        if (!(st == ORC_E_STATE && s->graph_failed)) return st;
        /* recording failed: this step runs eagerly below */
    }
    fwd f = {.s = s, .cap = cap, .err = err};
    for (int32_t c0 = 0; c0 < n; c0 += s->p.n_batch) {
        int32_t k = n - c0 < s->p.n_batch ? n - c0 : s->p.n_batch;
        f.cap_row0 = c0;
        orc_logits_mode cm = mode == ORC_LOGITS_ALL ? ORC_LOGITS_ALL
                           : (mode == ORC_LOGITS_LAST && c0 + k == n) ? ORC_LOGITS_LAST : ORC_LOGITS_NONE;
        float *dst = mode == ORC_LOGITS_ALL ? logits + (int64_t)c0 * m->cfg.n_vocab : logits;
        orc_status st = forward_chunk(&f, ids + c0, k, (int64_t)s->n_past + c0, cm, dst, cancel, user);
        if (st != ORC_OK) return st;
    }
    orc_status st = m->be->ops->sync(m->be, err);
    if (st != ORC_OK) return st;
    s->n_past += n;
    return ORC_OK;
}
