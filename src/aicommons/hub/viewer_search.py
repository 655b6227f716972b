"""Full-text search of a converted split (datasets-server's ``/search``): an SQLite FTS5 index built
by the conversion job, queried with BM25 ranking.

DuckDB's own ``fts`` extension is not in the ``duckdb`` wheel and extensions cannot be downloaded
here (nor should a hub fetch code at run time), so the index is SQLite's FTS5, which is part of
Python's ``sqlite3``: one index file per split, with the text of the row's string columns (joined
by a newline) under the row's index in the split as ``rowid``, tokenized by ``porter unicode61``
(Porter stemming, case and accent folding), as datasets-server's BM25 over DuckDB's ``fts``.

A query is never handed to FTS5's query language: its words (``\\w+``, Unicode) are each quoted as
a term and joined with ``OR``, so operators, column filters, prefixes or ``NEAR`` in the query are
just words. Rows are ranked by BM25 (best first), then by row index.

Ranking is the costly part (FTS5 scores every matching row: ~0.6 µs each, 440 ms for a word in
700,000 of a million rows; counting them takes 22 ms), so a query matching more than ``RANK_ALL``
rows is ranked in two parts, exactly where it can be (the MaxScore idea of search engines):

- The query's terms are split by how many rows hold each: the rarest, together in at most
  ``CANDIDATES`` rows, are the *selective* terms; the rest are the *common* ones. Every row holding
  a selective term is scored in full (its BM25 over all the query's terms, from two FTS5 queries
  over those rows only: ``S AND (S OR C)`` counts the selective terms twice, ``S`` once).
- A row holding only common terms scores at most ``sum(idf(t) * (k1 + 1))`` over the common terms.
  Candidates scoring above that bound are in their exact place; when the page lies within them,
  the answer is exactly the full ranking's.
- Otherwise the rows holding only common terms take part in the ranking by their first
  ``TAIL_RANKED`` (in row order), scored exactly; the rest follow, in row order. So a one-word query
  for a word in most rows ranks the first 20,000 of them, not all of them.

``num_rows_total`` is always exact.

The job stores each index in the blob store under ``viewer/<repo id>/<sha256>.sqlite`` (outside
``lfs/``, so not an LFS object of the repo: the blob GC leaves it alone); the storage lifecycle
deletes those no finished conversion names any more (``hub/viewer_prune.py``).
"""

from __future__ import annotations

import math
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BATCH_ROWS = 10_000
MAX_TERMS = 32
INDEX_PREFIX = "viewer/"
RANK_ALL = 50_000  # a query matching at most this many rows is ranked in one FTS5 query
CANDIDATES = 50_000  # rows of the selective terms scored in full (module docstring)
TAIL_RANKED = 20_000  # rows of common terms only that are ranked when the page reaches them
K1 = 1.2  # FTS5's BM25 k1


def index_key(repo_id: int, oid: str) -> str:
    return f"{INDEX_PREFIX}{repo_id}/{oid}.sqlite"


def text_columns(schema: Any) -> list[str]:
    import pyarrow as pa  # type: ignore[import-untyped]

    return [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]


def _texts(files: list[Path], columns: list[str]) -> Iterator[tuple[int, str]]:
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    row = 0
    for path in files:
        with pq.ParquetFile(path) as f:
            for batch in f.iter_batches(batch_size=BATCH_ROWS, columns=columns):
                values = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
                for n in range(batch.num_rows):
                    yield row + n, "\n".join(v[n] for v in values if v[n])
                row += batch.num_rows


def build_index(files: list[Path], dest: Path) -> list[str] | None:
    """Write the split's index to ``dest``; the columns it covers, or None when it has no text column."""
    import pyarrow.parquet as pq

    columns = text_columns(pq.read_schema(files[0]))
    if not columns:
        return None
    con = sqlite3.connect(dest)
    try:
        con.execute("PRAGMA journal_mode = OFF")
        con.execute("PRAGMA synchronous = OFF")
        con.execute("CREATE VIRTUAL TABLE search USING fts5(text, content='', tokenize='porter unicode61')")
        texts = _texts(files, columns)
        while True:
            chunk = [t for _, t in zip(range(BATCH_ROWS), texts, strict=False)]
            if not chunk:
                break
            con.executemany("INSERT INTO search(rowid, text) VALUES (?, ?)", chunk)
        con.execute("INSERT INTO search(search) VALUES ('optimize')")
        con.commit()
    finally:
        con.close()
    return columns


def query_words(query: str) -> list[str]:
    """The query's distinct words (``\\w+``, Unicode; case-folded duplicates dropped), at most MAX_TERMS."""
    words: list[str] = []
    seen: set[str] = set()
    for word in re.findall(r"\w+", query):
        if word.casefold() not in seen:
            seen.add(word.casefold())
            words.append(word)
    return words[:MAX_TERMS]


def _or(words: list[str]) -> str:
    return " OR ".join('"' + w + '"' for w in words)


def match_expression(query: str) -> str | None:
    """The query's words as quoted FTS5 terms joined with OR (None when it has no word)."""
    words = query_words(query)
    return _or(words) if words else None


def _varint(data: bytes, pos: int = 0) -> int:
    """SQLite's variable-length integer at ``pos`` (FTS5's averages record is a list of them)."""
    value = 0
    for i in range(8):
        byte = data[pos + i]
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            return value
    return (value << 8) | data[pos + 8]


def _row_count(con: sqlite3.Connection) -> int:
    """The number of rows FTS5's BM25 uses (its averages record, row 1 of ``search_data``)."""
    found = con.execute("SELECT block FROM search_data WHERE id = 1").fetchone()
    if found and found[0]:
        return _varint(bytes(found[0]))
    return int(con.execute("SELECT count(*) FROM search").fetchone()[0])


def _idf(rows: int, hits: int) -> float:
    """FTS5's BM25 idf (sqlite's fts5_aux.c), negatives raised to 1e-6 as there."""
    idf = math.log((rows - hits + 0.5) / (hits + 0.5))
    return idf if idf > 0 else 1e-6


def _scores(con: sqlite3.Connection, expression: str, limit: int = -1) -> dict[int, float]:
    """{rowid: FTS5 bm25 (negative, lower is better)} of the rows matching ``expression``, in rowid
    order, at most ``limit``."""
    return dict(con.execute("SELECT rowid, bm25(search) FROM search WHERE search MATCH ? ORDER BY rowid LIMIT ?",
                            (expression, limit)).fetchall())


def _ranked(con: sqlite3.Connection, words: list[str], total: int, need: int) -> list[int]:
    """Row ids matching any of ``words``, best first, at least ``need`` of them when that many
    match (module docstring: exact where the bound proves it, bounded past it)."""
    hits = {w: int(con.execute("SELECT count(*) FROM search WHERE search MATCH ?", (_or([w]),)).fetchone()[0])
            for w in words}
    rows = _row_count(con)
    selective: list[str] = []
    budget = 0
    for word in sorted((w for w in words if hits[w]), key=lambda w: hits[w]):
        if budget + hits[word] > CANDIDATES:
            break
        selective.append(word)
        budget += hits[word]
    common = [w for w in words if w not in selective and hits[w]]
    scored: dict[int, float] = {}
    if selective:
        once = _scores(con, _or(selective))
        twice = _scores(con, f"({_or(selective)}) AND ({_or(words)})")
        scored = {rowid: twice[rowid] - score for rowid, score in once.items()}
    bound = -sum(_idf(rows, hits[w]) * (K1 + 1) for w in common)  # no row of common terms only scores lower
    best = sorted((r for r, s in scored.items() if s < bound), key=lambda r: (scored[r], r))
    if len(best) >= need or not common:
        rest = sorted((r for r, s in scored.items() if s >= bound), key=lambda r: (scored[r], r))
        return best + rest
    tail_expression = f"({_or(common)})" + (f" NOT ({_or(selective)})" if selective else "")
    tail = _scores(con, tail_expression, TAIL_RANKED)
    for rowid, score in tail.items():
        scored.setdefault(rowid, score)
    ranked = sorted(scored, key=lambda r: (scored[r], r))
    if len(tail) < TAIL_RANKED or len(ranked) >= total:
        return ranked
    last = max(tail)  # the rest of the rows of common terms only, in row order
    more = con.execute("SELECT rowid FROM search WHERE search MATCH ? AND rowid > ? ORDER BY rowid LIMIT ?",
                       (tail_expression, last, max(0, need - len(ranked)))).fetchall()
    return ranked + [r[0] for r in more]


def search(index: Path, query: str, offset: int, length: int) -> tuple[list[int], int]:
    """(row indices of the page, best first; how many rows match)."""
    words = query_words(query)
    if not words:
        return [], 0
    expression = _or(words)
    con = sqlite3.connect(f"{index.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
    try:
        total = con.execute("SELECT count(*) FROM search WHERE search MATCH ?", (expression,)).fetchone()[0]
        if total <= RANK_ALL:
            found = con.execute("SELECT rowid FROM search WHERE search MATCH ? ORDER BY rank, rowid LIMIT ? OFFSET ?",
                                (expression, length, offset)).fetchall()
            return [r[0] for r in found], int(total)
        if offset >= total:
            return [], int(total)
        ranked = _ranked(con, words, int(total), offset + length)
    finally:
        con.close()
    return ranked[offset:offset + length], int(total)
