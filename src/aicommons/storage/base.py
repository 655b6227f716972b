"""The blob-store interface.

Blobs are immutable and content addressed (the key names the hash), so a store never overwrites:
``put_file`` is create-only, and ``put_file`` of an existing key keeps the stored blob (whatever the
new file holds). Uploads are first written to a local staging file, hashed and fsynced by
``staging.py``; only a verified file is handed to ``put_file``, so a blob is never visible before its
hash has been checked, and the bytes the hub hashed are the bytes it publishes. There is no copy
between keys: a content key is written only from a file the hub has hashed itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Protocol


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


PUBLISHED_CONTENT_TYPE = "application/octet-stream"


def attachment_disposition(filename: str | None) -> str:
    """A ``Content-Disposition`` that makes a browser save, never render, a presigned download."""
    if not filename:
        return "attachment"
    from urllib.parse import quote

    ascii_name = "".join(c for c in filename if 32 <= ord(c) < 127 and c not in '"\\;')
    return f"attachment; filename=\"{ascii_name or 'download'}\"; filename*=UTF-8''{quote(filename, safe='')}"


@dataclass(frozen=True)
class BlobInfo:
    """A listed blob; ``last_modified`` (UTC, timezone-aware) lets GC keep young blobs."""

    key: str
    size: int
    last_modified: datetime


class BlobStore(Protocol):
    def put_file(self, key: str, src: Path) -> None:
        """Make the verified local file ``src`` durable under ``key``, create-only: an existing blob
        is kept, never replaced. ``src`` is consumed. Object stores publish it with hub-fixed
        headers (``application/octet-stream``, no ``Content-Encoding``)."""

    def exists(self, key: str) -> bool: ...

    def size(self, key: str) -> int | None:
        """Size in bytes, or None if there is no such blob."""

    def open(self, key: str) -> BinaryIO:
        """A readable binary file object (raises StorageError if missing)."""

    def read_prefix(self, key: str, limit: int) -> Iterator[bytes]:
        """At most ``limit`` bytes from the start of the blob, in chunks, from one read of one
        version of it (a single ranged GET on object stores): what verifying an untrusted upload
        reads, so a client that declared ``size`` makes the hub fetch at most ``size + 1`` bytes."""

    def local_path(self, key: str) -> Path | None:
        """A path on local disk to serve the blob with sendfile, or None for remote stores."""

    def presigned_url(self, key: str, expires_in: int, filename: str | None = None) -> str | None:
        """A URL clients can GET without our credentials (answered as an ``application/octet-stream``
        attachment where the store can say so), or None if the store cannot sign."""

    def presigned_put_url(self, key: str, expires_in: int, size: int) -> str | None:
        """A URL clients can PUT ``size`` bytes to (direct uploads to a staging key), or None."""

    def delete(self, key: str) -> None: ...

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        """Keys under the folder ``prefix`` (e.g. ``"lfs/"``), in no particular order."""

    def list_blobs(self, prefix: str = "") -> Iterator[BlobInfo]:
        """Like ``iter_keys``, with each blob's size and last-modified time."""
