/* moe_mma_kernel.cuh - the grouped expert product on mma.sync, pipelined: a prefill's expert
 * products over stored blocks in one launch (moe_grouped.cu has the launcher; the default where
 * it takes the type, ORC_MOE_MMA=0 turns it off: backend_cuda.cu). On runtime/simt.cuh's
 * primitives, so tests/c/test_moe_grouped_emu.cpp runs this same code on the host emulator.
 *
 * It computes what moe_grouped_kernel.cuh computes (weights decoded to float32 by quant_decode.h,
 * rounded to float16; inputs rounded to float16; float32 accumulation; outputs in slot order),
 * differently arranged, because device runs 22-28 measured that kernel at ~24 TFLOP/s: each of
 * its blocks decodes through byte loads from global memory, converts the inputs itself, and
 * waits for both before every product step, with nothing in flight.
 *
 * Here a block owns BM = 128 rows x BN = 64 slots of one expert (256 threads: 4 x 2 warps of
 * 32 x 32 outputs, m16n8k16 products, operands through ldmatrix) and walks K in steps of 64:
 *   - the rows' stored bytes arrive by 16-byte cp.async, a "piece" (max(64, block) elements of
 *     every row: four steps of a 256-element block) one piece ahead, in a ring of two;
 *   - the inputs arrive already gathered in slot order as float16 (moe_gather), one step ahead;
 *   - each step, all threads decode the step's 128 x 64 weights from shared memory into a float16
 *     tile (dequant_fast.cuh's word-wide decoders where the type has one), then all warps multiply
 *     it; the next step's copies run meanwhile.
 * Rows of 32-element types are not 16-byte aligned (MXFP4: 17 bytes a block): each row's piece
 * is copied from the 16-byte boundary below it and read at its offset in the slot.
 *
 * The GLU mode (the gate and up products of one FFN, then its activation): a block's 128 stored
 * rows are 64 rows of the gate experts and the same 64 of the up experts; the products meet in
 * shared memory after the loop and the block writes act(gate, up) as float16 in sort order, the
 * down product's input: no gate/up outputs, GLU pass or gather of the down's input. The same
 * values as the plain products, the GLU kernel and the gather (float32 products, the same
 * activation, one rounding to float16), bit for bit. */
#ifndef ORC_MOE_MMA_KERNEL_CUH
#define ORC_MOE_MMA_KERNEL_CUH

#include <stdint.h>

#ifndef ORC_SIMT_EMU
#include <cuda_fp16.h>
#endif

#include "dequant/dequant_fast.cuh" /* the whole-tile decoders */
#include "gguf/ggml_types.h"
#include "kernels/glu_act.cuh" /* orc_glu_act: the GLU mode's epilogue */
#include "runtime/simt.cuh" /* cp.async, ldmatrix, mma.sync, the shared declarations: emulated on the host */

namespace orc_moe_mma {

/* The decoder of a ggml type's chunks in the shared-memory slots: dequant_fast.cuh's where the type
 * has one (the same values in fewer instructions; its loads need what the slots give: each block at
 * its global address's alignment mod 16, and bytes readable past a piece), else the block_row's. */
template <int QT>
struct fast_decoder {
    static constexpr bool has = false;
    static __device__ __forceinline__ void get(const uint8_t *, uint32_t, float *) {}
};
#define ORC_MMA_FAST(NAME, FN)                                                                        \
    template <>                                                                                       \
    struct fast_decoder<ORC_TYPE_##NAME> {                                                            \
        static constexpr bool has = true;                                                             \
        static __device__ __forceinline__ void get(const uint8_t *b, uint32_t c, float *y) { FN(b, c, y); } \
    };
ORC_DQF_FOREACH(ORC_MMA_FAST)
#undef ORC_MMA_FAST

/* Chunk c8 (eight elements) of a row's piece at p, as float32. */
template <class ROW>
__device__ __forceinline__ void piece_chunk(const uint8_t *p, int c8, float *y) {
    if (fast_decoder<ROW::QT>::has)
        fast_decoder<ROW::QT>::get(p + (c8 * 8 / ROW::BS) * ROW::TS, (uint32_t)(c8 * 8 % ROW::BS / 8), y);
    else
        ROW::get(p, c8, y);
}

constexpr int BM = 128, BN = 64, BK = 64; /* rows, slots, depth of a step */
constexpr int THREADS = 256;
constexpr int LDS = BK + 8; /* float16 row stride of the weight and input tiles: ldmatrix's 8 rows hit 8 bank groups */

/* A stored type's staging, from its block_row reader (moe_rows.cuh: BS elements in TS bytes). */
template <class ROW>
struct shape {
    static constexpr int P = ROW::BS > BK ? ROW::BS : BK; /* elements of a row's piece */
    static constexpr int STEPS = P / BK;                  /* steps a piece lasts */
    static constexpr int PB = P / ROW::BS * ROW::TS;      /* its bytes */
    static constexpr int SB = (PB + 15 + 15) / 16 * 16;   /* a row's slot: PB from any alignment */
    static constexpr int NCH = SB / 16;                   /* 16-byte copies a row */
    static constexpr int RAW = BM * SB;                   /* one stage of the piece ring */
    static constexpr int SMEM = 2 * RAW + 2 * BN * LDS * 2 + BM * LDS * 2; /* + two input tiles, the weight tile */
    static_assert(P % ROW::BS == 0 && P % BK == 0, "pieces hold whole blocks and whole steps");
};

/* A launch's operands. tiles[3 t .. 3 t + 2] = expert, first position in sort order, slots (<= BN;
 * 0: nothing to do). xg: [slots][cols] float16 in sort order. w_bytes: one experts tensor's bytes
 * (no copy reads past it). bias, bias_up: [n_expert][rows_per] float32 added to the products, or
 * NULL. Plain: out[order[q]][rows_per] float32, slot order. GLU (the gate/up product): w the gate
 * experts, w_up the up experts (same type and shape), act_out[q][rows_per] = float16(act(gate + bias,
 * up + bias_up)) in sort order, which is the down product's xg. */
struct args {
    const __half *xg;
    const uint8_t *w, *w_up;
    uint64_t row_bytes, w_bytes;
    int64_t rows_per, cols;
    const int32_t *order, *tiles;
    const float *bias, *bias_up;
    float *out;
    __half *act_out;
    int act;
};

/* Plain: a block's BM stored rows are BM output rows. GLU: 64 rows of the gate experts then the
 * same 64 rows of the up experts, so that each output's two products meet in the block. */
template <bool GLU>
constexpr int out_rows() { return GLU ? BM / 2 : BM; }

template <class ROW, bool GLU>
__global__ void __launch_bounds__(THREADS, 2) moe_mma_kernel(const args a) {
    using S = shape<ROW>;
    constexpr int OR = out_rows<GLU>();
    constexpr int LDC = BN + 4; /* float stride of the GLU's staged products, [stored row][slot] */
    static_assert(!GLU || BM * LDC * 4 <= S::SMEM, "the GLU's products fit the freed shared memory");
    ORC_EXTERN_SHARED(unsigned char, smem);
    unsigned char *raw = smem;                                  /* [2][BM][SB]: stored bytes */
    __half *xs = reinterpret_cast<__half *>(smem + 2 * S::RAW); /* [2][BN][LDS]: inputs, a slot a row */
    __half *at = xs + 2 * BN * LDS;                             /* [BM][LDS]: this step's weights */
    const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    const int wm = warp / 2, wn = warp % 2;
    const int64_t r0 = (int64_t)blockIdx.x * OR, rows_per = a.rows_per, cols = a.cols;
    const int32_t expert = a.tiles[3 * blockIdx.y], q0 = a.tiles[3 * blockIdx.y + 1], nq = a.tiles[3 * blockIdx.y + 2];
    if (nq <= 0) return; /* an empty tile past the device grouping's count (moe_group_kernel.cuh) */
    const uint64_t ex_off = (uint64_t)expert * (uint64_t)rows_per * a.row_bytes;
    const int64_t n_steps = cols / BK;

    /* Stored row rr: output row r0 + (rr % OR) of the gate (or only) experts, or of the up ones
     * (GLU, rr >= OR). Its piece p starts at piece_src(rr, p); rows past the matrix read row 0's
     * place, copy nothing (zeros) and are never stored. */
    auto matrix = [&](int rr) { return GLU && rr >= OR ? a.w_up : a.w; };
    auto piece_src = [&](int rr, int64_t p) {
        const int64_t r = r0 + rr % OR < rows_per ? r0 + rr % OR : 0;
        return matrix(rr) + ex_off + (uint64_t)r * a.row_bytes + (uint64_t)p * S::PB;
    };
    auto copy_piece = [&](int64_t p, int stage) {
        unsigned char *dst = raw + stage * S::RAW;
        for (int c = tid; c < BM * S::NCH; c += THREADS) {
            const int rr = c / S::NCH, j = c % S::NCH;
            const uint8_t *src = reinterpret_cast<const uint8_t *>((uintptr_t)piece_src(rr, p) & ~(uintptr_t)15) + 16 * j;
            const uint8_t *end = matrix(rr) + a.w_bytes;
            const uint32_t n = r0 + rr % OR >= rows_per || src >= end ? 0u : (end - src >= 16 ? 16u : (uint32_t)(end - src));
            orc_cp16(dst + rr * S::SB + 16 * j, src, n);
        }
    };
    auto copy_x = [&](int64_t s, int stage) {
        __half *dst = xs + stage * BN * LDS;
        for (int c = tid; c < BN * (BK / 8); c += THREADS) {
            const int j = c / (BK / 8), kc = c % (BK / 8);
            const bool ok = j < nq;
            orc_cp16(dst + j * LDS + kc * 8, a.xg + (int64_t)(ok ? q0 + j : 0) * cols + s * BK + kc * 8, ok ? 16u : 0u);
        }
    };
    /* step s's 128 x 64 weights, stored bytes -> float32 (quant_decode.h) -> float16 tile */
    auto decode = [&](int64_t s, int stage) {
        const unsigned char *src = raw + stage * S::RAW;
        const int64_t p = s / S::STEPS;
        const int sub = (int)(s % S::STEPS);
        for (int c = tid; c < BM * (BK / 8); c += THREADS) {
            const int rr = c / (BK / 8), c8 = c % (BK / 8);
            const int sh = (int)((uintptr_t)piece_src(rr, p) & 15);
            float y[8];
            piece_chunk<ROW>(src + rr * S::SB + sh, sub * (BK / 8) + c8, y);
            uint4 h;
            h.x = orc_pack_f16(y[0], y[1]);
            h.y = orc_pack_f16(y[2], y[3]);
            h.z = orc_pack_f16(y[4], y[5]);
            h.w = orc_pack_f16(y[6], y[7]);
            *reinterpret_cast<uint4 *>(at + rr * LDS + 8 * c8) = h;
        }
    };

    float acc[2][4][4];
    for (int mi = 0; mi < 2; mi++)
        for (int ni = 0; ni < 4; ni++)
            for (int v = 0; v < 4; v++) acc[mi][ni][v] = 0.0f;
    const int lm = lane >> 3, lr = lane & 7; /* ldmatrix: this lane's matrix and row */

    copy_piece(0, 0);
    copy_x(0, 0);
    orc_cp_commit();
    for (int64_t s = 0; s < n_steps; s++) {
        const int64_t p = s / S::STEPS;
        orc_cp_wait<0>();
        __syncthreads(); /* step s's bytes are in for everyone; step s - 1's tiles are free */
        if (s + 1 < n_steps) copy_x(s + 1, (int)((s + 1) & 1));
        if (s % S::STEPS == 0 && (p + 1) * S::STEPS < n_steps) copy_piece(p + 1, (int)((p + 1) & 1));
        orc_cp_commit();
        decode(s, (int)(p & 1));
        __syncthreads();
        const __half *xt = xs + (s & 1) * BN * LDS;
#pragma unroll
        for (int kk = 0; kk < BK; kk += 16) {
            uint32_t fa[2][4], fb[4][2];
            for (int mi = 0; mi < 2; mi++)
                orc_ldsm_x4(at + (wm * 32 + mi * 16 + (lm & 1) * 8 + lr) * LDS + kk + (lm >> 1) * 8, fa[mi]);
            for (int nj = 0; nj < 2; nj++) {
                uint32_t r[4];
                orc_ldsm_x4(xt + (wn * 32 + nj * 16 + (lm >> 1) * 8 + lr) * LDS + kk + (lm & 1) * 8, r);
                fb[2 * nj][0] = r[0];
                fb[2 * nj][1] = r[1];
                fb[2 * nj + 1][0] = r[2];
                fb[2 * nj + 1][1] = r[3];
            }
            for (int mi = 0; mi < 2; mi++)
                for (int ni = 0; ni < 4; ni++) orc_mma_f16(acc[mi][ni], fa[mi], fb[ni][0], fb[ni][1]);
        }
    }
    /* c0..c3 = (g, 2t), (g, 2t + 1), (g + 8, 2t), (g + 8, 2t + 1) of each 16 x 8 product; stored
     * row rr's product + its bias (the gate's or the up's) */
    const int g = lane / 4, t = lane % 4;
    auto biased = [&](int rr, float v) {
        const float *b = GLU && rr >= OR ? a.bias_up : a.bias;
        return b ? v + b[(int64_t)expert * rows_per + r0 + rr % OR] : v;
    };
    if (!GLU) {
        for (int ni = 0; ni < 4; ni++)
            for (int h = 0; h < 2; h++) {
                const int j = wn * 32 + ni * 8 + 2 * t + h;
                if (j >= nq) continue;
                float *o = a.out + (int64_t)a.order[q0 + j] * rows_per + r0;
                for (int mi = 0; mi < 2; mi++)
                    for (int v = 0; v < 2; v++) {
                        const int rr = wm * 32 + mi * 16 + g + 8 * v;
                        if (r0 + rr < rows_per) o[rr] = biased(rr, acc[mi][ni][2 * v + h]);
                    }
            }
        return;
    }
    /* GLU: the products through shared memory (the copies are done: the loop's last wait), then
     * each output from its gate and up products, written in sort order, rows contiguous */
    orc_cp_wait<0>(); /* (the last step's group is empty: nothing lands in cs) */
    __syncthreads();  /* every warp is past its last ldmatrix */
    float *cs = reinterpret_cast<float *>(smem);
    for (int ni = 0; ni < 4; ni++)
        for (int h = 0; h < 2; h++)
            for (int mi = 0; mi < 2; mi++)
                for (int v = 0; v < 2; v++) {
                    const int j = wn * 32 + ni * 8 + 2 * t + h, rr = wm * 32 + mi * 16 + g + 8 * v;
                    if (j < nq && r0 + rr % OR < rows_per) cs[rr * LDC + j] = biased(rr, acc[mi][ni][2 * v + h]);
                }
    __syncthreads();
    for (int c = tid; c < OR * BN; c += THREADS) {
        const int j = c / OR, r = c % OR;
        if (j < nq && r0 + r < rows_per)
            a.act_out[(int64_t)(q0 + j) * rows_per + r0 + r] =
                __float2half_rn(orc_glu_act(a.act, cs[r * LDC + j], cs[(OR + r) * LDC + j]));
    }
}

} /* namespace orc_moe_mma */

#endif /* ORC_MOE_MMA_KERNEL_CUH */
