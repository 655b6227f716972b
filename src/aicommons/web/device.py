"""The device login approval page (``/device``): a signed-in user approves or denies the code the
CLI shows (hub/device_login.py)."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from aicommons.errors import HubError
from aicommons.web.context import hub_of, page_handler
from aicommons.web.render import page


@page_handler
def device(request: Request) -> Response:
    hub = hub_of(request)
    web = request.state.web
    user_code = (web.form.get("user_code") if request.method == "POST" else request.query_params.get("user_code")) or ""
    if web.principal.is_anonymous:  # sign in first, and come back to this very code
        back = "/device" + (f"?user_code={quote(user_code)}" if user_code else "")
        return RedirectResponse(f"/login?next={quote(back)}", status_code=303)
    if not user_code:
        return page(request, "device.html", code=None, error=None, done=None)
    try:
        if request.method == "POST":
            action = web.form.get("action")
            if action not in ("approve", "deny"):
                raise HubError("Choose Approve or Deny", status=400)
            code = hub.device_login.decide(user_code, web.principal.account, action == "approve",
                                           web.form.get("role", "write"))
            return page(request, "device.html", code=code, error=None, done=action)
        code = hub.device_login.pending(user_code)
    except HubError as exc:
        return page(request, "device.html", status=exc.status, code=None, error=exc.message, done=None)
    return page(request, "device.html", code=code, error=None, done=None)
