"""Small HTTP helpers shared by the inference routes: principal, JSON bodies, typed fields,
transparency headers, error responses, SSE framing."""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import JSONResponse

from .errors import InvalidRequest, openai_error_body, tgi_error_body
from .source import ResolvedModel

MAX_BODY_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class AnonymousPrincipal:
    """Used only when no auth middleware set ``request.state.principal`` (stand-alone use)."""

    key: str
    is_anonymous: bool = True
    name: str | None = None


def principal_of(request: Request):
    principal = getattr(request.state, "principal", None)
    if principal is not None:
        return principal
    host = request.client.host if request.client else "unknown"
    return AnonymousPrincipal(key=f"anon:{host}")


def path_repo_id(request: Request) -> str:
    """The core routes on the raw, still percent-encoded path: decode the parts ourselves."""
    return f"{unquote(request.path_params['ns'])}/{unquote(request.path_params['name'])}"


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The body, refused with 413 as soon as it is known to pass ``limit``: at once when
    ``Content-Length`` says so, else while it streams in; never buffered past the limit."""
    too_big = InvalidRequest(f"request body is larger than {limit} bytes", status=413)
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise too_big if declared.isdigit() else InvalidRequest("invalid Content-Length")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_json(body: bytes):
    try:
        return json.loads(body or b"null")
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser goes
        raise InvalidRequest("request body is not valid JSON") from None


async def read_json(request: Request) -> dict:
    body = await read_body(request)
    if len(body) > 256 * 1024:  # a big body is parsed off the event loop (8 MiB: tens of ms)
        import anyio

        return await anyio.to_thread.run_sync(parse_json_object, body)
    return parse_json_object(body)


def parse_json_object(body: bytes) -> dict:
    data = _parse_json(body)
    if not isinstance(data, dict):
        raise InvalidRequest("request body must be a JSON object")
    return data


def get_number(body: dict, name: str, default, *, kind=float, low=None, high=None, param_prefix=""):
    value = body.get(name)
    if value is None:
        return default
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        ok = ok and float(value).is_integer()
    if not ok:
        raise InvalidRequest(f"'{name}' must be {'an integer' if kind is int else 'a number'}",
                             param=param_prefix + name)
    value = kind(value)
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"between {low} and {high}" if low is not None and high is not None else \
            f"at least {low}" if low is not None else f"at most {high}"
        raise InvalidRequest(f"'{name}' must be {bounds}", param=param_prefix + name)
    return value


def get_bool(body: dict, name: str, default: bool, param_prefix="") -> bool:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InvalidRequest(f"'{name}' must be a boolean", param=param_prefix + name)
    return value


def get_stop(body: dict, name: str, limit: int, param_prefix="") -> tuple[str, ...]:
    value = body.get(name)
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise InvalidRequest(f"'{name}' must be a string or an array of strings", param=param_prefix + name)
    if len(value) > limit:
        raise InvalidRequest(f"at most {limit} stop sequences are allowed", param=param_prefix + name)
    return tuple(s for s in value if s)


# What InferenceClient sends as "model" when it was given none (chat_completion with a base URL).
PLACEHOLDER_MODEL = "dummy"


def no_model_advice(request: Request, what: str) -> str:
    """``what`` went wrong, then how to name a model with InferenceClient (or any client)."""
    base = str(request.base_url).rstrip("/")
    return (f"{what}: name a model. The task methods of InferenceClient(base_url=...) post to the base URL "
            f"itself: give the model's URL instead, InferenceClient(model='{base}/models/NS/NAME') (POST "
            f"/models/NS/NAME). For chat, InferenceClient(base_url='{base}/v1') or the openai client with "
            f"base_url='{base}/v1', and model='NS/NAME' in each call")


def model_headers(resolved: ResolvedModel) -> dict:
    headers = {"X-Model-Id": resolved.repo_id, "X-Model-Revision": resolved.commit}
    if resolved.license:
        headers["X-Model-License"] = resolved.license
    if resolved.variant is not None:
        headers["X-Model-File"] = resolved.variant  # the GGUF file that answered
    return headers


def openai_error(exc: Exception) -> JSONResponse:
    status, body, headers = openai_error_body(exc)
    return JSONResponse(body, status_code=status, headers=headers)


def tgi_error(exc: Exception) -> JSONResponse:
    status, body, headers = tgi_error_body(exc)
    return JSONResponse(body, status_code=status, headers=headers)


def sse(obj) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n\n"


SSE_DONE = b"data: [DONE]\n\n"
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


async def abandon(lease, status: int) -> None:
    """A request failed before its answer began: give back its model hold, slot and tokens."""
    if lease is not None:
        await lease.close(status=status)
