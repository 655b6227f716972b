"""A push git completed but the server never recorded (it died in between) is recorded when the
hub starts again; a push recorded after a later one moved its ref on still names its LFS files; a git
object damaged on disk is a clear error, not a server that stops answering."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pygit2
import pytest
from huggingface_hub import HfApi

from aicommons.config import Settings
from aicommons.hub.hub import Hub
from aicommons.hub.push import PushPlan, PushService, RefUpdate
from tests.conftest import LiveHub, start_hub, stop_hub

TOKEN = "hf_dana_token_00000000000000"
MAIN = "refs/heads/main"


def git(*args: str, cwd: Path) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "Dana", "GIT_AUTHOR_EMAIL": "dana@example.org",
           "GIT_COMMITTER_NAME": "Dana", "GIT_COMMITTER_EMAIL": "dana@example.org"}
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


def commit_behind_the_hubs_back(bare: Path, work: Path, files: dict[str, str], message: str) -> str:
    """What git's receive-pack does once the pre-receive hook passed: objects in, ref moved. A push
    to the bare repo's path runs none of the hub's hooks and tells the hub nothing."""
    if not work.exists():
        git("clone", "-q", str(bare), str(work), cwd=bare.parent)
    for name, text in files.items():
        (work / name).write_text(text)
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", message, cwd=work)
    git("push", "-q", "--no-verify", "origin", "HEAD:main", cwd=work)  # no git-lfs pre-push upload
    return git("rev-parse", "HEAD", cwd=work)


@pytest.fixture
def data_dir(tmp_path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    env = {**os.environ, "AICOMMONS_DATA_DIR": str(data)}
    for args in (["user", "create", "dana"], ["token", "create", "dana", "--value", TOKEN]):
        subprocess.run([sys.executable, "-m", "aicommons.cli.main", *args], env=env, check=True, capture_output=True)
    return data


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def hub_with_a_repo(data_dir: Path) -> Iterator[tuple[LiveHub, HfApi, str]]:
    """A live hub on ``data_dir``, stopped on leaving, with a new model repo of dana's."""
    repo_id = f"dana/m-{uuid.uuid4().hex[:8]}"
    hub = start_hub(data_dir, free_port())
    try:
        api = HfApi(endpoint=hub.url, token=TOKEN)
        api.create_repo(repo_id)
        yield hub, api, repo_id
    finally:
        stop_hub(hub)


def test_a_push_left_unrecorded_by_a_crash_is_recorded_at_start(data_dir, tmp_path):
    with hub_with_a_repo(data_dir) as (_hub, api, repo_id):
        api.upload_file(path_or_fileobj=b"---\nlicense: mit\n---\n# v1\n", path_in_repo="README.md", repo_id=repo_id)
        before = api.model_info(repo_id)

    # The server died after git moved main but before recording the push: its plan is left behind.
    local = Hub(Settings.from_env(data_dir=str(data_dir)))
    try:
        row = local.repo_store.get("model", repo_id)
        bare = local.git.path(row.storage_key)
    finally:
        local.close()
    new = commit_behind_the_hubs_back(bare, tmp_path / "work", {"README.md": "---\nlicense: apache-2.0\n---\n# v2\n"},
                                      "v2")
    plans = data_dir / "tmp" / "git-push"
    plans.mkdir(parents=True, exist_ok=True)
    plan = PushPlan([RefUpdate(MAIN, before.sha, new)], repo_id=row.id)
    (plans / "left-behind.json").write_text(plan.to_json())

    hub = start_hub(data_dir, free_port())
    try:
        info = HfApi(endpoint=hub.url, token=TOKEN).model_info(repo_id)
        assert info.sha == new
        assert info.card_data["license"] == "apache-2.0"
        assert not (plans / "left-behind.json").exists()
    finally:
        stop_hub(hub)


def test_a_push_whose_ref_moved_on_still_names_its_lfs_files(data_dir, tmp_path):
    hub = Hub(Settings.from_env(data_dir=str(data_dir)))
    try:
        dana = hub.accounts.principal_for_token(TOKEN)
        row, _ = hub.repos.create(dana, "model", "weights", None, private=False)
        bare = hub.git.path(row.storage_key)
        work = tmp_path / "work"
        content = b"abc"
        oid = hashlib.sha256(content).hexdigest()
        asyncio.run(hub.lfs.receive(row, oid, len(content), one_chunk(content)))  # as git-lfs uploads it
        pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize 3\n"
        base = str(pygit2.Repository(str(bare)).references[MAIN].target)
        first = commit_behind_the_hubs_back(bare, work, {"w.bin": pointer}, "weights")
        second = commit_behind_the_hubs_back(bare, work, {"notes.txt": "later"}, "a later push")
        push = PushService.of(hub)

        # The first push is recorded only now, after the second moved main on.
        landed = push.record(row, PushPlan([RefUpdate(MAIN, base, first)], {MAIN: [(oid, "w.bin", 3)]}, row.id))
        assert landed == [MAIN]
        assert [f["filename"] for f in hub.repo_store.list_lfs(row.id)] == ["w.bin"]
        assert hub.repo_store.get_by_id(row.id).sha == second  # the head is where the ref is

        # A ref rewritten since (force push) does not contain the planned commit: nothing landed.
        git("reset", "-q", "--hard", base, cwd=work)
        git("push", "-q", "--no-verify", "-f", "origin", "HEAD:main", cwd=work)
        assert push.record(row, PushPlan([RefUpdate(MAIN, base, second)], {}, row.id)) == []
    finally:
        hub.close()


def test_a_truncated_git_object_is_a_clear_error_and_the_rest_of_the_repo_still_reads(data_dir):
    # libgit2 spins forever on a loose object whose zlib stream was cut short, holding the GIL: one
    # read of it stopped every thread of the server. The hub reads loose objects itself (gitrepo/loose.py).
    with hub_with_a_repo(data_dir) as (hub, api, repo_id):
        api.upload_file(path_or_fileobj=b"intact\n", path_in_repo="a.txt", repo_id=repo_id)
        api.upload_file(path_or_fileobj=b"soon damaged\n" * 10, path_in_repo="b.txt", repo_id=repo_id)
        oid = {f.path: f.blob_id for f in api.list_repo_tree(repo_id)}["b.txt"]
        [loose] = data_dir.glob(f"git/*/*.git/objects/{oid[:2]}/{oid[2:]}")
        raw = loose.read_bytes()
        loose.chmod(0o600)
        loose.write_bytes(raw[:20])  # cut short on disk: a full disk, a crash, a bad copy

        with httpx.Client(base_url=hub.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=20) as http:
            damaged = http.get(f"/{repo_id}/resolve/main/b.txt")
            assert damaged.status_code == 500
            assert damaged.headers["X-Error-Code"] == "CorruptGitObject"
            assert oid in damaged.json()["error"] and "aicommons fsck" in damaged.json()["error"]
            assert http.get(f"/{repo_id}/resolve/main/a.txt").content == b"intact\n"
            assert len(http.get(f"/api/models/{repo_id}/commits/main").json()) == 3
            assert http.get("/api/health").status_code == 200
    assert oid in hub.cli("fsck", check=False).stdout


def damage(data_dir: Path, oid: str) -> None:
    """Cut the loose object ``oid`` short on disk (a full disk, a crash, a bad copy)."""
    [loose] = data_dir.glob(f"git/*/*.git/objects/{oid[:2]}/{oid[2:]}")
    raw = loose.read_bytes()
    loose.chmod(0o600)
    loose.write_bytes(raw[:20])


def test_a_listing_with_one_damaged_object_lists_the_other_entries(data_dir):
    # One damaged blob made list_repo_tree and the web tree page fail as a whole (a 500). The damaged
    # entry is listed with its path and blob id, size 0, no lfs and "damaged": true; a damaged folder
    # is listed (damaged) but not descended into. Reading the damaged file itself stays a clear 500.
    with hub_with_a_repo(data_dir) as (hub, api, repo_id):
        api.upload_file(path_or_fileobj=b"intact\n", path_in_repo="a.txt", repo_id=repo_id)
        api.upload_file(path_or_fileobj=b"soon damaged\n" * 10, path_in_repo="b.txt", repo_id=repo_id)
        api.upload_file(path_or_fileobj=b"in a folder\n", path_in_repo="d/c.txt", repo_id=repo_id)
        api.upload_file(path_or_fileobj=b"in another\n", path_in_repo="e/f.txt", repo_id=repo_id)
        before = {f.path: f for f in api.list_repo_tree(repo_id, recursive=True)}
        damage(data_dir, before["b.txt"].blob_id)

        listed = {f.path: f for f in api.list_repo_tree(repo_id)}
        assert set(listed) == {".gitattributes", "a.txt", "b.txt", "d", "e"}
        assert listed["a.txt"].size == 7 and listed["a.txt"].blob_id == before["a.txt"].blob_id
        assert (listed["b.txt"].size, listed["b.txt"].lfs, listed["b.txt"].blob_id) == (0, None,
                                                                                          before["b.txt"].blob_id)
        with httpx.Client(base_url=hub.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=20) as http:
            raw = {e["path"]: e for e in http.get(f"/api/models/{repo_id}/tree/main").json()}
            assert raw["b.txt"]["damaged"] is True and "damaged" not in raw["a.txt"]
            page = http.get(f"/{repo_id}/tree/main")
            assert page.status_code == 200
            assert "a.txt" in page.text and "b.txt" in page.text and ">damaged</span>" in page.text
            assert http.get(f"/{repo_id}/resolve/main/b.txt").headers["X-Error-Code"] == "CorruptGitObject"

            damage(data_dir, before["d"].tree_id)  # the folder's own tree
            deep = {f.path: f for f in api.list_repo_tree(repo_id, recursive=True)}
            assert set(deep) == {".gitattributes", "a.txt", "b.txt", "d", "e", "e/f.txt"}
            damaged = [e["path"] for e in http.get(f"/api/models/{repo_id}/tree/main", params={"recursive": "true"}
                                                   ).json() if e.get("damaged")]
            assert damaged == ["b.txt", "d"]


async def one_chunk(data: bytes):
    yield data


def test_plans_survive_a_json_round_trip_with_their_repo():
    plan = PushPlan([RefUpdate(MAIN, None, "a" * 40)], {MAIN: [("b" * 64, "x.bin", 1)]}, repo_id=7)
    assert PushPlan.from_json(plan.to_json()) == plan
    assert PushPlan.from_json(json.dumps({"updates": [], "lfs_files": {}})).repo_id is None  # older plans


def test_a_repo_deleted_while_it_is_read_answers_not_found(data_dir):
    # Deleting a repo drops its row, then its folder: a read that found the row just before opened a
    # folder that was gone, and answered a 500 (seen in the whole suite's server log).
    import shutil

    with hub_with_a_repo(data_dir) as (hub, api, repo_id):
        api.upload_file(path_or_fileobj=b"x\n", path_in_repo="a.txt", repo_id=repo_id)
        [bare] = data_dir.glob("git/*/*.git")
        shutil.rmtree(bare)  # the moment between the two steps
        with httpx.Client(base_url=hub.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=20) as http:
            for path in (f"/api/models/{repo_id}/tree/main", f"/{repo_id}/resolve/main/a.txt"):
                answer = http.get(path)
                assert (answer.status_code, answer.headers.get("X-Error-Code")) == (404, "RepoNotFound"), path
