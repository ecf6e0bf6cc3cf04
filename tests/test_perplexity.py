"""orc.kld / orc.perplexity: llama-perplexity --kl-divergence's statistics, checked against a
hand-computed case and against a straightforward NumPy twin on random logits and on real forward
passes; saved logits round trip; `python -m orc kld` end to end on synthetic and real models."""
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import orc
from orc import perplexity as P
from orc import synth

from realmodels import real_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(orc.__file__)))
TEXT = ("The history of the city begins with a small settlement on the river, where fishermen traded salt and "
        "wool with the farmers of the valley. Over the centuries the market grew, a bridge was built, and the "
        "town became a centre of learning: its university, founded by a bishop who loved books more than wars, "
        "attracted students from every corner of the continent. They argued about philosophy in the taverns, "
        "copied manuscripts by candlelight, and sometimes fought with the townspeople over the price of beer. "
        "When the railway arrived, factories rose along the river banks, and the old walls were torn down to "
        "make room for wide avenues, parks and a new opera house. Today visitors come for the cathedral, the "
        "museums and the food, and few of them remember the fishermen who started it all. ") * 2


@pytest.fixture(scope="module")
def synth_pair(tmp_path_factory):
    """The same random weights stored as F32 and as Q4_K (llama, SentencePiece vocabulary)."""
    d = tmp_path_factory.mktemp("kld")
    dims = dict(n_embd=256, n_head=4, n_head_kv=2, n_ff=512)
    return (synth.make_model(d / "f32.gguf", synth.spec_for("llama", "F32", **dims)),
            synth.make_model(d / "q4k.gguf", synth.spec_for("llama", "Q4_K")))


IDS = [int(i) for i in np.random.default_rng(7).integers(3, 320, 200)]


# ------------------------------------------------------------------------------------------------
# the statistics

def test_statistics_known_answer_by_hand():
    """n = 11: KLD 0..10 (mean 5, var 10, unc sqrt(10/10) = 1; median 5; 99th percentile at
    0.99 * 10 = 9.9); nll_a = ln 2 everywhere (PPL 2, no spread); nll_b = ln 2 + (-1, 1, -1, 1,
    ..., 0) (mean ln 2: PPL 2; var 10/11: unc sqrt(1/11)); Δp 0.1 everywhere; 8 of 11 same top."""
    n = 11
    kld = np.arange(n, dtype=float)
    d = np.array([-1, 1] * 5 + [0], float)
    nll_a = np.full(n, math.log(2))
    st = P.llama_statistics(nll_a, nll_a + d, kld, np.full(n, 0.1), np.arange(n) < 8)
    u = math.sqrt(1 / 11)
    want = dict(n_tokens=11, ppl_a=2.0, ppl_a_unc=0.0, ppl_b=2.0, ppl_b_unc=2 * u, ln_ppl_ratio=0.0,
                ln_ppl_ratio_unc=u, ppl_ratio=1.0, ppl_ratio_unc=u, ppl_diff=0.0, ppl_diff_unc=2 * u,
                mean_kld=5.0, mean_kld_unc=1.0, median_kld=5.0, max_kld=10.0, min_kld=0.0, mean_dp=0.1,
                mean_dp_unc=0.0, rms_dp=0.1, rms_dp_unc=0.0, same_top_p=8 / 11,
                same_top_p_unc=math.sqrt(8 / 11 * 3 / 11 / 10))
    for k, v in want.items():
        assert st[k] == pytest.approx(v, abs=1e-7), k
    assert st["kld_percentiles"][99.0] == pytest.approx(9.9) and st["kld_percentiles"][90.0] == pytest.approx(9.0)
    assert st["kld_percentiles"][0.1] == pytest.approx(0.01) and st["kld_percentiles"][99.9] == pytest.approx(9.99)
    # llama.cpp's rules at small counts: no uncertainty at n <= 10, no covariance below 10
    small = P.llama_statistics(nll_a[:10], nll_a[:10] + d[:10], kld[:10], np.full(10, 0.1), np.ones(10, bool))
    assert small["mean_kld_unc"] == 0 and small["ppl_b_unc"] == 0 and small["median_kld"] == 4.5


def test_per_position_values_by_hand():
    """A: logits (0, 0) -> p = (1/2, 1/2); B: (ln 3, 0) -> q = (3/4, 1/4); next token 0:
    KL = 1/2 ln(2/3) + 1/2 ln 2 = 1/2 ln(4/3); nll_a = ln 2, nll_b = ln(4/3); Δp = 1/4; the argmax
    of a tie is the first index, so the top token agrees."""
    a = np.array([[0.0, 0.0]], np.float32)
    b = np.array([[math.log(3), 0.0]], np.float32)
    st = P._slice_stats(a, b, np.array([0]), None, None, None)
    assert st["kld"][0] == pytest.approx(0.5 * math.log(4 / 3), rel=1e-6)
    assert st["nll_a"][0] == pytest.approx(math.log(2)) and st["nll_b"][0] == pytest.approx(math.log(4 / 3), rel=1e-6)
    assert st["argmax_a"][0] == st["argmax_b"][0] == 0


def _twin(la, lb, targets):
    """The straightforward computation: softmax in float64, KL by its definition, statistics with
    numpy's mean/var/median/percentile."""
    la, lb = la.astype(np.float64), lb.astype(np.float64)
    p = np.exp(la - la.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    q = np.exp(lb - lb.max(1, keepdims=True))
    q /= q.sum(1, keepdims=True)
    kl = (p * np.log(p / q)).sum(1)
    r = np.arange(len(targets))
    nll_a, nll_b = -np.log(p[r, targets]), -np.log(q[r, targets])
    dp = q[r, targets] - p[r, targets]
    same = la.argmax(1) == lb.argmax(1)
    n = len(targets)
    sem = (lambda x: math.sqrt(np.var(x) / (n - 1)))
    return {"mean_kld": kl.mean(), "mean_kld_unc": sem(kl), "median_kld": np.median(kl), "max_kld": kl.max(),
            "kld_p99": np.percentile(kl, 99), "kld_p95": np.percentile(kl, 95), "ppl_a": math.exp(nll_a.mean()),
            "ppl_b": math.exp(nll_b.mean()), "ppl_b_unc": math.exp(nll_b.mean()) * sem(nll_b),
            "ln_ppl_ratio": nll_b.mean() - nll_a.mean(),
            "ln_ppl_ratio_unc": sem(nll_b - nll_a),  # the variance of a difference, by its definition
            "rms_dp": math.sqrt((dp ** 2).mean()), "mean_dp": dp.mean(), "same_top_p": same.mean(), "kl": kl}


def test_statistics_match_a_straightforward_numpy_computation_on_random_logits():
    rng = np.random.default_rng(0)
    n, v = 300, 97
    la = (rng.standard_normal((n, v)) * 3).astype(np.float32)
    lb = (la + rng.standard_normal((n, v)) * 0.7).astype(np.float32)
    tg = rng.integers(0, v, n)
    st = P._slice_stats(la, lb, tg, None, None, None)
    s = P.llama_statistics(st["nll_a"], st["nll_b"], st["kld"], np.exp(-st["nll_b"]) - np.exp(-st["nll_a"]),
                           st["argmax_a"] == st["argmax_b"])
    want = _twin(la, lb, tg)
    np.testing.assert_allclose(st["kld"], want["kl"], rtol=1e-10)
    for k in ("mean_kld", "mean_kld_unc", "median_kld", "max_kld", "ppl_a", "ppl_b", "ppl_b_unc", "ln_ppl_ratio",
              "ln_ppl_ratio_unc", "rms_dp", "mean_dp", "same_top_p"):
        assert s[k] == pytest.approx(want[k], rel=1e-9), k
    assert s["kld_percentiles"][99.0] == pytest.approx(want["kld_p99"], rel=1e-12)
    assert s["kld_percentiles"][95.0] == pytest.approx(want["kld_p95"], rel=1e-12)
    assert 0.3 < s["same_top_p"] < 1 and s["mean_kld"] > 0.1, "the test data must exercise disagreement"


def test_windows_follow_llama_cpp():
    assert P.chunk_windows(1030, 512) == [(0, 512), (512, 1024)]
    assert P.chunk_windows(1030, 512, n_chunks=1) == [(0, 512)]
    with pytest.raises(ValueError, match="at least one window"):
        P.chunk_windows(100, 512)
    with pytest.raises(ValueError, match="n_ctx must be >= 4"):
        P.chunk_windows(100, 2)


# ------------------------------------------------------------------------------------------------
# end to end against the twin, on real forward passes

def test_kld_matches_the_twin_on_forward_passes(synth_pair):
    """The report equals the twin's statistics computed from each window's logits, evaluated in
    one forward call per window from an empty cache with BOS first, scoring positions
    n_ctx/2 .. n_ctx-2; the per-layer NMSE at the worst position equals the traced one."""
    fa, fq = synth_pair
    n_ctx = 64
    r = orc.kld(fa + "@cpu", fq + "@cpu", IDS, n_ctx=n_ctx, n_worst=3)
    la, lb, tg = [], [], []
    traces = {}
    with orc.Model(fa, device="cpu") as ma, orc.Model(fq, device="cpu") as mb:
        assert ma.tokenizer.add_bos and ma.bos == 1
        for c in range(len(IDS) // n_ctx):
            feed = list(IDS[c * n_ctx:(c + 1) * n_ctx])
            feed[0] = ma.bos
            ta = orc.Session(ma, n_ctx=n_ctx).trace(feed, capture=["blk.*.resid_post", "logits"])
            tb = orc.Session(mb, n_ctx=n_ctx).trace(feed, capture=["blk.*.resid_post", "logits"])
            traces[c] = (ta, tb)
            la.append(ta["logits"][n_ctx // 2:n_ctx - 1])
            lb.append(tb["logits"][n_ctx // 2:n_ctx - 1])
            tg.append(IDS[c * n_ctx + n_ctx // 2 + 1:(c + 1) * n_ctx])
    want = _twin(np.concatenate(la), np.concatenate(lb), np.concatenate(tg))
    assert r.n_tokens == 3 * 31 and r.n_chunks == 3
    for k in ("mean_kld", "median_kld", "max_kld", "ppl_a", "ppl_b", "rms_dp", "same_top_p", "kld_p99"):
        assert getattr(r, k) == pytest.approx(want[k], rel=1e-9), k
    assert r.mean_kld > 0.05 and r.same_top_p < 1, "float32 against Q4_K weights must differ"
    w = r.worst[0]
    assert w.kld == pytest.approx(want["kl"].max(), rel=1e-9)
    ta, tb = traces[w.chunk]
    assert r.layer_hooks == ["blk.0.resid_post", "blk.1.resid_post"]
    for j, h in enumerate(r.layer_hooks):
        assert w.layers[j] == pytest.approx(orc.compare.nmse(tb[h][w.position], ta[h][w.position]), rel=1e-5)
    assert w.target == IDS[w.index + 1] and w.context is not None
    text = str(r)
    for needle in ("Mean    KLD:", "99.0%   KLD:", "RMS Δp    :", "Same top p:", "Mean PPL(Q)/PPL(base)",
                   "worst 3 position(s) by KLD", "blk.1.resid_post"):
        assert needle in text, needle


def test_model_against_itself_is_zero(synth_pair):
    with orc.Model(synth_pair[1], device="cpu") as m:
        r = orc.kld(m, m, IDS, n_ctx=64)
    assert r.mean_kld == 0 and r.max_kld == 0 and r.same_top_p == 1 and r.rms_dp == 0 and r.ppl_a == r.ppl_b
    assert np.all(r.layer_nmse == 0)


def test_text_is_tokenized_with_bos_and_nonfinite_is_reported(synth_pair):
    text = "abc def ghi " * 40
    r = orc.kld((synth_pair[0], "cpu", None), {"path": synth_pair[0], "device": "cpu", "fault": None}, text,
                n_ctx=32, layers=False)
    with orc.Model(synth_pair[0], device="cpu") as m:
        ids = m.tokenize(text)
    assert ids[0] == 1 and r.n_chunks == len(ids) // 32 and r.mean_kld == 0
    # raw_as_f16 on Q4_K bytes makes NaN logits: counted, and the statistics are NaN, never averaged away
    bad = orc.kld(synth_pair[1] + "@cpu", {"path": synth_pair[1], "device": "cpu", "fault": "raw_as_f16"}, IDS,
                  n_ctx=64, layers=False)
    assert bad.per_position["nonfinite"].all() and math.isnan(bad.mean_kld) and not bad.ok_nonfinite
    assert any("NaN/Inf" in n for n in bad.notes)


# ------------------------------------------------------------------------------------------------
# saved logits

def test_saved_logits_round_trip(synth_pair, tmp_path):
    fa, fq = synth_pair
    live = orc.kld(fa + "@cpu", fq + "@cpu", IDS, n_ctx=64, layers=False, save_a=tmp_path / "a_full.npz")
    full = orc.kld(tmp_path / "a_full.npz", fq + "@cpu")
    saved = P.load_logits(tmp_path / "a_full.npz")
    assert saved.logits.dtype == np.float16 and saved.logits.shape == (live.n_tokens, 320) and saved.n_ctx == 64
    again = P.save_logits(fa + "@cpu", IDS, tmp_path / "a_again.npz", n_ctx=64)
    assert np.array_equal(again.logits, saved.logits) and np.array_equal(again.nll, saved.nll)
    # nll and argmax are stored exactly: perplexities, Δp and same-top agree exactly
    for k in ("ppl_a", "ppl_b", "same_top_p", "rms_dp"):
        assert getattr(full, k) == getattr(live, k), k
    # the distribution is float16: the KLD moves by far less than it is
    assert np.abs(full.per_position["kld"] - live.per_position["kld"]).max() < 1e-3 * live.mean_kld
    assert "saved float16" in full.a and "saved float16" in full.kl_note
    # top-k: a lower bound (up to float16 rounding), close when k covers most of the mass
    P.save_logits(fa + "@cpu", IDS, tmp_path / "a_top.npz", n_ctx=64, top_k=32)
    top = orc.kld(tmp_path / "a_top.npz", fq + "@cpu")
    assert top.ppl_a == live.ppl_a and top.same_top_p == live.same_top_p
    assert np.all(top.per_position["kld"] <= live.per_position["kld"] * (1 + 1e-3) + 1e-6)
    assert top.mean_kld > 0.5 * live.mean_kld and "lower bound" in top.kl_note
    assert os.path.getsize(tmp_path / "a_top.npz") < os.path.getsize(tmp_path / "a_full.npz")
    # saved against saved, and the errors
    both = orc.kld(tmp_path / "a_full.npz", tmp_path / "a_full.npz")
    assert both.max_kld == 0 and both.same_top_p == 1
    with pytest.raises(ValueError, match="B cannot be top-k"):
        orc.kld(fa + "@cpu", tmp_path / "a_top.npz", IDS, n_ctx=64)
    with pytest.raises(ValueError, match="token ids differ"):
        orc.kld(tmp_path / "a_full.npz", fq + "@cpu", IDS[::-1])
    with pytest.raises(ValueError, match="n_ctx 32 differs"):
        orc.kld(tmp_path / "a_full.npz", fq + "@cpu", n_ctx=32)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a saved-logits file"):
        P.load_logits(tmp_path / "junk.npz")


def test_model_specs():
    assert P.parse_model_spec("m.gguf") == {"path": "m.gguf", "device": "auto", "dtype": None}
    assert P.parse_model_spec("a@b.gguf@cuda:1:f16") == {"path": "a@b.gguf", "device": "cuda:1", "dtype": "float16"}
    assert P.parse_model_spec("smollm2-135m-instruct@cpu") == {"path": "smollm2-135m-instruct", "device": "cpu",
                                                               "dtype": None}
    with pytest.raises(ValueError, match="FILE\\[@DEVICE"):
        P.parse_model_spec("m.gguf@tpu")
    with pytest.raises(TypeError, match="expected an orc.Model"):
        orc.kld(3, 4, IDS)


def test_plot(synth_pair, tmp_path):
    pytest.importorskip("matplotlib")
    r = orc.kld(synth_pair[0] + "@cpu", synth_pair[1] + "@cpu", IDS, n_ctx=64)
    fig = r.plot(tmp_path / "kld.png")
    assert len(fig.axes) >= 3 and (tmp_path / "kld.png").stat().st_size > 1000


# ------------------------------------------------------------------------------------------------
# the command line

def orc_cli(*args, check_rc=None):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-m", "orc", *map(str, args)], capture_output=True, text=True, env=env,
                       timeout=300)
    if check_rc is not None:
        assert r.returncode == check_rc, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    return r


def test_cli_kld_on_synthetic_models(synth_pair, tmp_path):
    fa, fq = synth_pair
    ids = tmp_path / "ids.txt"
    ids.write_text(" ".join(map(str, IDS)))
    same = json.loads(orc_cli("kld", fq + "@cpu", fq + "@cpu", "--ids", ids, "--n-ctx", 64, "--json",
                              check_rc=0).stdout)
    assert same["mean_kld"] == 0 and same["same_top_p"] == 1 and same["n_tokens"] == 93
    r = orc_cli("kld", fa + "@cpu:float32", fq + "@cpu", "--ids", ids, "--n-ctx", 64, "--save", tmp_path / "a.npz",
                "--plot", tmp_path / "p.png", check_rc=0)
    assert "Mean    KLD:" in r.stdout and r.stdout.rstrip().endswith("OK") and (tmp_path / "a.npz").exists()
    diff = json.loads(orc_cli("kld", tmp_path / "a.npz", fq, "--json", "--max-mean-kld", 1e-3, check_rc=1).stdout)
    assert diff["mean_kld"] > 1e-3 and diff["failed"] and diff["same_top_p"] < 1
    # only saving, then trouble in one line
    out = orc_cli("kld", fa, "--ids", ids, "--n-ctx", 64, "--save", tmp_path / "b.npz", "--top-k", 8, check_rc=0)
    assert "top-8" in out.stdout and P.load_logits(tmp_path / "b.npz").top_k == 8
    for args, needle in ((["kld", fa], "--save"), (["kld", tmp_path / "nope.gguf", fa, "--ids", ids], "no such file"),
                         (["kld", fa + "@tpu", fa, "--ids", ids], "DEVICE"),
                         (["kld", fa, fa, "--ids", "1,2,3"], "at least one window")):
        e = orc_cli(*args)
        assert e.returncode == 2 and len(e.stderr.strip().splitlines()) == 1 and needle in e.stderr, e.stderr


def test_cli_kld_on_the_real_model(tmp_path):
    path = real_model("smollm2-135m-instruct")
    text = tmp_path / "text.txt"
    text.write_text(TEXT)
    same = json.loads(orc_cli("kld", f"{path}@cpu", "smollm2-135m-instruct@cpu", "--text", text, "--n-ctx", 64,
                              "--chunks", 2, "--json", check_rc=0).stdout)
    assert same["mean_kld"] == 0 and same["max_kld"] == 0 and same["same_top_p"] == 1 and same["n_tokens"] == 62
    assert all(layer["max_nmse"] == 0 for layer in same["layers"]) and len(same["layers"]) == 30
    assert 1 < same["ppl_a"] < 100, "a trained model predicts English text"
    half = json.loads(orc_cli("kld", f"{path}@cpu", f"{path}@cpu:float16", "--text", text, "--n-ctx", 64,
                              "--chunks", 2, "--json", check_rc=0).stdout)
    assert 0 < half["mean_kld"] < 1e-3 and half["same_top_p"] > 0.9
    assert half["worst"][0]["context"] and half["worst"][0]["target_text"] is not None
    assert all(layer["mean_nmse"] > 0 for layer in half["layers"])
