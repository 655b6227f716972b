"""Removed secrets stop being served at once (issue 9 finding 19): after ``super_squash_history`` or
a force-push, an old commit (and a file only it held) is no longer readable by revision, nor
fetchable with git by id, and ``aicommons gc --apply`` purges its objects from the git store."""

from __future__ import annotations

import hashlib
import os
import subprocess

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, hf_hub_download
from huggingface_hub.errors import RevisionNotFoundError

from tests.compat.test_git import Git, commit_files, url
from tests.conftest import ALICE_TOKEN, auth, unique_name

SECRET = b"AWS_SECRET_ACCESS_KEY=abcd1234-leaked\n"


@pytest.fixture
def git(tmp_path) -> Git:
    return Git(tmp_path / "home")


def fetch_by_id(git: Git, tmp_path, remote: str, oid: str, *extra: str) -> subprocess.CompletedProcess:
    work = tmp_path / f"fetch-{unique_name()}"  # a fresh repo: it has none of the objects yet
    git("init", "-q", str(work))
    return git("-c", "protocol.version=2", "fetch", *extra, remote, oid, cwd=work, check=False)


def hub_blobs(live_hub, tmp_path, monkeypatch):
    from aicommons.storage import open_blob_store

    for name, value in live_hub.env.items():  # the bucket's credentials, as the server has them
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    url = live_hub.env.get("AICOMMONS_STORAGE_URL") or f"file://{live_hub.data_dir / 'blobs'}"
    return open_blob_store(url, tmp_path)


def blob_id(data: bytes) -> str:
    import hashlib

    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@pytest.mark.lfs_path  # (its Xet twin: test_a_secret_uploaded_through_xet_is_gone_at_once_and_purged)
def test_squashed_secret_is_gone_at_once_and_purged(live_hub, api, http, git, tmp_path, monkeypatch):
    repo_id = f"alice/{unique_name('leak')}"
    api.create_repo(repo_id)
    lfs_secret = SECRET * 50 + b"private weights"
    leaked = api.create_commit(repo_id, [CommitOperationAdd("config.env", SECRET),
                                         CommitOperationAdd("secret.bin", lfs_secret),  # LFS (*.bin)
                                         CommitOperationAdd("model.txt", b"weights v1\n")],
                               commit_message="oops").oid
    lfs_oid = hashlib.sha256(lfs_secret).hexdigest()
    blobs = hub_blobs(live_hub, tmp_path, monkeypatch)  # the hub's own blob store: local disk or the bucket
    lfs_key = f"lfs/{lfs_oid[:2]}/{lfs_oid[2:4]}/{lfs_oid}"
    assert blobs.exists(lfs_key)
    api.create_commit(repo_id, [CommitOperationDelete("config.env"), CommitOperationDelete("secret.bin")],
                      commit_message="remove the secrets")
    remote = url(live_hub, repo_id, ALICE_TOKEN)
    assert fetch_by_id(git, tmp_path, remote, leaked).returncode == 0  # still in history: served

    api.super_squash_history(repo_id)
    head = api.model_info(repo_id).sha
    # By revision, over HTTP: not found, as for an id that never existed.
    r = http.get(f"/{repo_id}/resolve/{leaked}/config.env")
    assert r.status_code == 404 and r.headers["x-error-code"] == "RevisionNotFound"
    assert http.get(f"/api/models/{repo_id}/tree/{leaked}").status_code == 404
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(repo_id, "config.env", revision=leaked, cache_dir=tmp_path / "cache")
    # By id, with git: neither the commit nor the secret's blob (as a partial clone would ask).
    refused = fetch_by_id(git, tmp_path, remote, leaked)
    assert refused.returncode != 0 and "not our ref" in refused.stderr
    refused = fetch_by_id(git, tmp_path, remote, blob_id(SECRET), "--filter=blob:none")
    assert refused.returncode != 0 and "not our ref" in refused.stderr
    # What the refs reach is served as before: the head by id, a clone, a partial clone's blobs.
    assert fetch_by_id(git, tmp_path, remote, head).returncode == 0
    clone = tmp_path / "clone"
    git("clone", "--filter=blob:none", remote, str(clone))
    assert (clone / "model.txt").read_bytes() == b"weights v1\n" and not (clone / "config.env").exists()

    # The purge: the objects leave the git store.
    store = next(p for p in (live_hub.data_dir / "git").glob("*/*.git")
                 if subprocess.run(["git", "--git-dir", str(p), "cat-file", "-e", head]).returncode == 0)
    assert subprocess.run(["git", "--git-dir", str(store), "cat-file", "-e", blob_id(SECRET)]).returncode == 0
    live_hub.cli("gc", "--apply", "--grace-hours", "0")
    for oid in (leaked, blob_id(SECRET)):
        assert subprocess.run(["git", "--git-dir", str(store), "cat-file", "-e", oid],
                              capture_output=True).returncode != 0, oid
    assert subprocess.run(["git", "--git-dir", str(store), "fsck", "--no-progress"], capture_output=True).returncode == 0
    assert not blobs.exists(lfs_key)  # the LFS object only the old history pointed at
    assert hf_hub_download(repo_id, "model.txt", cache_dir=tmp_path / "cache2", token=ALICE_TOKEN)


def test_force_pushed_commit_is_gone_at_once(live_hub, api, http, git, tmp_path):
    repo_id = f"alice/{unique_name('force')}"
    api.create_repo(repo_id)
    work = tmp_path / "work"
    remote = url(live_hub, repo_id, ALICE_TOKEN)
    git("clone", remote, str(work))
    base = git.head(work)
    leaked = commit_files(git, work, {"token.txt": SECRET}, "oops")
    git("push", "origin", "main", cwd=work)
    assert http.get(f"/{repo_id}/resolve/{leaked}/token.txt").content == SECRET
    git("reset", "--hard", base, cwd=work)
    git("push", "--force", "origin", "main", cwd=work)
    r = http.get(f"/{repo_id}/resolve/{leaked}/token.txt")
    assert r.status_code == 404 and r.headers["x-error-code"] == "RevisionNotFound"
    refused = fetch_by_id(git, tmp_path, remote, leaked)
    assert refused.returncode != 0 and "not our ref" in refused.stderr
    assert http.get(f"/{repo_id}/resolve/{base}/README.md").status_code in (200, 404)  # the base still resolves
    assert http.get(f"/api/models/{repo_id}/revision/{base}").status_code == 200


def lfs_download(http, repo_id: str, *contents: bytes) -> dict[bytes, dict]:
    """The LFS batch API's answer for downloading each of ``contents``, by content."""
    objects = [{"oid": hashlib.sha256(c).hexdigest(), "size": len(c)} for c in contents]
    r = http.post(f"/{repo_id}.git/info/lfs/objects/batch", headers=auth(ALICE_TOKEN),
                  json={"operation": "download", "objects": objects})
    assert r.status_code == 200, r.text
    by_oid = {o["oid"]: o for o in r.json()["objects"]}
    return {c: by_oid[hashlib.sha256(c).hexdigest()] for c in contents}


def served(answer: dict) -> bool:
    if "actions" in answer:
        return True
    assert answer["error"]["code"] == 404, answer
    return False


def test_lfs_objects_rewritten_away_are_not_served_before_gc(live_hub, api, http, git, tmp_path):
    """An LFS object only a rewritten-away history pointed at stops being served at once, through
    the batch API and through links minted before; objects the refs still reach, and ones committed
    after the rewrite, are served as before (issue 9)."""
    repo_id = f"alice/{unique_name('lfsleak')}"
    api.create_repo(repo_id)
    weights, secret, later = b"weights " * 200, SECRET * 60, b"later " * 200
    api.create_commit(repo_id, [CommitOperationAdd("keep.bin", weights), CommitOperationAdd("secret.bin", secret)],
                      commit_message="oops")
    link = lfs_download(http, repo_id, secret)[secret]["actions"]["download"]["href"]
    assert httpx.get(link, follow_redirects=True).content == secret  # (on object storage: a redirect to the bucket)
    api.create_commit(repo_id, [CommitOperationDelete("secret.bin")], commit_message="remove the secret")
    assert served(lfs_download(http, repo_id, secret)[secret])  # still in history: served

    api.super_squash_history(repo_id)
    answers = lfs_download(http, repo_id, weights, secret)
    assert served(answers[weights]) and not served(answers[secret])
    r = httpx.get(link)  # a link minted before the squash
    assert r.status_code == 404 and r.headers["x-error-code"] == "EntryNotFound"
    assert hf_hub_download(repo_id, "keep.bin", cache_dir=tmp_path / "c1", token=ALICE_TOKEN)

    # History grows again after the rewrite: new objects, and the old one committed anew, are served.
    api.create_commit(repo_id, [CommitOperationAdd("later.bin", later)], commit_message="later")
    assert served(lfs_download(http, repo_id, later)[later])
    api.create_commit(repo_id, [CommitOperationAdd("again.bin", secret)], commit_message="on purpose this time")
    assert served(lfs_download(http, repo_id, secret)[secret])

    # A deleted branch takes the objects only it pointed at with it.
    branch_only = b"experiment " * 200
    api.create_branch(repo_id, branch="exp")
    api.create_commit(repo_id, [CommitOperationAdd("exp.bin", branch_only)], commit_message="exp", revision="exp")
    assert served(lfs_download(http, repo_id, branch_only)[branch_only])
    api.delete_branch(repo_id, branch="exp")
    assert not served(lfs_download(http, repo_id, branch_only)[branch_only])


def test_force_push_stops_serving_lfs_objects_it_dropped(live_hub, api, http, git, tmp_path):
    repo_id = f"alice/{unique_name('lfsforce')}"
    api.create_repo(repo_id)
    work = tmp_path / "work"
    remote = url(live_hub, repo_id, ALICE_TOKEN)
    api.create_commit(repo_id, [CommitOperationAdd("model.txt", b"v1\n")], commit_message="base")
    base = api.model_info(repo_id).sha
    pushed = b"pushed by mistake " * 100
    api.create_commit(repo_id, [CommitOperationAdd("big.bin", pushed)], commit_message="oops")
    assert served(lfs_download(http, repo_id, pushed)[pushed])
    git("-c", "lfs.fetchexclude=*", "clone", remote, str(work))
    git("reset", "--hard", base, cwd=work)
    git("push", "--force", "origin", "main", cwd=work)
    assert not served(lfs_download(http, repo_id, pushed)[pushed])


def shards_naming(blobs, file_hash: str) -> list[str]:
    """The stored shards that describe the file ``file_hash``."""
    from aicommons.xet.hashing import from_hex
    from aicommons.xet.keys import SHARD_PREFIX
    from aicommons.xet.shard import parse_shard

    found = []
    for info in blobs.list_blobs(SHARD_PREFIX):
        with blobs.open(info.key) as f:
            if any(entry.hash == from_hex(file_hash) for entry in parse_shard(f.read()).files):
                found.append(info.key)
    return found


def test_a_secret_uploaded_through_xet_is_gone_at_once_and_purged(xet, api, http, tmp_path, monkeypatch):
    """The Xet twin of the purge above: after a squash, the secret's file is not reconstructed nor
    served by sha256; after ``gc --apply`` its xorb and shard have left the chunk store and a xorb
    link minted before the squash reads nothing."""
    from aicommons.xet.keys import xorb_key
    from tests.compat.test_xet_security import _cas

    repo_id = f"alice/{unique_name('xetleak')}"
    api.create_repo(repo_id)
    secret = SECRET + os.urandom(300_000)  # random: no other file shares its chunks
    api.create_commit(repo_id, [CommitOperationAdd("secret.bin", secret),
                                CommitOperationAdd("model.txt", b"weights v1\n")], commit_message="oops")
    file_hash = api.get_paths_info(repo_id, ["secret.bin"])[0].xet_hash
    assert file_hash, "the secret did not go through Xet"
    answer = http.get(f"/xet-cas/v1/reconstructions/{file_hash}", headers=_cas(http, repo_id, "read"))
    assert answer.status_code == 200, answer.text
    xorbs = {term["hash"] for term in answer.json()["terms"]}
    links = [(info["url"], info["url_range"]) for infos in answer.json()["fetch_info"].values() for info in infos]

    def read_link(link, span) -> httpx.Response:
        return httpx.get(link, headers={"Range": f"bytes={span['start']}-{span['end']}"}, timeout=30)

    assert all(read_link(*link).status_code in (200, 206) for link in links)
    blobs = hub_blobs(xet, tmp_path, monkeypatch)
    assert all(blobs.exists(xorb_key(x)) for x in xorbs)
    naming = shards_naming(blobs, file_hash)
    assert naming, "no stored shard describes the secret's file"
    oid = hashlib.sha256(secret).hexdigest()
    assert served(lfs_download(http, repo_id, secret)[secret])

    api.create_commit(repo_id, [CommitOperationDelete("secret.bin")], commit_message="remove the secret")
    api.super_squash_history(repo_id)
    # At once: no reconstruction, no download by sha256, nothing by revision.
    answer = http.get(f"/xet-cas/v1/reconstructions/{file_hash}", headers=_cas(http, repo_id, "read"))
    assert answer.status_code == 404, answer.text
    assert not served(lfs_download(http, repo_id, secret)[secret])

    xet.cli("gc", "--apply", "--grace-hours", "0")
    # Purged: the xorbs and the shard that held the secret are gone from the chunk store, and links
    # minted before read nothing.
    assert not [x for x in xorbs if blobs.exists(xorb_key(x))]
    assert not shards_naming(blobs, file_hash)
    for link in links:  # our own links answer 404; a bucket's presigned ones 403 or 404, as S3 does
        assert read_link(*link).status_code in ((404,) if link[0].startswith(xet.url) else (403, 404))
    assert not blobs.exists(f"lfs/{oid[:2]}/{oid[2:4]}/{oid}")
    assert hf_hub_download(repo_id, "model.txt", cache_dir=tmp_path / "cache", token=ALICE_TOKEN)
