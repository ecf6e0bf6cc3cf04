/* gemv_plan.cuh - the launch plan of orc_launch_gemv (gemv.cuh): argument checks and the
 * shape-only choices (column split S, lane units per slice L, lanes per row LPR) that fix
 * the summation order. Plain host C++: gemv.cu uses it, and so does the host emulator test
 * (tests/c/test_gemv_emu.cpp), which runs the kernels on exactly these parameters. */
#ifndef ORC_GEMV_PLAN_CUH
#define ORC_GEMV_PLAN_CUH

#include <stdarg.h>
#include <stdio.h>

#include "gguf/ggml_types.h" /* ORC_TYPE_* */
#include "gemv/gemv_kernel.cuh"

namespace orc_gv {

struct type_info {
    int32_t type;
    int bs, ts, e, lpb, a;
    bool qi; /* has the integer form (int16 x) at one token */
};

#define ORC_GV_INFO(NAME)                                                                                       \
    {ORC_TYPE_##NAME, orc_gv_##NAME::BS, orc_gv_##NAME::TS, orc_gv_##NAME::E, orc_gv_##NAME::LPB, orc_gv_##NAME::A, \
     int16x<orc_gv_##NAME, 1>()},
inline constexpr type_info kTypes[] = {ORC_GV_FOREACH_TYPE(ORC_GV_INFO)};
#undef ORC_GV_INFO

inline const type_info *info_of(int32_t type) {
    for (const type_info &t : kTypes)
        if (t.type == type) return &t;
    return nullptr;
}

inline int fail(char *why, size_t n, const char *fmt, ...) {
    if (why && n) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

inline int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* The column split aims for row-slices (rows x column slices): at least kFillRowSlices, and up
 * to kFillWide while each slice keeps >= kWideCols columns. A 4096-row matrix unsplit gives
 * 1024 warps of four rows, half the H200's 2112 warp slots, each on a long row: splitting its
 * 4096 or 14336 columns in two took the 8B shape's decode step 4.22 -> 3.84 ms (device run 14);
 * splitting narrow rows (the 0.5B shape's 896) only adds combine launches (1.53 -> 1.55 ms).
 * ORC_GEMV_FILL, ORC_GEMV_FILL_ROWS and ORC_GEMV_WIDE_COLS (gemv.cu) override them, for measuring
 * (device run 33: 4096, 8192 and 16384 row-slices were each slower than 2048 on the 8B, 30B-A3B
 * and 0.5B shapes). */
constexpr int64_t kFillRowSlices = 2048;
constexpr int64_t kFillWide = 8192;
constexpr int64_t kWideCols = 2048;

/* Which one-token launches run the HALF kernels (cfg in gemv_kernel.cuh): none, the gate/up
 * (GLU) products, all, or (a percentage P > 0) those whose row groups (x slices x jobs) number
 * fewer than P% of the warps one wave of the full-size kernel holds on this device (launch_xq
 * decides). Never a result, only the row groups' size; ORC_GEMV_HALF_ROWS (gemv.cu) overrides it.
 * Device run 34: HALF on every launch cost the 8B and 30B-A3B shapes 17% and 12% of a step and
 * gave the 0.5B and gpt-oss-20b shapes 6% and 3%. Run 35 (decode_ab): under 75% of a wave, the
 * 0.5B step 7-8% shorter, gpt-oss-20b's 2-3%, 30B-A3B's the same (1%, within noise; 50% made it
 * 3% longer), the 8B's launches unchanged (all of its products fill >= 96%). */
constexpr int kHalfRows = 75;

/* The launch-shape rule: the column split's targets and the HALF choice. */
struct shape_rule {
    int64_t rows = kFillRowSlices, wide = kFillWide, wide_cols = kWideCols;
    int half = kHalfRows;
};

/* Checks a and fills pl; 0 on success, -1 with the reason in why. `rule`: see shape_rule. */
inline int make_plan(const orc_gemv_args *a, plan *pl, char *why, size_t wn, const shape_rule &rule = shape_rule{}) {
    if (!a || !pl) return fail(why, wn, "NULL arguments");
    const type_info *ti = info_of(a->type);
    if (!ti) return fail(why, wn, "ggml type %d has no GEMV kernel (see orc_gemv_supported)", (int)a->type);
    const bool moe = a->ids != nullptr, glu = a->w_up != nullptr;
    if (a->rows < 1 || a->cols < 1 || a->rows > (1 << 30) || a->cols > (1 << 30))
        return fail(why, wn, "rows %lld, cols %lld: each must be 1..2^30", (long long)a->rows, (long long)a->cols);
    if (a->cols % ti->bs != 0)
        return fail(why, wn, "cols %lld is not a multiple of %d (the type's block size)", (long long)a->cols, ti->bs);
    if (a->n < 1 || a->n > ORC_GEMV_MAX_N) return fail(why, wn, "n = %d tokens: must be 1..%d", (int)a->n, ORC_GEMV_MAX_N);
    if (!a->w || !a->x || !a->y) return fail(why, wn, "NULL w, x or y");
    if ((uintptr_t)a->w % 16 != 0 || (glu && (uintptr_t)a->w_up % 16 != 0))
        return fail(why, wn, "weights at %p / %p are not 16-byte aligned", a->w, a->w_up);
    const int64_t packed = a->cols / ti->bs * ti->ts;
    const int64_t row_bytes = a->row_bytes ? a->row_bytes : packed;
    if (row_bytes < packed || row_bytes % ti->a != 0)
        return fail(why, wn, "row_bytes %lld: must be >= %lld (a packed row) and a multiple of %d",
                    (long long)row_bytes, (long long)packed, ti->a);
    if (a->x_stride < a->cols || a->y_stride < a->rows || (a->res && a->res_stride < a->rows))
        return fail(why, wn, "x_stride %lld < cols, y_stride %lld < rows or res_stride %lld < rows",
                    (long long)a->x_stride, (long long)a->y_stride, (long long)a->res_stride);
    if (glu && (a->act < 0 || a->act > ORC_GEMV_ACT_SWIGLU_OAI))
        return fail(why, wn, "unknown GLU activation %d", (int)a->act);
    if (a->bias_up && !glu) return fail(why, wn, "bias_up given without w_up");
    if (a->norm_w && !(a->norm_eps >= 0.0f && a->norm_eps < 1e30f))
        return fail(why, wn, "norm_eps %g must be finite and >= 0", (double)a->norm_eps);
    if (moe) {
        if (a->k < 1 || a->k > ORC_GEMV_MAX_K || a->ids_stride < a->k || a->n_expert < 1)
            return fail(why, wn, "MoE: k = %d (1..%d), ids_stride %lld (>= k), n_expert %d (>= 1)", (int)a->k,
                        ORC_GEMV_MAX_K, (long long)a->ids_stride, (int)a->n_expert);
        if (a->expert_stride % 16 != 0 || a->expert_stride < 0)
            return fail(why, wn, "MoE: expert_stride %lld is not a non-negative multiple of 16",
                        (long long)a->expert_stride);
        if ((a->bias || a->bias_up) && a->bias_expert_stride < a->rows)
            return fail(why, wn, "MoE: bias_expert_stride %lld < rows", (long long)a->bias_expert_stride);
    }
    if (a->route_logits) { /* route_warp<8>: up to 256 experts, k <= n_expert (an expert left untaken) */
        if (!moe || !glu || !a->route_w)
            return fail(why, wn, "route_logits: for an MoE gate/up (GLU) launch with ids and route_w to write");
        if (a->n_expert > orc_moe_route::ROUTE_FAST_MAX_EXPERTS || a->k > a->n_expert)
            return fail(why, wn, "route_logits: n_expert %d (<= %d), k %d (<= n_expert)", (int)a->n_expert,
                        orc_moe_route::ROUTE_FAST_MAX_EXPERTS, (int)a->k);
        if (a->route_kind != ORC_ROUTER_SOFTMAX_TOPK && a->route_kind != ORC_ROUTER_TOPK_SOFTMAX)
            return fail(why, wn, "route_logits: unknown router kind %d", (int)a->route_kind);
    }

    if (a->pdl_role < ORC_GEMV_PDL_NEXT || a->pdl_role > ORC_GEMV_PDL_SIBLING || (moe && a->pdl_role != ORC_GEMV_PDL_NEXT))
        return fail(why, wn, "pdl_role %d: must be ORC_GEMV_PDL_NEXT, _FIRST or _SIBLING (MoE: NEXT)", (int)a->pdl_role);
    if (a->n_more < 0 || a->n_more > ORC_GEMV_MAX_MORE)
        return fail(why, wn, "n_more = %d stacked matrices: must be 0..%d", (int)a->n_more, ORC_GEMV_MAX_MORE);
    int64_t rows_all = a->rows;
    if (a->n_more > 0) {
        if (glu || moe || a->res)
            return fail(why, wn, "stacked matrices (n_more = %d) are for plain products: no w_up, ids or res",
                        (int)a->n_more);
        for (int i = 0; i < a->n_more; i++) {
            if (!a->more_w[i] || !a->more_y[i] || (uintptr_t)a->more_w[i] % 16 != 0)
                return fail(why, wn, "stacked matrix %d: NULL or not 16-byte aligned weights / output", i + 1);
            if (a->more_rows[i] < 1 || a->more_rows[i] > (1 << 30) || a->more_y_stride[i] < a->more_rows[i])
                return fail(why, wn, "stacked matrix %d: rows %lld (1..2^30), y stride %lld (>= rows)", i + 1,
                            (long long)a->more_rows[i], (long long)a->more_y_stride[i]);
            rows_all += a->more_rows[i];
        }
        if (rows_all > (1 << 30)) return fail(why, wn, "stacked matrices: %lld rows in all (> 2^30)", (long long)rows_all);
    }

    kparams &kp = pl->kp;
    kp = kparams{};
    kp.nseg = 1 + a->n_more;
    kp.seg_end[0] = a->rows;
    kp.seg_w[0] = static_cast<const uint8_t *>(a->w);
    kp.seg_y[0] = a->y;
    kp.seg_ystride[0] = a->y_stride;
    kp.seg_bias[0] = a->bias;
    for (int i = 0; i < a->n_more; i++) {
        kp.seg_end[i + 1] = kp.seg_end[i] + a->more_rows[i];
        kp.seg_w[i + 1] = static_cast<const uint8_t *>(a->more_w[i]);
        kp.seg_y[i + 1] = a->more_y[i];
        kp.seg_ystride[i + 1] = a->more_y_stride[i];
        kp.seg_bias[i + 1] = a->more_bias[i];
    }
    kp.w0 = static_cast<const uint8_t *>(a->w);
    kp.w1 = glu ? static_cast<const uint8_t *>(a->w_up) : kp.w0;
    kp.rows = rows_all;
    kp.row_bytes = row_bytes;
    kp.expert_stride = moe ? a->expert_stride : 0;
    kp.x = a->x;
    kp.x_stride = a->x_stride;
    kp.y = a->y;
    kp.y_stride = a->y_stride;
    kp.bias0 = a->bias;
    kp.bias1 = a->bias_up;
    kp.bias_estride = moe ? a->bias_expert_stride : 0;
    kp.res = a->res;
    kp.res_stride = a->res_stride;
    kp.norm_w = a->norm_w;
    kp.eps = a->norm_eps;
    kp.ids = a->ids;
    kp.ids_stride = moe ? a->ids_stride : 0;
    kp.route_logits = a->route_logits;
    kp.route_kind = a->route_kind;
    kp.route_norm = a->route_norm;
    kp.route_w = a->route_w;
    kp.k = moe ? a->k : 1;
    kp.n_expert = moe ? a->n_expert : 1;
    kp.cols = (int)a->cols;
    kp.act = a->act;
    kp.x_vec = (uintptr_t)a->x % 16 == 0 && a->x_stride % 4 == 0;
    kp.nw_vec = (uintptr_t)a->norm_w % 16 == 0;
    kp.pdl_role = a->pdl_role;

    pl->glu = glu;
    pl->nt = moe ? 1 : a->n;
    kp.xq = a->x_int16 && ti->qi && pl->nt == 1;
    pl->jobs = moe ? a->n * a->k : 1;
    kp.nvec = moe ? a->n * a->k : a->n;

    /* The column split (a function of the shape only: results are the same whatever the
     * device). Split while x's slice does not fit in shared memory, or while there are too
     * few row-slices (kFillRowSlices, kFillWide above) and the slices would keep >= 32 LUs. */
    const int64_t n_lu = a->cols / ti->bs * ti->lpb;
    const int64_t rows_total = rows_all * pl->jobs;
    int64_t S = 1, L = n_lu, S_eff = 1, lpr = 32, np_max = 1;
    for (;;) {
        L = cdiv(n_lu, S);
        L = L >= 32 ? cdiv(L, 32) * 32 : cdiv(L, ti->lpb) * ti->lpb;
        S_eff = cdiv(n_lu, L);
        lpr = ti->lpb;
        while (lpr < 32 && lpr < L) lpr *= 2;
        np_max = cdiv(L, lpr);
        const bool fits = (int64_t)pl->nt * np_max * lpr * ti->e <= kMaxXFloats;
        const bool few = rows_total * S_eff < rule.rows;
        const bool wide = rows_total * S_eff < rule.wide && a->cols / (2 * S) >= rule.wide_cols;
        if (fits && ((!few && !wide) || cdiv(n_lu, 2 * S) < 32 || S >= 64)) break;
        if (S >= n_lu) break; /* one block per slice: always fits (8 x 256 floats) */
        S *= 2;
    }
    kp.S = (int)S_eff;
    kp.L = (int)L;
    kp.n_lu = (int)n_lu;
    int lg = 0;
    while ((1 << lg) < lpr) lg++;
    kp.lpr_log2 = lg;
    kp.np_max = (int)np_max;
    const int rw = (32 / (int)lpr) * (glu ? 2 : 4); /* rows per row group: cfg<>::R per subgroup */
    pl->n_tasks_max = cdiv(rows_all, rw);
    pl->n_tasks_half = pl->nt == 1 ? cdiv(rows_all, rw / 2) : 0;
    pl->half_rule = pl->nt == 1 ? rule.half : kHalfNone;
    if ((pl->n_tasks_half > pl->n_tasks_max ? pl->n_tasks_half : pl->n_tasks_max) * np_max >= (int64_t)1 << 30)
        return fail(why, wn, "%lld rows x %lld columns: too many steps for one warp", (long long)rows_all,
                    (long long)a->cols);
    pl->scratch = S_eff > 1 ? kCounterBytes + (size_t)S_eff * kp.nvec * (glu ? 2 : 1) * rows_all * sizeof(float) : 0;
    return 0;
}

/* The split-K scratch's parts (kCounterWords in gemv_kernel.cuh): counters, then partial sums. */
inline void bind_scratch(plan *pl, void *scratch) {
    pl->kp.counters = static_cast<unsigned *>(scratch);
    pl->kp.partial = reinterpret_cast<float *>(static_cast<uint8_t *>(scratch) + kCounterBytes);
}

} /* namespace orc_gv */

#endif /* ORC_GEMV_PLAN_CUH */
