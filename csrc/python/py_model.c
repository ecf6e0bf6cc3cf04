/* py_model.c - the Python types over model.h: _orc.Model and _orc.Session.
 *
 * They carry the native work (load, forward, capture, patches, KV cache, history);
 * orc/model.py subclasses them with the conveniences (pattern resolution, tokenizer,
 * generate, notebook reprs). Names and defaults (devices, dtypes, weight modes) are the
 * core's: this file only translates.
 *
 * Threads: every call that takes the model's lock runs with the GIL released, so a thread
 * waiting for a busy model never blocks the others, and callbacks (Ctrl-C polling,
 * progress, patches) can take the GIL back while the lock is held. Deallocation releases
 * the GIL too, for the same reason. */
#include "python/py_common.h"

#include <string.h>

#include "structmember.h" /* PyMemberDef, T_PYSSIZET */

#include "model/model.h"
#include "python/py_tokenizer.h"

typedef struct {
    PyObject_HEAD
    orc_model *m;
    PyObject *path;
    PyObject *weakrefs;
} ModelObject;

typedef struct {
    PyObject_HEAD
    orc_session *s;
    PyObject *model; /* the ModelObject, kept alive */
    PyObject *weakrefs;
} SessionObject;

/* --------------------------------------------------------------------------- GIL-free callbacks */

typedef struct call_ctx {
    PyThreadState *ts;   /* saved thread state while the GIL is released */
    PyObject *progress;  /* optional callable(done, total) */
    PyObject *patch_fns; /* optional {hook_index: callable(hook, row0, array) -> array or None} */
    int failed;          /* a Python exception is pending */
} call_ctx;

/* Run Python for a moment from native code: take the GIL back, then release it again. */
static int ctx_cancel(void *user) {
    call_ctx *c = user;
    PyEval_RestoreThread(c->ts);
    int stop = PyErr_CheckSignals() < 0;
    c->ts = PyEval_SaveThread();
    if (stop) c->failed = 1;
    return stop;
}

static void ctx_progress(void *user, uint64_t done, uint64_t total) {
    call_ctx *c = user;
    if (!c->progress || c->failed) return;
    PyEval_RestoreThread(c->ts);
    PyObject *r = PyObject_CallFunction(c->progress, "KK", (unsigned long long)done, (unsigned long long)total);
    if (!r)
        c->failed = 1;
    else
        Py_DECREF(r);
    c->ts = PyEval_SaveThread();
}

/* A patch callable sees rows [row0, row0 + n) of the activation as a float32 array of
 * shape [n, width] (a copy); it returns a replacement of that shape, or None after
 * modifying the array in place. */
static orc_status ctx_patch(void *user, int32_t hook, int64_t row0, int64_t n, int64_t width, float *data,
                            orc_err *err) {
    call_ctx *c = user;
    orc_status st = ORC_OK;
    PyEval_RestoreThread(c->ts);
    PyObject *key = PyLong_FromLong(hook);
    PyObject *fn = key ? PyDict_GetItemWithError(c->patch_fns, key) : NULL;
    Py_XDECREF(key);
    npy_intp dims[2] = {(npy_intp)n, (npy_intp)width};
    PyObject *arr = fn ? PyArray_SimpleNew(2, dims, NPY_FLOAT32) : NULL;
    PyObject *res = NULL, *got = NULL;
    if (!arr) goto fail;
    memcpy(PyArray_DATA((PyArrayObject *)arr), data, (size_t)(n * width) * sizeof(float));
    res = PyObject_CallFunction(fn, "iLO", (int)hook, (long long)row0, arr);
    if (!res) goto fail;
    PyObject *src = res == Py_None ? arr : res;
    got = PyArray_FROMANY(src, NPY_FLOAT32, 1, 3, NPY_ARRAY_IN_ARRAY | NPY_ARRAY_FORCECAST);
    if (!got) goto fail;
    if (PyArray_SIZE((PyArrayObject *)got) != n * width) {
        PyErr_Format(PyExc_ValueError, "a patch returned %zd values for %lld rows of %lld", (Py_ssize_t)PyArray_SIZE((PyArrayObject *)got),
                     (long long)n, (long long)width);
        goto fail;
    }
    memcpy(data, PyArray_DATA((PyArrayObject *)got), (size_t)(n * width) * sizeof(float));
    goto done;
fail:
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_RuntimeError, "patch callback missing");
    c->failed = 1;
    st = orc_fail(err, ORC_E_INVALID, "a patch callback failed");
done:
    Py_XDECREF(arr);
    Py_XDECREF(res);
    Py_XDECREF(got);
    c->ts = PyEval_SaveThread();
    return st;
}

/* After native work: prefer a pending Python exception (Ctrl-C, a failing callback). */
static PyObject *raise_status(PyTypeObject *tp, orc_status st, const orc_err *err, const call_ctx *c) {
    if (c && c->failed && PyErr_Occurred()) return NULL;
    return orc_py_raise(orc_state_of_type(tp), st, err->msg);
}

/* Optional str argument -> C string (NULL for None). */
static int opt_str(PyObject *o, const char **out, const char *what) {
    *out = NULL;
    if (!o || o == Py_None) return 0;
    *out = PyUnicode_AsUTF8(o);
    if (!*out) {
        if (!PyErr_Occurred() || PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "%s must be a str, not %.80s", what, Py_TYPE(o)->tp_name);
        }
        return -1;
    }
    return 0;
}

static PyObject *py_parse_dtype(PyObject *mod, PyObject *arg) {
    const char *s;
    if (opt_str(arg, &s, "dtype") < 0) return NULL;
    orc_err err = {0};
    orc_dtype d;
    if (orc_dtype_parse(s, "dtype", &d, &err) != ORC_OK) return orc_py_raise_err(orc_state_of_module(mod), &err);
    return PyUnicode_FromString(orc_dtype_name(d));
}

/* Does every registered dense architecture (no mixture of experts) have step s? */
static bool step_in_every_dense_arch(int s) {
    const orc_step_desc *d = &orc_steps[s];
    for (int a = 0; orc_archs[a]; a++) {
        if (orc_arch_uses(orc_archs[a], ORC_BLOCK_MOE, NULL)) continue;
        bool has = false;
        for (int b = 0; b < orc_archs[a]->n_blocks; b++) {
            const orc_block_use *u = &orc_archs[a]->blocks[b];
            if ((d->blocks & (1u << u->kind)) && (!d->opt || (u->opts & d->opt))) has = true;
        }
        if (!has) return false;
    }
    return true;
}

static PyObject *py_hook_steps(PyObject *mod, PyObject *unused) {
    PyObject *l = PyList_New(ORC_S_COUNT);
    if (!l) return NULL;
    for (int s = 0; s < ORC_S_COUNT; s++) {
        PyObject *t = Py_BuildValue("(sOO)", orc_steps[s].name, orc_steps[s].on_request ? Py_True : Py_False,
                                    step_in_every_dense_arch(s) ? Py_True : Py_False);
        if (!t) {
            Py_DECREF(l);
            return NULL;
        }
        PyList_SET_ITEM(l, s, t);
    }
    return l;
}

static PyObject *py_architectures(PyObject *mod, PyObject *unused) {
    PyObject *l = PyList_New(0);
    for (int i = 0; l && orc_archs[i]; i++) {
        PyObject *s = PyUnicode_FromString(orc_archs[i]->name);
        if (!s || PyList_Append(l, s) < 0) {
            Py_XDECREF(s);
            Py_CLEAR(l);
            break;
        }
        Py_DECREF(s);
    }
    return l;
}

/* --------------------------------------------------------------------------- Model */

static int model_check_open(ModelObject *self) {
    if (!self->m || orc_model_is_closed(self->m)) {
        orc_state *st = orc_state_of_type(Py_TYPE(self));
        PyErr_SetString(st ? st->OrcError : PyExc_RuntimeError, "the model was closed");
        return -1;
    }
    return 0;
}

static int Model_init(ModelObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"path", "device", "dtype", "weights", "n_threads", "round_matmul_inputs", "fault",
                             "progress", "profile", "yarn", NULL};
    PyObject *path_o = NULL, *dtype_o = Py_None, *weights_o = Py_None, *round_o = Py_None, *progress = Py_None;
    const char *device = "cpu", *fault = NULL, *dtype_s, *weights_s, *yarn = "hf";
    int n_threads = 0, profile = 0;
    if (self->m) {
        PyErr_SetString(PyExc_RuntimeError, "Model.__init__ called twice");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|sOOiOzOps", kwlist, PyUnicode_FSDecoder, &path_o, &device, &dtype_o,
                                     &weights_o, &n_threads, &round_o, &fault, &progress, &profile, &yarn))
        return -1;
    orc_state *state = orc_state_of_type(Py_TYPE(self));
    orc_model_params p;
    orc_model_params_init(&p);
    orc_err err = {0};
    int ret = -1;
    if (orc_backend_parse(device, &p.backend, &p.device, &err) != ORC_OK) {
        orc_py_raise_err(state, &err);
        goto done;
    }
    if (opt_str(dtype_o, &dtype_s, "dtype") < 0 || opt_str(weights_o, &weights_s, "weights") < 0) goto done;
    if (dtype_s) {
        if (orc_dtype_parse(dtype_s, "dtype", &p.dtype, &err) != ORC_OK) {
            orc_py_raise_err(state, &err);
            goto done;
        }
        p.dtype_set = true;
    }
    if (weights_s && orc_weights_mode_parse(weights_s, &p.weights, &err) != ORC_OK) {
        orc_py_raise_err(state, &err);
        goto done;
    }
    if (round_o != Py_None) {
        int r = PyObject_IsTrue(round_o);
        if (r < 0) goto done;
        p.round_matmul_inputs = r;
    }
    p.profile = profile;
    p.n_threads = n_threads;
    if (strcmp(yarn, "hf") && strcmp(yarn, "ggml")) {
        PyErr_Format(PyExc_ValueError, "yarn must be 'hf' or 'ggml', not '%s'", yarn);
        goto done;
    }
    p.yarn_ggml = !strcmp(yarn, "ggml");
    if (fault) {
        if (strcmp(fault, "raw_as_f16")) {
            PyErr_Format(PyExc_ValueError, "unknown fault '%s' (the only one is 'raw_as_f16')", fault);
            goto done;
        }
        p.fault_raw_as_f16 = true;
    }
    if (progress != Py_None && !PyCallable_Check(progress)) {
        PyErr_SetString(PyExc_TypeError, "progress must be callable(done_bytes, total_bytes) or None");
        goto done;
    }
    call_ctx c = {.progress = progress == Py_None ? NULL : progress};
    p.cancel = ctx_cancel;
    p.progress = ctx_progress;
    p.user = &c;
    orc_status st;
    PyObject *pb = PyUnicode_EncodeFSDefault(path_o);
    if (!pb) goto done;
    c.ts = PyEval_SaveThread();
    st = orc_model_load(PyBytes_AS_STRING(pb), &p, &self->m, &err);
    PyEval_RestoreThread(c.ts);
    Py_DECREF(pb);
    if (st != ORC_OK) {
        raise_status(Py_TYPE(self), st, &err, &c);
        goto done;
    }
    if (c.failed && PyErr_Occurred()) goto done; /* a progress callback raised after the last tensor */
    self->path = path_o; /* the reference PyUnicode_FSDecoder gave us */
    path_o = NULL;
    ret = 0;
done:
    Py_XDECREF(path_o);
    return ret;
}

static void Model_dealloc(ModelObject *self) {
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakrefs) PyObject_ClearWeakRefs((PyObject *)self);
    if (self->m) {
        orc_model *m = self->m;
        self->m = NULL;
        Py_BEGIN_ALLOW_THREADS /* the model's lock may be held by a thread that needs the GIL */
        orc_model_close(m);
        orc_model_release(m);
        Py_END_ALLOW_THREADS
    }
    Py_CLEAR(self->path);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static int Model_traverse(ModelObject *self, visitproc visit, void *arg) {
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static PyObject *Model_close(ModelObject *self, PyObject *unused) {
    if (self->m) {
        Py_BEGIN_ALLOW_THREADS
        orc_model_close(self->m);
        Py_END_ALLOW_THREADS
    }
    Py_RETURN_NONE;
}

static PyObject *Model_get_closed(ModelObject *self, void *c) {
    return PyBool_FromLong(!self->m || orc_model_is_closed(self->m));
}

static PyObject *Model_get_path(ModelObject *self, void *c) {
    if (!self->path) Py_RETURN_NONE;
    return Py_NewRef(self->path);
}

static PyObject *Model_get_arch(ModelObject *self, void *c) {
    if (!self->m) Py_RETURN_NONE;
    return PyUnicode_FromString(orc_model_config(self->m)->arch);
}

static PyObject *Model_get_device(ModelObject *self, void *c) {
    if (!self->m) Py_RETURN_NONE;
    if (orc_model_backend(self->m) == ORC_BACKEND_CUDA) return PyUnicode_FromFormat("cuda:%d", orc_model_device(self->m));
    return PyUnicode_FromString("cpu");
}

static PyObject *Model_get_dtype(ModelObject *self, void *c) {
    if (!self->m) Py_RETURN_NONE;
    return PyUnicode_FromString(orc_dtype_name(orc_model_dtype(self->m)));
}

static PyObject *Model_get_weights(ModelObject *self, void *c) {
    if (!self->m) Py_RETURN_NONE;
    return PyUnicode_FromString(orc_weights_mode_name(orc_model_weights(self->m)));
}

static PyObject *Model_get_round(ModelObject *self, void *c) {
    if (!self->m) Py_RETURN_NONE;
    return PyBool_FromLong(orc_model_round_matmul_inputs(self->m));
}

/* The configuration as a dict, generated from ORC_CONFIG_FIELDS (arch.h). */
static PyObject *Model_get_config(ModelObject *self, void *c) {
    if (!self->m) Py_RETURN_NONE;
    const orc_config *k = orc_model_config(self->m);
    PyObject *d = PyDict_New();
    for (int i = 0; d && i < orc_n_config_fields; i++) {
        const orc_config_field *f = &orc_config_fields[i];
        const char *p = (const char *)k + f->offset;
        PyObject *v = NULL;
        switch (f->kind) {
        case ORC_CF_STR: v = PyUnicode_FromString(*(const char *const *)p); break;
        case ORC_CF_I32: v = PyLong_FromLong(*(const int32_t *)p); break;
        case ORC_CF_F32: v = PyFloat_FromDouble((double)*(const float *)p); break;
        case ORC_CF_BOOL: v = PyBool_FromLong(*(const bool *)p); break;
        default: v = PyUnicode_FromString(orc_config_enum_name(f->kind, *(const int *)p)); break;
        }
        if (!v || PyDict_SetItemString(d, f->name, v) < 0) Py_CLEAR(d);
        Py_XDECREF(v);
    }
    return d;
}

static PyObject *Model_tensor(ModelObject *self, PyObject *arg) {
    if (model_check_open(self) < 0) return NULL;
    const char *name = PyUnicode_AsUTF8(arg);
    if (!name) return NULL;
    orc_err err = {0};
    int64_t ne[3];
    int nd;
    orc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = orc_model_tensor_shape(self->m, name, ne, &nd, &err);
    Py_END_ALLOW_THREADS
    if (st != ORC_OK) return orc_py_raise_err(orc_state_of_type(Py_TYPE(self)), &err);
    npy_intp dims[3];
    for (int d = 0; d < nd; d++) dims[d] = (npy_intp)ne[nd - 1 - d];
    PyObject *arr = PyArray_SimpleNew(nd, dims, NPY_FLOAT32);
    if (!arr) return NULL;
    Py_BEGIN_ALLOW_THREADS
    st = orc_model_tensor_f32(self->m, name, PyArray_DATA((PyArrayObject *)arr), &err);
    Py_END_ALLOW_THREADS
    if (st != ORC_OK) {
        Py_DECREF(arr);
        return orc_py_raise_err(orc_state_of_type(Py_TYPE(self)), &err);
    }
    return arr;
}

static PyObject *Model_memory(ModelObject *self, PyObject *unused) {
    if (!self->m) Py_RETURN_NONE;
    orc_memory_report r;
    orc_model_memory(self->m, &r);
    return Py_BuildValue("{s:K,s:K,s:K,s:K,s:K}", "weights", (unsigned long long)r.weights, "quantized",
                         (unsigned long long)r.quantized, "kv_cache", (unsigned long long)r.kv_cache, "scratch",
                         (unsigned long long)r.scratch, "total", (unsigned long long)r.total);
}

static PyObject *Model_hooks(ModelObject *self, PyObject *unused) {
    if (!self->m) Py_RETURN_NONE;
    int32_t n = orc_model_n_hooks(self->m);
    PyObject *list = PyList_New(n);
    if (!list) return NULL;
    for (int32_t i = 0; i < n; i++) {
        const orc_hook_info *h = orc_model_hook(self->m, i);
        PyObject *item = Py_BuildValue("(sLiiiOOO)", h->name, (long long)h->width, h->heads, h->head_dim, h->layer,
                                       h->on_request ? Py_True : Py_False, h->per_key ? Py_True : Py_False,
                                       h->index ? Py_True : Py_False);
        if (!item) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, item);
    }
    return list;
}

static PyObject *Model_profile(ModelObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"reset", NULL};
    int reset = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|p", kwlist, &reset)) return NULL;
    if (!self->m) Py_RETURN_NONE;
    PyObject *d = PyDict_New();
    if (!d) return NULL;
    const char *name;
    uint64_t calls;
    double secs;
    int32_t n = orc_model_profile(self->m, 0, &name, &calls, &secs, false);
    for (int32_t i = 0; i < n; i++) {
        orc_model_profile(self->m, i, &name, &calls, &secs, reset);
        PyObject *v = Py_BuildValue("(Kd)", (unsigned long long)calls, secs);
        if (!v || PyDict_SetItemString(d, name, v) < 0) {
            Py_XDECREF(v);
            Py_DECREF(d);
            return NULL;
        }
        Py_DECREF(v);
    }
    return d;
}

/* The model's own file handle as an orc.GGUFFile, and its tokenizer: the file is parsed once. */
static PyObject *Model_gguf_file(ModelObject *self, PyObject *unused) {
    if (!self->m) return PyErr_Format(PyExc_RuntimeError, "the model was not loaded");
    return orc_py_gguffile_from_handle(orc_state_of_type(Py_TYPE(self)), orc_model_gguf(self->m), self->path);
}

static PyObject *Model_tokenizer(ModelObject *self, PyObject *unused) {
    if (!self->m) return PyErr_Format(PyExc_RuntimeError, "the model was not loaded");
    orc_state *st = orc_state_of_type(Py_TYPE(self));
    orc_tokenizer *tok = NULL;
    orc_err err = {0};
    orc_status s;
    Py_BEGIN_ALLOW_THREADS
    s = orc_tokenizer_from_gguf(orc_model_gguf(self->m), &tok, &err);
    Py_END_ALLOW_THREADS
    if (s != ORC_OK) {
        if (s == ORC_E_NOT_FOUND || s == ORC_E_UNSUPPORTED || s == ORC_E_INVALID) s = ORC_E_FORMAT;
        PyObject *pb = PyUnicode_EncodeFSDefault(self->path);
        if (pb) {
            orc_err_prefix(&err, "'%s': ", PyBytes_AS_STRING(pb));
            Py_DECREF(pb);
        } else {
            PyErr_Clear();
        }
        return orc_py_raise(st, s, err.msg);
    }
    return orc_py_tokenizer_wrap(st, tok, NULL);
}

static PyMethodDef Model_methods[] = {
    {"_profile", (PyCFunction)(void (*)(void))Model_profile, METH_VARARGS | METH_KEYWORDS,
     "_profile(reset=True) -> {primitive: (calls, seconds)} (with profile=True at load)."},
    {"close", (PyCFunction)Model_close, METH_NOARGS,
     "Free the weights (and GPU memory) now; waits for a call in progress in another thread. Sessions of this\n"
     "model then raise OrcError."},
    {"tensor", (PyCFunction)Model_tensor, METH_O,
     "tensor(name) -> float32 ndarray: the weight as this model's backend stores it (dequantized, in the model's\n"
     "dtype), converted to float32; shape in NumPy order."},
    {"memory", (PyCFunction)Model_memory, METH_NOARGS,
     "Bytes held on the model's device: weights (dense), quantized (kept blocks), kv_cache and scratch (all\n"
     "sessions), total (what the backend allocated)."},
    {"_hooks", (PyCFunction)Model_hooks, METH_NOARGS,
     "[(name, width, heads, head_dim, layer, on_request, per_key, index)] in execution order."},
    {"_gguf_file", (PyCFunction)Model_gguf_file, METH_NOARGS, "The model's open file as an orc.GGUFFile."},
    {"_load_tokenizer", (PyCFunction)Model_tokenizer, METH_NOARGS, "A new orc.Tokenizer from the model's open file."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Model_getset[] = {
    {"closed", (getter)Model_get_closed, NULL, "True after close().", NULL},
    {"path", (getter)Model_get_path, NULL, "The GGUF file.", NULL},
    {"arch", (getter)Model_get_arch, NULL, "general.architecture.", NULL},
    {"device", (getter)Model_get_device, NULL, "'cpu' or 'cuda:N'.", NULL},
    {"dtype", (getter)Model_get_dtype, NULL, "The storage dtype of dequantized weights.", NULL},
    {"weights", (getter)Model_get_weights, NULL, "'dequantized' or 'quantized' (kept as GGUF blocks).", NULL},
    {"round_matmul_inputs", (getter)Model_get_round, NULL,
     "CPU: whether matmul inputs are rounded to the weight dtype (as cuBLAS does).", NULL},
    {"config", (getter)Model_get_config, NULL, "The hyperparameters orc read from the file, as a dict.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef Model_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(ModelObject, weakrefs), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot Model_slots[] = {
    {Py_tp_doc, "Model(path, device='cpu', dtype=None, weights=None, n_threads=0, round_matmul_inputs=None,\n"
                "      fault=None, progress=None, profile=False, yarn='hf')\n\n"
                "The native model: a GGUF file's weights on a backend. Use orc.Model."},
    {Py_tp_init, Model_init},
    {Py_tp_dealloc, Model_dealloc},
    {Py_tp_traverse, Model_traverse},
    {Py_tp_methods, Model_methods},
    {Py_tp_getset, Model_getset},
    {Py_tp_members, Model_members},
    {0, NULL},
};

static PyType_Spec Model_spec = {
    .name = "orc._orc.Model",
    .basicsize = sizeof(ModelObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = Model_slots,
};

/* --------------------------------------------------------------------------- Session */

static orc_model *session_model(SessionObject *self) { return ((ModelObject *)self->model)->m; }

/* A quick check for clear messages; the core checks again under the lock. */
static int session_check(SessionObject *self) {
    orc_state *st = orc_state_of_type(Py_TYPE(self));
    if (!self->s || orc_session_is_closed(self->s)) {
        PyErr_SetString(st ? st->OrcError : PyExc_RuntimeError, "the session was closed");
        return -1;
    }
    ModelObject *mo = (ModelObject *)self->model;
    if (!mo->m || orc_model_is_closed(mo->m)) {
        PyErr_SetString(st ? st->OrcError : PyExc_RuntimeError, "the model of this session was closed");
        return -1;
    }
    return 0;
}

static int Session_init(SessionObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"model", "n_ctx", "n_batch", "kv_dtype", "graphs", "n_seq", NULL};
    PyObject *model;
    int n_ctx = 4096, n_batch = 512, graphs = 1, n_seq = 1;
    PyObject *kv_o = Py_None;
    if (self->s) {
        PyErr_SetString(PyExc_RuntimeError, "Session.__init__ called twice");
        return -1;
    }
    orc_state *st = orc_state_of_type(Py_TYPE(self));
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!|iiOpi", kwlist, st->ModelType, &model, &n_ctx, &n_batch, &kv_o,
                                     &graphs, &n_seq))
        return -1;
    ModelObject *mo = (ModelObject *)model;
    if (!mo->m || orc_model_is_closed(mo->m)) {
        PyErr_SetString(st->OrcError, "the model was closed");
        return -1;
    }
    orc_session_params p;
    orc_session_params_init(&p);
    p.n_ctx = n_ctx;
    p.n_batch = n_batch;
    p.n_seq = n_seq;
    p.graphs = graphs;
    orc_err err = {0};
    const char *kv_s;
    if (opt_str(kv_o, &kv_s, "kv_dtype") < 0) return -1;
    if (kv_s) {
        if (orc_dtype_parse(kv_s, "kv_dtype", &p.kv_dtype, &err) != ORC_OK) {
            orc_py_raise_err(st, &err);
            return -1;
        }
        p.kv_dtype_set = true;
    }
    orc_status s;
    Py_BEGIN_ALLOW_THREADS
    s = orc_session_create(mo->m, &p, &self->s, &err);
    Py_END_ALLOW_THREADS
    if (s != ORC_OK) {
        orc_py_raise_err(st, &err);
        return -1;
    }
    self->model = Py_NewRef(model);
    return 0;
}

static void Session_dealloc(SessionObject *self) {
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakrefs) PyObject_ClearWeakRefs((PyObject *)self);
    orc_session *s = self->s;
    self->s = NULL;
    if (s) {
        Py_BEGIN_ALLOW_THREADS /* freeing takes the model's lock */
        orc_session_free(s);
        Py_END_ALLOW_THREADS
    }
    Py_CLEAR(self->model);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static int Session_traverse(SessionObject *self, visitproc visit, void *arg) {
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->model);
    return 0;
}

static int Session_clear(SessionObject *self) {
    Py_CLEAR(self->model);
    return 0;
}

static PyObject *Session_close(SessionObject *self, PyObject *unused) {
    if (self->s) {
        Py_BEGIN_ALLOW_THREADS /* waits for a forward in progress in another thread */
        orc_session_close(self->s);
        Py_END_ALLOW_THREADS
    }
    Py_RETURN_NONE;
}

/* ids -> a new int32 array; every value checked to fit. */
static PyArrayObject *as_ids(PyObject *o) {
    PyArrayObject *a = (PyArrayObject *)PyArray_FROMANY(o, NPY_INT64, 0, 1, NPY_ARRAY_IN_ARRAY | NPY_ARRAY_FORCECAST);
    if (!a) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "token ids must be a sequence of ints or a 1-D integer array, not %.100s",
                     Py_TYPE(o)->tp_name);
        return NULL;
    }
    PyArrayObject *check = (PyArrayObject *)PyArray_FROMANY(o, NPY_NOTYPE, 0, 1, 0);
    if (check) {
        int kind = PyArray_DESCR(check)->kind;
        Py_DECREF(check);
        if (PyArray_SIZE(a) > 0 && kind != 'i' && kind != 'u' && kind != 'b') {
            Py_DECREF(a);
            PyErr_SetString(PyExc_TypeError, "token ids must be integers");
            return NULL;
        }
    } else {
        PyErr_Clear();
    }
    npy_intp n = PyArray_SIZE(a);
    npy_intp dims[1] = {n};
    PyArrayObject *r = (PyArrayObject *)PyArray_SimpleNew(1, dims, NPY_INT32);
    if (!r) {
        Py_DECREF(a);
        return NULL;
    }
    const int64_t *src = PyArray_DATA(a);
    int32_t *dst = PyArray_DATA(r);
    for (npy_intp i = 0; i < n; i++) {
        if (src[i] < INT32_MIN || src[i] > INT32_MAX) {
            PyErr_Format(PyExc_ValueError, "token id %lld at position %zd is out of range", (long long)src[i],
                         (Py_ssize_t)i);
            Py_DECREF(a);
            Py_DECREF(r);
            return NULL;
        }
        dst[i] = (int32_t)src[i];
    }
    Py_DECREF(a);
    return r;
}

static int parse_logits_mode(const char *s, orc_logits_mode *mode) {
    if (!strcmp(s, "all")) *mode = ORC_LOGITS_ALL;
    else if (!strcmp(s, "last")) *mode = ORC_LOGITS_LAST;
    else if (!strcmp(s, "none")) *mode = ORC_LOGITS_NONE;
    else if (!strcmp(s, "argmax")) *mode = ORC_LOGITS_ARGMAX;
    else {
        PyErr_Format(PyExc_ValueError, "logits must be 'all', 'last', 'argmax' or 'none', not '%s'", s);
        return -1;
    }
    return 0;
}

/* Capture buffers: for each hook index in `cap_o`, a [n_rows, width] float32 array (per_key
 * hooks: width * keys) stored under the index in `captured`; dst[index] points at it. */
static int make_captures(orc_model *m, PyObject *cap_o, npy_intp n_rows, int64_t keys, float **dst, PyObject *captured) {
    const int32_t n_hooks = orc_model_n_hooks(m);
    PyObject *it = PyObject_GetIter(cap_o);
    if (!it) return -1;
    PyObject *item;
    while ((item = PyIter_Next(it))) {
        long idx = PyLong_AsLong(item);
        Py_DECREF(item);
        if (idx == -1 && PyErr_Occurred()) break;
        if (idx < 0 || idx >= n_hooks) {
            PyErr_Format(PyExc_ValueError, "hook index %ld out of range [0, %d)", idx, (int)n_hooks);
            break;
        }
        const orc_hook_info *h = orc_model_hook(m, (int32_t)idx);
        npy_intp d[2] = {n_rows, (npy_intp)(h->per_key ? h->width * keys : h->width)};
        PyObject *arr = PyArray_SimpleNew(2, d, NPY_FLOAT32);
        PyObject *key = PyLong_FromLong(idx);
        if (!arr || !key || PyDict_SetItem(captured, key, arr) < 0) {
            Py_XDECREF(arr);
            Py_XDECREF(key);
            break;
        }
        dst[idx] = PyArray_DATA((PyArrayObject *)arr);
        Py_DECREF(arr);
        Py_DECREF(key);
    }
    Py_DECREF(it);
    return PyErr_Occurred() ? -1 : 0;
}

/* Patches: {hook_index: ndarray [n, width] or callable} -> replace[] / want[] tables; the
 * arrays are kept alive in `keep`, the callables gathered in `fns`. */
static int make_patches(orc_model *m, PyObject *patch_o, npy_intp n_rows, const float **replace, bool *want,
                        PyObject *keep, PyObject *fns) {
    const int32_t n_hooks = orc_model_n_hooks(m);
    if (!PyDict_Check(patch_o)) {
        PyErr_SetString(PyExc_TypeError, "patch must be a dict {hook index: array or callable}");
        return -1;
    }
    PyObject *k, *v;
    Py_ssize_t pos = 0;
    while (PyDict_Next(patch_o, &pos, &k, &v)) {
        long idx = PyLong_AsLong(k);
        if (idx == -1 && PyErr_Occurred()) return -1;
        if (idx < 0 || idx >= n_hooks) {
            PyErr_Format(PyExc_ValueError, "hook index %ld out of range [0, %d)", idx, (int)n_hooks);
            return -1;
        }
        const orc_hook_info *h = orc_model_hook(m, (int32_t)idx);
        if (PyCallable_Check(v)) {
            want[idx] = true;
            if (PyDict_SetItem(fns, k, v) < 0) return -1;
            continue;
        }
        PyObject *a = PyArray_FROMANY(v, NPY_FLOAT32, 1, 3, NPY_ARRAY_IN_ARRAY | NPY_ARRAY_FORCECAST);
        if (!a) return -1;
        if (PyList_Append(keep, a) < 0) {
            Py_DECREF(a);
            return -1;
        }
        Py_DECREF(a);
        if (h->per_key) {
            PyErr_Format(PyExc_ValueError, "%s cannot be patched", h->name);
            return -1;
        }
        if (PyArray_SIZE((PyArrayObject *)a) != n_rows * (npy_intp)h->width) {
            PyErr_Format(PyExc_ValueError, "patch for %s has %zd values; %zd tokens x %lld expected", h->name,
                         (Py_ssize_t)PyArray_SIZE((PyArrayObject *)a), (Py_ssize_t)n_rows, (long long)h->width);
            return -1;
        }
        replace[idx] = PyArray_DATA((PyArrayObject *)a);
    }
    return 0;
}

/* _forward(ids, logits="all", capture=None, patch=None) -> (logits or None, {hook_index: ndarray})
 * capture: an iterable of hook indices; patch: {hook_index: ndarray or callable} (orc.Session
 * resolves names and patterns). */
static PyObject *Session_forward(SessionObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"ids", "logits", "capture", "patch", NULL};
    PyObject *ids_o, *cap_o = Py_None, *patch_o = Py_None;
    const char *mode_s = "all";
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|sOO", kwlist, &ids_o, &mode_s, &cap_o, &patch_o)) return NULL;
    if (session_check(self) < 0) return NULL;
    orc_logits_mode mode;
    if (parse_logits_mode(mode_s, &mode) < 0) return NULL;

    orc_model *m = session_model(self);
    const int32_t n_vocab = orc_model_config(m)->n_vocab;
    const int32_t n_hooks = orc_model_n_hooks(m);
    PyObject *ret = NULL, *logits = NULL, *captured = NULL, *keep = NULL, *fns = NULL;
    float **dst = NULL;
    const float **replace = NULL;
    bool *want = NULL;
    PyArrayObject *ids = as_ids(ids_o);
    if (!ids) return NULL;
    const npy_intp n = PyArray_SIZE(ids);
    if (n == 0) {
        PyErr_SetString(PyExc_ValueError, "forward needs at least one token id (got an empty sequence)");
        goto done;
    }
    /* Capacity before allocating anything of n rows (the core checks again under its lock). */
    const int64_t n_past = orc_session_n_past(self->s), n_ctx = orc_session_n_ctx(self->s);
    if (n > INT32_MAX / 2 || n_past + (int64_t)n > n_ctx) {
        PyErr_Format(PyExc_ValueError,
                     "%lld tokens after %lld already in the session exceed n_ctx = %lld (rewind, reset, or use a "
                     "larger n_ctx)",
                     (long long)n, (long long)n_past, (long long)n_ctx);
        goto done;
    }
    if (mode == ORC_LOGITS_ALL) {
        npy_intp d[2] = {n, n_vocab};
        logits = PyArray_SimpleNew(2, d, NPY_FLOAT32);
    } else if (mode == ORC_LOGITS_LAST || mode == ORC_LOGITS_ARGMAX) {
        npy_intp d[1] = {mode == ORC_LOGITS_LAST ? n_vocab : ORC_ARGMAX_FLOATS};
        logits = PyArray_SimpleNew(1, d, NPY_FLOAT32);
    } else {
        logits = Py_NewRef(Py_None);
    }
    captured = PyDict_New();
    if (!logits || !captured) goto done;
    orc_capture cap = {0};
    orc_patch patch = {0};
    const int64_t keys = n_past + n;
    call_ctx c = {0};
    if (cap_o != Py_None) {
        dst = PyMem_Calloc((size_t)n_hooks, sizeof *dst);
        if (!dst) {
            PyErr_NoMemory();
            goto done;
        }
        if (make_captures(m, cap_o, n, keys, dst, captured) < 0) goto done;
        cap = (orc_capture){.dst = dst, .n_hooks = n_hooks, .keys = keys};
    }
    if (patch_o != Py_None) {
        replace = PyMem_Calloc((size_t)n_hooks, sizeof *replace);
        want = PyMem_Calloc((size_t)n_hooks, sizeof *want);
        keep = PyList_New(0);
        fns = PyDict_New();
        if (!replace || !want || !keep || !fns) {
            if (!PyErr_Occurred()) PyErr_NoMemory();
            goto done;
        }
        if (make_patches(m, patch_o, n, replace, want, keep, fns) < 0) goto done;
        c.patch_fns = fns;
        patch = (orc_patch){.replace = replace, .want = want, .n_hooks = n_hooks, .fn = ctx_patch, .user = &c};
    }
    orc_err err = {0};
    float *out = logits == Py_None ? NULL : PyArray_DATA((PyArrayObject *)logits);
    c.ts = PyEval_SaveThread();
    orc_status st = orc_session_forward(self->s, PyArray_DATA(ids), (int32_t)n, mode, out, dst ? &cap : NULL,
                                        replace ? &patch : NULL, ctx_cancel, &c, &err);
    PyEval_RestoreThread(c.ts);
    if (st != ORC_OK) {
        raise_status(Py_TYPE(self), st, &err, &c);
        goto done;
    }
    ret = PyTuple_Pack(2, logits, captured);
done:
    PyMem_Free(dst);
    PyMem_Free(replace);
    PyMem_Free(want);
    Py_DECREF(ids);
    Py_XDECREF(logits);
    Py_XDECREF(captured);
    Py_XDECREF(keep);
    Py_XDECREF(fns);
    return ret;
}

/* _forward_batch(list of id sequences, logits="all", capture=None) -> (logits, {hook_index: ndarray}, lens)
 * The session must have been made with n_seq >= len(list); its sequences are reset first.
 * Arrays are in the concatenated token order (logits "last": [n_seq, n_vocab]). */
static PyObject *Session_forward_batch(SessionObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"seqs", "logits", "capture", NULL};
    PyObject *seqs_o, *cap_o = Py_None;
    const char *mode_s = "all";
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|sO", kwlist, &seqs_o, &mode_s, &cap_o)) return NULL;
    if (session_check(self) < 0) return NULL;
    orc_logits_mode mode;
    if (parse_logits_mode(mode_s, &mode) < 0) return NULL;
    PyObject *seq_list = PySequence_Fast(seqs_o, "forward_batch takes a list of token id sequences");
    if (!seq_list) return NULL;
    const Py_ssize_t n_seq = PySequence_Fast_GET_SIZE(seq_list);
    orc_model *m = session_model(self);
    const int32_t n_vocab = orc_model_config(m)->n_vocab, n_hooks = orc_model_n_hooks(m);
    PyObject *ret = NULL, *logits = NULL, *captured = NULL, *lens_o = NULL, *all = NULL;
    int32_t *lens = NULL;
    float **dst = NULL;
    if (n_seq == 0 || n_seq > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "forward_batch needs at least one sequence");
        goto done;
    }
    lens = PyMem_Calloc((size_t)n_seq, sizeof *lens);
    lens_o = PyList_New(n_seq);
    all = PyList_New(n_seq);
    if (!lens || !lens_o || !all) {
        if (!PyErr_Occurred()) PyErr_NoMemory();
        goto done;
    }
    int64_t total = 0, max_len = 0;
    for (Py_ssize_t i = 0; i < n_seq; i++) {
        PyArrayObject *a = as_ids(PySequence_Fast_GET_ITEM(seq_list, i));
        if (!a) goto done;
        PyList_SET_ITEM(all, i, (PyObject *)a);
        const npy_intp k = PyArray_SIZE(a);
        if (k == 0) {
            PyErr_Format(PyExc_ValueError, "sequence %zd is empty", i);
            goto done;
        }
        if (k > orc_session_n_ctx(self->s)) {
            PyErr_Format(PyExc_ValueError, "sequence %zd has %zd tokens; n_ctx is %d", i, (Py_ssize_t)k,
                         (int)orc_session_n_ctx(self->s));
            goto done;
        }
        lens[i] = (int32_t)k;
        total += k;
        if (k > max_len) max_len = k;
        PyList_SET_ITEM(lens_o, i, PyLong_FromLong((long)k));
    }
    npy_intp tdim[1] = {(npy_intp)total};
    PyArrayObject *ids = (PyArrayObject *)PyArray_SimpleNew(1, tdim, NPY_INT32);
    if (!ids) goto done;
    for (Py_ssize_t i = 0, t = 0; i < n_seq; i++) {
        PyArrayObject *a = (PyArrayObject *)PyList_GET_ITEM(all, i);
        memcpy((int32_t *)PyArray_DATA(ids) + t, PyArray_DATA(a), (size_t)lens[i] * sizeof(int32_t));
        t += lens[i];
    }
    Py_SETREF(all, (PyObject *)ids);
    if (mode == ORC_LOGITS_NONE) {
        logits = Py_NewRef(Py_None);
    } else {
        npy_intp d[2] = {mode == ORC_LOGITS_ALL ? (npy_intp)total : (npy_intp)n_seq,
                         mode == ORC_LOGITS_ARGMAX ? ORC_ARGMAX_FLOATS : n_vocab};
        logits = PyArray_SimpleNew(2, d, NPY_FLOAT32);
    }
    captured = PyDict_New();
    if (!logits || !captured) goto done;
    orc_capture cap = {0};
    if (cap_o != Py_None) {
        dst = PyMem_Calloc((size_t)n_hooks, sizeof *dst);
        if (!dst) {
            PyErr_NoMemory();
            goto done;
        }
        if (make_captures(m, cap_o, (npy_intp)total, max_len, dst, captured) < 0) goto done;
        cap = (orc_capture){.dst = dst, .n_hooks = n_hooks, .keys = max_len};
    }
    orc_err err = {0};
    call_ctx c = {0};
    float *out = logits == Py_None ? NULL : PyArray_DATA((PyArrayObject *)logits);
    c.ts = PyEval_SaveThread();
    orc_status st = orc_session_forward_batch(self->s, PyArray_DATA((PyArrayObject *)all), lens, (int32_t)n_seq, mode,
                                              out, dst ? &cap : NULL, ctx_cancel, &c, &err);
    PyEval_RestoreThread(c.ts);
    if (st != ORC_OK) {
        raise_status(Py_TYPE(self), st, &err, &c);
        goto done;
    }
    ret = PyTuple_Pack(3, logits, captured, lens_o);
done:
    PyMem_Free(dst);
    PyMem_Free(lens);
    Py_DECREF(seq_list);
    Py_XDECREF(logits);
    Py_XDECREF(captured);
    Py_XDECREF(lens_o);
    Py_XDECREF(all);
    return ret;
}

static PyObject *Session_rewind(SessionObject *self, PyObject *arg) {
    if (session_check(self) < 0) return NULL;
    long long n = PyLong_AsLongLong(arg);
    if (n == -1 && PyErr_Occurred()) return NULL;
    orc_err err = {0};
    if (n < 0 || n > INT32_MAX)
        return PyErr_Format(PyExc_ValueError, "cannot rewind %lld tokens: the session holds %d", n,
                            (int)orc_session_n_past(self->s));
    orc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = orc_session_rewind(self->s, (int32_t)n, &err);
    Py_END_ALLOW_THREADS
    if (st != ORC_OK) return orc_py_raise_err(orc_state_of_type(Py_TYPE(self)), &err);
    Py_RETURN_NONE;
}

static PyObject *Session_reset(SessionObject *self, PyObject *unused) {
    if (session_check(self) < 0) return NULL;
    orc_err err = {0};
    orc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = orc_session_reset(self->s, &err);
    Py_END_ALLOW_THREADS
    if (st != ORC_OK) return orc_py_raise_err(orc_state_of_type(Py_TYPE(self)), &err);
    Py_RETURN_NONE;
}

static PyObject *Session_fork(SessionObject *self, PyObject *unused) {
    if (session_check(self) < 0) return NULL;
    PyTypeObject *tp = Py_TYPE(self);
    orc_err err = {0};
    orc_status st;
    orc_session *o = NULL;
    Py_BEGIN_ALLOW_THREADS
    st = orc_session_fork(self->s, &o, &err);
    Py_END_ALLOW_THREADS
    if (st != ORC_OK) return orc_py_raise_err(orc_state_of_type(tp), &err);
    SessionObject *so = (SessionObject *)tp->tp_alloc(tp, 0);
    if (!so) {
        Py_BEGIN_ALLOW_THREADS
        orc_session_free(o);
        Py_END_ALLOW_THREADS
        return NULL;
    }
    so->s = o;
    so->model = Py_NewRef(self->model);
    return (PyObject *)so;
}

static PyObject *Session_get_history(SessionObject *self, void *c) {
    if (!self->s) return PyList_New(0);
    const int32_t cap = orc_session_n_ctx(self->s);
    int32_t *buf = PyMem_Malloc((size_t)(cap > 0 ? cap : 1) * sizeof *buf);
    if (!buf) return PyErr_NoMemory();
    orc_err err = {0};
    int32_t n = 0;
    orc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = orc_session_history(self->s, buf, cap, &n, &err);
    Py_END_ALLOW_THREADS
    if (st != ORC_OK) {
        PyMem_Free(buf);
        return orc_py_raise_err(orc_state_of_type(Py_TYPE(self)), &err);
    }
    PyObject *l = PyList_New(n);
    for (int32_t i = 0; l && i < n; i++) {
        PyObject *v = PyLong_FromLong(buf[i]);
        if (!v) {
            Py_CLEAR(l);
            break;
        }
        PyList_SET_ITEM(l, i, v);
    }
    PyMem_Free(buf);
    return l;
}

static PyObject *Session_get_n_past(SessionObject *self, void *c) {
    if (!self->s || orc_session_is_closed(self->s)) return PyLong_FromLong(0);
    return PyLong_FromLong(orc_session_n_past(self->s));
}

static PyObject *Session_get_n_ctx(SessionObject *self, void *c) {
    if (!self->s || orc_session_is_closed(self->s)) return PyLong_FromLong(0);
    return PyLong_FromLong(orc_session_n_ctx(self->s));
}

static PyObject *Session_get_closed(SessionObject *self, void *c) {
    return PyBool_FromLong(self->s == NULL || orc_session_is_closed(self->s));
}

static PyObject *Session_get_model(SessionObject *self, void *c) {
    if (!self->model) Py_RETURN_NONE;
    return Py_NewRef(self->model);
}

static PyObject *Session_get_kv_dtype(SessionObject *self, void *c) {
    if (!self->s) Py_RETURN_NONE;
    return PyUnicode_FromString(orc_dtype_name(orc_session_kv_dtype(self->s)));
}

static PyObject *Session_get_graphs(SessionObject *self, void *c) {
    if (!self->s) Py_RETURN_FALSE;
    return PyBool_FromLong(orc_session_graphs(self->s));
}

static PyObject *Session_get_last_path(SessionObject *self, void *c) {
    if (!self->s) Py_RETURN_NONE;
    return PyUnicode_FromString(orc_session_last_path(self->s));
}

static PyMethodDef Session_methods[] = {
    {"_forward", (PyCFunction)(void (*)(void))Session_forward, METH_VARARGS | METH_KEYWORDS,
     "_forward(ids, logits='all', capture=None, patch=None) -> (logits, {hook_index: ndarray})"},
    {"_forward_batch", (PyCFunction)(void (*)(void))Session_forward_batch, METH_VARARGS | METH_KEYWORDS,
     "_forward_batch(seqs, logits='all', capture=None) -> (logits, {hook_index: ndarray}, lens)"},
    {"rewind", (PyCFunction)Session_rewind, METH_O, "rewind(n): forget the last n tokens (0 <= n <= n_past)."},
    {"reset", (PyCFunction)Session_reset, METH_NOARGS, "Forget every token (n_past = 0)."},
    {"fork", (PyCFunction)Session_fork, METH_NOARGS, "A new session with a copy of this one's KV cache and history."},
    {"close", (PyCFunction)Session_close, METH_NOARGS,
     "Free the KV cache and scratch now (waits for a call in progress in another thread)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Session_getset[] = {
    {"n_past", (getter)Session_get_n_past, NULL, "Tokens in the KV cache.", NULL},
    {"n_ctx", (getter)Session_get_n_ctx, NULL, "Capacity of the KV cache in tokens.", NULL},
    {"history", (getter)Session_get_history, NULL, "The token ids in the KV cache, oldest first (a new list).", NULL},
    {"closed", (getter)Session_get_closed, NULL, "True after close().", NULL},
    {"model", (getter)Session_get_model, NULL, "The model this session runs.", NULL},
    {"kv_dtype", (getter)Session_get_kv_dtype, NULL, "The KV cache's dtype.", NULL},
    {"graphs", (getter)Session_get_graphs, NULL,
     "Whether one-token steps replay a recorded graph (asked for, and recording has not failed).", NULL},
    {"last_path", (getter)Session_get_last_path, NULL,
     "How the last forward ran: 'graph replay' or 'eager (...)' with the reason.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef Session_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(SessionObject, weakrefs), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot Session_slots[] = {
    {Py_tp_doc, "Session(model, n_ctx=4096, n_batch=512, kv_dtype=None, graphs=True, n_seq=1)\n\n"
                "The native session: a KV cache over a model. Use orc.Session."},
    {Py_tp_init, Session_init},
    {Py_tp_dealloc, Session_dealloc},
    {Py_tp_traverse, Session_traverse},
    {Py_tp_clear, Session_clear},
    {Py_tp_methods, Session_methods},
    {Py_tp_getset, Session_getset},
    {Py_tp_members, Session_members},
    {0, NULL},
};

static PyType_Spec Session_spec = {
    .name = "orc._orc.Session",
    .basicsize = sizeof(SessionObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = Session_slots,
};

static PyMethodDef module_functions[] = {
    {"parse_dtype", py_parse_dtype, METH_O, "parse_dtype(name) -> the canonical dtype name ('f16' -> 'float16')."},
    {"hook_steps", py_hook_steps, METH_NOARGS, "[(step, on_request, in_every_dense_architecture)] of a decoder layer, in execution order."},
    {"architectures", py_architectures, METH_NOARGS, "The GGUF architecture names orc runs."},
    {NULL, NULL, 0, NULL},
};

int orc_py_model_exec(PyObject *m) {
    orc_state *st = orc_state_of_module(m);
    if (PyModule_AddFunctions(m, module_functions) < 0) return -1;
    st->ModelType = orc_py_add_type(m, &Model_spec, NULL);
    if (!st->ModelType) return -1;
    st->SessionType = orc_py_add_type(m, &Session_spec, NULL);
    if (!st->SessionType) return -1;
    return 0;
}
