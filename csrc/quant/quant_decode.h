/* quant_decode.h - the block layouts of every ggml type orc dequantizes, and one
 * decoder per type that turns 8 consecutive elements of a block into float32.
 *
 * This one header is compiled twice: as C11 by quant.c (the CPU path) and as CUDA
 * by cuda/dequant.cu (the GPU kernels), so the CPU and the GPU run the same
 * decoding code and differ only in how threads are mapped onto chunks.
 *
 * Bit-exactness. The oracle is gguf-py (gguf.quants.dequantize), i.e. NumPy float32
 * arithmetic where every multiply and add rounds on its own. Each decoder below
 * repeats gguf-py's operations in gguf-py's order (the NumPy expression is quoted
 * beside it) through ORC_FMUL/ORC_FADD/ORC_FSUB: plain C operators for gcc (C11
 * without -ffast-math never contracts a*b+c into an FMA, and x86-64 without -mfma
 * has none to contract into), and __fmul_rn/__fadd_rn/__fsub_rn under nvcc, which
 * nvcc never fuses. Integer to float conversions are of small integers (exact).
 *
 * A decoder is `void orc_qd_<type>(const uint8_t *b, int c, float *y)`: b points at
 * one block, c is the chunk (elements 8c..8c+7 of the block), y receives 8 floats.
 * Multi-byte fields are little-endian (as GGUF stores them) and read byte by byte,
 * so blocks need no alignment. "element j" below is the j-th value of the block in
 * output order.
 */
#ifndef ORC_QUANT_DECODE_H
#define ORC_QUANT_DECODE_H

#include <stdint.h>

#include "quant/quant_tables.h"  /* grids, sign patterns, non-linear levels */

#ifdef __CUDACC__
#include <cuda_fp16.h> /* __half2float */
#define ORC_QD static __device__ __forceinline__
#define ORC_FMUL(a, b) __fmul_rn((a), (b))
#define ORC_FADD(a, b) __fadd_rn((a), (b))
#define ORC_FSUB(a, b) __fsub_rn((a), (b))
#define ORC_QD_UNROLL _Pragma("unroll")
ORC_QD float orc_qd_from_bits(uint32_t u) { return __uint_as_float(u); }
ORC_QD uint32_t orc_qd_to_bits(float f) { return __float_as_uint(f); }
#else
#include <string.h>  /* memcpy */
#define ORC_QD static inline
#define ORC_FMUL(a, b) ((a) * (b))
#define ORC_FADD(a, b) ((a) + (b))
#define ORC_FSUB(a, b) ((a) - (b))
#define ORC_QD_UNROLL _Pragma("GCC unroll 8")
ORC_QD float orc_qd_from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
ORC_QD uint32_t orc_qd_to_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}
#endif

#define ORC_QK_K 256

/* ---- scalar conversions -------------------------------------------------- */

/* IEEE half -> float, exact. NaN keeps its sign and payload (shifted up 13 bits,
 * not quieted), as NumPy's float16 -> float32 cast does. Under nvcc the hardware
 * conversion (exact for every half, subnormals included) does the work without a
 * branch; only a NaN, whose payload the hardware would drop, takes the bit path. */
#ifdef __CUDACC__
ORC_QD float orc_qd_h2f(uint16_t h) {
    const float f = __half2float(__ushort_as_half((unsigned short)h));
    const uint32_t nan = ((uint32_t)(h & 0x8000u) << 16) | 0x7f800000u | ((uint32_t)(h & 0x3ffu) << 13);
    return (h & 0x7fffu) > 0x7c00u ? orc_qd_from_bits(nan) : f;
}
#else
ORC_QD float orc_qd_h2f(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    if (exp == 0x1fu) return orc_qd_from_bits(sign | 0x7f800000u | (man << 13));
    if (exp != 0) return orc_qd_from_bits(sign | ((exp + 112u) << 23) | (man << 13));
    /* zero or subnormal: man * 2^-24, exact (the product is a normal float) */
    return orc_qd_from_bits(sign | orc_qd_to_bits(ORC_FMUL((float)man, 5.9604644775390625e-8f)));
}
#endif

/* float -> IEEE half, round to nearest even; overflow gives inf. NaN follows
 * NumPy's float32 -> float16 cast: sign | 0x7c00 + (mantissa >> 13), made 0x7c01
 * if the shift lost every payload bit (a NaN stays a NaN, quiet or not). */
ORC_QD uint16_t orc_qd_f2h(float f) {
    uint32_t u = orc_qd_to_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    u &= 0x7fffffffu;
    if (u > 0x7f800000u) {
        uint32_t r = 0x7c00u + ((u & 0x7fffffu) >> 13);
        if (r == 0x7c00u) r++;
        return (uint16_t)(sign | r);
    }
    if (u >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* >= 65520 rounds to inf (and inf) */
    if (u >= 0x38800000u) {                                   /* normal half: rebias, round the 13 dropped bits */
        u += 0xfffu + ((u >> 13) & 1u);
        return (uint16_t)(sign | ((u - 0x38000000u) >> 13));
    }
    uint32_t e = u >> 23;
    if (e < 102u) return sign; /* below 2^-25, or exactly 2^-25 (ties to even: 0) */
    {
        uint32_t m = (u & 0x7fffffu) | 0x800000u; /* value = m * 2^(e-150); half subnormal unit is 2^-24 */
        uint32_t s = 126u - e;                    /* 14..24 */
        uint32_t r = m >> s, rem = m & ((1u << s) - 1u), half = 1u << (s - 1u);
        if (rem > half || (rem == half && (r & 1u))) r++;
        return (uint16_t)(sign | r);
    }
}

/* bfloat16 <-> float. To bfloat16: round to nearest even (overflow gives inf); NaN
 * keeps sign and top payload bits and is quieted, as ggml and gguf-py do. */
ORC_QD float orc_qd_bf2f(uint16_t h) { return orc_qd_from_bits((uint32_t)h << 16); }
ORC_QD uint16_t orc_qd_f2bf(float f) {
    uint32_t u = orc_qd_to_bits(f);
    uint32_t nan = (uint32_t)(((u & 0xffff0000u) | 0x00400000u) >> 16);
    uint32_t rne = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? nan : rne);
}

ORC_QD uint32_t orc_qd_rd16(const uint8_t *p) { return (uint32_t)p[0] | ((uint32_t)p[1] << 8); }
ORC_QD uint32_t orc_qd_rd32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
ORC_QD float orc_qd_half(const uint8_t *p) { return orc_qd_h2f((uint16_t)orc_qd_rd16(p)); }

/* ---- legacy 32-element types ---------------------------------------------- */

/* Q4_0, 18 bytes / 32 elements: d:f16 @0, qs[16] @2.
 * element j<16: qs[j] & 0xF;  j>=16: qs[j-16] >> 4;  value = d * (q - 8).
 * gguf-py: d * ((qs & 0xF).astype(int8) - 8).astype(float32) */
ORC_QD void orc_qd_q4_0(const uint8_t *b, int c, float *y) {
    const float d = orc_qd_half(b);
    const uint8_t *qs = b + 2 + 8 * (c & 1);
    const int sh = (c >> 1) * 4;
    ORC_QD_UNROLL for (int k = 0; k < 8; k++) y[k] = ORC_FMUL(d, (float)(((qs[k] >> sh) & 0xF) - 8));
}

/* Q4_1, 20 bytes / 32: d:f16 @0, m:f16 @2, qs[16] @4 (nibbles as Q4_0).
 * value = d * q + m.   gguf-py: (d * qs) + m */
ORC_QD void orc_qd_q4_1(const uint8_t *b, int c, float *y) {
    const float d = orc_qd_half(b), m = orc_qd_half(b + 2);
    const uint8_t *qs = b + 4 + 8 * (c & 1);
    const int sh = (c >> 1) * 4;
    ORC_QD_UNROLL for (int k = 0; k < 8; k++) y[k] = ORC_FADD(ORC_FMUL(d, (float)((qs[k] >> sh) & 0xF)), m);
}

/* Q5_0, 22 bytes / 32: d:f16 @0, qh:u32 @2, qs[16] @6.
 * element j: low 4 bits as Q4_0, 5th bit = bit j of qh; value = d * (q - 16). */
ORC_QD void orc_qd_q5_0(const uint8_t *b, int c, float *y) {
    const float d = orc_qd_half(b);
    const uint32_t qh = orc_qd_rd32(b + 2) >> (8 * c);
    const uint8_t *qs = b + 6 + 8 * (c & 1);
    const int sh = (c >> 1) * 4;
    ORC_QD_UNROLL for (int k = 0; k < 8; k++) {
        int q = ((qs[k] >> sh) & 0xF) | (int)(((qh >> k) & 1u) << 4);
        y[k] = ORC_FMUL(d, (float)(q - 16));
    }
}

/* Q5_1, 24 bytes / 32: d:f16 @0, m:f16 @2, qh:u32 @4, qs[16] @8.  value = d * q + m. */
ORC_QD void orc_qd_q5_1(const uint8_t *b, int c, float *y) {
    const float d = orc_qd_half(b), m = orc_qd_half(b + 2);
    const uint32_t qh = orc_qd_rd32(b + 4) >> (8 * c);
    const uint8_t *qs = b + 8 + 8 * (c & 1);
    const int sh = (c >> 1) * 4;
    ORC_QD_UNROLL for (int k = 0; k < 8; k++) {
        int q = ((qs[k] >> sh) & 0xF) | (int)(((qh >> k) & 1u) << 4);
        y[k] = ORC_FADD(ORC_FMUL(d, (float)q), m);
    }
}

/* Q8_0, 34 bytes / 32: d:f16 @0, qs:int8[32] @2.  value = q * d. */
ORC_QD void orc_qd_q8_0(const uint8_t *b, int c, float *y) {
    const float d = orc_qd_half(b);
    const uint8_t *qs = b + 2 + 8 * c;
    ORC_QD_UNROLL for (int k = 0; k < 8; k++) y[k] = ORC_FMUL((float)(int8_t)qs[k], d);
}

/* Q1_0, 18 bytes / 128: d:f16 @0, qs[16] @2; element j is +d if bit j%8 of qs[j/8]
 * is set, else -d (ggml's dequantize_row_q1_0; gguf-py has no dequantizer for it).
 * -d is a sign flip of the bits, never arithmetic. */
ORC_QD void orc_qd_q1_0(const uint8_t *b, int c, float *y) {
    const uint32_t d = orc_qd_to_bits(orc_qd_half(b));
    const uint32_t bits = b[2 + c];
    ORC_QD_UNROLL for (int k = 0; k < 8; k++) y[k] = orc_qd_from_bits(d ^ ((~bits >> k & 1u) << 31));
}

/* ---- k-quants: 256-element super-blocks ----------------------------------- */

/* Q2_K, 84 bytes: scales[16] @0, qs[64] @16, d:f16 @80, dmin:f16 @82.
 * 16 sub-blocks of 16; sub-block s = j/16 has scale scales[s] & 0xF, min scales[s] >> 4.
 * element j: q = (qs[32*(j/128) + j%32] >> 2*((j%128)/32)) & 3.
 * gguf-py: dl = d * (sc & 0xF); ml = dmin * (sc >> 4); dl * q - ml */
ORC_QD void orc_qd_q2_K(const uint8_t *b, int c, float *y) {
    const int j0 = 8 * c;
    const int sc = b[j0 / 16];
    const float dl = ORC_FMUL(orc_qd_half(b + 80), (float)(sc & 0xF));
    const float ml = ORC_FMUL(orc_qd_half(b + 82), (float)(sc >> 4));
    const uint8_t *qs = b + 16 + 32 * (j0 / 128) + j0 % 32;
    const int sh = 2 * ((j0 % 128) / 32);
    ORC_QD_UNROLL for (int k = 0; k < 8; k++) y[k] = ORC_FSUB(ORC_FMUL(dl, (float)((qs[k] >> sh) & 3)), ml);
}

/* Q3_K, 110 bytes: hmask[32] @0, qs[64] @32, scales[12] @96, d:f16 @108.
 * 16 sub-blocks of 16, 6-bit signed scales packed as (byte: bits)
 *   0..7:  low 4 bits of scale s (s<8: low nibble of byte s; s>=8: high nibble of byte s-8)
 *   8..11: high 2 bits of scale s at bits 2*(s/4) of byte 8 + s%4;   scale = value - 32.
 * element j: low 2 bits (qs[32*(j/128) + j%32] >> 2*((j%128)/32)) & 3; high bit
 * (hmask[j%32] >> (j/32)) & 1; q = low - (high ? 0 : 4).
 * gguf-py: dl = d * (scale - 32); dl * q */
ORC_QD void orc_qd_q3_K(const uint8_t *b, int c, float *y) {
    const int j0 = 8 * c, s = j0 / 16;
    const uint8_t *scales = b + 96;
    const int lo = (s < 8 ? scales[s] : scales[s - 8] >> 4) & 0xF;
    const int hi = (scales[8 + s % 4] >> (2 * (s / 4))) & 3;
    const float dl = ORC_FMUL(orc_qd_half(b + 108), (float)((lo | (hi << 4)) - 32));
    const uint8_t *qs = b + 32 + 32 * (j0 / 128) + j0 % 32;
    const uint8_t *hm = b + j0 % 32;
    const int sh = 2 * ((j0 % 128) / 32), hb = j0 / 32;
    ORC_QD_UNROLL for (int k = 0; k < 8; k++) {
        int q = ((qs[k] >> sh) & 3) - (((hm[k] >> hb) & 1) ? 0 : 4);
        y[k] = ORC_FMUL(dl, (float)q);
    }
}

/* The 6-bit scale and min of sub-block s (0..7) of Q4_K/Q5_K from their 12 bytes:
 *   s<4:  sc = q[s] & 63,                        m = q[s+4] & 63
 *   s>=4: sc = (q[s+4] & 0xF) | (q[s-4] >> 6) << 4, m = (q[s+4] >> 4) | (q[s] >> 6) << 4 */
ORC_QD void orc_qd_scale_min_k4(const uint8_t *q, int s, int *sc, int *m) {
    if (s < 4) {
        *sc = q[s] & 63;
        *m = q[s + 4] & 63;
    } else {
        *sc = (q[s + 4] & 0xF) | ((q[s - 4] >> 6) << 4);
        *m = (q[s + 4] >> 4) | ((q[s] >> 6) << 4);
    }
}

/* Q4_K, 144 bytes: d:f16 @0, dmin:f16 @2, scales[12] @4, qs[128] @16.
 * 8 sub-blocks of 32; element j of sub-block s = j/32:
 *   q = (qs[32*(s/2) + j%32] >> 4*(s%2)) & 0xF.
 * gguf-py: ds = d * sc; dm = dmin * m; ds * q - dm */
ORC_QD void orc_qd_q4_K(const uint8_t *b, int c, float *y) {
    const int j0 = 8 * c, s = j0 / 32;
    int sc, m;
    orc_qd_scale_min_k4(b + 4, s, &sc, &m);
    const float ds = ORC_FMUL(orc_qd_half(b), (float)sc);
    const float dm = ORC_FMUL(orc_qd_half(b + 2), (float)m);
    const uint8_t *qs = b + 16 + 32 * (s / 2) + j0 % 32;
    const int sh = 4 * (s % 2);
    ORC_QD_UNROLL for (int k = 0; k < 8; k++) y[k] = ORC_FSUB(ORC_FMUL(ds, (float)((qs[k] >> sh) & 0xF)), dm);
}

/* Q5_K, 176 bytes: d:f16 @0, dmin:f16 @2, scales[12] @4, qh[32] @16, qs[128] @48.
 * As Q4_K, with a 5th bit (qh[j%32] >> s) & 1 for sub-block s. */
ORC_QD void orc_qd_q5_K(const uint8_t *b, int c, float *y) {
    const int j0 = 8 * c, s = j0 / 32;
    int sc, m;
    orc_qd_scale_min_k4(b + 4, s, &sc, &m);
    const float ds = ORC_FMUL(orc_qd_half(b), (float)sc);
    const float dm = ORC_FMUL(orc_qd_half(b + 2), (float)m);
    const uint8_t *qs = b + 48 + 32 * (s / 2) + j0 % 32;
    const uint8_t *qh = b + 16 + j0 % 32;
    const int sh = 4 * (s % 2);
    ORC_QD_UNROLL for (int k = 0; k < 8; k++) {
        int q = ((qs[k] >> sh) & 0xF) | (((qh[k] >> s) & 1) << 4);
        y[k] = ORC_FSUB(ORC_FMUL(ds, (float)q), dm);
    }
}

/* Q6_K, 210 bytes: ql[128] @0, qh[64] @128, scales:int8[16] @192, d:f16 @208.
 * element j, with h = j/128, r = j%128:
 *   low 4 bits  (ql[64h + r%64] >> 4*(r/64)) & 0xF
 *   high 2 bits (qh[32h + r%32] >> 2*(r/32)) & 3;   q = (low | high << 4) - 32
 * gguf-py: (d * scales[j/16]) * q */
ORC_QD void orc_qd_q6_K(const uint8_t *b, int c, float *y) {
    const int j0 = 8 * c, h = j0 / 128, r = j0 % 128;
    const float ds = ORC_FMUL(orc_qd_half(b + 208), (float)(int8_t)b[192 + j0 / 16]);
    const uint8_t *ql = b + 64 * h + r % 64;
    const uint8_t *qh = b + 128 + 32 * h + r % 32;
    const int shl = 4 * (r / 64), shh = 2 * (r / 32);
    ORC_QD_UNROLL for (int k = 0; k < 8; k++) {
        int q = (((ql[k] >> shl) & 0xF) | (((qh[k] >> shh) & 3) << 4)) - 32;
        y[k] = ORC_FMUL(ds, (float)q);
    }
}

/* ---- ternary types -------------------------------------------------------- */

/* TQ1_0, 54 bytes / 256: qs[48] @0, qh[4] @48, d:f16 @52. Base-3 digits packed five
 * (qs) or four (qh) to a byte as a fixed-point fraction: digit k of byte x is
 * ((uint8)(x * 3^k) * 3) >> 8, a trit in 0..2; value = d * (trit - 1).
 *   j < 160:        byte qs[j%32],            k = j/32
 *   160 <= j < 240: byte qs[32 + (j-160)%16], k = (j-160)/16
 *   j >= 240:       byte qh[(j-240)%4],       k = (j-240)/4 */
ORC_QD uint32_t orc_qd_pow3(int k) { return (uint32_t)((0x511b090301ull >> (8 * k)) & 0xFFu); } /* 3^k, k <= 4 */
ORC_QD void orc_qd_tq1_0(const uint8_t *b, int c, float *y) {
    const int j0 = 8 * c;
    const uint8_t *p;
    int k;
    if (j0 < 160) {
        p = b + j0 % 32;
        k = j0 / 32;
    } else if (j0 < 240) {
        p = b + 32 + (j0 - 160) % 16;
        k = (j0 - 160) / 16;
    } else {
        p = b + 48; /* chunks 30, 31: elements 240..255, bytes qh[0..3] twice per chunk */
        k = 2 * (c - 30);
    }
    const float d = orc_qd_half(b + 52);
    if (j0 < 240) {
        const uint32_t m = orc_qd_pow3(k);
        ORC_QD_UNROLL for (int i = 0; i < 8; i++) {
            uint32_t t = (((uint32_t)(uint8_t)(p[i] * m)) * 3u) >> 8;
            y[i] = ORC_FMUL(d, (float)((int)t - 1));
        }
    } else {
        ORC_QD_UNROLL for (int i = 0; i < 8; i++) {
            uint32_t t = (((uint32_t)(uint8_t)(p[i % 4] * orc_qd_pow3(k + i / 4))) * 3u) >> 8;
            y[i] = ORC_FMUL(d, (float)((int)t - 1));
        }
    }
}

/* TQ2_0, 66 bytes / 256: qs[64] @0, d:f16 @64.
 * element j: q = (qs[32*(j/128) + j%32] >> 2*((j%128)/32)) & 3; value = d * (q - 1). */
ORC_QD void orc_qd_tq2_0(const uint8_t *b, int c, float *y) {
    const int j0 = 8 * c;
    const float d = orc_qd_half(b + 64);
    const uint8_t *qs = b + 32 * (j0 / 128) + j0 % 32;
    const int sh = 2 * ((j0 % 128) / 32);
    ORC_QD_UNROLL for (int k = 0; k < 8; k++) y[k] = ORC_FMUL(d, (float)(((qs[k] >> sh) & 3) - 1));
}

/* ---- FP4 types -------------------------------------------------------------- */

/* E8M0 scale, halved (the E2M1 table is doubled): 2^(e-128) as float bits;
 * e < 2 gives the subnormals 2^-128, 2^-127. Never NaN (e = 255 is 2^127). */
ORC_QD float orc_qd_e8m0_half(uint32_t e) {
    return orc_qd_from_bits(e < 2 ? 0x00200000u << e : (e - 1u) << 23);
}

/* MXFP4, 17 bytes / 32: e:E8M0 @0, qs[16] @1; element j<16: qs[j] & 0xF, else
 * qs[j-16] >> 4, an index into the doubled E2M1 table; value = d * kvalue. */
ORC_QD void orc_qd_mxfp4(const uint8_t *b, int c, float *y) {
    const float d = orc_qd_e8m0_half(b[0]);
    const uint8_t *qs = b + 1 + 8 * (c & 1);
    const int sh = (c >> 1) * 4;
    ORC_QD_UNROLL for (int k = 0; k < 8; k++) y[k] = ORC_FMUL(d, (float)orc_kvalues_mxfp4[(qs[k] >> sh) & 0xF]);
}

/* Unsigned E4M3 scale (bias 7), halved: bits 6..3 exponent, 2..0 mantissa; bit 7 is
 * ignored, and 0x00 and 0x7F (the NaN code) give 0. Exactly gguf-py's
 * NVFP4.ue4m3_to_fp32 and ggml's ggml_ue4m3_to_fp32 (0xFF decodes as 240). */
ORC_QD float orc_qd_ue4m3_half(uint32_t x) {
    if (x == 0 || x == 0x7Fu) return 0.0f;
    uint32_t e = (x >> 3) & 0xFu, m = x & 7u;
    if (e == 0) return ORC_FMUL((float)m, 0.0009765625f); /* m * 2^-10, exact */
    return orc_qd_from_bits(((e + 119u) << 23) | (m << 20)); /* (1 + m/8) * 2^(e-8) */
}

/* NVFP4, 36 bytes / 64: d:UE4M3[4] @0 (one per 16 elements), qs[32] @4.
 * sub-block s = j/16, i = j%16: i<8: qs[8s+i] & 0xF, else qs[8s+i-8] >> 4. */
ORC_QD void orc_qd_nvfp4(const uint8_t *b, int c, float *y) {
    const int s = c >> 1;
    const float d = orc_qd_ue4m3_half(b[s]);
    const uint8_t *qs = b + 4 + 8 * s;
    const int sh = (c & 1) * 4;
    ORC_QD_UNROLL for (int k = 0; k < 8; k++) y[k] = ORC_FMUL(d, (float)orc_kvalues_mxfp4[(qs[k] >> sh) & 0xF]);
}

/* ---- i-quants --------------------------------------------------------------- */

/* -1.0f if bit k of `signs` is set, else 1.0f (built from bits: no branch). */
ORC_QD float orc_qd_sign(uint32_t signs, int k) { return orc_qd_from_bits(0x3f800000u | (((signs >> k) & 1u) << 31)); }

/* y[k] = (db * grid_k) * sign_k for the 8 bytes of a grid row and a sign mask
 * (bit k set: negative). gguf-py: db * grid * signs, signs = +-1.0 */
ORC_QD void orc_qd_grid8(float db, uint64_t row, uint32_t signs, float *y) {
    ORC_QD_UNROLL for (int k = 0; k < 8; k++)
        y[k] = ORC_FMUL(ORC_FMUL(db, (float)(uint32_t)((row >> (8 * k)) & 0xFFu)), orc_qd_sign(signs, k));
}

/* IQ2_XXS, 66 bytes: d:f16 @0, then 8 sub-blocks of 32 as two u32 each @2+8s:
 * aux0 = 4 grid indices (one byte per 8 elements), aux1 = 4 x 7-bit sign-pattern
 * indices (bits 7l..7l+6) and a 4-bit scale (bits 28..31).
 * gguf-py: db = d * (0.5 + (aux1 >> 28)) * 0.25 */
ORC_QD void orc_qd_iq2_xxs(const uint8_t *b, int c, float *y) {
    const int s = c >> 2, l = c & 3;
    const uint8_t *q = b + 2 + 8 * s;
    const uint32_t aux1 = orc_qd_rd32(q + 4);
    const float db = ORC_FMUL(ORC_FMUL(orc_qd_half(b), ORC_FADD(0.5f, (float)(aux1 >> 28))), 0.25f);
    orc_qd_grid8(db, orc_iq2xxs_grid[q[l]], orc_ksigns_iq2xs[(aux1 >> (7 * l)) & 127u], y);
}

/* IQ2_XS, 74 bytes: d:f16 @0, qs:u16[32] @2, scales[8] @66. Entry i (elements 8i..8i+7):
 * grid index qs[i] & 511, sign pattern qs[i] >> 9; 4-bit scale of 16 elements
 * (scales[i/4] >> 4*((i/2)%2)) & 0xF.  gguf-py: db = d * (0.5 + sc) * 0.25 */
ORC_QD void orc_qd_iq2_xs(const uint8_t *b, int c, float *y) {
    const uint32_t qs = orc_qd_rd16(b + 2 + 2 * c);
    const int sc = (b[66 + c / 4] >> (4 * ((c / 2) % 2))) & 0xF;
    const float db = ORC_FMUL(ORC_FMUL(orc_qd_half(b), ORC_FADD(0.5f, (float)sc)), 0.25f);
    orc_qd_grid8(db, orc_iq2xs_grid[qs & 511u], orc_ksigns_iq2xs[qs >> 9], y);
}

/* IQ2_S, 82 bytes: d:f16 @0, qs[32] @2, signs[32] @34, qh[8] @66, scales[8] @74.
 * Entry i: grid index qs[i] | ((qh[i/4] >> 2*(i%4)) & 3) << 8, sign bits signs[i],
 * scale as IQ2_XS. */
ORC_QD void orc_qd_iq2_s(const uint8_t *b, int c, float *y) {
    const uint32_t idx = b[2 + c] | (((uint32_t)(b[66 + c / 4] >> (2 * (c % 4))) & 3u) << 8);
    const int sc = (b[74 + c / 4] >> (4 * ((c / 2) % 2))) & 0xF;
    const float db = ORC_FMUL(ORC_FMUL(orc_qd_half(b), ORC_FADD(0.5f, (float)sc)), 0.25f);
    orc_qd_grid8(db, orc_iq2s_grid[idx], b[34 + c], y);
}

/* y[k] = (db * grid_k) * sign_k for two 4-wide grid rows. */
ORC_QD void orc_qd_grid4x2(float db, uint32_t r0, uint32_t r1, uint32_t signs, float *y) {
    ORC_QD_UNROLL for (int k = 0; k < 8; k++) {
        uint32_t g = ((k < 4 ? r0 : r1) >> (8 * (k % 4))) & 0xFFu;
        y[k] = ORC_FMUL(ORC_FMUL(db, (float)g), orc_qd_sign(signs, k));
    }
}

/* IQ3_XXS, 98 bytes: d:f16 @0, qs[64] @2 (one grid index per 4 elements),
 * scales_and_signs:u32[8] @66: for sub-block s of 32, 4 x 7-bit sign-pattern indices
 * (bits 7l..) and a 4-bit scale (bits 28..31).
 * gguf-py: db = d * (0.5 + (aux >> 28)) * 0.5 */
ORC_QD void orc_qd_iq3_xxs(const uint8_t *b, int c, float *y) {
    const int s = c >> 2, l = c & 3;
    const uint32_t aux = orc_qd_rd32(b + 66 + 4 * s);
    const float db = ORC_FMUL(ORC_FMUL(orc_qd_half(b), ORC_FADD(0.5f, (float)(aux >> 28))), 0.5f);
    orc_qd_grid4x2(db, orc_iq3xxs_grid[b[2 + 2 * c]], orc_iq3xxs_grid[b[3 + 2 * c]],
                   orc_ksigns_iq2xs[(aux >> (7 * l)) & 127u], y);
}

/* IQ3_S, 110 bytes: d:f16 @0, qs[64] @2, qh[8] @66, signs[32] @74, scales[4] @106.
 * Entry i (4 elements): grid index qs[i] | ((qh[i/8] >> i%8) & 1) << 8; sign of
 * element j: bit j%8 of signs[j/8]; scale of sub-block s = j/32:
 * (scales[s/2] >> 4*(s%2)) & 0xF.  gguf-py: db = d * (1 + 2*sc) */
ORC_QD void orc_qd_iq3_s(const uint8_t *b, int c, float *y) {
    const int s = c >> 2;
    const int sc = (b[106 + s / 2] >> (4 * (s % 2))) & 0xF;
    const float db = ORC_FMUL(orc_qd_half(b), (float)(1 + 2 * sc));
    const int i0 = 2 * c, i1 = 2 * c + 1;
    const uint32_t g0 = b[2 + i0] | (((uint32_t)(b[66 + i0 / 8] >> (i0 % 8)) & 1u) << 8);
    const uint32_t g1 = b[2 + i1] | (((uint32_t)(b[66 + i1 / 8] >> (i1 % 8)) & 1u) << 8);
    orc_qd_grid4x2(db, orc_iq3s_grid[g0], orc_iq3s_grid[g1], b[74 + c], y);
}

/* y[k] = dl * (grid_k + delta) for an IQ1 grid row of int8 {-1, 0, 1}.
 * gguf-py: dl * (grid + delta) */
ORC_QD void orc_qd_grid1(float dl, float delta, uint64_t row, float *y) {
    ORC_QD_UNROLL for (int k = 0; k < 8; k++)
        y[k] = ORC_FMUL(dl, ORC_FADD((float)(int8_t)(uint8_t)((row >> (8 * k)) & 0xFFu), delta));
}

/* IQ1_S, 50 bytes: d:f16 @0, qs[32] @2, qh:u16[8] @34. Sub-block s of 32 (entries
 * 4s..4s+3, 8 elements each): grid index qs[i] | ((qh[s] >> 3*(i%4)) & 7) << 8,
 * scale 2*((qh[s] >> 12) & 7) + 1, delta -0.125 if bit 15 of qh[s] else +0.125.
 * gguf-py: dl = d * (2*((qh >> 12) & 7) + 1); dl * (grid + delta) */
ORC_QD void orc_qd_iq1_s(const uint8_t *b, int c, float *y) {
    const int s = c >> 2, l = c & 3;
    const uint32_t qh = orc_qd_rd16(b + 34 + 2 * s);
    const float dl = ORC_FMUL(orc_qd_half(b), (float)(2 * ((qh >> 12) & 7u) + 1));
    const float delta = (qh & 0x8000u) ? -0.125f : 0.125f;
    orc_qd_grid1(dl, delta, orc_iq1s_grid[b[2 + c] | (((qh >> (3 * l)) & 7u) << 8)], y);
}

/* IQ1_M, 56 bytes: qs[32] @0, qh[16] @32, scales:u16[4] @48. The block's f16 scale
 * is split over the top nibbles of the four scales words:
 *   d = sc[0] >> 12 | (sc[1] >> 8) & 0xF0 | (sc[2] >> 4) & 0xF00 | sc[3] & 0xF000.
 * 3-bit scale of 16 elements g = j/16: (sc[g/4] >> 3*(g%4)) & 7.
 * Entry i = j/8: nibble n = qh[i/2] >> 4*(i%2); grid index qs[i] | (n & 7) << 8;
 * delta -0.125 if n & 8 else +0.125.  gguf-py: dl = d * (2*s + 1); dl * (grid + delta) */
ORC_QD void orc_qd_iq1_m(const uint8_t *b, int c, float *y) {
    const uint32_t s0 = orc_qd_rd16(b + 48), s1 = orc_qd_rd16(b + 50), s2 = orc_qd_rd16(b + 52),
                   s3 = orc_qd_rd16(b + 54);
    const uint32_t dbits = (s0 >> 12) | ((s1 >> 8) & 0xF0u) | ((s2 >> 4) & 0xF00u) | (s3 & 0xF000u);
    const int g = c / 2;
    const uint32_t sw = orc_qd_rd16(b + 48 + 2 * (g / 4));
    const float dl = ORC_FMUL(orc_qd_h2f((uint16_t)dbits), (float)(2 * ((sw >> (3 * (g % 4))) & 7u) + 1));
    const uint32_t n = (uint32_t)(b[32 + c / 2] >> (4 * (c % 2))) & 0xFu;
    const float delta = (n & 8u) ? -0.125f : 0.125f;
    orc_qd_grid1(dl, delta, orc_iq1s_grid[b[c] | ((n & 7u) << 8)], y);
}

/* IQ4_NL, 18 bytes / 32: d:f16 @0, qs[16] @2; nibbles as Q4_0, each an index into
 * the 16 non-linear levels; value = d * level. */
ORC_QD void orc_qd_iq4_nl(const uint8_t *b, int c, float *y) {
    const float d = orc_qd_half(b);
    const uint8_t *qs = b + 2 + 8 * (c & 1);
    const int sh = (c >> 1) * 4;
    ORC_QD_UNROLL for (int k = 0; k < 8; k++) y[k] = ORC_FMUL(d, (float)orc_kvalues_iq4nl[(qs[k] >> sh) & 0xF]);
}

/* IQ4_XS, 136 bytes / 256: d:f16 @0, scales_h:u16 @2, scales_l[4] @4, qs[128] @8.
 * Sub-block s of 32: 6-bit scale ((scales_l[s/2] >> 4*(s%2)) & 0xF) | ((scales_h >> 2s) & 3) << 4,
 * minus 32; element i of the sub-block: i<16: qs[16s+i] & 0xF, else qs[16s+i-16] >> 4,
 * an index into the IQ4_NL levels.  gguf-py: dl = d * scale; dl * level */
ORC_QD void orc_qd_iq4_xs(const uint8_t *b, int c, float *y) {
    const int s = c >> 2, i0 = 8 * (c & 3);
    const int lo = (b[4 + s / 2] >> (4 * (s % 2))) & 0xF;
    const int hi = (int)((orc_qd_rd16(b + 2) >> (2 * s)) & 3u);
    const float dl = ORC_FMUL(orc_qd_half(b), (float)((lo | (hi << 4)) - 32));
    const uint8_t *qs = b + 8 + 16 * s + i0 % 16;
    const int sh = (i0 / 16) * 4;
    ORC_QD_UNROLL for (int k = 0; k < 8; k++) y[k] = ORC_FMUL(dl, (float)orc_kvalues_iq4nl[(qs[k] >> sh) & 0xF]);
}

/* Every block type with a decoder above: X(NAME, fn, block elements, block bytes).
 * NAME matches ORC_TYPE_<NAME> of ggml_types.h. F32/F16/BF16 (1-element "blocks")
 * are handled by the callers directly. */
#define ORC_QD_FOREACH_BLOCK_TYPE(X)   \
    X(Q4_0, orc_qd_q4_0, 32, 18)       \
    X(Q4_1, orc_qd_q4_1, 32, 20)       \
    X(Q5_0, orc_qd_q5_0, 32, 22)       \
    X(Q5_1, orc_qd_q5_1, 32, 24)       \
    X(Q8_0, orc_qd_q8_0, 32, 34)       \
    X(Q2_K, orc_qd_q2_K, 256, 84)      \
    X(Q3_K, orc_qd_q3_K, 256, 110)     \
    X(Q4_K, orc_qd_q4_K, 256, 144)     \
    X(Q5_K, orc_qd_q5_K, 256, 176)     \
    X(Q6_K, orc_qd_q6_K, 256, 210)     \
    X(IQ2_XXS, orc_qd_iq2_xxs, 256, 66) \
    X(IQ2_XS, orc_qd_iq2_xs, 256, 74)  \
    X(IQ3_XXS, orc_qd_iq3_xxs, 256, 98) \
    X(IQ1_S, orc_qd_iq1_s, 256, 50)    \
    X(IQ4_NL, orc_qd_iq4_nl, 32, 18)   \
    X(IQ3_S, orc_qd_iq3_s, 256, 110)   \
    X(IQ2_S, orc_qd_iq2_s, 256, 82)    \
    X(IQ4_XS, orc_qd_iq4_xs, 256, 136) \
    X(IQ1_M, orc_qd_iq1_m, 256, 56)    \
    X(TQ1_0, orc_qd_tq1_0, 256, 54)    \
    X(TQ2_0, orc_qd_tq2_0, 256, 66)    \
    X(MXFP4, orc_qd_mxfp4, 32, 17)     \
    X(NVFP4, orc_qd_nvfp4, 64, 36)     \
    X(Q1_0, orc_qd_q1_0, 128, 18)

#endif /* ORC_QUANT_DECODE_H */
