"""`python -m orc kld A B --text FILE`: KL divergence and perplexity of model B against the
reference A, with llama-perplexity --kl-divergence's definitions (orc.perplexity), plus the worst
positions with their text and the per-layer divergence of the hidden states.

A and B are FILE[@DEVICE[:INDEX][:DTYPE]] (FILE a .gguf or a pinned model name; device auto),
or a .npz of saved logits (`--save`). Both run in this process, window by window. Without B,
`--save FILE` only saves A's logits (and prints A's perplexity).
Exit code 0; 1 when --max-mean-kld / --min-same-top is given and not met; 2 on trouble.
"""
from __future__ import annotations

import json
import math
import os

from . import _cli


def add_parser(sub) -> None:
    p = sub.add_parser("kld", help="KL divergence, perplexity and top-token agreement of B against A over a text",
                       description="KL divergence of model B against the reference A, as llama-perplexity "
                                   "--kl-divergence computes it (windows of --n-ctx tokens, the second half of each "
                                   "scored), with the worst positions and the per-layer hidden-state divergence.")
    p.add_argument("a", metavar="A", help="the reference: FILE[@DEVICE[:INDEX][:DTYPE]] (e.g. model-f16.gguf@cpu, "
                                          "smollm2-135m-instruct@cpu:float32) or saved logits (.npz from --save)")
    p.add_argument("b", metavar="B", nargs="?", default=None,
                   help="the model under test, same forms as A (omit it with --save to only save A's logits)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--text", metavar="FILE", help="the text to score ('-' reads stdin); tokenized with BOS/EOS as "
                                                     "the vocabulary asks")
    src.add_argument("--ids", metavar="IDS", help="token ids instead of text: a file of integers (or .npy), or "
                                                   "'1,2,3' inline")
    p.add_argument("--n-ctx", type=int, default=None, help="window size (default: 512, or the saved logits' own)")
    p.add_argument("--chunks", type=int, default=None, help="score at most this many windows")
    p.add_argument("--worst", type=int, default=10, help="positions with the largest KLD to list (default: 10)")
    p.add_argument("--no-layers", action="store_true", help="skip the per-layer hidden-state divergence (faster)")
    p.add_argument("--plot", metavar="PNG", help="save a plot of the KLD and the per-layer divergence (matplotlib)")
    p.add_argument("--save", metavar="NPZ", help="also save A's scored logits to this file, for later runs against it")
    p.add_argument("--top-k", type=int, default=None,
                   help="with --save: keep only the top K logits per position (compact; the KLD against it is then "
                        "a lower bound); default: every logit as float16")
    p.add_argument("--max-mean-kld", type=float, default=None, help="exit with 1 when the mean KLD exceeds this")
    p.add_argument("--min-same-top", type=float, default=None,
                   help="exit with 1 when the same-top-token fraction is below this (0..1)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    return _cli.guarded("kld", lambda: _run(args))


def _read_ids(spec: str):
    import numpy as np

    if os.path.isfile(spec):
        if spec.endswith(".npy"):
            return np.load(spec, allow_pickle=False).reshape(-1).astype(np.int64)
        with open(spec) as f:
            text = f.read()
    else:
        text = spec
    return _cli.parse_ids(text)


def _side(spec: str, which: str):
    """A model spec string, with the CLI's one-line errors for a missing file or device."""
    from .perplexity import parse_model_spec

    if spec.endswith(".npz"):
        if not os.path.isfile(spec):
            raise _cli.CliError(f"{which}: no such file: {spec}")
        return spec
    try:
        kw = parse_model_spec(spec)
    except ValueError as e:
        raise _cli.CliError(f"{which}: {e}") from None
    try:
        return _cli.load_model(kw["path"], kw["device"], kw["dtype"], progress=False)
    except _cli.CliError as e:
        raise _cli.CliError(f"{which} {spec}: {e}") from None


def _run(args) -> int:
    from . import perplexity

    if args.b is None and args.save is None:
        raise _cli.CliError("give the model B to compare against A, or --save FILE to only save A's logits")
    if args.top_k is not None and args.save is None:
        raise _cli.CliError("--top-k goes with --save")
    if args.n_ctx is not None and args.n_ctx < 4:
        raise _cli.CliError(f"--n-ctx must be >= 4, got {args.n_ctx}")
    if args.text is not None:
        data = _cli.read_prompt(args.text) if args.text == "-" else _read_text(args.text)
    elif args.ids is not None:
        data = _read_ids(args.ids)
    else:
        data = None
    a = _side(args.a, "A")
    b = _side(args.b, "B") if args.b is not None else None
    if data is None and not any(isinstance(x, str) and x.endswith(".npz") for x in (a, b)):
        raise _cli.CliError("give --text FILE or --ids (only saved logits carry their own tokens)")
    progress = False if args.no_progress else None
    if b is None:
        saved = perplexity.save_logits(a, data, args.save, n_ctx=args.n_ctx, n_chunks=args.chunks, top_k=args.top_k,
                                       progress=progress)
        import numpy as np

        ppl = math.exp(float(np.mean(saved.nll)))
        out = {"saved": args.save, "a": saved.label, "n_ctx": saved.n_ctx, "n_chunks": saved.n_chunks,
               "n_tokens": int(saved.nll.size), "ppl_a": ppl, "kind": saved.kind}
        print(json.dumps(out, indent=1) if args.json else
              f"saved {saved.kind} of {saved.nll.size} scored positions ({saved.n_chunks} window(s) of {saved.n_ctx}) "
              f"to {args.save}; PPL(A) = {ppl:.6f}")
        return _cli.EXIT_OK
    r = perplexity.kld(a, b, data, n_ctx=args.n_ctx, n_chunks=args.chunks, n_worst=args.worst,
                       layers=not args.no_layers, save_a=args.save, top_k=args.top_k, progress=progress)
    if args.plot:
        r.plot(args.plot)
    failed = []
    if args.max_mean_kld is not None and not r.mean_kld <= args.max_mean_kld:
        failed.append(f"mean KLD {r.mean_kld:.6g} > --max-mean-kld {args.max_mean_kld:g}")
    if args.min_same_top is not None and not r.same_top_p >= args.min_same_top:
        failed.append(f"same top p {r.same_top_p:.6g} < --min-same-top {args.min_same_top:g}")
    if args.json:
        d = r.to_dict()
        d["failed"] = failed
        print(json.dumps(d, indent=1, ensure_ascii=False))
    else:
        print(str(r))
        if args.save:
            print(f"\nsaved A's logits to {args.save}")
        print("\n" + ("FAILED: " + "; ".join(failed) if failed else "OK"))
    return _cli.EXIT_DIFFER if failed else _cli.EXIT_OK


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except UnicodeDecodeError as e:
        raise _cli.CliError(f"--text {path}: not UTF-8 text ({e})") from None
