"""Refs endpoints: list refs, branches, tags, commit history, super-squash."""

from __future__ import annotations

from itertools import islice

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from aicommons.api import formats
from aicommons.api.http import (
    blocking,
    bool_arg,
    hub_of,
    int_arg,
    json_object,
    next_link,
    param,
    principal_of,
    read_json,
    repo_id_param,
    repo_type_param,
    run_sync,
)
from aicommons.errors import BadRequest
from aicommons.hub import content
from aicommons.hub.policy import Action

COMMITS_PAGE = 50


def _find(request: Request, write: bool = False, action: Action | None = None):
    return hub_of(request).repos.find(repo_type_param(request), repo_id_param(request), principal_of(request), write,
                                      action=action)


@blocking
def list_refs(request: Request) -> Response:
    repo = _find(request)
    return JSONResponse(hub_of(request).refs.list_refs(repo, bool_arg(request, "include_prs")))


async def create_branch(request: Request) -> Response:
    repo = await run_sync(_find, request, True)  # decided before the body is read
    body = json_object(await read_json(request, default={}))
    start = body.get("startingPoint")
    if start is not None and not isinstance(start, str):
        raise BadRequest("'startingPoint' must be a string")

    def run():
        hub_of(request).refs.create_branch(repo, param(request, "branch"), start)

    await run_sync(run)
    return JSONResponse({"success": True})


@blocking
def delete_branch(request: Request) -> Response:
    hub_of(request).refs.delete_branch(_find(request, write=True), param(request, "branch"))
    return JSONResponse({"success": True})


async def create_tag(request: Request) -> Response:
    repo = await run_sync(_find, request, True)
    body = json_object(await read_json(request))
    tag, message = body.get("tag"), body.get("message")
    if not isinstance(tag, str) or (message is not None and not isinstance(message, str)):
        raise BadRequest("'tag' (string) is required; 'message' must be a string")

    def run():
        hub_of(request).refs.create_tag(repo, principal_of(request), param(request, "rev"),
                                        tag, message)

    await run_sync(run)
    return JSONResponse({"success": True})


@blocking
def delete_tag(request: Request) -> Response:
    hub_of(request).refs.delete_tag(_find(request, write=True), param(request, "tag"))
    return JSONResponse({"success": True})


@blocking
def list_commits(request: Request) -> Response:
    hub = hub_of(request)
    repo = _find(request, action=Action.READ_CONTENT)
    git_repo, commit = hub.refs.resolve(repo, param(request, "rev"))
    offset = int_arg(request, "cursor", 0)
    limit = int_arg(request, "limit", COMMITS_PAGE, minimum=1, maximum=1000)
    formatted = "formatted" in request.query_params.getlist("expand[]") + request.query_params.getlist("expand")
    page = list(islice(content.history(git_repo, commit), offset, offset + limit + 1))
    headers = {"Link": next_link(request, offset + limit)} if len(page) > limit else {}
    return JSONResponse([formats.commit_json(c, formatted) for c in page[:limit]], headers=headers)


async def super_squash(request: Request) -> Response:
    repo = await run_sync(_find, request, True)
    body = json_object(await read_json(request, default={}))
    message = body.get("message")
    if message is not None and not isinstance(message, str):
        raise BadRequest("'message' must be a string")

    def run():
        return hub_of(request).refs.squash(repo, principal_of(request),
                                           param(request, "rev"), message)

    oid = await run_sync(run)
    return JSONResponse({"commitId": oid})
