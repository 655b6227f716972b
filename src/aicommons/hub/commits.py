"""Creating commits from operations (the Hub's commit API), with compare-and-swap on the branch."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import pygit2

from aicommons.db.repos import RepoRow, RepoStore
from aicommons.errors import BadRequest, EntryNotFound, Forbidden, PreconditionFailed, RevisionNotFound
from aicommons.gitrepo import GitStore, RefUpdateConflict, TreeChange, commit_address
from aicommons.gitrepo.trees import PathConflict, apply_changes
from aicommons.hub import content
from aicommons.hub.access import Principal
from aicommons.hub.gitattributes import format_pointer
from aicommons.hub.lfs import OID_RE
from aicommons.hub.names import check_file_path
from aicommons.hub.objects import ObjectReader
from aicommons.hub.policy import Action
from aicommons.hub.reachability import GONE_FROM_HISTORY, reachable_objects
from aicommons.hub.repos import RepoService
from aicommons.times import utcnow

STALE_PARENT = "The branch was updated since you opened this page. Please refresh and try again."
# Several replicas committing to one branch at once can each lose the compare-and-swap a few times
# in a row; retry with a growing random pause so that they spread out (measured: 5 plain retries
# gave clients 412s without parent_commit at 8 writers over 3 replicas).
MAX_CAS_RETRIES = 20


@dataclass(frozen=True)
class AddFile:
    path: str
    content: bytes


@dataclass(frozen=True)
class AddLfsFile:
    path: str
    oid: str
    size: int | None  # None for copies, where the size is looked up


@dataclass(frozen=True)
class DeleteFile:
    path: str


@dataclass(frozen=True)
class DeleteFolder:
    path: str


Operation = AddFile | AddLfsFile | DeleteFile | DeleteFolder


@dataclass(frozen=True)
class CommitRequest:
    summary: str
    description: str = ""
    parent_commit: str | None = None
    operations: tuple[Operation, ...] = ()


@dataclass(frozen=True)
class CommitResult:
    oid: str
    ref: str


def branch_ref(git_repo: pygit2.Repository, revision: str) -> str:
    """The ref a commit to ``revision`` updates: an existing branch or ``refs/pr/N``."""
    if revision.startswith("refs/pr/"):
        ref = revision
    elif revision.startswith("refs/heads/"):
        ref = revision
    else:
        ref = f"refs/heads/{revision}"
    if git_repo.references.get(ref) is None:
        if git_repo.references.get(f"refs/tags/{revision}") is not None:
            raise BadRequest(f"Cannot commit to tag {revision}: commits go to a branch")
        raise RevisionNotFound(f"Invalid rev id: {revision}")
    return ref


class CommitService:
    def __init__(self, repos: RepoService, store: RepoStore, git: GitStore, objects: ObjectReader,
                 max_regular_bytes: int):
        self.repos = repos
        self.store = store
        self.git = git
        self.objects = objects  # where LFS bytes are (hub/objects.py)
        self.max_regular_bytes = max_regular_bytes
        # Called after each commit lands: (repo, ref, oid, summary, author id). Discussions use it
        # to add "commit" events to pull requests; scanners and webhooks can hook in the same way.
        self.listeners: list[Callable[[RepoRow, str, str, str, int], None]] = []
        # The storage quota (hub/storage_usage.py): raises if the commit's inline bytes would pass it.
        self.admit: Callable[[RepoRow, int], None] | None = None
        # Whether an LFS object was in the repo's history once and no ref's history names it now
        # (LfsService.orphaned): a non-writer's commit to a pull request may not bring it back.
        self.orphaned_lfs: Callable[[RepoRow, str], bool] | None = None

    def commit(self, repo: RepoRow, principal: Principal, revision: str, request: CommitRequest,
               open_pull_request: Callable[[str], str] | None = None) -> CommitResult:
        """Commit ``request`` on top of ``revision``.

        With ``open_pull_request``, the commit is built on ``revision`` but lands on a new PR ref
        that the callback creates (and names) only once the commit has been built, so that a
        commit that fails validation leaves no empty pull request behind.
        """
        if not request.summary.strip():
            raise BadRequest("The commit summary must not be empty")
        git_repo = self.git.open(repo.storage_key)
        ref = branch_ref(git_repo, revision)
        lfs_sizes = self._check_operations(repo, request.operations)
        if open_pull_request is not None or ref.startswith("refs/pr/"):
            self._check_no_orphans(repo, git_repo, principal, request.operations)
        if self.admit is not None:  # LFS objects were counted when uploaded; inline files now, before any write
            self.admit(repo, sum(len(op.content) for op in request.operations if isinstance(op, AddFile)))
        author = principal.user
        for _attempt in range(MAX_CAS_RETRIES):
            head = git_repo.references[ref].peel(pygit2.Commit)
            if request.parent_commit and not str(head.id).startswith(request.parent_commit.lower()):
                raise PreconditionFailed(STALE_PARENT)
            changes = self._changes(git_repo, head, request.operations, lfs_sizes)
            try:
                tree = apply_changes(git_repo, head.tree, changes)
            except PathConflict as exc:
                raise BadRequest(f"Conflicting paths in the commit: {exc}") from None
            message = request.summary.strip()
            if request.description.strip():
                message += "\n\n" + request.description.strip()
            oid = self.git.write_commit(git_repo, tree, [str(head.id)], message + "\n", author.name,
                                        commit_address(author.name), when=int(time.time()))
            if open_pull_request is not None:
                ref = open_pull_request(str(head.id))  # the PR ref starts at the commit's parent
                self.git.update_ref(repo.storage_key, ref, oid, str(head.id))
                self._record(repo, ref, oid, request, lfs_sizes, author.id, str(head.id))
                return CommitResult(oid, ref)
            try:
                self.git.update_ref(repo.storage_key, ref, oid, str(head.id))
            except RefUpdateConflict:
                if request.parent_commit:
                    raise PreconditionFailed(STALE_PARENT) from None
                time.sleep(random.uniform(0, min(0.2, 0.005 * 2 ** _attempt)))
                continue  # someone else committed: re-apply our operations on the new head
            self._record(repo, ref, oid, request, lfs_sizes, author.id, str(head.id))
            return CommitResult(oid, ref)
        raise PreconditionFailed(STALE_PARENT)

    def _check_operations(self, repo: RepoRow, operations: tuple[Operation, ...]) -> dict[str, int]:
        """Validate paths, sizes and LFS objects before anything is written. Returns LFS sizes."""
        lfs_sizes: dict[str, int] = {}
        for op in operations:
            if isinstance(op, DeleteFolder):
                path = op.path.rstrip("/")
                if path:
                    check_file_path(path)
                continue
            check_file_path(op.path)
            if isinstance(op, AddFile) and len(op.content) > self.max_regular_bytes:
                raise BadRequest(f"File {op.path} is {len(op.content)} bytes: files over "
                                 f"{self.max_regular_bytes} bytes must be uploaded with LFS")
            if isinstance(op, AddLfsFile):
                if not OID_RE.match(op.oid):
                    raise BadRequest(f"Invalid LFS oid {op.oid!r} for {op.path}: expected a sha256 hex digest")
                size = self.store.repo_lfs_size(repo.id, op.oid)
                if size is None or not self.objects.exists(op.oid):
                    raise BadRequest(f"LFS object {op.oid} for {op.path} was not uploaded to this repository; "
                                     "upload it through the LFS batch API first")
                if op.size is not None and op.size != size:
                    raise BadRequest(f"LFS object {op.oid} has size {size}, not {op.size}")
                lfs_sizes[op.oid] = size
        return lfs_sizes

    def _check_no_orphans(self, repo: RepoRow, git_repo: pygit2.Repository, principal: Principal,
                          operations: tuple[Operation, ...]) -> None:
        """A contributor (no write access) committing to a pull request may not bring back a file
        that a force-push or squash removed from the history, by its LFS object or by its content
        (hub/push.py ``OrphanGuard`` says why and applies the same to pushes); writers may."""
        if not self.git.history_rewritten(repo.storage_key) or self.repos.policy.allows(principal, repo, Action.WRITE):
            return  # a history that only ever grew has dropped nothing
        reachable: frozenset[str] | None = None
        for op in operations:
            if isinstance(op, AddLfsFile) and self.orphaned_lfs is not None and self.orphaned_lfs(repo, op.oid):
                raise Forbidden(f"{op.path} points to LFS object {op.oid}, whose file {GONE_FROM_HISTORY}")
            if isinstance(op, AddFile) and (blob := pygit2.hash(op.content)) in git_repo.odb:
                reachable = reachable if reachable is not None else reachable_objects(git_repo)
                if str(blob) not in reachable:
                    raise Forbidden(f"{op.path} has the content of a file that {GONE_FROM_HISTORY}")

    def _changes(self, git_repo: pygit2.Repository, head: pygit2.Commit, operations: tuple[Operation, ...],
                 lfs_sizes: dict[str, int]) -> list[TreeChange]:
        changes = []
        for op in operations:
            if isinstance(op, AddFile):
                changes.append(TreeChange(op.path, str(git_repo.create_blob(op.content))))
            elif isinstance(op, AddLfsFile):
                pointer = format_pointer(op.oid, lfs_sizes[op.oid])
                changes.append(TreeChange(op.path, str(git_repo.create_blob(pointer))))
            elif isinstance(op, DeleteFile):
                # A folder named by a file deletion is deleted whole, as on the Hub.
                entry = content.get_entry(git_repo, head, op.path)
                if entry is None:
                    raise EntryNotFound(f"A file with this name doesn't exist: {op.path}")
                changes.append(TreeChange(op.path, None))
            elif isinstance(op, DeleteFolder):
                path = op.path.rstrip("/")
                if not path:
                    changes += [TreeChange(e.path, None) for e in content.list_tree(git_repo, head, "", False)]
                    continue
                entry = content.get_entry(git_repo, head, path)
                if entry is None or entry.type != "directory":
                    raise EntryNotFound(f"A folder with this name doesn't exist: {path}")
                changes.append(TreeChange(path, None))
        return changes

    def _record(self, repo: RepoRow, ref: str, oid: str, request: CommitRequest, lfs_sizes: dict[str, int],
                author_id: int, old: str) -> None:
        lfs_files = [(op.oid, op.path, lfs_sizes[op.oid]) for op in request.operations if isinstance(op, AddLfsFile)]
        if lfs_files:
            self.store.mark_lfs_committed(repo.id, lfs_files, ref, utcnow())
        self.repos.after_ref_update(repo, ref, oid, old)
        for listener in self.listeners:
            listener(repo, ref, oid, request.summary.strip(), author_id)
