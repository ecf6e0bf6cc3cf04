/* test_attn_decode_emu.cpp - the decode / few-query attention kernel (cuda/kernels/
 * attention_kernel.cuh) run on the host SIMT emulator, against float64 on the same cache values
 * (float32, float16 and bfloat16 caches): head sizes 64 / 128 / 72 (the unaligned-tail path) / 36
 * (no 16-byte path), GQA ratios, several queries at later positions in their own cache rows,
 * sliding windows, softcap, sinks, unsplit and split mode (splits merged by the last block to
 * finish). Checks: NMSE <= 1e-10, every output written (NaN poison), the split counts left at
 * zero, and a launch sized for more keys than the queries see (empty splits: a graph recorded
 * for the whole cache) bit-identical to the exact one, key rows staged in shared memory
 * (dot_row_staged) bit-identical to key rows read straight from the cache; the fused rope + KV store of a one-token
 * step bit-identical to the unfused order (run_fused). Compiled and run by
 * tests/test_gpu_kernels.py; prints "ok" or the failures. */
#define ORC_SIMT_EMU 1
#include "simt_emu.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <string>
#include <vector>

#include "kernels/attention_kernel.cuh"

#define EMU_SEED 0x452821E638D01377ull
#include "emu_random.h"

static int failures = 0;
static void fail(const std::string &m) {
    if (failures++ < 20) printf("FAIL %s\n", m.c_str());
}

/* A cache element type: storing a float, reading the stored value back. */
template <class T>
struct cache;
template <>
struct cache<float> {
    static float put(float v, float *d) { return *d = v; }
    static const char *name() { return "f32"; }
};
template <>
struct cache<__half> {
    static float put(float v, __half *d) {
        d->bits = orc_qd_f2h(v);
        return orc_qd_h2f(d->bits);
    }
    static const char *name() { return "f16"; }
};
template <>
struct cache<__nv_bfloat16> {
    static float put(float v, __nv_bfloat16 *d) {
        d->bits = orc_qd_f2bf(v);
        return orc_qd_bf2f(d->bits);
    }
    static const char *name() { return "bf16"; }
};

struct Case {
    int n, nh, nkv, hd, pos0, window, split_keys, extra_splits;
    float softcap;
    bool sinks, split;
};

template <class T>
static void run(const Case &c) {
    char lb[200];
    snprintf(lb, sizeof lb, "%s n=%d heads %d/%d hd=%d pos0=%d window=%d softcap=%g sinks=%d split=%d/%d+%d",
             cache<T>::name(), c.n, c.nh, c.nkv, c.hd, c.pos0, c.window, (double)c.softcap, (int)c.sinks, (int)c.split,
             c.split_keys, c.extra_splits);
    const std::string label = lb;
    const int n = c.n, nh = c.nh, nkv = c.nkv, hd = c.hd, hdv = c.hd;
    /* query t sits at position pos0 + t of its own sequence, whose cache rows start at kv_base[t] */
    std::vector<int32_t> pos(n), base(n);
    int rows = 0;
    for (int t = 0; t < n; t++) {
        pos[t] = c.pos0 + t;
        base[t] = rows + (int)(rnd() % 3); /* gaps between the sequences' rows */
        rows = base[t] + pos[t] + 1;
    }
    const int64_t ks = (int64_t)nkv * hd + 8 * (int)(rnd() % 2); /* row strides, padded or not */
    const int64_t vs = (int64_t)nkv * hdv;
    std::vector<T> kc((size_t)rows * ks), vc((size_t)rows * vs);
    std::vector<double> kd((size_t)rows * ks), vd((size_t)rows * vs);
    for (size_t i = 0; i < kc.size(); i++) kd[i] = cache<T>::put(gauss(), &kc[i]);
    for (size_t i = 0; i < vc.size(); i++) vd[i] = cache<T>::put(gauss(), &vc[i]);
    const int64_t qs = (int64_t)nh * hd, os = (int64_t)nh * hdv;
    std::vector<float> q((size_t)n * qs), sinks(nh);
    for (float &v : q) v = gauss();
    for (float &v : sinks) v = 2.0f * gauss();
    const float scale = (float)(1.0 / sqrt((double)hd));

    /* float64 reference */
    std::vector<double> ref((size_t)n * os);
    for (int t = 0; t < n; t++)
        for (int h = 0; h < nh; h++) {
            const int g = h / (nh / nkv);
            const int64_t lo = c.window > 0 && pos[t] - c.window + 1 > 0 ? pos[t] - c.window + 1 : 0;
            std::vector<double> s;
            double M = c.sinks ? (double)sinks[h] : -INFINITY;
            for (int64_t j = lo; j <= pos[t]; j++) {
                double d = 0;
                for (int e = 0; e < hd; e++)
                    d += (double)q[t * qs + h * hd + e] * kd[(size_t)(base[t] + j) * ks + g * hd + e];
                d *= scale;
                if (c.softcap > 0) d = c.softcap * tanh(d / c.softcap);
                s.push_back(d);
                M = d > M ? d : M;
            }
            double L = c.sinks ? exp((double)sinks[h] - M) : 0.0;
            for (double v : s) L += exp(v - M);
            for (int e = 0; e < hdv; e++) {
                double a = 0;
                for (size_t j = 0; j < s.size(); j++) a += exp(s[j] - M) * vd[(size_t)(base[t] + lo + j) * vs + g * hdv + e];
                ref[(size_t)t * os + h * hdv + e] = a / L;
            }
        }

    const int max_keys = c.pos0 + n; /* the most keys a query sees */
    std::vector<float> first;
    /* pass 0: staged key rows; 1 (split only): with empty splits; 2: key rows read straight from the cache */
    for (int pass = 0; pass < 3; pass++) {
        if (pass == 1 && !c.split) continue;
        const bool staged = pass != 2;
        const int n_split = c.split ? (max_keys + c.split_keys - 1) / c.split_keys + (pass == 1 ? c.extra_splits : 0) : 0;
        std::vector<float> out((size_t)n * os, __int_as_float(0x7fc00000));
        std::vector<float> part(n_split ? ATTN_COUNTERS + (size_t)n * nh * n_split * (hdv + 2) : 1, 0.0f);
        unsigned *counts = n_split ? reinterpret_cast<unsigned *>(part.data()) : nullptr;
        float *pp = n_split ? part.data() + ATTN_COUNTERS : nullptr;
        const size_t smem = attn_smem_bytes(hd, hdv, false, staged);
        emu::g_readable = {{(const char *)kc.data(), (const char *)(kc.data() + kc.size())}}; /* staged key rows */
        emu::g_errors = 0;
        emu::launch(dim3((unsigned)(n * nh), (unsigned)(n_split ? n_split : 1)), dim3(ATTN_THREADS), smem, [&] {
            orc_attention_kernel<T>(q.data(), qs, kc.data(), vc.data(), ks, vs, out.data(), os, pp, pos.data(),
                                    base.data(), nh, nkv, hd, hdv, scale, c.softcap, c.window,
                                    c.sinks ? sinks.data() : nullptr, c.split_keys, counts, attn_rope{}, staged);
        });
        if (emu::g_errors) {
            fail(label + ": the emulator reported errors (above)");
            return;
        }
        for (int i = 0; n_split && i < ATTN_COUNTERS; i++)
            if (counts[i] != 0u) {
                fail(label + ": split count " + std::to_string(i) + " left at " + std::to_string(counts[i]));
                return;
            }
        double num = 0, den = 0;
        for (size_t i = 0; i < out.size(); i++) {
            if (!isfinite(out[i])) {
                fail(label + ": output " + std::to_string(i) + " not finite (unwritten?)");
                return;
            }
            num += (out[i] - ref[i]) * (out[i] - ref[i]);
            den += ref[i] * ref[i];
        }
        if (!(num <= 1e-10 * den)) {
            char b[96];
            snprintf(b, sizeof b, ": NMSE %.3e (pass %d)", num / den, pass);
            fail(label + b);
            return;
        }
        if (pass == 0)
            first = out;
        else if (memcmp(first.data(), out.data(), out.size() * sizeof(float)) != 0)
            fail(label + (pass == 1 ? ": empty splits changed the result (a launch sized for more keys must give the same bits)"
                                    : ": staged key rows changed the result (the same sums must give the same bits)"));
    }
}

/* The fused rope + KV store (attn_rope) of a one-token step against the unfused order: rope_pair
 * on q and k and the cache store done here, then the kernel unfused. Bit-identical outputs, the
 * token's cache row written as the store would (it is NaN before the fused launch and the blocks
 * run in both orders: read by no block), NeoX and interleaved pairs, partial rotation (n_rot < hd). */
template <class T>
static void run_fused(int hd, int nh, int nkv, int pos, int n_rot, int neox, int split_keys, int extra_splits) {
    char lb[160];
    snprintf(lb, sizeof lb, "fused rope %s hd=%d heads %d/%d pos=%d n_rot=%d neox=%d split=%d+%d", cache<T>::name(), hd,
             nh, nkv, pos, n_rot, neox, split_keys, extra_splits);
    const std::string label = lb;
    const int hdv = hd, base = 1 + (int)(rnd() % 3), rows = base + pos + 1;
    const int64_t ks = (int64_t)nkv * hd, vs = (int64_t)nkv * hdv, qs = (int64_t)nh * hd, os = (int64_t)nh * hdv;
    std::vector<T> kc((size_t)rows * ks), vc((size_t)rows * vs);
    for (size_t i = 0; i < kc.size(); i++) cache<T>::put(gauss(), &kc[i]);
    for (size_t i = 0; i < vc.size(); i++) cache<T>::put(gauss(), &vc[i]);
    std::vector<float> q(qs), k(ks), v(vs), inv(n_rot / 2 > 0 ? n_rot / 2 : 1);
    for (float &x : q) x = gauss();
    for (float &x : k) x = gauss();
    for (float &x : v) x = gauss();
    for (int i = 0; i < n_rot / 2; i++) inv[i] = (float)pow(10000.0, -2.0 * i / n_rot);
    const float fs = 0.5f, ms = 1.25f, scale = (float)(1.0 / sqrt((double)hd));
    std::vector<int32_t> posv = {pos}, basev = {base};
    const int n_split = (pos + 1 + split_keys - 1) / split_keys + extra_splits;
    auto launch = [&](const float *qp, std::vector<T> &kcache, std::vector<T> &vcache, const attn_rope &rope) {
        std::vector<float> out(os, __int_as_float(0x7fc00000));
        std::vector<float> part(ATTN_COUNTERS + (size_t)nh * n_split * (hdv + 2), 0.0f);
        const size_t smem = attn_smem_bytes(hd, hdv, rope.k != nullptr, true);
        emu::g_readable = {{(const char *)kcache.data(), (const char *)(kcache.data() + kcache.size())}};
        emu::g_errors = 0;
        emu::launch(dim3((unsigned)nh, (unsigned)n_split), dim3(ATTN_THREADS), smem, [&] {
            auto *kern = rope.k ? orc_attention_kernel<T, true> : orc_attention_kernel<T, false>;
            kern(qp, qs, kcache.data(), vcache.data(), ks, vs, out.data(), os, part.data() + ATTN_COUNTERS, posv.data(),
                 basev.data(), nh, nkv, hd, hdv, scale, 0.0f, 0, nullptr, split_keys,
                 reinterpret_cast<unsigned *>(part.data()), rope, 1);
        });
        if (emu::g_errors) fail(label + ": the emulator reported errors (above)");
        return out;
    };
    /* unfused: rotate here, store k and v, then attention */
    std::vector<float> qr = q, kr = k;
    for (int h = 0; h < nh + nkv; h++)
        for (int pr = 0; pr < n_rot / 2; pr++) {
            int32_t i0, i1;
            rope_pair(h < nh ? qr.data() + h * hd : kr.data() + (h - nh) * hd, pr, n_rot / 2, neox, pos, fs, ms,
                      inv.data(), &i0, &i1);
        }
    std::vector<T> kc1 = kc, vc1 = vc;
    for (int64_t c = 0; c < ks; c++) cache<T>::put(kr[c], &kc1[(size_t)(base + pos) * ks + c]);
    for (int64_t c = 0; c < vs; c++) cache<T>::put(v[c], &vc1[(size_t)(base + pos) * vs + c]);
    const std::vector<float> want = launch(qr.data(), kc1, vc1, attn_rope{});
    /* fused, the token's row poisoned */
    std::vector<T> kc2 = kc, vc2 = vc;
    for (int64_t c = 0; c < ks; c++) cache<T>::put(__int_as_float(0x7fc00000), &kc2[(size_t)(base + pos) * ks + c]);
    for (int64_t c = 0; c < vs; c++) cache<T>::put(__int_as_float(0x7fc00000), &vc2[(size_t)(base + pos) * vs + c]);
    const attn_rope rope = {k.data(), v.data(), inv.data(), fs, ms, n_rot, neox};
    std::vector<T> kc3 = kc2, vc3 = vc2;
    const std::vector<float> got = launch(q.data(), kc2, vc2, rope);
    emu::g_reverse_blocks = true; /* the storing blocks last: a block reading the row would see NaN */
    const std::vector<float> got_rev = launch(q.data(), kc3, vc3, rope);
    emu::g_reverse_blocks = false;
    if (memcmp(got.data(), got_rev.data(), got.size() * sizeof(float)) != 0 ||
        memcmp(kc2.data(), kc3.data(), kc2.size() * sizeof(T)) != 0)
        fail(label + ": the blocks' order changed the result");
    for (size_t i = 0; i < want.size(); i++)
        if (!std::isfinite(want[i]) || memcmp(&want[i], &got[i], sizeof(float)) != 0) {
            char b[120];
            snprintf(b, sizeof b, ": output %zu is %.9g, unfused %.9g", i, (double)got[i], (double)want[i]);
            fail(label + b);
            return;
        }
    if (memcmp(kc1.data(), kc2.data(), kc1.size() * sizeof(T)) != 0 || memcmp(vc1.data(), vc2.data(), vc1.size() * sizeof(T)) != 0)
        fail(label + ": the caches differ from the unfused store's");
}

int main() {
    const int hds[] = {64, 128, 72, 36};
    const int heads[][2] = {{1, 1}, {4, 2}, {8, 1}};
    int cases = 0;
    for (int hd : hds)
        for (auto &hh : heads)
            for (int variant = 0; variant < 4; variant++) {
                Case c;
                c.n = variant % 2 ? 3 : 1;
                c.nh = hh[0], c.nkv = hh[1], c.hd = hd;
                c.pos0 = (int)(rnd() % 300);
                c.window = variant == 2 ? 1 + (int)(rnd() % 40) : 0;
                c.softcap = variant == 3 ? 30.0f : 0.0f;
                c.sinks = variant >= 2;
                c.split = variant != 1;
                c.split_keys = variant == 0 ? 128 : 32;
                c.extra_splits = 3;
                run<__half>(c);
                if (variant == 0 || hd == 128) {
                    run<float>(c);
                    run<__nv_bfloat16>(c);
                    cases += 2;
                }
                cases++;
            }
    for (int hd : {64, 128, 72}) {
        const int nr = hd == 72 ? 32 : hd; /* partial rotation: the rest of k stored as it is */
        run_fused<__half>(hd, 8, 2, 40 + (int)(rnd() % 200), nr, hd != 128, 32, 2);
        run_fused<float>(hd, 4, 4, (int)(rnd() % 100), nr, 1, 32, 0);
        run_fused<__nv_bfloat16>(hd, 4, 1, 300 + (int)(rnd() % 100), nr, 0, 128, 1);
        run_fused<__half>(hd, 2, 1, 0, nr, 1, 32, 3); /* the first token: key p is the only key */
        cases += 4;
    }
    if (failures)
        printf("%d failures in %d cases\n", failures, cases);
    else
        printf("ok\n");
    return failures != 0;
}
