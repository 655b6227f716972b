"""Request plumbing shared by the API endpoints: raw-path parameters, bodies with size limits,
running blocking domain code off the event loop, dates and pagination links."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote, urlencode

from starlette.requests import Request

from aicommons.errors import BadRequest, NotFound, PayloadTooLarge

# Shared with web/ (http_common.py); api modules keep importing them from here.
from aicommons.http_common import base_url, blocking, hub_of, principal_of, run_sync  # noqa: F401
from aicommons.hub.names import PLURAL_TO_TYPE, unstorable_char

# The largest integer a query parameter may carry: it fits a 32-bit column on every backend, and
# any offset built from it (page x page size) still fits a 64-bit one and ``islice``.
MAX_INT_ARG = 2**31 - 1
# JSON deeper than this is refused: nothing the hub accepts nests beyond a few levels, and code
# that walks a parsed document (cards, settings) must not meet Python's recursion limit.
MAX_JSON_DEPTH = 64


def param(request: Request, name: str) -> str:
    """A path parameter, percent-decoded (routing happens on the raw, still-encoded path).

    Control characters are refused here, at the edge: no repo id, revision or file path may hold
    one, and they must reach neither the database (PostgreSQL cannot store NUL) nor a header."""
    value = unquote(request.path_params[name])
    if any(ord(c) < 32 or c == "\x7f" for c in value) or unstorable_char(value):
        raise BadRequest(f"Invalid {name!r} in the URL: control characters are not allowed")
    return value


def repo_id_param(request: Request) -> str:
    if "ns" in request.path_params:
        return f"{param(request, 'ns')}/{param(request, 'name')}"
    return param(request, "name")


def repo_type_param(request: Request) -> str:
    plural = request.path_params.get("types", "models")
    if plural not in PLURAL_TO_TYPE:
        raise unknown_endpoint(request) if plural in UNSERVED_PRODUCTS else NotFound(f"Unknown repo type {plural!r}")
    return PLURAL_TO_TYPE[plural]


# Hub products this hub does not serve, by their API's first path segment (huggingface_hub's URLs):
# a client of them is told so, not "Repository not found" (which the CLI turns into advice to create
# a repo), nor an HTML page or a bare 405.
UNSERVED_PRODUCTS = {"jobs": "Jobs", "scheduled-jobs": "Jobs", "buckets": "Storage buckets",
                     "papers": "Papers", "daily_papers": "Papers", "kernels": "Kernel repos"}
# ... and Space features, by the last segment of /api/spaces/{ns}/{name}/...
UNSERVED_SPACE_FEATURES = {"dev-mode": "Dev mode is", "volumes": "Volumes are", "hot-reload": "Hot reloading is"}


def unknown_endpoint(request: Request) -> NotFound:
    """What an ``/api/...`` path no route serves answers: a Hub-style JSON 404 saying so."""
    segments = request.url.path.removeprefix("/api/").split("/")
    if segments[0] in UNSERVED_PRODUCTS:
        return NotFound(f"{UNSERVED_PRODUCTS[segments[0]]} are not available on this hub (AI Commons serves "
                        "models, datasets and spaces)")
    if segments[0] == "spaces" and len(segments) == 4 and segments[3] in UNSERVED_SPACE_FEATURES:
        return NotFound(f"{UNSERVED_SPACE_FEATURES[segments[3]]} not available on this hub's Spaces")
    return NotFound(f"Unknown endpoint: {request.method} {request.url.path}")


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
    return parse_json(body)


def parse_json(data: bytes | str, what: str = "JSON body", strings: bool = True) -> Any:
    """``json.loads`` for untrusted input: a 400, never a 500, for anything malformed, nested
    deeper than MAX_JSON_DEPTH, or (unless ``strings`` is False, for a caller that validates each
    string itself) holding a string no backend can store (NUL, lone surrogates)."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise BadRequest(f"Invalid {what}: nested more than {MAX_JSON_DEPTH} levels deep") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"Invalid {what}: {exc}") from None
    check_json_value(value, what, strings)
    return value


def check_json_value(value: Any, what: str = "JSON body", strings: bool = True) -> None:
    """Walk a parsed document (iteratively): depth and storable strings, keys included."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            bad = unstorable_char(item) if strings else None
            if bad:
                raise BadRequest(f"Invalid {what}: {bad} is not allowed in text")
        elif isinstance(item, (list, dict)):
            if depth > MAX_JSON_DEPTH:
                raise BadRequest(f"Invalid {what}: nested more than {MAX_JSON_DEPTH} levels deep")
            if isinstance(item, dict):
                stack.extend((k, depth) for k in item)
                stack.extend((v, depth + 1) for v in item.values())
            else:
                stack.extend((v, depth + 1) for v in item)


def json_object(value: Any, what: str = "body") -> dict:
    if not isinstance(value, dict):
        raise BadRequest(f"The {what} must be a JSON object")
    return value


def bool_arg(request: Request, name: str, default: bool = False) -> bool:
    value = request.query_params.get(name)
    if value is None:
        return default
    return value.lower() in ("1", "true", "yes", "on")


def int_arg(request: Request, name: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
    """An integer query parameter, ASCII digits only, within [minimum, maximum or MAX_INT_ARG]:
    numbers no backend column or ``islice`` can take are a 400 at the edge, never a 500."""
    value = request.query_params.get(name)
    if value is None or value == "":
        return default
    if not _INT_RE.fullmatch(value):
        raise BadRequest(f"Query parameter {name!r} must be an integer")
    upper = MAX_INT_ARG if maximum is None else min(maximum, MAX_INT_ARG)
    number = int(value) if len(value) <= 12 else None  # int() of 5000 digits is itself an error
    if number is None or number < minimum or number > upper:
        raise BadRequest(f"Query parameter {name!r} is out of range ({minimum} to {upper})")
    return number


_INT_RE = re.compile(r"-?[0-9]+")


def next_link(request: Request, cursor: int | str) -> str:
    """An absolute ``Link: <…>; rel="next"`` URL carrying every query parameter plus the cursor."""
    items = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
    items.append(("cursor", str(cursor)))
    raw = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
    url = f"{base_url(request)}{raw}?{urlencode(items)}"
    return f'<{url}>; rel="next"'
