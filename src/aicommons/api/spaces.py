"""The Hub's Space runtime API (``HfApi`` Space methods): runtime, hardware, sleep time, pause,
restart, secrets, variables, duplication, logs. The shapes are in spec/wave2-apis.md §6 and in
``hub/spaces.py``; each handler lets the policy decide (``SpaceService.find``) before it reads a body.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from aicommons.api import formats
from aicommons.api.http import (
    base_url,
    blocking,
    bool_arg,
    hub_of,
    json_object,
    param,
    principal_of,
    read_json,
    repo_id_param,
    repo_type_param,
    run_sync,
)
from aicommons.errors import BadRequest, NotFound
from aicommons.hub.access import Principal
from aicommons.hub.policy import Action
from aicommons.hub.repos import RepoQuery

REPO = "/api/{types}/{ns}/{name}"


def _where(request: Request) -> tuple[Principal, str, str]:
    return principal_of(request), repo_type_param(request), repo_id_param(request)


async def _body(request: Request, action: Action) -> tuple[tuple[Principal, str, str], dict[str, Any]]:
    """The decision first (a refused caller never has its body read), then the JSON object body."""
    where = _where(request)
    await run_sync(hub_of(request).spaces.find, *where, action)
    return where, json_object(await read_json(request, default={}))


@blocking
def hardware_list(request: Request) -> Response:
    return JSONResponse(hub_of(request).spaces.hardware())


RUNNING_STAGES = ("RUNNING", "RUNNING_BUILDING", "RUNNING_APP_STARTING")
SEARCH_RESULTS = 100


@blocking
def search(request: Request) -> Response:
    """``HfApi.search_spaces`` (``hf spaces search``): the Hub ranks by embeddings; this hub answers with
    its text search over spaces (as ``/api/spaces?search=``), most liked first, only running ones unless
    ``includeNonRunning``: at most SEARCH_RESULTS, from the 3 * SEARCH_RESULTS most liked matches."""
    query = request.query_params.get("q", "").strip()
    if not query:
        raise BadRequest("'q' is required")
    hub, principal = hub_of(request), principal_of(request)
    sdks, everything = set(request.query_params.getlist("sdk")), bool_arg(request, "includeNonRunning")
    # Each candidate's stage is one database read: look at three pages' worth, not the whole listing.
    rows, _ = hub.repos.search(principal, RepoQuery(type="space", search=query, sort="likes", limit=3 * SEARCH_RESULTS,
                                                     filters=tuple(request.query_params.getlist("filter"))))
    out: list[dict[str, Any]] = []
    for repo, card, _head in hub.repos.listed_heads(rows):
        data = card.data or {}
        if sdks and data.get("sdk") not in sdks:
            continue
        runtime = hub.spaces.runtime_of(repo)
        if not everything and runtime["stage"] not in RUNNING_STAGES:
            continue
        out.append({"id": repo.full_id, "author": repo.namespace, "title": data.get("title") or repo.name,
                    "emoji": data.get("emoji"), "sdk": data.get("sdk"), "likes": repo.likes,
                    "private": repo.private, "tags": repo.tags, "runtime": runtime,
                    "ai_short_description": data.get("short_description")})
        if len(out) == SEARCH_RESULTS:
            break
    return JSONResponse(out)


def templates(request: Request) -> Response:
    """``HfApi.list_space_templates`` (``hf spaces templates``): this hub offers no templates."""
    return JSONResponse({"templates": []})


def zero_gpu(request: Request) -> Response:
    """``hf spaces zero-gpu``: no such hardware here (the Hub's ZeroGPU quota API)."""
    raise NotFound("ZeroGPU is not available on this hub (its Spaces run on the hardware "
                   "`hf spaces hardware` lists)")


@blocking
def runtime(request: Request) -> Response:
    return JSONResponse(hub_of(request).spaces.runtime(*_where(request)))


async def request_hardware(request: Request) -> Response:
    where, body = await _body(request, Action.ADMIN)
    spaces = hub_of(request).spaces
    return JSONResponse(await run_sync(spaces.request_hardware, *where, body.get("flavor"),
                                       body.get("sleepTimeSeconds")))


async def sleeptime(request: Request) -> Response:
    where, body = await _body(request, Action.ADMIN)
    return JSONResponse(await run_sync(hub_of(request).spaces.set_sleep_time, *where, body.get("seconds")))


@blocking
def pause(request: Request) -> Response:
    return JSONResponse(hub_of(request).spaces.pause(*_where(request)))


@blocking
def restart(request: Request) -> Response:
    factory = request.query_params.get("factory", "").lower() in ("1", "true")
    return JSONResponse(hub_of(request).spaces.restart(*_where(request), factory))


@blocking
def list_secrets(request: Request) -> Response:
    return JSONResponse(hub_of(request).spaces.secrets(*_where(request)))


@blocking
def list_variables(request: Request) -> Response:
    return JSONResponse(hub_of(request).spaces.variables(*_where(request)))


def _env_handler(kind: str, delete: bool):
    async def handler(request: Request) -> Response:
        where, body = await _body(request, Action.ADMIN)
        spaces = hub_of(request).spaces
        result = await run_sync(spaces.delete if delete else spaces.put, *where, kind, body)
        return JSONResponse(result if result is not None else {})

    return handler


async def duplicate(request: Request) -> Response:
    """``duplicate_repo``: a Space with its settings (``SpaceService.duplicate``), a model or dataset
    with its files and history (``RepoService.duplicate``)."""
    hub = hub_of(request)
    principal, repo_type, full_id = _where(request)
    if repo_type == "space":
        where, body = await _body(request, Action.READ_CONTENT)
        repo, created = await run_sync(hub.spaces.duplicate, *where, body)
    else:
        source = await run_sync(hub.repos.find, repo_type, full_id, principal, action=Action.READ_CONTENT)
        body = json_object(await read_json(request, default={}))
        repo, created = await run_sync(hub.repos.duplicate, principal, source, body)
    url = formats.repo_url(base_url(request), repo)
    if not created:
        return JSONResponse({"error": formats.already_created(repo), "url": url}, status_code=409,
                            headers={"X-Error-Code": "RepoExists"})
    return JSONResponse({"url": url})


async def logs(request: Request) -> Response:
    from aicommons.api.space_logs import log_stream

    where = _where(request)
    kind = param(request, "kind")
    repo = await run_sync(hub_of(request).spaces.logs, *where, kind)
    return log_stream(request, hub_of(request), repo, kind)


def space_routes() -> list[Route]:
    """Per-repo routes (before the repo catch-alls in api/routes.py); ``/api/spaces/hardware`` goes
    before ``/api/{types}/{name}``."""
    return [
        Route(REPO + "/runtime", runtime),
        Route(REPO + "/hardware", request_hardware, methods=["POST"]),
        Route(REPO + "/sleeptime", sleeptime, methods=["POST"]),
        Route(REPO + "/pause", pause, methods=["POST"]),
        Route(REPO + "/restart", restart, methods=["POST"]),
        Route(REPO + "/secrets", list_secrets),
        Route(REPO + "/secrets", _env_handler("secret", False), methods=["POST"]),
        Route(REPO + "/secrets", _env_handler("secret", True), methods=["DELETE"]),
        Route(REPO + "/variables", list_variables),
        Route(REPO + "/variables", _env_handler("variable", False), methods=["POST"]),
        Route(REPO + "/variables", _env_handler("variable", True), methods=["DELETE"]),
        Route(REPO + "/duplicate", duplicate, methods=["POST"]),
        Route(REPO + "/logs/{kind}", logs),
    ]
