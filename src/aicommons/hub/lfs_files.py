"""Listing a repo's LFS files, and deleting them for good (optionally rewriting history).

Permanent deletion removes the repo's reference to each object; with ``rewrite_history`` every
commit of every ref is rewritten without the pointer files, so no revision names the object any
more. The bytes themselves are reclaimed by garbage collection once no repo references them.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import Any

import pygit2

from aicommons.db.repos import RepoRow, RepoStore
from aicommons.errors import Conflict
from aicommons.gitrepo import GitStore, RefUpdateConflict, entry_name, tree_at
from aicommons.hub.gitattributes import format_pointer
from aicommons.hub.repos import RepoService
from aicommons.times import utcnow

TREE = pygit2.GIT_FILEMODE_TREE


class LfsFileService:
    def __init__(self, store: RepoStore, repos: RepoService, git: GitStore):
        self.store = store
        self.repos = repos
        self.git = git
        # Told after LFS files were permanently deleted (the inference snapshots go: hub/lifecycle.py).
        self.deleted_listeners: builtins.list[Callable[[RepoRow], None]] = []

    def list(self, repo: RepoRow) -> list[dict[str, Any]]:
        out = []
        for row in self.store.list_lfs(repo.id):
            pointer_oid = pygit2.hash(format_pointer(row["oid"], row["size"]))
            out.append({"fileOid": row["oid"], "oid": str(pointer_oid), "filename": row["filename"],
                        "size": row["size"], "ref": row["ref"], "pushedAt": row["pushed_at"]})
        return out

    def duplicate(self, source: RepoRow, destination: RepoRow, oids: builtins.list[str]) -> builtins.list[str]:
        """Let ``destination`` reference LFS objects of ``source`` (the bytes are stored once); the
        oids among ``oids`` that are not objects of ``source``. The objects new to ``destination``
        count against its owner's storage quota (refused whole past it, like an upload). The caller
        found ``source`` with ``Action.READ_CONTENT`` and ``destination`` with ``Action.WRITE``."""
        missing, found = [], []
        for oid in dict.fromkeys(oids):
            size = self.store.repo_lfs_size(source.id, oid)
            if size is None:
                missing.append(oid)
            else:
                found.append((oid, size))
        if self.repos.admit is not None:  # new to the destination: they count as uploaded to its owner
            self.repos.admit(destination.owner_id, sum(size for oid, size in found
                                                       if self.store.repo_lfs_size(destination.id, oid) is None))
        for oid, size in found:
            self.store.add_lfs_object(destination.id, oid, size, utcnow())
        return missing

    def delete(self, repo: RepoRow, oids: builtins.list[str], rewrite_history: bool) -> None:
        known = {row["oid"]: row["size"] for row in self.store.list_lfs(repo.id)}
        targets = [oid for oid in oids if oid in known]
        if rewrite_history and targets:
            git_repo = self.git.open(repo.storage_key)
            pointers = {pygit2.hash(format_pointer(oid, known[oid])) for oid in targets}
            self._rewrite(repo, git_repo, pointers)
        self.store.forget_lfs(repo.id, targets)
        if targets:
            for listener in self.deleted_listeners:
                listener(repo)

    def _rewrite(self, repo: RepoRow, git_repo: pygit2.Repository, pointers: set[pygit2.Oid]) -> None:
        trees: dict[pygit2.Oid, pygit2.Oid | None] = {}
        commits: dict[pygit2.Oid, pygit2.Oid] = {}

        def clean(tree: pygit2.Tree) -> pygit2.Oid | None:
            if tree.id not in trees:
                builder = git_repo.TreeBuilder()
                for entry in tree:
                    if entry.filemode == TREE:
                        sub = clean(tree_at(git_repo, entry.id))
                        if sub is not None:
                            builder.insert(entry_name(entry), sub, TREE)
                    elif entry.id not in pointers:
                        builder.insert(entry_name(entry), entry.id, entry.filemode)
                trees[tree.id] = builder.write() if len(builder) else None
            return trees[tree.id]

        def rewrite(tip: pygit2.Commit) -> pygit2.Oid:
            # Oldest first, so that every parent is rewritten before its children.
            order = pygit2.enums.SortMode.TOPOLOGICAL | pygit2.enums.SortMode.REVERSE
            for commit in git_repo.walk(tip.id, order):
                if commit.id in commits:
                    continue
                parents = [commits[p] for p in commit.parent_ids]
                tree = clean(commit.tree) or git_repo.TreeBuilder().write()
                if tree == commit.tree_id and parents == list(commit.parent_ids):
                    commits[commit.id] = commit.id
                else:
                    commits[commit.id] = git_repo.create_commit(None, commit.author, commit.committer,
                                                                commit.message, tree, parents)
            return commits[tip.id]

        updates = []
        for name in list(git_repo.references):
            ref = git_repo.references[name]
            commit = ref.peel(pygit2.Commit)
            new = rewrite(commit)
            if new != commit.id:
                updates.append((name, str(new), str(ref.target)))
        for name, new_sha, old_sha in updates:
            try:
                self.git.update_ref(repo.storage_key, name, new_sha, old_sha)
            except RefUpdateConflict:
                raise Conflict(f"{name} was updated during the history rewrite; try again") from None
            self.repos.after_ref_update(repo, name, new_sha, old_sha)
