/* dequant.cu - GPU dequantization of every type orc supports (gpu_dequant.h).
 *
 * Values: bit-identical to the CPU's and gguf-py's. The decoders are those of
 * csrc/quant_decode.h (the code the CPU runs) and, on the whole-tile path below, the
 * cheaper ones of dequant_fast.cuh (same operations on the values, checked against
 * quant_decode.h chunk by chunk by tests/c/test_dequant_fast.c); all float arithmetic
 * goes through __fmul_rn/__fadd_rn/__fsub_rn, never contracted into FMA.
 *
 * Mapping (block types): a CTA of 256 threads owns a tile of 8192 output elements,
 * i.e. 8192/block_size whole blocks. It first copies the tile's quantized bytes
 * (16-byte aligned: 8192/block_size * type_size is a multiple of 16 for every type)
 * into shared memory with coalesced 16-byte loads, then each thread decodes 4
 * chunks of 8 consecutive elements, one per round; in round k warp w covers the 32
 * chunks from 256k + 32w, so every store instruction of a warp writes 512 contiguous
 * bytes: one 16-byte store per lane for float16/bfloat16; for float32 (32 bytes per
 * chunk) lanes pair up and swap halves so that each of the two stores still covers
 * whole 32-byte sectors (docs/perf_dequant.md says why that matters). The last,
 * partial tile and unaligned outputs take a chunk-by-chunk path with bounds checks.
 * The IQ grids and sign tables are __device__ globals read through L1
 * (quant_tables.h explains why not __constant__).
 * Float types (F32/F16/BF16) are elementwise: 8 elements per thread, 16-byte loads
 * and stores where the pointers allow.
 */
#include <cuda_bf16.h>     /* __floats2bfloat162_rn */
#include <cuda_fp16.h>     /* __floats2half2_rn, __half2float */
#include <cuda_runtime.h>

#include <limits.h>  /* INT_MAX */
#include <stdint.h>
#include <stdlib.h>  /* getenv */
#include <string.h>  /* strcmp */

#include "gguf/ggml_types.h"    /* ORC_TYPE_* */
#include "quant/gpu_dequant.h"   /* the entry points defined here */
#include "quant/quant_decode.h"  /* the decoders, shared with the CPU */
#include "runtime/cuda_check.cuh"          /* ORC_CUDA_CHECK */
#include "dequant/dequant_fast.cuh"        /* cheaper decoders (same values) for whole tiles */

namespace {

constexpr int kThreads = 256;
constexpr int kChunksPerThread = 4;
constexpr int kTileElems = kThreads * kChunksPerThread * 8;

/* How a block kernel writes (its `mode` argument). kChunked and kWholeDirect exist for
 * the benchmark's comparison columns only (bench/bench_dequant.py --variants). */
enum {
    kUnaligned = 0,   /* output not 16-byte aligned: chunk by chunk, scalar stores */
    kWhole = 1,       /* the normal case: whole tiles on the whole-tile path */
    kChunked = 2,     /* every tile chunk by chunk, as before the whole-tile path */
    kWholeDirect = 3, /* whole-tile path, but float32 chunks stored as 2 x 16 bytes per lane */
};

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
        static constexpr int BS = BS_, TS = TS_, TYPE = ORC_TYPE_##NAME;                      \
        static __device__ __forceinline__ void decode(const uint8_t *b, int c, float *y) { FN(b, c, y); } \
    };
ORC_QD_FOREACH_BLOCK_TYPE(ORC_DQ_TRAITS)
#undef ORC_DQ_TRAITS

/* The decoder of the whole-tile path: dequant_fast.cuh's where it has one (same
 * values, fewer instructions), else the shared one. */
template <class Q>
struct orc_dq_fast {
    static __device__ __forceinline__ void decode(const uint8_t *b, unsigned c, float *y) { Q::decode(b, (int)c, y); }
};
#define ORC_DQ_FAST(NAME, FN)                                                                            \
    template <>                                                                                          \
    struct orc_dq_fast<orc_dq_##NAME> {                                                                  \
        static __device__ __forceinline__ void decode(const uint8_t *b, unsigned c, float *y) { FN(b, c, y); } \
    };
ORC_DQF_FOREACH(ORC_DQ_FAST)
#undef ORC_DQ_FAST

/* Whether the hardware's float -> float16 / bfloat16 rounding gives orc_qd_f2h's /
 * orc_qd_f2bf's bits for every value a type's decoder can output (whole-tile path).
 * Both round to nearest even, exactly, on normal and zero values and on overflow.
 * They differ on NaN payloads (the hardware writes its canonical NaN) and possibly on
 * float32 subnormal inputs to bfloat16. Every decoder but Q1_0's makes its values
 * with float arithmetic, and GPU arithmetic only ever makes the canonical NaN
 * 0x7fffffff, which both roundings map to 0x7fff; Q1_0 passes a scale's bits through
 * (sign flips only), NaN payload included. Float32 subnormal values need a scale
 * below 2^-126: only MXFP4's E8M0 scale goes there (the others' scales are fp16 or
 * UE4M3 products, and their values multiples of at least 2^-27). */
template <class Q, int DT>
struct orc_dq_hw_round {
    static constexpr bool value =
        Q::TYPE != ORC_TYPE_Q1_0 && (DT != ORC_DTYPE_BF16 || Q::TYPE != ORC_TYPE_MXFP4);
};

/* Eight floats to eight halves or bfloat16s, packed for one 16-byte store: with the
 * hardware rounding when HW, else (float16) the hardware unless a value is NaN (one
 * predicate per chunk; a NaN sends the chunk to orc_dq_pack_nan, out of line, its
 * arguments values so y stays in registers) or (bfloat16) orc_qd_f2bf's bit rounding. */
__device__ __noinline__ uint4 orc_dq_pack_nan(float a0, float a1, float a2, float a3, float a4, float a5, float a6,
                                              float a7) {
    return make_uint4((uint32_t)orc_qd_f2h(a0) | ((uint32_t)orc_qd_f2h(a1) << 16),
                      (uint32_t)orc_qd_f2h(a2) | ((uint32_t)orc_qd_f2h(a3) << 16),
                      (uint32_t)orc_qd_f2h(a4) | ((uint32_t)orc_qd_f2h(a5) << 16),
                      (uint32_t)orc_qd_f2h(a6) | ((uint32_t)orc_qd_f2h(a7) << 16));
}

template <int DT, bool HW>
__device__ __forceinline__ uint4 orc_dq_pack8(const float *y) {
    uint32_t w[4];
    if (DT == ORC_DTYPE_BF16) {
#pragma unroll
        for (int k = 0; k < 4; k++) {
            if (HW) {
                const __nv_bfloat162 h = __floats2bfloat162_rn(y[2 * k], y[2 * k + 1]);
                w[k] = (uint32_t)__bfloat16_as_ushort(__low2bfloat16(h)) |
                       ((uint32_t)__bfloat16_as_ushort(__high2bfloat16(h)) << 16);
            } else {
                w[k] = orc_dq_bf16x2(y[2 * k], y[2 * k + 1]);
            }
        }
        return make_uint4(w[0], w[1], w[2], w[3]);
    }
    if (!HW) {
        bool nan = false;
#pragma unroll
        for (int k = 0; k < 8; k++) nan |= y[k] != y[k];
        if (nan) return orc_dq_pack_nan(y[0], y[1], y[2], y[3], y[4], y[5], y[6], y[7]);
    }
#pragma unroll
    for (int k = 0; k < 4; k++) {
        const __half2 h = __floats2half2_rn(y[2 * k], y[2 * k + 1]);
        w[k] = (uint32_t)__half_as_ushort(__low2half(h)) | ((uint32_t)__half_as_ushort(__high2half(h)) << 16);
    }
    return make_uint4(w[0], w[1], w[2], w[3]);
}

template <class Q, int DT>
__global__ void __launch_bounds__(kThreads)
    orc_dequant_blocks_kernel(const uint8_t *__restrict__ src, int64_t nblocks, void *__restrict__ dst, int src_vec,
                              int mode) {
    constexpr int NB = kTileElems / Q::BS; /* blocks per tile */
    constexpr int TILE_BYTES = NB * Q::TS;
    constexpr int CPB = Q::BS / 8; /* chunks per block (a power of two) */
    static_assert(kTileElems % Q::BS == 0 && TILE_BYTES % 16 == 0, "tile must hold whole blocks, 16-byte aligned");
    __shared__ __align__(16) uint8_t tile[TILE_BYTES + 16]; /* + 16: dequant_fast.cuh reads past a field */

    const int64_t b0 = (int64_t)blockIdx.x * NB;
    const int nb = (int)(nblocks - b0 < NB ? nblocks - b0 : NB);
    const int bytes = nb * Q::TS;
    const uint8_t *g = src + b0 * Q::TS;
    if (src_vec && nb == NB && (mode == kWhole || mode == kWholeDirect)) {
        /* whole tile: a fixed count of 16-byte loads per thread, all issued first */
        constexpr int NV = TILE_BYTES / 16;
#pragma unroll
        for (int j = 0; j < (NV + kThreads - 1) / kThreads; j++) {
            const int i = threadIdx.x + j * kThreads;
            if (NV % kThreads == 0 || i < NV)
                reinterpret_cast<uint4 *>(tile)[i] = __ldg(reinterpret_cast<const uint4 *>(g) + i);
        }
    } else if (src_vec) {
        const int nv = bytes / 16;
        for (int i = threadIdx.x; i < nv; i += kThreads)
            reinterpret_cast<uint4 *>(tile)[i] = __ldg(reinterpret_cast<const uint4 *>(g) + i);
        for (int i = nv * 16 + threadIdx.x; i < bytes; i += kThreads) tile[i] = __ldg(g + i);
    } else {
        for (int i = threadIdx.x; i < bytes; i += kThreads) tile[i] = __ldg(g + i);
    }
    __syncthreads();

#ifdef ORC_DQ_COUNT_FAST /* tools/dequant_sass.py: only this path, to count its instructions */
    mode = kWhole;
    if (true) {
#else
    if (nb == NB && (mode == kWhole || mode == kWholeDirect)) {
#endif
        /* Whole tile, aligned output: no bounds checks, and every warp store instruction
         * writes 512 contiguous bytes (whole 32-byte sectors). Round k of warp w covers
         * the 32 chunks from c0 = 256k + 32w. A thread's chunk has the same index cc
         * within its block in every round (256 chunks are whole blocks), so what the
         * decoder derives from cc is computed once; round k's block is RSTRIDE bytes
         * further. */
        constexpr unsigned RSTRIDE = kThreads / CPB * Q::TS;
        const unsigned lane = threadIdx.x & 31u, w = threadIdx.x >> 5;
        if (DT == ORC_DTYPE_F32 && mode == kWholeDirect) { /* the benchmark's comparison only */
            const unsigned cc = threadIdx.x % CPB;
            const uint8_t *bp = tile + (threadIdx.x / CPB) * Q::TS;
            float4 *o = reinterpret_cast<float4 *>(static_cast<float *>(dst) + b0 * Q::BS) + 2 * threadIdx.x;
#pragma unroll
            for (int k = 0; k < kChunksPerThread; k++) {
                float y[8];
                orc_dq_fast<Q>::decode(bp + k * RSTRIDE, cc, y);
                o[2 * k * kThreads] = make_float4(y[0], y[1], y[2], y[3]);
                o[2 * k * kThreads + 1] = make_float4(y[4], y[5], y[6], y[7]);
            }
        } else if (DT == ORC_DTYPE_F32) {
            /* A chunk is 32 bytes of float32, so one lane's 8 values would fill two
             * half-sectors per instruction. Lanes pair up instead: even lane 2i decodes
             * chunk c0+i, odd lane 2i+1 chunk c0+16+i; they swap halves, then the first
             * store writes chunks c0..c0+15 (lane l: half l&1 of chunk c0+l/2) and the
             * second chunks c0+16..c0+31. */
            const bool odd = lane & 1u;
            const unsigned c = w * 32u + (lane >> 1) + (odd ? 16u : 0u); /* round 0 */
            const unsigned cc = c % CPB;
            const uint8_t *bp = tile + (c / CPB) * Q::TS;
            float4 *o = reinterpret_cast<float4 *>(static_cast<float *>(dst) + b0 * Q::BS) + w * 64u + lane;
#pragma unroll
            for (int k = 0; k < kChunksPerThread; k++) {
                float y[8];
                orc_dq_fast<Q>::decode(bp + k * RSTRIDE, cc, y);
                float r[4];
#pragma unroll
                for (int i = 0; i < 4; i++) r[i] = __shfl_xor_sync(0xffffffffu, odd ? y[i] : y[4 + i], 1);
                const float4 lo = odd ? make_float4(r[0], r[1], r[2], r[3]) : make_float4(y[0], y[1], y[2], y[3]);
                const float4 hi = odd ? make_float4(y[4], y[5], y[6], y[7]) : make_float4(r[0], r[1], r[2], r[3]);
                o[k * 2 * kThreads] = lo;
                o[k * 2 * kThreads + 32] = hi;
            }
        } else {
            const unsigned cc = threadIdx.x % CPB;
            const uint8_t *bp = tile + (threadIdx.x / CPB) * Q::TS;
            uint4 *o = reinterpret_cast<uint4 *>(static_cast<uint16_t *>(dst) + b0 * Q::BS) + threadIdx.x;
#pragma unroll
            for (int k = 0; k < kChunksPerThread; k++) {
                float y[8];
                orc_dq_fast<Q>::decode(bp + k * RSTRIDE, cc, y);
                o[k * kThreads] = orc_dq_pack8<DT, orc_dq_hw_round<Q, DT>::value>(y);
            }
        }
        return;
    }

    /* The last, partial tile or an unaligned output: chunk by chunk, bounds checked. */
    const int nchunks = nb * CPB;
#pragma unroll
    for (int k = 0; k < kChunksPerThread; k++) {
        const int c = threadIdx.x + k * kThreads;
        if (c < nchunks) {
            float y[8];
            Q::decode(tile + (c / CPB) * Q::TS, c % CPB, y);
            orc_dq_store<DT>(dst, b0 * Q::BS + (int64_t)c * 8, y, 8, mode != kUnaligned);
        }
    }
}

/* variant: kWhole, or (benchmark only) kChunked or kWholeDirect; kUnaligned when the
 * output is not 16-byte aligned, whatever was asked. */
template <class Q>
cudaError_t orc_dq_launch_blocks(const uint8_t *src, int64_t n, orc_dtype dtype, void *dst, cudaStream_t stream,
                                 int variant) {
    constexpr int NB = kTileElems / Q::BS;
    const int64_t nblocks = n / Q::BS;
    const int64_t grid = (nblocks + NB - 1) / NB;
    if (grid > INT_MAX) return cudaErrorInvalidConfiguration;
    const int sv = ((uintptr_t)src % 16) == 0, dv = ((uintptr_t)dst % 16) != 0 ? kUnaligned : variant;
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
                          cudaStream_t stream, int variant = kWhole) {
    const uint8_t *src = static_cast<const uint8_t *>(d_src);
    if ((type == ORC_TYPE_F32 && dtype == ORC_DTYPE_F32) || (type == ORC_TYPE_F16 && dtype == ORC_DTYPE_F16))
        return cudaMemcpyAsync(d_dst, d_src, (size_t)n * (size_t)orc_dtype_size(dtype), cudaMemcpyDeviceToDevice,
                               stream); /* f16 -> f32 -> f16 is the identity on every bit pattern */
    switch (type) {
    case ORC_TYPE_F32: return orc_dq_launch_float<ORC_TYPE_F32>(src, n, dtype, d_dst, stream);
    case ORC_TYPE_F16: return orc_dq_launch_float<ORC_TYPE_F16>(src, n, dtype, d_dst, stream);
    case ORC_TYPE_BF16: return orc_dq_launch_float<ORC_TYPE_BF16>(src, n, dtype, d_dst, stream);
#define ORC_DQ_CASE(NAME, FN, BS, TS) \
    case ORC_TYPE_##NAME: return orc_dq_launch_blocks<orc_dq_##NAME>(src, n, dtype, d_dst, stream, variant);
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
    /* ORC_DQ_VARIANT (bench/bench_dequant.py --variants): "chunked" times the chunk-by-
     * chunk path on every tile (the kernels as they were before the whole-tile path),
     * "direct" the whole-tile path with float32 stored without the lanes' exchange. */
    const char *v = getenv("ORC_DQ_VARIANT");
    const int variant = !v ? kWhole : strcmp(v, "chunked") == 0 ? kChunked : strcmp(v, "direct") == 0 ? kWholeDirect
                                                                                                        : kWhole;
    if (st != ORC_OK) return st;
    if (n == 0 || iters < 1 || !src || !out)
        return orc_fail(err, ORC_E_INVALID, "orc_cuda_dequantize_bench: need n > 0, iters >= 1, src and out");
    ORC_CUDA_CHECK(cudaEventCreate(&e0));
    ORC_CUDA_CHECK(cudaEventCreate(&e1));
    ORC_CUDA_CHECK(cudaMalloc(&d_src, src_bytes));
    ORC_CUDA_CHECK(cudaMalloc(&d_dst, dst_bytes));
    ORC_CUDA_CHECK(cudaMemcpy(d_src, src, src_bytes, cudaMemcpyHostToDevice));
    ORC_CUDA_CHECK(orc_dq_launch(type, d_src, n, dtype, d_dst, 0, variant)); /* warm-up */
    ORC_CUDA_CHECK(cudaDeviceSynchronize());
    for (int i = 0; i < iters; i++) {
        float ms = 0;
        ORC_CUDA_CHECK(cudaEventRecord(e0, 0));
        ORC_CUDA_CHECK(orc_dq_launch(type, d_src, n, dtype, d_dst, 0, variant));
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
