"""Per-request context of a web page: who is signed in (from the session cookie) and the CSRF
token of their forms. Web handlers are synchronous and run in the thread pool."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from aicommons.errors import BadRequest, Forbidden, PayloadTooLarge
from aicommons.http_common import hub_of, run_sync
from aicommons.hub.access import Principal, anonymous
from aicommons.hub.policy import SIGN_IN_TO
from aicommons.web import session

MAX_FORM_BYTES = 1024 * 1024


@dataclass
class WebContext:
    principal: Principal
    csrf: str
    session_id: str | None  # the session cookie's value (live or not)
    visitor: str  # the visitor id the CSRF token is bound to (web/session.py)
    form: dict
    new_visitor: bool = False  # the response must set the visitor cookie
    files: dict = field(default_factory=dict)  # name -> bytes of an uploaded file (pages with ``uploads``)
    uploads: list = field(default_factory=list)  # every uploaded file: (field name, file name, bytes)


__all__ = ["WebContext", "error_page", "hub_of", "page_handler"]  # hub_of: web modules import it from here


def page_handler(handler: Callable[[Request], Response] | None = None, *, sign_in: bool = False,
                 uploads: Callable | None = None):
    """Wrap a synchronous page handler: session → principal, form parsing, Origin and CSRF checks
    on POST. Pages are personal (who is signed in, the visitor's CSRF token): never cached.

    With ``sign_in=True`` an anonymous visitor is sent to the sign-in page (and back afterwards).
    ``uploads(settings)``: the most file bytes this page accepts (multipart forms, all files together);
    the file's bytes are in ``web.files`` (the last of each field) and ``web.uploads`` (all), read only
    after the CSRF check. Without it uploaded files are ignored.
    """
    if handler is None:
        return functools.partial(page_handler, sign_in=sign_in, uploads=uploads)

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        request.scope["aicommons.web"] = True  # errors render as HTML pages
        hub = hub_of(request)
        key = hub.web_key
        session_id = request.cookies.get(session.COOKIE)
        visitor = session.visitor_id(request)
        form: dict = {}
        files: dict = {}
        uploaded: list = []
        if request.method == "POST":
            if not session.same_origin(request, hub.settings.public_url):
                raise Forbidden("This form was sent from another site")
            file_limit = uploads(hub.settings) if uploads else 0
            declared = request.headers.get("content-length", "0")
            if declared.isdigit() and int(declared) > MAX_FORM_BYTES + file_limit:
                raise PayloadTooLarge("Form too large")
            data = await request.form()
            form = {k: v for k, v in data.items() if isinstance(v, str)}
            if any("\x00" in v for v in form.values()):  # no backend stores NUL (PostgreSQL: a 500)
                raise BadRequest("A NUL character is not allowed in a form")
            if not session.check_csrf(key, visitor, form.get("csrf")):
                raise Forbidden("The form expired or did not come from this site: reload the page and retry")
            left = file_limit
            for name, value in data.multi_items() if file_limit else ():
                if not isinstance(value, str) and value.filename:
                    content = await value.read(left + 1)
                    if len(content) > left:
                        raise PayloadTooLarge(f"The files are larger than {file_limit} bytes")
                    left -= len(content)
                    files[name] = content
                    uploaded.append((name, value.filename, content))

        def run() -> Response:
            account = hub.sessions.account_for(session_id)
            client = request.client.host if request.client else None
            principal = hub.accounts.principal_for_account(account) if account else anonymous(client)
            if account is not None:
                request.state.principal = principal  # the audit log names who sent a form (api/middleware.py)
            new_visitor = visitor is None
            current = visitor or session.new_visitor_id()
            request.state.web = WebContext(principal, session.csrf_token(key, current), session_id, current, form,
                                           new_visitor, files, uploaded)
            if sign_in and principal.is_anonymous:
                response = RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
            else:
                response = handler(request)
            web = request.state.web  # a handler may have issued a new visitor id (sign-in, sign-out)
            if web.new_visitor:
                session.set_cookie(response, request, session.VISITOR_COOKIE, web.visitor,
                                   hub.settings.session_lifetime_seconds)
            sets_session = any(v.startswith(f"{session.COOKIE}=") for v in response.headers.getlist("set-cookie"))
            if session_id and account is None and not sets_session:
                response.delete_cookie(session.COOKIE, path="/")  # ended or expired: forget it
            response.headers.setdefault("Cache-Control", "no-store")
            return response

        return await run_sync(run)

    return endpoint


def error_page(request: Request, status: int, message: str) -> Response:
    """An HTML error page. A repo one may not see is simply "not found", also when anonymous."""
    if status == 401 and (message == "Repository not found" or message.startswith(SIGN_IN_TO)):
        status, message = 404, "Repository not found"
    from starlette.responses import HTMLResponse

    from aicommons.web.render import env

    web = getattr(request.state, "web", None)
    html = env.get_template("error.html").render(
        request=request, me=web.principal.account if web else None, csrf=web.csrf if web else "",
        status=status, message=message)
    return HTMLResponse(html, status_code=status)
