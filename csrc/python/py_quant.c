/* py_quant.c - the Python side of dequantization: orc.dequantize(data, type, shape,
 * device="cpu", dtype="float32"), the tuple orc.QUANT_TYPES, and the GPU timing
 * hook behind bench/bench_dequant.py. Argument checking happens here and in
 * orc_quant_validate; the work runs without the GIL. */
#include "python/py_common.h"

#include <string.h>  /* strcmp */

#include "gguf/ggml_types.h"
#include "quant/gpu_dequant.h"
#include "quant/quant.h"

#define ORC_PY_QUANT_MAX_DIMS 32

/* A ggml type from a name ("Q4_K", any case) or an id (int, or gguf's
 * GGMLQuantizationType, an IntEnum). -1 with an exception set on failure. */
int32_t orc_py_quant_type(PyObject *obj) {
    char buf[64];
    if (PyUnicode_Check(obj)) {
        const char *s = PyUnicode_AsUTF8(obj);
        if (!s) return -1;
        size_t len = strlen(s);
        if (len > 0 && len < sizeof buf) {
            for (size_t i = 0; i <= len; i++) buf[i] = (char)((s[i] >= 'a' && s[i] <= 'z') ? s[i] - 32 : s[i]);
            int32_t id = orc_type_from_name(buf);
            if (id >= 0) return id;
        }
        PyErr_Format(PyExc_ValueError, "unknown ggml type name %R (see orc.QUANT_TYPES for the types orc can dequantize)",
                     obj);
        return -1;
    }
    if (PyLong_Check(obj)) {
        long v = PyLong_AsLong(obj);
        if (v == -1 && PyErr_Occurred()) return -1;
        if (v < 0 || v >= ORC_TYPE_COUNT || !orc_type_traits_get((int32_t)v)) {
            if (v >= 0 && v < ORC_TYPE_COUNT)
                PyErr_Format(PyExc_ValueError, "not a ggml type orc knows: %s", orc_type_name((int32_t)v, buf, sizeof buf));
            else
                PyErr_Format(PyExc_ValueError, "unknown ggml type id %ld", v);
            return -1;
        }
        return (int32_t)v;
    }
    PyErr_Format(PyExc_TypeError, "type must be a ggml type name (str) or id (int), not %.100s", Py_TYPE(obj)->tp_name);
    return -1;
}

/* "float32" / "float16" / "bfloat16", or a NumPy dtype (float32, float16). */
static int orc_py_quant_dtype(PyObject *obj, orc_dtype *out) {
    if (PyUnicode_Check(obj)) {
        const char *s = PyUnicode_AsUTF8(obj);
        if (!s) return -1;
        if (!strcmp(s, "float32")) *out = ORC_DTYPE_F32;
        else if (!strcmp(s, "float16")) *out = ORC_DTYPE_F16;
        else if (!strcmp(s, "bfloat16")) *out = ORC_DTYPE_BF16;
        else goto bad;
        return 0;
    }
    {
        PyArray_Descr *descr = NULL;
        if (PyArray_DescrConverter2(obj, &descr) && descr) {
            int t = descr->type_num;
            Py_DECREF(descr);
            if (t == NPY_FLOAT32) *out = ORC_DTYPE_F32;
            else if (t == NPY_FLOAT16) *out = ORC_DTYPE_F16;
            else goto bad;
            return 0;
        }
        Py_XDECREF(descr);
        PyErr_Clear();
    }
bad:
    PyErr_Format(PyExc_ValueError, "dtype must be \"float32\", \"float16\" or \"bfloat16\", not %R", obj);
    return -1;
}

/* shape: an int or a sequence of non-negative ints, NumPy order (last = row). */
static int orc_py_quant_shape(PyObject *obj, npy_intp *dims, int *ndim, int64_t *n) {
    PyObject *seq = NULL;
    if (PyLong_Check(obj)) {
        seq = PyTuple_Pack(1, obj);
    } else {
        seq = PySequence_Fast(obj, "shape must be an int or a sequence of ints");
    }
    if (!seq) return -1;
    Py_ssize_t nd = PySequence_Fast_GET_SIZE(seq);
    if (nd < 1 || nd > ORC_PY_QUANT_MAX_DIMS) {
        PyErr_Format(PyExc_ValueError, "shape must have 1 to %d dimensions, got %zd", ORC_PY_QUANT_MAX_DIMS, nd);
        Py_DECREF(seq);
        return -1;
    }
    uint64_t total = 1;
    for (Py_ssize_t i = 0; i < nd; i++) {
        Py_ssize_t v = PyNumber_AsSsize_t(PySequence_Fast_GET_ITEM(seq, i), PyExc_OverflowError);
        if (v == -1 && PyErr_Occurred()) {
            Py_DECREF(seq);
            return -1;
        }
        if (v < 0) {
            PyErr_Format(PyExc_ValueError, "shape %R has a negative dimension", obj);
            Py_DECREF(seq);
            return -1;
        }
        if (orc_mul_overflow_u64(total, (uint64_t)v, &total) || total > (uint64_t)INT64_MAX / 4) {
            PyErr_Format(PyExc_ValueError, "shape %R has too many elements", obj);
            Py_DECREF(seq);
            return -1;
        }
        dims[i] = (npy_intp)v;
    }
    Py_DECREF(seq);
    *ndim = (int)nd;
    *n = (int64_t)total;
    return 0;
}

/* Block size of a supported type (for the shape check). */
static int orc_py_quant_block_size(int32_t type) {
    const orc_type_traits *t = orc_type_traits_get(type);
    return t ? (int)t->block_size : 1;
}

static PyObject *py_dequantize(PyObject *m, PyObject *args, PyObject *kwargs) {
    static char *kwlist[] = {"data", "type", "shape", "device", "dtype", "out", NULL};
    PyObject *data_o, *type_o, *shape_o, *device_o = NULL, *dtype_o = NULL, *out_o = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOO|OO$O:dequantize", kwlist, &data_o, &type_o, &shape_o,
                                     &device_o, &dtype_o, &out_o))
        return NULL;
    orc_state *state = orc_state_of_module(m);

    int32_t type = orc_py_quant_type(type_o);
    if (type < 0) return NULL;
    char tbuf[64];
    const char *tname = orc_type_name(type, tbuf, sizeof tbuf);

    orc_dtype dtype = ORC_DTYPE_F32;
    if (dtype_o && dtype_o != Py_None && orc_py_quant_dtype(dtype_o, &dtype) < 0) return NULL;

    int on_gpu = 0;
    if (device_o && device_o != Py_None) {
        const char *dev = PyUnicode_Check(device_o) ? PyUnicode_AsUTF8(device_o) : NULL;
        if (dev && !strcmp(dev, "cuda")) on_gpu = 1;
        else if (!dev || strcmp(dev, "cpu") != 0) {
            if (!PyErr_Occurred()) PyErr_Format(PyExc_ValueError, "device must be \"cpu\" or \"cuda\", not %R", device_o);
            return NULL;
        }
    }

    if (!PyArray_Check(data_o)) {
        PyErr_Format(PyExc_TypeError, "data must be a numpy.ndarray of uint8 (e.g. GGUFFile.raw), not %.100s",
                     Py_TYPE(data_o)->tp_name);
        return NULL;
    }
    PyArrayObject *data = (PyArrayObject *)data_o;
    if (PyArray_TYPE(data) != NPY_UINT8) {
        PyErr_Format(PyExc_TypeError, "data must have dtype uint8, not %R", (PyObject *)PyArray_DESCR(data));
        return NULL;
    }
    if (!PyArray_IS_C_CONTIGUOUS(data)) {
        PyErr_SetString(PyExc_ValueError, "data must be C-contiguous (use numpy.ascontiguousarray)");
        return NULL;
    }

    npy_intp dims[ORC_PY_QUANT_MAX_DIMS];
    int ndim = 0;
    int64_t n = 0;
    if (orc_py_quant_shape(shape_o, dims, &ndim, &n) < 0) return NULL;

    orc_err err = {0};
    if (!orc_quant_supported(type)) {
        (void)orc_quant_validate(type, 0, 0, dtype, &err);
        return orc_py_raise_err(state, &err);
    }
    int bs = orc_py_quant_block_size(type);
    if (dims[ndim - 1] % bs != 0) {
        PyErr_Format(PyExc_ValueError, "shape %R: the last dimension (%zd) is not a multiple of %s's block size %d",
                     shape_o, (Py_ssize_t)dims[ndim - 1], tname, bs);
        return NULL;
    }
    uint64_t src_bytes = (uint64_t)PyArray_NBYTES(data);
    if (orc_quant_validate(type, src_bytes, n, dtype, &err) != ORC_OK) {
        PyObject *shape_repr = PyObject_Repr(shape_o);
        (void)orc_err_prefix(&err, "shape %s: ", shape_repr ? PyUnicode_AsUTF8(shape_repr) : "?");
        Py_XDECREF(shape_repr);
        PyErr_Clear();
        return orc_py_raise_err(state, &err);
    }

    int out_type = dtype == ORC_DTYPE_F32 ? NPY_FLOAT32 : dtype == ORC_DTYPE_F16 ? NPY_FLOAT16 : NPY_UINT16;
    PyArrayObject *out;
    if (out_o && out_o != Py_None) {
        out = (PyArrayObject *)out_o;
        if (!PyArray_Check(out_o) || PyArray_TYPE(out) != out_type || !PyArray_IS_C_CONTIGUOUS(out) ||
            !PyArray_ISWRITEABLE(out) || PyArray_NDIM(out) != ndim ||
            !PyArray_CompareLists(PyArray_DIMS(out), dims, ndim)) {
            PyErr_Format(PyExc_ValueError,
                         "out must be a writeable C-contiguous %s array of shape %R (%s results)",
                         out_type == NPY_FLOAT32 ? "float32" : out_type == NPY_FLOAT16 ? "float16" : "uint16",
                         shape_o, orc_dtype_name(dtype));
            return NULL;
        }
        const char *o0 = PyArray_BYTES(out), *d0 = PyArray_BYTES(data);
        if (o0 < d0 + PyArray_NBYTES(data) && d0 < o0 + PyArray_NBYTES(out)) {
            PyErr_SetString(PyExc_ValueError, "out overlaps data");
            return NULL;
        }
        Py_INCREF(out);
    } else {
        out = (PyArrayObject *)PyArray_SimpleNew(ndim, dims, out_type);
        if (!out) return NULL;
    }
    if (n == 0) return (PyObject *)out;

    const void *src = PyArray_DATA(data);
    void *dst = PyArray_DATA(out);
    orc_status st;
    Py_BEGIN_ALLOW_THREADS
    if (on_gpu)
        st = orc_cuda_dequantize_host(type, src, src_bytes, n, dtype, dst, &err);
    else
        st = orc_dequantize_mt(type, src, src_bytes, n, dtype, dst, 0, &err);
    Py_END_ALLOW_THREADS
    if (st != ORC_OK) {
        Py_DECREF(out);
        return orc_py_raise_err(state, &err);
    }
    return (PyObject *)out;
}

/* The (data, type, dtype) arguments of the GPU test/bench entry points: a C-contiguous
 * uint8 array, a ggml type, an output dtype. -1 with an exception set on error. */
static int parse_gpu_blocks_args(PyObject *data_o, PyObject *type_o, PyObject *dtype_o, int32_t *type,
                                 orc_dtype *dtype) {
    *type = orc_py_quant_type(type_o);
    if (*type < 0) return -1;
    if (orc_py_quant_dtype(dtype_o, dtype) < 0) return -1;
    if (!PyArray_Check(data_o) || PyArray_TYPE((PyArrayObject *)data_o) != NPY_UINT8 ||
        !PyArray_IS_C_CONTIGUOUS((PyArrayObject *)data_o)) {
        PyErr_SetString(PyExc_TypeError, "data must be a C-contiguous numpy.ndarray of uint8");
        return -1;
    }
    return 0;
}

/* _cuda_dequant_bench(data, type, n, dtype, iters) -> dict of timings (bench/bench_dequant.py) */
static PyObject *py_cuda_dequant_bench(PyObject *m, PyObject *args) {
    PyObject *data_o, *type_o, *dtype_o;
    long long n;
    int iters;
    if (!PyArg_ParseTuple(args, "OOLOi:_cuda_dequant_bench", &data_o, &type_o, &n, &dtype_o, &iters)) return NULL;
    int32_t type;
    orc_dtype dtype;
    if (parse_gpu_blocks_args(data_o, type_o, dtype_o, &type, &dtype) < 0) return NULL;
    if (iters < 1 || iters > 1000) {
        PyErr_SetString(PyExc_ValueError, "iters must be 1..1000");
        return NULL;
    }
    PyArrayObject *data = (PyArrayObject *)data_o;
    orc_err err = {0};
    orc_cuda_dequant_timing t;
    orc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = orc_cuda_dequantize_bench(type, PyArray_DATA(data), (uint64_t)PyArray_NBYTES(data), (int64_t)n, dtype, iters,
                                   &t, &err);
    Py_END_ALLOW_THREADS
    if (st != ORC_OK) return orc_py_raise_err(orc_state_of_module(m), &err);
    return Py_BuildValue("{s:d,s:d,s:d,s:d,s:K,s:K,s:K}", "kernel_ms_mean", t.kernel_ms_mean, "kernel_ms_min",
                         t.kernel_ms_min, "copy_ms_mean", t.copy_ms_mean, "copy_ms_min", t.copy_ms_min, "src_bytes",
                         (unsigned long long)t.src_bytes, "dst_bytes", (unsigned long long)t.dst_bytes, "copy_bytes",
                         (unsigned long long)t.copy_bytes);
}

/* _cuda_dequantize_at(data, type, n, dtype, src_offset, dst_offset) -> 1-D array: the GPU
 * path with device buffers offset from their aligned bases (tests of the unaligned paths). */
static PyObject *py_cuda_dequantize_at(PyObject *m, PyObject *args) {
    PyObject *data_o, *type_o, *dtype_o;
    long long n;
    unsigned int soff, doff;
    if (!PyArg_ParseTuple(args, "OOLOII:_cuda_dequantize_at", &data_o, &type_o, &n, &dtype_o, &soff, &doff))
        return NULL;
    int32_t type;
    orc_dtype dtype;
    if (parse_gpu_blocks_args(data_o, type_o, dtype_o, &type, &dtype) < 0) return NULL;
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "n must be >= 0");
        return NULL;
    }
    PyArrayObject *data = (PyArrayObject *)data_o;
    orc_err err = {0};
    uint64_t src_bytes = (uint64_t)PyArray_NBYTES(data);
    if (orc_quant_validate(type, src_bytes, (int64_t)n, dtype, &err) != ORC_OK)
        return orc_py_raise_err(orc_state_of_module(m), &err);
    npy_intp dim = (npy_intp)n;
    int out_type = dtype == ORC_DTYPE_F32 ? NPY_FLOAT32 : dtype == ORC_DTYPE_F16 ? NPY_FLOAT16 : NPY_UINT16;
    PyArrayObject *out = (PyArrayObject *)PyArray_SimpleNew(1, &dim, out_type);
    if (!out) return NULL;
    orc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = orc_cuda_dequantize_host_at(type, PyArray_DATA(data), src_bytes, (int64_t)n, dtype, PyArray_DATA(out), soff,
                                     doff, &err);
    Py_END_ALLOW_THREADS
    if (st != ORC_OK) {
        Py_DECREF(out);
        return orc_py_raise_err(orc_state_of_module(m), &err);
    }
    return (PyObject *)out;
}

static PyMethodDef orc_py_quant_methods[] = {
    {"dequantize", (PyCFunction)(void (*)(void))py_dequantize, METH_VARARGS | METH_KEYWORDS,
     "dequantize(data, type, shape, device=\"cpu\", dtype=\"float32\", *, out=None) -> numpy.ndarray\n\n"
     "Decode the ggml blocks in `data` (a C-contiguous uint8 array, e.g. GGUFFile.raw) of\n"
     "type `type` (a name such as \"Q4_K\", or a ggml type id) into an array of `shape`\n"
     "(NumPy order; the last dimension a multiple of the block size). `device` \"cuda\" runs\n"
     "the GPU kernels and copies back. `dtype`: \"float32\", \"float16\" or \"bfloat16\" (returned\n"
     "as uint16 holding the bfloat16 bits: NumPy has no bfloat16). float32 results are\n"
     "bit-identical to gguf.quants.dequantize; float16/bfloat16 are those rounded to\n"
     "nearest even. `out`: an array of the result's dtype and shape to write into (returned).\n"
     "See orc.QUANT_TYPES."},
    {"_cuda_dequant_bench", py_cuda_dequant_bench, METH_VARARGS,
     "_cuda_dequant_bench(data, type, n, dtype, iters) -> dict: GPU dequantization and\n"
     "device-to-device copy timings (for bench/bench_dequant.py)."},
    {"_cuda_dequantize_at", py_cuda_dequantize_at, METH_VARARGS,
     "_cuda_dequantize_at(data, type, n, dtype, src_offset, dst_offset) -> 1-D array: the GPU path\n"
     "with device buffers offset from their aligned bases (for tests of the unaligned paths)."},
    {NULL, NULL, 0, NULL},
};

int orc_py_quant_exec(PyObject *m) {
    if (PyModule_AddFunctions(m, orc_py_quant_methods) < 0) return -1;
    PyObject *names = PyList_New(0);
    if (!names) return -1;
    for (int32_t t = 0; t < ORC_TYPE_COUNT; t++) {
        const orc_type_traits *tr = orc_type_traits_get(t);
        if (!tr || !orc_quant_supported(t)) continue;
        PyObject *s = PyUnicode_FromString(tr->name);
        if (!s || PyList_Append(names, s) < 0) {
            Py_XDECREF(s);
            Py_DECREF(names);
            return -1;
        }
        Py_DECREF(s);
    }
    PyObject *tup = PyList_AsTuple(names);
    Py_DECREF(names);
    if (!tup) return -1;
    if (PyModule_AddObject(m, "QUANT_TYPES", tup) < 0) {
        Py_DECREF(tup);
        return -1;
    }
    return 0;
}
