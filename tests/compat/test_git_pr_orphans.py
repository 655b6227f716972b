"""A pull request's author, without write access, cannot make a force-pushed-away commit readable
again through their pull request: alice commits a "secret" to main and force-pushes it away; bob,
who cloned in between, still has the commit (its objects also stay in the hub's store until GC).
Pointing his ``refs/pr/N`` at it (with or without sending objects), building on it, merging it,
or re-adding its files (content, LFS object) are refused whole, with the real ``git`` and
``git-lfs`` and through the commit API; his ordinary pushes still land, and alice (a writer) may
restore it."""

from __future__ import annotations

import hashlib
import os

import httpx
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


def pkt_line(data: bytes) -> bytes:
    return f"{len(data) + 4:04x}".encode() + data


def push_without_objects(live_hub, repo_id: str, ref: str, old: str, new: str) -> bytes:
    """What ``git push`` sends when the hub already has every object: the ref update and an empty
    pack, so that nothing lands in the quarantine. Returns receive-pack's answer."""
    empty_pack = b"PACK" + (2).to_bytes(4, "big") + (0).to_bytes(4, "big")
    empty_pack += hashlib.sha1(empty_pack).digest()
    body = pkt_line(f"{old} {new} {ref}".encode() + b"\0report-status side-band-64k\n") + b"0000" + empty_pack
    answer = httpx.post(f"{live_hub.url}/{repo_id}.git/git-receive-pack", content=body, auth=("bob", BOB_TOKEN),
                        headers={"Content-Type": "application/x-git-receive-pack-request"}, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.content


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
    leak_bytes = os.urandom(30_000)
    leaked = commit_files(git, owner, {"secret.env": SECRET, "leak.safetensors": leak_bytes}, "oops")
    git("push", "-q", "origin", "main", cwd=owner)
    leak_lfs = {s.rfilename: s for s in api.model_info(repo_id, files_metadata=True).siblings}["leak.safetensors"].lfs
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
    # ... also when the push brings no object at all (the hub has them all: nothing in quarantine).
    answer = push_without_objects(live_hub, repo_id, ref, pr_head, leaked)
    assert f"ng {ref}".encode() in answer and says.encode() in answer, answer
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
    # (d) Its LFS file re-added under another name: the same pointer, the object still on the hub.
    git("reset", "-q", "--hard", pr_head, cwd=bob)
    relink = commit_files(git, bob, {"copy.safetensors": leak_bytes}, "bob re-links the LFS file")
    lfs_says = f"copy.safetensors points to LFS object {leak_lfs.sha256}, whose file is no longer in the"
    assert_refused(git, bob, "origin", f"{relink}:{ref}", says=lfs_says)
    # ... also by a pointer of its own (another blob: an extra key), made without git-lfs's filter.
    git("reset", "-q", "--hard", pr_head, cwd=bob)
    pointer = (f"version https://git-lfs.github.com/spec/v1\noid sha256:{leak_lfs.sha256}\n"
               f"size {leak_lfs.size}\nx-note crafted\n")
    (tmp_path / "pointer").write_text(pointer)
    blob = git("hash-object", "-w", str(tmp_path / "pointer"), cwd=bob).stdout.strip()
    git("update-index", "--add", "--cacheinfo", f"100644,{blob},copy.safetensors", cwd=bob)
    git("commit", "-q", "-m", "bob's own pointer to it", cwd=bob)
    crafted = git.head(bob)
    assert_refused(git, bob, "origin", f"{crafted}:{ref}", says=lfs_says)

    # Nothing landed: the pull request, its timeline and the repo's readers show no trace.
    assert pr_heads(api, repo_id) == {ref: pr_head}
    assert api.model_info(repo_id).sha == before
    assert_pr_hides_secret(api, repo_id, ref, tmp_path)
    for oid in (leaked, on_top, merged, replay, relink, crafted):
        assert_not_on_hub(api, repo_id, oid)
    assert not [e for e in api.get_discussion_details(repo_id, num).events if e.type == "commit" and
                e.oid in (leaked, on_top, merged, replay, relink, crafted)]

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
    # Nor bring its files back: the LFS object by its id, the secret by its content (to his PR or a new one).
    for revision, create_pr in ((ref, False), ("main", True)):
        for path, data in (("copy.safetensors", leak_bytes), ("secret.env", SECRET)):
            with pytest.raises(HfHubHTTPError) as refused:
                bob_api.create_commit(repo_id, [CommitOperationAdd(path, data)], commit_message="re-add",
                                      revision=revision, create_pr=create_pr)
            assert refused.value.response.status_code == 403, refused.value
            assert "is no longer in the history of this repository" in str(refused.value)
    assert pr_heads(api, repo_id) == {ref: pr_head}

    # An ordinary push to his pull request still lands, LFS file included.
    git("reset", "-q", "--hard", pr_head, cwd=bob)
    weights = os.urandom(20_000)
    good = commit_files(git, bob, {"notes.txt": b"v3\n", "model.safetensors": weights}, "bob's real change")
    git("push", "origin", f"{good}:{ref}", cwd=bob)
    assert pr_heads(api, repo_id) == {ref: good}
    # So does merging main into it, whose files the repo already has (and its refs reach).
    api.upload_file(path_or_fileobj=b"after the rewrite\n", path_in_repo="after.txt", repo_id=repo_id)
    git("fetch", "-q", "origin", "main", cwd=bob)
    git("merge", "-q", "--no-edit", "FETCH_HEAD", cwd=bob)
    merged_main = git.head(bob)
    git("push", "origin", f"{merged_main}:{ref}", cwd=bob)
    assert pr_heads(api, repo_id) == {ref: merged_main}
    assert_pr_hides_secret(api, repo_id, ref, tmp_path)

    # A writer may restore it deliberately, as before.
    git("push", "-q", "origin", f"{leaked}:refs/heads/restored", cwd=owner)
    assert api.model_info(repo_id, revision="restored").sha == leaked
