#!/usr/bin/env python3
"""Differential test: random strings built from characters that stress the split rules (every
Unicode whitespace, letters and marks of several scripts, digits of several kinds, apostrophes and
contraction letters, emoji and joiners, CJK, private-use and unassigned code points), tokenized by
orc and by Hugging Face tokenizers built from the same real vocabulary (tests/tokenizer_ref.py).
Prints the first disagreements; exit status 1 if any.

"gpt-oss" (o200k_harmony, built from o200k_base.tiktoken as bench/bench_tokenize.py does) is also
compared with tiktoken, and half of its strings come from tokenizer_ref.CASE_POOL (letter case).

    python tools/tokenizer_random_diff.py [--n 20000] [--seed 1] [NAME ...]
"""
import argparse
import os
import random
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))
import orc  # noqa: E402
import tokenizer_ref as R  # noqa: E402

def tiktoken_o200k(src):
    """tiktoken's o200k_harmony from the local file, or None without tiktoken."""
    try:
        import tiktoken
        import tiktoken_ext.openai_public as public
        from tiktoken.load import load_tiktoken_bpe
    except ImportError:
        return None
    ranks = load_tiktoken_bpe(src)
    saved, public.load_tiktoken_bpe = public.load_tiktoken_bpe, lambda *a, **k: ranks
    try:
        return tiktoken.Encoding(**public.o200k_harmony())
    finally:
        public.load_tiktoken_bpe = saved


def main():
    import tempfile

    sys.path.insert(0, os.path.join(ROOT, "bench"))
    from bench_tokenize import gpt_oss_vocab

    ap = argparse.ArgumentParser()
    ap.add_argument("names", nargs="*", default=list(R.VOCABS) + ["gpt-oss"])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    bad_total = 0
    tmp = tempfile.TemporaryDirectory()
    for name in args.names:
        src = None
        path, src = gpt_oss_vocab(tmp.name) if name == "gpt-oss" else (R.vocab_path(name), None)
        if not path:
            print(f"{name}: not fetched (python tools/fetch_tokenizer_vocabs.py)")
            continue
        tk, info = R.build_hf(R.read_gguf_metadata(path))
        tok = orc.Tokenizer(path)
        enc = tiktoken_o200k(src) if src else None
        rng = random.Random(args.seed)
        bad = 0
        for i in range(args.n):
            text = R.random_case_text(rng) if src and i % 2 else R.random_text(rng)
            special = i % 3 == 0
            want = R.hf_encode(tk, info, text, False, special)
            got = tok.tokenize(text, add_special=False, special=special)
            if enc is not None:
                tt = enc.encode(text, allowed_special="all") if special else enc.encode_ordinary(text)
                if tt != got:
                    bad += 1
                    if bad <= 5:
                        print(f"{name}: TIKTOKEN MISMATCH special={special} {text!r}\n   tiktoken {tt}\n   orc {got}")
            if got != want:
                bad += 1
                if bad <= 5:
                    print(f"{name}: MISMATCH special={special} {text!r}\n   hf  {want}\n   orc {got}")
            elif tok.detokenize(got) != text and not (tok.model == "llama" and "\u2581" in text):
                # (a literal U+2581 in SentencePiece text comes back as a space: the vocabulary
                # cannot tell them apart)
                bad += 1
                if bad <= 5:
                    print(f"{name}: ROUND TRIP {text!r} -> {tok.detokenize(got)!r}")
        refs = "HF and tiktoken" if enc is not None else "HF"
        print(f"{name}: {args.n} random texts against {refs}, {bad} disagreements")
        bad_total += bad
    tmp.cleanup()
    sys.exit(1 if bad_total else 0)


if __name__ == "__main__":
    main()
