"""Whose address a request comes from: forwarded headers (``X-Forwarded-For``) count only from the
proxies the operator lists (``AICOMMONS_TRUSTED_PROXIES``, default none), and never from a Space
app, whose calls reach the hub through the relay from an address of their own (127.0.0.2). The
per-IP limits show which address the hub believed: anonymous API calls, 5 per minute per address."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfApi

from tests.conftest import _SCRATCH, _free_port, server_env, start_hub, stop_hub, unique_name
from tests.spaces.conftest import GRADIO, TOKENS, run_log, start_spaces_hub, wait_stage

LIMIT = "5"


def _statuses(url: str, addresses: list[str]) -> list[int]:
    return [httpx.get(f"{url}/api/models", headers={"X-Forwarded-For": ip}, timeout=30).status_code
            for ip in addresses]


def test_without_trusted_proxies_forwarded_for_is_ignored():
    data = _SCRATCH / "no-proxies"
    data.mkdir()
    hub = start_hub(data, _free_port(), AICOMMONS_ANON_API_REQUESTS_PER_MINUTE=LIMIT)
    try:
        statuses = _statuses(hub.url, [f"198.51.100.{n}" for n in range(8)])
        assert statuses[:5] == [200] * 5 and set(statuses[5:]) == {429}, statuses  # one caller: 127.0.0.1
    finally:
        stop_hub(hub)


def test_the_relay_address_cannot_be_trusted_while_spaces_run():
    env = server_env(_SCRATCH / "refused", _free_port(), AICOMMONS_TRUSTED_PROXIES="127.0.0.0/8")
    done = subprocess.run([sys.executable, "-m", "aicommons.cli.main", "serve"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode != 0 and "127.0.0.2" in done.stderr and "forge" in done.stderr


PROBE = b'''import http.server, json, os, urllib.error, urllib.request

class Probe(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        statuses = []
        for n in range(8 if self.path == "/probe" else 0):  # (not on the hub's readiness check)  # a different forged client address on each call
            request = urllib.request.Request(os.environ["HF_ENDPOINT"] + "/api/models",
                                             headers={"X-Forwarded-For": f"203.0.113.{n}"})
            try:
                statuses.append(urllib.request.urlopen(request, timeout=30).status)
            except urllib.error.HTTPError as exc:
                statuses.append(exc.code)
        body = json.dumps(statuses).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

http.server.ThreadingHTTPServer(("127.0.0.1", 7860), Probe).serve_forever()
'''


@pytest.fixture(scope="module")
def proxied_hub():
    """A hub behind a proxy on this machine (127.0.0.1 trusted), as docs/deploy.md sets one up."""
    hub = start_spaces_hub("proxied-hub", AICOMMONS_TRUSTED_PROXIES="127.0.0.1",
                           AICOMMONS_ANON_API_REQUESTS_PER_MINUTE=LIMIT)
    yield hub
    stop_hub(hub)


def test_a_trusted_proxy_names_the_client_but_a_space_cannot(proxied_hub):
    assert _statuses(proxied_hub.url, [f"198.51.100.{n}" for n in range(8)]) == [200] * 8  # 8 callers
    api = HfApi(endpoint=proxied_hub.url, token=TOKENS["alice"])
    space_id = f"alice/{unique_name('forger')}"
    api.create_repo(space_id, repo_type="space", space_sdk="gradio")
    api.create_commit(space_id, repo_type="space", commit_message="app", operations=[
        CommitOperationAdd("app.py", PROBE), CommitOperationAdd("requirements.txt", GRADIO.encode())])
    stage = wait_stage(api, space_id, {"RUNNING", "BUILD_ERROR", "RUNTIME_ERROR"})
    assert stage == "RUNNING", (run_log(proxied_hub, space_id, "build"), run_log(proxied_hub, space_id))
    answer = httpx.get(f"{proxied_hub.url}/spaces-apps/{space_id}/probe", timeout=120,
                       headers={"Authorization": f"Bearer {TOKENS['alice']}"})
    statuses = json.loads(answer.text)
    # The app's forged addresses are ignored: its 8 calls are one caller's, limited after 5.
    assert statuses[:5] == [200] * 5 and set(statuses[5:]) == {429}, statuses
    api.delete_repo(space_id, repo_type="space")
