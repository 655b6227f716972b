"""No layout shift as pages load (issue 14): Chromium's own layout-shift entries, summed as the
Cumulative Layout Shift score (shifts right after input excluded, as the metric does), stay at or
under 0.05 on every main page, at 1366 px and 390 px, light and dark."""

from __future__ import annotations

import time

import pytest

from tests.e2e.test_accessibility import WIDTHS, api_module, browser, site  # noqa: F401 - shared fixtures

# Registered before any of the page's own code runs: every layout-shift entry from the first paint on.
OBSERVER = """
window.__cls = 0; window.__shifts = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    if (e.hadRecentInput) continue;
    window.__cls += e.value;
    window.__shifts.push({value: e.value, nodes: (e.sources || []).map(s => s.node ? (s.node.id || s.node.className || s.node.nodeName) : '?')});
  }
}).observe({type: 'layout-shift', buffered: true});
"""
LIMIT = 0.05


def main_pages(repo: str) -> dict[str, str]:
    return {"home": "/", "models": "/models", "datasets": "/datasets", "search": "/search?q=a11y",
            "repo-card": f"/{repo}", "repo-files": f"/{repo}/tree/main", "repo-blob": f"/{repo}/blob/main/src/train.py",
            "repo-file-panel": f"/{repo}/blob/main/logo.png", "repo-history": f"/{repo}/commits/main",
            "repo-commit": f"/{repo}/commit/main", "repo-discussions": f"/{repo}/discussions",
            "dataset-viewer": f"/datasets/{repo}-data/viewer", "space-page": f"/spaces/{repo}-app",
            "profile": "/alice", "login": "/login"}


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", list(WIDTHS))
def test_main_pages_do_not_shift_as_they_load(browser, live_hub, site, width, scheme):  # noqa: F811
    w, h = WIDTHS[width]
    context = browser.new_context(base_url=live_hub.url, viewport={"width": w, "height": h}, color_scheme=scheme)
    context.add_init_script(OBSERVER)
    problems = []

    def slow(route):  # files (the card's images) arrive late, as over a real network
        time.sleep(0.4)
        route.continue_()

    context.route("**/resolve/**", slow)
    try:
        page = context.new_page()
        for name, path in main_pages(site).items():
            page.goto(path, wait_until="load")
            page.wait_for_timeout(600)  # late content: lazy images, frames, scripts after load
            cls = page.evaluate("window.__cls")
            if cls > LIMIT:
                problems.append(f"{name} {width} {scheme}: CLS {cls:.3f} {page.evaluate('window.__shifts')}")
    finally:
        context.close()
    assert not problems, "\n".join(problems)


def test_the_observer_sees_a_shift(browser, live_hub):  # noqa: F811
    """The measurement itself: a page that moves its content after load scores over the limit."""
    context = browser.new_context(base_url=live_hub.url, bypass_csp=True)
    context.add_init_script(OBSERVER)
    try:
        page = context.new_page()
        page.goto("/login", wait_until="load")
        page.wait_for_timeout(200)
        page.evaluate("""() => { const d = document.createElement('div'); d.style.height = '400px';
                                 document.querySelector('main').prepend(d); }""")
        page.wait_for_timeout(300)
        assert page.evaluate("window.__cls") > LIMIT
    finally:
        context.close()
