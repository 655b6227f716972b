"""Files from repos are served so that a browser never runs them on the hub's origin, where the web
UI's session cookie lives: scripts in HTML/SVG/XML come back as plain text, never sniffed, and
inside a CSP sandbox. huggingface_hub does not care about these headers; downloads stay byte-exact."""

from __future__ import annotations

import hashlib

import pytest
from huggingface_hub import CommitOperationAdd

from tests.conftest import BOB_TOKEN, auth

PAYLOADS = {
    "page.html": b"<html><script>fetch('/settings/tokens')</script></html>",
    "logo.svg": b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    "feed.xml": b"<?xml version='1.0'?><x:script xmlns:x='http://www.w3.org/1999/xhtml'>alert(1)</x:script>",
    "app.js": b"alert(document.cookie)",
}


@pytest.fixture
def repo_with_active_files(api, repo_id):
    api.create_commit(repo_id, [CommitOperationAdd(name, data) for name, data in PAYLOADS.items()]
                      + [CommitOperationAdd("config.json", b"{}")], commit_message="active content")
    return repo_id


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_active_content_is_served_as_inert_text(http, repo_with_active_files, name):
    r = http.get(f"/{repo_with_active_files}/resolve/main/{name}")
    assert r.status_code == 200 and r.content == PAYLOADS[name]
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-security-policy"].startswith("sandbox")


def test_other_files_keep_their_type_and_are_sandboxed_too(http, repo_with_active_files, api, tmp_path):
    r = http.get(f"/{repo_with_active_files}/resolve/main/config.json")
    assert r.headers["content-type"] == "application/json"
    assert r.headers["content-security-policy"].startswith("sandbox")
    path = api.hf_hub_download(repo_with_active_files, "page.html", cache_dir=tmp_path)
    with open(path, "rb") as f:
        assert f.read() == PAYLOADS["page.html"]


def test_raw_serves_the_file_as_git_stores_it(http, api, repo_id):
    """``/raw/{rev}/{path}``, as on the Hub (``curl .../raw/main/config.json``): a small file's
    bytes, a large file's Git LFS pointer; missing paths, revisions and repos answer as ``/resolve/``."""
    big = bytes(range(256)) * 64
    info = api.create_commit(repo_id, [CommitOperationAdd("config.json", b'{"a": 1}'),
                                       CommitOperationAdd("weights.bin", big)], commit_message="files")
    r = http.get(f"/{repo_id}/raw/main/config.json")
    assert r.status_code == 200 and r.content == b'{"a": 1}', r.text
    assert r.headers["content-type"] == "application/json" and r.headers["x-repo-commit"] == info.oid
    assert r.headers["content-security-policy"].startswith("sandbox")
    pointer = http.get(f"/{repo_id}/raw/{info.oid}/weights.bin")
    assert pointer.status_code == 200 and pointer.headers["content-type"] == "text/plain; charset=utf-8"
    assert pointer.text == (f"version https://git-lfs.github.com/spec/v1\noid sha256:{hashlib.sha256(big).hexdigest()}"
                            f"\nsize {len(big)}\n")
    assert http.get(f"/{repo_id}/resolve/main/weights.bin", follow_redirects=True).content == big  # /resolve/: the content
    assert http.get(f"/{repo_id}/raw/main/nope.json").headers["x-error-code"] == "EntryNotFound"
    assert http.get(f"/{repo_id}/raw/nope/config.json").headers["x-error-code"] == "RevisionNotFound"
    api.update_repo_settings(repo_id, private=True)
    hidden = http.get(f"/{repo_id}/raw/main/config.json", headers=auth(BOB_TOKEN))
    assert hidden.status_code == 404 and hidden.headers["x-error-code"] == "RepoNotFound"
    dataset = f"alice/{repo_id.split('/')[1]}-ds"
    api.create_repo(dataset, repo_type="dataset")
    api.upload_file(path_or_fileobj=b"a,b\n1,2\n", path_in_repo="data.csv", repo_id=dataset, repo_type="dataset")
    assert http.get(f"/datasets/{dataset}/raw/main/data.csv").content == b"a,b\n1,2\n"
