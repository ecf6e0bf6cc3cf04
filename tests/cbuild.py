"""Compile a small C test program against csrc/ and run it (tests/c/*.c).

Under tools/asan_tests.sh (LD_PRELOAD of the sanitizer runtimes) the compiler must not run with
them preloaded (LeakSanitizer would stop gcc itself); the program is then built with
-fsanitize=address,undefined instead, so it is checked as the module is."""
from __future__ import annotations

import os
import shutil
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CC = shutil.which(os.environ.get("CC", "gcc")) or shutil.which("cc")


def run_c(tmp_path, name: str, sources: list[str], libs=(), runs: int = 1) -> list[subprocess.CompletedProcess]:
    """Build tests/c/<name>.c with `sources` (paths relative to the repository) and run it."""
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    sanitized = "libasan" in os.environ.get("LD_PRELOAD", "")
    exe = str(tmp_path / name)
    srcs = [os.path.join(ROOT, "tests", "c", name + ".c")] + [os.path.join(ROOT, p) for p in sources]
    flags = ["-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-D_GNU_SOURCE", "-I" + os.path.join(ROOT, "csrc")]
    if sanitized:
        flags += ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
    subprocess.run([CC, *flags, *srcs, "-o", exe, *libs], check=True, capture_output=True, text=True, env=env)
    return [subprocess.run([exe], capture_output=True, text=True, timeout=60, env=env) for _ in range(runs)]
