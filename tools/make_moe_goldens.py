#!/usr/bin/env python3
"""Golden logits for the small MoE models (gpt-oss, qwen3moe), from Hugging Face transformers.

For each spec of orc.synth_moe.GOLDEN_SPECS this writes the GGUF file (deterministic, no torch),
builds the HF model (GptOssForCausalLM / Qwen3MoeForCausalLM) from the very same float32 values
(synth_moe.hf_state_dict: the exact dequantization of the stored MXFP4/Q8_0 blocks, laid out as
the converter's inverse), runs it in float32 on the CPU with eager attention and eager experts,
and stores:

  tests/golden/moe/<name>.npz
    ids             int32   [T]              the prompt (T = 192 > the 128-token sliding window)
    logits          float32 [T, n_vocab]     HF, every position
    hidden_layers   int32   [n]              which HF hidden_states are stored (i: after layer i-1, 0: embeddings)
    hidden_states   float32 [n, T, n_embd]
    router_layer    int32                    the layer of the router arrays
    router_logits   float32 [T, n_expert]    HF router logits of that layer (gpt-oss: with bias)
    topk_ids        int32   [T, k]           HF's selected experts, in decreasing order
    topk_w          float32 [T, k]           their weights (gpt-oss: softmax of the k logits;
                                             qwen3moe: softmax over all, renormalized over k)
    router_margin   float64 [n_layer]        smallest gap between the k-th and (k+1)-th router
                                             logit over the prompt, per layer (numpy_moe)
    logits_yarn_ggml float32 [T, n_vocab]    gpt-oss only: the float64 NumPy forward with llama.cpp's
                                             rounded YaRN correction range (tests/numpy_moe.py)
    gguf_sha256, spec (json), versions (json)
    numpy_nmse      json: the float64 NumPy forward (tests/numpy_moe.py) against these arrays, the
                    YaRN rounding difference, and a float16 emulation (how many tokens change
                    experts, logits NMSE)

Run:  python tools/make_moe_goldens.py                 (needs torch, transformers, gguf)
      python tools/make_moe_goldens.py --search-seeds NAME FIRST LAST
          prints, per seed, the router decisions a float16 emulation flips and the smallest
          top-k margin (no torch): how the seeds of synth_moe.GOLDEN_SPECS were chosen
"""
import dataclasses
import json
import os
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from orc import synth_moe  # noqa: E402
import numpy_moe  # noqa: E402

OUT_DIR = os.path.join(ROOT, "tests", "golden", "moe")
HIDDEN_LAYERS = (1, 2)        # outputs of layer 0 (sliding for gpt-oss) and layer 1 (global)
ROUTER_LAYER = 1


def build_hf(s):
    import torch
    from transformers import GptOssConfig, GptOssForCausalLM, Qwen3MoeConfig, Qwen3MoeForCausalLM

    cfg_cls, model_cls = ((GptOssConfig, GptOssForCausalLM) if s.arch == "gpt-oss"
                          else (Qwen3MoeConfig, Qwen3MoeForCausalLM))
    cfg = cfg_cls(**synth_moe.hf_config(s), attn_implementation="eager", experts_implementation="eager")
    torch.manual_seed(0)
    model = model_cls(cfg).to(torch.float32).eval()
    sd = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in synth_moe.hf_state_dict(s).items()}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise SystemExit(f"{s.arch}: state dict mismatch: missing {missing}, unexpected {unexpected}")
    assert model.config._attn_implementation == "eager", model.config._attn_implementation
    return model


def run_hf(model, ids):
    import torch

    with torch.no_grad():
        out = model(torch.tensor(ids[None].astype(np.int64)), output_hidden_states=True, output_router_logits=True)
    return out


def float16_study(path, ids, k):
    """(tokens whose experts change in some layer under float16 emulation, logits NMSE of the
    emulation against the float64 forward, smallest float64 top-k margin)."""
    _, ref = numpy_moe.MoeModel(path).forward(ids)
    lg16, t16 = numpy_moe.Float16Emulation(path).forward(ids)
    n_layer = sum(1 for n in ref if n.endswith(".moe_topk_ids"))
    changed = np.zeros(len(ids), bool)
    margin = np.inf
    for i in range(n_layer):
        a, b = (np.sort(t[f"blk.{i}.moe_topk_ids"], axis=1) for t in (ref, t16))
        changed |= (a != b).any(axis=1)
        margin = min(margin, numpy_moe.topk_margin(ref[f"blk.{i}.moe_router"], k).min())
    return int(changed.sum()), numpy_moe.nmse(lg16, ref["logits"]), float(margin)


def search_seeds(name, first, last):
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(first, last):
            s = synth_moe.spec(name, seed=seed)
            path = synth_moe.make_model(os.path.join(tmp, "m.gguf"), s)
            flips, nm16, margin = float16_study(path, synth_moe.golden_ids(s), s.n_expert_used)
            print(f"{name} seed {seed}: float16 flips {flips} tokens, logits NMSE {nm16:.1e}, min margin {margin:.2e}",
                  flush=True)


def main(out_dir=OUT_DIR):
    import gguf
    import torch
    import transformers

    torch.set_num_threads(2)
    os.makedirs(out_dir, exist_ok=True)
    versions = json.dumps({"transformers": transformers.__version__, "torch": torch.__version__,
                           "gguf": getattr(gguf, "__version__", "?"), "numpy": np.__version__})
    with tempfile.TemporaryDirectory() as tmp:
        for name in synth_moe.GOLDEN_SPECS:
            s = synth_moe.spec(name)
            path = synth_moe.make_model(os.path.join(tmp, name + ".gguf"), name)
            ids = synth_moe.golden_ids(name)
            model = build_hf(s)
            out = run_hf(model, ids)
            logits = out.logits[0].float().numpy()
            hs = np.stack([out.hidden_states[i][0].float().numpy() for i in HIDDEN_LAYERS])
            rl = out.router_logits[ROUTER_LAYER].float()
            k = s.n_expert_used
            if s.arch == "gpt-oss":
                top_v, top_i = torch.topk(rl, k, dim=-1)
                top_w = torch.softmax(top_v, dim=-1)
            else:
                probs = torch.softmax(rl, dim=-1)
                top_w, top_i = torch.topk(probs, k, dim=-1)
                top_w = top_w / top_w.sum(-1, keepdim=True)

            ref = numpy_moe.MoeModel(path)
            np_logits, trace = ref.forward(ids, yarn="hf")
            margins = np.array([numpy_moe.topk_margin(trace[f"blk.{i}.moe_router"], k).min()
                                for i in range(s.n_layer)])
            nm = {"logits": numpy_moe.nmse(np_logits, logits),
                  "logits_max_per_position": max(numpy_moe.nmse(np_logits[t], logits[t]) for t in range(len(ids))),
                  "hidden_states": [numpy_moe.nmse(trace["embd"] if i == 0 else trace[f"blk.{i - 1}.resid_post"],
                                                   hs[j]) for j, i in enumerate(HIDDEN_LAYERS)],
                  "router_logits": numpy_moe.nmse(trace[f"blk.{ROUTER_LAYER}.moe_router"], rl.numpy()),
                  "topk_ids_equal": bool(np.array_equal(trace[f"blk.{ROUTER_LAYER}.moe_topk_ids"], top_i.numpy()))}
            arrays = dict(ids=ids, logits=logits, hidden_layers=np.array(HIDDEN_LAYERS, np.int32), hidden_states=hs,
                          router_layer=np.int32(ROUTER_LAYER), router_logits=rl.numpy().astype(np.float32),
                          topk_ids=top_i.numpy().astype(np.int32), topk_w=top_w.numpy().astype(np.float32),
                          router_margin=margins, gguf_sha256=np.array(synth_moe.file_sha256(path)),
                          spec=np.array(json.dumps(dataclasses.asdict(s))), versions=np.array(versions))
            if s.arch == "gpt-oss":
                ggml_logits, _ = ref.forward(ids, yarn="ggml")
                arrays["logits_yarn_ggml"] = ggml_logits.astype(np.float32)
                nm["yarn_ggml_vs_hf"] = numpy_moe.nmse(ggml_logits, np_logits)
            flips, nm16, _ = float16_study(path, ids, k)
            nm["float16_emulation"] = {"tokens_with_changed_experts": flips, "logits_nmse_vs_float64": nm16}
            arrays["numpy_nmse"] = np.array(json.dumps(nm))
            dst = os.path.join(out_dir, name + ".npz")
            np.savez_compressed(dst, **arrays)
            top1 = logits.argmax(-1)
            print(f"{name:14s} T={len(ids)} logits std {logits.std():.3f} distinct argmax {len(set(top1))} "
                  f"min router margin {margins.min():.2e} -> {dst} ({os.path.getsize(dst) / 1024:.0f} KiB)")
            print("   numpy float64 vs HF float32:", json.dumps(nm))


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--search-seeds":
        search_seeds(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        main()
