"""orc's pytest plugin (registered through the `pytest11` entry point).

- markers `gpu` (skipped, with the reason, where no CUDA GPU is usable) and `slow`.
"""
from __future__ import annotations

import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a usable CUDA GPU (skipped with the reason when there is none)")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


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
