"""orc.check_invariance and `python -m orc invariance`: on the CPU backend, prefill in one call,
token by token, other chunk sizes, two calls, fork, rewind-and-redo (and a batch, with
Model.forward_batch) give bitwise the same activations; a planted difference is caught and located."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import orc
from orc import synth
from orc.invariance import compare_traces

from realmodels import real_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(orc.__file__)))
IDS = list(range(3, 30))  # 27 tokens: longer than gemma3's sliding window of 8


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("inv")
    return {f"{a}-{t}": synth.make_model(d / f"{a}-{t}.gguf", synth.spec_for(a, t))
            for a, t in (("llama", "Q4_K"), ("qwen2", "Q8_0"), ("qwen3", "Q8_0"), ("gemma3", "Q8_0"))}


@pytest.mark.parametrize("name", ["llama-Q4_K", "qwen2-Q8_0", "qwen3-Q8_0", "gemma3-Q8_0"])
@pytest.mark.parametrize("dtype", [None, "float16"])
def test_cpu_backend_is_bitwise_invariant(files, name, dtype):
    with orc.Model(files[name], device="cpu", dtype=dtype) as m:
        r = orc.check_invariance(m, IDS)
    assert r.ok and not r.inexact, str(r)
    assert r.exact[:8] == ["token by token", "n_batch=1", "n_batch=2", "n_batch=3", "n_batch=7",
                           "two calls split at 13", "fork at 13", "rewind to 13 and redo"]
    assert all(c.hooks_compared == len(m.hook_names) for c in r.comparisons if c.checked)
    assert "(bitwise)" in r.headline()
    if not hasattr(orc.Model, "forward_batch"):
        assert r.not_checked == ["inside a batch (Model.forward_batch)"]
        assert "no Model.forward_batch" in str(r) and "8/8 comparisons exact" in r.headline()


class PerturbsContinuations(orc.Session):
    """A planted bug: every call that continues a non-empty cache gets its first row of
    blk.1.attn_out slightly wrong (as a wrong KV-cache offset would)."""

    def trace(self, ids, capture=("*",), logits="all"):
        past = self.n_past
        out = super().trace(ids, capture, logits)
        if past > 0 and "blk.1.attn_out" in out:
            x = out["blk.1.attn_out"].copy()
            x[0, 2, 5] += 1e-3
            out["blk.1.attn_out"] = x
        return out


def test_a_planted_difference_in_the_second_chunk_is_caught_and_located(files):
    with orc.Model(files["llama-Q4_K"], device="cpu") as m:
        r = orc.check_invariance(m, IDS, split=10, session_cls=PerturbsContinuations)
    assert not r.ok and "NOT INVARIANT" in str(r)
    assert set(r.inexact) == {"token by token", "two calls split at 10", "fork at 10", "rewind to 10 and redo"}
    for name in r.inexact:
        c = r[name]
        assert c.first_hook == "blk.1.attn_out" and c.max_hook == "blk.1.attn_out" and c.hooks_differ == 1
        assert c.max_index == (2, 5) and c.max_abs == pytest.approx(1e-3, rel=1e-2)
    assert r["token by token"].first_position == 1  # the second call
    assert r["two calls split at 10"].first_position == 10 and r["fork at 10"].max_position == 10
    assert r["rewind to 10 and redo"].first_position == 10
    assert all(r[n].exact for n in ("n_batch=1", "n_batch=2", "n_batch=3", "n_batch=7")), "one call each"
    assert "first difference at blk.1.attn_out position 10" in str(r)
    # a tolerance lets it pass, and says so
    with orc.Model(files["llama-Q4_K"], device="cpu") as m:
        loose = orc.check_invariance(m, IDS, split=10, session_cls=PerturbsContinuations, tol=1e-6)
    assert loose.ok and loose.inexact and "within tolerance" in str(loose)


def test_compare_traces_reports_nan_and_shapes():
    ref = {"embd": np.zeros((3, 4), np.float32), "logits": np.ones((3, 5), np.float32)}
    got = {"embd": ref["embd"].copy(), "logits": ref["logits"].copy()}
    got["logits"][2, 1] = np.nan
    c = compare_traces("x", ref, got, slice(0, 3), 0.0)
    assert not c.ok and c.max_abs == np.inf and (c.max_hook, c.max_position, c.max_index) == ("logits", 2, (1,))
    both = {k: v.copy() for k, v in got.items()}
    assert compare_traces("y", got, both, slice(0, 3), 0.0).exact, "the same NaN bits are equal"
    neg = {"embd": -ref["embd"], "logits": ref["logits"]}
    assert not compare_traces("z", ref, neg, slice(0, 3), 0.0).exact, "-0.0 is not 0.0 bitwise"
    c = compare_traces("w", ref, {"embd": np.zeros((2, 4), np.float32), "logits": ref["logits"]}, slice(0, 3), 0.0)
    assert not c.ok and "shape" in c.note
    assert not compare_traces("v", ref, {"embd": ref["embd"]}, slice(0, 3), 0.0).checked


class EmulatedBatch(orc.Model):
    """Model.forward_batch as the contract describes it, emulated one sequence at a time, so that
    the batch comparison's plumbing is tested before the native one exists. `leak` plants a bug:
    a sequence's logits pick up a little of its neighbour's."""
    leak = 0.0
    shape = "list"

    def forward_batch(self, seqs, logits="all", capture=None):
        outs = []
        for ids in seqs:
            with orc.Session(self, n_ctx=len(ids)) as s:
                outs.append(s.trace(ids, capture=capture or ["logits"]))
        if self.leak:
            outs[1]["logits"] = outs[1]["logits"] + self.leak
        if self.shape == "odd":
            return {"logits": [o["logits"] for o in outs]}
        return outs


def test_batch_comparison_against_the_forward_batch_contract(files):
    with EmulatedBatch(files["qwen2-Q8_0"], device="cpu") as m:
        name = "inside a batch (Model.forward_batch)"
        assert orc.check_invariance(m, IDS)[name].exact
        m.shape, m.leak = "list", 1e-4
        r = orc.check_invariance(m, IDS, n_batch=())
        assert not r.ok and r.inexact == [name] and r[name].first_hook == "logits"
        m.shape, m.leak = "odd", 0.0
        r = orc.check_invariance(m, IDS, n_batch=())
        assert not r.ok and "expected one {hook: array} per sequence" in r[name].note
        assert orc.check_invariance(m, IDS, batch=False)[name].note == "batch=False"


def test_native_forward_batch_is_bitwise_invariant_on_the_cpu(files):
    for name in ("llama-Q4_K", "gemma3-Q8_0"):
        with orc.Model(files[name], device="cpu") as m:
            r = orc.check_invariance(m, IDS)
        assert r.ok and not r.not_checked, str(r)


def test_real_model_is_bitwise_invariant_on_the_cpu():
    path = real_model("smollm2-135m-instruct")
    with orc.Model(path, device="cpu") as m:
        ids = m.tokenize("The quick brown fox jumps over the lazy dog, twice.")
        r = orc.check_invariance(m, ids, capture=["blk.*.resid_post", "blk.*.attn_out", "logits"], n_batch=(1, 5))
    assert r.ok and len(r.exact) == 7 and not r.not_checked, str(r)  # the batch too


@pytest.mark.gpu
def test_gpu_invariance_report(files):
    """On a GPU bitwise equality is not expected (kernels pick their reduction order by shape);
    the default tolerance is a per-position NMSE of 1e-6."""
    with orc.Model(files["llama-Q4_K"], device="cuda") as m:
        r = orc.check_invariance(m, IDS)
    assert r.tol == 1e-6
    for c in r.comparisons:
        if c.checked:
            assert c.worst_nmse < 1e-4, str(r)


def orc_cli(*args):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "orc", *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=120)


def test_cli_invariance(files):
    path = files["gemma3-Q8_0"]
    r = orc_cli("invariance", path, "Hello world, this is orc speaking", "--n-batch", "1,4")
    assert r.returncode == 0, r.stderr
    assert "token by token: exact" in r.stdout and "n_batch=4: exact" in r.stdout and r.stdout.rstrip().endswith(
        "OK: invariant")
    doc = json.loads(orc_cli("invariance", path, "3 4 5 6 7 8", "--raw-ids", "--json", "--capture", "logits",
                             "--split", 2).stdout)
    assert doc["ok"] and "fork at 2" in doc["exact"] and doc["comparisons"][0]["hooks_compared"] == 1
    for args, needle in ((["7", "--raw-ids"], "at least 2"), (["3 4 5", "--raw-ids", "--split", "3"], "--split"),
                         (["hi", "--n-batch", "x"], "--n-batch"), (["hi", "--capture", "nothing.*"], "no hook point")):
        e = orc_cli("invariance", path, *args)
        assert e.returncode == 2 and needle in e.stderr and len(e.stderr.strip().splitlines()) == 1, e.stderr
