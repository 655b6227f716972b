"""Queries for blob garbage collection: references, upload leases, and the locked delete.

The race GC must not lose (spec D3): an upload of an object whose old, unreferenced blob is about
to be swept. The uploader first *leases* the blob key (a committed row, ``touch_lease``), then
writes the blob, then records the reference. GC deletes a blob only inside a transaction that holds
that lease row locked and finds it stale and finds no reference. So either the lease came first
(GC sees it fresh and keeps the blob) or GC's transaction came first (the uploader's lease waits
for it, then the uploader writes the blob anew).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

from sqlalchemy import Connection, Engine, delete, select

from aicommons.db.tables import blob_leases, lfs_objects, repo_lfs_objects, repos
from aicommons.db.upsert import insert_ignore, upsert

EPOCH = datetime(1970, 1, 1)


class BlobGcStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    def touch_lease(self, key: str, now: datetime) -> None:
        """Protect ``key`` from GC for one grace period from ``now`` (waits while GC holds it)."""
        with self.engine.begin() as conn:
            upsert(conn, blob_leases, {"key": key, "touched_at": now}, keys=["key"], update=["touched_at"])

    def referenced_oids(self) -> set[str]:
        """Every LFS object some repo may read (uploaded through it or committed to it)."""
        with self.engine.connect() as conn:
            return set(conn.execute(select(repo_lfs_objects.c.oid).distinct()).scalars())

    def repo_storage_keys(self) -> Iterator[tuple[str, str]]:
        """(full id, storage key) of every repo, to mark what their git history points at."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(repos.c.type, repos.c.full_id, repos.c.storage_key).order_by(repos.c.id)).all()
        for row in rows:
            yield f"{row.type}:{row.full_id}", row.storage_key

    def repos_for_gc(self) -> Iterator[tuple[int, str, str]]:
        """(id, full id, storage key) of every repo."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(repos.c.id, repos.c.type, repos.c.full_id, repos.c.storage_key)
                                .order_by(repos.c.id)).all()
        for row in rows:
            yield row.id, f"{row.type}:{row.full_id}", row.storage_key

    def drop_stale_repo_objects(self, repo_id: int, keep: set[str], cutoff: datetime) -> int:
        """Forget the LFS objects once committed to ``repo_id`` that its history no longer points at
        (squashed or force-pushed away), recorded before ``cutoff``. Objects only uploaded (no
        ``filename`` yet) stay: a commit may still name them."""
        with self.engine.begin() as conn:
            rows = conn.execute(select(repo_lfs_objects.c.oid).where(
                repo_lfs_objects.c.repo_id == repo_id, repo_lfs_objects.c.pushed_at < cutoff,
                repo_lfs_objects.c.filename.is_not(None))).scalars().all()
            stale = [oid for oid in rows if oid not in keep]
            for start in range(0, len(stale), 500):
                conn.execute(delete(repo_lfs_objects).where(repo_lfs_objects.c.repo_id == repo_id,
                                                            repo_lfs_objects.c.oid.in_(stale[start:start + 500])))
            return len(stale)

    def delete_if_unreferenced(self, key: str, oid: str | None, cutoff: datetime,
                               delete_blob: Callable[[], None]) -> bool:
        """In one transaction holding the lease of ``key``: if the lease is older than ``cutoff``
        and no repo references ``oid``, call ``delete_blob`` and drop the object's rows."""
        with self.engine.begin() as conn:
            if not _stale_lease_locked(conn, key, cutoff):
                return False
            if oid is not None and conn.execute(select(repo_lfs_objects.c.oid).where(
                    repo_lfs_objects.c.oid == oid).limit(1)).first() is not None:
                conn.execute(delete(blob_leases).where(blob_leases.c.key == key))
                return False
            # Rows first: if a reference sneaks in (the foreign key refuses the delete), we fail
            # before the blob is touched. A failing blob delete rolls the rows back.
            if oid is not None:
                conn.execute(delete(lfs_objects).where(lfs_objects.c.oid == oid))
            conn.execute(delete(blob_leases).where(blob_leases.c.key == key))
            delete_blob()
            return True

    def delete_redundant(self, key: str, cutoff: datetime, delete_blob: Callable[[], None]) -> bool:
        """Delete the blob ``key`` (a whole-file copy the chunk store also holds) in one transaction
        holding its lease, if the lease is older than ``cutoff``; the object's rows stay."""
        with self.engine.begin() as conn:
            if not _stale_lease_locked(conn, key, cutoff):
                return False
            conn.execute(delete(blob_leases).where(blob_leases.c.key == key))
            delete_blob()
            return True

    def expire_leases(self, cutoff: datetime) -> int:
        with self.engine.begin() as conn:
            return conn.execute(delete(blob_leases).where(blob_leases.c.touched_at < cutoff)).rowcount

    def lfs_object_rows(self) -> dict[str, int]:
        """oid -> size of every stored-object row (to check them against the blob store)."""
        with self.engine.connect() as conn:
            return {r.oid: r.size for r in conn.execute(select(lfs_objects.c.oid, lfs_objects.c.size))}


def _stale_lease_locked(conn: Connection, key: str, cutoff: datetime) -> bool:
    """Lock the lease row of ``key`` (made if missing: a concurrent ``touch_lease`` now waits for
    this transaction) and say whether it is older than ``cutoff``."""
    insert_ignore(conn, blob_leases, {"key": key, "touched_at": EPOCH})
    touched = conn.execute(select(blob_leases.c.touched_at).where(blob_leases.c.key == key)
                           .with_for_update()).scalar_one()
    return bool(touched < cutoff)
