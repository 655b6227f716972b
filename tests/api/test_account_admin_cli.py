"""``aicommons user suspend|unsuspend|delete`` against a live server (another process, as in
production): sessions end at once; tokens stop within the documented token-cache bound."""

from __future__ import annotations

import re
import time

import httpx

from tests.conftest import auth, unique_name

PASSWORD = "a long enough passphrase"
TOKEN_CACHE_SECONDS = 5  # AICOMMONS_TOKEN_CACHE_SECONDS' default, which the live hub runs with


def _user(live_hub) -> tuple[str, str]:
    name = unique_name("u").replace("-", "")
    live_hub.cli("user", "create", name, "--password", PASSWORD, "--email", f"{name}@example.org")
    token = live_hub.cli("token", "create", name).stdout.strip().splitlines()[-1]
    return name, token


def _web_session(url: str, name: str) -> httpx.Client:
    browser = httpx.Client(base_url=url, timeout=30, headers={"Origin": url})
    form = browser.get("/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    signed_in = browser.post("/login", data={"username": name, "password": PASSWORD, "next": "/", "csrf": csrf})
    assert signed_in.status_code == 303
    return browser


def test_suspend_stops_sessions_at_once_and_tokens_within_the_cache_bound(live_hub, http):
    name, token = _user(live_hub)
    browser = _web_session(live_hub.url, name)  # opened (signed in) already: closed below, not re-entered
    try:
        assert browser.get("/settings/tokens").status_code == 200
        assert http.get("/api/whoami-v2", headers=auth(token)).json()["name"] == name  # now in the server's cache

        live_hub.cli("user", "suspend", name)
        suspended = time.monotonic()
        assert browser.get("/settings/tokens").status_code == 303  # back to the sign-in page, at once
        while (answer := http.get("/api/whoami-v2", headers=auth(token))).status_code == 200:
            assert time.monotonic() - suspended < TOKEN_CACHE_SECONDS + 1, "a suspended token outlived the bound"
            time.sleep(0.1)
        assert answer.status_code == 401 and "suspended" in answer.text
    finally:
        browser.close()
    basic = http.get("/api/whoami-v2", auth=(name, PASSWORD))
    assert basic.status_code == 401
    assert _login_status(live_hub.url, name) == 401  # the web form refuses too

    live_hub.cli("user", "unsuspend", name)
    assert http.get("/api/whoami-v2", headers=auth(token)).json()["name"] == name  # refusals are never cached
    events = live_hub.cli("audit", "--target", name).stdout
    assert "cli user suspend" in events and "cli user unsuspend" in events


def _login_status(url: str, name: str) -> int:
    with httpx.Client(base_url=url, timeout=30, headers={"Origin": url}) as browser:
        csrf = re.search(r'name="csrf" value="([^"]+)"', browser.get("/login").text).group(1)
        return browser.post("/login", data={"username": name, "password": PASSWORD, "csrf": csrf}).status_code


def test_delete_refuses_while_repos_are_undecided_then_transfers_and_keeps_comments(live_hub, http, repo_id):
    name, token = _user(live_hub)
    org = unique_name("lab").replace("-", "")
    live_hub.cli("org", "create", org, "--member", name)
    repo = f"{name}/{unique_name('model')}"
    assert http.post("/api/repos/create", headers=auth(token), json={"name": repo, "private": True}).status_code == 200
    opened = http.post(f"/api/models/{repo_id}/discussions", headers=auth(token),
                       json={"title": "from a leaving user", "description": "my words stay"})
    assert opened.status_code == 200
    num = opened.json()["num"]

    refused = live_hub.cli("user", "delete", name, check=False)
    assert refused.returncode == 1 and repo in refused.stderr and org in refused.stderr
    assert http.get("/api/whoami-v2", headers=auth(token)).status_code == 200

    done = live_hub.cli("user", "delete", name, "--transfer-repos-to", org)
    assert "deleted" in done.stdout
    time.sleep(TOKEN_CACHE_SECONDS + 0.5)
    assert http.get("/api/whoami-v2", headers=auth(token)).status_code == 401
    moved = repo.replace(name, org, 1)
    owner_token = live_hub.tokens["alice"]
    assert http.get(f"/api/models/{moved}", headers=auth(owner_token)).status_code in (401, 404)  # still private
    admin = f"hf_{unique_name('admin')}_token_value"
    admin_name = unique_name("adm").replace("-", "")
    live_hub.cli("user", "create", admin_name, "--admin")
    live_hub.cli("token", "create", admin_name, "--value", admin)
    assert http.get(f"/api/models/{moved}", headers=auth(admin)).json()["private"] is True
    thread = http.get(f"/api/models/{repo_id}/discussions/{num}").json()
    assert thread["author"]["name"] == "deleted user"
    assert "my words stay" in str(thread["events"])
    assert live_hub.cli("audit", "--target", name).stdout.count("cli user delete --transfer-repos-to") == 1
    taken = live_hub.cli("user", "create", name.upper(), check=False)  # the name is retired, in any case
    assert taken.returncode == 1 and "deleted or renamed" in taken.stderr


def test_wrong_values_fail_in_words_not_tracebacks(live_hub):
    """A mistyped flag value is refused by name with exit status 2, as argparse refuses unknown flags."""
    cases = [(("audit", "--since", "yesterday"), "invalid time 'yesterday'"),
             (("audit", "--limit", "0"), "invalid number '0'"),
             (("token", "create", "alice", "--expires-days", "0"), "invalid number '0'"),  # was: never expires
             (("gc", "--grace-hours", "-5"), "invalid number of hours '-5'"),  # was: a dry run "younger than -5 h"
             (("storage", "expire-uploads", "--hours", "-1"), "invalid number of hours '-1'"),
             (("scan", "/nonexistent/weights.bin"), "not a file: /nonexistent/weights.bin")]
    for args, words in cases:
        proc = live_hub.cli(*args, check=False)
        assert proc.returncode == 2 and words in proc.stderr and "Traceback" not in proc.stderr, (args, proc.stderr)


def test_audit_since_honours_an_offset_and_a_closed_pipe(live_hub):
    """`--since` with an offset means that instant (not its wall-clock digits read as UTC), and
    `aicommons audit | head` ends quietly."""
    import subprocess
    import sys
    from datetime import UTC, datetime, timedelta, timezone

    name = unique_name("u").replace("-", "")
    live_hub.cli("user", "create", name)
    paris = timezone(timedelta(hours=1))
    before = (datetime.now(UTC) - timedelta(minutes=2)).astimezone(paris).isoformat(timespec="seconds")
    after = (datetime.now(UTC) + timedelta(minutes=2)).astimezone(paris).isoformat(timespec="seconds")
    assert "cli user create" in live_hub.cli("audit", "--limit", "1000", "--since", before).stdout
    assert "cli user create" not in live_hub.cli("audit", "--limit", "1000", "--since", after).stdout
    reader_gone = subprocess.Popen([sys.executable, "-m", "aicommons.cli.main", "audit", "--limit", "1000"],
                                   env=live_hub.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    reader_gone.stdout.close()  # as `| head` does once it has its lines
    _, err = reader_gone.communicate(timeout=60)
    assert reader_gone.returncode == 0 and b"Traceback" not in err, err.decode()


def test_an_unreachable_database_and_a_zero_worker_count_are_said_in_words(live_hub, tmp_path):
    import subprocess
    import sys

    from tests.backends import free_port

    env = {**live_hub.env, "AICOMMONS_DATA_DIR": str(tmp_path),
           "AICOMMONS_DATABASE_URL": f"postgresql://hub:hunter2-secret@127.0.0.1:{free_port()}/hub",
           "AICOMMONS_SECRET_KEY": "k" * 40}
    proc = subprocess.run([sys.executable, "-m", "aicommons.cli.main", "user", "list"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "the database could not be reached" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and "hunter2-secret" not in proc.stderr, proc.stderr
    for workers in ("0", "-3"):
        proc = live_hub.cli("worker", "--workers", workers, check=False)
        assert proc.returncode == 2 and f"invalid number '{workers}'" in proc.stderr, proc.stderr
