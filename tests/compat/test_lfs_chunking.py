"""LFS uploads chunked by the hub (issue 11): after an LFS upload verifies, a background job chunks
it with the stock Xet client against the hub's own CAS; the object then dedups later revisions,
is offered to Xet clients, and GC drops its whole-file copy.

The measurement: a 4 KiB change to a 64 MiB file uploaded through LFS grows storage by less than
8 MiB once both revisions are chunked and GC has run.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from tests.compat.test_chunk_store import hub_blobs, stored_bytes
from tests.conftest import ALICE_TOKEN, auth, start_hub, stop_hub

pytest.importorskip("hf_xet")
MiB = 1024 * 1024


@pytest.fixture
def hub_here(live_hub, monkeypatch):
    """An in-process Hub on the live hub's database and blobs (its jobs talk to the live server)."""
    from tests.scale.conftest import in_process_hub

    for name, value in live_hub.env.items():
        if name.startswith("AWS_") or name in ("AICOMMONS_PORT", "AICOMMONS_HOST", "AICOMMONS_SECRET_KEY"):
            monkeypatch.setenv(name, value)
    hub = in_process_hub(live_hub.env)
    yield hub
    hub.close()


def _xet_hash(http, repo_id, path) -> str | None:
    entry = http.post(f"/api/models/{repo_id}/paths-info/main", headers=auth(ALICE_TOKEN),
                      json={"paths": [path]}).json()[0]
    return entry.get("xetHash")


def _chunk(hub, repo_id: str, oid: str) -> None:
    from aicommons.hub.chunking import chunk_lfs_object

    row = next(r for r in _repos(hub) if r.full_id == repo_id)
    assert chunk_lfs_object(hub, row.id, oid)


def _repos(hub):
    from sqlalchemy import select

    from aicommons.db.tables import repos

    with hub.engine.connect() as conn:
        return conn.execute(select(repos.c.id, repos.c.full_id)).all()


@pytest.mark.lfs_path  # (its Xet twin: test_global_dedup.py)
def test_a_4k_change_through_lfs_stores_less_than_8_mib_after_chunking(live_hub, hub_here, api, repo_id, http,
                                                                        tmp_path, monkeypatch):
    blobs = hub_blobs(live_hub, tmp_path, monkeypatch)
    first = os.urandom(64 * MiB)
    second = bytearray(first)
    second[20 * MiB:20 * MiB + 4096] = os.urandom(4096)
    second = bytes(second)
    oids = [hashlib.sha256(x).hexdigest() for x in (first, second)]

    v1 = api.upload_file(path_or_fileobj=first, path_in_repo="model.bin", repo_id=repo_id).oid  # LFS (Xet is off)
    assert _xet_hash(http, repo_id, "model.bin") is None
    _chunk(hub_here, repo_id, oids[0])
    assert _xet_hash(http, repo_id, "model.bin")  # now a Xet file too: Xet clients can download it
    live_hub.cli("gc", "--apply", "--grace-hours", "0")
    assert not blobs.exists(f"lfs/{oids[0][:2]}/{oids[0][2:4]}/{oids[0]}")  # the chunks hold it now
    settled = stored_bytes(blobs)

    api.upload_file(path_or_fileobj=second, path_in_repo="model.bin", repo_id=repo_id)
    _chunk(hub_here, repo_id, oids[1])
    live_hub.cli("gc", "--apply", "--grace-hours", "0")
    grown = stored_bytes(blobs) - settled
    print(f"second LFS revision grew storage by {grown} bytes after chunking and GC")
    assert grown < 8 * MiB, grown
    for rev, oid in (("main", oids[1]), (v1, oids[0])):  # both revisions, read from the chunks
        got = http.get(f"/{repo_id}/resolve/{rev}/model.bin", headers=auth(ALICE_TOKEN))
        assert got.status_code == 200 and hashlib.sha256(got.content).hexdigest() == oid


@pytest.mark.lfs_path  # (Xet uploads need no chunking job)
def test_lfs_uploads_are_queued_for_chunking_when_enabled(tmp_path):
    """With ``AICOMMONS_CHUNK_LFS_UPLOADS`` on (the default outside tests), the LFS upload itself
    queues the job and the server's job worker chunks the object. The job's xorb and shard uploads
    are in the audit log as the hub's own ("system:chunking"), not as an anonymous caller's."""
    from huggingface_hub import HfApi

    data = tmp_path / "data"
    data.mkdir()
    env = {**os.environ, "AICOMMONS_DATA_DIR": str(data)}
    token = "hf_chunk_tester_token_000000000"
    for args in (["user", "create", "carol"], ["token", "create", "carol", "--value", token]):
        subprocess.run([sys.executable, "-m", "aicommons.cli.main", *args], env=env, check=True, capture_output=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    hub = start_hub(data, port, AICOMMONS_CHUNK_LFS_UPLOADS="true")
    try:
        api = HfApi(endpoint=hub.url, token=token)
        repo = api.create_repo("carol/chunked").repo_id
        content = os.urandom(3 * MiB)
        api.upload_file(path_or_fileobj=content, path_in_repo="w.bin", repo_id=repo)
        deadline = time.time() + 120
        entry = {}
        while time.time() < deadline:
            entry = httpx.post(f"{hub.url}/api/models/{repo}/paths-info/main", json={"paths": ["w.bin"]},
                               headers=auth(token)).json()[0]
            if entry.get("xetHash"):
                break
            time.sleep(1)
        assert entry.get("xetHash"), "the LFS upload was never chunked"
        got = httpx.get(f"{hub.url}/{repo}/resolve/main/w.bin", headers=auth(token))
        assert got.content == content and got.headers["x-xet-hash"] == entry["xetHash"]
        events = [line.split("\t") for line in hub.cli("audit", "--target", "/xet-cas/").stdout.splitlines()]
        writes = [e for e in events if e[3].startswith("POST ")]
        assert any("/v1/shards -> 200" in e[3] for e in writes), events
        assert {e[1] for e in writes} == {"system:chunking"}, events
    finally:
        stop_hub(hub)
