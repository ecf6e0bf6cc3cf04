/* py_tokenizer.c - the Python side of tokenizer (to be filled by its issue). */
#include "py_common.h"

int orc_py_tokenizer_exec(PyObject *m) { return 0; }
