"""Regression suite on real trained weights: orc's forward pass against the HF goldens of
tests/golden/real/, on the CPU backend and (marked gpu) on CUDA.

Models: every golden in tests/golden/real/. Full models come from orc.fixtures (skipped, saying
why, when not cached); sliced ones (tools/gguf_slice.py, small enough for the device machine) are
found in the model cache or rebuilt from their source with the recipe the golden records.

Written against the public API of shared/DESIGN.md (orc.Model, orc.Session.forward, Session.trace);
the whole module skips until orc.Model exists.
"""
import numpy as np
import pytest

import orc
from realmodels import CPU_FP32, check_summary, golden, golden_names, real_model, sliced_model, summarize_forward

if not hasattr(orc, "Model"):
    pytest.skip("orc.Model is not built yet (the model code of issue 9)", allow_module_level=True)

# fp16 weights + fp32 accumulation: HF itself moves by NMSE <= 1.1e-6 when its weights are rounded to
# fp16 (meta["fp16_weight_study"]); these bounds leave room for kernel rounding and are to be
# tightened with the first measured numbers.
# lse_atol: the float16 path's logsumexp over gemma3's 262k logits moves with float32 summation
# order alone: long_list went from <= 0.3 (device run 3) to 0.43 (run 4) when only the order of
# the attention's q.k sums changed, while the float32 GPU path of the same kernels stayed within
# 1e-2 (GPU_FP32): float16 rounding noise of this prompt, not a kernel error.
GPU_FP16 = dict(nmse_max=1e-4, lse_atol=0.6, margin=0.1)
# float32 weights and KV cache on the GPU: the arithmetic itself, as tight as the CPU's.
GPU_FP32 = dict(nmse_max=1e-8, lse_atol=1e-2, margin=1e-3)
HIDDEN_REL = {"cpu": 1e-5, "cuda": 1e-2}

# The 700+ token prompts on the CPU backend of a 2-core CI machine: only on the sliced models
# (gemma3-270m-L6 still crosses the 512-token window on its five local layers); on the GPU always.
CPU_PROMPTS = ("raw_short", "chat", "raw_long")


def _model_path(name):
    g = golden(name)
    return real_model(g.meta["fixture"]) if "fixture" in g.meta else sliced_model(name)


def _cases():
    for name in golden_names():
        g = golden(name)
        sliced = "recipe" in g.meta
        for p in g.prompts:
            if p.name in CPU_PROMPTS or sliced:
                marks = [] if p.name in CPU_PROMPTS else [pytest.mark.slow]
                yield pytest.param(name, p.name, "cpu", marks=marks, id=f"{name}-{p.name}-cpu")
            yield pytest.param(name, p.name, "cuda", marks=[pytest.mark.gpu], id=f"{name}-{p.name}-cuda")
            yield pytest.param(name, p.name, "cuda-f32", marks=[pytest.mark.gpu], id=f"{name}-{p.name}-cuda-f32")


@pytest.mark.parametrize("name,prompt,device", list(_cases()))
def test_logits_match_hf(name, prompt, device):
    g = golden(name)
    pg = g.prompt(prompt)
    f32 = device == "cuda-f32"
    m = orc.Model(str(_model_path(name)), device="cuda" if f32 else device, dtype="float32" if f32 else None)
    s = orc.Session(m, n_ctx=len(pg.ids) + 8, kv_dtype="float32" if f32 else None)
    summary = summarize_forward(s.forward, pg.ids, g.subset_ids, pg.sub_pos)
    tol = {"cpu": CPU_FP32, "cuda": GPU_FP16, "cuda-f32": GPU_FP32}[device]
    rep = check_summary(pg, summary, **tol)
    print(f"{name}/{prompt}/{device}: {rep}")


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
@pytest.mark.parametrize("name", golden_names())
def test_residual_stream_matches_hf(name, device):
    """embd, every blk.i.resid_post and output_norm at the last position of the short prompt."""
    g = golden(name)
    pg = g.prompt("raw_short")
    m = orc.Model(str(_model_path(name)), device=device)
    s = orc.Session(m, n_ctx=len(pg.ids) + 8)
    if not hasattr(s, "trace"):
        pytest.skip("Session.trace not implemented yet")
    acts = s.trace(pg.ids, capture=["embd", "blk.*.resid_post", "output_norm"])
    for row, hook in enumerate(g.meta["hidden_rows"]):
        got = np.asarray(acts[hook])[-1]
        want = pg.hidden_last[row]
        rel = float(np.abs(got - want).max() / np.abs(want).max())
        assert rel <= HIDDEN_REL[device], f"{hook}: max |diff| / max |HF| = {rel:.2e}"


@pytest.mark.parametrize("name", [n for n in golden_names() if any(p.name == "chat" for p in golden(n).prompts)])
def test_greedy_continuation_matches_hf(name):
    """HF generated with min_new_tokens (EOS suppressed while it had not produced all tokens):
    the same procedure here, with orc's logits."""
    if not hasattr(orc, "Tokenizer"):
        pytest.skip("needs orc.Tokenizer for the EOS ids")
    g = golden(name)
    pg = g.prompt("chat")
    m = orc.Model(str(_model_path(name)), device="cpu")
    s = orc.Session(m, n_ctx=len(pg.ids) + len(pg.greedy) + 8)
    eos = [t for t in (m.tokenizer.eos, getattr(m.tokenizer, "eot", None)) if t is not None]
    logits = s.forward(pg.ids, "last")
    got = []
    for _ in range(len(pg.greedy)):
        logits[eos] = -np.inf
        got.append(int(np.argmax(logits)))
        logits = s.forward([got[-1]], "last")
    # compare up to the first step whose HF margin is too small to be decisive
    n = next((i for i, mg in enumerate(pg.greedy_margin) if mg < 0.05), len(pg.greedy))
    assert got[:n] == pg.greedy[:n].tolist()
