"""Decode step times under launch switches, each setting in its own process (orc reads its
switches once a process): graph-replayed one-token steps after an 8-token and a 512-token prompt.

    python bench/decode_ab.py [--dir /tmp/orc-models] [--models qwen05-q4_k_m,llama8b-q4_k]
                              [--env ORC_ATTN_SPLIT_KEYS=128 --env ORC_ATTN_SPLIT_KEYS=64 ...]
                              [--steps 64] [--reps 5] [--rounds 1] [--device cuda]

Model files are bench_vs_llama.py's (written unless present). Each process times --reps runs of
--steps steps per prompt length; with --rounds R the settings' processes run R times, interleaved
(A B A B ...), so that a drift of the card's clocks or temperature falls on every setting alike.
Prints one markdown table: model, setting, the median ms per step at each prompt length and the
spread of its samples ((max - min) / median), which says how large a difference is noise.
Timing only: the switches never change what is computed beyond float32 rounding (the GPU tests
check that).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

CHILD = r"""
import json, sys
import numpy as np
import orc
from decode_ab import time_steps
path, steps, reps, device = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
m = orc.Model(path, device=device, weights="quantized")
rng = np.random.default_rng(0)
prompt = [int(t) for t in rng.integers(0, m.config["n_vocab"], 512)]
# each rep from the same prompt, so every sample times the same positions
out = {n: [time_steps(m, prompt[:n], steps) for _ in range(reps)] for n in (8, 512)}
m.close()
print(json.dumps(out))
"""


def time_steps(m, prompt, steps):
    """ms a greedy one-token step after `prompt` in a fresh session: two untimed steps (the second
    recorded as a graph where the device records them), then `steps` timed, each greedy choice
    made on the device. bench/graph_profile.py times its steps with it too."""
    import time  # noqa: PLC0415
    import orc  # noqa: PLC0415

    s = orc.Session(m, n_ctx=len(prompt) + steps + 8)
    try:
        tok = s.forward(prompt, "argmax")
        s.forward([tok], "argmax")
        s.forward([tok], "argmax")  # recorded
        t0 = time.perf_counter()
        for _ in range(steps):
            tok = s.forward([tok], "argmax")
        return (time.perf_counter() - t0) * 1e3 / steps
    finally:
        s.close()


def child_env(extra=()):
    """The environment of a timing process: orc and bench/ importable, plus NAME=VALUE pairs."""
    root = os.path.dirname(HERE)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, HERE, os.environ.get("PYTHONPATH", "")]))
    for kv in extra:
        k, v = kv.split("=", 1)
        env[k] = v
    return env


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default="/tmp/orc-models")
    ap.add_argument("--models", default="qwen05-q4_k_m,llama8b-q4_k")
    ap.add_argument("--env", action="append", default=[], help="NAME=VALUE[,NAME=VALUE]; repeat per setting")
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--device", default="cuda", help="cuda (the fast path's graphs) or cpu")
    ap.add_argument("--reps", type=int, default=5, help="timed runs of --steps per process and prompt length")
    ap.add_argument("--rounds", type=int, default=1, help="processes per setting, the settings interleaved")
    a = ap.parse_args()
    if a.steps < 1 or a.reps < 1 or a.rounds < 1:
        ap.error("--steps, --reps and --rounds must be >= 1")
    sys.path.insert(0, HERE)
    import bench_vs_llama  # noqa: PLC0415 - the model writers

    os.makedirs(a.dir, exist_ok=True)
    settings = a.env or [""]
    rows = []
    for name in a.models.split(","):
        path = bench_vs_llama.prepare(a.dir, name)  # waits for a --prepare-only run writing it
        samples = {setting: {"8": [], "512": []} for setting in settings}
        errors = {}
        for _ in range(a.rounds):
            for setting in settings:
                if setting in errors:
                    continue
                env = child_env(filter(None, setting.split(",")))
                r = subprocess.run([sys.executable, "-c", CHILD, path, str(a.steps), str(a.reps), a.device], env=env,
                                   capture_output=True, text=True, timeout=600)
                if r.returncode != 0:
                    errors[setting] = (r.stderr.strip().splitlines() or ["(no message)"])[-1]
                    print((name, setting or "default", "error", errors[setting]), flush=True)
                    continue
                t = json.loads(r.stdout.strip().splitlines()[-1])
                for n in ("8", "512"):
                    samples[setting][n] += t[n]
                print((name, setting or "default", *(f"{statistics.median(t[n]):.3f}" for n in ("8", "512"))),
                      flush=True)
        for setting in settings:
            if setting in errors:
                rows.append((name, setting or "default", "error: " + errors[setting], ""))
                continue
            cells = []
            for n in ("8", "512"):
                v = samples[setting][n]
                med = statistics.median(v)
                cells.append(f"{med:.3f} (spread {100 * (max(v) - min(v)) / med:.1f}%)")
            rows.append((name, setting or "default", *cells))
    print("\n| model | setting | ms/step, 8-token prompt | ms/step, 512-token prompt |\n|---|---|---:|---:|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} |")


if __name__ == "__main__":
    main()
