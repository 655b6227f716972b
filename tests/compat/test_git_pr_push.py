"""A pull request's author pushes to it with the real ``git`` and ``git-lfs``, as on the Hub, without
write access to the repo: bob opens a PR on alice's repo through the API, fetches ``refs/pr/N``,
commits (an LFS file too) and pushes it back. Any other ref in a non-writer's push (a branch, a tag,
someone else's PR, a closed PR, deleting the PR's ref) refuses the whole push; read tokens and
strangers to a private repo get what they got before."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfApi
from huggingface_hub.errors import RevisionNotFoundError

from tests.compat.test_git import Git, commit_files, pytestmark  # noqa: F401 - the same skip
from tests.conftest import BOB_TOKEN, unique_name


@pytest.fixture
def git(tmp_path) -> Git:
    return Git(tmp_path / "home")


def url_as(live_hub, user: str, token: str, repo_id: str) -> str:
    host = live_hub.url.split("://", 1)[1]
    return f"http://{user}:{token}@{host}/{repo_id}"


def pr_heads(api, repo_id: str) -> dict[str, str]:
    return {p.ref: p.target_commit for p in api.list_repo_refs(repo_id, include_pull_requests=True).pull_requests}


def new_user(live_hub) -> tuple[str, str]:
    """A fresh user and a write token of theirs (the shared hub's alice and bob are not enough)."""
    name = unique_name("carol")
    token = f"hf_{uuid.uuid4().hex}"
    live_hub.cli("user", "create", name)
    live_hub.cli("token", "create", name, "--value", token)
    return name, token


def bobs_pr(api, bob_api, repo_id: str) -> tuple[int, str]:
    api.upload_file(path_or_fileobj=b"v1\n", path_in_repo="notes.txt", repo_id=repo_id)
    pr = bob_api.create_commit(repo_id, [CommitOperationAdd("notes.txt", b"v2\n")], commit_message="bob proposes v2",
                               create_pr=True)
    return pr.pr_num, f"refs/pr/{pr.pr_num}"


def checkout_pr(git: Git, work: Path, remote: str, ref: str) -> None:
    git("clone", "-q", remote, str(work))
    git("fetch", "-q", "origin", f"{ref}:pr", cwd=work)
    git("checkout", "-q", "pr", cwd=work)


def assert_refused(git: Git, work: Path, *push_args: str, says: str) -> None:
    proc = git("push", *push_args, cwd=work, check=False)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert says in proc.stderr, proc.stderr


def assert_not_on_hub(api, repo_id: str, oid: str) -> None:
    with pytest.raises(RevisionNotFoundError):
        api.model_info(repo_id, revision=oid)


def test_pr_author_pushes_to_their_pull_request_with_lfs(git, tmp_path, api, bob_api, live_hub, repo_id):
    num, ref = bobs_pr(api, bob_api, repo_id)
    main = api.model_info(repo_id).sha
    work = tmp_path / "bob"
    checkout_pr(git, work, url_as(live_hub, "bob", BOB_TOKEN, repo_id), ref)

    weights = os.urandom(40_000)  # *.safetensors: LFS by the repo's .gitattributes
    head = commit_files(git, work, {"notes.txt": b"v3\n", "model.safetensors": weights}, "bob adds weights")
    pointer = git("cat-file", "-p", "HEAD:model.safetensors", cwd=work).stdout
    assert pointer.startswith("version https://git-lfs.github.com/spec/v1"), pointer  # git-lfs uploads it
    git("push", "origin", f"pr:{ref}", cwd=work)

    assert pr_heads(api, repo_id) == {ref: head}
    assert api.model_info(repo_id).sha == main  # main untouched
    got = api.hf_hub_download(repo_id, "model.safetensors", revision=ref, cache_dir=tmp_path / "c")
    assert hashlib.sha256(Path(got).read_bytes()).hexdigest() == hashlib.sha256(weights).hexdigest()
    commits = [e for e in api.get_discussion_details(repo_id, num).events if e.type == "commit"]
    assert (commits[-1].summary, commits[-1].oid, commits[-1].author) == ("bob adds weights", head, "bob")
    page = httpx.get(f"{live_hub.url}/{repo_id}/discussions/{num}", timeout=30)
    assert page.status_code == 200 and head[:7] in page.text and "bob adds weights" in page.text

    # Rewriting their own pull request is allowed, as it is for a writer (rebasing, squashing).
    git("commit", "-q", "--amend", "-m", "bob adds weights (amended)", cwd=work)
    amended = git.head(work)
    git("push", "--force", "origin", f"pr:{ref}", cwd=work)
    assert pr_heads(api, repo_id) == {ref: amended}

    # The writer merges it: bob's commits, LFS file included, reach main.
    api.merge_pull_request(repo_id, num)
    files = {s.rfilename: s for s in api.model_info(repo_id, files_metadata=True).siblings}
    assert files["model.safetensors"].lfs.sha256 == hashlib.sha256(weights).hexdigest()
    # Merged: no more pushes to it.
    late = commit_files(git, work, {"notes.txt": b"after the merge\n"}, "late")
    assert_refused(git, work, "origin", f"pr:{ref}", says="is merged")
    assert pr_heads(api, repo_id) == {ref: amended}
    assert_not_on_hub(api, repo_id, late)


def test_a_non_writers_push_to_anything_else_lands_nothing(git, tmp_path, api, bob_api, live_hub, repo_id):
    num, ref = bobs_pr(api, bob_api, repo_id)
    main, pr_head = api.model_info(repo_id).sha, pr_heads(api, repo_id)[ref]
    branches = api.list_repo_refs(repo_id).branches
    work = tmp_path / "bob"
    checkout_pr(git, work, url_as(live_hub, "bob", BOB_TOKEN, repo_id), ref)
    extra = os.urandom(20_000)
    new = commit_files(git, work, {"more.bin": extra}, "bob tries more")

    # Main alone, main with the PR in the same push, a new branch, a tag: refused whole.
    says = "you may not write to"
    assert_refused(git, work, "origin", "pr:main", says=says)
    assert_refused(git, work, "origin", f"pr:{ref}", "pr:main", says=says)
    assert_refused(git, work, "origin", f"pr:{ref}", "pr:refs/heads/bobs-branch", says=says)
    git("tag", "bobs-tag", cwd=work)
    assert_refused(git, work, "origin", f"pr:{ref}", "refs/tags/bobs-tag", says=says)
    # Deleting the PR's ref, creating a PR ref: the hub manages those, for everyone.
    assert_refused(git, work, "origin", f":{ref}", says="only branches")
    assert_refused(git, work, "origin", "pr:refs/pr/99", says="only branches")

    assert api.model_info(repo_id).sha == main
    assert pr_heads(api, repo_id) == {ref: pr_head}
    assert api.list_repo_refs(repo_id).branches == branches and api.list_repo_refs(repo_id).tags == []
    assert_not_on_hub(api, repo_id, new)  # the refused commit left no object behind
    assert not [e for e in api.get_discussion_details(repo_id, num).events
                if e.type == "commit" and e.oid == new]

    # The same push to the PR alone lands (what was refused was the other ref, not the content).
    git("push", "origin", f"pr:{ref}", cwd=work)
    assert pr_heads(api, repo_id) == {ref: new}


def test_someone_elses_pr_a_closed_pr_and_a_read_token_are_refused(git, tmp_path, api, bob_api, live_hub,
                                                                   repo_id):
    num, ref = bobs_pr(api, bob_api, repo_id)
    carol, carol_token = new_user(live_hub)
    carol_api = HfApi(endpoint=live_hub.url, token=carol_token)
    carols = carol_api.create_commit(repo_id, [CommitOperationAdd("carol.txt", b"c\n")], commit_message="carol's",
                                     create_pr=True)
    carol_ref = f"refs/pr/{carols.pr_num}"
    heads = pr_heads(api, repo_id)

    # Bob pushing to carol's pull request (the same refusal as an API commit to it gets).
    work = tmp_path / "bob"
    checkout_pr(git, work, url_as(live_hub, "bob", BOB_TOKEN, repo_id), carol_ref)
    new = commit_files(git, work, {"carol.txt": b"bob was here\n"}, "bob on carol's PR")
    assert_refused(git, work, "origin", f"pr:{carol_ref}",
                   says=f"Only the author or a maintainer of the repo can commit to pull request {carols.pr_num}")
    with pytest.raises(Exception, match="commit to pull request"):
        bob_api.upload_file(path_or_fileobj=b"x\n", path_in_repo="x.txt", repo_id=repo_id, revision=carol_ref)
    assert pr_heads(api, repo_id) == heads
    assert_not_on_hub(api, repo_id, new)

    # Carol, with a read token, may not push to her own pull request: refused at the door.
    carol_read = f"hf_{uuid.uuid4().hex}"
    live_hub.cli("token", "create", carol, "--role", "read", "--value", carol_read)
    reader = tmp_path / "reader"
    checkout_pr(git, reader, url_as(live_hub, carol, carol_read, repo_id), carol_ref)
    read_new = commit_files(git, reader, {"carol.txt": b"c2\n"}, "with a read token")
    assert_refused(git, reader, "origin", f"pr:{carol_ref}", says="403")
    assert_not_on_hub(api, repo_id, read_new)

    # Bob's own pull request, once closed, takes no more pushes.
    bob_api.change_discussion_status(repo_id, num, "closed")
    mine = tmp_path / "mine"
    checkout_pr(git, mine, url_as(live_hub, "bob", BOB_TOKEN, repo_id), ref)
    commit_files(git, mine, {"notes.txt": b"late\n"}, "too late")
    assert_refused(git, mine, "origin", f"pr:{ref}", says="is closed")
    assert pr_heads(api, repo_id) == heads


def test_a_stranger_learns_nothing_of_a_private_repo_through_push(live_hub, api, bob_api):
    private = f"alice/{unique_name('private')}"
    api.create_repo(private, private=True)
    api.upload_file(path_or_fileobj=b"x\n", path_in_repo="x.txt", repo_id=private)
    missing = f"alice/{unique_name('missing')}"
    answers = []
    with httpx.Client(base_url=live_hub.url, auth=("bob", BOB_TOKEN), timeout=30) as http:
        for rid in (private, missing):
            answers.append([(r.status_code, r.headers.get("x-error-code"), r.text) for r in (
                http.get(f"/{rid}/info/refs", params={"service": "git-receive-pack"}),
                http.post(f"/{rid}/git-receive-pack", content=b"0000",
                          headers={"Content-Type": "application/x-git-receive-pack-request"}))])
    assert answers[0] == answers[1] and answers[0][0][0] == 404


def test_on_a_gated_repo_only_an_admitted_author_pushes(git, tmp_path, api, bob_api, live_hub, repo_id):
    api.upload_file(path_or_fileobj=b"v1\n", path_in_repo="notes.txt", repo_id=repo_id)
    api.update_repo_settings(repo_id, gated="manual")
    remote = url_as(live_hub, "bob", BOB_TOKEN, repo_id)
    with httpx.Client(base_url=live_hub.url, auth=("bob", BOB_TOKEN), timeout=30) as http:
        refused = http.get(f"/{repo_id}/info/refs", params={"service": "git-receive-pack"})
    assert (refused.status_code, refused.headers.get("x-error-code")) == (403, "GatedRepo")

    api.grant_access(repo_id, "bob")
    pr = bob_api.create_commit(repo_id, [CommitOperationAdd("notes.txt", b"v2\n")], commit_message="admitted",
                               create_pr=True)
    ref = f"refs/pr/{pr.pr_num}"
    work = tmp_path / "bob"
    checkout_pr(git, work, remote, ref)
    head = commit_files(git, work, {"notes.txt": b"v3\n"}, "bob, admitted")
    git("push", "origin", f"pr:{ref}", cwd=work)
    assert pr_heads(api, repo_id) == {ref: head}

    # Access withdrawn: his own pull request takes no more pushes.
    api.reject_access_request(repo_id, "bob", rejection_reason="no longer")
    later = commit_files(git, work, {"notes.txt": b"v4\n"}, "after rejection")
    assert_refused(git, work, "origin", f"pr:{ref}", says="403")
    assert pr_heads(api, repo_id) == {ref: head}
    assert_not_on_hub(api, repo_id, later)
