/* attention_flash.cu - FlashAttention-2 style prefill attention (attention_flash.cuh).
 *
 * Rows: with G = n_head / n_head_kv query heads per kv head, the M dimension of a block
 * is the (token, head of the group) pairs m = t * G + h % G that share kv head g, so a
 * GQA group reads each K/V tile once for all its heads, and even short prompts fill the
 * 64-row tiles. Grid: (ceil(n * G / 64) row tiles, heaviest first; n_head_kv).
 * Block: 4 warps, 16 rows each. The block stages its 64 query rows (rounded to the cache
 * dtype) in shared memory once, then walks the keys any of its rows can see in tiles of
 * BK (64; 32 for head size 256, for registers), double-buffered with 16-byte cp.async
 * (keys past the block's range are zero-filled, never read). Per tile and warp:
 *   S = Q K^T  (mma.sync m16n8k16, fragments from ldmatrix), scale / softcap / mask in
 *   float32 (base-2 exponents), online softmax (running max and lane-partial sums, the
 *   sink's term folded in as the initial state), P rounded to the cache dtype,
 *   O += P V (ldmatrix.trans of V).
 * A warp skips the tiles none of its rows can see. Shared-memory rows are padded by 16
 * bytes so that ldmatrix's 8 row addresses fall in distinct bank groups.
 */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <math.h>
#include <stdint.h>

#include <atomic>

#include "kernels/attention_flash.cuh"

namespace {

constexpr int kWarps = 4;
constexpr int kThreads = 32 * kWarps;
constexpr int kBQ = 16 * kWarps; /* query rows per block */

template <int D>
struct fa_cfg {
    static constexpr int BK = D > 128 ? 32 : 64; /* keys per tile */
    static constexpr int LD = D + 8;              /* elements per shared-memory row (16 bytes of padding) */
    static constexpr size_t smem = (size_t)(kBQ + 4 * BK) * LD * 2; /* Q, K x 2, V x 2 */
};

template <typename T>
struct fa_type;

template <>
struct fa_type<__half> {
    static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
        union {
            __half2 h;
            uint32_t u;
        } c;
        c.h = __floats2half2_rn(lo, hi);
        return c.u;
    }
    static __device__ __forceinline__ void mma(float *c, const uint32_t *a, uint32_t b0, uint32_t b1) {
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                     "{%0,%1,%2,%3};\n"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
};

template <>
struct fa_type<__nv_bfloat16> {
    static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
        union {
            __nv_bfloat162 h;
            uint32_t u;
        } c;
        c.h = __floats2bfloat162_rn(lo, hi);
        return c.u;
    }
    static __device__ __forceinline__ void mma(float *c, const uint32_t *a, uint32_t b0, uint32_t b1) {
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                     "{%0,%1,%2,%3};\n"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
};

__device__ __forceinline__ uint32_t smem_addr(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }

__device__ __forceinline__ void ldsm_x4(uint32_t addr, uint32_t *r) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}

__device__ __forceinline__ void ldsm_x4_t(uint32_t addr, uint32_t *r) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}

/* 16 bytes global -> shared; src_bytes 0 writes zeros and reads nothing. */
__device__ __forceinline__ void cp16(void *smem, const void *gmem, uint32_t src_bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(smem)), "l"(gmem), "r"(src_bytes)
                 : "memory");
}
__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

template <typename T, int D>
__global__ void __launch_bounds__(kThreads, 2) orc_attn_flash_kernel(const orc_attn_flash_args a) {
    using F = fa_type<T>;
    constexpr int BK = fa_cfg<D>::BK, LD = fa_cfg<D>::LD;
    constexpr int NTS = BK / 8; /* n-tiles of S */
    constexpr int NTO = D / 8;  /* n-tiles of O */
    constexpr int KQ = D / 16;  /* k-steps of Q K^T */
    constexpr int KP = BK / 16; /* k-steps of P V */
    constexpr int CPR = D / 8;  /* 16-byte chunks per K/V row */
    constexpr float kLog2e = 1.4426950408889634f;
    extern __shared__ __align__(16) unsigned char fa_smem[];
    T *Qs = reinterpret_cast<T *>(fa_smem); /* [kBQ][LD] */
    T *Ks = Qs + kBQ * LD;                  /* [2][BK][LD] */
    T *Vs = Ks + 2 * BK * LD;               /* [2][BK][LD] */
    __shared__ int red_lo[kWarps], red_hi[kWarps];

    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, gq = lane >> 2, tq = lane & 3;
    const int G = a.n_head / a.n_head_kv;
    const int gkv = blockIdx.y;
    const int64_t M0 = (int64_t)(gridDim.x - 1 - blockIdx.x) * kBQ; /* the latest tokens (most keys) first */
    const int64_t Mn = a.n * G;
    const T *kc = static_cast<const T *>(a.k_cache);
    const T *vc = static_cast<const T *>(a.v_cache);

    /* The block's query rows, rounded to T; rows past the last are zeros. */
    for (int i = threadIdx.x; i < kBQ * (D / 2); i += kThreads) {
        const int m = i / (D / 2), d = 2 * (i % (D / 2));
        const int64_t M = M0 + m;
        float x0 = 0.0f, x1 = 0.0f;
        if (M < Mn) {
            const int64_t t = M / G;
            const int h = gkv * G + (int)(M - t * G);
            const float *qp = a.q + t * a.q_stride + (int64_t)h * D + d;
            x0 = qp[0];
            x1 = qp[1];
        }
        reinterpret_cast<uint32_t *>(Qs)[(m * LD + d) / 2] = F::pack(x0, x1);
    }

    /* This lane's two rows (16w + gq and + 8): the keys they see, lo..hi (none past the
     * last row), their heads, the initial softmax state (with a sink: its logit is the
     * running max and its term e^0 = 1 the running sum, held by one lane of the quad). */
    int lo[2], hi[2];
    float mrow[2], lrow[2];
    int64_t trow[2];
    int hrow[2];
#pragma unroll
    for (int e = 0; e < 2; e++) {
        const int64_t M = M0 + 16 * warp + gq + 8 * e;
        trow[e] = M < Mn ? M / G : -1;
        hrow[e] = gkv * G + (int)(M % G);
        if (trow[e] >= 0) {
            const int p = a.pos[trow[e]];
            hi[e] = p;
            lo[e] = a.window > 0 ? max(0, p - a.window + 1) : 0;
        } else {
            hi[e] = -1;
            lo[e] = 0x7fffffff;
        }
        mrow[e] = a.sinks ? a.sinks[hrow[e]] * kLog2e : -INFINITY;
        lrow[e] = (a.sinks && tq == 0) ? 1.0f : 0.0f;
    }
    int wlo = min(lo[0], lo[1]), whi = max(hi[0], hi[1]);
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
        wlo = min(wlo, __shfl_xor_sync(0xffffffffu, wlo, off));
        whi = max(whi, __shfl_xor_sync(0xffffffffu, whi, off));
    }
    if (lane == 0) {
        red_lo[warp] = wlo;
        red_hi[warp] = whi;
    }
    __syncthreads();
    int blo = red_lo[0], bhi = red_hi[0];
#pragma unroll
    for (int w = 1; w < kWarps; w++) {
        blo = min(blo, red_lo[w]);
        bhi = max(bhi, red_hi[w]);
    }
    const int ntiles = bhi >= blo ? (bhi - blo) / BK + 1 : 0; /* block-uniform */
    const int64_t kvb = a.kv_base[0];

    /* Tile it (keys blo + it * BK ..) into stage `stage`; keys past bhi are zero-filled. */
    auto load_tile = [&](int it, int stage) {
        const int j0 = blo + it * BK;
        T *kd = Ks + stage * BK * LD, *vd = Vs + stage * BK * LD;
        for (int i = threadIdx.x; i < BK * CPR; i += kThreads) {
            const int jl = i / CPR, c = i % CPR;
            const int j = j0 + jl;
            const bool ok = j <= bhi;
            const int64_t row = kvb + j;
            const T *ks = ok ? kc + row * a.k_stride + (int64_t)gkv * D + 8 * c : kc;
            const T *vs = ok ? vc + row * a.v_stride + (int64_t)gkv * D + 8 * c : vc;
            cp16(kd + jl * LD + 8 * c, ks, ok ? 16u : 0u);
            cp16(vd + jl * LD + 8 * c, vs, ok ? 16u : 0u);
        }
        cp_commit();
    };

    float o[NTO][4];
#pragma unroll
    for (int i = 0; i < NTO; i++) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
    const bool cap = a.softcap > 0.0f;
    const float sl2 = a.scale * kLog2e;
    const int mi = lane >> 3, rr = lane & 7; /* ldmatrix: this lane's matrix and row */

    if (ntiles > 0) load_tile(0, 0);
    for (int it = 0; it < ntiles; it++) {
        const int stage = it & 1;
        if (it + 1 < ntiles) {
            load_tile(it + 1, stage ^ 1);
            cp_wait<1>();
        } else {
            cp_wait<0>();
        }
        __syncthreads(); /* tile it (and, the first time, Q) visible to all warps */
        const int j0 = blo + it * BK;
        if (j0 <= whi && j0 + BK - 1 >= wlo) { /* warp-uniform: some row of the warp sees a key here */
            const T *kt = Ks + stage * BK * LD, *vt = Vs + stage * BK * LD;
            float s[NTS][4];
#pragma unroll
            for (int i = 0; i < NTS; i++) s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.0f;
#pragma unroll
            for (int kk = 0; kk < KQ; kk++) {
                uint32_t qa[4];
                ldsm_x4(smem_addr(Qs + (16 * warp + (mi & 1) * 8 + rr) * LD + kk * 16 + (mi >> 1) * 8), qa);
#pragma unroll
                for (int np = 0; np < NTS / 2; np++) {
                    uint32_t kb[4];
                    ldsm_x4(smem_addr(kt + (np * 16 + (mi >> 1) * 8 + rr) * LD + kk * 16 + (mi & 1) * 8), kb);
                    F::mma(s[2 * np], qa, kb[0], kb[1]);
                    F::mma(s[2 * np + 1], qa, kb[2], kb[3]);
                }
            }
            /* scores in base 2, masked; the rows' maxima over this tile */
            float tmax[2] = {-INFINITY, -INFINITY};
#pragma unroll
            for (int nt = 0; nt < NTS; nt++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    const int r = e >> 1, key = j0 + nt * 8 + 2 * tq + (e & 1);
                    float x = s[nt][e];
                    x = cap ? a.softcap * tanhf(x * a.scale / a.softcap) * kLog2e : x * sl2;
                    x = (key >= lo[r] && key <= hi[r]) ? x : -INFINITY;
                    s[nt][e] = x;
                    tmax[r] = fmaxf(tmax[r], x);
                }
            float muse[2], corr[2];
#pragma unroll
            for (int r = 0; r < 2; r++) {
                tmax[r] = fmaxf(tmax[r], __shfl_xor_sync(0xffffffffu, tmax[r], 1));
                tmax[r] = fmaxf(tmax[r], __shfl_xor_sync(0xffffffffu, tmax[r], 2));
                const float mnew = fmaxf(mrow[r], tmax[r]);
                muse[r] = mnew == -INFINITY ? 0.0f : mnew; /* nothing seen yet: e^(-inf) = 0 below */
                corr[r] = exp2f(mrow[r] - muse[r]);
                mrow[r] = mnew;
            }
            float lsum[2] = {0.0f, 0.0f};
#pragma unroll
            for (int nt = 0; nt < NTS; nt++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    const float p = exp2f(s[nt][e] - muse[e >> 1]);
                    s[nt][e] = p;
                    lsum[e >> 1] += p;
                }
#pragma unroll
            for (int r = 0; r < 2; r++) lrow[r] = lrow[r] * corr[r] + lsum[r];
#pragma unroll
            for (int i = 0; i < NTO; i++) {
                o[i][0] *= corr[0];
                o[i][1] *= corr[0];
                o[i][2] *= corr[1];
                o[i][3] *= corr[1];
            }
#pragma unroll
            for (int kb = 0; kb < KP; kb++) {
                const uint32_t pa[4] = {F::pack(s[2 * kb][0], s[2 * kb][1]), F::pack(s[2 * kb][2], s[2 * kb][3]),
                                        F::pack(s[2 * kb + 1][0], s[2 * kb + 1][1]),
                                        F::pack(s[2 * kb + 1][2], s[2 * kb + 1][3])};
#pragma unroll
                for (int dp = 0; dp < NTO / 2; dp++) {
                    uint32_t vb[4];
                    ldsm_x4_t(smem_addr(vt + (kb * 16 + (mi & 1) * 8 + rr) * LD + dp * 16 + (mi >> 1) * 8), vb);
                    F::mma(o[2 * dp], pa, vb[0], vb[1]);
                    F::mma(o[2 * dp + 1], pa, vb[2], vb[3]);
                }
            }
        }
        __syncthreads(); /* every warp is done with stage `stage` before it is refilled */
    }

#pragma unroll
    for (int r = 0; r < 2; r++) {
        lrow[r] += __shfl_xor_sync(0xffffffffu, lrow[r], 1);
        lrow[r] += __shfl_xor_sync(0xffffffffu, lrow[r], 2);
    }
#pragma unroll
    for (int e = 0; e < 2; e++) {
        if (trow[e] < 0) continue;
        float *op = a.out + trow[e] * a.out_stride + (int64_t)hrow[e] * D + 2 * tq;
#pragma unroll
        for (int i = 0; i < NTO; i++) {
            op[8 * i] = __fdiv_rn(o[i][2 * e], lrow[e]);
            op[8 * i + 1] = __fdiv_rn(o[i][2 * e + 1], lrow[e]);
        }
    }
}

template <typename T, int D>
cudaError_t launch_fa(const orc_attn_flash_args *a, cudaStream_t s) {
    static std::atomic<unsigned long long> done{0};
    int dev = 0;
    cudaError_t e = cudaGetDevice(&dev);
    if (e != cudaSuccess) return e;
    const unsigned long long bit = 1ull << (dev & 63);
    if (!(done.load(std::memory_order_acquire) & bit)) {
        e = cudaFuncSetAttribute(orc_attn_flash_kernel<T, D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 (int)fa_cfg<D>::smem);
        if (e != cudaSuccess) return e;
        done.fetch_or(bit, std::memory_order_release);
    }
    const int64_t rows = a->n * (a->n_head / a->n_head_kv);
    const int64_t tiles = (rows + kBQ - 1) / kBQ;
    if (tiles > 0x7fffffff || a->n_head_kv > 65535) return cudaErrorInvalidValue;
    const dim3 grid((unsigned)tiles, (unsigned)a->n_head_kv);
    orc_attn_flash_kernel<T, D><<<grid, kThreads, fa_cfg<D>::smem, s>>>(*a);
    return cudaGetLastError();
}

template <typename T>
cudaError_t launch_fa_t(const orc_attn_flash_args *a, cudaStream_t s) {
    switch (a->head_dim) {
    case 64: return launch_fa<T, 64>(a, s);
    case 80: return launch_fa<T, 80>(a, s);
    case 96: return launch_fa<T, 96>(a, s);
    case 128: return launch_fa<T, 128>(a, s);
    case 256: return launch_fa<T, 256>(a, s);
    default: return cudaErrorNotSupported;
    }
}

} /* namespace */

bool orc_attention_flash_supported(orc_dtype kv_dtype, int32_t head_dim, int32_t head_dim_v) {
    if (kv_dtype != ORC_DTYPE_F16 && kv_dtype != ORC_DTYPE_BF16) return false;
    if (head_dim != head_dim_v) return false;
    return head_dim == 64 || head_dim == 80 || head_dim == 96 || head_dim == 128 || head_dim == 256;
}

cudaError_t orc_launch_attention_flash(const orc_attn_flash_args *a, cudaStream_t s) {
    if (!a) return cudaErrorInvalidValue;
    if (a->n < 0 || a->n_head < 1 || a->n_head_kv < 1 || a->n_head % a->n_head_kv != 0 || a->window < 0 ||
        !(a->softcap >= 0.0f) || !(a->scale == a->scale))
        return cudaErrorInvalidValue;
    if (!orc_attention_flash_supported(a->kv_dtype, a->head_dim, a->head_dim_v)) return cudaErrorNotSupported;
    if ((uintptr_t)a->k_cache % 16 != 0 || (uintptr_t)a->v_cache % 16 != 0 || a->k_stride % 8 != 0 ||
        a->v_stride % 8 != 0)
        return cudaErrorNotSupported;
    if (a->n == 0) return cudaSuccess;
    if (!a->q || !a->out || !a->k_cache || !a->v_cache || !a->pos || !a->kv_base) return cudaErrorInvalidValue;
    if (a->q_stride < (int64_t)a->n_head * a->head_dim || a->out_stride < (int64_t)a->n_head * a->head_dim_v ||
        a->k_stride < (int64_t)a->n_head_kv * a->head_dim || a->v_stride < (int64_t)a->n_head_kv * a->head_dim_v)
        return cudaErrorInvalidValue;
    return a->kv_dtype == ORC_DTYPE_F16 ? launch_fa_t<__half>(a, s) : launch_fa_t<__nv_bfloat16>(a, s);
}
