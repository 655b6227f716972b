"""Domain mode (``AICOMMONS_SPACES_DOMAIN``): each space answers on its own sub-host, ``host`` names
it, and a private space's sub-host answers like a missing repo to others."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from tests.conftest import unique_name


@pytest.fixture
def client(tmp_path, monkeypatch):
    import aicommons.cli.main as cli
    from aicommons.app import create_app
    from aicommons.config import Settings

    monkeypatch.setenv("AICOMMONS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AICOMMONS_SPACES_DOMAIN", "apps.example.test")
    for args in (["user", "create", "alice"], ["token", "create", "alice", "--value", "hf_domain_alice_00001"],
                 ["user", "create", "bob"], ["token", "create", "bob", "--value", "hf_domain_bob_000001"]):
        assert cli.main(args) == 0
    with TestClient(create_app(Settings.from_env()), base_url="http://hub.example.test") as c:
        yield c


def _static_space(client, name: str, private: bool) -> None:
    alice = {"Authorization": "Bearer hf_domain_alice_00001"}
    assert client.post("/api/repos/create", json={"name": name, "type": "space", "sdk": "static",
                                                  "private": private}, headers=alice).status_code == 200
    import base64
    import json

    body = "\n".join(json.dumps(x) for x in (
        {"key": "header", "value": {"summary": "page"}},
        {"key": "file", "value": {"path": "index.html", "encoding": "base64",
                                  "content": base64.b64encode(b"<h1>on its own host</h1>").decode()}}))
    assert client.post(f"/api/spaces/alice/{name}/commit/main", content=body, headers={
        **alice, "Content-Type": "application/x-ndjson"}).status_code == 200


def test_each_space_answers_on_its_own_sub_host(client):
    name = unique_name("site")
    _static_space(client, name, private=False)
    info = client.get(f"/api/spaces/alice/{name}").json()
    assert info["host"] == f"http://alice-{name}.apps.example.test" and info["subdomain"] == f"alice-{name}"
    page = client.get("/", headers={"Host": f"alice-{name}.apps.example.test"})
    assert page.status_code == 200 and "on its own host" in page.text
    assert "sandbox" not in page.headers.get("content-security-policy", "")  # its own origin: not needed
    missing = client.get("/", headers={"Host": "alice-no-such-space.apps.example.test"})
    assert (missing.status_code, missing.headers.get("x-error-code")) == (401, "RepoNotFound")  # not the hub's pages


def test_private_space_sub_host_answers_like_a_missing_one(client):
    name = unique_name("hidden")
    _static_space(client, name, private=True)
    host = {"Host": f"alice-{name}.apps.example.test"}
    assert "on its own host" in client.get("/", headers={**host, "Authorization": "Bearer hf_domain_alice_00001"}).text
    bob = {"Authorization": "Bearer hf_domain_bob_000001"}
    other = client.get("/", headers={**host, **bob})
    missing = client.get("/", headers={"Host": f"alice-{unique_name()}.apps.example.test", **bob})
    assert (other.status_code, other.headers.get("x-error-code"), other.content) == \
        (missing.status_code, missing.headers.get("x-error-code"), missing.content) == (404, "RepoNotFound", other.content)


def test_the_hubs_own_host_serves_no_app(client):
    """An app on the hub's own host would run its scripts on the hub's origin with the visitor's
    session cookie (domain mode sends no ``sandbox`` rule): only the app's sub-host serves it."""
    name = unique_name("nothere")
    _static_space(client, name, private=False)
    for path in (f"/spaces-apps/alice/{name}/", f"/spaces-apps/alice/{name}/index.html", f"/spaces-apps/alice/{name}"):
        page = client.get(path, follow_redirects=False)
        assert page.status_code == 404 and "on its own host" not in page.text, path
    from starlette.websockets import WebSocketDisconnect

    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect(f"/spaces-apps/alice/{name}/ws"):
        pass
    assert refused.value.code == 1008
    page = client.get("/index.html", headers={"Host": f"alice-{name}.apps.example.test"})
    assert page.status_code == 200 and "on its own host" in page.text
