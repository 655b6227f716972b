"""Local-disk blob store with crash-consistent writes.

Write recipe (security-storage spec D2): the staged file is already fsynced; it is hard-linked
into place (``link`` fails if the key exists, so concurrent writers of one blob cannot clobber each
other, and an existing blob is kept: create-only), the directory is fsynced, then the staged name is removed. A crash leaves either no blob or
the whole blob, never a partial one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlparse

from aicommons.storage.base import BlobInfo, StorageError
from aicommons.storage.base import translate_os_error as _translate


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalBlobStore:
    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_url(cls, url: str, tmp_dir: Path) -> LocalBlobStore:
        return cls(Path(urlparse(url).path))

    def _path(self, key: str) -> Path:
        if not key or key.startswith("/") or ".." in key.split("/"):
            raise StorageError(f"invalid blob key {key!r}")
        return self.root / key

    def put_file(self, key: str, src: Path) -> None:
        dest = self._path(key)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(src, dest)
            except FileExistsError:
                pass  # content addressed: the existing blob has the same bytes
            fsync_dir(dest.parent)
            os.unlink(src)
        except OSError as exc:
            raise _translate(exc) from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int | None:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            return None

    def open(self, key: str) -> BinaryIO:
        try:
            return open(self._path(key), "rb")
        except OSError as exc:
            raise _translate(exc) from exc

    def read_prefix(self, key: str, limit: int) -> Iterator[bytes]:
        with self.open(key) as f:
            while limit > 0 and (chunk := f.read(min(limit, 1024 * 1024))):
                limit -= len(chunk)
                yield chunk

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def presigned_url(self, key: str, expires_in: int, filename: str | None = None) -> str | None:
        return None

    def presigned_put_url(self, key: str, expires_in: int, size: int) -> str | None:
        return None

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise _translate(exc) from exc

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        for info in self.list_blobs(prefix):
            yield info.key

    def list_blobs(self, prefix: str = "") -> Iterator[BlobInfo]:
        # A folder prefix ("lfs/") only needs that folder walked.
        start = self.root / prefix if prefix.endswith("/") else self.root
        for dirpath, _dirs, files in os.walk(start):
            for name in files:
                path = os.path.join(dirpath, name)
                key = os.path.relpath(path, self.root)
                if not key.startswith(prefix):
                    continue
                try:
                    st = os.stat(path)
                except FileNotFoundError:
                    continue  # deleted while we walked
                yield BlobInfo(key, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))
