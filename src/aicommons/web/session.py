"""Web UI cookies, CSRF tokens and the Origin check.

Two cookies, both ``HttpOnly`` and ``SameSite=Lax`` (``Secure`` over HTTPS):

- ``aicommons_session``: the random id of a server-side session (``hub/sessions.py``); it
  authenticates web pages only (the API ignores cookies, so no cross-site request can act through
  the API with a browser's session). The request rate limiter reads it too, only to count a
  signed-in browser against its user's budget (``api/middleware.py``).
- ``aicommons_visitor``: a random id given to every visitor, signed in or not, on their first page.
  Each form carries ``csrf = HMAC(key, visitor id)``, with a key derived from the hub's secret for
  this purpose only; a POST is accepted only with the token of the visitor's own cookie, so another
  site can neither submit a form for a signed-in user nor sign a visitor in to an account of its
  choosing (login CSRF). A new visitor id is issued at sign-in and sign-out.

Every form POST must also come from our own origin: ``Origin`` (or, when a browser sends none,
``Referer``) must name this hub; ``Origin: null`` and foreign origins are refused.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from aicommons.http_common import SESSION_COOKIE

COOKIE = SESSION_COOKIE
VISITOR_COOKIE = "aicommons_visitor"
_MAX_COOKIE = 128


def new_visitor_id() -> str:
    return secrets.token_urlsafe(32)


def visitor_id(request: Request) -> str | None:
    value = request.cookies.get(VISITOR_COOKIE)
    return value if value and len(value) <= _MAX_COOKIE else None


def csrf_token(key: bytes, visitor: str) -> str:
    return hmac.new(key, f"csrf:{visitor}".encode(), hashlib.sha256).hexdigest()


def check_csrf(key: bytes, visitor: str | None, token: str | None) -> bool:
    return bool(visitor) and bool(token) and hmac.compare_digest(csrf_token(key, visitor), token)


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite="lax",
                        secure=request.url.scheme == "https")


def _netloc(url: str) -> str | None:
    """``host[:port]`` of an absolute URL, lower-cased, without the scheme's default port."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    default = 443 if parts.scheme == "https" else 80
    return host if port in (None, default) else f"{host}:{port}"


def same_origin(request: Request, public_url: str = "") -> bool:
    """Whether a state-changing request comes from a page of this hub (``Origin``, else ``Referer``).

    Compared by host and port (a TLS-terminating proxy may hand us ``http`` while the browser says
    ``https``); ``PUBLIC_URL``'s host is accepted too. A request carrying neither header (some
    privacy settings strip both) relies on its CSRF token alone.
    """
    source = request.headers.get("origin")
    if source is None:
        source = request.headers.get("referer")
        if not source:
            return True
    if source == "null":
        return False
    theirs = _netloc(source)
    if theirs is None:
        return False
    ours = {_netloc(f"{request.url.scheme}://{request.headers.get('host', '')}")}
    if public_url:
        ours.add(_netloc(public_url))
    return theirs in ours
