"""The storage lifecycle besides GC (``gc.py``, ``chunk_gc.py``): each a step of the
``storage_lifecycle`` job (every ``AICOMMONS_LIFECYCLE_INTERVAL_HOURS``) and an ``aicommons
storage`` command; the destructive ones dry-run unless ``apply``.

- **Uploads never committed** (``expire_uploads``): an LFS object uploaded to a repo (batch API,
  ``git lfs push``, a Xet shard) that no commit or push named within ``AICOMMONS_UPLOAD_EXPIRY_HOURS``
  is forgotten by that repo: no longer pending against its quota, no longer committable there; the
  next GC run deletes its bytes if nothing else uses them. An object the repo's git history points
  at is kept whatever its row says. A commit naming the object in the meantime keeps it (the row is
  deleted only while still uncommitted, in one statement); the expiry must exceed the longest gap
  between an upload and its commit (huggingface_hub commits at once; ``upload_large_folder`` may
  take hours).
- **Inference snapshots** (``hub/snapshots.py``): a repo's snapshot folders go at once when the repo
  is deleted or has LFS files permanently deleted (their hard links kept the deleted bytes alive);
  beyond ``AICOMMONS_SNAPSHOT_MAX_BYTES`` the least recently used go first (a snapshot used within
  the grace period is kept: a model may be loading from it); folders of repos that no longer exist
  go always.
- **git maintenance** (``maintain_git``): ``git gc --no-prune`` (repack, pack refs, commit graph) in
  each repository whose refs moved since its last maintenance; never drops an object (unreachable
  ones are GC's business, with its grace period), safe beside pushes (git's own locking).
- **The dataset viewer's leftovers** (``hub/viewer_prune.py``): files of ``<data dir>/viewer-cache``
  and full-text indexes no finished conversion reads any more (superseded commits, deleted
  datasets), past an hour's grace.
- **Whole copies for downloads** (``hub/download_cache.py`` on local disk, ``hub/bucket_copies.py``
  in the bucket): copies of objects no longer stored go; in the bucket, also copies of objects no
  repo references, uploads a dead replica left, and evicted copies whose presigned URLs have expired.
- **Rate-limit state**: shared rate-limit buckets idle long enough to be full again and expired
  in-flight leases (``db/rate_limits.py``) are deleted; in-process buckets prune themselves
  (``api/rate_limits.py``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pygit2

from aicommons.db.rate_limits import SharedRateLimitStore
from aicommons.db.storage_usage import StorageUsageStore
from aicommons.hub.reachability import pointers_in_history
from aicommons.times import utcnow

if TYPE_CHECKING:
    from collections.abc import Callable

    from aicommons.db.repos import RepoRow
    from aicommons.gitrepo import GitStore
    from aicommons.hub.bucket_copies import BucketCopies
    from aicommons.hub.download_cache import DownloadCache
    from aicommons.hub.viewer_prune import ViewerPruning

log = logging.getLogger(__name__)
IDLE_BUCKET_SECONDS = 600  # a bucket refills fully within a minute; ten is a wide margin
MAINTAINED_MARKER = "aicommons-maintained"


@dataclass
class LifecycleReport:
    apply: bool
    expired_uploads: int = 0
    expired_bytes: int = 0
    snapshots_removed: list[str] = field(default_factory=list)  # or "would remove" on a dry run
    snapshot_bytes_freed: int = 0
    snapshot_bytes_kept: int = 0
    git_repos_maintained: int = 0
    git_bytes_before: int = 0
    git_bytes_after: int = 0
    viewer_cache_files: list[str] = field(default_factory=list)  # removed (or that would be)
    viewer_cache_bytes: int = 0
    viewer_indexes: list[str] = field(default_factory=list)
    viewer_index_bytes: int = 0
    rate_buckets_pruned: int = 0
    leases_pruned: int = 0
    cached_copies_removed: int = 0
    bucket_copies_removed: int = 0  # whole copies in the bucket taken out of service (hub/bucket_copies.py)
    reservations_pruned: int = 0
    errors: list[str] = field(default_factory=list)


def _tree_bytes(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except FileNotFoundError:
                pass
    return total


class StorageLifecycle:
    def __init__(self, store: StorageUsageStore, limits: SharedRateLimitStore, git: GitStore, data_dir: Path, *,
                 upload_expiry_hours: float, snapshot_max_bytes: int | None, snapshot_grace_hours: float):
        self.store = store
        self.limits = limits
        self.git = git
        self.snapshots_dir = data_dir / "snapshots"
        self.upload_expiry_hours = upload_expiry_hours
        self.snapshot_max_bytes = snapshot_max_bytes
        self.snapshot_grace_hours = snapshot_grace_hours
        self.viewer: ViewerPruning | None = None  # set by the hub (hub/viewer_prune.py)
        self.cached_copies: DownloadCache | None = None  # whole copies for downloads (hub/download_cache.py)
        self.bucket_copies: BucketCopies | None = None  # and their copies in the bucket (hub/bucket_copies.py)
        self.stored: Callable[[str], bool] = lambda oid: True  # whether an LFS object is still stored

    def run(self, apply: bool = True) -> LifecycleReport:
        """Every step (the ``storage_lifecycle`` job)."""
        report = LifecycleReport(apply=apply)
        self.expire_uploads(report)
        self.sweep_snapshots(report)
        self.prune_viewer(report)
        if apply:
            self.sweep_copies(report)
            self.maintain_git(report)
            self.prune_limits(report)
        return report

    # --- whole copies kept for downloads ---------------------------------------------------------

    def sweep_copies(self, report: LifecycleReport) -> None:
        """Drop the download copies of objects GC has removed since (local and in the bucket), the
        bucket copies evicted whose URLs have expired, and half-made local copies a crash left."""
        if self.cached_copies is not None:
            report.cached_copies_removed = self.cached_copies.drop_unless(self.stored)
        if self.bucket_copies is not None:
            report.bucket_copies_removed = self.bucket_copies.sweep(self.stored)

    # --- uploads never committed -----------------------------------------------------------------

    def expire_uploads(self, report: LifecycleReport, hours: float | None = None) -> None:
        cutoff = utcnow() - timedelta(hours=self.upload_expiry_hours if hours is None else hours)
        for repo_id, (storage_key, rows) in self.store.uncommitted_before(cutoff).items():
            try:
                referenced = pointers_in_history(self.git.open(storage_key))
            except (pygit2.GitError, KeyError, ValueError) as exc:
                report.errors.append(f"repo {repo_id}: cannot read its history ({exc}); its uploads are kept")
                continue
            stale = [(oid, size) for oid, size in rows if oid not in referenced]
            if not stale:
                continue
            if report.apply:
                done = self.store.expire_uncommitted(repo_id, [oid for oid, _ in stale], cutoff)
                if done != len(stale):  # some were committed meanwhile: count what went
                    stale = stale[:done]
            report.expired_uploads += len(stale)
            report.expired_bytes += sum(size for _, size in stale)
        if report.expired_uploads:
            log.info("lifecycle: %s %d uploads never committed (%d bytes)",
                     "expired" if report.apply else "would expire", report.expired_uploads, report.expired_bytes)

    # --- snapshots ----------------------------------------------------------------------------------

    def forget_snapshots(self, repo: RepoRow) -> None:
        """Remove every snapshot of ``repo`` now (deleted, or LFS files permanently deleted)."""
        folder = self.snapshots_dir / repo.storage_key
        if folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
            log.info("lifecycle: removed the snapshots of %s", repo.full_id)

    def sweep_snapshots(self, report: LifecycleReport) -> None:
        if not self.snapshots_dir.is_dir():
            return
        live = {r.storage_key for r in self.store.repos()}
        grace_start = time.time() - self.snapshot_grace_hours * 3600
        folders = []  # (last used, bytes, path) of every built snapshot of a live repo
        for repo_dir in sorted(self.snapshots_dir.iterdir()):
            if not repo_dir.is_dir():
                continue
            if repo_dir.name not in live:  # its repo was deleted (while this process was not told)
                self._remove(report, repo_dir, _tree_bytes(repo_dir))
                continue
            for snap in repo_dir.iterdir():
                if snap.is_dir() and not snap.name.startswith("."):
                    folders.append((snap.stat().st_mtime, _tree_bytes(snap), snap))
        total = sum(size for _, size, _ in folders)
        if self.snapshot_max_bytes is not None:
            for used, size, snap in sorted(folders, key=lambda f: f[0]):  # least recently used first
                if total <= self.snapshot_max_bytes or used >= grace_start:
                    break
                self._remove(report, snap, size)
                total -= size
        report.snapshot_bytes_kept = total

    def _remove(self, report: LifecycleReport, path: Path, size: int) -> None:
        report.snapshots_removed.append(str(path.relative_to(self.snapshots_dir)))
        report.snapshot_bytes_freed += size
        if report.apply:
            shutil.rmtree(path, ignore_errors=True)

    # --- the dataset viewer's cache folder and search indexes ----------------------------------------

    def prune_viewer(self, report: LifecycleReport, grace_hours: float | None = None) -> None:
        if self.viewer is None:
            return
        found = self.viewer.prune(report.apply, None if grace_hours is None else grace_hours * 3600)
        report.viewer_cache_files += found.cache_files
        report.viewer_cache_bytes += found.cache_bytes
        report.viewer_indexes += found.indexes
        report.viewer_index_bytes += found.index_bytes
        report.errors += found.errors

    # --- git maintenance ----------------------------------------------------------------------------

    def maintain_git(self, report: LifecycleReport) -> None:
        for repo in self.store.repos():
            path = self.git.path(repo.storage_key)
            try:
                before = _tree_bytes(path)
                if self._maintain(path):
                    report.git_repos_maintained += 1
                    report.git_bytes_before += before
                    report.git_bytes_after += _tree_bytes(path)
            except (RuntimeError, OSError) as exc:
                report.errors.append(f"{repo.label}: {exc}")

    @staticmethod
    def _maintain(path: Path) -> bool:
        marker = path / MAINTAINED_MARKER
        refs = subprocess.run(["git", "--git-dir", str(path), "show-ref", "--head"], capture_output=True).stdout
        state = hashlib.sha256(refs).hexdigest()
        try:
            if marker.read_text() == state:
                return False
        except FileNotFoundError:
            pass
        proc = subprocess.run(["git", "--git-dir", str(path), "gc", "--quiet", "--no-prune"], capture_output=True,
                              text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"git gc failed: {proc.stderr.strip()}")
        marker.write_text(state)
        return True

    # --- rate-limit state ---------------------------------------------------------------------------

    def prune_limits(self, report: LifecycleReport) -> None:
        report.rate_buckets_pruned, report.leases_pruned = self.limits.prune(time.time(), IDLE_BUCKET_SECONDS)
        report.reservations_pruned = self.store.prune_reservations(utcnow())  # uploads a dead replica left
