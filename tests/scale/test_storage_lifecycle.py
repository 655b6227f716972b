"""The storage lifecycle (issue 11) on both deployments: inference snapshots removed at once when
their repo or its LFS files are deleted and least recently used beyond a cap, uploads never
committed expired (and then collected) without touching one committed meanwhile, git repositories
repacked without losing anything, and idle rate-limit rows pruned."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfApi

from aicommons.db.rate_limits import SharedRateLimitStore
from aicommons.hub.lifecycle import LifecycleReport
from aicommons.hub.snapshots import materialize
from aicommons.storage.keys import blob_key
from tests.conftest import ALICE_TOKEN, auth, unique_name
from tests.scale.conftest import in_process_hub


def cli(served, *args, **env) -> dict:
    out = subprocess.run([sys.executable, "-m", "aicommons.cli.main", *args, "--json"], env=served.env | env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.fixture
def hub(served):
    hub = in_process_hub(served.env)
    yield hub
    hub.close()


def snapshot(hub, repo_id: str):
    repo = hub.repo_store.get("model", repo_id)
    git_repo, commit = hub.refs.resolve(repo, "main")
    return repo, materialize(hub, repo, commit)


def upload_only(served, repo: str, data: bytes) -> str:
    """An LFS object uploaded through the batch API that no commit names."""
    oid = hashlib.sha256(data).hexdigest()
    batch = httpx.post(f"{served.url}/{repo}.git/info/lfs/objects/batch", headers=auth(ALICE_TOKEN) | {
        "Accept": "application/vnd.git-lfs+json"}, json={"operation": "upload", "objects": [{"oid": oid, "size": len(data)}]})
    action = batch.json()["objects"][0]["actions"]["upload"]
    assert httpx.put(action["href"], content=data, headers=action.get("header", {})).status_code == 200
    return oid


def test_snapshots_go_with_their_repo_and_with_deleted_lfs_files(served, hub):
    api = HfApi(endpoint=served.url, token=ALICE_TOKEN)
    doomed = api.create_repo(f"alice/{unique_name()}").repo_id
    api.upload_file(path_or_fileobj=os.urandom(5000), path_in_repo="w.bin", repo_id=doomed)
    _, folder = snapshot(hub, doomed)
    assert (folder / "w.bin").stat().st_size == 5000
    api.delete_repo(doomed)  # the server is told, and removes them at once
    assert not folder.exists() and not folder.parent.exists()
    kept = api.create_repo(f"alice/{unique_name()}").repo_id
    data = os.urandom(6000)
    api.upload_file(path_or_fileobj=data, path_in_repo="secret.bin", repo_id=kept)
    _, folder = snapshot(hub, kept)
    local = hub.blobs.local_path(blob_key(hashlib.sha256(data).hexdigest()))
    if local is not None:  # on a local disk the snapshot hard-links the blob: it would outlive a delete
        assert local.stat().st_nlink == 2
    api.permanently_delete_lfs_files(kept, list(api.list_lfs_files(kept)))
    assert not folder.exists()
    if local is not None:
        assert local.stat().st_nlink == 1  # GC's delete of the blob now frees its bytes


def test_snapshots_beyond_the_cap_go_least_recently_used_first(served, hub):
    api = HfApi(endpoint=served.url, token=ALICE_TOKEN)
    old, recent = (api.create_repo(f"alice/{unique_name()}").repo_id for _ in range(2))
    for repo in (old, recent):
        api.upload_file(path_or_fileobj=os.urandom(50_000), path_in_repo="w.bin", repo_id=repo)
    _, old_folder = snapshot(hub, old)
    _, recent_folder = snapshot(hub, recent)
    two_hours_ago = time.time() - 7200
    os.utime(old_folder, (two_hours_ago, two_hours_ago))
    os.utime(recent_folder, (two_hours_ago + 60, two_hours_ago + 60))
    stray = hub.settings.data_dir / "snapshots" / ("0" * 32) / ("1" * 40)  # a repo gone while the server was down
    stray.mkdir(parents=True)
    (stray / "x.bin").write_bytes(b"x" * 100)
    report = cli(served, "storage", "snapshots", AICOMMONS_SNAPSHOT_MAX_BYTES="80000")  # dry run
    gone = {p.split("/")[0] for p in report["snapshots_removed"]}
    assert gone == {"0" * 32, old_folder.parent.name} and old_folder.exists() and stray.exists()
    snapshot(hub, old)  # used again: now the most recent
    report = cli(served, "storage", "snapshots", "--apply", AICOMMONS_SNAPSHOT_MAX_BYTES="80000")
    assert {p.split("/")[0] for p in report["snapshots_removed"]} == {"0" * 32, recent_folder.parent.name}
    assert old_folder.exists() and not recent_folder.exists() and not stray.exists()
    # Within the grace period nothing is removed, whatever the cap: a model may be loading from it.
    snapshot(hub, recent)
    report = cli(served, "storage", "snapshots", "--apply", AICOMMONS_SNAPSHOT_MAX_BYTES="1")
    assert report["snapshots_removed"] == [] and recent_folder.exists()


def test_uploads_never_committed_expire_and_are_then_collected(served, hub):
    api = HfApi(endpoint=served.url, token=ALICE_TOKEN)
    repo = api.create_repo(f"alice/{unique_name()}").repo_id
    committed = os.urandom(7000)
    api.upload_file(path_or_fileobj=committed, path_in_repo="kept.bin", repo_id=repo)
    orphan = upload_only(served, repo, os.urandom(8000))
    row = hub.repo_store.get("model", repo)
    assert hub.repo_store.repo_lfs_size(row.id, orphan) == 8000
    report = cli(served, "storage", "expire-uploads", "--hours", "1")  # too young
    assert report["expired_uploads"] == 0
    report = cli(served, "storage", "expire-uploads", "--hours", "0")  # dry run
    assert report["expired_uploads"] == 1 and report["expired_bytes"] == 8000
    assert hub.repo_store.repo_lfs_size(row.id, orphan) == 8000
    report = cli(served, "storage", "expire-uploads", "--hours", "0", "--apply")
    assert report["expired_uploads"] == 1
    assert hub.repo_store.repo_lfs_size(row.id, orphan) is None
    gc = cli(served, "gc", "--apply", "--grace-hours", "0")
    assert blob_key(orphan) in gc["deleted"] and gc["errors"] == []
    got = httpx.get(f"{served.url}/{repo}/resolve/main/kept.bin", headers=auth(ALICE_TOKEN), follow_redirects=True)
    assert got.content == committed


def test_an_upload_committed_during_the_expiry_is_kept(served, hub):
    """The expiry lists the uncommitted uploads, then deletes each only if still uncommitted: a
    commit landing in between keeps its object."""
    api = HfApi(endpoint=served.url, token=ALICE_TOKEN)
    repo = api.create_repo(f"alice/{unique_name()}").repo_id
    data = os.urandom(9000)
    oid = upload_only(served, repo, data)
    listed = hub.lifecycle.store.uncommitted_before

    def list_then_commit(cutoff):
        found = listed(cutoff)
        api.create_commit(repo, [CommitOperationAdd("late.bin", data)], commit_message="commit it now")
        return found

    hub.lifecycle.store.uncommitted_before = list_then_commit
    report = LifecycleReport(apply=True)
    hub.lifecycle.expire_uploads(report, hours=0)
    assert report.expired_uploads == 0
    assert hub.repo_store.repo_lfs_size(hub.repo_store.get("model", repo).id, oid) == 9000
    got = httpx.get(f"{served.url}/{repo}/resolve/main/late.bin", headers=auth(ALICE_TOKEN), follow_redirects=True)
    assert got.content == data


def test_git_maintenance_packs_repositories_and_loses_nothing(served, hub):
    api = HfApi(endpoint=served.url, token=ALICE_TOKEN)
    repo = api.create_repo(f"alice/{unique_name()}").repo_id
    for i in range(5):
        api.upload_file(path_or_fileobj=f"version {i}\n".encode(), path_in_repo="notes.txt", repo_id=repo)
    path = hub.git.path(hub.repo_store.get("model", repo).storage_key)

    def loose() -> int:
        out = subprocess.run(["git", "--git-dir", str(path), "count-objects", "-v"], capture_output=True, text=True)
        return int(dict(line.split(": ") for line in out.stdout.splitlines())["count"])

    assert loose() > 0
    report = cli(served, "storage", "git-maintenance")
    assert report["git_repos_maintained"] >= 1 and report["errors"] == []
    assert loose() == 0
    assert [c.title for c in api.list_repo_commits(repo)][0] == "Upload notes.txt with huggingface_hub"
    got = httpx.get(f"{served.url}/{repo}/resolve/main/notes.txt", headers=auth(ALICE_TOKEN))
    assert got.text == "version 4\n"
    assert cli(served, "storage", "git-maintenance")["git_repos_maintained"] == 0  # nothing moved since


def test_idle_rate_limit_rows_are_pruned(served, hub):
    limits = SharedRateLimitStore(hub.engine)
    now = time.time()
    old = limits.admit("lifecycle:idle", 1, 60, 5, now - 3600, lease_ttl=30)
    fresh = limits.admit("lifecycle:busy", 50, 60, 5, now, lease_ttl=300)
    assert old.lease and fresh.lease
    report = cli(served, "storage", "prune-limits")
    assert report["rate_buckets_pruned"] >= 1 and report["leases_pruned"] >= 1
    # The busy caller's bucket and lease are still there: its next admission sees both.
    again = limits.admit("lifecycle:busy", 30, 60, 5, now + 1, lease_ttl=300)  # 11 tokens left, not 60
    assert again.lease is None and again.refused_for == "tokens"


def test_download_copies_of_objects_gone_are_swept(served, hub):
    """`aicommons storage download-copies`: a whole download copy of an object no longer stored is
    removed, and a copy being written stays (crash leftovers: tests/unit/test_download_cache.py)."""
    root = hub.download_cache.root
    gone = hashlib.sha256(b"an object GC has collected").hexdigest()
    copy = hub.download_cache.path(gone)
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.write_bytes(b"an object GC has collected")
    (root / ".tmp").mkdir(parents=True, exist_ok=True)
    writing = root / ".tmp" / f"{gone}.2.2"
    writing.write_bytes(b"half")
    report = cli(served, "storage", "download-copies")
    assert report["cached_copies_removed"] == 1
    assert not copy.exists() and writing.exists()
    writing.unlink()
