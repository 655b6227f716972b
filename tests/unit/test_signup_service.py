"""Sign-up policies, verification, approval, invites and password reset (hub/signup.py), over a
real Hub with its outbox (no SMTP): every link is read from the .eml file the hub wrote."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from email import message_from_string
from email.policy import default as default_policy

import pytest

from aicommons.config import Settings
from aicommons.errors import BadRequest, Conflict, Forbidden, NotFound, TooManyRequests, Unauthorized
from aicommons.hub.hub import Hub

PUBLIC = "https://hub.example.org"


@pytest.fixture
def make_hub(tmp_path, monkeypatch):
    hubs = []

    def make(**env) -> Hub:
        for key in list(os.environ):
            if key.startswith("AICOMMONS_"):
                monkeypatch.delenv(key)
        monkeypatch.setenv("AICOMMONS_PUBLIC_URL", PUBLIC)
        for key, value in env.items():
            monkeypatch.setenv(f"AICOMMONS_{key}", value)
        hub = Hub(Settings.from_env(data_dir=str(tmp_path / f"data{len(hubs)}")))
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        hub.close()


def mails(hub: Hub) -> list:
    outbox = hub.settings.data_dir / "outbox"
    return [message_from_string(p.read_text(), policy=default_policy) for p in sorted(outbox.glob("*.eml"))] \
        if outbox.exists() else []


def last_link(hub: Hub, to: str) -> str:
    msg = [m for m in mails(hub) if m["To"] == to][-1]
    links = re.findall(r"https?://\S+", msg.get_body().get_content())
    assert links and all(link.startswith(PUBLIC + "/") for link in links)  # from PUBLIC_URL only
    return links[0]


def token_of(link: str) -> str:
    return link.split("token=", 1)[1]


def test_closed_refuses_every_sign_up(make_hub):
    hub = make_hub(SIGNUP="closed")
    with pytest.raises(Forbidden):
        hub.signup.join("newcomer", "new@example.org", "a long passphrase")
    assert hub.accounts.store.get("newcomer") is None


def test_the_default_is_invite_only(make_hub):
    hub = make_hub()
    assert hub.settings.signup == "invite"
    with pytest.raises(Forbidden):
        hub.signup.join("newcomer", "new@example.org", "a long passphrase")
    link = hub.signup.create_invite(None)
    assert link.startswith(f"{PUBLIC}/join?invite=")
    invite = link.split("invite=", 1)[1]
    assert hub.signup.join("newcomer", "new@example.org", "a long passphrase", invite=invite).status == "verify"
    with pytest.raises(Forbidden):  # single use
        hub.signup.join("second", "second@example.org", "a long passphrase", invite=invite)


def test_an_invite_bound_to_an_address_admits_only_it_and_expires(make_hub):
    hub = make_hub(SIGNUP="invite")
    link = hub.signup.create_invite(None, email="Ann@Example.org")
    assert last_link(hub, "Ann@Example.org") == link  # mailed there
    invite = link.split("invite=", 1)[1]
    with pytest.raises(Forbidden):
        hub.signup.join("mallory", "mallory@example.org", "a long passphrase", invite=invite)
    hub.signup.join("ann", "ann@example.org", "a long passphrase", invite=invite)
    short = hub.signup.create_invite(None, ttl=timedelta(seconds=1)).split("invite=", 1)[1]
    import time

    time.sleep(1.2)
    with pytest.raises(Forbidden):
        hub.signup.join("late", "late@example.org", "a long passphrase", invite=short)


def test_only_site_and_org_admins_invite(make_hub):
    hub = make_hub(SIGNUP="invite")
    hub.accounts.create_user("plain")
    hub.accounts.create_user("boss")
    hub.accounts.create_org("lab", members=["boss"])
    with pytest.raises(Forbidden):
        hub.signup.create_invite(hub.accounts.principal_for_account(hub.accounts.require("plain")))
    assert hub.signup.create_invite(hub.accounts.principal_for_account(hub.accounts.require("boss")))


def test_open_sign_up_then_verification_unlocks_writing(make_hub):
    hub = make_hub(SIGNUP="open")
    assert hub.signup.join("Newcomer", "new@example.org", "a long passphrase").status == "verify"
    account = hub.accounts.require("newcomer")
    assert not account.email_verified and account.status == "active"
    principal = hub.accounts.principal_for_password("newcomer", "a long passphrase")  # signs in
    assert hub.accounts.whoami(principal)["emailVerified"] is False
    assert not principal.can_write_at_all
    with pytest.raises(Forbidden, match="Verify your e-mail"):
        hub.repos.create(principal, "model", "first", None, private=False)
    with pytest.raises(Forbidden, match="Verify your e-mail"):
        hub.accounts.create_token("newcomer", role="write")
    hub.accounts.create_token("newcomer", role="read")  # reading is fine
    link = last_link(hub, "new@example.org")
    assert link.startswith(f"{PUBLIC}/email/verify?token=")
    assert hub.signup.verify_email(token_of(link)).email_verified
    with pytest.raises(NotFound):  # single use
        hub.signup.verify_email(token_of(link))
    principal = hub.accounts.principal_for_password("newcomer", "a long passphrase")
    assert hub.accounts.whoami(principal)["emailVerified"] is True
    assert hub.repos.create(principal, "model", "first", None, private=False)[1]
    assert hub.accounts.create_token("newcomer", role="write")


def test_only_the_newest_verification_link_works_and_it_expires(make_hub):
    hub = make_hub(SIGNUP="open")
    hub.signup.join("newcomer", "new@example.org", "a long passphrase")
    first = token_of(last_link(hub, "new@example.org"))
    hub.signup.send_verification(hub.accounts.require("newcomer"))
    second = token_of(last_link(hub, "new@example.org"))
    with pytest.raises(NotFound):
        hub.signup.verify_email(first)
    row = hub.signup.live_link(second, "verify")
    assert timedelta(hours=23, minutes=59) < row.expires_at - row.created_at <= timedelta(hours=24)
    hub.signup.links.engine.dispose()
    from sqlalchemy import update

    from aicommons.db.tables import one_time_links

    with hub.engine.begin() as conn:
        conn.execute(update(one_time_links).values(expires_at=row.created_at))
    with pytest.raises(NotFound):
        hub.signup.verify_email(second)


def test_names_and_passwords_follow_the_rules(make_hub):
    hub = make_hub(SIGNUP="open", SIGNUP_EMAIL_DOMAINS="example.org, @lab.example.org")
    hub.accounts.create_user("alice", email="alice@example.org")
    hub.accounts.create_org("acme")
    cases = [
        (("ALICE", "x@example.org", "a long passphrase"), Conflict),  # users and orgs, any case
        (("Acme", "x@example.org", "a long passphrase"), Conflict),
        (("settings", "x@example.org", "a long passphrase"), BadRequest),  # a route
        (("join", "x@example.org", "a long passphrase"), BadRequest),
        (("bad_name", "x@example.org", "a long passphrase"), BadRequest),
        (("okname", "not-an-address", "a long passphrase"), BadRequest),
        (("okname", "x@elsewhere.org", "a long passphrase"), BadRequest),  # domain not allowed
        (("okname", "x@example.org", "short"), BadRequest),
        (("okname", "x@example.org", "password1"), BadRequest),  # common
        (("okname", "x@example.org", "iloveyou"), BadRequest),
        (("longname1", "x@example.org", "longname1"), BadRequest),  # equal to the user name
        (("okname2", "x@example.org", "X@Example.org"), BadRequest),  # equal to the address
    ]
    for (name, email, password), error in cases:
        with pytest.raises(error):
            hub.signup.join(name, email, password)
    assert hub.signup.join("okname", "x@lab.example.org", "correct horse battery staple").status == "verify"


def test_an_address_with_an_account_gets_the_same_answer_and_its_owner_a_mail(make_hub):
    hub = make_hub(SIGNUP="open")
    hub.accounts.create_user("alice", email="alice@example.org", password="wonderland")
    answer = hub.signup.join("alice2", "Alice@example.org", "a long passphrase")
    fresh = hub.signup.join("carol", "carol@example.org", "a long passphrase")
    assert answer.status == fresh.status and answer.account is None and fresh.account.name == "carol"
    assert hub.accounts.store.get("alice2") is None
    told = [m for m in mails(hub) if m["To"] == "Alice@example.org"]
    assert len(told) == 1 and "already have an account" in told[0].get_body().get_content()


def test_approval_keeps_the_account_waiting_until_an_admin_approves(make_hub):
    hub = make_hub(SIGNUP="approval")
    assert hub.signup.join("waiting", "w@example.org", "a long passphrase").status == "pending"
    with pytest.raises(Forbidden, match="approval"):
        hub.accounts.principal_for_password("waiting", "a long passphrase")
    with pytest.raises(Unauthorized):
        hub.accounts.principal_for_password("waiting", "wrong password")
    hub.signup.verify_email(token_of(last_link(hub, "w@example.org")))
    hub.signup.approve("waiting")
    approved = [m for m in mails(hub) if m["Subject"] == "Your account was approved"]
    assert approved and approved[0]["To"] == "w@example.org"
    principal = hub.accounts.principal_for_password("waiting", "a long passphrase")
    assert principal.can_write_at_all
    with pytest.raises(BadRequest):
        hub.signup.approve("waiting")


def test_password_reset_is_single_use_ends_sessions_and_says_nothing(make_hub):
    hub = make_hub(SIGNUP="closed")
    alice = hub.accounts.create_user("alice", email="alice@example.org", password="wonderland")
    session = hub.sessions.start(alice)
    hub.signup.request_reset("nobody@example.org")
    hub.signup.request_reset("not an address")
    assert mails(hub) == []  # nothing to tell; the page answers the same (web test)
    hub.signup.request_reset("ALICE@example.org")
    link = last_link(hub, "alice@example.org")
    assert link.startswith(f"{PUBLIC}/password/reset?token=")
    token = token_of(link)
    row = hub.signup.live_link(token, "reset")
    assert row.expires_at - row.created_at == timedelta(hours=1)
    assert token not in str(hub.signup.links.list("reset", row.created_at))  # stored hashed
    with pytest.raises(BadRequest):
        hub.signup.reset_password(token, "password")  # common: refused, and the link still works
    hub.signup.reset_password(token, "a brand new passphrase")
    assert hub.sessions.account_for(session) is None  # every session ended
    hub.accounts.principal_for_password("alice", "a brand new passphrase")
    with pytest.raises(NotFound):
        hub.signup.reset_password(token, "another new passphrase")


def test_throttling_per_client_address(make_hub):
    hub = make_hub(SIGNUP_ATTEMPTS_PER_HOUR="3")
    for _ in range(3):
        hub.signup.throttle("10.0.0.1")
    with pytest.raises(TooManyRequests) as exc:
        hub.signup.throttle("10.0.0.1")
    assert 3500 < int(exc.value.headers["Retry-After"]) <= 3600
    hub.signup.throttle("10.0.0.2")  # another address is not affected


def test_first_run_setup_token(make_hub):
    hub = make_hub()
    token = hub.first_run.token()
    path = hub.settings.data_dir / "setup-token"
    assert path.read_text() == token and oct(path.stat().st_mode & 0o777) == "0o600"
    assert hub.first_run.token() == token  # stable until used
    for wrong in (None, "", "x" * 43, token[:-1]):
        with pytest.raises(NotFound):
            hub.first_run.check(wrong)
    with pytest.raises(BadRequest):
        hub.first_run.complete(token, "root", "root@example.org", "12345678")  # common
    assert path.exists()  # a refused form keeps the link
    admin = hub.first_run.complete(token, "root", "root@example.org", "a long admin passphrase")
    assert admin.is_admin and admin.email_verified
    assert not path.exists()
    with pytest.raises(NotFound):
        hub.first_run.check(token)
    assert hub.first_run.token() is None
