"""../shared/HARDENING.md rows 15-18 (the model built from a file) and 20-24 (calls):
each bad model or call ends in a clear Python exception naming the problem."""
import numpy as np
import pytest

import orc
from orc import synth


def build(tmp_path, edit=None, arch="qwen2", wt="F32", name="m.gguf"):
    return synth.make_model(tmp_path / name, synth.spec_for(arch, wt), edit=edit)


set_kv, drop_kv, drop_tensor = synth.set_kv, synth.drop_kv, synth.drop_tensor


# -- row 15: architecture
def test_15_missing_architecture(tmp_path):
    with pytest.raises(orc.GGUFError, match="general.architecture"):
        orc.Model(build(tmp_path, drop_kv("general.architecture")))


def test_15_unsupported_architecture_names_the_supported_ones(tmp_path):
    with pytest.raises(orc.GGUFError, match=r"'mamba'.*llama, qwen2, qwen3, gemma3"):
        orc.Model(build(tmp_path, set_kv("general.architecture", "str", "mamba")))


# -- row 16: tensors
def test_16_missing_tensor(tmp_path):
    with pytest.raises(orc.GGUFError, match=r"missing tensor 'blk.1.ffn_up.weight'"):
        orc.Model(build(tmp_path, drop_tensor("blk.1.ffn_up.weight")))


def test_16_missing_qwen2_bias(tmp_path):
    with pytest.raises(orc.GGUFError, match=r"blk.0.attn_k.bias"):
        orc.Model(build(tmp_path, drop_tensor("blk.0.attn_k.bias")))


def test_16_wrong_shape(tmp_path):
    def edit(md, tensors):
        for i, (n, t, shape, data) in enumerate(tensors):
            if n == "blk.0.attn_v.weight":
                tensors[i] = (n, t, (shape[1], shape[0]), data)  # transposed
    with pytest.raises(orc.GGUFError, match=r"'blk.0.attn_v.weight' has shape \(64, 32\), expected \(32, 64\)"):
        orc.Model(build(tmp_path, edit))


def test_16_unsupported_tensor_type(tmp_path):
    def edit(md, tensors):
        for i, (n, t, shape, data) in enumerate(tensors):
            if n == "blk.0.ffn_gate.weight":
                tensors[i] = (n, "Q8_1", shape, bytes(len(data) // 34 * 40))
    types = dict(synth.GGML_TYPES, Q8_1=(9, 32, 40))  # a valid ggml type orc does not dequantize
    orig = synth.GGML_TYPES
    synth.GGML_TYPES = types
    try:
        path = build(tmp_path, edit, wt="Q8_0")
    finally:
        synth.GGML_TYPES = orig
    with pytest.raises(orc.GGUFError, match=r"'blk.0.ffn_gate.weight' has type Q8_1, which orc cannot dequantize"):
        orc.Model(path)


# -- row 17: hyperparameters
@pytest.mark.parametrize("key,vtype,value,match", [
    ("qwen2.block_count", "str", "two", r"qwen2.block_count"),
    ("qwen2.block_count", "u32", 0, r"qwen2.block_count.*positive"),
    ("qwen2.block_count", "u64", 10**9, r"qwen2.block_count.*implausibly large"),
    ("qwen2.attention.head_count", "u32", 0, r"head_count.*positive"),
    ("qwen2.attention.head_count", "u32", 6, r"embedding_length \(64\) is not a multiple of attention.head_count \(6\)"),
    ("qwen2.attention.head_count_kv", "u32", 3, r"head_count_kv \(3\) does not divide head_count \(4\)"),
    ("qwen2.context_length", "u32", 0, r"context_length.*positive"),
    ("qwen2.attention.layer_norm_rms_epsilon", "str", "1e-6", r"layer_norm_rms_epsilon"),
    ("qwen2.attention.head_count_kv", "arr:u32", [2, 2, 2], r"head_count_kv' has 3 entries, block_count is 2"),
    ("qwen2.vocab_size", "u32", 999, r"vocab_size' is 999 but token_embd.weight has 320 rows"),
    ("qwen2.rope.scaling.type", "str", "longrope", r"rope.scaling.type' = 'longrope' is not supported"),
    ("qwen2.rope.scaling.type", "str", "yarn", r"missing hyperparameter 'qwen2.rope.scaling.original_context_length'"),
])
def test_17_bad_hyperparameters(tmp_path, key, vtype, value, match):
    with pytest.raises(orc.GGUFError, match=match):
        orc.Model(build(tmp_path, set_kv(key, vtype, value)))


def test_17_any_integer_width_is_accepted(tmp_path):
    m = orc.Model(build(tmp_path, set_kv("qwen2.block_count", "i64", 2)))
    assert m.config["n_layer"] == 2
    m.close()


def test_17_missing_required_hyperparameter(tmp_path):
    with pytest.raises(orc.GGUFError, match=r"missing hyperparameter 'qwen2.embedding_length'"):
        orc.Model(build(tmp_path, drop_kv("qwen2.embedding_length")))


def test_18_vocabulary_size_must_match_embedding_rows(tmp_path):
    def edit(md, tensors):
        for i, (k, t, v) in enumerate(md):
            if k == "tokenizer.ggml.tokens":
                md[i] = (k, t, v[:-1])
    with pytest.raises(orc.GGUFError, match=r"tokenizer.ggml.tokens.*319.*320"):
        orc.Model(build(tmp_path, edit))


# -- rows 20, 21, 24: calls
@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = synth.make_model(tmp_path_factory.mktemp("h") / "m.gguf", synth.spec_for("qwen2", "F32"))
    m = orc.Model(path)
    yield m
    m.close()


@pytest.mark.parametrize("ids,exc,match", [
    ([5, -1], ValueError, r"token id -1 at position 1 is out of range \[0, 320\)"),
    ([320], ValueError, r"token id 320 at position 0"),
    ([2**40], ValueError, r"out of range"),
    ([], ValueError, r"at least one token"),
    (np.array([1.5, 2.0]), TypeError, r"integers"),
    (np.zeros((2, 2), np.int32), TypeError, r"1-D"),
    ("hello", TypeError, r"token ids"),
])
def test_20_bad_token_ids(model, ids, exc, match):
    s = orc.Session(model, n_ctx=16)
    with pytest.raises(exc, match=match):
        s.forward(ids)
    assert s.n_past == 0


def test_21_context_overflow_is_an_error_and_leaves_the_session_unchanged(model):
    s = orc.Session(model, n_ctx=8)
    before = s.forward([1, 2, 3, 4, 5, 6], "last")
    with pytest.raises(ValueError, match=r"3 tokens after 6 already in the session exceed n_ctx = 8"):
        s.forward([7, 8, 9])
    assert s.n_past == 6
    s.rewind(1)
    np.testing.assert_array_equal(s.forward([6], "last"), before)


def test_21_generate_checks_the_context_up_front(model):
    s = orc.Session(model, n_ctx=8)
    with pytest.raises(ValueError, match="n_ctx is 8"):
        next(s.generate([1, 2, 3], max_tokens=10))


@pytest.mark.parametrize("n", [-1, 5, 2**40])
def test_21_bad_rewind(model, n):
    s = orc.Session(model, n_ctx=8)
    s.forward([1, 2, 3])
    with pytest.raises(ValueError, match=r"cannot rewind"):
        s.rewind(n)
    assert s.n_past == 3


def test_24_use_after_close(tmp_path):
    m = orc.Model(build(tmp_path))
    s = orc.Session(m, n_ctx=8)
    s.forward([1])
    m.close()
    with pytest.raises(orc.OrcError, match="model of this session was closed"):
        s.forward([2])
    with pytest.raises(orc.OrcError, match="closed"):
        m.tensor("output_norm.weight")
    with pytest.raises(orc.OrcError, match="closed"):
        orc.Session(m)
    s2 = orc.Session.__new__(orc.Session)
    with pytest.raises(orc.OrcError, match="closed"):
        s2.forward([1])


def test_24_closed_session(model):
    s = orc.Session(model, n_ctx=8)
    s.close()
    with pytest.raises(orc.OrcError, match="session was closed"):
        s.forward([1])
    s.close()  # twice is fine


def test_bad_device_and_dtype(tmp_path):
    p = build(tmp_path)
    with pytest.raises(ValueError, match="device"):
        orc.Model(p, device="tpu")
    with pytest.raises(ValueError, match="dtype"):
        orc.Model(p, dtype="int8")
    with pytest.raises(FileNotFoundError):
        orc.Model(tmp_path / "nope.gguf")


def test_cuda_without_gpu_is_a_clear_error(tmp_path):
    if orc.cuda_available():
        pytest.skip("a GPU is usable here")
    with pytest.raises(orc.CudaError):
        orc.Model(build(tmp_path), device="cuda")
