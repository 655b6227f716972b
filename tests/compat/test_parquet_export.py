"""The Parquet conversion of datasets to ``refs/convert/parquet`` (issue 15), on a live hub with
conversion on, read back with the unmodified clients: ``datasets.load_dataset(revision=...)``,
``HfFileSystem``/``pandas.read_parquet("hf://...")``, git. Every write door (commit API, git push,
LFS) triggers it; private datasets keep their rules on the ref; failures are recorded, not retried."""

from __future__ import annotations

import os
import subprocess
import time

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfApi

from tests.backends import free_port
from tests.conftest import start_hub, stop_hub, unique_name

OWNER, OTHER = "hf_parquet_owner_token_0000000001", "hf_parquet_other_token_0000000002"
CARD = """---
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train.csv
  - split: test
    path: data/test.csv
- config_name: qa
  data_files: qa/*.csv
---
# A dataset
"""
CSV_TRAIN = "text,label\n" + "".join(f"sentence {i},{i % 3}\n" for i in range(130))
CSV_TEST = "text,label\n" + "".join(f"held out {i},{i % 2}\n" for i in range(7))
QA = "q,score\n" + "".join(f"question {i},{i / 4}\n" for i in range(5))
CONVERTED = "refs/convert/parquet"


def converting_hub(tmp_path_factory, name: str, **env: str):
    """A live hub with conversion on and two job workers, users pat (OWNER) and sam (OTHER), on a
    database and blob store of its own of the backend under test (``AICOMMONS_TEST_BACKEND``:
    PostgreSQL + S3 reads the converted files through the bucket)."""
    from tests.backends import live_hub_backend

    data = tmp_path_factory.mktemp(name) / "data"
    data.mkdir()
    with live_hub_backend(tmp_path_factory.mktemp(name + "-backend")) as backend:
        live = start_hub(data, free_port(), AICOMMONS_PARQUET_CONVERSION="true", AICOMMONS_JOB_WORKERS="2",
                         **backend, **env)
        try:
            live.cli("user", "create", "pat", "--email", "pat@example.org")
            live.cli("user", "create", "sam")
            live.cli("token", "create", "pat", "--value", OWNER)
            live.cli("token", "create", "sam", "--value", OTHER)
            yield live
        finally:
            stop_hub(live)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    # 20 kB: the "big" dataset below is converted partially.
    yield from converting_hub(tmp_path_factory, "parquet-export", AICOMMONS_PARQUET_MAX_BYTES="20000")


@pytest.fixture(scope="module")
def owner(hub) -> HfApi:
    return HfApi(endpoint=hub.url, token=OWNER)


def wait_converted(hub, repo: str, sha: str, token: str = OWNER, timeout: float = 90, extras: bool = True,
                   revision: str | None = None) -> dict:
    """The /datasets-server/parquet answer once the conversion of ``sha`` is no longer pending and,
    with ``extras``, its follow-up job (search index and statistics) has run too: ``/statistics`` of
    its first split no longer answers ``ResponseNotReady``."""
    deadline = time.time() + timeout
    headers = {"authorization": f"Bearer {token}"}
    params = {"dataset": repo, **({"revision": revision} if revision else {})}
    while time.time() < deadline:
        r = httpx.get(f"{hub.url}/datasets-server/parquet", params=params, headers=headers)
        if r.status_code == 200 and r.headers["x-revision"] == sha and not r.json()["pending"]:
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"the conversion of {repo}@{sha} did not finish: {r.status_code} {r.text}")
    answer = r.json()
    if extras and answer["parquet_files"]:
        wait_extras(hub, repo, answer["parquet_files"][0], headers, params, deadline)
    return answer


def wait_extras(hub, repo: str, first: dict, headers: dict, params: dict, deadline: float) -> None:
    while time.time() < deadline:
        r = httpx.get(f"{hub.url}/datasets-server/statistics", headers=headers,
                      params={**params, "config": first["config"], "split": first["split"]})
        if r.headers.get("x-error-code") != "ResponseNotReady":
            return
        time.sleep(0.3)
    raise AssertionError(f"the search index and statistics of {repo} were not built: {r.status_code} {r.text}")


def make_dataset(owner: HfApi, private: bool = False) -> tuple[str, str]:
    repo = f"pat/{unique_name('pq')}"
    owner.create_repo(repo, repo_type="dataset", private=private)
    info = owner.create_commit(repo, [CommitOperationAdd("README.md", CARD.encode()),
                                      CommitOperationAdd("data/train.csv", CSV_TRAIN.encode()),
                                      CommitOperationAdd("data/test.csv", CSV_TEST.encode()),
                                      CommitOperationAdd("qa/part-0.csv", QA.encode())],
                               commit_message="data", repo_type="dataset")
    return repo, info.oid


def _clients_env(monkeypatch, hub, token: str | None, tmp_path) -> None:
    """Point the unmodified clients at the live hub (their endpoint is read at import: patch both)."""
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", hub.url)
    monkeypatch.setattr(datasets.config, "HF_ENDPOINT", hub.url)
    monkeypatch.setattr(huggingface_hub.constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                        hub.url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "ds-cache"))
    if token:
        monkeypatch.setenv("HF_TOKEN", token)
    else:
        monkeypatch.delenv("HF_TOKEN", raising=False)


def test_commit_converts_with_the_hubs_layout_and_datasets_loads_it(hub, owner, monkeypatch, tmp_path):
    repo, sha = make_dataset(owner)
    answer = wait_converted(hub, repo, sha)
    assert answer["failed"] == [] and answer["partial"] is False
    converted = owner.dataset_info(repo, revision=CONVERTED)
    files = sorted(owner.list_repo_files(repo, repo_type="dataset", revision=CONVERTED))
    assert files == [".gitattributes", "default/test/0000.parquet", "default/train/0000.parquet",
                     "qa/train/0000.parquet"]
    refs = owner.list_repo_refs(repo, repo_type="dataset")
    assert [(c.ref, c.target_commit) for c in refs.converts] == [(CONVERTED, converted.sha)]
    commit = owner.list_repo_commits(repo, repo_type="dataset", revision=CONVERTED)[0]
    assert commit.authors == ["parquet-converter"] and sha in commit.message
    # The files are LFS objects of the repo, like any large file.
    paths = owner.get_paths_info(repo, ["default/train/0000.parquet"], repo_type="dataset", revision=CONVERTED)
    assert paths[0].lfs is not None and paths[0].lfs.size == paths[0].size

    _clients_env(monkeypatch, hub, OWNER, tmp_path)
    import datasets
    import pandas as pd

    # One folder per config: datasets reads the ref with the Hub's data-file patterns (a folder per split).
    loaded = datasets.load_dataset(repo, revision=CONVERTED, data_dir="default")
    assert loaded["train"].num_rows == 130 and loaded["test"].num_rows == 7
    assert loaded["train"][3] == {"text": "sentence 3", "label": 0}
    assert datasets.load_dataset(repo, revision=CONVERTED, data_dir="qa", split="train")[2] == \
        {"q": "question 2", "score": 0.5}
    train = pd.read_parquet(f"hf://datasets/{repo}@refs%2Fconvert%2Fparquet/default/train/0000.parquet")
    assert list(train.columns) == ["text", "label"] and len(train) == 130
    assert train.iloc[3].to_dict() == {"text": "sentence 3", "label": 0}
    qa = pd.read_parquet(f"hf://datasets/{repo}@~parquet/qa/train/0000.parquet")  # the Hub's short name
    assert qa.iloc[2].to_dict() == {"q": "question 2", "score": 0.5}


def test_every_write_door_triggers_a_conversion(hub, owner, tmp_path):
    repo, sha = make_dataset(owner)
    wait_converted(hub, repo, sha)
    first = owner.dataset_info(repo, revision=CONVERTED).sha
    # git push (with git-lfs for the big file: LFS too)
    url = hub.url.replace("http://", f"http://pat:{OWNER}@") + f"/datasets/{repo}"
    work = tmp_path / "clone"
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_LFS_SKIP_SMUDGE": "1"}
    subprocess.run(["git", "clone", "-q", url, str(work)], check=True, env=env)
    subprocess.run(["git", "lfs", "install", "--local"], cwd=work, check=True, env=env, capture_output=True)
    subprocess.run(["git", "lfs", "track", "*.csv"], cwd=work, check=True, env=env, capture_output=True)
    (work / "data" / "train.csv").write_text(CSV_TRAIN + "pushed row,2\n")
    for args in (["add", "-A"], ["-c", "user.name=pat", "-c", "user.email=pat@example.org", "commit", "-qm", "push"],
                 ["push", "-q", "origin", "main"]):
        subprocess.run(["git", *args], cwd=work, check=True, env=env, capture_output=True)
    pushed = owner.dataset_info(repo).sha
    assert pushed != sha
    assert owner.get_paths_info(repo, ["data/train.csv"], repo_type="dataset")[0].lfs is not None
    wait_converted(hub, repo, pushed)
    second = owner.dataset_info(repo, revision=CONVERTED).sha
    assert second != first
    r = httpx.get(f"{hub.url}/datasets-server/info", params={"dataset": repo, "config": "default"})
    assert r.json()["dataset_info"]["splits"]["train"]["num_examples"] == 131
    # A commit to another branch converts nothing.
    owner.create_branch(repo, repo_type="dataset", branch="dev")
    owner.upload_file(path_or_fileobj=b"x,y\n1,2\n", path_in_repo="data/more.csv", repo_id=repo,
                      repo_type="dataset", revision="dev")
    time.sleep(2)
    assert owner.dataset_info(repo, revision=CONVERTED).sha == second


def test_private_converted_ref_is_invisible_to_others(hub, owner, tmp_path, monkeypatch):
    repo, sha = make_dataset(owner, private=True)
    wait_converted(hub, repo, sha)
    assert owner.dataset_info(repo, revision=CONVERTED).sha
    path = "default/train/0000.parquet"
    for headers in ({}, {"authorization": f"Bearer {OTHER}"}):
        for url in ("/api/datasets/{}/revision/refs%2Fconvert%2Fparquet",
                    "/datasets/{}/resolve/refs%2Fconvert%2Fparquet/" + path,
                    "/api/datasets/{}/tree/refs%2Fconvert%2Fparquet/default",
                    "/api/datasets/{}/refs",
                    "/api/datasets/{}/parquet", "/api/datasets/{}/parquet/default/train",
                    "/api/datasets/{}/parquet/default/train/0.parquet"):
            r = httpx.get(hub.url + url.format(repo), headers=headers)
            assert r.status_code in (401, 404), (url, r.status_code)
            missing = httpx.get(hub.url + url.format("pat/no-such-dataset"), headers=headers)
            assert (r.status_code, r.headers.get("x-error-code")) == \
                (missing.status_code, missing.headers.get("x-error-code")), url
        for endpoint in ("parquet", "info"):
            r = httpx.get(f"{hub.url}/datasets-server/{endpoint}", params={"dataset": repo}, headers=headers)
            assert r.status_code == (404 if headers else 401)
    _clients_env(monkeypatch, hub, OWNER, tmp_path)
    import pandas as pd

    assert len(pd.read_parquet(f"hf://datasets/{repo}@refs%2Fconvert%2Fparquet/{path}")) == 130


def test_big_dataset_is_converted_partially(hub, owner):
    repo = f"pat/{unique_name('pq-big')}"
    owner.create_repo(repo, repo_type="dataset")
    rows = "".join(f'{{"id": {i}, "text": "{"word " * 20}{i}"}}\n' for i in range(3000))  # ~340 kB > 20 kB
    info = owner.create_commit(repo, [CommitOperationAdd("train.jsonl", rows.encode())], commit_message="big",
                               repo_type="dataset")
    answer = wait_converted(hub, repo, info.oid)
    assert answer["partial"] is True and answer["failed"] == []
    files = owner.list_repo_files(repo, repo_type="dataset", revision=CONVERTED)
    assert "default/partial-train/0000.parquet" in files
    assert [(f["config"], f["split"]) for f in answer["parquet_files"]] == [("default", "train")]
    r = httpx.get(f"{hub.url}/datasets-server/info", params={"dataset": repo, "config": "default"}).json()
    examples = r["dataset_info"]["splits"]["train"]["num_examples"]
    assert r["partial"] is True and 0 < examples < 3000


def _noise_png(seed: int) -> bytes:
    import io
    import random

    from PIL import Image

    rng = random.Random(seed)
    image = Image.frombytes("RGB", (48, 48), bytes(rng.randrange(256) for _ in range(48 * 48 * 3)))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def test_big_image_dataset_is_converted_partially_with_its_images_embedded(hub, owner, tmp_path, monkeypatch):
    """An ImageFolder over AICOMMONS_PARQUET_MAX_BYTES: the partial Parquet holds the images' bytes
    (as a whole conversion does), not paths into the job's temporary checkout."""
    repo = f"pat/{unique_name('pq-img')}"
    owner.create_repo(repo, repo_type="dataset")
    images = {f"train/{i}.png": _noise_png(i) for i in range(12)}  # ~7 kB each, ~84 kB > 20 kB
    metadata = "".join(f'{{"file_name": "{i}.png", "n": {i}}}\n' for i in range(12))
    info = owner.create_commit(repo, [CommitOperationAdd(path, data) for path, data in images.items()]
                               + [CommitOperationAdd("train/metadata.jsonl", metadata.encode())],
                               commit_message="images", repo_type="dataset")
    answer = wait_converted(hub, repo, info.oid)
    assert answer["partial"] is True and answer["failed"] == []
    assert [f["filename"] for f in answer["parquet_files"]] == ["0000.parquet"]
    import io

    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(httpx.get(answer["parquet_files"][0]["url"], follow_redirects=True).content))
    rows = table.to_pylist()
    assert 0 < len(rows) < 12
    for row in rows:
        assert row["image"] == {"bytes": images[f"train/{row['n']}.png"], "path": f"{row['n']}.png"}
    # The unmodified client reads the images from the converted ref.
    _clients_env(monkeypatch, hub, OWNER, tmp_path)
    import datasets

    loaded = datasets.load_dataset(repo, revision=CONVERTED, split="train")
    assert loaded.num_rows == len(rows) and loaded[0]["image"].size == (48, 48)
    page = httpx.get(f"{hub.url}/datasets-server/rows", params={"dataset": repo, "config": "default",
                                                               "split": "train"}).json()
    first = page["rows"][0]["row"]
    assert page["partial"] is True and (first["image"]["width"], first["image"]["height"]) == (48, 48)
    assert httpx.get(first["image"]["src"]).content == images[f"train/{first['n']}.png"]


def test_zipped_images_are_embedded(hub, owner, tmp_path):
    """An ImageFolder of a zip of images (cells ``zip://a.png::<checkout>/train.zip``): the images'
    bytes are in the Parquet, read from the dataset's own archive."""
    import io
    import zipfile

    import pyarrow.parquet as pq

    images = {f"{i}.png": _small_png(i) for i in range(4)}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, data in images.items():
            archive.writestr(name, data)
    repo = f"pat/{unique_name('pq-zip')}"
    owner.create_repo(repo, repo_type="dataset")
    info = owner.create_commit(repo, [CommitOperationAdd("train.zip", buf.getvalue())], commit_message="zip",
                               repo_type="dataset")
    answer = wait_converted(hub, repo, info.oid)
    assert answer["failed"] == [] and answer["partial"] is False
    table = pq.read_table(io.BytesIO(httpx.get(answer["parquet_files"][0]["url"], follow_redirects=True).content))
    assert sorted(row["image"]["bytes"] for row in table.to_pylist()) == sorted(images.values())


def _small_png(seed: int) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (5 + seed, 4), (40 * seed, 0, 0)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize(("rows", "path"), [(1, "/etc/hostname"), (2000, "/etc/hostname"),
                                            (1, "zip://a.png::/etc/hostname")], ids=["whole", "partial", "archive"])
def test_media_cells_naming_the_hubs_own_files_fail_the_conversion(hub, owner, rows, path):
    """A CSV column declared ``image`` in the card naming a file outside the dataset: the conversion
    fails (whole or partial), and the file's bytes never reach a Parquet file."""
    repo = f"pat/{unique_name('pq-escape')}"
    owner.create_repo(repo, repo_type="dataset")
    card = "---\ndataset_info:\n  features:\n  - name: image\n    dtype: image\n  - name: n\n    dtype: int64\n---\n"
    csv = "image,n\n" + "".join(f"{path if i == 0 else '../../../../etc/passwd'},{i}\n"
                                  for i in range(rows))
    info = owner.create_commit(repo, [CommitOperationAdd("README.md", card.encode()),
                                      CommitOperationAdd("data.csv", csv.encode())],
                               commit_message="escape", repo_type="dataset")
    answer = wait_converted(hub, repo, info.oid)
    assert answer["parquet_files"] == [] and len(answer["failed"]) == 1
    assert "outside the dataset" in answer["failed"][0]["error"]
    assert owner.list_repo_refs(repo, repo_type="dataset").converts == []
    # /size (from the preview of the files meanwhile) lists the failed conversion, as /parquet does.
    sized = httpx.get(f"{hub.url}/datasets-server/size", params={"dataset": repo}).json()
    assert sized["size"]["dataset"]["num_rows"] == rows
    assert (sized["pending"], sized["failed"]) == ([], answer["failed"])


def test_files_uploaded_through_xet_are_rebuilt_once_then_linked(hub, owner, monkeypatch):
    """A data file the stock client sent through Xet has no whole copy: the first conversion rebuilds
    it from its xorbs and leaves the copy to the download cache (checked against its sha256); the
    next conversion of the same file links that copy instead, and converts to the same Parquet."""
    import hashlib

    import pandas as pd
    from huggingface_hub import constants

    pytest.importorskip("hf_xet")
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", False)
    rows = 40_000
    csv = "id,text,score\n" + "".join(f"{i},row number {i} of the set,{i / 7:.4f}\n" for i in range(rows))
    assert len(csv) > 1024 * 1024  # the download cache keeps files of 1 MiB and more
    oid = hashlib.sha256(csv.encode()).hexdigest()
    repo = f"pat/{unique_name('pqxet')}"
    owner.create_repo(repo, repo_type="dataset")
    owner.create_commit(repo, [CommitOperationAdd(".gitattributes", b"*.csv filter=lfs diff=lfs merge=lfs -text\n")],
                        commit_message="attributes", repo_type="dataset")
    sha = owner.create_commit(repo, [CommitOperationAdd("data/train.csv", csv.encode())], commit_message="data",
                              repo_type="dataset").oid
    paths = owner.get_paths_info(repo, ["data/train.csv"], repo_type="dataset")
    assert paths[0].lfs is not None and paths[0].xet_hash  # sent through Xet
    # (Whether the copy exists yet is a race: the commit has queued the conversion that makes it.)
    copy = hub.data_dir / "download-cache" / oid[:2] / oid

    def parquet_rows(revision: str) -> tuple[list, pd.DataFrame]:
        names = sorted(owner.list_repo_files(repo, repo_type="dataset", revision=revision))
        path = owner.hf_hub_download(repo, names[-1], repo_type="dataset", revision=revision)
        return names, pd.read_parquet(path)

    first = wait_converted(hub, repo, sha, extras=False)
    assert first["failed"] == [] and first["partial"] is True  # over this hub's 20 kB
    names, table = parquet_rows(CONVERTED)
    assert names == [".gitattributes", "default/partial-train/0000.parquet"]
    assert table.iloc[5].to_dict() == {"id": 5, "text": "row number 5 of the set", "score": round(5 / 7, 4)}
    assert copy.read_bytes() == csv.encode()  # the checkout's rebuild, kept
    os.utime(copy, (1, 1))

    card = CommitOperationAdd("README.md", b"---\nlicense: mit\n---\n# notes\n")
    sha2 = owner.create_commit(repo, [card], commit_message="card", repo_type="dataset").oid
    second = wait_converted(hub, repo, sha2, extras=False)
    assert second["failed"] == [] and second["parquet_files"] == first["parquet_files"]
    assert copy.stat().st_mtime > 1  # the second checkout linked the copy (marking it used)
    again = owner.dataset_info(repo, revision=CONVERTED, files_metadata=True).siblings
    before = owner.dataset_info(repo, revision=converted_parent(owner, repo), files_metadata=True).siblings
    assert [(f.rfilename, f.lfs) for f in again] == [(f.rfilename, f.lfs) for f in before]


def converted_parent(owner: HfApi, repo: str) -> str:
    """The converted ref's previous commit (the conversion before the last)."""
    commits = owner.list_repo_commits(repo, repo_type="dataset", revision=CONVERTED)
    return commits[1].commit_id


def test_failure_is_recorded_and_shown_not_retried(hub, owner):
    repo = f"pat/{unique_name('pq-bad')}"
    owner.create_repo(repo, repo_type="dataset")
    info = owner.create_commit(repo, [CommitOperationAdd("data.csv", b"a,b\n1,2\n3\n4,5,6,7\n\x00\xff")],
                               commit_message="bad", repo_type="dataset")
    answer = wait_converted(hub, repo, info.oid)
    assert answer["parquet_files"] == [] and answer["partial"] is False
    assert len(answer["failed"]) == 1 and answer["failed"][0]["kind"] == "config-parquet-and-info"
    error = answer["failed"][0]["error"]
    assert "Error" in error
    valid = httpx.get(f"{hub.url}/datasets-server/is-valid", params={"dataset": repo}).json()
    assert valid == {"viewer": False, "preview": True, "search": False, "filter": False, "statistics": False}
    listed = httpx.get(f"{hub.url}/datasets-server/splits", params={"dataset": repo}).json()
    assert listed["splits"] == [{"dataset": repo, "config": "default", "split": "train"}]  # the preview's
    assert listed["pending"] == [] and listed["failed"] == [{"dataset": repo, "config": "default",
                                                             "error": {"error": error}}]
    sized = httpx.get(f"{hub.url}/datasets-server/size", params={"dataset": repo})
    assert sized.status_code == 500, sized.text  # the preview cannot read the file either: its error
    page = httpx.get(f"{hub.url}/datasets/{repo}/viewer")
    assert page.status_code == 200 and "Parquet conversion failed" in page.text
    assert error.split(":")[0] in page.text
    time.sleep(3)  # no retry: still the same failure, and no converted ref
    assert wait_converted(hub, repo, info.oid)["failed"] == answer["failed"]
    refs = owner.list_repo_refs(repo, repo_type="dataset")
    assert refs.converts == []


def test_parquet_and_info_answers_and_load_dataset_uses_them(hub, owner, monkeypatch, tmp_path):
    repo, sha = make_dataset(owner)
    answer = wait_converted(hub, repo, sha)
    base = f"{hub.url}/datasets/{repo}/resolve/refs%2Fconvert%2Fparquet"
    assert [(f["config"], f["split"], f["filename"], f["url"]) for f in answer["parquet_files"]] == [
        ("default", "train", "0000.parquet", f"{base}/default/train/0000.parquet"),
        ("default", "test", "0000.parquet", f"{base}/default/test/0000.parquet"),
        ("qa", "train", "0000.parquet", f"{base}/qa/train/0000.parquet")]
    assert all(f["dataset"] == repo and f["size"] > 0 for f in answer["parquet_files"])
    one = httpx.get(f"{hub.url}/datasets-server/parquet", params={"dataset": repo, "config": "qa"}).json()
    assert [f["config"] for f in one["parquet_files"]] == ["qa"]
    assert one["features"] == {"q": {"dtype": "large_string", "_type": "Value"},
                               "score": {"dtype": "float64", "_type": "Value"}}
    info = httpx.get(f"{hub.url}/datasets-server/info", params={"dataset": repo})
    assert info.headers["x-revision"] == sha
    body = info.json()
    assert (body["pending"], body["failed"], body["partial"]) == ([], [], False)
    assert set(body["dataset_info"]) == {"default", "qa"}
    default = body["dataset_info"]["default"]
    assert default["config_name"] == "default" and default["builder_name"] == "csv"
    assert {k: (v["name"], v["num_examples"]) for k, v in default["splits"].items()} == \
        {"train": ("train", 130), "test": ("test", 7)}
    assert default["features"] == {"text": {"dtype": "large_string", "_type": "Value"},
                                   "label": {"dtype": "int64", "_type": "Value"}}
    single = httpx.get(f"{hub.url}/datasets-server/info", params={"dataset": repo, "config": "qa"}).json()
    assert single == {"dataset_info": body["dataset_info"]["qa"], "partial": False}
    for params, code in (({"dataset": repo, "config": "nope"}, "ResponseNotFound"), ({}, "MissingRequiredParameter")):
        for endpoint in ("info", "parquet"):
            r = httpx.get(f"{hub.url}/datasets-server/{endpoint}", params=params)
            assert r.headers["x-error-code"] == code
    # The Hub's own helpers: {config: {split: [url]}}, [url], and a redirect to the file.
    listing = httpx.get(f"{hub.url}/api/datasets/{repo}/parquet").json()
    api_base = f"{hub.url}/api/datasets/{repo}/parquet"
    assert listing == {"default": {"train": [f"{api_base}/default/train/0.parquet"],
                                   "test": [f"{api_base}/default/test/0.parquet"]},
                       "qa": {"train": [f"{api_base}/qa/train/0.parquet"]}}
    assert httpx.get(f"{api_base}/default/test").json() == [f"{api_base}/default/test/0.parquet"]
    moved = httpx.get(f"{api_base}/default/test/0.parquet")
    assert moved.status_code == 302 and moved.headers["location"] == f"{base}/default/test/0000.parquet"
    assert httpx.get(f"{api_base}/default/test/1.parquet").status_code == 404
    assert httpx.get(f"{api_base}/default/nope").status_code == 404
    import io

    import pandas as pd

    followed = httpx.get(f"{api_base}/default/test/0.parquet", follow_redirects=True)
    assert len(pd.read_parquet(io.BytesIO(followed.content))) == 7

    # load_dataset("user/ds") reads /info on the datasets-server. sub-host and verifies split sizes
    # against it: with the exact figures it loads. The sub-host resolves to the hub here.
    _clients_env(monkeypatch, hub, OWNER, tmp_path)
    import socket as socket_module

    import datasets
    import datasets.load
    from datasets.utils import _dataset_viewer

    real_getaddrinfo = socket_module.getaddrinfo

    def resolve(host, *args, **kwargs):
        if isinstance(host, str) and host.startswith("datasets-server."):
            host = host[len("datasets-server."):]
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket_module, "getaddrinfo", resolve)
    seen = []
    real_infos = _dataset_viewer.get_exported_dataset_infos

    def spy(*args, **kwargs):
        seen.append(real_infos(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(datasets.load._dataset_viewer, "get_exported_dataset_infos", spy)
    loaded = datasets.load_dataset(repo, "default")
    assert seen and set(seen[0]) == {"default", "qa"}  # the export was used, not ignored
    assert loaded["train"].num_rows == 130 and loaded["test"].num_rows == 7
    assert datasets.load_dataset(repo, "qa", split="train").num_rows == 5


def test_jobs_lost_with_their_process_are_resumed_when_workers_start(tmp_path_factory, monkeypatch):
    """The conversion records the Parquet first and queues a follow-up job for the search index and
    statistics. A process that dies takes the job it was running with it (huey takes a job off the
    queue before running it): here one dataset's follow-up and another's conversion are taken and
    never finished. Meanwhile the first dataset's Parquet, rows and ``datasets``' answers are
    served, ``/search`` and ``/statistics`` answer ``ResponseNotReady`` as datasets-server does and
    the page says so; the second stays pending. A worker process started afterwards queues both
    jobs again, and both finish."""
    import sys

    from aicommons.config import Settings
    from aicommons.hub.hub import Hub
    from tests.backends import live_hub_backend

    data = tmp_path_factory.mktemp("resume") / "data"
    data.mkdir()
    with live_hub_backend(tmp_path_factory.mktemp("resume-backend")) as backend:
        live = start_hub(data, free_port(), AICOMMONS_PARQUET_CONVERSION="true", AICOMMONS_JOB_WORKERS="0",
                         **backend)  # no workers: the jobs wait on the queue
        worker = None
        try:
            live.cli("user", "create", "pat")
            live.cli("token", "create", "pat", "--value", OWNER)
            owner = HfApi(endpoint=live.url, token=OWNER)
            repo, sha = make_dataset(owner)
            lost, lost_sha = make_dataset(owner)
            for key, value in live.env.items():
                if key.startswith(("AICOMMONS_", "AWS_")):  # the hub's settings and its bucket's credentials
                    monkeypatch.setenv(key, value)
            local = Hub(Settings.from_env(), migrate=False)  # a worker of this hub, in this process
            try:
                ids = {local.repo_store.get("dataset", name).id: name for name in (repo, lost)}
                others, taken = [], []
                while (task := local.jobs.huey.dequeue()) is not None:
                    if task.name == "convert_parquet" and ids.get(task.args[0]) == repo:
                        assert local.parquet.convert(*task.args) == "done"  # stage 1; queues stage 2
                    elif task.name in ("convert_parquet", "viewer_extras") and task.args[0] in ids:
                        taken.append((task.name, ids[task.args[0]]))  # ... and the process dies
                    else:
                        others.append(task)
                for task in others:
                    local.jobs.huey.enqueue(task)
                assert sorted(taken) == [("convert_parquet", lost), ("viewer_extras", repo)]
            finally:
                local.close()

            def ds(path: str, name: str = repo, **params) -> httpx.Response:
                return httpx.get(f"{live.url}/datasets-server/{path}", params={"dataset": name, **params})

            answer = wait_converted(live, repo, sha, extras=False, timeout=5)
            assert [f["split"] for f in answer["parquet_files"]] == ["train", "test", "train"]
            assert ds("rows", config="default", split="train").json()["num_rows_total"] == 130
            for path, params in (("search", {"query": "sentence"}), ("statistics", {})):
                r = ds(path, config="default", split="train", **params)
                assert r.status_code == 500 and r.headers["x-error-code"] == "ResponseNotReady", r.text
            assert ds("statistics", config="default", split="nope").headers["x-error-code"] == "ResponseNotFound"
            assert ds("is-valid").json() == {"viewer": True, "preview": True, "search": False, "filter": True,
                                             "statistics": False}
            assert "Search and column statistics are being prepared" in \
                httpx.get(f"{live.url}/datasets/{repo}/viewer").text
            assert ds("parquet", name=lost).json()["pending"] != []
            # /splits and /size list the conversion still to run, as datasets-server does (the splits
            # themselves come from the preview of the files meanwhile).
            listed = ds("splits", name=lost).json()
            assert [s["config"] for s in listed["splits"]] == ["default", "default", "qa"]
            assert (listed["pending"], listed["failed"]) == (
                [{"dataset": lost, "config": "default"}, {"dataset": lost, "config": "qa"}], [])
            assert ds("splits", name=lost, config="qa").json()["pending"] == [{"dataset": lost, "config": "qa"}]
            sized = ds("size", name=lost).json()
            assert (sized["pending"], sized["failed"]) == ([{"dataset": lost, "config": None, "split": None,
                                                             "kind": "config-parquet-and-info"}], [])
            for path in ("splits", "size"):
                assert (ds(path).json()["pending"], ds(path).json()["failed"]) == ([], [])  # converted

            worker = subprocess.Popen([sys.executable, "-m", "aicommons.cli.main", "worker", "--workers", "1",
                                       "--no-periodic"], env=live.env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
            wait_converted(live, repo, sha)
            wait_converted(live, lost, lost_sha)
            found = ds("search", config="default", split="train", query="sentence").json()
            assert found["num_rows_total"] == 130
            assert ds("statistics", name=lost, config="qa", split="train").json()["num_examples"] == 5
            assert ds("is-valid").json()["search"] is True
            assert "being prepared" not in httpx.get(f"{live.url}/datasets/{repo}/viewer").text
        finally:
            if worker is not None:
                worker.terminate()
                worker.wait(timeout=30)
            stop_hub(live)


def test_media_columns_are_told_apart_by_the_datasets_metadata():
    """An ``Image`` column and a plain struct of bytes and path have equal Arrow schemas (pyarrow
    compares them without metadata): the check of media paths, cached per schema, tells them apart."""
    import datasets

    from aicommons.hub.parquet_export import _media_columns

    image = datasets.Features({"image": datasets.Image(), "n": datasets.Value("int64")}).arrow_schema
    plain = datasets.Features({"image": {"bytes": datasets.Value("binary"), "path": datasets.Value("string")},
                               "n": datasets.Value("int64")}).arrow_schema
    assert image == plain
    assert _media_columns(plain, plain.metadata[b"huggingface"]) == ()
    assert _media_columns(image, image.metadata[b"huggingface"]) == ("image",)
    assert _media_columns(image, None) == ()
