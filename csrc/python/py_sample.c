/* py_sample.c - the Python side of sample.c: orc.Sampler (sampler parameters
 * plus its own PCG32 stream), orc.sample() (one draw with a fresh stream), the
 * argument conversion declared in py_sample.h, and private hooks the tests use
 * to check the RNG and exp against independent implementations. */
#include "python/py_sample.h"

#include <float.h>   /* FLT_MAX */
#include <math.h>    /* isfinite */
#include <string.h>  /* strcmp */

#define PARAM_NAMES_TEXT \
    "temperature, top_k, top_p, min_p, repeat_penalty, frequency_penalty, presence_penalty, penalty_last_n"

/* Calls with at least this many logits (or history ids) release the GIL. */
#define RELEASE_GIL_FROM 1024

/* ------------------------------------------------------------ argument conversion */

static int set_float(float *out, const char *name, PyObject *v) {
    if (PyBool_Check(v) || !(PyFloat_Check(v) || PyLong_Check(v) || PyIndex_Check(v) || PyNumber_Check(v))) {
        PyErr_Format(PyExc_TypeError, "%s must be a number, got %.100s", name, Py_TYPE(v)->tp_name);
        return -1;
    }
    double d = PyFloat_AsDouble(v);
    if (d == -1.0 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_TypeError)) return -1;
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s must be a number, got %.100s", name, Py_TYPE(v)->tp_name);
        return -1;
    }
    if (isfinite(d) && (d > FLT_MAX || d < -FLT_MAX)) {
        PyErr_Format(PyExc_ValueError, "%s = %R does not fit in a float32", name, v);
        return -1;
    }
    *out = (float)d;
    return 0;
}

static int set_int(int32_t *out, const char *name, PyObject *v) {
    if (PyBool_Check(v) || !PyIndex_Check(v)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int, got %.100s", name, Py_TYPE(v)->tp_name);
        return -1;
    }
    PyObject *i = PyNumber_Index(v);
    if (!i) return -1;
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(i, &overflow);
    Py_DECREF(i);
    if (x == -1 && PyErr_Occurred()) return -1;
    if (overflow || x < INT32_MIN || x > INT32_MAX) {
        PyErr_Format(PyExc_ValueError, "%s = %R is out of range (it must fit in an int32)", name, v);
        return -1;
    }
    *out = (int32_t)x;
    return 0;
}

int orc_py_sampler_param_set(orc_sampler_params *p, PyObject *name, PyObject *value) {
    if (!PyUnicode_Check(name)) return 0;
    const char *s = PyUnicode_AsUTF8(name);
    if (!s) return -1;
    int r;
    if (!strcmp(s, "temperature")) r = set_float(&p->temperature, s, value);
    else if (!strcmp(s, "top_k")) r = set_int(&p->top_k, s, value);
    else if (!strcmp(s, "top_p")) r = set_float(&p->top_p, s, value);
    else if (!strcmp(s, "min_p")) r = set_float(&p->min_p, s, value);
    else if (!strcmp(s, "repeat_penalty")) r = set_float(&p->repeat_penalty, s, value);
    else if (!strcmp(s, "frequency_penalty")) r = set_float(&p->frequency_penalty, s, value);
    else if (!strcmp(s, "presence_penalty")) r = set_float(&p->presence_penalty, s, value);
    else if (!strcmp(s, "penalty_last_n")) r = set_int(&p->penalty_last_n, s, value);
    else return 0;
    return r < 0 ? -1 : 1;
}

int orc_py_sampler_params_check(const orc_sampler_params *p) {
    orc_err err = {0};
    if (orc_sampler_params_check(p, &err) != ORC_OK) {
        orc_py_raise_err(NULL, &err);
        return -1;
    }
    return 0;
}

int orc_py_sampler_kwargs(const char *fname, PyObject *kwargs, orc_sampler_params *p, const char *const *extra,
                          PyObject **extra_out) {
    if (kwargs) {
        PyObject *key, *value;
        Py_ssize_t pos = 0;
        while (PyDict_Next(kwargs, &pos, &key, &value)) {
            int k = 0;
            for (; extra && extra[k]; k++)
                if (PyUnicode_Check(key) && PyUnicode_CompareWithASCIIString(key, extra[k]) == 0) break;
            if (extra && extra[k]) {
                if (extra_out[k]) {
                    PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", fname, extra[k]);
                    return -1;
                }
                extra_out[k] = value;
                continue;
            }
            int r = orc_py_sampler_param_set(p, key, value);
            if (r < 0) return -1;
            if (r == 0) {
                PyObject *names = PyUnicode_FromString("");
                for (int j = 0; names && extra && extra[j]; j++) Py_SETREF(names, PyUnicode_FromFormat("%U%s, ", names, extra[j]));
                if (names)
                    PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument %R (it takes %U" PARAM_NAMES_TEXT ")",
                                 fname, key, names);
                Py_XDECREF(names);
                return -1;
            }
        }
    }
    return orc_py_sampler_params_check(p);
}

/* The shortest decimal string that reads back (through a double) as f. */
static char *f32_text(float f) {
    char *s = NULL;
    for (int prec = 1; prec <= 9; prec++) {
        PyMem_Free(s);
        s = PyOS_double_to_string((double)f, 'g', prec, 0, NULL);
        if (!s) return NULL;
        double back = PyOS_string_to_double(s, NULL, NULL);
        if (back == -1.0 && PyErr_Occurred()) {
            PyMem_Free(s);
            return NULL;
        }
        if ((float)back == f) break;
    }
    return s;
}

static PyObject *f32_to_py(float f) {
    char *s = f32_text(f);
    if (!s) return NULL;
    double d = PyOS_string_to_double(s, NULL, NULL);
    PyMem_Free(s);
    if (d == -1.0 && PyErr_Occurred()) return NULL;
    return PyFloat_FromDouble(d);
}

PyObject *orc_py_sampler_params_dict(const orc_sampler_params *p) {
    PyObject *d = PyDict_New(), *v = NULL;
    if (!d) return NULL;
#define PUT(key, expr)                                                  \
    do {                                                                \
        if (!(v = (expr)) || PyDict_SetItemString(d, key, v) < 0) goto fail; \
        Py_CLEAR(v);                                                    \
    } while (0)
    PUT("temperature", f32_to_py(p->temperature));
    PUT("top_k", PyLong_FromLong(p->top_k));
    PUT("top_p", f32_to_py(p->top_p));
    PUT("min_p", f32_to_py(p->min_p));
    PUT("repeat_penalty", f32_to_py(p->repeat_penalty));
    PUT("frequency_penalty", f32_to_py(p->frequency_penalty));
    PUT("presence_penalty", f32_to_py(p->presence_penalty));
    PUT("penalty_last_n", PyLong_FromLong(p->penalty_last_n));
#undef PUT
    return d;
fail:
    Py_XDECREF(v);
    Py_DECREF(d);
    return NULL;
}

/* A numeric NumPy dtype we accept for logits / history. */
static int kind_is_number(char kind) { return kind == 'f' || kind == 'i' || kind == 'u'; }

static PyArrayObject *as_array(PyObject *obj, const char *what) {
    if (PyArray_Check(obj)) return (PyArrayObject *)Py_NewRef(obj);
    PyArrayObject *a = (PyArrayObject *)PyArray_FROMANY(obj, NPY_NOTYPE, 0, 0, 0);
    if (!a) {
        if (!PyErr_ExceptionMatches(PyExc_TypeError) && !PyErr_ExceptionMatches(PyExc_ValueError)) return NULL;
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s must be a 1-D array or sequence of numbers; could not convert a %.100s", what,
                     Py_TYPE(obj)->tp_name);
    }
    return a;
}

static void raise_bad_ndim(const char *what, const char *expect, PyArrayObject *a) {
    PyObject *shape = PyObject_GetAttrString((PyObject *)a, "shape");
    if (!shape) return;
    PyErr_Format(PyExc_ValueError, "%s must be 1-D %s; got an array of shape %R", what, expect, shape);
    Py_DECREF(shape);
}

PyArrayObject *orc_py_logits_arg(PyObject *obj, const char **converted_from) {
    if (converted_from) *converted_from = "";
    PyArrayObject *src = as_array(obj, "logits"), *out = NULL;
    if (!src) return NULL;
    PyArray_Descr *d = PyArray_DESCR(src);
    if (!kind_is_number(d->kind)) {
        PyErr_Format(PyExc_TypeError, "logits must be a float array (float32 preferred); got dtype %S", (PyObject *)d);
        goto done;
    }
    if (PyArray_NDIM(src) != 1) {
        raise_bad_ndim("logits", "[n_vocab] (one row: pass logits[-1] for the last position)", src);
        goto done;
    }
    if (PyArray_SIZE(src) == 0) {
        PyErr_SetString(PyExc_ValueError, "logits are empty (n_vocab = 0)");
        goto done;
    }
    if (PyArray_SIZE(src) > INT32_MAX) {
        PyErr_Format(PyExc_ValueError, "logits have %zd entries; at most %d are supported", (Py_ssize_t)PyArray_SIZE(src),
                     (int)INT32_MAX);
        goto done;
    }
    if (converted_from && d->type_num != NPY_FLOAT32) *converted_from = d->typeobj->tp_name;
    out = (PyArrayObject *)PyArray_FROMANY((PyObject *)src, NPY_FLOAT32, 1, 1,
                                           NPY_ARRAY_IN_ARRAY | NPY_ARRAY_FORCECAST);
done:
    Py_DECREF(src);
    return out;
}

int orc_py_history_arg(PyObject *obj, int32_t n_vocab, PyArrayObject **out) {
    *out = NULL;
    if (!obj || obj == Py_None) return 0;
    int rc = -1;
    PyArrayObject *src = as_array(obj, "history"), *wide = NULL, *res = NULL;
    if (!src) return -1;
    if (PyArray_NDIM(src) != 1) {
        raise_bad_ndim("history", "(a sequence of token ids)", src);
        goto done;
    }
    npy_intp n = PyArray_SIZE(src);
    if (n == 0) {
        rc = 0; /* an empty list comes as float64: any dtype is fine for no ids */
        goto done;
    }
    char kind = PyArray_DESCR(src)->kind;
    if (kind != 'i' && kind != 'u') {
        PyErr_Format(PyExc_TypeError, "history must hold integer token ids; got dtype %S", (PyObject *)PyArray_DESCR(src));
        goto done;
    }
    const int is_unsigned = kind == 'u';
    wide = (PyArrayObject *)PyArray_FROMANY((PyObject *)src, is_unsigned ? NPY_UINT64 : NPY_INT64, 1, 1, NPY_ARRAY_IN_ARRAY);
    if (!wide) goto done;
    res = (PyArrayObject *)PyArray_SimpleNew(1, &n, NPY_INT32);
    if (!res) goto done;
    int32_t *dst = PyArray_DATA(res);
    for (npy_intp i = 0; i < n; i++) {
        if (is_unsigned) {
            unsigned long long v = ((const npy_uint64 *)PyArray_DATA(wide))[i];
            if (v >= (unsigned long long)n_vocab) {
                PyErr_Format(PyExc_ValueError, "history[%zd] = %llu is not a token id (n_vocab = %d)", (Py_ssize_t)i, v,
                             (int)n_vocab);
                goto done;
            }
            dst[i] = (int32_t)v;
        } else {
            long long v = ((const npy_int64 *)PyArray_DATA(wide))[i];
            if (v < 0 || v >= n_vocab) {
                PyErr_Format(PyExc_ValueError, "history[%zd] = %lld is not a token id (n_vocab = %d)", (Py_ssize_t)i, v,
                             (int)n_vocab);
                goto done;
            }
            dst[i] = (int32_t)v;
        }
    }
    *out = res;
    res = NULL;
    rc = 0;
done:
    Py_XDECREF(res);
    Py_XDECREF(wide);
    Py_DECREF(src);
    return rc;
}

static int parse_seed(PyObject *v, uint64_t *seed) {
    if (PyBool_Check(v) || !PyIndex_Check(v)) {
        PyErr_Format(PyExc_TypeError, "seed must be an int, got %.100s", Py_TYPE(v)->tp_name);
        return -1;
    }
    PyObject *i = PyNumber_Index(v);
    if (!i) return -1;
    unsigned long long s = PyLong_AsUnsignedLongLong(i);
    Py_DECREF(i);
    if (s == (unsigned long long)-1 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError)) return -1;
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "seed = %R is invalid: it must be an integer in [0, 2**64)", v);
        return -1;
    }
    *seed = s;
    return 0;
}

/* ------------------------------------------------------------ the work */

/* A Sampler runs with the GIL released while it samples; a second thread
 * must not move its RNG underneath. */
static void raise_busy(orc_state *st) {
    PyErr_SetString(st ? st->OrcError : PyExc_RuntimeError,
                    "this Sampler is in use by another thread; give each thread its own (Sampler.copy())");
}

/* The optional n_vocab= of the sampling calls: None -> -1, else an int >= 1. 0 or -1. */
static int n_vocab_arg(PyObject *obj, long long *out) {
    *out = -1;
    if (!obj || obj == Py_None) return 0;
    if (PyBool_Check(obj) || !PyLong_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "n_vocab must be an int or None, not %.100s", Py_TYPE(obj)->tp_name);
        return -1;
    }
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (v == -1 && PyErr_Occurred()) return -1;
    if (overflow || v < 1 || v > INT32_MAX) {
        PyErr_Format(PyExc_ValueError, "n_vocab = %R is not a vocabulary size (1 .. 2**31 - 1)", obj);
        return -1;
    }
    *out = v;
    return 0;
}

/* One orc_sample (probs == 0) or orc_sampler_probs (probs == 1) call on
 * Python arguments, with the GIL released for large inputs. busy: the
 * Sampler's in-use flag (NULL for a private RNG). n_vocab >= 0: the logits
 * must have exactly that many entries (a model's vocabulary: a longer row
 * would let the sampler return an id the model does not have). */
static PyObject *run(orc_state *st, const orc_sampler_params *p, orc_rng *rng, int *busy, PyObject *logits_obj,
                     PyObject *history_obj, int want_probs, long long n_vocab) {
    const char *converted_from = "";
    PyArrayObject *logits = NULL, *hist = NULL, *probs = NULL;
    PyObject *result = NULL;
    logits = orc_py_logits_arg(logits_obj, &converted_from);
    if (!logits) return NULL;
    if (n_vocab >= 0 && (long long)PyArray_SIZE(logits) != n_vocab) {
        PyErr_Format(PyExc_ValueError,
                     "logits have %zd entries but the model's vocabulary has n_vocab = %lld tokens (pass one row of "
                     "the model's logits, e.g. logits[-1])",
                     (Py_ssize_t)PyArray_SIZE(logits), n_vocab);
        Py_DECREF(logits);
        return NULL;
    }
    const int32_t n = (int32_t)PyArray_SIZE(logits);
    if (orc_py_history_arg(history_obj, n, &hist) < 0) goto done;
    if (want_probs) {
        npy_intp dim = n;
        probs = (PyArrayObject *)PyArray_SimpleNew(1, &dim, NPY_FLOAT64);
        if (!probs) goto done;
    }
    if (busy) {
        if (*busy) {
            raise_busy(st);
            goto done;
        }
        *busy = 1;
    }

    orc_err err = {0};
    const float *lp = PyArray_DATA(logits);
    const int32_t *hp = hist ? (const int32_t *)PyArray_DATA(hist) : NULL;
    const int64_t nh = hist ? (int64_t)PyArray_SIZE(hist) : 0;
    int32_t token = -1;
    orc_status s;
    PyThreadState *ts = (n >= RELEASE_GIL_FROM || nh >= RELEASE_GIL_FROM) ? PyEval_SaveThread() : NULL;
    if (want_probs)
        s = orc_sampler_probs(lp, n, p, hp, nh, (double *)PyArray_DATA(probs), &err);
    else
        s = orc_sample(lp, n, p, hp, nh, rng, &token, &err);
    if (ts) PyEval_RestoreThread(ts);
    if (busy) *busy = 0;

    if (s != ORC_OK) {
        if (converted_from[0] && strncmp(err.msg, "logits[", 7) == 0)
            orc_err_prefix(&err, "the logits were converted from %s to float32: ", converted_from);
        orc_py_raise_err(st, &err);
        goto done;
    }
    result = want_probs ? Py_NewRef((PyObject *)probs) : PyLong_FromLong(token);
done:
    Py_XDECREF(logits);
    Py_XDECREF(hist);
    Py_XDECREF(probs);
    return result;
}

/* ------------------------------------------------------------ orc.Sampler */

typedef struct {
    PyObject_HEAD
    orc_sampler_params params;
    orc_rng rng;
    uint64_t seed;
    int busy; /* a call runs with the GIL released: state changes must wait */
} SamplerObject;

static int refuse_if_busy(SamplerObject *self) {
    if (!self->busy) return 0;
    raise_busy(orc_state_of_type(Py_TYPE(self)));
    return -1;
}

static PyObject *Sampler_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    orc_sampler_params p;
    orc_sampler_params_default(&p);
    PyObject *seed_obj = NULL;
    Py_ssize_t nargs = PyTuple_GET_SIZE(args);
    if (nargs > 1) {
        PyErr_Format(PyExc_TypeError,
                     "Sampler() takes at most 1 positional argument (seed), got %zd; pass the sampler parameters by "
                     "keyword",
                     nargs);
        return NULL;
    }
    if (nargs == 1) seed_obj = PyTuple_GET_ITEM(args, 0);
    static const char *const extra[] = {"seed", NULL};
    if (orc_py_sampler_kwargs("Sampler", kwargs, &p, extra, &seed_obj) < 0) return NULL;
    uint64_t seed = 0;
    if (seed_obj && parse_seed(seed_obj, &seed) < 0) return NULL;

    SamplerObject *self = (SamplerObject *)type->tp_alloc(type, 0);
    if (!self) return NULL;
    self->params = p;
    self->seed = seed;
    orc_rng_seed(&self->rng, seed);
    self->busy = 0;
    return (PyObject *)self;
}

static void Sampler_dealloc(PyObject *self) {
    PyTypeObject *tp = Py_TYPE(self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyObject *Sampler_sample(SamplerObject *self, PyObject *args, PyObject *kwargs) {
    static char *kwlist[] = {"logits", "history", "n_vocab", NULL};
    PyObject *logits, *history = Py_None, *nv = Py_None;
    long long n_vocab;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|O$O:sample", kwlist, &logits, &history, &nv)) return NULL;
    if (n_vocab_arg(nv, &n_vocab) < 0) return NULL;
    return run(orc_state_of_type(Py_TYPE(self)), &self->params, &self->rng, &self->busy, logits, history, 0, n_vocab);
}

static PyObject *Sampler_probs(SamplerObject *self, PyObject *args, PyObject *kwargs) {
    static char *kwlist[] = {"logits", "history", "n_vocab", NULL};
    PyObject *logits, *history = Py_None, *nv = Py_None;
    long long n_vocab;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|O$O:probs", kwlist, &logits, &history, &nv)) return NULL;
    if (n_vocab_arg(nv, &n_vocab) < 0) return NULL;
    return run(orc_state_of_type(Py_TYPE(self)), &self->params, NULL, NULL, logits, history, 1, n_vocab);
}

static PyObject *Sampler_get_state(SamplerObject *self, PyObject *unused) {
    if (refuse_if_busy(self) < 0) return NULL;
    return Py_BuildValue("(KK)", (unsigned long long)self->rng.state, (unsigned long long)self->rng.inc);
}

static int state_word(PyObject *v, const char *name, uint64_t *out) {
    if (PyBool_Check(v) || !PyLong_Check(v)) {
        PyErr_Format(PyExc_TypeError, "set_state: %s must be an int, got %.100s", name, Py_TYPE(v)->tp_name);
        return -1;
    }
    unsigned long long x = PyLong_AsUnsignedLongLong(v);
    if (x == (unsigned long long)-1 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError)) return -1;
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "set_state: %s = %R is not in [0, 2**64)", name, v);
        return -1;
    }
    *out = x;
    return 0;
}

static PyObject *Sampler_set_state(SamplerObject *self, PyObject *state) {
    if (refuse_if_busy(self) < 0) return NULL;
    if (!PyTuple_Check(state) && !PyList_Check(state)) {
        PyErr_Format(PyExc_TypeError, "set_state takes the (state, inc) pair that get_state() returns, got %.100s",
                     Py_TYPE(state)->tp_name);
        return NULL;
    }
    if (PySequence_Size(state) != 2) {
        PyErr_Format(PyExc_ValueError, "set_state takes the (state, inc) pair that get_state() returns, got %zd items",
                     PySequence_Size(state));
        return NULL;
    }
    uint64_t s, inc;
    PyObject *a = PySequence_GetItem(state, 0), *b = a ? PySequence_GetItem(state, 1) : NULL;
    int bad = !a || !b || state_word(a, "state", &s) < 0 || state_word(b, "inc", &inc) < 0;
    Py_XDECREF(a);
    Py_XDECREF(b);
    if (bad) return NULL;
    if ((inc & 1u) == 0) {
        PyErr_Format(PyExc_ValueError, "set_state: inc = %llu is even; a PCG32 increment is always odd",
                     (unsigned long long)inc);
        return NULL;
    }
    self->rng.state = s;
    self->rng.inc = inc;
    Py_RETURN_NONE;
}

static PyObject *Sampler_copy(SamplerObject *self, PyObject *unused) {
    if (refuse_if_busy(self) < 0) return NULL;
    PyTypeObject *type = Py_TYPE(self);
    SamplerObject *c = (SamplerObject *)type->tp_alloc(type, 0);
    if (!c) return NULL;
    c->params = self->params;
    c->rng = self->rng;
    c->seed = self->seed;
    c->busy = 0;
    return (PyObject *)c;
}

static PyObject *Sampler_deepcopy(SamplerObject *self, PyObject *memo) { return Sampler_copy(self, NULL); }

static PyObject *Sampler_get_params(SamplerObject *self, void *closure) {
    return orc_py_sampler_params_dict(&self->params);
}

static PyObject *Sampler_get_seed(SamplerObject *self, void *closure) {
    return PyLong_FromUnsignedLongLong(self->seed);
}

static int append_float(PyObject *parts, const char *name, float f) {
    char *s = f32_text(f);
    if (!s) return -1;
    PyObject *u = PyUnicode_FromFormat("%s=%s", name, s);
    PyMem_Free(s);
    if (!u) return -1;
    int r = PyList_Append(parts, u);
    Py_DECREF(u);
    return r;
}

static int append_int(PyObject *parts, const char *name, long long v) {
    PyObject *u = PyUnicode_FromFormat("%s=%lld", name, v);
    if (!u) return -1;
    int r = PyList_Append(parts, u);
    Py_DECREF(u);
    return r;
}

/* orc.Sampler(seed=7, temperature=0.7, top_k=40): the seed and temperature,
 * then only the samplers that are on. */
static PyObject *Sampler_repr(SamplerObject *self) {
    const orc_sampler_params *p = &self->params;
    PyObject *parts = PyList_New(0), *sep = NULL, *joined = NULL, *out = NULL;
    if (!parts) return NULL;
    const int pen_on = p->repeat_penalty != 1.0f || p->frequency_penalty != 0.0f || p->presence_penalty != 0.0f;
    PyObject *seed_text = PyUnicode_FromFormat("seed=%llu", (unsigned long long)self->seed);
    if (!seed_text) goto done;
    int appended = PyList_Append(parts, seed_text);
    Py_DECREF(seed_text);
    if (appended < 0) goto done;
    if (append_float(parts, "temperature", p->temperature) < 0) goto done;
    if (p->top_k != 0 && append_int(parts, "top_k", p->top_k) < 0) goto done;
    if (p->top_p != 1.0f && append_float(parts, "top_p", p->top_p) < 0) goto done;
    if (p->min_p != 0.0f && append_float(parts, "min_p", p->min_p) < 0) goto done;
    if (p->repeat_penalty != 1.0f && append_float(parts, "repeat_penalty", p->repeat_penalty) < 0) goto done;
    if (p->frequency_penalty != 0.0f && append_float(parts, "frequency_penalty", p->frequency_penalty) < 0) goto done;
    if (p->presence_penalty != 0.0f && append_float(parts, "presence_penalty", p->presence_penalty) < 0) goto done;
    if (pen_on && append_int(parts, "penalty_last_n", p->penalty_last_n) < 0) goto done;
    if (!(sep = PyUnicode_FromString(", "))) goto done;
    if (!(joined = PyUnicode_Join(sep, parts))) goto done;
    out = PyUnicode_FromFormat("orc.Sampler(%U)", joined);
done:
    Py_XDECREF(joined);
    Py_XDECREF(sep);
    Py_DECREF(parts);
    return out;
}

PyDoc_STRVAR(Sampler_sample_doc,
             "sample($self, logits, history=None, *, n_vocab=None)\n--\n\n"
             "Draw one token id (an int) from `logits` (1-D, n_vocab; converted to float32), advancing this\n"
             "sampler's RNG by one uniform draw (not at all for greedy, temperature=0). `history`: the\n"
             "token ids seen so far (prompt + generated), which the penalties look at. NaN/Inf logits\n"
             "and ids outside [0, n_vocab) raise ValueError naming the first bad position. `n_vocab`: the\n"
             "model's vocabulary size; logits of another length raise ValueError naming both (without it\n"
             "any length is accepted and the id is an index into the logits given).");
PyDoc_STRVAR(Sampler_probs_doc,
             "probs($self, logits, history=None, *, n_vocab=None)\n--\n\n"
             "The float64 numpy array of the distribution sample() draws from after penalties, top-k, top-p, min-p and\n"
             "temperature (zeros for removed tokens; one-hot for greedy). Does not touch the RNG.");
PyDoc_STRVAR(Sampler_get_state_doc,
             "get_state($self)\n--\n\n"
             "The PCG32 state as a (state, inc) pair of ints; set_state() on this or another Sampler\n"
             "continues the same stream.");
PyDoc_STRVAR(Sampler_set_state_doc,
             "set_state($self, state, /)\n--\n\n"
             "Restore a (state, inc) pair from get_state() (inc must be odd). The parameters are unchanged.");
PyDoc_STRVAR(Sampler_copy_doc,
             "copy($self)\n--\n\n"
             "A new, independent Sampler with the same parameters, seed and RNG position: both draw the same\n"
             "tokens from here on (what Session.fork() needs).");

static PyMethodDef Sampler_methods[] = {
    {"sample", (PyCFunction)(void (*)(void))Sampler_sample, METH_VARARGS | METH_KEYWORDS, Sampler_sample_doc},
    {"probs", (PyCFunction)(void (*)(void))Sampler_probs, METH_VARARGS | METH_KEYWORDS, Sampler_probs_doc},
    {"get_state", (PyCFunction)Sampler_get_state, METH_NOARGS, Sampler_get_state_doc},
    {"set_state", (PyCFunction)Sampler_set_state, METH_O, Sampler_set_state_doc},
    {"copy", (PyCFunction)Sampler_copy, METH_NOARGS, Sampler_copy_doc},
    {"__copy__", (PyCFunction)Sampler_copy, METH_NOARGS, NULL},
    {"__deepcopy__", (PyCFunction)Sampler_deepcopy, METH_O, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Sampler_getset[] = {
    {"params", (getter)Sampler_get_params, NULL,
     "The sampler parameters as a new dict (floats shown as the shortest decimal of the float32 in use).", NULL},
    {"seed", (getter)Sampler_get_seed, NULL, "The seed this Sampler was created with.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyDoc_STRVAR(Sampler_doc,
             "Sampler(seed=0, *, temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, repeat_penalty=1.0, "
             "frequency_penalty=0.0, presence_penalty=0.0, penalty_last_n=64)\n--\n\n"
             "A token sampler with its own seeded PCG32 stream: the same seed, logits and parameters give\n"
             "the same tokens on every run and platform.\n\n"
             "The chain, in order (llama.cpp's default order): penalties on the last penalty_last_n\n"
             "history tokens (-1 = all) -> top_k (0 = off) -> top_p (1 = off) -> min_p (0 = off) ->\n"
             "temperature (0 = greedy: argmax, ties to the lowest id) -> draw. Ties at any cut are\n"
             "broken by token id (lower id first). Parameters are stored as float32 / int32 and checked\n"
             "here: NaN, a negative or infinite temperature, top_k < 0, top_p or min_p outside [0, 1],\n"
             "repeat_penalty <= 0 raise ValueError naming the parameter. See docs/sampling.md.");

static PyType_Slot Sampler_slots[] = {
    {Py_tp_new, Sampler_new},
    {Py_tp_dealloc, Sampler_dealloc},
    {Py_tp_repr, Sampler_repr},
    {Py_tp_methods, Sampler_methods},
    {Py_tp_getset, Sampler_getset},
    {Py_tp_doc, (void *)Sampler_doc},
    {0, NULL},
};

static PyType_Spec Sampler_spec = {
    .name = "orc.Sampler",
    .basicsize = sizeof(SamplerObject),
    .itemsize = 0,
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = Sampler_slots,
};

/* ------------------------------------------------------------ module functions */

static PyObject *py_sample(PyObject *m, PyObject *args, PyObject *kwargs) {
    if (PyTuple_GET_SIZE(args) != 1) {
        PyErr_Format(PyExc_TypeError,
                     "sample() takes the logits as its one positional argument (got %zd); everything else by keyword",
                     PyTuple_GET_SIZE(args));
        return NULL;
    }
    orc_sampler_params p;
    orc_sampler_params_default(&p);
    static const char *const extra[] = {"seed", "history", "n_vocab", NULL};
    PyObject *given[3] = {NULL, NULL, NULL};
    if (orc_py_sampler_kwargs("sample", kwargs, &p, extra, given) < 0) return NULL;
    PyObject *seed_obj = given[0], *history = given[1] ? given[1] : Py_None;
    long long n_vocab;
    if (n_vocab_arg(given[2], &n_vocab) < 0) return NULL;
    uint64_t seed = 0;
    if (seed_obj == Py_None && p.temperature != 0.0f) {
        PyErr_SetString(PyExc_TypeError,
                        "sample(): seed=None is only allowed for greedy sampling (temperature=0); pass an int seed "
                        "(the default is 0), or keep an orc.Sampler for a stream of draws");
        return NULL;
    }
    if (seed_obj && seed_obj != Py_None && parse_seed(seed_obj, &seed) < 0) return NULL;
    orc_rng rng;
    orc_rng_seed(&rng, seed);
    return run(orc_state_of_module(m), &p, &rng, NULL, PyTuple_GET_ITEM(args, 0), history, 0, n_vocab);
}

/* Private test hooks: the raw generator and exp, checked by tests/test_sample.py
 * against independent Python implementations. */
static PyObject *py_rng_outputs(PyObject *m, PyObject *args, PyObject *kwargs) {
    static char *kwlist[] = {"seed", "n", "stream", "uniform", NULL};
    unsigned long long seed, stream = ORC_RNG_DEFAULT_STREAM;
    Py_ssize_t n;
    int uniform = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "Kn|Kp:_rng_outputs", kwlist, &seed, &n, &stream, &uniform))
        return NULL;
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "n must be >= 0");
        return NULL;
    }
    orc_rng r;
    orc_rng_seed_stream(&r, seed, stream);
    PyObject *out = PyList_New(n);
    if (!out) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v = uniform ? PyFloat_FromDouble(orc_rng_uniform(&r)) : PyLong_FromUnsignedLong(orc_rng_u32(&r));
        if (!v) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, v);
    }
    return out;
}

static PyObject *py_sample_exp(PyObject *m, PyObject *x) {
    PyArrayObject *a = (PyArrayObject *)PyArray_FROMANY(x, NPY_FLOAT64, 1, 1, NPY_ARRAY_IN_ARRAY | NPY_ARRAY_FORCECAST);
    if (!a) return NULL;
    npy_intp n = PyArray_SIZE(a);
    PyArrayObject *out = (PyArrayObject *)PyArray_SimpleNew(1, &n, NPY_FLOAT64);
    if (out) {
        const double *src = PyArray_DATA(a);
        double *dst = PyArray_DATA(out);
        for (npy_intp i = 0; i < n; i++) dst[i] = orc_sample_exp(src[i]);
    }
    Py_DECREF(a);
    return (PyObject *)out;
}

PyDoc_STRVAR(py_sample_doc,
             "sample(logits, *, seed=0, history=None, n_vocab=None, temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, "
             "repeat_penalty=1.0, frequency_penalty=0.0, presence_penalty=0.0, penalty_last_n=64)\n--\n\n"
             "One token id (an int) from `logits` with a fresh Sampler(seed, ...): the same arguments always give the same\n"
             "token. seed defaults to 0, so sampling is reproducible unless you vary it; seed=None is accepted\n"
             "only for greedy (temperature=0). n_vocab: as Sampler.sample (the logits must have that length).\n"
             "For a sequence of draws keep one orc.Sampler instead.");

static PyMethodDef sample_functions[] = {
    {"sample", (PyCFunction)(void (*)(void))py_sample, METH_VARARGS | METH_KEYWORDS, py_sample_doc},
    {"_rng_outputs", (PyCFunction)(void (*)(void))py_rng_outputs, METH_VARARGS | METH_KEYWORDS,
     "_rng_outputs(seed, n, stream=54, uniform=False): the first n outputs of orc_rng (tests only)."},
    {"_sample_exp", py_sample_exp, METH_O, "_sample_exp(x): orc_sample_exp over a float64 array (tests only)."},
    {NULL, NULL, 0, NULL},
};

int orc_py_sample_exec(PyObject *m) {
    if (PyModule_AddFunctions(m, sample_functions) < 0) return -1;
    if (!orc_py_add_type(m, &Sampler_spec, NULL)) return -1;
    return 0;
}
