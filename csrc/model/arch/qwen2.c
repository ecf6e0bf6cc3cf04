/* qwen2.c - Qwen2 / Qwen2.5: llama's layer with biases on the q, k, v projections and
 * NeoX RoPE. */
#include "model/arch.h"

const orc_arch_desc orc_arch_qwen2 = {
    .name = "qwen2",
    .blocks = {{ORC_BLOCK_ATTN, ORC_OPT_QKV_BIAS}, {ORC_BLOCK_FFN, 0}},
    .n_blocks = 2,
    .rope = ORC_ROPE_NEOX,
    .act = ORC_ACT_SILU,
};
