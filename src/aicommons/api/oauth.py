"""OAuth endpoints: device login (RFC 8628) at ``/oauth/device`` and ``/oauth/token``, which also
exchanges CI ID tokens for hub tokens (RFC 8693, hub/workload_identity.py).

Answers are OAuth-shaped (``{"error", "error_description"}``, 400), not the Hub's error shape: the
clients read ``error`` (``authorization_pending``, ``slow_down``, ``expired_token``...). The token
endpoint takes form bodies (device and refresh grants) and JSON (token exchange)."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from aicommons.api.http import base_url, hub_of, read_body, run_sync
from aicommons.hub.device_login import DEVICE_GRANT, OAuthError
from aicommons.hub.workload_identity import EXCHANGE_GRANT

MAX_BODY = 64 * 1024


def _error(exc: OAuthError) -> Response:
    return JSONResponse({"error": exc.code, "error_description": exc.description}, status_code=exc.status,
                        headers={"Cache-Control": "no-store"})


async def _fields(request: Request) -> dict:
    body = await read_body(request, MAX_BODY)
    if request.headers.get("content-type", "").split(";")[0].strip() == "application/json":
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            raise OAuthError("invalid_request", "The body is not JSON") from None
        if not isinstance(data, dict):
            raise OAuthError("invalid_request", "The body must be a JSON object")
        return {k: v for k, v in data.items() if isinstance(v, str)}
    from urllib.parse import parse_qsl

    try:
        return dict(parse_qsl(body.decode(), keep_blank_values=True))
    except UnicodeDecodeError:
        raise OAuthError("invalid_request", "The body is not a form") from None


async def device_authorization(request: Request) -> Response:
    try:
        fields = await _fields(request)
        hub = hub_of(request)
        answer = await run_sync(hub.device_login.start, fields.get("client_id", ""),
                                request.headers.get("user-agent", ""), request.client.host if request.client else None,
                                base_url(request))
    except OAuthError as exc:
        return _error(exc)
    return JSONResponse(answer, headers={"Cache-Control": "no-store"})


async def token(request: Request) -> Response:
    try:
        fields = await _fields(request)
        grant = fields.get("grant_type", "")
        hub = hub_of(request)
        if grant == DEVICE_GRANT:
            answer = await run_sync(hub.device_login.poll, fields.get("device_code", ""), fields.get("client_id", ""))
        elif grant == EXCHANGE_GRANT:
            answer = await run_sync(hub.workload_identity.exchange, fields, base_url(request))
        elif grant == "refresh_token":
            answer = await run_sync(hub.device_login.refresh, fields.get("refresh_token", ""),
                                    fields.get("client_id", ""))
        else:
            raise OAuthError("unsupported_grant_type", f"Unsupported grant_type {grant!r}")
    except OAuthError as exc:
        return _error(exc)
    return JSONResponse(answer, headers={"Cache-Control": "no-store"})
