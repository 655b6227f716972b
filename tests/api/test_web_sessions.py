"""Web sign-in and sessions, against a live hub with httpx (issue 9, finding 9): server-side sessions
that end at sign-out, password change and admin sign-out; per-visitor CSRF tokens and the Origin
check; security headers on HTML; throttled password guesses (web form and HTTP Basic on git);
Argon2id hashes, with old ones upgraded at sign-in."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

import httpx
import pytest
from huggingface_hub import HfApi

from tests.conftest import start_hub, stop_hub

TOKEN = "hf_sessions_token_00000000000000"
GINA_TOKEN = "hf_gina_token_000000000000000000"
PER_ACCOUNT = 3
PER_IP = 6


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    data = tmp_path_factory.mktemp("sessions") / "data"
    data.mkdir()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AICOMMONS_")}, "AICOMMONS_DATA_DIR": str(data)}
    for args in (["user", "create", "carol", "--password", "carol-pass"],
                 ["user", "create", "dave", "--password", "dave-pass"],
                 ["user", "create", "erin", "--password", "erin-pass"],
                 ["user", "create", "frank", "--password", "frank-pass"],
                 ["user", "create", "nopass"],
                 ["user", "create", "gina", "--password", "gina-pass"],
                 ["token", "create", "gina", "--value", GINA_TOKEN],
                 ["org", "create", "orga"],
                 ["token", "create", "carol", "--value", TOKEN]):
        subprocess.run([sys.executable, "-m", "aicommons.cli.main", *args], env=env, check=True, capture_output=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    live = start_hub(data, port, AICOMMONS_TRUSTED_PROXIES="127.0.0.1",
                     AICOMMONS_SIGN_IN_FAILURES_PER_ACCOUNT=str(PER_ACCOUNT),
                     AICOMMONS_SIGN_IN_FAILURES_PER_IP=str(PER_IP), AICOMMONS_SIGN_IN_FAILURE_WINDOW_SECONDS="600")
    HfApi(endpoint=live.url, token=TOKEN).create_repo("carol/m")
    try:
        yield live
    finally:
        stop_hub(live)


def client(hub, ip: str | None = None) -> httpx.Client:
    """A browser-like client; ``ip`` is sent as X-Forwarded-For, which the server trusts from loopback
    (``AICOMMONS_TRUSTED_PROXIES=127.0.0.1``, as behind nginx on the same machine)."""
    headers = {"X-Forwarded-For": ip} if ip else {}
    return httpx.Client(base_url=hub.url, timeout=30, headers=headers)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def sign_in(http: httpx.Client, user: str, password: str, **headers) -> httpx.Response:
    token = csrf_of(http.get("/login").text)
    return http.post("/login", data={"csrf": token, "username": user, "password": password, "next": "/"},
                     headers=headers)


def signed_in_as(http: httpx.Client, cookies=None) -> str | None:
    r = http.get("/settings/tokens", cookies=cookies)
    if r.status_code == 303:
        return None
    assert r.status_code == 200
    return re.search(r'<a href="/([^"]+)">\1</a>', r.text).group(1)


def cli(hub, *args: str) -> subprocess.CompletedProcess:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AICOMMONS_")},
           "AICOMMONS_DATA_DIR": str(hub.data_dir)}
    return subprocess.run([sys.executable, "-m", "aicommons.cli.main", *args], env=env, check=True,
                          capture_output=True, text=True)


# --- sessions ---------------------------------------------------------------------------------


def test_sign_out_ends_the_session_on_the_server(hub):
    with client(hub, "10.0.0.1") as http:
        assert sign_in(http, "carol", "carol-pass").status_code == 303
        old = http.cookies.get("aicommons_session")
        assert old and signed_in_as(http) == "carol"
        page = http.get("/settings/tokens").text
        assert http.post("/logout", data={"csrf": csrf_of(page)}).status_code == 303
        assert signed_in_as(http) is None
    with client(hub) as replay:  # the old cookie, replayed as an attacker who copied it would
        replay.cookies.set("aicommons_session", old)
        assert signed_in_as(replay) is None


def test_password_change_and_admin_sign_out_end_every_session(hub):
    with client(hub, "10.0.0.2") as a, client(hub, "10.0.0.2") as b:
        assert sign_in(a, "dave", "dave-pass").status_code == 303
        assert sign_in(b, "dave", "dave-pass").status_code == 303
        assert signed_in_as(a) == signed_in_as(b) == "dave"
        assert "ended 2 web session(s)" in cli(hub, "user", "sign-out", "dave").stdout
        assert signed_in_as(a) is None and signed_in_as(b) is None
        assert sign_in(a, "dave", "dave-pass").status_code == 303
        cli(hub, "user", "set-password", "dave", "--password", "dave-new-pass")
        assert signed_in_as(a) is None
        assert sign_in(a, "dave", "dave-pass").status_code == 401
        assert sign_in(a, "dave", "dave-new-pass").status_code == 303


def test_an_admin_lock_ends_sessions_tokens_and_password_at_once(hub):
    import time

    with client(hub, "10.0.0.9") as http:
        assert sign_in(http, "gina", "gina-pass").status_code == 303
        assert HfApi(endpoint=hub.url, token=GINA_TOKEN).whoami()["name"] == "gina"
        out = cli(hub, "user", "lock", "gina").stdout
        assert "1 token(s) revoked, 1 web session(s) ended" in out
        assert signed_in_as(http) is None  # at once
        assert sign_in(http, "gina", "gina-pass").status_code == 401
    deadline = time.time() + 15  # the server remembers a checked token for TOKEN_CACHE_SECONDS (5 s)
    while httpx.get(f"{hub.url}/api/whoami-v2", headers={"Authorization": f"Bearer {GINA_TOKEN}"}).status_code != 401:
        assert time.time() < deadline, "the locked user's token still works"
        time.sleep(0.5)
    assert "user lock" in cli(hub, "audit", "--target", "gina").stdout


def test_a_session_id_is_new_at_each_sign_in_and_only_its_hash_is_stored(hub):
    import sqlite3

    with client(hub, "10.0.0.3") as http:
        token = csrf_of(http.get("/login").text)
        r = http.post("/login", data={"csrf": token, "username": "carol", "password": "carol-pass"},
                      headers={"Cookie": f"aicommons_visitor={http.cookies['aicommons_visitor']}; "
                                         "aicommons_session=chosen-by-an-attacker"})
        assert r.status_code == 303
        value = re.search(r"aicommons_session=([^;]+)", r.headers["set-cookie"]).group(1)
        assert value != "chosen-by-an-attacker" and len(value) >= 43
    with sqlite3.connect(hub.data_dir / "hub.db") as db:
        stored = [row[0] for row in db.execute("select id_hash from web_sessions")]
    assert value not in stored and len(stored) >= 1


# --- CSRF and Origin --------------------------------------------------------------------------


def test_sign_in_form_needs_the_visitors_own_csrf_token(hub):
    with client(hub) as attacker, client(hub) as victim:
        attackers_token = csrf_of(attacker.get("/login").text)
        victim.get("/login")  # the victim has a visitor cookie of their own
        form = {"username": "carol", "password": "carol-pass", "next": "/"}
        assert victim.post("/login", data=form).status_code == 403  # no token
        assert victim.post("/login", data={**form, "csrf": attackers_token}).status_code == 403  # someone else's
        assert victim.cookies.get("aicommons_session") is None
    with client(hub) as fresh:  # no visitor cookie at all (a cross-site POST from a first visit)
        assert fresh.post("/login", data={**form, "csrf": attackers_token}).status_code == 403


def test_forms_from_another_origin_are_refused(hub):
    with client(hub, "10.0.0.4") as http:
        assert sign_in(http, "carol", "carol-pass").status_code == 303
        token = csrf_of(http.get("/settings/tokens").text)
        form = {"csrf": token, "action": "create", "name": "x", "role": "read"}
        for headers in ({"Origin": "http://evil.example"}, {"Origin": "null"},
                        {"Referer": "http://evil.example/page"},
                        {"Origin": hub.url.replace("127.0.0.1", "localhost")}):
            r = http.post("/settings/tokens", data=form, headers=headers)
            assert r.status_code == 403, headers
        before = http.get("/settings/tokens").text.count("Revoke")  # none of the refused forms made one
        ok = http.post("/settings/tokens", data=form, headers={"Origin": hub.url}, follow_redirects=True)
        assert ok.status_code == 200 and ok.text.count("Revoke") == before + 1
        ok = http.post("/settings/tokens", data=form, headers={"Referer": f"{hub.url}/settings/tokens"},
                       follow_redirects=True)
        assert ok.status_code == 200 and ok.text.count("Revoke") == before + 2
        # Sign-in itself is checked too (login CSRF).
        login = csrf_of(http.get("/login").text)
        r = http.post("/login", data={"csrf": login, "username": "carol", "password": "carol-pass"},
                      headers={"Origin": "http://evil.example"})
        assert r.status_code == 403


# --- headers ----------------------------------------------------------------------------------


def test_html_pages_forbid_framing_and_personal_pages_are_not_stored(hub):
    with client(hub, "10.0.0.5") as http:
        for path in ("/", "/login", "/carol/m", "/no-such-user", "/carol/no-such-repo"):
            r = http.get(path)
            assert r.headers["content-type"].startswith("text/html"), path
            assert "frame-ancestors 'none'" in r.headers["content-security-policy"], path
            assert r.headers["x-frame-options"] == "DENY", path
            assert r.headers["x-content-type-options"] == "nosniff", path
        assert "no-store" in http.get("/login").headers["cache-control"]
        assert sign_in(http, "carol", "carol-pass").status_code == 303
        page = http.get("/settings/tokens")
        assert page.status_code == 200 and "no-store" in page.headers["cache-control"]
        created = http.post("/settings/tokens", data={"csrf": csrf_of(page.text), "action": "create",
                                                       "name": "shown-once", "role": "read"})
        assert created.status_code == 303 and created.headers["location"] == "/settings/tokens"
        cookie = created.headers["set-cookie"]  # the token, sealed, for the one page that shows it
        assert "Path=/settings/tokens" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert "hf_" not in cookie
        shown = http.get("/settings/tokens")
        assert 'id="new-token"' in shown.text and "no-store" in shown.headers["cache-control"]
        assert 'id="new-token"' not in http.get("/settings/tokens").text  # once
        api = http.get("/api/models/carol/m")  # JSON answers are not touched
        assert "x-frame-options" not in api.headers


# --- throttling -------------------------------------------------------------------------------


def test_failed_sign_ins_are_throttled_per_account(hub):
    for attempt in range(PER_ACCOUNT):  # from a new IP each time: the account's own limit holds
        with client(hub, f"10.1.0.{attempt}") as http:
            assert sign_in(http, "erin", "wrong").status_code == 401
    with client(hub, "10.1.1.1") as http:
        r = sign_in(http, "erin", "erin-pass")  # even the right password waits: no more guesses
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) > 0
        assert "Too many failed sign-ins" in r.text
        assert http.cookies.get("aicommons_session") is None
    # Tokens keep working for the account under attack.
    assert HfApi(endpoint=hub.url, token=TOKEN).whoami()["name"] == "carol"
    # The refused passwords are in the audit log, with the name tried; the throttled one is not.
    events = [line for line in cli(hub, "audit", "--target", "erin").stdout.splitlines() if "sign-in failed" in line]
    assert len(events) == PER_ACCOUNT


def test_failed_sign_ins_are_throttled_per_ip_for_unknown_names_too(hub):
    with client(hub, "10.2.0.1") as http:
        for n in range(PER_IP):
            assert sign_in(http, f"nobody-{n}", "guess").status_code == 401
        r = sign_in(http, "frank", "frank-pass")
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    with client(hub, "10.2.0.2") as other:  # another IP is not affected
        assert sign_in(other, "frank", "frank-pass").status_code == 303


def test_http_basic_on_git_reaches_the_limiter(hub):
    path = "/carol/m.git/info/refs?service=git-upload-pack"
    headers = {"X-Forwarded-For": "10.3.0.1"}
    with httpx.Client(base_url=hub.url, timeout=30, headers=headers) as http:
        assert http.get(path, auth=("carol", TOKEN)).status_code == 200  # a token as password: fine
        assert http.get(path, auth=("carol", "carol-pass")).status_code == 200
        statuses = [http.get(path, auth=("carol", f"wrong-{n}")).status_code for n in range(PER_ACCOUNT)]
        assert statuses == [401] * PER_ACCOUNT
        r = http.get(path, auth=("carol", "carol-pass"))
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
        assert r.headers["x-error-code"] == "TooManyRequests"
        assert http.get(path, auth=("carol", TOKEN)).status_code == 200  # tokens still work
        # The API's Basic auth is the same door.
        r = http.get("/api/whoami-v2", auth=("carol", "carol-pass"))
        assert r.status_code == 429


def test_real_git_client_is_throttled(hub, tmp_path):
    HfApi(endpoint=hub.url, token=TOKEN).create_repo("carol/private", private=True)
    url = hub.url.replace("http://", "http://zed:wrong@") + "/carol/private.git"
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(tmp_path)}
    outputs = []
    for _ in range(PER_ACCOUNT + 1):
        done = subprocess.run(["git", "ls-remote", url], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode != 0
        outputs.append(done.stderr)
    assert "429" in outputs[-1] or "Too Many" in outputs[-1], outputs[-1]


# --- password hashes --------------------------------------------------------------------------


def test_a_legacy_hash_is_upgraded_to_argon2id_at_sign_in(hub):
    import sqlite3

    from aicommons.hub.passwords import legacy_scrypt_hash

    with sqlite3.connect(hub.data_dir / "hub.db") as db:
        db.execute("update accounts set password_hash=? where name='frank'", (legacy_scrypt_hash("old-pass"),))
    with client(hub, "10.4.0.1") as http:
        assert sign_in(http, "frank", "old-pass").status_code == 303
    with sqlite3.connect(hub.data_dir / "hub.db") as db:
        stored = db.execute("select password_hash from accounts where name='frank'").fetchone()[0]
    assert stored.startswith("$argon2id$v=19$m=") and ",t=" in stored and ",p=" in stored
    with client(hub, "10.4.0.2") as http:  # and the upgraded hash still signs in
        assert sign_in(http, "frank", "old-pass").status_code == 303


def test_new_passwords_are_argon2id(hub):
    import sqlite3

    with sqlite3.connect(hub.data_dir / "hub.db") as db:
        stored = db.execute("select password_hash from accounts where name='carol'").fetchone()[0]
    assert stored.startswith("$argon2id$")
