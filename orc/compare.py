"""Compare logits and traces from two runs, and diagnose logits that look broken.

    r = orc.compare.compare_logits(gpu_logits, cpu_logits)   # NMSE, max error, top-1/top-k, KL
    d = orc.compare.first_divergence(gpu_trace, cpu_trace)   # first hook and position that differ
    orc.compare.diagnose(logits)                             # NaN/Inf, huge values, collapse, ...
    b = orc.compare.patch_bisect(model_a, model_b, ids)      # which layer makes B differ (patching)

Conventions: logits are [n_positions, n_vocab] (or [n_vocab], one position); a trace is a mapping
{hook name: array} (`Session.trace()` output, a dict, an `np.load`ed .npz) whose arrays have the
token position on axis 0. The second argument is always the reference. All statistics are computed
in float64. NaN or Inf anywhere makes a comparison fail: it is reported, never averaged away.

NMSE (normalized mean squared error) = sum((a - b)**2) / sum(b**2), b the reference. Where the
reference is all zeros it is 0 when a is too and inf otherwise.
"""
from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from . import _table
from .hooks import hook_order

__all__ = [
    "compare_logits", "LogitsComparison", "NonFinite",
    "first_divergence", "Divergence", "HookSummary", "DEFAULT_TRACE_TOL",
    "diagnose", "Diagnosis", "Finding",
    "hook_order", "nmse",
    "patch_bisect", "PatchBisect",
]

# Rows are processed in chunks of about this many elements, so float64 temporaries stay ~16 MiB
# even for [4096, 152064] logits.
_CHUNK_ELEMS = 1 << 21

DEFAULT_TRACE_TOL = 1e-3


class NonFinite(NamedTuple):
    """The first NaN or Inf found: in which array ('a' or 'b'), at which position, and the
    element's index within that position."""
    array: str
    position: int
    element: tuple[int, ...]
    value: float

    def __str__(self) -> str:
        idx = ", ".join(str(i) for i in self.element)
        return f"{self.value} in {self.array} at position {self.position}, index [{idx}]"


# ---------------------------------------------------------------------------------------------
# shared helpers

def _as_rows(x: Any, what: str) -> np.ndarray:
    """x as a 2-D array [n_positions, n_features] (a view where possible)."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{what}: expected a real numeric array, got dtype {arr.dtype}")
    if arr.ndim == 0:
        return arr.reshape(1, 1)
    return arr if arr.ndim == 2 else arr.reshape(arr.shape[0], math.prod(arr.shape[1:]))


def _chunks(n_rows: int, n_cols: int):
    step = max(1, _CHUNK_ELEMS // max(1, n_cols))
    for r0 in range(0, n_rows, step):
        yield r0, min(n_rows, r0 + step)


def _nmse_from(err2: np.ndarray, ref2: np.ndarray) -> np.ndarray:
    """err2 / ref2 with the all-zero reference rule; NaN where either is NaN or Inf."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(ref2 > 0, err2 / np.where(ref2 > 0, ref2, 1.0), np.where(err2 == 0, 0.0, np.inf))
    bad = ~np.isfinite(err2) | ~np.isfinite(ref2)
    return np.where(bad, np.nan, out)


def nmse(a: Any, b: Any) -> float:
    """sum((a - b)**2) / sum(b**2) over the whole arrays, b the reference; 0 when both are all
    zeros, inf when only b is; NaN when either holds NaN or Inf. Shapes must match."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"nmse: shapes differ: {a.shape} vs {b.shape}")
    if a.size == 0:
        raise ValueError("nmse: empty arrays")
    a2, b2 = _as_rows(a, "a"), _as_rows(b, "b")
    s = _diff_stats(a2, b2)
    return _whole_nmse(s)


class _DiffStats(NamedTuple):
    err2: np.ndarray       # per row sum((a-b)^2)
    ref2: np.ndarray       # per row sum(b^2)
    max_abs: np.ndarray    # per row max |a-b| (NaN where a row has a NaN)
    ref_max: np.ndarray    # per row max |b|
    nonfinite_a: np.ndarray  # per row count of NaN/Inf in a
    nonfinite_b: np.ndarray
    all_finite: bool


def _diff_stats(a: np.ndarray, b: np.ndarray) -> _DiffStats:
    n, m = a.shape
    err2 = np.empty(n)
    ref2 = np.empty(n)
    max_abs = np.empty(n)
    ref_max = np.empty(n)
    nfa = np.zeros(n, dtype=np.int64)
    nfb = np.zeros(n, dtype=np.int64)
    with np.errstate(all="ignore"):
        for r0, r1 in _chunks(n, m):
            ac = a[r0:r1].astype(np.float64, copy=False)
            bc = b[r0:r1].astype(np.float64, copy=False)
            d = np.abs(ac - bc)
            err2[r0:r1] = np.einsum("ij,ij->i", d, d)
            ref2[r0:r1] = np.einsum("ij,ij->i", bc, bc)
            max_abs[r0:r1] = d.max(axis=1) if m else 0.0
            ref_max[r0:r1] = np.abs(bc).max(axis=1) if m else 0.0
            nfa[r0:r1] = m - np.count_nonzero(np.isfinite(ac), axis=1)
            nfb[r0:r1] = m - np.count_nonzero(np.isfinite(bc), axis=1)
    return _DiffStats(err2, ref2, max_abs, ref_max, nfa, nfb, not (nfa.any() or nfb.any()))


def _whole_nmse(st: _DiffStats) -> float:
    """NMSE over all rows; NaN when anything is not finite."""
    return float(_nmse_from(np.array(st.err2.sum()), np.array(st.ref2.sum()))) if st.all_finite else math.nan


def _first_nonfinite(x: np.ndarray, name: str, rows: np.ndarray, shape: tuple[int, ...]) -> NonFinite | None:
    """The first NaN/Inf of x (2-D) among the given rows, index unravelled to the trailing shape."""
    for r in rows:
        bad = np.flatnonzero(~np.isfinite(x[r]))
        if bad.size:
            j = int(bad[0])
            return NonFinite(name, int(r), tuple(int(i) for i in np.unravel_index(j, shape)), float(x[r, j]))
    return None


def _log_softmax(x: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax in float64; rows may hold -inf (masked tokens)."""
    x = x.astype(np.float64, copy=False)
    with np.errstate(all="ignore"):
        m = x.max(axis=1, keepdims=True)
        m = np.where(np.isfinite(m), m, 0.0)
        z = x - m
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _kl_rows(lp_ref: np.ndarray, lp_act: np.ndarray) -> np.ndarray:
    """KL(p_ref || p_act) per row from log-probabilities; terms with p_ref == 0 are 0."""
    with np.errstate(all="ignore"):
        p = np.exp(lp_ref)
        t = np.where(p > 0, p * (lp_ref - lp_act), 0.0)
        return np.maximum(t.sum(axis=1), 0.0)  # rounding can make a zero KL slightly negative


def _entropy_rows(lp: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        p = np.exp(lp)
        return -np.where(p > 0, p * lp, 0.0).sum(axis=1)


def _argmax_rows(x: np.ndarray) -> np.ndarray:
    """Row argmax with NaN treated as -inf (so a NaN never wins; the row is flagged elsewhere)."""
    return np.argmax(np.where(np.isnan(x), -np.inf, x), axis=1)


def _topk_rows(x: np.ndarray, k: int) -> np.ndarray:
    x = np.where(np.isnan(x), -np.inf, x)
    if k >= x.shape[1]:
        return np.broadcast_to(np.arange(x.shape[1]), x.shape)
    return np.argpartition(-x, k - 1, axis=1)[:, :k]


# ---------------------------------------------------------------------------------------------
# compare_logits

@dataclass(repr=False)
class LogitsComparison:
    """How logits `a` compare with the reference `b`, overall and per position.

    Overall: `nmse` (over all positions), `max_abs`, `max_rel`, `top1_agreement` (fraction of
    positions), `topk_overlap` (mean), `kl_mean`, `kl_max`. Per position: `per_position`, a dict
    of arrays (pandas.DataFrame(r.per_position) gives a table). `ok` applies the tolerances the
    comparison was made with; `failures` says which ones failed.
    """
    n_positions: int
    n_vocab: int
    k: int
    nmse: float
    max_abs: float
    max_rel: float
    top1_agreement: float
    topk_overlap: float
    kl_mean: float
    kl_max: float
    n_nonfinite_a: int
    n_nonfinite_b: int
    first_nonfinite: NonFinite | None
    per_position: dict[str, np.ndarray] = field(repr=False)
    tol_nmse: float | None = 1e-4
    tol_top1: bool = True
    tol_kl: float | None = None
    tokenizer: Any = field(default=None, repr=False, compare=False)

    @property
    def failures(self) -> list[str]:
        """Why `ok` is False, one line per failed criterion (empty when ok)."""
        out = []
        if self.n_nonfinite_a or self.n_nonfinite_b:
            out.append(f"non-finite values: {self.n_nonfinite_a} in actual, {self.n_nonfinite_b} in expected; "
                       f"first: {self.first_nonfinite}")
        if self.tol_nmse is not None and not self.nmse <= self.tol_nmse:
            out.append(f"NMSE {_table.fmt(self.nmse)} > {_table.fmt(self.tol_nmse)}")
        if self.tol_top1:
            agree = self.per_position["top1_agree"]
            if not agree.all():
                bad = np.flatnonzero(~agree)
                out.append(f"top-1 differs at {bad.size}/{self.n_positions} positions (first: {_short_list(bad)})")
        if self.tol_kl is not None and not self.kl_max <= self.tol_kl:
            out.append(f"max KL {_table.fmt(self.kl_max)} > {_table.fmt(self.tol_kl)}")
        return out

    @property
    def ok(self) -> bool:
        """All values finite and every tolerance met."""
        return not self.failures

    def worst(self, n: int = 10) -> np.ndarray:
        """Up to n positions, worst first: non-finite ones, then top-1 disagreements, then by NMSE."""
        pp = self.per_position
        key_nmse = np.where(np.isnan(pp["nmse"]), np.inf, pp["nmse"])
        order = np.lexsort((-key_nmse, pp["top1_agree"], ~np.isnan(pp["nmse"])))
        return order[:n]

    _HEADERS = ("pos", "NMSE", "max|a-b|", "argmax a", "argmax b", "top1", "top-k", "KL")

    def _rows(self, positions):
        pp = self.per_position
        tok = token_labeler(self.tokenizer)
        return [(int(p), pp["nmse"][p], pp["max_abs"][p], tok(int(pp["argmax_a"][p])), tok(int(pp["argmax_b"][p])),
                 bool(pp["top1_agree"][p]), pp["topk_overlap"][p], pp["kl"][p]) for p in positions]

    def table(self, positions: Any = None, n: int = 10) -> str:
        """A text table of the given positions (default: the n worst)."""
        pos = self.worst(n) if positions is None else np.atleast_1d(positions)
        return _table.text_table(self._HEADERS, self._rows(pos))

    def summary(self) -> str:
        status = "OK" if self.ok else "NOT OK"
        s = (f"logits {status}: {self.n_positions} position(s) x {self.n_vocab} vocab; NMSE {_table.fmt(self.nmse)}, "
             f"max|a-b| {_table.fmt(self.max_abs)} (rel {_table.fmt(self.max_rel)}), "
             f"top-1 {_table.fmt(self.top1_agreement * 100)}%, top-{self.k} overlap {_table.fmt(self.topk_overlap)}, "
             f"KL mean {_table.fmt(self.kl_mean)} max {_table.fmt(self.kl_max)}")
        return s + "".join("\n  - " + f for f in self.failures)

    def __str__(self) -> str:
        n = min(10, self.n_positions)
        return f"{self.summary()}\nworst {n} position(s):\n{self.table(n=n)}"

    def __repr__(self) -> str:
        return (f"LogitsComparison(ok={self.ok}, n_positions={self.n_positions}, nmse={self.nmse:.3e}, "
                f"max_abs={self.max_abs:.3e}, top1_agreement={self.top1_agreement:.4f}, kl_max={self.kl_max:.3e})")

    def _repr_html_(self) -> str:
        pos = self.worst(min(10, self.n_positions))
        rows = self._rows(pos)
        return (_table.html_text(self.summary()) +
                _table.html_table(self._HEADERS, rows, [not r[5] or not r[1] <= (self.tol_nmse or math.inf) for r in rows]))


def token_labeler(tokenizer: Any):
    """A function token id -> table cell: "17 'Paris'" when `tokenizer` (an orc.Tokenizer, an
    orc.Model, or anything with detokenize_bytes) can render the token, else "17"."""
    tok = getattr(tokenizer, "tokenizer", tokenizer) if tokenizer is not None else None
    if tok is not None and not hasattr(tok, "detokenize_bytes"):
        tok = None

    def label(t: int) -> str | int:
        if tok is None:
            return t
        try:
            b = tok.detokenize_bytes([t])
        except Exception:  # noqa: BLE001 - an id the vocabulary does not have: the id alone
            return t
        try:
            return f"{t} {b.decode('utf-8')!r}"
        except UnicodeDecodeError:
            return f"{t} {b!r}"
    return label


def _short_list(idx: np.ndarray, n: int = 8) -> str:
    s = ", ".join(str(int(i)) for i in idx[:n])
    return s + (", ..." if idx.size > n else "")


def compare_logits(a: Any, b: Any, *, k: int = 5, nmse: float | None = 1e-4, top1: bool = True,
                   top1_tie: float = 0.0, kl: float | None = None, tokenizer: Any = None) -> LogitsComparison:
    """Compare logits `a` with the reference logits `b` ([n_positions, n_vocab] or [n_vocab]).

    Per position (all in float64):
      nmse          sum((a - b)**2) / sum(b**2) over the vocabulary (0 if both are all zeros,
                    inf if only b is; NaN where a or b holds NaN/Inf)
      max_abs       max |a - b|
      max_rel       max |a - b| / max |b|: the error relative to the reference's scale at that
                    position (an element-wise relative error explodes on logits near 0)
      argmax_a/b    top-1 token of each (NaN never wins)
      top1_agree    argmax equal, or b[argmax_a] >= max(b) - top1_tie: a tie in the reference
                    (within top1_tie) is not a disagreement
      topk_overlap  |topk(a) & topk(b)| / k
      kl            KL(p_b || p_a) of the softmax distributions, from log-softmax in float64
    Overall: nmse over all positions, max_abs, max_rel, top1_agreement (fraction), topk_overlap
    (mean), kl_mean, kl_max.

    The tolerances decide `.ok`: values all finite, overall NMSE <= `nmse` (None: not checked),
    top-1 agreeing at every position if `top1`, and max KL <= `kl` if given. `tokenizer` (an
    orc.Tokenizer or orc.Model) makes the tables show each argmax token's text beside its id.
    """
    a2, b2 = np.asarray(a), np.asarray(b)
    if a2.shape != b2.shape:
        raise ValueError(f"compare_logits: shapes differ: a {a2.shape} vs b {b2.shape}")
    if a2.ndim not in (1, 2):
        raise ValueError(f"compare_logits: logits are [n_vocab] or [n_positions, n_vocab], got shape {a2.shape}")
    a2, b2 = _as_rows(a2.reshape(-1, a2.shape[-1]), "a"), _as_rows(b2.reshape(-1, b2.shape[-1]), "b")
    n, v = a2.shape
    if n == 0 or v == 0:
        raise ValueError(f"compare_logits: nothing to compare (shape {a2.shape})")
    if k < 1:
        raise ValueError(f"compare_logits: k must be >= 1, got {k}")
    k = min(k, v)

    st = _diff_stats(a2, b2)
    argmax_a = np.empty(n, dtype=np.int64)
    argmax_b = np.empty(n, dtype=np.int64)
    agree = np.empty(n, dtype=bool)
    overlap = np.empty(n)
    kl_pos = np.empty(n)
    for r0, r1 in _chunks(n, v):
        ac = a2[r0:r1].astype(np.float64, copy=False)
        bc = b2[r0:r1].astype(np.float64, copy=False)
        ia, ib = _argmax_rows(ac), _argmax_rows(bc)
        argmax_a[r0:r1], argmax_b[r0:r1] = ia, ib
        rows = np.arange(r1 - r0)
        with np.errstate(invalid="ignore"):
            agree[r0:r1] = (ia == ib) | (bc[rows, ia] >= bc[rows, ib] - top1_tie)
        ta, tb = _topk_rows(ac, k), _topk_rows(bc, k)
        overlap[r0:r1] = (ta[:, :, None] == tb[:, None, :]).any(axis=2).sum(axis=1) / k
        kl_pos[r0:r1] = _kl_rows(_log_softmax(bc), _log_softmax(ac))
    bad_rows = (st.nonfinite_a > 0) | (st.nonfinite_b > 0)
    kl_pos[bad_rows] = np.nan
    nmse_pos = _nmse_from(st.err2, st.ref2)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel_pos = np.where(st.ref_max > 0, st.max_abs / np.where(st.ref_max > 0, st.ref_max, 1.0),
                           np.where(st.max_abs == 0, 0.0, np.inf))
    rel_pos[bad_rows] = np.nan

    first = None
    if not st.all_finite:
        ra = np.flatnonzero(st.nonfinite_a)
        rb = np.flatnonzero(st.nonfinite_b)
        fa = _first_nonfinite(a2, "a", ra[:1], (v,)) if ra.size else None
        fb = _first_nonfinite(b2, "b", rb[:1], (v,)) if rb.size else None
        first = min((f for f in (fa, fb) if f is not None), key=lambda f: (f.position, f.element))

    def agg(x, fn):
        return float(fn(x)) if st.all_finite else math.nan

    return LogitsComparison(
        n_positions=n, n_vocab=v, k=k,
        nmse=_whole_nmse(st),
        max_abs=agg(st.max_abs, np.max), max_rel=agg(rel_pos, np.max),
        top1_agreement=float(agree.mean()), topk_overlap=float(overlap.mean()),
        kl_mean=agg(kl_pos, np.mean), kl_max=agg(kl_pos, np.max),
        n_nonfinite_a=int(st.nonfinite_a.sum()), n_nonfinite_b=int(st.nonfinite_b.sum()), first_nonfinite=first,
        per_position={"nmse": nmse_pos, "max_abs": st.max_abs, "max_rel": rel_pos, "argmax_a": argmax_a,
                      "argmax_b": argmax_b, "top1_agree": agree, "topk_overlap": overlap, "kl": kl_pos},
        tol_nmse=nmse, tol_top1=top1, tol_kl=kl, tokenizer=tokenizer,
    )


# ---------------------------------------------------------------------------------------------
# first_divergence

@dataclass
class HookSummary:
    """One hook point of a trace comparison: whole-array NMSE, the worst position's metric value,
    max |a - b|, and whether it is within tolerance."""
    hook: str
    shape: tuple[int, ...]
    nmse: float
    worst_position: int | None
    worst_value: float
    max_abs: float
    tol: float
    ok: bool
    note: str = ""


def _summary_headers(metric: str) -> tuple[str, ...]:
    return ("hook", "shape", "NMSE", "worst pos", f"worst {metric}", "max|a-b|", "tol", "ok")


def _summary_rows(rows: list[HookSummary]):
    return [(s.hook, s.shape, s.nmse, "-" if s.worst_position is None else s.worst_position, s.worst_value,
             s.max_abs, s.tol, s.ok) for s in rows]


@dataclass(repr=False)
class Divergence:
    """Where two traces first differ beyond tolerance, in execution order.

    `diverged` is False (and the object falsy) when every compared hook is within tolerance.
    Otherwise `hook` and `position` say where; `positions` lists every position beyond tolerance
    at that hook; `value` is the metric there, `nmse` and `max_abs` the per-position numbers;
    `index`, `a_value`, `b_value` name the element with the largest error (or the first NaN/Inf);
    `per_position` holds the metric of every position at that hook (NaN where not finite).
    `summary` has one HookSummary per hook compared, up to and including the diverging one.
    """
    diverged: bool
    metric: str
    hook: str | None = None
    position: int | None = None
    positions: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    value: float = math.nan
    tol: float = math.nan
    nmse: float = math.nan
    max_abs: float = math.nan
    index: tuple[int, ...] | None = None
    a_value: float | None = None
    b_value: float | None = None
    reason: str = ""
    summary: list[HookSummary] = field(default_factory=list)
    missing_in_a: list[str] = field(default_factory=list)
    missing_in_b: list[str] = field(default_factory=list)
    per_position: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __bool__(self) -> bool:
        return self.diverged

    def headline(self) -> str:
        if not self.diverged:
            s = f"no divergence: {len(self.summary)} hook(s) within tolerance ({self.metric})"
        else:
            at = "" if self.position is None else f" at position {self.position}"
            s = f"first divergence: {self.hook}{at}: {self.reason}"
            if self.position is not None:
                idx = ", ".join(str(i) for i in self.index or ())
                s += (f"\n  at this position: NMSE {_table.fmt(self.nmse)}, max|a-b| {_table.fmt(self.max_abs)}; "
                      f"element [{idx}]: a={_table.fmt(self.a_value)} b={_table.fmt(self.b_value)}")
                if self.positions.size > 1:
                    s += f"\n  {self.positions.size} positions beyond tolerance: {_short_list(self.positions)}"
        if self.missing_in_a or self.missing_in_b:
            s += (f"\n  not compared: {len(self.missing_in_a)} hook(s) only in b ({_short_names(self.missing_in_a)}), "
                  f"{len(self.missing_in_b)} only in a ({_short_names(self.missing_in_b)})")
        return s

    def table(self, last: int | None = None) -> str:
        rows = self.summary if last is None else self.summary[-last:]
        return _table.text_table(_summary_headers(self.metric), _summary_rows(rows))

    def __str__(self) -> str:
        n = min(len(self.summary), 12)
        return f"{self.headline()}\nlast {n} hook(s) compared:\n{self.table(last=n)}"

    def __repr__(self) -> str:
        if not self.diverged:
            return f"Divergence(diverged=False, hooks_compared={len(self.summary)})"
        return (f"Divergence(hook={self.hook!r}, position={self.position}, {self.metric}={self.value:.3e}, "
                f"tol={self.tol:.1e})")

    def _repr_html_(self) -> str:
        return (_table.html_text(self.headline()) +
                _table.html_table(_summary_headers(self.metric), _summary_rows(self.summary), [not s.ok for s in self.summary]))


def _short_names(names: list[str], n: int = 4) -> str:
    return ", ".join(names[:n]) + (", ..." if len(names) > n else "")


def _tol_for(hook: str, tol: float | Mapping[str, float]) -> float:
    if not isinstance(tol, Mapping):
        return float(tol)
    for pat, t in tol.items():
        if fnmatch.fnmatchcase(hook, pat):
            return float(t)
    return DEFAULT_TRACE_TOL


def first_divergence(trace_a: Mapping[str, Any], trace_b: Mapping[str, Any],
                     tol: float | Mapping[str, float] = DEFAULT_TRACE_TOL, metric: str = "nmse") -> Divergence:
    """The first hook point, in execution order, and the first position at it, where trace_a
    differs from the reference trace_b beyond `tol`.

    Traces map hook names to arrays with the token position on axis 0 (other axes are flattened
    per position). Only hooks present in both are compared, in `hook_order`; the others are listed
    in `missing_in_a` / `missing_in_b`. Per hook and position the metric is
      "nmse"     sum((a - b)**2) / sum(b**2) over that position's values (see module docstring)
      "max_abs"  max |a - b|
    A position diverges when the metric exceeds `tol` or a or b holds NaN/Inf there (NaN never
    passes); a hook whose shapes differ diverges at no particular position. `tol` is a float or a
    mapping {glob pattern: tol}, first match wins ({"blk.*.q*": 1e-2, "*": 1e-3}); hooks no
    pattern matches use DEFAULT_TRACE_TOL. Comparison stops at the first divergence.

    Returns a Divergence; it is falsy (diverged=False) when nothing diverges.
    """
    if metric not in ("nmse", "max_abs"):
        raise ValueError(f"first_divergence: metric must be 'nmse' or 'max_abs', got {metric!r}")
    keys_a, keys_b = list(trace_a.keys()), list(trace_b.keys())
    set_a, set_b = set(keys_a), set(keys_b)
    common = hook_order(k for k in keys_a if k in set_b)
    missing_in_a = hook_order(k for k in keys_b if k not in set_a)
    missing_in_b = hook_order(k for k in keys_a if k not in set_b)
    if not common:
        raise ValueError(f"first_divergence: the traces have no hook in common (a: {_short_names(hook_order(keys_a))}; "
                         f"b: {_short_names(hook_order(keys_b))})")
    summary: list[HookSummary] = []

    def result(**kw: Any) -> Divergence:
        return Divergence(metric=metric, summary=summary, missing_in_a=missing_in_a, missing_in_b=missing_in_b, **kw)
    for hook in common:
        t = _tol_for(hook, tol)
        a, b = np.asarray(trace_a[hook]), np.asarray(trace_b[hook])
        if a.shape != b.shape:
            summary.append(HookSummary(hook, a.shape, math.nan, None, math.nan, math.nan, t, False,
                                       f"shape {a.shape} vs {b.shape}"))
            return result(diverged=True, hook=hook, tol=t, reason=f"shapes differ: a {a.shape} vs b {b.shape}")
        a2, b2 = _as_rows(a, f"trace_a[{hook!r}]"), _as_rows(b, f"trace_b[{hook!r}]")
        if a2.shape[0] == 0 or a2.shape[1] == 0:
            summary.append(HookSummary(hook, a.shape, math.nan, None, math.nan, math.nan, t, True, "empty"))
            continue
        st = _diff_stats(a2, b2)
        nmse_pos = _nmse_from(st.err2, st.ref2)
        value = nmse_pos if metric == "nmse" else np.where((st.nonfinite_a | st.nonfinite_b) > 0, np.nan, st.max_abs)
        beyond = ~(value <= t)  # NaN counts as beyond
        worst = int(np.argmax(np.where(np.isnan(value), np.inf, value)))
        whole = _whole_nmse(st)
        max_abs = float(st.max_abs.max()) if st.all_finite else math.nan
        summary.append(HookSummary(hook, a.shape, whole, worst, float(value[worst]), max_abs, t, not beyond.any()))
        if not beyond.any():
            continue
        positions = np.flatnonzero(beyond)
        p = int(positions[0])
        feat_shape = a.shape[1:] if a.ndim >= 2 else (1,)
        nonfinite = st.nonfinite_a[p] > 0 or st.nonfinite_b[p] > 0
        if nonfinite:
            fa = _first_nonfinite(a2, "a", np.array([p]), feat_shape)
            fb = _first_nonfinite(b2, "b", np.array([p]), feat_shape)
            f = min((x for x in (fa, fb) if x is not None), key=lambda x: x.element)
            j = int(np.ravel_multi_index(f.element, feat_shape))
            reason = f"{'NaN' if math.isnan(f.value) else f.value} in {f.array}"
            if st.nonfinite_b[p] > 0:
                reason += " (the reference is not finite here)"
        else:
            with np.errstate(invalid="ignore"):
                j = int(np.argmax(np.abs(a2[p].astype(np.float64) - b2[p].astype(np.float64))))
            reason = f"{metric} {_table.fmt(float(value[p]))} > tol {_table.fmt(t)}"
        summary[-1].note = f"{positions.size} position(s) beyond tol"
        return result(
            diverged=True, hook=hook, position=p, positions=positions, value=float(value[p]), tol=t,
            nmse=float(nmse_pos[p]), max_abs=float(st.max_abs[p]),
            index=tuple(int(i) for i in np.unravel_index(j, feat_shape)),
            a_value=float(a2[p, j]), b_value=float(b2[p, j]), reason=reason, per_position=value)
    return result(diverged=False)


# ---------------------------------------------------------------------------------------------
# diagnose

class Finding(NamedTuple):
    """One symptom found by diagnose(): code (stable, for programs), severity ('error' for values
    that cannot be right, 'warning' for values that are implausible for a trained model, 'hint'
    for an interpretation of several findings together) and a message for people."""
    code: str
    severity: str
    message: str


@dataclass(repr=False)
class Diagnosis:
    """What diagnose() found. `ok` is True when there are no errors or warnings. `stats` holds the
    numbers the checks used; `skipped` names the checks that need more positions than given."""
    findings: list[Finding]
    stats: dict[str, Any]
    skipped: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(f.severity in ("error", "warning") for f in self.findings)

    @property
    def codes(self) -> list[str]:
        return [f.code for f in self.findings]

    def __getitem__(self, code: str) -> Finding:
        for f in self.findings:
            if f.code == code:
                return f
        raise KeyError(code)

    def __contains__(self, code: object) -> bool:
        return code in self.codes

    def _stat_rows(self):
        return [(k, v) for k, v in self.stats.items()]

    def __str__(self) -> str:
        head = "logits look healthy" if self.ok else f"logits look broken ({len(self.findings)} finding(s))"
        lines = [head]
        lines += [f"  [{f.severity}] {f.code}: {f.message}" for f in self.findings]
        if self.skipped:
            lines.append(f"  (skipped: {', '.join(self.skipped)})")
        lines.append(_table.text_table(("statistic", "value"), self._stat_rows()))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Diagnosis(ok={self.ok}, codes={self.codes})"

    def _repr_html_(self) -> str:
        rows = [(f.severity, f.code, f.message) for f in self.findings]
        return (_table.html_text("logits look healthy" if self.ok else "logits look broken") +
                (_table.html_table(("severity", "code", "message"), rows, [f.severity == "error" for f in self.findings])
                 if rows else "") +
                _table.html_table(("statistic", "value"), self._stat_rows()))


# Thresholds, and why. Trained decoder LMs put the top logit at roughly 10-40 and the per-position
# standard deviation over the vocabulary at roughly 1-6 (Gemma 2 even soft-caps logits at 30).
# Values past 100, or a spread past 20, come from overflow, weights of the wrong type or scale, or
# a missing normalization, not from a model. Entropy: a trained LM's mean next-token entropy over a
# prompt is typically 1-4 nats; below 0.1 nats at (nearly) every position means one token takes all
# the probability mass everywhere: the picture of garbage logits that dwarf all others. Flat: a
# mean normalized entropy H / log(n_vocab) above 0.95 means the model says almost nothing, e.g.
# zero or missing weights or a hidden state that vanished.
MAX_ABS_LOGIT = 100.0
MAX_STD = 20.0
MIN_MEAN_ENTROPY = 0.1
FLAT_NORMALIZED_ENTROPY = 0.95
SAME_ARGMAX_SHARE = 0.9
MIN_POSITIONS = 4

_UNDEQUANT_SYMPTOMS = ("nonfinite", "huge_magnitude", "wide_spread", "same_argmax", "few_argmax",
                       "entropy_collapse", "position_independent")
# Positions whose logits differ by less than this, relative to the typical centred logit vector's
# norm, count as the same in the position_independent check.
_SAME_ROW_RTOL = 1e-4


def _count_distinct(finger: np.ndarray, scale: float, limit: int) -> int:
    """Greedy count of clusters of fingerprints within _SAME_ROW_RTOL * scale; stops counting
    past `limit` (a healthy model has as many distinct positions as positions)."""
    tol = _SAME_ROW_RTOL * scale
    reps = np.empty((0, finger.shape[1]))
    for f in finger:
        if reps.shape[0] == 0 or not (np.abs(reps - f).max(axis=1) <= tol).any():
            reps = np.vstack([reps, f])
            if reps.shape[0] > limit:
                break
    return reps.shape[0]


# An activation beyond float16's range cannot come from a healthy engine (a float16 GPU path
# could not even hold it); raw quantized bytes read as float16 weights give such values, or NaN/Inf.
HUGE_ACTIVATION = 65504.0
_FLOAT_TYPES = ("F32", "F16", "BF16", "F64")


def _tensor_types(model: Any) -> dict[str, str]:
    """{tensor name: GGML type} from an orc.Model (or anything with .tensors of TensorInfo), a
    list of TensorInfo, or such a mapping."""
    if isinstance(model, Mapping):
        return {str(k): str(v) for k, v in model.items()}
    tensors = getattr(model, "tensors", model)
    return {t.name: t.type for t in tensors}


def _first_bad_hook(trace: Mapping[str, Any], types: dict[str, str] | None) -> list[Finding]:
    """The first hook (execution order) holding NaN/Inf or values beyond HUGE_ACTIVATION, and,
    when it is the first hook that reads a quantized tensor, the signature of quantized blocks
    used as float weights, naming the tensor."""
    from .hooks import hook_weights

    order = hook_order(k for k in trace if k != "logits")
    if "logits" in trace:
        order.append("logits")
    first = None
    for h in order:
        x = np.asarray(trace[h])
        if x.dtype.kind != "f" or x.size == 0:
            continue
        fin = np.isfinite(x)
        n_bad = int(x.size - np.count_nonzero(fin))
        mx = float(np.abs(x[fin]).max()) if n_bad < x.size else math.nan
        if n_bad or mx > HUGE_ACTIVATION:
            first = (h, n_bad, x.size, mx)
            break
    if first is None:
        return []
    h, n_bad, size, mx = first
    what = (f"{n_bad}/{size} NaN/Inf value(s)" if n_bad else "") +            (f"{', ' if n_bad else ''}max |x| {_table.fmt(mx)}" if not math.isnan(mx) and mx > HUGE_ACTIVATION else "")
    before = (f"; every hook before it is finite and below {_table.fmt(HUGE_ACTIVATION)}"
              if order.index(h) > 0 else "")
    out = [Finding("first_bad_hook", "error", f"{h} is the first hook with {what}{before}")]
    if types:
        quantized = [(k, t) for k in order[:order.index(h) + 1] for t in hook_weights(k, types)
                     if types[t] not in _FLOAT_TYPES]
        reads = [t for t in hook_weights(h, types) if types[t] not in _FLOAT_TYPES]
        if reads and quantized and quantized[0][0] == h:
            named = ", ".join(f"{t} ({types[t]})" for t in reads)
            out.append(Finding("undequantized_weights", "hint",
                               f"{h} is also the first hook that reads a quantized tensor: {named}. Huge or "
                               "non-finite values from exactly there are how quantized blocks used as if they were "
                               "FP16/FP32 weights look (no dequantization); compare Model.tensor(name) with "
                               "gguf-py's dequantize"))
    return out


def _weight_findings(model: Any) -> list[Finding]:
    """nonfinite_weights: the model's tensors that cannot be right (NaN/Inf values or block
    scales, an all-zero rope_freqs): from the scan a Model made at load, or a scan of a GGUFFile."""
    from . import validate

    if isinstance(model, Mapping):  # only tensor types (orc diff): nothing to scan
        return []
    bad = getattr(model, "_nonfinite", None)
    if bad is None:
        bad = validate.nonfinite_weights(getattr(model, "_gguf", model), mode="scales")
    if not bad:
        return []
    return [Finding("nonfinite_weights", "error",
                    f"{len(bad)} weight tensor(s) of the file cannot be right (NaN/Inf logits start there, not "
                    f"in the engine): {validate.describe(bad)}")]


def diagnose(logits: Any, *, max_abs: float = MAX_ABS_LOGIT, max_std: float = MAX_STD,
             min_entropy: float = MIN_MEAN_ENTROPY, flat_entropy: float = FLAT_NORMALIZED_ENTROPY,
             same_argmax: float = SAME_ARGMAX_SHARE, min_positions: int = MIN_POSITIONS,
             model: Any = None) -> Diagnosis:
    """Look for the symptoms of broken logits ([n_positions, n_vocab] or [n_vocab]).

    `logits` may also be a whole trace ({hook: array} with "logits", Session.trace's output):
    then the hooks are searched too, and `model` (an orc.Model, its .tensors, or {tensor name:
    GGML type}) lets the report name the weight tensor behind the first bad hook:
      first_bad_hook: error     the first hook, in execution order, with NaN/Inf or values beyond
                                HUGE_ACTIVATION (float16's range)
      undequantized_weights: hint   (with model) that hook is the first one reading a quantized
                                tensor, which is named: the signature of raw quantized bytes
                                used as FP16 weights

    Findings (code: severity):
      nonfinite: error          NaN or Inf anywhere (count, first position and token index)
      huge_magnitude: error     max |logit| > max_abs (default 100)
      wide_spread: warning      median per-position std over the vocabulary > max_std (20)
      constant: error           every logit equal within a position (no information at all)
      flat: warning             mean normalized entropy H / log(n_vocab) > flat_entropy (0.95)
      same_argmax: warning      one token is the argmax at >= same_argmax (90%) of positions
      few_argmax: warning       (with >= 16 positions) at most max(2, n_positions / 16) distinct
                                argmax tokens: the predictions do not follow the context
      entropy_collapse: warning mean entropy < min_entropy (0.1 nats)
      position_independent: warning  at most n_positions / 4 distinct logit vectors (up to a
                                shift, within 1e-4 relative): the output ignores the input
      undequantized_weights: hint   two or more of nonfinite, huge_magnitude, wide_spread,
                                same_argmax, few_argmax, entropy_collapse, position_independent:
                                how quantized
                                blocks used as if they were FP16/FP32 weights look (the bug orc
                                was written to catch)
      nonfinite_weights: error  (only with model=, an orc.Model or orc.GGUFFile) tensors of the
                                file hold NaN/Inf values or an all-zero rope_freqs: each named,
                                with the count and first element (orc.validate)
    same_argmax, entropy_collapse and position_independent need at least min_positions (4)
    positions: one confident prediction is normal. Statistics other than nonfinite use only the
    positions whose logits are all finite. The module constants document the thresholds.
    """
    trace = None
    if isinstance(logits, Mapping):
        trace = logits
        if "logits" not in trace:
            raise KeyError("diagnose: the trace has no 'logits' (capture it)")
        logits = trace["logits"]
    x = np.asarray(logits)
    if x.ndim not in (1, 2):
        raise ValueError(f"diagnose: logits are [n_vocab] or [n_positions, n_vocab], got shape {x.shape}")
    x = _as_rows(x.reshape(-1, x.shape[-1]), "logits")
    n, v = x.shape
    if n == 0 or v < 2:
        raise ValueError(f"diagnose: need at least one position and two tokens, got shape {x.shape}")
    findings: list[Finding] = []
    skipped: list[str] = []

    nonfinite = np.zeros(n, dtype=np.int64)
    row_max_abs = np.full(n, np.nan)
    row_std = np.full(n, np.nan)
    entropy = np.full(n, np.nan)
    argmax = np.full(n, -1, dtype=np.int64)
    row_ptp = np.full(n, np.nan)
    row_norm = np.full(n, np.nan)
    # A fingerprint of each position's centred logits (shift-invariant, like softmax): 8 fixed
    # random projections. Positions with (nearly) the same logits have (nearly) the same one.
    proj = np.random.default_rng(0x0C0FFEE).standard_normal((v, 8))
    finger = np.full((n, 8), np.nan)
    with np.errstate(all="ignore"):
        for r0, r1 in _chunks(n, v):
            c = x[r0:r1].astype(np.float64, copy=False)
            fin = np.isfinite(c)
            nonfinite[r0:r1] = v - np.count_nonzero(fin, axis=1)
            good = nonfinite[r0:r1] == 0
            if not good.any():
                continue
            g = c[good]
            idx = np.arange(r0, r1)[good]
            row_max_abs[idx] = np.abs(g).max(axis=1)
            row_std[idx] = g.std(axis=1)
            row_ptp[idx] = g.max(axis=1) - g.min(axis=1)
            entropy[idx] = _entropy_rows(_log_softmax(g))
            argmax[idx] = g.argmax(axis=1)
            centred = g - g.mean(axis=1, keepdims=True)
            row_norm[idx] = np.sqrt(np.einsum("ij,ij->i", centred, centred))
            finger[idx] = centred @ proj
    good = nonfinite == 0
    n_good = int(good.sum())
    stats: dict[str, Any] = {"n_positions": n, "n_vocab": v, "nonfinite": int(nonfinite.sum()),
                             "finite_positions": n_good}

    if nonfinite.any():
        rows = np.flatnonzero(nonfinite)
        f = _first_nonfinite(x, "logits", rows[:1], (v,))
        first = f"; first: {f.value} at position {f.position}, token {f.element[0]}" if f else ""
        findings.append(Finding("nonfinite", "error",
                                f"{int(nonfinite.sum())} NaN/Inf logit(s) at {rows.size}/{n} position(s){first}"))

    if n_good:
        log_v = math.log(v)
        gm = row_max_abs[good]
        mean_h = float(entropy[good].mean())
        tokens, counts = np.unique(argmax[good], return_counts=True)
        top = int(np.argmax(counts))
        share = float(counts[top]) / n_good
        stats.update({"max_abs": float(gm.max()), "median_std": float(np.median(row_std[good])),
                      "mean_entropy": mean_h, "uniform_entropy": log_v, "mean_normalized_entropy": mean_h / log_v,
                      "modal_argmax": int(tokens[top]), "modal_argmax_share": share})

        if stats["max_abs"] > max_abs:
            p = int(np.flatnonzero(good)[np.argmax(gm)])
            findings.append(Finding("huge_magnitude", "error",
                                    f"max |logit| {_table.fmt(stats['max_abs'])} (position {p}) > {_table.fmt(max_abs)}: "
                                    "trained models stay well below; overflow, wrong weight type or scale, or a "
                                    "missing norm"))
        if stats["median_std"] > max_std:
            findings.append(Finding("wide_spread", "warning",
                                    f"median std of logits over the vocabulary {_table.fmt(stats['median_std'])} > "
                                    f"{_table.fmt(max_std)} (trained models: about 1-6)"))
        constant = row_ptp[good] == 0
        if constant.all():
            findings.append(Finding("constant", "error",
                                    "every logit is the same within each position: the output carries no "
                                    "information (zero hidden state or output weights?)"))
        elif stats["mean_normalized_entropy"] > flat_entropy:
            findings.append(Finding("flat", "warning",
                                    f"mean entropy {_table.fmt(mean_h)} nats is {_table.fmt(100 * mean_h / log_v)}% "
                                    f"of uniform ({_table.fmt(log_v)}): the distribution is nearly flat (weights "
                                    "zero, tiny or missing; a vanished hidden state?)"))
        if n_good >= min_positions:
            stats["distinct_argmax"] = int(tokens.size)
            if share >= same_argmax and not constant.all():
                findings.append(Finding("same_argmax", "warning",
                                        f"token {tokens[top]} is the argmax at {counts[top]}/{n_good} positions "
                                        f"({_table.fmt(100 * share)}%): a token whose logit is garbage wins "
                                        "everywhere (check the output weights and the last layers)"))
            elif n_good >= 16 and tokens.size <= max(2, n_good // 16):
                top_list = ", ".join(f"{t} ({c})" for t, c in sorted(zip(tokens.tolist(), counts.tolist()),
                                                                     key=lambda tc: -tc[1])[:4])
                findings.append(Finding("few_argmax", "warning",
                                        f"only {tokens.size} distinct argmax token(s) over {n_good} positions: "
                                        f"{top_list}; a trained model's predictions vary with the context"))
            if mean_h < min_entropy:
                findings.append(Finding("entropy_collapse", "warning",
                                        f"mean entropy {_table.fmt(mean_h)} nats < {_table.fmt(min_entropy)}: one token "
                                        "takes all the probability at (nearly) every position"))
            n_distinct = _count_distinct(finger[good], float(np.median(row_norm[good])), limit=n_good // 4)
            stats["distinct_positions"] = n_distinct if n_distinct <= n_good // 4 else f"> {n_good // 4}"
            if n_distinct <= n_good // 4 and not constant.all():
                what = ("all have the same logits" if n_distinct == 1 else
                        f"have only {n_distinct} distinct logit vectors")
                findings.append(Finding("position_independent", "warning",
                                        f"the {n_good} positions {what}: the output barely depends on the input "
                                        "(garbage weights swamping the hidden state, broken attention or KV cache, "
                                        "or one row broadcast?)"))
        else:
            skipped.append(f"same_argmax, entropy_collapse, position_independent (need >= {min_positions} positions)")

    hook_findings = _first_bad_hook(trace, _tensor_types(model) if model is not None else None) \
        if trace is not None else []
    findings += [f for f in hook_findings if f.code == "first_bad_hook"]
    named = [f for f in hook_findings if f.code == "undequantized_weights"]
    if model is not None:
        findings.extend(_weight_findings(model))
    symptoms = [f.code for f in findings if f.code in _UNDEQUANT_SYMPTOMS]
    if named:
        findings += named
    elif len(symptoms) >= 2:
        findings.append(Finding("undequantized_weights", "hint",
                                f"{' + '.join(symptoms)} together look like quantized weight blocks used as if they "
                                "were FP16/FP32 values (no dequantization), or a weight read with the wrong type "
                                "or stride; compare Model.tensor(name) with gguf-py's dequantize and trace the "
                                "forward pass (orc.compare.first_divergence) to find the first bad hook"))
    return Diagnosis(findings, stats, skipped)


# Activation patching lives in its own module (it runs models); exposed here with the comparisons.
from .patching import PatchBisect, patch_bisect  # noqa: E402
