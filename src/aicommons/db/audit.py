"""Appending to and reading the audit log (``audit_events``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, insert, select

from aicommons.db.tables import audit_events


@dataclass(frozen=True)
class AuditEvent:
    at: datetime
    actor: str | None
    ip: str | None
    action: str
    target: str
    status: int
    request_id: str | None = None  # the server's own
    client_request_id: str | None = None  # the one the client sent (and was answered), if sane


class AuditStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    def append(self, event: AuditEvent) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(audit_events).values(**{k: _storable(k, v) for k, v in event.__dict__.items()}))

    def events(self, *, actor: str | None = None, target_contains: str | None = None,
               since: datetime | None = None, limit: int = 100) -> list[AuditEvent]:
        """The newest ``limit`` events matching the filters, oldest first."""
        query = select(audit_events)
        if actor is not None:
            query = query.where(audit_events.c.actor == actor)
        if target_contains:
            query = query.where(audit_events.c.target.contains(target_contains, autoescape=True))
        if since is not None:
            query = query.where(audit_events.c.at >= since)
        query = query.order_by(audit_events.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [AuditEvent(r.at, r.actor, r.ip, r.action, r.target, r.status, r.request_id,
                           r.client_request_id) for r in reversed(rows)]


def _storable(column: str, value: object) -> object:
    """What the client chose (a path, a user name tried) fits its column on every backend: cut to
    the column's length (PostgreSQL refuses longer text: a 500 for the request being recorded),
    NUL and lone surrogates replaced (PostgreSQL cannot store them)."""
    if not isinstance(value, str):
        return value
    value = value.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")
    length = getattr(audit_events.c[column].type, "length", None)
    return value[:length] if length else value
