"""Typed lookups of git objects: ``repo[oid]`` is any object, these say which kind the caller expects
(and refuse another kind instead of failing later on a missing attribute)."""

from __future__ import annotations

import pygit2


def blob_at(repo: pygit2.Repository, oid: pygit2.Oid | str) -> pygit2.Blob:
    obj = repo[oid]
    if not isinstance(obj, pygit2.Blob):
        raise TypeError(f"git object {oid} is a {type(obj).__name__}, not a blob")
    return obj


def tree_at(repo: pygit2.Repository, oid: pygit2.Oid | str) -> pygit2.Tree:
    obj = repo[oid]
    if not isinstance(obj, pygit2.Tree):
        raise TypeError(f"git object {oid} is a {type(obj).__name__}, not a tree")
    return obj


def commit_at(repo: pygit2.Repository, oid: pygit2.Oid | str) -> pygit2.Commit:
    obj = repo[oid]
    if not isinstance(obj, pygit2.Commit):
        raise TypeError(f"git object {oid} is a {type(obj).__name__}, not a commit")
    return obj


def entry_name(entry: pygit2.Object) -> str:
    """The name of a tree entry (pygit2 types ``name`` as optional: objects outside trees have none)."""
    if entry.name is None:
        raise TypeError(f"git object {entry.id} is not a tree entry")
    return entry.name
