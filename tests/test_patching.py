"""Activation patching: orc.compare.patch_bisect and `orc diff --bisect`.

The bisection logic runs now, on tests/numpy_lm.py's NumPy decoder (a run is a callable
run(patch) -> trace). The tests on orc's own models use Session.trace(..., patch=), the native
patch support the C core is gaining; until it is there they are skipped (the guard below).
"""
import inspect
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import numpy_lm
import orc
from orc import synth
from orc.compare import patch_bisect

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(orc.__file__)))
TOKENS = np.random.default_rng(3).integers(0, numpy_lm.VOCAB, 12)


# ------------------------------------------------------------------------------------------------
# the bisection, on the NumPy decoder

@pytest.fixture
def four_layers(monkeypatch):
    monkeypatch.setattr(numpy_lm, "N_LAYER", 4)
    return numpy_lm.healthy_weights(0)


def _run(w, counter=None):
    def run(patch):
        if counter is not None:
            counter.append(sorted(patch or {}))
        fns = {k: (lambda x, v=v: np.array(v, x.dtype)) for k, v in (patch or {}).items()}
        return numpy_lm.forward(w, TOKENS, patch=fns)[1]
    return run


def _broken(w, name):
    """w with one weight matrix replaced by its quantized bytes read as float16 (as raw_as_f16)."""
    bad = numpy_lm.bytes_as_fp16_weights(w)
    return dict(w, **{name: bad[name]})


def test_bisect_names_the_layer_and_the_hook_where_b_goes_wrong(four_layers):
    w = four_layers
    # harmless noise in layer 0 (beyond first_divergence's tolerance) and the real fault in layer 2
    wb = _broken(w, "blk.2.attn_q")
    wb["blk.0.ffn_up"] = w["blk.0.ffn_up"] * np.float32(1.02)
    calls = []
    b = patch_bisect(_run(w), _run(wb, calls), tol=1e-6)
    assert b.unpatched.hook == "blk.0.ffn_up", "first_divergence points at the noise"
    assert b and b.hook == "blk.2.resid_post" and b.layer == 2
    assert b.segment == ("blk.1.resid_post", "blk.2.resid_post")
    assert b.culprit.hook == "blk.2.q", "given A's input to layer 2, B first differs at its q projection"
    assert {t.point: t.fixed for t in b.tried} == {"blk.3.resid_post": True, "blk.1.resid_post": False,
                                                   "blk.2.resid_post": True}
    assert len(calls) == 1 + 3, "one unpatched run and log2(4) + 1 patched ones"
    assert "disappears when B's blk.2.resid_post is replaced by A's, not with blk.1.resid_post" in str(b)
    assert "in layer 2" in b.headline() and "B first differs at blk.2.q" in b.headline()
    scan = patch_bisect(_run(w), _run(wb), tol=1e-6, search="scan")
    assert scan.hook == "blk.2.resid_post" and [t.point for t in scan.tried] == [f"blk.{i}.resid_post"
                                                                                  for i in range(4)]
    assert [t.fixed for t in scan.tried] == [False, False, True, True]
    assert scan.tried[1].first_after == "blk.2.q" and scan.tried[3].first_after is None
    # A given as a trace, and the JSON form
    d = patch_bisect(_run(w)(None), _run(wb), tol=1e-6).to_dict()
    assert d["hook"] == "blk.2.resid_post" and d["culprit"]["hook"] == "blk.2.q"
    json.dumps(d)


def test_bisect_fault_in_layer_0_and_after_the_last_layer(four_layers):
    w = four_layers
    b = patch_bisect(_run(w), _run(_broken(w, "blk.0.ffn_down")), tol=1e-6)
    assert b.hook == "blk.0.resid_post" and b.segment == (None, "blk.0.resid_post") and b.culprit.hook == "blk.0.ffn_out"
    out = patch_bisect(_run(w), _run(_broken(w, "output")), tol=1e-6)
    assert out.diverged and not out and out.hook is None and "persists" in out.headline()
    same = patch_bisect(_run(w), _run(w))
    assert not same.diverged and not same.tried and "nothing to bisect" in str(same)


def test_bisect_argument_errors(four_layers):
    run = _run(four_layers)
    with pytest.raises(ValueError, match="search"):
        patch_bisect(run, run, search="binary")
    with pytest.raises(KeyError, match="no patch point"):
        patch_bisect(run, _run(_broken(four_layers, "output")), points="blk.*.nothing")
    with pytest.raises(TypeError, match="run_b"):
        patch_bisect(run, 42)


# ------------------------------------------------------------------------------------------------
# on orc's models (native patching)

@pytest.fixture(scope="module")
def one_quantized_layer(tmp_path_factory):
    """Float32 weights except blk.1.attn_q.weight, stored as Q8_0: with fault="raw_as_f16" only
    that tensor is garbage, so the fault is in layer 1 and nowhere else."""
    def edit(md, tensors):
        for i, (name, t, shape, data) in enumerate(tensors):
            if name == "blk.1.attn_q.weight":
                arr = np.frombuffer(data, np.float32).reshape(shape)
                tensors[i] = (name, "Q8_0", shape, synth.quantize(arr, "Q8_0"))
    return synth.make_model(tmp_path_factory.mktemp("patch") / "m.gguf",
                            synth.spec_for("llama", "F32", n_layer=3), edit=edit)


@pytest.mark.parametrize("device,weights", [("cpu", "dequantized"),
                                            pytest.param("cuda", "dequantized", marks=pytest.mark.gpu),
                                            pytest.param("cuda", "quantized", marks=pytest.mark.gpu)])
def test_patching_every_resid_post_of_layer_i_gives_the_other_runs_later_hooks(one_quantized_layer, device, weights):
    """Bitwise on either backend: a patched run launches the same kernels as the run it copies
    from (a patched hook turns the fusions around it off; 12 tokens take no one-token fusion)."""
    with orc.Model(one_quantized_layer, device=device, dtype="float32", weights=weights) as m:
        p1, p2 = list(range(5, 17)), list(range(40, 52))
        ta = orc.Session(m, n_ctx=16).trace(p1)
        for i in range(m.config["n_layer"]):
            point = f"blk.{i}.resid_post"
            tb = orc.Session(m, n_ctx=16).trace(p2, capture=["*"], patch={point: ta[point]})
            later = [h for h in m.hook_names if orc.hooks.hook_sort_key(h) > orc.hooks.hook_sort_key(point)]
            for h in later:
                assert np.array_equal(tb[h], ta[h]), (point, h)
            assert not np.array_equal(tb[f"blk.{i}.q"], ta[f"blk.{i}.q"]), "before the patch point B is itself"


def test_bisect_finds_the_planted_fault(one_quantized_layer):
    ids = list(range(5, 17))
    with orc.Model(one_quantized_layer, device="cpu") as good, \
            orc.Model(one_quantized_layer, device="cpu", fault="raw_as_f16") as bad:
        b = patch_bisect(good, bad, ids)
    assert b.hook == "blk.1.resid_post" and b.culprit.hook == "blk.1.q", str(b)
    assert [t.fixed for t in b.tried if t.point == "blk.0.resid_post"] == [False]


def orc_cli(*args):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "orc", *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=120)


def test_cli_diff_bisect(one_quantized_layer):
    r = orc_cli("diff", one_quantized_layer, "5 6 7 8 9 10 11 12", "--raw-ids", "--a", "cpu", "--b", "cpu",
                "--b-fault", "raw_as_f16", "--bisect")
    assert r.returncode == 1, r.stderr
    assert "bisect (A's activations patched into B):" in r.stdout
    assert "disappears when B's blk.1.resid_post is replaced by A's" in r.stdout and "blk.1.q" in r.stdout
    doc = json.loads(orc_cli("diff", one_quantized_layer, "5 6 7 8", "--raw-ids", "--a", "cpu", "--b", "cpu",
                             "--b-fault", "raw_as_f16", "--bisect", "--json").stdout)
    assert doc["bisect"]["hook"] == "blk.1.resid_post" and doc["bisect"]["culprit"]["hook"] == "blk.1.q"
