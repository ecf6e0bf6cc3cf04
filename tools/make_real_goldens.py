#!/usr/bin/env python3
"""Golden logits for orc's regression suite on real models, computed by HF transformers.

For each model (a pinned orc.fixtures name, or a sliced file made by tools/gguf_slice.py),
HF transformers loads the GGUF file itself (AutoModelForCausalLM/AutoTokenizer with
gguf_file=...: the same quantized weights, dequantized by gguf-py to float32), runs a float32
forward pass with eager attention over a few fixed prompts, and writes a compact .npz to
tests/golden/real/<name>.npz. A full logit row is 262,144 floats for gemma3, so instead of
all logits the file keeps, per prompt (key prefix p<i>_):

  text, ids        the prompt and its token ids (HF's tokenizer from the GGUF; for a sliced
                   model: the source golden's ids mapped through orc.slice.token_ids, and
                   orig_ids the unmapped ones)
  argmax           [T] argmax over the full vocabulary at every position
  top_ids/top_logits [T, 64] the 64 largest logits, descending
  lse              [T] float64 logsumexp over the full vocabulary (pins the softmax normalizer,
                   i.e. the mass outside the stored ids)
  sub_pos, sub_logits [P], [P, S] logits at the S = len(subset_ids) token ids of a seeded random
                   subset (numpy default_rng(SEED).choice(n_vocab, 4096, replace=False), sorted;
                   all ids when n_vocab <= 4096) at positions sub_pos (all positions of short
                   prompts, ~32 spread positions of long ones). The NMSE of a candidate's logits
                   against these S values estimates the full-vocabulary NMSE without storing it.
  hidden_last      [n_layer + 2, n_embd] the residual stream at the last position: row 0 is
                   the embedding output (after gemma's sqrt(n_embd) scaling) = orc hook "embd",
                   row i+1 the output of decoder layer i = "blk.i.resid_post", the last row the
                   final norm output = "output_norm" (forward hooks on the HF modules)
  greedy, greedy_margin (chat prompts) 16 greedily generated ids and each step's top1-top2 gap

meta (a JSON string) records the model file's sha256, the library versions, and the tolerances.

Run where PyTorch and transformers are installed (CPU is enough for these models):
  python tools/make_real_goldens.py --model gemma3-270m
  python tools/make_real_goldens.py --sliced build/models/gemma3-270m-L6.gguf \
        --source-golden tests/golden/real/gemma3-270m.npz --name gemma3-270m-L6
transformers' GGUF loading needs `accelerate` (pip install accelerate).
"""
from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import pathlib
import platform
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
SEED = 20261125
N_SUBSET = 4096
TOP_K = 64
N_GREEDY = 16

TOLERANCES = {
    "cpu_fp32": "same dequantized weights, fp32: per prompt NMSE(sub_logits) <= 1e-9, |lse - golden| <= 1e-2 (fp32 noise: a "
                "NumPy forward differs from torch by 1.3e-3 at 2 of 745 positions), "
                "argmax equal wherever the golden top1-top2 margin exceeds 1e-3; hidden_last rows "
                "max|diff| / max|golden| <= 1e-5. (A NumPy forward reaches NMSE ~1e-12 and 3e-7; gelu with "
                "erf instead of tanh gives NMSE ~1e-7 and 1e-4, so looser bounds would miss it.)",
    "gpu_fp16_weights": "see meta['fp16_weight_study']: the deviation HF itself shows when the dequantized "
                        "weights are rounded to fp16; a GPU backend that stores fp16 weights should be "
                        "within a small multiple of it",
}

LONG_TEXT = ("The lighthouse keeper climbed the spiral stairs every evening at dusk, carrying a lantern, "
             "a notebook and a flask of tea. From the top she could see the harbour, the fishing boats "
             "returning one by one, and far to the west the dark line of the storm that the radio had "
             "promised for midnight.")

# > 512 tokens with every tokenizer here, so gemma3's 512-token sliding window really slides.
_CAPITALS = [
    ("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Portugal", "Lisbon"),
    ("Norway", "Oslo"), ("Sweden", "Stockholm"), ("Finland", "Helsinki"), ("Denmark", "Copenhagen"),
    ("Poland", "Warsaw"), ("Austria", "Vienna"), ("Hungary", "Budapest"), ("Greece", "Athens"),
    ("Ireland", "Dublin"), ("Belgium", "Brussels"), ("Netherlands", "Amsterdam"), ("Switzerland", "Bern"),
    ("Czechia", "Prague"), ("Romania", "Bucharest"), ("Bulgaria", "Sofia"), ("Serbia", "Belgrade"),
    ("Croatia", "Zagreb"), ("Ukraine", "Kyiv"), ("Turkey", "Ankara"), ("Egypt", "Cairo"), ("Kenya", "Nairobi"),
    ("Nigeria", "Abuja"), ("Ghana", "Accra"), ("Morocco", "Rabat"), ("Ethiopia", "Addis Ababa"),
    ("South Africa", "Pretoria"), ("Japan", "Tokyo"), ("China", "Beijing"), ("India", "New Delhi"),
    ("Thailand", "Bangkok"), ("Vietnam", "Hanoi"), ("Indonesia", "Jakarta"), ("Philippines", "Manila"),
    ("South Korea", "Seoul"), ("Mongolia", "Ulaanbaatar"), ("Iran", "Tehran"), ("Iraq", "Baghdad"),
    ("Saudi Arabia", "Riyadh"), ("Australia", "Canberra"), ("New Zealand", "Wellington"),
    ("Canada", "Ottawa"), ("Mexico", "Mexico City"), ("Cuba", "Havana"), ("Brazil", "Brasilia"),
    ("Argentina", "Buenos Aires"), ("Chile", "Santiago"), ("Peru", "Lima"), ("Colombia", "Bogota"),
    ("Venezuela", "Caracas"), ("Uruguay", "Montevideo"), ("Iceland", "Reykjavik"), ("Estonia", "Tallinn"),
    ("Latvia", "Riga"), ("Lithuania", "Vilnius"), ("Slovakia", "Bratislava"),
]
LIST_TEXT = "A list of countries and their capital cities.\n" + "".join(
    f"{i + 1}. Country: {c}. Capital: {k}.\n" for i, (c, k) in enumerate(_CAPITALS)) + "61. Country: Kenya. Capital:"

USER_MSG = "What is the capital of France?"


def _load_fixtures():
    """orc.fixtures without importing orc (whose compiled extension may not be built here)."""
    spec = importlib.util.spec_from_file_location("orc_fixtures", ROOT / "orc" / "fixtures.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["orc_fixtures"] = mod
    spec.loader.exec_module(mod)
    return mod


def prompts_for(arch: str, tok) -> list[dict]:
    out = [{"name": "raw_short", "text": "The capital of France is", "add_special": True}]
    if tok.chat_template:
        text = tok.apply_chat_template([{"role": "user", "content": USER_MSG}], tokenize=False,
                                       add_generation_prompt=True)
        out.append({"name": "chat", "text": text, "add_special": False})  # the template places the specials
    elif arch == "gemma3":
        # The base model's GGUF has no template; this is Gemma's turn format (control tokens 105/106).
        out.append({"name": "chat", "text": f"<start_of_turn>user\n{USER_MSG}<end_of_turn>\n<start_of_turn>model\n",
                    "add_special": True})
    out.append({"name": "raw_long", "text": LONG_TEXT, "add_special": True})
    out.append({"name": "long_list", "text": LIST_TEXT, "add_special": True})
    return out


def sub_positions(T: int) -> np.ndarray:
    if T <= 48:
        return np.arange(T, dtype=np.int32)
    pos = set(range(8)) | set(range(T - 8, T)) | set(range(0, T, max(1, T // 16)))
    return np.array(sorted(pos), dtype=np.int32)


def versions() -> dict:
    import gguf
    import torch
    import transformers
    v = {"python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__,
         "transformers": transformers.__version__}
    try:
        from importlib.metadata import version
        v["gguf"] = version("gguf")
        v["accelerate"] = version("accelerate")
    except Exception:  # pragma: no cover
        v["gguf"] = getattr(gguf, "__version__", "?")
    return v


def load_model(path: pathlib.Path):
    import torch
    from transformers import AutoModelForCausalLM
    m = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32,
                                             attn_implementation="eager")
    m.eval()
    return m


class HiddenRecorder:
    """Forward hooks: embedding output, every decoder layer's output, final norm output."""

    def __init__(self, model):
        inner = model.model
        self.mods = [inner.embed_tokens, *inner.layers, inner.norm]
        self.out = [None] * len(self.mods)
        self.handles = [m.register_forward_hook(self._hook(i)) for i, m in enumerate(self.mods)]

    def _hook(self, i):
        def f(_mod, _inp, output):
            t = output[0] if isinstance(output, tuple) else output
            self.out[i] = t.detach()
        return f

    def last(self) -> np.ndarray:
        return np.stack([o[0, -1].float().numpy() for o in self.out]).astype(np.float32)

    def remove(self):
        for h in self.handles:
            h.remove()


def forward_logits(model, ids: np.ndarray) -> np.ndarray:
    import torch
    with torch.no_grad():
        return model(torch.tensor(ids[None, :], dtype=torch.long)).logits[0].float().numpy()


def summarize(logits: np.ndarray, subset: np.ndarray, sub_pos: np.ndarray) -> dict:
    import torch
    lt = torch.from_numpy(logits)
    top = torch.topk(lt, TOP_K, dim=-1)
    return {
        "argmax": logits.argmax(-1).astype(np.int32),
        "top_ids": top.indices.numpy().astype(np.int32),
        "top_logits": top.values.numpy().astype(np.float32),
        "lse": torch.logsumexp(lt.double(), dim=-1).numpy(),
        "sub_pos": sub_pos,
        "sub_logits": np.ascontiguousarray(logits[sub_pos][:, subset]).astype(np.float32),
    }


def greedy(model, ids: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    import torch
    with torch.no_grad():
        out = model.generate(torch.tensor(ids[None, :]), max_new_tokens=n, do_sample=False, output_scores=True,
                             return_dict_in_generate=True, min_new_tokens=n)
    new = out.sequences[0, len(ids):].numpy().astype(np.int32)
    margins = []
    for s in out.scores:
        v = torch.topk(s[0].float(), 2).values
        margins.append(float(v[0] - v[1]))
    return new, np.array(margins, dtype=np.float32)


def nmse(a: np.ndarray, ref: np.ndarray) -> float:
    return float(np.sum((a.astype(np.float64) - ref) ** 2) / np.sum(ref.astype(np.float64) ** 2))


def fp16_weight_study(model, prompts, arrays, subset) -> dict:
    """Round every 2-D weight to fp16 (what a GPU backend storing fp16 weights does), rerun, and
    measure the deviation from the fp32 goldens: the floor a correct fp16-weight backend sees."""
    import torch
    with torch.no_grad():
        for _, p in model.named_parameters():
            if p.dim() == 2:
                p.copy_(p.half().float())
    res = {}
    for i, pr in enumerate(prompts):
        lg = forward_logits(model, arrays[f"p{i}_ids"])
        sub = lg[arrays[f"p{i}_sub_pos"]][:, subset]
        gold_top = arrays[f"p{i}_top_logits"]
        margin = gold_top[:, 0] - gold_top[:, 1]
        agree = lg.argmax(-1) == arrays[f"p{i}_argmax"]
        res[pr["name"]] = {
            "nmse_sub": nmse(sub, arrays[f"p{i}_sub_logits"]),
            "max_abs_sub": float(np.abs(sub - arrays[f"p{i}_sub_logits"]).max()),
            "argmax_agree": f"{int(agree.sum())}/{agree.size}",
            "max_margin_of_disagreement": float(margin[~agree].max()) if (~agree).any() else 0.0,
            "max_abs_lse": float(np.abs(torch.logsumexp(torch.from_numpy(lg).double(), -1).numpy()
                                        - arrays[f"p{i}_lse"]).max()),
        }
    return res


def make(model_path: pathlib.Path, name: str, prompts: list[dict], meta: dict, *, fp16_study: bool,
         out_dir: pathlib.Path) -> pathlib.Path:
    import torch
    torch.manual_seed(0)
    model = load_model(model_path)
    cfg = model.config
    n_vocab = int(cfg.vocab_size)
    rng = np.random.default_rng(SEED)
    subset = (np.arange(n_vocab) if n_vocab <= N_SUBSET
              else np.sort(rng.choice(n_vocab, size=N_SUBSET, replace=False))).astype(np.int32)
    arrays: dict[str, np.ndarray] = {"subset_ids": subset}
    rec = HiddenRecorder(model)
    for i, pr in enumerate(prompts):
        ids = np.asarray(pr["ids"], dtype=np.int32)
        logits = forward_logits(model, ids)
        if not np.isfinite(logits).all():
            raise SystemExit(f"{name}/{pr['name']}: non-finite logits from HF")
        s = summarize(logits, subset, sub_positions(len(ids)))
        arrays[f"p{i}_text"] = np.array(pr["text"])
        arrays[f"p{i}_ids"] = ids
        if "orig_ids" in pr:
            arrays[f"p{i}_orig_ids"] = np.asarray(pr["orig_ids"], dtype=np.int32)
        for k, v in s.items():
            arrays[f"p{i}_{k}"] = v
        arrays[f"p{i}_hidden_last"] = rec.last()
        if pr["name"] == "chat":
            rec.remove()
            g, mg = greedy(model, ids, N_GREEDY)
            arrays[f"p{i}_greedy"], arrays[f"p{i}_greedy_margin"] = g, mg
            rec = HiddenRecorder(model)
        print(f"  {pr['name']:10s} T={len(ids):4d} argmax[-1]={int(s['argmax'][-1])} lse[-1]={s['lse'][-1]:.4f}"
              + (f" greedy={arrays[f'p{i}_greedy'].tolist()}" if pr["name"] == "chat" else ""))
    rec.remove()
    meta.update({
        "name": name, "n_vocab": n_vocab, "n_layer": int(cfg.num_hidden_layers), "n_embd": int(cfg.hidden_size),
        "dtype": "float32", "attn_implementation": "eager", "subset_seed": SEED, "n_subset": int(subset.size),
        "top_k": TOP_K, "prompts": [{k: v for k, v in p.items() if k not in ("ids", "orig_ids", "text")}
                                    for p in prompts],
        "hidden_rows": ["embd"] + [f"blk.{i}.resid_post" for i in range(int(cfg.num_hidden_layers))] + ["output_norm"],
        "versions": versions(), "created": datetime.date.today().isoformat(),
        "tolerances": TOLERANCES, "generator": "tools/make_real_goldens.py",
    })
    if fp16_study:
        meta["fp16_weight_study"] = fp16_weight_study(model, prompts, arrays, subset)
        print("  fp16 weights:", json.dumps(meta["fp16_weight_study"], indent=None))
    arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{name}.npz"
    np.savez_compressed(out, **arrays)
    print(f"wrote {out} ({out.stat().st_size / 2**20:.2f} MiB)")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", action="append", default=[], help="orc.fixtures name (fetched if missing)")
    ap.add_argument("--sliced", help="a file written by tools/gguf_slice.py")
    ap.add_argument("--source-golden", help="with --sliced: the source model's golden (its prompts are reused)")
    ap.add_argument("--name", help="with --sliced: the golden's name")
    ap.add_argument("--out", default=str(ROOT / "tests" / "golden" / "real"))
    ap.add_argument("--no-fp16-study", action="store_true")
    args = ap.parse_args(argv)
    out_dir = pathlib.Path(args.out)

    import torch
    torch.set_num_threads(max(1, min(4, torch.get_num_threads())))
    fixtures = _load_fixtures()
    for name in args.model:
        fx = fixtures.info(name)
        if not fx.complete:
            raise SystemExit(f"{name} is not a complete model")
        path = fixtures.path(name)
        from transformers import AutoTokenizer
        tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        prompts = prompts_for(fx.arch, tok)
        for p in prompts:
            p["ids"] = tok(p["text"], add_special_tokens=p["add_special"])["input_ids"]
        meta = {"fixture": name, "file": fx.filename, "sha256": fx.sha256, "size": fx.size, "arch": fx.arch,
                "tokenizer": f"transformers AutoTokenizer.from_pretrained(gguf_file=...) -> {type(tok).__name__}"}
        print(f"{name}: {path}")
        make(path, name, prompts, meta, fp16_study=not args.no_fp16_study, out_dir=out_dir)

    if args.sliced:
        if not (args.source_golden and args.name):
            raise SystemExit("--sliced needs --source-golden and --name")
        from gguf import GGUFReader
        sliced = pathlib.Path(args.sliced)
        r = GGUFReader(sliced)
        f = r.fields["orc.slice.token_ids"]
        keep = np.array([f.parts[i][0] for i in f.data], dtype=np.int64)
        src = np.load(args.source_golden, allow_pickle=False)
        src_meta = json.loads(str(src["meta"]))
        prompts = []
        for i, p in enumerate(src_meta["prompts"]):
            orig = src[f"p{i}_ids"].astype(np.int64)
            new = np.searchsorted(keep, orig)
            if np.any(new >= keep.size) or np.any(keep[np.minimum(new, keep.size - 1)] != orig):
                raise SystemExit(f"prompt {p['name']} uses ids the slice does not keep")
            prompts.append({**p, "text": str(src[f"p{i}_text"]), "ids": new.tolist(), "orig_ids": orig.tolist()})
        field = lambda k: r.fields[k].parts[r.fields[k].data[0]]  # noqa: E731
        meta = {"file": sliced.name, "sha256": fixtures.sha256_file(sliced), "size": sliced.stat().st_size,
                "arch": bytes(field("general.architecture")).decode(), "source_golden": pathlib.Path(args.source_golden).name,
                "source_sha256": bytes(field("orc.slice.source_sha256")).decode(),
                "recipe": json.loads(bytes(field("orc.slice.recipe")).decode()),
                "slice": "tools/gguf_slice.py: first block_count layers, vocabulary restricted to orc.slice.token_ids"}
        print(f"{args.name}: {sliced}")
        make(sliced, args.name, prompts, meta, fp16_study=not args.no_fp16_study, out_dir=out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
