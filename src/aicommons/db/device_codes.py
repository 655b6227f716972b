"""OAuth device login codes (RFC 8628), one row per code a device asked for."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Row, delete, insert, select, update

from aicommons.db.tables import device_codes


@dataclass(frozen=True)
class DeviceCode:
    code_hash: str
    user_code: str
    client_id: str
    client_name: str
    status: str  # "pending" | "approved" | "denied" | "used"
    user_id: int | None
    role: str | None
    created_at: datetime
    expires_at: datetime
    last_poll_at: datetime | None


def _code(row: Row[Any]) -> DeviceCode:
    return DeviceCode(row.code_hash, row.user_code, row.client_id, row.client_name, row.status, row.user_id,
                      row.role, row.created_at, row.expires_at, row.last_poll_at)


class DeviceCodeStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    def add(self, code_hash: str, user_code: str, client_id: str, client_name: str, now: datetime,
            expires_at: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(device_codes).where(device_codes.c.expires_at < now))  # old codes go
            conn.execute(insert(device_codes).values(
                code_hash=code_hash, user_code=user_code, client_id=client_id, client_name=client_name,
                status="pending", created_at=now, expires_at=expires_at))

    def by_hash(self, code_hash: str) -> DeviceCode | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(device_codes).where(device_codes.c.code_hash == code_hash)).first()
        return _code(row) if row else None

    def by_user_code(self, user_code: str) -> DeviceCode | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(device_codes).where(device_codes.c.user_code == user_code)).first()
        return _code(row) if row else None

    def polled(self, code_hash: str, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(device_codes).where(device_codes.c.code_hash == code_hash).values(last_poll_at=now))

    def decide(self, user_code: str, status: str, user_id: int, role: str | None, now: datetime) -> bool:
        """Approve or deny a pending, unexpired code; False if it is no longer pending."""
        with self.engine.begin() as conn:
            return conn.execute(update(device_codes).where(
                device_codes.c.user_code == user_code, device_codes.c.status == "pending",
                device_codes.c.expires_at > now).values(status=status, user_id=user_id, role=role)).rowcount == 1

    def claim(self, code_hash: str) -> bool:
        """Approved -> used, exactly once (two polls at the same moment get one token)."""
        with self.engine.begin() as conn:
            return conn.execute(update(device_codes).where(
                device_codes.c.code_hash == code_hash, device_codes.c.status == "approved"
            ).values(status="used")).rowcount == 1
