"""Queries on discussions, pull requests and their events."""

from __future__ import annotations

import builtins
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Row, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from aicommons.db.tables import accounts, discussion_events, discussions


@dataclass(frozen=True)
class DiscussionRow:
    id: int
    repo_id: int
    num: int
    author_id: int
    author_name: str
    title: str
    status: str
    is_pull_request: bool
    target_branch: str | None
    merge_commit_id: str | None
    created_at: datetime


@dataclass(frozen=True)
class EventRow:
    id: str
    type: str
    author_name: str | None
    author_id: int | None
    created_at: datetime
    data: dict[str, Any]


_DISCUSSION_COLUMNS = [*discussions.c, accounts.c.name.label("author_name")]


def _discussion(row: Row[Any]) -> DiscussionRow:
    return DiscussionRow(row.id, row.repo_id, row.num, row.author_id, row.author_name, row.title, row.status,
                         bool(row.is_pull_request), row.target_branch, row.merge_commit_id, row.created_at)


class DiscussionStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    def create(self, repo_id: int, author_id: int, title: str, status: str, is_pull_request: bool,
               target_branch: str | None, now: datetime) -> DiscussionRow:
        """Allocate the next number of this repo (numbers are shared by discussions and PRs)."""
        for _attempt in range(5):
            try:
                with self.engine.begin() as conn:
                    num = (conn.execute(select(func.max(discussions.c.num)).where(
                        discussions.c.repo_id == repo_id)).scalar() or 0) + 1
                    conn.execute(insert(discussions).values(
                        repo_id=repo_id, num=num, author_id=author_id, title=title, status=status,
                        is_pull_request=is_pull_request, target_branch=target_branch, created_at=now))
                created = self.get(repo_id, num)
                if created is None:
                    raise RuntimeError("a discussion vanished as it was created")
                return created
            except IntegrityError:
                continue  # another writer took this number
        raise RuntimeError("could not allocate a discussion number")

    def get(self, repo_id: int, num: int) -> DiscussionRow | None:
        query = (select(*_DISCUSSION_COLUMNS).join(accounts, accounts.c.id == discussions.c.author_id)
                 .where(discussions.c.repo_id == repo_id, discussions.c.num == num))
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return _discussion(row) if row else None

    def list(self, repo_id: int, *, is_pull_request: bool | None, statuses: tuple[str, ...] | None,
             author: str | None, offset: int, limit: int) -> tuple[list[DiscussionRow], int]:
        clauses = [discussions.c.repo_id == repo_id]
        if is_pull_request is not None:
            clauses.append(discussions.c.is_pull_request.is_(is_pull_request))
        if statuses:
            clauses.append(discussions.c.status.in_(statuses))
        if author:
            clauses.append(func.lower(accounts.c.name) == author.lower())
        base = select(*_DISCUSSION_COLUMNS).join(accounts, accounts.c.id == discussions.c.author_id).where(*clauses)
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(base.subquery())).scalar_one()
            rows = conn.execute(base.order_by(discussions.c.num.desc()).offset(offset).limit(limit))
            return [_discussion(r) for r in rows], total

    def update(self, discussion_id: int, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(discussions).where(discussions.c.id == discussion_id).values(**values))

    def add_event(self, discussion_id: int, type: str, author_id: int | None, data: dict[str, Any], now: datetime) -> str:
        event_id = secrets.token_hex(12)
        with self.engine.begin() as conn:
            conn.execute(insert(discussion_events).values(id=event_id, discussion_id=discussion_id, type=type,
                                                          author_id=author_id, created_at=now, data=data))
        return event_id

    def events(self, discussion_id: int) -> builtins.list[EventRow]:
        query = (select(discussion_events, accounts.c.name.label("author_name"))
                 .join(accounts, accounts.c.id == discussion_events.c.author_id, isouter=True)
                 .where(discussion_events.c.discussion_id == discussion_id)
                 .order_by(discussion_events.c.created_at, discussion_events.c.id))
        with self.engine.connect() as conn:
            return [EventRow(r.id, r.type, r.author_name, r.author_id, r.created_at, r.data)
                    for r in conn.execute(query)]

    def event(self, discussion_id: int, event_id: str) -> EventRow | None:
        return next((e for e in self.events(discussion_id) if e.id == event_id), None)

    def update_event(self, event_id: str, data: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(discussion_events).where(discussion_events.c.id == event_id).values(data=data))
