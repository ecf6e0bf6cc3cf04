"""NaN/Inf weights (HARDENING row 19): GGUFFile.nonfinite (csrc/quant/scan.c) against gguf-py's
dequantization for every type, Model(path, validate=True) naming tensor, element, block and
count, and the load-time NonFiniteWeightWarning."""
import os
import struct
import sys
import warnings

import numpy as np
import pytest

import orc
from orc import synth

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_craft as C  # noqa: E402
from test_dequant import ALL_TYPES, F16_FIELDS, SIZES, has_reference, needs_gguf, reference  # noqa: E402

try:
    from gguf import GGMLQuantizationType as T
except ImportError:  # pragma: no cover
    T = None

TYPE_ID = {"F32": 0, "F16": 1, "BF16": 30, "Q1_0": 41}


def type_id(name):
    return TYPE_ID.get(name) if name in TYPE_ID else T[name].value


def oracle(name, data):
    """(count, first index) of non-finite values in gguf-py's float32 dequantization."""
    if name == "F32":
        y = data.view("<f4")
    elif name == "F16":
        y = data.view("<f2").astype(np.float32)
    elif name == "BF16":
        y = (data.view("<u2").astype(np.uint32) << 16).view(np.float32)
    else:
        y = reference(name, data)
    bad = np.flatnonzero(~np.isfinite(y))
    return len(bad), (int(bad[0]) if len(bad) else -1)


def one_tensor_file(tmp_path, name, data, n):
    b = C.build([C.kv("general.architecture", C.STRING, "llama")], [C.tensor("w", (n,), type_id(name), data=data)])
    return b.write(tmp_path / f"{name}.gguf")


def poisoned_blocks(name, n_blocks, rng):
    """Blocks with sane (finite) scales, then a few scales, or for float types values, set to
    NaN/Inf, and a few fully random blocks (which may or may not decode to non-finite values)."""
    bs, ts = SIZES[name]
    data = rng.integers(0, 256, size=n_blocks * ts, dtype=np.uint8)
    blocks = data.reshape(n_blocks, ts)
    fields = F16_FIELDS.get(name, [])
    if name in ("F16", "BF16", "F32"):
        return data, bs
    if isinstance(fields, list):
        for off in fields:  # finite scales of sensible size everywhere
            h = (rng.integers(0x2000, 0x3C00, size=n_blocks) | (rng.integers(0, 2, size=n_blocks) << 15))
            blocks[:, off] = h & 0xFF
            blocks[:, off + 1] = h >> 8
        for k, off in enumerate(fields):  # then poison a few
            for b in rng.choice(n_blocks, size=3, replace=False):
                v = [0x7E00, 0x7C00, 0xFC00, 0x7C01][(b + k) % 4]
                blocks[b, off], blocks[b, off + 1] = v & 0xFF, v >> 8
    return data, bs


@needs_gguf
@pytest.mark.parametrize("name", ALL_TYPES)
def test_scan_agrees_with_gguf_py(tmp_path, name):
    if not has_reference(name):
        pytest.skip(f"gguf-py cannot dequantize {name}")
    rng = np.random.default_rng(sum(map(ord, name)))
    bs, ts = SIZES[name]
    n_blocks = max(8, 4096 // bs) if bs > 1 else 70_000  # float types: more than one scan task
    data, _ = poisoned_blocks(name, n_blocks, rng)
    if name == "F32":  # random bits are mostly finite; put some NaN/Inf in
        f = data.view("<u4")
        f[rng.choice(f.size, 50, replace=False)] = 0x7FC00000
        f[rng.choice(f.size, 50, replace=False)] = 0xFF800000
    want = oracle(name, data)
    path = one_tensor_file(tmp_path, name, data.tobytes(), n_blocks * bs)
    with orc.GGUFFile(path) as f:
        for mode in ("full", "scales"):
            got = f.nonfinite(mode=mode)
            if want[0] == 0:
                assert got == [], (mode, got)
            else:
                assert got == [("w", want[0], want[1], want[1] // bs)], (mode, got, want)
    if isinstance(F16_FIELDS.get(name), list) and F16_FIELDS[name]:
        assert want[0] > 0  # the poisoned scales really are found
        assert want[0] % bs == 0  # ... and poison whole blocks


@needs_gguf
@pytest.mark.parametrize("name", ["Q8_0", "Q4_K", "Q6_K", "IQ4_NL"])
def test_clean_blocks_have_no_findings(tmp_path, name):
    rng = np.random.default_rng(7)
    bs, ts = SIZES[name]
    n_blocks = 64
    data = rng.integers(0, 256, size=n_blocks * ts, dtype=np.uint8)
    blocks = data.reshape(n_blocks, ts)
    for off in F16_FIELDS[name]:
        blocks[:, off], blocks[:, off + 1] = 0x00, 0x3C  # 1.0: finite, so every value is
        blocks[:3, off + 1] = 0x7B  # and the largest finite half (65504): no overflow either
        blocks[:3, off] = 0xFF
    assert oracle(name, data) == (0, -1)
    path = one_tensor_file(tmp_path, name, data.tobytes(), n_blocks * bs)
    with orc.GGUFFile(path) as f:
        assert f.nonfinite() == [] and f.nonfinite(mode="scales") == []


def test_result_does_not_depend_on_threads(tmp_path):
    rng = np.random.default_rng(3)
    n = 1 << 20  # 16 scan tasks of 65536
    x = rng.standard_normal(n).astype(np.float32)
    bad = np.sort(rng.choice(n, 40, replace=False))
    x[bad[::2]] = np.nan
    x[bad[1::2]] = -np.inf
    path = one_tensor_file(tmp_path, "F32", x.tobytes(), n)
    with orc.GGUFFile(path) as f:
        results = {nt: f.nonfinite(n_threads=nt) for nt in (1, 2, 3, 8)}
    assert all(r == [("w", 40, int(bad[0]), int(bad[0]))] for r in results.values()), results


def test_nonfinite_arguments(tmp_path):
    x = np.ones(64, dtype=np.float32)
    x[9] = np.inf
    b = C.build([C.kv("general.architecture", C.STRING, "llama")],
                [C.tensor("a", (64,), 0, data=x.tobytes()), C.tensor("b", (64,), 0, data=np.ones(64, "<f4").tobytes())])
    with orc.GGUFFile(b.write(tmp_path / "t.gguf")) as f:
        assert f.nonfinite() == [("a", 1, 9, 9)]
        assert f.nonfinite(["b"]) == []
        assert f.nonfinite([f.tensor("a")]) == [("a", 1, 9, 9)]
        with pytest.raises(KeyError, match="no tensor named 'c'"):
            f.nonfinite(["c"])
        with pytest.raises(TypeError):
            f.nonfinite("a")
        with pytest.raises(ValueError, match="mode"):
            f.nonfinite(mode="fast")
    with pytest.raises(orc.OrcError, match="closed"):
        f.nonfinite()


def test_unsupported_type_names_the_tensor(tmp_path):
    # I32 (type 26) is a valid ggml type orc cannot dequantize
    b = C.build([C.kv("general.architecture", C.STRING, "llama")], [C.tensor("ints", (8,), 26)])
    with orc.GGUFFile(b.write(tmp_path / "t.gguf")) as f:
        with pytest.raises(orc.GGUFError, match="tensor 'ints'.*I32"):
            f.nonfinite()


# --------------------------------------------------------------------------------------------
# Model(path, validate=True): HARDENING row 19


def f16_bytes(x):
    return np.asarray(x, dtype=np.float32).astype("<f2").tobytes()


def bf16_bytes(x):
    return (np.asarray(x, dtype=np.float32).view("<u4") >> 16).astype("<u2").tobytes()


def poison(metadata, tensors):
    """Q8_0 block scale NaN, F16 Inf, BF16 NaN, F32 NaN, in four tensors."""
    for i, (name, typ, shape, data) in enumerate(tensors):
        if name == "blk.0.attn_q.weight":  # Q8_0: block 3's scale (d at byte 0 of each 34-byte block)
            d = bytearray(data)
            d[3 * 34:3 * 34 + 2] = struct.pack("<H", 0x7E00)
            tensors[i] = (name, typ, shape, bytes(d))
        elif name == "blk.0.attn_k.weight":  # as F16, two Infs
            x = orc.dequantize(np.frombuffer(data, np.uint8), typ, shape).reshape(-1).copy()
            x[5], x[77] = np.inf, -np.inf
            tensors[i] = (name, "F16", shape, f16_bytes(x))
        elif name == "blk.1.attn_v.weight":  # as BF16, one NaN
            x = orc.dequantize(np.frombuffer(data, np.uint8), typ, shape).reshape(-1).copy()
            x[10] = np.nan
            tensors[i] = (name, "BF16", shape, bf16_bytes(x))
        elif name == "blk.0.attn_norm.weight":  # F32
            x = np.frombuffer(data, "<f4").copy()
            x[3] = np.nan
            tensors[i] = (name, typ, shape, x.tobytes())


EXPECTED = [("blk.0.attn_norm.weight", "F32", 1, 3, 3), ("blk.0.attn_q.weight", "Q8_0", 32, 96, 3),
            ("blk.0.attn_k.weight", "F16", 2, 5, 5), ("blk.1.attn_v.weight", "BF16", 1, 10, 10)]


@pytest.fixture(scope="module")
def poisoned_model(tmp_path_factory):
    return synth.make_model(tmp_path_factory.mktemp("nf") / "poisoned.gguf", arch="qwen2", edit=poison)


@pytest.fixture(scope="module")
def clean_model(tmp_path_factory):
    return synth.make_model(tmp_path_factory.mktemp("nf") / "clean.gguf", arch="qwen2")


def test_validate_names_each_tensor_element_block_and_count(poisoned_model):
    with pytest.raises(orc.GGUFError) as e:
        orc.Model(poisoned_model, device="cpu", validate=True)
    msg = str(e.value)
    assert msg.startswith("4 tensor(s) hold NaN/Inf values"), msg
    for name, typ, count, first, block in EXPECTED:
        where = f"element {first}" + (f" (block {block})" if block != first else "")
        assert f"'{name}' ({typ}): {count} NaN/Inf value(s), the first at {where}" in msg, msg
    with orc.GGUFFile(poisoned_model) as f:
        got = [(b.name, b.type, b.count, b.first_index, b.block) for b in orc.validate.nonfinite_weights(f)]
    order = [t.name for t in orc.GGUFFile(poisoned_model).tensors]
    assert got == sorted(EXPECTED, key=lambda e: order.index(e[0]))


def test_validate_passes_a_clean_model(clean_model):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with orc.Model(clean_model, device="cpu", validate=True) as m:
            assert np.isfinite(orc.Session(m, n_ctx=16).forward([1, 2, 3])).all()


# --------------------------------------------------------------------------------------------
# Without validate: the model loads (a debugging tool must open a broken file), with a warning


def test_nonfinite_weights_load_with_one_warning(poisoned_model):
    assert issubclass(orc.NonFiniteWeightWarning, UserWarning)
    with pytest.warns(orc.NonFiniteWeightWarning) as rec:
        m = orc.Model(poisoned_model, device="cpu")
    ours = [w for w in rec if issubclass(w.category, orc.NonFiniteWeightWarning)]
    assert len(ours) == 1
    msg = str(ours[0].message)
    assert "4 tensor(s) cannot be right" in msg and os.path.basename(poisoned_model) in msg
    for name, typ, count, first, block in EXPECTED:
        assert f"'{name}' ({typ}): {count} NaN/Inf value(s)" in msg, msg
    assert ours[0].filename == __file__  # attributed to the caller of Model(), not to orc
    with m:
        assert [b.name for b in m._nonfinite] == [b.name for b in orc.validate.nonfinite_weights(m._gguf)]
        logits = orc.Session(m, n_ctx=16).forward([1, 2, 3])
        assert not np.isfinite(logits).all()  # the weights really are broken


def rope_freqs_model(path, values):
    spec = synth.spec_for("llama", weight_type="F32", head_dim=16)

    def edit(metadata, tensors):
        tensors.append(("rope_freqs.weight", "F32", (8,), np.asarray(values, "<f4").tobytes()))
    return synth.make_model(path, spec, edit=edit)


def test_all_zero_rope_freqs_warns(tmp_path):
    path = rope_freqs_model(tmp_path / "zero.gguf", np.zeros(8))
    with pytest.warns(orc.NonFiniteWeightWarning, match=r"'rope_freqs.weight' \(F32\) is all zeros \(8 values\)"):
        orc.Model(path, device="cpu").close()
    ok = rope_freqs_model(tmp_path / "ok.gguf", [1, 1, 1, 1, 2, 4, 8, 0])  # one zero is not "all zero"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        orc.Model(ok, device="cpu").close()


def test_scale_scan_finds_what_the_full_scan_finds_in_a_model(poisoned_model):
    with orc.GGUFFile(poisoned_model) as f:
        assert f.nonfinite(mode="scales") == f.nonfinite(mode="full") != []


def test_diagnose_names_the_nonfinite_tensor(poisoned_model, clean_model):
    with pytest.warns(orc.NonFiniteWeightWarning):
        m = orc.Model(poisoned_model, device="cpu")
    with m:
        logits = orc.Session(m, n_ctx=16).forward([1, 2, 3, 4])
        assert "nonfinite_weights" not in orc.compare.diagnose(logits)  # only when given the model
        d = orc.compare.diagnose(logits, model=m)
        assert "nonfinite" in d  # the logits' own finding stays
        msg = d["nonfinite_weights"].message
        assert d["nonfinite_weights"].severity == "error" and not d.ok
        for name, typ, count, first, block in EXPECTED:
            assert f"'{name}' ({typ}): {count} NaN/Inf value(s)" in msg, msg
        with orc.GGUFFile(poisoned_model) as f:  # a GGUFFile works too (scanned then)
            assert orc.compare.diagnose(logits, model=f)["nonfinite_weights"].message == msg
    with orc.Model(clean_model, device="cpu") as c:
        logits = orc.Session(c, n_ctx=16).forward([1, 2, 3, 4])
        assert "nonfinite_weights" not in orc.compare.diagnose(logits, model=c).codes
