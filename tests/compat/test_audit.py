"""The audit log records changes and refused attempts, by whom and from where, and never a secret;
reads are not recorded. Driven with the real client against the live hub, read with the admin CLI."""

from __future__ import annotations

import re

import pytest
from huggingface_hub import CommitOperationAdd
from huggingface_hub.errors import HfHubHTTPError

from tests.conftest import ALICE_TOKEN, BOB_TOKEN, auth, unique_name


def audit_lines(live_hub, *filters: str) -> list[list[str]]:
    out = live_hub.cli("audit", "--limit", "1000", *filters).stdout
    return [line.split("\t") for line in out.splitlines()]


def test_changes_and_refusals_are_recorded_reads_are_not(live_hub, api, bob_api, http):
    repo_id = f"alice/{unique_name('audited')}"
    api.create_repo(repo_id)
    api.upload_file(path_or_fileobj=b"hello", path_in_repo="a.txt", repo_id=repo_id)  # preupload + commit
    api.model_info(repo_id)
    api.list_repo_files(repo_id)
    with pytest.raises(HfHubHTTPError):  # bob may not write to alice's repo (refused at preupload)
        bob_api.create_commit(repo_id, [CommitOperationAdd("b.txt", b"x")], commit_message="nope")
    bob_commit = http.post(f"/api/models/{repo_id}/commit/main", headers=auth(BOB_TOKEN), content=b"{}")
    assert bob_commit.status_code in (403, 404)
    refused = http.post(f"/api/models/{repo_id}/commit/main", headers=auth("hf_not_a_real_token_000000"),
                        content=b"{}")
    assert refused.status_code == 401
    api.update_repo_settings(repo_id, private=True)

    events = audit_lines(live_hub, "--target", repo_id)
    seen = [(who, action.split(" -> ")[0].split(" ", 1)[0], int(action.split(" -> ")[1]))
            for _, who, _, action, *_ in events]
    assert ("alice", "POST", 200) in seen  # the commit
    assert ("alice", "PUT", 200) in seen  # settings: private
    assert any(who == "bob" and method == "POST" and status in (403, 404) for who, method, status in seen)
    assert ("anonymous", "POST", 401) in seen  # a refused token: no account known
    assert all(method != "GET" for _, method, _ in seen)  # reads are not recorded
    actions = [e[3] for e in events]
    assert not any("/preupload/" in a for a in actions)  # a POST that changes nothing
    assert all(e[2] == "127.0.0.1" and e[4] != "-" for e in events)  # the client IP and request id


def test_the_xet_routes_hf_xet_probes_are_not_recorded(live_hub, http):
    """hf_xet POSTs to routes we do not serve before every xorb and shard (api/xet.py): each 404
    changes nothing, so none is an audit row; any other unknown POST still is."""
    marker = unique_name("probe")
    store = "store1"  # hf_xet posts under the CAS URL the token answer names: /xet-cas/<store>/...
    for path in (f"/xet-cas/v1/xorb-grants/default/{'0' * 64}", "/xet-cas/v2/shards",
                 f"/xet-cas/{store}/v1/xorb-grants/default/{'0' * 64}", f"/xet-cas/{store}/v2/shards",
                 f"/xet-cas/v1/not-a-route/{marker}", f"/xet-cas/{store}/v2/shards/{marker}"):
        assert http.post(path, content=b"x").status_code in (401, 404)
    actions = [e[3] for e in audit_lines(live_hub, "--target", "/xet-cas/")]
    assert not any("xorb-grants" in a or a.split(" ")[1].endswith("/v2/shards") for a in actions)
    assert any(f"not-a-route/{marker}" in a for a in actions)
    assert any(f"/v2/shards/{marker}" in a for a in actions)  # only the exact probe route is left out


def test_repo_creation_and_deletion_name_the_repo(live_hub, api):
    name = unique_name("audited")
    api.create_repo(f"alice/{name}")
    api.delete_repo(f"alice/{name}")
    events = audit_lines(live_hub, "--actor", "alice", "--target", "/api/repos/")
    actions = [e[3] for e in events]
    assert "POST /api/repos/create -> 200" in actions and "DELETE /api/repos/delete -> 200" in actions


def test_admin_commands_are_recorded_without_the_token(live_hub):
    created = live_hub.cli("token", "create", "bob", "--name", "audit-check").stdout.splitlines()[-1]
    live_hub.cli("token", "revoke", created)
    events = audit_lines(live_hub, "--target", "bob")
    actions = [e[3] for e in events]
    assert "cli token create --role write" in actions and "cli token revoke" in actions
    revoke = next(e for e in events if e[3] == "cli token revoke")
    assert revoke[1] == "admin CLI" and revoke[2] == "-"
    assert created not in live_hub.cli("audit", "--limit", "1000").stdout


def test_each_line_names_what_the_event_acted_on(live_hub, http):
    """The sixth column is the event's target: the user a CLI command or a failed sign-in was
    about, the path a request changed (what ``--target`` matches), so an operator reading the log
    without a filter sees who was affected (docs/operations.md lists the columns). The seventh,
    added after it so that ``cut -f6`` still names the target, is the client's request id ('-'
    for events with none: the admin CLI's, a request without a sane id)."""
    name = unique_name("target")
    live_hub.cli("user", "create", name, "--password", "right-password-1234")
    assert http.get("/api/whoami-v2", auth=(name, "not-the-password")).status_code == 401
    lines = audit_lines(live_hub)
    assert all(len(line) == 7 for line in lines)
    created = next(line for line in lines if line[3].startswith("cli user create") and line[5] == name)
    assert created[1] == "admin CLI" and created[6] == "-"
    assert any(line[3] == "sign-in failed (basic) -> 401" and line[5] == name for line in lines)
    request = next(line for line in lines if line[3].startswith("POST ") and " -> " in line[3])
    assert request[5] == request[3].split(" ")[1]  # a request's target is its path


def test_server_errors_are_recorded_with_our_request_id(live_hub, api, http):
    """Issue 9 finding 2: a 500 answered outside the audit middleware was never recorded; finding 12:
    the recorded request id came from a client header. Any 5xx, a read included, is recorded with the
    id the server generated; the client's id, which the answer echoes, is kept beside it."""
    git_root = live_hub.data_dir / "git"
    before = {p for p in git_root.glob("*/*.git")}
    repo_id = f"alice/{unique_name('broken')}"
    api.create_repo(repo_id)
    (repo_dir,) = {p for p in git_root.glob("*/*.git")} - before
    for part in ("objects", "refs"):  # a damaged disk: the server cannot answer
        (repo_dir / part).rename(repo_dir / f"{part}.away")
    try:
        broken = http.get(f"/api/models/{repo_id}/tree/main", headers={"X-Amzn-Trace-Id": "client-chosen",
                                                                        "X-Request-Id": "client-chosen"})
    finally:  # repaired: other tests of this hub (GC walks every repo) must find it whole
        for part in ("objects", "refs"):
            (repo_dir / f"{part}.away").rename(repo_dir / part)
    assert broken.status_code >= 500
    assert broken.headers["x-request-id"] == "client-chosen"  # what the client will quote
    events = audit_lines(live_hub, "--target", repo_id)
    failed = [e for e in events if e[3].startswith("GET ")]
    assert len(failed) == 1 and failed[0][3].endswith(f"-> {broken.status_code}"), events
    assert re.fullmatch(r"[0-9a-f]{32}", failed[0][4]), failed  # the event's id is ours
    assert failed[0][6] == "client-chosen"  # the client's, beside it
    assert not any(e[4] == "client-chosen" for e in events)


def test_the_clients_request_id_is_recorded_beside_ours(live_hub, http):
    """An audited change (a repo created) with a client id: the answer echoes the client's id; the
    event's request id is the server's own, unique per request even when clients repeat an id,
    and the client's is in its own column; without one, that column is '-'."""
    names = [unique_name("reqid"), unique_name("reqid")]
    for name in names:  # two requests claiming the same id
        r = http.post("/api/repos/create", json={"name": name}, headers={**auth(ALICE_TOKEN), "X-Request-Id": "dup-id"})
        assert r.status_code == 200 and r.headers["x-request-id"] == "dup-id"
    plain = unique_name("reqid")
    r = http.post("/api/repos/create", json={"name": plain}, headers=auth(ALICE_TOKEN))
    assert r.status_code == 200
    ours_plain = r.headers["x-request-id"]
    events = [e for e in audit_lines(live_hub, "--actor", "alice", "--target", "/api/repos/create")
              if e[3] == "POST /api/repos/create -> 200"]
    mine = events[-3:]
    assert [e[6] for e in mine] == ["dup-id", "dup-id", "-"], events
    ids = [e[4] for e in mine]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids) and len(set(ids)) == 3, mine
    assert ids[2] == ours_plain  # no client id: the answered id is ours, and the one recorded


def test_xet_uploads_by_the_stock_client_are_recorded_under_the_uploader(live_hub, api, monkeypatch):
    """hf_xet's xorb and shard POSTs carry a Xet token, not the account's: the log names the account
    the token was issued to (api/xet.py ``_grant``), not "anonymous"."""
    import os

    from huggingface_hub import constants

    pytest.importorskip("hf_xet")
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", False)
    repo_id = f"alice/{unique_name('xetaudit')}"
    api.create_repo(repo_id)
    earlier = {tuple(e) for e in audit_lines(live_hub, "--target", "/xet-cas/")}  # other tests' (refusals too)
    api.upload_file(path_or_fileobj=os.urandom(200_000), path_in_repo="w.bin", repo_id=repo_id)
    assert api.get_paths_info(repo_id, ["w.bin"])[0].xet_hash  # it went through Xet
    events = [e for e in audit_lines(live_hub, "--target", "/xet-cas/")
              if e[3].startswith("POST ") and tuple(e) not in earlier]
    shards = [e for e in events if "/v1/shards" in e[3]]
    xorbs = [e for e in events if "/v1/xorbs/" in e[3]]
    assert shards and xorbs, events
    assert {e[1] for e in shards + xorbs} == {"alice"}, events
