/* arch.h - from GGUF metadata to a model configuration and a tensor plan, for
 * the decoder-only architectures orc runs: llama (Llama 2/3, Mistral, TinyLlama),
 * qwen2, qwen3 and gemma3. Every hyperparameter the reference implementations
 * read is read here; a missing, mistyped or inconsistent one is an error that
 * names the key (../shared/HARDENING.md rows 15-17). */
#ifndef ORC_ARCH_H
#define ORC_ARCH_H

#include <stdbool.h>
#include <stdint.h>

#include "gguf/gguf.h"
#include "core/orc.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum orc_arch { ORC_ARCH_LLAMA, ORC_ARCH_QWEN2, ORC_ARCH_QWEN3, ORC_ARCH_GEMMA3, ORC_ARCH_COUNT } orc_arch;

/* RoPE pairing: NORM rotates adjacent pairs (x[2i], x[2i+1]) as llama.cpp's llama
 * does on its permuted Q/K weights; NEOX rotates (x[i], x[i + n_rot/2]) (Qwen, Gemma). */
typedef enum orc_rope_kind { ORC_ROPE_NORM = 0, ORC_ROPE_NEOX = 2 } orc_rope_kind;

typedef enum orc_ffn_act { ORC_ACT_SILU = 0, ORC_ACT_GELU_TANH = 1 } orc_ffn_act;

typedef struct orc_config {
    orc_arch arch;
    const char *arch_name;   /* "llama", ... (static) */
    int32_t n_layer;
    int32_t n_embd;
    int32_t n_head, n_head_kv;
    int32_t head_dim;        /* key/query head size (attention.key_length, default n_embd/n_head) */
    int32_t head_dim_v;      /* value head size (attention.value_length, default head_dim) */
    int32_t n_ff;
    int32_t n_vocab;         /* rows of token_embd */
    int32_t n_ctx_train;
    int32_t n_rot;           /* rotated dimensions per head (rope.dimension_count, default head_dim) */
    float rms_eps;
    float rope_base;         /* rope.freq_base (global layers) */
    float rope_base_swa;     /* sliding-window layers (gemma3: 10000) */
    float rope_freq_scale;   /* 1 / rope.scaling.factor for linear scaling, else 1 */
    float rope_freq_scale_swa;
    orc_rope_kind rope_kind;
    bool qkv_bias;           /* qwen2 */
    bool qk_norm;            /* qwen3, gemma3: per-head RMSNorm of Q and K before RoPE */
    bool post_norms;         /* gemma3: norms after attention and after the FFN */
    bool tied_output;        /* no output.weight: logits use token_embd */
    bool has_rope_freqs;     /* rope_freqs.weight (Llama 3.1 frequency factors) */
    float embd_scale;        /* gemma: sqrt(n_embd); else 1 */
    float attn_scale;        /* multiplies Q.K */
    float attn_softcap;      /* 0 = off */
    float final_softcap;     /* 0 = off */
    int32_t sliding_window;  /* 0 = none */
    int32_t swa_pattern;     /* gemma3: layer il is global iff (il + 1) % swa_pattern == 0 */
    orc_ffn_act act;
} orc_config;

/* Read and check the configuration. Unsupported architectures name the ones that are. */
orc_status orc_config_from_gguf(const orc_gguf *g, orc_config *cfg, orc_err *err);

/* Does layer `il` use sliding-window attention? */
bool orc_config_layer_swa(const orc_config *c, int32_t il);

/* The GGUF tensors of one decoder layer; NULL where the architecture has none. */
typedef struct orc_layer_plan {
    const orc_gguf_tensor *attn_norm;       /* [n_embd] */
    const orc_gguf_tensor *wq, *wk, *wv;    /* [n_head*head_dim, n_embd], [n_head_kv*head_dim, n_embd], [n_head_kv*head_dim_v, n_embd] */
    const orc_gguf_tensor *bq, *bk, *bv;    /* qwen2 biases */
    const orc_gguf_tensor *q_norm, *k_norm; /* [head_dim] */
    const orc_gguf_tensor *wo;              /* [n_embd, n_head*head_dim_v] */
    const orc_gguf_tensor *attn_post_norm;  /* gemma3 [n_embd] */
    const orc_gguf_tensor *ffn_norm;        /* [n_embd] */
    const orc_gguf_tensor *w_gate, *w_up;   /* [n_ff, n_embd] */
    const orc_gguf_tensor *w_down;          /* [n_embd, n_ff] */
    const orc_gguf_tensor *ffn_post_norm;   /* gemma3 [n_embd] */
} orc_layer_plan;

typedef struct orc_tensor_plan {
    const orc_gguf_tensor *tok_embd;    /* [n_vocab, n_embd] */
    const orc_gguf_tensor *output_norm; /* [n_embd] */
    const orc_gguf_tensor *output;      /* [n_vocab, n_embd], NULL when tied */
    const orc_gguf_tensor *rope_freqs;  /* [n_rot/2] or NULL */
    orc_layer_plan *layers;             /* n_layer entries, owned */
    int32_t n_layer;
} orc_tensor_plan;

/* Find every tensor the architecture needs and check its shape and type; also sets
 * cfg->n_vocab, tied_output and has_rope_freqs. Unexpected extra tensors are fine. */
orc_status orc_tensor_plan_build(const orc_gguf *g, orc_config *cfg, orc_tensor_plan *plan, orc_err *err);
void orc_tensor_plan_free(orc_tensor_plan *plan);

#ifdef __cplusplus
}
#endif

#endif /* ORC_ARCH_H */
