"""Listing pages page by keyset in a real browser: Next and Previous carry opaque cursors (the
API's, hub/listings.py), keep the filters and sort, and come back to exactly the same rows."""

from __future__ import annotations

from tests.conftest import unique_name
from tests.e2e.test_web_ui import browser, page  # noqa: F401 - the shared Chromium fixtures


def _ids(page) -> list[str]:  # noqa: F811
    return page.locator("ul.repos li > a").all_inner_texts()


def test_next_and_previous_walk_the_listing_by_cursor(page, api):  # noqa: F811
    word = unique_name("pages")
    made = [f"alice/{word}-{i:02d}" for i in range(34)]
    for rid in made:
        api.create_repo(rid)
    page.goto(f"/models?search={word}")
    first = _ids(page)
    assert first == made[::-1][:30]  # newest first
    assert page.locator("nav.pager a[rel=prev]").count() == 0

    page.click("nav.pager a[rel=next]")
    assert "cursor=" in page.url and f"search={word}" in page.url
    assert _ids(page) == made[::-1][30:]
    assert page.locator("nav.pager a[rel=next]").count() == 0

    page.click("nav.pager a[rel=prev]")
    assert "before=" in page.url
    assert _ids(page) == first
    assert page.locator("nav.pager a[rel=prev]").count() == 0  # back on the first page

    page.select_option("select[name=sort]", "lastModified")
    page.click("form.filters button")  # a new sort starts again from the first page
    assert "cursor=" not in page.url and len(_ids(page)) == 30
    page.click("nav.pager a[rel=next]")
    assert "sort=lastModified" in page.url and len(_ids(page)) == 4
