"""Dequantization throughput, GPU and CPU, as a table per type.

GPU (default; needs a CUDA build and a GPU):
    python bench/bench_dequant.py [--mib 256] [--iters 10] [--types Q4_K,Q6_K] [--dtypes float16,float32]
                                  [--variants]
For each type, at least --mib MiB of quantized blocks (random bytes, fp16 scales
finite) are dequantized on the device; bandwidth = (bytes read + bytes written) / time,
compared with a cudaMemcpy device-to-device that moves the same number of bytes
(copy bandwidth = 2 * copied bytes / time), measured in the same run.
--variants adds comparison columns, timed in the same run on the same data: "chunked"
(every tile on the kernels' chunk-by-chunk path: the kernels before the whole-tile
path) and, for float32, "direct" (whole-tile path, each lane storing its chunk as two
16-byte halves: half-sectors per store instruction). docs/perf_dequant.md explains.

CPU:
    python bench/bench_dequant.py --cpu [--cpu-mib 16]
orc.dequantize on the host (all cores) into a reused output array (out=), bandwidth =
(bytes read + written) / wall time, and the same per CPU-second (a measure of the work
that holds on a shared machine), best of --iters runs.

--markdown prints the tables as Markdown (for docs/perf_dequant.md).
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import orc  # noqa: E402

# (block elements, block bytes, byte offsets of fp16 scale fields) per type; IQ1_M's
# scale is split over nibbles (kept random but its words are set to a finite scale).
LAYOUT = {
    "Q4_0": (32, 18, [0]), "Q4_1": (32, 20, [0, 2]), "Q5_0": (32, 22, [0]), "Q5_1": (32, 24, [0, 2]),
    "Q8_0": (32, 34, [0]), "Q2_K": (256, 84, [80, 82]), "Q3_K": (256, 110, [108]), "Q4_K": (256, 144, [0, 2]),
    "Q5_K": (256, 176, [0, 2]), "Q6_K": (256, 210, [208]), "IQ2_XXS": (256, 66, [0]), "IQ2_XS": (256, 74, [0]),
    "IQ2_S": (256, 82, [0]), "IQ3_XXS": (256, 98, [0]), "IQ3_S": (256, 110, [0]), "IQ1_S": (256, 50, [0]),
    "IQ1_M": (256, 56, "split"), "IQ4_NL": (32, 18, [0]), "IQ4_XS": (256, 136, [0]), "TQ1_0": (256, 54, [52]),
    "TQ2_0": (256, 66, [64]), "MXFP4": (32, 17, []), "NVFP4": (64, 36, []), "Q1_0": (128, 18, [0]),
    "F32": (1, 4, None), "F16": (1, 2, None), "BF16": (1, 2, None),
}


def make_data(name, min_bytes, rng):
    """>= min_bytes of `name` blocks: random quants, finite fp16 scales. Returns (data, n)."""
    bs, ts, fields = LAYOUT[name]
    nblocks = -(-min_bytes // ts)
    nblocks = -(-nblocks // 64) * 64
    n = nblocks * bs
    if fields is None:  # float types: finite values around 1
        vals = rng.standard_normal(n, dtype=np.float32)
        if name == "F32":
            return vals.view(np.uint8), n
        if name == "F16":
            return vals.astype(np.float16).view(np.uint8), n
        return (vals.view(np.uint32) >> 16).astype(np.uint16).view(np.uint8), n
    blocks = rng.integers(0, 256, size=(nblocks, ts), dtype=np.uint8)
    scale = np.float16(0.01).view(np.uint16)
    if fields == "split":
        words = blocks[:, 48:56].copy().view(np.uint16)
        for k in range(4):
            words[:, k] = (words[:, k] & 0x0FFF) | (((int(scale) >> (4 * k)) & 0xF) << 12)
        blocks[:, 48:56] = words.view(np.uint8)
    for off in fields if isinstance(fields, list) else []:
        blocks[:, off] = scale & 0xFF
        blocks[:, off + 1] = scale >> 8
    if name == "MXFP4":
        blocks[:, 0] = rng.integers(110, 130, size=nblocks)
    return blocks.reshape(-1), n


def fmt_table(headers, rows, markdown):
    if markdown:
        out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
        return "\n".join(out)
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join(str(h).rjust(w) for h, w in zip(headers, widths))
    return "\n".join([line, "-" * len(line)] + ["  ".join(str(c).rjust(w) for c, w in zip(r, widths)) for r in rows])


def time_gpu(data, name, n, dt, iters, variant=None):
    """(GB/s, best GB/s, copy GB/s, timing dict) of one kernel variant (cuda/dequant/dequant.cu reads
    ORC_DQ_VARIANT in its timing entry point only)."""
    if variant:
        os.environ["ORC_DQ_VARIANT"] = variant
    try:
        t = orc._orc._cuda_dequant_bench(data, name, n, dt, iters)
    finally:
        os.environ.pop("ORC_DQ_VARIANT", None)
    moved = t["src_bytes"] + t["dst_bytes"]
    copy = 2 * t["copy_bytes"] / (t["copy_ms_mean"] * 1e-3) / 1e9
    return moved / (t["kernel_ms_mean"] * 1e-3) / 1e9, moved / (t["kernel_ms_min"] * 1e-3) / 1e9, copy, t


def bench_gpu(types, dtypes, mib, iters, markdown, variants=False):
    if not orc.cuda_available():
        sys.exit(f"no usable GPU: {orc.cuda_status()['reason']}")
    dev = orc.devices()[0]
    rng = np.random.default_rng(0)
    rows, worst = [], []
    for name in types:
        data, n = make_data(name, mib << 20, rng)
        for dt in dtypes:
            gbs, gbs_best, copy, t = time_gpu(data, name, n, dt, iters)
            pct = 100 * gbs / copy
            worst.append((pct, name, dt))
            rows.append([name, dt, f"{t['src_bytes'] / 2**20:.0f}", f"{t['dst_bytes'] / 2**20:.0f}",
                         f"{t['kernel_ms_mean']:.3f}", f"{gbs:.0f}", f"{gbs_best:.0f}", f"{copy:.0f}", f"{pct:.1f}"])
            extra = ""
            if variants:
                block = name not in ("F32", "F16", "BF16")
                for v in ("chunked", "direct"):
                    if block and (v == "chunked" or dt == "float32"):
                        g, _, c, _ = time_gpu(data, name, n, dt, iters, v)
                        rows[-1].append(f"{100 * g / c:.1f}")
                        extra += f"  {v} {100 * g / c:5.1f}%"
                    else:
                        rows[-1].append("-")
            print(f"  {name:8s} {dt:9s} {gbs:7.0f} GB/s  ({pct:5.1f}% of copy {copy:.0f} GB/s){extra}",
                  file=sys.stderr, flush=True)
        del data
    print(f"\nGPU dequantization: {dev.get('name', '?')}, {iters} launches each after a warm-up; "
          f"GB/s = (read + written) / mean time; copy = cudaMemcpy D2D moving the same bytes\n")
    headers = ["type", "dtype", "MiB in", "MiB out", "ms", "GB/s", "GB/s best", "copy GB/s", "% of copy"]
    if variants:
        headers += ["% chunked", "% direct"]
    print(fmt_table(headers, rows, markdown))
    lo = min(worst)
    print(f"\nlowest: {lo[1]} -> {lo[2]} at {lo[0]:.1f}% of copy bandwidth "
          f"({'meets' if lo[0] >= 80 else 'BELOW'} the 80% target)")


def bench_cpu(types, dtypes, mib, iters, markdown):
    rng = np.random.default_rng(0)
    rows = []
    for name in types:
        data, n = make_data(name, mib << 20, rng)
        row = [name, f"{data.nbytes / 2**20:.0f}"]
        for dt in dtypes:
            out = orc.dequantize(data, name, (n,), dtype=dt)  # warm-up; the output is reused (no page faults)
            best, best_cpu = float("inf"), float("inf")
            for _ in range(iters):
                t0, c0 = time.perf_counter(), time.process_time()
                orc.dequantize(data, name, (n,), dtype=dt, out=out)
                best = min(best, time.perf_counter() - t0)
                best_cpu = min(best_cpu, time.process_time() - c0)
            moved = data.nbytes + out.nbytes
            row += [f"{moved / best / 1e9:.2f}", f"{moved / best_cpu / 1e9:.2f}", f"{n / best_cpu / 1e9:.3f}"]
        rows.append(row)
        print(f"  {name:8s} " + "  ".join(row[2:]), file=sys.stderr, flush=True)
    headers = ["type", "MiB in"]
    for dt in dtypes:
        headers += [f"{dt} GB/s", f"{dt} GB/s per core", f"{dt} Gelem/s per core"]
    print(f"\nCPU dequantization: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; best of "
          f"{iters}; GB/s = (read + written) / wall time, all threads; per core = / CPU time of all threads\n")
    print(fmt_table(headers, rows, markdown))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cpu", action="store_true", help="benchmark the CPU path instead of the GPU")
    p.add_argument("--types", default=",".join(orc.QUANT_TYPES), help="comma-separated ggml type names")
    p.add_argument("--dtypes", default=None, help="output dtypes (GPU default float16,float32; CPU float32,float16)")
    p.add_argument("--mib", type=int, default=256, help="MiB of quantized data per type on the GPU (default 256)")
    p.add_argument("--cpu-mib", type=int, default=16, help="MiB of quantized data per type on the CPU (default 16)")
    p.add_argument("--iters", type=int, default=None, help="timed runs (GPU default 10, CPU 3)")
    p.add_argument("--markdown", action="store_true")
    p.add_argument("--variants", action="store_true",
                   help="GPU: also time the chunk-by-chunk path and (float32) direct stores, as % of copy")
    a = p.parse_args(argv)
    types = [t.strip().upper() for t in a.types.split(",") if t.strip()]
    unknown = [t for t in types if t not in orc.QUANT_TYPES]
    if unknown:
        p.error(f"not dequantizable by orc: {unknown}")
    dtypes = [d.strip() for d in (a.dtypes or ("float32,float16" if a.cpu else "float16,float32")).split(",")]
    if a.cpu:
        bench_cpu(types, dtypes, a.cpu_mib, a.iters or 3, a.markdown)
    else:
        bench_gpu(types, dtypes, a.mib, a.iters or 10, a.markdown, a.variants)


if __name__ == "__main__":
    main()
