"""CSV read by pyarrow under ``datasets``' Csv builder (hub/parquet_csv.py): the conversion writes
the same Parquet, features and split figures as with pandas, for files pyarrow takes and for the
files it hands back to pandas (types pandas would change between chunks, dates, missing values in
int columns, duplicate names). A file that ``datasets`` itself cannot convert (a column of ints
whose later chunk has a float or a word: pandas' chunks disagree) is not in the list: it fails both ways."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

import aicommons.hub.parquet_csv as parquet_csv
from aicommons.hub.parquet_export import convert_folder

CASES = {  # name: (file, read by pyarrow)
    "plain": ("a,b,c,d\n" + "".join(f"{i},word {i},{i / 3},{'True' if i % 2 else 'False'}\n" for i in range(25_000)),
              True),
    "missing": ("a,b,c\n" + "".join(f"{i},{'NA' if i % 5 == 0 else f'x{i}'},{'' if i % 7 == 0 else i / 2}\n"
                                    for i in range(100)), True),
    "quoted": ('a,b\n"x, y",1\n"multi\nline",2\n"",3\n"null",4\n', True),
    "bom": ("\ufeffa,b\n1,2\n", True),
    "spaces": ("a,b\n 1,2\n3, x\n", True),
    "ints after floats": ("a,b\n" + "".join(f"{i / 2},{i}\n" for i in range(15_000)) + "7,2\n", True),
    "dates": ("a,b\n2020-01-01,1\n2021-02-03,2\n", False),
    "int with a missing value": ("a,b\n1,\n2,3\n", False),
    "duplicate names": ("a,a\n1,2\n", False),
    "ones and trues": ("a\n1\nTrue\n", True),  # text both ways
}


def _convert(tmp_path: Path, text: str, name: str) -> tuple:
    source = tmp_path / name / "src"
    source.mkdir(parents=True)
    (source / "train.csv").write_text(text)
    configs, _ = convert_folder(source, tmp_path / name / "out", tmp_path / name / "cache", "x", 10**12)
    config = configs["default"]
    table = pq.read_table(tmp_path / name / "out" / config["files"][0]["local"])
    return table.schema, table.to_pylist(), config["info"]["features"], config["info"]["splits"]


@pytest.mark.parametrize("case", list(CASES))
def test_the_arrow_reader_converts_exactly_as_pandas(case, tmp_path, monkeypatch):
    text, by_arrow = CASES[case]
    read = parquet_csv._read
    taken = []
    monkeypatch.setattr(parquet_csv, "_read", lambda file, config: taken.append(read(file, config)) or taken[-1])
    fast = _convert(tmp_path, text, "fast")
    assert [t is not None for t in taken] == [by_arrow]
    monkeypatch.setattr(parquet_csv, "use_arrow_reader", lambda builder: False)
    assert fast == _convert(tmp_path, text, "pandas")
