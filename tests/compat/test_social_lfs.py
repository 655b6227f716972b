"""Likes and the LFS file listing/permanent deletion through huggingface_hub."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import EntryNotFoundError

from tests.conftest import ALICE_TOKEN, BOB_TOKEN, auth


def test_like_unlike_and_listings(api, bob_api, repo_id, http):
    # huggingface_hub 2.4 can only unlike; liking is a plain POST (the web UI's button)
    for token in (BOB_TOKEN, BOB_TOKEN, ALICE_TOKEN):  # liking twice is idempotent
        assert http.post(f"/api/models/{repo_id}/like", headers=auth(token)).status_code == 200
    assert api.model_info(repo_id).likes == 2
    assert [u.username for u in api.list_repo_likers(repo_id)] == ["bob", "alice"]
    assert repo_id in bob_api.list_liked_repos("bob").models
    bob_api.unlike(repo_id)
    assert api.model_info(repo_id).likes == 1
    assert repo_id not in bob_api.list_liked_repos("bob").models
    # Other tests like alice's repos on the same server: check the order, and where this repo sits in it.
    ranked = [(m.id, m.likes) for m in api.list_models(author="alice", sort="likes", expand=["likes"])]
    likes = [count for _, count in ranked]
    assert likes == sorted(likes, reverse=True)
    assert (repo_id, 1) in ranked


def test_list_and_permanently_delete_lfs_files(api, repo_id, tmp_path):
    keep, drop = os.urandom(3000), os.urandom(4000)
    api.upload_file(path_or_fileobj=keep, path_in_repo="keep.bin", repo_id=repo_id)
    api.upload_file(path_or_fileobj=drop, path_in_repo="ckpt/drop.bin", repo_id=repo_id)
    files = {f.filename: f for f in api.list_lfs_files(repo_id)}
    assert set(files) == {"keep.bin", "ckpt/drop.bin"}
    assert files["ckpt/drop.bin"].size == 4000 and files["ckpt/drop.bin"].ref == "refs/heads/main"
    api.permanently_delete_lfs_files(repo_id, [files["ckpt/drop.bin"]])
    assert [f.filename for f in api.list_lfs_files(repo_id)] == ["keep.bin"]
    assert "ckpt/drop.bin" not in api.list_repo_files(repo_id)
    for commit in api.list_repo_commits(repo_id):  # gone from every revision
        assert "ckpt/drop.bin" not in api.list_repo_files(repo_id, revision=commit.commit_id)
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(repo_id, "ckpt/drop.bin", cache_dir=tmp_path)
    assert Path(hf_hub_download(repo_id, "keep.bin", cache_dir=tmp_path)).read_bytes() == keep
