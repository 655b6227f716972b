"""ASGI middlewares: raw-path routing, request ids, and the caller's identity."""

from __future__ import annotations

import base64
import itertools
import logging
import os
import re

import anyio
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import cookie_parser

from aicommons.api.rate_limits import budget_of, resource_of
from aicommons.errors import HubError, Unauthorized
from aicommons.http_common import SESSION_COOKIE
from aicommons.hub.access import anonymous
from aicommons.hub.audit import is_audited

log = logging.getLogger("aicommons.api")


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
# no system call on every request). The audit log's id is always ours: one a client sends could
# name someone else's request, or be made to collide (issue 9). A sane id the client sent
# (``X-Request-Id``, else ``X-Amzn-Trace-Id``, as huggingface.co's load balancer does) is what the
# answer's ``X-Request-Id`` echoes, so the client's own logs and error messages ("Request ID: ...")
# name it; the audit log keeps it beside ours (``client_request_id``), never in place of it.
_ID_PREFIX = os.urandom(8).hex()
_id_counter = itertools.count(1)
_SANE_CLIENT_ID = re.compile(r"[A-Za-z0-9._:;=/+-]{1,128}")
_CLIENT_ID_HEADERS = (b"x-request-id", b"x-amzn-trace-id")


def new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_id_counter):016x}"


def client_request_id(raw_headers) -> str | None:
    """The id the client sent, if sane: ``X-Request-Id`` first, else ``X-Amzn-Trace-Id``; at most
    128 characters of ``[A-Za-z0-9._:;=/+-]`` (no space, CR, LF, nothing a log line or a header
    could be split on). Anything else is ignored (the next header is tried)."""
    found = {}
    for name, value in raw_headers:
        name = name.lower()
        if name in _CLIENT_ID_HEADERS and name not in found:
            found[name] = value
    for name in _CLIENT_ID_HEADERS:
        value = found.get(name)
        if value is not None and len(value) <= 128:
            text = value.decode("latin-1")
            if _SANE_CLIENT_ID.fullmatch(text):
                return text
    return None


class RequestIdMiddleware:
    """Every response carries ``X-Request-Id`` (clients quote it in error messages): the client's
    own sane id if it sent one, else ours. The audit log records ours as the event's id, and the
    client's beside it. An exception nothing answered becomes a 500 here, with the id, and is
    logged with both (Starlette's own last resort, outside every middleware, would answer without)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request_id = new_request_id()
        client_id = client_request_id(scope.get("headers", ()))
        answered_id = client_id or request_id
        started = False

        async def send_with_id(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message)["X-Request-Id"] = answered_id
            await send(message)

        state = scope.setdefault("state", {})
        state["request_id"] = request_id  # ours: the audit log's id of the event
        state["client_request_id"] = client_id  # the client's, echoed; recorded beside ours
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error answering %s %s (request id %s, client's request id %s)",
                          scope["method"], scope["path"], request_id, client_id or "-")
            if started:
                raise  # the answer was under way: the connection is cut
            from aicommons.api.errors import error_response

            await error_response(HubError("Internal Error - We're working hard to fix this as soon as possible!",
                                          status=500))(scope, receive, send_with_id)


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


def _is_cas(scope) -> bool:
    return scope["path"].startswith("/xet-cas/")


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
            if any(name == b"authorization" for name, _ in scope["headers"]) and not _is_cas(scope):
                # A token seen moments ago is known without I/O; anything else is a DB lookup.
                principal = self._cached_principal(scope) or await anyio.to_thread.run_sync(self._principal, scope)
            else:  # no credentials, or the Xet CAS (which checks its own tokens): no I/O, no thread hop
                principal = self._principal(scope)
        except HubError as exc:
            from aicommons.api.errors import error_response

            headers = {"WWW-Authenticate": 'Basic realm="AI Commons"'} if b"/info/" in scope.get("raw_path", b"") else {}
            exc.headers.update(headers)
            return await error_response(exc, openai=scope["path"].startswith("/v1/"))(scope, receive, send)
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)

    def _cached_principal(self, scope):
        creds = credentials(Headers(scope=scope))
        if creds is None or _is_cas(scope):
            return None
        return self.hub.accounts.cached_principal(creds[2])  # basic auth: the secret may be a token

    def _principal(self, scope):
        creds = credentials(Headers(scope=scope))
        client = scope.get("client")
        if creds is None or _is_cas(scope):  # the CAS checks its own Xet token (api/xet.py)
            return anonymous(client[0] if client else None)
        kind, user, secret = creds
        if kind == "bearer":
            return self.hub.accounts.principal_for_token(secret)
        try:  # basic auth carries a token (as with the Hub) or, failing that, a password
            return self.hub.accounts.principal_for_token(secret)
        except Unauthorized:
            # A refused password counts against the name's and the IP's sign-in limits (429 when spent).
            return self.hub.accounts.principal_for_password(user, secret, ip=client[0] if client else None,
                                                            via="basic")


_SESSION_COOKIE_PREFIX = f"{SESSION_COOKIE}=".encode()


def session_cookie(scope) -> str | None:
    """The web session cookie's value, if the request carries one (``web/session.py``)."""
    for name, value in scope["headers"]:
        if name == b"cookie" and _SESSION_COOKIE_PREFIX in value:
            return cookie_parser(value.decode("latin-1")).get(SESSION_COOKIE) or None
    return None


class RateLimitMiddleware:
    """Counts each request against its caller's budget (``api/rate_limits.py``); runs after
    ``AuthMiddleware``, which names the caller. Answers within budget carry ``RateLimit`` headers.

    A request without a token that carries a web session cookie (a signed-in browser's page, or a
    page's own API call) spends the session's user's budget at the signed-in limits, as that user's
    tokens do; ``sessions`` (``hub/sessions.py``) names the user, from memory for a cookie seen in
    the last minute, else with one lookup off the event loop. A cookie naming no live session spends
    the address's anonymous budget."""

    def __init__(self, app, limiter, sessions):
        self.app = app
        self.limiter = limiter
        self.sessions = sessions

    async def __call__(self, scope, receive, send):
        resource = resource_of(scope["path"]) if scope["type"] == "http" else None
        if resource is None:
            return await self.app(scope, receive, send)
        principal = scope["state"]["principal"]
        budget, signed_in = budget_of(principal), not principal.is_anonymous
        cookie = None if signed_in else session_cookie(scope)
        if cookie:
            known, user_key = self.sessions.cached_budget_key(cookie)
            if not known:
                user_key = await anyio.to_thread.run_sync(self.sessions.budget_key, cookie)
            if user_key is not None:
                budget, signed_in = user_key, True
        try:
            headers = self.limiter.take(resource, budget, signed_in)
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


def _is_load_shedding(message) -> bool:
    """A 503 with ``Retry-After`` is a deliberate "busy, come back" (inference queue full), like a 429."""
    return message["status"] == 503 and any(name.lower() == b"retry-after" for name, _ in message.get("headers", []))


class AuditMiddleware:
    """Writes an audit event for each request that may change something (``hub/audit.py``), once
    its outcome is known and before the client hears it; and for every request, whatever its
    method, that ends in a server error, including an exception no handler answered (Starlette's
    outermost middleware turns it into a 500, out of sight of this one)."""

    def __init__(self, app, hub):
        self.app = app
        self.hub = hub

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        audited = is_audited(scope["method"], scope["path"])
        state = scope.setdefault("state", {})  # AuthMiddleware, inside, puts the caller there
        recorded = False

        async def record(status: int) -> None:
            nonlocal recorded
            recorded = True
            client = scope.get("client")
            await anyio.to_thread.run_sync(
                self.hub.audit.record_request, state.get("principal"), client[0] if client else None,
                scope["method"], scope["path"], status, state.get("request_id"), state.get("client_request_id"))

        async def send_after_recording(message):
            if message["type"] == "http.response.start" and not recorded:
                status = message["status"]
                # 429s (and load-shedding 503s) are not recorded: a flood of refused requests must
                # not become a flood of writes.
                if (audited and status != 429 and not _is_load_shedding(message)) or \
                        (status >= 500 and not _is_load_shedding(message)):
                    try:
                        await record(status)
                    except Exception:
                        # A refusal or a failure changed nothing, and its real reason matters more to
                        # the client than our bookkeeping: a full disk that made an upload a 507 may
                        # also refuse the audit row, which must not turn the 507 into a 500.
                        if status < 400:
                            raise
                        log.exception("could not record a %d answer in the audit log", status)
            await send(message)

        try:
            await self.app(scope, receive, send_after_recording)
        except Exception:
            if not recorded:  # unanswered (the client gets a 500) or cut off mid-answer
                try:
                    await record(500)
                except Exception:  # the database may be why it failed: the original error matters more
                    log.exception("could not record a server error in the audit log")
            raise
