"""HARDENING.md rows 1-14 (the file): each hostile file ends in orc.GGUFError (or the
OSError the row calls for) whose message names the file and the byte offset, key or
tensor. One test per row, parametrized over the row's cases; files come from the
byte-level builder in gguf_craft.py. Also: regression tests for what the fuzzer found
(docs/fuzz.md), and a leak check of the open/fail paths."""
from __future__ import annotations

import base64
import os
import struct

import pytest

import orc

import gguf_craft as C
from gguf_craft import ARRAY, BOOL, F32, FLOAT32, STRING, UINT32, UINT64, gstr, kv, tensor


def open_bad(tmp_path, data: bytes, *fragments, exc=orc.GGUFError) -> str:
    """Write `data`, open it, expect `exc` whose message holds the path and every fragment."""
    p = tmp_path / "bad.gguf"
    p.write_bytes(data)
    with pytest.raises(exc) as ei:
        orc.GGUFFile(str(p))
    msg = str(ei.value)
    assert str(p) in msg, msg
    for frag in fragments:
        assert frag in msg, f"{frag!r} not in {msg!r}"
    return msg


def header(n_tensors=0, n_kv=0, version=3, magic=b"GGUF") -> bytes:
    return magic + struct.pack("<I", version) + struct.pack("<QQ", n_tensors & (2**64 - 1), n_kv & (2**64 - 1))


ARCH = kv("general.architecture", STRING, "llama")


# ---- row 1: shorter than the header; empty; a directory; a missing path -------------------

@pytest.mark.parametrize("case", ["empty", "3 bytes", "12 bytes", "23 bytes", "directory", "missing"])
def test_row01_short_empty_directory_missing(tmp_path, case):
    if case == "empty":
        open_bad(tmp_path, b"", "empty file (0 bytes)", "24-byte")
    elif case == "3 bytes":
        open_bad(tmp_path, b"GGU", "3 bytes, shorter than the 24-byte GGUF header")
    elif case == "12 bytes":
        open_bad(tmp_path, b"GGUF" + struct.pack("<I", 3) + b"\0" * 4, "12 bytes, shorter than the 24-byte")
    elif case == "23 bytes":
        open_bad(tmp_path, header()[:23], "23 bytes, shorter than the 24-byte")
    elif case == "directory":
        with pytest.raises(IsADirectoryError) as ei:
            orc.GGUFFile(str(tmp_path))
        assert str(tmp_path) in str(ei.value) and "directory" in str(ei.value)
    else:
        missing = str(tmp_path / "no-such.gguf")
        with pytest.raises(FileNotFoundError) as ei:
            orc.GGUFFile(missing)
        assert missing in str(ei.value)


# ---- row 2: magic; byte-swapped files ---------------------------------------------------

@pytest.mark.parametrize("case", ["GGML", "binary", "big-endian version", "FUGG"])
def test_row02_magic_and_big_endian(tmp_path, case):
    if case == "GGML":
        open_bad(tmp_path, header(magic=b"GGML"), "not a GGUF file: magic at offset 0 is 'GGML', expected 'GGUF'")
    elif case == "binary":
        open_bad(tmp_path, header(magic=b"\x00\xff\x7fG"), "magic at offset 0 is '\\x00\\xff\\x7fG'")
    elif case == "big-endian version":
        # what gguf-py writes with endianess=BIG: the magic stays "GGUF", the rest is swapped
        data = b"GGUF" + struct.pack(">I", 3) + struct.pack(">QQ", 0, 0)
        open_bad(tmp_path, data, "offset 4", "0x03000000", "big-endian", "not supported")
    else:
        open_bad(tmp_path, header(magic=b"FUGG"), "offset 0", "big-endian GGUF files are not supported")


# ---- row 3: version 0, 1, > 3 -----------------------------------------------------------

@pytest.mark.parametrize("version,fragment", [(0, "GGUF version 0 at offset 4 is not valid"),
                                              (1, "GGUF version 1 (offset 4) is not supported"),
                                              (4, "GGUF version 4 at offset 4 is not supported"),
                                              (0xFFFFFFFF, "GGUF version 4294967295 at offset 4")])
def test_row03_version(tmp_path, version, fragment):
    open_bad(tmp_path, header(version=version) + b"\0" * 64, fragment)


# ---- row 4: counts larger than the file could hold; negative --------------------------------

@pytest.mark.parametrize("case", ["n_tensors huge", "n_kv huge", "n_tensors negative", "n_kv negative",
                                  "both together"])
def test_row04_counts(tmp_path, case):
    body = ARCH.encode()
    if case == "n_tensors huge":
        open_bad(tmp_path, header(n_tensors=2**40, n_kv=1) + body, "n_tensors 1099511627776 at offset 8 cannot fit")
    elif case == "n_kv huge":
        open_bad(tmp_path, header(n_kv=2**33) + body, "n_kv 8589934592 at offset 16 cannot fit")
    elif case == "n_tensors negative":
        open_bad(tmp_path, header(n_tensors=-1, n_kv=1) + body, "n_tensors at offset 8 is negative (-1)")
    elif case == "n_kv negative":
        open_bad(tmp_path, header(n_kv=-5) + body, "n_kv at offset 16 is negative (-5)")
    else:  # each count fits alone, not both
        n = len(body) // 14
        open_bad(tmp_path, header(n_tensors=1, n_kv=n) + body, "cannot fit", "offsets 16 and 8")


# ---- row 5: keys ------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["past end", "too long", "empty", "duplicate", "not utf-8"])
def test_row05_keys(tmp_path, case):
    if case == "past end":
        b = C.build([ARCH, kv("general.name", STRING, "tiny")])
        open_bad(tmp_path, b.data[:b.kv_offsets[1] + 8 + 5], f"key #1 at offset {b.kv_offsets[1]}: string of 12 bytes "
                 "runs past the end of the file (5 bytes left)")
    elif case == "too long":
        b = C.build([ARCH, kv("k" * 65536, UINT32, 1)])
        open_bad(tmp_path, b.data, f"key #1 at offset {b.kv_offsets[1]}", "key length 65536 exceeds the limit of 65535")
    elif case == "empty":
        b = C.build([ARCH, kv(b"", UINT32, 1)])
        open_bad(tmp_path, b.data, f"key #1 at offset {b.kv_offsets[1]} is empty")
    elif case == "duplicate":
        b = C.build([kv("general.name", STRING, "a"), ARCH, kv("general.name", STRING, "b")])
        open_bad(tmp_path, b.data, f"duplicate key 'general.name' at offsets {b.kv_offsets[0]} and {b.kv_offsets[2]}")
    else:
        b = C.build([ARCH, kv(b"bad\xffkey", UINT32, 1)])
        open_bad(tmp_path, b.data, f"key #1 at offset {b.kv_offsets[1]} ('bad\\xffkey') is not valid UTF-8")


# ---- row 6: value types; arrays ---------------------------------------------------------

@pytest.mark.parametrize("case", ["type out of range", "element type out of range", "array of arrays",
                                  "count x size overflows", "array past end"])
def test_row06_value_types_and_arrays(tmp_path, case):
    if case == "type out of range":
        b = C.build([ARCH, kv("x.k", 13, raw=b"\0" * 8)])
        open_bad(tmp_path, b.data, f"key 'x.k' at offset {b.kv_offsets[1]}: value type id 13 is out of range")
    elif case == "element type out of range":
        b = C.build([ARCH, kv("x.k", ARRAY, raw=struct.pack("<IQ", 0xFFFFFFFF, 1) + b"\0" * 8)])
        open_bad(tmp_path, b.data, f"key 'x.k' at offset {b.kv_offsets[1]}: array element type id 4294967295")
    elif case == "array of arrays":
        inner = struct.pack("<IQ", UINT32, 1) + struct.pack("<I", 7)
        b = C.build([ARCH, kv("x.nested", ARRAY, raw=struct.pack("<IQ", ARRAY, 1) + inner)])
        open_bad(tmp_path, b.data, f"key 'x.nested' at offset {b.kv_offsets[1]}: arrays of arrays are not supported")
    elif case == "count x size overflows":
        b = C.build([ARCH, kv("x.big", ARRAY, raw=struct.pack("<IQ", UINT64, 2**62) + b"\0" * 16)])
        open_bad(tmp_path, b.data, f"key 'x.big' at offset {b.kv_offsets[1]}: array of 4611686018427387904 UINT64",
                 "overflows")
    else:
        b = C.build([ARCH, kv("x.arr", ARRAY, raw=struct.pack("<IQ", UINT32, 1000) + b"\0" * 8)])
        open_bad(tmp_path, b.data, f"key 'x.arr' at offset {b.kv_offsets[1]}: 1000 UINT32 values (4000 bytes) run "
                 "past the end of the file (8 bytes left)")


# ---- row 7: strings ---------------------------------------------------------------------

@pytest.mark.parametrize("case", ["value past end", "absurd length", "array entry past end", "array count"])
def test_row07_strings(tmp_path, case):
    if case == "value past end":
        b = C.build([ARCH, kv("general.name", STRING, raw=struct.pack("<Q", 100) + b"abc")])
        at = b.kv_offsets[1] + 8 + len("general.name") + 4
        open_bad(tmp_path, b.data, f"value of key 'general.name' at offset {at}: string of 100 bytes runs past the end")
    elif case == "absurd length":
        b = C.build([ARCH, kv("general.name", STRING, raw=struct.pack("<Q", 2**64 - 1) + b"abc")])
        open_bad(tmp_path, b.data, "value of key 'general.name'", "string length 18446744073709551615 is absurdly large")
    elif case == "array entry past end":
        raw = struct.pack("<IQ", STRING, 3) + gstr("a") + gstr("b") + struct.pack("<Q", 50) + b"xy"
        b = C.build([ARCH, kv("tokenizer.ggml.tokens", ARRAY, raw=raw)])
        at = b.kv_offsets[1] + 8 + len("tokenizer.ggml.tokens") + 4 + 12 + 9 + 9
        open_bad(tmp_path, b.data, f"element #2 of key 'tokenizer.ggml.tokens' at offset {at}: string of 50 bytes "
                 "runs past the end of the file (2 bytes left)")
    else:
        raw = struct.pack("<IQ", STRING, 10**6) + gstr("a")
        b = C.build([ARCH, kv("tokenizer.ggml.tokens", ARRAY, raw=raw)])
        open_bad(tmp_path, b.data, f"key 'tokenizer.ggml.tokens' at offset {b.kv_offsets[1]}: an array of 1000000 "
                 "strings cannot fit")


# ---- row 8: general.alignment -----------------------------------------------------------

@pytest.mark.parametrize("case", ["UINT64", "array", "zero", "not a power of two", "absurd"])
def test_row08_alignment(tmp_path, case):
    if case == "UINT64":
        b = C.build([ARCH, kv("general.alignment", UINT64, 32)])
        open_bad(tmp_path, b.data, f"key 'general.alignment' at offset {b.kv_offsets[1]} is UINT64, expected UINT32")
    elif case == "array":
        b = C.build([ARCH, kv("general.alignment", ARRAY, [32], elem_type=UINT32)])
        open_bad(tmp_path, b.data, f"key 'general.alignment' at offset {b.kv_offsets[1]} is ARRAY of UINT32, "
                 "expected UINT32")
    else:
        value = {"zero": 0, "not a power of two": 48, "absurd": 2**31}[case]
        b = C.build([ARCH, kv("general.alignment", UINT32, value)], alignment=32)
        frag = f"{value} is absurdly large" if case == "absurd" else f"{value} is not a power of two"
        open_bad(tmp_path, b.data, f"key 'general.alignment' at offset {b.kv_offsets[1]}: {frag}")


# ---- row 9: tensor names ----------------------------------------------------------------

@pytest.mark.parametrize("case", ["64 bytes", "past end", "duplicate", "empty"])
def test_row09_tensor_names(tmp_path, case):
    if case == "64 bytes":
        b = C.build([ARCH], [tensor("a" * 63, (8,), F32), tensor("b" * 64, (8,), F32)])
        open_bad(tmp_path, b.data, f"tensor #1 at offset {b.tensor_info_offsets[1]} ('{'b' * 64}'): name length 64 is "
                 "not below ggml's limit of 64 bytes")
        ok = C.build([ARCH], [tensor("a" * 63, (8,), F32)]).write(tmp_path / "ok.gguf")
        assert orc.GGUFFile(ok).tensors[0].name == "a" * 63  # 63 is the longest allowed
    elif case == "past end":
        b = C.build([ARCH], [tensor("blk.0.attn_q.weight", (8,), F32)])
        at = b.tensor_info_offsets[0]
        open_bad(tmp_path, b.data[:at + 8 + 4], f"tensor #0 name at offset {at}: string of 19 bytes runs past the end")
    elif case == "duplicate":
        b = C.build([ARCH], [tensor("a.weight", (8,), F32), tensor("b", (8,), F32), tensor("a.weight", (8,), F32)])
        o = b.tensor_info_offsets
        open_bad(tmp_path, b.data, f"duplicate tensor name 'a.weight' (tensor #0 at offset {o[0]} and #2 at offset "
                 f"{o[2]})")
    else:
        b = C.build([ARCH], [tensor(b"", (8,), F32)])
        open_bad(tmp_path, b.data, f"tensor #0 at offset {b.tensor_info_offsets[0]} has an empty name")


# ---- row 10: dimensions -----------------------------------------------------------------

@pytest.mark.parametrize("case,ne,fragment", [
    ("n_dims 5", (32, 1, 1, 1, 1), "n_dims 5 is not in 1..4"),
    ("n_dims 0", (), "n_dims 0 is not in 1..4"),
    ("negative", (32, -2), "dimension 1 is negative (-2)"),
    ("zero", (0, 4), "dimension 0 is zero"),
    ("product overflow", (2**32, 2**32), "the product of its dimensions overflows int64"),
])
def test_row10_dimensions(tmp_path, case, ne, fragment):
    b = C.build([ARCH], [tensor("blk.0.ffn_up.weight", ne, F32, data=b"")])
    open_bad(tmp_path, b.data, f"tensor 'blk.0.ffn_up.weight' at offset {b.tensor_info_offsets[0]}: {fragment}")


# ---- row 11: ggml types -----------------------------------------------------------------

@pytest.mark.parametrize("type_id,fragment", [(-1, "unknown type -1"), (42, "unknown type 42"),
                                              (4, "removed type 4 (Q4_2)"), (33, "removed type 33 (Q4_0_8_8)"),
                                              (37, "removed type 37 (IQ4_NL_4_8)")])
def test_row11_ggml_type(tmp_path, type_id, fragment):
    b = C.build([ARCH], [tensor("output.weight", (256,), type_id, data=b"\0" * 256)])
    open_bad(tmp_path, b.data, f"tensor 'output.weight' at offset {b.tensor_info_offsets[0]}: ggml type id {type_id} is "
             f"not valid ({fragment})")


def test_row11_valid_type_orc_may_not_dequantize_is_the_models_business(tmp_path):
    """The reader accepts every known type (the model refuses the ones it cannot dequantize,
    naming them): IQ1_M and TQ1_0 read back with their names and sizes."""
    b = C.build([ARCH], [tensor("x", (256,), 29), tensor("y", (256, 2), 34)])
    with orc.GGUFFile(b.write(tmp_path / "ok.gguf")) as f:
        assert [(t.type, t.nbytes) for t in f.tensors] == [("IQ1_M", 56), ("TQ1_0", 108)]


# ---- row 12: block size; byte-size and padding overflow ------------------------------------

@pytest.mark.parametrize("case,ne,type_id,fragment", [
    ("not a block multiple", (100, 2), 12, "first dimension 100 is not a multiple of Q4_K's block size 256"),
    ("bytes overflow", (2**31, 2**31), 28, "byte size of 4611686018427387904 F64 elements overflows"),
    ("padding overflow", (2**62 - 1,), F32, "its size 18446744073709551612 padded to the alignment 32 overflows"),
])
def test_row12_sizes(tmp_path, case, ne, type_id, fragment):
    b = C.build([ARCH], [tensor("token_embd.weight", ne, type_id, data=b"")])
    open_bad(tmp_path, b.data, f"tensor 'token_embd.weight' at offset {b.tensor_info_offsets[0]}: {fragment}")


# ---- row 13: tensor data layout ---------------------------------------------------------

def f32(name, n, offset=None):
    return tensor(name, (n,), F32, offset=offset)


@pytest.mark.parametrize("case", ["unaligned", "overlap", "out of order (later)", "out of order (below previous)",
                                  "gap", "gap before first", "past end of file", "offset + size overflows"])
def test_row13_data_layout(tmp_path, case):
    if case == "unaligned":
        b = C.build([ARCH], [f32("a", 4), f32("b", 4, offset=48)])
        frag = f"tensor 'b' (info at offset {b.tensor_info_offsets[1]}): data offset 48 is not a multiple of the " \
               "alignment 32"
    elif case == "overlap":
        b = C.build([ARCH], [f32("a", 16), f32("b", 8, offset=32)])
        frag = f"tensor 'b' (info at offset {b.tensor_info_offsets[1]}): data at offset 32 overlaps the previous " \
               "tensor 'a' (offset 0, 64 bytes)"
    elif case == "out of order (later)":
        b = C.build([ARCH], [f32("a", 8), f32("b", 8, offset=64), f32("c", 8, offset=32)])
        frag = f"tensor 'b' (info at offset {b.tensor_info_offsets[1]}): data offset 64 is out of order: the later " \
               f"tensor 'c' (info at offset {b.tensor_info_offsets[2]}) has its data before it, at 32"
    elif case == "out of order (below previous)":
        b = C.build([ARCH], [f32("a", 8), f32("b", 8), f32("c", 8, offset=0)])
        frag = f"tensor 'c' (info at offset {b.tensor_info_offsets[2]}): data offset 0 is out of order: below the " \
               "previous tensor 'b' at 32"
    elif case == "gap":
        b = C.build([ARCH], [f32("a", 8), f32("b", 8, offset=96)])
        frag = f"tensor 'b' (info at offset {b.tensor_info_offsets[1]}): data offset 96 leaves a gap of 64 bytes " \
               "after the previous tensor 'a' (expected offset 32)"
    elif case == "gap before first":
        b = C.build([ARCH], [f32("a", 8, offset=64)])
        frag = f"tensor 'a' (info at offset {b.tensor_info_offsets[0]}): data offset 64 leaves a gap"
    elif case == "past end of file":
        b = C.build([ARCH], [f32("a", 8), f32("b", 100)])
        b.data = b.data[:b.data_offset + 32 + 399]
        frag = f"tensor 'b' (info at offset {b.tensor_info_offsets[1]}): data at file offset {b.data_offset + 32} + " \
               f"400 bytes runs past the end of the file ({len(b.data)} bytes)"
    else:
        b = C.build([ARCH], [f32("a", 8, offset=2**64 - 32)])
        frag = f"tensor 'a' (info at offset {b.tensor_info_offsets[0]}): data offset 18446744073709551584 + size 32 " \
               "overflows"
    open_bad(tmp_path, b.data, frag)


def test_row13_alignment_padding_is_not_a_gap(tmp_path):
    """llama.cpp pads every tensor to the alignment: that is the layout, not a gap. And the
    last tensor's trailing padding may be missing from the file."""
    b = C.build([ARCH, kv("general.alignment", UINT32, 64)], [f32("a", 3), f32("b", 5), f32("c", 1)], pad_last=False)
    with orc.GGUFFile(b.write(tmp_path / "ok.gguf")) as f:
        assert [t.offset for t in f.tensors] == [0, 64, 128]
        assert f.file_size == f.data_offset + 128 + 4


# ---- row 14: the padded tensor-info section runs past the end ------------------------------

def test_row14_info_section_padding_past_end(tmp_path):
    b = C.build([ARCH], [f32("a", 8)])
    info_end = b.tensor_info_offsets[0] + 8 + 1 + 4 + 8 + 4 + 8
    assert info_end % 32 != 0 and b.data_offset > info_end
    open_bad(tmp_path, b.data[:info_end + 1], f"the tensor infos end at offset {info_end}; padded to the alignment 32 "
             f"the data section would start at {b.data_offset}, past the end of the file ({info_end + 1} bytes)")
    # a file without tensors has an empty data section: ending before its padding is fine
    v = C.build([ARCH])
    assert len(v.data) % 32 != 0
    with orc.GGUFFile(v.write(tmp_path / "vocab.gguf")) as f:
        assert f.tensors == [] and f.metadata == {"general.architecture": "llama"}


# ---- other refusals (not in the table) ----------------------------------------------------

def test_bool_must_be_0_or_1(tmp_path):
    b = C.build([ARCH, kv("x.flag", BOOL, 2)])
    open_bad(tmp_path, b.data, f"key 'x.flag' at offset {b.kv_offsets[1]}: BOOL value 2 is not 0 or 1")
    b = C.build([ARCH, kv("x.flags", ARRAY, [1, 0, 7], elem_type=BOOL)])
    open_bad(tmp_path, b.data, f"key 'x.flags' at offset {b.kv_offsets[1]}: BOOL value 7 in the array is not 0 or 1")


def test_tensor_name_with_nul_or_bad_utf8(tmp_path):
    b = C.build([ARCH], [tensor(b"a\0b", (8,), F32)])
    open_bad(tmp_path, b.data, f"tensor #0 at offset {b.tensor_info_offsets[0]}: name 'a\\x00b' is not valid UTF-8 or "
             "contains NUL")


# ---- regressions from fuzzing (docs/fuzz.md) -----------------------------------------------

FUZZ_01 = ("R0dVRgMAAAACAAAAAAAAAAEAAAAAAAAAEQAAAAAAAABnZW5lcmFsLmFsaWdubWVudAkAAAAIAAAAAAAAAAAAAAAAAAAAAAAAEQAA"
           "AAAAAGVuZXJhbC5hbGlnbm1lBducPTsAAAAAAAA=")


def test_fuzz_01_empty_string_array_without_other_strings(tmp_path):
    """Finding 1: an empty string array, when the file has no other string, set kv.strings to
    NULL + 0 (undefined behaviour, caught by UBSan). The crash input, and the valid case."""
    open_bad(tmp_path, base64.b64decode(FUZZ_01), "key 'general.alignment' at offset 24 is ARRAY of STRING, "
             "expected UINT32")
    b = C.build([kv("x.empty", ARRAY, [], elem_type=STRING), kv("x.n", FLOAT32, 1.0)])
    with orc.GGUFFile(b.write(tmp_path / "ok.gguf")) as f:
        assert f.metadata == {"x.empty": [], "x.n": 1.0}


# ---- no leak on the open and failure paths -------------------------------------------------

def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc")
@pytest.mark.skipif(bool(orc.build_info().get("sanitize")),
                    reason="ASan's quarantine keeps freed memory resident; LeakSanitizer checks this build")
def test_no_leak_on_repeated_open_and_failure(tmp_path):
    """300 tensor infos and a duplicate name at the very end: a failure after everything was
    allocated. A leak of the per-open tables (~50 KB) over 1500 rounds would show as 70+ MB."""
    ts = [f32(f"blk.{i}.w", 8) for i in range(300)]
    good = C.build([ARCH, kv("toks", ARRAY, [f"t{i}" for i in range(500)], elem_type=STRING)], ts)
    bad = C.build([ARCH], ts + [f32("blk.0.w", 8)])
    gp, bp = good.write(tmp_path / "good.gguf"), bad.write(tmp_path / "bad.gguf")

    def rounds(n):
        for _ in range(n):
            with pytest.raises(orc.GGUFError):
                orc.GGUFFile(bp)
            with orc.GGUFFile(gp) as f:
                f.metadata, f.tensors, f.raw("blk.7.w")

    rounds(200)  # warm up allocator pools
    before = _rss_bytes()
    rounds(1500)
    grown = _rss_bytes() - before
    assert grown < 20 * 2**20, f"RSS grew by {grown / 2**20:.1f} MiB"


# ---- the binding on mutated files -----------------------------------------------------------

def test_mutated_files_end_in_gguf_error_or_a_usable_file(tmp_path):
    """libFuzzer drives the C reader (fuzz/); this drives the Python binding the same way, on
    a file with every value type: 400 deterministic mutations (byte flips, overwrites with
    boundary values, truncations). Each must either raise GGUFError or give a file whose
    metadata, tensors and raw bytes can all be read. Under tools/asan_tests.sh this also
    checks the binding for memory errors."""
    import random

    base = C.build([ARCH, kv("general.alignment", UINT32, 32), kv("s", STRING, "héllo"),
                    kv("b", BOOL, 1), kv("f", FLOAT32, 1.5), kv("u", UINT64, 7),
                    kv("a.s", ARRAY, ["x", "yy", ""], elem_type=STRING),
                    kv("a.i", ARRAY, [1, -2, 3], elem_type=C.INT32),
                    kv("a.b", ARRAY, [0, 1], elem_type=BOOL)],
                   [tensor("t0", (8, 2), F32), tensor("t1", (32,), C.Q8_0), tensor("t2", (256,), C.Q4_K)]).data
    rng = random.Random(20261125)
    specials = [b"\x00", b"\xff", b"\x7f", b"\x80", b"\x01", b"\x20", b"\x09", b"\x08"]
    accepted = rejected = 0
    path = tmp_path / "m.gguf"
    for i in range(400):
        d = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            kind = rng.random()
            pos = rng.randrange(len(d))
            if kind < 0.5:
                d[pos] ^= 1 << rng.randrange(8)
            elif kind < 0.85:
                d[pos:pos + 1] = rng.choice(specials)
            else:
                del d[pos:]
                if not d:
                    d = bytearray(b"G")
        path.write_bytes(bytes(d))
        try:
            f = orc.GGUFFile(str(path))
        except orc.GGUFError as e:
            assert str(path) in str(e)
            rejected += 1
            continue
        with f:
            m = f.metadata
            assert all(isinstance(k, str) for k in m)
            for t in f.tensors:
                r = f.raw(t)
                assert r.nbytes == t.nbytes and t.file_offset + t.nbytes <= f.file_size
            accepted += 1
    assert accepted > 10 and rejected > 100, (accepted, rejected)  # both paths were exercised
