"""Getting in, in a real browser (headless Chromium via Playwright) against live hubs whose mail goes
to a real SMTP server (aiosmtpd) on loopback: first-run setup, sign-up with e-mail verification,
password reset. Every link is read from the mail the hub sent."""

from __future__ import annotations

import re
import socket
import time

import pytest
from huggingface_hub import HfApi
from playwright.sync_api import expect

from tests.conftest import start_hub, stop_hub
from tests.e2e.test_web_ui import browser  # noqa: F401 - the shared Chromium fixture
from tests.smtp import links_in, smtp_server


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def smtp():
    with smtp_server() as server:
        yield server


@pytest.fixture(scope="module")
def open_hub(tmp_path_factory, smtp):
    data = tmp_path_factory.mktemp("signup-ui") / "data"
    data.mkdir()
    port = _port()
    url = f"http://127.0.0.1:{port}"
    live = start_hub(data, port, AICOMMONS_SIGNUP="open", AICOMMONS_SMTP_URL=smtp.url, AICOMMONS_PUBLIC_URL=url,
                     AICOMMONS_EMAIL_FROM="Hub <hub@example.org>", AICOMMONS_TERMS_URL="https://example.org/terms")
    try:
        yield live
    finally:
        stop_hub(live)


def _new_page(chromium, hub, width: int | None = None):
    context = chromium.new_context(base_url=hub.url, **({"viewport": {"width": width, "height": 800}} if width else {}))
    return context.new_page()


def _sign_in(page, user: str, password: str) -> None:
    page.goto("/login")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(password)
    page.click("form.stack button")
    page.wait_for_url("**/")


def _mails(smtp, to: str, subject_contains: str) -> list:
    with smtp.collector.cond:
        return [m for rcpts, m, _ in smtp.collector.messages if to in rcpts and subject_contains in (m["Subject"] or "")]


def _fits_the_screen(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_first_run_setup(browser, tmp_path):  # noqa: F811
    data = tmp_path / "data"
    data.mkdir()
    port = _port()
    live = start_hub(data, port)
    try:
        log = (tmp_path / f"server-{port}.log").read_text()
        found = re.search(r"create one at (http://\S+/setup\?token=(\S+))", log)
        assert found, log
        link, token = found.groups()
        token_file = data / "setup-token"
        assert token_file.read_text() == token and token_file.stat().st_mode & 0o777 == 0o600
        page = _new_page(browser, live, width=375)
        assert page.goto("/setup").status == 404  # without the token: nothing to see
        assert page.goto("/setup?token=" + token[:-2]).status == 404
        page.goto(link)
        assert _fits_the_screen(page)
        page.get_by_label("User name").fill("root")
        page.get_by_label("E-mail").fill("root@example.org")
        page.get_by_label("Password").fill("qwertyuiop")  # on the common-passwords list
        page.click("text=Create the administrator")
        expect(page.locator(".error")).to_contain_text("common or breached")
        page.get_by_label("Password").fill("a long admin passphrase")
        page.click("text=Create the administrator")
        page.wait_for_url("**/root")
        assert "root" in page.inner_text("header nav")  # signed in
        assert not token_file.exists()
        assert page.goto(link).status == 404  # used: gone for good
        assert "root\t (admin)" in live.cli("user", "list").stdout
    finally:
        stop_hub(live)


def test_sign_up_verify_and_create_a_repo(browser, open_hub, smtp):  # noqa: F811
    page = _new_page(browser, open_hub, width=390)
    page.goto("/")
    page.click("header >> text=Sign up")
    assert _fits_the_screen(page)
    assert page.get_by_role("link", name="terms of use").get_attribute("href") == "https://example.org/terms"
    page.get_by_label("User name").fill("newcomer")
    page.get_by_label("E-mail").fill("newcomer@example.org")
    page.get_by_label("Password", exact=True).fill("newcomer")  # equal to the user name
    page.click("text=Create account")
    expect(page.locator(".error")).to_contain_text("not your user name")
    page.get_by_label("Password", exact=True).fill("tulips in the rain")
    page.click("text=Create account")
    expect(page.locator("h1")).to_have_text("Check your mail")
    mail = smtp.wait_for("newcomer@example.org", "Verify")
    assert mail["From"] == "Hub <hub@example.org>"
    [link] = links_in(mail)
    assert link.startswith(f"{open_hub.url}/email/verify?token=")

    # Before verifying: signed in, reading, but no repos, write tokens or discussions
    _sign_in(page, "newcomer", "tulips in the rain")
    assert "Verify your e-mail address" in page.inner_text(".banner")
    # /new says so before the form is filled in, with the way out; the form cannot be sent
    page.goto("/new")
    blocked = page.locator("#new-blocked")
    expect(blocked).to_contain_text("Verify your e-mail address to create repos")
    expect(page.get_by_role("button", name="Create", exact=True)).to_be_disabled()
    assert _fits_the_screen(page)
    # and the server still refuses a POST sent anyway (the page's own CSRF token, from our origin)
    csrf = page.locator("form[action='/new'] input[name=csrf]").get_attribute("value")
    refused = page.request.post("/new", form={"csrf": csrf, "type": "model", "name": "first-model"},
                                headers={"Origin": open_hub.url})
    assert refused.status == 403 and "Verify your e-mail address" in refused.text()
    blocked.get_by_role("button", name="Send the verification link again").click()
    expect(page.locator("h1")).to_have_text("Check your mail")
    deadline = time.time() + 30
    while len(verify_mails := _mails(smtp, "newcomer@example.org", "Verify")) < 2 and time.time() < deadline:
        time.sleep(0.2)
    assert len(verify_mails) == 2
    [link] = links_in(verify_mails[-1])
    page.goto("/settings/tokens")
    page.fill("input[name=name]", "read-one")
    page.click("text=Create token")
    read_token = page.inner_text("#new-token")
    assert HfApi(endpoint=open_hub.url, token=read_token).whoami()["emailVerified"] is False

    page.goto(link)
    page.click("text=Verify my address")
    expect(page.locator("h1")).to_have_text("Address verified")
    assert page.goto(link).status == 404  # single use
    assert page.locator(".banner").count() == 0
    page.goto("/new")
    page.fill("input[name=name]", "first-model")
    page.click("form.stack button")
    page.wait_for_url("**/newcomer/first-model")
    assert HfApi(endpoint=open_hub.url, token=read_token).whoami()["emailVerified"] is True
    page.context.close()


def test_password_reset_by_mail(browser, open_hub, smtp):  # noqa: F811
    open_hub.cli("user", "create", "forgetful", "--email", "forgetful@example.org", "--password", "old-password-1")
    other_device = _new_page(browser, open_hub)
    _sign_in(other_device, "forgetful", "old-password-1")
    assert "forgetful" in other_device.inner_text("header nav")

    page = _new_page(browser, open_hub, width=375)
    page.goto("/login")
    page.click("text=Forgot your password?")
    page.get_by_label("E-mail address of your account").fill("forgetful@example.org")
    page.click("text=Send me a link")
    expect(page.locator("h1")).to_have_text("Check your mail")
    known = page.inner_text(".notice")
    page.goto("/password/reset")
    page.get_by_label("E-mail address of your account").fill("stranger@example.org")
    page.click("text=Send me a link")
    expect(page.locator(".notice")).to_have_text(known)  # the same answer for an address without an account
    [link] = links_in(smtp.wait_for("forgetful@example.org", "Reset"))
    assert link.startswith(f"{open_hub.url}/password/reset?token=")
    page.goto(link)
    assert _fits_the_screen(page)
    page.get_by_label("New password").fill("password123")
    page.click("text=Set the new password")
    expect(page.locator(".error")).to_contain_text("common or breached")
    page.get_by_label("New password").fill("a fresh start at last")
    page.click("text=Set the new password")
    expect(page.locator(".notice")).to_contain_text("every session of the account has ended")
    assert page.goto(link).status == 404  # single use

    other_device.reload()
    expect(other_device.locator("header nav")).to_contain_text("Sign in")  # signed out there too
    _sign_in(other_device, "forgetful", "a fresh start at last")
    assert "forgetful" in other_device.inner_text("header nav")
    other_device.context.close()
    page.context.close()


def test_an_org_admin_invites_someone(browser, live_hub):  # noqa: F811
    # live_hub runs the default policy (invite); alice administers the organisation acme
    alice = _new_page(browser, live_hub, width=375)
    _sign_in(alice, "alice", "wonderland")
    alice.goto("/settings/invites")
    assert _fits_the_screen(alice)
    alice.get_by_label("E-mail address").fill("guest@example.org")
    alice.get_by_label("Works for").select_option("1")
    alice.click("text=Create invite link")
    link = alice.inner_text("#new-invite")
    assert link.startswith(f"{live_hub.url}/join?invite=")
    expect(alice.locator("table.files")).to_contain_text("guest@example.org")
    mailed = [p.read_text() for p in (live_hub.data_dir / "outbox").glob("*.eml")]
    assert any("To: guest@example.org" in m and link in m for m in mailed)  # no SMTP: the outbox

    guest = _new_page(browser, live_hub)
    guest.goto(link)
    expect(guest.get_by_label("E-mail")).to_have_value("guest@example.org")
    guest.get_by_label("User name").fill("guest-user")
    guest.get_by_label("Password", exact=True).fill("a guest passphrase")
    guest.click("text=Create account")
    expect(guest.locator("h1")).to_have_text("Check your mail")
    assert "guest-user" in live_hub.cli("user", "list").stdout
    assert guest.goto(link).status == 200 and "invite link" in guest.inner_text("main")  # used: no form any more
    for context in (alice.context, guest.context):
        context.close()


def test_only_admins_invite(live_hub):
    import httpx

    live_hub.cli("user", "create", "plain-member", "--password", "plain-password-1")
    live_hub.cli("org", "add-member", "acme", "plain-member", "--role", "write")  # a member, not an admin
    with httpx.Client(base_url=live_hub.url, timeout=30) as http:
        csrf = re.search(r'name="csrf" value="([^"]+)"', http.get("/login").text).group(1)
        assert http.get("/settings/invites").status_code == 303  # anonymous: sent to sign in
        http.post("/login", data={"csrf": csrf, "username": "plain-member", "password": "plain-password-1", "next": "/"})
        assert http.get("/settings/invites").status_code == 403
        csrf = re.search(r'name="csrf" value="([^"]+)"', http.get("/").text).group(1)
        assert http.post("/settings/invites", data={"csrf": csrf, "email": ""}).status_code == 403
