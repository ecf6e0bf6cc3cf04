"""orc.Model and orc.Session: the native types with the conveniences around them.

    m = orc.Model("model.gguf", device="auto")          # "cpu", "cuda", "cuda:1"
    s = orc.Session(m, n_ctx=4096)
    logits = s.forward(ids)                              # float32 [len(ids), n_vocab]
    acts = s.trace(ids, capture=["blk.*.attn_out", "logits"])
    for step in s.generate(ids, max_tokens=32): print(step.token)
"""
from __future__ import annotations

import fnmatch
import html
import os
import sys
from dataclasses import dataclass

import numpy as np

from . import _orc

__all__ = ["Model", "Session", "Step"]


def _parse_device(device: str) -> tuple[str, int]:
    if device == "auto":
        from ._cuda import cuda_available

        return ("cuda", 0) if cuda_available() else ("cpu", 0)
    if device == "cpu":
        return "cpu", 0
    if device == "cuda":
        return "cuda", 0
    if isinstance(device, str) and device.startswith("cuda:"):
        try:
            idx = int(device[5:])
        except ValueError:
            idx = -1
        if idx >= 0:
            return "cuda", idx
    raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', not {device!r}")


class _ProgressBar:
    """A one-line progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, label: str):
        self.label = label
        self.last = -1

    def __call__(self, done: int, total: int) -> None:
        pct = int(100 * done / total) if total else 100
        if pct == self.last:
            return
        self.last = pct
        bar = "#" * (pct // 4)
        sys.stderr.write(f"\r{self.label} [{bar:<25}] {pct:3d}%")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


class _Closing:
    """`with` support for objects with a close()."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Model(_Closing, _orc.Model):
    """A GGUF model loaded onto a device.

    Model(path, device="auto", dtype=None, *, keep_quantized=False, n_threads=0,
          validate=False, progress=None)

    device: "auto" (CUDA when usable, else the CPU reference backend), "cpu", "cuda" or "cuda:N".
    dtype: how the dequantized weights are stored: "float32" (CPU default), "float16" (CUDA
        default) or "bfloat16". On the CPU, float16/bfloat16 weights hold exactly the values the
        GPU stores, and matmul inputs are rounded the same way (round_matmul_inputs), so both
        backends can be compared like for like.
    keep_quantized: also keep the stored quantized blocks on the device (Model.memory() counts them).
    n_threads: CPU threads for loading and the CPU backend (0: all cores).
    validate: scan every weight for NaN/Inf before loading (dequantizing every block) and raise
        orc.GGUFError naming each bad tensor, its first bad element and block, and the count.
        Without it a model with NaN/Inf weights (or block scales), or an all-zero rope_freqs,
        still loads, with one orc.NonFiniteWeightWarning naming them (a cheap scan of the
        scales, always on; see orc.validate).
    progress: True for a progress bar on stderr when it is a terminal, or a
        callable(done_bytes, total_bytes) called while the weights load.
    round_matmul_inputs: CPU only; round activations to the weight dtype before each matmul, as
        the GPU does (default: on for float16/bfloat16 weights on the CPU).
    profile: time each primitive of the forward pass (see Model.profile(); default: $ORC_PROFILE).
    fault: testing only. "raw_as_f16" loads every quantized tensor's stored bytes as if they were
        float16 values (no dequantization): the bug orc was written to catch, for proving that a
        test or `python -m orc diff` notices it. repr() shows it.

    Attributes: path, arch, config (dict: n_layer, n_embd, n_head, n_head_kv, head_dim, n_ff,
    n_vocab, n_ctx_train, rope_theta, rms_eps, ...), device, dtype, metadata, tensors, hook_names,
    tokenizer, closed. Use as a context manager, or close() to free the weights at once.

        m = orc.Model("model.gguf", device="cpu")
        m.tensor("blk.0.attn_q.weight")          # float32 [rows, cols], as the backend holds it
        ids = m.tokenize("Hello")
    """

    def __init__(self, path, device: str = "auto", dtype: str | None = None, *, keep_quantized: bool = False,
                 n_threads: int = 0, validate: bool = False, progress=None, round_matmul_inputs: bool | None = None,
                 fault: str | None = None, profile: bool | None = None):
        path = os.fspath(path)
        self._fault = fault
        if not os.path.exists(path):
            raise FileNotFoundError(f"no such GGUF file: {path!r}")
        dev, idx = _parse_device(device)
        if round_matmul_inputs is None:
            round_matmul_inputs = dev == "cpu" and dtype in ("float16", "bfloat16")
        from .gguf import GGUFFile

        self._gguf = GGUFFile(path)
        self._tokenizer = None
        if validate:
            from .validate import validate_weights

            validate_weights(self._gguf, n_threads)
        if progress is True:
            progress = _ProgressBar(f"loading {os.path.basename(path)}") if sys.stderr.isatty() else None
        super().__init__(path, device=dev, cuda_device=idx, dtype=dtype, keep_quantized=keep_quantized,
                         n_threads=n_threads, round_matmul_inputs=bool(round_matmul_inputs), fault=fault,
                         progress=progress,
                         profile=bool(int(os.environ.get("ORC_PROFILE", "0"))) if profile is None else profile)
        from .validate import warn_nonfinite

        self._nonfinite = warn_nonfinite(self._gguf, n_threads)  # NaN/Inf weights load, with a warning
        self._hook_table = self._hooks()

    # -- the file
    @property
    def metadata(self) -> dict:
        """Every GGUF key/value (scalars as Python numbers/str/bool, arrays as lists or NumPy arrays)."""
        return self._gguf.metadata

    @property
    def tensors(self) -> list:
        """Every tensor in the file, as orc.TensorInfo (name, type, shape, offset, nbytes)."""
        return self._gguf.tensors

    def tensor(self, name: str, raw: bool = False) -> np.ndarray:
        """The weight `name` as this model's backend holds it (dequantized on the model's device,
        in the model's dtype) as float32; raw=True gives the stored GGUF bytes (uint8) instead."""
        if raw:
            return self._gguf.raw(name)
        return super().tensor(name)

    # -- hook points
    @property
    def hook_names(self) -> list[str]:
        """Activation names a trace can capture, in execution order."""
        return [h[0] for h in self._hook_table]

    # -- tokenizer
    @property
    def tokenizer(self):
        """The tokenizer stored in the file (orc.Tokenizer)."""
        if self._tokenizer is None:
            from . import Tokenizer  # provided by orc's tokenizer module

            self._tokenizer = Tokenizer(self.path)
        return self._tokenizer

    def tokenize(self, text: str, add_special: bool = True, special: bool = False) -> list[int]:
        """Token ids of `text` with the file's tokenizer. add_special: add BOS/EOS where the
        vocabulary asks for them; special: also parse control tokens written in the text
        ("<|im_start|>")."""
        return self.tokenizer.tokenize(text, add_special=add_special, special=special)

    def detokenize(self, ids) -> str:
        """The text of token ids (bytes that are not valid UTF-8 become U+FFFD)."""
        return self.tokenizer.detokenize(ids)

    def token_text(self, token_id: int) -> str:
        """The vocabulary entry of one token as stored ("Ġworld", "<0x0A>"), not decoded."""
        return self.tokenizer.token_text(token_id)

    def apply_chat_template(self, messages, add_generation_prompt: bool = True, *, tokenize: bool = False,
                            template: str | None = None):
        """Render [{"role": ..., "content": ...}, ...] with the file's chat template (or the
        built-in `template` by name: chatml, qwen2.5, llama3, gemma3, ...); tokenize=True returns
        the prompt's token ids instead of its text."""
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=add_generation_prompt,
                                                  tokenize=tokenize, template=template)

    @property
    def vocab_size(self) -> int:
        """Rows of the embedding matrix (config["n_vocab"])."""
        return self.config["n_vocab"]

    @property
    def bos(self):
        """The beginning-of-sequence token id, or None."""
        return self.tokenizer.bos

    @property
    def eos(self):
        """The end-of-sequence token id, or None."""
        return self.tokenizer.eos

    def profile(self, reset: bool = True) -> dict:
        """Time spent per primitive of the forward passes since the last call, as
        {name: (calls, seconds)} (load the model with profile=True, or ORC_PROFILE=1).
        Each primitive is bracketed by device synchronisations: the numbers say where the
        time goes, and the profiled run is slower than an unprofiled one."""
        return self._profile(reset=reset)

    @property
    def fault(self) -> str | None:
        """The test-only fault this model was loaded with ("raw_as_f16"), or None."""
        return self._fault

    # -- lifetime
    def close(self) -> None:
        """Free the weights (and GPU memory) now; sessions of this model then raise orc.OrcError."""
        super().close()
        g = getattr(self, "_gguf", None)
        if g is not None:
            g.close()

    def __repr__(self):
        if self.closed:
            return f"<orc.Model {os.path.basename(self.path or '?')} closed>"
        c = self.config
        fault = f" FAULT={self._fault}" if self._fault else ""
        return (f"<orc.Model {os.path.basename(self.path)} arch={c['arch']} layers={c['n_layer']} "
                f"embd={c['n_embd']} vocab={c['n_vocab']} device={self.device} dtype={self.dtype}{fault}>")

    def _repr_html_(self):
        esc = html.escape
        if self.closed:
            return f"<b>orc.Model</b> {esc(str(self.path))} (closed)"
        c = self.config
        mem = self.memory()
        types: dict[str, list[int]] = {}
        for t in self.tensors:
            e = types.setdefault(t.type, [0, 0])
            e[0] += 1
            e[1] += t.nbytes
        name = self.metadata.get("general.name")
        head = (f"<b>orc.Model</b> <code>{esc(os.path.basename(self.path))}</code>"
                + (f" ({esc(str(name))})" if name else "")
                + f" on <b>{esc(self.device)}</b>, weights in {esc(self.dtype)}")
        if self._fault:
            head += f' <b style="color:#c00">FAULT: {esc(self._fault)} (test-only: weights are garbage)</b>'
        summary = [("architecture", c["arch"]), ("layers", c["n_layer"]), ("embedding", c["n_embd"]),
                   ("heads (q / kv) x dim", f"{c['n_head']} / {c['n_head_kv']} x {c['head_dim']}"),
                   ("feed-forward", c["n_ff"]), ("vocabulary", c["n_vocab"]),
                   ("training context", c["n_ctx_train"]),
                   ("stored tensors", ", ".join(f"{k}: {n}" for k, (n, _) in sorted(types.items()))),
                   ("in the file", f"{sum(b for _, b in types.values()) / 2**20:.1f} MiB of tensor data"),
                   ("on the device", f"{mem['weights'] / 2**20:.1f} MiB of weights"),
                   ("hook points", f"{len(self._hook_table)} (Model.hook_names)")]
        rows = "".join(f"<tr><th style='text-align:left'>{esc(k)}</th><td style='text-align:left'>{esc(str(v))}"
                       f"</td></tr>" for k, v in summary)
        cfg = "".join(f"<tr><td style='text-align:left'>{esc(k)}</td><td style='text-align:left'>{esc(str(v))}"
                      f"</td></tr>" for k, v in c.items())
        return (f"<div>{head}<table>{rows}</table>"
                f"<details><summary>config</summary><table>{cfg}</table></details></div>")


@dataclass
class Step:
    """One generated token: its id, the logits it was sampled from (when asked), the text it adds."""

    token: int
    position: int
    logits: np.ndarray | None = None
    text: str | None = None


class Session(_Closing, _orc.Session):
    """A KV cache over a model: forward passes, traces, sampling and generation.

    Session(model, n_ctx=None, n_batch=512, kv_dtype=None)

    n_ctx: capacity in tokens (default: the model's training context, at most 4096).
    n_batch: tokens per chunk of a long forward; results do not depend on it.
    kv_dtype: "float32" (CPU default), "float16" (CUDA default) or "bfloat16".
    graphs: on CUDA, replay one-token steps (a decode loop) as a recorded CUDA graph: the same
        kernels with far fewer launches (decode ~1.6x faster on an H100). Experimental, off by
        default: graph steps agree with eager steps to ~1e-4 relative, not bitwise, for a reason
        not yet understood (docs/perf.md).

    The session remembers the tokens it has seen (n_past, history): each forward/trace appends
    to the KV cache; rewind(n), reset() and fork() manage it.

        s = orc.Session(m, n_ctx=256)
        logits = s.forward(m.tokenize("Hello"))        # float32 [n, n_vocab]
        nxt = s.sample(logits[-1], temperature=0.7, seed=1)
        acts = s.trace([nxt], capture=["blk.*.resid_post", "logits"])
    """

    def __init__(self, model: Model, n_ctx: int | None = None, n_batch: int = 512, kv_dtype: str | None = None,
                 graphs: bool = False):
        if n_ctx is None and isinstance(model, _orc.Model) and not model.closed:
            n_ctx = min(int(model.config["n_ctx_train"]), 4096)
        super().__init__(model, n_ctx=4096 if n_ctx is None else n_ctx, n_batch=n_batch, kv_dtype=kv_dtype,
                         graphs=graphs)
        self._history: list[int] = []
        self._sampler = None

    # -- forward passes
    def forward(self, ids, logits: str = "all"):
        """Run token `ids` at positions n_past, n_past + 1, ... and append them to the KV cache.

        ids: a sequence of ints or a 1-D integer array, shape [n] (n >= 1), each in [0, n_vocab).
        logits: which logits to return (computing fewer saves the output projection):
            "all"  -> float32 ndarray [len(ids), n_vocab], row i predicts the token after ids[i]
            "last" -> float32 ndarray [n_vocab], the prediction after the last id
            "none" -> None (fill the KV cache only, e.g. for a prompt you will continue)
        Returns the logits as asked; n_past grows by len(ids).

        Token ids out of range, an empty input, or more tokens than the n_ctx - n_past positions
        left raise ValueError and leave the session unchanged. The GIL is released while the
        backend works; Ctrl-C interrupts between chunks.

            logits = s.forward([1, 2, 3])            # [3, n_vocab]
            nxt = s.forward([4], logits="last")      # [n_vocab]
        """
        out, _ = self._forward(ids, logits)
        self._history.extend(int(t) for t in np.asarray(ids).reshape(-1))
        return out

    def _resolve(self, capture) -> list[int]:
        names = self.model.hook_names
        if isinstance(capture, str):
            capture = [capture]
        chosen = []
        for pat in capture:
            hits = [i for i, n in enumerate(names) if fnmatch.fnmatchcase(n, pat)]
            if not hits:
                raise KeyError(f"no hook point matches {pat!r}; the model has {names[:4]}... "
                               f"(see Model.hook_names)")
            chosen.extend(hits)
        return sorted(set(chosen))

    def trace(self, ids, capture=("*",), logits: str = "all") -> dict[str, np.ndarray]:
        """Forward `ids` (appending to the KV cache, like forward) and return the activations
        whose names match the glob patterns in `capture`, as {name: float32 ndarray} with the
        token position on axis 0; per-head activations (q, k, v, ..., attn_out) are shaped
        [n, heads, head_dim]. Logits are under "logits" when captured."""
        idx = self._resolve(capture)
        _, caps = self._forward(ids, "none", idx)
        self._history.extend(int(t) for t in np.asarray(ids).reshape(-1))
        table = self.model._hook_table
        out = {}
        for i in idx:
            name, width, heads, hd = table[i]
            a = caps[i]
            out[name] = a.reshape(a.shape[0], heads, hd) if heads else a
        return out

    # -- cache management
    def rewind(self, n: int) -> None:
        """Forget the last n tokens (0 <= n <= n_past)."""
        super().rewind(n)
        if n:
            del self._history[-n:]

    def reset(self) -> None:
        """Forget every token: n_past becomes 0 and the history empty; the capacity stays."""
        super().reset()
        self._history.clear()

    def fork(self) -> "Session":
        """A new session with a copy of this one's KV cache, history and sampler state."""
        s = super().fork()
        s._history = list(self._history)
        s._sampler = self._sampler.copy() if self._sampler is not None else None
        return s

    @property
    def history(self) -> list[int]:
        """The token ids in the KV cache, oldest first."""
        return list(self._history)

    # -- sampling
    def sample(self, logits, *, seed: int | None = None, **params) -> int:
        """Sample a token from `logits` (float32 [n_vocab]) with the session's sampler; logits of
        another length than the model's n_vocab raise ValueError naming both.

        Parameters as orc.Sampler (temperature, top_k, top_p, min_p, repeat_penalty,
        frequency_penalty, presence_penalty, penalty_last_n); the penalties look at the session's
        history. `seed` (re)starts the sampler's RNG; without one the session's RNG continues.
        """
        from . import Sampler

        old = self._sampler
        if seed is not None or old is None:
            self._sampler = Sampler(seed=0 if seed is None else seed, **params)
        elif params and any(old.params.get(k) != v for k, v in params.items()):
            # new parameters, same random stream
            self._sampler = Sampler(seed=old.seed, **{**old.params, **params})
            self._sampler.set_state(old.get_state())
        return self._sampler.sample(logits, history=self._history, n_vocab=self.model.config["n_vocab"])

    def generate(self, ids, max_tokens: int, *, stop=None, return_logits: bool = False, seed: int = 0, **params):
        """Feed `ids`, then sample up to `max_tokens` tokens, yielding a Step for each.

        stop: token ids and/or strings that end generation (default: the tokenizer's EOS/EOT,
        when there is one). Sampling parameters as Session.sample (temperature=0 is greedy);
        the same seed gives the same tokens on every run and platform. Ctrl-C stops promptly.
        """
        ids = [int(t) for t in np.asarray(ids).reshape(-1)]
        if max_tokens < 0:
            raise ValueError(f"max_tokens must be >= 0, got {max_tokens}")
        if not ids and self.n_past == 0:
            raise ValueError("generate needs prompt ids (the session is empty)")
        need = self.n_past + len(ids) + max_tokens
        if need > self.n_ctx:
            raise ValueError(f"prompt ({len(ids)}) + max_tokens ({max_tokens}) after {self.n_past} cached tokens "
                             f"needs {need} positions but n_ctx is {self.n_ctx}")
        from . import Sampler

        model = self.model
        stop_ids, stop_texts = set(), []
        tok = None
        try:
            tok = model.tokenizer
        except Exception:  # a model without a usable tokenizer still generates ids
            tok = None
        if stop is None:
            stop = [t for t in (getattr(tok, "eos", None), getattr(tok, "eot", None)) if t is not None]
        for s in stop:
            if isinstance(s, str):
                stop_texts.append(s)
            else:
                stop_ids.add(int(s))
        sampler = Sampler(seed=seed, **params)
        decoder = tok.decode_stream() if tok is not None and hasattr(tok, "decode_stream") else None
        if not ids:
            raise ValueError("generate needs prompt ids")
        logits = self.forward(ids, logits="last")
        text_so_far = ""
        for _ in range(max_tokens):
            token = sampler.sample(logits, history=self._history)
            text = decoder.push(token) if decoder is not None else None
            step = Step(token=token, position=self.n_past, logits=logits.copy() if return_logits else None, text=text)
            yield step
            if token in stop_ids:
                return
            if stop_texts and text:
                text_so_far += text
                if any(s in text_so_far for s in stop_texts):
                    return
            logits = self.forward([token], logits="last")

    # -- display
    def __repr__(self):
        if self.closed:
            return "<orc.Session closed>"
        return f"<orc.Session n_past={self.n_past} n_ctx={self.n_ctx} model={self.model!r}>"

    def _repr_html_(self):
        esc = html.escape
        if self.closed:
            return "<b>orc.Session</b> (closed)"
        m = self.model
        pct = 100.0 * self.n_past / self.n_ctx if self.n_ctx else 0.0
        bar = (f"<div style='width:200px;height:8px;border:1px solid #888;display:inline-block'>"
               f"<div style='width:{pct:.1f}%;height:100%;background:#48c'></div></div>")
        out = (f"<div><b>orc.Session</b> {self.n_past} / {self.n_ctx} tokens cached {bar} on "
               f"<b>{esc(str(m.device))}</b>, model <code>{esc(os.path.basename(m.path or '?'))}</code>")
        tail = self._history[-32:]
        if tail:
            try:
                text = esc(m.detokenize(tail))
            except Exception:  # noqa: BLE001 - a model without a usable tokenizer still runs ids
                text = ""
            more = "... " if len(self._history) > len(tail) else ""
            out += (f"<br>last tokens: <code>{more}{esc(str(tail))}</code>"
                    + (f"<br>text: <code>{'...' if more else ''}{text}</code>" if text else ""))
        return out + "</div>"
