"""Getting in: first-run setup, sign-up (``/join``), e-mail verification, password reset.

The policies, throttling and what each answer may reveal are decided in ``hub/signup.py`` and
``hub/first_run.py``; these handlers only turn forms into calls and results into pages.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from aicommons.errors import HubError, NotFound, TooManyRequests
from aicommons.web import session
from aicommons.web.account import new_visitor
from aicommons.web.context import hub_of, page_handler
from aicommons.web.render import page

HONEYPOT = "website"  # a field people never see (CSS-hidden, not focusable); bots fill it in


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


def _refused(request: Request, template: str, exc: HubError, **context) -> Response:
    response = page(request, template, status=exc.status, error=exc.message, **context)
    if isinstance(exc, TooManyRequests):
        response.headers.update(exc.headers)
    return response


@page_handler
def setup(request: Request) -> Response:
    hub = hub_of(request)
    web = request.state.web
    token = web.form.get("token") if request.method == "POST" else request.query_params.get("token")
    hub.first_run.check(token)  # 404 without the token, and for good once an admin exists
    if request.method == "GET":
        return page(request, "setup.html", token=token, error=None, form={})
    form = web.form
    try:
        account = hub.first_run.complete(token, form.get("username", ""), form.get("email", ""),
                                         form.get("password", ""))
    except NotFound:
        raise
    except HubError as exc:
        return _refused(request, "setup.html", exc, token=token, form=form)
    hub.audit.record_account("setup: first administrator", account.name, _client(request))
    hub.sessions.end(web.session_id)
    response = RedirectResponse(f"/{account.name}", status_code=303)
    session.set_cookie(response, request, session.COOKIE, hub.sessions.start(account),
                       hub.settings.session_lifetime_seconds)
    new_visitor(request)
    return response


@page_handler
def join(request: Request) -> Response:
    hub = hub_of(request)
    web = request.state.web
    policy = hub.signup.policy
    invite = web.form.get("invite") if request.method == "POST" else request.query_params.get("invite")
    invitation = hub.signup.invite_for(invite) if invite else None
    context = {"policy": policy, "invite": invite or "", "invitation": invitation,
               "terms_url": hub.settings.terms_url}
    if request.method == "GET":
        return page(request, "join.html", error=None, form={"email": (invitation.email if invitation else None) or ""},
                    **context)
    form = web.form
    try:
        hub.signup.throttle(_client(request))
        if form.get(HONEYPOT):
            return page(request, "notice.html", title="Check your mail", message=_CHECK_MAIL)
        result = hub.signup.join(form.get("username", ""), form.get("email", ""), form.get("password", ""),
                                 invite=invite or None)
    except HubError as exc:
        return _refused(request, "join.html", exc, form=form, **context)
    if result.account is not None:
        hub.audit.record_account("sign-up", result.account.name, _client(request))
    message = _CHECK_MAIL + (_PENDING if result.status == "pending" else "")
    return page(request, "notice.html", title="Check your mail", message=message)


_CHECK_MAIL = ("We sent a mail to the address you gave. Follow its link within 24 hours to verify the address; "
               "until then you can sign in and look around, but not create repos, write tokens or discussions.")
_PENDING = " An administrator will also review your request: we will mail you when it is approved."


@page_handler
def verify_email(request: Request) -> Response:
    hub = hub_of(request)
    web = request.state.web
    if request.method == "GET":
        token = request.query_params.get("token")
        if hub.signup.live_link(token, "verify") is None:
            raise NotFound("This link is invalid, was already used or has expired")
        return page(request, "verify.html", token=token)
    account = hub.signup.verify_email(web.form.get("token"))
    hub.audit.record_account("e-mail verified", account.name, _client(request))
    return page(request, "notice.html", title="Address verified",
                message=f"Thank you, {account.name}: your e-mail address is verified.", sign_in=web.principal.is_anonymous)


@page_handler(sign_in=True)
def resend_verification(request: Request) -> Response:
    hub = hub_of(request)
    account = request.state.web.principal.account
    try:
        hub.signup.throttle(_client(request))
    except TooManyRequests as exc:
        return _refused(request, "notice.html", exc, title="Too many attempts", message=exc.message)
    hub.signup.send_verification(account)
    return page(request, "notice.html", title="Check your mail",
                message=f"We sent a new verification link to {account.email}.")


@page_handler
def password_reset(request: Request) -> Response:
    hub = hub_of(request)
    web = request.state.web
    token = web.form.get("token") if request.method == "POST" else request.query_params.get("token")
    if not token:  # ask for a link
        if request.method == "GET":
            return page(request, "reset.html", token=None, error=None)
        try:
            hub.signup.throttle(_client(request))
        except TooManyRequests as exc:
            return _refused(request, "reset.html", exc, token=None)
        hub.signup.request_reset(web.form.get("email", ""))
        return page(request, "notice.html", title="Check your mail",
                    message="If an account has this address, we sent it a link to choose a new password. "
                            "It works once, within one hour.")
    if hub.signup.live_link(token, "reset") is None:
        raise NotFound("This link is invalid, was already used or has expired")
    if request.method == "GET":
        return page(request, "reset.html", token=token, error=None)
    try:
        account = hub.signup.reset_password(token, web.form.get("password", ""))
    except NotFound:
        raise
    except HubError as exc:
        return _refused(request, "reset.html", exc, token=token)
    hub.audit.record_account("password reset", account.name, _client(request))
    return page(request, "notice.html", title="Password changed",
                message=f"The password of {account.name} is changed, and every session of the account has ended.",
                sign_in=True)


INVITE_DAYS = (1, 7, 30)


@page_handler(sign_in=True)
def invites(request: Request) -> Response:
    """Site admins and organisation admins make sign-up links (the admin CLI: ``aicommons invite``)."""
    from datetime import timedelta

    from aicommons.errors import Forbidden

    hub = hub_of(request)
    principal = request.state.web.principal
    if not hub.signup.may_invite(principal):
        raise Forbidden("Only site administrators and organisation administrators can invite people")
    created, error, status = None, None, 200
    if request.method == "POST":
        form = request.state.web.form
        days = int(form["days"]) if form.get("days", "").isdigit() and int(form["days"]) in INVITE_DAYS else 7
        try:
            created = hub.signup.create_invite(principal, email=form.get("email", "").strip() or None,
                                               ttl=timedelta(days=days))
        except HubError as exc:
            error, status = exc.message, exc.status
    mine = [i for i in hub.signup.invites() if principal.is_admin or i.created_by == principal.name]
    return page(request, "invites.html", status=status, created=created, error=error, invites=mine,
                days=INVITE_DAYS, policy=hub.signup.policy)
