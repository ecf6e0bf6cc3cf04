"""orc.hooks and orc.compare on synthetic arrays and a tiny NumPy decoder (tests/numpy_lm.py).

Metrics are checked against slow pure-Python twins; first_divergence against bugs planted at a
known hook and position; diagnose against the failure modes it exists for (quantized bytes used
as FP16 weights, quantization codes used as weights) and against healthy logits.
"""
import math
import random

import numpy as np
import pytest

import numpy_lm
from orc import compare, hooks
from orc.compare import compare_logits, diagnose, first_divergence, hook_order

# --------------------------------------------------------------------------------------------
# hooks

BRIEF_CORE = ["attn_norm", "q", "k", "v", "q_rope", "k_rope", "attn_out", "attn_proj", "resid_mid", "ffn_norm",
              "ffn_gate", "ffn_up", "ffn_act", "ffn_out", "resid_post"]


def test_hook_steps_are_the_documented_execution_order():
    assert list(hooks.CORE_STEPS) == BRIEF_CORE
    s = list(hooks.HOOK_STEPS)
    assert set(s) == set(BRIEF_CORE) | hooks.OPTIONAL_STEPS | hooks.ON_REQUEST_STEPS and len(s) == len(set(s))
    assert hooks.ON_REQUEST_STEPS == {"attn_probs", "moe_experts"}
    # optional steps sit where the architectures compute them
    assert s.index("k") < s.index("q_norm") < s.index("k_norm") < s.index("q_rope")
    assert s.index("attn_proj") < s.index("attn_post_norm") < s.index("resid_mid")
    assert s.index("ffn_out") < s.index("ffn_post_norm") < s.index("resid_post")


def test_hook_order_restores_execution_order_of_a_real_trace():
    _, trace = numpy_lm.forward(numpy_lm.healthy_weights(), np.arange(5))
    names = list(trace)  # the model inserts them in execution order
    assert names == hooks.hook_names(numpy_lm.N_LAYER)
    for seed in range(5):
        shuffled = names[:]
        random.Random(seed).shuffle(shuffled)
        assert hook_order(shuffled) == names


def test_hook_order_layers_sort_numerically_and_unknowns_stay_stable():
    names = ["blk.10.q", "logits", "weird2", "blk.3.zz", "blk.9.resid_post", "blk.3.aa", "blk.3.q",
             "blk.2.zz", "weird1", "embd", "blk.3.q_norm", "output_norm", "blk.3.attn_post_norm", "blk.3.resid_post"]
    assert hook_order(names) == [
        "embd", "blk.2.zz",
        "blk.3.q", "blk.3.q_norm", "blk.3.attn_post_norm", "blk.3.resid_post", "blk.3.zz", "blk.3.aa",
        "blk.9.resid_post", "blk.10.q", "output_norm", "logits", "weird2", "weird1"]
    assert compare.hook_order is hooks.hook_order


def test_hook_names_match_hooks_and_reference_names():
    names = hooks.hook_names(3, hooks.HOOK_STEPS)
    assert len(names) == 1 + 3 * len(hooks.HOOK_STEPS) + 2
    assert hooks.hook_names(1, ["k", "q"]) == ["embd", "blk.0.q", "blk.0.k", "output_norm", "logits"]
    with pytest.raises(ValueError, match="unknown layer steps"):
        hooks.hook_names(2, ["q", "qkv"])
    assert hooks.match_hooks(names, ["logits", "blk.*.attn_out"]) == [
        "blk.0.attn_out", "blk.1.attn_out", "blk.2.attn_out", "logits"]
    assert hooks.parse_hook("blk.12.ffn_up") == hooks.HookName("blk.12.ffn_up", 12, "ffn_up", True)
    assert hooks.parse_hook("blk.1.mine").known is False
    assert hooks.llama_cpp_name("blk.3.resid_mid") == "ffn_inp-3"
    assert hooks.llama_cpp_name("blk.0.attn_out") == "kqv_out-0"
    assert hooks.llama_cpp_name("logits") == "result_output"
    # transformers: hidden_states[0] = embeddings, [i + 1] = layer i output, [n_layer] = final norm
    assert [hooks.hf_hidden_states_index(n, 3) for n in
            ["embd", "blk.0.resid_post", "blk.1.resid_post", "blk.2.resid_post", "output_norm", "blk.0.q"]] == \
        [0, 1, 2, None, 3, None]


# --------------------------------------------------------------------------------------------
# compare_logits against a slow twin

def _slow_metrics(a, b, k):
    """Per-position metrics written out with Python floats and math, one token at a time."""
    out = []
    for ra, rb in zip(a.tolist(), b.tolist()):
        err = sum((x - y) ** 2 for x, y in zip(ra, rb))
        ref = sum(y * y for y in rb)

        def logsm(r):
            m = max(r)
            lse = m + math.log(sum(math.exp(x - m) for x in r))
            return [x - lse for x in r]

        la, lb = logsm(ra), logsm(rb)
        kl = sum(math.exp(y) * (y - x) for x, y in zip(la, lb))
        top = lambda r: set(sorted(range(len(r)), key=lambda i: -r[i])[:k])  # noqa: E731
        out.append(dict(nmse=err / ref, max_abs=max(abs(x - y) for x, y in zip(ra, rb)),
                        max_rel=max(abs(x - y) for x, y in zip(ra, rb)) / max(abs(y) for y in rb),
                        argmax_a=max(range(len(ra)), key=ra.__getitem__),
                        argmax_b=max(range(len(rb)), key=rb.__getitem__),
                        topk_overlap=len(top(ra) & top(rb)) / k, kl=kl, err=err, ref=ref))
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_compare_logits_matches_slow_twin(dtype):
    rng = np.random.default_rng(3)
    b = (rng.standard_normal((6, 50)) * 3).astype(dtype)
    a = (b.astype(np.float64) + rng.standard_normal((6, 50)) * np.array([0, 0.01, 0.1, 0.5, 1, 3])[:, None]).astype(dtype)
    r = compare_logits(a, b, k=5)
    slow = _slow_metrics(a.astype(np.float64), b.astype(np.float64), 5)
    for key in ["nmse", "max_abs", "max_rel", "topk_overlap", "kl"]:
        np.testing.assert_allclose(r.per_position[key], [s[key] for s in slow], rtol=1e-9, atol=1e-12, err_msg=key)
    for key in ["argmax_a", "argmax_b"]:
        assert r.per_position[key].tolist() == [s[key] for s in slow]
    assert r.per_position["top1_agree"].tolist() == [s["argmax_a"] == s["argmax_b"] for s in slow]
    assert r.nmse == pytest.approx(sum(s["err"] for s in slow) / sum(s["ref"] for s in slow), rel=1e-12)
    assert r.kl_max == pytest.approx(max(s["kl"] for s in slow), rel=1e-9)
    assert r.top1_agreement == pytest.approx(np.mean([s["argmax_a"] == s["argmax_b"] for s in slow]))
    assert r.per_position["nmse"][0] == 0 and r.per_position["kl"][0] == 0
    assert r.per_position["kl"][5] > r.per_position["kl"][2] > 0


def test_compare_logits_chunking_gives_the_same_answer(monkeypatch):
    rng = np.random.default_rng(4)
    b = rng.standard_normal((37, 300))
    a = b + 0.1 * rng.standard_normal(b.shape)
    whole = compare_logits(a, b, k=7)
    monkeypatch.setattr(compare, "_CHUNK_ELEMS", 1000)  # 3 rows per chunk
    chunked = compare_logits(a, b, k=7)
    for key, v in whole.per_position.items():
        np.testing.assert_allclose(chunked.per_position[key], v, rtol=1e-12, err_msg=key)
    assert chunked.nmse == pytest.approx(whole.nmse, rel=1e-12)


def test_nmse_is_normalized_by_the_reference():
    b = np.random.default_rng(5).standard_normal((3, 20))
    assert compare_logits(2 * b, b).nmse == pytest.approx(1.0)  # ||2b - b||^2 / ||b||^2
    assert compare_logits(b, 2 * b).nmse == pytest.approx(0.25)
    assert compare.nmse(2 * b, b) == pytest.approx(1.0)


def test_zero_reference_is_guarded():
    z = np.zeros((2, 10))
    same = compare_logits(z, z)
    assert same.nmse == 0 and same.ok
    off = compare_logits(z + 1e-3, z)
    assert off.nmse == math.inf and not off.ok and off.per_position["nmse"].tolist() == [math.inf] * 2
    assert compare.nmse(z, z) == 0 and compare.nmse(z + 1, z) == math.inf


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", ["a", "b"])
def test_nonfinite_never_passes(bad, where):
    b = np.random.default_rng(6).standard_normal((4, 30)).astype(np.float32)
    a = b.copy()
    (a if where == "a" else b)[2, 7] = bad
    r = compare_logits(a, b, nmse=1.0, top1=False)  # tolerances that everything else would meet
    assert not r.ok
    assert math.isnan(r.nmse) and math.isnan(r.kl_max)
    f = r.first_nonfinite
    assert f[:3] == (where, 2, (7,)) and str(f.value) == str(float(bad))
    assert (r.n_nonfinite_a, r.n_nonfinite_b) == ((1, 0) if where == "a" else (0, 1))
    assert "non-finite" in r.failures[0] and "position 2, index [7]" in r.failures[0]
    assert math.isnan(r.per_position["nmse"][2]) and r.per_position["nmse"][0] == 0
    assert math.isnan(compare.nmse(a, b))


def test_top1_ties_in_the_reference_are_not_disagreements():
    b = np.zeros((1, 10))
    b[0, 3] = b[0, 5] = 2.0
    a = b.copy()
    a[0, 5] += 1e-6  # a picks 5, b picks 3 (first of a tie)
    assert compare_logits(a, b).per_position["top1_agree"].tolist() == [True]
    b2 = b.copy()
    b2[0, 5] -= 1e-3  # now b really prefers 3
    a2 = b2.copy()
    a2[0, 5] += 2e-3
    assert compare_logits(a2, b2).top1_agreement == 0
    assert compare_logits(a2, b2, top1_tie=1e-2).top1_agreement == 1


def test_compare_logits_tolerances_and_shapes():
    rng = np.random.default_rng(7)
    b = rng.standard_normal(100)
    r = compare_logits(b + 1e-3, b)  # one position, [n_vocab]
    assert r.n_positions == 1 and r.ok
    assert not compare_logits(b + 1e-3, b, nmse=1e-9).ok
    assert not compare_logits(b + 0.5 * rng.standard_normal(100), b, nmse=None, top1=False, kl=1e-6).ok
    with pytest.raises(ValueError, match="shapes differ"):
        compare_logits(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="nothing to compare"):
        compare_logits(np.zeros((0, 3)), np.zeros((0, 3)))
    with pytest.raises(ValueError, match=r"\[n_vocab\] or \[n_positions, n_vocab\]"):
        compare_logits(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)))
    assert compare_logits(b, b, k=1000).topk_overlap == 1  # k capped at n_vocab


def test_logits_comparison_renders_worst_positions_first():
    rng = np.random.default_rng(8)
    b = rng.standard_normal((20, 40))
    a = b.copy()
    a[13] += 5 * rng.standard_normal(40)
    a[4, 0] = np.nan
    r = compare_logits(a, b)
    assert r.worst(3).tolist()[:2] == [4, 13]
    text = str(r)
    assert "NOT OK" in text and "argmax a" in text and "nan in a at position 4" in text
    lines = text.splitlines()
    first_row = next(i for i, l in enumerate(lines) if set(l.strip()) == {"-", " "}) + 1
    assert lines[first_row].split()[0] == "4" and lines[first_row + 1].split()[0] == "13"
    html = r._repr_html_()
    assert html.count("<tr") == 11 and "background-color" in html
    assert "ok=False" in repr(r)


# --------------------------------------------------------------------------------------------
# first_divergence on the NumPy decoder

TOKENS = np.random.default_rng(11).integers(0, numpy_lm.VOCAB, 12)


@pytest.fixture(scope="module")
def weights():
    return numpy_lm.healthy_weights(2)


@pytest.fixture(scope="module")
def ref_trace(weights):
    return numpy_lm.forward(weights, TOKENS, dtype=np.float64)[1]


def test_float32_vs_float64_does_not_diverge(weights, ref_trace):
    _, t32 = numpy_lm.forward(weights, TOKENS)
    d = first_divergence(t32, ref_trace)
    assert not d and d.diverged is False and d.hook is None
    assert [s.hook for s in d.summary] == list(ref_trace)
    assert all(s.ok and 0 < s.nmse < 1e-10 for s in d.summary if s.hook != "embd")
    assert "no divergence" in str(d)
    # and at a tolerance float32 cannot meet, it diverges at the first rounded step
    d2 = first_divergence(t32, ref_trace, tol=1e-20)
    assert d2.hook == "blk.0.attn_norm" and d2.position == 0


def test_planted_kv_bug_is_found_at_its_hook_and_position(weights, ref_trace):
    def stale_k(k):  # a KV-cache slot written from the wrong position
        k[5] = k[4]
        return k

    _, bad = numpy_lm.forward(weights, TOKENS, patch={"blk.1.k": stale_k}, dtype=np.float64)
    d = first_divergence(bad, ref_trace)
    assert d and d.hook == "blk.1.k" and d.position == 5 and d.positions.tolist() == [5]
    a, b = bad["blk.1.k"][5], ref_trace["blk.1.k"][5]
    assert d.nmse == pytest.approx(((a - b) ** 2).sum() / (b ** 2).sum(), rel=1e-12)
    assert d.max_abs == pytest.approx(np.abs(a - b).max())
    assert d.index == np.unravel_index(np.abs(a - b).argmax(), a.shape)
    assert (d.a_value, d.b_value) == (a[d.index], b[d.index])
    assert d.summary[-1].hook == "blk.1.k" and not d.summary[-1].ok
    assert all(s.ok for s in d.summary[:-1])
    assert [s.hook for s in d.summary] == hooks.hook_names(2)[: hooks.hook_names(2).index("blk.1.k") + 1]
    text = str(d)
    assert "blk.1.k at position 5" in text and "NMSE" in text


def test_first_divergence_follows_execution_order_not_dict_order(weights, ref_trace):
    def late_bug(u):
        u[3:] *= 1.1
        return u

    _, bad = numpy_lm.forward(weights, TOKENS, patch={"blk.0.ffn_up": late_bug}, dtype=np.float64)
    keys = list(bad)[::-1]  # logits first
    d = first_divergence({k: bad[k] for k in keys}, ref_trace)
    assert d.hook == "blk.0.ffn_up" and d.position == 3 and d.positions.tolist() == list(range(3, 12))
    assert d.value == pytest.approx(1e-2, rel=1e-6)  # (0.1 u)^2 / u^2
    np.testing.assert_allclose(d.per_position, [0] * 3 + [1e-2] * 9, atol=1e-12, rtol=1e-6)
    assert not first_divergence(bad, ref_trace, tol=2e-2).summary[hook_order(keys).index("blk.0.ffn_up")].note


def test_nan_diverges_and_names_the_element(weights, ref_trace):
    def nan_at(x):
        x[7, 5] = np.nan
        return x

    _, bad = numpy_lm.forward(weights, TOKENS, patch={"blk.1.attn_out": nan_at}, dtype=np.float64)
    d = first_divergence(bad, ref_trace, tol=1e30)  # no tolerance lets NaN through
    assert d.hook == "blk.1.attn_out" and d.position == 7 and d.index == (5,)
    assert math.isnan(d.a_value) and "NaN in a" in d.reason
    assert math.isnan(d.nmse)
    d2 = first_divergence(ref_trace, bad, tol=1e30)
    assert "reference is not finite" in d2.reason


def test_tolerance_patterns_and_max_abs_metric(weights, ref_trace):
    def nudge(q):
        return q * (1 + 1e-3)

    _, bad = numpy_lm.forward(weights, TOKENS, patch={"blk.0.q": nudge}, dtype=np.float64)
    assert first_divergence(bad, ref_trace, tol=1e-7).hook == "blk.0.q"
    d = first_divergence(bad, ref_trace, tol={"blk.*.q": 1e-5, "*": 1e-7})
    assert d.hook == "blk.0.q_rope"  # q passes its own tolerance; q_rope has the default pattern
    assert {s.hook: s.tol for s in d.summary}["blk.0.q"] == 1e-5 and d.tol == 1e-7
    err = np.abs(bad["blk.0.q"] - ref_trace["blk.0.q"]).reshape(12, -1).max(axis=1)
    d = first_divergence(bad, ref_trace, tol=float(np.sort(err)[-2]), metric="max_abs")
    assert d.hook == "blk.0.q" and d.position == int(err.argmax()) and d.value == err.max()
    with pytest.raises(ValueError, match="metric"):
        first_divergence(bad, ref_trace, metric="cosine")


def test_shape_mismatch_missing_hooks_and_no_common_hooks(ref_trace):
    a = dict(ref_trace)
    a["blk.0.q"] = a["blk.0.q"].reshape(12, -1)
    del a["embd"]
    a["blk.0.extra"] = np.zeros(3)
    d = first_divergence(a, ref_trace)
    assert d.hook == "blk.0.q" and d.position is None and "shapes differ" in d.reason
    assert d.missing_in_a == ["embd"] and d.missing_in_b == ["blk.0.extra"]
    assert "only in b (embd)" in str(d)
    with pytest.raises(ValueError, match="no hook in common"):
        first_divergence({"x": np.zeros(2)}, {"y": np.zeros(2)})


def test_first_divergence_accepts_npz_files(tmp_path, ref_trace):
    np.savez(tmp_path / "a.npz", **ref_trace)
    with np.load(tmp_path / "a.npz") as f:
        d = first_divergence(f, ref_trace)
    assert not d and len(d.summary) == len(ref_trace)


# --------------------------------------------------------------------------------------------
# diagnose

TOK64 = np.random.default_rng(1).integers(0, numpy_lm.VOCAB, 64)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_healthy_logits_have_no_findings(seed):
    logits, _ = numpy_lm.forward(numpy_lm.healthy_weights(seed), TOK64)
    d = diagnose(logits)
    assert d.ok and d.findings == [], str(d)
    assert 1 < d.stats["mean_entropy"] < 4 and d.stats["max_abs"] < 30
    assert "healthy" in str(d)


def test_quantized_bytes_fed_as_fp16_weights():
    logits, _ = numpy_lm.forward(numpy_lm.bytes_as_fp16_weights(numpy_lm.healthy_weights(0)), TOK64)
    d = diagnose(logits)
    assert not d.ok and "nonfinite" in d
    pos, tok = np.argwhere(~np.isfinite(logits))[0]
    assert d["nonfinite"].severity == "error"
    assert f"position {pos}, token {tok}" in d["nonfinite"].message
    assert d.stats["nonfinite"] == int((~np.isfinite(logits)).sum())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_quantization_codes_used_as_weights(seed):
    logits, _ = numpy_lm.forward(numpy_lm.codes_as_weights(numpy_lm.healthy_weights(seed)), TOK64)
    assert np.isfinite(logits).all()
    d = diagnose(logits)
    assert {"huge_magnitude", "few_argmax", "undequantized_weights"} <= set(d.codes), str(d)
    assert d["undequantized_weights"].severity == "hint"
    assert "without dequantization" in d["undequantized_weights"].message or \
           "no dequantization" in d["undequantized_weights"].message


def test_garbage_token_winning_every_position():
    """The bug orc was born from: garbage logits of 14-15 for one token win every argmax."""
    logits, _ = numpy_lm.forward(numpy_lm.healthy_weights(0), TOK64)
    logits[:, 17] = 15.0
    d = diagnose(logits)
    assert d["same_argmax"].message.startswith("token 17 is the argmax at 64/64 positions")
    assert "entropy_collapse" in d and "undequantized_weights" in d
    # the same logits for a handful of positions: too few to call it
    few = diagnose(logits[:3])
    assert "same_argmax" not in few and few.ok and few.skipped


def test_one_confident_position_is_not_a_collapse():
    logits = np.zeros(1000)
    logits[42] = 12.0
    d = diagnose(logits)
    assert d.ok and d.stats["mean_entropy"] < 0.1 and d.skipped


def test_constant_flat_and_position_independent_logits():
    assert diagnose(np.zeros((8, 100))).codes == ["constant"]
    flat = np.random.default_rng(0).standard_normal((8, 100)) * 0.01
    assert diagnose(flat).codes == ["flat"]
    row = np.random.default_rng(1).standard_normal(100) * 3
    row[7] = 11.0
    same = np.tile(row, (16, 1)) + 1e-9 * np.random.default_rng(2).standard_normal((16, 100))
    d = diagnose(same + np.arange(16)[:, None])  # a shift per position does not change softmax
    assert {"position_independent", "same_argmax", "undequantized_weights"} <= set(d.codes)
    assert "all have the same logits" in d["position_independent"].message
    two = np.concatenate([same[:8], same[8:] * -1])
    d2 = diagnose(two)
    assert "only 2 distinct logit vectors" in d2["position_independent"].message


def test_magnitude_and_spread_thresholds():
    rng = np.random.default_rng(3)
    healthy, _ = numpy_lm.forward(numpy_lm.healthy_weights(0), TOK64)
    d = diagnose(healthy, max_abs=5.0)
    assert d.codes == ["huge_magnitude"] and "(position" in d["huge_magnitude"].message
    wide = rng.standard_normal((8, 500)) * 40
    d = diagnose(wide)
    assert "wide_spread" in d and "huge_magnitude" in d and "undequantized_weights" in d


def test_diagnose_rejects_bad_shapes_and_renders():
    with pytest.raises(ValueError):
        diagnose(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError):
        diagnose(np.zeros((3, 1)))
    with pytest.raises(TypeError):
        diagnose(np.array([["a", "b"]]))
    d = diagnose(np.zeros((8, 100)))
    assert "[error] constant" in str(d) and "<table>" in d._repr_html_() and "constant" in repr(d)
    with pytest.raises(KeyError):
        d["flat"]


@pytest.mark.parametrize("arch, weight_type, embd_type, hook, tensor", [
    ("llama", "Q4_K", "F32", "blk.0.q", "blk.0.attn_q.weight (Q4_K)"),   # float embeddings: the first matmul
    ("qwen2", "Q8_0", None, "embd", "token_embd.weight (Q8_0)"),          # quantized embeddings: the lookup
])
def test_diagnose_names_the_quantized_tensor_read_as_float16(tmp_path, arch, weight_type, embd_type, hook, tensor):
    """The raw_as_f16 fault: the logits only say 'nonfinite'; given the trace and the model, diagnose
    names the first bad hook and the quantized tensor it reads."""
    import orc
    from orc import synth

    path = synth.make_model(tmp_path / "m.gguf", synth.spec_for(arch, weight_type, embd_type=embd_type))
    with orc.Model(path, device="cpu", dtype="float16", fault="raw_as_f16") as bad:
        trace = orc.Session(bad, n_ctx=32).trace(bad.tokenize("hello world this is orc"))
        logits_only = diagnose(trace["logits"])
        d = diagnose(trace, model=bad)
        by_types = diagnose(trace, model={t.name: t.type for t in bad.tensors})
    assert logits_only.codes == ["nonfinite"]
    assert d.codes == ["nonfinite", "first_bad_hook", "undequantized_weights"], str(d)
    assert d["first_bad_hook"].message.startswith(f"{hook} is the first hook with ")
    assert f"first hook that reads a quantized tensor: {tensor}" in d["undequantized_weights"].message
    assert by_types.codes == d.codes
    assert diagnose(trace).codes == ["nonfinite", "first_bad_hook"], "without the model: the hook, no tensor"
    with orc.Model(path, device="cpu") as good:
        healthy = orc.Session(good, n_ctx=32).trace(good.tokenize("hello world this is orc"))
        assert diagnose(healthy, model=good).codes == []


def test_diagnose_huge_activation_and_a_later_fault_is_not_called_undequantized():
    trace = {"embd": np.ones((4, 8)), "blk.0.attn_norm": np.ones((4, 8)), "blk.0.q": np.ones((4, 8)),
             "blk.0.attn_out": np.full((4, 8), 1e6), "logits": np.random.default_rng(0).standard_normal((4, 50))}
    types = {"token_embd.weight": "Q8_0", "blk.0.attn_norm.weight": "F32", "blk.0.attn_q.weight": "Q4_K"}
    d = diagnose(trace, model=types)
    assert d["first_bad_hook"].message.startswith("blk.0.attn_out is the first hook with max |x| 1e+06")
    assert "undequantized_weights" not in d, "attn_out reads no weight; earlier quantized reads were fine"
    with pytest.raises(KeyError, match="no 'logits'"):
        diagnose({"embd": np.ones((2, 2))})
