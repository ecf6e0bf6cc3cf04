"""Synthetic GGUF models: random but meaningful weights, written by our own
minimal GGUF writer, for tests, goldens and benchmarks.

    from orc import synth
    path = synth.make_model(tmp_path / "m.gguf", arch="qwen2", weight_type="Q8_0", seed=1)

Every model is a deterministic function of its arguments (same arguments, same
bytes: `tests/golden/synth/*.npz` record the file's SHA-256 to catch drift).
Weights are scaled so that every layer matters: norm weights are not all ones,
attention scores spread over several units, the output matrix is untied (unless
asked) so the argmax is not simply the input token.

The writer here is deliberately independent of gguf-py, which the tests use as
the oracle that reads these files.
"""
from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass, field

import numpy as np

__all__ = ["ModelSpec", "make_model", "write_gguf", "quantize", "random_blocks", "tiled_blocks", "TiledBytes",
           "GGML_TYPES", "spec_for", "set_kv", "drop_kv", "drop_tensor"]

# ggml type id, block size, bytes per block (the facts of ggml's type table).
GGML_TYPES = {
    "F32": (0, 1, 4), "F16": (1, 1, 2), "Q4_0": (2, 32, 18), "Q4_1": (3, 32, 20), "Q5_0": (6, 32, 22),
    "Q5_1": (7, 32, 24), "Q8_0": (8, 32, 34), "Q2_K": (10, 256, 84), "Q3_K": (11, 256, 110),
    "Q4_K": (12, 256, 144), "Q5_K": (13, 256, 176), "Q6_K": (14, 256, 210), "IQ4_NL": (20, 32, 18),
    "BF16": (30, 1, 2), "MXFP4": (39, 32, 17),
}

# GGUF metadata value types.
_VT = {"u8": 0, "i8": 1, "u16": 2, "i16": 3, "u32": 4, "i32": 5, "f32": 6, "bool": 7, "str": 8, "arr": 9,
       "u64": 10, "i64": 11, "f64": 12}
_VT_FMT = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


# --------------------------------------------------------------------------- writer

def _gguf_str(s: str | bytes) -> bytes:
    b = s.encode("utf-8") if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def _gguf_value(vtype: str, value) -> bytes:
    if vtype == "str":
        return _gguf_str(value)
    if vtype.startswith("arr:"):
        et = vtype[4:]
        out = struct.pack("<IQ", _VT[et], len(value))
        if et == "str":
            return out + b"".join(_gguf_str(v) for v in value)
        np_t = {"u8": "<u1", "i8": "<i1", "u16": "<u2", "i16": "<i2", "u32": "<u4", "i32": "<i4", "f32": "<f4",
                "u64": "<u8", "i64": "<i8", "f64": "<f8", "bool": "<u1"}[et]
        return out + np.asarray(value).astype(np_t).tobytes()
    return struct.pack(_VT_FMT[_VT[vtype]], value)


def write_gguf(path, metadata: list[tuple[str, str, object]], tensors: list[tuple[str, str, tuple, bytes]],
               alignment: int = 32, version: int = 3) -> str:
    """Write a GGUF file.

    metadata: (key, vtype, value) with vtype one of u8..f64, bool, str, or "arr:<elem vtype>".
    tensors:  (name, ggml type name, shape in NumPy order (rows first), stored bytes), where the
              bytes may also be a TiledBytes: files of many GB are written without holding them.
    """
    kv = b""
    for key, vtype, value in metadata:
        tid = _VT["arr"] if vtype.startswith("arr:") else _VT[vtype]
        kv += _gguf_str(key) + struct.pack("<I", tid) + _gguf_value(vtype, value)
    infos, offset, datas = b"", 0, []
    for name, tname, shape, data in tensors:
        tid, blk, tsz = GGML_TYPES[tname]
        ne = list(reversed(shape))  # ggml order: contiguous dimension first
        n = int(np.prod(shape))
        if ne[0] % blk or len(data) != n // blk * tsz:
            raise ValueError(f"{name}: {len(data)} bytes do not fit {tname} {shape}")
        offset = (offset + alignment - 1) // alignment * alignment
        infos += _gguf_str(name) + struct.pack("<I", len(ne)) + struct.pack(f"<{len(ne)}q", *ne)
        infos += struct.pack("<iQ", tid, offset)
        datas.append((offset, data))
        offset += len(data)
    head = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(metadata))
    body = head + kv + infos
    pad = (-len(body)) % alignment
    with open(path, "wb") as f:
        f.write(body + b"\0" * pad)
        pos = 0
        for off, data in datas:
            f.write(b"\0" * (off - pos))
            if isinstance(data, TiledBytes):
                data.write_to(f)
            else:
                f.write(data)
            pos = off + len(data)
    return str(path)


class TiledBytes:
    """`n` bytes made of a pool of valid blocks repeated (the last copy cut at a block edge):
    the stored data of a benchmark model's tensor, where only shapes, types and bytes moved
    matter. Written in pieces by write_gguf, never held whole."""

    def __init__(self, pool: bytes, n: int):
        self.pool, self.n = pool, n

    def __len__(self):
        return self.n

    def write_to(self, f):
        left = self.n
        while left:
            k = min(left, len(self.pool))
            f.write(self.pool[:k] if k < len(self.pool) else self.pool)
            left -= k


def tiled_blocks(rng: np.random.Generator, type_name: str, n_elements: int, scale: float = 0.02,
                 pool_elements: int = 1 << 24) -> "TiledBytes | bytes":
    """random_blocks for n_elements, built from a pool of at most pool_elements repeated: for
    multi-GB benchmark files (random_blocks makes ~50 MB/s)."""
    _, blk, tsz = GGML_TYPES[type_name]
    pool_n = min(n_elements, max(blk, pool_elements // blk * blk))
    pool = random_blocks(rng, type_name, pool_n, scale) if blk > 1 else \
        (rng.standard_normal(pool_n, dtype=np.float32) * scale).astype(
            {"F32": np.float32, "F16": np.float16}.get(type_name, np.float16)).tobytes()
    return _tiled(pool, type_name, n_elements)


def _tiled(pool: bytes, type_name: str, n_elements: int) -> "TiledBytes | bytes":
    """`pool` (whole blocks of type_name) repeated to the bytes of n_elements values."""
    _, blk, tsz = GGML_TYPES[type_name]
    n_bytes = n_elements // blk * tsz
    return pool if len(pool) == n_bytes else TiledBytes(pool, n_bytes)


def tiled_gaussian(rng: np.random.Generator, type_name: str, n_elements: int, cols: int, std: float,
                   pool_elements: int = 1 << 24) -> "TiledBytes | bytes":
    """Gaussian values of standard deviation `std` stored as `type_name` (quantize), rows of `cols`
    values: a pool of whole rows of at most pool_elements values, repeated to n_elements."""
    rows = max(1, min(n_elements, pool_elements) // cols)
    return _tiled(quantize(rng.standard_normal((rows, cols), dtype=np.float32) * std, type_name), type_name, n_elements)


# --------------------------------------------------------------------------- quantizers

def _f16(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float32).astype(np.float16)


def _q8_0(x: np.ndarray) -> bytes:
    b = x.reshape(-1, 32)
    amax = np.abs(b).max(axis=1)
    d = _f16(amax / 127.0)
    df = d.astype(np.float32)
    inv = np.where(df > 0, 1.0 / np.where(df > 0, df, 1), 0.0)
    q = np.clip(np.round(b * inv[:, None]), -127, 127).astype(np.int8)
    out = np.zeros((b.shape[0], 34), np.uint8)
    out[:, 0:2] = d.view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q.view(np.uint8)
    return out.tobytes()


def _pack_k_scales(sc: np.ndarray, mn: np.ndarray) -> np.ndarray:
    """Pack 8 six-bit scales and mins per block into Q4_K/Q5_K's 12 bytes."""
    q = np.zeros((sc.shape[0], 12), np.uint8)
    for j in range(4):
        q[:, j] = (sc[:, j] & 63) | ((sc[:, j + 4] >> 4) << 6)
        q[:, j + 4] = (mn[:, j] & 63) | ((mn[:, j + 4] >> 4) << 6)
        q[:, j + 8] = (sc[:, j + 4] & 15) | ((mn[:, j + 4] & 15) << 4)
    return q


def _q4_k(x: np.ndarray) -> bytes:
    """A simple (not llama.cpp's) Q4_K quantizer: per 32-value sub-block an affine
    4-bit code, with 6-bit scales/mins under per-block fp16 super-scales."""
    blocks = x.reshape(-1, 8, 32).astype(np.float32)
    lo = np.minimum(blocks.min(axis=2), 0.0)
    hi = blocks.max(axis=2)
    scale = (hi - lo) / 15.0
    mins = -lo
    d = _f16(scale.max(axis=1) / 63.0).astype(np.float32)
    dmin = _f16(mins.max(axis=1) / 63.0).astype(np.float32)
    safe = lambda v: np.where(v > 0, v, 1.0)  # noqa: E731
    sc = np.clip(np.round(scale / safe(d)[:, None]), 0, 63).astype(np.uint8)
    mn = np.clip(np.round(mins / safe(dmin)[:, None]), 0, 63).astype(np.uint8)
    eff_d = d[:, None] * sc
    eff_m = dmin[:, None] * mn
    q = np.clip(np.round((blocks + eff_m[:, :, None]) / safe(eff_d)[:, :, None]), 0, 15).astype(np.uint8)
    out = np.zeros((blocks.shape[0], 144), np.uint8)
    out[:, 0:2] = d.astype(np.float16).view(np.uint8).reshape(-1, 2)
    out[:, 2:4] = dmin.astype(np.float16).view(np.uint8).reshape(-1, 2)
    out[:, 4:16] = _pack_k_scales(sc, mn)
    qs = q.reshape(-1, 4, 2, 32)
    out[:, 16:] = (qs[:, :, 0, :] | (qs[:, :, 1, :] << 4)).reshape(-1, 128)
    return out.tobytes()


QUANTIZE_TYPES = ("F32", "F16", "BF16", "Q8_0", "Q4_K")  # what quantize stores


def quantize(x: np.ndarray, type_name: str) -> bytes:
    """Store float32 `x` (last dim contiguous) as `type_name`, one of QUANTIZE_TYPES."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if type_name == "F32":
        return x.tobytes()
    if type_name == "F16":
        return x.astype(np.float16).tobytes()
    if type_name == "BF16":
        u = x.view(np.uint32).astype(np.uint64)
        r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)  # round to nearest even
        return r.tobytes()
    if type_name == "Q8_0":
        return _q8_0(x)
    if type_name == "Q4_K":
        return _q4_k(x)
    raise ValueError(f"synth.quantize: no quantizer for {type_name}; use random_blocks")


# Where each type keeps its fp16 scales (byte offsets within a block).
_SCALE_FIELDS = {"Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0], "Q2_K": [80, 82],
                 "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208], "IQ4_NL": [0], "IQ4_XS": [0]}


def random_blocks(rng: np.random.Generator, type_name: str, n_elements: int, scale: float = 0.02) -> bytes:
    """Random valid blocks of a quantized type: random quants, finite fp16 scales of
    magnitude ~`scale` (so dequantized values are O(scale * quant range))."""
    _, blk, tsz = GGML_TYPES[type_name]
    nb = n_elements // blk
    raw = rng.integers(0, 256, size=(nb, tsz), dtype=np.uint8)
    if type_name == "MXFP4":  # an E8M0 exponent byte: 2^(e - 128) near `scale`
        e = int(np.clip(np.round(np.log2(scale)) + 128, 1, 254))
        raw[:, 0] = rng.integers(max(1, e - 2), min(254, e + 2) + 1, nb, dtype=np.uint8)
        return raw.tobytes()
    for off in _SCALE_FIELDS[type_name]:
        d = (rng.uniform(0.5, 1.5, nb) * scale).astype(np.float16)
        raw[:, off:off + 2] = d.view(np.uint8).reshape(-1, 2)
    return raw.tobytes()


# --------------------------------------------------------------------------- vocabularies

_BASE_TEXT = (
    "the quick brown fox jumps over the lazy dog. in the beginning there was the word, and the word "
    "was with the model. hello world! this is a test of the tokenizer and the model. we are testing "
    "the attention, the norms and the feed forward network of the transformer. "
)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def _train_merges(words: list[list[str]], n_merges: int) -> list[tuple[str, str]]:
    """Tiny deterministic BPE trainer: most frequent adjacent pair, ties by the pair itself."""
    merges = []
    words = [w[:] for w in words]
    for _ in range(n_merges):
        counts: dict[tuple[str, str], int] = {}
        for w in words:
            for a, b in zip(w, w[1:]):
                counts[(a, b)] = counts.get((a, b), 0) + 1
        if not counts:
            break
        best = max(counts.items(), key=lambda kv: (kv[1], kv[0]))[0]
        merges.append(best)
        for i, w in enumerate(words):
            out, j = [], 0
            while j < len(w):
                if j + 1 < len(w) and (w[j], w[j + 1]) == best:
                    out.append(w[j] + w[j + 1])
                    j += 2
                else:
                    out.append(w[j])
                    j += 1
            words[i] = out
    return merges


def gpt2_vocab(n_vocab: int, specials=("<|endoftext|>", "<|im_start|>", "<|im_end|>")):
    """A byte-level BPE vocabulary of exactly n_vocab tokens: 256 bytes, merges, specials last."""
    b2u = _bytes_to_unicode()
    n_merges = n_vocab - 256 - len(specials)
    if n_merges < 0:
        raise ValueError("n_vocab too small for a byte-level vocabulary")
    words = [[b2u[c] for c in (" " + w).encode()] for w in _BASE_TEXT.split()]
    merges = _train_merges(words, n_merges)
    tokens = [b2u[b] for b in range(256)] + [a + b for a, b in merges]
    # pad with unique filler merges if the text ran out of pairs
    k = 0
    while len(tokens) < n_vocab - len(specials):
        tokens.append(f"<filler_{k}>")
        k += 1
    tokens += list(specials)
    types = [1] * (len(tokens) - len(specials)) + [3] * len(specials)
    return tokens, types, [f"{a} {b}" for a, b in merges]


def spm_vocab(n_vocab: int):
    """A SentencePiece-style vocabulary: <unk> <s> </s>, 256 byte tokens, scored pieces."""
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [2, 3, 3] + [6] * 256
    scores = [0.0, 0.0, 0.0] + [0.0] * 256
    words = [list("▁" + w) for w in _BASE_TEXT.split()]
    pieces = []
    for a, b in _train_merges(words, 4 * n_vocab):
        if a + b not in pieces:
            pieces.append(a + b)
    chars = sorted({c for w in words for c in w})
    for p in chars + pieces:
        if len(tokens) >= n_vocab:
            break
        if p not in tokens:
            tokens.append(p)
            types.append(1)
            scores.append(-float(len(tokens)))
    k = 0
    while len(tokens) < n_vocab:
        tokens.append(f"<unused{k}>")
        types.append(5)
        scores.append(-1e9)
        k += 1
    return tokens, types, scores


# --------------------------------------------------------------------------- models

@dataclass
class ModelSpec:
    arch: str = "qwen2"
    weight_type: str = "Q8_0"        # the big matrices
    embd_type: str | None = None     # token_embd (default: weight_type)
    n_layer: int = 2
    n_embd: int = 64
    n_head: int = 4
    n_head_kv: int = 2
    head_dim: int | None = None      # default n_embd // n_head
    n_ff: int = 128
    n_vocab: int = 320
    n_ctx_train: int = 2048
    rope_theta: float = 10000.0
    rms_eps: float = 1e-6
    tied: bool = False
    seed: int = 0
    # gemma3
    sliding_window: int = 8
    sliding_window_pattern: int = 2  # every n-th layer is global
    rope_theta_local: float = 10000.0
    extra_metadata: list = field(default_factory=list)


def spec_for(arch: str, weight_type: str = "Q8_0", **kw) -> ModelSpec:
    """A small spec whose matrix widths suit every block size (256 for K-quants)."""
    base = dict(arch=arch, weight_type=weight_type)
    if weight_type.endswith("_K"):
        base.update(n_embd=256, n_head=4, n_head_kv=2, n_ff=512)
    if arch == "qwen3":
        base.update(head_dim=128)  # HF's Qwen3Config does not read key_length from GGUF: 128 is its default
    if arch == "gemma3":
        # head_dim 256: HF scales attention by query_pre_attn_scalar (default 256, not read from GGUF),
        # llama.cpp by 1/sqrt(head_dim); real Gemma 3 has both 256. Six layers: layer 5 is global
        # (HF's and llama.cpp's pattern of 6); a window of 8 so the golden prompts exceed it.
        base.update(head_dim=256, n_layer=6, rope_theta=1000000.0)
    base.update(kw)
    return ModelSpec(**base)


def _weights(spec: ModelSpec, rng: np.random.Generator):
    """Float32 weights, NumPy order (rows first), named as in GGUF."""
    E, F, V = spec.n_embd, spec.n_ff, spec.n_vocab
    hd = spec.head_dim or E // spec.n_head
    nq, nkv = spec.n_head * hd, spec.n_head_kv * hd

    def mat(rows, cols, gain=1.0):
        return (rng.standard_normal((rows, cols)) * gain / np.sqrt(cols)).astype(np.float32)

    def norm(n):
        return (1.0 + 0.25 * rng.standard_normal(n)).astype(np.float32)

    # Gemma multiplies the embedding by sqrt(E): keep its rows small, as trained models do.
    embd_std = 1.0 / np.sqrt(E) if spec.arch == "gemma3" else 1.0
    w = {"token_embd.weight": (embd_std * rng.standard_normal((V, E))).astype(np.float32)}
    for i in range(spec.n_layer):
        p = f"blk.{i}."
        w[p + "attn_norm.weight"] = norm(E)
        w[p + "attn_q.weight"] = mat(nq, E, 2.0)
        w[p + "attn_k.weight"] = mat(nkv, E, 2.0)
        w[p + "attn_v.weight"] = mat(nkv, E)
        if spec.arch == "qwen2":
            w[p + "attn_q.bias"] = (0.5 * rng.standard_normal(nq)).astype(np.float32)
            w[p + "attn_k.bias"] = (0.5 * rng.standard_normal(nkv)).astype(np.float32)
            w[p + "attn_v.bias"] = (0.5 * rng.standard_normal(nkv)).astype(np.float32)
        if spec.arch in ("qwen3", "gemma3"):
            w[p + "attn_q_norm.weight"] = norm(hd)
            w[p + "attn_k_norm.weight"] = norm(hd)
        w[p + "attn_output.weight"] = mat(E, nq)
        if spec.arch == "gemma3":
            w[p + "post_attention_norm.weight"] = norm(E)
        w[p + "ffn_norm.weight"] = norm(E)
        w[p + "ffn_gate.weight"] = mat(F, E, 1.5)
        w[p + "ffn_up.weight"] = mat(F, E, 1.5)
        w[p + "ffn_down.weight"] = mat(E, F)
        if spec.arch == "gemma3":
            w[p + "post_ffw_norm.weight"] = norm(E)
    w["output_norm.weight"] = norm(E)
    if not spec.tied:
        w["output.weight"] = mat(V, E, 3.0)
    return w


def _metadata(spec: ModelSpec):
    a = spec.arch
    hd = spec.head_dim or spec.n_embd // spec.n_head
    md = [
        ("general.architecture", "str", a),
        ("general.name", "str", f"orc-synth-{a}-{spec.weight_type}"),
        (f"{a}.context_length", "u32", spec.n_ctx_train),
        (f"{a}.embedding_length", "u32", spec.n_embd),
        (f"{a}.block_count", "u32", spec.n_layer),
        (f"{a}.feed_forward_length", "u32", spec.n_ff),
        (f"{a}.attention.head_count", "u32", spec.n_head),
        (f"{a}.attention.head_count_kv", "u32", spec.n_head_kv),
        (f"{a}.attention.layer_norm_rms_epsilon", "f32", spec.rms_eps),
        (f"{a}.rope.freq_base", "f32", spec.rope_theta),
        (f"{a}.vocab_size", "u32", spec.n_vocab),
    ]
    if a == "llama":
        md.append((f"{a}.rope.dimension_count", "u32", hd))
    if a in ("qwen3", "gemma3") or spec.head_dim:
        md += [(f"{a}.attention.key_length", "u32", hd), (f"{a}.attention.value_length", "u32", hd)]
    if a == "gemma3":
        md += [(f"{a}.attention.sliding_window", "u32", spec.sliding_window)]
    md += tokenizer_metadata("llama" if a in ("llama", "gemma3") else "gpt2", spec.n_vocab)
    return md + list(spec.extra_metadata)


def tokenizer_metadata(model: str, n_vocab: int, pre: str = "qwen2") -> list[tuple[str, str, object]]:
    """The tokenizer keys of a synthetic vocabulary of n_vocab tokens: "llama" (SentencePiece
    style) or "gpt2" (byte-level BPE, pre-tokenizer `pre`); what orc and llama.cpp both load."""
    if model == "llama":
        tokens, types, scores = spm_vocab(n_vocab)
        return [("tokenizer.ggml.model", "str", "llama"),
                ("tokenizer.ggml.tokens", "arr:str", tokens),
                ("tokenizer.ggml.scores", "arr:f32", scores),
                ("tokenizer.ggml.token_type", "arr:i32", types),
                ("tokenizer.ggml.bos_token_id", "u32", 1),
                ("tokenizer.ggml.eos_token_id", "u32", 2),
                ("tokenizer.ggml.unknown_token_id", "u32", 0),
                ("tokenizer.ggml.add_bos_token", "bool", True),
                ("tokenizer.ggml.add_eos_token", "bool", False)]
    tokens, types, merges = gpt2_vocab(n_vocab)
    return [("tokenizer.ggml.model", "str", "gpt2"),
            ("tokenizer.ggml.pre", "str", pre),
            ("tokenizer.ggml.tokens", "arr:str", tokens),
            ("tokenizer.ggml.token_type", "arr:i32", types),
            ("tokenizer.ggml.merges", "arr:str", merges),
            ("tokenizer.ggml.eos_token_id", "u32", tokens.index("<|im_end|>")),
            ("tokenizer.ggml.padding_token_id", "u32", tokens.index("<|endoftext|>")),
            ("tokenizer.ggml.bos_token_id", "u32", tokens.index("<|endoftext|>")),
            ("tokenizer.ggml.add_bos_token", "bool", False)]


def _store_type(name: str, spec: ModelSpec) -> str:
    if name.endswith(".bias") or "norm" in name:
        return "F32"
    if name == "token_embd.weight":
        return spec.embd_type or spec.weight_type
    return spec.weight_type


def random_llama_model(path, n_embd: int, n_layer: int, n_head: int, n_head_kv: int, n_ff: int, n_vocab: int,
                       weight_type: str = "Q4_K", scale: float | None = None) -> str:
    """A Llama-shaped file whose every matrix is random `weight_type` blocks (tiled: multi-GB
    benchmark files write in seconds). Untied output, unit norms, a gpt2 vocabulary llama.cpp
    also loads. By default each matrix holds Gaussian values of standard deviation 1/sqrt(its
    columns), quantized (tiled_gaussian), so that products keep the size of their inputs and the
    forward stays finite; `scale` (or a type `quantize` lacks) stores random blocks of that scale
    instead (random Q4_K blocks have a large positive mean: the 8B shape's residual stream
    overflowed float16 in a 512-token prefill, every logit NaN, until the greedy benchmark refused it)."""
    rng = np.random.default_rng(1)
    E, H, HKV, F, V = n_embd, n_head, n_head_kv, n_ff, n_vocab
    HD = E // H
    def blocks(n, cols):
        if scale is None and weight_type in QUANTIZE_TYPES:
            return tiled_gaussian(rng, weight_type, n, cols, 1.0 / np.sqrt(cols))
        return tiled_blocks(rng, weight_type, n, 0.002 if scale is None else scale)

    tensors = [("token_embd.weight", weight_type, (V, E), blocks(V * E, E)),
               ("output.weight", weight_type, (V, E), blocks(V * E, E)),
               ("output_norm.weight", "F32", (E,), np.ones(E, np.float32).tobytes())]
    pools = {}
    for i in range(n_layer):
        p = f"blk.{i}."
        for nm, shape in [("attn_q.weight", (H * HD, E)), ("attn_k.weight", (HKV * HD, E)),
                          ("attn_v.weight", (HKV * HD, E)), ("attn_output.weight", (E, H * HD)),
                          ("ffn_gate.weight", (F, E)), ("ffn_up.weight", (F, E)), ("ffn_down.weight", (E, F))]:
            n = shape[0] * shape[1]
            if (n, shape[1]) not in pools:
                pools[(n, shape[1])] = blocks(n, shape[1])
            tensors.append((p + nm, weight_type, shape, pools[(n, shape[1])]))
        tensors += [(p + "attn_norm.weight", "F32", (E,), np.ones(E, np.float32).tobytes()),
                    (p + "ffn_norm.weight", "F32", (E,), np.ones(E, np.float32).tobytes())]
    md = [("general.architecture", "str", "llama"), ("general.name", "str", f"random-llama-{E}x{n_layer}-{weight_type}"),
          ("llama.context_length", "u32", 8192), ("llama.embedding_length", "u32", E), ("llama.block_count", "u32", n_layer),
          ("llama.feed_forward_length", "u32", F), ("llama.attention.head_count", "u32", H),
          ("llama.attention.head_count_kv", "u32", HKV), ("llama.rope.dimension_count", "u32", HD),
          ("llama.attention.layer_norm_rms_epsilon", "f32", 1e-5), ("llama.rope.freq_base", "f32", 500000.0)]
    md += tokenizer_metadata("gpt2", V, pre="llama-bpe")
    write_gguf(path, md, tensors)
    return str(path)


def make_model(path, spec: ModelSpec | None = None, edit=None, **kw) -> str:
    """Write a synthetic model GGUF to `path` and return the path. `kw` builds a spec
    with spec_for(**kw) when `spec` is not given. `edit(metadata, tensors)` may change
    the lists in place before writing (tests use it to build broken models)."""
    if spec is None:
        spec = spec_for(**kw)
    rng = np.random.default_rng(spec.seed)
    tensors = []
    for name, arr in _weights(spec, rng).items():
        t = _store_type(name, spec)
        tensors.append((name, t, arr.shape, quantize(arr, t)))
    metadata = _metadata(spec)
    if edit is not None:
        edit(metadata, tensors)
    return write_gguf(path, metadata, tensors)


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


if __name__ == "__main__":  # pragma: no cover - manual use
    import sys

    out = sys.argv[1] if len(sys.argv) > 1 else "synth.gguf"
    print(make_model(out, arch=os.environ.get("ARCH", "qwen2"), weight_type=os.environ.get("WTYPE", "Q8_0")))


# -- edits for make_model(edit=...): broken or altered models for tests

def set_kv(key: str, vtype: str, value):
    """An edit that sets metadata `key` (adding it when absent) to `value` of type `vtype`."""
    def edit(md, tensors):
        for i, (k, _, _) in enumerate(md):
            if k == key:
                md[i] = (key, vtype, value)
                return
        md.append((key, vtype, value))
    return edit


def drop_kv(key: str):
    """An edit that removes metadata `key`."""
    def edit(md, tensors):
        md[:] = [m for m in md if m[0] != key]
    return edit


def drop_tensor(name: str):
    """An edit that removes tensor `name`."""
    def edit(md, tensors):
        tensors[:] = [t for t in tensors if t[0] != name]
    return edit
