"""Model weights in memory the kernel can map with 2 MiB pages (issue 17).

``from_pretrained`` leaves float32 weights loaded from a float32 safetensors file as views of the
memory-mapped file: the page cache. A decode step reads every weight once (2 GB at Qwen2.5-0.5B's
size), so how that memory is mapped matters: a file whose page cache sits in 2 MiB folios is mapped
with 2 MiB entries (``FilePmdMapped`` in ``/proc/PID/smaps``), one written in small pieces is not,
and every 4 KiB page then costs a TLB entry. The hub writes its stored files in 64 KiB pieces
(``storage/staging.py``), so a model served from the hub computed ~10 % more slowly per step than
the same engine on a file written in one piece (``bench/inference/sched_profile.py``,
docs/benchmarks.md, session 11). Copying the weights into one private anonymous mapping advised
``MADV_HUGEPAGE`` (transparent huge pages in ``madvise`` mode, the common default) makes the
mapping the same whatever wrote the file.
"""

from __future__ import annotations

import ctypes
import mmap

_ALIGN = 4096  # each tensor on its own page: any dtype's alignment, and no tensor shares a page


def huge_page_weights(module) -> int:
    """Move every CPU parameter of ``module`` (tied ones once) into one anonymous mapping advised for
    transparent huge pages; returns the bytes moved (0 when there was nothing to move or the platform
    has no ``MADV_HUGEPAGE``). The mapping lives as long as the tensors viewing it."""
    import torch

    advice = getattr(mmap, "MADV_HUGEPAGE", None)
    anonymous = getattr(mmap, "MAP_ANONYMOUS", None)
    params = [p for p in module.parameters() if p.device.type == "cpu" and p.numel() > 0]
    if advice is None or anonymous is None or not params:
        return 0
    offsets, total = [], 0
    for p in params:
        offsets.append(total)
        total += -(-p.numel() * p.element_size() // _ALIGN) * _ALIGN
    # Private, not Python's default MAP_SHARED: shared anonymous memory is shmem, whose huge pages
    # follow shmem_enabled (usually "never").
    region = mmap.mmap(-1, total, flags=mmap.MAP_PRIVATE | anonymous)
    region.madvise(advice)
    base = torch.frombuffer(region, dtype=torch.uint8)
    with torch.no_grad():
        for p, offset in zip(params, offsets):
            src = p.data.contiguous()
            nbytes = src.numel() * src.element_size()
            dst = base[offset:offset + nbytes].view(src.dtype).view(src.shape)
            # A plain memcpy on this thread, not ``dst.copy_``: a torch copy this large runs an OpenMP
            # parallel region, and one on this (loading) thread besides the continuous-batching
            # thread's makes GNU OpenMP count more threads than cores and throttle its spinning
            # (every op then ends in futex sleeps: 57,000 voluntary switches per burst, measured).
            ctypes.memmove(dst.data_ptr(), src.data_ptr(), nbytes)
            p.data = dst
    return total
