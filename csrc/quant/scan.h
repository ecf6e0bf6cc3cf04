/* scan.h - finding NaN and Inf in stored tensors (HARDENING row 19), for
 * Model(path, validate=True), the load-time NonFiniteWeightWarning and GGUFFile.nonfinite().
 *
 * A value counts as non-finite when its dequantized float32 (what quant.h produces, bit for bit
 * gguf-py's) is NaN or +-Inf. F32/F16/BF16 are tested on their bits; block types are
 * dequantized, which catches a NaN/Inf block scale (every value of the block inherits it) and
 * also finite fields whose product overflows (an MXFP4 E8M0 scale of 2^127).
 */
#ifndef ORC_QUANT_SCAN_H
#define ORC_QUANT_SCAN_H

#include <stdint.h>

#include "core/orc.h"        /* orc_status, orc_err */
#include "core/threadpool.h" /* orc_pool */

#ifdef __cplusplus
extern "C" {
#endif

typedef enum orc_scan_mode {
    /* Dequantize every block (the definition above, for any type orc can dequantize). */
    ORC_SCAN_FULL = 0,
    /* The same answer, cheaper: for the types whose only float fields are float16 scales and whose
     * values are small integers times them (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K..Q6_K, IQ4_NL,
     * IQ4_XS), a block whose scales are all finite has only finite values (|value| < 65504 * 2^16,
     * far from float32 overflow): only blocks with a NaN/Inf scale are dequantized and counted.
     * Other types are dequantized as in ORC_SCAN_FULL. */
    ORC_SCAN_SCALES = 1,
} orc_scan_mode;

typedef struct orc_scan_result {
    uint64_t count;      /* non-finite values */
    int64_t first_index; /* flat element index (storage order) of the first one, -1 if none */
    int64_t first_block; /* the block it is in (first_index / block size), -1 if none */
    int32_t block_size;  /* elements per block of the type (1 for F32/F16/BF16) */
} orc_scan_result;

/* Scan `n` elements of ggml type `type` stored in `src` (`src_bytes` must be exactly their size,
 * `n` a multiple of the block size: orc_quant_validate's rules and messages, ORC_E_INVALID /
 * ORC_E_UNSUPPORTED). `pool` (may be NULL: the calling thread only) splits the work; the
 * result does not depend on it. Not for a pool that is running another loop. */
orc_status orc_scan_nonfinite(int32_t type, const void *src, uint64_t src_bytes, int64_t n, orc_scan_mode mode,
                              orc_pool *pool, orc_scan_result *out, orc_err *err);

#ifdef __cplusplus
}
#endif

#endif /* ORC_QUANT_SCAN_H */
