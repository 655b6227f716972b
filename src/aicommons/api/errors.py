"""The one place where domain errors become HTTP responses.

Wire shape (pinned by tests/api/test_errors.py): status from the error class, ``X-Error-Code`` with
the Hub's code, ``X-Error-Message`` with the message, and a JSON body ``{"error": message}``.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from aicommons.errors import HubError
from aicommons.http_common import base_url
from aicommons.hub.repos import RepoMoved
from aicommons.storage.base import StorageFull

log = logging.getLogger("aicommons.api")
_CONTROLS = re.compile("[\x00-\x08\x0a-\x1f\x7f]")


def _header_safe(message: str) -> str:
    # No control character may reach a header (h11 refuses to send one: the client would see the
    # connection drop instead of the error), whatever text a message quotes.
    flat = " ".join(_CONTROLS.sub("?", message).split())
    return flat.encode("latin-1", "replace").decode("latin-1")[:1000]


def error_response(exc: HubError, *, openai: bool = False) -> Response:
    """The Hub's ``{"error": message}``; with ``openai`` (a refusal before an OpenAI route, ``/v1/...``,
    ran: a bad token) OpenAI's error object, which the openai client reads its message from."""
    headers = dict(exc.headers)
    if exc.code:
        headers["X-Error-Code"] = exc.code
    headers["X-Error-Message"] = _header_safe(exc.message)
    if openai:
        kind = {401: "authentication_error", 403: "permission_error"}.get(exc.status, "invalid_request_error")
        code = "invalid_api_key" if exc.status == 401 else exc.code
        body: dict = {"error": {"message": exc.message, "type": kind, "param": None, "code": code}}
        return JSONResponse(body, status_code=exc.status, headers=headers)
    return JSONResponse({"error": exc.message}, status_code=exc.status, headers=headers)


def moved_response(request: Request, exc: RepoMoved) -> Response:
    raw = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
    old, new = f"/{exc.old_id}", f"/{exc.new_id}"
    index = raw.lower().find(old.lower())
    location = raw[:index] + new + raw[index + len(old):] if index >= 0 else raw
    if request.url.query:
        location += "?" + request.url.query
    return RedirectResponse(base_url(request) + location, status_code=307)


async def storage_error_handler(request: Request, exc: Exception) -> Response:
    if isinstance(exc, StorageFull):
        return error_response(HubError(str(exc), status=507))
    log.error("storage failure on %s %s: %s", request.method, request.url.path, exc)
    return error_response(HubError("Storage backend failure; nothing was changed", status=503))


def quote_segment(value: str) -> str:
    return quote(value, safe="")
