/* ggml_types.c - the table behind ggml_types.h. Sizes agree with ggml's
 * type_traits and gguf-py's GGML_QUANT_SIZES (tests/test_ggml_types.py checks). */
#include "gguf/ggml_types.h"

#include <stdio.h>   /* snprintf */
#include <string.h>  /* strcmp */

#define QK_K 256

static const orc_type_traits k_types[ORC_TYPE_COUNT] = {
    [ORC_TYPE_F32] = {"F32", 1, 4, false},
    [ORC_TYPE_F16] = {"F16", 1, 2, false},
    [ORC_TYPE_Q4_0] = {"Q4_0", 32, 2 + 16, false},
    [ORC_TYPE_Q4_1] = {"Q4_1", 32, 2 + 2 + 16, false},
    [4] = {"Q4_2", 0, 0, true},
    [5] = {"Q4_3", 0, 0, true},
    [ORC_TYPE_Q5_0] = {"Q5_0", 32, 2 + 4 + 16, false},
    [ORC_TYPE_Q5_1] = {"Q5_1", 32, 2 + 2 + 4 + 16, false},
    [ORC_TYPE_Q8_0] = {"Q8_0", 32, 2 + 32, false},
    [ORC_TYPE_Q8_1] = {"Q8_1", 32, 4 + 4 + 32, false},
    [ORC_TYPE_Q2_K] = {"Q2_K", QK_K, 2 + 2 + QK_K / 16 + QK_K / 4, false},
    [ORC_TYPE_Q3_K] = {"Q3_K", QK_K, 2 + QK_K / 4 + QK_K / 8 + 12, false},
    [ORC_TYPE_Q4_K] = {"Q4_K", QK_K, 2 + 2 + QK_K / 2 + 12, false},
    [ORC_TYPE_Q5_K] = {"Q5_K", QK_K, 2 + 2 + QK_K / 2 + QK_K / 8 + 12, false},
    [ORC_TYPE_Q6_K] = {"Q6_K", QK_K, 2 + QK_K / 2 + QK_K / 4 + QK_K / 16, false},
    [ORC_TYPE_Q8_K] = {"Q8_K", QK_K, 4 + QK_K + QK_K / 8, false},
    [ORC_TYPE_IQ2_XXS] = {"IQ2_XXS", QK_K, 2 + QK_K / 4, false},
    [ORC_TYPE_IQ2_XS] = {"IQ2_XS", QK_K, 2 + QK_K / 4 + QK_K / 32, false},
    [ORC_TYPE_IQ3_XXS] = {"IQ3_XXS", QK_K, 2 + QK_K / 4 + QK_K / 8, false},
    [ORC_TYPE_IQ1_S] = {"IQ1_S", QK_K, 2 + QK_K / 8 + QK_K / 16, false},
    [ORC_TYPE_IQ4_NL] = {"IQ4_NL", 32, 2 + 16, false},
    [ORC_TYPE_IQ3_S] = {"IQ3_S", QK_K, 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4, false},
    [ORC_TYPE_IQ2_S] = {"IQ2_S", QK_K, 2 + QK_K / 4 + QK_K / 16, false},
    [ORC_TYPE_IQ4_XS] = {"IQ4_XS", QK_K, 2 + 2 + QK_K / 2 + QK_K / 64, false},
    [ORC_TYPE_I8] = {"I8", 1, 1, false},
    [ORC_TYPE_I16] = {"I16", 1, 2, false},
    [ORC_TYPE_I32] = {"I32", 1, 4, false},
    [ORC_TYPE_I64] = {"I64", 1, 8, false},
    [ORC_TYPE_F64] = {"F64", 1, 8, false},
    [ORC_TYPE_IQ1_M] = {"IQ1_M", QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32, false},
    [ORC_TYPE_BF16] = {"BF16", 1, 2, false},
    [31] = {"Q4_0_4_4", 0, 0, true},
    [32] = {"Q4_0_4_8", 0, 0, true},
    [33] = {"Q4_0_8_8", 0, 0, true},
    [ORC_TYPE_TQ1_0] = {"TQ1_0", QK_K, 2 + 4 * 13, false},
    [ORC_TYPE_TQ2_0] = {"TQ2_0", QK_K, 2 + 64, false},
    [36] = {"IQ4_NL_4_4", 0, 0, true},
    [37] = {"IQ4_NL_4_8", 0, 0, true},
    [38] = {"IQ4_NL_8_8", 0, 0, true},
    [ORC_TYPE_MXFP4] = {"MXFP4", 32, 1 + 16, false},
    [ORC_TYPE_NVFP4] = {"NVFP4", 64, 4 + 32, false},
    [ORC_TYPE_Q1_0] = {"Q1_0", 128, 2 + 16, false},
};

const orc_type_traits *orc_type_traits_get(int32_t type) {
    if (type < 0 || type >= ORC_TYPE_COUNT) return NULL;
    const orc_type_traits *t = &k_types[type];
    if (!t->name || t->removed) return NULL;
    return t;
}

const char *orc_type_name(int32_t type, char *buf, size_t buf_size) {
    if (type >= 0 && type < ORC_TYPE_COUNT && k_types[type].name) {
        if (!k_types[type].removed) return k_types[type].name;
        snprintf(buf, buf_size, "removed type %d (%s)", (int)type, k_types[type].name);
        return buf;
    }
    snprintf(buf, buf_size, "unknown type %d", (int)type);
    return buf;
}

int32_t orc_type_from_name(const char *name) {
    if (!name) return -1;
    for (int32_t i = 0; i < ORC_TYPE_COUNT; i++)
        if (k_types[i].name && !k_types[i].removed && strcmp(k_types[i].name, name) == 0) return i;
    return -1;
}

orc_status orc_type_nbytes(int32_t type, int64_t n_elements, uint64_t *out, orc_err *err) {
    char buf[64];
    const orc_type_traits *t = orc_type_traits_get(type);
    if (!t) return orc_fail(err, ORC_E_FORMAT, "%s", orc_type_name(type, buf, sizeof buf));
    if (n_elements < 0)
        return orc_fail(err, ORC_E_FORMAT, "negative element count %lld for %s", (long long)n_elements, t->name);
    if (n_elements % t->block_size != 0)
        return orc_fail(err, ORC_E_FORMAT, "%lld elements is not a multiple of %s's block size %d",
                        (long long)n_elements, t->name, (int)t->block_size);
    uint64_t bytes;
    if (orc_mul_overflow_u64((uint64_t)(n_elements / t->block_size), (uint64_t)t->type_size, &bytes))
        return orc_fail(err, ORC_E_FORMAT, "byte size of %lld %s elements overflows", (long long)n_elements, t->name);
    *out = bytes;
    return ORC_OK;
}
