"""Users and organisations: overviews, members, followers and following in the Hub's JSON, follow
and unfollow; membership management (roles, removal, invitations, join requests)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from aicommons.api.http import (
    base_url,
    blocking,
    hub_of,
    int_arg,
    json_object,
    next_link,
    param,
    principal_of,
    read_json,
    run_sync,
)
from aicommons.errors import BadRequest

PAGE = 500


def _page(request: Request, accounts: list, render) -> Response:
    """A page of ``User`` entries (an array) with a ``Link: rel="next"`` when more follow."""
    start = int_arg(request, "cursor", 0)
    chunk = accounts[start:start + PAGE]
    headers = {"Link": next_link(request, start + PAGE)} if start + PAGE < len(accounts) else {}
    return JSONResponse([render(a) for a in chunk], headers=headers)


@blocking
def user_overview(request: Request) -> Response:
    hub = hub_of(request)
    return JSONResponse(hub.orgs.user_overview(param(request, "user"), principal_of(request), base_url(request)))


@blocking
def org_overview(request: Request) -> Response:
    hub = hub_of(request)
    return JSONResponse(hub.orgs.org_overview(param(request, "org"), principal_of(request), base_url(request)))


@blocking
def org_members(request: Request) -> Response:
    hub = hub_of(request)
    url, viewer = base_url(request), principal_of(request)
    members = hub.orgs.members(param(request, "org"))
    return _page(request, members, lambda m: {**hub.orgs.user_json(m[0], url, viewer), "role": m[1]})


def _follows(which: str, kind: str):
    @blocking
    def handler(request: Request) -> Response:
        hub = hub_of(request)
        url, viewer = base_url(request), principal_of(request)
        account = hub.orgs.require(param(request, "org" if kind == "org" else "user"), kind)
        found = hub.orgs.followers(account) if which == "followers" else hub.orgs.following(account)
        return _page(request, found, lambda a: hub.orgs.user_json(a, url, viewer)
                     if a.kind == "user" else {**hub.orgs.org_json(a, url), "user": a.name})
    return handler


user_followers = _follows("followers", "user")
user_following = _follows("following", "user")
org_followers = _follows("followers", "org")


def _follow(following: bool):
    @blocking
    def handler(request: Request) -> Response:
        name = param(request, "org") if "org" in request.path_params else param(request, "user")
        hub_of(request).orgs.follow(principal_of(request), name, following)
        return JSONResponse({"success": True})
    return handler


follow = _follow(True)
unfollow = _follow(False)


# --- membership management -------------------------------------------------------------------------


async def set_member_role(request: Request) -> Response:
    await run_sync(hub_of(request).orgs.authorize_manage, principal_of(request), param(request, "org"))
    body = json_object(await read_json(request))
    role = body.get("role")
    if not isinstance(role, str):
        raise BadRequest("role is required")
    hub = hub_of(request)
    await run_sync(hub.orgs.set_role, principal_of(request), param(request, "org"), param(request, "user"), role)
    return JSONResponse({"success": True})


@blocking
def remove_member(request: Request) -> Response:
    hub_of(request).orgs.remove(principal_of(request), param(request, "org"), param(request, "user"))
    return JSONResponse({"success": True})


def _invitation_json(invitation) -> dict:
    from aicommons.times import iso_z

    return {"id": str(invitation.id), "email": invitation.email, "role": invitation.role,
            "createdAt": iso_z(invitation.created_at), "expiresAt": iso_z(invitation.expires_at)}


async def create_invitation(request: Request) -> Response:
    await run_sync(hub_of(request).orgs.authorize_manage, principal_of(request), param(request, "org"))
    body = json_object(await read_json(request, default={}))
    role, email = body.get("role", "read"), body.get("email")
    if not isinstance(role, str) or (email is not None and not isinstance(email, str)):
        raise BadRequest("role and email must be strings")
    hub = hub_of(request)
    token, invitation = await run_sync(hub.orgs.invite, principal_of(request), param(request, "org"), role, email)
    return JSONResponse({**_invitation_json(invitation), "url": f"{base_url(request)}/invitations/{token}"})


@blocking
def list_invitations(request: Request) -> Response:
    found = hub_of(request).orgs.invitations(principal_of(request), param(request, "org"))
    return JSONResponse([_invitation_json(i) for i in found])


@blocking
def delete_invitation(request: Request) -> Response:
    ident = param(request, "id")
    if not ident.isdigit() or len(ident) > 12:
        raise BadRequest("Invalid invitation id")
    hub_of(request).orgs.revoke_invitation(principal_of(request), param(request, "org"), int(ident))
    return JSONResponse({"success": True})


@blocking
def ask_to_join(request: Request) -> Response:
    hub_of(request).orgs.request_to_join(principal_of(request), param(request, "org"))
    return JSONResponse({"success": True})


@blocking
def list_join_requests(request: Request) -> Response:
    hub = hub_of(request)
    url = base_url(request)
    found = hub.orgs.join_requests(principal_of(request), param(request, "org"))
    from aicommons.times import iso_z

    return JSONResponse([{**hub.orgs.user_json(user, url), "requestedAt": iso_z(at)} for user, at in found])


async def decide_join_request(request: Request) -> Response:
    await run_sync(hub_of(request).orgs.authorize_manage, principal_of(request), param(request, "org"))
    body = json_object(await read_json(request))
    action, role = body.get("action"), body.get("role", "read")
    if action not in ("accept", "decline") or not isinstance(role, str):
        raise BadRequest('action must be "accept" or "decline"')
    hub = hub_of(request)
    await run_sync(hub.orgs.decide_join_request, principal_of(request), param(request, "org"),
                   param(request, "user"), action == "accept", role)
    return JSONResponse({"success": True})
