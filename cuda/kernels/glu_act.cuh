/* glu_act.cuh - act(g) * u of a gated FFN, one definition for every CUDA kernel that applies it
 * (elementwise.cu's GLU, the GEMV's GLU epilogue, the grouped expert product's): the float
 * operations of backend_cpu.c's GLU, in its order, never contracted. which: ORC_ACT_* (model/arch.h;
 * gemv.cuh's ORC_GEMV_ACT_* have the same values). The clamps are comparisons, so that a NaN
 * stays NaN (as torch.clamp keeps it), where fminf / fmaxf would return the bound. */
#ifndef ORC_GLU_ACT_CUH
#define ORC_GLU_ACT_CUH

#include <math.h>

#include "model/arch.h"     /* ORC_ACT_* */
#include "runtime/simt.cuh" /* the CUDA spellings (and the emulator's stand-ins) */

__device__ __forceinline__ float orc_glu_act(int which, float g, float u) {
    if (which == ORC_ACT_SWIGLU_OAI) { /* gpt-oss: g = min(g, 7), u = clamp(u, -7, 7), g sigmoid(1.702 g) (u + 1) */
        g = 7.0f < g ? 7.0f : g;
        u = u < -7.0f ? -7.0f : (7.0f < u ? 7.0f : u);
        return __fmul_rn(__fdiv_rn(g, __fadd_rn(1.0f, expf(__fmul_rn(-1.702f, g)))), __fadd_rn(u, 1.0f));
    }
    if (which == ORC_ACT_GELU_TANH) { /* 0.5 g (1 + tanh(sqrt(2 / pi) (g + 0.044715 g^3))) u */
        const float k = 0.7978845608028654f;
        const float inner = __fmul_rn(k, __fadd_rn(g, __fmul_rn(__fmul_rn(__fmul_rn(0.044715f, g), g), g)));
        return __fmul_rn(__fmul_rn(__fmul_rn(0.5f, g), __fadd_rn(1.0f, tanhf(inner))), u);
    }
    return __fmul_rn(__fdiv_rn(g, __fadd_rn(1.0f, expf(-g))), u); /* SiLU: g / (1 + exp(-g)) u */
}

#endif /* ORC_GLU_ACT_CUH */
