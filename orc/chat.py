"""Chat prompts without Jinja: recognise the chat template a model ships (tokenizer.chat_template)
and render messages the way transformers' apply_chat_template would with that template.

    tok = orc.Tokenizer("qwen2.5-0.5b-instruct-q4_k_m.gguf")
    prompt = tok.apply_chat_template([{"role": "user", "content": "Hi"}])   # str
    ids = tok.apply_chat_template(messages, tokenize=True)                  # list[int]

Recognised (the texts are in orc/_chat_templates.py): ChatML (plain, Qwen2/Qwen1.5, Qwen2.5; a
different default system prompt is allowed), Llama 3, Llama 3.1/3.3, Llama 3.2, Gemma 2, Gemma 3
and gpt-oss (OpenAI's harmony format: reasoning_effort=, model_identity=, date_string=; an
assistant message may carry its analysis channel as "thinking"). A template is recognised only
when its text is one of these (up to leading/trailing whitespace): anything else raises
orc.OrcError rather than producing a prompt the model was not trained on. `template=` forces a
renderer by name (or supplies a template text to recognise).
Tool calls and tool messages are not supported (ValueError).

Messages are mappings with "role" and "content" (str; Gemma 3 also takes a list of
{"type": "text", "text": ...} / {"type": "image"} parts).
"""
from __future__ import annotations

import re
import time

from ._chat_templates import TEMPLATES

__all__ = ["apply_chat_template", "detect_chat_template", "render_chat", "TEMPLATE_NAMES"]

TEMPLATE_NAMES = tuple(TEMPLATES)

# Default system prompts that may differ between otherwise identical ChatML templates.
_DEFAULT_SYSTEM = {
    "qwen2": "You are a helpful assistant",
    "qwen2.5": "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
}


def _system_pattern(name):
    text = TEMPLATES[name].strip()
    default = _DEFAULT_SYSTEM[name]
    parts = text.split(default)
    pat = re.escape(parts[0]) + r"(?P<sys>[^'\"\\{}]*)"
    for p in parts[1:-1]:
        pat += re.escape(p) + r"(?P=sys)"
    pat += re.escape(parts[-1])
    return re.compile(pat, re.S)


_PATTERNS = {name: _system_pattern(name) for name in _DEFAULT_SYSTEM}


def detect_chat_template(text):
    """(name, params) for a recognised template text, or None."""
    if text is None:
        return None
    t = text.strip()
    for name, known in TEMPLATES.items():
        if t == known.strip():
            return name, dict(default_system=_DEFAULT_SYSTEM.get(name))
    for name, pat in _PATTERNS.items():
        m = pat.fullmatch(t)
        if m:
            return name, dict(default_system=m.group("sys"))
    return None


def _get_error():
    try:
        from . import OrcError
        return OrcError
    except ImportError:  # pragma: no cover
        return RuntimeError


# ---------------------------------------------------------------------------------------------
# Message checks

def _messages(messages, allow_parts=False):
    if isinstance(messages, (str, bytes)) or not hasattr(messages, "__iter__"):
        raise TypeError("messages must be a list of {'role': ..., 'content': ...} mappings")
    out = []
    for i, m in enumerate(messages):
        try:
            role, content = m["role"], m["content"]
        except (TypeError, KeyError):
            raise TypeError(f"messages[{i}] must be a mapping with 'role' and 'content'") from None
        if m.get("tool_calls") or role in ("tool", "ipython"):
            raise ValueError(f"messages[{i}]: tool calls and tool messages are not supported by orc's chat templates")
        if not isinstance(role, str):
            raise TypeError(f"messages[{i}]['role'] must be a str")
        if not isinstance(content, str) and not (allow_parts and isinstance(content, (list, tuple))):
            raise TypeError(f"messages[{i}]['content'] must be a str")
        out.append((role, content))
    if not out:
        raise ValueError("messages is empty")
    return out


def _trim(s):
    return s.strip()  # Jinja's trim filter


# ---------------------------------------------------------------------------------------------
# Renderers, one per template family; each mirrors its template's output for messages without tools

def _chatml(msgs, gen, default_system=None, **_):
    out = []
    if default_system is not None and msgs[0][0] != "system":
        out.append(f"<|im_start|>system\n{default_system}<|im_end|>\n")
    for role, content in msgs:
        out.append(f"<|im_start|>{role}\n{content}<|im_end|>\n")
    if gen:
        out.append("<|im_start|>assistant\n")
    return "".join(out)


def _llama3(msgs, gen, bos_token="", **_):
    out = [bos_token]
    for role, content in msgs:
        out.append(f"<|start_header_id|>{role}<|end_header_id|>\n\n{_trim(content)}<|eot_id|>")
    if gen:
        out.append("<|start_header_id|>assistant<|end_header_id|>\n\n")
    return "".join(out)


def _llama31(msgs, gen, bos_token="", date_string=None, today=False, **_):
    if date_string is None:
        date_string = time.strftime("%d %b %Y") if today else "26 Jul 2024"
    system = ""
    if msgs[0][0] == "system":
        system = _trim(msgs[0][1])
        msgs = msgs[1:]
    out = [bos_token, "<|start_header_id|>system<|end_header_id|>\n\n",
           "Cutting Knowledge Date: December 2023\n", f"Today Date: {date_string}\n\n", system, "<|eot_id|>"]
    for role, content in msgs:
        out.append(f"<|start_header_id|>{role}<|end_header_id|>\n\n{_trim(content)}<|eot_id|>")
    if gen:
        out.append("<|start_header_id|>assistant<|end_header_id|>\n\n")
    return "".join(out)


def _alternation(roles):
    for i, role in enumerate(roles):
        if (role == "user") != (i % 2 == 0):
            raise ValueError("Conversation roles must alternate user/assistant/user/assistant/...")


def _gemma2(msgs, gen, bos_token="", **_):
    if msgs[0][0] == "system":
        raise ValueError("System role not supported")
    _alternation([r for r, _ in msgs])
    out = [bos_token]
    for role, content in msgs:
        role = "model" if role == "assistant" else role
        out.append(f"<start_of_turn>{role}\n{_trim(content)}<end_of_turn>\n")
    if gen:
        out.append("<start_of_turn>model\n")
    return "".join(out)


def _gemma3_content(content):
    if isinstance(content, str):
        return _trim(content)
    parts = []
    for item in content:
        kind = item.get("type")
        if kind == "image":
            parts.append("<start_of_image>")
        elif kind == "text":
            parts.append(_trim(item["text"]))
    return "".join(parts)


def _gemma3(msgs, gen, bos_token="", **_):
    prefix = ""
    if msgs[0][0] == "system":
        c = msgs[0][1]
        prefix = (c if isinstance(c, str) else c[0]["text"]) + "\n\n"
        msgs = msgs[1:]
    _alternation([r for r, _ in msgs])
    out = [bos_token]
    for i, (role, content) in enumerate(msgs):
        role = "model" if role == "assistant" else role
        out.append(f"<start_of_turn>{role}\n" + (prefix if i == 0 else "") + _gemma3_content(content) + "<end_of_turn>\n")
    if gen:
        out.append("<start_of_turn>model\n")
    return "".join(out)


_HARMONY_CHANNEL_TAGS = ("<|channel|>analysis<|message|>", "<|channel|>final<|message|>")


def _harmony_messages(messages):
    """(role, content, thinking or None) of gpt-oss messages; refuses tools like the other renderers."""
    messages = list(messages) if not isinstance(messages, (str, bytes)) and hasattr(messages, "__iter__") else messages
    out = []
    for i, (role, content) in enumerate(_messages(messages)):
        has_thinking = "thinking" in messages[i]
        thinking = messages[i]["thinking"] if has_thinking else None
        if has_thinking and not isinstance(thinking, str):
            raise TypeError(f"messages[{i}]['thinking'] must be a str")
        if role == "assistant":
            for field, text in (("content", content), ("thinking", thinking)):
                if text is not None and any(tag in text for tag in _HARMONY_CHANNEL_TAGS):
                    raise ValueError(
                        f"messages[{i}]: You have passed a message containing <|channel|> tags in the {field} field. "
                        "Instead of doing this, you should pass analysis messages (the string between '<|message|>' "
                        "and '<|end|>') in the 'thinking' field, and final messages (the string between "
                        "'<|message|>' and '<|end|>') in the 'content' field.")
        out.append((role, content, thinking))
    return out


def _gpt_oss(msgs, gen, reasoning_effort="medium", model_identity=None, date_string=None, builtin_tools=None, **_):
    """The gpt-oss template (harmony format) without tools: one system message (identity, knowledge
    cutoff, date, reasoning effort, channels), the first system/developer message as the developer
    "# Instructions", then user turns and assistant final-channel turns; an assistant's thinking is
    rendered only for the last message when no generation prompt follows (training layout), which
    then ends in <|return|> instead of <|end|>. Later system/developer messages render nothing,
    as in the template."""
    if builtin_tools:
        raise ValueError("builtin_tools (browser, python) are not supported by orc's gpt-oss renderer")
    for name, v in (("reasoning_effort", reasoning_effort), ("model_identity", model_identity),
                    ("date_string", date_string)):
        if v is not None and not isinstance(v, str):
            raise TypeError(f"{name} must be a str")
    if model_identity is None:
        model_identity = "You are ChatGPT, a large language model trained by OpenAI."
    if date_string is None:
        date_string = time.strftime("%Y-%m-%d")  # the template's strftime_now("%Y-%m-%d")
    effort = "medium" if reasoning_effort is None else reasoning_effort
    out = ["<|start|>system<|message|>", model_identity, "\n", "Knowledge cutoff: 2024-06\n",
           f"Current date: {date_string}\n\n", f"Reasoning: {effort}\n\n",
           "# Valid channels: analysis, commentary, final. Channel must be included for every message.", "<|end|>"]
    developer = ""
    if msgs[0][0] in ("developer", "system"):
        developer, msgs = msgs[0][1], msgs[1:]
    if developer:
        out.append(f"<|start|>developer<|message|># Instructions\n\n{developer}\n\n<|end|>")
    for k, (role, content, thinking) in enumerate(msgs):
        if role == "assistant":
            if k == len(msgs) - 1 and not gen:
                if thinking is not None:
                    out.append(f"<|start|>assistant<|channel|>analysis<|message|>{thinking}<|end|>")
                out.append(f"<|start|>assistant<|channel|>final<|message|>{content}<|return|>")
            else:
                out.append(f"<|start|>assistant<|channel|>final<|message|>{content}<|end|>")
        elif role == "user":
            out.append(f"<|start|>user<|message|>{content}<|end|>")
    if gen:
        out.append("<|start|>assistant")
    return "".join(out)


_RENDER = {
    "chatml": _chatml, "qwen2": _chatml, "qwen2.5": _chatml,
    "llama3": _llama3, "llama3.1": _llama31, "llama3.2": lambda *a, **k: _llama31(*a, today=True, **k),
    "gemma2": _gemma2, "gemma3": _gemma3, "gpt-oss": _gpt_oss,
}


def render_chat(template, messages, add_generation_prompt=True, bos_token="", eos_token="", **kwargs):
    """Render `messages` with a recognised template: `template` is a name from TEMPLATE_NAMES or a
    template text. kwargs: date_string for Llama 3.1/3.2 (defaults as the templates do: "26 Jul
    2024", and today's date for 3.2 as transformers' strftime_now gives it) and for gpt-oss (today,
    "%Y-%m-%d"); reasoning_effort ("low", "medium" (default), "high") and model_identity for gpt-oss."""
    if template in _RENDER:
        name, params = template, dict(default_system=_DEFAULT_SYSTEM.get(template))
    else:
        found = detect_chat_template(template)
        if found is None:
            raise _get_error()(
                "unknown chat template: orc renders only templates it recognises exactly "
                f"({', '.join(TEMPLATE_NAMES)}); pass template=NAME to force one. Template starts: "
                f"{(template or '')[:120]!r}")
        name, params = found
    msgs = _harmony_messages(messages) if name == "gpt-oss" else _messages(messages, allow_parts=(name == "gemma3"))
    params.update(kwargs)
    return _RENDER[name](msgs, add_generation_prompt, bos_token=bos_token or "", eos_token=eos_token or "", **params)


def apply_chat_template(tokenizer, messages, add_generation_prompt=True, tokenize=False, template=None, **kwargs):
    """Tokenizer.apply_chat_template: render with the tokenizer's tokenizer.chat_template (or
    `template`), BOS/EOS texts taken from the vocabulary. tokenize=True returns the ids of the
    prompt, tokenized with add_special=False and special=True (the template writes BOS itself)."""
    tpl = template if template is not None else tokenizer.chat_template
    if tpl is None:
        raise _get_error()(
            "this vocabulary has no tokenizer.chat_template; pass template= one of " + ", ".join(TEMPLATE_NAMES))
    bos = tokenizer.token_text(tokenizer.bos) if tokenizer.bos is not None else ""
    eos = tokenizer.token_text(tokenizer.eos) if tokenizer.eos is not None else ""
    text = render_chat(tpl, messages, add_generation_prompt, bos_token=bos, eos_token=eos, **kwargs)
    if tokenize:
        return tokenizer.tokenize(text, add_special=False, special=True)
    return text
