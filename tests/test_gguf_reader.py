"""orc.GGUFFile against gguf-py's GGUFReader (the independent oracle): metadata, tensor names,
types, shapes, offsets and bytes must agree exactly, on generated files covering every
value type, every ggml tensor type, GGUF v2 and v3 and custom alignments, and on any real
GGUF file found on this machine. Plus the Python API's contract: zero-copy raw(), lifetime
after close(), closed-file errors, the `info` command."""
from __future__ import annotations

import gc
import glob
import json
import os
import pathlib
import struct

import numpy as np
import pytest

import orc

gguf = pytest.importorskip("gguf")
from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType, GGUFWriter  # noqa: E402
from gguf.constants import GGML_QUANT_SIZES  # noqa: E402
from gguf.quants import quant_shape_to_byte_shape  # noqa: E402

import gguf_craft as C  # noqa: E402

RNG_SEED = 1234

# ---- the oracle side --------------------------------------------------------------------


def oracle_metadata(reader: GGUFReader) -> dict:
    """gguf-py's fields as (type names, value), skipping its synthetic GGUF.* header fields."""
    out = {}
    for name, field in reader.fields.items():
        if name.startswith("GGUF."):
            continue
        types = field.types
        if types[0] == GGUFValueType.ARRAY:
            vtype = f"ARRAY[{types[-1].name}]" if len(types) > 1 else None
            if len(types) > 1 and types[-1] == GGUFValueType.STRING:
                value = [bytes(field.parts[i]).decode("utf-8") for i in field.data]
            elif len(types) > 1:
                parts = [field.parts[i] for i in field.data]
                value = np.concatenate(parts) if parts else np.array([])
            else:  # an empty array: gguf-py does not record its element type
                value = None
        elif types[0] == GGUFValueType.STRING:
            vtype, value = "STRING", bytes(field.parts[-1]).decode("utf-8")
        else:
            vtype, value = types[0].name, field.parts[-1][0]
        out[name] = (vtype, value)
    return out


def assert_metadata_agrees(f: orc.GGUFFile, reader: GGUFReader):
    ours = f.metadata
    theirs = oracle_metadata(reader)
    assert list(ours) == list(theirs), "keys or key order differ"
    for key, (vtype, value) in theirs.items():
        v = ours[key]
        if vtype is None:  # an empty array (list or ndarray, by its element type)
            assert len(v) == 0 and f.value_type(key).startswith("ARRAY["), key
            continue
        assert f.value_type(key) == vtype, key
        if isinstance(value, list):
            assert isinstance(v, list) and v == value, key
        elif isinstance(value, np.ndarray):
            assert isinstance(v, np.ndarray), key
            assert len(v) == len(value), key
            if len(value):
                assert v.dtype == value.dtype.newbyteorder("="), key
                # bitwise: NaN payloads and -0.0 must survive too
                assert v.tobytes() == np.ascontiguousarray(value).tobytes(), key
            assert not v.flags.writeable
        elif isinstance(value, str):
            assert v == value and type(v) is str, key
        elif vtype == "BOOL":
            assert type(v) is bool and v == bool(value), key
        elif vtype in ("FLOAT32", "FLOAT64"):
            assert type(v) is float, key
            want = float(value)
            assert (v == want) or (np.isnan(v) and np.isnan(want)), key
            if vtype == "FLOAT32":
                assert np.float32(v).tobytes() == np.float32(value).tobytes(), key
        else:
            assert type(v) is int and v == int(value), key


def assert_tensors_agree(f: orc.GGUFFile, reader: GGUFReader):
    ts = f.tensors
    assert [t.name for t in ts] == [rt.name for rt in reader.tensors]
    assert f.data_offset == reader.data_offset
    assert f.alignment == reader.alignment
    for t, rt in zip(ts, reader.tensors):
        assert t.type == rt.tensor_type.name
        assert t.type_id == int(rt.tensor_type)
        assert t.ne == tuple(int(d) for d in rt.shape)
        assert t.shape == tuple(reversed(t.ne))
        assert t.n_elements == rt.n_elements
        assert t.nbytes == rt.n_bytes
        assert t.file_offset == rt.data_offset
        assert t.offset == int(rt.field.parts[5][0])  # as stored in the tensor info
        assert t.info_offset == rt.field.offset
        raw = f.raw(t.name)
        assert raw.dtype == np.uint8 and raw.shape == (t.nbytes,)
        assert raw.tobytes() == rt.data.tobytes(), t.name
        assert f.tensor(t.name) is t


def check_file(path):
    reader = GGUFReader(path)
    with orc.GGUFFile(path) as f:
        assert f.version == int(reader.fields["GGUF.version"].parts[0][0])
        assert f.file_size == os.path.getsize(path)
        assert_metadata_agrees(f, reader)
        assert_tensors_agree(f, reader)


# ---- generated files --------------------------------------------------------------------

SCALARS = [
    ("UINT8", "add_uint8", [0, 1, 255]),
    ("INT8", "add_int8", [-128, -1, 127]),
    ("UINT16", "add_uint16", [0, 65535]),
    ("INT16", "add_int16", [-32768, 32767]),
    ("UINT32", "add_uint32", [0, 2**32 - 1]),
    ("INT32", "add_int32", [-(2**31), 2**31 - 1]),
    ("FLOAT32", "add_float32", [0.1, -0.0, 3.4e38, float("inf"), float("nan"), 1e-45]),
    ("UINT64", "add_uint64", [0, 2**64 - 1]),
    ("INT64", "add_int64", [-(2**63), 2**63 - 1]),
    ("FLOAT64", "add_float64", [0.1, -0.0, 1.7e308, float("-inf"), float("nan"), 5e-324]),
    ("BOOL", "add_bool", [True, False]),
    ("STRING", "add_string", ["x", "héllo wörld ☃", "a" * 1000, "line\nbreak\ttab\0nul"]),
]


def write_every_value_type(path, version=3, alignment=None):
    w = GGUFWriter(str(path), "llama")
    if alignment:
        w.add_custom_alignment(alignment)
    for name, method, values in SCALARS:
        for i, v in enumerate(values):
            getattr(w, method)(f"test.{name.lower()}.{i}", v)
    rng = np.random.default_rng(RNG_SEED)
    w.add_key_value("arr.uint8", list(rng.integers(0, 256, 50)), GGUFValueType.ARRAY, GGUFValueType.UINT8)
    w.add_key_value("arr.int8", list(rng.integers(-128, 128, 50)), GGUFValueType.ARRAY, GGUFValueType.INT8)
    w.add_key_value("arr.uint16", list(rng.integers(0, 65536, 50)), GGUFValueType.ARRAY, GGUFValueType.UINT16)
    w.add_key_value("arr.int16", list(rng.integers(-32768, 32768, 50)), GGUFValueType.ARRAY, GGUFValueType.INT16)
    w.add_key_value("arr.uint32", [0, 2**32 - 1, 12345], GGUFValueType.ARRAY, GGUFValueType.UINT32)
    w.add_key_value("arr.int32", list(rng.integers(-(2**31), 2**31, 50)), GGUFValueType.ARRAY, GGUFValueType.INT32)
    w.add_key_value("arr.float32", list(rng.standard_normal(50).astype(np.float32)) + [float("nan"), -0.0],
                    GGUFValueType.ARRAY, GGUFValueType.FLOAT32)
    w.add_key_value("arr.uint64", [0, 2**64 - 1, 2**40], GGUFValueType.ARRAY, GGUFValueType.UINT64)
    w.add_key_value("arr.int64", [-(2**63), 2**63 - 1, -5], GGUFValueType.ARRAY, GGUFValueType.INT64)
    w.add_key_value("arr.float64", list(rng.standard_normal(20)) + [float("inf")], GGUFValueType.ARRAY,
                    GGUFValueType.FLOAT64)
    w.add_key_value("arr.bool", [True, False, True, True], GGUFValueType.ARRAY, GGUFValueType.BOOL)
    w.add_key_value("arr.string", ["a", "", "ü☃", "<0x0A>", "Ġthe"] * 20, GGUFValueType.ARRAY, GGUFValueType.STRING)
    w.add_tensor("t.f32", rng.standard_normal((3, 5)).astype(np.float32))
    w.add_tensor("t.f16", rng.standard_normal((7,)).astype(np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    if version != 3:  # v2 has the same layout; only the version field differs
        data = bytearray(pathlib.Path(path).read_bytes())
        data[4:8] = struct.pack("<I", version)
        pathlib.Path(path).write_bytes(bytes(data))
    return str(path)


@pytest.mark.parametrize("version", [2, 3])
def test_every_value_type_agrees(tmp_path, version):
    path = write_every_value_type(tmp_path / "values.gguf", version=version)
    check_file(path)
    with orc.GGUFFile(path) as f:
        assert f.version == version
        m = f.metadata
        # a few direct checks, independent of the oracle's representation
        assert m["test.uint64.1"] == 2**64 - 1 and m["test.int64.0"] == -(2**63)
        assert m["test.float32.0"] == float(np.float32(0.1)) and m["test.float64.0"] == 0.1
        assert m["test.string.3"] == "line\nbreak\ttab\0nul"
        assert m["arr.string"][:5] == ["a", "", "ü☃", "<0x0A>", "Ġthe"]
        assert m["arr.bool"].dtype == np.bool_ and m["arr.bool"].tolist() == [True, False, True, True]
        assert m["arr.uint64"].dtype == np.uint64 and int(m["arr.uint64"][1]) == 2**64 - 1


# every id ggml ever assigned, and a few it never did
ALL_IDS = list(range(0, 45)) + [-1, 100, 2**31 - 1]


def byte_shape_tensor(qtype, rows, rng):
    bs, ts = GGML_QUANT_SIZES[qtype]
    shape = (rows, 2 * bs)
    bshape = quant_shape_to_byte_shape(shape, qtype)
    return rng.integers(0, 256, size=bshape, dtype=np.uint8)


def test_every_ggml_type_agrees(tmp_path):
    """One tensor of every type gguf-py knows, written by gguf-py's writer with alignment 64."""
    rng = np.random.default_rng(RNG_SEED)
    w = GGUFWriter(str(tmp_path / "types.gguf"), "llama")
    w.add_custom_alignment(64)
    for i, qtype in enumerate(GGML_QUANT_SIZES):
        w.add_tensor(f"t.{qtype.name}", byte_shape_tensor(qtype, 1 + i % 3, rng), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    check_file(str(tmp_path / "types.gguf"))
    with orc.GGUFFile(str(tmp_path / "types.gguf")) as f:
        assert {t.type for t in f.tensors} == {q.name for q in GGML_QUANT_SIZES}
        assert all(t.offset % 64 == 0 for t in f.tensors)


@pytest.mark.parametrize("type_id", ALL_IDS)
def test_ggml_type_id_accepted_iff_gguf_py_knows_it(tmp_path, type_id):
    """orc's type table (csrc/gguf/ggml_types.c) agrees with gguf-py's on which ids exist and
    on their block/type sizes: a tensor of a known id reads back with gguf-py's size; any
    other id is refused naming the tensor."""
    try:
        qtype = GGMLQuantizationType(type_id)
        bs, ts = GGML_QUANT_SIZES[qtype]
    except (ValueError, KeyError):
        qtype = None
        bs, ts = 32, 18
    ne = (bs * 2, 3)
    data = C.pseudo_random_bytes(2 * 3 * ts, type_id & 0xFFFF)
    b = C.build([C.kv("general.architecture", C.STRING, "llama")], [C.tensor("the.tensor", ne, type_id, data=data)])
    path = b.write(tmp_path / "t.gguf")
    if qtype is None:
        with pytest.raises(orc.GGUFError, match=r"tensor 'the\.tensor'.*ggml type id"):
            orc.GGUFFile(path)
        return
    check_file(path)
    with orc.GGUFFile(path) as f:
        t = f.tensor("the.tensor")
        assert t.type == qtype.name and t.nbytes == len(data)
        assert f.raw(t).tobytes() == data


@pytest.mark.parametrize("alignment", [1, 8, 64, 4096])
def test_custom_alignment_agrees(tmp_path, alignment):
    path = write_every_value_type(tmp_path / "a.gguf", alignment=alignment)
    check_file(path)
    with orc.GGUFFile(path) as f:
        assert f.alignment == alignment and f.data_offset % alignment == 0


def test_craft_builder_files_agree(tmp_path):
    """The hand-rolled builder the hardening tests use writes files gguf-py reads the same way."""
    b = C.build([C.kv("general.architecture", C.STRING, "qwen2"),
                 C.kv("x.arr", C.ARRAY, [1.5, -2.0], elem_type=C.FLOAT64),
                 C.kv("x.empty_int32", C.ARRAY, [], elem_type=C.INT32),  # gguf-py's writer refuses these
                 C.kv("x.empty_string", C.ARRAY, [], elem_type=C.STRING),
                 C.kv("general.alignment", C.UINT32, 16)],
                [C.tensor("a", (32, 2), C.Q8_0), C.tensor("b", (5,), C.F32), C.tensor("c", (256,), C.Q4_K)])
    path = b.write(tmp_path / "c.gguf")
    check_file(path)
    with orc.GGUFFile(path) as f:
        assert [t.offset for t in f.tensors] == b.tensor_offsets
        assert [t.info_offset for t in f.tensors] == b.tensor_info_offsets
        assert f.data_offset == b.data_offset
        m = f.metadata
        assert m["x.empty_int32"].dtype == np.int32 and len(m["x.empty_int32"]) == 0
        assert m["x.empty_string"] == []
        assert f.value_type("x.empty_int32") == "ARRAY[INT32]"


def test_large_vocabulary_agrees(tmp_path):
    """A tokenizer-sized file (8k tokens, scores, types, merges) agrees element for element."""
    rng = np.random.default_rng(RNG_SEED)
    n = 8000
    tokens = [f"tok{i}_" + "".join(chr(0x61 + int(c)) for c in rng.integers(0, 26, i % 7)) for i in range(n)]
    w = GGUFWriter(str(tmp_path / "v.gguf"), "qwen2")
    w.add_token_list(tokens)
    w.add_token_scores([float(x) for x in rng.standard_normal(n).astype(np.float32)])
    w.add_token_types([int(x) for x in rng.integers(1, 7, n)])
    w.add_token_merges([f"{a} {b}" for a, b in zip(tokens[:-1], tokens[1:])])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    check_file(str(tmp_path / "v.gguf"))
    with orc.GGUFFile(str(tmp_path / "v.gguf")) as f:
        assert f.metadata["tokenizer.ggml.tokens"] == tokens


# ---- real files ---------------------------------------------------------------------------

SLOW = os.environ.get("ORC_SLOW") == "1"
SMALL_REAL = 0.75e6  # bytes: gguf-py needs ~1 s per 30k-token vocabulary, so only these run by default


def real_gguf_files():
    """Real GGUF files on this machine: $ORC_REAL_GGUF_DIRS (os.pathsep-separated), else the
    shared model cache. Models above 600 MB are left out."""
    dirs = os.environ.get("ORC_REAL_GGUF_DIRS", "/work/cache").split(os.pathsep)
    seen = set()
    for d in dirs:
        for p in glob.glob(os.path.join(d, "**", "*.gguf"), recursive=True):
            rp = os.path.realpath(p)
            if os.path.isfile(rp) and 0 < os.path.getsize(rp) < 600e6:
                seen.add(rp)
    return sorted(seen, key=os.path.getsize)


REAL = real_gguf_files()


def real_params():
    out = []
    for p in REAL:
        big = os.path.getsize(p) > SMALL_REAL
        marks = [pytest.mark.slow] + ([pytest.mark.skipif(not SLOW, reason="large: gguf-py takes seconds; ORC_SLOW=1")]
                                      if big else [])
        out.append(pytest.param(p, id=os.path.basename(p), marks=marks))
    return out


@pytest.mark.skipif(not REAL, reason="no real GGUF files found (set ORC_REAL_GGUF_DIRS)")
@pytest.mark.parametrize("path", real_params())
def test_real_file_agrees(path):
    """Everything, bytes of every tensor included, against gguf-py. Files above 0.75 MB
    (models, big vocabularies) run with ORC_SLOW=1: gguf-py needs minutes for all of them.
    A file gguf-py cannot read (a truncated download, say) must be refused by orc too."""
    try:
        reader = GGUFReader(path)
    except Exception as e:  # gguf-py fails in many ways (ValueError from a reshape, KeyError...)
        with pytest.raises(orc.GGUFError):
            orc.GGUFFile(path)
        pytest.skip(f"gguf-py cannot read it ({type(e).__name__}: {e}); orc refuses it too")
    with orc.GGUFFile(path) as f:
        assert_metadata_agrees(f, reader)
        ts = f.tensors
        assert [t.name for t in ts] == [rt.name for rt in reader.tensors]
        for t, rt in zip(ts, reader.tensors):
            assert (t.type, t.ne, t.nbytes, t.file_offset) == (rt.tensor_type.name, tuple(map(int, rt.shape)),
                                                               rt.n_bytes, rt.data_offset)
            assert np.array_equal(f.raw(t), rt.data.reshape(-1).view(np.uint8)), t.name


# ---- the Python API's contract -------------------------------------------------------------

@pytest.fixture
def small(tmp_path):
    return C.minimal_valid().write(tmp_path / "small.gguf")


def test_raw_is_zero_copy_and_read_only(small):
    with orc.GGUFFile(small) as f:
        a, b = f.tensors
        ra, rb = f.raw("a.weight"), f.raw(b)
        assert not ra.flags.writeable and not ra.flags.owndata
        # both views point into one mapping of the file, at the files' own offsets
        assert rb.ctypes.data - ra.ctypes.data == b.file_offset - a.file_offset
        assert np.shares_memory(f.raw("a.weight"), ra)
        with pytest.raises(ValueError):
            ra[0] = 1
        with pytest.raises(ValueError):
            ra.setflags(write=True)
        assert ra.tobytes() == pathlib.Path(small).read_bytes()[a.file_offset:a.file_offset + a.nbytes]


def test_raw_keeps_the_map_alive_after_close(small):
    expected = pathlib.Path(small).read_bytes()
    f = orc.GGUFFile(small)
    t = f.tensor("b.weight")
    r = f.raw(t)
    f.close()
    del f
    gc.collect()
    assert r.tobytes() == expected[t.file_offset:t.file_offset + t.nbytes]
    v = r[3:9]  # a view of a view keeps it too
    del r
    gc.collect()
    assert v.tobytes() == expected[t.file_offset + 3:t.file_offset + 9]


def test_closed_file_raises_orc_error(small):
    f = orc.GGUFFile(small)
    f.close()
    f.close()  # twice is fine
    assert f.closed and "closed" in repr(f)
    for use in (lambda: f.metadata, lambda: f.tensors, lambda: f.tensor("a.weight"), lambda: f.raw("a.weight"),
                lambda: f.version, lambda: f.alignment, lambda: f.data_offset, lambda: f.file_size,
                lambda: f.value_type("general.name"), lambda: f.__enter__()):
        with pytest.raises(orc.OrcError, match="closed"):
            use()
    with orc.GGUFFile(small) as g:
        assert not g.closed
    assert g.closed


def test_lookup_errors(small):
    with orc.GGUFFile(small) as f:
        with pytest.raises(KeyError, match="nope"):
            f.tensor("nope")
        with pytest.raises(KeyError):
            f.tensor("a.weight\0junk")  # an embedded NUL must not match 'a.weight'
        with pytest.raises(KeyError, match="missing.key"):
            f.value_type("missing.key")
        with pytest.raises(TypeError):
            f.raw(3)


def test_metadata_is_a_fresh_copy(tmp_path):
    b = C.build([C.kv("toks", C.ARRAY, ["a", "b"], elem_type=C.STRING),
                 C.kv("scores", C.ARRAY, [1.0, 2.0], elem_type=C.FLOAT32)])
    with orc.GGUFFile(b.write(tmp_path / "m.gguf")) as f:
        m = f.metadata
        m["toks"].append("c")
        m["new"] = 1
        with pytest.raises(ValueError):
            m["scores"][0] = 5.0
        m2 = f.metadata
        assert m2["toks"] == ["a", "b"] and "new" not in m2 and m2["scores"].tolist() == [1.0, 2.0]


def test_invalid_utf8_string_value_comes_back_as_bytes(tmp_path):
    b = C.build([C.kv("bad", C.STRING, b"ok\xff\xfe"), C.kv("arr", C.ARRAY, [b"a", b"\xc3("], elem_type=C.STRING)])
    with orc.GGUFFile(b.write(tmp_path / "u.gguf")) as f:
        m = f.metadata
        assert m["bad"] == b"ok\xff\xfe"
        assert m["arr"] == ["a", b"\xc3("]


def test_path_types_and_repr(small):
    for p in (small, pathlib.Path(small), os.fsencode(small)):
        with orc.GGUFFile(p) as f:
            assert f.path == small
            assert "GGUF v3" in repr(f) and "2 tensors" in repr(f)
            assert repr(f.tensors[0]).startswith("TensorInfo(name='a.weight', type='F32', shape=(2, 8)")
    with pytest.raises(TypeError):
        orc.TensorInfo()


def test_reinit_replaces_the_file(tmp_path, small):
    other = C.build([C.kv("general.architecture", C.STRING, "gemma3")]).write(tmp_path / "o.gguf")
    f = orc.GGUFFile(small)
    r = f.raw("a.weight")
    f.__init__(other)
    assert f.metadata["general.architecture"] == "gemma3" and f.tensors == []
    assert len(r.tobytes()) == 64  # the first file's map lives on in r
    f.close()


# ---- python -m orc info -------------------------------------------------------------------

def test_info_json_matches_gguf_py(tmp_path, capsys):
    rng = np.random.default_rng(RNG_SEED)
    w = GGUFWriter(str(tmp_path / "m.gguf"), "qwen2")
    w.add_name("tiny qwen")
    w.add_block_count(2)
    w.add_context_length(128)
    w.add_embedding_length(64)
    w.add_head_count(4)
    w.add_file_type(15)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    toks = [f"t{i}" for i in range(100)]
    w.add_token_list(toks)
    w.add_token_types([1] * 97 + [3] * 3)
    w.add_token_merges(["t 1", "t 2"])
    w.add_bos_token_id(97)
    w.add_eos_token_id(98)
    w.add_add_bos_token(False)
    w.add_chat_template("{{ messages }}")
    w.add_tensor("token_embd.weight", rng.standard_normal((100, 64)).astype(np.float32))
    w.add_tensor("blk.0.attn_q.weight", byte_shape_tensor(GGMLQuantizationType.Q8_0, 64, rng),
                 raw_dtype=GGMLQuantizationType.Q8_0)
    w.add_tensor("output_norm.weight", rng.standard_normal(64).astype(np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    path = str(tmp_path / "m.gguf")
    from orc.__main__ import main

    assert main(["info", path, "--json", "--tensors"]) == 0
    s = json.loads(capsys.readouterr().out)
    reader = GGUFReader(path)
    assert s["parameters"] == sum(rt.n_elements for rt in reader.tensors) == 100 * 64 + 64 * 64 + 64
    assert s["architecture"] == "qwen2" and s["name"] == "tiny qwen"
    assert s["file_type"] == {"id": 15, "name": "MOSTLY_Q4_K_M"}
    assert s["hyperparameters"]["block_count"] == 2 and s["hyperparameters"]["attention.head_count"] == 4
    hist = {}
    for rt in reader.tensors:
        h = hist.setdefault(rt.tensor_type.name, [0, 0, 0])
        h[0] += 1
        h[1] += rt.n_elements
        h[2] += rt.n_bytes
    assert {k: [v["tensors"], v["elements"], v["bytes"]] for k, v in s["tensor_types"].items()} == hist
    tok = s["tokenizer"]
    assert tok["model"] == "gpt2" and tok["pre"] == "qwen2" and tok["vocab_size"] == 100 and tok["merges"] == 2
    assert tok["token_types"] == {"normal": 97, "control": 3}
    assert tok["special_tokens"]["bos"] == {"id": 97, "text": "t97"}
    assert tok["add_bos_token"] is False and tok["chat_template_chars"] == len("{{ messages }}")
    assert s["file_size"] == os.path.getsize(path)
    assert [t["name"] for t in s["tensors"]] == [rt.name for rt in reader.tensors]
    assert [t["shape"] for t in s["tensors"]] == [list(reversed(rt.shape.tolist())) for rt in reader.tensors]

    assert main(["info", path, "--tensors", "--metadata"]) == 0
    text = capsys.readouterr().out
    assert "architecture   qwen2" in text and "parameters     10,560 (10.56K)" in text
    assert "blk.0.attn_q.weight" in text and "tokenizer.ggml.tokens" in text and "ARRAY[STRING]" in text


def test_info_reports_bad_files(tmp_path, capsys):
    from orc.__main__ import main

    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGML" + b"\0" * 40)
    assert main(["info", str(bad)]) == 2  # trouble, as every command reports it
    assert "magic at offset 0" in capsys.readouterr().err
    assert main(["info", str(tmp_path / "missing.gguf")]) == 2
    assert "missing.gguf" in capsys.readouterr().err
