/* gemv.cu - orc_launch_gemv and the rest of gemv.cuh's API: the plan (gemv_plan.cuh),
 * the per-type dispatch and the split-K combine launch. The kernels are gemv_kernel.cuh,
 * instantiated by gemv_legacy.cu, gemv_q4k.cu, gemv_q5k.cu, gemv_q6k.cu, gemv_q23k.cu,
 * gemv_iq.cu and gemv_float.cu. (The split-K combine is the kernel's own last step.) */
#include <stdlib.h> /* atoi */
#include <string.h> /* strcmp */

#include "gemv/gemv_plan.cuh" /* make_plan, info_of, the kernels */
#include "runtime/env.cuh"

namespace orc_gv {

int stages_override() {
    static std::atomic<int> v{INT_MIN};
    return orc_env_once(v, "ORC_GEMV_STAGES", [](const char *e) { return e ? atoi(e) : 0; });
}

/* A switch read once: its positive integer value, else `dflt` (unset, 0, negative or not a number). */
static int positive_env(std::atomic<int> &slot, const char *name, int dflt) {
    return orc_env_once(slot, name, [dflt](const char *e) { return e && atoi(e) > 0 ? atoi(e) : dflt; });
}

int per_sm_override() {
    static std::atomic<int> v{INT_MIN};
    return positive_env(v, "ORC_GEMV_PER_SM", 0);
}

int exact_override() {
    static std::atomic<int> v{INT_MIN};
    return orc_env_switch(v, "ORC_GEMV_EXACT", false);
}

/* ORC_GEMV_X16: 1 asks for the integer form on every launch that can have it, 0 on none
 * (for measuring the forms against each other); unset: as each launch asks (-1). */
int x16_override() {
    static std::atomic<int> v{INT_MIN};
    return orc_env_once(v, "ORC_GEMV_X16", [](const char *e) { return e && (e[0] == '0' || e[0] == '1') ? e[0] - '0' : -1; });
}

/* ORC_GEMV_FILL (kFillWide: the row-slice count wide rows are split for; 2048 turns that off),
 * ORC_GEMV_FILL_ROWS (kFillRowSlices) and ORC_GEMV_WIDE_COLS (kWideCols): the column split's rule.
 * They change the summation order, so they are for measuring, never for a run to compare.
 * ORC_GEMV_HALF_ROWS=0|glu|all|P (default kHalfRows, gemv_plan.cuh): which one-token launches run
 * the HALF kernels; that never changes a result. */
shape_rule shape_override() {
    static std::atomic<int> wide{INT_MIN}, rows{INT_MIN}, cols{INT_MIN}, half{INT_MIN};
    shape_rule f;
    f.wide = positive_env(wide, "ORC_GEMV_FILL", (int)kFillWide);
    f.rows = positive_env(rows, "ORC_GEMV_FILL_ROWS", (int)kFillRowSlices);
    f.wide_cols = positive_env(cols, "ORC_GEMV_WIDE_COLS", (int)kWideCols);
    f.half = orc_env_once(half, "ORC_GEMV_HALF_ROWS", [](const char *e) {
        if (!e) return kHalfRows;
        if (!strcmp(e, "glu")) return (int)kHalfGlu;
        if (!strcmp(e, "all")) return (int)kHalfAll;
        const int pct = atoi(e); /* 0: none; P > 0: below P% of a wave's warps */
        return pct >= 0 && (pct > 0 || !strcmp(e, "0")) ? pct : kHalfRows;
    });
    return f;
}

} /* namespace orc_gv */

bool orc_gemv_supported(int32_t ggml_type) { return orc_gv::info_of(ggml_type) != nullptr; }

bool orc_gemv_has_integer_form(int32_t ggml_type) {
    const orc_gv::type_info *t = orc_gv::info_of(ggml_type);
    return t && t->qi;
}

cudaError_t orc_gemv_check(const orc_gemv_args *a, char *why, size_t why_size) {
    orc_gv::plan pl{};
    if (a && !orc_gv::info_of(a->type)) {
        orc_gv::fail(why, why_size, "ggml type %d has no GEMV kernel (see orc_gemv_supported)", (int)a->type);
        return cudaErrorNotSupported;
    }
    return orc_gv::make_plan(a, &pl, why, why_size, orc_gv::shape_override()) == 0 ? cudaSuccess : cudaErrorInvalidValue;
}

size_t orc_gemv_scratch_bytes(const orc_gemv_args *a) {
    orc_gv::plan pl{};
    return orc_gv::make_plan(a, &pl, nullptr, 0, orc_gv::shape_override()) == 0 ? pl.scratch : 0;
}

cudaError_t orc_launch_gemv(const orc_gemv_args *a, cudaStream_t s) {
    orc_gv::plan pl{};
    orc_gemv_args args;
    if (a) {
        args = *a;
        const int x16 = orc_gv::x16_override();
        if (x16 >= 0) args.x_int16 = x16;
    }
    if (orc_gv::make_plan(a ? &args : nullptr, &pl, nullptr, 0, orc_gv::shape_override()) != 0)
        return a && !orc_gemv_supported(a->type) ? cudaErrorNotSupported : cudaErrorInvalidValue;
    pl.kp.exact = orc_gv::exact_override();
    if (pl.kp.exact) pl.kp.xq = 0;
    if (pl.scratch) {
        if (!a->scratch || a->scratch_bytes < pl.scratch) return cudaErrorInvalidValue;
        orc_gv::bind_scratch(&pl, a->scratch);
    }
    switch (a->type) {
#define ORC_GV_CASE(NAME) \
    case ORC_TYPE_##NAME: return orc_gv::launch_##NAME(pl, s);
        ORC_GV_FOREACH_TYPE(ORC_GV_CASE)
#undef ORC_GV_CASE
    default: return cudaErrorNotSupported;
    }
}
