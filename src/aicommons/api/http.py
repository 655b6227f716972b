"""Request plumbing shared by the endpoints: raw-path parameters, bodies with size limits,
running blocking domain code off the event loop, dates and pagination links."""

from __future__ import annotations

import functools
import json
from typing import Any, Awaitable, Callable
from urllib.parse import unquote, urlencode

import anyio
from starlette.requests import Request
from starlette.responses import Response

from aicommons.errors import BadRequest, PayloadTooLarge
from aicommons.hub.access import Principal
from aicommons.hub.hub import Hub
from aicommons.hub.names import PLURAL_TO_TYPE
from aicommons.errors import NotFound


def hub_of(request: Request) -> Hub:
    return request.app.state.hub


def base_url(request: Request) -> str:
    """The hub's public base URL: the configured one, else the one this client used."""
    configured = hub_of(request).settings.public_url
    if configured:
        return configured
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    scheme = request.headers.get("x-forwarded-proto") or request.url.scheme
    return f"{scheme}://{host}"


def principal_of(request: Request) -> Principal:
    return request.state.principal


def param(request: Request, name: str) -> str:
    """A path parameter, percent-decoded (routing happens on the raw, still-encoded path)."""
    return unquote(request.path_params[name])


def repo_id_param(request: Request) -> str:
    if "ns" in request.path_params:
        return f"{param(request, 'ns')}/{param(request, 'name')}"
    return param(request, "name")


def repo_type_param(request: Request) -> str:
    plural = request.path_params.get("types", "models")
    if plural not in PLURAL_TO_TYPE:
        raise NotFound(f"Unknown repo type {plural!r}")
    return PLURAL_TO_TYPE[plural]


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Request body is larger than the limit of {limit} bytes")
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise PayloadTooLarge(f"Request body is larger than the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, limit: int | None = None, default: Any = ...) -> Any:
    body = await read_body(request, limit or hub_of(request).settings.max_json_body_bytes)
    if not body.strip():
        if default is not ...:
            return default
        raise BadRequest("A JSON body is required")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"Invalid JSON body: {exc}") from None


def json_object(value: Any, what: str = "body") -> dict:
    if not isinstance(value, dict):
        raise BadRequest(f"The {what} must be a JSON object")
    return value


async def run_sync(fn: Callable, *args, **kwargs):
    return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))


def blocking(handler: Callable[[Request], Response]) -> Callable[[Request], Awaitable[Response]]:
    """Run a synchronous handler (DB, git) in the thread pool."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        return await run_sync(handler, request)

    return endpoint


def bool_arg(request: Request, name: str, default: bool = False) -> bool:
    value = request.query_params.get(name)
    if value is None:
        return default
    return value.lower() in ("1", "true", "yes", "on")


def int_arg(request: Request, name: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
    value = request.query_params.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise BadRequest(f"Query parameter {name!r} must be an integer") from None
    if number < minimum or (maximum is not None and number > maximum):
        raise BadRequest(f"Query parameter {name!r} is out of range")
    return number


def next_link(request: Request, cursor: int) -> str:
    """An absolute ``Link: <…>; rel="next"`` URL carrying every query parameter plus the cursor."""
    items = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
    items.append(("cursor", str(cursor)))
    raw = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
    url = f"{base_url(request)}{raw}?{urlencode(items)}"
    return f'<{url}>; rel="next"'
