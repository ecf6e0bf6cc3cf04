/* quant.c - CPU dequantization (quant.h): argument checks, the per-type block loops
 * over the shared decoders of quant_decode.h (where every block layout is
 * documented), float16/bfloat16 output, and a threaded driver for large tensors.
 *
 * Compiled as C11 without -ffast-math: every float operation rounds on its own,
 * which is what makes the results bit-identical to gguf-py's NumPy arithmetic. */
#include "quant/quant.h"

#include <pthread.h>  /* pthread_create, pthread_join */
#include <string.h>   /* memcpy */
#include <unistd.h>   /* sysconf */

#include "gguf/ggml_types.h"    /* ORC_TYPE_*, orc_type_traits_get, orc_type_name */
#include "quant/quant_decode.h"  /* block layouts and decoders */

/* gcc contracts a*b+c into an FMA only in GNU modes on FMA hardware; ISO C11
 * (setup.py's -std=c11) means -ffp-contract=off. */
#if defined(__FAST_MATH__) || (defined(__FP_FAST_FMAF) && !defined(__STRICT_ANSI__))
#error "quant.c must be built with -std=c11 (no FMA contraction) and without -ffast-math: results must match gguf-py bit for bit"
#endif

float orc_f16_to_f32(uint16_t h) { return orc_qd_h2f(h); }
uint16_t orc_f32_to_f16(float f) { return orc_qd_f2h(f); }
float orc_bf16_to_f32(uint16_t h) { return orc_qd_bf2f(h); }
uint16_t orc_f32_to_bf16(float f) { return orc_qd_f2bf(f); }

/* ---- per-type block loops ------------------------------------------------------ */

typedef void (*orc_quant_blocks_fn)(const uint8_t *src, int64_t nblocks, float *dst);

/* One loop per type, so the decoder inlines into it (no indirect call per chunk);
 * the chunk loop unrolls, so per-block work (scales) is shared between chunks. */
#define ORC_QUANT_DEFINE_BLOCKS(NAME, FN, BS, TS)                                                        \
    static void orc_quant_blocks_##NAME(const uint8_t *restrict src, int64_t nb, float *restrict dst) { \
        for (int64_t i = 0; i < nb; i++) {                                                                \
            _Pragma("GCC unroll 32") for (int c = 0; c < (BS) / 8; c++)                                   \
                FN(src + i * (TS), c, dst + i * (BS) + 8 * c);                                            \
        }                                                                                                 \
    }
ORC_QD_FOREACH_BLOCK_TYPE(ORC_QUANT_DEFINE_BLOCKS)
#undef ORC_QUANT_DEFINE_BLOCKS

typedef struct orc_quant_kind {
    int32_t block_size, type_size;
    orc_quant_blocks_fn fn; /* NULL for F32/F16/BF16 */
} orc_quant_kind;

/* The decoder of `type`, or false if orc has none. */
static bool orc_quant_kind_get(int32_t type, orc_quant_kind *k) {
    switch (type) {
    case ORC_TYPE_F32: *k = (orc_quant_kind){1, 4, NULL}; return true;
    case ORC_TYPE_F16:
    case ORC_TYPE_BF16: *k = (orc_quant_kind){1, 2, NULL}; return true;
#define ORC_QUANT_CASE(NAME, FN, BS, TS) \
    case ORC_TYPE_##NAME: *k = (orc_quant_kind){BS, TS, orc_quant_blocks_##NAME}; return true;
        ORC_QD_FOREACH_BLOCK_TYPE(ORC_QUANT_CASE)
#undef ORC_QUANT_CASE
    default: return false;
    }
}

bool orc_quant_supported(int32_t type) {
    orc_quant_kind k;
    return orc_quant_kind_get(type, &k);
}

orc_status orc_quant_validate(int32_t type, uint64_t src_bytes, int64_t n, orc_dtype dtype, orc_err *err) {
    char buf[64];
    orc_quant_kind k;
    if (!orc_quant_kind_get(type, &k)) {
        const orc_type_traits *t = orc_type_traits_get(type);
        if (t)
            return orc_fail(err, ORC_E_UNSUPPORTED, "orc cannot dequantize ggml type %s (id %d)", t->name, (int)type);
        return orc_fail(err, ORC_E_UNSUPPORTED, "cannot dequantize %s: not a ggml type orc knows",
                        orc_type_name(type, buf, sizeof buf));
    }
    const char *name = orc_type_name(type, buf, sizeof buf);
    if (dtype != ORC_DTYPE_F32 && dtype != ORC_DTYPE_F16 && dtype != ORC_DTYPE_BF16)
        return orc_fail(err, ORC_E_INVALID, "dequantizing %s: invalid output dtype %d", name, (int)dtype);
    if (n < 0) return orc_fail(err, ORC_E_INVALID, "dequantizing %s: negative element count %lld", name, (long long)n);
    if (n % k.block_size != 0)
        return orc_fail(err, ORC_E_INVALID, "dequantizing %s: %lld elements is not a multiple of its block size %d",
                        name, (long long)n, (int)k.block_size);
    uint64_t want;
    if (orc_mul_overflow_u64((uint64_t)(n / k.block_size), (uint64_t)k.type_size, &want))
        return orc_fail(err, ORC_E_INVALID, "dequantizing %s: the byte size of %lld elements overflows", name,
                        (long long)n);
    if (want != src_bytes)
        return orc_fail(err, ORC_E_INVALID,
                        "dequantizing %s: %lld elements take %llu bytes (%d-element blocks of %d bytes), got %llu bytes",
                        name, (long long)n, (unsigned long long)want, (int)k.block_size, (int)k.type_size,
                        (unsigned long long)src_bytes);
    return ORC_OK;
}

/* ---- the work on one range of blocks -------------------------------------------- */

/* float -> half for a group of 8: the common cases (zero, normal halves) without
 * branches, so gcc can vectorize; anything else (subnormal halves, overflow, inf,
 * NaN) goes through orc_qd_f2h. Same bits as orc_qd_f2h for every input. */
static void orc_quant_f2h_8(const float *y, uint16_t *o) {
    uint32_t u[8], r[8], sp[8], special = 0;
    memcpy(u, y, sizeof u);
    for (int i = 0; i < 8; i++) {
        uint32_t sign = (u[i] >> 16) & 0x8000u, a = u[i] & 0x7fffffffu;
        uint32_t normal = sign | (((a + 0xfffu + ((a >> 13) & 1u)) - 0x38000000u) >> 13);
        uint32_t in_range = (a - 0x38800000u) < (0x477ff000u - 0x38800000u);
        sp[i] = (!in_range && a != 0) ? 1u : 0u;
        r[i] = a == 0 ? sign : normal;
    }
    for (int i = 0; i < 8; i++) {
        o[i] = (uint16_t)r[i];
        special |= sp[i];
    }
    if (special)
        for (int i = 0; i < 8; i++)
            if (sp[i]) o[i] = orc_qd_f2h(y[i]);
}

static void orc_quant_store(const float *y, int64_t n, orc_dtype dtype, void *dst) {
    if (dtype == ORC_DTYPE_F16) {
        uint16_t *o = (uint16_t *)dst;
        int64_t i = 0;
        for (; i + 8 <= n; i += 8) orc_quant_f2h_8(y + i, o + i);
        for (; i < n; i++) o[i] = orc_qd_f2h(y[i]);
    } else if (dtype == ORC_DTYPE_BF16) {
        uint16_t *o = (uint16_t *)dst;
        for (int64_t i = 0; i < n; i++) o[i] = orc_qd_f2bf(y[i]);
    } else {
        memcpy(dst, y, (size_t)n * sizeof(float));
    }
}

/* Every half -> float, built once (256 KiB): F16 tensors convert by lookup. */
static float orc_quant_h2f_lut[65536];
static pthread_once_t orc_quant_h2f_once = PTHREAD_ONCE_INIT;
static void orc_quant_h2f_init(void) {
    for (uint32_t h = 0; h < 65536u; h++) orc_quant_h2f_lut[h] = orc_qd_h2f((uint16_t)h);
}
static const float *orc_quant_h2f_table(void) {
    (void)pthread_once(&orc_quant_h2f_once, orc_quant_h2f_init);
    return orc_quant_h2f_lut;
}

/* Elements [e0, e0 + n) of a float type (F32/F16/BF16: one element per "block"). */
static void orc_quant_float_range(int32_t type, const uint8_t *src, int64_t e0, int64_t n, orc_dtype dtype,
                                  uint8_t *dst) {
    const int osz = orc_dtype_size(dtype);
    if ((type == ORC_TYPE_F32 && dtype == ORC_DTYPE_F32) || (type == ORC_TYPE_F16 && dtype == ORC_DTYPE_F16)) {
        /* f32 -> f32 is a copy; so is f16 -> f16: f16 -> f32 -> f16 returns every bit
         * pattern unchanged, NaNs included. */
        memcpy(dst + e0 * osz, src + e0 * osz, (size_t)n * (size_t)osz);
        return;
    }
    enum { CHUNK = 1024 };
    float y[CHUNK];
    for (int64_t i0 = 0; i0 < n; i0 += CHUNK) {
        int64_t m = n - i0 < CHUNK ? n - i0 : CHUNK;
        int64_t e = e0 + i0;
        if (type == ORC_TYPE_F32) {
            memcpy(y, src + e * 4, (size_t)m * 4);
        } else if (type == ORC_TYPE_F16) {
            const float *lut = orc_quant_h2f_table();
            for (int64_t i = 0; i < m; i++) y[i] = lut[orc_qd_rd16(src + (e + i) * 2)];
        } else {
            for (int64_t i = 0; i < m; i++) y[i] = orc_qd_bf2f((uint16_t)orc_qd_rd16(src + (e + i) * 2));
        }
        orc_quant_store(y, m, dtype, dst + e * osz);
    }
}

/* Blocks [b0, b0 + nb) of a block type. */
static void orc_quant_block_range(const orc_quant_kind *k, const uint8_t *src, int64_t b0, int64_t nb,
                                  orc_dtype dtype, uint8_t *dst) {
    const int osz = orc_dtype_size(dtype);
    if (dtype == ORC_DTYPE_F32) {
        float *out = (float *)(void *)(dst + b0 * k->block_size * 4);
        k->fn(src + b0 * k->type_size, nb, out);
        return;
    }
    /* float16/bfloat16: decode a few blocks into float32 scratch, then round. */
    enum { SCRATCH = 2048 };
    float y[SCRATCH];
    const int64_t per = SCRATCH / k->block_size;
    for (int64_t i = 0; i < nb; i += per) {
        int64_t m = nb - i < per ? nb - i : per;
        int64_t b = b0 + i;
        k->fn(src + b * k->type_size, m, y);
        orc_quant_store(y, m * k->block_size, dtype, dst + b * k->block_size * osz);
    }
}

typedef struct orc_quant_job {
    int32_t type;
    orc_quant_kind kind;
    const uint8_t *src;
    int64_t b0, nb; /* blocks (elements for the float types) */
    orc_dtype dtype;
    uint8_t *dst;
} orc_quant_job;

static void orc_quant_job_run(const orc_quant_job *j) {
    if (j->nb <= 0) return;
    if (j->kind.fn)
        orc_quant_block_range(&j->kind, j->src, j->b0, j->nb, j->dtype, j->dst);
    else
        orc_quant_float_range(j->type, j->src, j->b0, j->nb, j->dtype, j->dst);
}

static void *orc_quant_thread_main(void *arg) {
    orc_quant_job_run((const orc_quant_job *)arg);
    return NULL;
}

orc_status orc_dequantize(int32_t type, const void *src, uint64_t src_bytes, int64_t n, orc_dtype dtype, void *dst,
                          orc_err *err) {
    return orc_dequantize_mt(type, src, src_bytes, n, dtype, dst, 1, err);
}

/* Below this much output per thread, starting a thread costs more than it saves. */
#define ORC_QUANT_MIN_BYTES_PER_THREAD (1u << 20)
#define ORC_QUANT_MAX_THREADS 64

orc_status orc_dequantize_mt(int32_t type, const void *src, uint64_t src_bytes, int64_t n, orc_dtype dtype,
                             void *dst, int n_threads, orc_err *err) {
    orc_status st = orc_quant_validate(type, src_bytes, n, dtype, err);
    if (st != ORC_OK) return st;
    if (n == 0) return ORC_OK;
    if (!src || !dst) return orc_fail(err, ORC_E_INVALID, "dequantize: NULL source or destination");

    orc_quant_kind kind;
    (void)orc_quant_kind_get(type, &kind);
    const int64_t nblocks = n / kind.block_size;

    if (n_threads <= 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = cpus > 0 ? (int)(cpus < ORC_QUANT_MAX_THREADS ? cpus : ORC_QUANT_MAX_THREADS) : 1;
    }
    if (n_threads > ORC_QUANT_MAX_THREADS) n_threads = ORC_QUANT_MAX_THREADS;
    const uint64_t out_bytes = (uint64_t)n * (uint64_t)orc_dtype_size(dtype);
    const uint64_t by_size = out_bytes / ORC_QUANT_MIN_BYTES_PER_THREAD;
    if ((uint64_t)n_threads > by_size) n_threads = by_size > 0 ? (int)by_size : 1;
    if ((int64_t)n_threads > nblocks) n_threads = (int)nblocks;

    orc_quant_job jobs[ORC_QUANT_MAX_THREADS];
    pthread_t tids[ORC_QUANT_MAX_THREADS];
    bool started[ORC_QUANT_MAX_THREADS] = {false};
    for (int t = 0; t < n_threads; t++) {
        int64_t b0 = nblocks * t / n_threads, b1 = nblocks * (t + 1) / n_threads;
        jobs[t] = (orc_quant_job){type, kind, (const uint8_t *)src, b0, b1 - b0, dtype, (uint8_t *)dst};
    }
    /* Job 0 runs here; if a thread cannot be started its job runs here too. */
    for (int t = 1; t < n_threads; t++)
        started[t] = pthread_create(&tids[t], NULL, orc_quant_thread_main, &jobs[t]) == 0;
    orc_quant_job_run(&jobs[0]);
    for (int t = 1; t < n_threads; t++) {
        if (started[t])
            (void)pthread_join(tids[t], NULL);
        else
            orc_quant_job_run(&jobs[t]);
    }
    return ORC_OK;
}
