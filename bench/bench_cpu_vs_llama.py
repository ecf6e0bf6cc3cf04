"""orc's CPU backend beside llama.cpp's CPU backend on the same GGUF file (issue 14, item 6).

    python bench/bench_cpu_vs_llama.py [--model smollm2-135m-instruct] [--llama-python /work/lcpvenv/bin/python]
                                       [--prompt 16] [--gen 64] [--reps 3] [--threads 0]

llama.cpp runs through llama-cpp-python (build 0.3.36 from PyPI, which vendors llama.cpp
0c1e57098, in its own environment: `pip install llama-cpp-python==0.3.36`), in a subprocess of
that environment's Python. Both tools: one prompt of --prompt tokens, then --gen greedy
single-token steps (the logits of each step reach Python, the argmax is taken there), the
same thread count, median of --reps. orc runs weights="quantized" (blocks decoded in
registers) and weights="dequantized" (float32 copies). Prints a markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import orc  # noqa: E402
from orc import fixtures  # noqa: E402

LLAMA_SCRIPT = r"""
import json, sys, time, statistics
import numpy as np
from llama_cpp import Llama
path, prompt, gen, reps, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
llm = Llama(model_path=path, n_ctx=prompt + gen + 8, n_threads=threads, n_threads_batch=threads, n_batch=512,
            verbose=False)
rng = np.random.default_rng(0)
ids = [int(t) for t in rng.integers(100, 1000, prompt)]
pp, tg = [], []
for r in range(reps + 1):
    llm.reset()
    t0 = time.perf_counter(); llm.eval(ids); t1 = time.perf_counter()
    tok = int(np.argmax(llm.scores[llm.n_tokens - 1]))
    t2 = time.perf_counter()
    for _ in range(gen):
        llm.eval([tok])
        tok = int(np.argmax(llm.scores[llm.n_tokens - 1]))
    t3 = time.perf_counter()
    if r:  # the first round warms up
        pp.append(prompt / (t1 - t0)); tg.append(gen / (t3 - t2))
print(json.dumps({"pp": statistics.median(pp), "tg": statistics.median(tg), "tg_samples": tg}))
"""


def orc_run(path, weights, prompt, gen, reps, threads):
    m = orc.Model(path, device="cpu", weights=weights, n_threads=threads)
    ids = [int(t) for t in np.random.default_rng(0).integers(100, 1000, prompt)]
    pp, tg = [], []
    for r in range(reps + 1):
        s = orc.Session(m, n_ctx=prompt + gen + 8)
        t0 = time.perf_counter()
        last = s.forward(ids, "last")
        t1 = time.perf_counter()
        for _ in range(gen):
            last = s.forward([int(np.argmax(last))], "last")
        t2 = time.perf_counter()
        s.close()
        if r:
            pp.append(prompt / (t1 - t0))
            tg.append(gen / (t2 - t1))
    mem = m.memory()
    m.close()
    return {"pp": statistics.median(pp), "tg": statistics.median(tg), "tg_samples": tg,
            "weights_mb": (mem["weights"] + mem["quantized"]) / 1e6}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m-instruct", help="a .gguf path or a pinned fixture name")
    ap.add_argument("--llama-python", default="/work/lcpvenv/bin/python")
    ap.add_argument("--prompt", type=int, default=16)
    ap.add_argument("--gen", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="0: all cores")
    a = ap.parse_args()
    path = a.model if a.model.endswith(".gguf") else str(fixtures.path(a.model))
    threads = a.threads or os.cpu_count()
    print(f"{path} ({os.path.getsize(path) / 2**20:.0f} MiB), {threads} threads, prompt {a.prompt}, "
          f"{a.gen} greedy steps, median of {a.reps}", flush=True)
    rows = []
    if os.path.exists(a.llama_python):
        r = subprocess.run([a.llama_python, "-c", LLAMA_SCRIPT, path, str(a.prompt), str(a.gen), str(a.reps),
                            str(threads)], capture_output=True, text=True, timeout=1800)
        ll = json.loads(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 else {"error": r.stderr[-300:]}
    else:
        ll = {"error": f"no {a.llama_python}"}
    print(f"llama.cpp: {ll}", flush=True)
    for w in ("quantized", "dequantized"):
        o = orc_run(path, w, a.prompt, a.gen, a.reps, a.threads)
        print(f"orc {w}: {o}", flush=True)
        rows.append((w, o))
    print()
    print("| orc weights | orc weights MB | orc prefill tok/s | llama.cpp prefill | orc decode tok/s | llama.cpp decode | "
          "orc / llama.cpp decode |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for w, o in rows:
        ltg, lpp = ll.get("tg"), ll.get("pp")
        print(f"| {w} | {o['weights_mb']:.0f} | {o['pp']:.0f} | {lpp or 0:.0f} | {o['tg']:.1f} | {ltg or 0:.1f} | "
              f"{o['tg'] / ltg if ltg else float('nan'):.2f} |")


if __name__ == "__main__":
    main()
