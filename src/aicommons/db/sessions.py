"""Queries on web sessions (``web_sessions``): rows keyed by the sha256 of the session id."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, delete, insert, select, update

from aicommons.db.tables import web_sessions


@dataclass(frozen=True)
class SessionRow:
    id_hash: str
    user_id: int
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime


class SessionStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    def add(self, row: SessionRow) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(web_sessions).where(web_sessions.c.expires_at < row.created_at))
            conn.execute(insert(web_sessions).values(**row.__dict__))

    def get(self, id_hash: str) -> SessionRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(web_sessions).where(web_sessions.c.id_hash == id_hash)).first()
        return SessionRow(row.id_hash, row.user_id, row.created_at, row.last_seen_at, row.expires_at) if row else None

    def touch(self, id_hash: str, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(web_sessions).where(web_sessions.c.id_hash == id_hash).values(last_seen_at=now))

    def delete(self, id_hash: str) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(delete(web_sessions).where(web_sessions.c.id_hash == id_hash)).rowcount > 0

    def delete_user(self, user_id: int) -> int:
        """End every session of a user; the number ended."""
        with self.engine.begin() as conn:
            return conn.execute(delete(web_sessions).where(web_sessions.c.user_id == user_id)).rowcount

    def delete_user_except(self, user_id: int, keep_hash: str | None) -> int:
        """End every session of a user but one (the one changing their password); the number ended."""
        query = delete(web_sessions).where(web_sessions.c.user_id == user_id)
        if keep_hash:
            query = query.where(web_sessions.c.id_hash != keep_hash)
        with self.engine.begin() as conn:
            return conn.execute(query).rowcount

    def delete_of_user(self, user_id: int, id_hash: str) -> bool:
        """End one session, only if it is this user's."""
        with self.engine.begin() as conn:
            return conn.execute(delete(web_sessions).where(web_sessions.c.user_id == user_id,
                                                           web_sessions.c.id_hash == id_hash)).rowcount > 0

    def list_user(self, user_id: int, now: datetime) -> list[SessionRow]:
        query = (select(web_sessions).where(web_sessions.c.user_id == user_id, web_sessions.c.expires_at >= now)
                 .order_by(web_sessions.c.last_seen_at.desc()))
        with self.engine.connect() as conn:
            return [SessionRow(r.id_hash, r.user_id, r.created_at, r.last_seen_at, r.expires_at) for r in conn.execute(query)]

    def count_user(self, user_id: int, now: datetime) -> int:
        with self.engine.connect() as conn:
            return len(conn.execute(select(web_sessions.c.id_hash).where(
                web_sessions.c.user_id == user_id, web_sessions.c.expires_at >= now)).all())
