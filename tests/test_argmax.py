"""Session.forward(ids, logits="argmax"): the greedy choice made on the backend (the argmax
primitive: cuda/kernels/argmax.cu, backend_cpu.c), so that a greedy step copies 16 bytes instead
of the logits. Checked against np.argmax of the "last" logits on both backends, in eager and
recorded-graph steps, on a vocabulary wide enough that the GPU splits a row over several blocks;
the sampler's rules: the lowest id among equal logits, and no choice from NaN/Inf logits."""

import numpy as np
import pytest

import orc
from orc import synth
from threads import run_threads

V = 20000  # > 4096 columns: the GPU kernel splits a row over 5 blocks and merges them

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("argmax") / "qwen2-Q8_0.gguf"
    return synth.make_model(str(path), synth.spec_for("qwen2", "Q8_0", n_vocab=V))


def open_model(path, device):
    if device == "cuda" and not orc.cuda_available():
        pytest.skip("no usable GPU")
    return orc.Model(path, device=device)


@pytest.mark.parametrize("device", DEVICES)
def test_argmax_is_the_argmax_of_the_logits(model_path, device):
    """Each step's "argmax" row is {np.argmax of the "last" logits, that logit exactly, 0, -1}
    for a prompt and then one-token steps of random tokens (on the GPU: recorded graphs)."""
    m = open_model(model_path, device)
    rng = np.random.default_rng(1)
    prompt = [int(t) for t in rng.integers(0, V, 12)]
    a, b = orc.Session(m, n_ctx=64), orc.Session(m, n_ctx=64)
    ids, paths = [prompt], set()
    ids += [[int(t)] for t in rng.integers(0, V, 16)]
    chosen = []
    for step in ids:
        row, _ = a._forward(step, "argmax")
        paths.add(a.last_path)
        last = b.forward(step, "last")
        assert np.isfinite(last).all() and last.std() > 0
        assert row.shape == (4,) and row.dtype == np.float32
        assert int(row[0]) == int(np.argmax(last)), (step, a.last_path)
        assert row[1] == last.max() and row[2] == 0 and row[3] == -1
        chosen.append(int(row[0]))
    assert len(set(chosen)) > 4, chosen  # the logits moved: not one answer for every step
    assert a.forward([chosen[-1]], "argmax") == int(np.argmax(b.forward([chosen[-1]], "last")))
    if device == "cuda":
        assert "graph replay" in paths, paths


def _planted(values):
    """A logits patch replacing the last row with `values`."""
    def fn(act, name):
        act[-1, :] = values
    return fn


@pytest.mark.parametrize("device", DEVICES)
def test_ties_go_to_the_lowest_id_across_blocks(model_path, device):
    """Equal greatest logits at ids in different GPU blocks (and the row's last column): the lowest
    id, as the sampler's greedy choice and np.argmax."""
    m = open_model(model_path, device)
    rng = np.random.default_rng(2)
    for winners in ([17003, 9001, 12500], [V - 1, 4095, 4096], [19999, 8000]):
        v = rng.standard_normal(V).astype(np.float32)
        v[winners] = v.max() + 1.5
        s = orc.Session(m, n_ctx=16)
        tok = s.forward([3, 5, 7], "argmax", patch={"logits": _planted(v)})
        assert tok == min(winners) == int(np.argmax(v))
        assert tok == orc.sample(v, temperature=0)


@pytest.mark.parametrize("device", DEVICES)
def test_nonfinite_logits_have_no_greedy_choice(model_path, device):
    """NaN or infinite logits raise ValueError naming how many and the first id (as the sampler
    refuses them); the session still took the tokens, as forward does before it returns."""
    m = open_model(model_path, device)
    rng = np.random.default_rng(3)
    for bad, first in (({15000: np.nan, 5000: np.nan, 100: np.inf}, 100), ({19999: -np.inf}, 19999)):
        v = rng.standard_normal(V).astype(np.float32)
        for j, x in bad.items():
            v[j] = x
        s = orc.Session(m, n_ctx=16)
        with pytest.raises(ValueError, match=rf"hold {len(bad)} non-finite values.*token id {first}\)"):
            s.forward([3, 5], "argmax", patch={"logits": _planted(v)})
        with pytest.raises(ValueError, match="not finite"):
            orc.sample(v, temperature=0)


@pytest.mark.parametrize("device", DEVICES)
def test_batch_argmax_and_greedy_generation(model_path, device):
    """forward_batch's "argmax" is each sequence's own; generate's plain greedy steps (made on the
    backend) give the tokens of the sampler's greedy steps over the logits (return_logits=True)."""
    m = open_model(model_path, device)
    rng = np.random.default_rng(4)
    seqs = [[int(t) for t in rng.integers(0, V, n)] for n in (3, 9, 5)]
    lasts = m.forward_batch(seqs, logits="last")
    assert m.forward_batch(seqs, logits="argmax") == [int(np.argmax(x)) for x in lasts]
    prompt = seqs[1]
    fast = [st.token for st in orc.Session(m, n_ctx=64).generate(prompt, 12, stop=[], temperature=0)]
    slow = [st.token for st in orc.Session(m, n_ctx=64).generate(prompt, 12, stop=[], temperature=0,
                                                                  return_logits=True)]
    assert fast == slow and len(fast) == 12
    assert len(set(fast)) > 1, fast


@pytest.mark.parametrize("device", DEVICES)
def test_argmax_from_two_threads(model_path, device):
    """Greedy steps on the backend (the GIL released) from two threads: two sessions give the tokens
    each gives alone; two threads on one session are serialised (n_past counts every step) and
    every "argmax" they get is np.argmax of the "last" logits a fresh session computes there."""
    m = open_model(model_path, device)
    prompts = [[3, 17, 250], [900, 5, 5, 12000]]

    def greedy(s, prompt, n):
        tok, out = s.forward(prompt, "argmax"), []
        for _ in range(n):
            out.append(tok)
            tok = s.forward([tok], "argmax")
        return out

    want = [greedy(orc.Session(m, n_ctx=64), p, 24) for p in prompts]
    got = [None, None]

    def run(i):
        got[i] = greedy(orc.Session(m, n_ctx=64), prompts[i], 24)

    errors = run_threads(run, [(0,), (1,)])
    assert not errors, errors
    assert got == want and len(set(want[0])) > 1

    s, seen = orc.Session(m, n_ctx=64), []

    def steps(tok):
        for _ in range(10):
            seen.append(s.forward([tok], "argmax"))

    errors = run_threads(steps, [(7,), (11,)])
    assert not errors, errors
    assert s.n_past == 20 and len(s.history) == 20 and len(seen) == 20
    ref = orc.Session(m, n_ctx=64)
    lasts = [ref.forward([t], "last") for t in s.history]
    assert sorted(seen) == sorted(int(np.argmax(x)) for x in lasts)
