"""CPU decode when several orc models decode at once in one process (Python threads; orc releases
the GIL), against each alone: the thread pools share the machine's cores.

    python bench/bench_cpu_concurrent.py [--model smollm2-135m-instruct] [--models 2] [--gen 64] [--threads 0]

Each model is its own orc.Model of the same file (weights="quantized") with --threads threads
(0: one per CPU). Greedy single-token steps after a 16-token prompt; tokens per second of each
model, the sum, and the lone model's rate. Prints a markdown table. Timing only: results are
bitwise the same whatever the thread count (tests/test_cpu_quantized.py).
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import orc  # noqa: E402
from orc import fixtures  # noqa: E402


def decode(model, gen, out, i, start):
    s = orc.Session(model, n_ctx=16 + gen + 8)
    tok = int(np.argmax(s.forward(list(range(100, 116)), "last")))
    start.wait()
    t0 = time.perf_counter()
    for _ in range(gen):
        tok = int(np.argmax(s.forward([tok], "last")))
    out[i] = gen / (time.perf_counter() - t0)
    s.close()


def run(models, gen):
    out = [0.0] * len(models)
    start = threading.Barrier(len(models))
    ths = [threading.Thread(target=decode, args=(m, gen, out, i, start)) for i, m in enumerate(models)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="smollm2-135m-instruct", help="an orc.fixtures name or a .gguf path")
    p.add_argument("--models", type=int, default=2, help="models decoding at once")
    p.add_argument("--gen", type=int, default=64)
    p.add_argument("--threads", type=int, default=0)
    a = p.parse_args(argv)
    path = a.model if a.model.endswith(".gguf") else fixtures.path(a.model)
    models = [orc.Model(path, n_threads=a.threads) for _ in range(a.models)]
    run(models[:1], 8)  # warm-up
    alone = run(models[:1], a.gen)[0]
    together = run(models, a.gen)
    cpus = os.cpu_count()
    print(f"{os.path.basename(path)}, {a.threads or cpus} threads a model, {cpus} CPUs, {a.gen} greedy steps\n")
    print("| models at once | tok/s each | tok/s in all | alone |")
    print("|---:|---|---:|---:|")
    print(f"| {a.models} | {' / '.join(f'{v:.1f}' for v in together)} | {sum(together):.1f} | {alone:.1f} |")
    for m in models:
        m.close()


if __name__ == "__main__":
    main()
