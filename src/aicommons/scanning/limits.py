"""How much a scan may read: every scanner stops at these bounds and reports an ``error`` rather
than reading without limit (a scan runs in a background job on the hub)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ScanLimits:
    max_pickle_bytes: int = 512 * 1024 * 1024  # a raw pickle or one archive member
    max_archive_members: int = 100_000
    max_archive_bytes_read: int = 2 * 1024 ** 3  # pickled members read from one archive, in all
    max_compression_ratio: int = 200  # above it, a member over 1 MiB is a zip bomb
    max_safetensors_header: int = 100 * 1024 * 1024  # as the safetensors library
    max_text_bytes: int = 1024 * 1024  # secrets and templates are looked for in text files this small


DEFAULT_LIMITS = ScanLimits()
