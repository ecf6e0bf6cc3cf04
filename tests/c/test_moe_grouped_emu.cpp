/* test_moe_grouped_emu.cpp - the grouped expert products run on the host SIMT emulator: the tile
 * kernel (cuda/kernels/moe_grouped_kernel.cuh) and the pipelined one (moe_mma_kernel.cuh: cp.async
 * deferred to its wait, ldmatrix and mma.sync in the PTX fragment layouts), on the same cases,
 * each against float64 sums of the same float16-rounded operands: weights decoded by
 * quant_decode.h and rounded to float16, inputs rounded to float16 (the pipelined kernel gets them
 * gathered in sort order, as moe_gather writes them), so only the float32 accumulation differs:
 * NMSE <= 1e-10 per case and kernel. Types with 256-element blocks (Q4_K, Q6_K: a piece lasts four
 * steps) and 32-element ones (Q8_0, Q5_0, MXFP4: rows not 16-byte aligned, each row's piece at its
 * own offset in its slot), with and without the type (dequant_fast.cuh's decoders or
 * quant_decode.h's), partial row tiles, an expert with more slots than a tile, an unused expert,
 * an expert bias, the last row ending at the tensor's last byte (the emulator checks every
 * cp.async source against the weights' exact bytes), empty tiles (0 slots: nothing read or
 * written). Every output written (NaN poison); the pipelined kernel's blocks run in both orders.
 * Its GLU mode (gate and up rows in one block, the activation in its epilogue, float16 out in sort
 * order) against its plain products through the same activation, bit for bit. Compiled and run by tests/test_gpu_kernels.py;
 * prints "ok" or the failures. */
#define ORC_SIMT_EMU 1
#include "simt_emu.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <string>
#include <vector>

#include "kernels/moe_rows.cuh"
#include "kernels/moe_grouped_kernel.cuh"
#include "kernels/moe_mma_kernel.cuh"

#define EMU_SEED 0x3C6EF372FE94F82Bull
#include "emu_random.h"

using namespace orc_moe_mma;
static_assert(orc_moe_grouped::GN == BN, "both kernels take the host's tiles");

static int failures = 0;
static void fail(const std::string &m) {
    if (failures++ < 20) printf("FAIL %s\n", m.c_str());
}

static void put_f16(uint8_t *p, float v) {
    const uint16_t h = orc_qd_f2h(v);
    memcpy(p, &h, 2);
}

/* Random blocks of a type whose scales are finite and moderate: random bytes, then the scale
 * fields set (Q4_K: d, dmin at 0 and 2; Q6_K: d at 208; Q8_0 / Q5_0: d at 0; MXFP4: e at 0). */
static void random_block(const char *label, uint8_t *b, int ts) {
    const std::string t(label, strcspn(label, " ")); /* the type: the label's first word */
    const char *type = t.c_str();
    for (int i = 0; i < ts; i++) b[i] = (uint8_t)(rnd() >> 32);
    const float d = (float)(0.01 + 0.02 * unif());
    if (!strcmp(type, "Q4_K")) {
        put_f16(b, d);
        put_f16(b + 2, 0.5f * d);
    } else if (!strcmp(type, "Q6_K")) {
        put_f16(b + 208, d);
    } else if (!strcmp(type, "MXFP4")) {
        b[0] = (uint8_t)(120 + rnd() % 8);
    } else {
        put_f16(b, d);
    }
}

template <class ROW>
static void run(const char *type, int64_t rows_per, int64_t cols, bool per_slot) {
    char lb[120];
    snprintf(lb, sizeof lb, "%s rows %lld cols %lld per_slot %d", type, (long long)rows_per, (long long)cols,
             (int)per_slot);
    const std::string label = lb;
    const int n_expert = 5, n_tok = 37, k = 3, slots = n_tok * k;
    const int64_t row_bytes = cols / ROW::BS * ROW::TS, w_bytes = n_expert * rows_per * row_bytes;
    /* the weights, in a buffer of exactly their bytes (rounded up to aligned_alloc's 16) */
    uint8_t *w = static_cast<uint8_t *>(aligned_alloc(16, (size_t)(w_bytes + 15) / 16 * 16));
    for (int64_t b = 0; b < w_bytes / ROW::TS; b++) random_block(type, w + b * ROW::TS, ROW::TS);
    const int64_t x_rows = per_slot ? slots : n_tok;
    float *x = static_cast<float *>(aligned_alloc(16, (size_t)(x_rows * cols * 4 + 15) / 16 * 16));
    for (int64_t i = 0; i < x_rows * cols; i++) x[i] = gauss();
    /* an expert bias on the cases with inputs per slot (as gpt-oss's down product has) */
    std::vector<float> bias;
    if (per_slot)
        for (int64_t i = 0; i < n_expert * rows_per; i++) bias.push_back(gauss());
    const float *bp = bias.empty() ? nullptr : bias.data();
    /* ids: expert 3 unused, expert 0 taking more than a tile's slots */
    std::vector<int32_t> ids(slots);
    for (int s = 0; s < slots; s++) {
        const int r = (int)(rnd() % 10);
        ids[s] = r < 7 ? 0 : (r == 7 ? 1 : (r == 8 ? 2 : 4));
    }
    /* the host's grouping (backend_cuda.cu): stable order by expert, tiles of <= BN slots */
    std::vector<int32_t> order(slots), tiles;
    std::vector<int> start(n_expert + 1, 0);
    for (int s = 0; s < slots; s++) start[ids[s] + 1]++;
    for (int e = 0; e < n_expert; e++) start[e + 1] += start[e];
    std::vector<int> fillp(start.begin(), start.end() - 1);
    for (int s = 0; s < slots; s++) order[fillp[ids[s]]++] = s;
    for (int e = 0; e < n_expert; e++)
        for (int q = start[e]; q < start[e + 1]; q += BN) {
            tiles.push_back(e);
            tiles.push_back(q);
            tiles.push_back(std::min(BN, start[e + 1] - q));
        }
    /* two empty tiles, as the device grouping leaves past its count: their blocks must write
     * nothing and read nothing (they name an expert past the tensor and positions past the
     * inputs, which the emulator's copy checks would report) */
    for (int j = 0; j < 2; j++) {
        tiles.push_back(n_expert);
        tiles.push_back(slots);
        tiles.push_back(0);
    }
    const int n_tiles = (int)tiles.size() / 3;
    if (start[1] - start[0] <= BN) fail(label + ": the test's expert 0 fits one tile (it must not)");

    /* the inputs as moe_gather leaves them: float16, one row a slot in sort order */
    std::vector<__half> xg((size_t)slots * cols);
    for (int q = 0; q < slots; q++) {
        const int s = order[q];
        const float *xr = x + (per_slot ? s : s / k) * cols;
        for (int64_t c = 0; c < cols; c++) xg[(size_t)q * cols + c] = __float2half_rn(xr[c]);
    }
    auto plain_args = [&](const uint8_t *wt, const float *b, float *o) {
        args a{};
        a.xg = xg.data();
        a.w = wt;
        a.row_bytes = (uint64_t)row_bytes;
        a.w_bytes = (uint64_t)w_bytes;
        a.rows_per = rows_per;
        a.cols = cols;
        a.order = order.data();
        a.tiles = tiles.data();
        a.bias = b;
        a.out = o;
        return a;
    };
    /* the tile kernel, then the pipelined one in both block orders */
    std::vector<float> outs[3];
    for (int run = 0; run < 3; run++) {
        std::vector<float> out((size_t)slots * rows_per, __int_as_float(0x7fc00000));
        emu::g_errors = 0;
        emu::g_readable.clear();
        emu::g_readable.push_back({(const char *)w, (const char *)(w + w_bytes)});
        emu::g_readable.push_back({(const char *)xg.data(), (const char *)(xg.data() + xg.size())});
        if (run == 0) {
            emu::launch(dim3((unsigned)((rows_per + orc_moe_grouped::GM - 1) / orc_moe_grouped::GM), (unsigned)n_tiles),
                        dim3(orc_moe_grouped::GTHREADS), 0, [&] {
                            orc_moe_grouped::moe_grouped_kernel<ROW>(x, per_slot, k, w, (uint64_t)row_bytes, rows_per,
                                                                     cols, order.data(), tiles.data(), bp, out.data());
                        });
        } else {
            emu::g_reverse_blocks = run == 2;
            emu::launch(dim3((unsigned)((rows_per + BM - 1) / BM), (unsigned)n_tiles), dim3(THREADS), shape<ROW>::SMEM,
                        [&] { moe_mma_kernel<ROW, false>(plain_args(w, bp, out.data())); });
            emu::g_reverse_blocks = false;
        }
        if (emu::g_errors) fail(label + ": the emulator reported errors (above)");
        outs[run] = out;
    }
    if (memcmp(outs[1].data(), outs[2].data(), outs[1].size() * sizeof(float)))
        fail(label + ": the blocks' order changed the pipelined kernel's result");

    /* The GLU mode: the gate (w, bias bp) and up (w_up, its own bias) products of a block's rows
     * meet in shared memory and leave as float16(act(gate, up)) in sort order. It must equal the
     * plain kernel's two products through the same activation, bit for bit, in both block orders. */
    {
        uint8_t *w_up = static_cast<uint8_t *>(aligned_alloc(16, (size_t)(w_bytes + 15) / 16 * 16));
        for (int64_t b = 0; b < w_bytes / ROW::TS; b++) random_block(type, w_up + b * ROW::TS, ROW::TS);
        std::vector<float> bias_up;
        for (int64_t i = 0; i < n_expert * rows_per; i++) bias_up.push_back(gauss());
        const int act = per_slot ? ORC_ACT_SWIGLU_OAI : (rows_per % 2 ? ORC_ACT_GELU_TANH : ORC_ACT_SILU);
        emu::g_errors = 0;
        emu::g_readable.clear();
        emu::g_readable.push_back({(const char *)w, (const char *)(w + w_bytes)});
        emu::g_readable.push_back({(const char *)w_up, (const char *)(w_up + w_bytes)});
        emu::g_readable.push_back({(const char *)xg.data(), (const char *)(xg.data() + xg.size())});
        std::vector<float> up((size_t)slots * rows_per, __int_as_float(0x7fc00000));
        emu::launch(dim3((unsigned)((rows_per + BM - 1) / BM), (unsigned)n_tiles), dim3(THREADS), shape<ROW>::SMEM,
                    [&] { moe_mma_kernel<ROW, false>(plain_args(w_up, bias_up.data(), up.data())); });
        std::vector<__half> glu[2];
        for (int rev = 0; rev < 2; rev++) {
            glu[rev].assign((size_t)slots * rows_per, __half{0x7e00}); /* NaN: unwritten */
            args a = plain_args(w, bp, nullptr);
            a.w_up = w_up;
            a.bias_up = bias_up.data();
            a.act = act;
            a.act_out = glu[rev].data();
            emu::g_reverse_blocks = rev == 1;
            emu::launch(dim3((unsigned)((rows_per + out_rows<true>() - 1) / out_rows<true>()), (unsigned)n_tiles),
                        dim3(THREADS), shape<ROW>::SMEM, [&] { moe_mma_kernel<ROW, true>(a); });
            emu::g_reverse_blocks = false;
        }
        if (emu::g_errors) fail(label + ", GLU: the emulator reported errors (above)");
        int bad = 0;
        for (int q = 0; q < slots && !bad; q++)
            for (int64_t r = 0; r < rows_per && !bad; r++) {
                const size_t i = (size_t)order[q] * rows_per + r, o = (size_t)q * rows_per + r;
                const uint16_t want = orc_qd_f2h(orc_glu_act(act, outs[1][i], up[i]));
                for (int rev = 0; rev < 2; rev++)
                    if (glu[rev][o].bits != want) {
                        char b[160];
                        snprintf(b, sizeof b, ", GLU (act %d, blocks %s): position %d row %lld is 0x%04x, the plain products' 0x%04x",
                                 act, rev ? "reversed" : "in order", q, (long long)r, glu[rev][o].bits, want);
                        fail(label + b);
                        bad = 1;
                        break;
                    }
            }
        free(w_up);
    }

    /* float64 over the float16-rounded operands */
    std::vector<double> wr((size_t)cols);
    const char *kname[2] = {"tile kernel", "pipelined kernel"};
    double num[2] = {0, 0}, den = 0;
    for (int e = 0; e < n_expert; e++)
        for (int64_t r = 0; r < rows_per; r++) {
            const uint8_t *row = w + ((int64_t)e * rows_per + r) * row_bytes;
            for (int64_t c8 = 0; c8 < cols / 8; c8++) {
                float y[8];
                ROW::get(row, c8, y);
                for (int q = 0; q < 8; q++) wr[c8 * 8 + q] = orc_qd_h2f(orc_qd_f2h(y[q]));
            }
            for (int s = 0; s < slots; s++) {
                if (ids[s] != e) continue;
                const float *xr = x + (per_slot ? s : s / k) * cols;
                double a = 0;
                for (int64_t c = 0; c < cols; c++) a += wr[c] * (double)orc_qd_h2f(orc_qd_f2h(xr[c]));
                if (bp) a += bp[e * rows_per + r];
                den += a * a;
                for (int kn = 0; kn < 2; kn++) {
                    const float got = outs[kn][(size_t)s * rows_per + r];
                    if (!isfinite(got)) {
                        fail(label + ", " + kname[kn] + ": output (slot " + std::to_string(s) + ", row " +
                             std::to_string(r) + ") not finite (unwritten?)");
                        goto done;
                    }
                    num[kn] += (got - a) * (got - a);
                }
            }
        }
    for (int kn = 0; kn < 2; kn++)
        if (!(den > 0 && num[kn] <= 1e-10 * den)) {
            char b[80];
            snprintf(b, sizeof b, ": NMSE %.3e", den > 0 ? num[kn] / den : -1.0);
            fail(label + ", " + kname[kn] + b);
        }
done:
    free(w);
    free(x);
}


int main() {
    /* with the ggml type: the fast decoders of dequant_fast.cuh where the type has one */
    run<block_row<256, 144, orc_qd_q4_K, ORC_TYPE_Q4_K>>("Q4_K", 96, 512, false);
    run<block_row<256, 144, orc_qd_q4_K, ORC_TYPE_Q4_K>>("Q4_K", 160, 256, true);
    run<block_row<256, 210, orc_qd_q6_K, ORC_TYPE_Q6_K>>("Q6_K", 80, 512, true);
    run<block_row<32, 34, orc_qd_q8_0, ORC_TYPE_Q8_0>>("Q8_0", 97, 192, false);
    run<block_row<32, 22, orc_qd_q5_0, ORC_TYPE_Q5_0>>("Q5_0", 70, 128, true);
    run<block_row<32, 17, orc_qd_mxfp4, ORC_TYPE_MXFP4>>("MXFP4", 150, 192, false);
    /* without: quant_decode.h's decoders */
    run<block_row<256, 144, orc_qd_q4_K>>("Q4_K generic", 96, 256, false);
    run<block_row<32, 17, orc_qd_mxfp4>>("MXFP4 generic", 70, 128, true);
    if (failures)
        printf("%d failures\n", failures);
    else
        printf("ok\n");
    return failures != 0;
}
