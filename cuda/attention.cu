/* attention.cu - causal (optionally sliding-window) attention over the KV cache
 * with float32 scores and softmax, grouped-query heads.
 *
 * One block per (query token, head). Keys are visited in tiles of ATTN_TILE:
 * scores for a tile go to shared memory, then an online softmax (running max and
 * sum, rescaling the accumulator when the max grows) folds the tile's values
 * into a float32 accumulator of head_dim_v entries. Simple and exact first; a
 * FlashAttention-style kernel for long prefills is a later step (docs/perf.md). */
#include <float.h>

#include "dtype.cuh"
#include "kernels.cuh"

#define ATTN_THREADS 128
#define ATTN_TILE 256

template <bool MAX>
__device__ float block_reduce(float v, float *red) {
    for (int off = 16; off > 0; off >>= 1) {
        float o = __shfl_xor_sync(0xffffffffu, v, off);
        v = MAX ? fmaxf(v, o) : v + o;
    }
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    __syncthreads(); /* red may still be read from the previous reduction */
    if (lane == 0) red[warp] = v;
    __syncthreads();
    float r = red[0];
    for (int w = 1; w < (int)(blockDim.x / 32); w++) r = MAX ? fmaxf(r, red[w]) : r + red[w];
    return r;
}

__global__ void __launch_bounds__(ATTN_THREADS)
orc_attention_kernel(const float *q, int64_t q_stride, const void *kc, const void *vc, orc_dtype dt, int64_t k_stride,
                     int64_t v_stride, float *out, int64_t out_stride, int64_t pos0, int32_t n_head,
                     int32_t n_head_kv, int32_t hd, int32_t hdv, float scale, float softcap, int32_t window) {
    extern __shared__ float smem[];
    float *qs = smem;            /* [hd] */
    float *sc = qs + hd;         /* [ATTN_TILE] */
    float *acc = sc + ATTN_TILE; /* [hdv] */
    __shared__ float red[ATTN_THREADS / 32];

    const int64_t t = blockIdx.x / n_head;
    const int32_t h = (int32_t)(blockIdx.x % n_head);
    const int32_t g = h / (n_head / n_head_kv);
    const int64_t p = pos0 + t;
    const int64_t lo = (window > 0 && p - window + 1 > 0) ? p - window + 1 : 0;

    for (int32_t d = threadIdx.x; d < hd; d += blockDim.x) qs[d] = q[t * q_stride + (int64_t)h * hd + d];
    for (int32_t d = threadIdx.x; d < hdv; d += blockDim.x) acc[d] = 0.0f;
    __syncthreads();

    float m = -FLT_MAX, l = 0.0f;
    for (int64_t k0 = lo; k0 <= p; k0 += ATTN_TILE) {
        const int32_t tn = (int32_t)(p - k0 + 1 < ATTN_TILE ? p - k0 + 1 : ATTN_TILE);
        float local_max = -FLT_MAX;
        for (int32_t j = threadIdx.x; j < tn; j += blockDim.x) {
            const int64_t base = (k0 + j) * k_stride + (int64_t)g * hd;
            float s = 0.0f;
            for (int32_t d = 0; d < hd; d++) s += qs[d] * orc_load_f32(kc, dt, base + d);
            s *= scale;
            if (softcap > 0.0f) s = softcap * tanhf(s / softcap);
            sc[j] = s;
            local_max = fmaxf(local_max, s);
        }
        const float tile_max = block_reduce<true>(local_max, red);
        const float m_new = fmaxf(m, tile_max);
        const float corr = expf(m - m_new);
        float local_sum = 0.0f;
        for (int32_t j = threadIdx.x; j < tn; j += blockDim.x) {
            const float e = expf(sc[j] - m_new);
            sc[j] = e;
            local_sum += e;
        }
        const float tile_sum = block_reduce<false>(local_sum, red); /* its barriers also publish sc[] */
        l = l * corr + tile_sum;
        for (int32_t d = threadIdx.x; d < hdv; d += blockDim.x) {
            float a = acc[d] * corr;
            const int64_t vb = k0 * v_stride + (int64_t)g * hdv + d;
            for (int32_t j = 0; j < tn; j++) a += sc[j] * orc_load_f32(vc, dt, vb + (int64_t)j * v_stride);
            acc[d] = a;
        }
        m = m_new;
        __syncthreads(); /* sc[] is rewritten by the next tile */
    }
    const float inv = 1.0f / l;
    for (int32_t d = threadIdx.x; d < hdv; d += blockDim.x)
        out[t * out_stride + (int64_t)h * hdv + d] = acc[d] * inv;
}

cudaError_t orc_launch_attention(const float *q, int64_t q_stride, const void *k_cache, const void *v_cache,
                                 orc_dtype kv_dt, int64_t k_stride, int64_t v_stride, float *out, int64_t out_stride,
                                 int64_t n, int64_t pos0, int32_t n_head, int32_t n_head_kv, int32_t head_dim,
                                 int32_t head_dim_v, float scale, float softcap, int32_t window, cudaStream_t s) {
    if (n <= 0) return cudaSuccess;
    size_t smem = (size_t)(head_dim + ATTN_TILE + head_dim_v) * sizeof(float);
    if (smem > 48 * 1024) return cudaErrorInvalidValue; /* head sizes up to 5888 fit: far above real models */
    orc_attention_kernel<<<(unsigned)(n * n_head), ATTN_THREADS, smem, s>>>(
        q, q_stride, k_cache, v_cache, kv_dt, k_stride, v_stride, out, out_stride, pos0, n_head, n_head_kv, head_dim,
        head_dim_v, scale, softcap, window);
    return cudaGetLastError();
}
