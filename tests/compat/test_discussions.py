"""Pull requests and discussions through huggingface_hub."""

from __future__ import annotations

from pathlib import Path

import pytest
from huggingface_hub import CommitOperationAdd, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError


def test_create_pr_commit_and_merge(api, repo_id, tmp_path):
    api.upload_file(path_or_fileobj=b"base", path_in_repo="base.txt", repo_id=repo_id)
    info = api.upload_file(path_or_fileobj=b"proposed", path_in_repo="new.txt", repo_id=repo_id, create_pr=True,
                           commit_message="Propose a file")
    assert info.pr_revision == "refs/pr/1" and info.pr_num == 1
    assert "new.txt" not in api.list_repo_files(repo_id)
    assert Path(hf_hub_download(repo_id, "new.txt", revision="refs/pr/1", cache_dir=tmp_path)).read_bytes() == b"proposed"
    # a second commit on the same PR
    api.upload_file(path_or_fileobj=b"more", path_in_repo="more.txt", repo_id=repo_id, revision="refs/pr/1")
    details = api.get_discussion_details(repo_id, 1)
    assert details.is_pull_request and details.status == "open" and details.target_branch == "refs/heads/main"
    assert [e.type for e in details.events].count("commit") == 2
    assert "new.txt" in details.diff and details.conflicting_files == []
    refs = api.list_repo_refs(repo_id, include_pull_requests=True)
    assert [pr.ref for pr in refs.pull_requests] == ["refs/pr/1"]
    api.merge_pull_request(repo_id, 1, comment="thanks")
    assert {"new.txt", "more.txt", "base.txt"} <= set(api.list_repo_files(repo_id))
    merged = api.get_discussion_details(repo_id, 1)
    assert merged.status == "merged" and len(merged.merge_commit_oid) == 40
    # still the changes it brought (it was empty: main, which now holds them, was the base)
    assert "diff --git a/new.txt b/new.txt" in merged.diff and "+proposed" in merged.diff
    assert "diff --git a/more.txt b/more.txt" in merged.diff and "base.txt" not in merged.diff
    with pytest.raises(HfHubHTTPError):
        api.upload_file(path_or_fileobj=b"late", path_in_repo="late.txt", repo_id=repo_id, revision="refs/pr/1")


def test_foreign_user_opens_pr_but_cannot_merge(api, bob_api, repo_id):
    info = bob_api.create_commit(repo_id, operations=[CommitOperationAdd("from-bob.txt", b"hi")],
                                 commit_message="Bob's idea", create_pr=True)
    assert info.pr_num == 1
    with pytest.raises(HfHubHTTPError) as err:
        bob_api.merge_pull_request(repo_id, info.pr_num)
    assert err.value.response.status_code == 403
    bob_api.comment_discussion(repo_id, info.pr_num, "please merge")
    api.merge_pull_request(repo_id, info.pr_num)
    assert "from-bob.txt" in api.list_repo_files(repo_id)


def test_discussions_comment_edit_rename_status(api, bob_api, repo_id):
    d = api.create_discussion(repo_id, title="A question", description="How does it work?")
    assert d.num == 1 and d.status == "open" and not d.is_pull_request
    comment = bob_api.comment_discussion(repo_id, d.num, "Like this.")
    edited = bob_api.edit_discussion_comment(repo_id, d.num, comment.id, "Like that.")
    assert edited.content == "Like that." and edited.edited
    with pytest.raises(HfHubHTTPError):
        api.edit_discussion_comment(repo_id, d.num, comment.id, "not mine")
    renamed = api.rename_discussion(repo_id, d.num, "A better question")
    assert (renamed.old_title, renamed.new_title) == ("A question", "A better question")
    closed = api.change_discussion_status(repo_id, d.num, "closed", comment="answered")
    assert closed.new_status == "closed"
    pr = api.create_pull_request(repo_id, title="Draft PR")
    assert pr.status == "draft" and pr.num == 2
    listed = list(api.get_repo_discussions(repo_id))
    assert [(x.num, x.title, x.is_pull_request) for x in listed] == [(2, "Draft PR", True), (1, "A better question", False)]
    assert [x.num for x in api.get_repo_discussions(repo_id, discussion_type="pull_request")] == [2]
    assert [x.num for x in api.get_repo_discussions(repo_id, discussion_status="closed")] == [1]
    with pytest.raises(HfHubHTTPError):
        api.create_discussion(repo_id, title="x")  # too short


def test_merge_conflict_is_reported(api, repo_id):
    api.upload_file(path_or_fileobj=b"one", path_in_repo="f.txt", repo_id=repo_id)
    pr = api.upload_file(path_or_fileobj=b"two", path_in_repo="f.txt", repo_id=repo_id, create_pr=True)
    api.upload_file(path_or_fileobj=b"three", path_in_repo="f.txt", repo_id=repo_id)
    assert api.get_discussion_details(repo_id, pr.pr_num).conflicting_files == ["f.txt"]
    with pytest.raises(HfHubHTTPError) as err:
        api.merge_pull_request(repo_id, pr.pr_num)
    assert err.value.response.status_code == 409


def test_failed_pr_commit_leaves_no_pr(api, repo_id):
    from huggingface_hub import CommitOperationDelete
    from huggingface_hub.errors import EntryNotFoundError

    with pytest.raises(EntryNotFoundError):
        api.create_commit(repo_id, operations=[CommitOperationDelete("missing.txt")], commit_message="bad",
                          create_pr=True)
    assert list(api.get_repo_discussions(repo_id)) == []
