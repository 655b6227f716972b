"""The admin dashboard's pre-aggregated figures (``stat_rollups``) and the few aggregate queries the
periodic rollup job runs to make them (``hub/dashboard.py``). Page views read only ``stat_rollups``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Engine, delete, func, insert, select

from aicommons.db.tables import accounts, file_scans, job_queue, lfs_objects, repo_heads, repos, stat_rollups
from aicommons.db.upsert import upsert_add


@dataclass(frozen=True)
class Point:
    key: str
    at: datetime
    value: float


@dataclass(frozen=True)
class RepoSize:
    repo_id: int
    full_id: str
    type: str
    owner: str
    bytes: int


class RollupStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    def add(self, series: str, points: list[tuple[str, datetime, float]]) -> None:
        """Add to counters (requests per minute, failures per hour...): summed with what is there."""
        rows = [{"series": series, "key": k, "at": at, "value": v} for k, at, v in points]
        with self.engine.begin() as conn:
            upsert_add(conn, stat_rollups, rows, ["series", "key", "at"], "value")

    def put(self, series: str, at: datetime, values: dict[str, float]) -> None:
        """Record a snapshot taken at ``at`` (replacing one of the same series and time)."""
        with self.engine.begin() as conn:
            conn.execute(delete(stat_rollups).where(stat_rollups.c.series == series, stat_rollups.c.at == at))
            if values:
                conn.execute(insert(stat_rollups), [{"series": series, "key": k, "at": at, "value": v}
                                                    for k, v in values.items()])

    def since(self, series: str, since: datetime) -> list[Point]:
        query = (select(stat_rollups.c.key, stat_rollups.c.at, stat_rollups.c.value)
                 .where(stat_rollups.c.series == series, stat_rollups.c.at >= since)
                 .order_by(stat_rollups.c.at, stat_rollups.c.key))
        with self.engine.connect() as conn:
            return [Point(k, at, float(v)) for k, at, v in conn.execute(query)]

    def latest(self, series: str) -> list[Point]:
        """The newest snapshot of a series (every key recorded at its latest time)."""
        with self.engine.connect() as conn:
            at = conn.execute(select(func.max(stat_rollups.c.at)).where(stat_rollups.c.series == series)).scalar()
            if at is None:
                return []
            query = (select(stat_rollups.c.key, stat_rollups.c.value)
                     .where(stat_rollups.c.series == series, stat_rollups.c.at == at))
            return [Point(k, at, float(v)) for k, v in conn.execute(query)]

    def at_or_before(self, series: str, when: datetime) -> dict[str, float]:
        """The snapshot of a series taken last at or before ``when`` (empty: none that old), else the oldest."""
        with self.engine.connect() as conn:
            at = conn.execute(select(func.max(stat_rollups.c.at))
                              .where(stat_rollups.c.series == series, stat_rollups.c.at <= when)).scalar()
            if at is None:
                at = conn.execute(select(func.min(stat_rollups.c.at)).where(stat_rollups.c.series == series)).scalar()
            if at is None:
                return {}
            query = (select(stat_rollups.c.key, stat_rollups.c.value)
                     .where(stat_rollups.c.series == series, stat_rollups.c.at == at))
            return {k: float(v) for k, v in conn.execute(query)}

    def prune(self, series: str, before: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(stat_rollups).where(stat_rollups.c.series == series, stat_rollups.c.at < before))

    # What the periodic job aggregates (a few queries, once per rollup interval).

    def repo_sizes(self) -> list[RepoSize]:
        """Each repo's stored size: its head's files (large files at their full size) as last stored."""
        query = (select(repos.c.id, repos.c.full_id, repos.c.type, repos.c.namespace,
                        func.coalesce(repo_heads.c.used_storage, 0))
                 .outerjoin(repo_heads, repo_heads.c.repo_id == repos.c.id))
        with self.engine.connect() as conn:
            return [RepoSize(i, f, t, o, int(b)) for i, f, t, o, b in conn.execute(query)]

    def large_file_bytes(self) -> int:
        """Bytes of large-file objects stored, each once however many repos use it."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.coalesce(func.sum(lfs_objects.c.size), 0))).scalar() or 0)

    def scan_verdicts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {s: int(n) for s, n in conn.execute(select(file_scans.c.status, func.count())
                                                       .group_by(file_scans.c.status))}

    def jobs_waiting(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {q: int(n) for q, n in conn.execute(select(job_queue.c.queue, func.count())
                                                       .group_by(job_queue.c.queue))}

    def signups_by_day(self, since: date) -> dict[date, int]:
        day = func.date(accounts.c.created_at)  # SQLite: a "YYYY-MM-DD" string; PostgreSQL: a date
        query = (select(day, func.count()).where(accounts.c.kind == "user", accounts.c.created_at >= since)
                 .group_by(day))
        with self.engine.connect() as conn:
            return {(d if isinstance(d, date) else date.fromisoformat(str(d))): int(n) for d, n in conn.execute(query)}
