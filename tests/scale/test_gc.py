"""Blob GC on both deployments: mark-and-sweep, grace period, dry run, and no loss under uploads."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from datetime import timedelta
from pathlib import Path

from huggingface_hub import HfApi, hf_hub_download

from aicommons.db.gc import BlobGcStore
from aicommons.hub.fsck import fsck
from aicommons.hub.gc import collect_garbage
from aicommons.storage.keys import blob_key
from aicommons.times import utcnow
from tests.conftest import ALICE_TOKEN, unique_name
from tests.scale.conftest import in_process_hub


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def gc_cli(served, *args) -> dict:
    proc = served.cli("gc", "--json", *args)
    return json.loads(proc.stdout)


def test_mark_and_sweep_with_grace_and_dry_run(served, tmp_path):
    api = HfApi(endpoint=served.url, token=ALICE_TOKEN)
    repo = api.create_repo(f"alice/{unique_name()}").repo_id
    doomed = api.create_repo(f"alice/{unique_name()}").repo_id
    kept, in_history, uploaded_only, garbage = (os.urandom(20_000) for _ in range(4))
    api.upload_file(path_or_fileobj=kept, path_in_repo="kept.bin", repo_id=repo)
    old_rev = api.upload_file(path_or_fileobj=in_history, path_in_repo="old.bin", repo_id=repo).oid
    api.delete_file("old.bin", repo_id=repo)
    from huggingface_hub import CommitOperationAdd

    api.preupload_lfs_files(repo, [CommitOperationAdd("pending.bin", uploaded_only)])
    api.upload_file(path_or_fileobj=garbage, path_in_repo="g.bin", repo_id=doomed)
    api.delete_repo(doomed)
    hub = in_process_hub(served.env)
    try:
        assert hub.blobs.exists(blob_key(sha(garbage)))
        # Dry run (the default): lists, deletes nothing.
        report = gc_cli(served, "--grace-hours", "0")
        assert report["deleted"] == [blob_key(sha(garbage))] and not report["apply"]
        assert hub.blobs.exists(blob_key(sha(garbage)))
        # The grace period keeps young garbage.
        report = gc_cli(served, "--apply", "--grace-hours", "1")
        assert report["deleted"] == [] and report["kept_young"] == 1
        report = gc_cli(served, "--apply", "--grace-hours", "0")
        assert report["deleted"] == [blob_key(sha(garbage))]
        assert not hub.blobs.exists(blob_key(sha(garbage)))
        assert hub.repo_store.lfs_object_size(sha(garbage)) is None
        for data in (kept, in_history, uploaded_only):
            assert hub.blobs.exists(blob_key(data and sha(data)))
        assert Path(hf_hub_download(repo, "kept.bin", cache_dir=tmp_path, endpoint=served.url)).read_bytes() == kept
        assert Path(hf_hub_download(repo, "old.bin", revision=old_rev, cache_dir=tmp_path,
                                    endpoint=served.url)).read_bytes() == in_history
        assert fsck(hub).errors == []
    finally:
        hub.close()


def test_the_lease_serialises_an_upload_with_the_sweep_of_its_blob(backend_env, tmp_path):
    """While GC holds a key's lease (deleting its blob), an uploader's lease waits; a fresh lease
    keeps the blob. This is what makes a re-upload of swept content safe."""
    env = {"AICOMMONS_DATA_DIR": str(tmp_path / "data"), **backend_env}
    hub = in_process_hub(env)
    store = BlobGcStore(hub.engine)
    try:
        key = "lfs/ab/cd/" + "ab" * 32
        store.touch_lease(key, utcnow())
        assert not store.delete_if_unreferenced(key, "ab" * 32, utcnow() - timedelta(hours=1), lambda: None)
        waited = {}

        def uploader():
            start = time.monotonic()
            store.touch_lease(key, utcnow())
            waited["s"] = time.monotonic() - start

        def delete_blob():
            thread.start()
            time.sleep(0.5)
            assert "s" not in waited  # the uploader is held back while the blob is deleted

        thread = threading.Thread(target=uploader)
        assert store.delete_if_unreferenced(key, "ab" * 32, utcnow() + timedelta(seconds=1), delete_blob)
        thread.join(30)
        assert waited["s"] >= 0.4
        # The uploader's lease, taken after the sweep, now protects its (re-written) blob.
        assert not store.delete_if_unreferenced(key, "ab" * 32, utcnow() - timedelta(hours=1), lambda: None)
    finally:
        hub.close()


def test_uploads_during_sweeps_lose_nothing(served, tmp_path):
    """Old orphans (content of a deleted repo) are re-uploaded while GC sweeps in a loop with a
    5-second grace: every committed file must stay downloadable and fsck must stay clean."""
    grace_hours = 5 / 3600
    api = HfApi(endpoint=served.url, token=ALICE_TOKEN)
    scratch = api.create_repo(f"alice/{unique_name()}").repo_id
    orphans = [os.urandom(30_000 + i) for i in range(6)]
    from huggingface_hub import CommitOperationAdd

    api.create_commit(scratch, [CommitOperationAdd(f"o{i}.bin", d) for i, d in enumerate(orphans)], commit_message="o")
    api.delete_repo(scratch)
    time.sleep(6)  # the orphans are now older than the grace period
    hub = in_process_hub(served.env)
    gc_store = BlobGcStore(hub.engine)
    stop = threading.Event()
    sweeps, deleted = [], []

    def sweeper():
        while not stop.is_set():
            report = collect_garbage(gc_store, hub.git, hub.blobs, grace_hours=grace_hours, apply=True)
            sweeps.append(report)
            deleted.extend(report.deleted)

    live = api.create_repo(f"alice/{unique_name()}").repo_id
    expected = {}
    thread = threading.Thread(target=sweeper)
    thread.start()
    try:
        for i, data in enumerate(orphans[:4] + [os.urandom(25_000) for _ in range(4)]):
            api.upload_file(path_or_fileobj=data, path_in_repo=f"f{i}.bin", repo_id=live)
            expected[f"f{i}.bin"] = data
    finally:
        stop.set()
        thread.join(120)
    try:
        assert len(sweeps) >= 2
        # Orphans nobody re-uploaded are collected once old enough.
        time.sleep(6)
        collect_garbage(gc_store, hub.git, hub.blobs, grace_hours=grace_hours, apply=True)
        for data in orphans[4:]:
            assert not hub.blobs.exists(blob_key(sha(data)))
        for path, data in expected.items():
            got = Path(hf_hub_download(live, path, cache_dir=tmp_path, endpoint=served.url)).read_bytes()
            assert got == data, path
        assert fsck(hub).errors == []
    finally:
        hub.close()


def test_gc_queued_as_a_job_runs_in_the_servers_worker(served):
    """The job queue crosses processes: enqueued here, executed by the worker inside ``serve``."""
    from aicommons.hub.jobs import Jobs

    api = HfApi(endpoint=served.url, token=ALICE_TOKEN)
    doomed = api.create_repo(f"alice/{unique_name()}").repo_id
    garbage = os.urandom(10_000)
    api.upload_file(path_or_fileobj=garbage, path_in_repo="g.bin", repo_id=doomed)
    api.delete_repo(doomed)
    hub = in_process_hub(served.env)
    try:
        Jobs(hub).blob_gc(True, 0)
        deadline = time.time() + 30
        while hub.blobs.exists(blob_key(sha(garbage))) and time.time() < deadline:
            time.sleep(0.2)
        assert not hub.blobs.exists(blob_key(sha(garbage)))
    finally:
        hub.close()
