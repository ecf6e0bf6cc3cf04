"""Error text is never lost (issue #12 item 4): whatever bytes a file or a path brings, the
exception is the one orc means (GGUFError, OSError...) with a str message, never a
UnicodeDecodeError; invalid bytes show as \\xNN; a long path keeps the file's base name and the
message its key information. The C side (csrc/core/error.c) is checked by tests/c/test_error_text.c."""
import os

import pytest

import gguf_craft as C
import orc
from cbuild import CC, run_c
from orc import synth


@pytest.mark.skipif(CC is None, reason="no C compiler")
def test_c_error_records_are_valid_utf8(tmp_path):
    (r,) = run_c(tmp_path, "test_error_text", ["csrc/core/error.c"])
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr


def test_non_utf8_architecture(tmp_path):
    p = C.build([C.kv("general.architecture", C.STRING, b"ll\xffama\xc3")], [C.tensor("w", (32,), C.F32)])
    path = p.write(tmp_path / "arch.gguf")
    with pytest.raises(orc.GGUFError, match=r"architecture 'll\\xffama\\xc3' is not supported"):
        orc.Model(path, device="cpu")


def test_non_utf8_rope_scaling_type(tmp_path):
    def edit(md, ts):
        md.append(("llama.rope.scaling.type", "str", b"lin\xe9ar"))
    path = synth.make_model(tmp_path / "rope.gguf", synth.spec_for("llama", weight_type="F32"), edit=edit)
    with pytest.raises(orc.GGUFError, match=r"'llama.rope.scaling.type' = 'lin\\xe9ar' is not supported"):
        orc.Model(path, device="cpu")


@pytest.mark.parametrize("n_a", [61, 62, 63, 64])
def test_tensor_name_cut_mid_character_at_the_limit(tmp_path, n_a):
    # a 2-byte character straddling (or just past) the 64-byte limit
    name = ("a" * n_a + "é" * 3).encode()
    path = C.build([C.kv("general.architecture", C.STRING, "llama")], [C.tensor(name, (32,), C.F32)]).write(
        tmp_path / "name.gguf")
    for fn in (orc.GGUFFile, lambda p: orc.Model(p, device="cpu"), orc.Tokenizer):
        with pytest.raises(orc.GGUFError, match=r"tensor #0 at offset \d+ \('a+(\\xc3\\xa9)+'\): name length "
                                                f"{len(name)} is not below ggml's limit of 64 bytes"):
            fn(path)
    # the same characters in an invalid name (cut at 64 bytes, so it is not UTF-8)
    bad = name[:64] if name[63] >= 0xC0 else name[:63]
    path = C.build([C.kv("general.architecture", C.STRING, "llama")], [C.tensor(bad[:63], (32,), C.F32)]).write(
        tmp_path / "cut.gguf")
    if bad[:63].decode("utf-8", "ignore").encode() != bad[:63]:  # really cut in the middle
        with pytest.raises(orc.GGUFError, match="not valid UTF-8|UTF-8"):
            orc.GGUFFile(path)


def deep_dir(root, unit, depth):
    d = str(root)
    for i in range(depth):
        d = os.path.join(d, unit * (100 // len(unit.encode())) + str(i))
    os.makedirs(d, exist_ok=True)
    return d


@pytest.mark.parametrize("unit", ["ü", "€", "x"])
def test_long_non_ascii_path_keeps_base_name_and_key_info(tmp_path, unit):
    d = deep_dir(tmp_path, unit, 14)  # ~1.4 kB of path, longer than a whole error record
    base = "modèle-" + "é" * 40 + ".Q4_K_M.gguf"
    path = C.build([C.kv("general.architecture", C.STRING, "llama")], [C.tensor("w", (32,), C.F32)],
                   version=7).write(os.path.join(d, base))
    assert len(path.encode()) > 1024
    for fn in (orc.GGUFFile, lambda p: orc.Model(p, device="cpu"), orc.Tokenizer):
        with pytest.raises(orc.GGUFError) as e:
            fn(path)
        msg = str(e.value)
        assert base in msg and "GGUF version 7 at offset 4 is not supported" in msg, msg
        assert msg.startswith("'" + str(tmp_path)[:20]) and "..." in msg, msg
    # a file that parses but has no tokenizer: the Tokenizer's own message after the path
    ok = C.build([C.kv("general.architecture", C.STRING, "llama")], [C.tensor("w", (32,), C.F32)]).write(
        os.path.join(d, "no-tokenizer-" + base))
    with pytest.raises(orc.GGUFError, match=r"no-tokenizer-modèle-é+\.Q4_K_M\.gguf': .*tokenizer\.ggml\.model"):
        orc.Tokenizer(ok)
    missing = os.path.join(d, "absent-" + base)
    with pytest.raises(FileNotFoundError, match="absent-modèle"):
        orc.GGUFFile(missing)


def test_non_utf8_path_bytes(tmp_path):
    # a file name that is not UTF-8 (Linux allows any bytes): Python passes it as surrogate escapes
    raw = os.fsencode(str(tmp_path)) + b"/mod\xe8le.gguf"
    with open(raw, "wb") as f:
        f.write(C.build([C.kv("general.architecture", C.STRING, "llama")], [], version=9).data)
    name = os.fsdecode(raw)
    with pytest.raises(orc.GGUFError, match=r"mod\\xe8le\.gguf': GGUF version 9"):
        orc.GGUFFile(name)
    with pytest.raises(FileNotFoundError, match=r"mod\\xe8le-absent"):
        orc.GGUFFile(os.fsdecode(raw.replace(b".gguf", b"-absent.gguf")))
