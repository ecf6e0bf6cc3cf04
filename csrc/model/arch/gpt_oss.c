/* gpt_oss.c - OpenAI's gpt-oss (GGUF arch "gpt-oss"; llama.cpp's LLM_ARCH_OPENAI_MOE, HF's
 * GptOssForCausalLM): attention with biases on every projection and a learned per-head sink
 * logit, sliding windows on even layers and full attention on odd ones; a mixture of
 * experts with biases, routed by the softmax of the top-k raw logits, the clamped SwiGLU
 * (alpha 1.702, limit 7), and the pre-FFN norm stored as post_attention_norm; NeoX RoPE
 * with YaRN. docs/moe.md has the details and where HF and ggml differ. */
#include "model/arch.h"

static orc_status gpt_oss_hparams(const orc_gguf *g, orc_config *c, orc_err *err) {
    c->swa_type = ORC_SWA_EVEN;
    c->router = ORC_ROUTER_TOPK_SOFTMAX;
    return orc_hp_int(g, c, "attention.sliding_window", true, 0, 1, 1 << 24, &c->sliding_window, err);
}

const orc_arch_desc orc_arch_gpt_oss = {
    .name = "gpt-oss",
    .blocks = {{ORC_BLOCK_ATTN, ORC_OPT_QKV_BIAS | ORC_OPT_O_BIAS | ORC_OPT_SINKS},
               {ORC_BLOCK_MOE, ORC_OPT_EXP_BIAS | ORC_OPT_NORM_PA}},
    .n_blocks = 2,
    .rope = ORC_ROPE_NEOX,
    .act = ORC_ACT_SWIGLU_OAI,
    .hparams = gpt_oss_hparams,
};
