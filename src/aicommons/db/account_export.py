"""Reads for "export my data" (``hub/account_export.py``): what one user wrote, liked and asked for."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, select

from aicommons.db.tables import access_requests, discussion_events, discussions, likes, repos, tokens

_REPO = (repos.c.type.label("repo_type"), repos.c.full_id.label("repo_id"))


def _rows(engine: Engine, query) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


class AccountExportStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    def discussions(self, user_id: int) -> list[dict]:
        query = (select(*_REPO, discussions.c.num, discussions.c.title, discussions.c.status,
                        discussions.c.is_pull_request, discussions.c.created_at)
                 .join(repos, repos.c.id == discussions.c.repo_id)
                 .where(discussions.c.author_id == user_id).order_by(discussions.c.created_at))
        return _rows(self.engine, query)

    def discussion_events(self, user_id: int) -> list[dict]:
        """Comments, status and title changes and PR commits the user made, with their text."""
        query = (select(*_REPO, discussions.c.num, discussion_events.c.id, discussion_events.c.type,
                        discussion_events.c.created_at, discussion_events.c.data)
                 .join(discussions, discussions.c.id == discussion_events.c.discussion_id)
                 .join(repos, repos.c.id == discussions.c.repo_id)
                 .where(discussion_events.c.author_id == user_id).order_by(discussion_events.c.created_at))
        return _rows(self.engine, query)

    def likes(self, user_id: int) -> list[dict]:
        query = (select(*_REPO, likes.c.created_at).join(repos, repos.c.id == likes.c.repo_id)
                 .where(likes.c.user_id == user_id).order_by(likes.c.created_at))
        return _rows(self.engine, query)

    def access_requests(self, user_id: int) -> list[dict]:
        query = (select(*_REPO, access_requests.c.status, access_requests.c.fields,
                        access_requests.c.rejection_reason, access_requests.c.created_at)
                 .join(repos, repos.c.id == access_requests.c.repo_id)
                 .where(access_requests.c.user_id == user_id).order_by(access_requests.c.created_at))
        return _rows(self.engine, query)

    def tokens(self, user_id: int) -> list[dict]:
        """Names, roles and dates only: never the hash."""
        query = (select(tokens.c.name, tokens.c.role, tokens.c.created_at, tokens.c.last_used_at)
                 .where(tokens.c.user_id == user_id).order_by(tokens.c.id))
        return _rows(self.engine, query)


def iso(value):
    """JSON for what these rows hold: datetimes as ISO 8601 UTC."""
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds") + "Z"
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
