/* py_common.h - what the binding files (module.c and py_*.c) share: the
 * Python/NumPy includes, the module state, and the status -> exception map.
 * Core files never include this. */
#ifndef ORC_PY_COMMON_H
#define ORC_PY_COMMON_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* One NumPy C-API table for the whole extension: module.c imports it, every
 * other binding file refers to it. */
#define PY_ARRAY_UNIQUE_SYMBOL orc_ARRAY_API
#ifndef ORC_PY_MODULE_MAIN
#define NO_IMPORT_ARRAY
#endif
#include <numpy/arrayobject.h>

#include "core/orc.h"

/* Per-module state (multi-phase init): exception types and the heap types
 * each binding file registers. */
typedef struct orc_state {
    PyObject *OrcError;   /* RuntimeError */
    PyObject *GGUFError;  /* OrcError + ValueError */
    PyObject *CudaError;  /* OrcError */
    PyObject *types[16];  /* heap types created by orc_py_add_type (owned here, for GC) */
    int n_types;
    /* Borrowed pointers into types[], for the binding files that need them. */
    PyTypeObject *GGUFFileType, *TensorInfoType;  /* py_gguf.c */
    PyTypeObject *TokenizerType;                  /* py_tokenizer.c */
    PyTypeObject *ModelType, *SessionType;        /* py_model.c */
} orc_state;

extern PyModuleDef orc_module_def;

static inline orc_state *orc_state_of_module(PyObject *m) { return (orc_state *)PyModule_GetState(m); }

/* The state of the module that defined `type` (a heap type of ours). */
static inline orc_state *orc_state_of_type(PyTypeObject *type) {
    PyObject *m = PyType_GetModuleByDef(type, &orc_module_def);
    return m ? orc_state_of_module(m) : NULL;
}

/* Raise the exception that `status` maps to, with `msg`; returns NULL.
 * The one place where core statuses become Python exceptions. */
PyObject *orc_py_raise(orc_state *st, orc_status status, const char *msg);
/* A core message as a str, never failing on its bytes (a new reference, or NULL on MemoryError). */
PyObject *orc_py_message(const char *msg);
static inline PyObject *orc_py_raise_err(orc_state *st, const orc_err *err) {
    return orc_py_raise(st, err->status, err->msg);
}

/* Create a heap type from `spec` bound to module `m`, add it to the module
 * under its short name and keep a reference in the state. */
PyTypeObject *orc_py_add_type(PyObject *m, PyType_Spec *spec, PyObject *bases);

/* A new orc.GGUFFile sharing an open handle (py_gguf.c); it retains `g`. */
struct orc_gguf;
PyObject *orc_py_gguffile_from_handle(orc_state *st, struct orc_gguf *g, PyObject *path);

/* Each binding file adds its functions (PyModule_AddFunctions) and types
 * (orc_py_add_type) to the module in its exec function; module.c calls them in
 * this order, so later files may use earlier files' types. */
int orc_py_cuda_exec(PyObject *m);      /* py_cuda.c: GPU probe, devices, self-test */
int orc_py_gguf_exec(PyObject *m);      /* py_gguf.c: GGUFFile, TensorInfo */
int orc_py_quant_exec(PyObject *m);     /* py_quant.c: dequantize */
int orc_py_sample_exec(PyObject *m);    /* py_sample.c: samplers */
int orc_py_tokenizer_exec(PyObject *m); /* py_tokenizer.c: Tokenizer */
int orc_py_model_exec(PyObject *m);     /* py_model.c: Model, Session */
int orc_py_kernels_exec(PyObject *m);   /* py_kernels.c: GPU kernel test/bench entries */

/* py_quant.c: a ggml type from a name ("Q4_K", any case) or an id; -1 with an exception set. */
int32_t orc_py_quant_type(PyObject *obj);

#endif /* ORC_PY_COMMON_H */
