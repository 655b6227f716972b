"""Removing a user's row and what hangs off it, in one transaction (``hub/account_deletion.py``).

What they wrote in discussions stays, attributed to one placeholder account (``GHOST_NAME``, of kind
``ghost``: no password, no token, no e-mail, and a name no one can register because it has a
space). Tokens, web sessions, memberships, access requests, the avatar and pending e-mail changes
go with the row (``ON DELETE CASCADE``); likes go too, and the liked repos' counters are recounted.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, delete, func, select, update

from aicommons.db.tables import accounts, discussion_events, discussions, likes, repos, xet_usage
from aicommons.db.upsert import insert_ignore
from aicommons.times import utcnow

GHOST_NAME = "deleted user"
GHOST_KIND = "ghost"


class StillOwnsRepos(Exception):
    pass


class AccountRemovalStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    def owned_repo_count(self, user_id: int) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).where(repos.c.owner_id == user_id)).scalar_one()

    def remove(self, user_id: int) -> bool:
        """Delete the account row; False if it was already gone. Raises ``StillOwnsRepos`` (and
        changes nothing) while a repo still belongs to it."""
        with self.engine.begin() as conn:
            if conn.execute(select(accounts.c.id).where(accounts.c.id == user_id)).first() is None:
                return False
            if conn.execute(select(func.count()).where(repos.c.owner_id == user_id)).scalar():
                raise StillOwnsRepos(user_id)
            ghost = _ghost_id(conn)
            conn.execute(update(discussions).where(discussions.c.author_id == user_id).values(author_id=ghost))
            conn.execute(update(discussion_events).where(discussion_events.c.author_id == user_id)
                         .values(author_id=ghost))
            liked = [r.repo_id for r in conn.execute(select(likes.c.repo_id).where(likes.c.user_id == user_id))]
            conn.execute(delete(likes).where(likes.c.user_id == user_id))
            for repo_id in liked:
                count = conn.execute(select(func.count()).where(likes.c.repo_id == repo_id)).scalar()
                conn.execute(update(repos).where(repos.c.id == repo_id).values(likes=count))
            conn.execute(delete(xet_usage).where(xet_usage.c.account_id == user_id))
            conn.execute(delete(accounts).where(accounts.c.id == user_id))
        return True


def _ghost_id(conn: Connection) -> int:
    insert_ignore(conn, accounts, {"name": GHOST_NAME, "name_lower": GHOST_NAME, "kind": GHOST_KIND, "fullname": "",
                                   "is_admin": False, "created_at": utcnow()})
    return int(conn.execute(select(accounts.c.id).where(accounts.c.name_lower == GHOST_NAME)).scalar_one())


