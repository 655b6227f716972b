"""Single sign-on against a real OpenID provider (panva/oidc-provider, run by node on loopback),
driven in a real browser: accounts made at first sign-in, groups mapped to organisation roles at
every sign-in, password sign-in turned off."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import _free_port, start_hub, stop_hub
from tests.e2e.test_web_ui import browser  # noqa: F401 (the fixture)

PROVIDER = Path(__file__).parent.parent / "sso_provider"
ROOT = Path(__file__).parent.parent.parent


@pytest.fixture(scope="module")
def sso_hub(tmp_path_factory):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    if not (ROOT / "node_modules" / "oidc-provider").is_dir():
        pytest.skip("the oidc-provider npm package is not installed (make install runs npm ci)")
    hub_port, idp_port = _free_port(), _free_port()
    hub_url = f"http://127.0.0.1:{hub_port}"
    idp = subprocess.Popen([node, "provider.mjs", str(idp_port), f"{hub_url}/login/sso/callback"], cwd=PROVIDER,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 30
        while "ready" not in (line := idp.stdout.readline()):
            assert line and time.time() < deadline, "the OpenID provider did not start"
        data = tmp_path_factory.mktemp("sso") / "data"
        data.mkdir()
        hub = start_hub(data, hub_port, AICOMMONS_OIDC_ISSUER=f"http://127.0.0.1:{idp_port}",
                        AICOMMONS_OIDC_CLIENT_ID="aicommons", AICOMMONS_OIDC_CLIENT_SECRET="aicommons-test-secret",
                        AICOMMONS_OIDC_SCOPES="openid profile email groups",
                        AICOMMONS_OIDC_GROUP_ROLES="ml-team=ssoorg:write,ml-leads=ssoorg:admin,ml-leads=leads:read",
                        AICOMMONS_PASSWORD_SIGN_IN="0")
        try:
            yield hub
        finally:
            stop_hub(hub)
    finally:
        idp.terminate()
        idp.wait(timeout=10)
        idp.stdout.close()


def sso_sign_in(browser, hub, login):  # noqa: F811
    context = browser.new_context(base_url=hub.url)
    page = context.new_page()
    page.goto("/login")
    assert page.locator("input[name=password]").count() == 0  # password sign-in is off
    page.get_by_role("link", name="Sign in with your organization (single sign-on)").click()
    page.fill("input[name=login]", login)  # the provider's own sign-in page
    page.fill("input[name=password]", "anything")
    page.click("button[type=submit]")
    page.click("button[type=submit]")  # its consent page: Continue
    try:
        page.wait_for_url(f"{hub.url}/", timeout=15000)
    except Exception:
        raise AssertionError(page.url + "\n" + page.inner_text("body")[:1500]) from None
    return page


def members(hub, org):
    return {m["user"]: m["role"] for m in httpx.get(f"{hub.url}/api/organizations/{org}/members").json()}


def test_sso_sign_in_creates_the_account_and_maps_groups(browser, sso_hub):  # noqa: F811
    page = sso_sign_in(browser, sso_hub, "lead-ada")
    assert "lead-ada" in page.inner_text("header nav")
    overview = httpx.get(f"{sso_hub.url}/api/users/lead-ada/overview").json()
    assert overview["fullname"] == "Person lead-ada"
    assert members(sso_hub, "ssoorg") == {"lead-ada": "admin"} and members(sso_hub, "leads") == {"lead-ada": "read"}
    page.context.close()
    # A second person, and a second sign-in of the first: the same account, roles re-applied.
    page = sso_sign_in(browser, sso_hub, "bob")
    assert members(sso_hub, "ssoorg") == {"lead-ada": "admin", "bob": "write"}
    page.context.close()
    page = sso_sign_in(browser, sso_hub, "lead-ada")
    assert [u for u in members(sso_hub, "ssoorg")].count("lead-ada") == 1
    page.context.close()


def test_groups_that_are_gone_take_the_role_away(browser, sso_hub):  # noqa: F811
    sso_sign_in(browser, sso_hub, "nobody-zed").context.close()  # in no group: no org
    assert "nobody-zed" not in members(sso_hub, "ssoorg")
    sso_hub.cli("org", "add-member", "ssoorg", "nobody-zed", "--role", "write")  # by hand, outside the mapping
    assert members(sso_hub, "ssoorg")["nobody-zed"] == "write"
    sso_sign_in(browser, sso_hub, "nobody-zed").context.close()  # the mapping is re-applied
    assert "nobody-zed" not in members(sso_hub, "ssoorg")


def test_password_sign_in_is_off(sso_hub):
    sso_hub.cli("user", "create", "pw-user", "--password", "a-long-password-1")
    with httpx.Client(base_url=sso_hub.url) as http:
        refused = http.get("/api/whoami-v2", auth=("pw-user", "a-long-password-1"))
        assert refused.status_code == 401 and "turned off" in refused.text
    token = sso_hub.cli("token", "create", "pw-user").stdout.strip().splitlines()[-1]
    assert httpx.get(f"{sso_hub.url}/api/whoami-v2", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_a_forged_callback_is_refused(sso_hub):
    with httpx.Client(base_url=sso_hub.url) as http:
        answer = http.get("/login/sso/callback", params={"code": "x", "state": "y"})
        assert answer.status_code == 400 and "expired or did not start here" in answer.text


def test_an_org_admins_group_mapping_applies_at_sign_in(browser, sso_hub):  # noqa: F811
    """Beside the operator's AICOMMONS_OIDC_GROUP_ROLES, an org's admin maps groups on the org's page."""
    page = sso_sign_in(browser, sso_hub, "lead-bea")
    sso_hub.cli("org", "create", "crew", "--member", "lead-bea")  # lead-bea is its admin
    page.goto("/organizations/crew/settings/sign-in")
    page.get_by_label("Group (as the identity provider names it)").fill("ml-team")
    page.get_by_label("Role in crew").select_option("read")
    page.get_by_role("button", name="Map group").click()
    assert "at their next sign-in" in page.inner_text("[role=status]")
    page.context.close()
    sso_sign_in(browser, sso_hub, "carl").context.close()  # in ml-team
    assert members(sso_hub, "crew")["carl"] == "read"
    sso_sign_in(browser, sso_hub, "nobody-yan").context.close()  # in no group
    assert "nobody-yan" not in members(sso_hub, "crew")
