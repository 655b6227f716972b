"""Spaces in a real browser (Chromium + Playwright): a static space and a Gradio space embedded in the
space's page, used through the sandboxed frame; a Streamlit space (WebSockets through the proxy)."""

from __future__ import annotations

import pytest
from huggingface_hub import CommitOperationAdd

from tests.conftest import unique_name
from tests.e2e.test_web_ui import browser  # noqa: F401 - the shared Chromium fixture
from tests.spaces.conftest import GRADIO, run_log, wait_stage
from tests.spaces.test_apps import GREETER

STREAMLIT_APP = b'''import os
import streamlit as st

st.title("Streamlit here")
name = st.text_input("Your name")
if name:
    st.write(f"Hi {name} from {os.environ['SPACE_ID']}")
'''


@pytest.fixture
def page(browser, spaces_hub):  # noqa: F811
    context = browser.new_context(base_url=spaces_hub.url)
    pg = context.new_page()
    yield pg
    context.close()


def test_static_space_page_embeds_the_app(page, spaces_api):
    space_id = f"alice/{unique_name('site')}"
    spaces_api.create_repo(space_id, repo_type="space", space_sdk="static")
    spaces_api.upload_file(path_or_fileobj=b"<!doctype html><h1 id=t>static in a frame</h1>"
                           b"<script>document.getElementById('t').dataset.cookie = String(document.cookie)</script>",
                           path_in_repo="index.html", repo_id=space_id, repo_type="space")
    page.goto(f"/spaces/{space_id}")
    frame = page.frame_locator("section.space-app iframe")
    assert frame.locator("h1").inner_text() == "static in a frame"
    # The frame is sandboxed: an opaque origin, which cannot even read cookies.
    assert frame.locator("h1").get_attribute("data-cookie") in ("", None)


def test_gradio_space_works_in_the_embedded_frame(page, spaces_api, spaces_hub):
    space_id = f"alice/{unique_name('ui')}"
    spaces_api.create_repo(space_id, repo_type="space", space_sdk="gradio")
    spaces_api.create_commit(space_id, repo_type="space", commit_message="app", operations=[
        CommitOperationAdd("app.py", GREETER), CommitOperationAdd("requirements.txt", GRADIO.encode())])
    assert wait_stage(spaces_api, space_id, {"RUNNING", "BUILD_ERROR", "RUNTIME_ERROR"}) == "RUNNING", \
        run_log(spaces_hub, space_id)
    page.goto(f"/spaces/{space_id}")
    assert greet_in_frame(page, "Grace") == f"Hello Grace from {space_id}"


def greet_in_frame(page, name: str) -> str:
    """Type ``name`` into the embedded greeter app (test_apps.GREETER), submit, and read its answer."""
    frame = page.frame_locator("section.space-app iframe")
    frame.locator("textarea").first.fill(name, timeout=60_000)
    frame.locator("button", has_text="Submit").click()
    output = frame.locator("textarea").nth(1)
    for _ in range(60):
        if name in output.input_value():
            break
        page.wait_for_timeout(500)
    return output.input_value()


def test_streamlit_space_runs_through_websockets(page, spaces_api, spaces_hub):
    space_id = f"alice/{unique_name('st')}"
    spaces_api.create_repo(space_id, repo_type="space", space_sdk="streamlit")
    spaces_api.create_commit(space_id, repo_type="space", commit_message="app", operations=[
        CommitOperationAdd("app.py", STREAMLIT_APP), CommitOperationAdd("requirements.txt", b"streamlit==1.67.0\n")])
    assert wait_stage(spaces_api, space_id, {"RUNNING", "BUILD_ERROR", "RUNTIME_ERROR"}, timeout=400) == "RUNNING", \
        run_log(spaces_hub, space_id, "build")[-3000:] + run_log(spaces_hub, space_id)
    page.goto(f"/spaces-apps/{space_id}/")
    page.get_by_text("Streamlit here").wait_for(timeout=60_000)
    page.get_by_label("Your name").fill("Linus")
    page.get_by_label("Your name").press("Enter")
    page.get_by_text(f"Hi Linus from {space_id}").wait_for(timeout=30_000)


def test_a_private_app_in_path_mode_is_explained_not_framed(page, spaces_api):
    """Path mode runs apps in an opaque origin on the hub's host, where a browser sends no sign-in
    with the app's own requests: the page says so and how to call the app, rather than a broken frame
    (domain mode: tests/spaces/test_private_in_browser.py)."""
    space_id = f"alice/{unique_name('private-site')}"
    spaces_api.create_repo(space_id, repo_type="space", space_sdk="static", private=True)
    spaces_api.upload_file(path_or_fileobj=b"<h1>private</h1>", path_in_repo="index.html", repo_id=space_id,
                           repo_type="space")
    page.goto("/login")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "wonderland")
    page.click("form.stack button")
    page.wait_for_url("**/")
    page.goto(f"/spaces/{space_id}")
    app = page.locator("section.space-app")
    assert "AICOMMONS_SPACES_DOMAIN" in app.inner_text() and f'Client("{space_id}"' in app.inner_text()
    assert app.locator("iframe").count() == 0
