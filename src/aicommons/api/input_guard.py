"""Refuse, at the edge, URLs that carry text no backend can store.

A NUL byte in a query string (``?search=a%00b``) or a path reaches the database as text:
PostgreSQL refuses it with an error (a 500), SQLite stores or mis-parses it. No parameter of the
hub has a use for one, so it is a 400 ``BadRequest`` before any handler runs, on both backends.
Bodies are checked where they are parsed (``api/http.py::parse_json``).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from aicommons.api.errors import error_response
from aicommons.errors import BadRequest


class InputGuardMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw_path = scope.get("raw_path") or scope.get("path", "").encode("utf-8", "surrogateescape")
            for part, what in ((scope.get("query_string", b""), "query string"), (raw_path, "path")):
                if b"\x00" in part or b"%00" in part:
                    await error_response(BadRequest(f"A NUL character is not allowed in the {what}"))(
                        scope, receive, send)
                    return
        await self.app(scope, receive, send)
