/* py_gguf.c - the Python side of gguf (to be filled by its issue). */
#include "py_common.h"

int orc_py_gguf_exec(PyObject *m) { return 0; }
