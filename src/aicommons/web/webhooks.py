"""Webhook pages: one's webhooks with a form to add one, and each webhook's page with its delivery
log (status, time, response), enable/disable and delete."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from aicommons.errors import HubError
from aicommons.hub.webhooks import DOMAINS, WATCH_KINDS
from aicommons.web.browse import path_param
from aicommons.web.context import hub_of, page_handler
from aicommons.web.render import page


def _watched(text: str) -> list[dict]:
    """``type name`` per line (``model alice/bert``, ``org acme``)."""
    out = []
    for line in text.splitlines():
        kind, _, name = line.strip().partition(" ")
        if kind:
            out.append({"type": kind, "name": name.strip()})
    return out


@page_handler(sign_in=True)
def webhooks(request: Request) -> Response:
    hub = hub_of(request)
    principal = request.state.web.principal
    error = None
    if request.method == "POST":
        form = request.state.web.form
        try:
            webhook = hub.webhooks.create(principal, {
                "url": form.get("url", "").strip(), "watched": _watched(form.get("watched", "")),
                "domains": [d for d in DOMAINS if form.get(f"domain_{d}")] or None,
                "secret": form.get("secret") or None})
        except HubError as exc:
            if exc.status in (401, 403):
                raise
            error = exc.message
        else:
            return RedirectResponse(f"/settings/webhooks/{webhook.id}", status_code=303)
    return page(request, "webhooks.html", status=400 if error else 200, webhooks=hub.webhooks.list(principal),
                error=error, kinds=WATCH_KINDS, domains=DOMAINS)


@page_handler(sign_in=True)
def webhook(request: Request) -> Response:
    hub = hub_of(request)
    principal = request.state.web.principal
    found = hub.webhooks.find(principal, path_param(request, "webhook_id"), write=request.method == "POST")
    if request.method == "POST":
        action = request.state.web.form.get("action")
        if action == "delete":
            hub.webhooks.delete(found)
            return RedirectResponse("/settings/webhooks", status_code=303)
        if action in ("enable", "disable"):
            hub.webhooks.set_disabled(found, action == "disable")
        return RedirectResponse(f"/settings/webhooks/{found.id}", status_code=303)
    return page(request, "webhook.html", webhook=found, deliveries=hub.webhooks.deliveries(found))
