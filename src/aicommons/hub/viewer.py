"""The dataset viewer's data: a dataset's configs and splits, and its rows, read from the files of
its default branch (``api/viewer.py`` answers with datasets-server's paths and shapes).

Configs and splits follow the card's ``configs:`` front matter when it has one (``config_name``,
``data_files`` as a path, a list, or ``{split, path}`` items, with ``*`` globs), else the Hub's
naming conventions: a file whose name or folder says ``train``, ``validation``/``valid``/``val``/
``dev`` or ``test``/``eval`` belongs to that split, anything else to ``train``, all in the config
``default``. Formats: Parquet, CSV, TSV, JSON Lines and JSON arrays, read with pyarrow.

A split is read whole when its files total at most ``max_bytes`` (``AICOMMONS_VIEWER_MAX_BYTES``);
a larger split shows its first file's first rows only, marked ``partial``. Tables are cached per
commit, so a new commit is seen at once and nothing is served across revisions.

The conversion to ``refs/convert/parquet`` (and ``/parquet``, ``/info``) is ``hub/parquet_export.py``.
Not here yet (docs/viewer.md): ``/search``, ``/statistics``, images and audio.
"""

from __future__ import annotations

import fnmatch
import io
import json
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal

from aicommons.db.repos import RepoRow
from aicommons.errors import HubError
from aicommons.gitrepo import GitStore
from aicommons.hub import content
from aicommons.hub.cards import card_from_readme
from aicommons.hub.content import Entry
from aicommons.hub.objects import ObjectReader

FORMATS = {".parquet": "parquet", ".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "json"}
SPLIT_WORDS = {"train": ("train", "training"), "validation": ("validation", "valid", "val", "dev"),
               "test": ("test", "testing", "eval", "evaluation")}
SPLIT_ORDER = ("train", "validation", "test")
CACHED_TABLES = 8


class ViewerError(HubError):
    """An answer datasets-server gives with ``X-Error-Code`` (``code``)."""

    def __init__(self, message: str, code: str, status: int):
        super().__init__(message, status=status)
        self.code = code


@dataclass(frozen=True)
class Split:
    config: str
    split: str
    files: tuple[Entry, ...]


@dataclass
class SplitRows:
    table: object  # pyarrow.Table
    partial: bool
    original_bytes: int


def _format(path: str) -> str | None:
    for ext, kind in FORMATS.items():
        if path.lower().endswith(ext):
            return kind
    return None


def _split_of(path: str) -> str:
    words = set(re.split(r"[-_. /]+", path.lower().rsplit(".", 1)[0]))
    for split in SPLIT_ORDER:
        if words & set(SPLIT_WORDS[split]):
            return split
    return "train"


def _as_patterns(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def splits_of(card_data: dict | None, files: list[Entry]) -> list[Split]:
    data_files = [f for f in files if f.type == "file" and _format(f.path) and not f.path.startswith(".")]
    configs = (card_data or {}).get("configs") if isinstance(card_data, dict) else None
    found: list[Split] = []
    if isinstance(configs, list) and configs:
        for config in configs:
            if not isinstance(config, dict):
                continue
            name = str(config.get("config_name") or "default")
            spec = config.get("data_files")
            if isinstance(spec, list) and spec and all(isinstance(i, dict) for i in spec):
                items = [(str(i.get("split") or "train"), _as_patterns(i.get("path"))) for i in spec]
            else:
                items = [("train", _as_patterns(spec))] if spec is not None else []
            for split, patterns in items:
                matched = tuple(f for f in data_files if any(fnmatch.fnmatch(f.path, p) for p in patterns))
                if matched:
                    found.append(Split(name, split, matched))
        return found
    by_split: dict[str, list[Entry]] = {}
    for f in sorted(data_files, key=lambda e: e.path):
        by_split.setdefault(_split_of(f.path), []).append(f)
    return [Split("default", s, tuple(by_split[s])) for s in SPLIT_ORDER if s in by_split]


def feature_type(arrow_type) -> dict:
    """A pyarrow type as datasets' feature JSON (``{"dtype": "int64", "_type": "Value"}``...)."""
    import pyarrow as pa

    t = arrow_type
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return {"feature": feature_type(t.value_type), "_type": "List"}
    if pa.types.is_struct(t):
        return {t.field(i).name: feature_type(t.field(i).type) for i in range(t.num_fields)}
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        dtype = "string"
    elif pa.types.is_binary(t) or pa.types.is_large_binary(t):
        dtype = "binary"
    elif pa.types.is_boolean(t):
        dtype = "bool"
    elif pa.types.is_timestamp(t):
        dtype = f"timestamp[{t.unit}]" + (f", tz={t.tz}" if t.tz else "")
    elif pa.types.is_null(t):
        dtype = "null"
    elif pa.types.is_floating(t):
        dtype = f"float{t.bit_width}"
    else:  # int8 ... uint64, date32, decimal128(p, s): pyarrow's names are datasets' dtypes
        dtype = str(t)
    return {"dtype": dtype, "_type": "Value"}


def jsonable(value):
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return None  # binary cells are not shown
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and value != value:
        return None
    return value


class DatasetViewer:
    def __init__(self, git: GitStore, objects: ObjectReader, max_bytes: int):
        # hub/objects.py: a large file is a whole blob or, uploaded through Xet, only chunks.
        self.git, self.objects, self.max_bytes = git, objects, max_bytes
        self._tables: OrderedDict[tuple, SplitRows] = OrderedDict()
        self._lock = threading.Lock()

    def splits(self, repo: RepoRow) -> tuple[str, list[Split]]:
        """(the commit of the default branch, its splits)."""
        if repo.type != "dataset":
            raise ViewerError("Not found.", "ResponseNotFound", 404)
        git_repo = self.git.open(repo.storage_key)
        try:
            commit = content.resolve_revision(git_repo, "main")
        except HubError:
            return "", []
        readme = content.read_text(git_repo, commit, "README.md")
        card = card_from_readme(readme, "dataset")
        files = list(content.list_tree(git_repo, commit, "", recursive=True))
        return str(commit.id), splits_of(card.data, files)

    def split(self, repo: RepoRow, config: str, split: str) -> tuple[str, Split]:
        commit, splits = self.splits(repo)
        for s in splits:
            if s.config == config and s.split == split:
                return commit, s
        raise ViewerError("Not found.", "ResponseNotFound", 404)

    def rows(self, repo: RepoRow, config: str, split: str) -> tuple[str, SplitRows]:
        commit, chosen = self.split(repo, config, split)
        key = (repo.id, commit, config, split)
        with self._lock:
            if key in self._tables:
                self._tables.move_to_end(key)
                return commit, self._tables[key]
        rows = self._read(repo, commit, chosen)
        with self._lock:
            self._tables[key] = rows
            while len(self._tables) > CACHED_TABLES:
                self._tables.popitem(last=False)
        return commit, rows

    def _read(self, repo: RepoRow, commit: str, split: Split) -> SplitRows:
        import pyarrow as pa

        total = sum(f.size for f in split.files)
        partial = total > self.max_bytes
        files = split.files[:1] if partial else split.files
        tables = []
        for f in files:
            data = self._bytes(repo, f, limit=self.max_bytes)
            try:
                tables.append(_parse(f.path, data, truncated=partial and f.size > self.max_bytes))
            except (pa.ArrowException, ValueError, UnicodeDecodeError) as exc:
                raise ViewerError(f"Cannot read {f.path}: {exc}", "UnexpectedApiError", 500) from None
        try:
            table = pa.concat_tables(tables, promote_options="default") if len(tables) > 1 else tables[0]
        except pa.ArrowException as exc:
            raise ViewerError(f"The files of this split have different columns: {exc}", "UnexpectedApiError",
                              500) from None
        return SplitRows(table, partial, total)

    def _bytes(self, repo: RepoRow, entry: Entry, limit: int) -> bytes:
        git_repo = self.git.open(repo.storage_key)
        if entry.lfs is None:
            return content.read_blob(git_repo, entry.oid)[:limit]
        if not self.objects.exists(entry.lfs.oid):  # a pulled-through file not fetched yet (docs/mirror.md)
            raise ViewerError("The server is busier than usual and the response is not ready yet. Please retry "
                              "later.", "ResponseNotReady", 500)
        with self.objects.open(entry.lfs.oid) as f:
            return f.read(limit)


def _parse(path: str, data: bytes, truncated: bool):
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.json as pjson
    import pyarrow.parquet as pq

    kind = _format(path)
    if kind == "parquet":
        if truncated:
            raise ValueError("the file is larger than the viewer reads; its first rows need the Parquet conversion")
        return pq.read_table(pa.BufferReader(data))
    if truncated:  # a text format cut at the limit: drop the partial last line
        data = data[: data.rfind(b"\n") + 1]
    if kind in ("csv", "tsv"):
        return pcsv.read_csv(io.BytesIO(data), parse_options=pcsv.ParseOptions(delimiter="\t" if kind == "tsv" else ","))
    if kind == "jsonl":
        return pjson.read_json(io.BytesIO(data))
    parsed = json.loads(data)
    if isinstance(parsed, dict):  # {"data": [...]} as datasets accepts it
        parsed = next((v for v in parsed.values() if isinstance(v, list)), [parsed])
    return pa.Table.from_pylist([r if isinstance(r, dict) else {"text": r} for r in parsed])





FIRST_ROWS_MIN_NUMBER = 10  # /first-rows keeps at least this many rows, whatever their size
MIN_CELL_BYTES = 100  # a cell whose JSON is longer is cut to this many characters when truncating


def _json_size(value) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str).encode())


def truncate_first_rows(items: list[dict], max_bytes: int, keep: set[str]) -> tuple[list[dict], bool]:
    """datasets-server's ``/first-rows`` size limit over row items (``{row_idx, row, truncated_cells}``):
    the first ``FIRST_ROWS_MIN_NUMBER`` rows are always kept; when they already take ``max_bytes``,
    their cells longer than ``MIN_CELL_BYTES`` (of JSON) become the first ``MIN_CELL_BYTES``
    characters of that JSON and are named in ``truncated_cells``, last rows first, until the rows
    fit; else later rows are added while they fit. ``keep``: columns never cut (image and audio
    URLs). Returns (the rows, whether rows were left out)."""
    kept = items[:FIRST_ROWS_MIN_NUMBER]
    total = sum(_json_size(item) for item in kept)
    if total >= max_bytes:
        for item in reversed(kept):
            if total < max_bytes:
                break
            before = _json_size(item)
            for column, cell in list(item["row"].items()):
                text = json.dumps(cell, ensure_ascii=False, separators=(",", ":"), default=str)
                if column not in keep and len(text.encode()) > MIN_CELL_BYTES:
                    item["row"][column] = text[:MIN_CELL_BYTES]
                    item["truncated_cells"].append(column)
            total += _json_size(item) - before
        return kept, len(kept) < len(items)
    for item in items[FIRST_ROWS_MIN_NUMBER:]:
        total += _json_size(item)
        if total >= max_bytes:
            break
        kept.append(item)
    return kept, len(kept) < len(items)
