"""Receive an upload into a local staging file while hashing it, then fsync.

The staged file lives in the data dir's ``tmp/`` (same filesystem as a local store, so the final
link is atomic). Callers check the hash and size before handing the file to ``BlobStore.put_file``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from aicommons.storage.base import translate_os_error as _as_storage_error


@dataclass
class StagedFile:
    path: Path
    sha256: str
    size: int

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


class Stager:
    """Writes chunks to a temp file, hashing as it goes. Use as a context manager."""

    def __init__(self, tmp_dir: Path, max_bytes: int | None = None):
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="upload-")
        self._file = os.fdopen(fd, "wb")
        self.path = Path(name)
        self._hash = hashlib.sha256()
        self.size = 0
        self.max_bytes = max_bytes
        self._done = False

    def write(self, chunk: bytes | memoryview) -> None:
        self.size += len(chunk)
        if self.max_bytes is not None and self.size > self.max_bytes:
            raise OverflowError(self.max_bytes)
        self._hash.update(chunk)
        try:
            self._file.write(chunk)
        except OSError as exc:
            raise _as_storage_error(exc) from exc

    def finish(self) -> StagedFile:
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
        except OSError as exc:
            raise _as_storage_error(exc) from exc
        self._done = True
        return StagedFile(self.path, self._hash.hexdigest(), self.size)

    def __enter__(self) -> Stager:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if not self._done:
            self._file.close()
            self.path.unlink(missing_ok=True)



def sweep_stale(tmp_dir: Path, max_age_seconds: float = 24 * 3600) -> int:
    """Remove staged uploads older than ``max_age_seconds``: what a killed process left behind.
    (Live uploads keep writing, so their files stay young.) Returns how many were removed."""
    import time

    removed = 0
    cutoff = time.time() - max_age_seconds
    for path in Path(tmp_dir).glob("upload-*"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            pass
    return removed
