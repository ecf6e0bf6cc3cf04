"""Dequantization against gguf-py, bit for bit.

The oracle is gguf.quants.dequantize (NumPy float32 arithmetic). Every comparison is
on the bit patterns (uint32/uint16 views); only where the reference itself yields a
NaN do we accept any NaN (NumPy and C may propagate different NaN payloads).

Inputs: random blocks whose fp16 scale fields are overwritten with finite random
values of sensible magnitudes (the reference must then be NaN-free, which also
checks that the field offsets below are right), fully random bytes (NaN/inf
scales included), edge blocks (zero, subnormal, max/min finite and non-finite
scales; all-zero and all-0xFF quants), every fp16/bf16 bit pattern, rounding
boundaries of f32 -> f16, and real tensors from GGUF files when present.
float16 outputs must equal NumPy's astype(float16) of the float32 reference,
bfloat16 outputs gguf-py's BF16 quantization (round to nearest even) of it.
GPU tests (marked gpu) check device="cuda" against the CPU, bit for bit.
"""
from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest

import orc

try:  # the oracle; the GPU-vs-CPU tests do not need it (the GPU machine may lack it)
    import gguf
    from gguf import GGMLQuantizationType as T
    from gguf import quants as gq
except ImportError:  # pragma: no cover - depends on the environment
    gguf = T = gq = None

needs_gguf = pytest.mark.skipif(gguf is None, reason="gguf (gguf-py, the reference) is not installed")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (elements per block, bytes per block), as ggml's type traits; checked against gguf-py below.
SIZES = {
    "F32": (1, 4), "F16": (1, 2), "BF16": (1, 2), "Q4_0": (32, 18), "Q4_1": (32, 20), "Q5_0": (32, 22),
    "Q5_1": (32, 24), "Q8_0": (32, 34), "Q8_1": (32, 40), "Q2_K": (256, 84), "Q3_K": (256, 110),
    "Q4_K": (256, 144), "Q5_K": (256, 176), "Q6_K": (256, 210), "Q8_K": (256, 292), "IQ2_XXS": (256, 66),
    "IQ2_XS": (256, 74), "IQ2_S": (256, 82), "IQ3_XXS": (256, 98), "IQ3_S": (256, 110), "IQ1_S": (256, 50),
    "IQ1_M": (256, 56), "IQ4_NL": (32, 18), "IQ4_XS": (256, 136), "TQ1_0": (256, 54), "TQ2_0": (256, 66),
    "MXFP4": (32, 17), "NVFP4": (64, 36), "Q1_0": (128, 18), "I8": (1, 1), "I16": (1, 2), "I32": (1, 4),
    "I64": (1, 8), "F64": (1, 8),
}

FLOAT_TYPES = ["F32", "F16", "BF16"]
BLOCK_TYPES = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
               "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ3_XXS", "IQ3_S", "IQ1_S", "IQ1_M", "IQ4_NL", "IQ4_XS",
               "TQ1_0", "TQ2_0", "MXFP4", "NVFP4", "Q1_0"]
ALL_TYPES = FLOAT_TYPES + BLOCK_TYPES
DTYPES = ["float32", "float16", "bfloat16"]

# Byte offsets of the fp16 scale fields in one block of each type (ggml-common.h's
# structs). IQ1_M spreads its scale over the top nibbles of four u16 words; MXFP4
# (E8M0) and NVFP4 (UE4M3) scales have no non-finite encodings.
F16_FIELDS = {
    "Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0], "Q1_0": [0],
    "Q2_K": [80, 82], "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208],
    "IQ2_XXS": [0], "IQ2_XS": [0], "IQ2_S": [0], "IQ3_XXS": [0], "IQ3_S": [0], "IQ1_S": [0],
    "IQ4_NL": [0], "IQ4_XS": [0], "TQ1_0": [52], "TQ2_0": [64],
    "IQ1_M": "split", "MXFP4": [], "NVFP4": [],
}


def sizes(name):
    return SIZES[name]


def q1_0_reference(data):
    """ggml's dequantize_row_q1_0 in NumPy (gguf-py has no Q1_0 dequantizer):
    block = d:f16, qs[16]; element j = +d if bit j%8 of qs[j/8] is set, else -d."""
    blocks = data.reshape(-1, 18)
    d = blocks[:, :2].copy().view(np.float16).astype(np.float32)
    bits = np.unpackbits(blocks[:, 2:], axis=1, bitorder="little").astype(bool)
    return np.where(bits, d, -d).astype(np.float32).reshape(-1)


def reference(name, data):
    """gguf-py's float32 dequantization of the blocks in `data` (1-D uint8)."""
    if name == "Q1_0":
        return q1_0_reference(data)
    with np.errstate(all="ignore"):
        return np.asarray(gq.dequantize(data.reshape(1, -1), T[name]), dtype=np.float32).reshape(-1)


def has_reference(name):
    if gguf is None:
        return False
    if name == "Q1_0" or name in ("F32", "F16"):
        return True
    if name not in T.__members__:
        return False
    bs, ts = sizes(name)
    try:
        reference(name, np.zeros(ts, dtype=np.uint8))
    except NotImplementedError:
        return False
    return True


def ref_f16(x):
    with np.errstate(all="ignore"):
        return x.astype(np.float16).view(np.uint16)


def ref_bf16(x):
    with np.errstate(all="ignore"):
        return np.asarray(gq.quantize(x.reshape(1, -1), T.BF16)).view(np.uint16).reshape(-1)


def assert_bits_equal(got, want, what):
    """Bit-identical, except that where `want` is NaN any NaN is accepted."""
    got = np.asarray(got).reshape(-1)
    want = np.asarray(want).reshape(-1)
    assert got.shape == want.shape, what
    if want.dtype == np.float32:
        gb, wb = got.view(np.uint32), want.view(np.uint32)
        nan = np.isnan(want)
    else:  # float16 / bfloat16 bit patterns as uint16
        gb, wb = got.view(np.uint16), want.view(np.uint16)
        exp_mask = 0x7C00 if want.dtype == np.float16 else 0x7F80
        man_mask = 0x03FF if want.dtype == np.float16 else 0x007F
        nan = ((wb & exp_mask) == exp_mask) & ((wb & man_mask) != 0)
        got_nan = ((gb & exp_mask) == exp_mask) & ((gb & man_mask) != 0)
        bad = (gb != wb) & ~(nan & got_nan)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            pytest.fail(f"{what}: {int(bad.sum())} of {bad.size} differ; first at {i}: got 0x{int(gb[i]):04x}, "
                        f"want 0x{int(wb[i]):04x}")
        return
    bad = (gb != wb) & ~(nan & np.isnan(got.view(np.float32)))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        pytest.fail(f"{what}: {int(bad.sum())} of {bad.size} differ; first at element {i}: got 0x{int(gb[i]):08x} "
                    f"({got.view(np.float32)[i]!r}), want 0x{int(wb[i]):08x} ({want[i]!r})")


def rng_for(*key):
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def random_f16(rng, n):
    """Finite fp16 values of sensible magnitudes (2^-24 .. 2^15), both signs, as uint16 bits."""
    mag = np.exp2(rng.uniform(-24, 15, size=n))
    sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    h = (sign * mag).astype(np.float16)
    assert np.isfinite(h).all()
    return h.view(np.uint16)


def set_scales(name, blocks, bits):
    """Write fp16 scale bit patterns `bits` (n_blocks, n_fields) into `blocks` (n_blocks, type_size)."""
    fields = F16_FIELDS[name]
    if fields == "split":  # IQ1_M: nibble k of the scale is the top nibble of u16 word k at byte 48
        words = blocks[:, 48:56].copy().view(np.uint16)
        h = bits[:, 0].astype(np.uint16)
        for k in range(4):
            words[:, k] = (words[:, k] & 0x0FFF) | (((h >> (4 * k)) & 0xF) << 12)
        blocks[:, 48:56] = words.view(np.uint8)
        return
    for i, off in enumerate(fields):
        blocks[:, off:off + 2] = bits[:, i:i + 1].astype("<u2").view(np.uint8).reshape(-1, 2)


def n_fields(name):
    f = F16_FIELDS[name]
    return 1 if f == "split" else len(f)


def random_blocks(name, n_blocks, rng, finite=True):
    bs, ts = sizes(name)
    blocks = rng.integers(0, 256, size=(n_blocks, ts), dtype=np.uint8)
    if finite and n_fields(name):
        set_scales(name, blocks, random_f16(rng, n_blocks * n_fields(name)).reshape(n_blocks, -1))
    if finite and name == "MXFP4":  # E8M0 2^(e-127): keep the products finite in float16 too
        blocks[:, 0] = rng.integers(100, 140, size=n_blocks)
    return blocks.reshape(-1)


def edge_blocks(name):
    """Blocks with extreme scales and quants: every scale in EDGE_SCALES with all-zero,
    all-0xFF and random quants, plus raw all-zero and all-0xFF blocks; for MXFP4 and
    NVFP4 every scale byte."""
    bs, ts = sizes(name)
    rng = rng_for("edge", name)
    out = [np.zeros(ts, np.uint8), np.full(ts, 0xFF, np.uint8)]
    quants = [np.zeros(ts, np.uint8), np.full(ts, 0xFF, np.uint8), rng.integers(0, 256, ts, dtype=np.uint8)]
    if n_fields(name):
        edge_scales = [0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x0400, 0x3C00, 0xBC00, 0x7BFF, 0xFBFF,
                       0x7C00, 0xFC00, 0x7E00, 0x7C01]
        for s in edge_scales:
            for q in quants:
                b = q.copy().reshape(1, -1)
                set_scales(name, b, np.full((1, n_fields(name)), s, dtype=np.uint16))
                out.append(b.reshape(-1))
        if n_fields(name) == 2:  # d and min independently extreme
            for s0, s1 in [(0x7BFF, 0xFBFF), (0x0000, 0x7BFF), (0x0001, 0x7BFF), (0x7BFF, 0x0000)]:
                b = quants[2].copy().reshape(1, -1)
                set_scales(name, b, np.array([[s0, s1]], dtype=np.uint16))
                out.append(b.reshape(-1))
    if name == "MXFP4":
        for e in range(256):
            for q in quants:
                b = q.copy()
                b[0] = e
                out.append(b)
    if name == "NVFP4":
        for s in range(256):
            for q in quants:
                b = q.copy()
                b[:4] = [s, (s + 1) & 0xFF, (s + 0x40) & 0xFF, (s + 0x80) & 0xFF]
                out.append(b)
    return np.concatenate(out)


def check_all_dtypes(name, data, ref, shape=None, what=""):
    bs, ts = sizes(name)
    n = ref.size
    shape = shape or (n,)
    out = orc.dequantize(data, name, shape)
    assert out.dtype == np.float32 and out.shape == tuple(shape)
    assert_bits_equal(out, ref, f"{name} float32 {what}")
    h = orc.dequantize(data, name, shape, dtype="float16")
    assert h.dtype == np.float16 and h.shape == tuple(shape)
    assert_bits_equal(h.view(np.uint16), ref_f16(ref).view(np.float16), f"{name} float16 {what}")
    b = orc.dequantize(data, name, shape, dtype="bfloat16")
    assert b.dtype == np.uint16 and b.shape == tuple(shape)
    assert_bits_equal(b, ref_bf16(ref).astype(np.uint16).view(np.uint16), f"{name} bfloat16 {what}")


REF_BLOCK_TYPES = [t for t in BLOCK_TYPES if has_reference(t)]


# ---- the type list ---------------------------------------------------------------------

def test_quant_types_lists_every_supported_type():
    assert set(orc.QUANT_TYPES) == set(ALL_TYPES)
    assert isinstance(orc.QUANT_TYPES, tuple)


@needs_gguf
def test_every_type_gguf_dequantizes_is_covered():
    """If a newer gguf-py learns a type, this fails until orc supports it too."""
    for t in T:
        bs, ts = gguf.GGML_QUANT_SIZES[t]
        try:
            reference(t.name, np.zeros(ts, dtype=np.uint8))
        except (NotImplementedError, KeyError, ValueError):
            continue
        assert t.name in orc.QUANT_TYPES, f"gguf-py dequantizes {t.name} but orc does not"


@needs_gguf
def test_block_sizes_agree_with_gguf_py():
    for name, bt in SIZES.items():
        if name in T.__members__:
            assert tuple(gguf.GGML_QUANT_SIZES[T[name]]) == bt, name


# ---- block types against gguf-py ----------------------------------------------------------

@pytest.mark.parametrize("name", REF_BLOCK_TYPES)
def test_random_blocks_with_finite_scales(name):
    bs, ts = sizes(name)
    rng = rng_for("finite", name)
    n_blocks = 65536 // bs
    data = random_blocks(name, n_blocks, rng)
    ref = reference(name, data)
    assert ref.size == n_blocks * bs
    # finite scales must give finite values: checks F16_FIELDS and that the test can fail
    assert np.isfinite(ref).all(), f"{name}: reference has non-finite values for finite scales"
    assert np.count_nonzero(ref) > ref.size // 2
    check_all_dtypes(name, data, ref)
    # rows: the same bytes as a 2-D tensor
    rows = 4
    check_all_dtypes(name, data, ref.reshape(rows, -1), shape=(rows, ref.size // rows), what="2-D")


@pytest.mark.parametrize("name", REF_BLOCK_TYPES)
def test_random_bytes(name):
    """Fully random blocks: NaN and inf scales included."""
    bs, ts = sizes(name)
    data = rng_for("raw", name).integers(0, 256, size=ts * (4096 // bs * 8), dtype=np.uint8)
    check_all_dtypes(name, data, reference(name, data), what="(random bytes)")


@pytest.mark.parametrize("name", REF_BLOCK_TYPES)
def test_edge_blocks(name):
    data = edge_blocks(name)
    ref = reference(name, data)
    check_all_dtypes(name, data, ref, what="(edge blocks)")


@needs_gguf
def test_edge_blocks_reach_the_extremes():
    """The edge set really contains overflowing, subnormal and zero results."""
    ref = reference("Q8_0", edge_blocks("Q8_0"))
    assert np.isinf(ref).any() and np.isnan(ref).any()
    assert (ref == 0).any() and ((ref != 0) & (np.abs(ref) < np.float32(2.0 ** -14))).any()
    assert (np.abs(ref[np.isfinite(ref)]) > 65504).any()  # overflows float16
    with np.errstate(all="ignore"):
        mx = reference("MXFP4", edge_blocks("MXFP4"))
    assert np.isinf(ref_f16(mx).view(np.float16)).any() and ((mx != 0) & (np.abs(mx) < 1e-38)).any()


@needs_gguf
def test_many_blocks_threaded():
    """A tensor big enough to be split over threads, against gguf-py."""
    rng = rng_for("big")
    data = random_blocks("Q4_K", 8192, rng)  # 2M elements, 8 MiB of float32
    ref = reference("Q4_K", data)
    out = orc.dequantize(data, "Q4_K", (2048, 1024))
    assert_bits_equal(out, ref, "Q4_K threaded float32")
    h = orc.dequantize(data, "Q4_K", (2048, 1024), dtype="float16")
    assert_bits_equal(h.view(np.uint16), ref_f16(ref).view(np.float16), "Q4_K threaded float16")


# ---- float types ------------------------------------------------------------------------------

@needs_gguf
def test_f16_every_bit_pattern():
    data = np.arange(65536, dtype=np.uint16)
    ref = data.view(np.float16).astype(np.float32)  # gguf-py: view(float16).astype(float32)
    raw = data.view(np.uint8)
    out = orc.dequantize(raw, "F16", (65536,))
    assert np.array_equal(out.view(np.uint32), ref.view(np.uint32))  # NaN payloads too
    h = orc.dequantize(raw, "F16", (65536,), dtype="float16")
    assert np.array_equal(h.view(np.uint16), data)
    assert np.array_equal(h.view(np.uint16), ref_f16(ref))
    b = orc.dequantize(raw, "F16", (256, 256), dtype="bfloat16")
    assert np.array_equal(b.reshape(-1), ref_bf16(ref))


@needs_gguf
def test_bf16_every_bit_pattern():
    data = np.arange(65536, dtype=np.uint16)
    raw = data.view(np.uint8)
    with np.errstate(all="ignore"):
        ref = np.asarray(gq.dequantize(raw.reshape(1, -1), T.BF16)).reshape(-1)
    assert np.array_equal(ref.view(np.uint32), data.astype(np.uint32) << 16)
    out = orc.dequantize(raw, "BF16", (65536,))
    assert np.array_equal(out.view(np.uint32), ref.view(np.uint32))
    h = orc.dequantize(raw, "BF16", (65536,), dtype="float16")
    assert np.array_equal(h.view(np.uint16), ref_f16(ref))
    b = orc.dequantize(raw, "BF16", (65536,), dtype="bfloat16")
    assert np.array_equal(b, ref_bf16(ref))


def f32_rounding_boundaries():
    """Every float32 halfway point between adjacent float16 values (and its neighbours),
    the overflow threshold, subnormal ties, plus random bit patterns."""
    h = np.arange(0, 0x7C00, dtype=np.uint32)
    lo = h.astype(np.uint16).view(np.float16).astype(np.float32).view(np.uint32)
    hi = (h + 1).astype(np.uint16).view(np.float16).astype(np.float32).view(np.uint32)
    mid = ((lo.astype(np.uint64) + hi) // 2).astype(np.uint32)  # same binade: the exact midpoint
    cand = np.concatenate([mid - 1, mid, mid + 1, lo, np.array([0x477FF000, 0x477FEFFF, 0x33000000, 0x33000001,
                                                                  0x32FFFFFF, 0x7F7FFFFF, 0x7F800000, 0x7F800001,
                                                                  0x7FC00000, 0x7FFFFFFF, 0x00000001, 0x007FFFFF],
                                                                 dtype=np.uint32)])
    rnd = rng_for("f32bits").integers(0, 2 ** 32, size=1 << 18, dtype=np.uint64).astype(np.uint32)
    allv = np.concatenate([cand, rnd])
    return np.concatenate([allv, allv | np.uint32(0x80000000)])


@needs_gguf
def test_f32_to_f16_and_bf16_rounding():
    bits = f32_rounding_boundaries()
    ref = bits.view(np.float32)
    raw = bits.view(np.uint8)
    n = bits.size
    out = orc.dequantize(raw, "F32", (n,))
    assert np.array_equal(out.view(np.uint32), bits)
    h = orc.dequantize(raw, "F32", (n,), dtype=np.float16)
    assert np.array_equal(h.view(np.uint16), ref_f16(ref))  # NaNs included: NumPy's NaN rule
    b = orc.dequantize(raw, "F32", (n,), dtype="bfloat16")
    assert np.array_equal(b, ref_bf16(ref))


# ---- real tensors -------------------------------------------------------------------------------

def _model_dirs():
    env = os.environ.get("ORC_TEST_MODELS")
    dirs = env.split(os.pathsep) if env else []
    return dirs + [os.path.join(ROOT, "tests", "models"), "/work/cache/models"]


def _gguf_files():
    seen, files = set(), []
    for d in _model_dirs():
        if not os.path.isdir(d):
            continue
        for f in sorted(os.listdir(d)):
            p = os.path.realpath(os.path.join(d, f))
            if f.endswith(".gguf") and p not in seen and os.path.getsize(p) > (1 << 20):
                seen.add(p)
                files.append(p)
    return files


def _gguf_tensor_table(path):
    """A minimal GGUF v2/v3 header walk: [(name, ggml type id, shape (NumPy order), data offset)].
    (Only to find tensor bytes; what is compared is gguf-py's dequantization of them.)"""
    scalar = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    with open(path, "rb") as f:
        buf = f.read(64 << 20)
    pos = 0

    def u(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, buf, pos)
        pos += struct.calcsize("<" + fmt)
        return v[0]

    def string():
        nonlocal pos
        n = u("Q")
        s = buf[pos:pos + n]
        pos += n
        return s

    def skip(vt):
        nonlocal pos
        if vt in scalar:
            pos += scalar[vt]
        elif vt == 8:
            string()
        elif vt == 9:
            et, cnt = u("I"), u("Q")
            if et in scalar:
                pos += scalar[et] * cnt
            else:
                for _ in range(cnt):
                    skip(et)
        else:
            raise ValueError(f"{path}: bad GGUF value type {vt}")

    assert buf[:4] == b"GGUF"
    pos = 4
    version = u("I")
    assert version in (2, 3)
    n_tensors, n_kv = u("Q"), u("Q")
    alignment = 32
    for _ in range(n_kv):
        key = string()
        vt = u("I")
        if key == b"general.alignment" and vt == 4:
            alignment = u("I")
        else:
            skip(vt)
    infos = []
    for _ in range(n_tensors):
        name = string().decode()
        nd = u("I")
        dims = [u("Q") for _ in range(nd)]
        tt = u("I")
        off = u("Q")
        infos.append((name, tt, tuple(reversed(dims)), off))
    data_start = (pos + alignment - 1) // alignment * alignment
    return [(n, tt, shape, data_start + off) for n, tt, shape, off in infos]


@needs_gguf
def test_real_tensors():
    files = _gguf_files()
    if not files:
        pytest.skip("no GGUF files found (set ORC_TEST_MODELS to a folder of .gguf files)")
    checked = {}
    for path in files:
        mm = np.memmap(path, dtype=np.uint8, mode="r")
        per_type = {}
        for name, tt, shape, off in _gguf_tensor_table(path):
            tname = T(tt).name
            n = int(np.prod(shape))
            if tname not in orc.QUANT_TYPES or n > (2 << 20) or per_type.get(tname, 0) >= 2:
                continue
            bs, ts = gguf.GGML_QUANT_SIZES[T(tt)]
            data = np.array(mm[off:off + n // bs * ts])
            ref = reference(tname, data)
            assert np.isfinite(ref).all(), f"{path}: {name} has non-finite weights"
            out = orc.dequantize(data, tname, shape)
            assert_bits_equal(out, ref.reshape(shape), f"{os.path.basename(path)}:{name} ({tname})")
            h = orc.dequantize(data, tname, shape, dtype="float16")
            assert_bits_equal(h.view(np.uint16), ref_f16(ref).view(np.float16), f"{name} ({tname}) float16")
            per_type[tname] = per_type.get(tname, 0) + 1
            checked[tname] = checked.get(tname, 0) + 1
        del mm
    assert checked, "no tensor of a supported type in the GGUF files"
    print("real tensors checked per type:", checked)


# ---- the lookup tables -------------------------------------------------------------------------

@needs_gguf
def test_quant_tables_header_is_generated_from_gguf_py():
    r = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "gen_quant_tables.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_quant_tables_agree_with_ggml_common_h():
    """First and last rows of each grid as written in ggml's ggml-common.h (an anchor
    independent of gguf-py)."""
    text = open(os.path.join(ROOT, "csrc/quant/quant_tables.h")).read()

    def table(name):
        body = text[text.index(name + ","):]
        body = body[body.index("{") + 1:body.index("};")]
        return [int(v, 0) for v in body.replace("\n", " ").split(",") if v.strip()]

    expect = {
        "orc_iq2xxs_grid": (256, 0x0808080808080808, 0x2b2b2b1908081908),
        "orc_iq2xs_grid": (512, 0x0808080808080808, 0x2b2b2b2b2b2b2b2b),
        "orc_iq2s_grid": (1024, 0x0808080808080808, 0x2b2b2b2b2b2b2b2b),
        "orc_iq3xxs_grid": (256, 0x04040404, 0x3e341c04),
        "orc_iq3s_grid": (512, 0x01010101, 0x0f0f0101),
        "orc_iq1s_grid": (2048, 0xffffffffffffffff, 0x0101010101010101),
    }
    for name, (n, first, last) in expect.items():
        t = table(name)
        assert (len(t), t[0], t[-1]) == (n, first, last), name
    ks = table("orc_ksigns_iq2xs")
    assert ks == [i | ((bin(i).count("1") & 1) << 7) for i in range(128)]
    assert [(v if v < 128 else v - 256) for v in table("orc_kvalues_iq4nl")] == [
        -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]


# ---- argument checking ------------------------------------------------------------------------

@needs_gguf
def test_type_names_ids_and_enums_are_accepted():
    data = random_blocks("Q4_K", 2, rng_for("names"))
    a = orc.dequantize(data, "Q4_K", (512,))
    for t in ("q4_k", T.Q4_K, int(T.Q4_K)):
        assert np.array_equal(orc.dequantize(data, t, (512,)).view(np.uint32), a.view(np.uint32))
    assert orc.dequantize(data, "Q4_K", 512).shape == (512,)
    assert orc.dequantize(data, "Q4_K", [2, 256], device="cpu", dtype=np.float32).shape == (2, 256)


def test_out_parameter():
    data = random_blocks("Q6_K", 4, rng_for("out"))
    want = orc.dequantize(data, "Q6_K", (2, 512), dtype="float16")
    out = np.full((2, 512), np.nan, dtype=np.float16)
    assert orc.dequantize(data, "Q6_K", (2, 512), dtype="float16", out=out) is out
    assert np.array_equal(out.view(np.uint16), want.view(np.uint16))
    for bad in (np.empty((2, 512), np.float32), np.empty(1024, np.float16), np.empty((512, 2), np.float16),
                np.empty((2, 1024), np.float16)[:, ::2]):
        with pytest.raises(ValueError, match="out"):
            orc.dequantize(data, "Q6_K", (2, 512), dtype="float16", out=bad)
    ro = np.empty((2, 512), np.float16)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="out"):
        orc.dequantize(data, "Q6_K", (2, 512), dtype="float16", out=ro)
    buf = np.zeros(8192, np.uint8)
    buf[:data.size] = data
    with pytest.raises(ValueError, match="overlaps"):
        orc.dequantize(buf[:data.size], "Q6_K", (2, 512), out=buf[512:512 + 4096].view(np.float32).reshape(2, 512))


def test_wrong_byte_count_names_type_and_sizes():
    data = np.zeros(144 * 2 - 1, dtype=np.uint8)
    with pytest.raises(ValueError) as e:
        orc.dequantize(data, "Q4_K", (512,))
    msg = str(e.value)
    assert "Q4_K" in msg and "288" in msg and "287" in msg
    with pytest.raises(ValueError, match="Q8_0"):
        orc.dequantize(np.zeros(35, np.uint8), "Q8_0", (32,))


def test_shape_must_match_blocks():
    data = np.zeros(144, dtype=np.uint8)
    with pytest.raises(ValueError, match="block size 256"):
        orc.dequantize(data, "Q4_K", (2, 128))
    with pytest.raises(ValueError, match="negative"):
        orc.dequantize(data, "Q4_K", (-256,))
    with pytest.raises((ValueError, TypeError)):
        orc.dequantize(data, "Q4_K", "256")
    with pytest.raises(ValueError):
        orc.dequantize(data, "Q4_K", ())
    assert orc.dequantize(np.zeros(0, np.uint8), "Q4_K", (0, 256)).shape == (0, 256)


@pytest.mark.parametrize("bad", ["Q4_X", "", "q4", 99, -1, 4, 31])
def test_unknown_types_are_refused(bad):
    with pytest.raises(ValueError) as e:
        orc.dequantize(np.zeros(18, np.uint8), bad, (32,))
    assert str(bad) in str(e.value) or "removed" in str(e.value)


@pytest.mark.parametrize("name", ["Q8_K", "Q8_1", "I8", "I32", "F64"])
def test_unsupported_types_name_themselves(name):
    bs, ts = sizes(name)
    with pytest.raises(ValueError, match=name):  # orc.GGUFError is a ValueError
        orc.dequantize(np.zeros(ts, np.uint8), name, (bs,))


def test_bad_data_dtype_device():
    data = np.zeros(18, np.uint8)
    with pytest.raises(TypeError, match="uint8"):
        orc.dequantize(data.view(np.int8), "Q4_0", (32,))
    with pytest.raises(TypeError):
        orc.dequantize(bytes(18), "Q4_0", (32,))
    with pytest.raises(ValueError, match="contiguous"):
        orc.dequantize(np.zeros(36, np.uint8)[::2], "Q4_0", (32,))
    with pytest.raises(ValueError, match="dtype"):
        orc.dequantize(data, "Q4_0", (32,), dtype="float64")
    with pytest.raises(ValueError, match="dtype"):
        orc.dequantize(data, "Q4_0", (32,), dtype=np.int32)
    with pytest.raises(ValueError, match="device"):
        orc.dequantize(data, "Q4_0", (32,), device="tpu")


def test_cuda_device_without_gpu_says_why():
    if orc.cuda_available():
        pytest.skip("a GPU is usable here")
    with pytest.raises(orc.CudaError):
        orc.dequantize(np.zeros(18, np.uint8), "Q4_0", (32,), device="cuda")


# ---- GPU against CPU ---------------------------------------------------------------------------

def gpu_sizes(name):
    """Element counts around the kernels' tile (8192 elements) and thread block edges."""
    if name in FLOAT_TYPES:
        return [1, 7, 8, 9, 2047, 2048, 2049, 8191, 8193, 30001]
    bs, ts = sizes(name)
    nb = 8192 // bs
    return [bs * k for k in (1, 3, nb - 1, nb, nb + 1, 2 * nb + 7)]


def gpu_inputs(name, n):
    rng = rng_for("gpu", name, n)
    if name in FLOAT_TYPES:
        isz = 4 if name == "F32" else 2
        return [("random bits", rng.integers(0, 256, size=n * isz, dtype=np.uint8))]
    bs, ts = sizes(name)
    return [("finite scales", random_blocks(name, n // bs, rng)),
            ("random bytes", rng.integers(0, 256, size=n // bs * ts, dtype=np.uint8))]


def assert_gpu_equals_cpu(gpu, cpu, what):
    """Bit-identical except NaN payloads: GPU arithmetic yields the canonical NaN where
    x86 propagates an operand's payload."""
    if cpu.dtype == np.float16:
        assert_bits_equal(gpu.view(np.uint16), cpu, what)
    else:  # float32, or bfloat16 bits as uint16
        assert_bits_equal(gpu, cpu, what)


@pytest.mark.gpu
@pytest.mark.parametrize("name", ALL_TYPES)
def test_gpu_matches_cpu(name):
    for n in gpu_sizes(name):
        for kind, data in gpu_inputs(name, n):
            for dt in DTYPES:
                cpu = orc.dequantize(data, name, (n,), dtype=dt)
                gpu = orc.dequantize(data, name, (n,), device="cuda", dtype=dt)
                assert gpu.dtype == cpu.dtype and gpu.shape == cpu.shape
                what = f"{name} n={n} {kind} {dt}"
                if kind == "finite scales" or name in FLOAT_TYPES:
                    # no arithmetic NaN can arise: every bit must match, NaN payloads included
                    assert np.array_equal(gpu.view(np.uint8), cpu.view(np.uint8)), what
                else:
                    assert_gpu_equals_cpu(gpu, cpu, what)


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["F32", "F16", "BF16", "Q4_0", "Q8_0", "Q4_K", "Q6_K", "IQ2_XXS", "IQ1_M",
                                  "MXFP4", "NVFP4", "TQ1_0"])
def test_gpu_unaligned_buffers(name):
    """Device buffers 1..15 bytes off 16-byte alignment take the scalar paths."""
    n = gpu_sizes(name)[-1]
    data = gpu_inputs(name, n)[0][1]
    for dt, esz in (("float32", 4), ("float16", 2), ("bfloat16", 2)):
        cpu = orc.dequantize(data, name, (n,), dtype=dt)
        for soff, doff in ((1, 0), (3, esz), (0, 2 * esz), (7, 3 * esz), (16, 16)):
            gpu = orc._orc._cuda_dequantize_at(data, name, n, dt, soff, doff)
            assert np.array_equal(gpu.view(np.uint8), cpu.view(np.uint8)), f"{name} {dt} offsets {soff},{doff}"


@pytest.mark.gpu
def test_gpu_errors():
    with pytest.raises(ValueError, match="Q4_K"):
        orc.dequantize(np.zeros(100, np.uint8), "Q4_K", (256,), device="cuda")
    with pytest.raises(ValueError):
        orc._orc._cuda_dequantize_at(np.zeros(144, np.uint8), "Q4_K", 256, "float32", 0, 2)


# ---- the GPU kernels' whole-tile decoders, on the host ----------------------------------------------

def test_gpu_fast_decoders_match_shared_decoders(tmp_path):
    """cuda/dequant/dequant_fast.cuh (the decoders of the kernels' whole-tile path) against
    csrc/quant/quant_decode.h, bit for bit, every chunk of random and edge blocks laid out as
    in the kernels' shared-memory tile (tests/c/test_dequant_fast.c). Runs without a GPU:
    the header is C11 that nvcc also compiles."""
    import shutil
    cc = shutil.which(os.environ.get("CC", "gcc")) or shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler")
    exe = str(tmp_path / "test_dequant_fast")
    flags = ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-I" + os.path.join(ROOT, "csrc")]
    subprocess.run([cc, *flags, os.path.join(ROOT, "tests/c/test_dequant_fast.c"), "-o", exe, "-lm"], check=True,
                   capture_output=True, text=True)
    r = subprocess.run([exe], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr


# ---- the compiled kernels -------------------------------------------------------------------------

def _cuobjdump():
    import shutil
    cands = [os.environ.get("ORC_CUOBJDUMP"), shutil.which("cuobjdump")]
    for home in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if home:
            cands.append(os.path.join(home, "bin", "cuobjdump"))
    return next((c for c in cands if c and os.path.exists(c)), None)


def test_dequant_kernels_contain_no_ffma():
    """nvcc would contract a*b+c into FFMA (one rounding instead of two); the kernels use
    __fmul_rn/__fadd_rn so that cannot happen. Checks the SASS of the built extension."""
    if not orc.build_info().get("cuda"):
        pytest.skip("built without CUDA")
    tool = _cuobjdump()
    if not tool:
        pytest.skip("cuobjdump not found (set ORC_CUOBJDUMP)")
    r = subprocess.run([tool, "-sass", orc._orc.__file__], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    funcs = r.stdout.split("Function : ")[1:]
    dequant = [f for f in funcs if "orc_dequant_" in f.split("\n", 1)[0]]
    assert len(dequant) >= 3 * len(BLOCK_TYPES), f"only {len(dequant)} dequant kernels in the SASS"
    for f in dequant:
        assert "FFMA" not in f, f"FFMA in {f.split(chr(10), 1)[0]}"
