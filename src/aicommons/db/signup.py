"""Queries for sign-up: one-time links, retired names and sign-up attempts (migration 0014)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Row, delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from aicommons.db.tables import one_time_links, retired_names, signup_attempts


@dataclass(frozen=True)
class LinkRow:
    token_hash: str
    purpose: str
    account_id: int | None
    email: str | None
    created_by: str | None
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class RetiredName:
    name: str
    kind: str
    account_id: int | None
    reason: str
    retired_at: datetime


def _link(row: Row[Any]) -> LinkRow:
    return LinkRow(row.token_hash, row.purpose, row.account_id, row.email, row.created_by, row.created_at,
                   row.expires_at)


class LinkStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    def add(self, row: LinkRow) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(one_time_links).where(one_time_links.c.expires_at < row.created_at))
            conn.execute(insert(one_time_links).values(**row.__dict__))

    def get(self, token_hash: str, purpose: str, now: datetime) -> LinkRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(one_time_links).where(
                one_time_links.c.token_hash == token_hash, one_time_links.c.purpose == purpose,
                one_time_links.c.expires_at > now)).first()
        return _link(row) if row else None

    def take(self, token_hash: str, purpose: str, now: datetime) -> LinkRow | None:
        """The live link, deleted in the same transaction: of two concurrent uses only one gets it."""
        with self.engine.begin() as conn:
            row = conn.execute(select(one_time_links).where(
                one_time_links.c.token_hash == token_hash, one_time_links.c.purpose == purpose)).first()
            if row is None:
                return None
            taken = conn.execute(delete(one_time_links).where(one_time_links.c.token_hash == token_hash)).rowcount
        return _link(row) if taken and row.expires_at > now else None

    def delete_for(self, account_id: int, purpose: str) -> int:
        with self.engine.begin() as conn:
            return conn.execute(delete(one_time_links).where(one_time_links.c.account_id == account_id,
                                                             one_time_links.c.purpose == purpose)).rowcount

    def list(self, purpose: str, now: datetime) -> list[LinkRow]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(one_time_links).where(one_time_links.c.purpose == purpose,
                                                             one_time_links.c.expires_at > now)
                                .order_by(one_time_links.c.created_at))
            return [_link(r) for r in rows]


class RetiredNameStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    def get(self, name: str) -> RetiredName | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(retired_names).where(retired_names.c.name_lower == name.lower())).first()
        return RetiredName(row.name, row.kind, row.account_id, row.reason, row.retired_at) if row else None

    def add(self, name: str, kind: str, account_id: int | None, reason: str, now: datetime) -> bool:
        """Retire ``name``; False if it already was (the first retirement is kept)."""
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(retired_names).values(name_lower=name.lower(), name=name, kind=kind,
                                                          account_id=account_id, reason=reason[:256],
                                                          retired_at=now))
        except IntegrityError:
            return False
        return True

    def delete(self, name: str) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(delete(retired_names).where(retired_names.c.name_lower == name.lower())).rowcount > 0

    def list(self) -> list[RetiredName]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(retired_names).order_by(retired_names.c.name_lower))
            return [RetiredName(r.name, r.kind, r.account_id, r.reason, r.retired_at) for r in rows]


class SignupAttemptStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    def take(self, client: str, limit: int, now: datetime, since: datetime) -> datetime | None:
        """Count one attempt of ``client`` unless it already made ``limit`` since ``since``; returns
        None when counted, else the time of its oldest attempt in the window (refusals are not
        recorded, so a flood of them cannot grow the table)."""
        client = client[:64]
        with self.engine.begin() as conn:
            conn.execute(delete(signup_attempts).where(signup_attempts.c.at < since))
            count, oldest = conn.execute(select(func.count(), func.min(signup_attempts.c.at)).where(
                signup_attempts.c.client == client, signup_attempts.c.at >= since)).one()
            if count >= limit:
                oldest_at: datetime | None = oldest
                return oldest_at
            conn.execute(insert(signup_attempts).values(client=client, at=now))
        return None
