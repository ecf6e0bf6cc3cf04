"""CUDA availability is reported, never a crash; the GPU smoke test runs where a GPU exists."""
import numpy as np
import pytest

import orc
from orc import _orc


def test_cuda_status_is_consistent():
    st = orc.cuda_status()
    assert isinstance(st["available"], bool)
    assert st["available"] == orc.cuda_available()
    assert st["built_with_cuda"] == orc.build_info()["cuda"]
    if st["available"]:
        assert st["device_count"] >= 1 and st["reason"] is None
        assert len(orc.devices()) == st["device_count"]
    else:
        assert st["device_count"] == 0
        assert st["reason"], "an unavailable GPU must come with a reason"
        assert orc.devices() == []


def test_selftest_without_gpu_raises_cuda_error():
    if orc.cuda_available():
        pytest.skip("a GPU is usable here")
    with pytest.raises(orc.CudaError, match="CUDA"):
        _orc._cuda_selftest(np.ones((2, 2), np.float32), np.ones((2, 2), np.float32), 1.0)


@pytest.mark.gpu
def test_gpu_smoke_alloc_cublas_kernel():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((67, 129)).astype(np.float32)
    b = rng.standard_normal((129, 33)).astype(np.float32)
    c, y = _orc._cuda_selftest(a, b, -1.75)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    rel = np.linalg.norm(c - ref) / np.linalg.norm(ref)
    assert np.isfinite(c).all() and rel < 1e-5, rel
    expect = -1.75 * a + np.arange(a.size, dtype=np.float32).reshape(a.shape)
    np.testing.assert_array_equal(y, expect)


@pytest.mark.gpu
def test_gpu_devices_listed():
    devs = orc.devices()
    assert devs and devs[0]["total_memory"] > 2**30
    assert devs[0]["compute_capability"][0] >= 5
    assert 0 < devs[0]["free_memory"] <= devs[0]["total_memory"]
