"""orc's pytest plugin (registered through the `pytest11` entry point).

- markers `gpu` (skipped, with the reason, where no CUDA GPU is usable) and `slow`.
- the `golden` fixture: named reference arrays stored under
  `<rootdir>/tests/golden/<test module>/<name>.npy` (`.npz` for a mapping of arrays):

      def test_logits(golden):
          golden.check("qwen2_prompt1", logits, nmse=1e-6)

  A missing golden fails, saying how to create it. `pytest --orc-update-golden` writes (or
  rewrites) every golden a test checks instead of comparing, and the summary lists the files
  written: look at them before committing. See orc.testing.GoldenStore.check for tolerances.
"""
from __future__ import annotations

import os

import pytest

UPDATE_FLAG = "--orc-update-golden"
_WRITTEN = pytest.StashKey[list]()


def pytest_addoption(parser):
    group = parser.getgroup("orc")
    group.addoption(UPDATE_FLAG, action="store_true", default=False,
                    help="write the arrays given to golden.check() as the new goldens under tests/golden/ "
                         "instead of comparing with them")


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


def _module_stem(request) -> str:
    path = getattr(request.node, "path", None) or request.node.fspath
    return os.path.splitext(os.path.basename(str(path)))[0]


@pytest.fixture
def golden(request):
    """Named golden arrays for this test module: golden.check(name, array, nmse=, atol=, exact=)."""
    from orc.testing import GoldenStore

    config = request.config
    folder = os.path.join(str(config.rootpath), "tests", "golden", _module_stem(request))
    store = GoldenStore(folder, update=config.getoption(UPDATE_FLAG),
                        how_to_update=f"pytest {UPDATE_FLAG} {request.node.nodeid}")
    yield store
    config.stash[_WRITTEN].extend(store.written)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    written = config.stash.get(_WRITTEN, [])
    if written:
        terminalreporter.write_sep("-", f"orc: wrote {len(written)} golden file(s)")
        root = str(config.rootpath)
        for p in written:
            terminalreporter.write_line(os.path.relpath(p, root))
