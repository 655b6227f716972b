"""Signing in and out, access tokens, creating repos, repo settings, user pages."""

from __future__ import annotations

from urllib.parse import urlparse

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from aicommons.errors import BadRequest, Forbidden, HubError, NotFound, TooManyRequests, Unauthorized
from aicommons.hub.collections import slug_of
from aicommons.hub.policy import Action
from aicommons.hub.repos import RepoQuery
from aicommons.hub.token_scopes import COLLECTIONS_WRITE
from aicommons.web import session
from aicommons.web.browse import find_repo, path_param
from aicommons.web.context import hub_of, page_handler
from aicommons.web.render import page, repo_path


def _safe_next(target: str | None) -> str:
    """Only local paths: an open redirect would let a link send people elsewhere after sign-in."""
    if not target or not target.startswith("/") or target.startswith("//") or urlparse(target).netloc:
        return "/"
    return target


@page_handler
def login(request: Request) -> Response:
    if request.method == "GET":
        return page(request, "login.html", error=None, next=_safe_next(request.query_params.get("next")))
    web = request.state.web
    form = web.form
    hub = hub_of(request)
    client = request.client.host if request.client else None
    try:
        principal = hub.accounts.principal_for_password(form.get("username", ""), form.get("password", ""),
                                                        ip=client, via="web")
    except TooManyRequests as exc:
        response = page(request, "login.html", status=429, error=exc.message, next=_safe_next(form.get("next")))
        response.headers.update(exc.headers)
        return response
    except Unauthorized:
        return page(request, "login.html", status=401, error="Wrong user name or password",
                    next=_safe_next(form.get("next")))
    except Forbidden as exc:  # right password, but the account awaits approval
        return page(request, "login.html", status=403, error=exc.message, next=_safe_next(form.get("next")))
    hub.sessions.end(web.session_id)  # a session id fixed before sign-in never becomes a signed-in one
    response = RedirectResponse(_safe_next(form.get("next")), status_code=303)
    session.set_cookie(response, request, session.COOKIE, hub.sessions.start(principal.account),
                       hub.settings.session_lifetime_seconds)
    new_visitor(request)
    return response


@page_handler
def logout(request: Request) -> Response:
    hub_of(request).sessions.end(request.state.web.session_id)  # the cookie is worthless from now on
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(session.COOKIE, path="/")
    new_visitor(request)
    return response


def new_visitor(request: Request) -> None:
    """A new visitor id (and so new CSRF tokens) when someone signs in or out."""
    web = request.state.web
    web.visitor, web.new_visitor = session.new_visitor_id(), True


@page_handler(sign_in=True)
def new_repo(request: Request) -> Response:
    hub = hub_of(request)
    principal = request.state.web.principal
    owners = hub.accounts.writable_namespaces(principal)
    # Why this account cannot create repos (e-mail not verified, approval pending), said before the
    # form is filled in; the refusal itself stays in hub.repos.create.
    blocked = None if principal.account is None or principal.can_write_at_all else \
        principal.read_only_reason("create repos")
    unverified = principal.account is not None and not principal.account.email_verified
    shown = dict(owners=owners or ([principal.account.name] if blocked and principal.account else []),
                 blocked=blocked, unverified=unverified)
    if request.method == "GET":
        return page(request, "new.html", error=None, **shown)
    form = request.state.web.form
    try:
        repo, created = hub.repos.create(principal, form.get("type", "model"), form.get("name", ""),
                                         form.get("owner") or None, form.get("visibility") == "private")
    except HubError as exc:
        return page(request, "new.html", status=exc.status, error=exc.message, **shown)
    if not created:
        return page(request, "new.html", status=409, error=f"{repo.full_id} already exists", **shown)
    return RedirectResponse(repo_path(repo.type, repo.full_id), status_code=303)


@page_handler
def repo_settings(request: Request) -> Response:
    hub = hub_of(request)
    principal = request.state.web.principal
    repo = find_repo(request)
    repo = hub.repos.find(repo.type, repo.full_id, principal, action=Action.ADMIN)
    if request.method == "POST":
        form = request.state.web.form
        if form.get("action") == "delete":
            if form.get("confirm") != repo.full_id:
                return page(request, "settings.html", status=400, repo=repo,
                            error="Type the full repo id to confirm the deletion")
            hub.repos.delete(principal, repo.type, repo.full_id)
            return RedirectResponse("/", status_code=303)
        if form.get("action") == "viewer-branches" and repo.type == "dataset":
            try:  # the branches converted besides the default one (hub/parquet_export.py)
                hub.parquet.set_branches(repo, (form.get("branches") or "").split(","))
            except BadRequest as exc:
                return page(request, "settings.html", status=400, repo=repo, error=exc.message,
                            viewer_branches=hub.parquet.branches(repo), branches_value=form.get("branches") or "")
            return RedirectResponse(f"{repo_path(repo.type, repo.full_id)}/settings", status_code=303)
        gated = form.get("gated", "false")
        hub.repos.update_settings(principal, repo, form.get("visibility") == "private",
                                  False if gated == "false" else gated)
        return RedirectResponse(f"{repo_path(repo.type, repo.full_id)}/settings", status_code=303)
    branches = hub.parquet.branches(repo) if repo.type == "dataset" else {}
    return page(request, "settings.html", repo=repo, error=None, viewer_branches=branches,
                branches_value=", ".join(branches))


PROFILE_REPOS = 30


@page_handler
def profile(request: Request) -> Response:
    hub = hub_of(request)
    name = path_param(request, "user")
    account = hub.accounts.find(name)
    if account is None:
        raise NotFound(f"No user or organization named {name}")
    principal = request.state.web.principal
    if request.method == "POST":  # follow or stop following (the hub decides who may: signed in, not oneself)
        hub.orgs.follow(principal, account.name, request.state.web.form.get("follow") == "1")
        return RedirectResponse(f"/{account.name}", status_code=303)
    # Each kind's most recently updated repos, with a link to the full listing when there are more.
    repos = {t: hub.repos.search(principal, RepoQuery(type=t, author=account.name, sort="lastModified",
                                                      limit=PROFILE_REPOS)) for t in ("model", "dataset", "space")}
    collections, _ = hub.collections.list(principal, [account.name], [], "position", 0, 100)
    # Organisations list their members and users their organisations, public as on the Hub
    # (GET /api/organizations/{org}/members).
    people = [m for m, _ in hub.orgs.members(account.name)] if account.kind == "org" \
        else [o for o, _ in hub.orgs.orgs_of(account)]
    return page(request, "profile.html", account=account, repos=repos, collections=collections, people=people,
                can_create_collection=principal.can_write_owner(account.id, COLLECTIONS_WRITE), slug_of=slug_of,
                has_avatar=hub.profiles.has_avatar(account), followers=len(hub.orgs.followers(account)),
                following=hub.orgs.is_following(principal, account))
