"""Invariance checks: the same tokens must give the same activations however they are fed.

    r = orc.check_invariance(model, ids)
    print(r)          # per way of feeding: exact or not, the largest difference, where it is
    assert r.ok

The reference is a prefill of `ids` in one call. Against it, hook by hook (Session.trace with the
`capture` patterns), the same tokens fed
  - token by token (one call per token, the KV cache carrying the rest),
  - in chunks of k tokens inside one call (Session(m, n_batch=k)) for each k of `n_batch`,
  - in two calls, split at `split`,
  - after fork(): the first part in one session, the rest in its fork,
  - after rewind-and-redo: everything, rewound to `split`, other tokens fed and rewound again
    (stale cache entries must not leak), then the rest again,
  - inside a batch with other sequences of other lengths (Model.forward_batch, when the build
    has it; otherwise the report says it was not checked).
On the CPU backend every one of these is expected to be bitwise equal (the default tol=0 asks
for exactly that); the report says which comparisons were exact and, for the others, the largest
difference with its hook, position and element, and the first hook (in execution order) that
differs.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _table
from .hooks import hook_order

__all__ = ["check_invariance", "InvarianceReport", "Comparison"]

# Tolerance (per-position NMSE) where bitwise equality is not expected: GPU kernels choose their
# reduction order by shape (GEMV for one token, GEMM for many).
GPU_TOL = 1e-6


@dataclass
class Comparison:
    """One way of feeding the tokens against the one-call reference. `checked` is False (with
    `note` saying why) when it could not run; `exact`: every captured value bit for bit equal;
    `ok`: exact, or within `tol` (per-position NMSE) when tol > 0. `max_abs` is the largest
    |difference| (inf where only one side is NaN/Inf) at `max_hook`, `max_position`, element
    `max_index`; `first_hook` / `first_position` the first difference in execution order;
    `worst_nmse` the largest per-position NMSE; `hooks_differ` how many hooks differ at all."""
    name: str
    checked: bool = True
    exact: bool | None = None
    ok: bool | None = None
    max_abs: float = 0.0
    max_hook: str | None = None
    max_position: int | None = None
    max_index: tuple[int, ...] | None = None
    first_hook: str | None = None
    first_position: int | None = None
    worst_nmse: float = 0.0
    hooks_compared: int = 0
    hooks_differ: int = 0
    positions: str = ""
    note: str = ""

    def line(self) -> str:
        if not self.checked:
            return f"{self.name}: not checked ({self.note})"
        if self.exact:
            return f"{self.name}: exact ({self.hooks_compared} hooks, {self.positions})"
        what = "within tolerance" if self.ok else "DIFFERS"
        idx = ", ".join(str(i) for i in self.max_index or ())
        return (f"{self.name}: {what}: first difference at {self.first_hook} position {self.first_position}; "
                f"largest |diff| {_table.fmt(self.max_abs)} at {self.max_hook} position {self.max_position} [{idx}]; "
                f"worst NMSE {_table.fmt(self.worst_nmse)}; {self.hooks_differ}/{self.hooks_compared} hooks differ")


@dataclass(repr=False)
class InvarianceReport:
    """The comparisons of check_invariance. `ok`: every checked comparison is ok; `exact` /
    `inexact` / `not_checked` list the comparison names by outcome."""
    model: str
    n_tokens: int
    tol: float
    comparisons: list[Comparison] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.comparisons if c.checked)

    @property
    def exact(self) -> list[str]:
        return [c.name for c in self.comparisons if c.checked and c.exact]

    @property
    def inexact(self) -> list[str]:
        return [c.name for c in self.comparisons if c.checked and not c.exact]

    @property
    def not_checked(self) -> list[str]:
        return [c.name for c in self.comparisons if not c.checked]

    def __getitem__(self, name: str) -> Comparison:
        for c in self.comparisons:
            if c.name == name:
                return c
        raise KeyError(f"{name!r}; the comparisons are {[c.name for c in self.comparisons]}")

    def worst(self) -> Comparison | None:
        """The checked comparison with the largest difference (None when all are exact)."""
        bad = [c for c in self.comparisons if c.checked and not c.exact]
        return max(bad, key=lambda c: c.max_abs) if bad else None

    def headline(self) -> str:
        checked = [c for c in self.comparisons if c.checked]
        tol = "bitwise" if self.tol == 0 else f"per-position NMSE <= {self.tol:g}"
        s = (f"invariance of {self.model} over {self.n_tokens} tokens ({tol}): "
             f"{len(self.exact)}/{len(checked)} comparisons exact")
        w = self.worst()
        if w is not None:
            s += (f"; largest difference {_table.fmt(w.max_abs)} ({w.name}, {w.max_hook} position "
                  f"{w.max_position})")
        if self.not_checked:
            s += f"; not checked: {', '.join(self.not_checked)}"
        return s + ("" if self.ok else "\nNOT INVARIANT")

    def __str__(self) -> str:
        return "\n".join([self.headline()] + ["  " + c.line() for c in self.comparisons])

    def __repr__(self) -> str:
        return f"InvarianceReport(ok={self.ok}, exact={len(self.exact)}, inexact={self.inexact})"

    def _repr_html_(self) -> str:
        import html

        return "<pre>" + html.escape(str(self)) + "</pre>"

    def to_dict(self) -> dict[str, Any]:
        def num(x):
            return x if not isinstance(x, float) or math.isfinite(x) else str(x)
        return {"model": self.model, "n_tokens": self.n_tokens, "tol": self.tol, "ok": self.ok,
                "exact": self.exact, "inexact": self.inexact, "not_checked": self.not_checked,
                "comparisons": [{k: (num(v) if not isinstance(v, tuple) else list(v)) for k, v in vars(c).items()}
                                for c in self.comparisons]}


def _bits(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x)
    return x.view(np.dtype(f"u{x.dtype.itemsize}")) if x.dtype.kind == "f" else x


def compare_traces(name: str, ref: Mapping[str, np.ndarray], got: Mapping[str, np.ndarray], rows: slice,
                   tol: float, positions: str = "") -> Comparison:
    """Compare `got` with `ref[hook][rows]` hook by hook (see Comparison)."""
    c = Comparison(name, positions=positions)
    hooks = hook_order(k for k in ref if k in got)
    missing = [k for k in ref if k not in got]
    if missing:
        c.checked, c.ok, c.note = False, None, f"hooks missing from this run: {missing[:4]}"
        return c
    offset = rows.start or 0
    c.exact, c.ok = True, True
    for h in hooks:
        a = np.asarray(ref[h])[rows]
        b = np.asarray(got[h])
        if b.shape != a.shape:
            if b.size == a.size:
                b = b.reshape(a.shape)
            else:
                c.checked, c.exact, c.ok = True, False, False
                c.first_hook = c.first_hook or h
                c.note = f"{h}: shape {b.shape}, expected {a.shape}"
                c.max_abs = math.inf
                return c
        c.hooks_compared += 1
        differ = _bits(a) != _bits(b)
        if not differ.any():
            continue
        c.exact = False
        c.hooks_differ += 1
        n = a.shape[0]
        a2 = a.reshape(n, -1).astype(np.float64)
        b2 = b.reshape(n, -1).astype(np.float64)
        with np.errstate(all="ignore"):
            d = np.abs(a2 - b2)
            both_nan = np.isnan(a2) & np.isnan(b2)
            d = np.where(both_nan, 0.0, np.where(np.isnan(d), np.inf, d))
            e2 = (np.where(np.isfinite(d), d, 0.0) ** 2).sum(axis=1)
            r2 = (np.where(np.isfinite(a2), a2, 0.0) ** 2).sum(axis=1)
            nm = np.where(r2 > 0, e2 / np.where(r2 > 0, r2, 1.0), np.where(e2 == 0, 0.0, np.inf))
            nm = np.where(np.isinf(d).any(axis=1), np.inf, nm)
        if c.first_hook is None:
            c.first_hook = h
            c.first_position = offset + int(np.flatnonzero(differ.reshape(n, -1).any(axis=1))[0])
        flat = int(np.argmax(d))
        p, j = divmod(flat, d.shape[1])
        if float(d[p, j]) > c.max_abs or c.max_hook is None:
            c.max_abs = float(d[p, j])
            c.max_hook, c.max_position = h, offset + p
            c.max_index = tuple(int(i) for i in np.unravel_index(j, a.shape[1:])) if a.ndim > 1 else ()
        worst = float(nm.max())
        c.worst_nmse = max(c.worst_nmse, worst)
        if not (tol > 0 and worst <= tol):
            c.ok = False
    return c


def _concat(parts: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts], axis=0) for k in parts[0]}


def _other_ids(ids: list[int], n_vocab: int, n: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    return [int(t) for t in rng.integers(0, n_vocab, n)]


def _batch_run(model, seqs: list[list[int]], capture, index: int):
    """Sequence `index`'s trace from Model.forward_batch(seqs, logits="all", capture=capture): one
    {hook: array} per sequence, the logits under "logits". Anything else raises TypeError."""
    out = model.forward_batch(seqs, logits="all", capture=list(capture))
    if isinstance(out, (list, tuple)) and len(out) == len(seqs) and isinstance(out[index], Mapping):
        return dict(out[index])
    raise TypeError(f"Model.forward_batch returned {type(out).__name__}; expected one {{hook: array}} per sequence")


def check_invariance(model: Any, ids: Sequence[int] | np.ndarray, *, capture: str | Sequence[str] = ("*",),
                     n_batch: Sequence[int] = (1, 2, 3, 7), split: int | None = None, tol: float | None = None,
                     batch: bool = True, session_cls: type | None = None, seed: int = 0) -> InvarianceReport:
    """Feed `ids` (>= 2 tokens) to `model` in every way listed in the module docstring and
    compare each with a prefill in one call, hook by hook.

    capture: glob patterns of the hooks to compare (default: all; "logits" is one of them).
    n_batch: the chunk sizes to try inside one call (sizes >= len(ids) are skipped).
    split: where the two-call, fork and rewind comparisons cut (default: len(ids) // 2).
    tol: per-position NMSE allowed; default 0 (bitwise) on the CPU, 1e-6 on a GPU.
    batch: also check inside a batch (Model.forward_batch), when the model has it.
    session_cls: the class sessions are made with (default orc.Session): a subclass or wrapper to
        test, e.g. an engine adapter.
    Returns an InvarianceReport (`ok`, `exact`, `inexact`, `not_checked`, per-comparison details).
    """
    from .model import Session

    cls = Session if session_cls is None else session_cls
    ids = [int(t) for t in np.asarray(ids).reshape(-1)]
    n = len(ids)
    if n < 2:
        raise ValueError(f"check_invariance needs at least 2 tokens, got {n}")
    k = n // 2 if split is None else int(split)
    if not 0 < k < n:
        raise ValueError(f"split must be in [1, {n - 1}], got {split}")
    pats = [capture] if isinstance(capture, str) else list(capture)
    if tol is None:
        tol = 0.0 if model.device == "cpu" else GPU_TOL
    n_ctx = n + 1

    def session(nb=None):
        return cls(model, n_ctx=n_ctx, n_batch=max(n, 1) if nb is None else nb)

    with session() as s:
        ref = s.trace(ids, capture=pats)
    label = f"{getattr(model, 'path', model)} ({model.device} {model.dtype})"
    rep = InvarianceReport(model=label, n_tokens=n, tol=tol)
    allrows = slice(0, n)
    every = f"positions 0..{n - 1}"

    with session() as s:
        got = _concat([s.trace([t], capture=pats) for t in ids])
    rep.comparisons.append(compare_traces("token by token", ref, got, allrows, tol, every))

    for nb in n_batch:
        if nb >= n or nb < 1:
            continue
        with session(nb) as s:
            got = s.trace(ids, capture=pats)
        rep.comparisons.append(compare_traces(f"n_batch={nb}", ref, got, allrows, tol, every))

    with session() as s:
        got = _concat([s.trace(ids[:k], capture=pats), s.trace(ids[k:], capture=pats)])
    rep.comparisons.append(compare_traces(f"two calls split at {k}", ref, got, allrows, tol, every))

    with session() as s:
        first = s.trace(ids[:k], capture=pats)
        f = s.fork()
        try:
            s.trace(_other_ids(ids, model.vocab_size, n - k, seed), capture=pats)  # the original moves on
            got = _concat([first, f.trace(ids[k:], capture=pats)])
        finally:
            f.close()
    rep.comparisons.append(compare_traces(f"fork at {k}", ref, got, allrows, tol, every))

    with session() as s:
        s.trace(ids, capture=pats)
        s.rewind(n - k)
        s.trace(_other_ids(ids, model.vocab_size, n - k, seed + 1), capture=pats)
        s.rewind(n - k)
        got = s.trace(ids[k:], capture=pats)
    rep.comparisons.append(compare_traces(f"rewind to {k} and redo", ref, got, slice(k, n), tol,
                                          f"positions {k}..{n - 1}"))

    name = "inside a batch (Model.forward_batch)"
    if not batch:
        rep.comparisons.append(Comparison(name, checked=False, note="batch=False"))
    elif not hasattr(model, "forward_batch"):
        rep.comparisons.append(Comparison(name, checked=False, note="this build of orc has no Model.forward_batch"))
    else:
        longer = _other_ids(ids, model.vocab_size, n + 3, seed + 2)
        shorter = _other_ids(ids, model.vocab_size, max(1, n // 3), seed + 3)
        try:
            got = _batch_run(model, [longer, ids, shorter], pats, 1)
        except TypeError as e:
            rep.comparisons.append(Comparison(name, checked=True, exact=False, ok=False, note=str(e)))
        else:
            rep.comparisons.append(compare_traces(name, ref, got, allrows, tol, every + " (2nd of 3 sequences)"))
    return rep
