"""An app's life seen through the real clients: its token (one per run, revoked when the app stops,
never in a log), a factory reboot that rebuilds its environment, its log files closed when it stops,
a failed build that says why, and the page a browser gets while an app wakes up."""

from __future__ import annotations

import html
import os
import re
import sqlite3
import time

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfApi
from huggingface_hub.errors import HfHubHTTPError

from tests.conftest import unique_name
from tests.spaces.conftest import GRADIO, SLEEP_SECONDS, TOKENS, run_log, wait_stage

APP = b'''import http.server, json, os
print("my token is", os.environ.get("HF_TOKEN"), flush=True)

class App(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"token": os.environ.get("HF_TOKEN", "")}).encode() if self.path == "/token" else b"<h1>up</h1>"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

http.server.ThreadingHTTPServer(("127.0.0.1", 7860), App).serve_forever()
'''
ALICE = {"Authorization": f"Bearer {TOKENS['alice']}"}


def _push(api, files: dict[str, bytes]) -> str:
    space_id = f"alice/{unique_name('life')}"
    api.create_repo(space_id, repo_type="space", space_sdk="gradio")
    api.create_commit(space_id, repo_type="space", commit_message="app",
                      operations=[CommitOperationAdd(p, d) for p, d in files.items()])
    return space_id


def _app_token(hub, space_id: str) -> str:
    return httpx.get(f"{hub.url}/spaces-apps/{space_id}/token", headers=ALICE, timeout=60).json()["token"]


def _works(hub, token: str) -> bool:
    try:
        return HfApi(endpoint=hub.url, token=token).whoami()["name"] == "alice"
    except HfHubHTTPError as exc:
        assert exc.response.status_code == 401
        return False


def _app_tokens(hub, space_id: str) -> int:
    with sqlite3.connect(hub.data_dir / "hub.db") as db:
        return db.execute("SELECT count(*) FROM tokens WHERE origin = 'space' AND name LIKE ?",
                          (f"% {space_id}",)).fetchone()[0]


def _readlink(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""


def _on_a_command_line(value: str) -> bool:
    """Whether any process's command line (readable by every user of the machine) holds ``value``."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if value.encode() in f.read():
                    return True
        except OSError:
            pass
    return False


def _open_logs(hub, space_id: str) -> list[str]:
    """The log files of ``space_id`` that the hub's process holds open."""
    with sqlite3.connect(hub.data_dir / "hub.db") as db:
        repo_id = db.execute("SELECT id FROM repos WHERE type = 'space' AND full_id = ?", (space_id,)).fetchone()[0]
    fds = f"/proc/{hub.process.pid}/fd"
    paths = []
    for fd in os.listdir(fds):
        try:
            paths.append(os.readlink(f"{fds}/{fd}"))
        except OSError:
            pass
    return [p for p in paths if f"/spaces/logs/{repo_id}/" in p]


@pytest.fixture(scope="module")
def life(spaces_api, spaces_hub):
    space_id = _push(spaces_api, {"app.py": APP, "requirements.txt": GRADIO.encode()})
    stage = wait_stage(spaces_api, space_id, {"RUNNING", "BUILD_ERROR", "RUNTIME_ERROR"})
    assert stage == "RUNNING", (run_log(spaces_hub, space_id, "build"), run_log(spaces_hub, space_id))
    return space_id


def test_the_apps_token_lives_as_long_as_the_app(life, spaces_api, spaces_hub):
    first = _app_token(spaces_hub, life)
    assert first.startswith("hf_") and _works(spaces_hub, first) and _app_tokens(spaces_hub, life) == 1
    logs = run_log(spaces_hub, life)
    assert "my token is ***" in logs and first not in logs  # masked like a secret
    assert not _on_a_command_line(first)  # the sandbox's environment is never in its argv (`ps`)
    spaces_api.pause_space(life)
    assert not _works(spaces_hub, first)  # revoked when the app stopped
    assert _open_logs(spaces_hub, life) == []  # and its log file closed
    assert _app_tokens(spaces_hub, life) == 0
    spaces_api.restart_space(life)
    assert wait_stage(spaces_api, life, {"RUNNING", "RUNTIME_ERROR"}) == "RUNNING"
    second = _app_token(spaces_hub, life)
    assert second != first and _works(spaces_hub, second) and not _works(spaces_hub, first)
    assert _app_tokens(spaces_hub, life) == 1  # one per run, never one more per wake
    assert second not in run_log(spaces_hub, life)


def test_factory_reboot_rebuilds_the_environment(life, spaces_api, spaces_hub):
    assert wait_stage(spaces_api, life, {"RUNNING"}) == "RUNNING"
    spaces_api.restart_space(life)  # a plain restart: the environment is reused
    assert wait_stage(spaces_api, life, {"RUNNING", "RUNTIME_ERROR"}) == "RUNNING"
    assert "Using the cached environment" in run_log(spaces_hub, life, "build")
    spaces_api.restart_space(life, factory_reboot=True)
    assert wait_stage(spaces_api, life, {"RUNNING", "BUILD_ERROR", "RUNTIME_ERROR"}) == "RUNNING"
    build = run_log(spaces_hub, life, "build")
    assert "Factory reboot: building the environment" in build and "$ pip install" in build, build
    assert "Using the cached environment" not in build
    assert "<h1>up</h1>" in httpx.get(f"{spaces_hub.url}/spaces-apps/{life}/", headers=ALICE, timeout=60).text


def test_a_browser_finds_a_sleeping_app_waking_up(life, spaces_api, spaces_hub):
    deadline = time.time() + SLEEP_SECONDS + 30
    while spaces_api.space_info(life).runtime.stage != "SLEEPING":  # (space_info does not wake it)
        assert time.time() < deadline, "the idle app never went to sleep"
        time.sleep(1)
    page = httpx.get(f"{spaces_hub.url}/spaces-apps/{life}/", headers={**ALICE, "Accept": "text/html"})
    assert page.status_code == 503 and page.headers["retry-after"] == "2"
    assert "This Space is waking up" in page.text and 'http-equiv="refresh"' in page.text
    assert "sandbox" in page.headers["content-security-policy"]
    deadline = time.time() + 120
    while spaces_api.space_info(life).runtime.stage != "RUNNING":  # the page's visit woke it
        assert time.time() < deadline, "the app never woke"
        time.sleep(0.5)
    again = httpx.get(f"{spaces_hub.url}/spaces-apps/{life}/", headers={**ALICE, "Accept": "text/html"})
    assert again.status_code == 200 and "<h1>up</h1>" in again.text


def test_deleting_the_space_revokes_its_apps_token(life, spaces_api, spaces_hub):
    token = _app_token(spaces_hub, life)
    assert _works(spaces_hub, token) and _open_logs(spaces_hub, life)  # running: its run log is open
    logs = spaces_hub.data_dir / "spaces" / "logs"
    before = {p.name for p in logs.iterdir()}
    spaces_api.delete_repo(life, repo_type="space")
    assert not _works(spaces_hub, token) and _app_tokens(spaces_hub, life) == 0
    deadline = time.time() + 30
    while not (gone := before - {p.name for p in logs.iterdir()}):  # its logs folder, removed
        assert time.time() < deadline, "the deleted space's logs are still there"
        time.sleep(0.2)
    folder, fds = f"/spaces/logs/{gone.pop()}/", f"/proc/{spaces_hub.process.pid}/fd"
    assert not [fd for fd in os.listdir(fds) if folder in _readlink(f"{fds}/{fd}")]  # none left open


def test_a_failed_build_says_why(spaces_api, spaces_hub):
    space_id = _push(spaces_api, {"app.py": APP, "requirements.txt": b"this is not a requirement !!\n"})
    assert wait_stage(spaces_api, space_id, {"RUNNING", "BUILD_ERROR", "RUNTIME_ERROR"}) == "BUILD_ERROR"
    runtime = spaces_api.get_space_runtime(space_id)
    assert "pip install" in runtime.raw["errorMessage"] and "failed" in runtime.raw["errorMessage"], runtime.raw
    # HfApi's own SSE reader. Not following, it stops at the answer's Date + 1 s, and the server's
    # Date is refreshed once a second: a line written within the last second may be left for later.
    time.sleep(2)
    build = "".join(spaces_api.fetch_space_logs(space_id, build=True))
    assert "$ pip install" in build and "Build failed:" in build and "Invalid requirement" in build, (
        build, run_log(spaces_hub, space_id, "build"))
    assert "".join(spaces_api.fetch_space_logs(space_id)) == ""  # it never ran
    # Its page says why, and shows the build log's last lines to those who may read the logs.
    with httpx.Client(base_url=spaces_hub.url, timeout=30) as browser:
        form = browser.get("/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
        assert browser.post("/login", data={"csrf": csrf, "username": "alice", "password": "wonderland",
                                            "next": "/"}).status_code in (200, 303)
        owner = browser.get(f"/spaces/{space_id}").text
    message = html.escape(runtime.raw["errorMessage"], quote=False)
    assert "BUILD_ERROR" in owner and message in owner and "Invalid requirement" in owner
    anonymous = httpx.get(f"{spaces_hub.url}/spaces/{space_id}").text
    assert message in anonymous and "Invalid requirement" not in anonymous  # the log is for writers
    assert "<iframe" not in owner  # no frame of an app that is not there
    spaces_api.delete_repo(space_id, repo_type="space")
