/* test_gemv_decode.cpp - the GEMV kernels' weight decoders (cuda/gemv/gemv_decode.cuh)
 * against the shared decoders (csrc/quant/quant_decode.h, i.e. orc.dequantize), on the
 * host: every group of every lane unit of random blocks with finite scales (values must
 * be equal: the GEMV must see exactly orc's weights), of fully random bytes (NaN and inf
 * scales: a non-finite reference needs a non-finite result, a finite one equality), and
 * of all-zero / all-0xFF blocks. Each block is placed at every start offset modulo 16 that
 * a block of its type can have (multiples of Q::A), inside a 16-byte aligned buffer, and
 * every load's alignment is checked. It also checks each type's column map: the groups of
 * a block's LUs must cover its columns exactly once. Compiled and run by
 * tests/test_gpu_kernels.py; prints "ok" or the first mismatches. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int misaligned;
#define ORC_DQF_ALIGN_CHECK(p, a) (misaligned += ((uintptr_t)(p) % (a)) != 0)
#include "../../cuda/gemv/gemv_decode.cuh"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) { /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

/* A finite half of magnitude 2^-14 .. 2^6 (random sign), as bits. */
static uint16_t finite_half(void) {
    const uint32_t e = 1 + (uint32_t)(rnd() % 20); /* biased exponent 1..20 */
    return (uint16_t)(((rnd() & 1) << 15) | (e << 10) | (rnd() & 0x3ff));
}

static void put16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

/* Overwrite the f16 scale fields of one block with finite values (MXFP4: a moderate E8M0). */
static void finite_scales(const char *name, uint8_t *b) {
    static const struct {
        const char *name;
        int off[2], n;
    } f[] = {{"Q4_0", {0, 0}, 1},   {"Q4_1", {0, 2}, 2},   {"Q5_0", {0, 0}, 1}, {"Q5_1", {0, 2}, 2},
             {"Q8_0", {0, 0}, 1},   {"IQ4_NL", {0, 0}, 1}, {"Q2_K", {80, 82}, 2}, {"Q3_K", {108, 0}, 1},
             {"Q4_K", {0, 2}, 2},   {"Q5_K", {0, 2}, 2},   {"Q6_K", {208, 0}, 1}, {"IQ4_XS", {0, 0}, 1}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (!strcmp(f[i].name, name))
            for (int k = 0; k < f[i].n; k++) put16(b + f[i].off[k], finite_half());
    if (!strcmp(name, "MXFP4")) b[0] = (uint8_t)(100 + rnd() % 40);
    if (!strcmp(name, "F16"))
        for (int i = 0; i < 16; i++) put16(b + 2 * i, finite_half());
    if (!strcmp(name, "BF16")) /* exponent 96..159 */
        for (int i = 0; i < 16; i++) put16(b + 2 * i, (uint16_t)(((rnd() & 1) << 15) | ((96 + rnd() % 64) << 7) | (rnd() & 0x7f)));
    if (!strcmp(name, "F32"))
        for (int i = 0; i < 8; i++) {
            const uint32_t v = (uint32_t)(((rnd() & 1) << 31) | ((96 + rnd() % 64) << 23) | (rnd() & 0x7fffff));
            memcpy(b + 4 * i, &v, 4);
        }
}

typedef void (*ref_fn)(const uint8_t *, int, float *);

static void ref_f16(const uint8_t *b, int c, float *y) {
    for (int k = 0; k < 8; k++) y[k] = orc_qd_h2f((uint16_t)orc_qd_rd16(b + 2 * (8 * c + k)));
}
static void ref_bf16(const uint8_t *b, int c, float *y) {
    for (int k = 0; k < 8; k++) y[k] = orc_qd_bf2f((uint16_t)orc_qd_rd16(b + 2 * (8 * c + k)));
}
static void ref_f32(const uint8_t *b, int c, float *y) {
    for (int k = 0; k < 8; k++) y[k] = orc_qd_from_bits(orc_qd_rd32(b + 4 * (8 * c + k)));
}

alignas(16) static uint8_t buf[512];
static int failures;

static int same(float want, float got, bool finite_only) {
    if (isfinite(want)) return want == got; /* == : +0 and -0 are the same weight */
    if (finite_only) return 0;
    return !isfinite(got);
}

/* The factored and integer forms' members, where a type has them. */
ORC_GV_FLAG(has_fact, FACT)
ORC_GV_FLAG(has_qi, QI)

/* Factored (finite blocks): sub_scale(k) * group_q - sub_min(k) is the weight, in one rounding as
 * group's (Q4_K: ds * q exact; the others have no min). Integer form: group_qi's bytes less
 * QI_OFF are group_q's values, and groups 4m..4m+3 are 16 consecutive columns from a multiple of 16. */
template <class Q>
static void check_forms(const char *name, const uint8_t *b, const float *want, int off, const char *what) {
    if constexpr (has_fact<Q>::value) {
        for (int p = 0; p < Q::LPB; p++) {
            typename Q::st s;
            Q::prepare(s, b, p);
            for (int g = 0; g < Q::G; g++) {
                const int k = g / (Q::G / Q::NSUB);
                const orc_gv_f4 v = Q::group_q(s, g);
                const float q[4] = {v.x, v.y, v.z, v.w};
                uint32_t qi = 0;
                if constexpr (has_qi<Q>::value) qi = Q::group_qi(s, g);
                for (int i = 0; i < 4; i++) {
                    const float w = fmaf(Q::sub_scale(s, k), q[i], -Q::sub_min(s, k));
                    const int col = Q::col(p, g) + i;
                    bool ok = w == want[col];
                    if constexpr (has_qi<Q>::value) {
                        const uint32_t byte = (qi >> (8 * i)) & 0xFFu;
                        const int iv = Q::QI_U8 ? (int)byte : (int)(int8_t)(uint8_t)byte;
                        ok = ok && (float)(iv - (int)Q::QI_OFF) == q[i];
                        ok = ok && Q::col(p, g) == Q::col(p, g & ~3) + 4 * (g & 3) && Q::col(p, g & ~3) % 16 == 0;
                    }
                    if (!ok) {
                        if (failures < 10)
                            printf("%s %s offset %d: LU %d group %d column %d: factored / integer form %g, want %g\n",
                                   name, what, off, p, g, col, (double)w, (double)want[col]);
                        failures++;
                    }
                }
            }
        }
    }
}

/* Check every group of every LU of the block at buf + off against ref. */
template <class Q>
static void check_block(const char *name, ref_fn ref, int off, const char *what, bool finite) {
    const uint8_t *b = buf + off;
    float want[Q::BS];
    for (int c = 0; c < Q::BS / 8; c++) ref(b, c, want + 8 * c);
    if (finite)
        for (int i = 0; i < Q::BS; i++)
            if (!isfinite(want[i])) {
                printf("%s %s: reference not finite at %d (test data bad)\n", name, what, i);
                failures++;
                return;
            }
    if (finite) check_forms<Q>(name, b, want, off, what);
    for (int p = 0; p < Q::LPB; p++) {
        typename Q::st s;
        Q::prepare(s, b, p);
        for (int g = 0; g < Q::G; g++) {
            const orc_gv_f4 v = Q::group(s, g);
            const float got[4] = {v.x, v.y, v.z, v.w};
            const int col = Q::col(p, g);
            for (int k = 0; k < 4; k++)
                if (!same(want[col + k], got[k], finite)) {
                    if (failures < 10) {
                        uint32_t wb, gb;
                        memcpy(&wb, &want[col + k], 4);
                        memcpy(&gb, &got[k], 4);
                        printf("%s %s offset %d: LU %d group %d column %d: want %08x (%g) got %08x (%g)\n", name, what,
                               off, p, g, col + k, (unsigned)wb, (double)want[col + k], (unsigned)gb, (double)got[k]);
                    }
                    failures++;
                }
        }
    }
}

template <class Q>
static void check_type(const char *name, ref_fn ref) {
    /* the column map covers each column of the block once */
    int seen[256] = {0};
    for (int p = 0; p < Q::LPB; p++)
        for (int g = 0; g < Q::G; g++)
            for (int k = 0; k < 4; k++) {
                const int c = Q::col(p, g) + k;
                if (c < 0 || c >= Q::BS || Q::col(p, g) % 4 != 0) {
                    printf("%s: column map LU %d group %d -> %d out of range\n", name, p, g, c);
                    failures++;
                } else {
                    seen[c]++;
                }
            }
    for (int c = 0; c < Q::BS; c++)
        if (seen[c] != 1) {
            printf("%s: column %d covered %d times\n", name, c, seen[c]);
            failures++;
        }
    if (Q::BS != Q::E * Q::LPB || Q::G * 4 != Q::E || Q::TS % Q::A != 0 || 16 % Q::A != 0) {
        printf("%s: inconsistent constants\n", name);
        failures++;
    }
    for (int off = 0; off < 16; off += Q::A) {
        for (int rep = 0; rep < 300; rep++) {
            for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)(rnd() >> 56);
            const bool fin = rep % 2 == 0;
            if (fin) finite_scales(name, buf + off);
            check_block<Q>(name, ref, off, fin ? "finite scales" : "random bytes", fin);
        }
        memset(buf, 0, sizeof buf);
        check_block<Q>(name, ref, off, "zero block", false);
        memset(buf, 0xFF, sizeof buf);
        check_block<Q>(name, ref, off, "0xFF block", false);
    }
}

int main(void) {
    check_type<orc_gv_Q4_0>("Q4_0", orc_qd_q4_0);
    check_type<orc_gv_Q4_1>("Q4_1", orc_qd_q4_1);
    check_type<orc_gv_Q5_0>("Q5_0", orc_qd_q5_0);
    check_type<orc_gv_Q5_1>("Q5_1", orc_qd_q5_1);
    check_type<orc_gv_Q8_0>("Q8_0", orc_qd_q8_0);
    check_type<orc_gv_IQ4_NL>("IQ4_NL", orc_qd_iq4_nl);
    check_type<orc_gv_MXFP4>("MXFP4", orc_qd_mxfp4);
    check_type<orc_gv_Q2_K>("Q2_K", orc_qd_q2_K);
    check_type<orc_gv_Q3_K>("Q3_K", orc_qd_q3_K);
    check_type<orc_gv_Q4_K>("Q4_K", orc_qd_q4_K);
    check_type<orc_gv_Q5_K>("Q5_K", orc_qd_q5_K);
    check_type<orc_gv_Q6_K>("Q6_K", orc_qd_q6_K);
    check_type<orc_gv_IQ4_XS>("IQ4_XS", orc_qd_iq4_xs);
    check_type<orc_gv_F16>("F16", ref_f16);
    check_type<orc_gv_BF16>("BF16", ref_bf16);
    check_type<orc_gv_F32>("F32", ref_f32);
    if (misaligned) {
        printf("%d misaligned loads\n", misaligned);
        failures++;
    }
    if (failures) {
        printf("%d failures\n", failures);
        return 1;
    }
    printf("ok\n");
    return 0;
}
