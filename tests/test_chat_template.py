"""orc.chat against Jinja: every template orc recognises is rendered by transformers'
Jinja renderer (the reference; a test dependency only) and by orc's Jinja-free renderer, over
conversations with and without a system message, several turns, surrounding whitespace and
non-ASCII text; both must agree character for character, including which inputs are refused.
Real template files (tools/fetch_tokenizer_vocabs.py) must be recognised as the right family,
and templates orc does not know must be refused."""
import os
import sys

import pytest

import orc
from orc import chat
from orc._chat_templates import TEMPLATES

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tokenizer_ref as R  # noqa: E402

CONVERSATIONS = [
    [{"role": "user", "content": "Hello!"}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi"}],
    [{"role": "user", "content": "  What is 2+2?\n"}, {"role": "assistant", "content": " 4. \n"},
     {"role": "user", "content": "Und auf Deutsch? 你好 🦙"}],
    [{"role": "system", "content": "\nBe nice.  "}, {"role": "user", "content": "a"},
     {"role": "assistant", "content": "b"}, {"role": "user", "content": "c\n\nd"}],
    [{"role": "assistant", "content": "I start."}, {"role": "user", "content": "ok"}],
    [{"role": "user", "content": "one"}, {"role": "user", "content": "two"}],
    [{"role": "system", "content": "sys"}, {"role": "system", "content": "sys again"}, {"role": "user", "content": "u"}],
]
BOS = {"chatml": "<s>", "qwen2": "<|endoftext|>", "qwen2.5": "<|endoftext|>", "llama3": "<|begin_of_text|>",
       "llama3.1": "<|begin_of_text|>", "llama3.2": "<|begin_of_text|>", "gemma2": "<bos>", "gemma3": "<bos>",
       "gpt-oss": "<|startoftext|>"}


def jinja_render(template, messages, gen, bos, eos):
    from transformers.utils.chat_template_utils import render_jinja_template

    out, _ = render_jinja_template(conversations=[messages], chat_template=template, add_generation_prompt=gen,
                                   bos_token=bos, eos_token=eos)
    return out[0]


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_renderer_matches_jinja(name):
    pytest.importorskip("transformers", reason="transformers (the Jinja reference renderer) is not installed")
    text = TEMPLATES[name]
    agreed = refused = 0
    for conv in CONVERSATIONS:
        for gen in (True, False):
            try:
                want = jinja_render(text, conv, gen, BOS[name], "<eos>")
            except Exception as e:  # the template refuses this conversation (raise_exception)
                with pytest.raises(ValueError):
                    chat.render_chat(name, conv, gen, bos_token=BOS[name], eos_token="<eos>")
                refused += 1
                assert "alternate" in str(e) or "System role" in str(e), e
                continue
            got = chat.render_chat(text, conv, gen, bos_token=BOS[name], eos_token="<eos>")
            assert got == want, (name, conv, gen)
            agreed += 1
    assert agreed >= 4 and agreed + refused == 2 * len(CONVERSATIONS)


def test_gemma3_parts_and_system_prefix():
    pytest.importorskip("transformers", reason="transformers (the Jinja reference renderer) is not installed")
    conv = [{"role": "system", "content": [{"type": "text", "text": "Look closely."}]},
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": " What is this? "}]}]
    want = jinja_render(TEMPLATES["gemma3"], conv, True, "<bos>", "<eos>")
    assert chat.render_chat("gemma3", conv, True, bos_token="<bos>") == want
    assert want == "<bos><start_of_turn>user\nLook closely.\n\n<start_of_image>What is this?<end_of_turn>\n<start_of_turn>model\n"


def test_detection():
    for name, text in TEMPLATES.items():
        assert chat.detect_chat_template(text)[0] == name
        assert chat.detect_chat_template("\n" + text + "\n\n")[0] == name
    # ChatML templates that differ only in the default system prompt
    t = TEMPLATES["qwen2.5"].replace("You are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
                                     "Please reason step by step.")
    name, params = chat.detect_chat_template(t)
    assert name == "qwen2.5" and params["default_system"] == "Please reason step by step."
    out = chat.render_chat(t, [{"role": "user", "content": "x"}])
    assert out.startswith("<|im_start|>system\nPlease reason step by step.<|im_end|>\n")
    for other in ["{{ messages }}", TEMPLATES["llama3"].replace("trim", "upper"), "", None]:
        assert chat.detect_chat_template(other) is None
    with pytest.raises(orc.OrcError, match="unknown chat template"):
        chat.render_chat("{% for m in messages %}{{ m.content }}{% endfor %}", [{"role": "user", "content": "x"}])


def test_bad_messages():
    with pytest.raises(TypeError):
        chat.render_chat("chatml", "hello")
    with pytest.raises(TypeError):
        chat.render_chat("chatml", [{"content": "no role"}])
    with pytest.raises(TypeError):
        chat.render_chat("chatml", [{"role": "user", "content": 5}])
    with pytest.raises(ValueError):
        chat.render_chat("chatml", [])
    with pytest.raises(ValueError, match="tool"):
        chat.render_chat("qwen2.5", [{"role": "tool", "content": "{}"}])


# Real template files: recognised as the right family, or refused.
REAL = {
    "Qwen-Qwen2.5-7B-Instruct.jinja": "qwen2.5",
    "meta-llama-Llama-3.1-8B-Instruct.jinja": "llama3.1",
    "meta-llama-Llama-3.3-70B-Instruct.jinja": "llama3.1",
    "meta-llama-Llama-3.2-3B-Instruct.jinja": "llama3.2",
    "google-gemma-2-2b-it.jinja": "gemma2",
    "Qwen-Qwen3-0.6B.jinja": None,
    "mistralai-Mistral-Nemo-Instruct-2407.jinja": None,
    "microsoft-Phi-3.5-mini-instruct.jinja": None,
    "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja": None,
}


@pytest.mark.parametrize("fname", list(REAL))
def test_real_template_files(fname):
    path = os.path.join(R.vocab_dir(), "templates", fname)
    if not os.path.exists(path):
        pytest.skip(f"{fname} not fetched: run `python tools/fetch_tokenizer_vocabs.py`")
    text = open(path, encoding="utf-8").read()
    found = chat.detect_chat_template(text)
    assert (found[0] if found else None) == REAL[fname]


def test_tokenizer_apply_chat_template_real():
    path = R.vocab_path("qwen2")
    if not path:
        pytest.skip("qwen2 vocabulary not fetched: run `python tools/fetch_tokenizer_vocabs.py`")
    tok = orc.Tokenizer(path)
    assert chat.detect_chat_template(tok.chat_template)[0] == "qwen2"
    msgs = [{"role": "user", "content": "Hi"}]
    prompt = tok.apply_chat_template(msgs)
    assert prompt == "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n" \
                     "<|im_start|>assistant\n"
    ids = tok.apply_chat_template(msgs, tokenize=True)
    im_start, im_end = tok.token_id("<|im_start|>"), tok.token_id("<|im_end|>")
    assert ids[0] == im_start and ids.count(im_start) == 3 and ids.count(im_end) == 2
    assert tok.detokenize(ids) == prompt
    assert tok.apply_chat_template(msgs, add_generation_prompt=False).endswith("Hi<|im_end|>\n")
    g = orc.Tokenizer(path)
    assert g.apply_chat_template(msgs, template="gemma3") == "<|endoftext|><start_of_turn>user\nHi<end_of_turn>\n" \
                                                              "<start_of_turn>model\n"


def test_tokenizer_without_template():
    pytest.importorskip("tokenizers", reason="Hugging Face tokenizers is not installed")
    md = R.train_bpe_metadata("qwen2")
    tok = orc.Tokenizer.from_metadata(md)
    assert tok.chat_template is None
    with pytest.raises(orc.OrcError, match="no tokenizer.chat_template"):
        tok.apply_chat_template([{"role": "user", "content": "x"}])
    ids = tok.apply_chat_template([{"role": "user", "content": "x"}], template="chatml", tokenize=True)
    assert ids[0] == tok.token_id("<|im_start|>")
    tok2 = orc.Tokenizer.from_metadata(dict(md, **{"tokenizer.chat_template": "{{ nonsense }}"}))
    with pytest.raises(orc.OrcError, match="unknown chat template"):
        tok2.apply_chat_template([{"role": "user", "content": "x"}])
