"""Global dedup (issue 11): ``GET /v1/chunks/default/{chunk}`` answered with keyed chunk hashes.

The measurement: a second revision of a 64 MiB file with a 4 KiB change, uploaded by the stock
hf_xet client from a machine that never saw the first one (a fresh Xet cache, in a subprocess, so
neither its session nor its local shard cache can dedup), grows storage by less than 8 MiB.

The probes: an answer names only keyed hashes, so a client finds in it only chunks it has; it holds
no file information; an unknown chunk and a chunk of a private repo answer alike unless the asker
has the chunk; keyed hashes cannot be replayed into a shard that claims chunks the asker lacks.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest
from blake3 import blake3

from aicommons.xet.dedup import eligible
from aicommons.xet.hashing import chunk_hash, file_hash, range_hash, to_hex
from aicommons.xet.shard import FileSegment, ShardChunk, ShardFile, ShardXorb, parse_shard, serialize_shard
from aicommons.xet.xorb import serialize_xorb
from tests.compat.test_chunk_store import hub_blobs, stored_bytes
from tests.conftest import ALICE_TOKEN, BOB_TOKEN, auth, unique_name

pytest.importorskip("hf_xet")

MiB = 1024 * 1024

UPLOAD = """
import sys
from huggingface_hub import HfApi
endpoint, token, repo, path, name = sys.argv[1:6]
HfApi(endpoint=endpoint, token=token).upload_file(path_or_fileobj=path, path_in_repo=name, repo_id=repo)
"""


def upload_from_a_fresh_machine(live_hub, tmp_path, token, repo_id, content: bytes, name: str, tag: str) -> None:
    """The stock huggingface_hub + hf_xet, in a new process with its own empty Xet cache."""
    path = tmp_path / f"{tag}.bin"
    path.write_bytes(content)
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_DISABLE_XET"}
    env.update(HF_HOME=str(tmp_path / f"home-{tag}"), HF_XET_CACHE=str(tmp_path / f"xet-{tag}"))
    proc = subprocess.run([sys.executable, "-c", UPLOAD, live_hub.url, token, repo_id, str(path), name],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_a_4k_change_to_a_64_mib_file_stores_less_than_8_mib(live_hub, api, repo_id, http, tmp_path, monkeypatch):
    blobs = hub_blobs(live_hub, tmp_path, monkeypatch)
    first = os.urandom(64 * MiB)
    before = stored_bytes(blobs)
    upload_from_a_fresh_machine(live_hub, tmp_path, ALICE_TOKEN, repo_id, first, "model.bin", "v1")
    after_first = stored_bytes(blobs)
    second = bytearray(first)
    second[40 * MiB:40 * MiB + 4096] = os.urandom(4096)
    upload_from_a_fresh_machine(live_hub, tmp_path, ALICE_TOKEN, repo_id, bytes(second), "model.bin", "v2")
    grown = stored_bytes(blobs) - after_first
    print(f"first upload stored {after_first - before} bytes for {len(first)}; the second grew {grown}")
    assert after_first - before <= 1.05 * len(first)
    assert grown < 8 * MiB, grown
    got = http.get(f"/{repo_id}/resolve/main/model.bin", headers=auth(ALICE_TOKEN))
    assert hashlib.sha256(got.content).hexdigest() == hashlib.sha256(second).hexdigest()


def test_a_chain_of_checkpoints_dedups_against_the_latest_one(live_hub, api, repo_id, tmp_path, monkeypatch):
    """Each checkpoint changes one layer of the previous one: the answer offers the newest upload's
    xorbs, so the third stores about one layer, not every layer changed since the first."""
    blobs = hub_blobs(live_hub, tmp_path, monkeypatch)
    layers = [os.urandom(2 * MiB) for _ in range(4)]
    upload_from_a_fresh_machine(live_hub, tmp_path, ALICE_TOKEN, repo_id, b"".join(layers), "ckpt.bin", "c0")
    layers[1] = os.urandom(2 * MiB)
    upload_from_a_fresh_machine(live_hub, tmp_path, ALICE_TOKEN, repo_id, b"".join(layers), "ckpt.bin", "c1")
    before = stored_bytes(blobs)
    layers[2] = os.urandom(2 * MiB)
    upload_from_a_fresh_machine(live_hub, tmp_path, ALICE_TOKEN, repo_id, b"".join(layers), "ckpt.bin", "c2")
    grown = stored_bytes(blobs) - before
    assert grown < 3 * MiB, grown  # one new 2 MiB layer (and its neighbouring chunks), not two


# --- probing ---------------------------------------------------------------------------------------


def _cas(http, repo_id, token) -> tuple[str, dict]:
    answer = http.get(f"/api/models/{repo_id}/xet-write-token/main", headers=auth(token)).json()
    return answer["casUrl"], {"Authorization": f"Bearer {answer['accessToken']}"}


def _chunks_with_an_eligible_one(n: int) -> list[bytes]:
    """``n`` random 8 KiB chunks, the last of which the protocol makes eligible by its hash."""
    chunks = [os.urandom(8192) for _ in range(n - 1)]
    while True:
        candidate = os.urandom(8192)
        if eligible(chunk_hash(candidate)):
            return [*chunks, candidate]


def _upload(http, cas: str, headers: dict, chunks: list[bytes]) -> bytes:
    """One xorb and one file of ``chunks`` through the CAS, as a client would; the xorb hash."""
    xorb, xorb_hash = serialize_xorb(chunks)
    assert http.post(f"{cas}/v1/xorbs/default/{to_hex(xorb_hash)}", content=xorb, headers=headers).status_code == 200
    entry = _file(xorb_hash, chunks, 0, len(chunks))
    offsets = [sum(len(c) for c in chunks[:i]) for i in range(len(chunks))]
    described = ShardXorb(xorb_hash, tuple(ShardChunk(chunk_hash(c), o, len(c)) for c, o in zip(chunks, offsets)),
                          sum(len(c) for c in chunks), len(xorb))
    response = http.post(f"{cas}/v1/shards", content=serialize_shard([entry], [described]), headers=headers)
    assert response.status_code == 200, response.text
    return xorb_hash


def _file(xorb_hash: bytes, chunks: list[bytes], start: int, end: int, hashes: list[bytes] | None = None) -> ShardFile:
    hashes = hashes or [chunk_hash(c) for c in chunks]
    part = list(zip(hashes[start:end], (len(c) for c in chunks[start:end])))
    segment = FileSegment(xorb_hash, sum(len(c) for c in chunks[start:end]), start, end)
    data = b"".join(chunks[start:end])
    return ShardFile(file_hash(part), (segment,), (range_hash([h for h, _ in part]),), hashlib.sha256(data).hexdigest())


def test_global_dedup_tells_only_what_the_asker_has(live_hub, api, bob_api, http):
    # Alice's private repo holds a file of 6 chunks: the first is, say, a common header.
    private = f"alice/{unique_name('secret')}"
    api.create_repo(private, private=True)
    chunks = _chunks_with_an_eligible_one(6)
    cas, alice = _cas(http, private, ALICE_TOKEN)
    xorb_hash = _upload(http, cas, alice, chunks)

    bob_repo = f"bob/{unique_name('probe')}"
    bob_api.create_repo(bob_repo)
    bob_cas, bob = _cas(http, bob_repo, BOB_TOKEN)

    # Anonymous or with a read-only grant: no dedup answers at all.
    assert http.get(f"{bob_cas}/v1/chunks/default/{to_hex(chunk_hash(chunks[0]))}").status_code == 401

    # Bob has the header chunk: we say we hold it, and in what xorb, with keyed hashes only.
    answer = http.get(f"{bob_cas}/v1/chunks/default/{to_hex(chunk_hash(chunks[0]))}", headers=bob)
    assert answer.status_code == 200, answer.text
    shard = parse_shard(answer.content)
    assert shard.files == ()  # no file hash, sha256 or size of anyone's file
    assert [x.hash for x in shard.xorbs] == [xorb_hash]
    key = answer.content[-200:][72:104]  # the footer's chunk-hash key
    assert key != bytes(32)
    listed = [c.hash for c in shard.xorbs[0].chunks]
    raw = [chunk_hash(c) for c in chunks]
    assert not set(listed) & set(raw)  # no raw chunk hash is ever handed out
    assert listed == [blake3(h, key=key).digest() for h in raw]  # what Bob can match: his own chunk
    again = http.get(f"{bob_cas}/v1/chunks/default/{to_hex(chunk_hash(chunks[0]))}", headers=bob)
    assert parse_shard(again.content).xorbs[0].chunks[1].hash != listed[1]  # a new key each time

    # A chunk Bob does not have: he cannot name it, and a guess answers like any unknown chunk.
    for guess in (to_hex(chunk_hash(os.urandom(8192))), to_hex(listed[1])):
        assert http.get(f"{bob_cas}/v1/chunks/default/{guess}", headers=bob).status_code == 404

    # Replaying the keyed hashes as if they were the chunks: the shard is refused (the verification
    # hash does not match), and nothing of Alice's file becomes Bob's.
    claim = _file(xorb_hash, chunks, 0, 6, hashes=listed)
    refused = http.post(f"{bob_cas}/v1/shards", content=serialize_shard([claim]), headers=bob)
    assert refused.status_code == 400
    # With the one chunk he has, Bob dedups exactly that chunk, and reads back only that chunk.
    mine = _file(xorb_hash, chunks, 0, 1)
    assert http.post(f"{bob_cas}/v1/shards", content=serialize_shard([mine]), headers=bob).status_code == 200
    read_cas, reader = _cas_read(http, bob_repo)
    assert http.get(f"{read_cas}/v1/reconstructions/{to_hex(_file(xorb_hash, chunks, 0, 6).hash)}",
                    headers=reader).status_code == 404
    rec = http.get(f"{read_cas}/v1/reconstructions/{mine.hex}", headers=reader).json()
    assert [t["range"] for t in rec["terms"]] == [{"start": 0, "end": 1}]


def _cas_read(http, repo_id) -> tuple[str, dict]:
    answer = http.get(f"/api/models/{repo_id}/xet-read-token/main", headers=auth(BOB_TOKEN)).json()
    return answer["casUrl"], {"Authorization": f"Bearer {answer['accessToken']}"}


def test_bad_dedup_queries_are_4xx(live_hub, api, repo_id, http):
    cas, headers = _cas(http, repo_id, ALICE_TOKEN)
    assert http.get(f"{cas}/v1/chunks/default/not-a-hash", headers=headers).status_code == 400
    assert http.get(f"{cas}/v1/chunks/other/{'0' * 64}", headers=headers).status_code == 404
    assert json.loads(http.get(f"{cas}/v1/chunks/default/{'0' * 64}", headers=headers).text)["error"]
