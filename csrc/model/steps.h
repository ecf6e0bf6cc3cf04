/* steps.h - the hook points of the layer program, in execution order: one line per step of
 * a decoder layer, with the block (and option) that computes it and its width. The hook
 * table of a model (Model.hook_names), orc/hooks.py's HOOK_STEPS (read from here through
 * the binding) and the program's HOOK() calls all use this list.
 *
 * A hook is named "blk.<i>.<step>"; "embd" comes before the layers, "output_norm" and
 * "logits" after them. Widths are per token: WIDTH for plain rows, HEADS x HDIM for
 * per-head activations. ON_REQUEST steps cost extra work and are computed only when
 * captured (and glob patterns match them only when they name the step). */
#ifndef ORC_STEPS_H
#define ORC_STEPS_H

#include "model/tensors.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ORC_BL_ALL (ORC_B_ATTN | ORC_B_FFN | ORC_B_MOE)

/* X(step, name, blocks (mask: present when the layer has any of them), option,
 *   heads, head_dim, width (used when heads is NONE), on_request) */
#define ORC_STEPS(X)                                                              \
    X(ATTN_NORM, "attn_norm", ORC_B_ATTN, ALWAYS, NONE, NONE, EMBD, false)        \
    X(Q, "q", ORC_B_ATTN, ALWAYS, NHEAD, HEAD, NONE, false)                       \
    X(K, "k", ORC_B_ATTN, ALWAYS, NHEAD_KV, HEAD, NONE, false)                    \
    X(V, "v", ORC_B_ATTN, ALWAYS, NHEAD_KV, HEAD_V, NONE, false)                  \
    X(Q_NORM, "q_norm", ORC_B_ATTN, QK_NORM, NHEAD, HEAD, NONE, false)            \
    X(K_NORM, "k_norm", ORC_B_ATTN, QK_NORM, NHEAD_KV, HEAD, NONE, false)         \
    X(Q_ROPE, "q_rope", ORC_B_ATTN, ALWAYS, NHEAD, HEAD, NONE, false)             \
    X(K_ROPE, "k_rope", ORC_B_ATTN, ALWAYS, NHEAD_KV, HEAD, NONE, false)          \
    X(ATTN_PROBS, "attn_probs", ORC_B_ATTN, ALWAYS, NHEAD, NONE, NONE, true)      \
    X(ATTN_OUT, "attn_out", ORC_B_ATTN, ALWAYS, NHEAD, HEAD_V, NONE, false)       \
    X(ATTN_PROJ, "attn_proj", ORC_B_ATTN, ALWAYS, NONE, NONE, EMBD, false)        \
    X(ATTN_POST_NORM, "attn_post_norm", ORC_B_ATTN, POST_NORM, NONE, NONE, EMBD, false) \
    X(RESID_MID, "resid_mid", ORC_B_ATTN, ALWAYS, NONE, NONE, EMBD, false)        \
    X(FFN_NORM, "ffn_norm", ORC_B_FFN | ORC_B_MOE, ALWAYS, NONE, NONE, EMBD, false) \
    X(FFN_GATE, "ffn_gate", ORC_B_FFN, ALWAYS, NONE, NONE, FF, false)             \
    X(FFN_UP, "ffn_up", ORC_B_FFN, ALWAYS, NONE, NONE, FF, false)                 \
    X(FFN_ACT, "ffn_act", ORC_B_FFN, ALWAYS, NONE, NONE, FF, false)               \
    X(MOE_ROUTER, "moe_router", ORC_B_MOE, ALWAYS, NONE, NONE, EXPERT, false)     \
    X(MOE_TOPK_IDS, "moe_topk_ids", ORC_B_MOE, ALWAYS, NONE, NONE, EXP_USED, false) \
    X(MOE_TOPK_W, "moe_topk_w", ORC_B_MOE, ALWAYS, NONE, NONE, EXP_USED, false)   \
    X(MOE_EXPERTS, "moe_experts", ORC_B_MOE, ALWAYS, EXP_USED, EMBD, NONE, true)  \
    X(FFN_OUT, "ffn_out", ORC_B_FFN | ORC_B_MOE, ALWAYS, NONE, NONE, EMBD, false) \
    X(FFN_POST_NORM, "ffn_post_norm", ORC_B_FFN | ORC_B_MOE, POST_NORM, NONE, NONE, EMBD, false) \
    X(RESID_POST, "resid_post", ORC_BL_ALL, ALWAYS, NONE, NONE, EMBD, false)

typedef enum orc_step {
#define ORC_S_ENUM(step, name, blocks, opt, heads, hdim, width, on_request) ORC_S_##step,
    ORC_STEPS(ORC_S_ENUM)
#undef ORC_S_ENUM
    ORC_S_COUNT
} orc_step;

typedef struct orc_step_desc {
    const char *name;
    uint32_t blocks;
    uint32_t opt;
    orc_dim heads, head_dim, width;
    bool on_request;
} orc_step_desc;

extern const orc_step_desc orc_steps[ORC_S_COUNT];

/* attn_probs rows are [heads][keys] with keys = the positions the call's queries can see:
 * the hook table gives its width per key (heads), and the capture buffer is sized per call. */
#define ORC_STEP_PER_KEY(s) ((s) == ORC_S_ATTN_PROBS)
/* moe_topk_ids holds expert indices: captured as float32 (exact), handed to Python as int32. */
#define ORC_STEP_INDEX(s) ((s) == ORC_S_MOE_TOPK_IDS)

#ifdef __cplusplus
}
#endif

#endif /* ORC_STEPS_H */
