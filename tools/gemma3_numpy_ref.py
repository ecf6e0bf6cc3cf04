#!/usr/bin/env python3
"""A plain NumPy gemma3 forward pass written from docs/gemma3.md, checked against the HF goldens.

It exists to check each convention of docs/gemma3.md against the reference rather than from
memory: the forward below follows the document line by line (weights dequantized by gguf-py,
float32), its logits and residual stream are compared with tests/golden/real/gemma3-270m.npz
(HF transformers), and then each convention is broken on purpose, one at a time, to show that
the goldens notice it (an ablation that does not move the error would be a convention the
goldens cannot check).

  python tools/gemma3_numpy_ref.py [--golden tests/golden/real/gemma3-270m.npz] [--model PATH]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import pathlib
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent


def read_gguf(path):
    """(scalar metadata, {tensor name: (ggml type, ne, absolute offset)}) of a GGUF file.

    A minimal header walk: gguf-py's GGUFReader builds a Python object per vocabulary string
    (seconds for 262k tokens), this only skips over them."""
    import struct
    from gguf import GGMLQuantizationType
    buf = np.memmap(path, dtype=np.uint8, mode="r")
    mv = memoryview(buf)
    pos = 0

    def rd(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, mv, pos)
        pos += struct.calcsize("<" + fmt)
        return v[0]

    scal = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}

    def value(t):
        nonlocal pos
        if t == 8:
            n = rd("Q")
            s = bytes(mv[pos:pos + n])
            pos += n
            return s.decode("utf-8", "replace")
        if t == 9:
            et, n = rd("I"), rd("Q")
            if et == 8:
                for _ in range(n):
                    pos += 8 + struct.unpack_from("<Q", mv, pos)[0]
            else:
                pos += n * struct.calcsize(scal[et])
            return None  # arrays are not needed here
        return rd(scal[t])

    if bytes(mv[:4]) != b"GGUF":
        raise ValueError(f"{path}: not a GGUF file")
    pos = 4
    rd("I")
    n_tensors, n_kv = rd("Q"), rd("Q")
    kv = {}
    for _ in range(n_kv):
        n = rd("Q")
        key = bytes(mv[pos:pos + n]).decode()
        pos += n
        kv[key] = value(rd("I"))
    infos = []
    for _ in range(n_tensors):
        n = rd("Q")
        name = bytes(mv[pos:pos + n]).decode()
        pos += n
        ne = [rd("Q") for _ in range(rd("I"))]
        infos.append((name, GGMLQuantizationType(rd("I")), ne, rd("Q")))
    align = kv.get("general.alignment") or 32
    start = (pos + align - 1) // align * align
    return kv, {n: (t, ne, start + off) for n, t, ne, off in infos}, buf


class Gemma3:
    """Weights and hyperparameters of a gemma3 GGUF, dequantized to float32 by gguf-py."""

    def __init__(self, path):
        from gguf import GGML_QUANT_SIZES
        from gguf.quants import dequantize
        kvs, tensors, buf = read_gguf(path)
        a = "gemma3"
        kv = lambda k, default=None: kvs.get(k, default) if kvs.get(k) is not None else default  # noqa: E731
        if kvs.get("general.architecture") != a:
            raise ValueError(f"{path}: not a gemma3 file")
        self.n_layer = kv(f"{a}.block_count")
        self.n_embd = kv(f"{a}.embedding_length")
        self.n_head = kv(f"{a}.attention.head_count")
        self.n_head_kv = kv(f"{a}.attention.head_count_kv")
        self.head_dim = kv(f"{a}.attention.key_length")
        self.eps = np.float32(kv(f"{a}.attention.layer_norm_rms_epsilon"))
        self.window = kv(f"{a}.attention.sliding_window")
        self.base_global = kv(f"{a}.rope.freq_base")
        self.base_local = kv(f"{a}.rope.freq_base_swa", 10000.0)   # absent in the file: llama.cpp's constant
        self.pattern = kv(f"{a}.attention.sliding_window_pattern", 6)  # absent too: the fixed gemma3 pattern
        self.final_softcap = kv(f"{a}.final_logit_softcapping")     # absent: no softcapping
        self.w, self.raw = {}, {}
        for name, (t, ne, off) in tensors.items():
            bs, ts = GGML_QUANT_SIZES[t]
            n = int(np.prod(ne))
            raw = np.asarray(buf[off:off + n // bs * ts]).reshape(*reversed(ne[1:]), ne[0] // bs * ts)
            if t.name in ("F32", "F16"):
                raw = raw.view(np.float32 if t.name == "F32" else np.float16)
            if name in ("token_embd.weight", "output.weight"):
                self.raw[name] = (raw, t)  # 262k rows: dequantized on demand, by row
            else:
                self.w[name] = dequantize(raw, t).astype(np.float32).reshape(*reversed(ne))
        self.out_name = "output.weight" if "output.weight" in self.raw else "token_embd.weight"

    def rows(self, name, ids=None):
        """Dequantized rows of a vocabulary matrix (all rows when ids is None)."""
        from gguf.quants import dequantize
        raw, t = self.raw[name]
        return dequantize(raw if ids is None else raw[np.asarray(ids)], t).astype(np.float32)


def rmsnorm(x, w, eps):
    x = x.astype(np.float32)
    return (x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)) * w


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(np.float32(math.sqrt(2.0 / math.pi)) * (x + np.float32(0.044715) * x ** 3)))


def gelu_erf(x):
    from math import erf
    return 0.5 * x * (1.0 + np.vectorize(erf)(x / math.sqrt(2.0)).astype(np.float32))


def gelu_ggml_cpu(x):
    """ggml's CPU gelu with GGML_GELU_FP16: input rounded to fp16, table of fp16 results, 0 / x outside [-10, 10]."""
    y = gelu_tanh(x.astype(np.float16).astype(np.float32)).astype(np.float16).astype(np.float32)
    return np.where(x <= -10, np.float32(0), np.where(x >= 10, x, y))


def rope_neox(x, pos, base):
    """x: [T, H, D]; rotates pairs (i, i + D/2), angle pos * base^(-2i/D)."""
    d = x.shape[-1]
    inv = 1.0 / (base ** (np.arange(0, d, 2, dtype=np.float64) / d))
    ang = pos[:, None].astype(np.float64) * inv[None, :]
    cos, sin = np.cos(ang).astype(np.float32)[:, None, :], np.sin(ang).astype(np.float32)[:, None, :]
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


def rope_norm(x, pos, base):
    """The other RoPE pairing (llama's interleaved (2i, 2i+1)): wrong for gemma3, an ablation."""
    d = x.shape[-1]
    inv = 1.0 / (base ** (np.arange(0, d, 2, dtype=np.float64) / d))
    ang = pos[:, None].astype(np.float64) * inv[None, :]
    cos, sin = np.cos(ang).astype(np.float32)[:, None, :], np.sin(ang).astype(np.float32)[:, None, :]
    x1, x2 = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = x1 * cos - x2 * sin
    out[..., 1::2] = x2 * cos + x1 * sin
    return out


DEFAULTS = dict(embd_scale=True, norm_plus_one=False, act="tanh", local_base=None, swa=True, qk_norm=True,
                attn_scale=None, rope="neox", post_norms=True, pattern=None)


def forward(m: Gemma3, ids, *, positions_out=None, **opt):
    """Returns (hidden rows at the last position [n_layer+2, n_embd], final-normed states [len(positions_out), n_embd])."""
    o = {**DEFAULTS, **opt}
    T = len(ids)
    pos = np.arange(T)
    nw = (lambda w: w + 1.0) if o["norm_plus_one"] else (lambda w: w)  # HF's (1 + w) applied to GGUF's stored value
    act = {"tanh": gelu_tanh, "erf": gelu_erf, "ggml_cpu": gelu_ggml_cpu}[o["act"]]
    rope = rope_neox if o["rope"] == "neox" else rope_norm
    pattern = o["pattern"] or m.pattern
    scale = np.float32(o["attn_scale"] if o["attn_scale"] is not None else 1.0 / math.sqrt(m.head_dim))
    W = m.w
    x = m.rows("token_embd.weight", ids)
    if o["embd_scale"]:
        x = x * np.float32(math.sqrt(m.n_embd))
    rows = [x[-1].copy()]
    causal = pos[None, :] <= pos[:, None]
    for il in range(m.n_layer):
        p = f"blk.{il}."
        local = il % pattern < pattern - 1
        base = (o["local_base"] or m.base_local) if local else m.base_global
        h = rmsnorm(x, nw(W[p + "attn_norm.weight"]), m.eps)
        q = (h @ W[p + "attn_q.weight"].T).reshape(T, m.n_head, m.head_dim)
        k = (h @ W[p + "attn_k.weight"].T).reshape(T, m.n_head_kv, m.head_dim)
        v = (h @ W[p + "attn_v.weight"].T).reshape(T, m.n_head_kv, m.head_dim)
        if o["qk_norm"]:
            q = rmsnorm(q, nw(W[p + "attn_q_norm.weight"]), m.eps)
            k = rmsnorm(k, nw(W[p + "attn_k_norm.weight"]), m.eps)
        q, k = rope(q, pos, base), rope(k, pos, base)
        mask = causal & ((pos[:, None] - pos[None, :] < m.window) if (local and o["swa"]) else True)
        rep = m.n_head // m.n_head_kv
        out = np.empty((T, m.n_head, m.head_dim), np.float32)
        for hh in range(m.n_head):
            s = (q[:, hh] * scale) @ k[:, hh // rep].T
            s = np.where(mask, s, -np.inf)
            s = np.exp(s - s.max(-1, keepdims=True))
            out[:, hh] = (s / s.sum(-1, keepdims=True)) @ v[:, hh // rep]
        a = out.reshape(T, -1) @ W[p + "attn_output.weight"].T
        if o["post_norms"]:
            a = rmsnorm(a, nw(W[p + "post_attention_norm.weight"]), m.eps)
        x = x + a
        h = rmsnorm(x, nw(W[p + "ffn_norm.weight"]), m.eps)
        f = (act(h @ W[p + "ffn_gate.weight"].T) * (h @ W[p + "ffn_up.weight"].T)) @ W[p + "ffn_down.weight"].T
        if o["post_norms"]:
            f = rmsnorm(f, nw(W[p + "post_ffw_norm.weight"]), m.eps)
        x = x + f
        rows.append(x[-1].copy())
    out = rmsnorm(x, nw(W["output_norm.weight"]), m.eps)
    rows.append(out[-1].copy())
    sel = out if positions_out is None else out[positions_out]
    return np.stack(rows), sel


def logits_of(m: Gemma3, hidden, ids=None):
    lg = hidden @ m.rows(m.out_name, ids).T
    if m.final_softcap:
        lg = np.tanh(lg / m.final_softcap) * m.final_softcap
    return lg


def nmse(a, ref):
    a, ref = np.asarray(a, np.float64), np.asarray(ref, np.float64)
    return float(np.sum((a - ref) ** 2) / np.sum(ref ** 2))


def compare(m, g, i, full_argmax=False, **opt):
    ids = g[f"p{i}_ids"]
    sub_pos = g[f"p{i}_sub_pos"]
    rows, hid = forward(m, ids, positions_out=sub_pos, **opt)
    sub = logits_of(m, hid, g["subset_ids"])
    gold_rows = g[f"p{i}_hidden_last"]
    rel = float(np.abs(rows - gold_rows).max() / np.abs(gold_rows).max())
    r = {"nmse_sub": nmse(sub, g[f"p{i}_sub_logits"]), "hidden_rel": rel}
    if full_argmax:
        r["argmax_last_ok"] = bool(logits_of(m, hid[-1:])[0].argmax() == g[f"p{i}_argmax"][-1])
    return r


ABLATIONS = {
    "no embedding scale": dict(embd_scale=False),
    "norm weight used as (1 + w) on GGUF values": dict(norm_plus_one=True),
    "gelu erf instead of tanh": dict(act="erf"),
    "gelu as ggml's CPU computes it (fp16 table)": dict(act="ggml_cpu"),
    "local RoPE base = global (1e6)": dict(local_base=1e6),
    "RoPE pairs (2i, 2i+1) (llama 'norm')": dict(rope="norm"),
    "no q/k norm": dict(qk_norm=False),
    "attention scale 1/sqrt(n_embd/n_head)": dict(attn_scale=1.0 / math.sqrt(160)),
    "no post-attention/post-FFN norms": dict(post_norms=False),
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--golden", default=str(ROOT / "tests/golden/real/gemma3-270m.npz"))
    ap.add_argument("--model", help="the GGUF file (default: orc.fixtures gemma3-270m, cached copy)")
    args = ap.parse_args(argv)
    g = np.load(args.golden, allow_pickle=False)
    meta = json.loads(str(g["meta"]))
    path = args.model
    if path is None:
        spec = importlib.util.spec_from_file_location("orc_fixtures", ROOT / "orc" / "fixtures.py")
        fx = importlib.util.module_from_spec(spec)
        sys.modules["orc_fixtures"] = fx
        spec.loader.exec_module(fx)
        path = fx.path(meta.get("fixture", "gemma3-270m"), download=False)
    m = Gemma3(path)
    names = [p["name"] for p in meta["prompts"]]
    short = [i for i, n in enumerate(names) if n != "long_list"]
    print(f"{'variant':46s} " + " ".join(f"{names[i]:>22s}" for i in short) + "   (nmse_sub / hidden_rel)")
    for label, opt in [("as documented", {})] + list(ABLATIONS.items()):
        cells = []
        for i in short:
            r = compare(m, g, i, full_argmax=True, **opt)
            cells.append(f"{r['nmse_sub']:9.2e}/{r['hidden_rel']:8.1e}{'' if r['argmax_last_ok'] else '*'}")
        print(f"{label:46s} " + " ".join(f"{c:>22s}" for c in cells))
    if "long_list" in names:
        i = names.index("long_list")
        ids, sub_pos = g[f"p{i}_ids"], g[f"p{i}_sub_pos"]
        late = sub_pos >= m.window
        for label, opt in [("as documented", {}), ("no sliding window", dict(swa=False)),
                           ("pattern: every layer local", dict(pattern=10**6))]:
            _, hid = forward(m, ids, positions_out=sub_pos, **opt)
            sub = logits_of(m, hid, g["subset_ids"])
            print(f"long_list (T={len(ids)}) {label:28s} nmse_sub at pos < {m.window}: "
                  f"{nmse(sub[~late], g[f'p{i}_sub_logits'][~late]):9.2e}   at pos >= {m.window}: "
                  f"{nmse(sub[late], g[f'p{i}_sub_logits'][late]):9.2e}")
    print("(* = argmax at the last position differs from HF's)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
