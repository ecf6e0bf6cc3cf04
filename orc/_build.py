"""Build provenance and stale-build detection.

setup.py records, inside the binary, the SHA-256 of every source file it
compiled. When orc is imported from the checkout it was built in (an editable
or in-place build), we hash those files again: if any changed, was deleted, or
a new source file appeared, the binary does not match the code you are reading,
and `import orc` says so with a StaleBuildWarning naming the files.
`orc.check_build()` raises StaleBuildError instead.
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import warnings

from . import _orc

__all__ = ["StaleBuildWarning", "StaleBuildError", "build_info", "stale_sources", "check_build"]


class StaleBuildWarning(UserWarning):
    """The compiled extension was built from sources that differ from the ones on disk."""


class StaleBuildError(_orc.OrcError):
    """Raised by check_build() when the compiled extension is stale."""


_INFO = json.loads(_orc.build_info_json())


def _patterns(info):
    pats = ["csrc/**/*.c", "csrc/**/*.h"]
    if info.get("cuda"):
        pats += ["cuda/**/*.cu", "cuda/**/*.cuh", "cuda/**/*.h"]
    return pats


def _sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _from_build_tree(info, package_dir) -> bool:
    root = info.get("source_root")
    if not root or not os.path.isfile(os.path.join(root, "setup.py")):
        return False
    root = os.path.realpath(root)
    return os.path.commonpath([os.path.realpath(package_dir), root]) == root


def stale_sources(info: dict | None = None, package_dir: str | None = None) -> list[str] | None:
    """Source files that differ from what was compiled in, as 'path (modified|deleted|added)'.

    Returns None when the check does not apply (orc not imported from the
    checkout it was built in, e.g. an installed wheel), [] when the build is fresh.
    `info` and `package_dir` default to this binary's record and this package's folder.
    """
    info = _INFO if info is None else info
    if not _from_build_tree(info, package_dir or os.path.dirname(__file__)):
        return None
    root = info["source_root"]
    compiled = info.get("sources", {})
    changes = []
    for rel, digest in sorted(compiled.items()):
        path = os.path.join(root, rel)
        if not os.path.exists(path):
            changes.append(f"{rel} (deleted)")
        elif _sha256(path) != digest:
            changes.append(f"{rel} (modified)")
    on_disk = set()
    for pat in _patterns(info):
        on_disk.update(os.path.relpath(p, root) for p in glob.glob(os.path.join(root, pat), recursive=True))
    for rel in sorted(on_disk - set(compiled)):
        changes.append(f"{rel} (added)")
    return changes


def build_info() -> dict:
    """Where this binary came from: version, git commit/dirty, per-file source hashes,
    build time, compilers, CUDA/cuBLAS versions, GPU architectures, debug/sanitizer flags."""
    info = dict(_INFO)
    info["sources"] = dict(_INFO.get("sources", {}))
    info["module_path"] = _orc.__file__
    v = _orc.cuda_versions() if info.get("cuda") else {}

    def ver(n):
        return f"{n // 1000}.{(n % 1000) // 10}" if n else None

    info["cuda_runtime_compiled"] = ver(v.get("runtime_compiled", 0))
    info["cuda_runtime"] = ver(v.get("runtime", 0))
    info["cuda_driver"] = ver(v.get("driver", 0))
    cb = v.get("cublas", 0)
    info["cublas"] = f"{cb // 10000}.{(cb // 100) % 100}.{cb % 100}" if cb else None
    info["stale_sources"] = stale_sources()
    return info


def _stale_message(changes):
    return (
        "orc's compiled extension is stale: these sources changed since it was built: "
        + ", ".join(changes)
        + ". Rebuild (pip install --no-build-isolation -e . or python setup.py build_ext --inplace)."
    )


def check_build() -> None:
    """Raise StaleBuildError if the extension was built from sources that differ from disk."""
    changes = stale_sources()
    if changes:
        raise StaleBuildError(_stale_message(changes))


def warn_if_stale() -> None:
    if os.environ.get("ORC_STALE_CHECK", "1") == "0":
        return
    try:
        changes = stale_sources()
    except OSError:
        return
    if changes:
        warnings.warn(_stale_message(changes), StaleBuildWarning, stacklevel=3)
