"""Upload scanning, wired into the hub: which files a commit brings, scanning them in the
background, and the status clients and the web UI show.

Every time a branch or tag moves (``RepoService.after_ref_update``: commits, pushes, merges,
super-squash), a background job scans the files of the new commit that were never scanned
(``aicommons.scanning``: pickle imports default-deny, archives, safetensors and GGUF headers, chat
templates, leaked secrets). Results are stored per file content and name, so a file copied into
a hundred repos is scanned once. Scanning flags, it does not block: as on the Hub, a commit lands
and its files show their status (``securityFileStatus`` in tree/paths-info with ``expand``, and
``securityRepoStatus`` in repo info), and the web UI warns next to unsafe files. A file not scanned
yet reads ``queued``; a scanner error reads ``error`` and counts as an issue (default-deny).
"""

from __future__ import annotations

import logging
import posixpath
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pygit2

from aicommons.db.repos import RepoStore
from aicommons.db.scans import ScanStore
from aicommons.gitrepo import GitStore, commit_at
from aicommons.hub import content
from aicommons.hub.content import Entry
from aicommons.scanning.results import FileScan
from aicommons.scanning.worker import ScanWorkerPool
from aicommons.times import utcnow

if TYPE_CHECKING:
    from aicommons.hub.objects import ObjectReader

log = logging.getLogger("aicommons.scans")
# Part of every stored key: raising it when the rules change makes every file scan again.
RULES_VERSION = 2
ISSUE_STATUSES = ("unsafe", "suspicious", "error")


def scan_key(entry: Entry) -> str:
    return row_scan_key(content.file_row(entry))


def row_scan_key(row: list[Any]) -> str:
    """A file's scan key from its file row ``[path, size, blob id, lfs sha256 | None, ...]``."""
    content_id = f"lfs:{row[3]}" if row[3] is not None else f"git:{row[2]}"
    return f"v{RULES_VERSION}:{content_id}:{posixpath.basename(str(row[0]))}"


class ScanService:
    def __init__(self, store: ScanStore, repos: RepoStore, git: GitStore, objects: ObjectReader, pool: ScanWorkerPool,
                 tmp_dir: Path):
        self.store = store
        self.repos = repos
        self.git = git
        self.objects = objects  # hub/objects.py
        self.pool = pool  # every scan runs in a limited worker process, never in the server
        self.tmp_dir = tmp_dir

    # --- scanning (background jobs) -------------------------------------------------------------

    def scan_commit(self, repo_id: int, commit_id: str) -> int:
        """Scan the files of a commit that were never scanned; returns how many were scanned."""
        repo = self.repos.get_by_id(repo_id)
        if repo is None:
            return 0  # deleted since the job was queued
        git_repo = self.git.open(repo.storage_key)
        try:
            commit = commit_at(git_repo, commit_id)
        except (KeyError, ValueError, TypeError):
            return 0  # rewritten away (lfs-files delete, super-squash) before the job ran
        entries = {scan_key(e): e for e in content.iter_files(git_repo, commit)}
        done = self.store.get_many(list(entries))
        scanned = 0
        for key, entry in entries.items():
            if key in done:
                continue
            if entry.lfs is not None and not self.objects.exists(entry.lfs.oid):
                continue  # not here yet (a pulled-through file nobody downloaded): scanned once cached
            size = entry.lfs.size if entry.lfs is not None else entry.size
            result = self._scan(git_repo, entry, size)
            self.store.put(key, result.status, result.to_json(), utcnow())
            scanned += 1
            if result.status in ISSUE_STATUSES:
                log.warning("scan: %s in %s is %s", entry.path, repo.full_id, result.status)
        return scanned

    def _scan(self, git_repo: pygit2.Repository, entry: Entry, size: int) -> FileScan:
        """One file, scanned by a worker that reads it itself: the server never holds its bytes."""
        if entry.lfs is None:
            return self.pool.scan_git_blob(entry.path, git_repo.path, entry.oid, size)
        found = self.objects.find(entry.lfs.oid)
        local = self.objects.local_path(found) if found is not None else None
        if local is not None:
            return self.pool.scan_path(entry.path, str(local), size)
        # Object storage or the chunk store: copied to a private temporary file first, in chunks.
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self.tmp_dir, prefix="scan-") as copy:
            with self.objects.open(entry.lfs.oid) as source:
                shutil.copyfileobj(source, copy, 1 << 20)
            copy.flush()
            return self.pool.scan_path(entry.path, copy.name, size)

    # --- status (API and web UI) ----------------------------------------------------------------

    def file_statuses(self, entries: list[Entry]) -> dict[str, dict[str, Any]]:
        """path -> ``securityFileStatus`` for each file entry (directories are left out)."""
        files = [e for e in entries if e.type == "file"]
        stored = self.store.get_many([scan_key(e) for e in files])
        return {e.path: security_file_status(stored.get(scan_key(e))) for e in files}

    def repo_status(self, git_repo: pygit2.Repository, commit: pygit2.Commit) -> dict[str, Any]:
        """``securityRepoStatus``: whether every file of the commit is scanned, and which have issues."""
        return self.status_of_rows([content.file_row(e) for e in content.iter_files(git_repo, commit)])

    def status_of_rows(self, rows: list[list[Any]]) -> dict[str, Any]:
        """``repo_status`` from a commit's file rows (``content.file_row``; a repo's stored head has
        them, so the repo page reads no tree for it)."""
        keys = {str(row[0]): row_scan_key(row) for row in rows}
        stored = self.store.get_many(list(keys.values()))
        issues = [{"path": path, "level": stored[key]["status"]} for path, key in keys.items()
                  if key in stored and stored[key]["status"] in ISSUE_STATUSES]
        return {"scansDone": all(key in stored for key in keys.values()), "filesWithIssues": issues}


def security_file_status(result: dict[str, Any] | None) -> dict[str, Any]:
    """The Hub's shape (huggingface_hub reads ``status``, ``avScan`` and ``pickleImportScan``), plus
    our own ``findings``. No antivirus runs here, hence ``avScan`` null."""
    if result is None:
        return {"status": "queued", "avScan": None, "pickleImportScan": None, "findings": []}
    findings = result.get("findings", [])
    imports = [f.get("detail", {}) | {"safety": f["severity"]} for f in findings if f.get("kind") == "pickle-import"]
    pickle_scan = None
    if imports or result.get("scanner") == "pickle":
        level = "dangerous" if result["status"] == "unsafe" else (
            "suspicious" if result["status"] in ("suspicious", "error") else "innocuous")
        pickle_scan = {"highestSafetyLevel": level, "imports": imports}
    return {"status": result["status"], "avScan": None, "pickleImportScan": pickle_scan, "findings": findings}

