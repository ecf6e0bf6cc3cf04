/* arch.h - what an architecture is in orc: a configuration read from GGUF metadata,
 * and a description (csrc/model/arch/<name>.c) that lists the blocks of its layer
 * program and reads its own hyperparameters.
 *
 * Everything else follows from the description: the tensors a model needs (each block
 * names its tensors in tensors.h), the weight table, the hook points (steps.h), the
 * Python `config` dict (ORC_CONFIG_FIELDS). Adding an architecture is one file under
 * arch/ and one line in arch.c's registry; adding a per-layer tensor is one line in
 * tensors.h and one in the block that uses it. */
#ifndef ORC_ARCH_H
#define ORC_ARCH_H

#include <stdbool.h>
#include <stdint.h>

#include "core/orc.h"
#include "gguf/gguf.h"

#ifdef __cplusplus
extern "C" {
#endif

/* RoPE pairing: NORM rotates adjacent pairs (x[2i], x[2i+1]) as llama.cpp's llama does on
 * its permuted Q/K weights; NEOX rotates (x[i], x[i + n_rot/2]) (Qwen, Gemma, gpt-oss). */
typedef enum orc_rope_kind { ORC_ROPE_NORM = 0, ORC_ROPE_NEOX = 2 } orc_rope_kind;

/* Gated activations: act(gate) * up; SWIGLU_OAI is gpt-oss's clamped variant. */
typedef enum orc_act { ORC_ACT_SILU = 0, ORC_ACT_GELU_TANH = 1, ORC_ACT_SWIGLU_OAI = 2 } orc_act;

/* How a mixture-of-experts router turns its logits into expert weights. */
typedef enum orc_router_kind {
    ORC_ROUTER_NONE = 0,
    ORC_ROUTER_SOFTMAX_TOPK = 1, /* softmax over all experts, then top-k (optionally renormalised): Qwen3-MoE */
    ORC_ROUTER_TOPK_SOFTMAX = 2, /* top-k raw logits, softmax over those k: gpt-oss */
} orc_router_kind;

/* Which layers use sliding-window attention (when sliding_window > 0). */
typedef enum orc_swa_kind {
    ORC_SWA_NONE = 0,
    ORC_SWA_ALL = 1,     /* every layer (Mistral-style) */
    ORC_SWA_PATTERN = 2, /* layer il is global iff (il + 1) % swa_period == 0 (gemma3: 6) */
    ORC_SWA_EVEN = 3,    /* even layers windowed, odd layers global (gpt-oss) */
} orc_swa_kind;

/* The configuration, one X-macro: the struct and its Python view (Model.config) are both
 * generated from this list, so they cannot drift apart. Kinds: I32, F32, BOOL, STR and the
 * enums above (shown to Python by name). */
#define ORC_CONFIG_FIELDS(X)                                                                     \
    X(STR, arch)              /* "llama", ... (static) */                                        \
    X(I32, n_layer)                                                                              \
    X(I32, n_embd)                                                                               \
    X(I32, n_head)                                                                               \
    X(I32, n_head_kv)                                                                            \
    X(I32, head_dim)          /* key/query head size (attention.key_length, default n_embd/n_head) */ \
    X(I32, head_dim_v)        /* value head size (attention.value_length, default head_dim) */   \
    X(I32, n_ff)              /* dense FFN width; 0 for MoE-only architectures */                \
    X(I32, n_vocab)           /* rows of token_embd */                                           \
    X(I32, n_ctx_train)                                                                          \
    X(I32, n_rot)             /* rotated dimensions per head (rope.dimension_count, default head_dim) */ \
    X(F32, rms_eps)                                                                              \
    X(F32, rope_theta)        /* rope.freq_base (global layers) */                               \
    X(F32, rope_theta_swa)    /* sliding-window layers (gemma3: 10000) */                        \
    X(F32, rope_freq_scale)   /* 1 / rope.scaling.factor for linear scaling, else 1 */          \
    X(F32, rope_freq_scale_swa)                                                                  \
    X(ROPE, rope_type)                                                                           \
    X(F32, yarn_factor)       /* rope.scaling.factor when rope.scaling.type is yarn; 0 = off */  \
    X(I32, yarn_orig_ctx)     /* rope.scaling.original_context_length */                        \
    X(F32, yarn_beta_fast)                                                                       \
    X(F32, yarn_beta_slow)                                                                       \
    X(F32, yarn_attn_factor)  /* multiplies cos and sin (0.1 ln(factor) + 1 by default) */       \
    X(BOOL, yarn_round)       /* ggml rounds the correction range; HF does not (default: HF) */  \
    X(BOOL, tied_output)      /* no output.weight: logits use token_embd */                      \
    X(BOOL, rope_freqs)       /* rope_freqs.weight (Llama 3.1 frequency factors) */              \
    X(F32, embd_scale)        /* gemma: sqrt(n_embd); else 1 */                                  \
    X(F32, attn_scale)        /* multiplies Q.K */                                               \
    X(F32, attn_softcap)      /* 0 = off */                                                      \
    X(F32, final_softcap)     /* 0 = off */                                                      \
    X(I32, sliding_window)    /* 0 = none */                                                     \
    X(SWA, swa_type)                                                                             \
    X(I32, swa_period)        /* ORC_SWA_PATTERN's period */                                     \
    X(ACT, ffn_act)                                                                              \
    X(I32, n_expert)          /* mixture of experts: experts per layer (0 = dense) */           \
    X(I32, n_expert_used)     /* experts selected per token */                                   \
    X(I32, n_ff_exp)          /* one expert's FFN width */                                       \
    X(ROUTER, router)                                                                            \
    X(BOOL, norm_topk_prob)   /* renormalise the selected experts' weights to sum to 1 */

#define ORC_CF_CTYPE_STR const char *
#define ORC_CF_CTYPE_I32 int32_t
#define ORC_CF_CTYPE_F32 float
#define ORC_CF_CTYPE_BOOL bool
#define ORC_CF_CTYPE_ROPE orc_rope_kind
#define ORC_CF_CTYPE_ACT orc_act
#define ORC_CF_CTYPE_SWA orc_swa_kind
#define ORC_CF_CTYPE_ROUTER orc_router_kind

typedef struct orc_config {
#define ORC_CF_DECLARE(kind, name) ORC_CF_CTYPE_##kind name;
    ORC_CONFIG_FIELDS(ORC_CF_DECLARE)
#undef ORC_CF_DECLARE
} orc_config;

/* The Python view of the configuration: one entry per ORC_CONFIG_FIELDS line. */
typedef enum orc_cf_kind { ORC_CF_STR, ORC_CF_I32, ORC_CF_F32, ORC_CF_BOOL, ORC_CF_ROPE, ORC_CF_ACT, ORC_CF_SWA, ORC_CF_ROUTER } orc_cf_kind;
typedef struct orc_config_field {
    const char *name;
    orc_cf_kind kind;
    size_t offset;
} orc_config_field;
extern const orc_config_field orc_config_fields[];
extern const int orc_n_config_fields;
/* The name of an enum-kind field's value ("neox", "silu", ...). */
const char *orc_config_enum_name(orc_cf_kind kind, int value);

/* ------------------------------------------------------------------ architecture descriptions */

/* Blocks of the layer program (program.c). Options select the variants a block has; each
 * option brings tensors (tensors.h) and hook steps (steps.h). */
typedef enum orc_block_kind { ORC_BLOCK_ATTN = 0, ORC_BLOCK_FFN = 1, ORC_BLOCK_MOE = 2, ORC_BLOCK_KIND_COUNT } orc_block_kind;

enum {
    ORC_OPT_QKV_BIAS = 1u << 0,  /* attn: biases of the q, k, v projections (qwen2, gpt-oss) */
    ORC_OPT_QK_NORM = 1u << 1,   /* attn: per-head RMSNorm of q and k before RoPE (qwen3, gemma3) */
    ORC_OPT_POST_NORM = 1u << 2, /* attn/ffn: RMSNorm of the block output before the residual add (gemma3) */
    ORC_OPT_O_BIAS = 1u << 3,    /* attn: bias of the output projection (gpt-oss) */
    ORC_OPT_SINKS = 1u << 4,     /* attn: a learned per-head sink logit in the softmax (gpt-oss) */
    ORC_OPT_EXP_BIAS = 1u << 5,  /* moe: router and expert biases (gpt-oss) */
    ORC_OPT_NORM_PA = 1u << 6,   /* moe: the pre-FFN norm is stored as post_attention_norm.weight (gpt-oss) */
    ORC_OPT_ALWAYS = 0,          /* (in tables: present whenever the block is) */
    ORC_OPT_NONE = 0,            /* (in tables: no option removes it) */
};

typedef struct orc_block_use {
    orc_block_kind kind;
    uint32_t opts;
} orc_block_use;

#define ORC_MAX_BLOCKS 4

typedef struct orc_arch_desc {
    const char *name; /* general.architecture */
    orc_block_use blocks[ORC_MAX_BLOCKS];
    int n_blocks;
    orc_rope_kind rope;
    orc_act act;
    /* Architecture-specific hyperparameters and defaults, after the common ones are read
     * (may be NULL). */
    orc_status (*hparams)(const orc_gguf *g, orc_config *c, orc_err *err);
} orc_arch_desc;

/* The architectures orc runs, NULL-terminated. */
extern const orc_arch_desc *const orc_archs[];
/* "llama, qwen2, ..." for messages. */
const char *orc_arch_names(void);
/* Does `d` use block `kind`, and with which options (0 when unused; see orc_arch_uses). */
bool orc_arch_uses(const orc_arch_desc *d, orc_block_kind kind, uint32_t *opts);

/* Read and check the configuration: the architecture, the common hyperparameters, then the
 * architecture's own. Unsupported architectures name the ones that are. */
orc_status orc_config_from_gguf(const orc_gguf *g, orc_config *cfg, const orc_arch_desc **desc, orc_err *err);

/* Does layer `il` use sliding-window attention? */
bool orc_config_layer_swa(const orc_config *c, int32_t il);

/* Hyperparameter helpers for architecture files: "<arch>.<suffix>". An integer may also be
 * stored per layer (an array of n_layer equal values). */
orc_status orc_hp_int(const orc_gguf *g, const orc_config *c, const char *suffix, bool required, int64_t dflt,
                      int64_t min, int64_t max, int32_t *out, orc_err *err);
orc_status orc_hp_float(const orc_gguf *g, const orc_config *c, const char *suffix, float dflt, float *out,
                        orc_err *err);
orc_status orc_hp_bool(const orc_gguf *g, const orc_config *c, const char *suffix, bool dflt, bool *out, orc_err *err);

#ifdef __cplusplus
}
#endif

#endif /* ORC_ARCH_H */
