/* dtype.c - names of the element types (dtype.h). */
#include "core/dtype.h"

#include <string.h>

static const struct {
    const char *name;
    orc_dtype d;
} k_names[] = {
    {"float32", ORC_DTYPE_F32}, {"f32", ORC_DTYPE_F32},   {"fp32", ORC_DTYPE_F32},   {"float16", ORC_DTYPE_F16},
    {"f16", ORC_DTYPE_F16},     {"fp16", ORC_DTYPE_F16},  {"half", ORC_DTYPE_F16},   {"bfloat16", ORC_DTYPE_BF16},
    {"bf16", ORC_DTYPE_BF16},
};

const char *orc_dtype_name(orc_dtype d) {
    switch (d) {
    case ORC_DTYPE_F32: return "float32";
    case ORC_DTYPE_F16: return "float16";
    case ORC_DTYPE_BF16: return "bfloat16";
    case ORC_DTYPE_I32: return "int32";
    default: return "invalid dtype";
    }
}

int orc_dtype_size(orc_dtype d) { return d == ORC_DTYPE_F16 || d == ORC_DTYPE_BF16 ? 2 : 4; }

orc_status orc_dtype_parse(const char *s, const char *what, orc_dtype *out, orc_err *err) {
    for (size_t i = 0; s && i < sizeof k_names / sizeof k_names[0]; i++) {
        if (!strcmp(s, k_names[i].name)) {
            *out = k_names[i].d;
            return ORC_OK;
        }
    }
    return orc_fail(err, ORC_E_INVALID, "%s must be 'float32', 'float16' or 'bfloat16' (or f32/f16/bf16), not '%.64s'",
                    what, s ? s : "(null)");
}
