"""Build a new tree from a base tree and a set of changes, touching only the changed directories."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pygit2

FILE_MODE = pygit2.GIT_FILEMODE_BLOB
TREE_MODE = pygit2.GIT_FILEMODE_TREE
_FRESH = "\0fresh"  # marks a directory whose old content must not be kept


class PathConflict(ValueError):
    """A change set that would make one path both a file and a folder (``a`` and ``a/b``, or a
    file over an existing folder, or a folder through an existing file) without deleting first."""


@dataclass(frozen=True)
class _Blob:
    oid: str
    replaces: bool  # this change set deleted the path first: a folder there may be replaced


@dataclass(frozen=True)
class TreeChange:
    """Set ``path`` to ``blob`` (a blob oid hex), or delete it when ``blob`` is None.

    Deleting a path that names a directory removes the whole directory.
    """

    path: str
    blob: str | None


def _subtree(repo: pygit2.Repository, tree: pygit2.Tree | None, name: str) -> pygit2.Tree | None:
    if tree is None or name not in tree:
        return None
    entry = tree[name]
    if entry.filemode != TREE_MODE:
        return None
    subtree = repo[entry.id]
    return subtree if isinstance(subtree, pygit2.Tree) else None


def apply_changes(repo: pygit2.Repository, base: pygit2.Tree | None, changes: list[TreeChange]) -> str:
    """Return the oid (hex) of the tree = ``base`` + ``changes``. Empty directories vanish.

    Raises PathConflict rather than let one path silently replace another of the other kind:
    adding ``a`` and ``a/b`` together, a file where ``base`` has a folder, or a file under what
    ``base`` has as a file. Deleting the path earlier in the same change set allows the swap.
    """
    nested: dict[str, Any] = {}
    for change in changes:
        parts = change.path.split("/")
        node = nested
        for depth, part in enumerate(parts[:-1], start=1):
            child = node.get(part)
            if isinstance(child, _Blob):
                raise PathConflict(f"{'/'.join(parts[:depth])} is a file in this commit, so it cannot also "
                                   f"be a folder holding {change.path}")
            if child is None:
                # Deleted earlier in this change set (None) or not touched yet (absent).
                child = node[part] = {_FRESH: True} if part in node else {}
            node = child
        leaf, previous = parts[-1], node.get(parts[-1])
        if change.blob is None:
            node[leaf] = None
            continue
        if isinstance(previous, dict):
            raise PathConflict(f"{change.path} is a folder in this commit, so it cannot also be a file")
        replaces = leaf in node and (previous is None or previous.replaces)
        node[leaf] = _Blob(change.blob, replaces)
    oid = _build(repo, base, nested, "")
    return str(oid) if oid is not None else str(repo.TreeBuilder().write())


def _build(repo: pygit2.Repository, base: pygit2.Tree | None, nested: dict[str, Any], prefix: str) -> pygit2.Oid | None:
    builder = repo.TreeBuilder(base) if base is not None else repo.TreeBuilder()
    for name, value in nested.items():
        if name == _FRESH:
            continue
        existing = builder.get(name)
        if isinstance(value, dict):
            if existing is not None and existing.filemode != TREE_MODE and not value.get(_FRESH):
                raise PathConflict(f"{prefix}{name} is a file, so it cannot also be a folder: delete it in the "
                                   "same commit to replace it")
            sub = _build(repo, None if value.get(_FRESH) else _subtree(repo, base, name), value, f"{prefix}{name}/")
            if existing is not None:
                builder.remove(name)
            if sub is not None:
                builder.insert(name, sub, TREE_MODE)
        elif value is None:
            if existing is not None:
                builder.remove(name)
        else:
            if existing is not None:
                if existing.filemode == TREE_MODE and not value.replaces:
                    raise PathConflict(f"{prefix}{name} is a folder, so it cannot also be a file: delete it in the "
                                       "same commit to replace it")
                builder.remove(name)
            builder.insert(name, pygit2.Oid(hex=value.oid), FILE_MODE)
    if len(builder) == 0:
        return None
    return builder.write()
