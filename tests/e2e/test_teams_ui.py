"""Token settings (the fine-grained editor) and, below, the other teams pages in a real browser."""

from __future__ import annotations

import uuid

import httpx
import pytest
from huggingface_hub import HfApi

from tests.e2e.test_web_ui import browser, sign_in  # noqa: F401 (the fixture)

PASSWORD = "teams-password-1"


@pytest.fixture
def person(live_hub):
    name = f"tm{uuid.uuid4().hex[:8]}"
    live_hub.cli("user", "create", name, "--password", PASSWORD)
    return name


@pytest.fixture
def page(browser, live_hub):  # noqa: F811
    context = browser.new_context(base_url=live_hub.url, viewport={"width": 390, "height": 844})  # a phone
    pg = context.new_page()
    yield pg
    context.close()


def test_fine_grained_token_editor(page, live_hub, person):
    org = f"tmorg{uuid.uuid4().hex[:6]}"
    live_hub.cli("org", "create", org, "--member", person)
    sign_in(page, person, PASSWORD)
    page.goto("/settings/tokens")
    page.get_by_label("Name", exact=True).fill("laptop")
    page.get_by_label("Fine-grained: only what you tick below").check()
    page.get_by_label("Expires").select_option("30")
    user_box = page.get_by_role("group", name=f"Your account ({person}) and its repos")
    user_box.get_by_label("Read the content of repos").check()
    org_box = page.get_by_role("group", name=f"Organization {org} and its repos")
    org_box.get_by_label("Write the content of repos").check()
    page.get_by_label("Open discussions, comment, like on any repo").check()
    page.get_by_role("button", name="Create token").click()
    token = page.inner_text("#new-token")
    wide = page.evaluate("[...document.querySelectorAll('main *')].filter(e => !e.closest('.scroll') && e.getBoundingClientRect().right > window.innerWidth + 1).map(e => e.tagName + '.' + e.className + ':' + e.getBoundingClientRect().right)")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), wide  # fits a phone
    access = HfApi(endpoint=live_hub.url, token=token).whoami()["auth"]["accessToken"]
    assert access["role"] == "fineGrained" and access["displayName"] == "laptop" and "expiresAt" in access
    scoped = {s["entity"]["name"]: s["permissions"] for s in access["fineGrained"]["scoped"]}
    assert scoped == {person: ["repo.content.read"], org: ["repo.write"]}
    assert access["fineGrained"]["global"] == ["discussion.write"]
    page.goto("/settings/tokens")
    row = page.locator("table.tokens tr", has_text="laptop")
    assert "fine-grained" in row.inner_text() and "org " + org + ": repo.write" in row.inner_text()
    assert "seconds ago" in row.locator("td").nth(3).inner_text()  # last used: by the whoami above
    row.get_by_role("button", name="Revoke").click()
    assert page.locator("table.tokens tr", has_text="laptop").count() == 0
    assert httpx.get(f"{live_hub.url}/api/whoami-v2", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_editor_refuses_a_repo_out_of_reach(page, live_hub, person):
    sign_in(page, person, PASSWORD)
    page.goto("/settings/tokens")
    page.get_by_label("Name", exact=True).fill("bad")
    page.get_by_label("Fine-grained: only what you tick below").check()
    page.get_by_label("Repositories, one per line").fill("nobody/nothing")
    page.get_by_role("group", name="Specific repositories").get_by_label("Read the content of repos").check()
    page.get_by_role("button", name="Create token").click()
    assert "no model named 'nobody/nothing'" in page.inner_text("[role=alert]")
    assert page.locator("#new-token").count() == 0
