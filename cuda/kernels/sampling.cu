/* sampling.cu - greedy sampling on the device: argmax per row, ties to the
 * lowest index (as the CPU backend and orc's samplers). */
#include <float.h>

#include "runtime/dtype.cuh"
#include "kernels/kernels.cuh"

__device__ __forceinline__ void better(float &v, int32_t &i, float v2, int32_t i2) {
    /* NaN never wins; equal values keep the lower index */
    if (v2 > v || (v2 == v && i2 < i) || (v != v && v2 == v2)) {
        v = v2;
        i = i2;
    }
}

__global__ void orc_argmax_kernel(const float *x, int64_t cols, int32_t *out) {
    const float *r = x + blockIdx.x * cols;
    float bv = -FLT_MAX;
    int32_t bi = INT32_MAX;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) better(bv, bi, r[j], (int32_t)j);
    for (int off = 16; off > 0; off >>= 1) {
        float v2 = __shfl_xor_sync(0xffffffffu, bv, off);
        int32_t i2 = __shfl_xor_sync(0xffffffffu, bi, off);
        better(bv, bi, v2, i2);
    }
    __shared__ float sv[32];
    __shared__ int32_t si[32];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (lane == 0) {
        sv[warp] = bv;
        si[warp] = bi;
    }
    __syncthreads();
    if (warp == 0) {
        bv = lane < (int)(blockDim.x / 32) ? sv[lane] : -FLT_MAX;
        bi = lane < (int)(blockDim.x / 32) ? si[lane] : INT32_MAX;
        for (int off = 16; off > 0; off >>= 1) {
            float v2 = __shfl_xor_sync(0xffffffffu, bv, off);
            int32_t i2 = __shfl_xor_sync(0xffffffffu, bi, off);
            better(bv, bi, v2, i2);
        }
        if (lane == 0) out[blockIdx.x] = bi == INT32_MAX ? 0 : bi;
    }
}

cudaError_t orc_launch_argmax(const float *x, int64_t n, int64_t cols, int32_t *out, cudaStream_t s) {
    if (n <= 0) return cudaSuccess;
    orc_argmax_kernel<<<(unsigned)n, 1024, 0, s>>>(x, cols, out);
    return cudaGetLastError();
}
