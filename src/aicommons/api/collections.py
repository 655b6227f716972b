"""Collections endpoints, as huggingface_hub's collection methods call them (spec wave2-apis §4).

The slug takes two path segments (``{ns}/{slug}``). Every change is decided (``find(write=True)``)
before its body is read.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from aicommons.api.errors import error_response
from aicommons.api.http import (
    blocking,
    hub_of,
    int_arg,
    json_object,
    next_link,
    param,
    principal_of,
    read_json,
    run_sync,
)
from aicommons.errors import BadRequest
from aicommons.hub.collections import CollectionExists

MAX_PAGE = 100
SORTS = ("lastModified", "trending", "upvotes")


def _find(request: Request, write: bool = False):
    return hub_of(request).collections.find(principal_of(request), param(request, "ns"), param(request, "slug"),
                                            write=write)


def _conflict(exc: CollectionExists) -> Response:
    headers = {k: v for k, v in error_response(exc).headers.items() if k.lower().startswith("x-error-")}
    return JSONResponse({"error": exc.message, "slug": exc.slug}, status_code=409, headers=headers)


@blocking
def list_collections(request: Request) -> Response:
    hub = hub_of(request)
    sort = request.query_params.get("sort")
    if sort is not None and sort not in SORTS:
        raise BadRequest(f"'sort' must be one of {', '.join(SORTS)}")
    explicit = request.query_params.get("limit") not in (None, "")
    limit = int_arg(request, "limit", 0, minimum=1) if explicit else None
    offset = int_arg(request, "cursor", 0)
    page = MAX_PAGE if limit is None else max(0, min(limit - offset, MAX_PAGE))
    principal = principal_of(request)
    rows, more = hub.collections.list(principal, request.query_params.getlist("owner"),
                                      request.query_params.getlist("item"), sort, offset, page)
    headers = {}
    if more and (limit is None or offset + len(rows) < limit):
        headers["Link"] = next_link(request, offset + len(rows))
    return JSONResponse([hub.collections.to_json(principal, c, listing=True) for c in rows], headers=headers)


@blocking
def get_collection(request: Request) -> Response:
    collection = _find(request)
    return JSONResponse(hub_of(request).collections.to_json(principal_of(request), collection))


async def create_collection(request: Request) -> Response:
    await run_sync(hub_of(request).collections.require_creator, principal_of(request))  # before the body
    body = json_object(await read_json(request))

    def run() -> Response:
        hub = hub_of(request)
        principal = principal_of(request)
        namespace = body.get("namespace")
        if namespace is not None and not isinstance(namespace, str):
            raise BadRequest("'namespace' must be a string")
        try:
            collection = hub.collections.create(principal, namespace, body.get("title"), body.get("description"),
                                                body.get("private", False))
        except CollectionExists as exc:
            return _conflict(exc)
        return JSONResponse(hub.collections.to_json(principal, collection))

    return await run_sync(run)


async def update_collection(request: Request) -> Response:
    collection = await run_sync(_find, request, True)
    body = json_object(await read_json(request))

    def run() -> Response:
        hub = hub_of(request)
        try:
            updated = hub.collections.update(principal_of(request), collection, body)
        except CollectionExists as exc:
            return _conflict(exc)
        return JSONResponse({"success": True, "data": hub.collections.to_json(principal_of(request), updated)})

    return await run_sync(run)


@blocking
def delete_collection(request: Request) -> Response:
    collection = _find(request, write=True)
    hub_of(request).collections.delete(collection)
    return JSONResponse({"success": True})


async def add_item(request: Request) -> Response:
    collection = await run_sync(_find, request, True)
    body = json_object(await read_json(request))

    def run() -> Response:
        hub = hub_of(request)
        principal = principal_of(request)
        hub.collections.add_item(principal, collection, body.get("item"), body.get("note"))
        return JSONResponse(hub.collections.to_json(principal, hub.collections.reload(collection)))

    return await run_sync(run)


async def update_item(request: Request) -> Response:
    collection = await run_sync(_find, request, True)
    body = json_object(await read_json(request))
    await run_sync(hub_of(request).collections.update_item, collection, param(request, "item_id"), body)
    return JSONResponse({"success": True})


@blocking
def delete_item(request: Request) -> Response:
    collection = _find(request, write=True)
    hub_of(request).collections.delete_item(collection, param(request, "item_id"))
    return JSONResponse({"success": True})
