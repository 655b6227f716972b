"""ASGI middlewares: raw-path routing, request ids, and the caller's identity."""

from __future__ import annotations

import base64
import itertools
import os

import anyio
from starlette.datastructures import Headers, MutableHeaders

from aicommons.api.rate_limits import resource_of
from aicommons.errors import HubError, Unauthorized
from aicommons.hub.access import anonymous
from aicommons.hub.audit import is_audited


class RawPathMiddleware:
    """Route on the raw path: revisions and folders arrive percent-encoded in one segment
    (``refs%2Fpr%2F1``), which the decoded ``path`` would split. Handlers unquote parameters."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope.get("raw_path"):
            raw = scope["raw_path"].split(b"?", 1)[0].decode("latin-1")
            scope = dict(scope, path=raw)
        await self.app(scope, receive, send)


# Request ids: a random per-process prefix and a counter (unique across replicas, and unlike uuid4
# no system call on every request).
_ID_PREFIX = os.urandom(8).hex()
_id_counter = itertools.count(1)


class RequestIdMiddleware:
    """Every response carries ``X-Request-Id`` (clients quote it in error messages)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        incoming = Headers(scope=scope).get("x-amzn-trace-id") or ""
        if 0 < len(incoming) <= 128 and incoming.isprintable():
            request_id = incoming
        else:
            request_id = f"{_ID_PREFIX}{next(_id_counter):016x}"

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Request-Id"] = request_id
            await send(message)

        scope.setdefault("state", {})["request_id"] = request_id
        await self.app(scope, receive, send_with_id)


def credentials(headers: Headers) -> tuple[str, str | None, str] | None:
    """('bearer', None, token) or ('basic', user, secret) from the Authorization header."""
    value = headers.get("authorization")
    if not value:
        return None
    scheme, _, rest = value.partition(" ")
    scheme = scheme.lower()
    rest = rest.strip()
    if scheme == "bearer" and rest:
        return "bearer", None, rest
    if scheme == "basic" and rest:
        try:
            user, _, secret = base64.b64decode(rest).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise Unauthorized("Invalid credentials in Authorization header") from None
        return "basic", user, secret
    raise Unauthorized("Invalid credentials in Authorization header")


class AuthMiddleware:
    """Puts ``request.state.principal`` on every request; a bad token is refused with 401.

    Git clients send ``user:TOKEN`` (or ``user:password``) as HTTP basic auth, as with the Hub.
    """

    def __init__(self, app, hub):
        self.app = app
        self.hub = hub

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        try:
            if any(name == b"authorization" for name, _ in scope["headers"]):
                # A token seen moments ago is known without I/O; anything else is a DB lookup.
                principal = self._cached_principal(scope) or await anyio.to_thread.run_sync(self._principal, scope)
            else:  # no credentials, no I/O: spare the thread hop
                principal = self._principal(scope)
        except HubError as exc:
            from aicommons.api.errors import error_response

            headers = {"WWW-Authenticate": 'Basic realm="AI Commons"'} if b"/info/" in scope.get("raw_path", b"") else {}
            exc.headers.update(headers)
            return await error_response(exc)(scope, receive, send)
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)

    def _cached_principal(self, scope):
        creds = credentials(Headers(scope=scope))
        if creds is None or scope["path"].startswith("/xet-cas/"):
            return None
        return self.hub.accounts.cached_principal(creds[2])  # basic auth: the secret may be a token

    def _principal(self, scope):
        creds = credentials(Headers(scope=scope))
        client = scope.get("client")
        if creds is None or scope["path"].startswith("/xet-cas/"):  # the CAS checks its own Xet token (api/xet.py)
            return anonymous(client[0] if client else None)
        kind, user, secret = creds
        if kind == "bearer":
            return self.hub.accounts.principal_for_token(secret)
        try:  # basic auth carries a token (as with the Hub) or, failing that, a password
            return self.hub.accounts.principal_for_token(secret)
        except Unauthorized:
            return self.hub.accounts.principal_for_password(user, secret)


class RateLimitMiddleware:
    """Counts each request against its caller's budget (``api/rate_limits.py``); runs after
    ``AuthMiddleware``, which names the caller. Answers within budget carry ``RateLimit`` headers."""

    def __init__(self, app, limiter):
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope, receive, send):
        resource = resource_of(scope["path"]) if scope["type"] == "http" else None
        if resource is None:
            return await self.app(scope, receive, send)
        try:
            headers = self.limiter.take(resource, scope["state"]["principal"])
        except HubError as exc:
            from aicommons.api.errors import error_response

            return await error_response(exc)(scope, receive, send)
        if not headers:
            return await self.app(scope, receive, send)
        raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *raw]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class AuditMiddleware:
    """Writes an audit event for each request that may change something (``hub/audit.py``), once
    its outcome is known and before the client hears it."""

    def __init__(self, app, hub):
        self.app = app
        self.hub = hub

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not is_audited(scope["method"], scope["path"]):
            return await self.app(scope, receive, send)
        state = scope.setdefault("state", {})  # AuthMiddleware, inside, puts the caller there
        client = scope.get("client")

        async def send_after_recording(message):
            # 429s are not recorded: a flood of refused requests must not become a flood of writes.
            if message["type"] == "http.response.start" and message["status"] != 429:
                await anyio.to_thread.run_sync(
                    self.hub.audit.record_request, state.get("principal"), client[0] if client else None,
                    scope["method"], scope["path"], message["status"], state.get("request_id"))
            await send(message)

        await self.app(scope, receive, send_after_recording)
