/* attention_kernel.cuh - the one-token / few-query attention kernel of attention.cu (see its
 * top for the design) and its device helpers, on the primitives of runtime/simt.cuh so that
 * tests/c/test_attn_decode_emu.cpp runs this same code on the host emulator. */
#ifndef ORC_ATTENTION_KERNEL_CUH
#define ORC_ATTENTION_KERNEL_CUH

#include <float.h>
#include <math.h>
#include <stdint.h>

#include "runtime/simt.cuh"
#include "kernels/attention_rope.h" /* orc_attn_rope: the fused rope */
#include "kernels/head_norm.cuh"
#include "kernels/rope_pair.cuh"

#define ATTN_WARPS 4
#define ATTN_THREADS (32 * ATTN_WARPS)
#define ATTN_TILE 256
#define ATTN_MAX_DV 512 /* largest value head size: 16 accumulators per lane */
/* Keys per split in split mode (a fixed rule: attention.cu). 32: device run 23, decode steps
 * after a 512-token prompt 12-14% shorter than with 128 (8B 3.162 -> 2.784 ms, 0.5B 1.404 ->
 * 1.207), after 8 tokens 1% (more blocks share a head's keys; the merge reads more partials). */
#define ATTN_SPLIT_KEYS 32
/* Split-mode scratch: ATTN_COUNTERS counts (one per (query, head) row; zero at rest: the caller
 * zero-fills the scratch once and each row's merging block resets its count), then the partials. */
#define ATTN_COUNTERS 1024

__device__ __forceinline__ float ld(const float *p, int64_t i) { return p[i]; }
__device__ __forceinline__ float ld(const __half *p, int64_t i) { return __half2float(p[i]); }
__device__ __forceinline__ float ld(const __nv_bfloat16 *p, int64_t i) { return __bfloat162float(p[i]); }

/* Store a float as the cache's element type (rounded to nearest even: orc_store_from_f32's rule). */
__device__ __forceinline__ float to_elem(float v, const float *) { return v; }
__device__ __forceinline__ __half to_elem(float v, const __half *) { return __float2half_rn(v); }
__device__ __forceinline__ __nv_bfloat16 to_elem(float v, const __nv_bfloat16 *) { return __float2bfloat16_rn(v); }

/* The elements of one 16-byte load as floats: four float32, or eight float16 / bfloat16. */
__device__ __forceinline__ void unpack16(const uint4 &u, float *o, const float *) {
    const float *f = (const float *)&u;
    o[0] = f[0], o[1] = f[1], o[2] = f[2], o[3] = f[3];
}
__device__ __forceinline__ void unpack16(const uint4 &u, float *o, const __half *) {
    const __half2 *h = (const __half2 *)&u;
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const float2 f = __half22float2(h[i]);
        o[2 * i] = f.x, o[2 * i + 1] = f.y;
    }
}
__device__ __forceinline__ void unpack16(const uint4 &u, float *o, const __nv_bfloat16 *) {
    const __nv_bfloat162 *h = (const __nv_bfloat162 *)&u;
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const float2 f = __bfloat1622float2(h[i]);
        o[2 * i] = f.x, o[2 * i + 1] = f.y;
    }
}

/* Eight consecutive elements as floats (p 16-byte aligned). */
template <typename T>
__device__ __forceinline__ void ld8(const T *p, float *o) {
    constexpr int EL = 16 / (int)sizeof(T);
#pragma unroll
    for (int c = 0; c < 8 / EL; c++) unpack16(((const uint4 *)p)[c], o + c * EL, p);
}

/* q . k over hd elements, one thread: q in shared memory (every thread of a warp reads the
 * same word: a broadcast), k one row (of the cache, or of shared memory). Four partial sums,
 * element d into s[d % 4] with d increasing, added in a fixed order at the end. */
template <typename T>
__device__ __forceinline__ float dot_row(const float *qs, const T *kr, int32_t hd) {
    float s[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    int32_t d = 0;
    if (((uintptr_t)kr & 15u) == 0) {
        for (; d + 8 <= hd; d += 8) {
            float k8[8];
            ld8(kr + d, k8);
#pragma unroll
            for (int i = 0; i < 8; i++) s[i & 3] = fmaf(qs[d + i], k8[i], s[i & 3]);
        }
    }
    for (; d < hd; d++) s[d & 3] = fmaf(qs[d], ld(kr, d), s[d & 3]);
    return (s[0] + s[1]) + (s[2] + s[3]);
}

/* dot_row's products for the nw 16-byte words of a row from word w0 on, held in `slot` (shared
 * memory), into s. */
template <typename T>
__device__ __forceinline__ void dot_words(const float *qs, const uint8_t *slot, int32_t w0, int32_t nw, float *s) {
    constexpr int EL = 16 / (int)sizeof(T); /* elements per 16-byte word */
    for (int32_t c = 0; c < nw; c++) {
        float kv[EL];
        unpack16(*(const uint4 *)(slot + 16 * c), kv, (const T *)nullptr);
        const int32_t d = (w0 + c) * EL; /* a multiple of 4: element d + i goes to s[i % 4] */
#pragma unroll
        for (int i = 0; i < EL; i++) s[i & 3] = fmaf(qs[d + i], kv[i], s[i & 3]);
    }
}

/* dot_row's sums (the same operations in the same order: the same bits) on a cache row first
 * copied into this thread's shared-memory slot, sixteen 16-byte cp.async at a time, all in flight
 * together: a 128-wide float16 row costs one memory latency. Loaded straight into registers, the
 * compiler's schedule interleaved the loads with the products and reused their registers, three
 * loads in flight at a time (five or six latencies a row; cuobjdump of the plain loop). */
template <typename T>
__device__ __forceinline__ float dot_row_staged(const float *qs, const T *kr, int32_t hd, uint8_t *slot) {
    if (((uintptr_t)kr & 15u) != 0) return dot_row(qs, kr, hd);
    constexpr int EL = 16 / (int)sizeof(T); /* elements per 16-byte word */
    float s[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    const int32_t words = hd / EL;
    for (int32_t w0 = 0; w0 < words; w0 += 16) {
        const int32_t nw = words - w0 < 16 ? words - w0 : 16;
        for (int32_t c = 0; c < nw; c++) orc_cp16(slot + 16 * c, kr + (int64_t)(w0 + c) * EL, 16u);
        orc_cp_commit();
        orc_cp_wait<0>(); /* this thread's own copies: visible to it without a barrier */
        dot_words<T>(qs, slot, w0, nw, s);
    }
    for (int32_t d = words * EL; d < hd; d++) s[d & 3] = fmaf(qs[d], ld(kr, d), s[d & 3]);
    return (s[0] + s[1]) + (s[2] + s[3]);
}

/* The kernel's shared memory: floats (q, the tile's scores, the warps' accumulators), then, where the launch can give it (attn_smem_bytes within
 * 48 KiB: every head size up to 256), one key-row slot per thread for dot_row_staged, padded by
 * 16 bytes so that consecutive threads' slots start on different banks. */
#define ATTN_STAGE_SLOT (16 * 16 + 16)
__host__ __device__ __forceinline__ size_t attn_stage_offset(int32_t hd, int32_t hdv) {
    const size_t floats = (size_t)(hd + ATTN_TILE + ATTN_WARPS * hdv) * sizeof(float);
    return (floats + 15) / 16 * 16;
}
__host__ __device__ __forceinline__ size_t attn_smem_bytes(int32_t hd, int32_t hdv, bool staged) {
    return attn_stage_offset(hd, hdv) + (staged ? (size_t)ATTN_THREADS * ATTN_STAGE_SLOT : 0);
}

/* Whether the launch may fetch a split's K and V rows ahead (the kernel's prefetch): split mode
 * with at most 32 keys a split (a bit each), a K row one slot (at most 16 words), whole 16-byte
 * words of aligned rows, and the split's V rows fitting the slots of the threads past split_keys. */
__host__ __device__ __forceinline__ bool attn_can_prefetch(int32_t hd, int32_t hdv, int32_t el_bytes,
                                                           int64_t k_stride, int64_t v_stride, int32_t split_keys) {
    return split_keys <= 32 && hd * el_bytes % 16 == 0 && hd * el_bytes <= ATTN_STAGE_SLOT - 16 &&
           hdv * el_bytes % 16 == 0 && k_stride * el_bytes % 16 == 0 && v_stride * el_bytes % 16 == 0 &&
           (int64_t)split_keys * hdv * el_bytes <= (int64_t)(ATTN_THREADS - split_keys) * ATTN_STAGE_SLOT;
}

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

/* Merge the n_split (non-empty) splits of one (query, head) row, pp its partials: out = sum_s
 * acc_s e^(m_s - M) / (sum_s l_s e^(m_s - M) [+ e^(sink - M)]), M the max over the splits' m_s
 * [and the sink]. Read through L2 (orc_ldcg): other blocks wrote them in this launch. The loops
 * are unrolled so that four splits' loads are in flight at once (the sums keep split order). */
__device__ void attn_combine(const float *pp, int32_t n_split, int32_t hdv, float *o, const float *sink) {
    const int64_t st = hdv + 2;
    float M = sink ? *sink : -FLT_MAX;
#pragma unroll 4
    for (int32_t s = 0; s < n_split; s++) M = fmaxf(M, orc_ldcg(pp + s * st));
    float L = 0.0f;
#pragma unroll 4
    for (int32_t s = 0; s < n_split; s++) L += orc_ldcg(pp + s * st + 1) * expf(orc_ldcg(pp + s * st) - M);
    if (sink) L += expf(*sink - M);
    for (int32_t d = threadIdx.x; d < hdv; d += blockDim.x) {
        float a = 0.0f;
#pragma unroll 4
        for (int32_t s = 0; s < n_split; s++) a += orc_ldcg(pp + s * st + 2 + d) * expf(orc_ldcg(pp + s * st) - M);
        o[d] = a / L;
    }
}

/* The fused rope (attention_rope.h), after the wait, with q's head as the product wrote it in qs:
 * norm and rotate q in place (thread i rotates pair i by the angle (sn, cs) it computed before the
 * wait). Where this split holds the row this step writes (key jf of the split, else jf < 0), build that
 * key's K and V from the raw k and v of group g (kf: hd floats of scratch) into its slot and vt row,
 * as the KV store would have stored them, and, where `store`, write them to the caches' rows kc_row
 * and vc_row too. Every thread of the block calls it (barriers inside). */
template <typename T>
__device__ void attn_fused_rope(const orc_attn_rope &r, float *qs, float *kf, float *red, int32_t hd, int32_t hdv,
                                int32_t g, int32_t jf, uint8_t *slots, T *vt, bool store, T *kc_row, T *vc_row,
                                double sn, double cs) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (jf >= 0)
        for (int32_t d = threadIdx.x; d < hd; d += ATTN_THREADS) kf[d] = r.k[(int64_t)g * hd + d];
    __syncthreads(); /* qs and kf complete */
    if (r.q_norm) {
        if (warp == 0) {
            const float sq = orc_head_rms_scale(qs, hd, r.eps);
            if (lane == 0) red[0] = sq;
        } else if (warp == 1 && jf >= 0) {
            const float sk = orc_head_rms_scale(kf, hd, r.eps);
            if (lane == 0) red[1] = sk;
        }
        __syncthreads();
        const float sq = red[0], sk = jf >= 0 ? red[1] : 0.0f;
        for (int32_t d = threadIdx.x; d < hd; d += ATTN_THREADS) {
            qs[d] = orc_head_norm_value(r.q_norm[d], qs[d], sq);
            if (jf >= 0) kf[d] = orc_head_norm_value(r.k_norm[d], kf[d], sk);
        }
        __syncthreads();
    }
    const int32_t half = r.n_rot / 2, pr = (int32_t)threadIdx.x;
    if (pr < half) {
        int32_t i0, i1;
        rope_rotate(qs, pr, half, r.neox, sn, cs, &i0, &i1);
        if (jf >= 0) rope_rotate(kf, pr, half, r.neox, sn, cs, &i0, &i1);
    }
    __syncthreads(); /* kf rotated (qs: the caller's barrier) */
    if (jf < 0) return;
    T *ks = reinterpret_cast<T *>(slots + (size_t)jf * ATTN_STAGE_SLOT);
    for (int32_t d = threadIdx.x; d < hd; d += ATTN_THREADS) {
        const T kv = to_elem(kf[d], (const T *)nullptr);
        ks[d] = kv;
        if (store) kc_row[d] = kv;
    }
    for (int32_t d = threadIdx.x; d < hdv; d += ATTN_THREADS) {
        const T vv = to_elem(r.v[(int64_t)g * hdv + d], (const T *)nullptr);
        vt[(int64_t)jf * hdv + d] = vv;
        if (store) vc_row[d] = vv;
    }
}

template <typename T>
__global__ void __launch_bounds__(ATTN_THREADS)
orc_attention_kernel(const float *q, int64_t q_stride, const T *kc, const T *vc, int64_t k_stride, int64_t v_stride,
                     float *out, int64_t out_stride, float *part, const int32_t *pos, const int32_t *kv_base,
                     int32_t n_head, int32_t n_head_kv, int32_t hd, int32_t hdv, float scale, float softcap,
                     int32_t window, const float *sinks, int32_t split_keys, unsigned *counts,
                     int32_t staged, const int32_t *kv_row, int32_t prefetch, orc_attn_rope rope) {
    ORC_EXTERN_SHARED(float, smem);
    float *qs = smem;                  /* [hd] */
    float *sc = qs + hd;               /* [ATTN_TILE] */
    float *accs = sc + ATTN_TILE;      /* [ATTN_WARPS][hdv] */
    uint8_t *slot = staged ? reinterpret_cast<uint8_t *>(smem) + attn_stage_offset(hd, hdv) + threadIdx.x * ATTN_STAGE_SLOT
                           : nullptr; /* this thread's key-row slot (dot_row_staged) */
    ORC_SHARED_ARRAY(float, red, ATTN_WARPS);

    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int64_t row = blockIdx.x;
    const int64_t t = row / n_head;
    const int32_t h = (int32_t)(row % n_head);
    const int32_t g = h / (n_head / n_head_kv);
    /* pos is a step input, copied in before the step's first kernel: complete before any of
     * them runs, so it may be read before orc_pdl_wait. */
    const int64_t p = pos[t];
    const int64_t lo = (window > 0 && p - window + 1 > 0) ? p - window + 1 : 0;
    const bool split_mode = part != NULL;
    const int32_t n_split = gridDim.y, split = blockIdx.y;
    /* Splits holding none of this query's keys (a launch sized for more keys: a graph recorded
     * for the whole cache) leave at once, without waiting for the previous kernel; the row's
     * merge waits for the others only. */
    const int32_t n_used = split_mode ? (int32_t)((p + 1 - lo + split_keys - 1) / split_keys) : 1;
    if (split_mode && split >= n_used) return;
    orc_pdl_trigger(); /* launched as a dependent: the output projection's weights load meanwhile */
    kc += (int64_t)kv_base[t] * k_stride; /* kv_base, like pos, is a step input */
    vc += (int64_t)kv_base[t] * v_stride;
    /* Split mode: fixed chunks from lo; else all keys. */
    const int64_t kb = split_mode ? lo + (int64_t)split * split_keys : lo;
    const int64_t kend = split_mode ? kb + split_keys : p + 1;
    const int64_t ke = kend < p + 1 ? kend : p + 1;

    /* Prefetch (split mode, attn_can_prefetch): thread j < tn copies key kb + j's K row into its
     * slot, and the block the split's V rows into the slots past split_keys (vt), all by cp.async.
     * Rows this step writes (the batch's kv_row: this layer's KV store, the kernel before) are
     * copied after the wait; every other row was written by an earlier step, complete before this
     * step's inputs were copied in, so it is fetched before the wait, while the previous kernels
     * run. The products then read the slots and vt: the same values in the same order, the same
     * bits as the staged path. */
    prefetch = prefetch && split_mode && kv_row;
    const int32_t tn_pf = prefetch ? (int32_t)(ke - kb) : 0; /* <= split_keys <= 32 */
    constexpr int EL = 16 / (int)sizeof(T);
    const int32_t kwords = hd / EL, vwords = hdv / EL;
    T *vt = prefetch ? reinterpret_cast<T *>(reinterpret_cast<uint8_t *>(smem) + attn_stage_offset(hd, hdv) +
                                             (size_t)split_keys * ATTN_STAGE_SLOT)
                     : nullptr;
    uint32_t fresh = 0; /* bit j: key kb + j's row is written this step */
    for (int64_t i = 0; i < (int64_t)gridDim.x / n_head && prefetch; i++) {
        const int64_t r = (int64_t)kv_row[i] - kv_base[t] - kb;
        if (r >= 0 && r < tn_pf) fresh |= 1u << r;
    }
    /* The fused rope (attention_rope.h: with the prefetch, one query): the rows this step writes
     * are built from its k and v, not fetched; the angles now, while the previous kernel runs. */
    const bool fuse = prefetch && rope.k != nullptr;
    double rsn = 0.0, rcs = 0.0;
    if (fuse && (int32_t)threadIdx.x < rope.n_rot / 2)
        rope_angle((int32_t)threadIdx.x, (int32_t)p, rope.freq_scale, rope.mscale, rope.inv_freq, &rsn, &rcs);
    for (int pass = 0; pass < 2 && prefetch; pass++) { /* 0: before the wait, 1: after it */
        if (pass == 1) orc_pdl_wait();
        if (pass == 1 && fuse) break;
        const int32_t j = threadIdx.x;
        if (j < tn_pf && (int)(fresh >> j & 1u) == pass)
            for (int32_t c = 0; c < kwords; c++)
                orc_cp16(slot + 16 * c, kc + (kb + j) * k_stride + (int64_t)g * hd + (int64_t)c * EL, 16u);
        for (int32_t i = threadIdx.x; i < tn_pf * vwords; i += ATTN_THREADS) {
            const int32_t jv = i / vwords, c = i % vwords;
            if ((int)(fresh >> jv & 1u) == pass)
                orc_cp16(vt + (int64_t)jv * hdv + (int64_t)c * EL,
                         vc + (kb + jv) * v_stride + (int64_t)g * hdv + (int64_t)c * EL, 16u);
        }
        orc_cp_commit();
    }
    if (!prefetch) orc_pdl_wait();

    for (int32_t d = threadIdx.x; d < hd; d += blockDim.x) qs[d] = q[t * q_stride + (int64_t)h * hd + d];
    if (fuse) {
        const int32_t jf = fresh ? __ffs((int)fresh) - 1 : -1; /* one query: one row written */
        const int64_t jrow = kb + (jf >= 0 ? jf : 0);
        attn_fused_rope<T>(rope, qs, sc, red, hd, hdv, g, jf,
                           reinterpret_cast<uint8_t *>(smem) + attn_stage_offset(hd, hdv), vt,
                           h % (n_head / n_head_kv) == 0, const_cast<T *>(kc + jrow * k_stride + (int64_t)g * hd),
                           const_cast<T *>(vc + jrow * v_stride + (int64_t)g * hdv), rsn, rcs);
    }
    if (prefetch) orc_cp_wait<0>(); /* before the barrier: vt is read by every warp */
    __syncthreads();

    float acc[ATTN_MAX_DV / 32];
#pragma unroll
    for (int r = 0; r < ATTN_MAX_DV / 32; r++) acc[r] = 0.0f;
    float m = -FLT_MAX, l = 0.0f;

    for (int64_t k0 = kb; k0 < ke; k0 += ATTN_TILE) {
        const int32_t tn = (int32_t)(ke - k0 < ATTN_TILE ? ke - k0 : ATTN_TILE);
        float wmax = -FLT_MAX;
        for (int32_t j = threadIdx.x; j < tn; j += ATTN_THREADS) {
            const T *kr = kc + (k0 + j) * k_stride + (int64_t)g * hd;
            float s;
            if (prefetch) {
                float s4[4] = {0.0f, 0.0f, 0.0f, 0.0f};
                dot_words<T>(qs, slot, 0, kwords, s4);
                s = ((s4[0] + s4[1]) + (s4[2] + s4[3])) * scale;
            } else {
                s = (slot ? dot_row_staged(qs, kr, hd, slot) : dot_row(qs, kr, hd)) * scale;
            }
            if (softcap > 0.0f) s = softcap * tanhf(s / softcap);
            sc[j] = s;
            wmax = fmaxf(wmax, s);
        }
        wmax = warp_max(wmax);
        const float m_new = fmaxf(m, block_reduce_warps<true>(wmax, red)); /* its barriers publish sc[] */
        const float corr = expf(m - m_new);
#pragma unroll
        for (int r = 0; r < ATTN_MAX_DV / 32; r++) acc[r] *= corr;
        float wsum = 0.0f;
#pragma unroll 4
        for (int32_t j = warp; j < tn; j += ATTN_WARPS) {
            const float e = expf(sc[j] - m_new);
            wsum += e;
            const T *vr = prefetch ? vt + (int64_t)j * hdv : vc + (k0 + j) * v_stride + (int64_t)g * hdv;
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
    /* Unsplit, or a query whose keys fit in one split: this block writes the output, the sink
     * joining the softmax's denominator here (else in the merge). For one split this is the
     * merge's arithmetic on its one partial (M = max(m, sink), L = l e^(m - M) + e^(sink - M)),
     * so the bits do not depend on which of the two wrote them; it skips the partials' round
     * trip and the count (the first 32 steps of a decode, and every step of a short one). */
    const bool direct = !split_mode || n_used == 1;
    float out_scale = 1.0f, denom = l;
    if (direct && sinks) {
        const float sink = sinks[h], mf = fmaxf(m, sink);
        out_scale = expf(m - mf);
        denom = l * out_scale + expf(sink - mf);
    }
    (void)n_split;
    for (int32_t d = threadIdx.x; d < hdv; d += blockDim.x) {
        float a = 0.0f;
#pragma unroll
        for (int w = 0; w < ATTN_WARPS; w++) a += accs[w * hdv + d];
        if (direct) {
            out[t * out_stride + (int64_t)h * hdv + d] = (a * out_scale) / denom;
        } else {
            float *pp = part + (row * n_split + split) * (int64_t)(hdv + 2);
            pp[2 + d] = a;
            if (d == 0) {
                pp[0] = ke > kb ? m : -FLT_MAX;
                pp[1] = ke > kb ? l : 0.0f;
            }
        }
    }
    if (direct) return;
    /* The row's last split to finish merges them all (the same merge whichever split it is). */
    if (!orc_block_is_last(counts + row, (unsigned)n_used)) return;
    attn_combine(part + row * n_split * (int64_t)(hdv + 2), n_used, hdv, out + t * out_stride + (int64_t)h * hdv,
                 sinks ? sinks + h : nullptr);
}

#endif /* ORC_ATTENTION_KERNEL_CUH */
