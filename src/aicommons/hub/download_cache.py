"""A bounded local cache of whole files for plain HTTP downloads of chunk-stored files (issue 11).

A file uploaded through Xet (or chunked after an LFS upload) has no whole-file copy: plain HTTP
clients get it rebuilt from its xorbs as it is sent, in Python, which serves about half what the
kernel does. Measured both ways (docs/benchmarks.md): rebuilding on the fly cannot reach nginx
``sendfile``; a whole file on local disk, handed to the kernel (``api/zerocopy_server.py``), can.
So the first download of a chunk-stored file is served from the xorbs as before and queues a
background copy of it here; later downloads (whole, ranges, HEAD) are served from the copy. The
Parquet conversion's checkout (hub/parquet_export.py), which has to rebuild a chunk-stored data file
whole anyway, hands its rebuild over (``adopt``) and links the copy on its next conversion.

- **Bounded**: ``AICOMMONS_DOWNLOAD_CACHE_BYTES`` (empty or 0: off); least recently served go first.
- **Never wrong**: a copy is written to a temporary name, its sha256 checked against the object's
  name, then renamed into place; a copy that fails the check is dropped.
- **Never a way around access rules**: the cache is consulted only after the request was authorised
  and the object found stored (``api/files.py``), by the sha256 the repo's pointer names.
- **Never keeps deleted bytes**: a permanent deletion of LFS files or a repo deletion empties the
  cache (a copy being written then is discarded); the lifecycle job and GC drop copies whose object
  is no longer stored.
- Per replica, on local disk. On object storage each checked copy is also handed to ``kept``
  listeners: ``bucket_copies.py`` puts it in the bucket, shared by every replica, and downloads are
  then redirected there.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
MIN_BYTES = 1024 * 1024  # smaller files are served fast enough from their xorbs
STALE_TMP_SECONDS = 24 * 3600  # a half-made copy untouched this long was left by a crash
_OID = re.compile(r"[0-9a-f]{64}")


class DownloadCache:
    def __init__(self, root: Path, max_bytes: int | None,
                 read: Callable[[str], Iterable[bytes] | None]):
        """``read(oid)``: the object's bytes in order, or None if it is no longer chunk-stored."""
        self.root = root
        self.max_bytes = max_bytes or 0
        self.read = read
        self._lock = threading.Lock()
        self._pending: set[str] = set()
        self._generation = 0
        self._pool: ThreadPoolExecutor | None = None
        # Told (oid, size, path) of each checked copy kept, in the cache's worker (bucket_copies.py).
        self.kept: list[Callable[[str, int, Path], None]] = []

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def path(self, oid: str) -> Path:
        return self.root / oid[:2] / oid

    def get(self, oid: str, size: int, *, fill: bool = True) -> Path | None:
        """The cached whole copy of ``oid`` (marked as used now), or None; with ``fill``, a missing
        copy is queued to be made in the background."""
        if not self.wants(oid, size):
            return None
        path = self.path(oid)
        try:
            os.utime(path)
            return path
        except FileNotFoundError:
            pass
        if fill:
            with self._lock:
                if oid in self._pending:
                    return None
                self._pending.add(oid)
                generation = self._generation
            self._submit(self._fill, oid, size, generation)
        return None

    @property
    def generation(self) -> int:
        """Bumped by every ``clear``: a copy rebuilt elsewhere (``adopt``) is kept only if the
        generation read before its chunks were read is still the current one."""
        return self._generation

    def wants(self, oid: str, size: int) -> bool:
        return self.enabled and MIN_BYTES <= size <= self.max_bytes and bool(_OID.fullmatch(oid))

    def adopt(self, oid: str, size: int, path: Path, generation: int) -> None:
        """Keep ``path``, a whole copy of ``oid`` that another reader rebuilt from its chunks
        (the Parquet conversion's checkout, hub/parquet_export.py), instead of rebuilding it again:
        hard-linked now (it may be deleted right after), then checked against its sha256 in the
        background like a copy made here, and dropped if the cache was emptied since ``generation``
        (read before the chunks were). Nothing may write to ``path`` afterwards."""
        if not self.wants(oid, size) or self.path(oid).exists():
            return
        with self._lock:
            if oid in self._pending:
                return
            self._pending.add(oid)
        tmp = self._tmp(oid)
        try:
            tmp.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, tmp)
        except OSError:  # another file system: not worth a copy
            self._done(oid, tmp)
            return
        self._submit(self._adopt, oid, size, tmp, generation)

    def _tmp(self, oid: str) -> Path:
        return self.root / ".tmp" / f"{oid}.{os.getpid()}.{threading.get_ident()}"

    def _submit(self, *job: Any) -> None:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="download-cache")
            self._pool.submit(*job)

    def _done(self, oid: str, tmp: Path) -> None:
        tmp.unlink(missing_ok=True)
        with self._lock:
            self._pending.discard(oid)

    def _adopt(self, oid: str, size: int, tmp: Path, generation: int) -> None:
        try:
            with open(tmp, "rb") as f:
                digest = hashlib.file_digest(f, "sha256")
            self._make_room(size)
            self._keep(oid, size, tmp, digest.hexdigest(), os.path.getsize(tmp), generation)
        except Exception:  # noqa: BLE001 - a cache
            log.exception("download cache: could not keep the copy of %s", oid)
        finally:
            self._done(oid, tmp)

    def _fill(self, oid: str, size: int, generation: int) -> None:
        tmp = self._tmp(oid)
        try:
            chunks = self.read(oid)
            if chunks is None:
                return
            self._make_room(size)
            tmp.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            written = 0
            with open(tmp, "wb") as f:
                for chunk in chunks:
                    digest.update(chunk)
                    f.write(chunk)
                    written += len(chunk)
            self._keep(oid, size, tmp, digest.hexdigest(), written, generation)
        except Exception:  # noqa: BLE001 - a cache: the download was served anyway
            log.exception("download cache: could not copy %s", oid)
        finally:
            self._done(oid, tmp)

    def _keep(self, oid: str, size: int, tmp: Path, digest: str, written: int, generation: int) -> None:
        """Rename a checked copy into place (the caller removes ``tmp`` if it is not kept)."""
        if digest != oid or written != size:
            log.error("download cache: the bytes rebuilt for %s do not hash to it; not cached", oid)
            return
        with self._lock:
            if generation != self._generation:
                return  # the cache was emptied meanwhile (a deletion): this copy may be of deleted bytes
            self.path(oid).parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, self.path(oid))
        for listener in self.kept:
            listener(oid, size, self.path(oid))

    def entries(self) -> list[tuple[float, int, Path]]:
        """(last served, bytes, path) of every cached copy."""
        found: list[tuple[float, int, Path]] = []
        if not self.root.is_dir():
            return found
        for sub in self.root.iterdir():
            if sub.name == ".tmp" or not sub.is_dir():
                continue
            for path in sub.iterdir():
                try:
                    st = path.stat()
                except FileNotFoundError:
                    continue
                found.append((st.st_mtime, st.st_size, path))
        return found

    def _make_room(self, incoming: int) -> None:
        entries = sorted(self.entries())
        total = sum(size for _, size, _ in entries)
        for _, size, path in entries:  # least recently served first
            if total + incoming <= self.max_bytes:
                break
            path.unlink(missing_ok=True)
            total -= size

    def clear(self, *_: object) -> None:
        """Drop every copy now, and any copy being written (a deletion happened)."""
        with self._lock:
            self._generation += 1
            for sub in self.root.iterdir() if self.root.is_dir() else ():
                if sub.name != ".tmp":
                    shutil.rmtree(sub, ignore_errors=True)

    def drop_unless(self, stored: Callable[[str], bool], *, now: float | None = None) -> int:
        """Remove the copies of objects that ``stored`` says are gone, and copies a crashed server
        left half-made in ``.tmp``; returns how many copies were removed."""
        removed = 0
        for _, _, path in self.entries():
            if not stored(path.name):
                path.unlink(missing_ok=True)
                removed += 1
        self._drop_stale_tmp((time.time() if now is None else now) - STALE_TMP_SECONDS)
        return removed

    def _drop_stale_tmp(self, before: float) -> None:
        """A copy being written changes at every write, and one linked here (``adopt``, a bucket
        upload's link) changed when it was linked: the inode's ctime says both, where the mtime of
        a link is its old file's. One unchanged for ``STALE_TMP_SECONDS`` belongs to a server that died."""
        tmp_dir = self.root / ".tmp"
        for path in tmp_dir.iterdir() if tmp_dir.is_dir() else ():
            try:
                if path.stat().st_ctime < before:
                    path.unlink()
            except FileNotFoundError:
                continue

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
