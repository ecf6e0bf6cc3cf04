# Type stubs for orc._orc, the compiled extension (csrc/module.c and csrc/py_*.c).
# Keep in step with the module: tests/test_stubs.py fails when a name is missing on either side.
# Still to come with the model API: Model, Session, TensorInfo and the gguf/quant/sample/
# tokenizer functions.
from typing import Any

import numpy as np
import numpy.typing as npt

class OrcError(RuntimeError):
    """Base class of orc's errors (a RuntimeError)."""

class GGUFError(OrcError, ValueError):
    """A GGUF file or the model in it is malformed or unsupported; the message names the byte
    offset, key or tensor."""

class CudaError(OrcError):
    """A CUDA runtime or cuBLAS call failed, or no usable GPU; names the call and location."""

HAVE_CUDA: int
"""1 when the extension was compiled with CUDA, else 0."""

def build_info_json() -> str:
    """The build provenance that setup.py compiled into this binary, as JSON."""

def cuda_probe() -> tuple[bool, int, str]:
    """(usable, device_count, reason) for CUDA in this process; reason is '' when usable."""

def cuda_versions() -> dict[str, int]:
    """CUDA runtime (compiled/loaded), driver and cuBLAS versions as integers
    (keys runtime_compiled, runtime, driver, cublas; 0 where unknown)."""

def cuda_device_info(index: int, /) -> dict[str, Any]:
    """Facts about CUDA device `index`: index, name, pci_bus_id, total_memory, free_memory,
    compute_capability (major, minor), multiprocessors."""

def _cuda_selftest(a: npt.ArrayLike, b: npt.ArrayLike, alpha: float, /) -> tuple[np.ndarray, np.ndarray]:
    """GPU smoke test: (a @ b via cuBLAS, alpha * a + i via a kernel)."""
