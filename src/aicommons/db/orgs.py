"""Organisation membership management (invitations, join requests, removals), follows, and the
counts the user and organisation overviews show."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Row, Select, and_, delete, func, insert, select, update

from aicommons.db.accounts import Account, _account
from aicommons.db.tables import (
    accounts,
    discussions,
    follows,
    likes,
    memberships,
    org_invitations,
    org_join_requests,
    repos,
    tokens,
)
from aicommons.db.upsert import insert_ignore, new_id


@dataclass(frozen=True)
class Invitation:
    id: int
    org_id: int
    email: str | None
    role: str
    created_by: int | None
    created_at: datetime
    expires_at: datetime


def _invitation(row: Row[Any]) -> Invitation:
    return Invitation(row.id, row.org_id, row.email, row.role, row.created_by, row.created_at, row.expires_at)


class OrgStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    # --- members ------------------------------------------------------------------------------

    def members(self, org_id: int) -> list[tuple[Account, str]]:
        query = (select(accounts, memberships.c.role).join(memberships, memberships.c.user_id == accounts.c.id)
                 .where(memberships.c.org_id == org_id).order_by(accounts.c.name_lower))
        with self.engine.connect() as conn:
            return [(_account(r), r.role) for r in conn.execute(query)]

    def set_role(self, org_id: int, user_id: int, role: str, keep_an_admin: bool = True) -> bool:
        """Change a member's role; False if not a member, or (``keep_an_admin``) it would leave the
        org without an admin. One transaction, so two demotions at once cannot both pass."""
        with self.engine.begin() as conn:
            current = conn.execute(select(memberships.c.role).where(
                memberships.c.org_id == org_id, memberships.c.user_id == user_id).with_for_update()).scalar()
            if current is None or (keep_an_admin and current == "admin" and role != "admin"
                                   and self._admins(conn, org_id) <= 1):
                return False
            conn.execute(update(memberships).where(memberships.c.org_id == org_id, memberships.c.user_id == user_id)
                         .values(role=role))
            return True

    def remove(self, org_id: int, user_id: int) -> bool:
        """Remove a member; False if not one, or the last admin."""
        with self.engine.begin() as conn:
            current = conn.execute(select(memberships.c.role).where(
                memberships.c.org_id == org_id, memberships.c.user_id == user_id).with_for_update()).scalar()
            if current is None or (current == "admin" and self._admins(conn, org_id) <= 1):
                return False
            conn.execute(delete(memberships).where(memberships.c.org_id == org_id, memberships.c.user_id == user_id))
            _drop_org_scopes(conn, org_id, user_id)
            return True

    @staticmethod
    def _admins(conn: Connection, org_id: int) -> int:
        return conn.execute(select(func.count()).select_from(memberships).where(
            memberships.c.org_id == org_id, memberships.c.role == "admin")).scalar() or 0

    def join(self, org_id: int, user_id: int, role: str) -> bool:
        """Add a member (not changing the role of an existing one); drops their join request."""
        with self.engine.begin() as conn:
            added = insert_ignore(conn, memberships, {"org_id": org_id, "user_id": user_id, "role": role})
            conn.execute(delete(org_join_requests).where(org_join_requests.c.org_id == org_id,
                                                         org_join_requests.c.user_id == user_id))
            return bool(added)

    # --- invitations --------------------------------------------------------------------------

    def add_invitation(self, org_id: int, token_hash: str, email: str | None, role: str, created_by: int,
                       now: datetime, expires_at: datetime) -> Invitation:
        with self.engine.begin() as conn:
            res = conn.execute(insert(org_invitations).values(
                org_id=org_id, token_hash=token_hash, email=email, role=role, created_by=created_by,
                created_at=now, expires_at=expires_at))
            invitation_id = new_id(res)
        return Invitation(invitation_id, org_id, email, role, created_by, now, expires_at)

    def invitations(self, org_id: int, now: datetime) -> list[Invitation]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(org_invitations).where(org_invitations.c.org_id == org_id,
                                                              org_invitations.c.expires_at > now)
                                .order_by(org_invitations.c.id))
            return [_invitation(r) for r in rows]

    def invitation_by_hash(self, token_hash: str, now: datetime) -> Invitation | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(org_invitations).where(org_invitations.c.token_hash == token_hash,
                                                             org_invitations.c.expires_at > now)).first()
        return _invitation(row) if row else None

    def delete_invitation(self, org_id: int, invitation_id: int) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(delete(org_invitations).where(org_invitations.c.org_id == org_id,
                                                              org_invitations.c.id == invitation_id)).rowcount > 0

    # --- join requests ------------------------------------------------------------------------

    def request_to_join(self, org_id: int, user_id: int, now: datetime) -> None:
        with self.engine.begin() as conn:
            insert_ignore(conn, org_join_requests, {"org_id": org_id, "user_id": user_id, "created_at": now})

    def join_requests(self, org_id: int) -> list[tuple[Account, datetime]]:
        query = (select(accounts, org_join_requests.c.created_at.label("asked_at"))
                 .join(org_join_requests, org_join_requests.c.user_id == accounts.c.id)
                 .where(org_join_requests.c.org_id == org_id).order_by(org_join_requests.c.created_at))
        with self.engine.connect() as conn:
            return [(_account(r), r.asked_at) for r in conn.execute(query)]

    def drop_join_request(self, org_id: int, user_id: int) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(delete(org_join_requests).where(org_join_requests.c.org_id == org_id,
                                                                org_join_requests.c.user_id == user_id)).rowcount > 0

    # --- follows ------------------------------------------------------------------------------

    def follow(self, follower_id: int, followee_id: int, following: bool, now: datetime) -> None:
        with self.engine.begin() as conn:
            if following:
                insert_ignore(conn, follows, {"follower_id": follower_id, "followee_id": followee_id,
                                              "created_at": now})
            else:
                conn.execute(delete(follows).where(follows.c.follower_id == follower_id,
                                                   follows.c.followee_id == followee_id))

    def followers(self, account_id: int) -> list[Account]:
        query = (select(accounts).join(follows, follows.c.follower_id == accounts.c.id)
                 .where(follows.c.followee_id == account_id).order_by(follows.c.created_at.desc(), accounts.c.id))
        with self.engine.connect() as conn:
            return [_account(r) for r in conn.execute(query)]

    def following(self, account_id: int) -> list[Account]:
        query = (select(accounts).join(follows, follows.c.followee_id == accounts.c.id)
                 .where(follows.c.follower_id == account_id).order_by(follows.c.created_at.desc(), accounts.c.id))
        with self.engine.connect() as conn:
            return [_account(r) for r in conn.execute(query)]

    def is_following(self, follower_id: int, followee_id: int) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(follows.c.follower_id).where(
                follows.c.follower_id == follower_id, follows.c.followee_id == followee_id)).first() is not None

    # --- counts for the overviews -------------------------------------------------------------

    def counts(self, account_id: int, visible_owner_ids: tuple[int, ...]) -> dict[str, int]:
        """Repos by type (public ones, and private ones of the owners the viewer may see), likes
        given and discussions opened (on those same repos: a count must not tell a stranger that
        someone is active in private repos the likes list and the repos hide), followers,
        following, members."""
        visible = (repos.c.private.is_(False)) | repos.c.owner_id.in_(visible_owner_ids or (-1,))
        with self.engine.connect() as conn:
            by_type: dict[str, int] = dict(conn.execute(select(repos.c.type, func.count()).where(
                and_(repos.c.owner_id == account_id, visible)).group_by(repos.c.type)).all())

            def count(query: Select[Any]) -> int:
                return int(conn.execute(query).scalar() or 0)

            return {
                "model": by_type.get("model", 0), "dataset": by_type.get("dataset", 0),
                "space": by_type.get("space", 0),
                "likes": count(select(func.count()).select_from(likes.join(repos, repos.c.id == likes.c.repo_id))
                               .where(likes.c.user_id == account_id, visible)),
                "discussions": count(select(func.count())
                                     .select_from(discussions.join(repos, repos.c.id == discussions.c.repo_id))
                                     .where(discussions.c.author_id == account_id, visible)),
                "followers": count(select(func.count()).select_from(follows).where(follows.c.followee_id == account_id)),
                "following": count(select(func.count()).select_from(follows).where(follows.c.follower_id == account_id)),
                "members": count(select(func.count()).select_from(memberships).where(memberships.c.org_id == account_id)),
            }


def _drop_org_scopes(conn: Connection, org_id: int, user_id: int) -> None:
    """A member who leaves (or is removed from) an org loses the org's permissions on their
    fine-grained tokens, in the same transaction: a token's org scope lasts only while its user is a
    member, and rejoining does not bring it back (docs/teams.md). Stored as
    ``hub/token_scopes.Grants.to_stored()``: ``{"scoped": [{"kind", "id", "permissions"}]}``."""
    rows = conn.execute(select(tokens.c.id, tokens.c.fine_grained).where(tokens.c.user_id == user_id)).all()
    for row in rows:
        grants = row.fine_grained
        if not isinstance(grants, dict):
            continue  # a classic read/write token
        scoped = grants.get("scoped") or []
        kept = [s for s in scoped if not (s.get("kind") == "org" and int(s.get("id", 0)) == org_id)]
        if len(kept) != len(scoped):
            conn.execute(update(tokens).where(tokens.c.id == row.id).values(fine_grained={**grants, "scoped": kept}))
