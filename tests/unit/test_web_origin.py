"""The Origin / Referer check of web forms (web/session.py same_origin)."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from aicommons.web.session import same_origin


def request(host: str, scheme: str = "http", **headers: str) -> Request:
    raw = [(b"host", host.encode())] + [(k.replace("_", "-").lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": "POST", "scheme": scheme, "path": "/x", "headers": raw,
                    "server": (host.split(":")[0], 80), "query_string": b""})


@pytest.mark.parametrize("host, headers, public_url, ok", [
    ("hub.example", {"origin": "http://hub.example"}, "", True),
    ("hub.example", {"origin": "https://hub.example"}, "", True),  # TLS ended at a proxy
    ("hub.example:8000", {"origin": "http://hub.example:8000"}, "", True),
    ("hub.example:8000", {"origin": "http://hub.example:8001"}, "", False),
    ("hub.example", {"origin": "https://hub.example:443"}, "", True),
    ("HUB.example", {"origin": "http://hub.EXAMPLE"}, "", True),
    ("hub.example", {"origin": "http://evil.example"}, "", False),
    ("hub.example", {"origin": "http://hub.example.evil.example"}, "", False),
    ("hub.example", {"origin": "null"}, "", False),
    ("hub.example", {"origin": "file://"}, "", False),
    ("hub.example", {"origin": "http://hub.example:99999"}, "", False),  # not a port: refused, not a 500
    ("hub.example", {"referer": "http://hub.example/settings/tokens"}, "", True),
    ("hub.example", {"referer": "http://evil.example/hub.example"}, "", False),
    ("hub.example", {"origin": "http://evil.example", "referer": "http://hub.example/"}, "", False),
    ("hub.example", {}, "", True),  # neither header: the CSRF token alone decides
    ("10.0.0.5:8000", {"origin": "https://hub.example"}, "https://hub.example/", True),  # PUBLIC_URL
    ("10.0.0.5:8000", {"origin": "https://other.example"}, "https://hub.example", False),
    ("[::1]:8000", {"origin": "http://[::1]:8000"}, "", True),
])
def test_same_origin(host, headers, public_url, ok):
    assert same_origin(request(host, **headers), public_url) is ok
