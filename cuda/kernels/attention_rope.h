/* attention_rope.h - the decode attention's fused rope (orc_launch_attention's `rope`; the kernel
 * in attention_kernel.cuh): plain C, shared by the launcher's declaration and the kernel. */
#ifndef ORC_ATTENTION_ROPE_H
#define ORC_ATTENTION_ROPE_H

#include <stdint.h>

/* One query token's q, k and v as the q/k/v products wrote them. The kernel applies the per-head
 * norms (q_norm / k_norm [head_dim], both or neither), rotates q and the new key by rope.cu's
 * arithmetic (head_norm.cuh, rope_pair.cuh), stores the new K and V rows into the caches at
 * kv_row[0] and uses them as that row's key and value: the values rope + KV store + attention
 * give, bit for bit, in one launch. q and k are left as they came (not normed or rotated). */
typedef struct orc_attn_rope {
    const float *k, *v;           /* token 0's [n_head_kv * head_dim] / [n_head_kv * head_dim_v] */
    const float *q_norm, *k_norm; /* NULL: no norm */
    float eps;
    const float *inv_freq;        /* [n_rot / 2], as orc_launch_rope_kv_store's */
    int32_t n_rot, neox;
    float freq_scale, mscale;
} orc_attn_rope;

#endif /* ORC_ATTENTION_ROPE_H */
