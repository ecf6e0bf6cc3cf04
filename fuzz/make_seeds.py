"""Write the fuzzer's seed corpus (fuzz/corpus/): a handful of small valid GGUF files that
together cover every value type, arrays of every element type, v2 and v3, a custom
alignment, a vocabulary-only file and one tensor of each ggml type.
    python fuzz/make_seeds.py
"""
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
import gguf_craft as C  # noqa: E402
from gguf.constants import GGML_QUANT_SIZES  # noqa: E402

OUT = os.path.join(ROOT, "fuzz", "corpus")


def every_value_type():
    kvs = [C.kv("general.architecture", C.STRING, "llama")]
    vals = {C.UINT8: 7, C.INT8: -7, C.UINT16: 700, C.INT16: -700, C.UINT32: 70000, C.INT32: -70000,
            C.FLOAT32: 1.5, C.BOOL: 1, C.UINT64: 2**40, C.INT64: -(2**40), C.FLOAT64: -2.25}
    for t, v in vals.items():
        kvs.append(C.kv(f"s.{t}", t, v))
        kvs.append(C.kv(f"a.{t}", C.ARRAY, [v, v, 0], elem_type=t))
    kvs.append(C.kv("s.str", C.STRING, "héllo"))
    kvs.append(C.kv("a.str", C.ARRAY, ["a", "", "ü"], elem_type=C.STRING))
    kvs.append(C.kv("a.empty", C.ARRAY, [], elem_type=C.INT32))
    return C.build(kvs, [C.tensor("t0", (4, 2), C.F32), C.tensor("t1", (32,), C.Q8_0)])


def every_tensor_type():
    ts = []
    for qt, (bs, _) in sorted(GGML_QUANT_SIZES.items(), key=lambda x: int(x[0])):
        ts.append(C.tensor(f"t.{qt.name}", (bs,), int(qt)))
    return C.build([C.kv("general.alignment", C.UINT32, 64)], ts)


def vocab_only():
    toks = [f"tok{i}" for i in range(20)]
    return C.build([C.kv("general.architecture", C.STRING, "qwen2"),
                    C.kv("tokenizer.ggml.tokens", C.ARRAY, toks, elem_type=C.STRING),
                    C.kv("tokenizer.ggml.scores", C.ARRAY, list(np.arange(20.0)), elem_type=C.FLOAT32),
                    C.kv("tokenizer.ggml.token_type", C.ARRAY, [1] * 20, elem_type=C.INT32)], [])


def main():
    os.makedirs(OUT, exist_ok=True)
    seeds = {
        "every_value_type.gguf": every_value_type(),
        "every_tensor_type.gguf": every_tensor_type(),
        "vocab_only.gguf": vocab_only(),
        "minimal_v2.gguf": C.minimal_valid(version=2),
        "minimal_align8.gguf": C.build([C.kv("general.alignment", C.UINT32, 8)],
                                       [C.tensor("x", (3,), C.F32), C.tensor("y", (5,), C.F16)]),
    }
    for name, b in seeds.items():
        b.write(os.path.join(OUT, name))
        print(f"{name}: {len(b.data)} bytes")


if __name__ == "__main__":
    main()
