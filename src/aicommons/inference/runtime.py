"""Process-wide torch runtime choices, made once and lazily (importing this module imports no torch)."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

_lock = threading.Lock()
_configured = False
_forward_pool: ThreadPoolExecutor | None = None


def configure_torch(threads: int) -> None:
    """Set intra-op threads once: every engine shares the same cores."""
    global _configured
    with _lock:
        if _configured:
            return
        import torch

        torch.set_num_threads(threads if threads > 0 else (os.cpu_count() or 1))
        _configured = True
        # transformers' continuous-batching logger would print token ids of dropped requests: prompts
        # never reach our logs.
        import logging

        logging.getLogger("ContinuousBatchingLogger").setLevel(logging.ERROR)


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_dtype(dtype: str, device: str):
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]


def reported_placement(settings, model: Any = None) -> tuple[str, str]:
    """(device type, dtype name) for TGI's ``/info``: a loaded torch model's own, else what the
    in-process engines load with under ``settings`` (``auto`` resolved as ``placement`` does:
    clients read ``float16``/``bfloat16``/``float32``, never ``auto``)."""
    dtype, device = getattr(model, "dtype", None), getattr(model, "device", None)
    if dtype is not None and device is not None:
        return str(getattr(device, "type", device)), str(dtype).removeprefix("torch.")
    try:
        device_name = resolve_device(settings.device)
    except ImportError:  # no torch: llama.cpp or vLLM in a worker; they run where the setting says
        device_name = "cpu" if settings.device == "auto" else settings.device
    if settings.dtype != "auto":
        return device_name.split(":")[0], settings.dtype
    return device_name.split(":")[0], "bfloat16" if device_name.startswith("cuda") else "float32"


def placement(settings) -> tuple[str, Any]:
    """Threads configured, then the (device, dtype) a model loads with under ``settings``."""
    configure_torch(settings.threads)
    device = resolve_device(settings.device)
    return device, resolve_dtype(settings.dtype, device)


def forward_pool() -> ThreadPoolExecutor:
    """One thread for every encoder forward pass in the process. On a few cores, two models
    computing at once only thrash caches; one queue of batches keeps each pass at full speed."""
    global _forward_pool
    with _lock:
        if _forward_pool is None:
            _forward_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aicommons-forward")
        return _forward_pool
