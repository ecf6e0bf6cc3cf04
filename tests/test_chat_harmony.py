"""orc's gpt-oss (harmony) chat renderer against two references: transformers' Jinja rendering of
the template gpt-oss GGUF files carry (orc/_chat_templates.py "gpt-oss"), character for character,
and OpenAI's openai-harmony package (its Rust renderer), which differs from the Jinja template in
two documented places (docs/moe.md): the developer message (Jinja: "# Instructions\\n\\n<text>
\\n\\n<|end|>", harmony: "# Instructions\\n\\n<text><|end|>"), and a conversation that ends with
an assistant turn carrying thinking and is continued with a generation prompt (harmony keeps that
turn's analysis message, Jinja drops it). The tests assert both differences so the notes stay true.

openai-harmony needs the o200k_base vocabulary (tiktoken format): it is looked up in
$TIKTOKEN_ENCODINGS_BASE, then ~/.cache/orc/tiktoken/ (tools/fetch_o200k_vocab.py writes it); the
harmony tests skip, saying so, without it.
"""
import os
import time

import pytest

from orc import chat, synth_moe
from orc._chat_templates import TEMPLATES

TEMPLATE = TEMPLATES["gpt-oss"]
O200K_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"

CONVERSATIONS = [
    [{"role": "user", "content": "Hello!"}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi"}],
    [{"role": "developer", "content": "Answer in German.\nBe polite."}, {"role": "user", "content": "What is 2+2?"},
     {"role": "assistant", "content": "Vier.", "thinking": "The user wants German. 2+2=4."},
     {"role": "user", "content": "Und 3+3? 你好 🦙"}],
    [{"role": "user", "content": "one"}, {"role": "assistant", "content": "two"}, {"role": "user", "content": "three"},
     {"role": "assistant", "content": "four", "thinking": "counting"}],
    [{"role": "system", "content": ""}, {"role": "user", "content": "  spaces kept  \n"}],
    [{"role": "user", "content": "a"}, {"role": "system", "content": "a late system message renders nothing"},
     {"role": "assistant", "content": "b"}],
    [{"role": "assistant", "content": "I start."}, {"role": "user", "content": "ok"}],
]
OPTIONS = [{}, {"reasoning_effort": "high"}, {"reasoning_effort": "low", "model_identity": "You are orc, a test."}]


def jinja(conv, gen, **kw):
    from transformers.utils.chat_template_utils import render_jinja_template

    out, _ = render_jinja_template(conversations=[conv], chat_template=TEMPLATE, add_generation_prompt=gen, **kw)
    return out[0]


def jinja_and_orc(conv, gen, **kw):
    """Both renderings with the date the template's strftime_now gives (retried across midnight)."""
    for _ in range(3):
        day = time.strftime("%Y-%m-%d")
        want = jinja(conv, gen, **kw)
        if time.strftime("%Y-%m-%d") == day:
            return want, chat.render_chat(TEMPLATE, conv, gen, date_string=day, **kw)
    raise AssertionError("the date kept changing")


@pytest.mark.parametrize("k", range(len(CONVERSATIONS)))
def test_matches_jinja(k):
    pytest.importorskip("transformers", reason="transformers (the Jinja reference renderer) is not installed")
    conv = CONVERSATIONS[k]
    for gen in (True, False):
        for kw in OPTIONS:
            want, got = jinja_and_orc(conv, gen, **kw)
            assert got == want, (conv, gen, kw)
    # the default date is today's, like the template's strftime_now
    assert chat.render_chat("gpt-oss", conv).count("Current date: " + time.strftime("%Y-%m-%d")) == 1 or \
        time.strftime("%H:%M") == "00:00"


def test_layout_details():
    conv = CONVERSATIONS[2]
    text = chat.render_chat("gpt-oss", conv, True, date_string="2025-08-05")
    assert text.startswith("<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n"
                           "Knowledge cutoff: 2024-06\nCurrent date: 2025-08-05\n\nReasoning: medium\n\n"
                           "# Valid channels: analysis, commentary, final. Channel must be included for every "
                           "message.<|end|><|start|>developer<|message|># Instructions\n\nAnswer in German.\n"
                           "Be polite.\n\n<|end|>")
    # the analysis of a past turn is dropped for inference
    assert "The user wants German" not in text
    assert text.endswith("<|start|>user<|message|>Und 3+3? 你好 🦙<|end|><|start|>assistant")
    # training layout: the last assistant turn keeps its analysis and ends in <|return|>
    train = chat.render_chat("gpt-oss", CONVERSATIONS[3], False, date_string="2025-08-05")
    assert train.endswith("<|start|>assistant<|channel|>analysis<|message|>counting<|end|>"
                          "<|start|>assistant<|channel|>final<|message|>four<|return|>")
    assert chat.render_chat("gpt-oss", CONVERSATIONS[3], True, date_string="x").endswith(
        "<|channel|>final<|message|>four<|end|><|start|>assistant")


def test_refusals():
    pytest.importorskip("transformers", reason="transformers (the Jinja reference renderer) is not installed")
    tagged = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "<|channel|>final<|message|>x"}]
    tagged_thinking = [{"role": "user", "content": "q"},
                       {"role": "assistant", "content": "x", "thinking": "<|channel|>analysis<|message|>y"}]
    for conv, field in ((tagged, "content"), (tagged_thinking, "thinking")):
        with pytest.raises(Exception, match="channel"):
            jinja(conv, True)
        with pytest.raises(ValueError, match=f"tags in the {field} field"):
            chat.render_chat("gpt-oss", conv)
    with pytest.raises(ValueError, match="tool"):
        chat.render_chat("gpt-oss", [{"role": "tool", "content": "{}"}])
    with pytest.raises(ValueError, match="tool"):
        chat.render_chat("gpt-oss", [{"role": "assistant", "content": "", "tool_calls": [{"name": "f"}]}])
    with pytest.raises(ValueError, match="builtin_tools"):
        chat.render_chat("gpt-oss", CONVERSATIONS[0], builtin_tools=["python"])
    with pytest.raises(TypeError, match="thinking"):
        chat.render_chat("gpt-oss", [{"role": "assistant", "content": "a", "thinking": None}])
    with pytest.raises(TypeError, match="reasoning_effort"):
        chat.render_chat("gpt-oss", CONVERSATIONS[0], reasoning_effort=3)


def test_detection_and_the_gguf_template(tmp_path):
    assert chat.detect_chat_template(TEMPLATE)[0] == "gpt-oss"
    assert chat.detect_chat_template(TEMPLATE.replace("Reasoning: ", "Effort: ")) is None
    gguf = pytest.importorskip("gguf")
    path = synth_moe.make_model(tmp_path / "g.gguf", "gpt-oss")
    text = gguf.GGUFReader(path).fields["tokenizer.chat_template"].contents()
    assert chat.detect_chat_template(text)[0] == "gpt-oss"


# --------------------------------------------------------------------------- openai-harmony

def _harmony_encoding():
    harmony = pytest.importorskip("openai_harmony",
                                  reason="openai-harmony is not installed (pip install openai-harmony)")
    base = os.environ.get("TIKTOKEN_ENCODINGS_BASE") or os.path.expanduser("~/.cache/orc/tiktoken")
    vocab = os.path.join(base, "o200k_base.tiktoken")
    if not os.path.exists(vocab):
        pytest.skip(f"openai-harmony needs o200k_base.tiktoken, not found in {base}: run tools/fetch_o200k_vocab.py")
    os.environ.setdefault("TIKTOKEN_ENCODINGS_BASE", base)
    return harmony, harmony.load_harmony_encoding(harmony.HarmonyEncodingName.HARMONY_GPT_OSS)


def harmony_conversation(h, conv, date, reasoning_effort="medium", model_identity=None):
    effort = {"low": h.ReasoningEffort.LOW, "medium": h.ReasoningEffort.MEDIUM, "high": h.ReasoningEffort.HIGH}
    system = h.SystemContent.new().with_reasoning_effort(effort[reasoning_effort]).with_conversation_start_date(date)
    if model_identity is not None:
        system = system.with_model_identity(model_identity)
    msgs = [h.Message.from_role_and_content(h.Role.SYSTEM, system)]
    if conv[0]["role"] in ("system", "developer"):
        if conv[0]["content"]:
            msgs.append(h.Message.from_role_and_content(
                h.Role.DEVELOPER, h.DeveloperContent.new().with_instructions(conv[0]["content"])))
        conv = conv[1:]
    for m in conv:  # later system/developer messages: the template renders nothing for them
        if m["role"] == "user":
            msgs.append(h.Message.from_role_and_content(h.Role.USER, m["content"]))
        elif m["role"] == "assistant":
            if "thinking" in m:
                msgs.append(h.Message.from_role_and_content(h.Role.ASSISTANT, m["thinking"]).with_channel("analysis"))
            msgs.append(h.Message.from_role_and_content(h.Role.ASSISTANT, m["content"]).with_channel("final"))
    return h.Conversation.from_messages(msgs)


def jinja_to_harmony(text, conv):
    """Apply the two known differences to a Jinja rendering with a generation prompt."""
    if conv[0]["role"] in ("system", "developer") and conv[0]["content"]:
        dev = conv[0]["content"]
        assert dev + "\n\n<|end|>" in text
        text = text.replace("# Instructions\n\n" + dev + "\n\n<|end|>", "# Instructions\n\n" + dev + "<|end|>", 1)
    last = conv[-1]
    if last["role"] == "assistant" and "thinking" in last:
        final = f"<|start|>assistant<|channel|>final<|message|>{last['content']}<|end|><|start|>assistant"
        assert text.endswith(final)
        text = (text[:-len(final)] + f"<|start|>assistant<|channel|>analysis<|message|>{last['thinking']}<|end|>"
                + final)
    return text


@pytest.mark.parametrize("k", range(len(CONVERSATIONS)))
def test_matches_openai_harmony(k):
    h, enc = _harmony_encoding()
    conv = CONVERSATIONS[k]
    for kw in OPTIONS:
        ours = chat.render_chat("gpt-oss", conv, True, date_string="2025-08-05", **kw)
        convo = harmony_conversation(h, conv, "2025-08-05", **kw)
        theirs = enc.decode(enc.render_conversation_for_completion(convo, h.Role.ASSISTANT))
        assert jinja_to_harmony(ours, conv) == theirs, (conv, kw)
        if (conv[0]["role"] in ("system", "developer") and conv[0]["content"]) or "thinking" in conv[-1]:
            assert ours != theirs  # the documented differences are real


def test_training_layout_matches_openai_harmony():
    """Last assistant turn, no generation prompt (the training layout): both end in <|return|>
    and keep that turn's analysis; earlier turns' analysis is dropped by both."""
    h, enc = _harmony_encoding()
    conv = [{"role": "user", "content": "one"}, {"role": "assistant", "content": "two"},
            {"role": "user", "content": "three"}, {"role": "assistant", "content": "four"}]
    ours = chat.render_chat("gpt-oss", conv, False, date_string="2025-08-05")
    theirs = enc.decode(enc.render_conversation_for_training(harmony_conversation(h, conv, "2025-08-05")))
    assert ours == theirs and ours.endswith("<|return|>")
    with_thinking = [conv[0], dict(conv[1], thinking="past"), conv[2], dict(conv[3], thinking="counting")]
    theirs = enc.decode(enc.render_conversation_for_training(harmony_conversation(h, with_thinking, "2025-08-05")))
    ours = chat.render_chat("gpt-oss", with_thinking, False, date_string="2025-08-05")
    assert ours == theirs and "counting" in ours and "past" not in ours


def test_harmony_special_token_ids():
    """The ids synth_moe gives the harmony special tokens in full-size vocabularies are
    o200k_harmony's."""
    h, enc = _harmony_encoding()
    for i, text in synth_moe.HARMONY_SPECIALS.items():
        assert enc.encode(text, allowed_special="all") == [i], text


def test_generation_ends_at_return_and_call_not_at_end(tmp_path):
    """Harmony: <|end|> closes one message (the analysis comes before the final answer), so it
    does not end generation; <|return|> (the answer) and <|call|> (a tool call) do, and the
    end-of-turn token is <|return|>. Vocabularies without them keep <|end|> (Phi-3's turn end)."""
    import orc  # noqa: PLC0415

    path = synth_moe.make_model(tmp_path / "g.gguf", "gpt-oss")
    with orc.Model(path, device="cpu") as m:
        tok = m.tokenizer
        ids = {text: i for text in ("<|end|>", "<|return|>", "<|call|>", "<|channel|>")
               for i in tok.tokenize(text, add_special=False, special=True)}
        assert set(tok.eog_ids) >= {ids["<|return|>"], ids["<|call|>"]}
        assert ids["<|end|>"] not in tok.eog_ids and not tok.is_eog(ids["<|end|>"])
        assert not tok.is_eog(ids["<|channel|>"])
        assert tok.eot == ids["<|return|>"]
