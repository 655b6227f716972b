"""Webhook pages in a real browser: create one, see its deliveries (status, time, response) arrive at
a real receiver on loopback, disable and delete it; at phone width."""

from __future__ import annotations

import time

from huggingface_hub import HfApi

from tests.compat.test_webhooks import hook_hub, receiver  # noqa: F401 - the hub that may call loopback
from tests.conftest import unique_name
from tests.e2e.test_web_ui import browser  # noqa: F401 - the shared browser


def test_create_a_webhook_and_read_its_delivery_log(browser, hook_hub, receiver):  # noqa: F811
    alice = HfApi(endpoint=hook_hub.url, token="hf_hook_alice")
    repo = f"alice/{unique_name('web-hooked')}"
    alice.create_repo(repo)
    context = browser.new_context(base_url=hook_hub.url, viewport={"width": 375, "height": 800})
    page = context.new_page()
    page.goto("/settings/webhooks")  # anonymous: sent to sign in first
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "wonderland")
    page.click("form.stack button")
    page.wait_for_url("**/settings/webhooks")
    page.get_by_label("Target URL").fill(receiver.url + "/from-the-browser")
    page.get_by_label("Watched (one per line").fill(f"model {repo}\nuser nobody-else")
    page.get_by_label("discussion").uncheck()
    page.get_by_label("Secret (sent as X-Webhook-Secret)").fill("browser-secret")
    page.click("text=Create webhook")
    assert "/settings/webhooks/" in page.url
    assert f"model {repo}" in page.inner_text("dl") and "repo" in page.inner_text("dl")
    alice.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo)
    alice.create_discussion(repo, title="not for this webhook")
    [delivery] = receiver.wait("/from-the-browser", 1)
    assert delivery["headers"]["X-Webhook-Secret"] == "browser-secret"
    for _ in range(50):
        page.reload()
        if "delivered" in page.inner_text("table.deliveries"):
            break
        time.sleep(0.2)
    row = page.inner_text("table.deliveries")
    assert "update repo.content" in row and "delivered" in row and "200" in row and "ago" in row
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # usable at phone width
    page.click("text=Disable")
    assert "disabled" in page.inner_text("h1")
    hook_id = page.url.rsplit("/", 1)[1]
    assert alice.get_webhook(hook_id).disabled is True
    page.click("text=Delete webhook")
    assert page.url.endswith("/settings/webhooks") and receiver.url not in page.inner_text("ul.webhooks")
    assert len(receiver.at("/from-the-browser")) == 1  # the discussion was not in its domains
    # Anonymous visitors are sent to sign in (other users and forms without CSRF: test_authz_matrix.py).
    other = browser.new_context(base_url=hook_hub.url).new_page()
    assert other.goto("/settings/webhooks").url.endswith("/login?next=/settings/webhooks")
    context.close()
    other.context.close()
