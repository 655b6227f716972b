"""The audit middleware never hides a refusal's real answer behind its own failure to record it."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from aicommons.api.middleware import AuditMiddleware


class FullDiskAudit:
    def record_request(self, *args):
        raise OSError(28, "No space left on device")


def app_answering(status: int) -> AuditMiddleware:
    async def upload(request):
        return JSONResponse({"error": "out of space"}, status_code=status)

    inner = Starlette(routes=[Route("/api/models/alice/m/commit/main", upload, methods=["POST"])])
    return AuditMiddleware(inner, SimpleNamespace(audit=FullDiskAudit()))


@pytest.mark.anyio
@pytest.mark.parametrize("status", [507, 403])
async def test_a_failed_audit_write_keeps_the_refusal_the_client_is_owed(status, caplog):
    transport = httpx.ASGITransport(app=app_answering(status))
    with caplog.at_level(logging.ERROR):
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
            response = await client.post("/api/models/alice/m/commit/main", content=b"x")
    assert response.status_code == status
    assert "could not record" in caplog.text


@pytest.mark.anyio
async def test_a_change_that_cannot_be_audited_is_not_reported_as_done():
    transport = httpx.ASGITransport(app=app_answering(200))
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        with pytest.raises(OSError):
            await client.post("/api/models/alice/m/commit/main", content=b"x")


@pytest.fixture
def anyio_backend():
    return "asyncio"
