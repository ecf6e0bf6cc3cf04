/* py_model.c - the Python side of model (to be filled by its issue). */
#include "py_common.h"

int orc_py_model_exec(PyObject *m) { return 0; }
