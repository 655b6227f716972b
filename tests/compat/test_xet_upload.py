"""Uploads through Xet with the real, unmodified clients (huggingface_hub 2.4 + hf_xet, datasets).

tests/conftest.py disables Xet for the whole session (``HF_HUB_DISABLE_XET=1``, read into
``huggingface_hub.constants`` at import time); these tests turn it back on for themselves through
that constant, which is what ``is_xet_available()`` consults.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re

import httpx
import pytest

from aicommons.xet.hashing import chunk_hash, file_hash, range_hash, to_hex
from aicommons.xet.shard import FileSegment, ShardFile, parse_shard, serialize_shard
from aicommons.xet.xorb import CHUNK_HEADER_BYTES, Scheme, serialize_xorb
from tests.conftest import ALICE_TOKEN, BOB_TOKEN, auth, unique_name

pytest.importorskip("hf_xet")

BOB_READ_TOKEN = "hf_bob_read_token_for_xet_tests_0004"


def _download(api, repo_id, path, **kwargs) -> bytes:
    from huggingface_hub import hf_hub_download

    with open(hf_hub_download(repo_id, path, endpoint=api.endpoint, token=ALICE_TOKEN, **kwargs), "rb") as f:
        return f.read()


def _stored_shards(live_hub) -> list | None:
    """The shards the hub kept, when it stores blobs on local disk (None on object storage)."""
    if live_hub.env.get("AICOMMONS_STORAGE_URL", "").split(":")[0] not in ("", "file"):
        return None
    root = live_hub.data_dir / "blobs" / "xet" / "shards"
    return [parse_shard(p.read_bytes()) for p in root.rglob("*") if p.is_file()]


def _xet_token(http, repo_id, token=ALICE_TOKEN) -> dict:
    response = http.get(f"/api/models/{repo_id}/xet-write-token/main", headers=auth(token))
    assert response.status_code == 200, response.text
    return response.json()


def test_upload_file_and_a_file_spanning_two_xorbs(xet, api, repo_id, tmp_path):
    rng = random.Random(1)
    first = rng.randbytes(3 * 1024 * 1024 + 123)  # ~50 chunks of ~64 KiB
    path = tmp_path / "weights.bin"
    path.write_bytes(first)
    info = api.upload_file(path_or_fileobj=str(path), path_in_repo="weights.bin", repo_id=repo_id)
    assert info.oid
    assert _download(api, repo_id, "weights.bin") == first
    entry = api.get_paths_info(repo_id, ["weights.bin"])[0]
    assert entry.lfs.sha256 == hashlib.sha256(first).hexdigest() and entry.size == len(first)

    # Extending the file: hf_xet reuses the first upload's chunks (its local dedup) and uploads the
    # rest in a new xorb, so the server rebuilds one file from two xorbs.
    second = first + rng.randbytes(1024 * 1024)
    path.write_bytes(second)
    api.upload_file(path_or_fileobj=str(path), path_in_repo="weights-v2.bin", repo_id=repo_id)
    assert _download(api, repo_id, "weights-v2.bin") == second
    shards = _stored_shards(xet)
    if shards is not None:  # blobs on local disk: look at what the client sent
        entries = [f for shard in shards for f in shard.files if f.sha256 == hashlib.sha256(second).hexdigest()]
        assert entries and len({s.xorb_hash for s in entries[0].segments}) == 2


def test_upload_folder_with_duplicates_and_snapshot_download(xet, api, repo_id, tmp_path):
    from huggingface_hub import snapshot_download

    folder = tmp_path / "model"
    (folder / "shards").mkdir(parents=True)
    same = os.urandom(300_000)
    files = {
        "a.bin": same,
        "shards/copy-of-a.bin": same,
        "shards/b.safetensors": os.urandom(700_000),
        "c.bin": bytes(range(256)) * 4000,  # compressible
        "notes.txt": b"plain text travels inline\n",
    }
    for name, content in files.items():
        (folder / name).write_bytes(content)
    api.upload_folder(folder_path=str(folder), repo_id=repo_id)
    local = snapshot_download(repo_id, endpoint=api.endpoint, token=ALICE_TOKEN, cache_dir=str(tmp_path / "cache"))
    for name, content in files.items():
        with open(os.path.join(local, name), "rb") as f:
            assert f.read() == content
    info = {e.path: e for e in api.get_paths_info(repo_id, list(files))}
    assert info["a.bin"].lfs.sha256 == info["shards/copy-of-a.bin"].lfs.sha256 == hashlib.sha256(same).hexdigest()
    assert info["notes.txt"].lfs is None


def test_datasets_push_to_hub_with_xet(xet, api):
    import datasets

    repo = f"alice/{unique_name('xet-ds')}"
    rows = {"text": [os.urandom(16).hex() for _ in range(2000)], "n": list(range(2000))}
    datasets.Dataset.from_dict(rows).push_to_hub(repo, token=ALICE_TOKEN)
    back = datasets.load_dataset(repo, split="train", token=ALICE_TOKEN)
    assert back["text"] == rows["text"] and back["n"] == rows["n"]


def test_pull_request_upload_by_a_non_owner(xet, api, bob_api, repo_id):
    content = os.urandom(500_000)
    result = bob_api.upload_file(path_or_fileobj=content, path_in_repo="pr.bin", repo_id=repo_id, create_pr=True)
    assert result.pr_revision == "refs/pr/1"
    assert _download(api, repo_id, "pr.bin", revision="refs/pr/1") == content
    assert "pr.bin" not in api.list_repo_files(repo_id)


def test_tokens_are_refused_without_upload_rights(xet, api, repo_id, http):
    from huggingface_hub import HfApi

    xet.cli("token", "create", "bob", "--role", "read", "--value", BOB_READ_TOKEN, check=False)
    for token, status in ((BOB_READ_TOKEN, 403), (None, 401)):
        headers = auth(token) if token else {}
        assert http.get(f"/api/models/{repo_id}/xet-write-token/main", headers=headers).status_code == status
        client = HfApi(endpoint=api.endpoint, token=token or False)
        # Refused at the first door the client knocks on: preupload (the policy decides before the
        # oids of the repo's files are answered) or, failing that, the Xet token.
        with pytest.raises(Exception, match=f"(?s){status}.*(xet-write-token|preupload)|(xet-write-token|preupload).*{status}"):
            client.upload_file(path_or_fileobj=os.urandom(100_000), path_in_repo="x.bin", repo_id=repo_id,
                               create_pr=True)
    private = f"alice/{unique_name('private')}"
    api.create_repo(private, private=True)
    assert http.get(f"/api/models/{private}/xet-write-token/main", headers=auth(BOB_TOKEN)).status_code == 404


def test_write_token_shape(xet, repo_id, http):
    response = http.get(f"/api/models/{repo_id}/xet-write-token/None?create_pr=1", headers=auth(ALICE_TOKEN))
    body = response.json()
    assert set(body) == {"accessToken", "exp", "casUrl"}
    assert response.headers["X-Xet-Access-Token"] == body["accessToken"]
    assert response.headers["X-Xet-Cas-Url"] == body["casUrl"]
    assert re.fullmatch(re.escape(f"{xet.url}/xet-cas/") + "[0-9a-f]{16}", body["casUrl"])  # the store's id
    assert int(response.headers["X-Xet-Token-Expiration"]) == body["exp"]


def test_cas_refuses_tampered_xorbs_and_bad_tokens(xet, repo_id, http):
    cas = _xet_token(http, repo_id)
    headers = {"Authorization": f"Bearer {cas['accessToken']}"}
    chunks = [os.urandom(20_000), os.urandom(30_000)]
    data, digest = serialize_xorb(chunks, Scheme.NONE)
    url = f"/xet-cas/v1/xorbs/default/{to_hex(digest)}"
    tampered = bytearray(data)
    tampered[CHUNK_HEADER_BYTES + 5] ^= 1

    response = http.post(url, content=bytes(tampered), headers=headers)
    assert response.status_code == 400
    assert "Rejected xorb" in response.json()["error"] and "hashes to" in response.json()["error"]
    stored = xet.data_dir / "blobs" / "xet" / "xorbs" / to_hex(digest)[:2] / to_hex(digest)[2:4] / to_hex(digest)
    local = xet.env.get("AICOMMONS_STORAGE_URL", "").split(":")[0] in ("", "file")
    assert not local or not stored.exists()  # nothing stored

    for bad in ({}, auth(ALICE_TOKEN), {"Authorization": "Bearer " + cas["accessToken"][:-2] + "xx"}):
        assert http.post(url, content=data, headers=bad).status_code == 401

    # Inserted or already there: the same answer (it would tell that someone else holds the data).
    assert http.post(url, content=data, headers=headers).json() == {"was_inserted": True}
    assert http.post(url, content=data, headers=headers).json() == {"was_inserted": True}
    assert not local or stored.exists()
    assert http.get(f"/xet-cas/v1/chunks/default/{to_hex(chunk_hash(chunks[0]))}", headers=headers).status_code == 404


def test_cas_refuses_a_shard_the_xorbs_do_not_back(xet, repo_id, http):
    cas = _xet_token(http, repo_id)
    headers = {"Authorization": f"Bearer {cas['accessToken']}"}
    chunks = [os.urandom(10_000), os.urandom(10_000)]
    data, digest = serialize_xorb(chunks)
    assert http.post(f"/xet-cas/v1/xorbs/default/{to_hex(digest)}", content=data, headers=headers).status_code == 200
    content = b"".join(chunks)
    sha = hashlib.sha256(content).hexdigest()
    nodes = [(chunk_hash(c), len(c)) for c in chunks]
    good = ShardFile(file_hash(nodes), (FileSegment(digest, len(content), 0, 2),),
                     (range_hash([h for h, _ in nodes]),), sha)
    # Same file, but the uploader does not know the chunk hashes: the verification entry is wrong.
    guess = ShardFile(file_hash(nodes[:1]), (FileSegment(digest, len(chunks[0]), 0, 1),), (b"\x00" * 32,), None)

    response = http.post("/xet-cas/v1/shards", content=serialize_shard([good, guess]), headers=headers)
    assert response.status_code == 400 and "cannot be verified" in response.json()["error"]
    assert not _lfs_available(http, repo_id, sha, len(content))  # all or nothing

    missing = ShardFile(good.hash, (FileSegment(b"\x05" * 32, len(content), 0, 2),), good.verification, sha)
    response = http.post("/xet-cas/v1/shards", content=serialize_shard([missing]), headers=headers)
    assert response.status_code == 400 and "cannot be verified" in response.json()["error"]
    assert http.post("/xet-cas/v1/shards", content=b"not a shard", headers=headers).status_code == 400

    assert http.post("/xet-cas/v1/shards", content=serialize_shard([good]), headers=headers).json() == {"result": 1}
    assert _lfs_available(http, repo_id, sha, len(content))


def _lfs_available(http, repo_id, oid, size) -> bool:
    body = {"operation": "download", "objects": [{"oid": oid, "size": size}]}
    response = http.post(f"/{repo_id}.git/info/lfs/objects/batch", content=json.dumps(body),
                         headers={**auth(ALICE_TOKEN), "Content-Type": "application/vnd.git-lfs+json"})
    assert response.status_code == 200
    return "actions" in response.json()["objects"][0]


def test_cross_repo_copy_of_an_xet_file(xet, api, bob_api, tmp_path):
    from huggingface_hub import CommitOperationCopy

    source, target = f"alice/{unique_name('src')}", f"alice/{unique_name('dst')}"
    api.create_repo(source)
    api.create_repo(target)
    data = os.urandom(300_000)
    api.upload_file(path_or_fileobj=data, path_in_repo="w.bin", repo_id=source)
    api.create_commit(target, operations=[CommitOperationCopy("w.bin", "copied.bin", src_repo_id=source,
                                                              src_repo_type="model")],
                      commit_message="copy across repos")
    assert _download(api, target, "copied.bin", cache_dir=tmp_path) == data
    # bob may not make his repo reference alice's private objects through the same endpoint
    api.update_repo_settings(source, private=True)
    mine = f"bob/{unique_name('dst')}"
    bob_api.create_repo(mine)
    oid = api.model_info(source, files_metadata=True).siblings[-1].lfs.sha256
    r = httpx.post(f"{api.endpoint}/api/models/{source}/lfs-files/duplicate", headers=auth(BOB_TOKEN),
                   json={"target": {"type": "model", "name": mine}, "files": [{"sha256": oid, "filename": "x"}]})
    assert r.status_code == 404 and r.headers["x-error-code"] == "RepoNotFound"
