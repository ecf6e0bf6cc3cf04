/* qwen3moe.c - Qwen3-MoE (GGUF arch "qwen3moe"): qwen3's attention (per-head q/k norms, no
 * biases) and a mixture of experts routed by a softmax over all experts, then the top k,
 * renormalised to sum to 1 (HF norm_topk_prob; llama.cpp always renormalises for this
 * architecture, and reads expert_weights_norm where a file stores it). */
#include "model/arch.h"

static orc_status qwen3moe_hparams(const orc_gguf *g, orc_config *c, orc_err *err) {
    c->router = ORC_ROUTER_SOFTMAX_TOPK;
    return orc_hp_bool(g, c, "expert_weights_norm", true, &c->norm_topk_prob, err);
}

const orc_arch_desc orc_arch_qwen3moe = {
    .name = "qwen3moe",
    .blocks = {{ORC_BLOCK_ATTN, ORC_OPT_QK_NORM}, {ORC_BLOCK_MOE, 0}},
    .n_blocks = 2,
    .rope = ORC_ROPE_NEOX,
    .act = ORC_ACT_SILU,
    .hparams = qwen3moe_hparams,
};
