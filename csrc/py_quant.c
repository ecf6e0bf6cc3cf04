/* py_quant.c - the Python side of quant (to be filled by its issue). */
#include "py_common.h"

int orc_py_quant_exec(PyObject *m) { return 0; }
