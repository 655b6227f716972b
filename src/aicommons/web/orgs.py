"""Organisation pages: creating one (``/organizations/new``, hub/accounts.py decides), members and roles, invitations, join requests (``/organizations/{org}/members``),
single sign-on group mappings and CI trust policies (``/organizations/{org}/settings/sign-in``), and
accepting an invitation (``/invitations/{token}``). Every decision is hub/orgs.py's and
hub/org_trust.py's."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from aicommons.errors import HubError
from aicommons.hub.access import ORG_ROLES
from aicommons.hub.token_scopes import LABELS, PERMISSIONS
from aicommons.web.browse import path_param
from aicommons.web.context import hub_of, page_handler
from aicommons.web.render import page


@page_handler(sign_in=True)
def new_org(request: Request) -> Response:
    """The Hub's *New organization*: name and full name; the creator becomes its admin. As ``/new``,
    an account that may not create repos yet (e-mail not verified, approval pending) sees why first."""
    hub = hub_of(request)
    principal = request.state.web.principal
    blocked: str | None = None
    if not (principal.is_admin or hub.accounts.org_self_service):
        blocked = "On this hub only a site administrator creates organizations: ask one"
    elif not principal.can_write_at_all:
        blocked = principal.read_only_reason("create organizations")
    shown: dict[str, Any] = dict(blocked=blocked, unverified=not principal.user.email_verified, name="",
                                 fullname="")
    if request.method == "GET":
        return page(request, "org_new.html", error=None, **shown)
    form = request.state.web.form
    shown.update(name=form.get("name", ""), fullname=form.get("fullname", ""))
    try:
        org = hub.accounts.create_own_org(principal, form.get("name", ""), form.get("fullname", ""))
    except HubError as exc:
        return page(request, "org_new.html", exc.status, error=exc.message, **shown)
    hub.audit.record_action(principal.user.name, request.client.host if request.client else None,
                            "organization created", org.name)
    return RedirectResponse(f"/organizations/{quote(org.name)}/members?created=1", status_code=303)


@page_handler
def members(request: Request) -> Response:
    hub = hub_of(request)
    web = request.state.web
    principal = web.principal
    name = path_param(request, "org")
    org = hub.orgs.require(name, "org")
    notice, error, status, link = None, None, 200, None
    if request.method == "GET" and request.query_params.get("created") and hub.orgs.may_manage(principal, org):
        notice = f"{org.name} is created and you are its admin: invite its members below"
    if request.method == "POST":
        form = web.form
        action = form.get("action")
        try:
            if action == "role":
                hub.orgs.set_role(principal, org.name, form.get("user", ""), form.get("role", ""))
                notice = f"{form.get('user')} is now {form.get('role')}"
            elif action == "remove":
                hub.orgs.remove(principal, org.name, form.get("user", ""))
                leaving = principal.account is not None and principal.account.name == form.get("user")
                notice = f"{form.get('user')} left {org.name}" if leaving else \
                    f"{form.get('user')} was removed from {org.name}"
            elif action == "invite":
                token, invitation = hub.orgs.invite(principal, org.name, form.get("role", "read"), form.get("email"))
                link = hub.mail.link(f"/invitations/{token}")
                notice = (f"Invitation e-mailed to {invitation.email}; it is also this link" if invitation.email
                          else "Invitation created: send this link")
            elif action == "revoke-invitation" and form.get("id", "").isdigit():
                hub.orgs.revoke_invitation(principal, org.name, int(form["id"]))
                notice = "Invitation revoked"
            elif action == "ask":
                hub.orgs.request_to_join(principal, org.name)
                notice = f"You asked to join {org.name}; its admins will decide"
            elif action in ("accept", "decline"):
                hub.orgs.decide_join_request(principal, org.name, form.get("user", ""), action == "accept",
                                             form.get("role", "read"))
                notice = f"{form.get('user')} {'joined' if action == 'accept' else 'was declined'}"
            else:
                raise HubError("Unknown action", status=400)
        except HubError as exc:
            error, status = exc.message, exc.status
        # The page below reads roles afresh (a session's principal was built before the change).
        if principal.account is not None:
            principal = hub.accounts.principal_for_account(principal.account)
    admin = hub.orgs.may_manage(principal, org)
    listed = hub.orgs.members(org.name)
    me = principal.account
    is_member = me is not None and any(u.id == me.id for u, _ in listed)
    return page(request, "org_members.html", status=status, org=org, members=listed, admin=admin,
                is_member=is_member, roles=ORG_ROLES, notice=notice, error=error, link=link,
                invitations=hub.orgs.invitations(principal, org.name) if admin else [],
                join_requests=hub.orgs.join_requests(principal, org.name) if admin else [])


@page_handler
def invitation(request: Request) -> Response:
    hub = hub_of(request)
    web = request.state.web
    token = path_param(request, "token")
    if web.principal.is_anonymous:
        return RedirectResponse(f"/login?next={quote('/invitations/' + token)}", status_code=303)
    try:
        found, org = hub.orgs.find_invitation(token)
        if request.method == "POST":
            org = hub.orgs.accept(web.principal, token)
            return RedirectResponse(f"/organizations/{org.name}/members", status_code=303)
    except HubError as exc:
        return page(request, "invitation.html", status=exc.status, error=exc.message, org=None, invitation=None)
    return page(request, "invitation.html", error=None, org=org, invitation=found)


@page_handler(sign_in=True)
def sign_in_settings(request: Request) -> Response:
    hub = hub_of(request)
    web = request.state.web
    principal = web.principal
    org = hub.orgs.require_manager(principal, path_param(request, "org"), read_only=request.method == "GET")
    trust = hub.org_trust
    notice, error, status = None, None, 200
    if request.method == "POST":
        form = web.form
        action = form.get("action")
        try:
            if action == "add-group":
                trust.add_group_role(principal, org.name, form.get("group", ""), form.get("role", ""))
                notice = f"Members of {form.get('group', '').strip()} get the role {form.get('role')} at their next sign-in"
            elif action == "delete-group" and form.get("id", "").isdigit():
                trust.delete_group_role(principal, org.name, int(form["id"]))
                notice = "Group mapping removed"
            elif action == "add-policy":
                trust.add_trust_policy(principal, org.name, form.get("issuer", ""), form.get("subject", ""),
                                       form.get("repos", "").splitlines(),
                                       [p for p in PERMISSIONS["repo"] if form.get(f"perm_{p}")],
                                       form.get("audience"))
                notice = "Trust policy added"
            elif action == "delete-policy" and form.get("id", "").isdigit():
                trust.delete_trust_policy(principal, org.name, int(form["id"]))
                notice = "Trust policy removed"
            else:
                raise HubError("Unknown action", status=400)
        except HubError as exc:
            error, status = exc.message, exc.status
    return page(request, "org_sign_in.html", status=status, org=org, notice=notice, error=error, roles=ORG_ROLES,
                sso_enabled=hub.sso.enabled, groups=trust.org_group_roles(principal, org.name),
                operator_groups=trust.operator_group_roles(org.name),
                policies=trust.org_trust_policies(principal, org.name),
                operator_policies=trust.operator_trust_policies(org.name),
                permissions=[(p, LABELS[p]) for p in PERMISSIONS["repo"]])
