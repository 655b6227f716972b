"""Signed session cookies and CSRF tokens for the web UI.

The cookie holds ``<user id>.<expiry>.<hmac>``; it authenticates web pages only (the API ignores
cookies, so no cross-site request can act through the API with a browser's session). Every form
carries a CSRF token bound to the session.
"""

from __future__ import annotations

import hashlib
import hmac
import time

COOKIE = "aicommons_session"
LIFETIME = 14 * 24 * 3600


def _mac(secret: bytes, message: str) -> str:
    return hmac.new(secret, message.encode(), hashlib.sha256).hexdigest()


def make_cookie(secret: bytes, user_id: int, now: float | None = None) -> str:
    expires = int((now or time.time()) + LIFETIME)
    payload = f"{user_id}.{expires}"
    return f"{payload}.{_mac(secret, 'session:' + payload)}"


def read_cookie(secret: bytes, value: str | None, now: float | None = None) -> int | None:
    """The user id of a valid, unexpired cookie, else None."""
    if not value or value.count(".") != 2:
        return None
    user_id, expires, mac = value.split(".")
    if not hmac.compare_digest(mac, _mac(secret, f"session:{user_id}.{expires}")):
        return None
    if not expires.isdigit() or int(expires) < (now or time.time()) or not user_id.isdigit():
        return None
    return int(user_id)


def csrf_token(secret: bytes, cookie: str | None) -> str:
    return _mac(secret, "csrf:" + (cookie or "anonymous"))


def check_csrf(secret: bytes, cookie: str | None, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(csrf_token(secret, cookie), token)
