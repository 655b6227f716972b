"""Whole copies of chunk-stored files in the bucket, shared by every replica (issue 11).

On object storage an LFS object stored whole is downloaded with a presigned redirect: its bytes never
pass through a replica. A chunk-stored file (a Xet upload, or an LFS upload after chunking and GC)
has no whole file there, so plain HTTP clients get it from a replica (rebuilt, then from the local
copy of ``download_cache.py``). This module puts that local copy, once it is checked against its
sha256, into the bucket under ``download-cache/<oid>/<random>`` and records it (``db/download_copies.py``);
from then on ``/resolve/`` and the LFS download link redirect to it as they do for a whole-file blob.

- **Only checked bytes, only when recorded**: the copy uploaded is the local cache's, hashed to its
  oid; a copy is claimed in the database (one replica uploads it), uploaded, then marked ready, and
  only a ready copy is served. Its key is new each time, so no retired copy's deletion can remove it.
- **Bounded**: ``AICOMMONS_DOWNLOAD_CACHE_BUCKET_BYTES`` (0: off) over the copies served and being
  made; the least recently served go first. ``last_served_at`` is written at most every
  ``TOUCH_SECONDS`` per object, not per download.
- **A URL handed out keeps working**: an evicted copy stops being served at once (its row goes), and
  its object is deleted only after the longest presigned URL lifetime, by the next copy made, the
  lifecycle job or GC.
- **Never keeps deleted bytes**: a repo deletion or a permanent deletion of LFS files takes out of
  service, and deletes at once, the copies of objects no repo references any more; a copy finishing
  its upload after that is not served and is deleted by its uploader. GC and the lifecycle job drop
  copies of objects no longer stored.
- **Never a way around access rules**: consulted only after the request was authorised and the
  object found stored under the oid the repo's pointer names (``api/files.py``, ``api/lfs.py``).
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

from aicommons.db.download_copies import DownloadCopyStore
from aicommons.hub.download_cache import MIN_BYTES, DownloadCache
from aicommons.storage.base import BlobStore, StorageError
from aicommons.times import utcnow

log = logging.getLogger(__name__)
PREFIX = "download-cache/"
MAX_URL_SECONDS = 600  # the longest presigned URL handed out for a copy
DELETE_MARGIN_SECONDS = 60  # clock skew between replicas and the bucket
TOUCH_SECONDS = 300
STALE_CLAIM = timedelta(hours=1)  # an upload not finished by then is taken over (its replica died)
RETRY_SECONDS = 600  # after an upload failed or found no room, this replica tries that object again no sooner


class BucketCopies:
    def __init__(self, store: DownloadCopyStore, blobs: BlobStore, max_bytes: int | None, local: DownloadCache):
        self.store = store
        self.blobs = blobs
        self.max_bytes = max_bytes or 0
        self.local = local
        self._lock = threading.Lock()
        self._pending: dict[str, Path] = {}  # oid -> the hard link waiting for its upload
        self._failed: dict[str, float] = {}  # oid -> when its last try made no copy (monotonic)
        self._pool: ThreadPoolExecutor | None = None

    @functools.cached_property
    def enabled(self) -> bool:
        """On, and the blob store can hand out presigned URLs (object storage, not local disk)."""
        if self.max_bytes <= 0:
            return False
        try:
            return self.blobs.presigned_url(f"{PREFIX}probe", 60) is not None
        except StorageError as exc:
            log.warning("download copies in the bucket are off: the store cannot sign URLs (%s)", exc)
            return False

    def wants(self, size: int) -> bool:
        return self.enabled and MIN_BYTES <= size <= self.max_bytes

    def url(self, oid: str, size: int, expires_in: int, filename: str | None = None, *, fill: bool = True) -> str | None:
        """A presigned URL of the bucket's copy of ``oid``, or None (then the caller serves the file
        itself). With ``fill``, a missing copy is made from the local cache's, if it has one."""
        if not self.wants(size):
            return None
        row = self.store.get(oid)
        if row is None:
            local = self.local.path(oid)
            if fill and local.exists():  # kept locally, evicted (or never uploaded) here
                self.offer(oid, size, local)
            return None
        if not row.ready or row.size != size:
            return None
        now = utcnow()
        if row.last_served_at < now - timedelta(seconds=TOUCH_SECONDS):
            self.store.touch(oid, now, now - timedelta(seconds=TOUCH_SECONDS))
        return self.blobs.presigned_url(row.key, min(expires_in, MAX_URL_SECONDS), filename=filename)

    def offer(self, oid: str, size: int, path: Path) -> None:
        """Upload ``path``, a checked whole copy of ``oid`` (hub/download_cache.py), in the background.
        It is hard-linked first: the local cache may drop its copy meanwhile."""
        if not self.wants(size):
            return
        tmp = self.local.root / ".tmp" / f"bucket-{oid}.{os.getpid()}.{threading.get_ident()}"
        with self._lock:
            if oid in self._pending or time.monotonic() - self._failed.get(oid, -RETRY_SECONDS) < RETRY_SECONDS:
                return
            self._pending[oid] = tmp
        try:
            tmp.parent.mkdir(parents=True, exist_ok=True)
            tmp.unlink(missing_ok=True)
            os.link(path, tmp)
        except OSError:
            self._done(oid, tmp)
            return
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bucket-copies")
            self._pool.submit(self._upload, oid, size, tmp)

    def _done(self, oid: str, tmp: Path) -> None:
        tmp.unlink(missing_ok=True)
        with self._lock:
            self._pending.pop(oid, None)

    def _upload(self, oid: str, size: int, tmp: Path) -> None:
        key = f"{PREFIX}{oid}/{uuid.uuid4().hex}"
        try:
            self.purge()  # evicted copies whose URLs have expired make room in the bucket too
            now = utcnow()
            if os.path.getsize(tmp) != size or not self.store.claim(
                    oid, key, size, now, max_bytes=self.max_bytes, evict_due=self._evict_due(now),
                    stale_before=now - STALE_CLAIM):
                self._back_off(oid)  # no room now (copies in flight), or another replica's copy
                return
            try:
                self.blobs.put_file(key, tmp)
            except BaseException:
                self.store.abandon(oid, key)
                raise
            if not self.store.mark_ready(oid, key):  # deleted meanwhile: never served, so gone now
                self.store.abandon(oid, key)  # (the claim, if the deletion came before it)
                self.blobs.delete(key)
                log.info("download copies: %s was deleted during its upload; its copy is removed", oid)
        except Exception:  # noqa: BLE001 - a cache: downloads are served anyway
            log.exception("download copies: could not upload the copy of %s", oid)
            self._back_off(oid)
        finally:
            self._done(oid, tmp)

    def _back_off(self, oid: str) -> None:
        """Not again at every download of it."""
        now = time.monotonic()
        with self._lock:
            self._failed = {k: t for k, t in self._failed.items() if now - t < RETRY_SECONDS}
            self._failed[oid] = now

    @staticmethod
    def _evict_due(now: datetime) -> datetime:
        return now + timedelta(seconds=MAX_URL_SECONDS + DELETE_MARGIN_SECONDS)

    # --- taking copies out of service -------------------------------------------------------------

    def forget_deleted(self, *_: object) -> None:
        """A repo was deleted or LFS files permanently deleted: the copies of objects no repo
        references any more stop being served now and their objects are deleted now."""
        if self.enabled:
            now = utcnow()
            if self.store.retire_unreferenced(now):
                self.purge(now)

    def sweep(self, stored: Callable[[str], bool], now: datetime | None = None) -> int:
        """The GC / lifecycle hook: copies of objects no longer stored (or referenced) and claims
        never finished go; due deletions are done. Returns how many copies were taken out of service."""
        if not self.enabled:
            return 0
        now = now or utcnow()
        gone = [row.oid for row in self.store.copies() if not stored(row.oid)]
        removed = self.store.retire(gone, now) + self.store.retire_unreferenced(now)
        removed += self.store.retire_stale(now - STALE_CLAIM, now)
        self.purge(now)
        return removed

    def purge(self, now: datetime | None = None) -> int:
        """Delete the objects of retired copies that are due; returns how many."""
        done = 0
        for key in self.store.due(now or utcnow()):
            try:
                self.blobs.delete(key)
            except StorageError as exc:  # kept for the next run
                log.warning("download copies: could not delete %s: %s", key, exc)
                continue
            self.store.deleted(key)
            done += 1
        return done

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        for oid, tmp in list(self._pending.items()):  # uploads cancelled: their links go
            self._done(oid, tmp)
