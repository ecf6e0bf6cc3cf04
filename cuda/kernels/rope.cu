/* rope.cu - rotary position embedding, in place. Angles in double from the
 * host-computed float32 inverse frequencies (orc_rope_inv_freq), as the CPU
 * reference does, so both backends rotate by the same angles. */
#include "runtime/dtype.cuh"
#include "kernels/kernels.cuh"

__global__ void orc_rope_kernel(float *x, int64_t n, int32_t n_heads, int32_t head_dim, int32_t n_rot, int neox,
                                const int32_t *pos, float freq_scale, float mscale, const float *inv_freq,
                                int64_t row_stride) {
    const int32_t half = n_rot / 2;
    const int64_t total = n * n_heads * half;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        const int32_t p = (int32_t)(i % half);
        const int64_t th = i / half;
        const int32_t h = (int32_t)(th % n_heads);
        const int64_t t = th / n_heads;
        float *v = x + t * row_stride + (int64_t)h * head_dim;
        const double ang = (double)pos[t] * (double)freq_scale * (double)inv_freq[p];
        double sn, cs;
        sincos(ang, &sn, &cs);
        sn *= (double)mscale;
        cs *= (double)mscale;
        const int32_t i0 = neox ? p : 2 * p, i1 = neox ? p + half : 2 * p + 1;
        const double a = v[i0], b = v[i1];
        v[i0] = (float)(a * cs - b * sn);
        v[i1] = (float)(a * sn + b * cs);
    }
}

cudaError_t orc_launch_rope(float *x, int64_t n, int32_t n_heads, int32_t head_dim, int32_t n_rot, int neox,
                            const int32_t *pos, float freq_scale, float mscale, const float *inv_freq,
                            int64_t row_stride, cudaStream_t s) {
    int64_t total = n * n_heads * (n_rot / 2);
    if (total <= 0) return cudaSuccess;
    orc_rope_kernel<<<orc_grid_1d(total, 256), 256, 0, s>>>(x, n, n_heads, head_dim, n_rot, neox, pos, freq_scale,
                                                            mscale, inv_freq, row_stride);
    return cudaGetLastError();
}
