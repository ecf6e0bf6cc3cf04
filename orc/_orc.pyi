# Type stubs for orc._orc, the compiled extension (csrc/python/module.c and csrc/py_*.c).
# Keep in step with the module: tests/test_stubs.py fails when a name is missing on either side.
import os
from typing import Any, Callable, Iterable, Sequence

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

def cuda_mem_info(device: int, /) -> tuple[int, int]:
    """(free_bytes, total_bytes) on CUDA device `device` (cudaMemGetInfo)."""

def _cuda_fail_on_purpose() -> None:
    """Make one CUDA call fail on purpose (tests: how CUDA errors surface)."""

def _cuda_selftest(a: npt.ArrayLike, b: npt.ArrayLike, alpha: float, /) -> tuple[np.ndarray, np.ndarray]:
    """GPU smoke test: (a @ b via cuBLAS, alpha * a + i via a kernel)."""

# -- GGUF reader (csrc/python/py_gguf.c); orc.GGUFFile/orc.TensorInfo are these types.
class TensorInfo:
    """One tensor's entry in a GGUF file (immutable; made by GGUFFile)."""
    name: str
    type: str
    type_id: int
    shape: tuple[int, ...]
    offset: int
    """Byte offset of the data, relative to the data section."""
    file_offset: int
    """Byte offset of the data in the file."""
    info_offset: int
    """Byte offset of this tensor's info record in the file."""
    index: int
    """Position in the file's tensor list."""
    ne: tuple[int, ...]
    """ggml order dimensions (contiguous first): shape reversed."""
    nbytes: int
    n_elements: int

class GGUFFile:
    """GGUFFile(path): a GGUF v2/v3 file, mapped read-only and fully validated on open."""
    def __init__(self, path: str | os.PathLike[str]) -> None: ...
    version: int
    metadata: dict[str, Any]
    tensors: list[TensorInfo]
    alignment: int
    data_offset: int
    file_size: int
    path: str
    closed: bool
    def tensor(self, name: str) -> TensorInfo: ...
    def raw(self, name: str) -> np.ndarray: ...
    def value_type(self, key: str) -> str:
        """The GGUF type of a key's value: 'UINT32', 'STRING', 'ARRAY[FLOAT32]', ..."""
    def nonfinite(self, tensors: Sequence[str | TensorInfo] | None = None, *, mode: str = "full",
                  n_threads: int = 0) -> list[tuple[str, int, int, int]]:
        """(name, count, first_index, first_block) of each tensor holding NaN/Inf values (dequantized)."""
    def close(self) -> None: ...
    def __enter__(self) -> GGUFFile: ...
    def __exit__(self, *exc: object) -> None: ...

# -- dequantization (csrc/python/py_quant.c)
QUANT_TYPES: tuple[str, ...]
"""The ggml type names orc can dequantize."""

def dequantize(data: npt.ArrayLike, type: str, shape: tuple[int, ...] | int, device: str = "cpu",
               dtype: str = "float32") -> np.ndarray:
    """Dequantize stored GGUF bytes (uint8) of ggml `type` into an array of `shape` (NumPy order)."""

def _cuda_dequantize_at(data: npt.ArrayLike, type: str, n: int, dtype: str, src_offset: int,
                        dst_offset: int) -> np.ndarray:
    """The GPU path at given buffer offsets (tests of unaligned buffers)."""

def _cuda_dequant_bench(data: npt.ArrayLike, type: str, n: int, dtype: str, iters: int) -> dict[str, float]:
    """GPU dequantization and device-to-device copy timings (bench/bench_dequant.py)."""

# -- the fast GPU path's kernels, test and benchmark entries (csrc/python/py_kernels.c)
def _gpu_gemv(w: np.ndarray, type: str | int, rows: int, cols: int, x: np.ndarray, y: np.ndarray, *,
              w_up: np.ndarray | None = None, bias: np.ndarray | None = None, bias_up: np.ndarray | None = None,
              res: np.ndarray | None = None, res_in_y: bool = False, norm_w: np.ndarray | None = None,
              eps: float = 1e-6, act: int = 0, ids: np.ndarray | None = None, n_expert: int = 0,
              x_int16: bool = False) -> np.ndarray:
    """One fused dequantize-GEMV launch on the GPU from host arrays (y: the output's initial content)."""

def _gpu_gemv_integer_form(type: str | int) -> bool:
    """Whether the one-token GEMV of that ggml type has the integer form (a CUDA build; no GPU needed)."""

def _gpu_gemv_bench(w: np.ndarray, type: str | int, rows: int, cols: int, x: np.ndarray, y: np.ndarray, *,
                    w_up: np.ndarray | None = None, bias: np.ndarray | None = None,
                    bias_up: np.ndarray | None = None, res: np.ndarray | None = None, res_in_y: bool = False,
                    norm_w: np.ndarray | None = None, eps: float = 1e-6, act: int = 0,
                    ids: np.ndarray | None = None, n_expert: int = 0, x_int16: bool = False,
                    repeats: int = 7) -> dict[str, float]:
    """Per-launch timings of the GEMV with its weights rotated over copies larger than the L2."""

def _gpu_attention_flash(q: np.ndarray, k: np.ndarray, v: np.ndarray, pos: np.ndarray, kv_base: np.ndarray,
                         n_head: int, n_head_kv: int, head_dim: int, dtype: str, scale: float, *,
                         softcap: float = 0.0, window: int = 0, sinks: np.ndarray | None = None,
                         out: np.ndarray | None = None) -> np.ndarray:
    """The flash-attention kernel on host arrays (k, v: float16/bfloat16 bits as uint16)."""

def _gpu_attention_flash_bench(q: np.ndarray, k: np.ndarray, v: np.ndarray, pos: np.ndarray,
                               kv_base: np.ndarray, n_head: int, n_head_kv: int, head_dim: int, dtype: str,
                               scale: float, *, softcap: float = 0.0, window: int = 0,
                               sinks: np.ndarray | None = None, out: np.ndarray | None = None,
                               repeats: int = 5) -> dict[str, float]:
    """Timings (and flops per launch) of the flash-attention kernel."""

def _gpu_copy_bench(bytes: int, repeats: int) -> dict[str, float]:
    """The device-to-device copy ceiling (bytes = read + written)."""

def _gpu_gemm_bench(m: int, n: int, k: int, repeats: int) -> dict[str, float]:
    """The cuBLAS float16 GEMM ceiling (float32 accumulation)."""

def _cpu_row_products(w: np.ndarray, type: str | int, rows: int, cols: int, x: np.ndarray
                      ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """The CPU backend's products of rows of ggml blocks with x: decoded in registers (None
    without a vector decoder), orc_cpu_dot on the dequantized row, and the decoded rows."""

# -- sampling (csrc/python/py_sample.c)
class Sampler:
    """A token sampler with its own seeded PCG32 stream."""
    def __init__(self, seed: int = 0, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                 min_p: float = 0.0, repeat_penalty: float = 1.0, frequency_penalty: float = 0.0,
                 presence_penalty: float = 0.0, penalty_last_n: int = 64) -> None: ...
    seed: int
    params: dict[str, Any]
    def sample(self, logits: npt.ArrayLike, history: npt.ArrayLike | None = None, *,
               n_vocab: int | None = None) -> int: ...
    def probs(self, logits: npt.ArrayLike, history: npt.ArrayLike | None = None, *,
              n_vocab: int | None = None) -> np.ndarray: ...
    def get_state(self) -> tuple[int, int]: ...
    def set_state(self, state: tuple[int, int]) -> None: ...
    def copy(self) -> Sampler: ...

def sample(logits: npt.ArrayLike, *, seed: int | None = None, history: npt.ArrayLike | None = None,
           n_vocab: int | None = None, **params: Any) -> int:
    """One token id from `logits` with a fresh Sampler(seed, **params)."""

def _rng_outputs(seed: int, n: int, stream: int = 54, uniform: bool = False) -> list[int] | list[float]:
    """The first n outputs of orc_rng (tests only)."""

def _sample_exp(x: npt.ArrayLike) -> np.ndarray:
    """orc_sample_exp over a float64 array (tests only)."""

# -- models and sessions (csrc/python/py_model.c); orc.Model / orc.Session subclass these.
def parse_dtype(name: str, /) -> str:
    """The canonical dtype name ('f16' -> 'float16'); ValueError for unknown names."""
def hook_steps() -> list[tuple[str, bool, bool]]:
    """[(step, on_request, in_every_dense_architecture)] of a decoder layer, in execution order."""
def architectures() -> list[str]:
    """The GGUF architecture names orc runs."""

class Model:
    """The native model: a GGUF file's weights on a backend."""
    def __init__(self, path: str | os.PathLike[str], device: str = "cpu", dtype: str | None = None,
                 weights: str | None = None, n_threads: int = 0, round_matmul_inputs: bool | None = None,
                 fault: str | None = None, progress: Callable[[int, int], object] | None = None,
                 profile: bool = False, yarn: str = "hf") -> None: ...
    closed: bool
    path: str
    arch: str
    device: str
    dtype: str
    weights: str
    round_matmul_inputs: bool
    config: dict[str, Any]
    def close(self) -> None: ...
    def tensor(self, name: str) -> np.ndarray: ...
    def memory(self) -> dict[str, int]: ...
    def _hooks(self) -> list[tuple[str, int, int, int, int, bool, bool, bool]]: ...
    def _profile(self, reset: bool = True) -> dict[str, tuple[int, float]]: ...
    def _gguf_file(self) -> GGUFFile: ...
    def _load_tokenizer(self) -> Tokenizer: ...

class Session:
    """The native session: a KV cache over a model."""
    def __init__(self, model: Model, n_ctx: int = 4096, n_batch: int = 512, kv_dtype: str | None = None,
                 graphs: bool = True, n_seq: int = 1) -> None: ...
    n_past: int
    n_ctx: int
    history: list[int]
    closed: bool
    model: Model
    kv_dtype: str
    graphs: bool
    last_path: str
    def _forward(self, ids: npt.ArrayLike, logits: str = "all", capture: Iterable[int] | None = None,
                 patch: dict[int, Any] | None = None) -> tuple[np.ndarray | None, dict[int, np.ndarray]]: ...
    def _forward_batch(self, seqs: Sequence[npt.ArrayLike], logits: str = "all", capture: Iterable[int] | None = None
                       ) -> tuple[np.ndarray | None, dict[int, np.ndarray], list[int]]: ...
    def rewind(self, n: int) -> None: ...
    def reset(self) -> None: ...
    def fork(self) -> Session: ...
    def close(self) -> None: ...

# -- tokenizer (csrc/python/py_tokenizer.c); apply_chat_template forwards to orc/chat.py.
class Tokenizer:
    """Tokenizer(path): the tokenizer stored in a GGUF file (tokenizer.ggml.* keys): byte-level
    BPE ('gpt2': GPT-2, Llama 3, Qwen2) or SentencePiece BPE ('llama': Llama 2, Gemma). `path`
    may also be an open orc.GGUFFile."""
    def __init__(self, path: str | os.PathLike[str] | GGUFFile) -> None: ...
    @staticmethod
    def from_metadata(metadata: dict[str, Any]) -> Tokenizer:
        """A tokenizer from GGUF tokenizer keys given as Python values."""
    model: str
    pre: str | None
    vocab_size: int
    bos: int | None
    eos: int | None
    eot: int | None
    eom: int | None
    unk: int | None
    pad: int | None
    eog_ids: frozenset[int]
    add_bos: bool
    add_eos: bool
    add_space_prefix: bool
    chat_template: str | None
    def tokenize(self, text: str | bytes, add_special: bool = True, special: bool = False) -> list[int]:
        """Token ids of `text`; add_special adds BOS/EOS as the vocabulary asks; special parses
        control tokens written in the text."""
    def pre_tokenize(self, text: str) -> list[str]:
        """The words the pre-tokenizer splits `text` into before BPE."""
    def detokenize(self, ids: Iterable[int] | npt.ArrayLike, special: bool = True) -> str:
        """The tokens' bytes joined and decoded as UTF-8 (invalid bytes as U+FFFD)."""
    def detokenize_bytes(self, ids: Iterable[int] | npt.ArrayLike, special: bool = True) -> bytes:
        """As detokenize(), without UTF-8 decoding."""
    def decode_stream(self, special: bool = True) -> StreamDecoder:
        """An incremental detokenizer that never splits a UTF-8 character."""
    def token_text(self, id: int, /) -> str:
        """The token as stored in the vocabulary ('\\u0120the', '<0x0A>')."""
    def token_bytes(self, id: int, /) -> bytes:
        """The bytes the token decodes to."""
    def token_id(self, text: str, /) -> int | None:
        """The id whose stored text is `text`, or None."""
    def token_score(self, id: int, /) -> float: ...
    def token_type(self, id: int, /) -> str:
        """'normal', 'control', 'user_defined', 'byte', 'unknown', 'unused' or 'undefined'."""
    def is_eog(self, id: int, /) -> bool:
        """Does this token end generation?"""
    def apply_chat_template(self, messages: list[dict[str, Any]], add_generation_prompt: bool = True,
                            tokenize: bool = False, template: str | None = None,
                            **kwargs: Any) -> str | list[int]:
        """Render chat messages with the file's (or the named built-in) chat template."""

class StreamDecoder:
    """StreamDecoder(tokenizer, special=True): incremental detokenization (Tokenizer.decode_stream)."""
    def __init__(self, tokenizer: Tokenizer, special: bool = True) -> None: ...
    pending: bytes
    def push(self, id_or_ids: int | Iterable[int], /) -> str:
        """The text these tokens complete; bytes of an unfinished character wait for the next push."""
    def flush(self) -> str:
        """End of stream: what is still held back (U+FFFD if it never completed)."""
