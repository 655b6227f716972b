"""Server-side SVG charts (web/charts.py): named, escaped, numbers in words."""

from __future__ import annotations


def test_charts_are_named_svg_that_escape_what_users_named():
    from aicommons.web.charts import bar_chart, line_chart, short

    svg = str(bar_chart("Largest repos", [('model:eve/<script>alert(1)</script>', 2e9), ("model:a/b", 1e6)], "bytes"))
    assert svg.startswith('<svg class="chart bars"') and 'role="img"' in svg and "<script>" not in svg
    assert "<title" in svg and "Largest repos: model:eve/&lt;script&gt;" in svg and "2.0 GB" in svg
    line = str(line_chart("Requests", ["12:00", "12:01"], {"2xx": [3, 5], "5xx": [0, 1]}, "requests"))
    assert line.count("<polyline") == 2 and "Requests: 2xx 8 in all, at most 5, 5xx 1 in all, at most 1" in line
    assert "no figures yet" in str(line_chart("Storage", [], {"logical": []}))
    assert (short(0.25), short(22.5), short(1500), short(81_800, "bytes")) == ("0.25", "22", "1.5k", "81.8 kB")
