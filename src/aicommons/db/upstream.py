"""Which repos and namespaces came from an upstream hub (``hub/upstream.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, select, update

from aicommons.db.tables import upstream_links, upstream_namespaces, upstream_repos, upstream_rules
from aicommons.db.upsert import insert_ignore


@dataclass(frozen=True)
class UpstreamRepo:
    repo_id: int
    upstream_url: str
    upstream_id: str
    fetched_at: datetime
    pinned: bool = False
    revisions: list[Any] | None = None


@dataclass(frozen=True)
class UpstreamLink:
    account_id: int
    upstream_url: str
    sealed: str
    upstream_user: str
    created_at: datetime


@dataclass(frozen=True)
class UpstreamRule:
    id: int
    effect: str  # "allow" | "block"
    kind: str  # "repo" | "license"
    pattern: str
    created_at: datetime


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

    # --- users' linked upstream tokens (migration 0027) -----------------------------------------------

    def links(self, account_id: int) -> list[UpstreamLink]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(upstream_links).where(upstream_links.c.account_id == account_id))
            return [UpstreamLink(**r._mapping) for r in rows]

    def put_link(self, link: UpstreamLink) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(upstream_links).where(upstream_links.c.account_id == link.account_id,
                                                      upstream_links.c.upstream_url == link.upstream_url))
            conn.execute(upstream_links.insert().values(**link.__dict__))

    def drop_link(self, account_id: int, upstream_url: str) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(delete(upstream_links).where(
                upstream_links.c.account_id == account_id, upstream_links.c.upstream_url == upstream_url)).rowcount > 0

    # --- administrators' policy rules (migration 0027) -------------------------------------------------

    def rules(self) -> list[UpstreamRule]:
        with self.engine.connect() as conn:
            return [UpstreamRule(**r._mapping) for r in conn.execute(select(upstream_rules).order_by(upstream_rules.c.id))]

    def add_rule(self, effect: str, kind: str, pattern: str, now: datetime) -> bool:
        with self.engine.begin() as conn:
            return insert_ignore(conn, upstream_rules, {"effect": effect, "kind": kind, "pattern": pattern,
                                                        "created_at": now}) == 1

    def remove_rule(self, kind: str, pattern: str) -> int:
        with self.engine.begin() as conn:
            return conn.execute(delete(upstream_rules).where(upstream_rules.c.kind == kind,
                                                              upstream_rules.c.pattern == pattern)).rowcount
