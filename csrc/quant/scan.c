/* scan.c - counting NaN/Inf values of stored tensors (scan.h): bit tests for the float types,
 * dequantization (quant.c) for block types, with a cheaper scale-field pre-check for the types
 * where it decides the answer; the work split over a thread pool in fixed chunks, so the result
 * is the same for any number of threads. */
#include "quant/scan.h"

#include <stdbool.h> /* bool */
#include <stdlib.h>  /* calloc, free */
#include <string.h>  /* memcpy */

#include "gguf/ggml_types.h" /* ORC_TYPE_* */
#include "quant/quant.h"     /* orc_quant_validate, orc_dequantize */

/* Elements per task: a multiple of every block size (256 at most), large enough that task
 * overhead vanishes, small enough that two threads balance on a 100k-element tensor. */
#define ORC_SCAN_TASK_ELEMS ((int64_t)1 << 16)
/* Dequantized scratch per step, on the stack. */
#define ORC_SCAN_SCRATCH 4096

/* Where the float16 scales of a block are, for ORC_SCAN_SCALES (see scan.h for why they decide
 * the answer). Offsets as documented beside each decoder in quant_decode.h. */
typedef struct orc_scan_scales {
    int32_t type;
    uint8_t n, off[2];
} orc_scan_scales;

static const orc_scan_scales orc_scan_scale_table[] = {
    {ORC_TYPE_Q4_0, 1, {0, 0}},    {ORC_TYPE_Q4_1, 2, {0, 2}},    {ORC_TYPE_Q5_0, 1, {0, 0}},
    {ORC_TYPE_Q5_1, 2, {0, 2}},    {ORC_TYPE_Q8_0, 1, {0, 0}},    {ORC_TYPE_Q1_0, 1, {0, 0}},
    {ORC_TYPE_Q2_K, 2, {80, 82}},  {ORC_TYPE_Q3_K, 1, {108, 0}},  {ORC_TYPE_Q4_K, 2, {0, 2}},
    {ORC_TYPE_Q5_K, 2, {0, 2}},    {ORC_TYPE_Q6_K, 1, {208, 0}},  {ORC_TYPE_IQ4_NL, 1, {0, 0}},
    {ORC_TYPE_IQ4_XS, 1, {0, 0}},  {ORC_TYPE_IQ2_XXS, 1, {0, 0}}, {ORC_TYPE_IQ2_XS, 1, {0, 0}},
    {ORC_TYPE_IQ2_S, 1, {0, 0}},   {ORC_TYPE_IQ3_XXS, 1, {0, 0}}, {ORC_TYPE_IQ3_S, 1, {0, 0}},
    {ORC_TYPE_IQ1_S, 1, {0, 0}},   {ORC_TYPE_TQ1_0, 1, {52, 0}},  {ORC_TYPE_TQ2_0, 1, {64, 0}},
};

static const orc_scan_scales *orc_scan_scales_of(int32_t type) {
    for (size_t i = 0; i < sizeof orc_scan_scale_table / sizeof orc_scan_scale_table[0]; i++)
        if (orc_scan_scale_table[i].type == type) return &orc_scan_scale_table[i];
    return NULL;
}

typedef struct orc_scan_part {
    uint64_t count;
    int64_t first; /* -1: none */
} orc_scan_part;

typedef struct orc_scan_job {
    int32_t type;
    const uint8_t *src;
    int64_t n;
    int64_t block_size, type_size;
    const orc_scan_scales *scales; /* NULL: dequantize everything */
    orc_scan_part *parts;          /* one per task */
} orc_scan_job;

static inline void orc_scan_note(orc_scan_part *p, int64_t index) {
    if (p->first < 0) p->first = index;
    p->count++;
}

/* Non-finite values among the float32 y[0..m), which are elements e0.. of the tensor. */
static void orc_scan_floats(const float *y, int64_t m, int64_t e0, orc_scan_part *p) {
    for (int64_t i = 0; i < m; i++) {
        uint32_t u;
        memcpy(&u, &y[i], 4);
        if ((u & 0x7f800000u) == 0x7f800000u) orc_scan_note(p, e0 + i);
    }
}

/* Dequantize blocks [b0, b0 + nb) step by step and count. */
static void orc_scan_blocks(const orc_scan_job *j, int64_t b0, int64_t nb, orc_scan_part *p) {
    float y[ORC_SCAN_SCRATCH];
    const int64_t per = ORC_SCAN_SCRATCH / j->block_size;
    for (int64_t b = b0; b < b0 + nb; b += per) {
        int64_t m = b0 + nb - b < per ? b0 + nb - b : per;
        /* cannot fail: the whole tensor was validated, and this is a whole number of its blocks */
        (void)orc_dequantize(j->type, j->src + b * j->type_size, (uint64_t)(m * j->type_size),
                             m * j->block_size, ORC_DTYPE_F32, y, NULL);
        orc_scan_floats(y, m * j->block_size, b * j->block_size, p);
    }
}

static void orc_scan_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const orc_scan_job *j = ctx;
    orc_scan_part *p = &j->parts[task];
    const int64_t e0 = task * ORC_SCAN_TASK_ELEMS;
    const int64_t m = j->n - e0 < ORC_SCAN_TASK_ELEMS ? j->n - e0 : ORC_SCAN_TASK_ELEMS;
    const uint8_t *s = j->src;
    p->count = 0;
    p->first = -1;
    switch (j->type) {
    case ORC_TYPE_F32:
        for (int64_t i = e0; i < e0 + m; i++) {
            uint32_t u;
            memcpy(&u, s + 4 * i, 4);
            if ((u & 0x7f800000u) == 0x7f800000u) orc_scan_note(p, i);
        }
        return;
    case ORC_TYPE_F16:
        for (int64_t i = e0; i < e0 + m; i++) {
            uint32_t h = (uint32_t)s[2 * i] | ((uint32_t)s[2 * i + 1] << 8);
            if ((h & 0x7c00u) == 0x7c00u) orc_scan_note(p, i);
        }
        return;
    case ORC_TYPE_BF16:
        for (int64_t i = e0; i < e0 + m; i++) {
            uint32_t h = (uint32_t)s[2 * i] | ((uint32_t)s[2 * i + 1] << 8);
            if ((h & 0x7f80u) == 0x7f80u) orc_scan_note(p, i);
        }
        return;
    default: break;
    }
    const int64_t b0 = e0 / j->block_size, nb = m / j->block_size;
    if (!j->scales) {
        orc_scan_blocks(j, b0, nb, p);
        return;
    }
    for (int64_t b = b0; b < b0 + nb; b++) {
        const uint8_t *blk = s + b * j->type_size;
        bool bad = false;
        for (int k = 0; k < j->scales->n; k++) {
            uint32_t h = (uint32_t)blk[j->scales->off[k]] | ((uint32_t)blk[j->scales->off[k] + 1] << 8);
            bad |= (h & 0x7c00u) == 0x7c00u;
        }
        if (bad) orc_scan_blocks(j, b, 1, p);
    }
}

orc_status orc_scan_nonfinite(int32_t type, const void *src, uint64_t src_bytes, int64_t n, orc_scan_mode mode,
                              orc_pool *pool, orc_scan_result *out, orc_err *err) {
    *out = (orc_scan_result){.count = 0, .first_index = -1, .first_block = -1, .block_size = 1};
    orc_status st = orc_quant_validate(type, src_bytes, n, ORC_DTYPE_F32, err);
    if (st) return st;
    const orc_type_traits *tr = orc_type_traits_get(type);
    if (!tr) return orc_fail(err, ORC_E_INTERNAL, "scan: type %d has no traits", (int)type);
    out->block_size = (int32_t)tr->block_size;
    if (n == 0) return ORC_OK;
    if (!src) return orc_fail(err, ORC_E_INVALID, "scan: NULL data");
    const int64_t n_tasks = (n + ORC_SCAN_TASK_ELEMS - 1) / ORC_SCAN_TASK_ELEMS;
    orc_scan_job j = {
        .type = type,
        .src = src,
        .n = n,
        .block_size = tr->block_size,
        .type_size = tr->type_size,
        .scales = mode == ORC_SCAN_SCALES ? orc_scan_scales_of(type) : NULL,
        .parts = calloc((size_t)n_tasks, sizeof(orc_scan_part)),
    };
    if (!j.parts) return orc_fail(err, ORC_E_NOMEM, "scan: out of memory for %lld tasks", (long long)n_tasks);
    if (pool && n_tasks > 1) {
        orc_pool_run(pool, n_tasks, orc_scan_task, &j);
    } else {
        for (int64_t t = 0; t < n_tasks; t++) orc_scan_task(&j, t, 0);
    }
    for (int64_t t = 0; t < n_tasks; t++) {
        if (j.parts[t].count && out->first_index < 0) out->first_index = j.parts[t].first;
        out->count += j.parts[t].count;
    }
    if (out->first_index >= 0) out->first_block = out->first_index / out->block_size;
    free(j.parts);
    return ORC_OK;
}
