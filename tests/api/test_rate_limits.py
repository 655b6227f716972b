"""Requests-per-minute limits on the hub API: per caller, per resource, with the headers the real
client reads; and the limiter's arithmetic on a fake clock."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import httpx
import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError

from aicommons.api.rate_limits import RequestLimiter, resource_of
from aicommons.errors import TooManyRequests
from aicommons.hub.access import Principal, anonymous
from tests.conftest import start_hub, stop_hub
from tests.fake_clock import FakeClock

TOKEN = "hf_erin_token_000000000000000"
ANON_API = 30  # a token every 2 s: the client's retry after a 429 waits about 3 s


@pytest.fixture(scope="module")
def limited_hub(tmp_path_factory):
    data = tmp_path_factory.mktemp("limited") / "data"
    data.mkdir()
    env = {**os.environ, "AICOMMONS_DATA_DIR": str(data)}
    for args in (["user", "create", "erin"], ["token", "create", "erin", "--value", TOKEN]):
        subprocess.run([sys.executable, "-m", "aicommons.cli.main", *args], env=env, check=True, capture_output=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    hub = start_hub(data, port, AICOMMONS_ANON_API_REQUESTS_PER_MINUTE=str(ANON_API),
                    AICOMMONS_API_REQUESTS_PER_MINUTE="1000", AICOMMONS_ANON_RESOLVER_REQUESTS_PER_MINUTE="0")
    HfApi(endpoint=hub.url, token=TOKEN).create_repo("erin/m")
    HfApi(endpoint=hub.url, token=TOKEN).upload_file(path_or_fileobj=b"{}", path_in_repo="config.json",
                                                    repo_id="erin/m")
    try:
        yield hub
    finally:
        stop_hub(hub)


def drain(http: httpx.Client) -> httpx.Response:
    """Spend the anonymous API budget; return the first refused answer."""
    for _ in range(ANON_API + 5):
        r = http.get("/api/models/erin/m")
        if r.status_code == 429:
            return r
        assert r.status_code == 200 and r.headers["RateLimit-Policy"] == f'"token bucket";"api";q={ANON_API};w=60'
    raise AssertionError("the anonymous budget was never exhausted")


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



def test_budget_refills_per_caller_and_resource():
    clock = FakeClock(1000.0)
    limiter = RequestLimiter({("api", False): 60, ("api", True): 0, ("resolvers", False): 2,
                              ("resolvers", True): 2}, clock=clock)
    alice = Principal(key="token:1", account=object())
    ip1, ip2 = anonymous("10.0.0.1"), anonymous("10.0.0.2")
    for _ in range(60):
        limiter.take("api", ip1)
    with pytest.raises(TooManyRequests) as refused:
        limiter.take("api", ip1)
    assert refused.value.headers["Retry-After"] == "1"  # one request a second comes back
    limiter.take("api", ip2)  # another caller, its own budget
    limiter.take("resolvers", ip1)  # another resource
    assert limiter.take("api", alice) == {}  # 0: unlimited, no headers
    clock.now += 1.0
    assert limiter.take("api", ip1)["RateLimit"] == '"api";r=0;t=0'


def test_idle_callers_are_forgotten_first():
    clock = FakeClock(1000.0)
    limiter = RequestLimiter({("api", False): 1}, max_callers=2, clock=clock)
    a, b, c = anonymous("a"), anonymous("b"), anonymous("c")
    limiter.take("api", a)
    limiter.take("api", b)
    limiter.take("api", c)  # a, the least recently seen, is dropped: memory stays bounded
    limiter.take("api", a)  # a fresh, full bucket (as a's would be after a minute)
    with pytest.raises(TooManyRequests):
        limiter.take("api", c)


def test_callers_idle_past_a_refill_are_pruned():
    clock = FakeClock(1000.0)
    limiter = RequestLimiter({("api", False): 1}, clock=clock)
    for name in ("a", "b", "c"):
        limiter.take("api", anonymous(name))
    assert len(limiter._buckets) == 3
    clock.now += 121  # longer than a bucket takes to refill: nothing is lost by forgetting them
    limiter.take("api", anonymous("d"))
    assert list(limiter._buckets) == [("api", anonymous("d").key)]
    with pytest.raises(TooManyRequests):  # a caller seen just now keeps its (empty) bucket
        limiter.take("api", anonymous("d"))


@pytest.mark.parametrize("path, resource", [
    ("/api/models/a/b", "api"), ("/a/b/resolve/main/x.bin", "resolvers"), ("/datasets/a/b/resolve/main/x", "resolvers"),
    ("/a/b.git/info/refs", "api"), ("/", "api"), ("/api/health", None), ("/v1/chat/completions", None),
    ("/models/a/b", None), ("/lfs-transfer/1/abc/3", None), ("/xet-cas/v1/xorbs/default/abc", None),
])
def test_which_budget_a_path_spends(path, resource):
    assert resource_of(path) == resource
