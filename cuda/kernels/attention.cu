/* attention.cu - causal (optionally sliding-window) attention over the KV cache
 * with float32 scores and softmax, grouped-query heads.
 *
 * Grid: (query token x head, key split). A block walks its range of keys in tiles
 * of ATTN_TILE. Scores: each thread takes one key of the tile and reads its whole K
 * row (staged in its own shared-memory slot by 16-byte cp.async, all in flight at once:
 * dot_row_staged), so a tile's dot products run side by side
 * rather than one warp reduction per key (decode is latency-bound, not bandwidth-
 * bound). Values: each warp takes every ATTN_WARPS-th key, its lanes spanning the
 * value dimension, so V rows are read coalesced. An online
 * softmax (running max, rescaling the accumulators when the max grows) folds each
 * tile into float32 accumulators held in registers (ATTN_MAX_DV/32 per lane).
 *
 * Splitting the keys across blocks (flash-decoding) keeps the GPU busy when there
 * are few queries (decode: one token, a handful of heads); each split writes its
 * (max, sum, accumulator) and the last split of a (query, head) to finish merges them
 * (attn_combine, in the same launch: an atomic count per row says who is last). The split
 * policy is one rule whatever launches the kernels: split iff n * n_head < n_sm, in
 * chunks of ATTN_SPLIT_KEYS keys from the query's first visible key. A launch sized
 * for more keys than a query sees (a recorded CUDA graph is sized for the whole
 * cache) only adds empty splits, which leave at once and are not merged (the merge waits
 * for the query's own splits): so the result does not depend on the launch's key bound,
 * bit for bit, and a graph recorded for n_ctx keys pays little for the splits it does not
 * need (it merged them all as zeros until device run 22).
 *
 * Inputs are explicit device arrays: pos[t] (query t's position) and kv_base[t] (the
 * cache row of position 0 of t's sequence), kv_row (the rows this step's KV store writes). In
 * split mode a block fetches its keys' K and V rows by cp.async before it waits for the kernel
 * before it (the KV store), all but the rows of kv_row, which it fetches after: the key rows
 * and most of the value reads leave the step's critical path (ORC_ATTN_PREFETCH=0 turns it off;
 * the same bits).
 *
 * One query (a decode step) with the prefetch: the launch can do the layer's q/k norms, rope and
 * KV store too (orc_attn_rope, attention_rope.h), one launch a layer fewer. Each block computes
 * its rotation's angles (double sin and cos) before the wait, then norms and rotates its q head;
 * the blocks of the split holding the row this step writes build that key's K and V from the raw
 * k and v (as the KV store would round them) instead of fetching them, and the group's first head
 * stores them to the caches. Device run 25 measured a first version, with the angles on every
 * block's critical path: 12% slower steps on the 8B shape. This one (device run 38, H100, decode_ab,
 * ms a step after an 8 / 512-token prompt): Qwen3-30B-A3B 3.542 / 3.740 -> 3.390 / 3.589, the 0.5B
 * shape 1.014 / 1.124 -> 0.991 / 1.102, the 8B shape 2.819 / 3.039 -> 2.828 / 2.982 (within its
 * spread). On by default; ORC_ATTN_FUSE_ROPE=0 turns it off. */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdlib.h> /* atoi */
#include <string.h> /* memset */

#include "runtime/dtype.cuh"
#include "runtime/env.cuh"
#include "runtime/launch.cuh" /* orc_launch_dependent */
#include "kernels/kernels.cuh"
#include "kernels/attention_kernel.cuh" /* the kernel, its helpers and ATTN_* */

/* Keys per split: ATTN_SPLIT_KEYS, or ORC_ATTN_SPLIT_KEYS (32..1024, read once a process, so
 * every launch and every session's scratch of the process follow one rule). */
static int32_t split_keys() {
    static std::atomic<int> keys{INT_MIN};
    return orc_env_once(keys, "ORC_ATTN_SPLIT_KEYS", [](const char *e) {
        const int v = e ? atoi(e) : ATTN_SPLIT_KEYS;
        return v < 32 || v > 1024 ? ATTN_SPLIT_KEYS : v;
    });
}

/* ORC_ATTN_STAGE=0 (read once): key rows read straight from the cache instead of staged in shared
 * memory (dot_row_staged); the same sums, so the same bits: a switch for measuring. */
static bool stage_keys() {
    static std::atomic<int> on{INT_MIN};
    return orc_env_switch(on, "ORC_ATTN_STAGE", true);
}

/* ORC_ATTN_PREFETCH=0 (read once): a split's K and V rows fetched after the wait for the previous
 * kernel, not before it (the kernel's prefetch); the same bits: a switch for measuring. */
static bool prefetch_rows() {
    static std::atomic<int> on{INT_MIN};
    return orc_env_switch(on, "ORC_ATTN_PREFETCH", true);
}

/* Whether a launch takes the fused rope by default (yes since device run 38: the top comment);
 * ORC_ATTN_FUSE_ROPE=1 / 0 (read once) turns it on / off. Off, a launch given it refuses it
 * (cudaErrorNotSupported) and the caller runs the rope + KV store launch first; the same bits. */
#define ATTN_FUSE_ROPE_DEFAULT 1
static bool fuse_rope() {
    static std::atomic<int> on{INT_MIN};
    return orc_env_switch(on, "ORC_ATTN_FUSE_ROPE", ATTN_FUSE_ROPE_DEFAULT);
}

int32_t orc_attention_splits(int64_t n, int32_t n_head, int64_t n_keys_max, int32_t n_sm) {
    if (n * n_head >= (int64_t)n_sm) return 0; /* enough (query, head) blocks: no split */
    const int64_t s = (n_keys_max + split_keys() - 1) / split_keys();
    return (int32_t)(s < 1 ? 1 : s);
}

int64_t orc_attention_partials_floats(int64_t n, int32_t n_head, int32_t head_dim_v, int32_t n_split) {
    return n_split > 0 ? ATTN_COUNTERS + n * n_head * (int64_t)n_split * (head_dim_v + 2) : 0;
}

cudaError_t orc_launch_attention(const float *q, int64_t q_stride, const void *k_cache, const void *v_cache,
                                 orc_dtype kv_dt, int64_t k_stride, int64_t v_stride, float *out, int64_t out_stride,
                                 float *partials, int32_t n_split, int64_t n, const int32_t *pos,
                                 const int32_t *kv_base, const int32_t *kv_row, int32_t n_head, int32_t n_head_kv,
                                 int32_t head_dim, int32_t head_dim_v, float scale, float softcap, int32_t window,
                                 const float *sinks, const orc_attn_rope *rope, cudaStream_t s) {
    if (n <= 0) return cudaSuccess;
    if (head_dim_v > ATTN_MAX_DV || n_split < 0 || (n_split > 0 && (!partials || n * n_head > ATTN_COUNTERS)))
        return cudaErrorInvalidValue;
    const bool staged = stage_keys() && attn_smem_bytes(head_dim, head_dim_v, true) <= 48 * 1024;
    const size_t smem = attn_smem_bytes(head_dim, head_dim_v, staged);
    if (smem > 48 * 1024) return cudaErrorInvalidValue;
    const dim3 grid((unsigned)(n * n_head), (unsigned)(n_split > 0 ? n_split : 1));
    float *part = n_split > 0 ? partials + ATTN_COUNTERS : NULL;
    unsigned *counts = n_split > 0 ? reinterpret_cast<unsigned *>(partials) : NULL;
    const bool prefetch = prefetch_rows() && staged && n_split > 0 && kv_row && ((uintptr_t)k_cache % 16) == 0 &&
                          ((uintptr_t)v_cache % 16) == 0 &&
                          attn_can_prefetch(head_dim, head_dim_v, orc_dtype_size(kv_dt), k_stride, v_stride,
                                            split_keys());
    /* The fused rope rides on the prefetch's handling of the rows this step writes, for one query
     * (one written row) and a pair a thread. */
    orc_attn_rope fused;
    memset(&fused, 0, sizeof fused);
    if (rope) {
        if (!rope->k || !rope->v || !rope->inv_freq || (!rope->q_norm) != (!rope->k_norm) || rope->n_rot < 0 ||
            rope->n_rot > head_dim || rope->n_rot % 2 != 0)
            return cudaErrorInvalidValue;
        if (!fuse_rope() || !prefetch || n != 1 || rope->n_rot / 2 > ATTN_THREADS) return cudaErrorNotSupported;
        fused = *rope;
    }
#define LAUNCH(T)                                                                                                      \
    orc_launch_dependent(orc_attention_kernel<T>, grid, dim3(ATTN_THREADS), smem, s, q, q_stride, (const T *)k_cache,   \
                         (const T *)v_cache, k_stride, v_stride, out, out_stride, part, pos, kv_base, n_head, n_head_kv, \
                         head_dim, head_dim_v, scale, softcap, window, sinks, split_keys(), counts, (int32_t)staged,    \
                         kv_row, (int32_t)prefetch, fused)
    switch (kv_dt) {
    case ORC_DTYPE_F16: return LAUNCH(__half);
    case ORC_DTYPE_BF16: return LAUNCH(__nv_bfloat16);
    default: return LAUNCH(float);
    }
#undef LAUNCH
}

/* The attention weights themselves, for the attn_probs hook: one block per (query, head),
 * scores recomputed in float32, probs[t][h][j] for keys j < keys (0 where masked). */
template <typename T>
__global__ void orc_attention_probs_kernel(const float *q, int64_t q_stride, const T *kc, int64_t k_stride,
                                           const int32_t *pos, const int32_t *kv_base, int32_t n_head,
                                           int32_t n_head_kv, int32_t hd, float scale, float softcap, int32_t window,
                                           const float *sinks, float *probs, int64_t keys) {
    __shared__ float red[ATTN_WARPS];
    const int64_t row = blockIdx.x, t = row / n_head;
    const int32_t h = (int32_t)(row % n_head), g = h / (n_head / n_head_kv);
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int64_t p = pos[t];
    const int64_t lo = (window > 0 && p - window + 1 > 0) ? p - window + 1 : 0;
    const float *qr = q + t * q_stride + (int64_t)h * hd;
    float *pr = probs + row * keys;
    kc += (int64_t)kv_base[t] * k_stride;
    float wmax = -FLT_MAX;
    for (int64_t j = lo + warp; j <= p && j < keys; j += ATTN_WARPS) {
        const T *kr = kc + j * k_stride + (int64_t)g * hd;
        float sc = 0.0f;
        for (int32_t d = lane; d < hd; d += 32) sc += qr[d] * ld(kr, d);
        sc = warp_sum(sc) * scale;
        if (softcap > 0.0f) sc = softcap * tanhf(sc / softcap);
        if (lane == 0) pr[j] = sc;
        wmax = fmaxf(wmax, sc);
    }
    float mx = block_reduce_warps<true>(wmax, red);
    if (sinks) mx = fmaxf(mx, sinks[h]);
    __syncthreads();
    float wsum = 0.0f;
    for (int64_t j = lo + threadIdx.x; j <= p && j < keys; j += blockDim.x) {
        const float e = expf(pr[j] - mx);
        pr[j] = e;
        wsum += e;
    }
    wsum = warp_sum(wsum);
    float sum = block_reduce_warps<false>(wsum, red);
    if (sinks) sum += expf(sinks[h] - mx);
    for (int64_t j = threadIdx.x; j < keys; j += blockDim.x) pr[j] = (j >= lo && j <= p) ? pr[j] / sum : 0.0f;
}

cudaError_t orc_launch_attention_probs(const float *q, int64_t q_stride, const void *k_cache, orc_dtype kv_dt,
                                       int64_t k_stride, int64_t n, const int32_t *pos, const int32_t *kv_base,
                                       int32_t n_head, int32_t n_head_kv, int32_t head_dim, float scale, float softcap,
                                       int32_t window, const float *sinks, float *probs, int64_t keys,
                                       cudaStream_t s) {
    if (n <= 0) return cudaSuccess;
    const unsigned grid = (unsigned)(n * n_head);
#define LAUNCH(T)                                                                                               \
    orc_attention_probs_kernel<T><<<grid, ATTN_THREADS, 0, s>>>(q, q_stride, (const T *)k_cache, k_stride, pos, \
                                                                kv_base, n_head, n_head_kv, head_dim, scale,    \
                                                                softcap, window, sinks, probs, keys)
    switch (kv_dt) {
    case ORC_DTYPE_F16: LAUNCH(__half); break;
    case ORC_DTYPE_BF16: LAUNCH(__nv_bfloat16); break;
    default: LAUNCH(float); break;
    }
#undef LAUNCH
    return cudaGetLastError();
}
