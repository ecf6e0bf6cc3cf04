/* dtype.h - the element types orc stores weights, KV caches and activations in,
 * and the one place their names are defined and parsed (the binding, the CLI and
 * the tests all go through orc_dtype_parse). */
#ifndef ORC_DTYPE_H
#define ORC_DTYPE_H

#include "core/orc.h"

#ifdef __cplusplus
extern "C" {
#endif

/* F32/F16/BF16 hold weights, caches and activations; I32 holds step inputs (token ids,
 * positions), never parsed from a user's name. */
typedef enum orc_dtype { ORC_DTYPE_F32 = 0, ORC_DTYPE_F16 = 1, ORC_DTYPE_BF16 = 2, ORC_DTYPE_I32 = 3 } orc_dtype;

const char *orc_dtype_name(orc_dtype d); /* "float32", "float16", "bfloat16" */
int orc_dtype_size(orc_dtype d);         /* 4 or 2 */

/* "float32"/"f32"/"fp32", "float16"/"f16"/"fp16"/"half", "bfloat16"/"bf16": ORC_OK and *out;
 * anything else ORC_E_INVALID with a message naming `what` and the accepted names. */
orc_status orc_dtype_parse(const char *s, const char *what, orc_dtype *out, orc_err *err);

#ifdef __cplusplus
}
#endif

#endif /* ORC_DTYPE_H */
