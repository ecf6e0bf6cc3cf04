/* tensors.h - every tensor role an architecture can have, one line each: its GGUF name,
 * its kind (how it is stored on a backend), its shape in terms of the configuration, and
 * the block (and block option) that uses it. The tensor plan, the weight table, loading,
 * memory accounting and Model.tensor() all come from this table (plan.c, model.c).
 *
 * Kinds: MATRIX weights are stored in the model's weight dtype (or kept as their GGUF
 * blocks with weights="quantized"); VECTOR tensors (norms, biases, sinks) are float32 on
 * every backend, as HF keeps them; EXPERTS are 3-D [n_expert][rows][cols] matrices;
 * EXPBIAS are per-expert float32 biases [n_expert][rows].
 *
 * Shapes are GGUF order (ne0 = the contiguous dimension = a matrix's input features). */
#ifndef ORC_TENSORS_H
#define ORC_TENSORS_H

#include "model/arch.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum orc_dim {
    ORC_D_NONE = 0,
    ORC_D_EMBD,     /* n_embd */
    ORC_D_Q,        /* n_head * head_dim */
    ORC_D_K,        /* n_head_kv * head_dim */
    ORC_D_V,        /* n_head_kv * head_dim_v */
    ORC_D_O,        /* n_head * head_dim_v */
    ORC_D_FF,       /* n_ff */
    ORC_D_VOCAB,    /* n_vocab */
    ORC_D_HEAD,     /* head_dim */
    ORC_D_HEAD_V,   /* head_dim_v */
    ORC_D_ROT2,     /* n_rot / 2 */
    ORC_D_NHEAD,    /* n_head */
    ORC_D_NHEAD_KV, /* n_head_kv */
    ORC_D_EXPERT,   /* n_expert */
    ORC_D_EXP_USED, /* n_expert_used */
    ORC_D_FF_EXP,   /* n_ff_exp */
} orc_dim;

typedef enum orc_tensor_kind { ORC_TK_MATRIX, ORC_TK_VECTOR, ORC_TK_EXPERTS, ORC_TK_EXPBIAS } orc_tensor_kind;
typedef enum orc_tensor_scope { ORC_TS_GLOBAL, ORC_TS_LAYER } orc_tensor_scope;

#define ORC_B_NONE 0u
#define ORC_B_ATTN (1u << ORC_BLOCK_ATTN)
#define ORC_B_FFN (1u << ORC_BLOCK_FFN)
#define ORC_B_MOE (1u << ORC_BLOCK_MOE)

/* X(slot, scope, GGUF name (after "blk.<i>." for layer tensors), kind, ne0, ne1, ne2,
 *   blocks that use it (mask; NONE: global), option that brings it, option that removes it,
 *   required when used) */
#define ORC_TENSORS(X)                                                                                      \
    X(TOK_EMBD, GLOBAL, "token_embd.weight", MATRIX, EMBD, VOCAB, NONE, NONE, ALWAYS, NONE, true)               \
    X(OUTPUT_NORM, GLOBAL, "output_norm.weight", VECTOR, EMBD, NONE, NONE, NONE, ALWAYS, NONE, true)            \
    X(OUTPUT, GLOBAL, "output.weight", MATRIX, EMBD, VOCAB, NONE, NONE, ALWAYS, NONE, false)                    \
    X(ROPE_FREQS, GLOBAL, "rope_freqs.weight", VECTOR, ROT2, NONE, NONE, NONE, ALWAYS, NONE, false)             \
    X(ATTN_NORM, LAYER, "attn_norm.weight", VECTOR, EMBD, NONE, NONE, ATTN, ALWAYS, NONE, true)                 \
    X(WQ, LAYER, "attn_q.weight", MATRIX, EMBD, Q, NONE, ATTN, ALWAYS, NONE, true)                              \
    X(WK, LAYER, "attn_k.weight", MATRIX, EMBD, K, NONE, ATTN, ALWAYS, NONE, true)                              \
    X(WV, LAYER, "attn_v.weight", MATRIX, EMBD, V, NONE, ATTN, ALWAYS, NONE, true)                              \
    X(BQ, LAYER, "attn_q.bias", VECTOR, Q, NONE, NONE, ATTN, QKV_BIAS, NONE, true)                              \
    X(BK, LAYER, "attn_k.bias", VECTOR, K, NONE, NONE, ATTN, QKV_BIAS, NONE, true)                              \
    X(BV, LAYER, "attn_v.bias", VECTOR, V, NONE, NONE, ATTN, QKV_BIAS, NONE, true)                              \
    X(Q_NORM, LAYER, "attn_q_norm.weight", VECTOR, HEAD, NONE, NONE, ATTN, QK_NORM, NONE, true)                 \
    X(K_NORM, LAYER, "attn_k_norm.weight", VECTOR, HEAD, NONE, NONE, ATTN, QK_NORM, NONE, true)                 \
    X(WO, LAYER, "attn_output.weight", MATRIX, O, EMBD, NONE, ATTN, ALWAYS, NONE, true)                         \
    X(BO, LAYER, "attn_output.bias", VECTOR, EMBD, NONE, NONE, ATTN, O_BIAS, NONE, true)                        \
    X(SINKS, LAYER, "attn_sinks.weight", VECTOR, NHEAD, NONE, NONE, ATTN, SINKS, NONE, true)                    \
    X(ATTN_POST_NORM, LAYER, "post_attention_norm.weight", VECTOR, EMBD, NONE, NONE, ATTN, POST_NORM, NONE, true) \
    X(FFN_NORM, LAYER, "ffn_norm.weight", VECTOR, EMBD, NONE, NONE, FFN | ORC_B_MOE, ALWAYS, NORM_PA, true)                    \
    X(W_GATE, LAYER, "ffn_gate.weight", MATRIX, EMBD, FF, NONE, FFN, ALWAYS, NONE, true)                        \
    X(W_UP, LAYER, "ffn_up.weight", MATRIX, EMBD, FF, NONE, FFN, ALWAYS, NONE, true)                            \
    X(W_DOWN, LAYER, "ffn_down.weight", MATRIX, FF, EMBD, NONE, FFN, ALWAYS, NONE, true)                        \
    X(FFN_POST_NORM, LAYER, "post_ffw_norm.weight", VECTOR, EMBD, NONE, NONE, FFN, POST_NORM, NONE, true)       \
    X(FFN_NORM_PA, LAYER, "post_attention_norm.weight", VECTOR, EMBD, NONE, NONE, MOE, NORM_PA, NONE, true)  \
    X(ROUTER, LAYER, "ffn_gate_inp.weight", MATRIX, EMBD, EXPERT, NONE, MOE, ALWAYS, NONE, true)                \
    X(ROUTER_B, LAYER, "ffn_gate_inp.bias", VECTOR, EXPERT, NONE, NONE, MOE, EXP_BIAS, NONE, true)              \
    X(GATE_EXPS, LAYER, "ffn_gate_exps.weight", EXPERTS, EMBD, FF_EXP, EXPERT, MOE, ALWAYS, NONE, true)         \
    X(UP_EXPS, LAYER, "ffn_up_exps.weight", EXPERTS, EMBD, FF_EXP, EXPERT, MOE, ALWAYS, NONE, true)             \
    X(DOWN_EXPS, LAYER, "ffn_down_exps.weight", EXPERTS, FF_EXP, EMBD, EXPERT, MOE, ALWAYS, NONE, true)         \
    X(GATE_EXPS_B, LAYER, "ffn_gate_exps.bias", EXPBIAS, FF_EXP, EXPERT, NONE, MOE, EXP_BIAS, NONE, true)       \
    X(UP_EXPS_B, LAYER, "ffn_up_exps.bias", EXPBIAS, FF_EXP, EXPERT, NONE, MOE, EXP_BIAS, NONE, true)           \
    X(DOWN_EXPS_B, LAYER, "ffn_down_exps.bias", EXPBIAS, EMBD, EXPERT, NONE, MOE, EXP_BIAS, NONE, true)

/* Slots: global tensors first, then the per-layer ones (ORC_T_FIRST_LAYER .. ORC_T_COUNT-1). */
typedef enum orc_tensor_slot {
#define ORC_T_ENUM(slot, scope, name, kind, d0, d1, d2, blocks, opt, unless, req) ORC_T_##slot,
    ORC_TENSORS(ORC_T_ENUM)
#undef ORC_T_ENUM
    ORC_T_COUNT
} orc_tensor_slot;
#define ORC_T_FIRST_LAYER ORC_T_ATTN_NORM
#define ORC_T_N_GLOBAL ((int)ORC_T_FIRST_LAYER)
#define ORC_T_N_LAYER ((int)ORC_T_COUNT - (int)ORC_T_FIRST_LAYER)

typedef struct orc_tensor_role {
    const char *name;
    orc_tensor_scope scope;
    orc_tensor_kind kind;
    orc_dim dims[3];
    uint32_t blocks; /* ORC_B_* mask; ORC_B_NONE for global tensors */
    uint32_t opt;    /* ORC_OPT_* that brings it (0: always with its block) */
    uint32_t unless; /* ORC_OPT_* that removes it (0: none) */
    bool required;
} orc_tensor_role;

extern const orc_tensor_role orc_tensor_roles[ORC_T_COUNT];

/* The size of a dimension for configuration c. */
int64_t orc_dim_size(const orc_config *c, orc_dim d);

/* Does architecture d use this tensor role (its block is used, with the role's option)? */
bool orc_role_used(const orc_arch_desc *d, orc_tensor_slot slot);

/* The tensor plan: for every role and layer, the GGUF tensor that fills it (NULL where the
 * architecture has none, or an optional tensor is absent). Index with orc_plan_index. */
typedef struct orc_plan {
    const orc_gguf_tensor **t;
    int32_t n_layer;
    int32_t n_slots; /* ORC_T_N_GLOBAL + n_layer * ORC_T_N_LAYER */
} orc_plan;

static inline int32_t orc_plan_index(orc_tensor_slot slot, int32_t il) {
    return slot < ORC_T_FIRST_LAYER ? (int32_t)slot
                                    : ORC_T_N_GLOBAL + il * ORC_T_N_LAYER + ((int32_t)slot - ORC_T_FIRST_LAYER);
}

/* Find every tensor the architecture needs and check its shape and type; also sets
 * c->n_vocab, tied_output and rope_freqs, and refuses tensors of layers past block_count.
 * Unexpected extra tensors are fine. */
orc_status orc_plan_build(const orc_gguf *g, const orc_arch_desc *d, orc_config *c, orc_plan *p, orc_err *err);
void orc_plan_free(orc_plan *p);

#ifdef __cplusplus
}
#endif

#endif /* ORC_TENSORS_H */
