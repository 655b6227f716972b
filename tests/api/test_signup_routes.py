"""The getting-in routes against live hubs with httpx: /setup hidden without its token, CSRF on
every form, the policy on /join, the honeypot, the per-address throttle (429 + Retry-After), answers
that tell nobody which addresses have accounts, and mailed links built from the configured address
whatever Host header the request carried."""

from __future__ import annotations

import re
import socket

import httpx
import pytest

from tests.conftest import start_hub, stop_hub

NOTICE = re.compile(r'<p class="notice" role="status">(.*?)</p>', re.S)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def open_hub(tmp_path_factory):
    data = tmp_path_factory.mktemp("signup-routes") / "data"
    data.mkdir()
    live = start_hub(data, _port(), AICOMMONS_SIGNUP="open", AICOMMONS_SIGNUP_ATTEMPTS_PER_HOUR="6",
                     AICOMMONS_TRUSTED_PROXIES="127.0.0.1")  # its X-Forwarded-For names each test's client
    live.cli("user", "create", "owner", "--email", "owner@example.org", "--password", "owner-pass")
    try:
        yield live
    finally:
        stop_hub(live)


def outbox(hub) -> list[str]:
    folder = hub.data_dir / "outbox"
    return [p.read_text() for p in sorted(folder.glob("*.eml"))] if folder.exists() else []


def test_setup_is_not_found_without_its_token(live_hub, http):
    # live_hub has no site admin (alice is not one): a setup token exists, and still /setup hides
    assert (live_hub.data_dir / "setup-token").exists()
    for params in ({}, {"token": ""}, {"token": "guess"}, {"token": "x" * 200}):
        r = http.get("/setup", params=params)
        assert r.status_code == 404 and "text/html" in r.headers["content-type"]
    page = http.get("/login").text
    r = http.post("/setup", data={"csrf": csrf_of(page), "token": "guess", "username": "root",
                                  "email": "root@example.org", "password": "a long admin passphrase"})
    assert r.status_code == 404
    assert live_hub.cli("user", "list").stdout.count("root") == 0


def test_every_form_needs_the_csrf_token(live_hub, http):
    for path in ("/setup", "/join", "/email/verify", "/email/verify/resend", "/password/reset"):
        assert http.post(path, data={"email": "a@example.org"}).status_code == 403, path


def test_links_that_are_not_live_are_not_found(http):
    assert http.get("/email/verify", params={"token": "nope"}).status_code == 404
    assert http.get("/password/reset", params={"token": "nope"}).status_code == 404
    assert http.get("/password/reset").status_code == 200  # the form asking for a link


def test_join_is_the_sign_up_page_under_the_default_invite_policy(http):
    page = http.get("/join")
    assert page.status_code == 200 and "invite link" in page.text  # not a profile of a user "join"
    r = http.post("/join", data={"csrf": csrf_of(http.get("/login").text), "username": "crasher", "email": "c@example.org",
                                 "password": "a long passphrase"})
    assert r.status_code == 403 and "invite" in r.text



def test_an_invite_without_an_address_leaves_the_email_field_empty(live_hub, http):
    """The sign-up page of an invite made without --email showed "None" in its e-mail field."""
    link = live_hub.cli("invite", "create").stdout.strip().splitlines()[-1]
    page = http.get("/join", params={"invite": link.split("invite=", 1)[1]})
    assert page.status_code == 200
    field = re.search(r'<input name="email"[^>]*>', page.text).group(0)
    assert 'value=""' in field and "None" not in field
    bound = live_hub.cli("invite", "create", "--email", "bound@example.org").stdout.strip().splitlines()[-1]
    page = http.get("/join", params={"invite": bound.split("invite=", 1)[1]})
    assert 'value="bound@example.org"' in re.search(r'<input name="email"[^>]*>', page.text).group(0)

def test_the_answer_is_the_same_for_an_address_with_an_account(open_hub):
    with httpx.Client(base_url=open_hub.url, timeout=30) as http:
        def join(name, email):
            token = csrf_of(http.get("/join").text)
            r = http.post("/join", data={"csrf": token, "username": name, "email": email,
                                         "password": "a long passphrase", "website": ""})
            return r.status_code, NOTICE.search(r.text).group(1)

        taken = join("someone-else", "OWNER@example.org")
        fresh = join("fresh-user", "fresh@example.org")
        assert taken == fresh and taken[0] == 200
    assert "someone-else" not in open_hub.cli("user", "list").stdout
    assert "\tsign-up" in open_hub.cli("audit", "--actor", "fresh-user").stdout  # audited, with its address
    assert open_hub.cli("audit", "--actor", "someone-else").stdout == ""
    mails = outbox(open_hub)
    assert any("To: OWNER@example.org" in m and "already have an account" in m for m in mails)
    assert any("To: fresh@example.org" in m and "/email/verify?token=" in m for m in mails)


def test_honeypot_and_throttle(open_hub):
    before = len(outbox(open_hub))
    with httpx.Client(base_url=open_hub.url, timeout=30, headers={"X-Forwarded-For": "192.0.2.7"}) as http:
        token = csrf_of(http.get("/join").text)
        form = {"csrf": token, "username": "botty", "email": "bot@example.org", "password": "a long passphrase"}
        r = http.post("/join", data={**form, "website": "http://spam.example"})
        assert r.status_code == 200 and "Check your mail" in r.text  # looks like success...
        assert "botty" not in open_hub.cli("user", "list").stdout  # ...but nothing was made
        assert len(outbox(open_hub)) == before
        statuses = [http.post("/password/reset", data={"csrf": token, "email": "x@example.org"}).status_code
                    for _ in range(5)]
        assert statuses == [200] * 5  # 6 per hour: the honeypot and these five
        refused = http.post("/join", data=form)
        assert refused.status_code == 429
        assert 3000 < int(refused.headers["Retry-After"]) <= 3600
        assert http.post("/password/reset", data={"csrf": token, "email": "x@example.org"}).status_code == 429
    with httpx.Client(base_url=open_hub.url, timeout=30, headers={"X-Forwarded-For": "192.0.2.8"}) as other:
        token = csrf_of(other.get("/join").text)
        assert other.post("/password/reset", data={"csrf": token, "email": "x@example.org"}).status_code == 200


def test_reset_answers_the_same_and_links_ignore_the_host_header(open_hub):
    with httpx.Client(base_url=open_hub.url, timeout=30, headers={"X-Forwarded-For": "192.0.2.9"}) as http:
        token = csrf_of(http.get("/password/reset").text)
        answers = []
        for email in ("owner@example.org", "nobody@example.org"):
            r = http.post("/password/reset", data={"csrf": token, "email": email},
                          headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example"})
            answers.append((r.status_code, NOTICE.search(r.text).group(1)))
        assert answers[0] == answers[1] and answers[0][0] == 200
    mail = [m for m in outbox(open_hub) if "To: owner@example.org" in m and "Reset your password" in m][-1]
    assert "evil.example" not in mail
    assert f"{open_hub.url}/password/reset?token=" in mail
    assert not [m for m in outbox(open_hub) if "nobody@example.org" in m]


def test_a_moved_repos_old_id_stays_with_its_namespace(api, bob_api, live_hub):
    from huggingface_hub.errors import HfHubHTTPError

    from tests.conftest import ORG, unique_name

    name = unique_name("moved")
    api.create_repo(f"alice/{name}")
    api.move_repo(f"alice/{name}", f"{ORG}/{name}")
    assert api.model_info(f"alice/{name}").id == f"{ORG}/{name}"  # the old id redirects
    with pytest.raises(HfHubHTTPError) as exc:
        bob_api.create_repo(f"alice/{name}")  # nobody else can take the old id
    assert exc.value.response.status_code == 403
    assert api.model_info(f"alice/{name}").id == f"{ORG}/{name}"
    api.create_repo(f"alice/{name}")  # the namespace that owned it can
    assert api.model_info(f"alice/{name}").id == f"alice/{name}"
