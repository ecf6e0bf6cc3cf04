"""A generation test that cannot pass with canned output.

The prompt carries words drawn at random when the test runs (printed, so a failure can be
replayed with ORC_GEN_SEED); greedy generation with a real instruct model (SmolLM2-135M-
Instruct, pinned in orc.fixtures) must copy each of them, in readable text, from a few-shot
pattern. The same check is shown to fail on the same model with its quantized weights used as
float16 without dequantization (the bug orc was born from).
"""
import os
import random

import pytest

import orc
from realmodels import real_model

WORDS = """apple anchor autumn bakery balloon banana basket beacon bicycle blanket bottle bridge bucket
butter cabin camera candle canyon carpet castle cactus cherry circus cloud coffee compass copper
cotton crystal desert diamond dinner dragon eagle engine feather forest fountain garden garlic
ginger glacier guitar hammer harbor helmet honey island jacket jungle kettle ladder lantern lemon
library lizard magnet marble meadow mirror monkey mountain museum needle novel ocean orange oyster
paddle palace parrot pencil pepper piano pillow pirate planet pocket potato puzzle rabbit radio
rainbow river rocket saddle salmon sandal silver spider spoon squirrel statue summer sunset
teapot thunder ticket tiger tomato tunnel turtle umbrella valley velvet violin wagon walnut
window winter wizard yellow zebra""".split()

PATTERN = "Word: apple\nRepeat: apple\nWord: chair\nRepeat: chair\nWord: {w}\nRepeat:"


def draw_words(k=3):
    seed = int(os.environ.get("ORC_GEN_SEED", random.SystemRandom().randrange(2**32)))
    rng = random.Random(seed)
    words = rng.sample([w for w in WORDS if w not in ("apple", "chair")], k)
    print(f"ORC_GEN_SEED={seed} words={words}")
    return words


def copies(model, word, max_tokens=5):
    """Greedy continuation of the pattern: (did it repeat the word first, the text)."""
    ids = model.tokenize(PATTERN.format(w=word))
    s = orc.Session(model, n_ctx=len(ids) + max_tokens + 4)
    try:
        text = "".join(st.text or "" for st in s.generate(ids, max_tokens, temperature=0.0, stop=[]))
    except ValueError as e:  # NaN/Inf logits are refused, never sampled: the check fails
        return False, f"<generation refused: {e}>"
    return text.split("\n")[0].strip() == word, text


def _model(device, **kw):
    return orc.Model(str(real_model("smollm2-135m-instruct")), device=device, **kw)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_real_model_repeats_words_chosen_now(device):
    with _model(device) as m:
        for w in draw_words():
            ok, text = copies(m, w)
            assert ok, f"{device}: asked to repeat {w!r}, generated {text!r}"
            assert text.isprintable() or "\n" in text  # readable text, not mojibake


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_the_same_check_fails_on_undequantized_weights(device):
    words = draw_words()
    with _model(device, fault="raw_as_f16") as bad:
        for w in words:
            ok, text = copies(bad, w)
            assert not ok, f"the corrupted model repeated {w!r}: the check cannot tell ({text!r})"
