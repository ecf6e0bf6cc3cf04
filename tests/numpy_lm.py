"""A tiny llama-style decoder in NumPy that records orc's hook points, for testing orc.compare
without the C model: healthy random weights, and the failure modes orc exists to catch
(quantized blocks fed to a matmul as if they were FP16 values).

forward(weights, tokens, patch=None, dtype=np.float32) -> (logits [n, vocab], trace {hook: array})
`patch` maps hook names to functions applied to that activation (to plant a bug at one step).
"""
from __future__ import annotations

import numpy as np

VOCAB, D, N_HEAD, HEAD_DIM, FF, N_LAYER = 256, 64, 4, 16, 128, 2
EPS = 1e-6


def healthy_weights(seed=0):
    rng = np.random.default_rng(seed)

    def mat(n_in, n_out, gain=1.0):
        return (rng.standard_normal((n_in, n_out)) * gain / np.sqrt(n_in)).astype(np.float32)

    w = {"tok_embd": rng.standard_normal((VOCAB, D)).astype(np.float32),
         "output_norm": (1 + 0.1 * rng.standard_normal(D)).astype(np.float32),
         # logits std about 3, like a trained model's
         "output": mat(D, VOCAB, 3.0)}
    for i in range(N_LAYER):
        w[f"blk.{i}.attn_norm"] = (1 + 0.1 * rng.standard_normal(D)).astype(np.float32)
        w[f"blk.{i}.ffn_norm"] = (1 + 0.1 * rng.standard_normal(D)).astype(np.float32)
        for name, shape in [("attn_q", (D, D)), ("attn_k", (D, D)), ("attn_v", (D, D)), ("attn_output", (D, D)),
                            ("ffn_gate", (D, FF)), ("ffn_up", (D, FF)), ("ffn_down", (FF, D))]:
            w[f"blk.{i}.{name}"] = mat(*shape)
    return w


def _matrices(w):
    return [k for k, v in w.items() if v.ndim == 2 and k != "tok_embd"]


def q8_0_blocks(x):
    """Quantize like GGUF Q8_0 (blocks of 32: an fp16 scale, 32 int8): the stored bytes."""
    flat = x.reshape(-1, 32).astype(np.float32)
    d = np.abs(flat).max(axis=1, keepdims=True) / 127.0
    q = np.round(flat / np.where(d > 0, d, 1)).astype(np.int8)
    out = np.empty((flat.shape[0], 34), np.uint8)
    out[:, :2] = d.astype(np.float16).view(np.uint8)
    out[:, 2:] = q.view(np.uint8)
    return out.reshape(-1)


def bytes_as_fp16_weights(w):
    """The bug orc was born from: each weight matrix quantized to blocks, and the block bytes
    handed to the matmul as FP16 values of the full shape (reading past the quantized data, which
    we model by repeating it)."""
    out = dict(w)
    for k in _matrices(w):
        raw = q8_0_blocks(w[k])
        out[k] = np.resize(raw, w[k].size * 2).view(np.float16).reshape(w[k].shape).astype(np.float32)
    return out


def codes_as_weights(w):
    """Another way to skip dequantization: the unsigned 4-bit codes of a Q4-style quantization
    (0..15, scale and minimum never applied) used as the weight values."""
    out = dict(w)
    for k in _matrices(w):
        x = w[k]
        lo, hi = x.min(), x.max()
        out[k] = np.round((x - lo) / (hi - lo) * 15).astype(np.float32)
    return out


def _rms_norm(x, g):
    return x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + EPS) * g


def _rope(x, pos):
    # x [n, heads, head_dim]; NeoX-style halves
    half = HEAD_DIM // 2
    inv = 10000.0 ** (-np.arange(half) / half)
    ang = pos[:, None] * inv[None, :]
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    x1, x2 = x[..., :half], x[..., half:]
    return np.concatenate([x1 * cos - x2 * sin, x1 * sin + x2 * cos], axis=-1)


def forward(w, tokens, patch=None, dtype=np.float32):
    patch = patch or {}
    trace = {}

    def hook(name, x):
        if name in patch:
            x = patch[name](x.copy())
        trace[name] = np.array(x)
        return x

    w = {k: v.astype(dtype) for k, v in w.items()}
    tokens = np.asarray(tokens)
    n = tokens.size
    pos = np.arange(n, dtype=dtype)
    with np.errstate(all="ignore"):  # the broken weights overflow on purpose
        x = hook("embd", w["tok_embd"][tokens])
        for i in range(N_LAYER):
            p = f"blk.{i}."
            h = hook(p + "attn_norm", _rms_norm(x, w[p + "attn_norm"]))
            q = hook(p + "q", (h @ w[p + "attn_q"]).reshape(n, N_HEAD, HEAD_DIM))
            k = hook(p + "k", (h @ w[p + "attn_k"]).reshape(n, N_HEAD, HEAD_DIM))
            v = hook(p + "v", (h @ w[p + "attn_v"]).reshape(n, N_HEAD, HEAD_DIM))
            q = hook(p + "q_rope", _rope(q, pos))
            k = hook(p + "k_rope", _rope(k, pos))
            s = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(HEAD_DIM)
            s = np.where(np.tril(np.ones((n, n), bool))[None], s, -np.inf)
            s = np.exp(s - s.max(axis=-1, keepdims=True))
            s /= s.sum(axis=-1, keepdims=True)
            a = hook(p + "attn_out", np.einsum("hqk,khd->qhd", s, v).reshape(n, D))
            a = hook(p + "attn_proj", a @ w[p + "attn_output"])
            x = hook(p + "resid_mid", x + a)
            h = hook(p + "ffn_norm", _rms_norm(x, w[p + "ffn_norm"]))
            g = hook(p + "ffn_gate", h @ w[p + "ffn_gate"])
            u = hook(p + "ffn_up", h @ w[p + "ffn_up"])
            f = hook(p + "ffn_act", g / (1 + np.exp(-g)) * u)
            f = hook(p + "ffn_out", f @ w[p + "ffn_down"])
            x = hook(p + "resid_post", x + f)
        h = hook("output_norm", _rms_norm(x, w["output_norm"]))
        logits = hook("logits", h @ w["output"])
    return logits, trace
