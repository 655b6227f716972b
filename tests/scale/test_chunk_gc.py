"""GC of the chunk store (issue 11) on both deployments: a deleted repo's unique xorbs are reclaimed
and shared ones kept, an upload during a sweep loses nothing, and a hub from before issue 11 (a
whole-file copy next to the xorbs) upgrades in place: readable, then deduplicated by GC."""

from __future__ import annotations

import hashlib
import json
import os

import httpx
import pytest
from huggingface_hub import HfApi

from aicommons.db.gc import BlobGcStore
from aicommons.hub.fsck import fsck
from aicommons.hub.gc import collect_garbage
from aicommons.storage.keys import blob_key
from aicommons.xet.keys import XORB_PREFIX
from tests.conftest import ALICE_TOKEN, auth, unique_name
from tests.scale.conftest import in_process_hub

pytest.importorskip("hf_xet")
MiB = 1024 * 1024


@pytest.fixture
def xet_on(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", False)


def xorbs(hub) -> set[str]:
    return {info.key for info in hub.blobs.list_blobs(XORB_PREFIX)}


def gc_cli(served, *args) -> dict:
    return json.loads(served.cli("gc", "--json", *args).stdout)


def resolve(served, repo, path) -> bytes:
    got = httpx.get(f"{served.url}/{repo}/resolve/main/{path}", headers=auth(ALICE_TOKEN), timeout=60,
                    follow_redirects=True)  # object storage redirects whole-file blobs to the bucket
    assert got.status_code == 200, got.text
    return got.content


def test_a_deleted_repos_unique_chunks_are_reclaimed_and_shared_ones_kept(served, xet_on):
    api = HfApi(endpoint=served.url, token=ALICE_TOKEN)
    kept = api.create_repo(f"alice/{unique_name()}").repo_id
    doomed = api.create_repo(f"alice/{unique_name()}").repo_id
    base = os.urandom(3 * MiB)
    hub = in_process_hub(served.env)
    try:
        api.upload_file(path_or_fileobj=base, path_in_repo="base.bin", repo_id=kept)
        shared = xorbs(hub)
        # The doomed repo's file reuses the kept file's chunks and adds its own xorb.
        api.upload_file(path_or_fileobj=base + os.urandom(MiB), path_in_repo="more.bin", repo_id=doomed)
        unique = xorbs(hub) - shared
        assert unique
        api.delete_repo(doomed)
        report = gc_cli(served, "--grace-hours", "0")  # dry run: lists, deletes nothing
        assert set(unique) <= set(report["deleted"]) and not shared & set(report["deleted"])
        assert xorbs(hub) >= unique
        report = gc_cli(served, "--apply", "--grace-hours", "0")
        assert set(unique) <= set(report["deleted"]), report
        assert xorbs(hub) == shared
        assert resolve(served, kept, "base.bin") == base
        assert fsck(hub).errors == []
        # The young are kept: a fresh upload's xorbs survive a run with a grace period.
        young = api.create_repo(f"alice/{unique_name()}").repo_id
        api.upload_file(path_or_fileobj=os.urandom(MiB), path_in_repo="young.bin", repo_id=young)
        api.delete_repo(young)
        report = gc_cli(served, "--apply", "--grace-hours", "1")
        assert report["kept_young"] >= 1 and report["deleted"] == []
    finally:
        hub.close()


class UploadMidSweep(BlobGcStore):
    """Runs ``upload`` just before GC deletes its first chunk-store object: after the mark, before
    the sweep, the worst moment for an upload that reuses chunks GC found unreferenced."""

    def __init__(self, engine, upload):
        super().__init__(engine)
        self.upload, self.done = upload, False

    def delete_if_unreferenced(self, key, oid, cutoff, delete_blob):
        if not self.done and key.startswith("xet/"):
            self.done = True
            self.upload()
        return super().delete_if_unreferenced(key, oid, cutoff, delete_blob)


def test_an_upload_during_a_sweep_loses_nothing(served, xet_on):
    api = HfApi(endpoint=served.url, token=ALICE_TOKEN)
    gone = api.create_repo(f"alice/{unique_name()}").repo_id
    again = api.create_repo(f"alice/{unique_name()}").repo_id
    content = os.urandom(2 * MiB + 99)
    api.upload_file(path_or_fileobj=content, path_in_repo="w.bin", repo_id=gone)
    api.delete_repo(gone)  # its xorbs are garbage now...
    hub = in_process_hub(served.env)
    try:
        # ... until the same bytes are uploaded again while GC sweeps: the client reuses the xorbs.
        store = UploadMidSweep(hub.engine, lambda: api.upload_file(path_or_fileobj=content, path_in_repo="w.bin",
                                                                   repo_id=again))
        report = collect_garbage(store, hub.git, hub.blobs, grace_hours=0, apply=True, xet=hub.xet)
        assert store.done and report.kept_young >= 1
        assert resolve(served, again, "w.bin") == content
        assert fsck(hub).errors == []
    finally:
        hub.close()


def test_a_hub_from_before_the_chunk_store_upgrades_in_place(served, xet_on, tmp_path):
    """Before issue 11 every Xet upload also left a whole-file LFS object. Such a hub keeps serving
    it; GC re-hashes the chunks, then drops the redundant copy; the file reads the same after."""
    api = HfApi(endpoint=served.url, token=ALICE_TOKEN)
    repo = api.create_repo(f"alice/{unique_name()}").repo_id
    content = os.urandom(3 * MiB + 1)
    oid = hashlib.sha256(content).hexdigest()
    api.upload_file(path_or_fileobj=content, path_in_repo="old.bin", repo_id=repo)
    hub = in_process_hub(served.env)
    try:
        copy = tmp_path / "copy"
        copy.write_bytes(content)
        hub.blobs.put_file(blob_key(oid), copy)  # what today's main stored next to the xorbs
        BlobGcStore(hub.engine).expire_leases(hub_now_plus_a_minute())
        assert resolve(served, repo, "old.bin") == content
        report = gc_cli(served, "--grace-hours", "0")
        assert report["redundant"] == [blob_key(oid)] and hub.blobs.exists(blob_key(oid))
        report = gc_cli(served, "--apply", "--grace-hours", "0")
        assert report["redundant"] == [blob_key(oid)] and report["errors"] == []
        assert not hub.blobs.exists(blob_key(oid))
        assert resolve(served, repo, "old.bin") == content
        assert fsck(hub).errors == []
    finally:
        hub.close()


def hub_now_plus_a_minute():
    from datetime import timedelta

    from aicommons.times import utcnow

    return utcnow() + timedelta(minutes=1)


def test_chunks_only_a_pull_request_uses_are_kept(served, xet_on):
    """GC marks from every ref: a file that lives only on a PR ref keeps its xorbs."""
    from huggingface_hub import hf_hub_download

    api = HfApi(endpoint=served.url, token=ALICE_TOKEN)
    repo = api.create_repo(f"alice/{unique_name()}").repo_id
    api.upload_file(path_or_fileobj=b"notes\n", path_in_repo="notes.txt", repo_id=repo)
    content = os.urandom(MiB + 3)
    pr = api.upload_file(path_or_fileobj=content, path_in_repo="pr.bin", repo_id=repo, create_pr=True)
    report = gc_cli(served, "--apply", "--grace-hours", "0")
    assert report["errors"] == []
    path = hf_hub_download(repo, "pr.bin", revision=pr.pr_revision, endpoint=served.url, token=ALICE_TOKEN,
                           cache_dir=os.path.join(served.data_dir, "dl-cache"))
    with open(path, "rb") as f:
        assert f.read() == content
