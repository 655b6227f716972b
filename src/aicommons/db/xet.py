"""Queries on ``xet_files``: which LFS object (sha256) each uploaded Xet file was rebuilt into."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from aicommons.db.tables import xet_files
from aicommons.db.upsert import insert_ignore


@dataclass(frozen=True)
class XetFileRow:
    file_hash: str
    oid: str
    size: int
    shard: str


class XetFileStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    def get(self, file_hash: str) -> XetFileRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(xet_files).where(xet_files.c.file_hash == file_hash)).first()
        return XetFileRow(row.file_hash, row.oid, row.size, row.shard) if row else None

    def for_oid(self, oid: str) -> list[XetFileRow]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(xet_files).where(xet_files.c.oid == oid)).all()
        return [XetFileRow(r.file_hash, r.oid, r.size, r.shard) for r in rows]

    def record(self, file_hash: str, oid: str, size: int, shard: str, now: datetime) -> None:
        """Remember the mapping; the first shard that described a file stays its shard. The LFS
        object row must exist already (``RepoStore.add_lfs_object``)."""
        with self.engine.begin() as conn:
            insert_ignore(conn, xet_files, {"file_hash": file_hash, "oid": oid, "size": size, "shard": shard,
                                            "created_at": now})
