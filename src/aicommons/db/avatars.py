"""Avatars (``avatars``): one small re-encoded image per account."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, delete, select

from aicommons.db.tables import avatars
from aicommons.db.upsert import upsert


class AvatarStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    def put(self, account_id: int, content_type: str, data: bytes, now: datetime) -> None:
        with self.engine.begin() as conn:
            upsert(conn, avatars, {"account_id": account_id, "content_type": content_type, "data": data,
                                   "updated_at": now}, keys=["account_id"], update=["content_type", "data", "updated_at"])

    def get(self, account_id: int) -> tuple[str, bytes, datetime] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(avatars).where(avatars.c.account_id == account_id)).first()
        return (row.content_type, bytes(row.data), row.updated_at) if row else None

    def delete(self, account_id: int) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(delete(avatars).where(avatars.c.account_id == account_id)).rowcount > 0
