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


def test_hf_auth_login_device_flow_end_to_end(page, live_hub, person, tmp_path):
    """The real ``hf auth login`` (no TTY: straight to the device flow) approved in the browser."""
    import os
    import re
    import subprocess
    import sys
    import time
    from pathlib import Path

    hf = Path(sys.executable).with_name("hf")
    env = {**os.environ, "HF_ENDPOINT": live_hub.url, "HF_HOME": str(tmp_path / "hf-home"), "PYTHONUNBUFFERED": "1"}
    env.pop("HF_TOKEN", None)
    cli = subprocess.Popen([str(hf), "auth", "login"], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    try:
        shown, url = "", None
        deadline = time.time() + 60
        while url is None and time.time() < deadline:
            line = cli.stdout.readline()
            assert line, f"hf exited early: {shown}"
            shown += line
            found = re.search(r"(http://\S+/device\?user_code=(\S+))", line)
            url = found.group(1) if found else None
        assert url, shown
        user_code = url.rsplit("=", 1)[1]
        page.goto(url)  # not signed in: the sign-in page first, then back to this code
        page.fill("input[name=username]", person)
        page.fill("input[name=password]", PASSWORD)
        page.click("form.stack button")
        page.wait_for_url("**/device?user_code=*")
        assert page.inner_text("#user-code") == user_code
        assert "hf CLI login from 127.0.0.1" in page.inner_text("dl.device")  # what asks, from where
        page.get_by_role("button", name="Approve").click()
        assert "Approved" in page.inner_text("[role=status]")
        out, _ = cli.communicate(timeout=60)
        shown += out
        assert cli.returncode == 0, shown
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    token = (tmp_path / "hf-home" / "token").read_text().strip()
    me = HfApi(endpoint=live_hub.url, token=token).whoami()
    assert me["name"] == person and me["auth"]["accessToken"]["role"] == "write"
    assert "displayName" not in me["auth"]["accessToken"]  # the CLI names it oauth-<user>, as with the Hub
    assert f"oauth-{person}" in (tmp_path / "hf-home" / "stored_tokens").read_text()
    token = _refresh_like_a_day_before_expiry(env, token, live_hub.url, person)
    # The code is spent: approving it again is refused, and the page lists the device's token.
    page.goto(url)
    assert "No login is waiting" in page.inner_text("[role=alert]")
    page.goto("/settings/tokens")
    row = page.locator("table.tokens tr", has_text="device login")
    assert row.count() == 1 and "hf CLI login from 127.0.0.1" in row.inner_text()
    row.get_by_role("button", name="Revoke").click()
    assert httpx.get(f"{live_hub.url}/api/whoami-v2", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    stored = (tmp_path / "hf-home" / "stored_tokens").read_text()
    refresh_token = re.search(r"refresh_token = (\S+)", stored).group(1)
    assert _refresh(live_hub.url, refresh_token).json()["error"] == "invalid_grant"  # revoked: no more refreshes


HF_CLIENT_ID = "26be6b09-91c5-47da-9861-d2d2bb7a7e36"


def _refresh(url: str, refresh_token: str) -> httpx.Response:
    return httpx.post(f"{url}/oauth/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token,
                                                  "client_id": HF_CLIENT_ID})


def test_a_replayed_refresh_token_revokes_the_token(page, live_hub, person):
    """Each refresh token works once; the spent one presented again means a copy exists."""
    with httpx.Client(base_url=live_hub.url, timeout=30) as http:
        started = http.post("/oauth/device", data={"client_id": HF_CLIENT_ID}).json()
        sign_in(page, person, PASSWORD)
        page.goto(started["verification_uri_complete"])
        page.get_by_role("button", name="Approve").click()
        got = http.post("/oauth/token", data={"grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                                              "client_id": HF_CLIENT_ID, "device_code": started["device_code"]}).json()
        first = _refresh(live_hub.url, got["refresh_token"]).json()
        assert first["access_token"] != got["access_token"] and first["refresh_token"] != got["refresh_token"]
        assert first["expires_in"] == got["expires_in"] and first["scope"] == "write"
        assert http.get("/api/whoami-v2", headers={"Authorization": f"Bearer {first['access_token']}"}).json()[
            "name"] == person
        assert _refresh(live_hub.url, "hf_rt_unknown").json()["error"] == "invalid_grant"
        replay = _refresh(live_hub.url, got["refresh_token"])
        assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
        assert "already used" in replay.json()["error_description"]
        assert http.get("/api/whoami-v2", headers={"Authorization": f"Bearer {first['access_token']}"}).status_code == 401
        assert _refresh(live_hub.url, first["refresh_token"]).json()["error"] == "invalid_grant"
        other = http.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": "x",
                                                "client_id": "another-app"})
        assert other.json()["error"] == "invalid_client"


def _refresh_like_a_day_before_expiry(env: dict, token: str, url: str, person: str) -> str:
    """huggingface_hub refreshes a stored OAuth token when it has less than a day left: move the
    stored expiry to now and let the real client's ``get_token()`` do it. The new token works and
    the old one no longer does."""
    import configparser
    import subprocess
    import sys
    import time
    from pathlib import Path

    stored_path = Path(env["HF_HOME"]) / "stored_tokens"
    stored = configparser.ConfigParser()
    stored.read(stored_path)
    section = stored[f"oauth-{person}"]
    first_refresh = section["refresh_token"]
    assert first_refresh.startswith("hf_rt_") and int(section["expires_at"]) > time.time() + 29 * 86400
    section["expires_at"] = str(int(time.time()))
    with stored_path.open("w") as f:
        stored.write(f)
    refreshed = subprocess.run([sys.executable, "-c", "from huggingface_hub import get_token; print(get_token())"],
                               env=env, capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    assert refreshed.startswith("hf_") and refreshed != token
    assert (Path(env["HF_HOME"]) / "token").read_text().strip() == refreshed
    stored.read(stored_path)
    assert stored[f"oauth-{person}"]["refresh_token"] != first_refresh  # rotated
    assert int(stored[f"oauth-{person}"]["expires_at"]) > time.time() + 29 * 86400
    whoami = f"{url}/api/whoami-v2"
    assert httpx.get(whoami, headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert httpx.get(whoami, headers={"Authorization": f"Bearer {refreshed}"}).json()["name"] == person
    return refreshed


def test_device_denied_and_oauth_errors(page, live_hub, person):
    client_id = "26be6b09-91c5-47da-9861-d2d2bb7a7e36"
    grant = "urn:ietf:params:oauth:grant-type:device_code"
    with httpx.Client(base_url=live_hub.url, timeout=30) as http:
        assert http.post("/oauth/device", data={"client_id": "someone-else"}).json()["error"] == "invalid_client"
        started = http.post("/oauth/device", data={"client_id": client_id}).json()
        assert started["verification_uri_complete"].endswith(started["user_code"]) and started["interval"] == 5

        def poll():
            return http.post("/oauth/token", data={"grant_type": grant, "client_id": client_id,
                                                   "device_code": started["device_code"]})

        first = poll()
        assert first.status_code == 400 and first.json()["error"] == "authorization_pending"
        assert poll().json()["error"] == "slow_down"  # polled again at once
        assert http.post("/oauth/token", json={"grant_type": "refresh_token", "refresh_token": "x",
                                               "client_id": client_id}).json()["error"] == "invalid_grant"
        assert http.post("/oauth/token", data={"grant_type": "refresh_token",
                                               "client_id": client_id}).json()["error"] == "invalid_request"
        assert http.post("/oauth/token", data={"grant_type": "password"}).json()["error"] == "unsupported_grant_type"
        sign_in(page, person, PASSWORD)
        page.goto("/device")
        page.get_by_label("Code shown by your terminal").fill(started["user_code"].lower().replace("-", ""))
        page.get_by_role("button", name="Continue").click()
        page.get_by_role("button", name="Deny").click()
        assert "Denied" in page.inner_text("[role=status]")
        assert poll().json()["error"] == "access_denied"


def test_org_members_invitations_and_join_requests(browser, live_hub):  # noqa: F811
    s = uuid.uuid4().hex[:8]
    boss, guest, asker, org = f"bs{s}", f"gs{s}", f"ak{s}", f"og{s}"
    for name in (boss, guest, asker):
        live_hub.cli("user", "create", name, "--password", PASSWORD, "--email", f"{name}@example.org")
    live_hub.cli("org", "create", org, "--member", boss)

    def visitor(user):
        context = browser.new_context(base_url=live_hub.url, viewport={"width": 390, "height": 844})
        pg = context.new_page()
        sign_in(pg, user, PASSWORD)
        return pg

    admin = visitor(boss)
    admin.goto(f"/organizations/{org}/members")
    admin.get_by_label("E-mail address").fill(f"{guest}@example.org")
    admin.get_by_role("combobox", name="Role", exact=True).select_option("contributor")
    admin.get_by_role("button", name="Create invitation").click()
    link = admin.inner_text("#invitation-link")
    assert f"{guest}@example.org as contributor" in admin.inner_text("ul.invitations")
    assert admin.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")  # fits a phone
    # The asker is not invited: the link is for the guest's address only.
    other = visitor(asker)
    other.goto(link)
    other.get_by_role("button", name=f"Join {org}").click()
    assert "another e-mail address" in other.inner_text("[role=alert]")
    other.goto(f"/organizations/{org}/members")
    other.get_by_role("button", name=f"Ask to join {org}").click()
    assert "You asked to join" in other.inner_text("[role=status]")
    # The guest joins through the link, with the invitation's role.
    guest_page = visitor(guest)
    guest_page.goto(link)
    guest_page.get_by_role("button", name=f"Join {org}").click()
    guest_page.wait_for_url(f"**/organizations/{org}/members")
    assert f"{guest}" in guest_page.inner_text("table.members") and "contributor" in guest_page.inner_text("table.members")
    # The admin accepts the join request as "read", then makes the guest a writer.
    admin.goto(f"/organizations/{org}/members")
    admin.get_by_role("combobox", name=f"Role for {asker}").select_option("read")
    admin.get_by_role("button", name=f"Accept {asker}").click()
    assert f"{asker} joined" in admin.inner_text("[role=status]")
    admin.get_by_role("combobox", name=f"Role of {guest}").select_option("write")
    admin.locator("tr", has_text=guest).get_by_role("button", name="Change").click()
    assert f"{guest} is now write" in admin.inner_text("[role=status]")
    roles = {m["user"]: m["role"] for m in httpx.get(f"{live_hub.url}/api/organizations/{org}/members").json()}
    assert roles == {boss: "admin", guest: "write", asker: "read"}
    # Members other than admins see the list, not the management forms; they may leave.
    other.goto(f"/organizations/{org}/members")
    assert other.locator("text=Create invitation").count() == 0
    other.locator("tr", has_text=asker).get_by_role("button", name="Leave").click()
    assert f"{asker} left" in other.inner_text("[role=status]")
    # The admin removes the guest: said as a removal (not "left"), and the guest's token loses the org at once.
    guest_token = live_hub.cli("token", "create", guest).stdout.strip().splitlines()[-1]
    assert org in [o["name"] for o in HfApi(endpoint=live_hub.url, token=guest_token).whoami()["orgs"]]
    admin.goto(f"/organizations/{org}/members")
    admin.locator("tr", has=admin.locator(f"input[name=user][value={guest}]")).get_by_role("button", name="Remove").click()
    assert f"{guest} was removed from {org}" in admin.inner_text("[role=status]")
    assert org not in [o["name"] for o in HfApi(endpoint=live_hub.url, token=guest_token).whoami()["orgs"]]
    for pg in (admin, other, guest_page):
        pg.context.close()


def test_new_organization_from_the_profile(page, live_hub, person):
    """The Hub's *New organization*, with the keyboard on a phone: a taken name is refused and kept in the
    form; the creator becomes the admin, lands on the members page to invite, and the audit log names it."""
    org = f"tmnew{uuid.uuid4().hex[:6]}"
    sign_in(page, person, PASSWORD)
    page.goto(f"/{person}")
    page.get_by_role("link", name="New organization").click()
    page.wait_for_url("**/organizations/new")
    page.get_by_label("Organization name").focus()
    page.keyboard.type(person)  # the user's own name: taken
    page.keyboard.press("Tab")
    page.keyboard.type("Team Lab")
    page.keyboard.press("Enter")
    assert "already taken" in page.inner_text("#org-new-error")
    assert page.get_by_label("Full name").input_value() == "Team Lab"
    page.get_by_label("Organization name").fill(org)
    page.get_by_label("Organization name").press("Enter")
    page.wait_for_url(f"**/organizations/{org}/members?created=1")
    assert "you are its admin" in page.inner_text("[role=status]")
    assert page.get_by_label(f"Role of {person}").input_value() == "admin"
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")  # fits a phone
    overview = HfApi(endpoint=live_hub.url).get_organization_overview(org)
    assert (overview.fullname, overview.num_users) == ("Team Lab", 1)
    events = live_hub.cli("audit", "--target", org).stdout
    assert "organization created" in events and person in events
