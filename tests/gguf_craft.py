"""A byte-level GGUF builder for tests: valid files and the malformed ones gguf-py's
writer refuses to write (wrong counts, bad types, overlapping offsets, truncation...).

    b = build([kv("general.architecture", STRING, "llama")],
              [tensor("w", (64, 2), F32)])
    b.data                      # the file's bytes
    b.kv_offsets[0]             # file offset of key #0's length field
    b.tensor_info_offsets[0]    # file offset of tensor #0's info record
    b.data_offset               # where the data section starts

Everything is little-endian. Field-level overrides (`n_kv=`, `n_tensors=`, `version=`,
`magic=`, a tensor's `offset=`/`n_dims=`/`type_id=`, a kv's `raw=` payload) let a test
make exactly one thing wrong. Sizes come from gguf-py's GGML_QUANT_SIZES (the oracle),
not from orc's own table.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

# GGUF value types
UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)
SCALAR_FMT = {UINT8: "<B", INT8: "<b", UINT16: "<H", INT16: "<h", UINT32: "<I", INT32: "<i", FLOAT32: "<f",
              BOOL: "<B", UINT64: "<Q", INT64: "<q", FLOAT64: "<d"}
NP_DTYPE = {UINT8: np.uint8, INT8: np.int8, UINT16: np.uint16, INT16: np.int16, UINT32: np.uint32, INT32: np.int32,
            FLOAT32: np.float32, BOOL: np.bool_, UINT64: np.uint64, INT64: np.int64, FLOAT64: np.float64}

# a few ggml type ids
F32, F16, Q4_0, Q8_0, Q4_K = 0, 1, 2, 8, 12


def gstr(s: str | bytes) -> bytes:
    b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
    return struct.pack("<Q", len(b)) + b


def encode_value(vtype: int, value, elem_type: int | None = None) -> bytes:
    """The bytes of a value of `vtype` (without the type id)."""
    if vtype == STRING:
        return gstr(value)
    if vtype == ARRAY:
        out = struct.pack("<IQ", elem_type, len(value))
        if elem_type == STRING:
            return out + b"".join(gstr(v) for v in value)
        return out + b"".join(struct.pack(SCALAR_FMT[elem_type], v) for v in value)
    return struct.pack(SCALAR_FMT[vtype], value)


@dataclass
class KV:
    key: str | bytes
    vtype: int
    value: object = None
    elem_type: int | None = None
    raw: bytes | None = None  # when set, written after the type id instead of the encoded value

    def encode(self) -> bytes:
        payload = self.raw if self.raw is not None else encode_value(self.vtype, self.value, self.elem_type)
        return gstr(self.key) + struct.pack("<I", self.vtype) + payload


def kv(key, vtype, value=None, elem_type=None, raw=None) -> KV:
    return KV(key, vtype, value, elem_type, raw)


def ggml_nbytes(type_id: int, ne) -> int:
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    bs, ts = GGML_QUANT_SIZES[GGMLQuantizationType(type_id)]
    n = 1
    for d in ne:
        n *= d
    return n // bs * ts


@dataclass
class Tensor:
    name: str | bytes
    ne: tuple  # ggml order: ne[0] is contiguous
    type_id: int
    data: bytes | None = None  # default: deterministic pseudo-random bytes of the right size
    offset: int | None = None  # default: the running, aligned offset
    n_dims: int | None = None  # default: len(ne)

    def nbytes(self) -> int:
        return len(self.data) if self.data is not None else ggml_nbytes(self.type_id, self.ne)


def tensor(name, ne, type_id, data=None, offset=None, n_dims=None) -> Tensor:
    return Tensor(name, tuple(ne), type_id, data, offset, n_dims)


def pseudo_random_bytes(n: int, seed: int) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, size=n, dtype=np.uint8).tobytes()


@dataclass
class Built:
    data: bytes
    kv_offsets: list = field(default_factory=list)
    tensor_info_offsets: list = field(default_factory=list)
    data_offset: int = 0
    tensor_offsets: list = field(default_factory=list)  # relative to the data section

    def write(self, path) -> str:
        with open(path, "wb") as f:
            f.write(self.data)
        return str(path)


def pad(x: int, n: int) -> int:
    return (x + n - 1) // n * n


def build(kvs=(), tensors=(), *, version=3, magic=b"GGUF", n_kv=None, n_tensors=None, alignment=None,
          pad_last=True) -> Built:
    """Lay out a GGUF file. `alignment` is the layout's alignment (default: the value of a
    general.alignment kv if one is given, else 32); it does not add a kv by itself."""
    kvs = list(kvs)
    tensors = list(tensors)
    if alignment is None:
        alignment = 32
        for k in kvs:
            if k.key in ("general.alignment", b"general.alignment") and k.vtype == UINT32 and k.raw is None:
                alignment = k.value or 32
    out = bytearray()
    out += magic
    out += struct.pack("<I", version)
    out += struct.pack("<Q", len(tensors) if n_tensors is None else n_tensors & (2**64 - 1))
    out += struct.pack("<Q", len(kvs) if n_kv is None else n_kv & (2**64 - 1))
    b = Built(b"")
    for k in kvs:
        b.kv_offsets.append(len(out))
        out += k.encode()
    offsets = []
    running = 0
    for i, t in enumerate(tensors):
        b.tensor_info_offsets.append(len(out))
        nd = len(t.ne) if t.n_dims is None else t.n_dims
        off = running if t.offset is None else t.offset
        offsets.append(off)
        running = pad(off + t.nbytes(), alignment)
        out += gstr(t.name) + struct.pack("<I", nd)
        out += b"".join(struct.pack("<q", d) for d in t.ne)
        out += struct.pack("<i", t.type_id) + struct.pack("<Q", off & (2**64 - 1))
    b.data_offset = pad(len(out), alignment)
    b.tensor_offsets = offsets
    if tensors:
        out += b"\0" * (b.data_offset - len(out))
        blob = bytearray()
        for i, (t, off) in enumerate(zip(tensors, offsets)):
            if off >= 2**40:  # hostile offsets: nothing sensible to write
                continue
            data = t.data if t.data is not None else pseudo_random_bytes(t.nbytes(), 1000 + i)
            end = off + len(data)
            if len(blob) < end:
                blob += b"\0" * (end - len(blob))
            blob[off:end] = data
        if pad_last:
            blob += b"\0" * (pad(len(blob), alignment) - len(blob))
        out += blob
    b.data = bytes(out)
    return b


def minimal_valid(**kw) -> Built:
    """A small valid file: two keys, two F32 tensors."""
    return build([kv("general.architecture", STRING, "llama"), kv("general.name", STRING, "tiny")],
                 [tensor("a.weight", (8, 2), F32), tensor("b.weight", (32,), F32)], **kw)
