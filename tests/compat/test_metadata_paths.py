"""Metadata paths that scale (issue 10), through huggingface_hub against a real server: listings page
by keyset and serve ``full=true`` from the database, trees page by keyset, download counts are
batched and survive a clean shutdown, and ``list_user_repos`` / liked repos come from one query.

These tests run their own hub on SQLite so that they can look at (and move) what is on disk."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download

from aicommons.db.engine import make_engine
from aicommons.db.repos import RepoStore
from tests.backends import free_port
from tests.conftest import start_hub, stop_hub

TOKEN = "hf_mira_token_0000000000000000"
OTHER = "hf_otto_token_0000000000000000"
README = "---\nlicense: mit\nlibrary_name: transformers\npipeline_tag: text-generation\ntags:\n- demo\n---\n# m\n"


@pytest.fixture(scope="module")
def own_hub(tmp_path_factory):
    data = tmp_path_factory.mktemp("metadata") / "data"
    data.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AICOMMONS_")}
    env["AICOMMONS_DATA_DIR"] = str(data)
    for args in (["user", "create", "mira"], ["token", "create", "mira", "--value", TOKEN],
                 ["user", "create", "otto"], ["token", "create", "otto", "--value", OTHER]):
        subprocess.run([sys.executable, "-m", "aicommons.cli.main", *args], env=env, check=True, capture_output=True)
    hub = start_hub(data, free_port(), AICOMMONS_DOWNLOAD_FLUSH_SECONDS="3600")
    yield hub
    stop_hub(hub)


def _db(hub) -> sqlite3.Connection:
    return sqlite3.connect(hub.data_dir / "hub.db", timeout=30)


def _storage_key(hub, repo_id: str) -> str:
    with _db(hub) as conn:
        return conn.execute("SELECT storage_key FROM repos WHERE full_id = ?", (repo_id,)).fetchone()[0]


def test_full_listing_and_model_info_come_from_the_stored_head(own_hub):
    api = HfApi(endpoint=own_hub.url, token=TOKEN)
    rid = "mira/stored-head"
    api.create_repo(rid)
    api.create_commit(rid, [CommitOperationAdd("README.md", README.encode()),
                            CommitOperationAdd("config.json", b"{}"),
                            CommitOperationAdd("sub/model.safetensors", b"\0" * 3000)], commit_message="add")
    info = api.model_info(rid, files_metadata=True)
    by_name = {s.rfilename: s for s in info.siblings}
    assert set(by_name) == {".gitattributes", "README.md", "config.json", "sub/model.safetensors"}
    assert by_name["sub/model.safetensors"].lfs.size == 3000 and by_name["sub/model.safetensors"].size == 3000
    assert by_name["config.json"].size == 2 and by_name["config.json"].blob_id
    assert info.card_data["license"] == "mit" and "demo" in info.tags and info.pipeline_tag == "text-generation"

    listed = {m.id: m for m in api.list_models(author="mira", full=True)}
    assert sorted(s.rfilename for s in listed[rid].siblings) == sorted(by_name)
    assert listed[rid].sha == info.sha and listed[rid].card_data["license"] == "mit"

    # The listing reads no git: with the repository folder moved away, it answers the same.
    key = _storage_key(own_hub, rid)
    folder = own_hub.data_dir / "git" / key[:2] / f"{key}.git"
    assert folder.is_dir()
    hidden = folder.with_name(folder.name + "-away")
    folder.rename(hidden)
    try:
        again = {m.id: m for m in api.list_models(author="mira", full=True)}
        assert sorted(s.rfilename for s in again[rid].siblings) == sorted(by_name)
    finally:
        hidden.rename(folder)

    # A new commit replaces the stored head; a revision other than the head is read from git.
    api.create_commit(rid, [CommitOperationAdd("extra.txt", b"x")], commit_message="more")
    new = api.model_info(rid)
    assert "extra.txt" in {s.rfilename for s in new.siblings} and new.sha != info.sha
    old = api.model_info(rid, revision=info.sha)
    assert "extra.txt" not in {s.rfilename for s in old.siblings} and old.sha == info.sha
    listed = {m.id: m for m in api.list_models(author="mira", full=True)}
    assert "extra.txt" in {s.rfilename for s in listed[rid].siblings}


def test_heads_of_repos_from_before_the_migration_are_filled_on_first_use(own_hub):
    api = HfApi(endpoint=own_hub.url, token=TOKEN)
    rid = "mira/pre-0013"
    api.create_repo(rid)
    api.upload_file(path_or_fileobj=b"{}", path_in_repo="config.json", repo_id=rid)
    with _db(own_hub) as conn:  # as a repo committed before 0013 was: no stored head
        conn.execute("DELETE FROM repo_heads WHERE repo_id = (SELECT id FROM repos WHERE full_id = ?)", (rid,))
    listed = {m.id: m for m in api.list_models(author="mira", full=True)}
    assert {s.rfilename for s in listed[rid].siblings} == {".gitattributes", "config.json"}
    with _db(own_hub) as conn:
        assert conn.execute("SELECT count(*) FROM repo_heads JOIN repos ON repos.id = repo_id "
                            "WHERE full_id = ? AND repo_heads.sha = repos.sha", (rid,)).fetchone()[0] == 1


def _bulk_repos(hub, owner: str, n: int) -> list[str]:
    """``n`` repo rows straight into the database (listings without full= read no git)."""
    engine = make_engine(f"sqlite:///{hub.data_dir / 'hub.db'}")
    store = RepoStore(engine)
    with _db(hub) as conn:
        owner_id = conn.execute("SELECT id FROM accounts WHERE name = ?", (owner,)).fetchone()[0]
    base = datetime(2025, 1, 1)
    ids = []
    for i in range(n):
        # Few distinct dates and download counts: pages must break ties by id.
        repo = store.create(type="model", namespace=owner, name=f"bulk-{i:04d}", owner_id=owner_id,
                            storage_key=f"bulk{owner}{i:04d}", private=i % 97 == 0, now=base + timedelta(hours=i % 7))
        store.add_downloads({repo.id: i % 5})
        ids.append(repo.full_id)
    engine.dispose()
    return ids


def test_listings_page_by_keyset_through_the_link_header(own_hub):
    ids = _bulk_repos(own_hub, "otto", 1234)
    public = {r for i, r in enumerate(ids) if i % 97}
    anon = HfApi(endpoint=own_hub.url)
    for sort in (None, "downloads", "created_at", "likes"):
        got = [m.id for m in anon.list_models(author="otto", sort=sort)]
        assert len(got) == len(set(got)) == len(public) and set(got) == public, sort
    downloads = [m.downloads for m in anon.list_models(author="OTTO", sort="downloads")]
    assert downloads == sorted(downloads, reverse=True)
    assert len(list(anon.list_models(author="otto", limit=1100))) == 1100  # limit spans pages
    owner = HfApi(endpoint=own_hub.url, token=OTHER)
    assert len(list(owner.list_models(author="otto"))) == len(ids)  # the owner sees the private ones
    first = httpx.get(f"{own_hub.url}/api/models", params={"author": "otto", "sort": "downloads"})
    assert first.status_code == 200 and len(first.json()) == 1000
    assert 'rel="next"' in first.headers["Link"] and "cursor=" in first.headers["Link"]


def test_tree_pages_by_keyset_and_expand_finds_last_commits(own_hub):
    api = HfApi(endpoint=own_hub.url, token=TOKEN)
    rid = "mira/big-tree"
    api.create_repo(rid)
    files = {f"d{i % 3}/sub{i % 2}/f{i:04d}.txt": f"{i}".encode() for i in range(1500)}
    api.create_commit(rid, [CommitOperationAdd(p, d) for p, d in files.items()], commit_message="many")
    api.create_commit(rid, [CommitOperationAdd("d1/sub0/f0004.txt", b"changed")], commit_message="change one")
    entries = list(api.list_repo_tree(rid, recursive=True))
    paths = [e.path for e in entries]
    assert len(paths) == len(set(paths))
    assert {p for p, e in zip(paths, entries) if hasattr(e, "size") and not hasattr(e, "tree_id")} >= set(files)
    assert {"d0", "d1", "d2", "d0/sub0", "d2/sub1"} <= set(paths)
    # Pages link by an opaque cursor; the second page starts right after the first.
    first = httpx.get(f"{own_hub.url}/api/models/{rid}/tree/main", params={"recursive": "true"})
    assert len(first.json()) == 1000
    nxt = httpx.get(first.headers["Link"].split(";")[0].strip("<>"))
    assert [e["path"] for e in first.json() + nxt.json()] == paths[:1000 + len(nxt.json())]
    expanded = {e.path: e for e in api.list_repo_tree(rid, "d1/sub0", expand=True)}
    assert len(expanded) == 250
    assert expanded["d1/sub0/f0004.txt"].last_commit.title == "change one"
    assert expanded["d1/sub0/f0010.txt"].last_commit.title == "many"
    info = api.get_paths_info(rid, ["d1/sub0/f0004.txt", "d0"], expand=True)
    assert {i.path: i.last_commit.title for i in info} == {"d1/sub0/f0004.txt": "change one", "d0": "many"}


def test_download_counts_are_batched_and_survive_a_clean_restart(own_hub, tmp_path):
    api = HfApi(endpoint=own_hub.url, token=TOKEN)
    rid = "mira/counted"
    api.create_repo(rid)
    api.upload_file(path_or_fileobj=b"{}", path_in_repo="config.json", repo_id=rid)
    for i in range(3):
        hf_hub_download(rid, "config.json", endpoint=own_hub.url, token=TOKEN, cache_dir=tmp_path / str(i))
    assert api.model_info(rid).downloads == 0  # in memory (flushed every hour in this hub)
    stop_hub(own_hub)  # SIGTERM: a clean shutdown writes them
    restarted = start_hub(own_hub.data_dir, int(own_hub.url.rsplit(":", 1)[1]), AICOMMONS_DOWNLOAD_FLUSH_SECONDS="3600")
    own_hub.process = restarted.process
    assert api.model_info(rid).downloads == 3


def test_storage_listing_and_liked_repos_from_the_database(own_hub):
    api = HfApi(endpoint=own_hub.url, token=TOKEN)
    other = HfApi(endpoint=own_hub.url, token=OTHER)
    api.create_repo("mira/weights")
    api.upload_file(path_or_fileobj=b"\1" * 5000, path_in_repo="w.safetensors", repo_id="mira/weights")
    api.create_repo("mira/hidden", private=True)
    rows = {r["id"]: r for r in httpx.get(f"{own_hub.url}/api/settings/repositories",
                                          headers={"Authorization": f"Bearer {TOKEN}"}).json()}
    assert rows["mira/weights"]["storage"] > 5000 and rows["mira/hidden"]["visibility"] == "private"
    for rid in ("mira/weights", "mira/hidden"):  # huggingface_hub 2.4 can only unlike: a plain POST
        assert httpx.post(f"{own_hub.url}/api/models/{rid}/like",
                          headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert set(other.list_liked_repos("mira").models) == {"mira/weights"}  # private stays invisible
    assert set(HfApi(endpoint=own_hub.url).list_liked_repos("mira").models) == {"mira/weights"}
    assert set(api.list_liked_repos("mira").models) == {"mira/weights", "mira/hidden"}
