"""Rate-limit state shared by all replicas, in the metadata database.

One admission is one short write transaction (SQLite: the write lock taken at BEGIN; PostgreSQL:
the principal's bucket row locked with FOR UPDATE), so two replicas admitting requests of the same
principal at the same moment can neither both spend the same tokens nor both take the last slot.
In-flight slots are leases that expire, so a replica that dies cannot hold them forever.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from aicommons.db.tables import inflight_leases, rate_buckets
from aicommons.db.upsert import insert_ignore


@dataclass(frozen=True)
class Admission:
    lease: str | None  # None: refused
    refused_for: str | None  # "concurrency" | "tokens" | None
    wait_s: float  # when refused for tokens: seconds until the tokens would be there
    tokens_left: float
    full_in_s: float  # seconds until the bucket is full again


class SharedRateLimitStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    def _locked_level(self, conn: Connection, key: str, per_minute: int, now: float) -> float:
        """The bucket's refilled level, with its row locked until the transaction ends."""
        insert_ignore(conn, rate_buckets, {"key": key, "tokens": float(per_minute), "updated_at": now})
        row = conn.execute(select(rate_buckets).where(rate_buckets.c.key == key).with_for_update()).one()
        return min(float(per_minute), float(row.tokens) + max(0.0, now - float(row.updated_at)) * per_minute / 60.0)

    def admit(self, key: str, cost: int, per_minute: int, max_concurrent: int, now: float,
              lease_ttl: float) -> Admission:
        rate = per_minute / 60.0
        with self.engine.begin() as conn:
            level = self._locked_level(conn, key, per_minute, now)
            full_in = (per_minute - level) / rate if rate > 0 else 0.0
            conn.execute(delete(inflight_leases).where(inflight_leases.c.key == key,
                                                       inflight_leases.c.expires_at < now))
            held = conn.execute(select(func.count()).where(inflight_leases.c.key == key)).scalar_one()
            if held >= max_concurrent:
                return Admission(None, "concurrency", 0.0, level, full_in)
            if level < cost:
                wait = (cost - level) / rate if rate > 0 else float("inf")
                return Admission(None, "tokens", wait, level, full_in)
            level -= cost
            conn.execute(update(rate_buckets).where(rate_buckets.c.key == key).values(tokens=level, updated_at=now))
            lease = secrets.token_hex(16)
            conn.execute(insert(inflight_leases).values(id=lease, key=key, expires_at=now + lease_ttl))
        return Admission(lease, None, 0.0, level, (per_minute - level) / rate if rate > 0 else 0.0)

    def finish(self, lease: str, key: str, refund: int, per_minute: int, now: float) -> None:
        """End a request: free its slot and give back the tokens it reserved but did not use."""
        with self.engine.begin() as conn:
            conn.execute(delete(inflight_leases).where(inflight_leases.c.id == lease))
            if refund > 0:
                level = self._locked_level(conn, key, per_minute, now)
                conn.execute(update(rate_buckets).where(rate_buckets.c.key == key).values(
                    tokens=min(float(per_minute), level + refund), updated_at=now))

    def prune(self, now: float, idle_seconds: float) -> tuple[int, int]:
        """Drop buckets untouched for ``idle_seconds`` (refilled by then: a missing bucket starts
        full, so nothing changes for their callers) and expired in-flight leases. Returns
        (buckets, leases) deleted."""
        with self.engine.begin() as conn:
            buckets = conn.execute(delete(rate_buckets).where(rate_buckets.c.updated_at < now - idle_seconds)).rowcount
            leases = conn.execute(delete(inflight_leases).where(inflight_leases.c.expires_at < now)).rowcount
        return int(buckets), int(leases)
