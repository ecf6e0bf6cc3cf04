/* qwen3.c - Qwen3 (dense): no projection biases; per-head RMSNorm of q and k before RoPE. */
#include "model/arch.h"

const orc_arch_desc orc_arch_qwen3 = {
    .name = "qwen3",
    .blocks = {{ORC_BLOCK_ATTN, ORC_OPT_QK_NORM}, {ORC_BLOCK_FFN, 0}},
    .n_blocks = 2,
    .rope = ORC_ROPE_NEOX,
    .act = ORC_ACT_SILU,
};
