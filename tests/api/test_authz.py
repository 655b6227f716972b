"""Regression tests for the authorization findings of issue 9 (1, 2, 3, 4, 7), against the live hub
with httpx and the real huggingface_hub client. The whole route table is covered by
``test_authz_matrix.py``; these pin the attacks that were reproduced."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from tests.conftest import ALICE_READ_TOKEN, ALICE_TOKEN, BOB_TOKEN, auth, unique_name

BOB_READ_TOKEN = "hf_bob_read_token_for_authz_tests_01"
SECRET = b"the gated weights: 0123456789abcdef\n"


@pytest.fixture(scope="module")
def bob_read(live_hub) -> str:
    live_hub.cli("token", "create", "bob", "--role", "read", "--value", BOB_READ_TOKEN, check=False)
    return BOB_READ_TOKEN


def _ndjson(summary: str, files: dict[str, bytes] | None = None, deleted: tuple[str, ...] = ()) -> bytes:
    lines = [{"key": "header", "value": {"summary": summary, "description": ""}}]
    for path, data in (files or {}).items():
        lines.append({"key": "file", "value": {"path": path, "content": base64.b64encode(data).decode(),
                                               "encoding": "base64"}})
    for path in deleted:
        lines.append({"key": "deletedFile", "value": {"path": path}})
    return b"\n".join(json.dumps(line).encode() for line in lines)


def _commit(http, repo_id: str, revision: str, body: bytes, token: str | None, create_pr: bool = False):
    headers = {"Content-Type": "application/x-ndjson", **(auth(token) if token else {})}
    return http.post(f"/api/models/{repo_id}/commit/{revision}", params={"create_pr": "1"} if create_pr else None,
                     content=body, headers=headers)


def _objects(data_dir: Path) -> int:
    """Every git object file and pack under the hub's git store."""
    return sum(1 for p in (data_dir / "git").rglob("*") if p.is_file() and "/objects/" in p.as_posix())


def _audit(live_hub, repo_id: str) -> list[tuple[str, str, int]]:
    out = live_hub.cli("audit", "--limit", "1000", "--target", repo_id).stdout
    events = []
    for line in out.splitlines():
        _, who, _, action, _ = line.split("\t")[:5]
        what, status = action.split(" -> ")
        events.append((who, what, int(status)))
    return events


@pytest.fixture
def gated_repo(http) -> str:
    """alice's manually gated repo holding a secret file, with a PR of alice's that changes it."""
    repo_id = f"alice/{unique_name('gated')}"
    assert http.post("/api/repos/create", json={"name": repo_id}, headers=auth(ALICE_TOKEN)).status_code == 200
    assert _commit(http, repo_id, "main", _ndjson("add", {"secret.txt": SECRET}), ALICE_TOKEN).status_code == 200
    pr = _commit(http, repo_id, "main", _ndjson("change", {"secret.txt": SECRET + b"more\n"}), ALICE_TOKEN,
                 create_pr=True)
    assert pr.status_code == 200, pr.text
    assert http.put(f"/api/models/{repo_id}/settings", json={"gated": "manual"},
                    headers=auth(ALICE_TOKEN)).status_code == 200
    return repo_id


# --- finding 1: gated content through PRs, preupload and history --------------------------------------


def test_unapproved_user_cannot_open_a_pr_on_a_gated_repo(http, gated_repo, live_hub):
    before = _objects(live_hub.data_dir)
    opened = _commit(http, gated_repo, "main", _ndjson("delete all", deleted=("secret.txt",)), BOB_TOKEN,
                     create_pr=True)
    assert opened.status_code == 403 and opened.headers["X-Error-Code"] == "GatedRepo"
    assert _objects(live_hub.data_dir) == before
    # Nor through the discussions API.
    created = http.post(f"/api/models/{gated_repo}/discussions", headers=auth(BOB_TOKEN),
                        json={"title": "my PR", "pullRequest": True})
    assert created.status_code == 403 and created.headers["X-Error-Code"] == "GatedRepo"


@pytest.mark.parametrize("who", ["anonymous", "bob"])
def test_pr_diff_and_conflicts_need_approval(http, gated_repo, who):
    headers = auth(BOB_TOKEN) if who == "bob" else {}
    status = 403 if who == "bob" else 401
    diff = http.get(f"/api/models/{gated_repo}/discussions/1", params={"diff": "1"}, headers=headers)
    assert diff.status_code == status and diff.headers["X-Error-Code"] == "GatedRepo"
    assert SECRET.decode().strip() not in diff.text
    details = http.get(f"/api/models/{gated_repo}/discussions/1", headers=headers)
    assert details.status_code == 200 and details.json()["filesWithConflicts"] == []  # metadata stays public
    page = http.get(f"/{gated_repo}/discussions/1", headers=headers)
    assert page.status_code == 200 and "0123456789abcdef" not in page.text
    # The owner still sees it all.
    owner = http.get(f"/api/models/{gated_repo}/discussions/1", params={"diff": "1"}, headers=auth(ALICE_TOKEN))
    assert "0123456789abcdef" in owner.json()["diff"]


def test_pr_diff_is_shown_once_approved(http, gated_repo):
    assert http.post(f"/api/models/{gated_repo}/user-access-request/grant", json={"user": "bob"},
                     headers=auth(ALICE_TOKEN)).status_code == 200
    diff = http.get(f"/api/models/{gated_repo}/discussions/1", params={"diff": "1"}, headers=auth(BOB_TOKEN))
    assert diff.status_code == 200 and "0123456789abcdef" in diff.json()["diff"]


def test_preupload_and_history_need_approval(http, gated_repo, bob_read):
    body = {"files": [{"path": "secret.txt", "size": 10, "sample": ""}]}
    for token, status in ((bob_read, 403), (BOB_TOKEN, 403), (None, 401)):
        headers = auth(token) if token else {}
        pre = http.post(f"/api/models/{gated_repo}/preupload/main", params={"create_pr": "1"}, json=body,
                        headers=headers)
        assert pre.status_code == status, pre.text
        assert "oid" not in pre.text
        commits = http.get(f"/api/models/{gated_repo}/commits/main", headers=headers)
        assert commits.status_code == status and commits.headers["X-Error-Code"] == "GatedRepo"


def test_web_commits_page_hides_a_gated_history(http, live_hub):
    repo_id = f"alice/{unique_name('gatedweb')}"
    http.post("/api/repos/create", json={"name": repo_id}, headers=auth(ALICE_TOKEN))
    marker = "Confidential-commit-subject-4711"
    assert _commit(http, repo_id, "main", _ndjson(marker, {"a.txt": b"a"}), ALICE_TOKEN).status_code == 200
    assert marker in http.get(f"/{repo_id}/commits/main").text  # public: shown
    http.put(f"/api/models/{repo_id}/settings", json={"gated": "auto"}, headers=auth(ALICE_TOKEN))
    assert marker not in http.get(f"/{repo_id}/commits/main").text
    assert marker not in http.get(f"/{repo_id}/commits/main", headers=auth(BOB_TOKEN)).text


# --- finding 2: refused writes write nothing, and are audited -------------------------------------------


@pytest.mark.parametrize("who", ["anonymous", "read token", "bob read token"])
def test_refused_commits_write_no_git_object(http, live_hub, repo_id, bob_read, who):
    token = {"anonymous": None, "read token": ALICE_READ_TOKEN, "bob read token": bob_read}[who]
    body = _ndjson("garbage", {f"f{i}.bin": f"payload {i} {who}".encode() * 100 for i in range(20)})
    before = _objects(live_hub.data_dir)
    for create_pr in (True, False):
        answer = _commit(http, repo_id, "main", body, token, create_pr=create_pr)
        assert answer.status_code == (401 if token is None else 403), answer.text
    assert _objects(live_hub.data_dir) == before
    refused = [e for e in _audit(live_hub, repo_id) if "/commit/" in e[1]]
    expected = 401 if token is None else 403
    assert len([e for e in refused if e[2] == expected]) >= 2


# --- finding 3: read tokens change nothing --------------------------------------------------------------


def test_read_token_cannot_commit_to_its_owners_pr(http, repo_id, live_hub):
    opened = _commit(http, repo_id, "main", _ndjson("a pull request", {"a.txt": b"a"}), ALICE_TOKEN, create_pr=True)
    assert opened.status_code == 200
    num = opened.json()["pullRequestUrl"].rsplit("/", 1)[1]
    before = _objects(live_hub.data_dir)
    added = _commit(http, repo_id, f"refs%2Fpr%2F{num}", _ndjson("more", {"b.txt": b"b"}), ALICE_READ_TOKEN)
    assert added.status_code == 403 and added.headers["X-Error-Code"] == "Forbidden"
    assert _objects(live_hub.data_dir) == before
    # The write token still can.
    assert _commit(http, repo_id, f"refs%2Fpr%2F{num}", _ndjson("more", {"b.txt": b"b"}), ALICE_TOKEN).status_code == 200


def test_read_token_cannot_like_or_ask_for_access(http, repo_id, bob_read):
    liked = http.post(f"/api/models/{repo_id}/like", headers=auth(bob_read))
    assert liked.status_code == 403
    assert http.get(f"/api/models/{repo_id}/likers").json() == []
    http.put(f"/api/models/{repo_id}/settings", json={"gated": "auto"}, headers=auth(ALICE_TOKEN))
    asked = http.post(f"/api/models/{repo_id}/ask-access", json={"reason": "x"}, headers=auth(bob_read))
    assert asked.status_code == 403
    accepted = http.get(f"/api/models/{repo_id}/user-access-request/accepted", headers=auth(ALICE_TOKEN)).json()
    assert accepted == []
    for path in ("discussions", "discussions/1/comment"):
        assert http.post(f"/api/models/{repo_id}/{path}", json={"title": "hello", "comment": "x"},
                         headers=auth(bob_read)).status_code == 403
    # Bob's write token may.
    assert http.post(f"/api/models/{repo_id}/like", headers=auth(BOB_TOKEN)).status_code == 200
    assert http.post(f"/api/models/{repo_id}/ask-access", json={}, headers=auth(BOB_TOKEN)).json() == {"status": "accepted"}


# --- finding 4: a private repo answers like a missing one, on every sub-path and method -----------------

METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
SUBPATHS = ["anything", "anything/deeper/still", "refs", "discussions", "discussions/1", "like", "settings",
            "commit/main", "tree/main", "xet-read-token/main", "lfs-files", "user-access-request/pending", ""]


@pytest.mark.parametrize("token", [None, BOB_TOKEN], ids=["anonymous", "signed-in"])
def test_private_repo_is_indistinguishable_from_a_missing_one(http, api, token):
    private = f"alice/{unique_name('private')}"
    api.create_repo(private, private=True)
    missing = f"alice/{unique_name('missing')}"
    headers = auth(token) if token else {}
    for sub in SUBPATHS:
        for method in METHODS:
            suffix = f"/{sub}" if sub else ""
            a = http.request(method, f"/api/models/{private}{suffix}", headers=headers)
            b = http.request(method, f"/api/models/{missing}{suffix}", headers=headers)
            where = f"{method} {sub!r}"
            assert a.status_code == b.status_code, where
            assert a.headers.get("X-Error-Code") == b.headers.get("X-Error-Code"), where
            assert a.content == b.content, where
            if method != "HEAD":
                assert a.headers.get("X-Error-Code") == "RepoNotFound", where
                assert a.status_code == (401 if token is None else 404), where
    # And the owner sees an unknown endpoint as such.
    unknown = http.get(f"/api/models/{private}/anything", headers=auth(ALICE_TOKEN))
    assert unknown.status_code == 404 and unknown.headers["X-Error-Code"] == "NotFound"


# --- finding 7: lfs-files/duplicate needs write access to the target, and is audited there -------------


def test_duplicate_needs_write_access_to_the_target(http, live_hub, repo_id):
    bobs = f"bob/{unique_name('source')}"
    assert http.post("/api/repos/create", json={"name": bobs}, headers=auth(BOB_TOKEN)).status_code == 200
    oid = "a" * 64  # need not be an object of the source: the target check comes first
    body = {"target": {"type": "model", "name": repo_id}, "files": [{"sha256": oid}]}
    dup = http.post(f"/api/models/{bobs}/lfs-files/duplicate", json=body, headers=auth(BOB_TOKEN))
    assert dup.status_code == 403 and dup.headers["X-Error-Code"] == "Forbidden", dup.text
    events = _audit(live_hub, repo_id)
    assert any(who == "bob" and "duplicate" in what and status == 403 for who, what, status in events), events
    # Anonymous: refused too.
    assert http.post(f"/api/models/{bobs}/lfs-files/duplicate", json=body).status_code == 401
    # alice, who writes to her repo, may duplicate from a repo she can read.
    ok = http.post(f"/api/models/{bobs}/lfs-files/duplicate", json=body, headers=auth(ALICE_TOKEN))
    assert ok.status_code == 200
    assert any(who == "alice" and "duplicate" in what and status == 200 for who, what, status in _audit(live_hub, repo_id))
