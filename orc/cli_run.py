"""`python -m orc run FILE "prompt"`: generate text, streamed to stdout as it is decoded.

Text goes to stdout through the tokenizer's streaming decoder, so a UTF-8 character split over
several byte tokens is printed only once it is complete (stdout is always valid UTF-8). The
summary (prompt and generated tokens, tokens per second, why generation stopped) goes to stderr,
so `orc run ... > out.txt` captures exactly the generated text. Greedy by default (--temp 0): the
same command gives the same text on every run; with --temp > 0, --seed picks the random stream.
"""
from __future__ import annotations

import sys
import time

from . import _cli


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="generate text from a prompt, streamed to stdout",
                       description="Generate text from a prompt; the text streams to stdout, a summary "
                                   "line (tokens, tok/s) goes to stderr.")
    _cli.add_model_args(p)
    _cli.add_prompt_args(p)
    g = p.add_argument_group("generation")
    g.add_argument("-n", "--max-tokens", type=int, default=128, help="tokens to generate at most (default: 128)")
    g.add_argument("--temp", "--temperature", dest="temperature", type=float, default=0.0,
                   help="sampling temperature; 0 is greedy (default: 0)")
    g.add_argument("--top-k", type=int, default=0, help="keep the k most likely tokens (0: all; default: 0)")
    g.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling threshold (default: 1.0, off)")
    g.add_argument("--min-p", type=float, default=0.0, help="drop tokens below min_p * p(top) (default: 0, off)")
    g.add_argument("--repeat-penalty", type=float, default=1.0, help="penalty for recent tokens (default: 1.0, off)")
    g.add_argument("--seed", type=int, default=0, help="random seed for sampling (default: 0)")
    g.add_argument("--n-ctx", type=int, default=None,
                   help="KV cache size (default: prompt + max tokens)")
    g.add_argument("--ignore-eos", action="store_true", help="do not stop at end-of-generation tokens")
    g.add_argument("--show-ids", action="store_true",
                   help="print the generated token ids (space-separated) instead of text")
    p.set_defaults(func=run)


def run(args) -> int:
    return _cli.guarded("run", lambda: _run(args))


def _run(args) -> int:
    import orc

    if args.max_tokens < 0:
        raise _cli.CliError(f"--max-tokens must be >= 0, got {args.max_tokens}")
    t0 = time.perf_counter()
    model = _cli.load_model(args.file, args.device, args.dtype, threads=args.threads, progress=not args.no_progress,
                            weights=getattr(args, "weights", None))
    t_load = time.perf_counter() - t0
    try:
        ids = _cli.prompt_ids(model, args)
        need = len(ids) + args.max_tokens
        n_ctx = args.n_ctx if args.n_ctx is not None else need
        if n_ctx < need:
            raise _cli.CliError(f"--n-ctx {n_ctx} is too small for the prompt ({len(ids)} tokens) + --max-tokens "
                                f"({args.max_tokens})")
        n_train = int(model.config["n_ctx_train"])
        if need > n_train:
            raise _cli.CliError(f"the prompt ({len(ids)} tokens) + --max-tokens ({args.max_tokens}) exceed the "
                                f"model's training context ({n_train})")
        tok = None if args.show_ids else _cli.tokenizer_or_none(model)
        if tok is None and not args.show_ids:
            print("orc run: the file's tokenizer is not usable here; printing token ids", file=sys.stderr)
        show_ids = args.show_ids or tok is None
        eog = set() if args.ignore_eos else _eog_ids(model)
        params = dict(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, min_p=args.min_p,
                      repeat_penalty=args.repeat_penalty)
        orc.Sampler(**params)  # bad parameters fail here, before any work, as one line
        with orc.Session(model, n_ctx=n_ctx) as s:
            return _generate(model, s, ids, args, params, tok, show_ids, eog, t_load)
    finally:
        model.close()


def _eog_ids(model) -> set[int]:
    tok = _cli.tokenizer_or_none(model)
    if tok is None:
        return set()
    ids = set(getattr(tok, "eog_ids", ()) or ())
    for t in (getattr(tok, "eos", None), getattr(tok, "eot", None)):
        if t is not None:
            ids.add(int(t))
    return ids


def _generate(model, s, ids, args, params, tok, show_ids, eog, t_load) -> int:
    out = sys.stdout
    decoder = tok.decode_stream() if tok is not None and not show_ids else None
    # A bar for long generations only where it does not interleave with the streamed text.
    bar = _cli.Progress("generating", args.max_tokens,
                        enabled=_cli.isatty(sys.stderr) and not _cli.isatty(out) and not args.no_progress)
    n_gen, reason = 0, "max tokens"
    t_start = time.perf_counter()
    t_first = None
    wrote = ""
    try:
        # stop=[]: end-of-generation is handled here, so the stop token is not printed.
        steps = s.generate(ids, args.max_tokens, stop=[], seed=args.seed, **params)
        for step in steps:
            if t_first is None:
                t_first = time.perf_counter()
            if step.token in eog:
                reason = f"end of generation (token {step.token})"
                break
            n_gen += 1
            if show_ids:
                piece = f"{' ' if n_gen > 1 else ''}{step.token}"
            else:
                piece = decoder.push(step.token)
            if piece:
                bar.close()
                out.write(piece)
                out.flush()
                wrote = piece
            bar.update(n_gen)
        steps.close()
    except KeyboardInterrupt:
        reason = "interrupted"
    finally:
        bar.close()
    if decoder is not None:
        tail = decoder.flush()
        if tail:
            out.write(tail)
            wrote = tail
    if not wrote.endswith("\n"):
        out.write("\n")
    out.flush()
    t_end = time.perf_counter()
    if t_first is None:
        t_first = t_end
    t_prompt, t_gen = t_first - t_start, t_end - t_first
    rate = f"{n_gen / t_gen:.1f} tok/s" if t_gen > 0 and n_gen else "-"
    prate = f"{len(ids) / t_prompt:.1f} tok/s" if t_prompt > 0 else "-"
    print(f"orc run: {len(ids)} prompt tokens ({prate}), {n_gen} generated in {t_gen:.2f} s ({rate}); "
          f"stopped: {reason}; {model.device} {model.dtype}, loaded in {t_load:.2f} s", file=sys.stderr)
    return _cli.EXIT_INTERRUPTED if reason == "interrupted" else _cli.EXIT_OK
