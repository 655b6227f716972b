"""A pull request opened for a commit (``create_pr``) starts at the commit's parent, the head the
commit was applied to, even when the branch has moved on since (found while typing the hub: the
start commit handed to ``DiscussionService.open`` was dropped)."""

from __future__ import annotations

import pytest

from aicommons.hub.commits import AddFile, CommitRequest


@pytest.fixture
def hub(isolated_hub):
    return isolated_hub()


def test_a_pull_request_starts_at_the_commit_it_was_opened_for(hub):
    hub.accounts.create_user("dora")
    principal = hub.accounts.principal_for_token(hub.accounts.create_token("dora"))
    repo, _ = hub.repos.create(principal, "model", "pr-start", None, private=False)
    git_repo = hub.git.open(repo.storage_key)
    first = str(git_repo.references["refs/heads/main"].target)
    hub.commits.commit(repo, principal, "main", CommitRequest("moves main on", operations=(AddFile("a.txt", b"a"),)))
    assert str(git_repo.references["refs/heads/main"].target) != first

    pr = hub.discussions.open(repo, principal, "a change", "", pull_request=True, start_sha=first)
    assert str(git_repo.references[f"refs/pr/{pr.num}"].target) == first
    plain = hub.discussions.open(repo, principal, "another change", "", pull_request=True)
    assert str(git_repo.references[f"refs/pr/{plain.num}"].target) == str(git_repo.references["refs/heads/main"].target)
