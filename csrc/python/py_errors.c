/* py_errors.c - the one map from core status codes to Python exceptions. */
#include "python/py_common.h"

#include <string.h> /* strlen */

PyObject *orc_py_message(const char *msg) {
    /* core messages are valid UTF-8 (error.c); backslashreplace keeps any other text readable */
    return PyUnicode_DecodeUTF8(msg, (Py_ssize_t)strlen(msg), "backslashreplace");
}

PyObject *orc_py_raise(orc_state *st, orc_status status, const char *msg) {
    PyObject *exc;
    switch (status) {
    case ORC_E_INVALID:
    case ORC_E_RANGE: exc = PyExc_ValueError; break;
    case ORC_E_FORMAT:
    case ORC_E_UNSUPPORTED: exc = st ? st->GGUFError : PyExc_ValueError; break;
    case ORC_E_NOMEM: exc = PyExc_MemoryError; break;
    case ORC_E_IO: exc = PyExc_OSError; break;
    case ORC_E_NOT_FOUND: exc = PyExc_KeyError; break;
    case ORC_E_CUDA:
    case ORC_E_NO_CUDA: exc = st ? st->CudaError : PyExc_RuntimeError; break;
    case ORC_E_INTERRUPTED:
        /* The signal handler may already have set KeyboardInterrupt. */
        if (PyErr_Occurred()) return NULL;
        exc = PyExc_KeyboardInterrupt;
        break;
    case ORC_OK: /* a caller bug: failing with OK */
    case ORC_E_STATE:
    case ORC_E_INTERNAL:
    default: exc = st ? st->OrcError : PyExc_RuntimeError; break;
    }
    /* KeyError repr()s its argument; pass the message as a str anyway. */
    PyObject *s = orc_py_message(msg && *msg ? msg : orc_status_name(status));
    if (s) {
        PyErr_SetObject(exc, s);
        Py_DECREF(s);
    }
    return NULL;
}
