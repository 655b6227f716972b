"""Requests-per-minute limits on the hub API: per caller, per resource, with the headers the real
client reads; a signed-in browser spends its user's budget, not its address's; and the limiter's
arithmetic on a fake clock."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from types import SimpleNamespace

import httpx
import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError

from aicommons.api.rate_limits import RequestLimiter, budget_of, resource_of
from aicommons.errors import TooManyRequests
from aicommons.hub.access import Principal, anonymous
from tests.conftest import start_hub, stop_hub
from tests.fake_clock import FakeClock

TOKEN = "hf_erin_token_000000000000000"
ANON_API = 30  # a token every 2 s: the client's retry after a 429 waits about 3 s
SIGNED_IN_API = 60  # per user: every token and web session of one user together
# Users with a password (web sessions) and tokens; one per test, so that no test spends another's budget.
USERS = {"hana": ["hf_hana_token_00000000000000000"], "ivan": ["hf_ivan_token_00000000000000000",
                                                              "hf_ivan_second_token_0000000000"],
         "judy": [], "kate": ["hf_kate_token_00000000000000000"]}


@pytest.fixture(scope="module")
def limited_hub(tmp_path_factory):
    data = tmp_path_factory.mktemp("limited") / "data"
    data.mkdir()
    env = {**os.environ, "AICOMMONS_DATA_DIR": str(data)}
    commands = [["user", "create", "erin"], ["token", "create", "erin", "--value", TOKEN]]
    for user, tokens in USERS.items():
        commands += [["user", "create", user, "--password", f"{user}-pass"],
                     *(["token", "create", user, "--value", token, "--name", token[-8:]] for token in tokens)]
    for args in commands:
        subprocess.run([sys.executable, "-m", "aicommons.cli.main", *args], env=env, check=True, capture_output=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # Loopback is a trusted proxy: each test is a client address of its own (X-Forwarded-For).
    hub = start_hub(data, port, AICOMMONS_ANON_API_REQUESTS_PER_MINUTE=str(ANON_API),
                    AICOMMONS_API_REQUESTS_PER_MINUTE=str(SIGNED_IN_API),
                    AICOMMONS_ANON_RESOLVER_REQUESTS_PER_MINUTE="0", AICOMMONS_TRUSTED_PROXIES="127.0.0.1")
    HfApi(endpoint=hub.url, token=TOKEN).create_repo("erin/m")
    HfApi(endpoint=hub.url, token=TOKEN).upload_file(path_or_fileobj=b"{}", path_in_repo="config.json",
                                                    repo_id="erin/m")
    try:
        yield hub
    finally:
        stop_hub(hub)


def policy(limit: int) -> str:
    return f'"token bucket";"api";q={limit};w=60'


def drain(http: httpx.Client, limit: int = ANON_API, path: str = "/api/models/erin/m") -> httpx.Response:
    """Spend an API budget of ``limit`` a minute (the anonymous one by default); return the first
    refused answer. (It refills while this runs: on a slow box it takes more than ``limit``.)"""
    for _ in range(2 * limit):
        r = http.get(path)
        if r.status_code == 429:
            return r
        assert r.status_code == 200 and r.headers["RateLimit-Policy"] == policy(limit)
    raise AssertionError("the budget was never exhausted")


def left(r: httpx.Response) -> int:
    """What the answer's budget has left (``RateLimit: "api";r=N;t=S``)."""
    return int(re.search(r";r=(\d+);", r.headers["RateLimit"]).group(1))


def client(hub, ip: str, **headers: str) -> httpx.Client:
    """A client at address ``ip`` (X-Forwarded-For, trusted from loopback as behind a proxy)."""
    return httpx.Client(base_url=hub.url, timeout=30, headers={"X-Forwarded-For": ip, **headers})


def get(hub, ip: str, path: str, **headers: str) -> httpx.Response:
    with client(hub, ip, **headers) as http:
        return http.get(path)


def sign_in(http: httpx.Client, user: str) -> None:
    """Through the login form, as a browser: the client keeps the session cookie."""
    csrf = re.search(r'name="csrf" value="([^"]+)"', http.get("/login").text).group(1)
    r = http.post("/login", data={"csrf": csrf, "username": user, "password": f"{user}-pass", "next": "/"})
    assert r.status_code == 303 and http.cookies.get("aicommons_session"), r.text


def test_anonymous_callers_are_limited_with_the_headers_the_client_reads(limited_hub):
    with httpx.Client(base_url=limited_hub.url) as http:
        refused = drain(http)
        assert refused.headers["X-Error-Code"] == "TooManyRequests"
        assert int(refused.headers["Retry-After"]) >= 1
        assert refused.headers["RateLimit"].startswith('"api";r=0;t=')
        # The same caller, other resources: downloads have their own budget (unlimited here),
        # health checks and signed-in callers are not touched.
        assert http.get("/erin/m/resolve/main/config.json").status_code == 200
        assert http.get("/api/health").status_code == 200
        signed_in = http.get("/api/models/erin/m", headers={"Authorization": f"Bearer {TOKEN}"})
        assert signed_in.status_code == 200 and signed_in.headers["RateLimit"].startswith('"api";r=')

    # huggingface_hub names the limit in its error...
    with pytest.raises(HfHubHTTPError) as error:
        HfApi(endpoint=limited_hub.url).model_info("erin/m")
    assert error.value.response.status_code == 429
    assert "rate limit" in str(error.value)
    # ...and its retrying calls wait for the bucket (t seconds) and go through.
    assert [m.id for m in HfApi(endpoint=limited_hub.url).list_models(author="erin")] == ["erin/m"]


def test_a_signed_in_browser_spends_its_users_budget_not_its_addresses(limited_hub):
    """Many signed-in users behind one NAT do not share the address's anonymous budget, and each
    gets the signed-in limit."""
    with client(limited_hub, "10.7.0.1") as browser, client(limited_hub, "10.7.0.1") as anonymous_visitor:
        sign_in(browser, "hana")
        drain(anonymous_visitor)  # the address's anonymous budget is spent...
        for path in ("/erin/m", "/settings/tokens", "/api/models/erin/m"):  # ...its signed-in browser goes on
            r = browser.get(path)
            assert r.status_code == 200 and r.headers["RateLimit-Policy"] == policy(SIGNED_IN_API), (path, r.text)


def test_a_users_tokens_and_web_sessions_share_one_budget(limited_hub):
    first, second = USERS["ivan"]
    with client(limited_hub, "10.7.0.2") as browser:
        sign_in(browser, "ivan")
        with client(limited_hub, "10.7.0.3", Authorization=f"Bearer {first}") as api:
            refused = drain(api, SIGNED_IN_API)  # spent with one token, from another address
        assert refused.headers["RateLimit-Policy"] == policy(SIGNED_IN_API)
        # The same user's web session and other token are out too (429, or the few requests that
        # came back in the seconds since: not a budget of their own); the browser's address still
        # has its own budget.
        for r in (browser.get("/erin/m"),
                  get(limited_hub, "10.7.0.4", "/api/models/erin/m", Authorization=f"Bearer {second}")):
            assert r.status_code in (200, 429) and left(r) < SIGNED_IN_API // 2, r.headers
            assert r.headers["RateLimit-Policy"] == policy(SIGNED_IN_API)
        assert get(limited_hub, "10.7.0.2", "/erin/m").headers["RateLimit-Policy"] == policy(ANON_API)
    # And the other way round: pages spend the budget a token then finds spent.
    with client(limited_hub, "10.7.0.5") as browser:
        sign_in(browser, "kate")
        drain(browser, SIGNED_IN_API, path="/erin/m")
        r = get(limited_hub, "10.7.0.6", "/api/models/erin/m", Authorization=f"Bearer {USERS['kate'][0]}")
        assert left(r) < SIGNED_IN_API // 2 and r.headers["RateLimit-Policy"] == policy(SIGNED_IN_API)


@pytest.mark.parametrize("cookie", ["forged", "signed-out"])
def test_a_forged_or_ended_session_cookie_is_anonymous(limited_hub, cookie):
    session = "x" * 43
    if cookie == "signed-out":
        with client(limited_hub, "10.7.1.1") as browser:
            sign_in(browser, "judy")
            session = browser.cookies["aicommons_session"]
            assert browser.get("/erin/m").headers["RateLimit-Policy"] == policy(SIGNED_IN_API)
            csrf = re.search(r'name="csrf" value="([^"]+)"', browser.get("/settings/tokens").text).group(1)
            assert browser.post("/logout", data={"csrf": csrf}).status_code == 303
    # The cookie sent with every request (as a header: a page answer asks the browser to forget it).
    with client(limited_hub, f"10.7.1.{2 if cookie == 'forged' else 3}", Cookie=f"aicommons_session={session}") as kept:
        refused = drain(kept, path="/erin/m")
        assert refused.headers["RateLimit-Policy"] == policy(ANON_API)


def test_budget_refills_per_caller_and_resource():
    clock = FakeClock(1000.0)
    limiter = RequestLimiter({("api", False): 60, ("api", True): 0, ("resolvers", False): 2,
                              ("resolvers", True): 2}, clock=clock)
    ip1, ip2 = "anon:10.0.0.1", "anon:10.0.0.2"
    for _ in range(60):
        limiter.take("api", ip1, False)
    with pytest.raises(TooManyRequests) as refused:
        limiter.take("api", ip1, False)
    assert refused.value.headers["Retry-After"] == "1"  # one request a second comes back
    limiter.take("api", ip2, False)  # another caller, its own budget
    limiter.take("resolvers", ip1, False)  # another resource
    assert limiter.take("api", "user:1", True) == {}  # 0: unlimited, no headers
    clock.now += 1.0
    assert limiter.take("api", ip1, False)["RateLimit"] == '"api";r=0;t=0'


def test_a_users_tokens_spend_one_budget():
    alice, bob = SimpleNamespace(id=1), SimpleNamespace(id=2)
    tokens = [Principal(key="token:1", account=alice), Principal(key="token:2", account=alice)]
    assert {budget_of(p) for p in tokens} == {"user:1"}  # the key of alice's web session too
    assert budget_of(Principal(key="token:3", account=bob)) == "user:2"
    assert budget_of(anonymous("10.0.0.1")) == "anon:10.0.0.1"


def test_idle_callers_are_forgotten_first():
    clock = FakeClock(1000.0)
    limiter = RequestLimiter({("api", False): 1}, max_callers=2, clock=clock)
    limiter.take("api", "a", False)
    limiter.take("api", "b", False)
    limiter.take("api", "c", False)  # a, the least recently seen, is dropped: memory stays bounded
    limiter.take("api", "a", False)  # a fresh, full bucket (as a's would be after a minute)
    with pytest.raises(TooManyRequests):
        limiter.take("api", "c", False)


def test_callers_idle_past_a_refill_are_pruned():
    clock = FakeClock(1000.0)
    limiter = RequestLimiter({("api", False): 1}, clock=clock)
    for name in ("a", "b", "c"):
        limiter.take("api", name, False)
    assert len(limiter._buckets) == 3
    clock.now += 121  # longer than a bucket takes to refill: nothing is lost by forgetting them
    limiter.take("api", "d", False)
    assert list(limiter._buckets) == [("api", "d")]
    with pytest.raises(TooManyRequests):  # a caller seen just now keeps its (empty) bucket
        limiter.take("api", "d", False)


@pytest.mark.parametrize("path, resource", [
    ("/api/models/a/b", "api"), ("/a/b/resolve/main/x.bin", "resolvers"), ("/datasets/a/b/resolve/main/x", "resolvers"),
    ("/a/b.git/info/refs", "api"), ("/", "api"), ("/api/health", None), ("/v1/chat/completions", None),
    ("/models/a/b", None), ("/lfs-transfer/1/abc/3", None), ("/xet-cas/v1/xorbs/default/abc", None),
])
def test_which_budget_a_path_spends(path, resource):
    assert resource_of(path) == resource
