/* argmax.cu - the greedy choice on the device, so that a greedy step copies 16 bytes instead of
 * the whole vocabulary's logits: per row, the index of the greatest finite value (the lowest
 * index among equals, as the host sampler's greedy choice), that value, how many values are not
 * finite (NaN or infinite: the sampler refuses such rows, and so does Session.forward's
 * "argmax") and the first such index. Written as float32 [row][4] (indices < 2^24: exact).
 *
 * Grid (blocks a row, rows): each block scans a contiguous chunk of its row, its 256 threads in
 * order (kUnroll independent loads a pass), then a block reduction; the row's
 * last block to finish (orc_block_is_last) merges the chunks' results in chunk order. Every
 * merge keeps the greater value, and the lower index of equal ones: the result is the row's
 * first maximum whatever the order of arrival. */
#include <float.h>
#include <math.h>

#include "kernels/kernels.cuh"
#include "runtime/launch.cuh" /* orc_launch_dependent */
#include "runtime/simt.cuh"   /* orc_pdl_enter, orc_block_is_last */

namespace {

constexpr int kThreads = 256;
constexpr int kUnroll = 8;
constexpr int kMaxBlocks = 32;    /* a row's chunks: the partials a merge reads */
constexpr int kMinChunk = 4096;   /* columns below which a row is not split further */

struct best {
    float v;  /* the greatest finite value seen */
    int32_t i; /* its index; -1: none seen */
    int32_t bad, first_bad; /* non-finite values seen, the lowest such index (INT32_MAX: none) */
};

__device__ __forceinline__ best better(best a, best b) {
    best r;
    const bool take_b = b.i >= 0 && (a.i < 0 || b.v > a.v || (b.v == a.v && b.i < a.i));
    r.v = take_b ? b.v : a.v;
    r.i = take_b ? b.i : a.i;
    r.bad = a.bad + b.bad;
    r.first_bad = a.first_bad < b.first_bad ? a.first_bad : b.first_bad;
    return r;
}

__device__ __forceinline__ best warp_best(best a) {
    for (int off = 16; off > 0; off >>= 1) {
        best o;
        o.v = __shfl_xor_sync(0xffffffffu, a.v, off);
        o.i = __shfl_xor_sync(0xffffffffu, a.i, off);
        o.bad = __shfl_xor_sync(0xffffffffu, a.bad, off);
        o.first_bad = __shfl_xor_sync(0xffffffffu, a.first_bad, off);
        a = better(a, o);
    }
    return a;
}

/* partial: [rows][kMaxBlocks] results, counts: [rows] (zero at rest; the merging block resets its own). */
__global__ void __launch_bounds__(kThreads) orc_argmax_kernel(const float *x, int64_t stride, int64_t cols, float *out,
                                                              best *partial, unsigned *counts) {
    __shared__ best red[kThreads / 32];
    orc_pdl_enter();
    const int64_t row = blockIdx.y;
    const int nb = gridDim.x;
    const int64_t chunk = (cols + nb - 1) / nb;
    const int64_t c0 = blockIdx.x * chunk, c1 = c0 + chunk < cols ? c0 + chunk : cols;
    const float *r = x + row * stride;
    best b = {-FLT_MAX, -1, 0, INT32_MAX};
    for (int64_t j0 = c0 + threadIdx.x; j0 < c1; j0 += (int64_t)kThreads * kUnroll) {
        float v[kUnroll];
#pragma unroll
        for (int u = 0; u < kUnroll; u++) {
            const int64_t j = j0 + (int64_t)u * kThreads;
            v[u] = j < c1 ? r[j] : 0.0f;
        }
#pragma unroll
        for (int u = 0; u < kUnroll; u++) { /* increasing j: the first of equal values stays */
            const int64_t j = j0 + (int64_t)u * kThreads;
            if (j >= c1) break;
            if (!isfinite(v[u])) {
                if (b.bad++ == 0) b.first_bad = (int32_t)j;
            } else if (b.i < 0 || v[u] > b.v) {
                b.v = v[u];
                b.i = (int32_t)j;
            }
        }
    }
    b = warp_best(b);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) red[warp] = b;
    __syncthreads();
    if (warp == 0) {
        b = lane < kThreads / 32 ? red[lane] : best{-FLT_MAX, -1, 0, INT32_MAX};
        b = warp_best(b);
        if (lane == 0) partial[row * kMaxBlocks + blockIdx.x] = b;
    }
    if (!orc_block_is_last(counts + row, (unsigned)nb)) return;
    if (warp != 0) return;
    b = best{-FLT_MAX, -1, 0, INT32_MAX};
    if (lane < nb) {
        /* Written by other blocks in this launch: read through L2 (orc_ldcg; L1 is not coherent). */
        const float *p = reinterpret_cast<const float *>(partial + row * kMaxBlocks + lane);
        b.v = orc_ldcg(p);
        b.i = __float_as_int(orc_ldcg(p + 1));
        b.bad = __float_as_int(orc_ldcg(p + 2));
        b.first_bad = __float_as_int(orc_ldcg(p + 3));
    }
    b = warp_best(b);
    if (lane == 0) {
        float *o = out + row * 4;
        o[0] = (float)b.i;
        o[1] = b.i >= 0 ? b.v : __int_as_float(0x7fc00000);
        o[2] = (float)b.bad;
        o[3] = b.bad ? (float)b.first_bad : -1.0f;
    }
}

} /* namespace */

/* The scratch: a count a row, padded to 16 bytes, then the partials [rows][kMaxBlocks]. */
static int64_t count_words(int64_t rows) { return (rows + 3) / 4 * 4; }

size_t orc_argmax_scratch_bytes(int64_t rows) {
    return (size_t)count_words(rows) * sizeof(unsigned) + (size_t)rows * kMaxBlocks * sizeof(best);
}

cudaError_t orc_launch_argmax(const float *x, int64_t stride, int64_t rows, int64_t cols, float *out, void *scratch,
                              cudaStream_t s) {
    if (rows <= 0) return cudaSuccess;
    if (cols <= 0 || cols >= (1 << 24) || rows > 65535 || stride < cols || !scratch) return cudaErrorInvalidValue;
    int64_t nb = (cols + kMinChunk - 1) / kMinChunk;
    if (nb > kMaxBlocks) nb = kMaxBlocks;
    unsigned *counts = static_cast<unsigned *>(scratch);
    best *partial = reinterpret_cast<best *>(counts + count_words(rows));
    return orc_launch_dependent(orc_argmax_kernel, dim3((unsigned)nb, (unsigned)rows), dim3(kThreads), 0, s, x, stride,
                                cols, out, partial, counts);
}
