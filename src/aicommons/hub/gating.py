"""Gated repos: users ask for access; "auto" gating accepts at once, "manual" waits for a
maintainer. Metadata stays public; files need an accepted request (or being on the owner side)."""

from __future__ import annotations

from typing import Any

from aicommons.db.access_requests import AccessRequestStore
from aicommons.db.accounts import AccountStore
from aicommons.db.repos import RepoRow
from aicommons.errors import BadRequest, Conflict, Forbidden, NotFound
from aicommons.hub.access import Principal
from aicommons.hub.policy import Action, Policy
from aicommons.times import utcnow

STATUSES = ("pending", "accepted", "rejected")


class GatingService:
    def __init__(self, store: AccessRequestStore, accounts: AccountStore, policy: Policy):
        self.store = store
        self.accounts = accounts
        self.policy = policy

    def check(self, repo: RepoRow, principal: Principal) -> None:
        """The gating part of the policy (``Action.READ_CONTENT`` on a repo the caller can see)."""
        if not self.policy.content_allowed(principal, repo):
            raise self.policy.gated_refusal(principal, repo)

    def ask(self, repo: RepoRow, principal: Principal, fields: dict[str, Any] | None) -> str:
        self.policy.check(principal, repo, Action.PARTICIPATE)
        if not repo.gated:
            raise BadRequest(f"{repo.full_id} is not gated")
        if self.store.status(repo.id, principal.user.id) == "accepted":
            return "accepted"
        status = "accepted" if repo.gated == "auto" else "pending"
        self.store.upsert(repo.id, principal.user.id, status, utcnow(), fields=fields)
        return status

    def _require_maintainer(self, repo: RepoRow, principal: Principal) -> None:
        if self.policy.decide(principal, repo, Action.WRITE) is not None:
            raise Forbidden("Only maintainers of the repo manage access requests")

    def list(self, repo: RepoRow, principal: Principal, status: str) -> list[dict[str, Any]]:
        self._require_maintainer(repo, principal)
        if status not in STATUSES:
            raise BadRequest(f"Invalid status {status!r}")
        return self.store.list(repo.id, status)

    def handle(self, repo: RepoRow, principal: Principal, user_name: str | None, status: str,
               rejection_reason: str | None = None, request_id: str | None = None, grant: bool = False) -> None:
        """Accept, reject or reset a request (by user name or request id); ``grant`` gives access to a
        user who never asked. Changing a request to the status it already has is refused."""
        self._require_maintainer(repo, principal)
        if status not in STATUSES:
            raise BadRequest(f"Invalid status {status!r}")
        if request_id is not None:
            user_id = self.store.user_of_request(repo.id, int(request_id)) if str(request_id).isdigit() else None
            user = self.accounts.get_by_id(user_id) if user_id else None
            if user is None:
                raise NotFound(f"No access request {request_id} on {repo.full_id}")
        else:
            user = self.accounts.get(user_name) if isinstance(user_name, str) else None
            if user is None or user.kind != "user":
                raise NotFound(f"No user named {user_name!r}")
        current = self.store.status(repo.id, user.id)
        if current is None and not grant:
            raise NotFound(f"{user.name} has not asked for access to {repo.full_id}")
        if current == status:
            raise Conflict(f"The access request of {user.name} is already {status}")
        self.store.upsert(repo.id, user.id, status, utcnow(), rejection_reason=rejection_reason)
