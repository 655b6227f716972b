"""The state of each dataset's Parquet conversion (``parquet_conversions``; ``hub/parquet_export.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select, update

from aicommons.db.tables import parquet_conversions
from aicommons.db.upsert import upsert


@dataclass(frozen=True)
class Conversion:
    repo_id: int
    source_sha: str
    state: str  # pending | done | failed
    converted_sha: str | None
    partial: bool
    result: dict | None
    error: str | None
    updated_at: datetime


class ParquetConversionStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    def get(self, repo_id: int) -> Conversion | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(parquet_conversions).where(parquet_conversions.c.repo_id == repo_id)).first()
        return Conversion(**row._mapping) if row is not None else None

    def all(self) -> list[Conversion]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(parquet_conversions)).all()
        return [Conversion(**row._mapping) for row in rows]

    def queued(self, repo_id: int, source_sha: str, now: datetime) -> None:
        """``source_sha`` is the commit to convert now: whatever was recorded before is replaced."""
        with self.engine.begin() as conn:
            upsert(conn, parquet_conversions,
                   {"repo_id": repo_id, "source_sha": source_sha, "state": "pending", "converted_sha": None,
                    "partial": False, "result": None, "error": None, "updated_at": now},
                   ["repo_id"], ["source_sha", "state", "converted_sha", "partial", "result", "error", "updated_at"])

    def finished(self, repo_id: int, source_sha: str, state: str, now: datetime, *, converted_sha: str | None = None,
                 partial: bool = False, result: dict | None = None, error: str | None = None) -> bool:
        """Record the outcome of converting ``source_sha``, unless a newer commit was queued since."""
        with self.engine.begin() as conn:
            done = conn.execute(update(parquet_conversions).where(
                parquet_conversions.c.repo_id == repo_id, parquet_conversions.c.source_sha == source_sha,
            ).values(state=state, converted_sha=converted_sha, partial=partial, result=result, error=error,
                     updated_at=now))
        return done.rowcount == 1
