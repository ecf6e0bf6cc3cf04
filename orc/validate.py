"""Weights that cannot be right: NaN/Inf values (HARDENING row 19) and an all-zero rope_freqs.

    orc.Model(path, validate=True)      # orc.GGUFError naming each bad tensor, element, block, count
    orc.Model(path)                     # loads anyway, with one orc.NonFiniteWeightWarning
    orc.validate.nonfinite_weights(f)   # [BadWeight(name, type, count, first_index, block, reason)]

The scan is native (GGUFFile.nonfinite, csrc/quant/scan.c): a value counts when its dequantized
float32 is NaN or Inf, so a NaN block scale counts for every value of its block. A debugging tool
must still open a broken file, so Model loads warn instead of failing, after a cheap form of the
scan that is always on (mode="scales": only the float16 scale fields of block types are read, and
only blocks with a non-finite scale are dequantized; the same answer, about 2-4% of a load);
validate=True runs the full form (every block dequantized) before loading and refuses the file.
"""
from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np

from ._orc import QUANT_TYPES, GGUFError

__all__ = ["NonFiniteWeightWarning", "BadWeight", "nonfinite_weights", "describe", "validate_weights", "warn_nonfinite"]


class NonFiniteWeightWarning(UserWarning):
    """A model's weights hold NaN/Inf values (or an all-zero rope_freqs): it loaded, but its
    outputs will be NaN or garbage. The message names every such tensor and the count."""


class BadWeight(NamedTuple):
    """One tensor that cannot be right. count: the NaN/Inf values (or, for reason "zero",
    the zero values); first_index: the flat element index (storage order) of the first;
    block: the block it is in (first_index // the type's block size)."""
    name: str
    type: str
    count: int
    first_index: int
    block: int
    reason: str  # "nonfinite" or "zero"

    def __str__(self) -> str:
        if self.reason == "zero":
            return (f"'{self.name}' ({self.type}) is all zeros ({self.count} values): RoPE divides by "
                    "these frequency factors")
        where = f"element {self.first_index}"
        if self.block != self.first_index:
            where += f" (block {self.block})"
        return f"'{self.name}' ({self.type}): {self.count} NaN/Inf value(s), the first at {where}"


# Tensors whose values divide: all zeros gives Inf/NaN in the forward pass (llama.cpp's
# rope_freqs are per-dimension divisors of the RoPE frequencies).
_DIVISORS = ("rope_freqs.weight",)


def nonfinite_weights(gguf, *, mode: str = "full", n_threads: int = 0, zero_divisors: bool = True) -> list[BadWeight]:
    """Every tensor of an open orc.GGUFFile holding NaN/Inf values (and, with zero_divisors, a
    rope_freqs that is all zeros), in file order. mode: "full" dequantizes every block; "scales"
    reads only the float16 scales of the types whose values are integers times them (the same
    answer, far cheaper; other types are dequantized). Tensors of types orc cannot dequantize are
    left out (loading a model that uses one fails on its own, naming it)."""
    infos = {t.name: t for t in gguf.tensors}
    scan = [t for t in infos.values() if t.type in QUANT_TYPES]
    out = []
    for name, count, first, block in gguf.nonfinite(scan, mode=mode, n_threads=n_threads):
        out.append(BadWeight(name, infos[name].type, count, first, block, "nonfinite"))
    if zero_divisors:
        for name in _DIVISORS:
            t = infos.get(name)
            if t is None or t.type not in ("F32", "F16", "BF16") or any(b.name == name for b in out):
                continue
            raw = np.asarray(gguf.raw(name))
            # zero is +0/-0: every bit but the sign clear
            if t.type == "F32":
                nonzero = np.count_nonzero(raw.view("<u4") & np.uint32(0x7FFFFFFF))
            else:
                nonzero = np.count_nonzero(raw.view("<u2") & np.uint16(0x7FFF))
            if t.n_elements and nonzero == 0:
                out.append(BadWeight(name, t.type, t.n_elements, 0, 0, "zero"))
    return out


def describe(bad: list[BadWeight], limit: int = 8) -> str:
    """The tensors of nonfinite_weights() in one line (the first `limit`, then a count)."""
    lines = "; ".join(str(b) for b in bad[:limit])
    if len(bad) > limit:
        lines += f"; and {len(bad) - limit} more tensor(s)"
    return lines


def validate_weights(gguf, n_threads: int = 0) -> None:
    """The full scan (Model(path, validate=True)): raise orc.GGUFError naming each tensor with
    NaN/Inf values, the first bad element and block, and the count; return None when clean."""
    bad = nonfinite_weights(gguf, mode="full", n_threads=n_threads, zero_divisors=False)
    if bad:
        raise GGUFError(f"{len(bad)} tensor(s) hold NaN/Inf values: {describe(bad)}")


def warn_nonfinite(gguf, n_threads: int = 0, stacklevel: int = 3) -> list[BadWeight]:
    """The load-time check: one NonFiniteWeightWarning listing every tensor with NaN/Inf values
    (block scales included) or an all-zero rope_freqs; returns them (empty when clean)."""
    bad = nonfinite_weights(gguf, mode="scales", n_threads=n_threads)
    if bad:
        warnings.warn(NonFiniteWeightWarning(
            f"{gguf.path}: {len(bad)} tensor(s) cannot be right, outputs will be NaN/garbage: {describe(bad)} "
            "(the model loaded anyway; Model(path, validate=True) refuses such a file)"), stacklevel=stacklevel)
    return bad
