"""Queries on Spaces' runtime rows and their secrets and variables (tables ``space_runtimes``, ``space_env``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Row, delete, select, update

from aicommons.db.tables import space_env, space_runtimes
from aicommons.db.upsert import insert_ignore, upsert


@dataclass(frozen=True)
class SpaceRuntimeRow:
    repo_id: int
    hardware: str
    sleep_seconds: int | None
    paused: bool
    stage: str
    error: str | None
    sha: str | None
    updated_at: datetime


@dataclass(frozen=True)
class SpaceEnvRow:
    kind: str
    key: str
    value: str
    description: str | None
    updated_at: datetime


def _runtime(row: Row[Any]) -> SpaceRuntimeRow:
    return SpaceRuntimeRow(row.repo_id, row.hardware, row.sleep_seconds, bool(row.paused), row.stage, row.error,
                           row.sha, row.updated_at)


class SpaceStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    def runtime(self, repo_id: int) -> SpaceRuntimeRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(space_runtimes).where(space_runtimes.c.repo_id == repo_id)).first()
        return _runtime(row) if row is not None else None

    def ensure(self, repo_id: int, hardware: str, stage: str, now: datetime) -> SpaceRuntimeRow:
        with self.engine.begin() as conn:
            insert_ignore(conn, space_runtimes, {"repo_id": repo_id, "hardware": hardware, "paused": False,
                                                 "stage": stage, "updated_at": now})
            return _runtime(conn.execute(select(space_runtimes).where(space_runtimes.c.repo_id == repo_id)).one())

    def set(self, repo_id: int, now: datetime, **values: Any) -> None:
        """Change some of a runtime row's columns (``ensure`` it first)."""
        with self.engine.begin() as conn:
            conn.execute(update(space_runtimes).where(space_runtimes.c.repo_id == repo_id)
                         .values(updated_at=now, **values))

    def set_stage_unless_paused(self, repo_id: int, stage: str, error: str | None, now: datetime,
                                sha: str | None = None) -> bool:
        """What the runner reports; a paused space stays PAUSED. True when written."""
        values = {"stage": stage, "error": error, "updated_at": now}
        if sha is not None:
            values["sha"] = sha
        with self.engine.begin() as conn:
            done = conn.execute(update(space_runtimes).where(space_runtimes.c.repo_id == repo_id,
                                                             space_runtimes.c.paused.is_(False)).values(**values))
            return done.rowcount > 0

    def running_candidates(self) -> list[int]:
        """Spaces that should be up (not paused, not failed): what a restarted hub brings back lazily."""
        with self.engine.connect() as conn:
            return [r.repo_id for r in conn.execute(select(space_runtimes.c.repo_id).where(
                space_runtimes.c.paused.is_(False), space_runtimes.c.stage.in_(("RUNNING", "BUILDING"))))]

    # --- secrets and variables ---------------------------------------------------------------------

    def env(self, repo_id: int, kind: str | None = None) -> list[SpaceEnvRow]:
        query = select(space_env).where(space_env.c.repo_id == repo_id)
        if kind is not None:
            query = query.where(space_env.c.kind == kind)
        with self.engine.connect() as conn:
            return [SpaceEnvRow(r.kind, r.key, r.value, r.description, r.updated_at)
                    for r in conn.execute(query.order_by(space_env.c.kind, space_env.c.key))]

    def put_env(self, repo_id: int, kind: str, key: str, value: str, description: str | None,
                now: datetime) -> None:
        with self.engine.begin() as conn:
            columns = ["value", "updated_at"] + (["description"] if description is not None else [])
            upsert(conn, space_env, {"repo_id": repo_id, "kind": kind, "key": key, "value": value,
                                     "description": description, "updated_at": now},
                   ["repo_id", "kind", "key"], columns)

    def delete_env(self, repo_id: int, kind: str, key: str) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(delete(space_env).where(space_env.c.repo_id == repo_id, space_env.c.kind == kind,
                                                        space_env.c.key == key)).rowcount > 0
