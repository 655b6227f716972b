"""The Alembic migrations build exactly the schema that tables.py declares."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from aicommons.db.engine import make_engine, upgrade_schema
from aicommons.db.tables import metadata


def test_migrations_match_table_definitions(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade_schema(engine)
    upgrade_schema(engine)  # idempotent
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    # The FTS5 search table and its shadow tables are created by raw DDL, not declared in tables.py.
    diff = [d for d in diff if not (d[0] == "remove_table" and d[1].name.startswith("repo_search"))]
    assert diff == []
