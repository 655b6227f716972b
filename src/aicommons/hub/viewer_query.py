"""The dataset viewer over a dataset's converted Parquet files (``refs/convert/parquet``, written by
``hub/parquet_export.py``): ``/rows``, ``/filter``, ``/search`` and the figures of ``/size``.

Where the files are read: every Parquet file of the ref is an LFS object of the dataset. This module
gives each one a name in its own cache folder (``<data dir>/viewer-cache``, named by the object's
sha256): a hard link to the blob when the blob store is a local disk on the same file system, else
a copy read once through the blob store (object storage, the chunk store). So the same code serves
both deployments, a file is fetched from a bucket once per hub process's disk, and DuckDB can be
shut in that one folder.

- ``/rows`` reads only the row groups that hold the page, found in an index of the split's row
  groups built from the Parquet footers once per commit: any offset of ten million rows costs the
  same few milliseconds. (DuckDB's ``LIMIT ... OFFSET`` scans up to the offset: 160 ms there.)
- ``/filter`` runs in DuckDB. The ``where`` and ``orderby`` are parsed by ``hub/viewer_filter.py``
  and re-emitted from the tree (quoted column names of the schema, values as bound parameters),
  never passed through. DuckDB itself is sandboxed: no file outside the cache folder, no network,
  no extension loading, and the configuration is locked, so even a statement that got past the
  parser could read nothing else.
- ``/search`` reads the split's full-text index (``hub/viewer_search.py``).

Answers are cached per converted commit (a new commit is a new key; nothing is served across
revisions).
"""

from __future__ import annotations

import bisect
import hashlib
import hmac
import os
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pygit2

from aicommons.db.parquet_conversions import Conversion
from aicommons.db.repos import RepoRow
from aicommons.gitrepo import GitStore
from aicommons.hub import content
from aicommons.hub.objects import ObjectReader
from aicommons.hub.viewer import ViewerError
from aicommons.hub.viewer_filter import FilterError, orderby_sql, to_sql

CACHED_SPLITS = 32
CACHED_ANSWERS = 512
ROW_IDX = "__row_idx"
TAKE_GROUPS = 4  # a page from more row groups than this is read by DuckDB (``take``)
ASSET_TTL = 3600  # seconds an image or audio URL in an answer stays valid
MEDIA = ("Image", "Audio")
# Served with their own type only when the bytes say so; anything else (an SVG "image" included) is a
# download, never a page of the hub's origin.
MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png", "png"), (b"\xff\xd8\xff", "image/jpeg", "jpg"),
         (b"GIF87a", "image/gif", "gif"), (b"GIF89a", "image/gif", "gif"), (b"BM", "image/bmp", "bmp"),
         (b"fLaC", "audio/flac", "flac"), (b"OggS", "audio/ogg", "ogg"), (b"ID3", "audio/mpeg", "mp3"),
         (b"\xff\xfb", "audio/mpeg", "mp3"))


def media_type(data: bytes) -> tuple[str, str]:
    """(MIME type, file extension) of an image or audio file's bytes, from their first bytes."""
    if data[:4] == b"RIFF" and data[8:12] in (b"WEBP", b"WAVE"):
        return ("image/webp", "webp") if data[8:12] == b"WEBP" else ("audio/wav", "wav")
    for magic, mime, ext in MAGIC:
        if data.startswith(magic):
            return mime, ext
    return "application/octet-stream", "bin"


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of an image from its header (Pillow reads no pixels for it), or None when
    Pillow cannot tell (not an image, a format it lacks)."""
    import io
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a decompression-bomb warning is about decoding, not done here
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
    except Exception:  # noqa: BLE001 - whatever a malformed image raises: no size, still a link
        return None
    return int(width), int(height)


@dataclass(frozen=True)
class ParquetSplit:
    """One split of a converted commit: its files (in the cache folder) and their row groups."""

    converted_sha: str
    config: str
    split: str
    files: tuple[Path, ...]
    metadata: tuple[Any, ...]  # pyarrow.parquet.FileMetaData of each file
    schema: Any  # pyarrow.Schema
    num_rows: int
    num_bytes: int  # of the Parquet files
    partial: bool
    starts: tuple[int, ...]  # the first row of each row group, in order
    groups: tuple[tuple[int, int], ...]  # (file, row group) of each

    @property
    def columns(self) -> list[str]:
        return list(self.schema.names)


def converted(conversion: Conversion | None, repo: RepoRow) -> Conversion | None:
    """The conversion when it is done and is of the dataset's current default branch."""
    if conversion is None or conversion.state != "done" or conversion.source_sha != repo.sha:
        return None
    if not conversion.converted_sha:
        return None
    return conversion


def extras_pending(conversion: Conversion) -> bool:
    """Whether the split's search index and statistics are still being built (the conversion's
    follow-up job, hub/parquet_export.py ``build_extras``)."""
    return (conversion.result or {}).get("extras") == "pending"


def converted_splits(conversion: Conversion) -> list[tuple[str, str]]:
    """(config, split) of the converted files, in the conversion's order."""
    found: list[tuple[str, str]] = []
    for name, config in (conversion.result or {}).get("configs", {}).items():
        for item in config.get("files", []):
            if (name, item["split"]) not in found:
                found.append((name, item["split"]))
    return found


class ViewerQueries:
    def __init__(self, git: GitStore, objects: ObjectReader, cache_dir: Path, key: bytes = b""):
        self.git, self.objects, self.cache_dir = git, objects, cache_dir
        self._signing_key = key  # signs image and audio URLs (hub/keys.py, purpose "viewer-assets")
        self._splits: OrderedDict[tuple[Any, ...], ParquetSplit] = OrderedDict()
        self._answers: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._lock = threading.Lock()
        self._db: Any = None

    # --- the files ------------------------------------------------------------------------------------

    def local_file(self, oid: str, suffix: str) -> Path:
        """The LFS object ``oid`` as a file of the cache folder (linked or fetched once)."""
        found = self.objects.find(oid)
        if found is None:
            raise ViewerError("The converted file is not stored on this hub.", "UnexpectedApiError", 500)
        return self._cache_file(f"{oid}{suffix}", self.objects.local_path(found), lambda: self.objects.open(oid))

    def _cache_file(self, name: str, local: Path | None, opener: Callable[[], Any]) -> Path:
        self.cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        target = self.cache_dir / name
        if target.exists():
            return target
        if local is not None:
            try:
                os.link(local, target)
                return target
            except FileExistsError:
                return target
            except OSError:
                pass  # another file system: copy
        fd, tmp = tempfile.mkstemp(dir=self.cache_dir, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as out, opener() as src:
                shutil.copyfileobj(src, out, 1024 * 1024)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    def split(self, repo: RepoRow, conversion: Conversion, config: str, split: str) -> ParquetSplit:
        assert conversion.converted_sha is not None
        key = (repo.id, conversion.converted_sha, config, split)
        with self._lock:
            if key in self._splits:
                self._splits.move_to_end(key)
                return self._splits[key]
        found = self._load(repo, conversion, config, split)
        with self._lock:
            self._splits[key] = found
            while len(self._splits) > CACHED_SPLITS:
                self._splits.popitem(last=False)
        return found

    def _load(self, repo: RepoRow, conversion: Conversion, config: str, split: str) -> ParquetSplit:
        import pyarrow.parquet as pq  # type: ignore[import-untyped]

        sha = conversion.converted_sha or ""
        configs = (conversion.result or {}).get("configs", {})
        items = [f for f in configs.get(config, {}).get("files", []) if f["split"] == split]
        if not items:
            raise ViewerError("Not found.", "ResponseNotFound", 404)
        git_repo = self.git.open(repo.storage_key)
        commit = git_repo[pygit2.Oid(hex=sha)].peel(pygit2.Commit)
        files, metadata = [], []
        for item in items:
            entry = content.get_entry(git_repo, commit, item["path"])
            if entry is None or entry.lfs is None:
                raise ViewerError("The converted file is missing.", "UnexpectedApiError", 500)
            path = self.local_file(entry.lfs.oid, ".parquet")
            files.append(path)
            metadata.append(pq.read_metadata(path))
        starts, groups, row = [], [], 0
        for file_index, md in enumerate(metadata):
            for group in range(md.num_row_groups):
                starts.append(row)
                groups.append((file_index, group))
                row += md.row_group(group).num_rows
        return ParquetSplit(sha, config, split, tuple(files), tuple(metadata),
                            metadata[0].schema.to_arrow_schema(), row, sum(f.stat().st_size for f in files),
                            bool(configs[config].get("partial")), tuple(starts), tuple(groups))

    # --- answers, cached per converted commit --------------------------------------------------------

    def _cached(self, key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._answers:
                self._answers.move_to_end(key)
                return self._answers[key]
        value = compute()
        with self._lock:
            self._answers[key] = value
            while len(self._answers) > CACHED_ANSWERS:
                self._answers.popitem(last=False)
        return value

    def _key(self, ps: ParquetSplit, *rest: Any) -> tuple[Any, ...]:
        return (ps.converted_sha, ps.config, ps.split, *rest)

    def rows(self, ps: ParquetSplit, offset: int, length: int) -> Any:
        """Rows ``offset`` to ``offset + length`` (a pyarrow Table), reading only their row groups."""
        return self._cached(self._key(ps, "rows", offset, length), lambda: self._rows(ps, offset, length))

    def _rows(self, ps: ParquetSplit, offset: int, length: int) -> Any:
        import pyarrow as pa

        if offset >= ps.num_rows or length == 0:
            return ps.schema.empty_table()
        first = bisect.bisect_right(ps.starts, offset) - 1
        end = min(offset + length, ps.num_rows)
        last = bisect.bisect_right(ps.starts, end - 1) - 1
        tables = [self._group(ps, g) for g in range(first, last + 1)]
        table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
        return table.slice(offset - ps.starts[first], end - offset)

    def _group(self, ps: ParquetSplit, index: int) -> Any:
        import pyarrow.parquet as pq

        file_index, group = ps.groups[index]
        with pq.ParquetFile(ps.files[file_index], metadata=ps.metadata[file_index]) as f:
            return f.read_row_group(group)

    def take(self, ps: ParquetSplit, indices: list[int]) -> Any:
        """The rows at ``indices`` (row numbers of the split), in that order. Rows spread over many
        row groups (a search page) are read by DuckDB, which decodes only the pages holding them
        (a page of 100 rows from 64 groups of a million text rows: ~40 ms, against ~110 ms decoding
        the groups whole with pyarrow)."""
        import pyarrow as pa

        by_group: dict[int, list[int]] = {}
        for i in indices:
            by_group.setdefault(bisect.bisect_right(ps.starts, i) - 1, []).append(i)
        if len(by_group) > TAKE_GROUPS:
            found = self._take_sql(ps, indices)
            if found is not None:
                return found
        parts = {}
        for group, wanted in by_group.items():
            table = self._group(ps, group)
            parts[group] = (table.take(pa.array([i - ps.starts[group] for i in wanted])), wanted)
        order = {i: (g, n) for g, (_, wanted) in parts.items() for n, i in enumerate(wanted)}
        rows = [parts[order[i][0]][0].slice(order[i][1], 1) for i in indices]
        return pa.concat_tables(rows) if rows else ps.schema.empty_table()

    def _take_sql(self, ps: ParquetSplit, indices: list[int]) -> Any:
        """``take`` through DuckDB (None when its columns do not come back as the split's types)."""
        import pyarrow as pa

        wanted = set(indices)
        parts, start = [], 0
        for path, md in zip(ps.files, ps.metadata, strict=True):
            local = sorted(i - start for i in wanted if start <= i < start + md.num_rows)
            if local:
                name = str(path.resolve()).replace("'", "''")
                numbers = ", ".join(str(n) for n in local)
                parts.append(f"SELECT *, file_row_number + {start} AS {ROW_IDX} FROM read_parquet('{name}', "
                             f"file_row_number = true) WHERE file_row_number IN ({numbers})")
            start += md.num_rows
        with self._connection() as cursor:
            table = cursor.sql(" UNION ALL ".join(parts)).to_arrow_table()
        found = table.column(ROW_IDX).to_pylist()
        position = {row: n for n, row in enumerate(found)}
        table = table.drop_columns([ROW_IDX, "file_row_number"]).take(pa.array([position[i] for i in indices]))
        try:
            return table.cast(ps.schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError):
            return None

    def search(self, repo: RepoRow, conversion: Conversion, ps: ParquetSplit, query: str, offset: int,
               length: int) -> tuple[Any, list[int], int] | None:
        """(the page of rows matching ``query``, best first, their row indices, how many match), or
        None when the split has no full-text index."""
        from aicommons.hub.viewer_search import index_key, search

        found = (conversion.result or {}).get("configs", {}).get(ps.config, {}).get("search", {}).get(ps.split)
        if not found:
            return None
        oid = found["oid"]
        key = index_key(repo.id, oid)
        blobs = self.objects.blobs
        index = self._cache_file(f"{oid}.sqlite", blobs.local_path(key), lambda: blobs.open(key))

        def page() -> tuple[Any, list[int], int]:
            indices, total = search(index, query, offset, length)
            return self.take(ps, indices), indices, total

        result: tuple[Any, list[int], int] = self._cached(self._key(ps, "search", query, offset, length), page)
        return result

    # --- images and audio: short-lived signed URLs, as datasets-server's ------------------------------

    def _sign(self, storage_key: str, ps: ParquetSplit, row: int, column: str, expires: int, who: str) -> str:
        msg = "\0".join(("viewer-asset", storage_key, ps.converted_sha, ps.config, ps.split, str(row), column,
                         str(expires), who)).encode()
        return hmac.new(self._signing_key, msg, hashlib.sha256).hexdigest()

    def asset_query(self, repo: RepoRow, ps: ParquetSplit, row: int, column: str, who: str) -> str:
        """``exp=…&who=…&sig=…`` of the URL of one cell, minted for ``who`` (a principal's key)."""
        from urllib.parse import quote

        expires = int(time.time()) + ASSET_TTL
        return f"exp={expires}&who={quote(who, safe='')}&sig={self._sign(repo.storage_key, ps, row, column, expires, who)}"

    def asset_link(self, repo: RepoRow, ps: ParquetSplit, row: int, column: str, data: bytes,
                   who: str) -> tuple[str, str]:
        """(the path, from the hub's root, of a cell's signed URL; its MIME type)."""
        from urllib.parse import quote

        mime, ext = media_type(data)
        name = "audio" if mime.startswith("audio/") else "image"
        path = (f"/datasets-server/assets/{repo.full_id}/--/{ps.converted_sha}/--/{quote(ps.config, safe='')}/"
                f"{quote(ps.split, safe='')}/{row}/{quote(column, safe='')}/{name}.{ext}")
        return f"{path}?{self.asset_query(repo, ps, row, column, who)}", mime

    def check_asset(self, repo: RepoRow, ps: ParquetSplit, row: int, column: str, exp: str | None, who: str,
                    sig: str | None) -> None:
        try:
            expires = int(exp or "")
        except ValueError:
            expires = 0
        good = self._sign(repo.storage_key, ps, row, column, expires, who)
        if expires < time.time() or not hmac.compare_digest(good, sig or ""):
            raise ViewerError("Invalid or expired URL.", "InvalidSignature", 403)

    def cell_bytes(self, ps: ParquetSplit, row: int, column: str) -> bytes:
        """The bytes of an image or audio cell (``{bytes, path}`` in the Parquet file)."""
        if column not in ps.columns or not 0 <= row < ps.num_rows:
            raise ViewerError("Not found.", "ResponseNotFound", 404)
        value = self.rows(ps, row, 1).column(column)[0].as_py()
        data = value.get("bytes") if isinstance(value, dict) else None
        if not isinstance(data, bytes):
            raise ViewerError("Not found.", "ResponseNotFound", 404)
        return data

    # --- DuckDB --------------------------------------------------------------------------------------

    def _connection(self) -> Any:
        """A cursor on the process's sandboxed DuckDB (files of the cache folder only)."""
        import duckdb

        with self._lock:
            if self._db is None:
                self.cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
                db = duckdb.connect(config={"autoinstall_known_extensions": False,
                                            "autoload_known_extensions": False})
                folder = str(self.cache_dir.resolve()).replace("'", "''")
                db.execute(f"SET allowed_directories = ['{folder}/']")
                db.execute("SET enable_external_access = false")
                db.execute("SET parquet_metadata_cache = true")
                db.execute("SET lock_configuration = true")
                self._db = db
            return self._db.cursor()

    def _source(self, ps: ParquetSplit) -> str:
        """The split as one relation with each row's index in the split (``__row_idx``)."""
        parts, offset = [], 0
        for path, md in zip(ps.files, ps.metadata, strict=True):
            name = str(path.resolve()).replace("'", "''")
            parts.append(f"SELECT * EXCLUDE (file_row_number), file_row_number + {offset} AS {ROW_IDX} "
                         f"FROM read_parquet('{name}', file_row_number = true)")
            offset += md.num_rows
        return " UNION ALL ".join(parts)

    def filter(self, ps: ParquetSplit, where: str | None, orderby: str | None, offset: int,
               length: int) -> tuple[Any, list[int], int]:
        """(the page of matching rows as a Table, their row indices, how many rows match)."""
        where_sql, params = ("TRUE", []) if not (where and where.strip()) else to_sql(where, ps.columns)
        order = orderby_sql(orderby, ps.columns) + ", " if orderby and orderby.strip() else ""
        if ROW_IDX in ps.columns:
            raise FilterError(f"a column named {ROW_IDX} cannot be filtered here")
        key = self._key(ps, "filter", where_sql, tuple((type(p).__name__, p) for p in params), order)

        def count() -> int:
            found = self._sql(f"SELECT count(*) FROM ({self._source(ps)}) WHERE {where_sql}", params,
                              lambda result: result.fetchone())
            return int(found[0]) if found else 0

        total = self._cached(key + ("count",), count)

        def page() -> tuple[Any, list[int]]:
            table = self._sql(f"SELECT * FROM ({self._source(ps)}) WHERE {where_sql} "
                              f"ORDER BY {order}{ROW_IDX} LIMIT {int(length)} OFFSET {int(offset)}", params,
                              lambda result: result.to_arrow_table())
            indices = table.column(ROW_IDX).to_pylist()
            return table.drop_columns([ROW_IDX]), indices

        table, indices = self._cached(key + (offset, length), page)
        return table, indices, total

    def _sql(self, sql: str, params: list[Any], fetch: Callable[[Any], Any]) -> Any:
        import duckdb

        try:
            with self._connection() as cursor:
                return fetch(cursor.execute(sql, params))
        except (duckdb.DataError, duckdb.BinderException, duckdb.InvalidInputException,
                duckdb.NotImplementedException) as exc:
            raise FilterError(f"the expression cannot be evaluated on these columns: {exc.args[0].splitlines()[0]}") \
                from None
