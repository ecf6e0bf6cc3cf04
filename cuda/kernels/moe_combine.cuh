/* moe_combine.cuh - one element of the mixture-of-experts weighted sum, the arithmetic both its
 * launches share: moe.cu's combine kernel and the down-product GEMV's combine epilogue
 * (gemv_kernel.cuh), so that the fused step and the primitives give the same bits.
 *
 *     out[t][c] = (res[t][c] +) sum over j = 0..k-1, in order, of w[t][j] * y[t*k + j][c]
 *
 * each term one fused multiply-add into the float32 sum, then one rounded add of the residual. */
#ifndef ORC_MOE_COMBINE_CUH
#define ORC_MOE_COMBINE_CUH

#include <stdint.h>

#include "runtime/simt.cuh" /* orc_ldcg; the emulator's stand-ins */

/* y [t*k + j][y_stride], w [t][k], res and the result [t][res_stride]. CG: y is read through L2
 * (the GEMV's last block reading what its other blocks wrote). */
template <bool CG>
__device__ __forceinline__ float orc_moe_combine_value(const float *y, int64_t y_stride, const float *w, int32_t k,
                                                       int64_t t, int64_t c, const float *res, int64_t res_stride) {
    float acc = 0.0f;
    for (int32_t j = 0; j < k; j++) {
        const float *yj = y + (t * k + j) * y_stride + c;
        acc = __fmaf_rn(w[t * k + j], CG ? orc_ldcg(yj) : *yj, acc);
    }
    return res ? __fadd_rn(res[t * res_stride + c], acc) : acc;
}

#endif /* ORC_MOE_COMBINE_CUH */
