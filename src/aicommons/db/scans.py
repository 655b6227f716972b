"""Stored upload scan results (``file_scans``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select

from aicommons.db.tables import file_scans
from aicommons.db.upsert import insert_ignore


class ScanStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    def get_many(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        """key -> stored result, for the keys that were scanned."""
        if not keys:
            return {}
        found: dict[str, dict[str, Any]] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(keys), 500):  # bounded IN lists
                chunk = keys[start:start + 500]
                for row in conn.execute(select(file_scans.c.key, file_scans.c.result)
                                        .where(file_scans.c.key.in_(chunk))):
                    found[row.key] = row.result
        return found

    def put(self, key: str, status: str, result: dict[str, Any], now: datetime) -> None:
        """First result wins: the same content and name always scan the same way."""
        with self.engine.begin() as conn:
            insert_ignore(conn, file_scans, {"key": key, "status": status, "result": result, "scanned_at": now})
