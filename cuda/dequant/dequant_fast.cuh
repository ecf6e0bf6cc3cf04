/* dequant_fast.cuh - decoders for the GPU kernels' whole-tile path (cuda/dequant.cu),
 * for the block types whose shared decoder (csrc/quant_decode.h) costs the most
 * instructions per element. Same contract and the same values, bit for bit:
 * orc_dqf_<type>(b, c, y) fills y with elements 8c..8c+7 of the block at b, exactly
 * as orc_qd_<type>(b, c, y) does (tests/c/test_dequant_fast.c checks every chunk of
 * random and edge blocks on the host; the GPU tests check the kernels).
 *
 * Why they are cheaper. The shared decoders read byte by byte and convert each
 * quant with its own shift, mask and int->float conversion. Here the quants of a
 * chunk come in two 32-bit words, are masked four at a time (SWAR), and each byte
 * becomes a float with one PRMT and one FADD: the bits 0x4B0000xx are the float
 * 2^23 + xx, and subtracting 2^23 + bias gives xx - bias exactly. The float
 * arithmetic that produces the values (every multiply and add of gguf-py, in its
 * order, through ORC_FMUL/ORC_FADD/ORC_FSUB: never an FMA) is unchanged.
 *
 * Written in C11 that nvcc also compiles. Requirements on b: blocks lie at multiples
 * of the type size from a 16-byte aligned base, and the 16 bytes after the last
 * block are readable (the kernels pad their shared-memory tile). Loads are 32-bit at
 * 4-byte aligned addresses; fields that are only 2-byte aligned are read as the
 * aligned words around them and funnel-shifted into place.
 */
#ifndef ORC_DEQUANT_FAST_CUH
#define ORC_DEQUANT_FAST_CUH

#include <stdint.h>

#include "quant/quant_decode.h" /* ORC_FMUL..., orc_qd_h2f, orc_qd_from_bits */

#ifdef __CUDACC__
#define ORC_DQF static __device__ __forceinline__
ORC_DQF uint32_t orc_dqf_ld32(const uint8_t *p) { return *(const uint32_t *)p; }
ORC_DQF uint32_t orc_dqf_ld16(const uint8_t *p) { return *(const uint16_t *)p; }
ORC_DQF uint32_t orc_dqf_perm(uint32_t a, uint32_t b, uint32_t s) { return __byte_perm(a, b, s); }
ORC_DQF uint32_t orc_dqf_shr64(uint32_t lo, uint32_t hi, uint32_t sh) { return __funnelshift_r(lo, hi, sh); }
/* 0x4B000000 where the compiler cannot fold it (host code could change a __constant__):
 * a PRMT takes one immediate, and it should be the byte selector, not this constant
 * (else every selector costs a move). Loaded once into a register. */
static __constant__ uint32_t orc_dqf_magic_c = 0x4B000000u;
ORC_DQF uint32_t orc_dqf_magic(void) { return orc_dqf_magic_c; }
/* A scale's half -> float: the hardware conversion, exact except that a NaN loses its
 * payload. No value here shows it: every output is a product or sum involving the
 * scale, and GPU arithmetic on a NaN gives the canonical NaN whatever its payload. */
ORC_DQF float orc_dqf_h2f(uint32_t h) { return __half2float(__ushort_as_half((unsigned short)h)); }
#else
#include <string.h> /* memcpy */
#define ORC_DQF static inline
#ifndef ORC_DQF_ALIGN_CHECK /* the host test defines it to catch a misaligned load */
#define ORC_DQF_ALIGN_CHECK(p, a) ((void)0)
#endif
ORC_DQF uint32_t orc_dqf_ld32(const uint8_t *p) {
    uint32_t v;
    ORC_DQF_ALIGN_CHECK(p, 4);
    memcpy(&v, p, 4);
    return v;
}
ORC_DQF uint32_t orc_dqf_ld16(const uint8_t *p) {
    uint16_t v;
    ORC_DQF_ALIGN_CHECK(p, 2);
    memcpy(&v, p, 2);
    return v;
}
/* __byte_perm: result byte i is byte (s >> 4i) & 7 of b:a; with bit 3 of that
 * selector nibble set, the selected byte's sign bit replicated. */
ORC_DQF uint32_t orc_dqf_perm(uint32_t a, uint32_t b, uint32_t s) {
    const uint64_t x = ((uint64_t)b << 32) | a;
    uint32_t r = 0;
    for (int i = 0; i < 4; i++) {
        const uint32_t n = (s >> (4 * i)) & 0xFu;
        /* __byte_perm uses the low 3 bits of each selector nibble only (no sign
         * replication): emulate exactly that, so host tests see what the GPU does. */
        const uint32_t v = (uint32_t)(x >> (8 * (n & 7u))) & 0xFFu;
        r |= v << (8 * i);
    }
    return r;
}
/* __funnelshift_r: the low 32 bits of hi:lo >> (sh & 31). */
ORC_DQF uint32_t orc_dqf_shr64(uint32_t lo, uint32_t hi, uint32_t sh) {
    return (uint32_t)((((uint64_t)hi << 32) | lo) >> (sh & 31u));
}
ORC_DQF uint32_t orc_dqf_magic(void) { return 0x4B000000u; }
ORC_DQF float orc_dqf_h2f(uint32_t h) { return orc_qd_h2f((uint16_t)h); } /* x86 keeps NaN payloads: be exact */
#endif

/* Bytes p[0..3] / p[0..7] where p is 2-byte aligned: the aligned words around them,
 * funnel-shifted (reads up to 2 bytes before p and 4 after the field). */
ORC_DQF uint32_t orc_dqf_ld32a2(const uint8_t *p) {
    const uint32_t r = (uint32_t)((uintptr_t)p & 3u);
    const uint8_t *a = p - r;
    return orc_dqf_shr64(orc_dqf_ld32(a), orc_dqf_ld32(a + 4), 8u * r);
}
ORC_DQF void orc_dqf_ld64a2(const uint8_t *p, uint32_t *w0, uint32_t *w1) {
    const uint32_t r = (uint32_t)((uintptr_t)p & 3u);
    const uint8_t *a = p - r;
    const uint32_t x0 = orc_dqf_ld32(a), x1 = orc_dqf_ld32(a + 4), x2 = orc_dqf_ld32(a + 8);
    *w0 = orc_dqf_shr64(x0, x1, 8u * r);
    *w1 = orc_dqf_shr64(x1, x2, 8u * r);
}
ORC_DQF void orc_dqf_ld64(const uint8_t *p, uint32_t *w0, uint32_t *w1) { /* p 4-byte aligned */
    *w0 = orc_dqf_ld32(p);
    *w1 = orc_dqf_ld32(p + 4);
}

#define ORC_DQF_2P23 8388608.0f /* 2^23 */

/* Byte k (0..3) of x as a float minus `bias` (passed as 2^23 + bias): one PRMT builds
 * the float 2^23 + byte, one FADD subtracts. Exact for any byte and small bias. */
ORC_DQF float orc_dqf_bytef(uint32_t x, uint32_t k, float bias_2p23) {
    return ORC_FSUB(orc_qd_from_bits(orc_dqf_perm(x, orc_dqf_magic(), 0x7440u | k)), bias_2p23);
}

/* y[k] = d * (byte k of w - bias), k = 0..7 over the two words. */
ORC_DQF void orc_dqf_mul8(float d, uint32_t w0, uint32_t w1, float bias_2p23, float *y) {
    ORC_QD_UNROLL for (uint32_t k = 0; k < 4; k++) {
        y[k] = ORC_FMUL(d, orc_dqf_bytef(w0, k, bias_2p23));
        y[4 + k] = ORC_FMUL(d, orc_dqf_bytef(w1, k, bias_2p23));
    }
}
/* y[k] = d * byte + m  (gguf-py: (d * q) + m) */
ORC_DQF void orc_dqf_muladd8(float d, float m, uint32_t w0, uint32_t w1, float *y) {
    ORC_QD_UNROLL for (uint32_t k = 0; k < 4; k++) {
        y[k] = ORC_FADD(ORC_FMUL(d, orc_dqf_bytef(w0, k, ORC_DQF_2P23)), m);
        y[4 + k] = ORC_FADD(ORC_FMUL(d, orc_dqf_bytef(w1, k, ORC_DQF_2P23)), m);
    }
}
/* y[k] = d * byte - m  (gguf-py: d * q - m) */
ORC_DQF void orc_dqf_mulsub8(float d, float m, uint32_t w0, uint32_t w1, float *y) {
    ORC_QD_UNROLL for (uint32_t k = 0; k < 4; k++) {
        y[k] = ORC_FSUB(ORC_FMUL(d, orc_dqf_bytef(w0, k, ORC_DQF_2P23)), m);
        y[4 + k] = ORC_FSUB(ORC_FMUL(d, orc_dqf_bytef(w1, k, ORC_DQF_2P23)), m);
    }
}

/* The high bits of 4 elements: bits 0..3 of v to bit 4 of bytes 0..3. The product
 * v * (1<<4 | 1<<11 | 1<<18 | 1<<25) puts bit j of v at bit 8j+4 (and the other bits
 * at positions no mask bit and no other bit shares, so nothing carries). */
ORC_DQF uint32_t orc_dqf_bit4(uint32_t v) { return ((v & 0xFu) * 0x02040810u) & 0x10101010u; }

/* ---- legacy 32-element types ---------------------------------------------------- */

ORC_DQF void orc_dqf_q4_0(const uint8_t *b, uint32_t c, float *y) {
    const float d = orc_dqf_h2f(orc_dqf_ld16(b));
    const uint32_t sh = (c >> 1) * 4u;
    uint32_t w0, w1;
    orc_dqf_ld64a2(b + 2 + 8 * (c & 1u), &w0, &w1);
    orc_dqf_mul8(d, (w0 >> sh) & 0x0F0F0F0Fu, (w1 >> sh) & 0x0F0F0F0Fu, ORC_DQF_2P23 + 8.0f, y);
}

ORC_DQF void orc_dqf_q4_1(const uint8_t *b, uint32_t c, float *y) {
    const uint32_t dm = orc_dqf_ld32(b);
    const uint32_t sh = (c >> 1) * 4u;
    uint32_t w0, w1;
    orc_dqf_ld64(b + 4 + 8 * (c & 1u), &w0, &w1);
    orc_dqf_muladd8(orc_dqf_h2f(dm & 0xFFFFu), orc_dqf_h2f(dm >> 16), (w0 >> sh) & 0x0F0F0F0Fu,
                    (w1 >> sh) & 0x0F0F0F0Fu, y);
}

ORC_DQF void orc_dqf_q5_0(const uint8_t *b, uint32_t c, float *y) {
    const float d = orc_dqf_h2f(orc_dqf_ld16(b));
    const uint32_t qh = (orc_dqf_ld32a2(b + 2) >> (8 * c)) & 0xFFu;
    const uint32_t sh = (c >> 1) * 4u;
    uint32_t w0, w1;
    orc_dqf_ld64a2(b + 6 + 8 * (c & 1u), &w0, &w1);
    w0 = ((w0 >> sh) & 0x0F0F0F0Fu) | orc_dqf_bit4(qh);
    w1 = ((w1 >> sh) & 0x0F0F0F0Fu) | orc_dqf_bit4(qh >> 4);
    orc_dqf_mul8(d, w0, w1, ORC_DQF_2P23 + 16.0f, y);
}

ORC_DQF void orc_dqf_q5_1(const uint8_t *b, uint32_t c, float *y) {
    const uint32_t dm = orc_dqf_ld32(b);
    const uint32_t qh = (orc_dqf_ld32(b + 4) >> (8 * c)) & 0xFFu;
    const uint32_t sh = (c >> 1) * 4u;
    uint32_t w0, w1;
    orc_dqf_ld64(b + 8 + 8 * (c & 1u), &w0, &w1);
    w0 = ((w0 >> sh) & 0x0F0F0F0Fu) | orc_dqf_bit4(qh);
    w1 = ((w1 >> sh) & 0x0F0F0F0Fu) | orc_dqf_bit4(qh >> 4);
    orc_dqf_muladd8(orc_dqf_h2f(dm & 0xFFFFu), orc_dqf_h2f(dm >> 16), w0, w1, y);
}

/* Sixteen 4-bit indices' table entries, one byte each (one index per byte of x): T0..T3
 * hold entries 0..15, four per word. The low 3 bits of each index select within
 * entries 0..7 and 8..15 (PRMT looks up four bytes at once), bit 3 picks between the two. */
ORC_DQF uint32_t orc_dqf_lut16(uint32_t x, uint32_t t0, uint32_t t1, uint32_t t2, uint32_t t3) {
    const uint32_t t = x | (x >> 4);
    const uint32_t sel = orc_dqf_perm(t, 0, 0x4420u) & 0x7777u; /* index i in nibble i */
    const uint32_t lo = orc_dqf_perm(t0, t1, sel);
    const uint32_t hi = orc_dqf_perm(t2, t3, sel);
    const uint32_t m = ((x >> 3) & 0x01010101u) * 0xFFu; /* 0xFF where bit 3 of the index is set */
    return (hi & m) | (lo & ~m);
}

/* The 16 IQ4_NL levels as offset-binary bytes (level + 128), four to a word. */
#define ORC_DQF_IQ4_T0 0x3F2D1801u /* -127 -104  -83  -65 */
#define ORC_DQF_IQ4_T1 0x766A5D4Fu /*  -49  -35  -22  -10 */
#define ORC_DQF_IQ4_T2 0xA6998D81u /*    1   13   25   38 */
#define ORC_DQF_IQ4_T3 0xF1D9C5B5u /*   53   69   89  113 */

/* The doubled E2M1 values of MXFP4 (orc_kvalues_mxfp4) as offset-binary bytes (value + 128). */
#define ORC_DQF_MXFP4_T0 0x83828180u /*  0  1  2  3 */
#define ORC_DQF_MXFP4_T1 0x8C888684u /*  4  6  8 12 */
#define ORC_DQF_MXFP4_T2 0x7D7E7F80u /*  0 -1 -2 -3 */
#define ORC_DQF_MXFP4_T3 0x74787A7Cu /* -4 -6 -8 -12 */

/* Four IQ4_NL indices (one per byte of x) to their levels + 128, one per byte. */
ORC_DQF uint32_t orc_dqf_iq4_levels(uint32_t x) {
    return orc_dqf_lut16(x, ORC_DQF_IQ4_T0, ORC_DQF_IQ4_T1, ORC_DQF_IQ4_T2, ORC_DQF_IQ4_T3);
}
/* Four MXFP4 indices to their doubled E2M1 values + 128. */
ORC_DQF uint32_t orc_dqf_mxfp4_levels(uint32_t x) {
    return orc_dqf_lut16(x, ORC_DQF_MXFP4_T0, ORC_DQF_MXFP4_T1, ORC_DQF_MXFP4_T2, ORC_DQF_MXFP4_T3);
}

ORC_DQF void orc_dqf_iq4_nl(const uint8_t *b, uint32_t c, float *y) {
    const float d = orc_dqf_h2f(orc_dqf_ld16(b));
    const uint32_t sh = (c >> 1) * 4u;
    uint32_t w0, w1;
    orc_dqf_ld64a2(b + 2 + 8 * (c & 1u), &w0, &w1);
    orc_dqf_mul8(d, orc_dqf_iq4_levels((w0 >> sh) & 0x0F0F0F0Fu), orc_dqf_iq4_levels((w1 >> sh) & 0x0F0F0F0Fu),
                 ORC_DQF_2P23 + 128.0f, y);
}

/* ---- FP4 ------------------------------------------------------------------------ */

/* Bytes p[0..7] at any alignment: the three aligned words around them, funnel-shifted
 * (reads up to 3 bytes before p and 4 after the field). */
ORC_DQF void orc_dqf_ld64a1(const uint8_t *p, uint32_t *w0, uint32_t *w1) {
    const uint32_t r = (uint32_t)((uintptr_t)p & 3u);
    const uint8_t *a = p - r;
    const uint32_t x0 = orc_dqf_ld32(a), x1 = orc_dqf_ld32(a + 4), x2 = orc_dqf_ld32(a + 8);
    *w0 = orc_dqf_shr64(x0, x1, 8u * r);
    *w1 = orc_dqf_shr64(x1, x2, 8u * r);
}

/* MXFP4 (17-byte blocks: any alignment): d * kvalue, as orc_qd_mxfp4 multiplies them. */
ORC_DQF void orc_dqf_mxfp4(const uint8_t *b, uint32_t c, float *y) {
    const float d = orc_qd_e8m0_half(b[0]);
    const uint32_t sh = (c >> 1) * 4u;
    uint32_t w0, w1;
    orc_dqf_ld64a1(b + 1 + 8 * (c & 1u), &w0, &w1);
    orc_dqf_mul8(d, orc_dqf_mxfp4_levels((w0 >> sh) & 0x0F0F0F0Fu), orc_dqf_mxfp4_levels((w1 >> sh) & 0x0F0F0F0Fu),
                 ORC_DQF_2P23 + 128.0f, y);
}

/* ---- k-quants ------------------------------------------------------------------- */

ORC_DQF void orc_dqf_q2_K(const uint8_t *b, uint32_t c, float *y) {
    const uint32_t dd = orc_dqf_ld32(b + 80);
    const uint32_t sc = b[c >> 1];
    const float dl = ORC_FMUL(orc_dqf_h2f(dd & 0xFFFFu), (float)(sc & 0xFu));
    const float ml = ORC_FMUL(orc_dqf_h2f(dd >> 16), (float)(sc >> 4));
    const uint32_t sh = 2u * ((c >> 2) & 3u);
    uint32_t w0, w1;
    orc_dqf_ld64(b + 16 + 32 * (c >> 4) + 8 * (c & 3u), &w0, &w1);
    orc_dqf_mulsub8(dl, ml, (w0 >> sh) & 0x03030303u, (w1 >> sh) & 0x03030303u, y);
}

ORC_DQF void orc_dqf_q3_K(const uint8_t *b, uint32_t c, float *y) {
    const uint32_t s = c >> 1;
    const uint32_t lo = ((uint32_t)b[96 + (s & 7u)] >> (4 * (s >> 3))) & 0xFu;
    const uint32_t hi = ((uint32_t)b[104 + (s & 3u)] >> (2 * (s >> 2))) & 3u;
    const float dl = ORC_FMUL(orc_dqf_h2f(orc_dqf_ld16(b + 108)), (float)((int)(lo | (hi << 4)) - 32));
    const uint32_t sh = 2u * ((c >> 2) & 3u), hb = c >> 2;
    uint32_t q0, q1, h0, h1;
    orc_dqf_ld64a2(b + 32 + 32 * (c >> 4) + 8 * (c & 3u), &q0, &q1);
    orc_dqf_ld64a2(b + 8 * (c & 3u), &h0, &h1);
    /* q = low 2 bits - (high bit ? 0 : 4) = (low | high << 2) - 4 */
    q0 = ((q0 >> sh) & 0x03030303u) | (((h0 >> hb) << 2) & 0x04040404u);
    q1 = ((q1 >> sh) & 0x03030303u) | (((h1 >> hb) << 2) & 0x04040404u);
    orc_dqf_mul8(dl, q0, q1, ORC_DQF_2P23 + 4.0f, y);
}

/* Q4_K/Q5_K: the scale and min of sub-block s (orc_qd_scale_min_k4), as floats, for
 * all sub-blocks at once from the three words of the 12 scale bytes at q. */
ORC_DQF void orc_dqf_scale_min_k4(const uint8_t *q, uint32_t s, float *sc, float *m) {
    const uint32_t u0 = orc_dqf_ld32(q), u1 = orc_dqf_ld32(q + 4), u2 = orc_dqf_ld32(q + 8);
    const int first = s < 4;
    const uint32_t scw = first ? u0 & 0x3F3F3F3Fu : (u2 & 0x0F0F0F0Fu) | ((u0 >> 2) & 0x30303030u);
    const uint32_t mw = first ? u1 & 0x3F3F3F3Fu : ((u2 >> 4) & 0x0F0F0F0Fu) | ((u1 >> 2) & 0x30303030u);
    *sc = orc_dqf_bytef(scw, s & 3u, ORC_DQF_2P23);
    *m = orc_dqf_bytef(mw, s & 3u, ORC_DQF_2P23);
}

ORC_DQF void orc_dqf_q4_K(const uint8_t *b, uint32_t c, float *y) {
    const uint32_t s = c >> 2, dd = orc_dqf_ld32(b);
    float sc, m;
    orc_dqf_scale_min_k4(b + 4, s, &sc, &m);
    const float ds = ORC_FMUL(orc_dqf_h2f(dd & 0xFFFFu), sc);
    const float dm = ORC_FMUL(orc_dqf_h2f(dd >> 16), m);
    const uint32_t sh = 4u * (s & 1u);
    uint32_t w0, w1;
    orc_dqf_ld64(b + 16 + 32 * (s >> 1) + 8 * (c & 3u), &w0, &w1);
    orc_dqf_mulsub8(ds, dm, (w0 >> sh) & 0x0F0F0F0Fu, (w1 >> sh) & 0x0F0F0F0Fu, y);
}

ORC_DQF void orc_dqf_q5_K(const uint8_t *b, uint32_t c, float *y) {
    const uint32_t s = c >> 2, dd = orc_dqf_ld32(b);
    float sc, m;
    orc_dqf_scale_min_k4(b + 4, s, &sc, &m);
    const float ds = ORC_FMUL(orc_dqf_h2f(dd & 0xFFFFu), sc);
    const float dm = ORC_FMUL(orc_dqf_h2f(dd >> 16), m);
    const uint32_t sh = 4u * (s & 1u);
    uint32_t q0, q1, h0, h1;
    orc_dqf_ld64(b + 48 + 32 * (s >> 1) + 8 * (c & 3u), &q0, &q1);
    orc_dqf_ld64(b + 16 + 8 * (c & 3u), &h0, &h1);
    q0 = ((q0 >> sh) & 0x0F0F0F0Fu) | (((h0 >> s) << 4) & 0x10101010u);
    q1 = ((q1 >> sh) & 0x0F0F0F0Fu) | (((h1 >> s) << 4) & 0x10101010u);
    orc_dqf_mulsub8(ds, dm, q0, q1, y);
}

ORC_DQF void orc_dqf_q6_K(const uint8_t *b, uint32_t c, float *y) {
    const float ds = ORC_FMUL(orc_dqf_h2f(orc_dqf_ld16(b + 208)), (float)(int8_t)b[192 + (c >> 1)]);
    const uint32_t h = c >> 4, shl = 4u * ((c >> 3) & 1u), shh = 2u * ((c >> 2) & 3u);
    uint32_t l0, l1, h0, h1;
    orc_dqf_ld64a2(b + 64 * h + 8 * (c & 7u), &l0, &l1);
    orc_dqf_ld64a2(b + 128 + 32 * h + 8 * (c & 3u), &h0, &h1);
    l0 = ((l0 >> shl) & 0x0F0F0F0Fu) | (((h0 >> shh) << 4) & 0x30303030u);
    l1 = ((l1 >> shl) & 0x0F0F0F0Fu) | (((h1 >> shh) << 4) & 0x30303030u);
    orc_dqf_mul8(ds, l0, l1, ORC_DQF_2P23 + 32.0f, y);
}

ORC_DQF void orc_dqf_iq4_xs(const uint8_t *b, uint32_t c, float *y) {
    const uint32_t s = c >> 2, h = orc_dqf_ld32(b);
    const uint32_t lo = ((uint32_t)b[4 + (s >> 1)] >> (4 * (s & 1u))) & 0xFu;
    const uint32_t hi = (h >> (16 + 2 * s)) & 3u;
    const float dl = ORC_FMUL(orc_dqf_h2f(h & 0xFFFFu), (float)((int)(lo | (hi << 4)) - 32));
    const uint32_t sh = 4u * ((c >> 1) & 1u);
    uint32_t w0, w1;
    orc_dqf_ld64(b + 8 + 16 * s + 8 * (c & 1u), &w0, &w1);
    orc_dqf_mul8(dl, orc_dqf_iq4_levels((w0 >> sh) & 0x0F0F0F0Fu), orc_dqf_iq4_levels((w1 >> sh) & 0x0F0F0F0Fu),
                 ORC_DQF_2P23 + 128.0f, y);
}

/* ---- ternary types -------------------------------------------------------------- */

/* Trits of the four bytes of w for the multiplier m (orc_qd_tq1_0's
 * ((uint8)(x * m) * 3) >> 8), two bytes at a time in 16-bit lanes (x * m <= 255 * 81
 * and the masked product * 3 <= 765 never reach the next lane): *e holds the trits
 * of bytes 0 and 2 in its bytes 0 and 2, *o those of bytes 1 and 3. */
ORC_DQF void orc_dqf_trits(uint32_t w, uint32_t m, uint32_t *e, uint32_t *o) {
    *e = ((((orc_dqf_perm(w, 0, 0x4240u) * m) & 0x00FF00FFu) * 3u) >> 8);
    *o = ((((orc_dqf_perm(w, 0, 0x4341u) * m) & 0x00FF00FFu) * 3u) >> 8);
}

ORC_DQF void orc_dqf_tq1_0(const uint8_t *b, uint32_t c, float *y) {
    /* chunk c < 20: qs[8(c%4)..], digit c/4; c < 30: qs[32 + 8((c-20)%2)..], digit
     * (c-20)/2; c = 30, 31: qh[0..3] twice, digits 2(c-30) and 2(c-30)+1. */
    const uint32_t last = c >= 30, mid = (c >= 20) & !last, first = c < 20; /* 0 or 1: masks, not branches */
    const uint32_t off = ((0u - first) & (8u * (c & 3u))) | ((0u - mid) & (32u + 8u * (c & 1u))) | ((0u - last) & 48u);
    const uint32_t k = ((0u - first) & (c >> 2)) | ((0u - mid) & ((c - 20u) >> 1)) | ((0u - last) & (2u * (c & 1u)));
    const uint32_t m0 = orc_qd_pow3((int)k), m1 = orc_qd_pow3((int)(k + last));
    const float d = orc_dqf_h2f(orc_dqf_ld16(b + 52));
    uint32_t w0, w1, e0, o0, e1, o1;
    orc_dqf_ld64a2(b + off, &w0, &w1);
    w1 = last ? w0 : w1;
    orc_dqf_trits(w0, m0, &e0, &o0);
    orc_dqf_trits(w1, m1, &e1, &o1);
    const float one = ORC_DQF_2P23 + 1.0f; /* value = d * (trit - 1) */
    y[0] = ORC_FMUL(d, orc_dqf_bytef(e0, 0, one));
    y[1] = ORC_FMUL(d, orc_dqf_bytef(o0, 0, one));
    y[2] = ORC_FMUL(d, orc_dqf_bytef(e0, 2, one));
    y[3] = ORC_FMUL(d, orc_dqf_bytef(o0, 2, one));
    y[4] = ORC_FMUL(d, orc_dqf_bytef(e1, 0, one));
    y[5] = ORC_FMUL(d, orc_dqf_bytef(o1, 0, one));
    y[6] = ORC_FMUL(d, orc_dqf_bytef(e1, 2, one));
    y[7] = ORC_FMUL(d, orc_dqf_bytef(o1, 2, one));
}

ORC_DQF void orc_dqf_tq2_0(const uint8_t *b, uint32_t c, float *y) {
    const float d = orc_dqf_h2f(orc_dqf_ld16(b + 64));
    const uint32_t sh = 2u * ((c >> 2) & 3u);
    uint32_t w0, w1;
    orc_dqf_ld64a2(b + 32 * (c >> 4) + 8 * (c & 3u), &w0, &w1);
    orc_dqf_mul8(d, (w0 >> sh) & 0x03030303u, (w1 >> sh) & 0x03030303u, ORC_DQF_2P23 + 1.0f, y);
}

/* Every type with a decoder here: X(NAME, fn), NAME as in ORC_QD_FOREACH_BLOCK_TYPE. */
#define ORC_DQF_FOREACH(X)      \
    X(Q4_0, orc_dqf_q4_0)       \
    X(Q4_1, orc_dqf_q4_1)       \
    X(Q5_0, orc_dqf_q5_0)       \
    X(Q5_1, orc_dqf_q5_1)       \
    X(IQ4_NL, orc_dqf_iq4_nl)   \
    X(MXFP4, orc_dqf_mxfp4)     \
    X(Q2_K, orc_dqf_q2_K)       \
    X(Q3_K, orc_dqf_q3_K)       \
    X(Q4_K, orc_dqf_q4_K)       \
    X(Q5_K, orc_dqf_q5_K)       \
    X(Q6_K, orc_dqf_q6_K)       \
    X(IQ4_XS, orc_dqf_iq4_xs)   \
    X(TQ1_0, orc_dqf_tq1_0)     \
    X(TQ2_0, orc_dqf_tq2_0)

#endif /* ORC_DEQUANT_FAST_CUH */
