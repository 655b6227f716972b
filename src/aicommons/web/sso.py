"""Single sign-on pages: ``/login/sso`` sends the browser to the identity provider,
``/login/sso/callback`` signs the user in (hub/sso.py). The flow's state, nonce and PKCE verifier
wait in a short-lived cookie signed with the hub's key, bound to this browser."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from aicommons.errors import HubError, NotFound
from aicommons.web import session
from aicommons.web.account import _safe_next, new_visitor
from aicommons.web.context import hub_of, page_handler
from aicommons.web.render import page

COOKIE = "aicommons_sso"


def _sign(key: bytes, data: dict) -> str:
    body = base64.urlsafe_b64encode(json.dumps(data).encode()).decode()
    return body + "." + hmac.new(key, f"sso:{body}".encode(), hashlib.sha256).hexdigest()


def _unsign(key: bytes, value: str | None) -> dict | None:
    body, _, mac = (value or "").partition(".")
    if not body or not hmac.compare_digest(hmac.new(key, f"sso:{body}".encode(), hashlib.sha256).hexdigest(), mac):
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(body))
    except ValueError:
        return None


def _callback_url(request: Request) -> str:
    base = hub_of(request).settings.public_url or f"{request.url.scheme}://{request.headers.get('host')}"
    return f"{base}/login/sso/callback"


@page_handler
def start(request: Request) -> Response:
    hub = hub_of(request)
    if not hub.sso.enabled:
        raise NotFound("Single sign-on is not set up on this hub")
    try:
        url, kept = hub.sso.start(_callback_url(request))
    except HubError as exc:
        return page(request, "login.html", status=exc.status, error=exc.message, next="/")
    kept["next"] = _safe_next(request.query_params.get("next"))
    response = RedirectResponse(url, status_code=303)
    session.set_cookie(response, request, COOKIE, _sign(hub.web_key, kept), 600)
    return response


@page_handler
def callback(request: Request) -> Response:
    hub = hub_of(request)
    if not hub.sso.enabled:
        raise NotFound("Single sign-on is not set up on this hub")
    kept = _unsign(hub.web_key, request.cookies.get(COOKIE))
    try:
        account = hub.sso.finish(kept or {}, dict(request.query_params), _callback_url(request))
    except HubError as exc:
        refused = page(request, "login.html", status=exc.status, error=exc.message, next="/")
        refused.delete_cookie(COOKIE, path="/")
        return refused
    hub.sessions.end(request.state.web.session_id)  # never keep a session id fixed before sign-in
    response = RedirectResponse(_safe_next((kept or {}).get("next")), status_code=303)
    response.delete_cookie(COOKIE, path="/")
    session.set_cookie(response, request, session.COOKIE, hub.sessions.start(account),
                       hub.settings.session_lifetime_seconds)
    new_visitor(request)
    return response
