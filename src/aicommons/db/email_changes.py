"""Pending e-mail changes (``email_changes``): the sha256 of the mailed link, the user, the new
address and when the link expires. One pending change per user; a link is taken once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, delete, insert, select

from aicommons.db.tables import email_changes


@dataclass(frozen=True)
class EmailChange:
    user_id: int
    new_email: str
    expires_at: datetime


class EmailChangeStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    def replace(self, user_id: int, token_hash: str, new_email: str, expires_at: datetime) -> None:
        """The user's one pending change: an earlier link stops working."""
        with self.engine.begin() as conn:
            conn.execute(delete(email_changes).where(email_changes.c.user_id == user_id))
            conn.execute(insert(email_changes).values(token_hash=token_hash, user_id=user_id, new_email=new_email,
                                                      expires_at=expires_at))

    def peek(self, token_hash: str) -> EmailChange | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(email_changes).where(email_changes.c.token_hash == token_hash)).first()
        return EmailChange(row.user_id, row.new_email, row.expires_at) if row else None

    def take(self, token_hash: str) -> EmailChange | None:
        """The change a link names, removed so that the link works once (two clicks: one wins)."""
        with self.engine.begin() as conn:
            row = conn.execute(select(email_changes).where(email_changes.c.token_hash == token_hash)).first()
            if row is None or conn.execute(delete(email_changes).where(
                    email_changes.c.token_hash == token_hash)).rowcount != 1:
                return None
        return EmailChange(row.user_id, row.new_email, row.expires_at)
