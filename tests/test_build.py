"""Build provenance (orc.build_info) and stale-build detection."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import warnings

import pytest

import orc
from orc import _build

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_build_info_has_provenance():
    info = orc.build_info()
    for key in ["version", "git_commit", "git_dirty", "sources", "source_hash", "build_time", "cc_version",
                "nvcc_version", "cuda", "cuda_archs", "cuda_runtime", "cublas", "debug", "sanitize"]:
        assert key in info, key
    assert info["version"] == orc.__version__
    assert info["sources"], "no source hashes recorded"
    assert "csrc/python/module.c" in info["sources"]
    assert all(len(h) == 64 for h in info["sources"].values())
    if info["cuda"]:
        assert "cuda/runtime/device.cu" in info["sources"]
        assert info["cuda_archs"] and all(a.startswith("sm_") for a in info["cuda_archs"])
        assert info["cuda_runtime_compiled"] is not None and info["cublas"] is not None


def test_recorded_hashes_are_the_files_hashes():
    info = orc.build_info()
    if info["stale_sources"] is None:
        pytest.skip("orc is not imported from the tree it was built in")
    for rel, digest in info["sources"].items():
        with open(os.path.join(info["source_root"], rel), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == digest, rel


def _fake_tree(tmp_path):
    """A source tree and a build record that matches it."""
    (tmp_path / "csrc").mkdir()
    (tmp_path / "orc").mkdir()
    (tmp_path / "setup.py").write_text("")
    files = {"csrc/a.c": b"int a;\n", "csrc/a.h": b"/* h */\n"}
    for rel, data in files.items():
        (tmp_path / rel).write_bytes(data)
    info = {"source_root": str(tmp_path), "cuda": False,
            "sources": {rel: hashlib.sha256(d).hexdigest() for rel, d in files.items()}}
    return info, str(tmp_path / "orc")


def test_stale_sources_fresh_tree_is_clean(tmp_path):
    info, pkg = _fake_tree(tmp_path)
    assert _build.stale_sources(info, pkg) == []


def test_stale_sources_names_modified_deleted_added(tmp_path):
    info, pkg = _fake_tree(tmp_path)
    (tmp_path / "csrc/a.c").write_bytes(b"int a = 1;\n")
    (tmp_path / "csrc/a.h").unlink()
    (tmp_path / "csrc/new.c").write_bytes(b"int b;\n")
    assert _build.stale_sources(info, pkg) == ["csrc/a.c (modified)", "csrc/a.h (deleted)", "csrc/new.c (added)"]


def test_stale_check_does_not_apply_outside_the_build_tree(tmp_path):
    info, _ = _fake_tree(tmp_path)
    assert _build.stale_sources(info, str(tmp_path.parent / "elsewhere")) is None


def _import_orc_warnings(env_extra=None):
    code = ("import warnings, json\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            "    warnings.simplefilter('always')\n"
            "    import orc\n"
            "print(json.dumps([(x.category.__name__, str(x.message)) for x in w]))\n")
    env = dict(os.environ, **(env_extra or {}))
    env.pop("ORC_STALE_CHECK", None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_warns_when_a_compiled_source_changes_and_not_otherwise():
    info = orc.build_info()
    if info["stale_sources"] is None:
        pytest.skip("orc is not imported from the tree it was built in")
    if info["stale_sources"]:
        pytest.skip(f"the build is already stale: {info['stale_sources']}")
    assert _import_orc_warnings() == []  # a fresh build is silent
    target = os.path.join(info["source_root"], "csrc", "core", "error.c")
    backup = target + ".orc-test-backup"
    shutil.copy2(target, backup)
    try:
        with open(target, "a") as f:
            f.write("/* edited after the build */\n")
        got = _import_orc_warnings()
        with pytest.raises(orc.StaleBuildError, match=r"csrc/core/error.c \(modified\)"):
            orc.check_build()
    finally:
        os.replace(backup, target)
    assert [c for c, _ in got] == ["StaleBuildWarning"]
    assert "csrc/core/error.c (modified)" in got[0][1]
    orc.check_build()  # restored: fresh again


def test_exception_hierarchy():
    assert issubclass(orc.OrcError, RuntimeError)
    assert issubclass(orc.GGUFError, ValueError) and issubclass(orc.GGUFError, orc.OrcError)
    assert issubclass(orc.CudaError, orc.OrcError)
    assert issubclass(orc.StaleBuildError, orc.OrcError)
    assert issubclass(orc.StaleBuildWarning, Warning)


def test_cli_version():
    out = subprocess.run([sys.executable, "-m", "orc", "--version"], capture_output=True, text=True, cwd=ROOT,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"orc {orc.__version__} ")
    assert "cuda:" in out.stdout
