"""Queries on access requests to gated repos."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update

from aicommons.db.tables import access_requests, accounts


class AccessRequestStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    def status(self, repo_id: int, user_id: int) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(access_requests.c.status).where(
                access_requests.c.repo_id == repo_id, access_requests.c.user_id == user_id)).scalar()

    def upsert(self, repo_id: int, user_id: int, status: str, now: datetime, fields: dict[str, Any] | None = None,
               rejection_reason: str | None = None) -> None:
        with self.engine.begin() as conn:
            found = conn.execute(select(access_requests.c.id).where(
                access_requests.c.repo_id == repo_id, access_requests.c.user_id == user_id)).scalar()
            if found is None:
                conn.execute(insert(access_requests).values(repo_id=repo_id, user_id=user_id, status=status,
                                                            fields=fields, rejection_reason=rejection_reason,
                                                            created_at=now))
            else:
                values: dict[str, Any] = {"status": status, "rejection_reason": rejection_reason}
                if fields is not None:
                    values["fields"] = fields
                conn.execute(update(access_requests).where(access_requests.c.id == found).values(**values))

    def user_of_request(self, repo_id: int, request_id: int) -> int | None:
        with self.engine.connect() as conn:
            return conn.execute(select(access_requests.c.user_id).where(
                access_requests.c.repo_id == repo_id, access_requests.c.id == request_id)).scalar()

    def list(self, repo_id: int, status: str) -> list[dict[str, Any]]:
        query = (select(access_requests, accounts.c.name, accounts.c.fullname, accounts.c.email)
                 .join(accounts, accounts.c.id == access_requests.c.user_id)
                 .where(access_requests.c.repo_id == repo_id, access_requests.c.status == status)
                 .order_by(access_requests.c.created_at))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]
