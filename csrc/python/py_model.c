/* py_model.c - the Python types over model.h: _orc.Model and _orc.Session.
 *
 * They carry the native work (load, forward, capture, KV cache); orc/model.py
 * subclasses them with the conveniences (metadata, tokenizer, generate, trace
 * patterns, notebook reprs). Long native work runs without the GIL and polls
 * for Ctrl-C between layers. */
#include "python/py_common.h"

#include <string.h>

#include "structmember.h" /* PyMemberDef, T_PYSSIZET */

#include "model/model.h"

typedef struct {
    PyObject_HEAD
    orc_model *m;
    PyObject *path;
    int cuda_device;
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

/* After native work: prefer a pending Python exception (Ctrl-C, a failing progress callback). */
static PyObject *raise_status(PyTypeObject *tp, orc_status st, const orc_err *err, const call_ctx *c) {
    if (c && c->failed && PyErr_Occurred()) return NULL;
    return orc_py_raise(orc_state_of_type(tp), st, err->msg);
}

static int parse_dtype(PyObject *o, orc_dtype *out, const char *what) {
    const char *s = o ? PyUnicode_AsUTF8(o) : NULL;
    if (!s) {
        if (!PyErr_Occurred()) PyErr_Format(PyExc_TypeError, "%s must be a str", what);
        return -1;
    }
    if (!strcmp(s, "float32") || !strcmp(s, "f32")) *out = ORC_DTYPE_F32;
    else if (!strcmp(s, "float16") || !strcmp(s, "f16")) *out = ORC_DTYPE_F16;
    else if (!strcmp(s, "bfloat16") || !strcmp(s, "bf16")) *out = ORC_DTYPE_BF16;
    else {
        PyErr_Format(PyExc_ValueError, "%s must be 'float32', 'float16' or 'bfloat16', not %R", what, o);
        return -1;
    }
    return 0;
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
    static char *kwlist[] = {"path", "device", "cuda_device", "dtype", "keep_quantized", "n_threads",
                             "round_matmul_inputs", "fault", "progress", "profile", NULL};
    PyObject *path_o, *dtype_o = NULL, *progress = Py_None;
    const char *device = "cpu", *fault = NULL;
    int cuda_device = 0, keep_quantized = 0, n_threads = 0, round_inputs = 0, profile = 0;
    if (self->m) {
        PyErr_SetString(PyExc_RuntimeError, "Model.__init__ called twice");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|siOpipzOp", kwlist, PyUnicode_FSDecoder, &path_o, &device,
                                     &cuda_device, &dtype_o, &keep_quantized, &n_threads, &round_inputs, &fault,
                                     &progress, &profile))
        return -1;
    orc_model_params p = {0};
    int ret = -1;
    if (!strcmp(device, "cpu")) p.device = ORC_DEVICE_CPU;
    else if (!strcmp(device, "cuda")) p.device = ORC_DEVICE_CUDA;
    else {
        PyErr_Format(PyExc_ValueError, "device must be 'cpu' or 'cuda', not '%s'", device);
        goto done;
    }
    p.cuda_device = cuda_device;
    p.dtype = p.device == ORC_DEVICE_CUDA ? ORC_DTYPE_F16 : ORC_DTYPE_F32;
    if (dtype_o && dtype_o != Py_None && parse_dtype(dtype_o, &p.dtype, "dtype") < 0) goto done;
    p.keep_quantized = keep_quantized;
    p.profile = profile;
    p.n_threads = n_threads;
    p.round_matmul_inputs = round_inputs;
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
    orc_err err = {0};
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
    self->cuda_device = cuda_device;
    Py_INCREF(path_o);
    self->path = path_o;
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
        orc_model_close(self->m);
        orc_model_release(self->m);
        self->m = NULL;
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
    return PyUnicode_FromString(orc_model_config(self->m)->arch_name);
}

static PyObject *Model_get_device(ModelObject *self, void *c) {
    if (!self->m) Py_RETURN_NONE;
    if (orc_model_device(self->m) == ORC_DEVICE_CUDA) return PyUnicode_FromFormat("cuda:%d", self->cuda_device);
    return PyUnicode_FromString("cpu");
}

static PyObject *Model_get_dtype(ModelObject *self, void *c) {
    if (!self->m) Py_RETURN_NONE;
    return PyUnicode_FromString(orc_dtype_name(orc_model_dtype(self->m)));
}

static PyObject *Model_get_config(ModelObject *self, void *c) {
    if (!self->m) Py_RETURN_NONE;
    const orc_config *k = orc_model_config(self->m);
    return Py_BuildValue(
        "{s:s,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:d,s:d,s:d,s:d,s:d,s:s,s:O,s:O,s:O,s:O,s:O,s:d,s:d,s:d,s:d,"
        "s:i,s:i,s:s}",
        "arch", k->arch_name, "n_layer", k->n_layer, "n_embd", k->n_embd, "n_head", k->n_head, "n_head_kv",
        k->n_head_kv, "head_dim", k->head_dim, "head_dim_v", k->head_dim_v, "n_ff", k->n_ff, "n_vocab", k->n_vocab,
        "n_ctx_train", k->n_ctx_train, "n_rot", k->n_rot, "rms_eps", (double)k->rms_eps, "rope_theta",
        (double)k->rope_base, "rope_theta_swa", (double)k->rope_base_swa, "rope_freq_scale",
        (double)k->rope_freq_scale, "rope_freq_scale_swa", (double)k->rope_freq_scale_swa, "rope_type",
        k->rope_kind == ORC_ROPE_NEOX ? "neox" : "norm", "qkv_bias", k->qkv_bias ? Py_True : Py_False, "qk_norm",
        k->qk_norm ? Py_True : Py_False, "post_norms", k->post_norms ? Py_True : Py_False, "tied_output",
        k->tied_output ? Py_True : Py_False, "rope_freqs", k->has_rope_freqs ? Py_True : Py_False, "embd_scale",
        (double)k->embd_scale, "attn_scale", (double)k->attn_scale, "attn_softcap", (double)k->attn_softcap,
        "final_softcap", (double)k->final_softcap, "sliding_window", k->sliding_window, "swa_pattern",
        k->swa_pattern, "ffn_act", k->act == ORC_ACT_GELU_TANH ? "gelu_tanh" : "silu");
}

static PyObject *Model_tensor(ModelObject *self, PyObject *arg) {
    if (model_check_open(self) < 0) return NULL;
    const char *name = PyUnicode_AsUTF8(arg);
    if (!name) return NULL;
    orc_err err = {0};
    int64_t rows, cols;
    orc_status st = orc_model_tensor_shape(self->m, name, &rows, &cols, &err);
    if (st != ORC_OK) return orc_py_raise_err(orc_state_of_type(Py_TYPE(self)), &err);
    const orc_gguf_tensor *t = orc_gguf_find_tensor(orc_model_gguf(self->m), name);
    npy_intp dims[4];
    int nd = t ? (int)t->n_dims : 2;
    for (int d = 0; d < nd; d++) dims[d] = t ? (npy_intp)t->ne[nd - 1 - d] : (d ? cols : rows);
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
    if (model_check_open(self) < 0) return NULL;
    int32_t n = orc_model_n_hooks(self->m);
    PyObject *list = PyList_New(n);
    if (!list) return NULL;
    for (int32_t i = 0; i < n; i++) {
        char name[64];
        int64_t width;
        int32_t heads, hd;
        orc_model_hook_info(self->m, i, name, sizeof name, &width, &heads, &hd);
        PyObject *item = Py_BuildValue("(sLii)", name, (long long)width, heads, hd);
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

static PyMethodDef Model_methods[] = {
    {"_profile", (PyCFunction)(void (*)(void))Model_profile, METH_VARARGS | METH_KEYWORDS,
     "_profile(reset=True) -> {primitive: (calls, seconds)} (with profile=True at load)."},
    {"close", (PyCFunction)Model_close, METH_NOARGS,
     "Free the weights (and GPU memory) now. Sessions of this model then raise OrcError."},
    {"tensor", (PyCFunction)Model_tensor, METH_O,
     "tensor(name) -> float32 ndarray: the weight as this model's backend stores it (dequantized, in the model's\n"
     "dtype), converted to float32; shape in NumPy order."},
    {"memory", (PyCFunction)Model_memory, METH_NOARGS,
     "Bytes held on the model's device: weights, quantized (kept blocks), kv_cache and scratch (all sessions), total."},
    {"_hooks", (PyCFunction)Model_hooks, METH_NOARGS, "[(name, width, heads, head_dim)] in execution order."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Model_getset[] = {
    {"closed", (getter)Model_get_closed, NULL, "True after close().", NULL},
    {"path", (getter)Model_get_path, NULL, "The GGUF file.", NULL},
    {"arch", (getter)Model_get_arch, NULL, "general.architecture.", NULL},
    {"device", (getter)Model_get_device, NULL, "'cpu' or 'cuda:N'.", NULL},
    {"dtype", (getter)Model_get_dtype, NULL, "The weight storage dtype.", NULL},
    {"config", (getter)Model_get_config, NULL, "The hyperparameters orc read from the file, as a dict.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef Model_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(ModelObject, weakrefs), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot Model_slots[] = {
    {Py_tp_doc, "Model(path, device='cpu', cuda_device=0, dtype=None, keep_quantized=False, n_threads=0,\n"
                "      round_matmul_inputs=False, fault=None, progress=None)\n\n"
                "The native model: a GGUF file's weights dequantized onto a backend. Use orc.Model."},
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

static int session_check(SessionObject *self) {
    orc_state *st = orc_state_of_type(Py_TYPE(self));
    if (!self->s) {
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
    static char *kwlist[] = {"model", "n_ctx", "n_batch", "kv_dtype", "graphs", NULL};
    PyObject *model;
    int n_ctx = 4096, n_batch = 512, graphs = 0;
    PyObject *kv_o = Py_None;
    if (self->s) {
        PyErr_SetString(PyExc_RuntimeError, "Session.__init__ called twice");
        return -1;
    }
    orc_state *st = orc_state_of_type(Py_TYPE(self));
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!|iiOp", kwlist, st->ModelType, &model, &n_ctx, &n_batch, &kv_o,
                                     &graphs))
        return -1;
    ModelObject *mo = (ModelObject *)model;
    if (!mo->m || orc_model_is_closed(mo->m)) {
        PyErr_SetString(st->OrcError, "the model was closed");
        return -1;
    }
    orc_session_params p = {.n_ctx = n_ctx, .n_batch = n_batch, .graphs = graphs};
    p.kv_dtype = orc_model_device(mo->m) == ORC_DEVICE_CUDA ? ORC_DTYPE_F16 : ORC_DTYPE_F32;
    if (kv_o != Py_None && parse_dtype(kv_o, &p.kv_dtype, "kv_dtype") < 0) return -1;
    orc_err err = {0};
    orc_status s;
    Py_BEGIN_ALLOW_THREADS
    s = orc_session_create(mo->m, &p, &self->s, &err);
    Py_END_ALLOW_THREADS
    if (s != ORC_OK) {
        orc_py_raise_err(st, &err);
        return -1;
    }
    Py_INCREF(model);
    self->model = model;
    return 0;
}

static void Session_dealloc(SessionObject *self) {
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakrefs) PyObject_ClearWeakRefs((PyObject *)self);
    orc_session_free(self->s);
    self->s = NULL;
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
    orc_session *s = self->s;
    self->s = NULL;
    Py_BEGIN_ALLOW_THREADS
    orc_session_free(s);
    Py_END_ALLOW_THREADS
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

/* forward(ids, logits="all", capture=None) -> (logits or None, {hook_index: ndarray})
 * capture: an iterable of hook indices (orc.Session resolves names and patterns). */
static PyObject *Session_forward(SessionObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"ids", "logits", "capture", NULL};
    PyObject *ids_o, *cap_o = Py_None;
    const char *mode_s = "all";
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|sO", kwlist, &ids_o, &mode_s, &cap_o)) return NULL;
    if (session_check(self) < 0) return NULL;
    orc_logits_mode mode;
    if (!strcmp(mode_s, "all")) mode = ORC_LOGITS_ALL;
    else if (!strcmp(mode_s, "last")) mode = ORC_LOGITS_LAST;
    else if (!strcmp(mode_s, "none")) mode = ORC_LOGITS_NONE;
    else return PyErr_Format(PyExc_ValueError, "logits must be 'all', 'last' or 'none', not '%s'", mode_s);

    orc_model *m = ((ModelObject *)self->model)->m;
    const int32_t n_vocab = orc_model_config(m)->n_vocab;
    const int32_t n_hooks = orc_model_n_hooks(m);
    PyObject *ret = NULL, *logits = NULL, *captured = NULL;
    float **dst = NULL;
    PyArrayObject *ids = as_ids(ids_o);
    if (!ids) return NULL;
    const npy_intp n = PyArray_SIZE(ids);
    if (n == 0) {
        PyErr_SetString(PyExc_ValueError, "forward needs at least one token id (got an empty sequence)");
        goto done;
    }
    if (n > INT32_MAX / 2) {
        PyErr_SetString(PyExc_ValueError, "too many tokens");
        goto done;
    }
    if (mode == ORC_LOGITS_ALL) {
        npy_intp d[2] = {n, n_vocab};
        logits = PyArray_SimpleNew(2, d, NPY_FLOAT32);
    } else if (mode == ORC_LOGITS_LAST) {
        npy_intp d[1] = {n_vocab};
        logits = PyArray_SimpleNew(1, d, NPY_FLOAT32);
    } else {
        logits = Py_NewRef(Py_None);
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
        PyObject *it = PyObject_GetIter(cap_o);
        if (!it) goto done;
        PyObject *item;
        while ((item = PyIter_Next(it))) {
            long idx = PyLong_AsLong(item);
            Py_DECREF(item);
            if (idx == -1 && PyErr_Occurred()) break;
            if (idx < 0 || idx >= n_hooks) {
                PyErr_Format(PyExc_ValueError, "hook index %ld out of range [0, %d)", idx, (int)n_hooks);
                break;
            }
            char name[64];
            int64_t width;
            int32_t heads, hd;
            orc_model_hook_info(m, (int32_t)idx, name, sizeof name, &width, &heads, &hd);
            npy_intp d[2] = {n, (npy_intp)width};
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
        if (PyErr_Occurred()) goto done;
        cap.dst = dst;
        cap.n_hooks = n_hooks;
    }
    orc_err err = {0};
    call_ctx c = {0};
    float *out = logits == Py_None ? NULL : PyArray_DATA((PyArrayObject *)logits);
    c.ts = PyEval_SaveThread();
    orc_status st = orc_session_forward(self->s, PyArray_DATA(ids), (int32_t)n, mode, out, dst ? &cap : NULL,
                                        ctx_cancel, &c, &err);
    PyEval_RestoreThread(c.ts);
    if (st != ORC_OK) {
        raise_status(Py_TYPE(self), st, &err, &c);
        goto done;
    }
    ret = PyTuple_Pack(2, logits, captured);
done:
    PyMem_Free(dst);
    Py_DECREF(ids);
    Py_XDECREF(logits);
    Py_XDECREF(captured);
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
    if (orc_session_rewind(self->s, (int32_t)n, &err) != ORC_OK)
        return orc_py_raise_err(orc_state_of_type(Py_TYPE(self)), &err);
    Py_RETURN_NONE;
}

static PyObject *Session_reset(SessionObject *self, PyObject *unused) {
    if (session_check(self) < 0) return NULL;
    orc_session_reset(self->s);
    Py_RETURN_NONE;
}

static PyObject *Session_fork(SessionObject *self, PyObject *unused) {
    if (session_check(self) < 0) return NULL;
    PyTypeObject *tp = Py_TYPE(self);
    SessionObject *o = (SessionObject *)tp->tp_alloc(tp, 0);
    if (!o) return NULL;
    orc_err err = {0};
    orc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = orc_session_fork(self->s, &o->s, &err);
    Py_END_ALLOW_THREADS
    if (st != ORC_OK) {
        Py_DECREF(o);
        return orc_py_raise_err(orc_state_of_type(tp), &err);
    }
    o->model = Py_NewRef(self->model);
    return (PyObject *)o;
}

static PyObject *Session_get_n_past(SessionObject *self, void *c) {
    if (!self->s) return PyLong_FromLong(0);
    return PyLong_FromLong(orc_session_n_past(self->s));
}

static PyObject *Session_get_n_ctx(SessionObject *self, void *c) {
    if (!self->s) return PyLong_FromLong(0);
    return PyLong_FromLong(orc_session_n_ctx(self->s));
}

static PyObject *Session_get_closed(SessionObject *self, void *c) { return PyBool_FromLong(self->s == NULL); }

static PyObject *Session_get_model(SessionObject *self, void *c) {
    if (!self->model) Py_RETURN_NONE;
    return Py_NewRef(self->model);
}

static PyMethodDef Session_methods[] = {
    {"_forward", (PyCFunction)(void (*)(void))Session_forward, METH_VARARGS | METH_KEYWORDS,
     "_forward(ids, logits='all', capture=None) -> (logits, {hook_index: ndarray})"},
    {"rewind", (PyCFunction)Session_rewind, METH_O, "rewind(n): forget the last n tokens (0 <= n <= n_past)."},
    {"reset", (PyCFunction)Session_reset, METH_NOARGS, "Forget every token (n_past = 0)."},
    {"fork", (PyCFunction)Session_fork, METH_NOARGS, "A new session with a copy of this one's KV cache."},
    {"close", (PyCFunction)Session_close, METH_NOARGS, "Free the KV cache and scratch now."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Session_getset[] = {
    {"n_past", (getter)Session_get_n_past, NULL, "Tokens in the KV cache.", NULL},
    {"n_ctx", (getter)Session_get_n_ctx, NULL, "Capacity of the KV cache in tokens.", NULL},
    {"closed", (getter)Session_get_closed, NULL, "True after close().", NULL},
    {"model", (getter)Session_get_model, NULL, "The model this session runs.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef Session_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(SessionObject, weakrefs), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot Session_slots[] = {
    {Py_tp_doc, "Session(model, n_ctx=4096, n_batch=512, kv_dtype=None, graphs=False)\n\nThe native session: a KV cache over a model. "
                "Use orc.Session."},
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

int orc_py_model_exec(PyObject *m) {
    orc_state *st = orc_state_of_module(m);
    st->ModelType = orc_py_add_type(m, &Model_spec, NULL);
    if (!st->ModelType) return -1;
    st->SessionType = orc_py_add_type(m, &Session_spec, NULL);
    if (!st->SessionType) return -1;
    return 0;
}
