"""Site-wide totals for operators (``/metrics``, the admin views): a handful of aggregate queries."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, select

from aicommons.db.tables import accounts, file_scans, lfs_objects, repos


class StatsStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    def totals(self) -> dict[str, Any]:
        with self.engine.connect() as conn:
            repo_counts: dict[str, int] = dict(conn.execute(select(repos.c.type, func.count()).group_by(repos.c.type)).all())
            account_counts: dict[str, int] = dict(conn.execute(select(accounts.c.kind, func.count()).group_by(accounts.c.kind)).all())
            objects, object_bytes = conn.execute(
                select(func.count(), func.coalesce(func.sum(lfs_objects.c.size), 0))).one()
            scans: dict[str, int] = dict(conn.execute(select(file_scans.c.status, func.count()).group_by(file_scans.c.status)).all())
        # int(): PostgreSQL's sum(bigint) is numeric, which arrives as a Decimal.
        return {"repos": {k: int(v) for k, v in repo_counts.items()},
                "accounts": {k: int(v) for k, v in account_counts.items()},
                "lfs_objects": int(objects), "lfs_bytes": int(object_bytes),
                "file_scans": {k: int(v) for k, v in scans.items()}}
