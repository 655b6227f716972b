"""The signed-in user's own settings: ``/settings/profile`` (name, bio, homepage, avatar) and
``/settings/account`` (password, sessions, export, deletion); avatars at ``/avatars/{user}``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from aicommons.errors import HubError, NotFound
from aicommons.hub.access import anonymous
from aicommons.web.browse import path_param
from aicommons.web.context import hub_of, page_handler
from aicommons.web.render import page


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


@page_handler(sign_in=True, uploads=lambda settings: settings.max_avatar_bytes)
def profile_settings(request: Request) -> Response:
    hub = hub_of(request)
    web = request.state.web
    me = web.principal.account
    error = notice = None
    status = 200
    if request.method == "POST":
        action = web.form.get("action")
        try:
            if action == "profile":
                hub.profiles.update(me, web.form.get("fullname", ""), web.form.get("bio", ""),
                                    web.form.get("homepage", ""))
                notice = "Profile saved."
            elif action == "avatar":
                if "avatar" not in web.files:
                    raise HubError("Choose an image to upload", status=400)
                hub.profiles.set_avatar(me, web.files["avatar"])
                notice = "Avatar saved."
            elif action == "remove-avatar":
                hub.profiles.remove_avatar(me)
                notice = "Avatar removed."
        except HubError as exc:
            error, status = exc.message, exc.status
    account = hub.accounts.by_id(me.id) or me
    return page(request, "settings_profile.html", status=status, account=account, error=error, notice=notice,
                has_avatar=hub.profiles.has_avatar(account), max_avatar_bytes=hub.settings.max_avatar_bytes)


@page_handler(sign_in=True)
def account_settings(request: Request) -> Response:
    hub = hub_of(request)
    web = request.state.web
    me = web.principal.account
    error = notice = None
    status = 200
    if request.method == "POST":
        action = web.form.get("action")
        try:
            if action == "password":
                if web.form.get("new_password", "") != web.form.get("confirm_password", ""):
                    raise HubError("The two new passwords differ", status=400)
                ended = hub.account_settings.change_password(me, web.form.get("current_password", ""),
                                                             web.form.get("new_password", ""), web.session_id,
                                                             _client(request))
                notice = f"Password changed; {ended} other session(s) signed out."
            elif action == "email":
                sent_to = hub.email_changes.request(me, web.form.get("new_email", ""), web.form.get("password", ""),
                                                    _client(request))
                notice = (f"We sent a link to {sent_to}. Your address changes when you follow it "
                          f"(within 24 hours); until then it stays {me.email or 'unset'}.")
            elif action == "end-session":
                hub.account_settings.end_session(me, web.form.get("session", ""))
                notice = "Session signed out."
        except HubError as exc:
            error, status = exc.message, exc.status
    return page(request, "settings_account.html", status=status, account=me, error=error, notice=notice,
                sessions=hub.account_settings.sessions_of(me, web.session_id))


async def avatar(request: Request) -> Response:
    from aicommons.http_common import run_sync

    hub = hub_of(request)
    content_type, data = await run_sync(hub.profiles.avatar, path_param(request, "user"))
    return Response(data, media_type=content_type, headers={
        "Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'", "Content-Disposition": "inline; filename=avatar.png"})


@page_handler(sign_in=True)
def export_data(request: Request) -> Response:
    """POST only (with the form's CSRF token): the zip of ``hub/account_export.py``."""
    hub = hub_of(request)
    me = request.state.web.principal.account
    data = hub.account_export.zip(me.id)
    return Response(data, media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="aicommons-{me.name}-data.zip"'})


@page_handler(sign_in=True)
def delete_account(request: Request) -> Response:
    from aicommons.hub.account_deletion import repo_key
    from aicommons.web import session

    hub = hub_of(request)
    web = request.state.web
    me = web.principal.account
    plan = hub.account_deletion.plan(me.name)
    error, status = None, 200
    if request.method == "POST":
        try:
            if web.form.get("confirm", "") != me.name:
                raise HubError("Type your user name to confirm", status=400)
            hub.account_settings.confirm_password(me, web.form.get("password", ""), _client(request))
            hub.account_deletion.delete(me.name, {repo_key(r): web.form.get(f"repo:{repo_key(r)}", "")
                                                  for r in plan.repos}, reason="deleted by its owner")
        except HubError as exc:
            error, status = exc.message, exc.status
            plan = hub.account_deletion.plan(me.name)
        else:
            request.state.web.principal = anonymous(_client(request))  # the page is shown signed out
            response = page(request, "account_deleted.html", title="Account deleted",
                            message=f"The account {me.name} is deleted and its name retired.")
            response.delete_cookie(session.COOKIE, path="/")
            return response
    return page(request, "settings_delete.html", status=status, account=me, plan=plan, error=error,
                notice=None, repo_key=repo_key)


@page_handler
def confirm_email(request: Request) -> Response:
    """The link mailed to a new address: GET shows what it will do, the button (POST) does it, so a
    mail scanner that opens links does not use it up."""
    hub = hub_of(request)
    web = request.state.web
    token = (web.form.get("token") if request.method == "POST" else request.query_params.get("token")) or ""
    if request.method == "GET":
        return page(request, "email_confirm.html", token=token, new_email=hub.email_changes.pending(token), done=None)
    account = hub.email_changes.confirm(token)
    return page(request, "email_confirm.html", token="", new_email=account.email, done=True)


@page_handler(sign_in=True)
def storage_settings(request: Request) -> Response:
    """What the signed-in user and each of their organisations store, against their quotas
    (``hub/storage_usage.py``: the figures of the last accounting run, the used bytes live)."""
    owners = hub_of(request).storage.overview(request.state.web.principal)
    return page(request, "settings_storage.html", owners=owners, error=None, notice=None,
                refresh_minutes=hub_of(request).settings.storage_accounting_minutes)


@page_handler(sign_in=True)
def upstream_settings(request: Request) -> Response:
    """``/settings/upstream``: link your account on the upstream hub(s) of the pull-through mirror
    (hub/upstream_links.py), so that gated and private upstream repos upstream granted you are served
    to you here. The token is checked upstream, stored encrypted, never shown back."""
    hub = hub_of(request)
    links = hub.upstream.links if hub.upstream is not None else None
    if links is None:
        raise NotFound("This hub mirrors no upstream hub")
    web = request.state.web
    error = notice = None
    status = 200
    if request.method == "POST":
        url = web.form.get("upstream", "")
        try:
            if web.form.get("action") == "link":
                name = links.link(web.principal, url, web.form.get("token", ""))
                notice = f"Linked to {name} on {url}."
            elif web.form.get("action") == "unlink":
                notice = f"Unlinked from {url}." if links.unlink(web.principal, url) else "It was not linked."
        except HubError as exc:
            error, status = exc.message, exc.status
    return page(request, "settings_upstream.html", status=status, upstreams=links.linked(web.principal),
                error=error, notice=notice)
