"""tools/gguf_slice.py on a small generated GGUF: kept layers and rows are byte-identical, the
metadata stays self-consistent (block count, per-layer arrays, vocabulary arrays, merges,
special ids), provenance is recorded, and the output is deterministic."""
import hashlib

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
from gguf import GGMLQuantizationType as QT, GGUFReader, GGUFValueType, GGUFWriter  # noqa: E402
from gguf.quants import dequantize, quantize  # noqa: E402

from realmodels import load_tool  # noqa: E402

slicer = load_tool("gguf_slice")

N_VOCAB, N_EMBD, N_LAYER = 50, 64, 3
TOKENS = [f"t{i}" for i in range(N_VOCAB)]
TOKENS[10], TOKENS[11], TOKENS[12] = "ab", "a", "b"          # merge "a b" -> "ab"
TOKENS[20], TOKENS[21], TOKENS[22] = "xy", "x", "y"          # merge "x y" -> "xy"
TOKENS[40], TOKENS[41] = "<0x00>", "<0x01>"                  # byte tokens (type 6)
MERGES = ["a b", "x y", "t5 t7"]                              # "t5t7" is not a token


def _make(path):
    rng = np.random.default_rng(0)
    w = GGUFWriter(path, "llama")
    w.add_block_count(N_LAYER)
    w.add_embedding_length(N_EMBD)
    w.add_uint32("llama.vocab_size", N_VOCAB)
    w.add_array("llama.attention.head_count", [4, 4, 2])      # a per-layer array
    w.add_string("tokenizer.ggml.model", "gpt2")
    w.add_array("tokenizer.ggml.tokens", TOKENS)
    w.add_array("tokenizer.ggml.scores", [float(-i) for i in range(N_VOCAB)])
    w.add_array("tokenizer.ggml.token_type", [6 if i in (40, 41) else 1 for i in range(N_VOCAB)])
    w.add_array("tokenizer.ggml.merges", MERGES)
    w.add_uint32("tokenizer.ggml.bos_token_id", 1)
    w.add_uint32("tokenizer.ggml.eos_token_id", 2)
    w.add_string("tokenizer.chat_template", "{{ messages }}")
    w.add_tensor("token_embd.weight", quantize(rng.standard_normal((N_VOCAB, N_EMBD)).astype(np.float32), QT.Q8_0),
                 raw_dtype=QT.Q8_0)
    w.add_tensor("output.weight", quantize(rng.standard_normal((N_VOCAB, N_EMBD)).astype(np.float32), QT.Q4_0),
                 raw_dtype=QT.Q4_0)
    w.add_tensor("output_norm.weight", rng.standard_normal(N_EMBD).astype(np.float32))
    for il in range(N_LAYER):
        w.add_tensor(f"blk.{il}.attn_norm.weight", rng.standard_normal(N_EMBD).astype(np.float32))
        w.add_tensor(f"blk.{il}.attn_q.weight",
                     quantize(rng.standard_normal((N_EMBD, N_EMBD)).astype(np.float32), QT.Q4_K if N_EMBD % 256 == 0
                              else QT.Q5_0), raw_dtype=QT.Q4_K if N_EMBD % 256 == 0 else QT.Q5_0)
        w.add_tensor(f"blk.{il}.ffn_up.weight", rng.standard_normal((2 * N_EMBD, N_EMBD)).astype(np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def _field(r, key):
    f = r.fields[key]
    return f.contents()


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    p = tmp_path_factory.mktemp("slice") / "m.gguf"
    _make(p)
    return p


def test_slice_keeps_real_bytes_and_consistent_metadata(model, tmp_path):
    ids = slicer.choose_ids(GGUFReader(model), {5, 7, 10, 11, 12, 30})
    # wanted + bos/eos + the byte tokens
    assert ids.tolist() == [1, 2, 5, 7, 10, 11, 12, 30, 40, 41]
    out = tmp_path / "s.gguf"
    info = slicer.slice_gguf(model, out, 2, ids, recipe={"layers": 2})
    assert info["n_vocab"] == 10 and info["layers"] == 2
    slicer.self_check(model, out)

    r, src = GGUFReader(out), GGUFReader(model)
    assert _field(r, "llama.block_count") == 2
    assert _field(r, "llama.vocab_size") == 10
    assert _field(r, "llama.attention.head_count") == [4, 4]
    assert _field(r, "tokenizer.ggml.tokens") == [TOKENS[i] for i in ids]
    assert _field(r, "tokenizer.ggml.scores") == [float(-i) for i in ids]
    assert _field(r, "tokenizer.ggml.merges") == ["a b"]     # "x y" lost its tokens, "t5 t7" never merged to a token
    new = {int(o): n for n, o in enumerate(ids)}
    assert _field(r, "tokenizer.ggml.bos_token_id") == new[1]
    assert _field(r, "tokenizer.ggml.eos_token_id") == new[2]
    assert _field(r, "tokenizer.chat_template") == "{{ messages }}"
    assert _field(r, "orc.slice.token_ids") == ids.tolist()
    assert _field(r, "orc.slice.source_block_count") == N_LAYER
    assert _field(r, "orc.slice.source_sha256") == hashlib.sha256(model.read_bytes()).hexdigest()

    names = [t.name for t in r.tensors]
    assert "blk.1.ffn_up.weight" in names and not any(n.startswith("blk.2.") for n in names)
    t_src = {t.name: t for t in src.tensors}
    for t in r.tensors:
        s = t_src[t.name]
        assert t.tensor_type == s.tensor_type
        if t.name in ("token_embd.weight", "output.weight"):
            assert list(t.shape) == [N_EMBD, len(ids)]
            np.testing.assert_array_equal(dequantize(t.data, t.tensor_type), dequantize(s.data, s.tensor_type)[ids])
        else:
            assert list(t.shape) == list(s.shape)
            assert np.asarray(t.data).tobytes() == np.asarray(s.data).tobytes()


def test_slice_is_deterministic(model, tmp_path):
    ids = slicer.choose_ids(GGUFReader(model), {3, 4}, n_random=5, seed=1)
    again = slicer.choose_ids(GGUFReader(model), {3, 4}, n_random=5, seed=1)
    assert ids.tolist() == again.tolist() and len(ids) == 2 + 2 + 2 + 5
    a, b = tmp_path / "a.gguf", tmp_path / "b.gguf"
    slicer.slice_gguf(model, a, 1, ids)
    slicer.slice_gguf(model, b, 1, ids)
    assert a.read_bytes() == b.read_bytes()


def test_self_check_catches_a_changed_byte(model, tmp_path):
    ids = slicer.choose_ids(GGUFReader(model), {9})
    out = tmp_path / "s.gguf"
    slicer.slice_gguf(model, out, 3, ids)
    r = GGUFReader(out)
    t = next(t for t in r.tensors if t.name == "blk.2.attn_q.weight")
    data = bytearray(out.read_bytes())
    data[t.data_offset + 7] ^= 0x10
    out.write_bytes(bytes(data))
    with pytest.raises(AssertionError, match="blk.2.attn_q.weight differs"):
        slicer.self_check(model, out)


def test_bad_arguments_are_refused(model, tmp_path):
    r = GGUFReader(model)
    with pytest.raises(ValueError, match="out of range"):
        slicer.choose_ids(r, {N_VOCAB})
    ids = slicer.choose_ids(r, set())
    for k in (0, N_LAYER + 1):
        with pytest.raises(ValueError, match="--layers"):
            slicer.slice_gguf(r, tmp_path / "x.gguf", k, ids)
    with pytest.raises(ValueError, match="ascending"):
        slicer.slice_gguf(r, tmp_path / "x.gguf", 1, ids[::-1])


def test_golden_ids_take_prompts_subset_and_top_k(tmp_path):
    p = tmp_path / "g.npz"
    np.savez(p, subset_ids=np.array([1, 2]), p0_ids=np.array([7, 8]), p0_top_ids=np.array([[30, 31, 32]]),
             p0_greedy=np.array([40]), meta=np.array("{}"))
    assert slicer.golden_ids(p, top=2) == {1, 2, 7, 8, 30, 31, 40}
