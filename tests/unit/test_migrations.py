"""The Alembic migrations build exactly the schema that tables.py declares."""

import warnings

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from aicommons.db.engine import make_engine, upgrade_schema
from aicommons.db.tables import metadata


def test_migrations_match_table_definitions(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade_schema(engine)
    upgrade_schema(engine)  # idempotent
    with engine.connect() as conn, warnings.catch_warnings():
        # SQLite indexes on expressions (lower(namespace)) cannot be reflected: checked below.
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index")
        warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified expression-based index")
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
        author_index = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'ix_repos_type_author'")).scalar()
    assert author_index is not None and "lower(namespace)" in author_index
    # The FTS5 search table and its shadow tables are created by raw DDL, not declared in tables.py.
    diff = [d for d in diff if not (d[0] == "remove_table" and d[1].name.startswith("repo_search"))]
    assert diff == []
