"""The dataset viewer (issue 15, first part): the datasets-server API on a live hub, with its paths,
shapes and error codes, the access rules of the dataset, the ``datasets-server.`` sub-host, and the
viewer page in a real browser."""

from __future__ import annotations

import io

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfApi

from tests.conftest import ALICE_TOKEN, BOB_TOKEN, auth, unique_name

CSV_TRAIN = "text,label\n" + "".join(f"sentence {i},{i % 3}\n" for i in range(130))
CSV_TEST = "text,label\n" + "".join(f"held out {i},{i % 2}\n" for i in range(7))
JSONL = "".join(f'{{"q": "question {i}", "tags": ["a", "b"], "score": {i / 4}}}\n' for i in range(5))
CARD = """---
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train.csv
  - split: test
    path: data/test.csv
- config_name: qa
  data_files: qa/*.jsonl
---
# A dataset
"""


@pytest.fixture(scope="module")
def dataset(live_hub):
    from huggingface_hub import HfApi

    api = HfApi(endpoint=live_hub.url, token=ALICE_TOKEN)
    repo = f"alice/{unique_name('viewer')}"
    api.create_repo(repo, repo_type="dataset")
    api.create_commit(repo, [CommitOperationAdd("README.md", CARD.encode()),
                             CommitOperationAdd("data/train.csv", CSV_TRAIN.encode()),
                             CommitOperationAdd("data/test.csv", CSV_TEST.encode()),
                             CommitOperationAdd("qa/part-0.jsonl", JSONL.encode())],
                      commit_message="data", repo_type="dataset")
    return repo, api.dataset_info(repo).sha


def ds(http, path: str, **params):
    return http.get(f"/datasets-server/{path}", params=params)


def test_splits_rows_and_shapes(http, dataset):
    repo, sha = dataset
    r = ds(http, "splits", dataset=repo)
    assert r.status_code == 200 and r.headers["x-revision"] == sha
    assert r.json() == {"splits": [{"dataset": repo, "config": "default", "split": "train"},
                                   {"dataset": repo, "config": "default", "split": "test"},
                                   {"dataset": repo, "config": "qa", "split": "train"}],
                        "pending": [], "failed": []}
    assert ds(http, "is-valid", dataset=repo).json() == {"viewer": True, "preview": True, "search": False,
                                                         "filter": False, "statistics": False}
    first = ds(http, "first-rows", dataset=repo, config="default", split="train").json()
    assert first["features"] == [{"feature_idx": 0, "name": "text", "type": {"dtype": "string", "_type": "Value"}},
                                 {"feature_idx": 1, "name": "label", "type": {"dtype": "int64", "_type": "Value"}}]
    assert len(first["rows"]) == 100 and first["truncated"] is True
    assert first["rows"][3] == {"row_idx": 3, "row": {"text": "sentence 3", "label": 0}, "truncated_cells": []}
    page = ds(http, "rows", dataset=repo, config="default", split="train", offset=120, length=100).json()
    assert page["num_rows_total"] == 130 and page["num_rows_per_page"] == 100 and page["partial"] is False
    assert [row["row_idx"] for row in page["rows"]] == list(range(120, 130))
    qa = ds(http, "first-rows", dataset=repo, config="qa", split="train").json()
    assert qa["features"][1] == {"feature_idx": 1, "name": "tags",
                                 "type": {"feature": {"dtype": "string", "_type": "Value"}, "_type": "List"}}
    assert qa["rows"][2]["row"] == {"q": "question 2", "tags": ["a", "b"], "score": 0.5}
    size = ds(http, "size", dataset=repo).json()
    assert size["size"]["dataset"]["num_rows"] == 130 + 7 + 5 and size["partial"] is False
    assert {(s["config"], s["split"], s["num_rows"]) for s in size["size"]["splits"]} == \
        {("default", "train", 130), ("default", "test", 7), ("qa", "train", 5)}


def test_parquet_and_conventional_splits(http, api, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    repo = f"alice/{unique_name('pq')}"
    api.create_repo(repo, repo_type="dataset")
    buffer = io.BytesIO()
    pq.write_table(pa.table({"x": list(range(250)), "y": [f"v{i}" for i in range(250)]}), buffer)
    api.create_commit(repo, [CommitOperationAdd("data/train-00000-of-00001.parquet", buffer.getvalue()),
                             CommitOperationAdd("data/validation.jsonl", b'{"x": 1, "y": "a"}\n')],
                      commit_message="parquet", repo_type="dataset")
    splits = ds(http, "splits", dataset=repo).json()["splits"]
    assert [(s["config"], s["split"]) for s in splits] == [("default", "train"), ("default", "validation")]
    page = ds(http, "rows", dataset=repo, config="default", split="train", offset=200, length=100).json()
    assert page["num_rows_total"] == 250 and len(page["rows"]) == 50 and page["rows"][0]["row"] == {"x": 200, "y": "v200"}


def test_files_uploaded_through_xet_are_previewed(http, xet, monkeypatch, tmp_path):
    """`Dataset.push_to_hub` with Xet on (huggingface_hub's default): the file is stored as chunks
    only, and the preview (the viewer before or without the Parquet conversion) reads it through the
    chunk store. It read only whole-file blobs: /rows answered 503 "Storage backend failure"."""
    import datasets

    monkeypatch.setenv("HF_ENDPOINT", xet.url)
    monkeypatch.setattr(datasets.config, "HF_ENDPOINT", xet.url)
    repo = f"alice/{unique_name('xetds')}"
    datasets.Dataset.from_dict({"text": ["a", "b", "c"], "n": [1, 2, 3]}).push_to_hub(repo, token=ALICE_TOKEN)
    oid = next(f.lfs["sha256"] for f in HfApi(endpoint=xet.url, token=ALICE_TOKEN).dataset_info(
        repo, files_metadata=True).siblings if f.rfilename.endswith(".parquet"))
    assert not (xet.data_dir / "blobs" / "lfs" / oid[:2] / oid[2:4] / oid).exists()  # chunks only
    page = ds(http, "rows", dataset=repo, config="default", split="train")
    assert page.status_code == 200, page.text
    assert [r["row"] for r in page.json()["rows"]] == [{"text": "a", "n": 1}, {"text": "b", "n": 2},
                                                        {"text": "c", "n": 3}]


@pytest.mark.parametrize("params,status,code", [
    ({}, 422, "MissingRequiredParameter"),
    ({"config": "default", "split": "train", "length": "101"}, 422, "InvalidParameter"),
    ({"config": "default", "split": "train", "offset": "-1"}, 422, "InvalidParameter"),
    ({"config": "default", "split": "nope"}, 404, "ResponseNotFound"),
    ({"config": "nope", "split": "train"}, 404, "ResponseNotFound"),
])
def test_bad_parameters(http, dataset, params, status, code):
    repo, _ = dataset
    if params:
        params = {"dataset": repo, **params}
    r = ds(http, "rows", **params)
    assert r.status_code == status and r.headers["x-error-code"] == code and "error" in r.json()


def test_filter_and_order(http, dataset):
    repo, _ = dataset
    r = ds(http, "filter", dataset=repo, config="default", split="train",
           where="\"label\" = 2 AND \"text\" LIKE 'sentence 1%'", orderby="\"text\" DESC", length=3)
    body = r.json()
    assert r.status_code == 200, body
    # i % 3 == 2 and the text starts with "sentence 1": 11, 14, 17, 101, 104, ..., 128; sorted as text, descending
    assert body["num_rows_total"] == 13
    assert [row["row"]["text"] for row in body["rows"]] == ["sentence 17", "sentence 14", "sentence 128"]
    assert [row["row_idx"] for row in body["rows"]] == [17, 14, 128]  # indices in the split, not the page
    between = ds(http, "filter", dataset=repo, config="default", split="train",
                 where="\"label\" IN (0, 1) AND \"text\" BETWEEN 'sentence 2' AND 'sentence 3'").json()
    want = sorted((i for i in range(130) if i % 3 in (0, 1) and "sentence 2" <= f"sentence {i}" <= "sentence 3"),
                  key=lambda i: i)
    assert [row["row_idx"] for row in between["rows"]] == want
    past = ds(http, "rows", dataset=repo, config="default", split="train", offset=130)
    assert past.status_code == 200 and past.json()["rows"] == [] and past.json()["num_rows_total"] == 130


HOSTILE = [
    "1=1", "\"label\" = 1; DROP TABLE t", "\"label\" = 1 -- all", "\"label\" = 1 /* x */",
    "\"label\" = (SELECT 1)", "lower(\"text\") = 'a'", "\"text\" = read_csv('/etc/passwd')",
    "\"text\" IN (SELECT 'a')", "\"nope\" = 1", "\"text\" = 'unterminated", "\"label\" > 'x' OR", "(" * 60 + "\"label\"=1" + ")" * 60,
    "\"label\" = 1 UNION SELECT * FROM read_parquet('x')", "x" * 5000, "\"text\" LIKE 5", "\u0000",
    "\"label\" = 1 AND AND \"label\" = 2", "COPY t TO '/tmp/x'", "\"label\" BETWEEN 1 OR 2",
    "\"label\" IN (1, \"label\")", "\"nope\" IN (1)",
]


@pytest.mark.parametrize("where", HOSTILE)
def test_hostile_filters_are_refused(http, dataset, where):
    repo, _ = dataset
    r = ds(http, "filter", dataset=repo, config="default", split="train", where=where)
    assert r.status_code in (400, 422), (where, r.status_code, r.text)
    if r.status_code == 422:
        assert r.headers["x-error-code"] == "InvalidParameter"
    bad_order = ds(http, "filter", dataset=repo, config="default", split="train", orderby="\"text\"; DROP")
    assert bad_order.status_code == 422


def test_private_and_gated_datasets_answer_as_missing(http, api, live_hub):
    private = f"alice/{unique_name('private')}"
    api.create_repo(private, repo_type="dataset", private=True)
    api.upload_file(path_or_fileobj=CSV_TEST.encode(), path_in_repo="train.csv", repo_id=private, repo_type="dataset")
    gated = f"alice/{unique_name('gated')}"
    api.create_repo(gated, repo_type="dataset")
    api.upload_file(path_or_fileobj=CSV_TEST.encode(), path_in_repo="train.csv", repo_id=gated, repo_type="dataset")
    api.update_repo_settings(gated, gated="manual", repo_type="dataset")
    for repo in (private, gated, "alice/never-existed"):
        for path in ("splits", "first-rows", "rows", "filter", "size", "is-valid"):
            params = {"dataset": repo, "config": "default", "split": "train"}
            anon = http.get(f"/datasets-server/{path}", params=params)
            assert anon.status_code == 401 and anon.headers["x-error-code"] == "ExternalUnauthenticatedError"
            other = http.get(f"/datasets-server/{path}", params=params, headers=auth(BOB_TOKEN))
            assert other.status_code == 404 and other.headers["x-error-code"] == "ExternalAuthenticatedError"
            assert "held out" not in anon.text + other.text
    owner = http.get("/datasets-server/first-rows", params={"dataset": private, "config": "default", "split": "train"},
                     headers=auth(ALICE_TOKEN))
    assert owner.status_code == 200 and owner.json()["rows"][0]["row"]["text"] == "held out 0"
    assert owner.headers["cache-control"] == "no-store"


def test_the_datasets_server_sub_host(live_hub, dataset):
    repo, sha = dataset
    host = live_hub.url.split("//")[1]
    r = httpx.get(f"{live_hub.url}/splits", params={"dataset": repo}, headers={"Host": f"datasets-server.{host}"})
    assert r.status_code == 200 and r.headers["x-revision"] == sha and len(r.json()["splits"]) == 3


def test_the_viewer_page(live_hub, dataset):
    from playwright.sync_api import sync_playwright

    from tests.e2e.test_web_ui import ARGS, CHROMIUM

    repo, _ = dataset
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(base_url=live_hub.url, viewport={"width": 390, "height": 844})
            page.goto(f"/datasets/{repo}")
            page.click("nav.tabs >> text=Viewer")
            assert page.locator("table.rows tbody tr").count() == 20
            assert page.locator("table.rows tbody tr").first.inner_text().split("\t")[:2] == ["0", "sentence 0"]
            assert "130 rows" in page.inner_text("main")
            page.click("nav.pager >> text=Next")
            assert page.locator("table.rows tbody tr").first.inner_text().startswith("20")
            page.click("nav.splits >> text=test")
            assert page.locator("table.rows tbody tr").count() == 7
            page.click("nav.splits >> text=qa / train")
            assert "question 0" in page.inner_text("table.rows")
            assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 1
        finally:
            browser.close()
