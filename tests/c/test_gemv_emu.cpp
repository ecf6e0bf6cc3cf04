/* test_gemv_emu.cpp - the GEMV kernels (cuda/gemv/gemv_kernel.cuh, planned by gemv_plan.cuh)
 * run on the host SIMT emulator (simt_emu.h), against a float64 reference of the weights
 * quant_decode.h decodes: every type, 1..8 tokens, shapes that take every path (1 to 32
 * lanes per row, rows not a multiple of a row group, column splits combined by their last
 * block, padded row strides), each fused variant, MoE with repeated, distinct and bad
 * expert ids, and the MoE gate/up launch ranking the router's logits itself (route_logits: its
 * ids and weights bit for bit those of moe_route_kernel.cuh's top-k launch, with 5, 40 and 130
 * experts, both router kinds; the ids buffer poisoned, so a block reading it gets NaN). Checks: NMSE <= 1e-10, every output written (NaN poison) and nothing past
 * `rows` in a strided output, cp.async sources inside the matrices (the emulator checks
 * each copy), and bitwise-equal results for two different grids (one block per row-group
 * batch, and a single block whose warps loop over all row groups). Compiled and run by
 * tests/test_gpu_kernels.py; prints "ok" or the failures. Argument: the types to run,
 * comma-separated, or "all" (the default). */
#define ORC_SIMT_EMU 1
#include "simt_emu.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <string>
#include <vector>

#include "gemv/gemv_plan.cuh"
#include "kernels/moe_route_kernel.cuh" /* the top-k launch: the route cases' reference ids */

#define EMU_SEED 0x243F6A8885A308D3ull
#include "emu_random.h"
static uint16_t half_bits(float f) { return orc_qd_f2h(f); }

/* The types instantiated here: ORC_EMU_QUICK (the default test run) keeps one of each kind of
 * block alignment and layout, to compile in seconds; ORC_SLOW=1 runs build them all. */
#ifdef ORC_EMU_QUICK
#define EMU_TYPES(X) X(Q4_K) X(Q8_0) X(MXFP4) X(Q6_K) X(Q5_0) X(F16)
#else
#define EMU_TYPES(X) ORC_GV_FOREACH_TYPE(X)
#endif

static int32_t type_id(const char *s) {
#define ID(NAME) \
    if (!strcmp(s, #NAME)) return ORC_TYPE_##NAME;
    ORC_GV_FOREACH_TYPE(ID)
#undef ID
    return -1;
}

static int failures = 0;
static void fail(const std::string &what) {
    if (failures++ < 30) printf("FAIL %s\n", what.c_str());
}

/* ---- weights ---------------------------------------------------------------------------------- */

struct field {
    const char *name;
    int off[2], n;
};
static const field kFields[] = {{"Q4_0", {0, 0}, 1}, {"Q4_1", {0, 2}, 2},   {"Q5_0", {0, 0}, 1}, {"Q5_1", {0, 2}, 2},
                                {"Q8_0", {0, 0}, 1}, {"IQ4_NL", {0, 0}, 1}, {"Q2_K", {80, 82}, 2}, {"Q3_K", {108, 0}, 1},
                                {"Q4_K", {0, 2}, 2}, {"Q5_K", {0, 2}, 2},   {"Q6_K", {208, 0}, 1}, {"IQ4_XS", {0, 0}, 1}};

/* One row of `cols` random valid elements of `name` into dst (row_bytes bytes, padding random). */
static void make_row(const char *name, int bs, int ts, int64_t cols, uint8_t *dst) {
    const int64_t nb = cols / bs;
    if (!strcmp(name, "F32") || !strcmp(name, "F16") || !strcmp(name, "BF16")) {
        for (int64_t i = 0; i < cols; i++) {
            const float v = gauss() * 0.5f;
            if (!strcmp(name, "F32")) {
                memcpy(dst + 4 * i, &v, 4);
            } else {
                const uint16_t h = !strcmp(name, "F16") ? half_bits(v) : orc_qd_f2bf(v);
                memcpy(dst + 2 * i, &h, 2);
            }
        }
        return;
    }
    for (int64_t i = 0; i < nb * ts; i++) dst[i] = (uint8_t)(rnd() >> 56);
    for (int64_t b = 0; b < nb; b++) {
        uint8_t *blk = dst + b * ts;
        for (const field &f : kFields)
            if (!strcmp(f.name, name))
                for (int k = 0; k < f.n; k++) {
                    const float d = (float)((0.5 + unif()) / 128.0 * (rnd() & 1 ? -1 : 1) /
                                            (!strcmp(name, "Q6_K") || !strcmp(name, "IQ4_XS") ? 32 : 1));
                    const uint16_t h = half_bits(d);
                    memcpy(blk + f.off[k], &h, 2);
                }
        if (!strcmp(name, "MXFP4")) blk[0] = (uint8_t)(118 + rnd() % 12);
    }
}

/* Decode one row into floats with quant_decode.h (what orc.dequantize gives). */
static void decode_row(int32_t type, int bs, int ts, int64_t cols, const uint8_t *src, double *out) {
    float y[8];
    switch (type) {
    case ORC_TYPE_F32:
        for (int64_t i = 0; i < cols; i++) out[i] = orc_qd_from_bits(orc_qd_rd32(src + 4 * i));
        return;
    case ORC_TYPE_F16:
        for (int64_t i = 0; i < cols; i++) out[i] = orc_qd_h2f((uint16_t)orc_qd_rd16(src + 2 * i));
        return;
    case ORC_TYPE_BF16:
        for (int64_t i = 0; i < cols; i++) out[i] = orc_qd_bf2f((uint16_t)orc_qd_rd16(src + 2 * i));
        return;
    default: break;
    }
    for (int64_t b = 0; b < cols / bs; b++)
        for (int c = 0; c < bs / 8; c++) {
            switch (type) {
#define DEC(NAME, FN, BS_, TS_) \
    case ORC_TYPE_##NAME: FN(src + b * ts, c, y); break;
                ORC_QD_FOREACH_BLOCK_TYPE(DEC)
#undef DEC
            default: fail("decode_row: no decoder"); return;
            }
            for (int k = 0; k < 8; k++) out[b * bs + 8 * c + k] = y[k];
        }
}

/* ---- one case ------------------------------------------------------------------------------------ */

struct Case {
    const char *type;
    int64_t rows, cols;
    int n;
    bool glu = false;
    int act = 0;
    bool bias = false, bias_up = false, norm = false;
    int res = 0;          /* 0 none, 1 separate, 2 in place */
    int n_expert = 0, k = 0, ids_kind = 0; /* MoE: ids 0 distinct, 1 repeated, 2 with bad ids */
    int64_t row_pad = 0;  /* extra bytes per row (multiples of 16) */
    int64_t x_pad = 0, y_pad = 0;
    int stack = 0;        /* 1 or 2: the rows as 2 or 3 stacked matrices (n_more), cut at rows 32 / 16 and 48 */
    bool xq = false;      /* ask for the integer form (x_int16): the reference then uses x rounded as gemv.cuh says */
    int xspecial = 0;     /* 1: x with a zero, a tiny (1e-30) and a wide-range 16-column block; 2: an inf in x */
    int route = 0;        /* MoE GLU, the router's top-k in the launch: 1 softmax-top-k renormalised, 2 top-k-softmax, 3 softmax-top-k */
};

/* inv_rms of one x row as the kernel's prologue computes it, in float32 and in its order: each of
 * kThreads threads sums x^2 over its float4s (c = 4 tid, stride 4 kThreads) with fmaf, a warp's 32
 * sums meet in a butterfly (offsets 16..1), the warps' in order; then 1 / sqrt(a / cols + eps). */
static float kernel_inv_rms(const float *x, int64_t cols, float eps) {
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

/* x' rounded as the integer form does (gemv.cuh): per 16 columns, dx = 2^(e - 15) with e the
 * exponent of the largest magnitude, xi = rint(x' / dx) clamped to +-32767; NaN if non-finite. */
static void round_int16(std::vector<double> &xn, int n, int64_t cols) {
    for (int t = 0; t < n; t++)
        for (int64_t b = 0; b < cols; b += 16) {
            double *v = &xn[(size_t)t * cols + b];
            double amax = 0;
            bool finite = true;
            for (int c = 0; c < 16; c++) {
                finite = finite && std::isfinite(v[c]);
                amax = fabs(v[c]) > amax ? fabs(v[c]) : amax;
            }
            int e = 0;
            frexp(amax, &e);
            const double dx = ldexp(1.0, e - 15);
            for (int c = 0; c < 16; c++) {
                if (!finite) {
                    v[c] = NAN;
                } else if (amax > 0) {
                    double q = nearbyint(v[c] / dx);
                    q = q > 32767 ? 32767 : (q < -32767 ? -32767 : q);
                    v[c] = q * (double)(float)dx; /* dx as float32 holds it (or flushes it, below 2^-149) */
                }
            }
        }
}

static double act_ref(int a, double g, double u) {
    if (a == 0) return g / (1.0 + exp(-g)) * u;
    if (a == 1) return 0.5 * g * (1.0 + tanh(sqrt(2.0 / M_PI) * (g + 0.044715 * g * g * g))) * u;
    g = g < 7.0 ? g : 7.0;
    u = u < -7.0 ? -7.0 : (u > 7.0 ? 7.0 : u);
    return g / (1.0 + exp(-1.702 * g)) * (u + 1.0);
}

/* deep: the deepest ring the launcher may pick for NT (else 2 stages); half: the HALF kernels
 * (one token; pl's row groups must be theirs); results must not change */
template <class Q, int NT, bool GLU, bool XQ, bool HALF>
static void launch_emu_ring(const orc_gv::plan &pl, int64_t gx, bool deep) {
    constexpr int SD = orc_gv::max_stages<NT>();
    const size_t smem = orc_gv::smem_bytes<Q, NT, GLU, XQ, HALF>(pl.kp, deep ? SD : 2);
    emu::launch(dim3((unsigned)gx, (unsigned)pl.kp.S, (unsigned)pl.jobs), dim3(orc_gv::kThreads), smem, [&] {
        if (deep)
            orc_gv::orc_gemv_kernel<Q, NT, GLU, SD, XQ, HALF>(pl.kp);
        else
            orc_gv::orc_gemv_kernel<Q, NT, GLU, 2, XQ, HALF>(pl.kp);
    });
}

template <class Q, int NT, bool GLU, bool XQ>
static void launch_emu_xq(const orc_gv::plan &pl, int64_t gx, bool deep, bool half) {
    if constexpr (NT == 1)
        if (half) return launch_emu_ring<Q, NT, GLU, XQ, true>(pl, gx, deep);
    launch_emu_ring<Q, NT, GLU, XQ, false>(pl, gx, deep);
}

template <class Q, int NT, bool GLU>
static void launch_emu(orc_gv::plan pl, int64_t gx, bool deep, bool half) {
    bool done = false;
    if constexpr (orc_gv::int16x<Q, NT>())
        if (pl.kp.xq) {
            launch_emu_xq<Q, NT, GLU, true>(pl, gx, deep, half);
            done = true;
        }
    if (!done) launch_emu_xq<Q, NT, GLU, false>(pl, gx, deep, half);
}

template <class Q, bool GLU>
static void launch_nt(int nt, const orc_gv::plan &pl, int64_t gx, bool deep, bool half) {
    switch (nt) {
    case 1: launch_emu<Q, 1, GLU>(pl, gx, deep, half); break;
    case 2: launch_emu<Q, 2, GLU>(pl, gx, deep, false); break;
    case 3: launch_emu<Q, 3, GLU>(pl, gx, deep, false); break;
    case 5: launch_emu<Q, 5, GLU>(pl, gx, deep, false); break;
    case 8: launch_emu<Q, 8, GLU>(pl, gx, deep, false); break;
    default: fail("launch_nt: n not instantiated in the emulator test"); break;
    }
}

template <class Q>
static void run_case(const Case &cs, const std::string &label) {
    const int32_t type = type_id(cs.type);
    const bool moe = cs.n_expert > 0;
    const int64_t rows = cs.rows, cols = cs.cols;
    const int64_t packed = cols / Q::BS * Q::TS;
    const int64_t row_bytes = packed + cs.row_pad;
    const int n_mat = moe ? cs.n_expert : 1;
    const int64_t mat = (rows - 1) * row_bytes + packed;
    const int64_t estride = (mat + 15) / 16 * 16;
    const int nm = cs.glu ? 2 : 1;
    /* weights: each matrix in its own buffer of exactly the readable bytes (16-aligned base) */
    std::vector<std::vector<uint8_t>> wbuf(nm);
    std::vector<std::vector<double>> W(nm);
    for (int m = 0; m < nm; m++) {
        wbuf[m].assign((size_t)(n_mat * estride + 16), 0xEE);
        W[m].resize((size_t)n_mat * rows * cols);
    }
    std::vector<uint8_t *> base(nm);
    emu::g_readable.clear();
    for (int m = 0; m < nm; m++) {
        base[m] = reinterpret_cast<uint8_t *>(((uintptr_t)wbuf[m].data() + 15) & ~(uintptr_t)15);
        for (int e = 0; e < n_mat; e++) {
            uint8_t *mb = base[m] + e * estride;
            for (int64_t r = 0; r < rows; r++) {
                make_row(cs.type, Q::BS == 16 || Q::BS == 8 ? 1 : Q::BS, Q::TS, cols, mb + r * row_bytes);
                decode_row(type, Q::BS, Q::TS, cols, mb + r * row_bytes, &W[m][((size_t)e * rows + r) * cols]);
            }
            emu::g_readable.push_back({(const char *)mb, (const char *)mb + mat});
        }
    }
    const int n = cs.n, k = moe ? cs.k : 1, nvec = moe ? n * k : n;
    const int64_t xs = cols + cs.x_pad, ys = rows + cs.y_pad;
    std::vector<float> x((size_t)n * xs), y((size_t)nvec * ys), res, bias, bias_up, norm;
    for (float &v : x) v = gauss() * (cs.glu ? 2.0f : 1.0f);
    if (cs.xspecial == 1 && cols >= 80)
        for (int t = 0; t < n; t++) {
            for (int c = 0; c < 16; c++) x[t * xs + c] = 0.0f;        /* an all-zero block */
            for (int c = 16; c < 32; c++) x[t * xs + c] *= 1e-30f;    /* a tiny one */
            x[t * xs + 40] = 3.0e4f;                                   /* one value far above its block */
            x[t * xs + 48] = 1.0f;                                     /* a power of two as the block's max */
            for (int c = 49; c < 64; c++) x[t * xs + c] = x[t * xs + c] > 0 ? 0.25f : -0.5f;
            for (int c = 64; c < 80; c++) x[t * xs + c] *= 0.1f;
            x[t * xs + 70] = 0.99999f; /* rounds to 32768 at its block's scale: clamped to 32767 */
        }
    if (cs.xspecial == 2)
        for (int t = 0; t < n; t++) x[t * xs + (cols > 20 ? 20 : 0)] = t % 2 ? -INFINITY : INFINITY;
    std::vector<int32_t> ids, ids_out;
    std::vector<float> logits, route_w, route_w_out;
    if (moe && cs.route) { /* the ids the top-k launch gives (moe_route_kernel.cuh's fast kernel, its own P) */
        logits.resize((size_t)n * cs.n_expert);
        for (float &v : logits) v = 2.0f * gauss();
        logits[1] = logits[0]; /* a tie: the lower index first */
        ids.resize((size_t)n * k);
        route_w.resize((size_t)n * k);
        const int kind = cs.route == 2 ? ORC_ROUTER_TOPK_SOFTMAX : ORC_ROUTER_SOFTMAX_TOPK;
        const bool norm = cs.route == 1;
        const int per_lane = (cs.n_expert + 31) / 32;
        emu::launch(dim3((unsigned)n), dim3(32), 0, [&] {
            using namespace orc_moe_route;
            if (per_lane <= 1) moe_route_fast_kernel<1>(logits.data(), n, cs.n_expert, k, kind, norm, ids.data(), route_w.data());
            else if (per_lane <= 2) moe_route_fast_kernel<2>(logits.data(), n, cs.n_expert, k, kind, norm, ids.data(), route_w.data());
            else if (per_lane <= 4) moe_route_fast_kernel<4>(logits.data(), n, cs.n_expert, k, kind, norm, ids.data(), route_w.data());
            else moe_route_fast_kernel<8>(logits.data(), n, cs.n_expert, k, kind, norm, ids.data(), route_w.data());
        });
        ids_out.resize(ids.size());
        route_w_out.resize(route_w.size());
    } else if (moe) {
        ids.resize((size_t)n * k);
        for (int t = 0; t < n; t++) {
            int perm[64];
            for (int e = 0; e < cs.n_expert; e++) perm[e] = e;
            for (int e = cs.n_expert - 1; e > 0; e--) std::swap(perm[e], perm[rnd() % (uint64_t)(e + 1)]);
            for (int j = 0; j < k; j++) {
                int id = cs.ids_kind == 1 ? (int)(rnd() % 2) : perm[j % cs.n_expert];
                if (cs.ids_kind == 2 && (t * k + j) % 3 == 1) id = (t + j) % 2 ? cs.n_expert + 3 : -1;
                ids[(size_t)t * k + j] = id;
            }
        }
    }
    const size_t nbias = (size_t)n_mat * rows;
    if (cs.bias) {
        bias.resize(nbias);
        for (float &v : bias) v = gauss();
    }
    if (cs.bias_up) {
        bias_up.resize(nbias);
        for (float &v : bias_up) v = gauss();
    }
    if (cs.norm) {
        norm.resize(cols);
        for (float &v : norm) v = (float)(0.5 + unif());
    }
    if (cs.res) {
        res.resize(y.size());
        for (float &v : res) v = gauss();
    }

    orc_gemv_args a;
    memset(&a, 0, sizeof a);
    a.type = type;
    a.w = base[0];
    a.w_up = cs.glu ? base[1] : nullptr;
    a.rows = rows;
    a.cols = cols;
    a.row_bytes = cs.row_pad ? row_bytes : 0;
    a.n = n;
    a.x = x.data();
    a.x_stride = xs;
    a.y = y.data();
    a.y_stride = ys;
    a.bias = cs.bias ? bias.data() : nullptr;
    a.bias_up = cs.bias_up ? bias_up.data() : nullptr;
    a.res = cs.res == 1 ? res.data() : cs.res == 2 ? y.data() : nullptr;
    a.res_stride = ys;
    a.norm_w = cs.norm ? norm.data() : nullptr;
    a.norm_eps = 1e-5f;
    a.act = cs.act;
    a.x_int16 = cs.xq;
    if (moe) {
        a.ids = cs.route ? ids_out.data() : ids.data();
        a.k = k;
        if (cs.route) {
            a.route_logits = logits.data();
            a.route_kind = cs.route == 2 ? ORC_ROUTER_TOPK_SOFTMAX : ORC_ROUTER_SOFTMAX_TOPK;
            a.route_norm = cs.route == 1;
            a.route_w = route_w_out.data();
        }
        a.ids_stride = k;
        a.n_expert = cs.n_expert;
        a.expert_stride = estride;
        a.bias_expert_stride = rows;
    }
    if (cs.stack) { /* the same rows and outputs, as separate matrices of one launch (16-row cuts keep 16-byte alignment) */
        const int64_t cut[3] = {cs.stack == 1 ? 32 : 16, 48, rows};
        a.rows = cut[0];
        a.n_more = cs.stack;
        for (int i = 0; i < cs.stack; i++) {
            const int64_t lo = cut[i], hi = cs.stack == 1 ? rows : cut[i + 1];
            a.more_w[i] = base[0] + lo * row_bytes;
            a.more_rows[i] = hi - lo;
            a.more_y[i] = y.data() + lo;
            a.more_y_stride[i] = ys;
            a.more_bias[i] = cs.bias ? bias.data() + lo : nullptr;
        }
    }
    orc_gv::plan pl;
    char why[256] = "";
    if (orc_gv::make_plan(&a, &pl, why, sizeof why) != 0) {
        fail(label + ": plan refused: " + why);
        return;
    }
    const bool want_xq = cs.xq && orc_gv::info_of(type)->qi && pl.nt == 1;
    if (pl.kp.xq != (int)want_xq) {
        fail(label + ": the plan's integer form is not what was asked for");
        return;
    }
    std::vector<float> scratch(pl.scratch / sizeof(float) + 1); /* zero: the counts start at 0 */
    orc_gv::bind_scratch(&pl, scratch.data());

    /* float64 reference */
    std::vector<double> ref((size_t)nvec * rows, 0.0);
    std::vector<double> xn((size_t)n * cols);
    for (int t = 0; t < n; t++) {
        double ss = 0;
        for (int64_t c = 0; c < cols; c++) ss += (double)x[t * xs + c] * x[t * xs + c];
        const double inv = 1.0 / sqrt(ss / (double)cols + (double)a.norm_eps);
        for (int64_t c = 0; c < cols; c++) xn[t * cols + c] = cs.norm ? x[t * xs + c] * inv * norm[c] : x[t * xs + c];
    }
    std::vector<double> xn_exact = xn; /* before the integer form's rounding */
    if (pl.kp.xq && cs.norm) /* the rounding decides on the kernel's own float32 x' (gemv.cuh): a float64 x'
                              * straddling a rounding boundary would move xi by one (~1e-10 NMSE) */
        for (int t = 0; t < n; t++) {
            const float ir = kernel_inv_rms(&x[t * xs], cols, a.norm_eps);
            for (int64_t c = 0; c < cols; c++) xn[t * cols + c] = (x[t * xs + c] * ir) * norm[c];
        }
    if (pl.kp.xq) round_int16(xn, n, cols);
    std::vector<bool> bad_vec(nvec, false);
    std::vector<float> y0;
    std::vector<double> ref_exact((size_t)nvec * rows, 0.0); /* with x' unrounded */
    for (int o = 0; o < nvec; o++) {
        const int t = moe ? o / k : o;
        const int e = moe ? ids[o] : 0;
        if (e < 0 || e >= n_mat) {
            bad_vec[o] = true;
            continue;
        }
        for (int64_t r = 0; r < rows; r++) {
            double g = 0, u = 0, g1 = 0, u1 = 0;
            const double *wr = &W[0][((size_t)e * rows + r) * cols], *ur = cs.glu ? &W[1][((size_t)e * rows + r) * cols] : nullptr;
            for (int64_t c = 0; c < cols; c++) {
                g += wr[c] * xn[t * cols + c];
                g1 += wr[c] * xn_exact[t * cols + c];
                if (ur) u += ur[c] * xn[t * cols + c], u1 += ur[c] * xn_exact[t * cols + c];
            }
            if (cs.bias) g += bias[(size_t)e * rows + r], g1 += bias[(size_t)e * rows + r];
            if (cs.bias_up) u += bias_up[(size_t)e * rows + r], u1 += bias_up[(size_t)e * rows + r];
            ref[(size_t)o * rows + r] = cs.glu ? act_ref(cs.act, g, u) : g;
            ref_exact[(size_t)o * rows + r] = cs.glu ? act_ref(cs.act, g1, u1) : g1;
        }
    }
    /* poison, or the residual in place */
    for (size_t i = 0; i < y.size(); i++) y[i] = cs.res == 2 ? res[i] : __int_as_float(0x7fc00000);
    if (cs.res)
        for (int o = 0; o < nvec; o++)
            for (int64_t r = 0; r < rows; r++) {
                ref[(size_t)o * rows + r] += res[(size_t)o * ys + r];
                ref_exact[(size_t)o * rows + r] += res[(size_t)o * ys + r];
            }
    y0 = y;

    const int64_t n_tasks = pl.n_tasks_max, gx_full = (n_tasks + orc_gv::kWarps - 1) / orc_gv::kWarps;
    /* One token: the same launch on the HALF kernels (half the rows a row group), which must
     * give the same bits; their plan differs only in that and in the row-group count. */
    const int64_t rw_half = (32 >> pl.kp.lpr_log2) * (cs.glu ? 1 : 2); /* rows a HALF row group */
    if (pl.nt == 1 ? pl.n_tasks_half != (pl.kp.rows + rw_half - 1) / rw_half : pl.n_tasks_half != 0) {
        fail(label + ": the plan's HALF row groups are not those of half the rows");
        return;
    }
    orc_gv::plan pl_half = pl;
    pl_half.n_tasks_max = pl.n_tasks_half;
    std::vector<float> first;
    const int passes = pl.nt == 1 ? 4 : 2;
    for (int pass = 0; pass < passes; pass++) {
        y = y0;
        for (int32_t &v : ids_out) v = -7; /* poison: read before written, every output NaN */
        for (float &v : route_w_out) v = __int_as_float(0x7fc00000);
        emu::g_errors = 0;
        /* 2nd: one block, each warp loops over many row groups, through the deepest ring; 3rd and
         * 4th: the HALF kernels on half their full grid (one or two row groups a warp), then
         * on one block through the deepest ring */
        const orc_gv::plan &pp = pass < 2 ? pl : pl_half;
        const int64_t gx = pass == 0 ? gx_full : pass == 2 ? ((pl_half.n_tasks_max + 7) / 8 + 1) / 2 : 1;
        const bool deep = pass == 1 || pass == 3;
        if (cs.glu)
            launch_nt<Q, true>(pp.nt, pp, gx, deep, pass >= 2);
        else
            launch_nt<Q, false>(pp.nt, pp, gx, deep, pass >= 2);
        if (emu::g_errors) {
            fail(label + ": the emulator reported errors (above)");
            return;
        }
        if (cs.route && (ids_out != ids || memcmp(route_w_out.data(), route_w.data(), route_w.size() * sizeof(float)) != 0)) {
            fail(label + ": the top-k in the launch wrote other ids or weights than the top-k launch");
            return;
        }
        if (pl.scratch) /* the combining blocks leave every split-K count at zero for the next launch */
            for (int i = 0; i < orc_gv::kCounterWords; i++)
                if (pl.kp.counters[i] != 0u) {
                    fail(label + ": split-K count " + std::to_string(i) + " left at " + std::to_string(pl.kp.counters[i]));
                    return;
                }
        double num = 0, den = 0, num_exact = 0;
        for (int o = 0; o < nvec; o++) {
            for (int64_t r = 0; r < rows; r++) {
                const float v = y[(size_t)o * ys + r];
                if (bad_vec[o]) {
                    if (!isnan(v)) fail(label + ": an out-of-range expert id did not give NaN");
                    continue;
                }
                if (cs.xspecial == 2) { /* an infinity in x: every output NaN in the integer form */
                    if (pl.kp.xq && !isnan(v)) {
                        fail(label + ": an inf in x did not give NaN");
                        return;
                    }
                    continue;
                }
                if (!isfinite(v)) {
                    fail(label + ": output " + std::to_string(o) + "," + std::to_string(r) + " not finite (unwritten?)");
                    return;
                }
                const double d = v - ref[(size_t)o * rows + r], d1 = v - ref_exact[(size_t)o * rows + r];
                num += d * d;
                num_exact += d1 * d1;
                den += ref[(size_t)o * rows + r] * ref[(size_t)o * rows + r];
            }
            for (int64_t r = rows; r < ys; r++)
                if (memcmp(&y[(size_t)o * ys + r], &y0[(size_t)o * ys + r], 4) != 0)
                    fail(label + ": wrote past rows into the output's padding");
        }
        if (!(num <= 1e-10 * den) && cs.xspecial != 2) {
            char b[128];
            snprintf(b, sizeof b, ": NMSE %.3e (pass %d)", num / den, pass);
            fail(label + b);
            return;
        }
        /* The integer form computes the rounded x' (the reference rounds the kernel's own x', so
         * only float32 summation separates them), and that rounding is real (~5e-10 from the
         * unrounded x'). */
        if (pl.kp.xq && cs.xspecial != 2 && !(num <= 1e-12 * den)) {
            char b[128];
            snprintf(b, sizeof b, ": integer form NMSE %.3e against its own definition (pass %d)", num / den, pass);
            fail(label + b);
            return;
        }
        if (pl.kp.xq && cs.xspecial == 0 && !(num_exact >= 1e-12 * den)) {
            char b[128];
            snprintf(b, sizeof b, ": integer form NMSE %.3e from the unrounded x: no rounding seen", num_exact / den);
            fail(label + b);
            return;
        }
        if (pass == 0)
            first = y;
        else if (memcmp(first.data(), y.data(), y.size() * sizeof(float)) != 0)
            fail(label + ": results differ between grids (not deterministic)");
    }
}

static void dispatch(const Case &cs) {
    char b[320];
    snprintf(b, sizeof b, "%s %lldx%lld n=%d%s%s%s%s%s%s experts=%d k=%d ids=%d rowpad=%lld xpad=%lld ypad=%lld stack=%d xq=%d/%d", cs.type,
             (long long)cs.rows, (long long)cs.cols, cs.n, cs.glu ? " glu" : "", cs.glu ? (cs.act == 0 ? "-silu" : cs.act == 1 ? "-gelu" : "-oai") : "",
             cs.bias ? " bias" : "", cs.bias_up ? " bias_up" : "", cs.norm ? " norm" : "",
             cs.res == 1 ? " res" : cs.res == 2 ? " res-in-place" : "", cs.n_expert, cs.k, cs.ids_kind,
             (long long)cs.row_pad, (long long)cs.x_pad, (long long)cs.y_pad, cs.stack, (int)cs.xq, cs.xspecial);
    if (cs.route) snprintf(b + strlen(b), sizeof b - strlen(b), " route=%d", cs.route);
    const int32_t t = type_id(cs.type);
    switch (t) {
#define RUN(NAME) \
    case ORC_TYPE_##NAME: run_case<orc_gv_##NAME>(cs, b); break;
        EMU_TYPES(RUN)
#undef RUN
    default: fail(std::string("no such type ") + cs.type);
    }
}

int main(int argc, char **argv) {
    const char *filter = argc > 1 ? argv[1] : "all";
#define NAME_OF(NAME) #NAME,
    const char *types[] = {EMU_TYPES(NAME_OF)};
#undef NAME_OF
    std::vector<Case> cases;
    for (const char *ty : types) {
        if (filter && strcmp(filter, "all")) { /* a comma-separated list of type names */
            const std::string list = std::string(",") + filter + ",";
            if (list.find(std::string(",") + ty + ",") == std::string::npos) continue;
        }
        const int32_t id = type_id(ty);
        const orc_gv::type_info *ti = orc_gv::info_of(id);
        const int64_t u = ti->bs; /* the kernels' block (lane unit * LUs per block) */
        const int64_t a16 = 16;
        /* shapes: 1 block per row (LPR 1..4), a few blocks, ~1.3 pieces, a column split */
        const int64_t c1 = u, c3 = 3 * u, c10 = (u >= 256 ? 5 : 40) * u, cs = (u >= 256 ? 16 : u == 32 ? 64 : 256) * u;
        Case c;
        c.type = ty;
        auto add = [&](Case x) { cases.push_back(x); };
        for (int n : {1, 2, 3, 5, 8}) {
            c = Case{ty, 5, c1, n};
            add(c);
            c = Case{ty, 37, c3, n};
            c.bias = n % 2;
            add(c);
            c = Case{ty, 70, c10, n};
            c.res = 1 + (n % 2);
            c.norm = n != 2;
            add(c);
        }
        c = Case{ty, 16, cs, 1};               /* split for parallelism */
        add(c);
        c = Case{ty, 16, cs, 8};               /* split for shared memory */
        c.bias = true;
        c.res = 2;
        add(c);
        c = Case{ty, 9, c10, 3};               /* padded rows and strides */
        c.row_pad = 3 * a16;
        c.x_pad = 5;
        c.y_pad = 3;
        add(c);
        for (int act = 0; act < 3; act++) {
            c = Case{ty, 33, c3, act == 1 ? 2 : 1};
            c.glu = true;
            c.act = act;
            c.norm = act == 2;
            c.bias = c.bias_up = act == 2;
            add(c);
        }
        for (int n : {1, 3}) {                 /* stacked matrices (q, k, v in one launch) */
            c = Case{ty, 70, c10, n};
            c.stack = 2;
            c.bias = true;
            c.norm = n == 1;
            add(c);
        }
        c = Case{ty, 70, cs, 1};               /* stacked, with a column split */
        c.stack = 1;
        add(c);
        c = Case{ty, 21, cs, 5};               /* GLU with a column split */
        c.glu = true;
        c.act = 2;
        c.bias = c.bias_up = true;
        add(c);
        for (int kind = 0; kind < 3; kind++) { /* MoE plain and GLU */
            c = Case{ty, 19, c3, kind == 2 ? 3 : 2};
            c.n_expert = 5;
            c.k = kind == 0 ? 4 : 8;
            c.ids_kind = kind;
            c.bias = kind != 1;
            add(c);
            c.glu = true;
            c.act = kind;
            c.bias_up = kind == 0;
            c.norm = kind == 1;
            add(c);
        }
        c = Case{ty, 12, cs, 1};               /* MoE with a column split */
        c.n_expert = 3;
        c.k = 2;
        c.glu = true;
        add(c);
        for (int route = 1; route <= 3; route++) { /* the router's top-k in the gate/up launch */
            c = Case{ty, route == 3 ? 12 : 19, route == 3 ? cs : c3, route == 2 ? 1 : 3};
            c.glu = true;
            c.act = route - 1;
            c.n_expert = route == 1 ? 40 : route == 2 ? 5 : 130;
            c.k = route == 2 ? 4 : 8;
            c.route = route;
            c.bias = c.bias_up = route == 2;
            c.norm = route != 2;
            add(c);
        }
        if (ti->qi) { /* the integer form: every one-token and MoE case again, then special x */
            const size_t n_float = cases.size();
            for (size_t i = 0; i < n_float; i++)
                if (cases[i].type == ty) {
                    Case x = cases[i];
                    x.xq = true; /* for n > 1 the plan must keep the float form */
                    add(x);
                }
            for (int sp = 1; sp <= 2; sp++) {
                c = Case{ty, 37, c10, 1};
                c.xq = true;
                c.xspecial = sp;
                add(c);
                c.glu = true;
                c.norm = sp == 1;
                add(c);
            }
        }
    }
    for (const Case &c : cases) dispatch(c);
    if (failures) {
        printf("%d failures in %zu cases\n", failures, cases.size());
        return 1;
    }
    printf("ok\n");
    return 0;
}
