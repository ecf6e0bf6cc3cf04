"""setup.py says which setuptools it needs (issue #12 item 7): pyproject.toml's PEP 639 license
needs setuptools>=77, and an older one (a fresh Python 3.11 venv has 65.5) otherwise fails with
an error about `project.license` that names neither. Run against a stand-in setuptools package."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_setup_with(tmp_path, version):
    fake = tmp_path / "fake" / "setuptools"
    (fake / "command").mkdir(parents=True, exist_ok=True)
    (fake / "__init__.py").write_text(f"__version__ = {version!r}\n"
                                      "class Extension:\n    def __init__(self, *a, **k): pass\n"
                                      "def setup(**kw): print('setup called')\n")
    (fake / "command" / "__init__.py").write_text("")
    (fake / "command" / "build_ext.py").write_text("class build_ext: pass\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "fake"))
    return subprocess.run([sys.executable, "setup.py", "--name"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)


def test_old_setuptools_gets_a_clear_message(tmp_path):
    r = run_setup_with(tmp_path, "65.5.0")
    assert r.returncode != 0
    assert "orc needs setuptools>=77" in r.stderr and "this Python has setuptools 65.5.0" in r.stderr, r.stderr
    assert "pip install 'setuptools>=77'" in r.stderr
    assert "setup called" not in r.stdout


def test_new_setuptools_goes_on(tmp_path):
    for v in ("77.0.0", "80.9.0.post1", "84.2.1"):
        r = run_setup_with(tmp_path, v)
        assert r.returncode == 0 and "setup called" in r.stdout, (v, r.stdout, r.stderr)
