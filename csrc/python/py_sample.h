/* py_sample.h - argument conversion shared by the bindings that sample
 * (py_sample.c's orc.Sampler/orc.sample, py_model.c's Session.sample and
 * Session.generate), so that every entry point accepts the same keywords and
 * raises the same messages. Binding files only: includes Python. */
#ifndef ORC_PY_SAMPLE_H
#define ORC_PY_SAMPLE_H

#include "python/py_common.h"  /* Python, NumPy, orc_state */
#include "sample/sample.h"     /* orc_sampler_params, orc_rng */

/* Set the field of p called `name` (a str: "temperature", "top_k", "top_p",
 * "min_p", "repeat_penalty", "frequency_penalty", "presence_penalty",
 * "penalty_last_n") from `value`. Returns 1 when set, 0 when name is not a
 * sampler parameter (nothing raised: the caller decides), -1 with TypeError /
 * ValueError naming the parameter when value is not a number of the right
 * kind or does not fit. Range checks are orc_py_sampler_params_check's. */
int orc_py_sampler_param_set(orc_sampler_params *p, PyObject *name, PyObject *value);

/* Fill p (already holding its defaults) from the keyword arguments of a call
 * to fname(), then check it. Keys named in `extra` (NULL-terminated, e.g.
 * {"seed", "history", NULL}) are not sampler parameters: their values go to
 * the matching extra_out slots (borrowed; a slot already set means "got
 * multiple values"). Any other unknown key is a TypeError listing what fname
 * takes. 0 or -1. */
int orc_py_sampler_kwargs(const char *fname, PyObject *kwargs, orc_sampler_params *p, const char *const *extra,
                          PyObject **extra_out);

/* orc_sampler_params_check as a ValueError; 0 or -1. */
int orc_py_sampler_params_check(const orc_sampler_params *p);

/* {name: value} for every field; floats as the shortest decimal that rounds
 * to the float32 in use (0.95, not 0.949999988079071). */
PyObject *orc_py_sampler_params_dict(const orc_sampler_params *p);

/* logits as a new C-contiguous 1-D float32 array. Accepts any 1-D array or
 * sequence of floats or integers; TypeError for other dtypes, ValueError for
 * another number of dimensions or an empty array, each naming what was given.
 * *converted_from (may be NULL) gets the source dtype's name, or "" when the
 * input already was float32 (for messages about values that overflowed). */
PyArrayObject *orc_py_logits_arg(PyObject *obj, const char **converted_from);

/* history (None, a sequence or a 1-D integer array of token ids) as a new
 * C-contiguous int32 array in *out, or *out = NULL for None / empty. Every id
 * must be in [0, n_vocab): ValueError naming the position and id. 0 or -1. */
int orc_py_history_arg(PyObject *obj, int32_t n_vocab, PyArrayObject **out);

#endif /* ORC_PY_SAMPLE_H */
