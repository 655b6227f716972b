"""An organisation's admins manage how people and CI get in, in a real browser: CI trust policies
(used by huggingface_hub's own ``exchange_oidc_token`` against a local issuer), invitations mailed to
an address (a real SMTP server), and who may see the page. Single sign-on group mappings made on the
page are exercised with a real OpenID provider in tests/e2e/test_sso.py."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from huggingface_hub import HfApi
from huggingface_hub._oidc import exchange_oidc_token
from huggingface_hub.errors import HfHubHTTPError

from tests.compat.test_workload_identity import issuer  # noqa: F401 - the local CI issuer fixture
from tests.conftest import _free_port, start_hub, stop_hub
from tests.e2e.test_web_ui import browser, sign_in  # noqa: F401 - the shared Chromium fixture
from tests.smtp import links_in, smtp_server

PASSWORD = "org-admin-password"


@pytest.fixture(scope="module")
def smtp():
    with smtp_server() as server:
        yield server


@pytest.fixture(scope="module")
def org_hub(tmp_path_factory, smtp, issuer):  # noqa: F811
    url, _ = issuer
    data = tmp_path_factory.mktemp("org-sign-in") / "data"
    data.mkdir()
    port = _free_port()
    operator_policy = [{"org": "crew", "issuer": "https://ci.operator.example", "subject": "repo:crew/release:*"}]
    hub = start_hub(data, port, AICOMMONS_SMTP_URL=smtp.url, AICOMMONS_WEBHOOKS_ALLOW_PRIVATE_TARGETS="1",
                    AICOMMONS_OIDC_TRUST_POLICIES=json.dumps(operator_policy),
                    AICOMMONS_OIDC_GROUP_ROLES="staff=crew:read")
    for user in ("boss", "mate"):
        hub.cli("user", "create", user, "--password", PASSWORD, "--email", f"{user}@example.org")
    hub.cli("org", "create", "crew", "--member", "boss")
    hub.cli("org", "add-member", "crew", "mate", "--role", "write")
    boss_token = f"hf_boss_{uuid.uuid4().hex}"
    hub.cli("token", "create", "boss", "--value", boss_token)
    api = HfApi(endpoint=hub.url, token=boss_token)
    for name in ("model-a", "other"):
        api.create_repo(f"crew/{name}", private=True)
    try:
        yield hub
    finally:
        stop_hub(hub)


@pytest.fixture
def page(browser, org_hub):  # noqa: F811
    context = browser.new_context(base_url=org_hub.url, viewport={"width": 390, "height": 844})  # a phone
    pg = context.new_page()
    yield pg
    context.close()


def test_org_admin_trusts_a_ci_workflow(page, org_hub, issuer):  # noqa: F811
    url, sign = issuer
    sub = "repo:crew/trainer:ref:refs/heads/main"
    sign_in(page, "boss", PASSWORD)
    page.goto("/organizations/crew/members")
    page.get_by_role("link", name="Sign-in (single sign-on groups, CI trust)").click()
    policies = page.locator("ul.policies")
    assert "https://ci.operator.example" in policies.inner_text() and "set by the operator" in policies.inner_text()
    assert "staff" in page.locator("table.group-roles").inner_text()  # the operator's mapping, read-only

    def exchange():
        return exchange_oidc_token(subject_token=sign(sub, org_hub.url), resource="crew/model-a",
                                   endpoint=org_hub.url)

    with pytest.raises(HfHubHTTPError):  # nothing trusts this workflow yet
        exchange()
    # A subject made of wildcards would trust every workflow the issuer signs for: refused.
    page.get_by_label("Issuer").fill(url)
    page.get_by_label("Subject pattern (* and ? match anything)").fill("*:*")
    page.get_by_role("button", name="Add policy").click()
    assert "names something" in page.inner_text("[role=alert]")
    page.get_by_label("Issuer").fill(url)
    page.get_by_label("Subject pattern (* and ? match anything)").fill("repo:crew/trainer:*")
    page.get_by_label("Repos, one pattern per line").fill("crew/model-*")
    page.get_by_label("Write the content of repos").check()
    page.get_by_role("button", name="Add policy").click()
    assert "Trust policy added" in page.inner_text("[role=status]")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")  # fits a phone
    answer = exchange()
    ci = HfApi(endpoint=org_hub.url, token=answer["access_token"])
    ci.upload_file(path_or_fileobj=b"weights", path_in_repo="w.bin", repo_id="crew/model-a")
    scoped = ci.whoami()["auth"]["accessToken"]["fineGrained"]["scoped"]
    assert [(s["entity"]["name"], sorted(s["permissions"])) for s in scoped] == \
        [("crew/model-a", ["repo.content.read", "repo.write"])]
    with pytest.raises(HfHubHTTPError):  # a repo outside the policy's patterns
        exchange_oidc_token(subject_token=sign(sub, org_hub.url), resource="crew/other", endpoint=org_hub.url)
    page.get_by_role("button", name="Remove this policy").click()
    assert "Trust policy removed" in page.inner_text("[role=status]")
    with pytest.raises(HfHubHTTPError):
        exchange()


def test_only_org_admins_see_the_page(page, org_hub):
    address = f"{org_hub.url}/organizations/crew/settings/sign-in"
    anonymous = httpx.get(address, follow_redirects=False)
    assert anonymous.status_code == 303 and "/login" in anonymous.headers["location"]
    sign_in(page, "mate", PASSWORD)  # a member with write, not an admin
    response = page.goto("/organizations/crew/settings/sign-in")
    assert response.status == 403
    assert page.locator("form input[name=issuer]").count() == 0
    page.goto("/organizations/crew/members")
    assert page.get_by_role("link", name="Sign-in (single sign-on groups, CI trust)").count() == 0


def test_group_mappings_are_listed_and_removed(page, org_hub):
    sign_in(page, "boss", PASSWORD)
    page.goto("/organizations/crew/settings/sign-in")
    page.get_by_label("Group (as the identity provider names it)").fill("ml-interns")
    page.get_by_label("Role in crew").select_option("contributor")
    page.get_by_role("button", name="Map group").click()
    assert "ml-interns" in page.inner_text("[role=status]")
    row = page.locator("table.group-roles tr", has_text="ml-interns")
    assert "contributor" in row.inner_text()
    page.get_by_label("Group (as the identity provider names it)").fill("ml-interns")
    page.get_by_role("button", name="Map group").click()
    assert "already mapped" in page.inner_text("[role=alert]")
    page.get_by_label("Group (as the identity provider names it)").fill("bad,group")
    page.get_by_role("button", name="Map group").click()
    assert "no comma" in page.inner_text("[role=alert]")
    page.get_by_role("button", name="Remove ml-interns").click()
    assert page.locator("table.group-roles tr", has_text="ml-interns").count() == 0


def test_an_invitation_to_an_address_is_mailed(page, org_hub, smtp):
    org_hub.cli("user", "create", "newbie", "--password", PASSWORD, "--email", "newbie@example.org")
    sign_in(page, "boss", PASSWORD)
    page.goto("/organizations/crew/members")
    page.get_by_label("E-mail address (empty: a link anyone signed in can use)").fill("newbie@example.org")
    page.locator("form:has(input[name=email]) select[name=role]").select_option("read")
    page.get_by_role("button", name="Create invitation").click()
    assert "e-mailed to newbie@example.org" in page.inner_text("[role=status]")
    mail = smtp.wait_for("newbie@example.org", "invites you to crew")
    [link] = links_in(mail)
    assert link == page.inner_text("#invitation-link") and link.startswith(org_hub.url + "/invitations/")
    page.context.clear_cookies()
    sign_in(page, "newbie", PASSWORD)
    page.goto(link)
    page.get_by_role("button", name="Join crew").click()
    page.wait_for_url("**/organizations/crew/members")
    members = {m["user"]: m["role"] for m in httpx.get(f"{org_hub.url}/api/organizations/crew/members").json()}
    assert members["newbie"] == "read"
