"""Wire details clients depend on: the error shape, request ids, URLs from the client's host."""

from __future__ import annotations

import re

import httpx

from tests.conftest import ALICE_TOKEN, auth, unique_name


def test_error_wire_shape(http):
    r = http.get(f"/api/models/alice/{unique_name('ghost')}", headers=auth(ALICE_TOKEN))
    assert r.status_code == 404
    assert r.headers["x-error-code"] == "RepoNotFound"
    assert r.headers["x-error-message"] == "Repository not found"
    assert r.json() == {"error": "Repository not found"}
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])


def test_request_id_is_the_servers_own(http):
    """Issue 9 finding 12: a client-chosen id would land in the audit log as if it were ours."""
    r = http.get("/api/health", headers={"X-Amzn-Trace-Id": "trace-123", "X-Request-Id": "trace-123"})
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])
    assert http.get("/api/health").headers["x-request-id"] != r.headers["x-request-id"]


def test_returned_urls_use_the_host_the_client_used(live_hub):
    port = live_hub.url.rsplit(":", 1)[1]
    with httpx.Client(base_url=f"http://localhost:{port}") as client:
        name = unique_name()
        r = client.post("/api/repos/create", json={"name": name}, headers=auth(ALICE_TOKEN))
        assert r.json()["url"] == f"http://localhost:{port}/alice/{name}"


def test_dates_end_with_z_and_sha_is_full(http, repo_id):
    info = http.get(f"/api/models/{repo_id}").json()
    assert info["lastModified"].endswith("Z") and info["createdAt"].endswith("Z")
    assert re.fullmatch(r"[0-9a-f]{40}", info["sha"])


def test_head_on_resolve_carries_commit_etag_and_real_size(http, api, repo_id):
    api.upload_file(path_or_fileobj=b"12345", path_in_repo="five.txt", repo_id=repo_id)
    h = http.head(f"/{repo_id}/resolve/main/five.txt")
    assert h.status_code == 200
    assert h.headers["content-length"] == "5"
    assert re.fullmatch(r"[0-9a-f]{40}", h.headers["x-repo-commit"])
    assert re.fullmatch(r'"[0-9a-f]{40}"', h.headers["etag"])


def test_percent_encoded_revisions_and_paths(http, api, repo_id):
    api.create_branch(repo_id, branch="feat/a")
    api.upload_file(path_or_fileobj=b"x", path_in_repo="dir/sub/f?x%y.txt", repo_id=repo_id, revision="feat/a")
    r = http.get(f"/api/models/{repo_id}/tree/feat%2Fa/dir%2Fsub")
    assert [e["path"] for e in r.json()] == ["dir/sub/f?x%y.txt"]
    r = http.get(f"/{repo_id}/resolve/feat%2Fa/dir/sub/f%3Fx%25y.txt")
    assert r.status_code == 200 and r.content == b"x"
