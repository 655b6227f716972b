"""Wire details clients depend on: the error shape, request ids, URLs from the client's host."""

from __future__ import annotations

import re
import socket

import httpx

from tests.conftest import ALICE_TOKEN, auth, unique_name


def test_error_wire_shape(http):
    r = http.get(f"/api/models/alice/{unique_name('ghost')}", headers=auth(ALICE_TOKEN))
    assert r.status_code == 404
    assert r.headers["x-error-code"] == "RepoNotFound"
    assert r.headers["x-error-message"] == "Repository not found"
    assert r.json() == {"error": "Repository not found"}
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])


def test_a_sane_client_request_id_is_echoed(http):
    """huggingface_hub sends ``X-Amzn-Trace-Id`` (or a caller's ``X-Request-Id``) and quotes the
    answer's ``X-Request-Id`` in its errors: a sane one comes back as is, X-Request-Id first."""
    r = http.get("/api/health", headers={"X-Request-Id": "custom-id"})
    assert r.headers["x-request-id"] == "custom-id"
    trace = "Root=1-67891233-abcdef012345678912345678;Parent=53995c3f42cd8ad8;Sampled=1"
    r = http.get("/api/health", headers={"X-Amzn-Trace-Id": trace})
    assert r.headers["x-request-id"] == trace
    r = http.get("/api/health", headers={"X-Amzn-Trace-Id": "trace-123", "X-Request-Id": "custom-id.2/+=:"})
    assert r.headers["x-request-id"] == "custom-id.2/+=:"
    r = http.get(f"/api/models/alice/{unique_name('ghost')}", headers={"X-Request-Id": "on-an-error"})
    assert r.status_code in (401, 404) and r.headers["x-request-id"] == "on-an-error"


def test_an_insane_client_request_id_is_ignored(live_hub, http):
    """Too long, with spaces, outside the allowed characters: the server's own id is answered (and
    an insane X-Request-Id falls back to a sane X-Amzn-Trace-Id)."""
    ours = re.compile(r"[0-9a-f]{32}")
    for bad in ("x" * 129, "has space", "semi;colon but space", "quote\"d", "uni\u00e9".encode().decode("latin-1"),
                "<script>"):
        r = http.get("/api/health", headers={"X-Request-Id": bad.encode("latin-1")})
        assert ours.fullmatch(r.headers["x-request-id"]), bad
        r = http.get("/api/health", headers={"X-Amzn-Trace-Id": bad.encode("latin-1")})
        assert ours.fullmatch(r.headers["x-request-id"]), bad
    assert http.get("/api/health", headers={"X-Request-Id": "x" * 128}).headers["x-request-id"] == "x" * 128
    r = http.get("/api/health", headers={"X-Request-Id": "bad id", "X-Amzn-Trace-Id": "trace-1"})
    assert r.headers["x-request-id"] == "trace-1"
    # Two answers without a client id never share ours.
    assert http.get("/api/health").headers["x-request-id"] != http.get("/api/health").headers["x-request-id"]
    # A bare CR or LF inside the value, sent on a raw socket (httpx refuses to): the server's HTTP
    # parser refuses the request, or the id is ignored; never echoed into our answer's headers.
    host, port = live_hub.url.rsplit("/", 1)[1].rsplit(":", 1)
    for bad in (b"evil\rX-Injected: 1", b"evil\nX-Injected: 1"):
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Request-Id: " + bad +
                         b"\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        head = answer.split(b"\r\n\r\n", 1)[0].lower()
        assert b"x-injected" not in head and b"evil" not in head, answer
        if head.startswith(b"http/1.1 200"):
            assert re.search(rb"\r\nx-request-id: [0-9a-f]{32}\r\n", head + b"\r\n"), head


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
