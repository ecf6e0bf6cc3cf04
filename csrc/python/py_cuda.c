/* py_cuda.c - Python functions about the GPU: is CUDA usable, which devices,
 * which versions, and the end-to-end self-test behind the `gpu` smoke test. */
#include "python/py_common.h"

#include "backend/gpu.h"

static PyObject *py_cuda_probe(PyObject *m, PyObject *unused) {
    orc_err err = {0};
    int count = 0;
    orc_status s = orc_cuda_probe(&count, &err);
    if (s == ORC_OK) return Py_BuildValue("(Ois)", Py_True, count, "");
    return Py_BuildValue("(Ois)", Py_False, 0, err.msg);
}

static PyObject *py_cuda_versions(PyObject *m, PyObject *unused) {
    orc_cuda_versions v;
    orc_cuda_versions_get(&v);
    return Py_BuildValue("{s:i,s:i,s:i,s:i}", "runtime_compiled", v.runtime_compiled, "runtime", v.runtime,
                         "driver", v.driver, "cublas", v.cublas);
}

static PyObject *py_cuda_device_info(PyObject *m, PyObject *arg) {
    long index = PyLong_AsLong(arg);
    if (index == -1 && PyErr_Occurred()) return NULL;
    orc_err err = {0};
    int count = 0;
    if (orc_cuda_probe(&count, &err) != ORC_OK) return orc_py_raise_err(orc_state_of_module(m), &err);
    if (index < 0 || index >= count) {
        return PyErr_Format(PyExc_ValueError, "no CUDA device %ld: %d device(s) visible", index, count);
    }
    orc_cuda_device_info info;
    orc_status s;
    Py_BEGIN_ALLOW_THREADS
    s = orc_cuda_device_info_get((int)index, &info, &err);
    Py_END_ALLOW_THREADS
    if (s != ORC_OK) return orc_py_raise_err(orc_state_of_module(m), &err);
    return Py_BuildValue("{s:l,s:s,s:s,s:K,s:K,s:(ii),s:i}", "index", index, "name", info.name, "pci_bus_id",
                         info.pci_bus_id, "total_memory", (unsigned long long)info.total_memory, "free_memory",
                         (unsigned long long)info.free_memory, "compute_capability", info.cc_major,
                         info.cc_minor, "multiprocessors", info.multiprocessors);
}

/* _cuda_selftest(a: float32[m,k], b: float32[k,n], alpha) -> (a@b via cuBLAS, alpha*a+i via our kernel) */
static PyObject *py_cuda_selftest(PyObject *m, PyObject *args) {
    PyObject *ao, *bo;
    float alpha;
    if (!PyArg_ParseTuple(args, "OOf", &ao, &bo, &alpha)) return NULL;
    PyArrayObject *a = NULL, *b = NULL, *c = NULL, *y = NULL;
    PyObject *ret = NULL;
    a = (PyArrayObject *)PyArray_FROMANY(ao, NPY_FLOAT32, 2, 2, NPY_ARRAY_IN_ARRAY);
    b = (PyArrayObject *)PyArray_FROMANY(bo, NPY_FLOAT32, 2, 2, NPY_ARRAY_IN_ARRAY);
    if (!a || !b) goto done;
    npy_intp mm = PyArray_DIM(a, 0), kk = PyArray_DIM(a, 1), nn = PyArray_DIM(b, 1);
    if (PyArray_DIM(b, 0) != kk || mm == 0 || kk == 0 || nn == 0 || mm > 4096 || kk > 4096 || nn > 4096) {
        PyErr_SetString(PyExc_ValueError, "_cuda_selftest: need a [m,k] and b [k,n], 1..4096 each");
        goto done;
    }
    npy_intp cd[2] = {mm, nn};
    c = (PyArrayObject *)PyArray_SimpleNew(2, cd, NPY_FLOAT32);
    y = (PyArrayObject *)PyArray_SimpleNew(2, PyArray_DIMS(a), NPY_FLOAT32);
    if (!c || !y) goto done;
    orc_err err = {0};
    orc_status s;
    Py_BEGIN_ALLOW_THREADS
    s = orc_cuda_selftest(PyArray_DATA(a), PyArray_DATA(b), (int)mm, (int)kk, (int)nn, alpha, PyArray_DATA(c),
                          PyArray_DATA(y), &err);
    Py_END_ALLOW_THREADS
    if (s != ORC_OK) {
        orc_py_raise_err(orc_state_of_module(m), &err);
        goto done;
    }
    ret = PyTuple_Pack(2, (PyObject *)c, (PyObject *)y);
done:
    Py_XDECREF(a);
    Py_XDECREF(b);
    Py_XDECREF(c);
    Py_XDECREF(y);
    return ret;
}

static PyObject *py_cuda_mem_info(PyObject *m, PyObject *arg) {
    long dev = PyLong_AsLong(arg);
    if (dev == -1 && PyErr_Occurred()) return NULL;
    uint64_t f = 0, t = 0;
    orc_err err = {0};
    if (orc_cuda_mem_info((int)dev, &f, &t, &err) != ORC_OK) return orc_py_raise_err(orc_state_of_module(m), &err);
    return Py_BuildValue("(KK)", (unsigned long long)f, (unsigned long long)t);
}

static PyObject *py_cuda_fail_on_purpose(PyObject *m, PyObject *unused) {
    orc_err err = {0};
    orc_status s = orc_cuda_fail_on_purpose(&err);
    if (s != ORC_OK) return orc_py_raise_err(orc_state_of_module(m), &err);
    Py_RETURN_NONE;
}

static PyMethodDef cuda_methods[] = {
    {"cuda_mem_info", py_cuda_mem_info, METH_O, "(free_bytes, total_bytes) on CUDA device N (cudaMemGetInfo)."},
    {"_cuda_fail_on_purpose", py_cuda_fail_on_purpose, METH_NOARGS,
     "Make one CUDA call fail on purpose (tests: how CUDA errors surface)."},
    {"cuda_probe", py_cuda_probe, METH_NOARGS, "(usable, device_count, reason) for CUDA in this process."},
    {"cuda_versions", py_cuda_versions, METH_NOARGS, "CUDA runtime (compiled/loaded), driver and cuBLAS versions."},
    {"cuda_device_info", py_cuda_device_info, METH_O, "Facts about CUDA device N as a dict."},
    {"_cuda_selftest", py_cuda_selftest, METH_VARARGS, "GPU smoke test: (a@b via cuBLAS, alpha*a+i via a kernel)."},
    {NULL, NULL, 0, NULL},
};

int orc_py_cuda_exec(PyObject *m) {
    if (PyModule_AddFunctions(m, cuda_methods) < 0) return -1;
#ifdef ORC_HAVE_CUDA
    return PyModule_AddIntConstant(m, "HAVE_CUDA", 1);
#else
    return PyModule_AddIntConstant(m, "HAVE_CUDA", 0);
#endif
}
