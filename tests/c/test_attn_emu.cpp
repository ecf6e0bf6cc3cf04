/* test_attn_emu.cpp - the flash-attention kernel (cuda/kernels/attention_flash_kernel.cuh)
 * run on the host SIMT emulator (simt_emu.h: ldmatrix and mma.sync with the PTX ISA's
 * fragment layouts, deferred cp.async), against float64 on the same rounded Q/K/V values:
 * every head size, float16 and bfloat16, GQA ratios, causal and sliding windows, softcap,
 * sinks, later chunks (pos[0] > 0), token counts around the 64-row tiles. Checks NMSE
 * (1e-5 float16, 1e-4 bfloat16), every output written (NaN poison), cp.async reads only
 * inside the caches. Compiled and run by tests/test_gpu_kernels.py; prints "ok" or the
 * failures. */
#define ORC_SIMT_EMU 1
#include "simt_emu.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <string>
#include <vector>

#include "kernels/attention_flash_kernel.cuh"

#define EMU_SEED 0x13198A2E03707344ull
#include "emu_random.h"

static int failures = 0;

struct Case {
    int n, pos0, nh, nkv, D;
    bool bf16;
    int window;
    float softcap;
    bool sinks;
    int kv_base;
};

template <typename T, int D>
static void run(const Case &c) {
    char label[200];
    snprintf(label, sizeof label, "n=%d pos0=%d heads %d/%d D=%d %s window=%d softcap=%g%s kv_base=%d", c.n, c.pos0, c.nh,
             c.nkv, D, c.bf16 ? "bf16" : "f16", c.window, (double)c.softcap, c.sinks ? " sinks" : "", c.kv_base);
    const int n_kv = c.kv_base + c.pos0 + c.n + 3, G = c.nh / c.nkv;
    auto round = [&](float v) { return c.bf16 ? orc_qd_bf2f(orc_qd_f2bf(v)) : orc_qd_h2f(orc_qd_f2h(v)); };
    auto bits = [&](float v) { return c.bf16 ? orc_qd_f2bf(v) : orc_qd_f2h(v); };
    std::vector<float> q((size_t)c.n * c.nh * D), out((size_t)c.n * c.nh * D, __int_as_float(0x7fc00000));
    std::vector<uint16_t> kc((size_t)n_kv * c.nkv * D + 8), vc((size_t)n_kv * c.nkv * D + 8);
    std::vector<double> kf(kc.size()), vf(vc.size()), qf(q.size());
    for (size_t i = 0; i < q.size(); i++) {
        q[i] = gauss();
        qf[i] = round(q[i]);
    }
    /* 16-byte aligned cache bases inside the vectors */
    uint16_t *kb = reinterpret_cast<uint16_t *>(((uintptr_t)kc.data() + 15) & ~(uintptr_t)15);
    uint16_t *vb = reinterpret_cast<uint16_t *>(((uintptr_t)vc.data() + 15) & ~(uintptr_t)15);
    const size_t ncache = (size_t)n_kv * c.nkv * D;
    for (size_t i = 0; i < ncache; i++) {
        const float a = gauss(), b = gauss();
        kb[i] = bits(a);
        vb[i] = bits(b);
        kf[i] = round(a);
        vf[i] = round(b);
    }
    std::vector<int32_t> pos(c.n), kvb(c.n, c.kv_base);
    for (int t = 0; t < c.n; t++) pos[t] = c.pos0 + t;
    std::vector<float> sinks(c.nh);
    for (float &s : sinks) s = 2.0f * gauss();
    const float scale = (c.softcap > 0 ? 8.0f : 1.0f) / sqrtf((float)D);

    orc_attn_flash_args a;
    memset(&a, 0, sizeof a);
    a.q = q.data();
    a.q_stride = (int64_t)c.nh * D;
    a.k_cache = kb;
    a.v_cache = vb;
    a.kv_dtype = c.bf16 ? ORC_DTYPE_BF16 : ORC_DTYPE_F16;
    a.k_stride = a.v_stride = (int64_t)c.nkv * D;
    a.out = out.data();
    a.out_stride = (int64_t)c.nh * D;
    a.pos = pos.data();
    a.kv_base = kvb.data();
    a.n = c.n;
    a.n_head = c.nh;
    a.n_head_kv = c.nkv;
    a.head_dim = a.head_dim_v = D;
    a.scale = scale;
    a.softcap = c.softcap;
    a.window = c.window;
    a.sinks = c.sinks ? sinks.data() : nullptr;

    emu::g_readable.clear();
    emu::g_readable.push_back({(const char *)kb, (const char *)(kb + ncache)});
    emu::g_readable.push_back({(const char *)vb, (const char *)(vb + ncache)});
    emu::g_errors = 0;
    const int64_t tiles = ((int64_t)c.n * G + orc_fa::kBQ - 1) / orc_fa::kBQ;
    emu::launch(dim3((unsigned)tiles, (unsigned)c.nkv), dim3(orc_fa::kThreads), orc_fa::fa_cfg<D>::smem,
                [&] { orc_fa::orc_attn_flash_kernel<T, D>(a); });
    if (emu::g_errors) {
        printf("FAIL %s: the emulator reported errors (above)\n", label);
        failures++;
        return;
    }
    /* float64 reference */
    double num = 0, den = 0;
    std::vector<double> s;
    for (int t = 0; t < c.n; t++) {
        const int hi = pos[t], lo = c.window > 0 ? (hi - c.window + 1 > 0 ? hi - c.window + 1 : 0) : 0;
        for (int h = 0; h < c.nh; h++) {
            const int g = h / G;
            s.assign(hi - lo + 1, 0.0);
            double m = c.sinks ? (double)sinks[h] : -INFINITY;
            for (int j = lo; j <= hi; j++) {
                double dot = 0;
                const double *kr = &kf[((size_t)(c.kv_base + j) * c.nkv + g) * D];
                for (int d = 0; d < D; d++) dot += qf[((size_t)t * c.nh + h) * D + d] * kr[d];
                double x = scale * dot;
                if (c.softcap > 0) x = c.softcap * tanh(x / c.softcap);
                s[j - lo] = x;
                m = x > m ? x : m;
            }
            double l = c.sinks ? exp((double)sinks[h] - m) : 0.0;
            for (double &x : s) l += (x = exp(x - m));
            for (int d = 0; d < D; d++) {
                double acc = 0;
                for (int j = lo; j <= hi; j++) acc += s[j - lo] * vf[((size_t)(c.kv_base + j) * c.nkv + g) * D + d];
                const double want = acc / l;
                const float got = out[((size_t)t * c.nh + h) * D + d];
                if (!isfinite(got)) {
                    if (failures++ < 20) printf("FAIL %s: out[%d][%d][%d] not finite (unwritten?)\n", label, t, h, d);
                    return;
                }
                num += (got - want) * (got - want);
                den += want * want;
            }
        }
    }
    const double tol = c.bf16 ? 1e-4 : 1e-5;
    if (!(num <= tol * den)) {
        if (failures++ < 20) printf("FAIL %s: NMSE %.3e > %.0e\n", label, num / den, tol);
    }
}

template <typename T>
static void run_t(const Case &c) {
    switch (c.D) {
    case 64: run<T, 64>(c); break;
    case 80: run<T, 80>(c); break;
    case 96: run<T, 96>(c); break;
    case 128: run<T, 128>(c); break;
    case 256: run<T, 256>(c); break;
    default: printf("FAIL no head size %d\n", c.D), failures++;
    }
}

int main() {
    const Case cases[] = {
        /* n, pos0, nh, nkv, D, bf16, window, softcap, sinks, kv_base */
        {70, 0, 4, 2, 64, false, 0, 0, false, 3},   {70, 0, 4, 2, 80, true, 0, 0, false, 3},
        {70, 0, 4, 2, 96, false, 0, 0, false, 3},   {70, 0, 4, 2, 128, true, 0, 0, false, 3},
        {40, 0, 2, 2, 256, false, 0, 0, false, 3},  {40, 0, 2, 2, 256, true, 0, 0, false, 0},
        {1, 0, 2, 1, 64, false, 0, 0, false, 1},    {1, 90, 4, 4, 128, true, 0, 0, false, 2},
        {2, 5, 8, 2, 128, false, 0, 0, false, 0},   {63, 0, 14, 2, 64, false, 0, 0, false, 5},
        {65, 33, 14, 2, 64, true, 0, 0, false, 5},  {50, 70, 8, 2, 128, false, 0, 0, false, 1},
        {100, 0, 6, 1, 96, false, 17, 0, false, 2}, {40, 60, 4, 2, 256, true, 40, 50.0f, false, 0},
        {80, 10, 4, 4, 64, false, 0, 0, true, 3},   {50, 200, 4, 2, 64, true, 64, 0, true, 7},
        {40, 0, 4, 4, 80, false, 0, 30.0f, false, 0}, {20, 130, 3, 1, 64, false, 0, 0, true, 0},
    };
    for (const Case &c : cases) {
        if (c.bf16)
            run_t<__nv_bfloat16>(c);
        else
            run_t<__half>(c);
    }
    if (failures) {
        printf("%d failures\n", failures);
        return 1;
    }
    printf("ok\n");
    return 0;
}
