/* gemv_decode.cuh - the GEMV kernels' weight decoders: for each ggml type, how one
 * lane turns its "lane unit" (LU: E consecutive-in-storage elements of one block) into
 * float32 weights, four columns at a time.
 *
 * Contract of a decoder struct Q (all members static):
 *   BS, TS      elements and bytes of one block (F16/BF16/F32: a pseudo-block of E elements)
 *   E, LPB, G   elements per LU, LUs per block (BS / E), groups of 4 columns per LU (E / 4)
 *   A           the alignment every block start is guaranteed to have (gcd(TS, 16); the
 *               kernels keep a block's address modulo 16 when they stage it in shared memory)
 *   col(p, g)   the first of the 4 consecutive columns (within the block) of group g of LU p
 *   st          the LU's decoded state (raw quant words and float scales, in registers)
 *   prepare(st, b, p)   read LU p of the block at b
 *   group(st, g)        the 4 weights of group g (g a compile-time constant after unrolling)
 * Optional, the factored forms (FACT, NSUB, FMIN, group_q, sub_scale, sub_min: see Q4_K) and,
 * on top of them, the integer form (QI: the int16-x GEMV of gemv_kernel.cuh): group_qi(st, g)
 * gives group g's 4 raw quants as bytes (unsigned if QI_U8, else signed) such that
 * sum(w x) over sub-block k = sub_scale(k) * sum((q - QI_OFF) x) - sub_min(k) * sum(x), and
 * groups 4m..4m+3 of an LU are 16 consecutive columns inside one sub-block.
 *
 * Values: exactly those of quant_decode.h (orc.dequantize), element by element. Where
 * quant_decode.h computes fl(fl(s*q) op c) and s*q is exact in float32 (the scale has at
 * most 17 significant bits and q at most 5), one fused multiply-add gives the same single
 * rounding; the comments say so where it is used. Every other operation is the reference's
 * own, in its order, through ORC_FMUL/ORC_FADD/ORC_FSUB (never contracted). Only
 * non-finite scales may differ (an inf scale can give NaN where the reference gives inf).
 * tests/c/test_gemv_decode.cpp checks every group of every LU of random and edge blocks
 * against quant_decode.h on the host: this header is C++ that g++ compiles too.
 *
 * Cost model (instructions per weight, the budget at the H200's bandwidth is ~4.4 for
 * 4.5-bit types): a quant byte becomes a float with one PRMT (0x4B0000xx is 2^23 + xx) and
 * one FADD; one FMUL or FFMA applies the scale; the dot product is one more FFMA.
 */
#ifndef ORC_GEMV_DECODE_CUH
#define ORC_GEMV_DECODE_CUH

#include <math.h>   /* fmaf (host) */
#include <stdint.h>

#include "dequant/dequant_fast.cuh" /* orc_dqf_perm/shr64/ld32/ld16/h2f/bytef, orc_dqf_bit4, orc_dqf_iq4/mxfp4_levels */

#ifdef __CUDACC__
#define ORC_GVD static __device__ __forceinline__
#define ORC_GV_FMA(a, b, c) __fmaf_rn((a), (b), (c))
#else
#define ORC_GVD static inline
#define ORC_GV_FMA(a, b, c) fmaf((a), (b), (c)) /* C99 fmaf: one rounding, as __fmaf_rn */
#endif

struct orc_gv_f4 {
    float x, y, z, w;
};

/* ORC_GV_FLAG(trait, MEMBER): trait<Q>::value is Q::MEMBER != 0 where the decoder declares MEMBER,
 * false where it does not (the optional parts of the contract above: BIG, FACT, FMIN, FACT_INT, QI). */
#define ORC_GV_FLAG(trait, MEMBER)                                                  \
    template <class Q>                                                              \
    struct trait {                                                                  \
        template <class T>                                                          \
        static constexpr bool get(decltype(T::MEMBER) *) { return T::MEMBER != 0; } \
        template <class T>                                                          \
        static constexpr bool get(...) { return false; }                            \
        static constexpr bool value = get<Q>(nullptr);                              \
    };

/* Four 32-bit words at p (4 * N bytes), p aligned to at least A. A >= 4 reads them
 * directly (16 or 8 bytes at a time where A allows); A < 4 reads the aligned words
 * around them (up to 3 bytes before p and 4 after the last) and funnel-shifts. */
template <int N, int A>
ORC_GVD void orc_gv_words(const uint8_t *p, uint32_t *w) {
    if (A >= 16 && N % 4 == 0) {
#ifdef __CUDACC__
#pragma unroll
        for (int i = 0; i < N / 4; i++) {
            const uint4 v = reinterpret_cast<const uint4 *>(p)[i];
            w[4 * i] = v.x, w[4 * i + 1] = v.y, w[4 * i + 2] = v.z, w[4 * i + 3] = v.w;
        }
#else
        ORC_DQF_ALIGN_CHECK(p, 16);
        for (int i = 0; i < N; i++) w[i] = orc_dqf_ld32(p + 4 * i);
#endif
    } else if (A >= 8 && N % 2 == 0) {
#ifdef __CUDACC__
#pragma unroll
        for (int i = 0; i < N / 2; i++) {
            const uint2 v = reinterpret_cast<const uint2 *>(p)[i];
            w[2 * i] = v.x, w[2 * i + 1] = v.y;
        }
#else
        ORC_DQF_ALIGN_CHECK(p, 8);
        for (int i = 0; i < N; i++) w[i] = orc_dqf_ld32(p + 4 * i);
#endif
    } else if (A >= 4) {
        ORC_QD_UNROLL for (int i = 0; i < N; i++) w[i] = orc_dqf_ld32(p + 4 * i);
    } else {
        const uint32_t r = (uint32_t)((uintptr_t)p & 3u);
        const uint8_t *a = p - r;
        uint32_t t[N + 1];
        ORC_QD_UNROLL for (int i = 0; i <= N; i++) t[i] = orc_dqf_ld32(a + 4 * i);
        ORC_QD_UNROLL for (int i = 0; i < N; i++) w[i] = orc_dqf_shr64(t[i], t[i + 1], 8u * r);
    }
}

/* One byte at p. */
ORC_GVD uint32_t orc_gv_ld8(const uint8_t *p) { return p[0]; }

/* Byte k of x as a float (exact): 2^23 + byte, minus 2^23. */
ORC_GVD float orc_gv_u8f(uint32_t x, uint32_t k) { return orc_dqf_bytef(x, k, ORC_DQF_2P23); }

/* y = d * (byte k of w - bias) for the 4 bytes of w (bias passed as 2^23 + bias). */
ORC_GVD orc_gv_f4 orc_gv_mul4(float d, uint32_t w, float bias_2p23) {
    return {ORC_FMUL(d, orc_dqf_bytef(w, 0, bias_2p23)), ORC_FMUL(d, orc_dqf_bytef(w, 1, bias_2p23)),
            ORC_FMUL(d, orc_dqf_bytef(w, 2, bias_2p23)), ORC_FMUL(d, orc_dqf_bytef(w, 3, bias_2p23))};
}

/* y = fl(d * byte + c) in one rounding: exact only where d * byte is exact (the callers say why). */
ORC_GVD orc_gv_f4 orc_gv_fma4(float d, uint32_t w, float c) {
    return {ORC_GV_FMA(d, orc_gv_u8f(w, 0), c), ORC_GV_FMA(d, orc_gv_u8f(w, 1), c),
            ORC_GV_FMA(d, orc_gv_u8f(w, 2), c), ORC_GV_FMA(d, orc_gv_u8f(w, 3), c)};
}

/* ---- legacy 32-element types: one block per LU -------------------------------------- */

/* The factored and integer forms of the one-scale types whose quants are small offset-binary
 * integers (Q4_0, Q5_0: q + 8 / q + 16, the nibbles; IQ4_NL, MXFP4: table value + 128):
 * T::levels(s, g) gives group g's as bytes (value + OFF) and st::d the block's scale. For the
 * integer form only (FACT_INT: their float form keeps the per-weight product): sum(w x) =
 * d * sum(value x), the offset coming off x's sum. */
template <class T, int OFF = 128>
struct orc_gv_levels_forms {
    enum { FACT = 1, NSUB = 1, FMIN = 0, FACT_INT = 1, QI = 1, QI_U8 = 1, QI_OFF = OFF };
    template <class S>
    ORC_GVD orc_gv_f4 group_q(const S &s, int g) {
        const uint32_t w = T::levels(s, g);
        const float b = ORC_DQF_2P23 + (float)OFF;
        return {orc_dqf_bytef(w, 0, b), orc_dqf_bytef(w, 1, b), orc_dqf_bytef(w, 2, b), orc_dqf_bytef(w, 3, b)};
    }
    template <class S>
    ORC_GVD float sub_scale(const S &s, int) { return s.d; }
    template <class S>
    ORC_GVD float sub_min(const S &, int) { return 0.0f; }
    template <class S>
    ORC_GVD uint32_t group_qi(const S &s, int g) { return T::levels(s, g); }
};

/* Q4_0, 18 bytes: d:f16 @0, qs[16] @2. Group g < 4: low nibbles of qs word g (elements
 * 4g..4g+3); g >= 4: high nibbles of word g-4 (elements 16 + 4(g-4) = 4g..). */
struct orc_gv_Q4_0 : orc_gv_levels_forms<orc_gv_Q4_0, 8> {
    enum { BS = 32, TS = 18, E = 32, LPB = 1, G = 8, A = 2 };
    ORC_GVD int col(int, int g) { return 4 * g; }
    struct st {
        uint32_t q[4];
        float d, d16; /* d16 = d / 16, exact */
    };
    ORC_GVD void prepare(st &s, const uint8_t *b, int) {
        s.d = orc_dqf_h2f(orc_dqf_ld16(b));
        s.d16 = ORC_FMUL(s.d, 0.0625f);
        orc_gv_words<4, 2>(b + 2, s.q);
    }
    /* d * (q - 8); a high nibble stays in place as 16q: (d / 16) * (16q - 128) is the same
     * real product, so the same rounding, without a shift. */
    ORC_GVD orc_gv_f4 group(const st &s, int g) {
        if (g < 4) return orc_gv_mul4(s.d, s.q[g & 3] & 0x0F0F0F0Fu, ORC_DQF_2P23 + 8.0f);
        return orc_gv_mul4(s.d16, s.q[g & 3] & 0xF0F0F0F0u, ORC_DQF_2P23 + 128.0f);
    }
    /* group g's nibbles as bytes (q + 8), for the integer form */
    ORC_GVD uint32_t levels(const st &s, int g) { return (g < 4 ? s.q[g & 3] : s.q[g & 3] >> 4) & 0x0F0F0F0Fu; }
};

/* Q4_1, 20 bytes: d:f16 @0, m:f16 @2, qs[16] @4. value = fl(fl(d * q) + m); d * q is
 * exact (11 + 4 significant bits), so fl(d * q + m) in one FMA is the same. */
struct orc_gv_Q4_1 {
    enum { BS = 32, TS = 20, E = 32, LPB = 1, G = 8, A = 4 };
    ORC_GVD int col(int, int g) { return 4 * g; }
    struct st {
        uint32_t q[4];
        float d, d16, m;
    };
    ORC_GVD void prepare(st &s, const uint8_t *b, int) {
        const uint32_t dm = orc_dqf_ld32(b);
        s.d = orc_dqf_h2f(dm & 0xFFFFu);
        s.d16 = ORC_FMUL(s.d, 0.0625f);
        s.m = orc_dqf_h2f(dm >> 16);
        orc_gv_words<4, 4>(b + 4, s.q);
    }
    ORC_GVD orc_gv_f4 group(const st &s, int g) { /* high nibbles in place, as Q4_0 */
        if (g < 4) return orc_gv_fma4(s.d, s.q[g & 3] & 0x0F0F0F0Fu, s.m);
        return orc_gv_fma4(s.d16, s.q[g & 3] & 0xF0F0F0F0u, s.m);
    }
};

/* Q5_0, 22 bytes: d:f16 @0, qh:u32 @2, qs[16] @6. Element e: nibble as Q4_0, bit 4 =
 * bit e of qh; value = d * (q - 16). qh and qs are contiguous: read as 5 words at b+2. */
struct orc_gv_Q5_0 : orc_gv_levels_forms<orc_gv_Q5_0, 16> {
    enum { BS = 32, TS = 22, E = 32, LPB = 1, G = 8, A = 2 };
    ORC_GVD int col(int, int g) { return 4 * g; }
    struct st {
        uint32_t w[5]; /* qh, qs words 0..3 */
        float d;
    };
    ORC_GVD void prepare(st &s, const uint8_t *b, int) {
        s.d = orc_dqf_h2f(orc_dqf_ld16(b));
        orc_gv_words<5, 2>(b + 2, s.w);
    }
    ORC_GVD orc_gv_f4 group(const st &s, int g) { return orc_gv_mul4(s.d, levels(s, g), ORC_DQF_2P23 + 16.0f); }
    /* group g's 5-bit quants as bytes (q + 16) */
    ORC_GVD uint32_t levels(const st &s, int g) {
        const uint32_t nib = (g < 4 ? s.w[1 + (g & 3)] : s.w[1 + (g & 3)] >> 4) & 0x0F0F0F0Fu;
        return nib | orc_dqf_bit4(s.w[0] >> (4 * g));
    }
};

/* Q5_1, 24 bytes: d:f16 @0, m:f16 @2, qh:u32 @4, qs[16] @8. value = fl(fl(d * q) + m),
 * d * q exact (11 + 5 bits): one FMA. */
struct orc_gv_Q5_1 {
    enum { BS = 32, TS = 24, E = 32, LPB = 1, G = 8, A = 8 };
    ORC_GVD int col(int, int g) { return 4 * g; }
    struct st {
        uint32_t qh, q[4];
        float d, m;
    };
    ORC_GVD void prepare(st &s, const uint8_t *b, int) {
        uint32_t h[2];
        orc_gv_words<2, 8>(b, h);
        s.d = orc_dqf_h2f(h[0] & 0xFFFFu);
        s.m = orc_dqf_h2f(h[0] >> 16);
        s.qh = h[1];
        orc_gv_words<4, 8>(b + 8, s.q);
    }
    ORC_GVD orc_gv_f4 group(const st &s, int g) {
        const uint32_t nib = (g < 4 ? s.q[g & 3] : s.q[g & 3] >> 4) & 0x0F0F0F0Fu;
        return orc_gv_fma4(s.d, nib | orc_dqf_bit4(s.qh >> (4 * g)), s.m);
    }
};

/* Q8_0, 34 bytes: d:f16 @0, qs:int8[32] @2. value = q * d; int8 -> float through the
 * offset-binary byte (q ^ 0x80 = q + 128). */
struct orc_gv_Q8_0 {
    enum { BS = 32, TS = 34, E = 32, LPB = 1, G = 8, A = 2 };
    ORC_GVD int col(int, int g) { return 4 * g; }
    struct st {
        uint32_t q[8];
        float d;
    };
    ORC_GVD void prepare(st &s, const uint8_t *b, int) {
        s.d = orc_dqf_h2f(orc_dqf_ld16(b));
        orc_gv_words<8, 2>(b + 2, s.q);
    }
    ORC_GVD orc_gv_f4 group(const st &s, int g) {
        return orc_gv_mul4(s.d, s.q[g] ^ 0x80808080u, ORC_DQF_2P23 + 128.0f);
    }
    /* Factored (see Q4_K): one sub-block, sum(w x) = d * sum(q x). */
    enum { FACT = 1, NSUB = 1, FMIN = 0 };
    ORC_GVD orc_gv_f4 group_q(const st &s, int g) {
        const uint32_t w = s.q[g] ^ 0x80808080u;
        const float b = ORC_DQF_2P23 + 128.0f;
        return {orc_dqf_bytef(w, 0, b), orc_dqf_bytef(w, 1, b), orc_dqf_bytef(w, 2, b), orc_dqf_bytef(w, 3, b)};
    }
    ORC_GVD float sub_scale(const st &s, int) { return s.d; }
    ORC_GVD float sub_min(const st &, int) { return 0.0f; }
    enum { QI = 1, QI_U8 = 0, QI_OFF = 0 }; /* the int8 quants as they are */
    ORC_GVD uint32_t group_qi(const st &s, int g) { return s.q[g]; }
};

/* IQ4_NL, 18 bytes: as Q4_0, each nibble an index into the non-linear levels; d * level. */
struct orc_gv_IQ4_NL : orc_gv_levels_forms<orc_gv_IQ4_NL> {
    enum { BS = 32, TS = 18, E = 32, LPB = 1, G = 8, A = 2 };
    ORC_GVD int col(int, int g) { return 4 * g; }
    struct st {
        uint32_t q[4];
        float d;
    };
    ORC_GVD void prepare(st &s, const uint8_t *b, int) {
        s.d = orc_dqf_h2f(orc_dqf_ld16(b));
        orc_gv_words<4, 2>(b + 2, s.q);
    }
    ORC_GVD orc_gv_f4 group(const st &s, int g) { return orc_gv_mul4(s.d, levels(s, g), ORC_DQF_2P23 + 128.0f); }
    /* group g's levels as offset-binary bytes (level + 128) */
    ORC_GVD uint32_t levels(const st &s, int g) {
        return orc_dqf_iq4_levels((g < 4 ? s.q[g & 3] : s.q[g & 3] >> 4) & 0x0F0F0F0Fu);
    }
};

/* MXFP4, 17 bytes: e:E8M0 @0, qs[16] @1 (any alignment). Nibbles as Q4_0, each an index
 * into the doubled E2M1 table; value = d * kvalue with d = orc_qd_e8m0_half(e). */
struct orc_gv_MXFP4 : orc_gv_levels_forms<orc_gv_MXFP4> {
    enum { BS = 32, TS = 17, E = 32, LPB = 1, G = 8, A = 1 };
    ORC_GVD int col(int, int g) { return 4 * g; }
    struct st {
        uint32_t q[4];
        float d;
    };
    ORC_GVD void prepare(st &s, const uint8_t *b, int) {
        s.d = orc_qd_e8m0_half(orc_gv_ld8(b));
        orc_gv_words<4, 1>(b + 1, s.q);
    }
    ORC_GVD orc_gv_f4 group(const st &s, int g) { return orc_gv_mul4(s.d, levels(s, g), ORC_DQF_2P23 + 128.0f); }
    /* group g's doubled E2M1 values as offset-binary bytes (value + 128) */
    ORC_GVD uint32_t levels(const st &s, int g) {
        const uint32_t w = (g < 4 ? s.q[g & 3] : s.q[g & 3] >> 4) & 0x0F0F0F0Fu;
        return orc_dqf_mxfp4_levels(w);
    }
};

/* ---- k-quants and IQ4_XS: four LUs of 64 elements per 256-element block ------------- */

/* Q4_K, 144 bytes: d @0, dmin @2, scales[12] @4, qs[128] @16. LU p = sub-blocks 2p, 2p+1
 * (columns 64p..64p+63): qs bytes 32p..32p+31, low nibbles sub-block 2p, high 2p+1.
 * value = fl(fl(ds * q) - dm) with ds = fl(d * sc): d * sc has at most 11 + 6 significant
 * bits and ds * q 17 + 4, both exact, so one FMA ds * q - dm rounds the same. */
struct orc_gv_Q4_K {
    enum { BS = 256, TS = 144, E = 64, LPB = 4, G = 16, A = 16 };
    ORC_GVD int col(int p, int g) { return 64 * p + 4 * g; }
    struct st {
        uint32_t q[8];
        float ds0, dm0, ds1, dm1; /* ds1 / 16 (exact): the high nibbles stay in place as 16q */
    };
    /* Scale and min words of orc_dqf_scale_min_k4 for sub-blocks 4h..4h+3 (h = p >= 2). */
    ORC_GVD void scale_words(const uint32_t *h, int p, uint32_t *scw, uint32_t *mw) {
        const bool first = p < 2;
        *scw = first ? h[1] & 0x3F3F3F3Fu : (h[3] & 0x0F0F0F0Fu) | ((h[1] >> 2) & 0x30303030u);
        *mw = first ? h[2] & 0x3F3F3F3Fu : ((h[3] >> 4) & 0x0F0F0F0Fu) | ((h[2] >> 2) & 0x30303030u);
    }
    ORC_GVD void prepare(st &s, const uint8_t *b, int p) {
        uint32_t h[4], scw, mw;
        orc_gv_words<4, 16>(b, h);
        orc_gv_words<8, 16>(b + 16 + 32 * p, s.q);
        scale_words(h, p, &scw, &mw);
        const uint32_t k = 2u * ((uint32_t)p & 1u);
        const float d = orc_dqf_h2f(h[0] & 0xFFFFu), dmin = orc_dqf_h2f(h[0] >> 16);
        s.ds0 = ORC_FMUL(d, orc_gv_u8f(scw, k));
        s.dm0 = ORC_FMUL(dmin, orc_gv_u8f(mw, k));
        s.ds1 = ORC_FMUL(ORC_FMUL(d, orc_gv_u8f(scw, k + 1)), 0.0625f);
        s.dm1 = ORC_FMUL(dmin, orc_gv_u8f(mw, k + 1));
    }
    /* (ds / 16) * 16q = ds * q exactly, so the FMA rounds as for the low nibbles. */
    ORC_GVD orc_gv_f4 group(const st &s, int g) {
        if (g < 8) return orc_gv_fma4(s.ds0, s.q[g & 7] & 0x0F0F0F0Fu, -s.dm0);
        return orc_gv_fma4(s.ds1, s.q[g & 7] & 0xF0F0F0F0u, -s.dm1);
    }
    /* The factored form (FACT: the GEMV at one token; NSUB sub-blocks of G / NSUB groups per LU,
     * FMIN: with a min): groups 0..7 are sub-block 0 of the LU, 8..15 sub-block 1; group_q gives
     * the raw quants (16q for the high nibbles, matching sub_scale(1) = ds / 16), so that
     * sum(w x) over a sub-block = sub_scale * sum(q x) - sub_min * sum(x). */
    enum { FACT = 1, NSUB = 2, FMIN = 1 };
    ORC_GVD orc_gv_f4 group_q(const st &s, int g) {
        const uint32_t w = g < 8 ? s.q[g & 7] & 0x0F0F0F0Fu : s.q[g & 7] & 0xF0F0F0F0u;
        return {orc_gv_u8f(w, 0), orc_gv_u8f(w, 1), orc_gv_u8f(w, 2), orc_gv_u8f(w, 3)};
    }
    ORC_GVD float sub_scale(const st &s, int k) { return k ? s.ds1 : s.ds0; }
    ORC_GVD float sub_min(const st &s, int k) { return k ? s.dm1 : s.dm0; }
    enum { QI = 1, QI_U8 = 1, QI_OFF = 0 }; /* nibbles as bytes; the high ones as 16q, as group_q */
    ORC_GVD uint32_t group_qi(const st &s, int g) { return g < 8 ? s.q[g & 7] & 0x0F0F0F0Fu : s.q[g & 7] & 0xF0F0F0F0u; }
};

/* Q5_K, 176 bytes: header as Q4_K, qh[32] @16, qs[128] @48. The 5th bit of element i of
 * sub-block s is bit s of qh[i]; ds * q has at most 17 + 5 bits: exact, one FMA as Q4_K. */
struct orc_gv_Q5_K {
    enum { BIG = 1 }; /* decoder state too large for 128 registers x 4 rows */
    enum { BS = 256, TS = 176, E = 64, LPB = 4, G = 16, A = 16 };
    ORC_GVD int col(int p, int g) { return 64 * p + 4 * g; }
    struct st {
        uint32_t q[8], h[8]; /* h: qh >> 2p (bit 0: sub-block 2p, bit 1: 2p + 1) */
        float ds0, dm0, ds1, dm1;
    };
    ORC_GVD void prepare(st &s, const uint8_t *b, int p) {
        uint32_t h[4], scw, mw;
        orc_gv_words<4, 16>(b, h);
        orc_gv_words<8, 16>(b + 16, s.h);
        orc_gv_words<8, 16>(b + 48 + 32 * p, s.q);
        ORC_QD_UNROLL for (int k = 0; k < 8; k++) s.h[k] >>= 2 * p;
        orc_gv_Q4_K::scale_words(h, p, &scw, &mw);
        const uint32_t k = 2u * ((uint32_t)p & 1u);
        const float d = orc_dqf_h2f(h[0] & 0xFFFFu), dmin = orc_dqf_h2f(h[0] >> 16);
        s.ds0 = ORC_FMUL(d, orc_gv_u8f(scw, k));
        s.dm0 = ORC_FMUL(dmin, orc_gv_u8f(mw, k));
        s.ds1 = ORC_FMUL(d, orc_gv_u8f(scw, k + 1));
        s.dm1 = ORC_FMUL(dmin, orc_gv_u8f(mw, k + 1));
    }
    ORC_GVD orc_gv_f4 group(const st &s, int g) {
        const uint32_t k = g & 7;
        const uint32_t nib = (g < 8 ? s.q[k] : s.q[k] >> 4) & 0x0F0F0F0Fu;
        const uint32_t hb = (g < 8 ? s.h[k] << 4 : s.h[k] << 3) & 0x10101010u;
        return g < 8 ? orc_gv_fma4(s.ds0, nib | hb, -s.dm0) : orc_gv_fma4(s.ds1, nib | hb, -s.dm1);
    }
};

/* Column of group g of LU p for the types whose bytes interleave 32-column groups
 * (Q2_K, Q3_K, Q6_K): LU p = half h = p/2 of the block, bytes i0 = 16(p%2)..i0+15 of its
 * quant rows; group g = 4q + k: columns 128h + i0 + 32q + 4k .. +3. */
ORC_GVD int orc_gv_col_i32(int p, int g) { return 128 * (p >> 1) + 16 * (p & 1) + 32 * (g >> 2) + 4 * (g & 3); }

/* Q6_K, 210 bytes: ql[128] @0, qh[64] @128, scales:int8[16] @192, d:f16 @208. Element
 * j = 128h + r: low 4 bits (ql[64h + r%64] >> 4(r/64)) & 0xF, high 2 bits
 * (qh[32h + r%32] >> 2(r/32)) & 3, q = (low | high << 4) - 32, value = fl(ds * q) with
 * ds = fl(d * scales[j/16]). LU p reads ql 64h + i0.. (q = 0, 2), ql 64h + 32 + i0..
 * (q = 1, 3), qh 32h + i0.. and scales 8h + i0/16 + 2q. Every field is at a multiple of 4
 * from the block, so one funnel shift (b & 3) realigns them all. */
struct orc_gv_Q6_K {
    enum { BIG = 1 }; /* decoder state too large for 128 registers x 4 rows */
    enum { BS = 256, TS = 210, E = 64, LPB = 4, G = 16, A = 2 };
    ORC_GVD int col(int p, int g) { return orc_gv_col_i32(p, g); }
    struct st {
        uint32_t a[4], b[4], c[4];
        float ds[4];
    };
    ORC_GVD void prepare(st &s, const uint8_t *b, int p) {
        const int h = p >> 1, i0 = 16 * (p & 1);
        uint32_t sc[2];
        orc_gv_words<4, 2>(b + 64 * h + i0, s.a);
        orc_gv_words<4, 2>(b + 64 * h + 32 + i0, s.b);
        orc_gv_words<4, 2>(b + 128 + 32 * h + i0, s.c);
        orc_gv_words<2, 2>(b + 192 + 8 * h, sc);
        const float d = orc_dqf_h2f(orc_dqf_ld16(b + 208));
        const uint32_t k = (uint32_t)p & 1u;
        const float off = ORC_DQF_2P23 + 128.0f; /* int8 via its offset-binary byte */
        s.ds[0] = ORC_FMUL(d, orc_dqf_bytef(sc[0] ^ 0x80808080u, k, off));
        s.ds[1] = ORC_FMUL(d, orc_dqf_bytef(sc[0] ^ 0x80808080u, k + 2, off));
        s.ds[2] = ORC_FMUL(d, orc_dqf_bytef(sc[1] ^ 0x80808080u, k, off));
        s.ds[3] = ORC_FMUL(d, orc_dqf_bytef(sc[1] ^ 0x80808080u, k + 2, off));
    }
    ORC_GVD orc_gv_f4 group(const st &s, int g) {
        const int q = g >> 2, k = g & 3;
        const uint32_t l = (q & 1) ? s.b[k] : s.a[k];
        const uint32_t lo = ((q >> 1) ? l >> 4 : l) & 0x0F0F0F0Fu;
        const uint32_t c = s.c[k];
        const uint32_t hi = (q == 0 ? c << 4 : q == 1 ? c << 2 : q == 2 ? c : c >> 2) & 0x30303030u;
        return orc_gv_mul4(s.ds[q], lo | hi, ORC_DQF_2P23 + 32.0f);
    }
    /* Factored (see Q4_K): four sub-blocks of 16 elements, sum(w x) = ds[k] * sum((q - 32) x). */
    enum { FACT = 1, NSUB = 4, FMIN = 0 };
    ORC_GVD orc_gv_f4 group_q(const st &s, int g) {
        const int q = g >> 2, k = g & 3;
        const uint32_t l = (q & 1) ? s.b[k] : s.a[k];
        const uint32_t lo = ((q >> 1) ? l >> 4 : l) & 0x0F0F0F0Fu;
        const uint32_t c = s.c[k];
        const uint32_t w = lo | ((q == 0 ? c << 4 : q == 1 ? c << 2 : q == 2 ? c : c >> 2) & 0x30303030u);
        const float b = ORC_DQF_2P23 + 32.0f;
        return {orc_dqf_bytef(w, 0, b), orc_dqf_bytef(w, 1, b), orc_dqf_bytef(w, 2, b), orc_dqf_bytef(w, 3, b)};
    }
    ORC_GVD float sub_scale(const st &s, int k) { return s.ds[k]; }
    ORC_GVD float sub_min(const st &, int) { return 0.0f; }
    enum { QI = 1, QI_U8 = 1, QI_OFF = 32 }; /* q = 0..63 as bytes; the 32 comes off x's sum */
    ORC_GVD uint32_t group_qi(const st &s, int g) {
        const int q = g >> 2, k = g & 3;
        const uint32_t l = (q & 1) ? s.b[k] : s.a[k];
        const uint32_t lo = ((q >> 1) ? l >> 4 : l) & 0x0F0F0F0Fu;
        const uint32_t c = s.c[k];
        return lo | ((q == 0 ? c << 4 : q == 1 ? c << 2 : q == 2 ? c : c >> 2) & 0x30303030u);
    }
};

/* Q2_K, 84 bytes: scales[16] @0, qs[64] @16, d @80, dmin @82. Element j: crumb
 * (qs[32(j/128) + j%32] >> 2((j%128)/32)) & 3; sub-block j/16 has scale sc & 0xF and min
 * sc >> 4; value = fl(fl(dl * q) - ml), dl = fl(d * (sc & 0xF)) (at most 15 bits), dl * q
 * exact (17 bits): one FMA. */
struct orc_gv_Q2_K {
    enum { BS = 256, TS = 84, E = 64, LPB = 4, G = 16, A = 4 };
    ORC_GVD int col(int p, int g) { return orc_gv_col_i32(p, g); }
    struct st {
        uint32_t q[4];
        float dl[4], ml[4];
    };
    ORC_GVD void prepare(st &s, const uint8_t *b, int p) {
        const int h = p >> 1, i0 = 16 * (p & 1);
        uint32_t sc[2];
        orc_gv_words<4, 4>(b + 16 + 32 * h + i0, s.q);
        orc_gv_words<2, 4>(b + 8 * h, sc);
        const uint32_t dd = orc_dqf_ld32(b + 80);
        const float d = orc_dqf_h2f(dd & 0xFFFFu), dmin = orc_dqf_h2f(dd >> 16);
        const uint32_t k = (uint32_t)p & 1u;
        ORC_QD_UNROLL for (int q = 0; q < 4; q++) {
            const uint32_t w = sc[q >> 1], kk = k + 2u * (uint32_t)(q & 1);
            s.dl[q] = ORC_FMUL(d, orc_gv_u8f(w & 0x0F0F0F0Fu, kk));
            s.ml[q] = ORC_FMUL(dmin, orc_gv_u8f((w >> 4) & 0x0F0F0F0Fu, kk));
        }
    }
    ORC_GVD orc_gv_f4 group(const st &s, int g) {
        const int q = g >> 2;
        return orc_gv_fma4(s.dl[q], (s.q[g & 3] >> (2 * q)) & 0x03030303u, -s.ml[q]);
    }
};

/* Q3_K, 110 bytes: hmask[32] @0, qs[64] @32, scales[12] @96, d @108. Element j: low crumb
 * as Q2_K, high bit (hmask[j%32] >> (j/32)) & 1, q = (low | high << 2) - 4; 6-bit signed
 * scale of sub-block s = j/16 (quant_decode.h's packing); value = fl(dl * q) with
 * dl = fl(d * (scale - 32)). Fields at multiples of 4 from the block: one realignment. */
struct orc_gv_Q3_K {
    enum { BIG = 1 }; /* decoder state too large for 128 registers x 4 rows */
    enum { BS = 256, TS = 110, E = 64, LPB = 4, G = 16, A = 2 };
    ORC_GVD int col(int p, int g) { return orc_gv_col_i32(p, g); }
    struct st {
        uint32_t q[4], hm[4]; /* hm: hmask >> 4h (bit q: the high bit of group 4q + k) */
        float dl[4];
    };
    ORC_GVD void prepare(st &s, const uint8_t *b, int p) {
        const int h = p >> 1, i0 = 16 * (p & 1);
        uint32_t sc[3];
        orc_gv_words<4, 2>(b + 32 + 32 * h + i0, s.q);
        orc_gv_words<4, 2>(b + i0, s.hm);
        orc_gv_words<3, 2>(b + 96, sc);
        ORC_QD_UNROLL for (int k = 0; k < 4; k++) s.hm[k] >>= 4 * h;
        const float d = orc_dqf_h2f(orc_dqf_ld16(b + 108));
        const uint32_t k = (uint32_t)p & 1u;
        ORC_QD_UNROLL for (int q = 0; q < 4; q++) {
            /* sub-block s = 8h + k + 2q: low 4 bits from byte k + 2q (nibble h), high 2 bits
             * from byte 8 + k + 2(q & 1), bits 2(2h + q/2). */
            const uint32_t bl = k + 2u * (uint32_t)q, bh = k + 2u * (uint32_t)(q & 1);
            const uint32_t lo = (sc[bl >> 2] >> (8u * (bl & 3u) + 4u * (uint32_t)h)) & 0xFu;
            const uint32_t hi = (sc[2] >> (8u * bh + 2u * (2u * (uint32_t)h + (uint32_t)(q >> 1)))) & 3u;
            s.dl[q] = ORC_FMUL(d, orc_dqf_bytef(lo | (hi << 4), 0, ORC_DQF_2P23 + 32.0f));
        }
    }
    ORC_GVD orc_gv_f4 group(const st &s, int g) {
        const int q = g >> 2, k = g & 3;
        const uint32_t w = ((s.q[k] >> (2 * q)) & 0x03030303u) | (((s.hm[k] >> q) << 2) & 0x04040404u);
        return orc_gv_mul4(s.dl[q], w, ORC_DQF_2P23 + 4.0f);
    }
};

/* IQ4_XS, 136 bytes: d @0, scales_h:u16 @2, scales_l[4] @4, qs[128] @8. Sub-block s:
 * scale ((scales_l[s/2] >> 4(s%2)) & 0xF | ((scales_h >> 2s) & 3) << 4) - 32,
 * dl = fl(d * scale); element i: nibble i/16 of qs[16s + i%16], a level; value = fl(dl * level).
 * LU p = sub-blocks 2p, 2p+1 (columns 64p..). */
struct orc_gv_IQ4_XS {
    enum { BS = 256, TS = 136, E = 64, LPB = 4, G = 16, A = 8 };
    ORC_GVD int col(int p, int g) { return 64 * p + 4 * g; }
    struct st {
        uint32_t q[8];
        float dl0, dl1;
    };
    ORC_GVD void prepare(st &s, const uint8_t *b, int p) {
        uint32_t h[2];
        orc_gv_words<2, 8>(b, h);
        orc_gv_words<8, 8>(b + 8 + 32 * p, s.q);
        const float d = orc_dqf_h2f(h[0] & 0xFFFFu);
        const uint32_t sl = (h[1] >> (8 * p)) & 0xFFu, sh = (h[0] >> (16 + 4 * p)) & 0xFu;
        /* byte 0: scale of sub-block 2p, byte 1: of 2p + 1 (6-bit unsigned, minus 32 below) */
        const uint32_t ls = (sl & 0xFu) | ((sh & 3u) << 4) | (((sl >> 4) | ((sh >> 2) << 4)) << 8);
        s.dl0 = ORC_FMUL(d, orc_dqf_bytef(ls, 0, ORC_DQF_2P23 + 32.0f));
        s.dl1 = ORC_FMUL(d, orc_dqf_bytef(ls, 1, ORC_DQF_2P23 + 32.0f));
    }
    ORC_GVD orc_gv_f4 group(const st &s, int g) {
        const int gi = g & 7;
        const uint32_t x = s.q[4 * (g >> 3) + (gi & 3)];
        const uint32_t w = (gi < 4 ? x : x >> 4) & 0x0F0F0F0Fu;
        return orc_gv_mul4(g < 8 ? s.dl0 : s.dl1, orc_dqf_iq4_levels(w), ORC_DQF_2P23 + 128.0f);
    }
};

/* ---- float types: pseudo-blocks of E elements (32 bytes) ------------------------------- */

/* F16: 16 halves per LU; the hardware conversion is exact for every half but NaN (whose
 * payload it drops: NaN stays NaN). */
struct orc_gv_F16 {
    enum { BS = 16, TS = 32, E = 16, LPB = 1, G = 4, A = 16 };
    ORC_GVD int col(int, int g) { return 4 * g; }
    struct st {
        uint32_t h[8];
    };
    ORC_GVD void prepare(st &s, const uint8_t *b, int) { orc_gv_words<8, 16>(b, s.h); }
    ORC_GVD orc_gv_f4 group(const st &s, int g) {
        const uint32_t a = s.h[2 * g], c = s.h[2 * g + 1];
        return {orc_dqf_h2f(a & 0xFFFFu), orc_dqf_h2f(a >> 16), orc_dqf_h2f(c & 0xFFFFu), orc_dqf_h2f(c >> 16)};
    }
};

struct orc_gv_BF16 {
    enum { BS = 16, TS = 32, E = 16, LPB = 1, G = 4, A = 16 };
    ORC_GVD int col(int, int g) { return 4 * g; }
    struct st {
        uint32_t h[8];
    };
    ORC_GVD void prepare(st &s, const uint8_t *b, int) { orc_gv_words<8, 16>(b, s.h); }
    ORC_GVD orc_gv_f4 group(const st &s, int g) {
        const uint32_t a = s.h[2 * g], c = s.h[2 * g + 1];
        return {orc_qd_from_bits(a << 16), orc_qd_from_bits(a & 0xFFFF0000u), orc_qd_from_bits(c << 16),
                orc_qd_from_bits(c & 0xFFFF0000u)};
    }
};

struct orc_gv_F32 {
    enum { BS = 8, TS = 32, E = 8, LPB = 1, G = 2, A = 16 };
    ORC_GVD int col(int, int g) { return 4 * g; }
    struct st {
        uint32_t f[8];
    };
    ORC_GVD void prepare(st &s, const uint8_t *b, int) { orc_gv_words<8, 16>(b, s.f); }
    ORC_GVD orc_gv_f4 group(const st &s, int g) {
        return {orc_qd_from_bits(s.f[4 * g]), orc_qd_from_bits(s.f[4 * g + 1]), orc_qd_from_bits(s.f[4 * g + 2]),
                orc_qd_from_bits(s.f[4 * g + 3])};
    }
};

/* Every type with a GEMV decoder: X(NAME) with ORC_TYPE_NAME and orc_gv_NAME. */
#define ORC_GV_FOREACH_TYPE(X) \
    X(Q4_0)                    \
    X(Q4_1)                    \
    X(Q5_0)                    \
    X(Q5_1)                    \
    X(Q8_0)                    \
    X(IQ4_NL)                  \
    X(MXFP4)                   \
    X(Q2_K)                    \
    X(Q3_K)                    \
    X(Q4_K)                    \
    X(Q5_K)                    \
    X(Q6_K)                    \
    X(IQ4_XS)                  \
    X(F16)                     \
    X(BF16)                    \
    X(F32)

#endif /* ORC_GEMV_DECODE_CUH */
