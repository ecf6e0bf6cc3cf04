"""A float64 NumPy forward of gpt-oss and qwen3moe that reads the GGUF file (gguf-py's GGUFReader
and gguf.quants.dequantize), written from docs/moe.md and independent of orc and of torch: the
second oracle of the MoE goldens (tests/golden/moe/*.npz are HF transformers' float32 logits).

    m = MoeModel(path)                                      # any gpt-oss / qwen3moe GGUF
    logits, trace = m.forward(ids, yarn="hf")               # [T, n_vocab] float64, {hook: array}

yarn="hf" is transformers' YaRN (truncate=False: the correction range is not rounded), "ggml" is
llama.cpp's (ggml_rope_yarn_corr_dims floors the low and ceils the high end). `trace` holds orc's
hook names: embd, blk.i.{attn_norm, q, k, v, [q_norm, k_norm,] q_rope, k_rope, attn_out, attn_proj,
resid_mid, ffn_norm, moe_router, moe_topk_ids, moe_topk_w, ffn_out, resid_post}, output_norm,
logits. moe_router is the router logits (with the bias for gpt-oss) [T, n_expert]; moe_topk_ids
[T, k] the selected experts in decreasing router order; moe_topk_w [T, k] their weights.
Float16Emulation is the same forward with float16 rounding of weights and matmul inputs (how
float16 moves the router decisions; tools/make_moe_goldens.py uses it to choose the golden seeds).
"""
from __future__ import annotations

import math

import numpy as np


def _field(reader, key, default=None):
    f = reader.fields.get(key)
    if f is None:
        return default
    v = f.contents()
    return v


class MoeModel:
    """Hyperparameters and float64 weights of a gpt-oss or qwen3moe GGUF file."""

    def __init__(self, path):
        from gguf import GGUFReader
        from gguf.quants import dequantize

        r = GGUFReader(str(path))
        self.arch = a = _field(r, "general.architecture")
        if a not in ("gpt-oss", "qwen3moe"):
            raise ValueError(f"{path}: architecture {a!r} is not gpt-oss or qwen3moe")
        g = lambda k, d=None: _field(r, f"{a}.{k}", d)  # noqa: E731
        self.n_layer = g("block_count")
        self.n_embd = g("embedding_length")
        self.n_head = g("attention.head_count")
        self.n_head_kv = g("attention.head_count_kv", self.n_head)
        self.head_dim = g("attention.key_length", self.n_embd // self.n_head)
        self.eps = g("attention.layer_norm_rms_epsilon")
        self.theta = g("rope.freq_base", 10000.0)
        self.n_expert = g("expert_count")
        self.n_expert_used = g("expert_used_count")
        self.window = g("attention.sliding_window")
        self.yarn = None
        if g("rope.scaling.type") == "yarn":
            self.yarn = dict(factor=g("rope.scaling.factor"), orig_ctx=g("rope.scaling.original_context_length"),
                             beta_fast=g("rope.scaling.yarn_beta_fast", 32.0),
                             beta_slow=g("rope.scaling.yarn_beta_slow", 1.0))
        self.w = {}
        for t in r.tensors:
            shape = tuple(int(x) for x in reversed(t.shape.tolist()))
            self.w[t.name] = np.asarray(dequantize(t.data, t.tensor_type), np.float64).reshape(shape)

    # ------------------------------------------------------------------ pieces

    def inv_freq(self, yarn="hf"):
        """RoPE inverse frequencies [head_dim / 2] and the cos/sin scale (YaRN's attention factor)."""
        d = self.head_dim
        base = self.theta
        extrap = base ** (-np.arange(0, d, 2, dtype=np.float64) / d)
        if self.yarn is None:
            return extrap, 1.0
        y = self.yarn
        interp = extrap / y["factor"]

        def corr_dim(n_rot):
            return d * math.log(y["orig_ctx"] / (n_rot * 2 * math.pi)) / (2 * math.log(base))

        low, high = corr_dim(y["beta_fast"]), corr_dim(y["beta_slow"])
        if yarn == "ggml":
            low, high = math.floor(low), math.ceil(high)
        elif yarn != "hf":
            raise ValueError("yarn must be 'hf' or 'ggml'")
        low, high = max(low, 0), min(high, d - 1)
        ramp = np.clip((np.arange(d // 2, dtype=np.float64) - low) / max(high - low, 0.001), 0, 1)
        # ramp 0: extrapolation (original frequency), 1: interpolation (frequency / factor)
        inv = interp * ramp + extrap * (1 - ramp)
        return inv, 0.1 * math.log(y["factor"]) + 1.0

    def rms_norm(self, x, w):
        return x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + self.eps) * w

    @staticmethod
    def rope(x, pos, inv, scale):
        """NeoX RoPE of x [T, heads, d]: dimension i pairs with i + d/2; cos and sin scaled."""
        ang = pos[:, None].astype(np.float64) * inv[None, :]
        cos, sin = (np.cos(ang) * scale)[:, None, :], (np.sin(ang) * scale)[:, None, :]
        h = x.shape[-1] // 2
        x1, x2 = x[..., :h], x[..., h:]
        return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)

    def is_swa(self, il):
        """gpt-oss: even layers use the sliding window, odd layers are global (HF layer_types,
        llama.cpp set_swa_pattern(2))."""
        return self.arch == "gpt-oss" and il % 2 == 0

    def attention(self, q, k, v, il, sinks=None):
        T = q.shape[0]
        rep = self.n_head // self.n_head_kv
        k = np.repeat(k, rep, axis=1)          # q head h reads kv head h // rep
        v = np.repeat(v, rep, axis=1)
        s = np.einsum("qhd,khd->hqk", q, k) / math.sqrt(self.head_dim)
        i, j = np.arange(T)[:, None], np.arange(T)[None, :]
        allowed = j <= i
        if self.is_swa(il):
            allowed &= (i - j) < self.window
        s = np.where(allowed[None], s, -np.inf)
        if sinks is not None:                  # one extra logit per head, dropped after the softmax
            s = np.concatenate([s, np.broadcast_to(sinks[:, None, None], (self.n_head, T, 1))], axis=-1)
        s = np.exp(s - s.max(axis=-1, keepdims=True))
        p = s / s.sum(axis=-1, keepdims=True)
        if sinks is not None:
            p = p[..., :-1]
        return np.einsum("hqk,khd->qhd", p, v).reshape(T, -1)

    def route(self, h, il):
        """(router logits [T, X], top-k ids [T, k], top-k weights [T, k])."""
        p = f"blk.{il}."
        logits = h @ self.w[p + "ffn_gate_inp.weight"].T
        k = self.n_expert_used
        if self.arch == "gpt-oss":
            logits = logits + self.w[p + "ffn_gate_inp.bias"]
            ids = np.argsort(-logits, axis=-1, kind="stable")[:, :k]
            top = np.take_along_axis(logits, ids, axis=-1)
            e = np.exp(top - top.max(axis=-1, keepdims=True))   # softmax over the k selected logits
            return logits, ids, e / e.sum(axis=-1, keepdims=True)
        e = np.exp(logits - logits.max(axis=-1, keepdims=True))
        probs = e / e.sum(axis=-1, keepdims=True)               # softmax over all experts
        ids = np.argsort(-probs, axis=-1, kind="stable")[:, :k]
        w = np.take_along_axis(probs, ids, axis=-1)
        return logits, ids, w / w.sum(axis=-1, keepdims=True)  # norm_topk_prob (llama.cpp: always)

    def experts(self, h, ids, weights, il):
        p = f"blk.{il}."
        gate_w, up_w, down_w = (self.w[p + f"ffn_{n}_exps.weight"] for n in ("gate", "up", "down"))
        out = np.zeros_like(h)
        for t in range(h.shape[0]):
            for e, wt in zip(ids[t], weights[t]):
                g = gate_w[e] @ h[t]
                u = up_w[e] @ h[t]
                if self.arch == "gpt-oss":
                    g = g + self.w[p + "ffn_gate_exps.bias"][e]
                    u = u + self.w[p + "ffn_up_exps.bias"][e]
                    x = np.minimum(g, 7.0)
                    y = np.clip(u, -7.0, 7.0)
                    a = x / (1 + np.exp(-1.702 * x)) * (y + 1)
                    o = down_w[e] @ a + self.w[p + "ffn_down_exps.bias"][e]
                else:
                    o = down_w[e] @ (g / (1 + np.exp(-g)) * u)
                out[t] += wt * o
        return out

    # ------------------------------------------------------------------ forward

    def forward(self, ids, yarn="hf"):
        ids = np.asarray(ids)
        T = ids.size
        pos = np.arange(T)
        inv, scale = self.inv_freq(yarn)
        w = self.w
        trace = {}
        x = w["token_embd.weight"][ids]
        trace["embd"] = x
        for il in range(self.n_layer):
            p = f"blk.{il}."
            tr = lambda name, v: trace.__setitem__(p + name, v) or v  # noqa: E731
            h = tr("attn_norm", self.rms_norm(x, w[p + "attn_norm.weight"]))
            qkv = []
            for n, heads in (("q", self.n_head), ("k", self.n_head_kv), ("v", self.n_head_kv)):
                y = h @ w[p + f"attn_{n}.weight"].T
                if p + f"attn_{n}.bias" in w:
                    y = y + w[p + f"attn_{n}.bias"]
                qkv.append(tr(n, y.reshape(T, heads, self.head_dim)))
            q, k, v = qkv
            if self.arch == "qwen3moe":
                q = tr("q_norm", self.rms_norm(q, w[p + "attn_q_norm.weight"]))
                k = tr("k_norm", self.rms_norm(k, w[p + "attn_k_norm.weight"]))
            q = tr("q_rope", self.rope(q, pos, inv, scale))
            k = tr("k_rope", self.rope(k, pos, inv, scale))
            a = tr("attn_out", self.attention(q, k, v, il, w.get(p + "attn_sinks.weight")))
            a = a @ w[p + "attn_output.weight"].T
            if p + "attn_output.bias" in w:
                a = a + w[p + "attn_output.bias"]
            tr("attn_proj", a)
            x = tr("resid_mid", x + a)
            norm = "post_attention_norm" if self.arch == "gpt-oss" else "ffn_norm"
            h = tr("ffn_norm", self.rms_norm(x, w[p + norm + ".weight"]))
            logits, top_ids, top_w = self.route(h, il)
            tr("moe_router", logits)
            tr("moe_topk_ids", top_ids)
            tr("moe_topk_w", top_w)
            f = tr("ffn_out", self.experts(h, top_ids, top_w, il))
            x = tr("resid_post", x + f)
        h = self.rms_norm(x, w["output_norm.weight"])
        trace["output_norm"] = h
        logits = h @ w["output.weight"].T
        trace["logits"] = logits
        return logits, trace


def nmse(a, b):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return float(np.sum((a - b) ** 2) / np.sum(b * b))


def topk_margin(logits_or_probs, k):
    """Per row: the gap between the k-th and (k+1)-th largest value (how far the top-k choice is
    from a tie)."""
    s = -np.sort(-np.asarray(logits_or_probs, np.float64), axis=-1)
    return s[:, k - 1] - s[:, k]


class Float16Emulation(MoeModel):
    """The same forward with float16 rounding where a float16 GPU path rounds: every weight, and
    the inputs of every matrix product (norm outputs, q/k/v, attention and expert outputs); sums
    stay float64. An estimate of what float16 does to the router decisions, not a bit model."""

    def __init__(self, path):
        super().__init__(path)
        self.w = {k: _r16(v) for k, v in self.w.items()}

    def rms_norm(self, x, w):
        return _r16(super().rms_norm(x, w))

    def attention(self, q, k, v, il, sinks=None):
        return _r16(super().attention(_r16(q), _r16(k), _r16(v), il, sinks))

    def experts(self, h, ids, weights, il):
        return _r16(super().experts(h, ids, weights, il))


def _r16(a):
    return np.asarray(a).astype(np.float16).astype(np.float64)
