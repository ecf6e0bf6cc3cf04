/* rope_table.c - the inverse frequencies of RoPE, computed once on the host for both
 * backends (so that they rotate by the very same angles), with YaRN as Hugging Face
 * computes it (transformers' _compute_yarn_parameters, float32 like torch). */
#include <math.h>

#include "backend/backend.h"

/* The dimension at which `rotations` full turns fit in the original context. */
static double correction_dim(double rotations, int32_t dim, double base, double orig_ctx) {
    return (double)dim * log(orig_ctx / (rotations * 2.0 * M_PI)) / (2.0 * log(base));
}

void orc_rope_table(const orc_rope_params *rp, const float *factors, float *inv_freq) {
    const int32_t half = rp->n_rot / 2;
    if (!(rp->yarn_factor > 0)) {
        for (int32_t i = 0; i < half; i++) inv_freq[i] = orc_rope_inv_freq(rp->base, i, rp->n_rot, factors);
        return;
    }
    /* YaRN: extrapolated (plain) frequencies above the correction range, interpolated
     * (divided by the factor) below it, a linear ramp between. HF does not round the range
     * (truncate=False for gpt-oss); ggml rounds low down and high up (yarn_round). */
    double lo = correction_dim(rp->yarn_beta_fast, rp->n_rot, rp->base, rp->yarn_orig_ctx);
    double hi = correction_dim(rp->yarn_beta_slow, rp->n_rot, rp->base, rp->yarn_orig_ctx);
    if (rp->yarn_round) {
        lo = floor(lo);
        hi = ceil(hi);
    }
    if (lo < 0) lo = 0;
    if (hi > rp->n_rot - 1) hi = rp->n_rot - 1;
    if (lo == hi) hi += 0.001;
    for (int32_t i = 0; i < half; i++) {
        const float pos_freq = powf(rp->base, (float)(2 * i) / (float)rp->n_rot);
        const float extra = 1.0f / pos_freq, inter = 1.0f / (rp->yarn_factor * pos_freq);
        float ramp = (float)(((float)i - (float)lo) / (float)(hi - lo));
        ramp = ramp < 0.0f ? 0.0f : (ramp > 1.0f ? 1.0f : ramp);
        const float extra_factor = 1.0f - ramp;
        float inv = inter * (1.0f - extra_factor) + extra * extra_factor;
        if (factors) inv /= factors[i];
        inv_freq[i] = inv;
    }
}
