"""Activation patching: which part of run B makes it end up different from run A?

    b = orc.compare.patch_bisect(model_a, model_b_faulty, ids)
    print(b)      # "the final divergence disappears when B's blk.1.resid_post is A's ..."

first_divergence says where two traces first differ; that difference may be harmless noise that
later layers amplify, or the place where B goes wrong. Patching answers causally: run B again
with the activations at one hook point replaced by A's (Session.trace(..., patch={hook: A's
array})) and see whether B's final output then matches A's. patch_bisect does this at the
residual stream after each layer (every blk.i.resid_post, all positions), bisecting for the first
layer i at which patching removes the final divergence: layers after i then compute like A's, so
what makes B differ lies in layer i (after blk.{i-1}.resid_post). It then runs B with A's input
to that layer and names the first hook inside it that differs (the `culprit`).

With several faults, the bisection finds the last one (patching before it cannot remove it); a
fault after the last patch point (the output norm or projection) leaves `hook` None. The search
assumes that patching later never undoes a fix (true when the layers after the fault compute the
same in A and B); search="scan" tries every point instead.

Runs: an orc.Model (the shared `ids` are run on it), an (orc.Model, ids) pair, or a callable
run(patch: dict | None) -> trace (an engine adapter; `patch` maps hook names to the arrays to
put there). Run A may also be a trace mapping already computed. Patches go through
Session.trace(..., patch=), on CPU and GPU alike.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _table
from .hooks import hook_order, hook_sort_key, match_hooks, parse_hook

__all__ = ["patch_bisect", "PatchBisect", "PatchTry"]

@dataclass
class PatchTry:
    """Run B with `point` patched from A: whether its final output (`compare`) then matches A's
    within tol (`fixed`), the metric's worst value there, and the first hook after the patch
    point that still differs (None when none does)."""
    point: str
    fixed: bool
    value: float
    first_after: str | None


@dataclass(repr=False)
class PatchBisect:
    """What patch_bisect found. `hook`: the first patch point at which replacing B's
    activations by A's removes the final divergence (None: no point does, or nothing diverged);
    `layer` its layer; `segment` (previous point or None, hook): where B goes wrong; `culprit`:
    the first hook inside the segment that differs when B gets A's input to it (a
    compare.Divergence); `unpatched`: first_divergence of B against A without patching; `tried`:
    every patched run, in the order tried."""
    diverged: bool
    hook: str | None
    layer: int | None
    segment: tuple[str | None, str | None]
    culprit: Any
    unpatched: Any
    tried: list[PatchTry] = field(default_factory=list)
    points: list[str] = field(default_factory=list)
    compare: str = "logits"
    metric: str = "nmse"
    tol: float = 0.0

    def __bool__(self) -> bool:
        return self.hook is not None

    def headline(self) -> str:
        if not self.diverged:
            return f"no final divergence: B's {self.compare} match A's within tol {self.tol:g}; nothing to bisect"
        if self.hook is None:
            last = self.points[-1] if self.points else "the last patch point"
            return (f"the final divergence persists even with B's {last} replaced by A's: it arises after {last} "
                    "(output norm or output projection), or B differs at several places")
        prev, _ = self.segment
        s = (f"the final divergence disappears when B's {self.hook} is replaced by A's"
             + (f", not with {prev}" if prev else "") + ": B goes wrong "
             + (f"in layer {self.layer}" if self.layer is not None else f"before {self.hook}")
             + (f" (after {prev})" if prev else ""))
        c = self.culprit
        if c is not None and getattr(c, "diverged", False):
            given = f"given A's {prev}, " if prev else ""
            at = "" if c.position is None else f" at position {c.position}"
            s += f"\n  {given}B first differs at {c.hook}{at}: {c.reason}"
        return s

    def table(self) -> str:
        rows = [(t.point, t.fixed, t.value, t.first_after or "-") for t in self.tried]
        return _table.text_table(("patched point", f"{self.compare} fixed", f"worst {self.metric}",
                                  "first differing hook after it"), rows)

    def __str__(self) -> str:
        return f"{self.headline()}\npatched runs of B:\n{self.table()}" if self.tried else self.headline()

    def __repr__(self) -> str:
        return f"PatchBisect(hook={self.hook!r}, culprit={getattr(self.culprit, 'hook', None)!r})"

    def to_dict(self) -> dict[str, Any]:
        c = self.culprit
        num = (lambda x: x if not isinstance(x, float) or math.isfinite(x) else str(x))
        return {"diverged": self.diverged, "hook": self.hook, "layer": self.layer, "segment": list(self.segment),
                "culprit": None if c is None or not c.diverged else
                {"hook": c.hook, "position": c.position, "value": num(c.value), "reason": c.reason},
                "unpatched_first_divergence": self.unpatched.hook if self.unpatched.diverged else None,
                "tried": [{"point": t.point, "fixed": t.fixed, "value": num(t.value), "first_after": t.first_after}
                          for t in self.tried],
                "headline": self.headline()}


def _model_run(model, ids, capture) -> Callable[[dict | None], Mapping[str, np.ndarray]]:
    from .model import Session

    ids = [int(t) for t in np.asarray(ids).reshape(-1)]

    def run(patch):
        with Session(model, n_ctx=max(1, len(ids))) as s:
            return s.trace(ids, capture=capture, patch=patch or None)
    run.hook_names = model.hook_names  # type: ignore[attr-defined]
    return run


def _as_run(run, ids, which: str, capture):
    from .model import Model

    if isinstance(run, Model):
        if ids is None:
            raise ValueError(f"run_{which} is a model: give ids")
        return _model_run(run, ids, capture)
    if isinstance(run, tuple) and len(run) == 2 and isinstance(run[0], Model):
        return _model_run(run[0], run[1], capture)
    if callable(run):
        return run
    raise TypeError(f"run_{which}: expected an orc.Model, (orc.Model, ids) or a callable run(patch) -> trace, "
                    f"got {type(run).__name__}")


Run = Any  # an orc.Model, an (orc.Model, ids) pair, or a callable run(patch: dict | None) -> trace


def patch_bisect(run_a: Run | Mapping[str, Any], run_b: Run, ids: Sequence[int] | np.ndarray | None = None, *,
                 points: str | list[str] = "blk.*.resid_post", compare: str = "logits", tol: float | None = None,
                 metric: str = "nmse", search: str = "bisect",
                 capture: str | Sequence[str] = ("*",)) -> PatchBisect:
    """Find where run B goes wrong relative to run A by patching A's activations into B (module
    docstring).

    run_a: orc.Model, (orc.Model, ids), a callable run(patch) -> trace, or A's trace (a mapping
        holding the patch points and `compare`). run_b: orc.Model, (orc.Model, ids) or a callable.
    ids: the token ids, for runs given as a model alone.
    points: glob patterns of the patch points, tried in execution order (default: every
        blk.*.resid_post, i.e. layer by layer).
    compare: the hook whose agreement means "the divergence disappeared" (default "logits").
    tol, metric: as compare.first_divergence (default: 0 for "max_abs"; DEFAULT_TRACE_TOL for
        "nmse"): within tol at every position counts as equal.
    search: "bisect" (log2 of the points' count patched runs, assuming monotonicity) or "scan".
    """
    from .compare import DEFAULT_TRACE_TOL, first_divergence

    if search not in ("bisect", "scan"):
        raise ValueError(f"search must be 'bisect' or 'scan', got {search!r}")
    if tol is None:
        tol = DEFAULT_TRACE_TOL if metric == "nmse" else 0.0
    capture = [capture] if isinstance(capture, str) else list(capture)
    rb = _as_run(run_b, ids, "b", capture)
    if isinstance(run_a, Mapping):
        trace_a = run_a
    else:
        trace_a = _as_run(run_a, ids, "a", capture)(None)
    trace_b = rb(None)
    if compare not in trace_a or compare not in trace_b:
        raise KeyError(f"compare={compare!r} is not in both traces (capture it)")
    names = getattr(rb, "hook_names", None) or hook_order(trace_b)
    pats = [points] if isinstance(points, str) else list(points)
    pts = [p for p in match_hooks(names, pats) if p in trace_a]
    if not pts:
        raise KeyError(f"no patch point matches {pats} in both runs")

    def final(tb) -> tuple[bool, float]:
        d = first_divergence({compare: tb[compare]}, {compare: trace_a[compare]}, tol=tol, metric=metric)
        s = d.summary[-1]
        return (not d.diverged), float(s.worst_value)

    unpatched = first_divergence(trace_b, trace_a, tol=tol, metric=metric)
    ok0, _ = final(trace_b)
    res = PatchBisect(diverged=not ok0, hook=None, layer=None, segment=(None, None), culprit=None, unpatched=unpatched,
                      points=pts, compare=compare, metric=metric, tol=tol)
    if ok0:
        return res

    cache: dict[int, tuple[bool, Mapping[str, np.ndarray]]] = {}

    def after(trace, point):
        k = hook_sort_key(point)
        return {h: v for h, v in trace.items() if hook_sort_key(h) > k}

    def fixed(i: int) -> bool:
        if i not in cache:
            tb = rb({pts[i]: trace_a[pts[i]]})
            ok, value = final(tb)
            later_b, later_a = after(tb, pts[i]), after(trace_a, pts[i])
            first = None
            if later_b and any(h in later_a for h in later_b):
                d = first_divergence(later_b, later_a, tol=tol, metric=metric)
                first = d.hook if d.diverged else None
            res.tried.append(PatchTry(pts[i], ok, value, first))
            cache[i] = (ok, tb)
        return cache[i][0]

    found = None
    if search == "scan":
        for i in range(len(pts)):
            fixed(i)
        # the first point from which on every patch removes the divergence
        for i in range(len(pts)):
            if all(cache[j][0] for j in range(i, len(pts))):
                found = i
                break
    elif fixed(len(pts) - 1):
        lo, hi = 0, len(pts) - 1  # invariant: fixed(hi); everything before lo is known not to fix
        while lo < hi:
            mid = (lo + hi) // 2
            if fixed(mid):
                hi = mid
            else:
                lo = mid + 1
        found = hi
    if found is None:
        return res
    res.hook = pts[found]
    res.layer = parse_hook(pts[found]).layer
    prev = pts[found - 1] if found > 0 else None
    res.segment = (prev, pts[found])
    # B with A's input to the segment: the first hook inside the segment that differs
    base = trace_b if prev is None else cache[found - 1][1] if (found - 1) in cache else rb({prev: trace_a[prev]})
    k_end = hook_sort_key(pts[found])
    inside_b = {h: v for h, v in (after(base, prev) if prev else base).items() if hook_sort_key(h) <= k_end}
    inside_a = {h: v for h, v in trace_a.items() if h in inside_b}
    if inside_a:
        res.culprit = first_divergence(inside_b, inside_a, tol=tol, metric=metric)
    return res
