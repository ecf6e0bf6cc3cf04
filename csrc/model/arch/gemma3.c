/* gemma3.c - Gemma 3: qk-norm, norms after attention and after the FFN, a GELU (tanh)
 * gated FFN, embeddings scaled by sqrt(n_embd), and sliding-window attention on five of
 * every six layers with their own RoPE base. */
#include <math.h> /* sqrtf */

#include "model/arch.h"

static orc_status gemma3_hparams(const orc_gguf *g, orc_config *c, orc_err *err) {
    c->embd_scale = sqrtf((float)c->n_embd);
    /* Local layers: base 10000, no scaling (HF rope_local_base_freq; llama.cpp hard-codes it).
     * Every 6th layer is global (HF sliding_window_pattern / llama.cpp set_swa_pattern(6)). */
    c->rope_theta_swa = 10000.0f;
    c->rope_freq_scale_swa = 1.0f;
    c->swa_type = ORC_SWA_PATTERN;
    c->swa_period = 6;
    orc_status st = orc_hp_int(g, c, "attention.sliding_window", true, 0, 1, 1 << 24, &c->sliding_window, err);
    if (st != ORC_OK) return st;
    /* HF scales by query_pre_attn_scalar^-0.5, which GGUF does not store: it is head_dim for
     * every Gemma 3 but the 27B (62 layers), where it is n_embd/n_head (llama.cpp's rule). */
    if (c->n_layer == 62) c->attn_scale = 1.0f / sqrtf((float)(c->n_embd / c->n_head));
    return ORC_OK;
}

const orc_arch_desc orc_arch_gemma3 = {
    .name = "gemma3",
    .blocks = {{ORC_BLOCK_ATTN, ORC_OPT_QK_NORM | ORC_OPT_POST_NORM}, {ORC_BLOCK_FFN, ORC_OPT_POST_NORM}},
    .n_blocks = 2,
    .rope = ORC_ROPE_NEOX,
    .act = ORC_ACT_GELU_TANH,
    .hparams = gemma3_hparams,
};
