/* py_tokenizer.h - what other binding files (py_model.c) use of orc.Tokenizer. */
#ifndef ORC_PY_TOKENIZER_H
#define ORC_PY_TOKENIZER_H

#include "python/py_common.h"  /* Python.h, orc_state */
#include "tokenizer/tokenizer.h"  /* orc_tokenizer */

/* A new orc.Tokenizer around `tok` (a new reference, or NULL with an exception set).
 * owner == NULL: the object owns `tok` and frees it when it dies (even on failure here).
 * owner != NULL: the object keeps a reference to `owner`, which must keep `tok` alive for as
 * long as it lives (so a Model must not free its tokenizer on close() while wrappers may
 * exist; free it in dealloc, or hand ownership over by passing NULL). */
PyObject *orc_py_tokenizer_wrap(orc_state *st, orc_tokenizer *tok, PyObject *owner);

/* The tokenizer of an orc.Tokenizer object, or NULL with TypeError set. */
const orc_tokenizer *orc_py_tokenizer_get(orc_state *st, PyObject *obj);

#endif /* ORC_PY_TOKENIZER_H */
