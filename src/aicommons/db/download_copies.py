"""Queries for the bucket's whole copies of chunk-stored files (``hub/bucket_copies.py``).

A copy is claimed (a row, not ``ready``) before its upload, so that one replica uploads it; it is
served once ``ready``. Taking a copy out of service moves its row to ``download_copy_deletions`` in
one transaction (no redirect from then on); its object is deleted once the row's ``due_at`` passed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Select, delete, exists, func, select, update

from aicommons.db.tables import download_copies, download_copy_deletions, repo_lfs_objects
from aicommons.db.upsert import insert_ignore

IN_LIST_LIMIT = 500
_IDENTITY = (download_copies.c.oid, download_copies.c.key, download_copies.c.size)  # what ``_retire`` takes


@dataclass(frozen=True)
class CopyRow:
    oid: str
    key: str
    size: int
    ready: bool
    created_at: datetime
    last_served_at: datetime


def _stale_claims(stale_before: datetime) -> Select[Any]:
    """Claims never made ready since ``stale_before`` (their uploader died or gave up)."""
    return select(*_IDENTITY).where(download_copies.c.ready.is_(False), download_copies.c.created_at < stale_before)


def _retire(conn: Connection, rows: Iterable[tuple[str, str, int]], due_at: datetime) -> int:
    """Move the rows (oid, key, size) to the deletions due at ``due_at``; returns how many moved."""
    moved = 0
    for oid, key, size in rows:
        gone = conn.execute(delete(download_copies).where(download_copies.c.oid == oid,
                                                          download_copies.c.key == key)).rowcount
        if gone:
            insert_ignore(conn, download_copy_deletions, {"key": key, "size": size, "due_at": due_at})
            moved += 1
    return moved


class DownloadCopyStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    def get(self, oid: str) -> CopyRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(download_copies).where(download_copies.c.oid == oid)).first()
        return CopyRow(**row._mapping) if row is not None else None

    def touch(self, oid: str, now: datetime, before: datetime) -> None:
        """Mark ``oid`` served at ``now`` unless that was recorded after ``before`` (one write per
        object per interval, whatever the number of downloads and replicas)."""
        with self.engine.begin() as conn:
            conn.execute(update(download_copies).where(download_copies.c.oid == oid,
                                                       download_copies.c.last_served_at < before)
                         .values(last_served_at=now))

    def claim(self, oid: str, key: str, size: int, now: datetime, *, max_bytes: int, evict_due: datetime,
              stale_before: datetime) -> bool:
        """Record a copy of ``oid`` about to be uploaded under ``key``, making room for it by taking the
        least recently served ready copies out of service (their objects due at ``evict_due``).
        False, and nothing changed, when ``oid`` has a copy (or one being made since ``stale_before``)
        or when the copies being made by others leave no room."""
        with self.engine.connect() as conn:  # committed only when the copy is claimed
            stale = conn.execute(_stale_claims(stale_before).where(download_copies.c.oid == oid)).all()
            _retire(conn, [tuple(r) for r in stale], now)
            if not insert_ignore(conn, download_copies, {"oid": oid, "key": key, "size": size, "ready": False,
                                                         "created_at": now, "last_served_at": now}):
                conn.commit()  # the stale claim's retirement
                return False
            total = conn.execute(select(func.coalesce(func.sum(download_copies.c.size), 0))).scalar_one()
            victims: list[tuple[str, str, int]] = []
            if total > max_bytes:
                candidates = conn.execute(
                    select(*_IDENTITY).where(download_copies.c.ready.is_(True))
                    .order_by(download_copies.c.last_served_at, download_copies.c.oid)).all()
                for victim in candidates:
                    if total <= max_bytes:
                        break
                    victims.append(tuple(victim))
                    total -= victim.size
            if total > max_bytes:  # copies in flight elsewhere hold the room: not now
                conn.rollback()
                return False
            _retire(conn, victims, evict_due)
            conn.commit()
            return True

    def mark_ready(self, oid: str, key: str) -> bool:
        """Serve the uploaded copy, if its row is still there and a repo still references ``oid``
        (a deletion meanwhile removed the row, or the last reference); False otherwise."""
        referenced = exists().where(repo_lfs_objects.c.oid == oid)
        with self.engine.begin() as conn:
            return bool(conn.execute(update(download_copies).where(
                download_copies.c.oid == oid, download_copies.c.key == key, referenced).values(ready=True)).rowcount)

    def abandon(self, oid: str, key: str) -> None:
        """Forget a claim whose upload failed (no object was published under ``key``)."""
        with self.engine.begin() as conn:
            conn.execute(delete(download_copies).where(download_copies.c.oid == oid, download_copies.c.key == key))

    def copies(self) -> list[CopyRow]:
        with self.engine.connect() as conn:
            return [CopyRow(**row._mapping) for row in conn.execute(select(download_copies)).all()]

    def retire(self, oids: Iterable[str], due_at: datetime) -> int:
        """Take the copies of ``oids`` out of service now; their objects are due at ``due_at``."""
        oids = list(oids)
        moved = 0
        with self.engine.begin() as conn:
            for start in range(0, len(oids), IN_LIST_LIMIT):
                rows = conn.execute(select(*_IDENTITY).where(
                    download_copies.c.oid.in_(oids[start:start + IN_LIST_LIMIT]))).all()
                moved += _retire(conn, [tuple(r) for r in rows], due_at)
        return moved

    def retire_unreferenced(self, due_at: datetime) -> int:
        """Take out of service the copies of objects no repo references any more (a repo deleted,
        LFS files permanently deleted)."""
        with self.engine.begin() as conn:
            rows = conn.execute(select(*_IDENTITY).where(
                ~exists().where(repo_lfs_objects.c.oid == download_copies.c.oid))).all()
            return _retire(conn, [tuple(r) for r in rows], due_at)

    def retire_stale(self, stale_before: datetime, now: datetime) -> int:
        """Claims never finished (their replica died mid-upload)."""
        with self.engine.begin() as conn:
            rows = conn.execute(_stale_claims(stale_before)).all()
            return _retire(conn, [tuple(r) for r in rows], now)

    def due(self, now: datetime) -> list[str]:
        """Keys of retired copies whose objects may be deleted now."""
        with self.engine.connect() as conn:
            return list(conn.execute(select(download_copy_deletions.c.key)
                                     .where(download_copy_deletions.c.due_at <= now)).scalars())

    def deleted(self, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(download_copy_deletions).where(download_copy_deletions.c.key == key))

    def totals(self) -> tuple[int, int, int]:
        """(copies, their bytes, bytes retired and not deleted yet)."""
        with self.engine.connect() as conn:
            count, size = conn.execute(select(func.count(), func.coalesce(func.sum(download_copies.c.size), 0))).one()
            retired = conn.execute(select(func.coalesce(func.sum(download_copy_deletions.c.size), 0))).scalar_one()
        return int(count), int(size), int(retired)

