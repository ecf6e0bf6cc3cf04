"""`python -m orc run / logits / diff` end to end: subprocesses on synthetic models (orc.synth),
checked against the Python API on the same files. The synthetic vocabularies are tiny byte-level
BPE and SentencePiece ones: the text is gibberish, so the tests check structure and agreement with
the API, not meaning."""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import orc
from orc import synth
from orc.cli_diff import parse_backend

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(orc.__file__)))
PROMPT = "Hello world, this is orc"
no_gpu = pytest.mark.skipif(orc.cuda_available(), reason="checks the error on a machine without a usable GPU")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    return {
        # byte-level BPE vocabulary (gpt2 style), Q8_0 weights
        "qwen2": synth.make_model(d / "qwen2.gguf", synth.spec_for("qwen2", "Q8_0")),
        # SentencePiece vocabulary, Q4_K weights, float32 embeddings: with the raw_as_f16 fault the
        # first quantized weight the forward pass meets is blk.0.attn_q
        "llama": synth.make_model(d / "llama.gguf", synth.spec_for("llama", "Q4_K", embd_type="F32")),
    }


def orc_cli(*args, input=None, check_rc=None, **kw):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-m", "orc", *map(str, args)], capture_output=True, env=env, input=input,
                       timeout=120, **kw)
    if check_rc is not None:
        assert r.returncode == check_rc, (r.returncode, r.stdout.decode(errors="replace"),
                                          r.stderr.decode(errors="replace"))
    return r


def generate(path, ids, n, **params):
    """The tokens the API generates (greedy unless a temperature is given), no stop tokens."""
    params.setdefault("temperature", 0.0)
    with orc.Model(path, device="cpu") as m, orc.Session(m, n_ctx=len(ids) + n) as s:
        return [st.token for st in s.generate(ids, n, stop=[], **params)]


def assert_one_line_error(r, command, *needles):
    err = r.stderr.decode()
    assert r.returncode == 2, (r.returncode, err)
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"orc {command}: "), err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    assert r.stdout == b""


def test_help_lists_the_commands():
    out = orc_cli("--help", check_rc=0).stdout.decode()
    for c in ("info", "run", "logits", "diff", "kld", "invariance"):
        assert re.search(rf"\b{c}\b", out), c


# ------------------------------------------------------------------------------------------------
# run

def test_run_greedy_streams_the_same_tokens_as_the_api(models):
    path = models["qwen2"]
    with orc.Model(path) as m:
        ids = m.tokenize(PROMPT)
        toks = generate(path, ids, 12)
        text = m.detokenize(toks)
    assert not set(toks) & {317, 319}, "an end-of-generation token would stop the CLI early"
    r = orc_cli("run", path, PROMPT, "-n", 12, "--device", "cpu", check_rc=0)
    assert r.stdout.decode("utf-8") == text + "\n"
    err = r.stderr.decode().strip().splitlines()
    assert len(err) == 1, err  # no progress bar: stderr is not a terminal
    m_ = re.match(r"orc run: (\d+) prompt tokens \(.*\), (\d+) generated in [\d.]+ s \(([\d.]+) tok/s\); "
                  r"stopped: max tokens; cpu float32", err[0])
    assert m_, err[0]
    assert int(m_.group(1)) == len(ids) and int(m_.group(2)) == 12 and float(m_.group(3)) > 0

    ids_out = orc_cli("run", path, PROMPT, "-n", 12, "--show-ids", check_rc=0).stdout.decode().split()
    assert [int(t) for t in ids_out] == toks
    # the same prompt given as ids, and read from stdin
    raw = ",".join(map(str, ids))
    assert orc_cli("run", path, raw, "-n", 12, "--raw-ids", check_rc=0).stdout == r.stdout
    assert orc_cli("run", path, "-", "-n", 12, input=PROMPT.encode(), check_rc=0).stdout == r.stdout


def test_run_sampling_follows_the_seed_and_parameters(models):
    path = models["qwen2"]
    with orc.Model(path) as m:
        ids = m.tokenize(PROMPT)
    params = dict(temperature=1.5, top_k=50, top_p=0.9, min_p=0.01, repeat_penalty=1.2)
    want = {seed: generate(path, ids, 16, seed=seed, **params) for seed in (7, 8)}
    assert want[7] != want[8]
    for seed in (7, 8):
        r = orc_cli("run", path, PROMPT, "-n", 16, "--show-ids", "--ignore-eos", "--temp", 1.5, "--top-k", 50,
                    "--top-p", 0.9, "--min-p", 0.01, "--repeat-penalty", 1.2, "--seed", seed, check_rc=0)
        assert [int(t) for t in r.stdout.split()] == want[seed]


def test_run_stops_at_end_of_generation_without_printing_it(models):
    path = models["qwen2"]
    with orc.Model(path) as m:
        ids = m.tokenize(PROMPT)
        eog = m.tokenizer.eog_ids
        for seed in range(200):
            toks = generate(path, ids, 40, seed=seed, temperature=2.0)
            hit = [i for i, t in enumerate(toks) if t in eog]
            if hit:
                break
        else:
            pytest.fail("no seed produced an end-of-generation token")
        before = toks[:hit[0]]
        text = m.detokenize(before)
    r = orc_cli("run", path, PROMPT, "-n", 40, "--temp", 2.0, "--seed", seed, check_rc=0)
    assert r.stdout.decode() == text + "\n"
    assert f"{len(before)} generated" in r.stderr.decode()
    assert f"stopped: end of generation (token {toks[hit[0]]})" in r.stderr.decode()
    r = orc_cli("run", path, PROMPT, "-n", 40, "--temp", 2.0, "--seed", seed, "--ignore-eos", "--show-ids", check_rc=0)
    assert [int(t) for t in r.stdout.split()] == toks


def test_run_never_breaks_a_utf8_character_split_over_tokens(models):
    """Byte tokens: a character made of two tokens must come out whole (decoding token by token
    would print two U+FFFD instead), and stdout is always valid UTF-8."""
    path = models["qwen2"]
    with orc.Model(path) as m:
        ids = m.tokenize("Hello world")
        toks = generate(path, ids, 64, seed=3, temperature=3.0)
        whole = m.detokenize(toks)
        naive = "".join(m.detokenize([t]) for t in toks)
    assert whole != naive, "precondition: this seed must split a character over tokens"
    assert any(ord(c) > 127 and c != "\ufffd" for c in whole), "precondition: a multi-byte character forms"
    r = orc_cli("run", path, "Hello world", "-n", 64, "--temp", 3.0, "--seed", 3, "--ignore-eos", check_rc=0)
    assert r.stdout.decode("utf-8", errors="strict") == whole + "\n"


def test_run_chat_wraps_the_prompt_in_the_template(models):
    path = models["qwen2"]
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": PROMPT}]
    with orc.Model(path) as m:
        chat_ids = m.apply_chat_template(msgs, tokenize=True, template="chatml")
        assert chat_ids[0] == m.tokenizer.token_id("<|im_start|>")
        toks = generate(path, chat_ids, 8)
    r = orc_cli("logits", path, PROMPT, "--chat", "--chat-template", "chatml", "--system", "Be brief.", "--json",
                "--top", 1, check_rc=0)
    assert json.loads(r.stdout)["prompt_ids"] == chat_ids
    r = orc_cli("run", path, PROMPT, "--chat", "--chat-template", "chatml", "--system", "Be brief.", "-n", 8,
                "--show-ids", "--ignore-eos", check_rc=0)
    assert [int(t) for t in r.stdout.split()] == toks
    assert f"{len(chat_ids)} prompt tokens" in r.stderr.decode()
    # the synthetic vocabulary has no template of its own: a clear error, not a traceback
    assert_one_line_error(orc_cli("run", path, PROMPT, "--chat"), "run", "chat_template")


@no_gpu
@pytest.mark.parametrize("command", ["run", "logits"])
def test_cuda_without_a_gpu_is_one_line_and_exit_code_2(models, command):
    r = orc_cli(command, models["qwen2"], PROMPT, "--device", "cuda")
    assert_one_line_error(r, command, "cuda", orc.cuda_status()["reason"])


@pytest.mark.parametrize("args, needle", [
    (["run", "{missing}", "hi"], "no such file"),
    (["run", "{qwen2}", "1, 2, x", "--raw-ids"], "integers"),
    (["run", "{qwen2}", "1 99999", "--raw-ids"], "99999 is out of range"),
    (["run", "{qwen2}", "hi", "--temp", "-1"], "temperature"),
    (["run", "{qwen2}", "hi", "-n", "5000"], "training context"),
    (["run", "{qwen2}", "hi", "--device", "tpu"], "device"),
    (["logits", "{qwen2}", "hi", "--positions", "7"], "outside"),
    (["logits", "{notgguf}", "hi"], "GGUF"),
    (["diff", "{qwen2}", "hi", "--a", "cpu:float8"], "DTYPE"),
])
def test_user_errors_are_one_line(models, tmp_path, args, needle):
    bad = tmp_path / "not.gguf"
    bad.write_bytes(b"this is not a gguf file at all, just text")
    paths = {"missing": tmp_path / "nope.gguf", "notgguf": bad, **models}
    r = orc_cli(*[a.format(**paths) for a in args])
    assert_one_line_error(r, args[0], needle)


def _pty_stderr(args):
    """Run the CLI with stderr on a pseudo-terminal (stdout a pipe); return what the terminal got."""
    pty = pytest.importorskip("pty")
    master, slave = pty.openpty()
    env = dict(os.environ, PYTHONPATH=ROOT)
    try:
        p = subprocess.Popen([sys.executable, "-m", "orc", *map(str, args)], stdout=subprocess.PIPE, stderr=slave,
                             env=env)
        os.close(slave)
        chunks = []
        while True:
            try:
                b = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not b:
                break
            chunks.append(b)
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0
        return b"".join(chunks).decode(errors="replace"), out
    finally:
        os.close(master)


def test_progress_bars_only_on_a_terminal(models):
    path = models["qwen2"]
    term, out = _pty_stderr(["run", path, PROMPT, "-n", 20])
    assert re.search(r"loading qwen2\.gguf \[#+ *\] +100%", term), term
    assert re.search(r"generating \[#+ *\] 20/20", term), term
    assert "orc run: " in term and out.decode().endswith("\n")
    term, _ = _pty_stderr(["run", path, PROMPT, "-n", 20, "--no-progress"])
    assert "loading" not in term and "generating" not in term
    assert term.strip().startswith("orc run: ")


# ------------------------------------------------------------------------------------------------
# logits

def _api_logits(path, ids, **kw):
    with orc.Model(path, device="cpu", **kw) as m, orc.Session(m, n_ctx=len(ids)) as s:
        return s.forward(ids)


def test_logits_json_matches_the_api(models):
    path = models["llama"]
    with orc.Model(path) as m:
        ids = m.tokenize(PROMPT)
        texts = {i: m.tokenizer.detokenize_bytes([i]) for i in range(m.vocab_size)}
    ref = _api_logits(path, ids).astype(np.float64)
    doc = json.loads(orc_cli("logits", path, PROMPT, "--top", 7, "--json", check_rc=0).stdout)
    assert doc["prompt_ids"] == ids and doc["n_vocab"] == ref.shape[1]
    assert [p["position"] for p in doc["positions"]] == list(range(len(ids)))
    for p in doc["positions"]:
        pos = p["position"]
        assert p["token"] == ids[pos] and bytes.fromhex(p["bytes"]) == texts[ids[pos]]
        want = np.argsort(-ref[pos], kind="stable")[:7]
        assert [t["id"] for t in p["top"]] == want.tolist()
        prob = np.exp(ref[pos] - ref[pos].max())
        prob /= prob.sum()
        np.testing.assert_allclose([t["logit"] for t in p["top"]], ref[pos, want], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose([t["prob"] for t in p["top"]], prob[want], rtol=1e-4)
        assert all(bytes.fromhex(t["bytes"]) == texts[t["id"]] for t in p["top"])
        assert p["nonfinite"] == 0


def test_logits_all_probabilities_sum_to_one_and_table_layout(models):
    path = models["qwen2"]
    with orc.Model(path) as m:
        ids = m.tokenize(PROMPT)
        v = m.vocab_size
    doc = json.loads(orc_cli("logits", path, PROMPT, "--top", v, "--positions", "last", "--json", check_rc=0).stdout)
    (last,) = doc["positions"]
    assert last["position"] == len(ids) - 1
    probs = [t["prob"] for t in last["top"]]
    assert len(probs) == v and abs(sum(probs) - 1.0) < 1e-9 and probs == sorted(probs, reverse=True)

    ref = _api_logits(path, ids)
    out = orc_cli("logits", path, PROMPT, "--top", 4, "--positions", "0,-1", check_rc=0).stdout.decode()
    blocks = re.findall(r"^position (\d+): token (\d+) ", out, flags=re.M)
    assert blocks == [("0", str(ids[0])), (str(len(ids) - 1), str(ids[-1]))]
    for pos, block in zip((0, len(ids) - 1), out.split("\nposition ")[1:]):
        rows = [line.split() for line in block.splitlines() if re.match(r"\s+\d+\s+\d+\s", line)]
        assert [int(r[0]) for r in rows] == [1, 2, 3, 4]
        assert int(rows[0][1]) == int(ref[pos].argmax())
        assert float(rows[0][-2]) == pytest.approx(float(ref[pos].max()), abs=1e-4)


# ------------------------------------------------------------------------------------------------
# diff

def test_diff_float32_vs_float16_on_the_cpu(models):
    path = models["llama"]
    r = orc_cli("diff", path, PROMPT, "--a", "cpu:float32", "--b", "cpu:float16", check_rc=0)
    out = r.stdout.decode()
    assert "A (reference): cpu float32" in out and "B:             cpu float16" in out
    assert "no divergence" in out and out.rstrip().endswith("OK: B matches A within tolerance")
    sections = re.findall(r"^\s+(embd|layer \d+|output)\s+\d+", out, flags=re.M)
    assert sections == ["embd", "layer 0", "layer 1", "output"]

    doc = json.loads(orc_cli("diff", path, PROMPT, "--a", "cpu:f32", "--b", "cpu:f16", "--json", check_rc=0).stdout)
    with orc.Model(path, device="cpu") as m:
        ids = m.tokenize(PROMPT)
        names = m.hook_names
        ta = orc.Session(m, n_ctx=64).trace(ids)
    with orc.Model(path, device="cpu", dtype="float16") as m:
        tb = orc.Session(m, n_ctx=64).trace(ids)
    assert doc["prompt_ids"] == ids and not doc["diverged"] and doc["first_divergence"] is None
    assert [h["hook"] for h in doc["hooks"]] == names
    for h in doc["hooks"]:
        want = orc.compare.nmse(tb[h["hook"]], ta[h["hook"]])
        assert h["nmse"] == pytest.approx(want, rel=1e-6, abs=1e-15), h
    assert any(h["nmse"] > 0 for h in doc["hooks"]), "float16 weights must differ somewhere"
    assert doc["logits"]["top1_agree"] == len(ids) and doc["logits"]["top1_differs_at"] == []
    by_section = {s["section"]: s for s in doc["layers"]}
    layer1 = [h for h in doc["hooks"] if h["hook"].startswith("blk.1.")]
    worst = max(layer1, key=lambda h: h["nmse"])
    assert by_section["layer 1"]["worst_hook"] == worst["hook"] and by_section["layer 1"]["hooks"] == len(layer1)


def test_diff_tolerance_decides_the_exit_code(models):
    path = models["llama"]
    r = orc_cli("diff", path, PROMPT, "--a", "cpu", "--b", "cpu:float16", "--tol", 1e-14, "--json", check_rc=1)
    doc = json.loads(r.stdout)
    assert doc["diverged"]
    first = doc["first_divergence"]
    hooks = [h["hook"] for h in doc["hooks"]]
    # the first hook beyond tol in execution order, and nothing before it is beyond
    idx = hooks.index(first["hook"])
    assert all(h["ok"] for h in doc["hooks"][:idx]) and not doc["hooks"][idx]["ok"]
    assert first["value"] > 1e-14
    # the same backend twice: bit-identical, so even tol 0 passes
    doc = json.loads(orc_cli("diff", path, PROMPT, "--a", "cpu", "--b", "cpu", "--tol", 0, "--json",
                             check_rc=0).stdout)
    assert all(h["nmse"] == 0 and h["max_abs"] == 0 for h in doc["hooks"])


def test_diff_catches_quantized_weights_used_as_float16(models):
    """The bug orc was born from: quantized blocks fed to the matmul as float16."""
    path = models["llama"]
    r = orc_cli("diff", path, PROMPT, "--a", "cpu:float16", "--b", "cpu:float16", "--b-fault", "raw_as_f16",
                check_rc=1)
    out = r.stdout.decode()
    assert re.search(r"^first divergence: blk\.0\.q at position 0: ", out, flags=re.M), out
    assert "fault raw_as_f16" in out and out.rstrip().endswith("DIVERGED")
    assert re.search(r"^\s+embd\s+1\s+0\s", out, flags=re.M), "the float32 embeddings are not affected"
    assert "B's logits look broken" in out and "[error] nonfinite" in out
    assert "[error] first_bad_hook: blk.0.q is the first hook with" in out
    assert "blk.0.q is also the first hook that reads a quantized tensor: blk.0.attn_q.weight (Q4_K)" in out
    doc = json.loads(orc_cli("diff", path, PROMPT, "--a", "cpu:float16", "--b", "cpu:float16", "--b-fault",
                             "raw_as_f16", "--json", check_rc=1).stdout)
    assert doc["first_divergence"]["hook"] == "blk.0.q"
    assert doc["logits"]["top1_agree"] == 0
    assert "nonfinite" in [f["code"] for f in doc["diagnosis"]["b"]] and doc["diagnosis"]["a"] is not None
    helptext = " ".join(orc_cli("diff", "--help", check_rc=0).stdout.decode().split())
    assert "--b-fault {raw_as_f16}" in helptext and "stored bytes as float16" in helptext, "shown, not hidden"


@no_gpu
def test_diff_defaults_run_without_a_gpu_and_say_which_b(models):
    r = orc_cli("diff", models["qwen2"], PROMPT, check_rc=0)
    out = r.stdout.decode()
    assert "A (reference): cpu float32" in out
    assert "B:             cpu float16   (default B on a machine without a usable GPU: the CPU with float16" in out
    doc = json.loads(orc_cli("diff", models["qwen2"], PROMPT, "--json", check_rc=0).stdout)
    assert doc["b"] == "cpu float16" and "without a usable GPU" in doc["b_note"]
    helptext = " ".join(orc_cli("diff", "--help", check_rc=0).stdout.decode().split())
    assert "default: cuda when a GPU is usable, else cpu:float16" in helptext
    # asking for the GPU explicitly still says what to do without one
    assert_one_line_error(orc_cli("diff", models["qwen2"], PROMPT, "--b", "cuda"), "diff", "--b cuda",
                          "--a cpu:float32 --b cpu:float16")


def test_diff_warns_when_the_capture_skips_earlier_hooks(models):
    """The fault starts at blk.0.q; with --capture 'blk.1.*' the first divergence among the captured
    hooks is in layer 1, and the warning says that earlier hooks were not looked at."""
    path = models["llama"]
    r = orc_cli("diff", path, PROMPT, "--a", "cpu:float16", "--b", "cpu:float16", "--b-fault", "raw_as_f16",
                "--capture", "blk.1.*,logits", check_rc=1)
    out, err = r.stdout.decode(), r.stderr.decode()
    assert re.search(r"^first divergence: blk\.1\.attn_norm at position 0", out, flags=re.M), out
    assert ("orc diff: warning: --capture 'blk.1.*,logits' skips 16 hook(s) that run before blk.1.attn_norm "
            "(embd, blk.0.attn_norm, blk.0.q, blk.0.k, ...)") in err
    assert "warning: --capture" in out
    # every hook captured, or nothing before the divergence skipped: no warning
    r = orc_cli("diff", path, PROMPT, "--a", "cpu:float16", "--b", "cpu:float16", "--b-fault", "raw_as_f16",
                "--capture", "embd,blk.0.*", check_rc=1)
    assert "warning" not in r.stderr.decode()
    doc = json.loads(orc_cli("diff", path, PROMPT, "--a", "cpu:float16", "--b", "cpu:float16", "--b-fault",
                             "raw_as_f16", "--capture", "blk.0.v*", "--json", check_rc=1).stdout)
    assert doc["first_divergence"]["hook"] == "blk.0.v" and "blk.0.q" in doc["warnings"][0]


def test_chat_template_errors_name_the_flag(models):
    for command in ("run", "logits"):
        r = orc_cli(command, models["qwen2"], PROMPT, "--chat")
        assert_one_line_error(r, command, "--chat-template NAME, one of chatml")
        assert "template=" not in r.stderr.decode()


def test_parse_backend():
    assert parse_backend("cpu") == parse_backend("cpu")
    b = parse_backend("cpu:bf16")
    assert (b.device, b.dtype) == ("cpu", "bfloat16")
    b = parse_backend("cuda:1:float32")
    assert (b.device, b.dtype) == ("cuda:1", "float32")
    b = parse_backend("cuda:f16")
    assert (b.device, b.dtype) == ("cuda", "float16")
    assert parse_backend("cuda").dtype is None
    from orc._cli import CliError

    for bad in ("gpu", "cpu:1", "cuda:1:2", "cuda:float16:1", "cpu:"):
        with pytest.raises(CliError):
            parse_backend(bad)


# ------------------------------------------------------------------------------------------------
# on a GPU (the lead's device runs; skipped here)

@pytest.mark.gpu
def test_gpu_run_matches_the_api_on_the_gpu(models):
    path = models["qwen2"]
    with orc.Model(path, device="cuda") as m, orc.Session(m, n_ctx=64) as s:
        ids = m.tokenize(PROMPT)
        want = [st.token for st in s.generate(ids, 16, stop=[], temperature=0.0)]
    r = orc_cli("run", path, PROMPT, "-n", 16, "--device", "cuda", "--show-ids", "--ignore-eos", check_rc=0)
    assert [int(t) for t in r.stdout.split()] == want
    assert "cuda:0 float16" in r.stderr.decode()


@pytest.mark.gpu
def test_gpu_logits_top1_matches_the_cpu(models):
    path = models["llama"]
    cpu = json.loads(orc_cli("logits", path, PROMPT, "--top", 2, "--json", "--device", "cpu", "--dtype", "float16",
                             check_rc=0).stdout)
    gpu = json.loads(orc_cli("logits", path, PROMPT, "--top", 2, "--json", "--device", "cuda", check_rc=0).stdout)
    assert gpu["device"].startswith("cuda") and gpu["prompt_ids"] == cpu["prompt_ids"]
    for c, g in zip(cpu["positions"], gpu["positions"]):
        gap = c["top"][0]["logit"] - c["top"][1]["logit"]
        if gap > 1e-2:  # float16 rounding may only flip near-ties
            assert g["top"][0]["id"] == c["top"][0]["id"], c["position"]


@pytest.mark.gpu
def test_gpu_diff_cpu_vs_cuda(models):
    path = models["llama"]
    # like for like (float16 weights and KV on both): the parity tolerance of tests/test_model_gpu.py
    doc = json.loads(orc_cli("diff", path, PROMPT, "--a", "cpu:float16", "--b", "cuda:float16", "--kv-dtype",
                             "float16", "--tol", 1e-5, "--json", check_rc=0).stdout)
    assert not doc["diverged"] and doc["b"].startswith("cuda")
    assert any(h["nmse"] > 0 for h in doc["hooks"]), "two backends are not bit-identical"
    # the defaults: CPU float32 against the GPU's float16, within the default tolerance
    out = orc_cli("diff", path, PROMPT, check_rc=0).stdout.decode()
    assert "B:             cuda:0 float16" in out


@pytest.mark.gpu
def test_gpu_diff_catches_the_fault_on_the_gpu(models):
    path = models["llama"]
    doc = json.loads(orc_cli("diff", path, PROMPT, "--a", "cpu:float16", "--b", "cuda", "--b-fault", "raw_as_f16",
                             "--json", check_rc=1).stdout)
    assert doc["first_divergence"]["hook"] == "blk.0.q"
