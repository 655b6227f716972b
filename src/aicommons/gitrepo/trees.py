"""Build a new tree from a base tree and a set of changes, touching only the changed directories."""

from __future__ import annotations

from dataclasses import dataclass

import pygit2

FILE_MODE = pygit2.GIT_FILEMODE_BLOB
TREE_MODE = pygit2.GIT_FILEMODE_TREE
_FRESH = "\0fresh"  # marks a directory whose old content must not be kept


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
    return repo[entry.id] if entry.filemode == TREE_MODE else None


def apply_changes(repo: pygit2.Repository, base: pygit2.Tree | None, changes: list[TreeChange]) -> str:
    """Return the oid (hex) of the tree = ``base`` + ``changes``. Empty directories vanish."""
    nested: dict = {}
    for change in changes:
        parts = change.path.split("/")
        node = nested
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                # Deleted or replaced earlier in this change set: rebuild it from nothing.
                child = node[part] = {_FRESH: True} if part in node else {}
            node = child
        node[parts[-1]] = change.blob
    oid = _build(repo, base, nested)
    return str(oid) if oid is not None else str(repo.TreeBuilder().write())


def _build(repo: pygit2.Repository, base: pygit2.Tree | None, nested: dict) -> pygit2.Oid | None:
    builder = repo.TreeBuilder(base) if base is not None else repo.TreeBuilder()
    for name, value in nested.items():
        if name == _FRESH:
            continue
        if isinstance(value, dict):
            sub = _build(repo, None if value.get(_FRESH) else _subtree(repo, base, name), value)
            if builder.get(name) is not None:
                builder.remove(name)
            if sub is not None:
                builder.insert(name, sub, TREE_MODE)
        elif value is None:
            if builder.get(name) is not None:
                builder.remove(name)
        else:
            if builder.get(name) is not None:
                builder.remove(name)
            builder.insert(name, pygit2.Oid(hex=value), FILE_MODE)
    if len(builder) == 0:
        return None
    return builder.write()
