"""Reading a repo at a revision: revision resolution, tree entries, file contents, history."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pygit2

from aicommons.errors import EntryNotFound, RevisionNotFound
from aicommons.gitrepo.store import CommitInfo, commit_info
from aicommons.hub.gitattributes import MAX_POINTER_SIZE, LfsPointer, parse_pointer
from aicommons.hub.reachability import commit_reachable

_HEX_PREFIX = re.compile(r"^[0-9a-f]{7,40}$")
TREE_MODE = pygit2.GIT_FILEMODE_TREE


@dataclass(frozen=True)
class Entry:
    """A file or directory of a tree. For files, ``size`` is the real size (the LFS object's)."""

    type: str  # "file" | "directory"
    path: str
    oid: str  # git object id (blob sha1 or tree sha1)
    size: int = 0
    lfs: LfsPointer | None = None

    @property
    def etag(self) -> str:
        return self.lfs.oid if self.lfs else self.oid


def resolve_revision(repo: pygit2.Repository, revision: str) -> pygit2.Commit:
    """Branch, tag, full ref (``refs/pr/1``), or full/short commit id → commit."""
    candidates = [revision] if revision.startswith("refs/") else [f"refs/heads/{revision}", f"refs/tags/{revision}"]
    for name in candidates:
        try:
            ref = repo.references.get(name)
        except (pygit2.InvalidSpecError, ValueError):
            ref = None
        if ref is not None:
            return ref.peel(pygit2.Commit)
    if _HEX_PREFIX.match(revision):
        try:
            obj = repo.get(revision) if len(revision) == 40 else repo.revparse_single(revision)
        except (KeyError, ValueError, pygit2.GitError):
            obj = None
        # An old commit no ref reaches (squashed, force-pushed over, its branch deleted) is gone for
        # readers at once, though its objects wait for the purge (hub/reachability.py).
        if isinstance(obj, pygit2.Commit) and commit_reachable(repo, obj.id):
            return obj
    raise RevisionNotFound(f"Invalid rev id: {revision}")


def _file_entry(repo: pygit2.Repository, path: str, oid: pygit2.Oid) -> Entry:
    blob = repo[oid]
    size = blob.size
    pointer = parse_pointer(blob.data) if size <= MAX_POINTER_SIZE else None
    if pointer is not None:
        return Entry("file", path, str(oid), pointer.size, pointer)
    return Entry("file", path, str(oid), size)


def _entry(repo: pygit2.Repository, path: str, tree_entry: pygit2.Object) -> Entry:
    if tree_entry.filemode == TREE_MODE:
        return Entry("directory", path, str(tree_entry.id))
    return _file_entry(repo, path, tree_entry.id)


def get_entry(repo: pygit2.Repository, commit: pygit2.Commit, path: str) -> Entry | None:
    if path in ("", "/"):
        return Entry("directory", "", str(commit.tree.id))
    try:
        tree_entry = commit.tree[path]
    except KeyError:
        return None
    return _entry(repo, path, tree_entry)


def require_file(repo: pygit2.Repository, commit: pygit2.Commit, path: str) -> Entry:
    entry = get_entry(repo, commit, path)
    if entry is None or entry.type != "file":
        raise EntryNotFound(f"Entry not found: {path} does not exist at revision {str(commit.id)}")
    return entry


def list_tree(repo: pygit2.Repository, commit: pygit2.Commit, path: str, recursive: bool) -> Iterator[Entry]:
    """Entries under ``path`` (directories too, also when recursive), in git order."""
    if path:
        entry = get_entry(repo, commit, path)
        if entry is None or entry.type != "directory":
            raise EntryNotFound(f"Entry not found: no folder {path} at revision {str(commit.id)}")
        tree = repo[pygit2.Oid(hex=entry.oid)]
    else:
        tree = commit.tree
    yield from _walk(repo, tree, path, recursive)


def _walk(repo: pygit2.Repository, tree: pygit2.Tree, prefix: str, recursive: bool) -> Iterator[Entry]:
    for item in tree:
        item_path = f"{prefix}/{item.name}" if prefix else item.name
        yield _entry(repo, item_path, item)
        if recursive and item.filemode == TREE_MODE:
            yield from _walk(repo, repo[item.id], item_path, True)


def iter_files(repo: pygit2.Repository, commit: pygit2.Commit) -> Iterator[Entry]:
    return (e for e in list_tree(repo, commit, "", True) if e.type == "file")


def read_blob(repo: pygit2.Repository, oid: str) -> bytes:
    return repo[pygit2.Oid(hex=oid)].data


def read_text(repo: pygit2.Repository, commit: pygit2.Commit, path: str) -> str | None:
    """Content of a small regular file, or None if it is missing, LFS or not UTF-8."""
    entry = get_entry(repo, commit, path)
    if entry is None or entry.type != "file" or entry.lfs is not None:
        return None
    try:
        return read_blob(repo, entry.oid).decode("utf-8")
    except UnicodeDecodeError:
        return None


def history(repo: pygit2.Repository, commit: pygit2.Commit) -> Iterator[CommitInfo]:
    """Commits reachable from ``commit``, newest first."""
    for c in repo.walk(commit.id, pygit2.enums.SortMode.TOPOLOGICAL | pygit2.enums.SortMode.TIME):
        yield commit_info(c)


def last_commit_for(repo: pygit2.Repository, commit: pygit2.Commit, path: str, max_walk: int = 2000) -> CommitInfo:
    """The newest commit that changed ``path`` (bounded walk; falls back to the oldest one seen)."""
    def oid_at(c: pygit2.Commit):
        if not path:
            return c.tree.id
        try:
            return c.tree[path].id
        except KeyError:
            return None

    current = commit
    target = oid_at(current)
    for _ in range(max_walk):
        if not current.parents:
            break
        parent = current.parents[0]
        if oid_at(parent) != target:
            break
        current = parent
    return commit_info(current)
