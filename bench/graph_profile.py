"""What each kernel of a graph-replayed decode step costs inside the graph: the step is timed with
one kernel launched twice (ORC_PROFILE_DUP, runtime/launch.cuh) against the step as it is, and
the difference is that kernel's share, launch and overlap with its neighbours included. Each
kernel alone under Nsight Compute (bench/ncu_decode.py) does not say this: the kernels' alone
times summed differ from the graph's step, and by a different amount for each tool.

    python bench/graph_profile.py [--dir /tmp/orc-models] [--models qwen3-30b-a3b,llama8b-q4_k]
                                  [--prompt 8] [--steps 64] [--reps 3] [--rounds 3]

One process a model (one load): it lists the step's launches (one eager step under
ORC_PROFILE_DUP=??), then times the plain step and each kernel doubled, interleaved --rounds
times, each sample a fresh session (a graph recorded under that setting). Prints a markdown
table a model: kernel, launches a step, the step's ms with it doubled, the added us a step and
a launch, and their sum against the plain step. Timing only: the doubled steps compute wrong
values (in-place updates run twice), which nobody reads.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

CHILD = r"""
import json, os, sys
import numpy as np
import orc
from decode_ab import time_steps
path, n_prompt, steps, reps, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
m = orc.Model(path, device="cuda", weights="quantized")
rng = np.random.default_rng(0)
prompt = [int(t) for t in rng.integers(0, m.config["n_vocab"], n_prompt)]

s = orc.Session(m, n_ctx=n_prompt + 8)
tok = s.forward(prompt, "argmax")
sys.stderr.write("@@step\n"); sys.stderr.flush()
os.environ["ORC_PROFILE_DUP"] = "??"
tok = s.forward([tok], "argmax")  # the first one-token step runs eagerly: every launch named
os.environ["ORC_PROFILE_DUP"] = "?"
sys.stderr.write("@@end\n"); sys.stderr.flush()
s.close()
names = json.loads(sys.stdin.readline())  # the parent reads the launches and sends the kernels

out = {"": []}
out.update({n: [] for n in names})
for _ in range(rounds):
    for key in out:
        os.environ["ORC_PROFILE_DUP"] = "=" + key if key else "?"  # each session's graph records under it
        out[key] += [time_steps(m, prompt, steps) for _ in range(reps)]
m.close()
print(json.dumps(out), flush=True)
"""


def demangle(names):
    tool = shutil.which("c++filt")
    if not tool:
        return {n: n for n in names}
    r = subprocess.run([tool], input="\n".join(names), capture_output=True, text=True)
    out = r.stdout.splitlines()
    return dict(zip(names, out)) if r.returncode == 0 and len(out) == len(names) else {n: n for n in names}


def short(name):
    """The kernel and its template arguments, without the parameter list."""
    name = name.replace("(anonymous namespace)::", "")
    depth = 0
    for i, c in enumerate(name):
        depth += c == "<"
        depth -= c == ">"
        if c == "(" and depth == 0:
            return name[:i]
    return name


def profile(path, a, env):
    p = subprocess.Popen([sys.executable, "-c", CHILD, path, str(a.prompt), str(a.steps), str(a.reps),
                          str(a.rounds)], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    launches, inside = [], False
    for line in p.stderr:
        if line.startswith("@@step"):
            inside = True
        elif line.startswith("@@end"):
            break
        elif inside and line.startswith("orc: ORC_PROFILE_DUP launch: "):
            launches.append(line.split(": ", 2)[2].strip())
    kernels = list(dict.fromkeys(launches))
    p.stdin.write(json.dumps(kernels) + "\n")
    p.stdin.flush()
    out, err = p.communicate(timeout=3000)
    if p.returncode != 0 or not out.strip():
        raise RuntimeError((err.strip().splitlines() or ["(no message)"])[-1])
    return launches, kernels, json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default="/tmp/orc-models")
    ap.add_argument("--models", default="qwen3-30b-a3b,llama8b-q4_k")
    ap.add_argument("--prompt", type=int, default=8, help="prompt tokens before the timed steps")
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3, help="timed runs a setting and round")
    ap.add_argument("--rounds", type=int, default=3, help="passes over the settings, interleaved")
    a = ap.parse_args()
    if min(a.prompt, a.steps, a.reps, a.rounds) < 1:
        ap.error("--prompt, --steps, --reps and --rounds must be >= 1")
    sys.path.insert(0, HERE)
    import bench_vs_llama  # noqa: PLC0415 - the model writers
    from decode_ab import child_env  # noqa: PLC0415

    env = child_env(["ORC_PROFILE_DUP=?"])
    for name in a.models.split(","):
        path = bench_vs_llama.prepare(a.dir, name)
        try:
            launches, kernels, t = profile(path, a, env)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            print(f"{name}: error: {e}", flush=True)
            continue
        pretty = demangle(kernels)
        base = statistics.median(t[""])
        spread = (max(t[""]) - min(t[""])) / base
        print(f"\n{name}: {len(launches)} launches a step, {base:.3f} ms a step "
              f"(spread {100 * spread:.1f}% over {len(t[''])} samples)\n")
        print("| kernel | launches | ms, doubled | added us a step | us a launch |\n|---|---:|---:|---:|---:|")
        total = 0.0
        rows = []
        for k in kernels:
            ms = statistics.median(t[k])
            add = (ms - base) * 1e3
            total += add
            rows.append((add, k, ms))
        for add, k, ms in sorted(rows, reverse=True):
            n = launches.count(k)
            print(f"| `{short(pretty[k])}` | {n} | {ms:.3f} | {add:.1f} | {add / n:.2f} |")
        print(f"\nSum of the added times: {total:.0f} us against a {base * 1e3:.0f} us step "
              f"({100 * total / (base * 1e3):.0f}%).", flush=True)


if __name__ == "__main__":
    main()
