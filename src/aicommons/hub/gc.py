"""Garbage collection of LFS blobs nothing references: mark, then sweep with a grace period.

Mark: every oid a repo may read (``repo_lfs_objects``: uploaded through it or committed to it) plus
every LFS pointer reachable from any ref of any repo. Sweep: each ``lfs/`` blob that is unmarked,
older than the grace period and not leased by an upload in flight (``db/gc.py`` explains the lease)
is deleted, together with its ``lfs_objects`` row. Dry-run unless ``apply`` is set.

``lfs/`` keys, ``staging/`` direct uploads never verified, and (``chunk_gc.py``) the chunk store's
xorbs and shards and whole-file copies it makes redundant are collected.

History rewrites (``super_squash_history``, a force-push, a deleted branch) leave objects no ref
reaches: a leaked secret, typically. The hub stops serving them, LFS objects included, at once
(``hub/reachability.py``);
a GC run with ``apply`` then removes them: the git objects older than the grace period are pruned
from each repository whose refs moved since its last purge, and a repo's record of LFS objects its
history no longer points at is dropped, so those blobs are swept like any unreferenced one.
The grace period must exceed the longest upload (staging + store) and presigned-URL lifetime.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pygit2

from aicommons.db.gc import BlobGcStore
from aicommons.gitrepo import GitStore
from aicommons.hub.progress import SILENT, Progress
from aicommons.hub.reachability import pointers_in_history
from aicommons.storage.base import BlobStore, StorageError
from aicommons.times import utcnow

if TYPE_CHECKING:
    from aicommons.xet.service import XetService

log = logging.getLogger(__name__)
LFS_PREFIX = "lfs/"
STAGING_PREFIX = "staging/"  # direct uploads waiting for their verify
LFS_KEY_RE = re.compile(r"^lfs/[0-9a-f]{2}/[0-9a-f]{2}/([0-9a-f]{64})$")


class LeasingBlobStore:
    """A BlobStore whose writes first lease their key, so that GC cannot delete under them."""

    def __init__(self, inner: BlobStore, leases: BlobGcStore):
        self.inner = inner
        self.leases = leases

    def put_file(self, key: str, src: Path) -> None:
        self.leases.touch_lease(key, utcnow())
        self.inner.put_file(key, src)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@dataclass
class GcReport:
    apply: bool
    grace_hours: float
    scanned: int = 0
    marked: int = 0
    kept_young: int = 0
    deleted: list[str] = field(default_factory=list)  # or "would delete" on a dry run
    redundant: list[str] = field(default_factory=list)  # whole-file copies the chunk store also holds
    freed_bytes: int = 0
    git_repos_purged: int = 0  # repositories whose unreachable git objects were pruned
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        verb = "deleted" if self.apply else "would delete"
        return (f"{self.scanned} blobs scanned, {self.marked} referenced, {self.kept_young} kept as younger "
                f"than {self.grace_hours:g} h, {verb} {len(self.deleted)} unreferenced and {len(self.redundant)} "
                f"redundant whole-file copies ({self.freed_bytes} bytes)"
                + (f", {len(self.errors)} errors" if self.errors else ""))


def mark(store: BlobGcStore, git: GitStore, *, forget_before: datetime | None = None,
         progress: Progress = SILENT) -> set[str]:
    """Every LFS oid some repo may read. With ``forget_before``, a repo's record of LFS objects its
    history no longer points at (a squash or force-push removed them) is dropped first, when older
    than that: such a blob is then unreferenced, and swept."""
    histories = set()
    repos = list(store.repos_for_gc())
    progress.stage("marking repositories", items=len(repos))
    for repo_id, name, storage_key in repos:
        progress.advance()
        try:
            pointers = pointers_in_history(git.open(storage_key))
        except (pygit2.GitError, KeyError, ValueError) as exc:
            # A repo we cannot read might reference anything: refuse to sweep rather than guess.
            raise RuntimeError(f"cannot read the git repository of {name}: {exc}") from exc
        if forget_before is not None and (dropped := store.drop_stale_repo_objects(repo_id, pointers, forget_before)):
            log.info("gc: %s no longer references %d LFS objects", name, dropped)
        histories |= pointers
    return store.referenced_oids() | histories


def _git_time(cutoff: datetime, now: datetime) -> str:
    seconds = int((now - cutoff).total_seconds())
    return "now" if seconds <= 0 else f"{seconds}.seconds.ago"


def _refs_state(path: Path) -> str:
    out = subprocess.run(["git", "--git-dir", str(path), "show-ref", "--head"], capture_output=True).stdout
    return hashlib.sha256(out).hexdigest()


def purge_git_objects(path: Path, *, cutoff: datetime, now: datetime) -> bool:
    """Delete the objects of one bare repository that no ref reaches and that are older than
    ``cutoff`` (younger ones may belong to a commit or push still landing). Skipped when the refs
    have not moved since the last purge: nothing new can have become unreachable. Returns whether
    it ran. The hub already refuses to serve unreachable objects (``hub/reachability.py``); this
    removes them from the disk, and from the backups taken after it."""
    marker = path / "aicommons-purged"
    state = _refs_state(path)
    try:
        if marker.read_text() == state:
            return False
    except FileNotFoundError:
        pass
    when = _git_time(cutoff, now)
    for args in (["reflog", "expire", "--expire-unreachable=now", "--all"],
                 # Unreachable objects in packs older than the cutoff are dropped, younger ones
                 # loosened (git gc's own safety), and loose ones older than the cutoff pruned.
                 ["repack", "-A", "-d", "-q", f"--unpack-unreachable={when}"],
                 ["prune", f"--expire={when}"]):
        proc = subprocess.run(["git", "--git-dir", str(path), *args], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"git {args[0]} failed in {path}: {proc.stderr.strip()}")
    if when == "now" or not _has_loose_objects(path):
        marker.write_text(state)  # else a later run prunes what was too young this time
    return True


def _has_loose_objects(path: Path) -> bool:
    return any(d.is_dir() and len(d.name) == 2 and any(d.iterdir()) for d in (path / "objects").iterdir())


def purge_unreachable(store: BlobGcStore, git: GitStore, report: GcReport, *, cutoff: datetime,
                      now: datetime) -> None:
    for _repo_id, name, storage_key in store.repos_for_gc():
        try:
            if purge_git_objects(git.path(storage_key), cutoff=cutoff, now=now):
                report.git_repos_purged += 1
        except (RuntimeError, OSError) as exc:
            report.errors.append(f"{name}: {exc}")


def collect_garbage(store: BlobGcStore, git: GitStore, blobs: BlobStore, *, grace_hours: float,
                    apply: bool = False, now: datetime | None = None, progress: Progress = SILENT,
                    xet: XetService | None = None) -> GcReport:
    """Each blob is deleted whole or not at all: an interrupted run leaves a valid store, and the
    next run carries on. With ``xet`` (the hub's XetService) the chunk store too (``chunk_gc.py``)."""
    try:
        return _collect(store, git, blobs, grace_hours=grace_hours, apply=apply, now=now, progress=progress, xet=xet)
    finally:
        progress.close()


def _collect(store: BlobGcStore, git: GitStore, blobs: BlobStore, *, grace_hours: float, apply: bool,
             now: datetime | None, progress: Progress, xet: XetService | None = None) -> GcReport:
    report = GcReport(apply=apply, grace_hours=grace_hours)
    now = now or utcnow()
    cutoff = now - timedelta(hours=grace_hours)
    cutoff_aware = cutoff.replace(tzinfo=UTC)
    # Listing before marking: a blob written after the listing is not looked at in this run.
    listing = list(blobs.list_blobs(LFS_PREFIX))
    marked = mark(store, git, forget_before=cutoff if apply else None, progress=progress)
    if apply:  # git objects squashed or force-pushed away (and their history's LFS objects, above)
        purge_unreachable(store, git, report, cutoff=cutoff, now=now)
    progress.stage("sweeping blobs", items=len(listing))
    for info in listing:
        progress.advance()
        report.scanned += 1
        match = LFS_KEY_RE.match(info.key)
        if match is None:
            continue  # not ours to collect
        oid = match.group(1)
        if oid in marked:
            report.marked += 1
            continue
        if info.last_modified >= cutoff_aware:
            report.kept_young += 1
            continue
        if not apply:
            report.deleted.append(info.key)
            report.freed_bytes += info.size
            continue
        try:
            if store.delete_if_unreferenced(info.key, oid, cutoff, functools.partial(blobs.delete, info.key)):
                report.deleted.append(info.key)
                report.freed_bytes += info.size
                log.info("gc: deleted %s (%d bytes)", info.key, info.size)
            else:
                report.kept_young += 1  # leased or referenced since the mark
        except StorageError as exc:
            report.errors.append(f"{info.key}: {exc}")
    # Direct uploads that were never verified (hub/direct_uploads.py): nothing can reference them.
    for info in blobs.list_blobs(STAGING_PREFIX):
        report.scanned += 1
        if info.last_modified >= cutoff_aware:
            report.kept_young += 1
            continue
        if apply:
            try:
                blobs.delete(info.key)
            except StorageError as exc:
                report.errors.append(f"{info.key}: {exc}")
                continue
        report.deleted.append(info.key)
        report.freed_bytes += info.size
    if xet is not None:
        from aicommons.hub.chunk_gc import collect_chunks

        collect_chunks(report, store, blobs, xet.files, xet.reads, marked, cutoff=cutoff, apply=apply,
                       lfs_listing=listing)
    if apply:
        store.expire_leases(cutoff)
    return report


def format_keys(keys: Iterable[str], limit: int = 50) -> str:
    keys = list(keys)
    lines = keys[:limit] + ([f"... and {len(keys) - limit} more"] if len(keys) > limit else [])
    return "\n".join(lines)
