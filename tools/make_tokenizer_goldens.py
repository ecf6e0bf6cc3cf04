#!/usr/bin/env python3
"""Write tests/data/tokenizer_goldens.json: the token ids Hugging Face `tokenizers` gives for
every text of tests/data/tokenizer_corpus.json, for each real vocabulary that
tools/fetch_tokenizer_vocabs.py fetched. The reference tokenizers are built from the GGUF
vocabularies by tests/tokenizer_ref.py (configured as the models' tokenizer.json files are);
before its ids are recorded, each reference is checked against llama.cpp's published test
vectors for that vocabulary, when they exist.

Per vocabulary and text: "ids" is tokenize(text, add_special=False, special=False); "special"
is tokenize(text, add_special=True, special=True), stored only where it differs from
[bos] + ids + [eos] as the vocabulary's add_bos/add_eos ask.

    python tools/fetch_tokenizer_vocabs.py
    python tools/make_tokenizer_goldens.py [NAME ...]
"""
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
import tokenizer_ref as R  # noqa: E402


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main():
    import tokenizers

    names = sys.argv[1:] or list(R.VOCABS)
    out_path = os.path.join(R.DATA, "tokenizer_goldens.json")
    doc = {"comment": __doc__.strip().splitlines()[0], "tokenizers_version": tokenizers.__version__, "vocabs": {}}
    if os.path.exists(out_path):
        with open(out_path, encoding="utf-8") as f:
            old = json.load(f)
        doc["vocabs"] = old.get("vocabs", {})
    corpus = R.load_corpus()
    for name in names:
        path = R.vocab_path(name)
        if not path:
            print(f"{name}: not fetched, skipped")
            continue
        md = R.read_gguf_metadata(path)
        tk, info = R.build_hf(md)
        vec = R.llamacpp_vectors(name)
        if vec:
            bad = [s for s, ids in vec if R.hf_encode(tk, info, s, False, False) != ids]
            if bad:
                raise SystemExit(f"{name}: the reference disagrees with llama.cpp's vectors on {bad[:3]!r}")
        cases = []
        for text in corpus:
            ids = R.hf_encode(tk, info, text, False, False)
            sp = R.hf_encode(tk, info, text, True, True)
            case = {"ids": ids}
            plain = ([info["bos"]] if info["add_bos"] else []) + ids + ([info["eos"]] if info["add_eos"] else [])
            if sp != plain:
                case["special"] = sp
            cases.append(case)
        doc["vocabs"][name] = {
            "file": R.VOCABS[name],
            "sha256": sha256(path),
            "checked_against_llama_cpp_vectors": bool(vec),
            "bos": info["bos"], "eos": info["eos"], "add_bos": bool(info["add_bos"]), "add_eos": bool(info["add_eos"]),
            "cases": cases,
        }
        print(f"{name}: {len(cases)} texts, {sum(len(c['ids']) for c in cases)} ids")
    with open(out_path, "w", encoding="utf-8") as f:
        f.write("{\n")
        f.write(f'"comment": {json.dumps(doc["comment"])},\n')
        f.write(f'"tokenizers_version": {json.dumps(doc["tokenizers_version"])},\n')
        f.write('"vocabs": {\n')
        items = list(doc["vocabs"].items())
        for k, (name, v) in enumerate(items):
            head = {key: val for key, val in v.items() if key != "cases"}
            f.write(f"{json.dumps(name)}: {{\n")
            for key, val in head.items():
                f.write(f"  {json.dumps(key)}: {json.dumps(val)},\n")
            f.write('  "cases": [\n')
            for j, c in enumerate(v["cases"]):
                f.write("    " + json.dumps(c, separators=(",", ":")) + ("," if j + 1 < len(v["cases"]) else "") + "\n")
            f.write("  ]\n}" + ("," if k + 1 < len(items) else "") + "\n")
        f.write("}\n}\n")
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
