/* gemv_norm_ref.h - the GEMV's RMSNorm prologue on the host, for the emulator tests of the
 * kernels that must reproduce its bits (test_gemv_emu.cpp, test_gemv_rows_emu.cpp). Needs
 * gemv/gemv_kernel.cuh (kThreads, kWarps) included first. */
#ifndef ORC_GEMV_NORM_REF_H
#define ORC_GEMV_NORM_REF_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* inv_rms of one x row as the kernel's prologue computes it, in float32 and in its order: each of
 * kThreads threads sums x^2 over its float4s (c = 4 tid, stride 4 kThreads) with fmaf, a warp's 32
 * sums meet in a butterfly (offsets 16..1), the warps' in order; then 1 / sqrt(a / cols + eps). */
static inline float kernel_inv_rms(const float *x, int64_t cols, float eps) {
    float part[orc_gv::kThreads], red[orc_gv::kWarps];
    for (int tid = 0; tid < orc_gv::kThreads; tid++) {
        float ss = 0.0f;
        for (int64_t c = 4 * tid; c < cols; c += 4 * orc_gv::kThreads)
            for (int i = 0; i < 4; i++) ss = fmaf(x[c + i], x[c + i], ss);
        part[tid] = ss;
    }
    for (int w = 0; w < orc_gv::kWarps; w++) {
        float v[32], nv[32];
        for (int l = 0; l < 32; l++) v[l] = part[32 * w + l];
        for (int off = 16; off > 0; off >>= 1) {
            for (int l = 0; l < 32; l++) nv[l] = v[l] + v[l ^ off];
            memcpy(v, nv, sizeof v);
        }
        red[w] = v[0];
    }
    float a = red[0];
    for (int w = 1; w < orc_gv::kWarps; w++) a = a + red[w];
    return 1.0f / sqrtf(a / (float)cols + eps);
}

#endif /* ORC_GEMV_NORM_REF_H */
