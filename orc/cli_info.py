"""`python -m orc info FILE [--json] [--tensors] [--metadata]`: what a GGUF file holds."""
from __future__ import annotations

import json


def add_parser(sub) -> None:
    p = sub.add_parser("info", help="summarise a GGUF file: architecture, hyperparameters, tensors, tokenizer")
    p.add_argument("file", help="path to a .gguf file, or the name of a pinned model (orc.fixtures.names(), "
                                "fetched on first use), e.g. smollm2-135m-instruct")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--tensors", action="store_true", help="also list every tensor (name, type, shape, offset, bytes)")
    p.add_argument("--metadata", action="store_true", help="also list every key with its type and (shortened) value")
    p.set_defaults(func=run)


def _human_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return str(n)


def _human_count(n: int) -> str:
    for div, suf in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= div:
            return f"{n / div:.2f}{suf}"
    return str(n)


def _short(v, width: int = 80) -> str:
    if isinstance(v, dict) and "length" in v:
        s = f"[{v['array']} x {v['length']}] {v['head'][:8]}..."
    else:
        s = json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else repr(v)
    return s if len(s) <= width else s[: width - 3] + "..."


def _text(s: dict, f, want_tensors: bool, want_metadata: bool) -> str:
    lines = []
    add = lines.append
    add(f"file           {s['path']} ({_human_bytes(s['file_size'])}, {s['file_size']:,} bytes)")
    add(f"gguf           v{s['gguf_version']}, alignment {s['alignment']}, data section at offset "
        f"{s['data_offset']:,}, {s['n_kv']} keys, {s['n_tensors']} tensors")
    add(f"architecture   {s['architecture']}")
    if s["name"] is not None:
        add(f"name           {s['name']}")
    if s["file_type"]:
        add(f"file type      {s['file_type']['id']} ({s['file_type']['name']})")
    add(f"parameters     {s['parameters']:,} ({_human_count(s['parameters'])})")
    if s["hyperparameters"]:
        add("")
        add(f"hyperparameters ({s['architecture']}.*)")
        w = max(len(k) for k in s["hyperparameters"])
        for k, v in s["hyperparameters"].items():
            add(f"  {k:<{w}}  {_short(v)}")
    if s["tensor_types"]:
        add("")
        add("tensor types")
        add(f"  {'type':<8} {'tensors':>8} {'parameters':>16} {'bytes':>16}")
        for t, e in s["tensor_types"].items():
            add(f"  {t:<8} {e['tensors']:>8,} {e['elements']:>16,} {e['bytes']:>16,}")
    tok = s["tokenizer"]
    if tok:
        add("")
        add("tokenizer")
        for k in ("model", "pre"):
            if k in tok:
                add(f"  {k:<14} {tok[k]}")
        if "vocab_size" in tok:
            add(f"  {'vocabulary':<14} {tok['vocab_size']:,} tokens"
                + (f", {tok['merges']:,} merges" if "merges" in tok else ""))
        if "token_types" in tok:
            add(f"  {'token types':<14} " + ", ".join(f"{k} {n:,}" for k, n in tok["token_types"].items()))
        for name, e in tok.get("special_tokens", {}).items():
            add(f"  {name + ' id':<14} {e['id']} {_short(e['text'], 60)}")
        for k, v in tok.items():
            if k.startswith("add_"):
                add(f"  {k:<14} {v}")
        if "chat_template_chars" in tok:
            add(f"  {'chat template':<14} {tok['chat_template_chars']:,} characters")
    if want_metadata:
        meta = f.metadata
        add("")
        add("metadata")
        w = max((len(k) for k in meta), default=0)
        from .gguf import _jsonable

        for k, v in meta.items():
            add(f"  {k:<{w}}  {f.value_type(k):<14} {_short(_jsonable(v), 70)}")
    if want_tensors:
        add("")
        add("tensors")
        ts = s["tensors"]
        w = max((len(t["name"]) for t in ts), default=4)
        add(f"  {'#':>5}  {'name':<{w}}  {'type':<8} {'shape':<22} {'offset':>14} {'bytes':>14}")
        for i, t in enumerate(ts):
            shape = str(tuple(t["shape"]))
            add(f"  {i:>5}  {t['name']:<{w}}  {t['type']:<8} {shape:<22} {t['offset']:>14,} {t['nbytes']:>14,}")
    return "\n".join(lines)


def run(args) -> int:
    from . import _cli

    return _cli.guarded("info", lambda: _run(args))


def _run(args) -> int:
    from . import _cli
    from .gguf import GGUFFile, summarize

    path = _cli.resolve_model_file(args.file)
    with GGUFFile(path) as f:
        s = summarize(f, tensors=args.tensors)
        if args.json:
            if args.metadata:
                from .gguf import _jsonable

                s["metadata"] = {k: {"type": f.value_type(k), "value": _jsonable(v)} for k, v in f.metadata.items()}
            print(json.dumps(s, indent=2, ensure_ascii=False))
        else:
            print(_text(s, f, args.tensors, args.metadata))
    return 0
