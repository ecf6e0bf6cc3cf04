/* attention_flash.cuh - FlashAttention-style prefill attention over an f16/bf16 KV cache
 * (attention_flash.cu): tensor-core Q.K^T and P.V (mma.sync m16n8k16, float32 accumulate),
 * online softmax in float32, grouped-query heads, causal or sliding-window masks, logit
 * softcap and per-head attention sinks.
 *
 * Semantics, for query t < n and head h < n_head (kv head g = h / (n_head / n_head_kv)):
 *   p = pos[t]; keys j with lo <= j <= p, lo = window > 0 ? max(0, p - window + 1) : 0;
 *   K_j, V_j = cache rows kv_base[0] + j, head g (at g * head_dim / g * head_dim_v);
 *   s_j = scale * (q_t,h . K_j), then s_j = softcap * tanh(s_j / softcap) if softcap > 0;
 *   out = sum_j e^(s_j - m) V_j / (sum_j e^(s_j - m) [+ e^(sink_h - m)]), m the max of the
 *   s_j [and sink_h].
 * The query is rounded to the cache dtype (round to nearest even) and the probabilities to
 * it for the P.V product; scores, softmax and accumulation are float32.
 * Contract of a launch: the n tokens are consecutive positions of one sequence
 * (pos[t] = pos[0] + t, kv_base constant); pos[0] may be > 0 (a later chunk of a prompt
 * sees the earlier keys). Cache rows outside the keys some query of a tile can see are
 * never read.
 */
#ifndef ORC_ATTENTION_FLASH_CUH
#define ORC_ATTENTION_FLASH_CUH

#ifndef ORC_SIMT_EMU /* the host emulator (tests/c/simt_emu.h) defines cudaError_t & co. */
#include <cuda_runtime.h>
#endif
#include <stdint.h>

#include "core/dtype.h" /* orc_dtype */

typedef struct orc_attn_flash_args {
    const float *q;          /* [n][q_stride], head h at h * head_dim */
    int64_t q_stride;        /* floats */
    const void *k_cache;     /* [rows][k_stride] of kv_dtype; 16-byte aligned */
    const void *v_cache;     /* [rows][v_stride] */
    orc_dtype kv_dtype;      /* ORC_DTYPE_F16 or ORC_DTYPE_BF16 (F32: cudaErrorNotSupported) */
    int64_t k_stride, v_stride; /* elements; multiples of 8 */
    float *out;              /* [n][out_stride], head h at h * head_dim_v */
    int64_t out_stride;
    const int32_t *pos;      /* device [n] */
    const int32_t *kv_base;  /* device [n] (kv_base[0] is used: one sequence per launch) */
    int64_t n;               /* tokens, >= 0 */
    int32_t n_head, n_head_kv, head_dim, head_dim_v; /* head_dim == head_dim_v in {64, 80, 96, 128, 256} */
    float scale, softcap;    /* softcap 0: off */
    int32_t window;          /* 0: causal; else keys p - window < j <= p */
    const float *sinks;      /* device [n_head] or NULL */
} orc_attn_flash_args;

/* Can orc_launch_attention_flash run this configuration (dtype, head sizes)? */
bool orc_attention_flash_supported(orc_dtype kv_dtype, int32_t head_dim, int32_t head_dim_v);

/* Queue the attention on stream s. cudaErrorNotSupported for a configuration the kernel
 * does not handle (float32 caches, other head sizes, misaligned caches or strides: the
 * caller falls back to orc_launch_attention); cudaErrorInvalidValue for bad arguments;
 * otherwise the launch status. Allocates nothing (graph-capturable). */
cudaError_t orc_launch_attention_flash(const orc_attn_flash_args *a, cudaStream_t s);

#endif /* ORC_ATTENTION_FLASH_CUH */
