"""Sampling through a model (issue #12 item 5): the logits must be one row of the model's
vocabulary, or the sampler would hand back an id the model does not have."""
import numpy as np
import pytest

import orc
from orc import synth


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = synth.make_model(tmp_path_factory.mktemp("sv") / "m.gguf", arch="qwen2", n_vocab=320)
    with orc.Model(path, device="cpu") as m:
        yield m


def test_session_sample_refuses_logits_longer_than_the_vocabulary(model):
    s = orc.Session(model, n_ctx=16)
    logits = s.forward([1, 2, 3], logits="last")
    assert logits.shape == (320,)
    longer = np.concatenate([logits, np.full(80, logits.max() + 100, np.float32)])  # the argmax is past the vocabulary
    assert int(np.argmax(longer)) >= 320
    with pytest.raises(ValueError, match=r"logits have 400 entries but the model's vocabulary has n_vocab = 320"):
        s.sample(longer, temperature=0)
    with pytest.raises(ValueError, match=r"logits have 319 entries .* n_vocab = 320"):
        s.sample(logits[:-1], seed=1)
    with pytest.raises(ValueError, match=r"logits have 960 entries"):
        s.sample(s.forward([4, 5, 6]).ravel(), seed=1)  # three rows flattened into one
    t = s.sample(logits, temperature=0)
    assert t == int(np.argmax(logits)) and 0 <= t < 320


def test_sampler_n_vocab_argument():
    x = np.arange(10, dtype=np.float32)
    smp = orc.Sampler(seed=3, temperature=0)
    assert smp.sample(x) == 9  # without n_vocab any length goes
    assert smp.sample(x, n_vocab=10) == 9
    with pytest.raises(ValueError, match="logits have 10 entries but the model's vocabulary has n_vocab = 8"):
        smp.sample(x, n_vocab=8)
    with pytest.raises(ValueError, match="n_vocab = 8"):
        smp.probs(x, n_vocab=8)
    assert smp.probs(x, n_vocab=10)[9] == 1.0
    with pytest.raises(ValueError, match="n_vocab = 12"):
        orc.sample(x, temperature=0, n_vocab=12)
    assert orc.sample(x, temperature=0, n_vocab=10) == 9
    for bad, exc in ((0, ValueError), (-1, ValueError), (2**31, ValueError), (1.5, TypeError), (True, TypeError)):
        with pytest.raises(exc, match="n_vocab"):
            smp.sample(x, n_vocab=bad)
    with pytest.raises(TypeError):
        smp.sample(x, None, 10)  # keyword only
