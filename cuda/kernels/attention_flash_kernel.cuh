/* attention_flash_kernel.cuh - the flash-attention kernel (see attention_flash.cu for the
 * design and attention_flash.cuh for the semantics), on the primitives of runtime/simt.cuh
 * so that tests/c/test_attn_emu.cpp can run this same code on the host emulator. */
#ifndef ORC_ATTENTION_FLASH_KERNEL_CUH
#define ORC_ATTENTION_FLASH_KERNEL_CUH

#include <math.h>
#include <stdint.h>

#include "kernels/attention_flash.cuh"
#include "runtime/simt.cuh"

namespace orc_fa {


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
    static __device__ __forceinline__ uint32_t pack(float lo, float hi) { return orc_pack_f16(lo, hi); }
    static __device__ __forceinline__ void mma(float *c, const uint32_t *a, uint32_t b0, uint32_t b1) {
        orc_mma_f16(c, a, b0, b1);
    }
};

template <>
struct fa_type<__nv_bfloat16> {
    static __device__ __forceinline__ uint32_t pack(float lo, float hi) { return orc_pack_bf16(lo, hi); }
    static __device__ __forceinline__ void mma(float *c, const uint32_t *a, uint32_t b0, uint32_t b1) {
        orc_mma_bf16(c, a, b0, b1);
    }
};

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
    ORC_EXTERN_SHARED(unsigned char, fa_smem);
    T *Qs = reinterpret_cast<T *>(fa_smem); /* [kBQ][LD] */
    T *Ks = Qs + kBQ * LD;                  /* [2][BK][LD] */
    T *Vs = Ks + 2 * BK * LD;               /* [2][BK][LD] */
    ORC_SHARED_ARRAY(int, red_lo, kWarps);
    ORC_SHARED_ARRAY(int, red_hi, kWarps);

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
            orc_cp16(kd + jl * LD + 8 * c, ks, ok ? 16u : 0u);
            orc_cp16(vd + jl * LD + 8 * c, vs, ok ? 16u : 0u);
        }
        orc_cp_commit();
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
            orc_cp_wait<1>();
        } else {
            orc_cp_wait<0>();
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
                orc_ldsm_x4((Qs + (16 * warp + (mi & 1) * 8 + rr) * LD + kk * 16 + (mi >> 1) * 8), qa);
#pragma unroll
                for (int np = 0; np < NTS / 2; np++) {
                    uint32_t kb[4];
                    orc_ldsm_x4((kt + (np * 16 + (mi >> 1) * 8 + rr) * LD + kk * 16 + (mi & 1) * 8), kb);
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
                    orc_ldsm_x4_t((vt + (kb * 16 + (mi & 1) * 8 + rr) * LD + dp * 16 + (mi >> 1) * 8), vb);
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

} /* namespace orc_fa */

#endif /* ORC_ATTENTION_FLASH_KERNEL_CUH */
