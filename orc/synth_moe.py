"""Synthetic mixture-of-experts GGUF models (gpt-oss, qwen3moe): small random models whose
float32 reference from Hugging Face transformers is exact, and full-size random models for
benchmarks.

    from orc import synth_moe
    path = synth_moe.make_model(tmp_path / "g.gguf", "gpt-oss")          # a golden model
    spec = synth_moe.spec("qwen3moe", n_layer=2)                          # ... or any spec
    synth_moe.write_bench_model("gpt-oss-20b", "/data/g20b.gguf")         # ~12 GB, streamed

Small models (GOLDEN_SPECS, tests/golden/moe/*.npz): the weights are seeded NumPy draws
(weights(spec)), written with gguf-py's GGUFWriter under llama.cpp's tensor names, shapes,
types and metadata keys, as llama.cpp's convert_hf_to_gguf.py writes them (GptOssModel,
Qwen3MoeModel). Quantized tensors (the MXFP4 experts of gpt-oss, the Q8_0 experts of
"qwen3moe-q8_0") are quantized once here, and the float32 weights every reference uses are the
exact dequantization of the stored blocks: HF transformers gets those values (hf_state_dict),
so the GGUF file and the HF model hold the same numbers and a float32 reference has no
quantization error to explain. Same spec, same bytes (the goldens record the SHA-256).

Big models (BENCH_SPECS): random valid blocks written straight to disk, tensor by tensor in
chunks (never the whole file in memory), with the metadata and tokenizer section llama.cpp
requires to load the file (llama-bench accepts it). Scales are chosen so activations stay finite.

Layouts (numpy shapes, rows first; ggml's ne is the reverse), docs/moe.md has the why:
  gpt-oss   blk.i.ffn_{gate,up}_exps.weight [n_expert, n_ff_exp, n_embd]  MXFP4 (blocks along n_embd)
            blk.i.ffn_down_exps.weight      [n_expert, n_embd, n_ff_exp]  MXFP4
            blk.i.ffn_{gate,up}_exps.bias   [n_expert, n_ff_exp], ffn_down_exps.bias [n_expert, n_embd]
            blk.i.ffn_gate_inp.{weight [n_expert, n_embd], bias [n_expert]}, attn_sinks.weight [n_head]
  qwen3moe  the same expert tensors without biases, attn_{q,k}_norm.weight [head_dim]
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from .synth import file_sha256

__all__ = [
    "MoeSpec", "GOLDEN_SPECS", "BENCH_SPECS", "spec", "weights", "make_model", "hf_state_dict", "hf_config",
    "golden_ids", "quantize_mxfp4", "dequantize_mxfp4", "mxfp4_from_hf", "mxfp4_to_hf", "hf_mxfp4_dequantize",
    "KVALUES_MXFP4", "write_bench_model", "file_sha256", "tensor_plan",
]

ARCHS = ("gpt-oss", "qwen3moe")

# E2M1 values, doubled, in code order (ggml's kvalues_mxfp4); a code's value is kvalue * 2^(e-128).
KVALUES_MXFP4 = np.array([0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12], dtype=np.int8)
# The same codes as HF transformers' FP4_VALUES (not doubled): value = FP4 * 2^(e-127).
FP4_VALUES_HF = KVALUES_MXFP4.astype(np.float32) / 2

# llama.cpp's GGUF file types (general.file_type) used here.
FTYPE = {"F32": 0, "F16": 1, "Q8_0": 7, "Q4_K": 15, "MXFP4": 38}  # 15: MOSTLY_Q4_K_M, 38: MOSTLY_MXFP4_MOE

# o200k_harmony's special tokens at their real ids (gpt-oss-20b vocabulary of 201088).
HARMONY_SPECIALS = {199998: "<|startoftext|>", 199999: "<|endoftext|>", 200002: "<|return|>",
                    200003: "<|constrain|>", 200005: "<|channel|>", 200006: "<|start|>", 200007: "<|end|>",
                    200008: "<|message|>", 200012: "<|call|>"}
QWEN_SPECIALS = {151643: "<|endoftext|>", 151644: "<|im_start|>", 151645: "<|im_end|>"}


@dataclass(frozen=True)
class MoeSpec:
    arch: str                     # "gpt-oss" or "qwen3moe" (general.architecture)
    n_layer: int
    n_embd: int
    n_head: int
    n_head_kv: int
    head_dim: int
    n_expert: int
    n_expert_used: int
    n_ff_exp: int                 # expert_feed_forward_length
    n_ff: int                     # feed_forward_length (HF intermediate_size; unused by the MoE layers of qwen3moe)
    n_vocab: int
    n_ctx_train: int
    rope_theta: float
    rms_eps: float
    expert_type: str = "F32"      # ggml type of the ffn_*_exps weights: F32, Q8_0, MXFP4, Q4_K (cols % 256 == 0)
    weight_type: str = "F32"      # the other matrices (attention, token_embd, output)
    sliding_window: int = 128     # gpt-oss: even layers slide, odd layers are global
    yarn_factor: float = 32.0     # gpt-oss rope scaling (YaRN)
    yarn_orig_ctx: int = 4096
    yarn_beta_fast: float = 32.0
    yarn_beta_slow: float = 1.0
    norm_topk_prob: bool = True   # qwen3moe: renormalize the top-k router weights (llama.cpp always does)
    seed: int = 0
    n_prompt: int = 192           # golden prompt length (> sliding_window)


# The seeds were picked (tools/make_moe_goldens.py --search-seeds) so that no router decision of the
# golden prompt flips under float16 rounding (tests/numpy_moe.py Float16Emulation): random routers
# have near-ties, and a flipped expert moves a float16 run far from the float32 reference.
GOLDEN_SPECS = {
    # head_dim 64 and theta 150000 as the real model, so the YaRN correction range is the real one;
    # n_embd (96) != n_head * head_dim (256) != n_ff_exp (64) so that a transpose cannot hide.
    "gpt-oss": MoeSpec("gpt-oss", n_layer=4, n_embd=96, n_head=4, n_head_kv=2, head_dim=64, n_expert=8,
                       n_expert_used=4, n_ff_exp=64, n_ff=64, n_vocab=384, n_ctx_train=131072, rope_theta=150000.0,
                       rms_eps=1e-5, expert_type="MXFP4", seed=98),
    "qwen3moe": MoeSpec("qwen3moe", n_layer=4, n_embd=64, n_head=4, n_head_kv=2, head_dim=32, n_expert=8,
                        n_expert_used=3, n_ff_exp=96, n_ff=192, n_vocab=384, n_ctx_train=40960, rope_theta=1e6,
                        rms_eps=1e-6, expert_type="F32", seed=12),
    "qwen3moe-q8_0": MoeSpec("qwen3moe", n_layer=4, n_embd=64, n_head=4, n_head_kv=2, head_dim=32, n_expert=8,
                             n_expert_used=3, n_ff_exp=96, n_ff=192, n_vocab=384, n_ctx_train=40960, rope_theta=1e6,
                             rms_eps=1e-6, expert_type="Q8_0", seed=12),
}

BENCH_SPECS = {
    "gpt-oss-20b": MoeSpec("gpt-oss", n_layer=24, n_embd=2880, n_head=64, n_head_kv=8, head_dim=64, n_expert=32,
                           n_expert_used=4, n_ff_exp=2880, n_ff=2880, n_vocab=201088, n_ctx_train=131072,
                           rope_theta=150000.0, rms_eps=1e-5, expert_type="MXFP4", weight_type="Q8_0"),
    "qwen3-30b-a3b": MoeSpec("qwen3moe", n_layer=48, n_embd=2048, n_head=32, n_head_kv=4, head_dim=128,
                             n_expert=128, n_expert_used=8, n_ff_exp=768, n_ff=6144, n_vocab=151936,
                             n_ctx_train=40960, rope_theta=1e6, rms_eps=1e-6, expert_type="Q4_K",
                             weight_type="Q8_0"),
}


def spec(name: str | MoeSpec = "gpt-oss", **kw) -> MoeSpec:
    """A spec from GOLDEN_SPECS / BENCH_SPECS (or a spec), with fields replaced by `kw`."""
    base = name if isinstance(name, MoeSpec) else {**GOLDEN_SPECS, **BENCH_SPECS}[name]
    s = dataclasses.replace(base, **kw)
    if s.arch not in ARCHS:
        raise ValueError(f"arch {s.arch!r}: one of {ARCHS}")
    if not 0 < s.n_expert_used <= s.n_expert or s.n_head % s.n_head_kv:
        raise ValueError(f"inconsistent spec {s}")
    return s


# --------------------------------------------------------------------------- MXFP4

def _e8m0_half(e: np.ndarray) -> np.ndarray:
    """ggml_e8m0_to_fp32_half: 2^(e-128) as float32, exact for every byte (e < 2: subnormal).
    e = 255 gives 2^127 (ggml has no NaN scale)."""
    return np.ldexp(np.float32(1.0), np.asarray(e).astype(np.int32) - 128).astype(np.float32)


def quantize_mxfp4(x: np.ndarray) -> np.ndarray:
    """ggml's quantize_row_mxfp4_ref in NumPy: float32 [..., n] (n % 32 == 0) -> uint8 [..., n // 32 * 17].

    Per block of 32: e = floor(log2(amax)) - 2 + 127 (0 when all zero), d = 2^(e-128), each value
    the code whose kvalue * d is nearest (first code on ties, so +0 over -0), qs[j] = code[j] |
    code[j + 16] << 4. floor(log2) is exact here (frexp); ggml's log2f can round a value within
    a float32 ulp below a power of two up to it (a different, also valid, e)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.shape[-1] % 32:
        raise ValueError(f"MXFP4 rows must be a multiple of 32 values, got {x.shape[-1]}")
    b = x.reshape(-1, 32)
    amax = np.abs(b).max(axis=1)
    _, ex = np.frexp(amax)                       # amax = m * 2^ex, m in [0.5, 1): floor(log2) = ex - 1
    e = np.where(amax > 0, ex - 1 - 2 + 127, 0)
    e = np.clip(e, 0, 255).astype(np.uint8)
    d = _e8m0_half(e)
    cand = KVALUES_MXFP4.astype(np.float32)[None, None, :] * d[:, None, None]
    codes = np.abs(cand - b[:, :, None]).argmin(axis=2).astype(np.uint8)
    out = np.empty((b.shape[0], 17), np.uint8)
    out[:, 0] = e
    out[:, 1:] = codes[:, :16] | (codes[:, 16:] << 4)
    return out.reshape(*x.shape[:-1], x.shape[-1] // 32 * 17)


def dequantize_mxfp4(raw: np.ndarray) -> np.ndarray:
    """ggml's dequantize_row_mxfp4: uint8 [..., nb * 17] -> float32 [..., nb * 32]. The low nibble
    of qs[j] is element j, the high nibble element j + 16."""
    raw = np.asarray(raw, dtype=np.uint8)
    b = raw.reshape(-1, 17)
    d = _e8m0_half(b[:, 0])
    qs = b[:, 1:]
    codes = np.concatenate([qs & 0x0F, qs >> 4], axis=1)
    vals = KVALUES_MXFP4.astype(np.float32)[codes] * d[:, None]
    return vals.reshape(*raw.shape[:-1], raw.shape[-1] // 17 * 32)


def mxfp4_to_hf(raw: np.ndarray):
    """ggml blocks [..., nb * 17] -> the OpenAI/HF checkpoint's (blocks [..., nb, 16], scales [..., nb]):
    byte j of an HF block holds element 2j in its low nibble and 2j + 1 in its high nibble."""
    b = np.asarray(raw, np.uint8).reshape(*raw.shape[:-1], -1, 17)
    qs = b[..., 1:]
    codes = np.concatenate([qs & 0x0F, qs >> 4], axis=-1)    # element order 0..31
    return (codes[..., 0::2] | (codes[..., 1::2] << 4)).astype(np.uint8), b[..., 0].copy()


def mxfp4_from_hf(blocks: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """The converter's repack (GptOssModel.repack_mxfp4 / transform_nibble_layout): HF (blocks
    [..., nb, 16], scales [..., nb]) -> ggml blocks [..., nb * 17]; the scale byte is kept as is."""
    blocks = np.asarray(blocks, np.uint8)
    codes = np.stack([blocks & 0x0F, blocks >> 4], axis=-1).reshape(*blocks.shape[:-1], 32)
    qs = codes[..., :16] | (codes[..., 16:] << 4)
    out = np.concatenate([np.asarray(scales, np.uint8)[..., None], qs], axis=-1)
    return out.reshape(*blocks.shape[:-2], blocks.shape[-2] * 17)


def hf_mxfp4_dequantize(blocks: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """HF's convert_moe_packed_tensors semantics in NumPy (without its final transpose): values
    FP4_VALUES[nibble] * 2^(scale - 127), low nibble first, float32 [..., nb * 32]."""
    blocks = np.asarray(blocks, np.uint8)
    vals = np.empty((*blocks.shape[:-1], 32), np.float32)
    vals[..., 0::2] = FP4_VALUES_HF[blocks & 0x0F]
    vals[..., 1::2] = FP4_VALUES_HF[blocks >> 4]
    vals = np.ldexp(vals, np.asarray(scales).astype(np.int32)[..., None] - 127).astype(np.float32)
    return vals.reshape(*blocks.shape[:-2], blocks.shape[-2] * 32)


# --------------------------------------------------------------------------- other block types

def _quantize(x: np.ndarray, type_name: str):
    """(stored array for GGUFWriter, float32 values a reader dequantizes) of float32 `x`."""
    if type_name == "F32":
        x = np.ascontiguousarray(x, np.float32)
        return x, x
    if type_name == "F16":
        h = np.ascontiguousarray(x, np.float16)
        return h, h.astype(np.float32)
    if type_name == "MXFP4":
        raw = quantize_mxfp4(x)
        return raw, dequantize_mxfp4(raw)
    if type_name == "Q4_K":  # gguf-py has no Q4_K quantizer: synth's, decoded by orc (gguf-py's bits)
        from . import _orc, synth
        x = np.ascontiguousarray(x, np.float32)
        raw = np.frombuffer(synth.quantize(x, "Q4_K"), np.uint8).reshape(*x.shape[:-1], -1)
        return raw, _orc.dequantize(np.ascontiguousarray(raw).reshape(-1), "Q4_K", x.shape)
    import gguf
    from gguf.quants import dequantize, quantize
    qt = gguf.GGMLQuantizationType[type_name]
    raw = quantize(np.ascontiguousarray(x, np.float32), qt)
    return raw, dequantize(raw, qt).astype(np.float32)


def _f16_scales(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, np.float32).astype(np.float16).view(np.uint8).reshape(-1, 2)


def _random_blocks(rng: np.random.Generator, type_name: str, rows: int, cols: int, std: float) -> np.ndarray:
    """Random valid blocks of `type_name` for a [rows, cols] matrix whose values have a standard
    deviation near `std` (uint8 [rows, bytes per row]; F32/F16/BF16 as values)."""
    if type_name == "F32":
        return (rng.standard_normal((rows, cols), dtype=np.float32) * np.float32(std))
    if type_name == "F16":
        return (rng.standard_normal((rows, cols), dtype=np.float32) * np.float32(std)).astype(np.float16)
    blk, tsz = {"Q8_0": (32, 34), "Q4_K": (256, 144), "MXFP4": (32, 17)}[type_name]
    if cols % blk:
        raise ValueError(f"{type_name} rows need a multiple of {blk} values, got {cols}")
    nb = rows * cols // blk
    raw = np.frombuffer(rng.bytes(nb * tsz), np.uint8).reshape(nb, tsz).copy()
    if type_name == "Q8_0":
        raw[:, 2:] = np.where(raw[:, 2:] == 0x80, 0x81, raw[:, 2:])      # int8 in [-127, 127] as ggml writes
        raw[:, 0:2] = _f16_scales(np.full(nb, std / 73.3) * rng.uniform(0.8, 1.25, nb))   # std of U(-127,127) ~ 73.3
    elif type_name == "Q4_K":
        # value = d * sc * q - dmin * m, sc, m, q uniform: zero mean when dmin = 7.5 d, std ~ 263 d
        d = np.full(nb, std / 263.0) * rng.uniform(0.8, 1.25, nb)
        raw[:, 0:2] = _f16_scales(d)
        raw[:, 2:4] = _f16_scales(7.5 * d)
    else:  # MXFP4: the rms of the 16 kvalues is 5.85, so 2^(e-128) ~ std / 5.85
        e0 = int(round(128 + math.log2(std / 5.85)))
        raw[:, 0] = np.clip(e0 + rng.integers(-1, 2, nb), 1, 254).astype(np.uint8)
    return raw.reshape(rows, cols // blk * tsz)


# --------------------------------------------------------------------------- weights

def tensor_plan(s: MoeSpec):
    """[(name, numpy shape, ggml type, kind)] in file order; kind is "norm", "bias", "sink",
    "embd", "router", "mat", "exp_in" (gate/up experts) or "exp_out" (down experts): it sets the
    distribution of the random weights."""
    E, F, X = s.n_embd, s.n_ff_exp, s.n_expert
    nq, nkv = s.n_head * s.head_dim, s.n_head_kv * s.head_dim
    plan = [("token_embd.weight", (s.n_vocab, E), s.weight_type, "embd")]
    for i in range(s.n_layer):
        p = f"blk.{i}."
        plan.append((p + "attn_norm.weight", (E,), "F32", "norm"))
        for n, rows in (("attn_q", nq), ("attn_k", nkv), ("attn_v", nkv)):
            plan.append((p + n + ".weight", (rows, E), s.weight_type, "qk" if n != "attn_v" else "mat"))
            if s.arch == "gpt-oss":
                plan.append((p + n + ".bias", (rows,), "F32", "bias"))
        if s.arch == "qwen3moe":
            plan += [(p + "attn_q_norm.weight", (s.head_dim,), "F32", "norm"),
                     (p + "attn_k_norm.weight", (s.head_dim,), "F32", "norm")]
        plan.append((p + "attn_output.weight", (E, nq), s.weight_type, "mat"))
        if s.arch == "gpt-oss":
            plan += [(p + "attn_output.bias", (E,), "F32", "bias"),
                     (p + "attn_sinks.weight", (s.n_head,), "F32", "sink"),
                     (p + "post_attention_norm.weight", (E,), "F32", "norm")]
        else:
            plan.append((p + "ffn_norm.weight", (E,), "F32", "norm"))
        plan.append((p + "ffn_gate_inp.weight", (X, E), "F32", "router"))
        if s.arch == "gpt-oss":
            plan.append((p + "ffn_gate_inp.bias", (X,), "F32", "bias"))
        for n, shape, kind in (("ffn_gate_exps", (X, F, E), "exp_in"), ("ffn_up_exps", (X, F, E), "exp_in"),
                               ("ffn_down_exps", (X, E, F), "exp_out")):
            plan.append((p + n + ".weight", shape, s.expert_type, kind))
            if s.arch == "gpt-oss":
                plan.append((p + n + ".bias", shape[:2], "F32", "bias"))
    plan += [("output_norm.weight", (E,), "F32", "norm"), ("output.weight", (s.n_vocab, E), s.weight_type, "out")]
    return plan


def _std(kind: str, shape, s: MoeSpec) -> float:
    """Standard deviation of a random matrix of `kind` (x @ W.T with x of rms ~1 gives outputs of
    rms ~ the gain). gpt-oss: gate/up pre-activations of std ~3 so that the SwiGLU clamp at 7
    acts on some values; moderate q/k (YaRN scales both by 1.35) and a wide router, which keep
    the random network from amplifying float16 rounding (docs/moe.md, "float16")."""
    n_in = shape[-1]
    oss = s.arch == "gpt-oss"
    gain = {"embd": math.sqrt(n_in), "qk": 1.0 if oss else 1.5, "mat": 1.0, "router": 3.0 if oss else 2.0,
            "out": 3.0, "exp_in": 3.0 if oss else 2.0, "exp_out": 0.3}[kind]
    return gain / math.sqrt(n_in)


def _float_weight(rng: np.random.Generator, name: str, shape, kind: str, s: MoeSpec) -> np.ndarray:
    if kind == "norm":
        return (1.0 + 0.25 * rng.standard_normal(shape)).astype(np.float32)
    if kind == "bias":
        return (0.5 * rng.standard_normal(shape)).astype(np.float32)
    if kind == "sink":
        return (1.0 + rng.standard_normal(shape)).astype(np.float32)
    return (rng.standard_normal(shape) * _std(kind, shape, s)).astype(np.float32)


def weights(s: MoeSpec | str):
    """{name: (ggml type, stored array, float32 values)} of a small model, in file order. The
    stored array is what goes into the file (float32/float16 values, or uint8 blocks [..., bytes
    per row]); the float32 values are its exact dequantization (what every reference uses)."""
    s = spec(s)
    rng = np.random.default_rng(s.seed)
    out = {}
    for name, shape, t, kind in tensor_plan(s):
        stored, values = _quantize(_float_weight(rng, name, shape, kind, s), t)
        out[name] = (t, stored, values)
    return out


# --------------------------------------------------------------------------- metadata

def _vocab(s: MoeSpec):
    """(tokens, token types, merges, special ids) of a byte-level BPE vocabulary of n_vocab tokens
    with the architecture's special tokens (at their real ids when the vocabulary is full size)."""
    from .synth import gpt2_vocab

    real = HARMONY_SPECIALS if s.arch == "gpt-oss" else QWEN_SPECIALS
    if s.n_vocab > max(real):       # full size: the specials at their real ids
        n_base, specials = min(real), dict(real)
    else:                           # small: the specials are the last tokens
        n_base = s.n_vocab - len(real)
        specials = {n_base + k: text for k, text in enumerate(real.values())}
    tokens, types, merges = gpt2_vocab(n_base, specials=())   # bytes, merges, fillers: ids < n_base
    for i in range(n_base, s.n_vocab):
        if i in specials:
            tokens.append(specials[i])
            types.append(3)
        elif s.arch == "gpt-oss":   # o200k_harmony's reserved control tokens
            tokens.append(f"<|reserved_{i}|>")
            types.append(3)
        else:                       # what the converter writes for ids the tokenizer lacks
            tokens.append(f"[PAD{i}]")
            types.append(5)
    return tokens, types, merges, {text: i for i, text in specials.items()}


def _metadata(w, s: MoeSpec, name: str):
    """Write the metadata keys convert_hf_to_gguf.py writes for this architecture."""
    import gguf

    a = s.arch
    w.add_name(name)
    w.add_block_count(s.n_layer)
    w.add_context_length(s.n_ctx_train)
    w.add_embedding_length(s.n_embd)
    w.add_feed_forward_length(s.n_ff)
    w.add_head_count(s.n_head)
    w.add_head_count_kv(s.n_head_kv)
    if a == "gpt-oss":
        w.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        w.add_rope_scaling_factor(s.yarn_factor)
        w.add_rope_scaling_orig_ctx_len(s.yarn_orig_ctx)
        w.add_rope_scaling_yarn_beta_fast(s.yarn_beta_fast)
        w.add_rope_scaling_yarn_beta_slow(s.yarn_beta_slow)
    w.add_rope_freq_base(s.rope_theta)
    w.add_layer_norm_rms_eps(s.rms_eps)
    w.add_expert_count(s.n_expert)
    w.add_expert_used_count(s.n_expert_used)
    w.add_key_length(s.head_dim)
    w.add_value_length(s.head_dim)
    # the type of most of the bytes: the experts', unless they are float32
    w.add_file_type(FTYPE[s.expert_type] if s.expert_type != "F32" else FTYPE[s.weight_type])
    if a == "gpt-oss":
        w.add_sliding_window(s.sliding_window)
    w.add_expert_feed_forward_length(s.n_ff_exp)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)

    tokens, types, merges, ids = _vocab(s)
    w.add_tokenizer_model("gpt2")
    if a == "gpt-oss":
        from ._chat_templates import TEMPLATES
        w.add_tokenizer_pre("gpt-4o")
        bos, eos, pad = ids["<|startoftext|>"], ids["<|return|>"], ids["<|endoftext|>"]
        template = TEMPLATES.get("gpt-oss")
    else:
        w.add_tokenizer_pre("qwen2")
        bos, eos, pad = ids["<|endoftext|>"], ids["<|im_end|>"], ids["<|endoftext|>"]
        template = None
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(bos)
    w.add_eos_token_id(eos)
    w.add_pad_token_id(pad)
    w.add_add_bos_token(False)
    if template:
        w.add_chat_template(template)


def make_model(path, s: MoeSpec | str = "gpt-oss", name: str | None = None) -> str:
    """Write the small model `s` (a GOLDEN_SPECS name or a spec) to `path`; returns the path.
    Deterministic: the same spec gives the same bytes."""
    import gguf

    label = s if isinstance(s, str) else None
    s = spec(s)
    w = gguf.GGUFWriter(str(path), s.arch)
    _metadata(w, s, name or f"orc-synth-moe-{label or s.arch}")
    for tname, (t, stored, _) in weights(s).items():
        if t in ("F32", "F16"):
            w.add_tensor(tname, stored)
        else:
            w.add_tensor(tname, stored, raw_dtype=gguf.GGMLQuantizationType[t])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return str(path)


def golden_ids(s: MoeSpec | str) -> np.ndarray:
    """The golden prompt: n_prompt token ids drawn once (seeded), special tokens excluded."""
    s = spec(s)
    real = HARMONY_SPECIALS if s.arch == "gpt-oss" else QWEN_SPECIALS
    n_normal = min(real) if s.n_vocab > max(real) else s.n_vocab - len(real)
    return np.random.default_rng(1000 + s.seed).integers(0, n_normal, s.n_prompt).astype(np.int32)


# --------------------------------------------------------------------------- Hugging Face

def hf_config(s: MoeSpec | str) -> dict:
    """Keyword arguments of the transformers config (GptOssConfig / Qwen3MoeConfig) of spec `s`."""
    s = spec(s)
    common = dict(vocab_size=s.n_vocab, hidden_size=s.n_embd, num_hidden_layers=s.n_layer,
                  num_attention_heads=s.n_head, num_key_value_heads=s.n_head_kv, head_dim=s.head_dim,
                  num_experts_per_tok=s.n_expert_used, rms_norm_eps=s.rms_eps,
                  max_position_embeddings=s.n_ctx_train, tie_word_embeddings=False)
    if s.arch == "gpt-oss":
        return dict(common, num_local_experts=s.n_expert, intermediate_size=s.n_ff_exp, sliding_window=s.sliding_window,
                    rope_parameters={"rope_type": "yarn", "rope_theta": s.rope_theta, "factor": s.yarn_factor,
                                     "beta_fast": s.yarn_beta_fast, "beta_slow": s.yarn_beta_slow,
                                     "truncate": False, "original_max_position_embeddings": s.yarn_orig_ctx},
                    attention_bias=True)
    return dict(common, num_experts=s.n_expert, moe_intermediate_size=s.n_ff_exp, intermediate_size=s.n_ff,
                norm_topk_prob=s.norm_topk_prob, rope_parameters={"rope_type": "default", "rope_theta": s.rope_theta},
                attention_bias=False, decoder_sparse_step=1, mlp_only_layers=[])


def hf_state_dict(s: MoeSpec | str) -> dict:
    """{HF parameter name: float32 array}: the inverse of convert_hf_to_gguf.py applied to weights(s).

    gpt-oss: experts.gate_up_proj [X, E, 2F] holds gate in its even and up in its odd columns
    (GGUF gate/up [X, F, E] are its transposed halves), down_proj [X, F, E] is the transposed
    GGUF ffn_down_exps [X, E, F]; the gate_up bias interleaves the same way.
    qwen3moe: experts.gate_up_proj [X, 2F, E] = concat(gate, up) along rows, down_proj [X, E, F]."""
    s = spec(s)
    w = {k: v[2] for k, v in weights(s).items()}
    sd = {"model.embed_tokens.weight": w["token_embd.weight"], "model.norm.weight": w["output_norm.weight"],
          "lm_head.weight": w["output.weight"]}
    for i in range(s.n_layer):
        g, h = f"blk.{i}.", f"model.layers.{i}."
        sd[h + "input_layernorm.weight"] = w[g + "attn_norm.weight"]
        for gn, hn in (("attn_q", "q_proj"), ("attn_k", "k_proj"), ("attn_v", "v_proj"), ("attn_output", "o_proj")):
            sd[h + f"self_attn.{hn}.weight"] = w[g + gn + ".weight"]
            if s.arch == "gpt-oss":
                sd[h + f"self_attn.{hn}.bias"] = w[g + gn + ".bias"]
        gate, up, down = (w[g + f"ffn_{n}_exps.weight"] for n in ("gate", "up", "down"))
        if s.arch == "gpt-oss":
            sd[h + "self_attn.sinks"] = w[g + "attn_sinks.weight"]
            sd[h + "post_attention_layernorm.weight"] = w[g + "post_attention_norm.weight"]
            sd[h + "mlp.router.weight"] = w[g + "ffn_gate_inp.weight"]
            sd[h + "mlp.router.bias"] = w[g + "ffn_gate_inp.bias"]
            X, F, E = gate.shape
            gu = np.empty((X, E, 2 * F), np.float32)
            gu[:, :, 0::2] = gate.transpose(0, 2, 1)
            gu[:, :, 1::2] = up.transpose(0, 2, 1)
            gub = np.empty((X, 2 * F), np.float32)
            gub[:, 0::2] = w[g + "ffn_gate_exps.bias"]
            gub[:, 1::2] = w[g + "ffn_up_exps.bias"]
            sd[h + "mlp.experts.gate_up_proj"] = gu
            sd[h + "mlp.experts.gate_up_proj_bias"] = gub
            sd[h + "mlp.experts.down_proj"] = np.ascontiguousarray(down.transpose(0, 2, 1))
            sd[h + "mlp.experts.down_proj_bias"] = w[g + "ffn_down_exps.bias"]
        else:
            sd[h + "self_attn.q_norm.weight"] = w[g + "attn_q_norm.weight"]
            sd[h + "self_attn.k_norm.weight"] = w[g + "attn_k_norm.weight"]
            sd[h + "post_attention_layernorm.weight"] = w[g + "ffn_norm.weight"]
            sd[h + "mlp.gate.weight"] = w[g + "ffn_gate_inp.weight"]
            sd[h + "mlp.experts.gate_up_proj"] = np.concatenate([gate, up], axis=1)
            sd[h + "mlp.experts.down_proj"] = down
    return sd


# --------------------------------------------------------------------------- benchmark models

def write_bench_model(s: MoeSpec | str, path, seed: int = 0, chunk_bytes: int = 64 << 20, progress=None,
                      tile: bool = False) -> str:
    """Write a random model of spec `s` (a BENCH_SPECS name, or any spec) to `path`, streaming:
    metadata and tensor infos first, then each tensor's random blocks in chunks of about
    `chunk_bytes`. Peak memory is one chunk. progress(bytes_written, total) is called per chunk.
    tile: repeat one chunk of random rows per (type, width, scale) instead of drawing every chunk
    (seconds instead of minutes for a 12 GB file: for benchmarks, where only bytes and shapes matter)."""
    import gguf

    label = s if isinstance(s, str) else None
    s = spec(s)
    rng = np.random.default_rng(seed)
    plan = tensor_plan(s)
    w = gguf.GGUFWriter(str(path), s.arch)
    _metadata(w, s, f"orc-bench-{label or s.arch}")
    sizes = []
    for name, shape, t, _ in plan:
        qt = gguf.GGMLQuantizationType[t]
        blk, tsz = gguf.GGML_QUANT_SIZES[qt]
        nbytes = int(np.prod(shape)) // blk * tsz
        byte_shape = (*shape[:-1], shape[-1] // blk * tsz)
        dtype = {"F32": np.float32, "F16": np.float16}.get(t, np.uint8)
        w.add_tensor_info(name, byte_shape if dtype is np.uint8 else shape, np.dtype(dtype), nbytes,
                          raw_dtype=None if dtype is not np.uint8 else qt)
        sizes.append(nbytes)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    f = w.fout[0]
    w.write_padding(f, f.tell())
    total, done = sum(sizes), 0
    pools = {}
    for (name, shape, t, kind), nbytes in zip(plan, sizes):
        cols = shape[-1]
        rows = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
        if kind in ("norm", "bias", "sink"):
            f.write(_float_weight(rng, name, shape, kind, s).tobytes())
        else:
            std = _std(kind, shape, s)
            row_bytes = nbytes // rows
            step = max(1, chunk_bytes // row_bytes)
            for r0 in range(0, rows, step):
                k = min(step, rows - r0)
                if tile:
                    key = (t, cols, float(std))
                    if key not in pools or len(pools[key]) < k * row_bytes:
                        pools[key] = _random_blocks(rng, t, step, cols, std).tobytes()
                    f.write(memoryview(pools[key])[:k * row_bytes])
                else:
                    f.write(_random_blocks(rng, t, k, cols, std).tobytes())
                if progress is not None:
                    progress(done + min(rows, r0 + step) * row_bytes, total)
        w.write_padding(f, nbytes)
        done += nbytes
    w.close()
    return str(path)


if __name__ == "__main__":  # pragma: no cover - manual use
    import sys

    name = sys.argv[1] if len(sys.argv) > 1 else "gpt-oss"
    print(make_model(sys.argv[2] if len(sys.argv) > 2 else f"{name}.gguf", name))
