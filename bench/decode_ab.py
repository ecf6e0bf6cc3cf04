"""Decode step times under launch switches, each setting in its own process (orc reads its
switches once a process): graph-replayed one-token steps after an 8-token and a 512-token prompt.

    python bench/decode_ab.py [--dir /tmp/orc-models] [--models qwen05-q4_k_m,llama8b-q4_k]
                              [--env ORC_ATTN_SPLIT_KEYS=128 --env ORC_ATTN_SPLIT_KEYS=64 ...]

Model files are bench_vs_llama.py's (written unless present). Prints one markdown table:
model, setting, ms per step at each prompt length. Timing only: the switches never change what
is computed beyond float32 rounding (the GPU tests check that).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

CHILD = r"""
import json, sys, time
import numpy as np
import orc
path, steps = sys.argv[1], int(sys.argv[2])
m = orc.Model(path, device="cuda", weights="quantized")
rng = np.random.default_rng(0)
prompt = [int(t) for t in rng.integers(0, m.config["n_vocab"], 512)]
out = {}
for n in (8, 512):
    s = orc.Session(m, n_ctx=n + steps + 8)
    tok = s.forward(prompt[:n], "argmax")
    s.forward([tok], "argmax")
    s.forward([tok], "argmax")  # recorded
    t0 = time.perf_counter()
    for _ in range(steps):
        tok = s.forward([tok], "argmax")  # the greedy choice made on the device
    out[n] = (time.perf_counter() - t0) * 1e3 / steps
    s.close()
m.close()
print(json.dumps(out))
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default="/tmp/orc-models")
    ap.add_argument("--models", default="qwen05-q4_k_m,llama8b-q4_k")
    ap.add_argument("--env", action="append", default=[], help="NAME=VALUE[,NAME=VALUE]; repeat per setting")
    ap.add_argument("--steps", type=int, default=64)
    a = ap.parse_args()
    sys.path.insert(0, HERE)
    import bench_vs_llama  # noqa: PLC0415 - the model writers

    os.makedirs(a.dir, exist_ok=True)
    settings = a.env or [""]
    root = os.path.dirname(HERE)
    rows = []
    for name in a.models.split(","):
        path = bench_vs_llama.prepare(a.dir, name)  # waits for a --prepare-only run writing it
        for setting in settings:
            env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
            for kv in filter(None, setting.split(",")):
                k, v = kv.split("=", 1)
                env[k] = v
            r = subprocess.run([sys.executable, "-c", CHILD, path, str(a.steps)], env=env, capture_output=True,
                               text=True, timeout=600)
            if r.returncode != 0:
                rows.append((name, setting or "default", "error", r.stderr.strip().splitlines()[-1:]))
            else:
                t = json.loads(r.stdout.strip().splitlines()[-1])
                rows.append((name, setting or "default", f"{t['8']:.3f}", f"{t['512']:.3f}"))
            print(rows[-1], flush=True)
    print("\n| model | setting | ms/step, 8-token prompt | ms/step, 512-token prompt |\n|---|---|---:|---:|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} |")


if __name__ == "__main__":
    main()
