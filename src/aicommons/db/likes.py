"""Queries on likes; ``repos.likes`` is kept equal to the number of rows in the same transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, delete, func, insert, select, update

from aicommons.db.tables import accounts, likes, repos


class LikeStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    def set(self, user_id: int, repo_id: int, liked: bool, now: datetime) -> None:
        with self.engine.begin() as conn:
            exists = conn.execute(select(likes.c.user_id).where(likes.c.user_id == user_id,
                                                                likes.c.repo_id == repo_id)).first() is not None
            if liked and not exists:
                conn.execute(insert(likes).values(user_id=user_id, repo_id=repo_id, created_at=now))
            elif not liked and exists:
                conn.execute(delete(likes).where(likes.c.user_id == user_id, likes.c.repo_id == repo_id))
            else:
                return
            count = conn.execute(select(func.count()).where(likes.c.repo_id == repo_id)).scalar()
            conn.execute(update(repos).where(repos.c.id == repo_id).values(likes=count))

    def likers(self, repo_id: int) -> list[tuple[str, str]]:
        query = (select(accounts.c.name, accounts.c.fullname).join(likes, likes.c.user_id == accounts.c.id)
                 .where(likes.c.repo_id == repo_id).order_by(likes.c.created_at))
        with self.engine.connect() as conn:
            return [(r.name, r.fullname or "") for r in conn.execute(query)]

    def liked_repo_ids(self, user_id: int) -> list[int]:
        query = select(likes.c.repo_id).where(likes.c.user_id == user_id).order_by(likes.c.created_at.desc())
        with self.engine.connect() as conn:
            return [r.repo_id for r in conn.execute(query)]
