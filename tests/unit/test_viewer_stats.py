"""The column statistics of hub/viewer_stats.py for each column kind (datasets-server's shapes)."""

from __future__ import annotations

import pyarrow as pa

from aicommons.hub.viewer_stats import column_statistics


def stats(values, feature=None, type_=None):
    return column_statistics("c", pa.chunked_array([pa.array(values, type=type_)]), feature)


def test_string_labels_bools_and_class_labels():
    labels = stats(["b", "a", "b", None, "c", "b"])
    assert labels["column_type"] == "string_label"
    assert labels["column_statistics"] == {"nan_count": 1, "nan_proportion": 0.16667, "n_unique": 3,
                                           "frequencies": {"b": 3, "a": 1, "c": 1}}
    flags = stats([True, False, True, None])
    assert flags["column_type"] == "bool"
    assert flags["column_statistics"] == {"nan_count": 1, "nan_proportion": 0.25, "frequencies": {"True": 2, "False": 1}}
    classes = stats([0, 1, 1, -1, None], {"names": ["neg", "pos"], "_type": "ClassLabel"})
    assert classes["column_type"] == "class_label"
    assert classes["column_statistics"] == {"nan_count": 1, "nan_proportion": 0.2, "no_label_count": 1,
                                            "no_label_proportion": 0.2, "n_unique": 2,
                                            "frequencies": {"pos": 2, "neg": 1}}


def test_numbers_texts_and_lists():
    floats = stats([0.5, float("nan"), None, 1.5, 2.5])
    column = floats["column_statistics"]
    assert floats["column_type"] == "float"
    assert (column["nan_count"], column["min"], column["max"], column["mean"], column["median"]) == (2, 0.5, 2.5, 1.5, 1.5)
    assert column["std"] == 1.0 and sum(column["histogram"]["hist"]) == 3 and len(column["histogram"]["bin_edges"]) == 11
    ints = stats(list(range(100)))["column_statistics"]
    assert ints["histogram"] == {"hist": [10] * 10, "bin_edges": [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 99]}
    constant = stats([7, 7, 7])["column_statistics"]
    assert constant["histogram"] == {"hist": [3], "bin_edges": [7, 7]} and constant["std"] == 0.0
    texts = stats([f"text number {i}" for i in range(40)])
    assert texts["column_type"] == "string_text" and texts["column_statistics"]["min"] == len("text number 0")
    lists = stats([[1, 2], [], [3], None])
    assert lists["column_type"] == "list"
    assert (lists["column_statistics"]["min"], lists["column_statistics"]["max"], lists["column_statistics"]["nan_count"]) == (0, 2, 1)
    assert stats([{"a": 1}]) is None
