"""One GEMV shape's launches, for a profiler (tools/device_profile.sh with NCU=1 runs it under ncu).

    python bench/ncu_gemv.py [--rows 14336] [--cols 4096] [--type Q4_K] [--n 1] [--form int16]

--form: the one-token GEMV's integer form (int16 x; decode's default where the type has it) or float.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_kernels  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--rows", type=int, default=14336)
p.add_argument("--cols", type=int, default=4096)
p.add_argument("--type", default="Q4_K")
p.add_argument("--n", type=int, default=1)
p.add_argument("--form", default="int16", choices=("int16", "float"))
a = p.parse_args()
form = a.form if a.form in bench_kernels.forms(a.type, a.n) else "float"
t, gbs, _ = bench_kernels.bench_gemv(a.rows, a.cols, a.type, a.n, 4300.0, np.random.default_rng(0), 1, form=form)
print(f"{a.rows}x{a.cols} {a.type} n={a.n} {form}: {t['ms_median'] * 1e3:.1f} us, {gbs:.0f} GB/s")
