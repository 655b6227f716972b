"""The storage settings page in a real browser (Playwright + Chromium): what the signed-in user and
their organisations store, against their quotas, as the accounting job measured it."""

from __future__ import annotations

import os

from huggingface_hub import HfApi

from tests.conftest import unique_name
from tests.e2e.test_account_ui import new_user, sign_in
from tests.e2e.test_web_ui import browser, page  # noqa: F401 - the fixtures


def test_storage_page_shows_owners_repos_and_quota(page, live_hub):  # noqa: F811
    name, token = new_user(live_hub)
    org = unique_name("stui")
    live_hub.cli("org", "create", org, "--member", name)
    live_hub.cli("storage", "quota", "set", name, "10MB")
    api = HfApi(endpoint=live_hub.url, token=token)
    repo = api.create_repo(f"{name}/{unique_name()}").repo_id
    api.upload_file(path_or_fileobj=os.urandom(2_000_000), path_in_repo="w.bin", repo_id=repo)
    live_hub.cli("storage", "refresh")
    sign_in(page, name)
    page.goto("/settings/profile")
    page.click("nav.tabs >> text=Storage")
    assert page.url.endswith("/settings/storage")
    mine = page.locator(f"section[aria-labelledby='storage-{name}']")
    used = mine.locator(".storage-used").inner_text()
    assert "of 10.0 MB" in used and "%" in used
    assert 0.2 < float(mine.locator("meter").get_attribute("value")) / 10_000_000 < 0.3
    row = mine.locator("tr", has=page.locator(f"a[href='/{repo}']"))
    assert "2.0 MB" in row.inner_text()  # logical: the uploaded file (and a few kB of git)
    theirs = page.locator(f"section[aria-labelledby='storage-{org}']")
    assert "no limit" in theirs.locator(".storage-used").inner_text()
    assert "No repositories measured yet" in theirs.inner_text() or theirs.locator("tr").count() == 1
    assert page.locator("section.storage-owner").count() == 2  # only their own and their org's
