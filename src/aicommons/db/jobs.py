"""huey's storage interface over our database, so background jobs need no broker on either dialect.

huey (a maintained task queue: retries, delays, periodic tasks, locks) keeps its queue in a
pluggable storage; its own SQL storage needs peewee and tables outside our migrations, so this is
the same contract over SQLAlchemy Core and Alembic-managed tables (``job_*``).

"Each job runs once" rests on ``dequeue``: the row is taken with ``FOR UPDATE SKIP LOCKED`` and
deleted in the same transaction on PostgreSQL (competing workers skip each other's row), and under
SQLite's ``BEGIN IMMEDIATE`` write lock. "Never two at once" for long jobs (GC) is huey's
``lock_task``, built on ``put_if_empty`` below, with an expiry so that a killed worker's lock
does not outlive it forever.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Engine, Select, and_, delete, func, or_, select, update

from aicommons.db._huey_private import BaseStorage, EmptyData
from aicommons.db.tables import job_counters, job_data, job_queue, job_schedule
from aicommons.db.upsert import insert_ignore, upsert
from aicommons.times import utcnow


def _bytes(value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


class SqlJobStorage(BaseStorage):  # type: ignore[misc]  # huey's base class is untyped (Any)
    blocking = False  # the consumer polls, with huey's exponential backoff
    priority = True

    def __init__(self, name: str = "aicommons", engine: Engine | None = None, **kwargs: object) -> None:
        super().__init__(name)
        if engine is None:
            raise ValueError("SqlJobStorage needs engine=")
        self.engine = engine

    # --- queue ----------------------------------------------------------------------------------

    def enqueue(self, data: bytes, priority: int | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(job_queue.insert().values(queue=self.name, priority=int(priority or 0), data=data))

    def _next(self) -> Select[tuple[int, bytes]]:
        return (select(job_queue.c.id, job_queue.c.data).where(job_queue.c.queue == self.name)
                .order_by(job_queue.c.priority.desc(), job_queue.c.id).limit(1))

    def dequeue(self) -> bytes | None:
        # A read-only peek first: idle polling must not take SQLite's write lock every time.
        with self.engine.connect() as conn:
            if conn.execute(self._next()).first() is None:
                return None
        with self.engine.begin() as conn:
            row = conn.execute(self._next().with_for_update(skip_locked=True)).first()
            if row is None:
                return None
            if conn.execute(delete(job_queue).where(job_queue.c.id == row.id)).rowcount == 1:
                return bytes(row.data)
            return None

    def queue_size(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(job_queue)
                                .where(job_queue.c.queue == self.name)).scalar_one()

    def enqueued_items(self, limit: int | None = None) -> list[bytes]:
        query = (select(job_queue.c.data).where(job_queue.c.queue == self.name)
                 .order_by(job_queue.c.priority.desc(), job_queue.c.id).limit(limit))
        with self.engine.connect() as conn:
            return [bytes(d) for d in conn.execute(query).scalars()]

    def flush_queue(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(job_queue).where(job_queue.c.queue == self.name))

    # --- schedule (delayed tasks and retries) ---------------------------------------------------

    def add_to_schedule(self, data: bytes, ts: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(job_schedule.insert().values(queue=self.name, run_at=ts, data=data))

    def read_schedule(self, ts: datetime) -> list[bytes]:
        query = (select(job_schedule.c.id, job_schedule.c.data)
                 .where(job_schedule.c.queue == self.name, job_schedule.c.run_at <= ts)
                 .order_by(job_schedule.c.run_at, job_schedule.c.id))
        with self.engine.connect() as conn:  # read-only peek: the scheduler polls every second
            if conn.execute(query.limit(1)).first() is None:
                return []
        with self.engine.begin() as conn:
            rows = conn.execute(query.with_for_update(skip_locked=True)).all()
            if rows:
                conn.execute(delete(job_schedule).where(job_schedule.c.id.in_([r.id for r in rows])))
            return [bytes(r.data) for r in rows]

    def schedule_size(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(job_schedule)
                                .where(job_schedule.c.queue == self.name)).scalar_one()

    def scheduled_items(self, limit: int | None = None) -> list[bytes]:
        query = (select(job_schedule.c.data).where(job_schedule.c.queue == self.name)
                 .order_by(job_schedule.c.run_at, job_schedule.c.id).limit(limit))
        with self.engine.connect() as conn:
            return [bytes(d) for d in conn.execute(query).scalars()]

    def flush_schedule(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(job_schedule).where(job_schedule.c.queue == self.name))

    # --- key/value: results, revocations, locks -------------------------------------------------

    def _key(self, key: object) -> ColumnElement[bool]:
        return and_(job_data.c.queue == self.name, job_data.c.key == str(key))

    def _live(self) -> ColumnElement[bool]:
        return or_(job_data.c.expires_at.is_(None), job_data.c.expires_at > utcnow())

    def put_data(self, key: object, value: object, is_result: bool = False) -> None:
        with self.engine.begin() as conn:
            upsert(conn, job_data, {"queue": self.name, "key": str(key), "value": _bytes(value), "expires_at": None},
                   keys=["queue", "key"], update=["value", "expires_at"])

    def peek_data(self, key: object) -> bytes | object:
        with self.engine.connect() as conn:
            value = conn.execute(select(job_data.c.value).where(self._key(key), self._live())).scalar()
        return EmptyData if value is None else bytes(value)

    def pop_data(self, key: object) -> bytes | object:
        with self.engine.begin() as conn:
            value = conn.execute(select(job_data.c.value).where(self._key(key), self._live())
                                 .with_for_update()).scalar()
            conn.execute(delete(job_data).where(self._key(key)))
        return EmptyData if value is None else bytes(value)

    def has_data_for_key(self, key: object) -> bool:
        return self.peek_data(key) is not EmptyData

    def put_if_empty(self, key: object, value: object, ttl: float | None = None) -> bool:
        expires = utcnow() + timedelta(seconds=ttl) if ttl else None
        with self.engine.begin() as conn:
            # An expired entry (a lock whose holder died) counts as empty.
            conn.execute(delete(job_data).where(self._key(key), job_data.c.expires_at <= utcnow()))
            return insert_ignore(conn, job_data, {"queue": self.name, "key": str(key), "value": _bytes(value),
                                                  "expires_at": expires}) == 1

    def result_store_size(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(job_data)
                                .where(job_data.c.queue == self.name)).scalar_one()

    def result_items(self) -> dict[str, bytes]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(job_data.c.key, job_data.c.value).where(
                job_data.c.queue == self.name, self._live()))
            return {r.key: bytes(r.value) for r in rows}

    def flush_results(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(job_data).where(job_data.c.queue == self.name))

    # --- counters (huey's rate limits) ----------------------------------------------------------

    def incr(self, key: object, amount: int = 1) -> int:
        where = and_(job_counters.c.queue == self.name, job_counters.c.key == str(key))
        with self.engine.begin() as conn:
            insert_ignore(conn, job_counters, {"queue": self.name, "key": str(key), "value": 0})
            conn.execute(update(job_counters).where(where).values(value=job_counters.c.value + amount))
            return int(conn.execute(select(job_counters.c.value).where(where)).scalar_one())

    def delete_counter(self, key: object) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(job_counters).where(job_counters.c.queue == self.name,
                                                    job_counters.c.key == str(key)))

    def flush_counters(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(job_counters).where(job_counters.c.queue == self.name))

