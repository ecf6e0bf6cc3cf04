"""Every kernel of one-token decode steps, timed one by one by Nsight Compute: which launches a step
pays for, and how long each runs alone (no overlap, so their sum is above the graph's step time).

    python bench/ncu_decode.py [--dir /tmp/orc-models] [--models qwen05-q4_k_m] [--steps 2]
        [--llama /tmp/llama/build/bin/llama-bench]

Runs itself under `ncu --profile-from-start off` (the profiled range is opened around the steps
only, after an 8-token prompt and two warm steps) and prints, per model, one markdown table:
kernel (name without template arguments), launches a step, us a step, us a launch (median),
grid. Needs ncu on PATH; the environment's ORC_* switches pass through. With --llama, the same
table for llama.cpp's decode of the same file (llama-bench -p 0 -n STEPS -r 1 --no-warmup, every
kernel of its STEPS one-token steps, the first one's graph capture included), so the two tools'
kernels for the same layer can be set side by side.
"""
from __future__ import annotations

import argparse
import csv
import ctypes
import io
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def child(path, steps):
    import numpy as np  # noqa: PLC0415

    sys.path.insert(0, os.path.dirname(HERE))
    import orc  # noqa: PLC0415

    rt = ctypes.CDLL("libcudart.so.13")
    m = orc.Model(path, device="cuda", weights="quantized")
    s = orc.Session(m, n_ctx=64, graphs=False)
    tok = int(np.argmax(s.forward(list(range(1, 9)), "last")))
    for _ in range(2):
        tok = int(np.argmax(s.forward([tok], "last")))
    rt.cudaDeviceSynchronize()
    rt.cudaProfilerStart()
    for _ in range(steps):
        tok = int(np.argmax(s.forward([tok], "last")))
    rt.cudaDeviceSynchronize()
    rt.cudaProfilerStop()
    s.close()
    m.close()


def short(name):
    """orc_gemv_kernel<Q4K, 4, ...>(args) -> orc_gemv_kernel<Q4K>"""
    base = name.split("(")[0]
    if "<" in base:
        head, rest = base.split("<", 1)
        first = rest.split(",")[0].split(">")[0].strip()
        return f"{head}<{first}>"
    return base


def report(name, text, steps):
    rows = [r for r in csv.DictReader(io.StringIO(text[text.find('"ID"'):])) if r.get("Kernel Name")]
    rows = [r for r in rows if r.get("gpu__time_duration.sum", "").replace(".", "").replace(",", "").isdigit()]
    if not rows:
        print(f"## {name}: ncu gave no kernel rows\n{text[-2000:]}")
        return
    by = {}
    for r in rows:
        us = float(r["gpu__time_duration.sum"].replace(",", "")) / 1e3  # ns
        key = (short(r["Kernel Name"]), r.get("launch__grid_size", "?"))
        by.setdefault(key, []).append(us)
    total = sum(sum(v) for v in by.values()) / steps
    print(f"\n## {name}: {len(rows) / steps:.0f} launches a step, {total:.1f} us a step (each alone)")
    print("| kernel | grid | launches a step | us a step | us a launch (median) |")
    print("|---|---:|---:|---:|---:|")
    for (k, grid), v in sorted(by.items(), key=lambda kv: -sum(kv[1])):
        print(f"| {k} | {grid} | {len(v) / steps:.1f} | {sum(v) / steps:.1f} | {statistics.median(v):.2f} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default="/tmp/orc-models")
    ap.add_argument("--models", default="qwen05-q4_k_m")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--child", default=None)
    ap.add_argument("--llama", default=None, help="llama-bench to profile on the same files")
    ap.add_argument("--no-orc", action="store_true", help="with --llama: profile llama.cpp only")
    a = ap.parse_args()
    if a.child:
        child(a.child, a.steps)
        return
    sys.path.insert(0, HERE)
    import bench_vs_llama  # noqa: PLC0415 - the model writers

    os.makedirs(a.dir, exist_ok=True)
    for name in a.models.split(","):
        path = bench_vs_llama.prepare(a.dir, name)  # waits for a --prepare-only run writing it
        ncu = ["ncu", "--clock-control", "none", "--cache-control", "none", "--csv", "--page", "raw",
               "--print-units", "base", "--metrics", "gpu__time_duration.sum,launch__grid_size"]
        runs = [] if a.no_orc and a.llama else [(name, ncu[:1] + ["--profile-from-start", "off"] + ncu[1:] +
                 [sys.executable, os.path.abspath(__file__), "--child", path, "--steps", str(a.steps)])]
        if a.llama:
            runs.append((f"{name} (llama.cpp)", ncu + [a.llama, "-m", path, "-ngl", "99", "-p", "0", "-n",
                                                      str(a.steps), "-r", "1", "--no-warmup"]))
        for title, cmd in runs:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            if p.returncode:
                print(f"## {title}: ncu rc {p.returncode}\n{p.stderr[-2000:]}\n{p.stdout[-2000:]}")
                continue
            report(title, p.stdout, a.steps)


if __name__ == "__main__":
    main()
