"""Helpers for tests on real models: pinned files (skipped with the reason when absent), sliced
files rebuilt from their recipe, the HF goldens of tests/golden/real/, and the comparison of a
candidate's logits with a golden.

    from realmodels import real_model, golden, sliced_model, check_logits

    path = real_model("gemma3-270m")      # pathlib.Path, or pytest.skip("real model ... not available")
    g = golden("gemma3-270m")             # Golden: .meta, .subset_ids, .prompts[i].ids, ...
    report = check_logits(g.prompts[0], g.subset_ids, logits)   # AssertionError naming what is off

Real models are never downloaded by a test unless ORC_FETCH_MODELS=1; CI fetches the small ones
before pytest (python -m orc.fixtures gemma3-270m smollm2-135m-instruct). A cached file with the
wrong hash fails the test (FixtureHashError), it is never skipped.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import pathlib
import sys

import numpy as np
import pytest

from orc import fixtures

ROOT = pathlib.Path(__file__).resolve().parent.parent
GOLDEN_DIR = ROOT / "tests" / "golden" / "real"

# Tolerances for an fp32 backend computing from the same dequantized weights as HF. A NumPy
# forward pass reaches NMSE ~1e-12 (tools/gemma3_numpy_ref.py); gelu with erf instead of tanh is
# already ~1e-7, so the bound must stay well below that to catch such a slip.
# The logsumexp is checked at every position, where fp32 noise is not averaged: the NumPy forward
# differs from torch by up to 1.3e-3 at 2 of 745 positions of the sliced gemma3's long prompt.
CPU_FP32 = dict(nmse_max=1e-9, lse_atol=1e-2, margin=1e-3)


def real_model(name: str) -> pathlib.Path:
    """The pinned model file, or skip the test saying why it is absent."""
    fetch = os.environ.get("ORC_FETCH_MODELS") == "1"
    try:
        return fixtures.path(name, download=fetch)
    except fixtures.FixtureUnavailable as e:
        pytest.skip(f"real model {name!r} not available: {e} (python -m orc.fixtures {name} fetches it)")


def load_tool(name: str):
    """A module from tools/ (not a package), e.g. load_tool('gguf_slice')."""
    mod_name = f"orc_tool_{name}"
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    spec = importlib.util.spec_from_file_location(mod_name, ROOT / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = mod
    spec.loader.exec_module(mod)
    return mod


@dataclasses.dataclass
class PromptGolden:
    name: str
    text: str
    ids: np.ndarray           # [T] int32, the ids to feed (mapped ids for a sliced model)
    argmax: np.ndarray        # [T]
    top_ids: np.ndarray       # [T, 64]
    top_logits: np.ndarray    # [T, 64] descending
    lse: np.ndarray           # [T] float64
    sub_pos: np.ndarray       # [P]
    sub_logits: np.ndarray    # [P, S] logits at subset_ids
    hidden_last: np.ndarray   # [n_layer + 2, n_embd]: embd, blk.i.resid_post..., output_norm
    greedy: np.ndarray | None = None
    greedy_margin: np.ndarray | None = None
    orig_ids: np.ndarray | None = None

    @property
    def margin(self) -> np.ndarray:
        """top1 - top2 logit at every position."""
        return self.top_logits[:, 0] - self.top_logits[:, 1]


@dataclasses.dataclass
class Golden:
    name: str
    meta: dict
    subset_ids: np.ndarray
    prompts: list[PromptGolden]

    def prompt(self, name: str) -> PromptGolden:
        return next(p for p in self.prompts if p.name == name)


def golden(name: str, directory: pathlib.Path = GOLDEN_DIR) -> Golden:
    path = directory / f"{name}.npz"
    z = np.load(path, allow_pickle=False)
    meta = json.loads(str(z["meta"]))
    prompts = []
    for i, p in enumerate(meta["prompts"]):
        get = (lambda k, i=i: z[f"p{i}_{k}"] if f"p{i}_{k}" in z.files else None)
        prompts.append(PromptGolden(
            name=p["name"], text=str(z[f"p{i}_text"]), ids=get("ids"), argmax=get("argmax"), top_ids=get("top_ids"),
            top_logits=get("top_logits"), lse=get("lse"), sub_pos=get("sub_pos"), sub_logits=get("sub_logits"),
            hidden_last=get("hidden_last"), greedy=get("greedy"), greedy_margin=get("greedy_margin"),
            orig_ids=get("orig_ids")))
    return Golden(name, meta, z["subset_ids"], prompts)


def golden_names(directory: pathlib.Path = GOLDEN_DIR) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.npz"))


def sliced_model(golden_name: str) -> pathlib.Path:
    """The sliced file a sliced golden was computed on: found in the model cache, or rebuilt from
    the source model with the recipe stored in the golden (skip when the source is absent).
    The result must have the sha256 the golden records, or the test fails."""
    g = golden(golden_name)
    meta = g.meta
    want = meta["sha256"]
    for d in fixtures.cache_dirs():
        p = d / meta["file"]
        if p.is_file():
            got = fixtures.sha256_file(p)
            if got != want:
                raise AssertionError(f"{p} has sha256 {got}, the golden {golden_name} was made on {want}")
            return p
    src_golden = golden(pathlib.Path(meta["source_golden"]).stem)
    src = real_model(src_golden.meta["fixture"])
    pytest.importorskip("gguf")
    out = fixtures.cache_dir() / meta["file"]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".partial")
    load_tool("gguf_slice").slice_from_recipe(src, tmp, meta["recipe"], GOLDEN_DIR)
    got = fixtures.sha256_file(tmp)
    if got != want:
        tmp.unlink()
        raise AssertionError(f"re-slicing {src.name} with {meta['recipe']} gave sha256 {got}, expected {want}")
    os.replace(tmp, out)
    return out


def nmse(a, ref) -> float:
    a, ref = np.asarray(a, np.float64), np.asarray(ref, np.float64)
    return float(np.sum((a - ref) ** 2) / np.sum(ref ** 2))


def summarize(logits: np.ndarray, subset_ids: np.ndarray, sub_pos: np.ndarray, top_k: int = 64) -> dict:
    """The golden's per-prompt fields computed from full logits [T, V] (NumPy twin of the tool's)."""
    lg = np.asarray(logits, np.float32)
    order = np.argsort(-lg, axis=-1, kind="stable")[:, :top_k]
    m = lg.max(-1, keepdims=True).astype(np.float64)
    lse = (m[:, 0] + np.log(np.exp(lg.astype(np.float64) - m).sum(-1)))
    return {"argmax": lg.argmax(-1).astype(np.int32), "top_ids": order.astype(np.int32),
            "top_logits": np.take_along_axis(lg, order, -1), "lse": lse,
            "sub_pos": np.asarray(sub_pos, np.int32), "sub_logits": lg[sub_pos][:, subset_ids]}


def summarize_forward(forward, ids, subset_ids: np.ndarray, sub_pos: np.ndarray, chunk: int = 128) -> dict:
    """Feed ids in chunks to forward(chunk_ids) -> logits [len, V] (a Session keeps its KV cache
    between calls) and keep only what check_summary needs: a long prompt's full logits would be
    T x 262144 floats."""
    sub_pos = np.asarray(sub_pos)
    argmax, lse, sub = [], [], []
    for start in range(0, len(ids), chunk):
        lg = np.asarray(forward(np.asarray(ids[start:start + chunk])))
        if lg.ndim != 2 or lg.shape[0] != min(chunk, len(ids) - start):
            raise AssertionError(f"forward returned shape {lg.shape} for {min(chunk, len(ids) - start)} tokens")
        bad = ~np.isfinite(lg)
        if bad.any():
            pos, tok = np.argwhere(bad)[0]
            raise AssertionError(f"non-finite logit at position {start + pos}, token {tok}")
        s = summarize(lg, subset_ids, [p - start for p in sub_pos if start <= p < start + lg.shape[0]])
        argmax.append(s["argmax"])
        lse.append(s["lse"])
        sub.append(s["sub_logits"])
    return {"argmax": np.concatenate(argmax), "lse": np.concatenate(lse), "sub_logits": np.concatenate(sub)}


def check_logits(pg: PromptGolden, subset_ids: np.ndarray, logits: np.ndarray, **tol) -> dict:
    """Compare full logits [T, V] of a candidate with a prompt's golden (see check_summary)."""
    lg = np.asarray(logits)
    T = len(pg.ids)
    if lg.ndim != 2 or lg.shape[0] != T:
        raise AssertionError(f"{pg.name}: logits shape {lg.shape}, expected [{T}, n_vocab]")
    bad = ~np.isfinite(lg)
    if bad.any():
        pos, tok = np.argwhere(bad)[0]
        raise AssertionError(f"{pg.name}: non-finite logit at position {pos}, token {tok}")
    return check_summary(pg, summarize(lg, subset_ids, pg.sub_pos), **tol)


def check_summary(pg: PromptGolden, s: dict, *, nmse_max: float = 1e-9, lse_atol: float = 1e-2,
                  margin: float = 1e-3) -> dict:
    """AssertionError unless
    - NMSE over the stored subset (sub_pos x subset_ids) <= nmse_max;
    - |logsumexp - golden| <= lse_atol at every position (the mass outside the stored ids);
    - argmax equal at every position where the golden's top1 - top2 margin exceeds `margin`.
    """
    rep = {"nmse_sub": nmse(s["sub_logits"], pg.sub_logits),
           "max_abs_sub": float(np.abs(s["sub_logits"] - pg.sub_logits).max()),
           "max_abs_lse": float(np.abs(s["lse"] - pg.lse).max())}
    decisive = pg.margin > margin
    wrong = np.nonzero(decisive & (s["argmax"] != pg.argmax))[0]
    rep["argmax_checked"] = int(decisive.sum())
    rep["argmax_wrong"] = wrong.tolist()
    problems = []
    if not rep["nmse_sub"] <= nmse_max:
        problems.append(f"NMSE {rep['nmse_sub']:.3e} > {nmse_max:.1e}")
    if not rep["max_abs_lse"] <= lse_atol:
        problems.append(f"logsumexp off by {rep['max_abs_lse']:.3e} > {lse_atol:.1e}")
    if wrong.size:
        i = int(wrong[0])
        problems.append(f"argmax differs at {wrong.size} decisive positions, first {i}: "
                        f"{int(s['argmax'][i])} vs golden {int(pg.argmax[i])} (margin {pg.margin[i]:.3f})")
    if problems:
        raise AssertionError(f"{pg.name}: " + "; ".join(problems) + f" [{rep}]")
    return rep
