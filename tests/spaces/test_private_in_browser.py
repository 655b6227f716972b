"""A private Space used in a real browser, in domain mode (``AICOMMONS_SPACES_DOMAIN``): the app's own
host is another site, framed by the hub's page, so the browser sends it no hub cookie. The space page
signs the visit into the frame's URL (``__sign``); the proxy keeps it in a partitioned cookie of that
app's host and redirects to the URL without it; the app's own requests (module scripts, fetch) are then
the reader's. Chromium runs with third-party cookies blocked, as browsers increasingly do.

``*.localhost`` names loopback in Chromium and is a secure context, so the hub at
``http://localhost:<port>`` and its apps at ``http://<ns>-<name>.spaces.localhost:<port>`` need no DNS
and no certificate."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfApi

from tests.conftest import _SCRATCH, _free_port, server_env, start_hub, stop_hub, unique_name
from tests.e2e.test_web_ui import ARGS, CHROMIUM
from tests.spaces.conftest import GRADIO, PIP_CACHE, TOKENS, run_log, wait_stage
from tests.spaces.test_apps import GREETER
from tests.spaces.test_browser import greet_in_frame

INDEX = (b'<!doctype html><html lang="en"><title>app</title><h1 id="t">waiting</h1><img id="i" src="dot.svg" alt="dot">'
         b'<script type="module" src="app.js"></script></html>')
APP_JS = b'fetch("data.json").then(r => r.json()).then(d => { document.getElementById("t").textContent = d.said; });'


@pytest.fixture(scope="module")
def domain_hub():
    data_dir = _SCRATCH / "spaces-domain-hub"
    data_dir.mkdir()
    port = _free_port()
    PIP_CACHE.mkdir(parents=True, exist_ok=True)
    extra = dict(AICOMMONS_SPACES_DOMAIN="spaces.localhost", AICOMMONS_SPACES_SITE_PACKAGES="true",
                 AICOMMONS_SPACES_PIP_CACHE_DIR=str(PIP_CACHE), AICOMMONS_SPACES_MEMORY_MB="4096",
                 AICOMMONS_SPACES_CPUS="0.5")
    env = server_env(data_dir, port, **extra)
    for args in (["user", "create", "alice", "--password", "wonderland"],
                 ["user", "create", "bob", "--password", "looking-glass"],
                 ["token", "create", "alice", "--value", TOKENS["alice"]],
                 ["token", "create", "bob", "--value", TOKENS["bob"]]):
        subprocess.run([sys.executable, "-m", "aicommons.cli.main", *args], env=env, check=True, capture_output=True)
    hub = start_hub(data_dir, port, **extra)
    hub.url = f"http://localhost:{port}"  # the browser's hub; its apps are *.spaces.localhost:<port>
    yield hub
    stop_hub(hub)


@pytest.fixture(scope="module")
def strict_browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, "--test-third-party-cookie-phaseout"])
        yield b
        b.close()


def _signed_in(browser, hub, user: str, password: str):
    context = browser.new_context(base_url=hub.url)
    page = context.new_page()
    page.goto("/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("form.stack button")
    page.wait_for_url("**/")
    return context, page


def _private_app(hub) -> str:
    api = HfApi(endpoint=hub.url, token=TOKENS["alice"])
    space_id = f"alice/{unique_name('private-app')}"
    api.create_repo(space_id, repo_type="space", space_sdk="static", private=True)
    api.create_commit(space_id, repo_type="space", commit_message="app", operations=[
        CommitOperationAdd("index.html", INDEX), CommitOperationAdd("app.js", APP_JS),
        CommitOperationAdd("data.json", b'{"said": "secret data for readers"}'),
        CommitOperationAdd("dot.svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>')])
    return space_id


def test_a_private_app_works_for_a_reader_in_the_frame(strict_browser, domain_hub):
    space_id = _private_app(domain_hub)
    context, page = _signed_in(strict_browser, domain_hub, "alice", "wonderland")
    try:
        page.goto(f"/spaces/{space_id}")
        src = page.locator("section.space-app iframe").get_attribute("src")
        assert src.startswith(f"http://{space_id.replace('/', '-')}.spaces.localhost:") and "__sign=" in src
        frame = page.frame_locator("section.space-app iframe")
        # The module script and its fetch came back: both requests carried the visit.
        frame.locator("h1", has_text="secret data for readers").wait_for(timeout=15_000)
        app = next(f for f in page.frames if "spaces.localhost" in f.url)
        assert "__sign" not in app.url  # the token does not stay where the app's scripts read it
        assert app.evaluate("document.cookie") == ""  # the visit cookie is HttpOnly
    finally:
        context.close()


def test_a_visit_names_one_reader_for_one_app_only(strict_browser, domain_hub):
    space_id = _private_app(domain_hub)
    other_id = _private_app(domain_hub)
    context, page = _signed_in(strict_browser, domain_hub, "alice", "wonderland")
    page.goto(f"/spaces/{space_id}")
    token = page.locator("section.space-app iframe").get_attribute("src").split("__sign=", 1)[1]
    context.close()
    port = domain_hub.url.rsplit(":", 1)[1]

    def app_get(full_id: str, query: str = "", cookie: str = "") -> httpx.Response:
        host = f"{full_id.replace('/', '-')}.spaces.localhost:{port}"
        return httpx.get(f"http://127.0.0.1:{port}/data.json{query}", headers={
            "Host": host, **({"Cookie": f"aicommons_space_visit={cookie}"} if cookie else {})})

    entered = app_get(space_id, f"?__sign={token}")
    assert entered.status_code == 303 and entered.headers["location"] == "/data.json"
    assert "partitioned" in entered.headers["set-cookie"].lower()
    assert app_get(space_id, cookie=token).json() == {"said": "secret data for readers"}
    missing = app_get(f"alice/{unique_name('none')}")
    for refused in (app_get(space_id), app_get(other_id, cookie=token), app_get(other_id, f"?__sign={token}"),
                    app_get(space_id, cookie=token[:-2] + "xx")):
        assert (refused.status_code, refused.content) == (missing.status_code, missing.content)


def test_a_private_app_stays_closed_to_other_users(strict_browser, domain_hub):
    space_id = _private_app(domain_hub)
    context, page = _signed_in(strict_browser, domain_hub, "bob", "looking-glass")
    try:
        answer = page.goto(f"/spaces/{space_id}")
        assert answer.status == 404 and page.locator("section.space-app iframe").count() == 0
    finally:
        context.close()


def test_a_private_gradio_app_works_for_its_owner_in_the_frame(strict_browser, domain_hub):
    """Gradio's page, its scripts and its queue (fetch and server-sent events) all reach the app as
    the owner, through the partitioned visit cookie."""
    api = HfApi(endpoint=domain_hub.url, token=TOKENS["alice"])
    space_id = f"alice/{unique_name('private-ui')}"
    api.create_repo(space_id, repo_type="space", space_sdk="gradio", private=True)
    api.create_commit(space_id, repo_type="space", commit_message="app", operations=[
        CommitOperationAdd("app.py", GREETER), CommitOperationAdd("requirements.txt", GRADIO.encode())])
    assert wait_stage(api, space_id, {"RUNNING", "BUILD_ERROR", "RUNTIME_ERROR"}) == "RUNNING", \
        run_log(domain_hub, space_id)
    context, page = _signed_in(strict_browser, domain_hub, "alice", "wonderland")
    try:
        page.goto(f"/spaces/{space_id}")
        assert greet_in_frame(page, "Ada") == f"Hello Ada from {space_id}"
    finally:
        context.close()
