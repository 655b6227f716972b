"""Issue 22 in a real browser: the admin dashboard's charts and tables (from the rollups, matching
what is stored), the "Downloads last month" graph on a repo page, and downloadsAllTime through
huggingface_hub, on a hub of its own whose metrics recorder writes every second."""

from __future__ import annotations

import json
import sqlite3
import time

import httpx
import pytest
from huggingface_hub import HfApi

from tests.conftest import _free_port, auth, start_hub, stop_hub
from tests.e2e.test_accessibility import AXE
from tests.e2e.test_account_ui import PASSWORD, sign_in
from tests.e2e.test_web_ui import browser  # noqa: F401 - the fixture

DOWNLOADS = 3
NOT_FOUND = 5  # refused requests (4xx) made


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    data = tmp_path_factory.mktemp("dashboard") / "data"
    data.mkdir()
    hub = start_hub(data, _free_port(), AICOMMONS_METRICS_ROLLUP_SECONDS="1", AICOMMONS_DOWNLOAD_FLUSH_SECONDS="1",
                    AICOMMONS_DASHBOARD_ROLLUP_MINUTES="0")
    hub.cli("user", "create", "root", "--password", PASSWORD, "--email", "root@example.org", "--admin")
    hub.cli("user", "create", "maker", "--password", PASSWORD, "--email", "maker@example.org")
    hub.tokens = {"maker": hub.cli("token", "create", "maker").stdout.strip().splitlines()[-1],
                  "root": hub.cli("token", "create", "root").stdout.strip().splitlines()[-1]}
    yield hub
    stop_hub(hub)


def _rollups(hub, series: str) -> dict[tuple[str, str], float]:
    with sqlite3.connect(hub.data_dir / "hub.db") as db:
        return {(k, at): v for k, at, v in db.execute("SELECT key, at, value FROM stat_rollups WHERE series = ?",
                                                      (series,))}


def _table(page, selector: str) -> list[list[str]]:
    return page.eval_on_selector_all(f"{selector} tr", "rows => rows.map(r => [...r.children].map(c => c.textContent.trim()))")


def test_dashboard_and_download_graph(hub, browser):  # noqa: F811
    api = HfApi(endpoint=hub.url, token=hub.tokens["maker"])
    repo = api.create_repo("maker/weights").repo_id
    config = json.dumps({"model_type": "bert", "hidden_size": 8}).encode()
    api.upload_file(path_or_fileobj=config, path_in_repo="config.json", repo_id=repo)
    api.upload_file(path_or_fileobj=b"x" * 10_000, path_in_repo="weights.bin", repo_id=repo)
    with httpx.Client(base_url=hub.url, timeout=30) as http:
        for _ in range(DOWNLOADS):  # a model download counts once, at its config.json
            assert http.get(f"/{repo}/resolve/main/config.json").status_code == 200
        for i in range(NOT_FOUND):
            assert http.get(f"/api/models/maker/missing-{i}").status_code == 401  # anonymous: "sign in"
    time.sleep(3)  # the download flush and the metrics recorder, both every second
    assert hub.cli("stats", "rollup", "--json").returncode == 0

    # The API as huggingface_hub reads it.
    info = api.model_info(repo, expand=["downloadsAllTime", "downloads"])
    assert info.downloads_all_time == DOWNLOADS and info.downloads == DOWNLOADS
    [listed] = [m for m in api.list_models(author="maker", expand=["downloadsAllTime"])]
    assert listed.downloads_all_time == DOWNLOADS
    per_day = httpx.get(f"{hub.url}/api/models/{repo}/downloads").json()  # the per-day counts behind the graph
    assert per_day["downloadsAllTime"] == per_day["downloadsLastMonth"] == DOWNLOADS and len(per_day["days"]) == 30
    assert per_day["days"][-1] == {"date": time.strftime("%Y-%m-%d", time.gmtime()), "downloads": DOWNLOADS}

    errors: list[str] = []
    context = browser.new_context(base_url=hub.url, bypass_csp=True)  # the CSP refuses axe's inline script
    page = context.new_page()
    page.on("console", lambda m: errors.append(f"{m.text} {m.location}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)

    # The repo page: the last 30 days as a small graph, its numbers per day.
    page.goto(f"/{repo}")
    graph = page.locator("#downloads svg.chart")
    assert graph.count() == 1 and graph.get_attribute("role") == "img"
    assert page.locator("#downloads svg.chart title").text_content().startswith("Downloads last month")
    assert page.inner_text("#downloads-heading") == "Downloads last month"
    assert page.inner_text("#downloads-month") == str(DOWNLOADS)
    rows = _table(page, "#downloads-table")[1:]
    assert len(rows) == 30 and int(rows[0][1]) == DOWNLOADS and all(r[1] == "0" for r in rows[1:])

    sign_in(page, "root")
    page.goto("/admin")
    page.click("text=Dashboard")
    page.wait_for_url("**/admin/dashboard")
    charts = page.locator("svg.chart[role=img]")
    assert charts.count() >= 8
    for i in range(charts.count()):  # every chart named, in words
        assert charts.nth(i).locator("title").text_content().strip()

    # Requests per minute: the table is what the rollups hold, and holds the 404s made above.
    table = _table(page, "#requests table")
    assert table[0] == ["Minute (UTC)", "2xx", "3xx", "4xx", "5xx"]
    stored = _rollups(hub, "http_requests")
    now = time.strftime("%H:%M", time.gmtime())
    shown = {(status, row[0]): int(row[1 + i]) for row in table[1:] for i, status in enumerate(table[0][1:])}
    assert stored
    for (status, at), value in stored.items():
        # A minute is final once it is over; the current one grows with the page's own requests.
        assert shown[status, at[11:16]] == value if at[11:16] != now else shown[status, now] <= value
    assert sum(v for (status, _), v in shown.items() if status == "4xx") >= NOT_FOUND
    assert sum(v for (status, _), v in shown.items() if status == "2xx") > 0

    # The largest repos: ours, at its stored size; storage; sign-ups today: the two accounts.
    largest = _table(page, "#ranked-1 table")
    assert largest[1][0] == f"model:{repo}"
    assert page.locator("#ranked-1 svg.chart title").text_content().startswith("Largest repos: model:maker/weights")
    logical = _table(page, "#storage table")[-1]
    assert logical[1] == page.evaluate("([size]) => size", [largest[1][1]])
    signups = _table(page, "#signups table")
    assert signups[-1][1] == "2"
    assert "No inference requests" in page.inner_text("#inference")

    # Both themes, a phone's width: no sideways scrolling, axe finds nothing serious.
    for scheme, width in (("light", 1280), ("dark", 360)):
        page.emulate_media(color_scheme=scheme)
        page.set_viewport_size({"width": width, "height": 900})
        page.goto("/admin/dashboard")
        assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 1
        line = page.locator("#requests polyline").first
        colour = page.evaluate("e => getComputedStyle(e).stroke", line.element_handle())
        assert colour != "none"
        page.add_script_tag(path=str(AXE))
        result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
        serious = [(v["id"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]
                   if v["impact"] in ("serious", "critical")]
        assert not serious, (scheme, serious)
    assert not errors, errors
    context.close()

    # Anyone else: no such page.
    with httpx.Client(base_url=hub.url, timeout=30) as http:
        assert http.get("/admin/dashboard", headers=auth(hub.tokens["root"])).status_code == 404  # tokens: no
