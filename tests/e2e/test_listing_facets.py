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


def test_language_facet_for_models_and_size_and_format_for_datasets(page, api):  # noqa: F811
    word = unique_name("lang")
    for name, languages in (("en", "[en]"), ("fr", "[fr, en]"), ("none", "[]")):
        rid = f"alice/{word}-{name}"
        api.create_repo(rid)
        api.upload_file(path_or_fileobj=f"---\nlanguage: {languages}\ntags: [demo]\n---\n".encode(),
                        path_in_repo="README.md", repo_id=rid)
    _counted(page, f"/models?search={word}")
    facets = page.locator("aside.facets")
    language = facets.locator("details", has=page.locator("summary", has_text="Language"))
    assert re.search(r"en\s+2", language.inner_text()) and re.search(r"fr\s+1", language.inner_text())
    assert "demo" not in language.inner_text()  # a tag that is no language is not one
    language.locator("a", has_text="fr").click()
    page.wait_for_url(re.compile(r"filter=fr"))
    assert page.locator("li.repo-row > a").all_inner_texts() == [f"alice/{word}-fr"]
    # The site-wide counts (an unnarrowed listing) have the languages too.
    page.goto("/models")
    assert page.locator("aside.facets summary", has_text="Language").count() == 1

    card = "---\nsize_categories: [1K<n<10K]\nlanguage: [de]\n---\n# data\n"
    sets = {"csv": [("train.csv", b"a,b\n1,2\n"), ("test.csv", b"a,b\n3,4\n"), ("notes.txt", b"x")],
            "parquet": [("data/train-00000.parquet", b"PAR1"), ("README.md", card.encode())]}
    for kind, files in sets.items():
        rid = f"alice/{word}-{kind}"
        api.create_repo(rid, repo_type="dataset")
        for path, data in files:
            api.upload_file(path_or_fileobj=data, path_in_repo=path, repo_id=rid, repo_type="dataset")
    assert "format:csv" in api.dataset_info(f"alice/{word}-csv").tags
    assert {"format:parquet", "size_categories:1K<n<10K"} <= set(api.dataset_info(f"alice/{word}-parquet").tags)
    _counted(page, f"/datasets?search={word}")
    text = page.inner_text("aside.facets")
    assert re.search(r"Size\s+1K<n<10K\s+1", text) and re.search(r"Format\s+csv\s+1\s+parquet\s+1", text), text
    page.locator("aside.facets a", has_text="parquet").click()
    page.wait_for_url(re.compile(r"filter=format%3Aparquet"))
    assert page.locator("li.repo-row > a").all_inner_texts() == [f"alice/{word}-parquet"]
    page.goto("/datasets")
    assert page.locator("aside.facets summary", has_text="Format").count() == 1
