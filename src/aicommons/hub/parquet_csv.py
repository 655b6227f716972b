"""CSV and TSV files read by pyarrow's multithreaded CSV reader under ``datasets``' own ``Csv``
builder (``hub/parquet_export.py``), instead of pandas in chunks of 10,000 rows: the builder still
writes the Parquet, computes the features and the info, so only the parsing changes.

The answer must be what ``datasets`` gives (``load_dataset`` checks the export's ``/info`` against
what it computes). So this reader is used only when it cannot differ:

- the builder's config is ``CsvConfig``'s defaults but for the separator, with no ``features``;
- the file is a plain local file of at most ``MAX_BYTES`` (it is read whole before any row is
  handed on, so that a refusal can still fall back);
- pyarrow reads it with pandas' rules (pandas' missing-value strings, also in text columns and
  quoted; pandas' true/false words) without an error;
- the first chunk pandas would read (10,000 rows) gives the same table both ways: same column
  names, types and values. pyarrow infers each column's type from all of its rows, so a column
  whose later rows would make pandas change type (ints, then a float; a date; a missing value in
  an int column) differs in that first chunk already and falls back.

Any refusal reads the file with pandas, exactly as the builder does.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

log = logging.getLogger(__name__)
MAX_BYTES = 512 * 1024 * 1024
BLOCK_BYTES = 1024 * 1024  # pyarrow's default: 8 MiB blocks read 32 MB 2-5x slower on 2 cores
PANDAS_TRUE = ["True", "TRUE", "true"]
PANDAS_FALSE = ["False", "FALSE", "false"]


def use_arrow_reader(builder: Any) -> bool:
    """Make ``builder`` (when it is ``datasets``' Csv builder with default options) read its
    files with pyarrow where that gives the same tables (module docstring). Returns whether it does."""
    from datasets.packaged_modules.csv.csv import Csv, CsvConfig  # type: ignore[import-untyped]

    config = builder.config
    if not isinstance(builder, Csv) or config.features is not None or config.sep not in (",", "\t"):
        return False
    if config.pd_read_csv_kwargs != CsvConfig(sep=config.sep).pd_read_csv_kwargs:
        return False
    pandas_tables = builder._generate_tables

    def generate_tables(base_files: Any, files_iterables: Any) -> Iterator[tuple[Any, Any]]:
        from datasets.builder import Key  # type: ignore[import-untyped]

        for shard_idx, files_iterable in enumerate(files_iterables):
            for file in files_iterable:
                table = _read(file, config)
                if table is None:  # pandas, as the builder reads it, for this file alone
                    for key, found in pandas_tables(base_files=base_files, files_iterables=[[file]]):
                        yield Key(shard_idx, key.item_or_batch_id), found
                    continue
                for batch_idx, start in enumerate(range(0, table.num_rows, config.chunksize)):
                    yield Key(shard_idx, batch_idx), table.slice(start, config.chunksize)

    builder._generate_tables = generate_tables
    return True


def _read(file: Any, config: Any) -> Any:
    """The file as one pyarrow Table read by pyarrow, or None where that may differ from pandas."""
    import pandas as pd
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.csv as pcsv  # type: ignore[import-untyped]

    try:  # the strings pandas reads as missing, from pandas itself
        from pandas._libs.parsers import STR_NA_VALUES  # type: ignore[import-not-found]
    except ImportError:
        return None
    if not isinstance(file, str) or not os.path.isfile(file) or os.path.getsize(file) > MAX_BYTES:
        return None
    try:
        table = pcsv.read_csv(
            file, read_options=pcsv.ReadOptions(use_threads=True, block_size=BLOCK_BYTES),
            parse_options=pcsv.ParseOptions(delimiter=config.sep, newlines_in_values=True, ignore_empty_lines=True),
            convert_options=pcsv.ConvertOptions(null_values=sorted(STR_NA_VALUES), strings_can_be_null=True,
                                                quoted_strings_can_be_null=True, true_values=PANDAS_TRUE,
                                                false_values=PANDAS_FALSE))
        # pandas' text columns (its pyarrow-backed strings) come as large_string
        table = table.cast(pa.schema([pa.field(f.name, pa.large_string()) if f.type == pa.string() else f
                                      for f in table.schema]))
        with pd.read_csv(file, iterator=True, **config.pd_read_csv_kwargs) as chunks:
            first = pa.Table.from_pandas(next(iter(chunks), pd.DataFrame()))
    except (pa.ArrowException, ValueError, UnicodeDecodeError, OSError) as exc:
        log.debug("%s: read with pandas (%s)", file, exc)
        return None
    head = table.slice(0, first.num_rows)
    if first.num_rows == 0 or head.schema.names != first.schema.names or not head.equals(first):
        return None
    types = {str(t) for t in table.schema.types}
    if not types <= {"int64", "double", "large_string", "bool"}:
        return None
    return table
