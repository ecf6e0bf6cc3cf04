#!/usr/bin/env python3
"""Write a random mixture-of-experts GGUF of a real model's shape, for benchmarks (orc, llama-bench).

    python -m tools.make_moe_bench_model gpt-oss-20b   /data/gpt-oss-20b-random.gguf   # ~12 GB
    python -m tools.make_moe_bench_model qwen3-30b-a3b /data/qwen3-30b-a3b-random.gguf # ~18 GB (Q4_K experts)
    python -m tools.make_moe_bench_model qwen3-30b-a3b q.gguf --expert-type Q8_0 --layers 4   # smaller

Shapes (orc.synth_moe.BENCH_SPECS): gpt-oss-20b: 24 layers, n_embd 2880, 64 heads x 64, 8 KV heads,
32 experts (top 4) of 2880, vocab 201088, MXFP4 experts, Q8_0 attention/embeddings, sliding window
128 on even layers, YaRN x32. qwen3-30b-a3b: 48 layers, n_embd 2048, 32 heads x 128, 4 KV heads,
128 experts (top 8) of 768, vocab 151936, Q4_K (or Q8_0) experts, Q8_0 attention/embeddings.

The weights are random valid blocks (finite fp16 scales, MXFP4 exponents chosen for weights of
std ~1/sqrt(n_in)), written tensor by tensor in chunks: memory stays at one chunk (64 MiB). The
metadata is what llama.cpp reads for these architectures, with a byte-level BPE vocabulary of
the right size whose special tokens sit at the real ids. The numbers mean nothing; the speed does.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from orc import synth_moe  # noqa: E402


def main(argv=None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", choices=sorted(synth_moe.BENCH_SPECS))
    ap.add_argument("out", help="output .gguf path")
    ap.add_argument("--layers", type=int, help="override the layer count (a faster, smaller file)")
    ap.add_argument("--experts", type=int, help="override the expert count")
    ap.add_argument("--vocab", type=int, help="override the vocabulary size")
    ap.add_argument("--expert-type", choices=["MXFP4", "Q4_K", "Q8_0"], help="ggml type of the expert weights")
    ap.add_argument("--weight-type", choices=["Q8_0", "F16", "F32"], help="ggml type of the other matrices")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--tile", action="store_true", help="repeat one random chunk per tensor shape (seconds, not minutes)")
    args = ap.parse_args(argv)

    kw = {}
    for field, value in (("n_layer", args.layers), ("n_expert", args.experts), ("n_vocab", args.vocab),
                         ("expert_type", args.expert_type), ("weight_type", args.weight_type)):
        if value is not None:
            kw[field] = value
    spec = synth_moe.spec(args.model, **kw)
    t0 = time.time()
    last = [0.0]

    def progress(done, total):
        if args.quiet or time.time() - last[0] < 2:
            return
        last[0] = time.time()
        rate = done / max(time.time() - t0, 1e-9) / 2**20
        print(f"\r{done / 2**30:6.2f} / {total / 2**30:.2f} GiB  {rate:7.1f} MiB/s", end="", file=sys.stderr,
              flush=True)

    path = synth_moe.write_bench_model(spec if kw else args.model, args.out, seed=args.seed, progress=progress,
                                       tile=args.tile)
    if not args.quiet:
        print(f"\r{path}: {os.path.getsize(path) / 2**30:.2f} GiB in {time.time() - t0:.1f} s" + " " * 20,
              file=sys.stderr)
    return path


if __name__ == "__main__":
    main()
