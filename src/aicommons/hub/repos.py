"""Repo lifecycle and access: create, find (with access rules), list, settings, move, delete.

The doors (api, web, cli) reach repo rows only through this service: ``RepoRow`` and ``RepoQuery``
are imported from here, and every listing is filtered by the caller's own visibility.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import replace

import pygit2

from aicommons.db.accounts import AccountStore, AlreadyExists
from aicommons.db.repos import RepoQuery, RepoRow, RepoStore
from aicommons.errors import BadRequest, Conflict, Forbidden, HubError, NotFound
from aicommons.gitrepo import GitStore, TreeChange
from aicommons.gitrepo.trees import apply_changes
from aicommons.hub import content
from aicommons.hub.access import Principal
from aicommons.hub.cards import card_from_readme
from aicommons.hub.gitattributes import DEFAULT_GITATTRIBUTES
from aicommons.hub.names import check_repo_name, check_repo_type
from aicommons.hub.policy import Action, Policy, may_see, not_found
from aicommons.times import utcnow

__all__ = ["DEFAULT_BRANCH", "RepoMoved", "RepoQuery", "RepoRow", "RepoService"]  # the doors' repo types

DEFAULT_BRANCH = "main"
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


class RepoService:
    def __init__(self, repos: RepoStore, accounts: AccountStore, git: GitStore, policy: Policy):
        self.store = repos
        self.policy = policy
        self.accounts = accounts
        self.git = git
        # Called with the repo after its refs, settings or name changed, or it was deleted, so that
        # in-process caches (inference's model resolutions) drop what they remember of it.
        self.listeners: list = []
        # Called with (repo, ref, new commit or None) after any branch or tag moved, however it
        # moved (commit, push, merge, super-squash, history rewrite): upload scanning queues there.
        self.ref_listeners: list = []
        self.upstream = None  # UpstreamService when AICOMMONS_UPSTREAM_URL is set (wired by the Hub)

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
                repo = self.upstream.pull(repo_type, full_id)  # the pull-through mirror (hub/upstream.py)
            if repo is None:
                raise not_found(principal)
        elif self.upstream is not None and self.upstream.refresh_if_stale(repo):
            repo = self.store.get_by_id(repo.id)
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
        return self.store.list(replace(query, visible_owner_ids=principal.visible_owner_ids()))

    def with_storage(self, principal: Principal, namespace: str | None, limit: int) -> list[tuple[RepoRow, int]]:
        """``list_user_repos``: the repos of the caller, or of an org it belongs to, each with the
        bytes it uses (``storage_used``)."""
        if principal.account is None:
            raise HubError("You must be authenticated to list your repositories", status=401)
        namespace = namespace or principal.account.name
        owner = self.accounts.get(namespace)
        if owner is None or not principal.can_read_owner(owner.id):
            raise NotFound(f"No organization {namespace!r} you are a member of")
        out = []
        for repo_type in ("model", "dataset", "space"):
            rows, _ = self.search(principal, RepoQuery(type=repo_type, author=owner.name, limit=limit))
            out += [(r, self.storage_used(r)) for r in rows]
        return out

    # --- counters -------------------------------------------------------------------------------

    def count_download(self, repo: RepoRow) -> None:
        self.store.count_download(repo.id)

    # --- lifecycle ------------------------------------------------------------------------------

    def owner_for(self, principal: Principal, namespace: str | None) -> tuple[str, int]:
        """The namespace to create in, checking the caller may write there."""
        if principal.is_anonymous:
            raise HubError("You must be authenticated to do this", status=401)
        if not principal.can_write_at_all:
            raise Forbidden(principal.read_only_reason("create repos"))
        namespace = namespace or principal.name
        account = self.accounts.get(namespace)
        if account is None or not principal.can_write_owner(account.id):
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
                                     storage_key=storage_key, private=private, now=now)
        except AlreadyExists:
            self.git.delete(storage_key)
            return self.store.get(repo_type, f"{namespace}/{name}"), False
        except BaseException:
            self.git.delete(storage_key)
            raise
        self.store.update(repo.id, sha=sha)
        return self.store.get_by_id(repo.id), True

    def _initial_commit(self, git_repo: pygit2.Repository, storage_key: str, files: dict[str, bytes],
                        principal: Principal) -> str:
        changes = [TreeChange(path, str(git_repo.create_blob(data))) for path, data in files.items()]
        tree = apply_changes(git_repo, None, changes)
        account = principal.account
        sha = self.git.write_commit(git_repo, tree, [], "initial commit", account.name, account.email or "",
                                    when=int(time.time()))
        self.git.update_ref(storage_key, f"refs/heads/{DEFAULT_BRANCH}", sha, None)
        return sha

    def delete(self, principal: Principal, repo_type: str, full_id: str) -> None:
        repo = self.find(check_repo_type(repo_type), full_id, principal, action=Action.ADMIN)
        self.store.delete(repo.id)
        self.git.delete(repo.storage_key)
        self._changed(repo)

    def update_settings(self, principal: Principal, repo: RepoRow, private: bool | None,
                        gated: str | bool | None) -> None:
        self.policy.check(principal, repo, Action.ADMIN)
        values = {}
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
        return self.store.get_by_id(repo.id)

    def storage_used(self, repo: RepoRow) -> int:
        """Bytes a repo uses: its git objects plus the LFS objects it references."""
        return self.git.disk_usage(repo.storage_key) + self.store.lfs_bytes(repo.id)

    # --- keeping metadata in sync with git ------------------------------------------------------

    def after_ref_update(self, repo: RepoRow, ref: str, new_sha: str | None) -> None:
        """Refresh the cached head, card and tags when the default branch moved."""
        self._changed(repo)
        if ref != f"refs/heads/{DEFAULT_BRANCH}" or new_sha is None:
            self.store.update(repo.id, last_modified=utcnow())
        else:
            git_repo = self.git.open(repo.storage_key)
            commit = git_repo[pygit2.Oid(hex=new_sha)]
            card = card_from_readme(content.read_text(git_repo, commit, "README.md"), repo.type)
            self.store.set_card(repo.id, sha=new_sha, card_data=card.data, tags=card.tags,
                                library_name=card.library_name, pipeline_tag=card.pipeline_tag, now=utcnow())
        for listener in self.ref_listeners:
            listener(repo, ref, new_sha)
