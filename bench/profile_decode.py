"""Where a decode step's time goes on the GPU: per-primitive profile and context scaling.

    python bench/profile_decode.py [--dir /tmp/orc-models] [--models qwen05-q4_k_m,llama8b-q4_k]
                                   [--weights quantized,dequantized]

For each model file (bench_vs_llama.py's writers, written unless present) and weights mode:
  * step time of graph replays and of eager steps after an 8-token and a 512-token prompt
    (does the step grow with the context? then attention dominates),
  * the same steps without copying logits to the host (logits="none" runs eagerly),
  * Model(profile=True)'s per-primitive table of 16 eager steps (each primitive is bracketed
    by synchronisations: launch costs included; "fused" = fast-path launches, "fused_refused"
    = launches the fast path refused, whose primitives then ran).
Run with ORC_DEBUG_FAST=1 to have the backend say why it refused a fused launch.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import orc  # noqa: E402

import bench_vs_llama  # noqa: E402  (the model writers)


def step_ms(m, prompt, steps, graphs, logits="last"):
    s = orc.Session(m, n_ctx=len(prompt) + steps + 8, graphs=graphs)
    last = s.forward(prompt, "last")
    tok = int(np.argmax(last))
    s.forward([tok], "last")  # eager first step (the graph is recorded on the next)
    s.forward([tok], "last")
    t0 = time.perf_counter()
    for _ in range(steps):
        out = s.forward([tok], logits)
        if out is not None and logits == "last":
            tok = int(np.argmax(out))
    ms = (time.perf_counter() - t0) * 1e3 / steps
    path = s.last_path
    s.close()
    return ms, path


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default="/tmp/orc-models")
    ap.add_argument("--models", default="qwen05-q4_k_m,llama8b-q4_k")
    ap.add_argument("--weights", default="quantized,dequantized")
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in a.models.split(","):
        path = os.path.join(a.dir, name + ".gguf")
        if not os.path.exists(path):
            bench_vs_llama.MODELS[name](path)
        for w in a.weights.split(","):
            m = orc.Model(path, device="cuda", weights=w)
            V = m.config["n_vocab"]
            long = [int(t) for t in rng.integers(0, V, 512)]
            print(f"\n## {name} weights={w}")
            for label, prompt in (("8-token prompt", long[:8]), ("512-token prompt", long)):
                g, gp = step_ms(m, prompt, 64, True)
                e, ep = step_ms(m, prompt, 32, False)
                nl, nlp = step_ms(m, prompt, 32, False, logits="none")
                print(f"{label}: graph {g:.3f} ms ({gp}); eager {e:.3f} ms; eager, no logits {nl:.3f} ms ({nlp})")
            m.close()
            m = orc.Model(path, device="cuda", weights=w, profile=True)
            s = orc.Session(m, n_ctx=600)
            s.forward(long[:256], "last")
            m.profile(reset=True)
            for t in long[256:272]:
                s.forward([t], "last")
            prof = m.profile(reset=True)
            total = sum(sec for _, sec in prof.values())
            print(f"profile of 16 eager steps at ~256 keys (sum {total * 1e3 / 16:.3f} ms per step):")
            print("| primitive | calls per step | ms per step | us per call |")
            print("|---|---:|---:|---:|")
            for k, (calls, sec) in sorted(prof.items(), key=lambda kv: -kv[1][1]):
                if calls:
                    print(f"| {k} | {calls / 16:.1f} | {sec * 1e3 / 16:.3f} | {sec * 1e6 / max(calls, 1):.1f} |")
            s.close()
            m.close()


if __name__ == "__main__":
    main()
