"""``/admin``: site administration for site admins (users with search; approve pending sign-ups,
suspend, unsuspend, delete, make or unmake admin; invites). Anyone else gets the "not found" page,
as if there were no such page. Each action is its own URL, ``POST /admin/users/{user}/{action}``, so
the audit log's entry (method and path, with the admin as actor) names the action and its target.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from aicommons.errors import BadRequest, HubError, NotFound
from aicommons.web.browse import path_param
from aicommons.web.context import hub_of, page_handler
from aicommons.web.render import page

PAGE_SIZE = 50
ACTIONS = ("approve", "suspend", "unsuspend", "delete", "make-admin", "remove-admin")


def _require_admin(request: Request):
    principal = request.state.web.principal
    if not principal.is_admin:
        raise NotFound("Page not found")
    return principal


def _render(request: Request, status: int = 200, error: str | None = None, notice: str | None = None) -> Response:
    from aicommons.hub.account_deletion import DELETE

    hub = hub_of(request)
    query = request.query_params.get("q", "")
    asked = request.query_params.get("start", "0")
    start = int(asked) if asked.isdigit() else 0
    users, total = hub.accounts.search_users(query, start, PAGE_SIZE)
    admin_orgs = {u.name: hub.account_deletion.plan(u.name).admin_orgs for u in users}
    return page(request, "admin.html", status=status, users=users, total=total, q=query, start=start,
                page_size=PAGE_SIZE, error=error, notice=notice, admin_orgs=admin_orgs, delete_choice=DELETE,
                pending=_pending(hub), invites=_invites(hub))


def _pending(hub) -> list:
    return hub.accounts.pending_users()


def _invites(hub) -> list:
    return hub.signup.invites()


@page_handler
def admin_page(request: Request) -> Response:
    _require_admin(request)
    return _render(request)


@page_handler
def admin_user_action(request: Request) -> Response:
    me = _require_admin(request)
    hub = hub_of(request)
    name, action = path_param(request, "user"), path_param(request, "action")
    if action not in ACTIONS:
        raise NotFound("Page not found")
    form = request.state.web.form
    try:
        user = hub.accounts.require(name, kind="user")
        if user.id == me.account.id and action in ("suspend", "delete", "remove-admin"):
            raise BadRequest("Not on yourself from this page: ask another admin, or use your own settings")
        if action == "approve":
            hub.signup.approve(user.name)
            notice = f"Approved {user.name}; they were told by e-mail."
        elif action == "suspend":
            hub.accounts.suspend(user.name)
            notice = f"Suspended {user.name}: signed out everywhere, password and tokens refused."
        elif action == "unsuspend":
            hub.accounts.unsuspend(user.name)
            notice = f"{user.name} may sign in again."
        elif action in ("make-admin", "remove-admin"):
            hub.accounts.set_admin(user.name, action == "make-admin")
            notice = f"{user.name} is {'now' if action == 'make-admin' else 'no longer'} a site admin."
        else:
            if form.get("confirm", "") != user.name:
                raise BadRequest(f"Type {user.name} to confirm the deletion")
            from aicommons.hub.account_deletion import repo_key

            plan = hub.account_deletion.plan(user.name)
            choice = form.get("repos", "")
            hub.account_deletion.delete(user.name, {repo_key(r): choice for r in plan.repos},
                                        reason=f"deleted by the site admin {me.name}")
            notice = f"Deleted {user.name} ({len(plan.repos)} repo(s) {'deleted' if choice == 'delete' else 'transferred'})."
    except HubError as exc:
        return _render(request, status=exc.status, error=exc.message)
    return _render(request, notice=notice)


@page_handler
def dashboard_page(request: Request) -> Response:
    """``/admin/dashboard``: charts from the rollups (``hub/dashboard.py``), never from big tables."""
    _require_admin(request)
    board = hub_of(request).dashboard.view()
    return page(request, "admin_dashboard.html", board=board, model_rows=[(m.model, m.requests) for m in board.models])
