"""orc's pytest plugin (registered through the `pytest11` entry point).

- markers `gpu` (skipped, with the reason, where no CUDA GPU is usable) and `slow`.
- the `golden` fixture: named reference arrays stored beside the test file, in
  `<test file's folder>/golden/<test module>/<name>.npy` (`.npz` for a mapping of arrays):

      def test_logits(golden):
          golden.check("qwen2_prompt1", logits, nmse=1e-6)

  The ini option `orc_golden_dir = some/folder` (relative to the rootdir) puts every module's
  goldens in `<rootdir>/some/folder/<test module>/` instead (`orc_golden_dir = tests/golden` is
  where orc's own goldens live). A missing golden fails, saying how to create it.
  `pytest --orc-update-golden` writes (or rewrites) every golden a test checks instead of
  comparing, and the summary lists the files written: look at them before committing. See
  orc.testing.GoldenStore.check for tolerances; `golden.tokenizer = model` makes failure tables
  show the argmax tokens' text.
- the `orc_model` fixture: a factory of models, closed when the test ends. Small synthetic ones
  (orc.synth), built on the fly into a temporary folder:

      def test_greedy_is_deterministic(orc_model):
          m = orc_model("llama", "Q4_K", n_layer=3)      # arch, weight type, ModelSpec fields
          ...

  or a pinned real model by name (orc.fixtures.names()), from orc's model cache:

      def test_real(orc_model):
          m = orc_model("smollm2-135m-instruct")         # skipped, saying why, when not cached

  Real models are downloaded only with ORC_FETCH_MODELS=1 (else the test is skipped when the
  model is not cached; `python -m orc.fixtures NAME` fetches it). Synthetic files are cached for
  the session by their arguments. device="cuda" skips the test, with the reason, where no CUDA
  GPU is usable.
"""
from __future__ import annotations

import os

import pytest

UPDATE_FLAG = "--orc-update-golden"
_WRITTEN = pytest.StashKey[list]()


def pytest_addoption(parser):
    group = parser.getgroup("orc")
    group.addoption(UPDATE_FLAG, action="store_true", default=False,
                    help="write the arrays given to golden.check() as the new goldens (golden/ beside each test "
                         "file, or orc_golden_dir) instead of comparing with them")
    parser.addini("orc_golden_dir", default="",
                  help="folder (relative to the rootdir) for every module's goldens, as <folder>/<test module>/; "
                       "default: golden/ beside each test file")


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a usable CUDA GPU (skipped with the reason when there is none)")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")
    config.stash[_WRITTEN] = []


def pytest_collection_modifyitems(config, items):
    gpu_items = [it for it in items if it.get_closest_marker("gpu")]
    if not gpu_items:
        return
    import orc

    st = orc.cuda_status()
    if st["available"]:
        return
    skip = pytest.mark.skip(reason=f"no usable CUDA GPU: {st['reason']}")
    for it in gpu_items:
        it.add_marker(skip)


def golden_folder(config, node) -> str:
    """Where a test's goldens live: <orc_golden_dir>/<module> when the ini option is set, else
    golden/<module> beside the test file."""
    path = str(getattr(node, "path", None) or node.fspath)
    stem = os.path.splitext(os.path.basename(path))[0]
    base = config.getini("orc_golden_dir")
    if base:
        return os.path.join(str(config.rootpath), base, stem)
    return os.path.join(os.path.dirname(path), "golden", stem)


@pytest.fixture
def golden(request):
    """Named golden arrays for this test module: golden.check(name, array, nmse=, atol=, exact=)."""
    from orc.testing import GoldenStore

    config = request.config
    folder = golden_folder(config, request.node)
    store = GoldenStore(folder, update=config.getoption(UPDATE_FLAG),
                        how_to_update=f"pytest {UPDATE_FLAG} {request.node.nodeid}")
    yield store
    config.stash[_WRITTEN].extend(store.written)


@pytest.fixture(scope="session")
def _orc_synth_files(tmp_path_factory):
    """{spec arguments: path} of the synthetic GGUF files built so far in this session."""
    return {"dir": tmp_path_factory.mktemp("orc_models"), "files": {}}


@pytest.fixture
def orc_model(_orc_synth_files):
    """orc_model(arch="qwen2", weight_type="Q8_0", device="cpu", *, dtype=None, fault=None,
    **spec_overrides) -> orc.Model: a small synthetic model (orc.synth.spec_for(arch, weight_type,
    **spec_overrides), e.g. n_layer=3, n_vocab=512, tied=True, seed=1) opened on `device`; its
    ModelSpec is `model.synth_spec`. `arch` may instead be a pinned real model's name
    (orc.fixtures.names(), e.g. "smollm2-135m-instruct"): that model from orc's cache (downloaded
    only with ORC_FETCH_MODELS=1, else the test is skipped when it is absent); its synth_spec is
    None. Models are closed when the test ends."""
    import orc
    from orc import fixtures, synth

    opened = []

    def make(arch: str = "qwen2", weight_type: str | None = None, device: str = "cpu", *, dtype: str | None = None,
             fault: str | None = None, **spec_overrides):
        if device.startswith("cuda") and not orc.cuda_available():
            pytest.skip(f"orc_model(device={device!r}): no usable CUDA GPU: {orc.cuda_status()['reason']}")
        kw = {"fault": fault} if fault else {}
        if arch in fixtures.names():
            if weight_type is not None or spec_overrides:
                raise TypeError(f"orc_model({arch!r}): a pinned real model takes no weight type or ModelSpec fields")
            try:
                path = fixtures.path(arch, download=os.environ.get("ORC_FETCH_MODELS") == "1")
            except fixtures.FixtureUnavailable as e:
                pytest.skip(f"orc_model({arch!r}): real model not available: {e} "
                            f"(python -m orc.fixtures {arch} fetches it)")
            m = orc.Model(path, device=device, dtype=dtype, **kw)
            m.synth_spec = None
            opened.append(m)
            return m
        weight_type = "Q8_0" if weight_type is None else weight_type
        fields = set(synth.ModelSpec.__dataclass_fields__)
        unknown = sorted(set(spec_overrides) - fields)
        if unknown:
            raise TypeError(f"orc_model: unknown ModelSpec field(s) {unknown}; the fields are {sorted(fields)}")
        if weight_type not in synth.GGML_TYPES:
            raise ValueError(f"orc_model: weight_type {weight_type!r} is not one of {sorted(synth.GGML_TYPES)}")
        spec = synth.spec_for(arch, weight_type, **spec_overrides)
        key = repr(sorted(vars(spec).items()))
        path = _orc_synth_files["files"].get(key)
        if path is None:
            n = len(_orc_synth_files["files"])
            path = str(_orc_synth_files["dir"] / f"{arch}-{weight_type}-{n}.gguf")
            synth.make_model(path, spec)
            _orc_synth_files["files"][key] = path
        m = orc.Model(path, device=device, dtype=dtype, **kw)
        m.synth_spec = spec
        opened.append(m)
        return m

    yield make
    for m in opened:
        m.close()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    written = config.stash.get(_WRITTEN, [])
    if written:
        terminalreporter.write_sep("-", f"orc: wrote {len(written)} golden file(s)")
        root = str(config.rootpath)
        for p in written:
            terminalreporter.write_line(os.path.relpath(p, root))
