"""`python -m orc invariance FILE "prompt"`: are the activations the same however the prompt is fed?

Prefill in one call against token by token, other chunk sizes inside one call (n_batch), two
calls, a fork, a rewind-and-redo and (when the build has Model.forward_batch) a batch with other
sequences, hook by hook (orc.check_invariance). Exit code 0 when every comparison is exact (on
the CPU; within --tol elsewhere), 1 when one is not, 2 on trouble.
"""
from __future__ import annotations

import json

from . import _cli


def add_parser(sub) -> None:
    p = sub.add_parser("invariance", help="compare prefill in one call with token by token, other chunk sizes, "
                                          "fork, rewind and batch, hook by hook",
                       description="Feed the prompt in several ways and compare every captured hook with a prefill "
                                   "in one call. On the CPU backend all are expected to be bitwise equal. Exit code "
                                   "1 when one is not.")
    _cli.add_model_args(p, device_default="cpu")
    _cli.add_prompt_args(p)
    p.add_argument("--capture", default="*", help="glob patterns of the hooks to compare, comma-separated "
                                                  "(default: every hook)")
    p.add_argument("--n-batch", default="1,2,3,7", help="chunk sizes to try inside one call (default: %(default)s)")
    p.add_argument("--split", type=int, default=None, help="where the two-call, fork and rewind checks cut "
                                                           "(default: half the prompt)")
    p.add_argument("--tol", type=float, default=None, help="per-position NMSE allowed (default: 0, bitwise, on the "
                                                           "CPU; 1e-6 on a GPU)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    return _cli.guarded("invariance", lambda: _run(args))


def _run(args) -> int:
    from .invariance import check_invariance

    capture = [c.strip() for c in args.capture.split(",") if c.strip()]
    if not capture:
        raise _cli.CliError("--capture: no hook patterns given")
    try:
        sizes = [int(x) for x in args.n_batch.replace(",", " ").split()]
    except ValueError:
        raise _cli.CliError(f"--n-batch: integers separated by commas, got {args.n_batch!r}") from None
    if any(x < 1 for x in sizes):
        raise _cli.CliError("--n-batch sizes must be >= 1")
    if args.tol is not None and not args.tol >= 0:
        raise _cli.CliError(f"--tol must be >= 0, got {args.tol}")
    model = _cli.load_model(args.file, args.device, args.dtype, threads=args.threads, progress=not args.no_progress,
                            weights=getattr(args, "weights", None))
    try:
        ids = _cli.prompt_ids(model, args)
        if len(ids) < 2:
            raise _cli.CliError(f"the prompt has {len(ids)} token(s): at least 2 are needed")
        if args.split is not None and not 0 < args.split < len(ids):
            raise _cli.CliError(f"--split must be in [1, {len(ids) - 1}] for this {len(ids)}-token prompt")
        rep = check_invariance(model, ids, capture=capture, n_batch=sizes, split=args.split, tol=args.tol)
    finally:
        model.close()
    if args.json:
        print(json.dumps(rep.to_dict(), indent=1))
    else:
        print(rep)
        print("OK: invariant" if rep.ok else "NOT INVARIANT")
    return _cli.EXIT_OK if rep.ok else _cli.EXIT_DIFFER
