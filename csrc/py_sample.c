/* py_sample.c - the Python side of sample (to be filled by its issue). */
#include "py_common.h"

int orc_py_sample_exec(PyObject *m) { return 0; }
