"""orc beside llama.cpp on the same GGUF files, in the same process run (issue 14's method).

    python bench/bench_vs_llama.py --dir /tmp/orc-models --llama-bench /tmp/llama/build/bin/llama-bench \\
        [--models qwen05-f16,qwen05-q8_0,qwen05-q4_k_m,llama8b-q4_k] [--weights quantized,dequantized] [--reps 5]

Models (random weights of true shapes, written here unless present; llama.cpp reads them too):
  qwen05-*     Qwen2.5-0.5B shape (bench/bench_model.py's writer): F16, Q8_0, Q4_K_M mix
  llama8b-q4_k Llama-3-8B shape, every matrix Q4_K (4.6 GB)
  llama70b-q4_k Llama-3-70B shape, every matrix Q4_K (~39 GB; only with enough disk)
  gpt-oss-20b, qwen3-30b-a3b  the MoE shapes of orc.synth_moe.BENCH_SPECS (MXFP4 / Q4_K experts)
For each: llama-bench -ngl 99 -p 512 -n 128 -r REPS (median of its samples), and orc's prefill of
512 tokens (fresh session, its greedy choice) and decode of 128 greedy steps after a 512-token prompt
(each greedy choice made on the device: logits="argmax", 16 bytes copied back a step) and, as
llama-bench's tg128 does, of 128 steps from an empty cache (the ratio column uses this one), median
of REPS, for each --weights mode; and the bytes orc holds on the device for weights over the file size. Floors: decode = the bytes the step must read (the stored
matrices for weights="quantized", float16 copies for "dequantized") over the copy bandwidth
measured here; prefill = 2 x parameters x 512 flops over the float16 matrix rate measured here.
A --weights entry may name orc switches after "@" (e.g. quantized@ORC_GEMV_X16=1, or
quantized@ORC_GEMV_X16=1@ORC_PDL=0): that mode runs in its own process with them set (orc reads
its switches once a process). The last lines are a markdown table; --json writes every number.
"""
from __future__ import annotations

import argparse
import fcntl
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import orc  # noqa: E402
from orc import synth  # noqa: E402

import bench_model  # noqa: E402  (the 0.5B writer and the ceilings)

PROMPT, GEN = 512, 128


MODELS = {
    "qwen05-f16": lambda p: bench_model.make_model(p, "F16")[0],
    "qwen05-q8_0": lambda p: bench_model.make_model(p, "Q8_0")[0],
    "qwen05-q4_k_m": lambda p: bench_model.make_model(p, "Q4_K_M")[0],
    "llama8b-q4_k": lambda p: synth.random_llama_model(p, 4096, 32, 32, 8, 14336, 128256),
    "llama70b-q4_k": lambda p: synth.random_llama_model(p, 8192, 80, 64, 8, 28672, 128256),
    "gpt-oss-20b": lambda p: _moe(p, "gpt-oss-20b"),
    "qwen3-30b-a3b": lambda p: _moe(p, "qwen3-30b-a3b"),
}


def _moe(path, name):
    from orc import synth_moe

    return synth_moe.write_bench_model(name, path, tile=True)


def weight_bytes(path):
    """(bytes of the matrices a decode step reads as stored, parameters of those matrices).
    MoE expert tensors count the used share (expert_used_count / expert_count): a token reads
    only its experts' blocks, and its products are the active parameters' flops."""
    g = orc.GGUFFile(path)
    md = g.metadata
    arch = md["general.architecture"]
    used, count = md.get(f"{arch}.expert_used_count"), md.get(f"{arch}.expert_count")
    stored = params = 0.0
    tied = not any(t.name == "output.weight" for t in g.tensors)
    for t in g.tensors:
        if len(t.shape) < 2 or (t.name == "token_embd.weight" and not tied):
            continue  # norms; the embedding is a lookup unless it is also the output
        share = used / count if "_exps" in t.name and used and count else 1.0
        stored += t.nbytes * share
        params += int(np.prod(t.shape)) * share
    g.close()
    return int(stored), int(params)


def llama_bench(exe, path, reps):
    cmd = [exe, "-m", path, "-ngl", "99", "-p", str(PROMPT), "-n", str(GEN), "-r", str(reps), "-o", "json"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        return {"error": (r.stderr or r.stdout)[-400:]}
    out = {}
    for row in json.loads(r.stdout):
        key = "pp" if row.get("n_prompt") else "tg"
        samples = row.get("samples_ts") or [row["avg_ts"]]
        out[key] = statistics.median(samples)
        out[key + "_samples"] = samples
    return out


def greedy_rate(s, tok, steps):
    """Tokens/s of `steps` greedy one-token steps from token `tok`, each choice made on the device
    (logits="argmax": 16 bytes copied back a step, as Session.generate's greedy steps)."""
    t0 = time.perf_counter()
    for _ in range(steps):
        tok = s.forward([tok], "argmax")
    return steps / (time.perf_counter() - t0)


def orc_bench(path, weights, reps):
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    m = orc.Model(path, device="cuda", weights=weights)
    load = time.perf_counter() - t0
    V = m.config["n_vocab"]
    prompt = [int(t) for t in rng.integers(0, V, PROMPT)]
    pp, tg, tg0, tg_eager = [], [], [], None
    for r in range(reps):
        s = orc.Session(m, n_ctx=PROMPT + GEN + 8)
        # Warm-up, as llama-bench's: a short prompt, then two one-token steps (the first runs
        # eagerly, the second records the session's graph, which later steps replay). The
        # recording is once a session and stays through reset(), like llama.cpp's CUDA graph.
        tok = s.forward(prompt[:8], "argmax")
        tok = s.forward([s.forward([tok], "argmax")], "argmax")
        s.reset()
        t0 = time.perf_counter()
        tok = s.forward(prompt, "argmax")
        pp.append(PROMPT / (time.perf_counter() - t0))
        tg.append(greedy_rate(s, tok, GEN))
        path_used = s.last_path
        # llama-bench's tg128 workload: 128 steps from an empty cache (after its warm-up).
        s.reset()
        tg0.append(greedy_rate(s, prompt[0], GEN))
        s.close()
        if r == 0:
            s = orc.Session(m, n_ctx=PROMPT + GEN + 8, graphs=False)
            tg_eager = greedy_rate(s, s.forward(prompt, "argmax"), GEN // 2)
            s.close()
    mem = m.memory()
    m.close()
    return {"load_s": load, "pp": statistics.median(pp), "pp_samples": pp, "tg": statistics.median(tg),
            "tg_samples": tg, "tg0": statistics.median(tg0), "tg0_samples": tg0, "tg_eager": tg_eager, "decode_path": path_used, "weights_bytes": mem["weights"],
            "quantized_bytes": mem["quantized"]}


def orc_bench_mode(path, mode, reps):
    """orc_bench for a --weights entry: "quantized", or "quantized@ENV=V@..." in a child process."""
    weights, *envs = mode.split("@")
    if not envs:
        return orc_bench(path, weights, reps)
    env = dict(os.environ, **dict(e.split("=", 1) for e in envs))
    r = subprocess.run([sys.executable, os.path.abspath(__file__), "--orc-child", path, weights, str(reps)],
                       env=env, capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        raise RuntimeError(f"child for {mode}: {r.stderr[-500:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def prepare(directory, name):
    """The model file `name` under directory, written unless present (under a temporary name first,
    so a file that exists is whole; a concurrent --prepare-only run is waited for)."""
    path = os.path.join(directory, name + ".gguf")
    part = path + ".part"
    with open(path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one writer; the others wait here, then find the file
        if not os.path.exists(path):
            t0 = time.perf_counter()
            MODELS[name](part)
            os.rename(part, path)
            print(f"wrote {path} ({os.path.getsize(path) / 2**30:.2f} GiB) in {time.perf_counter() - t0:.0f} s", flush=True)
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default="/tmp/orc-models")
    ap.add_argument("--llama-bench", default="/tmp/llama/build/bin/llama-bench")
    ap.add_argument("--models", default="qwen05-f16,qwen05-q8_0,qwen05-q4_k_m,llama8b-q4_k")
    ap.add_argument("--weights", default="quantized,dequantized")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--json")
    ap.add_argument("--prepare-only", action="store_true", help="write the model files and stop (to overlap a build)")
    ap.add_argument("--orc-child", nargs=3, metavar=("PATH", "WEIGHTS", "REPS"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.orc_child:  # one orc_bench in this process (its switches come from the environment)
        print(json.dumps(orc_bench(a.orc_child[0], a.orc_child[1], int(a.orc_child[2]))))
        return
    os.makedirs(a.dir, exist_ok=True)
    if a.prepare_only:
        for name in a.models.split(","):
            prepare(a.dir, name)
        return
    bw, tf = bench_model.ceilings()
    rd = bench_model.read_ceiling()
    print(f"ceilings here: copy {bw:.0f} GB/s (read + written), float16 matmul {tf:.0f} TFLOP/s; "
          f"a read-only pass (a sum) {rd:.0f} GB/s" if bw and rd else "ceilings: no torch.cuda here", flush=True)
    results = []
    for name in a.models.split(","):
        path = prepare(a.dir, name)
        stored, params = weight_bytes(path)
        ll = llama_bench(a.llama_bench, path, a.reps) if os.path.exists(a.llama_bench) else {"error": "no llama-bench"}
        print(f"{name}: llama.cpp {ll}", flush=True)
        for w in a.weights.split(","):
            try:
                o = orc_bench_mode(path, w, a.reps)
            except Exception as e:  # noqa: BLE001 - reported in the table
                o = {"error": f"{type(e).__name__}: {e}"}
            read = stored if w.split("@")[0] == "quantized" else 2 * params
            # The copy rate counts bytes read plus bytes written: it is the memory's whole rate, which
            # a step that only reads has to itself (until run 30 this divided it by two: floors half
            # of the true ones; docs/perf.md says so at the top).
            floor_tg = bw * 1e9 / read if bw else None
            floor_pp = tf * 1e12 / (2 * params) if tf else None
            results.append({"model": name, "weights": w, "orc": o, "llama": ll, "bytes_per_token": read,
                            "file_bytes": os.path.getsize(path),
                            "floor_tg": floor_tg, "floor_pp": floor_pp})
            print(f"{name} {w}: orc {o}", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"ceilings": {"copy_gbs": bw, "read_gbs": rd, "f16_tflops": tf}, "results": results}, f, indent=1)
    print()
    print("tg128: orc from an empty cache, as llama-bench runs it (after a 512-token prompt; eager after 512);"
          " device weights: what orc holds on the card over the file's size")
    print("| model | orc weights | orc pp512 | llama pp512 | x | orc tg128 (after 512; eager) | llama tg128 | x |"
          " tg floor | orc/floor | device weights / file |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        o, ll = r["orc"], r["llama"]
        if "error" in o:
            print(f"| {r['model']} | {r['weights']} | error: {o['error'][:60]} | | | | | | | |")
            continue
        lpp, ltg = ll.get("pp"), ll.get("tg")
        f = lambda v: f"{v:,.0f}" if v else "-"  # noqa: E731
        x = lambda a_, b_: f"{a_ / b_:.2f}" if a_ and b_ else "-"  # noqa: E731
        held = (o["weights_bytes"] + o["quantized_bytes"]) / r["file_bytes"]
        print(f"| {r['model']} | {r['weights']} | {f(o['pp'])} | {f(lpp)} | {x(o['pp'], lpp)} | "
              f"{f(o['tg0'])} ({f(o['tg'])}; {f(o['tg_eager'])}) | {f(ltg)} | {x(o['tg0'], ltg)} | "
              f"{f(r['floor_tg'])} | {x(o['tg0'], r['floor_tg'])} | {held:.3f} |")


if __name__ == "__main__":
    main()
