"""The dataset viewer over the converted Parquet files (issue 15): ``/rows`` at any offset,
``/filter`` in sandboxed DuckDB behind the parser, ``/size`` and ``/splits`` from the conversion, on a
live hub with conversion on, whose preview of main's files is cut short (``AICOMMONS_VIEWER_MAX_BYTES``)
so that only the converted files can give these answers."""

from __future__ import annotations

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfApi

from tests.compat.test_parquet_export import OTHER, OWNER, converting_hub, wait_converted
from tests.conftest import unique_name

ROWS = 25_000  # more than one 10,000-row group (hub/parquet_export.py ROW_GROUP_ROWS)
CSV = "text,label,score\n" + "".join(f"sentence number {i},{i % 7},{i / 8}\n" for i in range(ROWS))
CSV_TEST = "text,label,score\n" + "".join(f"held out {i},{i % 2},{i}\n" for i in range(9))


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    yield from converting_hub(tmp_path_factory, "viewer-duckdb", AICOMMONS_VIEWER_MAX_BYTES="4096")


@pytest.fixture(scope="module")
def dataset(hub):
    owner = HfApi(endpoint=hub.url, token=OWNER)
    repo = f"pat/{unique_name('duck')}"
    owner.create_repo(repo, repo_type="dataset")
    info = owner.create_commit(repo, [CommitOperationAdd("train.csv", CSV.encode()),
                                      CommitOperationAdd("test.csv", CSV_TEST.encode())],
                               commit_message="data", repo_type="dataset")
    wait_converted(hub, repo, info.oid, token=OWNER)
    return repo, info.oid


def ds(hub, path: str, token: str | None = OWNER, **params) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{hub.url}/datasets-server/{path}", params=params, headers=headers, timeout=60)


def expected(i: int) -> dict:
    return {"text": f"sentence number {i}", "label": i % 7, "score": i / 8}


def test_rows_at_any_offset_come_from_the_converted_files(hub, dataset):
    repo, sha = dataset
    preview = ds(hub, "rows", dataset=repo, config="default", split="train")
    assert preview.status_code == 200 and preview.headers["x-revision"] == sha
    body = preview.json()
    # The preview of main's files would stop at 4 kB (partial); the converted split has every row.
    assert body["num_rows_total"] == ROWS and body["partial"] is False
    assert [f["name"] for f in body["features"]] == ["text", "label", "score"]
    assert body["features"][1]["type"] == {"dtype": "int64", "_type": "Value"}
    for offset, length in ((0, 5), (997, 10), (9950, 100), (19_999, 2), (ROWS - 3, 100), (1234, 1)):
        r = ds(hub, "rows", dataset=repo, config="default", split="train", offset=str(offset), length=str(length))
        rows = r.json()["rows"]
        want = list(range(offset, min(offset + length, ROWS)))
        assert [row["row_idx"] for row in rows] == want, offset
        assert [row["row"] for row in rows] == [expected(i) for i in want], offset
    past = ds(hub, "rows", dataset=repo, config="default", split="train", offset=str(ROWS + 10))
    assert past.status_code == 200 and past.json()["rows"] == []
    first = ds(hub, "first-rows", dataset=repo, config="default", split="train").json()
    assert len(first["rows"]) == 100 and first["truncated"] is True and first["rows"][99]["row"] == expected(99)
    missing = ds(hub, "rows", dataset=repo, config="default", split="nope")
    assert missing.status_code == 404 and missing.headers["x-error-code"] == "ResponseNotFound"
    splits = ds(hub, "splits", dataset=repo).json()["splits"]
    assert [(s["config"], s["split"]) for s in splits] == [("default", "train"), ("default", "test")]


def test_row_groups_are_crossed(hub, dataset):
    """The converted file has several row groups, so the offsets above cross their boundaries."""
    import pyarrow.parquet as pq

    repo, _ = dataset
    url = ds(hub, "parquet", dataset=repo).json()["parquet_files"][0]["url"]
    data = httpx.get(url, headers={"authorization": f"Bearer {OWNER}"}, follow_redirects=True).content
    import io

    metadata = pq.ParquetFile(io.BytesIO(data)).metadata
    assert metadata.num_row_groups == 3 and metadata.row_group(0).num_rows == 10_000


def test_filter_in_duckdb(hub, dataset):
    repo, _ = dataset
    r = ds(hub, "filter", dataset=repo, config="default", split="train", where='"label" = 3 AND "score" >= 250',
           orderby='"score" DESC', length="4", offset="2")
    assert r.status_code == 200, r.text
    body = r.json()
    matching = [i for i in range(ROWS) if i % 7 == 3 and i / 8 >= 250]
    assert body["num_rows_total"] == len(matching) and body["partial"] is False
    want = sorted(matching, reverse=True)[2:6]
    assert [row["row_idx"] for row in body["rows"]] == want
    assert [row["row"] for row in body["rows"]] == [expected(i) for i in want]
    like = ds(hub, "filter", dataset=repo, config="default", split="train",
              where="\"text\" LIKE '%number 24__' OR \"text\" ILIKE 'SENTENCE NUMBER 7'").json()
    assert [row["row_idx"] for row in like["rows"]] == [7, *range(2400, 2500)][:100]
    assert like["num_rows_total"] == 101
    glob = ds(hub, "filter", dataset=repo, config="default", split="train", where="\"text\" GLOB '*number 1?'").json()
    assert [row["row_idx"] for row in glob["rows"]] == list(range(10, 20))
    # A value is bound, never spliced: a quote inside it is just a character.
    quoted = ds(hub, "filter", dataset=repo, config="default", split="train", where="\"text\" = 'it''s'")
    assert quoted.status_code == 200 and quoted.json()["num_rows_total"] == 0
    nulls = ds(hub, "filter", dataset=repo, config="default", split="train", where='"text" IS NOT NULL AND NOT "label" <> 0')
    assert nulls.json()["num_rows_total"] == len(range(0, ROWS, 7))
    mismatch = ds(hub, "filter", dataset=repo, config="default", split="train", where="\"label\" = 'abc'")
    assert mismatch.status_code == 422 and mismatch.headers["x-error-code"] == "InvalidParameter"
    # IN and BETWEEN, as datasets-server accepts them (values bound, never spliced).
    picked = ds(hub, "filter", dataset=repo, config="default", split="train",
                where="\"label\" IN (1, 2) AND \"score\" BETWEEN 10 AND 12.5 AND \"text\" NOT IN ('sentence number 81')").json()
    want = [i for i in range(ROWS) if i % 7 in (1, 2) and 10 <= i / 8 <= 12.5 and i != 81]
    assert [row["row_idx"] for row in picked["rows"]] == want and picked["num_rows_total"] == len(want)
    outside = ds(hub, "filter", dataset=repo, config="default", split="train",
                 where="\"score\" NOT BETWEEN 1 AND 3000 OR \"text\" IN ('it''s', 'sentence number 9')").json()
    assert outside["num_rows_total"] == len([i for i in range(ROWS) if not 1 <= i / 8 <= 3000 or i == 9])
    mixed = ds(hub, "filter", dataset=repo, config="default", split="train", where="\"label\" IN (1, 'x')")
    assert mixed.status_code == 422 and mixed.headers["x-error-code"] == "InvalidParameter"
    # Offsets at or past the end: 200, no rows, the real total (docs/viewer.md).
    for path, extra, total in (("rows", {}, ROWS), ("filter", {"where": '"label" = 3'}, len(range(3, ROWS, 7))),
                               ("search", {"query": "sentence"}, None)):
        past = ds(hub, path, dataset=repo, config="default", split="train", offset=str(ROWS), **extra)
        assert past.status_code == 200 and past.json()["rows"] == [], (path, past.text[:200])
        assert total is None or past.json()["num_rows_total"] == total


@pytest.mark.parametrize("where", [
    '"n" IN (1, 3)', '"n" NOT IN (1, 3)', '"n" BETWEEN 2 AND 3', '"n" NOT BETWEEN 2 AND 3',
    "\"s\" IN ('a', 'c')", "\"s\" NOT IN ('a')", "NOT \"n\" IN (2) AND \"s\" BETWEEN 'a' AND 'b'",
])
def test_in_and_between_agree_in_both_engines_with_nulls(where):
    """The preview (pyarrow) and the converted files (DuckDB) give the same rows, nulls included
    (a null is neither IN nor NOT IN a list, as in SQL)."""
    import duckdb
    import pyarrow as pa

    from aicommons.hub.viewer_filter import filter_table, to_sql

    table = pa.table({"n": [1, 2, 3, None, 5], "s": ["a", "b", None, "c", "a"]})
    arrow = filter_table(table, where, None).column("__row_idx").to_pylist()
    sql, params = to_sql(where, set(table.schema.names))
    con = duckdb.connect()
    con.register("t", table.append_column("i", pa.array(range(5))))
    assert arrow == [r[0] for r in con.execute(f"SELECT i FROM t WHERE {sql} ORDER BY i", params).fetchall()]


HOSTILE = [
    "\"label\" = 1; DROP TABLE t", "\"label\" = 1 -- all", "\"label\" = 1 /* x */", "\"label\" = (SELECT 1)",
    "\"text\" = read_csv('/etc/passwd')", "\"label\" = 1 OR read_parquet('/etc/passwd') IS NULL",
    "\"label\" = 1 UNION ALL SELECT * FROM read_text('/etc/passwd')", "COPY (SELECT 1) TO '/tmp/x'",
    "ATTACH '/tmp/evil.db' AS evil", "\"label\" = 1; ATTACH ':memory:' AS x", "INSTALL httpfs", "LOAD fts",
    "SET enable_external_access = true", "\"text\" = getenv('HOME')", "\"label\" = 1 AND \"text\" = 'x''; DROP --'",
    "\"label\" = 1\u037e DROP TABLE t",  # Greek question mark, a semicolon look-alike
    "\uff02label\uff02 = 1",  # full-width quotes
    "\"label\" = \u0661",  # Arabic-Indic digit one
    "\"label\" = 1 \u0391ND \"label\" = 2",  # Greek capital alpha in AND
    "\"label\" = 1 AN\u200bD \"label\" = 2",  # zero-width space in a keyword
    "\"label\"\u00a0= 1",  # no-break space
    "\"label\" = 1\u2028OR 1=1", "\"text\" = 'a\u0007'", "\"label\" = 1 OR 1 = 1",
    "\"label\" IN (SELECT 1)", "\"label\" IN ()", "\"label\" IN (1, read_csv('/etc/passwd'))",
    "\"label\" IN (\"score\")", "\"label\" IN (1, 2", "\"label\" BETWEEN 1", "\"label\" BETWEEN (SELECT 1) AND 2",
    "\"label\" BETWEEN 1 AND 2 AND", "\"label\" NOT NOT IN (1)", "\"label\" IN (1); DROP TABLE t",
    "lower(\"text\") = 'a'", "\"nope\" = 1",
    "(" * 60 + "\"label\" = 1" + ")" * 60, "x" * 5000,
]


@pytest.mark.parametrize("where", HOSTILE)
def test_hostile_filters_get_the_documented_error(hub, dataset, where):
    repo, _ = dataset
    r = ds(hub, "filter", dataset=repo, config="default", split="train", where=where)
    assert r.status_code == 422 and r.headers["x-error-code"] == "InvalidParameter", (where, r.status_code, r.text)
    assert "root:" not in r.text
    order = ds(hub, "filter", dataset=repo, config="default", split="train", orderby=where)
    assert order.status_code == 422 and order.headers["x-error-code"] == "InvalidParameter"


def test_duckdb_is_shut_in_its_folder(tmp_path):
    """Even a statement that got past the parser reads no file outside the cache folder, loads no
    extension and cannot change that."""
    import duckdb

    from aicommons.hub.viewer_query import ViewerQueries

    queries = ViewerQueries(None, None, tmp_path / "cache")  # type: ignore[arg-type]
    (tmp_path / "secret.csv").write_text("a\n1\n")
    for sql in (f"SELECT * FROM read_csv('{tmp_path}/secret.csv')", "SELECT * FROM read_text('/etc/passwd')",
                f"SELECT * FROM read_csv('{tmp_path}/cache/../secret.csv')",
                f"COPY (SELECT 1) TO '{tmp_path}/out.csv'", f"ATTACH '{tmp_path}/x.db' AS x",
                "SET enable_external_access = true", "INSTALL httpfs", "LOAD httpfs",
                "SELECT * FROM read_csv('http://127.0.0.1:1/x.csv')"):
        with pytest.raises(duckdb.Error):
            with queries._connection() as cursor:
                cursor.execute(sql).fetchall()
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "x.db").exists()


def test_search_ranks_with_bm25_over_the_jobs_index(hub, dataset):
    repo, sha = dataset
    valid = ds(hub, "is-valid", dataset=repo).json()
    assert valid["search"] is True and valid["filter"] is True and valid["viewer"] is True

    def search(query: str, **params):
        r = ds(hub, "search", dataset=repo, config="default", split="train", query=query, **params)
        assert r.status_code == 200 and r.headers["x-revision"] == sha, r.text
        return r.json()

    one = search("1234")
    assert one["num_rows_total"] == 1 and one["rows"] == [{"row_idx": 1234, "row": expected(1234), "truncated_cells": []}]
    assert [f["name"] for f in one["features"]] == ["text", "label", "score"] and one["partial"] is False
    # Any word matches; rows with more of them rank first; Porter stemming: "sentences" finds "sentence".
    ranked = search("17 sentences 1234", length="5")
    assert ranked["num_rows_total"] == ROWS and [r["row_idx"] for r in ranked["rows"]][:2] == [17, 1234]
    assert [r["row_idx"] for r in search("SENTENCE", offset=str(ROWS - 10))["rows"]] == list(range(ROWS - 10, ROWS))
    # FTS5's own syntax in a query is just words: no error, no injection.
    for query in ('NEAR("a" "b")', 'text:17', '"', "17*", "-17 OR *", "' OR 1=1 --"):
        assert search(query)["num_rows_total"] in (0, 1)
    assert search("zebra")["num_rows_total"] == 0 and search("!!!")["rows"] == []
    test_split = ds(hub, "search", dataset=repo, config="default", split="test", query="held").json()
    assert test_split["num_rows_total"] == 9
    missing = ds(hub, "search", dataset=repo, config="default", split="train")
    assert missing.status_code == 422 and missing.headers["x-error-code"] == "MissingRequiredParameter"
    too_long = ds(hub, "search", dataset=repo, config="default", split="train", query="x", length="101")
    assert too_long.status_code == 422 and too_long.headers["x-error-code"] == "InvalidParameter"
    nope = ds(hub, "search", dataset=repo, config="default", split="nope", query="x")
    assert nope.status_code == 404 and nope.headers["x-error-code"] == "ResponseNotFound"


def test_statistics_computed_by_the_job(hub, dataset):
    repo, sha = dataset
    r = ds(hub, "statistics", dataset=repo, config="default", split="train")
    assert r.status_code == 200 and r.headers["x-revision"] == sha, r.text
    body = r.json()
    assert body["num_examples"] == ROWS and body["partial"] is False
    by_name = {c["column_name"]: c for c in body["statistics"]}
    assert [c["column_name"] for c in body["statistics"]] == ["label", "score", "text"]
    label = by_name["label"]
    assert label["column_type"] == "int"
    labels = [i % 7 for i in range(ROWS)]
    stats = label["column_statistics"]
    assert (stats["min"], stats["max"], stats["nan_count"], stats["nan_proportion"]) == (0, 6, 0, 0.0)
    assert stats["mean"] == round(sum(labels) / ROWS, 5) and stats["median"] == 3
    assert stats["histogram"]["bin_edges"] == [0, 1, 2, 3, 4, 5, 6]
    assert stats["histogram"]["hist"] == [labels.count(v) for v in range(5)] + [labels.count(5) + labels.count(6)]
    score = by_name["score"]["column_statistics"]
    assert by_name["score"]["column_type"] == "float" and score["max"] == (ROWS - 1) / 8
    assert len(score["histogram"]["bin_edges"]) == 11 and sum(score["histogram"]["hist"]) == ROWS
    text = by_name["text"]
    assert text["column_type"] == "string_text"
    assert (text["column_statistics"]["min"], text["column_statistics"]["max"]) == (17, len(f"sentence number {ROWS - 1}"))
    assert ds(hub, "is-valid", dataset=repo).json()["statistics"] is True
    nope = ds(hub, "statistics", dataset=repo, config="default", split="nope")
    assert nope.status_code == 404 and nope.headers["x-error-code"] == "ResponseNotFound"


def test_croissant_validates_with_mlcroissant(hub, dataset):
    import mlcroissant

    repo, sha = dataset
    r = ds(hub, "croissant", dataset=repo)
    assert r.status_code == 200 and r.headers["x-revision"] == sha, r.text
    body = r.json()
    hub_api = httpx.get(f"{hub.url}/api/datasets/{repo}/croissant", headers={"authorization": f"Bearer {OWNER}"})
    assert hub_api.status_code == 200 and hub_api.json() == body
    assert hub_api.headers["content-type"].startswith("application/ld+json")
    assert body["distribution"][0]["contentUrl"] == f"{hub.url}/datasets/{repo}/tree/refs%2Fconvert%2Fparquet"
    assert body["distribution"][1]["includes"] == "default/*/*.parquet"
    metadata = mlcroissant.Dataset(jsonld=body).metadata  # raises on a description that is not valid Croissant
    assert [rs.name for rs in metadata.record_sets] == ["default_splits", "default"]
    fields = {f.name: f for f in metadata.record_sets[1].fields}
    assert list(fields) == ["default/split", "default/text", "default/label", "default/score"]
    assert [str(t) for t in fields["default/label"].data_types] == ["http://mlcommons.org/croissant/Int64"]
    assert metadata.record_sets[0].data == [{"default_splits/split_name": "train"},
                                            {"default_splits/split_name": "test"}]


def test_size_from_the_converted_files(hub, dataset):
    repo, sha = dataset
    r = ds(hub, "size", dataset=repo)
    assert r.status_code == 200 and r.headers["x-revision"] == sha
    body = r.json()
    train = next(s for s in body["size"]["splits"] if s["split"] == "train")
    assert train["num_rows"] == ROWS and train["num_columns"] == 3 and train["num_bytes_parquet_files"] > 0
    assert train["num_bytes_original_files"] == len(CSV) and train["num_bytes_memory"] > 0
    assert body["size"]["dataset"]["num_rows"] == ROWS + 9 and body["partial"] is False


def test_private_converted_dataset_answers_as_missing(hub):
    owner = HfApi(endpoint=hub.url, token=OWNER)
    repo = f"pat/{unique_name('duckpriv')}"
    owner.create_repo(repo, repo_type="dataset", private=True)
    info = owner.create_commit(repo, [CommitOperationAdd("train.csv", CSV_TEST.encode())], commit_message="data",
                               repo_type="dataset")
    wait_converted(hub, repo, info.oid, token=OWNER)
    assert ds(hub, "rows", dataset=repo, config="default", split="train").json()["num_rows_total"] == 9
    assert ds(hub, "search", dataset=repo, config="default", split="train", query="held").json()["num_rows_total"] == 9
    for path in ("rows", "filter", "search", "size", "splits", "first-rows", "is-valid", "statistics", "croissant"):
        params = {"dataset": repo, "config": "default", "split": "train", "where": '"label" = 1', "query": "held"}
        anon = ds(hub, path, token=None, **params)
        assert anon.status_code == 401 and anon.headers["x-error-code"] == "ExternalUnauthenticatedError"
        other = ds(hub, path, token=OTHER, **params)
        assert other.status_code == 404 and other.headers["x-error-code"] == "ExternalAuthenticatedError"
        assert "held out" not in anon.text + other.text
    hub_api = f"{hub.url}/api/datasets/{repo}/croissant"
    assert httpx.get(hub_api, headers={"authorization": f"Bearer {OWNER}"}).status_code == 200
    assert httpx.get(hub_api).status_code == 401
    other_api = httpx.get(hub_api, headers={"authorization": f"Bearer {OTHER}"})
    assert other_api.status_code == 404 and other_api.headers["x-error-code"] == "RepoNotFound"


def test_the_viewer_page_searches_filters_sorts_and_shows_statistics(hub, dataset):
    """In Chromium at 360 px, by keyboard: search, filter, sort, page, statistics; then axe at both widths
    and in both colour schemes (tests/e2e/test_accessibility.py's check)."""
    from playwright.sync_api import sync_playwright

    from tests.e2e.test_accessibility import WIDTHS, check_page
    from tests.e2e.test_web_ui import ARGS, CHROMIUM

    repo, _ = dataset
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(base_url=hub.url, viewport={"width": 360, "height": 740})
            page.goto(f"/datasets/{repo}/viewer")
            assert "Converted to Parquet" in page.inner_text("#conversion")
            assert page.locator("table.rows tbody tr").count() == 20
            assert f"{ROWS} rows" in page.inner_text("main")
            page.get_by_label("Search the text").fill("1234")
            page.keyboard.press("Enter")
            page.wait_for_url("**q=1234**")
            assert page.locator("table.rows tbody tr").count() == 1
            assert page.locator("table.rows tbody tr").first.inner_text().split("\t")[:2] == ["1234", "sentence number 1234"]
            page.get_by_label("Search the text").fill("")
            page.get_by_label("Filter rows").fill('"label" = 3')
            page.get_by_label("Sort by").select_option("score")
            page.get_by_label("Direction").select_option("desc")
            page.get_by_label("Filter rows").press("Enter")
            page.wait_for_url("**where=**")
            matching = sorted((i for i in range(ROWS) if i % 7 == 3), reverse=True)
            assert f"{len(matching)} matching rows" in page.inner_text("main")
            first_cells = page.locator("table.rows tbody tr td.num").all_inner_texts()
            assert [int(c) for c in first_cells] == matching[:20]
            page.click("nav.pager >> text=Next")  # the filter and sort stay on the next page
            assert [int(c) for c in page.locator("table.rows tbody tr td.num").all_inner_texts()] == matching[20:40]
            page.get_by_label("Filter rows").fill('"label" = read_csv(1)')
            page.get_by_label("Filter rows").press("Enter")
            assert "cannot be applied" in page.inner_text("#filter-error")
            # A condition on a column, chosen by keyboard: added to the filter text, which then shows it.
            page.get_by_label("Filter rows").fill('"score" < 100')
            page.locator("select[name=fcol]").select_option("label")  # labelled "Column"
            page.get_by_label("Condition").select_option(">=")
            page.get_by_label("Value").fill("5")
            page.get_by_label("Value").press("Enter")
            page.wait_for_url("**fcol=label**")
            chosen = [i for i in range(ROWS) if i / 8 < 100 and i % 7 >= 5]
            assert f"{len(chosen)} matching rows" in page.inner_text("main")
            assert page.get_by_label("Filter rows").input_value() == '("score" < 100) AND "label" >= 5'
            page.click("nav.pager >> text=Next")  # the built filter stays on the next page
            assert f"{len(chosen)} matching rows" in page.inner_text("main")
            assert page.get_by_label("Filter rows").input_value() == '("score" < 100) AND "label" >= 5'
            page.get_by_label("Filter rows").fill("")
            stats = page.locator("section.column-stats")
            assert "Column statistics" in stats.inner_text() and "string_text" in stats.inner_text()
            assert stats.locator("svg.bars[role=img]").count() == 3
            assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 1
            # The column condition's three controls: each as tall as its label and field (the fieldset
            # was a column flexbox, so each label's 10rem flex basis became its height: 160 px tall
            # boxes, mostly empty), side by side on a wide screen.
            for width in (360, 1366):
                page.set_viewport_size({"width": width, "height": 740})
                boxes = [page.locator(f"fieldset.column-filter label:nth-of-type({i})").bounding_box() for i in (1, 2, 3)]
                assert all(box is not None and box["height"] < 100 for box in boxes), boxes
                if width == 1366:
                    assert len({round(box["y"]) for box in boxes if box is not None}) == 1, boxes
            page.set_viewport_size({"width": 360, "height": 740})
            page.click("nav.splits >> text=test")
            assert page.locator("table.rows tbody tr").count() == 9
            errors = [e for width in WIDTHS for scheme in ("light", "dark")
                      for e in check_page(browser, hub, f"/datasets/{repo}/viewer?where=%22label%22+%3D+1&sort=score",
                                          False, width, scheme, "converted-viewer")]
            assert errors == []
        finally:
            browser.close()


def test_the_viewer_pages_column_filter_works_as_a_plain_form(hub, dataset):
    """Column, condition and value sent as a plain GET form (no script): the page writes the condition
    in the /filter syntax, quoting values (a quote in a value is a character, never syntax)."""
    import html

    repo, _ = dataset

    def view(**params) -> str:
        r = httpx.get(f"{hub.url}/datasets/{repo}/viewer", params={"config": "default", "split": "train", **params})
        assert r.status_code == 200
        return html.unescape(r.text)

    assert f"{len(range(3, ROWS, 7))} matching rows" in view(fcol="label", fop="=", fval="3")
    assert 'name="where" value=""label" = 3"' in view(fcol="label", fop="=", fval="3")  # shown as a filter
    assert "11 matching rows" in view(fcol="text", fop="starts", fval="sentence number 1234")  # 1234, 12340-12349
    assert "0 matching rows" in view(fcol="text", fop="=", fval="x' OR 'a' = 'a")
    assert f"{ROWS - 1} matching rows" in view(fcol="text", fop="!=", fval="sentence number 5")
    assert f"{ROWS} matching rows" in view(fcol="score", fop="notnull")
    assert f"{len(range(3, 80, 7))} matching rows" in view(where='"score" < 10', fcol="label", fop="=", fval="3")
    refused = view(fcol="label", fop="=", fval="abc")  # not a number: a string, which the column refuses
    assert "cannot be applied" in refused
    for ignored in ({"fcol": "nope", "fop": "=", "fval": "1"}, {"fcol": "label", "fop": "; DROP", "fval": "1"}):
        assert f"{ROWS} rows" in view(**ignored)  # an unknown column or condition adds nothing


def test_images_come_as_signed_urls(hub):
    """An ImageFolder dataset: image cells are ``{src}`` URLs signed for the caller and re-checked as that
    caller (as LFS links are): altered or expired URLs are refused, and a dataset made private stops
    answering the URLs minted for anonymous callers. The page shows the images inline."""
    import io
    import re
    from urllib.parse import parse_qs, urlsplit

    from PIL import Image

    owner = HfApi(endpoint=hub.url, token=OWNER)
    repo = f"pat/{unique_name('duckimg')}"
    owner.create_repo(repo, repo_type="dataset")
    sizes = {}
    ops = []
    for i, label in enumerate(("cat", "dog", "cat")):
        buf = io.BytesIO()
        Image.new("RGB", (4 + i, 3), ("red", "blue", "green")[i]).save(buf, format="PNG")
        ops.append(CommitOperationAdd(f"train/{label}/{i}.png", buf.getvalue()))
        sizes[i] = (4 + i, 3)
    info = owner.create_commit(repo, ops, commit_message="images", repo_type="dataset")
    wait_converted(hub, repo, info.oid, token=OWNER)

    answer = ds(hub, "rows", dataset=repo, config="default", split="train", token=None)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert {f["name"]: f["type"]["_type"] for f in body["features"]} == {"image": "Image", "label": "ClassLabel"}
    assert len(body["rows"]) == 3
    seen = set()
    for row in body["rows"]:
        src = row["row"]["image"]["src"]
        assert src.startswith(f"{hub.url}/datasets-server/assets/{repo}/--/") and "sig=" in src
        got = httpx.get(src)
        assert got.status_code == 200 and got.headers["content-type"] == "image/png", got.text
        seen.add(Image.open(io.BytesIO(got.content)).size)
        # height and width as datasets-server gives them, from the image itself
        assert (row["row"]["image"]["width"], row["row"]["image"]["height"]) == Image.open(io.BytesIO(got.content)).size
    assert seen == set(sizes.values())
    src = body["rows"][0]["row"]["image"]["src"]
    query = parse_qs(urlsplit(src).query)
    assert query["who"] == ["anon"] and int(query["exp"][0]) > 0
    altered = [src.replace("/train/0/", "/train/1/"), src.replace(f"sig={query['sig'][0]}", "sig=" + "0" * 64),
               src.replace(f"exp={query['exp'][0]}", f"exp={int(query['exp'][0]) + 3600}"),
               src.replace("who=anon", "who=user%3A1"), src.replace(f"exp={query['exp'][0]}", "exp=1")]
    for url in altered:
        refused = httpx.get(url)
        assert refused.status_code in (403, 404) and refused.headers["x-error-code"] in ("InvalidSignature",
                                                                                        "ResponseNotFound"), url
    # URLs signed for a signed-in caller are kept out of shared caches.
    assert answer.headers["cache-control"] == "public, max-age=60"
    signed_in = ds(hub, "rows", dataset=repo, config="default", split="train")
    assert signed_in.headers["cache-control"] == "private, max-age=60"
    # The first rows and the page give the same kind of URLs; the page shows the images.
    first = ds(hub, "first-rows", dataset=repo, config="default", split="train", token=None).json()
    assert first["rows"][0]["row"]["image"]["src"].startswith(f"{hub.url}/datasets-server/assets/")
    assert {(r["row"]["image"]["width"], r["row"]["image"]["height"]) for r in first["rows"]} == set(sizes.values())
    html = httpx.get(f"{hub.url}/datasets/{repo}/viewer").text
    paths = re.findall(r'<img class="cell-media" src="([^"]+)"', html)
    assert len(paths) == 3
    assert httpx.get(hub.url + paths[0].replace("&amp;", "&")).headers["content-type"] == "image/png"
    # Made private: the anonymous URL answers as a missing dataset; the owner gets URLs of their own.
    owner.update_repo_settings(repo, private=True, repo_type="dataset")
    gone = httpx.get(src)
    assert gone.status_code == 404 and b"\x89PNG" not in gone.content
    mine = ds(hub, "rows", dataset=repo, config="default", split="train").json()["rows"][0]["row"]["image"]["src"]
    assert "who=token" in mine and httpx.get(mine).status_code == 200


def test_first_rows_truncates_cells_as_datasets_server(hub):
    """``/first-rows`` holds at most AICOMMONS_VIEWER_FIRST_ROWS_MAX_BYTES (1,000,000) of rows: ten rows of
    150 kB texts are over it, so the last rows' long cells are cut to 100 characters of their JSON and
    named in ``truncated_cells`` until the rest fits; ``/rows`` gives the cells whole."""
    import json

    owner = HfApi(endpoint=hub.url, token=OWNER)
    repo = f"pat/{unique_name('duckwide')}"
    owner.create_repo(repo, repo_type="dataset")
    texts = [f"row {i} " + "x" * 150_000 for i in range(12)]
    body = "".join(f'{{"n": {i}, "text": "{t}"}}\n' for i, t in enumerate(texts)).encode()
    info = owner.create_commit(repo, [CommitOperationAdd("train.jsonl", body)], commit_message="wide",
                               repo_type="dataset")
    wait_converted(hub, repo, info.oid, token=OWNER)
    first = ds(hub, "first-rows", dataset=repo, config="default", split="train").json()
    assert first["truncated"] is True and len(first["rows"]) == 10
    cut = [r["row_idx"] for r in first["rows"] if r["truncated_cells"]]
    assert cut == [6, 7, 8, 9]  # 10 x 150 kB: the last four are cut, which brings the rest under 1 MB
    for row in first["rows"]:
        if row["truncated_cells"]:
            assert row["truncated_cells"] == ["text"] and row["row"]["n"] == row["row_idx"]
            assert row["row"]["text"] == json.dumps(texts[row["row_idx"]])[:100]
        else:
            assert row["row"]["text"] == texts[row["row_idx"]]
    whole = ds(hub, "rows", dataset=repo, config="default", split="train", offset="9", length="1").json()
    assert whole["rows"][0]["row"]["text"] == texts[9] and whole["rows"][0]["truncated_cells"] == []


def test_pruning_removes_viewer_files_of_superseded_commits_and_deleted_datasets(hub):
    """``aicommons storage viewer-cache`` (a step of the storage lifecycle job): a dry run lists the
    cached Parquet files and search indexes of a superseded commit and of a deleted dataset and keeps
    them; ``--apply`` removes them, and the current conversion's files are kept and still answer."""
    import json

    owner = HfApi(endpoint=hub.url, token=OWNER)
    cache = hub.data_dir / "viewer-cache"

    def files() -> set[str]:
        return {p.name for p in cache.iterdir()} if cache.is_dir() else set()

    def read_all(repo: str) -> None:
        for path, extra in (("rows", {}), ("search", {"query": "words"})):
            assert ds(hub, path, dataset=repo, config="default", split="train", **extra).status_code == 200

    def commit(repo: str, text: str) -> str:
        csv = "text,n\n" + "".join(f"{text} words {i},{i}\n" for i in range(50))
        info = owner.create_commit(repo, [CommitOperationAdd("train.csv", csv.encode())], commit_message=text,
                                   repo_type="dataset")
        wait_converted(hub, repo, info.oid, token=OWNER)
        return info.oid

    kept_repo, gone_repo = f"pat/{unique_name('prune')}", f"pat/{unique_name('prunegone')}"
    for repo in (kept_repo, gone_repo):
        owner.create_repo(repo, repo_type="dataset")
    before = files()
    commit(kept_repo, "first")
    read_all(kept_repo)
    first = files() - before
    commit(kept_repo, "second")
    read_all(kept_repo)
    second = files() - before - first
    commit(gone_repo, "gone")
    read_all(gone_repo)
    gone = files() - before - first - second
    assert {n.rsplit(".", 1)[1] for n in first} == {n.rsplit(".", 1)[1] for n in gone} == {"parquet", "sqlite"}
    assert len(second) == 2
    owner.delete_repo(gone_repo, repo_type="dataset")

    out = hub.cli("storage", "viewer-cache", "--grace-hours", "0", "--json", check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    dry = json.loads(out.stdout)
    assert dry["apply"] is False and dry["errors"] == []
    listed = set(dry["viewer_cache_files"])
    assert first | gone <= listed and not second & listed
    assert any(key.endswith(".sqlite") for key in dry["viewer_indexes"])  # the deleted dataset's index
    assert first | gone <= files()  # a dry run removes nothing
    young = json.loads(hub.cli("storage", "viewer-cache", "--json").stdout)  # an hour's grace: all too young
    assert not (first | gone) & set(young["viewer_cache_files"])

    applied = json.loads(hub.cli("storage", "viewer-cache", "--grace-hours", "0", "--apply", "--json").stdout)
    assert applied["apply"] is True and set(applied["viewer_indexes"]) == set(dry["viewer_indexes"])
    assert not (first | gone) & files() and second <= files()
    read_all(kept_repo)
    again = json.loads(hub.cli("storage", "viewer-cache", "--grace-hours", "0", "--json").stdout)
    assert not again["viewer_indexes"] and not second & set(again["viewer_cache_files"])


def test_branches_the_owner_opts_into_are_converted_and_viewed(hub, monkeypatch, tmp_path):
    """A dataset's admin opts a branch into the conversion (``PUT /api/datasets/{id}/viewer/branches``);
    it is converted on every change onto ``refs/convert/parquet-branch/<branch>``, the viewer API
    answers for it with ``revision=<branch>`` (the default branch's answers unchanged), ``datasets``
    loads the branch's ref, and the route keeps the dataset's access rules."""
    import time

    from tests.compat.test_parquet_export import _clients_env

    owner = HfApi(endpoint=hub.url, token=OWNER)
    repo = f"pat/{unique_name('duckbranch')}"
    owner.create_repo(repo, repo_type="dataset")
    main = owner.create_commit(repo, [CommitOperationAdd("train.csv", b"text,n\nmain words,1\n")],
                               commit_message="main", repo_type="dataset")
    wait_converted(hub, repo, main.oid, token=OWNER)
    owner.create_branch(repo, branch="dev", repo_type="dataset")
    dev = owner.create_commit(repo, [CommitOperationAdd("train.csv", b"text,n\ndev words,1\nmore dev words,2\n")],
                              commit_message="dev", repo_type="dataset", revision="dev")
    url = f"{hub.url}/api/datasets/{repo}/viewer/branches"

    def put(branches, token=OWNER) -> httpx.Response:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return httpx.put(url, json={"branches": branches}, headers=headers)

    assert httpx.get(url).json() == {"branches": []}
    assert ds(hub, "rows", dataset=repo, config="default", split="train", revision="dev").status_code == 404
    assert put(["dev"], token=None).status_code == 401
    assert put(["dev"], token=OTHER).status_code == 403  # reads it, is not its admin
    for bad in (["nope"], ["main"], "dev", [f"b{i}" for i in range(11)]):
        refused = put(bad)
        assert refused.status_code == 400, (bad, refused.text)
    assert put(["dev"]).json()["branches"][0]["branch"] == "dev"

    def wait_branch(sha: str) -> None:
        deadline = time.time() + 90
        while time.time() < deadline:
            found = httpx.get(url).json()["branches"][0]
            if found["sha"] == sha and found["state"] != "pending":
                assert found["state"] == "done", found
                wait_converted(hub, repo, sha, revision="dev")  # and its search index
                return
            time.sleep(0.5)
        raise AssertionError(f"the branch was not converted: {found}")

    wait_branch(dev.oid)
    page = ds(hub, "rows", dataset=repo, config="default", split="train", revision="dev")
    assert page.headers["x-revision"] == dev.oid
    assert [r["row"]["text"] for r in page.json()["rows"]] == ["dev words", "more dev words"]
    assert [r["row"]["text"] for r in ds(hub, "rows", dataset=repo, config="default", split="train").json()["rows"]] \
        == ["main words"]
    found = ds(hub, "search", dataset=repo, config="default", split="train", query="more", revision="dev").json()
    assert [r["row_idx"] for r in found["rows"]] == [1]
    files = ds(hub, "parquet", dataset=repo, revision="dev").json()["parquet_files"]
    assert files[0]["url"].startswith(f"{hub.url}/datasets/{repo}/resolve/refs%2Fconvert%2Fparquet-branch%2Fdev/")
    refs = owner.list_repo_refs(repo, repo_type="dataset")
    assert {c.ref for c in refs.converts} == {"refs/convert/parquet", "refs/convert/parquet-branch/dev"}
    assert ds(hub, "rows", dataset=repo, config="default", split="train", revision="other").status_code == 404

    _clients_env(monkeypatch, hub, OWNER, tmp_path)
    import datasets

    loaded = datasets.load_dataset(repo, revision="refs/convert/parquet-branch/dev", split="train")
    assert loaded["text"] == ["dev words", "more dev words"]

    # A new commit of the branch is converted in turn; the default branch's conversion stays.
    newer = owner.create_commit(repo, [CommitOperationAdd("train.csv", b"text,n\nnewest,3\n")],
                                commit_message="dev 2", repo_type="dataset", revision="dev")
    wait_branch(newer.oid)
    rows = ds(hub, "rows", dataset=repo, config="default", split="train", revision="dev").json()["rows"]
    assert [r["row"]["text"] for r in rows] == ["newest"]
    assert ds(hub, "rows", dataset=repo, config="default", split="train").headers["x-revision"] == main.oid

    # Private: the branch's answers and its opt-in answer like a missing dataset to others.
    owner.update_repo_settings(repo, private=True, repo_type="dataset")
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"authorization": f"Bearer {OTHER}"}).status_code == 404
    assert put(["dev"], token=OTHER).status_code == 404
    hidden = ds(hub, "rows", dataset=repo, config="default", split="train", revision="dev", token=OTHER)
    assert hidden.status_code == 404 and hidden.headers["x-error-code"] == "ExternalAuthenticatedError"
    # Opting out: the branch is no longer answered for.
    assert put([]).json() == {"branches": []}
    assert ds(hub, "rows", dataset=repo, config="default", split="train", revision="dev").status_code == 404


def test_the_settings_page_opts_a_branch_in_and_the_viewer_switches_to_it(hub):
    """In Chromium at 360 px, by keyboard: the dataset's settings page opts a branch into the
    conversion (a labelled field of a CSRF-protected form; a branch that does not exist is refused
    with the reason), the viewer then offers the branch and shows its rows, keeping it across
    searches; axe at both widths and schemes on the settings page and on the branch's viewer."""
    import time

    from playwright.sync_api import sync_playwright

    from tests.e2e.test_accessibility import WIDTHS, check_page
    from tests.e2e.test_web_ui import ARGS, CHROMIUM, sign_in

    hub.cli("user", "set-password", "pat", "--password", "pat-password-15")
    owner = HfApi(endpoint=hub.url, token=OWNER)
    repo = f"pat/{unique_name('duckpage')}"
    owner.create_repo(repo, repo_type="dataset")
    main = owner.create_commit(repo, [CommitOperationAdd("train.csv", b"text\nmain row\n")], commit_message="main",
                               repo_type="dataset")
    wait_converted(hub, repo, main.oid, token=OWNER)
    owner.create_branch(repo, branch="dev", repo_type="dataset")
    dev = owner.create_commit(repo, [CommitOperationAdd("train.csv", b"text\nfirst dev row\nsecond dev row\n")],
                              commit_message="dev", repo_type="dataset", revision="dev")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(base_url=hub.url, viewport={"width": 360, "height": 740})
            sign_in(page, "pat", "pat-password-15")
            page.goto(f"/datasets/{repo}/settings")
            field = page.get_by_label("Branches to convert besides the default one (comma-separated)")
            field.fill("dev, nope")
            with page.expect_navigation():
                field.press("Enter")
            assert "no branch 'nope'" in page.inner_text(".error")
            field = page.get_by_label("Branches to convert besides the default one (comma-separated)")
            field.fill("dev")
            with page.expect_navigation():
                field.press("Enter")
            assert "dev" in page.inner_text("ul.branch-conversions")
            deadline = time.time() + 90
            while "converted" not in page.inner_text("ul.branch-conversions") and time.time() < deadline:
                time.sleep(0.5)
                page.reload()
            assert "dev: converted" in page.inner_text("ul.branch-conversions")
            wait_converted(hub, repo, dev.oid, revision="dev")  # and its search index (a follow-up job)
            page.goto(f"/datasets/{repo}/viewer")
            assert [c.strip() for c in page.locator("table.rows tbody td:nth-child(2)").all_inner_texts()] == ["main row"]
            page.locator("nav[aria-label=Branches] >> text=dev").focus()
            page.keyboard.press("Enter")
            page.wait_for_url("**revision=dev**")
            assert "refs/convert/parquet-branch/dev" in page.inner_text("#conversion")
            assert page.locator("table.rows tbody td:nth-child(2)").all_inner_texts() == ["first dev row",
                                                                                           "second dev row"]
            assert dev.oid[:7] in page.inner_text("main")
            page.get_by_label("Search the text").fill("second")
            page.keyboard.press("Enter")
            page.wait_for_url("**q=second**")
            assert "revision=dev" in page.url
            assert page.locator("table.rows tbody td:nth-child(2)").all_inner_texts() == ["second dev row"]
            assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 1
            assert page.goto(f"/datasets/{repo}/viewer?revision=nope").status == 404
            # axe signs in as alice: a hub admin here, so that the dataset's settings page is hers to see
            hub.cli("user", "create", "alice", "--password", "wonderland", "--admin", check=False)
            errors = [e for width in WIDTHS for scheme in ("light", "dark")
                      for path, signed_in in ((f"/datasets/{repo}/viewer?revision=dev", False),
                                              (f"/datasets/{repo}/settings", True))
                      for e in check_page(browser, hub, path, signed_in, width, scheme, "branch-viewer")]
            assert errors == []
        finally:
            browser.close()


def _format_files() -> dict[str, tuple[dict[str, bytes], dict]]:
    """Each format ``datasets`` loads: (files of the dataset, the features its rows must have)."""
    import io
    import json
    import struct
    import tarfile
    import wave

    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    def png(size) -> bytes:
        buf = io.BytesIO()
        Image.new("RGB", size, "red").save(buf, format="PNG")
        return buf.getvalue()

    def wav() -> bytes:
        buf = io.BytesIO()
        with wave.open(buf, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(struct.pack("<100h", *range(100)))
        return buf.getvalue()

    def tar(members) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            for name, data in members:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
        return buf.getvalue()

    table = pa.table({"a": [1, 2], "b": ["x", "y"]})
    arrow, parquet = pa.BufferOutputStream(), io.BytesIO()
    with pa.ipc.new_stream(arrow, table.schema) as writer:
        writer.write_table(table)
    pq.write_table(table, parquet)
    ab = {"a": "Value", "b": "Value"}
    return {
        "text": ({"train.txt": b"first line\nsecond line\n"}, {"text": "Value"}),
        "tsv": ({"train.tsv": b"a\tb\n1\tx\n2\ty\n"}, ab),
        "json": ({"train.json": json.dumps([{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]).encode()}, ab),
        "arrow": ({"train.arrow": arrow.getvalue().to_pybytes()}, ab),
        "parquet": ({"train.parquet": parquet.getvalue()}, ab),
        "imagefolder": ({"train/a.png": png((3, 2)), "train/b.png": png((5, 4)),
                         "train/metadata.jsonl": b'{"file_name": "a.png", "caption": "small"}\n'
                                                 b'{"file_name": "b.png", "caption": "big"}\n'},
                        {"image": "Image", "caption": "Value"}),
        "audiofolder": ({"train/a.wav": wav(), "train/b.wav": wav(),
                         "train/metadata.csv": b"file_name,transcript\na.wav,hello\nb.wav,world\n"},
                        {"audio": "Audio", "transcript": "Value"}),
        "webdataset": ({"train-0000.tar": tar([("0001.png", png((3, 2))), ("0001.json", b'{"caption": "one"}'),
                                               ("0002.png", png((2, 2))), ("0002.json", b'{"caption": "two"}')])},
                       {"png": "Image", "json": None, "__key__": "Value", "__url__": "Value"}),  # json: a struct
    }


@pytest.mark.parametrize("kind", ["text", "tsv", "json", "arrow", "parquet", "imagefolder", "audiofolder",
                                  "webdataset"])
def test_each_format_datasets_loads_is_converted_and_viewed(hub, kind, monkeypatch, tmp_path):
    """Text, TSV, JSON, Arrow, Parquet, ImageFolder and AudioFolder with metadata, and WebDataset are
    converted by the job with ``datasets``' own builders; ``/rows`` gives their rows with
    datasets-server's cells (images with their size, audio as typed URLs), and ``datasets`` loads
    the converted ref."""
    from tests.compat.test_parquet_export import _clients_env

    files, features = _format_files()[kind]
    owner = HfApi(endpoint=hub.url, token=OWNER)
    repo = f"pat/{unique_name('fmt-' + kind)}"
    owner.create_repo(repo, repo_type="dataset")
    info = owner.create_commit(repo, [CommitOperationAdd(path, data) for path, data in files.items()],
                               commit_message=kind, repo_type="dataset")
    answer = wait_converted(hub, repo, info.oid, token=OWNER)
    assert answer["failed"] == [] and [f["split"] for f in answer["parquet_files"]] == ["train"], answer
    body = ds(hub, "rows", dataset=repo, config="default", split="train").json()
    assert {f["name"]: f["type"].get("_type") for f in body["features"]} == features, body["features"]
    rows = [r["row"] for r in body["rows"]]
    assert len(rows) == 2
    if kind == "text":
        assert [r["text"] for r in rows] == ["first line", "second line"]
    elif kind in ("tsv", "json", "arrow", "parquet"):
        assert rows == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    elif kind == "imagefolder":
        assert [(r["caption"], r["image"]["width"], r["image"]["height"]) for r in rows] == \
            [("small", 3, 2), ("big", 5, 4)]
        assert httpx.get(rows[0]["image"]["src"]).headers["content-type"] == "image/png"
    elif kind == "audiofolder":
        assert [r["transcript"] for r in rows] == ["hello", "world"]
        assert rows[0]["audio"][0]["type"] == "audio/wav"
        assert httpx.get(rows[0]["audio"][0]["src"]).content == files["train/a.wav"]
    else:
        assert [(r["__key__"], r["json"], r["png"]["width"]) for r in rows] == \
            [("0001", {"caption": "one"}, 3), ("0002", {"caption": "two"}, 2)]
    if kind in ("tsv", "imagefolder", "webdataset"):
        _clients_env(monkeypatch, hub, OWNER, tmp_path)
        import datasets

        loaded = datasets.load_dataset(repo, revision="refs/convert/parquet", split="train")
        assert loaded.num_rows == 2
