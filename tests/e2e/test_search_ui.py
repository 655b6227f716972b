"""One search across models, datasets, spaces, users and organisations (issue 14): the header's box
leads to /search, which finds repos as the visitor may see them and people by name, never by e-mail.
A real browser; the page is in the authorization matrix and in the axe pages."""

from __future__ import annotations

import subprocess
import sys
import time

from tests.conftest import new_org_of_alice, unique_name
from tests.e2e.test_web_ui import browser, page, sign_in  # noqa: F401 - the shared Chromium fixtures


def _cli(live_hub, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "aicommons.cli.main", *args], env=live_hub.env, check=True,
                   capture_output=True)


def test_the_header_box_searches_everything(page, api, live_hub):  # noqa: F811
    word = unique_name("zebra")
    api.create_repo(f"alice/{word}-model")
    api.create_repo(f"alice/{word}-data", repo_type="dataset")
    api.create_repo(f"alice/{word}-app", repo_type="space", space_sdk="static")
    _cli(live_hub, "user", "create", f"{word}-user", "--fullname", "Zebra Person")
    _cli(live_hub, "org", "create", f"{word}-org")

    page.goto("/models")
    page.fill("header.top input[name=q]", word)
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/search?q={word}")
    assert page.locator("#found-models li").all_inner_texts()[0].startswith(f"alice/{word}-model")
    assert page.locator("#found-datasets li a").all_inner_texts() == [f"alice/{word}-data"]
    assert page.locator("#found-spaces li a").all_inner_texts() == [f"alice/{word}-app"]
    assert page.locator("#found-users li a").all_inner_texts() == [f"{word}-user"]
    assert "Zebra Person" in page.inner_text("#found-users")
    assert page.locator("#found-orgs li a").all_inner_texts() == [f"{word}-org"]
    page.click(f"#found-orgs >> text={word}-org")  # the organisation's page
    page.wait_for_url(f"**/{word}-org")
    assert word in page.inner_text("h1")

    page.goto("/search?q=" + unique_name("nothing"))
    assert "Nothing matches" in page.inner_text("#search-summary")
    assert page.goto("/search").status == 200 and page.locator("#search-summary").count() == 0


def test_search_never_shows_what_the_visitor_may_not_see(page, api, live_hub):  # noqa: F811
    word = unique_name("secret")
    api.create_repo(f"alice/{word}-hidden", private=True)
    _cli(live_hub, "user", "create", f"{word}-mailer", "--email", f"{word}-mail@example.org")
    page.goto(f"/search?q={word}")
    assert page.locator("#found-models li").count() == 0  # anonymous: the private repo is not there
    assert page.locator("#found-users li a").all_inner_texts() == [f"{word}-mailer"]
    page.goto(f"/search?q={word}-mail@example")  # e-mail addresses are never searched
    assert page.locator("#found-users li").count() == 0
    sign_in(page)  # its owner finds it
    page.goto(f"/search?q={word}")
    assert page.locator("#found-models li a").all_inner_texts() == [f"alice/{word}-hidden"]


def test_user_and_organisation_pages_list_their_repos_and_people(page, api, live_hub):  # noqa: F811
    org = new_org_of_alice(live_hub, api, "guild")  # its first model is "<org>/first"
    for i in range(1, 31):  # with it, one more than the page shows
        api.create_repo(f"{org}/m{i:02d}")
    api.create_repo(f"{org}/table", repo_type="dataset")
    page.goto(f"/{org}")
    assert page.locator("#people li a").all_inner_texts() == ["alice"]
    assert page.locator("#models li.repo-row").count() == 30
    assert page.locator("#models li.repo-row a").first.inner_text() == f"{org}/m30"  # the latest first
    page.click(f"#models >> text=All models by {org}")
    page.wait_for_url(f"**/models?author={org}&sort=lastModified")
    # The count is made off the page's path (hub/facets.py): a first view may still be counting.
    deadline = time.monotonic() + 10
    while page.inner_text("#result-count") == "Still counting…" and time.monotonic() < deadline:
        time.sleep(0.2)
        page.reload()
    assert page.inner_text("#result-count") == "31 models"
    assert page.locator("ul.repos li").count() == 30  # a page's worth; the 31st is on the next page
    page.click("nav.pager a[rel=next]")
    assert page.locator("ul.repos li a").all_inner_texts() == [f"{org}/first"]
    page.goto(f"/{org}")
    assert page.locator("#datasets li a").all_inner_texts() == [f"{org}/table"]
    assert page.locator("#datasets >> text=All datasets").count() == 0
    page.goto("/alice")
    assert org in page.locator("#people li a").all_inner_texts()
    page.click(f"#people >> text={org}")
    page.wait_for_url(f"**/{org}")
