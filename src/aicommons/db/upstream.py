"""Which repos and namespaces came from an upstream hub (``hub/upstream.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select, update

from aicommons.db.tables import upstream_namespaces, upstream_repos
from aicommons.db.upsert import insert_ignore


@dataclass(frozen=True)
class UpstreamRepo:
    repo_id: int
    upstream_url: str
    upstream_id: str
    fetched_at: datetime
    pinned: bool = False
    revisions: list[Any] | None = None


class UpstreamStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    def repo(self, repo_id: int) -> UpstreamRepo | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(upstream_repos).where(upstream_repos.c.repo_id == repo_id)).first()
        return UpstreamRepo(**row._mapping) if row is not None else None

    def add_repo(self, repo_id: int, upstream_url: str, upstream_id: str, now: datetime) -> None:
        with self.engine.begin() as conn:
            insert_ignore(conn, upstream_repos, {"repo_id": repo_id, "upstream_url": upstream_url,
                                                 "upstream_id": upstream_id, "fetched_at": now})

    def fetched(self, repo_id: int, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(upstream_repos).where(upstream_repos.c.repo_id == repo_id).values(fetched_at=now))

    def pin(self, repo_id: int, revisions: list[str] | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(upstream_repos).where(upstream_repos.c.repo_id == repo_id)
                         .values(pinned=revisions is not None, revisions=revisions))

    def repos(self) -> list[UpstreamRepo]:
        with self.engine.connect() as conn:
            return [UpstreamRepo(**r._mapping) for r in conn.execute(select(upstream_repos))]

    def add_namespace(self, account_id: int, upstream_url: str) -> None:
        with self.engine.begin() as conn:
            insert_ignore(conn, upstream_namespaces, {"account_id": account_id, "upstream_url": upstream_url})

    def is_mirror_namespace(self, account_id: int) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(upstream_namespaces.c.account_id).where(
                upstream_namespaces.c.account_id == account_id)).first() is not None
