/* py_kernels.c - the Python side of the fast GPU path's test and benchmark entry points
 * (backend/gpu_kernels.h): _gpu_gemv / _gpu_gemv_bench (fused dequantize-GEMV, its
 * fused variants and MoE form), _gpu_attention_flash / _gpu_attention_flash_bench, and the
 * ceilings _gpu_copy_bench and _gpu_gemm_bench; and the CPU backend's row products
 * (_cpu_row_products, backend/cpu_dot.h). Arrays are checked here (dtype, rank,
 * shape, with the argument's name in the error); sizes against the weight type in the core.
 * The work runs without the GIL. */
#include "python/py_common.h"

#include <string.h> /* strcmp */

#include "backend/cpu_dot.h"
#include "backend/gpu_kernels.h"
#include "gguf/ggml_types.h" /* orc_type_nbytes */
#include "quant/quant.h"

/* `o` as a C-contiguous array of dtype `type` (or `type2` when >= 0) and `ndim` dimensions
 * (0: any): a new reference, or NULL with TypeError / ValueError naming `name`. None gives
 * NULL without an exception when `optional`. */
static PyArrayObject *get_array(PyObject *o, const char *name, int type, int type2, int ndim, int optional) {
    if (o == NULL || o == Py_None) {
        if (!optional) PyErr_Format(PyExc_TypeError, "%s is required", name);
        return NULL;
    }
    if (!PyArray_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be a numpy.ndarray, not %.100s", name, Py_TYPE(o)->tp_name);
        return NULL;
    }
    PyArrayObject *a = (PyArrayObject *)o;
    if (PyArray_TYPE(a) != type && (type2 < 0 || PyArray_TYPE(a) != type2)) {
        PyArray_Descr *want = PyArray_DescrFromType(type);
        PyErr_Format(PyExc_TypeError, "%s must have dtype %R, not %R", name, (PyObject *)want,
                     (PyObject *)PyArray_DESCR(a));
        Py_XDECREF(want);
        return NULL;
    }
    if (ndim && PyArray_NDIM(a) != ndim) {
        PyErr_Format(PyExc_ValueError, "%s must have %d dimension(s), not %d", name, ndim, PyArray_NDIM(a));
        return NULL;
    }
    return (PyArrayObject *)PyArray_GETCONTIGUOUS(a);
}

static PyObject *timing_dict(const orc_gpu_timing *t) {
    return Py_BuildValue("{s:d,s:d,s:d,s:i,s:i,s:i,s:K,s:d}", "ms_median", t->ms_median, "ms_min", t->ms_min,
                         "ms_max", t->ms_max, "launches", t->launches, "repeats", t->repeats, "copies", t->copies,
                         "bytes", (unsigned long long)t->bytes, "flops", t->flops);
}

/* ---- GEMV ------------------------------------------------------------------------------ */

typedef struct gemv_refs {
    PyArrayObject *w, *w_up, *x, *y, *bias, *bias_up, *res, *norm, *ids;
} gemv_refs;

static void gemv_refs_clear(gemv_refs *r) {
    Py_XDECREF(r->w);
    Py_XDECREF(r->w_up);
    Py_XDECREF(r->x);
    Py_XDECREF(r->y);
    Py_XDECREF(r->bias);
    Py_XDECREF(r->bias_up);
    Py_XDECREF(r->res);
    Py_XDECREF(r->norm);
    Py_XDECREF(r->ids);
    memset(r, 0, sizeof *r);
}

/* The arguments of _gpu_gemv and _gpu_gemv_bench into a job; 0, or -1 with an exception. */
static int parse_gemv(PyObject *args, PyObject *kwargs, const char *fmt, orc_gpu_gemv_job *j, gemv_refs *r,
                      int *repeats) {
    /* the bench takes one more keyword, `repeats` (CPython wants one entry per format unit) */
    static char *kw_bench[] = {"w", "type", "rows", "cols", "x", "y", "w_up", "bias", "bias_up", "res",
                               "res_in_y", "norm_w", "eps", "act", "ids", "n_expert", "x_int16", "repeats", NULL};
    static char *kw_run[] = {"w", "type", "rows", "cols", "x", "y", "w_up", "bias", "bias_up", "res",
                             "res_in_y", "norm_w", "eps", "act", "ids", "n_expert", "x_int16", NULL};
    char **kwlist = repeats ? kw_bench : kw_run;
    PyObject *w_o, *type_o, *x_o, *y_o, *wu_o = NULL, *b_o = NULL, *bu_o = NULL, *res_o = NULL, *nw_o = NULL,
                                          *ids_o = NULL;
    long long rows, cols;
    int res_in_y = 0, act = 0, n_expert = 0, x_int16 = 0, rep = 7;
    float eps = 1e-6f;
    memset(j, 0, sizeof *j);
    memset(r, 0, sizeof *r);
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, fmt, kwlist, &w_o, &type_o, &rows, &cols, &x_o, &y_o, &wu_o,
                                     &b_o, &bu_o, &res_o, &res_in_y, &nw_o, &eps, &act, &ids_o, &n_expert, &x_int16, &rep))
        return -1;
    j->type = orc_py_quant_type(type_o);
    if (j->type < 0) return -1;
    if (rows < 1 || cols < 1) {
        PyErr_Format(PyExc_ValueError, "rows (%lld) and cols (%lld) must be >= 1", rows, cols);
        return -1;
    }
    j->rows = rows;
    j->cols = cols;
    if (!(r->w = get_array(w_o, "w", NPY_UINT8, -1, 0, 0))) goto fail;
    if (!(r->x = get_array(x_o, "x", NPY_FLOAT32, -1, 2, 0))) goto fail;
    if (!(r->y = get_array(y_o, "y", NPY_FLOAT32, -1, 2, 0))) goto fail;
    r->w_up = get_array(wu_o, "w_up", NPY_UINT8, -1, 0, 1);
    if (PyErr_Occurred()) goto fail;
    r->ids = get_array(ids_o, "ids", NPY_INT32, -1, 2, 1);
    if (PyErr_Occurred()) goto fail;
    r->bias = get_array(b_o, "bias", NPY_FLOAT32, -1, 0, 1);
    if (PyErr_Occurred()) goto fail;
    r->bias_up = get_array(bu_o, "bias_up", NPY_FLOAT32, -1, 0, 1);
    if (PyErr_Occurred()) goto fail;
    r->res = get_array(res_o, "res", NPY_FLOAT32, -1, 2, 1);
    if (PyErr_Occurred()) goto fail;
    r->norm = get_array(nw_o, "norm_w", NPY_FLOAT32, -1, 1, 1);
    if (PyErr_Occurred()) goto fail;

    const npy_intp n = PyArray_DIM(r->x, 0), k = r->ids ? PyArray_DIM(r->ids, 1) : 1;
    if (n < 1 || n > 8) {
        PyErr_Format(PyExc_ValueError, "x has %zd rows (tokens): must be 1..8", (Py_ssize_t)n);
        goto fail;
    }
    if (PyArray_DIM(r->x, 1) < cols) {
        PyErr_Format(PyExc_ValueError, "x rows have %zd floats, fewer than cols = %lld", (Py_ssize_t)PyArray_DIM(r->x, 1),
                     cols);
        goto fail;
    }
    if (r->ids && (PyArray_DIM(r->ids, 0) != n || k < 1 || k > 8 || n_expert < 1)) {
        PyErr_Format(PyExc_ValueError, "ids must be [n = %zd][k = 1..8] with n_expert >= 1, got [%zd][%zd], n_expert %d",
                     (Py_ssize_t)n, (Py_ssize_t)PyArray_DIM(r->ids, 0), (Py_ssize_t)k, n_expert);
        goto fail;
    }
    const npy_intp nvec = r->ids ? n * k : n;
    if (PyArray_DIM(r->y, 0) != nvec || PyArray_DIM(r->y, 1) < rows) {
        PyErr_Format(PyExc_ValueError, "y must be [%zd][>= rows = %lld], got [%zd][%zd]", (Py_ssize_t)nvec, rows,
                     (Py_ssize_t)PyArray_DIM(r->y, 0), (Py_ssize_t)PyArray_DIM(r->y, 1));
        goto fail;
    }
    if (r->res && !PyArray_SAMESHAPE(r->res, r->y)) {
        PyErr_SetString(PyExc_ValueError, "res must have y's shape");
        goto fail;
    }
    const npy_intp nb = (npy_intp)rows * (r->ids ? n_expert : 1);
    if ((r->bias && PyArray_SIZE(r->bias) != nb) || (r->bias_up && PyArray_SIZE(r->bias_up) != nb)) {
        PyErr_Format(PyExc_ValueError, "bias / bias_up must have %zd floats (rows%s)", (Py_ssize_t)nb,
                     r->ids ? " x n_expert" : "");
        goto fail;
    }
    if (r->norm && PyArray_SIZE(r->norm) != cols) {
        PyErr_Format(PyExc_ValueError, "norm_w must have cols = %lld floats, not %zd", cols,
                     (Py_ssize_t)PyArray_SIZE(r->norm));
        goto fail;
    }
    if (r->w_up && PyArray_NBYTES(r->w_up) != PyArray_NBYTES(r->w)) {
        PyErr_SetString(PyExc_ValueError, "w_up must have as many bytes as w");
        goto fail;
    }
    if (repeats) {
        if (rep < 1 || rep > 1000) {
            PyErr_SetString(PyExc_ValueError, "repeats must be 1..1000");
            goto fail;
        }
        *repeats = rep;
    }
    j->w = PyArray_DATA(r->w);
    j->w_bytes = (uint64_t)PyArray_NBYTES(r->w);
    j->w_up = r->w_up ? PyArray_DATA(r->w_up) : NULL;
    j->n = (int32_t)n;
    j->x = PyArray_DATA(r->x);
    j->x_stride = PyArray_DIM(r->x, 1);
    j->y = PyArray_DATA(r->y);
    j->y_stride = PyArray_DIM(r->y, 1);
    j->bias = r->bias ? PyArray_DATA(r->bias) : NULL;
    j->bias_up = r->bias_up ? PyArray_DATA(r->bias_up) : NULL;
    j->res = r->res ? PyArray_DATA(r->res) : NULL;
    j->res_in_y = res_in_y;
    j->norm_w = r->norm ? PyArray_DATA(r->norm) : NULL;
    j->norm_eps = eps;
    j->act = act;
    j->ids = r->ids ? PyArray_DATA(r->ids) : NULL;
    j->k = (int32_t)k;
    j->n_expert = n_expert;
    j->x_int16 = x_int16;
    return 0;
fail:
    gemv_refs_clear(r);
    return -1;
}

/* _gpu_gemv(w, type, rows, cols, x, y, *, ...) -> a new array of y's shape: the result, with
 * y's values wherever the kernel wrote nothing (y is the poison / in-place residual). */
static PyObject *py_gpu_gemv(PyObject *m, PyObject *args, PyObject *kwargs) {
    orc_gpu_gemv_job j;
    gemv_refs r;
    if (parse_gemv(args, kwargs, "OOLLOO|$OOOOpOfiOip:_gpu_gemv", &j, &r, NULL) < 0) return NULL;
    PyArrayObject *out = (PyArrayObject *)PyArray_NewCopy(r.y, NPY_CORDER);
    if (!out) {
        gemv_refs_clear(&r);
        return NULL;
    }
    j.y = PyArray_DATA(out);
    orc_err err = {0};
    orc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = orc_gpu_gemv_run(&j, &err);
    Py_END_ALLOW_THREADS
    gemv_refs_clear(&r);
    if (st != ORC_OK) {
        Py_DECREF(out);
        return orc_py_raise_err(orc_state_of_module(m), &err);
    }
    return (PyObject *)out;
}

/* _gpu_gemv_integer_form(type) -> bool: the kernel's own answer (its decoders' Q::QI). */
static PyObject *py_gpu_gemv_integer_form(PyObject *m, PyObject *type_o) {
    const int32_t type = orc_py_quant_type(type_o);
    if (type < 0) return NULL;
    int32_t has = 0;
    orc_err err = {0};
    if (orc_gpu_gemv_integer_form(type, &has, &err) != ORC_OK) return orc_py_raise_err(orc_state_of_module(m), &err);
    return PyBool_FromLong(has);
}

static PyObject *py_gpu_gemv_bench(PyObject *m, PyObject *args, PyObject *kwargs) {
    orc_gpu_gemv_job j;
    gemv_refs r;
    int repeats = 7;
    if (parse_gemv(args, kwargs, "OOLLOO|$OOOOpOfiOipi:_gpu_gemv_bench", &j, &r, &repeats) < 0) return NULL;
    orc_err err = {0};
    orc_gpu_timing t;
    orc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = orc_gpu_gemv_bench(&j, repeats, &t, &err);
    Py_END_ALLOW_THREADS
    gemv_refs_clear(&r);
    if (st != ORC_OK) return orc_py_raise_err(orc_state_of_module(m), &err);
    return timing_dict(&t);
}

/* ---- attention ----------------------------------------------------------------------------- */

typedef struct attn_refs {
    PyArrayObject *q, *k, *v, *pos, *kv_base, *sinks, *out;
} attn_refs;

static void attn_refs_clear(attn_refs *r) {
    Py_XDECREF(r->q);
    Py_XDECREF(r->k);
    Py_XDECREF(r->v);
    Py_XDECREF(r->pos);
    Py_XDECREF(r->kv_base);
    Py_XDECREF(r->sinks);
    Py_XDECREF(r->out);
    memset(r, 0, sizeof *r);
}

static int parse_attn(PyObject *args, PyObject *kwargs, const char *fmt, orc_gpu_attn_job *j, attn_refs *r,
                      int *repeats) {
    static char *kw_bench[] = {"q", "k", "v", "pos", "kv_base", "n_head", "n_head_kv", "head_dim", "dtype",
                               "scale", "softcap", "window", "sinks", "out", "repeats", NULL};
    static char *kw_run[] = {"q", "k", "v", "pos", "kv_base", "n_head", "n_head_kv", "head_dim", "dtype",
                             "scale", "softcap", "window", "sinks", "out", NULL};
    char **kwlist = repeats ? kw_bench : kw_run;
    PyObject *q_o, *k_o, *v_o, *pos_o, *kvb_o, *dtype_o, *sinks_o = NULL, *out_o = NULL;
    int n_head, n_head_kv, head_dim, window = 0, rep = 5;
    float scale, softcap = 0.0f;
    memset(j, 0, sizeof *j);
    memset(r, 0, sizeof *r);
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, fmt, kwlist, &q_o, &k_o, &v_o, &pos_o, &kvb_o, &n_head,
                                     &n_head_kv, &head_dim, &dtype_o, &scale, &softcap, &window, &sinks_o, &out_o,
                                     &rep))
        return -1;
    const char *ds = PyUnicode_Check(dtype_o) ? PyUnicode_AsUTF8(dtype_o) : NULL;
    if (!ds) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "dtype must be \"float16\" or \"bfloat16\"");
        return -1;
    }
    orc_err perr = {0};
    if (orc_dtype_parse(ds, "dtype", &j->kv_dtype, &perr) != ORC_OK) {
        PyErr_SetString(PyExc_ValueError, perr.msg);
        return -1;
    }
    if (n_head < 1 || n_head_kv < 1 || head_dim < 1 || n_head % n_head_kv != 0 || window < 0) {
        PyErr_Format(PyExc_ValueError, "n_head %d, n_head_kv %d (dividing n_head), head_dim %d, window %d (>= 0)",
                     n_head, n_head_kv, head_dim, window);
        return -1;
    }
    if (!(r->q = get_array(q_o, "q", NPY_FLOAT32, -1, 2, 0))) goto fail;
    if (!(r->k = get_array(k_o, "k", NPY_UINT16, NPY_FLOAT16, 2, 0))) goto fail;
    if (!(r->v = get_array(v_o, "v", NPY_UINT16, NPY_FLOAT16, 2, 0))) goto fail;
    if (!(r->pos = get_array(pos_o, "pos", NPY_INT32, -1, 1, 0))) goto fail;
    if (!(r->kv_base = get_array(kvb_o, "kv_base", NPY_INT32, -1, 1, 0))) goto fail;
    r->sinks = get_array(sinks_o, "sinks", NPY_FLOAT32, -1, 1, 1);
    if (PyErr_Occurred()) goto fail;
    r->out = get_array(out_o, "out", NPY_FLOAT32, -1, 2, 1);
    if (PyErr_Occurred()) goto fail;
    const npy_intp n = PyArray_DIM(r->q, 0), nkv = PyArray_DIM(r->k, 0);
    const npy_intp dv = PyArray_DIM(r->v, 1) / n_head_kv;
    if (n < 1 || PyArray_DIM(r->q, 1) != (npy_intp)n_head * head_dim) {
        PyErr_Format(PyExc_ValueError, "q must be [n >= 1][n_head * head_dim = %d]", n_head * head_dim);
        goto fail;
    }
    if (PyArray_DIM(r->k, 1) != (npy_intp)n_head_kv * head_dim || PyArray_DIM(r->v, 0) != nkv ||
        PyArray_DIM(r->v, 1) != dv * n_head_kv) {
        PyErr_Format(PyExc_ValueError, "k must be [n_kv][n_head_kv * head_dim = %d] and v [n_kv][n_head_kv * head_dim_v]",
                     n_head_kv * head_dim);
        goto fail;
    }
    if (PyArray_SIZE(r->pos) != n || PyArray_SIZE(r->kv_base) != n) {
        PyErr_Format(PyExc_ValueError, "pos and kv_base must have n = %zd entries", (Py_ssize_t)n);
        goto fail;
    }
    if (r->sinks && PyArray_SIZE(r->sinks) != n_head) {
        PyErr_Format(PyExc_ValueError, "sinks must have n_head = %d entries", n_head);
        goto fail;
    }
    if (r->out && (PyArray_DIM(r->out, 0) != n || PyArray_DIM(r->out, 1) != n_head * dv)) {
        PyErr_Format(PyExc_ValueError, "out must be [n][n_head * head_dim_v = %zd]", (Py_ssize_t)(n_head * dv));
        goto fail;
    }
    if (repeats) {
        if (rep < 1 || rep > 1000) {
            PyErr_SetString(PyExc_ValueError, "repeats must be 1..1000");
            goto fail;
        }
        *repeats = rep;
    }
    j->n = n;
    j->n_kv = nkv;
    j->n_head = n_head;
    j->n_head_kv = n_head_kv;
    j->head_dim = head_dim;
    j->head_dim_v = (int32_t)dv;
    j->q = PyArray_DATA(r->q);
    j->k = PyArray_DATA(r->k);
    j->v = PyArray_DATA(r->v);
    j->pos = PyArray_DATA(r->pos);
    j->kv_base = PyArray_DATA(r->kv_base);
    j->scale = scale;
    j->softcap = softcap;
    j->window = window;
    j->sinks = r->sinks ? PyArray_DATA(r->sinks) : NULL;
    return 0;
fail:
    attn_refs_clear(r);
    return -1;
}

/* _gpu_attention_flash(q, k, v, pos, kv_base, n_head, n_head_kv, head_dim, dtype, scale, *,
 * softcap=0, window=0, sinks=None, out=None) -> float32 [n][n_head * head_dim_v]. `out` is
 * the initial content of the device buffer (poison); the result is a new array. */
static PyObject *py_gpu_attention_flash(PyObject *m, PyObject *args, PyObject *kwargs) {
    orc_gpu_attn_job j;
    attn_refs r;
    if (parse_attn(args, kwargs, "OOOOOiiiOf|$fiOO:_gpu_attention_flash", &j, &r, NULL) < 0) return NULL;
    npy_intp dims[2] = {(npy_intp)j.n, (npy_intp)j.n_head * j.head_dim_v};
    PyArrayObject *out = r.out ? (PyArrayObject *)PyArray_NewCopy(r.out, NPY_CORDER)
                               : (PyArrayObject *)PyArray_ZEROS(2, dims, NPY_FLOAT32, 0);
    if (!out) {
        attn_refs_clear(&r);
        return NULL;
    }
    j.out = PyArray_DATA(out);
    orc_err err = {0};
    orc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = orc_gpu_attention_flash_run(&j, &err);
    Py_END_ALLOW_THREADS
    attn_refs_clear(&r);
    if (st != ORC_OK) {
        Py_DECREF(out);
        return orc_py_raise_err(orc_state_of_module(m), &err);
    }
    return (PyObject *)out;
}

static PyObject *py_gpu_attention_flash_bench(PyObject *m, PyObject *args, PyObject *kwargs) {
    orc_gpu_attn_job j;
    attn_refs r;
    int repeats = 5;
    if (parse_attn(args, kwargs, "OOOOOiiiOf|$fiOOi:_gpu_attention_flash_bench", &j, &r, &repeats) < 0)
        return NULL;
    npy_intp dims[2] = {(npy_intp)j.n, (npy_intp)j.n_head * j.head_dim_v};
    PyArrayObject *out = (PyArrayObject *)PyArray_ZEROS(2, dims, NPY_FLOAT32, 0);
    if (!out) {
        attn_refs_clear(&r);
        return NULL;
    }
    j.out = PyArray_DATA(out);
    orc_err err = {0};
    orc_gpu_timing t;
    orc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = orc_gpu_attention_flash_bench(&j, repeats, &t, &err);
    Py_END_ALLOW_THREADS
    attn_refs_clear(&r);
    Py_DECREF(out);
    if (st != ORC_OK) return orc_py_raise_err(orc_state_of_module(m), &err);
    return timing_dict(&t);
}

/* ---- ceilings ------------------------------------------------------------------------------- */

/* _gpu_copy_bench(bytes, repeats) -> dict: device-to-device copies moving `bytes` (read + written). */
static PyObject *py_gpu_copy_bench(PyObject *m, PyObject *args) {
    unsigned long long bytes;
    int repeats;
    if (!PyArg_ParseTuple(args, "Ki:_gpu_copy_bench", &bytes, &repeats)) return NULL;
    if (bytes < 2 || repeats < 1 || repeats > 1000) {
        PyErr_SetString(PyExc_ValueError, "_gpu_copy_bench: need bytes >= 2 and repeats 1..1000");
        return NULL;
    }
    orc_err err = {0};
    orc_gpu_timing t;
    orc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = orc_gpu_copy_bench((uint64_t)bytes, repeats, &t, &err);
    Py_END_ALLOW_THREADS
    if (st != ORC_OK) return orc_py_raise_err(orc_state_of_module(m), &err);
    return timing_dict(&t);
}

/* _gpu_gemm_bench(m, n, k, repeats) -> dict: a cuBLAS float16 GEMM (float32 accumulate). */
static PyObject *py_gpu_gemm_bench(PyObject *mod, PyObject *args) {
    long long m, n, k;
    int repeats;
    if (!PyArg_ParseTuple(args, "LLLi:_gpu_gemm_bench", &m, &n, &k, &repeats)) return NULL;
    orc_err err = {0};
    orc_gpu_timing t;
    orc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = orc_gpu_gemm_f16_bench(m, n, k, repeats, &t, &err);
    Py_END_ALLOW_THREADS
    if (st != ORC_OK) return orc_py_raise_err(orc_state_of_module(mod), &err);
    return timing_dict(&t);
}

/* ---- the CPU's quantized row products ------------------------------------------------------ */

/* _cpu_row_products(w, type, rows, cols, x) -> (fused, reference, decoded): for each row of
 * blocks, the product decoded in registers (None when the type or CPU has no vector decoder),
 * orc_cpu_dot(x, orc_dequantize(row)), and the vector row decoder's floats [rows][cols] (None
 * likewise). */
static PyObject *py_cpu_row_products(PyObject *m, PyObject *args) {
    PyObject *w_o, *type_o, *x_o;
    long long rows, cols;
    if (!PyArg_ParseTuple(args, "OOLLO:_cpu_row_products", &w_o, &type_o, &rows, &cols, &x_o)) return NULL;
    const int32_t type = orc_py_quant_type(type_o);
    if (type < 0) return NULL;
    uint64_t row_bytes = 0;
    orc_err err = {0};
    if (rows < 1 || rows > (1 << 24) || cols < 1 || cols > (1 << 30) ||
        orc_type_nbytes(type, cols, &row_bytes, &err) != ORC_OK) { /* row_bytes * rows < 2^60: no overflow */
        if (err.status != ORC_OK) return orc_py_raise_err(orc_state_of_module(m), &err);
        PyErr_Format(PyExc_ValueError, "rows (%lld) must be 1..2^24 and cols (%lld) 1..2^30", rows, cols);
        return NULL;
    }
    PyArrayObject *w = get_array(w_o, "w", NPY_UINT8, -1, 0, 0), *x = NULL;
    PyObject *fused = NULL, *ref = NULL, *dec = NULL, *out = NULL;
    float *buf = NULL;
    if (!w || !(x = get_array(x_o, "x", NPY_FLOAT32, -1, 1, 0))) goto done;
    if ((uint64_t)PyArray_NBYTES(w) != row_bytes * (uint64_t)rows || PyArray_DIM(x, 0) != cols) {
        PyErr_Format(PyExc_ValueError, "w must hold %llu bytes (%lld rows of %llu) and x %lld floats",
                     (unsigned long long)(row_bytes * (uint64_t)rows), rows, (unsigned long long)row_bytes, cols);
        goto done;
    }
    const bool vec = orc_cpu_qrow_vectorized(type);
    npy_intp n1 = (npy_intp)rows, n2[2] = {(npy_intp)rows, (npy_intp)cols};
    ref = PyArray_SimpleNew(1, &n1, NPY_FLOAT32);
    fused = vec ? PyArray_SimpleNew(1, &n1, NPY_FLOAT32) : Py_NewRef(Py_None);
    dec = vec ? PyArray_SimpleNew(2, n2, NPY_FLOAT32) : Py_NewRef(Py_None);
    buf = malloc((size_t)cols * sizeof(float));
    if (!ref || !fused || !dec || !buf) {
        if (!PyErr_Occurred()) PyErr_NoMemory();
        goto done;
    }
    const uint8_t *wb = PyArray_DATA(w);
    const float *xv = PyArray_DATA(x);
    orc_status st = ORC_OK;
    Py_BEGIN_ALLOW_THREADS
    for (long long r = 0; r < rows && st == ORC_OK; r++) {
        const uint8_t *row = wb + (uint64_t)r * row_bytes;
        st = orc_dequantize(type, row, row_bytes, cols, ORC_DTYPE_F32, buf, &err);
        ((float *)PyArray_DATA((PyArrayObject *)ref))[r] = orc_cpu_dot(xv, buf, cols);
        if (vec) {
            ((float *)PyArray_DATA((PyArrayObject *)fused))[r] = orc_cpu_qdot(type, row, xv, cols);
            orc_cpu_qrow_f32(type, row, cols, (float *)PyArray_DATA((PyArrayObject *)dec) + r * cols);
        }
    }
    Py_END_ALLOW_THREADS
    if (st != ORC_OK) {
        orc_py_raise_err(orc_state_of_module(m), &err);
        goto done;
    }
    out = PyTuple_Pack(3, fused, ref, dec);
done:
    free(buf);
    Py_XDECREF(w);
    Py_XDECREF(x);
    Py_XDECREF(fused);
    Py_XDECREF(ref);
    Py_XDECREF(dec);
    return out;
}

static PyMethodDef orc_py_kernels_methods[] = {
    {"_gpu_gemv", (PyCFunction)(void (*)(void))py_gpu_gemv, METH_VARARGS | METH_KEYWORDS,
     "_gpu_gemv(w, type, rows, cols, x, y, *, w_up=None, bias=None, bias_up=None, res=None, res_in_y=False,\n"
     "          norm_w=None, eps=1e-6, act=0, ids=None, n_expert=0, x_int16=False) -> numpy.ndarray\n\n"
     "One fused dequantize-GEMV launch (cuda/gemv/gemv.cuh) on the GPU: w holds the ggml blocks\n"
     "(uint8; MoE: n_expert matrices), x float32 [n][>= cols], y float32 [n or n*k][>= rows] the\n"
     "output's initial device content (poison, or the residual with res_in_y). x_int16: the integer\n"
     "form where the type has it (one token, Q4_0 / Q5_0 / Q4_K / Q6_K / Q8_0 / MXFP4 / IQ4_NL). Returns y's shape."},
    {"_gpu_gemv_integer_form", (PyCFunction)py_gpu_gemv_integer_form, METH_O,
     "_gpu_gemv_integer_form(type) -> bool: whether the one-token GEMV of that ggml type has the integer\n"
     "form (x_int16); needs a CUDA build, not a GPU."},
    {"_gpu_gemv_bench", (PyCFunction)(void (*)(void))py_gpu_gemv_bench, METH_VARARGS | METH_KEYWORDS,
     "_gpu_gemv_bench(... as _gpu_gemv ..., repeats=7) -> dict: per-launch times (ms_median, ms_min,\n"
     "ms_max), launches per replay, copies of the weights rotated over, bytes read per launch."},
    {"_gpu_attention_flash", (PyCFunction)(void (*)(void))py_gpu_attention_flash, METH_VARARGS | METH_KEYWORDS,
     "_gpu_attention_flash(q, k, v, pos, kv_base, n_head, n_head_kv, head_dim, dtype, scale, *, softcap=0,\n"
     "                     window=0, sinks=None, out=None) -> float32 [n][n_head * head_dim_v]\n\n"
     "The flash-attention kernel (cuda/kernels/attention_flash.cuh) on host arrays: q float32\n"
     "[n][n_head*head_dim], k/v caches uint16 (or float16) bits [n_kv][n_head_kv*head_dim] of dtype\n"
     "\"float16\" or \"bfloat16\", pos / kv_base int32 [n]."},
    {"_gpu_attention_flash_bench", (PyCFunction)(void (*)(void))py_gpu_attention_flash_bench,
     METH_VARARGS | METH_KEYWORDS,
     "_gpu_attention_flash_bench(... as _gpu_attention_flash ..., repeats=5) -> dict of timings and flops."},
    {"_gpu_copy_bench", py_gpu_copy_bench, METH_VARARGS,
     "_gpu_copy_bench(bytes, repeats) -> dict: device-to-device copy moving `bytes` (read + written)."},
    {"_gpu_gemm_bench", py_gpu_gemm_bench, METH_VARARGS,
     "_gpu_gemm_bench(m, n, k, repeats) -> dict: cuBLAS float16 GEMM with float32 accumulation."},
    {"_cpu_row_products", py_cpu_row_products, METH_VARARGS,
     "_cpu_row_products(w, type, rows, cols, x) -> (fused, reference, decoded)\n\n"
     "The CPU backend's products of rows of ggml blocks w (uint8) with x (float32 [cols]): decoded in\n"
     "registers (backend/cpu_dot.c; None when this type or CPU has no vector decoder), and\n"
     "orc_cpu_dot on orc_dequantize's row; and the vector row decoder's floats [rows][cols] (or None)."},
    {NULL, NULL, 0, NULL},
};

int orc_py_kernels_exec(PyObject *m) { return PyModule_AddFunctions(m, orc_py_kernels_methods); }
