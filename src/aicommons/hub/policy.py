"""The one authorization decision: may this principal do this action on this repo?

Every door (API handlers, web pages, git smart-HTTP, LFS batch, Xet tokens, inference) asks here,
before it reads a request body or writes anything, and answers with the error given here:

- a private repo the caller may not see answers exactly like a missing one: ``RepoNotFound``, 401
  when anonymous, 404 when signed in;
- content of a gated repo without an accepted access request (or being on the owner side):
  ``GatedRepo``, 401 anonymous / 403 signed in;
- any other refusal: 401 when the caller is anonymous, ``Forbidden`` (403) when signed in.

Actions, from the least to the most power:

``READ_METADATA``  that the repo exists, its card, refs, discussions, likers (public for gated repos)
``READ_CONTENT``   files, trees, paths-info, history, PR diffs and conflicts, git fetch, LFS and
                   Xet downloads, inference on the model
``PARTICIPATE``    open a discussion, comment, like, ask for access: a signed-in write principal
                   (write token, password, or web session) who can see the repo
``CONTRIBUTE``     open a pull request, commit to one's own PR, upload LFS/Xet objects, preupload:
                   ``PARTICIPATE`` plus ``READ_CONTENT`` (a PR shows the files it changes)
``WRITE``          commit to branches, branches and tags, merge, git push, LFS file management,
                   manage access requests: a write principal of the owner, of an org member with
                   the write or admin role, or a site admin
``ADMIN``          settings (visibility, gating), delete, move: the owner user, an org admin, a
                   site admin
``INFER``          inference on the model: ``READ_CONTENT``

An org member with the "contributor" role writes only to the repos they created.

A fine-grained token (hub/token_scopes.py) then narrows the user's rights to what it grants: a
private repo it has no permission on answers like a missing one; ``READ_CONTENT`` of a private or
owner-side gated repo needs ``repo.content.read``, of another gated repo ``canReadGatedRepos`` (or a
grant on it); ``PARTICIPATE`` needs ``discussion.write``; ``CONTRIBUTE`` that or ``repo.write``;
``WRITE`` ``repo.write``; ``ADMIN`` ``repo.settings.write``; ``INFER`` ``inference.serverless.write``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import replace

from aicommons.db.access_requests import AccessRequestStore
from aicommons.db.repos import RepoRow
from aicommons.errors import Forbidden, GatedRepo, HubError, NotFound, RepoNotFound, Unauthorized
from aicommons.hub.access import Principal
from aicommons.hub.token_scopes import COLLECTIONS_READ, COLLECTIONS_WRITE, DISCUSS, INFER, READ, SETTINGS, WRITE


class Action(str, enum.Enum):
    READ_METADATA = "read-metadata"
    READ_CONTENT = "read-content"
    PARTICIPATE = "participate"
    CONTRIBUTE = "contribute"
    WRITE = "write"
    ADMIN = "admin"
    INFER = "infer"


# Actions that change state: they need a signed-in principal whose credential may write.
STATE_CHANGING = frozenset({Action.PARTICIPATE, Action.CONTRIBUTE, Action.WRITE, Action.ADMIN})
# Actions that read (or expose, or build on) the files of a gated repo.
NEEDS_CONTENT = frozenset({Action.READ_CONTENT, Action.CONTRIBUTE, Action.INFER})


# How an anonymous change to a repo the caller can see starts (a 401 RepoNotFound, as on the Hub):
# the web pages show it as "not found", like a repo they cannot see (web/context.py).
SIGN_IN_TO = "You must be signed in to"


def not_found(principal: Principal) -> RepoNotFound:
    """What a repo that does not exist, or that the caller may not see, answers."""
    return RepoNotFound("Repository not found", status=401 if principal.is_anonymous else 404)


def may_see(principal: Principal, repo: RepoRow) -> bool:
    return not repo.private or (principal.on_owner_side(repo.owner_id)
                                and principal.token_allows_any_on_repo(repo.owner_id, repo.id))


def _on_owner_side(principal: Principal, repo: RepoRow) -> bool:
    return principal.on_owner_side(repo.owner_id) and principal.token_allows(READ, repo.owner_id, repo.id)


def _may_write(principal: Principal, repo: RepoRow) -> bool:
    return principal.can_write_repo(repo.owner_id, repo.id, repo.created_by)


def _may_administer(principal: Principal, repo: RepoRow) -> bool:
    if not principal.can_write_at_all or not principal.token_allows(SETTINGS, repo.owner_id, repo.id):
        return False
    if principal.is_admin or principal.user.id == repo.owner_id:
        return True
    return principal.org_roles.get(repo.owner_id) == "admin"


def _token_refusal(principal: Principal, repo: RepoRow, action: Action) -> HubError | None:
    """A fine-grained token without the permission ``action`` needs (its user may have it)."""
    if principal.grants is None or action in (Action.READ_METADATA, Action.READ_CONTENT):
        return None  # reads: by visibility and gating
    owner, rid = repo.owner_id, repo.id
    if action is Action.PARTICIPATE:
        needed, ok = DISCUSS, principal.token_allows(DISCUSS, owner, rid)
    elif action is Action.CONTRIBUTE:
        needed = f"{DISCUSS} or {WRITE}"
        ok = principal.token_allows(DISCUSS, owner, rid) or principal.token_allows(WRITE, owner, rid)
    elif action is Action.INFER:
        needed = INFER
        ok = principal.token_allows(INFER, principal.user.id) or principal.token_allows(INFER, owner, rid)
    else:
        return None  # WRITE and ADMIN: in _may_write / _may_administer
    if ok:
        return None
    return Forbidden(f"This fine-grained token lacks the {needed} permission on {repo.full_id}")


class Policy:
    """Decisions need the repo row and, for gated repos, the caller's access request status."""

    def __init__(self, access_requests: AccessRequestStore, site_url: str = ""):
        self.access_requests = access_requests
        self.site_url = site_url  # the hub's public base URL: a gated refusal links the repo's page
        # With a pull-through mirror (hub/upstream.py ``UpstreamService.access``): for a private or
        # gated repo, None when it is not pulled through, else whether upstream grants it to the
        # caller's own linked upstream token. Pulled-through repos are decided by upstream's grant
        # only: local access requests do not open them, and a hidden one answers like a missing one.
        self.upstream: Callable[[Principal, RepoRow], bool | None] | None = None

    def _upstream_grants(self, principal: Principal, repo: RepoRow) -> bool | None:
        if self.upstream is None or principal.account is None:
            return None  # anonymous callers have no linked token: the usual rules refuse
        return self.upstream(principal, repo)

    # --- the decision ------------------------------------------------------------------------------

    def decide(self, principal: Principal, repo: RepoRow, action: Action) -> HubError | None:
        """``None`` when allowed, else the error to answer with (not raised)."""
        action = Action(action)
        if not may_see(principal, repo) and not self._upstream_grants(principal, repo):
            return not_found(principal)
        if action in STATE_CHANGING:
            refusal = self._credential_refusal(principal, repo, action)
            if refusal is not None:
                return refusal
        refusal = _token_refusal(principal, repo, action)
        if refusal is not None:
            return refusal
        if action in NEEDS_CONTENT and not self.content_allowed(principal, repo):
            return self.gated_refusal(principal, repo)
        return None

    def gated_refusal(self, principal: Principal, repo: RepoRow) -> GatedRepo:
        """``GatedRepo`` for content ``content_allowed`` refused; when the user may read it and only
        their fine-grained token may not, the message says so rather than "ask for access"."""
        if principal.grants is not None and self.content_allowed(replace(principal, grants=None), repo):
            return GatedRepo(
                f"Access to {repo.type} {repo.full_id} is restricted: you may read it, but this fine-grained "
                f"token may not. Use a token with repo.content.read on {repo.full_id} or, for a gated repo you "
                "were admitted to, \"Read access to contents of all public gated repos you can access\" "
                "(canReadGatedRepos)")
        return gated(principal, repo, self.site_url)

    def check(self, principal: Principal, repo: RepoRow, action: Action) -> None:
        error = self.decide(principal, repo, action)
        if error is not None:
            raise error

    def allows(self, principal: Principal, repo: RepoRow, action: Action) -> bool:
        return self.decide(principal, repo, action) is None

    def allows_without_io(self, principal: Principal, repo: RepoRow, action: Action) -> bool | None:
        """The decision when it needs no database read, else ``None`` (a gated repo's content for
        a caller outside the owner side: their access request must be looked up)."""
        action = Action(action)
        if repo.private and self.upstream is not None and principal.account is not None \
                and not may_see(principal, repo):
            return None  # perhaps a restricted upstream repo: upstream's grant is looked up
        if action in NEEDS_CONTENT and repo.gated and may_see(principal, repo) \
                and not _on_owner_side(principal, repo) and principal.account is not None:
            if action in STATE_CHANGING and self._credential_refusal(principal, repo, action) is not None:
                return False
            return None
        return self.allows(principal, repo, action)

    def content_allowed(self, principal: Principal, repo: RepoRow) -> bool:
        """The gating rule: ungated, on the owner side, or an accepted access request."""
        if not repo.gated or _on_owner_side(principal, repo):
            return True
        if principal.account is None:
            return False
        grants = principal.grants
        if grants is not None and not grants.can_read_gated_repos and \
                not grants.allows(READ, repo.owner_id, repo.id):
            return False
        if (upstream := self._upstream_grants(principal, repo)) is not None:
            return upstream
        return self.access_requests.status(repo.id, principal.user.id) == "accepted"

    # --- pieces ------------------------------------------------------------------------------------

    @staticmethod
    def _credential_refusal(principal: Principal, repo: RepoRow, action: Action) -> HubError | None:
        if action in (Action.WRITE, Action.ADMIN):
            allowed = _may_write(principal, repo) if action is Action.WRITE else _may_administer(principal, repo)
            if allowed:
                return None
            what = "write to" if action is Action.WRITE else "administer"
            if principal.is_anonymous:  # the repo is visible (else not_found above): say why, as a 401
                # the client raises as RepositoryNotFoundError, as it does for huggingface.co's
                return RepoNotFound(f"{SIGN_IN_TO} {what} {repo.full_id}: send a token", status=401)
            if principal.grants is not None:
                needed = WRITE if action is Action.WRITE else SETTINGS
                if not principal.token_allows(needed, repo.owner_id, repo.id):
                    return Forbidden(f"This fine-grained token lacks the {needed} permission on {repo.full_id}")
            return Forbidden(f"You don't have the rights to {what} {repo.full_id}: a write token of the owner or of "
                             f"a member of the owning organization with the {'write' if action is Action.WRITE else 'admin'}"
                             " role is needed")
        if principal.is_anonymous:
            return Unauthorized("You must be signed in to do this")
        if not principal.can_write_at_all:
            return Forbidden(principal.read_only_reason())
        return None


def gated(principal: Principal, repo: RepoRow, site_url: str = "") -> GatedRepo:
    """The Hub's words, with this hub's page of the repo (where the access form is): transformers
    prefixes its own "Make sure to have access to it at https://huggingface.co/..." to them."""
    page = repo.full_id if repo.type == "model" else f"{repo.type}s/{repo.full_id}"
    where = f"{site_url}/{page}" if site_url else "the repository page"
    return GatedRepo(
        f"Access to {repo.type} {repo.full_id} is restricted and you are not in the authorized list. "
        f"Visit {where} to ask for access.", status=401 if principal.is_anonymous else 403)


# --- things owned by an account that are not repos (collections): the same rules ---------------------


def may_see_owned(principal: Principal, owner_id: int, private: bool) -> bool:
    """A private collection is visible to its owner side only, like a private repo (a fine-grained
    token needs ``collection.read`` on the owner)."""
    return not private or principal.can_read_owner(owner_id, COLLECTIONS_READ)


def owned_refusal(principal: Principal, owner_id: int, private: bool, what: str) -> HubError | None:
    """May ``principal`` change something ``owner_id`` owns? ``None`` when allowed. An invisible
    one answers exactly like a missing one (``NotFound``)."""
    if not may_see_owned(principal, owner_id, private):
        return NotFound(f"{what} not found")
    if principal.can_write_owner(owner_id, COLLECTIONS_WRITE):
        return None
    if principal.is_anonymous:
        return Unauthorized("You must be signed in to do this")
    if not principal.can_write_at_all:
        return Forbidden("A write token is needed to do this: read tokens only read")
    if principal.grants is not None and replace(principal, grants=None).can_write_owner(owner_id):
        return Forbidden(f"This fine-grained token lacks the {COLLECTIONS_WRITE} permission on this {what.lower()}'s owner")
    return Forbidden(f"You don't have the rights to change this {what.lower()}: a write token of the owner or of "
                     "a member of the owning organization with the write or admin role is needed")


def personal_refusal(principal: Principal, owner_id: int, write: bool, what: str,
                     permission: str) -> HubError | None:
    """Things that belong to one user (webhooks, with their secrets): only that user sees or changes
    them; to anyone else they answer like missing ones. Changes need a write credential, and a
    fine-grained token the account-scoped ``permission`` (``user.webhooks.read`` or ``.write``)."""
    if principal.is_anonymous:
        return Unauthorized("You must be signed in to do this")
    if principal.user.id != owner_id:
        return NotFound(f"{what} not found")
    if not principal.token_allows(permission, owner_id):
        return Forbidden(f"This fine-grained token lacks the {permission} permission on your account")
    if write and not principal.can_write_at_all:
        return Forbidden("A write token is needed to do this: read tokens only read")
    return None
