/* py_tokenizer.c - orc.Tokenizer and orc.StreamDecoder: the Python face of tokenizer.c.
 *
 * orc.Tokenizer(path) reads the tokenizer.ggml.* keys of a GGUF file;
 * orc.Tokenizer.from_metadata(dict) builds one from the same keys given as Python values.
 * Tokenizing and detokenizing release the GIL (the core tokenizer is immutable); Ctrl-C
 * interrupts a long tokenize (the core polls tok_cancel every 64 KiB of text).
 * apply_chat_template is Python (orc/chat.py); the method here forwards to it.
 */
#include "python/py_tokenizer.h"

#include <time.h> /* clock_gettime: throttling the Ctrl-C poll */

#include "gguf/gguf.h" /* orc_gguf_open: Tokenizer(path) */

typedef struct {
    PyObject_HEAD
    orc_tokenizer *tok;
    PyObject *owner; /* NULL: we own tok */
} TokenizerObject;

typedef struct {
    PyObject_HEAD
    TokenizerObject *tokenizer;
    orc_detok_state state;
    int special;
} StreamDecoderObject;

static orc_state *state_of(PyObject *self) { return orc_state_of_type(Py_TYPE(self)); }

/* ---- helpers ---- */

static PyObject *id_or_none(int32_t id) {
    if (id < 0) Py_RETURN_NONE;
    return PyLong_FromLong(id);
}

/* A Python int -> token id (int32), or -1 with an exception. Range against the vocabulary is
 * checked by the core (so the message is the same everywhere). */
static int id_from_object(PyObject *o, int32_t *id) {
    PyObject *idx = PyNumber_Index(o);
    if (!idx) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "token ids must be integers, not %.80s", Py_TYPE(o)->tp_name);
        }
        return -1;
    }
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(idx, &overflow);
    Py_DECREF(idx);
    if (v == -1 && PyErr_Occurred()) return -1;
    if (overflow || v < INT32_MIN || v > INT32_MAX) {
        PyErr_Format(PyExc_IndexError, "token id %R is out of range", o);
        return -1;
    }
    *id = (int32_t)v;
    return 0;
}

/* A sequence of ints or a 1-D integer NumPy array -> malloc'd int32 ids (range-checked to
 * int32 here, against the vocabulary by the core). */
static int ids_from_object(PyObject *obj, int32_t **ids, size_t *n) {
    *ids = NULL;
    *n = 0;
    if (PyArray_Check(obj)) {
        PyArrayObject *a = (PyArrayObject *)obj;
        if (PyArray_NDIM(a) != 1) {
            PyErr_Format(PyExc_ValueError, "token ids must be a 1-D array, got %d dimensions", PyArray_NDIM(a));
            return -1;
        }
        if (!PyArray_ISINTEGER(a)) {
            PyErr_SetString(PyExc_TypeError, "token ids must be an integer array");
            return -1;
        }
        PyArrayObject *c = (PyArrayObject *)PyArray_FROMANY(obj, NPY_INT64, 1, 1, NPY_ARRAY_CARRAY_RO);
        if (!c) return -1;
        npy_intp len = PyArray_SIZE(c);
        const int64_t *src = (const int64_t *)PyArray_DATA(c);
        int32_t *dst = PyMem_Malloc((size_t)(len ? len : 1) * sizeof *dst);
        if (!dst) {
            Py_DECREF(c);
            PyErr_NoMemory();
            return -1;
        }
        /* uint64 values above INT64_MAX were refused by the cast */
        for (npy_intp i = 0; i < len; i++) {
            if (src[i] < INT32_MIN || src[i] > INT32_MAX) {
                PyErr_Format(PyExc_IndexError, "token id %lld at position %zd is out of range", (long long)src[i],
                             (Py_ssize_t)i);
                PyMem_Free(dst);
                Py_DECREF(c);
                return -1;
            }
            dst[i] = (int32_t)src[i];
        }
        Py_DECREF(c);
        *ids = dst;
        *n = (size_t)len;
        return 0;
    }
    if (PyUnicode_Check(obj) || PyBytes_Check(obj)) {
        PyErr_SetString(PyExc_TypeError, "token ids must be a sequence of integers, not a string");
        return -1;
    }
    PyObject *seq = PySequence_Fast(obj, "token ids must be a sequence of integers");
    if (!seq) return -1;
    Py_ssize_t len = PySequence_Fast_GET_SIZE(seq);
    int32_t *dst = PyMem_Malloc((size_t)(len ? len : 1) * sizeof *dst);
    if (!dst) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t i = 0; i < len; i++) {
        if (id_from_object(items[i], &dst[i]) < 0) {
            PyMem_Free(dst);
            Py_DECREF(seq);
            return -1;
        }
    }
    Py_DECREF(seq);
    *ids = dst;
    *n = (size_t)len;
    return 0;
}

/* ---- construction ---- */

PyObject *orc_py_tokenizer_wrap(orc_state *st, orc_tokenizer *tok, PyObject *owner) {
    PyTypeObject *type = st->TokenizerType;
    TokenizerObject *self = type ? (TokenizerObject *)type->tp_alloc(type, 0) : NULL;
    if (!self) {
        if (!owner) orc_tokenizer_free(tok);
        if (!type) PyErr_SetString(PyExc_RuntimeError, "orc.Tokenizer type is not initialised");
        return NULL;
    }
    self->tok = tok;
    self->owner = Py_XNewRef(owner);
    return (PyObject *)self;
}

const orc_tokenizer *orc_py_tokenizer_get(orc_state *st, PyObject *obj) {
    if (!st->TokenizerType || !PyObject_TypeCheck(obj, st->TokenizerType)) {
        PyErr_Format(PyExc_TypeError, "expected an orc.Tokenizer, got %.80s", Py_TYPE(obj)->tp_name);
        return NULL;
    }
    return ((TokenizerObject *)obj)->tok;
}

static PyObject *Tokenizer_from_metadata(PyObject *cls, PyObject *d);

static PyObject *Tokenizer_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"path", NULL};
    PyObject *src = NULL, *path = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:Tokenizer", kwlist, &src)) return NULL;
    if (!PyUnicode_Check(src) && !PyBytes_Check(src) && !PyObject_HasAttrString(src, "__fspath__")) {
        /* an open file handle (orc.GGUFFile) or anything else with a GGUF metadata mapping */
        PyObject *md = PyObject_GetAttrString(src, "metadata");
        if (!md) {
            PyErr_Clear();
            return PyErr_Format(PyExc_TypeError, "Tokenizer() takes a path or an object with .metadata (orc.GGUFFile), "
                                                 "not %.80s", Py_TYPE(src)->tp_name);
        }
        PyObject *r = Tokenizer_from_metadata((PyObject *)type, md);
        Py_DECREF(md);
        return r;
    }
    if (!PyUnicode_FSConverter(src, &path)) return NULL;
    orc_state *st = orc_state_of_type(type);
    orc_err err = {0};
    orc_gguf *g = NULL;
    orc_tokenizer *tok = NULL;
    orc_status s;
    bool opened = false;
    Py_BEGIN_ALLOW_THREADS
    s = orc_gguf_open(PyBytes_AS_STRING(path), &g, &err);
    if (s == ORC_OK) {
        opened = true;
        s = orc_tokenizer_from_gguf(g, &tok, &err);
    }
    orc_gguf_close(g);
    Py_END_ALLOW_THREADS
    if (s != ORC_OK) {
        if (opened) { /* the reader's own messages already name the file */
            if (s == ORC_E_NOT_FOUND || s == ORC_E_UNSUPPORTED || s == ORC_E_INVALID) s = ORC_E_FORMAT;
            char pbuf[ORC_ERR_PATH_MAX];
            orc_err_prefix(&err, "'%s': ", orc_err_path(PyBytes_AS_STRING(path), pbuf, sizeof pbuf));
        }
        Py_DECREF(path);
        return orc_py_raise(st, s, err.msg);
    }
    Py_DECREF(path);
    TokenizerObject *self = (TokenizerObject *)type->tp_alloc(type, 0);
    if (!self) {
        orc_tokenizer_free(tok);
        return NULL;
    }
    self->tok = tok;
    return (PyObject *)self;
}

/* from_metadata: fetch a str value (NULL ptr when absent). The value is kept alive in `keep`
 * (a list) until the tokenizer is built: the mapping might hand out fresh objects. */
static int meta_str(PyObject *d, const char *key, orc_gguf_str *out, int required, PyObject *keep) {
    PyObject *v = PyMapping_GetItemString(d, key);
    if (!v) {
        if (!PyErr_ExceptionMatches(PyExc_KeyError)) return -1;
        PyErr_Clear();
        if (required) {
            PyErr_Format(PyExc_KeyError, "metadata has no '%s'", key);
            return -1;
        }
        out->ptr = NULL;
        out->len = 0;
        return 0;
    }
    Py_ssize_t n;
    const char *p = PyUnicode_Check(v) ? PyUnicode_AsUTF8AndSize(v, &n) : NULL;
    if (!p) {
        if (!PyErr_Occurred()) PyErr_Format(PyExc_TypeError, "metadata '%s' must be a str, not %.80s", key, Py_TYPE(v)->tp_name);
        Py_DECREF(v);
        return -1;
    }
    out->ptr = p;
    out->len = (uint64_t)n;
    int r = PyList_Append(keep, v);
    Py_DECREF(v);
    return r;
}

/* A list of str -> orc_gguf_str array (pointers into the str objects, which `keep` holds). */
static int meta_strings(PyObject *d, const char *key, PyObject **keep, orc_gguf_str **out, uint64_t *n) {
    *out = NULL;
    *n = 0;
    PyObject *v = PyMapping_GetItemString(d, key);
    if (!v) {
        if (!PyErr_ExceptionMatches(PyExc_KeyError)) return -1;
        PyErr_Clear();
        return 0;
    }
    /* a tuple of our own: the caller's list cannot change under us while the GIL is released */
    PyObject *seq = (PyUnicode_Check(v) || PyBytes_Check(v)) ? NULL : PySequence_Tuple(v);
    Py_DECREF(v);
    if (!seq) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "metadata '%s' must be a sequence of str", key);
        return -1;
    }
    Py_ssize_t len = PyTuple_GET_SIZE(seq);
    orc_gguf_str *a = PyMem_Malloc((size_t)(len ? len : 1) * sizeof *a);
    if (!a) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < len; i++) {
        PyObject *it = PyTuple_GET_ITEM(seq, i);
        Py_ssize_t l;
        const char *p = NULL;
        if (PyUnicode_Check(it)) p = PyUnicode_AsUTF8AndSize(it, &l);
        else if (PyBytes_Check(it)) p = PyBytes_AS_STRING(it), l = PyBytes_GET_SIZE(it);
        if (!p) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_TypeError, "metadata '%s'[%zd] must be a str, not %.80s", key, i, Py_TYPE(it)->tp_name);
            PyMem_Free(a);
            Py_DECREF(seq);
            return -1;
        }
        a[i].ptr = p;
        a[i].len = (uint64_t)l;
    }
    *keep = seq;
    *out = a;
    *n = (uint64_t)len;
    return 0;
}

/* A sequence/array of numbers -> malloc'd float or int32 array of `expect` entries. */
static int meta_numbers(PyObject *d, const char *key, int as_float, uint64_t expect, void **out) {
    *out = NULL;
    PyObject *v = PyMapping_GetItemString(d, key);
    if (!v) {
        if (!PyErr_ExceptionMatches(PyExc_KeyError)) return -1;
        PyErr_Clear();
        return 0;
    }
    /* scores may come as float64 (rounded to float32 as GGUF stores them); integers must cast safely */
    PyArrayObject *a = (PyArrayObject *)PyArray_FROMANY(v, as_float ? NPY_FLOAT32 : NPY_INT64, 1, 1,
                                                        NPY_ARRAY_CARRAY_RO | (as_float ? NPY_ARRAY_FORCECAST : 0));
    Py_DECREF(v);
    if (!a) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "metadata '%s' must be a 1-D sequence of %s", key, as_float ? "numbers" : "integers");
        return -1;
    }
    if ((uint64_t)PyArray_SIZE(a) != expect) {
        PyErr_Format(PyExc_ValueError, "metadata '%s' has %zd entries but tokenizer.ggml.tokens has %llu", key,
                     (Py_ssize_t)PyArray_SIZE(a), (unsigned long long)expect);
        Py_DECREF(a);
        return -1;
    }
    size_t n = (size_t)expect;
    void *buf = PyMem_Malloc((n ? n : 1) * 4);
    if (!buf) {
        Py_DECREF(a);
        PyErr_NoMemory();
        return -1;
    }
    if (as_float) {
        memcpy(buf, PyArray_DATA(a), n * 4);
    } else {
        const int64_t *src = PyArray_DATA(a);
        int32_t *dst = buf;
        for (size_t i = 0; i < n; i++) {
            if (src[i] < INT32_MIN || src[i] > INT32_MAX) {
                PyErr_Format(PyExc_ValueError, "metadata '%s'[%zu] = %lld does not fit int32", key, i, (long long)src[i]);
                PyMem_Free(buf);
                Py_DECREF(a);
                return -1;
            }
            dst[i] = (int32_t)src[i];
        }
    }
    Py_DECREF(a);
    *out = buf;
    return 0;
}

static PyObject *Tokenizer_from_metadata(PyObject *cls, PyObject *d) {
    orc_state *st = orc_state_of_type((PyTypeObject *)cls);
    orc_tokenizer_spec spec;
    orc_tokenizer_spec_init(&spec);
    PyObject *keep_tokens = NULL, *keep_merges = NULL, *result = NULL, *keep = PyList_New(0);
    orc_gguf_str *tokens = NULL, *merges = NULL;
    float *scores = NULL;
    int32_t *types = NULL;
    if (!keep) return NULL;
    if (!PyMapping_Check(d)) {
        PyErr_SetString(PyExc_TypeError, "from_metadata() takes a mapping of GGUF keys to values");
        goto cleanup;
    }
    if (meta_str(d, "tokenizer.ggml.model", &spec.model, 1, keep) < 0) goto cleanup;
    if (meta_str(d, "tokenizer.ggml.pre", &spec.pre, 0, keep) < 0) goto cleanup;
    if (meta_str(d, "tokenizer.chat_template", &spec.chat_template, 0, keep) < 0) goto cleanup;
    if (meta_strings(d, "tokenizer.ggml.tokens", &keep_tokens, &tokens, &spec.n_vocab) < 0) goto cleanup;
    spec.tokens = tokens;
    if (meta_strings(d, "tokenizer.ggml.merges", &keep_merges, &merges, &spec.n_merges) < 0) goto cleanup;
    spec.merges = merges;
    if (meta_numbers(d, "tokenizer.ggml.scores", 1, spec.n_vocab, (void **)&scores) < 0) goto cleanup;
    spec.scores = scores;
    if (meta_numbers(d, "tokenizer.ggml.token_type", 0, spec.n_vocab, (void **)&types) < 0) goto cleanup;
    spec.token_types = types;
    for (int s = 0; s < ORC_SPECIAL_COUNT; s++) {
        PyObject *v = PyMapping_GetItemString(d, orc_special_key((orc_special)s));
        if (!v) {
            if (!PyErr_ExceptionMatches(PyExc_KeyError)) goto cleanup;
            PyErr_Clear();
            continue;
        }
        long long x = PyLong_AsLongLong(v);
        Py_DECREF(v);
        if (x == -1 && PyErr_Occurred()) goto cleanup;
        spec.special[s] = x < -1 ? -2 : x; /* -2: out of range, refused by the core */
    }
    const struct {
        const char *key;
        int *dst;
    } flags[] = {{"tokenizer.ggml.add_bos_token", &spec.add_bos},
                 {"tokenizer.ggml.add_eos_token", &spec.add_eos},
                 {"tokenizer.ggml.add_space_prefix", &spec.add_space_prefix}};
    for (size_t k = 0; k < 3; k++) {
        PyObject *v = PyMapping_GetItemString(d, flags[k].key);
        if (!v) {
            if (!PyErr_ExceptionMatches(PyExc_KeyError)) goto cleanup;
            PyErr_Clear();
            continue;
        }
        int b = PyObject_IsTrue(v);
        Py_DECREF(v);
        if (b < 0) goto cleanup;
        *flags[k].dst = b;
    }
    orc_tokenizer *tok = NULL;
    orc_err err = {0};
    orc_status s;
    Py_BEGIN_ALLOW_THREADS
    s = orc_tokenizer_from_spec(&spec, &tok, &err);
    Py_END_ALLOW_THREADS
    if (s != ORC_OK) {
        if (s == ORC_E_NOT_FOUND || s == ORC_E_UNSUPPORTED) s = ORC_E_FORMAT;
        orc_py_raise(st, s, err.msg);
        goto cleanup;
    }
    result = orc_py_tokenizer_wrap(st, tok, NULL);
cleanup:
    Py_XDECREF(keep);
    Py_XDECREF(keep_tokens);
    Py_XDECREF(keep_merges);
    PyMem_Free(tokens);
    PyMem_Free(merges);
    PyMem_Free(scores);
    PyMem_Free(types);
    return result;
}

static void Tokenizer_dealloc(PyObject *self) {
    TokenizerObject *t = (TokenizerObject *)self;
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (!t->owner) orc_tokenizer_free(t->tok);
    t->tok = NULL;
    Py_CLEAR(t->owner);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static int Tokenizer_traverse(PyObject *self, visitproc visit, void *arg) {
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(((TokenizerObject *)self)->owner);
    return 0;
}

/* ---- methods ---- */

/* Ctrl-C during a long tokenize: the core calls tok_cancel about every 64 KiB of text, without
 * the GIL. Taking the GIL back costs nothing when no other thread wants it but can wait a
 * switch interval (5 ms) when one does, so it is done at most every 20 ms of wall time. */
typedef struct tok_call {
    PyThreadState *ts;
    struct timespec last;
    int interrupted;
} tok_call;

static int tok_cancel(void *user) {
    tok_call *c = user;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (c->last.tv_sec || c->last.tv_nsec) {
        long long ms = (long long)(now.tv_sec - c->last.tv_sec) * 1000 + (now.tv_nsec - c->last.tv_nsec) / 1000000;
        if (ms < 20) return 0;
    }
    c->last = now;
    PyEval_RestoreThread(c->ts);
    int stop = PyErr_CheckSignals() < 0;
    c->ts = PyEval_SaveThread();
    if (stop) c->interrupted = 1;
    return stop;
}

/* The ids as a list; tens of millions of ints take seconds, so Ctrl-C is looked for here too. */
static PyObject *ids_to_list(const int32_t *ids, size_t n) {
    PyObject *list = PyList_New((Py_ssize_t)n);
    if (!list) return NULL;
    for (size_t i = 0; i < n; i++) {
        if ((i & 0xFFFF) == 0xFFFF && PyErr_CheckSignals() < 0) {
            Py_DECREF(list); /* the slots not yet set are NULL, which list_dealloc skips */
            return NULL;
        }
        PyObject *v = PyLong_FromLong(ids[i]);
        if (!v) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, v);
    }
    return list;
}

static PyObject *Tokenizer_tokenize(PyObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"text", "add_special", "special", NULL};
    PyObject *text;
    int add_special = 1, special = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|pp:tokenize", kwlist, &text, &add_special, &special)) return NULL;
    const char *p;
    Py_ssize_t len;
    if (PyUnicode_Check(text)) {
        p = PyUnicode_AsUTF8AndSize(text, &len);
        if (!p) return NULL;
    } else if (PyBytes_Check(text)) {
        p = PyBytes_AS_STRING(text);
        len = PyBytes_GET_SIZE(text);
    } else {
        return PyErr_Format(PyExc_TypeError, "tokenize() takes str (or bytes), not %.80s", Py_TYPE(text)->tp_name);
    }
    TokenizerObject *t = (TokenizerObject *)self;
    int32_t *ids = NULL;
    size_t n = 0;
    orc_err err = {0};
    orc_status s;
    tok_call c = {.ts = PyEval_SaveThread()};
    s = orc_tokenize_cancellable(t->tok, p, (size_t)len, add_special, special, tok_cancel, &c, &ids, &n, &err);
    PyEval_RestoreThread(c.ts);
    if (s != ORC_OK) {
        if (c.interrupted && PyErr_Occurred()) return NULL; /* KeyboardInterrupt, from the signal handler */
        return orc_py_raise(state_of(self), s, err.msg);
    }
    PyObject *list = ids_to_list(ids, n);
    free(ids);
    return list;
}

static PyObject *Tokenizer_pre_tokenize(PyObject *self, PyObject *text) {
    Py_ssize_t len;
    const char *p = PyUnicode_Check(text) ? PyUnicode_AsUTF8AndSize(text, &len) : NULL;
    if (!p) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_TypeError, "pre_tokenize() takes a str, not %.80s", Py_TYPE(text)->tp_name);
        return NULL;
    }
    size_t *ends = NULL, n = 0;
    orc_err err = {0};
    orc_status s;
    Py_BEGIN_ALLOW_THREADS
    s = orc_pretokenize(((TokenizerObject *)self)->tok, p, (size_t)len, &ends, &n, &err);
    Py_END_ALLOW_THREADS
    if (s != ORC_OK) return orc_py_raise(state_of(self), s, err.msg);
    PyObject *list = PyList_New((Py_ssize_t)n);
    size_t start = 0;
    for (size_t i = 0; list && i < n; i++) {
        /* words end on character boundaries of the (valid) UTF-8 of a str */
        PyObject *w = PyUnicode_DecodeUTF8(p + start, (Py_ssize_t)(ends[i] - start), "strict");
        if (!w) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, w);
        start = ends[i];
    }
    free(ends);
    return list;
}

typedef orc_status (*detok_fn)(const orc_tokenizer *, const int32_t *, size_t, bool, char **, size_t *, orc_err *);

static PyObject *detok_common(PyObject *self, PyObject *args, PyObject *kwds, const char *fmt, detok_fn fn, int as_bytes) {
    static char *kwlist[] = {"ids", "special", NULL};
    PyObject *obj;
    int special = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, fmt, kwlist, &obj, &special)) return NULL;
    int32_t *ids;
    size_t n;
    if (ids_from_object(obj, &ids, &n) < 0) return NULL;
    TokenizerObject *t = (TokenizerObject *)self;
    char *out = NULL;
    size_t out_len = 0;
    orc_err err = {0};
    orc_status s;
    Py_BEGIN_ALLOW_THREADS
    s = fn(t->tok, ids, n, special, &out, &out_len, &err);
    Py_END_ALLOW_THREADS
    PyMem_Free(ids);
    if (s != ORC_OK) return orc_py_raise(state_of(self), s, err.msg);
    PyObject *r = as_bytes ? PyBytes_FromStringAndSize(out, (Py_ssize_t)out_len)
                           : PyUnicode_DecodeUTF8(out, (Py_ssize_t)out_len, "strict");
    free(out);
    return r;
}

static PyObject *Tokenizer_detokenize(PyObject *self, PyObject *args, PyObject *kwds) {
    return detok_common(self, args, kwds, "O|p:detokenize", orc_detokenize, 0);
}

static PyObject *Tokenizer_detokenize_bytes(PyObject *self, PyObject *args, PyObject *kwds) {
    return detok_common(self, args, kwds, "O|p:detokenize_bytes", orc_detokenize_bytes, 1);
}

static int one_id(PyObject *self, PyObject *arg, int32_t *id) {
    if (id_from_object(arg, id) < 0) return -1;
    const orc_tokenizer *tok = ((TokenizerObject *)self)->tok;
    if (*id < 0 || *id >= orc_tokenizer_vocab_size(tok)) {
        PyErr_Format(PyExc_IndexError, "token id %d is out of range [0, %d)", (int)*id, (int)orc_tokenizer_vocab_size(tok));
        return -1;
    }
    return 0;
}

static PyObject *Tokenizer_token_text(PyObject *self, PyObject *arg) {
    int32_t id;
    if (one_id(self, arg, &id) < 0) return NULL;
    const char *p;
    size_t n;
    orc_token_text(((TokenizerObject *)self)->tok, id, &p, &n, NULL);
    return PyUnicode_DecodeUTF8(p, (Py_ssize_t)n, "replace");
}

static PyObject *Tokenizer_token_bytes(PyObject *self, PyObject *arg) {
    int32_t id;
    if (one_id(self, arg, &id) < 0) return NULL;
    const char *p;
    size_t n;
    orc_token_piece(((TokenizerObject *)self)->tok, id, &p, &n, NULL);
    return PyBytes_FromStringAndSize(p, (Py_ssize_t)n);
}

static PyObject *Tokenizer_token_type(PyObject *self, PyObject *arg) {
    int32_t id;
    if (one_id(self, arg, &id) < 0) return NULL;
    orc_token_type ty;
    orc_token_get_type(((TokenizerObject *)self)->tok, id, &ty, NULL);
    return PyUnicode_FromString(orc_token_type_name(ty));
}

static PyObject *Tokenizer_token_score(PyObject *self, PyObject *arg) {
    int32_t id;
    if (one_id(self, arg, &id) < 0) return NULL;
    float sc;
    orc_token_score(((TokenizerObject *)self)->tok, id, &sc, NULL);
    return PyFloat_FromDouble(sc);
}

static PyObject *Tokenizer_token_id(PyObject *self, PyObject *arg) {
    Py_ssize_t n;
    const char *p = PyUnicode_Check(arg) ? PyUnicode_AsUTF8AndSize(arg, &n) : NULL;
    if (!p) {
        if (!PyErr_Occurred()) PyErr_Format(PyExc_TypeError, "token_id() takes a str, not %.80s", Py_TYPE(arg)->tp_name);
        return NULL;
    }
    return id_or_none(orc_token_lookup(((TokenizerObject *)self)->tok, p, (size_t)n));
}

static PyObject *Tokenizer_is_eog(PyObject *self, PyObject *arg) {
    int32_t id;
    if (id_from_object(arg, &id) < 0) return NULL;
    return PyBool_FromLong(orc_tokenizer_is_eog(((TokenizerObject *)self)->tok, id));
}

static PyTypeObject *find_type(orc_state *st, const char *name) {
    for (int i = 0; i < st->n_types; i++) {
        PyTypeObject *tp = (PyTypeObject *)st->types[i];
        if (strcmp(tp->tp_name, name) == 0) return tp;
    }
    PyErr_Format(PyExc_RuntimeError, "%s is not initialised", name);
    return NULL;
}

static PyObject *Tokenizer_decode_stream(PyObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"special", NULL};
    int special = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|p:decode_stream", kwlist, &special)) return NULL;
    PyTypeObject *tp = find_type(state_of(self), "orc.StreamDecoder");
    if (!tp) return NULL;
    return PyObject_CallFunction((PyObject *)tp, "Oi", self, special);
}

static PyObject *Tokenizer_apply_chat_template(PyObject *self, PyObject *args, PyObject *kwds) {
    PyObject *mod = PyImport_ImportModule("orc.chat");
    if (!mod) return NULL;
    PyObject *fn = PyObject_GetAttrString(mod, "apply_chat_template");
    Py_DECREF(mod);
    if (!fn) return NULL;
    /* orc.chat.apply_chat_template(tokenizer, messages, ...) */
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    PyObject *full = PyTuple_New(n + 1);
    if (!full) {
        Py_DECREF(fn);
        return NULL;
    }
    PyTuple_SET_ITEM(full, 0, Py_NewRef(self));
    for (Py_ssize_t i = 0; i < n; i++) PyTuple_SET_ITEM(full, i + 1, Py_NewRef(PyTuple_GET_ITEM(args, i)));
    PyObject *r = PyObject_Call(fn, full, kwds);
    Py_DECREF(full);
    Py_DECREF(fn);
    return r;
}

static Py_ssize_t Tokenizer_len(PyObject *self) { return orc_tokenizer_vocab_size(((TokenizerObject *)self)->tok); }

static PyObject *Tokenizer_repr(PyObject *self) {
    const orc_tokenizer *t = ((TokenizerObject *)self)->tok;
    const char *pre = orc_tokenizer_pre_name(t);
    return PyUnicode_FromFormat("<orc.Tokenizer model=%s%s%s vocab_size=%d>", orc_tokenizer_model_name(t),
                                pre[0] ? " pre=" : "", pre, (int)orc_tokenizer_vocab_size(t));
}

/* ---- properties ---- */

#define TOK(self) (((TokenizerObject *)(self))->tok)

static PyObject *get_vocab_size(PyObject *self, void *c) { return PyLong_FromLong(orc_tokenizer_vocab_size(TOK(self))); }
static PyObject *get_special(PyObject *self, void *c) {
    return id_or_none(orc_tokenizer_special(TOK(self), (orc_special)(intptr_t)c));
}
static PyObject *get_add_bos(PyObject *self, void *c) { return PyBool_FromLong(orc_tokenizer_add_bos(TOK(self))); }
static PyObject *get_add_eos(PyObject *self, void *c) { return PyBool_FromLong(orc_tokenizer_add_eos(TOK(self))); }
static PyObject *get_add_space_prefix(PyObject *self, void *c) {
    return PyBool_FromLong(orc_tokenizer_add_space_prefix(TOK(self)));
}
static PyObject *get_model(PyObject *self, void *c) { return PyUnicode_FromString(orc_tokenizer_model_name(TOK(self))); }
static PyObject *get_pre(PyObject *self, void *c) {
    const char *p = orc_tokenizer_pre_name(TOK(self));
    if (!p[0]) Py_RETURN_NONE;
    return PyUnicode_FromString(p);
}
static PyObject *get_eog_ids(PyObject *self, void *c) {
    size_t n;
    const int32_t *ids = orc_tokenizer_eog(TOK(self), &n);
    PyObject *list = ids_to_list(ids, n);
    if (!list) return NULL;
    PyObject *r = PyFrozenSet_New(list);
    Py_DECREF(list);
    return r;
}
static PyObject *get_chat_template(PyObject *self, void *c) {
    size_t n;
    const char *p = orc_tokenizer_chat_template(TOK(self), &n);
    if (!p) Py_RETURN_NONE;
    return PyUnicode_DecodeUTF8(p, (Py_ssize_t)n, "replace");
}

static PyGetSetDef Tokenizer_getset[] = {
    {"vocab_size", get_vocab_size, NULL, "Number of tokens in the vocabulary.", NULL},
    {"bos", get_special, NULL, "Beginning-of-sequence token id, or None.", (void *)(intptr_t)ORC_SPECIAL_BOS},
    {"eos", get_special, NULL, "End-of-sequence token id, or None.", (void *)(intptr_t)ORC_SPECIAL_EOS},
    {"eot", get_special, NULL,
     "End-of-turn token id (tokenizer.ggml.eot_token_id, else a control token such as <|im_end|>, <|eot_id|>, "
     "<end_of_turn>), or None.",
     (void *)(intptr_t)ORC_SPECIAL_EOT},
    {"eom", get_special, NULL, "End-of-message token id, or None.", (void *)(intptr_t)ORC_SPECIAL_EOM},
    {"unk", get_special, NULL, "Unknown token id, or None.", (void *)(intptr_t)ORC_SPECIAL_UNK},
    {"pad", get_special, NULL, "Padding token id, or None.", (void *)(intptr_t)ORC_SPECIAL_PAD},
    {"add_bos", get_add_bos, NULL, "tokenize(add_special=True) starts with BOS.", NULL},
    {"add_eos", get_add_eos, NULL, "tokenize(add_special=True) ends with EOS.", NULL},
    {"add_space_prefix", get_add_space_prefix, NULL,
     "SentencePiece vocabularies: a space is put before the text (and after each special token).", NULL},
    {"model", get_model, NULL, "tokenizer.ggml.model: 'gpt2' (byte-level BPE) or 'llama' (SentencePiece BPE).", NULL},
    {"pre", get_pre, NULL, "tokenizer.ggml.pre (the pre-tokenizer), or None.", NULL},
    {"eog_ids", get_eog_ids, NULL, "Token ids that end generation (EOS, EOT, EOM, <|im_end|>, ...).", NULL},
    {"chat_template", get_chat_template, NULL, "tokenizer.chat_template (Jinja source), or None.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef Tokenizer_methods[] = {
    {"from_metadata", (PyCFunction)Tokenizer_from_metadata, METH_O | METH_CLASS,
     "from_metadata(metadata) -> Tokenizer\n\nBuild a tokenizer from GGUF tokenizer keys given as Python values "
     "('tokenizer.ggml.model', 'tokenizer.ggml.tokens', 'tokenizer.ggml.merges', 'tokenizer.ggml.scores', "
     "'tokenizer.ggml.token_type', '..._token_id', 'tokenizer.ggml.add_bos_token', ...)."},
    {"tokenize", (PyCFunction)(void (*)(void))Tokenizer_tokenize, METH_VARARGS | METH_KEYWORDS,
     "tokenize(text, add_special=True, special=False) -> list[int]\n\n"
     "add_special: add BOS/EOS where the vocabulary asks for them (add_bos/add_eos).\n"
     "special: also recognise control tokens written in the text (<|im_start|>, <bos>, ...); "
     "user-defined tokens are always recognised. text may be str or bytes. The GIL is released while "
     "it runs; Ctrl-C interrupts a long text promptly (KeyboardInterrupt)."},
    {"pre_tokenize", Tokenizer_pre_tokenize, METH_O,
     "pre_tokenize(text) -> list[str]\n\nThe words the pre-tokenizer (tokenizer.ggml.pre) splits text into before BPE "
     "(byte-level BPE vocabularies; special tokens are not looked for)."},
    {"detokenize", (PyCFunction)(void (*)(void))Tokenizer_detokenize, METH_VARARGS | METH_KEYWORDS,
     "detokenize(ids, special=True) -> str\n\n"
     "The tokens' bytes joined, then decoded as UTF-8 with errors='replace' semantics over the whole "
     "sequence: a character split across tokens comes out whole, and only bytes that can never form a "
     "character become U+FFFD. special=False drops control tokens. For SentencePiece vocabularies the "
     "space that tokenize() puts at the start (and after special tokens) is removed, so "
     "detokenize(tokenize(s, add_special=False)) == s."},
    {"detokenize_bytes", (PyCFunction)(void (*)(void))Tokenizer_detokenize_bytes, METH_VARARGS | METH_KEYWORDS,
     "detokenize_bytes(ids, special=True) -> bytes\n\nAs detokenize(), without UTF-8 decoding."},
    {"token_text", Tokenizer_token_text, METH_O,
     "token_text(id) -> str\n\nThe token as stored in the vocabulary ('\\u0120the', '\\u2581the', '<0x0A>')."},
    {"token_bytes", Tokenizer_token_bytes, METH_O,
     "token_bytes(id) -> bytes\n\nThe bytes the token decodes to (b' the', b'\\n'); may be part of a UTF-8 character."},
    {"token_type", Tokenizer_token_type, METH_O,
     "token_type(id) -> str\n\n'normal', 'control', 'user_defined', 'byte', 'unknown', 'unused' or 'undefined'."},
    {"token_score", Tokenizer_token_score, METH_O, "token_score(id) -> float (tokenizer.ggml.scores; 0.0 if absent)"},
    {"token_id", Tokenizer_token_id, METH_O, "token_id(text) -> int | None\n\nThe id whose stored text is `text`."},
    {"is_eog", Tokenizer_is_eog, METH_O, "is_eog(id) -> bool: does this token end generation?"},
    {"decode_stream", (PyCFunction)(void (*)(void))Tokenizer_decode_stream, METH_VARARGS | METH_KEYWORDS,
     "decode_stream(special=True) -> StreamDecoder\n\nIncremental detokenize(): push(id) returns only complete "
     "UTF-8 text; the pushes joined (plus flush()) equal detokenize() of all the ids."},
    {"apply_chat_template", (PyCFunction)(void (*)(void))Tokenizer_apply_chat_template, METH_VARARGS | METH_KEYWORDS,
     "apply_chat_template(messages, add_generation_prompt=True, tokenize=False) -> str | list[int]\n\n"
     "Render [{'role': ..., 'content': ...}, ...] with the template in tokenizer.chat_template, which must be "
     "one orc recognises (ChatML/Qwen, Llama 3, Gemma); see orc.chat."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot Tokenizer_slots[] = {
    {Py_tp_doc, "Tokenizer(path)\n\nThe tokenizer stored in a GGUF file (tokenizer.ggml.* keys): byte-level BPE "
                "('gpt2': GPT-2, Llama 3, Qwen2) or SentencePiece BPE ('llama': Llama 2, TinyLlama, Gemma). "
                "`path` may also be an open orc.GGUFFile (its .metadata is used)."},
    {Py_tp_new, Tokenizer_new},
    {Py_tp_dealloc, Tokenizer_dealloc},
    {Py_tp_traverse, Tokenizer_traverse},
    {Py_tp_methods, Tokenizer_methods},
    {Py_tp_getset, Tokenizer_getset},
    {Py_tp_repr, Tokenizer_repr},
    {Py_mp_length, Tokenizer_len},
    {0, NULL},
};

static PyType_Spec Tokenizer_spec = {
    .name = "orc.Tokenizer",
    .basicsize = sizeof(TokenizerObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = Tokenizer_slots,
};

/* ---- StreamDecoder ---- */

static PyObject *StreamDecoder_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"tokenizer", "special", NULL};
    PyObject *tok;
    int special = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|p:StreamDecoder", kwlist, &tok, &special)) return NULL;
    orc_state *st = orc_state_of_type(type);
    if (!orc_py_tokenizer_get(st, tok)) return NULL;
    StreamDecoderObject *self = (StreamDecoderObject *)type->tp_alloc(type, 0);
    if (!self) return NULL;
    self->tokenizer = (TokenizerObject *)Py_NewRef(tok);
    orc_detok_init(&self->state);
    self->special = special;
    return (PyObject *)self;
}

static PyObject *stream_push(PyObject *self, const int32_t *ids, size_t n, bool final) {
    StreamDecoderObject *d = (StreamDecoderObject *)self;
    char *out = NULL;
    size_t len = 0;
    orc_err err = {0};
    orc_status s = orc_detok_push(d->tokenizer->tok, &d->state, ids, n, d->special, final, &out, &len, &err);
    if (s != ORC_OK) return orc_py_raise(state_of(self), s, err.msg);
    PyObject *r = PyUnicode_DecodeUTF8(out, (Py_ssize_t)len, "strict");
    free(out);
    return r;
}

static PyObject *StreamDecoder_push(PyObject *self, PyObject *arg) {
    if (PyLong_Check(arg) || PyIndex_Check(arg)) {
        int32_t id;
        if (id_from_object(arg, &id) < 0) return NULL;
        return stream_push(self, &id, 1, false);
    }
    int32_t *ids;
    size_t n;
    if (ids_from_object(arg, &ids, &n) < 0) return NULL;
    PyObject *r = stream_push(self, ids, n, false);
    PyMem_Free(ids);
    return r;
}

static PyObject *StreamDecoder_flush(PyObject *self, PyObject *unused) { return stream_push(self, NULL, 0, true); }

static PyObject *StreamDecoder_get_pending(PyObject *self, void *c) {
    StreamDecoderObject *d = (StreamDecoderObject *)self;
    return PyBytes_FromStringAndSize((const char *)d->state.pending, d->state.n_pending);
}

static void StreamDecoder_dealloc(PyObject *self) {
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    Py_CLEAR(((StreamDecoderObject *)self)->tokenizer);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static int StreamDecoder_traverse(PyObject *self, visitproc visit, void *arg) {
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(((StreamDecoderObject *)self)->tokenizer);
    return 0;
}

static PyMethodDef StreamDecoder_methods[] = {
    {"push", StreamDecoder_push, METH_O,
     "push(id_or_ids) -> str\n\nThe text completed by these tokens: never a broken UTF-8 character; bytes of an "
     "incomplete character wait for the next push, bytes that can never be valid become U+FFFD."},
    {"flush", StreamDecoder_flush, METH_NOARGS,
     "flush() -> str\n\nEnd of stream: what is still held back, as U+FFFD if it never completed."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef StreamDecoder_getset[] = {
    {"pending", StreamDecoder_get_pending, NULL, "Bytes held back (an incomplete UTF-8 character).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot StreamDecoder_slots[] = {
    {Py_tp_doc, "StreamDecoder(tokenizer, special=True)\n\nIncremental detokenization; see Tokenizer.decode_stream()."},
    {Py_tp_new, StreamDecoder_new},
    {Py_tp_dealloc, StreamDecoder_dealloc},
    {Py_tp_traverse, StreamDecoder_traverse},
    {Py_tp_methods, StreamDecoder_methods},
    {Py_tp_getset, StreamDecoder_getset},
    {0, NULL},
};

static PyType_Spec StreamDecoder_spec = {
    .name = "orc.StreamDecoder",
    .basicsize = sizeof(StreamDecoderObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = StreamDecoder_slots,
};

int orc_py_tokenizer_exec(PyObject *m) {
    orc_state *st = orc_state_of_module(m);
    st->TokenizerType = orc_py_add_type(m, &Tokenizer_spec, NULL);
    if (!st->TokenizerType) return -1;
    if (!orc_py_add_type(m, &StreamDecoder_spec, NULL)) return -1;
    return 0;
}
