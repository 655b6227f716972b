"""Gated-repo access requests: ask, list by status, accept/reject, grant."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from aicommons.api.http import (
    blocking,
    hub_of,
    json_object,
    param,
    principal_of,
    read_json,
    repo_id_param,
    repo_type_param,
    run_sync,
)
from aicommons.errors import BadRequest
from aicommons.hub.policy import Action
from aicommons.times import iso_z


def _repo(request: Request, action: Action = Action.WRITE):
    """Managing requests needs write rights to the repo; asking, a signed-in write principal."""
    return hub_of(request).repos.find(repo_type_param(request), repo_id_param(request), principal_of(request),
                                      action=action)


async def ask_access(request: Request) -> Response:
    repo = await run_sync(_repo, request, Action.PARTICIPATE)  # decided before the body is read
    body = await read_json(request, default={})
    fields = body if isinstance(body, dict) else None

    def run():
        return hub_of(request).gating.ask(repo, principal_of(request), fields)

    return JSONResponse({"status": await run_sync(run)})


@blocking
def list_requests(request: Request) -> Response:
    rows = hub_of(request).gating.list(_repo(request), principal_of(request), param(request, "status"))
    return JSONResponse([{
        "requestId": str(r["id"]), "status": r["status"], "timestamp": iso_z(r["created_at"]),
        "fields": r["fields"] or {}, "user": {"user": r["name"], "fullname": r["fullname"], "email": r["email"]},
    } for r in rows])


async def handle_request(request: Request) -> Response:
    repo = await run_sync(_repo, request)
    body = json_object(await read_json(request))
    user, request_id = body.get("user"), body.get("requestId")
    if not isinstance(user, str) and not isinstance(request_id, (str, int)):
        raise BadRequest("'user' or 'requestId' is required")

    def run():
        hub_of(request).gating.handle(repo, principal_of(request), user if isinstance(user, str) else None,
                                      body.get("status"), body.get("rejectionReason"),
                                      request_id=None if isinstance(user, str) else str(request_id))

    await run_sync(run)
    return JSONResponse({"success": True})


async def grant(request: Request) -> Response:
    repo = await run_sync(_repo, request)
    body = json_object(await read_json(request))
    user = body.get("user")
    if not isinstance(user, str):
        raise BadRequest("'user' (string) is required")

    def run():
        hub_of(request).gating.handle(repo, principal_of(request), user, "accepted", grant=True)

    await run_sync(run)
    return JSONResponse({"success": True})
