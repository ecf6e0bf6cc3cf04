"""The HF goldens of tests/golden/real/: internal consistency (no model needed), the comparison
helper on synthetic logits, and, when gemma3-270m is cached, an independent NumPy forward pass
written from docs/gemma3.md that must reproduce them."""
import math

import numpy as np
import pytest

from orc import fixtures
from realmodels import (PromptGolden, check_logits, golden, golden_names, load_tool, real_model, sliced_model,
                        summarize)

GOLDENS = golden_names()


def test_goldens_exist():
    assert "gemma3-270m" in GOLDENS


@pytest.mark.parametrize("name", GOLDENS)
def test_golden_is_consistent(name):
    g = golden(name)
    m = g.meta
    n_vocab = m["n_vocab"]
    s = g.subset_ids
    assert s.size == min(4096, n_vocab) and np.all(np.diff(s) > 0) and s[0] >= 0 and s[-1] < n_vocab
    if "fixture" in m:
        assert m["sha256"] == fixtures.info(m["fixture"]).sha256, "golden made on another file than the pinned one"
    else:
        assert m["recipe"]["layers"] == m["n_layer"] and m["source_golden"].endswith(".npz")
    assert {p.name for p in g.prompts} >= {"raw_short", "raw_long", "long_list"}
    for p in g.prompts:
        T = len(p.ids)
        assert T > 0 and p.ids.min() >= 0 and p.ids.max() < n_vocab
        assert p.top_ids.shape == p.top_logits.shape == (T, 64)
        assert np.all(np.diff(p.top_logits, axis=1) <= 0), "top-64 not in descending order"
        np.testing.assert_array_equal(p.argmax, p.top_ids[:, 0])
        # the normalizer is at least the max logit and at most max + log(n_vocab)
        assert np.all(p.lse >= p.top_logits[:, 0] - 1e-4)
        assert np.all(p.lse <= p.top_logits[:, 0] + math.log(n_vocab) + 1e-4)
        assert np.isfinite(p.sub_logits).all() and np.isfinite(p.hidden_last).all()
        assert p.hidden_last.shape == (m["n_layer"] + 2, m["n_embd"])
        assert p.sub_logits.shape == (len(p.sub_pos), s.size) and p.sub_pos.max() < T
        # where a top-64 id is also in the subset, the two stored logits are the same number
        col = {int(t): j for j, t in enumerate(s)}
        n_common = 0
        for r, pos in enumerate(p.sub_pos):
            for tid, val in zip(p.top_ids[pos], p.top_logits[pos]):
                if int(tid) in col:
                    assert p.sub_logits[r, col[int(tid)]] == val
                    n_common += 1
        if p.name == "chat":
            assert p.greedy is not None and len(p.greedy) == 16 and np.all(p.greedy_margin >= 0)
        if p.orig_ids is not None:
            assert len(p.orig_ids) == T
    long = g.prompt("long_list")
    assert len(long.ids) > 512, "the long prompt must outgrow gemma3's 512-token window"


def _synthetic(T=12, V=300, seed=0):
    rng = np.random.default_rng(seed)
    lg = (rng.standard_normal((T, V)) * 3).astype(np.float32)
    subset = np.sort(rng.choice(V, 64, replace=False)).astype(np.int32)
    s = summarize(lg, subset, np.arange(T))
    pg = PromptGolden(name="syn", text="", ids=np.arange(T), argmax=s["argmax"], top_ids=s["top_ids"],
                      top_logits=s["top_logits"], lse=s["lse"], sub_pos=s["sub_pos"], sub_logits=s["sub_logits"],
                      hidden_last=np.zeros((2, 2), np.float32))
    return lg, subset, pg


def test_check_logits_accepts_the_same_and_nearly_the_same():
    lg, subset, pg = _synthetic()
    assert check_logits(pg, subset, lg)["nmse_sub"] == 0.0
    noisy = lg + np.random.default_rng(1).standard_normal(lg.shape).astype(np.float32) * 1e-5
    rep = check_logits(pg, subset, noisy)
    assert 0 < rep["nmse_sub"] < 1e-10


def test_check_logits_rejects_what_it_should():
    lg, subset, pg = _synthetic()
    with pytest.raises(AssertionError, match="NMSE"):
        check_logits(pg, subset, lg + np.random.default_rng(2).standard_normal(lg.shape).astype(np.float32) * 0.3)
    shifted = lg.copy()
    shifted[5] += 0.05  # a constant shift: argmax and NMSE barely move, the normalizer does
    with pytest.raises(AssertionError, match="logsumexp"):
        check_logits(pg, subset, shifted, nmse_max=1e-3)
    swapped = lg.copy()
    i = int(np.argmax(pg.margin))
    a, b = pg.top_ids[i, 0], pg.top_ids[i, 1]
    swapped[i, [a, b]] = swapped[i, [b, a]]
    with pytest.raises(AssertionError, match=f"argmax differs at 1 decisive positions, first {i}"):
        check_logits(pg, subset, swapped, nmse_max=1.0, lse_atol=1.0)
    bad = lg.copy()
    bad[3, 17] = np.nan
    with pytest.raises(AssertionError, match="non-finite logit at position 3, token 17"):
        check_logits(pg, subset, bad)
    with pytest.raises(AssertionError, match="shape"):
        check_logits(pg, subset, lg[:-1])


@pytest.fixture(scope="module")
def gemma3_ref():
    path = real_model("gemma3-270m")
    ref = load_tool("gemma3_numpy_ref")
    return ref, ref.Gemma3(path)


@pytest.mark.parametrize("prompt", ["raw_short", "chat"])
def test_numpy_gemma3_reproduces_the_hf_golden(gemma3_ref, prompt):
    """docs/gemma3.md's conventions, implemented in NumPy from the GGUF, give HF's numbers."""
    ref, m = gemma3_ref
    g = golden("gemma3-270m")
    i = [p.name for p in g.prompts].index(prompt)
    z = {f"p{i}_{k}": getattr(g.prompts[i], k) for k in ("ids", "sub_pos", "sub_logits", "hidden_last", "argmax")}
    z["subset_ids"] = g.subset_ids
    r = ref.compare(m, z, i)
    assert r["nmse_sub"] < 1e-10 and r["hidden_rel"] < 1e-5, r
    # and a convention broken on purpose is caught by the same golden
    bad = ref.compare(m, z, i, local_base=1e6)
    assert bad["nmse_sub"] > 1e3 * max(r["nmse_sub"], 1e-12), bad


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in GOLDENS if "recipe" in golden(n).meta])
def test_sliced_file_is_reproducible(name):
    """The sliced file the golden was made on is found in the cache or rebuilt, with the same sha256."""
    p = sliced_model(name)
    assert fixtures.sha256_file(p) == golden(name).meta["sha256"]


@pytest.mark.slow
def test_harness_passes_a_correct_forward_and_fails_a_wrong_one():
    """The regression suite's machinery (summarize_forward in chunks + check_summary at the CPU
    tolerance) run with the NumPy reference as the candidate, on the sliced gemma3 and its
    745-token prompt: it must pass, and fail once a convention is broken."""
    from realmodels import CPU_FP32, check_summary, summarize_forward
    ref = load_tool("gemma3_numpy_ref")
    g = golden("gemma3-270m-L6")
    m = ref.Gemma3(sliced_model("gemma3-270m-L6"))
    pg = g.prompt("long_list")

    def session(**opt):
        seen = []

        def forward(chunk):  # a stateless model behind a KV-cache-like interface: recompute the prefix
            seen.extend(int(t) for t in chunk)
            _, hid = ref.forward(m, seen, positions_out=np.arange(len(seen) - len(chunk), len(seen)), **opt)
            return ref.logits_of(m, hid)
        return forward

    rep = check_summary(pg, summarize_forward(session(), pg.ids, g.subset_ids, pg.sub_pos, chunk=256), **CPU_FP32)
    assert rep["nmse_sub"] < 1e-10 and rep["argmax_wrong"] == []
    with pytest.raises(AssertionError, match="NMSE"):
        check_summary(pg, summarize_forward(session(swa=False), pg.ids, g.subset_ids, pg.sub_pos, chunk=256),
                      **CPU_FP32)
