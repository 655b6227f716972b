"""``/first-rows``' size limit (hub/viewer.py ``truncate_first_rows``), as datasets-server's."""

from __future__ import annotations

from aicommons.hub.viewer import truncate_first_rows


def items(n: int, text: str) -> list[dict]:
    return [{"row_idx": i, "row": {"i": i, "text": text, "image": {"src": "x" * 300}}, "truncated_cells": []}
            for i in range(n)]


def test_later_rows_are_added_while_they_fit():
    rows, cut = truncate_first_rows(items(100, "y" * 1000), 20_000, {"image"})
    assert 10 < len(rows) < 100 and cut is True
    assert all(r["truncated_cells"] == [] for r in rows)
    everything, cut = truncate_first_rows(items(30, "short"), 1_000_000, set())
    assert len(everything) == 30 and cut is False


def test_the_first_ten_rows_are_kept_and_cut_from_the_last_one_back():
    rows, cut = truncate_first_rows(items(12, "z" * 5000), 20_000, {"image"})
    assert len(rows) == 10 and cut is True
    truncated = [r["row_idx"] for r in rows if r["truncated_cells"]]
    assert truncated == [3, 4, 5, 6, 7, 8, 9]  # 10 rows of ~5.4 kB; each cut saves ~4.9 kB: seven to get under 20 kB
    assert rows[9]["row"]["text"] == '"' + "z" * 99 and rows[9]["truncated_cells"] == ["text"]
    assert rows[9]["row"]["image"] == {"src": "x" * 300} and rows[9]["row"]["i"] == 9  # kept columns, short cells
