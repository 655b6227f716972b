"""The blob-store interface.

Blobs are immutable and content addressed (the key names the hash), so a store never needs to
overwrite; ``put_file`` of an existing key is a no-op. Uploads are first written to a local staging
file, hashed and fsynced by ``staging.py``; only a verified file is handed to ``put_file``, so a blob
is never visible before its hash has been checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Iterator, Protocol


class StorageError(Exception):
    """Any failure of a storage backend (backends translate their own exceptions into this)."""


class StorageFull(StorageError):
    """The backend has no room left (ENOSPC, EDQUOT)."""


def translate_os_error(exc: OSError) -> StorageError:
    """Map an OSError to our StorageError tree (so nothing above storage/ sees OSError)."""
    import errno

    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFull(f"no space left on the storage device: {exc.strerror}")
    return StorageError(str(exc))


@dataclass(frozen=True)
class BlobInfo:
    """A listed blob; ``last_modified`` (UTC, timezone-aware) lets GC keep young blobs."""

    key: str
    size: int
    last_modified: datetime


class BlobStore(Protocol):
    def put_file(self, key: str, src: Path) -> None:
        """Make the verified local file ``src`` durable under ``key``; ``src`` is consumed."""

    def exists(self, key: str) -> bool: ...

    def size(self, key: str) -> int | None:
        """Size in bytes, or None if there is no such blob."""

    def open(self, key: str) -> BinaryIO:
        """A readable binary file object (raises StorageError if missing)."""

    def local_path(self, key: str) -> Path | None:
        """A path on local disk to serve the blob with sendfile, or None for remote stores."""

    def presigned_url(self, key: str, expires_in: int) -> str | None:
        """A URL clients can GET without our credentials, or None if the store cannot sign."""

    def presigned_put_url(self, key: str, expires_in: int) -> str | None:
        """A URL clients can PUT bytes to (direct uploads to a staging key), or None."""

    def copy(self, src_key: str, dst_key: str) -> None:
        """Make ``dst_key`` hold the bytes of ``src_key`` (server-side for object stores)."""

    def delete(self, key: str) -> None: ...

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        """Keys under the folder ``prefix`` (e.g. ``"lfs/"``), in no particular order."""

    def list_blobs(self, prefix: str = "") -> Iterator[BlobInfo]:
        """Like ``iter_keys``, with each blob's size and last-modified time."""
