"""The reader's C API (typed getters, look-ups, errors) as model and tokenizer code use it:
tests/c/test_gguf_api.c, compiled here against csrc/ and run on a generated file."""
import os
import shutil
import subprocess

import pytest

import gguf_craft as C

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CC = shutil.which(os.environ.get("CC", "gcc")) or shutil.which("cc")


@pytest.mark.skipif(CC is None, reason="no C compiler")
def test_c_api(tmp_path):
    kvs = [
        C.kv("general.architecture", C.STRING, "qwen2"),
        C.kv("i.u8", C.UINT8, 200), C.kv("i.i8", C.INT8, -100), C.kv("i.u16", C.UINT16, 60000),
        C.kv("i.i16", C.INT16, -30000), C.kv("i.u32", C.UINT32, 4000000000), C.kv("i.i32", C.INT32, -2000000000),
        C.kv("i.u64", C.UINT64, 2**62), C.kv("i.i64", C.INT64, -(2**62)), C.kv("i.u64big", C.UINT64, 2**63),
        C.kv("f.f32", C.FLOAT32, 0.5), C.kv("f.f64", C.FLOAT64, -1e300), C.kv("b.true", C.BOOL, 1),
        C.kv("a.tokens", C.ARRAY, ["a", "b", "cé"], elem_type=C.STRING),
        C.kv("a.i16", C.ARRAY, [-1, 0, 300], elem_type=C.INT16),
        C.kv("a.scores", C.ARRAY, [0.0, -2.25, float("nan")], elem_type=C.FLOAT32),
        C.kv("a.u64", C.ARRAY, [2**64 - 1], elem_type=C.UINT64),
        C.kv("a.empty", C.ARRAY, [], elem_type=C.STRING),
    ]
    q = bytearray(C.pseudo_random_bytes(6 * 34, 5))
    q[0], q[-1] = 0x11, 0x22
    ts = [C.tensor("token_embd.weight", (8, 4), C.F32), C.tensor("blk.0.attn_q.weight", (64, 3), C.Q8_0, data=bytes(q))]
    path = C.build(kvs, ts).write(tmp_path / "api.gguf")
    exe = str(tmp_path / "test_gguf_api")
    srcs = [os.path.join(ROOT, p) for p in ("tests/c/test_gguf_api.c", "csrc/gguf/gguf.c", "csrc/gguf/ggml_types.c",
                                             "csrc/core/error.c")]
    flags = ["-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-D_GNU_SOURCE", "-I" + os.path.join(ROOT, "csrc")]
    subprocess.run([CC, *flags, *srcs, "-o", exe, "-lm"], check=True, capture_output=True, text=True)
    r = subprocess.run([exe, path], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr
