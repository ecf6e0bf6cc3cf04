/* test_attn_decode_emu.cpp - the decode / few-query attention kernel (cuda/kernels/
 * attention_kernel.cuh) run on the host SIMT emulator, against float64 on the same cache values
 * (float32, float16 and bfloat16 caches): head sizes 64 / 128 / 72 (the unaligned-tail path) / 36
 * (no 16-byte path), GQA ratios, several queries at later positions in their own cache rows,
 * sliding windows, softcap, sinks, unsplit and split mode (splits merged by the last block to
 * finish). Checks: NMSE <= 1e-10, every output written (NaN poison), the split counts left at
 * zero, and a launch sized for more keys than the queries see (empty splits: a graph recorded
 * for the whole cache) bit-identical to the exact one, key rows staged in shared memory
 * (dot_row_staged) bit-identical to key rows read straight from the cache, and K / V rows fetched
 * before orc_pdl_wait (all but the rows this step writes, which the emulator checks are not read
 * before it) bit-identical too; and, for one query, the launch doing the step's q/k norms, rope
 * and KV store itself (orc_attn_rope, from the raw q, k and v) bit-identical, with the cache rows
 * it writes equal to what the norm + rope + KV store kernels' arithmetic gives (head_norm.cuh,
 * rope_pair.cuh; here on the host) and nothing else written. Compiled and run by
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

static int failures = 0, prefetched = 0, fused_cases = 0;
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
    bool sinks, split, one_seq; /* one_seq: the queries are consecutive tokens of one sequence */
    bool qk_norm, neox, partial_rot; /* the fused rope's variants (one query) */
};

/* The step's raw q, k, v (token 0) and the fused rope's parameters; `make` gives what the
 * unfused kernels compute from them: q and k normed (head_norm.cuh's scale, on one emulated warp)
 * and rotated (rope_pair.cuh), in float32. */
struct RopeStep {
    std::vector<float> q, k, v, qw, kw, inv_freq;
    orc_attn_rope r;
    void make(const Case &c, int hdv, int32_t pos, std::vector<float> &q_out, std::vector<float> &k_out) {
        const int hd = c.hd;
        q.resize((size_t)c.nh * hd), k.resize((size_t)c.nkv * hd), v.resize((size_t)c.nkv * hdv);
        for (float &x : q) x = 3.0f * gauss();
        for (float &x : k) x = 3.0f * gauss();
        for (float &x : v) x = gauss();
        qw.resize(hd), kw.resize(hd);
        for (float &x : qw) x = 1.0f + 0.3f * gauss();
        for (float &x : kw) x = 1.0f + 0.3f * gauss();
        memset(&r, 0, sizeof r);
        r.n_rot = c.partial_rot ? hd / 2 / 2 * 2 : hd;
        inv_freq.resize(r.n_rot / 2 > 0 ? r.n_rot / 2 : 1);
        for (int i = 0; i < r.n_rot / 2; i++) inv_freq[i] = (float)pow(10000.0, -2.0 * i / r.n_rot);
        r.k = k.data(), r.v = v.data(), r.inv_freq = inv_freq.data();
        r.q_norm = c.qk_norm ? qw.data() : nullptr, r.k_norm = c.qk_norm ? kw.data() : nullptr;
        r.eps = 1e-6f, r.neox = c.neox, r.freq_scale = c.neox ? 0.5f : 1.0f, r.mscale = c.neox ? 1.25f : 1.0f;
        q_out = q, k_out = k;
        auto head = [&](float *x, const float *w) {
            if (w) {
                float scale = 0.0f;
                emu::launch(dim3(1), dim3(32), 0, [&] { /* every lane gets the same value */
                    const float s = orc_head_rms_scale(x, hd, r.eps);
                    if (threadIdx.x == 0) scale = s;
                });
                for (int d = 0; d < hd; d++) x[d] = orc_head_norm_value(w[d], x[d], scale);
            }
            for (int pr = 0; pr < r.n_rot / 2; pr++) {
                double sn, cs;
                int32_t i0, i1;
                rope_angle(pr, pos, r.freq_scale, r.mscale, r.inv_freq, &sn, &cs);
                rope_rotate(x, pr, r.n_rot / 2, r.neox, sn, cs, &i0, &i1);
            }
        };
        for (int h = 0; h < c.nh; h++) head(q_out.data() + (size_t)h * hd, r.q_norm);
        for (int g = 0; g < c.nkv; g++) head(k_out.data() + (size_t)g * hd, r.k_norm);
    }
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
    std::vector<int32_t> pos(n), base(n), kv_row(n);
    int rows = 0;
    for (int t = 0; t < n; t++) {
        pos[t] = c.pos0 + t;
        base[t] = c.one_seq ? 0 : rows + (int)(rnd() % 3); /* gaps between the sequences' rows */
        rows = base[t] + pos[t] + 1;
        kv_row[t] = base[t] + pos[t]; /* this step's KV store wrote it */
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
    /* One query: its q and its own cache row are what the norm + rope + KV store kernels make of a
     * raw q, k and v (the fused pass starts from those). */
    RopeStep rs;
    if (n == 1) {
        std::vector<float> k_new;
        rs.make(c, hdv, pos[0], q, k_new);
        for (int64_t i = 0; i < (int64_t)nkv * hd; i++) kd[(size_t)kv_row[0] * ks + i] = cache<T>::put(k_new[i], &kc[(size_t)kv_row[0] * ks + i]);
        for (int64_t i = 0; i < vs; i++) vd[(size_t)kv_row[0] * vs + i] = cache<T>::put(rs.v[i], &vc[(size_t)kv_row[0] * vs + i]);
    }
    const std::vector<T> kc_step = kc, vc_step = vc; /* the caches as the KV store leaves them */
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
    /* pass 0: staged key rows; 1 (split only): with empty splits, blocks run in reverse order; 2: key
     * rows read straight from the cache; 3 (where the launch allows it): K and V rows fetched ahead,
     * the rows of kv_row only after orc_pdl_wait (the emulator checks: g_unready); 4 (that, and one
     * query): the fused rope, from the raw q, k and v, this step's cache rows poisoned first */
    const bool can_prefetch = c.split && attn_can_prefetch(hd, hdv, (int)sizeof(T), ks, vs, c.split_keys);
    for (int pass = 0; pass < 5; pass++) {
        if ((pass == 1 && !c.split) || (pass >= 3 && !can_prefetch) || (pass == 4 && n != 1)) continue;
        const bool staged = pass != 2, fused = pass == 4;
        if (fused) { /* the rows the launch must write: NaN until then */
            for (int64_t i = 0; i < (int64_t)nkv * hd; i++) /* (not the row's padding, which no store writes) */
                cache<T>::put(__int_as_float(0x7fc00000), &kc[(size_t)kv_row[0] * ks + i]);
            for (int64_t i = 0; i < vs; i++) cache<T>::put(__int_as_float(0x7fc00000), &vc[(size_t)kv_row[0] * vs + i]);
        }
        const int n_split = c.split ? (max_keys + c.split_keys - 1) / c.split_keys + (pass == 1 ? c.extra_splits : 0) : 0;
        std::vector<float> out((size_t)n * os, __int_as_float(0x7fc00000));
        std::vector<float> part(n_split ? ATTN_COUNTERS + (size_t)n * nh * n_split * (hdv + 2) : 1, 0.0f);
        unsigned *counts = n_split ? reinterpret_cast<unsigned *>(part.data()) : nullptr;
        float *pp = n_split ? part.data() + ATTN_COUNTERS : nullptr;
        const size_t smem = attn_smem_bytes(hd, hdv, staged);
        emu::g_readable = {{(const char *)kc.data(), (const char *)(kc.data() + kc.size())},
                           {(const char *)vc.data(), (const char *)(vc.data() + vc.size())}}; /* staged rows */
        emu::g_unready.clear();
        for (int t = 0; t < n; t++) {
            emu::g_unready.push_back({(const char *)(kc.data() + (size_t)kv_row[t] * ks),
                                      (const char *)(kc.data() + (size_t)(kv_row[t] + 1) * ks)});
            emu::g_unready.push_back({(const char *)(vc.data() + (size_t)kv_row[t] * vs),
                                      (const char *)(vc.data() + (size_t)(kv_row[t] + 1) * vs)});
        }
        emu::g_errors = 0;
        /* the splits' merge: whichever block finishes last; the fused rope: the group's storing
         * block (its first head) runs after the others, which must not read the row it stores */
        emu::g_reverse_blocks = pass == 1 || fused;
        if (fused) {
            emu::g_unready.push_back({(const char *)rs.q.data(), (const char *)(rs.q.data() + rs.q.size())});
            emu::g_unready.push_back({(const char *)rs.k.data(), (const char *)(rs.k.data() + rs.k.size())});
            emu::g_unready.push_back({(const char *)rs.v.data(), (const char *)(rs.v.data() + rs.v.size())});
        }
        orc_attn_rope none;
        memset(&none, 0, sizeof none);
        emu::launch(dim3((unsigned)(n * nh), (unsigned)(n_split ? n_split : 1)), dim3(ATTN_THREADS), smem, [&] {
            orc_attention_kernel<T>(fused ? rs.q.data() : q.data(), qs, kc.data(), vc.data(), ks, vs, out.data(), os, pp,
                                    pos.data(), base.data(), nh, nkv, hd, hdv, scale, c.softcap, c.window,
                                    c.sinks ? sinks.data() : nullptr, c.split_keys, counts, staged, kv_row.data(),
                                    pass >= 3, fused ? rs.r : none);
        });
        emu::g_reverse_blocks = false;
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
            fail(label + (pass == 1   ? ": empty splits changed the result (a launch sized for more keys must give the same bits)"
                          : pass == 2 ? ": staged key rows changed the result (the same sums must give the same bits)"
                          : pass == 3 ? ": rows fetched ahead changed the result (the same sums must give the same bits)"
                                      : ": the fused rope changed the result (the unfused kernels' arithmetic must give the same bits)"));
        if (fused && (memcmp(kc.data(), kc_step.data(), kc.size() * sizeof(T)) != 0 ||
                      memcmp(vc.data(), vc_step.data(), vc.size() * sizeof(T)) != 0))
            fail(label + ": the fused rope's cache rows differ from the KV store's (or it wrote elsewhere)");
        if (pass == 3) prefetched++;
        if (fused) fused_cases++;
    }
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
                c.one_seq = variant == 3 || (variant == 2 && hd == 64);
                c.qk_norm = (rnd() % 2) != 0;
                c.neox = (rnd() % 2) != 0;
                c.partial_rot = (rnd() % 3) == 0;
                run<__half>(c);
                if (variant == 0 || hd == 128) {
                    run<float>(c);
                    run<__nv_bfloat16>(c);
                    cases += 2;
                }
                cases++;
            }
    if (prefetched < 8) fail("only " + std::to_string(prefetched) + " cases ran the rows-fetched-ahead pass");
    if (fused_cases < 6) fail("only " + std::to_string(fused_cases) + " cases ran the fused rope pass");
    if (failures)
        printf("%d failures in %d cases\n", failures, cases);
    else
        printf("ok\n");
    return failures != 0;
}
