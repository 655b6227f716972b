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

The job stores each index in the blob store under ``viewer/<repo id>/<sha256>.sqlite`` (outside
``lfs/``, so not an LFS object of the repo: the blob GC leaves it alone, and the job deletes a
dataset's indexes of older conversions when a new one is done).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BATCH_ROWS = 10_000
MAX_TERMS = 32
INDEX_PREFIX = "viewer/"


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


def match_expression(query: str) -> str | None:
    """The query's words as quoted FTS5 terms joined with OR (None when it has no word)."""
    words = re.findall(r"\w+", query)[:MAX_TERMS]
    if not words:
        return None
    return " OR ".join('"' + w + '"' for w in words)


def search(index: Path, query: str, offset: int, length: int) -> tuple[list[int], int]:
    """(row indices of the page, best first; how many rows match)."""
    expression = match_expression(query)
    if expression is None:
        return [], 0
    con = sqlite3.connect(f"{index.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
    try:
        total = con.execute("SELECT count(*) FROM search WHERE search MATCH ?", (expression,)).fetchone()[0]
        found = con.execute("SELECT rowid FROM search WHERE search MATCH ? ORDER BY rank, rowid LIMIT ? OFFSET ?",
                            (expression, length, offset)).fetchall()
    finally:
        con.close()
    return [r[0] for r in found], int(total)
