"""Direct-to-bucket LFS uploads (AICOMMONS_DIRECT_UPLOADS=true on PostgreSQL + S3): the client PUTs to a
presigned staging URL of its own, and the object becomes visible only after ``verify`` copied it into a
hub-private file, hashed that and published it create-only with hub-fixed headers (issue 19)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download

from aicommons.storage import open_blob_store
from aicommons.storage.keys import blob_key
from tests.backends import free_port
from tests.conftest import ALICE_TOKEN, BOB_TOKEN, auth, server_env, start_hub, stop_hub, unique_name
from tests.scale.conftest import in_process_hub, s3_storage_url, seed


@pytest.fixture
def direct_hub(pg_cluster, moto_s3, tmp_path):
    env = {"AICOMMONS_DATABASE_URL": pg_cluster.create_database(),
           "AICOMMONS_STORAGE_URL": s3_storage_url(moto_s3, moto_s3.create_bucket()),
           "AICOMMONS_DIRECT_UPLOADS": "true"}
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    port = free_port()
    seed(server_env(data_dir, port, **env))
    for args in (["user", "create", "bob"], ["token", "create", "bob", "--value", BOB_TOKEN]):
        subprocess.run([sys.executable, "-m", "aicommons.cli.main", *args], env=server_env(data_dir, port, **env),
                       check=True, capture_output=True)
    hub = start_hub(data_dir, port, **env)
    hub.bucket = open_blob_store(env["AICOMMONS_STORAGE_URL"], tmp_path)
    yield hub
    stop_hub(hub)


def batch(hub, repo, oid, size, token=ALICE_TOKEN):
    return httpx.post(f"{hub.url}/{repo}.git/info/lfs/objects/batch", headers=auth(token),
                      json={"operation": "upload", "transfers": ["basic"], "objects": [{"oid": oid, "size": size}]}
                      ).json()["objects"][0]


def test_huggingface_hub_uploads_straight_to_the_bucket(direct_hub, tmp_path):
    api = HfApi(endpoint=direct_hub.url, token=ALICE_TOKEN)
    repo = api.create_repo(f"alice/{unique_name()}").repo_id
    data = os.urandom(6 * 1024 * 1024)
    oid = hashlib.sha256(data).hexdigest()
    href = batch(direct_hub, repo, oid, len(data))["actions"]["upload"]["href"]
    assert not href.startswith(direct_hub.url) and "X-Amz-Signature" in href  # the bucket, presigned
    api.upload_file(path_or_fileobj=data, path_in_repo="model.safetensors", repo_id=repo)
    assert direct_hub.bucket.exists(blob_key(oid))
    assert list(direct_hub.bucket.iter_keys("staging/")) == []
    got = hf_hub_download(repo, "model.safetensors", cache_dir=tmp_path, endpoint=direct_hub.url)
    assert Path(got).read_bytes() == data


def test_a_wrong_direct_upload_never_becomes_visible(direct_hub):
    api = HfApi(endpoint=direct_hub.url, token=ALICE_TOKEN)
    repo = api.create_repo(f"alice/{unique_name()}").repo_id
    data = os.urandom(100_000)
    oid = hashlib.sha256(data).hexdigest()
    action = batch(direct_hub, repo, oid, len(data))["actions"]
    wrong = os.urandom(len(data))  # the declared size, other bytes
    assert httpx.put(action["upload"]["href"], content=wrong).status_code == 200
    staged = list(direct_hub.bucket.iter_keys("staging/"))
    assert len(staged) == 1 and staged[0].startswith("staging/lfs/") and f"/{oid}-" in staged[0]
    verify = httpx.post(action["verify"]["href"], headers=auth(ALICE_TOKEN), json={"oid": oid, "size": len(data)})
    assert verify.status_code == 400 and "does not match" in verify.text
    assert not direct_hub.bucket.exists(blob_key(oid))
    assert list(direct_hub.bucket.iter_keys("staging/")) == []  # the bad bytes are gone
    # Before verify, a correct direct upload is not visible either.
    assert httpx.put(action["upload"]["href"], content=data).status_code == 200
    again = batch(direct_hub, repo, oid, len(data))
    assert "actions" in again  # still to be uploaded: staged bytes are not an object yet
    verify = httpx.post(action["verify"]["href"], headers=auth(ALICE_TOKEN), json={"oid": oid, "size": len(data)})
    assert verify.status_code == 200
    assert "actions" not in batch(direct_hub, repo, oid, len(data))


def test_gc_removes_direct_uploads_never_verified(direct_hub):
    api = HfApi(endpoint=direct_hub.url, token=ALICE_TOKEN)
    repo = api.create_repo(f"alice/{unique_name()}").repo_id
    data = os.urandom(10_000)
    action = batch(direct_hub, repo, hashlib.sha256(data).hexdigest(), len(data))["actions"]
    httpx.put(action["upload"]["href"], content=data).raise_for_status()
    assert len(list(direct_hub.bucket.iter_keys("staging/"))) == 1
    assert direct_hub.cli("gc", "--apply").returncode == 0  # younger than the grace period: kept
    assert len(list(direct_hub.bucket.iter_keys("staging/"))) == 1
    assert direct_hub.cli("gc", "--apply", "--grace-hours", "0").returncode == 0
    assert list(direct_hub.bucket.iter_keys("staging/")) == []


# --- issue 19: the staged object is the client's to change at any time; nothing it does may publish
# --- other bytes, replace a shared blob, set the served headers or touch someone else's upload.

class SwappingStore:
    """Wraps the hub's object store so the test runs between the hub's HEAD of a staged object and its
    reads: ``after_head`` runs once, right after the hub learnt the staged size; ``after_first_chunk``
    once, after the hub has consumed the first chunk of the staged bytes."""

    def __init__(self, inner, after_head=None, after_first_chunk=None):
        self.inner, self.after_head, self.after_first_chunk = inner, after_head, after_first_chunk
        self.bytes_read = 0

    def size(self, key):
        size = self.inner.size(key)
        if key.startswith("staging/") and self.after_head is not None:
            hook, self.after_head = self.after_head, None
            hook()
        return size

    def _swap_after_first(self, chunks):
        for chunk in chunks:
            self.bytes_read += len(chunk)
            yield chunk
            if self.after_first_chunk is not None:
                hook, self.after_first_chunk = self.after_first_chunk, None
                hook()

    def read_prefix(self, key, limit):
        return self._swap_after_first(self.inner.read_prefix(key, limit))

    def open(self, key):  # the reader the hub used before the fix: ranged GETs, 1 MiB each
        inner, store = self.inner.open(key), self

        class Reader:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                inner.close()

            def read(self, n=-1):
                data = inner.read(n)
                if data:
                    store.bytes_read += len(data)
                    if store.after_first_chunk is not None:
                        hook, store.after_first_chunk = store.after_first_chunk, None
                        hook()
                return data

        return Reader()

    def __getattr__(self, name):
        return getattr(self.inner, name)


def _verify_in_process(direct_hub, repo_id, token, oid, size, verify_href, store_wrapper):
    """The hub's verify, run in this process on the server's database and bucket, with its object
    store wrapped (the live server's verify is the same code: api/lfs.py -> direct_uploads)."""
    from aicommons.hub import direct_uploads

    hub = in_process_hub(direct_hub.env)
    hub.settings = dataclasses.replace(hub.settings, direct_uploads=True)
    try:
        hub.blobs.inner = store_wrapper(hub.blobs.inner)
        principal = hub.accounts.principal_for_token(token)
        repo = hub.repos.find("model", repo_id, principal)
        nonce = parse_qs(urlparse(verify_href).query)["upload"][0]
        try:
            direct_uploads.promote_if_staged(hub, repo, principal, oid, size, nonce)
            hub.lfs.verify(repo, oid, size)
            return None
        except Exception as exc:  # noqa: BLE001 - returned for the test to look at
            return exc
        finally:
            wrapper = hub.blobs.inner
    finally:
        hub.close()
    return wrapper


def test_re_putting_the_staged_object_during_verify_cannot_replace_another_repos_file(direct_hub, tmp_path):
    """Finding 1 (critical): bob re-PUTs his staged object between the hub's first and later reads, and
    the oid is alice's public file. Nothing of his may reach alice's file or the shared blob."""
    alice = HfApi(endpoint=direct_hub.url, token=ALICE_TOKEN)
    victim = alice.create_repo(f"alice/{unique_name()}").repo_id
    good = os.urandom(3 * 1024 * 1024)
    oid = hashlib.sha256(good).hexdigest()
    alice.upload_file(path_or_fileobj=good, path_in_repo="model.bin", repo_id=victim)
    # bob's own repo; his upload of "the same" object is offered because *his* repo lacks it
    bob = HfApi(endpoint=direct_hub.url, token=BOB_TOKEN)
    mine = bob.create_repo(f"bob/{unique_name()}").repo_id
    action = batch(direct_hub, mine, oid, len(good), token=BOB_TOKEN)["actions"]
    put = action["upload"]["href"]
    assert httpx.put(put, content=good).status_code == 200
    evil = b"#EVIL PAYLOAD#" + os.urandom(1024 * 1024 - 14) + good[1024 * 1024:]  # first MiB differs
    assert len(evil) == len(good)

    def swap():
        assert httpx.put(put, content=evil).status_code == 200

    error = _verify_in_process(direct_hub, mine, BOB_TOKEN, oid, len(good), action["verify"]["href"],
                               lambda inner: SwappingStore(inner, after_first_chunk=swap))
    # Whatever verify answered, the bytes under the oid are the good ones, everywhere.
    assert error is None or "does not match" in str(error)
    with direct_hub.bucket.open(blob_key(oid)) as f:
        assert hashlib.sha256(f.read()).hexdigest() == oid
    got = hf_hub_download(victim, "model.bin", cache_dir=tmp_path, endpoint=direct_hub.url)
    assert Path(got).read_bytes() == good
    assert list(direct_hub.bucket.iter_keys("staging/")) == []


def test_a_staged_object_swapped_after_the_head_is_read_no_further_than_the_declared_size(direct_hub):
    """Finding 3: verify reads at most size + 1 bytes, whatever the bucket holds by then."""
    api = HfApi(endpoint=direct_hub.url, token=ALICE_TOKEN)
    repo = api.create_repo(f"alice/{unique_name()}").repo_id
    data = os.urandom(200_000)
    oid = hashlib.sha256(data).hexdigest()
    action = batch(direct_hub, repo, oid, len(data))["actions"]
    put = action["upload"]["href"]
    assert httpx.put(put, content=data).status_code == 200
    wrappers = []

    def wrap(inner):
        wrappers.append(SwappingStore(inner, after_head=lambda: httpx.put(put, content=os.urandom(8 * 1024 * 1024))))
        return wrappers[0]

    error = _verify_in_process(direct_hub, repo, ALICE_TOKEN, oid, len(data), action["verify"]["href"], wrap)
    assert error is not None and "larger than the declared size" in str(error)
    assert wrappers[0].bytes_read <= len(data) + 1
    assert not direct_hub.bucket.exists(blob_key(oid))
    assert list(direct_hub.bucket.iter_keys("staging/")) == []


def test_a_staged_object_of_the_wrong_size_is_refused_without_reading_it(direct_hub):
    """Finding 3: the presigned PUT signs the declared Content-Length (S3 refuses other sizes), and a
    staged object whose size is not the declared one is refused from its HEAD alone."""
    api = HfApi(endpoint=direct_hub.url, token=ALICE_TOKEN)
    repo = api.create_repo(f"alice/{unique_name()}").repo_id
    data = os.urandom(50_000)
    oid = hashlib.sha256(data).hexdigest()
    action = batch(direct_hub, repo, oid, len(data))["actions"]
    query = parse_qs(urlparse(action["upload"]["href"]).query)
    assert "content-length" in query["X-Amz-SignedHeaders"][0].split(";")
    assert httpx.put(action["upload"]["href"], content=data * 20).status_code == 200  # moto does not check it
    wrappers = []

    def wrap(inner):
        wrappers.append(SwappingStore(inner))
        return wrappers[0]

    error = _verify_in_process(direct_hub, repo, ALICE_TOKEN, oid, len(data), action["verify"]["href"], wrap)
    assert error is not None and "expected size" in str(error)
    assert wrappers[0].bytes_read == 0
    assert list(direct_hub.bucket.iter_keys("staging/")) == []


def test_staging_is_per_upload_and_bound_to_the_uploader(direct_hub):
    """Finding 3: two users uploading one object into one repo get different staging keys; neither can
    verify (publish or delete) the other's upload."""
    api = HfApi(endpoint=direct_hub.url, token=ALICE_TOKEN)
    repo = api.create_repo(f"alice/{unique_name()}").repo_id
    data = os.urandom(30_000)
    oid = hashlib.sha256(data).hexdigest()
    alice = batch(direct_hub, repo, oid, len(data))["actions"]
    bob = batch(direct_hub, repo, oid, len(data), token=BOB_TOKEN)["actions"]
    again = batch(direct_hub, repo, oid, len(data))["actions"]
    keys = {urlparse(a["upload"]["href"]).path for a in (alice, bob, again)}
    assert len(keys) == 3  # per upload, not per repo and object
    assert httpx.put(bob["upload"]["href"], content=b"junk" * 7500).status_code == 200  # bob's junk...
    assert httpx.put(alice["upload"]["href"], content=data).status_code == 200
    # ...cannot touch alice's staged bytes; bob verifying alice's upload id finds nothing of his there
    stolen = httpx.post(alice["verify"]["href"], headers=auth(BOB_TOKEN), json={"oid": oid, "size": len(data)})
    assert stolen.status_code == 404
    assert len(list(direct_hub.bucket.iter_keys("staging/"))) == 2
    ok = httpx.post(alice["verify"]["href"], headers=auth(ALICE_TOKEN), json={"oid": oid, "size": len(data)})
    assert ok.status_code == 200
    with direct_hub.bucket.open(blob_key(oid)) as f:
        assert f.read() == data


def test_the_uploader_cannot_choose_the_headers_the_bucket_serves(direct_hub, tmp_path):
    """Finding 2: whatever headers the direct PUT carried, the published object is served as
    application/octet-stream, not encoded, not publicly cacheable, and presigned GETs say attachment."""
    api = HfApi(endpoint=direct_hub.url, token=ALICE_TOKEN)
    repo = api.create_repo(f"alice/{unique_name()}").repo_id
    data = b"<html><script>alert(document.domain)</script></html>" + os.urandom(1000)
    oid = hashlib.sha256(data).hexdigest()
    action = batch(direct_hub, repo, oid, len(data))["actions"]
    hostile = {"Content-Type": "text/html", "Content-Encoding": "gzip", "Content-Disposition": "inline",
               "Cache-Control": "public, max-age=31536000"}
    assert httpx.put(action["upload"]["href"], content=data, headers=hostile).status_code == 200
    staged = list(direct_hub.bucket.iter_keys("staging/"))[0]
    with httpx.stream("GET", direct_hub.bucket._sign("GET", staged, 60)) as plain:
        assert plain.headers["content-type"] == "text/html"  # the bucket did keep the uploader's headers
        assert plain.headers["content-encoding"] == "gzip"
    assert httpx.post(action["verify"]["href"], headers=auth(ALICE_TOKEN),
                      json={"oid": oid, "size": len(data)}).status_code == 200
    # The stored object itself (fetched with a bare signed GET, no overrides)
    stored = httpx.get(direct_hub.bucket._sign("GET", blob_key(oid), 60))
    assert stored.headers["content-type"] == "application/octet-stream"
    assert "content-encoding" not in stored.headers and "public" not in stored.headers.get("cache-control", "")
    assert "inline" not in stored.headers.get("content-disposition", "")
    assert stored.content == data
    # What clients are sent to: the resolve redirect's presigned URL pins the answer's headers too.
    api.create_commit(repo_id=repo, operations=[CommitOperationAdd("page.html", data)], commit_message="add")
    resolve = httpx.get(f"{direct_hub.url}/{repo}/resolve/main/page.html")
    assert resolve.status_code == 302
    served = httpx.get(resolve.headers["location"])
    assert served.headers["content-type"] == "application/octet-stream"
    assert served.headers["content-disposition"].startswith("attachment")
    assert served.content == data
    got = hf_hub_download(repo, "page.html", cache_dir=tmp_path, endpoint=direct_hub.url)
    assert Path(got).read_bytes() == data
