"""Gated repos: metadata is public, files need an accepted access request."""

from __future__ import annotations

from pathlib import Path

import pytest
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import GatedRepoError, HfHubHTTPError

from tests.conftest import BOB_TOKEN, auth


@pytest.mark.parametrize("mode", ["manual", "auto"])
def test_gated_repo_flow(api, bob_api, repo_id, http, tmp_path, mode):
    api.upload_file(path_or_fileobj=b"gated content", path_in_repo="w.txt", repo_id=repo_id)
    api.update_repo_settings(repo_id, gated=mode)
    assert bob_api.model_info(repo_id).gated == mode
    assert bob_api.repo_exists(repo_id)  # gated repos exist for everyone
    with pytest.raises(GatedRepoError) as err:
        hf_hub_download(repo_id, "w.txt", token=BOB_TOKEN, cache_dir=tmp_path)
    assert err.value.response.status_code == 403
    with pytest.raises(GatedRepoError) as err:
        hf_hub_download(repo_id, "w.txt", token=False, cache_dir=tmp_path)
    assert err.value.response.status_code == 401
    asked = http.post(f"/api/models/{repo_id}/ask-access", json={"reason": "research"}, headers=auth(BOB_TOKEN))
    assert asked.json()["status"] == ("accepted" if mode == "auto" else "pending")
    if mode == "manual":
        pending = api.list_pending_access_requests(repo_id)
        assert [(r.username, r.fields) for r in pending] == [("bob", {"reason": "research"})]
        with pytest.raises(GatedRepoError):
            hf_hub_download(repo_id, "w.txt", token=BOB_TOKEN, cache_dir=tmp_path)
        api.accept_access_request(repo_id, "bob")
    assert [r.username for r in api.list_accepted_access_requests(repo_id)] == ["bob"]
    assert Path(hf_hub_download(repo_id, "w.txt", token=BOB_TOKEN, cache_dir=tmp_path)).read_bytes() == b"gated content"
    api.reject_access_request(repo_id, "bob", rejection_reason="changed my mind")
    with pytest.raises(GatedRepoError):
        hf_hub_download(repo_id, "w.txt", token=BOB_TOKEN, cache_dir=tmp_path / "again")
    api.update_repo_settings(repo_id, gated=False)
    assert hf_hub_download(repo_id, "w.txt", token=False, cache_dir=tmp_path / "open")


def test_grant_access_and_maintainers_only(api, bob_api, repo_id, tmp_path):
    api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id)
    api.update_repo_settings(repo_id, gated="manual")
    with pytest.raises(HfHubHTTPError) as err:
        list(bob_api.list_pending_access_requests(repo_id))
    assert err.value.response.status_code == 403
    api.grant_access(repo_id, "bob")
    assert hf_hub_download(repo_id, "x.txt", token=BOB_TOKEN, cache_dir=tmp_path)
