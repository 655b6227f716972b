"""What a repo serves by object id: only what some ref reaches.

After ``super_squash_history``, a force-push or a branch deletion, the old commits (and the files
only they held: a leaked secret, say) stay in the git object store until they are purged
(``hub/gc.py``). Until then nothing may serve them: ``/resolve/<sha>/...`` and the other
by-revision reads resolve a commit id only if a ref reaches it, and a git fetch may only *want*
reachable objects (protocol v2's upload-pack serves any object it has, whatever
``uploadpack.allow*SHA1InWant`` say).

Commits are checked with libgit2's graph walk (a revision that is a ref's tip, the usual case,
costs one comparison). Trees and blobs (a partial clone fetching what it left out) are looked up in
the set of every object the refs reach, computed by ``git rev-list --objects --all`` once per state
of the refs and kept for a few repos.

LFS objects live outside git, so the same question is asked of them by ``LfsHistory``: an object
the repo holds a record of (``repo_lfs_objects``) is served only while some ref's history points at
it. A repo whose refs never lost a commit (no ``GitStore.mark_history_rewritten``) cannot have lost
a pointer either, and pays nothing; for the others the set of pointers the refs reach is kept per
repo and brought up to date by looking only at the commits added since, unless refs went backwards
again.
"""

from __future__ import annotations

import subprocess
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import pygit2

from aicommons.gitrepo import GitStore, blob_at, tree_at
from aicommons.hub.gitattributes import MAX_POINTER_SIZE, LfsPointer, parse_pointer

# Why a commit by someone without write access may not bring back what a rewrite removed
# (hub/push.py ``OrphanGuard``, hub/commits.py): "<the commit / the file / the LFS object> " + this.
GONE_FROM_HISTORY = ("is no longer in the history of this repository (a force-push, a squash or a deleted branch "
                     "removed it); without write access a commit may not bring it back")
_CACHE_SIZE = 8
_cache: OrderedDict[str, tuple[tuple[Any, ...], frozenset[str]]] = OrderedDict()
_lock = threading.Lock()


def _refs(repo: pygit2.Repository) -> list[tuple[str, str]]:
    found = []
    for name in repo.references:
        try:
            ref = repo.references[name].resolve()
        except (pygit2.GitError, KeyError, ValueError):
            continue
        found.append((name, str(ref.target)))
    return sorted(found)


def _tip_commits(repo: pygit2.Repository, refs: list[tuple[str, str]]) -> list[pygit2.Oid]:
    tips = []
    for _name, target in refs:
        try:
            tips.append(repo[target].peel(pygit2.Commit).id)
        except (pygit2.GitError, KeyError, ValueError, pygit2.InvalidSpecError):
            continue
    return tips


class Reachability:
    """What the refs of ``repo`` reach, as they are now (build one per request)."""

    def __init__(self, repo: pygit2.Repository):
        self.repo = repo
        self.refs = _refs(repo)
        self.targets = {target for _, target in self.refs}
        self.tips = _tip_commits(repo, self.refs)
        self._tip_set = set(self.tips)

    def commit(self, oid: pygit2.Oid) -> bool:
        if oid in self._tip_set:
            return True
        return any(self.repo.descendant_of(tip, oid) for tip in self.tips)

    def object(self, hex_oid: str) -> bool:
        """Whether a ref reaches the object ``hex_oid`` (a missing object counts as reachable: git
        answers "not our ref" for it itself)."""
        if hex_oid in self.targets:
            return True
        try:
            obj = self.repo.get(hex_oid)
        except (ValueError, pygit2.GitError):
            return True
        if obj is None:
            return True
        if isinstance(obj, pygit2.Commit):
            return self.commit(obj.id)
        if isinstance(obj, pygit2.Tag):
            return False  # an annotated tag is reachable only as a ref's target (checked above)
        return hex_oid in _reachable_objects(self.repo, self.refs)


def commit_reachable(repo: pygit2.Repository, oid: pygit2.Oid) -> bool:
    return Reachability(repo).commit(oid)


def reachable_objects(repo: pygit2.Repository) -> frozenset[str]:
    """Every object (commits, trees, blobs) some ref of ``repo`` reaches now, as hex ids."""
    return _reachable_objects(repo, _refs(repo))


def _reachable_objects(repo: pygit2.Repository, refs: list[tuple[str, str]]) -> frozenset[str]:
    key = repo.path
    state = tuple(refs)
    with _lock:
        cached = _cache.get(key)
        if cached is not None and cached[0] == state:
            _cache.move_to_end(key)
            return cached[1]
    if not refs:
        objects: frozenset[str] = frozenset()
    else:
        out = subprocess.run(["git", "--git-dir", repo.path, "rev-list", "--objects", "--all"],
                             capture_output=True, check=True).stdout
        objects = frozenset(line[:40].decode() for line in out.splitlines() if line)
    with _lock:
        _cache[key] = (state, objects)
        _cache.move_to_end(key)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return objects


# --- LFS pointers ---------------------------------------------------------------------------------


def _pointer_oid(git_repo: pygit2.Repository, blob_id: pygit2.Oid) -> str | None:
    blob = blob_at(git_repo, blob_id)
    if blob.size <= MAX_POINTER_SIZE and (pointer := parse_pointer(blob.data)) is not None:
        return pointer.oid
    return None


def pointers_in_history(git_repo: pygit2.Repository) -> set[str]:
    """Oids of the LFS pointers in every commit reachable from any ref of this repo."""
    return _pointers_of_commits(git_repo, _tip_commits(git_repo, _refs(git_repo)), hide=[])


def pointers_in_commit_history(git_repo: pygit2.Repository, commit_id: str) -> set[str]:
    """Oids of the LFS pointers in ``commit_id`` and every commit it reaches (one branch's history)."""
    return _pointers_of_commits(git_repo, [pygit2.Oid(hex=commit_id)], hide=[])


def _pointers_of_commits(git_repo: pygit2.Repository, tips: list[pygit2.Oid], hide: list[pygit2.Oid]) -> set[str]:
    """Pointers in the trees of the commits ``tips`` reach and ``hide`` does not. With ``hide``, each
    commit's tree is compared with its first parent's, whose pointers are known already: a pointer
    a merge brings in is either new in it or in a commit of the other side, which is walked too."""
    oids: set[str] = set()
    if not tips:
        return oids
    walker = git_repo.walk(tips[0], pygit2.enums.SortMode.NONE)
    for tip in tips[1:]:
        walker.push(tip)
    for old in hide:
        walker.hide(old)
    seen_trees: set[pygit2.Oid] = set()
    seen_blobs: set[pygit2.Oid] = set()

    def add_blob(blob_id: pygit2.Oid) -> None:
        if blob_id not in seen_blobs:
            seen_blobs.add(blob_id)
            if (oid := _pointer_oid(git_repo, blob_id)) is not None:
                oids.add(oid)

    for commit in walker:
        if hide and commit.parents:
            for delta in commit.parents[0].tree.diff_to_tree(commit.tree).deltas:
                if delta.new_file.mode in (pygit2.GIT_FILEMODE_BLOB, pygit2.GIT_FILEMODE_BLOB_EXECUTABLE):
                    add_blob(delta.new_file.id)
            continue
        stack = [commit.tree]
        while stack:
            tree = stack.pop()
            if tree.id in seen_trees:
                continue
            seen_trees.add(tree.id)
            for entry in tree:
                if entry.filemode == pygit2.GIT_FILEMODE_TREE:
                    stack.append(tree_at(git_repo, entry.id))
                else:
                    add_blob(entry.id)
    return oids


class LfsHistory:
    """Whether a repo's history (what its refs reach now) points at an LFS object."""

    def __init__(self, git: GitStore, cached_repos: int = 64):
        self.git = git
        self.cached_repos = cached_repos
        # storage key -> (state of the refs, their tip commits, the pointers they reach)
        self._cache: OrderedDict[str, tuple[tuple[Any, ...], list[pygit2.Oid], frozenset[str]]] = OrderedDict()
        self._lock = threading.Lock()

    def references(self, storage_key: str, oid: str) -> bool:
        if not self.git.history_rewritten(storage_key):
            return True  # history only ever grew: every pointer it had is still reached
        return oid in self.pointers(storage_key)

    def pointers(self, storage_key: str) -> frozenset[str]:
        git_repo = self.git.open(storage_key)
        refs = _refs(git_repo)
        state = tuple(refs)
        with self._lock:
            cached = self._cache.get(storage_key)
            if cached is not None and cached[0] == state:
                self._cache.move_to_end(storage_key)
                return cached[2]
        tips = _tip_commits(git_repo, refs)
        if cached is not None and _only_grew(git_repo, cached[1], tips):
            found = cached[2] | _pointers_of_commits(git_repo, tips, hide=cached[1])
        else:
            found = frozenset(_pointers_of_commits(git_repo, tips, hide=[]))
        with self._lock:
            self._cache[storage_key] = (state, tips, frozenset(found))
            self._cache.move_to_end(storage_key)
            while len(self._cache) > self.cached_repos:
                self._cache.popitem(last=False)
        return frozenset(found)


def _only_grew(git_repo: pygit2.Repository, old_tips: list[pygit2.Oid], new_tips: list[pygit2.Oid]) -> bool:
    """Whether every commit the old tips reached is still reached by the new ones."""
    new = set(new_tips)
    return all(tip in new or any(git_repo.descendant_of(n, tip) for n in new_tips) for tip in old_tips)


def pointers_in_tree(git_repo: pygit2.Repository, tree: pygit2.Tree,
                     prefix: str = "") -> Iterator[tuple[str, LfsPointer]]:
    """(path, LFS pointer) for every pointer file under ``tree`` (mirror sync, bundles)."""
    for entry in tree:
        path = f"{prefix}{entry.name}"
        if entry.filemode == pygit2.GIT_FILEMODE_TREE:
            yield from pointers_in_tree(git_repo, tree_at(git_repo, entry.id), path + "/")
        elif entry.filemode in (pygit2.GIT_FILEMODE_BLOB, pygit2.GIT_FILEMODE_BLOB_EXECUTABLE):
            blob = blob_at(git_repo, entry.id)
            if blob.size <= MAX_POINTER_SIZE and (pointer := parse_pointer(blob.data)) is not None:
                yield path, pointer


def ref_targets(git_repo: pygit2.Repository) -> dict[str, str]:
    """Every ref's resolved target, by name."""
    return dict(_refs(git_repo))
