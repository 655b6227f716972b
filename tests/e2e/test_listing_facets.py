"""Listing pages in a real browser: a result count, facets with counts that narrow the list and
can be removed again, pages that keep the filters, and no sideways scrolling on a phone."""

from __future__ import annotations

import re
import time

from tests.conftest import unique_name
from tests.e2e.test_web_ui import browser, page  # noqa: F401 - the shared Chromium fixtures


def _card(license_: str, task: str) -> bytes:
    return f"---\nlicense: {license_}\npipeline_tag: {task}\nlibrary_name: transformers\n---\n# model\n".encode()


def _counted(page, url: str) -> None:  # noqa: F811
    """Open a listing, reloading until its facets are counted (a page never waits long for them:
    hub/facets.py counts in the background)."""
    deadline = time.monotonic() + 30
    page.goto(url)
    while "counting" in page.inner_text("#result-count"):
        assert time.monotonic() < deadline, "the facets were never counted"
        time.sleep(0.2)
        page.reload()


def test_facets_count_and_narrow_the_list(page, api, browser):  # noqa: F811
    word = unique_name("facet")
    repos = {f"alice/{word}-a": ("mit", "text-generation"), f"alice/{word}-b": ("mit", "text-classification"),
             f"alice/{word}-c": ("apache-2.0", "text-generation")}
    for repo_id, (license_, task) in repos.items():
        api.create_repo(repo_id)
        api.upload_file(path_or_fileobj=_card(license_, task), path_in_repo="README.md", repo_id=repo_id)
    hidden = f"alice/{word}-private"
    api.create_repo(hidden, private=True)
    api.upload_file(path_or_fileobj=_card("mit", "text-generation"), path_in_repo="README.md", repo_id=hidden)

    _counted(page, f"/models?search={word}")
    assert page.inner_text("#result-count").startswith("3 models")  # the private one is not counted
    facets = page.locator("aside.facets")
    assert re.search(r"text-generation\s+2", facets.inner_text())
    assert re.search(r"mit\s+2", facets.inner_text()) and re.search(r"apache-2.0\s+1", facets.inner_text())
    assert re.search(r"alice\s+3", facets.inner_text())

    facets.locator("a", has_text="mit").click()
    page.wait_for_url(re.compile(r"filter=license%3Amit"))
    _counted(page, page.url)
    assert page.inner_text("#result-count").startswith("2 models")
    assert page.locator("ul.repos li").count() == 2
    page.select_option("select[name=sort]", "likes")
    page.click("form.filters button")  # sorting keeps the filter in force
    _counted(page, page.url)
    assert "filter=license%3Amit" in page.url and page.inner_text("#result-count").startswith("2 models")
    page.click("p.chosen a")  # removing the filter
    _counted(page, page.url)
    assert page.inner_text("#result-count").startswith("3 models")

    phone = browser.new_context(base_url=page.url.split("/models")[0], viewport={"width": 390, "height": 800})
    small = phone.new_page()
    small.goto(f"/models?search={word}")
    assert small.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert small.locator("aside.facets").is_visible()
    phone.close()
