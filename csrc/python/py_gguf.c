/* py_gguf.c - orc.GGUFFile and orc.TensorInfo: the Python face of the GGUF reader (gguf.c).
 *
 * Lifetime: the orc_gguf handle (and its map) is owned by a capsule. GGUFFile holds one
 * reference; every array raw() returns holds another as its NumPy base. close() drops
 * only the GGUFFile's reference, so raw() arrays stay valid after close() and the map
 * goes away with the last of them. A closed GGUFFile raises orc.OrcError on use.
 *
 * .metadata is built in C, once, on first use (key -> int/float/bool/str; string arrays
 * -> list of str; numeric and bool arrays -> read-only NumPy copies), and each access
 * returns a fresh dict with fresh lists, so callers cannot corrupt the cache. String
 * values that are not valid UTF-8 come back as bytes (keys and tensor names are checked
 * to be UTF-8 when the file is opened).
 */
#include "python/py_common.h"

#include <errno.h>         /* errno */
#include <string.h>        /* strlen */
#include <structmember.h>  /* PyMemberDef, T_* */

#include "core/threadpool.h" /* orc_pool: nonfinite() */
#include "gguf/ggml_types.h"
#include "gguf/gguf.h"
#include "quant/scan.h" /* orc_scan_nonfinite: nonfinite() */

#define OWNER_NAME "orc._gguf_map"

typedef struct {
    PyObject_HEAD
    PyObject *owner;   /* capsule that owns the orc_gguf; NULL once closed */
    orc_gguf *g;       /* borrowed from owner; NULL once closed */
    PyObject *path;    /* str, as given (os.fspath) */
    PyObject *meta;    /* cached metadata dict (built on first use) */
    PyObject *tensors; /* cached tuple of TensorInfo (built on first use) */
} GGUFFileObject;

typedef struct {
    PyObject_HEAD
    PyObject *name;
    PyObject *type;  /* "Q4_K" */
    PyObject *shape; /* tuple, NumPy order (rows first) */
    PyObject *ne;    /* tuple, ggml order (ne[0] contiguous) */
    int type_id;
    unsigned long long offset;      /* relative to the data section, as stored */
    unsigned long long file_offset; /* absolute */
    unsigned long long nbytes;
    long long n_elements;
    unsigned long long info_offset;
    Py_ssize_t index;
} TensorInfoObject;

static void owner_destructor(PyObject *cap) {
    orc_gguf *g = PyCapsule_GetPointer(cap, OWNER_NAME);
    orc_gguf_close(g);
}

/* ---- TensorInfo ----------------------------------------------------------------------- */

static void tensorinfo_dealloc(TensorInfoObject *self) {
    PyTypeObject *tp = Py_TYPE(self);
    Py_XDECREF(self->name);
    Py_XDECREF(self->type);
    Py_XDECREF(self->shape);
    Py_XDECREF(self->ne);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyObject *tensorinfo_repr(TensorInfoObject *self) {
    return PyUnicode_FromFormat("TensorInfo(name=%R, type=%R, shape=%R, offset=%llu, nbytes=%llu)", self->name,
                                self->type, self->shape, self->offset, self->nbytes);
}

static PyMemberDef tensorinfo_members[] = {
    {"name", T_OBJECT_EX, offsetof(TensorInfoObject, name), READONLY, "tensor name"},
    {"type", T_OBJECT_EX, offsetof(TensorInfoObject, type), READONLY, "ggml type name, e.g. 'Q4_K'"},
    {"shape", T_OBJECT_EX, offsetof(TensorInfoObject, shape), READONLY,
     "shape in NumPy order (rows first): the reverse of ne"},
    {"ne", T_OBJECT_EX, offsetof(TensorInfoObject, ne), READONLY, "shape in ggml order (ne[0] is contiguous)"},
    {"type_id", T_INT, offsetof(TensorInfoObject, type_id), READONLY, "ggml type id"},
    {"offset", T_ULONGLONG, offsetof(TensorInfoObject, offset), READONLY,
     "offset of the data relative to the data section, as stored in the file"},
    {"file_offset", T_ULONGLONG, offsetof(TensorInfoObject, file_offset), READONLY,
     "absolute file offset of the data (gguf-py's ReaderTensor.data_offset)"},
    {"nbytes", T_ULONGLONG, offsetof(TensorInfoObject, nbytes), READONLY, "size of the stored data in bytes"},
    {"n_elements", T_LONGLONG, offsetof(TensorInfoObject, n_elements), READONLY, "number of elements"},
    {"info_offset", T_ULONGLONG, offsetof(TensorInfoObject, info_offset), READONLY,
     "file offset of this tensor's info record"},
    {"index", T_PYSSIZET, offsetof(TensorInfoObject, index), READONLY, "position in the file's tensor list"},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot tensorinfo_slots[] = {
    {Py_tp_dealloc, tensorinfo_dealloc},
    {Py_tp_repr, tensorinfo_repr},
    {Py_tp_members, tensorinfo_members},
    {Py_tp_doc, "One tensor's entry in a GGUF file (immutable; made by GGUFFile)."},
    {0, NULL},
};

static PyType_Spec tensorinfo_spec = {
    .name = "orc.TensorInfo",
    .basicsize = sizeof(TensorInfoObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = tensorinfo_slots,
};

static PyObject *make_tensorinfo(orc_state *st, const orc_gguf *g, uint64_t i) {
    const orc_gguf_tensor *t = orc_gguf_tensor_at(g, i);
    TensorInfoObject *o = (TensorInfoObject *)st->TensorInfoType->tp_alloc(st->TensorInfoType, 0);
    if (!o) return NULL;
    char buf[64];
    o->name = PyUnicode_DecodeUTF8(t->name.ptr, (Py_ssize_t)t->name.len, "strict");
    o->type = PyUnicode_FromString(orc_type_name(t->type, buf, sizeof buf));
    o->shape = PyTuple_New(t->n_dims);
    o->ne = PyTuple_New(t->n_dims);
    if (!o->name || !o->type || !o->shape || !o->ne) goto fail;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        PyObject *a = PyLong_FromLongLong(t->ne[d]), *b = PyLong_FromLongLong(t->ne[d]);
        if (!a || !b) {
            Py_XDECREF(a);
            Py_XDECREF(b);
            goto fail;
        }
        PyTuple_SET_ITEM(o->ne, d, a);
        PyTuple_SET_ITEM(o->shape, t->n_dims - 1 - d, b);
    }
    o->type_id = t->type;
    o->offset = t->offset;
    o->file_offset = orc_gguf_data_offset(g) + t->offset;
    o->nbytes = t->nbytes;
    o->n_elements = t->n_elements;
    o->info_offset = t->info_offset;
    o->index = (Py_ssize_t)i;
    return (PyObject *)o;
fail:
    Py_DECREF(o);
    return NULL;
}

/* ---- metadata ------------------------------------------------------------------------- */

static PyObject *decode_str(orc_gguf_str s) {
    PyObject *u = PyUnicode_DecodeUTF8(s.ptr, (Py_ssize_t)s.len, "strict");
    if (u || !PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) return u;
    PyErr_Clear();
    return PyBytes_FromStringAndSize(s.ptr, (Py_ssize_t)s.len);
}

static int npy_type_of(orc_gguf_vtype t) {
    switch (t) {
    case ORC_GGUF_UINT8: return NPY_UINT8;
    case ORC_GGUF_INT8: return NPY_INT8;
    case ORC_GGUF_UINT16: return NPY_UINT16;
    case ORC_GGUF_INT16: return NPY_INT16;
    case ORC_GGUF_UINT32: return NPY_UINT32;
    case ORC_GGUF_INT32: return NPY_INT32;
    case ORC_GGUF_FLOAT32: return NPY_FLOAT32;
    case ORC_GGUF_BOOL: return NPY_BOOL;
    case ORC_GGUF_UINT64: return NPY_UINT64;
    case ORC_GGUF_INT64: return NPY_INT64;
    case ORC_GGUF_FLOAT64: return NPY_FLOAT64;
    default: return -1;
    }
}

static PyObject *scalar_value(const orc_gguf_kv *kv) {
    switch (kv->type) {
    case ORC_GGUF_STRING: return decode_str(kv->strings[0]);
    case ORC_GGUF_BOOL: return PyBool_FromLong(kv->data[0] != 0);
    case ORC_GGUF_FLOAT32:
    case ORC_GGUF_FLOAT64: return PyFloat_FromDouble(orc_gguf_array_float(kv, 0));
    case ORC_GGUF_UINT64: return PyLong_FromUnsignedLongLong((unsigned long long)orc_gguf_array_int(kv, 0));
    default: return PyLong_FromLongLong(orc_gguf_array_int(kv, 0));
    }
}

static PyObject *array_value(const orc_gguf_kv *kv) {
    if (kv->elem_type == ORC_GGUF_STRING) {
        PyObject *list = PyList_New((Py_ssize_t)kv->count);
        if (!list) return NULL;
        for (uint64_t j = 0; j < kv->count; j++) {
            PyObject *s = decode_str(kv->strings[j]);
            if (!s) {
                Py_DECREF(list);
                return NULL;
            }
            PyList_SET_ITEM(list, (Py_ssize_t)j, s);
        }
        return list;
    }
    /* explicitly little-endian, as stored; a copy, so it is aligned and outlives the map */
    PyArray_Descr *d = PyArray_DescrFromType(npy_type_of(kv->elem_type));
    if (!d) return NULL;
    PyArray_Descr *le = PyArray_DescrNewByteorder(d, NPY_LITTLE);
    Py_DECREF(d);
    if (!le) return NULL;
    npy_intp dims[1] = {(npy_intp)kv->count};
    PyObject *arr = PyArray_NewFromDescr(&PyArray_Type, le, 1, dims, NULL, NULL, 0, NULL); /* steals le */
    if (!arr) return NULL;
    if (kv->count) memcpy(PyArray_DATA((PyArrayObject *)arr), kv->data, (size_t)PyArray_NBYTES((PyArrayObject *)arr));
    PyArray_CLEARFLAGS((PyArrayObject *)arr, NPY_ARRAY_WRITEABLE);
    return arr;
}

static PyObject *build_metadata(const orc_gguf *g) {
    PyObject *dict = PyDict_New();
    if (!dict) return NULL;
    for (uint64_t i = 0; i < orc_gguf_n_kv(g); i++) {
        const orc_gguf_kv *kv = orc_gguf_kv_at(g, i);
        PyObject *key = PyUnicode_DecodeUTF8(kv->key.ptr, (Py_ssize_t)kv->key.len, "strict");
        PyObject *val = key ? (kv->type == ORC_GGUF_ARRAY ? array_value(kv) : scalar_value(kv)) : NULL;
        int rc = val ? PyDict_SetItem(dict, key, val) : -1;
        Py_XDECREF(key);
        Py_XDECREF(val);
        if (rc < 0) {
            Py_DECREF(dict);
            return NULL;
        }
    }
    return dict;
}

/* A new dict with new lists; other values (immutable or read-only arrays) are shared. */
static PyObject *copy_metadata(PyObject *cached) {
    PyObject *out = PyDict_New();
    if (!out) return NULL;
    Py_ssize_t pos = 0;
    PyObject *k, *v;
    while (PyDict_Next(cached, &pos, &k, &v)) {
        PyObject *nv = PyList_CheckExact(v) ? PyList_GetSlice(v, 0, PyList_GET_SIZE(v)) : Py_NewRef(v);
        int rc = nv ? PyDict_SetItem(out, k, nv) : -1;
        Py_XDECREF(nv);
        if (rc < 0) {
            Py_DECREF(out);
            return NULL;
        }
    }
    return out;
}

/* ---- GGUFFile ------------------------------------------------------------------------- */

static orc_state *state_of(PyObject *self) { return orc_state_of_type(Py_TYPE(self)); }

/* Raise OrcError when closed; returns the handle or NULL. */
static orc_gguf *live(GGUFFileObject *self) {
    if (self->g) return self->g;
    orc_state *st = state_of((PyObject *)self);
    if (!st) return NULL;
    PyObject *msg = PyUnicode_FromFormat("GGUFFile %R is closed", self->path ? self->path : Py_None);
    if (!msg) return NULL;
    orc_py_raise(st, ORC_E_STATE, PyUnicode_AsUTF8(msg));
    Py_DECREF(msg);
    return NULL;
}

static void gguffile_release(GGUFFileObject *self) {
    self->g = NULL;
    Py_CLEAR(self->owner);
    Py_CLEAR(self->meta);
    Py_CLEAR(self->tensors);
}

static void gguffile_dealloc(GGUFFileObject *self) {
    PyTypeObject *tp = Py_TYPE(self);
    gguffile_release(self);
    Py_CLEAR(self->path);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static int gguffile_init(GGUFFileObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"path", NULL};
    PyObject *pathobj = NULL, *fsbytes = NULL;
    orc_state *st = state_of((PyObject *)self);
    if (!st) return -1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:GGUFFile", kwlist, &pathobj)) return -1;
    PyObject *fspath = PyOS_FSPath(pathobj);
    if (!fspath) return -1;
    if (!PyUnicode_FSConverter(fspath, &fsbytes)) {
        Py_DECREF(fspath);
        return -1;
    }
    gguffile_release(self); /* __init__ called again: drop the old file */
    Py_XSETREF(self->path, PyUnicode_Check(fspath) ? Py_NewRef(fspath) : PyUnicode_DecodeFSDefault(PyBytes_AS_STRING(fsbytes)));
    Py_DECREF(fspath);
    if (!self->path) {
        Py_DECREF(fsbytes);
        return -1;
    }

    orc_gguf *g = NULL;
    orc_err err;
    orc_err_clear(&err);
    orc_status rc;
    int saved_errno = 0;
    const char *cpath = PyBytes_AS_STRING(fsbytes);
    Py_BEGIN_ALLOW_THREADS
    rc = orc_gguf_open(cpath, &g, &err);
    saved_errno = errno;
    Py_END_ALLOW_THREADS
    Py_DECREF(fsbytes);
    if (rc != ORC_OK) {
        if (rc == ORC_E_IO && saved_errno) {
            /* OSError(errno, ...) picks FileNotFoundError, IsADirectoryError, PermissionError... */
            PyObject *exc = PyObject_CallFunction(PyExc_OSError, "iNO", saved_errno, orc_py_message(err.msg), self->path);
            if (exc) {
                PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
                Py_DECREF(exc);
            }
            return -1;
        }
        orc_py_raise_err(st, &err);
        return -1;
    }
    self->owner = PyCapsule_New(g, OWNER_NAME, owner_destructor);
    if (!self->owner) {
        orc_gguf_close(g);
        return -1;
    }
    self->g = g;
    return 0;
}

static PyObject *gguffile_close(GGUFFileObject *self, PyObject *unused) {
    gguffile_release(self);
    Py_RETURN_NONE;
}

static PyObject *gguffile_enter(GGUFFileObject *self, PyObject *unused) {
    if (!live(self)) return NULL;
    return Py_NewRef(self);
}

static PyObject *gguffile_exit(GGUFFileObject *self, PyObject *args) {
    gguffile_release(self);
    Py_RETURN_FALSE;
}

static PyObject *ensure_tensors(GGUFFileObject *self) {
    orc_gguf *g = live(self);
    if (!g) return NULL;
    if (self->tensors) return self->tensors;
    orc_state *st = state_of((PyObject *)self);
    if (!st) return NULL;
    uint64_t n = orc_gguf_n_tensors(g);
    PyObject *tup = PyTuple_New((Py_ssize_t)n);
    if (!tup) return NULL;
    for (uint64_t i = 0; i < n; i++) {
        PyObject *ti = make_tensorinfo(st, g, i);
        if (!ti) {
            Py_DECREF(tup);
            return NULL;
        }
        PyTuple_SET_ITEM(tup, (Py_ssize_t)i, ti);
    }
    self->tensors = tup;
    return tup;
}

static PyObject *gguffile_get_tensors(GGUFFileObject *self, void *closure) {
    PyObject *tup = ensure_tensors(self);
    return tup ? PySequence_List(tup) : NULL;
}

static PyObject *gguffile_get_metadata(GGUFFileObject *self, void *closure) {
    orc_gguf *g = live(self);
    if (!g) return NULL;
    if (!self->meta) {
        self->meta = build_metadata(g);
        if (!self->meta) return NULL;
    }
    return copy_metadata(self->meta);
}

/* Look a tensor up by str name or TensorInfo; raises KeyError naming it when absent. */
static const orc_gguf_tensor *find_tensor_arg(GGUFFileObject *self, orc_gguf *g, PyObject *arg) {
    orc_state *st = state_of((PyObject *)self);
    if (!st) return NULL;
    PyObject *name = arg;
    if (Py_IS_TYPE(arg, st->TensorInfoType)) name = ((TensorInfoObject *)arg)->name;
    if (!PyUnicode_Check(name)) {
        PyErr_Format(PyExc_TypeError, "tensor name must be a str or a TensorInfo, not %.100s", Py_TYPE(arg)->tp_name);
        return NULL;
    }
    Py_ssize_t len;
    const char *s = PyUnicode_AsUTF8AndSize(name, &len);
    if (!s) return NULL;
    const orc_gguf_tensor *t = (size_t)len == strlen(s) ? orc_gguf_find_tensor(g, s) : NULL;
    if (!t) {
        PyObject *msg = PyUnicode_FromFormat("no tensor named %R in %R", name, self->path);
        if (msg) {
            PyErr_SetObject(PyExc_KeyError, msg);
            Py_DECREF(msg);
        }
        return NULL;
    }
    return t;
}

static PyObject *gguffile_tensor(GGUFFileObject *self, PyObject *arg) {
    orc_gguf *g = live(self);
    if (!g) return NULL;
    const orc_gguf_tensor *t = find_tensor_arg(self, g, arg);
    if (!t) return NULL;
    PyObject *tup = ensure_tensors(self);
    if (!tup) return NULL;
    return Py_NewRef(PyTuple_GET_ITEM(tup, (Py_ssize_t)orc_gguf_tensor_index(g, t)));
}

static PyObject *gguffile_raw(GGUFFileObject *self, PyObject *arg) {
    orc_gguf *g = live(self);
    if (!g) return NULL;
    const orc_gguf_tensor *t = find_tensor_arg(self, g, arg);
    if (!t) return NULL;
    npy_intp dims[1] = {(npy_intp)t->nbytes};
    /* read-only: the map is PROT_READ, a write would fault */
    PyObject *arr = PyArray_New(&PyArray_Type, 1, dims, NPY_UINT8, NULL, (void *)t->data, 0, NPY_ARRAY_C_CONTIGUOUS,
                                NULL);
    if (!arr) return NULL;
    if (PyArray_SetBaseObject((PyArrayObject *)arr, Py_NewRef(self->owner)) < 0) {
        Py_DECREF(arr);
        return NULL;
    }
    return arr;
}

static PyObject *gguffile_value_type(GGUFFileObject *self, PyObject *arg) {
    orc_gguf *g = live(self);
    if (!g) return NULL;
    if (!PyUnicode_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "key must be a str, not %.100s", Py_TYPE(arg)->tp_name);
        return NULL;
    }
    Py_ssize_t len;
    const char *s = PyUnicode_AsUTF8AndSize(arg, &len);
    if (!s) return NULL;
    const orc_gguf_kv *kv = (size_t)len == strlen(s) ? orc_gguf_find_kv(g, s) : NULL;
    if (!kv) {
        PyObject *msg = PyUnicode_FromFormat("no key %R in %R", arg, self->path);
        if (msg) {
            PyErr_SetObject(PyExc_KeyError, msg);
            Py_DECREF(msg);
        }
        return NULL;
    }
    if (kv->type == ORC_GGUF_ARRAY) return PyUnicode_FromFormat("ARRAY[%s]", orc_gguf_vtype_name(kv->elem_type));
    return PyUnicode_FromString(orc_gguf_vtype_name(kv->type));
}

/* nonfinite(tensors=None, *, mode="full", n_threads=0): the tensors with NaN/Inf values. The
 * scan runs without the GIL on a pool of threads, holding a reference to the map's owner so a
 * close() from another thread cannot unmap it; Ctrl-C is looked for between tensors. */
static PyObject *gguffile_nonfinite(GGUFFileObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"tensors", "mode", "n_threads", NULL};
    PyObject *which = Py_None, *ret = NULL, *owner = NULL;
    const char *mode_s = "full";
    int n_threads = 0;
    const orc_gguf_tensor **list = NULL;
    orc_scan_result *res = NULL;
    orc_pool *pool = NULL;
    orc_gguf *g = live(self);
    if (!g) return NULL;
    orc_state *st = state_of((PyObject *)self);
    if (!st) return NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O$si:nonfinite", kwlist, &which, &mode_s, &n_threads)) return NULL;
    orc_scan_mode mode;
    if (strcmp(mode_s, "full") == 0) mode = ORC_SCAN_FULL;
    else if (strcmp(mode_s, "scales") == 0) mode = ORC_SCAN_SCALES;
    else return PyErr_Format(PyExc_ValueError, "mode must be 'full' or 'scales', not '%s'", mode_s);

    Py_ssize_t n = 0;
    if (which == Py_None) {
        n = (Py_ssize_t)orc_gguf_n_tensors(g);
        list = PyMem_Malloc((size_t)(n ? n : 1) * sizeof *list);
        if (!list) return PyErr_NoMemory();
        for (Py_ssize_t i = 0; i < n; i++) list[i] = orc_gguf_tensor_at(g, (uint64_t)i);
    } else {
        if (PyUnicode_Check(which)) { /* one name: a str is iterable, but surely not meant so */
            PyErr_SetString(PyExc_TypeError, "tensors must be a list of names or TensorInfo, not a str");
            return NULL;
        }
        PyObject *seq = PySequence_Fast(which, "tensors must be a sequence of names or TensorInfo");
        if (!seq) return NULL;
        n = PySequence_Fast_GET_SIZE(seq);
        list = PyMem_Malloc((size_t)(n ? n : 1) * sizeof *list);
        if (!list) {
            Py_DECREF(seq);
            return PyErr_NoMemory();
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            list[i] = find_tensor_arg(self, g, PySequence_Fast_GET_ITEM(seq, i));
            if (!list[i]) {
                Py_DECREF(seq);
                goto done;
            }
        }
        Py_DECREF(seq);
    }
    res = PyMem_Calloc((size_t)(n ? n : 1), sizeof *res);
    if (!res) {
        PyErr_NoMemory();
        goto done;
    }
    orc_err err;
    orc_err_clear(&err);
    orc_status rc = orc_pool_create(n_threads, &pool, &err);
    if (rc) {
        orc_py_raise_err(st, &err);
        goto done;
    }
    owner = Py_NewRef(self->owner);
    int interrupted = 0;
    PyThreadState *ts = PyEval_SaveThread();
    for (Py_ssize_t i = 0; i < n && rc == ORC_OK; i++) {
        const orc_gguf_tensor *t = list[i];
        rc = orc_scan_nonfinite(t->type, t->data, t->nbytes, t->n_elements, mode, pool, &res[i], &err);
        if (rc) {
            orc_err_prefix(&err, "tensor '%s': ", t->name_z);
            break;
        }
        PyEval_RestoreThread(ts);
        interrupted = PyErr_CheckSignals() < 0;
        ts = PyEval_SaveThread();
        if (interrupted) break;
    }
    PyEval_RestoreThread(ts);
    if (interrupted) goto done;
    if (rc) {
        orc_py_raise_err(st, &err);
        goto done;
    }
    ret = PyList_New(0);
    for (Py_ssize_t i = 0; ret && i < n; i++) {
        if (!res[i].count) continue;
        PyObject *name = PyUnicode_DecodeUTF8(list[i]->name.ptr, (Py_ssize_t)list[i]->name.len, "replace");
        PyObject *item = name ? Py_BuildValue("(NKLL)", name, (unsigned long long)res[i].count,
                                              (long long)res[i].first_index, (long long)res[i].first_block)
                              : NULL;
        if (!item || PyList_Append(ret, item) < 0) Py_CLEAR(ret);
        Py_XDECREF(item);
    }
done:
    orc_pool_destroy(pool);
    Py_XDECREF(owner);
    PyMem_Free(res);
    PyMem_Free(list);
    return ret;
}

static PyObject *gguffile_repr(GGUFFileObject *self) {
    if (!self->g) return PyUnicode_FromFormat("<orc.GGUFFile %R (closed)>", self->path ? self->path : Py_None);
    return PyUnicode_FromFormat("<orc.GGUFFile %R: GGUF v%u, %llu keys, %llu tensors, %llu bytes>", self->path,
                                (unsigned)orc_gguf_version(self->g), (unsigned long long)orc_gguf_n_kv(self->g),
                                (unsigned long long)orc_gguf_n_tensors(self->g),
                                (unsigned long long)orc_gguf_file_size(self->g));
}

#define GGUF_U64_GETTER(fname, expr)                                     \
    static PyObject *fname(GGUFFileObject *self, void *closure) {        \
        orc_gguf *g = live(self);                                        \
        if (!g) return NULL;                                             \
        return PyLong_FromUnsignedLongLong((unsigned long long)(expr));  \
    }
GGUF_U64_GETTER(gguffile_get_version, orc_gguf_version(g))
GGUF_U64_GETTER(gguffile_get_alignment, orc_gguf_alignment(g))
GGUF_U64_GETTER(gguffile_get_data_offset, orc_gguf_data_offset(g))
GGUF_U64_GETTER(gguffile_get_file_size, orc_gguf_file_size(g))

static PyObject *gguffile_get_path(GGUFFileObject *self, void *closure) {
    return Py_NewRef(self->path ? self->path : Py_None);
}

static PyObject *gguffile_get_closed(GGUFFileObject *self, void *closure) { return PyBool_FromLong(self->g == NULL); }

static PyGetSetDef gguffile_getset[] = {
    {"path", (getter)gguffile_get_path, NULL, "the path given to GGUFFile()", NULL},
    {"closed", (getter)gguffile_get_closed, NULL, "True after close()", NULL},
    {"version", (getter)gguffile_get_version, NULL, "GGUF version (2 or 3)", NULL},
    {"alignment", (getter)gguffile_get_alignment, NULL, "data alignment (general.alignment, default 32)", NULL},
    {"data_offset", (getter)gguffile_get_data_offset, NULL, "file offset of the data section", NULL},
    {"file_size", (getter)gguffile_get_file_size, NULL, "file size in bytes", NULL},
    {"metadata", (getter)gguffile_get_metadata, NULL,
     "every key/value as a new dict: numbers, str and bool as Python objects; string arrays as lists of str; "
     "numeric and bool arrays as read-only NumPy arrays (strings that are not valid UTF-8 come back as bytes)",
     NULL},
    {"tensors", (getter)gguffile_get_tensors, NULL, "a list of TensorInfo, in file order", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef gguffile_methods[] = {
    {"close", (PyCFunction)gguffile_close, METH_NOARGS,
     "Release the file. Arrays returned by raw() stay valid; the map is released with the last of them."},
    {"__enter__", (PyCFunction)gguffile_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)gguffile_exit, METH_VARARGS, NULL},
    {"tensor", (PyCFunction)gguffile_tensor, METH_O, "tensor(name) -> TensorInfo; KeyError when absent."},
    {"raw", (PyCFunction)gguffile_raw, METH_O,
     "raw(name or TensorInfo) -> the stored bytes as a read-only 1-D uint8 array that shares memory with the "
     "file's map (zero copy) and keeps it alive."},
    {"nonfinite", (PyCFunction)(void (*)(void))gguffile_nonfinite, METH_VARARGS | METH_KEYWORDS,
     "nonfinite(tensors=None, *, mode='full', n_threads=0) -> list of (name, count, first_index, "
     "first_block)\n\n"
     "The tensors (all, or the given names / TensorInfo) holding NaN or Inf values, in file order: how "
     "many values, the flat element index (storage order) of the first and the block it is in (the "
     "element index for F32/F16/BF16). A value counts when its dequantized float32 is NaN/Inf: F32/F16/BF16 values, and for "
     "quantized types every value of a block whose scale is NaN/Inf. mode='scales' gives the same "
     "answer faster for types whose only float fields are float16 scales (it dequantizes only blocks "
     "with a non-finite scale). Runs on n_threads threads (0: all cores) without the GIL; Ctrl-C "
     "interrupts between tensors. A type orc cannot dequantize raises orc.GGUFError naming the tensor."},
    {"value_type", (PyCFunction)gguffile_value_type, METH_O,
     "value_type(key) -> the GGUF type of a key's value: 'UINT32', 'STRING', 'ARRAY[FLOAT32]', ..."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot gguffile_slots[] = {
    {Py_tp_dealloc, gguffile_dealloc},
    {Py_tp_init, gguffile_init},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_repr, gguffile_repr},
    {Py_tp_methods, gguffile_methods},
    {Py_tp_getset, gguffile_getset},
    {Py_tp_doc,
     "GGUFFile(path): a GGUF v2/v3 file, mapped read-only and fully validated on open.\n\n"
     "Malformed files raise orc.GGUFError naming the byte offset, key or tensor; a missing path "
     "FileNotFoundError, a directory IsADirectoryError. Use as a context manager or call close()."},
    {0, NULL},
};

static PyType_Spec gguffile_spec = {
    .name = "orc.GGUFFile",
    .basicsize = sizeof(GGUFFileObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = gguffile_slots,
};

int orc_py_gguf_exec(PyObject *m) {
    orc_state *st = orc_state_of_module(m);
    st->TensorInfoType = orc_py_add_type(m, &tensorinfo_spec, NULL);
    if (!st->TensorInfoType) return -1;
    st->GGUFFileType = orc_py_add_type(m, &gguffile_spec, NULL);
    if (!st->GGUFFileType) return -1;
    return 0;
}

/* A GGUFFile over a handle another owner opened (a Model: the file is parsed once). */
PyObject *orc_py_gguffile_from_handle(orc_state *st, orc_gguf *g, PyObject *path) {
    GGUFFileObject *self = (GGUFFileObject *)st->GGUFFileType->tp_alloc(st->GGUFFileType, 0);
    if (!self) return NULL;
    orc_gguf_retain(g);
    self->owner = PyCapsule_New(g, OWNER_NAME, owner_destructor);
    if (!self->owner) {
        orc_gguf_close(g);
        Py_DECREF(self);
        return NULL;
    }
    self->g = g;
    self->path = Py_NewRef(path);
    return (PyObject *)self;
}
