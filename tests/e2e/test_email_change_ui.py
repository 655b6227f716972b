"""Changing one's e-mail address in a real browser, with the mail read from a real SMTP server
(aiosmtpd): the link goes to the new address, following it changes the address and tells the old
one; an address that belongs to someone else is never revealed by the form."""

from __future__ import annotations

import socket

import httpx
import pytest

from tests.conftest import start_hub, stop_hub
from tests.e2e.test_account_ui import PASSWORD, sign_in
from tests.e2e.test_web_ui import browser  # noqa: F401 - the shared Chromium fixture
from tests.smtp import body_of, links_in, smtp_server


@pytest.fixture(scope="module")
def smtp():
    with smtp_server() as server:
        yield server


@pytest.fixture(scope="module")
def mail_hub(tmp_path_factory, smtp):
    data = tmp_path_factory.mktemp("email-change") / "data"
    data.mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    hub = start_hub(data, port, AICOMMONS_SMTP_URL=smtp.url, AICOMMONS_PUBLIC_URL=url,
                    AICOMMONS_EMAIL_FROM="Hub <hub@example.org>")
    for name in ("ada", "bea"):
        hub.cli("user", "create", name, "--password", PASSWORD, "--email", f"{name}@old.example.org")
    hub.cli("token", "create", "ada", "--value", "hf_ada_email_change_token_0001")
    try:
        yield hub
    finally:
        stop_hub(hub)


def test_change_email_is_confirmed_at_the_new_address_and_the_old_one_is_told(browser, mail_hub, smtp):  # noqa: F811
    context = browser.new_context(base_url=mail_hub.url)
    page = context.new_page()
    sign_in(page, "ada")
    page.goto("/settings/account")
    page.get_by_label("New e-mail address").fill("ada@new.example.org")
    page.locator("#email-form").get_by_label("Your password").fill("wrong password")
    page.click("text=Send the confirmation link")
    assert "current password is not right" in page.inner_text("[role=alert]")
    page.get_by_label("New e-mail address").fill("ada@new.example.org")
    page.locator("#email-form").get_by_label("Your password").fill(PASSWORD)
    page.click("text=Send the confirmation link")
    assert "We sent a link to ada@new.example.org" in page.inner_text("[role=status]")
    assert page.inner_text("#current-email") == "ada@old.example.org"  # not yet

    mail = smtp.wait_for("ada@new.example.org", "Confirm your new e-mail address")
    [link] = [u for u in links_in(mail) if "/settings/email/confirm" in u]
    assert link.startswith(mail_hub.url)
    other = browser.new_context(base_url=mail_hub.url)  # the link works in any browser, signed in or not
    confirm = other.new_page()
    confirm.goto(link)
    assert "ada@new.example.org" in confirm.inner_text("main")
    confirm.click("text=Confirm ada@new.example.org")
    assert "is now ada@new.example.org" in confirm.inner_text("[role=status]")
    confirm.goto(link)  # single use
    assert "not valid" in confirm.inner_text("main")
    other.close()

    told = smtp.wait_for("ada@old.example.org", "Your e-mail address was changed")
    assert "ada@new.example.org" in body_of(told)
    page.goto("/settings/account")
    assert page.inner_text("#current-email") == "ada@new.example.org"
    who = httpx.get(f"{mail_hub.url}/api/whoami-v2", headers={"Authorization": "Bearer hf_ada_email_change_token_0001"})
    assert who.json()["email"] == "ada@new.example.org" and who.json()["emailVerified"] is True

    # An address someone else has: the same answer, no link, and its owner is told instead.
    page.get_by_label("New e-mail address").fill("bea@old.example.org")
    page.locator("#email-form").get_by_label("Your password").fill(PASSWORD)
    page.click("text=Send the confirmation link")
    assert "We sent a link to bea@old.example.org" in page.inner_text("[role=status]")
    warning = smtp.wait_for("bea@old.example.org", "Someone tried to use your address")
    assert not [u for u in links_in(warning) if "/settings/email/confirm" in u]
    context.close()
