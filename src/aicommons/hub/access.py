"""Who is calling and what they may do.

Rules (security spec A6): a private repo is visible only to its owner, the owner org's members and
admins, and answers exactly like a missing repo to anyone else. Writing needs a write token of the
owner, of a member of the owning org with write role, or of an admin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from aicommons.db.accounts import Account
from aicommons.errors import Unauthorized
from aicommons.hub.token_scopes import READ, REPO_PERMISSIONS, WRITE, Grants

# Organisation roles, from the least to the most power. A "contributor" creates repos in the org
# and writes to the repos it created; "write" writes to every repo of the org; "admin" also manages
# the org's repos' settings and its members.
ORG_ROLES = ("read", "contributor", "write", "admin")


@dataclass(frozen=True)
class Principal:
    """The caller of one request. ``key`` identifies it for rate limiting."""

    key: str
    account: Account | None = None
    token_role: str | None = None  # "read" | "write" | "fineGrained" | None (anonymous)
    token_name: str | None = None
    org_roles: dict[int, str] = field(default_factory=dict)  # org id -> role
    grants: Grants | None = None  # a fine-grained token's permissions; None: not restricted by a token
    expires_at: datetime | None = None  # the token's expiry (naive UTC); None: never
    token_origin: str | None = None  # "device": made by OAuth device login

    @property
    def is_anonymous(self) -> bool:
        return self.account is None

    @property
    def user(self) -> Account:
        """The signed-in account, for code that the policy has already let through as a user."""
        if self.account is None:
            raise Unauthorized("You must be signed in to do this")
        return self.account

    @property
    def name(self) -> str | None:
        return self.account.name if self.account else None

    @property
    def is_admin(self) -> bool:
        return bool(self.account and self.account.is_admin)

    @property
    def can_write_at_all(self) -> bool:
        """A write credential of an account that may change things: its e-mail verified (accounts
        that signed themselves up) and not waiting for approval. Others only read."""
        return self.account is not None and self.token_role in ("write", "fineGrained") \
            and self.account.email_verified \
            and self.account.status == "active"

    def read_only_reason(self, what: str = "do this") -> str:
        """Why ``can_write_at_all`` is False for a signed-in caller, in words."""
        if self.account is not None and not self.account.email_verified:
            return (f"Verify your e-mail address to {what}: follow the link we mailed you "
                    "(signed in, any page offers to send it again)")
        if self.account is not None and self.account.status != "active":
            return f"Your account is waiting for an administrator's approval: you cannot {what} yet"
        return f"A write token is needed to {what}: read tokens only read"

    def token_allows(self, permission: str, owner_id: int | None = None, repo_id: int | None = None) -> bool:
        """What the token permits, on the repo ``repo_id`` of ``owner_id`` (or the account
        ``owner_id``); anything but a fine-grained token permits everything its user may do."""
        return self.grants is None or self.grants.allows(permission, owner_id, repo_id)

    def token_allows_any_on_repo(self, owner_id: int, repo_id: int) -> bool:
        return any(self.token_allows(p, owner_id, repo_id) for p in REPO_PERMISSIONS)

    def owns(self, owner_id: int) -> bool:
        return self.account is not None and (self.account.id == owner_id or owner_id in self.org_roles)

    def on_owner_side(self, owner_id: int) -> bool:
        """The user (whatever the token) is the owner, a member of the owning org, or a site admin."""
        return self.is_admin or self.owns(owner_id)

    def can_read_owner(self, owner_id: int, permission: str = READ) -> bool:
        """On the owner side, and a fine-grained token grants ``permission`` (repo content, or
        ``collection.read``) on the owner."""
        return self.on_owner_side(owner_id) and self.token_allows(permission, owner_id)

    def _role_writes(self, owner_id: int, created_by: int | None = None) -> bool:
        if self.is_admin or self.user.id == owner_id:
            return True
        role = self.org_roles.get(owner_id)
        return role in ("write", "admin") or (role == "contributor" and created_by == self.user.id)

    def can_write_owner(self, owner_id: int, permission: str = WRITE) -> bool:
        return self.can_write_at_all and self._role_writes(owner_id) and self.token_allows(permission, owner_id)

    def can_write_repo(self, owner_id: int, repo_id: int, created_by: int | None) -> bool:
        return self.can_write_at_all and self._role_writes(owner_id, created_by) and \
            self.token_allows(WRITE, owner_id, repo_id)

    def can_create_in(self, owner_id: int) -> bool:
        """May create a repo under ``owner_id`` (a contributor of an org may)."""
        if not self.can_write_at_all or not self.token_allows(WRITE, owner_id):
            return False
        return self._role_writes(owner_id) or self.org_roles.get(owner_id) == "contributor"

    def visible_owner_ids(self, permission: str = READ) -> tuple[int, ...]:
        """Owners whose private repos (or, with ``collection.read``, collections) listings include
        (a fine-grained token: those it grants ``permission`` on)."""
        if self.account is None:
            return ()
        return tuple(i for i in (self.account.id, *self.org_roles) if self.token_allows(permission, i))


def anonymous(client_host: str | None) -> Principal:
    return Principal(key=f"anon:{client_host or 'unknown'}")
