"""Is there a GPU orc can use, and which."""
from __future__ import annotations

from . import _orc

__all__ = ["cuda_available", "cuda_status", "devices"]


def cuda_status() -> dict:
    """{'built_with_cuda', 'available', 'device_count', 'reason'}: why CUDA is or is not usable."""
    ok, count, reason = _orc.cuda_probe()
    return {"built_with_cuda": bool(_orc.HAVE_CUDA), "available": bool(ok), "device_count": count,
            "reason": reason or None}


def cuda_available() -> bool:
    """True when orc was built with CUDA and a GPU with a working driver is visible.
    `cuda_status()['reason']` says why not."""
    return bool(_orc.cuda_probe()[0])


def devices() -> list[dict]:
    """Visible GPUs: index, name, total/free memory (bytes), compute capability, multiprocessors,
    PCI bus id. An empty list where CUDA is not usable."""
    ok, count, _ = _orc.cuda_probe()
    return [_orc.cuda_device_info(i) for i in range(count)] if ok else []
