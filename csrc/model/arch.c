/* arch.c - the registry of architectures, the common hyperparameter reads, and the tables
 * generated from tensors.h, steps.h and ORC_CONFIG_FIELDS.
 *
 * What each architecture reads mirrors llama.cpp's llama-model.cpp (load_hparams) and
 * Hugging Face's modeling_*.py; where the two differ, the architecture file says which
 * one orc follows and why. */
#include "model/arch.h"

#include <math.h>   /* sqrtf, logf, isfinite */
#include <stddef.h> /* offsetof */
#include <stdio.h>  /* snprintf */
#include <string.h> /* strcmp */

#include "model/steps.h"
#include "model/tensors.h"

/* ------------------------------------------------------------------ the registry */

extern const orc_arch_desc orc_arch_llama, orc_arch_qwen2, orc_arch_qwen3, orc_arch_gemma3, orc_arch_gpt_oss,
    orc_arch_qwen3moe;

const orc_arch_desc *const orc_archs[] = {&orc_arch_llama,  &orc_arch_qwen2,   &orc_arch_qwen3,
                                          &orc_arch_gemma3, &orc_arch_gpt_oss, &orc_arch_qwen3moe,
                                          NULL};

const char *orc_arch_names(void) {
    static char buf[256];
    if (!buf[0]) { /* written once, with the same bytes by any thread that races here */
        size_t k = 0;
        for (int i = 0; orc_archs[i] && k < sizeof buf; i++)
            k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%s", i ? ", " : "", orc_archs[i]->name);
    }
    return buf;
}

bool orc_arch_uses(const orc_arch_desc *d, orc_block_kind kind, uint32_t *opts) {
    for (int i = 0; i < d->n_blocks; i++) {
        if (d->blocks[i].kind == kind) {
            if (opts) *opts = d->blocks[i].opts;
            return true;
        }
    }
    if (opts) *opts = 0;
    return false;
}

/* ------------------------------------------------------------------ generated tables */

const orc_config_field orc_config_fields[] = {
#define ORC_CF_ROW(kind, name) {#name, ORC_CF_##kind, offsetof(orc_config, name)},
    ORC_CONFIG_FIELDS(ORC_CF_ROW)
#undef ORC_CF_ROW
};
const int orc_n_config_fields = (int)(sizeof orc_config_fields / sizeof orc_config_fields[0]);

const char *orc_config_enum_name(orc_cf_kind kind, int v) {
    switch (kind) {
    case ORC_CF_ROPE: return v == ORC_ROPE_NEOX ? "neox" : "norm";
    case ORC_CF_ACT: return v == ORC_ACT_GELU_TANH ? "gelu_tanh" : v == ORC_ACT_SWIGLU_OAI ? "swiglu_oai" : "silu";
    case ORC_CF_SWA: {
        static const char *const n[] = {"none", "all", "pattern", "even"};
        return v >= 0 && v < 4 ? n[v] : "?";
    }
    case ORC_CF_ROUTER: {
        static const char *const n[] = {"none", "softmax_topk", "topk_softmax"};
        return v >= 0 && v < 3 ? n[v] : "?";
    }
    default: return "?";
    }
}

const orc_tensor_role orc_tensor_roles[ORC_T_COUNT] = {
#define ORC_T_ROW(slot, scope, name, kind, d0, d1, d2, blocks, opt, unless, req)                            \
    {name, ORC_TS_##scope, ORC_TK_##kind, {ORC_D_##d0, ORC_D_##d1, ORC_D_##d2}, ORC_B_##blocks, ORC_OPT_##opt, \
     ORC_OPT_##unless, req},
    ORC_TENSORS(ORC_T_ROW)
#undef ORC_T_ROW
};

const orc_step_desc orc_steps[ORC_S_COUNT] = {
#define ORC_S_ROW(step, name, blocks, opt, heads, hdim, width, on_request) \
    {name, blocks, ORC_OPT_##opt, ORC_D_##heads, ORC_D_##hdim, ORC_D_##width, on_request},
    ORC_STEPS(ORC_S_ROW)
#undef ORC_S_ROW
};

int64_t orc_dim_size(const orc_config *c, orc_dim d) {
    switch (d) {
    case ORC_D_NONE: return 0;
    case ORC_D_EMBD: return c->n_embd;
    case ORC_D_Q: return (int64_t)c->n_head * c->head_dim;
    case ORC_D_K: return (int64_t)c->n_head_kv * c->head_dim;
    case ORC_D_V: return (int64_t)c->n_head_kv * c->head_dim_v;
    case ORC_D_O: return (int64_t)c->n_head * c->head_dim_v;
    case ORC_D_FF: return c->n_ff;
    case ORC_D_VOCAB: return c->n_vocab;
    case ORC_D_HEAD: return c->head_dim;
    case ORC_D_HEAD_V: return c->head_dim_v;
    case ORC_D_ROT2: return c->n_rot / 2;
    case ORC_D_NHEAD: return c->n_head;
    case ORC_D_NHEAD_KV: return c->n_head_kv;
    case ORC_D_EXPERT: return c->n_expert;
    case ORC_D_EXP_USED: return c->n_expert_used;
    case ORC_D_FF_EXP: return c->n_ff_exp;
    }
    return 0;
}

/* ------------------------------------------------------------------ hyperparameter reads */

#define MAX_LAYERS 1024
#define MAX_DIM (1 << 20)

static const char *akey(char *buf, size_t n, const orc_config *c, const char *suffix) {
    snprintf(buf, n, "%s.%s", c->arch, suffix);
    return buf;
}

/* An integer that may also be stored per layer (an array of n_layer values, as llama.cpp
 * allows); orc needs the value to be the same on every layer. */
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

orc_status orc_hp_int(const orc_gguf *g, const orc_config *c, const char *suffix, bool required, int64_t dflt,
                      int64_t min, int64_t max, int32_t *out, orc_err *err) {
    char key[128];
    int64_t v;
    orc_status st = get_layer_int(g, akey(key, sizeof key, c, suffix), c->n_layer > 0 ? c->n_layer : 1, required,
                                  dflt, &v, err);
    if (st != ORC_OK) return st;
    if (v < min) {
        if (min == 1) return orc_fail(err, ORC_E_FORMAT, "hyperparameter '%s' is %lld: must be positive", key, (long long)v);
        return orc_fail(err, ORC_E_FORMAT, "hyperparameter '%s' is %lld: must be at least %lld", key, (long long)v,
                        (long long)min);
    }
    if (v > max)
        return orc_fail(err, ORC_E_FORMAT, "hyperparameter '%s' is %lld: implausibly large (limit %lld)", key,
                        (long long)v, (long long)max);
    *out = (int32_t)v;
    return ORC_OK;
}

orc_status orc_hp_float(const orc_gguf *g, const orc_config *c, const char *suffix, float dflt, float *out,
                        orc_err *err) {
    char key[128];
    double v;
    if (!orc_gguf_find_kv(g, akey(key, sizeof key, c, suffix))) {
        *out = dflt;
        return ORC_OK;
    }
    orc_status st = orc_gguf_get_float(g, key, &v, err);
    if (st != ORC_OK) return st;
    if (!isfinite(v)) return orc_fail(err, ORC_E_FORMAT, "hyperparameter '%s' is not finite", key);
    *out = (float)v;
    return ORC_OK;
}

orc_status orc_hp_bool(const orc_gguf *g, const orc_config *c, const char *suffix, bool dflt, bool *out, orc_err *err) {
    char key[128];
    if (!orc_gguf_find_kv(g, akey(key, sizeof key, c, suffix))) {
        *out = dflt;
        return ORC_OK;
    }
    return orc_gguf_get_bool(g, key, out, err);
}

/* rope.scaling.*: none, linear (positions divided by the factor) or yarn. */
static orc_status read_rope_scaling(const orc_gguf *g, orc_config *c, orc_err *err) {
    char key[128];
    orc_gguf_str type;
    orc_status st;
    c->rope_freq_scale = 1.0f;
    if (!orc_gguf_find_kv(g, akey(key, sizeof key, c, "rope.scaling.type"))) {
        float lin; /* older files: rope.scale_linear */
        st = orc_hp_float(g, c, "rope.scale_linear", 1.0f, &lin, err);
        if (st != ORC_OK) return st;
        if (!(lin > 0)) return orc_fail(err, ORC_E_FORMAT, "hyperparameter '%s.rope.scale_linear' must be positive", c->arch);
        c->rope_freq_scale = 1.0f / lin;
        return ORC_OK;
    }
    st = orc_gguf_get_str(g, key, &type, err);
    if (st != ORC_OK) return st;
    if (orc_gguf_str_eq(type, "none")) return ORC_OK;
    const bool linear = orc_gguf_str_eq(type, "linear"), yarn = orc_gguf_str_eq(type, "yarn");
    if (!linear && !yarn)
        return orc_fail(err, ORC_E_UNSUPPORTED, "'%s' = '%.*s' is not supported (orc supports none, linear and yarn)",
                        key, (int)(type.len > 64 ? 64 : type.len), type.ptr);
    float factor;
    st = orc_hp_float(g, c, "rope.scaling.factor", 1.0f, &factor, err);
    if (st != ORC_OK) return st;
    if (!(factor > 0)) return orc_fail(err, ORC_E_FORMAT, "hyperparameter '%s.rope.scaling.factor' must be positive", c->arch);
    if (linear) {
        c->rope_freq_scale = 1.0f / factor;
        return ORC_OK;
    }
    /* YaRN, with HF's defaults (beta_fast 32, beta_slow 1, attention factor 0.1 ln(s) + 1). */
    c->yarn_factor = factor;
    if ((st = orc_hp_int(g, c, "rope.scaling.original_context_length", true, 0, 1, 1 << 24, &c->yarn_orig_ctx, err)) !=
        ORC_OK)
        return st;
    if ((st = orc_hp_float(g, c, "rope.scaling.yarn_beta_fast", 32.0f, &c->yarn_beta_fast, err)) != ORC_OK) return st;
    if ((st = orc_hp_float(g, c, "rope.scaling.yarn_beta_slow", 1.0f, &c->yarn_beta_slow, err)) != ORC_OK) return st;
    const float dflt_attn = factor > 1.0f ? 0.1f * logf(factor) + 1.0f : 1.0f;
    if ((st = orc_hp_float(g, c, "rope.scaling.attn_factor", dflt_attn, &c->yarn_attn_factor, err)) != ORC_OK) return st;
    return ORC_OK;
}

orc_status orc_config_from_gguf(const orc_gguf *g, orc_config *c, const orc_arch_desc **desc_out, orc_err *err) {
    char key[128];
    orc_gguf_str name;
    orc_status st;
    memset(c, 0, sizeof *c);
    *desc_out = NULL;

    st = orc_gguf_get_str(g, "general.architecture", &name, err);
    if (st == ORC_E_NOT_FOUND)
        return orc_fail(err, ORC_E_FORMAT, "missing 'general.architecture' (orc supports %s)", orc_arch_names());
    if (st != ORC_OK) return st;
    const orc_arch_desc *d = NULL;
    for (int a = 0; orc_archs[a]; a++)
        if (orc_gguf_str_eq(name, orc_archs[a]->name)) d = orc_archs[a];
    if (!d)
        return orc_fail(err, ORC_E_UNSUPPORTED,
                        "architecture '%.*s' is not supported (general.architecture); orc supports %s",
                        (int)(name.len > 64 ? 64 : name.len), name.ptr, orc_arch_names());
    c->arch = d->name;

#define HP_INT(field, suffix, req, dflt, min, max)                                           \
    do {                                                                                     \
        if ((st = orc_hp_int(g, c, suffix, req, dflt, min, max, &c->field, err)) != ORC_OK) \
            return st;                                                                       \
    } while (0)
    HP_INT(n_layer, "block_count", true, 0, 1, MAX_LAYERS);
    HP_INT(n_embd, "embedding_length", true, 0, 1, MAX_DIM);
    HP_INT(n_head, "attention.head_count", true, 0, 1, 4096);
    /* Head size before head_count_kv: "embedding_length is not a multiple of head_count" is
     * the complaint to make when both are wrong, not one about head_count_kv. */
    const bool have_key_length = orc_gguf_find_kv(g, akey(key, sizeof key, c, "attention.key_length")) != NULL;
    if (!have_key_length && c->n_embd % c->n_head != 0)
        return orc_fail(err, ORC_E_FORMAT, "%s.embedding_length (%d) is not a multiple of attention.head_count (%d)",
                        c->arch, (int)c->n_embd, (int)c->n_head);
    HP_INT(n_head_kv, "attention.head_count_kv", false, c->n_head, 1, 4096);
    if (c->n_head % c->n_head_kv != 0)
        return orc_fail(err, ORC_E_FORMAT, "%s.attention.head_count_kv (%d) does not divide head_count (%d)", c->arch,
                        (int)c->n_head_kv, (int)c->n_head);
    const bool moe = orc_arch_uses(d, ORC_BLOCK_MOE, NULL);
    HP_INT(n_ff, "feed_forward_length", !moe, 0, moe ? 0 : 1, MAX_DIM);
    HP_INT(n_ctx_train, "context_length", true, 0, 1, 1 << 24);
    HP_INT(head_dim, "attention.key_length", false, c->n_embd / c->n_head, 1, 8192);
    HP_INT(head_dim_v, "attention.value_length", false, c->head_dim, 1, 8192);
    HP_INT(n_rot, "rope.dimension_count", false, c->head_dim, 1, 8192);
    if (c->n_rot > c->head_dim || c->n_rot % 2)
        return orc_fail(err, ORC_E_FORMAT, "%s.rope.dimension_count (%d) must be even and at most the head size (%d)",
                        c->arch, (int)c->n_rot, (int)c->head_dim);
    if (moe) {
        HP_INT(n_expert, "expert_count", true, 0, 1, 4096);
        HP_INT(n_expert_used, "expert_used_count", true, 0, 1, 64);
        HP_INT(n_ff_exp, "expert_feed_forward_length", true, 0, 1, MAX_DIM);
        if (c->n_expert_used > c->n_expert)
            return orc_fail(err, ORC_E_FORMAT, "%s.expert_used_count (%d) exceeds expert_count (%d)", c->arch,
                            (int)c->n_expert_used, (int)c->n_expert);
    }
#undef HP_INT

    double eps;
    st = orc_gguf_get_float(g, akey(key, sizeof key, c, "attention.layer_norm_rms_epsilon"), &eps, err);
    if (st == ORC_E_NOT_FOUND) return orc_fail(err, ORC_E_FORMAT, "missing hyperparameter '%s'", key);
    if (st != ORC_OK) return st;
    if (!(eps > 0 && eps < 1)) return orc_fail(err, ORC_E_FORMAT, "hyperparameter '%s' = %g is out of (0, 1)", key, eps);
    c->rms_eps = (float)eps;

    if ((st = orc_hp_float(g, c, "rope.freq_base", 10000.0f, &c->rope_theta, err)) != ORC_OK) return st;
    if (!(c->rope_theta > 1)) return orc_fail(err, ORC_E_FORMAT, "hyperparameter '%s.rope.freq_base' must be > 1", c->arch);
    if ((st = read_rope_scaling(g, c, err)) != ORC_OK) return st;
    if ((st = orc_hp_float(g, c, "attn_logit_softcapping", 0.0f, &c->attn_softcap, err)) != ORC_OK) return st;
    if ((st = orc_hp_float(g, c, "final_logit_softcapping", 0.0f, &c->final_softcap, err)) != ORC_OK) return st;
    if (c->attn_softcap < 0 || c->final_softcap < 0)
        return orc_fail(err, ORC_E_FORMAT, "%s: negative logit soft-capping", c->arch);

    c->rope_type = d->rope;
    c->ffn_act = d->act;
    c->rope_theta_swa = c->rope_theta;
    c->rope_freq_scale_swa = c->rope_freq_scale;
    c->embd_scale = 1.0f;
    c->attn_scale = 1.0f / sqrtf((float)c->head_dim);
    if (d->hparams && (st = d->hparams(g, c, err)) != ORC_OK) return st;
    *desc_out = d;
    return ORC_OK;
}

bool orc_config_layer_swa(const orc_config *c, int32_t il) {
    if (c->sliding_window <= 0) return false;
    switch (c->swa_type) {
    case ORC_SWA_ALL: return true;
    case ORC_SWA_PATTERN: return c->swa_period > 0 && (il + 1) % c->swa_period != 0;
    case ORC_SWA_EVEN: return il % 2 == 0;
    default: return false;
    }
}
