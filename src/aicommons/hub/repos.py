"""Repo lifecycle and access: create, find (with access rules), list, settings, move, delete.

The doors (api, web, cli) reach repo rows only through this service: ``RepoRow`` and ``RepoQuery``
are imported from here, and every listing is filtered by the caller's own visibility.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import pygit2

from aicommons.db.accounts import AccountStore, AlreadyExists
from aicommons.db.repos import (
    Facets,
    RepoHead,
    RepoQuery,
    RepoRow,
    RepoStore,
    dataset_tags,
    sort_attribute,
    sort_is_date,
)
from aicommons.errors import BadRequest, Conflict, Forbidden, HubError, NotFound, RepoNotFound
from aicommons.gitrepo import GitStore, TreeChange, commit_address, commit_at
from aicommons.gitrepo.trees import apply_changes
from aicommons.hub import content, file_tags
from aicommons.hub.access import Principal
from aicommons.hub.cards import MAX_TAG, Card, base_models, card_from_readme
from aicommons.hub.events import UNKNOWN, Events
from aicommons.hub.facets import FacetCounts
from aicommons.hub.gitattributes import DEFAULT_GITATTRIBUTES
from aicommons.hub.names import check_repo_name, check_repo_type
from aicommons.hub.policy import Action, Policy, may_see, not_found
from aicommons.hub.reachability import pointers_in_commit_history, pointers_in_history
from aicommons.times import utcnow

if TYPE_CHECKING:
    from aicommons.hub.downloads import DownloadCounter
    from aicommons.hub.upstream import UpstreamService

__all__ = ["DEFAULT_BRANCH", "RepoHead", "RepoMoved", "RepoQuery", "RepoRow", "RepoService", "sort_attribute",
           "sort_is_date"]  # the doors' repo types

DEFAULT_BRANCH = "main"
DESCRIBED_FILES = 200_000  # ~40 MB of remembered file rows


class WeightedLru:
    """A thread-safe LRU map bounded by the total weight of its values."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[int, Any]] = OrderedDict()  # key -> (weight, value)
        self._weight = 0

    def get(self, key: Hashable) -> Any:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def put(self, key: Hashable, value: Any, weight: int = 1) -> None:
        if weight > self.capacity:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._weight -= old[0]
            self._entries[key] = (weight, value)
            self._weight += weight
            while self._weight > self.capacity:
                _key, (w, _value) = self._entries.popitem(last=False)
                self._weight -= w
GATED_VALUES = ("auto", "manual")


SPACE_SDKS = ("gradio", "streamlit", "docker", "static")


def space_readme(name: str, sdk: str | None) -> bytes:
    """The card a new Space starts with, as on the Hub: its title and SDK in the front matter."""
    if sdk is not None and sdk not in SPACE_SDKS:
        raise BadRequest(f"Invalid Space SDK {sdk!r}: must be one of {', '.join(SPACE_SDKS)}")
    return (f"---\ntitle: {name}\nemoji: 🚀\ncolorFrom: blue\ncolorTo: green\nsdk: {sdk or 'static'}\n"
            f"pinned: false\n---\n\n# {name}\n").encode()


class RepoMoved(HubError):
    """The repo was renamed; the old id redirects to ``new_id``."""

    status = 307
    code = None

    def __init__(self, old_id: str, new_id: str):
        super().__init__(f"Repository moved to {new_id}")
        self.old_id, self.new_id = old_id, new_id


# A narrowed listing matching more public repos than this shows "more than NARROW_CAP" and the
# site-wide facet values instead of counting among its matches (a grouped count over tens of
# thousands of rows is the 0.5-3 s query of docs/benchmarks.md).
NARROW_CAP = 5000


class RepoService:
    def __init__(self, repos: RepoStore, accounts: AccountStore, git: GitStore, policy: Policy,
                 events: Events | None = None):
        self.store = repos
        self.events = events or Events()  # hub/events.py: what webhooks hear
        self.policy = policy
        self.accounts = accounts
        self.git = git
        # Called with the repo after its refs, settings or name changed, or it was deleted, so that
        # in-process caches (inference's model resolutions) drop what they remember of it.
        self.listeners: list[Callable[[RepoRow], None]] = []
        # Called with (repo, ref, new commit or None) after any branch or tag moved, however it
        # moved (commit, push, merge, super-squash, history rewrite): upload scanning queues there.
        self.ref_listeners: list[Callable[[RepoRow, str, str | None], None]] = []
        self.upstream: UpstreamService | None = None  # when AICOMMONS_UPSTREAM_URL is set (wired by the Hub)
        self.downloads: DownloadCounter | None = None  # a DownloadCounter (hub/downloads.py), wired by the Hub
        # Storage quotas (owner id, incoming bytes): raises when the owner may not take that much more
        # (StorageService.check_upload, wired by the Hub). A duplicate's large files count as uploaded.
        self.admit: Callable[[int, int], None] | None = None
        # Commit contents (card, files) by (repo folder, commit id), for ``model_info``: at most
        # DESCRIBED_FILES file rows in all, the least recently used dropped first.
        self.described = WeightedLru(DESCRIBED_FILES)
        # Listing pages' facet counts, by (query, who sees what), counted off the page's path (hub/facets.py).
        self.facet_counts = FacetCounts(lambda key: self._count_facets(cast(RepoQuery, key)))

    def _changed(self, repo: RepoRow) -> None:
        for listener in self.listeners:
            listener(repo)

    # --- finding a repo, with the access rules ---------------------------------------------------

    def find(self, repo_type: str, full_id: str, principal: Principal, write: bool = False,
             action: Action | None = None) -> RepoRow:
        """The repo, if ``principal`` may do ``action`` on it (default: read its metadata, or write
        with ``write=True``); else the policy's exact error (``hub/policy.py``)."""
        action = action or (Action.WRITE if write else Action.READ_METADATA)
        repo = self.store.get(repo_type, full_id)
        if repo is None:
            moved = self.store.redirect_target(repo_type, full_id)
            if moved is not None and may_see(principal, moved):
                raise RepoMoved(full_id, moved.full_id)
            if self.upstream is not None and action in (Action.READ_METADATA, Action.READ_CONTENT):
                repo = self.upstream.pull(repo_type, full_id, principal)  # the pull-through mirror (hub/upstream.py)
            if repo is None:
                raise not_found(principal)
        elif self.upstream is not None and (mirror := self.upstream.mirror_of(repo)) is not None:
            self.upstream.check_policy(repo, mirror, principal)
            if self.upstream.refresh_if_stale(repo, mirror, principal):
                repo = _still_there(self.store.get_by_id(repo.id))
        self.policy.check(principal, repo, action)
        return repo

    def visible(self, principal: Principal, repo_type: str, full_id: str) -> RepoRow | None:
        """The repo if it exists and ``principal`` may see it; else None (no error, no redirect)."""
        repo = self.store.get(repo_type, full_id)
        return repo if repo is not None and self.policy.allows(principal, repo, Action.READ_METADATA) else None

    def by_storage_key(self, storage_key: str) -> RepoRow | None:
        """The repo a signed link names (by storage key). No access decision: callers ``find`` it
        again as the principal the link was minted for."""
        return self.store.get_by_storage_key(storage_key)

    def by_id(self, repo_id: int) -> RepoRow | None:
        """The repo with this database id, for callers the hub itself handed the id (the push hook).
        No access decision."""
        return self.store.get_by_id(repo_id)

    # --- listings -------------------------------------------------------------------------------

    def search(self, principal: Principal, query: RepoQuery) -> tuple[list[RepoRow], bool]:
        """A page of repos (``list_models``, the web listings) and whether more follow: only repos
        ``principal`` may see, whatever visibility the query carried."""
        return self.store.list(replace(query, visible_owner_ids=principal.visible_owner_ids(),
                                       visible_repo_ids=self._token_repo_ids(principal)))

    def _token_repo_ids(self, principal: Principal) -> tuple[int, ...]:
        """The private repos a fine-grained token is scoped to one by one and may see now (its user
        still on their owner side): listed like those of the owners it is granted on."""
        if principal.grants is None:
            return ()
        rows = (self.store.get_by_id(s.id) for s in principal.grants.scopes if s.kind == "repo")
        return tuple(row.id for row in rows if row is not None and row.private and may_see(principal, row))

    def facets(self, principal: Principal, query: RepoQuery) -> Facets | None:
        """How many public repos the listing ``query`` matches and its facets' most common values.
        Counts are of public repos only, whoever asks (a signed-in user's own private repos are
        listed, never counted: docs/web-ui.md), so one count serves every visitor.

        - An unnarrowed listing: from the precomputed ``repo_facet_counts`` (db/repos.py).
        - A narrowed one matching at most ``NARROW_CAP`` repos: counted among the matches
          (``hub/facets.py``; None when not counted within the page's budget).
        - A broader narrowed one: "more than NARROW_CAP", and the site-wide values."""
        if not (query.search or query.author or query.filters or query.gated is not None):
            return self.store.facet_table(query.type)
        key = replace(query, visible_owner_ids=(), visible_repo_ids=(), after=None, before=None, offset=0, sort=None)
        known = self.facet_counts.peek(key)
        return known if known is not None else self.facet_counts.get(key)

    def _count_facets(self, key: RepoQuery) -> Facets:
        """A narrowed listing's facets (off the page's path, remembered: ``hub/facets.py``). Whether it
        is broad is remembered with them, so a broad listing's views do not each count its matches."""
        if self.store.count_up_to(key, NARROW_CAP) > NARROW_CAP:
            return replace(self.store.facet_table(key.type), total=NARROW_CAP, at_least=True)
        return self.store.facets(key)

    def count_children(self, principal: Principal, repo: RepoRow, relation: str | None = None, cap: int = 1000) -> int:
        """The models visible to ``principal`` whose card names ``repo`` as ``base_model`` (its
        ``base_model:<id>`` tag; with ``relation``, its ``base_model:<relation>:<id>`` tag), counted
        up to ``cap``."""
        tag = f"base_model:{relation}:{repo.full_id}" if relation else f"base_model:{repo.full_id}"
        query = RepoQuery(type="model", filters=(tag,), limit=cap, visible_owner_ids=principal.visible_owner_ids())
        return self.store.count_up_to(query, cap)

    def spaces_using(self, principal: Principal, repo: RepoRow, cap: int = 100) -> list[RepoRow]:
        """The spaces visible to ``principal`` whose card names ``repo`` under ``models:`` (or, for a
        dataset, ``datasets:``), newest first, at most ``cap``: ``expand=spaces``."""
        key = "datasets" if repo.type == "dataset" else "models"
        query = RepoQuery(type="space", limit=cap, visible_owner_ids=principal.visible_owner_ids())
        return self.store.card_mentions(query, key, repo.full_id)

    def with_storage(self, principal: Principal, namespace: str | None, limit: int) -> list[tuple[RepoRow, int]]:
        """``list_user_repos``: the repos of the caller, or of an org it belongs to, each with the
        bytes it uses, from the database in one query (git bytes stored with each head; measured
        once for a head stored before 0013)."""
        if principal.account is None:
            raise HubError("You must be authenticated to list your repositories", status=401)
        namespace = namespace or principal.account.name
        owner = self.accounts.get(namespace)
        if owner is None or not principal.can_read_owner(owner.id):
            raise NotFound(f"No organization {namespace!r} you are a member of")
        out = []
        for repo, git_bytes, lfs_bytes in self.store.storage_rows(owner.id, 3 * limit):
            if not self.policy.allows(principal, repo, Action.READ_METADATA):
                continue
            if git_bytes is None:
                head = self.head(repo)
                git_bytes = head.git_bytes if head is not None and head.git_bytes is not None \
                    else self.git.disk_usage(repo.storage_key)
            out.append((repo, git_bytes + lfs_bytes))
        return out

    # --- counters -------------------------------------------------------------------------------

    def count_download(self, repo: RepoRow) -> None:
        """Counted in memory and written in batches (``hub/downloads.py``) when a counter is wired."""
        if self.downloads is not None:
            self.downloads.count(repo.id)
        else:
            self.store.count_download(repo.id)

    # --- lifecycle ------------------------------------------------------------------------------

    def owner_for(self, principal: Principal, namespace: str | None) -> tuple[str, int]:
        """The namespace to create in, checking the caller may write there."""
        if principal.is_anonymous:
            raise HubError("You must be authenticated to do this", status=401)
        if not principal.can_write_at_all:
            raise Forbidden(principal.read_only_reason("create repos"))
        namespace = namespace or principal.user.name
        account = self.accounts.get(namespace)
        if account is None or not principal.can_create_in(account.id):
            raise Forbidden(f"You don't have the rights to create a repo under the namespace {namespace!r}")
        return account.name, account.id

    def create(self, principal: Principal, repo_type: str, name: str, namespace: str | None,
               private: bool, space_sdk: str | None = None) -> tuple[RepoRow, bool]:
        """Create the repo; returns (repo, created). ``created`` is False when it already existed."""
        repo_type = check_repo_type(repo_type)
        check_repo_name(name)
        namespace, owner_id = self.owner_for(principal, namespace)
        existing = self.store.get(repo_type, f"{namespace}/{name}")
        if existing is not None:
            return existing, False
        storage_key = secrets.token_hex(16)
        git_repo = self.git.init(storage_key)
        try:
            files = {".gitattributes": DEFAULT_GITATTRIBUTES.encode()}
            if repo_type == "space":
                files["README.md"] = space_readme(name, space_sdk)
            sha = self._initial_commit(git_repo, storage_key, files, principal)
            now = utcnow()
            repo = self.store.create(type=repo_type, namespace=namespace, name=name, owner_id=owner_id,
                                     storage_key=storage_key, private=private, now=now,
                                     created_by=principal.user.id)
        except AlreadyExists:
            self.git.delete(storage_key)
            return _still_there(self.store.get(repo_type, f"{namespace}/{name}")), False
        except BaseException:
            self.git.delete(storage_key)
            raise
        self._store_head(repo, git_repo, commit_at(git_repo, sha), now=None)
        repo = _still_there(self.store.get_by_id(repo.id))
        self.events.repo("create", repo)
        return repo, True

    def _initial_commit(self, git_repo: pygit2.Repository, storage_key: str, files: dict[str, bytes],
                        principal: Principal) -> str:
        changes = [TreeChange(path, str(git_repo.create_blob(data))) for path, data in files.items()]
        tree = apply_changes(git_repo, None, changes)
        account = principal.user
        sha = self.git.write_commit(git_repo, tree, [], "initial commit", account.name, commit_address(account.name),
                                    when=int(time.time()))
        self.git.update_ref(storage_key, f"refs/heads/{DEFAULT_BRANCH}", sha, None)
        return sha

    def delete(self, principal: Principal, repo_type: str, full_id: str) -> None:
        repo = self.find(check_repo_type(repo_type), full_id, principal, action=Action.ADMIN)
        self.store.delete(repo.id)
        self.git.delete(repo.storage_key)
        self._changed(repo)
        self.events.repo("delete", repo)

    def update_settings(self, principal: Principal, repo: RepoRow, private: bool | None,
                        gated: str | bool | None) -> None:
        self.policy.check(principal, repo, Action.ADMIN)
        values: dict[str, Any] = {}
        if private is not None:
            values["private"] = bool(private)
        if gated is not None:
            if gated is False or gated == "false":
                values["gated"] = None
            elif gated in GATED_VALUES:
                values["gated"] = gated
            else:
                raise BadRequest("Invalid 'gated' value: must be false, 'auto' or 'manual'")
        if values:
            self.store.update(repo.id, **values, last_modified=utcnow())
            self._changed(repo)
            self.events.config_changed(repo, values)

    def move(self, principal: Principal, repo_type: str, from_id: str, to_id: str) -> RepoRow:
        repo_type = check_repo_type(repo_type)
        repo = self.find(repo_type, from_id, principal, action=Action.ADMIN)
        if to_id.count("/") != 1:
            raise BadRequest(f"Invalid repo id {to_id!r}: expected 'namespace/name'")
        namespace, name = to_id.split("/")
        check_repo_name(name)
        namespace, owner_id = self.owner_for(principal, namespace)
        if self.store.get(repo_type, to_id) is not None:
            raise Conflict(f"A {repo_type} repository called {to_id} already exists")
        try:
            self.store.rename(repo, namespace, name, owner_id)
        except AlreadyExists:
            raise Conflict(f"A {repo_type} repository called {to_id} already exists") from None
        self._changed(repo)
        self.events.repo("move", repo, moved_to=f"{namespace}/{name}")
        return _still_there(self.store.get_by_id(repo.id))

    def storage_used(self, repo: RepoRow) -> int:
        """Bytes a repo uses: its git objects plus the LFS objects it references."""
        return self.git.disk_usage(repo.storage_key) + self.store.lfs_bytes(repo.id)

    # --- the stored head of the default branch (repo_heads) --------------------------------------

    def _describe(self, repo: RepoRow, git_repo: pygit2.Repository, commit: pygit2.Commit,
                  disk: bool = False, base: RepoHead | None = None) -> tuple[Card, RepoHead]:
        """The card and files of ``commit``; with ``base`` (a stored head of the same repo), only
        the files that differ from it are read."""
        card = card_from_readme(content.read_text(git_repo, commit, "README.md"), repo.type)
        rows = content.file_rows(git_repo, commit, (base.sha, base.siblings) if base is not None else None)
        if repo.type == "model":  # the library, task and tags the files imply, where the card is silent
            small = {str(r[0]): _small_json(git_repo, r) for r in rows if str(r[0]) in file_tags.READ_FILES}
            card = file_tags.with_file_metadata(card, (str(r[0]) for r in rows), small.get("config.json"),
                                                small.get("tokenizer_config.json"))
        return card, RepoHead(str(commit.id), rows, sum(r[1] for r in rows),
                              self.git.disk_usage(repo.storage_key) if disk else None)

    def _store_head(self, repo: RepoRow, git_repo: pygit2.Repository, commit: pygit2.Commit,
                    now: datetime | None, unmoved: bool = False) -> RepoHead:
        base = self.store.heads([repo.id]).get(repo.id)  # the previous head: only the difference is read
        card, head = self._describe(repo, git_repo, commit, disk=True, base=base)
        tags = card.tags + relation_tags(repo, card, head, git_repo)
        if repo.type == "dataset":  # size_categories: and format: (db/repos.py)
            tags += [t for t in dataset_tags(card.data, (str(row[0]) for row in head.siblings)) if t not in tags]
        tags = [t for t in tags if len(t) <= MAX_TAG]  # a base_model of 300 characters is no tag either
        self.store.set_card(repo.id, sha=head.sha, card_data=card.data, tags=tags, library_name=card.library_name,
                            pipeline_tag=card.pipeline_tag, now=now, head=head, unmoved=unmoved)
        return head

    def refresh_stored_cards(self, repo_type: str = "model") -> int:
        """Describe the head of main of every repo of ``repo_type`` again and store it, as a commit
        would (card, tags, library and task from the files; ``last_modified`` left alone): after an
        upgrade that derives more from the files (``aicommons refresh-metadata``). A repo whose main
        moves meanwhile keeps what its push stored. Returns how many were refreshed."""
        refreshed = 0
        for repo_id in self.store.ids_of_type(check_repo_type(repo_type)):
            repo = self.store.get_by_id(repo_id)
            if repo is None or repo.sha is None:
                continue
            git_repo = self.git.open(repo.storage_key)
            try:
                commit = commit_at(git_repo, repo.sha)
            except (KeyError, ValueError, TypeError):
                continue  # fsck reports a head that is not in git
            self._store_head(repo, git_repo, commit, now=None, unmoved=True)
            self._changed(repo)
            refreshed += 1
        return refreshed

    @staticmethod
    def stored_card(repo: RepoRow) -> Card:
        """The card of the repo's head, as stored on its row when the default branch last moved."""
        return Card(repo.card_data, list(repo.tags), repo.library_name, repo.pipeline_tag)

    def listed_heads(self, rows: list[RepoRow]) -> list[tuple[RepoRow, Card, RepoHead]]:
        """Each listed repo with its stored card and head (``full=true``): no git read per row."""
        heads = self.heads(rows)
        return [(r, self.stored_card(r), heads.get(r.id) or RepoHead(r.sha or "", [], 0, None)) for r in rows]

    def heads(self, rows: list[RepoRow]) -> dict[int, RepoHead]:
        """The stored head of each repo (for ``full=true`` listings), in one query; a repo whose head
        was not stored for its current commit (a repo from before 0013) is described from git once
        and stored."""
        stored = self.store.heads([r.id for r in rows if r.sha])
        out = {}
        for repo in rows:
            head = stored.get(repo.id)
            if repo.sha and (head is None or head.sha != repo.sha):
                head = self._backfill(repo)
            if head is not None:
                out[repo.id] = head
        return out

    def describe(self, repo: RepoRow, git_repo: pygit2.Repository, commit: pygit2.Commit) -> tuple[Card, RepoHead]:
        """The card and files of ``commit`` (``model_info``): remembered in memory by (repo folder,
        commit id), else from the database when it is the stored head of the default branch, else
        from git. What a commit holds never changes, and the caller's access was decided before
        (``find``), so the memory holds content only, never a decision, and needs no invalidation."""
        key = (repo.storage_key, str(commit.id))
        remembered: tuple[Card, RepoHead] | None = self.described.get(key)
        if remembered is not None:
            return remembered
        described: tuple[Card, RepoHead] | None = None
        if key[1] == repo.sha:
            head = self.head(repo)
            if head is not None and head.sha == repo.sha:
                described = self.stored_card(repo), head
        if described is None:
            described = self._describe(repo, git_repo, commit)
        self.described.put(key, described, weight=1 + len(described[1].siblings))
        return described

    def head(self, repo: RepoRow) -> RepoHead | None:
        """The stored head of one repo (None for a repo without commits)."""
        return self.heads([repo]).get(repo.id)

    def _backfill(self, repo: RepoRow) -> RepoHead | None:
        git_repo = self.git.open(repo.storage_key)
        if repo.sha is None:
            return None
        try:
            commit = commit_at(git_repo, repo.sha)
        except (KeyError, ValueError, TypeError):
            return None
        _card, head = self._describe(repo, git_repo, commit, disk=True)
        self.store.put_head(repo.id, head)  # only if the head has not moved meanwhile
        return head

    # --- keeping metadata in sync with git ------------------------------------------------------

    def duplicate(self, principal: Principal, source: RepoRow, body: dict[str, Any]) -> tuple[RepoRow, bool]:
        """``POST …/duplicate``: copy ``source``'s default branch, history and all, to a new repo of
        its type named ``body["repository"]`` ('namespace/name', or 'name' in the caller's
        namespace); returns (repo, created). The copy is as private as the source unless
        ``visibility`` (or ``private``) says otherwise, as on the Hub: a private repo never turns
        public by being duplicated. The caller found ``source`` with ``Action.READ_CONTENT``."""
        target, visibility = body.get("repository"), body.get("visibility")
        if not isinstance(target, str) or not target.strip("/"):
            raise BadRequest("'repository' must name the new repo: 'namespace/name' or 'name'")
        if visibility is None:
            private = body.get("private")
            visibility = "private" if (source.private if private is None else private) else "public"
        if visibility not in ("public", "private", "protected"):  # protected (a Space's): private here, as at creation
            raise BadRequest("'visibility' must be 'public' or 'private'")
        namespace, _, name = target.strip("/").rpartition("/")
        owner_name, owner_id = self.owner_for(principal, namespace or None)
        if self.admit is not None and source.sha and self.store.get(source.type, f"{owner_name}/{name}") is None:
            # The copy holds the large files of the source's default branch: they count as uploaded.
            oids = pointers_in_commit_history(self.git.open(source.storage_key), source.sha)
            self.admit(owner_id, sum(self.store.repo_lfs_size(source.id, oid) or 0 for oid in oids))
        repo, created = self.create(principal, source.type, name, namespace or None, visibility != "public")
        if created:
            self.copy_default_branch(source, repo)
            repo = self.store.get_by_id(repo.id) or repo  # with its new head
        return repo, created

    def copy_default_branch(self, source: RepoRow, target: RepoRow) -> None:
        """Make ``target``'s default branch ``source``'s, history and all (duplicating a repo). The
        copy may read the LFS objects its history points at, as if they had been pushed to it: plain
        and Xet downloads, ``list_lfs_files`` (the bytes are stored once)."""
        ref = f"refs/heads/{DEFAULT_BRANCH}"
        old = str(self.git.open(target.storage_key).references[ref].target)
        new = self.git.copy_branch(source.storage_key, target.storage_key, ref)
        names = {row["oid"]: str(row["filename"]) for row in self.store.list_lfs(source.id)}
        named: list[tuple[str, str, int]] = []
        # The new repo has no other ref, so its history is the copy's.
        for oid in sorted(pointers_in_history(self.git.open(target.storage_key))):
            size = self.store.repo_lfs_size(source.id, oid)
            if size is None:
                continue  # not the source's to give (a pointer pushed without its object cannot be)
            if oid in names:
                named.append((oid, names[oid], size))
            else:
                self.store.add_lfs_object(target.id, oid, size, utcnow())
        if named:
            self.store.mark_lfs_committed(target.id, named, ref, utcnow())
        self.after_ref_update(target, ref, new, old)

    def after_ref_update(self, repo: RepoRow, ref: str, new_sha: str | None, old_sha: str | None = UNKNOWN) -> None:
        """Refresh the cached head, card and tags when the default branch moved; tell the listeners
        and the hub's events (``old_sha``: where the ref was, ``None`` when it was created)."""
        self._changed(repo)
        if ref != f"refs/heads/{DEFAULT_BRANCH}" or new_sha is None:
            self.store.update(repo.id, last_modified=utcnow())
        else:
            git_repo = self.git.open(repo.storage_key)
            self._store_head(repo, git_repo, commit_at(git_repo, new_sha), now=utcnow())
        for listener in self.ref_listeners:
            listener(repo, ref, new_sha)
        self.events.ref_moved(repo, ref, old_sha, new_sha)


def _still_there(repo: RepoRow | None) -> RepoRow:
    """A row read back after a write; None only if another request deleted the repo meanwhile."""
    if repo is None:
        raise RepoNotFound("Repository not found")
    return repo


def relation_tags(repo: RepoRow, card: Card, head: RepoHead, git_repo: pygit2.Repository) -> list[str]:
    """A model's ``base_model:<relation>:<id>`` tags, as the Hub gives them (``finetune``,
    ``adapter``, ``quantized``, ``merge``): its children are listed and counted by relation
    through them (``/models?filter=base_model:adapter:<id>``)."""
    if repo.type != "model" or not (card.data or {}).get("base_model"):
        return []
    files = {str(row[0]): row for row in head.siblings}
    row = files.get("config.json")
    config = _small_json(git_repo, row) if row is not None else None
    found = base_models(card, files, config, any(p.endswith(".gguf") for p in files))
    return [f"base_model:{found['relation']}:{m['id']}" for m in found["models"]] if found else []


def _small_json(git_repo: pygit2.Repository, row: list[Any]) -> dict[str, Any] | None:
    """A small JSON object kept in git (a file row of a head: path, size, blob id, LFS oid), or None."""
    if row[3] is not None or int(row[1]) > 1 << 20:
        return None
    try:
        loaded = json.loads(content.read_blob(git_repo, str(row[2])))
    except (ValueError, KeyError):
        return None
    return loaded if isinstance(loaded, dict) else None
