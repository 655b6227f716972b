"""Files from repos are served so that a browser never runs them on the hub's origin, where the web
UI's session cookie lives: scripts in HTML/SVG/XML come back as plain text, never sniffed, and
inside a CSP sandbox. huggingface_hub does not care about these headers; downloads stay byte-exact."""

from __future__ import annotations

import pytest
from huggingface_hub import CommitOperationAdd

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
