"""Rough edges a new user hit (issue #16), each pinned by a test: pinned model names in the API
and in `orc info`, `orc diff`'s defaults and warnings, the --chat-template message, importing from
the clone's parent folder, and the CUDA build's message."""
import os
import subprocess
import sys

import pytest

import orc
from orc import fixtures

from realmodels import real_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(orc.__file__)))
SMOL = "smollm2-135m-instruct"


def orc_cli(*args, cwd=None, env=None, **kw):
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "orc", *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=120, cwd=cwd, **kw)


def one_line_error(r, command, *needles):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert "Traceback" not in r.stderr and len(lines) == 1 and lines[0].startswith(f"orc {command}: "), r.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])


# ------------------------------------------------------------------------------------------------
# pinned model names

def test_model_accepts_a_pinned_name():
    path = real_model(SMOL)
    with orc.Model(SMOL, device="cpu") as m:
        assert m.path == str(path) and m.arch == "llama"


def test_model_rejects_an_unknown_name_naming_the_pinned_ones():
    with pytest.raises(FileNotFoundError, match=r"no such GGUF file: 'not-a-model'.*smollm2-135m-instruct"):
        orc.Model("not-a-model")


def test_model_pinned_name_offline_and_not_cached_says_why(tmp_path, monkeypatch):
    monkeypatch.setenv("ORC_MODEL_CACHE", str(tmp_path))
    monkeypatch.setenv("ORC_FIXTURES_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match=r"pinned model 'gemma3-270m' is not available.*OFFLINE"):
        orc.Model("gemma3-270m")
    assert list(tmp_path.iterdir()) == [], "nothing was fetched"


def test_info_accepts_a_pinned_name():
    real_model(SMOL)
    r = orc_cli("info", SMOL)
    assert r.returncode == 0, r.stderr
    assert "architecture   llama" in r.stdout and "SmolLM2-135M-Instruct.Q4_1.gguf" in r.stdout


def test_info_trouble_is_exit_code_2_in_one_line(tmp_path):
    one_line_error(orc_cli("info", tmp_path / "missing.gguf"), "info", "missing.gguf", "pinned model name")
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGML" + b"\0" * 40)
    one_line_error(orc_cli("info", bad), "info", "magic")
    one_line_error(orc_cli("info", tmp_path), "info", "directory")
