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


# ------------------------------------------------------------------------------------------------
# importing from the clone's parent folder

def _python(code, cwd, no_site=False):
    """Python in `cwd` with nothing of ours on PYTHONPATH; no_site: without site (so without pip's
    editable finder), NumPy's site-packages given by PYTHONPATH instead."""
    import numpy

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    args = [sys.executable]
    if no_site:
        env["PYTHONPATH"] = os.path.dirname(os.path.dirname(numpy.__file__))
        args.append("-S")
    return subprocess.run(args + ["-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


PROBE = "import orc, sys; print(orc.__file__); print(orc.Session.__name__, orc.compare.__name__)"


@pytest.mark.parametrize("no_site", [False, True], ids=["with-site", "no-site"])
def test_import_from_the_clones_parent_folder_gets_the_real_package(tmp_path, no_site):
    """A clone named orc, imported from the folder that holds it. Without the checkout's root
    __init__.py, Python's path search finds the clone folder first and makes it an empty namespace
    package (pip's editable finder only runs after the path search). The root __init__.py steps
    aside: the orc Python would import without the parent folder on the path (with site: the
    installed/editable one), else this checkout's package (no site: nothing else is installed)."""
    (tmp_path / "orc").symlink_to(ROOT, target_is_directory=True)
    r = _python(PROBE, tmp_path, no_site)
    assert r.returncode == 0, r.stderr
    file, names = r.stdout.split("\n")[:2]
    assert names == "Session orc.compare" and file.endswith(os.path.join("orc", "__init__.py"))
    assert file != os.path.join(str(tmp_path), "orc", "__init__.py"), "the real package, not the checkout root"
    if no_site:
        assert file == os.path.join(str(tmp_path), "orc", "orc", "__init__.py")
    r = _python("import runpy, sys; sys.argv = ['orc', '--help']; runpy.run_module('orc', run_name='__main__')",
                tmp_path, no_site)
    assert "diff" in r.stdout and "logits" in r.stdout, r.stderr


def test_without_the_root_init_the_clone_folder_is_an_empty_namespace_package(tmp_path):
    """The negative control: the same layout without the root __init__.py reproduces the failure."""
    clone = tmp_path / "orc"
    clone.mkdir()
    (clone / "orc").symlink_to(os.path.join(ROOT, "orc"), target_is_directory=True)
    r = _python(PROBE, tmp_path, no_site=True)
    assert r.returncode == 1 and "module 'orc' has no attribute 'Session'" in r.stderr, r.stderr
    (clone / "__init__.py").write_bytes(open(os.path.join(ROOT, "__init__.py"), "rb").read())
    assert _python(PROBE, tmp_path, no_site=True).returncode == 0


# ------------------------------------------------------------------------------------------------
# the CUDA build says what it is doing

def test_cuda_build_says_what_it_compiles_and_how_to_skip_it(tmp_path):
    """nvcc present (a stand-in that fails at once), no GPU: before compiling, setup.py says on
    stderr what it builds, for which architectures, and how to skip it (pip -v shows stderr; a
    non-verbose pip gets the same line on the terminal, which a test has none of)."""
    home = tmp_path / "cuda"
    (home / "bin").mkdir(parents=True)
    (home / "include").mkdir()
    (home / "include" / "cuda_runtime.h").write_text("")
    nvcc = home / "bin" / "nvcc"
    nvcc.write_text("#!/bin/sh\necho 'stand-in nvcc: not compiling' >&2\nexit 3\n")
    nvcc.chmod(0o755)
    env = dict(os.environ, PATH=f"{home / 'bin'}{os.pathsep}/usr/bin{os.pathsep}/bin", CUDA_HOME=str(home),
               ORC_CUDA="1", ORC_CUDA_ARCHS="80;90")
    env.pop("ORC_WERROR", None)
    r = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--build-temp", str(tmp_path / "bt"),
                        "--build-lib", str(tmp_path / "bl")], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=120, stdin=subprocess.DEVNULL, start_new_session=True)  # no terminal
    assert r.returncode != 0 and "stand-in nvcc" in r.stderr
    n = len([f for d, _, fs in os.walk(os.path.join(ROOT, "cuda")) for f in fs if f.endswith(".cu")])
    line = next(x for x in r.stderr.splitlines() if x.startswith("orc: compiling"))
    assert line.startswith(f"orc: compiling {n} CUDA source file(s) with {nvcc} for sm_80, sm_90 (+ PTX for "
                           "compute_90): this takes minutes")
    assert "ORC_CUDA=0 builds for the CPU only" in line and "ORC_CUDA_ARCHS=90" in line
    if not any(os.path.exists(p) for p in ("/dev/nvidiactl", "/dev/nvidia0", "/dev/dxg")):
        assert "no NVIDIA GPU is visible on this machine" in line
