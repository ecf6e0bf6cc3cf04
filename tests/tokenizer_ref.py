"""Independent reference tokenizers for orc's tokenizer tests: Hugging Face `tokenizers`
objects built from the same vocabulary a GGUF file carries, configured as the models'
original tokenizer.json files are (the pre-tokenizer regexes below are copied from them),
plus helpers to read tokenizer metadata with gguf-py and to find the vocabulary files
that tools/fetch_tokenizer_vocabs.py downloads.

Used by tests/test_tokenizer.py and tools/make_tokenizer_goldens.py.
"""
from __future__ import annotations

import json
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(REPO, "tests", "data")

# The Split regexes of the original tokenizer.json files (Hugging Face), verbatim; "gpt2" is the
# one built into HF's ByteLevel pre-tokenizer (use_regex=True).
REGEX = {
    "gpt2": r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+",
    "llama3": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    "qwen2": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    "qwen35": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    # gpt-oss (o200k_harmony) and tiktoken's o200k_base: tiktoken_ext/openai_public.py's pat_str
    "o200k": (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
              r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
              r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"),
}
# tokenizer.ggml.pre -> (regex name or "gpt2" for ByteLevel's own regex, ignore_merges)
PRE = {
    "gpt-2": ("gpt2", False), "gpt2": ("gpt2", False),
    "llama-bpe": ("llama3", True), "llama3": ("llama3", True), "llama-v3": ("llama3", True),
    "qwen2": ("qwen2", False), "deepseek-r1-qwen": ("qwen2", False), "qwen35": ("qwen35", False),
    "smollm": ("smollm", False), "gpt-4o": ("o200k", False),
}


def hf_pre_tokenizer(kind, for_training=False):
    """The pre-tokenizer of the original tokenizer.json for a split rule `kind`.
    SmolLM's (llama.cpp's SMOLLM rule): Digits(individual_digits) then GPT-2's ByteLevel regex."""
    from tokenizers import Regex, pre_tokenizers

    if kind == "gpt2":
        return pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if kind == "smollm":
        return pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    return pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(REGEX[kind]), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6

# Vocabularies the tests use when present: name -> file name in the vocabulary directory.
VOCABS = {
    "qwen2": "ggml-vocab-qwen2.gguf",
    "llama-bpe": "ggml-vocab-llama-bpe.gguf",
    "gpt-2": "ggml-vocab-gpt-2.gguf",
    "qwen35": "ggml-vocab-qwen35.gguf",
    "llama-spm": "ggml-vocab-llama-spm.gguf",
    "phi-3": "ggml-vocab-phi-3.gguf",
    "gemma3": "gemma3-vocab.gguf",
}


def vocab_dir():
    """Where tools/fetch_tokenizer_vocabs.py puts the vocabularies ($ORC_VOCAB_DIR, else
    .cache/vocab in the repository)."""
    return os.environ.get("ORC_VOCAB_DIR") or os.path.join(REPO, ".cache", "vocab")


def vocab_path(name):
    p = os.path.join(vocab_dir(), VOCABS[name])
    return p if os.path.exists(p) else None


def load_corpus():
    with open(os.path.join(DATA, "tokenizer_corpus.json"), encoding="utf-8") as f:
        return json.load(f)["texts"]


def read_gguf_metadata(path):
    """The tokenizer.* keys of a GGUF file as plain Python values (gguf-py)."""
    import gguf

    r = gguf.GGUFReader(path)
    md = {}
    for k, f in r.fields.items():
        if not (k.startswith("tokenizer.") or k == "general.architecture"):
            continue
        md[k] = f.contents()
    return md


def split_merge(m):
    i = m.find(" ", 1)
    return m[:i], m[i + 1:]


def spm_merges(tokens, types, scores):
    """BPE merges equivalent to SentencePiece's score-driven merging: every split of a normal
    piece into two normal pieces, ranked by the merged piece's score (best first)."""
    index = {}
    for i, t in enumerate(tokens):
        if types[i] == NORMAL and t not in index:
            index[t] = i
    cands = []
    for piece, pid in index.items():
        if len(piece) < 2:
            continue
        for k in range(1, len(piece)):
            a, b = piece[:k], piece[k:]
            if a in index and b in index:
                cands.append((-scores[pid], pid, index[a], a, b))
    cands.sort()
    return [(a, b) for _, _, _, a, b in cands]


def build_hf(md):
    """A tokenizers.Tokenizer equivalent to the GGUF tokenizer described by `md`
    (metadata dict as read_gguf_metadata returns it). Returns (tokenizer, info) where info
    has bos/eos ids and add_bos/add_eos as the GGUF file asks."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

    model = md["tokenizer.ggml.model"]
    tokens = list(md["tokenizer.ggml.tokens"])
    n = len(tokens)
    types = list(md.get("tokenizer.ggml.token_type", [NORMAL] * n))
    vocab = {}
    for i, t in enumerate(tokens):
        vocab.setdefault(t, i)
    info = {"bos": md.get("tokenizer.ggml.bos_token_id"), "eos": md.get("tokenizer.ggml.eos_token_id")}
    if model == "gpt2":
        pre = md["tokenizer.ggml.pre"]
        kind, ignore_merges = PRE[pre]
        merges = [split_merge(m) for m in md["tokenizer.ggml.merges"]]
        merges = [(a, b) for a, b in merges if a in vocab and b in vocab and a + b in vocab]
        tk = Tokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=ignore_merges))
        tk.pre_tokenizer = hf_pre_tokenizer(kind)
        tk.decoder = decoders.ByteLevel()
        info["add_bos"] = md.get("tokenizer.ggml.add_bos_token", kind == "llama3")
        info["add_eos"] = md.get("tokenizer.ggml.add_eos_token", False)
    elif model == "llama":
        scores = list(md.get("tokenizer.ggml.scores", [0.0] * n))
        unk = md.get("tokenizer.ggml.unknown_token_id", 0)
        merges = spm_merges(tokens, types, scores)
        tk = Tokenizer(models.BPE(vocab=vocab, merges=merges, byte_fallback=True, fuse_unk=True,
                                  unk_token=tokens[unk]))
        norm = [normalizers.Replace(" ", "\u2581")]
        if md.get("tokenizer.ggml.add_space_prefix", True):
            norm.insert(0, normalizers.Prepend("\u2581"))
        tk.normalizer = normalizers.Sequence(norm)
        tk.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse()])
        info["bos"] = info["bos"] if info["bos"] is not None else 1
        info["eos"] = info["eos"] if info["eos"] is not None else 2
        info["add_bos"] = md.get("tokenizer.ggml.add_bos_token", True)
        info["add_eos"] = md.get("tokenizer.ggml.add_eos_token", False)
    else:
        raise ValueError(f"no reference for tokenizer.ggml.model = {model!r}")
    added = []
    for i, t in enumerate(tokens):
        if types[i] in (CONTROL, USER_DEFINED, UNKNOWN) and t and vocab[t] == i:
            added.append(AddedToken(t, special=types[i] != USER_DEFINED, normalized=False))
    tk.add_tokens(added)
    return tk, info


def hf_encode(tk, info, text, add_special, special):
    """HF ids for the same call orc.Tokenizer.tokenize(text, add_special, special) makes."""
    tk.encode_special_tokens = not special
    ids = tk.encode(text, add_special_tokens=False).ids
    if add_special and info["add_bos"]:
        ids = [info["bos"]] + ids
    if add_special and info["add_eos"]:
        ids = ids + [info["eos"]]
    return ids


def llamacpp_vectors(name):
    """llama.cpp's published test vectors (models/ggml-vocab-NAME.gguf.inp/.out) when the
    fetch script stored them: [(text, ids)], or None."""
    base = os.path.join(vocab_dir(), VOCABS[name])
    if not (os.path.exists(base + ".inp") and os.path.exists(base + ".out")):
        return None
    with open(base + ".inp", encoding="utf-8") as f:
        inp = f.read().split("\n__ggml_vocab_test__\n")
    with open(base + ".out", encoding="utf-8") as f:
        out = f.read().split("\n")
    return [(s, [int(x) for x in o.split()]) for s, o in zip(inp, out)]


# --- Small vocabularies trained at test time (no download): a vocabulary source for tests that
# must run everywhere. Deterministic for a given tokenizers version. ---

def training_texts():
    """Deterministic pseudo-English plus the corpus, for training small vocabularies."""
    import random

    rng = random.Random(1234)
    words = ("the of and to in is was for on that with as by at from his her they have had not are but be "
             "this which one you were all we can there been if more when will would who so no time people "
             "year world state day man over such because most new some just also work first well way even "
             "don't it's I'm we'll they've naïve café São Größe 東京 北京 你好 世界 こんにちは "
             "🙂 🦙 1 2 3 10 42 100 2026 3.14 x+y f(x) {a:b} [1,2] <b> #include").split()
    lines = []
    for _ in range(400):
        n = rng.randint(3, 14)
        line = " ".join(rng.choice(words) for _ in range(n))
        if rng.random() < 0.3:
            line = line.capitalize() + rng.choice([".", "!", "?", ",", ";", ":"])
        if rng.random() < 0.2:
            line = "  " * rng.randint(1, 3) + line
        lines.append(line + rng.choice(["\n", "\n\n", " ", "\t", "\r\n"]))
    return lines + load_corpus()


SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
USER_DEFINED_TOKEN = "<tool_call>"


def train_bpe_metadata(pre, vocab_size=700):
    """A byte-level BPE vocabulary trained with the pre-tokenizer `pre`, as GGUF metadata:
    specials (control), one user-defined token, the learned vocabulary and merges."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers

    kind, _ = PRE[pre]
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = hf_pre_tokenizer(kind)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tk.train_from_iterator(training_texts(), trainer)
    model = json.loads(tk.to_str())["model"]
    vocab = model["vocab"]
    tokens = [None] * len(vocab)
    for t, i in vocab.items():
        tokens[i] = t
    tokens.append(USER_DEFINED_TOKEN)
    types = [CONTROL if t in SPECIALS else NORMAL for t in tokens]
    types[-1] = USER_DEFINED
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    return {
        "tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": pre,
        "tokenizer.ggml.tokens": tokens, "tokenizer.ggml.token_type": types, "tokenizer.ggml.merges": merges,
        "tokenizer.ggml.bos_token_id": tokens.index("<|endoftext|>"),
        "tokenizer.ggml.eos_token_id": tokens.index("<|im_end|>"),
    }


def train_spm_metadata(vocab_size=700, add_space_prefix=True):
    """A SentencePiece-style vocabulary: <unk> <s> </s>, 256 byte tokens, a user-defined
    token, then BPE pieces learned over U+2581-escaped words, scored by merge rank."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False)
    tk.train_from_iterator(training_texts(), trainer)
    model = json.loads(tk.to_str())["model"]
    merged = {}
    for rank, m in enumerate(model["merges"]):
        a, b = (m.split(" ", 1) if isinstance(m, str) else m)
        merged.setdefault(a + b, rank)
    learned = sorted(model["vocab"].items(), key=lambda kv: kv[1])
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + [USER_DEFINED_TOKEN]
    types = [UNKNOWN, CONTROL, CONTROL] + [BYTE] * 256 + [USER_DEFINED]
    scores = [0.0] * len(tokens)
    for piece, _ in learned:
        tokens.append(piece)
        types.append(NORMAL)
        scores.append(-float(merged.get(piece, 100000 + len(tokens))))
    return {
        "tokenizer.ggml.model": "llama", "tokenizer.ggml.pre": "default",
        "tokenizer.ggml.tokens": tokens, "tokenizer.ggml.token_type": types, "tokenizer.ggml.scores": scores,
        "tokenizer.ggml.bos_token_id": 1, "tokenizer.ggml.eos_token_id": 2, "tokenizer.ggml.unknown_token_id": 0,
        "tokenizer.ggml.add_space_prefix": add_space_prefix,
    }


def write_gguf(path, md, overrides=None, drop=()):
    """Write a vocabulary-only GGUF file with the metadata `md`. overrides: {key: (value,
    GGUFValueType, sub_type or None)} to store a key with a chosen (possibly wrong) type."""
    import gguf

    vt = gguf.GGUFValueType
    w = gguf.GGUFWriter(path, "llama")
    overrides = overrides or {}
    for k, v in md.items():
        if k in drop or k in overrides:
            continue
        if isinstance(v, bool):
            w.add_key_value(k, v, vt.BOOL)
        elif isinstance(v, int):
            w.add_key_value(k, v, vt.UINT32)
        elif isinstance(v, float):
            w.add_key_value(k, v, vt.FLOAT32)
        elif isinstance(v, str):
            w.add_key_value(k, v, vt.STRING)
        elif k == "tokenizer.ggml.scores":
            w.add_key_value(k, list(v), vt.ARRAY, sub_type=vt.FLOAT32)
        elif k == "tokenizer.ggml.token_type":
            w.add_key_value(k, list(v), vt.ARRAY, sub_type=vt.INT32)
        else:
            w.add_key_value(k, list(v), vt.ARRAY, sub_type=vt.STRING)
    for k, (v, t, sub) in overrides.items():
        if sub is None:
            w.add_key_value(k, v, t)
        else:
            w.add_key_value(k, v, t, sub_type=sub)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# --- Random texts for differential tests: characters that stress the split rules (every kind of
# Unicode whitespace, letters and marks of several scripts, digits of several kinds, apostrophes
# and contraction letters, emoji and joiners, CJK, private-use and unassigned code points). ---

POOL = (
    list("abcxyzABCXYZ") + list("0123456789") + list(" " * 8) + ["\t", "\n", "\r", "\r\n", "\x0b", "\x0c"]
    + list("'’\"`.,;:!?-_()[]{}<>/\\|@#$%^&*+=~") + ["'s", "'S", "'t", "'re", "'VE", "'m", "'ll", "'D", "'ſ", "ſ"]
    + ["\u00a0", "\u1680", "\u2000", "\u2003", "\u2009", "\u200a", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000",
       "\u0085", "\u001c", "\u001f", "\u200b", "\u200c", "\u200d", "\ufeff", "\u180e"]
    + list("éÉñçßøÅœ") + ["e\u0301", "a\u0308", "\u0301", "\u0327", "\u20dd", "\u0489"]
    + list("абвЖЩ") + list("αβγΩ") + list("אבג") + list("ابت") + list("कखग") + ["\u093f", "\u094d"]
    + list("กขค") + ["\u0e31", "\u0e48"] + list("你好世界中文") + list("ひらがなカタカナ") + list("한국어")
    + list("٠١٢٣") + list("०१२") + list("１２３ＡＢＣ") + list("½¾²³ⅫⅣ①") + list("ʰˇ々ー")
    + ["🦙", "🙂", "👍🏽", "👨\u200d👩\u200d👧", "🇫🇷", "❤\ufe0f", "✨", "𝔘", "𝕞", "𐍈", "\U0001f9ff"]
    + ["\ue000", "\U000f0000", "\u0378", "\U0001fbf0", "\u2e80", "\u31ef", "\ufffd", "\x00", "\x7f", "\x1b"]
    + ["<|im_start|>", "<|endoftext|>", "<s>", "</s>", "<bos>", "<start_of_turn>", "<|begin_of_text|>", "<0x0A>"]
    + ["\u2581", "\u2581\u2581", "\u0120", "\u010a"]  # the SentencePiece space, GPT-2's byte characters
    + ["the", " the", "ing", " of", "tion", "123456", "    ", "\n\n", "...", "http://x.org/a?b=c"]
)


def random_text(rng, pool=POOL):
    """A random string of 1 to 40 pieces from `pool`."""
    n = rng.choice([1, 2, 3, 5, 8, 13, 21, 40])
    return "".join(rng.choice(pool) for _ in range(n))


# o200k's word rule (gpt-4o) tells letters apart by case: an "upper" run (Lu Lt Lm Lo and marks)
# then a "lower" one (Ll Lm Lo and marks), so modifier and other letters and marks belong to both
# and a backtracking engine gives them back. Letters of each category in several scripts (all
# assigned long before Unicode 14, so every engine's tables agree), marks of the three kinds,
# contractions in every letter case, '/' (o200k's punctuation tail), CRLF and whitespace runs.
CASE_POOL = (
    list("aAzZqQ") + ["ǅ", "ᾈ", "ǈ", "ǲ"] + list("ßðµſıℓﬀ") + list("ÀÉİℌ") + ["K", "Å"]
    + list("ʰˇˆー々ꟸᴬ") + list("ªº你اאก") + ["\u0301", "\u0308", "\u0903", "\u20dd", "\u0e31", "\u093f"]
    + list("ΣσςЖжႠაᎠꭰ") + ["𐐀", "𐐨", "𝐀", "𝐚"] + list("ⒶⓐⅫⅻ²٣0123456789")
    + ["'", "'s", "'S", "'t", "'T", "'re", "'RE", "'Re", "'rE", "'ve", "'VE", "'vE", "'m", "'M", "'ll", "'LL",
       "'lL", "'Ll", "'d", "'D", "'ſ", "'x", "’s", "''"]
    + ["/", "//", "!/", "\n/", "\r\n/", ".", "-", "\"", "@", "#", "🦙", "(", ")"]
    + [" ", " ", " ", "  ", "   ", "\t", "\n", "\r\n", "\r", "\n\n", " \n", "\u00a0", "\u3000", "\u2028", "\x0b"]
    + ["Hello", "WORLD", "McDonald", "iPhone", "DON'T", "don't", "ÉCOLE", "École", "ΣΟΦΊΑ", "Σοφία", "ǅungla"]
)


def random_case_text(rng):
    """A random string from CASE_POOL, with some of POOL."""
    n = rng.choice([1, 2, 3, 5, 8, 13, 21, 40])
    return "".join(rng.choice(CASE_POOL if rng.random() < 0.8 else POOL) for _ in range(n))


# --- English text for speed tests and the benchmark ---

ENGLISH_MODULES = ["collections", "json", "os", "re", "string", "textwrap", "typing", "argparse", "logging", "pathlib",
                   "subprocess", "threading", "asyncio", "email", "http.client", "unittest", "inspect", "functools",
                   "itertools", "datetime", "decimal", "fractions", "statistics", "random", "socket", "ssl", "sqlite3",
                   "csv", "configparser", "shutil", "tarfile", "zipfile", "pickle", "copy", "enum", "dataclasses", "abc",
                   "contextlib", "heapq", "bisect", "array", "struct", "codecs", "locale", "gettext", "calendar",
                   "difflib", "pprint", "reprlib", "doctest", "pdb", "timeit", "trace", "tracemalloc", "urllib.parse",
                   "urllib.request", "xml.dom.minidom", "html.parser", "mailbox", "smtplib", "ftplib", "imaplib"]


def english_text(n_bytes):
    """English prose with some code: docstrings of the Python standard library in a fixed module
    order, cut to n_bytes (on a character boundary). Used by bench/bench_tokenize.py and the speed
    tests."""
    import importlib
    import inspect
    import warnings

    parts = []
    total = 0
    with warnings.catch_warnings():  # typing.io and typing.re warn when touched
        warnings.simplefilter("ignore", DeprecationWarning)
        for name in ENGLISH_MODULES:
            try:
                mod = importlib.import_module(name)
            except ImportError:
                continue
            objs = [mod] + [getattr(mod, a) for a in sorted(dir(mod)) if not a.startswith("_")]
            for o in objs:
                doc = inspect.getdoc(o) if (inspect.ismodule(o) or inspect.isclass(o) or inspect.isroutine(o)) else None
                if doc:
                    parts.append(doc + "\n\n")
                    total += len(parts[-1].encode())
            if total >= n_bytes:
                break
    text = "".join(parts)
    while len(text.encode()) < n_bytes:
        text += text
    b = text.encode()[:n_bytes]
    return b.decode("utf-8", "ignore")
