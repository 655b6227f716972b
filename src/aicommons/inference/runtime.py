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
