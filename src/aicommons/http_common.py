"""HTTP plumbing both doors share (``api/`` and ``web/``): the hub a request belongs to, who is
asking, the web session cookie's name, the public base URL, and running blocking domain code off
the event loop.

It sits between the doors and the hub (``[tool.importlinter]`` in pyproject): ``api`` and ``web``
both import it and never each other; it imports neither.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response

from aicommons.hub.access import Principal
from aicommons.hub.hub import Hub

# The web UI's session cookie (web/session.py). Pages sign in with it; the API ignores it, but for
# the request rate limiter (api/middleware.py), which counts a signed-in browser against its user.
SESSION_COOKIE = "aicommons_session"


def hub_of(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


def principal_of(request: Request) -> Principal:
    principal: Principal = request.state.principal  # set by the auth middleware (api/middleware.py)
    return principal


def base_url(request: Request) -> str:
    """The hub's public base URL: the configured one, else the one this client used."""
    configured = hub_of(request).settings.public_url
    if configured:
        return configured
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    scheme = request.headers.get("x-forwarded-proto") or request.url.scheme
    return f"{scheme}://{host}"


async def run_sync(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))


def blocking(handler: Callable[[Request], Response]) -> Callable[[Request], Awaitable[Response]]:
    """Run a synchronous handler (DB, git) in the thread pool."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        response: Response = await run_sync(handler, request)
        return response

    return endpoint
