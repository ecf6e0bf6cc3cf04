/* rope.cu - rotary position embedding, in place. Angles in double from the
 * host-computed float32 inverse frequencies (orc_rope_inv_freq), as the CPU
 * reference does, so both backends rotate by the same angles. */
#include "runtime/dtype.cuh"
#include "runtime/launch.cuh" /* orc_launch_dependent */
#include "runtime/simt.cuh"   /* orc_pdl_enter */
#include "kernels/kernels.cuh"
#include "kernels/head_norm.cuh" /* orc_head_rms_scale: also the decode attention's fused rope */
#include "kernels/rope_pair.cuh" /* rope_pair: also the decode attention's fused rope */

__global__ void orc_rope_kernel(float *x, int64_t n, int32_t n_heads, int32_t head_dim, int32_t n_rot, int neox,
                                const int32_t *pos, float freq_scale, float mscale, const float *inv_freq,
                                int64_t row_stride) {
    orc_pdl_enter();
    const int32_t half = n_rot / 2;
    const int64_t total = n * n_heads * half;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        const int32_t p = (int32_t)(i % half);
        const int64_t th = i / half;
        const int32_t h = (int32_t)(th % n_heads);
        const int64_t t = th / n_heads;
        int32_t i0, i1;
        rope_pair(x + t * row_stride + (int64_t)h * head_dim, p, half, neox, pos[t], freq_scale, mscale, inv_freq, &i0,
                  &i1);
    }
}

cudaError_t orc_launch_rope(float *x, int64_t n, int32_t n_heads, int32_t head_dim, int32_t n_rot, int neox,
                            const int32_t *pos, float freq_scale, float mscale, const float *inv_freq,
                            int64_t row_stride, cudaStream_t s) {
    int64_t total = n * n_heads * (n_rot / 2);
    if (total <= 0) return cudaSuccess;
    return orc_launch_dependent(orc_rope_kernel, dim3(orc_grid_1d(total, 256)), dim3(256), 0, s, x, n, n_heads, head_dim,
                                n_rot, neox, pos, freq_scale, mscale, inv_freq, row_stride);
}

/* rope(q), rope(k) and the cache stores of k and v in one launch: thread i of the first
 * n*(n_head + n_head_kv)*half rotates one pair of q or k (the same arithmetic as
 * orc_rope_kernel; a rotated k pair is also stored to the cache), the rest copy the
 * not-rotated k dimensions and v into the caches. A thread's first pair's angle (double sin
 * and cos: positions and frequencies only) is computed before the wait for q and k. */
__global__ void orc_rope_kv_store_kernel(float *q, float *k, const float *v, void *kc, void *vc, orc_dtype dt,
                                         int64_t n, int32_t n_head, int32_t n_head_kv, int32_t head_dim,
                                         int32_t n_rot, int neox, const int32_t *pos, const int32_t *rows,
                                         float freq_scale, float mscale, const float *inv_freq, int64_t q_stride,
                                         int64_t k_stride, int64_t v_stride) {
    orc_pdl_trigger();
    const int32_t half = n_rot / 2;
    const int64_t kcols = (int64_t)n_head_kv * head_dim, vcols = v_stride;
    const int64_t n_pairs = n * (int64_t)(n_head + n_head_kv) * half;
    const int64_t n_rest = n * ((int64_t)n_head_kv * (head_dim - n_rot) + vcols);
    const int64_t first = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    double sn0 = 0.0, cs0 = 0.0;
    if (first < n_pairs)
        rope_angle((int32_t)(first % half), pos[first / half / (n_head + n_head_kv)], freq_scale, mscale, inv_freq, &sn0,
                   &cs0);
    orc_pdl_wait();
    for (int64_t i = first; i < n_pairs + n_rest; i += (int64_t)gridDim.x * blockDim.x) {
        if (i < n_pairs) {
            const int32_t p = (int32_t)(i % half);
            const int64_t th = i / half;
            const int32_t h = (int32_t)(th % (n_head + n_head_kv));
            const int64_t t = th / (n_head + n_head_kv);
            const bool is_k = h >= n_head;
            float *x = is_k ? k + t * k_stride + (int64_t)(h - n_head) * head_dim : q + t * q_stride + (int64_t)h * head_dim;
            double sn = sn0, cs = cs0;
            if (i != first) rope_angle(p, pos[t], freq_scale, mscale, inv_freq, &sn, &cs);
            int32_t i0, i1;
            rope_rotate(x, p, half, neox, sn, cs, &i0, &i1);
            if (is_k) {
                const int64_t base = (int64_t)rows[t] * kcols + (int64_t)(h - n_head) * head_dim;
                orc_store_from_f32(kc, dt, base + i0, x[i0]);
                orc_store_from_f32(kc, dt, base + i1, x[i1]);
            }
        } else {
            const int64_t j = i - n_pairs;
            const int64_t per_t = (int64_t)n_head_kv * (head_dim - n_rot) + vcols;
            const int64_t t = j / per_t, c = j % per_t;
            const int64_t nk_rest = (int64_t)n_head_kv * (head_dim - n_rot);
            if (c < nk_rest) { /* a k dimension past n_rot: stored as is */
                const int64_t hh = c / (head_dim - n_rot), d = n_rot + c % (head_dim - n_rot);
                const int64_t col = hh * head_dim + d;
                orc_store_from_f32(kc, dt, (int64_t)rows[t] * kcols + col, k[t * k_stride + col]);
            } else {
                const int64_t col = c - nk_rest;
                orc_store_from_f32(vc, dt, (int64_t)rows[t] * vcols + col, v[t * vcols + col]);
            }
        }
    }
}

static cudaError_t launch_rope_kv_store(float *q, float *k, const float *v, void *kc, void *vc, orc_dtype dt,
                                       int64_t n, int32_t n_head, int32_t n_head_kv, int32_t head_dim, int32_t n_rot,
                                       int neox, const int32_t *pos, const int32_t *rows, float freq_scale,
                                       float mscale, const float *inv_freq, int64_t q_stride, int64_t k_stride,
                                       int64_t v_cols, cudaStream_t s) {
    const int64_t total = n * ((int64_t)(n_head + n_head_kv) * (n_rot / 2) + (int64_t)n_head_kv * (head_dim - n_rot) +
                               v_cols);
    if (total <= 0) return cudaSuccess;
    return orc_launch_dependent(orc_rope_kv_store_kernel, dim3(orc_grid_1d(total, 256)), dim3(256), 0, s, q, k, v, kc, vc,
                                dt, n, n_head, n_head_kv, head_dim, n_rot, neox, pos, rows, freq_scale, mscale, inv_freq,
                                q_stride, k_stride, v_cols);
}


/* Per-head RMSNorm of q and k (qwen3, gemma3: attn_q_norm / attn_k_norm), then the launch above's
 * rope and cache stores, one warp per (token, head); the last "head" of a token stores its v.
 * The norm's scale is head_norm.cuh's (orc_rms_norm_kernel's bits at a head's width), so the
 * fused launch equals the primitives. The lanes' angles (pairs lane + 32 j) are computed before
 * the wait for q and k. */
#define NR_MAX_HD 512
#define NR_PAIRS (NR_MAX_HD / 2 / 32) /* pairs a lane */

__global__ void orc_norm_rope_kv_store_kernel(float *q, float *k, const float *v, void *kc, void *vc, orc_dtype dt,
                                              int32_t n_head, int32_t n_head_kv, int32_t head_dim, int32_t n_rot,
                                              int neox, const int32_t *pos, const int32_t *rows, float freq_scale,
                                              float mscale, const float *inv_freq, int64_t q_stride, int64_t k_stride,
                                              int64_t v_cols, const float *qw, const float *kw, float eps) {
    __shared__ float buf[NR_MAX_HD];
    orc_pdl_trigger();
    const int64_t t = blockIdx.x;
    const int32_t h = blockIdx.y, lane = threadIdx.x;
    const int64_t kcols = (int64_t)n_head_kv * head_dim;
    const int32_t half = n_rot / 2;
    double sn[NR_PAIRS], cs[NR_PAIRS];
#pragma unroll
    for (int j = 0; j < NR_PAIRS; j++)
        if (h < n_head + n_head_kv && lane + 32 * j < half)
            rope_angle(lane + 32 * j, pos[t], freq_scale, mscale, inv_freq, &sn[j], &cs[j]);
    orc_pdl_wait();
    if (h == n_head + n_head_kv) {
        for (int64_t c = lane; c < v_cols; c += 32)
            orc_store_from_f32(vc, dt, (int64_t)rows[t] * v_cols + c, v[t * v_cols + c]);
        return;
    }
    const bool is_k = h >= n_head;
    float *x = is_k ? k + t * k_stride + (int64_t)(h - n_head) * head_dim : q + t * q_stride + (int64_t)h * head_dim;
    const float *w = is_k ? kw : qw;
    const float scale = orc_head_rms_scale(x, head_dim, eps);
    for (int32_t j = lane; j < head_dim; j += 32) buf[j] = orc_head_norm_value(w[j], x[j], scale);
    __syncwarp();
#pragma unroll
    for (int j = 0; j < NR_PAIRS; j++)
        if (lane + 32 * j < half) {
            int32_t i0, i1;
            rope_rotate(buf, lane + 32 * j, half, neox, sn[j], cs[j], &i0, &i1);
        }
    __syncwarp();
    for (int32_t j = lane; j < head_dim; j += 32) {
        x[j] = buf[j];
        if (is_k) orc_store_from_f32(kc, dt, (int64_t)rows[t] * kcols + (int64_t)(h - n_head) * head_dim + j, buf[j]);
    }
}

cudaError_t orc_launch_rope_kv_store(float *q, float *k, const float *v, void *kc, void *vc, orc_dtype dt, int64_t n,
                                     int32_t n_head, int32_t n_head_kv, int32_t head_dim, int32_t n_rot, int neox,
                                     const int32_t *pos, const int32_t *rows, float freq_scale, float mscale,
                                     const float *inv_freq, int64_t q_stride, int64_t k_stride, int64_t v_cols,
                                     const float *q_norm, const float *k_norm, float eps, cudaStream_t s) {
    if (n <= 0) return cudaSuccess;
    if (!q_norm || !k_norm || head_dim > NR_MAX_HD) { /* no norms, or heads too wide: the primitives, in order */
        cudaError_t e = cudaSuccess;
        if (q_norm && k_norm) {
            e = orc_launch_rms_norm(q, q_norm, q, n * (q_stride / head_dim), head_dim, eps, s);
            if (e == cudaSuccess) e = orc_launch_rms_norm(k, k_norm, k, n * (k_stride / head_dim), head_dim, eps, s);
        }
        if (e != cudaSuccess) return e;
        return launch_rope_kv_store(q, k, v, kc, vc, dt, n, n_head, n_head_kv, head_dim, n_rot, neox, pos, rows,
                                    freq_scale, mscale, inv_freq, q_stride, k_stride, v_cols, s);
    }
    if (n > 2147483647LL || n_head + n_head_kv + 1 > 65535) return cudaErrorInvalidValue;
    const dim3 grid((unsigned)n, (unsigned)(n_head + n_head_kv + 1));
    return orc_launch_dependent(orc_norm_rope_kv_store_kernel, grid, dim3(32), 0, s, q, k, v, kc, vc, dt, n_head,
                                n_head_kv, head_dim, n_rot, neox, pos, rows, freq_scale, mscale, inv_freq, q_stride,
                                k_stride, v_cols, q_norm, k_norm, eps);
}
