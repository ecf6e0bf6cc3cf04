"""Where a prefill's time goes on the GPU: Model(profile=True)'s per-primitive table of a
512-token prompt (each primitive bracketed by synchronisations, so launch and host costs count).

    python bench/profile_prefill.py [--dir /tmp/orc-models] [--models gpt-oss-20b,qwen3-30b-a3b]
                                    [--tokens 512] [--reps 2] [--device cuda]

Model files are bench_vs_llama.py's (written unless present). For each model: the prefill's
wall time without profiling (median of --reps, after one warm-up), then one markdown table:
primitive, calls a prefill, ms a prefill, us a call.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import orc  # noqa: E402

import bench_vs_llama  # noqa: E402  (the model writers)


def prefill_s(m, prompt):
    s = orc.Session(m, n_ctx=len(prompt) + 8)
    t0 = time.perf_counter()
    s.forward(prompt, "argmax")  # the choice made on the device: a few bytes copied back
    dt = time.perf_counter() - t0
    s.close()
    return dt


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default="/tmp/orc-models")
    ap.add_argument("--models", default="gpt-oss-20b,qwen3-30b-a3b")
    ap.add_argument("--tokens", type=int, default=512)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--device", default="cuda")
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in a.models.split(","):
        path = bench_vs_llama.prepare(a.dir, name)
        m = orc.Model(path, device=a.device, weights="quantized")
        prompt = [int(t) for t in rng.integers(0, m.config["n_vocab"], a.tokens)]
        prefill_s(m, prompt)  # warm-up
        wall = statistics.median(prefill_s(m, prompt) for _ in range(a.reps))
        m.close()
        m = orc.Model(path, device=a.device, weights="quantized", profile=True)
        prefill_s(m, prompt)
        m.profile(reset=True)
        for _ in range(a.reps):
            prefill_s(m, prompt)
        prof = m.profile(reset=True)
        m.close()
        total = sum(sec for _, sec in prof.values()) / a.reps
        print(f"\n## {name}: prefill of {a.tokens} tokens {wall * 1e3:.1f} ms ({a.tokens / wall:,.0f} tokens/s); "
              f"profiled primitives sum {total * 1e3:.1f} ms")
        print("| primitive | calls a prefill | ms a prefill | us a call |")
        print("|---|---:|---:|---:|")
        for k, (calls, sec) in sorted(prof.items(), key=lambda kv: -kv[1][1]):
            if calls:
                print(f"| {k} | {calls / a.reps:.0f} | {sec * 1e3 / a.reps:.2f} | {sec * 1e6 / calls:.1f} |")


if __name__ == "__main__":
    main()
