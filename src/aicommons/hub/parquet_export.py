"""The Parquet conversion of datasets: every new commit of a dataset's default branch is converted
by a background job into Parquet on the ref ``refs/convert/parquet``, with the Hub's layout
(``{config}/{split}/0000.parquet``, more files for big splits), as the Hub's parquet-converter does.

Every door that moves a branch (commit API, git push, LFS, merges, mirrors) ends in
``RepoService.after_ref_update``, whose listener here queues the job. The job reads the commit's
files (LFS objects linked, not copied, when the blob store is a local disk or the download cache
has a whole copy of a Xet file; else rebuilt once and left to that cache) and loads them with the
``datasets`` library's own builders (``load_dataset_builder`` on the folder), so configs and splits
follow the card's ``configs:`` and the Hub's data-file patterns exactly, and the figures (features,
``num_examples``) are those ``load_dataset`` computes. A config whose files total more than
``max_bytes`` converts the first rows of each split only (about ``max_bytes`` of Arrow data), into
``{config}/partial-{split}/0000.parquet``, marked ``partial``.

Branches besides the default one are converted when the dataset's owner opts them in (``PUT
/api/datasets/{id}/viewer/branches``, or the dataset's settings page): each opted-in branch is
converted on every change, like the default branch, onto its own ref
``refs/convert/parquet-branch/<branch>`` (``refs/convert/parquet/<branch>`` cannot coexist with
``refs/convert/parquet`` in git), and its state is kept per branch (``parquet_branch_conversions``).
The viewer API and page select a branch with ``revision=<branch>`` (docs/viewer.md).

The ref is written by the hub itself (author ``parquet-converter``, no principal): the Parquet
files are LFS objects of the repo like any large file, so the repo's access rules cover the ref and
everything under it. A failure is recorded (``parquet_conversions``) and shown, never retried: the
next commit of the branch is the next try. The exception: a pulled-through dataset whose files could
not be fetched from upstream (unreachable, the quota, too large to fetch by itself) is tried again
after ``AICOMMONS_PARQUET_RETRY_MINUTES`` x ``RETRY_FACTORS`` (``retry``): on a mirror the next
commit may never come. A job whose commit is no longer the newest queued one does nothing.

Two stages, as datasets-server's steps: the job converts and records the Parquet files (``/parquet``,
``/rows``, ``/first-rows``, ``/filter`` and ``load_dataset`` answer from then on, with
``result["extras"] = "pending"``), then queues a follow-up job (``viewer_extras``) that builds each
split's full-text index and column statistics from the recorded files and adds them to the result
(``/search`` and ``/statistics`` answer ``ResponseNotReady`` until then). A job lost with its
process (a crash during either stage: huey takes a job off the queue before running it) is queued
again when job workers start (``resume``), at most ``MAX_RESUMES`` times; after that the conversion
is recorded as failed (stage 1) or left without its index and statistics (stage 2), not retried forever.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pygit2

from aicommons.db.parquet_conversions import Conversion, ParquetBranchStore, ParquetConversionStore
from aicommons.db.repos import RepoRow, RepoStore
from aicommons.errors import BadRequest, HubError
from aicommons.gitrepo import GitStore, RefUpdateConflict, TreeChange
from aicommons.gitrepo.trees import apply_changes
from aicommons.hub import content
from aicommons.hub.gitattributes import format_pointer
from aicommons.hub.objects import ObjectReader, StoredObject
from aicommons.storage.keys import blob_key
from aicommons.times import utcnow

if TYPE_CHECKING:
    from aicommons.hub.download_cache import DownloadCache

log = logging.getLogger(__name__)

CONVERTED_REF = "refs/convert/parquet"
BRANCH_REF_PREFIX = "refs/convert/parquet-branch/"  # + the branch: an opted-in branch's conversion
DEFAULT_REF = "refs/heads/main"
MAX_BRANCHES = 10  # opted-in branches per dataset
BOT = "parquet-converter"
GITATTRIBUTES = b"*.parquet filter=lfs diff=lfs merge=lfs -text\n"
MAX_ERROR_CHARS = 2000
CHECKOUT_THREADS = 4  # LFS objects copied at once when they have no local file to link
MAX_RESUMES = 3  # times a job lost with its process is queued again (``resume``)
RETRY_FACTORS = (1, 6, 36, 144)  # a failed fetch from upstream: tried again after retry_minutes x each
PARTIAL_BATCH_ROWS = 1000
PARTIAL_MEDIA_BATCH_ROWS = 10  # rows of images or audio read at a time: their bytes count towards max_bytes
# Rows per Parquet row group of datasets without images, audio or binary columns (those keep the
# datasets library's small groups). datasets' default of 1,000 makes 10,000 groups of a 10-million-row
# split, whose footers alone cost DuckDB ~400 ms a filter; 10,000-row groups cost ~30 ms and a /rows
# page still reads one or two groups (docs/benchmarks.md).
ROW_GROUP_ROWS = 10_000


class ConversionError(Exception):
    """Why a dataset could not be converted (shown to its readers)."""


def converted_ref(branch: str | None) -> str:
    """The ref holding the conversion of the default branch (None) or of an opted-in branch."""
    return CONVERTED_REF if branch is None else BRANCH_REF_PREFIX + branch


class ParquetExport:
    def __init__(self, store: ParquetConversionStore, repo_store: RepoStore, git: GitStore, objects: ObjectReader,
                 blobs, tmp_dir: Path, max_bytes: int, after_ref_update: Callable,
                 queue: Callable[[int, str, str | None], None], enabled: bool = True,
                 branch_store: ParquetBranchStore | None = None,
                 queue_extras: Callable[[int, str, str | None], None] | None = None,
                 split_files: Callable[[RepoRow, Conversion, str, str], list[Path]] | None = None,
                 download_cache: DownloadCache | None = None,
                 fetch_files: Callable[[RepoRow, str], object] | None = None,
                 retry: Callable[[int, str, str | None, float], object] | None = None, retry_minutes: float = 0):
        self.store, self.repo_store, self.git, self.objects, self.blobs = store, repo_store, git, objects, blobs
        self.branch_store = branch_store or ParquetBranchStore(store.engine)
        self.tmp_dir, self.max_bytes = tmp_dir, max_bytes
        self.after_ref_update = after_ref_update  # RepoService.after_ref_update: events, scans
        self.queue = queue  # puts (repo id, commit, branch or None) on the job queue (hub/jobs.py)
        self.queue_extras = queue_extras or (lambda repo_id, sha, branch: None)  # the follow-up job
        self.split_files = split_files  # a recorded split's Parquet files on local disk (hub/viewer_query.py)
        self.enabled = enabled  # AICOMMONS_PARQUET_CONVERSION
        # Whole copies of chunk-stored files (hub/download_cache.py): linked into checkouts, and kept
        # from the checkouts that had to rebuild them.
        self.download_cache = download_cache
        # A pulled-through dataset's large files not cached yet, fetched from upstream before its
        # checkout (UpstreamService.fetch_commit_files, on a mirror: docs/mirror.md).
        self.fetch_files = fetch_files
        # Schedules ``retry`` of (repo id, commit, branch) in so many seconds (hub/jobs.py), after a
        # failed fetch_files; the first delay, in minutes (0: never).
        self.schedule_retry, self.retry_minutes = retry, retry_minutes

    # --- when the default branch (or an opted-in one) moves -------------------------------------------

    def on_ref_update(self, repo: RepoRow, ref: str, new_sha: str | None) -> None:
        if repo.type != "dataset" or new_sha is None or not ref.startswith("refs/heads/"):
            return
        branch = None if ref == DEFAULT_REF else ref[len("refs/heads/"):]
        try:
            if branch is None:
                self.store.queued(repo.id, new_sha, utcnow())
            elif not self.branch_store.queued(repo.id, branch, new_sha, utcnow()):
                return  # a branch its owner did not opt in
            self.queue(repo.id, new_sha, branch)
        except Exception:  # noqa: BLE001 - the change has landed; a missed conversion shows as pending
            log.exception("could not queue the Parquet conversion of %s@%s", repo.full_id, new_sha)

    def branch_head(self, repo: RepoRow, branch: str) -> str | None:
        ref = self.git.open(repo.storage_key).references.get(f"refs/heads/{branch}")
        return str(ref.peel(pygit2.Commit).id) if ref is not None else None

    def status(self, repo: RepoRow, branch: str | None = None) -> Conversion | None:
        """The conversion of the repo's current default branch (or of ``branch``, when its owner
        opted it in; else None). A commit never queued (converted before this hub converted, or
        the queue missed it) is queued now."""
        if repo.type != "dataset":
            return None
        if branch is not None:
            return self._branch_status(repo, branch)
        if not repo.sha:
            return None
        found = self.store.get(repo.id)
        if found is not None and found.source_sha == repo.sha:
            return found
        if not self.enabled:
            return None
        self.on_ref_update(repo, DEFAULT_REF, repo.sha)
        return self.store.get(repo.id)

    def _branch_status(self, repo: RepoRow, branch: str) -> Conversion | None:
        found = self.branch_store.get(repo.id, branch)
        head = self.branch_head(repo, branch) if found is not None else None
        if found is None or head is None or found.source_sha == head:
            return found
        if not self.enabled:
            return None
        self.on_ref_update(repo, f"refs/heads/{branch}", head)
        return self.branch_store.get(repo.id, branch)

    # --- which branches are converted (the owner's choice) ---------------------------------------------

    def branches(self, repo: RepoRow) -> dict[str, Conversion]:
        return self.branch_store.branches(repo.id) if repo.type == "dataset" else {}

    def set_branches(self, repo: RepoRow, branches: list[str]) -> dict[str, Conversion]:
        """Convert exactly these branches besides the default one (existing branches of the dataset,
        at most MAX_BRANCHES); newly opted-in ones are queued at once. The caller is the dataset's
        admin (the API and page check it)."""
        if repo.type != "dataset":
            raise BadRequest("Only datasets are converted to Parquet")
        wanted = list(dict.fromkeys(b.strip() for b in branches if b.strip()))
        if len(wanted) > MAX_BRANCHES:
            raise BadRequest(f"At most {MAX_BRANCHES} branches can be converted besides the default one")
        for branch in wanted:
            if f"refs/heads/{branch}" == DEFAULT_REF:
                raise BadRequest(f"{branch!r} is the default branch, which is always converted")
            if self.branch_head(repo, branch) is None:
                raise BadRequest(f"The dataset has no branch {branch!r}")
        before = self.branch_store.branches(repo.id)
        self.branch_store.set_branches(repo.id, wanted, utcnow())
        if self.enabled:
            for branch in wanted:
                if branch not in before:
                    self._branch_status(repo, branch)
        return self.branch_store.branches(repo.id)

    def all_conversions(self) -> list[Conversion]:
        """Every recorded conversion, of default and opted-in branches (what the viewer's pruning
        keeps files for: hub/viewer_prune.py)."""
        return self.store.all() + self.branch_store.all()

    # --- the job -------------------------------------------------------------------------------------

    def convert(self, repo_id: int, sha: str, branch: str | None = None) -> str:
        """Convert commit ``sha`` of the repo's default branch (or of the opted-in ``branch``);
        returns the state recorded (or ``superseded``)."""
        queued = self.store.get(repo_id) if branch is None else self.branch_store.get(repo_id, branch)
        repo = self.repo_store.get_by_id(repo_id)
        if queued is None or queued.source_sha != sha or queued.state != "pending" or repo is None:
            return "superseded"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        try:
            with tempfile.TemporaryDirectory(prefix="parquet-", dir=self.tmp_dir) as work:
                work_dir = Path(work)
                if self.fetch_files is not None:
                    try:
                        self.fetch_files(repo, sha)
                    except Exception as exc:  # noqa: BLE001 - upstream's answer, whatever it was, is shown
                        return self._fetch_failed(repo_id, sha, branch, exc, int((queued.result or {}).get("retries", 0)))
                source = self._checkout(repo, sha, work_dir / "source")
                configs, partial = convert_folder(source, work_dir / "out", work_dir / "cache", repo.name,
                                                  self.max_bytes)
                converted = self._commit(repo, sha, work_dir / "out", configs, converted_ref(branch))
        except (ConversionError, HubError, OSError) as exc:
            return self._failed(repo_id, sha, str(exc), branch)
        except Exception as exc:  # noqa: BLE001 - whatever datasets raises on these files is the answer
            log.info("Parquet conversion of %s@%s failed", repo.full_id, sha, exc_info=True)
            return self._failed(repo_id, sha, f"{type(exc).__name__}: {exc}", branch)
        # The Parquet files answer from now on; the search index and statistics follow (build_extras).
        # The indexes of earlier conversions go with the storage lifecycle (hub/viewer_prune.py).
        if self._finished(repo_id, sha, branch, "done", converted_sha=converted, partial=partial,
                          result={"configs": configs, "extras": "pending"}):
            self._queue_extras(repo_id, sha, branch)
        return "done"

    def _fetch_failed(self, repo_id: int, sha: str, branch: str | None, exc: Exception, retries: int) -> str:
        """Fetching the files from upstream failed: recorded failed with the reason and, while
        ``RETRY_FACTORS`` lasts, converted again later (``retry``); the error says when."""
        message = (str(exc) if isinstance(exc, HubError) else f"{type(exc).__name__}: {exc}")[:MAX_ERROR_CHARS - 200]
        log.info("fetching the files of repo %s@%s from upstream failed: %s", repo_id, sha, message)
        if self.schedule_retry is None or self.retry_minutes <= 0 or retries >= len(RETRY_FACTORS):
            return self._failed(repo_id, sha, message + (" (tried again: not any more; the next commit is the next "
                                                         "try)" if retries else ""), branch)
        delay = self.retry_minutes * 60 * RETRY_FACTORS[retries]
        at = utcnow() + timedelta(seconds=delay)
        if self._finished(repo_id, sha, branch, "failed", result={"retries": retries + 1},
                          error=f"{message} (tried again at {at:%Y-%m-%d %H:%M:%S} UTC)"):
            self.schedule_retry(repo_id, sha, branch, delay)
        return "failed"

    def retry(self, repo_id: int, sha: str, branch: str | None = None) -> str:
        """The scheduled retry of ``_fetch_failed``: converts ``sha`` again if its conversion is still
        that failure (not a newer commit's, nor converted meanwhile)."""
        found = self._get(repo_id, branch)
        if found is None or found.source_sha != sha or found.state != "failed" \
                or not (found.result or {}).get("retries"):
            return "superseded"
        if not self._update_result(repo_id, branch, found, found.result, new_state="pending"):
            return "superseded"
        return self.convert(repo_id, sha, branch)

    def _queue_extras(self, repo_id: int, sha: str, branch: str | None) -> None:
        try:
            self.queue_extras(repo_id, sha, branch)
        except Exception:  # noqa: BLE001 - the Parquet is recorded; resume() queues the rest
            log.exception("could not queue the search index and statistics of repo %s@%s", repo_id, sha)

    def _get(self, repo_id: int, branch: str | None) -> Conversion | None:
        return self.store.get(repo_id) if branch is None else self.branch_store.get(repo_id, branch)

    def _update_result(self, repo_id: int, branch: str | None, c: Conversion, result: dict | None,
                       **changes: Any) -> bool:
        now = utcnow()
        if branch is None:
            return self.store.update_result(repo_id, c.source_sha, c.state, c.converted_sha, now, result=result,
                                            **changes)
        return self.branch_store.update_result(repo_id, branch, c.source_sha, c.state, c.converted_sha, now,
                                               result=result, **changes)

    def build_extras(self, repo_id: int, sha: str, branch: str | None = None) -> str:
        """The follow-up job: each split's full-text index and column statistics, built from the
        recorded Parquet files and added to the conversion's result; returns ``done`` or
        ``superseded`` (a newer commit was queued, or they were built already)."""
        found = self._get(repo_id, branch)
        repo = self.repo_store.get_by_id(repo_id)
        if (found is None or repo is None or found.source_sha != sha or found.state != "done"
                or (found.result or {}).get("extras") != "pending"):
            return "superseded"
        result = copy.deepcopy(found.result or {})
        self._derive(repo, found, result.get("configs", {}))
        result["extras"] = "done"
        result.pop("resumed", None)
        return "done" if self._update_result(repo_id, branch, found, result) else "superseded"

    def resume(self, queued: Callable[[str, tuple], bool]) -> list[tuple[str, int, str | None]]:
        """Queue again the jobs of conversions left unfinished by a process that died (a job is off
        the queue while it runs): ``queued(task name, args)`` says whether one is on the queue
        already. A conversion resumed ``MAX_RESUMES`` times is given up: recorded failed (stage 1),
        or kept without its index and statistics (stage 2). Returns (stage, repo id, branch) queued."""
        resumed = []
        for repo_id, branch, c in self.store.unfinished() + self.branch_store.unfinished():
            stage = "convert_parquet" if c.state == "pending" else "viewer_extras"
            if queued(stage, (repo_id, c.source_sha, branch)):
                continue
            result = dict(c.result or {})
            times = int(result.get("resumed", 0))
            if times >= MAX_RESUMES:
                if stage == "convert_parquet":
                    self._update_result(repo_id, branch, c, None, new_state="failed",
                                        error=f"The conversion was interrupted {times + 1} times; it is not retried.")
                else:
                    self._update_result(repo_id, branch, c, {**result, "extras": "failed"})
                continue
            result["resumed"] = times + 1
            if not self._update_result(repo_id, branch, c, result):
                continue  # it moved on meanwhile
            (self.queue if stage == "convert_parquet" else self._queue_extras)(repo_id, c.source_sha, branch)
            resumed.append((stage, repo_id, branch))
        return resumed

    def _finished(self, repo_id: int, sha: str, branch: str | None, state: str, **outcome: Any) -> bool:
        if branch is None:
            return self.store.finished(repo_id, sha, state, utcnow(), **outcome)
        return self.branch_store.finished(repo_id, branch, sha, state, utcnow(), **outcome)

    def _derive(self, repo: RepoRow, conversion: Conversion, configs: dict) -> set[str]:
        """What the viewer reads besides the Parquet files, made once by the follow-up job: each
        split's full-text index (``hub/viewer_search.py``, stored in the blob store and named in
        ``configs``) and its column statistics (``hub/viewer_stats.py``, in ``configs``), from the
        recorded files. A failure leaves the split without them (``/is-valid`` says so), not the
        conversion failed. Returns the blob keys written."""
        kept: set[str] = set()
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="viewer-extras-", dir=self.tmp_dir) as work:
            work_dir = Path(work)
            for number, (name, config) in enumerate(configs.items()):
                splits = list(dict.fromkeys(item["split"] for item in config["files"]))
                for split_number, split in enumerate(splits):
                    try:
                        files = self._split_files(repo, conversion, name, split)
                    except Exception:  # noqa: BLE001 - the split's rows stay viewable
                        log.exception("the files of %s %s/%s could not be read", repo.full_id, name, split)
                        continue
                    kept |= self._derive_split(repo, work_dir, config, name, split, files, (number, split_number))
        return kept

    def _split_files(self, repo: RepoRow, conversion: Conversion, config: str, split: str) -> list[Path]:
        if self.split_files is None:
            raise ConversionError("the viewer's files are not wired")
        return self.split_files(repo, conversion, config, split)

    def _derive_split(self, repo: RepoRow, work_dir: Path, config: dict, name: str, split: str, files: list[Path],
                      numbers: tuple[int, int]) -> set[str]:
        from aicommons.hub.viewer_search import build_index, index_key
        from aicommons.hub.viewer_stats import split_statistics

        try:
            features = (config.get("info") or {}).get("features")
            config.setdefault("statistics", {})[split] = split_statistics(files, features, bool(config.get("partial")))
        except Exception:  # noqa: BLE001 - statistics are an extra too
            log.exception("the statistics of %s %s/%s could not be computed", repo.full_id, name, split)
        index = work_dir / f"search-{numbers[0]}-{numbers[1]}.sqlite"
        try:
            columns = build_index(files, index)
            if columns is None:
                return set()
            oid = _sha256(index)
            key = index_key(repo.id, oid)
            self.blobs.put_file(key, index)
        except Exception:  # noqa: BLE001 - search is an extra: the rows stay viewable
            log.exception("the search index of %s %s/%s could not be built", repo.full_id, name, split)
            return set()
        config.setdefault("search", {})[split] = {"oid": oid, "columns": columns}
        return {key}

    def _failed(self, repo_id: int, sha: str, message: str, branch: str | None = None) -> str:
        self._finished(repo_id, sha, branch, "failed", error=message[:MAX_ERROR_CHARS])
        return "failed"

    def _checkout(self, repo: RepoRow, sha: str, dest: Path) -> Path:
        """The commit's files in ``dest``: git blobs written, LFS objects linked to the local blob
        or to the download cache's whole copy when there is one (else copied: rebuilt from the chunk
        store or read from the bucket, on other threads while the git blobs are written). Hidden
        files are left out, as ``datasets`` ignores them."""
        from concurrent.futures import ThreadPoolExecutor

        git_repo = self.git.open(repo.storage_key)
        commit = git_repo[pygit2.Oid(hex=sha)].peel(pygit2.Commit)
        dest.mkdir(parents=True)
        with ThreadPoolExecutor(max_workers=CHECKOUT_THREADS, thread_name_prefix="checkout") as pool:
            copies = []
            for entry in content.list_tree(git_repo, commit, "", recursive=True):
                if entry.type != "file" or any(part.startswith(".") for part in entry.path.split("/")):
                    continue
                target = dest / entry.path
                target.parent.mkdir(parents=True, exist_ok=True)
                if entry.lfs is None:
                    target.write_bytes(content.read_blob(git_repo, entry.oid))
                    continue
                found = self.objects.find(entry.lfs.oid)
                if found is None:
                    raise ConversionError(f"The large file {entry.path} is not stored on this hub")
                local = self.objects.local_path(found)
                if local is not None:
                    os.symlink(local, target)
                elif not self._link_whole_copy(found, target):
                    copies.append(pool.submit(self._copy_object, found, target))
            for copy_done in copies:
                copy_done.result()
        return dest

    def _link_whole_copy(self, found: StoredObject, target: Path) -> bool:
        """Hard-link the download cache's whole copy of a chunk-stored file (hub/download_cache.py),
        if it has one: checked against its sha256 when it was made, and linked, not copied, so the
        cache evicting it meanwhile leaves the checkout's file whole."""
        cache = self.download_cache
        whole = cache.get(found.oid, found.size, fill=False) if cache is not None and found.xet is not None else None
        if whole is None:
            return False
        try:
            os.link(whole, target)
        except OSError:  # evicted meanwhile, or another file system: rebuilt from the chunks
            return False
        return True

    def _copy_object(self, found: StoredObject, target: Path) -> None:
        """A file without a local whole copy: rebuilt from its xorbs (each segment's stored bytes
        mapped or read once, each chunk written as it is decoded) and offered to the download cache,
        so that the next conversion of the same file (and plain HTTP downloads) link it; or read
        from the bucket."""
        if found.key is None:
            cache = self.download_cache
            generation = cache.generation if cache is not None else 0
            with open(target, "wb", buffering=0) as out:
                self.objects.chunked(found).write_to(out.fileno())
            if cache is not None:
                cache.adopt(found.oid, found.size, target, generation)
            return
        with self.objects.open(found.oid) as src, open(target, "wb") as out:
            shutil.copyfileobj(src, out, 8 * 1024 * 1024)

    def _commit(self, repo: RepoRow, sha: str, out: Path, configs: dict, ref: str = CONVERTED_REF) -> str:
        """Store the Parquet files as LFS objects of the repo and point the converted ref at a
        commit holding exactly them."""
        from concurrent.futures import ThreadPoolExecutor

        git_repo = self.git.open(repo.storage_key)
        changes = [TreeChange(".gitattributes", str(git_repo.create_blob(GITATTRIBUTES)))]
        lfs_files = []
        items = [item for config in configs.values() for item in config["files"]]
        # Hashed, fsync'd and stored at once (both release the GIL: the files' writes to disk overlap).
        with ThreadPoolExecutor(max_workers=CHECKOUT_THREADS, thread_name_prefix="parquet-store") as pool:
            oids = list(pool.map(self._store_file, [out / item.pop("local") for item in items]))
        for item, oid in zip(items, oids, strict=True):
            self.repo_store.add_lfs_object(repo.id, oid, item["size"], utcnow())
            changes.append(TreeChange(item["path"], str(git_repo.create_blob(format_pointer(oid, item["size"])))))
            lfs_files.append((oid, item["path"], item["size"]))
        tree = apply_changes(git_repo, None, changes)
        message = f"Update parquet files\n\nConverted from {sha}.\n"
        for _attempt in range(3):
            current = git_repo.references.get(ref)
            old = str(current.target) if current is not None else None
            new = self.git.write_commit(git_repo, tree, [old] if old else [], message, BOT, "", when=int(time.time()))
            try:
                self.git.update_ref(repo.storage_key, ref, new, old)
            except RefUpdateConflict:
                continue
            self.repo_store.mark_lfs_committed(repo.id, lfs_files, ref, utcnow())
            self.after_ref_update(repo, ref, new, old)
            return new
        raise ConversionError("The converted ref kept moving while it was being written")

    def _store_file(self, local: Path) -> str:
        """A Parquet file stored as the LFS object its sha256 names (on disk first: fsync'd)."""
        oid = _sha256(local)
        with open(local, "rb") as f:
            os.fsync(f.fileno())
        self.blobs.put_file(blob_key(oid), local)
        return oid


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:  # file_digest reads into one reused buffer
        return hashlib.file_digest(f, "sha256").hexdigest()


def _audio_without_torchcodec() -> None:
    """``datasets`` 5 imports torchcodec in ``Audio.encode_example`` even for the inputs it stores
    as they are (an AudioFolder's file path, bytes); torchcodec has no CPU wheel for this torch. When
    it is missing, those inputs are stored exactly as ``datasets`` stores them with it (the file's
    bytes, embedded when the Parquet is written); inputs that need encoding (arrays, raw PCM) still
    get ``datasets``' own ImportError, recorded as the conversion's failure."""
    import importlib.util

    from datasets.features.audio import Audio

    if importlib.util.find_spec("torchcodec") is not None or getattr(Audio.encode_example, "stored_as_is", False):
        return
    original = Audio.encode_example

    def encode_example(self: Audio, value: Any) -> Any:
        if isinstance(value, str):
            return {"bytes": None, "path": value}
        if isinstance(value, Path):
            return {"bytes": None, "path": str(value.absolute())}
        if isinstance(value, (bytes, bytearray)):
            return {"bytes": value, "path": None}
        if (isinstance(value, dict) and "array" not in value and not str(value.get("path") or "").endswith("pcm")
                and (value.get("bytes") is not None or value.get("path") is not None)):
            return {"bytes": value.get("bytes"), "path": value.get("path")}
        return original(self, value)

    encode_example.stored_as_is = True  # type: ignore[attr-defined]
    Audio.encode_example = encode_example  # type: ignore[method-assign]


def convert_folder(source: Path, out: Path, cache: Path, dataset_name: str, max_bytes: int) -> tuple[dict, bool]:
    """Convert the dataset in ``source`` with ``datasets``' builders into ``out``
    (``{config}/{split}/NNNN.parquet``). Returns ({config: {"info": DatasetInfo dict, "files":
    [{split, path, size, local}]}}, partial)."""
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    _audio_without_torchcodec()
    _guard_embedding()
    _EMBEDDING.root = os.path.normpath(os.path.abspath(source))
    try:
        return _convert_configs(source, out, cache, dataset_name, max_bytes)
    finally:
        _EMBEDDING.root = None


def _convert_configs(source: Path, out: Path, cache: Path, dataset_name: str, max_bytes: int) -> tuple[dict, bool]:
    from datasets.naming import camelcase_to_snakecase

    configs: dict[str, dict] = {}
    any_partial = False
    for name, builder in _builders(source, cache):
        if "/" in name or name.startswith("."):
            raise ConversionError(f"The config name {name!r} cannot be a folder name")
        data_files = builder.config.data_files or {}
        total = sum(os.path.getsize(p) for files in data_files.values() for p in files if os.path.exists(p))
        if total > max_bytes:
            info, files = _convert_partial(builder, out, name, max_bytes, source)
            any_partial = True
        else:
            info, files = _convert_whole(builder, out, name, cache / name / "prepared")
        info["dataset_name"] = camelcase_to_snakecase(dataset_name)
        for split in info.get("splits", {}).values():
            split["dataset_name"] = info["dataset_name"]
        configs[name] = {"info": info, "files": files, "partial": total > max_bytes}
    return configs, any_partial


def _builders(source: Path, cache: Path) -> Iterator[tuple[str, Any]]:
    """(config name, ``datasets`` builder) of each config, as ``get_dataset_config_names`` and
    ``load_dataset_builder`` give them. The default config's builder is made first: it names the
    configs too, so a dataset of one config resolves its data files once, not twice. Builders write
    ``ROW_GROUP_ROWS``-row groups, except for images, audio and binary columns, which keep the
    builder's own."""
    import datasets

    from aicommons.hub.parquet_csv import use_arrow_reader

    def load(name: str | None, folder: str) -> Any:
        builder = datasets.load_dataset_builder(str(source), name, cache_dir=str(cache / folder),
                                                writer_batch_size=ROW_GROUP_ROWS)
        if _has_media(builder.info.features):
            builder._writer_batch_size = builder.DEFAULT_WRITER_BATCH_SIZE
        use_arrow_reader(builder)  # CSV and TSV: pyarrow's reader where it gives pandas' tables
        return builder

    first = None
    try:
        try:
            first = load(None, ".default")
        except ValueError:  # several configs and no default one: each by its name below
            pass
        names = list(type(first).builder_configs) or [first.config.name] if first is not None else \
            datasets.get_dataset_config_names(str(source))
    except Exception as exc:  # noqa: BLE001 - EmptyDatasetError, DataFilesNotFoundError, ...
        raise ConversionError(f"The dataset cannot be loaded by the datasets library: {type(exc).__name__}: {exc}") \
            from None
    for name in names:
        yield name, first if first is not None and first.config.name == name else load(name, name)


def _has_media(features: Any) -> bool:
    from datasets.features import Audio, Image, Value, Video
    from datasets.features.features import _visit

    found = []
    if features:
        _visit(features, lambda f: found.append(isinstance(f, (Audio, Image, Video))
                                                or (isinstance(f, Value) and f.dtype in ("binary", "large_binary"))))
    return any(found)


def _info_dict(info) -> dict:
    body = asdict(info)
    body["features"] = info.features.to_dict() if info.features is not None else None
    for key in ("post_processed", "supervised_keys", "task_templates", "builder_config", "config_names",
                "size_in_bytes", "post_processing_size"):
        body.pop(key, None)
    return body


def _convert_whole(builder, out: Path, config: str, prepared: Path) -> tuple[dict, list[dict]]:
    try:
        builder.download_and_prepare(output_dir=str(prepared), file_format="parquet")
    except Exception as exc:  # datasets wraps what its writer raised (DatasetGenerationError)
        if isinstance(exc.__cause__, ConversionError):
            raise exc.__cause__ from None
        raise
    info = _info_dict(builder.info)
    files = []
    produced = os.listdir(prepared)
    for split in builder.info.splits:
        pattern = re.compile(rf"^{re.escape(builder.dataset_name)}-{re.escape(split)}(-\d+-of-\d+)?\.parquet$")
        shards = sorted(f for f in produced if pattern.match(f))
        for index, shard in enumerate(shards):
            files.append(_place(prepared / shard, out, f"{config}/{split}/{index:04d}.parquet", split))
    return info, files


def _convert_partial(builder, out: Path, config: str, max_bytes: int, source: Path) -> tuple[dict, list[dict]]:
    """The first rows of each split, up to about ``max_bytes`` of Arrow data per split. Images, audio
    and video are embedded in the Parquet (their files' bytes, the file's name as ``path``), as
    ``download_and_prepare(file_format="parquet")`` does for a whole conversion: the streamed rows
    only name the files, which are in the job's temporary checkout (``_embed``)."""
    import datasets
    import pyarrow.parquet as pq

    info = builder.info.copy()
    splits = datasets.SplitDict(dataset_name=builder.dataset_name)
    files = []
    for split in builder.config.data_files:
        stream = builder.as_streaming_dataset(split=split).with_format("arrow")
        path = f"{config}/partial-{split}/0000.parquet"
        local = out / path
        local.parent.mkdir(parents=True, exist_ok=True)
        writer, rows, nbytes = None, 0, 0
        try:
            for batch in _partial_batches(stream, source):
                if writer is None:
                    writer = pq.ParquetWriter(local, batch.schema)
                writer.write_table(batch)
                rows, nbytes = rows + batch.num_rows, nbytes + batch.nbytes
                if info.features is None:
                    info.features = datasets.Features.from_arrow_schema(batch.schema)
                if nbytes >= max_bytes:
                    break
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            continue
        splits.add(datasets.SplitInfo(name=str(split), num_bytes=nbytes, num_examples=rows))
        files.append({"split": str(split), "path": path, "size": local.stat().st_size, "local": path})
    info.splits = splits
    return _info_dict(info), files


def _partial_batches(stream, source: Path) -> Iterator:
    """The streamed rows in Arrow tables of PARTIAL_BATCH_ROWS rows, or of PARTIAL_MEDIA_BATCH_ROWS
    rows with their media embedded when they have images, audio or video."""
    import datasets

    for batch in stream.iter(batch_size=PARTIAL_BATCH_ROWS):
        if not _has_media(datasets.Features.from_arrow_schema(batch.schema)):
            yield batch
            continue
        for start in range(0, batch.num_rows, PARTIAL_MEDIA_BATCH_ROWS):
            yield _embed(batch.slice(start, PARTIAL_MEDIA_BATCH_ROWS), source)


def _embed(batch, source: Path):
    """``batch`` with the files its image, audio and video cells name read into them
    (``datasets``' ``embed_table_storage``), after ``_check_media_paths``."""
    from datasets.table import embed_table_storage

    members = _check_media_paths(batch, os.path.normpath(os.path.abspath(source)))
    return embed_table_storage(batch, local_files=True, remote_files=members)


def _check_media_paths(table, root: str) -> bool:
    """Only files of the dataset's own checkout (``root``) may be embedded: an image, audio or video
    cell naming any other local file (``/etc/...``, ``../``: a CSV column declared ``Image`` in the
    card), directly or as the archive of a member (``zip://a.png::/etc/x.zip``), fails the
    conversion, so that a dataset cannot copy the hub's own files into its Parquet. Returns whether
    the cells that are not plain local paths are all members of archives in the checkout (what
    ImageFolder gives for a zip of images), which may then be embedded too; a cell naming a URL is
    left as it is, never fetched, and keeps the others of its batch from being read as "remote"."""
    members = True
    for name in _media_columns(table.schema, (table.schema.metadata or {}).get(b"huggingface")):
        for cell in table.column(name).to_pylist():
            members = _check_paths(cell, root) and members
    return members


@functools.lru_cache(maxsize=64)
def _media_columns(schema: Any, metadata: bytes | None) -> tuple[str, ...]:
    """The columns of an Arrow schema that ``embed_table_storage`` embeds files into (its ``datasets``
    features, from ``metadata``: images, audio, video, at any depth); once per schema, not per batch.
    ``metadata`` is part of the cache's key because schemas compare equal without it."""
    from datasets import Features
    from datasets.features.features import require_storage_embed

    if not metadata:
        return ()  # without datasets' metadata no column is an image, audio or video
    return tuple(name for name, feature in Features.from_arrow_schema(schema).items()
                 if require_storage_embed(feature))


def _check_paths(cell: Any, root: str) -> bool:
    """Raises for a path outside ``root``; False when a path is a URL (not an archive in ``root``)."""
    from datasets.utils.file_utils import is_local_path

    if isinstance(cell, list):
        return all([_check_paths(item, root) for item in cell])
    if not isinstance(cell, dict):
        return True
    if not set(cell) <= {"bytes", "path"}:
        return all([_check_paths(value, root) for value in cell.values()])
    path = cell.get("path")
    if cell.get("bytes") is not None or not isinstance(path, str):
        return True
    last = path.split("::")[-1]  # fsspec's chained URLs: the archive is the last one
    if not is_local_path(last):
        return False
    resolved = os.path.normpath(os.path.abspath(last))
    if not resolved.startswith(root + os.sep):
        raise ConversionError(f"A media cell names a file outside the dataset: {path!r}")
    return True


_EMBEDDING = threading.local()  # .root: the checkout whose files this thread's conversion may embed


def _guard_embedding() -> None:
    """``download_and_prepare(file_format="parquet")`` embeds the local files media cells name
    (``datasets.arrow_writer``'s ``embed_table_storage``): while a conversion runs on this thread,
    those paths are checked first (``_check_media_paths``)."""
    import datasets.arrow_writer as arrow_writer

    if getattr(arrow_writer.embed_table_storage, "guarded", False):
        return
    original = arrow_writer.embed_table_storage

    def embed_table_storage(table, *args: Any, **kwargs: Any):
        root = getattr(_EMBEDDING, "root", None)
        if root is not None:  # members of the dataset's own archives are embedded too (a zip of images)
            kwargs["remote_files"] = _check_media_paths(table, root)
        return original(table, *args, **kwargs)

    embed_table_storage.guarded = True  # type: ignore[attr-defined]
    arrow_writer.embed_table_storage = embed_table_storage  # type: ignore[assignment]


def _place(src: Path, out: Path, path: str, split: str) -> dict:
    dest = out / path
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dest)
    return {"split": split, "path": path, "size": dest.stat().st_size, "local": path}
