"""The state of each dataset's Parquet conversion (``parquet_conversions``; ``hub/parquet_export.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update

from aicommons.db.tables import parquet_branch_conversions, parquet_conversions
from aicommons.db.upsert import upsert


def _unfinished(table: Any) -> Any:
    """Rows whose job has work left: a conversion queued (stage 1), or one recorded whose search
    index and statistics are still to be built (stage 2, ``result["extras"] == "pending"``)."""
    return (table.c.state == "pending") | (table.c.state == "done")


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

    def unfinished(self) -> list[tuple[int, None, Conversion]]:
        """(repo id, None, conversion) of every conversion with a stage still to run (``resume``)."""
        t = parquet_conversions
        with self.engine.connect() as conn:
            rows = conn.execute(select(t).where(_unfinished(t))).all()
        found = [Conversion(**row._mapping) for row in rows]
        return [(c.repo_id, None, c) for c in found if _has_work(c)]

    def update_result(self, repo_id: int, source_sha: str, state: str, converted_sha: str | None, now: datetime, *,
                      result: dict | None, new_state: str | None = None, error: str | None = None) -> bool:
        """Replace the result of the conversion of ``source_sha`` while it is still in ``state``
        with ``converted_sha`` (the follow-up job's search index and statistics; a resumed job's
        count): False when a newer commit or another run changed it since."""
        t = parquet_conversions
        return _update_result(self.engine, t, [t.c.repo_id == repo_id, t.c.source_sha == source_sha], state,
                              converted_sha, {"result": result, "updated_at": now}, new_state, error)


def _update_result(engine: Engine, t: Any, where: list[Any], state: str, converted_sha: str | None,
                   values: dict[str, Any], new_state: str | None, error: str | None) -> bool:
    where = [*where, t.c.state == state]
    if converted_sha is not None:
        where.append(t.c.converted_sha == converted_sha)
    if new_state is not None:
        values = {**values, "state": new_state, "error": error}
    with engine.begin() as conn:
        done = conn.execute(update(t).where(*where).values(**values))
    return done.rowcount == 1


def _has_work(c: Conversion) -> bool:
    if c.state == "pending":
        return bool(c.source_sha)
    return c.state == "done" and (c.result or {}).get("extras") == "pending"


class ParquetBranchStore:
    """The branches a dataset's owner opted into (``parquet_branch_conversions``), each with the state
    of its conversion, as ``ParquetConversionStore`` keeps the default branch's."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def _where(self, repo_id: int, branch: str) -> tuple[Any, Any]:
        t = parquet_branch_conversions
        return (t.c.repo_id == repo_id, t.c.branch == branch)

    @staticmethod
    def _conversion(row: Any) -> Conversion:
        fields = dict(row._mapping)
        fields.pop("branch")
        return Conversion(**fields)

    def branches(self, repo_id: int) -> dict[str, Conversion]:
        t = parquet_branch_conversions
        with self.engine.connect() as conn:
            rows = conn.execute(select(t).where(t.c.repo_id == repo_id).order_by(t.c.branch)).all()
        return {row.branch: self._conversion(row) for row in rows}

    def set_branches(self, repo_id: int, branches: list[str], now: datetime) -> None:
        """Opt exactly ``branches`` in: new ones start unconverted, dropped ones are forgotten."""
        t = parquet_branch_conversions
        with self.engine.begin() as conn:
            current = set(conn.execute(select(t.c.branch).where(t.c.repo_id == repo_id)).scalars())
            gone = current - set(branches)
            if gone:
                conn.execute(delete(t).where(t.c.repo_id == repo_id, t.c.branch.in_(gone)))
            for branch in branches:
                if branch not in current:
                    conn.execute(insert(t).values(repo_id=repo_id, branch=branch, source_sha="", state="pending",
                                                  partial=False, updated_at=now))

    def get(self, repo_id: int, branch: str) -> Conversion | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(parquet_branch_conversions).where(*self._where(repo_id, branch))).first()
        return self._conversion(row) if row is not None else None

    def all(self) -> list[Conversion]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(parquet_branch_conversions)).all()
        return [self._conversion(row) for row in rows]

    def queued(self, repo_id: int, branch: str, source_sha: str, now: datetime) -> bool:
        """``source_sha`` is the branch's commit to convert now; False when the branch is not opted in."""
        with self.engine.begin() as conn:
            done = conn.execute(update(parquet_branch_conversions).where(*self._where(repo_id, branch)).values(
                source_sha=source_sha, state="pending", converted_sha=None, partial=False, result=None, error=None,
                updated_at=now))
        return done.rowcount == 1

    def finished(self, repo_id: int, branch: str, source_sha: str, state: str, now: datetime, *,
                 converted_sha: str | None = None, partial: bool = False, result: dict | None = None,
                 error: str | None = None) -> bool:
        t = parquet_branch_conversions
        with self.engine.begin() as conn:
            done = conn.execute(update(t).where(*self._where(repo_id, branch), t.c.source_sha == source_sha).values(
                state=state, converted_sha=converted_sha, partial=partial, result=result, error=error,
                updated_at=now))
        return done.rowcount == 1

    def unfinished(self) -> list[tuple[int, str, Conversion]]:
        t = parquet_branch_conversions
        with self.engine.connect() as conn:
            rows = conn.execute(select(t).where(_unfinished(t))).all()
        found = [(row.branch, self._conversion(row)) for row in rows]
        return [(c.repo_id, branch, c) for branch, c in found if _has_work(c)]

    def update_result(self, repo_id: int, branch: str, source_sha: str, state: str, converted_sha: str | None,
                      now: datetime, *, result: dict | None, new_state: str | None = None,
                      error: str | None = None) -> bool:
        t = parquet_branch_conversions
        return _update_result(self.engine, t, [*self._where(repo_id, branch), t.c.source_sha == source_sha], state,
                              converted_sha, {"result": result, "updated_at": now}, new_state, error)
