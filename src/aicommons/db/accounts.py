"""Queries on accounts (users and orgs), memberships and tokens."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Row, case, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from aicommons.db.tables import accounts, memberships, tokens
from aicommons.db.upsert import insert_ignore, new_id
from aicommons.times import utcnow


class AlreadyExists(Exception):
    pass


@dataclass(frozen=True)
class Account:
    id: int
    name: str
    kind: str
    fullname: str
    email: str | None
    is_admin: bool
    created_at: datetime
    password_hash: str | None = None
    suspended_at: datetime | None = None
    bio: str = ""
    homepage: str = ""
    email_verified: bool = True  # self-registered users: False until they follow the mailed link
    status: str = "active"  # "active" | "pending" (a sign-up awaiting an admin's approval)

    @property
    def suspended(self) -> bool:
        return self.suspended_at is not None


@dataclass(frozen=True)
class TokenRow:
    id: int
    user_id: int
    name: str
    role: str  # "read" | "write" | "fineGrained"
    created_at: datetime
    fine_grained: dict[str, Any] | None = None  # hub/token_scopes.Grants.to_stored()
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    origin: str | None = None


def _token(row: Row[Any], prefix: str = "") -> TokenRow:
    def get(name: str) -> Any:
        return getattr(row, prefix + name)
    return TokenRow(get("id"), get("user_id"), get("name"), get("role"), get("created_at"), get("fine_grained"),
                    get("expires_at"), get("last_used_at"), get("origin"))


_SECRET_COLUMNS = ("token_hash", "refresh_hash", "previous_refresh_hash")
_TOKEN_COLUMNS = [c.label("token_" + c.name) for c in tokens.c if c.name not in _SECRET_COLUMNS]


def _account(row: Row[Any]) -> Account:
    return Account(row.id, row.name, row.kind, row.fullname or "", row.email, bool(row.is_admin),
                   row.created_at, row.password_hash, row.suspended_at, row.bio or "", row.homepage or "",
                   bool(row.email_verified), row.status)


class AccountStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    def create(self, name: str, kind: str, fullname: str = "", email: str | None = None,
               password_hash: str | None = None, is_admin: bool = False, now: datetime | None = None,
               email_verified: bool = True, status: str = "active") -> Account:
        try:
            with self.engine.begin() as conn:
                res = conn.execute(insert(accounts).values(
                    name=name, name_lower=name.lower(), kind=kind, fullname=fullname, email=email,
                    password_hash=password_hash, is_admin=is_admin, created_at=now or utcnow(),
                    email_verified=email_verified, status=status))
                account_id = new_id(res)
        except IntegrityError as exc:
            raise AlreadyExists(name) from exc
        created = self.get_by_id(account_id)
        if created is None:
            raise RuntimeError("an account vanished as it was created")
        return created

    def get(self, name: str) -> Account | None:
        if "\x00" in name or not name.isascii() and not _encodable(name):
            return None  # no account has such a name, and PostgreSQL would refuse the query (a 500)
        with self.engine.connect() as conn:
            row = conn.execute(select(accounts).where(accounts.c.name_lower == name.lower())).first()
        return _account(row) if row else None

    def get_by_id(self, account_id: int) -> Account | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(accounts).where(accounts.c.id == account_id)).first()
        return _account(row) if row else None

    def set_password_hash(self, account_id: int, password_hash: str | None, expected: str | None = None,
                          check_expected: bool = False) -> bool:
        """Store a new hash; with ``check_expected``, only if the stored one is still ``expected``
        (an upgrade at sign-in must not undo a password change made meanwhile)."""
        query = update(accounts).where(accounts.c.id == account_id)
        if check_expected:
            query = query.where(accounts.c.password_hash == expected)
        with self.engine.begin() as conn:
            return conn.execute(query.values(password_hash=password_hash)).rowcount > 0

    def get_by_email(self, email: str) -> Account | None:
        """The user with this address (compared case-insensitively), if any."""
        if "\x00" in email or not _encodable(email):
            return None
        with self.engine.connect() as conn:
            row = conn.execute(select(accounts).where(accounts.c.kind == "user",
                                                      func.lower(accounts.c.email) == email.lower())
                               .order_by(accounts.c.id)).first()
        return _account(row) if row else None

    def any_admin(self) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(accounts.c.id).where(accounts.c.is_admin.is_(True)).limit(1)).first() is not None

    def list(self, kind: str | None = None) -> list[Account]:
        query = select(accounts).order_by(accounts.c.name_lower)
        if kind:
            query = query.where(accounts.c.kind == kind)
        with self.engine.connect() as conn:
            return [_account(r) for r in conn.execute(query)]

    def search(self, kind: str, text: str = "", offset: int = 0, limit: int = 50) -> tuple[builtins.list[Account], int]:
        """Accounts of ``kind`` whose name, full name or e-mail contains ``text``; (page, total)."""
        clauses = [accounts.c.kind == kind]
        if text:
            clauses.append(or_(*(func.lower(c).contains(text.lower(), autoescape=True)
                                 for c in (accounts.c.name, accounts.c.fullname, accounts.c.email))))
        query = select(accounts).where(*clauses)
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
            rows = conn.execute(query.order_by(accounts.c.name_lower).offset(offset).limit(limit))
            return [_account(r) for r in rows], total

    def find_public(self, text: str, limit: int) -> builtins.list[Account]:
        """Active users and organisations whose name or full name contains ``text`` (never their
        e-mail), names that start with it first; the site-wide search (web/search.py)."""
        needle = text.lower()
        query = select(accounts).where(
            accounts.c.status == "active", accounts.c.suspended_at.is_(None),
            or_(accounts.c.name_lower.contains(needle, autoescape=True),
                func.lower(accounts.c.fullname).contains(needle, autoescape=True)))
        starts = case((accounts.c.name_lower.startswith(needle, autoescape=True), 0), else_=1)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(starts, accounts.c.name_lower).limit(limit))
            return [_account(r) for r in rows]

    def update(self, account_id: int, **values: Any) -> None:
        """Set columns of one account (suspended_at, is_admin, fullname, bio, homepage, email)."""
        with self.engine.begin() as conn:
            conn.execute(update(accounts).where(accounts.c.id == account_id).values(**values))

    def count_admins(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).where(accounts.c.kind == "user", accounts.c.is_admin.is_(True),
                                                           accounts.c.suspended_at.is_(None))).scalar_one()

    # --- memberships ----------------------------------------------------------------------------

    def add_member(self, org_id: int, user_id: int, role: str = "write") -> None:
        with self.engine.begin() as conn:
            # Upsert (not delete + insert): safe when two replicas add the same member at once.
            if not insert_ignore(conn, memberships, {"org_id": org_id, "user_id": user_id, "role": role}):
                conn.execute(update(memberships).where(memberships.c.org_id == org_id,
                                                       memberships.c.user_id == user_id).values(role=role))

    def orgs_of(self, user_id: int) -> builtins.list[tuple[Account, str]]:
        query = (select(accounts, memberships.c.role)
                 .join(memberships, memberships.c.org_id == accounts.c.id)
                 .where(memberships.c.user_id == user_id).order_by(accounts.c.name_lower))
        with self.engine.connect() as conn:
            return [(_account(r), r.role) for r in conn.execute(query)]

    def member_role(self, org_id: int, user_id: int) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(memberships.c.role).where(
                memberships.c.org_id == org_id, memberships.c.user_id == user_id)).scalar()

    # --- tokens ---------------------------------------------------------------------------------

    def add_token(self, user_id: int, name: str, role: str, token_hash: str, fine_grained: dict[str, Any] | None = None,
                  expires_at: datetime | None = None, origin: str | None = None,
                  refresh_hash: str | None = None) -> TokenRow:
        now = utcnow()
        try:
            with self.engine.begin() as conn:
                res = conn.execute(insert(tokens).values(user_id=user_id, name=name, role=role,
                                                         token_hash=token_hash, created_at=now,
                                                         fine_grained=fine_grained, expires_at=expires_at,
                                                         origin=origin, refresh_hash=refresh_hash))
                token_id = new_id(res)
        except IntegrityError as exc:
            raise AlreadyExists("token") from exc
        return TokenRow(token_id, user_id, name, role, now, fine_grained, expires_at, None, origin)

    def token_by_hash(self, token_hash: str) -> tuple[TokenRow, Account] | None:
        """The token and its user, in one query (this runs on every authenticated request)."""
        query = (select(accounts, *_TOKEN_COLUMNS).join(accounts, accounts.c.id == tokens.c.user_id)
                 .where(tokens.c.token_hash == token_hash))
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return _token(row, "token_"), _account(row)

    def token_by_id(self, token_id: int) -> tuple[TokenRow, Account] | None:
        """The token (still existing, i.e. not revoked) and its user."""
        query = (select(accounts, *_TOKEN_COLUMNS).join(accounts, accounts.c.id == tokens.c.user_id)
                 .where(tokens.c.id == token_id))
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return _token(row, "token_"), _account(row)

    def delete_expired_tokens(self, user_id: int, now: datetime) -> int:
        with self.engine.begin() as conn:
            return conn.execute(delete(tokens).where(tokens.c.user_id == user_id, tokens.c.expires_at.is_not(None),
                                                     tokens.c.expires_at < now)).rowcount

    def touch_token(self, token_id: int, now: datetime, older_than: datetime) -> None:
        """Record a use; at most one write per token between ``older_than`` and ``now``."""
        with self.engine.begin() as conn:
            conn.execute(update(tokens).where(tokens.c.id == token_id).where(
                (tokens.c.last_used_at.is_(None)) | (tokens.c.last_used_at < older_than)).values(last_used_at=now))

    def delete_token(self, token_hash: str) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(delete(tokens).where(tokens.c.token_hash == token_hash)).rowcount > 0

    def delete_token_by_id(self, user_id: int, token_id: int) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(delete(tokens).where(tokens.c.id == token_id, tokens.c.user_id == user_id)).rowcount > 0

    def rotate_refresh(self, refresh_hash: str, new_token_hash: str, new_refresh_hash: str,
                       expires_at: datetime, now: datetime) -> TokenRow | None:
        """Give the token holding ``refresh_hash`` (and not expired) a new secret, expiry and refresh
        token, in one statement: of two racing refreshes with the same refresh token one wins."""
        with self.engine.begin() as conn:
            changed = conn.execute(update(tokens).where(
                tokens.c.refresh_hash == refresh_hash, tokens.c.expires_at > now).values(
                token_hash=new_token_hash, refresh_hash=new_refresh_hash, previous_refresh_hash=refresh_hash,
                expires_at=expires_at)).rowcount
            if not changed:
                return None
            row = conn.execute(select(tokens).where(tokens.c.refresh_hash == new_refresh_hash)).one()
            return _token(row)

    def revoke_replaced_refresh(self, refresh_hash: str) -> bool:
        """A refresh token that was already used came back: someone holds a copy. The token it
        belonged to is deleted (RFC 9700 section 4.14.2)."""
        with self.engine.begin() as conn:
            return conn.execute(delete(tokens).where(tokens.c.previous_refresh_hash == refresh_hash)).rowcount > 0

    def delete_tokens_of(self, user_id: int) -> int:
        with self.engine.begin() as conn:
            return conn.execute(delete(tokens).where(tokens.c.user_id == user_id)).rowcount

    def list_tokens(self, user_id: int) -> builtins.list[TokenRow]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(tokens).where(tokens.c.user_id == user_id).order_by(tokens.c.id))
            return [_token(r) for r in rows]


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True
