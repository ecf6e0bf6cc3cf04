"""Hook-point names: the one list of the steps of a decoder layer, in execution order.

A hook point is a named intermediate activation that `Session.trace()` can hand back. Every
array has the token position on axis 0. The names, in the order a forward pass computes them:

    embd
    blk.<i>.<step>      for each layer i = 0, 1, ..., for each step of HOOK_STEPS
    output_norm
    logits

HOOK_STEPS is the per-layer steps and their order, read from the C layer program's single table
(csrc/model/steps.h). Steps in OPTIONAL_STEPS exist only for some architectures (qwen3 and
gemma3 normalize q and k per head before RoPE; gemma3 also normalizes the attention and FFN
outputs before adding them to the residual stream; mixture-of-experts layers have router
steps instead of ffn_gate/ffn_up/ffn_act). ON_REQUEST_STEPS (attn_probs: [n_head, n_q, n_k]
attention weights; moe_experts) are computed only when captured by name.

How the names map to the two references users compare against:

=====================  =====================================  =====================================
orc hook               llama.cpp eval-callback name           Hugging Face transformers
=====================  =====================================  =====================================
embd                   inp_embd (gemma: inp_scaled)           hidden_states[0] (gemma: scaled)
blk.i.attn_norm        attn_norm-i                            input_layernorm output
blk.i.q / k / v        Qcur-i / Kcur-i / Vcur-i (first one)   q_proj / k_proj / v_proj output
blk.i.q_norm / k_norm  Qcur_normed-i / Kcur_normed-i          q_norm / k_norm output
blk.i.q_rope / k_rope  Qcur-i / Kcur-i (after ggml_rope_ext)  apply_rotary_pos_emb output
blk.i.attn_probs       kq_soft_max-i                          attentions (output_attentions=True)
blk.i.attn_out         kqv_out-i                              o_proj input
blk.i.attn_proj        attn_out-i (in some archs)             o_proj output
blk.i.attn_post_norm   attn_post_norm-i                       post_attention_layernorm (gemma3)
blk.i.resid_mid        ffn_inp-i                              residual after attention
blk.i.ffn_norm         ffn_norm-i                             post_attention_layernorm (llama,
                                                              qwen2), pre_feedforward_layernorm
blk.i.ffn_gate / up    ffn_gate-i / ffn_up-i                  gate_proj / up_proj output
blk.i.ffn_act          ffn_swiglu-i, ffn_silu-i, ffn_gelu-i   act_fn(gate) * up
blk.i.ffn_out          ffn_out-i                              down_proj output
blk.i.ffn_post_norm    ffn_post_norm-i                        post_feedforward_layernorm (gemma3)
blk.i.resid_post       l_out-i                                hidden_states[i + 1], except the
                                                              last layer (see below)
output_norm            result_norm                            hidden_states[n_layer]
logits                 result_output                          logits
=====================  =====================================  =====================================

llama.cpp names vary by architecture and version (the graph builders name tensors themselves) and
several tensors share a name (Qcur-i is reported before and after RoPE): treat the column as a
guide. In transformers, `hidden_states` has n_layer + 1 entries and the last one is replaced by
the final-norm output, so the last layer's resid_post has no hidden_states entry (use a forward
hook on the last decoder layer). `hf_hidden_states_index()` encodes this rule.
"""
from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from typing import NamedTuple

from . import _orc

__all__ = [
    "HOOK_STEPS", "CORE_STEPS", "OPTIONAL_STEPS", "ON_REQUEST_STEPS", "PRE_HOOKS", "POST_HOOKS",
    "HookName", "parse_hook", "hook_sort_key", "hook_order", "hook_names", "match_hooks", "pattern_matches",
    "llama_cpp_name", "hf_hidden_states_index", "hook_weights",
]

#: The steps of one decoder layer, in execution order (named `blk.<i>.<step>`): read from the C
#: layer program's own table (csrc/model/steps.h), so the two cannot disagree.
_STEP_TABLE: tuple[tuple[str, bool, bool], ...] = tuple(tuple(t) for t in _orc.hook_steps())
HOOK_STEPS: tuple[str, ...] = tuple(name for name, _, _ in _STEP_TABLE)

#: Steps computed only when captured by name (they cost extra work): glob patterns such as
#: "blk.*" do not match them unless the pattern names the step ("blk.*.attn_probs").
ON_REQUEST_STEPS: frozenset[str] = frozenset(name for name, on_request, _ in _STEP_TABLE if on_request)

#: The steps every dense architecture has (on-request steps aside); mixture-of-experts layers
#: have moe_router, moe_topk_ids, moe_topk_w instead of ffn_gate, ffn_up, ffn_act.
CORE_STEPS: tuple[str, ...] = tuple(name for name, on_request, every in _STEP_TABLE if every and not on_request)

#: Steps present only in some architectures.
OPTIONAL_STEPS: frozenset[str] = frozenset(HOOK_STEPS) - frozenset(CORE_STEPS) - ON_REQUEST_STEPS

#: Hooks computed before the first layer, and after the last one.
PRE_HOOKS: tuple[str, ...] = ("embd",)
POST_HOOKS: tuple[str, ...] = ("output_norm", "logits")

_STEP_RANK = {s: r for r, s in enumerate(HOOK_STEPS)}
_PRE_RANK = {s: r for r, s in enumerate(PRE_HOOKS)}
_POST_RANK = {s: r for r, s in enumerate(POST_HOOKS)}
_LAYER_RE = re.compile(r"blk\.(\d+)\.(.+)\Z")

# Sections of the sort key.
_PRE, _LAYERS, _POST, _UNKNOWN = 0, 1, 2, 3


class HookName(NamedTuple):
    """A parsed hook name: `layer` is None for the hooks outside the layers; `known` says
    whether the step is one orc defines (HOOK_STEPS, PRE_HOOKS, POST_HOOKS)."""
    name: str
    layer: int | None
    step: str
    known: bool


def parse_hook(name: str) -> HookName:
    """Split 'blk.3.ffn_up' into layer 3, step 'ffn_up'. Never raises on unknown names."""
    if not isinstance(name, str):
        raise TypeError(f"hook names are str, got {type(name).__name__}: {name!r}")
    m = _LAYER_RE.match(name)
    if m:
        step = m.group(2)
        return HookName(name, int(m.group(1)), step, step in _STEP_RANK)
    return HookName(name, None, name, name in _PRE_RANK or name in _POST_RANK)


def hook_sort_key(name: str) -> tuple[int, int, int]:
    """Sort key putting hook names in execution order (see hook_order)."""
    h = parse_hook(name)
    if h.layer is not None:
        return (_LAYERS, h.layer, _STEP_RANK.get(h.step, len(HOOK_STEPS)))
    if name in _PRE_RANK:
        return (_PRE, 0, _PRE_RANK[name])
    if name in _POST_RANK:
        return (_POST, 0, _POST_RANK[name])
    return (_UNKNOWN, 0, 0)


def hook_order(names: Iterable[str]) -> list[str]:
    """The given hook names in execution order.

    `embd` first; then layer by layer (numerically: blk.10 after blk.9), each layer's steps in
    HOOK_STEPS order; then `output_norm`, `logits`. Names orc does not know keep their input order
    (the sort is stable): an unknown step of layer i ('blk.3.my_probe') goes after the known steps
    of layer i and before layer i + 1; an unknown name outside the layers ('rope_freqs') goes
    after everything else. Duplicates are kept.
    """
    return sorted(names, key=hook_sort_key)


def hook_names(n_layer: int, steps: Iterable[str] = CORE_STEPS) -> list[str]:
    """Every hook name of a model with `n_layer` layers, in execution order.

    `steps` selects the per-layer steps (default: CORE_STEPS; pass HOOK_STEPS or CORE_STEPS plus
    the optional steps an architecture has). Raises ValueError for a step not in HOOK_STEPS.
    """
    if n_layer < 0:
        raise ValueError(f"n_layer must be >= 0, got {n_layer}")
    steps = list(steps)
    unknown = [s for s in steps if s not in _STEP_RANK]
    if unknown:
        raise ValueError(f"unknown layer steps {unknown}; the steps are {list(HOOK_STEPS)}")
    steps.sort(key=_STEP_RANK.__getitem__)
    return [*PRE_HOOKS, *(f"blk.{i}.{s}" for i in range(n_layer) for s in steps), *POST_HOOKS]


def pattern_matches(name: str, pattern: str) -> bool:
    """Does glob `pattern` select hook `name`? `*` matches across dots; an ON_REQUEST_STEPS
    hook is selected only when the pattern's last dotted part names its step literally
    ('blk.*.attn_probs' selects it, 'blk.*' and '*' do not)."""
    if not fnmatch.fnmatchcase(name, pattern):
        return False
    h = parse_hook(name)
    return h.step not in ON_REQUEST_STEPS or pattern.rsplit(".", 1)[-1] == h.step


def match_hooks(names: Iterable[str], patterns: str | Iterable[str]) -> list[str]:
    """The names matching any of the glob patterns ('blk.*.attn_out', 'logits'), in execution
    order, each once (see pattern_matches). `*` matches across dots, so 'blk.1*.q' matches
    blk.1.q and blk.12.q."""
    pats = [patterns] if isinstance(patterns, str) else list(patterns)
    seen = set()
    out = []
    for n in names:
        if n not in seen and any(pattern_matches(n, p) for p in pats):
            seen.add(n)
            out.append(n)
    return hook_order(out)


_LLAMA_CPP = {
    "attn_norm": "attn_norm", "q": "Qcur", "k": "Kcur", "v": "Vcur",
    "q_norm": "Qcur_normed", "k_norm": "Kcur_normed", "q_rope": "Qcur", "k_rope": "Kcur",
    "attn_probs": "kq_soft_max", "attn_out": "kqv_out", "attn_proj": "attn_out", "attn_post_norm": "attn_post_norm",
    "resid_mid": "ffn_inp", "ffn_norm": "ffn_norm", "ffn_gate": "ffn_gate", "ffn_up": "ffn_up",
    "ffn_act": "ffn_swiglu", "ffn_out": "ffn_out", "ffn_post_norm": "ffn_post_norm",
    "resid_post": "l_out",
}


def llama_cpp_name(name: str) -> str | None:
    """The llama.cpp eval-callback tensor name that usually holds the same values
    ('blk.3.resid_mid' -> 'ffn_inp-3'), or None where there is none. A guide, not a contract:
    llama.cpp's graph builders name tensors per architecture (see the table in this module)."""
    h = parse_hook(name)
    if h.layer is not None:
        base = _LLAMA_CPP.get(h.step)
        return f"{base}-{h.layer}" if base else None
    return {"embd": "inp_embd", "output_norm": "result_norm", "logits": "result_output"}.get(name)


def hf_hidden_states_index(name: str, n_layer: int) -> int | None:
    """Index into Hugging Face `output_hidden_states=True` hidden_states holding this hook's
    values, or None: 0 for embd, i + 1 for blk.i.resid_post (i < n_layer - 1), n_layer for
    output_norm (transformers replaces the last entry by the final-norm output)."""
    h = parse_hook(name)
    if name == "embd":
        return 0
    if name == "output_norm":
        return n_layer
    if h.step == "resid_post" and h.layer is not None and h.layer < n_layer - 1:
        return h.layer + 1
    return None


# The GGUF tensors each step reads (weights and biases), in the order it uses them.
_STEP_WEIGHTS = {
    "attn_norm": ("attn_norm.weight",), "q": ("attn_q.weight", "attn_q.bias"),
    "k": ("attn_k.weight", "attn_k.bias"), "v": ("attn_v.weight", "attn_v.bias"),
    "q_norm": ("attn_q_norm.weight",), "k_norm": ("attn_k_norm.weight",),
    "attn_proj": ("attn_output.weight", "attn_output.bias"), "attn_post_norm": ("post_attention_norm.weight",),
    "ffn_norm": ("ffn_norm.weight",), "ffn_gate": ("ffn_gate.weight",), "ffn_up": ("ffn_up.weight",),
    "ffn_out": ("ffn_down.weight",), "ffn_post_norm": ("post_ffw_norm.weight",),
}


def hook_weights(name: str, tensor_names: Iterable[str]) -> list[str]:
    """The GGUF tensors (among `tensor_names`, the file's) that the computation of hook `name`
    reads: 'blk.0.q' -> ['blk.0.attn_q.weight', 'blk.0.attn_q.bias'] where present; 'embd' ->
    token_embd.weight; 'logits' -> output.weight, or token_embd.weight when the output is tied.
    Steps that read no weight (attention, residual adds, activations) give []."""
    have = set(tensor_names)
    h = parse_hook(name)
    if h.layer is not None:
        want = [f"blk.{h.layer}.{t}" for t in _STEP_WEIGHTS.get(h.step, ())]
    elif name == "embd":
        want = ["token_embd.weight"]
    elif name == "output_norm":
        want = ["output_norm.weight"]
    elif name == "logits":
        want = ["output.weight"] if "output.weight" in have else ["token_embd.weight"]
    else:
        want = []
    return [t for t in want if t in have]
