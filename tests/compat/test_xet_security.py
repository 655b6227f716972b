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


# --- finding 18: transfer tokens bound to the repo's identity and to the credential that minted them ----


def test_a_token_for_a_deleted_repo_writes_nowhere(xet, api, bob_api, http):
    gone = f"alice/{unique_name('gone')}"
    api.create_repo(gone)
    write = _cas(http, gone, "write")
    read_public = _cas(http, gone, "read", None)
    api.delete_repo(gone)
    # The next repo created takes the deleted one's database id on SQLite: bob's private repo.
    private = f"bob/{unique_name('private')}"
    bob_api.create_repo(private, private=True)

    content = os.urandom(3000)
    xorb, digest = serialize_xorb([content])
    assert http.post(f"/xet-cas/v1/xorbs/default/{to_hex(digest)}", content=xorb, headers=write).status_code == 401
    entry = _entry(digest, [content])
    assert http.post("/xet-cas/v1/shards", content=serialize_shard([entry]), headers=write).status_code == 401
    assert http.get(f"/xet-cas/v1/reconstructions/{to_hex(entry.hash)}", headers=read_public).status_code == 401
    # Nothing of the old token's reached bob's repo.
    batch = {"operation": "download", "objects": [{"oid": entry.sha256, "size": len(content)}]}
    objects = http.post(f"/{private}.git/info/lfs/objects/batch", json=batch,
                        headers={**auth(BOB_TOKEN), "Content-Type": "application/vnd.git-lfs+json"}).json()["objects"]
    assert "actions" not in objects[0]


def test_revoking_the_access_token_cancels_its_xet_tokens(xet, api, repo_id, http):
    value = f"hf_{os.urandom(16).hex()}"
    xet.cli("token", "create", "alice", "--role", "write", "--value", value)
    write, read = _cas(http, repo_id, "write", value), _cas(http, repo_id, "read", value)
    content = os.urandom(3000)
    xorb, digest = serialize_xorb([content])
    url = f"/xet-cas/v1/xorbs/default/{to_hex(digest)}"
    assert http.post(url, content=xorb, headers=write).status_code == 200
    entry = _entry(digest, [content])
    assert http.post("/xet-cas/v1/shards", content=serialize_shard([entry]), headers=write).status_code == 200
    xet.cli("token", "revoke", value)
    assert http.post(url, content=xorb, headers=write).status_code == 401
    assert http.post("/xet-cas/v1/shards", content=serialize_shard([entry]), headers=write).status_code == 401
    assert http.get(f"/xet-cas/v1/reconstructions/{to_hex(entry.hash)}", headers=read).status_code == 401
    # A new token with the same name, possibly the same database id, does not revive them.
    xet.cli("token", "create", "alice", "--role", "write", "--value", f"hf_{os.urandom(16).hex()}")
    assert http.post(url, content=xorb, headers=write).status_code == 401


# --- finding 20: no existence oracle for xorbs, Xet writes audited ------------------------------------


def test_the_cas_does_not_tell_whether_a_private_xorb_exists(xet, api, bob_api, http):
    private = f"alice/{unique_name('private')}"
    api.create_repo(private, private=True)
    secret = os.urandom(100_000)
    api.upload_file(path_or_fileobj=secret, path_in_repo="secret.bin", repo_id=private)
    secret_hash = api.get_paths_info(private, ["secret.bin"])[0].xet_hash
    terms = http.get(f"/xet-cas/v1/reconstructions/{secret_hash}", headers=_cas(http, private, "read")).json()["terms"]
    existing, chunks = terms[0]["hash"], terms[0]["range"]["end"]
    missing = to_hex(os.urandom(32))

    mine = f"bob/{unique_name('mine')}"
    bob_api.create_repo(mine)
    write = _cas(http, mine, "write", BOB_TOKEN)
    heads = [http.head(f"/xet-cas/v1/xorbs/default/{x}", headers=write) for x in (existing, missing)]
    assert heads[0].status_code == heads[1].status_code and heads[0].status_code != 200

    def refusal(xorb_hex: str) -> tuple[int, str]:
        entry = ShardFile(os.urandom(32), (FileSegment(from_hex(xorb_hex), len(secret), 0, chunks),),
                          (os.urandom(32),), None)
        response = http.post("/xet-cas/v1/shards", content=serialize_shard([entry]), headers=write)
        return response.status_code, response.json()["error"].replace(xorb_hex, "X").split(" segment")[1]

    assert refusal(existing) == refusal(missing)
    assert refusal(existing)[0] == 400

    from aicommons.xet.shard import ShardChunk, ShardXorb
    def xorb_refusal(xorb_hex: str) -> tuple[int, str]:
        described = ShardXorb(from_hex(xorb_hex), (ShardChunk(os.urandom(32), 0, 10),), 10, 0)
        response = http.post("/xet-cas/v1/shards", content=serialize_shard([], [described]), headers=write)
        return response.status_code, response.json()["error"].replace(xorb_hex, "X")

    assert xorb_refusal(existing) == xorb_refusal(missing)


def test_xet_writes_are_in_the_audit_log(xet, bob_api, http):
    mine = f"bob/{unique_name('audited')}"
    bob_api.create_repo(mine)
    write = _cas(http, mine, "write", BOB_TOKEN)
    content = os.urandom(3000)
    xorb, digest = serialize_xorb([content])
    assert http.post(f"/xet-cas/v1/xorbs/default/{to_hex(digest)}", content=xorb, headers=write).status_code == 200
    shard = serialize_shard([_entry(digest, [content])])
    assert http.post("/xet-cas/v1/shards", content=shard, headers=write).status_code == 200
    assert http.post("/xet-cas/v1/shards", content=b"junk", headers=write).status_code == 400
    log = xet.cli("audit", "--actor", "bob", "--target", "/xet-cas/", "--limit", "1000").stdout
    assert f"POST /xet-cas/v1/xorbs/default/{to_hex(digest)} -> 200" in log
    assert "POST /xet-cas/v1/shards -> 200" in log and "POST /xet-cas/v1/shards -> 400" in log


# --- finding 15: what one shard, and one account, may make the server rebuild ---------------------------


def _repeat_entry(xorb: bytes, chunks: list[bytes], times: int) -> ShardFile:
    """A file made of the whole xorb ``times`` over: one segment per repetition."""
    nodes = [(chunk_hash(c), len(c)) for c in chunks] * times
    proof = range_hash([chunk_hash(c) for c in chunks])
    size = sum(map(len, chunks))
    digest = hashlib.sha256()
    for _ in range(times):
        for c in chunks:
            digest.update(c)
    return ShardFile(file_hash(nodes), (FileSegment(xorb, size, 0, len(chunks)),) * times, (proof,) * times,
                     digest.hexdigest())


def test_a_tiny_xorb_cannot_become_a_huge_file(xet, bob_api, http):
    mine = f"bob/{unique_name('amp')}"
    bob_api.create_repo(mine)
    write = _cas(http, mine, "write", BOB_TOKEN)
    zeros = [bytes(128 * 1024)] * 8  # 1 MiB of data, ~4 KB on the wire
    data, digest = serialize_xorb(zeros, Scheme.LZ4)
    assert len(data) < 10_000
    assert http.post(f"/xet-cas/v1/xorbs/default/{to_hex(digest)}", content=data, headers=write).status_code == 200

    big = _repeat_entry(digest, zeros, 72)  # 72 MiB from 128 KiB of distinct chunks
    response = http.post("/xet-cas/v1/shards", content=serialize_shard([big]), headers=write)
    assert response.status_code == 413, response.text
    assert "distinct chunks" in response.json()["error"]
    batch = {"operation": "download", "objects": [{"oid": big.sha256, "size": big.size}]}
    objects = http.post(f"/{mine}.git/info/lfs/objects/batch", json=batch,
                        headers={**auth(BOB_TOKEN), "Content-Type": "application/vnd.git-lfs+json"}).json()["objects"]
    assert "actions" not in objects[0]

    small = _repeat_entry(digest, zeros, 4)  # repetition within bounds still works
    assert http.post("/xet-cas/v1/shards", content=serialize_shard([small]), headers=write).status_code == 200


@pytest.fixture(scope="module")
def stingy_hub(tmp_path_factory):
    import socket
    import subprocess
    import sys

    from tests.conftest import start_hub, stop_hub

    data = tmp_path_factory.mktemp("stingy") / "data"
    data.mkdir()
    env = {**os.environ, "AICOMMONS_DATA_DIR": str(data)}
    for args in (["user", "create", "erin"], ["token", "create", "erin", "--value", "hf_erin_xet_0000000000000"]):
        subprocess.run([sys.executable, "-m", "aicommons.cli.main", *args], env=env, check=True, capture_output=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    hub = start_hub(data, port, AICOMMONS_XET_REBUILD_ALLOWANCE_BYTES="1000000")
    try:
        yield hub
    finally:
        stop_hub(hub)


def test_an_account_rebuilds_only_what_its_uploads_back(stingy_hub):
    import httpx

    token = "hf_erin_xet_0000000000000"
    with httpx.Client(base_url=stingy_hub.url, timeout=60) as http:
        assert http.post("/api/repos/create", json={"name": "m", "type": "model"}, headers=auth(token)).status_code == 200
        write = _cas(http, "erin/m", "write", token)
        chunk = [os.urandom(50_000)]
        digest = _put_xorb(http, write, chunk)  # 50 KB received: 1 MB allowance + 8 x 50 KB
        statuses = []
        for times in (10, 11, 12):  # 500 KB, 550 KB, 600 KB of new files
            shard = serialize_shard([_repeat_entry(digest, chunk, times)])
            statuses.append(http.post("/xet-cas/v1/shards", content=shard, headers=write).status_code)
        assert statuses == [200, 200, 429]
        refused = http.post("/xet-cas/v1/shards", content=serialize_shard([_repeat_entry(digest, chunk, 12)]),
                            headers=write)
        assert refused.status_code == 429 and 0 < int(refused.headers["Retry-After"]) <= 3600
        # A file the hub holds already is not rebuilt: it costs nothing.
        again = serialize_shard([_repeat_entry(digest, chunk, 10)])
        assert http.post("/xet-cas/v1/shards", content=again, headers=write).status_code == 200
        # Uploading more earns more.
        _put_xorb(http, write, [os.urandom(100_000)])
        shard = serialize_shard([_repeat_entry(digest, chunk, 12)])
        assert http.post("/xet-cas/v1/shards", content=shard, headers=write).status_code == 200


# --- finding 20: the 3,900-byte file that would not upload --------------------------------------------


def test_a_client_cache_from_another_hub_at_the_same_address_does_not_break_uploads(tmp_path):
    """hf_xet keeps the shards it uploaded in a local cache keyed by the CAS URL, and does not upload
    a xorb again that the cache says the CAS holds. A hub started afresh at the same address (a test
    server, a wiped data dir) used to hand out the same CAS URL, so re-uploading a file uploaded
    before (``b"GOOD-WEIGHTS " * 300``, in the report) sent a shard naming a xorb this hub never
    had: 400 at /v1/shards, while any new content uploaded fine. The CAS URL now carries the store's
    random id."""
    import socket
    import subprocess
    import sys

    from tests.conftest import start_hub, stop_hub

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = "hf_erin_xet_cache_000000000"
    upload = ("import sys\nfrom huggingface_hub import HfApi\n"
              "api = HfApi(endpoint=sys.argv[1], token=sys.argv[2])\n"
              "api.create_repo('erin/m', exist_ok=True)\n"
              "api.upload_file(path_or_fileobj=b'GOOD-WEIGHTS ' * 300, path_in_repo='w.bin', repo_id='erin/m')\n")
    client_env = {k: v for k, v in os.environ.items() if k != "HF_HUB_DISABLE_XET"}
    client_env["HF_HOME"] = str(tmp_path / "client-home")  # one client, two hubs
    for attempt in (1, 2):
        data = tmp_path / f"data{attempt}"
        data.mkdir()
        env = {**os.environ, "AICOMMONS_DATA_DIR": str(data)}
        for args in (["user", "create", "erin"], ["token", "create", "erin", "--value", token]):
            subprocess.run([sys.executable, "-m", "aicommons.cli.main", *args], env=env, check=True,
                           capture_output=True)
        hub = start_hub(data, port)
        try:
            done = subprocess.run([sys.executable, "-c", upload, hub.url, token], env=client_env,
                                  capture_output=True, text=True, timeout=120)
        finally:
            stop_hub(hub)
        assert done.returncode == 0, f"upload {attempt}: {done.stderr[-1000:]}"
        assert list((data / "blobs" / "xet" / "shards").rglob("*"))  # it did go through Xet


# --- issue 9: a file squashed out of history is not reconstructed for readers before GC ----------------


def test_a_file_squashed_away_is_not_reconstructed(xet, api, repo_id, http):
    from huggingface_hub import CommitOperationDelete

    api.upload_file(path_or_fileobj=GOOD, path_in_repo="leaked.bin", repo_id=repo_id)
    leaked = api.get_paths_info(repo_id, ["leaked.bin"])[0].xet_hash
    read = _cas(http, repo_id, "read")
    assert http.get(f"/xet-cas/v1/reconstructions/{leaked}", headers=read).status_code == 200
    api.create_commit(repo_id, [CommitOperationDelete("leaked.bin")], commit_message="remove it")
    assert http.get(f"/xet-cas/v1/reconstructions/{leaked}", headers=read).status_code == 200  # in history
    api.super_squash_history(repo_id)
    answer = http.get(f"/xet-cas/v1/reconstructions/{leaked}", headers=_cas(http, repo_id, "read"))
    assert answer.status_code == 404, answer.text
