"""Write an F16 GGUF from the dequantized weights of a quantized one, and optionally a copy
requantized from it: the reference and the candidate of a KL-divergence regression check when
no fixture ships the original F16 model.

    python3 tools/make_f16_reference.py smollm2-135m-instruct /tmp/smol-f16.gguf \\
        [--requant Q4_0 /tmp/smol-q4_0.gguf] [--keep 'blk.7.ffn_down.weight']

Every quantized tensor is dequantized by orc (float32) and stored as F16; F32/F16/BF16 tensors are
copied as they are; the metadata is copied, general.file_type set to match. The F16 file holds
the quantized model's values (to float16's precision), not the original model's: against it, a
KL divergence measures what a *further* quantization loses (requantization), which is smaller
than the loss of quantizing the original weights (the first quantization already removed what
Q4 cannot hold). `--requant TYPE` writes that further quantization (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
with gguf-py's reference quantizers) of every 2-D weight. `--keep PATTERN` (glob, repeatable)
keeps the matching tensors as stored in the source (still quantized), e.g. to plant a
`fault="raw_as_f16"` in exactly one tensor of an otherwise F16 model.
"""
from __future__ import annotations

import argparse
import fnmatch
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# GGUF metadata value types as orc.GGUFFile.value_type names them -> orc.synth.write_gguf's names
_VTYPES = {"UINT8": "u8", "INT8": "i8", "UINT16": "u16", "INT16": "i16", "UINT32": "u32", "INT32": "i32",
           "FLOAT32": "f32", "BOOL": "bool", "STRING": "str", "UINT64": "u64", "INT64": "i64", "FLOAT64": "f64"}
# llama.cpp's llama_ftype values of the files written
_FILE_TYPES = {"F16": 1, "Q4_0": 2, "Q4_1": 3, "Q8_0": 7, "Q5_0": 8, "Q5_1": 9}
FLOAT_TYPES = ("F32", "F16", "BF16")
REQUANT_TYPES = ("Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0")


def _metadata(f, file_type: int, note: str):
    out = []
    for key, value in f.metadata.items():
        vt = f.value_type(key)
        if vt.startswith("ARRAY["):
            inner = vt[len("ARRAY["):-1]
            if inner not in _VTYPES:
                raise ValueError(f"{key}: cannot copy a {vt}")
            vtype = "arr:" + _VTYPES[inner]
            value = list(value) if inner == "STRING" else np.asarray(value)
        else:
            vtype = _VTYPES[vt]
        if key == "general.file_type":
            value = file_type
        out.append((key, vtype, value))
    if "general.file_type" not in f.metadata:
        out.append(("general.file_type", "u32", file_type))
    out.append(("orc.reference.note", "str", note))
    return out


def _f16(f, t) -> np.ndarray:
    """The tensor's values as orc dequantizes them, rounded to float16 (float32 array)."""
    import orc

    if t.type == "F32":
        return np.frombuffer(f.raw(t.name).tobytes(), np.float32).reshape(t.shape)
    vals = orc.dequantize(f.raw(t.name), t.type, t.shape)
    return np.asarray(vals, np.float32).astype(np.float16).astype(np.float32)


def convert(src: str, out: str, *, requant: str | None = None, requant_out: str | None = None,
            keep: list[str] = ()) -> dict:
    """Write the F16 reference of `src` to `out` (and the requantized copy); returns counts."""
    import gguf

    import orc
    from orc import synth
    from orc.model import resolve_model_path

    src = resolve_model_path(src)
    if requant is not None and requant not in REQUANT_TYPES:
        raise ValueError(f"--requant: one of {', '.join(REQUANT_TYPES)}")
    stats = {"dequantized": 0, "copied": 0, "kept": 0, "requantized": 0}
    with orc.GGUFFile(src) as f:
        ref_tensors, req_tensors = [], []
        for t in f.tensors:
            if any(fnmatch.fnmatchcase(t.name, p) for p in keep):
                raw = f.raw(t.name).tobytes()
                ref_tensors.append((t.name, t.type, t.shape, raw))
                req_tensors.append((t.name, t.type, t.shape, raw))
                stats["kept"] += 1
                continue
            if t.type in FLOAT_TYPES:
                raw = f.raw(t.name).tobytes()
                ref_tensors.append((t.name, t.type, t.shape, raw))
                stats["copied"] += 1
                vals = _f16(f, t) if requant and len(t.shape) == 2 and t.type == "F32" else None
            else:
                vals = _f16(f, t)
                ref_tensors.append((t.name, "F16", t.shape, vals.astype(np.float16).tobytes()))
                stats["dequantized"] += 1
            if requant:
                if len(t.shape) == 2 and t.shape[-1] % 32 == 0:
                    v = vals if vals is not None else _f16(f, t)
                    q = gguf.quants.quantize(v, gguf.GGMLQuantizationType[requant])
                    req_tensors.append((t.name, requant, t.shape, q.tobytes()))
                    stats["requantized"] += 1
                else:
                    req_tensors.append(ref_tensors[-1])
        name = os.path.basename(src)
        synth.write_gguf(out, _metadata(f, _FILE_TYPES["F16"], f"F16 reference written by orc from the dequantized "
                                                              f"weights of {name}"), ref_tensors,
                         alignment=f.alignment)
        if requant:
            synth.write_gguf(requant_out, _metadata(f, _FILE_TYPES[requant],
                                                    f"{requant} requantized by orc (gguf-py) from the F16 reference "
                                                    f"of {name}"), req_tensors, alignment=f.alignment)
    return stats


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("src", help="a quantized .gguf, or a pinned model name (orc.fixtures.names())")
    p.add_argument("out", help="the F16 .gguf to write")
    p.add_argument("--requant", nargs=2, metavar=("TYPE", "OUT"),
                   help=f"also write the F16 values requantized to TYPE ({', '.join(REQUANT_TYPES)}) to OUT")
    p.add_argument("--keep", action="append", default=[], metavar="PATTERN",
                   help="keep the tensors matching this glob as stored in the source (repeatable)")
    args = p.parse_args(argv)
    req, req_out = (args.requant if args.requant else (None, None))
    stats = convert(args.src, args.out, requant=req, requant_out=req_out, keep=args.keep)
    print(f"{args.out}: {stats['dequantized']} tensors dequantized to F16, {stats['copied']} copied, "
          f"{stats['kept']} kept as stored" + (f"; {req_out}: {stats['requantized']} requantized to {req}" if req else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
