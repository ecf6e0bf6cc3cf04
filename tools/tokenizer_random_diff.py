#!/usr/bin/env python3
"""Differential test: random strings built from characters that stress the split rules (every
Unicode whitespace, letters and marks of several scripts, digits of several kinds, apostrophes and
contraction letters, emoji and joiners, CJK, private-use and unassigned code points), tokenized by
orc and by Hugging Face tokenizers built from the same real vocabulary (tests/tokenizer_ref.py).
Prints the first disagreements; exit status 1 if any.

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

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("names", nargs="*", default=list(R.VOCABS))
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    bad_total = 0
    for name in args.names:
        path = R.vocab_path(name)
        if not path:
            print(f"{name}: not fetched (python tools/fetch_tokenizer_vocabs.py)")
            continue
        tk, info = R.build_hf(R.read_gguf_metadata(path))
        tok = orc.Tokenizer(path)
        rng = random.Random(args.seed)
        bad = 0
        for i in range(args.n):
            text = R.random_text(rng)
            special = i % 3 == 0
            want = R.hf_encode(tk, info, text, False, special)
            got = tok.tokenize(text, add_special=False, special=special)
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
        print(f"{name}: {args.n} random texts, {bad} disagreements")
        bad_total += bad
    sys.exit(1 if bad_total else 0)


if __name__ == "__main__":
    main()
