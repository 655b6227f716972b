"""Storage quotas (issue 11) through the stock clients: an upload that would take an owner past its
quota is refused whole, with the Hub's 403 and a message that says why, on every upload path (LFS
batch, Xet xorbs and shards, the commit API's inline files, git push); an admin sets quotas with
``aicommons storage quota``."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from huggingface_hub import CommitOperationAdd
from huggingface_hub.errors import HfHubHTTPError

from tests.compat import test_storage_accounting
from tests.compat.test_git import Git, url
from tests.conftest import ALICE_TOKEN, unique_name

KB = 1000

org = test_storage_accounting.org  # the fixture: a fresh organisation of alice's


def set_quota(live_hub, owner: str, size: str) -> dict:
    return json.loads(live_hub.cli("storage", "quota", "set", owner, size, "--json").stdout)


def files(api, repo) -> set[str]:
    return set(api.list_repo_files(repo))


@pytest.mark.lfs_path  # (its Xet twin: test_xet_uploads_past_the_quota_are_refused)
def test_lfs_uploads_past_the_quota_are_refused_whole(live_hub, api, org):
    repo = f"{org}/{unique_name()}"
    api.create_repo(repo)
    shown = set_quota(live_hub, org, "400kB")
    assert shown["quota_bytes"] == 400 * KB and shown["owner"] == org
    api.upload_file(path_or_fileobj=os.urandom(200 * KB), path_in_repo="fits.bin", repo_id=repo)
    before = api.list_repo_commits(repo)[0].commit_id
    with pytest.raises(HfHubHTTPError) as refused:
        api.upload_file(path_or_fileobj=os.urandom(300 * KB), path_in_repo="too-big.bin", repo_id=repo)
    assert refused.value.response.status_code == 403
    assert "Storage limit reached" in str(refused.value) and org in str(refused.value)
    # One commit of several files, one of them over the limit: nothing of it lands.
    with pytest.raises(HfHubHTTPError):
        api.create_commit(repo, operations=[
            CommitOperationAdd("small.txt", b"small\n"),
            CommitOperationAdd("big.bin", os.urandom(300 * KB))], commit_message="both or none")
    assert files(api, repo) == {".gitattributes", "fits.bin"}
    assert api.list_repo_commits(repo)[0].commit_id == before
    shown = json.loads(live_hub.cli("storage", "quota", "show", org, "--json").stdout)
    assert 200 * KB <= shown["used_bytes"] < 300 * KB and shown["percent"] > 50
    # The listing shows each repo's share of the quota.
    assert max(r.storage_percent for r in api.list_user_repos(namespace=org)) > 50
    set_quota(live_hub, org, "unlimited")
    api.upload_file(path_or_fileobj=os.urandom(300 * KB), path_in_repo="too-big.bin", repo_id=repo)
    assert "too-big.bin" in files(api, repo)
    assert set_quota(live_hub, org, "default")["quota_bytes"] is None  # the default: unlimited here


def test_inline_commits_past_the_quota_are_refused(live_hub, api, org):
    repo = f"{org}/{unique_name()}"
    api.create_repo(repo)
    used = json.loads(live_hub.cli("storage", "quota", "show", org, "--json").stdout)["used_bytes"]
    set_quota(live_hub, org, str(used + 20 * KB))
    api.upload_file(path_or_fileobj=b"a" * 1000, path_in_repo="ok.txt", repo_id=repo)  # inline: 1 kB
    with pytest.raises(HfHubHTTPError) as refused:
        api.upload_file(path_or_fileobj=b"b" * (30 * KB), path_in_repo="no.txt", repo_id=repo)
    assert refused.value.response.status_code == 403 and "Storage limit reached" in str(refused.value)
    assert files(api, repo) == {".gitattributes", "ok.txt"}
    set_quota(live_hub, org, "1")  # far past it now: cleaning up is still allowed
    api.delete_file("ok.txt", repo_id=repo)
    assert files(api, repo) == {".gitattributes"}


def test_xet_uploads_past_the_quota_are_refused(live_hub, api, org, monkeypatch, tmp_path):
    """The Xet twin of the LFS refusal: refused with the Hub's 403 and message, whether at the xorbs
    (new bytes) or at the shard (bytes the chunk store has, as a file new to the repo), and nothing
    of the refused upload is stored: no xorb, no shard, no file, no pending bytes."""
    pytest.importorskip("hf_xet")
    from huggingface_hub import constants

    from tests.compat.test_chunk_store import hub_blobs

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", False)
    blobs = hub_blobs(live_hub, tmp_path, monkeypatch)

    def chunk_store() -> set[str]:
        return {info.key for info in blobs.list_blobs("xet/")}

    repo = f"{org}/{unique_name()}"
    api.create_repo(repo)
    set_quota(live_hub, org, "1MB")
    api.upload_file(path_or_fileobj=os.urandom(300 * KB), path_in_repo="fits.bin", repo_id=repo)
    assert api.get_paths_info(repo, ["fits.bin"])[0].xet_hash  # it went through Xet
    stored = chunk_store()
    with pytest.raises(Exception) as refused:  # hf_xet reports the CAS's 403 in its own exception
        api.upload_file(path_or_fileobj=os.urandom(2_000 * KB), path_in_repo="too-big.bin", repo_id=repo)
    # hf_xet shows the status and the URL, not the body that says why (docs/deploy.md, "Storage quotas").
    assert "403 Forbidden" in str(refused.value) and "/v1/xorbs/" in str(refused.value)
    assert chunk_store() == stored
    # Bytes the chunk store already holds (alice's own repo, no quota): only a shard is sent, and refused.
    known = os.urandom(900 * KB)
    mine = f"alice/{unique_name()}"
    api.create_repo(mine)
    api.upload_file(path_or_fileobj=known, path_in_repo="known.bin", repo_id=mine)
    stored = chunk_store()
    with pytest.raises(Exception) as refused:
        api.upload_file(path_or_fileobj=known, path_in_repo="known.bin", repo_id=repo)
    assert "403 Forbidden" in str(refused.value) and "/v1/shards" in str(refused.value)
    assert chunk_store() == stored
    assert files(api, repo) == {".gitattributes", "fits.bin"}
    pending = json.loads(live_hub.cli("storage", "report", "--owner", org, "--refresh", "--json").stdout)
    assert all(r["pending_bytes"] == 0 for r in pending["repos"])  # no file of it was recorded either
    shards = [line for line in live_hub.cli("audit", "--target", "/xet-cas/", "--limit", "50").stdout.splitlines()
              if "/v1/shards -> 403" in line]
    assert shards and all(line.split("\t")[1] == "alice" for line in shards)  # refused, in the log, by name
    set_quota(live_hub, org, "default")


def test_duplicates_past_the_quota_are_refused(live_hub, api, org):
    """``duplicate_repo`` gives the copy the source's large files: they count as uploaded to its owner."""
    source = f"alice/{unique_name()}"
    api.create_repo(source)
    api.upload_file(path_or_fileobj=os.urandom(300 * KB), path_in_repo="weights.bin", repo_id=source)
    used = json.loads(live_hub.cli("storage", "quota", "show", org, "--json").stdout)["used_bytes"]
    set_quota(live_hub, org, str(used + 200 * KB))
    target = f"{org}/{unique_name()}"
    with pytest.raises(HfHubHTTPError) as refused:
        api.duplicate_repo(source, target)
    assert refused.value.response.status_code == 403 and "Storage limit reached" in str(refused.value)
    assert not api.repo_exists(target)
    set_quota(live_hub, org, str(used + 400 * KB))
    assert api.duplicate_repo(source, target).repo_id == target
    assert files(api, target) == {".gitattributes", "weights.bin"}
    set_quota(live_hub, org, "default")


def test_cross_repo_copies_past_the_quota_are_refused(live_hub, api, org, monkeypatch):
    """``hf cp hf://a/b/f hf://c/d/f`` (``copy_files``) lets the target reference the source's large
    file without uploading it again (``lfs-files/duplicate``): it counts against the target's owner."""
    pytest.importorskip("hf_xet")
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", False)  # copy_files needs the file's Xet hash
    source = f"alice/{unique_name()}"
    api.create_repo(source)
    api.upload_file(path_or_fileobj=os.urandom(300 * KB), path_in_repo="weights.bin", repo_id=source)
    target = f"{org}/{unique_name()}"
    api.create_repo(target)
    used = json.loads(live_hub.cli("storage", "quota", "show", org, "--json").stdout)["used_bytes"]
    set_quota(live_hub, org, str(used + 200 * KB))
    with pytest.raises(HfHubHTTPError) as refused:
        api.copy_files(f"hf://{source}/weights.bin", f"hf://{target}/weights.bin")
    assert refused.value.response.status_code == 403 and "Storage limit reached" in str(refused.value)
    assert files(api, target) == {".gitattributes"}
    set_quota(live_hub, org, str(used + 400 * KB))
    api.copy_files(f"hf://{source}/weights.bin", f"hf://{target}/weights.bin")
    assert files(api, target) == {".gitattributes", "weights.bin"}
    set_quota(live_hub, org, "default")


@pytest.mark.skipif(shutil.which("git") is None or shutil.which("git-lfs") is None, reason="needs git and git-lfs")
def test_git_pushes_past_the_quota_are_refused(live_hub, api, org, tmp_path):
    repo = f"{org}/{unique_name()}"
    api.create_repo(repo)
    git = Git(tmp_path / "home")
    work = tmp_path / "work"
    git("clone", url(live_hub, repo, ALICE_TOKEN), str(work))
    used = json.loads(live_hub.cli("storage", "quota", "show", org, "--json").stdout)["used_bytes"]
    set_quota(live_hub, org, str(used + 100 * KB))
    (work / "big.txt").write_bytes(os.urandom(150 * KB).hex().encode()[: 150 * KB])
    git("add", "big.txt", cwd=work)
    git("commit", "-q", "-m", "too big for the quota", cwd=work)
    pushed = git("push", "origin", "main", cwd=work, check=False)
    assert pushed.returncode != 0 and "Storage limit reached" in pushed.stderr
    assert files(api, repo) == {".gitattributes"}
    # git-lfs objects are refused at the LFS batch API, with the message git-lfs shows.
    git("reset", "-q", "--hard", "HEAD~1", cwd=work)
    git("lfs", "track", "*.bin", cwd=work)
    (work / "w.bin").write_bytes(os.urandom(150 * KB))
    git("add", ".gitattributes", "w.bin", cwd=work)
    git("commit", "-q", "-m", "lfs too big", cwd=work)
    pushed = git("push", "origin", "main", cwd=work, check=False)
    assert pushed.returncode != 0 and "Storage limit reached" in pushed.stderr
    assert files(api, repo) == {".gitattributes"}
    set_quota(live_hub, org, "unlimited")
    git("push", "origin", "main", cwd=work)
    assert "w.bin" in files(api, repo)


def test_quota_commands_refuse_bad_input(live_hub, org):
    bad = live_hub.cli("storage", "quota", "set", org, "lots", check=False)
    assert bad.returncode == 1 and "not a size" in bad.stderr
    missing = live_hub.cli("storage", "quota", "show", "nobody-by-this-name", check=False)
    assert missing.returncode == 1 and "nobody-by-this-name" in missing.stderr
