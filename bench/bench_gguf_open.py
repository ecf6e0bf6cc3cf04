"""Open a GGUF file and build its metadata dict: orc.GGUFFile vs gguf-py's GGUFReader.

The file is generated (gguf-py's writer) to look like Qwen2's: a 151,936-token vocabulary
(token strings, scores, token types), ~151k merges, a chat template, the usual
hyperparameters, and 291 tensors (24 blocks of 12 plus 3; tiny shapes: the reader's cost
is in the metadata and the tensor table, not in the tensor bytes).

    python bench/bench_gguf_open.py [--runs 15] [--ref-runs 3] [--keep PATH] [--real FILE...]

Prints a table of medians (and min/max) for:
  orc open              orc.GGUFFile(path), close
  orc open + metadata   orc.GGUFFile(path).metadata (the dict built in C), close
  gguf-py open          gguf.GGUFReader(path)
  gguf-py open + dict   GGUFReader(path) and {name: field.contents()} for every key
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import orc  # noqa: E402

N_VOCAB = 151_936
N_MERGES = 151_387
N_LAYER = 24


def make_file(path: str) -> None:
    from gguf import GGMLQuantizationType, GGUFWriter
    from gguf.quants import quant_shape_to_byte_shape

    rng = np.random.default_rng(0)
    alphabet = np.array(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789Ġĉ的是不了"))
    lens = rng.integers(1, 12, N_VOCAB)
    tokens = ["".join(alphabet[rng.integers(0, len(alphabet), n)]) + f"_{i}" for i, n in enumerate(lens)]
    w = GGUFWriter(path, "qwen2")
    w.add_name("bench-qwen2-like")
    w.add_block_count(N_LAYER)
    w.add_context_length(32768)
    w.add_embedding_length(896)
    w.add_feed_forward_length(4864)
    w.add_head_count(14)
    w.add_head_count_kv(2)
    w.add_rope_freq_base(1e6)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_file_type(15)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types([int(x) for x in rng.integers(1, 4, N_VOCAB)])
    w.add_token_scores([float(x) for x in rng.standard_normal(N_VOCAB).astype(np.float32)])
    w.add_token_merges([f"{tokens[i]} {tokens[i + 1]}" for i in range(N_MERGES)])
    w.add_bos_token_id(151643)
    w.add_eos_token_id(151645)
    w.add_add_bos_token(False)
    w.add_chat_template("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}" * 20)

    def q(name, qtype, rows, cols):
        shape = quant_shape_to_byte_shape((rows, cols), qtype)
        w.add_tensor(name, rng.integers(0, 256, size=shape, dtype=np.uint8), raw_dtype=qtype)

    K, Q8 = GGMLQuantizationType.Q4_K, GGMLQuantizationType.Q8_0
    w.add_tensor("token_embd.weight", rng.standard_normal((4, 256)).astype(np.float32))
    for i in range(N_LAYER):
        p = f"blk.{i}."
        w.add_tensor(p + "attn_norm.weight", rng.standard_normal(256).astype(np.float32))
        q(p + "attn_q.weight", K, 2, 256)
        w.add_tensor(p + "attn_q.bias", rng.standard_normal(256).astype(np.float32))
        q(p + "attn_k.weight", K, 2, 256)
        w.add_tensor(p + "attn_k.bias", rng.standard_normal(32).astype(np.float32))
        q(p + "attn_v.weight", Q8, 2, 256)
        w.add_tensor(p + "attn_v.bias", rng.standard_normal(32).astype(np.float32))
        q(p + "attn_output.weight", K, 2, 256)
        w.add_tensor(p + "ffn_norm.weight", rng.standard_normal(256).astype(np.float32))
        q(p + "ffn_gate.weight", K, 2, 256)
        q(p + "ffn_up.weight", K, 2, 256)
        q(p + "ffn_down.weight", Q8, 2, 256)
    w.add_tensor("output_norm.weight", rng.standard_normal(256).astype(np.float32))
    q("output.weight", Q8, 4, 256)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def timed(fn, runs):
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def orc_open(path):
    orc.GGUFFile(path).close()


def orc_open_metadata(path):
    with orc.GGUFFile(path) as f:
        m = f.metadata
        assert len(m["tokenizer.ggml.tokens"]) > 0 if "tokenizer.ggml.tokens" in m else True


def ref_open(path):
    from gguf import GGUFReader

    GGUFReader(path)


def ref_open_dict(path):
    from gguf import GGUFReader

    r = GGUFReader(path)
    return {name: field.contents() for name, field in r.fields.items() if not name.startswith("GGUF.")}


def bench_file(path, runs, ref_runs, rows):
    info = orc.GGUFFile(path)
    desc = f"{os.path.basename(path)}: {os.path.getsize(path) / 2**20:.1f} MiB, {len(info.metadata)} keys, " \
           f"{len(info.tensors)} tensors, vocab {len(info.metadata.get('tokenizer.ggml.tokens', []))}"
    info.close()
    # warm the page cache and both code paths once
    orc_open_metadata(path)
    ref_open(path)
    res = {
        "orc open": timed(lambda: orc_open(path), runs),
        "orc open + metadata": timed(lambda: orc_open_metadata(path), runs),
        "gguf-py open": timed(lambda: ref_open(path), ref_runs),
        "gguf-py open + dict": timed(lambda: ref_open_dict(path), ref_runs),
    }
    rows.append((desc, res))


def print_table(rows):
    for desc, res in rows:
        print(f"\n{desc}")
        print(f"  {'what':<22} {'runs':>5} {'median ms':>11} {'min ms':>10} {'max ms':>10}")
        for k, v in res.items():
            print(f"  {k:<22} {len(v):>5} {statistics.median(v) * 1e3:>11.2f} {min(v) * 1e3:>10.2f} "
                  f"{max(v) * 1e3:>10.2f}")
        m = {k: statistics.median(v) for k, v in res.items()}
        print(f"  speed-up, open + metadata vs gguf-py open + dict: {m['gguf-py open + dict'] / m['orc open + metadata']:.0f}x"
              f"   (open only: {m['gguf-py open'] / m['orc open']:.0f}x; "
              f"orc open + metadata vs gguf-py open alone: {m['gguf-py open'] / m['orc open + metadata']:.0f}x)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=15, help="orc runs per measurement")
    ap.add_argument("--ref-runs", type=int, default=3, help="gguf-py runs per measurement (each takes seconds)")
    ap.add_argument("--keep", help="write the generated file here (and reuse it if it exists)")
    ap.add_argument("--real", nargs="*", default=[], help="also time these real GGUF files")
    args = ap.parse_args(argv)
    import importlib.metadata

    cpu = platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
    except OSError:
        pass
    print(f"orc {orc.__version__} (source {orc.build_info()['source_hash'][:12]}), "
          f"gguf-py {importlib.metadata.version('gguf')}, numpy {np.__version__}, Python {platform.python_version()}, "
          f"{cpu}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or os.path.join(tmp, "qwen2-like.gguf")
        if not os.path.exists(path):
            t = time.perf_counter()
            make_file(path)
            print(f"generated {path} in {time.perf_counter() - t:.1f} s")
        bench_file(path, args.runs, args.ref_runs, rows)
        for p in args.real:
            bench_file(p, args.runs, args.ref_runs, rows)
    print_table(rows)


if __name__ == "__main__":
    main()
