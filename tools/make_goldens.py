#!/usr/bin/env python3
"""Golden logits for the synthetic models, from Hugging Face transformers.

For every architecture x weight type, this writes the synthetic GGUF (orc.synth,
deterministic), loads it with transformers' own GGUF loader (which dequantizes
with gguf-py and builds the PyTorch model: an implementation independent of
orc), runs a float32 forward pass over fixed token ids and stores:

  tests/golden/synth/<arch>_<type>.npz
    ids            int32 [T]            the token ids
    logits         float32 [T, n_vocab]
    hidden_states  float32 [L+1, T, E]  HF hidden_states (F32 models only, to keep files small)
    gguf_sha256    the model file's hash (tests regenerate it and check, so generator drift is caught)
    versions       transformers / torch / gguf versions used

Run:  python tools/make_goldens.py   (needs torch, transformers, accelerate, gguf)
"""
import json
import os
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from orc import synth  # noqa: E402

ARCHS = ["llama", "qwen2", "qwen3", "gemma3"]
TYPES = ["F32", "F16", "Q8_0", "Q4_K"]
N_TOKENS = 24  # longer than gemma3's synthetic sliding window (8)


def golden_ids(n_vocab: int) -> np.ndarray:
    return np.random.default_rng(1234).integers(0, n_vocab, N_TOKENS).astype(np.int32)


def main(out_dir=os.path.join(ROOT, "tests", "golden", "synth")):
    import gguf
    import torch
    import transformers
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    os.makedirs(out_dir, exist_ok=True)
    versions = json.dumps({"transformers": transformers.__version__, "torch": torch.__version__,
                           "gguf": getattr(gguf, "__version__", "?")})
    with tempfile.TemporaryDirectory() as tmp:
        for arch in ARCHS:
            for wt in TYPES:
                spec = synth.spec_for(arch, wt)
                name = f"{arch}_{wt}.gguf"
                path = synth.make_model(os.path.join(tmp, name), spec)
                model, info = AutoModelForCausalLM.from_pretrained(
                    tmp, gguf_file=name, dtype=torch.float32, output_loading_info=True)
                bad = {k: v for k, v in info.items() if v and k != "error_msgs"} | (
                    {"error_msgs": info["error_msgs"]} if info.get("error_msgs") else {})
                if bad:
                    raise SystemExit(f"{name}: HF did not load every weight: {bad}")
                model.eval()
                ids = golden_ids(spec.n_vocab)
                with torch.no_grad():
                    out = model(torch.tensor(ids[None].astype(np.int64)), output_hidden_states=True)
                logits = out.logits[0].float().numpy()
                arrays = dict(ids=ids, logits=logits, gguf_sha256=np.array(synth.file_sha256(path)),
                              versions=np.array(versions))
                if wt == "F32":
                    arrays["hidden_states"] = torch.stack(out.hidden_states)[:, 0].float().numpy()
                dst = os.path.join(out_dir, f"{arch}_{wt}.npz")
                np.savez_compressed(dst, **arrays)
                top1 = logits.argmax(-1)
                print(f"{arch:7s} {wt:5s} logits {logits.shape} std {logits.std():.3f} "
                      f"argmax==input {np.mean(top1 == ids):.2f} distinct argmax {len(set(top1))} -> {dst}")


if __name__ == "__main__":
    main()
