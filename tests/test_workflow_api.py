"""The researcher's workflow around the API: the orc_model fixture (through pytester, in a
throwaway project), help() texts of Model/Session, and their Jupyter HTML."""
import pydoc
import re

import numpy as np
import pytest

import orc
from orc import synth

pytest_plugins = ["pytester"]


# ------------------------------------------------------------------------------------------------
# orc_model fixture

FIXTURE_TESTS = '''
import numpy as np
import orc
from orc import synth

def test_default_is_a_small_qwen2_q8_0_on_the_cpu(orc_model):
    m = orc_model()
    assert isinstance(m, orc.Model) and not m.closed
    assert m.arch == "qwen2" and m.device == "cpu"
    assert m.tensors[0].name and {t.type for t in m.tensors} == {"F32", "Q8_0"}
    assert m.synth_spec == synth.spec_for("qwen2", "Q8_0")
    logits = orc.Session(m, n_ctx=8).forward([1, 2, 3])
    assert logits.shape == (3, m.vocab_size) and np.isfinite(logits).all()

def test_arch_type_and_spec_overrides(orc_model):
    m = orc_model("llama", "Q4_K", n_layer=3, n_vocab=400, tied=True)
    c = m.config
    assert (c["arch"], c["n_layer"], c["n_vocab"], c["n_embd"]) == ("llama", 3, 400, 256)
    assert c["tied_output"] and "Q4_K" in {t.type for t in m.tensors}

def test_the_file_is_what_synth_writes(orc_model, tmp_path):
    m = orc_model("qwen3", "F16", seed=5)
    ref = synth.make_model(tmp_path / "ref.gguf", synth.spec_for("qwen3", "F16", seed=5))
    assert synth.file_sha256(m.path) == synth.file_sha256(ref)

def test_same_arguments_share_the_file_and_dtype_and_fault(orc_model):
    a = orc_model("qwen2", "Q8_0")
    b = orc_model("qwen2", "Q8_0", dtype="float16")
    c = orc_model("qwen2", "Q8_0", n_layer=1)
    assert a.path == b.path != c.path
    assert b.dtype == "float16" and b.fault is None
    bad = orc_model("qwen2", "Q8_0", fault="raw_as_f16")
    assert bad.fault == "raw_as_f16"
    w = "blk.0.attn_q.weight"
    assert not np.array_equal(bad.tensor(w), a.tensor(w))

MODELS = []

def test_models_are_closed_after_the_test_part1(orc_model):
    MODELS.append(orc_model())

def test_models_are_closed_after_the_test_part2():
    assert MODELS and MODELS[0].closed

def test_unknown_spec_field(orc_model):
    try:
        orc_model(n_layers=3)
    except TypeError as e:
        assert "n_layers" in str(e) and "n_layer" in str(e)
    else:
        raise AssertionError("no TypeError")

def test_cuda_skips_without_a_gpu(orc_model):
    m = orc_model(device="cuda")
    assert m.device.startswith("cuda")
'''


def test_orc_model_fixture(pytester):
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_fixture=FIXTURE_TESTS)
    r = pytester.runpytest("-p", "orc.pytest_plugin", "-rs")
    if orc.cuda_available():
        r.assert_outcomes(passed=8)
    else:
        r.assert_outcomes(passed=7, skipped=1)
        r.stdout.fnmatch_lines(["*orc_model(device='cuda'): no usable CUDA GPU*"])


REAL_FIXTURE_TESTS = '''
import pytest
import orc

def test_real(orc_model):
    m = orc_model("smollm2-135m-instruct")
    assert m.arch == "llama" and m.synth_spec is None and m.tokenize("Hello")

def test_real_takes_no_spec(orc_model):
    with pytest.raises(TypeError, match="pinned real model"):
        orc_model("smollm2-135m-instruct", "Q4_K")

def test_real_absent_is_a_skip(orc_model, monkeypatch, tmp_path):
    monkeypatch.setenv("ORC_MODEL_CACHE", str(tmp_path))
    monkeypatch.delenv("ORC_FETCH_MODELS", raising=False)
    orc_model("gemma3-270m")
'''


def test_orc_model_gives_pinned_real_models(pytester):
    from orc import fixtures

    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_real=REAL_FIXTURE_TESTS)
    r = pytester.runpytest("-p", "orc.pytest_plugin", "-rs")
    if fixtures.available("smollm2-135m-instruct"):
        r.assert_outcomes(passed=2, skipped=1)
    else:
        r.assert_outcomes(passed=1, skipped=2)
    r.stdout.fnmatch_lines(["*orc_model('gemma3-270m'): real model not available*python -m orc.fixtures gemma3-270m*"])


def test_orc_model_fixture_failure_is_reported(pytester):
    """A test using the fixture can fail (the fixture is not a blanket pass)."""
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_bad="def test_wrong_arch(orc_model):\n    assert orc_model('llama').arch == 'qwen2'\n")
    r = pytester.runpytest("-p", "orc.pytest_plugin")
    r.assert_outcomes(failed=1)


# ------------------------------------------------------------------------------------------------
# help() and docstrings

def _help(obj) -> str:
    return pydoc.render_doc(obj, renderer=pydoc.plaintext)


def test_help_session_forward_tells_shapes_and_logits_modes():
    text = _help(orc.Session.forward)
    assert re.search(r"forward\(self, ids, logits: '?str'? = 'all', \*, patch=None\)", text), text[:200]
    for needle in ('"all"', '"last"', '"none"', "[len(ids), n_vocab]", "[n_vocab]", "float32", "n_past",
                   "ValueError", "[0, n_vocab)"):
        assert needle in text, needle


@pytest.mark.parametrize("name", ["forward", "trace", "sample", "generate", "rewind", "reset", "fork", "history"])
def test_session_methods_are_documented(name):
    doc = (getattr(orc.Session, name).__doc__ or "").strip()
    assert len(doc) > 20, f"Session.{name}: {doc!r}"


@pytest.mark.parametrize("name", ["tensor", "tokenize", "detokenize", "token_text", "apply_chat_template",
                                  "close", "metadata", "tensors", "hook_names", "tokenizer", "vocab_size",
                                  "bos", "eos", "fault"])
def test_model_methods_are_documented(name):
    doc = (getattr(orc.Model, name).__doc__ or "").strip()
    assert len(doc) > 15, f"Model.{name}: {doc!r}"


def test_help_model_names_its_parameters():
    text = _help(orc.Model)
    for needle in ("device", "dtype", "weights", "quantized", "n_threads", "validate", "progress",
                   "round_matmul_inputs", "fault", "raw_as_f16"):
        assert needle in text, needle


# ------------------------------------------------------------------------------------------------
# repr and _repr_html_

@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = synth.make_model(tmp_path_factory.mktemp("wf") / "m.gguf", synth.spec_for("llama", "Q8_0", n_layer=3))
    with orc.Model(path, device="cpu") as m:
        yield m


def test_model_html_tells_the_facts(model):
    h = model._repr_html_()
    c = model.config
    assert "m.gguf" in h and "orc-synth-llama-Q8_0" in h and "<b>cpu</b>" in h and "float32" in h
    for label, value in (("layers", c["n_layer"]), ("embedding", c["n_embd"]), ("vocabulary", c["n_vocab"])):
        assert re.search(rf">{label}</th><td[^>]*>{value}</td>", h), label
    # norms in F32 (2 per layer + output_norm); 7 matrices per layer + token_embd + output in Q8_0
    assert "F32: 7, Q8_0: 23" in h
    assert f"{len(model.hook_names)} (Model.hook_names)" in h
    assert "FAULT" not in h


def test_fault_is_loud_in_repr_and_html(model):
    with orc.Model(model.path, device="cpu", fault="raw_as_f16") as bad:
        assert "FAULT=raw_as_f16" in repr(bad)
        assert "FAULT: raw_as_f16" in bad._repr_html_()
    assert "closed" in repr(bad) and "closed" in bad._repr_html_()


def test_session_html_shows_the_cache_and_the_last_tokens(model):
    s = orc.Session(model, n_ctx=100)
    assert "0 / 100 tokens" in s._repr_html_()
    ids = model.tokenize("a b c d")
    s.forward(ids)
    h = s._repr_html_()
    assert f"{len(ids)} / 100 tokens" in h and str(ids) in h
    assert "a b c d" in h.replace("&#x27;", "'")
    s.forward(list(range(3, 43)))  # more than the 32 shown
    h = s._repr_html_()
    assert "[" + ", ".join(map(str, s.history[-32:])) + "]" in h and "... [" in h
    s.close()
    assert "closed" in s._repr_html_()


def test_html_escapes(model, tmp_path):
    # a model name with markup in it must not inject HTML
    path = synth.make_model(tmp_path / "x.gguf", synth.spec_for(
        "qwen2", "Q8_0", extra_metadata=[]),
        edit=lambda md, t: md.__setitem__(1, ("general.name", "str", "<script>x</script>")))
    with orc.Model(path) as m:
        h = m._repr_html_()
    assert "<script>" not in h and "&lt;script&gt;" in h


def test_apply_chat_template_passes_template_and_tokenize(model, tmp_path):
    path = synth.make_model(tmp_path / "q.gguf", synth.spec_for("qwen2", "Q8_0"))
    msgs = [{"role": "user", "content": "hi"}]
    with orc.Model(path) as m:
        text = m.apply_chat_template(msgs, template="chatml")
        assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        assert m.apply_chat_template(msgs, template="chatml", tokenize=True) == m.tokenize(text, special=True)
        assert np.asarray(m.tokenize(text, special=True)).size < len(m.tokenize(text, special=False))
