/* rope_pair.cuh - one RoPE rotation, shared by rope.cu's kernels and the decode attention's fused
 * rope (attention_kernel.cuh), so that every path rotates by the same arithmetic and gives the same
 * bits. Angles in double from the host-computed float32 inverse frequencies (orc_rope_inv_freq),
 * as the CPU reference does. */
#ifndef ORC_ROPE_PAIR_CUH
#define ORC_ROPE_PAIR_CUH

#include <math.h>
#include <stdint.h>

#ifdef ORC_SIMT_EMU /* the host emulator (tests/c): the same formula, the host's sin and cos */
static inline void orc_sincos(double a, double *s, double *c) {
    *s = sin(a);
    *c = cos(a);
}
#else
__device__ __forceinline__ void orc_sincos(double a, double *s, double *c) { sincos(a, s, c); }
#endif

/* The rotation of pair p at position `pos`: sin and cos of its angle, times mscale. It reads
 * only the step's positions and the inverse frequencies, so a kernel may compute it before its
 * inputs exist (before orc_pdl_wait). */
__device__ __forceinline__ void rope_angle(int32_t p, int32_t pos, float freq_scale, float mscale,
                                           const float *inv_freq, double *sn, double *cs) {
    const double ang = (double)pos * (double)freq_scale * (double)inv_freq[p];
    orc_sincos(ang, sn, cs);
    *sn *= (double)mscale;
    *cs *= (double)mscale;
}

/* Rotate pair p of one head's vector x in place by (sn, cs) from rope_angle: elements i0, i1
 * (NeoX: p, p + half; else 2p, 2p + 1). */
__device__ __forceinline__ void rope_rotate(float *x, int32_t p, int32_t half, int neox, double sn, double cs,
                                            int32_t *i0, int32_t *i1) {
    *i0 = neox ? p : 2 * p;
    *i1 = neox ? p + half : 2 * p + 1;
    const double a = x[*i0], b = x[*i1];
    x[*i0] = (float)(a * cs - b * sn);
    x[*i1] = (float)(a * sn + b * cs);
}

/* Both: the one rotation every kernel uses. */
__device__ __forceinline__ void rope_pair(float *x, int32_t p, int32_t half, int neox, int32_t pos, float freq_scale,
                                          float mscale, const float *inv_freq, int32_t *i0, int32_t *i1) {
    double sn, cs;
    rope_angle(p, pos, freq_scale, mscale, inv_freq, &sn, &cs);
    rope_rotate(x, p, half, neox, sn, cs, i0, i1);
}

#endif /* ORC_ROPE_PAIR_CUH */
