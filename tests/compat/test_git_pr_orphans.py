"""A pull request's author, without write access, cannot make a force-pushed-away commit readable
again through their pull request: alice commits a "secret" to main and force-pushes it away; bob,
who cloned in between, still has the commit (its objects also stay in the hub's store until GC).
Pointing his ``refs/pr/N`` at it, building on it, or re-adding its file are refused whole, with the
real ``git`` and ``git-lfs``; his ordinary pushes still land, and alice (a writer) may restore it."""

from __future__ import annotations

import os

import pytest
from huggingface_hub import CommitOperationAdd
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, RevisionNotFoundError

from tests.compat.test_git import Git, commit_files, pytestmark, url  # noqa: F401 - the same skip
from tests.compat.test_git_pr_push import assert_not_on_hub, assert_refused, bobs_pr, pr_heads, url_as
from tests.conftest import ALICE_TOKEN, BOB_TOKEN

SECRET = b"HF_TOKEN=hf_this_leaked_and_was_force_pushed_away\n"


@pytest.fixture
def git(tmp_path) -> Git:
    return Git(tmp_path / "home")


def assert_pr_hides_secret(api, repo_id: str, ref: str, tmp_path) -> None:
    files = {s.rfilename for s in api.model_info(repo_id, revision=ref).siblings}
    assert "secret.env" not in files, files
    with pytest.raises(EntryNotFoundError):
        api.hf_hub_download(repo_id, "secret.env", revision=ref, cache_dir=tmp_path / "cache")


def test_a_pr_author_cannot_bring_back_a_force_pushed_away_commit(git, tmp_path, api, bob_api, live_hub, repo_id):
    num, ref = bobs_pr(api, bob_api, repo_id)

    # Alice leaks a secret on main (an LFS file with it), bob clones, alice force-pushes it away.
    owner = tmp_path / "alice"
    git("clone", "-q", url(live_hub, repo_id, ALICE_TOKEN), str(owner))
    before = git.head(owner)
    leaked = commit_files(git, owner, {"secret.env": SECRET, "leak.safetensors": os.urandom(30_000)}, "oops")
    git("push", "-q", "origin", "main", cwd=owner)
    bob = tmp_path / "bob"
    git("clone", "-q", url_as(live_hub, "bob", BOB_TOKEN, repo_id), str(bob))
    assert git.head(bob) == leaked
    git("push", "-q", "--force", "origin", f"{before}:main", cwd=owner)
    assert api.model_info(repo_id).sha == before
    assert_not_on_hub(api, repo_id, leaked)  # gone for readers, though its objects wait for GC
    git("fetch", "-q", "origin", f"{ref}:pr", cwd=bob)
    pr_head = pr_heads(api, repo_id)[ref]

    # (a) His pull request's ref pointed at the leaked commit.
    says = "is no longer in the history of this repository"  # both refusals (commit, file) say it
    assert_refused(git, bob, "--force", "origin", f"{leaked}:{ref}", says=says)
    # (b) A new commit on top of it.
    git("checkout", "-q", leaked, cwd=bob)
    on_top = commit_files(git, bob, {"notes.txt": b"innocent\n"}, "bob builds on the leak")
    assert_refused(git, bob, "--force", "origin", f"{on_top}:{ref}", says=says)
    # ... and merged into his pull request's history (the leaked commit as a second parent).
    git("checkout", "-q", "pr", cwd=bob)
    git("merge", "-q", "--no-edit", leaked, cwd=bob)
    merged = git.head(bob)
    assert merged != pr_head
    assert_refused(git, bob, "origin", f"{merged}:{ref}", says=says)
    # (c) Its file re-added by a new commit (a rebase that replays the leak does the same).
    git("reset", "-q", "--hard", pr_head, cwd=bob)
    replay = commit_files(git, bob, {"secret.env": SECRET}, "bob re-adds the file")
    assert_refused(git, bob, "origin", f"{replay}:{ref}",
                   says="secret.env has the content of a file that is no longer in the history")

    # Nothing landed: the pull request, its timeline and the repo's readers show no trace.
    assert pr_heads(api, repo_id) == {ref: pr_head}
    assert api.model_info(repo_id).sha == before
    assert_pr_hides_secret(api, repo_id, ref, tmp_path)
    for oid in (leaked, on_top, merged, replay):
        assert_not_on_hub(api, repo_id, oid)
    assert not [e for e in api.get_discussion_details(repo_id, num).events if e.type == "commit" and
                e.oid in (leaked, on_top, merged, replay)]

    # The commit API cannot name it either: a revision must be a ref, a parent commit its head.
    with pytest.raises(RevisionNotFoundError):
        bob_api.create_commit(repo_id, [CommitOperationAdd("x.txt", b"x\n")], commit_message="from the leak",
                              revision=leaked, create_pr=True)
    with pytest.raises(HfHubHTTPError) as refused:
        bob_api.create_commit(repo_id, [CommitOperationAdd("x.txt", b"x\n")], commit_message="on the leak",
                              revision=ref, parent_commit=leaked)
    assert refused.value.response.status_code == 412
    with pytest.raises(HfHubHTTPError) as refused:
        bob_api.create_commit(repo_id, [CommitOperationAdd("x.txt", b"x\n")], commit_message="pr from the leak",
                              parent_commit=leaked, create_pr=True)
    assert refused.value.response.status_code == 412
    assert pr_heads(api, repo_id) == {ref: pr_head}

    # An ordinary push to his pull request still lands, LFS file included.
    git("reset", "-q", "--hard", pr_head, cwd=bob)
    weights = os.urandom(20_000)
    good = commit_files(git, bob, {"notes.txt": b"v3\n", "model.safetensors": weights}, "bob's real change")
    git("push", "origin", f"{good}:{ref}", cwd=bob)
    assert pr_heads(api, repo_id) == {ref: good}
    assert_pr_hides_secret(api, repo_id, ref, tmp_path)

    # A writer may restore it deliberately, as before.
    git("push", "-q", "origin", f"{leaked}:refs/heads/restored", cwd=owner)
    assert api.model_info(repo_id, revision="restored").sha == leaked
