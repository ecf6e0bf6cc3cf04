/* attention.cu - causal (optionally sliding-window) attention over the KV cache
 * with float32 scores and softmax, grouped-query heads.
 *
 * Grid: (query token x head, key split). A block walks its range of keys in tiles
 * of ATTN_TILE; each warp takes every ATTN_WARPS-th key of a tile, its lanes
 * spanning the head dimension, so K and V rows are read coalesced. An online
 * softmax (running max, rescaling the accumulators when the max grows) folds each
 * tile into float32 accumulators held in registers (ATTN_MAX_DV/32 per lane).
 *
 * Splitting the keys across blocks (flash-decoding) keeps the GPU busy when there
 * are few queries (decode: one token, a handful of heads); each split writes its
 * (max, sum, accumulator) and orc_attention_combine_kernel merges them. With one
 * split the block writes the output directly. */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <float.h>

#include "runtime/dtype.cuh"
#include "kernels/kernels.cuh"

#define ATTN_WARPS 4
#define ATTN_THREADS (32 * ATTN_WARPS)
#define ATTN_TILE 256
#define ATTN_MAX_DV 512 /* largest value head size: 16 accumulators per lane */

__device__ __forceinline__ float ld(const float *p, int64_t i) { return p[i]; }
__device__ __forceinline__ float ld(const __half *p, int64_t i) { return __half2float(p[i]); }
__device__ __forceinline__ float ld(const __nv_bfloat16 *p, int64_t i) { return __bfloat162float(p[i]); }

__device__ __forceinline__ float warp_sum(float v) {
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int off = 16; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
    return v;
}

/* Block-wide reduction of one value per warp (lane-uniform inputs). */
template <bool MAX>
__device__ float block_reduce_warps(float v, float *red) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    __syncthreads(); /* red may still be read from the previous reduction */
    if (lane == 0) red[warp] = v;
    __syncthreads();
    float r = red[0];
#pragma unroll
    for (int w = 1; w < ATTN_WARPS; w++) r = MAX ? fmaxf(r, red[w]) : r + red[w];
    return r;
}

template <typename T>
__global__ void __launch_bounds__(ATTN_THREADS)
orc_attention_kernel(const float *q, int64_t q_stride, const T *kc, const T *vc, int64_t k_stride, int64_t v_stride,
                     float *out, int64_t out_stride, float *part, int64_t pos0, const int64_t *dpos, int32_t n_head,
                     int32_t n_head_kv, int32_t hd, int32_t hdv, float scale, float softcap, int32_t window) {
    extern __shared__ float smem[];
    float *qs = smem;                  /* [hd] */
    float *sc = qs + hd;               /* [ATTN_TILE] */
    float *accs = sc + ATTN_TILE;      /* [ATTN_WARPS][hdv] */
    __shared__ float red[ATTN_WARPS];

    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int64_t row = blockIdx.x;
    const int64_t t = row / n_head;
    const int32_t h = (int32_t)(row % n_head);
    const int32_t g = h / (n_head / n_head_kv);
    const int64_t p = (dpos ? *dpos : pos0) + t; /* a CUDA graph's step reads its position from the device */
    const int64_t lo = (window > 0 && p - window + 1 > 0) ? p - window + 1 : 0;
    const int32_t n_split = gridDim.y, split = blockIdx.y;
    const int64_t total = p - lo + 1;
    const int64_t chunk = (total + n_split - 1) / n_split;
    const int64_t kb = lo + split * chunk;
    const int64_t ke = kb + chunk < p + 1 ? kb + chunk : p + 1;

    for (int32_t d = threadIdx.x; d < hd; d += blockDim.x) qs[d] = q[t * q_stride + (int64_t)h * hd + d];
    __syncthreads();

    float acc[ATTN_MAX_DV / 32];
#pragma unroll
    for (int r = 0; r < ATTN_MAX_DV / 32; r++) acc[r] = 0.0f;
    float m = -FLT_MAX, l = 0.0f;

    for (int64_t k0 = kb; k0 < ke; k0 += ATTN_TILE) {
        const int32_t tn = (int32_t)(ke - k0 < ATTN_TILE ? ke - k0 : ATTN_TILE);
        float wmax = -FLT_MAX;
        for (int32_t j = warp; j < tn; j += ATTN_WARPS) {
            const T *kr = kc + (k0 + j) * k_stride + (int64_t)g * hd;
            float s = 0.0f;
            for (int32_t d = lane; d < hd; d += 32) s += qs[d] * ld(kr, d);
            s = warp_sum(s) * scale;
            if (softcap > 0.0f) s = softcap * tanhf(s / softcap);
            if (lane == 0) sc[j] = s;
            wmax = fmaxf(wmax, s);
        }
        const float m_new = fmaxf(m, block_reduce_warps<true>(wmax, red)); /* its barriers publish sc[] */
        const float corr = expf(m - m_new);
#pragma unroll
        for (int r = 0; r < ATTN_MAX_DV / 32; r++) acc[r] *= corr;
        float wsum = 0.0f;
        for (int32_t j = warp; j < tn; j += ATTN_WARPS) {
            const float e = expf(sc[j] - m_new);
            wsum += e;
            const T *vr = vc + (k0 + j) * v_stride + (int64_t)g * hdv;
#pragma unroll
            for (int r = 0; r < ATTN_MAX_DV / 32; r++) {
                const int32_t d = lane + 32 * r;
                if (d < hdv) acc[r] += e * ld(vr, d);
            }
        }
        l = l * corr + block_reduce_warps<false>(wsum, red);
        m = m_new;
        __syncthreads(); /* sc[] is rewritten by the next tile */
    }

    /* Sum the warps' accumulators (they share m). */
#pragma unroll
    for (int r = 0; r < ATTN_MAX_DV / 32; r++) {
        const int32_t d = lane + 32 * r;
        if (d < hdv) accs[warp * hdv + d] = acc[r];
    }
    __syncthreads();
    for (int32_t d = threadIdx.x; d < hdv; d += blockDim.x) {
        float a = 0.0f;
#pragma unroll
        for (int w = 0; w < ATTN_WARPS; w++) a += accs[w * hdv + d];
        if (n_split == 1) {
            out[t * out_stride + (int64_t)h * hdv + d] = a / l;
        } else {
            float *pp = part + (row * n_split + split) * (int64_t)(hdv + 2);
            pp[2 + d] = a;
            if (d == 0) {
                pp[0] = ke > kb ? m : -FLT_MAX;
                pp[1] = ke > kb ? l : 0.0f;
            }
        }
    }
}

/* Merge the splits of one (query, head): out = sum_s acc_s e^(m_s - M) / sum_s l_s e^(m_s - M). */
__global__ void orc_attention_combine_kernel(const float *part, int32_t n_split, int32_t n_head, int32_t hdv,
                                             float *out, int64_t out_stride) {
    const int64_t row = blockIdx.x;
    const int64_t t = row / n_head;
    const int32_t h = (int32_t)(row % n_head);
    const float *pp = part + row * n_split * (int64_t)(hdv + 2);
    float M = -FLT_MAX;
    for (int32_t s = 0; s < n_split; s++) M = fmaxf(M, pp[s * (hdv + 2)]);
    float L = 0.0f;
    for (int32_t s = 0; s < n_split; s++) L += pp[s * (hdv + 2) + 1] * expf(pp[s * (hdv + 2)] - M);
    for (int32_t d = threadIdx.x; d < hdv; d += blockDim.x) {
        float a = 0.0f;
        for (int32_t s = 0; s < n_split; s++) a += pp[s * (hdv + 2) + 2 + d] * expf(pp[s * (hdv + 2)] - M);
        out[t * out_stride + (int64_t)h * hdv + d] = a / L;
    }
}

int64_t orc_attention_partials_floats(int64_t n, int32_t n_head, int32_t head_dim_v, int32_t n_split) {
    return n_split > 1 ? n * n_head * (int64_t)n_split * (head_dim_v + 2) : 0;
}

int32_t orc_attention_splits(int64_t n, int32_t n_head, int64_t n_keys, int32_t n_sm) {
    const int64_t rows = n * n_head;
    if (rows >= 2 * (int64_t)n_sm) return 1;
    int64_t s = (2 * (int64_t)n_sm + rows - 1) / rows;
    int64_t max_s = (n_keys + 63) / 64; /* at least 64 keys a split */
    if (s > max_s) s = max_s;
    return (int32_t)(s < 1 ? 1 : s);
}

cudaError_t orc_launch_attention(const float *q, int64_t q_stride, const void *k_cache, const void *v_cache,
                                 orc_dtype kv_dt, int64_t k_stride, int64_t v_stride, float *out, int64_t out_stride,
                                 float *partials, int32_t n_split, int64_t n, int64_t pos0, const int64_t *dpos,
                                 int32_t n_head, int32_t n_head_kv, int32_t head_dim, int32_t head_dim_v, float scale,
                                 float softcap, int32_t window, cudaStream_t s) {
    if (n <= 0) return cudaSuccess;
    if (head_dim_v > ATTN_MAX_DV || n_split < 1 || (n_split > 1 && !partials)) return cudaErrorInvalidValue;
    const size_t smem = (size_t)(head_dim + ATTN_TILE + ATTN_WARPS * head_dim_v) * sizeof(float);
    if (smem > 48 * 1024) return cudaErrorInvalidValue;
    const dim3 grid((unsigned)(n * n_head), (unsigned)n_split);
#define LAUNCH(T)                                                                                                 \
    orc_attention_kernel<T><<<grid, ATTN_THREADS, smem, s>>>(q, q_stride, (const T *)k_cache, (const T *)v_cache,  \
                                                             k_stride, v_stride, out, out_stride, partials, pos0,   \
                                                             dpos, n_head, n_head_kv, head_dim, head_dim_v, scale,  \
                                                             softcap, window)
    switch (kv_dt) {
    case ORC_DTYPE_F16: LAUNCH(__half); break;
    case ORC_DTYPE_BF16: LAUNCH(__nv_bfloat16); break;
    default: LAUNCH(float); break;
    }
#undef LAUNCH
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess || n_split == 1) return e;
    orc_attention_combine_kernel<<<(unsigned)(n * n_head), 128, 0, s>>>(partials, n_split, n_head, head_dim_v, out,
                                                                        out_stride);
    return cudaGetLastError();
}
