"""`python -m orc diff FILE "prompt" --a cpu --b cuda`: where do two backends part ways?

Runs the prompt through the model twice, on backend A (the reference) and backend B, tracing
every hook point, and reports:
  - the first divergence in execution order (orc.compare.first_divergence of B against A),
  - a table per layer: the hook with the worst NMSE in the layer, that NMSE, the worst single
    position's metric, max |a - b| and how many hooks are beyond the tolerance,
  - the logits: argmax (top-1) agreement over the positions, NMSE and KL, and what
    orc.compare.diagnose finds wrong with either side's logits (NaN, huge values, collapse).
Exit code 0 when every hook is within --tol, 1 when B diverges from A, 2 on trouble.

A backend is DEVICE[:INDEX][:DTYPE]: cpu, cpu:float16, cuda, cuda:1, cuda:bfloat16,
cuda:1:float32. The defaults run anywhere: A is the CPU with float32 weights (the reference), B
the GPU when one is usable, else the CPU with float16 weights (float16 matmul inputs, as the GPU
computes): a like-for-like stand-in for the GPU's precision. The report says which B it chose.
The models are loaded one after the other, so only one is in memory at a time.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from . import _cli
from .compare import (DEFAULT_TRACE_TOL, _as_rows, _diff_stats, _nmse_from, compare_logits, diagnose,
                      first_divergence)
from .hooks import hook_order, parse_hook


def add_parser(sub) -> None:
    p = sub.add_parser("diff", help="run a prompt on two backends and report the first diverging hook, per layer",
                       description="Trace every hook point on backend A (the reference) and backend B and "
                                   "report where B diverges. Exit code 1 when it does beyond --tol.")
    p.add_argument("file", help="path to a .gguf file, or the name of a pinned model (orc.fixtures.names())")
    p.add_argument("prompt", help="the prompt text ('-' reads it from stdin); with --raw-ids, token ids")
    p.add_argument("--a", default="cpu:float32", metavar="BACKEND",
                   help="the reference backend, DEVICE[:INDEX][:DTYPE] (default: %(default)s)")
    p.add_argument("--b", default=None, metavar="BACKEND",
                   help="the backend under test; e.g. cuda:1, cuda:float32, cpu:float16 (default: cuda when a GPU is "
                        "usable, else cpu:float16, the CPU computing with the GPU's float16 weights and matmul inputs)")
    p.add_argument("--kv-dtype", type=_cli.dtype_arg, default=None, metavar="{float32,float16,bfloat16}",
                   help="KV cache dtype of both sessions (default: each backend's own, float32 on the CPU and "
                        "float16 on CUDA); give float16 with --a cpu:float16 --b cuda:float16 to compare like "
                        "for like")
    p.add_argument("--tol", type=float, default=DEFAULT_TRACE_TOL,
                   help="per-position tolerance of the metric at every hook (default: %(default)g)")
    p.add_argument("--metric", choices=("nmse", "max_abs"), default="nmse",
                   help="per-position metric: nmse = sum((b-a)^2)/sum(a^2), or max |b-a| (default: nmse)")
    p.add_argument("--capture", default="*", help="glob patterns of the hooks to compare, comma-separated "
                                                    "(default: every hook); the first divergence is then the first "
                                                    "among these (a warning says when earlier hooks were skipped)")
    p.add_argument("--hooks", action="store_true", help="also print one row per hook")
    p.add_argument("--bisect", action="store_true",
                   help="when B diverges, patch A's residual stream into B layer by layer (blk.i.resid_post) to find "
                        "the layer whose patching removes the divergence of the logits, and the first hook inside it "
                        "that differs (orc.compare.patch_bisect)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (default: all cores)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar while loading")
    _cli.add_prompt_args(p)
    # Testing switches: make one side load quantized bytes as float16 (the bug orc was born from),
    # so a test (or a new user) can see what diff reports for it.
    p.add_argument("--a-fault", choices=("raw_as_f16",), default=None,
                   help="testing: load A with orc.Model(fault=...): raw_as_f16 uses every quantized tensor's "
                        "stored bytes as float16 weights (no dequantization)")
    p.add_argument("--b-fault", choices=("raw_as_f16",), default=None, help="testing: the same for B")
    p.set_defaults(func=run)


def run(args) -> int:
    return _cli.guarded("diff", lambda: _run(args))


@dataclass
class Backend:
    """A parsed --a/--b value."""
    spec: str
    device: str       # as orc.Model takes it: cpu, cuda, cuda:N
    dtype: str | None
    weights: str | None = None  # "quantized" (the fast path) or "dequantized" (the reference)

    def label(self, model=None) -> str:
        if model is not None:
            return f"{model.device} {model.dtype}" + (" quantized weights" if model.weights == "quantized" else "")
        return self.device + (f" {self.dtype}" if self.dtype else "") + (f" {self.weights}" if self.weights else "")


def parse_backend(spec: str) -> Backend:
    """DEVICE[:INDEX][:DTYPE][:WEIGHTS]: 'cpu' | 'cpu:float16' | 'cuda' | 'cuda:1' | 'cuda:bf16' |
    'cuda:1:float32' | 'cuda:fast' (weights="quantized", the fast path) | 'cuda:reference'
    (weights="dequantized") | 'auto'."""
    parts = spec.split(":")
    dev = parts[0]
    if dev not in ("cpu", "cuda", "auto"):
        raise _cli.CliError(f"backend {spec!r}: the device must be cpu, cuda or auto (DEVICE[:INDEX][:DTYPE][:WEIGHTS])")
    rest = parts[1:]
    device = dev
    if dev == "cuda" and rest and rest[0].isdigit():
        device = f"cuda:{int(rest[0])}"
        rest = rest[1:]
    dtype = weights = None
    for tok in rest:
        if tok in _cli.WEIGHTS and weights is None:
            weights = _cli.WEIGHTS[tok]
            continue
        if dtype is not None:
            raise _cli.CliError(f"backend {spec!r}: expected DEVICE[:INDEX][:DTYPE][:WEIGHTS]")
        try:
            dtype = _cli.parse_dtype(tok)
        except _cli.CliError:
            raise _cli.CliError(f"backend {spec!r}: expected DEVICE[:INDEX][:DTYPE][:WEIGHTS] with DTYPE one of "
                                f"float32, float16, bfloat16 and WEIGHTS one of {', '.join(sorted(_cli.WEIGHTS))}") \
                from None
    return Backend(spec, device, dtype, weights)


def _trace(args, backend: Backend, fault: str | None, capture: list[str], which: str, info: dict | None = None):
    """Trace the prompt on one backend: (ids, trace, label); `info` (when given) receives the
    model's hook_names and tensor_types."""
    import orc

    try:
        model = _cli.load_model(args.file, backend.device, backend.dtype, weights=backend.weights, threads=args.threads,
                                progress=not args.no_progress, fault=fault)
    except _cli.CliError as e:
        hint = ("; without a GPU, compare two CPU dtypes: --a cpu:float32 --b cpu:float16"
                if backend.device.startswith("cuda") else "")
        raise _cli.CliError(f"--{which} {backend.spec}: {e}{hint}") from None
    try:
        ids = _cli.prompt_ids(model, args)
        kv = _cli.resolve_dtype(args.kv_dtype)
        with orc.Session(model, n_ctx=len(ids), kv_dtype=kv) as s:
            trace = s.trace(ids, capture=capture)
        label = backend.label(model) + (f", kv {kv}" if kv else "") + (f" (fault {fault})" if fault else "")
        if info is not None:
            info["hook_names"] = model.hook_names
            info["tensor_types"] = {t.name: t.type for t in model.tensors}
        return ids, trace, label
    finally:
        model.close()


def default_b() -> tuple[str, str]:
    """The default B and why: the GPU when usable, else the CPU with float16 weights."""
    import orc

    if orc.cuda_available():
        return "cuda", "default B: the GPU"
    return "cpu:float16", ("default B on a machine without a usable GPU: the CPU with float16 weights and matmul "
                           "inputs, as the GPU computes (--b cuda for the GPU)")


def skipped_before(names: list[str], captured, hook: str) -> list[str]:
    """The hooks of the model that run before `hook` but were not captured."""
    from .hooks import hook_sort_key

    k = hook_sort_key(hook)
    got = set(captured)
    return [n for n in names if hook_sort_key(n) < k and n not in got]


@dataclass
class HookRow:
    hook: str
    layer: int | None
    nmse: float            # whole array (all positions)
    worst: float           # the per-position metric at the worst position
    worst_position: int
    max_abs: float
    beyond: int            # positions beyond tol (NaN/Inf count as beyond)
    ok: bool


def hook_rows(trace_b, trace_a, tol: float, metric: str) -> list[HookRow]:
    """Per-hook statistics of B against the reference A, for every hook in both (unlike
    first_divergence, which stops at the first diverging one)."""
    rows = []
    for hook in hook_order(k for k in trace_a if k in trace_b):
        a, b = np.asarray(trace_a[hook]), np.asarray(trace_b[hook])
        h = parse_hook(hook)
        if a.shape != b.shape:
            rows.append(HookRow(hook, h.layer, math.nan, math.nan, -1, math.nan, a.shape[0] if a.ndim else 1, False))
            continue
        st = _diff_stats(_as_rows(b, "b"), _as_rows(a, "a"))
        per = _nmse_from(st.err2, st.ref2) if metric == "nmse" else st.max_abs.copy()
        bad = (st.nonfinite_a > 0) | (st.nonfinite_b > 0)
        per = np.where(bad, np.nan, per)
        beyond = bad | ~(per <= tol)
        key = np.where(np.isnan(per), np.inf, per)
        p = int(np.argmax(key))
        whole = float(_nmse_from(np.array(st.err2.sum()), np.array(st.ref2.sum()))) if st.all_finite else math.nan
        max_abs = float(st.max_abs.max()) if st.all_finite else math.nan
        rows.append(HookRow(hook, h.layer, whole, float(per[p]), p, max_abs, int(beyond.sum()), not beyond.any()))
    return rows


def _section(r: HookRow) -> str:
    if r.layer is not None:
        return f"layer {r.layer}"
    return "embd" if r.hook == "embd" else "output"


def layer_rows(rows: list[HookRow]) -> list[dict]:
    """One entry per section (embd, layer 0.., output): the hook with the worst whole-array NMSE
    (NaN counts as worst), the worst per-position metric, max |a-b|, hooks beyond tol."""
    out: dict[str, dict] = {}
    for r in rows:
        s = out.setdefault(_section(r), {"section": _section(r), "hooks": 0, "beyond": 0, "worst_hook": r.hook,
                                         "nmse": r.nmse, "worst": r.worst, "max_abs": r.max_abs})
        s["hooks"] += 1
        s["beyond"] += 0 if r.ok else 1
        if _worse(r.nmse, s["nmse"]):
            s["worst_hook"], s["nmse"] = r.hook, r.nmse
        if _worse(r.worst, s["worst"]):
            s["worst"] = r.worst
        if _worse(r.max_abs, s["max_abs"]):
            s["max_abs"] = r.max_abs
    return list(out.values())


def _worse(x: float, y: float) -> bool:
    if math.isnan(y):
        return False
    return math.isnan(x) or x > y


def _run(args) -> int:
    import sys

    note = None
    if args.b is None:
        args.b, note = default_b()
    a_backend, b_backend = parse_backend(args.a), parse_backend(args.b)
    if args.tol < 0 or math.isnan(args.tol):
        raise _cli.CliError(f"--tol must be >= 0, got {args.tol}")
    capture = [c.strip() for c in args.capture.split(",") if c.strip()]
    if not capture:
        raise _cli.CliError("--capture: no hook patterns given")
    info_a: dict = {}
    info_b: dict = {}
    ids, trace_a, label_a = _trace(args, a_backend, args.a_fault, capture, "a", info_a)
    ids_b, trace_b, label_b = _trace(args, b_backend, args.b_fault, capture, "b", info_b)
    if ids_b != ids:
        raise _cli.CliError("the two backends tokenized the prompt differently")  # pragma: no cover - same file

    div = first_divergence(trace_b, trace_a, tol=args.tol, metric=args.metric)
    rows = hook_rows(trace_b, trace_a, args.tol, args.metric)
    layers = layer_rows(rows)
    lg = compare_logits(trace_b["logits"], trace_a["logits"], nmse=None) if "logits" in trace_a and \
        "logits" in trace_b else None
    report = _report(args, ids, label_a, label_b, div, rows, layers, lg)
    report["b_note"] = note
    report["warnings"] = []
    if div.diverged and div.hook is not None:
        skipped = skipped_before(info_a["hook_names"], trace_b.keys(), div.hook)
        if skipped:
            shown = ", ".join(skipped[:4]) + (", ..." if len(skipped) > 4 else "")
            w = (f"--capture {args.capture!r} skips {len(skipped)} hook(s) that run before {div.hook} ({shown}): "
                 f"{div.hook} is the first divergence among the captured hooks; B may differ earlier")
            report["warnings"].append(w)
            print(f"orc diff: warning: {w}", file=sys.stderr)
    report["diagnosis"] = {side: [f._asdict() for f in diagnose(t, model=info["tensor_types"]).findings]
                           if "logits" in t else None
                           for side, t, info in (("a", trace_a, info_a), ("b", trace_b, info_b))}
    if args.bisect:
        report["bisect"] = _bisect(args, a_backend, b_backend, ids, trace_a) if div.diverged else None
    if args.json:
        print(json.dumps(report, indent=1, default=_jsonable))
    else:
        print(_text(report, args.hooks))
    return _cli.EXIT_DIFFER if div.diverged else _cli.EXIT_OK


def _bisect(args, a_backend: Backend, b_backend: Backend, ids, trace_a) -> dict:
    """patch_bisect of B against A's trace (re-traced when --capture left out what it needs)."""
    import orc
    from .patching import patch_bisect

    need = ["blk.*.resid_post", "logits"]
    names = None
    if not ("logits" in trace_a and any(k.endswith(".resid_post") for k in trace_a)):
        _, trace_a, _ = _trace(args, a_backend, args.a_fault, need, "a")
    model = _cli.load_model(args.file, b_backend.device, b_backend.dtype, weights=b_backend.weights, threads=args.threads,
                            progress=not args.no_progress, fault=args.b_fault)
    try:
        names = model.hook_names
        kv = _cli.resolve_dtype(args.kv_dtype)

        def run(patch):
            with orc.Session(model, n_ctx=len(ids), kv_dtype=kv) as s:
                return s.trace(ids, capture=["*"], patch=patch) if patch else s.trace(ids, capture=["*"])
        run.hook_names = names
        b = patch_bisect(trace_a, run, tol=args.tol, metric=args.metric)
    finally:
        model.close()
    return b.to_dict()


def _jsonable(x):
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    raise TypeError(type(x).__name__)


def _num(x: float):
    return x if x is None or math.isfinite(x) else str(x)


def _report(args, ids, label_a, label_b, div, rows, layers, lg) -> dict:
    first = None
    if div.diverged:
        first = {"hook": div.hook, "position": div.position, "metric": args.metric, "value": _num(div.value),
                 "tol": div.tol, "nmse": _num(div.nmse), "max_abs": _num(div.max_abs),
                 "index": list(div.index) if div.index is not None else None,
                 "a_value": _num(div.b_value) if div.b_value is not None else None,
                 "b_value": _num(div.a_value) if div.a_value is not None else None,
                 "positions": [int(p) for p in div.positions], "reason": _reason(div)}
    rep = {
        "file": args.file, "prompt_ids": ids, "a": label_a, "b": label_b, "metric": args.metric, "tol": args.tol,
        "diverged": bool(div.diverged), "first_divergence": first,
        "layers": [{k: _num(v) if isinstance(v, float) else v for k, v in s.items()} for s in layers],
        "hooks": [{"hook": r.hook, "nmse": _num(r.nmse), "worst": _num(r.worst), "worst_position": r.worst_position,
                   "max_abs": _num(r.max_abs), "beyond": r.beyond, "ok": r.ok} for r in rows],
        "logits": None,
    }
    if lg is not None:
        agree = lg.per_position["top1_agree"]
        rep["logits"] = {"positions": lg.n_positions, "top1_agree": int(agree.sum()),
                         "top1_differs_at": [int(p) for p in np.flatnonzero(~agree)],
                         "top1_agreement": lg.top1_agreement, "nmse": _num(lg.nmse), "kl_max": _num(lg.kl_max),
                         "argmax_a": [int(x) for x in lg.per_position["argmax_b"]],
                         "argmax_b": [int(x) for x in lg.per_position["argmax_a"]],
                         "nonfinite_a": lg.n_nonfinite_b, "nonfinite_b": lg.n_nonfinite_a}
    return rep


def _reason(div) -> str:
    """Divergence.reason with A/B names: first_divergence was called as (B, A), so its 'a' is B."""
    if div.a_value is not None and not math.isfinite(div.a_value):
        return f"{div.a_value} in B"
    if div.b_value is not None and not math.isfinite(div.b_value):
        return f"{div.b_value} in A (the reference is not finite here)"
    if div.position is None:
        return div.reason  # shapes differ
    from ._table import fmt

    return f"{div.metric} {fmt(div.value)} > tol {fmt(div.tol)}"


def _text(rep: dict, per_hook: bool) -> str:
    from ._table import fmt, text_table

    lines = [f"A (reference): {rep['a']}", f"B:             {rep['b']}"
             + (f"   ({rep['b_note']})" if rep.get("b_note") else ""),
             f"prompt: {len(rep['prompt_ids'])} tokens; metric {rep['metric']}, tol {fmt(rep['tol'])} per position"]
    f = rep["first_divergence"]
    if f is None:
        lines.append(f"no divergence: {len(rep['hooks'])} hooks within tolerance")
    else:
        at = "" if f["position"] is None else f" at position {f['position']}"
        lines.append(f"first divergence: {f['hook']}{at}: {f['reason']}")
        if f["position"] is not None:
            idx = ", ".join(str(i) for i in f["index"] or ())
            lines.append(f"  element [{idx}]: A={fmt(f['a_value'])} B={fmt(f['b_value'])}; "
                         f"{len(f['positions'])} position(s) beyond tolerance at this hook")
    lines += [f"warning: {w}" for w in rep.get("warnings") or []]
    lines.append("")
    lines.append("per layer (B against A):")
    lines.append(text_table(("section", "hooks", "beyond tol", "worst hook", "NMSE", f"worst pos {rep['metric']}",
                             "max|a-b|"),
                            [(s["section"], s["hooks"], s["beyond"], s["worst_hook"], _f(s["nmse"]), _f(s["worst"]),
                              _f(s["max_abs"])) for s in rep["layers"]]))
    if per_hook:
        lines.append("")
        lines.append("per hook:")
        lines.append(text_table(("hook", "NMSE", f"worst pos {rep['metric']}", "worst pos", "max|a-b|", "beyond", "ok"),
                                [(r["hook"], _f(r["nmse"]), _f(r["worst"]), r["worst_position"], _f(r["max_abs"]),
                                  r["beyond"], r["ok"]) for r in rep["hooks"]]))
    lg = rep["logits"]
    if lg is not None:
        lines.append("")
        differ = lg["top1_differs_at"]
        lines.append(f"logits: argmax agrees at {lg['top1_agree']}/{lg['positions']} positions"
                     + (f" (differs at {', '.join(map(str, differ[:8]))}{', ...' if len(differ) > 8 else ''})"
                        if differ else "")
                     + f"; NMSE {fmt(_f(lg['nmse']))}, max KL {fmt(_f(lg['kl_max']))}"
                     + (f"; NaN/Inf: {lg['nonfinite_a']} in A, {lg['nonfinite_b']} in B"
                        if lg["nonfinite_a"] or lg["nonfinite_b"] else ""))
    for side in ("a", "b"):
        found = (rep.get("diagnosis") or {}).get(side)
        if found:
            lines.append(f"{side.upper()}'s logits look broken (orc.compare.diagnose):")
            lines += [f"  [{x['severity']}] {x['code']}: {x['message']}" for x in found]
    bis = rep.get("bisect")
    if bis is not None:
        lines.append("")
        lines.append("bisect (A's activations patched into B):")
        lines += ["  " + x for x in bis["headline"].splitlines()]
        lines.append("  patched runs: " + ", ".join(f"{t['point']} {'fixes' if t['fixed'] else 'does not fix'}"
                                                   for t in bis["tried"]))
    lines.append("")
    lines.append("DIVERGED" if rep["diverged"] else "OK: B matches A within tolerance")
    return "\n".join(lines)


def _f(x):
    return float(x) if isinstance(x, str) else x

