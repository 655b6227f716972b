"""Hostile input on every backend: a clear 4xx with the Hub's error code, never a 5xx, a dropped
connection, or a silently different result (issue 9 findings 10-12, issue 19 finding 6).

Runs on SQLite and, with ``AICOMMONS_TEST_BACKEND=postgres-s3``, on PostgreSQL + S3.
"""

from __future__ import annotations

import json

import pytest

from tests.api.test_bad_input import NDJSON, add_line, assert_error, commit_body, head
from tests.conftest import ALICE_TOKEN, auth

HUGE = "9" * 30  # beyond bigint, sys.maxsize and SQLite INTEGER


def commit(http, repo_id, *lines, raw: bytes | None = None, rev: str = "main"):
    return http.post(f"/api/models/{repo_id}/commit/{rev}", headers={**auth(ALICE_TOKEN), **NDJSON},
                     content=raw if raw is not None else commit_body(*lines))


def tree_paths(http, repo_id) -> set[str]:
    """The files (not folders) at the head of main."""
    r = http.get(f"/api/models/{repo_id}/tree/main", params={"recursive": "1"}, headers=auth(ALICE_TOKEN))
    assert r.status_code == 200, r.text
    return {e["path"] for e in r.json() if e["type"] == "file"}


# --- finding 10: revisions, bodies, numbers, NUL, .git, surrogates ---------------------------------

def test_malformed_pr_revision_is_not_found_everywhere(http, repo_id):
    for url in (f"/api/models/{repo_id}/revision/refs%2Fpr%2Fabc", f"/api/models/{repo_id}/tree/refs%2Fpr%2Fabc",
                f"/{repo_id}/resolve/refs%2Fpr%2Fabc/README.md"):
        assert_error(http.get(url, headers=auth(ALICE_TOKEN)), 404, "RevisionNotFound")
    before = head(http, repo_id)
    for rev in ("refs%2Fpr%2Fabc", "refs%2Fpr%2F" + HUGE, "refs%2Fpr%2F0", "refs%2Fpr%2F-1"):
        assert_error(commit(http, repo_id, add_line("x.txt"), rev=rev), 404, "RevisionNotFound")
    assert head(http, repo_id) == before


@pytest.mark.parametrize("body", [b"[1, 2]", b'"paths"', b"3", b"null", b'{"paths": "a"}', b'{"paths": [1]}'])
def test_paths_info_body_that_is_not_an_object(http, repo_id, body):
    r = http.post(f"/api/models/{repo_id}/paths-info/main", content=body,
                  headers={**auth(ALICE_TOKEN), "Content-Type": "application/json"})
    assert_error(r, 400, "BadRequest")


def test_paths_info_skips_paths_no_file_can_have(http, repo_id):
    r = http.post(f"/api/models/{repo_id}/paths-info/main", json={"paths": [".gitattributes", "a\u202eb", "x\u0007"]},
                  headers=auth(ALICE_TOKEN))
    assert r.status_code == 200 and [e["path"] for e in r.json()] == [".gitattributes"]


def test_json_nested_100k_deep_is_a_400(http, repo_id):
    deep = b"[" * 100_000 + b"]" * 100_000
    deep_obj = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    for url, body, ctype in [
        ("/api/repos/create", deep, "application/json"),
        ("/api/repos/create", deep_obj, "application/json"),
        (f"/api/models/{repo_id}/paths-info/main", deep, "application/json"),
        (f"/api/models/{repo_id}/discussions", b'{"title": "t", "description": ' + b"[" * 70 + b"]" * 70 + b"}",
         "application/json"),
        (f"/{repo_id}.git/info/lfs/objects/batch", deep, "application/vnd.git-lfs+json"),
    ]:
        r = http.post(url, content=body, headers={**auth(ALICE_TOKEN), "Content-Type": ctype})
        assert_error(r, 400, "BadRequest", "nested more than")
    before = head(http, repo_id)
    r = commit(http, repo_id, raw=commit_body(add_line("a.txt")) + b"\n" + deep)
    assert_error(r, 400, "BadRequest", "nested more than")
    assert head(http, repo_id) == before


@pytest.mark.parametrize("query", [
    "/api/models?cursor=" + HUGE, "/api/models?limit=" + HUGE, "/api/models?cursor=9223372036854775808",
    "/api/models?cursor=-1", "/api/models?limit=0", "/api/models?cursor=1e9", "/api/models?cursor=%D9%A1",
    "/api/datasets?cursor=" + "9" * 5000,
    "{repo}/commits/main?cursor=" + HUGE, "{repo}/commits/main?limit=" + HUGE, "{repo}/commits/main?cursor=" + "9" * 19,
    "{repo}/tree/main?cursor=" + HUGE, "{repo}/discussions?p=" + HUGE, "{repo}/discussions?p=9223372036854775807",
])
def test_numbers_too_large_for_the_database_are_a_400(http, repo_id, query):
    r = http.get(query.replace("{repo}", f"/api/models/{repo_id}"), headers=auth(ALICE_TOKEN))
    assert_error(r, 400, "BadRequest", "Query parameter")


def test_large_numbers_within_range_answer_empty_pages(http, repo_id):
    for url in [f"/api/models/{repo_id}/commits/main?cursor=2147483647",
                f"/api/models/{repo_id}/discussions?p=2147483647"]:
        r = http.get(url, headers=auth(ALICE_TOKEN))
        assert r.status_code == 200, (url, r.text)


@pytest.mark.parametrize("cursor", [
    "2147483647", "0", "WzEsMiwzXQ", "WyJ4IiwgMSwgMV0", "WzEsIC0xLCAwXQ", "WzFlOTksIDEsIDFd",
    "Wzk5OTk5OTk5OTk5OTk5OTk5OTk5OTksIDEsIDFd", "eyJhIjogMX0", "Wy4uLl0", "x" * 600,
])
def test_listing_cursors_are_opaque_and_checked(http, cursor):
    """Listings page by keyset (an opaque cursor from the Link header): anything else, including the
    offsets of earlier versions and numbers no column can hold, is a 400, never a 500."""
    for url in [f"/api/models?cursor={cursor}", f"/api/models?sort=downloads&cursor={cursor}"]:
        r = http.get(url, headers=auth(ALICE_TOKEN))
        if cursor == "WzEsMiwzXQ" and "sort" in url:  # [1, 2, 3]: a well-formed downloads cursor
            assert r.status_code == 200, r.text
        else:
            assert_error(r, 400, "BadRequest", "Query parameter")


@pytest.mark.parametrize("num", [HUGE, "2147483648", "0", "-1", "1e3", "abc"])
def test_discussion_numbers_out_of_range_are_not_found(http, repo_id, num):
    assert_error(http.get(f"/api/models/{repo_id}/discussions/{num}", headers=auth(ALICE_TOKEN)), 404, None)
    r = http.post(f"/api/models/{repo_id}/discussions/{num}/comment", json={"comment": "hi"}, headers=auth(ALICE_TOKEN))
    assert_error(r, 404, None)


@pytest.mark.parametrize("url", [
    "/{repo}/resolve/ma%00in/README.md", "/{repo}/resolve/main/READ%00ME.md", "/{repo}/resolve/ma%0Ain/README.md",
    "/{repo}/resolve/main/a%0D%0AX-Evil:%201", "/api/models/{repo}/tree/main/a%00b", "/api/models/{repo}/revision/a%00b",
    "/api/models/{repo}/tree/%07", "/api/models/alice/na%00me", "/api/users/al%00ice/likes",
])
def test_nul_and_controls_in_a_url_never_reach_a_header(http, repo_id, url):
    r = http.get(url.replace("{repo}", repo_id), headers=auth(ALICE_TOKEN))  # a dropped connection raises here
    assert_error(r, 400, "BadRequest")


@pytest.mark.parametrize("path", ["a/.git/config", ".GIT/config", "x/.Git/hooks/post", ".git./config", "a/.git /x",
                                  "git~1/config", "d\\.git\\config"])
def test_git_component_anywhere_in_any_case_is_refused(http, repo_id, path):
    before = head(http, repo_id)
    assert_error(commit(http, repo_id, add_line("ok.txt"), add_line(path)), 422, "InvalidPath", "'.git' is reserved")
    assert head(http, repo_id) == before


def test_lone_surrogates_in_path_or_summary_are_a_400(http, repo_id):
    before = head(http, repo_id)
    header = json.dumps({"key": "header", "value": {"summary": "s"}}).encode()
    bad_path = b'{"key": "file", "value": {"path": "a\\ud800.txt", "content": "eA=="}}'
    bad_summary = b'{"key": "header", "value": {"summary": "s\\udfff"}}'
    good = json.dumps(add_line("ok.txt")).encode()
    assert_error(commit(http, repo_id, raw=header + b"\n" + bad_path), 422, "InvalidPath", "lone surrogate")
    for raw in (bad_summary + b"\n" + good,
                b'{"key": "header", "value": {"summary": "s", "description": "\\ud83d"}}\n' + good,
                b'{"key": "header", "value": {"summary": "s\\u0000"}}\n' + good):
        assert_error(commit(http, repo_id, raw=raw), 400, "BadRequest", "is not allowed in text")
    r = http.post(f"/api/models/{repo_id}/preupload/main", content=b'{"files": [{"path": "\\udc80", "size": 1}]}',
                  headers={**auth(ALICE_TOKEN), "Content-Type": "application/json"})
    assert_error(r, 400, "BadRequest", "lone surrogate")
    assert head(http, repo_id) == before


# --- issue 19 finding 6: text a backend cannot store, refused alike on SQLite and PostgreSQL ---------

@pytest.mark.parametrize("query", ["search=a%00b", "author=al%00ice", "filter=x%00", "sort=%00", "search=%00%00%00"])
def test_nul_in_listing_parameters_is_a_400(http, query):
    for kind in ("models", "datasets", "spaces"):
        assert_error(http.get(f"/api/{kind}?{query}"), 400, "BadRequest", "NUL")


def test_nul_and_surrogates_in_discussion_text_are_refused_not_stored(http, repo_id):
    bad = [b'{"title": "a\\u0000b", "description": "d"}', b'{"title": "t", "description": "x\\u0000y"}',
           b'{"title": "a\\ud800", "description": "d"}', b'{"tit\\u0000le": "t"}']
    for body in bad:
        r = http.post(f"/api/models/{repo_id}/discussions", content=body,
                      headers={**auth(ALICE_TOKEN), "Content-Type": "application/json"})
        assert_error(r, 400, "BadRequest")
    ok = http.post(f"/api/models/{repo_id}/discussions", json={"title": "fine", "description": "d"},
                   headers=auth(ALICE_TOKEN))
    assert ok.status_code == 200, ok.text
    num = ok.json()["num"]
    for url, body in [(f"discussions/{num}/comment", b'{"comment": "evil\\u0000"}'),
                      (f"discussions/{num}/title", b'{"title": "evil\\u0000"}')]:
        r = http.post(f"/api/models/{repo_id}/{url}", content=body,
                      headers={**auth(ALICE_TOKEN), "Content-Type": "application/json"})
        assert_error(r, 400, "BadRequest", "NUL")
    details = http.get(f"/api/models/{repo_id}/discussions/{num}", headers=auth(ALICE_TOKEN)).json()
    assert "\x00" not in json.dumps(details) and "\\u0000" not in json.dumps(details)
    assert details["title"] == "fine" and len(details["events"]) == 1


def test_nul_in_a_basic_auth_user_name_is_invalid_credentials(http):
    import base64 as b64

    for user in ("ali\x00ce", "\x00"):
        creds = b64.b64encode(f"{user}:wonderland".encode()).decode()
        r = http.get("/api/whoami-v2", headers={"Authorization": f"Basic {creds}"})
        assert_error(r, 401, "Unauthorized")


def test_nul_in_names_is_a_400(http):
    for body in (b'{"name": "a\\u0000b"}', b'{"name": "ok", "organization": "al\\u0000ice"}'):
        r = http.post("/api/repos/create", content=body, headers={**auth(ALICE_TOKEN), "Content-Type": "application/json"})
        assert_error(r, 400, "BadRequest")


# --- finding 11: a commit never silently drops a file ------------------------------------------------

def test_file_and_folder_of_the_same_name_in_one_commit_are_refused(http, repo_id):
    before = head(http, repo_id)
    for lines in ([add_line("a"), add_line("a/b")], [add_line("a/b"), add_line("a")],
                  [add_line("d/a"), add_line("d/a/b/c")]):
        assert_error(commit(http, repo_id, *lines), 400, "BadRequest", "Conflicting paths")
    assert head(http, repo_id) == before
    assert tree_paths(http, repo_id) == {".gitattributes"}


def test_file_over_existing_folder_and_folder_over_existing_file_are_refused(http, repo_id):
    assert commit(http, repo_id, add_line("dir/inner.txt"), add_line("plain")).status_code == 200
    before = head(http, repo_id)
    assert_error(commit(http, repo_id, add_line("dir")), 400, "BadRequest", "dir is a folder")
    assert_error(commit(http, repo_id, add_line("plain/x")), 400, "BadRequest", "plain is a file")
    assert head(http, repo_id) == before
    assert {"dir/inner.txt", "plain"} <= tree_paths(http, repo_id)


def test_deleting_first_allows_the_swap(http, repo_id):
    assert commit(http, repo_id, add_line("dir/inner.txt"), add_line("plain")).status_code == 200
    r = commit(http, repo_id, {"key": "deletedFolder", "value": {"path": "dir/"}}, add_line("dir", b"now a file"),
               {"key": "deletedFile", "value": {"path": "plain"}}, add_line("plain/x"))
    assert r.status_code == 200, r.text
    paths = tree_paths(http, repo_id)
    assert {"dir", "plain/x"} <= paths and "dir/inner.txt" not in paths and "plain" not in paths


# --- finding 12: names that mislead ------------------------------------------------------------------

@pytest.mark.parametrize("name", ["HEAD", "FETCH_HEAD", "ORIG_HEAD", "x%E2%80%AEy", "%E2%81%A6rtl", "a%C2%85b"])
def test_misleading_branch_and_tag_names_are_refused(http, repo_id, name):
    r = http.post(f"/api/models/{repo_id}/branch/{name}", json={}, headers=auth(ALICE_TOKEN))
    assert_error(r, 400, "BadRequest", "Invalid reference for a branch")
    from urllib.parse import unquote

    r = http.post(f"/api/models/{repo_id}/tag/main", json={"tag": unquote(name)}, headers=auth(ALICE_TOKEN))
    assert_error(r, 400, "BadRequest", "Invalid tag name")
    refs = http.get(f"/api/models/{repo_id}/refs", headers=auth(ALICE_TOKEN)).json()
    assert [b["name"] for b in refs["branches"]] == ["main"] and refs["tags"] == []


@pytest.mark.parametrize("path", ["evil\u202etxt.exe", "a/\u2066b", "\u200fx", "dir\\..\\config.json", "a\\..\\..\\x",
                                  "dir\\.\\x", "a/b\\..", "x\u0085y"])
def test_misleading_and_windows_escaping_paths_are_refused(http, repo_id, path):
    before = head(http, repo_id)
    assert_error(commit(http, repo_id, add_line(path)), 422, "InvalidPath", "Invalid file path")
    assert head(http, repo_id) == before


def test_ordinary_backslashes_and_unicode_stay_allowed(http, repo_id):
    r = commit(http, repo_id, add_line("odd\\name.txt"), add_line("données/é.txt"), add_line("emoji/👩‍💻.txt"))
    assert r.status_code == 200, r.text
    assert {"odd\\name.txt", "données/é.txt", "emoji/👩‍💻.txt"} <= tree_paths(http, repo_id)


# --- "Bounded everything": the commit body is parsed as it streams ---------------------------------

def test_a_commit_line_longer_than_any_inline_file_is_refused_while_streaming(http, repo_id):
    """The default inline-file limit is 10 MiB: a 16 MiB line cannot be a file the commit would
    accept, so it is refused once the buffered line passes the limit, not after reading the body."""
    before = head(http, repo_id)
    def body():
        yield json.dumps({"key": "header", "value": {"summary": "s"}}).encode() + b"\n"
        yield b'{"key": "file", "value": {"path": "big.txt", "content": "'
        for _ in range(64):
            yield b"A" * (256 * 1024)
        yield b'"}}\n'

    r = http.post(f"/api/models/{repo_id}/commit/main", headers={**auth(ALICE_TOKEN), **NDJSON}, content=body())
    assert_error(r, 413, "PayloadTooLarge", "Line 2 of the commit payload is longer than")
    assert head(http, repo_id) == before


def test_many_lines_stream_into_one_commit(http, repo_id):
    lines = [add_line(f"many/f{i}.txt", str(i).encode()) for i in range(300)]
    raw = commit_body(*lines)
    chunks = (raw[i:i + 777] for i in range(0, len(raw), 777))  # lines cut across chunks
    r = http.post(f"/api/models/{repo_id}/commit/main", headers={**auth(ALICE_TOKEN), **NDJSON}, content=chunks)
    assert r.status_code == 200, r.text
    assert {f"many/f{i}.txt" for i in range(300)} <= tree_paths(http, repo_id)


def test_nul_in_a_web_form_is_a_400_and_nothing_is_stored(live_hub, api, repo_id):
    import re

    import httpx

    with httpx.Client(base_url=live_hub.url, headers={"Origin": live_hub.url}, timeout=30) as web:
        token = re.search(r'name="csrf" value="([^"]*)"', web.get("/login").text).group(1)
        signed = web.post("/login", data={"csrf": token, "username": "alice", "password": "wonderland", "next": "/"})
        assert signed.status_code in (200, 303), signed.text
        page = web.get(f"/{repo_id}/discussions")
        token = re.search(r'name="csrf" value="([^"]*)"', page.text).group(1)
        r = web.post(f"/{repo_id}/discussions/new", data={"csrf": token, "title": "a\x00b", "description": "d"})
        assert r.status_code == 400, r.text
    assert list(api.get_repo_discussions(repo_id)) == []


def test_audited_writes_with_long_paths_are_a_4xx_not_a_500(http):
    """The audit log records each write's path; on PostgreSQL a path longer than its column was a
    500 for the write itself (issue 19 #6: both backends alike)."""
    for url in (f"/api/models/alice/{'x' * 300}/discussions", f"/api/models/{'y' * 120}/z/commit/main",
                f"/api/{'w' * 600}"):
        r = http.post(url, json={"title": "t"}, headers=auth(ALICE_TOKEN))
        assert 400 <= r.status_code < 500, (url, r.status_code, r.text)
