"""Substring search on repo ids, like the Hub's ``search=``, kept fast at millions of repos.

SQLite: an FTS5 ``trigram`` table kept in sync by triggers. PostgreSQL: a ``pg_trgm`` GIN index,
which ``ILIKE '%term%'`` uses. Terms shorter than three characters cannot use a trigram index and
fall back to a scan, as on the Hub.
"""

from __future__ import annotations

from sqlalchemy import Connection, Integer, column, func, select, text
from sqlalchemy.sql import ColumnElement, TextClause

from aicommons.db.tables import repo_tags, repos

_SQLITE_DDL = [
    "CREATE VIRTUAL TABLE repo_search USING fts5(full_id_lower, content='repos', content_rowid='id', "
    "tokenize='trigram')",
    "CREATE TRIGGER repos_search_ai AFTER INSERT ON repos BEGIN "
    "INSERT INTO repo_search(rowid, full_id_lower) VALUES (new.id, new.full_id_lower); END",
    "CREATE TRIGGER repos_search_ad AFTER DELETE ON repos BEGIN "
    "INSERT INTO repo_search(repo_search, rowid, full_id_lower) VALUES('delete', old.id, old.full_id_lower); END",
    "CREATE TRIGGER repos_search_au AFTER UPDATE OF full_id_lower ON repos BEGIN "
    "INSERT INTO repo_search(repo_search, rowid, full_id_lower) VALUES('delete', old.id, old.full_id_lower); "
    "INSERT INTO repo_search(rowid, full_id_lower) VALUES (new.id, new.full_id_lower); END",
]
_POSTGRES_DDL = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX ix_repos_full_id_trgm ON repos USING gin (full_id_lower gin_trgm_ops)",
]


def create_index(conn: Connection) -> None:
    for stmt in _SQLITE_DDL if conn.dialect.name == "sqlite" else _POSTGRES_DDL:
        conn.execute(text(stmt))


def drop_index(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":
        conn.execute(text("DROP TABLE IF EXISTS repo_search"))
    else:
        conn.execute(text("DROP INDEX IF EXISTS ix_repos_full_id_trgm"))


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# A term matching more repos than this is "broad": instead of fetching and sorting every match,
# the listing walks its sort index in order and keeps the rows whose id contains the term, which
# stops after a page of matches (at least 1 row in BROAD_MATCHES / repos matches, so a page of
# 100 costs at most ~100 x repos / BROAD_MATCHES rows read).
BROAD_MATCHES = 2000


def id_contains(conn: Connection, term: str, drive: bool = False) -> tuple[ColumnElement[bool], bool]:
    """A WHERE clause: the repo id contains ``term`` (case-insensitive); and whether the listing
    should be driven by that clause (a narrow term: few matches to sort) rather than by its sort
    index (a broad or short term). ``drive``: the caller reads every match (a count), so the
    trigram index drives it however broad the term (5,000 matches of 100,000: 10 ms instead of
    a 200-400 ms scan of every id, bench/web_bench.py's ``search=mistral``)."""
    term = term.lower()
    like = repos.c.full_id_lower.like(f"%{_escape_like(term)}%", escape="\\")
    if conn.dialect.name != "sqlite" or len(term) < 3:
        return like, False
    phrase = '"' + term.replace('"', '""') + '"'
    probe = text("SELECT count(*) FROM (SELECT 1 FROM repo_search WHERE repo_search MATCH :phrase LIMIT :n)")
    if not drive and conn.execute(probe, {"phrase": phrase, "n": BROAD_MATCHES + 1}).scalar_one() > BROAD_MATCHES:
        return like, False
    return repos.c.id.in_(
        text("SELECT rowid FROM repo_search WHERE repo_search MATCH :phrase").bindparams(phrase=phrase)
        .columns(column("rowid", Integer))
    ), True


def tag_matches(conn: Connection, tag: str, cap: int) -> int:
    """How many repos carry ``tag``, counted no further than ``cap`` + 1 (a range of its index).

    More than BROAD_MATCHES: a page of them is found faster by walking the sort index and checking
    each row's tag (EXISTS, ~1 ms for a tag every repo has, against 70 ms for collecting 100,000
    repo ids first) than by collecting them; a rare tag the other way (db/repos.py)."""
    probe = select(func.count()).select_from(
        select(repo_tags.c.repo_id).where(repo_tags.c.tag == tag).limit(cap + 1).subquery())
    return int(conn.execute(probe).scalar_one())


def type_filter(conn: Connection, repo_type: str, narrow_search: bool) -> ColumnElement[bool] | TextClause:
    """The ``type = ?`` clause of a listing.

    For a narrow search on SQLite it is written ``+type`` so that the planner cannot use the
    (type, ...) indexes to scan every repo of the type, and drives the query from the few trigram
    matches instead (5 ms instead of 100+ ms at 200k repos, bench/search_bench.py).
    """
    if narrow_search and conn.dialect.name == "sqlite":
        return text("+repos.type = :repo_type").bindparams(repo_type=repo_type)
    return repos.c.type == repo_type
