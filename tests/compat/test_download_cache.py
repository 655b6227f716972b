"""Plain HTTP downloads of chunk-stored files through the local whole-file cache
(hub/download_cache.py), sent by the kernel (api/zerocopy_server.py): the same bytes and headers as
when rebuilt from the xorbs, no way around access rules, and nothing kept once the file is deleted.
"""

from __future__ import annotations

import hashlib
import os
import time

import httpx
import pytest

from tests.conftest import ALICE_TOKEN, BOB_TOKEN, auth

pytest.importorskip("hf_xet")

MiB = 1024 * 1024


def _wait_for(predicate, timeout: float = 20) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def _answers(http: httpx.Client, url: str, size: int) -> list:
    """Status, selected headers and body of whole, ranged, multi-range, If-Range and HEAD requests."""
    out = []
    for headers in ({}, {"Range": "bytes=70000-1048575"}, {"Range": "bytes=-5000"},
                    {"Range": "bytes=0-9", "If-Range": '"0123"'}, {"Range": f"bytes={size}-"}):
        r = http.get(url, headers={**auth(ALICE_TOKEN), **headers})
        out.append((r.status_code, r.headers.get("content-range"), r.headers["content-length"],
                    r.headers.get("x-linked-etag"), r.headers.get("etag"), r.headers.get("x-xet-hash"), r.content))
    r = http.get(url, headers={**auth(ALICE_TOKEN), "Range": "bytes=0-9,1048570-1048585,2000000-2000999"})
    boundary = r.headers["content-type"].split("boundary=")[1]
    parts = [p.split(b"\r\n\r\n", 1)[1][:-2] for p in r.content.split(f"--{boundary}".encode())
             if p.strip(b"-\r\n")]
    out.append((r.status_code, r.headers["content-length"] == str(len(r.content)), parts))
    h = http.head(url, headers=auth(ALICE_TOKEN))
    out.append((h.status_code, h.headers["content-length"], h.content))
    return out


def test_a_chunk_stored_file_is_served_from_a_whole_local_copy_after_its_first_download(xet, api, repo_id, http):
    content = os.urandom(3 * MiB + 777)
    oid = hashlib.sha256(content).hexdigest()
    api.upload_file(path_or_fileobj=content, path_in_repo="weights.bin", repo_id=repo_id)
    copy = xet.data_dir / "download-cache" / oid[:2] / oid
    url = f"/{repo_id}/resolve/main/weights.bin"
    assert not copy.exists()

    rebuilt = _answers(http, url, len(content))  # the first answers come from the xorbs
    assert rebuilt[0][0] == 200 and rebuilt[0][-1] == content
    assert rebuilt[1][-1] == content[70000:1048576] and rebuilt[2][-1] == content[-5000:]
    assert rebuilt[5][2] == [content[0:10], content[1048570:1048586], content[2000000:2001000]]
    assert _wait_for(copy.exists), "no whole copy was made"
    assert copy.read_bytes() == content
    assert _answers(http, url, len(content))[:-2] == rebuilt[:-2]  # from the copy: the same answers
    multi, head = _answers(http, url, len(content))[-2:]
    assert multi == rebuilt[-2] and head == rebuilt[-1]

    # Private: the copy answers only those who may read the repo (the others, exactly like missing).
    api.update_repo_settings(repo_id, private=True)
    r = http.get(url, headers=auth(BOB_TOKEN))
    assert r.status_code == 404 and r.headers["x-error-code"] == "RepoNotFound"
    assert http.get(url).status_code in (401, 404)

    # Deleting the repo empties the cache.
    api.delete_repo(repo_id)
    assert _wait_for(lambda: not copy.exists()), "a copy outlived its repo"
