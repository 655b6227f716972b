"""Who is calling and what they may do.

Rules (security spec A6): a private repo is visible only to its owner, the owner org's members and
admins, and answers exactly like a missing repo to anyone else. Writing needs a write token of the
owner, of a member of the owning org with write role, or of an admin.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aicommons.db.accounts import Account


@dataclass(frozen=True)
class Principal:
    """The caller of one request. ``key`` identifies it for rate limiting."""

    key: str
    account: Account | None = None
    token_role: str | None = None  # "read" | "write" | None (anonymous, or a password login)
    token_name: str | None = None
    org_roles: dict[int, str] = field(default_factory=dict)  # org id -> role

    @property
    def is_anonymous(self) -> bool:
        return self.account is None

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
        return self.account is not None and self.token_role == "write" and self.account.email_verified \
            and self.account.status == "active"

    def read_only_reason(self, what: str = "do this") -> str:
        """Why ``can_write_at_all`` is False for a signed-in caller, in words."""
        if self.account is not None and not self.account.email_verified:
            return (f"Verify your e-mail address to {what}: follow the link we mailed you "
                    "(signed in, any page offers to send it again)")
        if self.account is not None and self.account.status != "active":
            return f"Your account is waiting for an administrator's approval: you cannot {what} yet"
        return f"A write token is needed to {what}: read tokens only read"

    def owns(self, owner_id: int) -> bool:
        return self.account is not None and (self.account.id == owner_id or owner_id in self.org_roles)

    def can_read_owner(self, owner_id: int) -> bool:
        return self.is_admin or self.owns(owner_id)

    def can_write_owner(self, owner_id: int) -> bool:
        if not self.can_write_at_all:
            return False
        if self.is_admin or self.account.id == owner_id:
            return True
        return self.org_roles.get(owner_id) in ("write", "admin")

    def visible_owner_ids(self) -> tuple[int, ...]:
        if self.account is None:
            return ()
        return (self.account.id, *self.org_roles)


def anonymous(client_host: str | None) -> Principal:
    return Principal(key=f"anon:{client_host or 'unknown'}")
