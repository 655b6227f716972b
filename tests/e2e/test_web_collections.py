"""Collection pages in a real browser: created from the profile, edited by the owner (items, notes,
order, visibility), read by others, private ones hidden, usable at phone width."""

from __future__ import annotations

from tests.conftest import unique_name
from tests.e2e.test_web_ui import browser, page, sign_in  # noqa: F401 - the shared browser fixtures


def test_create_fill_reorder_and_hide_a_collection(page, browser, live_hub, api, repo_id):  # noqa: F811
    other = f"alice/{unique_name('second')}"
    api.create_repo(other)
    sign_in(page)
    page.set_viewport_size({"width": 375, "height": 800})  # phone width
    page.goto("/alice")
    page.click("text=New collection")
    title = unique_name("Browser picks")
    page.fill("input[name=title]", title)
    page.fill("input[name=description]", "Made in a browser")
    page.click("text=Create collection")
    assert page.inner_text("h1").startswith(title)
    slug = page.url.split("/collections/", 1)[1]
    for item_id, note in ((repo_id, "first <b>note</b>"), (other, "")):
        page.get_by_label("Id (namespace/name, a collection's slug, or an arXiv id)").fill(item_id)
        page.get_by_label("Note", exact=True).fill(note)
        page.click("button:text-is('Add')")
    items = page.locator("ol.collection-items > li")
    assert items.count() == 2 and "first <b>note</b>" in items.nth(0).inner_text()  # shown as text
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # nothing wider than the phone
    page.get_by_label(f"Move {other} up").click()
    assert [i.item_id for i in api.get_collection(slug).items] == [other, repo_id]
    page.get_by_label(f"Note for {repo_id}").fill("changed note")
    page.locator("li", has_text=repo_id).locator("text=Save note").click()
    assert api.get_collection(slug).items[1].note == "changed note"
    page.get_by_label(f"Remove {other}").click()
    assert [i.item_id for i in api.get_collection(slug).items] == [repo_id]
    # Another visitor reads a public collection without the editing forms, and not a private one.
    visitor = browser.new_context(base_url=live_hub.url).new_page()
    visitor.goto(f"/collections/{slug}")
    assert repo_id in visitor.inner_text("main") and visitor.locator("text=Add an item").count() == 0
    page.check("input[name=visibility][value=private]")
    page.click("button:text-is('Save')")
    assert api.get_collection(slug).private is True
    assert visitor.goto(f"/collections/{slug}").status == 404
    visitor.goto("/alice")
    assert title not in visitor.inner_text("main")
    page.goto("/alice")
    assert title in page.inner_text("main")
    page.click(f"text={title}")
    page.click("text=Delete collection")
    assert page.url.endswith("/alice")
    assert title not in page.inner_text("main")
    visitor.context.close()
