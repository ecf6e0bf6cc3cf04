"""orc: load GGUF language models, run them on a CUDA GPU or the CPU reference
backend, and inspect logits and every intermediate activation as NumPy arrays.

    import orc
    orc.build_info()      # exactly which sources this binary was built from
    orc.cuda_available()  # and whether a GPU is usable (orc.cuda_status() says why not)
"""
from ._version import __version__

try:
    from . import _orc
except ImportError as e:  # pragma: no cover - only without a build
    raise ImportError(
        f"orc's compiled extension could not be imported ({e}). Build it first: "
        "pip install -e . (or python setup.py build_ext --inplace)."
    ) from e

from ._orc import CudaError, GGUFError, OrcError
from ._build import StaleBuildError, StaleBuildWarning, build_info, check_build
from ._cuda import cuda_available, cuda_status, devices
from ._orc import QUANT_TYPES, dequantize
from ._orc import Sampler, sample
from ._orc import StreamDecoder, Tokenizer
from .gguf import GGUFFile, TensorInfo
from .model import Model, Session, Step
from . import compare, hooks, testing
from . import perplexity
from .perplexity import kld
from . import invariance
from .invariance import check_invariance
from .validate import NonFiniteWeightWarning
from . import validate

__all__ = [
    "__version__",
    "OrcError", "GGUFError", "CudaError", "StaleBuildError", "StaleBuildWarning", "NonFiniteWeightWarning",
    "build_info", "check_build", "cuda_available", "cuda_status", "devices",
    "GGUFFile", "TensorInfo", "QUANT_TYPES", "dequantize",
    "Sampler", "sample", "Tokenizer", "StreamDecoder",
    "Model", "Session", "Step",
    "compare", "hooks", "testing", "perplexity", "kld", "invariance", "check_invariance", "validate",
]

from . import _build

_build.warn_if_stale()
del _build
