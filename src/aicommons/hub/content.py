"""Reading a repo at a revision: revision resolution, tree entries, file contents, history."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

import pygit2

from aicommons.errors import EntryNotFound, RevisionNotFound
from aicommons.gitrepo import blob_at, entry_name, tree_at
from aicommons.gitrepo.loose import CorruptGitObject
from aicommons.gitrepo.store import CommitInfo, commit_info
from aicommons.hub.gitattributes import MAX_POINTER_SIZE, LfsPointer, parse_pointer
from aicommons.hub.reachability import commit_reachable

_HEX_PREFIX = re.compile(r"^[0-9a-f]{7,40}$")
TREE_MODE = pygit2.GIT_FILEMODE_TREE


@dataclass(frozen=True)
class Entry:
    """A file or directory of a tree. For files, ``size`` is the real size (the LFS object's).

    ``damaged``: a listing could not read the entry's own object (``CorruptGitObject``): it is listed
    with its path and object id (both from its intact parent tree), size 0 and no LFS information;
    a damaged folder is listed but not descended into."""

    type: str  # "file" | "directory"
    path: str
    oid: str  # git object id (blob sha1 or tree sha1)
    size: int = 0
    lfs: LfsPointer | None = None
    damaged: bool = False

    @property
    def etag(self) -> str:
        return self.lfs.oid if self.lfs else self.oid


# The Hub's short names of its conversion refs (``hf://datasets/user/ds@~parquet/...``).
REVISION_ALIASES = {"~parquet": "refs/convert/parquet"}


def resolve_revision(repo: pygit2.Repository, revision: str) -> pygit2.Commit:
    """Branch, tag, full ref (``refs/pr/1``), alias (``~parquet``), or full/short commit id → commit."""
    revision = REVISION_ALIASES.get(revision, revision)
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
    # The object's header gives its size without inflating it: only a blob small enough to be an
    # LFS pointer is read (a tree page, a HEAD of a 10 MB file no longer inflates the file).
    _kind, size = repo.odb.read_header(oid)
    pointer = parse_pointer(blob_at(repo, oid).data) if size <= MAX_POINTER_SIZE else None
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


def list_tree(repo: pygit2.Repository, commit: pygit2.Commit, path: str, recursive: bool,
              after: str | None = None, *, keep_damaged: bool = False) -> Iterator[Entry]:
    """Entries under ``path`` (directories too, also when recursive), in git order; with ``after``
    (a path under ``path``), only those that come after it, found without walking what comes before
    (keyset paging: page k costs what page 1 costs, not k times that).

    ``keep_damaged`` (the listings people read: the tree API, the web page): an entry whose object is
    damaged on disk is listed as ``Entry.damaged`` instead of failing the whole listing. Off for the
    hub's own walks (head rows, GC, conversions), which must not take a damaged file for a small one."""
    if path:
        entry = get_entry(repo, commit, path)
        if entry is None or entry.type != "directory":
            raise EntryNotFound(f"Entry not found: no folder {path} at revision {str(commit.id)}")
        tree = tree_at(repo, entry.oid)
    else:
        tree = commit.tree
    if after is None:
        yield from _walk(repo, tree, path, recursive, keep_damaged)
        return
    relative = after[len(path) + 1:] if path else after
    if (path and not after.startswith(path + "/")) or not relative:
        raise ValueError(f"{after!r} is not under {path!r}")
    names = relative.split("/")
    last = get_entry(repo, commit, after) if not keep_damaged else _get_entry_or_damaged(repo, commit, after)
    keys = [_git_key(n, i < len(names) - 1 or (last is not None and last.type == "directory"))
            for i, n in enumerate(names)]
    yield from _walk_after(repo, tree, path, recursive, keys, keep_damaged)


def _get_entry_or_damaged(repo: pygit2.Repository, commit: pygit2.Commit, path: str) -> Entry | None:
    try:
        return get_entry(repo, commit, path)
    except CorruptGitObject:
        return Entry("file", path, "", damaged=True)


def _git_key(name: str, is_dir: bool) -> bytes:
    """How git orders tree entries: by name bytes, a folder's name as if it ended with "/"."""
    return name.encode("utf-8", "surrogateescape") + (b"/" if is_dir else b"")


def _listed(repo: pygit2.Repository, path: str, item: pygit2.Object, keep_damaged: bool) -> Entry:
    if not keep_damaged:
        return _entry(repo, path, item)
    try:
        return _entry(repo, path, item)
    except CorruptGitObject:
        return Entry("file", path, str(item.id), damaged=True)


def _subtree(repo: pygit2.Repository, item: pygit2.Object, keep_damaged: bool) -> pygit2.Tree | None:
    """The folder ``item`` to descend into; None when it is damaged and ``keep_damaged``."""
    try:
        return tree_at(repo, item.id)
    except CorruptGitObject:
        if keep_damaged:
            return None
        raise


def _walk_after(repo: pygit2.Repository, tree: pygit2.Tree, prefix: str, recursive: bool,
                keys: list[bytes], keep_damaged: bool = False) -> Iterator[Entry]:
    """``_walk`` from just after the entry whose path has the git sort ``keys`` (one per level);
    what sorts before it is skipped by name, without reading blobs or descending."""
    for item in tree:
        is_dir = item.filemode == TREE_MODE
        name = entry_name(item)
        key = _git_key(name, is_dir)
        if key < keys[0]:
            continue
        item_path = f"{prefix}/{name}" if prefix else name
        if key == keys[0]:
            # Served already (the cursor, or a folder above it); what lies inside it may not be.
            if recursive and is_dir:
                sub = _subtree(repo, item, keep_damaged)
                if sub is not None and len(keys) > 1:
                    yield from _walk_after(repo, sub, item_path, True, keys[1:], keep_damaged)
                elif sub is not None:
                    yield from _walk(repo, sub, item_path, True, keep_damaged)
            continue
        yield from _walk_one(repo, item, item_path, recursive, keep_damaged)


def _walk(repo: pygit2.Repository, tree: pygit2.Tree, prefix: str, recursive: bool,
          keep_damaged: bool = False) -> Iterator[Entry]:
    for item in tree:
        item_path = f"{prefix}/{entry_name(item)}" if prefix else entry_name(item)
        yield from _walk_one(repo, item, item_path, recursive, keep_damaged)


def _walk_one(repo: pygit2.Repository, item: pygit2.Object, item_path: str, recursive: bool,
              keep_damaged: bool) -> Iterator[Entry]:
    """``item`` and, when ``recursive`` and a folder, what lies in it."""
    if not (recursive and item.filemode == TREE_MODE):
        yield _listed(repo, item_path, item, keep_damaged)
        return
    sub = _subtree(repo, item, keep_damaged)
    yield Entry("directory", item_path, str(item.id), damaged=sub is None)
    if sub is not None:
        yield from _walk(repo, sub, item_path, True, keep_damaged)


def iter_files(repo: pygit2.Repository, commit: pygit2.Commit) -> Iterator[Entry]:
    return (e for e in list_tree(repo, commit, "", True) if e.type == "file")


def file_row(e: Entry) -> list[Any]:
    """A file as stored with a repo's head: [path, size, blob id, lfs sha256 | None, pointer size | None]."""
    return [e.path, e.size, e.oid, e.lfs.oid if e.lfs else None, e.lfs.pointer_size if e.lfs else None]


def git_order_key(path: str) -> tuple[bytes, ...]:
    """Sorts file paths in the order ``iter_files`` yields them (git's: a folder as "name/")."""
    parts = path.encode("utf-8", "surrogateescape").split(b"/")
    return (*(p + b"/" for p in parts[:-1]), parts[-1])


def file_rows(repo: pygit2.Repository, commit: pygit2.Commit,
              base: tuple[str, list[list[Any]]] | None = None) -> list[list[Any]]:
    """``file_row`` of every file of ``commit``. With ``base`` (another commit's id and its rows),
    only what differs between the two trees is read (libgit2 skips identical folders by id), so a
    small commit to a 10,000-file repo costs its own size, not the repo's."""
    if base is not None:
        try:
            old = repo[pygit2.Oid(hex=base[0])]
        except (KeyError, ValueError):
            old = None  # gone (a rewritten history was purged): read everything
        if isinstance(old, pygit2.Commit):
            by_path = {row[0]: row for row in base[1]}
            for delta in repo.diff(old.tree, commit.tree).deltas:
                by_path.pop(delta.old_file.path, None)
                if delta.status != pygit2.enums.DeltaStatus.DELETED:
                    by_path[delta.new_file.path] = file_row(_file_entry(repo, delta.new_file.path, delta.new_file.id))
            return sorted(by_path.values(), key=lambda row: git_order_key(row[0]))
    return [file_row(e) for e in iter_files(repo, commit)]


def read_blob(repo: pygit2.Repository, oid: str) -> bytes:
    return blob_at(repo, oid).data


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


def last_commits_for(repo: pygit2.Repository, commit: pygit2.Commit, paths: list[str],
                     max_walk: int = 2000) -> dict[str, CommitInfo]:
    """``last_commit_for`` of several paths in one walk down the first-parent history: each step
    compares only the paths not yet placed, and the walk stops once every path is placed (or after
    ``max_walk`` commits: the rest get the oldest commit seen). A tree page with ``expand`` costs one
    bounded walk, not one per entry."""
    def oid_at(c: pygit2.Commit, path: str) -> pygit2.Oid | None:
        if not path:
            return c.tree.id
        try:
            return c.tree[path].id
        except KeyError:
            return None

    out: dict[str, CommitInfo] = {}
    todo = {p: oid_at(commit, p) for p in dict.fromkeys(paths)}
    current = commit
    for _ in range(max_walk):
        if not todo or not current.parents:
            break
        parent = current.parents[0]
        changed = [p for p, oid in todo.items() if oid_at(parent, p) != oid]
        if changed:
            info = commit_info(current)
            for p in changed:
                out[p] = info
                del todo[p]
        current = parent
    if todo:
        info = commit_info(current)
        out.update(dict.fromkeys(todo, info))
    return out


def last_commit_for(repo: pygit2.Repository, commit: pygit2.Commit, path: str, max_walk: int = 2000) -> CommitInfo:
    """The newest commit that changed ``path`` (bounded walk; falls back to the oldest one seen)."""
    def oid_at(c: pygit2.Commit) -> pygit2.Oid | None:
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


@dataclass(frozen=True)
class FileChange:
    """A file a commit changed, for the commit page's summary: its sizes before and after (the LFS
    object's for a pointer; None where the file is absent) and how it is stored."""

    path: str
    status: str  # added | deleted | modified | renamed
    old_size: int | None
    new_size: int | None
    kind: str  # text | binary | LFS | large (not read: a git blob past 1 MiB)


_STATUS = {pygit2.enums.DeltaStatus.ADDED: "added", pygit2.enums.DeltaStatus.DELETED: "deleted",
           pygit2.enums.DeltaStatus.RENAMED: "renamed"}


def changed_files(repo: pygit2.Repository, old: pygit2.Commit | None, new: pygit2.Commit,
                  limit: int = 1000) -> list[FileChange]:
    """The files ``new`` changed against ``old`` (None: every file of ``new`` is added), at most
    ``limit``. Sizes come from object headers and LFS pointers; only a git blob of at most 1 MiB is
    read, to tell text from binary."""
    out = []
    if old is None:
        for entry in islice(iter_files(repo, new), limit):
            out.append(FileChange(entry.path, "added", None, entry.size, _kind(repo, entry)))
        return out
    for delta in islice(repo.diff(old, new).deltas, limit):
        status = _STATUS.get(delta.status, "modified")
        before = _file_entry(repo, delta.old_file.path, delta.old_file.id) if status != "added" else None
        after = _file_entry(repo, delta.new_file.path, delta.new_file.id) if status != "deleted" else None
        shown = after or before
        assert shown is not None
        out.append(FileChange(delta.new_file.path, status,
                              before.size if before else None, after.size if after else None, _kind(repo, shown)))
    return out


def _kind(repo: pygit2.Repository, entry: Entry) -> str:
    if entry.lfs is not None:
        return "LFS"
    if entry.size > 1 << 20:
        return "large"
    return "binary" if blob_at(repo, entry.oid).is_binary else "text"
