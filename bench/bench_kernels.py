"""The fast GPU path's kernels on the GPU: fused dequantize-GEMV and flash attention.

    python bench/bench_kernels.py [--quick] [--types Q4_K,Q8_0] [--n 1,2,4,8] [--no-attention] [--markdown]

One-token rows of Q4_0, Q5_0, Q4_K, Q6_K, Q8_0, MXFP4 and IQ4_NL are measured in both GEMV forms (gemv.cuh): "float"
(float32 x) and "int16" (x_int16: x rounded to 16 bits per 16 columns, integer dot products).

Ceilings, measured first in the same run: a cudaMemcpy device-to-device (bandwidth = bytes
read + written / time) and a cuBLAS float16 GEMM 8192^3 with float32 accumulation (random
operands). Then:

GEMV: for the real models' shapes (Llama-3-8B, Qwen2.5-0.5B, gpt-oss-20b and Qwen3-30B-A3B
experts) and weight types, at n tokens: the median time per launch (CUDA-graph replays of
back-to-back launches, the weights rotated over copies that together exceed the 50 MB L2
several times, so they come from memory), the weight bytes a launch must read per second,
and that as a percentage of the copy ceiling ("% copy": the target is >= 75 at n = 1 on the
large matrices). MoE rows read the distinct experts the ids select.

Flash attention: prefill shapes, time, TFLOP/s (2 (d + d_v) flops per visible query-key
pair and head) and % of the cuBLAS ceiling.

Runs well under 2 minutes on an H200 (--quick: a few seconds).
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import orc  # noqa: E402
from orc import _orc  # noqa: E402
from bench_dequant import LAYOUT, fmt_table  # noqa: E402  (block layouts, table printer)

# (label, rows, cols, types); MoE entries: (label, rows, cols, types, n_expert, k, glu, act, bias)
DENSE = [
    ("llama3-8b q/o", 4096, 4096, ["Q4_K", "Q6_K", "Q8_0", "F16", "BF16"]),
    ("llama3-8b k/v", 1024, 4096, ["Q4_K", "Q6_K"]),
    ("llama3-8b gate/up", 14336, 4096, ["Q4_K", "Q5_K", "Q6_K", "Q8_0", "IQ4_XS", "Q4_0"]),
    ("llama3-8b down", 4096, 14336, ["Q4_K", "Q6_K"]),
    ("llama3-8b output", 128256, 4096, ["Q6_K"]),
    ("qwen2.5-0.5b q/o", 896, 896, ["Q8_0", "Q5_0", "Q4_0"]),
    ("qwen2.5-0.5b k/v", 128, 896, ["Q8_0"]),
    ("qwen2.5-0.5b gate/up", 4864, 896, ["Q8_0", "Q5_0", "IQ4_NL"]),
    ("qwen2.5-0.5b down", 896, 4864, ["Q8_0", "Q6_K"]),
    ("qwen2.5-0.5b output", 151936, 896, ["Q8_0"]),
]
MOE = [
    ("gpt-oss-20b gate+up (GLU)", 2880, 2880, ["MXFP4"], 32, 4, True, 2, True),
    ("gpt-oss-20b down", 2880, 2880, ["MXFP4"], 32, 4, False, 0, True),
    ("qwen3-30b-a3b gate+up (GLU)", 768, 2048, ["Q4_K"], 128, 8, True, 0, False),
    ("qwen3-30b-a3b down", 2048, 768, ["Q4_K", "Q6_K"], 128, 8, False, 0, False),
]
# (label, n, pos0, n_head, n_head_kv, head_dim, dtype, window, softcap, sinks)
ATTN = [
    ("llama3-8b prefill 512", 512, 0, 32, 8, 128, "float16", 0, 0.0, False),
    ("llama3-8b prefill 2048", 2048, 0, 32, 8, 128, "float16", 0, 0.0, False),
    ("llama3-8b prefill 2048 bf16", 2048, 0, 32, 8, 128, "bfloat16", 0, 0.0, False),
    ("llama3-8b chunk 512 @1536", 512, 1536, 32, 8, 128, "float16", 0, 0.0, False),
    ("qwen2.5-0.5b prefill 1024", 1024, 0, 14, 2, 64, "float16", 0, 0.0, False),
    ("gemma3 prefill 1024 (d 256)", 1024, 0, 8, 4, 256, "bfloat16", 512, 0.0, False),
    ("gpt-oss prefill 1024 sinks+win", 1024, 0, 64, 8, 64, "bfloat16", 128, 0.0, True),
]


def random_blocks(name, n_rows, cols, rng):
    """Valid blocks: random quants, finite fp16 scales (bench_dequant's layouts); floats around 1."""
    bs, ts, fields = LAYOUT[name]
    if fields is None:
        v = rng.standard_normal((n_rows, cols), dtype=np.float32)
        if name == "F32":
            return v.view(np.uint8).reshape(-1)
        if name == "F16":
            return v.astype(np.float16).view(np.uint8).reshape(-1)
        u = v.view(np.uint32)
        return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16).view(np.uint8).reshape(-1)
    nb = n_rows * cols // bs
    blocks = rng.integers(0, 256, size=(nb, ts), dtype=np.uint8)
    for off in fields:
        blocks[:, off:off + 2] = (rng.uniform(0.5, 1.5, nb) / 256).astype(np.float16).view(np.uint8).reshape(-1, 2)
    if name == "MXFP4":
        blocks[:, 0] = rng.integers(118, 130, size=nb)
    return blocks.reshape(-1)


_WEIGHTS = {}


def weights(name, n_rows, cols, rng, which):
    """Random blocks, made once per shape and type (the large ones take seconds on the host)."""
    shape = (name, n_rows, cols)
    if _WEIGHTS.get("shape") != shape:  # keep one shape's weights (w and up) at a time
        _WEIGHTS.clear()
        _WEIGHTS["shape"] = shape
    if which not in _WEIGHTS:
        _WEIGHTS[which] = random_blocks(name, n_rows, cols, rng)
    return _WEIGHTS[which]


def forms(name, n):
    """The GEMV forms to time: the integer one too where the kernel has it (one token)."""
    return ("float", "int16") if n == 1 and _orc._gpu_gemv_integer_form(name) else ("float",)


def bench_gemv(rows, cols, name, n, copy_gbs, rng, repeats, moe=None, form="float"):
    n_expert, k, glu, act, bias = moe if moe else (1, 0, False, 0, False)
    n_mat = n_expert if moe else 1
    kw = {"x_int16": form == "int16"}
    if glu:
        kw.update(w_up=weights(name, n_mat * rows, cols, rng, "up"), act=act)
    w = weights(name, n_mat * rows, cols, rng, "w")
    if bias:
        kw["bias"] = rng.standard_normal(n_mat * rows).astype(np.float32)
        if glu:
            kw["bias_up"] = rng.standard_normal(n_mat * rows).astype(np.float32)
    nvec = n
    if moe:
        kw["ids"] = np.array([rng.permutation(n_expert)[:k] for _ in range(n)], np.int32)
        kw["n_expert"] = n_expert
        nvec = n * k
    x = rng.standard_normal((n, cols), dtype=np.float32)
    y = np.zeros((nvec, rows), np.float32)
    t = _orc._gpu_gemv_bench(w, name, rows, cols, x, y, repeats=repeats, **kw)
    gbs = t["bytes"] / (t["ms_median"] * 1e6)
    return t, gbs, 100.0 * gbs / copy_gbs


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a few shapes, n = 1 and 8, one attention case")
    p.add_argument("--types", default=None, help="comma-separated weight types to keep")
    p.add_argument("--n", default="1,2,4,8", help="token counts for the dense GEMV (default 1,2,4,8)")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--no-attention", action="store_true")
    p.add_argument("--markdown", action="store_true")
    a = p.parse_args(argv)
    if not orc.cuda_available():
        sys.exit(f"no usable CUDA GPU: {orc.cuda_status()['reason']}")
    dev = orc.devices()[0]
    keep = {t.strip().upper() for t in a.types.split(",")} if a.types else None
    ns = [int(v) for v in a.n.split(",")]
    dense, moe, attn = DENSE, MOE, ATTN
    if a.quick:
        dense, moe, attn, ns = [DENSE[0], DENSE[2], DENSE[5]], MOE[:1], ATTN[1:2], [1, 8]
    rng = np.random.default_rng(0)

    c = _orc._gpu_copy_bench(2 << 30, 5)
    copy_gbs = c["bytes"] / (c["ms_median"] * 1e6)
    g = _orc._gpu_gemm_bench(8192, 8192, 8192, 5)
    gemm_tflops = g["flops"] / (g["ms_median"] * 1e9)
    print(f"{dev.get('name', '?')}: copy {copy_gbs:.0f} GB/s (2 GiB D2D, read + written); "
          f"cuBLAS f16 GEMM 8192^3 {gemm_tflops:.0f} TFLOP/s", flush=True)

    rows_out = []
    for label, rows, cols, types in dense:
        for name in types:
            if keep and name not in keep:
                continue
            base = None
            for n in ns:
                for form in forms(name, n):
                    t, gbs, pct = bench_gemv(rows, cols, name, n, copy_gbs, rng, a.repeats, form=form)
                    base = base or t["ms_median"]
                    rows_out.append([label, f"{rows}x{cols}", name, form, n, f"{t['ms_median'] * 1e3:.1f}",
                                     f"{gbs:.0f}", f"{pct:.1f}", f"{t['ms_median'] / base:.2f}", t["copies"]])
                    print(f"  {label:22s} {name:6s} {form:5s} n={n}: {t['ms_median'] * 1e3:8.1f} us {gbs:6.0f} GB/s "
                          f"{pct:5.1f}% of copy", file=sys.stderr, flush=True)
    for label, rows, cols, types, n_expert, k, glu, act, bias in moe:
        for name in types:
            if keep and name not in keep:
                continue
            base = None
            for n in ([1, 4] if not a.quick else [1]):
                for form in forms(name, 1):  # MoE: one token a job
                    t, gbs, pct = bench_gemv(rows, cols, name, n, copy_gbs, rng, a.repeats,
                                             moe=(n_expert, k, glu, act, bias), form=form)
                    base = base or t["ms_median"]
                    rows_out.append([f"{label} top-{k}/{n_expert}", f"{rows}x{cols}", name, form, n,
                                     f"{t['ms_median'] * 1e3:.1f}", f"{gbs:.0f}", f"{pct:.1f}",
                                     f"{t['ms_median'] / base:.2f}", t["copies"]])
                    print(f"  {label:22s} {name:6s} {form:5s} n={n}: {t['ms_median'] * 1e3:8.1f} us {gbs:6.0f} GB/s "
                          f"{pct:5.1f}% of copy", file=sys.stderr, flush=True)
    print(f"\nGEMV (fused dequantize, float32 accumulation; form: float32 or int16 x): median of {a.repeats} graph "
          f"replays; GB/s = weight bytes read / time; % copy = of {copy_gbs:.0f} GB/s; x n=1 = time / time at n=1\n")
    print(fmt_table(["shape", "rows x cols", "type", "form", "n", "us", "GB/s", "% copy", "x n=1", "copies"], rows_out,
                    a.markdown))

    if a.no_attention:
        return
    arows = []
    for label, n, pos0, nh, nkv, d, dt, window, softcap, sinks in attn:
        kv_base = 0
        n_kv = pos0 + n
        q = rng.standard_normal((n, nh * d), dtype=np.float32)
        kv = rng.standard_normal((2, n_kv, nkv * d), dtype=np.float32)
        if dt == "float16":
            kb, vb = kv[0].astype(np.float16).view(np.uint16), kv[1].astype(np.float16).view(np.uint16)
        else:
            u = kv.view(np.uint32)
            b = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
            kb, vb = b[0], b[1]
        pos = (pos0 + np.arange(n)).astype(np.int32)
        kvb = np.full(n, kv_base, np.int32)
        sk = rng.standard_normal(nh).astype(np.float32) if sinks else None
        t = _orc._gpu_attention_flash_bench(q, kb, vb, pos, kvb, nh, nkv, d, dt, 1.0 / np.sqrt(d),
                                            softcap=softcap, window=window, sinks=sk, repeats=a.repeats)
        tf = t["flops"] / (t["ms_median"] * 1e9)
        arows.append([label, n, pos0, f"{nh}/{nkv}", d, dt, window, f"{t['ms_median'] * 1e3:.0f}", f"{tf:.0f}",
                      f"{100 * tf / gemm_tflops:.1f}"])
        print(f"  {label:32s}: {t['ms_median'] * 1e3:8.0f} us {tf:6.0f} TFLOP/s", file=sys.stderr, flush=True)
    print(f"\nFlash attention (mma.sync f16/bf16, float32 softmax): median of {a.repeats}; % GEMM = of the cuBLAS "
          f"f16 ceiling {gemm_tflops:.0f} TFLOP/s\n")
    print(fmt_table(["case", "n", "pos0", "heads", "d", "dtype", "window", "us", "TFLOP/s", "% GEMM"], arows,
                    a.markdown))


if __name__ == "__main__":
    main()
