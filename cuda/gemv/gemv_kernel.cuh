/* gemv_kernel.cuh - the GEMV kernel template behind orc_launch_gemv (gemv.cuh), included
 * by the per-type files (gemv_legacy.cu, gemv_kquant.cu, ...) that instantiate it, and by
 * gemv.cu (the plan and the dispatch).
 *
 * Work decomposition (docs/perf_kernels.md has the reasoning and numbers):
 *   - A lane unit (LU) is E elements of one block that one lane decodes (gemv_decode.cuh).
 *     A row is n_lu = cols / BS * LPB LUs; the columns may be split into S slices of L LUs
 *     (grid.y), each slice's partial sums combined in slice order by the last block to finish.
 *   - A warp splits into 32 / LPR subgroups of LPR lanes (LPR = 4..32, a power of two
 *     chosen from L so that short rows keep lanes busy); each subgroup owns R rows (R = 1
 *     for n = 1, else 2, so each x value loaded feeds several rows) of each matrix (two for
 *     GLU: gate and up). One step = one "piece" of LPR LUs of each of those rows: lane li
 *     decodes LU li of the piece.
 *   - Pieces are copied global -> shared with 16-byte cp.async into a per-warp ring of
 *     STAGES slots, STAGES - 1 steps ahead of the decoding; a warp's steps run over all the
 *     row groups it owns (grid-stride), so the ring stays full across row groups. Warps never
 *     synchronize with each other after the prologue.
 *   - The block first stages its slice of x (RMSNorm applied) in shared memory in the
 *     order lanes consume it ([token][piece][group][lane], float4), so that the lanes of a
 *     subgroup read consecutive 16-byte words (no bank conflicts) and the subgroups of a
 *     warp read the same ones (broadcast).
 *   - At the last piece of a row group: butterfly reduction over the subgroup's lanes,
 *     then the epilogue (bias, activation, residual) or the partial-sum store.
 */
#ifndef ORC_GEMV_KERNEL_CUH
#define ORC_GEMV_KERNEL_CUH

#include <math.h>
#include <stdint.h>

#include "gemv/gemv.cuh"
#include "gemv/gemv_decode.cuh"
#include "kernels/glu_act.cuh" /* orc_glu_act */
#include "kernels/moe_route_warp.cuh" /* route_warp: the router's top-k in the launch */
#include "runtime/simt.cuh" /* orc_cp16 & co., ORC_SHARED_ARRAY: also emulated on the host */

namespace orc_gv {

constexpr int kWarps = 8;
constexpr int kThreads = 32 * kWarps;
constexpr int kMaxXFloats = 16384; /* shared memory for the staged x slice: 64 KiB */
constexpr int U = 1;               /* pieces (of LPR lane units) per pipeline step */
/* Split-K scratch: kCounterWords counters (zero at rest: the caller zero-fills the scratch
 * once, each launch's combining blocks reset theirs), then the slices' partial sums. The
 * launcher keeps jobs x gridDim.x within the counters. */
constexpr int kCounterWords = 16384;
constexpr size_t kCounterBytes = kCounterWords * sizeof(unsigned);

/* Per (NT, GLU) compile-time shape: M matrices (gate, up), R rows per subgroup and
 * matrix, NR = R * M = 4 rows decoded per lane and step. Four rows share each x value a
 * lane loads from shared memory: with one row per lane, x alone would need 4 bytes of
 * shared-memory bandwidth per weight (~31 TB/s at the H200's HBM rate for Q4_K, about
 * the whole of it). ACC2: two accumulators per output when there would be fewer than 4
 * FMA chains. The ring depth (stages, ST - 1 steps in flight while one is decoded) is a
 * separate template parameter: the launcher picks it from the shared memory it leaves
 * (stage_choices); it moves bytes only, so it never changes a result. */
template <int NT, bool GLU, bool HALF = false>
struct cfg {
    static constexpr int M = GLU ? 2 : 1;
    static constexpr int R = HALF ? 2 / M : 4 / M;
    static constexpr int NR = R * M;
    static constexpr bool ACC2 = 4 * NT < 4; /* the full-size cfg's NR * NT < 4 (NR = 4): never, HALF or not */
};

/* HALF (one token; launch_xq chooses by plan::half_rule): half the rows per subgroup (gate/up: one
 * row of each; plain: two), so twice the row groups. Each row's sum is the same whatever its group
 * (a lane accumulates its LUs of that row in step order, then the subgroup's butterfly): HALF moves
 * work, never a result. It pays where the full-size row groups cannot give every resident warp one
 * (the 0.5B shape's products, gpt-oss-20b's attention ones: device runs 34-35) and costs where they
 * can (more x loads and reductions a weight; 80 registers for three blocks an SM). Rules: a
 * percentage P > 0 of a wave's warps (kHalfRows in gemv_plan.cuh), or one of these. */
enum half_rows { kHalfNone = 0, kHalfGlu = -1, kHalfAll = -2 };

/* Ring depths instantiated: one token (decode) has the registers and shared memory for up
 * to 4 stages (3 steps in flight); more tokens keep 2 (their x slice takes the room). */
template <int NT>
constexpr int max_stages() { return NT == 1 ? 4 : 2; }

/* Blocks per SM the register allocation must allow: 2 (at most 128 registers) for one token,
 * unless the type's decoder state is too large for that (Q::BIG: Q3_K, Q5_K, Q6_K would spill);
 * 1 (255 registers) otherwise. One block of 8 warps still keeps 40+ KB in flight per SM. */
ORC_GV_FLAG(is_big, BIG)
template <class Q, int NT, bool HALF = false>
constexpr int min_blocks() { return NT != 1 ? 1 : HALF ? (is_big<Q>::value ? 2 : 3) : (is_big<Q>::value ? 1 : 2); }

/* Does the type have the factored form (gemv_decode.cuh: Q::FACT, group_q, sub_scale, sub_min)?
 * One token only: per sub-block sum(q x) accumulators (and, with a min, each LU's two
 * sub-block sums of x staged beside x). Saves the per-weight scale multiply (~1 of ~6
 * instructions a weight). Q4_K, Q6_K, Q8_0: the types of the files people run most. */
ORC_GV_FLAG(is_fact, FACT)
template <class Q, int NT>
constexpr bool factored() { return NT == 1 && is_fact<Q>::value; }

/* Factored for the integer form only (Q::FACT_INT: Q4_0, Q5_0, MXFP4, IQ4_NL): their float form keeps the
 * per-weight product (the factored float form was measured only on Q4_K, Q6_K, Q8_0). */
ORC_GV_FLAG(fact_int_only, FACT_INT)

/* The factored form with a min term (Q4_K): it needs each LU's two sub-block sums of x. */
ORC_GV_FLAG(has_fmin, FMIN)
template <class Q, int NT>
constexpr bool factored_min() { return factored<Q, NT>() && has_fmin<Q>::value; }

/* Bytes after x's slice holding those sums: float2 [np][LPR], 16-aligned (FMIN types have 2 sub-blocks). */
template <class Q, int NT>
__host__ __device__ inline int xsum_bytes(int np_max, int lpr) {
    return factored_min<Q, NT>() ? (np_max * lpr * 8 + 15) / 16 * 16 : 0;
}

/* The integer form (kparams::xq, the XQ kernels; gemv.cuh says what it computes): one token,
 * types with Q::QI (Q4_0, Q5_0, Q4_K, Q6_K, Q8_0, MXFP4, IQ4_NL). x is staged as int16 words, 16 columns
 * (4 groups of an LU) to one power-of-two scale, and each group's 4 products are two dp2a
 * instructions instead of ~8 float conversions and 4 FMAs. */
ORC_GV_FLAG(has_qi, QI)
template <class Q, int NT>
constexpr bool int16x() { return factored<Q, NT>() && has_qi<Q>::value; }

/* One 16-column block of the int16 x: x ~ xi * dx, dx a power of two (0 for an all-zero block,
 * NaN if the block holds a NaN or an infinity), sum = the sum of its 16 xi. */
struct xblock {
    float dx;
    int sum;
};

/* Bytes of the staged x slice: float4 [NT][np][G][LPR], or (XQ) uint2 [np][G][LPR] of int16
 * pairs and then xblock [np][G / 4][LPR]; both multiples of 16. */
template <class Q, int NT, bool XQ>
__host__ __device__ inline int x_area_bytes(int np_max, int lpr) {
    return XQ ? np_max * Q::G * lpr * 8 + np_max * (Q::G / 4) * lpr * 8 : NT * np_max * Q::G * lpr * 16;
}

/* Bytes of one ring slot holding nblk blocks of TS bytes: the 16-byte chunks from the
 * first block's chunk start (up to 15 bytes early) to past its end, and room for the
 * decoders' realigning reads (up to 4 bytes past the last byte). */
__host__ __device__ constexpr int piece_bytes(int ts, int nblk) { return (nblk * ts + 46 + 15) / 16 * 16; }

/* What a launch needs on the device side; filled by make_plan (gemv_plan.cuh). */
struct kparams {
    const uint8_t *w0, *w1;   /* gate/plain and up matrices (expert 0) */
    int64_t rows, row_bytes;  /* row stride in bytes */
    int64_t expert_stride;    /* bytes */
    const float *x;
    int64_t x_stride;
    float *y;
    int64_t y_stride;
    const float *bias0, *bias1;
    int64_t bias_estride;
    const float *res;
    int64_t res_stride;
    const float *norm_w;
    float eps;
    const int32_t *ids;
    int64_t ids_stride;
    int k, n_expert;
    const float *route_logits; /* the router's top-k in the launch (gemv.cuh), else NULL */
    int route_kind, route_norm;
    float *route_w;
    float *partial;           /* [S][nvec][M][rows] when S > 1 (bind_scratch) */
    unsigned *counters;       /* [jobs][gridDim.x] slices done, zero between launches (S > 1) */
    /* stacked matrices (nseg > 1, plain products): matrix i holds rows [seg_end[i-1], seg_end[i])
     * of the launch (rows = seg_end[nseg-1]); nseg = 1: w0, y, bias0 */
    int nseg;
    int64_t seg_end[3];
    const uint8_t *seg_w[3];
    float *seg_y[3];
    int64_t seg_ystride[3];
    const float *seg_bias[3];
    int cols, act, S, L, n_lu, lpr_log2, np_max, nvec;
    int x_vec, nw_vec;        /* x rows / norm_w can be read as float4 */
    int exact;                /* 1: the per-weight form even where the type has the factored one */
    int xq;                   /* 1: the integer form (int16 x; one token, Q::QI types, not exact) */
    int pdl_role;             /* ORC_GEMV_PDL_* (gemv.cuh) */
};

/* The host-side plan of one launch (gemv_plan.cuh). */
struct plan {
    kparams kp;
    int nt, jobs, glu;
    int64_t n_tasks_max; /* row groups (for the grid) */
    int64_t n_tasks_half; /* ... of the HALF kernels (cfg; one token, else 0) */
    int half_rule;        /* shape_rule::half (gemv_plan.cuh): which launches run them */
    size_t scratch;
};

/* ---- device helpers --------------------------------------------------------------- */

__device__ __forceinline__ float4 load4(const float *p, int vec) {
    if (vec) return __ldg(reinterpret_cast<const float4 *>(p));
    return make_float4(__ldg(p), __ldg(p + 1), __ldg(p + 2), __ldg(p + 3));
}

/* x' of 4 columns from col of x row xr: x, or (norm_w) (x * inv_rms) * norm_w, in that order. */
__device__ __forceinline__ float4 x_prime4(const kparams &p, const float *xr, int col, float ir) {
    float4 v = load4(xr + col, p.x_vec);
    if (p.norm_w) {
        const float4 nw = load4(p.norm_w + col, p.nw_vec);
        v.x = __fmul_rn(__fmul_rn(v.x, ir), nw.x);
        v.y = __fmul_rn(__fmul_rn(v.y, ir), nw.y);
        v.z = __fmul_rn(__fmul_rn(v.z, ir), nw.z);
        v.w = __fmul_rn(__fmul_rn(v.w, ir), nw.w);
    }
    return v;
}

/* acc += w . x over 4 columns; ACC2: alternate columns into two accumulators (shorter chains). */
template <bool ACC2>
__device__ __forceinline__ void fma4(float2 &acc, const orc_gv_f4 &w, const float4 &x) {
    if (ACC2) {
        acc.x = __fmaf_rn(w.x, x.x, acc.x);
        acc.y = __fmaf_rn(w.y, x.y, acc.y);
        acc.x = __fmaf_rn(w.z, x.z, acc.x);
        acc.y = __fmaf_rn(w.w, x.w, acc.y);
    } else {
        acc.x = __fmaf_rn(w.x, x.x, acc.x);
        acc.x = __fmaf_rn(w.y, x.y, acc.x);
        acc.x = __fmaf_rn(w.z, x.z, acc.x);
        acc.x = __fmaf_rn(w.w, x.w, acc.x);
    }
}

static_assert((int)ORC_GEMV_ACT_SILU == (int)ORC_ACT_SILU && (int)ORC_GEMV_ACT_GELU_TANH == (int)ORC_ACT_GELU_TANH &&
                  (int)ORC_GEMV_ACT_SWIGLU_OAI == (int)ORC_ACT_SWIGLU_OAI,
              "the GEMV's activations are kernels/glu_act.cuh's");

/* The epilogue of output vector o, row r: bias, activation (GLU), residual; NaN for an
 * expert id out of range. b0/b1 are this vector's (expert's) biases. */
/* The stacked matrix (kparams::nseg) that launch row r belongs to. */
__device__ __forceinline__ int seg_of(const kparams &p, int64_t r) {
    return (r >= p.seg_end[0]) + (p.nseg > 2 && r >= p.seg_end[1]);
}

template <bool GLU>
__device__ __forceinline__ void store_out(const kparams &p, int64_t o, int64_t r, float g, float u,
                                          const float *b0, const float *b1, bool bad) {
    float *y = p.y;
    int64_t ys = p.y_stride;
    if (!GLU && p.nseg > 1) { /* a stacked matrix's own output (no residual there) */
        const int sg = seg_of(p, r);
        if (sg > 0) r -= p.seg_end[sg - 1];
        y = p.seg_y[sg];
        ys = p.seg_ystride[sg];
        b0 = p.seg_bias[sg];
    }
    float out;
    if (bad) {
        out = __int_as_float(0x7fc00000);
    } else if (GLU) {
        if (b0) g = __fadd_rn(g, b0[r]);
        if (b1) u = __fadd_rn(u, b1[r]);
        out = orc_glu_act(p.act, g, u);
    } else {
        out = b0 ? __fadd_rn(g, b0[r]) : g;
    }
    if (p.res) out = __fadd_rn(out, p.res[o * p.res_stride + r]);
    y[o * ys + r] = out;
}

/* The expert of output vector o (MoE) and whether it is out of range: ids[t][j] (o = t k + j), or
 * sel[j], the block's own ranking of its token's router logits (route_logits). */
__device__ __forceinline__ int expert_of(const kparams &p, int64_t o, const int32_t *sel, bool *bad) {
    const int64_t t = o / p.k;
    const int e = sel ? sel[o - t * p.k] : p.ids[t * p.ids_stride + (o - t * p.k)];
    *bad = e < 0 || e >= p.n_expert;
    return e;
}

/* The router's top-k (route_logits) of output vector job's token, by warp 0 into sel / sel_w; of
 * each token's blocks, the first one (row group 0, slice 0, slot 0) stores them to ids and route_w
 * for the launches after this one (the down product, the weighted sum). After orc_pdl_wait (the
 * router wrote the logits); every thread calls it (a barrier inside). route_warp<8> serves every
 * n_expert <= 256 with the bits of the top-k launch's route_warp<P> (lanes past n_expert hold no
 * expert and add nothing). */
__device__ __forceinline__ void route_in_launch(const kparams &p, int job, int32_t *sel, float *sel_w) {
    const int64_t t = job / p.k;
    if (threadIdx.x < 32)
        orc_moe_route::route_warp<8>(p.route_logits + t * p.n_expert, p.n_expert, p.k, p.route_kind,
                                     p.route_norm != 0, sel, sel_w);
    __syncthreads();
    if (blockIdx.x == 0 && blockIdx.y == 0 && job % p.k == 0 && (int)threadIdx.x < p.k) {
        const_cast<int32_t *>(p.ids)[t * p.ids_stride + threadIdx.x] = sel[threadIdx.x];
        p.route_w[t * p.k + threadIdx.x] = sel_w[threadIdx.x];
    }
}

/* y[o][r] = epilogue(sum of the slices' partial sums, in slice order). */
template <bool GLU>
__device__ __forceinline__ void combine_one(const kparams &p, int64_t o, int64_t r, const int32_t *sel) {
    constexpr int M = GLU ? 2 : 1;
    const float *b0 = p.bias0, *b1 = p.bias1;
    bool bad = false;
    if (p.ids) {
        const int e = expert_of(p, o, sel, &bad);
        if (!bad) {
            if (b0) b0 += (int64_t)e * p.bias_estride;
            if (b1) b1 += (int64_t)e * p.bias_estride;
        }
    }
    const int64_t slice = (int64_t)p.nvec * M * p.rows;
    const float *q = p.partial + o * M * p.rows + r;
    float g = orc_ldcg(q), u = GLU ? orc_ldcg(q + p.rows) : 0.0f;
    for (int s = 1; s < p.S; s++) {
        q += slice;
        g = __fadd_rn(g, orc_ldcg(q));
        if (GLU) u = __fadd_rn(u, orc_ldcg(q + p.rows));
    }
    store_out<GLU>(p, o, r, g, u, b0, b1, bad);
}

/* Split-K, inside the kernel: the blocks of every slice at (blockIdx.x, job) own the same row
 * groups; the last of them to finish combines those rows (the same sums whichever block is
 * last, so no combine launch and no change of result) and resets the count for the next launch. */
template <bool GLU>
__device__ __forceinline__ void slices_done(const kparams &p, int job, int RW, const int32_t *sel) {
    if (!orc_block_is_last(p.counters + (int64_t)job * gridDim.x + blockIdx.x, (unsigned)p.S)) return;
    const int64_t span = (int64_t)kWarps * RW, step = (int64_t)gridDim.x * span; /* rows of a round */
    const int nv = p.ids ? 1 : p.nvec;
    for (int64_t r0 = (int64_t)blockIdx.x * span; r0 < p.rows; r0 += step)
        for (int64_t i = threadIdx.x; i < span * nv; i += kThreads) {
            const int64_t r = r0 + i % span, o = p.ids ? (int64_t)job : i / span;
            if (r < p.rows) combine_one<GLU>(p, o, r, sel);
        }
}

/* ---- the kernel ---------------------------------------------------------------------- */

/* grid (row-group blocks, S slices, jobs); jobs = 1 (NT tokens) or n * k (MoE, NT = 1). */
template <class Q, int NT, bool GLU, int ST, bool XQ = false, bool HALF = false>
__global__ void __launch_bounds__(kThreads, min_blocks<Q, NT, HALF>()) orc_gemv_kernel(const kparams p) {
    static_assert(!XQ || int16x<Q, NT>(), "the integer form is for one token on the QI types");
    static_assert(!HALF || NT == 1, "HALF row groups are for one token");
    using C = cfg<NT, GLU, HALF>;
    constexpr int M = C::M, R = C::R, NR = C::NR;
    constexpr int G = Q::G, LPB = Q::LPB, TS = Q::TS;
    ORC_EXTERN_SHARED(float4, orc_gv_smem);
    ORC_SHARED_ARRAY(float, inv_rms, NT);
    ORC_SHARED_ARRAY(float, red, kWarps * NT);

    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int s = blockIdx.y;
    const int job = blockIdx.z;
    const int lu_begin = s * p.L;
    const int lu_end = min(lu_begin + p.L, p.n_lu);
    const int lg = p.lpr_log2, LPR = 1 << lg;
    const int np = (lu_end - lu_begin + LPR - 1) >> lg;

    /* Programmatic dependent launch (launch_st; pdl_role in gemv.cuh): the next grid may start
     * as this one's blocks leave; this grid reads nothing a previous kernel wrote (x, res, ids,
     * y) before orc_pdl_wait: only the weights, which no kernel writes, are fetched earlier. A
     * FIRST launch lets the next start only once x is complete (below), a SIBLING reads x at
     * once and waits at its end. */
    if (p.pdl_role != ORC_GEMV_PDL_FIRST) orc_pdl_trigger();
    if (p.ids) orc_pdl_wait(); /* MoE: the router's ids choose the weights (never a sibling) */
    const int32_t *sel = nullptr;
    if constexpr (GLU) {
        ORC_SHARED_ARRAY(int32_t, route_sel, 32);
        ORC_SHARED_ARRAY(float, route_sel_w, 32);
        if (p.route_logits) { /* the router's top-k here, not in a launch of its own */
            route_in_launch(p, job, route_sel, route_sel_w);
            sel = route_sel;
        }
    }

    /* The job: its x rows, matrices and biases. */
    const float *xb = p.x;
    const uint8_t *w0 = p.w0, *w1 = p.w1;
    const float *b0 = p.bias0, *b1 = p.bias1;
    bool bad = false;
    if (p.ids) {
        const int e = expert_of(p, job, sel, &bad);
        xb += (int64_t)(job / p.k) * p.x_stride;
        if (!bad) {
            w0 += (int64_t)e * p.expert_stride;
            if (GLU) w1 += (int64_t)e * p.expert_stride;
            if (b0) b0 += (int64_t)e * p.bias_estride;
            if (b1) b1 += (int64_t)e * p.bias_estride;
        }
    }


    float4 *xs = orc_gv_smem; /* x's slice, then the warps' rings */
    const int SG = 32 >> lg;              /* subgroups per warp */
    const int sub = lane >> lg, li = lane & (LPR - 1);
    const int RW = SG * R;                /* rows per row group (per matrix) */
    const int64_t n_tasks = (p.rows + RW - 1) / RW;
    const int64_t wg = (int64_t)blockIdx.x * kWarps + warp, wstride = (int64_t)gridDim.x * kWarps;
    const bool has_work = wg < n_tasks; /* warp-uniform; a warp without rows still stages x */
    const int my_tasks = has_work ? (int)((n_tasks - 1 - wg) / wstride + 1) : 0;
    const int nsteps = (np + U - 1) / U; /* steps per row group: U pieces each */
    const int total = my_tasks * nsteps; /* the plan keeps this below 2^30 */
    const int nbp = LPR / LPB;           /* blocks in a piece */
    const int sbytes = U * nbp * TS;     /* bytes of a full step's blocks in one row */
    const int PB = piece_bytes(TS, U * nbp);
    const int slot_bytes = SG * NR * PB; /* one ring stage of the warp */
    uint2 *xq = reinterpret_cast<uint2 *>(orc_gv_smem);                        /* XQ: x's int16 pairs */
    xblock *xbk = reinterpret_cast<xblock *>(xq + p.np_max * G * LPR);         /* XQ: their blocks */
    float2 *xsum = reinterpret_cast<float2 *>(reinterpret_cast<uint8_t *>(orc_gv_smem) +
                                              x_area_bytes<Q, NT, XQ>(p.np_max, LPR)); /* factored_min<Q, NT>() only */
    uint8_t *ring = reinterpret_cast<uint8_t *>(xsum) + xsum_bytes<Q, NT>(p.np_max, LPR) +
                    (size_t)warp * ST * slot_bytes + sub * NR * PB;
    /* XQ kernels run only without ORC_GEMV_EXACT (the launcher's rule): no per-weight path in them */
    const bool fact = XQ || (factored<Q, NT>() && !p.exact && !fact_int_only<Q>::value);
    const int64_t slice_boff = (int64_t)(lu_begin / LPB) * TS; /* the slice's first block in a row */
    const int part = li & (LPB - 1), lane_boff = (li / LPB) * TS; /* this lane's LU in a piece */
    const int nl = lu_end - lu_begin;                              /* LUs in the slice */
    const int last_bytes = (nl - (nsteps - 1) * U * LPR) / LPB * TS; /* the last step's, per row */
    const uint8_t *mbase[2] = {w0, w1};

    /* Row group ti of this subgroup: each row's slice start (NULL past the last row) and
     * whether it is the matrix's last row. */
    auto rows_of = [&](int ti, const uint8_t **rp, bool *last) {
        const int64_t r0 = (wg + (int64_t)ti * wstride) * RW + sub * R;
#pragma unroll
        for (int rr = 0; rr < R; rr++) {
            const int64_t r = r0 + rr;
            if (!GLU && p.nseg > 1) { /* stacked: the row's own matrix */
                const int sg = seg_of(p, r);
                const int64_t r_in = sg > 0 ? r - p.seg_end[sg - 1] : r;
                rp[rr] = r < p.rows ? p.seg_w[sg] + r_in * p.row_bytes + slice_boff : nullptr;
                last[rr] = r == p.seg_end[sg] - 1;
                continue;
            }
#pragma unroll
            for (int m = 0; m < M; m++) {
                rp[rr * M + m] = r < p.rows ? mbase[m] + r * p.row_bytes + slice_boff : nullptr;
                last[rr * M + m] = r == p.rows - 1;
            }
        }
    };

    /* Issue the copies of step (ti, sp) into ring stage `stage`, then commit a group
     * (always, so that wait_group counts steps). A step's bytes are copied as the 16-byte
     * chunks that hold them; only on the matrix's last row can the last chunk run past the
     * end, and there it is zero-filled past the step's bytes. */
    const uint8_t *ia[NR];
    bool ilast[NR];
    auto issue = [&](int ti, int sp, int stage) {
        if (ti < my_tasks && !bad) {
            if (sp == 0) rows_of(ti, ia, ilast);
            const int64_t boff = (int64_t)sp * sbytes;
            const uint32_t nbytes = (uint32_t)(sp == nsteps - 1 ? last_bytes : sbytes);
#pragma unroll
            for (int j = 0; j < NR; j++) {
                if (!ia[j]) continue;
                const uint8_t *a = ia[j] + boff;
                const uint32_t mis = (uint32_t)(uintptr_t)a & 15u;
                const uint32_t bytes = mis + nbytes; /* from the first chunk to the step's end */
                const int nch = (int)((bytes + 15u) >> 4);
                if (li >= nch) continue;
                const uint8_t *src = a - mis + 16 * li;
                uint8_t *dst = ring + stage * slot_bytes + j * PB + 16 * li;
                if (ilast[j] && (bytes & 15u) != 0) {
                    for (int c = li; c < nch; c += LPR, src += 16 * LPR, dst += 16 * LPR)
                        orc_cp16(dst, src, c == nch - 1 ? bytes & 15u : 16u);
                } else {
                    for (int c = li; c < nch; c += LPR, src += 16 * LPR, dst += 16 * LPR) orc_cp16(dst, src, 16u);
                }
            }
        }
        orc_cp_commit();
    };

    float2 acc[NR][NT];
#pragma unroll
    for (int j = 0; j < NR; j++)
#pragma unroll
        for (int t = 0; t < NT; t++) acc[j][t] = make_float2(0.0f, 0.0f);

    /* Decode step (ti, sp) from ring stage `stage` and accumulate: LU u * LPR + li of the
     * step for u < U. Only the low bits of the rows' addresses matter here (the step's
     * misalignment in the ring). Rows past the last are decoded from stale shared memory
     * and never stored. */
    uint32_t cpos[NR];
    auto compute = [&](int ti, int sp, int stage) {
        if (sp == 0) {
            const uint8_t *rp[NR];
            bool last[NR];
            rows_of(ti, rp, last);
#pragma unroll
            for (int j = 0; j < NR; j++) cpos[j] = (uint32_t)(uintptr_t)rp[j];
        } else {
#pragma unroll
            for (int j = 0; j < NR; j++) cpos[j] += (uint32_t)sbytes;
        }
        if (bad) return;
        const uint8_t *slot = ring + stage * slot_bytes + lane_boff;
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int q = sp * U + u; /* the piece */
            if ((q << lg) + li >= nl) break;
            typename Q::st st[NR];
#pragma unroll
            for (int j = 0; j < NR; j++) Q::prepare(st[j], slot + j * PB + (cpos[j] & 15u) + u * nbp * TS, part);
            const float4 *xp = xs + ((q * G) << lg) + li;
            if constexpr (factored<Q, NT>()) {
                if (fact) { /* sum(w x) = scale * sum(q x) (- min * sum(x)), per sub-block */
                    constexpr int NS = Q::NSUB;
                    static_assert(G % NS == 0 && (!has_fmin<Q>::value || NS == 2), "sub-blocks of whole groups");
                    float sq[NR][NS];
#pragma unroll
                    for (int j = 0; j < NR; j++)
#pragma unroll
                        for (int k = 0; k < NS; k++) sq[j][k] = 0.0f;
                    if constexpr (XQ) { /* per 16-column x block: exact int32 sum(q xi), then dx * that */
                        constexpr int NXB = G / 4, XPS = NXB / NS; /* x blocks per LU, per sub-block */
                        static_assert(NXB % NS == 0, "x blocks inside sub-blocks");
                        const uint2 *xqp = xq + ((q * G) << lg) + li;
                        const xblock *xbp = xbk + ((q * NXB) << lg) + li;
#pragma unroll
                        for (int m = 0; m < NXB; m++) {
                            const xblock b = xbp[m << lg];
                            const int init = -(int)Q::QI_OFF * b.sum; /* sum((q - off) xi) */
                            int ai[NR];
#pragma unroll
                            for (int j = 0; j < NR; j++) ai[j] = init;
#pragma unroll
                            for (int kk = 0; kk < 4; kk++) {
                                const uint2 xv = xqp[(4 * m + kk) << lg];
#pragma unroll
                                for (int j = 0; j < NR; j++) {
                                    const uint32_t w = Q::group_qi(st[j], 4 * m + kk);
                                    ai[j] = orc_dp2a_lo<(bool)Q::QI_U8>(xv.x, w, ai[j]);
                                    ai[j] = orc_dp2a_hi<(bool)Q::QI_U8>(xv.y, w, ai[j]);
                                }
                            }
#pragma unroll
                            for (int j = 0; j < NR; j++) /* dx a power of two: dx * (float)ai is exact */
                                sq[j][m / XPS] = __fmaf_rn(b.dx, (float)ai[j], sq[j][m / XPS]);
                        }
                    } else {
#pragma unroll
                        for (int g = 0; g < G; g++) {
                            const int k = g / (G / NS);
                            const float4 xv = xp[g << lg];
#pragma unroll
                            for (int j = 0; j < NR; j++) {
                                const orc_gv_f4 qv = Q::group_q(st[j], g);
                                sq[j][k] = __fmaf_rn(qv.x, xv.x, sq[j][k]);
                                sq[j][k] = __fmaf_rn(qv.y, xv.y, sq[j][k]);
                                sq[j][k] = __fmaf_rn(qv.z, xv.z, sq[j][k]);
                                sq[j][k] = __fmaf_rn(qv.w, xv.w, sq[j][k]);
                            }
                        }
                    }
                    float xsm[2] = {0.0f, 0.0f};
                    if constexpr (has_fmin<Q>::value) {
                        const float2 v = xsum[(q << lg) + li];
                        xsm[0] = v.x, xsm[1] = v.y;
                    }
#pragma unroll
                    for (int j = 0; j < NR; j++) {
                        float a = acc[j][0].x;
#pragma unroll
                        for (int k = 0; k < NS; k++) {
                            a = __fmaf_rn(Q::sub_scale(st[j], k), sq[j][k], a);
                            if constexpr (has_fmin<Q>::value) a = __fmaf_rn(-Q::sub_min(st[j], k), xsm[k & 1], a);
                        }
                        acc[j][0].x = a;
                    }
                    continue;
                }
            }
            if constexpr (!XQ) { /* the per-weight form (the XQ kernels have only the integer one) */
#pragma unroll
                for (int g = 0; g < G; g++) {
                    if (NT <= 4) { /* the group's x for every token, then row by row */
                        float4 xv[NT];
#pragma unroll
                        for (int t = 0; t < NT; t++) xv[t] = xp[((t * np * G) + g) << lg];
#pragma unroll
                        for (int j = 0; j < NR; j++) {
                            const orc_gv_f4 wv = Q::group(st[j], g);
#pragma unroll
                            for (int t = 0; t < NT; t++) fma4<C::ACC2>(acc[j][t], wv, xv[t]);
                        }
                    } else { /* many tokens: every row's weights, then x token by token (fewer registers) */
                        orc_gv_f4 wv[NR];
#pragma unroll
                        for (int j = 0; j < NR; j++) wv[j] = Q::group(st[j], g);
#pragma unroll
                        for (int t = 0; t < NT; t++) {
                            const float4 xv = xp[((t * np * G) + g) << lg];
#pragma unroll
                            for (int j = 0; j < NR; j++) fma4<C::ACC2>(acc[j][t], wv[j], xv);
                        }
                    }
                    /* Several tokens: keep the next group's x loads after this group's FMAs,
                     * or the scheduler hoists them all and runs out of registers. */
                    if (NT > 1) asm volatile("" ::: "memory");
                }
            }
        }
    };

    /* The row group's sums: reduce over the subgroup's lanes, store, reset. */
    auto finish = [&](int ti) {
        const int64_t r0 = (wg + (int64_t)ti * wstride) * RW + sub * R;
        float v[NR][NT];
#pragma unroll
        for (int j = 0; j < NR; j++)
#pragma unroll
            for (int t = 0; t < NT; t++) {
                v[j][t] = C::ACC2 ? __fadd_rn(acc[j][t].x, acc[j][t].y) : acc[j][t].x;
                acc[j][t] = make_float2(0.0f, 0.0f);
            }
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) {
            if (off >= LPR) continue; /* uniform: stay within the subgroup */
#pragma unroll
            for (int j = 0; j < NR; j++)
#pragma unroll
                for (int t = 0; t < NT; t++) v[j][t] = __fadd_rn(v[j][t], __shfl_xor_sync(0xffffffffu, v[j][t], off));
        }
        /* Every lane of the subgroup now holds all R * NT sums (per matrix); lane li stores
         * outputs li, li + LPR, ..., picked with predicated moves, so that the store path runs
         * once for all lanes instead of once per output. */
#pragma unroll 1
        for (int idx = li; idx < R * NT; idx += LPR) { /* one pass unless LPR < R * NT */
            float g = 0.0f, u = 0.0f;
#pragma unroll
            for (int rr = 0; rr < R; rr++)
#pragma unroll
                for (int t = 0; t < NT; t++)
                    if (rr * NT + t == idx) {
                        g = v[rr * M][t];
                        if (GLU) u = v[rr * M + M - 1][t];
                    }
            const int rr = idx / NT, t = idx - rr * NT;
            const int64_t r = r0 + rr;
            if (r >= p.rows) continue;
            const int64_t o = p.ids ? (int64_t)job : (int64_t)t;
            if (p.S == 1) {
                store_out<GLU>(p, o, r, g, u, b0, b1, bad);
            } else {
                const float nan = __int_as_float(0x7fc00000);
                float *q = p.partial + (((int64_t)s * p.nvec + o) * M) * p.rows + r;
                q[0] = bad ? nan : g;
                if (GLU) q[p.rows] = bad ? nan : u;
            }
        }
    };

    /* The pipeline: the issue cursor runs ST - 1 steps ahead of the compute cursor. */
    auto advance = [&](int &ti, int &sp, int &stg) {
        if (++sp == nsteps) {
            sp = 0;
            ++ti;
        }
        if (++stg == ST) stg = 0;
    };
    int ti_i = 0, sp_i = 0, st_i = 0;
    if (has_work) { /* the weights' first steps are on their way while x is staged */
#pragma unroll
        for (int i = 0; i < ST - 1; i++) {
            issue(ti_i, sp_i, st_i);
            advance(ti_i, sp_i, st_i);
        }
    }
    if (!p.ids && p.pdl_role != ORC_GEMV_PDL_SIBLING) orc_pdl_wait(); /* from here on, the previous kernels' outputs */
    if (p.pdl_role == ORC_GEMV_PDL_FIRST) orc_pdl_trigger(); /* x is complete: a sibling may read it */

    /* Prologue 1: inv_rms of each token over the whole row (the same sum, in the same
     * order, in every block). */
    if (p.norm_w) {
        float ss[NT];
#pragma unroll
        for (int t = 0; t < NT; t++) ss[t] = 0.0f;
        for (int c = 4 * threadIdx.x; c < p.cols; c += 4 * kThreads) {
#pragma unroll
            for (int t = 0; t < NT; t++) {
                const float4 v = load4(xb + t * p.x_stride + c, p.x_vec);
                ss[t] = __fmaf_rn(v.x, v.x, ss[t]);
                ss[t] = __fmaf_rn(v.y, v.y, ss[t]);
                ss[t] = __fmaf_rn(v.z, v.z, ss[t]);
                ss[t] = __fmaf_rn(v.w, v.w, ss[t]);
            }
        }
#pragma unroll
        for (int t = 0; t < NT; t++) {
#pragma unroll
            for (int off = 16; off > 0; off >>= 1) ss[t] += __shfl_xor_sync(0xffffffffu, ss[t], off);
            if (lane == 0) red[warp * NT + t] = ss[t];
        }
        __syncthreads();
        if (threadIdx.x < NT) {
            float a = red[threadIdx.x];
#pragma unroll
            for (int w = 1; w < kWarps; w++) a = __fadd_rn(a, red[w * NT + threadIdx.x]);
            inv_rms[threadIdx.x] =
                __fdiv_rn(1.0f, __fsqrt_rn(__fadd_rn(__fdiv_rn(a, (float)p.cols), p.eps)));
        }
        __syncthreads();
    }

    /* Prologue 2: the slice of x (normalized), float4 [NT][np][G][LPR]; XQ: as int16 words. */
    if constexpr (XQ) {
        /* One thread per 16-column block (groups 4m..4m+3 of an LU): x' = the normalized x as
         * below, amax = max |x'|, e its frexp exponent (amax = f 2^e, f in [0.5, 1)), dx = 2^(e-15),
         * xi = rint(x' / dx) (exact scaling; |x' / dx| < 2^15, clamped to 32767). NaN or inf in
         * the block: dx = NaN (the outputs become NaN); all zero: dx = 0. */
        constexpr int NXB = G / 4;
        const int nblk = np * NXB * LPR;
        for (int i = threadIdx.x; i < nblk; i += kThreads) {
            const int li = i & (LPR - 1);
            const int rest = i >> lg;
            const int m = rest % NXB, pp = rest / NXB;
            const int u = lu_begin + (pp << lg) + li;
            float v[16];
#pragma unroll
            for (int kk = 0; kk < 4; kk++) {
                float4 a = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
                if (u < lu_end)
                    a = x_prime4(p, xb, (u / LPB) * Q::BS + Q::col(u % LPB, 4 * m + kk), p.norm_w ? inv_rms[0] : 1.0f);
                v[4 * kk] = a.x, v[4 * kk + 1] = a.y, v[4 * kk + 2] = a.z, v[4 * kk + 3] = a.w;
            }
            float amax = 0.0f;
            bool finite = true;
#pragma unroll
            for (int c = 0; c < 16; c++) {
                const float av = fabsf(v[c]);
                finite = finite && av <= 3.402823466e38f; /* false for NaN */
                amax = av > amax ? av : amax;
            }
            xblock b = {0.0f, 0};
            uint32_t wd[8];
            if (!finite || amax == 0.0f) {
                b.dx = finite ? 0.0f : __int_as_float(0x7fc00000);
#pragma unroll
                for (int c = 0; c < 8; c++) wd[c] = 0u;
            } else {
                int e = 0;
                (void)frexpf(amax, &e);
#pragma unroll
                for (int c = 0; c < 8; c++) {
                    int h[2];
#pragma unroll
                    for (int z = 0; z < 2; z++) {
                        float t = rintf(ldexpf(v[2 * c + z], 15 - e));
                        t = t > 32767.0f ? 32767.0f : (t < -32767.0f ? -32767.0f : t);
                        h[z] = (int)t;
                        b.sum += h[z];
                    }
                    wd[c] = ((uint32_t)h[0] & 0xFFFFu) | ((uint32_t)h[1] << 16);
                }
                b.dx = ldexpf(1.0f, e - 15);
            }
#pragma unroll
            for (int kk = 0; kk < 4; kk++) {
                uint2 w2;
                w2.x = wd[2 * kk], w2.y = wd[2 * kk + 1];
                xq[((pp * G + 4 * m + kk) << lg) + li] = w2;
            }
            xbk[((pp * NXB + m) << lg) + li] = b;
        }
    } else {
        const int total4 = NT * np * G * LPR;
        for (int i = threadIdx.x; i < total4; i += kThreads) {
            const int li = i & (LPR - 1);
            int rest = i >> lg;
            const int g = rest % G;
            rest /= G;
            const int pp = rest % np, t = rest / np;
            const int u = lu_begin + (pp << lg) + li;
            float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            if (u < lu_end)
                v = x_prime4(p, xb + t * p.x_stride, (u / LPB) * Q::BS + Q::col(u % LPB, g), p.norm_w ? inv_rms[t] : 1.0f);
            xs[i] = v;
        }
    }
    __syncthreads(); /* the last block-wide barrier: warps run independently from here */
    if (factored_min<Q, NT>() && !p.exact) { /* each LU's two sub-block sums of x, in a fixed order */
        for (int i = threadIdx.x; i < np * LPR; i += kThreads) {
            const int pp = i >> lg, l = i & (LPR - 1);
            float s0 = 0.0f, s1 = 0.0f;
            if constexpr (XQ) { /* of the int16 x: dx * sum exact (a power of two times < 2^20) */
                constexpr int NXB = G / 4;
#pragma unroll
                for (int m = 0; m < NXB; m++) {
                    const xblock b = xbk[((pp * NXB + m) << lg) + l];
                    const float t = __fmul_rn(b.dx, (float)b.sum);
                    if (m < NXB / 2)
                        s0 = __fadd_rn(s0, t);
                    else
                        s1 = __fadd_rn(s1, t);
                }
            } else {
#pragma unroll
                for (int g = 0; g < G; g++) {
                    const float4 v = xs[((pp * G + g) << lg) + l];
                    const float t = __fadd_rn(__fadd_rn(v.x, v.y), __fadd_rn(v.z, v.w));
                    if (g < G / 2)
                        s0 = __fadd_rn(s0, t);
                    else
                        s1 = __fadd_rn(s1, t);
                }
            }
            xsum[i] = make_float2(s0, s1);
        }
        __syncthreads();
    }
    if (has_work) {
        int ti = 0, sp = 0, stg = 0;
        for (int f = 0; f < total; f++) {
            issue(ti_i, sp_i, st_i); /* into the stage computed in the previous step */
            advance(ti_i, sp_i, st_i);
            orc_cp_wait<ST - 1>(); /* this thread's copies of step f have landed ... */
            __syncwarp();      /* ... and so have the other lanes' */
            compute(ti, sp, stg);
            if (sp == nsteps - 1) finish(ti);
            __syncwarp(); /* every lane is done with stage stg before it is refilled */
            advance(ti, sp, stg);
        }
        orc_cp_wait<0>();
    }
    if (p.S > 1) slices_done<GLU>(p, job, RW, sel);
    if (p.pdl_role == ORC_GEMV_PDL_SIBLING) orc_pdl_wait(); /* done only once the launch beside it is */
}

/* Dynamic shared memory of a launch: the x slice, then the warps' rings. */
template <class Q, int NT, bool GLU, bool XQ = false, bool HALF = false>
size_t smem_bytes(const kparams &kp, int stages) {
    using C = cfg<NT, GLU, HALF>;
    const int lpr = 1 << kp.lpr_log2;
    const size_t xs = (size_t)x_area_bytes<Q, NT, XQ>(kp.np_max, lpr) + xsum_bytes<Q, NT>(kp.np_max, lpr);
    const size_t ring = (size_t)kWarps * stages * (32 / lpr) * C::NR * piece_bytes(Q::TS, U * lpr / Q::LPB);
    return xs + ring;
}

#ifndef ORC_SIMT_EMU /* the emulator runs the kernels itself */
} /* namespace orc_gv */
#include <atomic>

#include "runtime/launch.cuh" /* orc_launch_dependent */
namespace orc_gv {


/* ---- the per-type launcher ------------------------------------------------------------ */

/* What the grid size needs to know, queried once (per device: orc_device_facts, launch.cuh; per
 * kernel and device: kernel_facts) so that launches inside a CUDA-graph capture make no runtime
 * queries but cudaGetDevice. */
using dev_facts = orc_dev_facts;

/* ORC_GEMV_STAGES=2..4 (read once; 0: unset): the ring depth for every launch that can have it,
 * for benchmarks (tools/device_profile.sh runs bench_kernels.py under each); results do not depend on it. gemv.cu. */
int stages_override();
/* ORC_GEMV_PER_SM=N (read once; 0: unset): at most N blocks of a launch an SM, which leaves room
 * for the next kernel's blocks to start their weight prefetch (programmatic dependent launch)
 * while this one runs; for measuring. Results do not depend on it (the grid never changes a
 * sum's order). gemv.cu. */
int per_sm_override();
/* ORC_GEMV_EXACT=1 (read once): every weight multiplied as its exact dequantized value, also where
 * the type has the factored form; for comparing the two. gemv.cu. */
int exact_override();
/* ORC_GEMV_X16=1 / 0 (read once): the integer form (gemv.cuh) on every launch that can have it /
 * on none, whatever each asked with x_int16; -1 unset. For measuring the forms. gemv.cu. */
int x16_override();

/* This instantiation: allowed all the shared memory the device has (once per device), and its
 * registers per thread. */
template <class Q, int NT, bool GLU, int ST, bool XQ, bool HALF>
cudaError_t kernel_facts(int *regs) {
    static std::atomic<int> nregs[64];
    int dev = 0;
    cudaError_t e = cudaGetDevice(&dev);
    if (e != cudaSuccess) return e;
    std::atomic<int> &slot = nregs[dev & 63];
    int r = slot.load(std::memory_order_acquire);
    if (r == 0) {
        dev_facts f;
        cudaFuncAttributes fa;
        if ((e = orc_device_facts(&f)) != cudaSuccess) return e;
        /* The dynamic limit plus the kernel's static shared memory may not exceed the opt-in maximum. */
        if ((e = cudaFuncGetAttributes(&fa, orc_gemv_kernel<Q, NT, GLU, ST, XQ, HALF>)) != cudaSuccess) return e;
        e = cudaFuncSetAttribute(orc_gemv_kernel<Q, NT, GLU, ST, XQ, HALF>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 f.optin - (int)fa.sharedSizeBytes);
        if (e != cudaSuccess) return e;
        r = fa.numRegs > 0 ? fa.numRegs : 255;
        slot.store(r, std::memory_order_release);
    }
    *regs = r;
    return cudaSuccess;
}

/* One ring depth's launch geometry: resident blocks per SM (shared memory with its 1 KiB
 * reserve, registers, 2048 threads) and the grid (one wave of them, capped by the row groups:
 * each warp loops over row groups, and fewer blocks stage fewer copies of x). */
struct geometry {
    size_t smem;
    int per_sm;     /* 0: does not fit */
    int64_t gx;
    int64_t resident; /* blocks on the busiest SM: the choice */
};

template <class Q, int NT, bool GLU, int ST, bool XQ, bool HALF>
cudaError_t geometry_of(const plan &pl, const dev_facts &f, geometry *g) {
    int regs = 0;
    cudaError_t e = kernel_facts<Q, NT, GLU, ST, XQ, HALF>(&regs);
    if (e != cudaSuccess) {
        (void)cudaGetLastError(); /* a failed attribute call leaves a sticky error for the next launch */
        return e;
    }
    g->smem = smem_bytes<Q, NT, GLU, XQ, HALF>(pl.kp, ST);
    g->per_sm = 0;
    g->gx = 0;
    g->resident = 0;
    if (g->smem + 1024 > (size_t)f.optin) return cudaSuccess;
    int per_sm = 2048 / kThreads;
    const int by_smem = f.smem_per_sm / (int)(g->smem + 1024), by_regs = f.regs_per_sm / (((regs + 7) / 8 * 8) * kThreads);
    per_sm = by_smem < per_sm ? by_smem : per_sm;
    per_sm = by_regs < per_sm ? by_regs : per_sm;
    const int cap = per_sm_override();
    if (cap > 0 && cap < per_sm) per_sm = cap;
    if (per_sm < 1) return cudaSuccess;
    const int64_t per_job = (int64_t)pl.kp.S * pl.jobs;
    int64_t gx = ((int64_t)per_sm * f.nsm + per_job - 1) / per_job;
    const int64_t need = (pl.n_tasks_max + kWarps - 1) / kWarps;
    if (gx > need) gx = need;
    if (pl.kp.S > 1 && gx * pl.jobs > kCounterWords) gx = kCounterWords / pl.jobs; /* a count per block */
    if (gx < 1) gx = 1;
    const int64_t blocks = gx * per_job, on_busiest = (blocks + f.nsm - 1) / f.nsm;
    g->per_sm = per_sm;
    g->gx = gx;
    g->resident = on_busiest < per_sm ? on_busiest : per_sm;
    return cudaSuccess;
}

/* Launched as a programmatic dependent of the previous kernel on the stream (runtime/launch.cuh):
 * its launch and weight prefetch overlap that kernel's tail. */
template <class Q, int NT, bool GLU, int ST, bool XQ, bool HALF>
cudaError_t launch_st(const plan &pl, const geometry &g, cudaStream_t s) {
    const dim3 grid((unsigned)g.gx, (unsigned)pl.kp.S, (unsigned)pl.jobs);
    return orc_launch_dependent(orc_gemv_kernel<Q, NT, GLU, ST, XQ, HALF>, grid, dim3(kThreads), g.smem, s, pl.kp);
}

/* The ring depth: the deepest that keeps as many blocks on the busiest SM as any depth does
 * (the kernel is bound by instruction issue where it has work for every SM, so warps come
 * first; a small grid has the room for deeper rings for free), unless ORC_GEMV_STAGES says
 * otherwise. Measured in docs/perf.md (device run 8 of 2026-12-02). */
template <class Q, int NT, bool GLU, bool XQ, bool HALF>
cudaError_t launch_ring(const plan &pl, const dev_facts &f, cudaStream_t s) {
    cudaError_t e = cudaSuccess;
    constexpr int SMAX = max_stages<NT>();
    geometry g[5] = {};
    if ((e = geometry_of<Q, NT, GLU, 2, XQ, HALF>(pl, f, &g[2])) != cudaSuccess) return e;
    if (SMAX >= 3 && (e = geometry_of<Q, NT, GLU, SMAX >= 3 ? 3 : 2, XQ, HALF>(pl, f, &g[3])) != cudaSuccess) return e;
    if (SMAX >= 4 && (e = geometry_of<Q, NT, GLU, SMAX >= 4 ? 4 : 2, XQ, HALF>(pl, f, &g[4])) != cudaSuccess) return e;
    int best = 2;
    for (int st = 3; st <= SMAX; st++)
        if (g[st].per_sm > 0 && g[st].resident >= g[best].resident) best = st;
    const int forced = stages_override();
    if (forced >= 2 && forced <= SMAX && g[forced].per_sm > 0) best = forced;
    if (g[best].per_sm == 0) return cudaErrorInvalidConfiguration; /* cannot happen for the plan's shapes */
    switch (best) {
    case 4: return launch_st<Q, NT, GLU, SMAX >= 4 ? 4 : 2, XQ, HALF>(pl, g[best], s);
    case 3: return launch_st<Q, NT, GLU, SMAX >= 3 ? 3 : 2, XQ, HALF>(pl, g[best], s);
    default: return launch_st<Q, NT, GLU, 2, XQ, HALF>(pl, g[best], s);
    }
}

/* The HALF kernels where the plan's rule asks for them (one token only; kHalfRows in gemv_plan.cuh):
 * a percentage compares the row groups with the warps one wave of the full-size kernel holds. */
template <class Q, bool GLU, bool XQ>
cudaError_t wants_half(const plan &pl, const dev_facts &f, bool *half) {
    *half = pl.half_rule == kHalfAll || (pl.half_rule == kHalfGlu && GLU);
    if (pl.half_rule <= 0) return cudaSuccess;
    geometry g{};
    const cudaError_t e = geometry_of<Q, 1, GLU, 2, XQ, false>(pl, f, &g);
    if (e != cudaSuccess) return e;
    const int64_t groups = pl.n_tasks_max * pl.kp.S * pl.jobs, warps = (int64_t)g.per_sm * f.nsm * kWarps;
    *half = groups * 100 < (int64_t)pl.half_rule * warps;
    return cudaSuccess;
}

template <class Q, int NT, bool GLU, bool XQ>
cudaError_t launch_xq(const plan &pl, cudaStream_t s) {
    dev_facts f;
    cudaError_t e = orc_device_facts(&f);
    if (e != cudaSuccess) return e;
    if constexpr (NT == 1) {
        bool half = false;
        if ((e = wants_half<Q, GLU, XQ>(pl, f, &half)) != cudaSuccess) return e;
        if (half) {
            plan ph = pl;
            ph.n_tasks_max = pl.n_tasks_half;
            return launch_ring<Q, NT, GLU, XQ, true>(ph, f, s);
        }
    }
    return launch_ring<Q, NT, GLU, XQ, false>(pl, f, s);
}

/* The integer form where the plan asks for it (make_plan sets kp.xq only for one token on the QI types). */
template <class Q, int NT, bool GLU>
cudaError_t launch_nt(const plan &pl, cudaStream_t s) {
    if constexpr (int16x<Q, NT>())
        if (pl.kp.xq) return launch_xq<Q, NT, GLU, true>(pl, s);
    return launch_xq<Q, NT, GLU, false>(pl, s);
}

template <class Q, bool GLU>
cudaError_t launch_glu(const plan &pl, cudaStream_t s) {
    switch (pl.nt) {
    case 1: return launch_nt<Q, 1, GLU>(pl, s);
    case 2: return launch_nt<Q, 2, GLU>(pl, s);
    case 3: return launch_nt<Q, 3, GLU>(pl, s);
    case 4: return launch_nt<Q, 4, GLU>(pl, s);
    case 5: return launch_nt<Q, 5, GLU>(pl, s);
    case 6: return launch_nt<Q, 6, GLU>(pl, s);
    case 7: return launch_nt<Q, 7, GLU>(pl, s);
    case 8: return launch_nt<Q, 8, GLU>(pl, s);
    default: return cudaErrorInvalidValue;
    }
}

template <class Q>
cudaError_t launch(const plan &pl, cudaStream_t s) {
    return pl.glu ? launch_glu<Q, true>(pl, s) : launch_glu<Q, false>(pl, s);
}

/* One launcher per type, defined by the per-type files. */
#define ORC_GV_DECLARE(NAME) cudaError_t launch_##NAME(const plan &pl, cudaStream_t s);
ORC_GV_FOREACH_TYPE(ORC_GV_DECLARE)
#undef ORC_GV_DECLARE

#endif /* ORC_SIMT_EMU */

} /* namespace orc_gv */

#endif /* ORC_GEMV_KERNEL_CUH */
