"""The /admin page in a real browser: search users, suspend and unsuspend, make admin, delete;
other users are told there is no such page."""

from __future__ import annotations

import httpx

from tests.conftest import auth, unique_name
from tests.e2e.test_accessibility import AXE
from tests.e2e.test_account_ui import new_user, sign_in
from tests.e2e.test_web_ui import browser, page  # noqa: F401 - the fixtures


def test_admin_page_manages_users(page, live_hub, browser):  # noqa: F811
    admin, _ = new_user(live_hub, admin=True)
    target, token = new_user(live_hub)
    outsider, _ = new_user(live_hub)
    org = unique_name("adm").replace("-", "")
    live_hub.cli("org", "create", org, "--member", target)
    with httpx.Client(base_url=live_hub.url, headers=auth(token), timeout=30) as http:
        assert http.post("/api/repos/create", json={"name": f"{target}/weights"}).status_code == 200

    other = browser.new_context(base_url=live_hub.url)
    nosy = other.new_page()
    sign_in(nosy, outsider)
    assert nosy.goto("/admin").status == 404
    other.close()

    sign_in(page, admin)
    page.goto("/admin")
    page.get_by_label("Search users by name").fill(target)
    page.click("#users form[role=search] button")
    page.wait_for_url(f"**/admin?q={target}")
    rows = page.locator("#users tr[id^=user-]")
    assert rows.count() == 1
    row = page.locator(f"#user-{target}")
    row.locator("text=Suspend").click()
    assert "Suspended" in page.inner_text("[role=status]")
    assert page.inner_text(f"#user-{target} .state") == "suspended"
    assert httpx.get(f"{live_hub.url}/api/whoami-v2", headers=auth(token)).status_code == 401  # at once: same server
    page.locator(f"#user-{target}").locator("text=Unsuspend").click()
    assert httpx.get(f"{live_hub.url}/api/whoami-v2", headers=auth(token)).status_code == 200
    page.locator(f"#user-{target}").locator("text=Make admin").click()
    assert "admin" in page.inner_text(f"#user-{target}")
    assert httpx.get(f"{live_hub.url}/api/whoami-v2", headers=auth(token)).status_code == 200
    page.locator(f"#user-{target}").locator("text=Remove admin").click()
    assert "no longer a site admin" in page.inner_text("[role=status]")

    page.locator(f"#user-{admin}").locator("text=Suspend").click()  # never yourself
    assert page.inner_text("[role=alert]").startswith("Not on yourself")

    page.goto(f"/admin?q={target}")
    row = page.locator(f"#user-{target}")
    row.locator("summary").click()
    row.get_by_label("Their repos").select_option(org)
    row.get_by_label(f"Type {target} to confirm").fill(target)
    row.locator("button.danger").click()
    assert f"Deleted {target}" in page.inner_text("[role=status]")
    assert page.locator(f"#user-{target}").count() == 0
    assert httpx.get(f"{live_hub.url}/api/whoami-v2", headers=auth(token)).status_code == 401
    assert httpx.get(f"{live_hub.url}/api/models/{org}/weights").status_code == 200
    audit = live_hub.cli("audit", "--actor", admin).stdout
    for action in ("suspend", "unsuspend", "make-admin", "delete"):
        assert f"POST /admin/users/{target}/{action}" in audit

    checked = browser.new_context(base_url=live_hub.url, bypass_csp=True)  # the CSP refuses axe's inline script
    page = checked.new_page()
    sign_in(page, admin)
    for width in (1366, 390):  # desktop and phone: the table scrolls, the page does not; axe finds nothing serious
        page.set_viewport_size({"width": width, "height": 844})
        page.goto("/admin")
        assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 1
        assert AXE.exists(), "axe-core is missing: run `make install` (npm ci)"
        page.add_script_tag(path=str(AXE))
        result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
        serious = [(v["id"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]
                   if v["impact"] in ("serious", "critical")]
        assert not serious, serious
    checked.close()
