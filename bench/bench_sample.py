"""Time per orc.Sampler.sample() call (and .probs()) for vocabularies of 32k,
152k and 262k tokens under a few parameter sets. Prints a Markdown table.

    PYTHONPATH=. python bench/bench_sample.py [--repeat N]

Logits are standard normal times a scale: 3.0 is peaked like a language model's
next-token distribution (a few hundred tokens carry most of the mass); 0.5 is
nearly flat, the worst case for top-p without top-k (it has to sort).
"""
import argparse
import platform
import time

import numpy as np

import orc

CASES = [
    ("greedy", 3.0, dict(temperature=0.0)),
    ("T=0.8 (no truncation)", 3.0, dict(temperature=0.8)),
    ("top_k=40", 3.0, dict(temperature=0.8, top_k=40)),
    ("llama.cpp defaults*", 3.0, dict(temperature=0.8, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.1)),
    ("top_p=0.95", 3.0, dict(temperature=0.8, top_p=0.95)),
    ("top_p=0.95, flat logits", 0.5, dict(temperature=0.8, top_p=0.95)),
    ("min_p=0.05", 3.0, dict(temperature=0.8, min_p=0.05)),
    ("T=0.8, flat logits", 0.5, dict(temperature=0.8)),
]


def per_call_us(fn, repeat):
    """Best of `repeat` calls: on a shared machine the minimum is the stable statistic."""
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times) * 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args()
    vocabs = [32000, 151936, 262144]
    rng = np.random.default_rng(0)
    print(f"orc {orc.__version__}, {platform.processor() or platform.machine()}, numpy {np.__version__}; "
          f"best of {args.repeat} calls, microseconds per call; history = 64 random ids")
    print()
    print("| case | " + " | ".join(f"sample {v // 1000}k" for v in vocabs) + " | "
          + " | ".join(f"probs {v // 1000}k" for v in vocabs) + " |")
    print("|---" * (1 + 2 * len(vocabs)) + "|")
    data = {v: {s: (rng.standard_normal(v) * s).astype(np.float32) for s in (3.0, 0.5)} for v in vocabs}
    hist = {v: rng.integers(0, v, 64) for v in vocabs}
    for name, scale, params in CASES:
        s = orc.Sampler(1, **params)
        row_s, row_p = [], []
        for v in vocabs:
            x, h = data[v][scale], hist[v]
            row_s.append(per_call_us(lambda: s.sample(x, history=h), args.repeat))
            row_p.append(per_call_us(lambda: s.probs(x, history=h), args.repeat))
        print(f"| {name} | " + " | ".join(f"{t:.0f}" for t in row_s) + " | "
              + " | ".join(f"{t:.0f}" for t in row_p) + " |")
    floor = [per_call_us(lambda: int(np.argmax(data[v][3.0])), args.repeat) for v in vocabs]
    print(f"| (np.argmax, for scale) | " + " | ".join(f"{t:.0f}" for t in floor) + " | | | |")
    print()
    print("* temperature 0.8, top_k 40, top_p 0.95, min_p 0.05, repeat_penalty 1.1 (last 64 tokens)")


if __name__ == "__main__":
    main()
