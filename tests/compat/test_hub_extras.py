"""Smaller Hub behaviours the upstream suite relies on."""

from __future__ import annotations

import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete
from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

from tests.conftest import unique_name


def test_auth_check(api, bob_api, repo_id):
    api.auth_check(repo_id)
    api.auth_check(repo_id, write=True)
    bob_api.auth_check(repo_id)
    with pytest.raises(HfHubHTTPError):
        bob_api.auth_check(repo_id, write=True)
    with pytest.raises(RepositoryNotFoundError):
        api.auth_check(f"alice/{unique_name('missing')}")
    api.update_repo_settings(repo_id, gated="manual")
    with pytest.raises(GatedRepoError):
        bob_api.auth_check(repo_id)


def test_repo_ids_without_namespace_are_repo_not_found(api):
    assert not api.repo_exists("no-namespace-here")
    assert not api.file_exists("no-namespace-here", "x.txt")
    with pytest.raises(RepositoryNotFoundError):
        api.list_repo_commits("no-namespace-here")
    with pytest.raises(RepositoryNotFoundError):
        api.unlike("no-namespace-here")


def test_list_user_repos_with_storage(api, repo_id):
    api.upload_file(path_or_fileobj=b"x" * 5000, path_in_repo="w.bin", repo_id=repo_id)
    mine = {r.id: r for r in api.list_user_repos()}
    assert mine[repo_id].type == "model" and mine[repo_id].visibility == "public"
    assert mine[repo_id].storage >= 5000
    assert all(r.id.startswith("acme/") for r in api.list_user_repos(namespace="acme"))


def test_space_starts_with_a_card_naming_its_sdk(api):
    space = f"alice/{unique_name('space')}"
    api.create_repo(space, repo_type="space", space_sdk="gradio")
    assert set(api.list_repo_files(space, repo_type="space")) == {".gitattributes", "README.md"}
    assert api.space_info(space).card_data.sdk == "gradio"
    api.delete_file("README.md", space, repo_type="space")


def test_invalid_model_index_is_refused(api, repo_id):
    with pytest.raises(ValueError, match="Invalid metadata in README.md"):
        api.upload_file(path_or_fileobj=b"---\nmodel-index: foo\n---\n", path_in_repo="README.md", repo_id=repo_id)


def test_deleting_a_folder_as_a_file_deletes_the_folder(api, repo_id):
    api.create_commit(repo_id, operations=[CommitOperationAdd("d/a.txt", b"a"), CommitOperationAdd("d/b.txt", b"b")],
                      commit_message="folder")
    api.create_commit(repo_id, operations=[CommitOperationDelete("d")], commit_message="implicit folder delete")
    assert api.list_repo_files(repo_id) == [".gitattributes"]


def test_create_tag_on_missing_revision_is_revision_not_found(api, repo_id):
    with pytest.raises(RevisionNotFoundError):
        api.create_tag(repo_id, tag="invalid tag", revision="does-not-exist")


def test_access_requests_by_id_and_no_double_grant(api, bob_api, repo_id, http):
    from tests.conftest import BOB_TOKEN, auth

    api.update_repo_settings(repo_id, gated="manual")
    http.post(f"/api/models/{repo_id}/ask-access", json={}, headers=auth(BOB_TOKEN))
    api.reject_access_request(repo_id, "bob", rejection_reason="not yet")
    request_id = list(api.list_rejected_access_requests(repo_id))[0].request_id
    api.accept_access_request(repo_id, request_id=request_id)
    assert [r.username for r in api.list_accepted_access_requests(repo_id)] == ["bob"]
    with pytest.raises(HfHubHTTPError):
        api.accept_access_request(repo_id, "bob")
    with pytest.raises(HfHubHTTPError):
        api.grant_access(repo_id, "bob")
