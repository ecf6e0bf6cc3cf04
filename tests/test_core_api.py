"""The reshaped core on the CPU backend: batched forwards, activation patches, attention
probabilities, quantized weights, the session's own history, the model's lock under
threads, and the checks of a file's hyperparameters against its tensors."""
import threading
import time

import numpy as np
import pytest

import orc
from orc import synth
from orc.compare import nmse
from threads import run_threads


_paths = {}


@pytest.fixture(scope="module")
def mdir(tmp_path_factory):
    return tmp_path_factory.mktemp("core")


def model_path(d, arch, wt="F32", **kw):
    key = (arch, wt, tuple(sorted(kw.items())))
    if key not in _paths:
        name = f"{arch}_{wt}_{abs(hash(key[2]))}.gguf"
        _paths[key] = synth.make_model(d / name, synth.spec_for(arch, wt, **kw))
    return _paths[key]


def rng_ids(n, seed, vocab=320):
    return [int(t) for t in np.random.default_rng(seed).integers(0, vocab, n)]


# ------------------------------------------------------------------------------ forward_batch

@pytest.mark.parametrize("arch,wt", [("qwen2", "Q8_0"), ("gemma3", "F32"), ("llama", "Q4_K")])
def test_forward_batch_is_bitwise_the_solo_runs(mdir, arch, wt):
    path = model_path(mdir, arch, wt)
    seqs = [rng_ids(n, 10 + n) for n in (9, 1, 17, 4)]
    with orc.Model(path) as m:
        solo_all = [orc.Session(m, n_ctx=32).forward(q) for q in seqs]
        solo_tr = [orc.Session(m, n_ctx=32).trace(q, ["blk.*.resid_post", "blk.0.attn_probs", "logits"]) for q in seqs]
        for n_batch in (512, 5):  # 5: chunks that straddle sequences
            got = m.forward_batch(seqs, n_batch=n_batch)
            assert [g.shape for g in got] == [a.shape for a in solo_all]
            for g, a in zip(got, solo_all):
                assert np.array_equal(g, a), n_batch
        last = m.forward_batch(seqs, logits="last")
        for g, a in zip(last, solo_all):
            assert np.array_equal(g, a[-1])
        res = m.forward_batch(seqs, logits="none", capture=["blk.*.resid_post", "blk.0.attn_probs", "logits"])
        for acts, ref in zip(res, solo_tr):
            assert acts.keys() == ref.keys()
            for k in ref:
                assert acts[k].shape == ref[k].shape and np.array_equal(acts[k], ref[k]), k


def test_forward_batch_refuses_bad_input(mdir):
    with orc.Model(model_path(mdir, "qwen2")) as m:
        with pytest.raises(ValueError, match="empty"):
            m.forward_batch([[1, 2], []])
        with pytest.raises(ValueError, match="token id 999"):
            m.forward_batch([[1, 2], [3, 999]])
        with pytest.raises(ValueError, match="at least one"):
            m.forward_batch([])


# ------------------------------------------------------------------------------ patches

def test_patching_resid_post_makes_the_rest_of_the_run_the_other_run(mdir):
    """Patch every resid_post of layer i in run B with run A's: every later hook and the
    logits become run A's, bit for bit (the activation-patching invariant)."""
    path = model_path(mdir, "qwen3", "Q8_0", n_layer=4)
    a_ids = rng_ids(12, 1)
    b_ids = list(a_ids)
    b_ids[3] = (b_ids[3] + 7) % 320  # a different token at position 3
    with orc.Model(path) as m:
        ta = orc.Session(m, n_ctx=32).trace(a_ids)
        tb = orc.Session(m, n_ctx=32).trace(b_ids)
        assert not np.array_equal(ta["logits"], tb["logits"])
        names = m.hook_names
        for layer in range(m.config["n_layer"]):
            key = f"blk.{layer}.resid_post"
            tp = orc.Session(m, n_ctx=32).trace(b_ids, patch={key: ta[key]})
            after = names[names.index(key):]
            for n in after:
                if n.startswith("blk.") and int(n.split(".")[1]) == layer and not n.endswith("resid_post"):
                    continue
                assert np.array_equal(tp[n], ta[n]), (layer, n)
            before = [n for n in names[:names.index(key)] if n != "embd"]
            assert any(not np.array_equal(tp[n], ta[n]) for n in before)  # B's own run up to the patch


def test_patch_by_callable_and_in_place(mdir):
    path = model_path(mdir, "qwen2", "F32")
    ids = rng_ids(10, 3)
    with orc.Model(path) as m:
        ref = orc.Session(m, n_ctx=32).forward(ids)
        seen = []

        def zero_head0(act, name):
            seen.append((name, act.shape))
            act[:, 0, :] = 0.0  # ablate head 0 in place

        s = orc.Session(m, n_ctx=32, n_batch=4)
        out = s.trace(ids, ["blk.0.attn_out", "logits"], patch={"blk.0.attn_out": zero_head0})
        assert [x[0] for x in seen] == ["blk.0.attn_out"] * 3  # one call per chunk of 4 tokens
        assert [x[1] for x in seen] == [(4, 4, 16), (4, 4, 16), (2, 4, 16)]
        assert not out["blk.0.attn_out"][:, 0].any() and out["blk.0.attn_out"][:, 1].any()
        assert nmse(out["logits"], ref) > 1e-8
        # a returned replacement instead, through forward()
        s2 = orc.Session(m, n_ctx=32)
        got = s2.forward(ids, patch={"blk.1.ffn_out": lambda a, n: np.zeros_like(a)})
        t = orc.Session(m, n_ctx=32).trace(ids, ["blk.1.resid_mid", "logits"])
        s3 = orc.Session(m, n_ctx=32)
        replaced = s3.trace(ids, ["blk.1.resid_post", "logits"], patch={"blk.1.ffn_out": np.zeros((10, 64), np.float32)})
        np.testing.assert_array_equal(replaced["blk.1.resid_post"], t["blk.1.resid_mid"])
        np.testing.assert_array_equal(got, replaced["logits"])


def test_patch_errors_are_clear(mdir):
    with orc.Model(model_path(mdir, "qwen2")) as m:
        s = orc.Session(m, n_ctx=32)
        with pytest.raises(ValueError, match=r"patch for blk.0.q has 3 values; 2 tokens x 64 expected"):
            s.forward([1, 2], patch={"blk.0.q": np.zeros(3)})
        with pytest.raises(KeyError, match="no hook point matches"):
            s.forward([1, 2], patch={"blk.9.q": np.zeros((2, 64))})
        with pytest.raises(ZeroDivisionError):
            s.forward([1, 2], patch={"blk.0.q": lambda a, n: 1 / 0})
        assert s.n_past == 0 and s.history == []  # the failed calls left the session as it was
        with pytest.raises(orc.OrcError, match="already busy in this thread"):
            s.forward([1, 2], patch={"blk.0.q": lambda a, n: s.fork()})
        assert s.forward([1, 2]).shape == (2, 320)


# ------------------------------------------------------------------------------ attention probabilities

@pytest.mark.parametrize("arch", ["qwen2", "gemma3"])
def test_attn_probs_are_the_softmax_of_the_rotated_q_k(mdir, arch):
    path = model_path(mdir, arch, "F32")
    ids = rng_ids(13, 5)
    with orc.Model(path) as m:
        c = m.config
        s = orc.Session(m, n_ctx=32)
        s.forward(ids[:6])  # probabilities also over keys of an earlier call
        cap = ["blk.*.attn_probs", "blk.*.q_rope", "blk.*.k_rope"]
        t = s.trace(ids[6:], cap)
        t0 = orc.Session(m, n_ctx=32).trace(ids, ["blk.*.k_rope"])
        assert "blk.0.attn_probs" not in orc.Session(m, n_ctx=32).trace(ids[:2])  # "*" skips on-request hooks
        group = c["n_head"] // c["n_head_kv"]
        for layer in range(c["n_layer"]):
            p = t[f"blk.{layer}.attn_probs"]
            assert p.shape == (c["n_head"], 7, 13)
            q = t[f"blk.{layer}.q_rope"].astype(np.float64)
            k = t0[f"blk.{layer}.k_rope"].astype(np.float64)
            window = c["sliding_window"] if orc_layer_swa(c, layer) else 0
            for h in range(c["n_head"]):
                sc = q[:, h] @ k[:, h // group].T * c["attn_scale"]
                if c["attn_softcap"]:
                    sc = c["attn_softcap"] * np.tanh(sc / c["attn_softcap"])
                for i in range(7):
                    pos = 6 + i
                    lo = max(0, pos - window + 1) if window else 0
                    mask = np.zeros(13, bool)
                    mask[lo:pos + 1] = True
                    e = np.where(mask, np.exp(sc[i] - sc[i][mask].max()), 0.0)
                    np.testing.assert_allclose(p[h, i], e / e.sum(), rtol=2e-4, atol=1e-6)
            np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-5)


def orc_layer_swa(c, layer):
    if c["sliding_window"] <= 0:
        return False
    if c["swa_type"] == "pattern":
        return (layer + 1) % c["swa_period"] != 0
    return c["swa_type"] in ("all",) or (c["swa_type"] == "even" and layer % 2 == 0)


def test_attn_probs_cannot_be_patched(mdir):
    with orc.Model(model_path(mdir, "qwen2")) as m:
        with pytest.raises(ValueError, match="cannot be patched"):
            orc.Session(m, n_ctx=8).forward([1], patch={"blk.0.attn_probs": np.zeros((1, 4))})


# ------------------------------------------------------------------------------ quantized weights

@pytest.mark.parametrize("wt", ["Q8_0", "Q4_K", "F16"])
def test_quantized_weights_on_cpu_are_bitwise_the_float32_weights(mdir, wt):
    path = model_path(mdir, "llama", wt)
    ids = rng_ids(11, 8)
    with orc.Model(path, weights="dequantized") as a, orc.Model(path) as b:
        assert a.weights == "dequantized" and b.weights == "quantized"  # the default keeps the blocks
        la = orc.Session(a, n_ctx=16).forward(ids)
        lb = orc.Session(b, n_ctx=16).forward(ids)
        if wt == "F16":  # stored float16 stays float16, with inputs as float32 (no rounding)
            assert nmse(lb, la) < 1e-12
        else:
            assert np.array_equal(la, lb)
        np.testing.assert_array_equal(a.tensor("blk.0.attn_q.weight"), b.tensor("blk.0.attn_q.weight"))
        ma, mb = a.memory(), b.memory()
        if wt != "F16":
            assert mb["quantized"] > 0 and mb["weights"] < ma["weights"] / 8  # only norms are dense


def test_weights_default_is_the_blocks_unless_a_dtype_is_asked_for(mdir):
    path = model_path(mdir, "llama", "Q8_0")
    with orc.Model(path, device="cpu") as q, orc.Model(path, device="cpu", dtype="float32") as d:
        assert q.weights == "quantized" and d.weights == "dequantized"
        assert q.memory()["quantized"] > 0 and d.memory()["quantized"] == 0
    with orc.Model(path, device="cpu", fault="raw_as_f16") as f:  # the fault is a dequantizing load's
        assert f.weights == "dequantized"


def test_dtype_aliases_mean_the_same(mdir):
    path = model_path(mdir, "qwen2", "Q8_0")
    with orc.Model(path, dtype="f16") as a, orc.Model(path, dtype="float16") as b:
        assert a.dtype == b.dtype == "float16" and a.round_matmul_inputs and b.round_matmul_inputs
        np.testing.assert_array_equal(orc.Session(a, n_ctx=8).forward([1, 2]), orc.Session(b, n_ctx=8).forward([1, 2]))
    assert orc._orc.parse_dtype("bf16") == "bfloat16"
    with pytest.raises(ValueError, match="dtype must be"):
        orc.Model(path, dtype="float8")


# ------------------------------------------------------------------------------ sessions

def test_history_lives_with_the_cache(mdir):
    with orc.Model(model_path(mdir, "qwen2")) as m:
        s = orc.Session(m, n_ctx=16)
        s.forward([1, 2, 3])
        s.forward([4], "last")
        assert s.history == [1, 2, 3, 4]
        f = s.fork()
        s.rewind(2)
        assert s.history == [1, 2] and f.history == [1, 2, 3, 4]
        with pytest.raises(ValueError):
            s.forward([999])
        assert s.history == [1, 2]
        s.reset()
        assert s.history == [] and s.n_past == 0


def test_generate_on_a_closed_session_says_closed(mdir):
    with orc.Model(model_path(mdir, "qwen2")) as m:
        s = orc.Session(m, n_ctx=16)
        s.close()
        with pytest.raises(orc.OrcError, match="session was closed"):
            list(s.generate([1, 2], max_tokens=2))


def test_forward_checks_capacity_before_allocating(mdir):
    with orc.Model(model_path(mdir, "qwen2")) as m:
        s = orc.Session(m, n_ctx=64)
        t0 = time.perf_counter()
        with pytest.raises(ValueError, match=r"1000000 tokens after 0 already in the session exceed n_ctx = 64"):
            s.forward(np.ones(1_000_000, np.int64))
        assert time.perf_counter() - t0 < 5  # no 3.8 GB logits array first


def test_n_threads_is_bounded(mdir):
    with pytest.raises(ValueError, match=r"n_threads is 30000: at most 1024"):
        orc.Model(model_path(mdir, "qwen2"), n_threads=30000)
    with pytest.raises(ValueError, match="n_threads is -1"):
        orc.Model(model_path(mdir, "qwen2"), n_threads=-1)


def test_model_path_is_not_leaked(mdir):
    import sys

    path = str(model_path(mdir, "qwen2"))
    before = sys.getrefcount(path)
    for _ in range(20):
        orc.Model(path).close()
    assert sys.getrefcount(path) - before < 3


# ------------------------------------------------------------------------------ threads
# Each runs on the CPU in CI and on the GPU in a device run (`pytest -m gpu`).
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]

def _forward_loop(s, ids, n, errors, out=None):
    try:
        for _ in range(n):
            try:
                r = s.forward(ids, "last")
                if out is not None:
                    out.append(r)
            except ValueError:  # full: start over
                s.reset()
    except BaseException as e:  # noqa: BLE001 - reported by the test
        errors.append(e)


@pytest.mark.parametrize("device", DEVICES)
def test_one_session_two_threads_stays_consistent(mdir, device):
    """Calls are serialised: n_past never exceeds n_ctx, fork() afterwards is sound."""
    with orc.Model(model_path(mdir, "qwen2"), device=device) as m:
        s = orc.Session(m, n_ctx=40)
        errors = []
        ts = [threading.Thread(target=_forward_loop, args=(s, list(range(16)), 200, errors)) for _ in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert not errors, errors
        assert 0 <= s.n_past <= 40 and s.n_past % 16 == 0 and len(s.history) == s.n_past
        f = s.fork()
        assert f.n_past == s.n_past and f.forward([1], "last").shape == (320,)


@pytest.mark.parametrize("device,n_threads", [("cpu", 1), ("cpu", 0), pytest.param("cuda", 0, marks=pytest.mark.gpu)])
def test_two_sessions_two_threads_equal_sequential(mdir, device, n_threads):
    path = model_path(mdir, "llama", "Q8_0")
    seqs = [rng_ids(8, 20), rng_ids(8, 21)]
    with orc.Model(path, device=device, n_threads=n_threads) as m:
        want = []
        for q in seqs:
            s = orc.Session(m, n_ctx=16)
            want.append([s.forward(q, "last") for _ in range(1)][0])
        outs = [[], []]

        def run(i):
            for _ in range(60):
                s = orc.Session(m, n_ctx=16)
                outs[i].append(s.forward(seqs[i], "last"))
                s.close()

        errors = run_threads(run, [(0,), (1,)])
        assert not errors, errors
        for i in range(2):
            assert len(outs[i]) == 60 and all(np.array_equal(o, want[i]) for o in outs[i])


@pytest.mark.parametrize("device", DEVICES)
def test_close_while_another_thread_forwards(mdir, device):
    """Model.close() and Session.close() wait for a call in progress; the other thread ends
    cleanly (its call completes, or the next one raises OrcError); no use after free."""
    path = model_path(mdir, "qwen3", "Q8_0", n_layer=4)
    for closer in ("model", "session"):
        m = orc.Model(path, device=device)
        s = orc.Session(m, n_ctx=512)
        errors, done = [], []

        def run():
            try:
                for _ in range(50):
                    s.forward(rng_ids(8, 1), "last")
                    if s.n_past > 400:
                        s.reset()
                    done.append(1)
            except orc.OrcError as e:
                errors.append(e)

        t = threading.Thread(target=run)
        t.start()
        while not done:
            time.sleep(0.001)
        (m if closer == "model" else s).close()
        t.join()
        assert len(errors) == 1 and "closed" in str(errors[0]), (closer, errors)
        with pytest.raises(orc.OrcError, match="closed"):
            s.forward([1])
        m.close()


def test_other_python_threads_run_while_a_forward_waits(mdir):
    """A thread waiting for a busy model does not hold the GIL."""
    path = model_path(mdir, "qwen3", "Q8_0", n_layer=4)
    with orc.Model(path) as m:
        s = orc.Session(m, n_ctx=1024)
        ticks = []
        stop = threading.Event()

        def ticker():
            while not stop.is_set():
                ticks.append(1)
                time.sleep(0.0005)

        t = threading.Thread(target=ticker)
        t.start()
        t0 = time.perf_counter()
        s.forward(rng_ids(600, 2), "none")
        elapsed = time.perf_counter() - t0
        stop.set()
        t.join()
        assert elapsed > 0.02 and len(ticks) >= 3, (elapsed, len(ticks))  # ticking went on during the forward


# ------------------------------------------------------------------------------ the file's consistency

set_kv = synth.set_kv


def test_block_count_must_match_the_tensors(tmp_path):
    path = synth.make_model(tmp_path / "m.gguf", synth.spec_for("qwen2", "F32"),
                            edit=set_kv("qwen2.block_count", "u32", 1))
    with pytest.raises(orc.GGUFError, match=r"'blk.1.attn_norm.weight' belongs to layer 1 but qwen2.block_count is 1"):
        orc.Model(path)


def test_head_count_error_blames_the_right_key(tmp_path):
    path = synth.make_model(tmp_path / "m.gguf", synth.spec_for("qwen2", "F32"),
                            edit=set_kv("qwen2.attention.head_count", "u32", 5))
    with pytest.raises(orc.GGUFError, match=r"embedding_length \(64\) is not a multiple of attention.head_count \(5\)"):
        orc.Model(path)


def test_config_is_generated_from_the_one_table(mdir):
    with orc.Model(model_path(mdir, "gemma3")) as m:
        c = m.config
    assert c["arch"] == "gemma3" and c["rope_type"] == "neox" and c["ffn_act"] == "gelu_tanh"
    assert c["swa_type"] == "pattern" and c["swa_period"] == 6 and c["sliding_window"] > 0
    assert c["n_expert"] == 0 and c["router"] == "none" and c["yarn_factor"] == 0.0
    assert orc._orc.architectures() == ["llama", "qwen2", "qwen3", "gemma3", "gpt-oss", "qwen3moe"]


def test_generate_continues_the_cache_and_stops_without_the_stop_text(mdir):
    with orc.Model(model_path(mdir, "qwen2")) as m:
        s = orc.Session(m, n_ctx=64)
        ref = [st.token for st in orc.Session(m, n_ctx=64).generate([3, 4, 5], max_tokens=6, temperature=0)]
        s.forward([3, 4, 5])
        cont = [st.token for st in s.generate([], max_tokens=6, temperature=0)]
        assert cont == ref  # empty ids: the same continuation as feeding the prompt
        stop = ref[2]
        steps = list(orc.Session(m, n_ctx=64).generate([3, 4, 5], max_tokens=6, temperature=0, stop=[stop]))
        assert [st.token for st in steps] == ref[:3] and steps[-1].token == stop
