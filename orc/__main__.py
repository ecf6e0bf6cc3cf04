"""python -m orc: command-line entry points."""
from __future__ import annotations

import argparse
import json
import sys


def _cmd_build_info(args) -> int:
    import orc

    info = orc.build_info()
    if not args.sources:
        info["sources"] = f"{len(info['sources'])} files (--sources to list)"
    print(json.dumps(info, indent=2, sort_keys=True))
    return 0


def _version_line() -> str:
    import orc

    info = orc.build_info()
    commit = (info.get("git_commit") or "unknown")[:12] + ("-dirty" if info.get("git_dirty") else "")
    st = orc.cuda_status()
    gpu = f"cuda: {st['device_count']} device(s)" if st["available"] else f"cuda: unavailable ({st['reason']})"
    stale = info.get("stale_sources")
    return (f"orc {orc.__version__} (commit {commit}, source {info['source_hash'][:12]}, built {info.get('build_time')})"
            f"\n{gpu}" + (f"\nSTALE BUILD: {', '.join(stale)}" if stale else ""))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m orc", description="orc: inspect and run GGUF models")
    p.add_argument("--version", action="store_true", help="print version, build provenance and GPU status")
    sub = p.add_subparsers(dest="command")
    b = sub.add_parser("build-info", help="print orc.build_info() as JSON")
    b.add_argument("--sources", action="store_true", help="list every compiled source file with its hash")
    b.set_defaults(func=_cmd_build_info)
    from .cli_info import add_parser as _add_info

    _add_info(sub)
    from .cli_run import add_parser as _add_run
    from .cli_logits import add_parser as _add_logits
    from .cli_diff import add_parser as _add_diff
    from .cli_kld import add_parser as _add_kld
    from .cli_invariance import add_parser as _add_invariance

    _add_run(sub)
    _add_logits(sub)
    _add_diff(sub)
    _add_kld(sub)
    _add_invariance(sub)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        print(_version_line())
        return 0
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
