/* attention_rope.cuh - what the decode attention needs to do a one-token step's rope and KV
 * store itself (attention_kernel.cuh; orc_launch_attention's `rope`). Plain types: the host
 * emulator includes it too. */
#ifndef ORC_ATTENTION_ROPE_CUH
#define ORC_ATTENTION_ROPE_CUH

#include <stdint.h>

/* The launch's one token: q is its raw (not rotated) row, k and v its raw rows [n_head_kv][hd]
 * and [n_head_kv][hdv]. Every block rotates its q head and its KV head's k with rope_pair
 * (rope.cu's arithmetic) and rounds k and v as the cache stores and returns them, so that key p
 * is what the unfused rope + KV store would have written and attention read back; the first
 * block of each KV head (query head h % group 0, split 0) stores them to the cache row. No block
 * reads that row. n_rot, neox, freq_scale, mscale, inv_freq: as orc_launch_rope_kv_store's. */
struct attn_rope {
    const float *k, *v; /* NULL k: not fused (q rotated, the row stored already) */
    const float *inv_freq;
    float freq_scale, mscale;
    int32_t n_rot, neox;
};

#endif /* ORC_ATTENTION_ROPE_CUH */
