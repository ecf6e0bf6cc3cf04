#!/usr/bin/env python3
"""Run llama.cpp itself on the MoE golden models and compare its logits with HF (the goldens) and
with the float64 NumPy forward under both YaRN roundings: the third oracle, and the proof that the
files load in llama.cpp.

    python tools/check_moe_llama_cpp.py --src LLAMA_CPP_SOURCE --lib DIR_WITH_LIBLLAMA_SO

(build llama.cpp with -DBUILD_SHARED_LIBS=ON; CPU is enough). tools/llama_cpp/llama_logits.c is
compiled against it. Besides the golden models, "gpt-oss-f32x" is the gpt-oss golden spec with
float32 experts: llama.cpp multiplies MXFP4 (and Q8_0) weights with activations quantized to Q8_0
on the CPU (NMSE ~1e-4 of noise), float32 weights exactly, so that model shows the conventions.
Measured (llama.cpp 0c1e570, October 2026): qwen3moe 4.1e-13 vs HF; gpt-oss-f32x 1.5e-12 vs the
NumPy forward with ggml's rounded YaRN and 1.6e-4 with HF's (the YaRN rounding is the only
difference); gpt-oss (MXFP4) 5.7e-4, qwen3moe-q8_0 2.4e-4 (activation quantization).
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from orc import synth_moe  # noqa: E402
import numpy_moe  # noqa: E402


def build(src, lib, out):
    exe = os.path.join(out, "llama_logits")
    cmd = [os.environ.get("CC", "cc"), "-O2", "-o", exe, os.path.join(ROOT, "tools", "llama_cpp", "llama_logits.c"),
           f"-I{src}/include", f"-I{src}/ggml/include", f"-L{lib}", "-lllama", f"-Wl,-rpath,{lib}"]
    subprocess.run(cmd, check=True)
    return exe


def llama_logits(exe, path, ids, tmp):
    ids_path, out_path = os.path.join(tmp, "ids.bin"), os.path.join(tmp, "out.bin")
    np.asarray(ids, np.int32).tofile(ids_path)
    r = subprocess.run([exe, path, ids_path, out_path], capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"llama.cpp failed on {path} (exit {r.returncode}):\n{r.stderr[-3000:]}")
    return np.fromfile(out_path, np.float32).reshape(len(ids), -1)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", required=True, help="llama.cpp source tree (include/, ggml/include/)")
    ap.add_argument("--lib", required=True, help="folder holding libllama.so")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        exe = build(args.src, args.lib, tmp)
        specs = dict(synth_moe.GOLDEN_SPECS, **{"gpt-oss-f32x": synth_moe.spec("gpt-oss", expert_type="F32")})
        for name, spec in specs.items():
            path = synth_moe.make_model(os.path.join(tmp, name + ".gguf"), spec)
            ids = synth_moe.golden_ids(spec)
            got = llama_logits(exe, path, ids, tmp)
            ref = numpy_moe.MoeModel(path)
            row = {"numpy (HF YaRN)": numpy_moe.nmse(got, ref.forward(ids, yarn="hf")[0])}
            if ref.yarn:
                row["numpy (ggml YaRN)"] = numpy_moe.nmse(got, ref.forward(ids, yarn="ggml")[0])
            golden = os.path.join(ROOT, "tests", "golden", "moe", name + ".npz")
            if os.path.exists(golden):
                g = np.load(golden)
                row["HF golden"] = numpy_moe.nmse(got, g["logits"])
                row["argmax = HF"] = float(np.mean(got.argmax(-1) == g["logits"].argmax(-1)))
            print(f"{name:14s} llama.cpp logits NMSE: " + ", ".join(
                f"{k} {v:.2e}" if "argmax" not in k else f"{k} {v:.3f}" for k, v in row.items()))


if __name__ == "__main__":
    main()
