"""Storage accounting (issue 11) through the stock clients: logical and physical bytes per repo and
owner, shared chunks split between the repos that use them, uploads never committed kept apart,
and the figures where huggingface_hub reads them (``usedStorage``, ``list_user_repos``) and in
``aicommons storage report``."""

from __future__ import annotations

import hashlib
import json
import os

import httpx
import pytest

from tests.conftest import ALICE_TOKEN, auth, new_org_of_alice, unique_name

MiB = 1024 * 1024


@pytest.fixture
def org(live_hub, api) -> str:
    return new_org_of_alice(live_hub, api, "st")


def refresh(live_hub) -> dict:
    return json.loads(live_hub.cli("storage", "refresh", "--json").stdout)


def report(live_hub, owner: str) -> dict:
    out = json.loads(live_hub.cli("storage", "report", "--owner", owner, "--json").stdout)
    return {"owner": out["owners"][0], "repos": {r["repo"].split(":", 1)[1]: r for r in out["repos"]}}


def test_shared_chunks_are_split_and_a_deleted_repo_leaves_its_share(live_hub, api, org, monkeypatch):
    pytest.importorskip("hf_xet")
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", False)
    first, second = f"{org}/{unique_name()}", f"{org}/{unique_name()}"
    api.create_repo(first)
    api.create_repo(second)
    base = os.urandom(3 * MiB)
    api.upload_file(path_or_fileobj=base, path_in_repo="base.bin", repo_id=first)
    # The same bytes plus one MiB: the client learns the first file's chunks (global dedup) and sends
    # only the new ones, so the two repos share a xorb.
    api.upload_file(path_or_fileobj=base + os.urandom(MiB), path_in_repo="more.bin", repo_id=second)
    assert refresh(live_hub)["errors"] == []
    got = report(live_hub, org)
    a, b = got["repos"][first], got["repos"][second]
    assert a["lfs_bytes"] == 3 * MiB and b["lfs_bytes"] == 4 * MiB and a["lfs_files"] == 1
    assert a["logical_bytes"] == a["git_bytes"] + 3 * MiB
    stored_a, stored_b = a["physical_bytes"] - a["git_bytes"], b["physical_bytes"] - b["git_bytes"]
    # 4 MiB stored once for both (plus xorb and shard framing), half of the shared part each.
    assert 4 * MiB <= stored_a + stored_b <= 4.2 * MiB
    assert 1.4 * MiB <= stored_a <= 1.7 * MiB and stored_b >= stored_a + 0.9 * MiB
    owner = got["owner"]
    assert owner["repos"] == 3 and owner["logical_bytes"] == sum(r["logical_bytes"] for r in got["repos"].values())
    assert owner["physical_bytes"] == sum(r["physical_bytes"] for r in got["repos"].values())
    # Where huggingface_hub reads them: usedStorage is the logical figure, list_user_repos the live one.
    assert api.model_info(first, expand=["usedStorage"]).used_storage == a["logical_bytes"]
    listed_models = {m.id: m.used_storage for m in api.list_models(author=org, expand=["usedStorage"])}
    assert listed_models[first] == a["logical_bytes"] and listed_models[second] == b["logical_bytes"]
    listed = {r.id: r.storage for r in api.list_user_repos(namespace=org)}
    assert listed[first] >= 3 * MiB and listed[second] >= 4 * MiB
    # The second repo goes: the first one now pays for the whole xorb it used to share.
    api.delete_repo(second)
    refresh(live_hub)
    a = report(live_hub, org)["repos"][first]
    assert 3 * MiB <= a["physical_bytes"] - a["git_bytes"] <= 3.1 * MiB


def test_uploads_never_committed_are_pending_not_logical(live_hub, api, org, http):
    """An LFS object uploaded through the batch API but named by no commit counts as pending (and
    against the quota) but not as the repo's logical or physical bytes."""
    repo = f"{org}/{unique_name()}"
    api.create_repo(repo)
    data = os.urandom(200_000)
    oid = hashlib.sha256(data).hexdigest()
    batch = http.post(f"/{repo}.git/info/lfs/objects/batch", headers=auth(ALICE_TOKEN) | {
        "Accept": "application/vnd.git-lfs+json"}, json={"operation": "upload", "objects": [{"oid": oid, "size": len(data)}]})
    assert batch.status_code == 200, batch.text
    action = batch.json()["objects"][0]["actions"]["upload"]
    assert httpx.put(action["href"], content=data, headers=action.get("header", {})).status_code == 200
    api.upload_file(path_or_fileobj=b"committed\n", path_in_repo="notes.txt", repo_id=repo)
    refresh(live_hub)
    got = report(live_hub, org)
    row = got["repos"][repo]
    assert row["pending_bytes"] == len(data) and row["lfs_bytes"] == 0 and row["lfs_files"] == 0
    assert row["physical_bytes"] == row["git_bytes"] and row["logical_bytes"] == row["git_bytes"]
    # The quota counts it, with the git folders of the org's repos (this one and the fixture's).
    assert got["owner"]["used_bytes"] == sum(r["git_bytes"] for r in got["repos"].values()) + len(data)


def test_storage_report_cli(live_hub, org):
    text = live_hub.cli("storage", "report", "--owner", org).stdout
    assert "owner" in text and org in text
    missing = live_hub.cli("storage", "report", "--owner", "no-such-owner-here", check=False)
    assert missing.returncode == 1 and "no-such-owner-here" in missing.stderr
