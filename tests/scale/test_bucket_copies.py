"""Whole copies of chunk-stored files in the bucket (hub/bucket_copies.py, issue 11): on object
storage a Xet-uploaded file downloaded over plain HTTP is first sent by the hub, then, once its
checked copy is in the bucket, answered with a presigned 302 exactly like a whole-file LFS object;
bounded (least recently served evicted, deleted only after its URLs expired), never a way around
access rules, and never keeping deleted bytes. On SQLite + local disk nothing changes."""

from __future__ import annotations

import hashlib
import os
from datetime import timedelta

import httpx
import pytest
from huggingface_hub import HfApi, hf_hub_download

from tests.backends import free_port
from tests.compat.test_download_cache import _wait_for
from tests.conftest import ALICE_TOKEN, BOB_TOKEN, auth, server_env, start_hub, stop_hub, unique_name
from tests.scale.conftest import in_process_hub, seed

pytest.importorskip("hf_xet")
MiB = 1024 * 1024
BOUND = 7 * MiB  # room for two of the 3 MiB files below, not three


@pytest.fixture
def copies_hub(backend_env, tmp_path):
    """A live hub keeping at most BOUND bytes of copies in the bucket, and an in-process hub on the
    same database and blobs (to look at the rows and run the lifecycle)."""
    env = {**backend_env, "AICOMMONS_DOWNLOAD_CACHE_BUCKET_BYTES": str(BOUND)}
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    port = free_port()
    seed(server_env(data_dir, port, **env))
    hub = start_hub(data_dir, port, **env)
    local = in_process_hub(hub.env)
    yield hub, local, "AICOMMONS_STORAGE_URL" in backend_env
    local.close()
    stop_hub(hub)


def _upload_xet(monkeypatch, api: HfApi, repo: str, path: str, content: bytes) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", False)
    api.upload_file(path_or_fileobj=content, path_in_repo=path, repo_id=repo)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)  # plain HTTP from here on
    assert api.get_paths_info(repo, [path])[0].xet_hash, "not stored as Xet chunks"


def _resolve(http: httpx.Client, repo: str, path: str, method: str = "GET", token: str | None = ALICE_TOKEN,
             **headers: str) -> httpx.Response:
    return http.request(method, f"/{repo}/resolve/main/{path}", headers={**(auth(token) if token else {}), **headers})


def _copied(http: httpx.Client, repo: str, path: str) -> bool:
    """Whether the file is redirected now (HEAD: it makes no copy)."""
    return _resolve(http, repo, path, "HEAD").status_code == 302


def _bucket_keys(local, oid: str) -> list[str]:
    return [info.key for info in local.blobs.inner.list_blobs("download-cache/") if f"/{oid}/" in f"/{info.key}"]


@pytest.mark.parametrize("backend_env", ["postgres-s3"], indirect=True)  # sqlite-local: the next test
def test_plain_downloads_are_redirected_to_a_checked_copy_in_the_bucket(copies_hub, monkeypatch, tmp_path):
    served, local, on_bucket = copies_hub
    assert on_bucket
    api = HfApi(endpoint=served.url, token=ALICE_TOKEN)
    repo = api.create_repo(f"alice/{unique_name()}").repo_id
    content = os.urandom(3 * MiB + 1234)
    oid = hashlib.sha256(content).hexdigest()
    _upload_xet(monkeypatch, api, repo, "weights.bin", content)
    api.upload_file(path_or_fileobj=os.urandom(2 * MiB), path_in_repo="whole.bin", repo_id=repo)  # an LFS blob
    with httpx.Client(base_url=served.url, timeout=30) as http:
        first = _resolve(http, repo, "weights.bin")
        assert first.status_code == 200 and first.content == content  # sent by the hub, copy queued
        assert _wait_for(lambda: _copied(http, repo, "weights.bin"), 30), "no copy was made in the bucket"
        assert local.bucket_copies.store.get(oid).ready and len(_bucket_keys(local, oid)) == 1

        # The same answer as a whole-file LFS object's: a presigned 302 with the same headers.
        redirect = _resolve(http, repo, "weights.bin")
        blob = _resolve(http, repo, "whole.bin")
        assert redirect.status_code == blob.status_code == 302
        location = redirect.headers["location"]
        assert not location.startswith(served.url) and "X-Amz-Signature" in location
        assert set(redirect.headers) - {"x-xet-hash", "link"} == set(blob.headers)
        assert redirect.headers["cache-control"] == "no-store"
        assert redirect.headers["x-linked-size"] == str(len(content))
        assert redirect.headers["x-linked-etag"] == f'"{oid}"'
        assert "weights.bin" in httpx.URL(location).params["response-content-disposition"]
        assert httpx.get(location).content == content
        # Range and HEAD as for whole-file blobs: through the redirect.
        part = _resolve(http, repo, "weights.bin", Range="bytes=1000000-2000999")
        assert part.status_code == 302
        ranged = httpx.get(part.headers["location"], headers={"Range": "bytes=1000000-2000999"})
        assert ranged.status_code == 206 and ranged.content == content[1000000:2001000]
        followed = http.get(f"/{repo}/resolve/main/weights.bin", follow_redirects=True,
                            headers={**auth(ALICE_TOKEN), "Range": "bytes=-5000"})
        assert followed.status_code == 206 and followed.content == content[-5000:]
        # The stock client without Xet, and the LFS download link (git-lfs), end in the bucket too.
        path = hf_hub_download(repo, "weights.bin", endpoint=served.url, token=ALICE_TOKEN, cache_dir=tmp_path / "c")
        with open(path, "rb") as f:
            assert f.read() == content
        batch = http.post(f"/{repo}.git/info/lfs/objects/batch", headers={**auth(ALICE_TOKEN),
                                                                          "Accept": "application/vnd.git-lfs+json"},
                          json={"operation": "download", "objects": [{"oid": oid, "size": len(content)}]})
        href = batch.json()["objects"][0]["actions"]["download"]["href"]
        link = http.get(href)
        assert link.status_code == 302 and link.headers["cache-control"] == "private, no-store"
        assert httpx.get(link.headers["location"]).content == content

        # Private: the owner's redirect may be kept by no cache; others get no redirect at all.
        api.update_repo_settings(repo, private=True)
        mine = _resolve(http, repo, "weights.bin")
        assert mine.status_code == 302 and mine.headers["cache-control"] == "private, no-store"
        for token in (None, BOB_TOKEN):
            refused = _resolve(http, repo, "weights.bin", token=token)
            assert refused.status_code in (401, 404) and "location" not in refused.headers

        # A permanently deleted LFS file: no redirect, and its copy is gone from the bucket at once.
        other = os.urandom(2 * MiB + 99)
        other_oid = hashlib.sha256(other).hexdigest()
        _upload_xet(monkeypatch, api, repo, "other.bin", other)
        assert _resolve(http, repo, "other.bin").content == other
        assert _wait_for(lambda: _copied(http, repo, "other.bin"))
        other_url = _resolve(http, repo, "other.bin").headers["location"]
        api.permanently_delete_lfs_files(repo, [f for f in api.list_lfs_files(repo) if f.file_oid == other_oid])
        assert local.bucket_copies.store.get(other_oid) is None and _bucket_keys(local, other_oid) == []
        assert httpx.get(other_url).status_code in (403, 404)  # a URL already handed out ends too

        # Deleting the repo ends the redirects and removes the bucket object.
        api.delete_repo(repo)
        assert local.bucket_copies.store.get(oid) is None and _bucket_keys(local, oid) == []
        assert httpx.get(location).status_code in (403, 404)
        assert _resolve(http, repo, "weights.bin").status_code == 404
    # A copy whose file is deleted before its upload is recorded is never served, and its uploader
    # removes it (here the in-process hub uploads a checked copy of the deleted file).
    kept = tmp_path / "kept-copy"
    kept.write_bytes(content)
    local.bucket_copies.offer(oid, len(content), kept)
    local.bucket_copies.close()  # waits for the upload
    assert local.bucket_copies.store.get(oid) is None and _bucket_keys(local, oid) == []
    assert local.bucket_copies.store.totals() == (0, 0, 0)


def test_copies_are_bounded_least_recently_served_first_and_deleted_after_their_urls_expire(copies_hub,
                                                                                            monkeypatch):
    served, local, on_bucket = copies_hub
    api = HfApi(endpoint=served.url, token=ALICE_TOKEN)
    repo = api.create_repo(f"alice/{unique_name()}").repo_id
    files = {name: os.urandom(3 * MiB + n) for n, name in enumerate(("a.bin", "b.bin", "c.bin"))}
    oids = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    for name, data in files.items():
        _upload_xet(monkeypatch, api, repo, name, data)
    with httpx.Client(base_url=served.url, timeout=30) as http:
        if not on_bucket:  # SQLite + local disk: served from the local copy as before, nothing recorded
            assert _resolve(http, repo, "a.bin").content == files["a.bin"]
            copy = served.data_dir / "download-cache" / oids["a.bin"][:2] / oids["a.bin"]
            assert _wait_for(copy.exists)
            again = _resolve(http, repo, "a.bin")
            assert again.status_code == 200 and again.content == files["a.bin"]
            assert not local.bucket_copies.enabled and local.bucket_copies.store.copies() == []
            return
        urls = {}
        for name in ("a.bin", "b.bin"):
            assert _resolve(http, repo, name).content == files[name]
            assert _wait_for(lambda name=name: _copied(http, repo, name)), name
            urls[name] = _resolve(http, repo, name).headers["location"]
        # Served again within a few minutes: no write per download.
        served_at = local.bucket_copies.store.get(oids["a.bin"]).last_served_at
        for _ in range(3):
            assert _resolve(http, repo, "a.bin").status_code == 302
        assert local.bucket_copies.store.get(oids["a.bin"]).last_served_at == served_at
        # b.bin was served long ago (as if), a.bin lately: a third copy evicts b.bin, not the older a.bin.
        store = local.bucket_copies.store
        store.touch(oids["b.bin"], served_at - timedelta(hours=1), served_at + timedelta(days=1))
        store.touch(oids["a.bin"], served_at + timedelta(seconds=1), served_at + timedelta(days=1))
        assert _resolve(http, repo, "c.bin").content == files["c.bin"]
        assert _wait_for(lambda: _copied(http, repo, "c.bin"))
        assert not _copied(http, repo, "b.bin") and _copied(http, repo, "a.bin")
        assert store.get(oids["b.bin"]) is None
        count, size, retired = store.totals()
        assert (count, size, retired) == (2, len(files["a.bin"]) + len(files["c.bin"]), len(files["b.bin"]))
        assert size <= BOUND
        # The evicted copy's URL handed out before keeps working until it has expired...
        local.lifecycle.run(apply=True)
        assert httpx.get(urls["b.bin"]).content == files["b.bin"]
        # ...and then the lifecycle job (here: its sweep, 12 minutes on) deletes the object.
        local.bucket_copies.sweep(local.objects.exists, now=store.get(oids["c.bin"]).created_at + timedelta(minutes=12))
        assert _bucket_keys(local, oids["b.bin"]) == [] and httpx.get(urls["b.bin"]).status_code in (403, 404)
        assert store.totals()[2] == 0
        assert sorted(_bucket_keys(local, oids["a.bin"]) + _bucket_keys(local, oids["c.bin"])) == sorted(
            info.key for info in local.blobs.inner.list_blobs("download-cache/"))
        # GC's hook: copies of objects no longer stored go, rows and objects, at once.
        assert local.bucket_copies.sweep(lambda oid: oid == oids["a.bin"]) == 1  # only a.bin still stored
        assert store.get(oids["c.bin"]) is None and _bucket_keys(local, oids["c.bin"]) == []
        assert store.get(oids["a.bin"]).ready and len(_bucket_keys(local, oids["a.bin"])) == 1
