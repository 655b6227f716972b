"""The real ``git`` and ``git-lfs`` clients against a live hub: clone, push (with LFS), pull,
rejected pushes that leave no trace, private repos, datasets."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, hf_hub_download
from huggingface_hub.errors import RevisionNotFoundError

from tests.conftest import ALICE_READ_TOKEN, ALICE_TOKEN, BOB_TOKEN, unique_name

pytestmark = pytest.mark.skipif(shutil.which("git") is None or shutil.which("git-lfs") is None,
                                reason="needs the git and git-lfs binaries")


class Git:
    """Runs git with a HOME and global config of its own, so nothing on the machine leaks in."""

    def __init__(self, home: Path):
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        self.env.update(HOME=str(home), GIT_CONFIG_GLOBAL=str(home / ".gitconfig"), GIT_CONFIG_NOSYSTEM="1",
                        GIT_TERMINAL_PROMPT="0", GIT_ASKPASS="", SSH_ASKPASS="")
        home.mkdir(parents=True, exist_ok=True)
        for key, value in [("user.name", "Alice"), ("user.email", "alice@example.org"),
                           ("init.defaultBranch", "main"), ("pull.rebase", "false"), ("advice.detachedHead", "false")]:
            self("config", "--global", key, value)
        self("lfs", "install")

    def __call__(self, *args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(["git", *args], cwd=cwd, env=self.env, capture_output=True, text=True, timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def head(self, cwd: Path) -> str:
        return self("rev-parse", "HEAD", cwd=cwd).stdout.strip()


@pytest.fixture
def git(tmp_path) -> Git:
    return Git(tmp_path / "home")


def url(live_hub, repo_id: str, token: str | None = None, prefix: str = "", suffix: str = "") -> str:
    host = live_hub.url.split("://", 1)[1]
    user = "alice" if token in (ALICE_TOKEN, ALICE_READ_TOKEN) else "bob"
    auth = f"{user}:{token}@" if token else ""
    return f"http://{auth}{host}/{prefix}{repo_id}{suffix}"


def commit_files(git: Git, work: Path, files: dict[str, bytes], message: str) -> str:
    for name, data in files.items():
        path = work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    git("add", "--all", cwd=work)
    git("commit", "-q", "-m", message, cwd=work)
    return git.head(work)


def test_clone_push_with_lfs_then_pull(git, tmp_path, api, live_hub, repo_id):
    first, second = tmp_path / "first", tmp_path / "second"
    git("clone", url(live_hub, repo_id), str(first))  # anonymous read of a public repo
    assert (first / ".gitattributes").exists()

    weights = os.urandom(50_000)
    readme = b"---\nlicense: mit\ntags:\n- pushed-with-git\n---\n# Hello\n"
    head = commit_files(git, first, {"README.md": readme, "model.safetensors": weights,
                                     "configs/config.json": b'{"a": 1}\n'}, "add model")
    git("remote", "set-url", "origin", url(live_hub, repo_id, ALICE_TOKEN), cwd=first)
    git("push", "origin", "main", cwd=first)

    # The API shows the push at once: head, files, LFS metadata, card, download.
    info = api.model_info(repo_id, files_metadata=True)
    assert info.sha == head
    assert "pushed-with-git" in info.tags
    siblings = {s.rfilename: s for s in info.siblings}
    assert set(siblings) == {".gitattributes", "README.md", "model.safetensors", "configs/config.json"}
    assert siblings["model.safetensors"].lfs.sha256 == hashlib.sha256(weights).hexdigest()
    assert siblings["model.safetensors"].size == len(weights)
    assert siblings["README.md"].lfs is None
    path = hf_hub_download(repo_id, "model.safetensors", token=ALICE_TOKEN, cache_dir=tmp_path / "cache")
    assert Path(path).read_bytes() == weights

    # A second clone, through the ".git" URL form, gets the LFS content smudged in.
    git("clone", url(live_hub, repo_id, suffix=".git"), str(second))
    assert (second / "model.safetensors").read_bytes() == weights
    assert git.head(second) == head

    # An API commit and a second git push, then a pull brings both.
    api.upload_file(path_or_fileobj=b"from the api\n", path_in_repo="api.txt", repo_id=repo_id)
    git("pull", "-q", "origin", "main", cwd=first)
    more = os.urandom(30_000)
    head = commit_files(git, first, {"extra.bin": more}, "add extra")
    git("push", "origin", "main", cwd=first)
    git("pull", "-q", cwd=second)
    assert git.head(second) == head == api.model_info(repo_id).sha
    assert (second / "extra.bin").read_bytes() == more
    assert (second / "api.txt").read_bytes() == b"from the api\n"
    assert {f.filename for f in api.list_lfs_files(repo_id)} == {"model.safetensors", "extra.bin"}


def test_branches_tags_and_force_push(git, tmp_path, api, live_hub, repo_id):
    work = tmp_path / "work"
    git("clone", url(live_hub, repo_id, ALICE_TOKEN), str(work))
    first = commit_files(git, work, {"a.txt": b"a\n"}, "a")
    git("tag", "-a", "v1", "-m", "version 1", cwd=work)
    git("push", "origin", "main", "main:refs/heads/dev", "v1", cwd=work)
    refs = api.list_repo_refs(repo_id)
    assert {b.name: b.target_commit for b in refs.branches} == {"main": first, "dev": first}
    assert [(t.name, t.target_commit) for t in refs.tags] == [("v1", first)]

    # Rewriting main is allowed (as on the Hub): e.g. to drop a commit that leaked a secret.
    git("reset", "-q", "--hard", "HEAD~1", cwd=work)
    rewritten = commit_files(git, work, {"b.txt": b"b\n"}, "b instead of a")
    git("push", "--force", "origin", "main", cwd=work)
    assert api.model_info(repo_id).sha == rewritten
    assert "a.txt" not in api.list_repo_files(repo_id)

    git("push", "origin", ":dev", ":v1", cwd=work)  # deleting other branches and tags is allowed
    refs = api.list_repo_refs(repo_id)
    assert [b.name for b in refs.branches] == ["main"] and refs.tags == []


def test_lfs_locks_say_they_are_not_supported_and_pushes_do_not_need_them(git, tmp_path, live_hub, repo_id):
    work = tmp_path / "work"
    git("clone", url(live_hub, repo_id, ALICE_TOKEN), str(work))
    commit_files(git, work, {"w.bin": b"\0weights" * 100}, "weights")
    pushed = git("push", "origin", "main", cwd=work)  # git-lfs asks the locks API first (locks/verify)
    assert "lock" not in (pushed.stdout + pushed.stderr).lower()
    for args in (["lock", "w.bin"], ["locks"], ["unlock", "w.bin"]):
        said = git("lfs", *args, cwd=work, check=False)
        assert said.returncode != 0 and "does not support Git LFS file locks" in said.stderr, said.stderr


def test_push_to_the_ref_of_an_open_pull_request(git, tmp_path, api, live_hub, repo_id):
    # As on the Hub: fetch refs/pr/N, commit on top, push it back while the pull request is open.
    api.upload_file(path_or_fileobj=b"v1\n", path_in_repo="notes.txt", repo_id=repo_id)
    pr = api.create_commit(repo_id, [CommitOperationAdd("notes.txt", b"v2\n")], commit_message="propose v2",
                           create_pr=True)
    ref = f"refs/pr/{pr.pr_num}"
    work = tmp_path / "work"
    git("clone", url(live_hub, repo_id, ALICE_TOKEN), str(work))
    main = git.head(work)
    git("fetch", "-q", "origin", f"{ref}:pr", cwd=work)
    git("checkout", "-q", "pr", cwd=work)
    head = commit_files(git, work, {"notes.txt": b"v3\n"}, "v3 on top")
    git("push", "origin", f"pr:{ref}", cwd=work)

    assert [(p.ref, p.target_commit) for p in api.list_repo_refs(repo_id, include_pull_requests=True).pull_requests] \
        == [(ref, head)]
    assert Path(api.hf_hub_download(repo_id, "notes.txt", revision=ref, cache_dir=tmp_path / "c")).read_bytes() == b"v3\n"
    assert api.model_info(repo_id).sha == main
    commits = [e for e in api.get_discussion_details(repo_id, pr.pr_num).events if e.type == "commit"]
    assert [(c.summary, c.oid) for c in commits][-1] == ("v3 on top", head)

    # A closed pull request takes no more pushes; nor can a push open one (the API does).
    api.change_discussion_status(repo_id, pr.pr_num, "closed")
    commit_files(git, work, {"notes.txt": b"v4\n"}, "too late")
    refused = git("push", "origin", f"pr:{ref}", cwd=work, check=False)
    assert refused.returncode != 0 and "is closed" in refused.stderr, refused.stderr
    refused = git("push", "origin", "pr:refs/pr/99", cwd=work, check=False)
    assert refused.returncode != 0 and "only branches" in refused.stderr, refused.stderr
    assert [p.target_commit for p in api.list_repo_refs(repo_id, include_pull_requests=True).pull_requests] == [head]


def _assert_rejected(git, work: Path, api, repo_id: str, before: str, *push_args: str, says: str) -> None:
    proc = git("push", *push_args, cwd=work, check=False)
    assert proc.returncode != 0, proc.stderr
    assert says in proc.stderr, proc.stderr
    assert api.model_info(repo_id).sha == before
    rejected = git.head(work)
    if rejected != before:  # the refused commit left no object behind on the server
        with pytest.raises(RevisionNotFoundError):
            api.model_info(repo_id, revision=rejected)


def test_rejected_pushes_leave_the_repo_unchanged(git, tmp_path, api, live_hub, repo_id):
    work = tmp_path / "work"
    git("clone", url(live_hub, repo_id, ALICE_TOKEN), str(work))
    before = git.head(work)
    branches_before = api.list_repo_refs(repo_id).branches

    # Bob (who may push only to his own pull requests: test_git_pr_push.py), a read token, and an
    # anonymous caller may not push to alice's repo.
    commit_files(git, work, {"ok.txt": b"fine\n"}, "fine")
    _assert_rejected(git, work, api, repo_id, before, url(live_hub, repo_id, BOB_TOKEN), "main",
                     says="you may not write to")
    _assert_rejected(git, work, api, repo_id, before, url(live_hub, repo_id, ALICE_READ_TOKEN), "main",
                     says="403")
    # Anonymous: the 401 challenge makes git ask for credentials, which it may not do here.
    _assert_rejected(git, work, api, repo_id, before, url(live_hub, repo_id), "main", says="could not read Username")

    # A file path the hub refuses (outside the repo when read with Windows separators), in a commit
    # under an acceptable one.
    commit_files(git, work, {"..\\name.txt": b"x\n"}, "bad path")
    commit_files(git, work, {"later.txt": b"y\n"}, "later")
    _assert_rejected(git, work, api, repo_id, before, "origin", "main", says="must be relative to the repo root")
    git("reset", "-q", "--hard", before, cwd=work)

    # An LFS pointer to an object never uploaded (git-lfs's own pre-push upload is skipped).
    pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{'ab' * 32}\nsize 12345\n"
    commit_files(git, work, {"ghost.bin": pointer.encode()}, "ghost")
    _assert_rejected(git, work, api, repo_id, before, "--no-verify", "origin", "main", says="was not uploaded")
    git("reset", "-q", "--hard", before, cwd=work)

    # A big file that bypasses LFS (zeros: the pack stays tiny, the file does not), even one that a
    # later commit of the same push removes again.
    commit_files(git, work, {"big.txt": bytes(live_hub_max_regular_bytes() + 1)}, "too big")
    git("rm", "-q", "big.txt", cwd=work)
    git("commit", "-q", "-m", "remove it again", cwd=work)
    _assert_rejected(git, work, api, repo_id, before, "origin", "main", says="must be stored with git-lfs")
    git("reset", "-q", "--hard", before, cwd=work)

    # Refs the hub manages, and deleting main.
    _assert_rejected(git, work, api, repo_id, before, "origin", "main:refs/pr/1", says="only branches")
    _assert_rejected(git, work, api, repo_id, before, "origin", ":main", says="cannot be deleted")
    assert api.list_repo_refs(repo_id).branches == branches_before
    assert api.list_repo_files(repo_id) == [".gitattributes"]


def live_hub_max_regular_bytes() -> int:
    return 10 * 1024 * 1024  # the default AICOMMONS_MAX_REGULAR_FILE_BYTES the live hub runs with


def test_private_repo_needs_credentials_and_does_not_leak(git, tmp_path, api, live_hub):
    repo_id = f"alice/{unique_name('private')}"
    api.create_repo(repo_id, private=True)
    proc = git("clone", url(live_hub, repo_id), str(tmp_path / "anon"), check=False)
    assert proc.returncode != 0 and not (tmp_path / "anon").exists()

    # Anonymous: a Basic challenge, exactly as for a repo that does not exist.
    missing = f"alice/{unique_name('missing')}"
    with httpx.Client(base_url=live_hub.url) as http:
        answers = [http.get(f"/{rid}/info/refs", params={"service": "git-upload-pack"}) for rid in (repo_id, missing)]
        assert [a.status_code for a in answers] == [401, 401]
        assert all(a.headers["www-authenticate"].startswith("Basic") for a in answers)
        assert answers[0].text == answers[1].text
        as_bob = [http.get(f"/{rid}/info/refs", params={"service": "git-upload-pack"}, auth=("bob", BOB_TOKEN))
                  for rid in (repo_id, missing)]
        assert [a.status_code for a in as_bob] == [404, 404] and as_bob[0].text == as_bob[1].text

    proc = git("clone", url(live_hub, repo_id, BOB_TOKEN), str(tmp_path / "bob"), check=False)
    assert proc.returncode != 0 and "not found" in proc.stderr.lower()
    git("clone", url(live_hub, repo_id, ALICE_TOKEN), str(tmp_path / "alice"))
    assert (tmp_path / "alice" / ".gitattributes").exists()


def test_commits_the_hub_writes_do_not_carry_the_users_email(git, tmp_path, api, live_hub):
    """Anyone may clone a public repo: the commits and tags the hub writes for alice (create, upload,
    annotated tag) name her, at a no-reply address, never her account's e-mail (alice@example.org)."""
    repo_id = f"alice/{unique_name('public')}"
    api.create_repo(repo_id)
    api.upload_file(path_or_fileobj=b"hello", path_in_repo="a.txt", repo_id=repo_id)
    api.create_tag(repo_id, tag="v1", tag_message="first release")
    work = tmp_path / "anon"
    git("clone", url(live_hub, repo_id), str(work))  # anonymous, as anyone
    people = git("log", "--format=%an <%ae>|%cn <%ce>", cwd=work).stdout.split()
    people += git("for-each-ref", "--format=%(taggername) %(taggeremail)", "refs/tags", cwd=work).stdout.split()
    assert "<alice@users.noreply>|alice" in " ".join(people)
    assert not any("example.org" in who for who in people), people


def test_dataset_repo_clone_and_push(git, tmp_path, api, live_hub):
    repo_id = f"alice/{unique_name('data')}"
    api.create_repo(repo_id, repo_type="dataset")
    api.upload_file(path_or_fileobj=b"a,b\n1,2\n", path_in_repo="train.csv", repo_id=repo_id, repo_type="dataset")
    work = tmp_path / "ds"
    git("clone", url(live_hub, repo_id, ALICE_TOKEN, prefix="datasets/", suffix=".git"), str(work))
    assert (work / "train.csv").read_bytes() == b"a,b\n1,2\n"
    table = os.urandom(20_000)
    head = commit_files(git, work, {"data/part-0.parquet": table}, "add a shard")
    git("push", cwd=work)
    info = api.dataset_info(repo_id, files_metadata=True)
    assert info.sha == head
    shard = next(s for s in info.siblings if s.rfilename == "data/part-0.parquet")
    assert shard.lfs.sha256 == hashlib.sha256(table).hexdigest()
    # The model URL of the same name is another repo (here: none).
    proc = git("ls-remote", url(live_hub, repo_id, ALICE_TOKEN), check=False)
    assert proc.returncode != 0
