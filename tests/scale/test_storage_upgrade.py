"""Upgrade in place (issue 11), on both deployments: a hub whose LFS objects are stored whole, with no
chunk index (every hub before the chunk store, or one run with AICOMMONS_CHUNK_LFS_UPLOADS=false),
restarted with chunking on: its files stay readable, ``aicommons storage chunk-existing`` chunks
them, GC drops the whole-file copies once their chunks re-hash to them, and a second revision of a
file then costs only what changed."""

from __future__ import annotations

import hashlib
import json
import os
import time

import httpx
import pytest
from huggingface_hub import HfApi

from aicommons.storage.keys import blob_key
from tests.conftest import ALICE_TOKEN, auth, server_env, start_hub, stop_hub, unique_name
from tests.scale.conftest import free_port, in_process_hub, seed

pytest.importorskip("hf_xet")
MiB = 1024 * 1024


def read(hub, repo: str, revision: str) -> bytes:
    got = httpx.get(f"{hub.url}/{repo}/resolve/{revision}/w.bin", headers=auth(ALICE_TOKEN), timeout=60,
                    follow_redirects=True)
    assert got.status_code == 200, got.text
    return got.content


def test_whole_file_lfs_objects_upgrade_in_place_and_deduplicate(backend_env, tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    port = free_port()
    seed(server_env(data_dir, port, **backend_env))
    old = start_hub(data_dir, port, **backend_env)  # chunking off (tests/conftest.py): objects stay whole
    try:
        api = HfApi(endpoint=old.url, token=ALICE_TOKEN)
        repo = api.create_repo(f"alice/{unique_name()}").repo_id
        v1 = os.urandom(3 * MiB)
        v2 = v1[:MiB] + os.urandom(4096) + v1[MiB + 4096:]  # a 4 KiB edit
        first = api.upload_file(path_or_fileobj=v1, path_in_repo="w.bin", repo_id=repo).oid
        api.upload_file(path_or_fileobj=v2, path_in_repo="w.bin", repo_id=repo)
    finally:
        stop_hub(old)
    new = start_hub(data_dir, port, **backend_env, AICOMMONS_CHUNK_LFS_UPLOADS="true")
    hub = in_process_hub(new.env)
    try:
        oids = [hashlib.sha256(v).hexdigest() for v in (v1, v2)]
        assert all(hub.xet.reads.file_for_oid(oid) is None for oid in oids)  # no chunk index at all
        assert read(new, repo, "main") == v2 and read(new, repo, first) == v1  # readable as they are
        out = new.cli("storage", "chunk-existing").stdout
        assert "queued the chunking of 2 LFS objects" in out
        deadline = time.time() + 120
        while any(hub.xet.reads.file_for_oid(oid) is None for oid in oids):
            assert time.time() < deadline, "the chunking jobs did not run"
            time.sleep(0.5)
        report = json.loads(new.cli("gc", "--apply", "--grace-hours", "0", "--json").stdout)
        assert sorted(report["redundant"]) == sorted(blob_key(oid) for oid in oids) and report["errors"] == []
        assert not any(hub.blobs.exists(blob_key(oid)) for oid in oids)
        assert read(new, repo, "main") == v2 and read(new, repo, first) == v1  # from the chunks now
        assert "queued the chunking of 0" in new.cli("storage", "chunk-existing").stdout
        usage = json.loads(new.cli("storage", "report", "--refresh", "--json").stdout)["repos"][0]
        assert usage["lfs_bytes"] == 6 * MiB
        # Both revisions in the chunk store: the first whole, the second only what changed.
        assert usage["physical_bytes"] - usage["git_bytes"] < 3.3 * MiB
    finally:
        hub.close()
        stop_hub(new)
