"""Assertions for tests of inference engines, and golden (snapshot) arrays.

    from orc.testing import assert_logits_close, assert_trace_close
    assert_logits_close(gpu_logits, cpu_logits, nmse=1e-4)          # top-1 must agree everywhere

In pytest, orc's plugin adds a `golden` fixture (see orc.pytest_plugin):

    def test_forward(golden):
        golden.check("prompt1_logits", logits, nmse=1e-6)

Nothing here imports pytest: the assertions raise plain AssertionError with a table of the worst
positions, so they read well in pytest, unittest and notebooks alike.
"""
from __future__ import annotations

import math
import os
import re
import tempfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from . import _table
from .compare import (DEFAULT_TRACE_TOL, Divergence, LogitsComparison, _argmax_rows, _diff_stats, _first_nonfinite,
                      _nmse_from, _whole_nmse, compare_logits, first_divergence, token_labeler)

__all__ = ["assert_logits_close", "assert_trace_close", "assert_array_close", "GoldenStore"]


def _select_positions(x: np.ndarray, where: Any) -> np.ndarray:
    if where is None:
        return x
    if x.ndim == 1:
        raise ValueError("where= selects positions; these logits have a single position ([n_vocab])")
    sel = np.asarray(where)
    if sel.dtype == bool and sel.shape != (x.shape[0],):
        raise ValueError(f"where: a boolean mask over positions must have shape ({x.shape[0]},), got {sel.shape}")
    return x[sel]


def assert_logits_close(actual: Any, expected: Any, nmse: float | None = 1e-4, top1: bool = True, where: Any = None,
                        *, kl: float | None = None, top1_tie: float = 0.0, k: int = 5, msg: str | None = None,
                        tokenizer: Any = None) -> LogitsComparison:
    """Assert that logits `actual` match the reference `expected` ([n_positions, n_vocab] or
    [n_vocab]); returns the LogitsComparison when they do.

    Fails when any value is NaN or Inf, the overall NMSE (sum((a-e)**2) / sum(e**2)) exceeds
    `nmse` (None: not checked), the argmax differs at any position while `top1` (a tie in the
    reference within `top1_tie` is not a difference), or the max per-position KL(p_e || p_a)
    exceeds `kl`. `where` selects the positions to check (a boolean mask over positions, an index
    array or a slice), e.g. to skip padding. `msg` starts the failure message.

    The AssertionError lists what failed, the first NaN/Inf if any, and a table of the worst
    positions: NMSE, max |a - e|, argmax of each (with its text when `tokenizer`, an
    orc.Tokenizer or orc.Model, is given), top-k overlap and KL.
    """
    __tracebackhide__ = True  # pytest: show the caller's line, not ours
    a, e = np.asarray(actual), np.asarray(expected)
    if a.shape != e.shape:
        raise AssertionError(f"{msg + ': ' if msg else ''}logits shapes differ: actual {a.shape} vs expected {e.shape}")
    a, e = _select_positions(a, where), _select_positions(e, where)
    r = compare_logits(a, e, k=k, nmse=nmse, top1=top1, top1_tie=top1_tie, kl=kl, tokenizer=tokenizer)
    if not r.ok:
        raise AssertionError(_failure_message(r, msg))
    return r


def _failure_message(r: LogitsComparison, msg: str | None) -> str:
    head = (msg + ": " if msg else "") + "logits not close (a = actual, b = expected)"
    lines = [head] + [f"  - {f}" for f in r.failures]
    lines.append(f"  NMSE {_table.fmt(r.nmse)}, max|a-b| {_table.fmt(r.max_abs)}, top-1 agreement "
                 f"{_table.fmt(100 * r.top1_agreement)}%, top-{r.k} overlap {_table.fmt(r.topk_overlap)}, "
                 f"KL mean {_table.fmt(r.kl_mean)} max {_table.fmt(r.kl_max)}")
    n = min(10, r.n_positions)
    lines.append(f"  worst {n} of {r.n_positions} position(s):")
    lines.append(r.table(n=n))
    return "\n".join(lines)


def assert_trace_close(actual: Mapping[str, Any], expected: Mapping[str, Any],
                       tol: float | Mapping[str, float] = DEFAULT_TRACE_TOL, metric: str = "nmse",
                       *, require_same_hooks: bool = True, msg: str | None = None) -> Divergence:
    """Assert that every hook point of trace `actual` matches the reference trace `expected`
    within `tol` (per position; see orc.compare.first_divergence for metric and tol). With
    `require_same_hooks` (default), a hook present in only one trace fails too. The message names
    the first diverging hook and position, with the per-hook table up to there."""
    __tracebackhide__ = True
    d = first_divergence(actual, expected, tol=tol, metric=metric)
    prefix = msg + ": " if msg else ""
    if d.diverged:
        raise AssertionError(prefix + "traces differ (a = actual, b = expected)\n" + str(d))
    if require_same_hooks and (d.missing_in_a or d.missing_in_b):
        raise AssertionError(prefix + f"traces have different hooks: only in expected: {d.missing_in_a}; "
                                      f"only in actual: {d.missing_in_b}")
    return d


def assert_array_close(actual: Any, expected: Any, *, nmse: float | None = None, atol: float | None = None,
                       exact: bool = False, top1: bool = False, msg: str | None = None, tokenizer: Any = None) -> None:
    """Assert `actual` matches `expected`: bit-for-bit (same dtype, shape, values) if `exact`;
    otherwise within the whole-array NMSE `nmse` and/or max |a - e| <= `atol` (at least one must
    be given), plus equal argmax per row if `top1` (rows: axis 0, the other axes flattened).
    NaN/Inf never pass. Failure messages carry a table of the worst rows (with `top1`, the argmax
    of each; with a `tokenizer`, the argmax token's text too)."""
    __tracebackhide__ = True
    prefix = msg + ": " if msg else ""
    a, e = np.asarray(actual), np.asarray(expected)
    if a.shape != e.shape:
        raise AssertionError(f"{prefix}shapes differ: actual {a.shape} vs expected {e.shape}")
    if exact:
        if a.dtype != e.dtype:
            raise AssertionError(f"{prefix}dtypes differ: actual {a.dtype} vs expected {e.dtype}")
        if a.dtype.kind == "f":  # bits, so that NaN != NaN is no excuse and -0.0 != 0.0 shows
            bits = np.dtype(f"u{a.dtype.itemsize}")
            differ = np.ascontiguousarray(a).view(bits) != np.ascontiguousarray(e).view(bits)
        else:
            differ = a != e
        if differ.any():
            first = tuple(int(i) for i in np.unravel_index(int(np.flatnonzero(differ)[0]), a.shape))
            raise AssertionError(f"{prefix}arrays differ (exact comparison): {int(differ.sum())} of {a.size} "
                                 f"element(s); first at {first}: actual {a[first]!r} vs expected {e[first]!r}")
        return
    if nmse is None and atol is None:
        raise ValueError("assert_array_close: give nmse=, atol= or exact=True")
    if a.size == 0:
        return
    rows_a = a.reshape(1, -1) if a.ndim < 2 else a.reshape(a.shape[0], -1)
    rows_e = e.reshape(1, -1) if e.ndim < 2 else e.reshape(e.shape[0], -1)
    st = _diff_stats(rows_a, rows_e)
    nmse_pos = _nmse_from(st.err2, st.ref2)
    problems = []
    if not st.all_finite:
        bad_a, bad_e = np.flatnonzero(st.nonfinite_a), np.flatnonzero(st.nonfinite_b)
        first_bad = _first_nonfinite(rows_a, "a", bad_a[:1], a.shape[1:] or (1,)) if bad_a.size else \
            _first_nonfinite(rows_e, "b", bad_e[:1], a.shape[1:] or (1,))
        problems.append(f"non-finite values: {int(st.nonfinite_a.sum())} in actual, {int(st.nonfinite_b.sum())} in "
                        f"expected; first: {first_bad}")
    whole = _whole_nmse(st)
    if nmse is not None and not whole <= nmse:
        problems.append(f"NMSE {_table.fmt(whole)} > {_table.fmt(nmse)}")
    max_abs = float(st.max_abs.max()) if st.all_finite else math.nan
    if atol is not None and not max_abs <= atol:
        problems.append(f"max|a-b| {_table.fmt(max_abs)} > atol {_table.fmt(atol)}")
    if top1:
        ia, ib = _argmax_rows(rows_a), _argmax_rows(rows_e)
        if (ia != ib).any():
            problems.append(f"argmax differs at {int((ia != ib).sum())}/{ia.size} row(s)")
    if problems:
        lines = [prefix + "arrays not close (a = actual, b = expected, rows = axis 0)"]
        lines += [f"  - {p}" for p in problems]
        n = min(10, rows_a.shape[0])
        worst = np.argsort(-np.where(np.isnan(nmse_pos), np.inf, nmse_pos), kind="stable")[:n]
        headers = ["row", "NMSE", "max|a-b|"] + (["argmax a", "argmax b"] if top1 else [])
        tok = token_labeler(tokenizer)
        rows = [[int(i), nmse_pos[i], st.max_abs[i]] + ([tok(int(ia[i])), tok(int(ib[i]))] if top1 else [])
                for i in worst]
        lines.append(f"  worst {n} of {rows_a.shape[0]} row(s):")
        lines.append(_table.text_table(headers, rows))
        raise AssertionError("\n".join(lines))


_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*\Z")


class GoldenStore:
    """Named reference arrays in one folder: `check(name, array)` compares `array` with the stored
    `<folder>/<name>.npy` (a mapping of arrays: `<name>.npz`), or writes it when `update` is True.

    A missing golden file is a failure (never a silent pass) whose message says how to create it.
    Arrays written must be finite: a golden full of NaN would make every later run pass or fail
    for the wrong reason. `written` lists the files written by this store.
    """

    def __init__(self, folder: str | os.PathLike, update: bool = False, how_to_update: str = "update=True",
                 tokenizer: Any = None):
        self.folder = os.fspath(folder)
        self.update = update
        self.how_to_update = how_to_update
        self.tokenizer = tokenizer  # failure tables show argmax token texts (check(..., top1=True))
        self.written: list[str] = []

    def path(self, name: str, mapping: bool = False) -> str:
        if not isinstance(name, str) or not _NAME_RE.match(name) or ".." in name:
            raise ValueError(f"golden name {name!r}: use letters, digits, '_', '-', '.' (no path separators)")
        return os.path.join(self.folder, name + (".npz" if mapping else ".npy"))

    def check(self, name: str, array: Any, *, nmse: float | None = None, atol: float | None = None,
              exact: bool = False, top1: bool = False, tokenizer: Any = None) -> Any:
        """Compare `array` (or a mapping {key: array}) with the golden `name`; returns the golden.

        Tolerances: `exact` compares dtype, shape and bits; otherwise `nmse` (whole-array
        sum((a-g)**2) / sum(g**2)) and/or `atol` (max |a - g|), and the per-position argmax
        along the last axis if `top1`. With no tolerance given, float arrays use nmse=1e-6 and
        other dtypes are compared exactly.
        """
        __tracebackhide__ = True
        is_map = isinstance(array, Mapping)
        path = self.path(name, is_map)
        arrays = {str(k): np.asarray(v) for k, v in array.items()} if is_map else {"": np.asarray(array)}
        if self.update:
            self._write(path, arrays, is_map)
            return array
        if not os.path.exists(path):
            raise AssertionError(f"golden {name!r} does not exist ({path}); create it with {self.how_to_update}, "
                                 "check the result is right, and commit the file")
        if is_map:
            with np.load(path, allow_pickle=False) as f:
                stored = {k: f[k] for k in f.files}
        else:
            stored = {"": np.load(path, allow_pickle=False)}
        if is_map and set(stored) != set(arrays):
            raise AssertionError(f"golden {name!r}: keys differ: only in golden {sorted(set(stored) - set(arrays))}, "
                                 f"only in actual {sorted(set(arrays) - set(stored))}")
        for key, a in arrays.items():
            g = stored[key]
            label = f"golden {name!r}" + (f"[{key!r}]" if is_map else "") + f" ({path})"
            ex, tol = exact, nmse
            if not exact and nmse is None and atol is None:
                if g.dtype.kind == "f" or a.dtype.kind == "f":
                    tol = 1e-6
                else:
                    ex = True
            assert_array_close(a, g, nmse=tol, atol=atol, exact=ex, top1=top1, msg=label,
                               tokenizer=tokenizer if tokenizer is not None else self.tokenizer)
        return {k: v for k, v in stored.items()} if is_map else stored[""]

    def _write(self, path: str, arrays: dict[str, np.ndarray], is_map: bool) -> None:
        for key, a in arrays.items():
            if a.dtype.kind not in "biuf":
                raise TypeError(f"golden {path}{'[' + key + ']' if key else ''}: dtype {a.dtype} is not a numeric array")
            if a.dtype.kind == "f" and not np.isfinite(a).all():
                bad = np.unravel_index(int(np.flatnonzero(~np.isfinite(a))[0]), a.shape)
                raise ValueError(f"refusing to write golden {path}{'[' + key + ']' if key else ''}: it holds NaN/Inf "
                                 f"(first at {tuple(int(i) for i in bad)})")
        os.makedirs(self.folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                if is_map:
                    np.savez_compressed(f, **arrays)  # type: ignore[arg-type]  # numpy's stub
                else:
                    np.save(f, arrays[""], allow_pickle=False)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        self.written.append(path)
