"""KL divergence and perplexity of a model B against a reference A over a text, with the
definitions of llama.cpp's `llama-perplexity --kl-divergence`, so the numbers compare with
published ones; plus what llama.cpp does not give: the worst positions with their tokens and
text, the per-layer divergence of the hidden states, and a plot.

    r = orc.kld("model-f16.gguf", "model-q4.gguf@cpu", text, n_ctx=512)
    print(r)                              # llama.cpp's statistics, the worst positions, per layer
    r.mean_kld, r.same_top_p, r.rms_dp, r.ppl_a, r.ppl_b
    r.plot("kld.png")                     # matplotlib (optional dependency)
    orc.perplexity.save_logits("model-f16.gguf", text, "base.npz", top_k=64)
    orc.kld("base.npz", "model-q4.gguf")  # later, against the saved reference

A and B are run in the same process chunk by chunk (no multi-GB file of base logits); A's logits
can also be saved compactly and used later (see save_logits for the precision this costs).

Definitions (llama.cpp tools/perplexity/perplexity.cpp, function kl_divergence):
  - the text is tokenized once with BOS/EOS as the vocabulary asks, and cut into
    n_chunks = len(ids) // n_ctx windows of n_ctx tokens (the tail is dropped); each window is
    evaluated from an empty KV cache, its first token replaced by BOS when the vocabulary adds one;
  - only the second half of each window is scored: the logits at positions first = n_ctx // 2 to
    n_ctx - 2 predict tokens first + 1 .. n_ctx - 1, so n_ctx - 1 - n_ctx // 2 tokens per window;
  - per scored position, with p = softmax(A's logits), q = softmax(B's), t the next token:
    nll_a = -log p_t, nll_b = -log q_t, KLD = sum_i p_i (log p_i - log q_i), Δp = q_t - p_t,
    "same top" when argmax p == argmax q (first index of the maximum);
  - PPL = exp(mean nll); mean_and_uncertainty(x) = (mean, sqrt(var / (n - 1))) with
    var = mean(x^2) - mean^2 (0 when n <= 10), PPL's uncertainty = PPL * that of mean nll;
    ln(PPL_b / PPL_a) with the covariance of the two nll series; RMS Δp = sqrt(mean Δp^2) with
    uncertainty 0.5 / RMS * unc(mean Δp^2); same_top_p with sqrt(p (1 - p) / (n - 1));
    median (mean of the two middle values for an even count) and percentiles by linear
    interpolation between sorted values at fraction * (n - 1).
  Differences from llama.cpp, all in orc's favour of exactness: everything is float64 over the
  whole vocabulary (llama.cpp stores the base log-probabilities as 16-bit integers over a 16-nat
  window and drops the terms with base log-probability <= -16 from the KLD sum); the KLD is
  clamped at 0 against rounding. Note that llama.cpp's "RMS Δp" is the probability of the *next
  token* of the text, not of the top token.
"""
from __future__ import annotations

import html
import math
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _table
from .compare import _argmax_rows, _chunks, _kl_rows, _log_softmax

__all__ = ["kld", "KLDReport", "WorstPosition", "save_logits", "load_logits", "SavedLogits",
           "llama_statistics", "chunk_windows", "parse_model_spec"]

LOGITS_FORMAT = "orc-logits-v1"
DEFAULT_N_CTX = 512
# Positions traced per call: bounds the memory of the logits and hidden states held at once.
_SLICE = 64


# ------------------------------------------------------------------------------------------------
# llama.cpp's statistics

def _mean_and_uncertainty(s: float, s2: float, n: int) -> tuple[float, float]:
    """llama.cpp's mean_and_uncertainty: (sum / n, sqrt(var / (n - 1))), var = s2 / n - mean^2;
    the uncertainty is 0 unless var > 0 and n > 10."""
    if n < 1:
        return 0.0, 0.0
    f = s / n
    df = s2 / n - f * f
    return f, (math.sqrt(df / (n - 1)) if df > 0 and n > 10 else 0.0)


def _covariance(sa: float, sb: float, sab: float, n: int) -> float:
    """llama.cpp's covariance of the two means (0 below 10 values)."""
    if n < 10:
        return 0.0
    return (sab / n - (sa / n) * (sb / n)) / (n - 1)


def _median(sorted_values: np.ndarray) -> float:
    n = sorted_values.size
    return float(0.5 * (sorted_values[n // 2] + sorted_values[n // 2 - 1]) if n % 2 == 0 else sorted_values[n // 2])


def _percentile(sorted_values: np.ndarray, fraction: float) -> float:
    """llama.cpp's percentile: linear interpolation at fraction * (n - 1)."""
    if fraction <= 0:
        return float(sorted_values[0])
    if fraction >= 1:
        return float(sorted_values[-1])
    p = fraction * (sorted_values.size - 1)
    ip = int(p)
    p -= ip
    return float((1 - p) * sorted_values[ip] + p * sorted_values[min(ip + 1, sorted_values.size - 1)])


KLD_PERCENTILES = (99.9, 99.0, 95.0, 90.0, 10.0, 5.0, 1.0, 0.1)
DP_PERCENTILES = (99.9, 99.0, 95.0, 90.0, 75.0, 25.0, 10.0, 5.0, 1.0, 0.1)


def llama_statistics(nll_a: Any, nll_b: Any, kld: Any, p_diff: Any, same_top: Any) -> dict[str, Any]:
    """The statistics llama-perplexity --kl-divergence prints, from per-position values (A the
    base, B the model under test): ppl_a/_unc, ppl_b/_unc, ppl_cor, ln_ppl_ratio/_unc,
    ppl_ratio/_unc, ppl_diff/_unc, mean_kld/_unc, median_kld, max_kld, min_kld,
    kld_percentiles {99.9: ..., 99.0: ..., ...}, mean_dp/_unc, median_dp, max_dp, min_dp,
    dp_percentiles, rms_dp/_unc, same_top_p/_unc, n_tokens. Sums in float64 as llama.cpp's."""
    nll_a, nll_b = np.asarray(nll_a, np.float64), np.asarray(nll_b, np.float64)
    kld, p_diff = np.asarray(kld, np.float64), np.asarray(p_diff, np.float64)
    same_top = np.asarray(same_top, bool)
    n = int(nll_a.size)
    if not (nll_b.size == kld.size == p_diff.size == same_top.size == n):
        raise ValueError("llama_statistics: the per-position arrays differ in length")
    if n == 0:
        raise ValueError("llama_statistics: no scored positions")
    out: dict[str, Any] = {"n_tokens": n}
    lb, ub = _mean_and_uncertainty(nll_b.sum(), (nll_b * nll_b).sum(), n)
    la, ua = _mean_and_uncertainty(nll_a.sum(), (nll_a * nll_a).sum(), n)
    cov = _covariance(nll_b.sum(), nll_a.sum(), (nll_b * nll_a).sum(), n)
    ppl_b, ppl_a = math.exp(lb), math.exp(la)
    out.update(ppl_b=ppl_b, ppl_b_unc=ppl_b * ub, ppl_a=ppl_a, ppl_a_unc=ppl_a * ua)
    with np.errstate(all="ignore"):
        out["ppl_cor"] = float(cov / (ub * ua)) if ub * ua > 0 else math.nan
    ratio = lb - la
    ratio_unc = math.sqrt(max(0.0, ub * ub + ua * ua - 2.0 * cov))
    out.update(ln_ppl_ratio=ratio, ln_ppl_ratio_unc=ratio_unc, ppl_ratio=math.exp(ratio),
               ppl_ratio_unc=math.exp(ratio) * ratio_unc)
    ppl_cov = ppl_b * ppl_a * cov
    out.update(ppl_diff=ppl_b - ppl_a,
               ppl_diff_unc=math.sqrt(max(0.0, (ppl_b * ub) ** 2 + (ppl_a * ua) ** 2 - 2.0 * ppl_cov)))
    m, u = _mean_and_uncertainty(kld.sum(), (kld * kld).sum(), n)
    ks = np.sort(kld)
    out.update(mean_kld=m, mean_kld_unc=u, median_kld=_median(ks), max_kld=float(ks[-1]), min_kld=float(ks[0]),
               kld_percentiles={q: _percentile(ks, q / 100) for q in KLD_PERCENTILES})
    m, u = _mean_and_uncertainty(p_diff.sum(), (p_diff * p_diff).sum(), n)
    ds = np.sort(p_diff)
    out.update(mean_dp=m, mean_dp_unc=u, median_dp=_median(ds), max_dp=float(ds[-1]), min_dp=float(ds[0]),
               dp_percentiles={q: _percentile(ds, q / 100) for q in DP_PERCENTILES})
    d2 = p_diff * p_diff
    mse, mse_unc = _mean_and_uncertainty(d2.sum(), (d2 * d2).sum(), n)
    rms = math.sqrt(mse)
    out.update(rms_dp=rms, rms_dp_unc=(0.5 / rms * mse_unc) if rms > 0 else 0.0)
    p = float(same_top.sum()) / n
    out.update(same_top_p=p, same_top_p_unc=math.sqrt(p * (1 - p) / (n - 1)) if n > 1 else 0.0)
    return out


# ------------------------------------------------------------------------------------------------
# windows

def chunk_windows(n_ids: int, n_ctx: int, n_chunks: int | None = None) -> list[tuple[int, int]]:
    """[(start, end)] of the windows llama.cpp evaluates: n_ids // n_ctx windows of n_ctx tokens
    (at most n_chunks), the tail dropped."""
    if n_ctx < 4:
        raise ValueError(f"n_ctx must be >= 4 (half of each window is context), got {n_ctx}")
    total = n_ids // n_ctx
    if total < 1:
        raise ValueError(f"the text has {n_ids} tokens: at least one window of n_ctx = {n_ctx} is needed "
                         f"(llama.cpp asks for 2 * n_ctx = {2 * n_ctx})")
    if n_chunks is not None:
        if n_chunks < 1:
            raise ValueError(f"n_chunks must be >= 1, got {n_chunks}")
        total = min(total, n_chunks)
    return [(i * n_ctx, (i + 1) * n_ctx) for i in range(total)]


# ------------------------------------------------------------------------------------------------
# saved logits

@dataclass(repr=False)
class SavedLogits:
    """One side's scored logits, saved by save_logits (or KLDReport's run) and loaded with
    load_logits. Per scored position: `nll` (float64) and `argmax` are exact; the distribution is
    either all logits (`logits`, float16, minus the row maximum) or the top-k (`top_ids`,
    `top_logits` float16 minus the row maximum) with `lse` = logsumexp(row - max) in float64."""
    ids: np.ndarray
    n_ctx: int
    n_chunks: int
    n_vocab: int
    add_bos: bool
    bos: int | None
    nll: np.ndarray
    argmax: np.ndarray
    lse: np.ndarray
    logits: np.ndarray | None = None
    top_ids: np.ndarray | None = None
    top_logits: np.ndarray | None = None
    label: str = ""
    path: str | None = None

    @property
    def top_k(self) -> int | None:
        return None if self.top_ids is None else int(self.top_ids.shape[1])

    @property
    def kind(self) -> str:
        return "float16 logits" if self.logits is not None else f"float16 top-{self.top_k} logits"

    def __repr__(self):
        return (f"<SavedLogits {self.label!r}: {self.nll.size} positions, n_ctx {self.n_ctx}, {self.kind}"
                + (f", {self.path}" if self.path else "") + ">")


def _write_saved(path, s: SavedLogits) -> None:
    arrays = {"format": np.array(LOGITS_FORMAT), "label": np.array(s.label), "ids": s.ids.astype(np.int32),
              "n_ctx": np.array(s.n_ctx), "n_chunks": np.array(s.n_chunks), "n_vocab": np.array(s.n_vocab),
              "add_bos": np.array(bool(s.add_bos)), "bos": np.array(-1 if s.bos is None else int(s.bos)),
              "nll": s.nll, "argmax": s.argmax.astype(np.int32), "lse": s.lse}
    if s.logits is not None:
        arrays["logits"] = s.logits
    else:
        arrays["top_ids"], arrays["top_logits"] = s.top_ids, s.top_logits
    tmp = os.fspath(path) + ".partial"
    with open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    os.replace(tmp, path)


def load_logits(path: str | os.PathLike) -> SavedLogits:
    """Read a file written by save_logits (ValueError naming what is wrong with it)."""
    path = os.fspath(path)
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a saved-logits file: {e}") from None
    with z:
        if "format" not in z.files or str(z["format"]) != LOGITS_FORMAT:
            raise ValueError(f"{path}: not a saved-logits file (format {LOGITS_FORMAT!r} expected)")
        bos = int(z["bos"])
        s = SavedLogits(ids=z["ids"], n_ctx=int(z["n_ctx"]), n_chunks=int(z["n_chunks"]), n_vocab=int(z["n_vocab"]),
                        add_bos=bool(z["add_bos"]), bos=None if bos < 0 else bos, nll=z["nll"], argmax=z["argmax"],
                        lse=z["lse"], logits=z["logits"] if "logits" in z.files else None,
                        top_ids=z["top_ids"] if "top_ids" in z.files else None,
                        top_logits=z["top_logits"] if "top_logits" in z.files else None,
                        label=str(z["label"]), path=path)
    n = s.n_chunks * (s.n_ctx - 1 - s.n_ctx // 2)
    if s.nll.shape != (n,) or s.argmax.shape != (n,) or s.ids.size < s.n_chunks * s.n_ctx:
        raise ValueError(f"{path}: inconsistent saved logits ({s.nll.shape[0]} positions, {s.n_chunks} windows of "
                         f"{s.n_ctx})")
    return s


# ------------------------------------------------------------------------------------------------
# the two sides

def parse_model_spec(spec: str) -> dict[str, Any]:
    """'FILE[@DEVICE[:INDEX][:DTYPE]]' -> {"path", "device", "dtype"}: 'model.gguf',
    'model.gguf@cpu:float16', 'smollm2-135m-instruct@cuda:1', ...; the device defaults to auto."""
    from ._cli import CliError
    from .cli_diff import parse_backend

    path, at, backend = spec.rpartition("@")
    if not at:
        return {"path": spec, "device": "auto", "dtype": None}
    try:
        b = parse_backend(backend)
    except CliError as e:
        raise ValueError(f"model {spec!r}: {e} (a model is FILE[@DEVICE[:INDEX][:DTYPE]])") from None
    return {"path": path, "device": b.device, "dtype": b.dtype}


class _Side:
    """A reference or candidate: a live model (with its session) or saved logits."""

    def __init__(self, spec, which: str):
        from .model import Model

        self.which = which
        self.model = None
        self.saved: SavedLogits | None = None
        self.owned = False
        if isinstance(spec, SavedLogits):
            self.saved = spec
        elif isinstance(spec, Model):
            self.model = spec
        else:
            kw: dict[str, Any]
            if isinstance(spec, (str, os.PathLike)):
                s = os.fspath(spec)
                if s.endswith(".npz") and os.path.isfile(s):
                    self.saved = load_logits(s)
                    kw = {}
                else:
                    kw = parse_model_spec(s)
            elif isinstance(spec, Mapping):
                kw = dict(spec)
            elif isinstance(spec, tuple) and 1 <= len(spec) <= 4:
                kw = dict(zip(("path", "device", "dtype"), spec[:3]))
                if len(spec) == 4:
                    kw.update(spec[3])
            else:
                raise TypeError(f"{which}: expected an orc.Model, a model spec ('FILE@cpu:float32', a dict or a "
                                f"(path, device, dtype[, Model kwargs]) tuple) or saved logits, got {type(spec).__name__}")
            if self.saved is None:
                if "path" not in kw:
                    raise ValueError(f"{which}: a model spec needs a path")
                path = kw.pop("path")
                kw.setdefault("device", "auto")
                self.model = Model(path, **kw)
                self.owned = True
        self.session = None

    @property
    def label(self) -> str:
        if self.saved is not None:
            return f"saved {self.saved.kind} ({self.saved.label})"
        m = self.model
        fault = f", fault {m.fault}" if m.fault else ""
        return f"{os.path.basename(m.path)} ({m.device} {m.dtype}{fault})"

    @property
    def n_vocab(self) -> int:
        return self.saved.n_vocab if self.saved is not None else self.model.vocab_size

    def tokenizer(self):
        if self.model is None:
            return None
        try:
            return self.model.tokenizer
        except Exception:  # noqa: BLE001 - a model without a usable tokenizer still runs ids
            return None

    def open(self, n_ctx: int) -> None:
        if self.model is not None:
            from .model import Session

            self.session = Session(self.model, n_ctx=n_ctx)

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
        if self.owned and self.model is not None:
            self.model.close()


def _bos_of(side: _Side) -> tuple[bool, int | None] | None:
    if side.saved is not None:
        return side.saved.add_bos, side.saved.bos
    tok = side.tokenizer()
    if tok is None:
        return None
    return bool(tok.add_bos), tok.bos


# ------------------------------------------------------------------------------------------------
# the report

@dataclass
class WorstPosition:
    """One of the positions with the largest KLD: window `chunk`, `position` in it, `index` in
    the token stream of the predicting token; `target` the next token of the text; the argmax
    of each side; their probabilities of the target; the text before it (`context`), and the
    hidden-state NMSE of B against A per layer (`layers`, or None)."""
    chunk: int
    position: int
    index: int
    kld: float
    target: int
    argmax_a: int
    argmax_b: int
    p_a: float
    p_b: float
    target_text: str | None = None
    argmax_a_text: str | None = None
    argmax_b_text: str | None = None
    context: str | None = None
    layers: np.ndarray | None = None


@dataclass(repr=False)
class KLDReport:
    """How model B's next-token distributions differ from reference A's over a text, with
    llama.cpp's definitions (see the module docstring). The headline fields: ppl_a, ppl_b,
    mean_kld, median_kld, kld_p99, max_kld, same_top_p, rms_dp, n_tokens; each estimate with its
    uncertainty (`_unc`) as llama.cpp prints it. `per_position` holds the per-position values
    (pandas.DataFrame(r.per_position) is a table); `worst` the positions with the largest KLD;
    `layer_nmse` [n_tokens, n_layers] the hidden-state NMSE of B against A at each scored
    position and `layer_hooks` its columns (None when a side is saved logits)."""
    a: str
    b: str
    n_ctx: int
    n_chunks: int
    n_vocab: int
    stats: dict[str, Any]
    per_position: dict[str, np.ndarray] = field(repr=False)
    worst: list[WorstPosition] = field(default_factory=list)
    layer_hooks: list[str] | None = None
    layer_nmse: np.ndarray | None = field(default=None, repr=False)
    kl_note: str = "exact (float64 over the whole vocabulary)"
    notes: list[str] = field(default_factory=list)

    def __getattr__(self, name: str):
        stats = self.__dict__.get("stats")
        if stats is not None and name in stats:
            return stats[name]
        if name.startswith("kld_p") and stats is not None:
            q = float(name[5:].replace("_", "."))
            if q in stats["kld_percentiles"]:
                return stats["kld_percentiles"][q]
        raise AttributeError(name)

    # headline fields, for help() and completion
    n_tokens = property(lambda self: self.stats["n_tokens"], doc="scored positions")
    ppl_a = property(lambda self: self.stats["ppl_a"], doc="perplexity of A (the reference)")
    ppl_b = property(lambda self: self.stats["ppl_b"], doc="perplexity of B")
    mean_kld = property(lambda self: self.stats["mean_kld"], doc="mean KL(A || B) per position, nats")
    median_kld = property(lambda self: self.stats["median_kld"], doc="median KLD")
    kld_p99 = property(lambda self: self.stats["kld_percentiles"][99.0], doc="99th percentile of the KLD")
    max_kld = property(lambda self: self.stats["max_kld"], doc="largest KLD at one position")
    same_top_p = property(lambda self: self.stats["same_top_p"], doc="fraction of positions where the argmax agrees")
    rms_dp = property(lambda self: self.stats["rms_dp"], doc="RMS of B's minus A's probability of the next token")

    @property
    def ok_nonfinite(self) -> bool:
        """False when any scored position had NaN/Inf logits on either side."""
        return int(self.per_position["nonfinite"].sum()) == 0

    # -- text
    def summary(self) -> str:
        """The statistics, in llama.cpp's layout (percentages where it prints them)."""
        s = self.stats
        pm = "±"
        lines = [f"A (reference): {self.a}", f"B:             {self.b}",
                 f"{self.n_chunks} window(s) of n_ctx {self.n_ctx}: {s['n_tokens']} scored tokens; KLD {self.kl_note}"]
        lines += [f"note: {n}" for n in self.notes]
        lines += ["", "====== Perplexity statistics ======",
                  f"Mean PPL(Q)                   : {s['ppl_b']:10.6f} {pm} {s['ppl_b_unc']:10.6f}",
                  f"Mean PPL(base)                : {s['ppl_a']:10.6f} {pm} {s['ppl_a_unc']:10.6f}",
                  f"Cor(ln(PPL(Q)), ln(PPL(base))): {100 * s['ppl_cor']:6.2f}%",
                  f"Mean ln(PPL(Q)/PPL(base))     : {s['ln_ppl_ratio']:10.6f} {pm} {s['ln_ppl_ratio_unc']:10.6f}",
                  f"Mean PPL(Q)/PPL(base)         : {s['ppl_ratio']:10.6f} {pm} {s['ppl_ratio_unc']:10.6f}",
                  f"Mean PPL(Q)-PPL(base)         : {s['ppl_diff']:10.6f} {pm} {s['ppl_diff_unc']:10.6f}",
                  "", "====== KL divergence statistics ======",
                  f"Mean    KLD: {s['mean_kld']:10.6f} {pm} {s['mean_kld_unc']:10.6f}",
                  f"Maximum KLD: {s['max_kld']:10.6f}"]
        kp = s["kld_percentiles"]
        lines += [f"{q:4.1f}%   KLD: {kp[q]:10.6f}" for q in (99.9, 99.0, 95.0, 90.0)]
        lines.append(f"Median  KLD: {s['median_kld']:10.6f}")
        lines += [f"{q:4.1f}%   KLD: {kp[q]:10.6f}" for q in (10.0, 5.0, 1.0, 0.1)]
        lines += [f"Minimum KLD: {s['min_kld']:10.6f}", "", "====== Token probability statistics ======",
                  f"Mean    Δp: {100 * s['mean_dp']:6.3f} {pm} {100 * s['mean_dp_unc']:5.3f} %",
                  f"Maximum Δp: {100 * s['max_dp']:6.3f}%"]
        dp = s["dp_percentiles"]
        lines += [f"{q:4.1f}%   Δp: {100 * dp[q]:6.3f}%" for q in (99.9, 99.0, 95.0, 90.0, 75.0)]
        lines.append(f"Median  Δp: {100 * s['median_dp']:6.3f}%")
        lines += [f"{q:4.1f}%   Δp: {100 * dp[q]:6.3f}%" for q in (25.0, 10.0, 5.0, 1.0, 0.1)]
        lines += [f"Minimum Δp: {100 * s['min_dp']:6.3f}%",
                  f"RMS Δp    : {100 * s['rms_dp']:6.3f} {pm} {100 * s['rms_dp_unc']:5.3f} %",
                  f"Same top p: {100 * s['same_top_p']:6.3f} {pm} {100 * s['same_top_p_unc']:5.3f} %"]
        return "\n".join(lines)

    def worst_table(self) -> str:
        rows = [(w.index, w.chunk, w.position, w.kld, _tok(w.target, w.target_text), w.p_a, w.p_b,
                 _tok(w.argmax_a, w.argmax_a_text), _tok(w.argmax_b, w.argmax_b_text),
                 _clip(w.context)) for w in self.worst]
        return _table.text_table(("index", "chunk", "pos", "KLD", "next token", "p_a", "p_b", "argmax a", "argmax b",
                                  "text before"), rows)

    def layer_table(self, n_worst: int = 3) -> str:
        """Per layer: the hidden-state NMSE of B against A, mean and max over the scored
        positions, and at the worst positions."""
        if self.layer_nmse is None:
            return "  (no per-layer divergence: a side is saved logits, or layers=False)"
        ln = self.layer_nmse.astype(np.float64)
        worst = self.worst[:n_worst]
        heads = ["hook", "mean", "max"] + [f"@{w.index}" for w in worst]
        rows = [[h, float(np.nanmean(ln[:, j])), float(np.nanmax(ln[:, j]))]
                + [float(w.layers[j]) if w.layers is not None else math.nan for w in worst]
                for j, h in enumerate(self.layer_hooks)]
        return _table.text_table(heads, rows)

    def __str__(self) -> str:
        out = [self.summary(), "", f"worst {len(self.worst)} position(s) by KLD:", self.worst_table()]
        if self.layer_hooks:
            out += ["", "hidden-state NMSE of B against A (sum((b-a)^2)/sum(a^2) per position):", self.layer_table()]
        return "\n".join(out)

    def __repr__(self) -> str:
        s = self.stats
        return (f"KLDReport(n_tokens={s['n_tokens']}, ppl_a={s['ppl_a']:.4f}, ppl_b={s['ppl_b']:.4f}, "
                f"mean_kld={s['mean_kld']:.4g}, same_top_p={s['same_top_p']:.4f}, rms_dp={s['rms_dp']:.4g})")

    def _repr_html_(self) -> str:
        return "<pre>" + html.escape(str(self)) + "</pre>"

    def to_dict(self) -> dict[str, Any]:
        """Everything as JSON-ready values (non-finite floats as strings)."""
        def num(x):
            if isinstance(x, dict):
                return {str(k): num(v) for k, v in x.items()}
            if isinstance(x, (float, np.floating)):
                return float(x) if math.isfinite(x) else str(float(x))
            if isinstance(x, (np.integer,)):
                return int(x)
            return x
        d = {"a": self.a, "b": self.b, "n_ctx": self.n_ctx, "n_chunks": self.n_chunks, "n_vocab": self.n_vocab,
             "kl_note": self.kl_note, "notes": list(self.notes), **{k: num(v) for k, v in self.stats.items()}}
        d["worst"] = [{k: (num(v) if not isinstance(v, np.ndarray) else [num(float(x)) for x in v])
                       for k, v in vars(w).items()} for w in self.worst]
        if self.layer_nmse is not None:
            d["layers"] = [{"hook": h, "mean_nmse": num(float(np.nanmean(self.layer_nmse[:, j]))),
                            "max_nmse": num(float(np.nanmax(self.layer_nmse[:, j])))}
                           for j, h in enumerate(self.layer_hooks)]
        return d

    # -- plot
    def plot(self, path=None, *, dpi: int = 80):
        """A figure: KLD along the token stream (log scale) with its distribution, and, when
        available, the hidden-state NMSE per layer (mean over positions, and at the 3 worst
        positions). Saved to `path` when given; returns the matplotlib Figure. Needs matplotlib."""
        try:
            import matplotlib

            if path is not None and "matplotlib.pyplot" not in sys.modules:
                matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError as e:
            raise ImportError(f"KLDReport.plot needs matplotlib ({e}): pip install matplotlib") from None
        k = np.asarray(self.per_position["kld"], np.float64)
        floor = 1e-12
        panels = 3 if self.layer_nmse is not None else 2
        fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.2), dpi=dpi)
        ax = axes[0]
        ax.semilogy(np.arange(k.size), np.maximum(k, floor), ".", ms=2)
        ax.set_xlabel("scored position"); ax.set_ylabel("KLD (nats)"); ax.set_title("KL(A || B) per position")
        ax = axes[1]
        ks = np.sort(np.maximum(k, floor))
        ax.semilogx(ks, np.arange(1, ks.size + 1) / ks.size)
        ax.axvline(max(self.mean_kld, floor), color="C3", ls="--", label=f"mean {self.mean_kld:.3g}")
        ax.set_xlabel("KLD (nats)"); ax.set_ylabel("fraction of positions"); ax.set_title("distribution")
        ax.legend(fontsize=8)
        if self.layer_nmse is not None:
            ax = axes[2]
            ln = np.maximum(self.layer_nmse.astype(np.float64), floor)
            x = np.arange(ln.shape[1])
            ax.semilogy(x, np.nanmean(ln, axis=0), "o-", ms=3, label="mean")
            for w in self.worst[:3]:
                if w.layers is not None:
                    ax.semilogy(x, np.maximum(w.layers, floor), ".-", ms=2, lw=0.8, label=f"index {w.index}")
            step = max(1, len(x) // 8)
            ax.set_xticks(x[::step], [str(i) for i in x[::step]])
            ax.set_xlabel("layer (resid_post)"); ax.set_ylabel("NMSE"); ax.set_title("hidden states, B vs A")
            ax.legend(fontsize=7)
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=dpi)
            plt.close(fig)
        return fig


def _tok(t: int, text: str | None) -> str:
    return f"{t} {text!r}" if text is not None else str(t)


def _clip(s: str | None, n: int = 40) -> str:
    if s is None:
        return "?"
    r = repr(s)
    return r if len(r) <= n else "..." + r[-(n - 3):]


# ------------------------------------------------------------------------------------------------
# the computation

def _prepare(a_side: _Side, b_side: _Side, ids_or_text, n_ctx: int | None):
    saved = [s.saved for s in (a_side, b_side) if s.saved is not None]
    ref_saved = saved[0] if saved else None
    if ref_saved is not None:
        if n_ctx is not None and n_ctx != ref_saved.n_ctx:
            raise ValueError(f"n_ctx {n_ctx} differs from the saved logits' n_ctx {ref_saved.n_ctx}")
        n_ctx = ref_saved.n_ctx
    n_ctx = DEFAULT_N_CTX if n_ctx is None else int(n_ctx)
    if ids_or_text is None:
        if ref_saved is None:
            raise ValueError("no text or ids given (only saved logits carry their own)")
        ids = np.asarray(ref_saved.ids[:ref_saved.n_chunks * ref_saved.n_ctx], np.int64)
    elif isinstance(ids_or_text, (str, bytes)):
        tok = a_side.tokenizer() or b_side.tokenizer()
        if tok is None:
            raise ValueError("text needs a tokenizer: give token ids, or a model whose tokenizer works")
        ids = np.asarray(tok.tokenize(ids_or_text, add_special=True), np.int64)
    else:
        ids = np.asarray(ids_or_text, np.int64).reshape(-1)
    for s in saved:
        m = s.n_chunks * s.n_ctx
        if ids.size < m or not np.array_equal(ids[:m], s.ids[:m]):
            raise ValueError(f"the token ids differ from those the saved logits ({s.label}) were computed on")
    infos = [x for x in (_bos_of(a_side), _bos_of(b_side)) if x is not None]
    if len(infos) == 2 and infos[0] != infos[1]:
        raise ValueError(f"A and B disagree on BOS (add_bos, bos): {infos[0]} vs {infos[1]}: not the same vocabulary")
    add_bos, bos = infos[0] if infos else (False, None)
    if a_side.n_vocab != b_side.n_vocab:
        raise ValueError(f"the vocabularies differ in size: A {a_side.n_vocab}, B {b_side.n_vocab}")
    return ids, n_ctx, add_bos and bos is not None, bos


def _window(ids: np.ndarray, start: int, end: int, first: int, bos: int | None):
    """One window as llama.cpp evaluates it: the tokens to feed (the first replaced by BOS when
    the vocabulary adds one) and the targets of the scored positions first .. n_ctx - 2."""
    feed = ids[start:end].copy()
    if bos is not None:
        feed[0] = bos
    return feed, ids[start + first + 1:end]


def _live_rows(side: _Side, feed: np.ndarray, first: int, capture: list[str] | None):
    """Run one window on a live side: the context half without logits, then the scored
    positions in slices; yields (logits [n, V], {hook: [n, ...]} or None) per slice."""
    s = side.session
    s.reset()
    s.forward(feed[:first], logits="none")
    end = feed.size - 1
    for j0 in range(first, end, _SLICE):
        j1 = min(end, j0 + _SLICE)
        if capture:
            t = s.trace(feed[j0:j1], capture=capture + ["logits"])
            yield t.pop("logits"), t
        else:
            yield s.forward(feed[j0:j1]), None


def _slice_stats(la_rows, lb_rows, targets, a_saved, b_saved, rows_saved):
    """Per-position KLD, nll_a, nll_b, argmax_a, argmax_b, nonfinite for one slice.
    la_rows/lb_rows: live logits [n, V] or None (the side is saved; rows_saved index its rows)."""
    n = targets.size
    out = {k: np.empty(n) for k in ("kld", "nll_a", "nll_b")}
    out["argmax_a"] = np.empty(n, np.int64)
    out["argmax_b"] = np.empty(n, np.int64)
    out["nonfinite"] = np.zeros(n, bool)
    v = next((r.shape[1] for r in (la_rows, lb_rows) if r is not None), None) or (a_saved or b_saved).n_vocab
    for r0, r1 in _chunks(n, v):
        tg = targets[r0:r1]
        lp = {}
        for which, rows, sv in (("a", la_rows, a_saved), ("b", lb_rows, b_saved)):
            if rows is not None:
                x = rows[r0:r1].astype(np.float64)
                bad = ~np.isfinite(x).all(axis=1)
                out["nonfinite"][r0:r1] |= bad
                lp[which] = _log_softmax(x)
                out[f"argmax_{which}"][r0:r1] = _argmax_rows(x)
                out[f"nll_{which}"][r0:r1] = -lp[which][np.arange(r1 - r0), tg]
            else:
                sr = rows_saved[r0:r1]
                out[f"argmax_{which}"][r0:r1] = sv.argmax[sr]
                out[f"nll_{which}"][r0:r1] = sv.nll[sr]
                out["nonfinite"][r0:r1] |= ~np.isfinite(sv.nll[sr])
                if sv.logits is not None:  # renormalized in float64: the float16 rounding must not make KL < 0
                    lp[which] = _log_softmax(sv.logits[sr].astype(np.float64))
                else:
                    lp[which] = None
        if lp["a"] is not None:
            out["kld"][r0:r1] = _kl_rows(lp["a"], lp["b"])
        else:  # A saved as top-k: KL over the top-k tokens plus one bucket for the rest (a lower bound)
            sr = rows_saved[r0:r1]
            top = a_saved.top_ids[sr]
            la_top = a_saved.top_logits[sr].astype(np.float64) - a_saved.lse[sr][:, None]
            lb_top = np.take_along_axis(lp["b"], top.astype(np.int64), axis=1)
            with np.errstate(all="ignore"):
                pa_top = np.exp(la_top)
                ra = np.clip(1.0 - pa_top.sum(axis=1), 0.0, 1.0)
                rb = np.clip(1.0 - np.exp(lb_top).sum(axis=1), 0.0, 1.0)
                tail = np.where(ra > 0, ra * (np.log(ra) - np.log(rb)), 0.0)
                k = (pa_top * (la_top - lb_top)).sum(axis=1) + tail
            out["kld"][r0:r1] = np.maximum(k, 0.0)
    out["kld"][out["nonfinite"]] = np.nan
    return out


def _hidden_nmse(ta: Mapping[str, np.ndarray], tb: Mapping[str, np.ndarray], hooks: list[str]) -> np.ndarray:
    """[n, len(hooks)] per-position NMSE of B's hidden states against A's (NaN where not finite)."""
    n = next(iter(ta.values())).shape[0]
    out = np.empty((n, len(hooks)), np.float32)
    with np.errstate(all="ignore"):
        for j, h in enumerate(hooks):
            a = ta[h].reshape(n, -1).astype(np.float64)
            b = tb[h].reshape(n, -1).astype(np.float64)
            e2 = ((b - a) ** 2).sum(axis=1)
            r2 = (a * a).sum(axis=1)
            v = np.where(r2 > 0, e2 / np.where(r2 > 0, r2, 1.0), np.where(e2 == 0, 0.0, np.inf))
            out[:, j] = np.where(np.isfinite(e2) & np.isfinite(r2), v, np.nan)
    return out


def _progress(enabled, total: int):
    from ._cli import Progress, isatty

    on = isatty(sys.stderr) if enabled is None else bool(enabled)
    return Progress("kld", total, on)


ModelLike = Any  # an orc.Model, a spec ('FILE@cpu:float32', a dict or a tuple) or saved logits (path/SavedLogits)


def kld(a: ModelLike, b: ModelLike, ids_or_text: str | Sequence[int] | np.ndarray | None = None,
        n_ctx: int | None = None, *, n_chunks: int | None = None, n_worst: int = 10,
        layers: bool | str | Sequence[str] = True, context_tokens: int = 12, save_a: str | os.PathLike | None = None,
        top_k: int | None = None, progress: bool | None = None) -> KLDReport:
    """KL divergence, perplexities and top-token agreement of B against the reference A over a
    text or token ids, as llama-perplexity --kl-divergence computes them (module docstring).

    a, b: an orc.Model; a model spec: a string 'FILE[@DEVICE[:INDEX][:DTYPE]]' (FILE a .gguf or a
        pinned model name; device auto by default), a dict {"path", "device", "dtype", ...more
        orc.Model keywords such as "fault"} or a tuple (path, device, dtype[, {Model kwargs}]);
        or saved logits (a .npz written by save_logits, or a SavedLogits). Specs are loaded here
        and closed at the end; both sides run in this process, window by window.
    ids_or_text: the text (tokenized with the first model's tokenizer, BOS/EOS as its vocabulary
        asks) or token ids; None to use the ids stored with saved logits.
    n_ctx: the window (default 512, or the saved logits' own); n_chunks: at most this many windows.
    n_worst: how many of the positions with the largest KLD to describe (tokens, text, layers).
    layers: capture the hidden states (True: every blk.*.resid_post; or glob patterns) of both
        sides and report their NMSE per layer at every scored position (needs both sides live).
    save_a: also save A's logits to this .npz (full float16, or the top_k logits): see save_logits.
    progress: a progress bar on stderr (default: when stderr is a terminal).

    Returns a KLDReport. NaN/Inf logits at a position make its KLD NaN (and the statistics NaN):
    they are counted in per_position["nonfinite"], never averaged away.
    """
    a_side, b_side = _Side(a, "a"), _Side(b, "b")
    try:
        if b_side.saved is not None and b_side.saved.logits is None:
            raise ValueError("B cannot be top-k saved logits: its probability of every token A gives mass to is "
                             "needed; save B with top_k=None, or make it the reference A")
        if save_a is not None and a_side.model is None:
            raise ValueError("save_a: A must be a model, not saved logits")
        ids, n_ctx, use_bos, bos = _prepare(a_side, b_side, ids_or_text, n_ctx)
        for sv in (a_side.saved, b_side.saved):
            if sv is not None:  # the windows the saved logits cover, at most
                n_chunks = sv.n_chunks if n_chunks is None else min(n_chunks, sv.n_chunks)
        windows = chunk_windows(ids.size, n_ctx, n_chunks)
        first = n_ctx // 2
        per_win = n_ctx - 1 - first
        notes = []
        hooks = None
        if layers and a_side.model is not None and b_side.model is not None:
            pats = ["blk.*.resid_post"] if layers is True else ([layers] if isinstance(layers, str) else list(layers))
            from .hooks import match_hooks

            ha, hb = match_hooks(a_side.model.hook_names, pats), match_hooks(b_side.model.hook_names, pats)
            if ha != hb:
                notes.append("no per-layer divergence: A and B have different hook points")
            elif not ha:
                raise KeyError(f"layers: no hook point matches {pats}")
            else:
                hooks = ha
        elif layers and (a_side.saved is not None or b_side.saved is not None):
            notes.append("no per-layer divergence: a side is saved logits (hidden states need both models)")
        for s in (a_side, b_side):
            s.open(n_ctx)
        a_keep = _SavedBuilder(top_k, a_side.n_vocab) if save_a is not None else None
        cols: dict[str, list[np.ndarray]] = {k: [] for k in ("kld", "nll_a", "nll_b", "argmax_a", "argmax_b",
                                                             "nonfinite", "chunk", "position", "index", "target")}
        layer_rows: list[np.ndarray] = []
        bar = _progress(progress, len(windows))
        for c, (start, end) in enumerate(windows):
            feed, targets_all = _window(ids, start, end, first, bos if use_bos else None)
            gen_a = _live_rows(a_side, feed, first, hooks) if a_side.model is not None else None
            gen_b = _live_rows(b_side, feed, first, hooks) if b_side.model is not None else None
            for j0 in range(first, n_ctx - 1, _SLICE):
                j1 = min(n_ctx - 1, j0 + _SLICE)
                la, ta = next(gen_a) if gen_a is not None else (None, None)
                lb, tb = next(gen_b) if gen_b is not None else (None, None)
                rows_saved = c * per_win + np.arange(j0 - first, j1 - first)
                tg = targets_all[j0 - first:j1 - first]
                st = _slice_stats(la, lb, tg, a_side.saved, b_side.saved, rows_saved)
                for k, v in st.items():
                    cols[k].append(v)
                cols["chunk"].append(np.full(j1 - j0, c))
                cols["position"].append(np.arange(j0, j1))
                cols["index"].append(start + np.arange(j0, j1))
                cols["target"].append(tg)
                if hooks is not None:
                    layer_rows.append(_hidden_nmse(ta, tb, hooks))
                if a_keep is not None:
                    a_keep.add(la, st["nll_a"], st["argmax_a"])
            bar.update(c + 1)
        bar.close()
        pp = {k: np.concatenate(v) for k, v in cols.items()}
        p_a, p_b = np.exp(-pp["nll_a"]), np.exp(-pp["nll_b"])
        pp["p_a"], pp["p_b"] = p_a, p_b
        pp["p_diff"] = p_b - p_a
        pp["same_top"] = pp["argmax_a"] == pp["argmax_b"]
        stats = llama_statistics(pp["nll_a"], pp["nll_b"], pp["kld"], pp["p_diff"], pp["same_top"])
        n_bad = int(pp["nonfinite"].sum())
        if n_bad:
            notes.append(f"{n_bad} scored position(s) have NaN/Inf logits: their KLD is NaN, and so are the statistics")
        if stats["n_tokens"] < 100:
            notes.append(f"only {stats['n_tokens']} scored tokens: llama.cpp prints no statistics below 100")
        if a_side.saved is not None:
            kl_note = (f"from A's saved float16 logits (renormalized in float64)" if a_side.saved.logits is not None
                       else f"from A's saved top-{a_side.saved.top_k} logits: the top-k tokens plus one bucket for "
                            "the rest, a lower bound of the exact KLD")
        elif b_side.saved is not None:
            kl_note = "from B's saved float16 logits (renormalized in float64)"
        else:
            kl_note = "exact (float64 over the whole vocabulary)"
        layer_nmse = np.concatenate(layer_rows) if layer_rows else None
        tok = a_side.tokenizer() or b_side.tokenizer()
        worst = _worst(pp, layer_nmse, ids, windows, n_worst, tok, context_tokens)
        if a_keep is not None:
            saved = a_keep.build(ids, n_ctx, len(windows), a_side.n_vocab, use_bos, bos, a_side.label)
            _write_saved(save_a, saved)
        return KLDReport(a=a_side.label, b=b_side.label, n_ctx=n_ctx, n_chunks=len(windows), n_vocab=a_side.n_vocab,
                         stats=stats, per_position=pp, worst=worst, layer_hooks=hooks, layer_nmse=layer_nmse,
                         kl_note=kl_note, notes=notes)
    finally:
        a_side.close()
        b_side.close()


def _text(tok, ids) -> str | None:
    if tok is None:
        return None
    try:
        return tok.detokenize([int(i) for i in ids])
    except Exception:  # noqa: BLE001 - ids the tokenizer cannot render
        return None


def _worst(pp, layer_nmse, ids, windows, n, tok, context_tokens) -> list[WorstPosition]:
    k = np.where(np.isnan(pp["kld"]), np.inf, pp["kld"])
    order = np.argsort(-k, kind="stable")[:max(0, n)]
    out = []
    for r in order:
        c, j, idx = int(pp["chunk"][r]), int(pp["position"][r]), int(pp["index"][r])
        start = windows[c][0]
        lo = max(start, idx - context_tokens + 1)
        out.append(WorstPosition(
            chunk=c, position=j, index=idx, kld=float(pp["kld"][r]), target=int(pp["target"][r]),
            argmax_a=int(pp["argmax_a"][r]), argmax_b=int(pp["argmax_b"][r]), p_a=float(pp["p_a"][r]),
            p_b=float(pp["p_b"][r]), target_text=_text(tok, [pp["target"][r]]),
            argmax_a_text=_text(tok, [pp["argmax_a"][r]]), argmax_b_text=_text(tok, [pp["argmax_b"][r]]),
            context=_text(tok, ids[lo:idx + 1]),
            layers=None if layer_nmse is None else layer_nmse[r].astype(np.float64)))
    return out


class _SavedBuilder:
    """Accumulates one live side's scored rows in the compact saved form."""

    def __init__(self, top_k: int | None, n_vocab: int):
        if top_k is not None and not 1 <= top_k <= n_vocab:
            raise ValueError(f"top_k must be in [1, {n_vocab}], got {top_k}")
        self.top_k = top_k
        self.parts: dict[str, list[np.ndarray]] = {"nll": [], "argmax": [], "lse": [], "logits": [], "top_ids": [],
                                                   "top_logits": []}

    def add(self, logits: np.ndarray, nll: np.ndarray, argmax: np.ndarray) -> None:
        x = logits.astype(np.float64)
        with np.errstate(all="ignore"):
            mx = x.max(axis=1, keepdims=True)
            z = x - np.where(np.isfinite(mx), mx, 0.0)
            lse = np.log(np.exp(z).sum(axis=1))
        self.parts["nll"].append(nll)
        self.parts["argmax"].append(argmax.astype(np.int32))
        self.parts["lse"].append(lse)
        if self.top_k is None:
            self.parts["logits"].append(z.astype(np.float16))
        else:
            k = self.top_k
            top = np.argpartition(-np.where(np.isnan(z), -np.inf, z), k - 1, axis=1)[:, :k] if k < z.shape[1] else \
                np.broadcast_to(np.arange(z.shape[1]), z.shape)
            vals = np.take_along_axis(z, top, axis=1)
            o = np.argsort(-vals, axis=1, kind="stable")
            self.parts["top_ids"].append(np.take_along_axis(top, o, axis=1).astype(np.int32))
            self.parts["top_logits"].append(np.take_along_axis(vals, o, axis=1).astype(np.float16))

    def build(self, ids, n_ctx, n_chunks, n_vocab, add_bos, bos, label) -> SavedLogits:
        cat = {k: np.concatenate(v) if v else None for k, v in self.parts.items()}
        import orc

        return SavedLogits(ids=np.asarray(ids[:n_chunks * n_ctx], np.int32), n_ctx=n_ctx, n_chunks=n_chunks,
                           n_vocab=n_vocab, add_bos=bool(add_bos), bos=bos, nll=cat["nll"], argmax=cat["argmax"],
                           lse=cat["lse"], logits=cat["logits"], top_ids=cat["top_ids"], top_logits=cat["top_logits"],
                           label=f"{label}, orc {orc.__version__}")


def save_logits(model: ModelLike, ids_or_text: str | Sequence[int] | np.ndarray, path: str | os.PathLike,
                n_ctx: int | None = None, *, n_chunks: int | None = None, top_k: int | None = None,
                progress: bool | None = None) -> SavedLogits:
    """Run `model` (an orc.Model or a spec, as kld's `a`) over the text's windows and save its
    scored logits to `path` (.npz) for later kld(path, other_model) calls. Returns them.

    Per scored position the file always holds the exact nll of the next token (float64) and the
    argmax, so perplexities, Δp and same_top_p computed from it are exact. The distribution, for
    the KLD, is stored either
      top_k=None: every logit as float16, minus the row maximum (2 bytes x n_vocab per position:
        the top tokens, near 0, keep ~4 significant digits; a logit x below the maximum is off by
        at most |x| / 2048, on tokens whose probability is at most e^-|x| relative to the top).
        The KLD against the file is then within ~1e-6 nats per position of the exact one for
        models that agree closely (tests/test_perplexity.py checks it);
      top_k=K: the K largest logits (float16, minus the maximum) and their ids, with the
        logsumexp of the row in float64. The KLD is then computed over those K tokens plus one
        bucket for all others: a lower bound of the exact KLD, ~6 bytes x K per position instead
        of 2 x n_vocab. It can be well below the exact value when the divergence is spread over
        the tail (SmolLM2, F16 against a Q8_0 copy: 0.95e-3 at K = 64 for an exact 1.25e-3,
        where the full float16 file gave 1.2491e-3 for 1.2488e-3 live).
    """
    side = _Side(model, "model")
    try:
        if side.model is None:
            raise ValueError("save_logits needs a model, not saved logits")
        ids, n_ctx, use_bos, bos = _prepare(side, side, ids_or_text, n_ctx)
        windows = chunk_windows(ids.size, n_ctx, n_chunks)
        first = n_ctx // 2
        side.open(n_ctx)
        keep = _SavedBuilder(top_k, side.n_vocab)
        bar = _progress(progress, len(windows))
        for c, (start, end) in enumerate(windows):
            feed, targets_all = _window(ids, start, end, first, bos if use_bos else None)
            for s_idx, (lg, _) in enumerate(_live_rows(side, feed, first, None)):
                j0 = first + s_idx * _SLICE
                tg = targets_all[j0 - first:j0 - first + lg.shape[0]]
                x = lg.astype(np.float64)
                lp = _log_softmax(x)
                keep.add(lg, -lp[np.arange(tg.size), tg], _argmax_rows(x))
            bar.update(c + 1)
        bar.close()
        saved = keep.build(ids, n_ctx, len(windows), side.n_vocab, use_bos, bos, side.label)
        _write_saved(path, saved)
        saved.path = os.fspath(path)
        return saved
    finally:
        side.close()
