#!/usr/bin/env python3
"""Instructions per chunk of the GPU dequantizers' whole-tile path, from the SASS.

    python tools/dequant_sass.py [--arch 90] [--types Q5_K,TQ1_0] [--dtypes 0,1]

Compiles cuda/dequant/dequant.cu with -DORC_DQ_COUNT_FAST (each block kernel keeps only the
whole-tile path after the tile load), disassembles it with cuobjdump, and counts the
instructions between the barrier and the exit: 4 chunks of 8 elements per thread, so
count / 4 is the cost of one chunk (the code is straight-line: every lane runs all of
it). dtype 0 = float32, 1 = float16, 2 = bfloat16. Also prints registers and spills
of the real build (ptxas -v). Needs nvcc; cuobjdump from $ORC_CUOBJDUMP, PATH,
$CUDA_HOME/bin or the triton package. No GPU needed. docs/perf_dequant.md uses it.
"""
import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cuobjdump():
    cands = [os.environ.get("ORC_CUOBJDUMP"), shutil.which("cuobjdump")]
    cands += [os.path.join(h, "bin", "cuobjdump") for h in (os.environ.get("CUDA_HOME"), "/usr/local/cuda") if h]
    try:
        import triton  # noqa: F401  (ships a cuobjdump)
        cands += glob.glob(os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump"))
    except ImportError:
        pass
    return next((c for c in cands if c and os.path.exists(c)), None)


def compile_sass(arch, extra, tmp):
    obj = os.path.join(tmp, "dequant.o")
    cmd = ["nvcc", "-c", os.path.join(ROOT, "cuda", "dequant.cu"), "-o", obj, "-std=c++17", "-DORC_HAVE_CUDA=1",
           "--expt-relaxed-constexpr", "-O3", f"-gencode=arch=compute_{arch},code=sm_{arch}", *extra]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        sys.exit(r.stderr)
    return obj, r.stderr


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="90")
    p.add_argument("--types", default=None, help="comma-separated type names (default all block types)")
    p.add_argument("--dtypes", default="0,1,2")
    a = p.parse_args()
    tool = cuobjdump()
    if not tool:
        sys.exit("cuobjdump not found (set ORC_CUOBJDUMP)")
    types = set(a.types.upper().split(",")) if a.types else None
    dts = {int(d) for d in a.dtypes.split(",")}
    with tempfile.TemporaryDirectory() as tmp:
        obj, _ = compile_sass(a.arch, ["-DORC_DQ_COUNT_FAST"], tmp)
        sass = subprocess.run([tool, "-sass", obj], capture_output=True, text=True, check=True).stdout
        _, ptxas = compile_sass(a.arch, ["--resource-usage"], tmp)
    regs, spills = {}, {}
    name = None
    for line in ptxas.splitlines():
        m = re.search(r"orc_dq_([A-Z0-9_]+)ELi(\d)", line)
        if "Compiling entry" in line or "Function properties" in line:
            name = (m.group(1), int(m.group(2))) if m else None
        elif name and "spill stores" in line:
            spills[name] = int(line.split()[4])
        elif name and "Used" in line:
            regs[name] = int(re.search(r"Used (\d+) registers", line).group(1))
    rows = []
    for f in sass.split("Function : ")[1:]:
        m = re.search(r"orc_dq_([A-Z0-9_]+)ELi(\d)", f.split("\n", 1)[0])
        if not m or (types and m.group(1) not in types) or int(m.group(2)) not in dts:
            continue
        ins = [re.sub(r"^\s+/\*[0-9a-f]+\*/\s+(@!?U?P\w+\s+)?", "", ln).split()[0]
               for ln in f.splitlines() if re.match(r"\s+/\*[0-9a-f]{4,}\*/", ln)]
        bar = next(i for i, op in enumerate(ins) if op.startswith("BAR.SYNC"))
        end = next(i for i in range(bar, len(ins)) if ins[i] == "EXIT")
        seg = Counter(op.split(".")[0] for op in ins[bar + 1:end + 1])
        key = (m.group(1), int(m.group(2)))
        rows.append((key[1], key[0], (end - bar) / 4, seg, regs.get(key), spills.get(key)))
    print(f"{'type':8s} {'dtype':8s} {'instr/chunk':>11s} {'LDS':>4s} {'LDG':>4s} {'SHFL':>4s} {'STG':>4s} "
          f"{'FFMA':>4s} {'regs':>4s} {'spill B':>7s}")
    for dt, t, per, c, r, s in sorted(rows):
        print(f"{t:8s} {['float32', 'float16', 'bfloat16'][dt]:8s} {per:11.1f} {c['LDS']:4d} {c['LDG']:4d} "
              f"{c['SHFL']:4d} {c['STG']:4d} {c['FFMA']:4d} {r or 0:4d} {s or 0:7d}")


if __name__ == "__main__":
    main()
