"""The regression-suite primitives on the CUDA backend (issue 16): batched forwards, activation
patching and the attention-probabilities hook, each against the GPU's own solo / unpatched runs
and against the CPU reference (the resid_post patching test runs on both backends in
tests/test_patching.py). `pytest -m gpu`; skipped without a GPU.

Why batches are not bitwise on the GPU: a batch is one forward of the concatenated tokens, so
its products have another row count than the solo runs', and cuBLAS picks its algorithm (and
with it the summation order) by shape; the fused one-token kernels serve <= 8 tokens only.
So: float32 weights, NMSE <= 1e-10 against the solo runs (the issue asks for 1e-6); float16
weights, NMSE <= 1e-6; the fast path (weights="quantized"), NMSE <= 1e-5, its bound against the
reference: a solo run of <= 8 tokens takes the fused GEMV (float32 activations) where the batch
takes the float16 tiles and cuBLAS (activations rounded to float16).
"""
import numpy as np
import pytest

import orc
from orc import synth
from orc.compare import nmse

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def path(tmp_path_factory):
    return synth.make_model(tmp_path_factory.mktemp("wf_gpu") / "qwen2.gguf", synth.spec_for("qwen2", "Q8_0"))


def seqs():
    rng = np.random.default_rng(7)
    return [[int(t) for t in rng.integers(0, 300, n)] for n in (9, 1, 17, 4)]


@pytest.mark.parametrize("dtype,weights,tol", [("float32", "dequantized", 1e-10), ("float16", "dequantized", 1e-6),
                                               ("float16", "quantized", 1e-5)])
def test_forward_batch_on_gpu_is_the_solo_runs(path, dtype, weights, tol):
    with orc.Model(path, device="cuda", dtype=dtype, weights=weights) as m:
        qs = seqs()
        solo = [orc.Session(m, n_ctx=32).forward(q) for q in qs]
        for n_batch in (512, 5):
            got = m.forward_batch(qs, n_batch=n_batch)
            for g, a in zip(got, solo):
                assert g.shape == a.shape and np.isfinite(g).all()
                assert nmse(g, a) <= tol, (n_batch, nmse(g, a))
                top2 = np.sort(a, axis=-1)[:, -2:]
                decided = (top2[:, 1] - top2[:, 0]) > 1e-2 * np.abs(a).max()
                np.testing.assert_array_equal(g.argmax(-1)[decided], a.argmax(-1)[decided])
        res = m.forward_batch(qs, logits="none", capture=["blk.*.resid_post", "logits"])
        for acts, q, a in zip(res, qs, solo):
            assert acts["logits"].shape == a.shape and nmse(acts["logits"], a) <= tol


def test_patch_callable_on_gpu_and_cpu_agree(path):
    """A callable patch (scale layer 0's attention output by 0.5) changes the logits, the same way
    on both backends (float32: NMSE <= 1e-9 between them)."""
    ids = list(range(3, 15))
    out = {}
    for dev in ("cpu", "cuda"):
        with orc.Model(path, device=dev, dtype="float32") as m:
            s = orc.Session(m, n_ctx=16, kv_dtype="float32")
            plain = s.forward(ids)
            s.reset()
            out[dev] = s.forward(ids, patch={"blk.0.attn_out": lambda a, name: a * 0.5})
            assert nmse(out[dev], plain) > 1e-6, "the patch changed nothing"
    assert nmse(out["cuda"], out["cpu"]) <= 1e-9, nmse(out["cuda"], out["cpu"])


def test_attn_probs_on_gpu_match_cpu(path):
    """blk.i.attn_probs [n_head, n, keys] on CUDA equals the CPU's to float32 rounding; rows sum
    to 1 and the causal mask holds."""
    ids = list(range(7, 27))
    caps = {}
    for dev in ("cpu", "cuda"):
        with orc.Model(path, device=dev, dtype="float32") as m:
            caps[dev] = orc.Session(m, n_ctx=32, kv_dtype="float32").trace(ids, capture=["blk.*.attn_probs"])
    assert caps["cuda"].keys() == caps["cpu"].keys() and caps["cpu"]
    for k, ref in caps["cpu"].items():
        g = caps["cuda"][k]
        assert g.shape == ref.shape and np.isfinite(g).all(), k
        assert nmse(g, ref) <= 1e-9, (k, nmse(g, ref))
        np.testing.assert_allclose(g.sum(-1), 1.0, atol=1e-5)
        n = g.shape[1]
        assert np.all(g[:, np.arange(n)[:, None] < np.arange(g.shape[2])[None, :]] == 0), "causal mask"
