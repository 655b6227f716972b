"""Queries on webhooks, what they watch, and their delivery log."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, and_, delete, insert, or_, select, update

from aicommons.db.tables import webhook_deliveries, webhook_watches, webhooks

MAX_LOG_PER_WEBHOOK = 200  # older deliveries are pruned when new ones are logged


@dataclass(frozen=True)
class WebhookRow:
    id: str
    owner_id: int
    url: str
    secret: str | None
    domains: list[str]
    disabled: bool
    watched: list[tuple[str, str]]  # (kind, name)
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class DeliveryRow:
    id: int
    webhook_id: str
    event: str
    payload: dict
    status: str
    attempts: int
    response_status: int | None
    response_body: str | None
    error: str | None
    created_at: datetime
    last_attempt_at: datetime | None


def _delivery(row) -> DeliveryRow:
    return DeliveryRow(row.id, row.webhook_id, row.event, row.payload, row.status, row.attempts, row.response_status,
                       row.response_body, row.error, row.created_at, row.last_attempt_at)


class WebhookStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    def _rows(self, conn, clause) -> list[WebhookRow]:
        rows = conn.execute(select(webhooks).where(clause).order_by(webhooks.c.created_at, webhooks.c.id)).all()
        watched: dict[str, list] = {r.id: [] for r in rows}
        if rows:
            query = (select(webhook_watches).where(webhook_watches.c.webhook_id.in_(list(watched)))
                     .order_by(webhook_watches.c.position))
            for w in conn.execute(query):
                watched[w.webhook_id].append((w.kind, w.name))
        return [WebhookRow(r.id, r.owner_id, r.url, r.secret, list(r.domains), bool(r.disabled), watched[r.id],
                           r.created_at, r.updated_at) for r in rows]

    @staticmethod
    def _set_watched(conn, webhook_id: str, watched: list[tuple[str, str]]) -> None:
        conn.execute(delete(webhook_watches).where(webhook_watches.c.webhook_id == webhook_id))
        seen = set()
        for position, (kind, name) in enumerate(watched):
            if (kind, name.lower()) in seen:
                continue
            seen.add((kind, name.lower()))
            conn.execute(insert(webhook_watches).values(webhook_id=webhook_id, kind=kind, name_lower=name.lower(),
                                                        name=name, position=position))

    def create(self, owner_id: int, url: str, secret: str | None, domains: list[str],
               watched: list[tuple[str, str]], now: datetime) -> str:
        webhook_id = secrets.token_hex(12)
        with self.engine.begin() as conn:
            conn.execute(insert(webhooks).values(id=webhook_id, owner_id=owner_id, url=url, secret=secret,
                                                 domains=domains, disabled=False, created_at=now, updated_at=now))
            self._set_watched(conn, webhook_id, watched)
        return webhook_id

    def get(self, webhook_id: str) -> WebhookRow | None:
        with self.engine.connect() as conn:
            rows = self._rows(conn, webhooks.c.id == webhook_id)
        return rows[0] if rows else None

    def of_owner(self, owner_id: int) -> list[WebhookRow]:
        with self.engine.connect() as conn:
            return self._rows(conn, webhooks.c.owner_id == owner_id)

    def update(self, webhook_id: str, now: datetime, watched: list[tuple[str, str]] | None = None, **values) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(webhooks).where(webhooks.c.id == webhook_id).values(**values, updated_at=now))
            if watched is not None:
                self._set_watched(conn, webhook_id, watched)

    def delete(self, webhook_id: str) -> bool:
        with self.engine.begin() as conn:
            conn.execute(delete(webhook_deliveries).where(webhook_deliveries.c.webhook_id == webhook_id))
            conn.execute(delete(webhook_watches).where(webhook_watches.c.webhook_id == webhook_id))
            return conn.execute(delete(webhooks).where(webhooks.c.id == webhook_id)).rowcount > 0

    def watching(self, repo_type: str, full_id: str, namespace: str) -> list[WebhookRow]:
        """Enabled webhooks that watch this repo, or its owner (a user or an organisation)."""
        match = or_(and_(webhook_watches.c.kind == repo_type, webhook_watches.c.name_lower == full_id.lower()),
                    and_(webhook_watches.c.kind.in_(("user", "org")),
                         webhook_watches.c.name_lower == namespace.lower()))
        ids = select(webhook_watches.c.webhook_id).where(match)
        with self.engine.connect() as conn:
            return self._rows(conn, and_(webhooks.c.id.in_(ids), webhooks.c.disabled.is_(False)))

    # --- the delivery log -------------------------------------------------------------------------

    def add_delivery(self, webhook_id: str, event: str, payload: dict, now: datetime) -> int:
        with self.engine.begin() as conn:
            delivery_id = conn.execute(insert(webhook_deliveries).values(
                webhook_id=webhook_id, event=event, payload=payload, status="pending", attempts=0,
                created_at=now).returning(webhook_deliveries.c.id)).scalar_one()
            cutoff = conn.execute(select(webhook_deliveries.c.id).where(webhook_deliveries.c.webhook_id == webhook_id)
                                  .order_by(webhook_deliveries.c.id.desc()).offset(MAX_LOG_PER_WEBHOOK).limit(1)
                                  ).scalar()
            if cutoff is not None:
                conn.execute(delete(webhook_deliveries).where(webhook_deliveries.c.webhook_id == webhook_id,
                                                              webhook_deliveries.c.id <= cutoff))
        return delivery_id

    def get_delivery(self, delivery_id: int) -> DeliveryRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id)).first()
        return _delivery(row) if row else None

    def record_attempt(self, delivery_id: int, now: datetime, *, status: str, response_status: int | None,
                       response_body: str | None, error: str | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id).values(
                status=status, attempts=webhook_deliveries.c.attempts + 1, response_status=response_status,
                response_body=response_body, error=error, last_attempt_at=now))

    def deliveries(self, webhook_id: str, limit: int = 50) -> list[DeliveryRow]:
        query = (select(webhook_deliveries).where(webhook_deliveries.c.webhook_id == webhook_id)
                 .order_by(webhook_deliveries.c.id.desc()).limit(limit))
        with self.engine.connect() as conn:
            return [_delivery(r) for r in conn.execute(query)]
