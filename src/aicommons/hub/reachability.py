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
"""

from __future__ import annotations

import subprocess
import threading
from collections import OrderedDict

import pygit2

_CACHE_SIZE = 8
_cache: OrderedDict[str, tuple[tuple, frozenset[str]]] = OrderedDict()
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
