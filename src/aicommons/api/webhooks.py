"""Webhook endpoints, as huggingface_hub's webhook methods call them (spec wave2-apis §3.1), and the
delivery log of a webhook (ours: ``GET /api/settings/webhooks/{id}/deliveries``).

A webhook is its owner's alone: to anyone else it answers like a missing one. Each request is
decided before its body is read.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from aicommons.api.http import blocking, hub_of, int_arg, json_object, param, principal_of, read_json, run_sync


def _find(request: Request, write: bool = False):
    return hub_of(request).webhooks.find(principal_of(request), param(request, "webhook_id"), write=write)


def _answer(request: Request, webhook) -> Response:
    return JSONResponse({"webhook": hub_of(request).webhooks.to_json(webhook)})


@blocking
def list_webhooks(request: Request) -> Response:
    hub = hub_of(request)
    return JSONResponse([hub.webhooks.to_json(w) for w in hub.webhooks.list(principal_of(request))])


async def create_webhook(request: Request) -> Response:
    await run_sync(hub_of(request).webhooks.require_owner, principal_of(request), True)  # before the body
    body = json_object(await read_json(request))
    webhook = await run_sync(hub_of(request).webhooks.create, principal_of(request), body)
    return _answer(request, webhook)


@blocking
def get_webhook(request: Request) -> Response:
    return _answer(request, _find(request))


async def update_webhook(request: Request) -> Response:
    webhook = await run_sync(_find, request, True)
    body = json_object(await read_json(request, default={}))
    return _answer(request, await run_sync(hub_of(request).webhooks.update, webhook, body))


@blocking
def enable_webhook(request: Request) -> Response:
    return _answer(request, hub_of(request).webhooks.set_disabled(_find(request, write=True), False))


@blocking
def disable_webhook(request: Request) -> Response:
    return _answer(request, hub_of(request).webhooks.set_disabled(_find(request, write=True), True))


@blocking
def delete_webhook(request: Request) -> Response:
    hub_of(request).webhooks.delete(_find(request, write=True))
    return JSONResponse({"success": True})


@blocking
def deliveries(request: Request) -> Response:
    hub = hub_of(request)
    webhook = _find(request)
    limit = int_arg(request, "limit", 50, minimum=1, maximum=200)
    return JSONResponse([hub.webhooks.delivery_json(d) for d in hub.webhooks.deliveries(webhook, limit)])
