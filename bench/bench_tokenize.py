#!/usr/bin/env python3
"""Tokenizer throughput: 1 MB of English text with Qwen2's 151,936-token byte-level BPE
vocabulary (and the other fetched vocabularies), orc against Hugging Face tokenizers built
from the same vocabulary (tests/tokenizer_ref.py). Prints a table; no assertions beyond
orc and HF agreeing on the ids.

The text: docstrings of the Python standard library (English prose with some code), in a
fixed module order, cut to 1 MB (1,000,000 bytes, on a character boundary): tokenizer_ref.english_text.

    python tools/fetch_tokenizer_vocabs.py   # once
    python bench/bench_tokenize.py [--vocab qwen2 ...] [--repeat 5] [--mb 1]

"gpt-oss" (o200k_harmony) is built into a temporary GGUF file from o200k_base.tiktoken
(tools/fetch_o200k_vocab.py), and is also timed against tiktoken when it is installed.
"""
import argparse
import os
import platform
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

import orc  # noqa: E402
import tokenizer_ref as R  # noqa: E402

def timeit(fn, repeat):
    best = float("inf")
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def gpt_oss_vocab(tmp):
    """A GGUF file of gpt-oss's vocabulary built from o200k_base.tiktoken, or None."""
    base = os.environ.get("TIKTOKEN_ENCODINGS_BASE") or os.path.expanduser("~/.cache/orc/tiktoken")
    src = os.path.join(base, "o200k_base.tiktoken")
    if not os.path.exists(src):
        return None, None
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import fetch_o200k_vocab as tool

    path = os.path.join(tmp, "gpt-oss-vocab.gguf")
    tool.write_gguf(tool.gguf_metadata(src), path)
    return path, src


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vocab", nargs="*", default=["qwen2", "llama-bpe", "gpt-2", "gemma3", "llama-spm", "gpt-oss"])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--mb", type=float, default=1.0)
    args = ap.parse_args()
    text = R.english_text(int(args.mb * 1_000_000))
    nb = len(text.encode())
    lines = text.splitlines(keepends=True)
    print(f"text: {nb:,} bytes, {len(lines):,} lines; python {platform.python_version()}, "
          f"{platform.machine()}, {os.cpu_count()} cpus; best of {args.repeat}")
    print(f"{'vocab':10} {'n_vocab':>8} {'ids':>9} {'orc s':>8} {'orc MB/s':>9} {'HF s':>8} {'HF MB/s':>8} "
          f"{'orc lines s':>11} {'decode s':>9}")
    import tempfile

    tmp = tempfile.TemporaryDirectory()
    for name in args.vocab:
        src = None
        path, src = gpt_oss_vocab(tmp.name) if name == "gpt-oss" else (R.vocab_path(name), None)
        if not path:
            print(f"{name:10} (not fetched: python tools/fetch_tokenizer_vocabs.py)")
            continue
        tok = orc.Tokenizer(path)
        t_orc, ids = timeit(lambda: tok.tokenize(text, add_special=False), args.repeat)
        t_lines, _ = timeit(lambda: [tok.tokenize(l, add_special=False) for l in lines], max(1, args.repeat // 2))
        t_dec, back = timeit(lambda: tok.detokenize(ids), args.repeat)
        assert back == text
        hf, info = R.build_hf(R.read_gguf_metadata(path))
        hf.encode_special_tokens = True
        t_hf, enc = timeit(lambda: hf.encode(text, add_special_tokens=False), args.repeat)
        agree = "" if enc.ids == ids else "  (ids differ from HF!)"
        print(f"{name:10} {tok.vocab_size:8d} {len(ids):9,d} {t_orc:8.3f} {nb / t_orc / 1e6:9.2f} {t_hf:8.3f} "
              f"{nb / t_hf / 1e6:8.2f} {t_lines:11.3f} {t_dec:9.3f}{agree}")
        if src:
            try:
                import tiktoken
                from tiktoken.load import load_tiktoken_bpe
            except ImportError:
                continue
            te = tiktoken.Encoding(name="o200k_bench", pat_str=R.REGEX["o200k"], mergeable_ranks=load_tiktoken_bpe(src),
                                   special_tokens={})
            t_tk, tids = timeit(lambda: te.encode_ordinary(text), args.repeat)
            print(f"{'':10} tiktoken {tiktoken.__version__}: {t_tk:.3f} s ({nb / t_tk / 1e6:.2f} MB/s)"
                  + ("" if tids == ids else "  (ids differ from tiktoken!)"))
    tmp.cleanup()


if __name__ == "__main__":
    main()
