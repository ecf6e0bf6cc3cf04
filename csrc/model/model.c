/* model.c - loading a model: the file parsed once, the configuration and tensor plan
 * from the architecture's description, the weights onto a backend, the RoPE tables and
 * the hook table; the model's lock; tensor access and memory accounting. */
#include "model/model_internal.h"

#include <errno.h>  /* EDEADLK */
#include <stdio.h>  /* snprintf */
#include <stdlib.h> /* calloc, free */
#include <string.h> /* strcmp */

#include "gguf/ggml_types.h"
#include "quant/quant.h"

static const char *const k_weights_names[] = {"dequantized", "quantized"};

const char *orc_weights_mode_name(orc_weights_mode w) {
    return w == ORC_WEIGHTS_QUANTIZED ? k_weights_names[1] : k_weights_names[0];
}

orc_status orc_weights_mode_parse(const char *s, orc_weights_mode *out, orc_err *err) {
    for (int i = 0; s && i < 2; i++) {
        if (!strcmp(s, k_weights_names[i])) {
            *out = (orc_weights_mode)i;
            return ORC_OK;
        }
    }
    return orc_fail(err, ORC_E_INVALID, "weights must be 'dequantized' or 'quantized', not '%.64s'", s ? s : "(null)");
}

void orc_model_params_init(orc_model_params *p) {
    memset(p, 0, sizeof *p);
    p->backend = ORC_BACKEND_CPU;
    p->dtype = ORC_DTYPE_F32;
    p->round_matmul_inputs = -1;
}

/* --------------------------------------------------------------------------- the lock */

orc_status orc_model_lock(orc_model *m, orc_err *err) {
    int rc = pthread_mutex_lock(&m->lock);
    if (rc == EDEADLK)
        return orc_fail(err, ORC_E_STATE,
                        "this model is already busy in this thread (a callback of a forward pass called back into it)");
    if (rc != 0) return orc_fail(err, ORC_E_INTERNAL, "locking the model failed (error %d)", rc);
    return ORC_OK;
}

void orc_model_unlock(orc_model *m) { pthread_mutex_unlock(&m->lock); }

/* --------------------------------------------------------------------------- loading */

/* Rows and columns of a tensor as a backend stores it: ne0 columns, the rest rows. */
static void tensor_rows_cols(const orc_gguf_tensor *t, int64_t *rows, int64_t *cols) {
    *cols = t->ne[0];
    *rows = t->n_elements / t->ne[0];
}

static orc_status load_one(orc_model *m, const orc_gguf_tensor *src, orc_tensor_kind kind, orc_tensor *dst,
                           orc_err *err) {
    orc_backend *be = m->be;
    int64_t rows, cols;
    tensor_rows_cols(src, &rows, &cols);
    const bool matrix = kind == ORC_TK_MATRIX || kind == ORC_TK_EXPERTS;
    const bool fault = m->params.fault_raw_as_f16 && matrix && !orc_type_is_dense(src->type) && rows > 1;
    orc_status st;
    if (matrix && m->params.weights == ORC_WEIGHTS_QUANTIZED && !fault) {
        /* Stored form: blocks stay blocks; dense stored types stay in their own dtype. */
        st = be->ops->upload_blocks(be, dst, src->type, rows, cols, src->data, src->nbytes, src->name_z, err);
        if (st == ORC_OK) { /* the stored bytes (the CPU reads them in place from the mapped file) */
            if (dst->qtype >= 0)
                m->quant_bytes += src->nbytes;
            else /* dense: the stored bytes, or the backend's own copy (CPU: blocks it has no decoder for) */
                m->weight_bytes += dst->nbytes ? dst->nbytes : src->nbytes;
        }
    } else {
        const orc_dtype dt = matrix ? m->params.dtype : ORC_DTYPE_F32; /* norms, biases: float32 (as HF keeps them) */
        st = be->ops->alloc(be, dst, dt, rows, cols, src->name_z, err);
        if (st != ORC_OK) return st;
        st = be->ops->upload_weight(be, dst, src->type, src->data, src->nbytes, fault, err);
        if (st == ORC_OK) m->weight_bytes += dst->nbytes;
    }
    if (st != ORC_OK) orc_err_prefix(err, "loading tensor '%s': ", src->name_z);
    return st;
}

static orc_status load_weights(orc_model *m, orc_err *err) {
    uint64_t total = 0, done = 0;
    for (int32_t i = 0; i < m->plan.n_slots; i++)
        if (m->plan.t[i]) total += m->plan.t[i]->nbytes;
    m->w = calloc((size_t)m->plan.n_slots, sizeof *m->w);
    if (!m->w) return orc_fail(err, ORC_E_NOMEM, "allocating the weight table");
    for (int slot = 0; slot < ORC_T_COUNT; slot++) {
        const orc_tensor_role *r = &orc_tensor_roles[slot];
        const int32_t n_layers = r->scope == ORC_TS_GLOBAL ? 1 : m->cfg.n_layer;
        for (int32_t il = 0; il < n_layers; il++) {
            const int32_t idx = orc_plan_index((orc_tensor_slot)slot, il);
            const orc_gguf_tensor *src = m->plan.t[idx];
            if (!src) continue;
            if (m->params.cancel && m->params.cancel(m->params.user))
                return orc_fail(err, ORC_E_INTERRUPTED, "load interrupted");
            orc_status st = load_one(m, src, r->kind, &m->w[idx], err);
            if (st != ORC_OK) return st;
            done += src->nbytes;
            if (m->params.progress) m->params.progress(m->params.user, done, total);
        }
    }
    return m->be->ops->sync(m->be, err);
}

/* The inverse-frequency tables of the global and the sliding-window layers, computed once
 * on the host (orc_rope_table) and kept on the backend. */
static orc_status load_rope_tables(orc_model *m, orc_err *err) {
    const orc_config *c = &m->cfg;
    const int32_t half = c->n_rot / 2;
    float *factors = NULL, *table = malloc((size_t)half * sizeof(float));
    orc_status st = ORC_OK;
    if (!table) return orc_fail(err, ORC_E_NOMEM, "allocating the RoPE table");
    const orc_gguf_tensor *ff = m->plan.t[ORC_T_ROPE_FREQS];
    if (ff) {
        factors = malloc((size_t)half * sizeof(float));
        if (!factors) {
            st = orc_fail(err, ORC_E_NOMEM, "allocating the RoPE table");
            goto done;
        }
        if ((st = orc_dequantize(ff->type, ff->data, ff->nbytes, half, ORC_DTYPE_F32, factors, err)) != ORC_OK) goto done;
    }
    for (int swa = 0; swa < 2; swa++) {
        const orc_rope_params rp = {
            .n_rot = c->n_rot,
            .base = swa ? c->rope_theta_swa : c->rope_theta,
            .freq_scale = swa ? c->rope_freq_scale_swa : c->rope_freq_scale,
            .yarn_factor = c->yarn_factor, .yarn_beta_fast = c->yarn_beta_fast, .yarn_beta_slow = c->yarn_beta_slow,
            .yarn_orig_ctx = c->yarn_orig_ctx, .yarn_round = c->yarn_round,
        };
        /* Frequency factors (Llama 3.1) apply to the global layers only, as in llama.cpp. */
        orc_rope_table(&rp, swa ? NULL : factors, table);
        if ((st = m->be->ops->alloc(m->be, &m->rope_inv[swa], ORC_DTYPE_F32, 1, half, "the RoPE table", err)) != ORC_OK)
            goto done;
        if ((st = m->be->ops->upload(m->be, &m->rope_inv[swa], 0, 1, table, err)) != ORC_OK) goto done;
    }
done:
    free(table);
    free(factors);
    return st;
}

static orc_status build_hooks(orc_model *m, orc_err *err) {
    const orc_config *c = &m->cfg;
    const int32_t n = 3 + c->n_layer * ORC_S_COUNT;
    m->hooks = calloc((size_t)n, sizeof *m->hooks);
    m->hook_index = malloc((size_t)c->n_layer * ORC_S_COUNT * sizeof *m->hook_index);
    if (!m->hooks || !m->hook_index) return orc_fail(err, ORC_E_NOMEM, "allocating the hook table");
    int32_t k = 0;
#define ADD(nm, w, lay, stp)                                              \
    do {                                                                  \
        orc_hook_info *hi = &m->hooks[k++];                               \
        snprintf(hi->name, sizeof hi->name, "%s", nm);                    \
        hi->width = (w);                                                  \
        hi->layer = (lay);                                                \
        hi->step = (stp);                                                 \
    } while (0)
    m->hook_embd = k;
    ADD("embd", c->n_embd, -1, -1);
    for (int32_t il = 0; il < c->n_layer; il++) {
        for (int s = 0; s < ORC_S_COUNT; s++) {
            const orc_step_desc *d = &orc_steps[s];
            bool present = false;
            for (int b = 0; b < ORC_BLOCK_KIND_COUNT; b++)
                if ((d->blocks & (1u << b)) && (m->block_used & (1u << b)) && (!d->opt || (m->block_opts[b] & d->opt)))
                    present = true;
            m->hook_index[il * ORC_S_COUNT + s] = present ? k : -1;
            if (!present) continue;
            char nm[40];
            snprintf(nm, sizeof nm, "blk.%d.%s", (int)il, d->name);
            const int64_t heads = orc_dim_size(c, d->heads);
            const int64_t hd = d->head_dim != ORC_D_NONE ? orc_dim_size(c, d->head_dim) : 0;
            ADD(nm, heads ? (hd ? heads * hd : heads) : orc_dim_size(c, d->width), il, s);
            orc_hook_info *hi = &m->hooks[k - 1];
            hi->heads = (int32_t)(hd ? heads : 0);
            hi->head_dim = (int32_t)hd;
            hi->on_request = d->on_request;
            hi->per_key = ORC_STEP_PER_KEY(s);
            hi->index = ORC_STEP_INDEX(s);
            if (hi->per_key) hi->heads = (int32_t)heads; /* rows [heads][keys] */
        }
    }
    m->hook_output_norm = k;
    ADD("output_norm", c->n_embd, -1, -1);
    m->hook_logits = k;
    ADD("logits", c->n_vocab, -1, -1);
#undef ADD
    m->n_hooks = k;
    return ORC_OK;
}

static void free_weights(orc_model *m) {
    if (m->be) {
        for (int32_t i = 0; m->w && i < m->plan.n_slots; i++) m->be->ops->free(m->be, &m->w[i]);
        for (int i = 0; i < 2; i++) m->be->ops->free(m->be, &m->rope_inv[i]);
    }
    free(m->w);
    m->w = NULL;
    m->weight_bytes = m->quant_bytes = 0;
}

static void model_destroy(orc_model *m) {
    free_weights(m);
    if (m->be) m->be->ops->destroy(m->be);
    orc_plan_free(&m->plan);
    orc_gguf_close(m->gguf);
    free(m->hooks);
    free(m->hook_index);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

orc_status orc_model_load(const char *path, const orc_model_params *params, orc_model **out, orc_err *err) {
    orc_status st;
    *out = NULL;
    if (params->dtype_set && params->dtype != ORC_DTYPE_F32 && params->dtype != ORC_DTYPE_F16 &&
        params->dtype != ORC_DTYPE_BF16)
        return orc_fail(err, ORC_E_INVALID, "dtype must be float32, float16 or bfloat16");
    if (params->n_threads > ORC_MAX_THREADS)
        return orc_fail(err, ORC_E_INVALID, "n_threads is %d: at most %d (0 means one per CPU)", params->n_threads,
                        ORC_MAX_THREADS);
    if (params->n_threads < 0)
        return orc_fail(err, ORC_E_INVALID, "n_threads is %d: must be >= 0 (0 means one per CPU)", params->n_threads);
    orc_model *m = calloc(1, sizeof *m);
    if (!m) return orc_fail(err, ORC_E_NOMEM, "allocating the model");
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK);
    int rc = pthread_mutex_init(&m->lock, &attr);
    pthread_mutexattr_destroy(&attr);
    if (rc != 0) {
        free(m);
        return orc_fail(err, ORC_E_NOMEM, "creating the model's lock");
    }
    atomic_init(&m->refs, 1);
    atomic_init(&m->kv_bytes, 0);
    atomic_init(&m->scratch_bytes, 0);
    m->params = *params;
    /* The defaults live here, once: float32 on the CPU, float16 on CUDA; on the CPU,
     * float16/bfloat16 weights come with rounded matmul inputs (like for like with cuBLAS). */
    if (!params->dtype_set) m->params.dtype = params->backend == ORC_BACKEND_CUDA ? ORC_DTYPE_F16 : ORC_DTYPE_F32;
    if (params->round_matmul_inputs < 0)
        m->params.round_matmul_inputs = params->backend == ORC_BACKEND_CPU && m->params.dtype != ORC_DTYPE_F32;

    if ((st = orc_gguf_open(path, &m->gguf, err)) != ORC_OK) goto fail;
    if ((st = orc_config_from_gguf(m->gguf, &m->cfg, &m->desc, err)) != ORC_OK) goto fail;
    m->cfg.yarn_round = params->yarn_ggml;
    for (int i = 0; i < m->desc->n_blocks; i++) {
        m->block_used |= 1u << m->desc->blocks[i].kind;
        m->block_opts[m->desc->blocks[i].kind] = m->desc->blocks[i].opts;
    }
    if ((st = orc_plan_build(m->gguf, m->desc, &m->cfg, &m->plan, err)) != ORC_OK) goto fail;
    if ((st = build_hooks(m, err)) != ORC_OK) goto fail;
    const orc_backend_params bp = {.device = params->device,
                                   .n_threads = params->n_threads,
                                   .round_matmul_inputs = m->params.round_matmul_inputs > 0,
                                   .fast = params->weights == ORC_WEIGHTS_QUANTIZED};
    if ((st = orc_backend_create(params->backend, &bp, &m->be, err)) != ORC_OK) goto fail;
    if ((st = load_weights(m, err)) != ORC_OK) goto fail;
    if ((st = load_rope_tables(m, err)) != ORC_OK) goto fail;
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
    if (!m) return;
    if (orc_model_lock(m, NULL) != ORC_OK) return; /* a callback closing its own model: refused */
    if (!m->closed) {
        m->closed = true;
        free_weights(m);
        if (m->be && m->be->ops->trim) m->be->ops->trim(m->be);
    }
    orc_model_unlock(m);
}

bool orc_model_is_closed(const orc_model *m) { return m->closed; }
const orc_config *orc_model_config(const orc_model *m) { return &m->cfg; }
const orc_arch_desc *orc_model_arch(const orc_model *m) { return m->desc; }
orc_gguf *orc_model_gguf(const orc_model *m) { return m->gguf; }
orc_backend_kind orc_model_backend(const orc_model *m) { return m->params.backend; }
int orc_model_device(const orc_model *m) { return m->params.device; }
orc_dtype orc_model_dtype(const orc_model *m) { return m->params.dtype; }
orc_weights_mode orc_model_weights(const orc_model *m) { return m->params.weights; }
bool orc_model_round_matmul_inputs(const orc_model *m) { return m->params.round_matmul_inputs > 0; }
const char *orc_model_backend_name(const orc_model *m) { return m->be->ops->name; }

static const orc_tensor *find_weight(const orc_model *m, const char *name, const orc_gguf_tensor **src) {
    for (int32_t i = 0; i < m->plan.n_slots; i++) {
        if (m->plan.t[i] && m->w[i].data && strcmp(m->plan.t[i]->name_z, name) == 0) {
            *src = m->plan.t[i];
            return &m->w[i];
        }
    }
    return NULL;
}

static orc_status tensor_lookup(orc_model *m, const char *name, const orc_tensor **w, const orc_gguf_tensor **src,
                                orc_err *err) {
    if (m->closed) return orc_fail(err, ORC_E_STATE, "the model was closed");
    *w = find_weight(m, name, src);
    if (*w) return ORC_OK;
    if (orc_gguf_find_tensor(m->gguf, name))
        return orc_fail(err, ORC_E_NOT_FOUND, "tensor '%s' is in the file but not used by the %s model", name,
                        m->cfg.arch);
    return orc_fail(err, ORC_E_NOT_FOUND, "no tensor named '%s'", name);
}

orc_status orc_model_tensor_shape(orc_model *m, const char *name, int64_t ne[3], int *n_dims, orc_err *err) {
    const orc_tensor *w;
    const orc_gguf_tensor *src;
    orc_status st = orc_model_lock(m, err);
    if (st != ORC_OK) return st;
    st = tensor_lookup(m, name, &w, &src, err);
    if (st == ORC_OK) {
        *n_dims = src->n_dims < 3 ? (int)src->n_dims : 3;
        for (int d = 0; d < 3; d++) ne[d] = d < *n_dims ? src->ne[d] : 1;
    }
    orc_model_unlock(m);
    return st;
}

orc_status orc_model_tensor_f32(orc_model *m, const char *name, float *out, orc_err *err) {
    const orc_tensor *w;
    const orc_gguf_tensor *src;
    orc_status st = orc_model_lock(m, err);
    if (st != ORC_OK) return st;
    st = tensor_lookup(m, name, &w, &src, err);
    if (st == ORC_OK) st = m->be->ops->download(m->be, w, 0, w->rows, out, err);
    orc_model_unlock(m);
    return st;
}

int32_t orc_model_profile(orc_model *m, int32_t i, const char **name, uint64_t *calls, double *seconds, bool reset) {
    static const char *const names[ORC_P_COUNT] = {
#define ORC_P_NAME(op, nm) nm,
        ORC_PROFILE_OPS(ORC_P_NAME)
#undef ORC_P_NAME
    };
    if (i < 0 || i >= ORC_P_COUNT) return ORC_P_COUNT;
    *name = names[i];
    *calls = m->prof_calls[i];
    *seconds = m->prof_seconds[i];
    if (reset) {
        m->prof_calls[i] = 0;
        m->prof_seconds[i] = 0;
    }
    return ORC_P_COUNT;
}

void orc_model_memory(const orc_model *m, orc_memory_report *r) {
    r->weights = m->weight_bytes;
    r->quantized = m->quant_bytes;
    r->kv_cache = atomic_load(&m->kv_bytes);
    r->scratch = atomic_load(&m->scratch_bytes);
    r->total = m->be ? m->be->ops->allocated(m->be) : 0;
}

int32_t orc_model_n_hooks(const orc_model *m) { return m->n_hooks; }

const orc_hook_info *orc_model_hook(const orc_model *m, int32_t i) {
    return i >= 0 && i < m->n_hooks ? &m->hooks[i] : NULL;
}
