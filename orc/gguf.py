"""GGUF files from Python.

`GGUFFile` and `TensorInfo` are implemented in C (csrc/python/py_gguf.c over csrc/gguf/gguf.c); this
module re-exports them and adds pure-Python summaries used by `python -m orc info`:

    with orc.GGUFFile("model.gguf") as f:
        f.metadata["general.architecture"], f.tensors[0].shape, f.raw("output.weight")
        orc.gguf.summarize(f)     # architecture, hyperparameters, parameter count, ...
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from ._orc import GGUFFile, TensorInfo

__all__ = ["GGUFFile", "TensorInfo", "summarize", "parameter_count", "type_histogram", "FILE_TYPES", "TOKEN_TYPES"]

# llama.cpp's llama_ftype (general.file_type), as in gguf-py's LlamaFileType.
FILE_TYPES = {
    0: "ALL_F32", 1: "MOSTLY_F16", 2: "MOSTLY_Q4_0", 3: "MOSTLY_Q4_1", 7: "MOSTLY_Q8_0", 8: "MOSTLY_Q5_0",
    9: "MOSTLY_Q5_1", 10: "MOSTLY_Q2_K", 11: "MOSTLY_Q3_K_S", 12: "MOSTLY_Q3_K_M", 13: "MOSTLY_Q3_K_L",
    14: "MOSTLY_Q4_K_S", 15: "MOSTLY_Q4_K_M", 16: "MOSTLY_Q5_K_S", 17: "MOSTLY_Q5_K_M", 18: "MOSTLY_Q6_K",
    19: "MOSTLY_IQ2_XXS", 20: "MOSTLY_IQ2_XS", 21: "MOSTLY_Q2_K_S", 22: "MOSTLY_IQ3_XS", 23: "MOSTLY_IQ3_XXS",
    24: "MOSTLY_IQ1_S", 25: "MOSTLY_IQ4_NL", 26: "MOSTLY_IQ3_S", 27: "MOSTLY_IQ3_M", 28: "MOSTLY_IQ2_S",
    29: "MOSTLY_IQ2_M", 30: "MOSTLY_IQ4_XS", 31: "MOSTLY_IQ1_M", 32: "MOSTLY_BF16", 36: "MOSTLY_TQ1_0",
    37: "MOSTLY_TQ2_0", 38: "MOSTLY_MXFP4_MOE", 39: "MOSTLY_NVFP4", 40: "MOSTLY_Q1_0", 1024: "GUESSED",
}

# llama.cpp's llama_token_type (tokenizer.ggml.token_type).
TOKEN_TYPES = {0: "undefined", 1: "normal", 2: "unknown", 3: "control", 4: "user_defined", 5: "unused", 6: "byte"}

_SPECIAL_IDS = ("bos", "eos", "eot", "eom", "unknown", "seperator", "padding", "cls", "mask",
                "prefix", "suffix", "middle", "fim_pre", "fim_suf", "fim_mid", "fim_pad", "fim_rep", "fim_sep")


def parameter_count(f: GGUFFile) -> int:
    """The number of parameters: the sum of every tensor's element count."""
    return sum(t.n_elements for t in f.tensors)


def type_histogram(f: GGUFFile) -> dict:
    """{ggml type: {"tensors": n, "elements": n, "bytes": n}}, most bytes first."""
    h: dict = {}
    for t in f.tensors:
        e = h.setdefault(t.type, {"tensors": 0, "elements": 0, "bytes": 0})
        e["tensors"] += 1
        e["elements"] += t.n_elements
        e["bytes"] += t.nbytes
    return dict(sorted(h.items(), key=lambda kv: -kv[1]["bytes"]))


def _jsonable(v, max_items: int | None = 16):
    """A value as JSON-friendly data; long arrays are summarised."""
    if isinstance(v, np.ndarray):
        n = len(v)
        if max_items is not None and n > max_items:
            return {"array": str(v.dtype), "length": n, "head": v[:max_items].tolist()}
        return v.tolist()
    if isinstance(v, list):
        if max_items is not None and len(v) > max_items:
            return {"array": "str", "length": len(v), "head": [_jsonable(x) for x in v[:max_items]]}
        return [_jsonable(x) for x in v]
    if isinstance(v, bytes):
        return {"bytes": v.hex()}
    return v


def _tokenizer(meta: dict) -> dict | None:
    keys = [k for k in meta if k.startswith("tokenizer.")]
    if not keys:
        return None
    out: dict = {}
    for k in ("model", "pre"):
        if f"tokenizer.ggml.{k}" in meta:
            out[k] = meta[f"tokenizer.ggml.{k}"]
    tokens = meta.get("tokenizer.ggml.tokens")
    if tokens is not None:
        out["vocab_size"] = len(tokens)
    merges = meta.get("tokenizer.ggml.merges")
    if merges is not None:
        out["merges"] = len(merges)
    tt = meta.get("tokenizer.ggml.token_type")
    if isinstance(tt, np.ndarray):
        c = Counter(int(x) for x in tt.tolist())
        out["token_types"] = {TOKEN_TYPES.get(k, str(k)): n for k, n in sorted(c.items())}
    special = {}
    for name in _SPECIAL_IDS:
        k = f"tokenizer.ggml.{name}_token_id"
        if k in meta and isinstance(meta[k], int):
            tid = meta[k]
            text = tokens[tid] if tokens is not None and 0 <= tid < len(tokens) else None
            special[name] = {"id": tid, "text": _jsonable(text)}
    if special:
        out["special_tokens"] = special
    for k in sorted(meta):
        if k.startswith("tokenizer.ggml.add_") and isinstance(meta[k], bool):
            out[k[len("tokenizer.ggml."):]] = meta[k]
    tmpl = meta.get("tokenizer.chat_template")
    if isinstance(tmpl, str):
        out["chat_template_chars"] = len(tmpl)
    return out


def summarize(f: GGUFFile, *, tensors: bool = False) -> dict:
    """What `python -m orc info` prints, as a dict (JSON-ready). FLOAT32 values appear as the
    shortest decimal that converts back to the same float32; `f.metadata` has them exactly."""
    meta = f.metadata
    for k, v in meta.items():
        # FLOAT32 scalars as the shortest decimal that reads back as the same float32
        # (1e-06, not 9.999999974752427e-07): what the file's writer meant
        if isinstance(v, float) and f.value_type(k) == "FLOAT32":
            meta[k] = float(str(np.float32(v))) if np.isfinite(v) else v
    arch = meta.get("general.architecture")
    hp = {}
    if isinstance(arch, str):
        prefix = arch + "."
        hp = {k[len(prefix):]: _jsonable(v) for k, v in sorted(meta.items()) if k.startswith(prefix)}
    general = {k[len("general."):]: _jsonable(v) for k, v in sorted(meta.items())
               if k.startswith("general.") and k not in ("general.architecture",)}
    ft = meta.get("general.file_type")
    out = {
        "path": f.path,
        "file_size": f.file_size,
        "gguf_version": f.version,
        "alignment": f.alignment,
        "data_offset": f.data_offset,
        "n_kv": len(meta),
        "n_tensors": len(f.tensors),
        "architecture": arch,
        "name": meta.get("general.name"),
        "file_type": {"id": ft, "name": FILE_TYPES.get(ft, "unknown")} if isinstance(ft, int) else None,
        "parameters": parameter_count(f),
        "hyperparameters": hp,
        "general": general,
        "tensor_types": type_histogram(f),
        "tokenizer": _tokenizer(meta),
    }
    if tensors:
        out["tensors"] = [{"name": t.name, "type": t.type, "shape": list(t.shape), "offset": t.offset,
                           "file_offset": t.file_offset, "nbytes": t.nbytes} for t in f.tensors]
    return out
