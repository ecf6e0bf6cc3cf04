#!/usr/bin/env python3
"""Cut a real GGUF model down to a small GGUF that still carries real trained weights.

Why: the device machine accepts at most 64 MiB per call, and the real models are 94-470 MiB,
most of it the vocabulary matrices (gemma3-270m: 170 MiB of its 241 MiB is token_embd). This
tool writes a valid, self-consistent GGUF model of the same architecture that keeps

  * the first K decoder layers (blk.0 .. blk.K-1), every tensor byte-for-byte as stored
    (the same quantized blocks, the same ggml types);
  * every non-layer tensor; the vocabulary matrices (token_embd, and output when the model
    has an untied one) restricted to a chosen set of token ids, their rows byte-for-byte;
  * all metadata, with {arch}.block_count = K, per-layer metadata arrays cut to K entries,
    {arch}.vocab_size (when present) = the kept count, the tokenizer arrays (tokens, scores,
    token_type) restricted to the kept ids in ascending original-id order, BPE merges kept
    only when both halves and the merged token survive, special-token ids remapped;
  * provenance under orc.slice.*: source file name and sha256, source block count, and
    orc.slice.token_ids: the original id of every new id (new id i == original id token_ids[i]).

What a sliced model is and is not:
  * It is a different, smaller model: its logits are NOT those of the full model (fewer
    layers; a softmax over the kept ids only). Compare it with goldens computed by HF
    transformers on the sliced file itself (tools/make_real_goldens.py --sliced).
  * With K equal to the source block count, its logits at the kept ids equal the full model's
    (the rows of a ggml type are independent blocks); --self-check verifies the bytes.
  * Its tokenizer is a fragment: text must not be tokenized with it. Feed token ids mapped
    with orc.slice.token_ids (the goldens store them).
  * It exercises: the loader on real quantized layouts and ggml types, dequantization of
    real blocks, and every operation of the first K layers on real activations (for gemma3
    with K >= 6: five sliding-window layers with the local RoPE base and one global layer).
    It does not exercise layers >= K, full-size vocabulary GEMMs or the tokenizer.

Usage:
  python tools/gguf_slice.py SRC.gguf DST.gguf --layers 6 --golden tests/golden/real/gemma3-270m.npz
  python tools/gguf_slice.py --rebuild tests/golden/real/gemma3-270m-L6.npz --out-dir build/models
  python tools/gguf_slice.py SRC.gguf DST.gguf --layers 6 --ids 1,2,3 --n-random 1000 --seed 0
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import pathlib
import sys

import numpy as np
from gguf import GGUFReader, GGUFValueType, GGUFWriter

SLICE_NOTE = ("Sliced by orc tools/gguf_slice.py: first K layers and a subset of the vocabulary, real bytes. "
              "Not the source model: do not tokenize text with it; map ids with orc.slice.token_ids.")

_TOKEN_ARRAYS = ("tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type")
_VOCAB_TENSORS = ("token_embd.weight", "output.weight")
_TOKEN_TYPE_BYTE = 6


def _sha256(p) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _field_value(f):
    """(value, vtype, sub_type) of a reader field; strings stay bytes so nothing is re-encoded."""
    t = f.types[0]
    if t == GGUFValueType.ARRAY:
        sub = f.types[-1]
        if len(f.types) != 2:
            raise ValueError(f"{f.name}: nested arrays are not supported")
        if sub == GGUFValueType.STRING:
            return [bytes(f.parts[i]) for i in f.data], t, sub
        return [f.parts[i][0].item() for i in f.data], t, sub
    if t == GGUFValueType.STRING:
        return bytes(f.parts[f.data[0]]), t, None
    return f.parts[f.data[0]][0].item(), t, None


def special_token_ids(reader: GGUFReader) -> dict[str, int]:
    out = {}
    for k, f in reader.fields.items():
        if k.startswith("tokenizer.ggml.") and k.endswith("_token_id"):
            out[k] = int(f.parts[f.data[0]][0])
    return out


def n_vocab_of(reader: GGUFReader) -> int:
    for t in reader.tensors:
        if t.name == "token_embd.weight":
            return int(t.shape[-1])
    raise ValueError("no token_embd.weight tensor")


def golden_ids(npz_path, top: int = 8) -> set[int]:
    """Token ids a golden file needs: prompt ids, greedy ids, the logit subset, the top-`top` ids."""
    g = np.load(npz_path, allow_pickle=False)
    ids: set[int] = set(g["subset_ids"].tolist())
    for k in g.files:
        if k.endswith("_top_ids"):
            ids.update(g[k][:, :top].ravel().tolist())
        elif k.endswith(("_ids", "_greedy")) and k != "subset_ids":
            ids.update(g[k].ravel().tolist())
    return ids


def choose_ids(reader: GGUFReader, wanted: set[int], n_random: int = 0, seed: int = 0) -> np.ndarray:
    """The kept original ids, ascending: wanted + special ids + byte tokens + n_random seeded extras."""
    n_vocab = n_vocab_of(reader)
    keep = set(int(i) for i in wanted)
    bad = [i for i in keep if not 0 <= i < n_vocab]
    if bad:
        raise ValueError(f"token ids out of range [0, {n_vocab}): {sorted(bad)[:10]}")
    keep.update(i for i in special_token_ids(reader).values() if 0 <= i < n_vocab)
    if "tokenizer.ggml.token_type" in reader.fields:
        f = reader.fields["tokenizer.ggml.token_type"]
        types = np.array([f.parts[i][0] for i in f.data])
        keep.update(np.nonzero(types == _TOKEN_TYPE_BYTE)[0].tolist())  # SentencePiece byte fallback
    if n_random:
        rest = np.setdiff1d(np.arange(n_vocab), np.fromiter(keep, dtype=np.int64))
        rng = np.random.default_rng(seed)
        keep.update(rng.choice(rest, size=min(n_random, rest.size), replace=False).tolist())
    return np.array(sorted(keep), dtype=np.int64)


def _reader(src) -> GGUFReader:
    return src if isinstance(src, GGUFReader) else GGUFReader(src)


def slice_gguf(src, dst, n_layers: int, keep_ids: np.ndarray, *, source_sha256: str | None = None,
               recipe: dict | None = None) -> dict:
    """Write the slice of src (a path or an open GGUFReader) to dst; returns a summary dict."""
    r = _reader(src)
    src, dst = pathlib.Path(r.data.filename if hasattr(r.data, "filename") else src), pathlib.Path(dst)
    arch = bytes(r.fields["general.architecture"].parts[r.fields["general.architecture"].data[0]]).decode()
    n_layer_src = int(r.fields[f"{arch}.block_count"].parts[r.fields[f"{arch}.block_count"].data[0]][0])
    if not 1 <= n_layers <= n_layer_src:
        raise ValueError(f"--layers must be in [1, {n_layer_src}], got {n_layers}")
    n_vocab = n_vocab_of(r)
    keep_ids = np.asarray(keep_ids, dtype=np.int64)
    if keep_ids.size == 0 or np.any(np.diff(keep_ids) <= 0) or keep_ids[0] < 0 or keep_ids[-1] >= n_vocab:
        raise ValueError("keep_ids must be strictly ascending ids in [0, n_vocab)")
    new_of = {int(o): i for i, o in enumerate(keep_ids)}

    w = GGUFWriter(dst, arch)
    if "general.alignment" in r.fields:
        w.add_custom_alignment(int(r.fields["general.alignment"].parts[r.fields["general.alignment"].data[0]][0]))
    kept_tokens = None
    for key, f in r.fields.items():
        if key.startswith("GGUF.") or key in ("general.architecture", "general.alignment"):
            continue
        val, vtype, sub = _field_value(f)
        if key == f"{arch}.block_count":
            val = n_layers
        elif key == f"{arch}.vocab_size":
            val = int(keep_ids.size)
        elif key in _TOKEN_ARRAYS:
            if len(val) != n_vocab:
                raise ValueError(f"{key} has {len(val)} entries, token_embd has {n_vocab} rows")
            val = [val[i] for i in keep_ids]
            if key == "tokenizer.ggml.tokens":
                kept_tokens = set(val)
        elif key.startswith("tokenizer.ggml.") and key.endswith("_token_id"):
            if val not in new_of:
                continue  # an id the file itself has out of range: drop rather than invent one
            val = new_of[val]
        elif key.startswith(f"{arch}.") and vtype == GGUFValueType.ARRAY and len(val) == n_layer_src:
            val = val[:n_layers]  # per-layer hyperparameters
        elif key == "tokenizer.ggml.merges":
            continue  # written below, once the kept tokens are known
        w.add_key_value(key, val, vtype, sub_type=sub)
    if "tokenizer.ggml.merges" in r.fields and kept_tokens is not None:
        merges = _field_value(r.fields["tokenizer.ggml.merges"])[0]
        kept = []
        for m in merges:
            a, sep, b = m.partition(b" ")
            if sep and a in kept_tokens and b in kept_tokens and a + b in kept_tokens:
                kept.append(m)
        if kept:
            w.add_key_value("tokenizer.ggml.merges", kept, GGUFValueType.ARRAY, sub_type=GGUFValueType.STRING)
    w.add_key_value("orc.slice.source_file", src.name, GGUFValueType.STRING)
    w.add_key_value("orc.slice.source_sha256", source_sha256 or _sha256(src), GGUFValueType.STRING)
    w.add_key_value("orc.slice.source_block_count", n_layer_src, GGUFValueType.UINT32)
    w.add_key_value("orc.slice.source_vocab_size", n_vocab, GGUFValueType.UINT32)
    w.add_key_value("orc.slice.token_ids", keep_ids.astype(np.int32).tolist(), GGUFValueType.ARRAY,
                    sub_type=GGUFValueType.INT32)
    w.add_key_value("orc.slice.note", SLICE_NOTE, GGUFValueType.STRING)
    if recipe:
        w.add_key_value("orc.slice.recipe", json.dumps(recipe, sort_keys=True), GGUFValueType.STRING)

    n_tensors = 0
    for t in r.tensors:
        if t.name.startswith("blk."):
            if int(t.name.split(".")[1]) >= n_layers:
                continue
        data = np.asarray(t.data)
        # One row per leading index; a row of a quantized type is a whole number of blocks.
        rows = data.reshape(data.shape[0], -1) if data.ndim > 1 else data.reshape(1, -1)
        if t.name in _VOCAB_TENSORS:
            if data.shape[0] != n_vocab:
                raise ValueError(f"{t.name} has {data.shape[0]} rows, expected {n_vocab}")
            rows = rows[keep_ids]
        raw = np.ascontiguousarray(rows).view(np.uint8)
        if data.ndim <= 1:
            raw = raw.reshape(-1)
        w.add_tensor(t.name, raw, raw_dtype=t.tensor_type)
        n_tensors += 1
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return {"arch": arch, "layers": n_layers, "source_layers": n_layer_src, "n_vocab": int(keep_ids.size),
            "source_vocab": n_vocab, "n_tensors": n_tensors, "bytes": dst.stat().st_size, "sha256": _sha256(dst)}


def self_check(src, dst) -> None:
    """Every tensor of dst is the byte-identical copy of src's (rows at the kept ids for the
    vocabulary matrices); raises AssertionError naming the first difference."""
    a, b = _reader(src), GGUFReader(dst)
    f = b.fields["orc.slice.token_ids"]
    ids = np.array([f.parts[i][0] for i in f.data], dtype=np.int64)
    src_t = {t.name: t for t in a.tensors}
    for t in b.tensors:
        s = src_t[t.name]
        assert s.tensor_type == t.tensor_type, t.name
        want = np.asarray(s.data)
        if t.name in _VOCAB_TENSORS:
            want = want[ids]
        got = np.asarray(t.data)
        assert want.shape == got.shape and want.tobytes() == got.tobytes(), f"{t.name} differs"


def slice_from_recipe(src, dst, recipe: dict, golden_dir) -> dict:
    """Slice src as orc.slice.recipe says: the same recipe and goldens give the same bytes."""
    wanted: set[int] = set(int(x) for x in str(recipe.get("ids", "")).split(",") if x.strip())
    for g in recipe.get("golden", []):
        wanted |= golden_ids(pathlib.Path(golden_dir) / g, int(recipe.get("golden_top", 8)))
    r = _reader(src)
    ids = choose_ids(r, wanted, int(recipe.get("n_random", 0)), int(recipe.get("seed", 0)))
    return slice_gguf(r, dst, int(recipe["layers"]), ids, recipe=recipe)


def rebuild(golden_path, out_dir, src=None) -> pathlib.Path:
    """Re-create the sliced file a sliced golden was computed on (recipe and sha256 from its meta)
    in out_dir, from src or the pinned source model in the orc.fixtures cache."""
    golden_path = pathlib.Path(golden_path)
    meta = json.loads(str(np.load(golden_path, allow_pickle=False)["meta"]))
    if "recipe" not in meta:
        raise SystemExit(f"{golden_path} is not the golden of a sliced model")
    if src is None:
        import importlib.util
        spec = importlib.util.spec_from_file_location(
            "orc_fixtures", pathlib.Path(__file__).resolve().parent.parent / "orc" / "fixtures.py")
        fixtures = importlib.util.module_from_spec(spec)
        sys.modules["orc_fixtures"] = fixtures
        spec.loader.exec_module(fixtures)
        src_meta = json.loads(str(np.load(golden_path.parent / meta["source_golden"], allow_pickle=False)["meta"]))
        src = fixtures.path(src_meta["fixture"])
    out = pathlib.Path(out_dir) / meta["file"]
    out.parent.mkdir(parents=True, exist_ok=True)
    info = slice_from_recipe(src, out, meta["recipe"], golden_path.parent)
    if info["sha256"] != meta["sha256"]:
        out.unlink()
        raise SystemExit(f"rebuilt {out.name} has sha256 {info['sha256']}, the golden says {meta['sha256']}")
    print(f"{out}  {info['bytes']} bytes  sha256 {info['sha256']} (matches {golden_path.name})")
    return out


def main(argv=None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] == "--rebuild":
        ap = argparse.ArgumentParser(description="re-create a sliced golden's model file")
        ap.add_argument("--rebuild", required=True, metavar="GOLDEN.npz")
        ap.add_argument("--out-dir", required=True)
        ap.add_argument("--src", help="the source model (default: the pinned one from the orc.fixtures cache)")
        a = ap.parse_args(argv)
        rebuild(a.rebuild, a.out_dir, a.src)
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--layers", type=int, required=True, help="keep blk.0 .. blk.LAYERS-1")
    ap.add_argument("--golden", action="append", default=[],
                    help="keep the token ids this golden .npz needs (all goldens in one folder)")
    ap.add_argument("--golden-top", type=int, default=8, help="how many top-k ids per position to keep from a golden")
    ap.add_argument("--ids", default="", help="comma-separated extra token ids")
    ap.add_argument("--n-random", type=int, default=0, help="extra seeded random ids")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--self-check", action="store_true", help="re-read both files and compare every tensor's bytes")
    args = ap.parse_args(argv)
    golden_dirs = {os.path.dirname(os.path.abspath(g)) for g in args.golden}
    if len(golden_dirs) > 1:
        ap.error("all --golden files must be in one folder")
    recipe = {"layers": args.layers, "golden": [os.path.basename(g) for g in args.golden],
              "golden_top": args.golden_top, "ids": args.ids, "n_random": args.n_random, "seed": args.seed}
    src = GGUFReader(args.src)  # parsing a 262k-token vocabulary takes seconds: do it once
    info = slice_from_recipe(src, args.dst, recipe, golden_dirs.pop() if golden_dirs else ".")
    if args.self_check:
        self_check(src, args.dst)
        info["self_check"] = "ok"
    for k, v in info.items():
        print(f"{k:14s} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
