"""One chunk store (issue 11): Xet uploads are stored once, as their xorbs, and every other door
(plain HTTP with ranges, the LFS download link, scans, fsck) reads them from there.

Measured through the stock clients (huggingface_hub 2.4 + hf_xet) on both deployments (local disk,
or moto S3 with ``AICOMMONS_TEST_BACKEND=postgres-s3``).
"""

from __future__ import annotations

import hashlib
import os
import time

import httpx
import pytest

from tests.conftest import ALICE_TOKEN, auth

pytest.importorskip("hf_xet")

MiB = 1024 * 1024


def hub_blobs(live_hub, tmp_path, monkeypatch):
    """The hub's own blob store (local disk or the bucket), opened as the server opens it."""
    from aicommons.storage import open_blob_store

    for name, value in live_hub.env.items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    url = live_hub.env.get("AICOMMONS_STORAGE_URL") or f"file://{live_hub.data_dir / 'blobs'}"
    return open_blob_store(url, tmp_path / "blob-tmp")


def stored_bytes(blobs) -> int:
    return sum(info.size for prefix in ("lfs/", "xet/") for info in blobs.list_blobs(prefix))


def lfs_key(oid: str) -> str:
    return f"lfs/{oid[:2]}/{oid[2:4]}/{oid}"


def _resolve(http, repo_id, path, headers=None, method="GET") -> httpx.Response:
    return http.request(method, f"/{repo_id}/resolve/main/{path}", headers={**auth(ALICE_TOKEN), **(headers or {})})


def test_a_xet_upload_is_stored_once_and_served_over_plain_http(xet, api, repo_id, http, tmp_path, monkeypatch):
    blobs = hub_blobs(xet, tmp_path, monkeypatch)
    content = os.urandom(5 * MiB + 4321)  # not a seeded stream: another test may have stored its prefix
    oid = hashlib.sha256(content).hexdigest()
    before = stored_bytes(blobs)
    api.upload_file(path_or_fileobj=content, path_in_repo="weights.bin", repo_id=repo_id)
    grown = stored_bytes(blobs) - before
    assert not blobs.exists(lfs_key(oid))  # no rebuilt whole-file copy next to the xorbs
    assert len(content) <= grown <= 1.05 * len(content), grown  # the xorbs (and a small shard), once

    whole = _resolve(http, repo_id, "weights.bin")
    assert whole.status_code == 200 and whole.content == content
    assert whole.headers["content-length"] == str(len(content))
    assert whole.headers["x-linked-etag"] == f'"{oid}"' and whole.headers["accept-ranges"] == "bytes"

    head = _resolve(http, repo_id, "weights.bin", method="HEAD")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(content)) and head.headers["x-xet-hash"]

    # One range across chunk and xorb boundaries, an open-ended and a suffix range.
    for spec, (start, end) in {"bytes=70000-3145727": (70000, 3145728), f"bytes={len(content) - 10}-": (
            len(content) - 10, len(content)), "bytes=-5000": (len(content) - 5000, len(content))}.items():
        part = _resolve(http, repo_id, "weights.bin", {"Range": spec})
        assert part.status_code == 206, spec
        assert part.content == content[start:end], spec
        assert part.headers["content-range"] == f"bytes {start}-{end - 1}/{len(content)}"

    # Several ranges: multipart/byteranges, each part with its own Content-Range.
    multi = _resolve(http, repo_id, "weights.bin", {"Range": "bytes=0-9,1048570-1048585,5242000-5242999"})
    assert multi.status_code == 206
    assert int(multi.headers["content-length"]) == len(multi.content)
    boundary = multi.headers["content-type"].split("boundary=")[1]
    parts = [p for p in multi.content.split(f"--{boundary}".encode()) if p.strip(b"-\r\n")]
    got = [p.split(b"\r\n\r\n", 1)[1][:-2] for p in parts]
    assert got == [content[0:10], content[1048570:1048586], content[5242000:5243000]]

    # If-Range with another version's ETag: the whole file, not a piece of the wrong one.
    stale = _resolve(http, repo_id, "weights.bin", {"Range": "bytes=0-9", "If-Range": '"0123"'})
    assert stale.status_code == 200 and stale.content == content
    past = _resolve(http, repo_id, "weights.bin", {"Range": f"bytes={len(content)}-"})
    assert past.status_code == 416 and past.headers["content-range"] == f"bytes */{len(content)}"


def test_ranges_of_a_file_with_compressed_and_raw_chunks_are_exact(xet, api, repo_id, http, tmp_path, monkeypatch):
    """A file under the download cache's minimum (1 MiB) is always rebuilt from its xorbs: chunks
    hf_xet stored uncompressed (random bytes: sent straight from the xorb file) and LZ4 ones (text:
    decoded) side by side, in single and multiple ranges across their boundaries."""
    from aicommons.xet.xorb import Scheme, read_layout

    blobs = hub_blobs(xet, tmp_path, monkeypatch)
    # Compressible text, never stored before, and not periodic: a run of one short block repeated
    # gets content-defined chunk boundaries at the period, so its chunks are that block alone (random
    # hex, which LZ4 cannot shrink) and are stored uncompressed.
    tag = os.urandom(8).hex()
    text = "".join(f"{tag} row {i:07d} of the card's table\n" for i in range(20_000)).encode()
    content = (os.urandom(200_000) + text[:327_680] + os.urandom(150_000) + text[-245_760:]
               + os.urandom(12_345))
    assert len(content) < MiB
    before = {info.key for info in blobs.list_blobs("xet/xorbs/")}
    api.upload_file(path_or_fileobj=content, path_in_repo="mixed.bin", repo_id=repo_id)
    schemes: set = set()
    deadline = time.time() + 20  # (the bucket may list a new xorb a moment after the upload returns)
    while not (Scheme.NONE in schemes and schemes - {Scheme.NONE}) and time.time() < deadline:
        time.sleep(0.1)
        for key in [info.key for info in blobs.list_blobs("xet/xorbs/") if info.key not in before]:
            with blobs.open(key) as f:
                schemes |= {chunk.scheme for chunk in read_layout(f.read()).chunks}
    assert Scheme.NONE in schemes and schemes - {Scheme.NONE}, schemes  # both kinds are stored

    n = len(content)
    assert _resolve(http, repo_id, "mixed.bin").content == content
    cuts = [0, 1, 65535, 65536, 199_999, 200_000, 200_001, 400_000, 527_679, 700_000, n - 1]
    for start in cuts:
        for end in (start, start + 1, start + 70_000, n - 1):
            end = min(end, n - 1)
            part = _resolve(http, repo_id, "mixed.bin", {"Range": f"bytes={start}-{end}"})
            assert part.status_code == 206 and part.content == content[start:end + 1], (start, end)
    multi = _resolve(http, repo_id, "mixed.bin", {"Range": "bytes=5-10,199990-200100,300000-500000,-7"})
    assert multi.status_code == 206 and int(multi.headers["content-length"]) == len(multi.content)
    boundary = multi.headers["content-type"].split("boundary=")[1]
    parts = [p for p in multi.content.split(f"--{boundary}".encode()) if p.strip(b"-\r\n")]
    assert [p.split(b"\r\n\r\n", 1)[1][:-2] for p in parts] == [
        content[5:11], content[199990:200101], content[300000:500001], content[-7:]]


def test_plain_clients_read_a_xet_file_by_its_sha256(xet, api, repo_id, http, tmp_path, monkeypatch):
    """hf_hub_download without hf_xet (plain HTTP) and the LFS batch API (git lfs pull) both name
    the file by sha256, and both get its bytes from the chunk store."""
    from huggingface_hub import constants, hf_hub_download

    content = os.urandom(2 * MiB + 17)
    oid = hashlib.sha256(content).hexdigest()
    api.upload_file(path_or_fileobj=content, path_in_repo="data.bin", repo_id=repo_id)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    path = hf_hub_download(repo_id, "data.bin", endpoint=api.endpoint, token=ALICE_TOKEN,
                           cache_dir=str(tmp_path / "cache"))
    with open(path, "rb") as f:
        assert f.read() == content

    batch = http.post(f"/{repo_id}.git/info/lfs/objects/batch", headers={
        **auth(ALICE_TOKEN), "Accept": "application/vnd.git-lfs+json", "Content-Type": "application/vnd.git-lfs+json"},
        json={"operation": "download", "transfers": ["basic"], "objects": [{"oid": oid, "size": len(content)}]})
    assert batch.status_code == 200, batch.text
    action = batch.json()["objects"][0]["actions"]["download"]
    got = httpx.get(action["href"], headers=action.get("header", {}), follow_redirects=True, timeout=60)
    assert got.status_code == 200 and got.content == content


def test_fsck_rehashes_chunk_stored_files(xet, api, repo_id):
    content = os.urandom(MiB + 5)
    api.upload_file(path_or_fileobj=content, path_in_repo="x.bin", repo_id=repo_id)
    result = xet.cli("fsck", check=False)  # its report, not a bare exit status, when it fails
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 errors" in result.stdout + result.stderr
