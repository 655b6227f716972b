"""``X-Upstream-Stale``: an answer built from a pulled-through repo's last fetched refs because the
upstream hub could not be reached says so, with the time of that last fetch (docs/mirror.md)."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders

from aicommons.hub.upstream import watch_staleness
from aicommons.times import iso_z


class UpstreamStaleMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        note = watch_staleness()

        async def send_marked(message):
            if message["type"] == "http.response.start" and "since" in note:
                MutableHeaders(scope=message)["X-Upstream-Stale"] = iso_z(note["since"])
            await send(message)

        await self.app(scope, receive, send_marked)
