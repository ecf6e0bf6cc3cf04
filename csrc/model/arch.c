/* arch.c - GGUF metadata -> orc_config, and the tensor plan of each architecture.
 *
 * What each architecture reads mirrors llama.cpp's llama-model.cpp (load_hparams,
 * load_tensors) and Hugging Face's modeling_{llama,qwen2,qwen3,gemma3}.py; where
 * the two differ, the comment says which one we follow and why. */
#include "model/arch.h"

#include <math.h>    /* sqrtf */
#include <stdio.h>   /* snprintf */
#include <stdlib.h>  /* calloc, free */
#include <string.h>  /* strcmp */

#include "gguf/ggml_types.h"
#include "quant/quant.h"

static const char *const k_arch_names[ORC_ARCH_COUNT] = {"llama", "qwen2", "qwen3", "gemma3"};

#define MAX_LAYERS 1024
#define MAX_DIM (1 << 20)

/* "<arch>.<suffix>" into buf. */
static const char *akey(char *buf, size_t n, const orc_config *c, const char *suffix) {
    snprintf(buf, n, "%s.%s", c->arch_name, suffix);
    return buf;
}

/* An integer hyperparameter that may also be stored per layer (an array of length
 * n_layer, as llama.cpp allows); orc needs the value to be the same on every layer. */
static orc_status get_layer_int(const orc_gguf *g, const char *key, int32_t n_layer, bool required, int64_t dflt,
                                int64_t *out, orc_err *err) {
    const orc_gguf_kv *kv = orc_gguf_find_kv(g, key);
    if (!kv) {
        if (required) return orc_fail(err, ORC_E_FORMAT, "missing hyperparameter '%s'", key);
        *out = dflt;
        return ORC_OK;
    }
    if (kv->type != ORC_GGUF_ARRAY) return orc_gguf_get_int(g, key, out, err);
    const orc_gguf_kv *arr;
    orc_status st = orc_gguf_get_array(g, key, ORC_GGUF_INT64, true, &arr, err);
    if (st != ORC_OK) return st;
    if (arr->count != (uint64_t)n_layer)
        return orc_fail(err, ORC_E_FORMAT, "per-layer hyperparameter '%s' has %llu entries, block_count is %d", key,
                        (unsigned long long)arr->count, (int)n_layer);
    int64_t v0 = orc_gguf_array_int(arr, 0);
    for (uint64_t i = 1; i < arr->count; i++)
        if (orc_gguf_array_int(arr, i) != v0)
            return orc_fail(err, ORC_E_UNSUPPORTED,
                            "'%s' differs between layers (%lld at layer 0, %lld at layer %llu): orc needs the same "
                            "value on every layer",
                            key, (long long)v0, (long long)orc_gguf_array_int(arr, i), (unsigned long long)i);
    *out = v0;
    return ORC_OK;
}

static orc_status get_pos_int(const orc_gguf *g, const char *key, int32_t n_layer, bool required, int64_t dflt,
                              int64_t max, int32_t *out, orc_err *err) {
    int64_t v;
    orc_status st = get_layer_int(g, key, n_layer, required, dflt, &v, err);
    if (st != ORC_OK) return st;
    if (v <= 0) return orc_fail(err, ORC_E_FORMAT, "hyperparameter '%s' is %lld: must be positive", key, (long long)v);
    if (v > max)
        return orc_fail(err, ORC_E_FORMAT, "hyperparameter '%s' is %lld: implausibly large (limit %lld)", key,
                        (long long)v, (long long)max);
    *out = (int32_t)v;
    return ORC_OK;
}

static orc_status get_opt_float(const orc_gguf *g, const char *key, float dflt, float *out, orc_err *err) {
    double v;
    if (!orc_gguf_find_kv(g, key)) {
        *out = dflt;
        return ORC_OK;
    }
    orc_status st = orc_gguf_get_float(g, key, &v, err);
    if (st != ORC_OK) return st;
    if (!isfinite(v)) return orc_fail(err, ORC_E_FORMAT, "hyperparameter '%s' is not finite", key);
    *out = (float)v;
    return ORC_OK;
}

static orc_status read_rope_scaling(const orc_gguf *g, orc_config *c, orc_err *err) {
    char key[128];
    orc_gguf_str type;
    c->rope_freq_scale = 1.0f;
    c->rope_freq_scale_swa = 1.0f;
    if (!orc_gguf_find_kv(g, akey(key, sizeof key, c, "rope.scaling.type"))) {
        /* Older files: rope.scale_linear. */
        float lin;
        orc_status st = get_opt_float(g, akey(key, sizeof key, c, "rope.scale_linear"), 1.0f, &lin, err);
        if (st != ORC_OK) return st;
        if (!(lin > 0)) return orc_fail(err, ORC_E_FORMAT, "hyperparameter '%s' must be positive", key);
        c->rope_freq_scale = 1.0f / lin;
        return ORC_OK;
    }
    orc_status st = orc_gguf_get_str(g, key, &type, err);
    if (st != ORC_OK) return st;
    if (orc_gguf_str_eq(type, "none")) return ORC_OK;
    if (!orc_gguf_str_eq(type, "linear"))
        return orc_fail(err, ORC_E_UNSUPPORTED, "'%s' = '%.*s' is not supported (orc supports none and linear)", key,
                        (int)(type.len > 64 ? 64 : type.len), type.ptr);
    float factor;
    st = get_opt_float(g, akey(key, sizeof key, c, "rope.scaling.factor"), 1.0f, &factor, err);
    if (st != ORC_OK) return st;
    if (!(factor > 0)) return orc_fail(err, ORC_E_FORMAT, "hyperparameter '%s' must be positive", key);
    c->rope_freq_scale = 1.0f / factor;
    return ORC_OK;
}

orc_status orc_config_from_gguf(const orc_gguf *g, orc_config *c, orc_err *err) {
    char key[128];
    orc_gguf_str name;
    orc_status st;
    memset(c, 0, sizeof *c);

    st = orc_gguf_get_str(g, "general.architecture", &name, err);
    if (st == ORC_E_NOT_FOUND)
        return orc_fail(err, ORC_E_FORMAT, "missing 'general.architecture' (orc supports llama, qwen2, qwen3, gemma3)");
    if (st != ORC_OK) return st;
    c->arch = ORC_ARCH_COUNT;
    for (int a = 0; a < ORC_ARCH_COUNT; a++)
        if (orc_gguf_str_eq(name, k_arch_names[a])) c->arch = (orc_arch)a;
    if (c->arch == ORC_ARCH_COUNT)
        return orc_fail(err, ORC_E_UNSUPPORTED,
                        "architecture '%.*s' is not supported (general.architecture); orc supports llama, qwen2, "
                        "qwen3, gemma3",
                        (int)(name.len > 64 ? 64 : name.len), name.ptr);
    c->arch_name = k_arch_names[c->arch];

#define POS(field, suffix, req, dflt, max)                                                           \
    do {                                                                                             \
        st = get_pos_int(g, akey(key, sizeof key, c, suffix), c->n_layer, req, dflt, max, &c->field, err); \
        if (st != ORC_OK) return st;                                                                 \
    } while (0)

    c->n_layer = 1; /* for per-layer array checks of block_count itself (never an array) */
    POS(n_layer, "block_count", true, 0, MAX_LAYERS);
    POS(n_embd, "embedding_length", true, 0, MAX_DIM);
    POS(n_head, "attention.head_count", true, 0, 4096);
    POS(n_head_kv, "attention.head_count_kv", false, c->n_head, 4096);
    POS(n_ff, "feed_forward_length", true, 0, MAX_DIM);
    POS(n_ctx_train, "context_length", true, 0, 1 << 24);
    if (c->n_head % c->n_head_kv != 0)
        return orc_fail(err, ORC_E_FORMAT, "%s.attention.head_count_kv (%d) does not divide head_count (%d)",
                        c->arch_name, (int)c->n_head_kv, (int)c->n_head);

    bool have_key_length = orc_gguf_find_kv(g, akey(key, sizeof key, c, "attention.key_length")) != NULL;
    if (!have_key_length && c->n_embd % c->n_head != 0)
        return orc_fail(err, ORC_E_FORMAT, "%s.embedding_length (%d) is not a multiple of attention.head_count (%d)",
                        c->arch_name, (int)c->n_embd, (int)c->n_head);
    POS(head_dim, "attention.key_length", false, c->n_embd / c->n_head, 8192);
    POS(head_dim_v, "attention.value_length", false, c->head_dim, 8192);
    POS(n_rot, "rope.dimension_count", false, c->head_dim, 8192);
    if (c->n_rot > c->head_dim || c->n_rot % 2)
        return orc_fail(err, ORC_E_FORMAT, "%s.rope.dimension_count (%d) must be even and at most the head size (%d)",
                        c->arch_name, (int)c->n_rot, (int)c->head_dim);
#undef POS

    double eps;
    st = orc_gguf_get_float(g, akey(key, sizeof key, c, "attention.layer_norm_rms_epsilon"), &eps, err);
    if (st == ORC_E_NOT_FOUND) return orc_fail(err, ORC_E_FORMAT, "missing hyperparameter '%s'", key);
    if (st != ORC_OK) return st;
    if (!(eps > 0 && eps < 1)) return orc_fail(err, ORC_E_FORMAT, "hyperparameter '%s' = %g is out of (0, 1)", key, eps);
    c->rms_eps = (float)eps;

    st = get_opt_float(g, akey(key, sizeof key, c, "rope.freq_base"), 10000.0f, &c->rope_base, err);
    if (st != ORC_OK) return st;
    if (!(c->rope_base > 1)) return orc_fail(err, ORC_E_FORMAT, "hyperparameter '%s' must be > 1", key);
    st = read_rope_scaling(g, c, err);
    if (st != ORC_OK) return st;
    st = get_opt_float(g, akey(key, sizeof key, c, "attn_logit_softcapping"), 0.0f, &c->attn_softcap, err);
    if (st != ORC_OK) return st;
    st = get_opt_float(g, akey(key, sizeof key, c, "final_logit_softcapping"), 0.0f, &c->final_softcap, err);
    if (st != ORC_OK) return st;
    if (c->attn_softcap < 0 || c->final_softcap < 0)
        return orc_fail(err, ORC_E_FORMAT, "%s: negative logit soft-capping", c->arch_name);

    c->rope_base_swa = c->rope_base;
    c->rope_freq_scale_swa = c->rope_freq_scale;
    c->embd_scale = 1.0f;
    c->attn_scale = 1.0f / sqrtf((float)c->head_dim);
    c->act = ORC_ACT_SILU;
    switch (c->arch) {
    case ORC_ARCH_LLAMA: c->rope_kind = ORC_ROPE_NORM; break;
    case ORC_ARCH_QWEN2:
        c->rope_kind = ORC_ROPE_NEOX;
        c->qkv_bias = true;
        break;
    case ORC_ARCH_QWEN3:
        c->rope_kind = ORC_ROPE_NEOX;
        c->qk_norm = true;
        break;
    case ORC_ARCH_GEMMA3: {
        c->rope_kind = ORC_ROPE_NEOX;
        c->qk_norm = true;
        c->post_norms = true;
        c->act = ORC_ACT_GELU_TANH;
        c->embd_scale = sqrtf((float)c->n_embd);
        /* Local layers: base 10000, no scaling (HF rope_local_base_freq; llama.cpp hard-codes it).
         * Every 6th layer is global (HF sliding_window_pattern / llama.cpp set_swa_pattern(6)). */
        c->rope_base_swa = 10000.0f;
        c->rope_freq_scale_swa = 1.0f;
        c->swa_pattern = 6;
        int64_t win;
        st = get_layer_int(g, akey(key, sizeof key, c, "attention.sliding_window"), c->n_layer, true, 0, &win, err);
        if (st != ORC_OK) return st;
        if (win <= 0 || win > (1 << 24))
            return orc_fail(err, ORC_E_FORMAT, "hyperparameter '%s' = %lld is out of range", key, (long long)win);
        c->sliding_window = (int32_t)win;
        /* HF scales by query_pre_attn_scalar^-0.5, which GGUF does not store: it is head_dim for
         * every Gemma 3 but the 27B (62 layers), where it is n_embd/n_head (llama.cpp's rule). */
        if (c->n_layer == 62) c->attn_scale = 1.0f / sqrtf((float)(c->n_embd / c->n_head));
        break;
    }
    default: return orc_fail(err, ORC_E_INTERNAL, "unhandled architecture");
    }
    return ORC_OK;
}

bool orc_config_layer_swa(const orc_config *c, int32_t il) {
    if (c->sliding_window <= 0) return false;
    if (c->swa_pattern <= 0) return true;
    return (il + 1) % c->swa_pattern != 0;
}

/* ----------------------------------------------------------------------------- tensor plan */

static void shape_str(char *buf, size_t n, const orc_gguf_tensor *t) {
    /* NumPy order, as the Python API shows shapes. */
    int k = snprintf(buf, n, "(");
    for (int d = (int)t->n_dims - 1; d >= 0 && k < (int)n; d--)
        k += snprintf(buf + k, n - (size_t)k, "%lld%s", (long long)t->ne[d], d ? ", " : (t->n_dims == 1 ? ",)" : ")"));
}

/* Look up `name`; check it is 1-D [ne0] (ne1 == 0) or 2-D [ne1, ne0] and of a type orc can dequantize. */
static orc_status need(const orc_gguf *g, const char *name, int64_t ne0, int64_t ne1, bool required,
                       const orc_gguf_tensor **out, orc_err *err) {
    const orc_gguf_tensor *t = orc_gguf_find_tensor(g, name);
    *out = NULL;
    if (!t) {
        if (required) return orc_fail(err, ORC_E_FORMAT, "missing tensor '%s'", name);
        return ORC_OK;
    }
    int want_dims = ne1 ? 2 : 1;
    bool ok = t->ne[0] == ne0 && (ne1 ? t->ne[1] == ne1 : true);
    for (uint32_t d = (uint32_t)want_dims; d < t->n_dims; d++) ok = ok && t->ne[d] == 1;
    if (!ok) {
        char got[96];
        shape_str(got, sizeof got, t);
        if (ne1)
            return orc_fail(err, ORC_E_FORMAT, "tensor '%s' has shape %s, expected (%lld, %lld)", name, got,
                            (long long)ne1, (long long)ne0);
        return orc_fail(err, ORC_E_FORMAT, "tensor '%s' has shape %s, expected (%lld,)", name, got, (long long)ne0);
    }
    if (!orc_quant_supported(t->type)) {
        char buf[64];
        return orc_fail(err, ORC_E_UNSUPPORTED, "tensor '%s' has type %s, which orc cannot dequantize", name,
                        orc_type_name(t->type, buf, sizeof buf));
    }
    *out = t;
    return ORC_OK;
}

orc_status orc_tensor_plan_build(const orc_gguf *g, orc_config *c, orc_tensor_plan *p, orc_err *err) {
    char name[96];
    orc_status st;
    memset(p, 0, sizeof *p);
    const int64_t E = c->n_embd, F = c->n_ff;
    const int64_t NQ = (int64_t)c->n_head * c->head_dim, NK = (int64_t)c->n_head_kv * c->head_dim,
                  NV = (int64_t)c->n_head_kv * c->head_dim_v, NO = (int64_t)c->n_head * c->head_dim_v;

    const orc_gguf_tensor *te = orc_gguf_find_tensor(g, "token_embd.weight");
    if (!te) return orc_fail(err, ORC_E_FORMAT, "missing tensor 'token_embd.weight'");
    if (te->n_dims < 2 || te->ne[1] <= 0 || te->ne[1] > (1 << 24))
        return orc_fail(err, ORC_E_FORMAT, "tensor 'token_embd.weight' must be 2-D with at most 2^24 rows");
    c->n_vocab = (int32_t)te->ne[1];
    {
        char key[128];
        int64_t vs;
        if (orc_gguf_find_kv(g, akey(key, sizeof key, c, "vocab_size"))) {
            st = orc_gguf_get_int(g, key, &vs, err);
            if (st != ORC_OK) return st;
            if (vs != c->n_vocab)
                return orc_fail(err, ORC_E_FORMAT, "'%s' is %lld but token_embd.weight has %d rows", key,
                                (long long)vs, (int)c->n_vocab);
        }
    }

    {
        /* The tokenizer and the embedding must agree on the vocabulary (llama.cpp requires it too). */
        const orc_gguf_kv *tok = orc_gguf_find_kv(g, "tokenizer.ggml.tokens");
        if (tok && tok->type == ORC_GGUF_ARRAY && tok->count != (uint64_t)c->n_vocab)
            return orc_fail(err, ORC_E_FORMAT, "tokenizer.ggml.tokens has %llu entries but token_embd.weight has %d rows",
                            (unsigned long long)tok->count, (int)c->n_vocab);
    }

#define NEED(field, nm, ne0, ne1, req)                        \
    do {                                                      \
        st = need(g, nm, ne0, ne1, req, &(field), err);       \
        if (st != ORC_OK) goto fail;                          \
    } while (0)

    NEED(p->tok_embd, "token_embd.weight", E, c->n_vocab, true);
    NEED(p->output_norm, "output_norm.weight", E, 0, true);
    NEED(p->output, "output.weight", E, c->n_vocab, false);
    c->tied_output = p->output == NULL;
    NEED(p->rope_freqs, "rope_freqs.weight", c->n_rot / 2, 0, false);
    c->has_rope_freqs = p->rope_freqs != NULL;

    p->layers = calloc((size_t)c->n_layer, sizeof *p->layers);
    if (!p->layers) return orc_fail(err, ORC_E_NOMEM, "allocating the tensor plan");
    p->n_layer = c->n_layer;
    for (int32_t il = 0; il < c->n_layer; il++) {
        orc_layer_plan *L = &p->layers[il];
#define LNEED(field, suffix, ne0, ne1, req)                              \
    do {                                                                 \
        snprintf(name, sizeof name, "blk.%d.%s", (int)il, suffix);       \
        NEED(L->field, name, ne0, ne1, req);                             \
    } while (0)
        LNEED(attn_norm, "attn_norm.weight", E, 0, true);
        LNEED(wq, "attn_q.weight", E, NQ, true);
        LNEED(wk, "attn_k.weight", E, NK, true);
        LNEED(wv, "attn_v.weight", E, NV, true);
        LNEED(bq, "attn_q.bias", NQ, 0, c->qkv_bias);
        LNEED(bk, "attn_k.bias", NK, 0, c->qkv_bias);
        LNEED(bv, "attn_v.bias", NV, 0, c->qkv_bias);
        LNEED(q_norm, "attn_q_norm.weight", c->head_dim, 0, c->qk_norm);
        LNEED(k_norm, "attn_k_norm.weight", c->head_dim, 0, c->qk_norm);
        LNEED(wo, "attn_output.weight", NO, E, true);
        LNEED(attn_post_norm, "post_attention_norm.weight", E, 0, c->post_norms);
        LNEED(ffn_norm, "ffn_norm.weight", E, 0, true);
        LNEED(w_gate, "ffn_gate.weight", E, F, true);
        LNEED(w_up, "ffn_up.weight", E, F, true);
        LNEED(w_down, "ffn_down.weight", F, E, true);
        LNEED(ffn_post_norm, "post_ffw_norm.weight", E, 0, c->post_norms);
#undef LNEED
    }
#undef NEED
    return ORC_OK;
fail:
    orc_tensor_plan_free(p);
    return st;
}

void orc_tensor_plan_free(orc_tensor_plan *p) {
    if (!p) return;
    free(p->layers);
    p->layers = NULL;
    p->n_layer = 0;
}
