"""Xet downloads on object storage (issue 11): a reconstruction sends hf_xet straight to the bucket
(a presigned URL of the xorb) when every chunk of that xorb belongs to files the reader may read,
and to a hub-signed URL of just the file's byte range when the xorb also holds chunks of files the
reader may not see (a presigned URL would open the whole xorb). On a local disk every fetch URL is
the hub's. Plain HTTP clients get the file rebuilt by the hub (docs/deploy.md)."""

from __future__ import annotations

import os

import httpx
import pytest
from huggingface_hub import HfApi, hf_hub_download

from tests.conftest import ALICE_TOKEN, auth, unique_name

pytest.importorskip("hf_xet")
MiB = 1024 * 1024


@pytest.fixture
def xet_on(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", False)


def fetch_urls(served, repo: str, path: str) -> list[str]:
    api = HfApi(endpoint=served.url, token=ALICE_TOKEN)
    file_hash = api.get_paths_info(repo, [path])[0].xet_hash
    token = httpx.get(f"{served.url}/api/models/{repo}/xet-read-token/main", headers=auth(ALICE_TOKEN)).json()
    got = httpx.get(f"{token['casUrl']}/v1/reconstructions/{file_hash}",
                    headers={"Authorization": f"Bearer {token['accessToken']}"})
    assert got.status_code == 200, got.text
    return [f["url"] for fetches in got.json()["fetch_info"].values() for f in fetches]


def test_fetch_urls_are_presigned_only_for_xorbs_the_reader_may_read_whole(served, backend_env, xet_on, tmp_path):
    api = HfApi(endpoint=served.url, token=ALICE_TOKEN)
    on_bucket = "AICOMMONS_STORAGE_URL" in backend_env
    mine = api.create_repo(f"alice/{unique_name()}").repo_id
    content = os.urandom(2 * MiB)
    api.upload_file(path_or_fileobj=content, path_in_repo="w.bin", repo_id=mine)
    urls = fetch_urls(served, mine, "w.bin")
    assert urls
    for url in urls:
        if on_bucket:
            assert not url.startswith(served.url) and "X-Amz-Signature" in url, url
        else:
            assert url.startswith(served.url) and "/v1/xorb-ranges/" in url, url
    path = hf_hub_download(mine, "w.bin", endpoint=served.url, token=ALICE_TOKEN, cache_dir=tmp_path / "a")
    with open(path, "rb") as f:
        assert f.read() == content
    # A second repo whose file reuses the first MiB of the first file's chunks (global dedup): the
    # shared xorb also holds chunks of a file this repo's readers may not read, so its fetch is a
    # hub-signed range of just this file's chunks, even on the bucket.
    other = api.create_repo(f"alice/{unique_name()}").repo_id
    api.update_repo_settings(mine, private=True)
    partial = content[:MiB]
    api.upload_file(path_or_fileobj=partial, path_in_repo="p.bin", repo_id=other)
    hub_signed = [u for u in fetch_urls(served, other, "p.bin") if u.startswith(served.url)]
    assert hub_signed and all("/v1/xorb-ranges/" in u for u in hub_signed)
    path = hf_hub_download(other, "p.bin", endpoint=served.url, token=ALICE_TOKEN, cache_dir=tmp_path / "b")
    with open(path, "rb") as f:
        assert f.read() == partial
