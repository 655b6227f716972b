"""``aicommons fsck``: prove the data is whole. Every LFS blob re-hashes to its name, every stored
object row has its blob, and every repo is readable: each ref resolves to a commit whose files
can all be read (regular files from git, LFS files from the blob store at the pointer's size).
Files stored only as chunks (Xet uploads) are read back from their xorbs and re-hashed too."""

from __future__ import annotations

import hashlib
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pygit2

from aicommons.db.gc import BlobGcStore
from aicommons.errors import HubError
from aicommons.gitrepo import blob_at, tree_at
from aicommons.hub.gc import LFS_KEY_RE, LFS_PREFIX
from aicommons.hub.gitattributes import MAX_POINTER_SIZE, parse_pointer
from aicommons.hub.progress import SILENT, Progress
from aicommons.storage.base import StorageError

if TYPE_CHECKING:
    from aicommons.hub.hub import Hub
    from aicommons.storage.base import BlobStore

CHUNK = 1024 * 1024


@dataclass
class FsckReport:
    blobs_checked: int = 0
    blob_bytes: int = 0
    repos_checked: int = 0
    files_checked: int = 0
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.blobs_checked} blobs re-hashed ({self.blob_bytes} bytes), {self.repos_checked} repos and "
                f"{self.files_checked} files read, {len(self.errors)} errors")


def _sha256(blobs: BlobStore, key: str) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with blobs.open(key) as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def check_blobs(hub: Hub, report: FsckReport, progress: Progress = SILENT) -> None:
    rows = BlobGcStore(hub.engine).lfs_object_rows()
    listing = [(info, match.group(1)) for info in hub.blobs.list_blobs(LFS_PREFIX)
               if (match := LFS_KEY_RE.match(info.key)) is not None]
    progress.stage("re-hashing blobs", items=len(listing), nbytes=sum(info.size for info, _oid in listing))
    for info, oid in listing:
        sha, size = _sha256(hub.blobs, info.key)
        progress.advance(1, size)
        report.blobs_checked += 1
        report.blob_bytes += size
        if sha != oid:
            report.errors.append(f"blob {info.key}: content hashes to {sha}")
        if oid in rows and rows[oid] != size:
            report.errors.append(f"blob {info.key}: {size} bytes, the database says {rows[oid]}")
    # Chunk-stored files (Xet uploads): read back from their xorbs and re-hashed like a blob.
    whole = {oid for _info, oid in listing}
    for row in hub.xet.files.all_rows():
        if row.oid in whole:
            continue
        digest, size = hashlib.sha256(), 0
        try:
            for piece in hub.xet.reads.chunked_file(row).iter_range(0, row.size):
                digest.update(piece)
                size += len(piece)
        except (HubError, StorageError) as exc:
            report.errors.append(f"xet file {row.file_hash} (object {row.oid}): unreadable: {exc}")
            continue
        report.blobs_checked += 1
        report.blob_bytes += size
        if digest.hexdigest() != row.oid or size != row.size:
            report.errors.append(f"xet file {row.file_hash}: its chunks hash to {digest.hexdigest()} "
                                 f"({size} bytes), not object {row.oid}")
    for oid, size in rows.items():
        if not hub.objects.exists(oid):
            report.errors.append(f"object {oid} ({size} bytes) is recorded but its blob is missing")


CORRUPT_RE = re.compile(r"\b([0-9a-f]{40}): object corrupt or missing")
GIT_ERROR_RE = re.compile(r"^(?:error|fatal): (.*)$", re.M)


def git_errors(path: Path) -> list[str]:
    """What ``git fsck`` says is wrong with a repository's objects (each hash checked), in words.
    Asked first because libgit2 spins forever on a truncated loose object instead of failing."""
    proc = subprocess.run(["git", "--git-dir", str(path), "fsck", "--no-dangling", "--no-progress"],
                          capture_output=True, text=True)
    if proc.returncode == 0:
        return []
    corrupt = sorted(set(CORRUPT_RE.findall(proc.stderr)))
    if corrupt:
        return [f"git object {oid} is corrupt or missing" for oid in corrupt]
    said = GIT_ERROR_RE.findall(proc.stderr)
    return said[:5] or [f"git fsck failed (exit status {proc.returncode})"]


def check_repo(hub: Hub, full_id: str, storage_key: str, report: FsckReport) -> None:
    path = hub.git.path(storage_key)
    if not path.exists():
        report.errors.append(f"repo {full_id}: git repository missing ({path})")
        return
    broken = git_errors(path)
    if broken:
        report.errors.extend(f"repo {full_id}: {error}" for error in broken)
        return
    try:
        git_repo = hub.git.open(storage_key)
    except (pygit2.GitError, KeyError) as exc:
        report.errors.append(f"repo {full_id}: git repository unreadable: {exc}")
        return
    seen: set[pygit2.Oid] = set()
    for name in git_repo.references:
        try:
            commit = git_repo.references[name].peel(pygit2.Commit)
        except (pygit2.GitError, KeyError, ValueError) as exc:
            report.errors.append(f"repo {full_id}: {name} does not resolve to a commit: {exc}")
            continue
        stack = [commit.tree]
        while stack:
            tree = stack.pop()
            for entry in tree:
                if entry.filemode == pygit2.GIT_FILEMODE_TREE:
                    stack.append(tree_at(git_repo, entry.id))
                    continue
                if entry.id in seen:
                    continue
                seen.add(entry.id)
                blob = blob_at(git_repo, entry.id)  # reading it proves the object is there
                report.files_checked += 1
                pointer = parse_pointer(blob.data) if blob.size <= MAX_POINTER_SIZE else None
                if pointer is not None and hub.objects.size(pointer.oid) != pointer.size:
                    report.errors.append(f"repo {full_id}: {name}: {entry.name} points at LFS object "
                                         f"{pointer.oid} ({pointer.size} bytes), which is missing or truncated")
    report.repos_checked += 1


def fsck(hub: Hub, *, blobs: bool = True, progress: Progress = SILENT) -> FsckReport:
    """Read-only: interrupting it leaves nothing to clean up."""
    report = FsckReport()
    try:
        if blobs:
            check_blobs(hub, report, progress)
        repos = list(BlobGcStore(hub.engine).repo_storage_keys())
        progress.stage("reading repositories", items=len(repos))
        for full_id, storage_key in repos:
            check_repo(hub, full_id, storage_key, report)
            progress.advance()
    finally:
        progress.close()
    return report
