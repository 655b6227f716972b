"""Queries for storage accounting and quotas (``hub/storage_usage.py``): what each repo references,
the stored results of the accounting job, the live figure a quota is checked against, and quotas."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Row, delete, exists, func, select

from aicommons.db.tables import (
    accounts,
    repo_heads,
    repo_lfs_objects,
    repos,
    storage_quotas,
    storage_reservations,
    storage_usage,
    xet_files,
)
from aicommons.db.upsert import upsert

IN_LIST_LIMIT = 1000


@dataclass(frozen=True)
class RepoUsage:
    repo_id: int
    owner_id: int
    git_bytes: int
    lfs_bytes: int  # LFS objects the repo's history references, whole
    pending_bytes: int  # LFS objects uploaded to the repo and not committed (yet)
    physical_bytes: int  # git bytes plus its share of the stored objects
    lfs_files: int
    computed_at: datetime

    @property
    def logical_bytes(self) -> int:
        return self.git_bytes + self.lfs_bytes


@dataclass(frozen=True)
class RepoForUsage:
    id: int
    owner_id: int
    label: str  # "model:owner/name"
    storage_key: str


@dataclass(frozen=True)
class Holding:
    oid: str
    size: int
    committed: bool


class StorageUsageStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    # --- what the accounting job reads ---------------------------------------------------------

    def repos(self) -> list[RepoForUsage]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(repos.c.id, repos.c.owner_id, repos.c.type, repos.c.full_id,
                                       repos.c.storage_key).order_by(repos.c.id)).all()
        return [RepoForUsage(r.id, r.owner_id, f"{r.type}:{r.full_id}", r.storage_key) for r in rows]

    def holdings(self) -> dict[int, list[Holding]]:
        """Per repo, the LFS objects it holds: committed (a commit or push named them; GC drops
        those its rewritten history no longer points at) or only uploaded."""
        out: dict[int, list[Holding]] = {}
        query = select(repo_lfs_objects.c.repo_id, repo_lfs_objects.c.oid, repo_lfs_objects.c.size,
                       repo_lfs_objects.c.filename)
        with self.engine.connect() as conn:
            for r in conn.execute(query):
                out.setdefault(r.repo_id, []).append(Holding(r.oid, int(r.size), r.filename is not None))
        return out

    # --- the job's results ---------------------------------------------------------------------

    def replace_all(self, rows: list[RepoUsage]) -> None:
        """Store one run's results; rows of repos not in ``rows`` (deleted since) go."""
        with self.engine.begin() as conn:
            kept = {r.repo_id for r in rows}
            stale = [rid for rid in conn.execute(select(storage_usage.c.repo_id)).scalars() if rid not in kept]
            for i in range(0, len(stale), IN_LIST_LIMIT):
                conn.execute(delete(storage_usage).where(storage_usage.c.repo_id.in_(stale[i:i + IN_LIST_LIMIT])))
            for r in rows:
                upsert(conn, storage_usage, {
                    "repo_id": r.repo_id, "owner_id": r.owner_id, "git_bytes": r.git_bytes,
                    "lfs_bytes": r.lfs_bytes, "pending_bytes": r.pending_bytes,
                    "physical_bytes": r.physical_bytes, "lfs_files": r.lfs_files, "computed_at": r.computed_at,
                }, keys=["repo_id"], update=["owner_id", "git_bytes", "lfs_bytes", "pending_bytes", "physical_bytes",
                                             "lfs_files", "computed_at"])

    def for_repos(self, repo_ids: Iterable[int]) -> dict[int, RepoUsage]:
        wanted = sorted(set(repo_ids))
        out: dict[int, RepoUsage] = {}
        with self.engine.connect() as conn:
            for i in range(0, len(wanted), IN_LIST_LIMIT):
                rows = conn.execute(select(storage_usage).where(storage_usage.c.repo_id.in_(wanted[i:i + IN_LIST_LIMIT])))
                out.update((r.repo_id, _usage(r)) for r in rows)
        return out

    def for_owner(self, owner_id: int | None) -> list[tuple[RepoUsage, str]]:
        """Stored rows (all owners' when ``owner_id`` is None) with each repo's "type:full id",
        biggest first."""
        query = (select(storage_usage, repos.c.type, repos.c.full_id)
                 .join(repos, repos.c.id == storage_usage.c.repo_id)
                 .order_by(storage_usage.c.physical_bytes.desc(), repos.c.id))
        if owner_id is not None:
            query = query.where(repos.c.owner_id == owner_id)
        with self.engine.connect() as conn:
            return [(_usage(r), f"{r.type}:{r.full_id}") for r in conn.execute(query)]

    # --- the live figure quotas are checked against ----------------------------------------------

    def live_usage(self, owner_id: int) -> int:
        """The owner's bytes now: every LFS object its repos hold (committed or only uploaded: both
        take space until expiry) plus each repo's git folder as last measured (by the accounting
        job, else with its head). Two indexed aggregates, no scan of the store."""
        with self.engine.connect() as conn:
            return self._live_usage(conn, owner_id)

    def reserve(self, owner_id: int, incoming: int, quota: int, now: datetime, expires_at: datetime) -> tuple[int | None, int]:
        """Atomically (one write transaction, the owner's row locked on PostgreSQL): if the owner's
        live usage plus the unexpired reservations of its uploads in flight leave room for
        ``incoming`` bytes, reserve them. Returns (the reservation's id or None, the bytes counted)."""
        with self.engine.begin() as conn:
            conn.execute(select(accounts.c.id).where(accounts.c.id == owner_id).with_for_update())
            reserved = conn.execute(select(func.coalesce(func.sum(storage_reservations.c.bytes), 0)).where(
                storage_reservations.c.owner_id == owner_id, storage_reservations.c.expires_at > now)).scalar_one()
            used = self._live_usage(conn, owner_id) + int(reserved)
            if used + incoming > quota:
                return None, used
            result = conn.execute(storage_reservations.insert().values(owner_id=owner_id, bytes=incoming,
                                                                       expires_at=expires_at))
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0]), used

    def release(self, reservation_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(storage_reservations).where(storage_reservations.c.id == reservation_id))

    def prune_reservations(self, now: datetime) -> int:
        """Delete reservations whose upload never ended (a replica that died mid-upload)."""
        with self.engine.begin() as conn:
            return conn.execute(delete(storage_reservations).where(storage_reservations.c.expires_at <= now)).rowcount

    @staticmethod
    def _live_usage(conn: Connection, owner_id: int) -> int:
        lfs = (select(func.coalesce(func.sum(repo_lfs_objects.c.size), 0))
               .join(repos, repos.c.id == repo_lfs_objects.c.repo_id).where(repos.c.owner_id == owner_id))
        git = (select(func.coalesce(func.sum(func.coalesce(storage_usage.c.git_bytes, repo_heads.c.git_bytes, 0)), 0))
               .select_from(repos)
               .outerjoin(storage_usage, storage_usage.c.repo_id == repos.c.id)
               .outerjoin(repo_heads, repo_heads.c.repo_id == repos.c.id)
               .where(repos.c.owner_id == owner_id))
        return int(conn.execute(lfs).scalar_one()) + int(conn.execute(git).scalar_one())

    # --- uploads never committed (hub/lifecycle.py) ----------------------------------------------

    def uncommitted_before(self, cutoff: datetime) -> dict[int, tuple[str, list[tuple[str, int]]]]:
        """repo id -> (its storage key, [(oid, size)]) of the LFS objects uploaded to it before
        ``cutoff`` that no commit or push named since."""
        out: dict[int, tuple[str, list[tuple[str, int]]]] = {}
        query = (select(repo_lfs_objects.c.repo_id, repos.c.storage_key, repo_lfs_objects.c.oid, repo_lfs_objects.c.size)
                 .join(repos, repos.c.id == repo_lfs_objects.c.repo_id)
                 .where(repo_lfs_objects.c.filename.is_(None), repo_lfs_objects.c.pushed_at < cutoff)
                 .order_by(repo_lfs_objects.c.repo_id, repo_lfs_objects.c.oid))
        with self.engine.connect() as conn:
            for r in conn.execute(query):
                out.setdefault(r.repo_id, (r.storage_key, []))[1].append((r.oid, int(r.size)))
        return out

    def expire_uncommitted(self, repo_id: int, oids: list[str], cutoff: datetime) -> int:
        """Forget those of ``oids`` the repo still holds uncommitted since before ``cutoff`` (a
        commit that named one meanwhile keeps it)."""
        done = 0
        with self.engine.begin() as conn:
            for i in range(0, len(oids), IN_LIST_LIMIT):
                done += conn.execute(delete(repo_lfs_objects).where(
                    repo_lfs_objects.c.repo_id == repo_id, repo_lfs_objects.c.oid.in_(oids[i:i + IN_LIST_LIMIT]),
                    repo_lfs_objects.c.filename.is_(None), repo_lfs_objects.c.pushed_at < cutoff)).rowcount
        return done

    def unchunked_objects(self) -> list[tuple[int, str]]:
        """(a repo holding it, oid) of every LFS object not in the chunk store: what a hub from
        before the chunk store (or with chunking off) keeps whole."""
        query = (select(func.min(repo_lfs_objects.c.repo_id), repo_lfs_objects.c.oid)
                 .where(~exists().where(xet_files.c.oid == repo_lfs_objects.c.oid))
                 .group_by(repo_lfs_objects.c.oid).order_by(func.min(repo_lfs_objects.c.pushed_at)))
        with self.engine.connect() as conn:
            return [(int(repo_id), oid) for repo_id, oid in conn.execute(query)]

    # --- quotas -----------------------------------------------------------------------------------

    def quota(self, account_id: int) -> tuple[bool, int | None]:
        """(whether a quota was set for the account, its bytes: None = unlimited)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(storage_quotas.c.quota_bytes)
                               .where(storage_quotas.c.account_id == account_id)).first()
        return (False, None) if row is None else (True, None if row.quota_bytes is None else int(row.quota_bytes))

    def set_quota(self, account_id: int, quota_bytes: int | None, now: datetime) -> None:
        with self.engine.begin() as conn:
            upsert(conn, storage_quotas, {"account_id": account_id, "quota_bytes": quota_bytes, "updated_at": now},
                   keys=["account_id"], update=["quota_bytes", "updated_at"])

    def clear_quota(self, account_id: int) -> bool:
        with self.engine.begin() as conn:
            return bool(conn.execute(delete(storage_quotas).where(storage_quotas.c.account_id == account_id)).rowcount)

    def owner_names(self, account_ids: Iterable[int]) -> dict[int, str]:
        wanted = sorted(set(account_ids))
        out: dict[int, str] = {}
        with self.engine.connect() as conn:
            for i in range(0, len(wanted), IN_LIST_LIMIT):
                out.update((r.id, r.name) for r in conn.execute(
                    select(accounts.c.id, accounts.c.name).where(accounts.c.id.in_(wanted[i:i + IN_LIST_LIMIT]))))
        return out


def _usage(r: Row[Any]) -> RepoUsage:
    return RepoUsage(r.repo_id, r.owner_id, int(r.git_bytes), int(r.lfs_bytes), int(r.pending_bytes),
                     int(r.physical_bytes), int(r.lfs_files), r.computed_at)
