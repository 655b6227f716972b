"""Bad input on every write path: the Hub's status and X-Error-Code, a clear message, nothing partial."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import subprocess
import tempfile
from pathlib import Path

import httpx
import pytest

from tests.conftest import ALICE_TOKEN, BOB_TOKEN, auth, start_hub, stop_hub, unique_name

NDJSON = {"Content-Type": "application/x-ndjson"}


def commit_body(*lines: dict, summary: str = "test", parent: str | None = None) -> bytes:
    header = {"summary": summary, "description": ""}
    if parent:
        header["parentCommit"] = parent
    items = [{"key": "header", "value": header}, *lines]
    return "\n".join(json.dumps(i) for i in items).encode()


def add_line(path: str, data: bytes = b"x") -> dict:
    return {"key": "file", "value": {"path": path, "content": base64.b64encode(data).decode(), "encoding": "base64"}}


def head(http, repo_id: str) -> str:
    return http.get(f"/api/models/{repo_id}", headers=auth(ALICE_TOKEN)).json()["sha"]


def assert_error(response: httpx.Response, status: int, code: str | None, text: str | None = None) -> None:
    assert response.status_code == status, response.text
    if code:
        assert response.headers.get("x-error-code") == code
    assert response.headers.get("x-error-message")
    assert response.headers.get("x-request-id")
    if text:
        assert text in response.json()["error"]


@pytest.mark.parametrize("name", ["a--b", "..", "x.git", "-lead", "trail.", "x" * 97, "sp ace", "ünï", "a/b/c"])
def test_invalid_repo_names_are_refused(http, name):
    r = http.post("/api/repos/create", json={"name": name, "organization": "alice"}, headers=auth(ALICE_TOKEN))
    assert_error(r, 400, "BadRequest")


@pytest.mark.parametrize("path", ["../evil.txt", "a/../../evil", "/abs.txt", "..\\evil.txt", "\\abs.txt", "C:evil",
                                  "nul\x00.txt", "a//b", "./x", ".git/config", "x" * 300, "/".join(["d"] * 600),
                                  "ctl\x07.txt"])
def test_bad_paths_in_commits_are_refused_and_nothing_lands(http, repo_id, path):
    before = head(http, repo_id)
    r = http.post(f"/api/models/{repo_id}/commit/main", headers={**auth(ALICE_TOKEN), **NDJSON},
                  content=commit_body(add_line("ok.txt"), add_line(path)))
    assert_error(r, 422, "InvalidPath", "Invalid file path")
    assert head(http, repo_id) == before


@pytest.mark.parametrize("body", [
    b"not json",
    b'{"key": "file", "value": {"path": "a"}}',  # no header
    b'{"key": "header", "value": {"summary": 3}}',
    b'{"key": "header", "value": {"summary": "s"}}\n{"key": "bogus", "value": {"path": "x"}}',
    b'{"key": "header", "value": {"summary": "s"}}\n{"key": "file", "value": {"path": "x", "content": "%%%"}}',
    b'{"key": "header", "value": {"summary": "s"}}\n[1, 2]',
    b'{"key": "header", "value": {"summary": ""}}\n' + json.dumps(add_line("x")).encode(),
])
def test_malformed_ndjson_is_refused(http, repo_id, body):
    before = head(http, repo_id)
    r = http.post(f"/api/models/{repo_id}/commit/main", headers={**auth(ALICE_TOKEN), **NDJSON}, content=body)
    assert_error(r, 400, "BadRequest")
    assert head(http, repo_id) == before


def test_commit_to_unknown_revision_and_repo(http, repo_id):
    r = http.post(f"/api/models/{repo_id}/commit/nope", headers={**auth(ALICE_TOKEN), **NDJSON},
                  content=commit_body(add_line("a.txt")))
    assert_error(r, 404, "RevisionNotFound")
    r = http.post(f"/api/models/alice/{unique_name('ghost')}/commit/main", headers={**auth(ALICE_TOKEN), **NDJSON},
                  content=commit_body(add_line("a.txt")))
    assert_error(r, 404, "RepoNotFound")


def test_stale_parent_gets_412_with_hub_text(http, repo_id):
    before = head(http, repo_id)
    ok = http.post(f"/api/models/{repo_id}/commit/main", headers={**auth(ALICE_TOKEN), **NDJSON},
                   content=commit_body(add_line("a.txt"), parent=before))
    assert ok.status_code == 200
    stale = http.post(f"/api/models/{repo_id}/commit/main", headers={**auth(ALICE_TOKEN), **NDJSON},
                      content=commit_body(add_line("b.txt"), parent=before))
    assert_error(stale, 412, None, "The branch was updated since you opened this page")


def test_lfs_file_never_uploaded_is_refused(http, repo_id):
    before = head(http, repo_id)
    line = {"key": "lfsFile", "value": {"path": "w.bin", "algo": "sha256", "oid": "ab" * 32, "size": 10}}
    r = http.post(f"/api/models/{repo_id}/commit/main", headers={**auth(ALICE_TOKEN), **NDJSON},
                  content=commit_body(line))
    assert_error(r, 400, "BadRequest", "was not uploaded")
    assert head(http, repo_id) == before


def test_lfs_batch_rejects_bad_oids_and_sizes(http, repo_id):
    r = http.post(f"/{repo_id}.git/info/lfs/objects/batch", headers=auth(ALICE_TOKEN), json={
        "operation": "upload", "transfers": ["basic"], "hash_algo": "sha256",
        "objects": [{"oid": "xyz", "size": 1}, {"oid": "ab" * 32, "size": -1}, {"oid": "cd" * 32, "size": "1"},
                    {"oid": "ef" * 32, "size": 3}]})
    assert r.status_code == 200
    objects = r.json()["objects"]
    assert [o.get("error", {}).get("code") for o in objects] == [422, 422, 422, None]
    assert "upload" in objects[3]["actions"]
    r = http.post(f"/{repo_id}.git/info/lfs/objects/batch", headers=auth(ALICE_TOKEN), json={"operation": "steal"})
    assert_error(r, 400, "BadRequest")


def test_lfs_upload_with_wrong_content_is_refused_and_invisible(http, repo_id):
    data = os.urandom(1000)
    oid = hashlib.sha256(data).hexdigest()
    batch = http.post(f"/{repo_id}.git/info/lfs/objects/batch", headers=auth(ALICE_TOKEN), json={
        "operation": "upload", "objects": [{"oid": oid, "size": len(data)}]}).json()
    href = batch["objects"][0]["actions"]["upload"]["href"]
    wrong = httpx.put(href, content=os.urandom(1000))
    assert_error(wrong, 400, "BadRequest", "does not match")
    too_big = httpx.put(href, content=data + b"extra")
    assert_error(too_big, 413, "PayloadTooLarge")
    forged = httpx.put(href.replace("sig=", "sig=00"), content=data)
    assert_error(forged, 401, "Unauthorized")
    verify = http.post(f"/{repo_id}.git/info/lfs/objects/verify", headers=auth(ALICE_TOKEN),
                       json={"oid": oid, "size": len(data)})
    assert_error(verify, 404, "EntryNotFound")
    assert httpx.put(href, content=data).status_code == 200
    assert http.post(f"/{repo_id}.git/info/lfs/objects/verify", headers=auth(ALICE_TOKEN),
                     json={"oid": oid, "size": len(data)}).status_code == 200


def test_lfs_object_of_a_private_repo_does_not_leak(http, api, bob_api, live_hub):
    secret = os.urandom(2048)
    oid = hashlib.sha256(secret).hexdigest()
    private = f"alice/{unique_name('private')}"
    api.create_repo(private, private=True)
    api.upload_file(path_or_fileobj=secret, path_in_repo="secret.bin", repo_id=private)
    mine = f"bob/{unique_name('probe')}"
    bob_api.create_repo(mine)
    # Bob's batch must not say "already present", and a commit referencing the oid must fail.
    batch = http.post(f"/{mine}.git/info/lfs/objects/batch", headers=auth(BOB_TOKEN), json={
        "operation": "upload", "objects": [{"oid": oid, "size": len(secret)}]}).json()
    assert "upload" in batch["objects"][0]["actions"]
    line = {"key": "lfsFile", "value": {"path": "stolen.bin", "algo": "sha256", "oid": oid, "size": len(secret)}}
    r = http.post(f"/api/models/{mine}/commit/main", headers={**auth(BOB_TOKEN), **NDJSON}, content=commit_body(line))
    assert_error(r, 400, "BadRequest")
    download = http.post(f"/{mine}.git/info/lfs/objects/batch", headers=auth(BOB_TOKEN), json={
        "operation": "download", "objects": [{"oid": oid, "size": len(secret)}]}).json()
    assert "actions" not in download["objects"][0]


def test_unknown_revision_missing_file_and_repo_on_resolve(http, repo_id):
    r = http.head(f"/{repo_id}/resolve/nope/x.txt")
    assert_error(r, 404, "RevisionNotFound")
    r = http.get(f"/{repo_id}/resolve/main/missing.txt")
    assert_error(r, 404, "EntryNotFound")
    assert len(r.headers["x-repo-commit"]) == 40
    r = http.get(f"/alice/{unique_name('ghost')}/resolve/main/x.txt")
    assert_error(r, 401, "RepoNotFound")
    r = http.get(f"/alice/{unique_name('ghost')}/resolve/main/x.txt", headers=auth(ALICE_TOKEN))
    assert_error(r, 404, "RepoNotFound")
    r = http.get("/api/models/single-segment-name")
    assert_error(r, 401, "RepoNotFound")
    r = http.get(f"/api/models/{repo_id}/revision/{'0' * 40}")
    assert_error(r, 404, "RevisionNotFound")


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_unknown_api_paths_answer_json_not_html_or_405(http, method):
    """/api/no-such answered the web UI's HTML 404 page, POST /api/jobs/alice a text/plain 405, and
    GET /api/jobs/alice RepoNotFound: every /api/ path no route serves is now a JSON 404 saying so.
    (``GET /api/tasks`` is served now: tests/inference/test_hub_model_list.py.)"""
    for path in ("/api/no-such-endpoint", "/api/no/such/thing/at/all"):
        assert_error(http.request(method, path, headers=auth(ALICE_TOKEN)), 404, "NotFound", "Unknown endpoint")
    for path, product in (("/api/jobs/alice", "Jobs"), ("/api/jobs/alice/0123abcd", "Jobs"),
                          ("/api/scheduled-jobs/alice", "Jobs"), ("/api/buckets/alice", "Storage buckets"),
                          ("/api/buckets/alice/b", "Storage buckets"), ("/api/daily_papers", "Papers")):
        r = http.request(method, path, headers=auth(ALICE_TOKEN))
        assert_error(r, 404, "NotFound", f"{product} are not available on this hub")


@pytest.mark.parametrize("header", ["Bearer hf_not_a_real_token", "Basic !!!notbase64", "Weird scheme"])
def test_bad_tokens_are_refused(http, header):
    r = http.get("/api/whoami-v2", headers={"Authorization": header})
    assert_error(r, 401, "Unauthorized", "Invalid credentials in Authorization header")


def test_wrong_types_in_json_bodies(http, repo_id):
    cases = [
        ("/api/repos/create", {"name": 5}),
        ("/api/repos/create", {"name": "ok-name", "private": "yes"}),
        (f"/api/models/{repo_id}/preupload/main", {"files": "nope"}),
        (f"/api/models/{repo_id}/preupload/main", {"files": [{"path": "a", "size": "big", "sample": ""}]}),
        (f"/api/models/{repo_id}/tag/main", {"tag": ["x"]}),
        ("/api/repos/move", {"fromRepo": repo_id}),
    ]
    for url, body in cases:
        r = http.post(url, json=body, headers=auth(ALICE_TOKEN))
        assert_error(r, 400, "BadRequest")
    r = http.post("/api/repos/create", content=b"{not json", headers=auth(ALICE_TOKEN))
    assert_error(r, 400, "BadRequest", "Invalid JSON")
    r = http.put(f"/api/models/{repo_id}/settings", json={"gated": "sometimes"}, headers=auth(ALICE_TOKEN))
    assert_error(r, 400, "BadRequest")


def test_invalid_branch_and_tag_names(http, repo_id):
    for name in ["refs%2Fpr%2F5", "refs%2Fsomething%2Fx", "bad..name", "end.lock"]:
        r = http.post(f"/api/models/{repo_id}/branch/{name}", json={}, headers=auth(ALICE_TOKEN))
        assert_error(r, 400, "BadRequest", "Invalid reference for a branch")
    r = http.post(f"/api/models/{repo_id}/tag/main", json={"tag": "has space"}, headers=auth(ALICE_TOKEN))
    assert_error(r, 400, "BadRequest")
    r = http.delete(f"/api/models/{repo_id}/tag/main", headers=auth(ALICE_TOKEN))
    assert_error(r, 404, "RevisionNotFound")


def test_range_requests(http, api, repo_id):
    data = bytes(range(256)) * 8
    api.upload_file(path_or_fileobj=data, path_in_repo="blob.txt", repo_id=repo_id)
    api.upload_file(path_or_fileobj=data, path_in_repo="blob.bin", repo_id=repo_id)
    for name in ("blob.txt", "blob.bin"):
        r = http.get(f"/{repo_id}/resolve/main/{name}", headers={"Range": "bytes=10-19"})
        assert r.status_code == 206 and r.content == data[10:20]
        assert r.headers["content-range"] == f"bytes 10-19/{len(data)}"
        r = http.get(f"/{repo_id}/resolve/main/{name}", headers={"Range": "bytes=-5"})
        assert r.status_code == 206 and r.content == data[-5:]
        r = http.get(f"/{repo_id}/resolve/main/{name}", headers={"Range": "bytes=0-1,100-101"})
        assert r.status_code == 206 and r.headers["content-type"].startswith("multipart/byteranges")
        assert data[100:102] in r.content
        r = http.get(f"/{repo_id}/resolve/main/{name}", headers={"Range": f"bytes={len(data) + 10}-"})
        assert r.status_code == 416
        h = http.head(f"/{repo_id}/resolve/main/{name}")
        assert int(h.headers.get("x-linked-size") or h.headers["content-length"]) == len(data)


# --- a hub with tiny limits, its data on a small tmpfs (oversize bodies, disk full) ------------------

@pytest.fixture(scope="module")
def small_hub():
    root = Path(tempfile.mkdtemp(prefix="aicommons-small-"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(root)],
                             capture_output=True).returncode == 0
    if not mounted:
        pytest.skip("needs root to mount a small tmpfs for the disk-full case")
    data = root / "data"
    data.mkdir()
    env = {"AICOMMONS_DATA_DIR": str(data)}
    import sys

    for args in (["user", "create", "carol"], ["token", "create", "carol", "--value", "hf_carol_token_0000000000"]):
        subprocess.run([sys.executable, "-m", "aicommons.cli.main", *args], env={**os.environ, **env}, check=True,
                       capture_output=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    hub = start_hub(data, port, AICOMMONS_MAX_JSON_BODY_BYTES="2000", AICOMMONS_MAX_COMMIT_BODY_BYTES="4000",
                    AICOMMONS_MAX_REGULAR_FILE_BYTES="1000")
    try:
        yield hub
    finally:
        stop_hub(hub)
        subprocess.run(["umount", str(root)], check=False)


def test_oversize_bodies_get_413(small_hub):
    token = {"Authorization": "Bearer hf_carol_token_0000000000"}
    with httpx.Client(base_url=small_hub.url) as http:
        assert http.post("/api/repos/create", json={"name": "m"}, headers=token).status_code == 200
        r = http.post("/api/repos/create", content=b"{" + b" " * 5000 + b"}", headers=token)
        assert_error(r, 413, "PayloadTooLarge")
        r = http.post("/api/models/carol/m/commit/main", headers={**token, **NDJSON},
                      content=commit_body(add_line("big.txt", b"y" * 3500)))
        assert_error(r, 413, "PayloadTooLarge")
        r = http.post("/api/models/carol/m/commit/main", headers={**token, **NDJSON},
                      content=commit_body(add_line("mid.txt", b"y" * 1500)))
        assert_error(r, 400, "BadRequest", "must be uploaded with LFS")


def test_disk_full_xorb_upload_gets_507_and_leaves_nothing(small_hub):
    """A Xet xorb is verified and written as it arrives (issue 21): the disk filling up half way is a
    507, and the partly written staging file is gone."""
    from aicommons.xet.hashing import to_hex
    from aicommons.xet.xorb import Scheme, serialize_xorb

    token = {"Authorization": "Bearer hf_carol_token_0000000000"}
    body, digest = serialize_xorb([os.urandom(64 * 1024) for _ in range(320)], Scheme.NONE)  # 20 MiB > 12 MB
    with httpx.Client(base_url=small_hub.url, timeout=60) as http:
        http.post("/api/repos/create", json={"name": "xetfull"}, headers=token)
        grant = http.get("/api/models/carol/xetfull/xet-write-token/main", headers=token).json()
        r = httpx.post(f"{grant['casUrl']}/v1/xorbs/default/{to_hex(digest)}", content=body, timeout=60,
                       headers={"Authorization": f"Bearer {grant['accessToken']}"})
        assert_error(r, 507, "InsufficientStorage")
        assert list((small_hub.data_dir / "tmp").iterdir()) == []
        assert not list((small_hub.data_dir / "blobs").rglob("xorbs/*"))


def test_disk_full_upload_gets_507_and_leaves_nothing(small_hub):
    token = {"Authorization": "Bearer hf_carol_token_0000000000"}
    data = os.urandom(20 * 1024 * 1024)  # larger than the whole 12 MB filesystem
    oid = hashlib.sha256(data).hexdigest()
    with httpx.Client(base_url=small_hub.url, timeout=60) as http:
        http.post("/api/repos/create", json={"name": "full"}, headers=token)
        batch = http.post("/carol/full.git/info/lfs/objects/batch", headers=token, json={
            "operation": "upload", "objects": [{"oid": oid, "size": len(data)}]}).json()
        r = httpx.put(batch["objects"][0]["actions"]["upload"]["href"], content=data, timeout=60)
        assert_error(r, 507, "InsufficientStorage")
        assert list((small_hub.data_dir / "tmp").iterdir()) == []
        # the hub keeps serving, and a small upload works once the space is back
        small = http.post("/api/models/carol/full/commit/main", headers={**token, **NDJSON},
                          content=commit_body(add_line("ok.txt", b"fine")))
        assert small.status_code == 200, small.text
