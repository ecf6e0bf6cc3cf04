#!/usr/bin/env python3
"""CPU vs GPU vs HF, as numbers: the source of docs/precision.md's table.

    python tools/gpu_parity_report.py [--detail llama_Q4_K:float32]

For every synthetic model (tests/golden/synth) and weight dtype: the worst per-hook NMSE
between the CPU and CUDA backends (same weight and KV dtype), and the worst per-position
logits NMSE of each backend against the HF float32 golden. --detail prints every hook of
one model/dtype pair, in execution order.
"""
import argparse
import glob
import os
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import orc  # noqa: E402
from orc import synth  # noqa: E402


def nmse(a, b):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return float(np.sum((a - b) ** 2) / max(np.sum(b ** 2), 1e-300))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--detail", action="append", default=[])
    ap.add_argument("--dtypes", default="float32,float16,bfloat16")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp()
    names = sorted(os.path.basename(p)[:-4] for p in glob.glob(os.path.join(ROOT, "tests/golden/synth/*.npz")))
    print(f"{'model':12s} {'dtype':9s} {'cpu~gpu worst hook':>34s} {'cpu~hf':>9s} {'gpu~hf':>9s} {'argmax':>7s}")
    for name in names:
        arch, wt = name.split("_", 1)
        g = np.load(os.path.join(ROOT, "tests/golden/synth", name + ".npz"))
        path = synth.make_model(os.path.join(tmp, name + ".gguf"), synth.spec_for(arch, wt))
        for dtype in args.dtypes.split(","):
            tr = {}
            for dev in ("cpu", "cuda"):
                with orc.Model(path, device=dev, dtype=dtype) as m:
                    tr[dev] = orc.Session(m, n_ctx=64, kv_dtype=dtype).trace(g["ids"])
            per_hook = [(nmse(tr["cuda"][k], tr["cpu"][k]), k) for k in tr["cpu"]]
            worst = max(per_hook)
            ref = g["logits"]
            hf = [max(nmse(tr[d]["logits"][i], ref[i]) for i in range(len(ref))) for d in ("cpu", "cuda")]
            agree = int(np.sum(tr["cuda"]["logits"].argmax(-1) == tr["cpu"]["logits"].argmax(-1)))
            print(f"{name:12s} {dtype:9s} {worst[0]:10.2e} {worst[1]:>23s} {hf[0]:9.2e} {hf[1]:9.2e} "
                  f"{agree:3d}/{len(ref)}")
            if f"{name}:{dtype}" in args.detail:
                for v, k in per_hook:
                    print(f"    {k:24s} {v:10.2e}")


if __name__ == "__main__":
    main()
