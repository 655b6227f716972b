"""Pruning what the dataset viewer keeps besides the converted Parquet files (a step of the storage
lifecycle, ``hub/lifecycle.py``; ``aicommons storage viewer-cache``, a dry run unless ``--apply``):

- ``<data dir>/viewer-cache/``: the hard links or copies of converted Parquet files and search
  indexes that DuckDB and SQLite read (``hub/viewer_query.py``), named by the object's sha256. A
  file is kept while a finished conversion (of a default branch, or of a branch its owner opted
  into) names it: its converted commit holds that Parquet file, or its result names that index.
  Everything else (files of superseded commits, of deleted datasets, unfinished ``.part-`` copies)
  goes once it is older than the grace period: a conversion finishing right now, or a request
  reading a file it just linked, never loses its file.
- The blob store's full-text indexes (``viewer/<repo id>/<sha256>.sqlite``,
  ``hub/viewer_search.py``): kept while a finished conversion of that dataset names them, else
  deleted past the same grace period (the job stores an index before it records the conversion).

The Parquet files themselves are LFS objects of the dataset's ``refs/convert/parquet`` history, so
GC decides about them, as about any LFS object (they go with the dataset).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pygit2

from aicommons.db.parquet_conversions import Conversion
from aicommons.db.repos import RepoRow
from aicommons.gitrepo import GitStore
from aicommons.hub import content
from aicommons.hub.viewer_search import INDEX_PREFIX
from aicommons.storage.base import BlobStore

log = logging.getLogger(__name__)
GRACE_SECONDS = 3600


@dataclass
class ViewerPruneReport:
    apply: bool
    cache_files: list[str] = field(default_factory=list)  # removed, or that would be on a dry run
    cache_bytes: int = 0
    indexes: list[str] = field(default_factory=list)
    index_bytes: int = 0
    errors: list[str] = field(default_factory=list)


class ViewerPruning:
    def __init__(self, git: GitStore, blobs: BlobStore, cache_dir: Path, repo_by_id: Callable[[int], RepoRow | None],
                 conversions: Callable[[], Iterable[Conversion]], grace_seconds: float = GRACE_SECONDS):
        self.git, self.blobs, self.cache_dir = git, blobs, cache_dir
        self.repo_by_id = repo_by_id
        self.conversions = conversions  # every recorded conversion, of default and opted-in branches
        self.grace_seconds = grace_seconds

    def _live(self, report: ViewerPruneReport) -> tuple[set[str], set[str]] | None:
        """(sha256s of cache files still read, blob keys of indexes still read), or None when a
        conversion's files cannot be listed (then nothing is pruned: better stale than missing)."""
        files: set[str] = set()
        keys: set[str] = set()
        for conversion in self.conversions():
            if conversion.state != "done" or not conversion.converted_sha:
                continue
            repo = self.repo_by_id(conversion.repo_id)
            if repo is None:
                continue
            for config in (conversion.result or {}).get("configs", {}).values():
                for found in (config.get("search") or {}).values():
                    files.add(found["oid"])
                    keys.add(f"{INDEX_PREFIX}{repo.id}/{found['oid']}.sqlite")
            try:
                git_repo = self.git.open(repo.storage_key)
                commit = git_repo[pygit2.Oid(hex=conversion.converted_sha)].peel(pygit2.Commit)
                files.update(e.lfs.oid for e in content.list_tree(git_repo, commit, "", recursive=True)
                             if e.lfs is not None)
            except (pygit2.GitError, KeyError, ValueError) as exc:
                report.errors.append(f"{repo.full_id}: cannot read its converted commit ({exc}); nothing pruned")
                return None
        return files, keys

    def prune(self, apply: bool, grace_seconds: float | None = None) -> ViewerPruneReport:
        report = ViewerPruneReport(apply=apply)
        live = self._live(report)
        if live is None:
            return report
        files, keys = live
        grace = self.grace_seconds if grace_seconds is None else grace_seconds
        cutoff = time.time() - grace
        if self.cache_dir.is_dir():
            for path in sorted(self.cache_dir.iterdir()):
                try:
                    st = path.lstat()
                except FileNotFoundError:
                    continue
                # a hard link keeps the blob's mtime; linking it here set its ctime
                if path.name.split(".", 1)[0] in files or max(st.st_mtime, st.st_ctime) > cutoff:
                    continue
                report.cache_files.append(path.name)
                report.cache_bytes += st.st_size
                if apply:
                    path.unlink(missing_ok=True)
        young = datetime.now(UTC) - timedelta(seconds=grace)
        try:
            for info in list(self.blobs.list_blobs(INDEX_PREFIX)):
                if info.key in keys or info.last_modified > young:
                    continue
                report.indexes.append(info.key)
                report.index_bytes += info.size
                if apply:
                    self.blobs.delete(info.key)
        except OSError as exc:
            report.errors.append(f"the search indexes could not be listed or deleted: {exc}")
        if report.cache_files or report.indexes:
            log.info("viewer pruning: %s %d cache files (%d bytes) and %d search indexes (%d bytes)",
                     "removed" if apply else "would remove", len(report.cache_files), report.cache_bytes,
                     len(report.indexes), report.index_bytes)
        return report

