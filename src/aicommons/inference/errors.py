"""Inference errors and their two wire shapes.

Hub-side failures (missing repo, no access) arrive as ``aicommons.errors.HubError``; failures of the
request itself are ``InferenceError`` (a HubError too, so one handler serves both). The OpenAI routes
answer with OpenAI's nested error object, the HF/TGI routes with TGI's flat one, because each client
only parses its own shape (spec §1.1, §1.5, §1.6).
"""

from __future__ import annotations

from aicommons.errors import HubError


class InferenceError(HubError):
    status = 400
    code = "invalid_request_error"
    openai_type = "invalid_request_error"
    tgi_type = "validation"

    def __init__(self, message: str, *, param: str | None = None, status: int | None = None,
                 headers: dict | None = None):
        super().__init__(message, status=status, headers=headers)
        self.param = param


class InvalidRequest(InferenceError):
    """Malformed or out-of-range input: never retried by clients (4xx)."""


class ContextLengthExceeded(InvalidRequest):
    code = "context_length_exceeded"


class UnsupportedTask(InferenceError):
    """The model exists but cannot serve this API (e.g. chat on an encoder)."""

    code = "model_not_supported"


class RateLimited(InferenceError):
    status = 429
    code = "rate_limit_exceeded"
    openai_type = "rate_limit_exceeded"
    tgi_type = "overloaded"


class Overloaded(InferenceError):
    """The server as a whole is full (queue, memory): 503 with Retry-After."""

    status = 503
    code = "server_overloaded"
    openai_type = "server_error"
    tgi_type = "overloaded"


class GenerationFailed(InferenceError):
    status = 500
    code = "generation_failed"
    openai_type = "server_error"
    tgi_type = "generation"


def _parts(exc: Exception) -> tuple[int, str, str, str | None, dict]:
    if isinstance(exc, InferenceError):
        return exc.status, exc.message, exc.code or "error", exc.param, dict(exc.headers)
    if isinstance(exc, HubError):
        return exc.status, exc.message, exc.code or "error", None, dict(exc.headers)
    # Anything else is our bug; say nothing about it on the wire (it may echo user input).
    return 500, "internal error", "internal_error", None, {}


def openai_error_body(exc: Exception) -> tuple[int, dict, dict]:
    status, message, code, param, headers = _parts(exc)
    if isinstance(exc, InferenceError):
        kind = exc.openai_type
    elif status == 404:
        kind, code = "invalid_request_error", "model_not_found"
    elif status in (401, 403):
        kind = "authentication_error" if status == 401 else "permission_error"
    else:
        kind = "server_error" if status >= 500 else "invalid_request_error"
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return status, body, headers


def tgi_error_body(exc: Exception) -> tuple[int, dict, dict]:
    status, message, code, _param, headers = _parts(exc)
    if isinstance(exc, InferenceError):
        kind = exc.tgi_type
    else:
        kind = {401: "unauthorized", 403: "forbidden", 404: "not_found"}.get(status, "error")
    headers.setdefault("X-Error-Code", code)
    return status, {"error": message, "error_type": kind}, headers
