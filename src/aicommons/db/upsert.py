"""``INSERT ... ON CONFLICT DO NOTHING`` for both dialects.

Check-then-insert is safe on SQLite (every transaction takes the write lock at BEGIN) but not on
PostgreSQL, where two replicas can both see "absent" and the second insert then fails on the key.
Inserting with ``ON CONFLICT DO NOTHING`` is correct on both.
"""

from __future__ import annotations

from sqlalchemy import Connection, Table


def insert_ignore(conn: Connection, table: Table, rows: dict | list[dict]) -> int:
    """Insert ``rows``, skipping any whose key already exists; returns how many were inserted."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    if isinstance(rows, dict):
        rows = [rows]
    if not rows:
        return 0
    return conn.execute(insert(table).on_conflict_do_nothing(), rows).rowcount
