"""Likes, likers, a user's liked repos, and the LFS file listing/deletion endpoints."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from aicommons.api.http import (
    blocking, hub_of, json_object, param, principal_of, read_json, repo_id_param, repo_type_param, run_sync,
)
from aicommons.errors import BadRequest, HubError, NotFound
from aicommons.times import iso_z, utcnow


def _signed_in(request: Request):
    principal = principal_of(request)
    if principal.is_anonymous:
        raise HubError("You must be signed in to do this", status=401)
    return principal


def _set_like(request: Request, liked: bool) -> Response:
    hub = hub_of(request)
    principal = _signed_in(request)
    repo = hub.repos.find(repo_type_param(request), repo_id_param(request), principal)
    hub.likes.set(principal.account.id, repo.id, liked, utcnow())
    return JSONResponse({"success": True})


like = blocking(lambda request: _set_like(request, True))
unlike = blocking(lambda request: _set_like(request, False))


@blocking
def likers(request: Request) -> Response:
    hub = hub_of(request)
    repo = hub.repos.find(repo_type_param(request), repo_id_param(request), principal_of(request))
    return JSONResponse([{"user": name, "fullname": fullname, "avatarUrl": "", "type": "user"}
                         for name, fullname in hub.likes.likers(repo.id)])


@blocking
def user_likes(request: Request) -> Response:
    hub = hub_of(request)
    principal = principal_of(request)
    account = hub.accounts.store.get(param(request, "user"))
    if account is None:
        raise NotFound(f"No user named {param(request, 'user')!r}")
    out = []
    for repo_id in hub.likes.liked_repo_ids(account.id):
        repo = hub.repo_store.get_by_id(repo_id)
        if repo is not None and (not repo.private or principal.can_read_owner(repo.owner_id)):
            out.append({"repo": {"name": repo.full_id, "type": repo.type}})
    return JSONResponse(out)


@blocking
def list_lfs_files(request: Request) -> Response:
    hub = hub_of(request)
    repo = hub.repos.find(repo_type_param(request), repo_id_param(request), principal_of(request), write=True)
    items = hub.lfs_files.list(repo)
    for item in items:
        item["pushedAt"] = iso_z(item["pushedAt"])
    return JSONResponse(items)


async def delete_lfs_files(request: Request) -> Response:
    body = json_object(await read_json(request))
    deletions = body.get("deletions")
    if not isinstance(deletions, dict) or not isinstance(deletions.get("sha"), list) \
            or not all(isinstance(s, str) for s in deletions["sha"]):
        raise BadRequest("'deletions.sha' must be a list of sha256 strings")

    def run():
        hub = hub_of(request)
        repo = hub.repos.find(repo_type_param(request), repo_id_param(request), principal_of(request), write=True)
        hub.lfs_files.delete(repo, deletions["sha"], bool(deletions.get("rewriteHistory", True)))

    await run_sync(run)
    return JSONResponse({"success": True})
