/* backend_cpu.c - the float32 reference backend.
 *
 * Simple and exact before fast: weights are dequantized once at load into the model's
 * dtype (float32, or float16/bfloat16 values rounded as the GPU stores them), or kept as
 * their GGUF blocks (weights="quantized": read in place from the mapped file, each row
 * dequantized to float32 as a matmul reaches it, so a quantized-weights product is bit for
 * bit the float32-weights product); every sum accumulates in float32 lanes (norms and
 * softmax sums in double), and only the loops that matter (matmul, attention, weight
 * upload) run on the thread pool. Results do not depend on the thread count: every output
 * element is computed by one thread in a fixed order.
 */
#include <math.h>
#include <stdint.h> /* INT32_MAX */
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/cpu_dot.h"
#include "core/threadpool.h"
#include "gguf/ggml_types.h"
#include "model/arch.h" /* orc_act */
#include "quant/quant.h"

typedef struct cpu_backend {
    orc_backend base;
    orc_pool *pool;
    uint64_t allocated;
    bool round_inputs;
    float *f16_table; /* all 65536 float16 values as float32: a fast, exact conversion */
} cpu_backend;

/* Per-session scratch: one row buffer pair per pool thread. */
typedef struct cpu_exec {
    orc_exec base;
    int n_threads;
    int64_t row_len;  /* floats in each rows[t] / rows2[t] */
    float **rows;     /* a weight or cache row converted to float32; attention scores */
    float **rows2;    /* a second row (attention: K/V rows beside the scores) */
    float *rounded;   /* matmul inputs rounded to the weight dtype: [max_tokens][max_cols] */
    int64_t rounded_len;
} cpu_exec;

static cpu_backend *cpu(orc_backend *b) { return (cpu_backend *)b; }
static cpu_backend *cpu_of(orc_exec *e) { return (cpu_backend *)e->be; }

/* ------------------------------------------------------------------------- helpers */

/* Row `r` of t as float32: a pointer into t for F32, else converted into buf
 * (buf holds t->cols floats). Blocks are dequantized exactly as at load. */
static const float *row_f32(const cpu_backend *c, const orc_tensor *t, int64_t r, float *buf) {
    const int64_t n = t->cols;
    if (t->qtype >= 0) {
        const uint8_t *src = (const uint8_t *)t->data + (uint64_t)r * t->row_bytes;
        if (orc_cpu_qrow_vectorized(t->qtype)) {
            orc_cpu_qrow_f32(t->qtype, src, n, buf);
            return buf;
        }
        orc_err e;
        /* Sizes were validated when the weight was loaded: this cannot fail. */
        if (orc_dequantize(t->qtype, src, t->row_bytes, n, ORC_DTYPE_F32, buf, &e) != ORC_OK)
            for (int64_t i = 0; i < n; i++) buf[i] = NAN;
        return buf;
    }
    switch (t->dtype) {
    case ORC_DTYPE_F32: return (const float *)t->data + r * n;
    case ORC_DTYPE_F16: {
        const uint16_t *s = (const uint16_t *)t->data + r * n;
        for (int64_t i = 0; i < n; i++) buf[i] = c->f16_table[s[i]];
        return buf;
    }
    case ORC_DTYPE_BF16: {
        const uint16_t *s = (const uint16_t *)t->data + r * n;
        for (int64_t i = 0; i < n; i++) buf[i] = orc_bf16_to_f32(s[i]);
        return buf;
    }
    case ORC_DTYPE_I32: { /* step inputs and expert ids, for hooks: exact for |v| < 2^24 */
        const int32_t *s = (const int32_t *)t->data + r * n;
        for (int64_t i = 0; i < n; i++) buf[i] = (float)s[i];
        return buf;
    }
    }
    for (int64_t i = 0; i < n; i++) buf[i] = NAN;
    return buf;
}

static float round_to(orc_dtype d, float x) {
    switch (d) {
    case ORC_DTYPE_F16: return orc_f16_to_f32(orc_f32_to_f16(x));
    case ORC_DTYPE_BF16: return orc_bf16_to_f32(orc_f32_to_bf16(x));
    default: return x;
    }
}

static const int32_t *i32(const orc_tensor *t) { return (const int32_t *)t->data; }

/* Row r of w times one input. Rows of the block types cpu_dot.c decodes in registers are
 * multiplied without being written out; the sums are orc_cpu_dot's either way. */
static float row_dot(const cpu_backend *c, const orc_tensor *w, int64_t r, const float *x, float *buf) {
    if (w->qtype >= 0 && orc_cpu_qrow_vectorized(w->qtype))
        return orc_cpu_qdot(w->qtype, (const uint8_t *)w->data + (uint64_t)r * w->row_bytes, x, w->cols);
    return orc_cpu_dot(x, row_f32(c, w, r, buf), w->cols);
}

/* ------------------------------------------------------------------------- memory */

static orc_status cpu_alloc(orc_backend *b, orc_tensor *t, orc_dtype dtype, int64_t rows, int64_t cols,
                            const char *what, orc_err *err) {
    memset(t, 0, sizeof *t);
    uint64_t n, bytes;
    if (rows < 0 || cols < 0 || orc_mul_overflow_u64((uint64_t)rows, (uint64_t)cols, &n) ||
        orc_mul_overflow_u64(n, (uint64_t)orc_dtype_size(dtype), &bytes) || bytes > ((uint64_t)1 << 46))
        return orc_fail(err, ORC_E_NOMEM, "cannot allocate %s: %lld x %lld %s is too large", what, (long long)rows,
                        (long long)cols, orc_dtype_name(dtype));
    uint64_t padded = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, padded ? padded : 64);
    if (!p)
        return orc_fail(err, ORC_E_NOMEM, "out of host memory allocating %s (%llu bytes)", what,
                        (unsigned long long)bytes);
    t->data = p;
    t->dtype = dtype;
    t->qtype = -1;
    t->rows = rows;
    t->cols = cols;
    t->row_bytes = (uint64_t)cols * (uint64_t)orc_dtype_size(dtype);
    t->nbytes = bytes;
    cpu(b)->allocated += bytes;
    return ORC_OK;
}

static void cpu_free(orc_backend *b, orc_tensor *t) {
    if (!t) return;
    if (t->data && t->nbytes) {
        cpu(b)->allocated -= t->nbytes;
        free(t->data);
    }
    memset(t, 0, sizeof *t);
}

static uint64_t cpu_allocated(const orc_backend *b) { return ((const cpu_backend *)b)->allocated; }

typedef struct upload_job {
    orc_tensor *dst;
    int32_t type;
    const uint8_t *src;
    uint64_t row_bytes;
    int64_t rows_per_task;
    orc_status st;
    orc_err err;
} upload_job;

static void upload_task(void *ctx, int64_t task, int thread) {
    upload_job *j = ctx;
    int64_t r0 = task * j->rows_per_task;
    int64_t r1 = r0 + j->rows_per_task < j->dst->rows ? r0 + j->rows_per_task : j->dst->rows;
    int64_t n = (r1 - r0) * j->dst->cols;
    uint8_t *dst = (uint8_t *)j->dst->data + (uint64_t)r0 * j->dst->row_bytes;
    orc_err e = {0};
    orc_status st = orc_dequantize(j->type, j->src + (uint64_t)r0 * j->row_bytes, (uint64_t)(r1 - r0) * j->row_bytes,
                                   n, j->dst->dtype, dst, &e);
    if (st != ORC_OK && j->st == ORC_OK) { /* first failure wins; benign race on a status */
        j->st = st;
        j->err = e;
    }
}

static orc_status cpu_upload_weight(orc_backend *b, orc_tensor *dst, int32_t type, const void *src, uint64_t src_bytes,
                                    bool raw_as_f16, orc_err *err) {
    cpu_backend *c = cpu(b);
    if (raw_as_f16) {
        /* The fault under test: stored bytes read as float16, cycling when too few. */
        const uint8_t *s = src;
        int64_t n = dst->rows * dst->cols;
        uint64_t n_half = src_bytes / 2;
        if (n_half == 0) return orc_fail(err, ORC_E_INVALID, "raw_as_f16: empty tensor");
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, s + 2 * ((uint64_t)i % n_half), 2);
            float v = c->f16_table[h];
            switch (dst->dtype) {
            case ORC_DTYPE_F16: ((uint16_t *)dst->data)[i] = h; break;
            case ORC_DTYPE_BF16: ((uint16_t *)dst->data)[i] = orc_f32_to_bf16(v); break;
            default: ((float *)dst->data)[i] = v; break;
            }
        }
        return ORC_OK;
    }
    uint64_t row_bytes;
    orc_status st = orc_type_nbytes(type, dst->cols, &row_bytes, err);
    if (st != ORC_OK) return st;
    if (row_bytes * (uint64_t)dst->rows != src_bytes)
        return orc_fail(err, ORC_E_INVALID, "upload: %llu bytes for a %lld x %lld tensor", (unsigned long long)src_bytes,
                        (long long)dst->rows, (long long)dst->cols);
    upload_job j = {.dst = dst, .type = type, .src = src, .row_bytes = row_bytes};
    int64_t target = (dst->rows * dst->cols) / (1 << 18) + 1; /* ~256K elements per task */
    j.rows_per_task = (dst->rows + target - 1) / target;
    orc_pool_run(c->pool, (dst->rows + j.rows_per_task - 1) / j.rows_per_task, upload_task, &j);
    if (j.st != ORC_OK) {
        *err = j.err;
        return j.st;
    }
    return ORC_OK;
}

/* Stored blocks are read in place from the mapped file: a view (nbytes 0, never freed),
 * valid while the model holds the file. Dense stored types are the same bytes too. Block
 * types without a vector decoder (cpu_dot.h) are dequantized to float32 here instead: a
 * scalar decode of every row at every step would be several times slower, and the float32
 * rows give the very same products. */
static orc_status cpu_upload_blocks(orc_backend *b, orc_tensor *dst, int32_t type, int64_t rows, int64_t cols,
                                    const void *src, uint64_t src_bytes, const char *what, orc_err *err) {
    if (!orc_type_is_dense(type) && !orc_cpu_qrow_vectorized(type)) {
        orc_status st = cpu_alloc(b, dst, ORC_DTYPE_F32, rows, cols, what, err);
        if (st == ORC_OK) st = cpu_upload_weight(b, dst, type, src, src_bytes, false, err);
        if (st != ORC_OK) cpu_free(b, dst);
        return st;
    }
    orc_status st = orc_tensor_stored_shape(dst, type, rows, cols, src_bytes, what, err);
    if (st != ORC_OK) return st;
    dst->data = (void *)src;
    dst->nbytes = 0;
    return ORC_OK;
}

static orc_status cpu_download(orc_backend *b, const orc_tensor *src, int64_t row0, int64_t n, float *dst, orc_err *err) {
    if (row0 < 0 || n < 0 || row0 + n > src->rows)
        return orc_fail(err, ORC_E_INTERNAL, "download: rows %lld..%lld of %lld", (long long)row0, (long long)(row0 + n),
                        (long long)src->rows);
    for (int64_t r = 0; r < n; r++) {
        float *out = dst + r * src->cols;
        const float *row = row_f32(cpu(b), src, row0 + r, out);
        if (row != out) memcpy(out, row, (size_t)src->cols * sizeof(float));
    }
    return ORC_OK;
}

static orc_status cpu_upload(orc_backend *b, orc_tensor *dst, int64_t row0, int64_t n, const void *src, orc_err *err) {
    if (row0 < 0 || n < 0 || row0 + n > dst->rows || dst->qtype >= 0)
        return orc_fail(err, ORC_E_INTERNAL, "upload: rows %lld..%lld of %lld", (long long)row0, (long long)(row0 + n),
                        (long long)dst->rows);
    memcpy((char *)dst->data + (uint64_t)row0 * dst->row_bytes, src, (size_t)((uint64_t)n * dst->row_bytes));
    return ORC_OK;
}

static orc_status cpu_copy_rows(orc_backend *b, const orc_tensor *src, int64_t s0, orc_tensor *dst, int64_t d0, int64_t n,
                                orc_err *err) {
    memmove((char *)dst->data + (size_t)d0 * dst->row_bytes, (const char *)src->data + (size_t)s0 * src->row_bytes,
            (size_t)n * src->row_bytes);
    return ORC_OK;
}

static orc_status cpu_sync(orc_backend *b, orc_err *err) { return ORC_OK; }

/* ------------------------------------------------------------------------- exec */

static void cpu_exec_destroy(orc_exec *e) {
    if (!e) return;
    cpu_exec *x = (cpu_exec *)e;
    for (int t = 0; t < x->n_threads; t++) {
        if (x->rows) free(x->rows[t]);
        if (x->rows2) free(x->rows2[t]);
    }
    free(x->rows);
    free(x->rows2);
    free(x->rounded);
    free(x);
}

static orc_status cpu_exec_create(orc_backend *b, const orc_exec_shape *sh, orc_exec **out, orc_err *err) {
    cpu_backend *c = cpu(b);
    *out = NULL;
    cpu_exec *x = calloc(1, sizeof *x);
    if (!x) return orc_fail(err, ORC_E_NOMEM, "allocating session scratch");
    x->base.be = b;
    x->n_threads = orc_pool_threads(c->pool);
    x->row_len = sh->max_cols > sh->max_keys ? sh->max_cols : sh->max_keys;
    x->rows = calloc((size_t)x->n_threads, sizeof *x->rows);
    x->rows2 = calloc((size_t)x->n_threads, sizeof *x->rows2);
    bool ok = x->rows && x->rows2;
    for (int t = 0; ok && t < x->n_threads; t++) {
        x->rows[t] = malloc((size_t)x->row_len * sizeof(float));
        x->rows2[t] = malloc((size_t)x->row_len * sizeof(float));
        ok = x->rows[t] && x->rows2[t];
    }
    if (ok && c->round_inputs) {
        x->rounded_len = sh->max_tokens * sh->max_cols;
        x->rounded = malloc((size_t)x->rounded_len * sizeof(float));
        ok = x->rounded != NULL;
    }
    if (!ok) {
        cpu_exec_destroy(&x->base);
        return orc_fail(err, ORC_E_NOMEM, "allocating session scratch (%d threads x %lld floats)", orc_pool_threads(c->pool),
                        (long long)x->row_len);
    }
    *out = &x->base;
    return ORC_OK;
}

/* ------------------------------------------------------------------------- ops */

static orc_status cpu_get_rows(orc_exec *e, const orc_tensor *table, const orc_tensor *ids, int64_t n, float scale,
                               orc_tensor *out, orc_err *err) {
    const int32_t *id = i32(ids);
    for (int64_t i = 0; i < n; i++) {
        float *o = (float *)out->data + i * out->cols;
        const float *row = row_f32(cpu_of(e), table, id[i], o);
        for (int64_t j = 0; j < table->cols; j++) o[j] = row[j] * scale;
    }
    return ORC_OK;
}

static orc_status cpu_rms_norm(orc_exec *e, const orc_tensor *x, const orc_tensor *w, int64_t n, int64_t width,
                               float eps, orc_tensor *out, orc_err *err) {
    if (x->cols % width)
        return orc_fail(err, ORC_E_INTERNAL, "rms_norm: width %lld does not divide %lld", (long long)width,
                        (long long)x->cols);
    const float *wt = w->data;
    int64_t rows = n * (x->cols / width);
    for (int64_t r = 0; r < rows; r++) {
        const float *xi = (const float *)x->data + r * width;
        float *o = (float *)out->data + r * width;
        double ss = 0;
        for (int64_t j = 0; j < width; j++) ss += (double)xi[j] * xi[j];
        float scale = (float)(1.0 / sqrt(ss / (double)width + (double)eps));
        for (int64_t j = 0; j < width; j++) o[j] = wt[j] * (xi[j] * scale);
    }
    return ORC_OK;
}

typedef struct matmul_job {
    cpu_exec *x;
    const float *in; /* [n][k], already rounded when asked */
    const orc_tensor *w;
    float *out;
    int64_t n, k, m, rows_per_task;
} matmul_job;

static void matmul_task(void *ctx, int64_t task, int thread) {
    matmul_job *j = ctx;
    int64_t r0 = task * j->rows_per_task, r1 = r0 + j->rows_per_task;
    if (r1 > j->m) r1 = j->m;
    const cpu_backend *c = cpu_of(&j->x->base);
    if (j->n == 1) { /* decode: each row once, nothing to share */
        for (int64_t r = r0; r < r1; r++) j->out[r] = row_dot(c, j->w, r, j->in, j->x->rows[thread]);
        return;
    }
    for (int64_t r = r0; r < r1; r++) {
        const float *wr = row_f32(c, j->w, r, j->x->rows[thread]);
        for (int64_t t = 0; t < j->n; t++) j->out[t * j->m + r] = orc_cpu_dot(j->in + t * j->k, wr, j->k);
    }
}

static orc_status cpu_matmul(orc_exec *e, const orc_tensor *x, const orc_tensor *w, int64_t n, orc_tensor *out,
                             orc_err *err) {
    cpu_exec *xe = (cpu_exec *)e;
    cpu_backend *c = cpu_of(e);
    const int64_t k = w->cols, m = w->rows;
    if (x->cols != k || out->cols != m || k > xe->row_len)
        return orc_fail(err, ORC_E_INTERNAL, "matmul: x has %lld cols, w is %lld x %lld, out has %lld cols",
                        (long long)x->cols, (long long)m, (long long)k, (long long)out->cols);
    const float *xs = x->data;
    /* float16/bfloat16 weights: round the inputs as cuBLAS does (like for like with the GPU).
     * Quantized weights are dequantized to float32 rows: the inputs stay float32. */
    if (c->round_inputs && w->qtype < 0 && w->dtype != ORC_DTYPE_F32) {
        if (n * k > xe->rounded_len) return orc_fail(err, ORC_E_INTERNAL, "matmul: rounding buffer too small");
        for (int64_t i = 0; i < n * k; i++) xe->rounded[i] = round_to(w->dtype, xs[i]);
        xs = xe->rounded;
    }
    matmul_job j = {.x = xe, .in = xs, .w = w, .out = out->data, .n = n, .k = k, .m = m};
    int64_t tasks = (int64_t)xe->n_threads * 8;
    j.rows_per_task = (m + tasks - 1) / tasks;
    if (j.rows_per_task < 1) j.rows_per_task = 1;
    orc_pool_run(c->pool, (m + j.rows_per_task - 1) / j.rows_per_task, matmul_task, &j);
    return ORC_OK;
}

static orc_status cpu_add_bias(orc_exec *e, orc_tensor *x, const orc_tensor *bias, int64_t n, orc_err *err) {
    const float *bb = bias->data;
    for (int64_t i = 0; i < n; i++) {
        float *r = (float *)x->data + i * x->cols;
        for (int64_t j = 0; j < x->cols; j++) r[j] += bb[j];
    }
    return ORC_OK;
}

static orc_status cpu_add(orc_exec *e, const orc_tensor *a, const orc_tensor *c, int64_t n, orc_tensor *out,
                          orc_err *err) {
    const float *pa = a->data, *pc = c->data;
    float *po = out->data;
    for (int64_t i = 0; i < n * a->cols; i++) po[i] = pa[i] + pc[i];
    return ORC_OK;
}

static orc_status cpu_rope(orc_exec *e, orc_tensor *x, const orc_batch *bt, int32_t n_heads, int32_t head_dim,
                           const orc_rope_params *rp, const orc_tensor *inv_freq, orc_err *err) {
    const int32_t half = rp->n_rot / 2;
    const float *inv = inv_freq->data;
    const int32_t *pos = i32(&bt->pos);
    const double ms = rp->yarn_attn_factor > 0 ? (double)rp->yarn_attn_factor : 1.0;
    double *cs = malloc((size_t)half * 2 * sizeof(double));
    if (!cs) return orc_fail(err, ORC_E_NOMEM, "rope: table");
    for (int64_t t = 0; t < bt->n; t++) {
        const double p = (double)pos[t] * rp->freq_scale;
        for (int32_t i = 0; i < half; i++) {
            double th = p * (double)inv[i];
            cs[2 * i] = cos(th) * ms;
            cs[2 * i + 1] = sin(th) * ms;
        }
        for (int32_t h = 0; h < n_heads; h++) {
            float *v = (float *)x->data + t * x->cols + (int64_t)h * head_dim;
            for (int32_t i = 0; i < half; i++) {
                int32_t i0 = rp->neox ? i : 2 * i, i1 = rp->neox ? i + half : 2 * i + 1;
                double c = cs[2 * i], s = cs[2 * i + 1];
                double a = v[i0], bb = v[i1];
                v[i0] = (float)(a * c - bb * s);
                v[i1] = (float)(a * s + bb * c);
            }
        }
    }
    free(cs);
    return ORC_OK;
}

static void store_row(orc_tensor *cache, int64_t row, const float *src) {
    const int64_t n = cache->cols;
    switch (cache->dtype) {
    case ORC_DTYPE_F16: {
        uint16_t *d = (uint16_t *)cache->data + row * n;
        for (int64_t i = 0; i < n; i++) d[i] = orc_f32_to_f16(src[i]);
        break;
    }
    case ORC_DTYPE_BF16: {
        uint16_t *d = (uint16_t *)cache->data + row * n;
        for (int64_t i = 0; i < n; i++) d[i] = orc_f32_to_bf16(src[i]);
        break;
    }
    default: memcpy((float *)cache->data + row * n, src, (size_t)n * sizeof(float)); break;
    }
}

static orc_status cpu_kv_store(orc_exec *e, orc_tensor *kc, orc_tensor *vc, const orc_tensor *k, const orc_tensor *v,
                               const orc_batch *bt, orc_err *err) {
    const int32_t *row = i32(&bt->kv_row);
    for (int64_t i = 0; i < bt->n; i++) {
        if (row[i] < 0 || row[i] >= kc->rows) return orc_fail(err, ORC_E_INTERNAL, "kv_store past the cache");
        store_row(kc, row[i], (const float *)k->data + i * k->cols);
        store_row(vc, row[i], (const float *)v->data + i * v->cols);
    }
    return ORC_OK;
}

typedef struct attn_job {
    cpu_exec *x;
    const orc_tensor *q, *kc, *vc;
    const orc_batch *bt;
    orc_tensor *out, *probs;
    const orc_attn_params *ap;
    const float *sinks;
} attn_job;

static void attn_task(void *ctx, int64_t task, int thread) {
    attn_job *j = ctx;
    const orc_attn_params *ap = j->ap;
    const cpu_backend *c = cpu_of(&j->x->base);
    const int64_t t = task / ap->n_head;
    const int32_t h = (int32_t)(task % ap->n_head);
    const int32_t g = h / (ap->n_head / ap->n_head_kv);
    const int64_t p = i32(&j->bt->pos)[t], base = i32(&j->bt->kv_base)[t];
    const int64_t lo = ap->window > 0 && p - ap->window + 1 > 0 ? p - ap->window + 1 : 0;
    float *scores = j->x->rows[thread];
    float *rowbuf = j->x->rows2[thread];
    const float *q = (const float *)j->q->data + t * j->q->cols + (int64_t)h * ap->head_dim;
    float mx = -INFINITY;
    for (int64_t s = lo; s <= p; s++) {
        const float *kr = row_f32(c, j->kc, base + s, rowbuf);
        float sc = orc_cpu_dot(q, kr + (int64_t)g * ap->head_dim, ap->head_dim) * ap->scale;
        if (ap->softcap > 0) sc = ap->softcap * tanhf(sc / ap->softcap);
        scores[s - lo] = sc;
        if (sc > mx) mx = sc;
    }
    /* A sink logit joins the softmax's denominator and is dropped after it. */
    const float sink = j->sinks ? j->sinks[h] : -INFINITY;
    if (sink > mx) mx = sink;
    double sum = j->sinks ? (double)expf(sink - mx) : 0.0;
    for (int64_t s = lo; s <= p; s++) {
        float e = expf(scores[s - lo] - mx);
        scores[s - lo] = e;
        sum += e;
    }
    float *o = (float *)j->out->data + t * j->out->cols + (int64_t)h * ap->head_dim_v;
    for (int32_t d = 0; d < ap->head_dim_v; d++) o[d] = 0.0f;
    const float inv = (float)(1.0 / sum);
    for (int64_t s = lo; s <= p; s++) {
        const float *vr = row_f32(c, j->vc, base + s, rowbuf) + (int64_t)g * ap->head_dim_v;
        const float w = scores[s - lo] * inv;
        for (int32_t d = 0; d < ap->head_dim_v; d++) o[d] += w * vr[d];
    }
    if (j->probs) {
        const int64_t keys = j->probs->cols / ap->n_head;
        float *pr = (float *)j->probs->data + t * j->probs->cols + (int64_t)h * keys;
        for (int64_t s = 0; s < keys; s++) pr[s] = s >= lo && s <= p ? scores[s - lo] * inv : 0.0f;
    }
}

static orc_status cpu_attention(orc_exec *e, const orc_tensor *q, const orc_tensor *kc, const orc_tensor *vc,
                                const orc_batch *bt, const orc_attn_params *ap, orc_tensor *out, orc_tensor *probs,
                                orc_err *err) {
    cpu_exec *x = (cpu_exec *)e;
    if (bt->n_keys_max > x->row_len || kc->cols > x->row_len || vc->cols > x->row_len)
        return orc_fail(err, ORC_E_INTERNAL, "attention: %lld keys past the session's scratch", (long long)bt->n_keys_max);
    if (probs && probs->cols / ap->n_head < bt->n_keys_max)
        return orc_fail(err, ORC_E_INTERNAL, "attention: probabilities buffer too narrow");
    attn_job j = {.x = x, .q = q, .kc = kc, .vc = vc, .bt = bt, .out = out, .probs = probs, .ap = ap,
                  .sinks = ap->sinks ? (const float *)ap->sinks->data : NULL};
    orc_pool_run(cpu_of(e)->pool, bt->n * ap->n_head, attn_task, &j);
    return ORC_OK;
}

static orc_status cpu_glu(orc_exec *e, const orc_tensor *gate, const orc_tensor *up, int64_t n, int act,
                          orc_tensor *out, orc_err *err) {
    const float *g = gate->data, *u = up->data;
    float *o = out->data;
    const int64_t len = n * gate->cols;
    switch (act) {
    case ORC_ACT_SILU:
        for (int64_t i = 0; i < len; i++) o[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
        break;
    case ORC_ACT_GELU_TANH: {
        const float k = 0.7978845608028654f; /* sqrt(2/pi) */
        for (int64_t i = 0; i < len; i++) {
            float x = g[i];
            o[i] = 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x))) * u[i];
        }
        break;
    }
    case ORC_ACT_SWIGLU_OAI: /* gpt-oss: x = min(gate, 7), y = clamp(up, -7, 7), x * sigmoid(1.702 x) * (y + 1);
                              * written so that a NaN stays NaN (as torch.clamp keeps it): "g < 7 ? g : 7" made it 7 */
        for (int64_t i = 0; i < len; i++) {
            float x = g[i] > 7.0f ? 7.0f : g[i], y = u[i] < -7.0f ? -7.0f : (u[i] > 7.0f ? 7.0f : u[i]);
            o[i] = x / (1.0f + expf(-1.702f * x)) * (y + 1.0f);
        }
        break;
    default: return orc_fail(err, ORC_E_INTERNAL, "glu: unknown activation %d", act);
    }
    return ORC_OK;
}

static orc_status cpu_softcap(orc_exec *e, orc_tensor *x, int64_t n, float cap, orc_err *err) {
    float *p = x->data;
    for (int64_t i = 0; i < n * x->cols; i++) p[i] = cap * tanhf(p[i] / cap);
    return ORC_OK;
}

static orc_status cpu_argmax(orc_exec *e, const orc_tensor *x, int64_t n, orc_tensor *out, orc_err *err) {
    (void)e;
    (void)err;
    for (int64_t t = 0; t < n; t++) {
        const float *r = (const float *)((const char *)x->data + (uint64_t)t * x->row_bytes);
        int64_t best = -1, bad = 0, first_bad = -1;
        for (int64_t j = 0; j < x->cols; j++) {
            if (!isfinite(r[j])) {
                if (bad++ == 0) first_bad = j;
            } else if (best < 0 || r[j] > r[best]) {
                best = j;
            }
        }
        float *o = (float *)((char *)out->data + (uint64_t)t * out->row_bytes);
        o[0] = (float)best;
        o[1] = best >= 0 ? r[best] : NAN;
        o[2] = (float)bad;
        o[3] = (float)first_bad;
    }
    return ORC_OK;
}

/* ------------------------------------------------------------------------- mixture of experts */

static orc_status cpu_moe_route(orc_exec *e, const orc_tensor *logits, int64_t n, int32_t k, int kind, bool norm,
                                orc_tensor *ids, orc_tensor *w, orc_err *err) {
    const int64_t E = logits->cols;
    if (k <= 0 || k > E || k > 64) return orc_fail(err, ORC_E_INTERNAL, "moe_route: k = %d of %lld experts", (int)k, (long long)E);
    cpu_exec *x = (cpu_exec *)e;
    if (E > x->row_len) return orc_fail(err, ORC_E_INTERNAL, "moe_route: %lld experts past the scratch", (long long)E);
    float *p = x->rows[0];
    for (int64_t t = 0; t < n; t++) {
        const float *l = (const float *)logits->data + t * E;
        int32_t *id = (int32_t *)ids->data + t * k;
        float *wt = (float *)w->data + t * k;
        const float *score = l;
        if (kind == ORC_ROUTER_SOFTMAX_TOPK) { /* softmax over every expert first */
            float mx = -INFINITY;
            for (int64_t i = 0; i < E; i++) mx = l[i] > mx ? l[i] : mx;
            double sum = 0;
            for (int64_t i = 0; i < E; i++) sum += (p[i] = expf(l[i] - mx));
            for (int64_t i = 0; i < E; i++) p[i] = (float)(p[i] / sum);
            score = p;
        }
        /* top k by selection: larger first, ties to the lower expert */
        for (int32_t j = 0; j < k; j++) {
            int64_t best = -1;
            for (int64_t i = 0; i < E; i++) {
                bool taken = false;
                for (int32_t q = 0; q < j; q++) taken = taken || id[q] == i;
                if (!taken && (best < 0 || score[i] > score[best])) best = i;
            }
            id[j] = (int32_t)best;
            wt[j] = score[best];
        }
        if (kind == ORC_ROUTER_TOPK_SOFTMAX) { /* softmax over the k selected logits */
            const float mx = wt[0];
            double sum = 0;
            for (int32_t j = 0; j < k; j++) sum += (wt[j] = expf(wt[j] - mx));
            for (int32_t j = 0; j < k; j++) wt[j] = (float)(wt[j] / sum);
        } else if (norm) {
            double sum = 0;
            for (int32_t j = 0; j < k; j++) sum += wt[j];
            for (int32_t j = 0; j < k; j++) wt[j] = (float)(wt[j] / sum);
        }
        for (int64_t i = 0; i < E; i++) /* a NaN router logit never passes unseen */
            if (isnan(l[i])) {
                for (int32_t j = 0; j < k; j++) wt[j] = NAN;
                break;
            }
    }
    return ORC_OK;
}

typedef struct matmul_id_job {
    cpu_exec *x;
    const float *in;
    bool per_slot;        /* input row of slot s: s (true) or s / k (false) */
    const orc_tensor *w;
    const float *bias;    /* [n_expert][rows_per] or NULL */
    const int32_t *order; /* slots grouped by expert: order[start[e] .. start[e+1]) use expert e */
    const int32_t *start;
    float *out;
    int64_t rows_per, cols, rows_per_task, chunks;
    int32_t k;
} matmul_id_job;

/* Task: a chunk of one expert's rows, each dequantized once and used by every slot that
 * selected the expert (the dot of each output element does not depend on the grouping). */
static void matmul_id_task(void *ctx, int64_t task, int thread) {
    matmul_id_job *j = ctx;
    const cpu_backend *c = cpu_of(&j->x->base);
    const int64_t e = task / j->chunks, r0 = (task % j->chunks) * j->rows_per_task;
    const int64_t r1 = r0 + j->rows_per_task < j->rows_per ? r0 + j->rows_per_task : j->rows_per;
    const int32_t b = j->start[e], end = j->start[e + 1];
    const float *bias = j->bias ? j->bias + e * j->rows_per : NULL;
    if (b == end) return;
    if (end - b == 1) { /* one slot chose this expert: its rows once each */
        const int64_t slot = j->order[b];
        const float *xin = j->in + (j->per_slot ? slot : slot / j->k) * j->cols;
        for (int64_t r = r0; r < r1; r++) {
            const float v = row_dot(c, j->w, e * j->rows_per + r, xin, j->x->rows[thread]);
            j->out[slot * j->rows_per + r] = bias ? v + bias[r] : v;
        }
        return;
    }
    for (int64_t r = r0; r < r1; r++) {
        const float *wr = row_f32(c, j->w, e * j->rows_per + r, j->x->rows[thread]);
        for (int32_t q = b; q < end; q++) {
            const int64_t slot = j->order[q];
            const float *xin = j->in + (j->per_slot ? slot : slot / j->k) * j->cols;
            const float v = orc_cpu_dot(xin, wr, j->cols);
            j->out[slot * j->rows_per + r] = bias ? v + bias[r] : v;
        }
    }
}

static orc_status cpu_matmul_id(orc_exec *e, const orc_tensor *x, bool x_per_slot, const orc_tensor *w,
                                const orc_tensor *bias, const orc_tensor *ids, int64_t n, int32_t k, orc_tensor *out,
                                orc_err *err) {
    cpu_exec *xe = (cpu_exec *)e;
    cpu_backend *c = cpu_of(e);
    const int64_t cols = w->cols, rows_per = out->cols, slots = n * k;
    if (x->cols != cols || cols > xe->row_len || rows_per <= 0 || w->rows % rows_per)
        return orc_fail(err, ORC_E_INTERNAL, "matmul_id: x has %lld cols, experts %lld x %lld, out %lld",
                        (long long)x->cols, (long long)w->rows, (long long)cols, (long long)rows_per);
    const int32_t *id = (const int32_t *)ids->data;
    const int64_t n_expert = w->rows / rows_per;
    if (n_expert <= 0 || n_expert > (1 << 20) || slots <= 0 || slots > INT32_MAX / 2)
        return orc_fail(err, ORC_E_INTERNAL, "matmul_id: %lld experts, %lld slots", (long long)n_expert, (long long)slots);
    if (bias && (bias->dtype != ORC_DTYPE_F32 || bias->qtype >= 0 || bias->rows * bias->cols != n_expert * rows_per))
        return orc_fail(err, ORC_E_INTERNAL, "matmul_id: expert bias of %lld x %lld for %lld experts x %lld rows",
                        (long long)bias->rows, (long long)bias->cols, (long long)n_expert, (long long)rows_per);
    int32_t *order = malloc((size_t)(slots + 2 * n_expert + 1) * sizeof(int32_t));
    if (!order) return orc_fail(err, ORC_E_NOMEM, "matmul_id: slot order");
    int32_t *start = order + slots, *fill = start + n_expert + 1;
    memset(start, 0, (size_t)(2 * n_expert + 1) * sizeof(int32_t));
    for (int64_t i = 0; i < slots; i++) {
        if (id[i] < 0 || id[i] >= n_expert) {
            free(order);
            return orc_fail(err, ORC_E_INTERNAL, "matmul_id: expert %d of %lld", (int)id[i], (long long)n_expert);
        }
        start[id[i] + 1]++;
    }
    for (int64_t ex = 0; ex < n_expert; ex++) start[ex + 1] += start[ex];
    for (int64_t i = 0; i < slots; i++) order[start[id[i]] + fill[id[i]]++] = (int32_t)i;
    const int64_t in_rows = x_per_slot ? slots : n;
    const float *xs = x->data;
    orc_status st = ORC_OK;
    if (c->round_inputs && w->qtype < 0 && w->dtype != ORC_DTYPE_F32) {
        if (in_rows * cols > xe->rounded_len) {
            st = orc_fail(err, ORC_E_INTERNAL, "matmul_id: rounding buffer too small");
            goto done;
        }
        for (int64_t i = 0; i < in_rows * cols; i++) xe->rounded[i] = round_to(w->dtype, xs[i]);
        xs = xe->rounded;
    }
    {
        matmul_id_job j = {.x = xe, .in = xs, .per_slot = x_per_slot, .w = w,
                           .bias = bias ? (const float *)bias->data : NULL, .order = order, .start = start,
                           .out = out->data, .rows_per = rows_per, .cols = cols, .k = k};
        j.rows_per_task = (rows_per + 7) / 8;
        j.chunks = (rows_per + j.rows_per_task - 1) / j.rows_per_task;
        orc_pool_run(c->pool, n_expert * j.chunks, matmul_id_task, &j);
    }
done:
    free(order);
    return st;
}

static orc_status cpu_moe_combine(orc_exec *e, const orc_tensor *y, const orc_tensor *w, int64_t n, int32_t k,
                                  const orc_tensor *res, orc_tensor *out, orc_err *err) {
    const int64_t C = out->cols;
    for (int64_t t = 0; t < n; t++) {
        float *o = (float *)out->data + t * C;
        const float *r = res ? (const float *)res->data + t * C : NULL;
        const float *wt = (const float *)w->data + t * k;
        for (int64_t c = 0; c < C; c++) {
            float acc = 0.0f;
            for (int32_t j = 0; j < k; j++) acc += wt[j] * ((const float *)y->data)[(t * k + j) * C + c];
            o[c] = r ? r[c] + acc : acc;
        }
    }
    return ORC_OK;
}

static bool cpu_supports(const orc_backend *b, orc_op op) { return op == ORC_OP_ATTN_PROBS; }

static void cpu_destroy(orc_backend *b) {
    if (!b) return;
    cpu_backend *c = cpu(b);
    orc_pool_destroy(c->pool);
    free(c->f16_table);
    free(c);
}

static const orc_backend_ops k_cpu_ops = {
    .name = "cpu",
    .destroy = cpu_destroy,
    .supports = cpu_supports,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload_weight = cpu_upload_weight,
    .upload_blocks = cpu_upload_blocks,
    .download = cpu_download,
    .upload = cpu_upload,
    .copy_rows = cpu_copy_rows,
    .sync = cpu_sync,
    .allocated = cpu_allocated,
    .trim = NULL,
    .exec_create = cpu_exec_create,
    .exec_destroy = cpu_exec_destroy,
    .get_rows = cpu_get_rows,
    .rms_norm = cpu_rms_norm,
    .matmul = cpu_matmul,
    .add_bias = cpu_add_bias,
    .add = cpu_add,
    .rope = cpu_rope,
    .kv_store = cpu_kv_store,
    .attention = cpu_attention,
    .glu = cpu_glu,
    .softcap = cpu_softcap,
    .argmax = cpu_argmax,
    .rope_kv_store = NULL, /* the three primitives, unfused */
    .rope_attention = NULL,
    .matvec = NULL,        /* no fused products: the program runs the primitives */
    .matvec_glu = NULL,
    .matvec_glu_id = NULL,
    .matvec_slots = NULL,
    .matvec_stack = NULL,
    .moe_route = cpu_moe_route,
    .matmul_id = cpu_matmul_id,
    .moe_combine = cpu_moe_combine,
    /* no graphs: every step runs eagerly */
};

orc_status orc_backend_cpu_create(const orc_backend_params *p, orc_backend **out, orc_err *err) {
    *out = NULL;
    cpu_backend *c = calloc(1, sizeof *c);
    if (!c) return orc_fail(err, ORC_E_NOMEM, "allocating the cpu backend");
    c->base.ops = &k_cpu_ops;
    c->round_inputs = p->round_matmul_inputs;
    orc_status st = orc_pool_create(p->n_threads, &c->pool, err);
    if (st != ORC_OK) goto fail;
    c->f16_table = malloc(65536 * sizeof(float));
    if (!c->f16_table) {
        st = orc_fail(err, ORC_E_NOMEM, "allocating the cpu backend");
        goto fail;
    }
    for (uint32_t h = 0; h < 65536; h++) c->f16_table[h] = orc_f16_to_f32((uint16_t)h);
    *out = &c->base;
    return ORC_OK;
fail:
    cpu_destroy(&c->base);
    return st;
}
