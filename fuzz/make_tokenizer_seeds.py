#!/usr/bin/env python3
"""Write fuzz/corpus-tok-seeds/ for fuzz/fuzz_tokenizer.c: texts from the tokenizer corpus (first
byte odd: built-in vocabularies) and small vocabulary-only GGUF files (first byte even)."""
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
import tokenizer_ref as R  # noqa: E402

out = os.path.join(ROOT, "fuzz", "corpus-tok-seeds")
os.makedirs(out, exist_ok=True)
for i, text in enumerate(R.load_corpus()):
    with open(os.path.join(out, f"text{i:03d}"), "wb") as f:
        f.write(bytes([1, i % 6]) + text.encode())  # i % 6: the pre-tokenizer (pres in fuzz_tokenizer.c)
for name, md in [("bpe", R.train_bpe_metadata("qwen2", vocab_size=300)),
                 ("spm", R.train_spm_metadata(vocab_size=300))]:
    path = os.path.join(out, f"vocab_{name}.gguf")
    R.write_gguf(path, md)
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(b"\x00" + data)
print(f"seeds in {out}")
