/* stored.c - the stored form of a matrix weight (weights="quantized"), shared by both
 * backends: rows of GGUF blocks, or a dense matrix for files stored as F32/F16/BF16. */
#include <string.h> /* memset */

#include "backend/backend.h"
#include "gguf/ggml_types.h"

orc_status orc_tensor_stored_shape(orc_tensor *t, int32_t ggml_type, int64_t rows, int64_t cols, uint64_t src_bytes,
                                   const char *what, orc_err *err) {
    memset(t, 0, sizeof *t);
    uint64_t row_bytes;
    orc_status st = orc_type_nbytes(ggml_type, cols, &row_bytes, err);
    if (st != ORC_OK) return st;
    if (row_bytes * (uint64_t)rows != src_bytes)
        return orc_fail(err, ORC_E_INVALID, "%s: %llu bytes for a %lld x %lld tensor", what,
                        (unsigned long long)src_bytes, (long long)rows, (long long)cols);
    t->rows = rows;
    t->cols = cols;
    t->row_bytes = row_bytes;
    t->qtype = -1;
    switch (ggml_type) {
    case ORC_TYPE_F32: t->dtype = ORC_DTYPE_F32; break;
    case ORC_TYPE_F16: t->dtype = ORC_DTYPE_F16; break;
    case ORC_TYPE_BF16: t->dtype = ORC_DTYPE_BF16; break;
    default:
        t->dtype = ORC_DTYPE_F16; /* what products dequantize it to when they must */
        t->qtype = ggml_type;
        break;
    }
    return ORC_OK;
}
