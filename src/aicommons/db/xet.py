"""Queries on ``xet_files``: which LFS object (sha256) each uploaded Xet file was rebuilt into."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, bindparam, delete, select, update

from aicommons.db.repos import RepoStore
from aicommons.db.tables import accounts, repos, tokens, xet_dedup_chunks, xet_files, xet_usage, xet_verified_xorbs
from aicommons.db.upsert import insert_ignore, upsert

# Built once: every file download looks its object up here, and constructing a select costs about
# twice what executing it does on SQLite (~100 µs against ~40, measured).
_FILES_FOR_OID = (select(xet_files).where(xet_files.c.oid == bindparam("oid"))
                  .order_by(xet_files.c.created_at, xet_files.c.file_hash))

IN_LIST_LIMIT = 1000  # bound parameters per query, well under SQLite's and PostgreSQL's limits


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
        """The files recorded for ``oid``, first recorded first (as ``hashes_for_oids`` picks)."""
        with self.engine.connect() as conn:
            rows = conn.execute(_FILES_FOR_OID, {"oid": oid}).all()
        return [XetFileRow(r.file_hash, r.oid, r.size, r.shard) for r in rows]

    def all_rows(self) -> list[XetFileRow]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(xet_files).order_by(xet_files.c.file_hash)).all()
        return [XetFileRow(r.file_hash, r.oid, r.size, r.shard) for r in rows]

    def hashes_for_oids(self, oids: Iterable[str]) -> dict[str, str]:
        """``{oid: file hash}`` for those of ``oids`` that were uploaded through Xet: one query per
        1000 oids (a tree page lists up to 1000 files). Should an object have been described by two
        file hashes, the first recorded one wins, so that every listing shows the same."""
        wanted = sorted(set(oids))
        out: dict[str, str] = {}
        with self.engine.connect() as conn:
            for i in range(0, len(wanted), IN_LIST_LIMIT):
                query = (select(xet_files.c.oid, xet_files.c.file_hash)
                         .where(xet_files.c.oid.in_(wanted[i:i + IN_LIST_LIMIT]))
                         .order_by(xet_files.c.created_at.desc(), xet_files.c.file_hash.desc()))
                out.update((row.oid, row.file_hash) for row in conn.execute(query))  # newest first: oldest stays
        return out

    def get_many(self, file_hashes: Iterable[str]) -> dict[str, XetFileRow]:
        """``get`` of each hash that is recorded, one query per 1000."""
        wanted = sorted(set(file_hashes))
        with self.engine.connect() as conn:
            rows = [row for i in range(0, len(wanted), IN_LIST_LIMIT) for row in conn.execute(
                select(xet_files).where(xet_files.c.file_hash.in_(wanted[i:i + IN_LIST_LIMIT])))]
        return {r.file_hash: XetFileRow(r.file_hash, r.oid, r.size, r.shard) for r in rows}

    def record_all(self, repo_id: int, files: Iterable[tuple[str, str, int, bool]], shard: str, now: datetime) -> None:
        """For each (file hash, oid, size, replace) of one shard: the LFS object, granted to repo
        ``repo_id`` (``RepoStore.add_lfs_object``), and ``record`` of the file, all in one
        transaction (one commit per shard, not two per file)."""
        files = list(files)
        with self.engine.begin() as conn:
            RepoStore.add_lfs_objects_in(conn, repo_id, ((oid, size) for _, oid, size, _ in files), now)
            for file_hash, oid, size, replace in files:
                self._record(conn, file_hash, oid, size, shard, now, replace)

    def record(self, file_hash: str, oid: str, size: int, shard: str, now: datetime, replace: bool = False) -> None:
        """Remember the mapping; the first shard that described a file stays its shard, unless
        ``replace`` (its old shard's chunks were collected and this one was verified in full). The
        LFS object row must exist already (``RepoStore.add_lfs_object``)."""
        with self.engine.begin() as conn:
            self._record(conn, file_hash, oid, size, shard, now, replace)

    @staticmethod
    def _record(conn: Connection, file_hash: str, oid: str, size: int, shard: str, now: datetime,
                replace: bool) -> None:
        row = {"file_hash": file_hash, "oid": oid, "size": size, "shard": shard, "created_at": now}
        if replace:
            upsert(conn, xet_files, row, keys=["file_hash"], update=["shard", "created_at"])
        else:
            insert_ignore(conn, xet_files, row)


class XetDedupStore:
    """The global dedup index: eligible chunk hash (printed hex) -> (xorb hash, shard sha256)."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def add(self, rows: list[tuple[str, str, str]], now: datetime) -> None:
        """Index ``(chunk, xorb, shard)`` rows; a chunk indexed already moves to the newest upload
        that used it (whose xorbs are what the next revision most likely shares)."""
        with self.engine.begin() as conn:
            for c, x, s in rows:
                upsert(conn, xet_dedup_chunks, {"chunk_hash": c, "xorb_hash": x, "shard": s, "created_at": now},
                       keys=["chunk_hash"], update=["xorb_hash", "shard", "created_at"])

    def lookup(self, chunk_hash: str) -> tuple[str, str] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(xet_dedup_chunks.c.xorb_hash, xet_dedup_chunks.c.shard)
                               .where(xet_dedup_chunks.c.chunk_hash == chunk_hash)).first()
        return (row.xorb_hash, row.shard) if row else None

    def forget_xorbs(self, xorb_hashes: Iterable[str]) -> None:
        """Drop the entries of xorbs that garbage collection deleted."""
        wanted = sorted(set(xorb_hashes))
        with self.engine.begin() as conn:
            for i in range(0, len(wanted), IN_LIST_LIMIT):
                conn.execute(delete(xet_dedup_chunks).where(xet_dedup_chunks.c.xorb_hash.in_(wanted[i:i + IN_LIST_LIMIT])))


class XetGrantStore:
    """What a Xet token names, looked up on each CAS request: the repo (by its never-reused
    storage key) and the credential that minted the token, which may have been revoked since."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def repo_id(self, storage_key: str) -> int | None:
        with self.engine.connect() as conn:
            return conn.execute(select(repos.c.id).where(repos.c.storage_key == storage_key)).scalar()

    def token_hash(self, token_id: int, user_id: int) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(tokens.c.token_hash).where(tokens.c.id == token_id,
                                                                  tokens.c.user_id == user_id)).scalar()

    def account_exists(self, account_id: int) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(accounts.c.id).where(accounts.c.id == account_id)).first() is not None


class VerifiedXorbStore:
    """Xorbs some replica verified and stored lately, shared by every replica (xet/service.py)."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def add(self, xorb_hex: str, now: datetime, forget_before: datetime, conn: Connection | None = None) -> None:
        """Record a xorb as verified now (in ``conn``'s transaction if given), forgetting old ones."""
        if conn is None:
            with self.engine.begin() as conn:
                self.add(xorb_hex, now, forget_before, conn)
            return
        upsert(conn, xet_verified_xorbs, {"xorb_hash": xorb_hex, "verified_at": now}, ["xorb_hash"],
               ["verified_at"])
        conn.execute(delete(xet_verified_xorbs).where(xet_verified_xorbs.c.verified_at < forget_before))

    def verified_at(self, xorb_hex: str) -> datetime | None:
        with self.engine.connect() as conn:
            return conn.execute(select(xet_verified_xorbs.c.verified_at).where(
                xet_verified_xorbs.c.xorb_hash == xorb_hex)).scalar()


class XetUsageStore:
    """Per-account, per-hour Xet counters, shared by every replica."""

    KEEP_HOURS = 48

    def __init__(self, engine: Engine):
        self.engine = engine

    def _row(self, conn: Connection, account_id: int, hour: int) -> None:
        if insert_ignore(conn, xet_usage, {"account_id": account_id, "hour": hour, "received_bytes": 0,
                                           "rebuilt_bytes": 0}):
            conn.execute(delete(xet_usage).where(xet_usage.c.account_id == account_id,
                                                 xet_usage.c.hour < hour - self.KEEP_HOURS))

    def add_received(self, account_id: int, hour: int, n: int,
                     then: Callable[[Connection], object] | None = None) -> None:
        """Count ``n`` bytes received; ``then(conn)`` runs in the same transaction (one commit)."""
        with self.engine.begin() as conn:
            self._row(conn, account_id, hour)
            conn.execute(update(xet_usage).where(xet_usage.c.account_id == account_id, xet_usage.c.hour == hour)
                         .values(received_bytes=xet_usage.c.received_bytes + n))
            if then is not None:
                then(conn)

    def reserve_rebuild(self, account_id: int, hour: int, n: int, allowance: int, factor: int) -> bool:
        """Count ``n`` rebuilt bytes if the hour's total stays within ``allowance`` plus ``factor``
        times the bytes received; one conditional UPDATE, so two replicas cannot both squeeze in."""
        with self.engine.begin() as conn:
            self._row(conn, account_id, hour)
            done = conn.execute(
                update(xet_usage)
                .where(xet_usage.c.account_id == account_id, xet_usage.c.hour == hour,
                       xet_usage.c.rebuilt_bytes + n <= allowance + factor * xet_usage.c.received_bytes)
                .values(rebuilt_bytes=xet_usage.c.rebuilt_bytes + n))
            return done.rowcount == 1

    def release_rebuild(self, account_id: int, hour: int, n: int) -> None:
        """Give back a reservation whose shard was refused after all."""
        with self.engine.begin() as conn:
            conn.execute(update(xet_usage).where(xet_usage.c.account_id == account_id, xet_usage.c.hour == hour)
                         .values(rebuilt_bytes=xet_usage.c.rebuilt_bytes - n))
