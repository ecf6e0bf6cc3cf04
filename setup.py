"""Build orc._orc: the C core and binding (csrc/**/*.c) and, when CUDA is found, the
kernels (cuda/**/*.cu, compiled by nvcc and linked with cudart and cuBLAS).

Environment:
  ORC_CUDA=1|0        force a CUDA build (fail if nvcc is missing) / a CPU-only build;
                      unset: build with CUDA when nvcc and cuda_runtime.h are found.
  ORC_CUDA_ARCHS      GPU architectures, e.g. "90" or "80;86;90" (default "80;86;89;90").
  ORC_WERROR=1        warnings are errors (C and nvcc). CI sets it.
  ORC_DEBUG=1         -O0 -g build.
  ORC_SANITIZE=...    e.g. "address,undefined": a sanitizer build of the C code.

Every build embeds its provenance (orc.build_info()): the version, git commit and
dirty flag, the SHA-256 of every source file compiled in, compilers, flags. At
import, orc compares those hashes with the files on disk and warns when the
binary is stale (orc/_build.py).
"""
import concurrent.futures
import datetime
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

import setuptools


def check_setuptools(version=setuptools.__version__, need=77):
    """pyproject.toml's license = "MIT" (PEP 639) needs setuptools 77; older ones fail deep inside
    setup() with "invalid pyproject.toml config: `project.license`", which names neither. With
    --no-build-isolation pip does not install the [build-system] requirements, so say it here."""
    try:
        major = int(version.split(".")[0])
    except ValueError:
        return  # an unusual version string: let setuptools speak for itself
    if major < need:
        raise SystemExit(
            f"orc needs setuptools>={need} to build (pyproject.toml declares its license the PEP 639 way, "
            f'license = "MIT"); this Python has setuptools {version} ({os.path.dirname(setuptools.__file__)}). '
            f"Upgrade it: {sys.executable} -m pip install 'setuptools>={need}' "
            "(or let pip build in isolation: leave out --no-build-isolation).")


check_setuptools()

from setuptools import Extension, setup  # noqa: E402
from setuptools.command.build_ext import build_ext  # noqa: E402

ROOT = os.path.dirname(os.path.abspath(__file__))


def env_flag(name):
    v = os.environ.get(name)
    if v is None or v == "":
        return None
    return v.strip().lower() not in ("0", "false", "no", "off")


def find_cuda():
    """Return (cuda_home, nvcc) or (None, reason)."""
    nvcc = shutil.which("nvcc")
    homes = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"]
    if nvcc:
        homes.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(nvcc))))
    for home in homes:
        if not home:
            continue
        cand = os.path.join(home, "bin", "nvcc")
        if os.path.exists(cand) and os.path.exists(os.path.join(home, "include", "cuda_runtime.h")):
            return home, cand
    return None, "nvcc and cuda_runtime.h not found (set CUDA_HOME)"


def cuda_archs():
    raw = os.environ.get("ORC_CUDA_ARCHS", "80;86;89;90")
    archs = [a.strip().replace("sm_", "") for a in raw.replace(",", ";").split(";") if a.strip()]
    if not archs:
        raise SystemExit("ORC_CUDA_ARCHS is empty")
    return archs


def run_text(cmd):
    try:
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=30)
        return out.stdout.strip() if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def source_files(with_cuda):
    """Every file whose content goes into the binary (sources and headers)."""
    pats = ["csrc/**/*.c", "csrc/**/*.h"]
    if with_cuda:
        pats += ["cuda/**/*.cu", "cuda/**/*.cuh", "cuda/**/*.h"]
    files = []
    for p in pats:
        files += glob.glob(os.path.join(ROOT, p), recursive=True)
    return sorted(os.path.relpath(f, ROOT) for f in files)


def read_version():
    ns = {}
    with open(os.path.join(ROOT, "orc", "_version.py")) as f:
        exec(f.read(), ns)
    return ns["__version__"]


def announce(msg, terminal=True):
    """Tell the person waiting. To stderr, which `pip install -v` shows (and a failed build's
    log); a non-verbose pip captures the build's output and shows only a spinner or "still
    running...", so with `terminal` the message also goes straight to the controlling terminal
    (/dev/tty) when there is one and stderr is not it."""
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()
    if terminal and not sys.stderr.isatty():
        try:
            with open("/dev/tty", "w") as tty:
                tty.write(msg + "\n")
        except OSError:  # no terminal (CI): stderr is all there is
            pass


def gpu_visible():
    return any(os.path.exists(p) for p in ("/dev/nvidiactl", "/dev/nvidia0", "/dev/dxg"))


def c_string_literal(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class OrcBuildExt(build_ext):
    def build_extensions(self):
        ext = self.extensions[0]
        want = env_flag("ORC_CUDA")
        werror = bool(env_flag("ORC_WERROR"))
        debug = bool(env_flag("ORC_DEBUG"))
        sanitize = os.environ.get("ORC_SANITIZE", "").strip()

        cuda_home, nvcc = (None, None)
        cuda_reason = "disabled by ORC_CUDA=0"
        if want is not False:
            cuda_home, nvcc_or_reason = find_cuda()
            if cuda_home is None:
                if want:
                    raise SystemExit("ORC_CUDA=1 but " + nvcc_or_reason)
                cuda_reason = nvcc_or_reason
            else:
                nvcc = nvcc_or_reason
        with_cuda = cuda_home is not None

        cflags = ["-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fvisibility=hidden",
                  "-D_GNU_SOURCE", "-DNPY_NO_DEPRECATED_API=NPY_1_7_API_VERSION"]
        cflags += ["-O0", "-g"] if debug else ["-O2"]
        if werror:
            cflags.append("-Werror")
        ldflags = ["-lm", "-pthread"]
        if sanitize:
            cflags += [f"-fsanitize={sanitize}", "-fno-omit-frame-pointer", "-fno-sanitize-recover=all"]
            ldflags.append(f"-fsanitize={sanitize}")

        archs = []
        if with_cuda:
            archs = cuda_archs()
            cflags.append("-DORC_HAVE_CUDA=1")
            lib = os.path.join(cuda_home, "lib64")
            ext.extra_objects = self.compile_cuda(nvcc, cuda_home, archs, werror, debug)
            # cudart statically (no libcudart needed at run time), cuBLAS from the toolkit.
            ldflags += [os.path.join(lib, "libcudart_static.a"), f"-L{lib}", "-lcublas", "-lcublasLt",
                        f"-Wl,-rpath,{lib}", "-ldl", "-lrt", "-lstdc++"]

        info = self.provenance(with_cuda, cuda_reason, nvcc, archs, cflags, debug, sanitize, werror)
        ext.sources = [s for s in ext.sources if not s.endswith("orc_build_info.c")]
        ext.sources.append(self.write_build_info(info))
        import numpy  # a build requirement: resolved only now that it is installed

        ext.include_dirs = ["csrc", numpy.get_include()]
        ext.extra_compile_args = cflags
        ext.extra_link_args = ldflags
        ext.depends = source_files(with_cuda)
        super().build_extensions()

    def compile_cuda(self, nvcc, cuda_home, archs, werror, debug):
        out_dir = os.path.join(self.build_temp, "cuda")
        os.makedirs(out_dir, exist_ok=True)
        flags = ["-std=c++17", "-Xcompiler", "-fPIC,-Wall,-Wextra,-fvisibility=hidden",
                 "-DORC_HAVE_CUDA=1", "--expt-relaxed-constexpr",
                 "-I" + os.path.join(ROOT, "csrc"), "-I" + os.path.join(ROOT, "cuda")]
        flags += ["-O0", "-g", "-lineinfo"] if debug else ["-O3", "-lineinfo"]
        if werror:
            flags += ["-Werror", "all-warnings"]
        for a in archs:
            flags.append(f"-gencode=arch=compute_{a},code=sm_{a}")
        top = max(archs, key=lambda a: int("".join(c for c in a if c.isdigit())))
        flags.append(f"-gencode=arch=compute_{top},code=compute_{top}")  # PTX for newer GPUs
        headers = (glob.glob(os.path.join(ROOT, "cuda", "**", "*.cuh"), recursive=True)
                   + glob.glob(os.path.join(ROOT, "csrc", "**", "*.h"), recursive=True))
        newest_header = max((os.path.getmtime(h) for h in headers), default=0)

        def obj_of(src):
            return os.path.join(out_dir, os.path.relpath(src, os.path.join(ROOT, "cuda")).replace(os.sep, "_") + ".o")

        def fresh(src):
            obj = obj_of(src)
            return os.path.exists(obj) and os.path.getmtime(obj) >= max(os.path.getmtime(src), newest_header)

        srcs = sorted(glob.glob(os.path.join(ROOT, "cuda", "**", "*.cu"), recursive=True))
        todo = [s for s in srcs if not fresh(s)]
        done = []
        t0 = time.monotonic()

        def one(src):
            obj = obj_of(src)
            if src not in todo:
                return obj
            cmd = [nvcc, "-c", src, "-o", obj] + flags
            print(" ".join(cmd), flush=True)
            subprocess.run(cmd, check=True)
            done.append(src)
            announce(f"orc: nvcc [{len(done)}/{len(todo)}] {os.path.relpath(src, ROOT)} "
                     f"({time.monotonic() - t0:.0f} s)", terminal=False)
            return obj

        if todo:
            no_gpu = "" if gpu_visible() else "; no NVIDIA GPU is visible on this machine"
            announce(f"orc: compiling {len(todo)} CUDA source file(s) with {nvcc} for "
                     f"{', '.join('sm_' + a for a in archs)} (+ PTX for compute_{top}): this takes minutes{no_gpu}. "
                     "To skip it: ORC_CUDA=0 builds for the CPU only (seconds); ORC_CUDA_ARCHS=90 (your GPU's "
                     "compute capability) builds one architecture.")
        jobs = max(1, min(len(srcs), os.cpu_count() or 1))
        with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
            objs = list(pool.map(one, srcs))
        if todo:
            announce(f"orc: CUDA kernels compiled in {time.monotonic() - t0:.0f} s")
        return objs

    def provenance(self, with_cuda, cuda_reason, nvcc, archs, cflags, debug, sanitize, werror):
        cc = self.compiler.compiler_so[0] if getattr(self.compiler, "compiler_so", None) else "cc"
        cc_version = run_text([cc, "--version"])
        nvcc_version = run_text([nvcc, "--version"]) if nvcc else None
        files = source_files(with_cuda)
        sources = {f: sha256_file(os.path.join(ROOT, f)) for f in files}
        agg = hashlib.sha256("".join(f"{k}\0{v}\n" for k, v in sorted(sources.items())).encode()).hexdigest()
        commit = run_text(["git", "rev-parse", "HEAD"])
        dirty = None
        if commit:
            st = run_text(["git", "status", "--porcelain", "--untracked-files=no"])
            dirty = bool(st)
        return {
            "version": read_version(),
            "git_commit": commit,
            "git_dirty": dirty,
            "source_root": ROOT,
            "sources": sources,
            "source_hash": agg,
            "cc": cc,
            "cc_version": cc_version.splitlines()[0] if cc_version else None,
            "nvcc_version": nvcc_version.splitlines()[-1] if nvcc_version else None,
            "cuda": with_cuda,
            "cuda_reason": None if with_cuda else cuda_reason,
            "cuda_archs": [f"sm_{a}" for a in archs],
            "cflags": cflags,
            "debug": debug,
            "sanitize": sanitize or None,
            "werror": werror,
            "python": sys.version.split()[0],
            "numpy_build": __import__("numpy").__version__,
        }

    def write_build_info(self, info):
        os.makedirs(self.build_temp, exist_ok=True)
        path = os.path.join(self.build_temp, "orc_build_info.c")
        # Keep the file (and so the build) untouched when nothing it records changed.
        stamp_path = path + ".json"
        key = json.dumps(info, sort_keys=True)
        old = None
        if os.path.exists(stamp_path) and os.path.exists(path):
            with open(stamp_path) as f:
                old = f.read()
        if old != key:
            info = dict(info, build_time=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
            body = ("/* Generated by setup.py at build time; do not edit. */\n"
                    "const char *orc_build_info_json(void);\n"
                    "const char *orc_build_info_json(void) {\n    return "
                    + c_string_literal(json.dumps(info, sort_keys=True)) + ";\n}\n")
            with open(path, "w") as f:
                f.write(body)
            with open(stamp_path, "w") as f:
                f.write(key)
        return path


ext = Extension("orc._orc", sources=sorted(glob.glob("csrc/**/*.c", recursive=True)), include_dirs=["csrc"])

setup(ext_modules=[ext], cmdclass={"build_ext": OrcBuildExt})
