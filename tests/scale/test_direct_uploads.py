"""Direct-to-bucket LFS uploads (AICOMMONS_DIRECT_UPLOADS=true on S3): the client PUTs to a presigned
staging URL, and the object becomes visible only after ``verify`` re-hashed it on the server."""

from __future__ import annotations

import hashlib
import os

import httpx
import pytest
from huggingface_hub import HfApi, hf_hub_download

from aicommons.hub.lfs import blob_key
from aicommons.storage import open_blob_store
from tests.backends import free_port
from tests.conftest import ALICE_TOKEN, auth, server_env, start_hub, stop_hub, unique_name
from tests.scale.conftest import s3_storage_url, seed


@pytest.fixture
def direct_hub(pg_cluster, moto_s3, tmp_path):
    env = {"AICOMMONS_DATABASE_URL": pg_cluster.create_database(),
           "AICOMMONS_STORAGE_URL": s3_storage_url(moto_s3, moto_s3.create_bucket()),
           "AICOMMONS_DIRECT_UPLOADS": "true"}
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    port = free_port()
    seed(server_env(data_dir, port, **env))
    hub = start_hub(data_dir, port, **env)
    hub.bucket = open_blob_store(env["AICOMMONS_STORAGE_URL"], tmp_path)
    yield hub
    stop_hub(hub)


def batch(hub, repo, oid, size):
    return httpx.post(f"{hub.url}/{repo}.git/info/lfs/objects/batch", headers=auth(ALICE_TOKEN),
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
    assert open(got, "rb").read() == data


def test_a_wrong_direct_upload_never_becomes_visible(direct_hub):
    api = HfApi(endpoint=direct_hub.url, token=ALICE_TOKEN)
    repo = api.create_repo(f"alice/{unique_name()}").repo_id
    data = os.urandom(100_000)
    oid = hashlib.sha256(data).hexdigest()
    action = batch(direct_hub, repo, oid, len(data))["actions"]
    assert httpx.put(action["upload"]["href"], content=b"something else" * 100).status_code == 200
    staged = list(direct_hub.bucket.iter_keys("staging/"))
    assert len(staged) == 1 and staged[0].startswith("staging/lfs/") and staged[0].endswith(oid)
    verify = httpx.post(action["verify"]["href"], headers=auth(ALICE_TOKEN), json={"oid": oid, "size": len(data)})
    assert verify.status_code == 400
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
