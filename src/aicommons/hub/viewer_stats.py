"""Per-column statistics of a converted split (datasets-server's ``/statistics``), computed once by
the conversion job and stored with the conversion's result.

Shapes and rules as datasets-server's: ``column_type`` by the ``datasets`` feature (``ClassLabel`` →
``class_label``; ints, floats, bools; strings with at most ``MAX_LABELS`` distinct values →
``string_label``, else ``string_text`` (statistics of their lengths); lists → ``list`` (of their
lengths)); numbers get ``nan_count``, ``nan_proportion``, ``min``, ``max``, ``mean``, ``median``,
``std`` and a 10-bin ``histogram``; categories get ``n_unique`` and ``frequencies``. Floats are
rounded to 5 decimals. Other columns (structs, images, audio, binary) are left out.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

BINS = 10
DECIMALS = 5
MAX_LABELS = 30


def _round(value: float) -> float:
    return round(float(value), DECIMALS)


def _numeric(values: Any, count: int, integer: bool) -> dict[str, Any]:
    """Statistics of a numpy array of non-null values (``count`` rows in all)."""
    import numpy as np

    nans = count - len(values)
    body: dict[str, Any] = {"nan_count": nans, "nan_proportion": _round(nans / count) if count else 0.0}
    if len(values) == 0:
        return {**body, "min": None, "max": None, "mean": None, "median": None, "std": None, "histogram": None}
    low, high = values.min(), values.max()
    edges: list[Any]
    if integer:
        low, high = int(low), int(high)
        size = max(1, math.ceil((high - low + 1) / BINS))
        edges = list(range(low, high + 1, size))
        edges = [*edges, high] if edges[-1] != high else edges
        if len(edges) == 1:
            edges = [low, high]
        hist = np.histogram(values, bins=np.array(edges, dtype=float))[0].tolist()
    else:
        low, high = float(low), float(high)
        edges_array = np.linspace(low, high, BINS + 1) if high > low else np.array([low, high])
        hist = np.histogram(values, bins=edges_array)[0].tolist() if high > low else [len(values)]
        edges = [_round(e) for e in edges_array]
    return {**body, "min": low if integer else _round(low), "max": high if integer else _round(high),
            "mean": _round(values.mean()), "median": _round(np.median(values)),
            "std": _round(values.std(ddof=1)) if len(values) > 1 else 0.0,
            "histogram": {"hist": [int(h) for h in hist], "bin_edges": edges}}


def _categories(column: Any, count: int, names: list[str] | None = None) -> dict[str, Any]:
    import pyarrow.compute as pc  # type: ignore[import-untyped]

    nans = column.null_count
    counts = {str(item["values"]): int(item["counts"]) for item in pc.value_counts(column.drop_null()).to_pylist()}
    body: dict[str, Any] = {"nan_count": nans, "nan_proportion": _round(nans / count) if count else 0.0}
    if names is not None:  # class labels: -1 is "no label"
        no_label = counts.pop("-1", 0)
        counts = {names[int(k)] if 0 <= int(k) < len(names) else k: v for k, v in counts.items()}
        body.update(no_label_count=no_label, no_label_proportion=_round(no_label / count) if count else 0.0)
    frequencies = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return {**body, "n_unique": len(frequencies), "frequencies": frequencies}


def column_statistics(name: str, column: Any, feature: dict[str, Any] | None) -> dict[str, Any] | None:
    """One column's entry (``column`` a pyarrow ChunkedArray), or None for a kind not described."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    t, count = column.type, len(column)
    if isinstance(feature, dict) and feature.get("_type") == "ClassLabel":
        kind, stats = "class_label", _categories(column, count, list(feature.get("names") or []))
    elif pa.types.is_boolean(t):
        kind, stats = "bool", _categories(column, count)
        stats.pop("n_unique")
    elif pa.types.is_integer(t):
        kind, stats = "int", _numeric(column.drop_null().to_numpy(), count, integer=True)
    elif pa.types.is_floating(t):
        values = column.drop_null().to_numpy()
        kind, stats = "float", _numeric(values[~np.isnan(values)], count, integer=False)
    elif pa.types.is_string(t) or pa.types.is_large_string(t):
        distinct = pc.count_distinct(column).as_py()
        if distinct <= MAX_LABELS:
            kind, stats = "string_label", _categories(column, count)
        else:
            kind, stats = "string_text", _numeric(pc.utf8_length(column).drop_null().to_numpy(), count, integer=True)
    elif pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        kind, stats = "list", _numeric(pc.list_value_length(column).drop_null().to_numpy(), count, integer=True)
    else:
        return None
    return {"column_name": name, "column_type": kind, "column_statistics": stats}


def split_statistics(files: list[Path], features: dict[str, Any] | None, partial: bool) -> dict[str, Any]:
    """``{num_examples, statistics, partial}`` of the split's Parquet files, a column at a time."""
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    schema = pq.read_schema(files[0])
    entries, rows = [], 0
    for name in schema.names:
        column = pq.read_table([str(f) for f in files], columns=[name]).column(name)
        rows = len(column)
        entry = column_statistics(name, column, (features or {}).get(name))
        if entry is not None:
            entries.append(entry)
    return {"num_examples": rows, "statistics": sorted(entries, key=lambda e: e["column_name"]), "partial": partial}
