"""``INSERT ... ON CONFLICT DO NOTHING`` for both dialects.

Check-then-insert is safe on SQLite (every transaction takes the write lock at BEGIN) but not on
PostgreSQL, where two replicas can both see "absent" and the second insert then fails on the key.
Inserting with ``ON CONFLICT DO NOTHING`` is correct on both.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, CursorResult, Table
from sqlalchemy.dialects import postgresql, sqlite

Row = dict[str, Any]


def new_id(result: CursorResult[Any]) -> int:
    """The primary key of the row an ``INSERT`` just wrote."""
    key = result.inserted_primary_key
    if key is None:
        raise RuntimeError("the INSERT reported no primary key")
    return int(key[0])


def insert_ignore(conn: Connection, table: Table, rows: Row | list[Row]) -> int:
    """Insert ``rows``, skipping any whose key already exists.

    For one row (a dict) returns 1 if it was inserted, 0 if it existed; drivers do not report
    reliable counts for several rows, so for a list the result is only "something was sent".
    """
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    if isinstance(rows, dict):
        # Count RETURNING rows: rowcount is -1 when SQLAlchemy adds RETURNING for the primary key.
        stmt = insert(table).values(**rows).on_conflict_do_nothing().returning(*table.primary_key.columns)
        return len(conn.execute(stmt).all())
    if not rows:
        return 0
    conn.execute(insert(table).on_conflict_do_nothing(), rows)
    return len(rows)


def upsert(conn: Connection, table: Table, row: Row, keys: list[str], update: list[str]) -> None:
    """Insert ``row``, or update the ``update`` columns of the row with the same ``keys``."""
    if conn.dialect.name == "postgresql":
        pg = postgresql.insert(table).values(**row)
        conn.execute(pg.on_conflict_do_update(index_elements=keys, set_={c: pg.excluded[c] for c in update}))
    else:
        lite = sqlite.insert(table).values(**row)
        conn.execute(lite.on_conflict_do_update(index_elements=keys, set_={c: lite.excluded[c] for c in update}))


def upsert_add(conn: Connection, table: Table, rows: list[dict[str, Any]], keys: list[str], column: str) -> None:
    """Insert ``rows``, or add their ``column`` to that of the row with the same ``keys`` (counters)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        pg = postgresql.insert(table)
        conn.execute(pg.on_conflict_do_update(index_elements=keys,
                                              set_={column: table.c[column] + pg.excluded[column]}), rows)
    else:
        lite = sqlite.insert(table)
        conn.execute(lite.on_conflict_do_update(index_elements=keys,
                                                set_={column: table.c[column] + lite.excluded[column]}), rows)
