/* llama.c - Llama 2/3, Mistral, TinyLlama, SmolLM: pre-norm attention and a SiLU-gated
 * FFN; RoPE on adjacent pairs (llama.cpp permutes Q/K rows when converting HF weights). */
#include "model/arch.h"

const orc_arch_desc orc_arch_llama = {
    .name = "llama",
    .blocks = {{ORC_BLOCK_ATTN, 0}, {ORC_BLOCK_FFN, 0}},
    .n_blocks = 2,
    .rope = ORC_ROPE_NORM,
    .act = ORC_ACT_SILU,
};
