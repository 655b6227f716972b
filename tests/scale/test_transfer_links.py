"""Signed LFS transfer links re-check access on every use (issue 19 finding 5, issue 9 finding 18),
on SQLite + disk and on PostgreSQL + S3 (moto).

A link names the repo by storage key (random, never reused: SQLite hands a deleted repo's id to the
next repo) and the principal it was minted for; withdrawal of any of the batch API's reasons to hand
it out — privatisation, gated rejection, deletion of the object or the repo, revocation of the token —
ends it at once, not an hour later. Redirects to presigned URLs are never cacheable by shared caches.
"""

from __future__ import annotations

import hashlib
import os

import httpx
import pytest
from huggingface_hub import HfApi

from tests.conftest import ALICE_TOKEN, BOB_TOKEN, auth, unique_name


@pytest.fixture
def hub(served):
    served.cli("user", "create", "bob")
    served.cli("token", "create", "bob", "--value", BOB_TOKEN)
    return served


def lfs_batch(hub, repo, operation, oid, size, token=None):
    headers = auth(token) if token else {}
    response = httpx.post(f"{hub.url}/{repo}.git/info/lfs/objects/batch", headers=headers, json={
        "operation": operation, "transfers": ["basic"], "objects": [{"oid": oid, "size": size}]})
    assert response.status_code == 200, response.text
    return response.json()["objects"][0]


def with_lfs_file(hub, token=ALICE_TOKEN, **create):
    api = HfApi(endpoint=hub.url, token=token)
    repo = api.create_repo(f"alice/{unique_name()}", **create).repo_id
    data = os.urandom(20_000)
    api.upload_file(path_or_fileobj=data, path_in_repo="weights.bin", repo_id=repo)
    return api, repo, data, hashlib.sha256(data).hexdigest()


def fetch(href):
    """What the link gives: the bytes (following a redirect to the bucket), or the refusal."""
    response = httpx.get(href)
    if response.status_code == 302:
        assert response.headers["cache-control"] == "private, no-store"
        return httpx.get(response.headers["location"])
    return response


def test_a_download_link_ends_when_the_repo_is_made_private(hub):
    api, repo, data, oid = with_lfs_file(hub)
    href = lfs_batch(hub, repo, "download", oid, len(data))["actions"]["download"]["href"]  # anonymous
    assert "/lfs-transfer/" in href and "who=anon" in href
    assert fetch(href).content == data
    api.update_repo_settings(repo, private=True)
    refused = httpx.get(href)
    assert refused.status_code in (401, 404) and refused.headers["x-error-code"] == "RepoNotFound"


def test_a_download_link_ends_when_gated_access_is_rejected(hub):
    api, repo, data, oid = with_lfs_file(hub)
    api.update_repo_settings(repo, gated="manual")
    api.grant_access(repo, "bob")
    href = lfs_batch(hub, repo, "download", oid, len(data), token=BOB_TOKEN)["actions"]["download"]["href"]
    assert fetch(href).content == data
    api.reject_access_request(repo, "bob", rejection_reason="no")
    refused = httpx.get(href)
    assert refused.status_code == 403 and refused.headers["x-error-code"] == "GatedRepo"


def test_a_download_link_ends_when_the_object_or_the_repo_is_deleted(hub):
    api, repo, data, oid = with_lfs_file(hub)
    href = lfs_batch(hub, repo, "download", oid, len(data), token=ALICE_TOKEN)["actions"]["download"]["href"]
    assert fetch(href).content == data
    api.permanently_delete_lfs_files(repo, [f for f in api.list_lfs_files(repo) if f.file_oid == oid])
    refused = httpx.get(href)
    assert refused.status_code == 404 and refused.headers["x-error-code"] == "EntryNotFound"
    _, other, data2, oid2 = with_lfs_file(hub)
    href2 = lfs_batch(hub, other, "download", oid2, len(data2))["actions"]["download"]["href"]
    api.delete_repo(other)
    assert httpx.get(href2).status_code == 404


def test_revoking_the_token_ends_the_links_it_minted(hub):
    api, repo, data, oid = with_lfs_file(hub)
    href = lfs_batch(hub, repo, "download", oid, len(data), token=BOB_TOKEN)["actions"]["download"]["href"]
    assert fetch(href).content == data
    hub.cli("token", "revoke", BOB_TOKEN)
    refused = httpx.get(href)
    assert refused.status_code == 401 and refused.headers["x-error-code"] == "Unauthorized"
    # an upload link too
    fresh = os.urandom(1000)
    hub.cli("token", "create", "bob", "--value", BOB_TOKEN + "x")
    bob = HfApi(endpoint=hub.url, token=BOB_TOKEN + "x")
    mine = bob.create_repo(f"bob/{unique_name()}").repo_id
    up = lfs_batch(hub, mine, "upload", hashlib.sha256(fresh).hexdigest(), len(fresh), token=BOB_TOKEN + "x")
    hub.cli("token", "revoke", BOB_TOKEN + "x")
    assert httpx.put(up["actions"]["upload"]["href"], content=fresh).status_code == 401


def test_an_upload_link_for_a_deleted_repo_cannot_write_into_the_next_repo(hub):
    """Issue 9 finding 18: on SQLite the next repo gets the deleted one's id; the link must not follow."""
    api = HfApi(endpoint=hub.url, token=ALICE_TOKEN)
    old = api.create_repo(f"alice/{unique_name()}").repo_id
    data = os.urandom(5000)
    oid = hashlib.sha256(data).hexdigest()
    href = lfs_batch(hub, old, "upload", oid, len(data), token=ALICE_TOKEN)["actions"]["upload"]["href"]
    api.delete_repo(old)
    new = api.create_repo(f"alice/{unique_name()}", private=True).repo_id
    refused = httpx.put(href, content=data)
    assert refused.status_code == 404
    assert "actions" in lfs_batch(hub, new, "upload", oid, len(data), token=ALICE_TOKEN)  # nothing landed
    assert api.list_lfs_files(new) == [] or list(api.list_lfs_files(new)) == []


def test_a_forged_or_retargeted_link_is_refused(hub):
    api, repo, data, oid = with_lfs_file(hub)
    href = lfs_batch(hub, repo, "download", oid, len(data))["actions"]["download"]["href"]
    assert httpx.get(href.replace("who=anon", "who=token%3A1")).status_code == 401  # not who it was for
    assert httpx.get(href.replace("sig=", "sig=0")).status_code == 401


def test_redirects_to_the_bucket_are_not_cacheable(hub):
    api, repo, data, oid = with_lfs_file(hub, private=True)
    private = httpx.get(f"{hub.url}/{repo}/resolve/main/weights.bin", headers=auth(ALICE_TOKEN))
    _, public_repo, _, _ = with_lfs_file(hub)
    public = httpx.get(f"{hub.url}/{public_repo}/resolve/main/weights.bin")
    if private.status_code == 200:  # local disk: served by the hub, no redirect
        return
    assert private.status_code == 302 and private.headers["cache-control"] == "private, no-store"
    assert public.status_code == 302 and "no-store" in public.headers["cache-control"]
