"""Model load, prefill and decode on a shape-true synthetic Qwen2.5-0.5B.

    python bench/bench_model.py [--types F16,Q8_0,Q4_K_M] [--device cuda] [--reps 5] [--dir /tmp/orc-bench]

Shapes: hidden 896, 24 layers, 14 heads, 2 KV heads, FFN 4864, vocabulary 151936, tied
output (as Qwen2.5-0.5B). Weight types: F16; Q8_0; and a Q4_K_M-style mix (llama.cpp falls
back to Q5_0 where a row of 896 is not a multiple of 256, keeps Q8_0 for the embedding and
Q6_K for half of ffn_down, Q4_K for the other half). Random blocks with finite scales:
numerics do not matter here, bytes and shapes do.

Reported (median of --reps): load seconds; prefill tokens/s at 512 tokens (fresh session,
logits of the last token); decode tokens/s over 128 single-token steps at batch 1 after a
512-token prompt (logits of each token copied to the host, as a sampler needs them).
Floors: bytes = every weight read once (+ the KV cache read for attention), flops = 2 per
weight per token (+ attention). The ceilings come from this machine: a device-to-device copy
and a float16 matrix product, both through PyTorch when it is installed.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import orc  # noqa: E402
from orc import synth  # noqa: E402

E, L, H, HKV, F, V, HD = 896, 24, 14, 2, 4864, 151936, 64
CTX = 512 + 128 + 8


def tensor_types(kind: str) -> dict[str, str]:
    """GGUF type of every weight for one of F16, Q8_0, Q4_K_M."""
    t = {}
    for i in range(L):
        for n in ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"]:
            name = f"blk.{i}.{n}.weight"
            if kind in ("F16", "Q8_0"):
                t[name] = kind
            elif n == "ffn_down":  # rows of 4864 = 19 x 256
                t[name] = "Q6_K" if i % 2 == 0 else "Q4_K"
            elif n == "attn_v":
                t[name] = "Q8_0"
            else:  # rows of 896: no K-quant fits
                t[name] = "Q5_0"
    t["token_embd.weight"] = "F16" if kind == "F16" else "Q8_0"
    return t


def make_model(path: str, kind: str) -> tuple[str, int]:
    rng = np.random.default_rng(0)
    types = tensor_types(kind)
    shapes = {"token_embd.weight": (V, E)}
    for i in range(L):
        p = f"blk.{i}."
        shapes.update({p + "attn_q.weight": (H * HD, E), p + "attn_k.weight": (HKV * HD, E),
                       p + "attn_v.weight": (HKV * HD, E), p + "attn_output.weight": (E, H * HD),
                       p + "ffn_gate.weight": (F, E), p + "ffn_up.weight": (F, E), p + "ffn_down.weight": (E, F)})
    tensors, nbytes = [], 0
    for name, shape in shapes.items():
        n = int(np.prod(shape))
        t = types[name]
        if t == "F16":
            data = (rng.standard_normal(n, dtype=np.float32) * 0.02).astype(np.float16).tobytes()
        else:
            data = synth.random_blocks(rng, t, n, scale=0.002)
        tensors.append((name, t, shape, data))
        nbytes += len(data)
    for i in range(L):
        p = f"blk.{i}."
        for nm, n in [("attn_norm.weight", E), ("ffn_norm.weight", E), ("attn_q.bias", H * HD),
                      ("attn_k.bias", HKV * HD), ("attn_v.bias", HKV * HD)]:
            tensors.append((p + nm, "F32", (n,), np.ones(n, np.float32).tobytes()))
    tensors.append(("output_norm.weight", "F32", (E,), np.ones(E, np.float32).tobytes()))
    md = [("general.architecture", "str", "qwen2"), ("general.name", "str", f"bench-qwen2.5-0.5b-{kind}"),
          ("qwen2.context_length", "u32", 32768), ("qwen2.embedding_length", "u32", E),
          ("qwen2.block_count", "u32", L), ("qwen2.feed_forward_length", "u32", F),
          ("qwen2.attention.head_count", "u32", H), ("qwen2.attention.head_count_kv", "u32", HKV),
          ("qwen2.attention.layer_norm_rms_epsilon", "f32", 1e-6), ("qwen2.rope.freq_base", "f32", 1e6)]
    md += synth.tokenizer_metadata("gpt2", V)  # llama.cpp loads no file without a vocabulary
    synth.write_gguf(path, md, tensors)
    return path, nbytes


def _cuda_torch():
    """torch where it sees a CUDA device, else None."""
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


def _timed(torch, fn, reps=10):
    """Median seconds of fn on the device (one warm-up call first), by CUDA events."""
    fn()
    torch.cuda.synchronize()
    ev = [torch.cuda.Event(enable_timing=True) for _ in range(2)]
    ms = []
    for _ in range(reps):
        ev[0].record()
        fn()
        ev[1].record()
        torch.cuda.synchronize()
        ms.append(ev[0].elapsed_time(ev[1]))
    return statistics.median(ms) / 1e3


def ceilings():
    """(copy GB/s counting read+write, float16 matmul TFLOP/s) measured here, or (None, None)."""
    torch = _cuda_torch()
    if torch is None:
        return None, None
    x = torch.empty(1 << 30, dtype=torch.uint8, device="cuda")
    y = torch.empty_like(x)
    a = torch.randn(8192, 8192, dtype=torch.float16, device="cuda")
    b = torch.randn(8192, 8192, dtype=torch.float16, device="cuda")
    copy_s = _timed(torch, lambda: y.copy_(x))
    mm_s = _timed(torch, lambda: a @ b)
    bw = 2 * x.numel() / copy_s / 1e9
    tf = 2 * 8192 ** 3 / mm_s / 1e12
    del x, y, a, b
    torch.cuda.empty_cache()
    return bw, tf


def read_ceiling():
    """GB/s of a pass that only reads (a float32 sum of 1 GiB) measured here, or None: the check that
    a read-only stream gets the copy's whole rate (read + written), which the decode floors assume."""
    torch = _cuda_torch()
    if torch is None:
        return None
    x = torch.rand(1 << 28, dtype=torch.float32, device="cuda")
    sums = []
    gbs = 4 * x.numel() / _timed(torch, lambda: sums.append(x.sum())) / 1e9
    assert bool(torch.isfinite(sums[-1]))
    del x
    torch.cuda.empty_cache()
    return gbs


def run(path: str, device: str, reps: int):
    loads, prefills, decodes = [], [], []
    prompt = (np.arange(512) * 7919) % V
    for r in range(reps):
        t0 = time.perf_counter()
        m = orc.Model(path, device=device)
        loads.append(time.perf_counter() - t0)
        s = orc.Session(m, n_ctx=CTX, graphs=True)
        if r == 0:  # warm-up: cuBLAS heuristics, first-touch allocations
            s.forward(prompt, "last")
            s.reset()
        t0 = time.perf_counter()
        s.forward(prompt, "last")
        prefills.append(512 / (time.perf_counter() - t0))
        tok = 1
        t0 = time.perf_counter()
        for _ in range(128):
            logits = s.forward([tok], "last")
            tok = int(np.argmax(logits))
        decodes.append(128 / (time.perf_counter() - t0))
        if r == 0:  # the same decode without CUDA graphs (the default), once, for comparison
            s2 = orc.Session(m, n_ctx=CTX, graphs=False)
            s2.forward(prompt, "last")
            t0 = time.perf_counter()
            for _ in range(128):
                tok = int(np.argmax(s2.forward([tok], "last")))
            eager = 128 / (time.perf_counter() - t0)
            s2.close()
        mem = m.memory()
        m.close()
    return statistics.median(loads), statistics.median(prefills), statistics.median(decodes), mem, eager


def profile_table(path: str, device: str) -> None:
    """Per-primitive time of one 512-token prefill and of 32 decode steps (synchronised)."""
    m = orc.Model(path, device=device, profile=True)
    s = orc.Session(m, n_ctx=CTX)
    prompt = (np.arange(512) * 7919) % V
    s.forward(prompt, "last")
    s.reset()
    m.profile()
    s.forward(prompt, "last")
    pre = m.profile()
    for t in range(32):
        s.forward([t + 1], "last")
    dec = m.profile()
    print(f"\nprofile of {os.path.basename(path)} (each primitive bracketed by syncs)")
    print(f"{'primitive':10s} {'prefill ms':>11s} {'calls':>6s} {'decode ms/tok':>14s} {'calls/tok':>10s}")
    for k in pre:
        print(f"{k:10s} {pre[k][1] * 1e3:11.3f} {pre[k][0]:6d} {dec[k][1] * 1e3 / 32:14.4f} {dec[k][0] / 32:10.1f}")
    m.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--types", default="F16,Q8_0,Q4_K_M")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--dir", default="/tmp/orc-bench")
    ap.add_argument("--profile", action="store_true",
                    help="also print where the time goes per primitive (a separate, synchronised run)")
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    bw, tf = ceilings() if args.device == "cuda" else (None, None)
    print(f"device {args.device}: {orc.devices()[0]['name'] if args.device == 'cuda' else 'cpu'}; "
          f"measured ceilings: copy {bw and round(bw)} GB/s, f16 matmul {tf and round(tf)} TFLOP/s")
    n_params = V * E + L * (E * H * HD * 2 + 2 * E * HKV * HD + 3 * E * F)
    rows = []
    for kind in args.types.split(","):
        path, file_bytes = make_model(os.path.join(args.dir, f"qwen2.5-0.5b-shape-{kind}.gguf"), kind)
        load, pre, dec, mem, eager = run(path, args.device, args.reps)
        w_bytes = mem["weights"]  # what the forward pass reads: weights as stored on the device
        kv_bytes_decode = 2 * L * HKV * HD * 2 * (512 + 64)  # f16 K and V read per token, mid-decode
        flops_tok = 2 * n_params
        dec_floor = (w_bytes + kv_bytes_decode) / (bw * 1e9) if bw else None
        pre_floor = max(w_bytes / (bw * 1e9), 512 * flops_tok / (tf * 1e12)) if bw else None
        rows.append((kind, file_bytes / 2**20, w_bytes / 2**20, load, pre, pre_floor and 512 / pre_floor, dec,
                     dec_floor and 1 / dec_floor, eager))
    if args.profile:
        profile_table(os.path.join(args.dir, f"qwen2.5-0.5b-shape-{args.types.split(',')[-1]}.gguf"), args.device)
    print(f"\n{'type':7s} {'file MiB':>9s} {'dev MiB':>8s} {'load s':>7s} {'prefill tok/s':>14s} {'(floor)':>10s} "
          f"{'decode tok/s':>13s} {'(floor)':>9s} {'no graphs':>10s}")
    for kind, fm, dm, load, pre, pre_fl, dec, dec_fl, eager in rows:
        print(f"{kind:7s} {fm:9.0f} {dm:8.0f} {load:7.2f} {pre:14.0f} {pre_fl or float('nan'):10.0f} "
              f"{dec:13.1f} {dec_fl or float('nan'):9.0f} {eager:10.1f}")


if __name__ == "__main__":
    main()
