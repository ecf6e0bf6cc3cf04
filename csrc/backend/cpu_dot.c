/* cpu_dot.c - see cpu_dot.h.
 *
 * The float32 dot product keeps four accumulators of eight lanes: elements i..i+7 of each
 * run of 32 go to s0, i+8.. to s1, i+16.. to s2, i+24.. to s3, and the lanes are summed in
 * one fixed tree at the end. A block decoder here turns 32 consecutive elements of a block
 * (a "group": a whole Q4_0 block, one of the eight sub-blocks of a k-quant) into four
 * vectors of eight floats with the scalar decoder's operations (quant/quant_decode.h: the
 * same multiplies and adds, each rounded on its own), so multiplying them straight into
 * s0..s3 gives the very sums orc_cpu_dot gives on the dequantized row.
 *
 * orc_cpu_dot is built twice (GCC vector extensions: AVX2 and the baseline, the same IEEE
 * operations lane by lane, so the same bits). The block decoders are AVX2 intrinsics, used
 * when the CPU has AVX2; elsewhere rows are dequantized by quant.c and go through
 * orc_cpu_dot, which gives the same numbers. C11 without -ffast-math never contracts
 * a * b + c into an FMA, and no function here enables FMA.
 */
#include "backend/cpu_dot.h"

#include <string.h>

#include "gguf/ggml_types.h"
#include "quant/quant_decode.h"

/* The helpers below pass 32-byte vectors by value; all are always_inline, so no call with
 * the baseline ABI ever passes one (GCC still warns at each definition). */
#pragma GCC diagnostic ignored "-Wpsabi"

typedef float v8f __attribute__((vector_size(32)));

#define CLONES __attribute__((target_clones("avx2", "default")))
#define INLINE static inline __attribute__((always_inline))

INLINE v8f ld8f(const float *p) {
    v8f v;
    memcpy(&v, p, sizeof v);
    return v;
}

CLONES float orc_cpu_dot(const float *a, const float *b, int64_t n) {
    v8f s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 += ld8f(a + i) * ld8f(b + i);
        s1 += ld8f(a + i + 8) * ld8f(b + i + 8);
        s2 += ld8f(a + i + 16) * ld8f(b + i + 16);
        s3 += ld8f(a + i + 24) * ld8f(b + i + 24);
    }
    /* The lane sums, in the one order every product here uses (reduce8 below repeats it). */
    const v8f t = (s0 + s1) + (s2 + s3);
    float r = ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
    for (; i < n; i++) r += a[i] * b[i];
    return r;
}

/* ------------------------------------------------------------------ AVX2 block decoders */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,f16c"), always_inline)) static inline
#define AVX2_FN __attribute__((target("avx2,f16c"))) static

/* A block's float16 scale: the hardware conversion (exact for every half, subnormals too);
 * a NaN, whose payload the hardware would quiet, takes quant_decode.h's bit path. */
AVX2 float half(const uint8_t *p) {
    const uint16_t h = (uint16_t)orc_qd_rd16(p);
    return (h & 0x7fffu) > 0x7c00u ? orc_qd_h2f(h) : _cvtsh_ss(h);
}

/* 8 bytes at p widened to 32-bit lanes (x86 has no byte shifts: nibbles are cut there). */
AVX2 __m256i u8x8(const uint8_t *p) { return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p)); }
AVX2 __m256i i8x8(const uint8_t *p) { return _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)); }
AVX2 __m256 cvt(__m256i v) { return _mm256_cvtepi32_ps(v); }
AVX2 __m256 bcast(float f) { return _mm256_set1_ps(f); }
AVX2 __m256i srl(__m256i v, int n) { return _mm256_srl_epi32(v, _mm_cvtsi32_si128(n)); }
AVX2 __m256i and_(__m256i v, int m) { return _mm256_and_si256(v, _mm256_set1_epi32(m)); }

/* g_<type>(b, g, w): elements 32g..32g+31 of the block at b into w[0..3], each line the
 * scalar decoder of the same name in quant_decode.h (its operations in its order), 8 lanes at a time. */

/* 4-bit nibbles of a 32-element block: element j < 16 is qs[j] & 0xF, j >= 16 qs[j-16] >> 4. */
AVX2 void nibbles32(const uint8_t *qs, __m256i q[4]) {
    const __m256i a = u8x8(qs), b = u8x8(qs + 8);
    q[0] = and_(a, 15);
    q[1] = and_(b, 15);
    q[2] = _mm256_srli_epi32(a, 4);
    q[3] = _mm256_srli_epi32(b, 4);
}

AVX2 void g_q4_0(const uint8_t *b, int g, __m256 w[4]) { /* d * (q - 8) */
    const __m256 d = bcast(half(b));
    __m256i q[4];
    nibbles32(b + 2, q);
    for (int c = 0; c < 4; c++) w[c] = _mm256_mul_ps(d, cvt(_mm256_sub_epi32(q[c], _mm256_set1_epi32(8))));
}

AVX2 void g_q4_1(const uint8_t *b, int g, __m256 w[4]) { /* d * q + m */
    const __m256 d = bcast(half(b)), m = bcast(half(b + 2));
    __m256i q[4];
    nibbles32(b + 4, q);
    for (int c = 0; c < 4; c++) w[c] = _mm256_add_ps(_mm256_mul_ps(d, cvt(q[c])), m);
}

/* The fifth bits of a Q5_0/Q5_1 block: bit j of qh for element j (of chunk c), as 0 or 16. */
AVX2 __m256i fifth_bits(uint32_t qh, int c) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i bits = _mm256_srlv_epi32(_mm256_set1_epi32((int)(qh >> (8 * c))), lane);
    return _mm256_slli_epi32(and_(bits, 1), 4);
}

AVX2 void g_q5_0(const uint8_t *b, int g, __m256 w[4]) { /* d * (q - 16) */
    const __m256 d = bcast(half(b));
    const uint32_t qh = orc_qd_rd32(b + 2);
    __m256i q[4];
    nibbles32(b + 6, q);
    for (int c = 0; c < 4; c++)
        w[c] = _mm256_mul_ps(d, cvt(_mm256_sub_epi32(_mm256_or_si256(q[c], fifth_bits(qh, c)), _mm256_set1_epi32(16))));
}

AVX2 void g_q5_1(const uint8_t *b, int g, __m256 w[4]) { /* d * q + m */
    const __m256 d = bcast(half(b)), m = bcast(half(b + 2));
    const uint32_t qh = orc_qd_rd32(b + 4);
    __m256i q[4];
    nibbles32(b + 8, q);
    for (int c = 0; c < 4; c++) w[c] = _mm256_add_ps(_mm256_mul_ps(d, cvt(_mm256_or_si256(q[c], fifth_bits(qh, c)))), m);
}

AVX2 void g_q8_0(const uint8_t *b, int g, __m256 w[4]) { /* q * d */
    const __m256 d = bcast(half(b));
    for (int c = 0; c < 4; c++) w[c] = _mm256_mul_ps(cvt(i8x8(b + 2 + 8 * c)), d);
}

AVX2 void g_q4_K(const uint8_t *b, int g, __m256 w[4]) { /* (d * sc) * q - dmin * m, sub-block g */
    int sc, m;
    orc_qd_scale_min_k4(b + 4, g, &sc, &m);
    const __m256 ds = bcast(half(b) * (float)sc), dm = bcast(half(b + 2) * (float)m);
    const uint8_t *qs = b + 16 + 32 * (g / 2);
    const int sh = 4 * (g % 2);
    for (int c = 0; c < 4; c++) w[c] = _mm256_sub_ps(_mm256_mul_ps(ds, cvt(and_(srl(u8x8(qs + 8 * c), sh), 15))), dm);
}

AVX2 void g_q5_K(const uint8_t *b, int g, __m256 w[4]) { /* as Q4_K, fifth bit (qh[j] >> g) & 1 */
    int sc, m;
    orc_qd_scale_min_k4(b + 4, g, &sc, &m);
    const __m256 ds = bcast(half(b) * (float)sc), dm = bcast(half(b + 2) * (float)m);
    const uint8_t *qs = b + 48 + 32 * (g / 2), *qh = b + 16;
    const int sh = 4 * (g % 2);
    for (int c = 0; c < 4; c++) {
        const __m256i q = _mm256_or_si256(and_(srl(u8x8(qs + 8 * c), sh), 15),
                                          _mm256_slli_epi32(and_(srl(u8x8(qh + 8 * c), g), 1), 4));
        w[c] = _mm256_sub_ps(_mm256_mul_ps(ds, cvt(q)), dm);
    }
}

AVX2 void g_q6_K(const uint8_t *b, int g, __m256 w[4]) { /* (d * scales[j/16]) * (q - 32) */
    const int h = g / 4, r = g % 4;
    const float d = half(b + 208);
    const uint8_t *ql = b + 64 * h + 32 * (r % 2), *qh = b + 128 + 32 * h;
    const int shl = 4 * (r / 2), shh = 2 * r;
    for (int c = 0; c < 4; c++) {
        const __m256 ds = bcast(d * (float)(int8_t)b[192 + 2 * g + c / 2]);
        const __m256i q = _mm256_or_si256(and_(srl(u8x8(ql + 8 * c), shl), 15),
                                          _mm256_slli_epi32(and_(srl(u8x8(qh + 8 * c), shh), 3), 4));
        w[c] = _mm256_mul_ps(ds, cvt(_mm256_sub_epi32(q, _mm256_set1_epi32(32))));
    }
}

/* d * table[nibble] for a 32-element block of 4-bit indices into 16 int8 levels: the lookup is
 * a byte shuffle; the nibbles are cut with 16-bit shifts. */
AVX2 void levels32(float d, const uint8_t *qs, const int8_t *table, __m256 w[4]) {
    const __m128i t = _mm_loadu_si128((const __m128i *)table), q = _mm_loadu_si128((const __m128i *)qs);
    const __m128i m = _mm_set1_epi8(15);
    const __m128i lo = _mm_shuffle_epi8(t, _mm_and_si128(q, m));
    const __m128i hi = _mm_shuffle_epi8(t, _mm_and_si128(_mm_srli_epi16(q, 4), m));
    const __m256 dv = bcast(d);
    w[0] = _mm256_mul_ps(dv, cvt(_mm256_cvtepi8_epi32(lo)));
    w[1] = _mm256_mul_ps(dv, cvt(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8))));
    w[2] = _mm256_mul_ps(dv, cvt(_mm256_cvtepi8_epi32(hi)));
    w[3] = _mm256_mul_ps(dv, cvt(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8))));
}

AVX2 void g_iq4_nl(const uint8_t *b, int g, __m256 w[4]) { levels32(half(b), b + 2, orc_kvalues_iq4nl, w); }

AVX2 void g_mxfp4(const uint8_t *b, int g, __m256 w[4]) { levels32(orc_qd_e8m0_half(b[0]), b + 1, orc_kvalues_mxfp4, w); }

/* The lane sums of orc_cpu_dot, in its order, on the same four accumulators. */
AVX2 float reduce8(__m256 s0, __m256 s1, __m256 s2, __m256 s3) {
    float l[8];
    _mm256_storeu_ps(l, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}

/* The block sizes and bytes of quant_decode.h's list, as constants: BS_Q4_0, TS_Q4_0, ... */
#define ORC_CPU_SIZES(NAME, fn, BS, TS) enum { BS_##NAME = BS, TS_##NAME = TS };
ORC_QD_FOREACH_BLOCK_TYPE(ORC_CPU_SIZES)
#undef ORC_CPU_SIZES

/* The types with a group decoder g_<t> above: X(NAME, t). */
#define ORC_CPU_QTYPES(X) \
    X(Q4_0, q4_0)         \
    X(Q4_1, q4_1)         \
    X(Q5_0, q5_0)         \
    X(Q5_1, q5_1)         \
    X(Q8_0, q8_0)         \
    X(Q4_K, q4_K)         \
    X(Q5_K, q5_K)         \
    X(Q6_K, q6_K)         \
    X(IQ4_NL, iq4_nl)     \
    X(MXFP4, mxfp4)

/* Per type: the product (groups multiplied straight into orc_cpu_dot's accumulators: x * w,
 * elements i..i+7 of each 32 into s0, and so on) and the row decoder. */
#define ORC_CPU_QDOT(NAME, t)                                                       \
    AVX2_FN float qdot_##t(const uint8_t *row, const float *x, int64_t n) {         \
        __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;                  \
        for (int64_t i = 0; i < n; row += TS_##NAME)                                 \
            for (int g = 0; g < BS_##NAME / 32; g++, i += 32) {                      \
                __m256 w[4];                                                         \
                g_##t(row, g, w);                                                    \
                s0 = _mm256_add_ps(s0, _mm256_mul_ps(_mm256_loadu_ps(x + i), w[0]));      \
                s1 = _mm256_add_ps(s1, _mm256_mul_ps(_mm256_loadu_ps(x + i + 8), w[1]));  \
                s2 = _mm256_add_ps(s2, _mm256_mul_ps(_mm256_loadu_ps(x + i + 16), w[2])); \
                s3 = _mm256_add_ps(s3, _mm256_mul_ps(_mm256_loadu_ps(x + i + 24), w[3])); \
            }                                                                        \
        return reduce8(s0, s1, s2, s3);                                              \
    }                                                                                \
    AVX2_FN void qrow_##t(const uint8_t *row, int64_t n, float *out) {              \
        for (int64_t i = 0; i < n; row += TS_##NAME)                                 \
            for (int g = 0; g < BS_##NAME / 32; g++, i += 32) {                      \
                __m256 w[4];                                                         \
                g_##t(row, g, w);                                                    \
                for (int c = 0; c < 4; c++) _mm256_storeu_ps(out + i + 8 * c, w[c]); \
            }                                                                        \
    }
ORC_CPU_QTYPES(ORC_CPU_QDOT)

static bool have_avx2(void) /* and F16C, which every AVX2 CPU has */ {
    static int known = -1; /* a benign race: every thread computes the same answer */
    if (known < 0) known = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c") ? 1 : 0;
    return known == 1;
}

bool orc_cpu_qrow_vectorized(int32_t type) {
    if (!have_avx2()) return false;
    switch (type) {
#define ORC_CPU_CASE(NAME, t) case ORC_TYPE_##NAME:
        ORC_CPU_QTYPES(ORC_CPU_CASE)
#undef ORC_CPU_CASE
        return true;
    default: return false;
    }
}

float orc_cpu_qdot(int32_t type, const uint8_t *row, const float *x, int64_t n) {
    switch (type) {
#define ORC_CPU_CASE(NAME, t) \
    case ORC_TYPE_##NAME: return qdot_##t(row, x, n);
        ORC_CPU_QTYPES(ORC_CPU_CASE)
#undef ORC_CPU_CASE
    default: return __builtin_nanf("");
    }
}

void orc_cpu_qrow_f32(int32_t type, const uint8_t *row, int64_t n, float *out) {
    switch (type) {
#define ORC_CPU_CASE(NAME, t) \
    case ORC_TYPE_##NAME: qrow_##t(row, n, out); return;
        ORC_CPU_QTYPES(ORC_CPU_CASE)
#undef ORC_CPU_CASE
    default:
        for (int64_t i = 0; i < n; i++) out[i] = __builtin_nanf("");
    }
}

#else /* not x86-64: quant.c dequantizes, orc_cpu_dot multiplies */
bool orc_cpu_qrow_vectorized(int32_t type) { return false; }
float orc_cpu_qdot(int32_t type, const uint8_t *row, const float *x, int64_t n) { return __builtin_nanf(""); }
void orc_cpu_qrow_f32(int32_t type, const uint8_t *row, int64_t n, float *out) {
    for (int64_t i = 0; i < n; i++) out[i] = __builtin_nanf("");
}
#endif
