"""The ranking of hub/viewer_search.py: a query matching many rows is ranked in two parts (the
selective terms' rows scored in full, a bound for the rest); where the bound proves it, the page is
exactly FTS5's full BM25 ranking, and otherwise the rows of common terms only are ranked by their
first ``TAIL_RANKED``."""

from __future__ import annotations

import random
import sqlite3

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aicommons.hub import viewer_search as vs

COMMON, SOMETIMES = "alpha", "river"


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    """3,000 rows: ``alpha`` in ~2/3 of them (an idf FTS5 raises to 1e-6), ``river`` in ~1/5, each
    ``rareNN`` word in a handful; texts of varied lengths so that BM25 scores differ."""
    rng = random.Random(15)
    texts = []
    for i in range(3000):
        words = [f"filler{rng.randrange(400)}" for _ in range(rng.randint(2, 14))]
        if rng.random() < 0.66:
            words += [COMMON] * rng.randint(1, 3)
        if rng.random() < 0.2:
            words.append(SOMETIMES)
        if i % 97 == 0:
            words.append(f"rare{i % 7}")
        rng.shuffle(words)
        texts.append(" ".join(words))
    folder = tmp_path_factory.mktemp("search")
    pq.write_table(pa.table({"text": texts}), folder / "0000.parquet")
    assert vs.build_index([folder / "0000.parquet"], folder / "index.sqlite") == ["text"]
    return folder / "index.sqlite"


def full_ranking(index, query: str) -> list[int]:
    with sqlite3.connect(index) as con:
        return [r[0] for r in con.execute("SELECT rowid FROM search WHERE search MATCH ? ORDER BY rank, rowid",
                                          (vs.match_expression(query),))]


def test_the_row_count_is_read_from_fts5s_own_record(index):
    with sqlite3.connect(index) as con:
        assert vs._row_count(con) == 3000
    assert vs._varint(bytes([0x81, 0x00])) == 128 and vs._varint(bytes([0x05])) == 5


@pytest.mark.parametrize("query", [f"{COMMON} rare3", f"{SOMETIMES} rare1 filler7", f"rare2 {COMMON} {SOMETIMES}",
                                   f"filler3 filler9 {SOMETIMES}"])
def test_pages_the_bound_proves_are_the_full_ranking(index, monkeypatch, query):
    monkeypatch.setattr(vs, "RANK_ALL", 10)  # every query here takes the two-part path
    monkeypatch.setattr(vs, "CANDIDATES", 200)
    expected = full_ranking(index, query)
    ids, total = vs.search(index, query, 0, 5)
    assert total == len(expected) and total > vs.RANK_ALL
    assert ids == expected[:5]


def test_past_the_bound_rows_of_common_terms_are_ranked_by_their_first_rows(index, monkeypatch):
    monkeypatch.setattr(vs, "RANK_ALL", 10)
    monkeypatch.setattr(vs, "CANDIDATES", 200)
    monkeypatch.setattr(vs, "TAIL_RANKED", 300)
    query = f"{COMMON} rare4"
    expected = full_ranking(index, query)
    with sqlite3.connect(index) as con:
        rare = [r[0] for r in con.execute("SELECT rowid FROM search WHERE search MATCH '\"rare4\"' ORDER BY rank, rowid")]
        common = [r[0] for r in con.execute(
            "SELECT rowid FROM search WHERE search MATCH '\"alpha\" NOT \"rare4\"' ORDER BY rowid LIMIT 300")]
    ids, total = vs.search(index, query, 0, 100)
    assert total == len(expected)
    assert ids[:len(rare)] == expected[:len(rare)]  # the rare word's rows first, exactly ranked
    tail = ids[len(rare):]
    assert set(tail) <= set(common)  # then the best of the first 300 rows of the common word only
    assert tail == [r for r in expected if r in set(common)][:len(tail)]
    assert len(ids) == 100
    # past the ranked part: the other rows of the common word, in row order, and nothing twice
    whole = [i for offset in range(0, total, 100) for i in vs.search(index, query, offset, 100)[0]]
    assert sorted(whole) == sorted(expected) and len(whole) == total
    assert whole[len(rare) + 300:] == sorted(whole[len(rare) + 300:])


def test_a_query_under_the_threshold_is_ranked_in_one_query(index):
    query = f"{SOMETIMES} rare1"
    expected = full_ranking(index, query)
    assert len(expected) <= vs.RANK_ALL
    assert vs.search(index, query, 3, 7) == (expected[3:10], len(expected))
    assert vs.search(index, '" OR NEAR(x', 0, 5)[1] == 0  # query words are terms, never FTS5 syntax
