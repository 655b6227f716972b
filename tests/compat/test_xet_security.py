"""Xet attacks from issue 9 (findings 13, 14, 15, 18, 20), each replayed against a live server with
the real client or with shards and xorbs built by the project's own writers (xet/shard.py, xorb.py)."""

from __future__ import annotations

import hashlib
import os

import pytest

from aicommons.xet.hashing import chunk_hash, file_hash, from_hex, range_hash, to_hex
from aicommons.xet.shard import FileSegment, ShardFile, serialize_shard
from aicommons.xet.xorb import Scheme, serialize_xorb
from tests.compat.test_xet_download import _rebuild
from tests.conftest import ALICE_TOKEN, BOB_TOKEN, auth, unique_name

pytest.importorskip("hf_xet")

GOOD = b"GOOD-WEIGHTS " * 300
EVIL = b"EVIL-WEIGHTS " * 300


@pytest.fixture
def xet(monkeypatch, live_hub):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", False)
    return live_hub


def _cas(http, repo_id, operation, token=ALICE_TOKEN) -> dict:
    response = http.get(f"/api/models/{repo_id}/xet-{operation}-token/main", headers=auth(token) if token else {})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['accessToken']}"}


def _put_xorb(http, headers, chunks) -> bytes:
    data, digest = serialize_xorb(chunks, Scheme.NONE)
    response = http.post(f"/xet-cas/v1/xorbs/default/{to_hex(digest)}", content=data, headers=headers)
    assert response.status_code == 200, response.text
    return digest


def _entry(xorb: bytes, chunks: list[bytes], first: int = 0) -> ShardFile:
    """A well-formed file entry: ``chunks`` are chunks ``first..`` of ``xorb``."""
    nodes = [(chunk_hash(c), len(c)) for c in chunks]
    content = b"".join(chunks)
    return ShardFile(file_hash(nodes), (FileSegment(xorb, len(content), first, first + len(chunks)),),
                     (range_hash([h for h, _ in nodes]),), hashlib.sha256(content).hexdigest())


# --- finding 13: another repo's public file redefined by a duplicate shard entry ----------------------


def test_a_shard_cannot_redefine_another_repos_public_file(xet, api, bob_api, repo_id, http, tmp_path):
    api.upload_file(path_or_fileobj=GOOD, path_in_repo="model.bin", repo_id=repo_id)
    victim = api.get_paths_info(repo_id, ["model.bin"])[0].xet_hash
    assert victim == to_hex(file_hash([(chunk_hash(GOOD), len(GOOD))]))

    mine = f"bob/{unique_name('mine')}"
    bob_api.create_repo(mine)
    write = _cas(http, mine, "write", BOB_TOKEN)
    good_xorb = _put_xorb(http, write, [GOOD])  # bob downloaded the public file: he has its chunks
    evil_xorb = _put_xorb(http, write, [EVIL])
    good, own = _entry(good_xorb, [GOOD]), _entry(evil_xorb, [EVIL])
    forged = ShardFile(good.hash, own.segments, own.verification, own.sha256)  # victim's hash, other bytes
    response = http.post("/xet-cas/v1/shards", content=serialize_shard([good, forged, own]), headers=write)
    assert response.status_code == 400, response.text
    assert "twice" in response.json()["error"]

    # An identical repeat is the same definition: harmless, accepted.
    assert http.post("/xet-cas/v1/shards", content=serialize_shard([own, own]), headers=write).status_code == 200
    answer = http.get(f"/xet-cas/v1/reconstructions/{to_hex(own.hash)}", headers=_cas(http, mine, "read", BOB_TOKEN))
    assert answer.status_code == 200  # (this used to cache the shard's entries, the forged one last)
    assert _rebuild(http, answer.json(), 0, len(EVIL)) == EVIL

    public = http.get(f"/xet-cas/v1/reconstructions/{victim}", headers=_cas(http, repo_id, "read", None))
    assert _rebuild(http, public.json(), 0, len(GOOD)) == GOOD
    from huggingface_hub import hf_hub_download
    path = hf_hub_download(repo_id, "model.bin", endpoint=xet.url, token=False, cache_dir=tmp_path)
    with open(path, "rb") as f:
        assert f.read() == GOOD


# --- finding 14: a private xorb reached through a duplicate entry of one's own file --------------------


def test_a_shard_cannot_borrow_a_private_xorb(xet, api, bob_api, http):
    private = f"alice/{unique_name('private')}"
    api.create_repo(private, private=True)
    secret = os.urandom(150_000)
    api.upload_file(path_or_fileobj=secret, path_in_repo="secret.bin", repo_id=private)
    secret_hash = api.get_paths_info(private, ["secret.bin"])[0].xet_hash
    terms = http.get(f"/xet-cas/v1/reconstructions/{secret_hash}", headers=_cas(http, private, "read")).json()["terms"]
    private_xorb, chunks = from_hex(terms[0]["hash"]), terms[0]["range"]["end"]  # what bob learnt somehow

    mine = f"bob/{unique_name('mine')}"
    bob_api.create_repo(mine)
    write = _cas(http, mine, "write", BOB_TOKEN)
    decoy = os.urandom(5000)
    own = _entry(_put_xorb(http, write, [decoy]), [decoy])
    borrow = ShardFile(own.hash, (FileSegment(private_xorb, len(secret), 0, chunks),), own.verification, own.sha256)
    response = http.post("/xet-cas/v1/shards", content=serialize_shard([own, borrow]), headers=write)
    assert response.status_code == 400, response.text

    read = _cas(http, mine, "read", BOB_TOKEN)
    answer = http.get(f"/xet-cas/v1/reconstructions/{to_hex(own.hash)}", headers=read)
    assert answer.status_code == 404  # the shard was refused as a whole: bob's file is not there either
    assert http.post("/xet-cas/v1/shards", content=serialize_shard([own]), headers=write).status_code == 200
    answer = http.get(f"/xet-cas/v1/reconstructions/{to_hex(own.hash)}", headers=read).json()
    assert set(answer["fetch_info"]) == {to_hex(own.segments[0].xorb_hash)}
