"""Engine creation and schema upgrade (Alembic) for SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
MIGRATION_LOCK_KEY = 0x41494D47  # any constant shared by all replicas ("AIMG")


def normalise_url(url: str) -> str:
    """Let operators write ``postgresql://``; we drive PostgreSQL with psycopg 3."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


_WRITE = "aicommons_write"


def _write_transaction(engine: Engine) -> Callable[[], contextlib.AbstractContextManager[Connection]]:
    """``engine.begin()`` for SQLite: the same context manager, flagged as a write transaction."""

    @contextlib.contextmanager
    def begin() -> Iterator[Connection]:
        with engine.connect() as conn:
            conn.execution_options(**{_WRITE: True})
            with conn.begin():
                yield conn

    return begin


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # A small pool: opening a connection (and setting its pragmas) costs more than most queries.
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                               pool_size=8, max_overflow=32, pool_pre_ping=False)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL: readers never block the writer; synchronous=FULL: a committed row survives a crash.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            # Write transactions (``engine.begin()``) take the write lock at BEGIN, so that two writers
            # queue on busy_timeout instead of failing when a read lock cannot be upgraded; reads
            # (``engine.connect()``) take a plain snapshot and never wait for a writer (WAL).
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN")

        # An instance attribute shadows Engine.begin (setattr: mypy rightly refuses assigning a method).
        setattr(engine, "begin", _write_transaction(engine))  # noqa: B010
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def has_tables(url: str) -> bool:
    """Whether the database at ``url`` holds any table (a restore wants an empty one)."""
    engine = make_engine(url)
    try:
        return bool(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def upgrade_schema(engine: Engine) -> None:
    """Bring the database to the newest migration (idempotent; safe to run from every replica)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Replicas start together: the first takes this lock and migrates, the others wait and
            # then find nothing to do. (SQLite's BEGIN IMMEDIATE already serialises them.)
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
