"""`python -m orc logits FILE "prompt" --top 10`: what the model predicts after each prompt token.

For every position of the prompt: the input token, then the N most likely next tokens with their
id, text, logit and probability (softmax over the whole vocabulary, in float64). `--json` prints
the same as one JSON document for scripts. Probabilities are the model's own distribution
(temperature 1, no sampling filters).
"""
from __future__ import annotations

import json

import numpy as np

from . import _cli


def add_parser(sub) -> None:
    p = sub.add_parser("logits", help="the top tokens and probabilities at each prompt position",
                       description="Run the prompt and show, for each position, the top-N next tokens with "
                                   "their logits and probabilities.")
    _cli.add_model_args(p)
    _cli.add_prompt_args(p)
    p.add_argument("--top", type=int, default=10, help="tokens to show per position (default: 10)")
    p.add_argument("--positions", default="all",
                   help="'all' (default), 'last', or position indices like '0,3,-1'")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(func=run)


def run(args) -> int:
    return _cli.guarded("logits", lambda: _run(args))


def _positions(spec: str, n: int) -> list[int]:
    if spec == "all":
        return list(range(n))
    if spec == "last":
        return [n - 1]
    out = []
    for part in spec.replace(",", " ").split():
        try:
            p = int(part)
        except ValueError:
            raise _cli.CliError(f"--positions: {part!r} is not 'all', 'last' or an integer") from None
        if not -n <= p < n:
            raise _cli.CliError(f"--positions: {p} is outside the prompt's {n} positions")
        out.append(p % n)
    if not out:
        raise _cli.CliError("--positions: no positions given")
    return out


def top_tokens(logits: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids, logits, probabilities) of the n most likely tokens of each row of `logits`
    ([positions, n_vocab]), most likely first; probabilities from a float64 softmax. Ties keep
    the lower token id first."""
    x = np.asarray(logits, dtype=np.float64)
    m = x.max(axis=1, keepdims=True)
    z = np.exp(x - m)
    p = z / z.sum(axis=1, keepdims=True)
    order = np.argsort(-x, axis=1, kind="stable")[:, :n]
    rows = np.arange(x.shape[0])[:, None]
    return order, x[rows, order], p[rows, order]


def _run(args) -> int:
    import orc

    if args.top < 1:
        raise _cli.CliError(f"--top must be >= 1, got {args.top}")
    model = _cli.load_model(args.file, args.device, args.dtype, threads=args.threads, progress=not args.no_progress,
                            weights=getattr(args, "weights", None))
    try:
        ids = _cli.prompt_ids(model, args)
        positions = _positions(args.positions, len(ids))
        with orc.Session(model, n_ctx=len(ids)) as s:
            logits = s.forward(ids, logits="all")
        bad = ~np.isfinite(logits[positions])
        n = min(args.top, logits.shape[1])
        top_ids, top_logits, top_p = top_tokens(logits[positions], n)
        text = {int(t): _cli.token_bytes(model, int(t)) for t in set(top_ids.ravel().tolist()) | set(ids)}
        if args.json:
            doc = {"file": args.file, "device": model.device, "dtype": model.dtype, "n_vocab": int(logits.shape[1]),
                   "prompt_ids": ids, "positions": []}
            for k, pos in enumerate(positions):
                doc["positions"].append({
                    "position": pos, "token": ids[pos], **_text_fields(text[ids[pos]]),
                    "nonfinite": int(bad[k].sum()),
                    "top": [{"id": int(t), **_text_fields(text[int(t)]), "logit": _num(lg), "prob": _num(pr)}
                            for t, lg, pr in zip(top_ids[k], top_logits[k], top_p[k])]})
            print(json.dumps(doc, indent=1, ensure_ascii=False))
        else:
            print(f"{args.file}: {len(ids)} prompt tokens, vocabulary {logits.shape[1]}, on {model.device} "
                  f"({model.dtype}); top {n} next tokens per position")
            for k, pos in enumerate(positions):
                print(f"\nposition {pos}: token {ids[pos]} {_cli.show(text[ids[pos]])}")
                if bad[k].any():
                    print(f"  WARNING: {int(bad[k].sum())} NaN/Inf logit(s) at this position")
                w = max(len(_cli.show(text[int(t)])) for t in top_ids[k])
                print(f"  {'rank':>4}  {'id':>7}  {'text':<{w}}  {'logit':>10}  {'prob':>8}")
                for r, (t, lg, pr) in enumerate(zip(top_ids[k], top_logits[k], top_p[k]), 1):
                    print(f"  {r:>4}  {int(t):>7}  {_cli.show(text[int(t)]):<{w}}  {lg:>10.4f}  {pr:>8.4f}")
        return _cli.EXIT_OK
    finally:
        model.close()


def _text_fields(b: bytes | None) -> dict:
    """JSON fields for a token's text: "text" (invalid UTF-8 as U+FFFD) and its exact "bytes" (hex)."""
    if b is None:
        return {"text": None, "bytes": None}
    return {"text": b.decode("utf-8", errors="replace"), "bytes": b.hex()}


def _num(x) -> float | str:
    x = float(x)
    return x if np.isfinite(x) else str(x)  # JSON has no NaN/Inf
