/* ggml_types.h - the ggml tensor types a GGUF file may name: id, name, block
 * size (elements per block) and type size (bytes per block). Shared by the
 * reader (to validate tensor sizes) and dequantization. Ids are ggml's and are
 * stored in files, so they never change; removed ids stay reserved. */
#ifndef ORC_GGML_TYPES_H
#define ORC_GGML_TYPES_H

#include <stdbool.h>  /* bool */
#include <stdint.h>   /* int32_t, uint64_t */

#include "core/orc.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    ORC_TYPE_F32 = 0, ORC_TYPE_F16 = 1, ORC_TYPE_Q4_0 = 2, ORC_TYPE_Q4_1 = 3,
    /* 4, 5: Q4_2, Q4_3, removed */
    ORC_TYPE_Q5_0 = 6, ORC_TYPE_Q5_1 = 7, ORC_TYPE_Q8_0 = 8, ORC_TYPE_Q8_1 = 9,
    ORC_TYPE_Q2_K = 10, ORC_TYPE_Q3_K = 11, ORC_TYPE_Q4_K = 12, ORC_TYPE_Q5_K = 13,
    ORC_TYPE_Q6_K = 14, ORC_TYPE_Q8_K = 15, ORC_TYPE_IQ2_XXS = 16, ORC_TYPE_IQ2_XS = 17,
    ORC_TYPE_IQ3_XXS = 18, ORC_TYPE_IQ1_S = 19, ORC_TYPE_IQ4_NL = 20, ORC_TYPE_IQ3_S = 21,
    ORC_TYPE_IQ2_S = 22, ORC_TYPE_IQ4_XS = 23, ORC_TYPE_I8 = 24, ORC_TYPE_I16 = 25,
    ORC_TYPE_I32 = 26, ORC_TYPE_I64 = 27, ORC_TYPE_F64 = 28, ORC_TYPE_IQ1_M = 29,
    ORC_TYPE_BF16 = 30,
    /* 31..33: Q4_0_4_4, Q4_0_4_8, Q4_0_8_8, removed (repacked at load time now) */
    ORC_TYPE_TQ1_0 = 34, ORC_TYPE_TQ2_0 = 35,
    /* 36..38: IQ4_NL_4_4, IQ4_NL_4_8, IQ4_NL_8_8, removed */
    ORC_TYPE_MXFP4 = 39, ORC_TYPE_NVFP4 = 40, ORC_TYPE_Q1_0 = 41,
    ORC_TYPE_COUNT = 42
};

typedef struct orc_type_traits {
    const char *name;    /* "Q4_K"; NULL for ids that were never assigned or were removed */
    int32_t block_size;  /* elements per block */
    int32_t type_size;   /* bytes per block */
    bool removed;        /* an id ggml used once and removed: a file naming it is from an old ggml */
} orc_type_traits;

/* Traits of ggml type `type`, or NULL if the id is negative, unknown or removed. */
const orc_type_traits *orc_type_traits_get(int32_t type);

/* "Q4_K" for a known id; "removed type 4" / "unknown type 99" otherwise (static buffer-free:
 * writes into `buf` for unknown ids). */
const char *orc_type_name(int32_t type, char *buf, size_t buf_size);

/* F32, F16, BF16: one element per "block", stored as plain values (no block decoding). */
static inline bool orc_type_is_dense(int32_t type) {
    return type == ORC_TYPE_F32 || type == ORC_TYPE_F16 || type == ORC_TYPE_BF16;
}

/* The id for a name ("Q4_K", case-sensitive), or -1. */
int32_t orc_type_from_name(const char *name);

/* Bytes that `n_elements` of `type` occupy. Fails (ORC_E_FORMAT, message naming the type
 * and count) when n_elements is not a multiple of the block size, is negative, or overflows. */
orc_status orc_type_nbytes(int32_t type, int64_t n_elements, uint64_t *out, orc_err *err);

#ifdef __cplusplus
}
#endif

#endif /* ORC_GGML_TYPES_H */
