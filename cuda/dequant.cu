/* dequant.cu - GPU dequantization of every type orc supports (gpu_dequant.h).
 *
 * The decoding itself is csrc/quant_decode.h, the same code the CPU runs, compiled
 * here with __fmul_rn/__fadd_rn/__fsub_rn (never contracted into FMA), so the GPU
 * output is bit-identical to the CPU's and to gguf-py's.
 *
 * Mapping (block types): a CTA of 256 threads owns a tile of 8192 output elements,
 * i.e. 8192/block_size whole blocks. It first copies the tile's quantized bytes
 * (16-byte aligned: 8192/block_size * type_size is a multiple of 16 for every type)
 * into shared memory with coalesced 16-byte loads, then each thread decodes 4
 * chunks of 8 consecutive elements, chunk = threadIdx.x + k*256, so a warp writes
 * 32 consecutive chunks: one 16-byte store per thread and chunk for float16/bfloat16
 * outputs, two for float32, all coalesced. The IQ grids and sign tables are
 * __device__ globals read through L1 (quant_tables.h explains why not __constant__).
 * Float types (F32/F16/BF16) are elementwise: 8 elements per thread, 16-byte loads
 * and stores where the pointers allow.
 */
#include <cuda_fp16.h>     /* __floats2half2_rn, __half2float */
#include <cuda_runtime.h>

#include <limits.h>  /* INT_MAX */
#include <stdint.h>

#include "../csrc/ggml_types.h"    /* ORC_TYPE_* */
#include "../csrc/gpu_dequant.h"   /* the entry points defined here */
#include "../csrc/quant_decode.h"  /* the decoders, shared with the CPU */
#include "cuda_check.cuh"          /* ORC_CUDA_CHECK */

namespace {

constexpr int kThreads = 256;
constexpr int kChunksPerThread = 4;
constexpr int kTileElems = kThreads * kChunksPerThread * 8;

/* ---- output: 8 floats to float32 / float16 / bfloat16 -------------------------- */

/* Two floats to two halves (a in the low 16 bits). The hardware conversion rounds to
 * nearest even like orc_qd_f2h; only its NaN encoding differs, so NaNs take the
 * integer path (same bits as the CPU for the same float bits). */
__device__ __forceinline__ uint32_t orc_dq_f16x2(float a, float b) {
    if (a != a || b != b) return (uint32_t)orc_qd_f2h(a) | ((uint32_t)orc_qd_f2h(b) << 16);
    const __half2 h = __floats2half2_rn(a, b);
    return (uint32_t)__half_as_ushort(__low2half(h)) | ((uint32_t)__half_as_ushort(__high2half(h)) << 16);
}

__device__ __forceinline__ uint32_t orc_dq_bf16x2(float a, float b) {
    return (uint32_t)orc_qd_f2bf(a) | ((uint32_t)orc_qd_f2bf(b) << 16);
}

/* Store y[0..m) at element e of dst; `vec`: dst is 16-byte aligned and m == 8. */
template <int DT>
__device__ __forceinline__ void orc_dq_store(void *dst, int64_t e, const float *y, int m, bool vec) {
    if (DT == ORC_DTYPE_F32) {
        float *o = static_cast<float *>(dst) + e;
        if (vec) {
            reinterpret_cast<float4 *>(o)[0] = make_float4(y[0], y[1], y[2], y[3]);
            reinterpret_cast<float4 *>(o)[1] = make_float4(y[4], y[5], y[6], y[7]);
        } else {
            for (int k = 0; k < m; k++) o[k] = y[k];
        }
    } else {
        uint16_t *o = static_cast<uint16_t *>(dst) + e;
        if (vec) {
            uint4 v;
            if (DT == ORC_DTYPE_F16) {
                v = make_uint4(orc_dq_f16x2(y[0], y[1]), orc_dq_f16x2(y[2], y[3]), orc_dq_f16x2(y[4], y[5]),
                               orc_dq_f16x2(y[6], y[7]));
            } else {
                v = make_uint4(orc_dq_bf16x2(y[0], y[1]), orc_dq_bf16x2(y[2], y[3]), orc_dq_bf16x2(y[4], y[5]),
                               orc_dq_bf16x2(y[6], y[7]));
            }
            *reinterpret_cast<uint4 *>(o) = v;
        } else {
            for (int k = 0; k < m; k++) o[k] = DT == ORC_DTYPE_F16 ? orc_qd_f2h(y[k]) : orc_qd_f2bf(y[k]);
        }
    }
}

/* ---- block types ------------------------------------------------------------------ */

/* One traits struct per type of ORC_QD_FOREACH_BLOCK_TYPE: block size, bytes, decoder. */
#define ORC_DQ_TRAITS(NAME, FN, BS_, TS_)                                                     \
    struct orc_dq_##NAME {                                                                    \
        static constexpr int BS = BS_, TS = TS_;                                              \
        static __device__ __forceinline__ void decode(const uint8_t *b, int c, float *y) { FN(b, c, y); } \
    };
ORC_QD_FOREACH_BLOCK_TYPE(ORC_DQ_TRAITS)
#undef ORC_DQ_TRAITS

template <class Q, int DT>
__global__ void __launch_bounds__(kThreads)
    orc_dequant_blocks_kernel(const uint8_t *__restrict__ src, int64_t nblocks, void *__restrict__ dst, int src_vec,
                              int dst_vec) {
    constexpr int NB = kTileElems / Q::BS; /* blocks per tile */
    constexpr int TILE_BYTES = NB * Q::TS;
    constexpr int CPB = Q::BS / 8; /* chunks per block */
    static_assert(kTileElems % Q::BS == 0 && TILE_BYTES % 16 == 0, "tile must hold whole blocks, 16-byte aligned");
    __shared__ __align__(16) uint8_t tile[TILE_BYTES];

    const int64_t b0 = (int64_t)blockIdx.x * NB;
    const int nb = (int)(nblocks - b0 < NB ? nblocks - b0 : NB);
    const int bytes = nb * Q::TS;
    const uint8_t *g = src + b0 * Q::TS;
    if (src_vec) {
        const int nv = bytes / 16;
        for (int i = threadIdx.x; i < nv; i += kThreads)
            reinterpret_cast<uint4 *>(tile)[i] = __ldg(reinterpret_cast<const uint4 *>(g) + i);
        for (int i = nv * 16 + threadIdx.x; i < bytes; i += kThreads) tile[i] = __ldg(g + i);
    } else {
        for (int i = threadIdx.x; i < bytes; i += kThreads) tile[i] = __ldg(g + i);
    }
    __syncthreads();

    const int nchunks = nb * CPB;
#pragma unroll
    for (int k = 0; k < kChunksPerThread; k++) {
        const int c = threadIdx.x + k * kThreads;
        if (c < nchunks) {
            float y[8];
            Q::decode(tile + (c / CPB) * Q::TS, c % CPB, y);
            orc_dq_store<DT>(dst, b0 * Q::BS + (int64_t)c * 8, y, 8, dst_vec != 0);
        }
    }
}

template <class Q>
cudaError_t orc_dq_launch_blocks(const uint8_t *src, int64_t n, orc_dtype dtype, void *dst, cudaStream_t stream) {
    constexpr int NB = kTileElems / Q::BS;
    const int64_t nblocks = n / Q::BS;
    const int64_t grid = (nblocks + NB - 1) / NB;
    if (grid > INT_MAX) return cudaErrorInvalidConfiguration;
    const int sv = ((uintptr_t)src % 16) == 0, dv = ((uintptr_t)dst % 16) == 0;
    switch (dtype) {
    case ORC_DTYPE_F32:
        orc_dequant_blocks_kernel<Q, ORC_DTYPE_F32><<<(unsigned)grid, kThreads, 0, stream>>>(src, nblocks, dst, sv, dv);
        break;
    case ORC_DTYPE_F16:
        orc_dequant_blocks_kernel<Q, ORC_DTYPE_F16><<<(unsigned)grid, kThreads, 0, stream>>>(src, nblocks, dst, sv, dv);
        break;
    default:
        orc_dequant_blocks_kernel<Q, ORC_DTYPE_BF16><<<(unsigned)grid, kThreads, 0, stream>>>(src, nblocks, dst, sv, dv);
        break;
    }
    return cudaGetLastError();
}

/* ---- float types ------------------------------------------------------------------- */

/* f16 -> f32 exactly as orc_qd_h2f: the hardware conversion is exact for every
 * non-NaN half; NaNs keep their payload through the integer path. */
__device__ __forceinline__ float orc_dq_h2f(uint32_t h) {
    if ((h & 0x7c00u) == 0x7c00u && (h & 0x3ffu)) return orc_qd_h2f((uint16_t)h);
    return __half2float(__ushort_as_half((unsigned short)h));
}

/* IN: ORC_TYPE_F32, ORC_TYPE_F16 or ORC_TYPE_BF16. 8 elements per thread. */
template <int IN, int DT>
__global__ void __launch_bounds__(kThreads)
    orc_dequant_float_kernel(const uint8_t *__restrict__ src, int64_t n, void *__restrict__ dst, int src_vec,
                             int dst_vec) {
    const int64_t e = ((int64_t)blockIdx.x * kThreads + threadIdx.x) * 8;
    if (e >= n) return;
    const int m = n - e < 8 ? (int)(n - e) : 8;
    float y[8];
    if (IN == ORC_TYPE_F32) {
        if (src_vec && m == 8) {
            const float4 *p = reinterpret_cast<const float4 *>(src) + e / 4;
            float4 a = __ldg(p), b = __ldg(p + 1);
            y[0] = a.x, y[1] = a.y, y[2] = a.z, y[3] = a.w, y[4] = b.x, y[5] = b.y, y[6] = b.z, y[7] = b.w;
        } else {
            for (int k = 0; k < m; k++) y[k] = orc_qd_from_bits(orc_qd_rd32(src + (e + k) * 4));
        }
    } else {
        uint32_t h[8];
        if (src_vec && m == 8) {
            uint4 v = __ldg(reinterpret_cast<const uint4 *>(src) + e / 8);
            const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
            for (int k = 0; k < 8; k++) h[k] = (w[k / 2] >> (16 * (k % 2))) & 0xffffu;
        } else {
            for (int k = 0; k < m; k++) h[k] = orc_qd_rd16(src + (e + k) * 2);
        }
#pragma unroll
        for (int k = 0; k < 8; k++)
            if (k < m) y[k] = IN == ORC_TYPE_F16 ? orc_dq_h2f(h[k]) : orc_qd_from_bits(h[k] << 16);
    }
    orc_dq_store<DT>(dst, e, y, m, dst_vec && m == 8);
}

template <int IN>
cudaError_t orc_dq_launch_float(const uint8_t *src, int64_t n, orc_dtype dtype, void *dst, cudaStream_t stream) {
    const int64_t grid = (n + (int64_t)kThreads * 8 - 1) / ((int64_t)kThreads * 8);
    if (grid > INT_MAX) return cudaErrorInvalidConfiguration;
    const int sv = ((uintptr_t)src % 16) == 0, dv = ((uintptr_t)dst % 16) == 0;
    switch (dtype) {
    case ORC_DTYPE_F32:
        orc_dequant_float_kernel<IN, ORC_DTYPE_F32><<<(unsigned)grid, kThreads, 0, stream>>>(src, n, dst, sv, dv);
        break;
    case ORC_DTYPE_F16:
        orc_dequant_float_kernel<IN, ORC_DTYPE_F16><<<(unsigned)grid, kThreads, 0, stream>>>(src, n, dst, sv, dv);
        break;
    default:
        orc_dequant_float_kernel<IN, ORC_DTYPE_BF16><<<(unsigned)grid, kThreads, 0, stream>>>(src, n, dst, sv, dv);
        break;
    }
    return cudaGetLastError();
}

/* Queue the work; the caller checked the arguments. */
cudaError_t orc_dq_launch(int32_t type, const void *d_src, int64_t n, orc_dtype dtype, void *d_dst,
                          cudaStream_t stream) {
    const uint8_t *src = static_cast<const uint8_t *>(d_src);
    if ((type == ORC_TYPE_F32 && dtype == ORC_DTYPE_F32) || (type == ORC_TYPE_F16 && dtype == ORC_DTYPE_F16))
        return cudaMemcpyAsync(d_dst, d_src, (size_t)n * (size_t)orc_dtype_size(dtype), cudaMemcpyDeviceToDevice,
                               stream); /* f16 -> f32 -> f16 is the identity on every bit pattern */
    switch (type) {
    case ORC_TYPE_F32: return orc_dq_launch_float<ORC_TYPE_F32>(src, n, dtype, d_dst, stream);
    case ORC_TYPE_F16: return orc_dq_launch_float<ORC_TYPE_F16>(src, n, dtype, d_dst, stream);
    case ORC_TYPE_BF16: return orc_dq_launch_float<ORC_TYPE_BF16>(src, n, dtype, d_dst, stream);
#define ORC_DQ_CASE(NAME, FN, BS, TS) \
    case ORC_TYPE_##NAME: return orc_dq_launch_blocks<orc_dq_##NAME>(src, n, dtype, d_dst, stream);
        ORC_QD_FOREACH_BLOCK_TYPE(ORC_DQ_CASE)
#undef ORC_DQ_CASE
    default: return cudaErrorInvalidValue; /* unreachable: orc_quant_validate refused it */
    }
}

} /* namespace */

/* ---- entry points ------------------------------------------------------------------ */

extern "C" orc_status orc_cuda_dequantize(int32_t type, const void *d_src, uint64_t src_bytes, int64_t n,
                                          orc_dtype dtype, void *d_dst, void *stream, orc_err *err) {
    orc_status st = orc_quant_validate(type, src_bytes, n, dtype, err);
    if (st != ORC_OK || n == 0) return st;
    if (!d_src || !d_dst) return orc_fail(err, ORC_E_INVALID, "orc_cuda_dequantize: NULL source or destination");
    if ((uintptr_t)d_dst % (uintptr_t)orc_dtype_size(dtype) != 0)
        return orc_fail(err, ORC_E_INVALID, "orc_cuda_dequantize: destination %p is not aligned to its %s elements",
                        d_dst, orc_dtype_name(dtype));
    ORC_CUDA_CHECK(orc_dq_launch(type, d_src, n, dtype, d_dst, static_cast<cudaStream_t>(stream)));
cleanup:
    return st;
}

extern "C" orc_status orc_cuda_dequantize_host_at(int32_t type, const void *src, uint64_t src_bytes, int64_t n,
                                                  orc_dtype dtype, void *dst, uint32_t src_offset, uint32_t dst_offset,
                                                  orc_err *err) {
    orc_status st = orc_quant_validate(type, src_bytes, n, dtype, err);
    uint8_t *d_src = NULL, *d_dst = NULL;
    const size_t dst_bytes = (size_t)n * (size_t)orc_dtype_size(dtype);
    if (st != ORC_OK || n == 0) return st;
    if (!src || !dst) return orc_fail(err, ORC_E_INVALID, "orc_cuda_dequantize_host: NULL source or destination");
    if (src_offset >= 256 || dst_offset >= 256 || dst_offset % (uint32_t)orc_dtype_size(dtype) != 0)
        return orc_fail(err, ORC_E_INVALID, "orc_cuda_dequantize_host_at: offsets %u, %u out of range", src_offset,
                        dst_offset);
    ORC_CUDA_CHECK(cudaMalloc((void **)&d_src, src_bytes + src_offset));
    ORC_CUDA_CHECK(cudaMalloc((void **)&d_dst, dst_bytes + dst_offset));
    ORC_CUDA_CHECK(cudaMemcpy(d_src + src_offset, src, src_bytes, cudaMemcpyHostToDevice));
    ORC_CUDA_CHECK(orc_dq_launch(type, d_src + src_offset, n, dtype, d_dst + dst_offset, 0));
    ORC_CUDA_CHECK(cudaMemcpy(dst, d_dst + dst_offset, dst_bytes, cudaMemcpyDeviceToHost)); /* waits for the kernel */
cleanup:
    if (d_src) (void)cudaFree(d_src);
    if (d_dst) (void)cudaFree(d_dst);
    return st;
}

extern "C" orc_status orc_cuda_dequantize_host(int32_t type, const void *src, uint64_t src_bytes, int64_t n,
                                               orc_dtype dtype, void *dst, orc_err *err) {
    return orc_cuda_dequantize_host_at(type, src, src_bytes, n, dtype, dst, 0, 0, err);
}

extern "C" orc_status orc_cuda_dequantize_bench(int32_t type, const void *src, uint64_t src_bytes, int64_t n,
                                                orc_dtype dtype, int iters, orc_cuda_dequant_timing *out,
                                                orc_err *err) {
    orc_status st = orc_quant_validate(type, src_bytes, n, dtype, err);
    void *d_src = NULL, *d_dst = NULL, *c_a = NULL, *c_b = NULL;
    cudaEvent_t e0 = NULL, e1 = NULL;
    const uint64_t dst_bytes = (uint64_t)n * (uint64_t)orc_dtype_size(dtype);
    const uint64_t copy_bytes = ((src_bytes + dst_bytes) / 2 + 255) / 256 * 256;
    double ksum = 0, kmin = 1e30, csum = 0, cmin = 1e30;
    if (st != ORC_OK) return st;
    if (n == 0 || iters < 1 || !src || !out)
        return orc_fail(err, ORC_E_INVALID, "orc_cuda_dequantize_bench: need n > 0, iters >= 1, src and out");
    ORC_CUDA_CHECK(cudaEventCreate(&e0));
    ORC_CUDA_CHECK(cudaEventCreate(&e1));
    ORC_CUDA_CHECK(cudaMalloc(&d_src, src_bytes));
    ORC_CUDA_CHECK(cudaMalloc(&d_dst, dst_bytes));
    ORC_CUDA_CHECK(cudaMemcpy(d_src, src, src_bytes, cudaMemcpyHostToDevice));
    ORC_CUDA_CHECK(orc_dq_launch(type, d_src, n, dtype, d_dst, 0)); /* warm-up */
    ORC_CUDA_CHECK(cudaDeviceSynchronize());
    for (int i = 0; i < iters; i++) {
        float ms = 0;
        ORC_CUDA_CHECK(cudaEventRecord(e0, 0));
        ORC_CUDA_CHECK(orc_dq_launch(type, d_src, n, dtype, d_dst, 0));
        ORC_CUDA_CHECK(cudaEventRecord(e1, 0));
        ORC_CUDA_CHECK(cudaEventSynchronize(e1));
        ORC_CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
        ksum += ms;
        kmin = ms < kmin ? ms : kmin;
    }
    ORC_CUDA_CHECK(cudaFree(d_dst));
    d_dst = NULL;
    ORC_CUDA_CHECK(cudaMalloc(&c_a, copy_bytes));
    ORC_CUDA_CHECK(cudaMalloc(&c_b, copy_bytes));
    ORC_CUDA_CHECK(cudaMemset(c_a, 0x3c, copy_bytes));
    ORC_CUDA_CHECK(cudaMemcpy(c_b, c_a, copy_bytes, cudaMemcpyDeviceToDevice)); /* warm-up */
    ORC_CUDA_CHECK(cudaDeviceSynchronize());
    for (int i = 0; i < iters; i++) {
        float ms = 0;
        ORC_CUDA_CHECK(cudaEventRecord(e0, 0));
        ORC_CUDA_CHECK(cudaMemcpyAsync(c_b, c_a, copy_bytes, cudaMemcpyDeviceToDevice, 0));
        ORC_CUDA_CHECK(cudaEventRecord(e1, 0));
        ORC_CUDA_CHECK(cudaEventSynchronize(e1));
        ORC_CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
        csum += ms;
        cmin = ms < cmin ? ms : cmin;
    }
    out->kernel_ms_mean = ksum / iters;
    out->kernel_ms_min = kmin;
    out->copy_ms_mean = csum / iters;
    out->copy_ms_min = cmin;
    out->src_bytes = src_bytes;
    out->dst_bytes = dst_bytes;
    out->copy_bytes = copy_bytes;
cleanup:
    if (d_src) (void)cudaFree(d_src);
    if (d_dst) (void)cudaFree(d_dst);
    if (c_a) (void)cudaFree(c_a);
    if (c_b) (void)cudaFree(c_b);
    if (e0) (void)cudaEventDestroy(e0);
    if (e1) (void)cudaEventDestroy(e1);
    return st;
}
