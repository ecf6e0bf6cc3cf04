/* norm.cu - RMSNorm, one block per row: the sum of squares reduced in float32
 * across the block (the CPU reference sums in double; the difference is far
 * below the tolerances of the parity tests). */
#include "runtime/dtype.cuh"
#include "runtime/launch.cuh" /* orc_launch_dependent */
#include "runtime/simt.cuh"   /* orc_pdl_enter */
#include "kernels/kernels.cuh"

__global__ void orc_rms_norm_kernel(const float *x, const float *w, float *out, int64_t width, float eps) {
    orc_pdl_enter();
    const float *xr = x + blockIdx.x * width;
    float *o = out + blockIdx.x * width;
    float ss = 0.0f;
    for (int64_t j = threadIdx.x; j < width; j += blockDim.x) ss += xr[j] * xr[j];
    for (int off = 16; off > 0; off >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, off);
    __shared__ float warp_sums[32];
    __shared__ float scale_s;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (lane == 0) warp_sums[warp] = ss;
    __syncthreads();
    if (warp == 0) {
        float v = lane < (int)(blockDim.x / 32) ? warp_sums[lane] : 0.0f;
        for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
        if (lane == 0) scale_s = (float)(1.0 / sqrt((double)v / (double)width + (double)eps));
    }
    __syncthreads();
    const float scale = scale_s;
    for (int64_t j = threadIdx.x; j < width; j += blockDim.x) o[j] = w[j] * (xr[j] * scale);
}

cudaError_t orc_launch_rms_norm(const float *x, const float *w, float *out, int64_t rows, int64_t width, float eps,
                                cudaStream_t s) {
    if (rows <= 0) return cudaSuccess;
    unsigned threads = width >= 1024 ? 1024 : (unsigned)((width + 31) / 32 * 32);
    if (threads < 32) threads = 32;
    return orc_launch_dependent(orc_rms_norm_kernel, dim3((unsigned)rows), dim3(threads), 0, s, x, w, out, width, eps);
}
