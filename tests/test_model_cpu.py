"""The CPU reference backend against Hugging Face transformers.

Goldens (tests/golden/synth/*.npz) were produced by tools/make_goldens.py: HF
transformers' own GGUF loader (dequantizing with gguf-py) running the same
synthetic files in float32. Here orc regenerates each file (its hash must match
the golden's, so the generator cannot drift silently), loads it through orc's
single loading path and compares.
"""
import glob
import os

import numpy as np
import pytest

import orc
from orc import synth

GOLDEN_DIR = os.path.join(os.path.dirname(__file__), "golden", "synth")
GOLDENS = sorted(os.path.basename(p)[:-4] for p in glob.glob(os.path.join(GOLDEN_DIR, "*.npz")))


def nmse(a, b):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return float(np.sum((a - b) ** 2) / np.sum(b ** 2))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("synth")


_cache = {}


def synth_model(model_dir, arch, wt):
    key = (arch, wt)
    if key not in _cache:
        _cache[key] = synth.make_model(os.path.join(model_dir, f"{arch}_{wt}.gguf"), synth.spec_for(arch, wt))
    return _cache[key]


def load_golden(name):
    g = np.load(os.path.join(GOLDEN_DIR, name + ".npz"))
    return {k: g[k] for k in g.files}


def test_goldens_exist_for_every_arch_and_type():
    assert len(GOLDENS) == 16, GOLDENS
    for arch in ["llama", "qwen2", "qwen3", "gemma3"]:
        for wt in ["F32", "F16", "Q8_0", "Q4_K"]:
            assert f"{arch}_{wt}" in GOLDENS


@pytest.mark.parametrize("name", GOLDENS)
def test_cpu_logits_match_hf(model_dir, name):
    arch, wt = name.split("_", 1)
    g = load_golden(name)
    path = synth_model(model_dir, arch, wt)
    assert synth.file_sha256(path) == str(g["gguf_sha256"]), "synthetic generator drifted from the golden"
    with orc.Model(path, device="cpu", dtype="float32") as m:
        s = orc.Session(m, n_ctx=64)
        logits = s.forward(g["ids"])
    ref = g["logits"]
    assert logits.shape == ref.shape and logits.dtype == np.float32
    assert np.isfinite(logits).all()
    per_pos = [nmse(logits[i], ref[i]) for i in range(len(ref))]
    assert max(per_pos) < 1e-6, (name, max(per_pos))
    np.testing.assert_array_equal(logits.argmax(-1), ref.argmax(-1))
    # the layers matter: the answer is not the input token, and positions differ
    assert np.mean(ref.argmax(-1) == g["ids"]) < 0.5
    assert len(set(ref.argmax(-1).tolist())) > len(ref) // 2


@pytest.mark.parametrize("arch", ["llama", "qwen2", "qwen3", "gemma3"])
def test_trace_matches_hf_hidden_states(model_dir, arch):
    """embd and each layer's resid_post are HF's hidden_states[0..L-1]; HF's last entry is
    after the final norm (our output_norm)."""
    g = load_golden(f"{arch}_F32")
    hs = g["hidden_states"]
    path = synth_model(model_dir, arch, "F32")
    with orc.Model(path, device="cpu") as m:
        L = m.config["n_layer"]
        acts = orc.Session(m, n_ctx=64).trace(g["ids"], capture=["embd", "blk.*.resid_post", "output_norm"])
    assert nmse(acts["embd"], hs[0]) < 1e-10
    for i in range(L - 1):
        assert nmse(acts[f"blk.{i}.resid_post"], hs[i + 1]) < 1e-8, i
    assert nmse(acts["output_norm"], hs[L]) < 1e-8


def test_hook_names_follow_the_design(model_dir):
    with orc.Model(synth_model(model_dir, "qwen3", "F32")) as m:
        names = m.hook_names
    assert names[0] == "embd" and names[-2:] == ["output_norm", "logits"]
    steps = ["attn_norm", "q", "k", "v", "q_norm", "k_norm", "q_rope", "k_rope", "attn_out", "attn_proj",
             "resid_mid", "ffn_norm", "ffn_gate", "ffn_up", "ffn_act", "ffn_out", "resid_post"]
    assert names[1:18] == [f"blk.0.{s}" for s in steps]
    assert names[18] == "blk.1.attn_norm"
    with orc.Model(synth_model(model_dir, "gemma3", "F32")) as m:
        assert "blk.0.attn_post_norm" in m.hook_names and "blk.0.ffn_post_norm" in m.hook_names
    with orc.Model(synth_model(model_dir, "llama", "F32")) as m:
        assert "blk.0.q_norm" not in m.hook_names


def test_hook_names_are_orc_hooks_single_definition(model_dir):
    """The C layer program and orc.hooks name the same steps in the same order."""
    from orc import hooks

    for arch in ["llama", "qwen3", "gemma3"]:
        with orc.Model(synth_model(model_dir, arch, "F32")) as m:
            names = m.hook_names
            steps = [s for s in hooks.HOOK_STEPS if f"blk.0.{s}" in names]
            assert names == hooks.hook_names(m.config["n_layer"], steps)
            assert hooks.hook_order(reversed(names)) == names


def test_trace_shapes_and_internal_consistency(model_dir):
    path = synth_model(model_dir, "qwen2", "F32")
    ids = np.arange(7) * 13 % 300
    with orc.Model(path) as m:
        c = m.config
        s = orc.Session(m, n_ctx=32)
        acts = s.trace(ids)
        assert s.n_past == 7
        q = acts["blk.0.q"]
        assert q.shape == (7, c["n_head"], c["head_dim"])
        assert acts["blk.0.k"].shape == (7, c["n_head_kv"], c["head_dim"])
        assert acts["logits"].shape == (7, c["n_vocab"])
        # residual stream bookkeeping holds exactly
        np.testing.assert_array_equal(acts["blk.0.resid_mid"], acts["embd"] + acts["blk.0.attn_proj"])
        np.testing.assert_array_equal(acts["blk.0.resid_post"], acts["blk.0.resid_mid"] + acts["blk.0.ffn_out"])
        # the q projection is attn_norm @ Wq^T + bias
        wq = m.tensor("blk.0.attn_q.weight")
        bq = m.tensor("blk.0.attn_q.bias")
        expect = acts["blk.0.attn_norm"].astype(np.float64) @ wq.T.astype(np.float64) + bq
        assert nmse(q.reshape(7, -1), expect) < 1e-10
        # position 0 of q_rope is q (rotation by angle 0)
        np.testing.assert_allclose(acts["blk.0.q_rope"][0], q[0], rtol=1e-6, atol=1e-6)
        # logits from a trace equal logits from forward on a fresh session
        s2 = orc.Session(m, n_ctx=32)
        np.testing.assert_array_equal(s2.forward(ids), acts["logits"])


@pytest.mark.parametrize("arch", ["qwen2", "gemma3"])
def test_chunked_prefill_and_single_steps_match_one_forward(model_dir, arch):
    path = synth_model(model_dir, arch, "Q8_0")
    ids = (np.arange(21) * 37) % 300
    with orc.Model(path) as m:
        full = orc.Session(m, n_ctx=32).forward(ids)
        chunked = orc.Session(m, n_ctx=32, n_batch=4).forward(ids)
        s = orc.Session(m, n_ctx=32)
        steps = np.stack([s.forward([t], logits="last") for t in ids])
        s3 = orc.Session(m, n_ctx=32)
        parts = np.concatenate([s3.forward(ids[:5]), s3.forward(ids[5:6]), s3.forward(ids[6:])])
    for other in (chunked, steps, parts):
        assert max(nmse(other[i], full[i]) for i in range(len(ids))) < 1e-10
        np.testing.assert_array_equal(other.argmax(-1), full.argmax(-1))


def test_logits_modes(model_dir):
    path = synth_model(model_dir, "llama", "F16")
    ids = [3, 50, 70, 9]
    with orc.Model(path) as m:
        full = orc.Session(m).forward(ids)
        last = orc.Session(m).forward(ids, logits="last")
        s = orc.Session(m)
        assert s.forward(ids, logits="none") is None and s.n_past == 4
    assert last.shape == (m.config["n_vocab"],)
    np.testing.assert_array_equal(last, full[-1])


def test_rewind_fork_reset(model_dir):
    path = synth_model(model_dir, "qwen3", "F32")
    a, b, c = [5, 9, 100, 7], [11, 12], [200, 201, 3]
    with orc.Model(path) as m:
        ref = orc.Session(m).forward(a + b)
        s = orc.Session(m)
        s.forward(a + c)
        s.rewind(len(c))
        assert s.n_past == len(a) and s.history == a
        np.testing.assert_allclose(s.forward(b), ref[len(a):], rtol=1e-5, atol=1e-5)
        f = s.fork()
        assert f.n_past == s.n_past and f.history == s.history
        np.testing.assert_array_equal(f.forward(c, "last"), s.forward(c, "last"))
        s.reset()
        assert s.n_past == 0 and s.history == []
        np.testing.assert_array_equal(s.forward(a + b), ref)


def test_tensor_is_the_models_own_dequantized_weight(model_dir):
    gguf = pytest.importorskip("gguf")
    path = synth_model(model_dir, "qwen2", "Q4_K")
    r = gguf.GGUFReader(path)
    t = next(t for t in r.tensors if t.name == "blk.1.ffn_down.weight")
    ref = gguf.quants.dequantize(t.data, t.tensor_type)
    with orc.Model(path) as m:
        w = m.tensor("blk.1.ffn_down.weight")
        assert w.shape == ref.shape and w.dtype == np.float32
        np.testing.assert_array_equal(w, ref)
        raw = m.tensor("blk.1.ffn_down.weight", raw=True)
        assert raw.dtype == np.uint8 and raw.nbytes == t.n_bytes
    with orc.Model(path, dtype="float16") as m:
        np.testing.assert_array_equal(m.tensor("blk.1.ffn_down.weight"), ref.astype(np.float16).astype(np.float32))


def test_greedy_generate_is_the_argmax_chain(model_dir):
    path = synth_model(model_dir, "llama", "Q8_0")
    prompt = [1, 40, 41, 42]
    with orc.Model(path) as m:
        s = orc.Session(m, n_ctx=64)
        got = [st.token for st in s.generate(prompt, max_tokens=12, temperature=0.0, stop=[])]
        # the same chain by hand
        s2 = orc.Session(m, n_ctx=64)
        logits = s2.forward(prompt, "last")
        want = []
        for _ in range(12):
            t = int(np.argmax(logits))
            want.append(t)
            logits = s2.forward([t], "last")
    assert got == want
    assert len(set(got)) > 1


def test_seeded_sampling_is_reproducible(model_dir):
    path = synth_model(model_dir, "qwen2", "F32")
    with orc.Model(path) as m:
        runs = []
        for _ in range(2):
            s = orc.Session(m, n_ctx=64)
            runs.append([st.token for st in s.generate([1, 2, 3], 16, temperature=1.0, top_k=50, seed=123, stop=[])])
        other = [st.token for st in orc.Session(m, n_ctx=64).generate([1, 2, 3], 16, temperature=1.0, top_k=50,
                                                                        seed=124, stop=[])]
    assert runs[0] == runs[1]
    assert other != runs[0]


def test_f16_weights_round_like_the_gpu(model_dir):
    """dtype=float16 on the CPU: weights hold float16 values; results stay close to float32."""
    path = synth_model(model_dir, "qwen2", "F32")
    ids = [4, 8, 15, 16, 23, 42]
    with orc.Model(path, dtype="float32") as m32, orc.Model(path, dtype="float16") as m16:
        a = orc.Session(m32).forward(ids)
        b = orc.Session(m16).forward(ids)
        w16 = m16.tensor("blk.0.attn_q.weight")
        np.testing.assert_array_equal(w16, w16.astype(np.float16).astype(np.float32))
    assert 0 < max(nmse(b[i], a[i]) for i in range(len(ids))) < 1e-4


def test_profile_counts_the_primitives(model_dir):
    with orc.Model(synth_model(model_dir, "qwen2", "Q8_0"), profile=True) as m:
        s = orc.Session(m)
        s.forward([1, 2, 3, 4], logits="last")
        p = m.profile()
        L = m.config["n_layer"]
        assert p["matmul"][0] == 7 * L + 1  # q k v o gate up down per layer, then the logits
        assert p["attention"][0] == L and p["add_bias"][0] == 3 * L and p["rms_norm"][0] == 2 * L + 1
        assert all(sec >= 0 for _, sec in p.values()) and p["matmul"][1] > 0
        assert m.profile()["matmul"] == (0, 0.0)  # reset by the previous call
    with orc.Model(synth_model(model_dir, "qwen2", "Q8_0")) as m:  # off by default
        orc.Session(m).forward([1, 2])
        assert m.profile()["matmul"][0] == 0
