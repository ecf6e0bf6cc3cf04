/* test_gemv_rows_emu.cpp - the small float32 product kernel (cuda/gemv/gemv_rows.cuh, a warp a
 * row) on the host SIMT emulator (simt_emu.h) against a float64 reference: 1..8 tokens, rows not a
 * multiple of a block's four, columns of one partial chunk to several (a lane's last float4s past
 * the row), padded row strides, strided x / y / res, bias and residual (also in place), the RMSNorm
 * prologue. Checks: NMSE <= 1e-12 (the reference takes the kernel's float32 x', so only the dot
 * product's order is left), every output written and nothing past `rows` in a strided output, the
 * normalized x bit for bit the general GEMV's (one-hot weight rows return x' itself, compared with
 * gemv_norm_ref.h's inv_rms), a NaN in x reaching exactly its token's outputs, and rows_eligible's
 * choices. Compiled and run by tests/test_gpu_kernels.py; prints "ok" or the failures. */
#define ORC_SIMT_EMU 1
#include "simt_emu.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <string>
#include <vector>

#include "gemv/gemv_plan.cuh" /* orc_gv::kThreads for gemv_norm_ref.h, make_plan */
#include "gemv/gemv_rows.cuh"
#include "gemv_norm_ref.h"

#define EMU_SEED 0x9E3779B97F4A7C15ull
#include "emu_random.h"

static int failures = 0;
static void fail(const std::string &what) {
    if (failures++ < 30) printf("FAIL %s\n", what.c_str());
}

struct Case {
    int64_t rows, cols;
    int n;
    bool norm, bias, res, in_place, one_hot;
    int64_t pad;      /* extra floats a weight row (a multiple of 4) */
    int64_t x_extra;  /* x_stride - cols (a multiple of 4) */
    int64_t y_extra;  /* y_stride - rows */
    int nan_token;    /* -1: none */
};

template <int NT>
static void launch(const orc_gv_rows::rparams &p) {
    const unsigned grid = (unsigned)((p.rows + orc_gv_rows::kWarps - 1) / orc_gv_rows::kWarps);
    emu::launch(dim3(grid), dim3(orc_gv_rows::kThreads), 0, [&] { orc_gv_rows::orc_gemv_rows_kernel<NT>(p); });
}

static void launch_n(int n, const orc_gv_rows::rparams &p) {
    switch (n) {
    case 1: launch<1>(p); break;
    case 2: launch<2>(p); break;
    case 3: launch<3>(p); break;
    case 8: launch<8>(p); break;
    default: fail("launch_n: n not instantiated"); break;
    }
}

static void run_case(const Case &cs) {
    char label[200];
    snprintf(label, sizeof label, "rows %lld cols %lld n %d norm %d bias %d res %d%s one_hot %d pad %lld nan %d",
             (long long)cs.rows, (long long)cs.cols, cs.n, cs.norm, cs.bias, cs.res, cs.in_place ? " (in place)" : "",
             cs.one_hot, (long long)cs.pad, cs.nan_token);
    const int64_t rf = cs.cols + cs.pad, xs = cs.cols + cs.x_extra, ys = cs.rows + cs.y_extra;
    /* 16-byte aligned buffers (std::vector<float4> storage) */
    std::vector<float4> wbuf((size_t)(cs.rows * rf + 3) / 4), xbuf((size_t)(cs.n * xs + 3) / 4),
        nbuf((size_t)(cs.cols + 3) / 4);
    float *w = &wbuf[0].x, *x = &xbuf[0].x, *nw = &nbuf[0].x;
    for (int64_t i = 0; i < cs.rows * rf; i++) w[i] = cs.one_hot ? 0.0f : gauss() * 0.05f;
    if (cs.one_hot)
        for (int64_t r = 0; r < cs.rows; r++) w[r * rf + (r * 7 + 3) % cs.cols] = 1.0f;
    for (int64_t i = 0; i < cs.n * xs; i++) x[i] = gauss() * (1.0f + (float)(i % 5));
    for (int64_t c = 0; c < cs.cols; c++) nw[c] = 0.5f + (float)unif();
    if (cs.nan_token >= 0) x[cs.nan_token * xs + cs.cols / 2] = NAN;
    std::vector<float> bias(cs.rows), res((size_t)(cs.n * ys)), y((size_t)(cs.n * ys));
    for (float &b : bias) b = gauss();
    for (float &v : res) v = gauss();
    const float poison = __int_as_float(0x7fc0dead);
    for (float &v : y) v = poison;
    if (cs.in_place) y = res;

    orc_gv_rows::rparams p;
    p.w = w;
    p.row_floats = rf;
    p.rows = cs.rows;
    p.cols = (int)cs.cols;
    p.x = x;
    p.x_stride = xs;
    p.y = y.data();
    p.y_stride = ys;
    p.bias = cs.bias ? bias.data() : nullptr;
    p.res = cs.res ? (cs.in_place ? y.data() : res.data()) : nullptr;
    p.res_stride = ys;
    p.norm_w = cs.norm ? nw : nullptr;
    p.eps = 1e-6f;
    launch_n(cs.n, p);

    double err = 0.0, ref2 = 0.0;
    for (int t = 0; t < cs.n; t++) {
        const float ir = cs.norm ? kernel_inv_rms(&x[t * xs], cs.cols, p.eps) : 1.0f;
        std::vector<float> xp((size_t)cs.cols);
        for (int64_t c = 0; c < cs.cols; c++) xp[c] = cs.norm ? (x[t * xs + c] * ir) * nw[c] : x[t * xs + c];
        for (int64_t r = 0; r < ys; r++) {
            const float got = y[t * ys + r];
            if (r >= cs.rows) { /* past the rows: untouched */
                const float want = cs.in_place ? res[t * ys + r] : poison;
                if (memcmp(&got, &want, 4) != 0) fail(std::string(label) + ": wrote past rows");
                continue;
            }
            const bool nan_row = t == cs.nan_token;
            if (nan_row) {
                if (!isnan(got)) fail(std::string(label) + ": a NaN in x did not reach its token's output");
                continue;
            }
            if (isnan(got)) {
                fail(std::string(label) + ": NaN output (unwritten or wrong)");
                continue;
            }
            if (cs.one_hot) { /* y = x'[c] exactly, then the epilogue in float32 */
                float want = xp[(r * 7 + 3) % cs.cols];
                if (cs.bias) want = want + bias[r];
                if (cs.res) want = want + res[t * ys + r];
                if (memcmp(&got, &want, 4) != 0) {
                    char m[120];
                    snprintf(m, sizeof m, ": one-hot row %lld token %d: %.9g, want %.9g (the GEMV's x')", (long long)r,
                             t, got, want);
                    fail(std::string(label) + m);
                }
                continue;
            }
            double ref = 0.0;
            for (int64_t c = 0; c < cs.cols; c++) ref += (double)w[r * rf + c] * (double)xp[c];
            if (cs.bias) ref += bias[r];
            if (cs.res) ref += res[t * ys + r];
            err += (got - ref) * (got - ref);
            ref2 += ref * ref;
        }
    }
    if (!cs.one_hot && ref2 > 0.0 && err / ref2 > 1e-12) {
        char m[80];
        snprintf(m, sizeof m, ": NMSE %.3g > 1e-12", err / ref2);
        fail(std::string(label) + m);
    }
    if (!cs.one_hot && cs.nan_token < 0 && !(ref2 > 0.0)) fail(std::string(label) + ": an all-zero reference");
}

/* rows_eligible: F32 plain products up to kMaxRows rows and kMaxCols columns, aligned x / norm_w. */
static void check_eligibility() {
    alignas(16) static float buf[64];
    orc_gemv_args a{};
    a.type = ORC_TYPE_F32;
    a.w = buf;
    a.rows = 128;
    a.cols = 2048;
    a.n = 1;
    a.x = buf;
    a.x_stride = 2048;
    a.y = buf;
    a.y_stride = 128;
    if (!orc_gv_rows::rows_eligible(&a)) fail("eligible: a 128 x 2048 router");
    const auto refused = [&](const char *why, auto change) {
        orc_gemv_args b = a;
        change(b);
        if (orc_gv_rows::rows_eligible(&b)) fail(std::string("eligible although ") + why);
    };
    refused("Q8_0", [](orc_gemv_args &b) { b.type = ORC_TYPE_Q8_0; });
    refused("GLU", [](orc_gemv_args &b) { b.w_up = buf; });
    refused("MoE ids", [](orc_gemv_args &b) { b.ids = reinterpret_cast<const int32_t *>(buf); });
    refused("stacked", [](orc_gemv_args &b) { b.n_more = 1; });
    refused("a sibling launch", [](orc_gemv_args &b) { b.pdl_role = ORC_GEMV_PDL_SIBLING; });
    refused("too many rows", [](orc_gemv_args &b) { b.rows = orc_gv_rows::kMaxRows + 1; });
    refused("too many columns", [](orc_gemv_args &b) { b.cols = orc_gv_rows::kMaxCols + 8; });
    refused("x unaligned", [](orc_gemv_args &b) { b.x = buf + 1; });
    refused("x stride", [](orc_gemv_args &b) { b.x_stride = 2050; });
    refused("norm_w unaligned", [](orc_gemv_args &b) { b.norm_w = buf + 2; });
    refused("row stride", [](orc_gemv_args &b) { b.row_bytes = 2048 * 4 + 8; });
}

int main() {
    check_eligibility();
    const Case cases[] = {
        /* rows, cols, n, norm, bias, res, in_place, one_hot, pad, x_extra, y_extra, nan */
        {128, 2048, 1, true, false, false, false, false, 0, 0, 0, -1}, /* Qwen3-MoE's router */
        {32, 2880, 1, false, true, false, false, false, 0, 0, 0, -1},  /* gpt-oss's: two chunks */
        {32, 2880, 2, true, true, false, false, false, 4, 8, 3, -1},
        {5, 104, 3, true, true, true, false, false, 0, 4, 2, -1},      /* a lane's float4s past the row */
        {1, 8, 1, true, false, false, false, false, 0, 0, 5, -1},
        {33, 4160, 8, true, true, true, true, false, 12, 4, 1, -1},     /* three chunks, in place */
        {130, 520, 2, false, false, true, false, false, 0, 0, 0, -1},
        {128, 2048, 1, true, false, false, false, true, 0, 0, 0, -1},   /* the norm's bits */
        {9, 2880, 2, true, true, true, false, true, 4, 4, 2, -1},
        {7, 4160, 3, true, false, false, false, true, 0, 0, 0, -1},
        {6, 1000, 3, true, true, false, false, false, 0, 0, 1, 1},      /* a NaN in token 1 */
        {6, 1000, 3, false, false, false, false, false, 0, 0, 0, 2},
    };
    for (const Case &c : cases) run_case(c);
    if (emu::g_errors) fail("emulator errors: " + std::to_string(emu::g_errors));
    if (failures) {
        printf("%d failures\n", failures);
        return 1;
    }
    printf("ok\n");
    return 0;
}
