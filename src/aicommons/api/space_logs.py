"""A Space's build or run log as the Hub streams it: server-sent events, one ``data: {json}`` per
line, replayed from the beginning (a reconnecting client skips what it saw by index), then followed
while the client stays (``HfApi.fetch_space_logs`` stops on its own when not following)."""

from __future__ import annotations

import time

import anyio
from starlette.requests import Request
from starlette.responses import StreamingResponse

from aicommons.hub.spaces import read_log

FOLLOW_SECONDS = 600  # a following client reconnects after this (it retries, replaying by index)
POLL_SECONDS = 0.25


def log_stream(request: Request, hub, repo, kind: str) -> StreamingResponse:
    settings = hub.settings

    async def events():
        offset, deadline = 0, time.monotonic() + FOLLOW_SECONDS
        while time.monotonic() < deadline:
            lines, offset = await anyio.to_thread.run_sync(read_log, settings, repo.id, kind, offset)
            for line in lines:
                yield b"data: " + line + b"\n\n"
            if not lines:
                if await request.is_disconnected():
                    return
                await anyio.sleep(POLL_SECONDS)

    return StreamingResponse(events(), media_type="text/event-stream",
                             # (no Date of our own: the server sends one, and HfApi.fetch_space_logs,
                             # which stops at it, cannot parse two joined by a comma)
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
