"""Materialised snapshots of a repo at one commit, for code that needs files on disk (inference,
through the adapter the app factory wires: ``aicommons.app.HubModelSource``).

A snapshot folder ``<data>/snapshots/<storage key>/<commit>/`` holds every file of the commit:
regular files written from git, LFS files hard-linked from the local blob store (or copied from
object storage). It is built in a temp folder and renamed into place, so a reader never sees a
half-built snapshot; commits are immutable, so a built snapshot never changes.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pygit2

from aicommons.db.repos import RepoQuery, RepoRow
from aicommons.errors import EntryNotFound
from aicommons.hub import content
from aicommons.hub.access import Principal
from aicommons.hub.cards import Card
from aicommons.hub.model_safety import check_loadable
from aicommons.hub.policy import Action, may_see
from aicommons.ttl_cache import TTLCache

if TYPE_CHECKING:
    from aicommons.hub.hub import Hub


@dataclass(frozen=True)
class _Resolution:
    repo: RepoRow  # the repo's access flags as read then
    resolved: Any  # what ``make_resolved`` made of the snapshot


def _cache_key(repo_id: str, revision: str | None) -> tuple[str, str]:
    return repo_id.lower(), revision or "main"


def _allowed_without_io(hub: Hub, repo: RepoRow, principal: Principal) -> bool:
    """Whether ``principal`` may run ``repo`` (``Action.INFER``), when the policy can say so
    without a DB read (callers fall back to ``resolve`` for the gated-repo access-request lookup)."""
    return hub.policy.allows_without_io(principal, repo, Action.INFER) is True


def materialize(hub: Hub, repo: RepoRow, commit: pygit2.Commit) -> Path:
    root: Path = hub.settings.data_dir / "snapshots" / repo.storage_key
    final = root / str(commit.id)
    if final.is_dir():
        try:
            os.utime(final)  # used now: the lifecycle job removes the least recently used first
        except FileNotFoundError:  # removed this instant: built again below
            pass
        else:
            return final
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=root, prefix=".building-"))
    try:
        git_repo = hub.git.open(repo.storage_key)
        for entry in content.iter_files(git_repo, commit):
            target = staging / entry.path
            target.parent.mkdir(parents=True, exist_ok=True)
            if entry.lfs is None:
                target.write_bytes(content.read_blob(git_repo, entry.oid))
                continue
            found = hub.objects.find(entry.lfs.oid)
            local = hub.objects.local_path(found) if found is not None else None
            if local is not None:
                os.link(local, target)
            else:  # object storage, or the chunk store (hub/objects.py)
                with hub.objects.open(entry.lfs.oid) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1024 * 1024)
        try:
            os.rename(staging, final)
        except OSError:  # another process built it first
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


class ModelSnapshots:
    """Models of the hub's own repos, resolved to a snapshot folder at one commit, with the hub's
    access rules: what inference's model source is made of. The app factory wraps it in the
    adapter inference asks (``aicommons.app.HubModelSource``); nothing here knows inference.

    ``make_resolved(repo_id=, commit=, local_dir=, card_data=, pipeline_tag=, library_name=, created=)`` and
    ``make_listing(repo_id=, pipeline_tag=, library_name=, created=, owned_by=)`` build what is
    handed out; what ``make_resolved`` returns is what is remembered.

    Resolving a model costs a DB read (the repo and its access flags), opening the git repo,
    resolving the ref, and reading and parsing the card: about 2 ms, more than the whole rest of a
    one-sentence embedding request. So the repo row and the commit a (repo, revision) resolved to
    are remembered for ``cache_seconds`` (``AICOMMONS_INFERENCE_RESOLVE_CACHE_SECONDS``):

    - access is still decided on every request, for the caller at hand, from the remembered repo
      row: the cache never shares one caller's decision with another. A change of the repo's
      visibility or gating, a move or a delete is seen at once on this replica (the repo service
      tells us) and within ``cache_seconds`` on other replicas;
    - a branch or tag that moves is seen at once here (``RepoService.after_ref_update`` tells us)
      and within ``cache_seconds`` on other replicas, which learn of it only through the DB/git;
    - a pinned 40-hex revision never changes, and neither does anything derived from a commit
      (its card, its snapshot folder), which is kept by commit without expiry.
    Gated repos ask the DB for the caller's access request on every request (unless the caller is
    on the owner side), so a rejected request takes effect at once.
    """

    def __init__(self, hub: Hub, cache_seconds: float, make_resolved: Callable[..., Any],
                 make_listing: Callable[..., Any]):
        self.hub = hub
        self.make_resolved = make_resolved
        self.make_listing = make_listing
        self._recent: TTLCache[tuple[str, str], _Resolution] = TTLCache(cache_seconds)
        self._commits: TTLCache[tuple[str, pygit2.Oid], Card] = TTLCache(math.inf, max_entries=256)
        # Commits whose files the scanner vouched for (hub/model_safety.py); verdicts only get better
        # from there (queued -> scanned) within one process, so a positive one is kept.
        self._vouched: TTLCache[tuple[str, pygit2.Oid], bool] = TTLCache(math.inf, max_entries=1024)
        listeners = getattr(hub.repos, "listeners", None)
        if listeners is not None:
            listeners.append(self.forget)

    def resolve_cached(self, repo_id: str, revision: str | None, principal: Principal) -> Any:
        """The resolution of the last ``cache_seconds`` when the caller's access can be decided
        without I/O, else None (then call ``resolve``, in a thread). Never blocks."""
        entry = self._recent.get(_cache_key(repo_id, revision))
        if entry is None or not _allowed_without_io(self.hub, entry.repo, principal):
            return None
        return entry.resolved

    def resolve(self, repo_id: str, revision: str | None, principal: Principal) -> Any:
        key = _cache_key(repo_id, revision)
        entry = self._recent.get(key)
        if entry is not None and may_see(principal, entry.repo):  # the rule find() applies
            self.hub.policy.check(principal, entry.repo, Action.INFER)
            return entry.resolved
        generation = self._recent.generation
        name, rev = key
        repo = self.hub.repos.find("model", name, principal, action=Action.INFER)  # the exact error
        resolved = self._resolve_commit(repo, rev)
        self._recent.put(key, _Resolution(repo, resolved), generation)
        return resolved

    def _resolve_commit(self, repo: RepoRow, revision: str) -> Any:
        git_repo, commit = self.hub.refs.resolve(repo, revision)
        if self._vouched.get((repo.storage_key, commit.id)) is None:  # before anything is copied or loaded
            check_loadable(self.hub.scans, repo.full_id, git_repo, commit)
            self._vouched.put((repo.storage_key, commit.id), True)
        card = self._commits.get((repo.storage_key, commit.id))
        if card is None:
            card = self.hub.repos.describe(repo, git_repo, commit)[0]  # with the task its files imply
            self._commits.put((repo.storage_key, commit.id), card)
        return self.make_resolved(repo_id=repo.full_id, commit=str(commit.id),
                                  local_dir=materialize(self.hub, repo, commit), card_data=card.data or {},
                                  pipeline_tag=card.pipeline_tag, library_name=card.library_name,
                                  created=int(repo.created_at.timestamp()))

    def read_file(self, repo_type: str, repo_id: str, revision: str, path: str, principal: Principal,
                  limit: int) -> bytes:
        """One file of a repo the caller may read (an image a chat message points at by its
        ``/resolve/`` URL), at most ``limit`` bytes. Missing and unreadable answer alike
        (RepoNotFound/EntryNotFound, as the resolve route); larger files: ValueError."""
        repo = self.hub.repos.find(repo_type, repo_id, principal, action=Action.READ_CONTENT)
        git_repo, commit = self.hub.refs.resolve(repo, revision)
        entry = content.get_entry(git_repo, commit, path)
        if entry is None or entry.type != "file":
            raise EntryNotFound(f"Entry not found: {path} does not exist at revision {commit.id}")
        if entry.size > limit:
            raise ValueError(f"{path} is larger than {limit} bytes")
        if entry.lfs is None:
            return content.read_blob(git_repo, entry.oid)
        with self.hub.objects.open(entry.lfs.oid) as src:
            return src.read(limit + 1)[:limit]

    def forget(self, repo: RepoRow) -> None:
        """Drop what is remembered about ``repo`` (its refs, visibility or name changed)."""
        name = repo.full_id.lower()
        self._recent.drop_where(lambda key: isinstance(key, tuple) and key[0] == name)

    def list_models(self, principal: Principal) -> list[Any]:
        """Models with a pipeline tag the caller can see (``GET /v1/models``), newest first."""
        rows, _ = self.hub.repos.search(principal, RepoQuery(type="model", limit=1000))
        return [self.make_listing(repo_id=r.full_id, pipeline_tag=r.pipeline_tag, library_name=r.library_name,
                                  created=int(r.created_at.timestamp()), owned_by=r.namespace,
                                  usable=self.hub.policy.content_allowed(principal, r))
                for r in rows if r.pipeline_tag]
