"""Spaces built from their repos and run sandboxed, called with the real clients: a Gradio space with
gradio_client, static files, secrets and variables reaching the app but never its logs, private
spaces, sleep and wake, the cap on running apps."""

from __future__ import annotations

import time

import httpx
import pytest
from huggingface_hub import CommitOperationAdd

from tests.conftest import unique_name
from tests.spaces.conftest import GRADIO, SLEEP_SECONDS, TOKENS, gradio_call, run_log, wait_stage

GREETER = b'''import os
import gradio as gr

print("starting with secret", os.environ.get("GREETING_KEY"), flush=True)

def greet(name):
    return f"{os.environ.get('GREETING', 'Hello')} {name} from {os.environ['SPACE_ID']}"

gr.Interface(fn=greet, inputs="text", outputs="text").launch()
'''


def push_space(api, space_id: str, files: dict[str, bytes], sdk: str = "gradio", private: bool = False) -> None:
    api.create_repo(space_id, repo_type="space", space_sdk=sdk, private=private)
    api.create_commit(space_id, repo_type="space", commit_message="the app",
                      operations=[CommitOperationAdd(path, data) for path, data in files.items()])


@pytest.fixture(scope="module")
def greeter(spaces_api, spaces_hub):
    space_id = f"alice/{unique_name('greeter')}"
    spaces_api.create_repo(space_id, repo_type="space", space_sdk="gradio")
    spaces_api.add_space_secret(space_id, "GREETING_KEY", "sekrit-value-42")
    spaces_api.add_space_variable(space_id, "GREETING", "Howdy")
    spaces_api.create_commit(space_id, repo_type="space", commit_message="the app", operations=[
        CommitOperationAdd("app.py", GREETER), CommitOperationAdd("requirements.txt", GRADIO.encode())])
    stage = wait_stage(spaces_api, space_id, {"RUNNING", "BUILD_ERROR", "RUNTIME_ERROR"})
    assert stage == "RUNNING", (spaces_api.get_space_runtime(space_id).raw, run_log(spaces_hub, space_id, "build"),
                                run_log(spaces_hub, space_id), (spaces_hub.data_dir.parent / "server-*.log"))
    return space_id


def test_gradio_space_answers_gradio_client_with_its_secrets_and_variables(greeter, spaces_hub, spaces_api):
    assert gradio_call(spaces_hub, greeter, TOKENS["alice"], "Ada") == repr(f"Howdy Ada from {greeter}")
    info = spaces_api.space_info(greeter)
    assert info.host == f"{spaces_hub.url}/spaces-apps/{greeter}/" and info.runtime.stage in ("RUNNING", "BUILDING")
    logs = run_log(spaces_hub, greeter)
    assert "starting with secret ***" in logs and "sekrit-value-42" not in logs  # masked in the run log
    assert "gradio" in run_log(spaces_hub, greeter, "build").lower()
    # The hub's cookies never reach the app, and the app's pages are sandboxed on the hub's origin.
    page = httpx.get(f"{spaces_hub.url}/spaces-apps/{greeter}/config", cookies={"aicommons_session": "x"})
    assert page.status_code == 200 and "sandbox" in page.headers["content-security-policy"]
    assert "allow-same-origin" not in page.headers["content-security-policy"]


def test_private_space_answers_only_to_readers(spaces_api, spaces_hub):
    space_id = f"alice/{unique_name('private')}"
    push_space(spaces_api, space_id, {"index.html": b"<h1>secret page</h1>"}, sdk="static", private=True)
    url = f"{spaces_hub.url}/spaces-apps/{space_id}/"
    owner = httpx.get(url, headers={"Authorization": f"Bearer {TOKENS['alice']}"})
    assert owner.status_code == 200 and "secret page" in owner.text
    missing = httpx.get(f"{spaces_hub.url}/spaces-apps/alice/{unique_name()}/",
                        headers={"Authorization": f"Bearer {TOKENS['bob']}"})
    other = httpx.get(url, headers={"Authorization": f"Bearer {TOKENS['bob']}"})
    assert (other.status_code, other.headers.get("x-error-code"), other.content) == \
        (missing.status_code, missing.headers.get("x-error-code"), missing.content)
    anonymous = httpx.get(url)
    assert anonymous.status_code == 401 and "secret page" not in anonymous.text
    with pytest.raises(Exception, match="Repository Not Found|RepositoryNotFound|404|401"):
        gradio_call(spaces_hub, space_id, TOKENS["bob"], "x")


def test_static_space_is_served_as_files(spaces_api, spaces_hub):
    space_id = f"alice/{unique_name('static')}"
    push_space(spaces_api, space_id, {"index.html": b"<h1>hello static</h1>", "sub/a.txt": b"A"}, sdk="static")
    assert spaces_api.get_space_runtime(space_id).stage == "RUNNING"
    assert "hello static" in httpx.get(f"{spaces_hub.url}/spaces-apps/{space_id}/").text
    assert httpx.get(f"{spaces_hub.url}/spaces-apps/{space_id}/sub/a.txt").text == "A"
    assert httpx.get(f"{spaces_hub.url}/spaces-apps/{space_id}/../../secret_key").status_code == 404


def test_a_change_to_a_space_applies_to_the_next_request(spaces_api, spaces_hub):
    """The proxy remembers access decisions for a second; a push, a visibility change or a deletion
    must still apply to the very next request."""
    space_id = f"alice/{unique_name('changes')}"
    push_space(spaces_api, space_id, {"index.html": b"<h1>first</h1>"}, sdk="static")
    url = f"{spaces_hub.url}/spaces-apps/{space_id}/"
    bob = {"Authorization": f"Bearer {TOKENS['bob']}"}
    for _ in range(3):  # decided once, then answered from the remembered decision
        assert "first" in httpx.get(url, headers=bob).text and "first" in httpx.get(url).text
    spaces_api.upload_file(path_or_fileobj=b"<h1>second</h1>", path_in_repo="index.html", repo_id=space_id,
                           repo_type="space")
    assert "second" in httpx.get(url, headers=bob).text
    spaces_api.update_repo_settings(space_id, repo_type="space", private=True)
    assert httpx.get(url, headers=bob).status_code == 404
    assert httpx.get(url).status_code == 401
    assert "second" in httpx.get(url, headers={"Authorization": f"Bearer {TOKENS['alice']}"}).text
    spaces_api.delete_repo(space_id, repo_type="space")
    assert httpx.get(url, headers={"Authorization": f"Bearer {TOKENS['alice']}"}).status_code == 404


def test_sleeps_when_idle_and_wakes_on_the_next_request(greeter, spaces_hub, spaces_api):
    deadline = time.time() + SLEEP_SECONDS + 30
    # space_info shows the stage as it is; get_space_runtime of a sleeping space starts waking it
    # (and says BUILDING: gradio_client waits only on that stage before it calls the app).
    while spaces_api.space_info(greeter).runtime.stage != "SLEEPING":
        assert time.time() < deadline, "the idle space never went to sleep"
        time.sleep(1)
    started = time.time()
    assert gradio_call(spaces_hub, greeter, TOKENS["alice"], "Bo") == repr(f"Howdy Bo from {greeter}")
    assert time.time() - started < 60
    assert spaces_api.get_space_runtime(greeter).stage == "RUNNING"
    # A browser that finds it asleep gets the waking page (and a reload), not an error.
    spaces_api.pause_space(greeter)
    assert spaces_api.get_space_runtime(greeter).stage == "PAUSED"
    paused = httpx.get(f"{spaces_hub.url}/spaces-apps/{greeter}/config")
    assert paused.status_code == 503
    spaces_api.restart_space(greeter)
    assert wait_stage(spaces_api, greeter, {"RUNNING"}) == "RUNNING"


def test_deleting_a_space_stops_its_app(spaces_api, spaces_hub):
    space_id = f"alice/{unique_name('gone')}"
    spaces_api.create_repo(space_id, repo_type="space", space_sdk="gradio")
    spaces_api.create_commit(space_id, repo_type="space", commit_message="app", operations=[
        CommitOperationAdd("app.py", GREETER), CommitOperationAdd("requirements.txt", GRADIO.encode())])
    assert wait_stage(spaces_api, space_id, {"RUNNING", "BUILD_ERROR", "RUNTIME_ERROR"}) == "RUNNING"
    sockets = spaces_hub.data_dir / "spaces" / "run"
    before = {p.parent.name for p in sockets.glob("*/app.sock")}
    assert before
    spaces_api.delete_repo(space_id, repo_type="space")
    deadline = time.time() + 30
    while {p.parent.name for p in sockets.glob("*/app.sock")} == before:
        assert time.time() < deadline, "the deleted space's app still runs"
        time.sleep(0.5)
    gone = httpx.get(f"{spaces_hub.url}/spaces-apps/{space_id}/config",
                     headers={"Authorization": f"Bearer {TOKENS['alice']}"})
    assert gone.status_code == 404 and gone.headers["x-error-code"] == "RepoNotFound"


TINY_SERVER = b'''import http.server
http.server.ThreadingHTTPServer(("127.0.0.1", 7860), http.server.SimpleHTTPRequestHandler).serve_forever()
'''


def test_at_the_cap_the_least_recently_used_app_sleeps(spaces_api, spaces_hub):
    """AICOMMONS_SPACES_MAX_RUNNING=3 in this hub: starting a fourth app puts the one used longest ago
    to sleep, and using it again wakes it (putting another to sleep)."""
    spaces = [f"alice/{unique_name(f'cap{i}')}" for i in range(4)]
    for space_id in spaces:
        spaces_api.create_repo(space_id, repo_type="space", space_sdk="gradio")
        spaces_api.create_commit(space_id, repo_type="space", commit_message="app", operations=[
            CommitOperationAdd("app.py", TINY_SERVER), CommitOperationAdd("requirements.txt", GRADIO.encode())])
        assert wait_stage(spaces_api, space_id, {"RUNNING", "BUILD_ERROR", "RUNTIME_ERROR"}) == "RUNNING"
    stages = {s: spaces_api.space_info(s).runtime.stage for s in spaces}
    assert stages == {spaces[0]: "SLEEPING", spaces[1]: "RUNNING", spaces[2]: "RUNNING", spaces[3]: "RUNNING"}
    woken = httpx.get(f"{spaces_hub.url}/spaces-apps/{spaces[0]}/", timeout=60,
                      headers={"Authorization": f"Bearer {TOKENS['alice']}"})
    assert woken.status_code == 200
    stages = {s: spaces_api.space_info(s).runtime.stage for s in spaces}
    assert stages == {spaces[0]: "RUNNING", spaces[1]: "SLEEPING", spaces[2]: "RUNNING", spaces[3]: "RUNNING"}
    for space_id in spaces:
        spaces_api.delete_repo(space_id, repo_type="space")
