"""Collection pages: the collection (with the owner's editing forms) and creating one. The list of a
user's or organisation's collections is on their profile page (``account.profile``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from aicommons.errors import BadRequest, HubError
from aicommons.hub.collections import ITEM_TYPES, THEMES, CollectionExists, slug_of
from aicommons.hub.policy import owned_refusal
from aicommons.web.browse import path_param
from aicommons.web.context import hub_of, page_handler
from aicommons.web.render import page


def _find(request: Request, write: bool = False):
    return hub_of(request).collections.find(request.state.web.principal, path_param(request, "ns"),
                                            path_param(request, "slug"), write=write)


def _show(request: Request, collection, status: int = 200, error: str | None = None) -> Response:
    hub = hub_of(request)
    principal = request.state.web.principal
    can_edit = owned_refusal(principal, collection.owner_id, collection.private, "Collection") is None
    return page(request, "collection.html", status=status, collection=collection, slug=slug_of(collection),
                items=hub.collections.item_views(principal, collection), can_edit=can_edit, error=error,
                item_types=ITEM_TYPES, themes=THEMES)


@page_handler
def collection_page(request: Request) -> Response:
    if request.method == "GET":
        return _show(request, _find(request))
    collection = _find(request, write=True)  # decided before the form is acted on
    hub = hub_of(request)
    principal = request.state.web.principal
    form = request.state.web.form
    action = form.get("action")
    try:
        if action == "delete":
            hub.collections.delete(collection)
            return RedirectResponse(f"/{collection.owner_name}", status_code=303)
        if action == "update":
            collection = hub.collections.update(principal, collection, {
                "title": form.get("title"), "description": form.get("description", ""),
                "private": form.get("visibility") == "private", "theme": form.get("theme") or None})
        elif action == "add":
            hub.collections.add_item(principal, collection, {"id": form.get("item_id", "").strip(),
                                                             "type": form.get("item_type", "")},
                                     form.get("note") or None)
        elif action == "note":
            hub.collections.update_item(collection, form.get("item", ""), {"note": form.get("note", "")})
        elif action in ("up", "down"):
            raw = form.get("position", "")
            if not raw.isdigit() or len(raw) > 6:
                raise BadRequest("Invalid position")
            position = int(raw) + (-1 if action == "up" else 1)
            hub.collections.update_item(collection, form.get("item", ""), {"position": max(0, position)})
        elif action == "remove":
            hub.collections.delete_item(collection, form.get("item", ""))
    except CollectionExists as exc:
        return _show(request, collection, 409, exc.message)
    except HubError as exc:
        if exc.status in (401, 403):
            raise
        return _show(request, collection, exc.status, exc.message)
    return RedirectResponse(f"/collections/{slug_of(hub.collections.reload(collection))}", status_code=303)


@page_handler(sign_in=True)
def new_collection(request: Request) -> Response:
    hub = hub_of(request)
    principal = request.state.web.principal
    owners = hub.accounts.writable_namespaces(principal)
    if request.method == "GET":
        return page(request, "collection_new.html", owners=owners, error=None)
    form = request.state.web.form
    try:
        collection = hub.collections.create(principal, form.get("owner") or None, form.get("title"),
                                            form.get("description") or None, form.get("visibility") == "private")
    except HubError as exc:
        return page(request, "collection_new.html", status=exc.status, owners=owners, error=exc.message)
    return RedirectResponse(f"/collections/{slug_of(collection)}", status_code=303)
